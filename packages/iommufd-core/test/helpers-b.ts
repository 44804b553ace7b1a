/**
 * Helpers for the MAP / MAP_FILE / UNMAP / COPY conformance tests: raw map
 * structs (to set flags and reserved fields freely), access objects, fixtures
 * with 0, 1 or 2 mock domains, and the teardown check every test ends with.
 */
import {
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_TEST_CMD,
  IOMMU_TEST_OP_ACCESS_PAGES,
  IOMMU_TEST_OP_CREATE_ACCESS,
  IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
  type iommu_ioas_copy,
  type iommu_ioas_map,
  type iommu_ioas_map_file,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  structs,
} from '@iommufd-sim/uapi-types';
import { expect } from 'vitest';
import type { Host, HostConfig, Process } from '../src/index.js';
import { FIXED, ioasAlloc, mockDomain, RW, setup } from './helpers.js';

/** The mock domain's smallest IO page (MOCK_PAGE_SIZE = PAGE_SIZE / 2). */
export const MOCK_PAGE = 2048n;
/** First IOVA of the mock domain's aperture. */
export const APERTURE = BigInt(MOCK_APERTURE_START);
/** Last IOVA of the mock domain's aperture. */
export const APERTURE_LAST = BigInt(MOCK_APERTURE_LAST);
/** The 2 MiB transparent huge page size: large mmaps are aligned to it. */
export const HPAGE = 2n * 1024n * 1024n;

/** A host, a process, an open /dev/iommu, one IOAS and `domains` mock devices attached to it. */
export interface Env {
  host: Host;
  proc: Process;
  fd: number;
  ioas: number;
  /** The auto HWPT of each mock device (empty without domains). */
  hwpts: number[];
  /** The selftest object of each mock device. */
  stdevs: number[];
}

/** Build an {@link Env} (like the selftest fixtures' setup). */
export function env(domains: 0 | 1 | 2, config: HostConfig = { selftest: true }): Env {
  const { host, proc, fd } = setup(config);
  const ioas = ioasAlloc(proc, fd);
  const hwpts: number[] = [];
  const stdevs: number[] = [];
  for (let i = 0; i < domains; i++) {
    const md = mockDomain(proc, fd, ioas);
    if (md.rc !== 0) throw new Error(`MOCK_DOMAIN failed ${md.rc}`);
    hwpts.push(md.hwptId);
    stdevs.push(md.stdevId);
  }
  return { host, proc, fd, ioas, hwpts, stdevs };
}

/**
 * The selftests' global `buffer`: the first bytes of a 2 MiB anonymous
 * mapping, so its address is 2 MiB aligned (automatic IOVAs keep that
 * alignment, which some expectations depend on).
 */
export function hugeAlignedBuffer(proc: Process): bigint {
  const va = proc.mmap(HPAGE);
  if (va < 0n || va % HPAGE !== 0n) throw new Error(`mmap gave ${va}`);
  return va;
}

/** A fresh page-aligned anonymous buffer of `bytes`. */
export function buffer(proc: Process, bytes: bigint, readOnly = false): bigint {
  const va = proc.mmap(bytes, { readOnly });
  if (va < 0n) throw new Error(`mmap failed ${va}`);
  return va;
}

/** A memfd of `bytes` and a shared mapping of it. */
export function memfdBuffer(proc: Process, bytes: bigint): { mfd: number; va: bigint } {
  const mfd = proc.memfdCreate('buf', bytes);
  if (mfd < 0) throw new Error(`memfd_create failed ${mfd}`);
  const va = proc.mmap(bytes, { fd: mfd });
  if (va < 0n) throw new Error(`mmap of the memfd failed ${va}`);
  return { mfd, va };
}

/** Field values of struct iommu_ioas_map (size defaults to 40). */
export type MapFields = Partial<iommu_ioas_map>;

/** IOMMU_IOAS_MAP with every field as given; returns rc and the struct as it came back. */
export function mapRaw(
  proc: Process,
  fd: number,
  fields: MapFields,
): { rc: number; out: iommu_ioas_map } {
  const b = structs.iommu_ioas_map.encode({ size: 40, ...fields });
  const rc = proc.ioctl(fd, IOMMU_IOAS_MAP, b);
  return { rc, out: structs.iommu_ioas_map.decode(b) };
}

