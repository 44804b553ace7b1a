/**
 * The constants of the legacy VFIO container API in `include/uapi/linux/vfio.h`
 * (Linux 6.17) that iommufd's type1 emulation answers on its own fd: the API
 * version, the extension numbers of VFIO_CHECK_EXTENSION and VFIO_SET_IOMMU,
 * and the flags and capability ids of the type1 structs.
 */
import { defineEnum, type EnumInfo } from './enum-info.js';

const H = 'include/uapi/linux/vfio.h';

/** `VFIO_API_VERSION`: what VFIO_GET_API_VERSION returns (0). */
export const VFIO_API_VERSION = 0;

/** Extension 1: the type1 IOMMU (unmaps may cut mappings). */
export const VFIO_TYPE1_IOMMU = 1;
/** Extension 2: the POWER sPAPR TCE IOMMU (not offered by iommufd). */
export const VFIO_SPAPR_TCE_IOMMU = 2;
/** Extension 3: the type1v2 IOMMU (an unmap must cover whole mappings). */
export const VFIO_TYPE1v2_IOMMU = 3;
/** Extension 4: DMA is cache coherent (no-snoop is blocked). */
export const VFIO_DMA_CC_IOMMU = 4;
/** Extension 5: POWER EEH error recovery. */
export const VFIO_EEH = 5;
/** Extension 6: the withdrawn type1 nesting IOMMU, always reported as absent. */
export const __VFIO_RESERVED_TYPE1_NESTING_IOMMU = 6;
/** Extension 7: the sPAPR TCE v2 IOMMU. */
export const VFIO_SPAPR_TCE_v2_IOMMU = 7;
/** Extension 8: no-IOMMU mode (no translation, no isolation). */
export const VFIO_NOIOMMU_IOMMU = 8;
/** Extension 9: VFIO_DMA_UNMAP_FLAG_ALL is supported. */
export const VFIO_UNMAP_ALL = 9;
/** Extension 10: the VADDR flags of map and unmap are supported. */
export const VFIO_UPDATE_VADDR = 10;

/** vfio_iommu_type1_info.flags: `iova_pgsizes` is valid. */
export const VFIO_IOMMU_INFO_PGSIZES = 1 << 0;
/** vfio_iommu_type1_info.flags: the info supports a capability chain at `cap_offset`. */
export const VFIO_IOMMU_INFO_CAPS = 1 << 1;

/** GET_INFO capability id of vfio_iommu_type1_info_cap_iova_range. */
export const VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE = 1;
/** GET_INFO capability id of the migration capability (dirty page logging; iommufd does not report it). */
export const VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION = 2;
/** GET_INFO capability id of vfio_iommu_type1_info_dma_avail. */
export const VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL = 3;

/** vfio_iommu_type1_dma_map.flags: the device may read the memory. */
export const VFIO_DMA_MAP_FLAG_READ = 1 << 0;
/** vfio_iommu_type1_dma_map.flags: the device may write the memory. */
export const VFIO_DMA_MAP_FLAG_WRITE = 1 << 1;
/** vfio_iommu_type1_dma_map.flags: only give an invalidated mapping a new vaddr. */
export const VFIO_DMA_MAP_FLAG_VADDR = 1 << 2;

/** vfio_iommu_type1_dma_unmap.flags: return a dirty bitmap in `data[]` (obsolete; iommufd refuses it). */
export const VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP = 1 << 0;
/** vfio_iommu_type1_dma_unmap.flags: unmap everything; `iova` and `size` must be 0. */
export const VFIO_DMA_UNMAP_FLAG_ALL = 1 << 1;
/** vfio_iommu_type1_dma_unmap.flags: only invalidate the vaddr of the mappings. */
export const VFIO_DMA_UNMAP_FLAG_VADDR = 1 << 2;

/** The enums and flag families of the type1 container API. */
export const vfioType1Enums: EnumInfo[] = [
  defineEnum('vfio_extension', H, 'values', {
    VFIO_TYPE1_IOMMU,
    VFIO_SPAPR_TCE_IOMMU,
    VFIO_TYPE1v2_IOMMU,
    VFIO_DMA_CC_IOMMU,
    VFIO_EEH,
    __VFIO_RESERVED_TYPE1_NESTING_IOMMU,
    VFIO_SPAPR_TCE_v2_IOMMU,
    VFIO_NOIOMMU_IOMMU,
    VFIO_UNMAP_ALL,
    VFIO_UPDATE_VADDR,
  }),
  defineEnum('vfio_iommu_type1_info_flags', H, 'flags', {
    VFIO_IOMMU_INFO_PGSIZES,
    VFIO_IOMMU_INFO_CAPS,
  }),
  defineEnum('vfio_iommu_type1_info_cap_id', H, 'values', {
    VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE,
    VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION,
    VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL,
  }),
  defineEnum('vfio_iommu_type1_dma_map_flags', H, 'flags', {
    VFIO_DMA_MAP_FLAG_READ,
    VFIO_DMA_MAP_FLAG_WRITE,
    VFIO_DMA_MAP_FLAG_VADDR,
  }),
  defineEnum('vfio_iommu_type1_dma_unmap_flags', H, 'flags', {
    VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
    VFIO_DMA_UNMAP_FLAG_ALL,
    VFIO_DMA_UNMAP_FLAG_VADDR,
  }),
];
