/**
 * The structs of `include/uapi/linux/iommufd.h` (Linux 6.17), in header order.
 * Only names, types and order are declared here; offsets and sizes are derived
 * by the layout rules and checked against the compiler's numbers in the tests.
 */
import { aligned_le64, aligned_u64, array, s32, struct, u8, u16, u32, union } from './types.js';

const H = 'include/uapi/linux/iommufd.h';

export const iommu_destroy = struct(
  'iommu_destroy',
  H,
  'IOMMU_DESTROY: destroys the object with this id.',
  [
    ['size', u32],
    ['id', u32],
  ],
);

export const iommu_ioas_alloc = struct(
  'iommu_ioas_alloc',
  H,
  'IOMMU_IOAS_ALLOC: creates an empty I/O address space.',
  [
    ['size', u32],
    ['flags', u32],
    ['out_ioas_id', u32],
  ],
);

export const iommu_iova_range = struct(
  'iommu_iova_range',
  H,
  'An inclusive IOVA range [start, last], the element of the allowed and usable range arrays.',
  [
    ['start', aligned_u64],
    ['last', aligned_u64],
  ],
);

export const iommu_ioas_iova_ranges = struct(
  'iommu_ioas_iova_ranges',
  H,
  'IOMMU_IOAS_IOVA_RANGES: reports the IOVA ranges an IOAS can map, sized by EMSGSIZE.',
  [
    ['size', u32],
    ['ioas_id', u32],
    ['num_iovas', u32],
    ['__reserved', u32],
    ['allowed_iovas', aligned_u64],
    ['out_iova_alignment', aligned_u64],
  ],
);

export const iommu_ioas_allow_iovas = struct(
  'iommu_ioas_allow_iovas',
  H,
  'IOMMU_IOAS_ALLOW_IOVAS: replaces the list of IOVA ranges automatic allocation may use.',
  [
    ['size', u32],
    ['ioas_id', u32],
    ['num_iovas', u32],
    ['__reserved', u32],
    ['allowed_iovas', aligned_u64],
  ],
);

export const iommu_ioas_map = struct(
  'iommu_ioas_map',
  H,
  'IOMMU_IOAS_MAP: maps user memory into an IOAS.',
  [
    ['size', u32],
    ['flags', u32],
    ['ioas_id', u32],
    ['__reserved', u32],
    ['user_va', aligned_u64],
    ['length', aligned_u64],
    ['iova', aligned_u64],
  ],
);

export const iommu_ioas_map_file = struct(
  'iommu_ioas_map_file',
  H,
  'IOMMU_IOAS_MAP_FILE: maps a range of a memfd (or dma-buf) into an IOAS.',
  [
    ['size', u32],
    ['flags', u32],
    ['ioas_id', u32],
    ['fd', s32],
    ['start', aligned_u64],
    ['length', aligned_u64],
    ['iova', aligned_u64],
  ],
);

export const iommu_ioas_copy = struct(
  'iommu_ioas_copy',
  H,
  'IOMMU_IOAS_COPY: maps into one IOAS the pages already pinned for a range of another.',
  [
    ['size', u32],
    ['flags', u32],
    ['dst_ioas_id', u32],
    ['src_ioas_id', u32],
    ['length', aligned_u64],
    ['dst_iova', aligned_u64],
    ['src_iova', aligned_u64],
  ],
);

export const iommu_ioas_unmap = struct(
  'iommu_ioas_unmap',
  H,
  'IOMMU_IOAS_UNMAP: removes whole mappings inside a range; length returns the bytes removed.',
  [
    ['size', u32],
    ['ioas_id', u32],
    ['iova', aligned_u64],
    ['length', aligned_u64],
  ],
);

export const iommu_option = struct(
  'iommu_option',
  H,
  'IOMMU_OPTION: reads or sets a global or per-object option.',
  [
    ['size', u32],
    ['option_id', u32],
    ['op', u16],
    ['__reserved', u16],
    ['object_id', u32],
    ['val64', aligned_u64],
  ],
);

