// Placeholder: filled in by the pagetable/amd-v1 work.
export {};
