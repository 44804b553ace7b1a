/** Sizes and durations the way a person reads them. */

const UNITS: readonly [bigint, string][] = [
  [1n << 60n, 'EiB'],
  [1n << 50n, 'PiB'],
  [1n << 40n, 'TiB'],
  [1n << 30n, 'GiB'],
  [1n << 20n, 'MiB'],
  [1n << 10n, 'KiB'],
];

/** `4 GiB`, `1.5 MiB`, `512 B`: the largest unit that keeps the value at least 1. */
export function formatSize(bytes: number | bigint): string {
  const b = BigInt(bytes);
  const neg = b < 0n;
  const abs = neg ? -b : b;
  for (const [unit, name] of UNITS) {
    if (abs >= unit) {
      const whole = abs / unit;
      const tenths = ((abs % unit) * 10n) / unit;
      const text = tenths === 0n ? `${whole}` : `${whole}.${tenths}`;
      return `${neg ? '-' : ''}${text} ${name}`;
    }
  }
  return `${neg ? '-' : ''}${abs} B`;
}

/** {@link formatSize}, with the exact byte count when the short form rounds. */
export function formatSizeExact(bytes: number | bigint): string {
  const b = BigInt(bytes);
  const short = formatSize(b);
  const exact = UNITS.some(
    ([unit]) =>
      b % unit === 0n &&
      b / unit >= 1n &&
      short === `${b / unit} ${UNITS.find(([u]) => u === unit)?.[1]}`,
  );
  return exact || (b < 1024n && b > -1024n) ? short : `${short} (${b} bytes)`;
}

/** Milliseconds with a sensible precision: `0.04 ms`, `12.3 ms`, `1.25 s`. */
export function formatMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(2)} ms`;
}

/** Pad `text` on the right to `width` characters. */
export function padEnd(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

/** Rows of cells as aligned columns (the last column is not padded). */
export function columns(rows: readonly (readonly string[])[], gap = 2): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : padEnd(cell, (widths[i] ?? 0) + gap)))
      .join('')
      .trimEnd(),
  );
}
