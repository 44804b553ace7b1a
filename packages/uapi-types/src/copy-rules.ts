/**
 * How the kernel copies an ioctl argument in and out of user memory.
 *
 * iommufd (every `/dev/iommu` command): read the u32 `size`; below the
 * command's minimum → EINVAL; then copy_struct_from_user: a user struct longer
 * than the kernel's must be zero past the kernel's end (else E2BIG), a shorter
 * one reads its missing fields as zero. Output goes back as min(size, sizeof).
 *
 * The VFIO device cdev follows its own code (drivers/vfio/device_cdev.c,
 * 6.17): bind reads `argsz`, rejects < 16 with EINVAL and copies with a kernel
 * size of 16, so a non-zero byte past `out_devid` is E2BIG; attach and detach
 * read only the fields they use (plus `pasid` when its flag is set) and ignore
 * any trailing bytes.
 */
import { E2BIG, EFAULT, EINVAL, EOPNOTSUPP } from './errno.js';
import type { IoctlInfo } from './ioctls.js';
import { structs } from './structs.js';
import { asUserMemory, type UserMemory } from './user-memory.js';

/** The outcome of copying an argument in: the kernel's copy, or the errno and why. */
export type CopyInResult =
  | {
      readonly ok: true;
      /** The kernel's copy of the struct: `sizeof` bytes, zero where the user gave none. */
      readonly bytes: Uint8Array;
      /** The size the user claimed (`size` or `argsz`). */
      readonly userSize: number;
    }
  | CopyFailure;

/** A failed copy: the errno the kernel returns and a sentence saying why. */
export interface CopyFailure {
  readonly ok: false;
  readonly errno: number;
  readonly reason: string;
}

/** The outcome of copying a result back out. */
export type CopyOutResult = { readonly ok: true } | CopyFailure;

/** Options of {@link copyIoctlArgIn}. */
export interface CopyInOptions {
  /**
   * Whether the VFIO device supports PASID attach/detach; without it a PASID
   * flag is EOPNOTSUPP, as for a driver with no pasid ops. Default true.
   */
  readonly pasidSupported?: boolean;
}

const OK_OUT: CopyOutResult = Object.freeze({ ok: true });

function fail(errno: number, reason: string): CopyFailure {
  return { ok: false, errno, reason };
}

const CHUNK = 4096;

/**
 * The kernel's check_zeroed_user: are the `length` user bytes at `offset` all
 * zero? Returns the offset of the first non-zero byte, -1 if all are zero, or
 * undefined if an unreadable byte comes before any non-zero one.
 */
function firstNonZero(user: UserMemory, offset: number, length: number): number | undefined {
  const scratch = new Uint8Array(Math.min(CHUNK, length));
  for (let done = 0; done < length; done += CHUNK) {
    const n = Math.min(CHUNK, length - done);
    if (!user.read(offset + done, n, scratch, 0)) {
      // Part of this chunk faults: look byte by byte, as a non-zero byte
      // before the fault still makes the answer E2BIG.
      for (let i = 0; i < n; i++) {
        if (!user.read(offset + done + i, 1, scratch, 0)) return undefined;
        if (scratch[0] !== 0) return offset + done + i;
      }
    }
    for (let i = 0; i < n; i++) if (scratch[i] !== 0) return offset + done + i;
  }
  return -1;
}

/**
 * The kernel's copy_struct_from_user: fills `kernel` (the kernel's struct, its
 * length being the kernel size) from `userSize` bytes of user memory. A longer
 * user struct must be zero past the kernel size (E2BIG otherwise); a shorter
 * one leaves the rest of `kernel` zero. Unreadable memory is EFAULT.
 */
export function copyStructFromUser(
  kernel: Uint8Array,
  kernelSize: number,
  user: UserMemory | Uint8Array,
  userSize: number,
  what = 'struct',
): CopyFailure | undefined {
  const memory = asUserMemory(user);
  kernel.fill(0, 0, kernelSize);
  if (userSize > kernelSize) {
    const at = firstNonZero(memory, kernelSize, userSize - kernelSize);
    if (at === undefined) {
      return fail(
        EFAULT,
        `${what}: bytes ${kernelSize}..${userSize - 1} of the argument cannot be read`,
      );
    }
    if (at >= 0) {
      return fail(
        E2BIG,
        `${what}: byte ${at} is non-zero, past the ${kernelSize} bytes this kernel understands (size ${userSize})`,
      );
    }
  }
  const n = Math.min(userSize, kernelSize);
  if (!memory.read(0, n, kernel, 0))
    return fail(EFAULT, `${what}: the first ${n} bytes of the argument cannot be read`);
  return undefined;
}

