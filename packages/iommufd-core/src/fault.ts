/**
 * FAULT objects (eventq.c) and IOMMU_FAULT_QUEUE_ALLOC. A FAULT object holds
 * the I/O page faults of the HWPTs allocated with its id (FAULT_ID_VALID):
 * whole groups wait on its deliver list until read() from its fd hands them
 * out with a cookie, and write() answers them by cookie. Each group remembers
 * the attachment it came through and the hardware request behind it, so the
 * answer goes back to the IOMMU (and the device retries on SUCCESS). A device
 * leaving the attachment, or the object being destroyed, answers what is
 * left INVALID. Built on fault-queue's IopfQueue.
 *
 * The fd holds a reference on the object and on the context; closing it
 * drops both and nothing else, so queued faults stay until the object is
 * destroyed (IOMMU_DESTROY once no HWPT uses it and the fd is closed, or the
 * context's release).
 */
import { IopfQueue, type IopfRequest, type PageResponse } from '@iommufd-sim/fault-queue';
import type { IommuInstance, PageRequest } from '@iommufd-sim/hw-models';
import {
  EBUSY,
  EINVAL,
  EOPNOTSUPP,
  ESPIPE,
  IOMMUFD_PAGE_RESP_INVALID,
  IOMMUFD_PAGE_RESP_SUCCESS,
  structs,
} from '@iommufd-sim/uapi-types';
import type { IommufdContext } from './context.js';
import type { DeviceObject } from './device.js';
import type { Ucmd } from './dispatch.js';
import { EventqObject } from './eventq.js';
import type { Failure } from './io-pagetable.js';
import { offsets } from './ioas.js';

const ALLOC = offsets('iommu_fault_alloc');
const RECORD_BYTES = structs.iommu_hwpt_pgfault.sizeof;
const RESPONSE_BYTES = structs.iommu_hwpt_page_response.sizeof;

/**
 * How a group reached a FAULT object (the kernel's attach handle plus the
 * group's last fault): the device and attachment slot it was routed through,
 * and the hardware request its answer completes.
 */
export interface FaultRoute {
  /** The device object (its id is the records' dev_id). */
  readonly idev: DeviceObject;
  /** The attachment it came through: a PASID, or IOMMU_NO_PASID (0) for the RID. */
  readonly slot: number;
  /** The IOMMU that raised it. */
  readonly iommu: IommuInstance;
  /** The group's LAST_PAGE request as the hardware raised it. */
  readonly request: PageRequest;
}

/** A FAULT object. */
export class FaultObject extends EventqObject {
  readonly type = 'FAULT' as const;
  /** Its groups: queued, read and awaiting a response. */
  readonly queue: IopfQueue;

  constructor(ctx: IommufdContext) {
    super(ctx);
    this.queue = new IopfQueue({ onResponse: (r) => this.complete(r) });
  }

  override describe(): string {
    return this.hasOpenFile ? `fault ${this.id} (its fault fd is open)` : `fault ${this.id}`;
  }

  /**
   * iommufd_fault_iopf_handler: queue one whole group (`requests`, the
   * LAST_PAGE one last) under the device's id. 0, or -EINVAL when a record
   * does not fit the uAPI fields (nothing is queued then).
   */
  deliver(route: FaultRoute, requests: readonly IopfRequest[]): number {
    // The router gathered the group (the IOMMU core's partial list): queue it whole.
    return this.queue.enqueueGroup(route.idev.id, requests, route);
  }

  /**
   * iommufd_auto_response_faults: answer INVALID every group delivered
   * through the attachment of `idev` at `pasid` (IOMMU_NO_PASID for the RID),
   * read or not; groups of its other attachments stay. Detach calls it on
   * the detached HWPT's fault; replace calls it on the new HWPT's fault, as
   * 6.17 does.
   */
  respondAttachment(idev: DeviceObject, pasid: number): void {
    this.queue.answerPending((g) => {
      const route = g.context as FaultRoute | undefined;
      return route !== undefined && route.idev === idev && route.slot === pasid;
    });
    this.ctx.host.iopf.deviceLeaving(idev);
  }

