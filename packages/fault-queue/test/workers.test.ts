// Rings between worker threads: producers in some workers, the consumer in
// another, every record carrying its producer id and sequence number, checked
// by the consumer. The workers run the sources through tsx (see
// bench/workers/ts-worker.mjs), so no build is needed first.
import { describe, expect, it } from 'vitest';
import { runTraffic } from '../bench/workers/ring-traffic.js';
import { MpscRing, SpscRing } from '../src/index.js';

describe('rings across worker threads', () => {
  it('stress: 4 producer workers and 1 consumer worker move 10 million records, none lost or duplicated', async () => {
    const ring = MpscRing.create({ recordSize: 40, capacity: 4096 });
    const report = await runTraffic(ring.buffer as SharedArrayBuffer, 4, 2_500_000, {
      stallMs: 20_000,
    });
    expect(report).toMatchObject({
      received: 10_000_000,
      duplicated: 0,
      lost: 0,
      torn: 0,
      stalled: false,
    });
    const stats = ring.stats();
    expect(stats).toMatchObject({ written: 10_000_000, read: 10_000_000, dropped: 0, waiting: 0 });
  }, 120_000);

  it('SPSC: one producer worker and one consumer worker, a small ring that fills often', async () => {
    const ring = SpscRing.create({ recordSize: 48, ringBytes: 4096 });
    expect(ring.capacity).toBe(85);
    const report = await runTraffic(ring.buffer as SharedArrayBuffer, 1, 300_000);
    expect(report).toMatchObject({ received: 300_000, duplicated: 0, lost: 0, torn: 0 });
    expect(ring.stats()).toMatchObject({ written: 300_000, read: 300_000, waiting: 0 });
  }, 60_000);

  it("MPSC with 'drop': every record is either delivered or counted as dropped", async () => {
    const ring = MpscRing.create({ recordSize: 16, capacity: 64, fullPolicy: 'drop' });
    // Producers that never wait: each record is tried once, lands or is dropped.
    const report = await runTraffic(ring.buffer as SharedArrayBuffer, 2, 300_000, { once: true });
    const stats = ring.stats();
    expect(report).toMatchObject({ duplicated: 0, torn: 0, stalled: false });
    expect(report.received).toBe(stats.read);
    expect(report.lost).toBe(stats.dropped); // the gaps the consumer saw are the drops counted
    expect(stats.read + stats.dropped).toBe(600_000);
    expect(stats).toMatchObject({ written: stats.read, rejected: 0, waiting: 0 });
  }, 60_000);
});
