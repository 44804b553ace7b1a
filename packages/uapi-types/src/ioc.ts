/**
 * The Linux ioctl request encoding (asm-generic, used by x86-64): bits 0-7 the
 * command number, 8-15 the type character, 16-29 the argument size, 30-31 the
 * direction. iommufd and the VFIO cdev use plain `_IO`, so size and direction
 * are 0 and the struct carries its own size.
 */

/** `_IOC_NONE`: no data transfer recorded in the request. */
export const _IOC_NONE = 0;
/** `_IOC_WRITE`: user space writes (the kernel reads). */
export const _IOC_WRITE = 1;
/** `_IOC_READ`: user space reads (the kernel writes). */
export const _IOC_READ = 2;

const NR_SHIFT = 0;
const TYPE_SHIFT = 8;
const SIZE_SHIFT = 16;
const DIR_SHIFT = 30;

/** `_IOC(dir, type, nr, size)`: a request number, as an unsigned 32-bit value. */
export function _IOC(dir: number, type: number, nr: number, size: number): number {
  return (
    ((dir << DIR_SHIFT) | (size << SIZE_SHIFT) | (type << TYPE_SHIFT) | (nr << NR_SHIFT)) >>> 0
  );
}

/** `_IO(type, nr)`: a request with no size or direction bits, as iommufd uses. */
export function _IO(type: number, nr: number): number {
  return _IOC(_IOC_NONE, type, nr, 0);
}

/** `_IOC_NR(request)`: the command number (bits 0-7); the kernel indexes its table by it. */
export function _IOC_NR(request: number): number {
  return (request >>> NR_SHIFT) & 0xff;
}

/** `_IOC_TYPE(request)`: the type character (bits 8-15); `';'` (0x3b) for iommufd and VFIO. */
export function _IOC_TYPE(request: number): number {
  return (request >>> TYPE_SHIFT) & 0xff;
}

/** `_IOC_SIZE(request)`: the size field (bits 16-29). */
export function _IOC_SIZE(request: number): number {
  return (request >>> SIZE_SHIFT) & 0x3fff;
}

/** `_IOC_DIR(request)`: the direction bits (30-31). */
export function _IOC_DIR(request: number): number {
  return (request >>> DIR_SHIFT) & 0x3;
}
