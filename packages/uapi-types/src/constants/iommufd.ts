/**
 * Every constant of `include/uapi/linux/iommufd.h` (Linux 6.17) under its
 * kernel name, and the enums they belong to.
 */
import { defineEnum, type EnumInfo } from './enum-info.js';

const H = 'include/uapi/linux/iommufd.h';

/** `IOMMUFD_TYPE`: the ioctl type character, `';'`. */
export const IOMMUFD_TYPE = 0x3b;

/** The first iommufd command number; requests below it go to the VFIO compat code. */
export const IOMMUFD_CMD_BASE = 0x80;
/** The command number (`_IOC_NR`) of IOMMU_DESTROY. */
export const IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE;
/** The command number (`_IOC_NR`) of IOMMU_IOAS_ALLOC. */
export const IOMMUFD_CMD_IOAS_ALLOC = 0x81;
/** The command number (`_IOC_NR`) of IOMMU_IOAS_ALLOW_IOVAS. */
export const IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82;
/** The command number (`_IOC_NR`) of IOMMU_IOAS_COPY. */
export const IOMMUFD_CMD_IOAS_COPY = 0x83;
/** The command number (`_IOC_NR`) of IOMMU_IOAS_IOVA_RANGES. */
export const IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84;
/** The command number (`_IOC_NR`) of IOMMU_IOAS_MAP. */
export const IOMMUFD_CMD_IOAS_MAP = 0x85;
/** The command number (`_IOC_NR`) of IOMMU_IOAS_UNMAP. */
export const IOMMUFD_CMD_IOAS_UNMAP = 0x86;
/** The command number (`_IOC_NR`) of IOMMU_OPTION. */
export const IOMMUFD_CMD_OPTION = 0x87;
/** The command number (`_IOC_NR`) of IOMMU_VFIO_IOAS. */
export const IOMMUFD_CMD_VFIO_IOAS = 0x88;
/** The command number (`_IOC_NR`) of IOMMU_HWPT_ALLOC. */
export const IOMMUFD_CMD_HWPT_ALLOC = 0x89;
/** The command number (`_IOC_NR`) of IOMMU_GET_HW_INFO. */
export const IOMMUFD_CMD_GET_HW_INFO = 0x8a;
/** The command number (`_IOC_NR`) of IOMMU_HWPT_SET_DIRTY_TRACKING. */
export const IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b;
/** The command number (`_IOC_NR`) of IOMMU_HWPT_GET_DIRTY_BITMAP. */
export const IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8c;
/** The command number (`_IOC_NR`) of IOMMU_HWPT_INVALIDATE. */
export const IOMMUFD_CMD_HWPT_INVALIDATE = 0x8d;
/** The command number (`_IOC_NR`) of IOMMU_FAULT_QUEUE_ALLOC. */
export const IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8e;
/** The command number (`_IOC_NR`) of IOMMU_IOAS_MAP_FILE. */
export const IOMMUFD_CMD_IOAS_MAP_FILE = 0x8f;
/** The command number (`_IOC_NR`) of IOMMU_VIOMMU_ALLOC. */
export const IOMMUFD_CMD_VIOMMU_ALLOC = 0x90;
/** The command number (`_IOC_NR`) of IOMMU_VDEVICE_ALLOC. */
export const IOMMUFD_CMD_VDEVICE_ALLOC = 0x91;
/** The command number (`_IOC_NR`) of IOMMU_IOAS_CHANGE_PROCESS. */
export const IOMMUFD_CMD_IOAS_CHANGE_PROCESS = 0x92;
/** The command number (`_IOC_NR`) of IOMMU_VEVENTQ_ALLOC. */
export const IOMMUFD_CMD_VEVENTQ_ALLOC = 0x93;
/** The command number (`_IOC_NR`) of IOMMU_HW_QUEUE_ALLOC. */
export const IOMMUFD_CMD_HW_QUEUE_ALLOC = 0x94;

/** IOAS_MAP / MAP_FILE / COPY: the IOVA is given, not allocated. */
export const IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0;
/** IOAS_MAP / MAP_FILE / COPY: the device may write. */
export const IOMMU_IOAS_MAP_WRITEABLE = 1 << 1;
/** IOAS_MAP / MAP_FILE / COPY: the device may read. */
export const IOMMU_IOAS_MAP_READABLE = 1 << 2;

