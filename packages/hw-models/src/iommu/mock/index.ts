// The iommufd selftest mock IOMMU: its domains and the instance.
export * from './mock-domain.js';
export * from './mock-iommu.js';
