/**
 * `snapshot`: what every /dev/iommu context of every process looks like
 * (IOAS areas, reserved and usable ranges, HWPTs with the aperture of their
 * domain), what is pinned and locked, and the counters of the fault path and
 * the IOMMUs.
 */
import type { ContextReport } from '@iommufd-sim/iommufd-core';
import type { Step } from '../scenario/types.js';
import { formatSize } from '../util/units.js';
import type { RunContext } from './context.js';
import type { StepOutcome } from './outcome.js';
import type { Aperture, ContextSnapshot, SnapshotRecord } from './records.js';

function apertures(ctx: RunContext, report: ContextReport): Aperture[] {
  const out: Aperture[] = [];
  for (const h of report.hwpts) {
    // A nested HWPT translates through its parent's aperture.
    const paging = h.parent === 0 ? h.id : h.parent;
    const user = report.devices.find((d) => d.attachments.some((a) => a.hwpt === h.id));
    const device = user === undefined ? undefined : ctx.host.device(user.name);
    const iommu = ctx.host.iommus.get(h.iommu);
    if (iommu === undefined) continue;
    const g = iommu.domainGeometry(device?.device);
    if (out.some((a) => a.hwpt === paging)) continue;
    out.push({
      hwpt: paging,
      iommu: h.iommu,
      start: BigInt(g.apertureStart),
      last: BigInt(g.apertureLast),
      pageSizes: g.pageSizes,
    });
  }
  return out;
}

/** Take a snapshot of the whole host as the processes see it. */
export function takeSnapshot(ctx: RunContext, step: number, label: string): SnapshotRecord {
  const contexts: ContextSnapshot[] = [];
  for (const ps of ctx.procs.values()) {
    for (const f of ps.traced.proc.openFiles()) {
      if (f.kind !== 'iommufd') continue;
      const report = ps.traced.proc.inspect(f.fd);
      if (report === null) continue;
      contexts.push({ process: ps.spec.name, fd: f.fd, report, apertures: apertures(ctx, report) });
    }
  }
  return {
    step,
    label,
    contexts,
    memory: [...ctx.procs.values()].map((ps) => ({
      process: ps.spec.name,
      status: ps.traced.proc.status(),
    })),
    hostPinnedPages: ctx.host.pinnedPages(),
    iopf: ctx.host.iopf.stats(),
    pendingDma: ctx.host.pendingDma().length,
    iommus: [...ctx.host.iommus.values()].map((i) => ({
      name: i.name,
      model: i.model,
      faults: i.faultLog.length,
      iotlb: i.iotlb.stats,
    })),
  };
}

/** The `snapshot` step. */
export function snapshotStep(step: Step, ctx: RunContext): StepOutcome {
  const label = ctx.text(step, 'snapshot') ?? '';
  const snap = takeSnapshot(ctx, step.number, label);
  ctx.snapshots.push(snap);
  const areas = snap.contexts.reduce(
    (n, c) => n + c.report.ioas.reduce((m, i) => m + i.areas.length, 0),
    0,
  );
  return {
    summary: `${snap.contexts.length} context(s), ${areas} area(s), ${formatSize(BigInt(snap.hostPinnedPages) * 4096n)} pinned`,
  };
}
