/**
 * Test helpers: drive the model through its public surface with real struct
 * bytes, the way the kernel selftests' iommufd_utils.h does.
 */
import {
  IOMMU_DESTROY,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_TEST_CMD,
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_ADD_RESERVED,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
  IOMMU_TEST_OP_MD_CHECK_MAP,
  IOMMU_TEST_OP_MD_CHECK_REFS,
  IOMMU_TEST_OP_MOCK_DOMAIN,
  IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
  IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
  structs,
} from '@iommufd-sim/uapi-types';
import { expect } from 'vitest';
import { createHost, type Host, type HostConfig, type Process } from '../src/index.js';

export const PAGE = 4096n;
export const RW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
export const FIXED = IOMMU_IOAS_MAP_FIXED_IOVA;
export const U64_MAX = (1n << 64n) - 1n;

/** A selftest host, a root process and an open /dev/iommu. */
export function setup(config: HostConfig = { selftest: true }): {
  host: Host;
  proc: Process;
  fd: number;
} {
  const host = createHost(config);
  const proc = host.createProcess();
  const fd = proc.open('/dev/iommu');
  return { host, proc, fd };
}

/** IOMMU_IOAS_ALLOC; returns the id (throws if it fails: a setup step). */
export function ioasAlloc(proc: Process, fd: number): number {
  const b = structs.iommu_ioas_alloc.encode({ size: 12 });
  const rc = proc.ioctl(fd, IOMMU_IOAS_ALLOC, b);
  if (rc !== 0) throw new Error(`IOAS_ALLOC failed ${rc}`);
  return structs.iommu_ioas_alloc.decode(b).out_ioas_id;
}

/** IOMMU_IOAS_MAP; returns rc and the iova written back. */
export function map(
  proc: Process,
  fd: number,
  ioasId: number,
  userVa: bigint,
  length: bigint,
  iova?: bigint,
  flags = RW,
): { rc: number; iova: bigint } {
  const b = structs.iommu_ioas_map.encode({
    size: 40,
    flags: iova === undefined ? flags : flags | FIXED,
    ioas_id: ioasId,
    user_va: userVa,
    length,
    iova: iova ?? 0n,
  });
  const rc = proc.ioctl(fd, IOMMU_IOAS_MAP, b);
  return { rc, iova: structs.iommu_ioas_map.decode(b).iova };
}

/** IOMMU_IOAS_UNMAP; returns rc and the length written back. */
export function unmap(
  proc: Process,
  fd: number,
  ioasId: number,
  iova: bigint,
  length: bigint,
): { rc: number; length: bigint } {
  const b = structs.iommu_ioas_unmap.encode({ size: 24, ioas_id: ioasId, iova, length });
  const rc = proc.ioctl(fd, IOMMU_IOAS_UNMAP, b);
  return { rc, length: structs.iommu_ioas_unmap.decode(b).length };
}

/** IOMMU_IOAS_COPY. */
export function copy(
  proc: Process,
  fd: number,
  dstIoas: number,
  srcIoas: number,
  srcIova: bigint,
  length: bigint,
  dstIova?: bigint,
  flags = RW,
): { rc: number; iova: bigint } {
  const b = structs.iommu_ioas_copy.encode({
    size: 40,
    flags: dstIova === undefined ? flags : flags | FIXED,
    dst_ioas_id: dstIoas,
    src_ioas_id: srcIoas,
    length,
    dst_iova: dstIova ?? 0n,
    src_iova: srcIova,
  });
  const rc = proc.ioctl(fd, IOMMU_IOAS_COPY, b);
  return { rc, iova: structs.iommu_ioas_copy.decode(b).dst_iova };
}

