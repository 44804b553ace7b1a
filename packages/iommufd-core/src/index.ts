/**
 * @packageDocumentation
 * @iommufd-sim/iommufd-core: the kernel side of /dev/iommu behind a
 * syscall-shaped surface. `createHost` builds a machine with IOMMUs and
 * devices; its processes `mmap` memory, `open` /dev/iommu and VFIO device
 * nodes and drive them with `ioctl`, answered as Linux 6.17 would (>= 0 or
 * -errno), with `lastError()` saying why a call failed.
 */

export { HPAGE_SIZE, PAGE_SIZE } from './address-space.js';
export {
  createHost,
  Host,
  type HostConfig,
  HostDevice,
  type HostDeviceConfig,
  type HostViommuConfig,
  MEMFD_MAX_BYTES,
} from './host.js';
export { type DmaTransfer, type DmaTransferState, IopfRouter, type IopfStats } from './iopf.js';
export {
  type LastError,
  type MemoryStatus,
  type MmapOptions,
  Process,
  type ProcessOptions,
} from './process.js';
export type {
  ContextReport,
  DeviceReport,
  HwptReport,
  IoasReport,
  ObjectReport,
  ViommuReport,
} from './report.js';
