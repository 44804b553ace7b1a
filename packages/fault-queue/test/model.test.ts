// Model tests: random command sequences run against the real queues and
// against plain-array models written as directly as the kernel's lists; every
// return value, every byte read and every counter must agree.
import {
  EINVAL,
  ESPIPE,
  faultRecord,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE as LAST,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS as LOST,
  pageResponseRecord,
} from '@iommufd-sim/uapi-types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type FullPolicy,
  INT_MAX,
  IopfQueue,
  type IopfRequest,
  MpscRing,
  type PageResponse,
  SpscRing,
  VeventQueue,
} from '../src/index.js';

// ---- rings ---------------------------------------------------------------------

type RingCommand =
  | { op: 'push'; fill: number }
  | { op: 'claim'; fill: number }
  | { op: 'run'; fill: number; max: number }
  | { op: 'pop' }
  | { op: 'drain'; max: number };

const ringCommand: fc.Arbitrary<RingCommand> = fc.oneof(
  fc.record({ op: fc.constant('push' as const), fill: fc.nat(255) }),
  fc.record({ op: fc.constant('claim' as const), fill: fc.nat(255) }),
  fc.record({
    op: fc.constant('run' as const),
    fill: fc.nat(255),
    max: fc.integer({ min: 1, max: 6 }),
  }),
  fc.record({ op: fc.constant('pop' as const) }),
  fc.record({ op: fc.constant('drain' as const), max: fc.integer({ min: 1, max: 12 }) }),
);

const recordOf = (size: number, fill: number): number[] =>
  Array.from({ length: size }, (_, i) => (fill + i) & 0xff);

describe('rings against a plain array queue', () => {
  for (const kind of ['spsc', 'mpsc'] as const) {
    it(`${kind}: same records, same order, same counters`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: kind === 'mpsc' ? 2 : 1, max: 9 }),
          fc.constantFrom(4, 8, 40, 48),
          fc.constantFrom<FullPolicy>('reject', 'drop'),
          fc.array(ringCommand, { maxLength: 120 }),
          (capacity, recordSize, fullPolicy, commands) => {
            const options = { capacity, recordSize, fullPolicy };
            const ring = kind === 'spsc' ? SpscRing.create(options) : MpscRing.create(options);
            const model: number[][] = [];
            const counts = { written: 0, read: 0, dropped: 0, rejected: 0 };
            const refuse = (): void => {
              if (fullPolicy === 'drop') counts.dropped++;
              else counts.rejected++;
            };
            for (const c of commands) {
              if (c.op === 'push' || c.op === 'claim') {
                const rec = recordOf(recordSize, c.fill);
                const fits = model.length < capacity;
                if (c.op === 'push') {
                  expect(ring.push(Uint8Array.from(rec))).toBe(fits);
                } else {
                  const w = ring.claim();
                  expect(w >= 0).toBe(fits);
                  if (w >= 0) {
                    ring.bytes.set(rec, 4 * w);
                    ring.commit();
                  }
                }
                if (fits) {
                  model.push(rec);
                  counts.written++;
                } else refuse();
              } else if (c.op === 'run') {
                // A run is as long as asked, as room allows, and up to the storage's end.
                const slot = counts.written % capacity;
                const expected = Math.min(c.max, capacity - model.length, capacity - slot);
                const n = ring.claimRun(c.max);
                expect(n).toBe(expected);
                if (n === 0) refuse();
                for (let k = 0; k < n; k++) {
                  const rec = recordOf(recordSize, c.fill + k);
                  ring.bytes.set(rec, 4 * (ring.runStart + k * ring.wordsPerRecord));
                  model.push(rec);
                  counts.written++;
                }
                ring.commit();
              } else if (c.op === 'pop') {
                const out = new Uint8Array(recordSize);
                const expected = model.shift();
                expect(ring.pop(out)).toBe(expected !== undefined);
                if (expected !== undefined) {
                  expect([...out]).toEqual(expected);
                  counts.read++;
                }
              } else {
                const seen: number[][] = [];
                const n = ring.drain((_words, w) => {
                  seen.push([...ring.bytes.subarray(4 * w, 4 * w + recordSize)]);
                }, c.max);
                const expected = model.splice(0, c.max);
                expect(n).toBe(expected.length);
                expect(seen).toEqual(expected);
                counts.read += n;
              }
              expect(ring.size).toBe(model.length);
              expect(ring.readable()).toBe(model.length > 0);
              expect(ring.stats()).toEqual({ ...counts, waiting: model.length });
            }
          },
        ),
        { numRuns: 300 },
      );
    });
  }
});

