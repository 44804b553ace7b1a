/** Scenario files with mistakes: every problem with its line and column, exit 2, nothing run. */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Problem, parseScenario, ScenarioError } from '../src/scenario/parse.js';
import { cli, hasStackTrace, tempDir } from './helpers.js';

function problems(source: string): Problem[] {
  try {
    parseScenario(source, 'test.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return [...e.problems];
    throw e;
  }
  return [];
}

const HOST = `host:
  iommus: [{ name: vtd0, model: vtd }]
  devices: [{ name: "0000:01:00.0", iommu: vtd0 }]
`;

describe('problems in a scenario file', () => {
  it('an unknown step, with a suggestion', () => {
    expect(problems(`${HOST}steps:\n  - open: /dev/iommu\n  - atach: x\n`)).toEqual([
      {
        line: 6,
        col: 5,
        message: expect.stringMatching(/^step 2: unknown step 'atach' \(did you mean 'attach'\?\)/),
      },
    ]);
  });

  it('an unknown field, a missing required field, a field of the wrong kind', () => {
    const p = problems(`${HOST}steps:
  - ioas: gpa
    colour: blue
  - hwpt: h
    pt: $gpa
  - dirty-tracking: $h
    enable: maybe
`);
    expect(p.map((x) => [x.line, x.col])).toEqual([
      [6, 5],
      [7, 5],
      [10, 13],
    ]);
    expect(p[0]?.message).toContain("step 1 (ioas): unknown field 'colour'");
    expect(p[1]?.message).toContain("step 2 (hwpt): missing required field 'device'");
    expect(p[2]?.message).toBe('step 3 (dirty-tracking): enable: expected true or false');
  });

  it('bad numbers: an unknown unit, a fraction of a byte, garbage, a value that is not a number', () => {
    const p = problems(`${HOST}steps:
  - mmap: a
    length: 4 GiBs
  - mmap: b
    length: 1.5
  - mmap: c
    length: 12 + + 3
  - mmap: d
    length: [1, 2]
`);
    expect(p.map((x) => x.line)).toEqual([6, 8, 10, 12]);
    expect(p[0]?.message).toContain("unknown unit 'GiBs'");
    expect(p[1]?.message).toContain('1.5 is not an integer');
    expect(p[2]?.message).toContain("unexpected '+'");
    expect(p[3]?.message).toContain('expected a number');
  });

  it('a variable used before any step sets it, with the closest one suggested', () => {
    const p = problems(`${HOST}steps:\n  - ioas: gpa\n  - map: $gap\n    length: 4096\n`);
    expect(p[0]).toEqual({
      line: 6,
      col: 10,
      message: "step 2 (map): map: $gap is not set by any earlier step (did you mean '$gpa'?)",
    });
  });

  it('ioctl steps: unknown request, unknown struct field, bad flag name', () => {
    const p = problems(`${HOST}steps:
  - ioctl: IOMMU_IOAS_MAPP
  - ioctl: IOMMU_IOAS_MAP
    lenght: 4096
    flags: [READABLE, WRITABLE]
`);
    expect(p.map((x) => x.message)).toEqual([
      "step 1 (ioctl): no ioctl named 'IOMMU_IOAS_MAPP' (did you mean 'IOMMU_IOAS_MAP'?)",
      expect.stringContaining(
        "no field 'lenght' in struct iommu_ioas_map (did you mean 'length'?)",
      ),
      expect.stringContaining(
        "'WRITABLE' is not one of iommufd_ioas_map_flags: FIXED_IOVA, WRITEABLE, READABLE (did you mean 'WRITEABLE'?)",
      ),
    ]);
  });

  it('an unknown device, an unknown errno, an unknown struct', () => {
    const p = problems(`${HOST}steps:
  - bind: "0000:09:00.0"
  - open: /dev/iommu
    expect: EWHAT
  - hwpt: h
    device: "0000:01:00.0"
    pt: 1
    data: { struct: iommu_hwpt_armsmmuv3 }
`);
    expect(p.map((x) => x.line)).toEqual([5, 7, 11]);
    expect(p[0]?.message).toContain("no device '0000:09:00.0' (the host has 0000:01:00.0)");
    expect(p[1]?.message).toContain("'EWHAT' is not 0, a number, ok, error or an errno name");
    expect(p[2]?.message).toContain(
      "no struct 'iommu_hwpt_armsmmuv3' (did you mean 'iommu_hwpt_arm_smmuv3'?)",
    );
  });

  it('a host that does not hold together', () => {
    expect(
      problems('host:\n  iommus: [{ name: a, model: vtdd }]\nsteps: []\n')[0]?.message,
    ).toContain("model: 'vtdd' is not one of vtd, smmuv3, amd, mock");
    expect(
      problems(
        'host:\n  iommus: [{ name: a, model: vtd }]\n  devices: [{ name: dev, iommu: b }]\nsteps: []\n',
      )[0],
    ).toMatchObject({
      line: 3,
      message: "host.devices dev: no IOMMU 'b' (IOMMUs: a)",
    });
    expect(
      problems(
        'host:\n  iommus: [{ name: a, model: vtd }]\n  devices: [{ name: plat, iommu: a, pri: true }]\nsteps: []\n',
      )[0]?.message,
    ).toBe('host: plat: ATS and PRI are PCI capabilities; name the device by its BDF');
  });

  it('YAML syntax errors carry their line', () => {
    const p = problems('steps:\n  - open: /dev/iommu\n   - ioas: [\n');
    expect(p.length).toBeGreaterThan(0);
    expect(p[0]).toMatchObject({ line: 3, message: expect.stringMatching(/^YAML syntax: /) });
  });

  it('a file that is not a map, and one without steps', () => {
    expect(problems('- open: /dev/iommu\n')[0]?.message).toContain('a scenario is a map');
    expect(problems('name: x\n')[0]?.message).toContain("missing required field 'steps'");
  });
});

describe('through the program', () => {
  const dir = tempDir();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['unknown step', 'steps:\n  - frobnicate: 1\n', 'bad.yaml:2:5: step 1: unknown step'],
    [
      'wrong field',
      'steps:\n  - open: /dev/iommu\n    sise: 3\n',
      "bad.yaml:3:5: step 1 (open): unknown field 'sise'",
    ],
    [
      'bad number',
      'steps:\n  - close: three\n',
      "bad.yaml:2:12: step 1 (close): close: bad number: 'three' is not",
    ],
    ['YAML syntax', 'steps:\n  - open: [\n', 'bad.yaml:3:1: YAML syntax:'],
  ])('%s: exit 2, file:line:col, nothing run, no stack trace', (_what, source, message) => {
    writeFileSync(join(dir, 'bad.yaml'), source);
    const r = cli(['run', 'bad.yaml'], dir);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain('nothing was run');
    expect(hasStackTrace(r.stderr)).toBe(false);
  });

  it('a missing file', () => {
    const r = cli(['run', 'nowhere.yaml'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("run: no file 'nowhere.yaml' and no shipped scenario of that name");
    expect(hasStackTrace(r.stderr)).toBe(false);
  });

  it('a step that fails at run time: exit 1 and the reason, the rest not run', () => {
    writeFileSync(
      join(dir, 'fails.yaml'),
      'steps:\n  - open: /dev/iommu\n  - ioas: a\n  - destroy: $a + 100\n  - ioas: b\n',
    );
    const r = cli(['run', 'fails.yaml'], dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      'FAILED: IOMMU_DESTROY returned ENOENT (there is no object 101), expected success',
    );
    expect(r.stdout).toContain(
      'Result: 4 steps: 2 passed, 1 failed, 0 skipped, 1 not run -> FAILED',
    );
    const keepGoing = cli(['run', 'fails.yaml', '--keep-going'], dir);
    expect(keepGoing.stdout).toContain('3 passed, 1 failed, 0 skipped, 0 not run');
  });
});
