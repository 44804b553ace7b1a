/**
 * A snapshot of one /dev/iommu context for people and tools: its objects
 * and, for each IOAS, the areas, reserved and allowed ranges, the ranges
 * IOAS_IOVA_RANGES would report and the HWPTs on it.
 */
import type { IommufdContext } from './context.js';
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

/** A context. */
export interface ContextReport {
  readonly accountMode: string;
  readonly objects: readonly ObjectReport[];
  readonly ioas: readonly IoasReport[];
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
  };
}

function ownerName(owner: object | null): string {
  if (owner === null) return 'test';
  if ('hostDevice' in owner)
    return `device ${(owner as { hostDevice: { name: string } }).hostDevice.name}`;
  return 'domain aperture';
}