/** IOMMU_OPTION: how pinned pages are charged (global; 0 per user, 1 per process). */
export const IOMMU_OPTION_RLIMIT_MODE = 0;
/** IOMMU_OPTION: whether an IOAS may use pages larger than PAGE_SIZE (per IOAS). */
export const IOMMU_OPTION_HUGE_PAGES = 1;

/** IOMMU_OPTION op: set `val64`. */
export const IOMMU_OPTION_OP_SET = 0;
/** IOMMU_OPTION op: read into `val64`. */
export const IOMMU_OPTION_OP_GET = 1;

/** IOMMU_VFIO_IOAS op: report the compat IOAS. */
export const IOMMU_VFIO_IOAS_GET = 0;
/** IOMMU_VFIO_IOAS op: make `ioas_id` the compat IOAS. */
export const IOMMU_VFIO_IOAS_SET = 1;
/** IOMMU_VFIO_IOAS op: turn the compat IOAS off. */
export const IOMMU_VFIO_IOAS_CLEAR = 2;

/** HWPT_ALLOC: the HWPT can be the parent (stage 2) of nested HWPTs. */
export const IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0;
/** HWPT_ALLOC: the HWPT must support dirty tracking. */
export const IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1;
/** HWPT_ALLOC: `fault_id` names a fault object that receives the HWPT's page faults. */
export const IOMMU_HWPT_FAULT_ID_VALID = 1 << 2;
/** HWPT_ALLOC: the HWPT can be attached to PASIDs. */
export const IOMMU_HWPT_ALLOC_PASID = 1 << 3;

/** VT-d stage-1 flag: supervisor requests. */
export const IOMMU_VTD_S1_SRE = 1 << 0;
/** VT-d stage-1 flag: extended access flag. */
export const IOMMU_VTD_S1_EAFE = 1 << 1;
/** VT-d stage-1 flag: write protect enable. */
export const IOMMU_VTD_S1_WPE = 1 << 2;

/** HWPT_ALLOC data type: none (a kernel-managed paging HWPT). */
export const IOMMU_HWPT_DATA_NONE = 0;
/** HWPT_ALLOC data type: `iommu_hwpt_vtd_s1`. */
export const IOMMU_HWPT_DATA_VTD_S1 = 1;
/** HWPT_ALLOC data type: `iommu_hwpt_arm_smmuv3`. */
export const IOMMU_HWPT_DATA_ARM_SMMUV3 = 2;

/** hw_info_vtd flag: no read-only mappings on a nesting parent (erratum 772415). */
export const IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0;

/** GET_HW_INFO type: none (the IOMMU reports no data). Same value as DEFAULT. */
export const IOMMU_HW_INFO_TYPE_NONE = 0;
/** GET_HW_INFO input type: whatever the driver reports by default. Same value as NONE. */
export const IOMMU_HW_INFO_TYPE_DEFAULT = 0;
/** GET_HW_INFO type: `iommu_hw_info_vtd`. */
export const IOMMU_HW_INFO_TYPE_INTEL_VTD = 1;
/** GET_HW_INFO type: `iommu_hw_info_arm_smmuv3`. */
export const IOMMU_HW_INFO_TYPE_ARM_SMMUV3 = 2;
/** GET_HW_INFO type: `iommu_hw_info_tegra241_cmdqv`. */
export const IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV = 3;

/** GET_HW_INFO capability: dirty tracking. */
export const IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0;
/** GET_HW_INFO capability: PCI PASID execute permission. */
export const IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1;
/** GET_HW_INFO capability: PCI PASID privileged mode. */
export const IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2;

/** GET_HW_INFO flag: `in_data_type` is given. */
export const IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0;

/** SET_DIRTY_TRACKING flag: enable (clear = disable). */
export const IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1;

/** GET_DIRTY_BITMAP flag: read without clearing. */
export const IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1;

/** HWPT_INVALIDATE data type: `iommu_hwpt_vtd_s1_invalidate`. */
export const IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0;
/** HWPT_INVALIDATE data type (through a vIOMMU): `iommu_viommu_arm_smmuv3_invalidate`. */
export const IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1;

