/**
 * Helpers for the vIOMMU tests (kernel-semantics.md 2.18, 4 and 5): the
 * selftest's iommufd_viommu fixture and its iommufd_utils.h wrappers
 * (viommu_alloc, vdevice_alloc, veventq_alloc, hw_queue_alloc,
 * viommu_invalidate, trigger_vevents, read_vevents), each sent as real
 * struct bytes through the public surface. Other test files may import
 * them.
 */
import {
  IOMMU_HW_QUEUE_ALLOC,
  IOMMU_HW_QUEUE_TYPE_SELFTEST,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_ALLOC_NEST_PARENT,
  IOMMU_HWPT_DATA_NONE,
  IOMMU_HWPT_DATA_SELFTEST,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_TEST_IOTLB_DEFAULT,
  IOMMU_TEST_OP_TRIGGER_VEVENT,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VEVENTQ_ALLOC,
  IOMMU_VEVENTQ_TYPE_SELFTEST,
  IOMMU_VIOMMU_ALLOC,
  IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
  IOMMU_VIOMMU_TYPE_SELFTEST,
  type iommu_hw_queue_alloc,
  type iommu_hwpt_alloc,
  type iommu_hwpt_invalidate,
  type iommu_veventq_alloc,
  type iommu_viommu_alloc,
  structs,
} from '@iommufd-sim/uapi-types';
import type { Host, HostConfig, Process } from '../src/index.js';
import { ioasAlloc, mockDomain, PAGE, setup, testCmd } from './helpers.js';

/** sizeof(struct iommu_viommu_selftest). */
export const VIOMMU_SELFTEST_LEN = structs.iommu_viommu_selftest.sizeof;
/** sizeof(struct iommu_viommu_invalidate_selftest). */
export const VIOMMU_INV_LEN = structs.iommu_viommu_invalidate_selftest.sizeof;
/** One selftest vEVENT as read: the 8-byte header and the 4-byte virt_id. */
export const SELFTEST_VEVENT_LEN =
  structs.iommufd_vevent_header.sizeof + structs.iommu_viommu_event_selftest.sizeof;
/** The depth test_cmd_veventq_alloc asks for. */
export const SELFTEST_VEVENTQ_DEPTH = 2;

// ---- the ioctls, every field settable ------------------------------------------------------

/** IOMMU_VIOMMU_ALLOC with the fields given (size defaults to the full struct). */
export function viommuAllocRaw(
  proc: Process,
  fd: number,
  fields: Partial<iommu_viommu_alloc>,
): { rc: number; id: number; out: iommu_viommu_alloc } {
  const b = structs.iommu_viommu_alloc.encode({
    size: structs.iommu_viommu_alloc.sizeof,
    ...fields,
  });
  const rc = proc.ioctl(fd, IOMMU_VIOMMU_ALLOC, b);
  const out = structs.iommu_viommu_alloc.decode(b);
  return { rc, id: out.out_viommu_id, out };
}

/** test_cmd_viommu_alloc: a vIOMMU of `type` (SELFTEST by default) without data. */
export function viommuAlloc(
  proc: Process,
  fd: number,
  devId: number,
  hwptId: number,
  type = IOMMU_VIOMMU_TYPE_SELFTEST,
): { rc: number; id: number } {
  const { rc, id } = viommuAllocRaw(proc, fd, { dev_id: devId, hwpt_id: hwptId, type });
  return { rc, id };
}

/** What the mock vIOMMU wrote back into its struct iommu_viommu_selftest. */
export interface SelftestViommuData {
  readonly in_data: number;
  readonly out_data: number;
  readonly out_mmap_offset: bigint;
  readonly out_mmap_length: bigint;
}

/**
 * test_cmd_viommu_alloc with a struct iommu_viommu_selftest {in_data} in
 * process memory; returns rc, the id and the struct as the kernel left it.
 */
export function viommuAllocWithData(
  proc: Process,
  fd: number,
  devId: number,
  hwptId: number,
  inData: number,
): { rc: number; id: number; data: SelftestViommuData } {
  const va = proc.mmap(PAGE);
  if (va < 0n) throw new Error(`mmap failed ${va}`);
  proc.writeMemory(va, structs.iommu_viommu_selftest.encode({ in_data: inData }));
  const { rc, id } = viommuAllocRaw(proc, fd, {
    dev_id: devId,
    hwpt_id: hwptId,
    type: IOMMU_VIOMMU_TYPE_SELFTEST,
    data_len: VIOMMU_SELFTEST_LEN,
    data_uptr: va,
  });
  const bytes = proc.readMemory(va, VIOMMU_SELFTEST_LEN);
  if (bytes === null) throw new Error('the vIOMMU data cannot be read back');
  proc.munmap(va, PAGE);
  return { rc, id, data: structs.iommu_viommu_selftest.decode(bytes) };
}