/** Field values of struct iommu_ioas_map_file (size defaults to 40). */
export type MapFileFields = Partial<iommu_ioas_map_file>;

/** IOMMU_IOAS_MAP_FILE with every field as given. */
export function mapFileRaw(
  proc: Process,
  fd: number,
  fields: MapFileFields,
): { rc: number; out: iommu_ioas_map_file } {
  const b = structs.iommu_ioas_map_file.encode({ size: 40, ...fields });
  const rc = proc.ioctl(fd, IOMMU_IOAS_MAP_FILE, b);
  return { rc, out: structs.iommu_ioas_map_file.decode(b) };
}

/** IOMMU_IOAS_COPY with every field as given (size defaults to 40). */
export function copyRaw(
  proc: Process,
  fd: number,
  fields: Partial<iommu_ioas_copy>,
): { rc: number; out: iommu_ioas_copy } {
  const b = structs.iommu_ioas_copy.encode({ size: 40, ...fields });
  const rc = proc.ioctl(fd, IOMMU_IOAS_COPY, b);
  return { rc, out: structs.iommu_ioas_copy.decode(b) };
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
  const { rc, out } = mapFileRaw(proc, fd, {
    flags: iova === undefined ? flags : flags | FIXED,
    ioas_id: ioasId,
    fd: mfd,
    start,
    length,
    iova: iova ?? 0n,
  });
  return { rc, iova: out.iova };
}

/** IOMMU_TEST_OP_CREATE_ACCESS on `ioasId`; returns rc and the access fd. */
export function createAccess(
  proc: Process,
  fd: number,
  ioasId: number,
  flags: number,
): { rc: number; accessFd: number } {
  const b = structs.iommu_test_cmd.encode({
    size: 72,
    op: IOMMU_TEST_OP_CREATE_ACCESS,
    id: ioasId,
    create_access: { flags },
  });
  const rc = proc.ioctl(fd, IOMMU_TEST_CMD, b);
  return { rc, accessFd: structs.iommu_test_cmd.decode(b).create_access.out_access_fd };
}

/** IOMMU_TEST_OP_ACCESS_PAGES: pin [iova, +length) through the access; returns rc and the item id. */
export function accessPages(
  proc: Process,
  fd: number,
  accessFd: number,
  iova: bigint,
  length: bigint,
  uptr: bigint,
  flags = 0,
): { rc: number; item: number } {
  const b = structs.iommu_test_cmd.encode({
    size: 72,
    op: IOMMU_TEST_OP_ACCESS_PAGES,
    id: accessFd,
    access_pages: { flags, iova, length, uptr },
  });
  const rc = proc.ioctl(fd, IOMMU_TEST_CMD, b);
  return { rc, item: structs.iommu_test_cmd.decode(b).access_pages.out_access_pages_id };
}

/** IOMMU_TEST_OP_DESTROY_ACCESS_PAGES. */
export function destroyAccessPages(
  proc: Process,
  fd: number,
  accessFd: number,
  item: number,
): number {
  return proc.ioctl(
    fd,
    IOMMU_TEST_CMD,
    structs.iommu_test_cmd.encode({
      size: 72,
      op: IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
      id: accessFd,
      destroy_access_pages: { access_pages_id: item },
    }),
  );
}

/** The areas of IOAS `ioasId` as [iova, last] pairs, lowest first. */
export function areasOf(proc: Process, fd: number, ioasId: number): [bigint, bigint][] {
  const report = proc.inspect(fd);
  const ioas = report?.ioas.find((i) => i.id === ioasId);
  if (ioas === undefined) throw new Error(`no IOAS ${ioasId} in the report`);
  return ioas.areas.map((a) => [a.iova, a.last]);
}

/**
 * Hand an open file to another process, as SCM_RIGHTS over a unix socket
 * would (the model has no sockets): `to` gets a new fd for the same open
 * file description. This is how an unprivileged process can end up using a
 * /dev/iommu that root switched to RLIMIT_MODE 1.
 */
export function passFd(from: Process, fd: number, to: Process): number {
  const file = from.fileOf(fd);
  if (file === undefined) throw new Error(`fd ${fd} is not open`);
  file.refs++;
  return to.install(file);
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
