// Placeholder: filled in by the pagetable/x86-64 work.
export {};
