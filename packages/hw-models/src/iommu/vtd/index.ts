// Placeholder: filled in by the iommu/vtd/index work.
export {};
