export * from './frame-allocator.js';
export * from './physical-memory.js';
