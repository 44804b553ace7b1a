import { EEXIST, EINVAL, ENOMEM } from '@iommufd-sim/uapi-types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameAllocator, PhysicalMemory } from '../src/memory/index.js';
import {
  AmdV1PageTable,
  amdV1PageSizes,
  decodeAmdV1Entry,
  encodeAmdV1Leaf,
  encodeAmdV1Pde,
} from '../src/pagetable/amd-v1.js';
import {
  ACCESS_READ,
  ACCESS_UPDATE_AD,
  ACCESS_WRITE,
  IOMMU_READ,
  IOMMU_WRITE,
} from '../src/pagetable/format.js';

const K = 1024;
const M = 1024 * K;
const G = 1024 * M;

function setup(size = 256 * M) {
  const memory = new PhysicalMemory();
  const allocator = new FrameAllocator(memory, { base: 64 * G, size });
  return { memory, allocator };
}

function raw(memory: PhysicalMemory, pa: number): bigint {
  return memory.readU64(pa);
}

interface Leaf {
  iova: number;
  pa: number;
  size: number;
  prot: number;
}

/** The kernel's rules as a plain list of leaves. */
class Model {
  leaves: Leaf[] = [];
  constructor(readonly sizes: number[]) {}
  find(iova: number): Leaf | undefined {
    return this.leaves.find((l) => iova >= l.iova && iova < l.iova + l.size);
  }
  map(iova: number, pa: number, length: number, prot: number): number {
    if (this.leaves.some((l) => l.iova < iova + length && iova < l.iova + l.size)) return -EEXIST;
    const desc = [...this.sizes].sort((a, b) => b - a);
    let done = 0;
    while (done < length) {
      const s = desc.find(
        (x) => x <= length - done && (iova + done) % x === 0 && (pa + done) % x === 0,
      ) as number;
      this.leaves.push({ iova: iova + done, pa: pa + done, size: s, prot });
      done += s;
    }
    return length;
  }
  /** iommu_v1_unmap_pages: whole leaves, counting bytes until `length`. */
  unmap(iova: number, length: number): number {
    let pos = iova;
    let done = 0;
    while (pos < iova + length && done < length) {
      const l = this.find(pos);
      if (l === undefined) {
        pos += 4096;
        continue;
      }
      this.leaves.splice(this.leaves.indexOf(l), 1);
      done += l.size;
      pos = l.iova + l.size;
    }
    return done;
  }
}

describe('AMD v1 page table: encodings (spec vector 12)', () => {
  it('encodes the PDE, 4K PTE and the replicated 32K leaf', () => {
    expect(encodeAmdV1Pde(3, 0x100000)).toBe(0x6000_0000_0010_0601n);
    expect(encodeAmdV1Leaf(0x200000, 4096, IOMMU_READ | IOMMU_WRITE, false)).toBe(
      0x6000_0000_0020_0001n,
    );
    expect(encodeAmdV1Leaf(0x12340000, 32 * K, IOMMU_READ | IOMMU_WRITE, false)).toBe(
      0x6000_0000_1234_3e01n,
    );
    // Linux also sets FC (bit 60) on every leaf it writes.
    expect(encodeAmdV1Leaf(0x12340000, 32 * K, IOMMU_READ | IOMMU_WRITE)).toBe(
      0x7000_0000_1234_3e01n,
    );
    const d = decodeAmdV1Entry(0x6000_0000_1234_3e01n);
    expect(d).toMatchObject({ nextLevel: 7, largeSize: 32 * K, base: 0x12340000, ir: true });
  });

  it('writes the 32K page into 8 consecutive level-1 slots', () => {
    const { memory, allocator } = setup();
    const t = new AmdV1PageTable({ allocator, forceCoherent: false });
    expect(t.map(0x12340000, 0x12340000, 32 * K, IOMMU_READ | IOMMU_WRITE)).toBe(32 * K);
    const steps = t.walk(0x12345000);
    expect(steps.map((s) => s.level)).toEqual([3, 2, 1]);
    const leaf = steps[2];
    expect(leaf?.kind).toBe('leaf');
    expect(leaf?.pageSize).toBe(32 * K);
    const first = (leaf?.tableAddress as number) + (0x340 & 511) * 8;
    for (let i = 0; i < 8; i++) expect(raw(memory, first + i * 8)).toBe(0x6000_0000_1234_3e01n);
    expect(raw(memory, first + 64)).toBe(0n);
    expect(t.translate(0x12347abc).pa).toBe(0x12347abc);
  });

  it('the PDEs carry NL = level-1 with IR|IW; 2M leaves are NL=0 at level 2', () => {
    const { memory, allocator } = setup();
    const t = new AmdV1PageTable({ allocator });
    t.map(0x40000000, 0x80000000, 2 * M, IOMMU_READ);
    const steps = t.walk(0x40000000);
    expect(steps.map((s) => [s.level, s.kind])).toEqual([
      [3, 'table'],
      [2, 'leaf'],
    ]);
    const pde = decodeAmdV1Entry(steps[0]?.raw as bigint);
    expect(pde).toMatchObject({ nextLevel: 2, ir: true, iw: true });
    expect(raw(memory, steps[1]?.entryAddress as number)).toBe(0x3000_0000_8000_0001n);
  });
});

