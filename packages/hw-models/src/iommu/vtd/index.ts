/**
 * Intel VT-d: capability registers, context structures, queued-invalidation
 * descriptors, fault and page-request records, domains and the IOMMU instance.
 */
export * from './bits.js';
export * from './context.js';
export * from './domain.js';
export * from './invalidation.js';
export * from './qtest-layout.js';
export * from './records.js';
export * from './registers.js';
export * from './vtd-iommu.js';