// One scratch word: reading a u32 is on every ioctl's path and must not allocate.
const WORD = new Uint8Array(4);

function readU32(memory: UserMemory, offset: number): number | undefined {
  if (!memory.read(offset, 4, WORD, 0)) return undefined;
  return (
    ((WORD[0] as number) |
      ((WORD[1] as number) << 8) |
      ((WORD[2] as number) << 16) |
      ((WORD[3] as number) << 24)) >>>
    0
  );
}

/**
 * The iommufd rule on an argument that is a plain buffer: the same checks in
 * the same order as {@link copyIommufd}, without the UserMemory indirection
 * (the common case, so it is worth the few lines).
 */
function copyIommufdBytes(ioctl: IoctlInfo, buf: Uint8Array): CopyInResult {
  if (buf.length < 4) {
    return fail(EFAULT, `${ioctl.name}: the size field of the argument cannot be read`);
  }
  const size =
    ((buf[0] as number) |
      ((buf[1] as number) << 8) |
      ((buf[2] as number) << 16) |
      ((buf[3] as number) << 24)) >>>
    0;
  if (size < ioctl.minSize) {
    return fail(
      EINVAL,
      `${ioctl.name}: size ${size} is below the minimum ${ioctl.minSize} (the end of ${ioctl.struct}.${ioctl.minSizeField})`,
    );
  }
  const kernelSize = ioctl.size;
  if (size > kernelSize) {
    const end = Math.min(size, buf.length);
    for (let i = kernelSize; i < end; i++) {
      if (buf[i] !== 0) {
        return fail(
          E2BIG,
          `${ioctl.name}: byte ${i} is non-zero, past the ${kernelSize} bytes this kernel understands (size ${size})`,
        );
      }
    }
    if (size > buf.length) {
      return fail(
        EFAULT,
        `${ioctl.name}: bytes ${kernelSize}..${size - 1} of the argument cannot be read`,
      );
    }
  }
  const n = size < kernelSize ? size : kernelSize;
  if (n > buf.length) {
    return fail(EFAULT, `${ioctl.name}: the first ${n} bytes of the argument cannot be read`);
  }
  const bytes = new Uint8Array(kernelSize);
  bytes.set(n === buf.length ? buf : buf.subarray(0, n));
  return { ok: true, bytes, userSize: size };
}

function copyIommufd(ioctl: IoctlInfo, memory: UserMemory): CopyInResult {
  const size = readU32(memory, 0);
  if (size === undefined)
    return fail(EFAULT, `${ioctl.name}: the size field of the argument cannot be read`);
  if (size < ioctl.minSize) {
    return fail(
      EINVAL,
      `${ioctl.name}: size ${size} is below the minimum ${ioctl.minSize} (the end of ${ioctl.struct}.${ioctl.minSizeField})`,
    );
  }
  const bytes = new Uint8Array(ioctl.size);
  const failure = copyStructFromUser(bytes, ioctl.size, memory, size, ioctl.name);
  return failure ?? { ok: true, bytes, userSize: size };
}

function copyVfioBind(ioctl: IoctlInfo, memory: UserMemory): CopyInResult {
  const argsz = readU32(memory, 0);
  if (argsz === undefined) return fail(EFAULT, `${ioctl.name}: argsz cannot be read`);
  if (argsz < ioctl.minSize) {
    return fail(EINVAL, `${ioctl.name}: argsz ${argsz} is below the minimum ${ioctl.minSize}`);
  }
  // 6.17 copies with the kernel size set to the minimum, not sizeof: anything
  // non-zero past out_devid (token_uuid_ptr included) is E2BIG.
  const bytes = new Uint8Array(ioctl.size);
  const failure = copyStructFromUser(bytes, ioctl.minSize, memory, argsz, ioctl.name);
  return failure ?? { ok: true, bytes, userSize: argsz };
}

