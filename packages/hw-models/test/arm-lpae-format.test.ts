// The Arm LPAE format: geometry vectors, descriptor bits as io-pgtable-arm
// writes them, leaf choice, errors, the 6.17 unmap rule, dirty and access
// flag handling, permissions, the contiguous hint, 16K/64K granules,
// 52-bit output and stage-2 concatenation.
import { EEXIST, EINVAL, ENOMEM } from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import {
  ACCESS_EXEC,
  ACCESS_PRIV,
  ACCESS_READ,
  ACCESS_UPDATE_AD,
  ACCESS_WRITE,
  ArmLpaePageTable,
  type ArmLpaePageTableOptions,
  armLpaeLayout,
  armS2Sl0Decode,
  armS2Sl0Encode,
  FrameAllocator,
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
  IOMMU_READ,
  IOMMU_WRITE,
  PhysicalMemory,
} from '../src/index.js';

const RW = IOMMU_READ | IOMMU_WRITE;
const K4 = 4096;
const M2 = 2 ** 21;
const G1 = 2 ** 30;

function table(options: Partial<ArmLpaePageTableOptions> = {}, regionBytes?: number) {
  const memory = new PhysicalMemory();
  const allocator = new FrameAllocator(
    memory,
    regionBytes === undefined ? {} : { size: regionBytes },
  );
  const t = new ArmLpaePageTable({ stage: 1, allocator, ...options });
  return { memory, allocator, t };
}

// The raw leaf entry of `iova`.
function leafRaw(t: ArmLpaePageTable, iova: number): bigint {
  const steps = t.walk(iova);
  const last = steps[steps.length - 1];
  if (last?.kind !== 'leaf') throw new Error(`no leaf at 0x${iova.toString(16)}`);
  return last.raw;
}

describe('geometry (section 5 vectors 1, 4, 5)', () => {
  it('4K, 48-bit: IOVA 0x123_4567_8000 indexes L0 2, L1 0x8d, L2 0x2b, L3 0x78', () => {
    const { t } = table();
    expect(t.map(0x0000_0123_4567_8000, 0x1000, K4, RW)).toBe(K4);
    expect(t.walk(0x0000_0123_4567_8000).map((s) => [s.level, s.index])).toEqual([
      [0, 0x002],
      [1, 0x08d],
      [2, 0x02b],
      [3, 0x078],
    ]);
  });

  it('64K and 16K granules index IOVA 0x12345678000 as the spec says', () => {
    const g64 = table({ granule: 65536 }).t;
    expect(g64.geometry.levels).toBe(3);
    expect(g64.map(0x12345670000, 0x10000, 65536, RW)).toBe(65536);
    expect(g64.walk(0x12345678000).map((s) => [s.level, s.index])).toEqual([
      [1, 0x0],
      [2, 0x91a],
      [3, 0x567],
    ]);
    expect(g64.translate(0x12345678000).pa).toBe(0x10000 + 0x8000);
    const g16 = table({ granule: 16384 }).t;
    expect(g16.geometry.levels).toBe(4);
    expect(g16.map(0x12345678000, 0x4000, 16384, RW)).toBe(16384);
    expect(g16.walk(0x12345678000).map((s) => [s.level, s.index])).toEqual([
      [0, 0],
      [1, 0x12],
      [2, 0x1a2],
      [3, 0x59e],
    ]);
  });

  it('level counts from T0SZ: 16 -> 4 levels (4K) / 3 (64K); 25 -> 3 levels from L1 (4K)', () => {
    expect(armLpaeLayout({ granule: 4096, inputBits: 48, outputBits: 48 })).toMatchObject({
      startLevel: 0,
      startBits: 9,
    });
    expect(armLpaeLayout({ granule: 65536, inputBits: 48, outputBits: 48 })).toMatchObject({
      startLevel: 1,
      startBits: 6,
    });
    expect(armLpaeLayout({ granule: 4096, inputBits: 39, outputBits: 48 })).toMatchObject({
      startLevel: 1,
      startBits: 9,
    });
    // A start table smaller than a granule: 44-bit input, 4K -> L0 has 32 entries.
    expect(armLpaeLayout({ granule: 4096, inputBits: 44, outputBits: 48 })).toMatchObject({
      startLevel: 0,
      startBits: 5,
    });
  });

  it('S2SL0 encodes start levels as the kernel does (~sl & 3, 4K shifted by one)', () => {
    expect(armS2Sl0Encode(4096, 0)).toBe(2);
    expect(armS2Sl0Encode(4096, 1)).toBe(1);
    expect(armS2Sl0Encode(65536, 1)).toBe(2);
    expect(armS2Sl0Encode(16384, 2)).toBe(1);
    for (const g of [4096, 16384, 65536] as const) {
      for (let l = g === 4096 ? 0 : 1; l <= 2; l++)
        expect(armS2Sl0Decode(g, armS2Sl0Encode(g, l))).toBe(l);
    }
  });

  it('stage 2 concatenates start tables where Linux 6.14+ must (4K, 40-bit OAS)', () => {
    const { t } = table({ stage: 2, inputBits: 40, outputBits: 40 });
    expect(t.layout).toMatchObject({ startLevel: 1, startBits: 10, concatenated: 2 });
    expect(t.geometry.levels).toBe(3);
    expect(t.tableFrames).toBe(2);
    expect(t.map(0xff_c000_0000, 0x1000, K4, RW)).toBe(K4);
    expect(t.walk(0xff_c000_0000)[0]).toMatchObject({ level: 1, index: 1023 });
    // 48-bit stage 2 with 4K needs no concatenation.
    expect(table({ stage: 2 }).t.layout.concatenated).toBe(1);
    // Optional: ask for it explicitly.
    expect(
      table({ stage: 2, inputBits: 40, outputBits: 48, concatenate: true }).t.layout.startLevel,
    ).toBe(1);
  });
});

