/**
 * What FAULT and VEVENTQ objects share (the kernel's struct iommufd_eventq):
 * an fd that holds the object and the context while it is open. Closing the
 * fd drops those two references and nothing else, so queued records stay
 * until the object is destroyed.
 */
import type { IommufdContext } from './context.js';
import { IommufdObject } from './objects.js';

/** An object read through its own fd. */
export abstract class EventqObject extends IommufdObject {
  private fileOpen = false;

  constructor(readonly ctx: IommufdContext) {
    super();
  }

  /** The fd now refers to it: it holds the object and the context. */
  openFile(): void {
    if (this.fileOpen) return;
    this.fileOpen = true;
    this.users++;
    this.ctx.hold();
  }

  /** The fd's release: drop its references only. */
  closeFile(): void {
    if (!this.fileOpen) return;
    this.fileOpen = false;
    this.users--;
    this.ctx.release();
  }

  /** Whether its fd is still open. */
  get hasOpenFile(): boolean {
    return this.fileOpen;
  }
}