export const iommu_vfio_ioas = struct(
  'iommu_vfio_ioas',
  H,
  'IOMMU_VFIO_IOAS: gets, sets or clears the IOAS the VFIO container emulation uses.',
  [
    ['size', u32],
    ['ioas_id', u32],
    ['op', u16],
    ['__reserved', u16],
  ],
);

export const iommu_hwpt_vtd_s1 = struct(
  'iommu_hwpt_vtd_s1',
  H,
  'HWPT_ALLOC data for an Intel VT-d stage-1 (first-stage) page table owned by the user.',
  [
    ['flags', aligned_u64],
    ['pgtbl_addr', aligned_u64],
    ['addr_width', u32],
    ['__reserved', u32],
  ],
);

export const iommu_hwpt_arm_smmuv3 = struct(
  'iommu_hwpt_arm_smmuv3',
  H,
  'HWPT_ALLOC data for an Arm SMMUv3 nested domain: the guest STE, two little-endian words.',
  [['ste', array(aligned_le64, 2)]],
);

export const iommu_hwpt_alloc = struct(
  'iommu_hwpt_alloc',
  H,
  'IOMMU_HWPT_ALLOC: creates a HW page table (paging, or nested with driver data).',
  [
    ['size', u32],
    ['flags', u32],
    ['dev_id', u32],
    ['pt_id', u32],
    ['out_hwpt_id', u32],
    ['__reserved', u32],
    ['data_type', u32],
    ['data_len', u32],
    ['data_uptr', aligned_u64],
    ['fault_id', u32],
    ['__reserved2', u32],
  ],
);

export const iommu_hw_info_vtd = struct(
  'iommu_hw_info_vtd',
  H,
  'GET_HW_INFO data of an Intel VT-d IOMMU: its capability and extended capability registers.',
  [
    ['flags', u32],
    ['__reserved', u32],
    ['cap_reg', aligned_u64],
    ['ecap_reg', aligned_u64],
  ],
);

export const iommu_hw_info_arm_smmuv3 = struct(
  'iommu_hw_info_arm_smmuv3',
  H,
  'GET_HW_INFO data of an Arm SMMUv3: its ID registers IDR0-5, IIDR and AIDR.',
  [
    ['flags', u32],
    ['__reserved', u32],
    ['idr', array(u32, 6)],
    ['iidr', u32],
    ['aidr', u32],
  ],
);

export const iommu_hw_info_tegra241_cmdqv = struct(
  'iommu_hw_info_tegra241_cmdqv',
  H,
  'GET_HW_INFO data of an NVIDIA Tegra241 CMDQV extension of an SMMUv3.',
  [
    ['flags', u32],
    ['version', u8],
    ['log2vcmdqs', u8],
    ['log2vsids', u8],
    ['__reserved', u8],
  ],
);

export const iommu_hw_info = struct(
  'iommu_hw_info',
  H,
  'IOMMU_GET_HW_INFO: describes the physical IOMMU behind a bound device.',
  [
    ['size', u32],
    ['flags', u32],
    ['dev_id', u32],
    ['data_len', u32],
    ['data_uptr', aligned_u64],
    union([
      ['in_data_type', u32],
      ['out_data_type', u32],
    ]),
    ['out_max_pasid_log2', u8],
    ['__reserved', array(u8, 3)],
    ['out_capabilities', aligned_u64],
  ],
);

export const iommu_hwpt_set_dirty_tracking = struct(
  'iommu_hwpt_set_dirty_tracking',
  H,
  'IOMMU_HWPT_SET_DIRTY_TRACKING: turns dirty tracking of a HWPT on or off.',
  [
    ['size', u32],
    ['flags', u32],
    ['hwpt_id', u32],
    ['__reserved', u32],
  ],
);

