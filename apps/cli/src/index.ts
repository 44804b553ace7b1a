/**
 * @packageDocumentation
 * @iommufd-sim/cli: the `iommufd-sim` program. Not implemented yet: this
 * package holds only its wiring. See README.md for what it will contain.
 */
export {};
