/**
 * A snapshot of one /dev/iommu context for people and tools: its objects;
 * for each IOAS, the areas, reserved and allowed ranges, the ranges
 * IOAS_IOVA_RANGES would report and the HWPTs on it; every HWPT with its
 * flags; every device with what its RID and PASIDs are attached to; and
 * every vIOMMU with its vDEVICEs, vEVENTQs, HW queues and mmap region.
 */
import type { IommufdContext } from './context.js';
import type { DeviceObject } from './device.js';
import { HwptNestedObject, type HwptObject, HwptPagingObject } from './hw-pagetable.js';
import type { IoasObject } from './ioas.js';
import type { ViommuObject } from './viommu.js';

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
  /** The vIOMMU a nested HWPT was allocated on, else 0. */
  readonly viommu: number;
}

/** One vIOMMU with what hangs off it. */
export interface ViommuReport {
  readonly id: number;
  /** The driver's name ('selftest', 'arm-smmuv3', 'tegra241-cmdqv'). */
  readonly driver: string;
  readonly iommu: string;
  /** The NEST_PARENT HWPT it holds. */
  readonly parent: number;
  /** The VMID its guest invalidations are confined to. */
  readonly vmid: number;
  readonly vdevices: readonly {
    readonly id: number;
    readonly device: string;
    readonly virtId: bigint;
    /** Virtual ids by endpoint (index 0 is virt_id; more only with the multi-SID extension). */
    readonly endpoints: readonly { readonly index: number; readonly virtId: bigint }[];
  }[];
  readonly veventqs: readonly {
    readonly id: number;
    readonly type: number;
    readonly depth: number;
    /** Events waiting to be read. */
    readonly pending: number;
    readonly queued: number;
    readonly lost: number;
  }[];
  readonly hwQueues: readonly {
    readonly id: number;
    readonly index: number;
    readonly iova: bigint;
    readonly length: bigint;
  }[];
  /** Its mmap region on the iommufd, if any. */
  readonly mmap: {
    readonly offset: bigint;
    readonly length: number;
    readonly mappings: number;
  } | null;
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
  readonly viommus: readonly ViommuReport[];
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
    viommus: objects
      .filter((o): o is ViommuObject => o.type === 'VIOMMU' && o.state === 'live')
      .map(reportViommu),
  };
}

function reportViommu(v: ViommuObject): ViommuReport {
  return {
    id: v.id,
    driver: v.driver.name,
    iommu: v.driver.iommu.name,
    parent: v.hwpt.id,
    vmid: v.driver.vmid,
    vdevices: [...v.vdeviceObjects.values()]
      .filter((d) => d.state === 'live')
      .sort((a, b) => (a.virtId < b.virtId ? -1 : 1))
      .map((d) => ({
        id: d.id,
        device: d.idev.hostDevice.name,
        virtId: d.virtId,
        endpoints: d.entry.endpoints(),
      })),
    veventqs: [...v.veventqs.values()]
      .sort((a, b) => a.id - b.id)
      .map((q) => {
        const st = q.queue.stats();
        return {
          id: q.id,
          type: q.eventType,
          depth: q.queue.depth,
          pending: st.queued - st.eventsRead,
          queued: st.queued,
          lost: st.lost,
        };
      }),
    hwQueues: [...v.hwQueues.values()]
      .filter((q) => q.state === 'live')
      .sort((a, b) => a.index - b.index)
      .map((q) => ({ id: q.id, index: q.index, iova: q.baseIova, length: q.length })),
    mmap:
      v.mmapRegion === null
        ? null
        : {
            offset: v.mmapRegion.offset,
            length: v.mmapRegion.length,
            mappings: v.mmapRegion.mappings,
          },
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
    viommu: h instanceof HwptNestedObject ? (h.viommu?.id ?? 0) : 0,
  };
}

function ownerName(owner: object | null): string {
  if (owner === null) return 'test';
  if ('hostDevice' in owner)
    return `device ${(owner as { hostDevice: { name: string } }).hostDevice.name}`;
  return 'domain aperture';
}