export const iommu_hwpt_get_dirty_bitmap = struct(
  'iommu_hwpt_get_dirty_bitmap',
  H,
  'IOMMU_HWPT_GET_DIRTY_BITMAP: reads (and by default clears) dirty bits of an IOVA range.',
  [
    ['size', u32],
    ['hwpt_id', u32],
    ['flags', u32],
    ['__reserved', u32],
    ['iova', aligned_u64],
    ['length', aligned_u64],
    ['page_size', aligned_u64],
    ['data', aligned_u64],
  ],
);

export const iommu_hwpt_vtd_s1_invalidate = struct(
  'iommu_hwpt_vtd_s1_invalidate',
  H,
  'One VT-d stage-1 invalidation request (HWPT_INVALIDATE entry): npages 4 KiB pages from addr.',
  [
    ['addr', aligned_u64],
    ['npages', aligned_u64],
    ['flags', u32],
    ['__reserved', u32],
  ],
);

export const iommu_viommu_arm_smmuv3_invalidate = struct(
  'iommu_viommu_arm_smmuv3_invalidate',
  H,
  'One SMMUv3 command-queue entry (HWPT_INVALIDATE entry through a vIOMMU), two little-endian words.',
  [['cmd', array(aligned_le64, 2)]],
);

export const iommu_hwpt_invalidate = struct(
  'iommu_hwpt_invalidate',
  H,
  'IOMMU_HWPT_INVALIDATE: passes an array of cache invalidation requests to a nested HWPT or vIOMMU.',
  [
    ['size', u32],
    ['hwpt_id', u32],
    ['data_uptr', aligned_u64],
    ['data_type', u32],
    ['entry_len', u32],
    ['entry_num', u32],
    ['__reserved', u32],
  ],
);

export const iommu_hwpt_pgfault = struct(
  'iommu_hwpt_pgfault',
  H,
  'One I/O page fault as read() from a fault fd (40 bytes; a group shares one cookie).',
  [
    ['flags', u32],
    ['dev_id', u32],
    ['pasid', u32],
    ['grpid', u32],
    ['perm', u32],
    ['__reserved', u32],
    ['addr', aligned_u64],
    ['length', u32],
    ['cookie', u32],
  ],
);

export const iommu_hwpt_page_response = struct(
  'iommu_hwpt_page_response',
  H,
  'The answer to a fault group, written to a fault fd: its cookie and a response code.',
  [
    ['cookie', u32],
    ['code', u32],
  ],
);

export const iommu_fault_alloc = struct(
  'iommu_fault_alloc',
  H,
  'IOMMU_FAULT_QUEUE_ALLOC: creates a fault object and the fd that delivers its page faults.',
  [
    ['size', u32],
    ['flags', u32],
    ['out_fault_id', u32],
    ['out_fault_fd', u32],
  ],
);

export const iommu_viommu_tegra241_cmdqv = struct(
  'iommu_viommu_tegra241_cmdqv',
  H,
  'VIOMMU_ALLOC data of a Tegra241 CMDQV vIOMMU: where to mmap its VINTF page.',
  [
    ['out_vintf_mmap_offset', aligned_u64],
    ['out_vintf_mmap_length', aligned_u64],
  ],
);

export const iommu_viommu_alloc = struct(
  'iommu_viommu_alloc',
  H,
  'IOMMU_VIOMMU_ALLOC: creates a virtual IOMMU over a nesting-parent HWPT.',
  [
    ['size', u32],
    ['flags', u32],
    ['type', u32],
    ['dev_id', u32],
    ['hwpt_id', u32],
    ['out_viommu_id', u32],
    ['data_len', u32],
    ['__reserved', u32],
    ['data_uptr', aligned_u64],
  ],
);

