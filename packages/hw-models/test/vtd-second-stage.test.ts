import { EEXIST, EINVAL, ENOMEM } from '@iommufd-sim/uapi-types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ACCESS_READ,
  ACCESS_UPDATE_AD,
  ACCESS_WRITE,
  FrameAllocator,
  IOMMU_READ,
  IOMMU_WRITE,
  PhysicalMemory,
  VTD_SS_A,
  VTD_SS_D,
  VtdSecondStagePageTable,
} from '../src/index.js';
import { LeafModel } from './vtd-leaf-model.js';

const K4 = 4096;
const M2 = 2 ** 21;
const G1 = 2 ** 30;
const RW = IOMMU_READ | IOMMU_WRITE;

function setup(options: { levels?: 3 | 4 | 5; pageSizes?: number[]; size?: number } = {}) {
  const memory = new PhysicalMemory();
  const allocator = new FrameAllocator(
    memory,
    options.size === undefined ? {} : { base: 2 ** 36, size: options.size },
  );
  const table = new VtdSecondStagePageTable({ allocator, ...options });
  return { memory, allocator, table };
}

describe('VT-d second stage: layout', () => {
  it('indexes spec vector 1 (IOVA 0x123_4567_8000) at L4 2, L3 0x8d, L2 0x2b, L1 0x78', () => {
    const { table } = setup();
    table.map(0x123_4567_8000, 0x5000, K4, RW);
    const steps = table.walk(0x123_4567_8000);
    expect(steps.map((s) => [s.level, s.index, s.kind])).toEqual([
      [4, 0x002, 'table'],
      [3, 0x08d, 'table'],
      [2, 0x02b, 'table'],
      [1, 0x078, 'leaf'],
    ]);
    // Linux writes R|W into every non-leaf entry; the leaf is R|W with the address.
    expect(steps[0]?.raw).toBe((BigInt(steps[1]?.tableAddress ?? 0) | 3n) as bigint);
    expect(steps[3]?.raw).toBe(0x5003n);
    const five = setup({ levels: 5 }).table;
    five.map(0x123_4567_8000, 0x5000, K4, RW);
    expect(five.walk(0x123_4567_8000).map((s) => s.index)).toEqual([0, 2, 0x8d, 0x2b, 0x78]);
  });

  it('uses 39/48/57-bit inputs for 3/4/5 levels', () => {
    for (const [levels, bits] of [
      [3, 39],
      [4, 48],
      [5, 57],
    ] as const) {
      const { table } = setup({ levels });
      expect(table.geometry.inputBits).toBe(bits);
      if (bits > 52) continue; // beyond the numbers the model represents exactly
      expect(table.map(2 ** bits - K4, 0, K4, RW)).toBe(K4);
      expect(table.map(2 ** bits, 0, K4, RW)).toBe(-EINVAL);
      expect(table.translate(2 ** bits).fault).toBe('address-size');
    }
  });

  it('spec vector 14: identity [0x3fe400000, 0x4c0600000) gives 14x2M + 3x1G + 3x2M', () => {
    const { table } = setup({ pageSizes: [K4, M2, G1] });
    const start = 0x3fe400000;
    const end = 0x4c0600000;
    expect(table.map(start, start, end - start, RW)).toBe(end - start);
    const sizes = table.leaves().map((l) => l.size);
    expect(sizes).toEqual([...Array(14).fill(M2), ...Array(3).fill(G1), ...Array(3).fill(M2)]);
    for (const l of table.leaves()) expect(l.pa).toBe(l.iova);
  });

  it('pgsize boundary: 0xfef80000 -> 0x208b95d000, 0x20000 bytes, in 4K leaves', () => {
    const { table } = setup();
    expect(table.map(0xfef80000, 0x208b95d000, 0x20000, RW)).toBe(0x20000);
    expect(table.leaves().length).toBe(32);
    expect(table.translate(0xfef9f123).pa).toBe(0x208b95d000 + 0x1f123);
  });

  it('map uses the largest leaf iova, pa and length allow; only allowed sizes', () => {
    const a = setup().table;
    a.map(G1, 2 * G1, G1 + M2 + K4, RW);
    expect(a.leaves().map((l) => l.size)).toEqual([G1, M2, K4]);
    const b = setup({ pageSizes: [K4, M2] }).table;
    b.map(G1, 2 * G1, G1, RW);
    expect(b.leaves().length).toBe(512);
    const c = setup().table;
    c.map(M2, M2 + K4, M2, RW); // pa misaligned for 2M
    expect(c.leaves().length).toBe(512);
  });
});

