/**
 * Dirty tracking (kernel-semantics.md 1.10 and 2.16, catalog 155–163): the
 * selftest fixture iommufd_dirty_tracking on the mock (every variant, the
 * *_huge ones with MOCK_FLAGS_DEVICE_HUGE_IOVA), the ioctls' argument checks,
 * and dirty bits made by real DMA writes of a device behind VT-d.
 */
import {
  EFAULT,
  EINVAL,
  ENOENT,
  EOPNOTSUPP,
  EOVERFLOW,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_CAP_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_TEST_OP_DIRTY,
  IOMMU_TEST_OP_PASID_ATTACH,
  IOMMU_TEST_OP_PASID_CHECK_HWPT,
  IOMMU_TEST_OP_PASID_DETACH,
  MOCK_APERTURE_START,
  MOCK_FLAGS_DEVICE_HUGE_IOVA,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
  structs,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_ATTACH_PASID,
  VFIO_DEVICE_BIND_IOMMUFD,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { createHost, type Host, type Process } from '../src/index.js';
import {
  closeAndCheck,
  destroy,
  ioasAlloc,
  map,
  mockDomain,
  mockReplace,
  setup,
  testCmd,
  U64_MAX,
} from './helpers.js';

const APERTURE = BigInt(MOCK_APERTURE_START);
const MOCK_PAGE = 2048;
const MOCK_HUGE_PAGE = 512 * MOCK_PAGE;
const HPAGE = 2 * 1024 * 1024;
const KiB = 1024;
const MiB = 1024 * 1024;
const MIB = 1024n * 1024n;

// ---- ioctl helpers (real struct bytes) ---------------------------------------------

/** IOMMU_HWPT_ALLOC; returns rc and out_hwpt_id. */
function hwptAlloc(
  proc: Process,
  fd: number,
  devId: number,
  ptId: number,
  flags: number,
  data?: { type: number; uptr: bigint; len: number },
): { rc: number; hwptId: number } {
  const b = structs.iommu_hwpt_alloc.encode({
    size: 48,
    flags,
    dev_id: devId,
    pt_id: ptId,
    data_type: data?.type ?? 0,
    data_len: data?.len ?? 0,
    data_uptr: data?.uptr ?? 0n,
  });
  const rc = proc.ioctl(fd, IOMMU_HWPT_ALLOC, b);
  return { rc, hwptId: structs.iommu_hwpt_alloc.decode(b).out_hwpt_id };
}

/** IOMMU_HWPT_SET_DIRTY_TRACKING with raw flags. */
function setTracking(proc: Process, fd: number, hwptId: number, flags: number): number {
  return proc.ioctl(
    fd,
    IOMMU_HWPT_SET_DIRTY_TRACKING,
    structs.iommu_hwpt_set_dirty_tracking.encode({ size: 16, flags, hwpt_id: hwptId }),
  );
}

function enable(proc: Process, fd: number, hwptId: number): number {
  return setTracking(proc, fd, hwptId, IOMMU_HWPT_DIRTY_TRACKING_ENABLE);
}

interface GetArgs {
  hwptId: number;
  iova: bigint;
  length: bigint;
  pageSize: bigint;
  data: bigint;
  flags?: number;
  reserved?: number;
}

/** IOMMU_HWPT_GET_DIRTY_BITMAP; the argument struct is not written back (rc only). */
function getBitmap(proc: Process, fd: number, a: GetArgs): number {
  const b = structs.iommu_hwpt_get_dirty_bitmap.encode({
    size: 48,
    hwpt_id: a.hwptId,
    flags: a.flags ?? 0,
    __reserved: a.reserved ?? 0,
    iova: a.iova,
    length: a.length,
    page_size: a.pageSize,
    data: a.data,
  });
  const before = b.slice();
  const rc = proc.ioctl(fd, IOMMU_HWPT_GET_DIRTY_BITMAP, b);
  // The kernel never writes the struct back.
  expect(b).toEqual(before);
  return rc;
}

/** IOMMU_TEST_OP_DIRTY; returns rc and out_nr_dirty. */
function markDirty(
  proc: Process,
  fd: number,
  hwptId: number,
  iova: bigint,
  length: bigint,
  pageSize: bigint,
  uptr: bigint,
): { rc: number; nr: bigint } {
  const { rc, out } = testCmd(proc, fd, {
    op: IOMMU_TEST_OP_DIRTY,
    id: hwptId,
    dirty: { flags: 0, iova, length, page_size: pageSize, uptr },
  });
  return { rc, nr: out.dirty.out_nr_dirty };
}

/** IOMMU_GET_HW_INFO; returns rc and out_capabilities. */
function hwCaps(proc: Process, fd: number, devId: number): { rc: number; caps: bigint } {
  const b = structs.iommu_hw_info.encode({ size: 40, dev_id: devId });
  const rc = proc.ioctl(fd, IOMMU_GET_HW_INFO, b);
  return { rc, caps: structs.iommu_hw_info.decode(b).out_capabilities };
}

// ---- bitmaps ---------------------------------------------------------------------

function setBit(bits: Uint8Array, i: number): void {
  bits[i >>> 3] = (bits[i >>> 3] as number) | (1 << (i & 7));
}

/** A bitmap of `nbits` bits with the given bits set. */
function bitmapOf(nbits: number, set: Iterable<number>): Uint8Array {
  const out = new Uint8Array(Math.ceil(nbits / 8));
  for (const i of set) setBit(out, i);
  return out;
}

/** The indexes of the set bits. */
function setBits(bits: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bits.length * 8; i++)
    if (((bits[i >>> 3] as number) >> (i & 7)) & 1) out.push(i);
  return out;
}

