// Placeholder: filled in by the pagetable/vtd-second-stage work.
export {};