describe('AMD v1 page table: behaviour', () => {
  it('picks the largest page alignment allows (all AMD_IOMMU_PGSIZES by default)', () => {
    const { allocator } = setup();
    const t = new AmdV1PageTable({ allocator });
    expect(t.geometry.pageSizes).toEqual(amdV1PageSizes(64).filter((s) => s < 2 ** 53));
    expect(t.map(0x10000, 0x30000, 0x30000, IOMMU_READ)).toBe(0x30000);
    expect(t.leaves().map((l) => l.size)).toEqual([64 * K, 128 * K]);
    expect(t.map(0, 0, 4096, 0)).toBe(-EINVAL); // no IR/IW
    expect(t.map(0x10000, 0, 4096, IOMMU_READ)).toBe(-EEXIST);
  });

  it('an unmap inside a large page removes it whole and reports its size', () => {
    const { allocator } = setup();
    const t = new AmdV1PageTable({ allocator });
    t.map(2 * M, 4 * M, 2 * M, IOMMU_READ | IOMMU_WRITE);
    expect(t.unmap(2 * M + 8192, 4096)).toBe(2 * M);
    expect(t.translate(2 * M).ok).toBe(false);
    expect(t.tableFrames).toBe(1);
  });

  it('grows a level when a mapping needs it, and never past maxLevels', () => {
    const { allocator } = setup();
    const t = new AmdV1PageTable({ allocator, maxLevels: 4 });
    const root3 = t.root;
    expect(t.levels).toBe(3);
    t.map(0x1000, 0x1000, 4096, IOMMU_READ);
    expect(t.map(2 ** 40, 0x2000, 4096, IOMMU_READ)).toBe(4096);
    expect(t.levels).toBe(4);
    expect(t.root).not.toBe(root3);
    expect(t.walk(0x1000).map((s) => s.level)).toEqual([4, 3, 2, 1]);
    expect(t.translate(0x1000).pa).toBe(0x1000);
    expect(t.map(2 ** 48, 0, 4096, IOMMU_READ)).toBe(-EINVAL);
  });

  it('a failed map leaves the table as it was (ENOMEM and EEXIST)', () => {
    const { allocator } = setup(4 * 4096);
    const t = new AmdV1PageTable({ allocator, pageSizes: [4096] });
    t.map(0, 0, 4096, IOMMU_READ);
    const before = t.leaves();
    const frames = t.tableFrames;
    expect(t.map(0x1000, 0x1000, 4 * M, IOMMU_READ)).toBe(-ENOMEM);
    expect(t.leaves()).toEqual(before);
    expect(t.tableFrames).toBe(frames);
    expect(t.map(0x1000, 0x1000, 0x10000, IOMMU_READ)).toBe(0x10000);
    expect(t.map(0x20000, 0, 0x10000, IOMMU_READ)).toBe(0x10000);
    expect(t.map(0x11000, 0, 0x10000, IOMMU_READ)).toBe(-EEXIST);
    expect(t.leaves().length).toBe(1 + 16 + 16);
  });

  it('updates A, and D on writes, when asked; readAndClearDirty ORs the replicated slots', () => {
    const { allocator } = setup();
    const t = new AmdV1PageTable({ allocator });
    t.map(0x100000, 0x200000, 64 * K, IOMMU_READ | IOMMU_WRITE);
    t.translate(0x10c000, ACCESS_WRITE | ACCESS_UPDATE_AD);
    const slot = t.walk(0x10c000)[2];
    expect(decodeAmdV1Entry(slot?.raw as bigint)).toMatchObject({ accessed: true, dirty: true });
    expect(decodeAmdV1Entry(t.walk(0x100000)[2]?.raw as bigint).dirty).toBe(false);
    const bits = new Uint8Array(8);
    const bitmap = { baseIova: 0x100000, pageSize: 4096, bits };
    expect(t.readAndClearDirty(0x100000, 64 * K, bitmap, true)).toBe(1);
    expect(bits[0]).toBe(0xff);
    expect(bits[1]).toBe(0xff);
    expect(t.readAndClearDirty(0x100000, 64 * K, bitmap)).toBe(1);
    expect(t.readAndClearDirty(0x100000, 64 * K, bitmap)).toBe(0);
    // No UPDATE_AD (DTE.HAD clear): nothing changes.
    t.translate(0x100000, ACCESS_WRITE);
    expect(t.readAndClearDirty(0x100000, 64 * K, bitmap)).toBe(0);
  });

  it('faults: not present, permission, address size', () => {
    const { allocator } = setup();
    const t = new AmdV1PageTable({ allocator });
    t.map(0, 0, 4096, IOMMU_READ);
    expect(t.translate(0x5000).fault).toBe('not-present');
    expect(t.translate(0, ACCESS_WRITE).fault).toBe('permission');
    expect(t.translate(0, ACCESS_READ).ok).toBe(true);
    expect(t.translate(2 ** 39).fault).toBe('address-size');
  });

  it('free returns every table page', () => {
    const { allocator } = setup();
    const t = new AmdV1PageTable({ allocator });
    t.map(0, 0, 8 * M, IOMMU_READ);
    t.map(5 * G, 0, 4096, IOMMU_READ);
    t.free();
    expect(allocator.framesInUse).toBe(0);
  });
});

