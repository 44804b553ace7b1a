/**
 * What every struct codec shares: the value types it accepts, the DataView it
 * works through, and the checks that turn a bad value into an exception
 * instead of a silently wrapped field.
 */

/**
 * What `encode` accepts for a field whose decoded value is `V`: 64-bit fields
 * take a bigint (or a non-negative safe integer), smaller ones a number (or an
 * in-range bigint); arrays and nested structs take the same, element by element.
 */
export type FieldInput<V> = V extends bigint
  ? bigint | number
  : V extends number
    ? number | bigint
    : V extends readonly (infer E)[]
      ? readonly FieldInput<E>[]
      : V extends object
        ? StructInput<V>
        : never;

/**
 * What `encode` accepts for a struct whose decoded value is `T`: any subset of
 * its fields. A missing field is encoded as zero, as the kernel reads the
 * missing tail of a short struct.
 */
export type StructInput<T> = { readonly [K in keyof T]?: FieldInput<T[K]> | undefined };

// One cached DataView: encode/decode are usually called again and again on the
// same buffer, and making a DataView costs more than the whole decode. Only the
// last Uint8Array is remembered.
let lastBytes: Uint8Array | undefined;
let lastView: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

/**
 * The DataView to read `size` bytes at `offset` of `bytes` through, after
 * checking that they are there. Offsets into the returned view are relative to
 * the start of `bytes`.
 */
export function viewOf(bytes: Uint8Array, offset: number, size: number, struct: string): DataView {
  if (bytes !== lastBytes) {
    if (!(bytes instanceof Uint8Array)) {
      throw new TypeError(`${struct}: expected a Uint8Array, got ${describe(bytes)}`);
    }
    lastView = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    lastBytes = bytes;
  }
  if (!(offset >>> 0 === offset && offset + size <= bytes.length)) {
    throw new RangeError(
      `${struct}: ${size} bytes at offset ${describe(offset)} do not fit in a buffer of ${bytes.length} bytes`,
    );
  }
  return lastView;
}

function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return `'${value}' (a string)`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `a ${value.constructor?.name ?? 'null-prototype'} object`;
  return String(value);
}

function toSmall(value: unknown, path: string, min: number, max: number, cType: string): number {
  if (value === undefined) return 0;
  if (typeof value === 'bigint') {
    if (value < BigInt(min) || value > BigInt(max)) {
      throw new RangeError(`${path}: ${value}n does not fit in ${cType} (${min}..${max})`);
    }
    return Number(value);
  }
  if (typeof value !== 'number') {
    throw new TypeError(`${path}: expected a number for ${cType}, got ${describe(value)}`);
  }
  if (!Number.isInteger(value))
    throw new RangeError(`${path}: ${value} is not an integer (${cType})`);
  if (value < min || value > max) {
    throw new RangeError(`${path}: ${value} does not fit in ${cType} (${min}..${max})`);
  }
  return value;
}

/** Slow path of a `__u8` field: missing → 0, in-range bigint → number, anything else throws. */
export function toU8(value: unknown, path: string): number {
  return toSmall(value, path, 0, 0xff, '__u8');
}

/** Slow path of a `__u16` field. */
export function toU16(value: unknown, path: string): number {
  return toSmall(value, path, 0, 0xffff, '__u16');
}

/** Slow path of a `__u32` field. */
export function toU32(value: unknown, path: string): number {
  return toSmall(value, path, 0, 0xffffffff, '__u32');
}

/** Slow path of a `__s32` field. */
export function toS32(value: unknown, path: string): number {
  return toSmall(value, path, -0x80000000, 0x7fffffff, '__s32');
}

const U64_MAX = 0xffff_ffff_ffff_ffffn;

/** Slow path of a 64-bit field: missing → 0n, a non-negative safe integer → bigint, else throws. */
export function toU64(value: unknown, path: string): bigint {
  if (value === undefined) return 0n;
  if (typeof value === 'bigint') {
    if (BigInt.asUintN(64, value) === value) return value;
    throw new RangeError(`${path}: ${value}n does not fit in a u64 (0..${U64_MAX}n)`);
  }
  if (typeof value !== 'number') {
    throw new TypeError(`${path}: expected a bigint for a u64, got ${describe(value)}`);
  }
  if (!Number.isInteger(value)) throw new RangeError(`${path}: ${value} is not an integer (u64)`);
  if (value < 0) throw new RangeError(`${path}: ${value} does not fit in a u64 (0..${U64_MAX}n)`);
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(
      `${path}: ${value} is above 2^53 and not exact as a number; pass a bigint`,
    );
  }
  return BigInt(value);
}

/** Throws unless `value` is an object whose fields can be encoded. */
export function checkObject(value: unknown, path: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`${path}: expected an object of fields, got ${describe(value)}`);
  }
}

/** Encodes a fixed-length array field; a missing array is all zeros, a short one is zero-filled. */
export function writeArray(
  view: DataView,
  offset: number,
  value: unknown,
  element: 'u8' | 'u32' | 'u64',
  count: number,
  path: string,
): void {
  if (value !== undefined && !Array.isArray(value)) {
    throw new TypeError(`${path}: expected an array of ${count}, got ${describe(value)}`);
  }
  const items: readonly unknown[] = value ?? [];
  if (items.length > count) {
    throw new RangeError(`${path}: ${items.length} elements do not fit in an array of ${count}`);
  }
  for (let i = 0; i < count; i++) {
    const item = items[i];
    const at = `${path}[${i}]`;
    if (element === 'u8') view.setUint8(offset + i, toExactU8(item, at));
    else if (element === 'u32') view.setUint32(offset + 4 * i, toExactU32(item, at), true);
    else view.setBigUint64(offset + 8 * i, toExactU64(item, at), true);
  }
}

function toExactU8(value: unknown, path: string): number {
  return typeof value === 'number' && (value & 0xff) === value ? value : toU8(value, path);
}

function toExactU32(value: unknown, path: string): number {
  return typeof value === 'number' && value >>> 0 === value ? value : toU32(value, path);
}

function toExactU64(value: unknown, path: string): bigint {
  return typeof value === 'bigint' && BigInt.asUintN(64, value) === value
    ? value
    : toU64(value, path);
}
