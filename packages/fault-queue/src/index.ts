/**
 * @packageDocumentation
 * @iommufd-sim/fault-queue: rings of fault and event records, the IOPF queue
 * and the vEVENTQ. Not implemented yet: this package holds only its wiring.
 * See README.md for what it will contain.
 */
export {};