  /**
   * read() on the fault fd: whole groups as 40-byte records, or a Failure
   * (ESPIPE for a count that is not a multiple of 40 or a nonzero position).
   */
  read(buffer: Uint8Array, position: number): number | Failure {
    if (position !== 0) {
      return { errno: ESPIPE, reason: `the fault fd is not seekable (position ${position})` };
    }
    if (buffer.length % RECORD_BYTES !== 0) {
      return {
        errno: ESPIPE,
        reason: `count ${buffer.length} is not a multiple of ${RECORD_BYTES} (sizeof struct iommu_hwpt_pgfault)`,
      };
    }
    const rc = this.queue.read(buffer, 0);
    if (rc >= 0) return rc;
    return {
      errno: -rc,
      reason:
        rc === -EBUSY
          ? 'every response cookie is in use (answer some groups first)'
          : `the fault queue refused the read (errno ${-rc})`,
    };
  }

  /**
   * write() on the fault fd: 8-byte responses {cookie, code}. The bytes
   * consumed, or a Failure when the first response is refused (ESPIPE for a
   * count that is not a multiple of 8 or a nonzero position; EINVAL for a
   * code other than SUCCESS / INVALID or a cookie no read group holds).
   */
  write(bytes: Uint8Array, position: number): number | Failure {
    if (position !== 0) {
      return { errno: ESPIPE, reason: `the fault fd is not seekable (position ${position})` };
    }
    if (bytes.length % RESPONSE_BYTES !== 0) {
      return {
        errno: ESPIPE,
        reason: `count ${bytes.length} is not a multiple of ${RESPONSE_BYTES} (sizeof struct iommu_hwpt_page_response)`,
      };
    }
    const rc = this.queue.write(bytes, 0);
    if (rc >= 0) return rc;
    if (rc !== -EINVAL) {
      return { errno: -rc, reason: `the fault queue refused the write (errno ${-rc})` };
    }
    const { cookie, code } = structs.iommu_hwpt_page_response.decode(bytes, 0);
    if (code !== IOMMUFD_PAGE_RESP_SUCCESS && code !== IOMMUFD_PAGE_RESP_INVALID) {
      return {
        errno: EINVAL,
        reason: `response code ${code} is neither IOMMUFD_PAGE_RESP_SUCCESS (0) nor IOMMUFD_PAGE_RESP_INVALID (1)`,
      };
    }
    return {
      errno: EINVAL,
      reason: `cookie ${cookie} names no group that was read from this fault fd and is still unanswered`,
    };
  }

  /** poll() on the fault fd: always POLLOUT, POLLIN | POLLRDNORM while a group waits. */
  poll(): number {
    return this.queue.poll();
  }

  /** Destroy: every pending group is answered INVALID. */
  destroy(): void {
    this.queue.drainAll();
  }

  // The queue answered a group (a write, a detach or destroy): tell the hardware.
  private complete(response: PageResponse): void {
    const route = response.context as FaultRoute | undefined;
    if (route === undefined) return;
    this.ctx.host.iopf.answer(
      route.iommu,
      route.request,
      response.code === IOMMUFD_PAGE_RESP_SUCCESS ? 'success' : 'invalid',
    );
  }
}

/**
 * IOMMU_FAULT_QUEUE_ALLOC: a FAULT object and its fd (the lowest free
 * descriptor). flags must be 0 (EOPNOTSUPP). When the result cannot be copied
 * back, the fd and the object are undone.
 */
export function faultQueueAlloc(ucmd: Ucmd): number {
  const flags = ucmd.u32(ALLOC.flags as number);
  if (flags !== 0) {
    return ucmd.fail(
      EOPNOTSUPP,
      `flags 0x${flags.toString(16)}: IOMMU_FAULT_QUEUE_ALLOC defines no flags`,
    );
  }
  const ctx = ucmd.ctx;
  const fault = new FaultObject(ctx);
  const full = ctx.objects.allocate(fault);
  if (full !== undefined) return ucmd.fail(full.errno, full.reason);
  fault.openFile();
  const fd = ucmd.proc.install({ kind: 'fault', fault, refs: 1 });
  ucmd.setU32(ALLOC.out_fault_id as number, fault.id);
  ucmd.setU32(ALLOC.out_fault_fd as number, fd);
  const rc = ucmd.respond();
  if (rc !== 0) {
    ucmd.proc.close(fd);
    ctx.objects.abort(fault);
    return rc;
  }
  ctx.objects.finalize(fault);
  return 0;
}
