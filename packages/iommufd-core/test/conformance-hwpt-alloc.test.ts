/**
 * IOMMU_HWPT_ALLOC and IOMMU_HWPT_INVALIDATE (kernel-semantics.md 2.13,
 * 123–138, and 2.14, 139–147): the selftest's iommufd_ioas/alloc_hwpt_nested
 * and iommufd_mock_domain/alloc_hwpt on mock devices, then the same ioctls
 * on real IOMMU models: a VT-d nest parent with a guest stage-1 table built
 * in process memory (DMA through it, a stale IOTLB until the guest's
 * invalidation), SMMUv3 (nested only through a vIOMMU) and AMD (no nesting).
 */
import {
  EADDRINUSE,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOENT,
  EOPNOTSUPP,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_ARM_SMMUV3,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_DATA_VTD_S1,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID,
  IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
  IOMMU_TEST_INVALIDATE_FLAG_ALL,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_TEST_OP_MD_CHECK_IOTLB,
  IOMMU_VTD_INV_FLAGS_LEAF,
  MOCK_APERTURE_START,
  MOCK_FLAGS_DEVICE_NO_DIRTY,
  MOCK_FLAGS_DEVICE_PASID,
  MOCK_NESTED_DOMAIN_IOTLB_ID_MAX,
  structs,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { createHost, type Host, type HostDeviceConfig, type Process } from '../src/index.js';
import {
  checkMap,
  checkRefs,
  destroy,
  ioasAlloc,
  map,
  mockDomain,
  mockReplace,
  PAGE,
  setup,
  testCmd,
  U64_MAX,
  unmap,
} from './helpers.js';
import { filledBuffer, objectsOf, pattern, vfioAttach, vfioBind, vfioDetach } from './helpers-c.js';

const APERTURE = BigInt(MOCK_APERTURE_START);
const BUFFER = 16n * PAGE;
const ALLOC_SIZE = structs.iommu_hwpt_alloc.sizeof;
const INV_SIZE = structs.iommu_hwpt_invalidate.sizeof;
const SELFTEST_INV_LEN = structs.iommu_hwpt_invalidate_selftest.sizeof;
const VTD_INV_LEN = structs.iommu_hwpt_vtd_s1_invalidate.sizeof;
const VTD_S1_LEN = structs.iommu_hwpt_vtd_s1.sizeof;
const U32_MAX = 0xffffffff;

type AllocFields = Partial<ReturnType<typeof structs.iommu_hwpt_alloc.decode>>;

/** IOMMU_HWPT_ALLOC with the fields given; returns rc and the struct as it came back. */
function hwptAlloc(
  proc: Process,
  fd: number,
  fields: AllocFields,
): { rc: number; id: number; out: ReturnType<typeof structs.iommu_hwpt_alloc.decode> } {
  const b = structs.iommu_hwpt_alloc.encode({ size: ALLOC_SIZE, ...fields });
  const rc = proc.ioctl(fd, IOMMU_HWPT_ALLOC, b);
  const out = structs.iommu_hwpt_alloc.decode(b);
  return { rc, id: out.out_hwpt_id, out };
}

/** A paging HWPT on `ptId` for device `devId` (test_cmd_hwpt_alloc); throws if it fails. */
function pagingHwpt(proc: Process, fd: number, devId: number, ptId: number, flags = 0): number {
  const got = hwptAlloc(proc, fd, { dev_id: devId, pt_id: ptId, flags });
  if (got.rc !== 0) throw new Error(`HWPT_ALLOC failed ${got.rc}: ${proc.lastError()?.reason}`);
  return got.id;
}

/** A struct iommu_hwpt_selftest in process memory (followed by a page of zeros). */
function selftestData(proc: Process, iotlb = IOMMU_TEST_IOTLB_DEFAULT): bigint {
  const va = proc.mmap(PAGE);
  expect(proc.writeMemory(va, structs.iommu_hwpt_selftest.encode({ iotlb }))).toBe(0);
  return va;
}

/** A mock nested HWPT request (test_cmd_hwpt_alloc_nested's argument). */
function nestedFields(
  devId: number,
  parent: number,
  data: bigint,
  more: AllocFields = {},
): AllocFields {
  return {
    dev_id: devId,
    pt_id: parent,
    data_type: IOMMU_HWPT_DATA_SELFTEST,
    data_len: structs.iommu_hwpt_selftest.sizeof,
    data_uptr: data,
    ...more,
  };
}

/** IOMMU_TEST_OP_MD_CHECK_IOTLB. */
function checkIotlb(
  proc: Process,
  fd: number,
  hwptId: number,
  word: number,
  value: number,
): number {
  return testCmd(proc, fd, {
    op: IOMMU_TEST_OP_MD_CHECK_IOTLB,
    id: hwptId,
    check_iotlb: { id: word, iotlb: value },
  }).rc;
}

/** The four IOTLB words of a mock nested HWPT, as the MD_CHECK_IOTLB answers show them. */
function iotlbWords(proc: Process, fd: number, hwptId: number, candidates: number[]): number[] {
  const words: number[] = [];
  for (let word = 0; word <= MOCK_NESTED_DOMAIN_IOTLB_ID_MAX; word++) {
    const hit = candidates.find((v) => checkIotlb(proc, fd, hwptId, word, v) === 0);
    words.push(hit ?? -1);
  }
  return words;
}

type InvalidateFields = Partial<ReturnType<typeof structs.iommu_hwpt_invalidate.decode>>;

/** IOMMU_HWPT_INVALIDATE; returns rc and the entry_num written back. */
function invalidate(
  proc: Process,
  fd: number,
  fields: InvalidateFields,
): { rc: number; entryNum: number } {
  const b = structs.iommu_hwpt_invalidate.encode({ size: INV_SIZE, ...fields });
  const rc = proc.ioctl(fd, IOMMU_HWPT_INVALIDATE, b);
  return { rc, entryNum: structs.iommu_hwpt_invalidate.decode(b).entry_num };
}

/** An array of mock invalidation entries in process memory. */
function selftestEntries(proc: Process, entries: { flags: number; iotlb_id: number }[]): bigint {
  const va = proc.mmap(PAGE);
  entries.forEach((e, i) => {
    const bytes = structs.iommu_hwpt_invalidate_selftest.encode(e);
    expect(proc.writeMemory(va + BigInt(i * SELFTEST_INV_LEN), bytes)).toBe(0);
  });
  return va;
}

/** IOMMU_FAULT_QUEUE_ALLOC; returns the FAULT object id and its fd. */
function faultAlloc(proc: Process, fd: number): { faultId: number; faultFd: number } {
  const b = structs.iommu_fault_alloc.encode({ size: 16, flags: 0 });
  expect(proc.ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, b)).toBe(0);
  const out = structs.iommu_fault_alloc.decode(b);
  return { faultId: out.out_fault_id, faultFd: out.out_fault_fd };
}

function bytesOf(proc: Process, va: bigint, length: number): Uint8Array {
  const got = proc.readMemory(va, length);
  if (got === null) throw new Error(`cannot read ${length} bytes at ${va}`);
  return got;
}

function usersOf(proc: Process, fd: number, id: number): number | undefined {
  return proc.inspect(fd)?.objects.find((o) => o.id === id)?.users;
}

function hwptsOf(proc: Process, fd: number, ioas: number): { id: number; auto: boolean }[] {
  return (proc.inspect(fd)?.ioas.find((i) => i.id === ioas)?.hwpts ?? []).map((h) => ({
    id: h.id,
    auto: h.auto,
  }));
}

/**
 * The iommufd_ioas fixture: an IOAS, `domains` mock devices on it (ids 2/3/4
 * for the first) and, with `pasid`, one more PASID-capable mock device.
 */
function fixture(domains: 0 | 1 | 2, pasid = false) {
  const { host, proc, fd } = setup();
  const ioas = ioasAlloc(proc, fd);
  const devs: { stdevId: number; idevId: number; hwptId: number }[] = [];
  for (let i = 0; i < domains; i++) {
    const md = mockDomain(proc, fd, ioas);
    expect(md.rc).toBe(0);
    devs.push(md);
  }
  const pasidDev = pasid ? mockDomain(proc, fd, ioas, MOCK_FLAGS_DEVICE_PASID) : undefined;
  if (pasidDev !== undefined) expect(pasidDev.rc).toBe(0);
  const buffer = filledBuffer(proc, Number(BUFFER), 7);
  return { host, proc, fd, ioas, devs, pasidDev, buffer };
}

/** Close, then nothing pinned (MD_CHECK_REFS 0 from a fresh fd) and no model exception. */
function teardown(host: Host, proc: Process, fd: number, buffer: bigint): void {
  expect(proc.close(fd)).toBe(0);
  const check = proc.open('/dev/iommu');
  expect(checkRefs(proc, check, buffer, BUFFER, 0)).toBe(0);
  expect(proc.close(check)).toBe(0);
  expect(host.pinnedPages()).toBe(0);
  expect(host.internalErrors).toBe(0);
}

