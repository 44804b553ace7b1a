/**
 * FAULT objects (eventq.c): the queue of I/O page faults of the HWPTs
 * allocated with its id, read and answered through the fault fd. Built on
 * fault-queue's IopfQueue.
 */
import { IopfQueue } from '@iommufd-sim/fault-queue';
import type { IommufdContext } from './context.js';
import type { DeviceObject } from './device.js';
import { IommufdObject } from './objects.js';

/** A FAULT object. */
export class FaultObject extends IommufdObject {
  readonly type = 'FAULT' as const;
  /** Its groups: queued, read and awaiting a response. */
  readonly queue = new IopfQueue();

  constructor(readonly ctx: IommufdContext) {
    super();
  }

  /**
   * iommufd_auto_response_faults: answer INVALID every group delivered
   * through the attachment of `idev` at `pasid` (detach and replace).
   */
  respondAttachment(idev: DeviceObject, _pasid: number): void {
    this.queue.answerPending(idev.id);
  }

  /** Destroy: every pending group is answered INVALID. */
  destroy(): void {
    this.queue.drainAll();
  }
}
