// Starts a TypeScript worker: `new Worker(this file, { workerData: { entry } })`
// runs `entry` (a .ts file URL) through tsx, so the workers of the tests and of
// the benchmark run from the sources, with no build step in between.
import { workerData } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

await tsImport(workerData.entry, import.meta.url);
