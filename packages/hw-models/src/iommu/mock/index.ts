// Placeholder: filled in by the iommu/mock/index work.
export {};