describe('VT-d second stage: map errors leave the table unchanged', () => {
  it('-EEXIST over any existing mapping, nothing changed', () => {
    const { table, allocator } = setup();
    table.map(M2 + 5 * K4, 0x100000, K4, RW);
    const frames = allocator.framesInUse;
    const before = table.leaves();
    expect(table.map(M2 - 8 * K4, 0x800000, 16 * K4, RW)).toBe(-EEXIST);
    expect(table.map(0, 0, 4 * M2, RW)).toBe(-EEXIST);
    expect(table.leaves()).toEqual(before);
    expect(allocator.framesInUse).toBe(frames);
    // A large leaf blocks small maps under it.
    table.map(8 * M2, 8 * M2, M2, RW);
    expect(table.map(8 * M2 + K4, 0, K4, RW)).toBe(-EEXIST);
  });

  it('-EINVAL for misalignment, zero length, no permission, beyond HAW', () => {
    const { table } = setup();
    expect(table.map(1, 0, K4, RW)).toBe(-EINVAL);
    expect(table.map(0, 1, K4, RW)).toBe(-EINVAL);
    expect(table.map(0, 0, 100, RW)).toBe(-EINVAL);
    expect(table.map(0, 0, 0, RW)).toBe(-EINVAL);
    expect(table.map(0, 0, K4, 0)).toBe(-EINVAL);
    const narrow = new VtdSecondStagePageTable({
      allocator: new FrameAllocator(new PhysicalMemory()),
      outputBits: 39,
    });
    expect(narrow.map(0, 2 ** 39, K4, RW)).toBe(-EINVAL);
    expect(() => table.map(-4096, 0, K4, RW)).toThrow(RangeError);
  });

  it('-ENOMEM when tables run out, and everything allocated is given back', () => {
    const { table, allocator } = setup({ size: 3 * K4 });
    const frames = allocator.framesInUse;
    expect(table.map(0, 0, 4 * K4, RW)).toBe(-ENOMEM);
    expect(allocator.framesInUse).toBe(frames);
    expect(table.leaves()).toEqual([]);
  });
});

describe('VT-d second stage: unmap', () => {
  it('a range covering part of a large leaf removes the whole leaf and reports its size', () => {
    const { table } = setup();
    table.map(G1, G1, G1, RW);
    table.map(2 * G1, 0, M2, RW);
    expect(table.unmap(G1 + 5 * K4, K4)).toBe(G1);
    expect(table.translate(G1).fault).toBe('not-present');
    expect(table.unmap(2 * G1 + M2 - K4, 2 * K4)).toBe(M2);
  });

  it('skips holes and frees emptied tables', () => {
    const { table, allocator } = setup();
    const start = allocator.framesInUse;
    table.map(0x40000000, 0x1000, 3 * K4, RW);
    table.map(0x7f000000, 0x9000, K4, RW);
    expect(allocator.framesInUse).toBeGreaterThan(start);
    expect(table.unmap(0, 2 ** 31)).toBe(4 * K4);
    expect(allocator.framesInUse).toBe(start);
    expect(table.tableFrames).toBe(1);
  });

  it('page by page through the cached leaf table', () => {
    const { table, allocator } = setup();
    const start = allocator.framesInUse;
    for (let i = 0; i < 1024; i++) expect(table.map(i * K4, i * K4, K4, RW)).toBe(K4);
    for (let i = 0; i < 1024; i++) expect(table.unmap(i * K4, K4)).toBe(K4);
    expect(allocator.framesInUse).toBe(start);
  });
});

