import { EEXIST, EINVAL, ENOMEM } from '@iommufd-sim/uapi-types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameAllocator, PhysicalMemory } from '../src/memory/index.js';
import {
  MOCK_HUGE_PAGE_SIZE,
  MOCK_IO_PAGE_SIZE,
  MOCK_PFN_DIRTY_IOVA,
  MOCK_PFN_HUGE_IOVA,
  MOCK_PFN_START_IOVA,
  MockPageTable,
} from '../src/pagetable/mock.js';

const S = MOCK_IO_PAGE_SIZE;
const M = 1 << 20;

function setup(size = 64 * M) {
  const memory = new PhysicalMemory();
  const allocator = new FrameAllocator(memory, { base: 2 ** 36, size });
  return { memory, allocator };
}

describe('mock page table: slots as selftest.c 6.17 stores them', () => {
  it('holds the 2 KiB pfn with START/LAST on the first and last slot of a map call', () => {
    const { memory, allocator } = setup();
    const t = new MockPageTable({ allocator });
    expect(t.map(16 * M, 0x4000_0000, 4 * S, 3)).toBe(4 * S);
    const flags = [0, 1, 2, 3].map((i) => t.slot(16 * M + i * S)?.startOrLast);
    expect(flags).toEqual([true, false, false, true]);
    expect(t.slot(16 * M)?.value).toBe(MOCK_PFN_START_IOVA | BigInt(0x4000_0000 / S));
    expect(t.slot(16 * M + S)?.value).toBe(BigInt(0x4000_0000 / S + 1));
    // A table dump is the model: the level-1 entry is the kernel's value.
    const leaf = t.walk(16 * M).at(-1);
    expect(leaf?.kind).toBe('leaf');
    expect(memory.readU64(leaf?.entryAddress as number)).toBe(t.slot(16 * M)?.value);
    expect(t.walk(16 * M).map((s) => s.level)).toEqual([5, 4, 3, 2, 1]);
    expect(t.translate(16 * M + S + 5).pa).toBe(0x4000_0000 + S + 5);
    expect(t.physicalAddress(16 * M + 3 * S)).toBe(0x4000_0000 + 3 * S);
    expect(t.physicalAddress(16 * M + 4 * S)).toBe(-1);
  });

  it('splits a map the way iommu_pgsize does and flags 1 MiB pages HUGE', () => {
    const { allocator } = setup();
    const t = new MockPageTable({ allocator, hugeIova: true });
    // [1M-4K, 3M+2K): a 2 KiB run to the 1 MiB boundary, two 1 MiB pages, a 2 KiB tail.
    expect(t.map(M - 2 * S, 8 * M - 2 * S, 2 * M + 3 * S, 3)).toBe(2 * M + 3 * S);
    expect(t.slot(M - 2 * S)?.startOrLast).toBe(true);
    expect(t.slot(M - S)?.startOrLast).toBe(true);
    expect(t.slot(M)?.value).toBe(MOCK_PFN_START_IOVA | MOCK_PFN_HUGE_IOVA | BigInt((8 * M) / S));
    expect(t.slot(M + S)?.huge).toBe(true);
    expect(t.slot(M + S)?.startOrLast).toBe(false);
    expect(t.slot(3 * M - S)?.startOrLast).toBe(true);
    expect(t.slot(3 * M)?.huge).toBe(false);
    expect(t.slot(3 * M)?.startOrLast).toBe(true);
    expect(t.leaves().map((l) => l.size)).toEqual([S, S, M, M, S]);
  });

  it('rejects what the core rejects; EEXIST and ENOMEM leave nothing', () => {
    const { allocator } = setup(5 * 4096);
    const t = new MockPageTable({ allocator });
    expect(t.map(S / 2, 0, S, 3)).toBe(-EINVAL);
    expect(t.map(0, 0, 3 * S, 3)).toBe(3 * S);
    expect(t.map(2 * S, 0, 2 * S, 3)).toBe(-EEXIST);
    expect(t.slot(3 * S)).toBeNull();
    expect(t.map(M - S, 0, 2 * S, 3)).toBe(-ENOMEM); // needs a second level-1 table
    expect(t.slot(M - S)).toBeNull();
    expect(allocator.framesInUse).toBe(5);
    expect(t.unmap(0, 4 * S)).toBe(3 * S);
    expect(allocator.framesInUse).toBe(1);
  });

  it('unmaps slot by slot: part of a huge page goes alone', () => {
    const { allocator } = setup();
    const t = new MockPageTable({ allocator, hugeIova: true });
    t.map(M, M, M, 3);
    expect(t.unmap(M + 4 * S, 2 * S)).toBe(2 * S);
    expect(t.slot(M + 3 * S)?.huge).toBe(true);
    expect(t.slot(M + 4 * S)).toBeNull();
  });

  it('op DIRTY marks present slots; read_and_clear walks 2K slots and whole HUGE pages', () => {
    const { allocator } = setup();
    const t = new MockPageTable({ allocator, hugeIova: true });
    t.map(16 * M, 0, 8 * S, 3);
    t.map(32 * M, 32 * M, M, 3);
    const bits = new Uint8Array([0b1000_0101]);
    expect(t.setDirty(16 * M, 8 * S, S, bits)).toBe(3);
    expect(t.slot(16 * M + 2 * S)?.value).toBe(MOCK_PFN_DIRTY_IOVA | BigInt(2));
    expect(t.setDirty(32 * M + 7 * S, S)).toBe(1);
    expect(t.setDirty(16 * M, 0)).toBe(-EINVAL);
    const bitmap = { baseIova: 16 * M, pageSize: S, bits: new Uint8Array(2048) };
    expect(t.readAndClearDirty(16 * M, 17 * M, bitmap, true)).toBe(4);
    expect(bitmap.bits[0]).toBe(0b1000_0101);
    // The HUGE page reports all of its 512 slots.
    expect(bitmap.bits[(16 * M) / S / 8]).toBe(0xff);
    expect(bitmap.bits[(16 * M) / S / 8 + 63]).toBe(0xff);
    expect(t.readAndClearDirty(16 * M, 17 * M, bitmap)).toBe(4);
    expect(t.readAndClearDirty(16 * M, 17 * M, bitmap)).toBe(0);
  });
});

