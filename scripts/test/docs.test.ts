import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  classifyMessages,
  docsPlan,
  packageOptions,
  packagePage,
  parseDocsArgs,
} from '../docs.mjs';
import { listWorkspacePackages } from '../layering.mjs';
import { tempTree } from '../test-support/temp-tree.ts';

const root = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

describe('npm run docs: what it documents', () => {
  it('every workspace package with a src/index.ts, through its build tsconfig and README', () => {
    const plan = docsPlan(root);
    expect(plan.map((p) => p.name).sort()).toEqual(
      listWorkspacePackages(root)
        .map((p) => p.name)
        .sort(),
    );
    for (const p of plan) {
      expect(p.entry).toBe(join(p.dir, 'src', 'index.ts'));
      expect(p.tsconfig).toBe(join(p.dir, 'tsconfig.build.json'));
      expect(p.readme).toBe(join(p.dir, 'README.md'));
    }
  });

  it('skips a package without an entry point and falls back to tsconfig.json and no README', () => {
    const tree = tempTree('docs-plan-', {
      'package.json': JSON.stringify({ workspaces: ['packages/*'] }),
      'packages/a/package.json': JSON.stringify({ name: '@x/a' }),
      'packages/a/src/index.ts': 'export const a = 1;\n',
      'packages/a/tsconfig.json': '{}',
      'packages/b/package.json': JSON.stringify({ name: '@x/b' }),
      'packages/b/README.md': '# b\n',
    });
    expect(docsPlan(tree)).toEqual([
      {
        name: '@x/a',
        dir: join(tree, 'packages/a'),
        entry: join(tree, 'packages/a/src/index.ts'),
        tsconfig: join(tree, 'packages/a/tsconfig.json'),
        readme: undefined,
      },
    ]);
  });

  it("gives TypeDoc the shared options of typedoc.json and the package's own files", () => {
    const [pkg] = docsPlan(root);
    if (pkg === undefined) throw new Error('no package to document');
    const options = packageOptions(root, pkg);
    expect(options).toMatchObject({
      name: pkg.name,
      entryPoints: [pkg.entry],
      tsconfig: pkg.tsconfig,
      readme: pkg.readme,
      validation: { notExported: true, notDocumented: true },
      treatWarningsAsErrors: false,
      sourceLinkTemplate: `file://${root}/{path}#L{line}`,
    });
    expect(options).not.toHaveProperty('$schema');
    expect(packageOptions(root, { ...pkg, readme: undefined }).readme).toBe('none');
  });

  it('sorts members without a doc comment from other warnings and errors', () => {
    const { undocumented, other } = classifyMessages(
      [
        {
          level: 'warning',
          message: 'Ring.size (Property), defined in x.ts, does not have any documentation',
        },
        {
          level: 'warning',
          message: `Foo, defined in ${root}/a.ts, is referenced by Bar but not included in the documentation`,
        },
        { level: 'error', message: 'something broke' },
      ],
      root,
    );
    expect(undocumented).toEqual([
      'Ring.size (Property), defined in x.ts, does not have any documentation',
    ]);
    expect(other).toEqual([
      {
        level: 'warning',
        message: 'Foo, defined in a.ts, is referenced by Bar but not included in the documentation',
      },
      { level: 'error', message: 'something broke' },
    ]);
  });

  it('names the page of each package and reads its command line', () => {
    expect(packagePage('@iommufd-sim/uapi-types')).toBe('modules/_iommufd-sim_uapi-types.html');
    expect(parseDocsArgs([], '/repo')).toEqual({
      out: '/repo/docs/api',
      build: true,
      allWarnings: false,
    });
    expect(parseDocsArgs(['--no-build', '--all-warnings', '--out', '/tmp/d'], '/repo')).toEqual({
      out: '/tmp/d',
      build: false,
      allWarnings: true,
    });
    expect(() => parseDocsArgs(['--watch'], '/repo')).toThrow(/unknown argument '--watch'/);
  });
});

describe('npm run docs: the site', () => {
  const out = mkdtempSync(join(tmpdir(), 'iommufd-sim-docs-test-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  // About 20 s alone; more while turbo runs the package tests beside it.
  it('writes an index, a page per package and the warning list, with a line per package', () => {
    const run = spawnSync('node', ['scripts/docs.mjs', '--no-build', '--out', out], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).toBe(0);
    const plan = docsPlan(root);
    for (const [i, pkg] of plan.entries()) {
      expect(run.stdout).toContain(`docs [${i + 1}/${plan.length}] ${pkg.name}: converted`);
      expect(existsSync(join(out, packagePage(pkg.name))), pkg.name).toBe(true);
    }
    const index = readFileSync(join(out, 'index.html'), 'utf8');
    expect(index).toContain('iommufd-sim');
    // The README's package links lead to the packages' pages.
    expect(index).toContain(`href="${packagePage('@iommufd-sim/iommufd-core')}"`);
    expect(readFileSync(join(out, 'warnings.txt'), 'utf8')).toMatch(
      /^Members without a doc comment/,
    );
  }, 180_000);
});
