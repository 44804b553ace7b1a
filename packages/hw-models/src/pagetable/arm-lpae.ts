/**
 * Arm VMSAv8-64 LPAE page tables (stage 1 and stage 2, as io-pgtable-arm
 * builds them for SMMUv3): the table format and its geometry helpers.
 */
export * from './arm-lpae-geometry.js';
export * from './arm-lpae-table.js';
