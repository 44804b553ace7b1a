/**
 * PASID attachments (kernel-semantics.md 1.9 and 2.17, catalog 164–175): the
 * selftest fixture iommufd_device_pasid (variants no_pasid and has_pasid,
 * test pasid_attach) through the PASID test ops, and VFIO's
 * VFIO_DEVICE_ATTACH/DETACH_IOMMUFD_PT with the PASID flag on a VT-d host,
 * where DMA tagged with the PASID goes through the PASID's HWPT.
 */
import {
  EBUSY,
  EINVAL,
  ENOENT,
  ENOMEM,
  EOPNOTSUPP,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_PGFAULT_FLAGS_PASID_VALID,
  IOMMU_TEST_OP_PASID_ATTACH,
  IOMMU_TEST_OP_PASID_CHECK_HWPT,
  IOMMU_TEST_OP_PASID_DETACH,
  IOMMU_TEST_OP_PASID_REPLACE,
  IOMMU_TEST_OP_TRIGGER_IOPF,
  MOCK_FLAGS_DEVICE_PASID,
  structs,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_ATTACH_PASID,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
  VFIO_DEVICE_DETACH_PASID,
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
} from './helpers.js';

const IOTLB_DEFAULT = 0xbadbeef;

// ---- ioctl helpers (real struct bytes) ---------------------------------------------

/** IOMMU_HWPT_ALLOC, with mock selftest data when `iotlb` is given. */
function hwptAlloc(
  proc: Process,
  fd: number,
  devId: number,
  ptId: number,
  flags: number,
  opts: { iotlb?: number; faultId?: number } = {},
): { rc: number; id: number } {
  let uptr = 0n;
  let len = 0;
  if (opts.iotlb !== undefined) {
    const data = structs.iommu_hwpt_selftest.encode({ iotlb: opts.iotlb });
    uptr = proc.mmap(4096);
    expect(proc.writeMemory(uptr, data)).toBe(0);
    len = data.length;
  }
  const b = structs.iommu_hwpt_alloc.encode({
    size: 48,
    flags,
    dev_id: devId,
    pt_id: ptId,
    data_type: len > 0 ? IOMMU_HWPT_DATA_SELFTEST : 0,
    data_len: len,
    data_uptr: uptr,
    fault_id: opts.faultId ?? 0,
  });
  const rc = proc.ioctl(fd, IOMMU_HWPT_ALLOC, b);
  return { rc, id: structs.iommu_hwpt_alloc.decode(b).out_hwpt_id };
}

/** PASID_ATTACH or PASID_REPLACE; returns rc and the pt_id written back. */
function pasidAttach(
  proc: Process,
  fd: number,
  stdevId: number,
  pasid: number,
  ptId: number,
  replace = false,
): { rc: number; ptId: number } {
  const { rc, out } = testCmd(proc, fd, {
    op: replace ? IOMMU_TEST_OP_PASID_REPLACE : IOMMU_TEST_OP_PASID_ATTACH,
    id: stdevId,
    pasid_attach: { pasid, pt_id: ptId },
  });
  return { rc, ptId: out.pasid_attach.pt_id };
}

function pasidDetach(proc: Process, fd: number, stdevId: number, pasid: number): number {
  return testCmd(proc, fd, {
    op: IOMMU_TEST_OP_PASID_DETACH,
    id: stdevId,
    pasid_detach: { pasid },
  }).rc;
}

/** PASID_CHECK_HWPT: 0 when `pasid` is on `hwptId`'s domain (hwptId 0: on nothing). */
function pasidCheck(
  proc: Process,
  fd: number,
  stdevId: number,
  pasid: number,
  hwptId: number,
): number {
  return testCmd(proc, fd, {
    op: IOMMU_TEST_OP_PASID_CHECK_HWPT,
    id: stdevId,
    pasid_check: { pasid, hwpt_id: hwptId },
  }).rc;
}

function usersOf(proc: Process, fd: number, id: number): number | undefined {
  return proc.inspect(fd)?.objects.find((o) => o.id === id)?.users;
}

function objectList(proc: Process, fd: number): string[] {
  return (proc.inspect(fd)?.objects ?? []).map((o) => `${o.id}:${o.type}`);
}

// ---- 2.17: iommufd_device_pasid ---------------------------------------------------

/**
 * FIXTURE_SETUP(iommufd_device_pasid): an IOAS, a PASID-capable mock device
 * on it and, for no_pasid, a second mock device without PASIDs. Then the
 * HWPTs pasid_attach allocates: a NEST_PARENT, two PASID-compatible nested
 * HWPTs on it, and a PASID-compatible paging HWPT (s2).
 */
function pasidFixture(pasidCapable: boolean) {
  const { host, proc, fd } = setup();
  const ioas = ioasAlloc(proc, fd);
  const dev = mockDomain(proc, fd, ioas, MOCK_FLAGS_DEVICE_PASID);
  expect(dev.rc).toBe(0);
  const noPasid = pasidCapable ? undefined : mockDomain(proc, fd, ioas, 0);
  if (noPasid !== undefined) expect(noPasid.rc).toBe(0);
  const parent = hwptAlloc(proc, fd, dev.idevId, ioas, IOMMU_HWPT_ALLOC_NEST_PARENT);
  expect(parent.rc).toBe(0);
  const nested = [0, 1].map(() => {
    const n = hwptAlloc(proc, fd, dev.idevId, parent.id, IOMMU_HWPT_ALLOC_PASID, {
      iotlb: IOTLB_DEFAULT,
    });
    expect(n.rc).toBe(0);
    return n.id;
  }) as [number, number];
  const s2 = hwptAlloc(proc, fd, dev.idevId, ioas, IOMMU_HWPT_ALLOC_PASID);
  expect(s2.rc).toBe(0);
  return { host, proc, fd, ioas, dev, noPasid, parent: parent.id, nested, s2: s2.id };
}

