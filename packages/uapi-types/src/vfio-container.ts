/**
 * The ioctls of the legacy VFIO container (`/dev/vfio/vfio`) API that an
 * iommufd file answers itself when it stands in for a container. Their
 * numbers sit below iommufd's (VFIO_BASE 100 + nr, type `';'`), which is how
 * the iommufd dispatcher tells them apart. Three take a plain integer as the
 * ioctl argument, not a pointer; the type1 ones point to an `argsz` struct
 * whose fixed part the kernel reads whole, whatever `argsz` says.
 */
import { VFIO_BASE, VFIO_TYPE } from './constants/vfio.js';
import { _IO } from './ioc.js';
import { type StructName, structs } from './structs.js';

/** `VFIO_GET_API_VERSION` = 0x3b64: returns VFIO_API_VERSION; no argument. */
export const VFIO_GET_API_VERSION = _IO(VFIO_TYPE, VFIO_BASE + 0);
/** `VFIO_CHECK_EXTENSION` = 0x3b65: 1 if the extension number given as the argument is supported, else 0. */
export const VFIO_CHECK_EXTENSION = _IO(VFIO_TYPE, VFIO_BASE + 1);
/** `VFIO_SET_IOMMU` = 0x3b66: selects the IOMMU type given as the argument (type1 or type1v2). */
export const VFIO_SET_IOMMU = _IO(VFIO_TYPE, VFIO_BASE + 2);
/** `VFIO_IOMMU_GET_INFO` = 0x3b70: fills struct vfio_iommu_type1_info and its capability chain. */
export const VFIO_IOMMU_GET_INFO = _IO(VFIO_TYPE, VFIO_BASE + 12);
/** `VFIO_IOMMU_MAP_DMA` = 0x3b71: struct vfio_iommu_type1_dma_map. */
export const VFIO_IOMMU_MAP_DMA = _IO(VFIO_TYPE, VFIO_BASE + 13);
/** `VFIO_IOMMU_UNMAP_DMA` = 0x3b72: struct vfio_iommu_type1_dma_unmap. */
export const VFIO_IOMMU_UNMAP_DMA = _IO(VFIO_TYPE, VFIO_BASE + 14);
/** `VFIO_IOMMU_DIRTY_PAGES` = 0x3b75: type1 dirty logging; iommufd does not offer it (ENOTTY). */
export const VFIO_IOMMU_DIRTY_PAGES = _IO(VFIO_TYPE, VFIO_BASE + 17);

/** One VFIO container ioctl and what its argument is. */
export interface VfioContainerIoctlInfo {
  /** The request macro, for example `VFIO_IOMMU_MAP_DMA`. */
  readonly name: string;
  /** The request number passed to ioctl(2). */
  readonly request: number;
  /** `none`: no argument; `integer`: the argument is a number, not a pointer; `struct`: a pointer to {@link struct}. */
  readonly argument: 'none' | 'integer' | 'struct';
  /** The struct its argument points to (only for `struct`). */
  readonly struct?: StructName;
  /** The fixed part the kernel copies in whole (`offsetofend` of `minSizeField`); an `argsz` below it is EINVAL. */
  readonly minSize: number;
  /** The last field of that fixed part (only for `struct`). */
  readonly minSizeField?: string;
  /** What the request does, in one sentence. */
  readonly doc: string;
}

function endOf(struct: StructName, field: string): number {
  const info = (
    structs[struct].fields as Readonly<Record<string, { offset: number; size: number }>>
  )[field];
  if (info === undefined) throw new Error(`${struct} has no field ${field}`);
  return info.offset + info.size;
}

function noArgument(name: string, request: number, doc: string): VfioContainerIoctlInfo {
  return Object.freeze({ name, request, argument: 'none', minSize: 0, doc });
}

function integer(name: string, request: number, doc: string): VfioContainerIoctlInfo {
  return Object.freeze({ name, request, argument: 'integer', minSize: 0, doc });
}

function withStruct(
  name: string,
  request: number,
  struct: StructName,
  minSizeField: string,
  doc: string,
): VfioContainerIoctlInfo {
  return Object.freeze({
    name,
    request,
    argument: 'struct',
    struct,
    minSize: endOf(struct, minSizeField),
    minSizeField,
    doc,
  });
}

/**
 * The container ioctls iommufd answers on its fd (vfio_compat.c), by macro
 * name. Any other number below iommufd's base is ENOTTY there, including
 * VFIO_IOMMU_DIRTY_PAGES.
 *
 * @example vfioContainerIoctls.VFIO_IOMMU_MAP_DMA // { request: 0x3b71, struct: 'vfio_iommu_type1_dma_map', minSize: 32, ... }
 */
export const vfioContainerIoctls = Object.freeze({
  VFIO_GET_API_VERSION: noArgument(
    'VFIO_GET_API_VERSION',
    VFIO_GET_API_VERSION,
    'Report the VFIO API version.',
  ),
  VFIO_CHECK_EXTENSION: integer(
    'VFIO_CHECK_EXTENSION',
    VFIO_CHECK_EXTENSION,
    'Ask whether an extension (an IOMMU type or a feature) is supported.',
  ),
  VFIO_SET_IOMMU: integer(
    'VFIO_SET_IOMMU',
    VFIO_SET_IOMMU,
    'Choose the IOMMU type of the container (type1 or type1v2).',
  ),
  VFIO_IOMMU_GET_INFO: withStruct(
    'VFIO_IOMMU_GET_INFO',
    VFIO_IOMMU_GET_INFO,
    'vfio_iommu_type1_info',
    'iova_pgsizes',
    'Report the IO page sizes, the usable IOVA ranges and how many mappings may still be made.',
  ),
  VFIO_IOMMU_MAP_DMA: withStruct(
    'VFIO_IOMMU_MAP_DMA',
    VFIO_IOMMU_MAP_DMA,
    'vfio_iommu_type1_dma_map',
    'size',
    'Map process memory at a fixed IOVA of the container.',
  ),
  VFIO_IOMMU_UNMAP_DMA: withStruct(
    'VFIO_IOMMU_UNMAP_DMA',
    VFIO_IOMMU_UNMAP_DMA,
    'vfio_iommu_type1_dma_unmap',
    'size',
    'Unmap an IOVA range of the container, or everything.',
  ),
});

const byRequest = new Map<number, VfioContainerIoctlInfo>(
  Object.values(vfioContainerIoctls).map((info) => [info.request, info]),
);

/** The VFIO container ioctl with this request number, or undefined. */
export function vfioContainerIoctlByRequest(request: number): VfioContainerIoctlInfo | undefined {
  return byRequest.get(request);
}
