/**
 * HW queue objects (viommu.c) and IOMMU_HW_QUEUE_ALLOC: guest memory the
 * IOMMU hardware reads directly (a Tegra241 LVCMDQ, the selftest's mock
 * queue). The core pins the pages through an internal access on the
 * parent's IOAS, which locks the areas (IOAS_UNMAP of them is EBUSY), and
 * requires them physically contiguous (EFAULT). The driver decides the
 * index (rising order, below its maximum); queue i > 0 holds queue i - 1,
 * so they are destroyed highest index first.
 */
import {
  EFAULT,
  EINVAL,
  EOPNOTSUPP,
  EOVERFLOW,
  IOMMU_HW_QUEUE_TYPE_DEFAULT,
} from '@iommufd-sim/uapi-types';
import { type PinnedPiece, pinIoasRange, unpinPieces } from './access.js';
import { PAGE_SIZE } from './address-space.js';
import type { IommufdContext } from './context.js';
import type { Ucmd } from './dispatch.js';
import { type Failure, type IoptAccess, ULONG_MAX } from './io-pagetable.js';
import { type IoasObject, offsets } from './ioas.js';
import { IommufdObject } from './objects.js';
import { getViommu, type ViommuObject } from './viommu.js';

const ALLOC = offsets('iommu_hw_queue_alloc');
const PAGE = BigInt(PAGE_SIZE);

/** The internal access that pins a queue's pages (iommufd_access_create_internal). */
class QueuePin implements IoptAccess {
  readonly iovaAlignment = PAGE_SIZE;
  pieces: PinnedPiece[] = [];
  constructor(readonly ioas: IoasObject) {}
  notifyUnmap(): void {
    // The areas are locked: unmap stops with EBUSY before it would ask.
  }
}

/** A HW queue. */
export class HwQueueObject extends IommufdObject {
  readonly type = 'HW_QUEUE' as const;
  /** The queue it depends on (index - 1), held while it lives. */
  prev: HwQueueObject | null = null;
  /** Its pinned memory, once pinned. */
  pin: QueuePin | null = null;
  /** The driver took its index. */
  initialized = false;

  constructor(
    readonly ctx: IommufdContext,
    readonly viommu: ViommuObject,
    /** enum iommu_hw_queue_type. */
    readonly queueType: number,
    readonly index: number,
    /** nesting_parent_iova. */
    readonly baseIova: bigint,
    readonly length: bigint,
  ) {
    super();
    viommu.users++;
  }

  override describe(): string {
    return `hw_queue ${this.id} (index ${this.index} of vIOMMU ${this.viommu.id})`;
  }

  destroy(): void {
    if (this.initialized) {
      this.viommu.driver.hwQueueDestroy(this.index);
      if (this.viommu.hwQueues.get(this.index) === this) this.viommu.hwQueues.delete(this.index);
    }
    this.initialized = false;
    if (this.prev !== null) this.prev.users--;
    this.prev = null;
    const pin = this.pin;
    if (pin !== null) {
      unpinPieces(pin.pieces, true);
      pin.ioas.iopt.removeAccess(pin);
      pin.ioas.users--;
    }
    this.pin = null;
    this.viommu.users--;
  }
}

