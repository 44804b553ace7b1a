/**
 * @packageDocumentation
 * The Linux 6.17 iommufd uAPI as data: every struct byte-exact with a codec
 * derived from one schema, every ioctl request with its size rule, every
 * constant under its kernel name, Linux errno numbers, and the kernel's copy
 * rules for ioctl arguments.
 */

export type { FieldInput, StructInput } from './codec.js';
export * from './constants/iommufd.js';
export * from './constants/iommufd-test.js';
export * from './constants/vfio.js';
export * from './constants/vfio-type1.js';
export {
  type CopyFailure,
  type CopyInOptions,
  type CopyInResult,
  type CopyOutResult,
  copyIoctlArgIn,
  copyIoctlArgOut,
  copyStructFromUser,
} from './copy-rules.js';
export { type EnumInfo, enums, enumValueName, flagNames } from './enums.js';
export * from './errno.js';
export type * from './generated/codecs.js';
export {
  _IO,
  _IOC,
  _IOC_DIR,
  _IOC_NONE,
  _IOC_NR,
  _IOC_READ,
  _IOC_SIZE,
  _IOC_TYPE,
  _IOC_WRITE,
} from './ioc.js';
export * from './ioctls.js';
export type {
  FieldInfo,
  LaidOutField,
  LaidOutMember,
  LaidOutUnion,
  StructLayout,
} from './layout.js';
export { layoutStruct } from './layout.js';
export {
  faultRecord,
  pageResponseRecord,
  veventHeader,
  veventPayloads,
  veventRecordSize,
} from './records.js';
export * from './schema/index.js';
export {
  type StructDescriptor,
  type StructName,
  type Structs,
  structNames,
  structs,
} from './structs.js';
export { formatUapiSummary, TARGET_KERNEL } from './summary.js';
export { asUserMemory, type UserMemory, userMemoryOf } from './user-memory.js';
export {
  VFIO_CHECK_EXTENSION,
  VFIO_GET_API_VERSION,
  VFIO_IOMMU_DIRTY_PAGES,
  VFIO_IOMMU_GET_INFO,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  type VfioContainerIoctlInfo,
  vfioContainerIoctlByRequest,
  vfioContainerIoctls,
} from './vfio-container.js';
