// Placeholder: filled in by the iommu/smmuv3/index work.
export {};
