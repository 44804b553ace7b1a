/**
 * Helpers for the dispatch, lifetime, IOVA-range, allow-list, option and
 * change-process conformance tests. They add to test/helpers.ts: raw
 * ioctls with hand-built argument bytes, file maps, access objects, and the
 * checks every test ends with.
 */
import {
  IOMMU_IOAS_CHANGE_PROCESS,
  IOMMU_IOAS_IOVA_RANGES,
  structs,
} from '@iommufd-sim/uapi-types';
import { expect } from 'vitest';
import type { Process } from '../src/index.js';

/** The mock domain's aperture and smallest page (selftest.c). */
export const MOCK_START = 0x1000000n;
export const MOCK_LAST = 0x7fffffffn;
export const MOCK_PAGE = 2048;

/** `length` bytes, all zero except a little-endian u32 `size` at offset 0. */
export function sized(size: number, length = size): Uint8Array {
  const b = new Uint8Array(length);
  new DataView(b.buffer).setUint32(0, size >>> 0, true);
  return b;
}

/** Asserts that `rc` is -errno and that lastError() names the call and errno with a reason. */
export function expectErrno(proc: Process, rc: number, errno: number, call?: string): void {
  expect(rc).toBe(-errno);
  const last = proc.lastError();
  expect(last?.errno).toBe(errno);
  if (call !== undefined) expect(last?.call).toBe(call);
  expect(last?.reason.length ?? 0).toBeGreaterThan(0);
}

/** The object ids and types of the context behind `fd`. */
export function objectIds(proc: Process, fd: number): { id: number; type: string }[] {
  return (proc.inspect(fd)?.objects ?? []).map((o) => ({ id: o.id, type: o.type }));
}

/** The IOAS report of `ioasId`, or undefined. */
export function ioasReport(proc: Process, fd: number, ioasId: number) {
  return proc.inspect(fd)?.ioas.find((i) => i.id === ioasId);
}

/** IOMMU_IOAS_CHANGE_PROCESS. */
export function changeProcess(proc: Process, fd: number, reserved = 0): number {
  return proc.ioctl(
    fd,
    IOMMU_IOAS_CHANGE_PROCESS,
    structs.iommu_ioas_change_process.encode({ size: 8, __reserved: reserved }),
  );
}

/**
 * IOMMU_IOAS_IOVA_RANGES into a caller-owned array at `arrayVa` (0n for
 * NULL). Returns rc and the num_iovas and out_iova_alignment written back.
 */
export function rangesInto(
  proc: Process,
  fd: number,
  ioasId: number,
  numIovas: number,
  arrayVa: bigint,
  fields: { reserved?: number; alignment?: bigint } = {},
): { rc: number; num: number; alignment: bigint } {
  const b = structs.iommu_ioas_iova_ranges.encode({
    size: 32,
    ioas_id: ioasId,
    num_iovas: numIovas,
    __reserved: fields.reserved ?? 0,
    allowed_iovas: arrayVa,
    out_iova_alignment: fields.alignment ?? 0n,
  });
  const rc = proc.ioctl(fd, IOMMU_IOAS_IOVA_RANGES, b);
  const out = structs.iommu_ioas_iova_ranges.decode(b);
  return { rc, num: out.num_iovas, alignment: out.out_iova_alignment };
}

/** Entry `i` of an iommu_iova_range array at `va`. */
export function rangeAt(proc: Process, va: bigint, i: number): { start: bigint; last: bigint } {
  const bytes = proc.readMemory(va + BigInt(i * 16), 16);
  if (bytes === null) throw new Error(`range ${i} at ${va} cannot be read`);
  return structs.iommu_iova_range.decode(bytes);
}

export { closeAndCheck as closeClean, createAccess, mapFile } from './helpers.js';
