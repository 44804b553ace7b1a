// `npm ci` refuses a lockfile that lacks an optional dependency some package
// declares (the per-platform binaries of turbo and Biome, for example). The
// registry mirror these machines use lacks some platforms of the newest
// releases, and `npm install` then silently leaves them out, so check here.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

interface LockEntry {
  optionalDependencies?: Record<string, string>;
}

const lock = JSON.parse(
  readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8'),
) as {
  packages: Record<string, LockEntry>;
};

/** Where Node would find `dep` from the package installed at `path`. */
function resolveFrom(path: string, dep: string): string | undefined {
  let base = path;
  for (;;) {
    const candidate = base === '' ? `node_modules/${dep}` : `${base}/node_modules/${dep}`;
    if (candidate in lock.packages) return candidate;
    if (base === '') return undefined;
    const cut = base.lastIndexOf('/node_modules/');
    base = cut >= 0 ? base.slice(0, cut) : '';
  }
}

describe('package-lock.json', () => {
  it('records every optional dependency of every package, for every platform', () => {
    const missing: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      for (const dep of Object.keys(entry.optionalDependencies ?? {})) {
        if (resolveFrom(path, dep) === undefined) missing.push(`${path || '(root)'} → ${dep}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
