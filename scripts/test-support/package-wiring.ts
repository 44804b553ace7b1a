// Checks that a workspace package is wired as ARCHITECTURE.md asks: it loads
// by its own name through its `exports` map (the built dist entry, with
// declarations beside it), and every workspace package it depends on loads too.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

interface Manifest {
  name: string;
  exports: Record<string, { types?: string; default?: string } | string>;
  dependencies?: Record<string, string>;
}

/** Declares the wiring tests of the package whose package.json is at `manifestUrl`. */
export function describePackageWiring(manifestUrl: URL): void {
  const manifest = JSON.parse(readFileSync(manifestUrl, 'utf8')) as Manifest;
  const root = manifest.exports['.'];

  describe(`${manifest.name} wiring`, () => {
    it('exports its built entry point and its declarations, types first', () => {
      expect(typeof root).toBe('object');
      const entry = root as { types?: string; default?: string };
      expect(Object.keys(entry)).toEqual(['types', 'default']);
      expect(existsSync(fileURLToPath(new URL(entry.default as string, manifestUrl)))).toBe(true);
      expect(existsSync(fileURLToPath(new URL(entry.types as string, manifestUrl)))).toBe(true);
    });

    it('loads by its own name', async () => {
      await expect(import(/* @vite-ignore */ manifest.name)).resolves.toBeTypeOf('object');
    });

    const deps = Object.keys(manifest.dependencies ?? {}).filter((d) =>
      d.startsWith('@iommufd-sim/'),
    );
    for (const dep of deps) {
      it(`loads its dependency ${dep}`, async () => {
        await expect(import(/* @vite-ignore */ dep)).resolves.toBeTypeOf('object');
      });
    }
  });
}