/** IOMMU_VDEVICE_ALLOC; returns rc and out_vdevice_id. */
export function vdeviceAlloc(
  proc: Process,
  fd: number,
  viommuId: number,
  devId: number,
  virtId: bigint,
): { rc: number; id: number } {
  const b = structs.iommu_vdevice_alloc.encode({
    size: structs.iommu_vdevice_alloc.sizeof,
    viommu_id: viommuId,
    dev_id: devId,
    virt_id: virtId,
  });
  const rc = proc.ioctl(fd, IOMMU_VDEVICE_ALLOC, b);
  return { rc, id: structs.iommu_vdevice_alloc.decode(b).out_vdevice_id };
}

/** IOMMU_VEVENTQ_ALLOC with the fields given (size defaults to the full struct). */
export function veventqAllocRaw(
  proc: Process,
  fd: number,
  fields: Partial<iommu_veventq_alloc>,
): { rc: number; id: number; eventFd: number } {
  const b = structs.iommu_veventq_alloc.encode({
    size: structs.iommu_veventq_alloc.sizeof,
    ...fields,
  });
  const rc = proc.ioctl(fd, IOMMU_VEVENTQ_ALLOC, b);
  const out = structs.iommu_veventq_alloc.decode(b);
  return { rc, id: out.out_veventq_id, eventFd: out.out_veventq_fd };
}

/** test_cmd_veventq_alloc: a selftest-type vEVENTQ of depth 2 (unless given). */
export function veventqAlloc(
  proc: Process,
  fd: number,
  viommuId: number,
  depth = SELFTEST_VEVENTQ_DEPTH,
  type = IOMMU_VEVENTQ_TYPE_SELFTEST,
): { rc: number; id: number; eventFd: number } {
  return veventqAllocRaw(proc, fd, { viommu_id: viommuId, type, veventq_depth: depth });
}

/** IOMMU_HW_QUEUE_ALLOC with the fields given (size defaults to the full struct). */
export function hwQueueAllocRaw(
  proc: Process,
  fd: number,
  fields: Partial<iommu_hw_queue_alloc>,
): { rc: number; id: number } {
  const b = structs.iommu_hw_queue_alloc.encode({
    size: structs.iommu_hw_queue_alloc.sizeof,
    ...fields,
  });
  const rc = proc.ioctl(fd, IOMMU_HW_QUEUE_ALLOC, b);
  return { rc, id: structs.iommu_hw_queue_alloc.decode(b).out_hw_queue_id };
}

/** test_cmd_hw_queue_alloc: a selftest HW queue (type SELFTEST unless given). */
export function hwQueueAlloc(
  proc: Process,
  fd: number,
  viommuId: number,
  index: number,
  iova: bigint,
  length: bigint,
  type = IOMMU_HW_QUEUE_TYPE_SELFTEST,
): { rc: number; id: number } {
  return hwQueueAllocRaw(proc, fd, {
    viommu_id: viommuId,
    type,
    index,
    nesting_parent_iova: iova,
    length,
  });
}

/** IOMMU_HWPT_ALLOC with the fields given; returns rc and out_hwpt_id. */
export function hwptAllocRaw(
  proc: Process,
  fd: number,
  fields: Partial<iommu_hwpt_alloc>,
): { rc: number; id: number } {
  const b = structs.iommu_hwpt_alloc.encode({ size: structs.iommu_hwpt_alloc.sizeof, ...fields });
  const rc = proc.ioctl(fd, IOMMU_HWPT_ALLOC, b);
  return { rc, id: structs.iommu_hwpt_alloc.decode(b).out_hwpt_id };
}

/** A NEST_PARENT paging HWPT on `ioasId` for `devId` (test_cmd_hwpt_alloc). */
export function nestParentAlloc(
  proc: Process,
  fd: number,
  devId: number,
  ioasId: number,
  flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
): { rc: number; id: number } {
  return hwptAllocRaw(proc, fd, {
    dev_id: devId,
    pt_id: ioasId,
    flags,
    data_type: IOMMU_HWPT_DATA_NONE,
  });
}