describe('2.17 iommufd_device_pasid', () => {
  for (const pasidCapable of [false, true]) {
    const variant = pasidCapable ? 'has_pasid' : 'no_pasid';
    it(`164-175: pasid_attach (${variant}) as the selftest runs it`, () => {
      const { host, proc, fd, ioas, dev, noPasid, parent, nested, s2 } = pasidFixture(pasidCapable);
      const attach = (pasid: number, pt: number) => pasidAttach(proc, fd, dev.stdevId, pasid, pt);
      const replace = (pasid: number, pt: number) =>
        pasidAttach(proc, fd, dev.stdevId, pasid, pt, true);
      const check = (pasid: number, hwpt: number) => pasidCheck(proc, fd, dev.stdevId, pasid, hwpt);
      let pasid = 100;

      // 164: detaching a PASID that was never attached.
      expect(pasidDetach(proc, fd, dev.stdevId, pasid)).toBe(0);

      // The fault HWPT of the selftest (nested, PASID-compatible, IOPF-capable).
      const faultCmd = structs.iommu_fault_alloc.encode({ size: 16 });
      expect(proc.ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, faultCmd)).toBe(0);
      const fault = structs.iommu_fault_alloc.decode(faultCmd);
      const iopfHwpt = hwptAlloc(
        proc,
        fd,
        dev.idevId,
        parent,
        IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID,
        { iotlb: IOTLB_DEFAULT, faultId: fault.out_fault_id },
      );
      expect(iopfHwpt.rc).toBe(0);

      // 165: RID on a non-PASID-compatible HWPT, then a PASID attach fails.
      expect(mockReplace(proc, fd, dev.stdevId, parent)).toEqual({ rc: 0, ptId: parent });
      expect(attach(pasid, s2).rc).toBe(-EINVAL);
      // 166: RID on a compatible HWPT, then a nested compatible HWPT attaches.
      expect(mockReplace(proc, fd, dev.stdevId, s2)).toEqual({ rc: 0, ptId: s2 });
      expect(attach(pasid, nested[0])).toEqual({ rc: 0, ptId: nested[0] });
      // 167: and now the RID may not go to a non-compatible HWPT.
      expect(mockReplace(proc, fd, dev.stdevId, parent).rc).toBe(-EINVAL);
      expect(check(0, s2)).toBe(0);
      expect(pasidDetach(proc, fd, dev.stdevId, pasid)).toBe(0);
      expect(check(pasid, 0)).toBe(0);

      if (noPasid !== undefined) {
        // 174: a PASID-compatible HWPT may serve a device's RID without PASIDs ...
        expect(mockReplace(proc, fd, noPasid.stdevId, nested[0])).toEqual({
          rc: 0,
          ptId: nested[0],
        });
        expect(mockReplace(proc, fd, noPasid.stdevId, ioas).rc).toBe(0);
        // ... but its PASIDs take nothing, compatible or not.
        expect(pasidAttach(proc, fd, noPasid.stdevId, pasid, parent).rc).toBe(-EINVAL);
        expect(pasidAttach(proc, fd, noPasid.stdevId, pasid, s2).rc).toBe(-EINVAL);
      }

      // 168: a HWPT without ALLOC_PASID → EINVAL, the PASID stays empty.
      expect(attach(pasid, parent).rc).toBe(-EINVAL);
      expect(check(pasid, 0)).toBe(0);
      // 169: an IOAS (its automatic HWPT is not PASID-compatible) → EINVAL.
      expect(attach(pasid, ioas).rc).toBe(-EINVAL);
      expect(check(pasid, 0)).toBe(0);
      // The paging s2 attaches.
      expect(attach(pasid, s2)).toEqual({ rc: 0, ptId: s2 });
      expect(check(pasid, s2)).toBe(0);
      // 170: attach does not overwrite.
      expect(attach(pasid, nested[0]).rc).toBe(-EBUSY);
      expect(pasidDetach(proc, fd, dev.stdevId, pasid)).toBe(0);
      expect(check(pasid, 0)).toBe(0);
      expect(attach(pasid, nested[0])).toEqual({ rc: 0, ptId: nested[0] });
      expect(check(pasid, nested[0])).toBe(0);
      expect(attach(pasid, nested[0]).rc).toBe(-EBUSY);
      expect(pasidDetach(proc, fd, dev.stdevId, pasid)).toBe(0);

      // 171: replace needs an attached PASID; replace with an IOAS keeps the old HWPT.
      pasid = 200;
      expect(replace(pasid, s2).rc).toBe(-EINVAL);
      expect(attach(pasid, s2)).toEqual({ rc: 0, ptId: s2 });
      expect(check(pasid, s2)).toBe(0);
      expect(replace(pasid, ioas).rc).toBe(-EINVAL);
      expect(check(pasid, s2)).toBe(0);
      // 172: paging → nested → nested.
      expect(replace(pasid, nested[0])).toEqual({ rc: 0, ptId: nested[0] });
      expect(check(pasid, nested[0])).toBe(0);
      expect(replace(pasid, nested[1])).toEqual({ rc: 0, ptId: nested[1] });
      expect(check(pasid, nested[1])).toBe(0);
      expect(pasidDetach(proc, fd, dev.stdevId, pasid)).toBe(0);

      // 173: pasid 1024, the mock's second call into set_dev_pasid fails; the old HWPT stays.
      pasid = 1024;
      expect(attach(pasid, s2)).toEqual({ rc: 0, ptId: s2 });
      expect(check(pasid, s2)).toBe(0);
      expect(replace(pasid, nested[0]).rc).toBe(-ENOMEM);
      expect(check(pasid, s2)).toBe(0);
      expect(pasidDetach(proc, fd, dev.stdevId, pasid)).toBe(0);

      // 175: an IOPF on pasid 2048 of the fault HWPT is delivered and answered.
      pasid = 2048;
      expect(attach(pasid, iopfHwpt.id)).toEqual({ rc: 0, ptId: iopfHwpt.id });
      expect(check(pasid, iopfHwpt.id)).toBe(0);
      expect(
        testCmd(proc, fd, {
          op: IOMMU_TEST_OP_TRIGGER_IOPF,
          trigger_iopf: { dev_id: dev.idevId, pasid, grpid: 2, perm: 3, addr: 0xdeadbeafn },
        }).rc,
      ).toBe(0);
      const record = new Uint8Array(structs.iommu_hwpt_pgfault.sizeof);
      expect(proc.read(fault.out_fault_fd, record)).toBe(record.length);
      const pgfault = structs.iommu_hwpt_pgfault.decode(record);
      expect(pgfault).toMatchObject({ dev_id: dev.idevId, pasid, grpid: 2, perm: 3 });
      expect(pgfault.flags & IOMMU_PGFAULT_FLAGS_PASID_VALID).toBe(IOMMU_PGFAULT_FLAGS_PASID_VALID);
      const response = structs.iommu_hwpt_page_response.encode({ cookie: pgfault.cookie, code: 0 });
      expect(proc.write(fault.out_fault_fd, response)).toBe(response.length);
      expect(replace(pasid, s2)).toEqual({ rc: 0, ptId: s2 });
      expect(check(pasid, s2)).toBe(0);
      expect(pasidDetach(proc, fd, dev.stdevId, pasid)).toBe(0);
      expect(destroy(proc, fd, iopfHwpt.id)).toBe(0);
      expect(proc.close(fault.out_fault_fd)).toBe(0);
      expect(destroy(proc, fd, fault.out_fault_id)).toBe(0);

      // Detach the s2 HWPT from the RID.
      expect(mockReplace(proc, fd, dev.stdevId, ioas).rc).toBe(0);
      closeAndCheck(host, proc, fd);
    });
  }

  it('164: PASID_DETACH of a never-attached PASID → 0 (also pasid 0, and on a device without PASIDs); a non-selftest id → ENOENT', () => {
    const { host, proc, fd, ioas, dev } = pasidFixture(true);
    const plain = mockDomain(proc, fd, ioas);
    expect(plain.rc).toBe(0);
    for (const pasid of [1, 100, 0xfffff, 0xffffffff]) {
      expect(pasidDetach(proc, fd, dev.stdevId, pasid)).toBe(0);
      expect(pasidDetach(proc, fd, plain.stdevId, pasid)).toBe(0);
    }
    for (const id of [0, ioas, dev.idevId, 999]) {
      expect(pasidDetach(proc, fd, id, 100)).toBe(-ENOENT);
      expect(pasidAttach(proc, fd, id, 100, ioas).rc).toBe(-ENOENT);
      expect(pasidCheck(proc, fd, id, 100, 0)).toBe(-ENOENT);
    }
    closeAndCheck(host, proc, fd);
  });

  it('165/168/169: a refused PASID attach leaves nothing behind: no attachment, no new object, the HWPT use counts unchanged', () => {
    const { host, proc, fd, ioas, dev, parent, s2 } = pasidFixture(true);
    const before = objectList(proc, fd);
    const s2Users = usersOf(proc, fd, s2);
    // 165: RID on its automatic HWPT (not PASID-compatible).
    expect(pasidAttach(proc, fd, dev.stdevId, 7, s2).rc).toBe(-EINVAL);
    // 168 and 169.
    expect(mockReplace(proc, fd, dev.stdevId, s2).rc).toBe(0);
    const s2UsersRid = usersOf(proc, fd, s2);
    expect(pasidAttach(proc, fd, dev.stdevId, 7, parent).rc).toBe(-EINVAL);
    expect(pasidAttach(proc, fd, dev.stdevId, 7, ioas).rc).toBe(-EINVAL);
    expect(pasidCheck(proc, fd, dev.stdevId, 7, 0)).toBe(0);
    expect(usersOf(proc, fd, s2)).toBe(s2UsersRid);
    expect(usersOf(proc, fd, parent)).toBe(2); // its two nested children hold it
    // Only the RID's old automatic HWPT went away (its last user moved to s2).
    expect(objectList(proc, fd)).toEqual(before.filter((o) => o !== `${dev.hwptId}:HWPT_PAGING`));
    expect(s2Users).toBe(0);
    // Unknown and non-HWPT targets.
    expect(pasidAttach(proc, fd, dev.stdevId, 7, 999).rc).toBe(-ENOENT);
    expect(pasidAttach(proc, fd, dev.stdevId, 7, dev.idevId).rc).toBe(-EINVAL);
    expect(pasidAttach(proc, fd, dev.stdevId, 7, dev.stdevId).rc).toBe(-EINVAL);
    expect(pasidCheck(proc, fd, dev.stdevId, 7, 0)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('166/172: an attached PASID holds a reference on its HWPT (destroy → EBUSY); replace moves it; detach drops it', () => {
    const { host, proc, fd, dev, nested, s2 } = pasidFixture(true);
    expect(mockReplace(proc, fd, dev.stdevId, s2).rc).toBe(0);
    expect(usersOf(proc, fd, nested[0])).toBe(0);
    expect(pasidAttach(proc, fd, dev.stdevId, 5, nested[0])).toEqual({ rc: 0, ptId: nested[0] });
    expect(usersOf(proc, fd, nested[0])).toBe(1);
    expect(destroy(proc, fd, nested[0])).toBe(-EBUSY);
    // Replace with the HWPT it is on: nothing changes.
    expect(pasidAttach(proc, fd, dev.stdevId, 5, nested[0], true)).toEqual({
      rc: 0,
      ptId: nested[0],
    });
    expect(usersOf(proc, fd, nested[0])).toBe(1);
    expect(pasidAttach(proc, fd, dev.stdevId, 5, nested[1], true)).toEqual({
      rc: 0,
      ptId: nested[1],
    });
    expect(usersOf(proc, fd, nested[0])).toBe(0);
    expect(usersOf(proc, fd, nested[1])).toBe(1);
    expect(destroy(proc, fd, nested[0])).toBe(0);
    // Two PASIDs on one HWPT, each a user.
    expect(pasidAttach(proc, fd, dev.stdevId, 6, nested[1]).rc).toBe(0);
    expect(usersOf(proc, fd, nested[1])).toBe(2);
    expect(pasidCheck(proc, fd, dev.stdevId, 5, nested[1])).toBe(0);
    expect(pasidCheck(proc, fd, dev.stdevId, 6, nested[1])).toBe(0);
    expect(pasidCheck(proc, fd, dev.stdevId, 5, s2)).toBe(-EINVAL);
    expect(pasidDetach(proc, fd, dev.stdevId, 5)).toBe(0);
    expect(usersOf(proc, fd, nested[1])).toBe(1);
    expect(pasidDetach(proc, fd, dev.stdevId, 5)).toBe(0);
    expect(usersOf(proc, fd, nested[1])).toBe(1);
    // Destroying the selftest device detaches its PASIDs too.
    expect(destroy(proc, fd, dev.stdevId)).toBe(0);
    expect(usersOf(proc, fd, nested[1])).toBe(0);
    expect(usersOf(proc, fd, s2)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('167: with a PASID attached the RID may move between PASID-compatible HWPTs but not to a non-compatible one (EINVAL, the RID stays); after the detach it may', () => {
    const { host, proc, fd, ioas, dev, parent, nested, s2 } = pasidFixture(true);
    expect(mockReplace(proc, fd, dev.stdevId, s2).rc).toBe(0);
    expect(pasidAttach(proc, fd, dev.stdevId, 9, s2).rc).toBe(0);
    const s2b = hwptAlloc(proc, fd, dev.idevId, ioas, IOMMU_HWPT_ALLOC_PASID);
    expect(s2b.rc).toBe(0);
    expect(mockReplace(proc, fd, dev.stdevId, s2b.id)).toEqual({ rc: 0, ptId: s2b.id });
    expect(mockReplace(proc, fd, dev.stdevId, nested[0])).toEqual({ rc: 0, ptId: nested[0] });
    for (const pt of [parent, ioas]) {
      expect(mockReplace(proc, fd, dev.stdevId, pt).rc).toBe(-EINVAL);
      expect(pasidCheck(proc, fd, dev.stdevId, 0, nested[0])).toBe(0);
    }
    expect(pasidCheck(proc, fd, dev.stdevId, 9, s2)).toBe(0);
    expect(pasidDetach(proc, fd, dev.stdevId, 9)).toBe(0);
    expect(mockReplace(proc, fd, dev.stdevId, parent)).toEqual({ rc: 0, ptId: parent });
    expect(pasidCheck(proc, fd, dev.stdevId, 0, parent)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('170: an attached PASID answers EBUSY to attach before any compatibility check (even for an incompatible HWPT or an IOAS)', () => {
    const { host, proc, fd, ioas, dev, parent, nested, s2 } = pasidFixture(true);
    expect(mockReplace(proc, fd, dev.stdevId, s2).rc).toBe(0);
    expect(pasidAttach(proc, fd, dev.stdevId, 3, nested[0]).rc).toBe(0);
    for (const pt of [nested[0], nested[1], s2, parent]) {
      expect(pasidAttach(proc, fd, dev.stdevId, 3, pt).rc).toBe(-EBUSY);
      expect(proc.lastError()?.name).toBe('EBUSY');
    }
    // An IOAS is tried against its automatic HWPT and a new one: EBUSY too.
    expect(pasidAttach(proc, fd, dev.stdevId, 3, ioas).rc).toBe(-EBUSY);
    expect(pasidCheck(proc, fd, dev.stdevId, 3, nested[0])).toBe(0);
    // pasid 0 is the RID, which is attached as well.
    expect(pasidAttach(proc, fd, dev.stdevId, 0, s2).rc).toBe(-EBUSY);
    closeAndCheck(host, proc, fd);
  });

  it('171: replace of an unattached PASID → EINVAL; a failed replace (IOAS, incompatible HWPT) keeps the old HWPT and its reference', () => {
    const { host, proc, fd, ioas, dev, parent, nested, s2 } = pasidFixture(true);
    expect(mockReplace(proc, fd, dev.stdevId, s2).rc).toBe(0);
    for (const pt of [s2, nested[0], ioas, parent]) {
      expect(pasidAttach(proc, fd, dev.stdevId, 11, pt, true).rc).toBe(-EINVAL);
    }
    expect(pasidCheck(proc, fd, dev.stdevId, 11, 0)).toBe(0);
    expect(pasidAttach(proc, fd, dev.stdevId, 11, nested[0]).rc).toBe(0);
    for (const pt of [ioas, parent]) {
      expect(pasidAttach(proc, fd, dev.stdevId, 11, pt, true).rc).toBe(-EINVAL);
      expect(pasidCheck(proc, fd, dev.stdevId, 11, nested[0])).toBe(0);
      expect(usersOf(proc, fd, nested[0])).toBe(1);
    }
    expect(pasidAttach(proc, fd, dev.stdevId, 11, 999, true).rc).toBe(-ENOENT);
    expect(pasidCheck(proc, fd, dev.stdevId, 11, nested[0])).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('173: pasid 1024 fails every second call into the mock driver: replace → ENOMEM with the old HWPT kept; the next replace succeeds; a detach resets it', () => {
    const { host, proc, fd, dev, nested, s2 } = pasidFixture(true);
    expect(mockReplace(proc, fd, dev.stdevId, s2).rc).toBe(0);
    const P = 1024;
    expect(pasidAttach(proc, fd, dev.stdevId, P, s2)).toEqual({ rc: 0, ptId: s2 });
    const s2Users = usersOf(proc, fd, s2);
    expect(pasidAttach(proc, fd, dev.stdevId, P, nested[0], true).rc).toBe(-ENOMEM);
    expect(pasidCheck(proc, fd, dev.stdevId, P, s2)).toBe(0);
    expect(usersOf(proc, fd, s2)).toBe(s2Users);
    expect(usersOf(proc, fd, nested[0])).toBe(0);
    // A replace with the same HWPT never reaches the driver.
    expect(pasidAttach(proc, fd, dev.stdevId, P, s2, true).rc).toBe(0);
    // The failure cleared the flag: the third call succeeds and sets it again.
    expect(pasidAttach(proc, fd, dev.stdevId, P, nested[0], true)).toEqual({
      rc: 0,
      ptId: nested[0],
    });
    expect(pasidCheck(proc, fd, dev.stdevId, P, nested[0])).toBe(0);
    expect(pasidAttach(proc, fd, dev.stdevId, P, nested[1], true).rc).toBe(-ENOMEM);
    expect(pasidCheck(proc, fd, dev.stdevId, P, nested[0])).toBe(0);
    // Set again by a successful replace, then reset by the detach (blocking domain).
    expect(pasidAttach(proc, fd, dev.stdevId, P, nested[1], true).rc).toBe(0);
    expect(pasidDetach(proc, fd, dev.stdevId, P)).toBe(0);
    expect(pasidAttach(proc, fd, dev.stdevId, P, s2).rc).toBe(0);
    expect(pasidAttach(proc, fd, dev.stdevId, P, nested[0], true).rc).toBe(-ENOMEM);
    // Other PASIDs are not affected.
    expect(pasidAttach(proc, fd, dev.stdevId, 1023, s2).rc).toBe(0);
    expect(pasidAttach(proc, fd, dev.stdevId, 1023, nested[0], true).rc).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('173: pasid 1024: an attach the core refuses never reaches the driver, and each device has a flag of its own', () => {
    const { host, proc, fd, ioas, dev, parent, s2 } = pasidFixture(true);
    const other = mockDomain(proc, fd, ioas, MOCK_FLAGS_DEVICE_PASID);
    expect(other.rc).toBe(0);
    expect(mockReplace(proc, fd, dev.stdevId, s2).rc).toBe(0);
    expect(mockReplace(proc, fd, other.stdevId, s2).rc).toBe(0);
    // Refused by the core before the driver: the driver's flag is untouched.
    expect(pasidAttach(proc, fd, dev.stdevId, 1024, parent).rc).toBe(-EINVAL);
    expect(pasidAttach(proc, fd, dev.stdevId, 1024, s2).rc).toBe(0);
    // The second device has a flag of its own.
    expect(pasidAttach(proc, fd, other.stdevId, 1024, s2).rc).toBe(0);
    const s2b = hwptAlloc(proc, fd, dev.idevId, ioas, IOMMU_HWPT_ALLOC_PASID);
    expect(s2b.rc).toBe(0);
    expect(pasidAttach(proc, fd, other.stdevId, 1024, s2b.id, true).rc).toBe(-ENOMEM);
    expect(pasidAttach(proc, fd, dev.stdevId, 1024, s2b.id, true).rc).toBe(-ENOMEM);
    expect(pasidCheck(proc, fd, dev.stdevId, 1024, s2)).toBe(0);
    expect(pasidCheck(proc, fd, other.stdevId, 1024, s2)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('174: a device without PASIDs takes no PASID even with its RID on a PASID-compatible HWPT (the mock reports 1 PASID: pasid >= 1 is EINVAL)', () => {
    const { host, proc, fd, noPasid, nested, s2 } = pasidFixture(false);
    const dev = noPasid as NonNullable<typeof noPasid>;
    expect(mockReplace(proc, fd, dev.stdevId, s2)).toEqual({ rc: 0, ptId: s2 });
    for (const pt of [s2, nested[0]]) {
      expect(pasidAttach(proc, fd, dev.stdevId, 1, pt).rc).toBe(-EINVAL);
      expect(pasidCheck(proc, fd, dev.stdevId, 1, 0)).toBe(0);
    }
    expect(pasidAttach(proc, fd, dev.stdevId, 1, s2, true).rc).toBe(-EINVAL);
    closeAndCheck(host, proc, fd);
  });

  it('a PASID device has 2^20 PASIDs: pasid 0xfffff attaches, 0x100000 → EINVAL; pasid 0 of the test ops is the RID (replace and detach move the RID)', () => {
    const { host, proc, fd, dev, nested, s2 } = pasidFixture(true);
    expect(mockReplace(proc, fd, dev.stdevId, s2).rc).toBe(0);
    expect(pasidAttach(proc, fd, dev.stdevId, 0xfffff, nested[0]).rc).toBe(0);
    expect(pasidCheck(proc, fd, dev.stdevId, 0xfffff, nested[0])).toBe(0);
    expect(pasidAttach(proc, fd, dev.stdevId, 0x100000, nested[0]).rc).toBe(-EINVAL);
    expect(pasidAttach(proc, fd, dev.stdevId, 0xffffffff, nested[0]).rc).toBe(-EINVAL);
    expect(pasidCheck(proc, fd, dev.stdevId, 0x100000, 0)).toBe(0);
    expect(pasidDetach(proc, fd, dev.stdevId, 0xfffff)).toBe(0);
    // pasid 0: IOMMU_NO_PASID.
    expect(pasidCheck(proc, fd, dev.stdevId, 0, s2)).toBe(0);
    expect(pasidAttach(proc, fd, dev.stdevId, 0, nested[1], true)).toEqual({
      rc: 0,
      ptId: nested[1],
    });
    expect(pasidCheck(proc, fd, dev.stdevId, 0, nested[1])).toBe(0);
    expect(pasidDetach(proc, fd, dev.stdevId, 0)).toBe(0);
    expect(pasidCheck(proc, fd, dev.stdevId, 0, 0)).toBe(0);
    expect(usersOf(proc, fd, nested[1])).toBe(0);
    expect(mockReplace(proc, fd, dev.stdevId, s2).rc).toBe(-EINVAL); // nothing to replace
    expect(pasidAttach(proc, fd, dev.stdevId, 0, s2)).toEqual({ rc: 0, ptId: s2 });
    expect(pasidCheck(proc, fd, dev.stdevId, 0, s2)).toBe(0);
    closeAndCheck(host, proc, fd);
  });

  it('PASID_CHECK_HWPT: an unknown hwpt_id → ENOENT, a non-HWPT id → EINVAL, a HWPT other than the attached one → EINVAL', () => {
    const { host, proc, fd, ioas, dev, nested, s2 } = pasidFixture(true);
    expect(mockReplace(proc, fd, dev.stdevId, s2).rc).toBe(0);
    expect(pasidAttach(proc, fd, dev.stdevId, 4, nested[0]).rc).toBe(0);
    expect(pasidCheck(proc, fd, dev.stdevId, 4, 999)).toBe(-ENOENT);
    expect(pasidCheck(proc, fd, dev.stdevId, 4, ioas)).toBe(-EINVAL);
    expect(pasidCheck(proc, fd, dev.stdevId, 4, dev.idevId)).toBe(-EINVAL);
    expect(pasidCheck(proc, fd, dev.stdevId, 4, nested[1])).toBe(-EINVAL);
    expect(pasidCheck(proc, fd, dev.stdevId, 4, 0)).toBe(-EINVAL);
    expect(pasidCheck(proc, fd, dev.stdevId, 5, nested[0])).toBe(-EINVAL);
    // hwpt_id 0 for an empty PASID never looks the id up.
    expect(pasidCheck(proc, fd, dev.stdevId, 5, 0)).toBe(0);
    closeAndCheck(host, proc, fd);
  });
});

// ---- VFIO: PASID attach on a VT-d host --------------------------------------------

const BDF = '0000:01:00.0';
const IOVA = 0x200000n;
const PAGE = 4096;

function vfioAttachPt(
  proc: Process,
  dev: number,
  ptId: number,
  pasid?: number,
  argsz = 16,
  extraFlags = 0,
): { rc: number; ptId: number } {
  const b = structs.vfio_device_attach_iommufd_pt.encode({
    argsz,
    flags: (pasid === undefined ? 0 : VFIO_DEVICE_ATTACH_PASID) | extraFlags,
    pt_id: ptId,
    pasid: pasid ?? 0,
  });
  const rc = proc.ioctl(dev, VFIO_DEVICE_ATTACH_IOMMUFD_PT, b);
  return { rc, ptId: structs.vfio_device_attach_iommufd_pt.decode(b).pt_id };
}

function vfioDetachPt(proc: Process, dev: number, pasid?: number, argsz = 12): number {
  return proc.ioctl(
    dev,
    VFIO_DEVICE_DETACH_IOMMUFD_PT,
    structs.vfio_device_detach_iommufd_pt.encode({
      argsz,
      flags: pasid === undefined ? 0 : VFIO_DEVICE_DETACH_PASID,
      pasid: pasid ?? 0,
    }),
  );
}

/**
 * A VT-d host with a PCI device with 20 PASID bits bound through VFIO, and
 * three IOASes each mapping one page at IOVA to a page of its own.
 */
function vtdPasidFixture() {
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
  const spaces = [0, 1, 2].map(() => {
    const ioas = ioasAlloc(proc, fd);
    const page = proc.mmap(PAGE);
    expect(map(proc, fd, ioas, page, BigInt(PAGE), IOVA).rc).toBe(0);
    const hwpt = hwptAlloc(proc, fd, devId, ioas, IOMMU_HWPT_ALLOC_PASID);
    expect(hwpt.rc).toBe(0);
    return { ioas, page, hwpt: hwpt.id };
  });
  return { host, proc, fd, dev, devId, spaces };
}

/** Write `tag` at IOVA with or without a PASID; returns the DMA status. */
function dmaTag(host: Host, tag: number, pasid?: number): string | undefined {
  const data = new Uint8Array([tag, tag, tag, tag]);
  return host.deviceDma(
    BDF,
    pasid === undefined ? { iova: IOVA, data } : { iova: IOVA, data, pasid },
  )?.status;
}

/** The first byte of each IOAS's page. */
function tags(proc: Process, spaces: { page: bigint }[]): number[] {
  return spaces.map((s) => (proc.readMemory(s.page, 1) as Uint8Array)[0] as number);
}

function vtdClose(host: Host, proc: Process, fd: number, dev: number): void {
  expect(proc.close(dev)).toBe(0);
  closeAndCheck(host, proc, fd);
}

describe('VFIO_DEVICE_ATTACH/DETACH_IOMMUFD_PT with a PASID (VT-d)', () => {
  it("ATTACH_PASID attaches a PASID; DMA with the PASID goes through its HWPT, DMA without through the RID's; a second ATTACH of the PASID replaces; DETACH_PASID blocks it again", () => {
    const { host, proc, fd, dev, spaces } = vtdPasidFixture();
    const [a, b, c] = spaces as [(typeof spaces)[0], (typeof spaces)[0], (typeof spaces)[0]];
    expect(vfioAttachPt(proc, dev, a.hwpt)).toEqual({ rc: 0, ptId: a.hwpt });
    expect(vfioAttachPt(proc, dev, b.hwpt, 5)).toEqual({ rc: 0, ptId: b.hwpt });
    expect(dmaTag(host, 0x11)).toBe('done');
    expect(dmaTag(host, 0x22, 5)).toBe('done');
    expect(tags(proc, spaces)).toEqual([0x11, 0x22, 0]);
    // Another PASID is blocked.
    expect(dmaTag(host, 0x33, 6)).toBe('fault');
    expect(tags(proc, spaces)).toEqual([0x11, 0x22, 0]);
    // VFIO replaces an attached PASID (the selftest op would say EBUSY).
    expect(vfioAttachPt(proc, dev, c.hwpt, 5)).toEqual({ rc: 0, ptId: c.hwpt });
    expect(dmaTag(host, 0x44, 5)).toBe('done');
    expect(tags(proc, spaces)).toEqual([0x11, 0x22, 0x44]);
    expect(usersOf(proc, fd, b.hwpt)).toBe(0);
    expect(usersOf(proc, fd, c.hwpt)).toBe(1);
    // Detach: the PASID is blocked again, the RID still translates.
    expect(vfioDetachPt(proc, dev, 5, 16)).toBe(0);
    expect(usersOf(proc, fd, c.hwpt)).toBe(0);
    expect(dmaTag(host, 0x55, 5)).toBe('fault');
    expect(dmaTag(host, 0x66)).toBe('done');
    expect(tags(proc, spaces)).toEqual([0x66, 0x22, 0x44]);
    // Detaching a PASID never attached, or again, does nothing.
    expect(vfioDetachPt(proc, dev, 5, 16)).toBe(0);
    expect(vfioDetachPt(proc, dev, 77, 16)).toBe(0);
    vtdClose(host, proc, fd, dev);
  });

  it('ATTACH_PASID follows the iommufd PASID rules: an IOAS (automatic HWPT) or a HWPT without ALLOC_PASID → EINVAL; RID on a non-compatible HWPT → EINVAL; the RID cannot leave for one while a PASID is attached', () => {
    const { host, proc, fd, dev, devId, spaces } = vtdPasidFixture();
    const [a, b] = spaces as [(typeof spaces)[0], (typeof spaces)[0]];
    const plain = hwptAlloc(proc, fd, devId, a.ioas, 0);
    expect(plain.rc).toBe(0);
    // PASIDs may attach while the RID is detached.
    expect(vfioAttachPt(proc, dev, b.ioas, 3).rc).toBe(-EINVAL);
    expect(vfioAttachPt(proc, dev, plain.id, 3).rc).toBe(-EINVAL);
    // pt_id is not written back on failure.
    expect(vfioAttachPt(proc, dev, plain.id, 3).ptId).toBe(plain.id);
    expect(vfioAttachPt(proc, dev, b.hwpt, 3)).toEqual({ rc: 0, ptId: b.hwpt });
    expect(dmaTag(host, 0x21, 3)).toBe('done');
    // The RID cannot go to a HWPT without ALLOC_PASID (nor to an IOAS) now.
    expect(vfioAttachPt(proc, dev, plain.id).rc).toBe(-EINVAL);
    expect(vfioAttachPt(proc, dev, a.ioas).rc).toBe(-EINVAL);
    expect(dmaTag(host, 0x22)).toBe('fault'); // still blocked
    expect(vfioAttachPt(proc, dev, a.hwpt)).toEqual({ rc: 0, ptId: a.hwpt });
    expect(vfioDetachPt(proc, dev, 3, 16)).toBe(0);
    // With no PASID attached the RID may take the plain HWPT, and then no PASID attaches.
    expect(vfioAttachPt(proc, dev, plain.id)).toEqual({ rc: 0, ptId: plain.id });
    expect(vfioAttachPt(proc, dev, b.hwpt, 3).rc).toBe(-EINVAL);
    expect(dmaTag(host, 0x23, 3)).toBe('fault');
    expect(tags(proc, spaces)).toEqual([0, 0x21, 0]);
    // PASIDs outside the device's 20 bits.
    expect(vfioAttachPt(proc, dev, a.hwpt).rc).toBe(0);
    expect(vfioAttachPt(proc, dev, b.hwpt, 1 << 20).rc).toBe(-EINVAL);
    expect(vfioAttachPt(proc, dev, b.hwpt, (1 << 20) - 1).rc).toBe(0);
    expect(dmaTag(host, 0x24, (1 << 20) - 1)).toBe('done');
    expect(tags(proc, spaces)).toEqual([0, 0x24, 0]);
    vtdClose(host, proc, fd, dev);
  });

  it('the PASID flag needs argsz to cover the pasid field (EINVAL), unknown flags are EINVAL, and a failed PASID attach changes nothing', () => {
    const { host, proc, fd, dev, spaces } = vtdPasidFixture();
    const [a, b] = spaces as [(typeof spaces)[0], (typeof spaces)[0]];
    expect(vfioAttachPt(proc, dev, a.hwpt)).toEqual({ rc: 0, ptId: a.hwpt });
    expect(vfioAttachPt(proc, dev, b.hwpt, 8, 12).rc).toBe(-EINVAL);
    expect(vfioAttachPt(proc, dev, b.hwpt, 8, 15).rc).toBe(-EINVAL);
    expect(vfioAttachPt(proc, dev, b.hwpt, 8, 16, 2).rc).toBe(-EINVAL);
    expect(vfioAttachPt(proc, dev, b.hwpt, undefined, 16, 2).rc).toBe(-EINVAL);
    expect(dmaTag(host, 0x31, 8)).toBe('fault');
    // Without the flag a 12-byte argument is a RID attach (replace here).
    expect(vfioAttachPt(proc, dev, a.hwpt, undefined, 12)).toEqual({ rc: 0, ptId: a.hwpt });
    expect(vfioAttachPt(proc, dev, b.hwpt, 8, 20)).toEqual({ rc: 0, ptId: b.hwpt });
    expect(vfioDetachPt(proc, dev, 8, 8)).toBe(-EINVAL);
    expect(vfioDetachPt(proc, dev, 8, 11)).toBe(-EINVAL);
    expect(dmaTag(host, 0x32, 8)).toBe('done');
    expect(vfioDetachPt(proc, dev, 8, 12)).toBe(0);
    expect(dmaTag(host, 0x33, 8)).toBe('fault');
    expect(tags(proc, spaces)).toEqual([0, 0x32, 0]);
    vtdClose(host, proc, fd, dev);
  });

  it('VFIO keeps its own record of what it attached (iommufd_attached, the pasids ida): pasid 0 with the PASID flag reaches iommufd as the RID, and the two records do not mix', () => {
    const { host, proc, fd, dev, spaces } = vtdPasidFixture();
    const [a, b] = spaces as [(typeof spaces)[0], (typeof spaces)[0]];
    expect(vfioAttachPt(proc, dev, a.hwpt)).toEqual({ rc: 0, ptId: a.hwpt });
    // pasid 0 is not in the ida: an attach of iommufd's RID, which is taken.
    expect(vfioAttachPt(proc, dev, b.hwpt, 0).rc).toBe(-EBUSY);
    expect(vfioDetachPt(proc, dev)).toBe(0);
    expect(dmaTag(host, 0x61)).toBe('fault');
    // Now it attaches the RID, but VFIO counts it as PASID 0.
    expect(vfioAttachPt(proc, dev, b.hwpt, 0)).toEqual({ rc: 0, ptId: b.hwpt });
    expect(dmaTag(host, 0x62)).toBe('done');
    // A plain DETACH finds iommufd_attached false and does nothing ...
    expect(vfioDetachPt(proc, dev)).toBe(0);
    expect(dmaTag(host, 0x63)).toBe('done');
    // ... and a plain ATTACH is an iommufd attach of a taken RID.
    expect(vfioAttachPt(proc, dev, a.hwpt).rc).toBe(-EBUSY);
    expect(tags(proc, spaces)).toEqual([0, 0x63, 0]);
    // PASID 0 is in the ida: replace, then detach.
    expect(vfioAttachPt(proc, dev, a.hwpt, 0)).toEqual({ rc: 0, ptId: a.hwpt });
    expect(dmaTag(host, 0x64)).toBe('done');
    expect(vfioDetachPt(proc, dev, 0, 12)).toBe(0);
    expect(dmaTag(host, 0x65)).toBe('fault');
    expect(tags(proc, spaces)).toEqual([0x64, 0x63, 0]);
    expect(vfioAttachPt(proc, dev, a.hwpt)).toEqual({ rc: 0, ptId: a.hwpt });
    expect(dmaTag(host, 0x66)).toBe('done');
    expect(tags(proc, spaces)).toEqual([0x66, 0x63, 0]);
    vtdClose(host, proc, fd, dev);
  });

  it('closing the device fd detaches its PASIDs and its RID', () => {
    const { host, proc, fd, dev, spaces } = vtdPasidFixture();
    const [a, b] = spaces as [(typeof spaces)[0], (typeof spaces)[0]];
    expect(vfioAttachPt(proc, dev, a.hwpt).rc).toBe(0);
    expect(vfioAttachPt(proc, dev, b.hwpt, 40).rc).toBe(0);
    expect(usersOf(proc, fd, b.hwpt)).toBe(1);
    expect(proc.close(dev)).toBe(0);
    expect(usersOf(proc, fd, a.hwpt)).toBe(0);
    expect(usersOf(proc, fd, b.hwpt)).toBe(0);
    expect(proc.inspect(fd)?.objects.some((o) => o.type === 'DEVICE')).toBe(false);
    expect(dmaTag(host, 0x41, 40)).toBe('fault');
    closeAndCheck(host, proc, fd);
  });

  it('a PCI device without the PASID capability has max_pasids 0: 6.17 records the PASID attachment without calling the driver (rc 0), and nothing is programmed', () => {
    const host = createHost({
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
    const page = proc.mmap(PAGE);
    expect(map(proc, fd, ioas, page, BigInt(PAGE), IOVA).rc).toBe(0);
    const hwpt = hwptAlloc(proc, fd, devId, ioas, IOMMU_HWPT_ALLOC_PASID);
    expect(hwpt.rc).toBe(0);
    // iommufd's own rules still apply: no IOAS, no HWPT without ALLOC_PASID.
    expect(vfioAttachPt(proc, dev, ioas, 3).rc).toBe(-EINVAL);
    // Any PASID number: there is no max_pasids to check against.
    expect(vfioAttachPt(proc, dev, hwpt.id, 3)).toEqual({ rc: 0, ptId: hwpt.id });
    expect(vfioAttachPt(proc, dev, hwpt.id, 1 << 20)).toEqual({ rc: 0, ptId: hwpt.id });
    expect(usersOf(proc, fd, hwpt.id)).toBe(2);
    expect(dmaTag(host, 0x51, 3)).toBe('fault');
    expect(vfioAttachPt(proc, dev, hwpt.id)).toEqual({ rc: 0, ptId: hwpt.id });
    expect(dmaTag(host, 0x52)).toBe('done');
    expect(vfioDetachPt(proc, dev, 3, 12)).toBe(0);
    expect(usersOf(proc, fd, hwpt.id)).toBe(2);
    expect((proc.readMemory(page, 1) as Uint8Array)[0]).toBe(0x52);
    vtdClose(host, proc, fd, dev);
  });

  it('a platform device (vfio-platform, SMMUv3) has no PASID ops: the PASID flag → EOPNOTSUPP on attach and detach', () => {
    const host = createHost({
      iommus: [{ name: 'smmu0', model: 'smmuv3' }],
      devices: [{ name: 'platform-dev', iommu: 'smmu0', streamIds: [0x10] }],
    });
    const proc = host.createProcess();
    const fd = proc.open('/dev/iommu');
    const dev = proc.open('/dev/vfio/devices/vfio0');
    const bind = structs.vfio_device_bind_iommufd.encode({ argsz: 24, iommufd: fd });
    expect(proc.ioctl(dev, VFIO_DEVICE_BIND_IOMMUFD, bind)).toBe(0);
    const ioas = ioasAlloc(proc, fd);
    expect(vfioAttachPt(proc, dev, ioas, 1).rc).toBe(-EOPNOTSUPP);
    // Checked before argsz covers the pasid field.
    expect(vfioAttachPt(proc, dev, ioas, 1, 12).rc).toBe(-EOPNOTSUPP);
    expect(vfioDetachPt(proc, dev, 1, 12)).toBe(-EOPNOTSUPP);
    expect(vfioDetachPt(proc, dev, 1, 8)).toBe(-EOPNOTSUPP);
    // The RID works.
    const rid = vfioAttachPt(proc, dev, ioas);
    expect(rid.rc).toBe(0);
    expect(rid.ptId).toBeGreaterThan(ioas);
    expect(vfioDetachPt(proc, dev)).toBe(0);
    vtdClose(host, proc, fd, dev);
  });
});
