/**
 * Readiness, as poll(2) reports it, and the ways to wait for it without
 * spinning: a promise for queues that live in one thread, and doorbell words
 * (Atomics.wait / Atomics.waitAsync) for rings shared between threads.
 */

/** poll(2): there is data to read (Linux value). */
export const POLLIN = 0x001;
/** poll(2): writing will not block (Linux value). */
export const POLLOUT = 0x004;
/** poll(2): normal data is readable (Linux value; the kernel sets it with POLLIN). */
export const POLLRDNORM = 0x040;
/** poll(2): normal data may be written (Linux value; set with POLLOUT). */
export const POLLWRNORM = 0x100;

/**
 * Wakes promise-waiters of a queue that lives in one thread (the IOPF queue,
 * the vEVENTQ, a ring over a plain ArrayBuffer). The queue calls
 * {@link ReadinessSignal.notify} whenever something may have become readable;
 * each waiter re-checks its own condition, so a spurious notify is harmless.
 */
export class ReadinessSignal {
  private waiters: Array<() => void> = [];

  /**
   * Resolves true once `isReady()` holds (at once if it already does), or
   * false after `timeoutMs` milliseconds (never, when not given or infinite).
   */
  wait(isReady: () => boolean, timeoutMs?: number): Promise<boolean> {
    if (isReady()) return Promise.resolve(true);
    if (timeoutMs !== undefined && timeoutMs <= 0) return Promise.resolve(false);
    return new Promise<boolean>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let settled = false;
      const check = (): void => {
        if (settled) return;
        if (isReady()) {
          settled = true;
          if (timer !== undefined) clearTimeout(timer);
          resolve(true);
        } else {
          this.waiters.push(check);
        }
      };
      if (timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          settled = true;
          const at = this.waiters.indexOf(check);
          if (at >= 0) this.waiters.splice(at, 1); // a timed-out waiter leaves no trace
          resolve(false);
        }, timeoutMs);
      }
      this.waiters.push(check);
    });
  }

  /** True while someone waits (a producer can skip the notify otherwise). */
  get hasWaiters(): boolean {
    return this.waiters.length > 0;
  }

  /** Lets every waiter re-check its condition. */
  notify(): void {
    if (this.waiters.length === 0) return;
    const waiting = this.waiters;
    this.waiters = [];
    for (const check of waiting) check();
  }
}

/**
 * Rings a doorbell word: bumps it and wakes every thread (or async waiter)
 * parked on it. Only called when the waiting flag said someone may be
 * parked, so a busy ring pays nothing for it.
 */
export function ringDoorbell(words: Int32Array, index: number): void {
  Atomics.add(words, index, 1);
  if (words.buffer instanceof SharedArrayBuffer) Atomics.notify(words, index);
}

/**
 * Waits, without blocking the thread, until the doorbell word at `index` moves
 * away from `seen` or `timeoutMs` passes (Atomics.waitAsync, Node 20).
 */
export async function waitDoorbell(
  words: Int32Array,
  index: number,
  seen: number,
  timeoutMs: number,
): Promise<void> {
  const waited = (Atomics as unknown as AtomicsWithWaitAsync).waitAsync(
    words,
    index,
    seen,
    timeoutMs,
  );
  if (waited.async) await waited.value;
}

// Atomics.waitAsync is in Node 20 but in the ES2024 library, past this
// project's ES2022 target: typed here rather than widening the target.
interface AtomicsWithWaitAsync {
  waitAsync(
    typedArray: Int32Array,
    index: number,
    value: number,
    timeout?: number,
  ): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<string> };
}
