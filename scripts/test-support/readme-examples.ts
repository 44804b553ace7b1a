// Runs every ```ts example of some READMEs as a user would: each written to a
// file and imported, so it imports packages by name (their built entry
// points) and its assertions must hold.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * Declares one test per ```ts block of the READMEs at `readmeUrls`, run from
 * files written under `workDir` (removed afterwards), and a test that there
 * are at least `minExamples` of them.
 */
export function describeReadmeExamples(
  readmeUrls: readonly URL[],
  workDir: URL,
  minExamples = 4,
): void {
  const examples = readmeUrls.flatMap((url) =>
    [...readFileSync(url, 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string),
  );

  afterAll(() => rmSync(workDir, { recursive: true, force: true }));

  describe('README examples', () => {
    it('there are examples to run', () => {
      expect(examples.length).toBeGreaterThanOrEqual(minExamples);
    });

    it.each(examples.map((code, i) => [i + 1, code] as const))(
      'example %d runs and its assertions hold',
      async (n, code) => {
        mkdirSync(workDir, { recursive: true });
        const file = new URL(`example-${n}.ts`, workDir);
        writeFileSync(file, code);
        await expect(import(file.href)).resolves.toBeDefined();
      },
    );
  });
}
