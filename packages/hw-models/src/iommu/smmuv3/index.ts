/**
 * The Arm SMMUv3 model: registers, stream table and STEs, CDs, commands,
 * events and PRI entries (all with named-field codecs), queues, domains and
 * the instance.
 */
export * from './bits.js';
export * from './cd.js';
export * from './commands.js';
export * from './events.js';
export * from './queue.js';
export * from './registers.js';
export * from './smmuv3-domain.js';
export * from './smmuv3-iommu.js';
export * from './ste.js';
export * from './stream-table.js';
