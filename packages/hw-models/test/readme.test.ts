// Runs every ```ts example of the README, as a user would: importing the
// package by name (its built entry point), with assertions inside.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';

// This package's README.
const readmes = ['../README.md'].map((path) =>
  readFileSync(new URL(path, import.meta.url), 'utf8'),
);
const examples = readmes.flatMap((text) =>
  [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string),
);
const dir = new URL('./.readme-examples/', import.meta.url);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('README examples', () => {
  it('there are examples to run', () => {
    expect(examples.length).toBeGreaterThanOrEqual(4);
  });

  it.each(examples.map((code, i) => [i + 1, code] as const))(
    'example %d runs and its assertions hold',
    async (n, code) => {
      mkdirSync(dir, { recursive: true });
      const file = new URL(`example-${n}.ts`, dir);
      writeFileSync(file, code);
      await expect(import(file.href)).resolves.toBeDefined();
    },
  );
});
