import { EEXIST, EINVAL } from '@iommufd-sim/uapi-types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ACCESS_EXEC,
  ACCESS_PRIV,
  ACCESS_READ,
  ACCESS_UPDATE_AD,
  ACCESS_WRITE,
  FrameAllocator,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  PhysicalMemory,
  Stage2TableMemory,
  VtdSecondStagePageTable,
  X86_A,
  X86_D,
  X86PageTable,
} from '../src/index.js';
import { LeafModel } from './vtd-leaf-model.js';

const K4 = 4096;
const M2 = 2 ** 21;
const G1 = 2 ** 30;
const RW = IOMMU_READ | IOMMU_WRITE;

function setup(levels: 4 | 5 = 4) {
  const memory = new PhysicalMemory();
  const allocator = new FrameAllocator(memory);
  return { memory, allocator, table: new X86PageTable({ allocator, levels }) };
}

describe('x86-64 entries', () => {
  it("writes Linux's first-stage bits: leaf P|RW|U|A|D, read-only P|U|A, non-leaf P|RW|U|A", () => {
    const { table } = setup();
    table.map(0x123_4567_8000, 0x5000, K4, RW);
    table.map(0x123_4567_9000, 0x6000, K4, IOMMU_READ);
    const steps = table.walk(0x123_4567_8000);
    expect(steps.map((s) => s.index)).toEqual([0x002, 0x08d, 0x02b, 0x078]);
    expect(Number((steps[0]?.raw ?? 0n) & 0xfffn)).toBe(0x27);
    expect(steps[3]?.raw).toBe(0x5067n);
    expect(table.walk(0x123_4567_9000)[3]?.raw).toBe(0x6025n);
    table.map(0x200000, 0x400000, M2, RW | IOMMU_NOEXEC);
    expect(table.walk(0x200000)[2]?.raw).toBe((1n << 63n) | 0x4000e7n);
  });

  it('addresses at or above 2^47 (2^56 with 5 levels) are non-canonical', () => {
    const { table } = setup();
    expect(table.geometry.inputBits).toBe(48);
    expect(table.map(2 ** 47 - K4, 0, K4, RW)).toBe(K4);
    expect(table.map(2 ** 47, 0, K4, RW)).toBe(-EINVAL);
    expect(table.translate(2 ** 47).fault).toBe('non-canonical');
    expect(table.translate(2 ** 47 - 1).ok).toBe(true);
    const five = setup(5).table;
    expect(five.map(2 ** 47, 0, K4, RW)).toBe(K4);
    expect(five.walk(2 ** 47).map((s) => s.index)).toEqual([0, 256, 0, 0, 0]);
  });

  it('U/S, R/W and XD combine down the walk', () => {
    const { table } = setup();
    table.map(0, 0x10000, K4, IOMMU_READ | IOMMU_PRIV);
    table.map(K4, 0x11000, K4, RW | IOMMU_NOEXEC);
    expect(table.translate(0, ACCESS_READ).fault).toBe('permission'); // user access to a supervisor page
    expect(table.translate(0, ACCESS_READ | ACCESS_PRIV)).toMatchObject({
      ok: true,
      prot: IOMMU_READ | IOMMU_PRIV,
    });
    expect(table.translate(0, ACCESS_WRITE | ACCESS_PRIV).fault).toBe('permission');
    expect(table.translate(K4, ACCESS_WRITE).prot).toBe(RW | IOMMU_NOEXEC);
    expect(table.translate(K4, ACCESS_EXEC | ACCESS_READ).fault).toBe('permission');
  });

  it('sets A on every level and D on a written leaf', () => {
    const { table, memory } = setup();
    table.map(0, 0x10000, K4, IOMMU_READ);
    const leaf = table.walk(0)[3];
    memory.writeU64(leaf?.entryAddress ?? 0, 0x10000n | 0x7n); // P|RW|U without A/D
    table.translate(0, ACCESS_READ | ACCESS_UPDATE_AD);
    expect(Number(table.walk(0)[3]?.raw ?? 0n) & (X86_A | X86_D)).toBe(X86_A);
    table.translate(0, ACCESS_WRITE | ACCESS_UPDATE_AD);
    expect(Number(table.walk(0)[3]?.raw ?? 0n) & (X86_A | X86_D)).toBe(X86_A | X86_D);
    const bitmap = { baseIova: 0, pageSize: K4, bits: new Uint8Array(1) };
    expect(table.readAndClearDirty(0, K4, bitmap)).toBe(1);
    expect(Number(table.walk(0)[3]?.raw ?? 0n) & X86_D).toBe(0);
  });

  it('walks nested: a guest table behind a stage-2 table, table-fetch faults name the table', () => {
    const memory = new PhysicalMemory();
    const allocator = new FrameAllocator(memory);
    const s2 = new VtdSecondStagePageTable({ allocator });
    const HPA = 0x80000000;
    s2.map(0, HPA, 0x100000, RW);
    // Guest: PML4 at GPA 0x1000 ... PT at 0x4000, GVA 0 -> GPA 0x9000.
    memory.writeU64(HPA + 0x1000, 0x2027n);
    memory.writeU64(HPA + 0x2000, 0x3027n);
    memory.writeU64(HPA + 0x3000, 0x4027n);
    memory.writeU64(HPA + 0x4000, 0x9067n);
    memory.writeU64(HPA + 0x4008, 0x9067n);
    const s2mem = new Stage2TableMemory(s2, allocator);
    const s1 = new X86PageTable({ memory: s2mem, root: 0x1000 });
    expect(s1.translate(0x123, ACCESS_READ)).toMatchObject({ ok: true, pa: 0x9123 });
    s2.unmap(0x4000, K4);
    expect(s1.translate(0x123, ACCESS_READ)).toMatchObject({
      fault: 'table-fetch',
      faultAddress: 0x4000,
    });
    expect(s2mem.lastFault?.fault).toBe('not-present');
    expect(() => s1.map(0, 0, K4, RW)).toThrow(TypeError);
  });
});

