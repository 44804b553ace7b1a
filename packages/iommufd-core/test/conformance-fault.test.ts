/**
 * Conformance: the fault queue (catalog 2.19, 202-206, and 175) and the I/O
 * page fault rules of kernel-semantics section 4: routing of a request to
 * the attachment it names, whole groups, cookies, responses, automatic
 * INVALID answers on detach, replace and destroy, poll, and the fault fd's
 * lifetime. Everything goes through the syscall surface with real struct
 * bytes; page requests come from TRIGGER_IOPF on the mock IOMMU, or from a
 * VT-d driver's report hook when a test needs requests without LAST_PAGE.
 */
import type { MockIommu, VtdIommu } from '@iommufd-sim/hw-models';
import {
  EBADF,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOENT,
  EOPNOTSUPP,
  ESPIPE,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_ALLOC_PASID,
  IOMMU_HWPT_FAULT_ID_VALID,
  IOMMU_PGFAULT_PERM_READ,
  IOMMU_PGFAULT_PERM_WRITE,
  IOMMU_PGFAULT_FLAGS_LAST_PAGE as LAST,
  MOCK_FLAGS_DEVICE_PASID,
  IOMMU_PGFAULT_FLAGS_PASID_VALID as PASID_VALID,
  structs,
} from '@iommufd-sim/uapi-types';
import { describe, expect, it } from 'vitest';
import { createHost, type Process } from '../src/index.js';
import { destroy, ioasAlloc, mockDomain, mockReplace, setup } from './helpers.js';
import { vfioAttach, vfioBind, vfioDetach } from './helpers-c.js';
import {
  faultAlloc,
  hwptAlloc,
  IOTLB_DEFAULT,
  pasidAttach,
  pasidDetach,
  readFaults,
  reportRequest,
  respond,
  triggerIopf,
} from './helpers-fault.js';

const SUCCESS = 0;
const INVALID = 1;
const RW = IOMMU_PGFAULT_PERM_READ | IOMMU_PGFAULT_PERM_WRITE;
const POLLIN = 0x1;
const POLLOUT = 0x4;
const POLLRDNORM = 0x40;

/** The iommufd_ioas fixture with a fault object: a mock device on an IOAS. */
function mockFixture(devFlags?: number) {
  const { host, proc, fd } = setup();
  const ioas = ioasAlloc(proc, fd);
  const md = mockDomain(proc, fd, ioas, devFlags);
  expect(md.rc).toBe(0);
  const fault = faultAlloc(proc, fd);
  expect(fault.rc).toBe(0);
  const mock = host.mockIommu as MockIommu;
  return { host, proc, fd, ioas, ...md, fault, mock };
}

/** A NEST_PARENT HWPT on the IOAS and a mock nested HWPT on it that delivers to the fault. */
function nestedIopf(
  f: ReturnType<typeof mockFixture>,
  flags = 0,
): { parent: number; iopf: number } {
  const parent = hwptAlloc(f.proc, f.fd, {
    devId: f.idevId,
    ptId: f.ioas,
    flags: IOMMU_HWPT_ALLOC_NEST_PARENT | (flags & IOMMU_HWPT_ALLOC_PASID),
  });
  expect(parent.rc).toBe(0);
  const iopf = hwptAlloc(f.proc, f.fd, {
    devId: f.idevId,
    ptId: parent.id,
    flags: IOMMU_HWPT_FAULT_ID_VALID | flags,
    faultId: f.fault.id,
    selftestIotlb: IOTLB_DEFAULT,
  });
  expect(iopf.rc).toBe(0);
  return { parent: parent.id, iopf: iopf.id };
}

/** The codes the mock IOMMU's page_response hook received, oldest first. */
function mockAnswers(mock: MockIommu): string[] {
  return mock.pageResponses.map((r) => r.code);
}

function lastReason(proc: Process): string {
  return proc.lastError()?.reason ?? '';
}

