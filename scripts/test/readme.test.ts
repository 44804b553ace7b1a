// The repository README's examples, run as the package READMEs' are: each
// written to a file and imported, so it loads the packages by name from their
// built entry points (turbo builds them before the repository checks).
import { existsSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { describeReadmeExamples } from '../test-support/readme-examples.ts';

// The first example imports the built packages, which takes a moment on a busy machine.
vi.setConfig({ testTimeout: 60_000 });

describe('the README examples can run', () => {
  it('the packages they import are built', () => {
    for (const pkg of ['uapi-types', 'iommufd-core']) {
      const entry = new URL(`../../packages/${pkg}/dist/index.js`, import.meta.url);
      expect(existsSync(entry), `${pkg} is not built: run npm run build`).toBe(true);
    }
  });
});

describeReadmeExamples(
  [new URL('../../README.md', import.meta.url)],
  new URL('./.readme-examples/', import.meta.url),
  3,
);
