/**
 * The report a person reads after a run: the host, every step with its calls
 * and result (the errno and the model's reason when a call failed), the IOVA
 * map of each snapshot, pinned and locked memory, queue statistics and
 * timings.
 */
import type { HostConfig } from '@iommufd-sim/iommufd-core';
import type { ContextSnapshot, SnapshotRecord, StepResult } from '../run/records.js';
import type { RunResult } from '../run/runner.js';
import { hex } from '../util/hex.js';
import { formatMs, formatSize, padEnd } from '../util/units.js';

/** Wrap `text` at `width` columns, each line after the first indented by `indent`. */
export function wrap(text: string, width: number, indent: string): string[] {
  const words = text.split(/\s+/).filter((w) => w !== '');
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line !== '' && line.length + 1 + w.length > width) {
      lines.push(line);
      line = indent + w;
    } else line = line === '' ? w : `${line} ${w}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** One line per IOMMU and device of a host configuration. */
export function describeHost(host: HostConfig): string[] {
  const lines: string[] = [];
  for (const i of host.iommus ?? [{ name: 'mock0', model: 'mock' }]) {
    lines.push(`  IOMMU ${padEnd(i.name, 8)} ${i.model}`);
  }
  (host.devices ?? []).forEach((d, n) => {
    const pci =
      /^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/.test(d.name) ||
      d.rid !== undefined;
    const caps = [
      pci ? 'PCI' : 'platform',
      ...(d.streamIds === undefined
        ? []
        : [`stream ids ${d.streamIds.map((s) => hex(s)).join(',')}`]),
      ...(d.ats === true ? ['ATS'] : []),
      ...(d.pri === true ? ['PRI'] : []),
      ...(d.stall === true ? ['stalls on faults'] : []),
      ...((d.pasidBits ?? 0) > 0 ? [`${d.pasidBits}-bit PASID`] : []),
    ];
    lines.push(
      `  /dev/vfio/devices/vfio${n}  ${padEnd(d.name, 13)} behind ${padEnd(d.iommu, 6)} ${caps.join(', ')}`,
    );
  });
  if (host.selftest === true) lines.push('  selftest: IOMMU_TEST_CMD and mock devices');
  return lines;
}

/** Steps whose details are the point of the step. */
const ALWAYS_DETAILED = new Set(['read-faults', 'read-events', 'hw-info']);

function resultWord(r: StepResult): string {
  if (r.status === 'not-run') return '-';
  if (r.status === 'skipped') return 'skip';
  if (r.status === 'failed') return 'FAIL';
  if (r.errno !== undefined) return r.errno;
  return 'ok';
}

function uniqueCalls(calls: readonly string[]): string {
  const seen: string[] = [];
  for (const c of calls) if (!seen.includes(c)) seen.push(c);
  return seen.join(', ');
}

/** The step table. */
export function formatSteps(steps: readonly StepResult[], verbose: boolean): string[] {
  const lines: string[] = [];
  const width = 100;
  for (const r of steps) {
    const indent = '  '.repeat(r.depth);
    const calls = r.kind === 'group' ? 'group' : uniqueCalls(r.calls) || r.kind;
    const head = `${String(r.number).padStart(3)}  ${padEnd(resultWord(r), 6)} ${indent}${r.title}  [${calls}]`;
    const time = r.status === 'not-run' ? '' : formatMs(r.ms);
    lines.push(
      head.length + time.length + 2 <= width
        ? padEnd(head, width - time.length) + time
        : `${head}  ${time}`,
    );
    const body = ' '.repeat(12) + indent;
    const notes: string[] = [];
    if (r.status === 'failed' && r.message !== undefined) notes.push(`FAILED: ${r.message}`);
    else if (r.status === 'skipped' && r.message !== undefined) notes.push(`skipped: ${r.message}`);
    else if (r.status === 'passed' && r.errno !== undefined) {
      notes.push(`${r.errno} as expected: ${r.reason ?? ''}`);
    } else if (r.status === 'not-run' && verbose && r.message !== undefined) notes.push(r.message);
    if (r.summary !== '' && r.status !== 'not-run') notes.push(r.summary);
    if (verbose || ALWAYS_DETAILED.has(r.kind)) notes.push(...r.details);
    for (const n of notes)
      lines.push(...wrap(n, width, `${body}  `).map((l, i) => (i === 0 ? body + l : l)));
  }
  return lines;
}

function range(start: bigint, last: bigint): string {
  return `${hex(start)}-${hex(last)}`;
}

function protText(prot: number): string {
  return `${prot & 1 ? 'R' : '-'}${prot & 2 ? 'W' : '-'}`;
}

/** One context's IOVA map. */
export function formatContext(c: ContextSnapshot): string[] {
  const lines: string[] = [];
  const { report } = c;
  lines.push(`  process ${c.process}, /dev/iommu fd ${c.fd} (accounting: ${report.accountMode})`);
  for (const ioas of report.ioas) {
    lines.push(
      `    IOAS ${ioas.id}: IOVA alignment ${formatSize(ioas.iovaAlignment)}, huge pages ${ioas.hugePages ? 'on' : 'off'}`,
    );
    const rows: [string, string, string, string][] = [];
    for (const a of ioas.areas) {
      rows.push([
        'area',
        range(a.iova, a.last),
        formatSize(a.last - a.iova + 1n),
        `${protText(a.prot)}${a.pinned ? ', pinned' : ''}${a.source === 'file' ? ', memfd' : ''}`,
      ]);
    }
    for (const r of ioas.reserved) {
      rows.push(['reserved', range(r.start, r.last), formatSize(r.last - r.start + 1n), r.owner]);
    }
    for (const r of ioas.allowed)
      rows.push(['allowed', range(r.start, r.last), formatSize(r.last - r.start + 1n), '']);
    for (const r of ioas.iovaRanges)
      rows.push(['usable', range(r.start, r.last), formatSize(r.last - r.start + 1n), '']);
    const w1 = Math.max(...rows.map((r) => r[1].length), 10);
    for (const [kind, span, size, note] of rows) {
      lines.push(
        `      ${padEnd(kind, 9)} ${padEnd(span, w1)}  ${padEnd(size, 9)} ${note}`.trimEnd(),
      );
    }
    for (const h of report.hwpts.filter((x) => x.ioas === ioas.id)) {
      const flags: string[] = [];
      if (h.auto) flags.push('automatic');
      if (h.nestParent) flags.push('NEST_PARENT');
      if (h.dirtyCapable) flags.push(h.dirtyTracking ? 'dirty tracking on' : 'dirty-capable');
      if (h.pasidCompat) flags.push('PASID');
      if (h.fault !== 0) flags.push(`faults to FAULT ${h.fault}`);
      if (h.parent !== 0) flags.push(`nested on ${h.parent}`);
      if (h.viommu !== 0) flags.push(`on vIOMMU ${h.viommu}`);
      const ap = c.apertures.find((a) => a.hwpt === (h.parent === 0 ? h.id : h.parent));
      const users = report.devices
        .filter((d) => d.attachments.some((a) => a.hwpt === h.id))
        .map((d) => d.name);
      lines.push(
        `      HWPT ${h.id} ${h.type} on ${h.iommu}${flags.length > 0 ? ` (${flags.join(', ')})` : ''}${
          ap === undefined
            ? ''
            : `, aperture ${range(ap.start, ap.last)}, pages ${ap.pageSizes.map((p) => formatSize(p)).join('/')}`
        }${users.length > 0 ? `; devices ${users.join(', ')}` : ''}`,
      );
    }
  }
  for (const v of report.viommus) {
    const parts = [`parent HWPT ${v.parent}, VMID ${v.vmid}`];
    for (const d of v.vdevices) parts.push(`vDEVICE ${d.id} ${d.device} virt_id ${hex(d.virtId)}`);
    for (const q of v.veventqs) {
      parts.push(
        `vEVENTQ ${q.id} depth ${q.depth}: ${q.queued} queued, ${q.pending} waiting, ${q.lost} lost`,
      );
    }
    for (const q of v.hwQueues)
      parts.push(`HW queue ${q.id} [${q.index}] at ${hex(q.iova)} (${formatSize(q.length)})`);
    lines.push(`    vIOMMU ${v.id} (${v.driver} on ${v.iommu}): ${parts.join('; ')}`);
  }
  const shown = [
    'IOAS',
    'HWPT_PAGING',
    'HWPT_NESTED',
    'DEVICE',
    'VIOMMU',
    'VDEVICE',
    'VEVENTQ',
    'HW_QUEUE',
  ];
  const others = report.objects.filter((o) => !shown.includes(o.type));
  if (others.length > 0) {
    lines.push(`    other objects: ${others.map((o) => `${o.type} ${o.id}`).join(', ')}`);
  }
  for (const d of report.devices) {
    const at = d.attachments.map(
      (a) => `${a.pasid === 0 ? 'RID' : `PASID ${a.pasid}`} -> HWPT ${a.hwpt}`,
    );
    lines.push(
      `    device ${d.id} ${d.name} on ${d.iommu}: ${at.length > 0 ? at.join(', ') : 'blocked'}`,
    );
  }
  return lines;
}

function formatMemory(memory: SnapshotRecord['memory'], hostPinned: number): string[] {
  const lines = memory.map(
    ({ process, status: s }) =>
      `  ${process}: pinned (VmPin) ${formatSize(s.pinnedBytes)}, locked (VmLck) ${formatSize(s.lockedBytes)}, its user's locked_vm ${formatSize(s.userLockedBytes)} of RLIMIT_MEMLOCK ${formatSize(s.memlockLimitBytes)}${s.ipcLock ? ' (CAP_IPC_LOCK: pins not charged)' : ''}`,
  );
  lines.push(`  host: ${hostPinned} pages pinned (${formatSize(BigInt(hostPinned) * 4096n)})`);
  return lines;
}

