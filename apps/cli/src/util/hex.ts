/**
 * Bytes and 64-bit numbers as text: traces are JSON lines, which have no
 * bigint and no bytes, so both travel as hex strings.
 */

/** Bytes as lowercase hex, two digits a byte, no separators. */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Hex (whitespace ignored) as bytes; undefined when it is not an even number of hex digits. */
export function fromHex(text: string): Uint8Array | undefined {
  const clean = text.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) return undefined;
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(clean.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** `0x` hex of a number or bigint. */
export function hex(n: number | bigint): string {
  return n < 0 ? `-0x${(-BigInt(n)).toString(16)}` : `0x${n.toString(16)}`;
}

/** JSON.stringify replacer: bigints become `0x` hex strings, bytes hex strings. */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return hex(value);
  if (value instanceof Uint8Array) return toHex(value);
  return value;
}

/** JSON text of `value` with bigints and bytes as hex. */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, jsonReplacer, indent);
}

/** Bytes for a person: spaced hex (the first `max`), and the text when every byte is printable. */
export function describeBytes(bytes: Uint8Array, max = 16): string {
  const shown = toHex(bytes.subarray(0, max)).replace(/(..)(?!$)/g, '$1 ');
  const printable = bytes.length > 0 && bytes.every((b) => b >= 0x20 && b < 0x7f);
  const text = printable ? ` "${new TextDecoder().decode(bytes.subarray(0, 48))}"` : '';
  return `${shown}${bytes.length > max ? ' ...' : ''}${text}`;
}
