import { defineConfig } from 'vitest/config';

// Repository-wide checks (layering, package manifests, the CI summary script)
// that belong to no single package.
export default defineConfig({
  test: {
    name: 'repo',
    include: ['scripts/test/**/*.test.ts'],
    reporters: ['default', 'json'],
    outputFile: { json: '.test-results/vitest.json' },
  },
});
