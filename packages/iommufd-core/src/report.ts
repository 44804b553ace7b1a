/**
 * A snapshot of one /dev/iommu context for people and tools: its objects;
 * for each IOAS, the areas, reserved and allowed ranges, the ranges
 * IOAS_IOVA_RANGES would report and the HWPTs on it; every HWPT with its
 * flags; and every device with what its RID and PASIDs are attached to.
 */
import type { IommufdContext } from './context.js';
import type { DeviceObject } from './device.js';
import { HwptNestedObject, type HwptObject, HwptPagingObject } from './hw-pagetable.js';
import type { IoasObject } from './ioas.js';

/** One object. */
export interface ObjectReport {
  readonly id: number;
  readonly type: string;
  /** Holders besides the table. */
  readonly users: number;
  readonly state: string;
}

/** One IOAS. */
export interface IoasReport {
  readonly id: number;
  readonly iovaAlignment: number;
  readonly hugePages: boolean;
  readonly areas: readonly {
    readonly iova: bigint;
    readonly last: bigint;
    readonly prot: number;
    /** Pages of it pinned for domains. */
    readonly pinned: boolean;
    readonly source: 'user' | 'file';
  }[];
  readonly reserved: readonly {
    readonly start: bigint;
    readonly last: bigint;
    readonly owner: string;
  }[];
  readonly allowed: readonly { readonly start: bigint; readonly last: bigint }[];
  readonly iovaRanges: readonly { readonly start: bigint; readonly last: bigint }[];
  readonly hwpts: readonly {
    readonly id: number;
    readonly auto: boolean;
    readonly iommu: string;
  }[];
}

/** One HWPT (paging or nested). */
export interface HwptReport {
  readonly id: number;
  readonly type: 'HWPT_PAGING' | 'HWPT_NESTED';
  /** The IOMMU whose domain it is. */
  readonly iommu: string;
  /** The IOAS it maps (a nested HWPT: its parent's). */
  readonly ioas: number;
  /** A nested HWPT's parent HWPT, else 0. */
  readonly parent: number;
  /** Made by attaching a device to an IOAS. */
  readonly auto: boolean;
  readonly nestParent: boolean;
  /** Allocated with IOMMU_HWPT_ALLOC_PASID. */
  readonly pasidCompat: boolean;
  /** Allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING. */
  readonly dirtyCapable: boolean;
  /** Dirty tracking is on. */
  readonly dirtyTracking: boolean;
  /** The FAULT object its page requests go to, else 0. */
  readonly fault: number;
}

/** One bound device. */
export interface DeviceReport {
  readonly id: number;
  readonly name: string;
  readonly iommu: string;
  /** What its RID (pasid 0) and each PASID are attached to, by pasid. */
  readonly attachments: readonly { readonly pasid: number; readonly hwpt: number }[];
}

/** A context. */
export interface ContextReport {
  readonly accountMode: string;
  readonly objects: readonly ObjectReport[];
  readonly ioas: readonly IoasReport[];
  readonly hwpts: readonly HwptReport[];
  readonly devices: readonly DeviceReport[];
}

/** Snapshot `ctx`. */
export function reportContext(ctx: IommufdContext): ContextReport {
  const objects = ctx.objects.all();
  return {
    accountMode: ctx.accountMode,
    objects: objects.map((o) => ({ id: o.id, type: o.type, users: o.users - 1, state: o.state })),
    ioas: objects
      .filter((o): o is IoasObject => o.type === 'IOAS' && o.state === 'live')
      .map((ioas) => ({
        id: ioas.id,
        iovaAlignment: ioas.iopt.iovaAlignment,
        hugePages: !ioas.iopt.disableLargePages,
        areas: [...ioas.iopt.areas()].map((a) => ({
          iova: a.iova,
          last: a.last,
          prot: a.prot,
          pinned: a.filled,
          source: a.pages?.source.kind ?? 'user',
        })),
        reserved: ioas.iopt.reserved.map((r) => ({
          start: r.start,
          last: r.last,
          owner: ownerName(r.owner),
        })),
        allowed: ioas.iopt.allowedRanges.map((r) => ({ start: r.start, last: r.last })),
        iovaRanges: ioas.iopt.iovaRanges(),
        hwpts: ioas.hwpts.map((h) => ({
          id: h.id,
          auto: h.auto,
          iommu: h.domain?.iommu.name ?? '',
        })),
      })),
    hwpts: objects
      .filter(
        (o): o is HwptObject =>
          (o instanceof HwptPagingObject || o instanceof HwptNestedObject) && o.state === 'live',
      )
      .map(reportHwpt),
    devices: objects
      .filter((o): o is DeviceObject => o.type === 'DEVICE' && o.state === 'live')
      .map((d) => ({
        id: d.id,
        name: d.hostDevice.name,
        iommu: d.hostDevice.iommu.name,
        attachments: [...d.attachments]
          .sort((a, b) => a[0] - b[0])
          .map(([pasid, hwpt]) => ({ pasid, hwpt: hwpt.id })),
      })),
  };
}

function reportHwpt(h: HwptObject): HwptReport {
  const paging = h.paging;
  return {
    id: h.id,
    type: h.type,
    iommu: h.domain?.iommu.name ?? '',
    ioas: paging.ioas.id,
    parent: h instanceof HwptNestedObject ? h.parent.id : 0,
    auto: h instanceof HwptPagingObject && h.auto,
    nestParent: h instanceof HwptPagingObject && h.nestParent,
    pasidCompat: h.pasidCompat,
    dirtyCapable: h.domain?.dirtyCapable ?? false,
    dirtyTracking: h.domain?.dirtyTracking ?? false,
    fault: h.fault?.id ?? 0,
  };
}

function ownerName(owner: object | null): string {
  if (owner === null) return 'test';
  if ('hostDevice' in owner)
    return `device ${(owner as { hostDevice: { name: string } }).hostDevice.name}`;
  return 'domain aperture';
}