describe('2.13 IOMMU_HWPT_ALLOC on mock devices', () => {
  it('123/124: dev_id that is not a device → ENOENT; pt_id that is a device, another non-IOAS/HWPT object or missing → EINVAL; nothing is left behind', () => {
    const { host, proc, fd, ioas, devs, buffer } = fixture(1);
    const dev = devs[0] as (typeof devs)[number];
    const before = objectsOf(proc, fd);
    // test_err_hwpt_alloc(ENOENT, ioas_id, device_id, ...): the IOAS id as the device.
    for (const notDev of [ioas, dev.stdevId, dev.hwptId, 0, 99]) {
      expect(hwptAlloc(proc, fd, { dev_id: notDev, pt_id: ioas }).rc).toBe(-ENOENT);
    }
    expect(proc.lastError()?.name).toBe('ENOENT');
    // The device lookup comes first: a bad pt_id with a bad dev_id is still ENOENT.
    expect(hwptAlloc(proc, fd, { dev_id: ioas, pt_id: dev.idevId }).rc).toBe(-ENOENT);
    // test_err_hwpt_alloc(EINVAL, device_id, device_id, ...).
    for (const notPt of [dev.idevId, dev.stdevId, 0, 99]) {
      const got = hwptAlloc(proc, fd, { dev_id: dev.idevId, pt_id: notPt, out_hwpt_id: 0x55 });
      expect(got.rc).toBe(-EINVAL);
      // Nothing is written back on failure.
      expect(got.out.out_hwpt_id).toBe(0x55);
    }
    expect(proc.lastError()?.name).toBe('EINVAL');
    expect(objectsOf(proc, fd)).toEqual(before);
    // No id was consumed: the next object gets the next id.
    expect(pagingHwpt(proc, fd, dev.idevId, ioas)).toBe(before.length + 1);
    teardown(host, proc, fd, buffer);
  });

  it('125/135: unknown flags (~NEST_PARENT, single unknown bits) → EOPNOTSUPP; 0, NEST_PARENT, DIRTY_TRACKING and PASID make manual paging HWPTs; DIRTY_TRACKING for a NO_DIRTY device → EOPNOTSUPP', () => {
    const { host, proc, fd, ioas, devs, buffer } = fixture(2);
    for (const dev of devs) {
      const before = objectsOf(proc, fd);
      for (const bad of [~IOMMU_HWPT_ALLOC_NEST_PARENT >>> 0, 1 << 4, 0x80000000]) {
        expect(hwptAlloc(proc, fd, { dev_id: dev.idevId, pt_id: ioas, flags: bad }).rc).toBe(
          -EOPNOTSUPP,
        );
      }
      expect(proc.lastError()?.name).toBe('EOPNOTSUPP');
      expect(objectsOf(proc, fd)).toEqual(before);
    }
    const dev = devs[0] as (typeof devs)[number];
    const made: number[] = [];
    for (const flags of [
      0,
      IOMMU_HWPT_ALLOC_NEST_PARENT,
      IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
      IOMMU_HWPT_ALLOC_PASID,
      IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING | IOMMU_HWPT_ALLOC_PASID,
    ]) {
      made.push(pagingHwpt(proc, fd, dev.idevId, ioas, flags));
    }
    // Manual HWPTs join the IOAS beside the automatic one, and hold only the table's reference.
    expect(hwptsOf(proc, fd, ioas)).toEqual([
      { id: dev.hwptId, auto: true },
      ...made.map((id) => ({ id, auto: false })),
    ]);
    for (const id of made) expect(usersOf(proc, fd, id)).toBe(0);
    // The IOAS is held by every HWPT on it.
    expect(usersOf(proc, fd, ioas)).toBe(made.length + 1);

    // 135: a NO_DIRTY device has no IOMMU_CAP_DIRTY_TRACKING.
    const noDirty = mockDomain(proc, fd, ioas, MOCK_FLAGS_DEVICE_NO_DIRTY);
    expect(noDirty.rc).toBe(0);
    const objects = objectsOf(proc, fd);
    expect(
      hwptAlloc(proc, fd, {
        dev_id: noDirty.idevId,
        pt_id: ioas,
        flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
      }).rc,
    ).toBe(-EOPNOTSUPP);
    expect(proc.lastError()?.reason).toMatch(/dirty/i);
    expect(objectsOf(proc, fd)).toEqual(objects);
    // The same device takes a HWPT without the flag.
    expect(
      hwptAlloc(proc, fd, { dev_id: noDirty.idevId, pt_id: ioas, flags: IOMMU_HWPT_ALLOC_PASID })
        .rc,
    ).toBe(0);
    // enforce_dirty: a NO_DIRTY device cannot attach to a dirty-tracking HWPT (EINVAL).
    const dirty = made[2] as number;
    expect(mockDomain(proc, fd, dirty, MOCK_FLAGS_DEVICE_NO_DIRTY).rc).toBe(-EINVAL);
    const onDirty = mockDomain(proc, fd, dirty);
    expect(onDirty).toMatchObject({ rc: 0, hwptId: dirty });
    expect(destroy(proc, fd, onDirty.stdevId)).toBe(0);
    for (const id of made) expect(destroy(proc, fd, id)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('126/127: NEST_PARENT|FAULT_ID_VALID on an IOAS → EOPNOTSUPP; data_type NONE with data, or a type without data → EINVAL before any lookup; user data on a paging HWPT → EOPNOTSUPP', () => {
    const { host, proc, fd, ioas, devs, buffer } = fixture(1);
    const dev = devs[0] as (typeof devs)[number];
    const { faultId } = faultAlloc(proc, fd);
    const data = selftestData(proc);
    const before = objectsOf(proc, fd);
    for (const faultIdGiven of [0, faultId]) {
      expect(
        hwptAlloc(proc, fd, {
          dev_id: dev.idevId,
          pt_id: ioas,
          flags: IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_FAULT_ID_VALID,
          fault_id: faultIdGiven,
        }).rc,
      ).toBe(-EOPNOTSUPP);
    }
    // 127: the data_type / data_len pairing is checked before the device and pt lookups.
    for (const devId of [dev.idevId, 0]) {
      expect(
        hwptAlloc(proc, fd, {
          dev_id: devId,
          pt_id: ioas,
          data_type: IOMMU_HWPT_DATA_NONE,
          data_len: 4,
          data_uptr: data,
        }).rc,
      ).toBe(-EINVAL);
      expect(
        hwptAlloc(proc, fd, {
          dev_id: devId,
          pt_id: ioas,
          data_type: IOMMU_HWPT_DATA_SELFTEST,
          data_len: 0,
          data_uptr: data,
        }).rc,
      ).toBe(-EINVAL);
    }
    // Same for a nested request on the NEST_PARENT HWPT below.
    const parent = pagingHwpt(proc, fd, dev.idevId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    expect(
      hwptAlloc(
        proc,
        fd,
        nestedFields(dev.idevId, parent, data, { data_type: IOMMU_HWPT_DATA_NONE }),
      ).rc,
    ).toBe(-EINVAL);
    // The mock's domain_alloc_paging_flags refuses any user data.
    expect(hwptAlloc(proc, fd, nestedFields(dev.idevId, ioas, data)).rc).toBe(-EOPNOTSUPP);
    // __reserved must be 0 (checked first of all).
    expect(hwptAlloc(proc, fd, { dev_id: 0, pt_id: 0, __reserved: 1, data_type: 5 }).rc).toBe(
      -EOPNOTSUPP,
    );
    expect(objectsOf(proc, fd)).toEqual([...before, `${parent}:HWPT_PAGING`]);
    teardown(host, proc, fd, buffer);
  });

  it('a HWPT whose domain cannot join the IOAS (an area outside the mock aperture) → EADDRINUSE; an argument that cannot be written back → EFAULT; either way nothing is created', () => {
    const { host, proc, fd, ioas, devs, buffer } = fixture(1);
    const dev = devs[0] as (typeof devs)[number];
    const other = ioasAlloc(proc, fd);
    expect(map(proc, fd, other, buffer, PAGE, 0n).rc).toBe(0);
    const before = objectsOf(proc, fd);
    expect(hwptAlloc(proc, fd, { dev_id: dev.idevId, pt_id: other }).rc).toBe(-EADDRINUSE);
    expect(proc.lastError()?.name).toBe('EADDRINUSE');
    expect(objectsOf(proc, fd)).toEqual(before);
    expect(hwptsOf(proc, fd, other)).toEqual([]);
    expect(usersOf(proc, fd, other)).toBe(0);
    // The struct in read-only memory: read fine, out_hwpt_id cannot be written → EFAULT, aborted.
    const mfd = proc.memfdCreate('arg', PAGE);
    const rw = proc.mmap(PAGE, { fd: mfd });
    const ro = proc.mmap(PAGE, { fd: mfd, readOnly: true });
    const data = selftestData(proc);
    const parent = pagingHwpt(proc, fd, dev.idevId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const objects = objectsOf(proc, fd);
    for (const fields of [
      { dev_id: dev.idevId, pt_id: ioas },
      nestedFields(dev.idevId, parent, data),
    ]) {
      const bytes = structs.iommu_hwpt_alloc.encode({ size: ALLOC_SIZE, ...fields });
      expect(proc.writeMemory(rw, bytes)).toBe(0);
      expect(proc.ioctl(fd, IOMMU_HWPT_ALLOC, ro)).toBe(-EFAULT);
      expect(objectsOf(proc, fd)).toEqual(objects);
      // The same bytes from writable memory work, and the id comes back there.
      expect(proc.ioctl(fd, IOMMU_HWPT_ALLOC, rw)).toBe(0);
      const got = structs.iommu_hwpt_alloc.decode(bytesOf(proc, rw, ALLOC_SIZE));
      expect(got.out_hwpt_id).toBe(objects.length + 1);
      expect(destroy(proc, fd, got.out_hwpt_id)).toBe(0);
    }
    expect(usersOf(proc, fd, parent)).toBe(0);
    expect(proc.close(mfd)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('128–133: nested HWPT argument checks on a NEST_PARENT parent: wrong type → EOPNOTSUPP, data_len 3 or 5 → EINVAL, NULL data → EFAULT, NEST_PARENT / DIRTY flags → EOPNOTSUPP, non-nest-parent, automatic or nested parents → EINVAL', () => {
    const { host, proc, fd, ioas, devs, buffer } = fixture(1, true);
    const dev = devs[0] as (typeof devs)[number];
    const data = selftestData(proc);
    const parent = pagingHwpt(proc, fd, dev.idevId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const notWork = pagingHwpt(proc, fd, dev.idevId, ioas, 0);
    const before = objectsOf(proc, fd);
    const nested = (more: AllocFields) =>
      hwptAlloc(proc, fd, nestedFields(dev.idevId, parent, data, more)).rc;
    // 128
    expect(nested({ data_type: IOMMU_HWPT_DATA_SELFTEST + 1 })).toBe(-EOPNOTSUPP);
    expect(nested({ data_type: IOMMU_HWPT_DATA_VTD_S1, data_len: VTD_S1_LEN })).toBe(-EOPNOTSUPP);
    // 129: below offsetofend(iotlb), and longer than the struct (even with zeros after it).
    expect(nested({ data_len: 3 })).toBe(-EINVAL);
    expect(nested({ data_len: 1 })).toBe(-EINVAL);
    expect(nested({ data_len: 5 })).toBe(-EINVAL);
    expect(nested({ data_len: 4096 })).toBe(-EINVAL);
    // 130
    expect(nested({ data_uptr: 0n })).toBe(-EFAULT);
    expect(nested({ data_uptr: 0x10000n })).toBe(-EFAULT);
    expect(proc.lastError()?.name).toBe('EFAULT');
    // 131: only FAULT_ID_VALID and PASID are nested flags.
    expect(nested({ flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).toBe(-EOPNOTSUPP);
    expect(nested({ flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING })).toBe(-EOPNOTSUPP);
    expect(nested({ flags: 1 << 4 })).toBe(-EOPNOTSUPP);
    // 132: a parent without NEST_PARENT, or the automatic HWPT.
    for (const bad of [notWork, dev.hwptId]) {
      expect(hwptAlloc(proc, fd, nestedFields(dev.idevId, bad, data)).rc).toBe(-EINVAL);
    }
    expect(objectsOf(proc, fd)).toEqual(before);
    // Two nested HWPTs sharing one parent; the PASID flag is accepted too.
    const n0 = hwptAlloc(proc, fd, nestedFields(dev.idevId, parent, data));
    const n1 = hwptAlloc(
      proc,
      fd,
      nestedFields(dev.idevId, parent, data, { flags: IOMMU_HWPT_ALLOC_PASID }),
    );
    expect([n0.rc, n1.rc]).toEqual([0, 0]);
    expect(objectsOf(proc, fd)).toEqual([
      ...before,
      `${n0.id}:HWPT_NESTED`,
      `${n1.id}:HWPT_NESTED`,
    ]);
    // Nested HWPTs do not join the IOAS; each holds its parent.
    expect(hwptsOf(proc, fd, ioas).map((h) => h.id)).toEqual([dev.hwptId, parent, notWork]);
    expect(usersOf(proc, fd, parent)).toBe(2);
    // 133: a nested HWPT as the parent.
    const objects = objectsOf(proc, fd);
    expect(hwptAlloc(proc, fd, nestedFields(dev.idevId, n0.id, data)).rc).toBe(-EINVAL);
    expect(objectsOf(proc, fd)).toEqual(objects);
    // A device of another IOMMU driver cannot use the mock parent (owner check, EINVAL):
    // covered on the VT-d host below; here the PASID device may use it.
    const pasidDev = mockDomain(proc, fd, ioas, MOCK_FLAGS_DEVICE_PASID);
    expect(hwptAlloc(proc, fd, nestedFields(pasidDev.idevId, parent, data)).rc).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('134: FAULT_ID_VALID with fault_id UINT32_MAX (or a non-FAULT id) → ENOENT for nested and paging HWPTs, nothing left behind; a real fault id works and the HWPT holds the FAULT', () => {
    const { host, proc, fd, ioas, devs, buffer } = fixture(1);
    const dev = devs[0] as (typeof devs)[number];
    const data = selftestData(proc);
    const parent = pagingHwpt(proc, fd, dev.idevId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const { faultId, faultFd } = faultAlloc(proc, fd);
    const before = objectsOf(proc, fd);
    for (const bad of [U32_MAX, ioas, parent, 0]) {
      expect(
        hwptAlloc(
          proc,
          fd,
          nestedFields(dev.idevId, parent, data, {
            flags: IOMMU_HWPT_FAULT_ID_VALID,
            fault_id: bad,
          }),
        ).rc,
      ).toBe(-ENOENT);
      expect(
        hwptAlloc(proc, fd, {
          dev_id: dev.idevId,
          pt_id: ioas,
          flags: IOMMU_HWPT_FAULT_ID_VALID,
          fault_id: bad,
        }).rc,
      ).toBe(-ENOENT);
    }
    expect(proc.lastError()?.name).toBe('ENOENT');
    // The aborted HWPTs are gone and their ids are free again; the parent lost no users.
    expect(objectsOf(proc, fd)).toEqual(before);
    expect(usersOf(proc, fd, parent)).toBe(0);
    expect(hwptsOf(proc, fd, ioas).map((h) => h.id)).toEqual([dev.hwptId, parent]);
    // Without FAULT_ID_VALID, fault_id is ignored.
    const plain = hwptAlloc(
      proc,
      fd,
      nestedFields(dev.idevId, parent, data, { fault_id: U32_MAX }),
    );
    expect(plain).toMatchObject({ rc: 0, id: before.length + 1 });
    const faultUsers = usersOf(proc, fd, faultId) as number;
    const iopf = hwptAlloc(
      proc,
      fd,
      nestedFields(dev.idevId, parent, data, {
        flags: IOMMU_HWPT_FAULT_ID_VALID,
        fault_id: faultId,
      }),
    );
    expect(iopf.rc).toBe(0);
    expect(usersOf(proc, fd, faultId)).toBe(faultUsers + 1);
    const iopfPaging = hwptAlloc(proc, fd, {
      dev_id: dev.idevId,
      pt_id: ioas,
      flags: IOMMU_HWPT_FAULT_ID_VALID,
      fault_id: faultId,
    });
    expect(iopfPaging.rc).toBe(0);
    expect(usersOf(proc, fd, faultId)).toBe(faultUsers + 2);
    // The FAULT cannot go while HWPTs use it.
    expect(destroy(proc, fd, faultId)).toBe(-EBUSY);
    expect(destroy(proc, fd, iopf.id)).toBe(0);
    expect(destroy(proc, fd, iopfPaging.id)).toBe(0);
    expect(usersOf(proc, fd, faultId)).toBe(faultUsers);
    expect(proc.close(faultFd)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it("136: the nested HWPT's four mock IOTLB words start at data.iotlb (MD_CHECK_IOTLB); word 4, another value or a non-mock-nested id are refused", () => {
    const { host, proc, fd, ioas, devs, buffer } = fixture(1);
    const dev = devs[0] as (typeof devs)[number];
    const parent = pagingHwpt(proc, fd, dev.idevId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const n0 = hwptAlloc(proc, fd, nestedFields(dev.idevId, parent, selftestData(proc)));
    const n1 = hwptAlloc(proc, fd, nestedFields(dev.idevId, parent, selftestData(proc, 0x1234)));
    expect([n0.rc, n1.rc]).toEqual([0, 0]);
    const candidates = [IOMMU_TEST_IOTLB_DEFAULT, 0x1234, 0];
    expect(iotlbWords(proc, fd, n0.id, candidates)).toEqual(
      new Array(4).fill(IOMMU_TEST_IOTLB_DEFAULT),
    );
    expect(iotlbWords(proc, fd, n1.id, candidates)).toEqual(new Array(4).fill(0x1234));
    expect(checkIotlb(proc, fd, n0.id, 0, 0)).toBe(-EINVAL);
    expect(
      checkIotlb(proc, fd, n0.id, MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1, IOMMU_TEST_IOTLB_DEFAULT),
    ).toBe(-EINVAL);
    expect(proc.lastError()?.name).toBe('EINVAL');
    // Not a nested HWPT at all: ENOENT (the lookup is by type).
    for (const id of [parent, dev.hwptId, ioas, 99]) {
      expect(checkIotlb(proc, fd, id, 0, IOMMU_TEST_IOTLB_DEFAULT)).toBe(-ENOENT);
    }
    teardown(host, proc, fd, buffer);
  });

  it('137: a device rotates through manual HWPTs (paging → nest parent → IOAS) with MOCK_DOMAIN_REPLACE; each is busy while used and destroyable after; MOCK_DOMAIN on a manual HWPT (one and two domains)', () => {
    for (const domains of [1, 2] as const) {
      const { host, proc, fd, ioas, devs, buffer } = fixture(domains);
      expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
      for (const dev of devs) {
        const plain = pagingHwpt(proc, fd, dev.idevId, ioas, 0);
        const parent = pagingHwpt(proc, fd, dev.idevId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
        // A manual HWPT is filled from the IOAS like any domain.
        expect(checkMap(proc, fd, plain, APERTURE, BUFFER, buffer)).toBe(0);
        expect(checkMap(proc, fd, parent, APERTURE, BUFFER, buffer)).toBe(0);
        expect(mockReplace(proc, fd, dev.stdevId, plain)).toEqual({ rc: 0, ptId: plain });
        expect(destroy(proc, fd, plain)).toBe(-EBUSY);
        expect(mockReplace(proc, fd, dev.stdevId, parent)).toEqual({ rc: 0, ptId: parent });
        expect(destroy(proc, fd, parent)).toBe(-EBUSY);
        // Manual HWPTs are never picked automatically: back to the IOAS takes an automatic one.
        const back = mockReplace(proc, fd, dev.stdevId, ioas);
        expect(back.rc).toBe(0);
        expect([plain, parent]).not.toContain(back.ptId);
        expect(hwptsOf(proc, fd, ioas).find((h) => h.id === back.ptId)?.auto).toBe(true);
        expect(destroy(proc, fd, parent)).toBe(0);
        const onPlain = mockDomain(proc, fd, plain);
        expect(onPlain).toMatchObject({ rc: 0, hwptId: plain });
        expect(destroy(proc, fd, plain)).toBe(-EBUSY);
        expect(destroy(proc, fd, onPlain.stdevId)).toBe(0);
        expect(destroy(proc, fd, plain)).toBe(0);
      }
      expect(checkRefs(proc, fd, buffer, BUFFER, 1)).toBe(0);
      teardown(host, proc, fd, buffer);
    }
  });

  it('137: the full alloc_hwpt_nested flow: DESTROY of a parent a nested HWPT uses → EBUSY; replace onto nested HWPTs, between them, back to the parent and the IOAS, destroying each when free', () => {
    const { host, proc, fd, ioas, devs, buffer } = fixture(1, true);
    const dev = devs[0] as (typeof devs)[number];
    expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    const data = selftestData(proc);
    const parent = pagingHwpt(proc, fd, dev.idevId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const notWork = pagingHwpt(proc, fd, dev.idevId, ioas, 0);
    const n0 = hwptAlloc(proc, fd, nestedFields(dev.idevId, parent, data)).id;
    const n1 = hwptAlloc(proc, fd, nestedFields(dev.idevId, parent, data)).id;
    expect(destroy(proc, fd, parent)).toBe(-EBUSY);
    expect(proc.lastError()?.name).toBe('EBUSY');
    expect(usersOf(proc, fd, dev.hwptId)).toBe(2); // this device and the PASID device
    expect(mockReplace(proc, fd, dev.stdevId, n0)).toEqual({ rc: 0, ptId: n0 });
    // The automatic HWPT the device left stays for the PASID device.
    expect(usersOf(proc, fd, dev.hwptId)).toBe(1);
    expect(destroy(proc, fd, n0)).toBe(-EBUSY);
    expect(mockReplace(proc, fd, dev.stdevId, n1)).toEqual({ rc: 0, ptId: n1 });
    expect(destroy(proc, fd, n1)).toBe(-EBUSY);
    expect(destroy(proc, fd, n0)).toBe(0);
    expect(mockReplace(proc, fd, dev.stdevId, parent)).toEqual({ rc: 0, ptId: parent });
    expect(destroy(proc, fd, n1)).toBe(0);
    // The nested HWPTs' ids were released: the device lookups find nothing there.
    expect(mockReplace(proc, fd, dev.stdevId, n0).rc).toBe(-ENOENT);
    expect(checkMap(proc, fd, parent, APERTURE, BUFFER, buffer)).toBe(0);
    const back = mockReplace(proc, fd, dev.stdevId, ioas);
    expect(back.rc).toBe(0);
    expect(destroy(proc, fd, parent)).toBe(0);
    expect(destroy(proc, fd, notWork)).toBe(0);
    expect(checkMap(proc, fd, back.ptId, APERTURE, BUFFER, buffer)).toBe(0);
    expect(checkRefs(proc, fd, buffer, BUFFER, 1)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('replace to the current HWPT is a no-op; a failed replace keeps the old attachment (NO_DIRTY onto a dirty HWPT, a missing id, an idev id)', () => {
    const { host, proc, fd, ioas, buffer } = fixture(0);
    expect(map(proc, fd, ioas, buffer, BUFFER, APERTURE).rc).toBe(0);
    const noDirty = mockDomain(proc, fd, ioas, MOCK_FLAGS_DEVICE_NO_DIRTY);
    expect(noDirty.rc).toBe(0);
    const plain = pagingHwpt(proc, fd, noDirty.idevId, ioas, 0);
    const other = mockDomain(proc, fd, ioas);
    const dirty = pagingHwpt(proc, fd, other.idevId, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING);
    expect(mockReplace(proc, fd, noDirty.stdevId, plain)).toEqual({ rc: 0, ptId: plain });
    expect(usersOf(proc, fd, plain)).toBe(1);
    // Same HWPT: nothing changes, the users count included.
    expect(mockReplace(proc, fd, noDirty.stdevId, plain)).toEqual({ rc: 0, ptId: plain });
    expect(usersOf(proc, fd, plain)).toBe(1);
    // Failures leave the device on `plain`.
    const attempts: [number, number][] = [
      [dirty, EINVAL],
      [99, ENOENT],
      [noDirty.idevId, EINVAL],
    ];
    for (const [pt, errno] of attempts) {
      const got = mockReplace(proc, fd, noDirty.stdevId, pt);
      expect(got.rc).toBe(-errno);
      expect(got.ptId).toBe(pt); // not written back
      expect(usersOf(proc, fd, plain)).toBe(1);
      expect(usersOf(proc, fd, dirty)).toBe(0);
    }
    expect(destroy(proc, fd, plain)).toBe(-EBUSY);
    expect(destroy(proc, fd, dirty)).toBe(0);
    expect(checkMap(proc, fd, plain, APERTURE, BUFFER, buffer)).toBe(0);
    expect(checkRefs(proc, fd, buffer, BUFFER, 1)).toBe(0);
    // Replace needs an attachment: a mock device whose stdev is gone is not found at all.
    expect(destroy(proc, fd, noDirty.stdevId)).toBe(0);
    expect(mockReplace(proc, fd, noDirty.stdevId, ioas).rc).toBe(-ENOENT);
    expect(destroy(proc, fd, plain)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('138: without a mock device (no_domain) every HWPT_ALLOC → ENOENT, and MOCK_DOMAIN_REPLACE of stdev 0 → ENOENT', () => {
    const { host, proc, fd, ioas, buffer } = fixture(0);
    const data = selftestData(proc);
    expect(hwptAlloc(proc, fd, { dev_id: 0, pt_id: ioas }).rc).toBe(-ENOENT);
    expect(
      hwptAlloc(proc, fd, { dev_id: 0, pt_id: ioas, flags: IOMMU_HWPT_ALLOC_NEST_PARENT }).rc,
    ).toBe(-ENOENT);
    expect(hwptAlloc(proc, fd, nestedFields(0, 0, data)).rc).toBe(-ENOENT);
    expect(hwptAlloc(proc, fd, nestedFields(0, ioas, data)).rc).toBe(-ENOENT);
    expect(mockReplace(proc, fd, 0, 0).rc).toBe(-ENOENT);
    // MOCK_DOMAIN on the would-be HWPT id (0) too (hwpt_attach no_domain).
    expect(mockDomain(proc, fd, 0).rc).toBe(-ENOENT);
    expect(objectsOf(proc, fd)).toEqual([`${ioas}:IOAS`]);
    teardown(host, proc, fd, buffer);
  });
});

describe('2.14 IOMMU_HWPT_INVALIDATE on mock nested HWPTs', () => {
  /** The alloc_hwpt_nested fixture: a parent, two nested HWPTs (IOTLB 0xbadbeef). */
  function nestedFixture() {
    const f = fixture(1);
    const dev = f.devs[0] as (typeof f.devs)[number];
    const data = selftestData(f.proc);
    const parent = pagingHwpt(f.proc, f.fd, dev.idevId, f.ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const n0 = hwptAlloc(f.proc, f.fd, nestedFields(dev.idevId, parent, data)).id;
    const n1 = hwptAlloc(f.proc, f.fd, nestedFields(dev.idevId, parent, data)).id;
    const words = (id: number) =>
      iotlbWords(f.proc, f.fd, id, [IOMMU_TEST_IOTLB_DEFAULT, 0]).map((w) =>
        w === IOMMU_TEST_IOTLB_DEFAULT ? 'D' : w === 0 ? '0' : '?',
      );
    return { ...f, dev, parent, n0, n1, words };
  }
  const D = ['D', 'D', 'D', 'D'];
  const base = (hwptId: number, uptr: bigint, entryNum: number): InvalidateFields => ({
    hwpt_id: hwptId,
    data_uptr: uptr,
    data_type: IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
    entry_len: SELFTEST_INV_LEN,
    entry_num: entryNum,
  });

  it('139/140/141: a paging (parent) HWPT → EINVAL with entry_num 0; entry_num 0 probes the type (0); a wrong data_type → EINVAL with entry_num 0', () => {
    const { host, proc, fd, parent, n0, words, dev, ioas, buffer } = nestedFixture();
    const reqs = selftestEntries(proc, [{ flags: 0, iotlb_id: 0 }]);
    expect(invalidate(proc, fd, base(parent, reqs, 1))).toEqual({ rc: -EINVAL, entryNum: 0 });
    expect(invalidate(proc, fd, base(dev.hwptId, reqs, 1))).toEqual({ rc: -EINVAL, entryNum: 0 });
    // Neither HWPT kind: an IOAS id is EINVAL too, a missing id ENOENT.
    expect(invalidate(proc, fd, base(ioas, reqs, 1))).toEqual({ rc: -EINVAL, entryNum: 0 });
    expect(invalidate(proc, fd, base(99, reqs, 1))).toEqual({ rc: -ENOENT, entryNum: 0 });
    // 140: a zero-length array of the right type.
    expect(invalidate(proc, fd, base(n0, reqs, 0))).toEqual({ rc: 0, entryNum: 0 });
    expect(invalidate(proc, fd, { ...base(n0, 0n, 0), entry_len: 0 })).toEqual({
      rc: 0,
      entryNum: 0,
    });
    // 141: the driver checks the type even for an empty array.
    expect(
      invalidate(proc, fd, {
        ...base(n0, reqs, 1),
        data_type: IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID,
      }),
    ).toEqual({ rc: -EINVAL, entryNum: 0 });
    expect(
      invalidate(proc, fd, {
        ...base(n0, reqs, 0),
        data_type: IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID,
      }),
    ).toEqual({ rc: -EINVAL, entryNum: 0 });
    expect(words(n0)).toEqual(D);
    teardown(host, proc, fd, buffer);
  });

  it('142/143: entry_len sizeof+1 or 1 → EINVAL; entry_num > 0 with NULL data or entry_len 0 → EINVAL; entry_num is written back as 0', () => {
    const { host, proc, fd, n0, words, buffer } = nestedFixture();
    const reqs = selftestEntries(proc, [
      { flags: 0, iotlb_id: 0 },
      { flags: 0, iotlb_id: 1 },
    ]);
    for (const entryLen of [SELFTEST_INV_LEN + 1, 1, SELFTEST_INV_LEN - 1, 4096]) {
      expect(invalidate(proc, fd, { ...base(n0, reqs, 1), entry_len: entryLen })).toEqual({
        rc: -EINVAL,
        entryNum: 0,
      });
    }
    expect(invalidate(proc, fd, base(n0, 0n, 1))).toEqual({ rc: -EINVAL, entryNum: 0 });
    expect(invalidate(proc, fd, { ...base(n0, reqs, 1), entry_len: 0 })).toEqual({
      rc: -EINVAL,
      entryNum: 0,
    });
    // The core's NULL/zero-length check comes before the object lookup.
    expect(invalidate(proc, fd, base(99, 0n, 1))).toEqual({ rc: -EINVAL, entryNum: 0 });
    // An array that is not readable: EFAULT, nothing done.
    expect(invalidate(proc, fd, base(n0, 0x10000n, 2))).toEqual({ rc: -EFAULT, entryNum: 0 });
    expect(words(n0)).toEqual(D);
    teardown(host, proc, fd, buffer);
  });

  it('144/145: unknown entry flags → EOPNOTSUPP, iotlb_id > 3 → EINVAL (entry_num 0); a bad 2nd entry stops after the 1st: entry_num 1 and only slot 0 cleared', () => {
    const { host, proc, fd, n0, n1, words, buffer } = nestedFixture();
    const one = (e: { flags: number; iotlb_id: number }) =>
      invalidate(proc, fd, base(n0, selftestEntries(proc, [e]), 1));
    expect(one({ flags: 0xffffffff, iotlb_id: 0 })).toEqual({ rc: -EOPNOTSUPP, entryNum: 0 });
    expect(one({ flags: 2, iotlb_id: 0 })).toEqual({ rc: -EOPNOTSUPP, entryNum: 0 });
    expect(one({ flags: 0, iotlb_id: MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1 })).toEqual({
      rc: -EINVAL,
      entryNum: 0,
    });
    expect(words(n0)).toEqual(D);
    // 145: flags of the 2nd entry.
    const badFlags = selftestEntries(proc, [
      { flags: 0, iotlb_id: 0 },
      { flags: 0xffffffff, iotlb_id: 1 },
    ]);
    expect(invalidate(proc, fd, base(n0, badFlags, 2))).toEqual({ rc: -EOPNOTSUPP, entryNum: 1 });
    expect(words(n0)).toEqual(['0', 'D', 'D', 'D']);
    // 145: iotlb_id of the 2nd entry.
    const badId = selftestEntries(proc, [
      { flags: 0, iotlb_id: 0 },
      { flags: 0, iotlb_id: MOCK_NESTED_DOMAIN_IOTLB_ID_MAX + 1 },
    ]);
    expect(invalidate(proc, fd, base(n0, badId, 2))).toEqual({ rc: -EINVAL, entryNum: 1 });
    expect(words(n0)).toEqual(['0', 'D', 'D', 'D']);
    // The 2nd entry unreadable (past the mapping): EFAULT after one.
    const edge = proc.mmap(2n * PAGE);
    const last = edge + PAGE - BigInt(SELFTEST_INV_LEN);
    expect(
      proc.writeMemory(
        last,
        structs.iommu_hwpt_invalidate_selftest.encode({ flags: 0, iotlb_id: 0 }),
      ),
    ).toBe(0);
    expect(proc.munmap(edge + PAGE, PAGE)).toBe(0);
    expect(invalidate(proc, fd, base(n1, last, 2))).toEqual({ rc: -EFAULT, entryNum: 1 });
    expect(words(n1)).toEqual(['0', 'D', 'D', 'D']);
    teardown(host, proc, fd, buffer);
  });

  it('146: entries for slot 0, slot 1, then slots 2 and 3 → entry_num 1, 1, 2 and all four slots 0; FLAG_ALL (iotlb_id still checked) clears all four of the other HWPT', () => {
    const { host, proc, fd, n0, n1, words, buffer } = nestedFixture();
    const first = selftestEntries(proc, [{ flags: 0, iotlb_id: 0 }]);
    expect(invalidate(proc, fd, base(n0, first, 1))).toEqual({ rc: 0, entryNum: 1 });
    expect(words(n0)).toEqual(['0', 'D', 'D', 'D']);
    const second = selftestEntries(proc, [{ flags: 0, iotlb_id: 1 }]);
    expect(invalidate(proc, fd, base(n0, second, 1))).toEqual({ rc: 0, entryNum: 1 });
    expect(words(n0)).toEqual(['0', '0', 'D', 'D']);
    const two = selftestEntries(proc, [
      { flags: 0, iotlb_id: 2 },
      { flags: 0, iotlb_id: 3 },
    ]);
    expect(invalidate(proc, fd, base(n0, two, 2))).toEqual({ rc: 0, entryNum: 2 });
    expect(words(n0)).toEqual(['0', '0', '0', '0']);
    expect(words(n1)).toEqual(D);
    // FLAG_ALL still has iotlb_id checked first (6.17 selftest.c), then ignores it.
    const allBad = selftestEntries(proc, [{ flags: IOMMU_TEST_INVALIDATE_FLAG_ALL, iotlb_id: 7 }]);
    expect(invalidate(proc, fd, base(n1, allBad, 1))).toEqual({ rc: -EINVAL, entryNum: 0 });
    expect(words(n1)).toEqual(D);
    const all = selftestEntries(proc, [{ flags: IOMMU_TEST_INVALIDATE_FLAG_ALL, iotlb_id: 2 }]);
    expect(invalidate(proc, fd, base(n1, all, 1))).toEqual({ rc: 0, entryNum: 1 });
    expect(words(n1)).toEqual(['0', '0', '0', '0']);
    // entry_len larger than the struct is refused even when the tail is zero (6.17's
    // __iommu_copy_struct_from_user_array: data_len < entry_len).
    expect(invalidate(proc, fd, { ...base(n1, all, 1), entry_len: 12 })).toEqual({
      rc: -EINVAL,
      entryNum: 0,
    });
    teardown(host, proc, fd, buffer);
  });

  it('an argument that cannot be written back (read-only memory) → EFAULT even though the entries were handled', () => {
    const { host, proc, fd, n0, words, buffer } = nestedFixture();
    const mfd = proc.memfdCreate('arg', PAGE);
    const rw = proc.mmap(PAGE, { fd: mfd });
    const ro = proc.mmap(PAGE, { fd: mfd, readOnly: true });
    const reqs = selftestEntries(proc, [{ flags: 0, iotlb_id: 3 }]);
    const bytes = structs.iommu_hwpt_invalidate.encode({ size: INV_SIZE, ...base(n0, reqs, 1) });
    expect(proc.writeMemory(rw, bytes)).toBe(0);
    expect(proc.ioctl(fd, IOMMU_HWPT_INVALIDATE, ro)).toBe(-EFAULT);
    expect(words(n0)).toEqual(['D', 'D', 'D', '0']);
    // From writable memory: 0 and entry_num 1 written there.
    expect(proc.ioctl(fd, IOMMU_HWPT_INVALIDATE, rw)).toBe(0);
    expect(structs.iommu_hwpt_invalidate.decode(bytesOf(proc, rw, INV_SIZE)).entry_num).toBe(1);
    expect(proc.close(mfd)).toBe(0);
    teardown(host, proc, fd, buffer);
  });

  it('147: __reserved ≠ 0 → EOPNOTSUPP before anything else; entry_num is written back (0) even on error, and a short size is EINVAL', () => {
    const { host, proc, fd, n0, words, buffer } = nestedFixture();
    const reqs = selftestEntries(proc, [{ flags: 0, iotlb_id: 0 }]);
    expect(invalidate(proc, fd, { ...base(n0, reqs, 1), __reserved: 1 })).toEqual({
      rc: -EOPNOTSUPP,
      entryNum: 0,
    });
    expect(invalidate(proc, fd, { ...base(99, 0n, 5), __reserved: 0x80000000 })).toEqual({
      rc: -EOPNOTSUPP,
      entryNum: 0,
    });
    expect(words(n0)).toEqual(D);
    // size below offsetofend(__reserved) (32): EINVAL from dispatch, entry_num untouched.
    const b = structs.iommu_hwpt_invalidate.encode({ ...base(n0, reqs, 1), size: INV_SIZE - 1 });
    expect(proc.ioctl(fd, IOMMU_HWPT_INVALIDATE, b)).toBe(-EINVAL);
    expect(structs.iommu_hwpt_invalidate.decode(b).entry_num).toBe(1);
    teardown(host, proc, fd, buffer);
  });
});

// ---- real IOMMU models ------------------------------------------------------------------

const GPU = '0000:00:02.0';
const VFIO0 = '/dev/vfio/devices/vfio0';

/** A host with one IOMMU of `model` and one PCI device behind it, bound through VFIO. */
function vfioHost(
  model: 'vtd' | 'smmuv3' | 'amd',
  device: Partial<Omit<HostDeviceConfig, 'name' | 'iommu'>> = {},
) {
  const host = createHost({
    iommus: [{ name: `${model}0`, model }],
    devices: [{ name: GPU, iommu: `${model}0`, pasidBits: 20, ...device }],
  });
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  const dev = proc.open(VFIO0);
  expect(dev).toBeGreaterThanOrEqual(3);
  const bound = vfioBind(proc, dev, fd);
  expect(bound.rc).toBe(0);
  const ioas = ioasAlloc(proc, fd);
  return { host, proc, fd, dev, devid: bound.devid, ioas };
}

/** Little-endian u64 bytes. */
function le64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, true);
  return b;
}

// Guest memory plan (GPAs are IOVAs of the IOAS the nest parent maps):
// RAM at GPA 0 .. 2 MiB; PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 -> PT 0x4000;
// GVA 0x400000 (PD index 2) -> GPA PAGE_A, later PAGE_B.
const GUEST_RAM = 2n << 20n;
const PML4 = 0x1000n;
const PDPT = 0x2000n;
const PD = 0x3000n;
const PT = 0x4000n;
const PAGE_A = 0x10000n;
const PAGE_B = 0x11000n;
const GVA = 0x400000n;
/** Table entries: P | RW | US | A; leaves also D. */
const TABLE = 0x27n;
const LEAF = 0x67n;

describe('2.13 / 2.14 on a VT-d host (VFIO device, guest stage-1 table)', () => {
  /** Bind, map guest RAM, build the guest tables, allocate a NEST_PARENT HWPT. */
  function vtdNesting(config: { dirty?: boolean } = {}) {
    const env = vfioHost('vtd');
    const { proc, fd, ioas, devid } = env;
    const ram = proc.mmap(GUEST_RAM);
    expect(map(proc, fd, ioas, ram, GUEST_RAM, 0n).rc).toBe(0);
    const put = (gpa: bigint, v: bigint) => expect(proc.writeMemory(ram + gpa, le64(v))).toBe(0);
    put(PML4, PDPT | TABLE);
    put(PDPT, PD | TABLE);
    put(PD + 2n * 8n, PT | TABLE);
    put(PT, PAGE_A | LEAF);
    expect(proc.writeMemory(ram + PAGE_A, pattern(4096, 1))).toBe(0);
    expect(proc.writeMemory(ram + PAGE_B, pattern(4096, 2))).toBe(0);
    const parent = hwptAlloc(proc, fd, {
      dev_id: devid,
      pt_id: ioas,
      flags: IOMMU_HWPT_ALLOC_NEST_PARENT | (config.dirty ? IOMMU_HWPT_ALLOC_DIRTY_TRACKING : 0),
    });
    expect(parent.rc).toBe(0);
    const s1 = proc.mmap(PAGE);
    const s1Data = (fields: { pgtbl_addr?: bigint; addr_width?: number; flags?: bigint } = {}) => {
      const bytes = structs.iommu_hwpt_vtd_s1.encode({
        flags: fields.flags ?? 0n,
        pgtbl_addr: fields.pgtbl_addr ?? PML4,
        addr_width: fields.addr_width ?? 48,
        __reserved: 0,
      });
      expect(proc.writeMemory(s1, bytes)).toBe(0);
      return s1;
    };
    return { ...env, ram, put, parent: parent.id, s1Data };
  }

  function vtdNestedFields(
    devid: number,
    parent: number,
    uptr: bigint,
    more: AllocFields = {},
  ): AllocFields {
    return {
      dev_id: devid,
      pt_id: parent,
      data_type: IOMMU_HWPT_DATA_VTD_S1,
      data_len: VTD_S1_LEN,
      data_uptr: uptr,
      ...more,
    };
  }

  function vtdEntries(
    proc: Process,
    entries: { addr: bigint; npages: bigint; flags?: number; __reserved?: number }[],
  ): bigint {
    const va = proc.mmap(PAGE);
    entries.forEach((e, i) => {
      const bytes = structs.iommu_hwpt_vtd_s1_invalidate.encode({
        flags: 0,
        __reserved: 0,
        ...e,
      });
      expect(proc.writeMemory(va + BigInt(i * VTD_INV_LEN), bytes)).toBe(0);
    });
    return va;
  }

  const vtdInv = (hwptId: number, uptr: bigint, entryNum: number): InvalidateFields => ({
    hwpt_id: hwptId,
    data_uptr: uptr,
    data_type: IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
    entry_len: VTD_INV_LEN,
    entry_num: entryNum,
  });

  function read(host: Host, iova: bigint, length = 64): Uint8Array {
    const r = host.deviceDma(GPU, { iova, length });
    if (r?.status !== 'done') {
      throw new Error(
        `DMA at 0x${iova.toString(16)}: ${r?.status} ${JSON.stringify(r && 'fault' in r ? r.fault.reason : '')}`,
      );
    }
    return r.data;
  }

  it('NEST_PARENT paging HWPT, then nested IOMMU_HWPT_DATA_VTD_S1: data_len short/long → EINVAL, NULL → EFAULT, wrong type → EOPNOTSUPP, wrong flags → EOPNOTSUPP, a non-nest-parent parent → EINVAL', () => {
    const { host, proc, fd, devid, ioas, parent, s1Data, dev } = vtdNesting();
    const data = s1Data();
    const before = objectsOf(proc, fd);
    const nested = (more: AllocFields) =>
      hwptAlloc(proc, fd, vtdNestedFields(devid, parent, data, more)).rc;
    expect(nested({ data_len: VTD_S1_LEN - 1 })).toBe(-EINVAL);
    expect(nested({ data_len: 8 })).toBe(-EINVAL);
    expect(nested({ data_len: VTD_S1_LEN + 1 })).toBe(-EINVAL);
    expect(nested({ data_len: VTD_S1_LEN + 8 })).toBe(-EINVAL);
    expect(nested({ data_uptr: 0n })).toBe(-EFAULT);
    expect(nested({ data_type: IOMMU_HWPT_DATA_SELFTEST, data_len: 4 })).toBe(-EOPNOTSUPP);
    expect(nested({ data_type: IOMMU_HWPT_DATA_ARM_SMMUV3, data_len: 16 })).toBe(-EOPNOTSUPP);
    expect(nested({ flags: IOMMU_HWPT_ALLOC_NEST_PARENT })).toBe(-EOPNOTSUPP);
    expect(nested({ flags: IOMMU_HWPT_ALLOC_DIRTY_TRACKING })).toBe(-EOPNOTSUPP);
    expect(objectsOf(proc, fd)).toEqual(before);
    // A plain (first-stage) paging HWPT and the automatic one cannot be parents.
    const plain = pagingHwpt(proc, fd, devid, ioas, 0);
    expect(hwptAlloc(proc, fd, vtdNestedFields(devid, plain, data)).rc).toBe(-EINVAL);
    const auto = vfioAttach(proc, dev, ioas);
    expect(auto.rc).toBe(0);
    expect(hwptAlloc(proc, fd, vtdNestedFields(devid, auto.ptId, data)).rc).toBe(-EINVAL);
    const ok = hwptAlloc(proc, fd, vtdNestedFields(devid, parent, data));
    expect(ok.rc).toBe(0);
    expect(objectsOf(proc, fd)).toContain(`${ok.id}:HWPT_NESTED`);
    expect(usersOf(proc, fd, parent)).toBe(1);
    expect(destroy(proc, fd, parent)).toBe(-EBUSY);
    // A nested HWPT cannot be a parent either.
    expect(hwptAlloc(proc, fd, vtdNestedFields(devid, ok.id, data)).rc).toBe(-EINVAL);
    expect(proc.close(dev)).toBe(0);
    expect(proc.close(fd)).toBe(0);
    expect(host.pinnedPages()).toBe(0);
    expect(host.internalErrors).toBe(0);
  });

  it('a mock nest parent refuses a VT-d device (another driver owns it) and a VT-d parent refuses the mock device: EINVAL', () => {
    const host = createHost({
      selftest: true,
      iommus: [{ name: 'vtd0', model: 'vtd' }],
      devices: [{ name: GPU, iommu: 'vtd0' }],
    });
    const proc = host.createProcess();
    const fd = proc.open('/dev/iommu');
    const ioas = ioasAlloc(proc, fd);
    const md = mockDomain(proc, fd, ioas);
    const dev = proc.open(VFIO0);
    const { devid } = vfioBind(proc, dev, fd);
    const mockParent = pagingHwpt(proc, fd, md.idevId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const vtdParent = pagingHwpt(proc, fd, devid, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const s1 = proc.mmap(PAGE);
    proc.writeMemory(
      s1,
      structs.iommu_hwpt_vtd_s1.encode({
        flags: 0n,
        pgtbl_addr: PML4,
        addr_width: 48,
        __reserved: 0,
      }),
    );
    expect(hwptAlloc(proc, fd, vtdNestedFields(devid, mockParent, s1)).rc).toBe(-EINVAL);
    expect(hwptAlloc(proc, fd, nestedFields(md.idevId, vtdParent, selftestData(proc))).rc).toBe(
      -EINVAL,
    );
    expect(proc.close(dev)).toBe(0);
    expect(proc.close(fd)).toBe(0);
    expect(host.internalErrors).toBe(0);
  });

  it('DMA through the guest stage 1: a changed stage-1 PTE is not seen (stale IOTLB) until IOMMU_HWPT_INVALIDATE with an iommu_hwpt_vtd_s1_invalidate entry', () => {
    const { host, proc, fd, devid, parent, s1Data, dev, put, ram, ioas } = vtdNesting();
    const nested = hwptAlloc(proc, fd, vtdNestedFields(devid, parent, s1Data()));
    expect(nested.rc).toBe(0);
    // Before any attach the device is blocked.
    expect(host.deviceDma(GPU, { iova: GVA, length: 4 })?.status).toBe('fault');
    expect(vfioAttach(proc, dev, nested.id)).toEqual({ rc: 0, ptId: nested.id });
    expect(usersOf(proc, fd, nested.id)).toBe(1);
    expect(destroy(proc, fd, nested.id)).toBe(-EBUSY);
    const pageA = pattern(4096, 1);
    const pageB = pattern(4096, 2);
    expect(read(host, GVA + 0x40n, 64)).toEqual(pageA.subarray(0x40, 0x80));
    // The guest remaps GVA to page B in its own table (process memory).
    put(PT, PAGE_B | LEAF);
    expect(read(host, GVA + 0x40n, 64)).toEqual(pageA.subarray(0x40, 0x80));
    const stale = host.deviceDma(GPU, { iova: GVA, length: 8 });
    expect(stale?.status === 'done' && stale.cachedPages).toBe(1);
    // Invalidation errors first: nothing is flushed.
    const badFlags = vtdEntries(proc, [{ addr: GVA, npages: 1n, flags: 2 }]);
    expect(invalidate(proc, fd, vtdInv(nested.id, badFlags, 1))).toEqual({
      rc: -EOPNOTSUPP,
      entryNum: 0,
    });
    const badReserved = vtdEntries(proc, [{ addr: GVA, npages: 1n, __reserved: 1 }]);
    expect(invalidate(proc, fd, vtdInv(nested.id, badReserved, 1))).toEqual({
      rc: -EOPNOTSUPP,
      entryNum: 0,
    });
    const misaligned = vtdEntries(proc, [{ addr: GVA + 8n, npages: 1n }]);
    expect(invalidate(proc, fd, vtdInv(nested.id, misaligned, 1))).toEqual({
      rc: -EINVAL,
      entryNum: 0,
    });
    const allWithAddr = vtdEntries(proc, [{ addr: GVA, npages: U64_MAX }]);
    expect(invalidate(proc, fd, vtdInv(nested.id, allWithAddr, 1))).toEqual({
      rc: -EINVAL,
      entryNum: 0,
    });
    const good = vtdEntries(proc, [{ addr: GVA, npages: 1n, flags: IOMMU_VTD_INV_FLAGS_LEAF }]);
    expect(
      invalidate(proc, fd, {
        ...vtdInv(nested.id, good, 1),
        data_type: IOMMU_HWPT_INVALIDATE_DATA_SELFTEST,
      }),
    ).toEqual({ rc: -EINVAL, entryNum: 0 });
    expect(
      invalidate(proc, fd, { ...vtdInv(nested.id, good, 1), entry_len: VTD_INV_LEN + 1 }),
    ).toEqual({
      rc: -EINVAL,
      entryNum: 0,
    });
    // The parent is not invalidated through this ioctl.
    expect(invalidate(proc, fd, vtdInv(parent, good, 1))).toEqual({ rc: -EINVAL, entryNum: 0 });
    expect(read(host, GVA + 0x40n, 64)).toEqual(pageA.subarray(0x40, 0x80));
    // An invalidation of another page leaves this one cached.
    const elsewhere = vtdEntries(proc, [{ addr: GVA + 0x200000n, npages: 1n }]);
    expect(invalidate(proc, fd, vtdInv(nested.id, elsewhere, 1))).toEqual({ rc: 0, entryNum: 1 });
    expect(read(host, GVA + 0x40n, 64)).toEqual(pageA.subarray(0x40, 0x80));
    // The guest's invalidation: the next DMA walks the new PTE.
    expect(invalidate(proc, fd, vtdInv(nested.id, good, 1))).toEqual({ rc: 0, entryNum: 1 });
    expect(read(host, GVA + 0x40n, 64)).toEqual(pageB.subarray(0x40, 0x80));
    // A DMA write through the nested translation lands in page B of guest RAM.
    const w = host.deviceDma(GPU, { iova: GVA + 0x100n, data: new Uint8Array([9, 8, 7]) });
    expect(w?.status).toBe('done');
    expect(proc.readMemory(ram + PAGE_B + 0x100n, 3)).toEqual(new Uint8Array([9, 8, 7]));
    // Back to page A; flush everything (addr 0, npages U64_MAX) in a 2-entry array
    // whose 2nd entry is bad: entry_num 1, and the flush of the 1st took effect.
    put(PT, PAGE_A | LEAF);
    const pair = vtdEntries(proc, [
      { addr: 0n, npages: U64_MAX },
      { addr: 1n, npages: 1n },
    ]);
    expect(invalidate(proc, fd, vtdInv(nested.id, pair, 2))).toEqual({ rc: -EINVAL, entryNum: 1 });
    expect(read(host, GVA + 0x40n, 64)).toEqual(pageA.subarray(0x40, 0x80));
    // The nested attachment enforces the device's reserved region on the parent's IOAS.
    expect(
      proc
        .inspect(fd)
        ?.ioas.find((i) => i.id === ioas)
        ?.reserved.some((r) => r.start === 0xfee00000n),
    ).toBe(true);
    expect(proc.close(dev)).toBe(0);
    expect(proc.close(fd)).toBe(0);
    expect(host.pinnedPages()).toBe(0);
    expect(host.internalErrors).toBe(0);
  });

  it("the RID's reserved regions follow the nested HWPT's parent IOAS (find_hwpt_paging): kept on auto → nested in one IOAS, moved with a nested HWPT on another IOAS, dropped on detach", () => {
    const { host, proc, fd, devid, parent, s1Data, dev, ioas } = vtdNesting();
    const msi = (id: number) =>
      (proc.inspect(fd)?.ioas.find((i) => i.id === id)?.reserved ?? []).filter(
        (r) => r.start === 0xfee00000n && r.last === 0xfeefffffn,
      ).length;
    const nested = hwptAlloc(proc, fd, vtdNestedFields(devid, parent, s1Data()));
    expect(nested.rc).toBe(0);
    expect(msi(ioas)).toBe(0);
    // Automatic HWPT first, then replace (VFIO attach on an attached RID) onto the nested one.
    const auto = vfioAttach(proc, dev, ioas);
    expect(auto.rc).toBe(0);
    expect(msi(ioas)).toBe(1);
    expect(vfioAttach(proc, dev, nested.id)).toEqual({ rc: 0, ptId: nested.id });
    expect(msi(ioas)).toBe(1);
    // The window stays unusable for FIXED maps while the device is on the nested HWPT.
    const buf = proc.mmap(PAGE);
    expect(map(proc, fd, ioas, buf, PAGE, 0xfee00000n).rc).toBe(-EINVAL);
    // A second IOAS with its own nest parent and nested HWPT: the region moves there.
    const ioas2 = ioasAlloc(proc, fd);
    const parent2 = pagingHwpt(proc, fd, devid, ioas2, IOMMU_HWPT_ALLOC_NEST_PARENT);
    const nested2 = hwptAlloc(proc, fd, vtdNestedFields(devid, parent2, s1Data()));
    expect(vfioAttach(proc, dev, nested2.id)).toEqual({ rc: 0, ptId: nested2.id });
    expect([msi(ioas), msi(ioas2)]).toEqual([0, 1]);
    expect(map(proc, fd, ioas, buf, PAGE, 0xfee00000n).rc).toBe(0);
    // Back to the first nested HWPT: the window is mapped there now, so the move fails
    // (EADDRINUSE) and the device stays where it was.
    expect(vfioAttach(proc, dev, nested.id).rc).toBe(-EADDRINUSE);
    expect([msi(ioas), msi(ioas2)]).toEqual([0, 1]);
    expect(usersOf(proc, fd, nested2.id)).toBe(1);
    expect(vfioDetach(proc, dev)).toBe(0);
    expect([msi(ioas), msi(ioas2)]).toEqual([0, 0]);
    expect(usersOf(proc, fd, nested2.id)).toBe(0);
    expect(proc.close(dev)).toBe(0);
    expect(proc.close(fd)).toBe(0);
    expect(host.pinnedPages()).toBe(0);
    expect(host.internalErrors).toBe(0);
  });

  it('IOAS_UNMAP of guest RAM from the parent (stage 2) flushes the nested domain too: the next DMA faults at stage 2 without any stage-1 invalidation', () => {
    const { host, proc, fd, devid, parent, s1Data, dev, ioas } = vtdNesting();
    const nested = hwptAlloc(proc, fd, vtdNestedFields(devid, parent, s1Data()));
    expect(vfioAttach(proc, dev, nested.id).rc).toBe(0);
    expect(read(host, GVA, 16)).toEqual(pattern(4096, 1).subarray(0, 16));
    const cached = host.deviceDma(GPU, { iova: GVA, length: 16 });
    expect(cached?.status === 'done' && cached.cachedPages).toBe(1);
    expect(unmap(proc, fd, ioas, 0n, GUEST_RAM)).toEqual({ rc: 0, length: GUEST_RAM });
    const after = host.deviceDma(GPU, { iova: GVA, length: 16 });
    expect(after?.status).toBe('fault');
    expect(after !== undefined && 'fault' in after ? after.fault.stage : -1).toBe(2);
    expect(host.pinnedPages()).toBe(0);
    expect(proc.close(dev)).toBe(0);
    expect(proc.close(fd)).toBe(0);
    expect(host.internalErrors).toBe(0);
  });
});

describe('2.13 on SMMUv3 and AMD hosts', () => {
  it('SMMUv3: a NEST_PARENT HWPT works, but a nested HWPT on a HWPT → EOPNOTSUPP (6.17 nests only through a vIOMMU)', () => {
    const { host, proc, fd, dev, devid, ioas } = vfioHost('smmuv3');
    const parent = hwptAlloc(proc, fd, {
      dev_id: devid,
      pt_id: ioas,
      flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
    });
    expect(parent.rc).toBe(0);
    const ste = proc.mmap(PAGE);
    const before = objectsOf(proc, fd);
    for (const dataType of [IOMMU_HWPT_DATA_ARM_SMMUV3, IOMMU_HWPT_DATA_SELFTEST]) {
      expect(
        hwptAlloc(proc, fd, {
          dev_id: devid,
          pt_id: parent.id,
          data_type: dataType,
          data_len: 16,
          data_uptr: ste,
        }).rc,
      ).toBe(-EOPNOTSUPP);
    }
    expect(proc.lastError()?.reason).toMatch(/vIOMMU/);
    expect(objectsOf(proc, fd)).toEqual(before);
    // The parent is an ordinary paging HWPT for the device.
    expect(vfioAttach(proc, dev, parent.id)).toEqual({ rc: 0, ptId: parent.id });
    expect(proc.close(dev)).toBe(0);
    expect(proc.close(fd)).toBe(0);
    expect(host.internalErrors).toBe(0);
  });

  it('AMD: NEST_PARENT → EOPNOTSUPP; a plain paging HWPT works; any user data → EOPNOTSUPP', () => {
    const { host, proc, fd, dev, devid, ioas } = vfioHost('amd');
    const before = objectsOf(proc, fd);
    expect(
      hwptAlloc(proc, fd, { dev_id: devid, pt_id: ioas, flags: IOMMU_HWPT_ALLOC_NEST_PARENT }).rc,
    ).toBe(-EOPNOTSUPP);
    const data = proc.mmap(PAGE);
    expect(
      hwptAlloc(proc, fd, {
        dev_id: devid,
        pt_id: ioas,
        data_type: IOMMU_HWPT_DATA_VTD_S1,
        data_len: VTD_S1_LEN,
        data_uptr: data,
      }).rc,
    ).toBe(-EOPNOTSUPP);
    expect(objectsOf(proc, fd)).toEqual(before);
    const plain = pagingHwpt(proc, fd, devid, ioas, 0);
    // AMD has no domain_alloc_nested in 6.17: EOPNOTSUPP comes before the core's parent check.
    expect(
      hwptAlloc(proc, fd, {
        dev_id: devid,
        pt_id: plain,
        data_type: IOMMU_HWPT_DATA_VTD_S1,
        data_len: VTD_S1_LEN,
        data_uptr: data,
      }).rc,
    ).toBe(-EOPNOTSUPP);
    expect(vfioAttach(proc, dev, plain)).toEqual({ rc: 0, ptId: plain });
    expect(proc.close(dev)).toBe(0);
    expect(proc.close(fd)).toBe(0);
    expect(host.internalErrors).toBe(0);
  });
});
