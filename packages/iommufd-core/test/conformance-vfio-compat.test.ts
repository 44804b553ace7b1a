/**
 * Conformance of the VFIO type1 compatibility of Linux 6.17 (kernel-semantics
 * catalog 2.21, items 216–222): IOMMU_VFIO_IOAS and the VFIO container
 * ioctls an iommufd fd answers itself, driven through the syscall surface with
 * real struct bytes. Expectations come from vfio_compat.c / io_pagetable.c and
 * the selftests iommufd/{simple_ioctls, map_cmd, unmap_cmd, info_cmd,
 * set_iommu_cmd, vfio_ioas} and vfio_compat_mock_domain/{simple_close,
 * option_huge_pages, get_info, map, huge_map}; "(code)" marks behaviour read
 * from the source that no selftest asserts.
 */
import {
  E2BIG,
  EEXIST,
  EFAULT,
  EINVAL,
  ENODEV,
  ENOENT,
  ENOMEM,
  ENOTTY,
  EOPNOTSUPP,
  IOMMU_OPTION_HUGE_PAGES,
  IOMMU_OPTION_OP_GET,
  IOMMU_VFIO_IOAS,
  IOMMU_VFIO_IOAS_CLEAR,
  IOMMU_VFIO_IOAS_GET,
  IOMMU_VFIO_IOAS_SET,
  IOMMUFD_CMD_BASE,
  IOMMUFD_TYPE,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES,
  structs,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DMA_CC_IOMMU,
  VFIO_DMA_MAP_FLAG_READ,
  VFIO_DMA_MAP_FLAG_VADDR,
  VFIO_DMA_MAP_FLAG_WRITE,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  VFIO_DMA_UNMAP_FLAG_VADDR,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_INFO_CAPS,
  VFIO_IOMMU_INFO_PGSIZES,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
  VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_NOIOMMU_IOMMU,
  VFIO_SET_IOMMU,
  VFIO_SPAPR_TCE_IOMMU,
  VFIO_TYPE1_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  VFIO_UNMAP_ALL,
  VFIO_UPDATE_VADDR,
} from '@iommufd-sim/uapi-types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Host, Process } from '../src/index.js';
import {
  accessPages,
  addReserved,
  checkMap,
  checkRefs,
  closeAndCheck,
  createAccess,
  destroy,
  destroyAccessPages,
  ioasAlloc,
  mockDomain,
  option,
  PAGE,
  setup,
  U64_MAX,
} from './helpers.js';

const APERTURE = BigInt(MOCK_APERTURE_START);
const APERTURE_LAST = BigInt(MOCK_APERTURE_LAST);
const HPAGE = 2n << 20n;
/** The selftests' BUFFER_SIZE: 16 pages. */
const BUFFER_SIZE = 16n * PAGE;
const RW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
const VERSIONS = [
  ['Ver1v2', VFIO_TYPE1v2_IOMMU],
  ['Ver1v0', VFIO_TYPE1_IOMMU],
] as const;

// ---- the calls, as iommufd_utils.h and the selftests make them ----------------------

/** IOMMU_VFIO_IOAS; returns rc and the ioas_id written back. */
function vfioIoas(
  proc: Process,
  fd: number,
  op: number,
  ioasId = 0,
  extra: { size?: number; __reserved?: number } = {},
): { rc: number; ioasId: number } {
  const b = structs.iommu_vfio_ioas.encode({ size: 12, ioas_id: ioasId, op, ...extra });
  const rc = proc.ioctl(fd, IOMMU_VFIO_IOAS, b);
  return { rc, ioasId: structs.iommu_vfio_ioas.decode(b).ioas_id };
}

/** VFIO_CHECK_EXTENSION / VFIO_SET_IOMMU: the argument is the number itself. */
function intIoctl(proc: Process, fd: number, request: number, value: number | bigint): number {
  return proc.ioctl(fd, request, BigInt(value));
}

type MapFields = Parameters<typeof structs.vfio_iommu_type1_dma_map.encode>[0];
type UnmapFields = Parameters<typeof structs.vfio_iommu_type1_dma_unmap.encode>[0];

/** VFIO_IOMMU_MAP_DMA with `fields` (argsz 32 and READ|WRITE unless given). */
function mapDma(proc: Process, fd: number, fields: MapFields): number {
  return proc.ioctl(
    fd,
    VFIO_IOMMU_MAP_DMA,
    structs.vfio_iommu_type1_dma_map.encode({ argsz: 32, flags: RW, ...fields }),
  );
}

/** VFIO_IOMMU_UNMAP_DMA with `fields` (argsz 24 unless given); returns rc and the size written back. */
function unmapDma(proc: Process, fd: number, fields: UnmapFields): { rc: number; size: bigint } {
  const b = structs.vfio_iommu_type1_dma_unmap.encode({ argsz: 24, ...fields });
  const rc = proc.ioctl(fd, VFIO_IOMMU_UNMAP_DMA, b);
  return { rc, size: structs.vfio_iommu_type1_dma_unmap.decode(b).size };
}

/** A fresh anonymous buffer of `bytes` (2 MiB aligned from 2 MiB up, as THP-backed mmaps are). */
function buffer(proc: Process, bytes: bigint): bigint {
  const va = proc.mmap(bytes);
  if (va < 0n) throw new Error(`mmap failed ${va}`);
  return va;
}