/** '' when equal, else the first differing byte. */
function firstDifference(a: Uint8Array | null, b: Uint8Array): string {
  if (a === null) return 'unreadable';
  if (a.length !== b.length) return `length ${a.length} != ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return `byte ${i}: 0x${a[i]?.toString(16)} != 0x${b[i]?.toString(16)}`;
  }
  return '';
}

const SENTINEL = 0xa5;

/** Zero `bytes` bytes at `va` and put a sentinel run of 64 bytes right after them. */
function clearBitmap(proc: Process, va: bigint, bytes: number): void {
  expect(proc.writeMemory(va, new Uint8Array(bytes))).toBe(0);
  expect(proc.writeMemory(va + BigInt(bytes), new Uint8Array(64).fill(SENTINEL))).toBe(0);
}

/** The bitmap at `va`, after checking that the 64 bytes after it still hold the sentinel. */
function readBitmap(proc: Process, va: bigint, bytes: number): Uint8Array | null {
  const after = proc.readMemory(va + BigInt(bytes), 64);
  expect(after).toEqual(new Uint8Array(64).fill(SENTINEL));
  return proc.readMemory(va, bytes);
}

// ---- 2.16 on the mock: the iommufd_dirty_tracking fixture --------------------------

interface Variant {
  readonly name: string;
  readonly bufferSize: number;
  readonly huge: boolean;
}

const VARIANTS: readonly Variant[] = [
  { name: 'domain_dirty8k', bufferSize: 8 * KiB, huge: false },
  { name: 'domain_dirty16k', bufferSize: 16 * KiB, huge: false },
  { name: 'domain_dirty64k', bufferSize: 64 * KiB, huge: false },
  { name: 'domain_dirty128k', bufferSize: 128 * KiB, huge: false },
  { name: 'domain_dirty320k', bufferSize: 320 * KiB, huge: false },
  { name: 'domain_dirty64M', bufferSize: 64 * MiB, huge: false },
  { name: 'domain_dirty64M_huge', bufferSize: 64 * MiB, huge: true },
  { name: 'domain_dirty128M', bufferSize: 128 * MiB, huge: false },
  { name: 'domain_dirty128M_huge', bufferSize: 128 * MiB, huge: true },
];

/**
 * FIXTURE_SETUP(iommufd_dirty_tracking): a buffer (2 MiB aligned for the
 * huge variants), a page-aligned bitmap with a page to spare for the
 * unaligned cases, an IOAS and a mock device on it (HUGE_IOVA for *_huge).
 */
function fixture(v: Variant) {
  const { host, proc, fd } = setup();
  const mmapSize = v.huge && v.bufferSize < HPAGE ? HPAGE : v.bufferSize;
  const buffer = proc.mmap(mmapSize);
  expect(buffer > 0n).toBe(true);
  if (v.huge) expect(buffer % BigInt(HPAGE)).toBe(0n);
  const bitmapSize = v.bufferSize / MOCK_PAGE;
  // One page to spare for the unaligned cases (as the selftest), one for the sentinel after it.
  const bitmap = proc.mmap(Math.ceil(bitmapSize / 8) + 2 * 4096);
  expect(bitmap % 4096n).toBe(0n);
  const ioas = ioasAlloc(proc, fd);
  const md = mockDomain(proc, fd, ioas, v.huge ? MOCK_FLAGS_DEVICE_HUGE_IOVA : undefined);
  expect(md.rc).toBe(0);
  return { host, proc, fd, buffer, bitmap, bitmapSize, ioas, md };
}

/**
 * test_mock_dirty_bitmaps: mark the first unit of every other IOPTE dirty
 * with IOMMU_TEST_OP_DIRTY (every 2nd IO page; with 1 MiB IOPTEs every 1024th
 * unit), then GET_DIRTY_BITMAP must report every unit of exactly those IOPTEs,
 * and a second GET nothing (or the same again with NO_CLEAR).
 */
function mockDirtyBitmaps(
  proc: Process,
  fd: number,
  hwptId: number,
  length: number,
  iova: bigint,
  pageSize: number,
  pteSize: number,
  bitmap: bigint,
  nbits: number,
  flags: number,
): void {
  const npte = pteSize / pageSize;
  const pteset = 2 * npte;
  const nr = Math.floor(nbits / pteset) || 1;
  const bytes = Math.ceil(nbits / 8);
  const marked: number[] = [];
  for (let i = 0; i < nbits; i += pteset) marked.push(i);
  expect(proc.writeMemory(bitmap, bitmapOf(nbits, marked))).toBe(0);
  const dirty = markDirty(proc, fd, hwptId, iova, BigInt(length), BigInt(pageSize), bitmap);
  expect(dirty).toEqual({ rc: 0, nr: BigInt(nr) });

  const reported: number[] = [];
  for (const i of marked) for (let j = 0; j < npte && i + j < nbits; j++) reported.push(i + j);
  const expected = bitmapOf(nbits, reported);
  const get = () =>
    getBitmap(proc, fd, {
      hwptId,
      iova,
      length: BigInt(length),
      pageSize: BigInt(pageSize),
      data: bitmap,
      flags,
    });

  clearBitmap(proc, bitmap, bytes);
  expect(get()).toBe(0);
  expect(firstDifference(readBitmap(proc, bitmap, bytes), expected)).toBe('');

  clearBitmap(proc, bitmap, bytes);
  expect(get()).toBe(0);
  const again =
    (flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR) !== 0 ? expected : new Uint8Array(bytes);
  expect(firstDifference(readBitmap(proc, bitmap, bytes), again)).toBe('');
}

describe('2.16 iommufd_dirty_tracking on the mock', () => {
  for (const v of VARIANTS) {
    it(`121/158: enforce_dirty (${v.name}): a NO_DIRTY device cannot attach a dirty HWPT (EINVAL) nor allocate one (EOPNOTSUPP)`, () => {
      const { host, proc, fd, ioas, md } = fixture(v);
      const dirtyHwpt = hwptAlloc(proc, fd, md.idevId, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
      expect(dirtyHwpt.rc).toBe(0);
      const ok = mockDomain(proc, fd, dirtyHwpt.hwptId);
      expect(ok.rc).toBe(0);
      expect(ok.hwptId).toBe(dirtyHwpt.hwptId);
      const before = proc.inspect(fd)?.objects.length;
      expect(mockDomain(proc, fd, dirtyHwpt.hwptId, MOCK_FLAGS_DEVICE_NO_DIRTY).rc).toBe(-EINVAL);
      expect(proc.inspect(fd)?.objects.length).toBe(before);
      expect(destroy(proc, fd, ok.stdevId)).toBe(0);
      expect(destroy(proc, fd, dirtyHwpt.hwptId)).toBe(0);

      // IOMMU device does not support dirty tracking.
      const ioas2 = ioasAlloc(proc, fd);
      const noDirty = mockDomain(proc, fd, ioas2, MOCK_FLAGS_DEVICE_NO_DIRTY);
      expect(noDirty.rc).toBe(0);
      const refused = hwptAlloc(proc, fd, noDirty.idevId, ioas2, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
      expect(refused.rc).toBe(-EOPNOTSUPP);
      expect(refused.hwptId).toBe(0);
      expect(hwCaps(proc, fd, noDirty.idevId)).toEqual({ rc: 0, caps: 0n });
      // The same device may still allocate a plain HWPT.
      const plain = hwptAlloc(proc, fd, noDirty.idevId, ioas2, 0);
      expect(plain.rc).toBe(0);
      expect(destroy(proc, fd, plain.hwptId)).toBe(0);
      expect(destroy(proc, fd, noDirty.stdevId)).toBe(0);
      closeAndCheck(host, proc, fd);
    });

    it(`155: set_dirty_tracking (${v.name}): enable then disable on an attached dirty HWPT → 0 and 0`, () => {
      const { host, proc, fd, ioas, md } = fixture(v);
      const hwpt = hwptAlloc(proc, fd, md.idevId, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
      expect(hwpt.rc).toBe(0);
      const dev = mockDomain(proc, fd, hwpt.hwptId);
      expect(dev.rc).toBe(0);
      expect(enable(proc, fd, hwpt.hwptId)).toBe(0);
      expect(setTracking(proc, fd, hwpt.hwptId, 0)).toBe(0);
      // Both directions are idempotent.
      expect(setTracking(proc, fd, hwpt.hwptId, 0)).toBe(0);
      expect(enable(proc, fd, hwpt.hwptId)).toBe(0);
      expect(enable(proc, fd, hwpt.hwptId)).toBe(0);
      expect(destroy(proc, fd, dev.stdevId)).toBe(0);
      expect(destroy(proc, fd, hwpt.hwptId)).toBe(0);
      closeAndCheck(host, proc, fd);
    });

    it(`device_dirty_capability (${v.name}): GET_HW_INFO reports IOMMU_HW_CAP_DIRTY_TRACKING`, () => {
      const { host, proc, fd, ioas, md } = fixture(v);
      const hwpt = hwptAlloc(proc, fd, md.idevId, ioas, 0);
      expect(hwpt.rc).toBe(0);
      const dev = mockDomain(proc, fd, hwpt.hwptId);
      expect(dev.rc).toBe(0);
      const info = hwCaps(proc, fd, md.idevId);
      expect(info.rc).toBe(0);
      expect(info.caps & BigInt(IOMMU_HW_CAP_DIRTY_TRACKING)).toBe(
        BigInt(IOMMU_HW_CAP_DIRTY_TRACKING),
      );
      expect(destroy(proc, fd, dev.stdevId)).toBe(0);
      expect(destroy(proc, fd, hwpt.hwptId)).toBe(0);
      closeAndCheck(host, proc, fd);
    });
  }

  for (const v of VARIANTS) {
    for (const noClear of [false, true]) {
      const test = noClear ? 'get_dirty_bitmap_no_clear' : 'get_dirty_bitmap';
      const what = noClear
        ? '160: NO_CLEAR reads the same bits twice'
        : '159: every 2nd IOPTE marked is reported exactly, a second read is empty';
      it(`${test} (${v.name}): ${what}${v.huge ? '; 161: a 1 MiB IOPTE reports all 512 units' : ''}; 162: the bitmap at page+2048 and at +0xff1 works`, () => {
        const { host, proc, fd, buffer, bitmap, bitmapSize, md } = fixture(v);
        const pteSize = v.huge ? MOCK_HUGE_PAGE : MOCK_PAGE;
        // A second IOAS with the buffer at the aperture start, and a dirty HWPT on it
        // that no device is attached to: the DIRTY op plays the device.
        const ioas = ioasAlloc(proc, fd);
        expect(map(proc, fd, ioas, buffer, BigInt(v.bufferSize), APERTURE).rc).toBe(0);
        const hwpt = hwptAlloc(proc, fd, md.idevId, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
        expect(hwpt.rc).toBe(0);
        expect(enable(proc, fd, hwpt.hwptId)).toBe(0);
        const flags = noClear ? IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR : 0;
        for (const at of [0n, BigInt(MOCK_PAGE), 0xff1n]) {
          mockDirtyBitmaps(
            proc,
            fd,
            hwpt.hwptId,
            v.bufferSize,
            APERTURE,
            MOCK_PAGE,
            pteSize,
            bitmap + at,
            bitmapSize,
            flags,
          );
        }
        expect(destroy(proc, fd, hwpt.hwptId)).toBe(0);
        closeAndCheck(host, proc, fd);
      });
    }
  }
});

// ---- 2.16 argument checks ---------------------------------------------------------

/** A mock device, a dirty HWPT on a second IOAS with 64 KiB mapped at the aperture start, tracking on. */
function trackedHwpt(huge = false) {
  const { host, proc, fd } = setup();
  const ioas = ioasAlloc(proc, fd);
  const md = mockDomain(proc, fd, ioas, huge ? MOCK_FLAGS_DEVICE_HUGE_IOVA : undefined);
  expect(md.rc).toBe(0);
  const ioas2 = ioasAlloc(proc, fd);
  const buffer = proc.mmap(huge ? 4 * MiB : 64 * KiB);
  expect(map(proc, fd, ioas2, buffer, BigInt(huge ? 4 * MiB : 64 * KiB), APERTURE).rc).toBe(0);
  const hwpt = hwptAlloc(proc, fd, md.idevId, ioas2, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
  expect(hwpt.rc).toBe(0);
  expect(enable(proc, fd, hwpt.hwptId)).toBe(0);
  const bitmap = proc.mmap(8192);
  return { host, proc, fd, ioas, ioas2, md, hwptId: hwpt.hwptId, buffer, bitmap };
}

describe('2.16 dirty tracking argument checks', () => {
  it('158: SET/GET on a HWPT without dirty tracking → EOPNOTSUPP; unknown flags or __reserved → EOPNOTSUPP before the id lookup', () => {
    const { host, proc, fd, ioas2, md, hwptId, bitmap } = trackedHwpt();
    const plain = hwptAlloc(proc, fd, md.idevId, ioas2, 0);
    expect(plain.rc).toBe(0);
    const args = { iova: APERTURE, length: 64n * 1024n, pageSize: 4096n, data: bitmap };
    expect(enable(proc, fd, plain.hwptId)).toBe(-EOPNOTSUPP);
    expect(proc.lastError()?.call).toBe('IOMMU_HWPT_SET_DIRTY_TRACKING');
    expect(setTracking(proc, fd, plain.hwptId, 0)).toBe(-EOPNOTSUPP);
    expect(getBitmap(proc, fd, { hwptId: plain.hwptId, ...args })).toBe(-EOPNOTSUPP);
    // The range is checked before the dirty ops: a bad range on it is EINVAL.
    expect(getBitmap(proc, fd, { hwptId: plain.hwptId, ...args, pageSize: 0n })).toBe(-EINVAL);

    // Flags first: unknown flags on an unknown id are EOPNOTSUPP.
    expect(setTracking(proc, fd, 999, 2)).toBe(-EOPNOTSUPP);
    expect(setTracking(proc, fd, hwptId, 0x80000000)).toBe(-EOPNOTSUPP);
    expect(getBitmap(proc, fd, { hwptId: 999, ...args, flags: 2 })).toBe(-EOPNOTSUPP);
    expect(getBitmap(proc, fd, { hwptId, ...args, flags: 0x80000000 })).toBe(-EOPNOTSUPP);
    expect(getBitmap(proc, fd, { hwptId: 999, ...args, reserved: 1 })).toBe(-EOPNOTSUPP);
    // SET has no __reserved check: a nonzero one is ignored.
    expect(
      proc.ioctl(
        fd,
        IOMMU_HWPT_SET_DIRTY_TRACKING,
        structs.iommu_hwpt_set_dirty_tracking.encode({
          size: 16,
          flags: IOMMU_HWPT_DIRTY_TRACKING_ENABLE,
          hwpt_id: hwptId,
          __reserved: 7,
        }),
      ),
    ).toBe(0);

    // Only a paging HWPT is looked up: an IOAS, a device or a missing id → ENOENT.
    for (const id of [ioas2, md.idevId, md.stdevId, 0, 999]) {
      expect(enable(proc, fd, id)).toBe(-ENOENT);
      expect(getBitmap(proc, fd, { hwptId: id, ...args })).toBe(-ENOENT);
    }
    // ENOENT comes before the range checks.
    expect(getBitmap(proc, fd, { hwptId: 999, ...args, iova: U64_MAX, length: 2n })).toBe(-ENOENT);
    expect(destroy(proc, fd, plain.hwptId)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('158: a nested HWPT is not a paging HWPT: SET and GET on it → ENOENT', () => {
    const { host, proc, fd, ioas, md } = trackedHwpt();
    const parent = hwptAlloc(
      proc,
      fd,
      md.idevId,
      ioas,
      IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    );
    expect(parent.rc).toBe(0);
    const data = proc.mmap(4096);
    proc.writeMemory(data, new Uint8Array([0xef, 0xbe, 0xad, 0x0b]));
    const nested = hwptAlloc(proc, fd, md.idevId, parent.hwptId, 0, {
      type: IOMMU_HWPT_DATA_SELFTEST,
      uptr: data,
      len: 4,
    });
    expect(nested.rc).toBe(0);
    expect(enable(proc, fd, nested.hwptId)).toBe(-ENOENT);
    expect(
      getBitmap(proc, fd, {
        hwptId: nested.hwptId,
        iova: APERTURE,
        length: 4096n,
        pageSize: 4096n,
        data,
      }),
    ).toBe(-ENOENT);
    // The dirty-tracking nest parent itself takes both.
    expect(enable(proc, fd, parent.hwptId)).toBe(0);
    expect(destroy(proc, fd, nested.hwptId)).toBe(0);
    expect(destroy(proc, fd, parent.hwptId)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('163: page_size 0, iova or end off page_size or off the IOAS alignment → EINVAL; a wrapping range → EOVERFLOW (checked first)', () => {
    const { host, proc, fd, hwptId, bitmap } = trackedHwpt();
    const get = (iova: bigint, length: bigint, pageSize: bigint) =>
      getBitmap(proc, fd, { hwptId, iova, length, pageSize, data: bitmap });
    const reasonOf = () => proc.lastError()?.reason ?? '';
    expect(get(APERTURE, 8192n, 0n)).toBe(-EINVAL);
    expect(reasonOf()).toMatch(/page_size/);
    // iova not a multiple of page_size (it is of the 2 KiB IOAS alignment).
    expect(get(APERTURE + 2048n, 8192n, 4096n)).toBe(-EINVAL);
    // end not a multiple of page_size.
    expect(get(APERTURE, 4096n + 2048n, 4096n)).toBe(-EINVAL);
    // iova and end on page_size (1 KiB) but not on the IOAS alignment (2 KiB).
    expect(get(APERTURE + 1024n, 2048n, 1024n)).toBe(-EINVAL);
    expect(reasonOf()).toMatch(/alignment/);
    expect(get(APERTURE, 2048n + 1024n, 1024n)).toBe(-EINVAL);
    // Wrapping is EOVERFLOW even when everything else is wrong too.
    expect(get(U64_MAX - 2047n, 4096n, 4096n)).toBe(-EOVERFLOW);
    expect(get(U64_MAX - 1022n, 4096n, 0n)).toBe(-EOVERFLOW);
    expect(get(1n, 0n, 0n)).toBe(-EOVERFLOW); // length 0: iova + 2^64 - 1 wraps
    // Up to the last IOVA is fine (the range is walked; nothing is mapped there).
    expect(get(U64_MAX - 4095n, 4096n, 4096n)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('159: the walk covers contiguous areas from iova and stops at the first hole (rc 0 either way); set bits of the bitmap are kept; an unwritable bitmap is not an error', () => {
    const { host, proc, fd, ioas2, hwptId, bitmap } = trackedHwpt();
    // A second 64 KiB area after a 64 KiB hole: [A, A+64K) area, hole, [A+128K, A+192K) area.
    const second = proc.mmap(64 * KiB);
    expect(map(proc, fd, ioas2, second, 64n * 1024n, APERTURE + 128n * 1024n).rc).toBe(0);
    const nbits = 512;
    const bytes = nbits / 8;
    const get = (iova: bigint, preset: number[] = []) => {
      proc.writeMemory(bitmap, bitmapOf(nbits, preset));
      expect(
        getBitmap(proc, fd, {
          hwptId,
          iova,
          length: BigInt(nbits * 2048),
          pageSize: 2048n,
          data: bitmap,
        }),
      ).toBe(0);
      return setBits(proc.readMemory(bitmap, bytes) as Uint8Array);
    };
    // 2 KiB units 0 and 31 of the first area, 3 of the second.
    proc.writeMemory(bitmap, bitmapOf(96, [0, 31, 64 + 3]));
    expect(markDirty(proc, fd, hwptId, APERTURE, 192n * 1024n, 2048n, bitmap)).toEqual({
      rc: 0,
      nr: 3n,
    });
    // From 64 KiB before the first area: iova is in a hole, nothing is walked
    // (and nothing cleared). Bits already set in the user's bitmap stay.
    expect(get(APERTURE - 64n * 1024n, [1, 200, 511])).toEqual([1, 200, 511]);
    // From the first area: it is reported, the walk stops at the hole, the
    // second area is neither reported nor cleared.
    expect(get(APERTURE, [100, 511])).toEqual([0, 31, 100, 511]);
    expect(get(APERTURE)).toEqual([]);
    expect(get(APERTURE + 128n * 1024n)).toEqual([3]);
    expect(get(APERTURE + 128n * 1024n)).toEqual([]);
    // A bitmap in no mapping: the walk ends and the call still returns 0.
    proc.writeMemory(bitmap, bitmapOf(32, [4]));
    expect(markDirty(proc, fd, hwptId, APERTURE, 64n * 1024n, 2048n, bitmap).nr).toBe(1n);
    expect(
      getBitmap(proc, fd, {
        hwptId,
        iova: APERTURE,
        length: 64n * 1024n,
        pageSize: 2048n,
        data: 0x10n,
      }),
    ).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('159: page_size larger than the IOPTE: one dirty 2 KiB unit sets the bit of its whole 8 KiB unit', () => {
    const { host, proc, fd, hwptId, bitmap } = trackedHwpt();
    proc.writeMemory(bitmap, bitmapOf(32, [5, 6, 17]));
    expect(markDirty(proc, fd, hwptId, APERTURE, 64n * 1024n, 2048n, bitmap).nr).toBe(3n);
    proc.writeMemory(bitmap, new Uint8Array(8));
    expect(
      getBitmap(proc, fd, {
        hwptId,
        iova: APERTURE,
        length: 64n * 1024n,
        pageSize: 8192n,
        data: bitmap,
      }),
    ).toBe(0);
    // 2 KiB units 5 and 6 are in 8 KiB unit 1, unit 17 in 8 KiB unit 4.
    expect(setBits(proc.readMemory(bitmap, 1) as Uint8Array)).toEqual([1, 4]);
    closeAndCheck(host, proc, fd);
  });

  it('155: enabling tracking clears old dirty bits (a clean snapshot); while disabled GET returns 0 and reports nothing', () => {
    const { host, proc, fd, hwptId, bitmap } = trackedHwpt();
    const get = () =>
      getBitmap(proc, fd, {
        hwptId,
        iova: APERTURE,
        length: 64n * 1024n,
        pageSize: 2048n,
        data: bitmap,
      });
    proc.writeMemory(bitmap, bitmapOf(32, [3, 9]));
    expect(markDirty(proc, fd, hwptId, APERTURE, 64n * 1024n, 2048n, bitmap).nr).toBe(2n);
    // Enable again: the bits go.
    expect(enable(proc, fd, hwptId)).toBe(0);
    proc.writeMemory(bitmap, new Uint8Array(4));
    expect(get()).toBe(0);
    expect(setBits(proc.readMemory(bitmap, 4) as Uint8Array)).toEqual([]);

    proc.writeMemory(bitmap, bitmapOf(32, [3, 9]));
    expect(markDirty(proc, fd, hwptId, APERTURE, 64n * 1024n, 2048n, bitmap).nr).toBe(2n);
    expect(setTracking(proc, fd, hwptId, 0)).toBe(0);
    proc.writeMemory(bitmap, new Uint8Array(4));
    expect(get()).toBe(0);
    expect(setBits(proc.readMemory(bitmap, 4) as Uint8Array)).toEqual([]);
    // The DIRTY op needs tracking on.
    proc.writeMemory(bitmap, bitmapOf(32, [3]));
    expect(markDirty(proc, fd, hwptId, APERTURE, 64n * 1024n, 2048n, bitmap).rc).toBe(-EINVAL);
    // Re-enabling starts from a clean snapshot.
    expect(enable(proc, fd, hwptId)).toBe(0);
    proc.writeMemory(bitmap, new Uint8Array(4));
    expect(get()).toBe(0);
    expect(setBits(proc.readMemory(bitmap, 4) as Uint8Array)).toEqual([]);
    closeAndCheck(host, proc, fd);
  });

  it('IOMMU_TEST_OP_DIRTY: page_size 0, length 0, misaligned iova or length, NULL uptr → EINVAL; a non-paging id → ENOENT; an unreadable bitmap → EFAULT; unmapped units are not counted', () => {
    const { host, proc, fd, ioas2, hwptId, bitmap } = trackedHwpt();
    proc.writeMemory(bitmap, new Uint8Array(8).fill(0xff));
    const dirty = (iova: bigint, length: bigint, pageSize: bigint, uptr = bitmap, id = hwptId) =>
      markDirty(proc, fd, id, iova, length, pageSize, uptr).rc;
    expect(dirty(APERTURE, 4096n, 0n)).toBe(-EINVAL);
    expect(dirty(APERTURE, 0n, 2048n)).toBe(-EINVAL);
    expect(dirty(APERTURE + 1024n, 4096n, 2048n)).toBe(-EINVAL);
    expect(dirty(APERTURE, 3072n, 2048n)).toBe(-EINVAL);
    expect(dirty(APERTURE, 4096n, 2048n, 0n)).toBe(-EINVAL);
    expect(dirty(APERTURE, 4096n, 2048n, bitmap, ioas2)).toBe(-ENOENT);
    expect(dirty(APERTURE, 4096n, 2048n, bitmap, 999)).toBe(-ENOENT);
    expect(dirty(APERTURE, 4096n, 2048n, 0x10n)).toBe(-EFAULT);
    // 64 bits over 128 KiB: only the 32 units of the 64 KiB mapping exist.
    expect(markDirty(proc, fd, hwptId, APERTURE, 128n * 1024n, 2048n, bitmap)).toEqual({
      rc: 0,
      nr: 32n,
    });
    closeAndCheck(host, proc, fd);
  });

  it("161: HUGE_IOVA: a dirty unit anywhere in a 1 MiB IOPTE reports its 512 units (256 at 4 KiB); a read starting inside it records 1 MiB from the read's start", () => {
    const { host, proc, fd, hwptId, bitmap } = trackedHwpt(true);
    const range = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => from + i);
    const get = (iova: bigint, length: bigint, pageSize: bigint, nbits: number, flags = 0) => {
      proc.writeMemory(bitmap, new Uint8Array(nbits / 8));
      expect(getBitmap(proc, fd, { hwptId, iova, length, pageSize, data: bitmap, flags })).toBe(0);
      return setBits(proc.readMemory(bitmap, nbits / 8) as Uint8Array);
    };
    // 4 MiB mapped: four 1 MiB IOPTEs. Mark one 2 KiB unit in the middle of the third.
    proc.writeMemory(bitmap, bitmapOf(2048, [2 * 512 + 77]));
    expect(markDirty(proc, fd, hwptId, APERTURE, 4n * MIB, 2048n, bitmap).nr).toBe(1n);
    const NO_CLEAR = IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR;
    expect(get(APERTURE, 4n * MIB, 2048n, 2048, NO_CLEAR)).toEqual(range(1024, 1536));
    expect(get(APERTURE, 4n * MIB, 4096n, 1024, NO_CLEAR)).toEqual(range(512, 768));
    // mock_domain_read_and_clear_dirty records pgsize bytes from the cursor, not
    // from the IOPTE's head: a read from the middle of the third IOPTE reports
    // [+2.5 MiB, +3.5 MiB), half of it in the clean fourth IOPTE.
    expect(get(APERTURE + 2n * MIB + MIB / 2n, MIB + MIB / 2n, 2048n, 768)).toEqual(range(0, 512));
    // That read cleared the whole third IOPTE.
    expect(get(APERTURE, 4n * MIB, 2048n, 2048)).toEqual([]);
    closeAndCheck(host, proc, fd);
  });

  it('156: SET_DIRTY_TRACKING on a dirty HWPT attached to a PASID → 0, and its bitmap works', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const dev = mockDomain(proc, fd, ioas, MOCK_FLAGS_DEVICE_PASID);
    expect(dev.rc).toBe(0);
    const buffer = proc.mmap(64 * KiB);
    expect(map(proc, fd, ioas, buffer, 64n * 1024n, APERTURE).rc).toBe(0);
    const hwpt = hwptAlloc(
      proc,
      fd,
      dev.idevId,
      ioas,
      IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID,
    );
    expect(hwpt.rc).toBe(0);
    // The RID moves to a PASID-compatible HWPT first (the automatic one is not).
    const rid = hwptAlloc(proc, fd, dev.idevId, ioas, IOMMU_HWPT_ALLOC_PASID);
    expect(rid.rc).toBe(0);
    expect(mockReplace(proc, fd, dev.stdevId, rid.hwptId)).toEqual({ rc: 0, ptId: rid.hwptId });
    const pasidCmd = (op: number, pasid: number, ptId: number) =>
      testCmd(proc, fd, {
        op,
        id: dev.stdevId,
        pasid_attach: { pasid, pt_id: ptId },
      });
    const attached = pasidCmd(IOMMU_TEST_OP_PASID_ATTACH, 100, hwpt.hwptId);
    expect(attached.rc).toBe(0);
    expect(attached.out.pasid_attach.pt_id).toBe(hwpt.hwptId);
    expect(
      testCmd(proc, fd, {
        op: IOMMU_TEST_OP_PASID_CHECK_HWPT,
        id: dev.stdevId,
        pasid_check: { pasid: 100, hwpt_id: hwpt.hwptId },
      }).rc,
    ).toBe(0);
    expect(enable(proc, fd, hwpt.hwptId)).toBe(0);
    const bitmap = proc.mmap(4096);
    proc.writeMemory(bitmap, bitmapOf(32, [2]));
    expect(markDirty(proc, fd, hwpt.hwptId, APERTURE, 64n * 1024n, 2048n, bitmap).nr).toBe(1n);
    proc.writeMemory(bitmap, new Uint8Array(4));
    expect(
      getBitmap(proc, fd, {
        hwptId: hwpt.hwptId,
        iova: APERTURE,
        length: 64n * 1024n,
        pageSize: 2048n,
        data: bitmap,
      }),
    ).toBe(0);
    expect(setBits(proc.readMemory(bitmap, 4) as Uint8Array)).toEqual([2]);
    expect(setTracking(proc, fd, hwpt.hwptId, 0)).toBe(0);
    expect(pasidCmd(IOMMU_TEST_OP_PASID_DETACH, 100, 0).rc).toBe(0);
    expect(destroy(proc, fd, hwpt.hwptId)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('157 (6.17): a PASID may take a dirty HWPT on a NO_DIRTY device: the 6.17 mock checks dirty ops in attach_dev (RID) only, not in set_dev_pasid', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const capable = mockDomain(proc, fd, ioas);
    expect(capable.rc).toBe(0);
    const noDirty = mockDomain(
      proc,
      fd,
      ioas,
      MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_PASID,
    );
    expect(noDirty.rc).toBe(0);
    const dirty = hwptAlloc(
      proc,
      fd,
      capable.idevId,
      ioas,
      IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID,
    );
    expect(dirty.rc).toBe(0);
    const compat = hwptAlloc(proc, fd, noDirty.idevId, ioas, IOMMU_HWPT_ALLOC_PASID);
    expect(compat.rc).toBe(0);
    // The RID: refused (mock_domain_nop_attach), and left where it was.
    expect(mockReplace(proc, fd, noDirty.stdevId, dirty.hwptId).rc).toBe(-EINVAL);
    expect(mockReplace(proc, fd, noDirty.stdevId, compat.hwptId).rc).toBe(0);
    // A PASID: accepted.
    const { rc } = testCmd(proc, fd, {
      op: IOMMU_TEST_OP_PASID_ATTACH,
      id: noDirty.stdevId,
      pasid_attach: { pasid: 7, pt_id: dirty.hwptId },
    });
    expect(rc).toBe(0);
    expect(
      testCmd(proc, fd, {
        op: IOMMU_TEST_OP_PASID_DETACH,
        id: noDirty.stdevId,
        pasid_detach: { pasid: 7 },
      }).rc,
    ).toBe(0);
    closeAndCheck(host, proc, fd);
  });
});

// ---- dirty bits from real DMA on VT-d ------------------------------------------------

const BDF = '0000:01:00.0';

/**
 * A VT-d host, a PCI device bound through VFIO, an IOAS and a dirty-tracking
 * paging HWPT on it allocated for the device and attached to its RID.
 */
function vtdFixture() {
  const host: Host = createHost({
    iommus: [{ name: 'vtd0', model: 'vtd' }],
    devices: [{ name: BDF, iommu: 'vtd0' }],
  });
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  const dev = proc.open('/dev/vfio/devices/vfio0');
  const bind = structs.vfio_device_bind_iommufd.encode({ argsz: 24, iommufd: fd });
  expect(proc.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, bind)).toBe(0);
  const devId = structs.vfio_device_bind_iommufd.decode(bind).out_devid;
  const ioas = ioasAlloc(proc, fd);
  const hwpt = hwptAlloc(proc, fd, devId, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
  expect(hwpt.rc).toBe(0);
  const attach = structs.vfio_device_attach_iommufd_pt.encode({ argsz: 12, pt_id: hwpt.hwptId });
  expect(proc.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, attach)).toBe(0);
  expect(structs.vfio_device_attach_iommufd_pt.decode(attach).pt_id).toBe(hwpt.hwptId);
  const bitmap = proc.mmap(8192);
  return { host, proc, fd, dev, devId, ioas, hwptId: hwpt.hwptId, bitmap };
}

/** Close the device (it holds the context) and then /dev/iommu: nothing pinned, no model exception. */
function vtdClose(host: Host, proc: Process, fd: number, dev: number): void {
  expect(proc.close(dev)).toBe(0);
  closeAndCheck(host, proc, fd);
}

/** A DMA write of `data` at `iova`; it must complete. */
function dmaWrite(host: Host, iova: bigint, data: Uint8Array): void {
  const out = host.deviceDma(BDF, { iova, data });
  expect(out?.status).toBe('done');
  expect(out?.bytes).toBe(data.length);
}

const SMALL_IOVA = 0x100000n; // 64 KiB of 4 KiB IOPTEs
const SMALL = 64 * KiB;
const HUGE_IOVA = 0x40000000n; // 4 MiB of 2 MiB IOPTEs

describe('2.16 dirty bits from real DMA writes (VT-d second stage)', () => {
  it('159: 4 KiB IOPTEs: exactly the pages written are reported, once; reads set nothing; the data lands', () => {
    const { host, proc, fd, dev, ioas, hwptId, bitmap } = vtdFixture();
    const buffer = proc.mmap(SMALL);
    expect(map(proc, fd, ioas, buffer, BigInt(SMALL), SMALL_IOVA).rc).toBe(0);
    expect(enable(proc, fd, hwptId)).toBe(0);
    const get = (flags = 0, pageSize = 4096n) => {
      proc.writeMemory(bitmap, new Uint8Array(8));
      expect(
        getBitmap(proc, fd, {
          hwptId,
          iova: SMALL_IOVA,
          length: BigInt(SMALL),
          pageSize,
          data: bitmap,
          flags,
        }),
      ).toBe(0);
      return setBits(proc.readMemory(bitmap, 8) as Uint8Array);
    };
    // Nothing written yet.
    expect(get()).toEqual([]);
    dmaWrite(host, SMALL_IOVA + 0x1000n, new Uint8Array([1, 2, 3]));
    dmaWrite(host, SMALL_IOVA + 0x5ffcn, new Uint8Array([9, 9, 9, 9, 9, 9, 9, 9])); // pages 5 and 6
    dmaWrite(host, SMALL_IOVA + 0xf000n, new Uint8Array(4096).fill(7)); // page 15 whole
    // A read touches page 9 and sets no dirty bit.
    const read = host.deviceDma(BDF, { iova: SMALL_IOVA + 0x9000n, length: 64 });
    expect(read?.status).toBe('done');
    expect(proc.readMemory(buffer + 0x1000n, 3)).toEqual(new Uint8Array([1, 2, 3]));
    expect(proc.readMemory(buffer + 0x5ffcn, 8)).toEqual(new Uint8Array(8).fill(9));
    expect(get()).toEqual([1, 5, 6, 15]);
    // The read cleared them.
    expect(get()).toEqual([]);
    vtdClose(host, proc, fd, dev);
  });

  it('160: NO_CLEAR reports the same pages again; a clearing read reports them once more, then never', () => {
    const { host, proc, fd, dev, ioas, hwptId, bitmap } = vtdFixture();
    const buffer = proc.mmap(SMALL);
    expect(map(proc, fd, ioas, buffer, BigInt(SMALL), SMALL_IOVA).rc).toBe(0);
    expect(enable(proc, fd, hwptId)).toBe(0);
    const get = (flags: number) => {
      proc.writeMemory(bitmap, new Uint8Array(8));
      expect(
        getBitmap(proc, fd, {
          hwptId,
          iova: SMALL_IOVA,
          length: BigInt(SMALL),
          pageSize: 4096n,
          data: bitmap,
          flags,
        }),
      ).toBe(0);
      return setBits(proc.readMemory(bitmap, 8) as Uint8Array);
    };
    dmaWrite(host, SMALL_IOVA + 0x3010n, new Uint8Array([0xaa]));
    dmaWrite(host, SMALL_IOVA + 0xc000n, new Uint8Array([0xbb]));
    const NO_CLEAR = IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR;
    expect(get(NO_CLEAR)).toEqual([3, 12]);
    expect(get(NO_CLEAR)).toEqual([3, 12]);
    expect(get(0)).toEqual([3, 12]);
    expect(get(0)).toEqual([]);
    expect(get(NO_CLEAR)).toEqual([]);
    // A new write after the clearing read is seen (the IOTLB was flushed with the clear).
    dmaWrite(host, SMALL_IOVA + 0x3020n, new Uint8Array([0xcc]));
    expect(get(0)).toEqual([3]);
    expect(proc.readMemory(buffer + 0x3010n, 1)).toEqual(new Uint8Array([0xaa]));
    expect(proc.readMemory(buffer + 0x3020n, 1)).toEqual(new Uint8Array([0xcc]));
    vtdClose(host, proc, fd, dev);
  });

  it('159: page_size 8 KiB over 4 KiB IOPTEs: a unit is dirty when either of its two pages was written', () => {
    const { host, proc, fd, dev, ioas, hwptId, bitmap } = vtdFixture();
    const buffer = proc.mmap(SMALL);
    expect(map(proc, fd, ioas, buffer, BigInt(SMALL), SMALL_IOVA).rc).toBe(0);
    expect(enable(proc, fd, hwptId)).toBe(0);
    dmaWrite(host, SMALL_IOVA + 0x2000n, new Uint8Array([1])); // page 2 → unit 1
    dmaWrite(host, SMALL_IOVA + 0x5800n, new Uint8Array([1])); // page 5 → unit 2
    dmaWrite(host, SMALL_IOVA + 0xf000n, new Uint8Array([1])); // page 15 → unit 7
    proc.writeMemory(bitmap, new Uint8Array(8));
    expect(
      getBitmap(proc, fd, {
        hwptId,
        iova: SMALL_IOVA,
        length: BigInt(SMALL),
        pageSize: 8192n,
        data: bitmap,
        flags: IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR,
      }),
    ).toBe(0);
    expect(setBits(proc.readMemory(bitmap, 8) as Uint8Array)).toEqual([1, 2, 7]);
    // The same IOPTEs at 4 KiB units.
    proc.writeMemory(bitmap, new Uint8Array(8));
    expect(
      getBitmap(proc, fd, {
        hwptId,
        iova: SMALL_IOVA,
        length: BigInt(SMALL),
        pageSize: 4096n,
        data: bitmap,
      }),
    ).toBe(0);
    expect(setBits(proc.readMemory(bitmap, 8) as Uint8Array)).toEqual([2, 5, 15]);
    vtdClose(host, proc, fd, dev);
  });

  it('161: 2 MiB IOPTEs: one write inside reports all 512 of its 4 KiB units (and only its leaf); NO_CLEAR repeats it; a clearing read ends it', () => {
    const { host, proc, fd, dev, ioas, hwptId, bitmap } = vtdFixture();
    const size = 4 * MiB;
    const buffer = proc.mmap(size);
    expect(buffer % BigInt(HPAGE)).toBe(0n);
    expect(map(proc, fd, ioas, buffer, BigInt(size), HUGE_IOVA).rc).toBe(0);
    expect(enable(proc, fd, hwptId)).toBe(0);
    const nbits = size / 4096;
    const get = (flags: number, pageSize = 4096n) => {
      proc.writeMemory(bitmap, new Uint8Array(nbits / 8));
      expect(
        getBitmap(proc, fd, {
          hwptId,
          iova: HUGE_IOVA,
          length: BigInt(size),
          pageSize,
          data: bitmap,
          flags,
        }),
      ).toBe(0);
      return proc.readMemory(bitmap, nbits / 8) as Uint8Array;
    };
    // Eight bytes in the middle of the second 2 MiB leaf.
    dmaWrite(host, HUGE_IOVA + BigInt(HPAGE) + 0x12345n, new Uint8Array(8).fill(0x5c));
    expect(proc.readMemory(buffer + BigInt(HPAGE) + 0x12345n, 8)).toEqual(
      new Uint8Array(8).fill(0x5c),
    );
    const secondLeaf = new Uint8Array(nbits / 8);
    secondLeaf.fill(0xff, 64, 128); // bits 512..1023
    const NO_CLEAR = IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR;
    expect(firstDifference(get(NO_CLEAR), secondLeaf)).toBe('');
    expect(firstDifference(get(NO_CLEAR), secondLeaf)).toBe('');
    // 2 MiB units: one bit. 1 GiB... no: 4 MiB units over this 4 MiB window: bit 0.
    expect(setBits(get(NO_CLEAR, BigInt(HPAGE)))).toEqual([1]);
    expect(setBits(get(NO_CLEAR, BigInt(size)))).toEqual([0]);
    expect(firstDifference(get(0), secondLeaf)).toBe('');
    expect(firstDifference(get(0), new Uint8Array(nbits / 8))).toBe('');
    // A write into the first leaf now reports only the first leaf.
    dmaWrite(host, HUGE_IOVA + 0x1ffff8n, new Uint8Array(8).fill(1));
    const firstLeaf = new Uint8Array(nbits / 8);
    firstLeaf.fill(0xff, 0, 64);
    expect(firstDifference(get(0), firstLeaf)).toBe('');
    vtdClose(host, proc, fd, dev);
  });

  it('155: with tracking disabled DMA writes leave no dirty bits; GET returns 0 and reports nothing; re-enabling starts clean', () => {
    const { host, proc, fd, dev, ioas, hwptId, bitmap } = vtdFixture();
    const buffer = proc.mmap(SMALL);
    expect(map(proc, fd, ioas, buffer, BigInt(SMALL), SMALL_IOVA).rc).toBe(0);
    const get = () => {
      proc.writeMemory(bitmap, new Uint8Array(8));
      expect(
        getBitmap(proc, fd, {
          hwptId,
          iova: SMALL_IOVA,
          length: BigInt(SMALL),
          pageSize: 4096n,
          data: bitmap,
        }),
      ).toBe(0);
      return setBits(proc.readMemory(bitmap, 8) as Uint8Array);
    };
    // Never enabled.
    dmaWrite(host, SMALL_IOVA + 0x4000n, new Uint8Array([1]));
    expect(get()).toEqual([]);
    expect(enable(proc, fd, hwptId)).toBe(0);
    expect(get()).toEqual([]);
    dmaWrite(host, SMALL_IOVA + 0x7000n, new Uint8Array([1]));
    // Disabled with a dirty page outstanding: nothing comes out while disabled.
    expect(setTracking(proc, fd, hwptId, 0)).toBe(0);
    dmaWrite(host, SMALL_IOVA + 0x8000n, new Uint8Array([1]));
    expect(get()).toEqual([]);
    // Enabling clears what was left, so only later writes are seen.
    expect(enable(proc, fd, hwptId)).toBe(0);
    expect(get()).toEqual([]);
    dmaWrite(host, SMALL_IOVA + 0xa000n, new Uint8Array([1]));
    expect(get()).toEqual([10]);
    expect(proc.readMemory(buffer + 0x8000n, 1)).toEqual(new Uint8Array([1]));
    vtdClose(host, proc, fd, dev);
  });

  it("156: writes tagged with a PASID dirty the PASID's HWPT, whether the PASID was attached before or after tracking was enabled", () => {
    const host: Host = createHost({
      iommus: [{ name: 'vtd0', model: 'vtd' }],
      devices: [{ name: BDF, iommu: 'vtd0', pasidBits: 20 }],
    });
    const proc = host.createProcess();
    const fd = proc.open('/dev/iommu');
    const dev = proc.open('/dev/vfio/devices/vfio0');
    const bind = structs.vfio_device_bind_iommufd.encode({ argsz: 24, iommufd: fd });
    expect(proc.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, bind)).toBe(0);
    const devId = structs.vfio_device_bind_iommufd.decode(bind).out_devid;
    const ioas = ioasAlloc(proc, fd);
    const buffer = proc.mmap(SMALL);
    expect(map(proc, fd, ioas, buffer, BigInt(SMALL), SMALL_IOVA).rc).toBe(0);
    const hwpt = hwptAlloc(
      proc,
      fd,
      devId,
      ioas,
      IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID,
    );
    expect(hwpt.rc).toBe(0);
    const attachPasid = (pasid: number) => {
      const b = structs.vfio_device_attach_iommufd_pt.encode({
        argsz: 16,
        flags: VFIO_DEVICE_ATTACH_PASID,
        pt_id: hwpt.hwptId,
        pasid,
      });
      expect(proc.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, b)).toBe(0);
    };
    const bitmap = proc.mmap(4096);
    const get = () => {
      proc.writeMemory(bitmap, new Uint8Array(8));
      expect(
        getBitmap(proc, fd, {
          hwptId: hwpt.hwptId,
          iova: SMALL_IOVA,
          length: BigInt(SMALL),
          pageSize: 4096n,
          data: bitmap,
        }),
      ).toBe(0);
      return setBits(proc.readMemory(bitmap, 8) as Uint8Array);
    };
    const write = (iova: bigint, pasid: number) => {
      const out = host.deviceDma(BDF, { iova, data: new Uint8Array([pasid]), pasid });
      expect(out?.status).toBe('done');
    };
    attachPasid(9);
    expect(enable(proc, fd, hwpt.hwptId)).toBe(0);
    write(SMALL_IOVA + 0x2000n, 9);
    attachPasid(10);
    write(SMALL_IOVA + 0xb000n, 10);
    expect(get()).toEqual([2, 11]);
    expect(proc.readMemory(buffer + 0xb000n, 1)).toEqual(new Uint8Array([10]));
    expect(setTracking(proc, fd, hwpt.hwptId, 0)).toBe(0);
    write(SMALL_IOVA + 0x3000n, 9);
    expect(enable(proc, fd, hwpt.hwptId)).toBe(0);
    expect(get()).toEqual([]);
    write(SMALL_IOVA + 0x4000n, 10);
    expect(get()).toEqual([4]);
    vtdClose(host, proc, fd, dev);
  });

  it('158: on VT-d a HWPT without IOMMU_HWPT_ALLOC_DIRTY_TRACKING has no dirty ops (EOPNOTSUPP), and the device reports the capability', () => {
    const { host, proc, fd, dev, devId, ioas, bitmap } = vtdFixture();
    expect(hwCaps(proc, fd, devId).caps & BigInt(IOMMU_HW_CAP_DIRTY_TRACKING)).toBe(
      BigInt(IOMMU_HW_CAP_DIRTY_TRACKING),
    );
    const plain = hwptAlloc(proc, fd, devId, ioas, 0);
    expect(plain.rc).toBe(0);
    expect(enable(proc, fd, plain.hwptId)).toBe(-EOPNOTSUPP);
    expect(
      getBitmap(proc, fd, {
        hwptId: plain.hwptId,
        iova: SMALL_IOVA,
        length: 4096n,
        pageSize: 4096n,
        data: bitmap,
      }),
    ).toBe(-EOPNOTSUPP);
    expect(destroy(proc, fd, plain.hwptId)).toBe(0);
    vtdClose(host, proc, fd, dev);
  });
});
