/**
 * Timing helpers shared by the iommufd-core benchmarks: wall time of a
 * call, the median of rounds, and a check that stops a bench whose setup
 * failed (with the process's last error).
 */
import type { Process } from '../src/index.js';

/** Nanoseconds `fn` takes. */
export function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0);
}

/** The median of `xs`. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Throw when a call the bench relies on failed. */
export function check(rc: number, what: string, proc?: Process): void {
  if (rc < 0) throw new Error(`${what} failed with ${rc}: ${JSON.stringify(proc?.lastError())}`);
}