// ---- IOPF queue ----------------------------------------------------------------

type IopfCommand =
  | { op: 'enqueue'; dev: number; grpid: number; last: boolean; pasid: number; addr: number }
  | { op: 'read'; records: number; skew: number }
  | { op: 'write'; picks: Array<{ pick: number; code: number; bogus: boolean }> }
  | { op: 'teardown'; dev: number | undefined };

const iopfCommand: fc.Arbitrary<IopfCommand> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('enqueue' as const),
      dev: fc.integer({ min: 1, max: 2 }),
      grpid: fc.integer({ min: 0, max: 2 }),
      last: fc.boolean(),
      pasid: fc.integer({ min: 0, max: 3 }),
      addr: fc.nat(0xfffff),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('read' as const),
      records: fc.integer({ min: 0, max: 6 }),
      skew: fc.constantFrom(0, 0, 0, 1, 39),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('write' as const),
      picks: fc.array(
        fc.record({
          pick: fc.nat(9),
          code: fc.constantFrom(0, 1, 1, 0, 2),
          bogus: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
        }),
        { maxLength: 3 },
      ),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('teardown' as const),
      dev: fc.constantFrom(1, 2, undefined),
    }),
  },
);

interface ModelGroup {
  dev: number;
  reqs: IopfRequest[];
  cookie: number;
}

/** The fault object and the device partial lists, as lists, the way the kernel keeps them. */
class IopfModel {
  partial: Array<{ dev: number; req: IopfRequest }> = [];
  deliver: ModelGroup[] = [];
  awaiting = new Map<number, ModelGroup>();
  responses: Array<[number, number, number, number, string]> = [];

  enqueue(dev: number, req: IopfRequest): void {
    if (!(req.flags & LAST)) {
      this.partial.push({ dev, req });
      return;
    }
    const mine = this.partial.filter((p) => p.dev === dev && p.req.grpid === req.grpid);
    this.partial = this.partial.filter((p) => !mine.includes(p));
    this.deliver.push({ dev, reqs: [...mine.map((p) => p.req), req], cookie: 0 });
  }

  read(count: number): { rc: number; records: unknown[] } {
    if (count % 40 !== 0) return { rc: -ESPIPE, records: [] };
    const records: unknown[] = [];
    let done = 0;
    for (;;) {
      const group = this.deliver[0];
      if (group === undefined || group.reqs.length * 40 > count - done) break;
      this.deliver.shift();
      let cookie = 1;
      while (this.awaiting.has(cookie)) cookie++;
      group.cookie = cookie;
      this.awaiting.set(cookie, group);
      for (const r of group.reqs) {
        records.push({ ...r, dev_id: group.dev, __reserved: 0, length: 0, cookie });
        done += 40;
      }
    }
    return { rc: done, records };
  }

  write(pairs: Array<[number, number]>): number {
    let done = 0;
    for (const [cookie, code] of pairs) {
      if (code !== 0 && code !== 1) return done === 0 ? -EINVAL : done;
      const group = this.awaiting.get(cookie);
      if (group === undefined) return done === 0 ? -EINVAL : done;
      this.awaiting.delete(cookie);
      this.answer(group, code, 'write');
      done += 8;
    }
    return done;
  }

  teardown(dev: number | undefined): number {
    const pick = (g: ModelGroup) => dev === undefined || g.dev === dev;
    const unread = this.deliver.filter(pick);
    this.deliver = this.deliver.filter((g) => !pick(g));
    const read = [...this.awaiting.entries()]
      .sort((a, b) => a[0] - b[0])
      .filter(([, g]) => pick(g));
    for (const [cookie] of read) this.awaiting.delete(cookie);
    for (const g of [...unread, ...read.map(([, g]) => g)]) this.answer(g, 1, 'teardown');
    return unread.length + read.length;
  }

  private answer(g: ModelGroup, code: number, cause: string): void {
    const last = g.reqs[g.reqs.length - 1] as IopfRequest;
    this.responses.push([g.dev, last.grpid, code, g.cookie, cause]);
  }
}

