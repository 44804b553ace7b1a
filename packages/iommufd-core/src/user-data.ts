/**
 * Driver data in user memory, as the kernel's iommu_copy_struct_* helpers
 * read it: a single struct (iommu_user_data: HWPT_ALLOC and VIOMMU_ALLOC
 * data) and arrays of entries (iommu_user_data_array: HWPT_INVALIDATE).
 * Drivers of the viommu package get these as callbacks.
 */

import { E2BIG, EFAULT, EINVAL, ENOMEM } from '@iommufd-sim/uapi-types';
import type { Refusal, UserArray, UserData } from '@iommufd-sim/viommu';
import type { Process } from './process.js';

/**
 * __iommu_copy_struct_from_user as 6.17 answers it: a length below
 * `minSize` or above `size` is EINVAL; an unreadable pointer EFAULT. The
 * struct's `size` bytes, zero past `len`.
 */
export function copyUserStruct(
  proc: Process,
  name: string,
  size: number,
  minSize: number,
  uptr: bigint,
  len: number,
): Uint8Array | Refusal {
  if (len < minSize || len > size) {
    return {
      errno: EINVAL,
      reason: `${name} is ${size} bytes (at least ${minSize}); ${len} were given`,
    };
  }
  const out = new Uint8Array(size);
  if (uptr === 0n || !proc.copyFromUser(uptr, out, 0, len)) {
    return { errno: EFAULT, reason: `${name} at 0x${uptr.toString(16)} cannot be read` };
  }
  return out;
}

/** The user's driver data of an ioctl (`type`, `uptr`, `len`) with the kernel's copy rules. */
export function userData(
  proc: Process,
  name: string,
  type: number,
  uptr: bigint,
  len: number,
): UserData {
  return {
    type,
    length: len,
    copyIn: (size, minSize) => copyUserStruct(proc, name, size, minSize, uptr, len),
    copyOut: (bytes) => {
      // copy_struct_to_user: min(len, sizeof) bytes, zeros past the kernel's struct.
      const out = new Uint8Array(len);
      out.set(bytes.subarray(0, Math.min(len, bytes.length)));
      if (uptr === 0n || !proc.copyToUser(uptr, out)) {
        return { errno: EFAULT, reason: `${name} at 0x${uptr.toString(16)} cannot be written` };
      }
      return undefined;
    },
  };
}

/** KMALLOC_MAX_SIZE on x86-64 (4 KiB pages, MAX_PAGE_ORDER 10): a larger kcalloc fails. */
const KMALLOC_MAX_SIZE = 4 * 1024 * 1024;

/** An invalidation array (`type`, `uptr`, `entryLength`, `count`) in user memory. */
export function userArray(
  proc: Process,
  name: string,
  type: number,
  uptr: bigint,
  entryLength: number,
  count: number,
): UserArray {
  return {
    type,
    entryLength,
    count,
    copyEntry: (index, size) =>
      copyUserStruct(
        proc,
        name,
        size,
        size,
        uptr + BigInt(entryLength) * BigInt(index),
        entryLength,
      ),
    copyAll: (size) => {
      // iommu_copy_struct_from_full_user_array: one copy when the sizes agree,
      // else copy_struct_from_user per entry (zero-extend short entries, E2BIG for
      // non-zero bytes past the kernel's struct). An empty array is EINVAL there,
      // so entry_num 0 is no probe for a driver that copies the full array (SMMUv3).
      if (count === 0) {
        return { errno: EINVAL, reason: `the ${name} array is empty (entry_num 0)` };
      }
      // The drivers kcalloc(entry_num, size) the kernel copy first.
      if (count * size > KMALLOC_MAX_SIZE) {
        return {
          errno: ENOMEM,
          reason: `${count} entries of ${size} bytes are more than kcalloc gives (4 MiB)`,
        };
      }
      const out: Uint8Array[] = [];
      if (entryLength === size) {
        const all = new Uint8Array(size * count);
        if (count > 0 && (uptr === 0n || !proc.copyFromUser(uptr, all))) {
          return {
            errno: EFAULT,
            reason: `the ${name} array at 0x${uptr.toString(16)} cannot be read`,
          };
        }
        for (let i = 0; i < count; i++) out.push(all.subarray(i * size, (i + 1) * size));
        return out;
      }
      for (let i = 0; i < count; i++) {
        const raw = new Uint8Array(entryLength);
        const at = uptr + BigInt(entryLength) * BigInt(i);
        if (!proc.copyFromUser(at, raw)) {
          return {
            errno: EFAULT,
            reason: `${name} entry ${i} at 0x${at.toString(16)} cannot be read`,
          };
        }
        if (raw.subarray(size).some((b) => b !== 0)) {
          return {
            errno: E2BIG,
            reason: `${name} entry ${i} has non-zero bytes past the kernel's ${size}-byte struct`,
          };
        }
        const entry = new Uint8Array(size);
        entry.set(raw.subarray(0, Math.min(size, entryLength)));
        out.push(entry);
      }
      return out;
    },
  };
}
