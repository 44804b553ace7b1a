/**
 * The /dev/iommu ioctl table (main.c's iommufd_ioctl_ops): request number →
 * struct, minimum size and handler. Dispatch follows the kernel: a number
 * outside the table goes to the VFIO compatibility handler, a slot whose
 * number differs is ENOTTY, then the argument is copied in by the
 * size-extensible rule (EFAULT / EINVAL / E2BIG) and the handler runs on the
 * kernel's copy; it writes results back with {@link Ucmd.respond}.
 */
import {
  _IOC_NR,
  copyIoctlArgIn,
  copyIoctlArgOut,
  EFAULT,
  ENOTTY,
  errnoName,
  IOMMUFD_CMD_BASE,
  type IoctlInfo,
  ioctlByRequest,
  type UserMemory,
} from '@iommufd-sim/uapi-types';
import type { IommufdContext } from './context.js';
import { IOCTL_HANDLERS } from './ioctl-table.js';
import { isMultiSidIoctl, multiSidIoctl } from './multi-sid.js';
import type { Process } from './process.js';
import { vfioCompatIoctl } from './vfio-compat.js';

/** One ioctl in progress: the kernel's copy of the argument and where it came from. */
export class Ucmd {
  private dataView: DataView | null = null;

  constructor(
    /** The /dev/iommu context. */
    readonly ctx: IommufdContext,
    /** The calling process (`current`). */
    readonly proc: Process,
    /** The ioctl. */
    readonly info: IoctlInfo,
    /** The kernel's copy: `sizeof` bytes, zero where the user gave none. */
    readonly bytes: Uint8Array,
    /** The size the user claimed. */
    readonly userSize: number,
    private readonly user: UserMemory | Uint8Array,
  ) {}

  /** A DataView over {@link bytes}, made on first use (building one costs more than a whole small ioctl). */
  get view(): DataView {
    if (this.dataView === null) {
      this.dataView = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
    }
    return this.dataView;
  }

  /** iommufd_ucmd_respond: copy min(user size, sizeof) bytes back; 0 or -EFAULT. */
  respond(): number {
    const out = copyIoctlArgOut(this.info, this.bytes, this.user, this.userSize);
    if (!out.ok) return this.fail(out.errno, out.reason);
    return 0;
  }

  /** Record why the call fails and return -errno. */
  fail(errno: number, reason: string): number {
    this.proc.recordError(this.info.name, errno, reason);
    return -errno;
  }

  /** u32 at `offset` of the kernel's copy (little-endian; RangeError past the end, as a DataView). */
  u32(offset: number): number {
    const b = this.bytes;
    if (!(offset >= 0 && offset + 4 <= b.length))
      throw new RangeError(`u32 at ${offset} is out of bounds`);
    return (
      ((b[offset] as number) |
        ((b[offset + 1] as number) << 8) |
        ((b[offset + 2] as number) << 16) |
        ((b[offset + 3] as number) << 24)) >>>
      0
    );
  }

  /** u64 at `offset` of the kernel's copy. */
  u64(offset: number): bigint {
    const lo = this.u32(offset);
    const hi = this.u32(offset + 4);
    return hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** Write a u32 result. */
  setU32(offset: number, value: number): void {
    const b = this.bytes;
    if (!(offset >= 0 && offset + 4 <= b.length))
      throw new RangeError(`u32 at ${offset} is out of bounds`);
    const v = value >>> 0;
    b[offset] = v & 0xff;
    b[offset + 1] = (v >>> 8) & 0xff;
    b[offset + 2] = (v >>> 16) & 0xff;
    b[offset + 3] = v >>> 24;
  }

  /** Write a u64 result. */
  setU64(offset: number, value: bigint): void {
    const v = BigInt.asUintN(64, value);
    this.setU32(offset, Number(v & 0xffffffffn));
    this.setU32(offset + 4, Number(v >> 32n));
  }
}

/** A handler: 0 (or a positive result) on success, -errno on failure. */
export type Handler = (ucmd: Ucmd) => number;

/** The VFIO container ioctls iommufd answers on its fd (vfio_compat.c). */
function vfioCompat(
  ctx: IommufdContext,
  proc: Process,
  request: number,
  user: UserMemory | Uint8Array | null,
): number {
  return vfioCompatIoctl(ctx, proc, request, user);
}

const CMD_FIRST = IOMMUFD_CMD_BASE;
const CMD_LAST = IOMMUFD_CMD_BASE + 32; // IOMMU_TEST_CMD is the last slot
// Without CONFIG_IOMMUFD_TEST the table ends at IOMMU_HW_QUEUE_ALLOC.
const CMD_LAST_NO_SELFTEST = IOMMUFD_CMD_BASE + 0x14;

const SIZE_SCRATCH = new Uint8Array(4);

function sizeReadable(user: UserMemory | Uint8Array): boolean {
  return user instanceof Uint8Array ? user.length >= 4 : user.read(0, 4, SIZE_SCRATCH, 0);
}

/** iommufd_fops_ioctl. `user` is null for a NULL argument pointer. */
export function dispatchIommufd(
  ctx: IommufdContext,
  proc: Process,
  request: number,
  user: UserMemory | Uint8Array | null,
): number {
  if (ctx.host.viommuSettings.multiSid && isMultiSidIoctl(request)) {
    return multiSidIoctl(ctx, proc, request, user);
  }
  const nr = _IOC_NR(request);
  const info = ioctlByRequest(request);
  if (nr < CMD_FIRST || nr > (ctx.host.selftest ? CMD_LAST : CMD_LAST_NO_SELFTEST)) {
    if (info?.selftest !== true) return vfioCompat(ctx, proc, request, user);
    proc.recordError(
      info.name,
      ENOTTY,
      'IOMMU_TEST_CMD exists only on a selftest host (createHost({ selftest: true }))',
    );
    return -ENOTTY;
  }
  // main.c reads the size (get_user) before it checks the slot: an unreadable argument is EFAULT even for an unused slot.
  if (user === null || !sizeReadable(user)) {
    proc.recordError(
      info?.name ?? `ioctl 0x${request.toString(16)}`,
      EFAULT,
      user === null
        ? 'the argument pointer is NULL'
        : 'the size field of the argument cannot be read',
    );
    return -EFAULT;
  }
  const handler = info === undefined ? undefined : IOCTL_HANDLERS.get(request);
  if (info === undefined || handler === undefined || info.copyRule !== 'iommufd') {
    proc.recordError(
      `ioctl 0x${request.toString(16)}`,
      ENOTTY,
      `no iommufd ioctl has the number 0x${request.toString(16)}`,
    );
    return -ENOTTY;
  }
  const copied = copyIoctlArgIn(info, user);
  if (!copied.ok) {
    proc.recordError(info.name, copied.errno, copied.reason);
    return -copied.errno;
  }
  const ucmd = new Ucmd(ctx, proc, info, copied.bytes, copied.userSize, user);
  const serial = proc.errorSerial;
  const rc = handler(ucmd);
  if (rc < 0 && proc.errorSerial === serial) {
    proc.recordError(info.name, -rc, `${info.name} failed with ${errnoName(-rc) ?? -rc}`);
  }
  return rc;
}
