/**
 * The structs of the VFIO type1 IOMMU API in `include/uapi/linux/vfio.h`
 * (Linux 6.17): what the legacy container ioctls VFIO_IOMMU_GET_INFO,
 * VFIO_IOMMU_MAP_DMA and VFIO_IOMMU_UNMAP_DMA carry, and the capability
 * records GET_INFO chains after its fixed part. iommufd answers these on its
 * own fd (vfio_compat.c). Their size field is `argsz`, read by the handlers'
 * own rules, not by iommufd's size-extensible copy.
 *
 * Two of them end in a C flexible array, which has no size of its own and so
 * is not a field here: `vfio_iommu_type1_info_cap_iova_range.iova_ranges[]`
 * (elements of `vfio_iova_range` from offset 16) and
 * `vfio_iommu_type1_dma_unmap.data[]` (bytes from offset 24).
 */
import { aligned_u64, nested, struct, u16, u32, u64 } from './types.js';

const H = 'include/uapi/linux/vfio.h';

const capHeader = nested([
  ['id', u16],
  ['version', u16],
  ['next', u32],
]);

export const vfio_info_cap_header = struct(
  'vfio_info_cap_header',
  H,
  'The head of every capability in a VFIO INFO chain: its id, its version and the offset of the next one (0 ends the chain).',
  [
    ['id', u16],
    ['version', u16],
    ['next', u32],
  ],
);

export const vfio_iommu_type1_info = struct(
  'vfio_iommu_type1_info',
  H,
  'VFIO_IOMMU_GET_INFO: the supported IO page sizes and, with VFIO_IOMMU_INFO_CAPS, the offset of a capability chain.',
  [
    ['argsz', u32],
    ['flags', u32],
    ['iova_pgsizes', aligned_u64],
    ['cap_offset', u32],
    ['pad', u32],
  ],
);

export const vfio_iova_range = struct(
  'vfio_iova_range',
  H,
  'An inclusive IOVA range [start, end], the element of the IOVA_RANGE capability.',
  [
    ['start', u64],
    ['end', u64],
  ],
);

export const vfio_iommu_type1_info_cap_iova_range = struct(
  'vfio_iommu_type1_info_cap_iova_range',
  H,
  'GET_INFO capability 1 (IOVA_RANGE): how many usable IOVA ranges follow it as vfio_iova_range[].',
  [
    ['header', capHeader],
    ['nr_iovas', u32],
    ['reserved', u32],
  ],
);

export const vfio_iommu_type1_info_dma_avail = struct(
  'vfio_iommu_type1_info_dma_avail',
  H,
  'GET_INFO capability 3 (DMA_AVAIL): how many more DMA mappings may be made.',
  [
    ['header', capHeader],
    ['avail', u32],
  ],
);

export const vfio_iommu_type1_dma_map = struct(
  'vfio_iommu_type1_dma_map',
  H,
  'VFIO_IOMMU_MAP_DMA: maps size bytes of process memory at vaddr to the IOVA iova.',
  [
    ['argsz', u32],
    ['flags', u32],
    ['vaddr', u64],
    ['iova', u64],
    ['size', u64],
  ],
);

export const vfio_iommu_type1_dma_unmap = struct(
  'vfio_iommu_type1_dma_unmap',
  H,
  'VFIO_IOMMU_UNMAP_DMA: unmaps [iova, iova + size); size comes back as the bytes unmapped.',
  [
    ['argsz', u32],
    ['flags', u32],
    ['iova', u64],
    ['size', u64],
  ],
);

/** The type1 structs, in header order. */
export const vfioType1Structs = [
  vfio_info_cap_header,
  vfio_iommu_type1_info,
  vfio_iova_range,
  vfio_iommu_type1_info_cap_iova_range,
  vfio_iommu_type1_info_dma_avail,
  vfio_iommu_type1_dma_map,
  vfio_iommu_type1_dma_unmap,
] as const;
