// Placeholder: filled in by the iommu/amd/index work.
export {};
