import { describe, expect, it } from 'vitest';
import {
  attachRing,
  MpscRing,
  POLLIN,
  POLLOUT,
  POLLRDNORM,
  POLLWRNORM,
  RING_HEADER_BYTES,
  type RingOptions,
  ringByteLength,
  SpscRing,
} from '../src/index.js';

const kinds = [
  ['spsc', (o: RingOptions) => SpscRing.create(o)],
  ['mpsc', (o: RingOptions) => MpscRing.create(o)],
] as const;

const record = (size: number, fill: number): Uint8Array =>
  Uint8Array.from({ length: size }, (_, i) => (fill * 31 + i) & 0xff);

describe.each(kinds)('%s ring', (kind, create) => {
  it('moves records in order, byte for byte, for each record size', () => {
    for (const recordSize of [40, 48, 64, 128]) {
      const ring = create({ recordSize, capacity: 5 });
      const out = new Uint8Array(recordSize);
      let next = 0;
      for (let round = 0; round < 7; round++) {
        for (let i = 0; i < 3; i++) expect(ring.push(record(recordSize, next + i))).toBe(true);
        for (let i = 0; i < 3; i++) {
          expect(ring.pop(out)).toBe(true);
          expect(out).toEqual(record(recordSize, next++));
        }
      }
      expect(ring.pop(out)).toBe(false);
      expect(ring.stats()).toEqual({ written: 21, read: 21, dropped: 0, rejected: 0, waiting: 0 });
    }
  });

  it('push and pop copy from and to any offset, aligned or not', () => {
    const ring = create({ recordSize: 8, capacity: 4 });
    const source = Uint8Array.from({ length: 40 }, (_, i) => i);
    const odd = new Uint8Array(source.buffer, 1, 20); // byteOffset 1: no word view
    expect(ring.push(source, 4)).toBe(true);
    expect(ring.push(source, 3)).toBe(true);
    expect(ring.push(odd, 0)).toBe(true);
    const out = new Uint8Array(24);
    expect(ring.pop(out, 0)).toBe(true);
    expect(ring.pop(out, 9)).toBe(true);
    const unaligned = new Uint8Array(new ArrayBuffer(12), 1, 8);
    expect(ring.pop(unaligned, 0)).toBe(true);
    expect([...out.subarray(0, 8)]).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
    expect([...out.subarray(9, 17)]).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    expect([...unaligned]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("'reject' refuses a push into a full ring and counts it; the record can be pushed later", () => {
    const ring = create({ recordSize: 8, capacity: 2 });
    expect(ring.push(record(8, 1))).toBe(true);
    expect(ring.push(record(8, 2))).toBe(true);
    expect(ring.push(record(8, 3))).toBe(false);
    expect(ring.claim()).toBe(-1);
    expect(ring.stats()).toMatchObject({ written: 2, rejected: 2, dropped: 0, waiting: 2 });
    ring.pop(new Uint8Array(8));
    expect(ring.push(record(8, 3))).toBe(true);
  });

  it("'drop' counts the records it could not take", () => {
    const ring = create({ recordSize: 8, capacity: 2, fullPolicy: 'drop' });
    for (let i = 0; i < 5; i++) ring.push(record(8, i));
    expect(ring.fullPolicy).toBe('drop');
    expect(ring.stats()).toMatchObject({ written: 2, dropped: 3, rejected: 0 });
    const out = new Uint8Array(8);
    ring.pop(out);
    expect(out).toEqual(record(8, 0)); // the oldest stays: the new ones were dropped
  });

  it('claim/commit and peek/release work in place in `words`', () => {
    const ring = create({ recordSize: 16, capacity: 3 });
    for (let i = 0; i < 10; i++) {
      const w = ring.claim();
      expect(w).toBeGreaterThanOrEqual(0);
      ring.words.set([i, i * 2, i * 3, -i | 0], w);
      ring.commit();
      const r = ring.peek();
      expect([...ring.words.subarray(r, r + 4)]).toEqual([i, i * 2, i * 3, -i | 0]);
      ring.release();
    }
    expect(ring.peek()).toBe(-1);
  });

  it('claimRun reserves consecutive slots, up to the end of the storage, with one commit', () => {
    const ring = create({ recordSize: 8, capacity: 5 });
    expect(ring.claimRun(3)).toBe(3);
    expect(ring.runStart).toBe(0);
    for (let k = 0; k < 3; k++) ring.words[ring.runStart + 2 * k] = k;
    expect(ring.readable()).toBe(false); // nothing published before the commit
    ring.commit();
    expect(ring.size).toBe(3);
    expect(ring.drain(() => {}, 2)).toBe(2);
    expect(ring.claimRun(10)).toBe(2); // slots 3 and 4: the run stops at the end
    expect(ring.runStart).toBe(6);
    expect(ring.claimRun(10)).toBe(2); // slots 0 and 1, freed by the drain
    expect(ring.runStart).toBe(0);
    expect(ring.claimRun(1)).toBe(0); // full: counted like a refused claim
    expect(ring.stats().rejected).toBe(1);
    ring.commit();
    const seen: number[] = [];
    ring.drain((words, w) => seen.push(words[w]!));
    expect(seen).toEqual([2, 0, 0, 0, 1]); // slots 3, 4, 0, 1 were not written again
    expect(() => ring.claimRun(0)).toThrow(RangeError);
    expect(() => ring.claimRun(1.5)).toThrow(RangeError);
  });

  it('drain visits records in order, up to a maximum', () => {
    const ring = create({ recordSize: 4, capacity: 8 });
    for (let i = 0; i < 8; i++) {
      ring.words[ring.claim()] = i;
      ring.commit();
    }
    const seen: number[] = [];
    expect(ring.drain((words, w) => seen.push(words[w]!), 3)).toBe(3);
    expect(ring.drain((words, w) => seen.push(words[w]!))).toBe(5);
    expect(seen).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(ring.drain(() => {})).toBe(0);
  });

  it('readiness: poll flags, size, readable and writable', () => {
    const ring = create({ recordSize: 4, capacity: 2 });
    expect(ring.poll()).toBe(POLLOUT | POLLWRNORM);
    ring.push(record(4, 1));
    expect(ring.poll()).toBe(POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM);
    ring.push(record(4, 2));
    expect(ring.poll()).toBe(POLLIN | POLLRDNORM);
    expect(ring.size).toBe(2);
    expect(ring.writable()).toBe(false);
  });

  it('a second object attached to the same buffer sees the same ring', () => {
    const producer = create({ recordSize: 8, capacity: 4 });
    producer.push(record(8, 1));
    const consumer = attachRing(producer.buffer);
    expect(consumer.kind).toBe(kind);
    expect(consumer.capacity).toBe(4);
    const out = new Uint8Array(8);
    expect(consumer.pop(out)).toBe(true);
    expect(out).toEqual(record(8, 1));
    expect(producer.stats().read).toBe(1);
  });

  it('capacity can come from a byte size: 85 records of 48 bytes in 4 KiB', () => {
    const ring = create({ recordSize: 48, ringBytes: 4096 });
    expect(ring.capacity).toBe(85);
    expect(ring.buffer.byteLength).toBe(ringByteLength(kind, 48, 85));
    expect(ring.bytes.byteLength).toBe(85 * 48);
    let n = 0;
    while (ring.push(record(48, n))) n++;
    expect(n).toBe(85);
  });

  it('works over a plain ArrayBuffer, with promise waits in one thread', async () => {
    const ring = create({ recordSize: 8, capacity: 1 + 1, shared: false });
    expect(ring.shared).toBe(false);
    expect(ring.buffer).toBeInstanceOf(ArrayBuffer);
    const ready = ring.waitReadable();
    setTimeout(() => ring.push(record(8, 9)), 1);
    await expect(ready).resolves.toBe(true);
    await expect(ring.waitReadable(0)).resolves.toBe(true);
    ring.push(record(8, 10));
    const room = ring.waitWritable();
    setTimeout(() => ring.pop(new Uint8Array(8)), 1);
    await expect(room).resolves.toBe(true);
    expect(ring.waitReadableSync()).toBe(true); // never blocks unshared
  });

  it('waitReadable times out, and wakes on a push from the same thread', async () => {
    const ring = create({ recordSize: 8, capacity: 2 });
    await expect(ring.waitReadable(5)).resolves.toBe(false);
    expect(ring.waitReadableSync(5)).toBe(false);
    const ready = ring.waitReadable(10_000);
    setTimeout(() => ring.push(record(8, 1)), 2);
    await expect(ready).resolves.toBe(true);
  });

  it('records() yields copies until the ring is closed and empty', async () => {
    const ring = create({ recordSize: 4, capacity: 4 });
    const got: number[] = [];
    const done = (async () => {
      for await (const r of ring.records()) got.push(r[0]!);
    })();
    for (let i = 0; i < 10; i++) {
      while (!ring.push(Uint8Array.of(i, 0, 0, 0))) await ring.waitWritable();
      if (i % 3 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    ring.close();
    await done;
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(ring.closed).toBe(true);
  });

  it('rejects bad geometry and short records', () => {
    expect(() => create({ recordSize: 6, capacity: 4 })).toThrow(RangeError);
    expect(() => create({ recordSize: 0, capacity: 4 })).toThrow(RangeError);
    expect(() => create({ recordSize: 8, capacity: 0 })).toThrow(RangeError);
    expect(() => create({ recordSize: 8 })).toThrow(RangeError);
    expect(() => create({ recordSize: 8, capacity: 2, ringBytes: 16 })).toThrow(RangeError);
    const ring = create({ recordSize: 8, capacity: 2 });
    expect(() => ring.push(new Uint8Array(7))).toThrow(RangeError);
    expect(() => ring.pop(new Uint8Array(8), 1)).toThrow(RangeError);
    expect(ring.stats().written).toBe(0);
  });
});

describe('ring layout', () => {
  it('the control words come first; the multi-producer ring adds two words per slot', () => {
    expect(ringByteLength('spsc', 40, 85)).toBe(RING_HEADER_BYTES + 85 * 40);
    expect(ringByteLength('mpsc', 40, 16)).toBe(RING_HEADER_BYTES + 128 + 16 * 40);
    expect(() => MpscRing.create({ recordSize: 4, capacity: 1 })).toThrow(RangeError);
    expect(SpscRing.create({ recordSize: 4, capacity: 1 }).capacity).toBe(1);
  });

  it('attaching checks what the buffer holds', () => {
    const spsc = SpscRing.create({ recordSize: 4, capacity: 2 });
    expect(() => new MpscRing(spsc.buffer)).toThrow(TypeError);
    expect(() => attachRing(new SharedArrayBuffer(1024))).toThrow(TypeError);
    expect(() => attachRing(new ArrayBuffer(8))).toThrow(TypeError);
  });

  it('a single-slot SPSC ring alternates', () => {
    const ring = SpscRing.create({ recordSize: 4, capacity: 1 });
    for (let i = 0; i < 5; i++) {
      expect(ring.push(Uint8Array.of(i, 0, 0, 0))).toBe(true);
      expect(ring.push(Uint8Array.of(i, 0, 0, 0))).toBe(false);
      const out = new Uint8Array(4);
      expect(ring.pop(out)).toBe(true);
      expect(out[0]).toBe(i);
    }
  });
});