/** IOMMU_IOAS_IOVA_RANGES with room for `room` ranges in process memory. */
export function iovaRanges(
  proc: Process,
  fd: number,
  ioasId: number,
  room = 8,
): { rc: number; num: number; alignment: bigint; ranges: { start: bigint; last: bigint }[] } {
  const buf = proc.mmap(4096);
  const b = structs.iommu_ioas_iova_ranges.encode({
    size: 32,
    ioas_id: ioasId,
    num_iovas: room,
    allowed_iovas: buf,
  });
  const rc = proc.ioctl(fd, IOMMU_IOAS_IOVA_RANGES, b);
  const out = structs.iommu_ioas_iova_ranges.decode(b);
  const ranges: { start: bigint; last: bigint }[] = [];
  const mem = proc.readMemory(buf, 16 * Math.min(room, out.num_iovas)) as Uint8Array;
  for (let i = 0; i < Math.min(room, out.num_iovas); i++) {
    ranges.push(structs.iommu_iova_range.decode(mem, i * 16));
  }
  proc.munmap(buf, 4096);
  return { rc, num: out.num_iovas, alignment: out.out_iova_alignment, ranges };
}

/** IOMMU_IOAS_ALLOW_IOVAS. */
export function allowIovas(
  proc: Process,
  fd: number,
  ioasId: number,
  ranges: { start: bigint; last: bigint }[],
): number {
  const buf = proc.mmap(4096);
  ranges.forEach((r, i) => {
    proc.writeMemory(buf + BigInt(i * 16), structs.iommu_iova_range.encode(r));
  });
  const b = structs.iommu_ioas_allow_iovas.encode({
    size: 24,
    ioas_id: ioasId,
    num_iovas: ranges.length,
    allowed_iovas: buf,
  });
  const rc = proc.ioctl(fd, IOMMU_IOAS_ALLOW_IOVAS, b);
  proc.munmap(buf, 4096);
  return rc;
}

/** IOMMU_DESTROY. */
export function destroy(proc: Process, fd: number, id: number): number {
  return proc.ioctl(fd, IOMMU_DESTROY, structs.iommu_destroy.encode({ size: 8, id }));
}

/** IOMMU_OPTION; returns rc and val64. */
export function option(
  proc: Process,
  fd: number,
  optionId: number,
  op: number,
  objectId: number,
  val64 = 0n,
): { rc: number; val64: bigint } {
  const b = structs.iommu_option.encode({
    size: 24,
    option_id: optionId,
    op,
    object_id: objectId,
    val64,
  });
  const rc = proc.ioctl(fd, IOMMU_OPTION, b);
  return { rc, val64: structs.iommu_option.decode(b).val64 };
}

/** IOMMU_TEST_OP_MOCK_DOMAIN(_FLAGS) on IOAS or HWPT `ptId`. */
export function mockDomain(
  proc: Process,
  fd: number,
  ptId: number,
  devFlags?: number,
): { rc: number; stdevId: number; hwptId: number; idevId: number } {
  const { rc, out } = testCmd(proc, fd, {
    op: devFlags === undefined ? IOMMU_TEST_OP_MOCK_DOMAIN : IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
    id: ptId,
    mock_domain_flags: { dev_flags: devFlags ?? 0 },
  });
  const md = out.mock_domain;
  return { rc, stdevId: md.out_stdev_id, hwptId: md.out_hwpt_id, idevId: md.out_idev_id };
}

/** IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE; returns rc and the HWPT now attached. */
export function mockReplace(
  proc: Process,
  fd: number,
  stdevId: number,
  ptId: number,
): { rc: number; ptId: number } {
  const { rc, out } = testCmd(proc, fd, {
    op: IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
    id: stdevId,
    mock_domain_replace: { pt_id: ptId },
  });
  return { rc, ptId: out.mock_domain_replace.pt_id };
}

/** IOMMU_TEST_OP_ADD_RESERVED. */
export function addReserved(
  proc: Process,
  fd: number,
  ioasId: number,
  start: bigint,
  length: bigint,
): number {
  return testCmd(proc, fd, {
    op: IOMMU_TEST_OP_ADD_RESERVED,
    id: ioasId,
    add_reserved: { start, length },
  }).rc;
}

