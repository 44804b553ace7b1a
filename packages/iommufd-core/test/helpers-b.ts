/**
 * Helpers for the MAP / MAP_FILE / UNMAP / COPY conformance tests: raw map
 * structs (to set flags and reserved fields freely), access objects, fixtures
 * with 0, 1 or 2 mock domains, and the teardown check every test ends with.
 */
import {
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FILE,
  type iommu_ioas_copy,
  type iommu_ioas_map,
  type iommu_ioas_map_file,
  MOCK_APERTURE_LAST,
  MOCK_APERTURE_START,
  structs,
} from '@iommufd-sim/uapi-types';
import type { Host, HostConfig, Process } from '../src/index.js';
import { ioasAlloc, mockDomain, setup } from './helpers.js';

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

export {
  accessPages,
  closeAndCheck,
  createAccess,
  destroyAccessPages,
  mapFile,
} from './helpers.js';
