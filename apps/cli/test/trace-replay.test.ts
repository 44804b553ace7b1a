/** trace -> replay round trips, tampered traces, the strace-like text, bad trace files. */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, hasStackTrace, tempDir } from './helpers.js';

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function jsonTrace(scenario: string, file: string): Record<string, unknown>[] {
  const r = cli(['trace', scenario, '--format', 'json', '--out', file], dir);
  expect(r.code, r.stderr).toBe(0);
  return readFileSync(join(dir, file), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('trace and replay', () => {
  it.each(['default', 'userspace-driver-iopf', 'memlock-n-devices'])(
    '%s: the replay matches every answer',
    (name) => {
      const events = jsonTrace(name, `${name}.jsonl`);
      expect(events[0]).toMatchObject({
        op: 'trace',
        format: 'iommufd-sim-trace',
        version: 1,
        scenario: name,
      });
      const r = cli(['replay', `${name}.jsonl`], dir);
      expect(r.code, r.stdout).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^replay ${name}\\.jsonl: all \\d+ answers matched\\n$`));
    },
  );

  it('the JSON lines carry what replay needs and the decoded struct for tools', () => {
    const events = jsonTrace('default', 'default-2.jsonl');
    const map = events.find((e) => e.name === 'IOMMU_IOAS_MAP' && e.ret === 0);
    expect(map).toMatchObject({
      op: 'ioctl',
      pid: 1000,
      fd: 3,
      request: 0x3b85,
      step: 15,
      args: {
        size: 40,
        flags: 'IOMMU_IOAS_MAP_FIXED_IOVA|IOMMU_IOAS_MAP_WRITEABLE|IOMMU_IOAS_MAP_READABLE',
        length: '0x100000000',
        iova: '0x100000000',
      },
    });
    expect(typeof map?.arg).toBe('string');
    const eexist = events.find((e) => e.errno === 'EEXIST');
    expect(eexist).toMatchObject({
      ret: -17,
      reason: expect.stringContaining('overlaps the mapped area'),
    });
    const respond = events.find((e) => e.op === 'write' && Array.isArray(e.completed));
    expect(respond?.completed).toEqual([
      { id: 1, device: '0000:00:10.0', state: 'done', bytes: 2 },
    ]);
    expect(events.filter((e) => e.op === 'dma').length).toBe(6);
  });

  it('a tampered trace: every differing answer is listed with its line, exit 3', () => {
    const events = jsonTrace('default', 'tamper.jsonl');
    const ioasLine = events.findIndex((e) => e.name === 'IOMMU_IOAS_ALLOC');
    const dmaLine = events.findIndex((e) => e.op === 'dma' && e.status === 'done');
    const openLine = events.findIndex((e) => e.op === 'open');
    const out = String(events[ioasLine]?.out);
    events[ioasLine] = { ...events[ioasLine], out: `${out.slice(0, -8)}09000000` };
    events[dmaLine] = { ...events[dmaLine], status: 'fault' };
    events[openLine] = { ...events[openLine], ret: 7 };
    writeFileSync(join(dir, 'bad.jsonl'), `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const r = cli(['replay', 'bad.jsonl'], dir);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^replay bad\.jsonl: 3 of \d+ answers differ\n/);
    expect(r.stdout).toContain(
      `bad.jsonl:${openLine + 1} (step 1) open /dev/iommu: returned 3, the trace says 7`,
    );
    expect(r.stdout).toContain(
      `bad.jsonl:${ioasLine + 1} (step 7) IOMMU_IOAS_ALLOC: wrote back out_ioas_id=4 (the trace says 9)`,
    );
    expect(r.stdout).toContain(
      `bad.jsonl:${dmaLine + 1} (step 17) dma: 0000:01:00.0 ended done after 12 bytes, the trace says fault after 12`,
    );
    const json = JSON.parse(cli(['replay', 'bad.jsonl', '--format', 'json'], dir).stdout) as {
      differences: unknown[];
      exitCode: number;
    };
    expect([json.differences.length, json.exitCode]).toEqual([3, 3]);
  });

  it('an edited argument changes the answer: the map now overlaps', () => {
    const events = jsonTrace('qemu-vfio-pci', 'qemu.jsonl');
    const i = events.findIndex((e) => e.name === 'IOMMU_IOAS_MAP' && e.ret === 0 && e.step === 9);
    // iova 4 GiB -> 0 (bytes 32..39 of iommu_ioas_map): the second GiB of RAM now lands on the first.
    const arg = String(events[i]?.arg);
    events[i] = { ...events[i], arg: `${arg.slice(0, 64)}0000000000000000` };
    writeFileSync(
      join(dir, 'qemu-bad.jsonl'),
      `${events.map((e) => JSON.stringify(e)).join('\n')}\n`,
    );
    const r = cli(['replay', 'qemu-bad.jsonl'], dir);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain(
      `qemu-bad.jsonl:${i + 1} (step 9) IOMMU_IOAS_MAP: returned -1 EEXIST (`,
    );
  });

  it('bad trace files: exit 2 with the line', () => {
    writeFileSync(
      join(dir, 'junk.jsonl'),
      '{"op":"trace","format":"iommufd-sim-trace","version":1,"scenario":"x","host":{}}\n{not json\n',
    );
    const junk = cli(['replay', 'junk.jsonl'], dir);
    expect(junk.code).toBe(2);
    expect(junk.stderr).toMatch(/^junk\.jsonl:2: not JSON: /);
    writeFileSync(
      join(dir, 'headless.jsonl'),
      '{"op":"open","pid":1000,"path":"/dev/iommu","ret":3}\n',
    );
    expect(cli(['replay', 'headless.jsonl'], dir).stderr).toContain(
      'headless.jsonl:1: the first line must be the iommufd-sim-trace header',
    );
    const missing = cli(['replay', 'nothing.jsonl'], dir);
    expect([missing.code, hasStackTrace(missing.stderr)]).toEqual([2, false]);
  });
});

describe('the strace-like text', () => {
  const text = cli(['trace', 'userspace-driver-iopf'], dir).stdout;

  it('decodes struct fields, flags and enum names, outputs after =>, errno names with the reason', () => {
    expect(text).toContain(
      'ioctl(3, IOMMU_HWPT_ALLOC, {size=48, flags=IOMMU_HWPT_FAULT_ID_VALID, dev_id=1, pt_id=3, out_hwpt_id=0, data_type=IOMMU_HWPT_DATA_NONE, data_len=0, data_uptr=0x0, fault_id=4} => {out_hwpt_id=5}) = 0',
    );
    expect(text).toContain(
      'write(6, [{cookie=1, code=IOMMUFD_PAGE_RESP_SUCCESS}], 8) = -1 EINVAL (cookie 1 names no group that was read from this fault fd and is still unanswered)',
    );
  });

  it('fault records read from the fault fd, DMA and its completion', () => {
    expect(text).toMatch(
      /^read\(6, \[\{flags=IOMMU_PGFAULT_FLAGS_LAST_PAGE, dev_id=1, pasid=0, grpid=\d+, perm=IOMMU_PGFAULT_PERM_READ, addr=0x10000000, length=0, cookie=1\}\], 640\) = 40$/m,
    );
    expect(text).toContain(
      '--- DMA dma0 read 8192 bytes at iova 0x10000000: page-request (F_TRANSLATION), 0 bytes moved ---',
    );
    expect(text).toMatch(/^--- DMA #1 dma0 ends: done, 8192 bytes moved ---$/m);
    expect(text).toMatch(
      /^poll\(\[\{fd=6, events=POLLIN\|POLLOUT\}\], 1, 0\) = 1 \(\[\{fd=6, revents=POLLIN\|POLLOUT\|POLLRDNORM\}\]\)$/m,
    );
  });

  it('step markers name the scenario line', () => {
    expect(text).toMatch(/^# step 1: open \/dev\/iommu \(line \d+\)$/m);
  });
});
