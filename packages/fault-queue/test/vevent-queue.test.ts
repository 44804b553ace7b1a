import {
  EINVAL,
  ESPIPE,
  IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS as LOST,
  veventHeader,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { INT_MAX, POLLIN, POLLRDNORM, VeventQueue } from '../src/index.js';

/** A selftest vEVENT payload: the 4-byte virt_id. */
const virtId = (id: number): Uint8Array => new Uint8Array(new Uint32Array([id]).buffer);

interface Item {
  flags: number;
  sequence: number;
  data: number[];
}

/** Walks what a read returned: headers, and the payload after each normal one. */
function parse(buf: Uint8Array, bytes: number, payloadSize: number): Item[] {
  const items: Item[] = [];
  for (let at = 0; at < bytes; ) {
    const { flags, sequence } = veventHeader.decode(buf, at);
    at += 8;
    const size = flags & LOST ? 0 : payloadSize;
    items.push({ flags, sequence, data: [...buf.subarray(at, at + size)] });
    at += size;
  }
  return items;
}

function readAll(q: VeventQueue, size = 4096): Item[] {
  const buf = new Uint8Array(size);
  return parse(buf, q.read(buf), q.payloadSize);
}

const selftest = (depth: number, firstSequence?: number) =>
  new VeventQueue({
    type: IOMMU_VEVENTQ_TYPE_SELFTEST,
    depth,
    ...(firstSequence === undefined ? {} : { firstSequence }),
  });

describe('VeventQueue: records', () => {
  it('payload sizes follow the type: SMMUv3 32, Tegra241 CMDQV 16, selftest 4', () => {
    expect(new VeventQueue({ type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 1 }).recordSize).toBe(40);
    expect(new VeventQueue({ type: IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV, depth: 1 }).recordSize).toBe(
      24,
    );
    expect(selftest(1).recordSize).toBe(12);
    expect(() => new VeventQueue({ type: 0xdead, depth: 1 })).toThrow(RangeError);
    expect(new VeventQueue({ type: 0xdead, depth: 1, payloadSize: 8 }).recordSize).toBe(16);
    expect(() => selftest(0)).toThrow(RangeError);
    expect(() => selftest(1, INT_MAX + 1)).toThrow(RangeError);
  });

  it('one event reads as header {flags 0, sequence 0} and its payload', () => {
    const q = selftest(4);
    expect(q.report(virtId(0x99))).toBe(0);
    expect(readAll(q)).toEqual([{ flags: 0, sequence: 0, data: [0x99, 0, 0, 0] }]);
    expect(q.numEvents).toBe(0);
  });

  it('an SMMUv3 event carries its 32 bytes unchanged', () => {
    const q = new VeventQueue({ type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 2 });
    const evt = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
    q.report(evt);
    const buf = new Uint8Array(40);
    expect(q.read(buf)).toBe(40);
    expect([...buf.subarray(8)]).toEqual([...evt]);
  });

  it('sequence numbers count up from 0 and wrap from INT_MAX to 0', () => {
    const q = selftest(8, INT_MAX - 2);
    for (let i = 0; i < 5; i++) q.report(virtId(i));
    expect(readAll(q).map((e) => e.sequence)).toEqual([INT_MAX - 2, INT_MAX - 1, INT_MAX, 0, 1]);
    expect(q.nextSequence).toBe(2);
  });

  it('a marker takes a sequence number too, and wraps the same way', () => {
    const q = selftest(1, INT_MAX);
    q.report(virtId(1)); // INT_MAX
    q.report(virtId(2)); // lost: marker 0
    q.report(virtId(3)); // lost: marker 1
    expect(readAll(q)).toEqual([
      { flags: 0, sequence: INT_MAX, data: [1, 0, 0, 0] },
      { flags: LOST, sequence: 1, data: [] },
    ]);
  });

  it('a payload of the wrong size is EINVAL and takes no sequence number', () => {
    const q = selftest(2);
    expect(q.report(new Uint8Array(0))).toBe(-EINVAL);
    expect(q.report(new Uint8Array(5))).toBe(-EINVAL);
    expect(q.report(null as unknown as Uint8Array)).toBe(-EINVAL);
    expect(q.nextSequence).toBe(0);
    expect(q.readable()).toBe(false);
  });
});

describe('VeventQueue: depth and lost events', () => {
  it('depth 2 and 3 events: two events, then a LOST_EVENTS header with no data (the selftest)', () => {
    const q = selftest(2);
    for (let i = 1; i <= 3; i++) expect(q.report(virtId(i))).toBe(0);
    expect(q.numEvents).toBe(2);
    expect(q.stats().lost).toBe(1);
    // the selftest reads three 12-byte slots
    const buf = new Uint8Array(36);
    expect(q.read(buf)).toBe(32);
    expect(parse(buf, 32, 4)).toEqual([
      { flags: 0, sequence: 0, data: [1, 0, 0, 0] },
      { flags: 0, sequence: 1, data: [2, 0, 0, 0] },
      { flags: LOST, sequence: 2, data: [] },
    ]);
    q.report(virtId(4));
    expect(readAll(q)).toEqual([{ flags: 0, sequence: 3, data: [4, 0, 0, 0] }]);
  });

  it('k losses in a row: the marker moves to the tail with the latest sequence', () => {
    const q = selftest(1);
    for (let i = 0; i < 5; i++) q.report(virtId(i)); // 1 queued, 4 lost
    expect(q.stats()).toMatchObject({ queued: 1, lost: 4 });
    expect(readAll(q).map((e) => [e.flags, e.sequence])).toEqual([
      [0, 0],
      [LOST, 4],
    ]);
  });

  it('an event arriving while the marker is the tail removes it: the gap shows the loss', () => {
    const q = selftest(1);
    q.report(virtId(1)); // seq 0
    q.report(virtId(2)); // lost, marker seq 1
    const buf = new Uint8Array(12);
    expect(q.read(buf)).toBe(12); // the event, not the marker: no room
    expect(q.lostEventsPending).toBe(true);
    q.report(virtId(3)); // seq 2, marker removed
    expect(q.lostEventsPending).toBe(false);
    expect(readAll(q)).toEqual([{ flags: 0, sequence: 2, data: [3, 0, 0, 0] }]);
  });

  it('the marker does not count toward the depth; reading frees room', () => {
    const q = selftest(2);
    q.report(virtId(1));
    q.report(virtId(2));
    q.report(virtId(3)); // lost
    expect(q.read(new Uint8Array(12))).toBe(12);
    expect(q.numEvents).toBe(1);
    q.report(virtId(4)); // fits: depth 2, one waiting
    expect(q.stats()).toMatchObject({ queued: 3, lost: 1 });
    expect(readAll(q).map((e) => e.sequence)).toEqual([1, 3]);
  });
});

describe('VeventQueue: read', () => {
  it('a nonzero position is ESPIPE; any length is accepted', () => {
    const q = selftest(2);
    q.report(virtId(1));
    expect(q.read(new Uint8Array(12), 1)).toBe(-ESPIPE);
    expect(q.read(new Uint8Array(13))).toBe(12);
  });

  it('a read that fits nothing returns 0 and keeps the event; a marker needs 8 bytes', () => {
    const q = selftest(1);
    q.report(virtId(1));
    q.report(virtId(2)); // marker
    for (const n of [0, 1, 7, 8, 11]) expect(q.read(new Uint8Array(n))).toBe(0);
    expect(q.numEvents).toBe(1);
    expect(q.read(new Uint8Array(19))).toBe(12); // event, then 7 bytes: too few for the marker
    expect(q.read(new Uint8Array(7))).toBe(0);
    const buf = new Uint8Array(8);
    expect(q.read(buf)).toBe(8);
    expect(veventHeader.decode(buf)).toEqual({ flags: LOST, sequence: 1 });
    expect(q.read(buf)).toBe(0);
  });

  it('a header and its payload are never split across reads', () => {
    const q = new VeventQueue({ type: IOMMU_VEVENTQ_TYPE_ARM_SMMUV3, depth: 4 });
    for (let i = 0; i < 3; i++) q.report(new Uint8Array(32).fill(i + 1));
    expect(q.read(new Uint8Array(79))).toBe(40);
    expect(q.read(new Uint8Array(80))).toBe(80);
  });

  it('empty reads 0 without blocking; poll and waitReadable follow readiness', async () => {
    const q = selftest(1);
    expect(q.read(new Uint8Array(64))).toBe(0);
    expect(q.poll()).toBe(0);
    const ready = q.waitReadable();
    q.report(virtId(1));
    await expect(ready).resolves.toBe(true);
    expect(q.poll()).toBe(POLLIN | POLLRDNORM);
    q.read(new Uint8Array(64));
    await expect(q.waitReadable(5)).resolves.toBe(false);
  });

  it('keeps order and content while its storage grows past the first slots, wrapped', () => {
    const q = selftest(2000);
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 7 + round; i++) q.report(virtId(next++));
      const buf = new Uint8Array(12 * 5);
      for (const e of parse(buf, q.read(buf), 4)) {
        expect(e.sequence).toBe(expected);
        expect(e.data[0]).toBe(expected & 0xff);
        expected++;
      }
    }
    for (const e of readAll(q, 1 << 16)) expect(e.sequence).toBe(expected++);
    expect(expected).toBe(next);
    expect(q.stats()).toMatchObject({ queued: next, lost: 0, eventsRead: next });
  });

  it('clear frees everything (destroy)', () => {
    const q = selftest(1);
    q.report(virtId(1));
    q.report(virtId(2));
    expect(q.clear()).toBe(1);
    expect(q.readable()).toBe(false);
    expect(q.read(new Uint8Array(64))).toBe(0);
  });
});
