/**
 * User memory as the kernel's copy_from_user and copy_to_user see it: bytes
 * at offsets from an ioctl's argument pointer, any of which may be unmapped.
 */

/** The user memory an ioctl argument points into. */
export interface UserMemory {
  /**
   * Copies `length` bytes starting `offset` bytes past the argument into
   * `into` at `at`. Returns false if any of them cannot be read (EFAULT).
   */
  read(offset: number, length: number, into: Uint8Array, at: number): boolean;
  /** Writes `bytes` starting `offset` bytes past the argument; false if they cannot all be written. */
  write(offset: number, bytes: Uint8Array): boolean;
  /**
   * The argument itself, when it is a user address: the raw `unsigned long`
   * of ioctl(2). The few ioctls whose argument is a number, not a pointer
   * (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU), read it from here.
   */
  readonly address?: bigint;
}

/** A plain buffer as user memory: its bytes are readable and writable, nothing past its end is. */
export function userMemoryOf(buffer: Uint8Array): UserMemory {
  return {
    read(offset, length, into, at) {
      if (!(offset >= 0 && length >= 0 && offset + length <= buffer.length)) return false;
      into.set(buffer.subarray(offset, offset + length), at);
      return true;
    },
    write(offset, bytes) {
      if (!(offset >= 0 && offset + bytes.length <= buffer.length)) return false;
      buffer.set(bytes, offset);
      return true;
    },
  };
}

/** Accepts either form, so callers can pass a Uint8Array directly. */
export function asUserMemory(user: UserMemory | Uint8Array): UserMemory {
  return user instanceof Uint8Array ? userMemoryOf(user) : user;
}
