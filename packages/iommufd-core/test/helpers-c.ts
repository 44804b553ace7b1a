/**
 * Test helpers for devices, access objects, the VFIO cdev and accounting:
 * the selftest's access ops (iommufd_utils.h's test_cmd_create_access and
 * friends) and the VFIO device ioctls, each sent as real struct bytes.
 */
import {
  IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
  IOMMU_TEST_OP_ACCESS_RW,
  IOMMU_TEST_OP_DEV_CHECK_CACHE,
  IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
  MOCK_ACCESS_RW_WRITE,
  structs,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_DEVICE_DETACH_IOMMUFD_PT,
} from '@iommufd-sim/uapi-types';
import { expect } from 'vitest';
import type { Process } from '../src/index.js';
import { PAGE, testCmd } from './helpers.js';

/** IOMMU_TEST_OP_ACCESS_RW between the IOAS at `iova` and process memory at `uptr`. */
export function accessRw(
  proc: Process,
  fd: number,
  accessFd: number,
  iova: bigint,
  length: bigint,
  uptr: bigint,
  flags = 0,
): number {
  return testCmd(proc, fd, {
    op: IOMMU_TEST_OP_ACCESS_RW,
    id: accessFd,
    access_rw: { iova, length, uptr, flags },
  }).rc;
}

/** IOMMU_TEST_OP_ACCESS_REPLACE_IOAS. */
export function accessReplaceIoas(
  proc: Process,
  fd: number,
  accessFd: number,
  ioasId: number,
): number {
  return testCmd(proc, fd, {
    op: IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
    id: accessFd,
    access_replace_ioas: { ioas_id: ioasId },
  }).rc;
}

/** IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT. */
export function setTempMemoryLimit(proc: Process, fd: number, limit: number): number {
  return testCmd(proc, fd, { op: IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, memory_limit: { limit } }).rc;
}

/** IOMMU_TEST_OP_DEV_CHECK_CACHE: 0 when cache word `word` of idev `idevId` is `value`. */
export function devCheckCache(
  proc: Process,
  fd: number,
  idevId: number,
  word: number,
  value: number,
): number {
  return testCmd(proc, fd, {
    op: IOMMU_TEST_OP_DEV_CHECK_CACHE,
    id: idevId,
    check_dev_cache: { id: word, cache: value },
  }).rc;
}

/** VFIO_DEVICE_BIND_IOMMUFD; returns rc and out_devid. */
export function vfioBind(
  proc: Process,
  deviceFd: number,
  iommufd: number,
  flags = 0,
): { rc: number; devid: number } {
  const b = structs.vfio_device_bind_iommufd.encode({ argsz: 24, flags, iommufd });
  const rc = proc.ioctl(deviceFd, VFIO_DEVICE_BIND_IOMMUFD, b);
  return { rc, devid: structs.vfio_device_bind_iommufd.decode(b).out_devid };
}

/** VFIO_DEVICE_ATTACH_IOMMUFD_PT; returns rc and the pt_id written back. */
export function vfioAttach(
  proc: Process,
  deviceFd: number,
  ptId: number,
): { rc: number; ptId: number } {
  const b = structs.vfio_device_attach_iommufd_pt.encode({ argsz: 16, flags: 0, pt_id: ptId });
  const rc = proc.ioctl(deviceFd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, b);
  return { rc, ptId: structs.vfio_device_attach_iommufd_pt.decode(b).pt_id };
}

/** VFIO_DEVICE_DETACH_IOMMUFD_PT. */
export function vfioDetach(proc: Process, deviceFd: number): number {
  return proc.ioctl(
    deviceFd,
    VFIO_DEVICE_DETACH_IOMMUFD_PT,
    structs.vfio_device_detach_iommufd_pt.encode({ argsz: 12, flags: 0 }),
  );
}

/** Object ids and types of the context behind `fd`, as "id:TYPE" strings. */
export function objectsOf(proc: Process, fd: number): string[] {
  return (proc.inspect(fd)?.objects ?? []).map((o) => `${o.id}:${o.type}`);
}