/** VT-d stage-1 invalidation flag: only leaf entries changed. */
export const IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0;

/** Fault record flag: `pasid` is valid. */
export const IOMMU_PGFAULT_FLAGS_PASID_VALID = 1 << 0;
/** Fault record flag: the last fault of its group. */
export const IOMMU_PGFAULT_FLAGS_LAST_PAGE = 1 << 1;

/** Fault permission: read. */
export const IOMMU_PGFAULT_PERM_READ = 1 << 0;
/** Fault permission: write. */
export const IOMMU_PGFAULT_PERM_WRITE = 1 << 1;
/** Fault permission: execute. */
export const IOMMU_PGFAULT_PERM_EXEC = 1 << 2;
/** Fault permission: privileged. */
export const IOMMU_PGFAULT_PERM_PRIV = 1 << 3;

/** Page response: the fault is handled, retry. */
export const IOMMUFD_PAGE_RESP_SUCCESS = 0;
/** Page response: the fault cannot be handled, do not retry. */
export const IOMMUFD_PAGE_RESP_INVALID = 1;

/** vIOMMU type 0: reserved. */
export const IOMMU_VIOMMU_TYPE_DEFAULT = 0;
/** vIOMMU type: Arm SMMUv3. */
export const IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1;
/** vIOMMU type: NVIDIA Tegra241 CMDQV. */
export const IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV = 2;

/** vEVENT header flag: events were lost here; no data follows this header. */
export const IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0;

/** vEVENTQ type 0: reserved. */
export const IOMMU_VEVENTQ_TYPE_DEFAULT = 0;
/** vEVENTQ type: SMMUv3 events (`iommu_vevent_arm_smmuv3`). */
export const IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1;
/** vEVENTQ type: Tegra241 CMDQV errors (`iommu_vevent_tegra241_cmdqv`). */
export const IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV = 2;

/** HW queue type 0: reserved. */
export const IOMMU_HW_QUEUE_TYPE_DEFAULT = 0;
/** HW queue type: a Tegra241 CMDQV virtual command queue. */
export const IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV = 1;

function group(name: string, kind: EnumInfo['kind'], constants: Record<string, number>): EnumInfo {
  return defineEnum(name, H, kind, constants);
}

