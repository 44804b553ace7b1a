/**
 * The program end to end: real spawns of the built binary (exit codes,
 * stdout/stderr, no stack traces), and every shipped scenario run with its
 * key results checked.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../src/run/runner.js';
import { shippedScenarioNames } from '../src/scenario/shipped.js';
import { BIN, cli, hasStackTrace, PACKAGE_DIR, runShipped, spawnCli } from './helpers.js';

function step(result: RunResult, title: string) {
  const s = result.steps.find((r) => r.title === title);
  if (s === undefined) throw new Error(`no step titled '${title}'`);
  return s;
}

describe('the built program (spawned)', () => {
  it('is built with a shebang', () => {
    expect(existsSync(BIN)).toBe(true);
  });

  it('runs the default scenario with no arguments: exit 0, every step passed', () => {
    const r = spawnCli([]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Result: 58 steps: 58 passed, 0 failed, 0 skipped, 0 not run -> OK');
    expect(r.stdout).toContain(
      '/dev/vfio/devices/vfio2  accel0        behind smmu0  platform, stream ids 0x40, stalls on faults',
    );
    expect(r.stdout).toMatch(/map 4 GiB of guest RAM at GPA 4 GiB {2}\[mmap, IOMMU_IOAS_MAP\]/);
    expect(r.stdout).toContain(
      'EEXIST as expected: [0x100000000, 0x1001fffff] overlaps the mapped area',
    );
    expect(r.stdout).toContain('1024 dirty 4 KiB pages (4 MiB)');
    expect(r.stdout).toContain('DMA #1 of 0000:00:10.0 done (2 B)');
    expect(r.stdout).toContain('host: 1048577 pages pinned (4 GiB)');
    expect(r.stdout).toMatch(/Timing\n {2}total [\d.]+ (ms|s)/);
    expect(r.stderr).toBe('');
  });

  it('prints JSON with --format json that parses, and progress on stderr only', () => {
    const r = spawnCli(['run', 'qemu-vfio-pci', '--format', 'json', '--progress']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as {
      exitCode: number;
      counts: { passed: number };
      steps: unknown[];
    };
    expect(doc.exitCode).toBe(0);
    expect(doc.counts.passed).toBe(26);
    expect(r.stderr).toMatch(/^\[0\/26\] open \/dev\/iommu$/m);
  });

  it('a user error is one message and exit 2, never a stack trace', () => {
    const r = spawnCli(['run', 'no-such-file.yaml']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      "run: no file 'no-such-file.yaml' and no shipped scenario of that name",
    );
    expect(hasStackTrace(r.stderr)).toBe(false);
  });

  it('--version, through the committed launcher npm links as the bin', () => {
    const manifest = JSON.parse(readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8')) as {
      bin: Record<string, string>;
    };
    expect(manifest.bin).toEqual({ 'iommufd-sim': './bin/iommufd-sim.js' });
    const r = spawnSync(
      process.execPath,
      [join(PACKAGE_DIR, 'bin', 'iommufd-sim.js'), '--version'],
      {
        encoding: 'utf8',
      },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^iommufd-sim \d+\.\d+\.\d+ \(Linux 6\.17 iommufd model\)/);
    expect(readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });
});

describe('help', () => {
  it.each(['default', 'run', 'trace', 'replay', 'explain', 'svg', 'scenarios', 'steps', 'help'])(
    '%s --help prints its usage and exits 0',
    (command) => {
      const r = cli([command, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: iommufd-sim /);
    },
  );

  it('the overview lists every command and the exit codes', () => {
    const r = cli(['--help']);
    for (const c of ['run FILE', 'trace', 'replay TRACE', 'explain', 'svg', 'scenarios', 'steps']) {
      expect(r.stdout).toContain(`iommufd-sim ${c}`);
    }
    expect(r.stdout).toContain('3  replay: some answers differ from the trace');
    expect(cli(['help', 'replay']).stdout).toContain('Usage: iommufd-sim replay');
  });

  it('bad usage exits 2 with a pointer to --help', () => {
    const r = cli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
    expect(cli(['run']).stderr).toContain('run: which scenario?');
    const bad = cli(['trace', '--format', 'xml']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--format is text or json');
    expect(cli(['run', 'qemu-vfio-pci', '--nope']).stderr).toContain("unknown option '--nope'");
  });
});

describe('every shipped scenario passes', () => {
  it('the list has the default first and the five examples', () => {
    expect(shippedScenarioNames()).toEqual([
      'default',
      'dirty-tracking-migration',
      'memlock-n-devices',
      'nested-vsmmu',
      'qemu-vfio-pci',
      'userspace-driver-iopf',
    ]);
    const r = cli(['scenarios', '--format', 'json']);
    const list = JSON.parse(r.stdout) as { name: string; steps: number }[];
    expect(list.find((s) => s.name === 'nested-vsmmu')?.steps).toBe(49);
  });

  it('qemu-vfio-pci: automatic HWPT, two usable ranges, EINVAL over the interrupt window, 2 GiB charged', () => {
    const r = runShipped('qemu-vfio-pci');
    expect(r.exitCode).toBe(0);
    expect(
      step(r, 'attach to the IOAS - the kernel allocates a paging HWPT for the VT-d').summary,
    ).toBe('RID on HWPT 3 (the automatic HWPT of IOAS 2)');
    expect(step(r, 'which IOVAs may QEMU use? (the interrupt window is a hole)').summary).toContain(
      'num_iovas=2',
    );
    const bad = step(r, 'a region over the interrupt window is refused');
    expect([bad.status, bad.errno]).toEqual(['passed', 'EINVAL']);
    expect(bad.reason).toBe(
      '[0xfee00000, 0xfeefffff] touches the reserved range [0xfee00000, 0xfeefffff]',
    );
    expect(r.snapshots[0]?.memory[0]?.status.userLockedBytes).toBe(2n << 30n);
    expect(r.final.hostPinnedPages).toBe(0);
  });

  it('nested-vsmmu: DMA through the guest stage 1, stale until TLBI, EIO for CMD_SYNC, a vEVENT with the vSID', () => {
    const r = runShipped('nested-vsmmu');
    expect(r.exitCode, r.steps.find((s) => s.status === 'failed')?.message).toBe(0);
    expect(step(r, 'GVA 0x40000000 -> GPA 0x10000 -> host memory').summary).toContain('"page A"');
    expect(step(r, 'stale - the IOTLB still translates to page A').summary).toContain('"page A"');
    expect(step(r, 'now the DMA sees page B').summary).toContain('"page B"');
    expect(
      step(r, "CMD_SYNC is not the guest's to send (EIO, entry_num says how far it got)").errno,
    ).toBe('EIO');
    const events = step(r, "the guest's F_TRANSLATION on the vEVENTQ");
    expect(events.summary).toBe('1 event');
    expect(events.details[0]).toMatch(/^\{flags=0, sequence=0\} iommu_vevent_arm_smmuv3 \{evt=\[/);
    expect(step(r, 'attaching through the vIOMMU needs a vDEVICE first').errno).toBe('ENOENT');
    const ctx = r.snapshots[0]?.contexts[0];
    expect(ctx?.report.viommus[0]?.vdevices[0]?.virtId).toBe(0x22n);
  });

  it('userspace-driver-iopf: two stalls answered page by page, INVALID aborts, PRI on PASID 5', () => {
    const r = runShipped('userspace-driver-iopf');
    expect(r.exitCode, r.steps.find((s) => s.status === 'failed')?.message).toBe(0);
    expect(step(r, 'SUCCESS - the whole 8 KiB transfer completes').summary).toContain(
      'done (8 KiB)',
    );
    expect(step(r, 'a cookie answers one group only').errno).toBe('EINVAL');
    const pasid = r.steps.find(
      (s) => s.kind === 'read-faults' && s.details[0]?.includes('pasid=5'),
    );
    expect(pasid?.details[0]).toContain(
      'flags=IOMMU_PGFAULT_FLAGS_PASID_VALID|IOMMU_PGFAULT_FLAGS_LAST_PAGE',
    );
    const iopf = r.snapshots[0]?.iopf;
    expect(iopf).toMatchObject({
      reported: 4,
      groupsDelivered: 4,
      completed: { success: 3, invalid: 1 },
    });
  });

  it('dirty-tracking-migration: exact 4 KiB bitmaps, NO_CLEAR keeps the bit, EOPNOTSUPP without the flag', () => {
    const r = runShipped('dirty-tracking-migration');
    expect(r.exitCode, r.steps.find((s) => s.status === 'failed')?.message).toBe(0);
    expect(step(r, 'round 1 - exactly the written pages').summary).toBe(
      '4 dirty 4 KiB pages (16 KiB): 0x100003000-0x100003fff, 0x100028000-0x100029fff, 0x103c00000-0x103c00fff',
    );
    expect(step(r, 'a HWPT allocated without DIRTY_TRACKING cannot track').errno).toBe(
      'EOPNOTSUPP',
    );
  });

  it('memlock-n-devices: three charges, ENOMEM for the fourth, one charge when shared', () => {
    const r = runShipped('memlock-n-devices');
    expect(r.exitCode, r.steps.find((s) => s.status === 'failed')?.message).toBe(0);
    const fourth = step(r, 'the fourth copy would pass the 56 MiB limit');
    expect([fourth.errno, fourth.reason]).toEqual([
      'ENOMEM',
      expect.stringContaining('RLIMIT_MEMLOCK'),
    ]);
    expect(r.snapshots.map((s) => s.memory[0]?.status.userLockedBytes)).toEqual([
      48n << 20n,
      16n << 20n,
    ]);
  });
});

describe('a group with skip-on', () => {
  it('a vIOMMU the kernel lacks (VT-d has none in 6.17) skips the rest of its group with the reason, and the run goes on', async () => {
    const { parseScenario } = await import('../src/scenario/parse.js');
    const { runScenario } = await import('../src/run/runner.js');
    const scenario = parseScenario(
      `host:
  iommus: [{ name: vtd0, model: vtd }]
  devices: [{ name: "0000:01:00.0", iommu: vtd0 }]
steps:
  - open: /dev/iommu
  - bind: "0000:01:00.0"
    as: dev
  - ioas: gpa
  - hwpt: s2
    device: dev
    pt: $gpa
    flags: [NEST_PARENT]
  - group: vIOMMU when available
    skip-on: [EOPNOTSUPP]
    steps:
      - viommu: v
        device: dev
        hwpt: $s2
      - vdevice: vd
        viommu: $v
        device: dev
        virt-id: 1
  - destroy: $s2
`,
      'skip.yaml',
    );
    const r = runScenario(scenario);
    expect(r.exitCode).toBe(0);
    expect(r.steps.map((s) => [s.kind, s.status])).toEqual([
      ['open', 'passed'],
      ['bind', 'passed'],
      ['ioas', 'passed'],
      ['hwpt', 'passed'],
      ['group', 'skipped'],
      ['viommu', 'skipped'],
      ['vdevice', 'skipped'],
      ['destroy', 'passed'],
    ]);
    expect(r.steps[4]?.message).toMatch(/^EOPNOTSUPP: .+ -- the rest of the group is skipped$/);
    expect(r.counts).toEqual({ passed: 5, failed: 0, skipped: 2, notRun: 0 });
  });
});
