#!/usr/bin/env node
// The `iommufd-sim` command as npm links it. This launcher is committed (the
// program, dist/bin.js, is built), so that `npm ci` on a fresh clone can link
// it: npm links a bin only when its file exists at install time.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const program = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(fileURLToPath(program))) {
  console.error(
    'iommufd-sim is not built yet: run `npm start` at the repository root, or `npm run build -w @iommufd-sim/cli`',
  );
  process.exit(2);
}
await import(program.href);
