/** Which handler answers which /dev/iommu ioctl (main.c's iommufd_ioctl_ops). */
import {
  IOMMU_DESTROY,
  IOMMU_FAULT_QUEUE_ALLOC,
  IOMMU_GET_HW_INFO,
  IOMMU_HW_QUEUE_ALLOC,
  IOMMU_HWPT_ALLOC,
  IOMMU_HWPT_GET_DIRTY_BITMAP,
  IOMMU_HWPT_INVALIDATE,
  IOMMU_HWPT_SET_DIRTY_TRACKING,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_ALLOW_IOVAS,
  IOMMU_IOAS_CHANGE_PROCESS,
  IOMMU_IOAS_COPY,
  IOMMU_IOAS_IOVA_RANGES,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_MAP_FILE,
  IOMMU_IOAS_UNMAP,
  IOMMU_OPTION,
  IOMMU_TEST_CMD,
  IOMMU_VDEVICE_ALLOC,
  IOMMU_VEVENTQ_ALLOC,
  IOMMU_VFIO_IOAS,
  IOMMU_VIOMMU_ALLOC,
} from '@iommufd-sim/uapi-types';
import type { Handler } from './dispatch.js';
import { faultQueueAlloc } from './fault.js';
import { hwQueueAlloc } from './hw-queue.js';
import { getDirtyBitmap, getHwInfo, hwptAlloc, hwptInvalidate, setDirtyTracking } from './hwpt.js';
import {
  ioasAlloc,
  ioasAllowIovas,
  ioasChangeProcess,
  ioasCopy,
  ioasIovaRanges,
  ioasMap,
  ioasMapFile,
  ioasUnmap,
} from './ioas.js';
import { destroyIoctl, optionIoctl } from './main.js';
import { testCmd } from './selftest/test-cmd.js';
import { veventqAlloc } from './veventq.js';
import { vfioIoasIoctl } from './vfio-compat.js';
import { vdeviceAlloc, viommuAlloc } from './viommu.js';

/** Request number → handler. */
export const IOCTL_HANDLERS: ReadonlyMap<number, Handler> = new Map<number, Handler>([
  [IOMMU_DESTROY, destroyIoctl],
  [IOMMU_IOAS_ALLOC, ioasAlloc],
  [IOMMU_IOAS_ALLOW_IOVAS, ioasAllowIovas],
  [IOMMU_IOAS_COPY, ioasCopy],
  [IOMMU_IOAS_IOVA_RANGES, ioasIovaRanges],
  [IOMMU_IOAS_MAP, ioasMap],
  [IOMMU_IOAS_UNMAP, ioasUnmap],
  [IOMMU_OPTION, optionIoctl],
  [IOMMU_VFIO_IOAS, vfioIoasIoctl],
  [IOMMU_HWPT_ALLOC, hwptAlloc],
  [IOMMU_GET_HW_INFO, getHwInfo],
  [IOMMU_HWPT_SET_DIRTY_TRACKING, setDirtyTracking],
  [IOMMU_HWPT_GET_DIRTY_BITMAP, getDirtyBitmap],
  [IOMMU_HWPT_INVALIDATE, hwptInvalidate],
  [IOMMU_FAULT_QUEUE_ALLOC, faultQueueAlloc],
  [IOMMU_IOAS_MAP_FILE, ioasMapFile],
  [IOMMU_VIOMMU_ALLOC, viommuAlloc],
  [IOMMU_VDEVICE_ALLOC, vdeviceAlloc],
  [IOMMU_IOAS_CHANGE_PROCESS, ioasChangeProcess],
  [IOMMU_VEVENTQ_ALLOC, veventqAlloc],
  [IOMMU_HW_QUEUE_ALLOC, hwQueueAlloc],
  [IOMMU_TEST_CMD, testCmd],
]);
