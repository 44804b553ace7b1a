import { iommufdStructs } from './iommufd.js';
import { iommufdTestStructs } from './iommufd-test.js';
import { vfioStructs } from './vfio.js';
import { vfioType1Structs } from './vfio-type1.js';

export * from './types.js';

/**
 * Every struct of the modelled uAPI: iommufd.h, the VFIO cdev structs,
 * iommufd_test.h, then the VFIO type1 structs of the container emulation.
 */
export const structSchemas = [
  ...iommufdStructs,
  ...vfioStructs,
  ...iommufdTestStructs,
  ...vfioType1Structs,
] as const;
