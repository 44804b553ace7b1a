/**
 * Open file descriptions: what an fd refers to. Several fds (dup, fork)
 * can share one; the last close releases it.
 */

import type { AccessObject } from './access.js';
import type { MemFile } from './address-space.js';
import type { IommufdContext } from './context.js';
import type { DeviceObject } from './device.js';
import type { FaultObject } from './fault.js';
import type { HostDevice } from './host.js';
import type { VeventqObject } from './veventq.js';

/** What an fd refers to. */
export type FileDescription =
  | { readonly kind: 'iommufd'; readonly ctx: IommufdContext; refs: number }
  | { readonly kind: 'vfio'; readonly device: HostDevice; bound: DeviceObject | null; refs: number }
  | { readonly kind: 'memfd'; readonly file: MemFile; refs: number }
  | { readonly kind: 'access'; readonly access: AccessObject; refs: number }
  /** A fault fd (IOMMU_FAULT_QUEUE_ALLOC): read() faults, write() responses, poll(). */
  | { readonly kind: 'fault'; readonly fault: FaultObject; refs: number }
  /** A vEVENTQ fd (IOMMU_VEVENTQ_ALLOC): read() events, poll(). */
  | { readonly kind: 'veventq'; readonly veventq: VeventqObject; refs: number };

/** Drop one reference; the last one releases what the description holds. */
export function releaseFile(f: FileDescription): void {
  f.refs--;
  if (f.refs > 0) return;
  switch (f.kind) {
    case 'iommufd':
      f.ctx.release();
      return;
    case 'vfio':
      f.bound?.unbind();
      f.bound = null;
      return;
    case 'memfd':
      f.file.backing.release();
      return;
    case 'access':
      f.access.closeFile();
      return;
    case 'fault':
      // Drops the fd's references on the object and the context only (eventq.c's release).
      f.fault.closeFile();
      return;
    case 'veventq':
      f.veventq.closeFile();
      return;
  }
}