describe('descriptors as io-pgtable-arm writes them', () => {
  it('stage 1: nG, AF, AP[1], SH, AttrIndx, AP[2] for read-only, XN for NOEXEC', () => {
    const { t } = table();
    t.map(0x1000, 0x5000, K4, RW | IOMMU_CACHE);
    expect(leafRaw(t, 0x1000)).toBe(
      0x5000n | 3n | (1n << 2n) | (1n << 6n) | (3n << 8n) | (1n << 10n) | (1n << 11n),
    );
    t.map(0x2000, 0x6000, K4, IOMMU_READ);
    expect(leafRaw(t, 0x2000)).toBe(
      0x6000n | 3n | (1n << 6n) | (1n << 7n) | (2n << 8n) | (1n << 10n) | (1n << 11n),
    );
    t.map(0x3000, 0x7000, K4, RW | IOMMU_MMIO | IOMMU_NOEXEC | IOMMU_PRIV);
    expect(leafRaw(t, 0x3000)).toBe(
      0x7000n | 3n | (2n << 2n) | (2n << 8n) | (1n << 10n) | (1n << 11n) | (3n << 53n),
    );
    // A 2M block is descriptor type 01 at level 2.
    t.map(M2, M2 * 3, M2, RW);
    expect(leafRaw(t, M2) & 3n).toBe(1n);
    expect(t.walk(M2).at(-1)).toMatchObject({ level: 2, kind: 'leaf', pageSize: M2 });
  });

  it('stage 2: S2AP read bit 6 / write bit 7, MemAttr 0xf / 0x5 / 0x1, FWB write-back 0x6', () => {
    const { t } = table({ stage: 2 });
    t.map(0x1000, 0x5000, K4, RW | IOMMU_CACHE);
    expect(leafRaw(t, 0x1000)).toBe(
      0x5000n | 3n | (0xfn << 2n) | (3n << 6n) | (3n << 8n) | (1n << 10n),
    );
    t.map(0x2000, 0x6000, K4, IOMMU_READ);
    expect(leafRaw(t, 0x2000)).toBe(
      0x6000n | 3n | (0x5n << 2n) | (1n << 6n) | (2n << 8n) | (1n << 10n),
    );
    t.map(0x3000, 0x7000, K4, IOMMU_WRITE | IOMMU_MMIO);
    expect(leafRaw(t, 0x3000)).toBe(
      0x7000n | 3n | (0x1n << 2n) | (2n << 6n) | (2n << 8n) | (1n << 10n),
    );
    const fwb = table({ stage: 2, stage2Fwb: true }).t;
    fwb.map(0x1000, 0x5000, K4, RW | IOMMU_CACHE);
    expect((leafRaw(fwb, 0x1000) >> 2n) & 0xfn).toBe(0x6n);
  });
});

