/**
 * @packageDocumentation
 * @iommufd-sim/hw-models: IOMMU hardware. Sparse simulated physical memory and
 * a page-table-page allocator; page tables in their real formats (Intel VT-d
 * second stage and first stage, Arm LPAE stage 1 and 2, AMD-Vi v1, the
 * iommufd selftest mock); VT-d, SMMUv3, AMD-Vi and mock IOMMU instances with
 * their registers, context structures, caches, commands and fault records;
 * devices and a DMA engine.
 */
export * from './device.js';
export * from './dma.js';
export * from './iommu/amd/index.js';
export * from './iommu/create.js';
export * from './iommu/iommu.js';
export * from './iommu/iotlb.js';
export * from './iommu/mock/index.js';
export * from './iommu/smmuv3/index.js';
export * from './iommu/vtd/index.js';
export * from './memory/index.js';
export * from './pagetable/amd-v1.js';
export * from './pagetable/arm-lpae.js';
export * from './pagetable/format.js';
export * from './pagetable/mock.js';
export * from './pagetable/nested.js';
export * from './pagetable/vtd-second-stage.js';
export * from './pagetable/x86-64.js';
export * from './report/walk-svg.js';
export * from './tour.js';
