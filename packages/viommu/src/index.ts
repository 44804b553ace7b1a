/**
 * @packageDocumentation
 * @iommufd-sim/viommu: the vIOMMU layer. Not implemented yet: this package
 * holds only its wiring. See README.md for what it will contain.
 */
export {};