/** The vfio_compat_mock_domain fixture: an IOAS with a mock domain, made the compat IOAS, SET_IOMMU(version). */
function compatEnv(version: number): {
  host: Host;
  proc: Process;
  fd: number;
  ioas: number;
  hwpt: number;
} {
  const { host, proc, fd } = setup();
  const ioas = ioasAlloc(proc, fd);
  const md = mockDomain(proc, fd, ioas);
  if (md.rc !== 0) throw new Error(`MOCK_DOMAIN failed ${md.rc}`);
  if (vfioIoas(proc, fd, IOMMU_VFIO_IOAS_SET, ioas).rc !== 0) throw new Error('VFIO_IOAS SET');
  if (intIoctl(proc, fd, VFIO_SET_IOMMU, version) !== 0) throw new Error('SET_IOMMU');
  return { host, proc, fd, ioas, hwpt: md.hwptId };
}

// ---- GET_INFO through process memory, with the selftests' overflow check -----------

const INFO_PAGE = 4096n;

/**
 * ioctl_check_buf: the argument sits at the start of a page filled with 0xAA
 * past `argsz`; the call must succeed and leave every byte past argsz alone.
 * Returns the bytes of the page after the call.
 */
function getInfoChecked(proc: Process, fd: number, va: bigint, argsz: number): Uint8Array {
  const page = new Uint8Array(Number(INFO_PAGE)).fill(0xaa);
  page.fill(0, 0, argsz);
  new DataView(page.buffer).setUint32(0, argsz, true);
  expect(proc.writeMemory(va, page)).toBe(0);
  expect(proc.ioctl(fd, VFIO_IOMMU_GET_INFO, va)).toBe(0);
  const after = proc.readMemory(va, Number(INFO_PAGE)) as Uint8Array;
  expect(
    after.subarray(argsz).every((b) => b === 0xaa),
    `nothing written past argsz ${argsz}`,
  ).toBe(true);
  return after;
}

interface Cap {
  offset: number;
  id: number;
  version: number;
  next: number;
}

/** check_vfio_info_cap_chain: walk the chain inside argsz, checking each capability. */
function checkCapChain(buf: Uint8Array, argsz: number, capOffset: number): Cap[] {
  const caps: Cap[] = [];
  expect(argsz).toBeGreaterThanOrEqual(capOffset + 8);
  let at = capOffset;
  for (;;) {
    const h = structs.vfio_info_cap_header.decode(buf, at);
    const capSize = (h.next !== 0 ? h.next : argsz) - at;
    caps.push({ offset: at, ...h });
    expect(h.version).toBe(1);
    if (h.id === VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
      const cap = structs.vfio_iommu_type1_info_cap_iova_range.decode(buf, at);
      expect(cap.nr_iovas).toBe(1);
      const range = structs.vfio_iova_range.decode(buf, at + 16);
      expect(range).toEqual({ start: APERTURE, end: APERTURE_LAST });
    } else if (h.id === VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
      // 12 bytes, padded to 8 in the chain. (The selftest's chain check expects 12, but
      // its loop stops below the full argsz, where cap_offset is always 0.)
      expect(capSize).toBe(16);
      expect(structs.vfio_iommu_type1_info_dma_avail.sizeof).toBe(12);
      expect(structs.vfio_iommu_type1_info_dma_avail.decode(buf, at).avail).toBe(0xffffffff);
    } else {
      throw new Error(`unexpected capability id ${h.id}`);
    }
    if (h.next === 0) break;
    expect(argsz).toBeGreaterThanOrEqual(h.next + 8);
    expect(h.next).toBeGreaterThanOrEqual(at);
    at = h.next;
  }
  return caps;
}

// ---------------------------------------------------------------------------------------