/** iommufd_hw_queue_alloc_phys: pin [aligned base, + page-rounded length) contiguously; the base's physical address. */
function pinQueue(ctx: IommufdContext, q: HwQueueObject): number | Failure {
  const ioas = q.viommu.hwpt.ioas;
  const aligned = q.baseIova - (q.baseIova % PAGE);
  const offset = q.baseIova - aligned;
  const length = ((offset + q.length + PAGE - 1n) / PAGE) * PAGE;
  const pin = new QueuePin(ioas);
  const bad = ioas.iopt.addAccess(pin);
  if (bad !== undefined) return bad;
  ioas.users++;
  q.pin = pin;
  const limit = ctx.host.current?.limitPages ?? Number.MAX_SAFE_INTEGER;
  const pieces = pinIoasRange(ioas, aligned, length, false, limit, true);
  if (!Array.isArray(pieces)) return pieces;
  pin.pieces = pieces;
  // Contiguity: every page follows the one before in physical memory.
  let expect = -1;
  let firstPa = -1;
  for (const p of pieces) {
    const pages = p.area.pages as NonNullable<typeof p.area.pages>;
    for (let i = p.first; i <= p.last; i++) {
      const pa = pages.paOf(i);
      if (firstPa < 0) firstPa = pa;
      if (expect >= 0 && pa !== expect) {
        return { errno: EFAULT, reason: 'the queue memory is not physically contiguous' };
      }
      expect = pa + PAGE_SIZE;
    }
  }
  return firstPa + Number(offset);
}

/**
 * IOMMU_HW_QUEUE_ALLOC: flags or type DEFAULT → EOPNOTSUPP; length 0 →
 * EINVAL; a base + length that wraps → EOVERFLOW; the vIOMMU (ENOENT) and
 * its driver's queue type (EOPNOTSUPP); the pin (ENOENT for unmapped memory,
 * EFAULT when not contiguous); the driver's index and geometry rules.
 */
export function hwQueueAlloc(ucmd: Ucmd): number {
  const ctx = ucmd.ctx;
  const flags = ucmd.u32(ALLOC.flags as number);
  const type = ucmd.u32(ALLOC.type as number);
  const index = ucmd.u32(ALLOC.index as number);
  const iova = ucmd.u64(ALLOC.nesting_parent_iova as number);
  const length = ucmd.u64(ALLOC.length as number);
  if (flags !== 0)
    return ucmd.fail(
      EOPNOTSUPP,
      `flags 0x${flags.toString(16)}: IOMMU_HW_QUEUE_ALLOC defines no flags`,
    );
  if (type === IOMMU_HW_QUEUE_TYPE_DEFAULT) {
    return ucmd.fail(EOPNOTSUPP, 'type 0 (IOMMU_HW_QUEUE_TYPE_DEFAULT) is reserved');
  }
  if (length === 0n) return ucmd.fail(EINVAL, 'length is 0');
  if (iova + length - 1n > ULONG_MAX) {
    return ucmd.fail(EOVERFLOW, 'nesting_parent_iova + length wraps past 2^64');
  }
  const viommu = getViommu(ucmd, ucmd.u32(ALLOC.viommu_id as number));
  if (typeof viommu === 'number') return viommu;
  if (!viommu.driver.hwQueueSupported(type)) {
    return ucmd.fail(
      EOPNOTSUPP,
      `vIOMMU ${viommu.id} (${viommu.driver.name}) has no HW queues of type 0x${type.toString(16)}`,
    );
  }
  const q = new HwQueueObject(ctx, viommu, type, index, iova, length);
  const full = ctx.objects.allocate(q);
  if (full !== undefined) {
    q.destroy();
    return ucmd.fail(full.errno, full.reason);
  }
  const basePa = pinQueue(ctx, q);
  if (typeof basePa !== 'number') {
    ctx.objects.abort(q);
    return ucmd.fail(basePa.errno, basePa.reason);
  }
  const prevIndex = viommu.driver.hwQueueInit(index, Number(iova), basePa, Number(length));
  if (typeof prevIndex !== 'number') {
    ctx.objects.abort(q);
    return ucmd.fail(prevIndex.errno, prevIndex.reason);
  }
  q.initialized = true;
  const prev = prevIndex >= 0 ? viommu.hwQueues.get(prevIndex) : undefined;
  if (prev !== undefined) {
    prev.users++;
    q.prev = prev;
  }
  viommu.hwQueues.set(index, q);
  ucmd.setU32(ALLOC.out_hw_queue_id as number, q.id);
  const rc = ucmd.respond();
  if (rc !== 0) {
    ctx.objects.abort(q);
    return rc;
  }
  ctx.objects.finalize(q);
  return 0;
}
