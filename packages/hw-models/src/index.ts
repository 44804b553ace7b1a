/**
 * @packageDocumentation
 * @iommufd-sim/hw-models: IOMMU hardware (VT-d, SMMUv3, AMD-Vi, the selftest
 * mock). Not implemented yet: this package holds only its wiring. See README.md
 * for what it will contain.
 */
export {};
