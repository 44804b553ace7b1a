import { describe, expect, it } from 'vitest';
import { ReadinessSignal } from '../src/index.js';

describe('ReadinessSignal', () => {
  it('resolves at once when ready, on notify once ready, and false on timeout', async () => {
    const signal = new ReadinessSignal();
    let ready = false;
    await expect(signal.wait(() => true)).resolves.toBe(true);
    await expect(signal.wait(() => ready, 0)).resolves.toBe(false);
    const waiting = signal.wait(() => ready);
    expect(signal.hasWaiters).toBe(true);
    signal.notify(); // not ready yet: the waiter stays
    expect(signal.hasWaiters).toBe(true);
    ready = true;
    signal.notify();
    await expect(waiting).resolves.toBe(true);
    expect(signal.hasWaiters).toBe(false);
    ready = false;
    await expect(signal.wait(() => ready, 5)).resolves.toBe(false);
    expect(signal.hasWaiters).toBe(false); // the timed-out waiter is gone
  });

  it('an infinite timeout waits without a timer', async () => {
    const signal = new ReadinessSignal();
    let ready = false;
    const waiting = signal.wait(() => ready, Number.POSITIVE_INFINITY);
    await new Promise((r) => setTimeout(r, 10));
    ready = true;
    signal.notify();
    await expect(waiting).resolves.toBe(true);
  });
});
