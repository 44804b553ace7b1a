/**
 * @packageDocumentation
 * @iommufd-sim/iommufd-core: the kernel side of /dev/iommu and the
 * syscall-shaped surface (`createHost`, `proc.open/ioctl/read/write/close`).
 * Not implemented yet: this package holds only its wiring. See README.md for
 * what it will contain.
 */
export {};