/**
 * test_cmd_hwpt_alloc_nested / _iopf on a vIOMMU (pt_id = vIOMMU id) with
 * struct iommu_hwpt_selftest {iotlb} data; `faultId` is sent as given.
 */
export function viommuNestedAlloc(
  proc: Process,
  fd: number,
  devId: number,
  viommuId: number,
  more: { flags?: number; faultId?: number; iotlb?: number } = {},
): { rc: number; id: number } {
  const va = proc.mmap(PAGE);
  if (va < 0n) throw new Error(`mmap failed ${va}`);
  proc.writeMemory(
    va,
    structs.iommu_hwpt_selftest.encode({ iotlb: more.iotlb ?? IOMMU_TEST_IOTLB_DEFAULT }),
  );
  const got = hwptAllocRaw(proc, fd, {
    dev_id: devId,
    pt_id: viommuId,
    flags: more.flags ?? 0,
    data_type: IOMMU_HWPT_DATA_SELFTEST,
    data_len: structs.iommu_hwpt_selftest.sizeof,
    data_uptr: va,
    fault_id: more.faultId ?? 0,
  });
  proc.munmap(va, PAGE);
  return got;
}

/** One struct iommu_viommu_invalidate_selftest. */
export interface ViommuInvEntry {
  readonly flags?: number;
  readonly vdev_id: number;
  readonly cache_id?: number;
}

/**
 * test_cmd_viommu_invalidate / test_err_viommu_invalidate: IOMMU_HWPT_INVALIDATE
 * with hwpt_id = the vIOMMU and `entries` in process memory (`uptr: 0n` for
 * NULL). Returns rc and the entry_num written back.
 */
export function viommuInvalidate(
  proc: Process,
  fd: number,
  viommuId: number,
  entries: readonly ViommuInvEntry[],
  more: Partial<iommu_hwpt_invalidate> = {},
): { rc: number; entryNum: number } {
  const va = proc.mmap(PAGE);
  if (va < 0n) throw new Error(`mmap failed ${va}`);
  entries.forEach((e, i) => {
    const bytes = structs.iommu_viommu_invalidate_selftest.encode({
      flags: e.flags ?? 0,
      vdev_id: e.vdev_id,
      cache_id: e.cache_id ?? 0,
    });
    proc.writeMemory(va + BigInt(i * VIOMMU_INV_LEN), bytes);
  });
  const b = structs.iommu_hwpt_invalidate.encode({
    size: structs.iommu_hwpt_invalidate.sizeof,
    hwpt_id: viommuId,
    data_uptr: va,
    data_type: IOMMU_VIOMMU_INVALIDATE_DATA_SELFTEST,
    entry_len: VIOMMU_INV_LEN,
    entry_num: entries.length,
    ...more,
  });
  const rc = proc.ioctl(fd, IOMMU_HWPT_INVALIDATE, b);
  proc.munmap(va, PAGE);
  return { rc, entryNum: structs.iommu_hwpt_invalidate.decode(b).entry_num };
}

/** IOMMU_TEST_OP_TRIGGER_VEVENT for idev `devId`. */
export function triggerVevent(proc: Process, fd: number, devId: number): number {
  return testCmd(proc, fd, {
    op: IOMMU_TEST_OP_TRIGGER_VEVENT,
    trigger_vevent: { dev_id: devId },
  }).rc;
}

/** One item read from a vEVENTQ fd: its header and, for a selftest event, the virt_id. */
export interface VeventItem {
  readonly flags: number;
  readonly sequence: number;
  /** The payload's virt_id; undefined for a LOST_EVENTS marker (no payload). */
  readonly virtId?: number;
}

/**
 * read() of `count` bytes from a selftest vEVENTQ fd, decoded item by item:
 * an 8-byte header, then a 4-byte virt_id unless the header is a
 * LOST_EVENTS marker. Returns rc (bytes or -errno), the raw bytes and the items.
 */