describe('2.19 IOMMU_FAULT_QUEUE_ALLOC (202)', () => {
  it('202: flags != 0 -> EOPNOTSUPP; success gives an object id >= 1 and a new fd', () => {
    const { proc, fd } = setup();
    const bad = faultAlloc(proc, fd, 1);
    expect(bad.rc).toBe(-EOPNOTSUPP);
    expect(proc.lastError()).toMatchObject({ call: 'IOMMU_FAULT_QUEUE_ALLOC', errno: EOPNOTSUPP });
    expect(lastReason(proc)).toMatch(/flags 0x1/);
    const ok = faultAlloc(proc, fd);
    expect(ok.rc).toBe(0);
    expect(ok.id).toBeGreaterThanOrEqual(1);
    expect(ok.faultFd).toBeGreaterThanOrEqual(1);
    expect(ok.faultFd).not.toBe(fd);
    expect(proc.openFiles()).toContainEqual({ fd: ok.faultFd, kind: 'fault' });
    expect(proc.inspect(fd)?.objects).toContainEqual(
      expect.objectContaining({ id: ok.id, type: 'FAULT' }),
    );
    // The lowest free fd: closing it and allocating again reuses the number.
    const second = faultAlloc(proc, fd);
    expect(second.faultFd).toBe(ok.faultFd + 1);
    expect(proc.close(ok.faultFd)).toBe(0);
    expect(faultAlloc(proc, fd).faultFd).toBe(ok.faultFd);
  });

  it('202: when the result cannot be copied back, neither the fd nor the object stays', () => {
    const { proc, fd } = setup();
    // The argument lives in a memfd: readable through one mapping, read-only through the one passed.
    const file = proc.memfdCreate('arg', 4096);
    const rw = proc.mmap(4096, { fd: file });
    expect(proc.writeMemory(rw, structs.iommu_fault_alloc.encode({ size: 16 }))).toBe(0);
    expect(proc.ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, rw)).toBe(0); // through writable memory it works
    const ro = proc.mmap(4096, { fd: file, readOnly: true });
    const files = proc.openFiles().length;
    const objects = proc.inspect(fd)?.objects.length;
    expect(proc.ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, ro)).toBe(-EFAULT);
    expect(proc.openFiles().length).toBe(files);
    expect(proc.inspect(fd)?.objects.length).toBe(objects);
    // Nothing leaked: the next allocation takes the id and fd the failed one had.
    const next = faultAlloc(proc, fd);
    expect(next.rc).toBe(0);
    expect(objects).toBe(1);
    expect(next.id).toBe(2); // the id the failed call had reserved
  });
});

