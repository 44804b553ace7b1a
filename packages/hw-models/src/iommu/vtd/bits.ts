/**
 * Named bit fields over little-endian 32-bit words: the one codec behind
 * every VT-d register, table entry, descriptor and record, so each structure
 * is declared once as a list of (name, lowest bit, width) and encodes and
 * decodes from that list. Fields may straddle words; addresses are plain
 * numbers (below 2^53), stored shifted by their `scale` (4096 for "bits 63:12
 * of an address").
 */

/** A field: its name, lowest bit, width in bits and scale (the value is stored divided by it). */
export type FieldSpec<N extends string> = readonly [
  name: N,
  lsb: number,
  width: number,
  scale?: number,
];

/** The value of bits [lsb, lsb+width) of `words` from word `at`, as a number (width <= 53). */
export function getBits(words: ArrayLike<number>, lsb: number, width: number, at = 0): number {
  let value = 0;
  let done = 0;
  while (done < width) {
    const bit = lsb + done;
    const w = at + (bit >>> 5);
    const off = bit & 31;
    const n = Math.min(32 - off, width - done);
    const word = (words[w] ?? 0) >>> off;
    const part = n >= 32 ? word : word % 2 ** n;
    value += part * 2 ** done;
    done += n;
  }
  return value;
}

/** Store `value` (a non-negative integer below 2^width) in bits [lsb, lsb+width) of `words`. */
export function setBits(
  words: Uint32Array,
  lsb: number,
  width: number,
  value: number,
  at = 0,
): void {
  let rest = value;
  let done = 0;
  while (done < width) {
    const bit = lsb + done;
    const w = at + (bit >>> 5);
    const off = bit & 31;
    const n = Math.min(32 - off, width - done);
    const span = 2 ** n;
    const part = rest % span;
    rest = (rest - part) / span;
    const mask = n >= 32 ? -1 : ((2 ** n - 1) * 2 ** off) | 0;
    words[w] = ((words[w] as number) & ~mask) | ((part * 2 ** off) | 0);
    done += n;
  }
}

/** A structure of named fields: its size and codec. */
export interface Layout<N extends string> {
  /** What it is. */
  readonly name: string;
  /** Size in bytes. */
  readonly bytes: number;
  /** Its fields. */
  readonly fields: readonly FieldSpec<N>[];
  /** Words holding `values` (missing fields zero), written into `into` at word `at` when given. */
  encode(values: Partial<Record<N, number>>, into?: Uint32Array, at?: number): Uint32Array;
  /** Every field of the structure at word `at` of `words`. */
  decode(words: ArrayLike<number>, at?: number): Record<N, number>;
}

/** Declare a structure of `bytes` bytes with `fields`. */
export function defineLayout<N extends string>(
  name: string,
  bytes: number,
  fields: readonly FieldSpec<N>[],
): Layout<N> {
  return {
    name,
    bytes,
    fields,
    encode(values, into, at = 0) {
      const words = into ?? new Uint32Array(bytes / 4);
      if (into !== undefined) words.fill(0, at, at + bytes / 4);
      for (const [field, lsb, width, scale = 1] of fields) {
        const v = values[field];
        if (v === undefined || v === 0) continue;
        const stored = v / scale;
        if (!Number.isInteger(stored) || stored < 0 || stored >= 2 ** width) {
          throw new RangeError(
            `${name}.${field}: ${v} does not fit ${width} bits (scale ${scale})`,
          );
        }
        setBits(words, lsb, width, stored, at);
      }
      return words;
    },
    decode(words, at = 0) {
      const out = {} as Record<N, number>;
      for (const [field, lsb, width, scale = 1] of fields)
        out[field] = getBits(words, lsb, width, at) * scale;
      return out;
    },
  };
}

/** Words as little-endian 64-bit values (for comparing with the spec's qwords). */
export function wordsToQwords(words: ArrayLike<number>): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i + 1 < words.length; i += 2) {
    out.push((BigInt((words[i + 1] as number) >>> 0) << 32n) | BigInt((words[i] as number) >>> 0));
  }
  return out;
}

/** 64-bit values as little-endian 32-bit words. */
export function qwordsToWords(qwords: readonly bigint[]): Uint32Array {
  const out = new Uint32Array(qwords.length * 2);
  qwords.forEach((q, i) => {
    const v = BigInt.asUintN(64, q);
    out[2 * i] = Number(v & 0xffffffffn);
    out[2 * i + 1] = Number(v >> 32n);
  });
  return out;
}

/** The bytes of `words` (little-endian), a copy. */
export function wordsToBytes(words: Uint32Array): Uint8Array {
  return new Uint8Array(words.buffer.slice(words.byteOffset, words.byteOffset + words.byteLength));
}

/** `bytes` (a multiple of 4 long, from `offset`) as words, a copy. */
export function bytesToWords(
  bytes: Uint8Array,
  offset = 0,
  length = bytes.length - offset,
): Uint32Array {
  const out = new Uint32Array(length >>> 2);
  new Uint8Array(out.buffer).set(bytes.subarray(offset, offset + (length & ~3)));
  return out;
}