export function readVevents(
  proc: Process,
  eventFd: number,
  count: number,
  pos = 0,
): { rc: number; bytes: Uint8Array; items: VeventItem[] } {
  const buffer = new Uint8Array(count);
  const rc = proc.read(eventFd, buffer, pos);
  const items: VeventItem[] = [];
  const hdr = structs.iommufd_vevent_header;
  let at = 0;
  while (rc > 0 && at + hdr.sizeof <= rc) {
    const h = hdr.decode(buffer, at);
    at += hdr.sizeof;
    if ((h.flags & 1) !== 0) {
      items.push({ flags: h.flags, sequence: h.sequence });
      continue;
    }
    const virtId = structs.iommu_viommu_event_selftest.decode(buffer, at).virt_id;
    at += structs.iommu_viommu_event_selftest.sizeof;
    items.push({ flags: h.flags, sequence: h.sequence, virtId });
  }
  return { rc, bytes: buffer.subarray(0, Math.max(rc, 0)), items };
}

/** The exact bytes of selftest vEVENT items (header + virt_id, or a bare LOST_EVENTS header). */
export function veventBytes(items: readonly VeventItem[]): Uint8Array {
  const parts = items.map((i) => {
    const h = structs.iommufd_vevent_header.encode({ flags: i.flags, sequence: i.sequence });
    if (i.virtId === undefined) return h;
    const p = structs.iommu_viommu_event_selftest.encode({ virt_id: i.virtId });
    const out = new Uint8Array(h.length + p.length);
    out.set(h, 0);
    out.set(p, h.length);
    return out;
  });
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

// ---- the object table -----------------------------------------------------------------------

/** Every object of the context as "id:TYPE:state" (tombstones and pending ones included). */
export function objectStates(proc: Process, fd: number): string[] {
  return (proc.inspect(fd)?.objects ?? []).map((o) => `${o.id}:${o.type}:${o.state}`);
}

/** How many references beyond the table's own object `id` has (-1 when it is not in the table). */
export function usersOf(proc: Process, fd: number, id: number): number {
  return proc.inspect(fd)?.objects.find((o) => o.id === id)?.users ?? -1;
}

// ---- the iommufd_viommu fixture ---------------------------------------------------------------

/** What {@link viommuFixture} built (ids are 0 in the no_viommu variant). */
export interface ViommuFixture {
  readonly host: Host;
  readonly proc: Process;
  readonly fd: number;
  readonly ioas: number;
  /** The mock device's selftest object. */
  readonly stdev: number;
  /** The mock device's idev. */
  readonly idev: number;
  /** The NEST_PARENT paging HWPT. */
  readonly parent: number;
  /** The selftest vIOMMU on it. */
  readonly viommu: number;
  /** A nested HWPT allocated on the vIOMMU (iotlb 0xbadbeef). */
  readonly nested: number;
}

/**
 * FIXTURE_SETUP(iommufd_viommu): an IOAS; in the mock_viommu variant also a
 * mock device attached to it, a NEST_PARENT HWPT, a selftest vIOMMU without
 * data and a nested HWPT on the vIOMMU (throws if a step fails). On a fresh
 * fd that is ioas 1, stdev 2, idev 3, auto HWPT 4, parent 5, vIOMMU 6,
 * nested 7.
 */
export function viommuFixture(
  variant: 'mock_viommu' | 'no_viommu' = 'mock_viommu',
  config: HostConfig = { selftest: true },
): ViommuFixture {
  const { host, proc, fd } = setup(config);
  const ioas = ioasAlloc(proc, fd);
  if (variant === 'no_viommu') {
    return { host, proc, fd, ioas, stdev: 0, idev: 0, parent: 0, viommu: 0, nested: 0 };
  }
  const md = mockDomain(proc, fd, ioas);
  if (md.rc !== 0) throw new Error(`MOCK_DOMAIN failed ${md.rc}`);
  const step = (what: string, got: { rc: number; id: number }): number => {
    if (got.rc !== 0) throw new Error(`${what} failed ${got.rc}: ${proc.lastError()?.reason}`);
    return got.id;
  };
  const parent = step('NEST_PARENT HWPT_ALLOC', nestParentAlloc(proc, fd, md.idevId, ioas));
  const viommu = step('VIOMMU_ALLOC', viommuAlloc(proc, fd, md.idevId, parent));
  const nested = step('nested HWPT_ALLOC', viommuNestedAlloc(proc, fd, md.idevId, viommu));
  return { host, proc, fd, ioas, stdev: md.stdevId, idev: md.idevId, parent, viommu, nested };
}

export { expectErrno } from './helpers-a.js';
export { devCheckCache } from './helpers-c.js';