describe('2.19 delivery and response (203, 175)', () => {
  it('134, 203: FAULT_ID_VALID with an unknown fault -> ENOENT; TRIGGER_IOPF on a nested fault HWPT gives one record, {cookie, SUCCESS} is accepted', () => {
    const f = mockFixture();
    const parent = hwptAlloc(f.proc, f.fd, {
      devId: f.idevId,
      ptId: f.ioas,
      flags: IOMMU_HWPT_ALLOC_NEST_PARENT,
    });
    expect(parent.rc).toBe(0);
    const missing = hwptAlloc(f.proc, f.fd, {
      devId: f.idevId,
      ptId: parent.id,
      flags: IOMMU_HWPT_FAULT_ID_VALID,
      faultId: 0xffffffff,
      selftestIotlb: IOTLB_DEFAULT,
    });
    expect(missing.rc).toBe(-ENOENT);
    const iopf = hwptAlloc(f.proc, f.fd, {
      devId: f.idevId,
      ptId: parent.id,
      flags: IOMMU_HWPT_FAULT_ID_VALID,
      faultId: f.fault.id,
      selftestIotlb: IOTLB_DEFAULT,
    });
    expect(iopf.rc).toBe(0);
    expect(mockReplace(f.proc, f.fd, f.stdevId, iopf.id).rc).toBe(0);
    // test_cmd_trigger_iopf: pasid 1, grpid 2, READ|WRITE, 0xdeadbeaf. No PASID 1 is attached:
    // the mock keeps PASID tables in user space, so it goes to the RID's nested HWPT.
    expect(triggerIopf(f.proc, f.fd, f.idevId, { pasid: 1 })).toBe(0);
    expect(f.proc.poll(f.fault.faultFd)).toBe(POLLOUT | POLLIN | POLLRDNORM);
    const { rc, records } = readFaults(f.proc, f.fault.faultFd, 1);
    expect(rc).toBe(40);
    expect(records).toEqual([
      {
        flags: PASID_VALID | LAST,
        dev_id: f.idevId,
        pasid: 1,
        grpid: 2,
        perm: RW,
        __reserved: 0,
        addr: 0xdeadbeafn,
        length: 0,
        cookie: 1,
      },
    ]);
    expect(f.proc.poll(f.fault.faultFd)).toBe(POLLOUT);
    expect(mockAnswers(f.mock)).toEqual([]);
    expect(respond(f.proc, f.fault.faultFd, [1, SUCCESS])).toBe(8);
    expect(mockAnswers(f.mock)).toEqual(['success']);
    // Without a PASID the record has no PASID_VALID and pasid 0.
    expect(triggerIopf(f.proc, f.fd, f.idevId, { pasid: 0, grpid: 7 })).toBe(0);
    expect(readFaults(f.proc, f.fault.faultFd).records[0]).toMatchObject({
      flags: LAST,
      pasid: 0,
      grpid: 7,
      cookie: 1,
    });
  });

  it('175: an IOPF on PASID 2048 attached to a fault HWPT is delivered and acknowledged', () => {
    const f = mockFixture(MOCK_FLAGS_DEVICE_PASID);
    // The RID moves to a PASID-compatible HWPT first (a PASID attach needs it, 165).
    const ridHwpt = hwptAlloc(f.proc, f.fd, {
      devId: f.idevId,
      ptId: f.ioas,
      flags: IOMMU_HWPT_ALLOC_PASID,
    });
    expect(ridHwpt.rc).toBe(0);
    expect(mockReplace(f.proc, f.fd, f.stdevId, ridHwpt.id).rc).toBe(0);
    const iopf = hwptAlloc(f.proc, f.fd, {
      devId: f.idevId,
      ptId: f.ioas,
      flags: IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID,
      faultId: f.fault.id,
    });
    expect(iopf.rc).toBe(0);
    expect(pasidAttach(f.proc, f.fd, f.stdevId, 2048, iopf.id)).toBe(0);
    expect(triggerIopf(f.proc, f.fd, f.idevId, { pasid: 2048, grpid: 2 })).toBe(0);
    const { records } = readFaults(f.proc, f.fault.faultFd);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ flags: PASID_VALID | LAST, pasid: 2048, dev_id: f.idevId });
    expect(respond(f.proc, f.fault.faultFd, [records[0]?.cookie ?? 0, SUCCESS])).toBe(8);
    expect(mockAnswers(f.mock)).toEqual(['success']);
    // The RID's HWPT has no fault: a request without a PASID is refused at once.
    expect(triggerIopf(f.proc, f.fd, f.idevId, { pasid: 0 })).toBe(0);
    expect(mockAnswers(f.mock)).toEqual(['success', 'invalid']);
    expect(readFaults(f.proc, f.fault.faultFd).rc).toBe(0);
    // Detaching PASID 2048 answers what was left on it.
    expect(triggerIopf(f.proc, f.fd, f.idevId, { pasid: 2048, grpid: 3 })).toBe(0);
    expect(pasidDetach(f.proc, f.fd, f.stdevId, 2048)).toBe(0);
    expect(mockAnswers(f.mock)).toEqual(['success', 'invalid', 'invalid']);
    expect(f.host.internalErrors).toBe(0);
  });
});

