import { defineConfig } from 'vitest/config';

/**
 * The one vitest configuration every workspace package uses, so that each
 * package's `npm test` writes the JSON results `.ci/run` sums into its
 * `N passed, M failed` line.
 */
export function packageTestConfig(options: { testTimeout?: number } = {}) {
  return defineConfig({
    test: {
      include: ['test/**/*.test.ts'],
      reporters: ['default', 'json'],
      outputFile: { json: '.test-results/vitest.json' },
      testTimeout: options.testTimeout ?? 20_000,
    },
  });
}
