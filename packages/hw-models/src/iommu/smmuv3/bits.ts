/**
 * Named bit fields over little-endian 64-bit words: the one codec behind
 * every SMMUv3 structure here (STE, CD, L1 descriptors, commands, events,
 * PRI entries, ID registers). Words are bigints; these structures are read
 * and written per configuration change, not per page.
 */
import type { PhysicalMemory } from '../../memory/physical-memory.js';

/** One field: `width` bits from bit `lo` of word `word`. */
export interface BitField {
  /** The hardware's name for the field. */
  readonly name: string;
  /** Which 64-bit word. */
  readonly word: number;
  /** Lowest bit. */
  readonly lo: number;
  /** Number of bits. */
  readonly width: number;
  /**
   * An address field: the value is the address itself with its bits in place
   * (S1ContextPtr 0x4e178fc0, not 0x4e178fc0 >> 6); bits outside the field must be zero.
   */
  readonly address?: boolean;
}

/** Field values as a caller writes them (booleans for one-bit flags). */
export type BitFieldInput = Readonly<Record<string, number | bigint | boolean>>;

/** Decoded field values: numbers, exact below 2^53. */
export type BitFieldValues = Record<string, number>;

/** A structure made of named bit fields over `words` 64-bit words. */
export class BitLayout {
  private readonly byName = new Map<string, BitField>();

  constructor(
    /** The structure's name, for messages. */
    readonly name: string,
    /** Its size in 64-bit words. */
    readonly words: number,
    /** Its fields. */
    readonly fields: readonly BitField[],
  ) {
    for (const f of fields) {
      if (f.word >= words || f.lo + f.width > 64) {
        throw new RangeError(`${name}.${f.name} does not fit in ${words} words`);
      }
      this.byName.set(f.name, f);
    }
  }

  /** Whether the layout has a field called `name`. */
  has(name: string): boolean {
    return this.byName.has(name);
  }

  /**
   * The words with `values` set (into a copy of `base` when given, else zeros).
   * Unknown names throw TypeError; values that do not fit throw RangeError.
   */
  encode(values: BitFieldInput, base?: readonly bigint[]): bigint[] {
    const out = base === undefined ? new Array<bigint>(this.words).fill(0n) : [...base];
    for (const [name, raw] of Object.entries(values)) {
      const f = this.byName.get(name);
      if (f === undefined) throw new TypeError(`${this.name} has no field ${name}`);
      out[f.word] = setField(out[f.word] ?? 0n, f, raw, this.name);
    }
    return out;
  }

  /** Every field of `words`, by name. */
  decode(words: readonly bigint[]): BitFieldValues {
    const out: BitFieldValues = {};
    for (const f of this.fields) out[f.name] = getField(words, f);
    return out;
  }

  /** One field of `words`. */
  get(words: readonly bigint[], name: string): number {
    const f = this.byName.get(name);
    if (f === undefined) throw new TypeError(`${this.name} has no field ${name}`);
    return getField(words, f);
  }
}

function fieldMask(f: BitField): bigint {
  return ((1n << BigInt(f.width)) - 1n) << BigInt(f.lo);
}

function getField(words: readonly bigint[], f: BitField): number {
  const w = words[f.word] ?? 0n;
  const v =
    f.address === true ? w & fieldMask(f) : (w >> BigInt(f.lo)) & ((1n << BigInt(f.width)) - 1n);
  return Number(v);
}

function setField(
  word: bigint,
  f: BitField,
  raw: number | bigint | boolean,
  layout: string,
): bigint {
  let v: bigint;
  if (typeof raw === 'boolean') v = raw ? 1n : 0n;
  else if (typeof raw === 'bigint') v = raw;
  else {
    if (!Number.isSafeInteger(raw))
      throw new RangeError(`${layout}.${f.name}: ${raw} is not an integer`);
    v = BigInt(raw);
  }
  if (v < 0n) throw new RangeError(`${layout}.${f.name}: ${raw} is negative`);
  const mask = fieldMask(f);
  const placed = f.address === true ? v : v << BigInt(f.lo);
  if ((placed & ~mask) !== 0n) {
    throw new RangeError(`${layout}.${f.name}: 0x${v.toString(16)} does not fit the field`);
  }
  return (word & ~mask) | placed;
}

/** Shorthand for a field list: [name, word, lo, width] or [name, word, lo, width, 'addr']. */
export function bitFields(
  ...specs: readonly (
    | readonly [string, number, number, number]
    | readonly [string, number, number, number, 'addr']
  )[]
): BitField[] {
  return specs.map(([name, word, lo, width, kind]) =>
    kind === 'addr' ? { name, word, lo, width, address: true } : { name, word, lo, width },
  );
}

/** `words` as little-endian bytes. */
export function smmuWordsToBytes(words: readonly bigint[]): Uint8Array {
  const bytes = new Uint8Array(words.length * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < words.length; i++) {
    view.setBigUint64(i * 8, BigInt.asUintN(64, words[i] as bigint), true);
  }
  return bytes;
}

/** `count` little-endian 64-bit words from `bytes` at `offset`. */
export function smmuBytesToWords(
  bytes: Uint8Array,
  offset = 0,
  count = (bytes.length - offset) >> 3,
): bigint[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: bigint[] = [];
  for (let i = 0; i < count; i++) out.push(view.getBigUint64(offset + i * 8, true));
  return out;
}

/** `count` 64-bit words of physical memory from `pa`. */
export function readSmmuWords(memory: PhysicalMemory, pa: number, count: number): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < count; i++) out.push(memory.readU64(pa + i * 8));
  return out;
}

/** Store `words` in physical memory from `pa`. */
export function writeSmmuWords(memory: PhysicalMemory, pa: number, words: readonly bigint[]): void {
  words.forEach((w, i) => {
    memory.writeU64(pa + i * 8, w);
  });
}

/** A word as 0x-prefixed, 16-digit hex (for reasons and reports). */
export function smmuHex64(word: bigint): string {
  return `0x${BigInt.asUintN(64, word).toString(16).padStart(16, '0')}`;
}
