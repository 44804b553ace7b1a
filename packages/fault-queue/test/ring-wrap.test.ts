// The counters are 64-bit totals kept in 32-bit words, and the multi-producer
// ring's positions wrap at a multiple of its capacity below 2^30. Reaching
// those wraps takes billions of records, so these tests start a ring just
// before them by writing its control words, then run records across.
import { describe, expect, it } from 'vitest';
import { MpscRing, SpscRing } from '../src/index.js';
import {
  RING_HEADER_BYTES,
  W_HEAD,
  W_HEAD_HI,
  W_HEAD_POSITION,
  W_MODULUS,
  W_TAIL,
  W_TAIL_HI,
} from '../src/ring-base.js';

const TWO_32 = 2 ** 32;

function moveThrough(ring: SpscRing | MpscRing, records: number): void {
  const out = new Uint8Array(ring.recordSize);
  for (let i = 0; i < records; i++) {
    const rec = Uint8Array.from({ length: ring.recordSize }, (_, j) => (i + j) & 0xff);
    expect(ring.push(rec)).toBe(true);
    if (i % 2 === 1) {
      expect(ring.pop(out)).toBe(true);
      expect(out[0]).toBe((i - 1) & 0xff);
      expect(ring.pop(out)).toBe(true);
      expect(out[0]).toBe(i & 0xff);
    }
  }
}

describe('counter and position wrap', () => {
  it('SPSC: the written and read totals carry past 2^32', () => {
    const created = SpscRing.create({ recordSize: 8, capacity: 3 });
    const ctl = new Int32Array(created.buffer, 0, 64);
    const start = TWO_32 - 5; // slot (2^32 - 5) % 3
    ctl[W_TAIL] = start | 0;
    ctl[W_HEAD] = start | 0;
    ctl[W_TAIL_HI] = 0;
    ctl[W_HEAD_HI] = 0;
    const ring = new SpscRing(created.buffer);
    moveThrough(ring, 20);
    expect(ring.stats()).toEqual({
      written: start + 20,
      read: start + 20,
      dropped: 0,
      rejected: 0,
      waiting: 0,
    });
    expect(ctl[W_TAIL_HI]).toBe(2); // one carry, kept even
  });

  /** An MPSC ring whose consumer has read `total` records and whose producers have caught up. */
  function mpscAt(total: number): { ring: MpscRing; ctl: Int32Array; modulus: number } {
    const created = MpscRing.create({ recordSize: 8, capacity: 5 });
    const ctl = new Int32Array(created.buffer, 0, 64);
    const modulus = ctl[W_MODULUS] as number;
    const position = total % modulus;
    ctl[W_HEAD] = total | 0;
    ctl[W_HEAD_HI] = 2 * Math.floor(total / TWO_32);
    ctl[W_TAIL] = position;
    ctl[W_HEAD_POSITION] = position;
    return { ring: new MpscRing(created.buffer), ctl, modulus };
  }

  it('MPSC: positions wrap at their modulus, a multiple of the capacity below 2^30', () => {
    const { modulus } = mpscAt(0);
    expect(modulus % 5).toBe(0);
    expect(modulus).toBeLessThanOrEqual(2 ** 30);
    const total = modulus - 3;
    const { ring, ctl } = mpscAt(total);
    moveThrough(ring, 40);
    expect(ring.stats()).toMatchObject({ written: total + 40, read: total + 40, waiting: 0 });
    expect(ctl[W_TAIL]).toBe(37); // (modulus - 3 + 40) mod modulus
  });

  it('MPSC: a run of claims crosses the position wrap', () => {
    const { modulus } = mpscAt(0);
    const { ring, ctl } = mpscAt(modulus - 3); // slot 2 of 5
    expect(ring.claimRun(5)).toBe(3); // slots 2, 3, 4: positions M-3 .. M-1
    expect(ctl[W_TAIL]).toBe(0);
    ring.commit();
    expect(ring.drain(() => {})).toBe(3);
    expect(ring.claimRun(5)).toBe(5); // positions 0 .. 4
    ring.commit();
    expect(ring.drain(() => {})).toBe(5);
    expect(ring.stats()).toMatchObject({ written: modulus + 5, read: modulus + 5 });
  });

  it('MPSC: a run taken by the consumer loses its mark, so no stale mark can match a later lap', () => {
    const ring = MpscRing.create({ recordSize: 8, capacity: 4 });
    const seqs = new Int32Array(ring.buffer, RING_HEADER_BYTES, 4);
    expect([...seqs]).toEqual([-1, -1, -1, -1]);
    expect(ring.claimRun(3)).toBe(3);
    ring.commit();
    expect([...seqs]).toEqual([1, -1, -1, -1]); // the run's first slot: position 0, plus 1
    expect(ring.drain(() => {}, 1)).toBe(1); // takes the run, reads one record of it
    expect([...seqs]).toEqual([-1, -1, -1, -1]);
    expect(ring.readable()).toBe(true); // two records of the taken run still wait
    expect(ring.drain(() => {})).toBe(2);
    expect(ring.readable()).toBe(false);
  });

  it('MPSC: the read total carries past 2^32', () => {
    const total = TWO_32 - 3;
    const { ring, ctl } = mpscAt(total);
    moveThrough(ring, 40);
    expect(ring.stats()).toMatchObject({ written: total + 40, read: total + 40, waiting: 0 });
    expect(ctl[W_HEAD_HI]).toBe(2);
  });
});
