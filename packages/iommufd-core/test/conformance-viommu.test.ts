/**
 * vIOMMU, vDEVICE, vEVENTQ and HW queues (kernel-semantics.md 2.18, catalog
 * 176–201, with section 4's vEVENTQ and section 5's rules) through the
 * selftest's mock vIOMMU: the iommufd_viommu fixture and its tests
 * (viommu_negative_tests, viommu_alloc_nested_iopf, viommu_alloc_with_data,
 * vdevice_alloc, vdevice_cache, hw_queue, vdevice_tombstone) with exact
 * errnos, reasons, struct bytes and object tables; then section 5 (the
 * whole destroy order, a device behind another IOMMU, one vDEVICE per
 * device across vIOMMUs, VT-d / AMD / SMMUv3 type rules), and a property:
 * random alloc / attach / DESTROY sequences against a small reference of
 * who holds whom predict every result.
 */
import {
  E2BIG,
  EBUSY,
  EEXIST,
  EFAULT,
  EINVAL,
  EIO,
  ENOENT,
  ENOMEM,
  ENXIO,
  EOPNOTSUPP,
  EOVERFLOW,
  ESPIPE,
  IOMMU_HW_QUEUE_TYPE_DEFAULT,
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_TEST_DEV_CACHE_DEFAULT,
  IOMMU_TEST_HW_QUEUE_MAX,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_TEST_OP_MD_CHECK_IOTLB,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  IOMMU_VEVENTQ_TYPE_DEFAULT,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID,
  IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
  IOMMU_VIOMMU_TYPE_DEFAULT,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
  MOCK_APERTURE_START,
  MOCK_DEV_CACHE_ID_MAX,
  structs,
} from '@iommufd-sim/uapi-types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createHost, type HostConfig, type Process } from '../src/index.js';
import {
  closeAndCheck,
  destroy,
  ioasAlloc,
  map,
  mockDomain,
  mockReplace,
  PAGE,
  setup,
  testCmd,
  unmap,
} from './helpers.js';
import { vfioAttach, vfioBind } from './helpers-c.js';
import { faultAlloc, readFaults, triggerIopf } from './helpers-fault.js';
import {
  devCheckCache,
  expectErrno,
  hwQueueAlloc,
  hwQueueAllocRaw,
  nestParentAlloc,
  objectStates,
  readVevents,
  SELFTEST_VEVENT_LEN,
  triggerVevent,
  usersOf,
  VIOMMU_INV_LEN,
  VIOMMU_SELFTEST_LEN,
  vdeviceAlloc,
  veventBytes,
  veventqAlloc,
  veventqAllocRaw,
  viommuAlloc,
  viommuAllocRaw,
  viommuAllocWithData,
  viommuFixture,
  viommuInvalidate,
  viommuNestedAlloc,
} from './helpers-viommu.js';

const POLLIN = 0x1;
const POLLRDNORM = 0x40;
const APERTURE = BigInt(MOCK_APERTURE_START);
const U32_MAX = 0xffffffff;
const U64_MAX = (1n << 64n) - 1n;

/** Every DESTROY of `ids` → EBUSY with a reason, and the object table stays as it was. */
function expectBusy(proc: Process, fd: number, ...ids: number[]): void {
  const before = objectStates(proc, fd);
  for (const id of ids) {
    expectErrno(proc, destroy(proc, fd, id), EBUSY, 'IOMMU_DESTROY');
  }
  expect(objectStates(proc, fd)).toEqual(before);
}

/** The four DEV_CHECK_CACHE words of idev `idev` as 'default' / 0 / '?' each. */
function cacheWords(proc: Process, fd: number, idev: number): (number | string)[] {
  const out: (number | string)[] = [];
  for (let i = 0; i < 4; i++) {
    if (devCheckCache(proc, fd, idev, i, IOMMU_TEST_DEV_CACHE_DEFAULT) === 0) out.push('default');
    else if (devCheckCache(proc, fd, idev, i, 0) === 0) out.push(0);
    else out.push('?');
  }
  return out;
}

/** IOMMU_TEST_OP_MD_CHECK_IOTLB of slot `slot` of nested HWPT `hwpt`. */
function checkIotlb(proc: Process, fd: number, hwpt: number, slot: number, value: number): number {
  return testCmd(proc, fd, {
    op: IOMMU_TEST_OP_MD_CHECK_IOTLB,
    id: hwpt,
    check_iotlb: { id: slot, iotlb: value },
  }).rc;
}

/** The context's vIOMMU report for `id`. */
function viommuReport(proc: Process, fd: number, id: number) {
  return proc.inspect(fd)?.viommus.find((v) => v.id === id);
}

/** The HWPT the RID of device `idev` is attached to (0 when none). */
function attachedTo(proc: Process, fd: number, idev: number): number {
  const d = proc.inspect(fd)?.devices.find((x) => x.id === idev);
  return d?.attachments.find((a) => a.pasid === 0)?.hwpt ?? 0;
}

/** A second mock device on `ioas` (its stdev and idev). */
function secondDevice(proc: Process, fd: number, ioas: number): { stdev: number; idev: number } {
  const md = mockDomain(proc, fd, ioas);
  expect(md.rc).toBe(0);
  return { stdev: md.stdevId, idev: md.idevId };
}

// ---- 2.18: IOMMU_VIOMMU_ALLOC ---------------------------------------------------------------

