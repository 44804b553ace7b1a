/** explain lists failing calls with the model's reasons; the SVGs are well-formed and show the ranges. */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runPictures } from '../src/svg/pictures.js';
import { cli, runShipped, tempDir, xmlProblem } from './helpers.js';

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('explain', () => {
  it('lists each failing call: the step, the call decoded, the errno and its meaning, the reason, expected or not', () => {
    const r = cli(['explain', 'memlock-n-devices'], dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^1 failing call in memlock-n-devices \(/);
    expect(r.stdout).toContain('step 22 "the fourth copy would pass the 56 MiB limit" (line ');
    expect(r.stdout).toContain(') - expected by the scenario');
    expect(r.stdout).toContain(
      '  ioctl(6, IOMMU_IOAS_MAP, {size=40, flags=IOMMU_IOAS_MAP_FIXED_IOVA|IOMMU_IOAS_MAP_WRITEABLE|IOMMU_IOAS_MAP_READABLE',
    );
    expect(r.stdout).toContain('  ENOMEM: ');
    expect(r.stdout).toContain('  why: pinning these pages would exceed RLIMIT_MEMLOCK');
  });

  it('marks a failure the scenario did not expect, and exits 1', () => {
    writeFileSync(join(dir, 'oops.yaml'), 'steps:\n  - open: /dev/iommu\n  - destroy: 42\n');
    const r = cli(['explain', 'oops.yaml'], dir);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('step 2 "destroy 42" (line 3) - NOT expected: the step failed');
    expect(r.stdout).toContain('  why: there is no object 42');
  });

  it('reads a trace too, and says so when nothing failed', () => {
    expect(cli(['trace', 'nested-vsmmu', '--format', 'json', '--out', 'v.jsonl'], dir).code).toBe(
      0,
    );
    const r = cli(['explain', 'v.jsonl', '--format', 'json'], dir);
    const doc = JSON.parse(r.stdout) as {
      failures: { errno: string; step: number; reason: string }[];
    };
    expect(doc.failures.map((f) => f.errno)).toEqual(['ENOENT', 'EIO']);
    expect(doc.failures[1]?.reason).toContain('opcode 0x46 is not a command a guest may issue');
    writeFileSync(join(dir, 'fine.yaml'), 'steps:\n  - open: /dev/iommu\n');
    expect(cli(['explain', 'fine.yaml'], dir).stdout).toBe('No call failed in fine (fine.yaml).\n');
  });
});

describe('pictures', () => {
  const result = runShipped('default');
  const pictures = runPictures(result);

  it('one IOVA map per IOAS at each snapshot and one picture per walk, all well-formed', () => {
    expect(pictures.map((p) => p.file)).toEqual([
      'step43-iova-qemu-fd3-ioas4.svg',
      'step20-walk-0000-01-00.0-0x100001000.svg',
      'step21-walk-accel0-0x100001000.svg',
    ]);
    for (const p of pictures) expect(xmlProblem(p.svg), p.file).toBeUndefined();
  });

  it('the IOVA map shows the areas, reserved ranges with owners, usable ranges and every aperture', () => {
    const svg = pictures[0]?.svg ?? '';
    for (const text of [
      'mapped areas: 0x100000000-0x1ffffffff (4 GiB) 4 GiB pinned',
      'reserved: 0x8000000-0x80fffff (1 MiB) device accel0',
      'reserved: 0xfee00000-0xfeefffff (1 MiB) device 0000:01:00.0',
      'usable (IOVA_RANGES): 0x8100000-0xfedfffff',
      'HWPT 8 (smmu0) aperture: 0x0-0xffffffffffff (256 TiB)',
      'HWPT 5 (vtd0) aperture: 0x0-0x7fffffffffff (128 TiB)',
      '>2^64<',
    ]) {
      expect(svg).toContain(text);
    }
  });

  it('a walk shows every level with its raw entry and the page reached', () => {
    const svg = pictures[1]?.svg ?? '';
    expect(svg).toContain('level 4 table @ 0x');
    expect(svg).toContain('leaf (2 MiB)');
    expect(svg).toContain(`pa 0x${(result.walks[0]?.pa ?? 0).toString(16)}`);
  });

  it('svg and --svg write the files', () => {
    const r = cli(['svg', 'nested-vsmmu', '--out', 'pics'], dir);
    expect(r.code).toBe(0);
    expect(readdirSync(join(dir, 'pics')).sort()).toEqual([
      'step28-walk-0000-00-10.0-0x10000.svg',
      'step36-iova-qemu-fd3-ioas2.svg',
    ]);
    const run = cli(['run', 'qemu-vfio-pci', '--svg', 'q'], dir);
    expect(run.stdout).toContain(`Pictures: 2 SVG files in ${join(dir, 'q')}`);
    const svg = readFileSync(join(dir, 'q', 'step19-iova-qemu-fd3-ioas2.svg'), 'utf8');
    expect(xmlProblem(svg)).toBeUndefined();
    expect(svg).toContain('mapped areas: 0x0-0x3fffffff (1 GiB)');
  });

  it('the well-formedness check itself catches broken XML', () => {
    expect(xmlProblem('<svg><g></svg>')).toBeDefined();
    expect(xmlProblem('<svg><text>a & b</text></svg>')).toBeDefined();
    expect(xmlProblem('<svg/><svg/>')).toBeDefined();
    expect(xmlProblem('<svg x="1"><g/></svg>')).toBeUndefined();
  });
});
