// Every pending changeset must be one `changeset version` can read: front
// matter naming workspace packages and a bump, then a summary. (A Markdown
// formatter once turned the front matter into a heading; this catches that.)
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { listWorkspacePackages } from '../layering.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const folder = join(root, '.changeset');
const names = new Set(listWorkspacePackages(root).map((p: { name: string }) => p.name));
const files = readdirSync(folder).filter((f) => f.endsWith('.md') && f !== 'README.md');

describe('.changeset', () => {
  it.each(files)('%s has valid front matter and a summary', (file) => {
    const text = readFileSync(join(folder, file), 'utf8');
    const match = /^---\n([\s\S]*?)\n---\n\n(\S[\s\S]*)$/.exec(text);
    expect(match, 'front matter between --- lines, a blank line, then the summary').not.toBeNull();
    const lines = (match?.[1] ?? '').split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const entry = /^'(@iommufd-sim\/[a-z-]+)': (patch|minor|major)$/.exec(line);
      expect(entry, line).not.toBeNull();
      expect(names.has(entry?.[1] ?? ''), `${entry?.[1]} is a workspace package`).toBe(true);
    }
  });

  it('the configuration bumps dependents with their dependencies', () => {
    const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8'));
    expect(config.___experimentalUnsafeOptions_WILL_CHANGE_IN_PATCH?.updateInternalDependents).toBe(
      'always',
    );
  });
});
