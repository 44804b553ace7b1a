// AMD-Vi: registers, device table entries, commands, log entries, domains and the IOMMU.
export * from './amd-domain.js';
export * from './amd-iommu.js';
export * from './commands.js';
export * from './dte.js';
export * from './efr.js';
export * from './log-entries.js';