/** The queue and cache counters of a snapshot. */
export function formatQueues(s: SnapshotRecord): string[] {
  const f = s.iopf;
  const lines = [
    `  I/O page faults: ${f.reported} reported by the IOMMUs, ${f.groupsDelivered} group(s) delivered to fault queues, ${f.answeredWithoutHandler} answered INVALID without a handler; responses ${f.completed.success} SUCCESS, ${f.completed.invalid} INVALID, ${f.completed.failure} FAILURE; ${s.pendingDma} DMA transfer(s) waiting`,
  ];
  for (const i of s.iommus) {
    lines.push(
      `  ${i.name} (${i.model}): ${i.faults} fault(s) logged; IOTLB ${i.iotlb.hits} hits, ${i.iotlb.misses} misses, ${i.iotlb.fills} fills, ${i.iotlb.invalidated} invalidated`,
    );
  }
  return lines;
}

/** A whole snapshot. */
export function formatSnapshot(s: SnapshotRecord): string[] {
  const lines = [`Snapshot at step ${s.step}: ${s.label}`, '', 'IOVA map'];
  if (s.contexts.length === 0) lines.push('  (no /dev/iommu open)');
  for (const c of s.contexts) lines.push(...formatContext(c));
  lines.push('', 'Pinned and locked memory', ...formatMemory(s.memory, s.hostPinnedPages));
  lines.push('', 'Queues and caches', ...formatQueues(s));
  return lines;
}