export const iommu_vdevice_alloc = struct(
  'iommu_vdevice_alloc',
  H,
  "IOMMU_VDEVICE_ALLOC: registers a device with a vIOMMU under the guest's id for it.",
  [
    ['size', u32],
    ['viommu_id', u32],
    ['dev_id', u32],
    ['out_vdevice_id', u32],
    ['virt_id', aligned_u64],
  ],
);

export const iommu_ioas_change_process = struct(
  'iommu_ioas_change_process',
  H,
  'IOMMU_IOAS_CHANGE_PROCESS: moves the pinned-memory accounting to the calling process.',
  [
    ['size', u32],
    ['__reserved', u32],
  ],
);

export const iommufd_vevent_header = struct(
  'iommufd_vevent_header',
  H,
  'The 8-byte header before every vEVENT read from a vEVENTQ fd.',
  [
    ['flags', u32],
    ['sequence', u32],
  ],
);

export const iommu_vevent_arm_smmuv3 = struct(
  'iommu_vevent_arm_smmuv3',
  H,
  'An SMMUv3 event record as a vEVENT: four little-endian words, StreamID replaced by the virt_id.',
  [['evt', array(aligned_le64, 4)]],
);

export const iommu_vevent_tegra241_cmdqv = struct(
  'iommu_vevent_tegra241_cmdqv',
  H,
  'A Tegra241 CMDQV error vEVENT: the LVCMDQ error map, two little-endian words.',
  [['lvcmdq_err_map', array(aligned_le64, 2)]],
);

export const iommu_veventq_alloc = struct(
  'iommu_veventq_alloc',
  H,
  'IOMMU_VEVENTQ_ALLOC: creates a vEVENT queue of one type for a vIOMMU, and its fd.',
  [
    ['size', u32],
    ['flags', u32],
    ['viommu_id', u32],
    ['type', u32],
    ['veventq_depth', u32],
    ['out_veventq_id', u32],
    ['out_veventq_fd', u32],
    ['__reserved', u32],
  ],
);

export const iommu_hw_queue_alloc = struct(
  'iommu_hw_queue_alloc',
  H,
  'IOMMU_HW_QUEUE_ALLOC: gives the hardware direct access to a guest queue in guest memory.',
  [
    ['size', u32],
    ['flags', u32],
    ['viommu_id', u32],
    ['type', u32],
    ['index', u32],
    ['out_hw_queue_id', u32],
    ['nesting_parent_iova', aligned_u64],
    ['length', aligned_u64],
  ],
);

/** The structs of iommufd.h, in the order the header declares them. */
export const iommufdStructs = [
  iommu_destroy,
  iommu_ioas_alloc,
  iommu_iova_range,
  iommu_ioas_iova_ranges,
  iommu_ioas_allow_iovas,
  iommu_ioas_map,
  iommu_ioas_map_file,
  iommu_ioas_copy,
  iommu_ioas_unmap,
  iommu_option,
  iommu_vfio_ioas,
  iommu_hwpt_vtd_s1,
  iommu_hwpt_arm_smmuv3,
  iommu_hwpt_alloc,
  iommu_hw_info_vtd,
  iommu_hw_info_arm_smmuv3,
  iommu_hw_info_tegra241_cmdqv,
  iommu_hw_info,
  iommu_hwpt_set_dirty_tracking,
  iommu_hwpt_get_dirty_bitmap,
  iommu_hwpt_vtd_s1_invalidate,
  iommu_viommu_arm_smmuv3_invalidate,
  iommu_hwpt_invalidate,
  iommu_hwpt_pgfault,
  iommu_hwpt_page_response,
  iommu_fault_alloc,
  iommu_viommu_tegra241_cmdqv,
  iommu_viommu_alloc,
  iommu_vdevice_alloc,
  iommu_ioas_change_process,
  iommufd_vevent_header,
  iommu_vevent_arm_smmuv3,
  iommu_vevent_tegra241_cmdqv,
  iommu_veventq_alloc,
  iommu_hw_queue_alloc,
] as const;
