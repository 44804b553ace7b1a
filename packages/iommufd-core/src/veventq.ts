/**
 * vEVENTQ objects (eventq.c) and IOMMU_VEVENTQ_ALLOC. A vEVENTQ holds the
 * events one vIOMMU reports of one type (at most one queue per type), up
 * to `veventq_depth`; past that, events are lost and a LOST_EVENTS header
 * marks the gap (fault-queue's VeventQueue). Its fd is read for
 * {header, payload} items, and polled; it holds the object and the context
 * until closed.
 */
import { VeventQueue } from '@iommufd-sim/fault-queue';
import {
  EEXIST,
  EINVAL,
  EOPNOTSUPP,
  ESPIPE,
  IOMMU_VEVENTQ_TYPE_DEFAULT,
  veventHeader,
  veventRecordSize,
} from '@iommufd-sim/uapi-types';
import type { IommufdContext } from './context.js';
import type { Ucmd } from './dispatch.js';
import { EventqObject } from './eventq.js';
import type { Failure } from './io-pagetable.js';
import { offsets } from './ioas.js';
import { getViommu, type ViommuObject } from './viommu.js';

const ALLOC = offsets('iommu_veventq_alloc');

/** A vEVENTQ. */
export class VeventqObject extends EventqObject {
  readonly type = 'VEVENTQ' as const;
  /** The queue. */
  readonly queue: VeventQueue;

  constructor(
    ctx: IommufdContext,
    /** The vIOMMU whose events it takes (held). */
    readonly viommu: ViommuObject,
    /** enum iommu_veventq_type. */
    readonly eventType: number,
    depth: number,
  ) {
    super(ctx);
    const known = veventRecordSize(eventType);
    // Events of a type no driver reports never arrive; any positive payload size serves
    // (the queue refuses 0, and the kernel takes any type but DEFAULT).
    this.queue = new VeventQueue({
      type: eventType,
      depth,
      payloadSize: known === undefined ? 1 : known - veventHeader.sizeof,
    });
    viommu.users++;
    viommu.veventqs.set(eventType, this);
  }

  override describe(): string {
    return `veventq ${this.id} (type 0x${this.eventType.toString(16)} of vIOMMU ${this.viommu.id}${this.hasOpenFile ? ', its fd is open' : ''})`;
  }

  /** read() on the vEVENTQ fd: whole items that fit; 0 when empty; ESPIPE at a nonzero position. */
  read(buffer: Uint8Array, position: number): number | Failure {
    if (position !== 0) {
      return { errno: ESPIPE, reason: `the vEVENTQ fd is not seekable (position ${position})` };
    }
    const rc = this.queue.read(buffer, 0);
    if (rc >= 0) return rc;
    return { errno: -rc, reason: `the vEVENTQ refused the read (errno ${-rc})` };
  }

  /** poll(): POLLIN | POLLRDNORM while an item waits. */
  poll(): number {
    return this.queue.poll();
  }

  destroy(): void {
    this.queue.clear();
    if (this.viommu.veventqs.get(this.eventType) === this)
      this.viommu.veventqs.delete(this.eventType);
    this.viommu.users--;
  }
}

/**
 * IOMMU_VEVENTQ_ALLOC: flags, __reserved or type DEFAULT → EOPNOTSUPP; depth
 * 0 → EINVAL; the vIOMMU (ENOENT); one queue per type (EEXIST). Returns the
 * object id and a new fd.
 */
export function veventqAlloc(ucmd: Ucmd): number {
  const ctx = ucmd.ctx;
  const flags = ucmd.u32(ALLOC.flags as number);
  const type = ucmd.u32(ALLOC.type as number);
  const depth = ucmd.u32(ALLOC.veventq_depth as number);
  if (flags !== 0 || ucmd.u32(ALLOC.__reserved as number) !== 0) {
    return ucmd.fail(EOPNOTSUPP, 'flags and __reserved must be 0');
  }
  if (type === IOMMU_VEVENTQ_TYPE_DEFAULT) {
    return ucmd.fail(EOPNOTSUPP, 'type 0 (IOMMU_VEVENTQ_TYPE_DEFAULT) is reserved');
  }
  if (depth === 0) return ucmd.fail(EINVAL, 'veventq_depth must be at least 1');
  const viommu = getViommu(ucmd, ucmd.u32(ALLOC.viommu_id as number));
  if (typeof viommu === 'number') return viommu;
  const other = viommu.veventqs.get(type);
  if (other !== undefined) {
    return ucmd.fail(
      EEXIST,
      `vIOMMU ${viommu.id} already has vEVENTQ ${other.id} of type 0x${type.toString(16)}`,
    );
  }
  const q = new VeventqObject(ctx, viommu, type, depth);
  const full = ctx.objects.allocate(q);
  if (full !== undefined) {
    q.destroy();
    return ucmd.fail(full.errno, full.reason);
  }
  q.openFile();
  const fd = ucmd.proc.install({ kind: 'veventq', veventq: q, refs: 1 });
  ucmd.setU32(ALLOC.out_veventq_id as number, q.id);
  ucmd.setU32(ALLOC.out_veventq_fd as number, fd);
  const rc = ucmd.respond();
  if (rc !== 0) {
    ucmd.proc.close(fd);
    ctx.objects.abort(q);
    return rc;
  }
  ctx.objects.finalize(q);
  return 0;
}