/** The full text report of a run. */
export function formatRunReport(result: RunResult, options: { verbose?: boolean } = {}): string {
  const { scenario: sc } = result;
  const out: string[] = [];
  out.push(`iommufd-sim: ${sc.name} (${sc.file})`);
  if (sc.description !== '') out.push(...wrap(sc.description, 100, ''));
  out.push('', 'Host', ...describeHost(sc.host));
  for (const p of result.trace.events) {
    if (p.op !== 'process') continue;
    const o = p.options;
    out.push(
      `  process ${p.name} (pid ${p.pid}): ${o.privileged ? 'privileged' : 'unprivileged'}, uid ${o.uid}, RLIMIT_MEMLOCK ${formatSize(BigInt(o.memlockLimitBytes))}${o.ipcLock ? ', CAP_IPC_LOCK' : ''}`,
    );
  }
  out.push('', 'Steps', '  #  result step [calls]');
  out.push(...formatSteps(result.steps, options.verbose === true));
  for (const s of result.snapshots) out.push('', ...formatSnapshot(s));
  if (result.walks.length > 0) {
    out.push('', 'Page-table walks');
    for (const w of result.walks) {
      out.push(
        `  step ${w.step}: ${w.device} at ${hex(w.iova)}${w.pasid === 0 ? '' : ` PASID ${w.pasid}`}, ${w.iommu} ${w.table}: ${
          w.ok
            ? `pa ${hex(w.pa ?? 0)} in a ${formatSize(w.pageSize ?? 0)} page`
            : (w.fault ?? 'fault')
        }`,
      );
      for (const st of w.steps) {
        out.push(
          `    level ${st.level}: table ${hex(st.tableAddress)}[${st.index}] = ${hex(st.raw)} (${st.kind}${st.pageSize === undefined ? '' : ` ${formatSize(st.pageSize)}`})`,
        );
      }
    }
  }
  out.push('', 'At the end', ...formatMemory(result.final.memory, result.final.hostPinnedPages));
  if (result.final.internalErrors > 0) {
    out.push(`  MODEL BUG: ${result.final.internalErrors} exception(s) caught inside the model`);
  }
  const slow = [...result.steps]
    .filter((r) => r.kind !== 'group' && r.status !== 'not-run')
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 3)
    .map((r) => `step ${r.number} ${r.title} ${formatMs(r.ms)}`);
  out.push(
    '',
    'Timing',
    `  total ${formatMs(result.totalMs)} (building the host ${formatMs(result.setupMs)}); slowest: ${slow.join('; ')}`,
  );
  const c = result.counts;
  out.push(
    '',
    `Result: ${c.passed + c.failed + c.skipped + c.notRun} steps: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped, ${c.notRun} not run -> ${
      result.exitCode === 0 ? 'OK' : result.exitCode === 1 ? 'FAILED' : 'MODEL OR PROGRAM BUG'
    }`,
  );
  return `${out.join('\n')}\n`;
}
