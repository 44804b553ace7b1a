/**
 * One entry point for building an IOMMU of any model from a host
 * configuration, so the layer above need not know the classes.
 */
import { AmdIommu } from './amd/amd-iommu.js';
import type { IommuConfig, IommuEnvironment, IommuInstance, IommuModel } from './iommu.js';
import { MockIommu } from './mock/mock-iommu.js';
import { Smmuv3Iommu } from './smmuv3/smmuv3-iommu.js';
import { VtdIommu } from './vtd/vtd-iommu.js';

/** Every model {@link createIommu} builds. */
export const IOMMU_MODELS: readonly IommuModel[] = ['vtd', 'smmuv3', 'amd', 'mock'];

/** Build the IOMMU `config.model` names, with its tables in `env`. */
export function createIommu(config: IommuConfig, env: IommuEnvironment): IommuInstance {
  switch (config.model) {
    case 'vtd':
      return new VtdIommu(config, env);
    case 'smmuv3':
      return new Smmuv3Iommu(config, env);
    case 'amd':
      return new AmdIommu(config, env);
    case 'mock':
      return new MockIommu(config, env);
    default:
      throw new RangeError(
        `unknown IOMMU model '${String((config as { model: unknown }).model)}'; expected one of ${IOMMU_MODELS.join(', ')}`,
      );
  }
}