describe('2.19 read() and write() rules (204, 205)', () => {
  function withGroups(n: number) {
    const f = mockFixture();
    const { iopf } = nestedIopf(f);
    expect(mockReplace(f.proc, f.fd, f.stdevId, iopf).rc).toBe(0);
    for (let i = 0; i < n; i++) expect(triggerIopf(f.proc, f.fd, f.idevId, { grpid: i })).toBe(0);
    return { ...f, iopf };
  }

  it('204: read count not a multiple of 40 or a nonzero position -> ESPIPE; write count not a multiple of 8 -> ESPIPE', () => {
    const f = withGroups(1);
    const fd = f.fault.faultFd;
    for (const count of [1, 39, 41, 79]) {
      expect(f.proc.read(fd, new Uint8Array(count))).toBe(-ESPIPE);
      expect(f.proc.lastError()).toMatchObject({ call: 'read', errno: ESPIPE });
      expect(lastReason(f.proc)).toMatch(/multiple of 40/);
    }
    expect(f.proc.read(fd, new Uint8Array(40), 40)).toBe(-ESPIPE);
    expect(lastReason(f.proc)).toMatch(/not seekable/);
    for (const count of [1, 7, 9, 15]) {
      expect(f.proc.write(fd, new Uint8Array(count))).toBe(-ESPIPE);
      expect(lastReason(f.proc)).toMatch(/multiple of 8/);
    }
    expect(f.proc.write(fd, new Uint8Array(8), 8)).toBe(-ESPIPE);
    // None of that consumed the group; a read of 0 bytes returns 0.
    expect(f.proc.read(fd, new Uint8Array(0))).toBe(0);
    expect(readFaults(f.proc, fd).rc).toBe(40);
  });

  it('205: an unknown cookie or a code other than 0/1 -> EINVAL; a bad one after good ones returns the bytes before it', () => {
    const f = withGroups(3);
    const fd = f.fault.faultFd;
    const { records } = readFaults(f.proc, fd);
    expect(records.map((r) => r.cookie)).toEqual([1, 2, 3]);
    expect(respond(f.proc, fd, [9, SUCCESS])).toBe(-EINVAL);
    expect(f.proc.lastError()).toMatchObject({ call: 'write', errno: EINVAL });
    expect(lastReason(f.proc)).toMatch(/cookie 9/);
    expect(respond(f.proc, fd, [1, 2])).toBe(-EINVAL);
    expect(lastReason(f.proc)).toMatch(/code 2/);
    expect(mockAnswers(f.mock)).toEqual([]);
    // Cookie 1 then an unknown cookie: 8 bytes, cookie 1 answered; then 2 with a bad code after 3.
    expect(respond(f.proc, fd, [1, SUCCESS], [77, SUCCESS], [2, SUCCESS])).toBe(8);
    expect(respond(f.proc, fd, [3, INVALID], [2, 5])).toBe(8);
    expect(mockAnswers(f.mock)).toEqual(['success', 'invalid']);
    // A cookie answered already is unknown now.
    expect(respond(f.proc, fd, [1, SUCCESS])).toBe(-EINVAL);
    expect(respond(f.proc, fd, [2, INVALID])).toBe(8);
    expect(mockAnswers(f.mock)).toEqual(['success', 'invalid', 'invalid']);
  });

  it('reading with nothing queued returns 0 at once; reads and writes on other fds keep answering as before', () => {
    const f = withGroups(0);
    expect(readFaults(f.proc, f.fault.faultFd).rc).toBe(0);
    expect(f.proc.read(f.fd, new Uint8Array(40))).toBe(-EINVAL);
    expect(lastReason(f.proc)).toMatch(/iommufd\) cannot be read/);
    expect(f.proc.write(f.fd, new Uint8Array(8))).toBe(-EINVAL);
    expect(f.proc.read(999, new Uint8Array(40))).toBe(-EBADF);
    expect(f.proc.write(999, new Uint8Array(8))).toBe(-EBADF);
    expect(f.proc.read(f.fault.faultFd, 'nope' as unknown as Uint8Array)).toBe(-EFAULT);
    expect(f.proc.poll(999)).toBe(0x20); // POLLNVAL
    expect(f.proc.poll(f.fd)).toBe(0x145); // no poll method: DEFAULT_POLLMASK
  });

  it('cookies are the lowest free id from 1, and an answered cookie is reused', () => {
    const f = withGroups(3);
    const fd = f.fault.faultFd;
    expect(readFaults(f.proc, fd, 1).records[0]?.cookie).toBe(1);
    expect(readFaults(f.proc, fd, 1).records[0]?.cookie).toBe(2);
    expect(respond(f.proc, fd, [1, SUCCESS])).toBe(8);
    expect(readFaults(f.proc, fd, 1).records[0]?.cookie).toBe(1);
    expect(triggerIopf(f.proc, f.fd, f.idevId, { grpid: 9 })).toBe(0);
    expect(readFaults(f.proc, fd, 1).records[0]).toMatchObject({ cookie: 3, grpid: 9 });
  });
});