function copyVfioPartial(
  ioctl: IoctlInfo,
  memory: UserMemory,
  options: CopyInOptions,
): CopyInResult {
  const bytes = new Uint8Array(ioctl.size);
  const minsz = ioctl.minSize;
  if (!memory.read(0, minsz, bytes, 0)) {
    return fail(EFAULT, `${ioctl.name}: the first ${minsz} bytes of the argument cannot be read`);
  }
  const view = new DataView(bytes.buffer);
  const argsz = view.getUint32(0, true);
  const flags = view.getUint32(4, true);
  if (argsz < minsz)
    return fail(EINVAL, `${ioctl.name}: argsz ${argsz} is below the minimum ${minsz}`);
  // The PASID flag and the field it adds come from the ioctl table.
  const pasid = ioctl.flagExtensions[0];
  const pasidFlag = pasid?.flag ?? 0;
  if ((flags & ~pasidFlag) !== 0) {
    return fail(
      EINVAL,
      `${ioctl.name}: unknown flag bits 0x${((flags & ~pasidFlag) >>> 0).toString(16)}`,
    );
  }
  if (pasid !== undefined && flags & pasidFlag) {
    if (options.pasidSupported === false) {
      return fail(EOPNOTSUPP, `${ioctl.name}: the device's driver has no PASID support`);
    }
    const xend = pasid.minSize;
    if (argsz < xend) {
      return fail(
        EINVAL,
        `${ioctl.name}: argsz ${argsz} is below ${xend}, needed with the PASID flag`,
      );
    }
    if (!memory.read(minsz, xend - minsz, bytes, minsz)) {
      return fail(EFAULT, `${ioctl.name}: the pasid field cannot be read`);
    }
  }
  return { ok: true, bytes, userSize: argsz };
}

/**
 * Copies an ioctl's argument in by the rule the kernel uses for it. Every
 * handler starts here; the returned bytes decode with the ioctl's struct.
 *
 * @example
 * const r = copyIoctlArgIn(ioctls.IOMMU_IOAS_ALLOC, new Uint8Array([4, 0, 0, 0]));
 * // { ok: false, errno: EINVAL, reason: 'IOMMU_IOAS_ALLOC: size 4 is below the minimum 12 ...' }
 */
export function copyIoctlArgIn(
  ioctl: IoctlInfo,
  user: UserMemory | Uint8Array,
  options: CopyInOptions = {},
): CopyInResult {
  if (user instanceof Uint8Array && ioctl.copyRule === 'iommufd') {
    return copyIommufdBytes(ioctl, user);
  }
  const memory = asUserMemory(user);
  switch (ioctl.copyRule) {
    case 'iommufd':
      return copyIommufd(ioctl, memory);
    case 'vfio-bind':
      return copyVfioBind(ioctl, memory);
    case 'vfio-attach':
    case 'vfio-detach':
      return copyVfioPartial(ioctl, memory, options);
  }
}

/**
 * Copies a handler's result back by the rule the kernel uses: iommufd writes
 * min(user size, sizeof) bytes of its copy; VFIO bind writes only `out_devid`,
 * attach only `pt_id`, detach nothing.
 */
export function copyIoctlArgOut(
  ioctl: IoctlInfo,
  kernel: Uint8Array,
  user: UserMemory | Uint8Array,
  userSize: number,
): CopyOutResult {
  if (user instanceof Uint8Array && ioctl.copyRule === 'iommufd') {
    const n = Math.min(userSize, ioctl.size);
    if (n > user.length) {
      return fail(EFAULT, `${ioctl.name}: the result cannot be written back to the argument`);
    }
    user.set(kernel.subarray(0, n));
    return OK_OUT;
  }
  const memory = asUserMemory(user);
  let offset = 0;
  let length = 0;
  switch (ioctl.copyRule) {
    case 'iommufd':
      length = Math.min(userSize, ioctl.size);
      break;
    case 'vfio-bind':
      ({ offset, size: length } = structs.vfio_device_bind_iommufd.fields.out_devid);
      break;
    case 'vfio-attach':
      ({ offset, size: length } = structs.vfio_device_attach_iommufd_pt.fields.pt_id);
      break;
    case 'vfio-detach':
      return OK_OUT;
  }
  if (!memory.write(offset, kernel.subarray(offset, offset + length))) {
    return fail(EFAULT, `${ioctl.name}: the result cannot be written back to the argument`);
  }
  return OK_OUT;
}