describe('VT-d second stage: translate', () => {
  it('ANDs R/W down the walk and reports the permission fault', () => {
    const { table, memory } = setup();
    table.map(0, 0x200000, K4, IOMMU_READ);
    expect(table.translate(0x123, ACCESS_READ)).toMatchObject({
      ok: true,
      pa: 0x200123,
      prot: IOMMU_READ,
    });
    expect(table.translate(0x123, ACCESS_WRITE).fault).toBe('permission');
    // Clear W in the top-level entry: writes fault even where the leaf allows them.
    table.map(M2, 0x400000, K4, RW);
    const top = table.walk(M2)[0];
    memory.writeU64(top?.entryAddress ?? 0, (top?.raw ?? 0n) & ~2n);
    expect(table.translate(M2, ACCESS_WRITE).fault).toBe('permission');
    expect(table.translate(M2, ACCESS_READ).ok).toBe(true);
  });

  it('faults reserved bits: large-leaf low address bits, PS where not allowed, beyond HAW', () => {
    const { table, memory } = setup({ pageSizes: [K4, M2] });
    table.map(0, 0, M2, RW);
    const leaf = table.walk(0)[2];
    memory.writeU64(leaf?.entryAddress ?? 0, 0x1000n | 0x83n);
    expect(table.translate(0).fault).toBe('reserved-bits');
    const pdpe = table.walk(0)[1];
    memory.writeU64(pdpe?.entryAddress ?? 0, 0x83n);
    expect(table.translate(0).fault).toBe('reserved-bits'); // 1G not allowed here
    const m = new PhysicalMemory();
    const t2 = new VtdSecondStagePageTable({ allocator: new FrameAllocator(m), outputBits: 46 });
    t2.map(0, 0, K4, RW);
    const pte = t2.walk(0)[3];
    m.writeU64(pte?.entryAddress ?? 0, (1n << 52n) | 3n); // bit 52 is ignored
    expect(t2.translate(0).ok).toBe(true);
    m.writeU64(pte?.entryAddress ?? 0, (1n << 47n) | 3n); // above HAW: reserved
    expect(t2.translate(0).fault).toBe('reserved-bits');
  });

  it('sets A and D only while dirty tracking is on, and harvests D', () => {
    const { table } = setup();
    table.map(0, 0x10000, 4 * K4, RW);
    table.translate(0, ACCESS_WRITE | ACCESS_UPDATE_AD);
    expect(Number(table.walk(0)[3]?.raw ?? 0n) & (VTD_SS_A | VTD_SS_D)).toBe(0);
    table.setDirtyTracking(true);
    table.translate(K4, ACCESS_WRITE | ACCESS_UPDATE_AD);
    table.translate(2 * K4, ACCESS_READ | ACCESS_UPDATE_AD);
    expect(Number(table.walk(K4)[3]?.raw ?? 0n) & (VTD_SS_A | VTD_SS_D)).toBe(VTD_SS_A | VTD_SS_D);
    expect(Number(table.walk(2 * K4)[3]?.raw ?? 0n) & VTD_SS_D).toBe(0);
    expect(Number(table.walk(K4)[0]?.raw ?? 0n) & VTD_SS_A).toBe(VTD_SS_A);
    const bitmap = { baseIova: 0, pageSize: K4, bits: new Uint8Array(1) };
    expect(table.readAndClearDirty(0, 4 * K4, bitmap, true)).toBe(1);
    expect(bitmap.bits[0]).toBe(0b10);
    expect(table.readAndClearDirty(0, 4 * K4, bitmap)).toBe(1);
    expect(table.readAndClearDirty(0, 4 * K4, bitmap)).toBe(0);
  });

  it('a dirty 2M leaf marks all 512 bitmap pages', () => {
    const { table } = setup();
    table.setDirtyTracking(true);
    table.map(0, 0, M2, RW);
    table.translate(0x1234, ACCESS_WRITE | ACCESS_UPDATE_AD);
    const bitmap = { baseIova: 0, pageSize: K4, bits: new Uint8Array(64) };
    expect(table.readAndClearDirty(0, M2, bitmap)).toBe(1);
    expect(bitmap.bits.every((b) => b === 0xff)).toBe(true);
  });
});

describe('VT-d second stage: model test', () => {
  it('matches a plain map of leaves over random map/unmap/translate', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('map' as const),
        page: fc.integer({ min: 0, max: 2047 }),
        pages: fc.integer({ min: 1, max: 1100 }),
        pa: fc.integer({ min: 0, max: 4095 }),
        prot: fc.constantFrom(IOMMU_READ, IOMMU_WRITE, RW),
        align: fc.boolean(),
      }),
      fc.record({
        kind: fc.constant('unmap' as const),
        page: fc.integer({ min: 0, max: 2047 }),
        pages: fc.integer({ min: 1, max: 700 }),
      }),
      fc.record({
        kind: fc.constant('translate' as const),
        page: fc.integer({ min: 0, max: 2047 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
        const { table, allocator } = setup({ pageSizes: [K4, M2] });
        const base = allocator.framesInUse;
        const model = new LeafModel();
        for (const o of ops) {
          if (o.kind === 'map') {
            // Aligned variants make 2M leaves likely.
            const page = o.align ? o.page & ~511 : o.page;
            const pages = o.align ? Math.max(512, o.pages & ~511) : o.pages;
            const iova = page * K4;
            const pa = (o.align ? o.pa & ~511 : o.pa) * K4 + 2 ** 32;
            const len = Math.min(pages, 2048 - page) * K4;
            if (len <= 0) continue;
            const clash = model.overlaps(iova, len);
            const r = table.map(iova, pa, len, o.prot);
            if (clash) {
              expect(r).toBe(-EEXIST);
              continue;
            }
            expect(r).toBe(len);
            model.map(iova, pa, len, o.prot, [M2, K4]);
          } else if (o.kind === 'unmap') {
            const iova = o.page * K4;
            const end = iova + o.pages * K4;
            expect(table.unmap(iova, end - iova)).toBe(model.unmap(iova, end));
          } else {
            const iova = o.page * K4 + 0x10;
            const l = model.find(iova);
            const t = table.translate(iova, ACCESS_READ);
            if (l === undefined) expect(t.fault).toBe('not-present');
            else if ((l.prot & IOMMU_READ) === 0) expect(t.fault).toBe('permission');
            else
              expect(t).toMatchObject({ ok: true, pa: l.pa + (iova - l.iova), pageSize: l.size });
          }
        }
        expect(table.leaves()).toEqual(model.leaves);
        table.unmap(0, 2 ** 48);
        expect(allocator.framesInUse).toBe(base);
      }),
      { numRuns: 150 },
    );
  });
});
