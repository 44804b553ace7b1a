import { defineConfig } from 'vitest/config';

// Local convenience: `npx vitest` at the root runs every package as one
// project set. CI and `npm test` run each package through turbo instead.
export default defineConfig({
  test: {
    projects: ['packages/*', 'apps/*', 'vitest.repo.config.ts'],
  },
});
