import { constants } from 'node:os';
import { describe, expect, it } from 'vitest';
import * as uapi from '../src/index.js';
import {
  describeResult,
  E2BIG,
  EINVAL,
  errnoAliases,
  errnoMeaning,
  errnoName,
  errnoNumber,
  errnos,
} from '../src/index.js';

const exported = uapi as unknown as Record<string, unknown>;

describe('errno', () => {
  it('names and numbers the errors iommufd answers with', () => {
    expect(EINVAL).toBe(22);
    expect(errnoName(22)).toBe('EINVAL');
    expect(errnoName(-22)).toBe('EINVAL');
    expect(errnoMeaning(E2BIG)).toContain('non-zero bytes');
    expect(errnoNumber('EDEADLOCK')).toBe(35);
    expect(errnoName(35)).toBe('EDEADLK');
    expect(errnoName(41)).toBeUndefined();
    expect(describeResult(-95)).toBe(
      'EOPNOTSUPP (-95): not supported: unknown flag, type, option or reserved field set',
    );
    expect(describeResult(3)).toBe('3');
    expect(describeResult(-4096)).toBe('-4096');
  });

  it('exports a constant for every errno and alias, equal to the table', () => {
    for (const info of errnos.values()) expect(exported[info.name], info.name).toBe(info.errno);
    for (const [name, value] of Object.entries(errnoAliases))
      expect(exported[name], name).toBe(value);
    const errnoExports = Object.keys(exported).filter((k) => /^E[A-Z0-9]+$/.test(k));
    expect(errnoExports.sort()).toEqual(
      [...[...errnos.values()].map((e) => e.name), ...Object.keys(errnoAliases)].sort(),
    );
  });

  it('has the Linux x86-64 numbers: 1..133 without 41 and 58, names unique', () => {
    expect([...errnos.keys()]).toEqual(
      [...Array(133).keys()].map((i) => i + 1).filter((n) => n !== 41 && n !== 58),
    );
    const names = [...errnos.values()].map((e) => e.name);
    expect(new Set(names).size).toBe(names.length);
    for (const e of errnos.values()) expect(e.meaning.length).toBeGreaterThan(5);
  });

  // Node reports the errno numbers of the platform it runs on; on Linux
  // x86-64 (where CI runs) they must be the same numbers.
  it.runIf(process.platform === 'linux' && process.arch === 'x64')(
    'agrees with the running Linux kernel',
    () => {
      const platform = constants.errno as Record<string, number>;
      let compared = 0;
      for (const [name, value] of Object.entries(platform)) {
        const ours = errnoNumber(name);
        if (ours === undefined) continue;
        expect(ours, name).toBe(value);
        compared++;
      }
      expect(compared).toBeGreaterThan(70);
    },
  );
});
