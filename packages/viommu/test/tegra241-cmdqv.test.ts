/**
 * Tegra241Cmdqv and VintfSidSlots: VINTF allocation (VINTF0 is the
 * kernel's; ENOSPC when the rest are taken), iommu_hw_info_tegra241_cmdqv,
 * the LVCMDQ geometry of tegra241_vintf_alloc_lvcmdq_user (uapi-notes.md,
 * IOMMU_HW_QUEUE_ALLOC: a power-of-two length from 32 bytes to
 * 2^(IDR1.CMDQS + 4), a base aligned to the length and inside VCMDQ_ADDR,
 * bits 47:5) and the SID_MATCH / SID_REPLACE pairs of a VINTF.
 */
import { EINVAL, ENOSPC, structs } from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { TEGRA241_VINTF_PAGE_BYTES, Tegra241Cmdqv, VintfSidSlots } from '../src/index.js';

describe('Tegra241Cmdqv: configuration and hw_info', () => {
  it('defaults: 4 VINTFs, 2 LVCMDQs and 16 SID pairs per VINTF', () => {
    const c = new Tegra241Cmdqv();
    expect([c.vintfs, c.lvcmdqsPerVintf, c.sidsPerVintf]).toEqual([4, 2, 16]);
  });

  it('every count must be a power of two from 1 to 128', () => {
    for (const bad of [0, 3, 6, 256, 1.5, -2, Number.NaN]) {
      expect(() => new Tegra241Cmdqv({ vintfs: bad }), String(bad)).toThrow(RangeError);
      expect(() => new Tegra241Cmdqv({ lvcmdqsPerVintf: bad })).toThrow(/lvcmdqsPerVintf/);
      expect(() => new Tegra241Cmdqv({ sidsPerVintf: bad })).toThrow(/sidsPerVintf/);
    }
    expect(
      () => new Tegra241Cmdqv({ vintfs: 128, lvcmdqsPerVintf: 1, sidsPerVintf: 64 }),
    ).not.toThrow();
  });

  it('hw_info is iommu_hw_info_tegra241_cmdqv: version 1, log2 of the queues and SID pairs per VINTF', () => {
    const c = new Tegra241Cmdqv({ lvcmdqsPerVintf: 8, sidsPerVintf: 32 });
    const bytes = c.hwInfo();
    expect(bytes.length).toBe(structs.iommu_hw_info_tegra241_cmdqv.sizeof);
    expect([...bytes]).toEqual([0, 0, 0, 0, 1, 3, 5, 0]);
    expect(structs.iommu_hw_info_tegra241_cmdqv.decode(bytes)).toMatchObject({
      flags: 0,
      version: 1,
      log2vcmdqs: 3,
      log2vsids: 5,
    });
    expect([...new Tegra241Cmdqv().hwInfo()]).toEqual([0, 0, 0, 0, 1, 1, 4, 0]);
  });

  it('a VINTF page is 64 KiB', () => {
    expect(TEGRA241_VINTF_PAGE_BYTES).toBe(65536);
  });
});

describe('Tegra241Cmdqv: VINTFs', () => {
  it('hands out the user VINTFs (never VINTF0), each once, then ENOSPC', () => {
    const c = new Tegra241Cmdqv({ vintfs: 4 });
    const got = [c.allocVintf(), c.allocVintf(), c.allocVintf()];
    expect(got.every((v) => typeof v === 'number')).toBe(true);
    expect(new Set(got)).toEqual(new Set([1, 2, 3]));
    const full = c.allocVintf();
    expect(full).toMatchObject({ errno: ENOSPC });
    expect(typeof full === 'number' ? '' : full.reason).toContain('3 user VINTFs');
  });

  it('a released VINTF is given out again; releasing VINTF0 or one out of range changes nothing', () => {
    const c = new Tegra241Cmdqv({ vintfs: 2 });
    expect(c.allocVintf()).toBe(1);
    expect(c.allocVintf()).toMatchObject({ errno: ENOSPC });
    c.releaseVintf(0);
    c.releaseVintf(9);
    expect(c.allocVintf()).toMatchObject({ errno: ENOSPC });
    c.releaseVintf(1);
    expect(c.allocVintf()).toBe(1);
  });

  it('a CMDQV with one VINTF has none for users', () => {
    expect(new Tegra241Cmdqv({ vintfs: 1 }).allocVintf()).toMatchObject({ errno: ENOSPC });
  });
});

describe('Tegra241Cmdqv: LVCMDQ geometry', () => {
  // IDR1.CMDQS = 8: at most 2^8 commands of 16 bytes, 4 KiB.
  const c = new Tegra241Cmdqv();
  const problem = (length: number, base: number) => c.lvcmdqProblem(length, base, 8);

  it('a power-of-two length from 32 bytes to 2^(CMDQS + 4) is accepted', () => {
    for (const length of [32, 64, 128, 1024, 4096])
      expect(problem(length, 0x10_0000), String(length)).toBeUndefined();
  });

  it('a length that is not a power of two, below 32 or above 2^(CMDQS + 4) is EINVAL', () => {
    for (const length of [0, 1, 16, 31, 48, 96, 4095, 8192]) {
      const p = problem(length, 0x10_0000);
      expect(p, String(length)).toMatchObject({ errno: EINVAL });
      expect(p?.reason).toContain('power of two from 32 to 4096');
    }
  });

  it('the maximum follows IDR1.CMDQS', () => {
    expect(c.lvcmdqProblem(1 << 23, 0, 19)).toBeUndefined();
    expect(c.lvcmdqProblem(1 << 24, 0, 19)).toMatchObject({ errno: EINVAL });
  });

  it('the base must be aligned to the length', () => {
    expect(problem(64, 0x1040)).toBeUndefined();
    expect(problem(64, 0x1020)).toMatchObject({ errno: EINVAL });
    expect(problem(4096, 0x1800)).toMatchObject({ errno: EINVAL });
    expect(problem(4096, 0x2000)).toBeUndefined();
    expect(problem(4096, 0x1800)?.reason).toContain('0x1800');
  });

  it('the base must fit VCMDQ_ADDR (bits 47:5): a physical address at or above 2^48 is EINVAL', () => {
    expect(problem(4096, 2 ** 48 - 4096)).toBeUndefined();
    expect(problem(4096, 2 ** 48)).toMatchObject({ errno: EINVAL });
    expect(problem(4096, 2 ** 50)).toMatchObject({ errno: EINVAL });
  });
});

describe('VintfSidSlots', () => {
  it('gives the lowest free pair, ENOSPC when all are used, and a freed pair again', () => {
    const s = new VintfSidSlots(3);
    expect([s.alloc(1n), s.alloc(2n), s.alloc(3n)]).toEqual([0, 1, 2]);
    const full = s.alloc(4n);
    expect(full).toMatchObject({ errno: ENOSPC });
    expect(typeof full === 'number' ? '' : full.reason).toContain('3 SID slots');
    s.release(1);
    expect(s.alloc(5n)).toBe(1);
    s.release(-1);
    s.release(3);
    expect(s.alloc(6n)).toMatchObject({ errno: ENOSPC });
  });

  it('a virt_id must fit 32 bits (tegra241_vintf_init_vsid: virt_sid > UINT_MAX is EINVAL), before any slot is taken', () => {
    const s = new VintfSidSlots(1);
    expect(s.alloc(0x1_0000_0000n)).toMatchObject({ errno: EINVAL });
    expect(s.alloc(0xffff_ffffn)).toBe(0);
  });
});