describe('x86-64 model test', () => {
  it('matches a plain map of leaves over random map/unmap/translate with 1G, 2M and 4K leaves', () => {
    const M = M2 / K4; // 512 pages
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('map' as const),
        unit: fc.constantFrom(1, M, G1 / K4),
        at: fc.integer({ min: 0, max: (2 * G1) / K4 - 1 }),
        units: fc.integer({ min: 1, max: 3 }),
        extra: fc.integer({ min: 0, max: 600 }),
        prot: fc.constantFrom(IOMMU_READ, RW),
      }),
      fc.record({
        kind: fc.constant('unmap' as const),
        at: fc.integer({ min: 0, max: (2 * G1) / K4 - 1 }),
        pages: fc.integer({ min: 1, max: 1500 }),
      }),
      fc.record({
        kind: fc.constant('translate' as const),
        at: fc.integer({ min: 0, max: (2 * G1) / K4 - 1 }),
        write: fc.boolean(),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 25 }), (ops) => {
        const { table, allocator } = setup();
        const base = allocator.framesInUse;
        const model = new LeafModel();
        for (const o of ops) {
          if (o.kind === 'map') {
            const page = Math.floor(o.at / o.unit) * o.unit;
            const iova = page * K4;
            const pa = iova + 4 * G1;
            const len = Math.min(o.units * o.unit * K4 + o.extra * K4, 2 * G1 - iova);
            const clash = model.overlaps(iova, len);
            const r = table.map(iova, pa, len, o.prot);
            if (clash) {
              expect(r).toBe(-EEXIST);
              continue;
            }
            expect(r).toBe(len);
            model.map(iova, pa, len, o.prot, [G1, M2, K4]);
          } else if (o.kind === 'unmap') {
            const iova = o.at * K4;
            const end = iova + o.pages * K4;
            expect(table.unmap(iova, end - iova)).toBe(model.unmap(iova, end));
          } else {
            const iova = o.at * K4 + 8;
            const l = model.find(iova);
            const t = table.translate(iova, o.write ? ACCESS_WRITE : ACCESS_READ);
            if (l === undefined) expect(t.fault).toBe('not-present');
            else if (o.write && (l.prot & IOMMU_WRITE) === 0) expect(t.fault).toBe('permission');
            else
              expect(t).toMatchObject({ ok: true, pa: l.pa + (iova - l.iova), pageSize: l.size });
          }
        }
        expect(
          table.leaves().map(({ iova, pa, size, prot }) => ({ iova, pa, size, prot: prot & RW })),
        ).toEqual(model.leaves);
        table.unmap(0, 2 ** 47);
        expect(allocator.framesInUse).toBe(base);
      }),
      { numRuns: 150 },
    );
  });
});