describe('map', () => {
  it('uses the largest leaf alignment of iova, pa and length allow', () => {
    const { t } = table();
    expect(t.map(M2 - K4, 0x4000_0000 + M2 - K4, 2 * M2 + 2 * K4, RW)).toBe(2 * M2 + 2 * K4);
    expect(t.leaves().map((l) => l.size)).toEqual([K4, M2, M2, K4]);
    const t2 = table().t;
    // pa misaligned for 2M: 4K leaves only.
    expect(t2.map(M2, 0x401000, M2, RW)).toBe(M2);
    expect(t2.leaves()).toHaveLength(512);
    const t3 = table().t;
    expect(t3.map(G1, 2 * G1, G1 + M2, RW)).toBe(G1 + M2);
    expect(t3.leaves().map((l) => l.size)).toEqual([G1, M2]);
    expect(t3.translate(G1 + 0x12345, ACCESS_READ)).toMatchObject({
      ok: true,
      pa: 2 * G1 + 0x12345,
      pageSize: G1,
      level: 1,
    });
    // Page sizes can be restricted.
    const t4 = table({ pageSizes: [K4] }).t;
    t4.map(0, 0, M2, RW);
    expect(t4.leaves()).toHaveLength(512);
  });

  it('EEXIST over anything mapped, with nothing changed', () => {
    const { t, allocator } = table();
    t.map(M2 + 5 * K4, 0x9000, K4, RW);
    const before = t.leaves();
    const frames = allocator.framesInUse;
    expect(t.map(M2, 0x100000, M2, RW)).toBe(-EEXIST); // 4K leaves inside a would-be block
    expect(t.map(M2 + 3 * K4, 0x100000, 4 * K4, RW)).toBe(-EEXIST); // overlaps the tail
    expect(t.map(0, 0, 3 * M2, RW)).toBe(-EEXIST);
    expect(t.leaves()).toEqual(before);
    expect(allocator.framesInUse).toBe(frames);
    t.map(4 * M2, 4 * M2, M2, RW);
    expect(t.map(4 * M2 + K4, 0, K4, RW)).toBe(-EEXIST); // inside a block
  });

  it('EINVAL for misaligned, empty, out-of-range and no-access requests', () => {
    const { t } = table();
    expect(t.map(0x800, 0, K4, RW)).toBe(-EINVAL);
    expect(t.map(0, 0x800, K4, RW)).toBe(-EINVAL);
    expect(t.map(0, 0, 0x800, RW)).toBe(-EINVAL);
    expect(t.map(0, 0, 0, RW)).toBe(-EINVAL);
    expect(t.map(2 ** 48 - K4, 0, 2 * K4, RW)).toBe(-EINVAL);
    expect(t.map(0, 2 ** 48, K4, RW)).toBe(-EINVAL);
    expect(t.map(0, 0, K4, IOMMU_CACHE)).toBe(-EINVAL);
    expect(() => t.map(-4096, 0, K4, RW)).toThrow(RangeError);
    expect(t.leaves()).toEqual([]);
  });

  it('ENOMEM when table pages run out, with nothing changed', () => {
    // Root + 3 tables fit; a second L3 table does not.
    const { t, allocator } = table({}, 4 * K4);
    expect(t.map(0, 0, K4, RW)).toBe(K4);
    const before = t.leaves();
    const frames = allocator.framesInUse;
    expect(t.map(M2 - K4, 0x10000, 2 * K4, RW)).toBe(-ENOMEM);
    expect(t.map(G1, 0x10000, K4, RW)).toBe(-ENOMEM);
    expect(t.leaves()).toEqual(before);
    expect(allocator.framesInUse).toBe(frames);
    expect(t.tableFrames).toBe(4);
  });
});

