// Placeholder: filled in by the pagetable/mock work.
export {};