/** IOMMU_TEST_OP_MD_CHECK_REFS: 0 when every page of [uptr, +length) is pinned `refs` times. */
export function checkRefs(
  proc: Process,
  fd: number,
  uptr: bigint,
  length: bigint,
  refs: number,
): number {
  return testCmd(proc, fd, {
    op: IOMMU_TEST_OP_MD_CHECK_REFS,
    check_refs: { length, uptr, refs },
  }).rc;
}

/** IOMMU_TEST_OP_MD_CHECK_MAP: 0 when the mock HWPT maps [iova, +length) to the pages at uptr. */
export function checkMap(
  proc: Process,
  fd: number,
  hwptId: number,
  iova: bigint,
  length: bigint,
  uptr: bigint,
): number {
  return testCmd(proc, fd, {
    op: IOMMU_TEST_OP_MD_CHECK_MAP,
    id: hwptId,
    check_map: { iova, length, uptr },
  }).rc;
}

type TestCmdFields = Parameters<typeof structs.iommu_test_cmd.encode>[0];

/** IOMMU_TEST_CMD with `fields` (size 72 unless given); returns rc and the bytes after the call. */
export function testCmd(
  proc: Process,
  fd: number,
  fields: TestCmdFields,
): { rc: number; out: ReturnType<typeof structs.iommu_test_cmd.decode> } {
  const b = structs.iommu_test_cmd.encode({ size: 72, ...fields });
  const rc = proc.ioctl(fd, IOMMU_TEST_CMD, b);
  return { rc, out: structs.iommu_test_cmd.decode(b) };
}

/** IOMMU_TEST_OP_CREATE_ACCESS on `ioasId`; returns rc and the access fd. */
export function createAccess(
  proc: Process,
  fd: number,
  ioasId: number,
  flags = 0,
): { rc: number; accessFd: number } {
  const { rc, out } = testCmd(proc, fd, {
    op: IOMMU_TEST_OP_CREATE_ACCESS,
    id: ioasId,
    create_access: { flags },
  });
  return { rc, accessFd: out.create_access.out_access_fd };
}

/** IOMMU_TEST_OP_ACCESS_PAGES; returns rc and the item id. */
export function accessPages(
  proc: Process,
  fd: number,
  accessFd: number,
  iova: bigint,
  length: bigint,
  uptr = 0n,
  flags = 0,
): { rc: number; item: number } {
  const { rc, out } = testCmd(proc, fd, {
    op: IOMMU_TEST_OP_ACCESS_PAGES,
    id: accessFd,
    access_pages: { flags, iova, length, uptr },
  });
  return { rc, item: out.access_pages.out_access_pages_id };
}

/** IOMMU_TEST_OP_DESTROY_ACCESS_PAGES. */
export function destroyAccessPages(
  proc: Process,
  fd: number,
  accessFd: number,
  item: number,
): number {
  return testCmd(proc, fd, {
    op: IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
    id: accessFd,
    destroy_access_pages: { access_pages_id: item },
  }).rc;
}

/** IOMMU_IOAS_MAP_FILE of [start, start + length) of memfd `mfd`; FIXED when `iova` is given. */
export function mapFile(
  proc: Process,
  fd: number,
  ioasId: number,
  mfd: number,
  start: bigint,
  length: bigint,
  iova?: bigint,
  flags = RW,
): { rc: number; iova: bigint } {
  const b = structs.iommu_ioas_map_file.encode({
    size: 40,
    flags: iova === undefined ? flags : flags | FIXED,
    ioas_id: ioasId,
    fd: mfd,
    start,
    length,
    iova: iova ?? 0n,
  });
  const rc = proc.ioctl(fd, IOMMU_IOAS_MAP_FILE, b);
  return { rc, iova: structs.iommu_ioas_map_file.decode(b).iova };
}

/**
 * Close `fd` and check what every test must leave behind: nothing pinned
 * anywhere on the host and no exception caught at the syscall boundary.
 */
export function closeAndCheck(host: Host, proc: Process, fd: number): void {
  expect(proc.close(fd)).toBe(0);
  expect(host.pinnedPages()).toBe(0);
  expect(host.internalErrors).toBe(0);
}
