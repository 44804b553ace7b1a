/** What a run records beside the trace: step results, snapshots and page-table walks. */
import type { IotlbStats, WalkStep } from '@iommufd-sim/hw-models';
import type { ContextReport, IopfStats, MemoryStatus } from '@iommufd-sim/iommufd-core';

/** The IOVA window a HWPT's domain covers. */
export interface Aperture {
  readonly hwpt: number;
  readonly iommu: string;
  readonly start: bigint;
  readonly last: bigint;
  readonly pageSizes: readonly number[];
}

/** One /dev/iommu context at a snapshot. */
export interface ContextSnapshot {
  readonly process: string;
  readonly fd: number;
  readonly report: ContextReport;
  readonly apertures: readonly Aperture[];
}

/** Counters of one IOMMU at a snapshot. */
export interface IommuSnapshot {
  readonly name: string;
  readonly model: string;
  /** Faults in its log. */
  readonly faults: number;
  readonly iotlb: IotlbStats;
}

/** What a `snapshot` step saw. */
export interface SnapshotRecord {
  readonly step: number;
  readonly label: string;
  readonly contexts: readonly ContextSnapshot[];
  readonly memory: readonly { readonly process: string; readonly status: MemoryStatus }[];
  /** Pages pinned across the host. */
  readonly hostPinnedPages: number;
  /** The I/O page-fault path's counters. */
  readonly iopf: IopfStats;
  /** DMA transfers waiting for a page response. */
  readonly pendingDma: number;
  readonly iommus: readonly IommuSnapshot[];
}

/** What a `walk` step saw. */
export interface WalkRecord {
  readonly step: number;
  readonly device: string;
  readonly iommu: string;
  readonly iova: bigint;
  readonly pasid: number;
  /** The domain's kind, and which table was walked. */
  readonly table: string;
  readonly steps: readonly WalkStep[];
  readonly ok: boolean;
  readonly pa?: number;
  readonly pageSize?: number;
  readonly fault?: string;
}

/** How a step ended. */
export type StepStatus = 'passed' | 'failed' | 'skipped' | 'not-run';

/** One step's result. */
export interface StepResult {
  readonly number: number;
  readonly kind: string;
  readonly title: string;
  readonly line: number;
  /** 0 at the top level, 1 inside a group. */
  readonly depth: number;
  readonly status: StepStatus;
  /** The calls it made, in order (`open, VFIO_DEVICE_BIND_IOMMUFD`). */
  readonly calls: readonly string[];
  /** The main call's return value. */
  readonly ret?: number;
  /** Its errno name and the model's reason, when it failed. */
  readonly errno?: string;
  readonly reason?: string;
  /** The expectation, when it was not plain success. */
  readonly expected?: string;
  /** What came out, in a few words. */
  readonly summary: string;
  /** More lines for the report. */
  readonly details: readonly string[];
  /** Why it failed or was skipped. */
  readonly message?: string;
  readonly ms: number;
}
