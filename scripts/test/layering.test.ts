import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkLayering, findImports, LAYERS } from '../layering.mjs';
import { tempTree } from '../test-support/temp-tree.ts';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** A throwaway repository with the five layered packages and one app. */
function fixtureRepo(files: Record<string, string> = {}): string {
  const tree: Record<string, string> = {
    'package.json': JSON.stringify({ workspaces: ['packages/*', 'apps/*'] }),
    'apps/cli/package.json': JSON.stringify({ name: '@iommufd-sim/cli' }),
  };
  for (const [name, deps] of Object.entries(LAYERS)) {
    const short = name.split('/')[1] as string;
    const dependencies = Object.fromEntries(deps.map((d: string) => [d, '^0.1.0']));
    tree[`packages/${short}/package.json`] = JSON.stringify({ name, dependencies });
    tree[`packages/${short}/src/index.ts`] = 'export const x = 1;\n';
  }
  return tempTree('layering-', { ...tree, ...files });
}

describe('findImports', () => {
  it('finds static, re-export, side-effect, dynamic and require imports with their lines', () => {
    const source = [
      "import { a } from './a.js';",
      "import type { B } from '@iommufd-sim/uapi-types';",
      "export * from './c.js';",
      "import './side.js';",
      "const d = await import('@iommufd-sim/hw-models');",
      "const e = require('node:fs');",
      'import {',
      '  f,',
      "} from './f.js';",
    ].join('\n');
    expect(findImports(source)).toEqual([
      { specifier: './a.js', line: 1 },
      { specifier: '@iommufd-sim/uapi-types', line: 2 },
      { specifier: './c.js', line: 3 },
      { specifier: './side.js', line: 4 },
      { specifier: '@iommufd-sim/hw-models', line: 5 },
      { specifier: 'node:fs', line: 6 },
      { specifier: './f.js', line: 9 },
    ]);
  });

  it('ignores imports that only appear in comments or ordinary strings', () => {
    const source = [
      "// import { x } from '@iommufd-sim/iommufd-core';",
      "/** Example: import { createHost } from '@iommufd-sim/iommufd-core'; */",
      'const text = "import { y } from \'@iommufd-sim/viommu\'";',
    ].join('\n');
    expect(findImports(source)).toEqual([]);
  });
});

describe('checkLayering', () => {
  it('accepts a repository that follows the table', () => {
    const root = fixtureRepo({
      'packages/viommu/src/a.ts': "import { x } from '@iommufd-sim/hw-models';\n",
      'apps/cli/src/main.ts': "import { x } from '@iommufd-sim/iommufd-core';\n",
      'apps/cli/package.json': JSON.stringify({
        name: '@iommufd-sim/cli',
        dependencies: { '@iommufd-sim/iommufd-core': '^0.1.0' },
      }),
    });
    expect(checkLayering(root)).toEqual([]);
  });

  it('rejects an upward dependency declared in package.json', () => {
    const root = fixtureRepo({
      'packages/hw-models/package.json': JSON.stringify({
        name: '@iommufd-sim/hw-models',
        devDependencies: { '@iommufd-sim/iommufd-core': '^0.1.0' },
      }),
    });
    expect(checkLayering(root)).toEqual([
      {
        package: '@iommufd-sim/hw-models',
        file: join('packages', 'hw-models', 'package.json'),
        line: 1,
        message:
          'devDependencies names @iommufd-sim/iommufd-core, which @iommufd-sim/hw-models may not use',
      },
    ]);
  });

  it('rejects a sideways import in source, tests or benchmarks, with its line', () => {
    const root = fixtureRepo({
      'packages/hw-models/test/x.test.ts':
        "import { it } from 'vitest';\nimport { q } from '@iommufd-sim/fault-queue/sub';\n",
    });
    const found = checkLayering(root);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      package: '@iommufd-sim/hw-models',
      file: join('packages', 'hw-models', 'test', 'x.test.ts'),
      line: 2,
    });
    expect(found[0]?.message).toContain('may not use');
  });

  it('rejects a dynamic import upward', () => {
    const root = fixtureRepo({
      'packages/uapi-types/src/lazy.ts': "export const m = () => import('@iommufd-sim/viommu');\n",
    });
    expect(checkLayering(root).map((v) => v.package)).toEqual(['@iommufd-sim/uapi-types']);
  });

  it('rejects reaching into another package by relative path', () => {
    const root = fixtureRepo({
      'packages/fault-queue/src/a.ts': "import { x } from '../../uapi-types/src/index.js';\n",
    });
    const found = checkLayering(root);
    expect(found).toHaveLength(1);
    expect(found[0]?.message).toBe(
      "reaches into @iommufd-sim/uapi-types by path ('../../uapi-types/src/index.js')",
    );
  });

  it('allows relative imports of shared root files that belong to no package', () => {
    const root = fixtureRepo({
      'packages/fault-queue/vitest.config.ts': "import { c } from '../../vitest.shared.ts';\n",
    });
    expect(checkLayering(root)).toEqual([]);
  });

  it('rejects an allowed package that is imported but not declared', () => {
    const root = fixtureRepo({
      'packages/hw-models/package.json': JSON.stringify({ name: '@iommufd-sim/hw-models' }),
      'packages/hw-models/src/a.ts': "import { x } from '@iommufd-sim/uapi-types';\n",
    });
    expect(checkLayering(root).map((v) => v.message)).toEqual([
      'imports @iommufd-sim/uapi-types without declaring it in package.json',
    ]);
  });

  it('rejects a package that the table does not name', () => {
    const root = fixtureRepo({
      'packages/extra/package.json': JSON.stringify({ name: '@iommufd-sim/extra' }),
    });
    expect(checkLayering(root).map((v) => v.message)).toEqual([
      '@iommufd-sim/extra is not in the layering table of ARCHITECTURE.md',
    ]);
  });

  // Reads every source file of the repository: give it room on a loaded 2-core machine.
  it('holds for this repository', { timeout: 60_000 }, () => {
    expect(checkLayering(repoRoot)).toEqual([]);
  });
});
