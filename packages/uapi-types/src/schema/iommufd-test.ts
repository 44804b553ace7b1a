/**
 * The structs of `drivers/iommu/iommufd/iommufd_test.h` (Linux 6.17): the
 * IOMMU_TEST_CMD envelope of the selftest mock and the mock driver's data.
 * They exist only in a kernel built with CONFIG_IOMMUFD_TEST.
 */
import { aligned_u64, nested, struct, u32, u64, union } from './types.js';

const H = 'drivers/iommu/iommufd/iommufd_test.h';

export const iommu_test_cmd = struct(
  'iommu_test_cmd',
  H,
  'IOMMU_TEST_CMD: one selftest operation; `op` selects which member of the union it uses.',
  [
    ['size', u32],
    ['op', u32],
    ['id', u32],
    ['__reserved', u32],
    union([
      [
        'add_reserved',
        nested([
          ['start', aligned_u64],
          ['length', aligned_u64],
        ]),
      ],
      [
        'mock_domain',
        nested([
          ['out_stdev_id', u32],
          ['out_hwpt_id', u32],
          ['out_idev_id', u32],
        ]),
      ],
      [
        'mock_domain_flags',
        nested([
          ['out_stdev_id', u32],
          ['out_hwpt_id', u32],
          ['out_idev_id', u32],
          ['dev_flags', u32],
        ]),
      ],
      ['mock_domain_replace', nested([['pt_id', u32]])],
      [
        'check_map',
        nested([
          ['iova', aligned_u64],
          ['length', aligned_u64],
          ['uptr', aligned_u64],
        ]),
      ],
      [
        'check_refs',
        nested([
          ['length', aligned_u64],
          ['uptr', aligned_u64],
          ['refs', u32],
        ]),
      ],
      [
        'create_access',
        nested([
          ['out_access_fd', u32],
          ['flags', u32],
        ]),
      ],
      ['destroy_access_pages', nested([['access_pages_id', u32]])],
      [
        'access_pages',
        nested([
          ['flags', u32],
          ['out_access_pages_id', u32],
          ['iova', aligned_u64],
          ['length', aligned_u64],
          ['uptr', aligned_u64],
        ]),
      ],
      [
        'access_rw',
        nested([
          ['iova', aligned_u64],
          ['length', aligned_u64],
          ['uptr', aligned_u64],
          ['flags', u32],
        ]),
      ],
      ['memory_limit', nested([['limit', u32]])],
      ['access_replace_ioas', nested([['ioas_id', u32]])],
      [
        'dirty',
        nested([
          ['flags', u32],
          ['iova', aligned_u64],
          ['length', aligned_u64],
          ['page_size', aligned_u64],
          ['uptr', aligned_u64],
          ['out_nr_dirty', aligned_u64],
        ]),
      ],
      [
        'check_iotlb',
        nested([
          ['id', u32],
          ['iotlb', u32],
        ]),
      ],
      [
        'trigger_iopf',
        nested([
          ['dev_id', u32],
          ['pasid', u32],
          ['grpid', u32],
          ['perm', u32],
          ['addr', u64],
        ]),
      ],
      [
        'check_dev_cache',
        nested([
          ['id', u32],
          ['cache', u32],
        ]),
      ],
      ['trigger_vevent', nested([['dev_id', u32]])],
      [
        'pasid_attach',
        nested([
          ['pasid', u32],
          ['pt_id', u32],
        ]),
      ],
      [
        'pasid_replace',
        nested([
          ['pasid', u32],
          ['pt_id', u32],
        ]),
      ],
      ['pasid_detach', nested([['pasid', u32]])],
      [
        'pasid_check',
        nested([
          ['pasid', u32],
          ['hwpt_id', u32],
        ]),
      ],
    ]),
    ['last', u32],
  ],
);

export const iommu_test_hw_info = struct(
  'iommu_test_hw_info',
  H,
  'GET_HW_INFO data of the mock IOMMU (type 0xfeedbeef).',
  [
    ['flags', u32],
    ['test_reg', u32],
  ],
);

export const iommu_hwpt_selftest = struct(
  'iommu_hwpt_selftest',
  H,
  'HWPT_ALLOC data of a mock nested domain: the value its IOTLB slots start with.',
  [['iotlb', u32]],
);

export const iommu_hwpt_invalidate_selftest = struct(
  'iommu_hwpt_invalidate_selftest',
  H,
  'One mock nested-domain invalidation request: which IOTLB slot, or all of them.',
  [
    ['flags', u32],
    ['iotlb_id', u32],
  ],
);

export const iommu_viommu_selftest = struct(
  'iommu_viommu_selftest',
  H,
  'VIOMMU_ALLOC data of the mock vIOMMU: an echoed value and an mmap region.',
  [
    ['in_data', u32],
    ['out_data', u32],
    ['out_mmap_offset', aligned_u64],
    ['out_mmap_length', aligned_u64],
  ],
);

export const iommu_viommu_invalidate_selftest = struct(
  'iommu_viommu_invalidate_selftest',
  H,
  'One mock vIOMMU invalidation request: a device cache slot of the vDEVICE with vdev_id.',
  [
    ['flags', u32],
    ['vdev_id', u32],
    ['cache_id', u32],
  ],
);

export const iommu_viommu_event_selftest = struct(
  'iommu_viommu_event_selftest',
  H,
  'The payload of a mock vEVENT: the virt_id of the device that raised it.',
  [['virt_id', u32]],
);

/** The structs of iommufd_test.h, in header order. */
export const iommufdTestStructs = [
  iommu_test_cmd,
  iommu_test_hw_info,
  iommu_hwpt_selftest,
  iommu_hwpt_invalidate_selftest,
  iommu_viommu_selftest,
  iommu_viommu_invalidate_selftest,
  iommu_viommu_event_selftest,
] as const;