describe('groups', () => {
  const NIC = '0000:00:10.0';

  /** A VT-d host with a PRI device bound through VFIO to a fault HWPT on an IOAS. */
  function vtdFixture() {
    const host = createHost({
      iommus: [{ name: 'vtd0', model: 'vtd' }],
      devices: [{ name: NIC, iommu: 'vtd0', ats: true, pri: true, pasidBits: 8 }],
    });
    const proc = host.createProcess();
    const fd = proc.open('/dev/iommu');
    const dev = proc.open('/dev/vfio/devices/vfio0');
    const bound = vfioBind(proc, dev, fd);
    expect(bound.rc).toBe(0);
    const ioas = ioasAlloc(proc, fd);
    const fault = faultAlloc(proc, fd);
    const hwpt = hwptAlloc(proc, fd, {
      devId: bound.devid,
      ptId: ioas,
      flags: IOMMU_HWPT_FAULT_ID_VALID,
      faultId: fault.id,
    });
    expect(hwpt.rc).toBe(0);
    expect(vfioAttach(proc, dev, hwpt.id).rc).toBe(0);
    const vtd = host.iommus.get('vtd0') as VtdIommu;
    const report = (r: Parameters<typeof reportRequest>[3]) => reportRequest(host, 'vtd0', NIC, r);
    return { host, proc, fd, dev, devid: bound.devid, ioas, fault, hwpt: hwpt.id, vtd, report };
  }

  it('requests without LAST_PAGE wait; LAST_PAGE completes their group (same grpid, arrival order, last page last)', () => {
    const v = vtdFixture();
    const ffd = v.fault.faultFd;
    v.report({ grpid: 5, last: false, address: 0x1000 });
    v.report({ grpid: 6, last: false, address: 0x9000 });
    v.report({ grpid: 5, last: false, address: 0x2000 });
    expect(readFaults(v.proc, ffd).rc).toBe(0);
    expect(v.proc.poll(ffd)).toBe(POLLOUT);
    v.report({ grpid: 5, last: true, address: 0x3000 });
    const { rc, records } = readFaults(v.proc, ffd);
    expect(rc).toBe(120);
    expect(records.map((r) => [r.addr, r.flags, r.grpid, r.cookie, r.dev_id])).toEqual([
      [0x1000n, 0, 5, 1, v.devid],
      [0x2000n, 0, 5, 1, v.devid],
      [0x3000n, LAST, 5, 1, v.devid],
    ]);
    // The grpid 6 request still waits for its own LAST_PAGE.
    v.report({ grpid: 6, last: true, address: 0xa000 });
    expect(readFaults(v.proc, ffd).records.map((r) => r.addr)).toEqual([0x9000n, 0xa000n]);
    // One response per group reaches the hardware: the page group response of the last request.
    const before = v.vtd.responses.length;
    expect(respond(v.proc, ffd, [1, SUCCESS], [2, INVALID])).toBe(16);
    expect(v.vtd.responses.slice(before).map((r) => [r.prgIndex, r.code, r.lastPage])).toEqual([
      [5, 0, true],
      [6, 1, true],
    ]);
    expect(v.host.internalErrors).toBe(0);
  });

  it('only whole groups are read: a group that does not fit stays queued', () => {
    const v = vtdFixture();
    const ffd = v.fault.faultFd;
    v.report({ grpid: 1, last: true });
    v.report({ grpid: 2, last: false });
    v.report({ grpid: 2, last: false });
    v.report({ grpid: 2, last: true });
    expect(readFaults(v.proc, ffd, 3).rc).toBe(40); // group 1; group 2 (3 records) does not fit in what is left
    expect(readFaults(v.proc, ffd, 2).rc).toBe(0);
    expect(v.proc.poll(ffd) & POLLIN).toBe(POLLIN);
    const { rc, records } = readFaults(v.proc, ffd, 3);
    expect(rc).toBe(120);
    expect(new Set(records.map((r) => r.cookie))).toEqual(new Set([2]));
  });

  it('a PASID request with no attachment at that PASID is refused at once on VT-d (no user PASID table)', () => {
    const v = vtdFixture();
    const before = v.vtd.responses.length;
    v.report({ grpid: 3, last: true, pasid: 4 });
    expect(readFaults(v.proc, v.fault.faultFd).rc).toBe(0);
    expect(v.vtd.responses.slice(before).map((r) => [r.prgIndex, r.code])).toEqual([[3, 1]]);
    // A partial request with no handler is refused too (iopf_error_response) and never joins a group.
    v.report({ grpid: 3, last: false, pasid: 4 });
    expect(v.vtd.responses.length).toBe(before + 2);
    v.report({ grpid: 3, last: true });
    expect(readFaults(v.proc, v.fault.faultFd).records.map((r) => r.flags)).toEqual([LAST]);
  });

  it('detach answers every pending group of the attachment INVALID, read and unread; partial requests are dropped', () => {
    const v = vtdFixture();
    const ffd = v.fault.faultFd;
    v.report({ grpid: 1, last: true });
    v.report({ grpid: 2, last: true });
    v.report({ grpid: 3, last: false });
    expect(readFaults(v.proc, ffd, 1).rc).toBe(40); // group 1 read (cookie 1), group 2 unread
    const before = v.vtd.responses.length;
    expect(vfioDetach(v.proc, v.dev)).toBe(0);
    expect(
      v.vtd.responses
        .slice(before)
        .map((r) => [r.prgIndex, r.code])
        .sort(),
    ).toEqual([
      [1, 1],
      [2, 1],
    ]);
    expect(readFaults(v.proc, ffd).rc).toBe(0);
    expect(respond(v.proc, ffd, [1, SUCCESS])).toBe(-EINVAL);
    // Attached again: the dropped partial request does not join a new group 3.
    expect(vfioAttach(v.proc, v.dev, v.hwpt).rc).toBe(0);
    v.report({ grpid: 3, last: true, address: 0x7000 });
    expect(readFaults(v.proc, ffd).records.map((r) => r.addr)).toEqual([0x7000n]);
  });

  it('a HWPT without a fault object: the request is answered INVALID by the core at once', () => {
    const f = mockFixture();
    // The device sits on its automatic HWPT, which has no fault.
    expect(triggerIopf(f.proc, f.fd, f.idevId, { pasid: 0 })).toBe(0);
    expect(triggerIopf(f.proc, f.fd, f.idevId, { pasid: 5 })).toBe(0);
    expect(mockAnswers(f.mock)).toEqual(['invalid', 'invalid']);
    expect(readFaults(f.proc, f.fault.faultFd).rc).toBe(0);
    expect(f.host.iopf.stats()).toMatchObject({ reported: 2, answeredWithoutHandler: 2 });
    // A paging (not nested) fault HWPT on the RID does not take a request for an unattached PASID.
    const paging = hwptAlloc(f.proc, f.fd, {
      devId: f.idevId,
      ptId: f.ioas,
      flags: IOMMU_HWPT_FAULT_ID_VALID,
      faultId: f.fault.id,
    });
    expect(paging.rc).toBe(0);
    expect(mockReplace(f.proc, f.fd, f.stdevId, paging.id).rc).toBe(0);
    expect(triggerIopf(f.proc, f.fd, f.idevId, { pasid: 5 })).toBe(0);
    expect(mockAnswers(f.mock)).toEqual(['invalid', 'invalid', 'invalid']);
    expect(triggerIopf(f.proc, f.fd, f.idevId, { pasid: 0 })).toBe(0);
    expect(readFaults(f.proc, f.fault.faultFd).records).toHaveLength(1);
  });

  it('detach of one PASID answers only the groups that came through it', () => {
    const f = mockFixture(MOCK_FLAGS_DEVICE_PASID);
    const { iopf } = nestedIopf(f, IOMMU_HWPT_ALLOC_PASID);
    const paging = hwptAlloc(f.proc, f.fd, {
      devId: f.idevId,
      ptId: f.ioas,
      flags: IOMMU_HWPT_FAULT_ID_VALID | IOMMU_HWPT_ALLOC_PASID,
      faultId: f.fault.id,
    });
    expect(paging.rc).toBe(0);
    expect(mockReplace(f.proc, f.fd, f.stdevId, iopf).rc).toBe(0);
    expect(pasidAttach(f.proc, f.fd, f.stdevId, 7, paging.id)).toBe(0);
    expect(triggerIopf(f.proc, f.fd, f.idevId, { pasid: 7, grpid: 1 })).toBe(0); // PASID 7
    expect(triggerIopf(f.proc, f.fd, f.idevId, { pasid: 0, grpid: 2 })).toBe(0); // RID
    expect(triggerIopf(f.proc, f.fd, f.idevId, { pasid: 9, grpid: 3 })).toBe(0); // RID (nested, user PASID table)
    expect(pasidDetach(f.proc, f.fd, f.stdevId, 7)).toBe(0);
    expect(f.mock.pageResponses.map((r) => [r.request.groupId, r.code])).toEqual([[1, 'invalid']]);
    const { records } = readFaults(f.proc, f.fault.faultFd);
    expect(records.map((r) => [r.grpid, r.pasid])).toEqual([
      [2, 0],
      [3, 9],
    ]);
  });

  it("replace (6.17): the old attachment's groups are answered through the new HWPT's fault only", () => {
    const f = mockFixture();
    const { parent, iopf } = nestedIopf(f);
    expect(mockReplace(f.proc, f.fd, f.stdevId, iopf).rc).toBe(0);
    expect(triggerIopf(f.proc, f.fd, f.idevId, { grpid: 1 })).toBe(0);
    // To a HWPT sharing the fault: the groups of the old attachment are answered INVALID.
    const second = hwptAlloc(f.proc, f.fd, {
      devId: f.idevId,
      ptId: parent,
      flags: IOMMU_HWPT_FAULT_ID_VALID,
      faultId: f.fault.id,
      selftestIotlb: IOTLB_DEFAULT,
    });
    expect(second.rc).toBe(0);
    expect(mockReplace(f.proc, f.fd, f.stdevId, second.id).rc).toBe(0);
    expect(mockAnswers(f.mock)).toEqual(['invalid']);
    // To a HWPT without a fault: 6.17 looks in the new HWPT's (absent) fault, so the group stays pending.
    expect(triggerIopf(f.proc, f.fd, f.idevId, { grpid: 2 })).toBe(0);
    expect(mockReplace(f.proc, f.fd, f.stdevId, f.ioas).rc).toBe(0);
    expect(mockAnswers(f.mock)).toEqual(['invalid']);
    const { records } = readFaults(f.proc, f.fault.faultFd);
    expect(records.map((r) => r.grpid)).toEqual([2]);
    expect(respond(f.proc, f.fault.faultFd, [records[0]?.cookie ?? 0, SUCCESS])).toBe(8);
    expect(mockAnswers(f.mock)).toEqual(['invalid', 'success']);
  });
});

