// Placeholder: filled in by the pagetable/arm-lpae work.
export {};