/** A deterministic byte pattern (a small LCG), so failures reproduce. */
export function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** mmap `length` bytes and fill them with {@link pattern}; returns the VA. */
export function filledBuffer(proc: Process, length: number, seed: number): bigint {
  const va = proc.mmap(length);
  if (va < 0n) throw new Error(`mmap failed ${va}`);
  if (proc.writeMemory(va, pattern(length, seed)) !== 0) throw new Error('writeMemory failed');
  return va;
}

/**
 * Where two byte arrays first differ ('' when equal): "length a != b" or
 * "byte i: x != y". Large typed-array toEqual is slow in vitest; compare
 * with expect(firstDifference(a, b)).toBe('').
 */
export function firstDifference(a: Uint8Array | null, b: Uint8Array): string {
  if (a === null) return 'null';
  if (a.length !== b.length) return `length ${a.length} != ${b.length}`;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `byte ${i}: ${a[i]} != ${b[i]}`;
  return '';
}

/** Whether a[aAt, aAt + n) equals b[bAt, bAt + n). */
export function sameBytes(
  a: Uint8Array,
  aAt: number,
  b: Uint8Array,
  bAt: number,
  n: number,
): boolean {
  for (let i = 0; i < n; i++) if (a[aAt + i] !== b[bAt + i]) return false;
  return true;
}

/**
 * check_access_rw: every length 1..63 at every IOVA within 50 bytes of the
 * page boundary, read then write, each checked byte for byte (including
 * that nothing outside the range changed); then one read of the whole buffer.
 * Mismatches are collected and asserted once (per-byte expects are slow).
 */
export function checkAccessRw(
  proc: Process,
  fd: number,
  accessFd: number,
  iova: bigint,
  buffer: bigint,
  size: bigint,
  flags: number,
  seed: number,
): void {
  const shadow = pattern(Number(size), seed);
  expect(proc.writeMemory(buffer, shadow)).toBe(0);
  const tmp = proc.mmap(PAGE);
  const sentinel = new Uint8Array(64).fill(0xa5);
  const problems: string[] = [];
  let round = 0;
  for (let at = iova + PAGE - 50n; at < iova + PAGE + 50n; at++) {
    const off = Number(at - iova);
    for (let length = 1; length < 64; length++) {
      round++;
      const where = `iova +${off} length ${length}`;
      // Read: exactly `length` bytes land in tmp, the rest keep the sentinel.
      proc.writeMemory(tmp, sentinel);
      const rcRead = accessRw(proc, fd, accessFd, at, BigInt(length), tmp, flags);
      const got = proc.readMemory(tmp, 64) as Uint8Array;
      if (rcRead !== 0) problems.push(`${where}: read rc ${rcRead}`);
      else if (!sameBytes(got, 0, shadow, off, length)) problems.push(`${where}: read data`);
      else if (!sameBytes(got, length, sentinel, length, 64 - length))
        problems.push(`${where}: read wrote past the length`);
      // Write: the bytes at [off, off + length) change and nothing around them does.
      const data = pattern(length, seed * 1000 + round);
      proc.writeMemory(tmp, data);
      const rcWrite = accessRw(
        proc,
        fd,
        accessFd,
        at,
        BigInt(length),
        tmp,
        flags | MOCK_ACCESS_RW_WRITE,
      );
      if (rcWrite !== 0) problems.push(`${where}: write rc ${rcWrite}`);
      shadow.set(data, off);
      const around = proc.readMemory(buffer + BigInt(off - 1), length + 2) as Uint8Array;
      if (!sameBytes(around, 0, shadow, off - 1, length + 2)) problems.push(`${where}: write data`);
      if (problems.length > 5) break;
    }
  }
  expect(problems).toEqual([]);
  expect(round).toBe(100 * 63);
  // Multi-page read of the whole buffer.
  const whole = proc.mmap(size);
  expect(accessRw(proc, fd, accessFd, iova, size, whole, flags)).toBe(0);
  expect(firstDifference(proc.readMemory(whole, Number(size)), shadow)).toBe('');
  expect(firstDifference(proc.readMemory(buffer, Number(size)), shadow)).toBe('');
  expect(proc.munmap(whole, size)).toBe(0);
  expect(proc.munmap(tmp, PAGE)).toBe(0);
}

export { accessPages, createAccess, destroyAccessPages, testCmd } from './helpers.js';