describe('unmap (Linux 6.17 rule: no split of a large leaf)', () => {
  it('refuses a partial unmap of a block and stops there', () => {
    const { t } = table();
    t.map(0, 0x4000_0000, 2 * M2, RW); // two 2M blocks
    expect(t.unmap(K4, K4)).toBe(0);
    expect(t.unmap(M2 - K4, 2 * K4)).toBe(0);
    expect(t.leaves()).toHaveLength(2);
    // 4K pages then a block only partly covered: the pages go, the walk stops at the block.
    t.map(G1 - 4 * K4, 0x1000, 4 * K4, RW);
    t.map(G1, G1, M2, RW);
    expect(t.unmap(G1 - 4 * K4, 4 * K4 + K4)).toBe(4 * K4);
    expect(t.translate(G1 + K4).ok).toBe(true);
    // Whole leaves go, more than asked for never.
    expect(t.unmap(0, 2 * M2)).toBe(2 * M2);
    expect(t.unmap(G1, M2)).toBe(M2);
    expect(t.leaves()).toEqual([]);
  });

  it('skips holes, frees emptied tables, counts only mapped bytes', () => {
    const { t, allocator } = table();
    const root = allocator.framesInUse;
    t.map(0, 0, K4, RW);
    t.map(5 * K4, 0, K4, RW);
    t.map(G1 * 3, 0, M2, RW);
    expect(allocator.framesInUse).toBe(root + 4);
    expect(t.unmap(0, 4 * G1)).toBe(2 * K4 + M2);
    expect(allocator.framesInUse).toBe(root);
    expect(t.tableFrames).toBe(root);
    // Page-by-page unmap frees the leaf table with the last page.
    for (let i = 0; i < 8; i++) t.map(i * K4, i * K4, K4, RW);
    for (let i = 7; i >= 0; i--) expect(t.unmap(i * K4, K4)).toBe(K4);
    expect(allocator.framesInUse).toBe(root);
    expect(t.unmap(0, K4)).toBe(0);
    expect(t.unmap(0x800, K4)).toBe(0);
  });
});