/** The enums of iommufd.h, by their C tag (`iommufd_cmd` for the anonymous one). */
export const iommufdEnums = [
  group('iommufd_cmd', 'values', {
    IOMMUFD_CMD_BASE,
    IOMMUFD_CMD_DESTROY,
    IOMMUFD_CMD_IOAS_ALLOC,
    IOMMUFD_CMD_IOAS_ALLOW_IOVAS,
    IOMMUFD_CMD_IOAS_COPY,
    IOMMUFD_CMD_IOAS_IOVA_RANGES,
    IOMMUFD_CMD_IOAS_MAP,
    IOMMUFD_CMD_IOAS_UNMAP,
    IOMMUFD_CMD_OPTION,
    IOMMUFD_CMD_VFIO_IOAS,
    IOMMUFD_CMD_HWPT_ALLOC,
    IOMMUFD_CMD_GET_HW_INFO,
    IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING,
    IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP,
    IOMMUFD_CMD_HWPT_INVALIDATE,
    IOMMUFD_CMD_FAULT_QUEUE_ALLOC,
    IOMMUFD_CMD_IOAS_MAP_FILE,
    IOMMUFD_CMD_VIOMMU_ALLOC,
    IOMMUFD_CMD_VDEVICE_ALLOC,
    IOMMUFD_CMD_IOAS_CHANGE_PROCESS,
    IOMMUFD_CMD_VEVENTQ_ALLOC,
    IOMMUFD_CMD_HW_QUEUE_ALLOC,
  }),
  group('iommufd_ioas_map_flags', 'flags', {
    IOMMU_IOAS_MAP_FIXED_IOVA,
    IOMMU_IOAS_MAP_WRITEABLE,
    IOMMU_IOAS_MAP_READABLE,
  }),
  group('iommufd_option', 'values', { IOMMU_OPTION_RLIMIT_MODE, IOMMU_OPTION_HUGE_PAGES }),
  group('iommufd_option_ops', 'values', { IOMMU_OPTION_OP_SET, IOMMU_OPTION_OP_GET }),
  group('iommufd_vfio_ioas_op', 'values', {
    IOMMU_VFIO_IOAS_GET,
    IOMMU_VFIO_IOAS_SET,
    IOMMU_VFIO_IOAS_CLEAR,
  }),
  group('iommufd_hwpt_alloc_flags', 'flags', {
    IOMMU_HWPT_ALLOC_NEST_PARENT,
    IOMMU_HWPT_ALLOC_DIRTY_TRACKING,
    IOMMU_HWPT_FAULT_ID_VALID,
    IOMMU_HWPT_ALLOC_PASID,
  }),
  group('iommu_hwpt_vtd_s1_flags', 'flags', {
    IOMMU_VTD_S1_SRE,
    IOMMU_VTD_S1_EAFE,
    IOMMU_VTD_S1_WPE,
  }),
  group('iommu_hwpt_data_type', 'values', {
    IOMMU_HWPT_DATA_NONE,
    IOMMU_HWPT_DATA_VTD_S1,
    IOMMU_HWPT_DATA_ARM_SMMUV3,
  }),
  group('iommu_hw_info_vtd_flags', 'flags', { IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 }),
  group('iommu_hw_info_type', 'values', {
    IOMMU_HW_INFO_TYPE_NONE,
    IOMMU_HW_INFO_TYPE_DEFAULT,
    IOMMU_HW_INFO_TYPE_INTEL_VTD,
    IOMMU_HW_INFO_TYPE_ARM_SMMUV3,
    IOMMU_HW_INFO_TYPE_TEGRA241_CMDQV,
  }),
  group('iommufd_hw_capabilities', 'flags', {
    IOMMU_HW_CAP_DIRTY_TRACKING,
    IOMMU_HW_CAP_PCI_PASID_EXEC,
    IOMMU_HW_CAP_PCI_PASID_PRIV,
  }),
  group('iommufd_hw_info_flags', 'flags', { IOMMU_HW_INFO_FLAG_INPUT_TYPE }),
  group('iommufd_hwpt_set_dirty_tracking_flags', 'flags', { IOMMU_HWPT_DIRTY_TRACKING_ENABLE }),
  group('iommufd_hwpt_get_dirty_bitmap_flags', 'flags', { IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR }),
  group('iommu_hwpt_invalidate_data_type', 'values', {
    IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
    IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
  }),
  group('iommu_hwpt_vtd_s1_invalidate_flags', 'flags', { IOMMU_VTD_INV_FLAGS_LEAF }),
  group('iommu_hwpt_pgfault_flags', 'flags', {
    IOMMU_PGFAULT_FLAGS_PASID_VALID,
    IOMMU_PGFAULT_FLAGS_LAST_PAGE,
  }),
  group('iommu_hwpt_pgfault_perm', 'flags', {
    IOMMU_PGFAULT_PERM_READ,
    IOMMU_PGFAULT_PERM_WRITE,
    IOMMU_PGFAULT_PERM_EXEC,
    IOMMU_PGFAULT_PERM_PRIV,
  }),
  group('iommufd_page_response_code', 'values', {
    IOMMUFD_PAGE_RESP_SUCCESS,
    IOMMUFD_PAGE_RESP_INVALID,
  }),
  group('iommu_viommu_type', 'values', {
    IOMMU_VIOMMU_TYPE_DEFAULT,
    IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
    IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV,
  }),
  group('iommu_veventq_flag', 'flags', { IOMMU_VEVENTQ_FLAG_LOST_EVENTS }),
  group('iommu_veventq_type', 'values', {
    IOMMU_VEVENTQ_TYPE_DEFAULT,
    IOMMU_VEVENTQ_TYPE_ARM_SMMUV3,
    IOMMU_VEVENTQ_TYPE_TEGRA241_CMDQV,
  }),
  group('iommu_hw_queue_type', 'values', {
    IOMMU_HW_QUEUE_TYPE_DEFAULT,
    IOMMU_HW_QUEUE_TYPE_TEGRA241_CMDQV,
  }),
];
