import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { summarize } from '../test-summary.mjs';
import { tempTree } from '../test-support/temp-tree.ts';

function repo(results: Record<string, object | string>): string {
  const tree: Record<string, string> = {
    'package.json': JSON.stringify({ workspaces: ['packages/*'] }),
    'packages/a/package.json': JSON.stringify({ name: 'a', scripts: { test: 'vitest run' } }),
    'packages/b/package.json': JSON.stringify({ name: 'b', scripts: { test: 'vitest run' } }),
    'packages/c/package.json': JSON.stringify({ name: 'c', scripts: {} }),
  };
  for (const [dir, value] of Object.entries(results)) {
    tree[join(dir, '.test-results/vitest.json')] =
      typeof value === 'string' ? value : JSON.stringify(value);
  }
  return tempTree('summary-', tree);
}

describe('the CI summary', () => {
  it('sums every package and the repository checks', () => {
    const root = repo({
      '.': { numPassedTests: 3, numFailedTests: 0 },
      'packages/a': { numPassedTests: 10, numFailedTests: 0, numPendingTests: 1 },
      'packages/b': { numPassedTests: 5, numFailedTests: 2 },
    });
    const { passed, failed, lines } = summarize(root, 1);
    expect([passed, failed]).toEqual([18, 2]);
    expect(lines).toContain('  a: 10 passed, 0 failed, 1 skipped');
  });

  it('counts a package with a test script but no results as a failure', () => {
    const root = repo({ '.': { numPassedTests: 3 }, 'packages/a': { numPassedTests: 10 } });
    const { failed, lines } = summarize(root, 1);
    expect(failed).toBe(1);
    expect(lines.join('\n')).toContain('b: no test results');
  });

  it('counts a file that failed to load when no single test failed', () => {
    const root = repo({
      '.': { numPassedTests: 1 },
      'packages/a': { numPassedTests: 0, numFailedTests: 0, numFailedTestSuites: 1 },
      'packages/b': 'not json',
    });
    expect(summarize(root, 1).failed).toBe(2);
  });

  it('never reads green when npm test failed elsewhere', () => {
    const root = repo({
      '.': { numPassedTests: 1 },
      'packages/a': { numPassedTests: 2 },
      'packages/b': { numPassedTests: 3 },
    });
    expect(summarize(root, 0)).toMatchObject({ passed: 6, failed: 0 });
    expect(summarize(root, 2)).toMatchObject({ passed: 6, failed: 1 });
  });
});