describe('translate: faults and permissions', () => {
  it('reports not-present, address-size and the leaf level', () => {
    const { t } = table();
    expect(t.translate(0x1000)).toMatchObject({ ok: false, fault: 'not-present', level: 0 });
    t.map(0x1000, 0x5000, K4, RW);
    expect(t.translate(0x2000)).toMatchObject({ ok: false, fault: 'not-present', level: 3 });
    expect(t.translate(2 ** 48)).toMatchObject({ ok: false, fault: 'address-size' });
    expect(t.translate(0x1abc, ACCESS_READ)).toMatchObject({
      ok: true,
      pa: 0x5abc,
      pageSize: K4,
      level: 3,
      prot: RW,
    });
  });

  it('stage 1: AP[2] blocks writes, AP[1]=0 blocks unprivileged access, XN blocks fetches', () => {
    const { t } = table();
    t.map(0x1000, 0x5000, K4, IOMMU_READ);
    t.map(0x2000, 0x6000, K4, RW | IOMMU_PRIV);
    t.map(0x3000, 0x7000, K4, RW | IOMMU_NOEXEC);
    expect(t.translate(0x1000, ACCESS_WRITE).fault).toBe('permission');
    expect(t.translate(0x1000, ACCESS_READ).ok).toBe(true);
    expect(t.translate(0x2000, ACCESS_READ).fault).toBe('permission');
    expect(t.translate(0x2000, ACCESS_READ | ACCESS_PRIV).ok).toBe(true);
    expect(t.translate(0x3000, ACCESS_READ | ACCESS_EXEC).fault).toBe('permission');
    expect(t.translate(0x1000, ACCESS_READ | ACCESS_EXEC).ok).toBe(true);
    expect(t.translate(0x2000).prot).toBe(RW | IOMMU_PRIV);
    expect(t.translate(0x3000).prot).toBe(RW | IOMMU_NOEXEC);
  });

  it('stage 2: S2AP read and write bits are separate', () => {
    const { t } = table({ stage: 2 });
    t.map(0x1000, 0x5000, K4, IOMMU_WRITE);
    expect(t.translate(0x1000, ACCESS_READ).fault).toBe('permission');
    expect(t.translate(0x1000, ACCESS_WRITE).ok).toBe(true);
    t.map(0x2000, 0x6000, K4, IOMMU_READ | IOMMU_NOEXEC);
    expect(t.translate(0x2000, ACCESS_WRITE).fault).toBe('permission');
    expect(t.translate(0x2000, ACCESS_READ | ACCESS_EXEC).fault).toBe('permission');
  });

  it('access flag: AF=0 faults unless hardware AF update is on, which sets it', () => {
    const { t, memory } = table();
    t.map(0x1000, 0x5000, K4, RW);
    const entry = t.walk(0x1000).at(-1)?.entryAddress as number;
    memory.writeU32(entry, memory.readU32(entry) & ~(1 << 10));
    expect(t.translate(0x1000, ACCESS_READ).fault).toBe('access-flag');
    expect(t.translate(0x1000).ok).toBe(true); // a query is not an access
    t.hardwareAccessFlag = true;
    expect(t.translate(0x1000, ACCESS_READ).ok).toBe(true);
    expect(memory.readU32(entry) & (1 << 10)).toBe(0);
    expect(t.translate(0x1000, ACCESS_READ | ACCESS_UPDATE_AD).ok).toBe(true);
    expect(memory.readU32(entry) & (1 << 10)).not.toBe(0);
  });

  it('a block descriptor at level 3 or at a level without blocks is reserved', () => {
    const { t, memory } = table();
    t.map(0x1000, 0x5000, K4, RW);
    const steps = t.walk(0x1000);
    const l3 = steps[3]?.entryAddress as number;
    memory.writeU32(l3, (memory.readU32(l3) & ~3) | 1);
    expect(t.translate(0x1000).fault).toBe('reserved-bits');
    const l0 = steps[0]?.entryAddress as number;
    memory.writeU32(l0, (memory.readU32(l0) & ~3) | 1);
    expect(t.translate(0x1000).fault).toBe('reserved-bits');
  });
});

