// Sums the vitest JSON results of every workspace package (and of the
// repository checks) into the one line CI reads: `N passed, M failed`.
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { listWorkspacePackages } from './layering.mjs';

const RESULTS = join('.test-results', 'vitest.json');

function readResults(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Reads every result file and totals it. `exitCode` is what `npm test` exited
 * with: a failure that left no failed test behind (lint, types, a build) still
 * counts as one failure, so the summary can never read green when CI is red.
 */
export function summarize(rootDir, exitCode) {
  const sources = [{ name: 'repository checks', dir: rootDir }];
  for (const pkg of listWorkspacePackages(rootDir)) {
    if (pkg.manifest.scripts?.test !== undefined) sources.push({ name: pkg.name, dir: pkg.dir });
  }
  let passed = 0;
  let failed = 0;
  const lines = [];
  for (const source of sources) {
    const file = join(source.dir, RESULTS);
    const results = existsSync(file) ? readResults(file) : undefined;
    if (results === undefined) {
      failed += 1;
      lines.push(
        `  ${source.name}: no test results (${relative(rootDir, file)} missing or unreadable)`,
      );
      continue;
    }
    const ok = results.numPassedTests ?? 0;
    const suiteErrors =
      (results.numFailedTestSuites ?? 0) > 0 && (results.numFailedTests ?? 0) === 0
        ? results.numFailedTestSuites
        : 0;
    const bad = (results.numFailedTests ?? 0) + suiteErrors;
    const skipped = (results.numPendingTests ?? 0) + (results.numTodoTests ?? 0);
    passed += ok;
    failed += bad;
    lines.push(
      `  ${source.name}: ${ok} passed, ${bad} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`,
    );
  }
  if (exitCode !== 0 && failed === 0) {
    failed = 1;
    lines.push(
      `  npm test exited with ${exitCode} outside the test runs (lint, typecheck or build): counted as 1 failure`,
    );
  }
  return { passed, failed, lines };
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (invokedDirectly) {
  const at = process.argv.indexOf('--exit-code');
  const exitCode = at >= 0 ? Number(process.argv[at + 1]) : 0;
  const root = join(new URL('.', import.meta.url).pathname, '..');
  const { passed, failed, lines } = summarize(root, exitCode);
  console.log('test results by package:');
  for (const line of lines) console.log(line);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 ? 0 : 1;
}
