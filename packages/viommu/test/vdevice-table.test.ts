/**
 * VdeviceTable: the vIOMMU's virt_id → device array (viommu->vdevs). A
 * virt_id is used once per vIOMMU, whichever endpoint it names; removing a
 * vDEVICE frees every id it held. Checked case by case, then against a plain
 * Map model under random sequences of inserts, removals and endpoint sets.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type VdeviceEntry, VdeviceTable } from '../src/index.js';

describe('VdeviceTable: insert, find, remove', () => {
  it('insert gives an entry found by its virt_id (endpoint 0) and by its device', () => {
    const t = new VdeviceTable<string>();
    const a = t.insert('a', 0x10n);
    expect(a).not.toBe('taken');
    const entry = a as VdeviceEntry<string>;
    expect(entry).toMatchObject({ device: 'a', virtId: 0x10n });
    expect(t.find(0x10n)).toEqual({ entry, endpoint: 0 });
    expect(t.ofDevice('a')).toBe(entry);
    expect(t.size).toBe(1);
    expect(entry.endpoints()).toEqual([{ index: 0, virtId: 0x10n }]);
  });

  it('a virt_id already in use is taken, whatever device asks, and nothing changes', () => {
    const t = new VdeviceTable<string>();
    const a = t.insert('a', 7n) as VdeviceEntry<string>;
    expect(t.insert('b', 7n)).toBe('taken');
    expect(t.insert('a', 7n)).toBe('taken');
    expect(t.size).toBe(1);
    expect(t.ofDevice('b')).toBeUndefined();
    expect(t.find(7n)?.entry).toBe(a);
  });

  it('virt_ids are 64-bit: 0 and 2^64 - 1 are ids like any other', () => {
    const t = new VdeviceTable<string>();
    const max = (1n << 64n) - 1n;
    expect(t.insert('a', 0n)).not.toBe('taken');
    expect(t.insert('b', max)).not.toBe('taken');
    expect(t.find(max)?.entry.device).toBe('b');
    expect(t.find(0n)?.entry.device).toBe('a');
    expect(t.find(1n)).toBeUndefined();
  });

  it('remove frees the virt_id and every endpoint id; the ids can be used again', () => {
    const t = new VdeviceTable<string>();
    const a = t.insert('a', 0x10n) as VdeviceEntry<string>;
    expect(t.setEndpoint(a, 1, 0x11n)).toBe('ok');
    expect(t.setEndpoint(a, 2, 0x12n)).toBe('ok');
    t.remove(a);
    expect(t.size).toBe(0);
    for (const id of [0x10n, 0x11n, 0x12n]) expect(t.find(id)).toBeUndefined();
    expect(t.ofDevice('a')).toBeUndefined();
    expect(a.extra.size).toBe(0);
    const b = t.insert('b', 0x11n) as VdeviceEntry<string>;
    expect(t.find(0x11n)).toEqual({ entry: b, endpoint: 0 });
  });

  it('removing an entry twice, or one no longer in the table, changes nothing', () => {
    const t = new VdeviceTable<string>();
    const a = t.insert('a', 1n) as VdeviceEntry<string>;
    t.remove(a);
    const again = t.insert('a', 1n) as VdeviceEntry<string>;
    t.remove(a); // the stale entry: the device has a new one now
    expect(t.ofDevice('a')).toBe(again);
    expect(t.find(1n)?.entry).toBe(again);
    t.remove(again);
    t.remove(again);
    expect(t.size).toBe(0);
  });

  it('entries() lists the vDEVICEs in virt_id order', () => {
    const t = new VdeviceTable<string>();
    for (const [d, id] of [
      ['c', 30n],
      ['a', 5n],
      ['b', 1n << 40n],
      ['d', 6n],
    ] as const) {
      t.insert(d, id);
    }
    expect(t.entries().map((e) => [e.device, e.virtId])).toEqual([
      ['a', 5n],
      ['d', 6n],
      ['c', 30n],
      ['b', 1n << 40n],
    ]);
  });
});

describe('VdeviceTable: endpoints (the multi-SID extension)', () => {
  it('setEndpoint names endpoint i; find says which endpoint an id is', () => {
    const t = new VdeviceTable<string>();
    const a = t.insert('a', 0x100n) as VdeviceEntry<string>;
    expect(t.setEndpoint(a, 2, 0x102n)).toBe('ok');
    expect(t.setEndpoint(a, 1, 0x101n)).toBe('ok');
    expect(t.find(0x101n)).toEqual({ entry: a, endpoint: 1 });
    expect(t.find(0x102n)).toEqual({ entry: a, endpoint: 2 });
    // endpoints() is sorted by index whatever the order they were set in.
    expect(a.endpoints()).toEqual([
      { index: 0, virtId: 0x100n },
      { index: 1, virtId: 0x101n },
      { index: 2, virtId: 0x102n },
    ]);
  });

  it('an id in use anywhere in the vIOMMU is taken: another virt_id, another endpoint, its own virt_id', () => {
    const t = new VdeviceTable<string>();
    const a = t.insert('a', 0x100n) as VdeviceEntry<string>;
    const b = t.insert('b', 0x200n) as VdeviceEntry<string>;
    expect(t.setEndpoint(b, 1, 0x201n)).toBe('ok');
    expect(t.setEndpoint(a, 1, 0x200n)).toBe('taken'); // b's virt_id
    expect(t.setEndpoint(a, 1, 0x201n)).toBe('taken'); // b's endpoint
    expect(t.setEndpoint(a, 1, 0x100n)).toBe('taken'); // a's own endpoint 0
    expect(t.setEndpoint(a, 1, 0x101n)).toBe('ok');
    expect(t.setEndpoint(a, 2, 0x101n)).toBe('taken'); // a's endpoint 1
    // A new vDEVICE cannot take an endpoint's id either.
    expect(t.insert('c', 0x201n)).toBe('taken');
    expect(a.endpoints().map((e) => e.virtId)).toEqual([0x100n, 0x101n]);
  });

  it('setting an endpoint to the id it has is fine; a new id replaces the old, which is freed', () => {
    const t = new VdeviceTable<string>();
    const a = t.insert('a', 1n) as VdeviceEntry<string>;
    expect(t.setEndpoint(a, 1, 2n)).toBe('ok');
    expect(t.setEndpoint(a, 1, 2n)).toBe('ok');
    expect(t.setEndpoint(a, 1, 3n)).toBe('ok');
    expect(t.find(2n)).toBeUndefined();
    expect(t.find(3n)).toEqual({ entry: a, endpoint: 1 });
    expect(a.extra).toEqual(new Map([[1, 3n]]));
    const b = t.insert('b', 2n) as VdeviceEntry<string>;
    expect(t.find(2n)?.entry).toBe(b);
  });
});

// ---- the model test ---------------------------------------------------------------------

type Op =
  | { kind: 'insert'; device: string; id: bigint }
  | { kind: 'remove'; device: string }
  | { kind: 'set'; device: string; index: number; id: bigint };

const devices = ['a', 'b', 'c', 'd'];
const ids = fc.bigInt({ min: 0n, max: 9n });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), device: fc.constantFrom(...devices), id: ids }),
  fc.record({ kind: fc.constant('remove' as const), device: fc.constantFrom(...devices) }),
  fc.record({
    kind: fc.constant('set' as const),
    device: fc.constantFrom(...devices),
    index: fc.integer({ min: 1, max: 3 }),
    id: ids,
  }),
);

/** The reference: one Map of id → (device, endpoint) and one of device → its ids by endpoint. */
class MapModel {
  readonly owner = new Map<bigint, { device: string; endpoint: number }>();
  readonly byDevice = new Map<string, Map<number, bigint>>();