describe('2.21 VFIO compatibility on a /dev/iommu fd', () => {
  it('216: VFIO_GET_API_VERSION → VFIO_API_VERSION (0); CHECK_EXTENSION(TYPE1v2) → 1', () => {
    const { host, proc, fd } = setup();
    expect(proc.ioctl(fd, VFIO_GET_API_VERSION, 0n)).toBe(VFIO_API_VERSION);
    expect(VFIO_API_VERSION).toBe(0);
    expect(intIoctl(proc, fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU)).toBe(1);
    closeAndCheck(host, proc, fd);
  });

  it('216 (code): CHECK_EXTENSION answers 1 for TYPE1, TYPE1v2 and UNMAP_ALL, 0 for the rest, without a compat IOAS', () => {
    const { host, proc, fd } = setup();
    for (const [ext, want] of [
      [VFIO_TYPE1_IOMMU, 1],
      [VFIO_TYPE1v2_IOMMU, 1],
      [VFIO_UNMAP_ALL, 1],
      [0, 0],
      [VFIO_SPAPR_TCE_IOMMU, 0],
      [5, 0], // VFIO_EEH
      [6, 0], // the withdrawn type1 nesting IOMMU
      [7, 0], // sPAPR TCE v2
      [VFIO_NOIOMMU_IOMMU, 0], // as without CONFIG_VFIO_NOIOMMU
      [VFIO_UPDATE_VADDR, 0], // the VADDR flags are not emulated
      [11, 0],
    ] as const) {
      expect(intIoctl(proc, fd, VFIO_CHECK_EXTENSION, ext), `extension ${ext}`).toBe(want);
    }
    // The argument is a full unsigned long: 2^32 + 3 is not TYPE1v2.
    expect(intIoctl(proc, fd, VFIO_CHECK_EXTENSION, (1n << 32n) + 3n)).toBe(0);
    // A buffer is a pointer, never a small number.
    expect(proc.ioctl(fd, VFIO_CHECK_EXTENSION, new Uint8Array([3, 0, 0, 0]))).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('216 (code): CHECK_EXTENSION(VFIO_DMA_CC_IOMMU) needs a compat IOAS (ENODEV); 1 without a HWPT, 0 with the mock domain', () => {
    const { host, proc, fd } = setup();
    expect(intIoctl(proc, fd, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU)).toBe(-ENODEV);
    const ioas = ioasAlloc(proc, fd);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_SET, ioas).rc).toBe(0);
    expect(intIoctl(proc, fd, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU)).toBe(1);
    // The mock driver cannot enforce cache coherency (no enforce_cache_coherency op).
    expect(mockDomain(proc, fd, ioas).rc).toBe(0);
    expect(intIoctl(proc, fd, VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('217: MAP_DMA with argsz 1 or flag bit 31 → EINVAL; with no compat IOAS → ENODEV', () => {
    const { host, proc, fd } = setup();
    const buf = buffer(proc, BUFFER_SIZE);
    const cmd = { iova: APERTURE, size: PAGE, vaddr: buf };
    expect(mapDma(proc, fd, { ...cmd, argsz: 1 })).toBe(-EINVAL);
    expect(proc.lastError()?.reason).toMatch(/argsz 1 is below 32/);
    expect(mapDma(proc, fd, { ...cmd, flags: 0x80000000 })).toBe(-EINVAL);
    expect(mapDma(proc, fd, { ...cmd, flags: RW })).toBe(-ENODEV);
    expect(proc.lastError()).toMatchObject({ call: 'VFIO_IOMMU_MAP_DMA', name: 'ENODEV' });
    closeAndCheck(host, proc, fd);
  });

  it('217: UNMAP_DMA with argsz 1 or flag bit 31 → EINVAL; with no compat IOAS → ENODEV', () => {
    const { host, proc, fd } = setup();
    const cmd = { iova: APERTURE, size: PAGE };
    expect(unmapDma(proc, fd, { ...cmd, argsz: 1 }).rc).toBe(-EINVAL);
    expect(unmapDma(proc, fd, { ...cmd, flags: 0x80000000 }).rc).toBe(-EINVAL);
    expect(unmapDma(proc, fd, { ...cmd, flags: 0 })).toEqual({ rc: -ENODEV, size: PAGE });
    closeAndCheck(host, proc, fd);
  });

  it('217 (code): the fixed part is read whole first (EFAULT), VADDR and dirty-bitmap flags are EINVAL', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_SET, ioas).rc).toBe(0);
    // NULL, or a buffer shorter than the 32 / 24 bytes copy_from_user takes.
    expect(proc.ioctl(fd, VFIO_IOMMU_MAP_DMA, 0n)).toBe(-EFAULT);
    expect(proc.ioctl(fd, VFIO_IOMMU_UNMAP_DMA, 0n)).toBe(-EFAULT);
    expect(proc.ioctl(fd, VFIO_IOMMU_GET_INFO, 0n)).toBe(-EFAULT);
    const short = structs.vfio_iommu_type1_dma_map.encode({ argsz: 32 }).subarray(0, 31);
    expect(proc.ioctl(fd, VFIO_IOMMU_MAP_DMA, short)).toBe(-EFAULT);
    const shortUnmap = structs.vfio_iommu_type1_dma_unmap.encode({ argsz: 24 }).subarray(0, 20);
    expect(proc.ioctl(fd, VFIO_IOMMU_UNMAP_DMA, shortUnmap)).toBe(-EFAULT);
    // Flags the type1 driver knows but iommufd does not emulate.
    expect(mapDma(proc, fd, { flags: VFIO_DMA_MAP_FLAG_VADDR })).toBe(-EINVAL);
    expect(unmapDma(proc, fd, { flags: VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP }).rc).toBe(-EINVAL);
    expect(unmapDma(proc, fd, { flags: VFIO_DMA_UNMAP_FLAG_VADDR }).rc).toBe(-EINVAL);
    // A larger argsz is fine: only the fixed part is read.
    const buf = buffer(proc, PAGE);
    const big = new Uint8Array(64).fill(0x55);
    structs.vfio_iommu_type1_dma_map.encode(
      { argsz: 64, flags: RW, vaddr: buf, iova: PAGE, size: PAGE },
      big,
    );
    expect(proc.ioctl(fd, VFIO_IOMMU_MAP_DMA, big)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('218: GET_INFO with argsz 1 → EINVAL; with no compat IOAS → ENODEV', () => {
    const { host, proc, fd } = setup();
    const info = (argsz: number) =>
      proc.ioctl(fd, VFIO_IOMMU_GET_INFO, structs.vfio_iommu_type1_info.encode({ argsz }));
    expect(info(1)).toBe(-EINVAL);
    expect(info(15)).toBe(-EINVAL);
    expect(info(24)).toBe(-ENODEV);
    closeAndCheck(host, proc, fd);
  });

  it('218: SET_IOMMU(TYPE1v2) and SET_IOMMU(TYPE1) with no compat IOAS → ENODEV', () => {
    const { host, proc, fd } = setup();
    expect(intIoctl(proc, fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(-ENODEV);
    expect(intIoctl(proc, fd, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU)).toBe(-ENODEV);
    closeAndCheck(host, proc, fd);
  });

  it('218 (code): SET_IOMMU checks the type before the IOAS: anything but type1 / type1v2 is EINVAL', () => {
    const { host, proc, fd } = setup();
    for (const type of [0, VFIO_SPAPR_TCE_IOMMU, VFIO_NOIOMMU_IOMMU, VFIO_UNMAP_ALL]) {
      expect(intIoctl(proc, fd, VFIO_SET_IOMMU, type), `type ${type}`).toBe(-EINVAL);
    }
    expect(proc.ioctl(fd, VFIO_SET_IOMMU, new Uint8Array(4))).toBe(-EINVAL);
    expect(proc.lastError()?.reason).toMatch(/bigint/);
    closeAndCheck(host, proc, fd);
  });

  it('218 (code): SET_IOMMU(TYPE1) is EINVAL once a domain maps areas (large pages cannot be turned off); TYPE1v2 is fine', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(mockDomain(proc, fd, ioas).rc).toBe(0);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_SET, ioas).rc).toBe(0);
    const buf = buffer(proc, PAGE);
    expect(mapDma(proc, fd, { vaddr: buf, iova: APERTURE, size: PAGE })).toBe(0);
    expect(intIoctl(proc, fd, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU)).toBe(-EINVAL);
    expect(option(proc, fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas).val64).toBe(1n);
    expect(intIoctl(proc, fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('219: IOMMU_VFIO_IOAS: GET with none → ENODEV; SET id 0 → ENOENT; SET then GET → the id; CLEAR then GET → ENODEV', () => {
    const { host, proc, fd } = setup();
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_GET).rc).toBe(-ENODEV);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_SET, 0).rc).toBe(-ENOENT);
    const ioas = ioasAlloc(proc, fd);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_SET, ioas).rc).toBe(0);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_GET)).toEqual({ rc: 0, ioasId: ioas });
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_CLEAR).rc).toBe(0);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_GET).rc).toBe(-ENODEV);
    closeAndCheck(host, proc, fd);
  });

  it('219 (code): __reserved → EOPNOTSUPP first; unknown op → EOPNOTSUPP; SET of a non-IOAS → ENOENT; the size rules apply', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, ioas);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_GET, 0, { __reserved: 1 }).rc).toBe(-EOPNOTSUPP);
    expect(vfioIoas(proc, fd, 3).rc).toBe(-EOPNOTSUPP);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_SET, md.hwptId).rc).toBe(-ENOENT);
    expect(proc.lastError()?.reason).toMatch(/HWPT_PAGING, not an IOAS/);
    // cmd_length: below the minimum (12) EINVAL, a non-zero byte past sizeof E2BIG.
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_GET, 0, { size: 11 }).rc).toBe(-EINVAL);
    const longer = new Uint8Array(13);
    structs.iommu_vfio_ioas.encode({ size: 13, op: IOMMU_VFIO_IOAS_SET, ioas_id: ioas }, longer);
    longer[12] = 0xff;
    expect(proc.ioctl(fd, IOMMU_VFIO_IOAS, longer)).toBe(-E2BIG);
    longer[12] = 0;
    expect(proc.ioctl(fd, IOMMU_VFIO_IOAS, longer)).toBe(0);
    // SET names it; SET again with another IOAS replaces it (nothing is destroyed).
    const other = ioasAlloc(proc, fd);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_SET, other).rc).toBe(0);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_GET).ioasId).toBe(other);
    // Destroying the compat IOAS turns compatibility off.
    expect(destroy(proc, fd, other)).toBe(0);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_GET).rc).toBe(-ENODEV);
    expect(mapDma(proc, fd, { vaddr: buffer(proc, PAGE), iova: APERTURE, size: PAGE })).toBe(
      -ENODEV,
    );
    closeAndCheck(host, proc, fd);
  });

  it('219 (code): the container ioctls never create a compat IOAS on their own', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(mockDomain(proc, fd, ioas).rc).toBe(0);
    expect(intIoctl(proc, fd, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)).toBe(-ENODEV);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_GET).rc).toBe(-ENODEV);
    expect(proc.inspect(fd)?.ioas.map((i) => i.id)).toEqual([ioas]);
    closeAndCheck(host, proc, fd);
  });

  it('(code): other numbers below the iommufd base are ENOTTY, VFIO_IOMMU_DIRTY_PAGES included', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_SET, ioas).rc).toBe(0);
    const arg = new Uint8Array(64);
    for (const request of [
      VFIO_IOMMU_DIRTY_PAGES,
      0x3b67, // VFIO_GROUP_GET_STATUS
      0x3b73, // VFIO_IOMMU_ENABLE
      (IOMMUFD_TYPE << 8) | (IOMMUFD_CMD_BASE - 1), // iommufd/cmd_fail
      (0x3c << 8) | 0x64, // VFIO_GET_API_VERSION's number under another type
      0xc0183b71, // VFIO_IOMMU_MAP_DMA with a size and direction in the number
    ]) {
      expect(proc.ioctl(fd, request, arg), `0x${request.toString(16)}`).toBe(-ENOTTY);
    }
    closeAndCheck(host, proc, fd);
  });
});