describe('dirty tracking (HTTU DBM scheme)', () => {
  it('stage 1: writable leaves carry DBM and start dirty; clear sets AP[2]; a write clears it again', () => {
    const { t } = table({ hardwareDirty: true, hardwareAccessFlag: true });
    t.map(0, 0x100000, 4 * K4, RW);
    t.map(4 * K4, 0x200000, K4, IOMMU_READ);
    expect((leafRaw(t, 0) >> 51n) & 1n).toBe(1n);
    expect((leafRaw(t, 0) >> 7n) & 1n).toBe(0n);
    expect((leafRaw(t, 4 * K4) >> 51n) & 1n).toBe(0n);
    const bitmap = { baseIova: 0, pageSize: K4, bits: new Uint8Array(1) };
    expect(t.readAndClearDirty(0, 8 * K4, bitmap)).toBe(4);
    expect(bitmap.bits[0]).toBe(0b1111);
    expect((leafRaw(t, 0) >> 7n) & 1n).toBe(1n); // writable-clean
    bitmap.bits[0] = 0;
    expect(t.readAndClearDirty(0, 8 * K4, bitmap)).toBe(0);
    expect(t.translate(2 * K4, ACCESS_READ | ACCESS_UPDATE_AD).ok).toBe(true);
    expect(t.lastWritableClean).toBe(true);
    expect(t.translate(2 * K4, ACCESS_WRITE | ACCESS_UPDATE_AD).ok).toBe(true);
    expect(t.readAndClearDirty(0, 8 * K4, bitmap, true)).toBe(1);
    expect(bitmap.bits[0]).toBe(0b100);
    expect(t.readAndClearDirty(0, 8 * K4, bitmap)).toBe(1); // noClear left it dirty
    // Without hardware dirty update a write to a clean leaf is a permission fault.
    t.hardwareDirty = false;
    expect(t.translate(0, ACCESS_WRITE | ACCESS_UPDATE_AD).fault).toBe('permission');
  });

  it('stage 2: the S2AP write bit is the dirty state', () => {
    const { t } = table({ stage: 2, hardwareDirty: true });
    t.map(0, 0x200000, M2, RW);
    const bitmap = { baseIova: 0, pageSize: M2, bits: new Uint8Array(1) };
    expect(t.readAndClearDirty(0, M2, bitmap)).toBe(1);
    expect((leafRaw(t, 0) >> 7n) & 1n).toBe(0n);
    expect(t.translate(0x1234, ACCESS_WRITE | ACCESS_UPDATE_AD).ok).toBe(true);
    expect((leafRaw(t, 0) >> 7n) & 1n).toBe(1n);
  });
});

describe('contiguous hint, large granules, 52-bit output', () => {
  it('decodes the contiguous bit: translate and leaves report the 64K span', () => {
    const { t, memory } = table();
    t.map(0x10000, 0x40000, 16 * K4, RW);
    for (let i = 0; i < 16; i++) {
      const e = t.walk(0x10000 + i * K4).at(-1)?.entryAddress as number;
      memory.writeU32(e + 4, memory.readU32(e + 4) | (1 << 20));
    }
    expect(t.translate(0x13456, ACCESS_READ)).toMatchObject({
      ok: true,
      pa: 0x43456,
      pageSize: 0x10000,
    });
    expect(t.leaves()).toEqual([{ iova: 0x10000, pa: 0x40000, size: 0x10000, prot: RW }]);
  });

  it('64K granule with 52-bit output: PA bits 51:48 live in bits 15:12, 4T blocks at L1', () => {
    const { t } = table({ granule: 65536, outputBits: 52, inputBits: 52 });
    expect(t.geometry.pageSizes).toEqual([65536, 2 ** 29, 2 ** 42]);
    const pa = 2 ** 50 + 0x30000;
    expect(t.map(0x20000, pa, 65536, RW)).toBe(65536);
    expect((leafRaw(t, 0x20000) >> 12n) & 0xfn).toBe(4n); // PA bit 50 -> bit 14
    expect(t.translate(0x2abcd, ACCESS_READ).pa).toBe(pa + 0xabcd);
    expect(t.map(2 ** 42, 2 ** 43, 2 ** 42, RW)).toBe(2 ** 42);
    expect(t.translate(2 ** 42 + 5).pageSize).toBe(2 ** 42);
    expect(t.walk(2 ** 42).at(-1)).toMatchObject({ level: 1, kind: 'leaf' });
  });

  it('16K granule maps 32M blocks', () => {
    const { t } = table({ granule: 16384 });
    expect(t.geometry.pageSizes).toEqual([16384, 2 ** 25]);
    expect(t.map(2 ** 25, 2 ** 26, 2 ** 25 + 16384, RW)).toBe(2 ** 25 + 16384);
    expect(t.leaves().map((l) => l.size)).toEqual([2 ** 25, 16384]);
  });

  it('free releases every table page', () => {
    const { t, allocator } = table();
    t.map(0, 0, 3 * M2 + 5 * K4, RW);
    t.map(7 * G1, 0, K4, RW);
    t.free();
    expect(allocator.framesInUse).toBe(0);
  });
});
