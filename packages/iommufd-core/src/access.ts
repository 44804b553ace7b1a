/**
 * Access objects (iommufd_access in device.c): an in-kernel user of an IOAS
 * that is not behind an IOMMU, such as an emulated device (mdev). It pins
 * IOVA ranges to reach their pages, or reads and writes through the IOAS by
 * IOVA. An IOAS unmap over its pins calls its unmap callback, which must
 * drop them. The selftest makes one with IOMMU_TEST_OP_CREATE_ACCESS.
 */
import { IOMMU_WRITE } from '@iommufd-sim/hw-models';
import { EFAULT, EINVAL, ENOENT, EOVERFLOW, EPERM } from '@iommufd-sim/uapi-types';
import { PAGE_SIZE } from './address-space.js';
import type { IommufdContext } from './context.js';
import type { Area, Failure, IoptAccess } from './io-pagetable.js';
import { ULONG_MAX } from './io-pagetable.js';
import { getIoas, type IoasObject } from './ioas.js';
import { IommufdObject } from './objects.js';

const PAGE = BigInt(PAGE_SIZE);

/** One pinned piece of an area. */
export interface PinnedPiece {
  readonly area: Area;
  readonly first: number;
  readonly last: number;
}

/** A pinned range (an ACCESS_PAGES item). */
export interface AccessItem {
  readonly id: number;
  readonly iova: bigint;
  readonly length: bigint;
  readonly pieces: readonly PinnedPiece[];
}

/** An access object. */
export class AccessObject extends IommufdObject implements IoptAccess {
  readonly type = 'ACCESS' as const;
  /** The IOAS it is attached to. */
  ioas: IoasObject | null = null;
  /** PAGE_SIZE when it pins pages, else 1. */
  readonly iovaAlignment: number;
  /** Pinned items by id. */
  readonly items = new Map<number, AccessItem>();
  private nextItem = 0;
  private fileOpen = true;

  constructor(
    readonly ctx: IommufdContext,
    /** It pins pages (MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES). */
    readonly needsPinPages: boolean,
  ) {
    super();
    this.iovaAlignment = needsPinPages ? PAGE_SIZE : 1;
    // The creating driver holds it, and it holds the context until its fd closes.
    this.users++;
    ctx.hold();
  }

  /** iommufd_access_attach / replace: move to IOAS `id`, dropping every pin first. */
  attachIoas(id: number): Failure | undefined {
    const ioas = getIoas(this.ctx, id);
    if (ioas === undefined) return { errno: ENOENT, reason: `there is no IOAS ${id}` };
    if (ioas === this.ioas) return undefined;
    const bad = ioas.iopt.addAccess(this);
    if (bad !== undefined) return bad;
    ioas.users++;
    this.detachIoas();
    this.ioas = ioas;
    return undefined;
  }

  /** Leave the IOAS, unpinning everything. */
  detachIoas(): void {
    const ioas = this.ioas;
    if (ioas === null) return;
    for (const id of [...this.items.keys()]) this.unpinItem(id);
    ioas.iopt.removeAccess(this);
    ioas.users--;
    this.ioas = null;
  }

  /**
   * iommufd_access_pin_pages: pin [iova, iova + length); returns the item.
   * `verify` may refuse the pinned pieces (the selftest compares them with
   * uptr) before an item id is taken, as selftest.c numbers only kept items.
   */
  pin(
    iova: bigint,
    length: bigint,
    write: boolean,
    verify?: (pieces: readonly PinnedPiece[]) => Failure | undefined,
  ): AccessItem | Failure {
    const ioas = this.ioas;
    if (ioas === null) {
      if (length === 0n) return { errno: EINVAL, reason: 'length is 0' };
      if (iova + length - 1n > ULONG_MAX) {
        return { errno: EOVERFLOW, reason: 'iova + length wraps past 2^64' };
      }
      return { errno: ENOENT, reason: 'the access has no IOAS' };
    }
    const pieces = pinIoasRange(ioas, iova, length, write, this.limitPages(), false);
    if (!Array.isArray(pieces)) return pieces;
    const bad = verify?.(pieces);
    if (bad !== undefined) {
      unpinPieces(pieces, false);
      return bad;
    }
    const item: AccessItem = { id: this.nextItem++, iova, length, pieces };
    this.items.set(item.id, item);
    return item;
  }

  /** Unpin one item; false when there is no such item. */
  unpinItem(id: number): boolean {
    const item = this.items.get(id);
    if (item === undefined) return false;
    this.items.delete(id);
    unpinPieces(item.pieces, false);
    return true;
  }

  /** The unmap callback: drop every item that touches [iova, iova + length). */
  notifyUnmap(iova: bigint, length: bigint): void {
    const last = iova + length - 1n;
    for (const item of [...this.items.values()]) {
      if (item.iova <= last && iova <= item.iova + item.length - 1n) this.unpinItem(item.id);
    }
  }