describe('2.18 IOMMU_VIOMMU_ALLOC (176–181)', () => {
  it('the fixture: ioas 1, stdev 2, idev 3, auto HWPT 4, parent 5, vIOMMU 6 holding the parent, nested 7 holding the vIOMMU', () => {
    const f = viommuFixture();
    expect([f.ioas, f.stdev, f.idev, f.parent, f.viommu, f.nested]).toEqual([1, 2, 3, 5, 6, 7]);
    expect(objectStates(f.proc, f.fd)).toEqual([
      '1:IOAS:live',
      '2:SELFTEST:live',
      '3:DEVICE:live',
      '4:HWPT_PAGING:live',
      '5:HWPT_PAGING:live',
      '6:VIOMMU:live',
      '7:HWPT_NESTED:live',
    ]);
    expect(usersOf(f.proc, f.fd, f.parent)).toBe(1);
    expect(usersOf(f.proc, f.fd, f.viommu)).toBe(1);
    const report = viommuReport(f.proc, f.fd, f.viommu);
    expect(report?.parent).toBe(f.parent);
    expect(report?.driver).toBe('selftest');
    expect(report?.mmap).toBeNull();
    const hwpts = f.proc.inspect(f.fd)?.hwpts ?? [];
    expect(hwpts.find((h) => h.id === f.nested)?.viommu).toBe(f.viommu);
    expect(hwpts.find((h) => h.id === f.parent)?.nestParent).toBe(true);
    // viommu_auto_destroy: close with everything alive.
    closeAndCheck(f.host, f.proc, f.fd);
    expect(f.host.liveViommus.size).toBe(0);
  });

  it('176: hwpt_id 0 → ENOENT; an IOAS, a nested HWPT, a vIOMMU or an unknown id as hwpt_id → ENOENT; nothing is created', () => {
    const f = viommuFixture();
    const before = objectStates(f.proc, f.fd);
    for (const hwpt of [0, f.ioas, f.nested, f.viommu, 4242]) {
      expectErrno(f.proc, viommuAlloc(f.proc, f.fd, f.idev, hwpt).rc, ENOENT, 'IOMMU_VIOMMU_ALLOC');
    }
    expect(objectStates(f.proc, f.fd)).toEqual(before);
    // No id was consumed: the next object is 8.
    expect(viommuAlloc(f.proc, f.fd, f.idev, f.parent)).toEqual({ rc: 0, id: 8 });
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('177: a paging HWPT without NEST_PARENT (manual or the auto one) → EINVAL; the HWPT stays destroyable', () => {
    const f = viommuFixture();
    const plain = nestParentAlloc(f.proc, f.fd, f.idev, f.ioas, 0);
    expect(plain.rc).toBe(0);
    const before = objectStates(f.proc, f.fd);
    const got = viommuAlloc(f.proc, f.fd, f.idev, plain.id);
    expectErrno(f.proc, got.rc, EINVAL, 'IOMMU_VIOMMU_ALLOC');
    expect(f.proc.lastError()?.reason).toMatch(/NEST_PARENT/);
    expectErrno(f.proc, viommuAlloc(f.proc, f.fd, f.idev, 4).rc, EINVAL, 'IOMMU_VIOMMU_ALLOC');
    expect(objectStates(f.proc, f.fd)).toEqual(before);
    expect(usersOf(f.proc, f.fd, plain.id)).toBe(0);
    expect(destroy(f.proc, f.fd, plain.id)).toBe(0);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('178: type 0xdead, type 0 (DEFAULT), ARM_SMMUV3 or TEGRA241_CMDQV on the mock, or flags != 0 → EOPNOTSUPP; the parent and the vIOMMU stay busy', () => {
    const f = viommuFixture();
    const before = objectStates(f.proc, f.fd);
    for (const type of [
      0xdead,
      IOMMU_VIOMMU_TYPE_DEFAULT,
      IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
      IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
    ]) {
      expectErrno(
        f.proc,
        viommuAlloc(f.proc, f.fd, f.idev, f.parent, type).rc,
        EOPNOTSUPP,
        'IOMMU_VIOMMU_ALLOC',
      );
    }
    for (const flags of [1, 0x80000000]) {
      const got = viommuAllocRaw(f.proc, f.fd, {
        flags,
        type: IOMMU_VIOMMU_TYPE_SELFTEST,
        dev_id: f.idev,
        hwpt_id: f.parent,
      });
      expectErrno(f.proc, got.rc, EOPNOTSUPP, 'IOMMU_VIOMMU_ALLOC');
    }
    // The type is checked before the HWPT: type 0xdead with hwpt_id 0 is still EOPNOTSUPP.
    expectErrno(f.proc, viommuAlloc(f.proc, f.fd, f.idev, 0, 0xdead).rc, EOPNOTSUPP);
    expect(objectStates(f.proc, f.fd)).toEqual(before);
    expectBusy(f.proc, f.fd, f.parent, f.viommu);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('179: no_viommu variant: VIOMMU_ALLOC without a device (dev_id 0, hwpt_id 0) → ENOENT; a dev_id that is not a device → ENOENT', () => {
    const f = viommuFixture('no_viommu');
    expect(objectStates(f.proc, f.fd)).toEqual(['1:IOAS:live']);
    expectErrno(f.proc, viommuAlloc(f.proc, f.fd, 0, 0).rc, ENOENT, 'IOMMU_VIOMMU_ALLOC');
    expectErrno(f.proc, viommuAlloc(f.proc, f.fd, f.ioas, 0).rc, ENOENT, 'IOMMU_VIOMMU_ALLOC');
    expect(f.proc.lastError()?.reason).toMatch(/IOAS/);
    expect(objectStates(f.proc, f.fd)).toEqual(['1:IOAS:live']);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('180: with struct iommu_viommu_selftest {in_data 0xbeef} → out_data 0xbeef, a 2-page mmap region at a page-aligned offset; a second vIOMMU gets its own region', () => {
    const f = viommuFixture();
    const got = viommuAllocWithData(f.proc, f.fd, f.idev, f.parent, 0xbeef);
    expect(got.rc).toBe(0);
    expect(got.id).toBe(8);
    expect(got.data.in_data).toBe(0xbeef);
    expect(got.data.out_data).toBe(0xbeef);
    expect(got.data.out_mmap_length).toBe(2n * PAGE);
    expect(got.data.out_mmap_offset % PAGE).toBe(0n);
    expect(viommuReport(f.proc, f.fd, got.id)?.mmap).toEqual({
      offset: got.data.out_mmap_offset,
      length: Number(2n * PAGE),
      mappings: 0,
    });
    // The vIOMMU holds the parent; the parent is busy twice over now.
    expect(usersOf(f.proc, f.fd, f.parent)).toBe(2);
    const second = viommuAllocWithData(f.proc, f.fd, f.idev, f.parent, 0x1234);
    expect(second.rc).toBe(0);
    expect(second.data.out_data).toBe(0x1234);
    expect(second.data.out_mmap_length).toBe(2n * PAGE);
    const a = got.data.out_mmap_offset;
    const b = second.data.out_mmap_offset;
    expect(b >= a + 2n * PAGE || a >= b + 2n * PAGE).toBe(true);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('180: the data is copied as iommu_copy_struct_from_user(.., out_data): data_len 8 is enough (only 8 bytes written back), below 8 or past the struct → EINVAL, a bad pointer → EFAULT; a refused alloc leaves no object and no region', () => {
    const f = viommuFixture();
    const va = f.proc.mmap(PAGE);
    const fill = new Uint8Array(32).fill(0xee);
    const reset = (inData: number) => {
      f.proc.writeMemory(va, fill);
      f.proc.writeMemory(
        va,
        structs.iommu_viommu_selftest.encode({ in_data: inData }).subarray(0, 4),
      );
    };
    const alloc = (len: number, uptr = va) =>
      viommuAllocRaw(f.proc, f.fd, {
        type: IOMMU_VIOMMU_TYPE_SELFTEST,
        dev_id: f.idev,
        hwpt_id: f.parent,
        data_len: len,
        data_uptr: uptr,
      });
    const before = objectStates(f.proc, f.fd);
    for (const len of [4, 7, VIOMMU_SELFTEST_LEN + 1, VIOMMU_SELFTEST_LEN + 8]) {
      reset(0x55);
      expectErrno(f.proc, alloc(len).rc, EINVAL, 'IOMMU_VIOMMU_ALLOC');
    }
    reset(0x55);
    expectErrno(f.proc, alloc(VIOMMU_SELFTEST_LEN, 0n).rc, EFAULT, 'IOMMU_VIOMMU_ALLOC');
    expect(objectStates(f.proc, f.fd)).toEqual(before);
    expect(f.proc.inspect(f.fd)?.viommus.map((v) => v.mmap)).toEqual([null]);
    reset(0x77);
    const short = alloc(8);
    expect(short.rc).toBe(0);
    expect(short.id).toBe(8);
    const back = f.proc.readMemory(va, 32) as Uint8Array;
    const dv = new DataView(back.buffer);
    expect(dv.getUint32(0, true)).toBe(0x77);
    expect(dv.getUint32(4, true)).toBe(0x77);
    // Bytes past data_len are the user's, untouched.
    expect([...back.subarray(8)]).toEqual(new Array(24).fill(0xee));
    expect(viommuReport(f.proc, f.fd, short.id)?.mmap?.length).toBe(Number(2n * PAGE));
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('181: mmap at offset + PAGE, + 2·PAGE, with half or double the length → ENXIO; the exact mmap works and reads in_data; DESTROY of the vIOMMU while mapped → EBUSY, after munmap → 0', () => {
    const f = viommuFixture();
    const got = viommuAllocWithData(f.proc, f.fd, f.idev, f.parent, 0xbeef);
    expect(got.rc).toBe(0);
    const { out_mmap_offset: offset, out_mmap_length: length } = got.data;
    const bad: [bigint, bigint][] = [
      [length, offset + PAGE],
      [length, offset + 2n * PAGE],
      [length / 2n, offset],
      [length * 2n, offset],
    ];
    for (const [len, off] of bad) {
      const va = f.proc.mmap(len, { fd: f.fd, offset: off });
      expect(va).toBe(BigInt(-ENXIO));
      expect(f.proc.lastError()?.errno).toBe(ENXIO);
      expect(f.proc.lastError()?.reason).toMatch(/offset/);
    }
    expect(viommuReport(f.proc, f.fd, got.id)?.mmap?.mappings).toBe(0);
    expect(usersOf(f.proc, f.fd, got.id)).toBe(0);
    const va = f.proc.mmap(length, { fd: f.fd, offset });
    expect(va).toBeGreaterThan(0n);
    const word = f.proc.readMemory(va, 4) as Uint8Array;
    expect(new DataView(word.buffer).getUint32(0, true)).toBe(0xbeef);
    expect(viommuReport(f.proc, f.fd, got.id)?.mmap?.mappings).toBe(1);
    expect(usersOf(f.proc, f.fd, got.id)).toBe(1);
    expectBusy(f.proc, f.fd, got.id);
    expect(f.proc.lastError()?.reason.length).toBeGreaterThan(0);
    // A partial munmap keeps the rest of the mapping, and so the reference (vma split).
    expect(f.proc.munmap(va, PAGE)).toBe(0);
    expectBusy(f.proc, f.fd, got.id);
    expect(f.proc.munmap(va + PAGE, PAGE)).toBe(0);
    expect(usersOf(f.proc, f.fd, got.id)).toBe(0);
    expect(destroy(f.proc, f.fd, got.id)).toBe(0);
    // Its region went with it.
    expect(f.proc.mmap(length, { fd: f.fd, offset })).toBe(BigInt(-ENXIO));
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('181: two mappings of the region each hold the vIOMMU; the owner is free only after both are unmapped', () => {
    const f = viommuFixture();
    const got = viommuAllocWithData(f.proc, f.fd, f.idev, f.parent, 0xabcd);
    const { out_mmap_offset: offset, out_mmap_length: length } = got.data;
    const a = f.proc.mmap(length, { fd: f.fd, offset });
    const b = f.proc.mmap(length, { fd: f.fd, offset });
    expect(a).toBeGreaterThan(0n);
    expect(b).toBeGreaterThan(0n);
    expect(a).not.toBe(b);
    expect(usersOf(f.proc, f.fd, got.id)).toBe(2);
    expect(f.proc.munmap(a, length)).toBe(0);
    expectBusy(f.proc, f.fd, got.id);
    expect(f.proc.munmap(b, length)).toBe(0);
    expect(destroy(f.proc, f.fd, got.id)).toBe(0);
    closeAndCheck(f.host, f.proc, f.fd);
  });
});

// ---- 2.18: nested HWPTs and vDEVICEs -------------------------------------------------------------

describe('2.18 nested HWPTs and IOMMU_VDEVICE_ALLOC (182–188)', () => {
  it('182: attaching the device to a vIOMMU-nested HWPT before it has a vDEVICE → ENOENT and it stays where it was; with one → 0, the HWPT busy until the device leaves', () => {
    const f = viommuFixture();
    const before = objectStates(f.proc, f.fd);
    const got = mockReplace(f.proc, f.fd, f.stdev, f.nested);
    expectErrno(f.proc, got.rc, ENOENT);
    expect(f.proc.lastError()?.reason).toMatch(/vDEVICE/);
    expect(attachedTo(f.proc, f.fd, f.idev)).toBe(4);
    expect(objectStates(f.proc, f.fd)).toEqual(before);
    const vdev = vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, 0x99n);
    expect(vdev).toEqual({ rc: 0, id: 8 });
    expect(mockReplace(f.proc, f.fd, f.stdev, f.nested)).toEqual({ rc: 0, ptId: f.nested });
    expect(attachedTo(f.proc, f.fd, f.idev)).toBe(f.nested);
    // The auto HWPT 4 lost its last device and is gone.
    expect(objectStates(f.proc, f.fd)).not.toContain('4:HWPT_PAGING:live');
    expectBusy(f.proc, f.fd, f.nested, f.viommu, f.parent);
    expect(mockReplace(f.proc, f.fd, f.stdev, f.ioas).rc).toBe(0);
    expect(destroy(f.proc, f.fd, f.nested)).toBe(0);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it("182: a vDEVICE in another vIOMMU does not count: attach to this vIOMMU's nested HWPT → ENOENT", () => {
    const f = viommuFixture();
    const other = viommuAlloc(f.proc, f.fd, f.idev, f.parent);
    expect(other.rc).toBe(0);
    expect(vdeviceAlloc(f.proc, f.fd, other.id, f.idev, 0x99n).rc).toBe(0);
    expectErrno(f.proc, mockReplace(f.proc, f.fd, f.stdev, f.nested).rc, ENOENT);
    const otherNested = viommuNestedAlloc(f.proc, f.fd, f.idev, other.id);
    expect(otherNested.rc).toBe(0);
    expect(mockReplace(f.proc, f.fd, f.stdev, otherNested.id).rc).toBe(0);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('183: nested-from-vIOMMU flags: FAULT_ID_VALID|bit31 → EOPNOTSUPP, NEST_PARENT or DIRTY_TRACKING → EOPNOTSUPP, fault_id UINT32_MAX → ENOENT; FAULT_ID_VALID with a fault → 0 and an IOPF reaches the fault fd (viommu_alloc_nested_iopf)', () => {
    const f = viommuFixture();
    const fault = faultAlloc(f.proc, f.fd);
    expect(fault.rc).toBe(0);
    const before = objectStates(f.proc, f.fd);
    const nested = (flags: number, faultId = fault.id) =>
      viommuNestedAlloc(f.proc, f.fd, f.idev, f.viommu, { flags, faultId });
    expectErrno(f.proc, nested(IOMMU_HWPT_FAULT_ID_VALID, U32_MAX).rc, ENOENT, 'IOMMU_HWPT_ALLOC');
    for (const flags of [
      (IOMMU_HWPT_FAULT_ID_VALID | 0x80000000) >>> 0,
      IOMMU_HWPT_ALLOC_NEST_PARENT,
      IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    ]) {
      expectErrno(f.proc, nested(flags).rc, EOPNOTSUPP, 'IOMMU_HWPT_ALLOC');
    }
    expect(objectStates(f.proc, f.fd)).toEqual(before);
    // ALLOC_PASID is allowed.
    const pasidOk = nested(IOMMU_HWPT_ALLOC_PASID);
    expect(pasidOk.rc).toBe(0);
    expect(destroy(f.proc, f.fd, pasidOk.id)).toBe(0);
    const iopf = nested(IOMMU_HWPT_FAULT_ID_VALID);
    expect(iopf.rc).toBe(0);
    expect(checkIotlb(f.proc, f.fd, iopf.id, 0, IOMMU_TEST_IOTLB_DEFAULT)).toBe(0);
    expectErrno(f.proc, mockReplace(f.proc, f.fd, f.stdev, iopf.id).rc, ENOENT);
    expect(vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, 0x99n).rc).toBe(0);
    expect(mockReplace(f.proc, f.fd, f.stdev, iopf.id).rc).toBe(0);
    expectBusy(f.proc, f.fd, iopf.id, fault.id);
    expect(triggerIopf(f.proc, f.fd, f.idev)).toBe(0);
    const read = readFaults(f.proc, fault.faultFd);
    expect(read.rc).toBe(40);
    expect(read.records[0]?.dev_id).toBe(f.idev);
    expect(mockReplace(f.proc, f.fd, f.stdev, f.ioas).rc).toBe(0);
    expect(destroy(f.proc, f.fd, iopf.id)).toBe(0);
    expect(f.proc.close(fault.faultFd)).toBe(0);
    expect(destroy(f.proc, f.fd, fault.id)).toBe(0);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('184: VDEVICE_ALLOC for a device that has one → EEXIST, with the same or another virt_id; the first stays', () => {
    const f = viommuFixture();
    expect(vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, 0x99n)).toEqual({ rc: 0, id: 8 });
    const before = objectStates(f.proc, f.fd);
    for (const virt of [0x99n, 0x88n, 0n]) {
      expectErrno(
        f.proc,
        vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, virt).rc,
        EEXIST,
        'IOMMU_VDEVICE_ALLOC',
      );
    }
    expect(f.proc.lastError()?.reason).toMatch(/vDEVICE 8/);
    expect(objectStates(f.proc, f.fd)).toEqual(before);
    expect(viommuReport(f.proc, f.fd, f.viommu)?.vdevices.map((v) => [v.id, v.virtId])).toEqual([
      [8, 0x99n],
    ]);
    // The vDEVICE holds the vIOMMU.
    expect(usersOf(f.proc, f.fd, f.viommu)).toBe(2);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('185: a virt_id another device already uses in the same vIOMMU → EEXIST; in another vIOMMU the same virt_id is fine', () => {
    const f = viommuFixture();
    const dev2 = secondDevice(f.proc, f.fd, f.ioas);
    expect(vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, 0x99n).rc).toBe(0);
    const before = objectStates(f.proc, f.fd);
    const got = vdeviceAlloc(f.proc, f.fd, f.viommu, dev2.idev, 0x99n);
    expectErrno(f.proc, got.rc, EEXIST, 'IOMMU_VDEVICE_ALLOC');
    expect(f.proc.lastError()?.reason).toMatch(/0x99/);
    expect(objectStates(f.proc, f.fd)).toEqual(before);
    // The failed attempt left dev2 without a vDEVICE: it can still get one.
    const other = viommuAlloc(f.proc, f.fd, dev2.idev, f.parent);
    expect(other.rc).toBe(0);
    expect(vdeviceAlloc(f.proc, f.fd, other.id, dev2.idev, 0x99n).rc).toBe(0);
    // The largest virt_id is a u64 like any other.
    const v3 = viommuAlloc(f.proc, f.fd, f.idev, f.parent);
    const dev3 = secondDevice(f.proc, f.fd, f.ioas);
    expect(vdeviceAlloc(f.proc, f.fd, v3.id, dev3.idev, U64_MAX).rc).toBe(0);
    expect(viommuReport(f.proc, f.fd, v3.id)?.vdevices[0]?.virtId).toBe(U64_MAX);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('186: a device that is gone (its stdev destroyed) → ENOENT; a vIOMMU id that is not a vIOMMU → ENOENT', () => {
    const f = viommuFixture();
    const dev2 = secondDevice(f.proc, f.fd, f.ioas);
    expect(destroy(f.proc, f.fd, dev2.stdev)).toBe(0);
    const before = objectStates(f.proc, f.fd);
    expectErrno(
      f.proc,
      vdeviceAlloc(f.proc, f.fd, f.viommu, dev2.idev, 0x1n).rc,
      ENOENT,
      'IOMMU_VDEVICE_ALLOC',
    );
    for (const notViommu of [f.parent, f.nested, f.ioas, 0]) {
      expectErrno(
        f.proc,
        vdeviceAlloc(f.proc, f.fd, notViommu, f.idev, 0x1n).rc,
        ENOENT,
        'IOMMU_VDEVICE_ALLOC',
      );
    }
    expect(objectStates(f.proc, f.fd)).toEqual(before);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('187: destroy the vDEVICE, then VDEVICE_ALLOC with a new virt_id (0x88) → 0 and it reuses the freed id; the old virt_id is free for another device', () => {
    const f = viommuFixture();
    const first = vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, 0x99n);
    expect(first).toEqual({ rc: 0, id: 8 });
    expect(usersOf(f.proc, f.fd, first.id)).toBe(0);
    expect(destroy(f.proc, f.fd, first.id)).toBe(0);
    expect(usersOf(f.proc, f.fd, f.viommu)).toBe(1);
    expect(vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, 0x88n)).toEqual({ rc: 0, id: 8 });
    const dev2 = secondDevice(f.proc, f.fd, f.ioas);
    expect(vdeviceAlloc(f.proc, f.fd, f.viommu, dev2.idev, 0x99n).rc).toBe(0);
    expect(viommuReport(f.proc, f.fd, f.viommu)?.vdevices.map((v) => v.virtId)).toEqual([
      0x88n,
      0x99n,
    ]);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('188: no_viommu variant: VDEVICE_ALLOC(viommu 0, dev 0, 0x99) → ENOENT', () => {
    const f = viommuFixture('no_viommu');
    expectErrno(f.proc, vdeviceAlloc(f.proc, f.fd, 0, 0, 0x99n).rc, ENOENT, 'IOMMU_VDEVICE_ALLOC');
    expect(objectStates(f.proc, f.fd)).toEqual(['1:IOAS:live']);
    closeAndCheck(f.host, f.proc, f.fd);
  });
});

// ---- 2.18 / 4: vEVENTQ ----------------------------------------------------------------------------

/** The fixture with a vEVENTQ of depth `depth`, a vDEVICE 0x99 and the device on the nested HWPT. */
function veventFixture(depth = 2) {
  const f = viommuFixture();
  const q = veventqAlloc(f.proc, f.fd, f.viommu, depth);
  expect(q.rc).toBe(0);
  const vdev = vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, 0x99n);
  expect(vdev.rc).toBe(0);
  expect(mockReplace(f.proc, f.fd, f.stdev, f.nested).rc).toBe(0);
  return { ...f, q, vdev: vdev.id };
}

describe('2.18 / 4 IOMMU_VEVENTQ_ALLOC and reading vEVENTs (189–193)', () => {
  it('189: a second vEVENTQ of the same type on one vIOMMU → EEXIST; another type or another vIOMMU is fine; the queue is busy while its fd is open', () => {
    const f = viommuFixture();
    const q = veventqAlloc(f.proc, f.fd, f.viommu);
    expect(q.rc).toBe(0);
    expect(q.id).toBe(8);
    expect(q.eventFd).toBeGreaterThan(f.fd);
    const before = objectStates(f.proc, f.fd);
    const again = veventqAlloc(f.proc, f.fd, f.viommu);
    expectErrno(f.proc, again.rc, EEXIST, 'IOMMU_VEVENTQ_ALLOC');
    expect(f.proc.lastError()?.reason).toMatch(/vEVENTQ 8/);
    expect(objectStates(f.proc, f.fd)).toEqual(before);
    // The queue holds the vIOMMU; its fd holds the queue.
    expect(usersOf(f.proc, f.fd, f.viommu)).toBe(2);
    expect(usersOf(f.proc, f.fd, q.id)).toBe(1);
    const other = veventqAlloc(f.proc, f.fd, f.viommu, 2, 0x1234);
    expect(other.rc).toBe(0);
    const v2 = viommuAlloc(f.proc, f.fd, f.idev, f.parent);
    expect(veventqAlloc(f.proc, f.fd, v2.id).rc).toBe(0);
    expectBusy(f.proc, f.fd, q.id, f.viommu);
    expect(f.proc.close(q.eventFd)).toBe(0);
    expect(usersOf(f.proc, f.fd, q.id)).toBe(0);
    expect(destroy(f.proc, f.fd, q.id)).toBe(0);
    // The type is free again.
    const third = veventqAlloc(f.proc, f.fd, f.viommu);
    expect(third.rc).toBe(0);
    expect(third.id).toBe(q.id);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('190: depth 0 → EINVAL; type 0, flags or __reserved set → EOPNOTSUPP (checked before depth and the vIOMMU); an unknown vIOMMU → ENOENT; no object and no fd is left', () => {
    const f = viommuFixture();
    const before = objectStates(f.proc, f.fd);
    const cases: [Parameters<typeof veventqAllocRaw>[2], number][] = [
      [{ viommu_id: f.viommu, type: IOMMU_VEVENTQ_TYPE_SELFTEST, veventq_depth: 0 }, EINVAL],
      [{ viommu_id: 0, type: IOMMU_VEVENTQ_TYPE_SELFTEST, veventq_depth: 0 }, EINVAL],
      [{ viommu_id: f.viommu, type: IOMMU_VEVENTQ_TYPE_DEFAULT, veventq_depth: 2 }, EOPNOTSUPP],
      [{ viommu_id: 0, type: IOMMU_VEVENTQ_TYPE_DEFAULT, veventq_depth: 0 }, EOPNOTSUPP],
      [
        { viommu_id: f.viommu, type: IOMMU_VEVENTQ_TYPE_SELFTEST, veventq_depth: 2, flags: 1 },
        EOPNOTSUPP,
      ],
      [
        {
          viommu_id: f.viommu,
          type: IOMMU_VEVENTQ_TYPE_SELFTEST,
          veventq_depth: 2,
          __reserved: 1,
        },
        EOPNOTSUPP,
      ],
      [{ viommu_id: 0, type: IOMMU_VEVENTQ_TYPE_SELFTEST, veventq_depth: 2 }, ENOENT],
      [{ viommu_id: f.parent, type: IOMMU_VEVENTQ_TYPE_SELFTEST, veventq_depth: 2 }, ENOENT],
    ];
    for (const [fields, errno] of cases) {
      const got = veventqAllocRaw(f.proc, f.fd, fields);
      expectErrno(f.proc, got.rc, errno, 'IOMMU_VEVENTQ_ALLOC');
      expect(got.eventFd).toBe(0);
    }
    expect(objectStates(f.proc, f.fd)).toEqual(before);
    // No fd was consumed either: the next queue gets the fd a probe open gets first.
    const probe = f.proc.open('/dev/iommu');
    expect(f.proc.close(probe)).toBe(0);
    const ok = veventqAlloc(f.proc, f.fd, f.viommu);
    expect(ok.rc).toBe(0);
    expect(ok.eventFd).toBe(probe);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('191: one event → read gives exactly {flags 0, sequence 0} + {virt_id 0x99}; the fd polls readable only while it waits; an empty queue reads 0; a nonzero position → ESPIPE', () => {
    const f = veventFixture();
    expect(f.proc.poll(f.q.eventFd)).toBe(0);
    expect(readVevents(f.proc, f.q.eventFd, 64).rc).toBe(0);
    expect(triggerVevent(f.proc, f.fd, f.idev)).toBe(0);
    expect(f.proc.poll(f.q.eventFd)).toBe(POLLIN | POLLRDNORM);
    const bad = new Uint8Array(64);
    expect(f.proc.read(f.q.eventFd, bad, 1)).toBe(-ESPIPE);
    expect(f.proc.lastError()?.errno).toBe(ESPIPE);
    const got = readVevents(f.proc, f.q.eventFd, 64);
    expect(got.rc).toBe(SELFTEST_VEVENT_LEN);
    expect([...got.bytes]).toEqual([...veventBytes([{ flags: 0, sequence: 0, virtId: 0x99 }])]);
    expect([...got.bytes]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0x99, 0, 0, 0]);
    expect(f.proc.poll(f.q.eventFd)).toBe(0);
    expect(readVevents(f.proc, f.q.eventFd, 64).rc).toBe(0);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('191: only whole items are read: a buffer of 11 bytes reads 0 and leaves the event, 12 reads it', () => {
    const f = veventFixture();
    expect(triggerVevent(f.proc, f.fd, f.idev)).toBe(0);
    expect(triggerVevent(f.proc, f.fd, f.idev)).toBe(0);
    expect(readVevents(f.proc, f.q.eventFd, 11).rc).toBe(0);
    expect(readVevents(f.proc, f.q.eventFd, 8).rc).toBe(0);
    const one = readVevents(f.proc, f.q.eventFd, 23);
    expect(one.rc).toBe(12);
    expect(one.items).toEqual([{ flags: 0, sequence: 0, virtId: 0x99 }]);
    expect(readVevents(f.proc, f.q.eventFd, 12).items).toEqual([
      { flags: 0, sequence: 1, virtId: 0x99 },
    ]);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('191: TRIGGER_VEVENT without a vEVENTQ of the type → EOPNOTSUPP; a device not on a vIOMMU-nested HWPT → ENOENT; an id that is not a device → ENOENT', () => {
    const f = viommuFixture();
    expect(vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, 0x99n).rc).toBe(0);
    expectErrno(f.proc, triggerVevent(f.proc, f.fd, f.idev), ENOENT, 'IOMMU_TEST_CMD');
    expect(mockReplace(f.proc, f.fd, f.stdev, f.nested).rc).toBe(0);
    expectErrno(f.proc, triggerVevent(f.proc, f.fd, f.idev), EOPNOTSUPP, 'IOMMU_TEST_CMD');
    const other = veventqAlloc(f.proc, f.fd, f.viommu, 2, 0x1234);
    expect(other.rc).toBe(0);
    expectErrno(f.proc, triggerVevent(f.proc, f.fd, f.idev), EOPNOTSUPP);
    expect(readVevents(f.proc, other.eventFd, 64).rc).toBe(0);
    expectErrno(f.proc, triggerVevent(f.proc, f.fd, f.stdev), ENOENT);
    expectErrno(f.proc, triggerVevent(f.proc, f.fd, 999), ENOENT);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('192, 193: depth 2 and 3 events → seq n+1, n+2, then a LOST_EVENTS header (flags 1, seq n+3) with no data; one more event → seq n+4, no loss (vdevice_alloc)', () => {
    const f = veventFixture();
    // The selftest's first round: 0x99, one event, read.
    expect(triggerVevent(f.proc, f.fd, f.idev)).toBe(0);
    expect(readVevents(f.proc, f.q.eventFd, 12).items).toEqual([
      { flags: 0, sequence: 0, virtId: 0x99 },
    ]);
    expectErrno(f.proc, vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, 0x99n).rc, EEXIST);
    expect(mockReplace(f.proc, f.fd, f.stdev, f.ioas).rc).toBe(0);
    expect(destroy(f.proc, f.fd, f.vdev)).toBe(0);
    // Again with 0x88.
    expect(vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, 0x88n).rc).toBe(0);
    expect(mockReplace(f.proc, f.fd, f.stdev, f.nested).rc).toBe(0);
    for (let i = 0; i < 3; i++) expect(triggerVevent(f.proc, f.fd, f.idev)).toBe(0);
    const q = f.proc.inspect(f.fd)?.viommus[0]?.veventqs[0];
    expect(q).toMatchObject({ depth: 2, pending: 2, lost: 1 });
    const got = readVevents(f.proc, f.q.eventFd, 3 * SELFTEST_VEVENT_LEN);
    expect(got.rc).toBe(2 * SELFTEST_VEVENT_LEN + 8);
    const items = [
      { flags: 0, sequence: 1, virtId: 0x88 },
      { flags: 0, sequence: 2, virtId: 0x88 },
      { flags: IOMMU_VEVENTQ_FLAG_LOST_EVENTS, sequence: 3 },
    ];
    expect(got.items).toEqual(items);
    expect([...got.bytes]).toEqual([...veventBytes(items)]);
    expect(f.proc.poll(f.q.eventFd)).toBe(0);
    // 193: the overflow is gone after the read.
    expect(triggerVevent(f.proc, f.fd, f.idev)).toBe(0);
    expect(readVevents(f.proc, f.q.eventFd, SELFTEST_VEVENT_LEN).items).toEqual([
      { flags: 0, sequence: 4, virtId: 0x88 },
    ]);
    expect(f.proc.close(f.q.eventFd)).toBe(0);
    expect(mockReplace(f.proc, f.fd, f.stdev, f.ioas).rc).toBe(0);
    expect(destroy(f.proc, f.fd, f.vdev)).toBe(0);
    expect(destroy(f.proc, f.fd, f.q.id)).toBe(0);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('192: the LOST_EVENTS marker moves to the tail with the newest lost sequence; a real event after a partial read replaces it (a sequence gap of k+1 = k lost)', () => {
    const f = veventFixture();
    for (let i = 0; i < 4; i++) expect(triggerVevent(f.proc, f.fd, f.idev)).toBe(0);
    // Events 0 and 1 wait; 2 and 3 were lost; the marker carries 3.
    expect(readVevents(f.proc, f.q.eventFd, 64).items).toEqual([
      { flags: 0, sequence: 0, virtId: 0x99 },
      { flags: 0, sequence: 1, virtId: 0x99 },
      { flags: 1, sequence: 3 },
    ]);
    // Fill again, lose one, read one event only: [seq 5, marker 6] remain.
    for (let i = 0; i < 3; i++) expect(triggerVevent(f.proc, f.fd, f.idev)).toBe(0);
    expect(readVevents(f.proc, f.q.eventFd, 12).items).toEqual([
      { flags: 0, sequence: 4, virtId: 0x99 },
    ]);
    // The marker is the tail, so a new event takes its place (seq 7).
    expect(triggerVevent(f.proc, f.fd, f.idev)).toBe(0);
    expect(readVevents(f.proc, f.q.eventFd, 64).items).toEqual([
      { flags: 0, sequence: 5, virtId: 0x99 },
      { flags: 0, sequence: 7, virtId: 0x99 },
    ]);
    // A marker alone reads in 8 bytes.
    for (let i = 0; i < 3; i++) expect(triggerVevent(f.proc, f.fd, f.idev)).toBe(0);
    expect(readVevents(f.proc, f.q.eventFd, 24).rc).toBe(24);
    const marker = readVevents(f.proc, f.q.eventFd, 8);
    expect(marker.rc).toBe(8);
    expect(marker.items).toEqual([{ flags: 1, sequence: 10 }]);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('the vEVENTQ fd keeps the queue (and the context) after /dev/iommu is closed; its events can still be read', () => {
    const f = veventFixture();
    expect(triggerVevent(f.proc, f.fd, f.idev)).toBe(0);
    expect(f.proc.close(f.fd)).toBe(0);
    expect(readVevents(f.proc, f.q.eventFd, 64).items).toEqual([
      { flags: 0, sequence: 0, virtId: 0x99 },
    ]);
    expect(f.proc.close(f.q.eventFd)).toBe(0);
    expect(f.host.pinnedPages()).toBe(0);
    expect(f.host.liveViommus.size).toBe(0);
    expect(f.host.internalErrors).toBe(0);
  });
});

// ---- 2.18: invalidation through the vIOMMU -----------------------------------------------------

describe('2.18 IOMMU_HWPT_INVALIDATE on a vIOMMU (194–196)', () => {
  /** The fixture with vDEVICE 0x99 (vdevice_cache); every cache word starts at 0xbaddad. */
  function cacheFixture() {
    const f = viommuFixture();
    expect(vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, 0x99n).rc).toBe(0);
    expect(cacheWords(f.proc, f.fd, f.idev)).toEqual(['default', 'default', 'default', 'default']);
    return f;
  }
  const ALL_DEFAULT = ['default', 'default', 'default', 'default'];

  it('194: entry_num 0 → 0 (a type probe), entry_num stays 0; wrong type → EINVAL; entry_len 0 or a NULL array with entries → EINVAL; entry_num is written back 0 each time', () => {
    const f = cacheFixture();
    expect(viommuInvalidate(f.proc, f.fd, f.viommu, [])).toEqual({ rc: 0, entryNum: 0 });
    const zeroed = [{ vdev_id: 0 }];
    const cases: [Parameters<typeof viommuInvalidate>[4], number][] = [
      [{ data_type: IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID }, EINVAL],
      [{ data_type: IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST_INVALID, entry_num: 0 }, EINVAL],
      [{ data_uptr: 0n }, EINVAL],
      [{ entry_len: 0 }, EINVAL],
      [{ __reserved: 1 }, EOPNOTSUPP],
    ];
    for (const [more, errno] of cases) {
      const got = viommuInvalidate(f.proc, f.fd, f.viommu, [{ vdev_id: 0x99 }], more);
      expectErrno(f.proc, got.rc, errno, 'IOMMU_HWPT_INVALIDATE');
      expect(got.entryNum).toBe(0);
    }
    // The selftest's size checks on a zeroed entry: sizeof+1 and 1 → EINVAL.
    for (const entryLen of [VIOMMU_INV_LEN + 1, 1]) {
      const got = viommuInvalidate(f.proc, f.fd, f.viommu, zeroed, { entry_len: entryLen });
      expectErrno(f.proc, got.rc, EINVAL, 'IOMMU_HWPT_INVALIDATE');
      expect(got.entryNum).toBe(0);
    }
    expect(cacheWords(f.proc, f.fd, f.idev)).toEqual(ALL_DEFAULT);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('194: the array is copied whole as iommu_copy_struct_from_full_user_array: longer entries with zero tails work, a non-zero tail anywhere → E2BIG, an unreadable entry anywhere → EFAULT, before any entry takes effect (entry_num 0)', () => {
    const f = cacheFixture();
    const stride = VIOMMU_INV_LEN + 4;
    const va = f.proc.mmap(2n * PAGE);
    const write = (at: bigint, e: { flags?: number; vdev_id: number; cache_id: number }) =>
      f.proc.writeMemory(at, structs.iommu_viommu_invalidate_selftest.encode({ flags: 0, ...e }));
    const inv = (uptr: bigint, entryLen: number, entryNum: number) =>
      viommuInvalidate(f.proc, f.fd, f.viommu, [], {
        data_uptr: uptr,
        entry_len: entryLen,
        entry_num: entryNum,
      });
    // Two 16-byte entries, zero tails: cache 0 and 1.
    write(va, { vdev_id: 0x99, cache_id: 0 });
    write(va + BigInt(stride), { vdev_id: 0x99, cache_id: 1 });
    expect(inv(va, stride, 2)).toEqual({ rc: 0, entryNum: 2 });
    expect(cacheWords(f.proc, f.fd, f.idev)).toEqual([0, 0, 'default', 'default']);
    // A non-zero tail in the 2nd entry: nothing happens to cache 2 of the 1st.
    write(va, { vdev_id: 0x99, cache_id: 2 });
    write(va + BigInt(stride), { vdev_id: 0x99, cache_id: 3 });
    f.proc.writeMemory(va + BigInt(2 * stride - 1), new Uint8Array([1]));
    const e2big = inv(va, stride, 2);
    expectErrno(f.proc, e2big.rc, E2BIG, 'IOMMU_HWPT_INVALIDATE');
    expect(e2big.entryNum).toBe(0);
    expect(cacheWords(f.proc, f.fd, f.idev)).toEqual([0, 0, 'default', 'default']);
    // The 2nd entry runs off the end of the mapping: EFAULT, the 1st not applied.
    expect(f.proc.munmap(va + PAGE, PAGE)).toBe(0);
    const last = va + PAGE - BigInt(VIOMMU_INV_LEN);
    write(last, { vdev_id: 0x99, cache_id: 2 });
    const efault = inv(last, VIOMMU_INV_LEN, 2);
    expectErrno(f.proc, efault.rc, EFAULT, 'IOMMU_HWPT_INVALIDATE');
    expect(efault.entryNum).toBe(0);
    expect(cacheWords(f.proc, f.fd, f.idev)).toEqual([0, 0, 'default', 'default']);
    // The kernel copy is kcalloc'd first: more than 4 MiB of entries → ENOMEM; just
    // under it the copy runs off the mapping → EFAULT.
    const enomem = inv(va, VIOMMU_INV_LEN, Math.floor((4 << 20) / VIOMMU_INV_LEN) + 1);
    expectErrno(f.proc, enomem.rc, ENOMEM, 'IOMMU_HWPT_INVALIDATE');
    expect(enomem.entryNum).toBe(0);
    const big = inv(va, VIOMMU_INV_LEN, Math.floor((4 << 20) / VIOMMU_INV_LEN));
    expectErrno(f.proc, big.rc, EFAULT, 'IOMMU_HWPT_INVALIDATE');
    expect(big.entryNum).toBe(0);
    expect(cacheWords(f.proc, f.fd, f.idev)).toEqual([0, 0, 'default', 'default']);
    // Shorter entries are zero-extended: 8 bytes {flags, vdev_id} name cache_id 0.
    const dev2 = secondDevice(f.proc, f.fd, f.ioas);
    expect(vdeviceAlloc(f.proc, f.fd, f.viommu, dev2.idev, 0x77n).rc).toBe(0);
    write(va, { vdev_id: 0x77, cache_id: 3 });
    expect(inv(va, 8, 1)).toEqual({ rc: 0, entryNum: 1 });
    expect(cacheWords(f.proc, f.fd, dev2.idev)).toEqual([0, 'default', 'default', 'default']);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('195: bad flags → EOPNOTSUPP; cache_id > 3 → EINVAL; an unknown vdev_id (0x9) → EINVAL; each with entry_num 0 and no cache touched', () => {
    const f = cacheFixture();
    const cases: [{ flags?: number; vdev_id: number; cache_id?: number }, number, RegExp][] = [
      [{ flags: U32_MAX, vdev_id: 0x99 }, EOPNOTSUPP, /flags/],
      [{ vdev_id: 0x99, cache_id: MOCK_DEV_CACHE_ID_MAX + 1 }, EINVAL, /cache_id/],
      [{ vdev_id: 0x9 }, EINVAL, /vdev_id/],
    ];
    for (const [entry, errno, why] of cases) {
      const got = viommuInvalidate(f.proc, f.fd, f.viommu, [entry]);
      expectErrno(f.proc, got.rc, errno, 'IOMMU_HWPT_INVALIDATE');
      expect(f.proc.lastError()?.reason).toMatch(why);
      expect(got.entryNum).toBe(0);
    }
    expect(cacheWords(f.proc, f.fd, f.idev)).toEqual(ALL_DEFAULT);
    // The vIOMMU answers for its own vDEVICEs only: 0x99 in another vIOMMU is unknown.
    const other = viommuAlloc(f.proc, f.fd, f.idev, f.parent);
    const got = viommuInvalidate(f.proc, f.fd, other.id, [{ vdev_id: 0x99 }]);
    expectErrno(f.proc, got.rc, EINVAL);
    expect(cacheWords(f.proc, f.fd, f.idev)).toEqual(ALL_DEFAULT);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('196: partial success → the error, entry_num 1, only cache[0] cleared; then 1, then 2 and 3 → all 0; FLAG_ALL clears all 4 of only the named device', () => {
    const f = cacheFixture();
    const dev2 = secondDevice(f.proc, f.fd, f.ioas);
    expect(vdeviceAlloc(f.proc, f.fd, f.viommu, dev2.idev, 0x77n).rc).toBe(0);
    const a = viommuInvalidate(f.proc, f.fd, f.viommu, [
      { vdev_id: 0x99, cache_id: 0 },
      { flags: U32_MAX, vdev_id: 0x99, cache_id: 1 },
    ]);
    expect(a).toEqual({ rc: -EOPNOTSUPP, entryNum: 1 });
    expect(cacheWords(f.proc, f.fd, f.idev)).toEqual([0, 'default', 'default', 'default']);
    const b = viommuInvalidate(f.proc, f.fd, f.viommu, [
      { vdev_id: 0x99, cache_id: 0 },
      { vdev_id: 0x99, cache_id: MOCK_DEV_CACHE_ID_MAX + 1 },
    ]);
    expect(b).toEqual({ rc: -EINVAL, entryNum: 1 });
    expect(cacheWords(f.proc, f.fd, f.idev)).toEqual([0, 'default', 'default', 'default']);
    expect(viommuInvalidate(f.proc, f.fd, f.viommu, [{ vdev_id: 0x99, cache_id: 1 }])).toEqual({
      rc: 0,
      entryNum: 1,
    });
    expect(cacheWords(f.proc, f.fd, f.idev)).toEqual([0, 0, 'default', 'default']);
    expect(
      viommuInvalidate(f.proc, f.fd, f.viommu, [
        { vdev_id: 0x99, cache_id: 2 },
        { vdev_id: 0x99, cache_id: 3 },
      ]),
    ).toEqual({ rc: 0, entryNum: 2 });
    expect(cacheWords(f.proc, f.fd, f.idev)).toEqual([0, 0, 0, 0]);
    expect(cacheWords(f.proc, f.fd, dev2.idev)).toEqual(ALL_DEFAULT);
    // FLAG_ALL ignores cache_id (even an out-of-range one is checked first: use 0).
    expect(
      viommuInvalidate(f.proc, f.fd, f.viommu, [
        { flags: IOMMU_TEST_INVALIDATE_FLAG_ALL, vdev_id: 0x77 },
      ]),
    ).toEqual({ rc: 0, entryNum: 1 });
    expect(cacheWords(f.proc, f.fd, dev2.idev)).toEqual([0, 0, 0, 0]);
    closeAndCheck(f.host, f.proc, f.fd);
  });
});

// ---- 2.18: HW queues ------------------------------------------------------------------------------

describe('2.18 IOMMU_HW_QUEUE_ALLOC (197–200)', () => {
  it("197: type DEFAULT → EOPNOTSUPP; length 0 → EINVAL; iova ~0 → EOVERFLOW; an unmapped iova → ENOENT; flags, another driver's type or a non-vIOMMU id → EOPNOTSUPP / ENOENT; nothing is left", () => {
    const f = viommuFixture();
    const before = objectStates(f.proc, f.fd);
    const q = (fields: Parameters<typeof hwQueueAllocRaw>[2]) =>
      hwQueueAllocRaw(f.proc, f.fd, {
        viommu_id: f.viommu,
        type: IOMMU_HW_QUEUE_TYPE_SELFTEST,
        index: 0,
        nesting_parent_iova: APERTURE,
        length: PAGE,
        ...fields,
      }).rc;
    const cases: [Parameters<typeof hwQueueAllocRaw>[2], number][] = [
      [{ type: IOMMU_HW_QUEUE_TYPE_DEFAULT }, EOPNOTSUPP],
      [{ flags: 1 }, EOPNOTSUPP],
      [{ length: 0n }, EINVAL],
      [{ nesting_parent_iova: U64_MAX }, EOVERFLOW],
      [{ nesting_parent_iova: U64_MAX - PAGE + 2n }, EOVERFLOW],
      [{}, ENOENT],
      [{ type: IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV }, EOPNOTSUPP],
      [{ viommu_id: f.parent }, ENOENT],
      [{ viommu_id: 0 }, ENOENT],
      // The checks before the vIOMMU lookup win over it.
      [{ viommu_id: 0, length: 0n }, EINVAL],
    ];
    for (const [fields, errno] of cases) {
      expectErrno(f.proc, q(fields), errno, 'IOMMU_HW_QUEUE_ALLOC');
    }
    expect(objectStates(f.proc, f.fd)).toEqual(before);
    expect(usersOf(f.proc, f.fd, f.viommu)).toBe(1);
    expect(f.host.pinnedPages()).toBe(0);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('198: index 1 before 0 → EIO; index 2 (= max) → EINVAL; 0 → 0; 0 again → EEXIST; a refused queue pins nothing (the page stays unmappable only for the real queue)', () => {
    const f = viommuFixture();
    const buf = f.proc.mmap(2n * PAGE);
    const a = map(f.proc, f.fd, f.ioas, buf, PAGE);
    const b = map(f.proc, f.fd, f.ioas, buf + PAGE, PAGE);
    expect(a.rc).toBe(0);
    expect(b.rc).toBe(0);
    const before = objectStates(f.proc, f.fd);
    const pinned = f.host.pinnedPages();
    const one = hwQueueAlloc(f.proc, f.fd, f.viommu, 1, a.iova, PAGE);
    expectErrno(f.proc, one.rc, EIO, 'IOMMU_HW_QUEUE_ALLOC');
    expect(f.proc.lastError()?.reason).toMatch(/index 0/);
    expectErrno(
      f.proc,
      hwQueueAlloc(f.proc, f.fd, f.viommu, IOMMU_TEST_HW_QUEUE_MAX, a.iova, PAGE).rc,
      EINVAL,
      'IOMMU_HW_QUEUE_ALLOC',
    );
    expectErrno(f.proc, hwQueueAlloc(f.proc, f.fd, f.viommu, U32_MAX, a.iova, PAGE).rc, EINVAL);
    expect(objectStates(f.proc, f.fd)).toEqual(before);
    expect(f.host.pinnedPages()).toBe(pinned);
    const q0 = hwQueueAlloc(f.proc, f.fd, f.viommu, 0, a.iova, PAGE);
    expect(q0).toEqual({ rc: 0, id: 8 });
    expect(usersOf(f.proc, f.fd, f.viommu)).toBe(2);
    const dup = hwQueueAlloc(f.proc, f.fd, f.viommu, 0, b.iova, PAGE);
    expectErrno(f.proc, dup.rc, EEXIST, 'IOMMU_HW_QUEUE_ALLOC');
    // The refused duplicate did not lock its page: b can still be unmapped.
    expect(unmap(f.proc, f.fd, f.ioas, b.iova, PAGE).rc).toBe(0);
    expect(viommuReport(f.proc, f.fd, f.viommu)?.hwQueues).toEqual([
      { id: q0.id, index: 0, iova: a.iova, length: PAGE },
    ]);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it("199, 200: UNMAP of the queue's page → EBUSY, of the neighbouring unpinned page → 0; queue 1 at iova + PAGE/2 with length PAGE/2 → 0; DESTROY of queue 0 → EBUSY until queue 1 is gone; then the page unmaps (hw_queue)", () => {
    const f = viommuFixture();
    const buf = f.proc.mmap(2n * PAGE);
    const a = map(f.proc, f.fd, f.ioas, buf, PAGE);
    const b = map(f.proc, f.fd, f.ioas, buf + PAGE, PAGE);
    const q0 = hwQueueAlloc(f.proc, f.fd, f.viommu, 0, a.iova, PAGE);
    expect(q0.rc).toBe(0);
    const areas = () => f.proc.inspect(f.fd)?.ioas[0]?.areas.map((x) => x.iova);
    const got = unmap(f.proc, f.fd, f.ioas, a.iova, PAGE);
    expectErrno(f.proc, got.rc, EBUSY, 'IOMMU_IOAS_UNMAP');
    expect(areas()).toEqual([a.iova, b.iova]);
    expect(unmap(f.proc, f.fd, f.ioas, b.iova, PAGE)).toEqual({ rc: 0, length: PAGE });
    expect(areas()).toEqual([a.iova]);
    const q1 = hwQueueAlloc(f.proc, f.fd, f.viommu, 1, a.iova + PAGE / 2n, PAGE / 2n);
    expect(q1.rc).toBe(0);
    expect(usersOf(f.proc, f.fd, q0.id)).toBe(1);
    expect(usersOf(f.proc, f.fd, q1.id)).toBe(0);
    expectBusy(f.proc, f.fd, q0.id, f.viommu);
    expect(destroy(f.proc, f.fd, q1.id)).toBe(0);
    // The page is still the first queue's.
    expectErrno(f.proc, unmap(f.proc, f.fd, f.ioas, a.iova, PAGE).rc, EBUSY);
    expect(destroy(f.proc, f.fd, q0.id)).toBe(0);
    expect(unmap(f.proc, f.fd, f.ioas, a.iova, PAGE)).toEqual({ rc: 0, length: PAGE });
    expect(usersOf(f.proc, f.fd, f.viommu)).toBe(1);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('199: a queue spanning two pages of one mapping locks the whole area; close with queues alive unpins everything', () => {
    const f = viommuFixture();
    const buf = f.proc.mmap(4n * PAGE);
    const a = map(f.proc, f.fd, f.ioas, buf, 4n * PAGE);
    expect(a.rc).toBe(0);
    const q0 = hwQueueAlloc(f.proc, f.fd, f.viommu, 0, a.iova + PAGE + 16n, PAGE);
    expect(q0.rc).toBe(0);
    expectErrno(f.proc, unmap(f.proc, f.fd, f.ioas, a.iova, 4n * PAGE).rc, EBUSY);
    expect(hwQueueAlloc(f.proc, f.fd, f.viommu, 1, a.iova, 2n * PAGE).rc).toBe(0);
    closeAndCheck(f.host, f.proc, f.fd);
  });
});

// ---- 2.18: tombstones -------------------------------------------------------------------------

describe('2.18 vDEVICE tombstones (201)', () => {
  it('201: destroying the stdev while the device has a vDEVICE → the vDEVICE goes, DESTROY of its id → ENOENT, the id is skipped by later objects until close; the vIOMMU is free of it (vdevice_tombstone)', () => {
    const f = viommuFixture();
    const vdev = vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, 0x99n);
    expect(vdev).toEqual({ rc: 0, id: 8 });
    expect(usersOf(f.proc, f.fd, f.viommu)).toBe(2);
    expect(destroy(f.proc, f.fd, f.stdev)).toBe(0);
    expectErrno(f.proc, destroy(f.proc, f.fd, vdev.id), ENOENT, 'IOMMU_DESTROY');
    // stdev 2, idev 3 and the auto HWPT 4 are gone; 8 stays reserved.
    expect(objectStates(f.proc, f.fd)).toEqual([
      '1:IOAS:live',
      '5:HWPT_PAGING:live',
      '6:VIOMMU:live',
      '7:HWPT_NESTED:live',
      '8:VDEVICE:tombstone',
    ]);
    expect(usersOf(f.proc, f.fd, f.viommu)).toBe(1);
    expect(viommuReport(f.proc, f.fd, f.viommu)?.vdevices).toEqual([]);
    // The next objects take 2, 3, 4 and then 9: never 8.
    const ids = [0, 1, 2, 3].map(() => ioasAlloc(f.proc, f.fd));
    expect(ids).toEqual([2, 3, 4, 9]);
    // virt_id 0x99 is free in the vIOMMU for another device.
    const dev2 = secondDevice(f.proc, f.fd, f.ioas);
    const again = vdeviceAlloc(f.proc, f.fd, f.viommu, dev2.idev, 0x99n);
    expect(again.rc).toBe(0);
    expect(again.id).not.toBe(8);
    // Lookups of the tombstone as any type fail too.
    expectErrno(f.proc, viommuInvalidate(f.proc, f.fd, 8, []).rc, ENOENT);
    expect(destroy(f.proc, f.fd, again.id)).toBe(0);
    expect(destroy(f.proc, f.fd, f.nested)).toBe(0);
    expect(destroy(f.proc, f.fd, f.viommu)).toBe(0);
    expect(destroy(f.proc, f.fd, f.parent)).toBe(0);
    expect(objectStates(f.proc, f.fd)).toContain('8:VDEVICE:tombstone');
    // After close everything is gone, the tombstone with it.
    expect(f.proc.close(f.fd)).toBe(0);
    expect(f.proc.inspect(f.fd)).toBeNull();
    expect(f.host.liveViommus.size).toBe(0);
    expect(f.host.pinnedPages()).toBe(0);
    expect(f.host.internalErrors).toBe(0);
    // A new context starts from id 1 again.
    const fd2 = f.proc.open('/dev/iommu');
    expect(ioasAlloc(f.proc, fd2)).toBe(1);
    closeAndCheck(f.host, f.proc, fd2);
  });

  it('201: unbinding a device attached to its vIOMMU-nested HWPT detaches it first; the nested HWPT and then the vIOMMU become destroyable; TRIGGER_VEVENT of the gone idev → ENOENT', () => {
    const f = veventFixture();
    expectBusy(f.proc, f.fd, f.nested);
    expect(destroy(f.proc, f.fd, f.stdev)).toBe(0);
    expect(objectStates(f.proc, f.fd)).toContain(`${f.vdev}:VDEVICE:tombstone`);
    expectErrno(f.proc, triggerVevent(f.proc, f.fd, f.idev), ENOENT);
    expect(readVevents(f.proc, f.q.eventFd, 64).rc).toBe(0);
    expect(destroy(f.proc, f.fd, f.nested)).toBe(0);
    expectBusy(f.proc, f.fd, f.viommu);
    expect(f.proc.close(f.q.eventFd)).toBe(0);
    expect(destroy(f.proc, f.fd, f.q.id)).toBe(0);
    expect(destroy(f.proc, f.fd, f.viommu)).toBe(0);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('201: a VFIO cdev device closed while it has a vDEVICE leaves the same tombstone', () => {
    const GPU = '0000:00:02.0';
    const host = createHost({
      selftest: true,
      devices: [{ name: GPU, iommu: 'mock0' }],
    });
    const proc = host.createProcess();
    const fd = proc.open('/dev/iommu');
    const dev = proc.open('/dev/vfio/devices/vfio0');
    const bound = vfioBind(proc, dev, fd);
    expect(bound.rc).toBe(0);
    const ioas = ioasAlloc(proc, fd);
    const parent = nestParentAlloc(proc, fd, bound.devid, ioas);
    expect(parent.rc).toBe(0);
    const v = viommuAlloc(proc, fd, bound.devid, parent.id);
    expect(v.rc).toBe(0);
    const vdev = vdeviceAlloc(proc, fd, v.id, bound.devid, 0x10n);
    expect(vdev.rc).toBe(0);
    expect(proc.close(dev)).toBe(0);
    expectErrno(proc, destroy(proc, fd, vdev.id), ENOENT);
    expect(objectStates(proc, fd)).toContain(`${vdev.id}:VDEVICE:tombstone`);
    expect(objectStates(proc, fd)).not.toContain(`${bound.devid}:DEVICE:live`);
    expect(destroy(proc, fd, v.id)).toBe(0);
    closeAndCheck(host, proc, fd);
  });
});

// ---- 5: the rules across objects ------------------------------------------------------------------

describe('5 destroy order', () => {
  it('5: the whole order — vDEVICE; nested HWPT, vEVENTQ, HW queues (1 before 0); munmap; vIOMMU; parent; IOAS — each DESTROY out of order → EBUSY and changes nothing, each in order → 0', () => {
    const { host, proc, fd } = setup();
    const ioas = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, ioas);
    const parent = nestParentAlloc(proc, fd, md.idevId, ioas);
    const v = viommuAllocWithData(proc, fd, md.idevId, parent.id, 0x5a5a);
    expect(v.rc).toBe(0);
    const region = proc.mmap(v.data.out_mmap_length, { fd, offset: v.data.out_mmap_offset });
    expect(region).toBeGreaterThan(0n);
    const nested = viommuNestedAlloc(proc, fd, md.idevId, v.id);
    const vdev = vdeviceAlloc(proc, fd, v.id, md.idevId, 0x99n);
    expect(mockReplace(proc, fd, md.stdevId, nested.id).rc).toBe(0);
    const q = veventqAlloc(proc, fd, v.id);
    const buf = proc.mmap(PAGE);
    const area = map(proc, fd, ioas, buf, PAGE);
    const q0 = hwQueueAlloc(proc, fd, v.id, 0, area.iova, PAGE);
    const q1 = hwQueueAlloc(proc, fd, v.id, 1, area.iova, PAGE / 2n);
    for (const r of [parent, nested, vdev, q, q0, q1, area]) expect(r.rc).toBe(0);
    expect(usersOf(proc, fd, v.id)).toBe(6); // nested, vDEVICE, vEVENTQ, 2 queues, the mapping
    // Everything that anything holds is busy; the device is held by its binding.
    expectBusy(proc, fd, ioas, parent.id, v.id, nested.id, q.id, q0.id, md.idevId);
    // The device leaves the nested HWPT (the selftests' order), then 1: the vDEVICE.
    expect(mockReplace(proc, fd, md.stdevId, ioas).rc).toBe(0);
    expectBusy(proc, fd, ioas, parent.id, v.id, q.id, q0.id);
    expect(destroy(proc, fd, vdev.id)).toBe(0);
    // 2: nested HWPT, vEVENTQ (after its fd), HW queues highest index first.
    expectBusy(proc, fd, ioas, parent.id, v.id, q0.id);
    expect(destroy(proc, fd, nested.id)).toBe(0);
    expectBusy(proc, fd, v.id, q.id);
    expect(proc.close(q.eventFd)).toBe(0);
    expect(destroy(proc, fd, q.id)).toBe(0);
    expectBusy(proc, fd, v.id, q0.id);
    expect(destroy(proc, fd, q1.id)).toBe(0);
    expectBusy(proc, fd, v.id);
    expect(destroy(proc, fd, q0.id)).toBe(0);
    // 3: the mapping still holds the vIOMMU.
    expect(usersOf(proc, fd, v.id)).toBe(1);
    expectBusy(proc, fd, v.id, parent.id, ioas);
    expect(proc.munmap(region, v.data.out_mmap_length)).toBe(0);
    // 4, 5, 6.
    expectBusy(proc, fd, parent.id, ioas);
    expect(destroy(proc, fd, v.id)).toBe(0);
    expectBusy(proc, fd, ioas);
    expect(destroy(proc, fd, parent.id)).toBe(0);
    // The device's automatic HWPT still holds the IOAS until the device goes.
    expectBusy(proc, fd, ioas);
    expect(destroy(proc, fd, md.stdevId)).toBe(0);
    expect(destroy(proc, fd, ioas)).toBe(0);
    expect(objectStates(proc, fd)).toEqual([]);
    closeAndCheck(host, proc, fd);
  });
});

describe('5 a vIOMMU is a slice of one physical IOMMU', () => {
  const GPU = '0000:00:02.0';

  /** A selftest host plus `iommu` with one PCI device bound through VFIO, and a mock device. */
  function mixedHost(iommus: HostConfig['iommus'], iommu: string) {
    const host = createHost({
      selftest: true,
      ...(iommus === undefined ? {} : { iommus }),
      devices: [{ name: GPU, iommu }],
    });
    const proc = host.createProcess();
    const fd = proc.open('/dev/iommu');
    const dev = proc.open('/dev/vfio/devices/vfio0');
    const bound = vfioBind(proc, dev, fd);
    expect(bound.rc).toBe(0);
    const ioas = ioasAlloc(proc, fd);
    const ioas2 = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, ioas2);
    expect(md.rc).toBe(0);
    const mockParent = nestParentAlloc(proc, fd, md.idevId, ioas2);
    expect(mockParent.rc).toBe(0);
    const mockViommu = viommuAlloc(proc, fd, md.idevId, mockParent.id);
    expect(mockViommu.rc).toBe(0);
    return { host, proc, fd, dev, gpu: bound.devid, ioas, md, mockParent, mockViommu };
  }

  it("5, 186: SMMUv3 + VFIO device beside the selftest mock: VDEVICE_ALLOC across IOMMUs → EINVAL both ways; a nested HWPT on the other IOMMU's vIOMMU → EINVAL; an SMMUv3 vIOMMU over the mock's parent → EINVAL; wrong types → EOPNOTSUPP", () => {
    const m = mixedHost([{ name: 'smmu0', model: 'smmuv3' }], 'smmu0');
    const { proc, fd } = m;
    const smmuParent = nestParentAlloc(proc, fd, m.gpu, m.ioas);
    expect(smmuParent.rc).toBe(0);
    const smmuViommu = viommuAlloc(proc, fd, m.gpu, smmuParent.id, IOMMU_VIOMMU_TYPE_ARM_SMMUV3);
    expect(smmuViommu.rc).toBe(0);
    const before = objectStates(proc, fd);
    expectErrno(
      proc,
      vdeviceAlloc(proc, fd, m.mockViommu.id, m.gpu, 0x1n).rc,
      EINVAL,
      'IOMMU_VDEVICE_ALLOC',
    );
    expect(proc.lastError()?.reason).toMatch(/smmu0/);
    expectErrno(
      proc,
      vdeviceAlloc(proc, fd, smmuViommu.id, m.md.idevId, 0x1n).rc,
      EINVAL,
      'IOMMU_VDEVICE_ALLOC',
    );
    expectErrno(
      proc,
      viommuNestedAlloc(proc, fd, m.gpu, m.mockViommu.id).rc,
      EINVAL,
      'IOMMU_HWPT_ALLOC',
    );
    expectErrno(
      proc,
      viommuAlloc(proc, fd, m.gpu, m.mockParent.id, IOMMU_VIOMMU_TYPE_ARM_SMMUV3).rc,
      EINVAL,
      'IOMMU_VIOMMU_ALLOC',
    );
    for (const [dev, type] of [
      [m.gpu, IOMMU_VIOMMU_TYPE_SELFTEST],
      [m.gpu, IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV],
      [m.md.idevId, IOMMU_VIOMMU_TYPE_ARM_SMMUV3],
    ] as const) {
      expectErrno(
        proc,
        viommuAlloc(proc, fd, dev, smmuParent.id, type).rc,
        EOPNOTSUPP,
        'IOMMU_VIOMMU_ALLOC',
      );
    }
    expect(objectStates(proc, fd)).toEqual(before);
    // Each device is welcome in its own IOMMU's vIOMMU.
    expect(vdeviceAlloc(proc, fd, smmuViommu.id, m.gpu, 0x1n).rc).toBe(0);
    expect(vdeviceAlloc(proc, fd, m.mockViommu.id, m.md.idevId, 0x1n).rc).toBe(0);
    expect(proc.close(m.dev)).toBe(0);
    closeAndCheck(m.host, proc, fd);
  });

  it("5, 186: two mock IOMMUs (a VFIO device behind mock0 and the selftest's): each vIOMMU takes only devices of its own IOMMU → EINVAL otherwise", () => {
    const m = mixedHost(undefined, 'mock0');
    const { proc, fd } = m;
    const parent0 = nestParentAlloc(proc, fd, m.gpu, m.ioas);
    expect(parent0.rc).toBe(0);
    const v0 = viommuAlloc(proc, fd, m.gpu, parent0.id);
    expect(v0.rc).toBe(0);
    expect(viommuReport(proc, fd, v0.id)?.iommu).toBe('mock0');
    expect(viommuReport(proc, fd, m.mockViommu.id)?.iommu).toBe('iommufd-selftest');
    const before = objectStates(proc, fd);
    expectErrno(proc, vdeviceAlloc(proc, fd, v0.id, m.md.idevId, 0x2n).rc, EINVAL);
    expectErrno(proc, vdeviceAlloc(proc, fd, m.mockViommu.id, m.gpu, 0x2n).rc, EINVAL);
    expectErrno(proc, viommuNestedAlloc(proc, fd, m.md.idevId, v0.id).rc, EINVAL);
    expect(objectStates(proc, fd)).toEqual(before);
    const vd = vdeviceAlloc(proc, fd, v0.id, m.gpu, 0x2n);
    expect(vd.rc).toBe(0);
    const n0 = viommuNestedAlloc(proc, fd, m.gpu, v0.id);
    expect(n0.rc).toBe(0);
    expect(vfioAttach(proc, m.dev, n0.id).rc).toBe(0);
    expectBusy(proc, fd, n0.id, v0.id, parent0.id);
    expect(proc.close(m.dev)).toBe(0);
    expect(objectStates(proc, fd)).toContain(`${vd.id}:VDEVICE:tombstone`);
    closeAndCheck(m.host, proc, fd);
  });

  it('5, 184: one vDEVICE per device across all vIOMMUs: a second in another vIOMMU → EEXIST (any virt_id) until the first is destroyed', () => {
    const f = viommuFixture();
    const v2 = viommuAlloc(f.proc, f.fd, f.idev, f.parent);
    expect(v2.rc).toBe(0);
    const first = vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, 0x1n);
    expect(first.rc).toBe(0);
    const before = objectStates(f.proc, f.fd);
    for (const virt of [0x1n, 0x2n]) {
      expectErrno(
        f.proc,
        vdeviceAlloc(f.proc, f.fd, v2.id, f.idev, virt).rc,
        EEXIST,
        'IOMMU_VDEVICE_ALLOC',
      );
    }
    expect(objectStates(f.proc, f.fd)).toEqual(before);
    expect(destroy(f.proc, f.fd, first.id)).toBe(0);
    expect(vdeviceAlloc(f.proc, f.fd, v2.id, f.idev, 0x2n).rc).toBe(0);
    expectErrno(f.proc, vdeviceAlloc(f.proc, f.fd, f.viommu, f.idev, 0x1n).rc, EEXIST);
    closeAndCheck(f.host, f.proc, f.fd);
  });

  it('5: VT-d and AMD have no vIOMMU in 6.17 and an SMMUv3 without stage 2 has none: VIOMMU_ALLOC → EOPNOTSUPP for every type', () => {
    for (const model of ['vtd', 'amd', 'smmuv3'] as const) {
      const host = createHost({
        iommus: [
          model === 'smmuv3'
            ? { name: 'iommu0', model, nesting: false }
            : { name: 'iommu0', model },
        ],
        devices: [{ name: GPU, iommu: 'iommu0' }],
      });
      const proc = host.createProcess();
      const fd = proc.open('/dev/iommu');
      const dev = proc.open('/dev/vfio/devices/vfio0');
      const bound = vfioBind(proc, dev, fd);
      expect(bound.rc).toBe(0);
      const ioas = ioasAlloc(proc, fd);
      const auto = vfioAttach(proc, dev, ioas);
      expect(auto.rc).toBe(0);
      // A VT-d nesting parent exists, but no vIOMMU can use it.
      const parent = model === 'vtd' ? nestParentAlloc(proc, fd, bound.devid, ioas) : auto;
      if (model === 'vtd') expect(parent.rc).toBe(0);
      const hwptId = 'id' in parent ? parent.id : parent.ptId;
      const before = objectStates(proc, fd);
      for (const type of [
        IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
        IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
        IOMMU_VIOMMU_TYPE_SELFTEST,
      ]) {
        const got = viommuAlloc(proc, fd, bound.devid, hwptId, type);
        expectErrno(proc, got.rc, EOPNOTSUPP, 'IOMMU_VIOMMU_ALLOC');
        expect(proc.lastError()?.reason).toMatch(/iommu0/);
      }
      expect(objectStates(proc, fd)).toEqual(before);
      expect(proc.close(dev)).toBe(0);
      closeAndCheck(host, proc, fd);
    }
  });
});

// ---- 5: a reference of who holds whom ------------------------------------------------------------

type RefKind =
  | 'IOAS'
  | 'SELFTEST'
  | 'DEVICE'
  | 'HWPT_PAGING'
  | 'HWPT_NESTED'
  | 'VIOMMU'
  | 'VDEVICE'
  | 'VEVENTQ'
  | 'HW_QUEUE';

/** One object of the reference: its kind and the edges it holds. */
interface RefObject {
  readonly id: number;
  readonly kind: RefKind;
  tombstone: boolean;
  /** The vIOMMU a nested HWPT, vDEVICE, vEVENTQ or HW queue belongs to. */
  readonly viommu?: number;
  /** The device (index) of a SELFTEST, DEVICE or VDEVICE object. */
  readonly dev?: number;
  readonly virtId?: bigint;
  readonly eventType?: number;
  readonly index?: number;
  /** A vEVENTQ's fd is open (it holds the queue). */
  fdOpen?: boolean;
}

/**
 * The object graph as section 1.1's table of "who holds a users reference on
 * whom" says, for one context with an IOAS, two mock devices on one auto
 * HWPT, a NEST_PARENT HWPT and what the steps add. Every prediction is the
 * kernel's rule written out: lookups by id and type (ENOENT), the driver's
 * refusals, and DESTROY's 0 / EBUSY / ENOENT from the holders alone.
 */
class RefGraph {
  readonly objects = new Map<number, RefObject>();
  /** Each device's stdev and idev ids, whether it is bound, and the HWPT its RID is on. */
  readonly devices: { stdev: number; idev: number; bound: boolean; on: number }[] = [];

  add(o: Omit<RefObject, 'tombstone'>): RefObject {
    const obj = { ...o, tombstone: false };
    this.objects.set(o.id, obj);
    return obj;
  }

  /** The lowest id not in the table (tombstones keep theirs). */
  nextId(): number {
    let id = 1;
    while (this.objects.has(id)) id++;
    return id;
  }

  /** A live object of `kind` at `id` (iommufd_get_object), or undefined. */
  live(id: number, kind?: RefKind): RefObject | undefined {
    const o = this.objects.get(id);
    if (o === undefined || o.tombstone) return undefined;
    return kind === undefined || o.kind === kind ? o : undefined;
  }

  private liveOf(kind: RefKind): RefObject[] {
    return [...this.objects.values()].filter((o) => !o.tombstone && o.kind === kind);
  }

  /** How many references beyond the table's own `o` has. */
  holders(o: RefObject): number {
    const on = (id: number) => this.devices.filter((d) => d.bound && d.on === id).length;
    switch (o.kind) {
      case 'IOAS':
        return this.liveOf('HWPT_PAGING').length + this.liveOf('HW_QUEUE').length;
      case 'HWPT_PAGING':
        return on(o.id) + this.liveOf('VIOMMU').length * (o.id === PARENT ? 1 : 0);
      case 'VIOMMU':
        return (['HWPT_NESTED', 'VDEVICE', 'VEVENTQ', 'HW_QUEUE'] as const)
          .flatMap((k) => this.liveOf(k))
          .filter((x) => x.viommu === o.id).length;
      case 'HWPT_NESTED':
        return on(o.id);
      case 'VEVENTQ':
        return o.fdOpen === true ? 1 : 0;
      case 'HW_QUEUE':
        return this.liveOf('HW_QUEUE').filter(
          (q) => q.viommu === o.viommu && q.index === (o.index as number) + 1,
        ).length;
      case 'DEVICE':
        return 1; // the binding
      case 'SELFTEST':
      case 'VDEVICE':
        return 0;
    }
  }

  /** IOMMU_DESTROY. */
  destroy(id: number): number {
    const o = this.live(id);
    if (o === undefined) return -ENOENT;
    if (this.holders(o) > 0) return -EBUSY;
    this.objects.delete(id);
    if (o.kind === 'SELFTEST') {
      // Unbind: the vDEVICE becomes a tombstone, the RID detaches, the idev goes.
      const d = this.devices[o.dev as number] as RefGraph['devices'][number];
      for (const v of this.liveOf('VDEVICE')) if (v.dev === o.dev) v.tombstone = true;
      const was = d.on;
      d.bound = false;
      d.on = 0;
      this.objects.delete(d.idev);
      if (was === AUTO && !this.devices.some((x) => x.bound && x.on === AUTO)) {
        this.objects.delete(AUTO);
      }
    }
    return 0;
  }

  /** The device's live vDEVICE, if any. */
  vdeviceOf(dev: number): RefObject | undefined {
    return this.liveOf('VDEVICE').find((v) => v.dev === dev);
  }

  /** IOMMU_VIOMMU_ALLOC on the parent through device `dev`. */
  viommuAlloc(dev: number): number {
    const d = this.devices[dev] as RefGraph['devices'][number];
    if (this.live(d.idev, 'DEVICE') === undefined) return -ENOENT;
    if (this.live(PARENT, 'HWPT_PAGING') === undefined) return -ENOENT;
    return this.add({ id: this.nextId(), kind: 'VIOMMU' }).id;
  }

  /** IOMMU_HWPT_ALLOC with pt_id `pt` (meant to be a vIOMMU). */
  nestedAlloc(dev: number, pt: number): number {
    const d = this.devices[dev] as RefGraph['devices'][number];
    if (this.live(d.idev, 'DEVICE') === undefined) return -ENOENT;
    const target = this.live(pt);
    if (target?.kind !== 'VIOMMU') return -EINVAL;
    return this.add({ id: this.nextId(), kind: 'HWPT_NESTED', viommu: pt }).id;
  }

  /** IOMMU_VDEVICE_ALLOC. */
  vdeviceAlloc(viommu: number, dev: number, virtId: bigint): number {
    if (this.live(viommu, 'VIOMMU') === undefined) return -ENOENT;
    const d = this.devices[dev] as RefGraph['devices'][number];
    if (this.live(d.idev, 'DEVICE') === undefined) return -ENOENT;
    if (this.vdeviceOf(dev) !== undefined) return -EEXIST;
    if (this.liveOf('VDEVICE').some((v) => v.viommu === viommu && v.virtId === virtId)) {
      return -EEXIST;
    }
    return this.add({ id: this.nextId(), kind: 'VDEVICE', viommu, dev, virtId }).id;
  }

  /** IOMMU_VEVENTQ_ALLOC (depth 2). */
  veventqAlloc(viommu: number, eventType: number): number {
    if (this.live(viommu, 'VIOMMU') === undefined) return -ENOENT;
    if (this.liveOf('VEVENTQ').some((q) => q.viommu === viommu && q.eventType === eventType)) {
      return -EEXIST;
    }
    return this.add({ id: this.nextId(), kind: 'VEVENTQ', viommu, eventType, fdOpen: true }).id;
  }

  /** IOMMU_HW_QUEUE_ALLOC of a selftest queue at a mapped page. */
  hwQueueAlloc(viommu: number, index: number): number {
    if (this.live(viommu, 'VIOMMU') === undefined) return -ENOENT;
    const queues = this.liveOf('HW_QUEUE').filter((q) => q.viommu === viommu);
    if (index >= IOMMU_TEST_HW_QUEUE_MAX) return -EINVAL;
    if (queues.some((q) => q.index === index)) return -EEXIST;
    if (index > 0 && !queues.some((q) => q.index === index - 1)) return -EIO;
    return this.add({ id: this.nextId(), kind: 'HW_QUEUE', viommu, index }).id;
  }

  /** IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE of device `dev` to `pt`. */
  replace(dev: number, pt: number): number {
    const d = this.devices[dev] as RefGraph['devices'][number];
    if (this.live(d.stdev, 'SELFTEST') === undefined) return -ENOENT;
    const target = this.live(pt);
    if (target === undefined) return -ENOENT;
    if (target.kind !== 'HWPT_PAGING' && target.kind !== 'HWPT_NESTED') return -EINVAL;
    if (d.on === pt) return pt;
    if (target.kind === 'HWPT_NESTED') {
      const v = this.vdeviceOf(dev);
      if (v === undefined || v.viommu !== target.viommu) return -ENOENT;
    }
    const was = d.on;
    d.on = pt;
    if (was === AUTO && !this.devices.some((x) => x.bound && x.on === AUTO)) {
      this.objects.delete(AUTO);
    }
    return pt;
  }

  /** "id:TYPE:state" of every object, by id (what objectStates reports). */
  states(): string[] {
    return [...this.objects.values()]
      .sort((a, b) => a.id - b.id)
      .map((o) => `${o.id}:${o.kind}:${o.tombstone ? 'tombstone' : 'live'}`);
  }
}

/** The ids the property's fixed setup gives: IOAS, two mock devices on one auto HWPT, the parent. */
const IOAS_ID = 1;
const AUTO = 4;
const PARENT = 7;

type Step =
  | { op: 'viommu'; dev: number }
  | { op: 'nested'; dev: number; pick: number }
  | { op: 'vdevice'; pick: number; dev: number; virt: number }
  | { op: 'veventq'; pick: number; type: number }
  | { op: 'closeq'; pick: number }
  | { op: 'hwqueue'; pick: number; index: number }
  | { op: 'replace'; dev: number; pick: number }
  | { op: 'destroy'; pick: number };

const dev = fc.integer({ min: 0, max: 1 });
const pick = fc.nat({ max: 1000 });
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('viommu' as const), dev }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('nested' as const), dev, pick }), weight: 2 },
  {
    arbitrary: fc.record({
      op: fc.constant('vdevice' as const),
      pick,
      dev,
      virt: fc.integer({ min: 0, max: 2 }),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      op: fc.constant('veventq' as const),
      pick,
      type: fc.integer({ min: 0, max: 1 }),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ op: fc.constant('closeq' as const), pick }), weight: 1 },
  {
    arbitrary: fc.record({
      op: fc.constant('hwqueue' as const),
      pick,
      index: fc.integer({ min: 0, max: 2 }),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ op: fc.constant('replace' as const), dev, pick }), weight: 3 },
  { arbitrary: fc.record({ op: fc.constant('destroy' as const), pick }), weight: 6 },
);

describe('5 property: the holders predict every DESTROY', () => {
  it('random sequences of VIOMMU / VDEVICE / VEVENTQ / HW_QUEUE / nested HWPT alloc, attach, fd close, unbind and DESTROY: every result (0, EBUSY, ENOENT, ids) is what the reference of who holds whom says, and the object table matches it after every step', () => {
    let destroys = 0;
    const seen = { ok: 0, busy: 0, noent: 0 };
    const freed = new Set<string>();
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 10, maxLength: 60 }), (steps) => {
        const { host, proc, fd } = setup();
        const ref = new RefGraph();
        expect(ioasAlloc(proc, fd)).toBe(IOAS_ID);
        ref.add({ id: IOAS_ID, kind: 'IOAS' });
        for (let i = 0; i < 2; i++) {
          const md = mockDomain(proc, fd, IOAS_ID);
          expect(md.rc).toBe(0);
          expect(md.hwptId).toBe(AUTO);
          ref.devices.push({ stdev: md.stdevId, idev: md.idevId, bound: true, on: AUTO });
          ref.add({ id: md.stdevId, kind: 'SELFTEST', dev: i });
          ref.add({ id: md.idevId, kind: 'DEVICE', dev: i });
          if (i === 0) ref.add({ id: AUTO, kind: 'HWPT_PAGING' });
        }
        expect(nestParentAlloc(proc, fd, ref.devices[0]?.idev ?? 0, IOAS_ID).id).toBe(PARENT);
        ref.add({ id: PARENT, kind: 'HWPT_PAGING' });
        const buf = proc.mmap(PAGE);
        const area = map(proc, fd, IOAS_ID, buf, PAGE);
        expect(area.rc).toBe(0);
        expect(objectStates(proc, fd)).toEqual(ref.states());
        // Ids the steps pick from: every id handed out so far, plus two never used.
        const everyId = new Set<number>([0, 999, ...ref.objects.keys()]);
        const viommus: number[] = [];
        const hwpts: number[] = [PARENT];
        const queueFds = new Map<number, number>(); // vEVENTQ id -> its open fd
        const from = (pool: readonly number[], n: number) => pool[n % pool.length] ?? 0;
        const made = (rc: number, id: number, predicted: number, what: string) => {
          expect(rc, what).toBe(predicted < 0 ? predicted : 0);
          if (predicted >= 0) {
            expect(id, what).toBe(predicted);
            everyId.add(id);
          }
        };
        for (const s of steps) {
          const what = JSON.stringify(s);
          switch (s.op) {
            case 'viommu': {
              const predicted = ref.viommuAlloc(s.dev);
              const got = viommuAlloc(proc, fd, ref.devices[s.dev]?.idev ?? 0, PARENT);
              made(got.rc, got.id, predicted, what);
              if (predicted >= 0) viommus.push(got.id);
              break;
            }
            case 'nested': {
              const pt = from(viommus, s.pick);
              const predicted = ref.nestedAlloc(s.dev, pt);
              const got = viommuNestedAlloc(proc, fd, ref.devices[s.dev]?.idev ?? 0, pt);
              made(got.rc, got.id, predicted, what);
              if (predicted >= 0) hwpts.push(got.id);
              break;
            }
            case 'vdevice': {
              const v = from(viommus, s.pick);
              const predicted = ref.vdeviceAlloc(v, s.dev, BigInt(s.virt));
              const got = vdeviceAlloc(proc, fd, v, ref.devices[s.dev]?.idev ?? 0, BigInt(s.virt));
              made(got.rc, got.id, predicted, what);
              break;
            }
            case 'veventq': {
              const v = from(viommus, s.pick);
              const type = s.type === 0 ? IOMMU_VEVENTQ_TYPE_SELFTEST : 0x1234;
              const predicted = ref.veventqAlloc(v, type);
              const got = veventqAlloc(proc, fd, v, 2, type);
              made(got.rc, got.id, predicted, what);
              if (predicted >= 0) queueFds.set(got.id, got.eventFd);
              break;
            }
            case 'closeq': {
              const open = [...queueFds.keys()];
              if (open.length === 0) break;
              const q = from(open, s.pick);
              expect(proc.close(queueFds.get(q) ?? -1), what).toBe(0);
              queueFds.delete(q);
              const o = ref.objects.get(q);
              if (o !== undefined) o.fdOpen = false;
              break;
            }
            case 'hwqueue': {
              const v = from(viommus, s.pick);
              const predicted = ref.hwQueueAlloc(v, s.index);
              const got = hwQueueAlloc(proc, fd, v, s.index, area.iova, PAGE);
              made(got.rc, got.id, predicted, what);
              break;
            }
            case 'replace': {
              const pt = from(hwpts, s.pick);
              const predicted = ref.replace(s.dev, pt);
              const got = mockReplace(proc, fd, ref.devices[s.dev]?.stdev ?? 0, pt);
              expect(got.rc, what).toBe(predicted < 0 ? predicted : 0);
              break;
            }
            case 'destroy': {
              const id = from(
                [...everyId].sort((a, b) => a - b),
                s.pick,
              );
              const kind = ref.live(id)?.kind;
              const predicted = ref.destroy(id);
              const rc = destroy(proc, fd, id);
              if (rc === 0) freed.add(kind ?? '?');
              expect(rc, `${what} -> id ${id}`).toBe(predicted);
              if (rc !== 0) expect(proc.lastError()?.reason.length ?? 0).toBeGreaterThan(0);
              destroys++;
              if (predicted === 0) seen.ok++;
              else if (predicted === -EBUSY) seen.busy++;
              else seen.noent++;
              break;
            }
          }
          expect(objectStates(proc, fd), what).toEqual(ref.states());
        }
        for (const qfd of queueFds.values()) expect(proc.close(qfd)).toBe(0);
        closeAndCheck(host, proc, fd);
        expect(host.liveViommus.size).toBe(0);
      }),
      { numRuns: 300, seed: 0x5eed },
    );
    // The runs reached every answer many times.
    expect(destroys).toBeGreaterThan(1000);
    expect(Math.min(seen.ok, seen.busy, seen.noent)).toBeGreaterThan(100);
    expect([...freed].sort()).toEqual([
      'HWPT_NESTED',
      'HWPT_PAGING',
      'HW_QUEUE',
      'IOAS',
      'SELFTEST',
      'VDEVICE',
      'VEVENTQ',
      'VIOMMU',
    ]);
  });
});