describe('mock page table: model test', () => {
  for (const hugeIova of [false, true]) {
    it(`matches a slot map (hugeIova ${hugeIova})`, () => {
      const op = fc.oneof(
        fc.record({
          kind: fc.constant('map' as const),
          iova: fc.integer({ min: 0, max: 4095 }).map((n) => n * 2 * S),
          pa: fc.integer({ min: 0, max: 4095 }).map((n) => n * 2 * S),
          slots: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 500, max: 1600 })),
        }),
        fc.record({
          kind: fc.constant('unmap' as const),
          iova: fc.integer({ min: 0, max: 8191 }).map((n) => n * S),
          slots: fc.integer({ min: 1, max: 1200 }),
        }),
        fc.record({
          kind: fc.constant('translate' as const),
          iova: fc.integer({ min: 0, max: 20 * M }),
        }),
      );
      fc.assert(
        fc.property(fc.array(op, { maxLength: 25 }), (ops) => {
          const { allocator } = setup();
          const t = new MockPageTable({ allocator, hugeIova });
          const model = new Map<number, number>();
          for (const o of ops) {
            if (o.kind === 'map') {
              let busy = false;
              for (let i = 0; i < o.slots; i++) busy ||= model.has(o.iova + i * S);
              const expected = busy ? -EEXIST : o.slots * S;
              expect(t.map(o.iova, o.pa, o.slots * S, 3)).toBe(expected);
              if (!busy) for (let i = 0; i < o.slots; i++) model.set(o.iova + i * S, o.pa + i * S);
            } else if (o.kind === 'unmap') {
              let n = 0;
              for (let i = 0; i < o.slots; i++) if (model.delete(o.iova + i * S)) n += S;
              expect(t.unmap(o.iova, o.slots * S)).toBe(n);
            } else {
              const page = o.iova - (o.iova % S);
              const pa = model.get(page);
              const r = t.translate(o.iova);
              expect(r.ok).toBe(pa !== undefined);
              if (pa !== undefined) expect(r.pa).toBe(pa + (o.iova % S));
            }
          }
          const slots = t
            .leaves()
            .flatMap((l) =>
              Array.from({ length: l.size / S }, (_, i) => [l.iova + i * S, l.pa + i * S]),
            );
          expect(slots).toEqual([...model.entries()].sort((a, b) => a[0] - b[0]));
          expect(MOCK_HUGE_PAGE_SIZE).toBe(M);
          t.unmap(0, 64 * M);
          expect(allocator.framesInUse).toBe(1);
        }),
        { numRuns: 80 },
      );
    });
  }
});