  /**
   * iommufd_access_rw: copy between `data` and the IOAS at `iova`, through
   * pinned pages or the source memory.
   */
  rw(iova: bigint, data: Uint8Array, write: boolean): Failure | undefined {
    const length = BigInt(data.length);
    if (length === 0n) return { errno: EINVAL, reason: 'length is 0' };
    const last = iova + length - 1n;
    if (last > ULONG_MAX) return { errno: EOVERFLOW, reason: 'iova + length wraps past 2^64' };
    const ioas = this.ioas;
    if (ioas === null) return { errno: ENOENT, reason: 'the access has no IOAS' };
    const memory = this.ctx.host.memory;
    let bad: Failure | undefined;
    let done = 0;
    const covered = ioas.iopt.forEachContig(iova, last, (area, cur, end) => {
      if (write && (area.prot & IOMMU_WRITE) === 0) {
        bad = { errno: EPERM, reason: 'write access asked for a read-only area' };
        return false;
      }
      const pages = area.pages as NonNullable<Area['pages']>;
      let byte = area.startByte + (cur - area.iova);
      let left = Number(end - cur + 1n);
      while (left > 0) {
        const index = Number(byte / PAGE);
        const off = Number(byte % PAGE);
        const pa = pages.peekPa(index);
        if (pa === undefined) {
          bad = { errno: EFAULT, reason: 'the source memory behind the IOVA is gone' };
          return false;
        }
        const n = Math.min(left, PAGE_SIZE - off);
        if (write) memory.write(pa + off, data.subarray(done, done + n));
        else memory.read(pa + off, n, data, done);
        done += n;
        left -= n;
        byte += BigInt(n);
      }
      return true;
    });
    if (bad !== undefined) return bad;
    if (!covered)
      return { errno: ENOENT, reason: 'the range is not covered by mapped areas without a hole' };
    return undefined;
  }

  /** The access fd was closed: the driver lets go of the object. */
  closeFile(): void {
    if (!this.fileOpen) return;
    this.fileOpen = false;
    this.detachIoas();
    this.users--;
    this.ctx.objects.remove(this);
    this.ctx.release();
  }

  destroy(): void {
    this.detachIoas();
  }

  private limitPages(): number {
    return this.ctx.host.current?.limitPages ?? Number.MAX_SAFE_INTEGER;
  }
}

/**
 * Pin [iova, iova + length) of `ioas` for an access (iopt_access_pages):
 * every area must start the range on a page boundary, writes need writable
 * areas, the range must be covered without a hole (ENOENT). `lock` marks
 * the areas locked (an internal access, such as a HW queue's), so an unmap
 * of them is EBUSY instead of asking the access to let go. The pinned
 * pieces, or the failure with nothing left pinned.
 */
export function pinIoasRange(
  ioas: IoasObject,
  iova: bigint,
  length: bigint,
  write: boolean,
  limitPages: number,
  lock: boolean,
): PinnedPiece[] | Failure {
  if (length === 0n) return { errno: EINVAL, reason: 'length is 0' };
  const last = iova + length - 1n;
  if (last > ULONG_MAX) return { errno: EOVERFLOW, reason: 'iova + length wraps past 2^64' };
  const pieces: PinnedPiece[] = [];
  let bad: Failure | undefined;
  const covered = ioas.iopt.forEachContig(iova, last, (area, cur, end) => {
    const startByte = area.startByte + (cur - area.iova);
    const endByte = area.startByte + (end - area.iova);
    if (startByte % PAGE !== 0n || (end !== last && (endByte + 1n) % PAGE !== 0n)) {
      bad = { errno: EINVAL, reason: 'the range does not start on a page boundary of its area' };
      return false;
    }
    if (write && (area.prot & IOMMU_WRITE) === 0) {
      bad = { errno: EPERM, reason: 'write access asked for a read-only area' };
      return false;
    }
    const first = Number(startByte / PAGE);
    const lastIndex = Number(endByte / PAGE);
    const rc = (area.pages as NonNullable<Area['pages']>).use(first, lastIndex, limitPages);
    if (rc !== 0) {
      bad = {
        errno: -rc,
        reason:
          rc === -EFAULT
            ? 'the source pages cannot be pinned'
            : 'pinning would exceed RLIMIT_MEMLOCK',
      };
      return false;
    }
    if (lock) area.numLocks++;
    else area.numAccesses++;
    pieces.push({ area, first, last: lastIndex });
    return true;
  });
  if (bad === undefined && !covered) {
    bad = { errno: ENOENT, reason: 'the range is not covered by mapped areas without a hole' };
  }
  if (bad !== undefined) {
    unpinPieces(pieces, lock);
    return bad;
  }
  return pieces;
}

/** Undo {@link pinIoasRange}. */
export function unpinPieces(pieces: readonly PinnedPiece[], lock: boolean): void {
  for (const p of pieces) {
    if (lock) p.area.numLocks--;
    else p.area.numAccesses--;
    (p.area.pages as NonNullable<Area['pages']>).unuse(p.first, p.last);
  }
}
