#!/usr/bin/env node
// `npm run check:layering`: prints every layering violation and exits 1 if any.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkLayering } from './layering.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const violations = checkLayering(root);
for (const v of violations) console.log(`${v.file}:${v.line}: ${v.package} ${v.message}`);
console.log(
  violations.length === 0
    ? 'layering: every package uses only the packages ARCHITECTURE.md allows'
    : `layering: ${violations.length} violation(s)`,
);
process.exitCode = violations.length === 0 ? 0 : 1;
