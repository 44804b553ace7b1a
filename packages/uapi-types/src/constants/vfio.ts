/**
 * The constants of `include/uapi/linux/vfio.h` that concern iommufd: the VFIO
 * ioctl type and base, and the flags of the three device cdev ioctls.
 */
import { defineEnum, type EnumInfo } from './enum-info.js';

const H = 'include/uapi/linux/vfio.h';

/** `VFIO_TYPE`: the VFIO ioctl type character, `';'` (shared with iommufd). */
export const VFIO_TYPE = 0x3b;
/** `VFIO_BASE`: VFIO command numbers start here, below iommufd's 0x80. */
export const VFIO_BASE = 100;

/** BIND_IOMMUFD flag: `token_uuid_ptr` points to the VF token. */
export const VFIO_DEVICE_BIND_FLAG_TOKEN = 1 << 0;
/** ATTACH_IOMMUFD_PT flag: attach the PASID in `pasid`, not the RID. */
export const VFIO_DEVICE_ATTACH_PASID = 1 << 0;
/** DETACH_IOMMUFD_PT flag: detach the PASID in `pasid`, not the RID. */
export const VFIO_DEVICE_DETACH_PASID = 1 << 0;

function group(name: string, constants: Record<string, number>): EnumInfo {
  return defineEnum(name, H, 'flags', constants);
}

/** The flag families of the VFIO cdev ioctls. */
export const vfioEnums = [
  group('vfio_device_bind_iommufd_flags', { VFIO_DEVICE_BIND_FLAG_TOKEN }),
  group('vfio_device_attach_iommufd_pt_flags', { VFIO_DEVICE_ATTACH_PASID }),
  group('vfio_device_detach_iommufd_pt_flags', { VFIO_DEVICE_DETACH_PASID }),
];