  insert(device: string, id: bigint): 'ok' | 'taken' {
    if (this.owner.has(id)) return 'taken';
    this.owner.set(id, { device, endpoint: 0 });
    this.byDevice.set(device, new Map([[0, id]]));
    return 'ok';
  }

  remove(device: string): void {
    for (const id of this.byDevice.get(device)?.values() ?? []) this.owner.delete(id);
    this.byDevice.delete(device);
  }

  set(device: string, index: number, id: bigint): 'ok' | 'taken' {
    const mine = this.byDevice.get(device) as Map<number, bigint>;
    const o = this.owner.get(id);
    if (o !== undefined && !(o.device === device && o.endpoint === index)) return 'taken';
    const old = mine.get(index);
    if (old !== undefined) this.owner.delete(old);
    mine.set(index, id);
    this.owner.set(id, { device, endpoint: index });
    return 'ok';
  }
}

describe('VdeviceTable against a Map model', () => {
  it('every random sequence of operations gives the same answers and the same state', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const table = new VdeviceTable<string>();
        const model = new MapModel();
        for (const o of ops) {
          const entry = table.ofDevice(o.device);
          if (o.kind === 'insert') {
            // The core allows one vDEVICE per device; the table is asked only then.
            if (entry !== undefined) continue;
            const got = table.insert(o.device, o.id);
            expect(got === 'taken' ? 'taken' : 'ok').toBe(model.insert(o.device, o.id));
          } else if (o.kind === 'remove') {
            if (entry !== undefined) table.remove(entry);
            model.remove(o.device);
          } else {
            if (entry === undefined) continue;
            expect(table.setEndpoint(entry, o.index, o.id)).toBe(
              model.set(o.device, o.index, o.id),
            );
          }
          // Same state: every id's owner, every device's endpoints, the size and the order.
          for (let id = 0n; id <= 9n; id++) {
            const hit = table.find(id);
            const want = model.owner.get(id);
            expect(
              hit === undefined ? undefined : { device: hit.entry.device, endpoint: hit.endpoint },
            ).toEqual(want);
          }
          expect(table.size).toBe(model.byDevice.size);
          for (const d of devices) {
            const e = table.ofDevice(d);
            const want = model.byDevice.get(d);
            expect(
              e === undefined ? undefined : new Map(e.endpoints().map((p) => [p.index, p.virtId])),
            ).toEqual(want);
          }
          const order = [...model.byDevice.entries()]
            .map(([d, m]) => [d, m.get(0) as bigint] as const)
            .sort((x, y) => (x[1] < y[1] ? -1 : 1));
          expect(table.entries().map((e) => [e.device, e.virtId])).toEqual(order);
        }
      }),
      { numRuns: 300 },
    );
  });
});