describe('AMD v1 page table: model test', () => {
  const sizeSets = [[4096, 8192, 32 * K, 2 * M, 4 * M, 1 * G], amdV1PageSizes(48)];
  for (const sizes of sizeSets) {
    it(`matches the model (${sizes.length} page sizes)`, () => {
      const page = fc.integer({ min: 0, max: 2047 }).map((n) => n * 16 * K);
      const op = fc.oneof(
        fc.record({
          kind: fc.constant('map' as const),
          iova: page,
          pa: page,
          pages: fc.integer({ min: 1, max: 600 }),
          prot: fc.constantFrom(1, 2, 3),
        }),
        fc.record({
          kind: fc.constant('unmap' as const),
          iova: fc.integer({ min: 0, max: 8191 }).map((n) => n * 4096),
          pages: fc.integer({ min: 1, max: 1200 }),
        }),
        fc.record({
          kind: fc.constant('translate' as const),
          iova: fc.integer({ min: 0, max: 32 * M - 1 }),
        }),
      );
      fc.assert(
        fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
          const { allocator } = setup();
          const t = new AmdV1PageTable({ allocator, pageSizes: sizes });
          const m = new Model(sizes);
          for (const o of ops) {
            if (o.kind === 'map') {
              const len = o.pages * 4096;
              expect(t.map(o.iova, o.pa, len, o.prot)).toBe(m.map(o.iova, o.pa, len, o.prot));
            } else if (o.kind === 'unmap') {
              expect(t.unmap(o.iova, o.pages * 4096)).toBe(m.unmap(o.iova, o.pages * 4096));
            } else {
              const r = t.translate(o.iova);
              const l = m.find(o.iova);
              expect(r.ok).toBe(l !== undefined);
              if (l !== undefined) {
                expect(r.pa).toBe(l.pa + (o.iova - l.iova));
                expect(r.pageSize).toBe(l.size);
                expect(r.prot).toBe(l.prot);
              }
            }
          }
          const sorted = [...m.leaves].sort((a, b) => a.iova - b.iova);
          expect(t.leaves()).toEqual(sorted);
          t.unmap(0, 2 * G);
          expect(t.tableFrames).toBe(1);
          expect(allocator.framesInUse).toBe(1);
        }),
        { numRuns: 150 },
      );
    });
  }
});
