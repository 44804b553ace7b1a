/**
 * Test helpers for the I/O page fault path: IOMMU_FAULT_QUEUE_ALLOC,
 * IOMMU_HWPT_ALLOC with a fault, TRIGGER_IOPF, the PASID test ops, and
 * read()/write() of real `iommu_hwpt_pgfault` / `iommu_hwpt_page_response`
 * bytes on the fault fd, as iommufd_utils.h does.
 */
import type { PageRequest } from '@iommufd-sim/hw-models';
import {
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_TEST_OP_PASID_ATTACH,
  IOMMU_TEST_OP_PASID_DETACH,
  IOMMU_TEST_OP_PASID_REPLACE,
  IOMMU_TEST_OP_TRIGGER_IOPF,
  structs,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_ATTACH_PASID,
} from '@iommufd-sim/uapi-types';
import type { Host, Process } from '../src/index.js';
import { testCmd } from './helpers.js';

/** IOMMU_TEST_IOTLB_DEFAULT: what the selftest puts in a mock nested HWPT's data. */
export const IOTLB_DEFAULT = 0xbadbeef;
/** One decoded `struct iommu_hwpt_pgfault`. */
export type FaultRecord = ReturnType<typeof structs.iommu_hwpt_pgfault.decode>;

/** IOMMU_FAULT_QUEUE_ALLOC; returns rc, the object id and the fd. */
export function faultAlloc(
  proc: Process,
  fd: number,
  flags = 0,
): { rc: number; id: number; faultFd: number } {
  const b = structs.iommu_fault_alloc.encode({ size: 16, flags });
  const rc = proc.ioctl(fd, IOMMU_FAULT_QUEUE_ALLOC, b);
  const out = structs.iommu_fault_alloc.decode(b);
  return { rc, id: out.out_fault_id, faultFd: out.out_fault_fd };
}

/** What {@link hwptAlloc} takes. */
export interface HwptAllocArgs {
  readonly devId: number;
  readonly ptId: number;
  readonly flags?: number;
  readonly faultId?: number;
  /** A mock nested HWPT: the iotlb value of `struct iommu_hwpt_selftest`. */
  readonly selftestIotlb?: number;
}

/** IOMMU_HWPT_ALLOC (selftest data copied from process memory); returns rc and the id. */
export function hwptAlloc(proc: Process, fd: number, a: HwptAllocArgs): { rc: number; id: number } {
  let dataUptr = 0n;
  let dataLen = 0;
  if (a.selftestIotlb !== undefined) {
    const data = structs.iommu_hwpt_selftest.encode({ iotlb: a.selftestIotlb });
    dataUptr = proc.mmap(4096);
    proc.writeMemory(dataUptr, data);
    dataLen = data.length;
  }
  const b = structs.iommu_hwpt_alloc.encode({
    size: structs.iommu_hwpt_alloc.sizeof,
    flags: a.flags ?? 0,
    dev_id: a.devId,
    pt_id: a.ptId,
    data_type: dataLen > 0 ? IOMMU_HWPT_DATA_SELFTEST : IOMMU_HWPT_DATA_NONE,
    data_len: dataLen,
    data_uptr: dataUptr,
    fault_id: a.faultId ?? 0,
  });
  const rc = proc.ioctl(fd, IOMMU_HWPT_ALLOC, b);
  return { rc, id: structs.iommu_hwpt_alloc.decode(b).out_hwpt_id };
}

/** IOMMU_TEST_OP_TRIGGER_IOPF. */
export function triggerIopf(
  proc: Process,
  fd: number,
  devId: number,
  f: { pasid?: number; grpid?: number; perm?: number; addr?: bigint } = {},
): number {
  return testCmd(proc, fd, {
    op: IOMMU_TEST_OP_TRIGGER_IOPF,
    trigger_iopf: {
      dev_id: devId,
      pasid: f.pasid ?? 0,
      grpid: f.grpid ?? 0x2,
      perm: f.perm ?? 3,
      addr: f.addr ?? 0xdeadbeafn,
    },
  }).rc;
}

/** IOMMU_TEST_OP_PASID_ATTACH / REPLACE on selftest object `stdevId`. */
export function pasidAttach(
  proc: Process,
  fd: number,
  stdevId: number,
  pasid: number,
  ptId: number,
  replace = false,
): number {
  return testCmd(proc, fd, {
    op: replace ? IOMMU_TEST_OP_PASID_REPLACE : IOMMU_TEST_OP_PASID_ATTACH,
    id: stdevId,
    pasid_attach: { pasid, pt_id: ptId },
  }).rc;
}

/** IOMMU_TEST_OP_PASID_DETACH. */
export function pasidDetach(proc: Process, fd: number, stdevId: number, pasid: number): number {
  return testCmd(proc, fd, {
    op: IOMMU_TEST_OP_PASID_DETACH,
    id: stdevId,
    pasid_detach: { pasid },
  }).rc;
}

/** VFIO_DEVICE_ATTACH_IOMMUFD_PT with VFIO_DEVICE_ATTACH_PASID. */
export function vfioAttachPasid(
  proc: Process,
  deviceFd: number,
  ptId: number,
  pasid: number,
): number {
  const b = structs.vfio_device_attach_iommufd_pt.encode({
    argsz: 16,
    flags: VFIO_DEVICE_ATTACH_PASID,
    pt_id: ptId,
    pasid,
  });
  return proc.ioctl(deviceFd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, b);
}

/** read() of `slots` records from a fault fd; returns rc and the records read. */
export function readFaults(
  proc: Process,
  faultFd: number,
  slots = 8,
): { rc: number; records: FaultRecord[] } {
  const buf = new Uint8Array(40 * slots);
  const rc = proc.read(faultFd, buf);
  const records: FaultRecord[] = [];
  for (let at = 0; rc > 0 && at < rc; at += 40) {
    records.push(structs.iommu_hwpt_pgfault.decode(buf, at));
  }
  return { rc, records };
}

/** The bytes of `[cookie, code]` responses. */
export function responses(...pairs: Array<readonly [number, number]>): Uint8Array {
  const bytes = new Uint8Array(8 * pairs.length);
  pairs.forEach(([cookie, code], i) => {
    structs.iommu_hwpt_page_response.encode({ cookie, code }, bytes, 8 * i);
  });
  return bytes;
}

/** write() of `[cookie, code]` responses to a fault fd. */
export function respond(
  proc: Process,
  faultFd: number,
  ...pairs: Array<readonly [number, number]>
): number {
  return proc.write(faultFd, responses(...pairs));
}

/**
 * A page request as an IOMMU driver reports it (its onPageRequest hook),
 * from configured device `device` behind IOMMU `iommu`; pasid -1 for none.
 */
export function reportRequest(
  host: Host,
  iommu: string,
  device: string,
  r: { pasid?: number; grpid: number; last: boolean; perm?: number; address?: number },
): PageRequest {
  const instance = host.iommus.get(iommu);
  const dev = host.device(device);
  if (instance === undefined || dev === undefined) throw new Error('no such IOMMU or device');
  const request: PageRequest = {
    device: dev.device,
    requester: dev.device.streamIds[0] ?? dev.device.rid,
    pasid: r.pasid ?? -1,
    groupId: r.grpid,
    lastPage: r.last,
    perm: r.perm ?? 1,
    address: r.address ?? 0x1000 * (r.grpid + 1),
    source: 'pri',
    record: new Uint8Array(0),
  };
  instance.onPageRequest?.(request);
  return request;
}
