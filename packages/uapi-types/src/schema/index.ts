import { iommufdStructs } from './iommufd.js';
import { iommufdTestStructs } from './iommufd-test.js';
import { vfioStructs } from './vfio.js';

export * from './types.js';

/** Every struct of the modelled uAPI: iommufd.h, the VFIO cdev structs, then iommufd_test.h. */
export const structSchemas = [...iommufdStructs, ...vfioStructs, ...iommufdTestStructs] as const;