describe('IopfQueue against a list model', () => {
  it('same records, cookies, return values and responses', () => {
    fc.assert(
      fc.property(fc.array(iopfCommand, { maxLength: 80 }), (commands) => {
        const responses: PageResponse[] = [];
        const queue = new IopfQueue({ onResponse: (r) => responses.push(r) });
        const model = new IopfModel();
        for (const c of commands) {
          if (c.op === 'enqueue') {
            const req: IopfRequest = {
              flags: c.last ? LAST : 0,
              pasid: c.pasid,
              grpid: c.grpid,
              perm: 1,
              addr: BigInt(c.addr) << 12n,
            };
            expect(queue.enqueue(c.dev, req)).toBe(0);
            model.enqueue(c.dev, req);
          } else if (c.op === 'read') {
            const count = c.records * 40 + c.skew;
            const buf = new Uint8Array(count);
            const rc = queue.read(buf);
            const expected = model.read(count);
            expect(rc).toBe(expected.rc);
            const got = [];
            for (let at = 0; at < Math.max(rc, 0); at += 40) got.push(faultRecord.decode(buf, at));
            expect(got).toEqual(expected.records);
          } else if (c.op === 'write') {
            const cookies = [...model.awaiting.keys()];
            const pairs = c.picks.map(({ pick, code, bogus }): [number, number] => [
              bogus || cookies.length === 0
                ? 100 + pick
                : (cookies[pick % cookies.length] as number),
              code,
            ]);
            const bytes = new Uint8Array(8 * pairs.length);
            pairs.forEach(([cookie, code], i) => {
              pageResponseRecord.encode({ cookie, code }, bytes, 8 * i);
            });
            expect(queue.write(bytes)).toBe(model.write(pairs));
          } else {
            expect(queue.answerPending(c.dev)).toBe(model.teardown(c.dev));
          }
          expect(responses.map((r) => [r.deviceId, r.grpid, r.code, r.cookie, r.cause])).toEqual(
            model.responses,
          );
          expect(queue.readable()).toBe(model.deliver.length > 0);
          expect(queue.stats()).toMatchObject({
            partial: model.partial.length,
            groupsQueued: model.deliver.length,
            groupsAwaitingResponse: model.awaiting.size,
          });
        }
      }),
      { numRuns: 300 },
    );
  });
});

// ---- vEVENTQ -------------------------------------------------------------------

type VeventCommand = { op: 'report'; id: number } | { op: 'read'; bytes: number };

const veventCommand: fc.Arbitrary<VeventCommand> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('report' as const), id: fc.nat(255) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('read' as const),
      bytes: fc.integer({ min: 0, max: 60 }),
    }),
  },
);

/** The kernel's deliver list, with the one marker node moved to the tail on a loss. */
class VeventModel {
  list: Array<{ lost: boolean; seq: number; id: number }> = [];
  numEvents = 0;
  sequence: number;
  constructor(
    readonly depth: number,
    first: number,
  ) {
    this.sequence = first;
  }

  report(id: number): void {
    const tail = this.list[this.list.length - 1];
    if (tail?.lost) this.list.pop();
    const lost = this.numEvents === this.depth;
    if (!lost) this.numEvents++;
    this.list.push({ lost, seq: this.sequence, id });
    this.sequence = this.sequence === INT_MAX ? 0 : this.sequence + 1;
  }

  read(count: number): number[] {
    const out: number[] = [];
    for (;;) {
      const item = this.list[0];
      if (item === undefined || count - out.length < 8) break;
      if (!item.lost && 12 > count - out.length) break;
      this.list.shift();
      const le = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
      out.push(...le(item.lost ? LOST : 0), ...le(item.seq));
      if (!item.lost) {
        out.push(...le(item.id));
        this.numEvents--;
      }
    }
    return out;
  }
}

describe('VeventQueue against the kernel’s list', () => {
  it('same bytes, same sequence numbers, same losses', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.constantFrom(0, INT_MAX - 3),
        fc.array(veventCommand, { maxLength: 100 }),
        (depth, first, commands) => {
          const q = new VeventQueue({
            type: IOMMU_VEVENTQ_TYPE_SELFTEST,
            depth,
            firstSequence: first,
          });
          const model = new VeventModel(depth, first);
          for (const c of commands) {
            if (c.op === 'report') {
              expect(q.report(Uint8Array.of(c.id, 0, 0, 0))).toBe(0);
              model.report(c.id);
            } else {
              const buf = new Uint8Array(c.bytes);
              const n = q.read(buf);
              expect([...buf.subarray(0, n)]).toEqual(model.read(c.bytes));
            }
            expect(q.numEvents).toBe(model.numEvents);
            expect(q.readable()).toBe(model.list.length > 0);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