describe.each(VERSIONS)('vfio_compat_mock_domain (%s)', (variant, version) => {
  it(`simple_close: set up and close, nothing stays pinned [${variant}]`, () => {
    const { host, proc, fd } = compatEnv(version);
    closeAndCheck(host, proc, fd);
  });

  it('221: IOMMU_OPTION HUGE_PAGES of the compat IOAS reads 0 under type1, 1 under type1v2', () => {
    const { host, proc, fd, ioas } = compatEnv(version);
    const got = option(proc, fd, IOMMU_OPTION_HUGE_PAGES, IOMMU_OPTION_OP_GET, ioas, 3n);
    expect(got).toEqual({ rc: 0, val64: version === VFIO_TYPE1_IOMMU ? 0n : 1n });
    closeAndCheck(host, proc, fd);
  });

  it('222: GET_INFO: PGSIZES|CAPS, argsz grows to the whole chain, DMA_AVAIL + IOVA_RANGE (the aperture), nothing written past argsz', () => {
    const { host, proc, fd } = compatEnv(version);
    const va = buffer(proc, INFO_PAGE);
    const flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS;

    // The pre-cap ABI: argsz ends before cap_offset.
    let buf = getInfoChecked(proc, fd, va, 16);
    let info = structs.vfio_iommu_type1_info.decode(buf);
    expect(info.iova_pgsizes).not.toBe(0n);
    expect(info.flags).toBe(flags);

    // The fixed part only: cap_offset stays 0 and argsz says how much the chain needs.
    buf = getInfoChecked(proc, fd, va, 24);
    info = structs.vfio_iommu_type1_info.decode(buf);
    expect(info.flags).toBe(flags);
    expect(info.cap_offset).toBe(0);
    expect(info.argsz).toBeGreaterThan(24);
    const caplen = info.argsz;

    // Every size in between: a chain is either absent or whole and well formed.
    for (let i = 24; i < caplen; i++) {
      buf = getInfoChecked(proc, fd, va, i);
      info = structs.vfio_iommu_type1_info.decode(buf);
      expect(info.flags).toBe(flags);
      expect(info.argsz).toBe(caplen);
      if (info.cap_offset !== 0) checkCapChain(buf, i, info.cap_offset);
    }

    // Enough room: the whole chain, DMA_AVAIL first (12 bytes padded to 16), then IOVA_RANGE.
    buf = getInfoChecked(proc, fd, va, caplen);
    info = structs.vfio_iommu_type1_info.decode(buf);
    expect(info).toEqual({
      argsz: 24 + 16 + 16 + 16,
      flags,
      iova_pgsizes: 4096n, // the mock's 2 KiB pages count as PAGE_SIZE
      cap_offset: 24,
      pad: 0,
    });
    expect(checkCapChain(buf, caplen, 24)).toEqual([
      { offset: 24, id: VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, version: 1, next: 40 },
      { offset: 40, id: VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, version: 1, next: 0 },
    ]);
    closeAndCheck(host, proc, fd);
  });

  it('220: map then unmap → size; UNMAP_FLAG_ALL with a non-zero iova or size → EINVAL, with 0,0 → 0; page-sized maps unmap in any order', () => {
    const { host, proc, fd } = compatEnv(version);
    const buf = buffer(proc, BUFFER_SIZE);
    const mapCmd = { vaddr: buf, size: BUFFER_SIZE, iova: APERTURE };

    // Simple map/unmap.
    expect(mapDma(proc, fd, mapCmd)).toBe(0);
    expect(unmapDma(proc, fd, { size: BUFFER_SIZE, iova: APERTURE })).toEqual({
      rc: 0,
      size: BUFFER_SIZE,
    });

    // UNMAP_FLAG_ALL requires iova and size 0.
    expect(mapDma(proc, fd, mapCmd)).toBe(0);
    const all = { flags: VFIO_DMA_UNMAP_FLAG_ALL };
    expect(unmapDma(proc, fd, { ...all, size: BUFFER_SIZE, iova: APERTURE })).toEqual({
      rc: -EINVAL,
      size: BUFFER_SIZE, // nothing is written back on this failure
    });
    expect(unmapDma(proc, fd, { ...all, iova: 0n, size: 0n })).toEqual({
      rc: 0,
      size: BUFFER_SIZE,
    });

    // Small pages, unmapped in a shuffled order.
    const iovas: bigint[] = [];
    for (let i = 0n; i < BUFFER_SIZE / PAGE; i++) {
      iovas.push(APERTURE + i * PAGE);
      expect(
        mapDma(proc, fd, { vaddr: buf + i * PAGE, size: PAGE, iova: APERTURE + i * PAGE }),
      ).toBe(0);
    }
    const order = fc.sample(fc.shuffledSubarray(iovas, { minLength: iovas.length }), {
      numRuns: 1,
      seed: 42,
    })[0] as bigint[];
    for (const iova of order) {
      expect(unmapDma(proc, fd, { size: PAGE, iova })).toEqual({ rc: 0, size: PAGE });
    }
    closeAndCheck(host, proc, fd);
  });

  it('220 (code): unmapping a range with nothing mapped is ENOENT with size 0 written back; UNMAP_FLAG_ALL of an empty IOAS → 0, size 0', () => {
    const { host, proc, fd } = compatEnv(version);
    expect(unmapDma(proc, fd, { size: PAGE, iova: APERTURE })).toEqual({ rc: -ENOENT, size: 0n });
    expect(unmapDma(proc, fd, { flags: VFIO_DMA_UNMAP_FLAG_ALL })).toEqual({ rc: 0, size: 0n });
    // Length 0 and a wrap are refused by iopt_unmap_iova, size written back as 0.
    expect(unmapDma(proc, fd, { size: 0n, iova: APERTURE })).toEqual({ rc: -EINVAL, size: 0n });
    expect(unmapDma(proc, fd, { size: 2n * PAGE, iova: U64_MAX - PAGE + 1n })).toEqual({
      rc: -75, // EOVERFLOW
      size: 0n,
    });
    closeAndCheck(host, proc, fd);
  });

  it('220 (code): only the 24-byte fixed part comes back, whatever argsz says', () => {
    const { host, proc, fd } = compatEnv(version);
    const buf = buffer(proc, PAGE);
    expect(mapDma(proc, fd, { vaddr: buf, size: PAGE, iova: APERTURE })).toBe(0);
    const arg = new Uint8Array(40).fill(0xaa);
    structs.vfio_iommu_type1_dma_unmap.encode({ argsz: 40, iova: APERTURE, size: 64n * PAGE }, arg);
    expect(proc.ioctl(fd, VFIO_IOMMU_UNMAP_DMA, arg)).toBe(0);
    expect(structs.vfio_iommu_type1_dma_unmap.decode(arg)).toEqual({
      argsz: 40,
      flags: 0,
      iova: APERTURE,
      size: PAGE,
    });
    expect(arg.subarray(24).every((b) => b === 0xaa)).toBe(true);
    closeAndCheck(host, proc, fd);
  });

  it('220 (code): maps are FIXED, checked and pinned as IOAS_MAP checks them', () => {
    const { host, proc, fd, hwpt } = compatEnv(version);
    const buf = buffer(proc, 4n * PAGE);
    expect(mapDma(proc, fd, { vaddr: buf, size: 2n * PAGE, iova: APERTURE })).toBe(0);
    expect(checkMap(proc, fd, hwpt, APERTURE, 2n * PAGE, buf)).toBe(0);
    expect(checkRefs(proc, fd, buf, 2n * PAGE, 1)).toBe(0);
    // Overlap → EEXIST; outside the aperture (reserved) → EINVAL; a length of 0 → EINVAL.
    expect(mapDma(proc, fd, { vaddr: buf, size: PAGE, iova: APERTURE + PAGE })).toBe(-EEXIST);
    expect(mapDma(proc, fd, { vaddr: buf, size: PAGE, iova: 0n })).toBe(-EINVAL);
    expect(mapDma(proc, fd, { vaddr: buf, size: 0n, iova: APERTURE + 4n * PAGE })).toBe(-EINVAL);
    // Unaligned to the IOAS (a page under type1, the mock's 2 KiB under type1v2).
    expect(mapDma(proc, fd, { vaddr: buf, size: PAGE, iova: APERTURE + 8n * PAGE + 1n })).toBe(
      -EINVAL,
    );
    // Neither READ nor WRITE is allowed here (only IOMMU_CACHE is asked for).
    expect(
      mapDma(proc, fd, {
        flags: 0,
        vaddr: buf + 2n * PAGE,
        size: PAGE,
        iova: APERTURE + 8n * PAGE,
      }),
    ).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('220 (code): compat maps are charged like IOAS_MAP: over RLIMIT_MEMLOCK → ENOMEM, nothing left pinned', () => {
    const { host, proc: root, fd } = compatEnv(version);
    root.close(fd);
    const proc = host.createProcess({ privileged: false, memlockLimitBytes: 4n * PAGE });
    const fd2 = proc.open('/dev/iommu');
    const ioas = ioasAlloc(proc, fd2);
    expect(mockDomain(proc, fd2, ioas).rc).toBe(0);
    expect(vfioIoas(proc, fd2, IOMMU_VFIO_IOAS_SET, ioas).rc).toBe(0);
    expect(intIoctl(proc, fd2, VFIO_SET_IOMMU, version)).toBe(0);
    const buf = buffer(proc, 8n * PAGE);
    expect(mapDma(proc, fd2, { vaddr: buf, size: 8n * PAGE, iova: APERTURE })).toBe(-ENOMEM);
    expect(host.pinnedPages()).toBe(0);
    expect(mapDma(proc, fd2, { vaddr: buf, size: 4n * PAGE, iova: APERTURE })).toBe(0);
    expect(proc.status().pinnedBytes).toBe(4n * PAGE);
    closeAndCheck(host, proc, fd2);
  });

  it('221: a 2·HPAGE map cut into 16 unmaps: every one succeeds under type1, every one is ENOENT under type1v2', () => {
    const { host, proc, fd, hwpt } = compatEnv(version);
    const size = 2n * HPAGE;
    const buf = buffer(proc, size);
    expect(buf % HPAGE).toBe(0n);
    expect(mapDma(proc, fd, { vaddr: buf, size, iova: APERTURE })).toBe(0);
    const piece = size / 16n;
    const iovas = Array.from({ length: 16 }, (_, i) => APERTURE + BigInt(i) * piece);
    const order = fc.sample(fc.shuffledSubarray(iovas, { minLength: 16 }), {
      numRuns: 1,
      seed: 7,
    })[0] as bigint[];
    const gone = new Set<bigint>();
    for (const iova of order) {
      const got = unmapDma(proc, fd, { iova, size: piece });
      if (version === VFIO_TYPE1_IOMMU) {
        expect(got).toEqual({ rc: 0, size: piece });
        gone.add(iova);
        // What is left is still mapped to the right pages, and pinned once.
        for (const other of iovas) {
          if (gone.has(other)) continue;
          const va = buf + (other - APERTURE);
          expect(checkMap(proc, fd, hwpt, other, piece, va)).toBe(0);
          expect(checkRefs(proc, fd, va, piece, 1)).toBe(0);
        }
      } else {
        expect(got).toEqual({ rc: -ENOENT, size: 0n });
      }
    }
    expect(proc.status().pinnedBytes).toBe(version === VFIO_TYPE1_IOMMU ? 0n : size);
    closeAndCheck(host, proc, fd);
  });

  it('221 (code): type1 cuts at both ends, so one unmap can take the middle of a map and whole maps beside it', () => {
    const { host, proc, fd } = compatEnv(version);
    const buf = buffer(proc, 8n * PAGE);
    expect(mapDma(proc, fd, { vaddr: buf, size: 4n * PAGE, iova: APERTURE })).toBe(0);
    expect(
      mapDma(proc, fd, { vaddr: buf + 4n * PAGE, size: 4n * PAGE, iova: APERTURE + 4n * PAGE }),
    ).toBe(0);
    const got = unmapDma(proc, fd, { iova: APERTURE + PAGE, size: 6n * PAGE });
    if (version === VFIO_TYPE1_IOMMU) {
      expect(got).toEqual({ rc: 0, size: 6n * PAGE });
      expect(proc.inspect(fd)?.ioas[0]?.areas.map((a) => [a.iova, a.last])).toEqual([
        [APERTURE, APERTURE + PAGE - 1n],
        [APERTURE + 7n * PAGE, APERTURE + 8n * PAGE - 1n],
      ]);
    } else {
      // The first map sticks out: ENOENT before anything is unmapped.
      expect(got).toEqual({ rc: -ENOENT, size: 0n });
    }
    closeAndCheck(host, proc, fd);
  });

  it('221 (code): type1v2 partial unmaps are not atomic: whole maps met first go, and size says how much', () => {
    const { host, proc, fd } = compatEnv(version);
    const buf = buffer(proc, 8n * PAGE);
    expect(mapDma(proc, fd, { vaddr: buf, size: 2n * PAGE, iova: APERTURE })).toBe(0);
    expect(
      mapDma(proc, fd, { vaddr: buf + 2n * PAGE, size: 4n * PAGE, iova: APERTURE + 2n * PAGE }),
    ).toBe(0);
    const got = unmapDma(proc, fd, { iova: APERTURE, size: 4n * PAGE });
    if (version === VFIO_TYPE1_IOMMU) {
      expect(got).toEqual({ rc: 0, size: 4n * PAGE });
    } else {
      expect(got).toEqual({ rc: -ENOENT, size: 2n * PAGE });
    }
    closeAndCheck(host, proc, fd);
  });

  it('221 (code): type1 refuses to cut where the IOAS alignment or an access pin forbids it (EINVAL, nothing written back)', () => {
    const { host, proc, fd, ioas } = compatEnv(version);
    const buf = buffer(proc, 4n * PAGE);
    expect(mapDma(proc, fd, { vaddr: buf, size: 4n * PAGE, iova: APERTURE })).toBe(0);
    // A cut inside a page.
    const mid = unmapDma(proc, fd, { iova: APERTURE + 2048n, size: PAGE });
    expect(mid).toEqual(
      version === VFIO_TYPE1_IOMMU ? { rc: -EINVAL, size: PAGE } : { rc: -ENOENT, size: 0n },
    );
    // An access that pinned part of the map.
    const { rc, accessFd } = createAccess(proc, fd, ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES);
    expect(rc).toBe(0);
    const item = accessPages(proc, fd, accessFd, APERTURE + 3n * PAGE, PAGE);
    expect(item.rc).toBe(0);
    const cut = unmapDma(proc, fd, { iova: APERTURE, size: PAGE });
    expect(cut).toEqual(
      version === VFIO_TYPE1_IOMMU ? { rc: -EINVAL, size: PAGE } : { rc: -ENOENT, size: 0n },
    );
    if (version === VFIO_TYPE1_IOMMU) expect(proc.lastError()?.reason).toMatch(/access/);
    expect(destroyAccessPages(proc, fd, accessFd, item.item)).toBe(0);
    expect(proc.close(accessFd)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('222 (code): without a domain the single IOVA range is the whole space; a reservation splits it', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    expect(vfioIoas(proc, fd, IOMMU_VFIO_IOAS_SET, ioas).rc).toBe(0);
    expect(intIoctl(proc, fd, VFIO_SET_IOMMU, version)).toBe(0);
    const read = (argsz: number) => {
      const b = new Uint8Array(argsz);
      new DataView(b.buffer).setUint32(0, argsz, true);
      expect(proc.ioctl(fd, VFIO_IOMMU_GET_INFO, b)).toBe(0);
      return b;
    };
    let b = read(128);
    // No domain: every page size from PAGE_SIZE up.
    expect(structs.vfio_iommu_type1_info.decode(b)).toMatchObject({
      argsz: 72,
      cap_offset: 24,
      iova_pgsizes: U64_MAX - PAGE + 1n,
    });
    expect(structs.vfio_iommu_type1_info_cap_iova_range.decode(b, 40).nr_iovas).toBe(1);
    expect(structs.vfio_iova_range.decode(b, 56)).toEqual({ start: 0n, end: U64_MAX });
    expect(addReserved(proc, fd, ioas, 0x10000n, 0x10000n)).toBe(0);
    b = read(128);
    expect(structs.vfio_iommu_type1_info.decode(b).argsz).toBe(88);
    expect(structs.vfio_iommu_type1_info_cap_iova_range.decode(b, 40).nr_iovas).toBe(2);
    expect(structs.vfio_iova_range.decode(b, 56)).toEqual({ start: 0n, end: 0xffffn });
    expect(structs.vfio_iova_range.decode(b, 72)).toEqual({ start: 0x20000n, end: U64_MAX });
    // A buffer shorter than argsz claims: the writes past its end fault.
    const short = new Uint8Array(48);
    new DataView(short.buffer).setUint32(0, 128, true);
    expect(proc.ioctl(fd, VFIO_IOMMU_GET_INFO, short)).toBe(-EFAULT);
    closeAndCheck(host, proc, fd);
  });
});

// ---- a property: random MAP_DMA / UNMAP_DMA sequences against a reference ------------

type Op =
  | { kind: 'map'; page: number; pages: number; src: number }
  | { kind: 'unmap'; page: number; pages: number }
  | { kind: 'unmapAll' }
  | { kind: 'bad'; which: 'argsz' | 'flags' | 'allWithRange' };

const WINDOW = 32; // pages of IOVA (and of source memory) the ops play in

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('map' as const),
      page: fc.nat({ max: WINDOW - 1 }),
      pages: fc.integer({ min: 1, max: 8 }),
      src: fc.nat({ max: WINDOW - 8 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('unmap' as const),
      page: fc.nat({ max: WINDOW - 1 }),
      pages: fc.integer({ min: 0, max: 10 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'unmapAll' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('bad' as const),
      which: fc.constantFrom('argsz' as const, 'flags' as const, 'allWithRange' as const),
    }),
  },
);

/**
 * What type1 / type1v2 should leave after each op: the areas as [first page,
 * last page], and the source page behind every mapped IOVA page.
 */
class Reference {
  areas: [number, number][] = [];
  readonly source = new Map<number, number>();
  constructor(private readonly type1: boolean) {}

  map(page: number, pages: number, src: number): number {
    const last = page + pages - 1;
    if (this.areas.some(([a, b]) => a <= last && page <= b)) return -EEXIST;
    this.areas.push([page, last]);
    this.areas.sort((x, y) => x[0] - y[0]);
    for (let i = 0; i < pages; i++) this.source.set(page + i, src + i);
    return 0;
  }

  private drop(first: number, last: number): void {
    for (let p = first; p <= last; p++) this.source.delete(p);
  }

  unmap(page: number, pages: number): { rc: number; pages: number } {
    if (pages === 0) return { rc: -EINVAL, pages: 0 };
    const last = page + pages - 1;
    if (this.type1) {
      // The ends are cut first: every page inside goes.
      const next: [number, number][] = [];
      let removed = 0;
      for (const [a, b] of this.areas) {
        const lo = Math.max(a, page);
        const hi = Math.min(b, last);
        if (lo > hi) {
          next.push([a, b]);
          continue;
        }
        removed += hi - lo + 1;
        this.drop(lo, hi);
        if (a < lo) next.push([a, lo - 1]);
        if (hi < b) next.push([hi + 1, b]);
      }
      this.areas = next;
      return removed === 0 ? { rc: -ENOENT, pages: 0 } : { rc: 0, pages: removed };
    }
    let removed = 0;
    for (const [a, b] of [...this.areas]) {
      if (b < page || a > last) continue;
      if (a < page || b > last) return { rc: -ENOENT, pages: removed };
      this.areas = this.areas.filter((x) => x[0] !== a);
      this.drop(a, b);
      removed += b - a + 1;
    }
    return removed === 0 ? { rc: -ENOENT, pages: 0 } : { rc: 0, pages: removed };
  }

  unmapAll(): number {
    const n = this.areas.reduce((s, [a, b]) => s + b - a + 1, 0);
    this.areas = [];
    this.source.clear();
    return n;
  }
}

describe('VFIO compat property', () => {
  it('random MAP_DMA / UNMAP_DMA sequences match a page-level reference, never throw, and leave nothing pinned', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU),
        fc.array(opArb, { maxLength: 30 }),
        (version, ops) => {
          const { host, proc, fd, hwpt } = compatEnv(version);
          const src = buffer(proc, BigInt(WINDOW) * PAGE);
          const ref = new Reference(version === VFIO_TYPE1_IOMMU);
          for (const op of ops) {
            if (op.kind === 'map') {
              const got = mapDma(proc, fd, {
                vaddr: src + BigInt(op.src) * PAGE,
                iova: APERTURE + BigInt(op.page) * PAGE,
                size: BigInt(op.pages) * PAGE,
              });
              expect(got).toBe(ref.map(op.page, op.pages, op.src));
            } else if (op.kind === 'unmap') {
              const got = unmapDma(proc, fd, {
                iova: APERTURE + BigInt(op.page) * PAGE,
                size: BigInt(op.pages) * PAGE,
              });
              const want = ref.unmap(op.page, op.pages);
              expect(got).toEqual({ rc: want.rc, size: BigInt(want.pages) * PAGE });
            } else if (op.kind === 'unmapAll') {
              const n = ref.unmapAll();
              expect(unmapDma(proc, fd, { flags: VFIO_DMA_UNMAP_FLAG_ALL })).toEqual({
                rc: 0,
                size: BigInt(n) * PAGE,
              });
            } else if (op.which === 'argsz') {
              expect(mapDma(proc, fd, { argsz: 31, vaddr: src, iova: APERTURE, size: PAGE })).toBe(
                -EINVAL,
              );
            } else if (op.which === 'flags') {
              expect(unmapDma(proc, fd, { flags: 1 << 3, iova: APERTURE, size: PAGE }).rc).toBe(
                -EINVAL,
              );
            } else {
              expect(
                unmapDma(proc, fd, { flags: VFIO_DMA_UNMAP_FLAG_ALL, iova: APERTURE }).rc,
              ).toBe(-EINVAL);
            }
          }
          // The IOAS holds exactly the reference's pages, each mapped in the domain to its
          // source page and pinned once per map that still covers it.
          const areas = proc.inspect(fd)?.ioas[0]?.areas ?? [];
          const mapped = areas.reduce((s, a) => s + (a.last - a.iova + 1n), 0n);
          expect(mapped).toBe(BigInt(ref.source.size) * PAGE);
          for (const [page, srcPage] of ref.source) {
            const iova = APERTURE + BigInt(page) * PAGE;
            expect(checkMap(proc, fd, hwpt, iova, PAGE, src + BigInt(srcPage) * PAGE)).toBe(0);
          }
          expect(proc.status().pinnedBytes).toBe(BigInt(ref.source.size) * PAGE);
          expect(host.internalErrors).toBe(0);
          closeAndCheck(host, proc, fd);
        },
      ),
      { numRuns: 60 },
    );
  });
});
