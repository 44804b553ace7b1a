/**
 * @packageDocumentation
 * @iommufd-sim/fault-queue: the queues that carry faults and events from the
 * hardware model to user space. Lock-free rings of fixed-size records over
 * ArrayBuffer or SharedArrayBuffer (one or many producers, usable across
 * worker threads), the IOPF queue behind the iommufd fault fd, and the
 * vEVENTQ, both with Linux 6.17 semantics.
 */

export { attachRing } from './attach-ring.js';
export {
  type CapacityRow,
  capacityTable,
  RECORD_SIZES,
  RING_BYTES,
  ringCapacity,
} from './capacity.js';
export {
  type FaultGroupInfo,
  type FaultGroupSelector,
  IopfQueue,
  type IopfQueueOptions,
  type IopfQueueStats,
  type IopfRequest,
  type PageResponse,
  type PageResponseCause,
} from './iopf-queue.js';
export { MpscRing } from './mpsc-ring.js';
export {
  POLLIN,
  POLLOUT,
  POLLRDNORM,
  POLLWRNORM,
  ReadinessSignal,
} from './readiness.js';
export {
  type FullPolicy,
  MAX_RING_CAPACITY,
  RING_HEADER_BYTES,
  RingBase,
  type RingKind,
  type RingOptions,
  type RingStats,
  ringByteLength,
} from './ring-base.js';
export { SpscRing } from './spsc-ring.js';
export {
  INT_MAX,
  VeventQueue,
  type VeventQueueOptions,
  type VeventQueueStats,
} from './vevent-queue.js';
