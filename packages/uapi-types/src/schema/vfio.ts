/**
 * The three structs of `include/uapi/linux/vfio.h` that connect a VFIO device
 * cdev to iommufd. Their size field is `argsz`, and the VFIO code copies them
 * by its own rules (see copy-rules.ts), not by iommufd's.
 */
import { aligned_u64, s32, struct, u32 } from './types.js';

const H = 'include/uapi/linux/vfio.h';

export const vfio_device_bind_iommufd = struct(
  'vfio_device_bind_iommufd',
  H,
  'VFIO_DEVICE_BIND_IOMMUFD: binds a device cdev to an iommufd and returns its dev_id.',
  [
    ['argsz', u32],
    ['flags', u32],
    ['iommufd', s32],
    ['out_devid', u32],
    ['token_uuid_ptr', aligned_u64],
  ],
);

export const vfio_device_attach_iommufd_pt = struct(
  'vfio_device_attach_iommufd_pt',
  H,
  'VFIO_DEVICE_ATTACH_IOMMUFD_PT: attaches the device (or one PASID) to an IOAS or HWPT.',
  [
    ['argsz', u32],
    ['flags', u32],
    ['pt_id', u32],
    ['pasid', u32],
  ],
);

export const vfio_device_detach_iommufd_pt = struct(
  'vfio_device_detach_iommufd_pt',
  H,
  'VFIO_DEVICE_DETACH_IOMMUFD_PT: detaches the device (or one PASID); DMA is then blocked.',
  [
    ['argsz', u32],
    ['flags', u32],
    ['pasid', u32],
  ],
);

/** The VFIO cdev structs, in header order. */
export const vfioStructs = [
  vfio_device_bind_iommufd,
  vfio_device_attach_iommufd_pt,
  vfio_device_detach_iommufd_pt,
] as const;