describe('2.19 lifetime (206) and destroy', () => {
  it('206: closing the fault fd keeps the object; DESTROY works once no HWPT uses it and the fd is closed', () => {
    const f = mockFixture();
    const { iopf } = nestedIopf(f);
    expect(destroy(f.proc, f.fd, f.fault.id)).toBe(-EBUSY); // the HWPT and the fd hold it
    expect(mockReplace(f.proc, f.fd, f.stdevId, iopf).rc).toBe(0);
    expect(triggerIopf(f.proc, f.fd, f.idevId)).toBe(0);
    expect(readFaults(f.proc, f.fault.faultFd).rc).toBe(40);
    expect(respond(f.proc, f.fault.faultFd, [1, SUCCESS])).toBe(8);
    expect(mockReplace(f.proc, f.fd, f.stdevId, f.ioas).rc).toBe(0);
    expect(destroy(f.proc, f.fd, iopf)).toBe(0);
    expect(destroy(f.proc, f.fd, f.fault.id)).toBe(-EBUSY); // the fd still holds it
    expect(lastReason(f.proc)).toMatch(/fault fd is open/);
    expect(f.proc.close(f.fault.faultFd)).toBe(0);
    expect(f.proc.inspect(f.fd)?.objects).toContainEqual(
      expect.objectContaining({ id: f.fault.id, type: 'FAULT' }),
    );
    expect(destroy(f.proc, f.fd, f.fault.id)).toBe(0);
    expect(destroy(f.proc, f.fd, f.fault.id)).toBe(-ENOENT);
  });

  it('destroying the FAULT object answers its pending groups INVALID', () => {
    const f = mockFixture();
    const { iopf } = nestedIopf(f);
    expect(mockReplace(f.proc, f.fd, f.stdevId, iopf).rc).toBe(0);
    expect(triggerIopf(f.proc, f.fd, f.idevId, { grpid: 1 })).toBe(0);
    expect(triggerIopf(f.proc, f.fd, f.idevId, { grpid: 2 })).toBe(0);
    expect(readFaults(f.proc, f.fault.faultFd, 1).rc).toBe(40);
    // Replacing to the IOAS leaves both groups pending (6.17); then the HWPT goes and the fd closes.
    expect(mockReplace(f.proc, f.fd, f.stdevId, f.ioas).rc).toBe(0);
    expect(destroy(f.proc, f.fd, iopf)).toBe(0);
    expect(f.proc.close(f.fault.faultFd)).toBe(0);
    expect(mockAnswers(f.mock)).toEqual([]);
    expect(destroy(f.proc, f.fd, f.fault.id)).toBe(0);
    expect(mockAnswers(f.mock)).toEqual(['invalid', 'invalid']);
  });

  it('the fault fd holds the context: closing /dev/iommu first keeps everything until the fault fd closes', () => {
    const f = mockFixture();
    const { iopf } = nestedIopf(f);
    expect(mockReplace(f.proc, f.fd, f.stdevId, iopf).rc).toBe(0);
    expect(triggerIopf(f.proc, f.fd, f.idevId, { grpid: 4 })).toBe(0);
    expect(f.proc.close(f.fd)).toBe(0);
    // The queue is still there and readable.
    const { records } = readFaults(f.proc, f.fault.faultFd);
    expect(records.map((r) => r.grpid)).toEqual([4]);
    expect(mockAnswers(f.mock)).toEqual([]);
    expect(f.proc.close(f.fault.faultFd)).toBe(0);
    // The last holder released the context: the device detached and the group was answered.
    expect(mockAnswers(f.mock)).toEqual(['invalid']);
    expect(f.host.pinnedPages()).toBe(0);
    expect(f.host.internalErrors).toBe(0);
  });

  it('a forked child shares the fault fd; the object is released with the last reference', () => {
    const f = mockFixture();
    const child = f.proc.fork();
    expect(f.proc.close(f.fault.faultFd)).toBe(0);
    expect(destroy(f.proc, f.fd, f.fault.id)).toBe(-EBUSY); // the child's fd still holds it
    expect(child.poll(f.fault.faultFd)).toBe(POLLOUT);
    child.exit();
    expect(destroy(f.proc, f.fd, f.fault.id)).toBe(0);
  });
});
