/**
 * The one interface every page-table format implements, and the small types
 * it speaks in.
 *
 * Addresses in this interface are plain numbers (byte addresses below 2^53),
 * so walks and maps never allocate a bigint. A 64-bit table entry is read and
 * written as two 32-bit little-endian words of a frame; `WalkStep.raw` is the
 * only bigint, for reports.
 */
import type { FrameAllocator } from '../memory/frame-allocator.js';
import type { TableMemory } from '../memory/physical-memory.js';

// ---- mapping permissions (the kernel's IOMMU_* prot bits) --------------------

/** Reads allowed (the kernel's IOMMU_READ). */
export const IOMMU_READ = 1;
/** Writes allowed (IOMMU_WRITE). */
export const IOMMU_WRITE = 2;
/** Coherent, cacheable mapping (IOMMU_CACHE). */
export const IOMMU_CACHE = 4;
/** No instruction fetch (IOMMU_NOEXEC). */
export const IOMMU_NOEXEC = 8;
/** Device memory (IOMMU_MMIO). */
export const IOMMU_MMIO = 16;
/** Privileged-only (IOMMU_PRIV). */
export const IOMMU_PRIV = 32;

// ---- what a DMA access asks for ------------------------------------------------

/** The access reads. */
export const ACCESS_READ = 1;
/** The access writes. */
export const ACCESS_WRITE = 2;
/** The access is an instruction fetch. */
export const ACCESS_EXEC = 4;
/** The access is privileged (supervisor). */
export const ACCESS_PRIV = 8;
/**
 * Update accessed/dirty state as the hardware would (only where the format
 * has such bits and the configuration enables them; the caller decides).
 */
export const ACCESS_UPDATE_AD = 16;

/** The formats this package models. */
export type PageTableFormatName =
  | 'vtd-ss'
  | 'x86-64'
  | 'arm-lpae-s1'
  | 'arm-lpae-s2'
  | 'amd-v1'
  | 'mock';

/** Why a translation failed. */
export type TranslationFault =
  /** An entry on the path is not present / invalid. */
  | 'not-present'
  /** The entries do not grant the access. */
  | 'permission'
  /** The input address is beyond the table's input width or the output beyond the output width. */
  | 'address-size'
  /** An entry has reserved bits set or an encoding the format forbids. */
  | 'reserved-bits'
  /** Stage 1 ARM: the access flag is clear and hardware AF update is off. */
  | 'access-flag'
  /** x86-64 first stage: the address is not canonical. */
  | 'non-canonical'
  /** A table could not be read (for nested walks: stage 2 did not translate a table address). */
  | 'table-fetch';

/** The outcome of {@link PageTable.translate}; reused across calls when passed in. */
export interface Translation {
  /** True when the address translated and the access is allowed. */
  ok: boolean;
  /** The output address (valid when ok). */
  pa: number;
  /** Size of the leaf that mapped the address (valid when a leaf was reached). */
  pageSize: number;
  /** IOMMU_READ / IOMMU_WRITE (and IOMMU_PRIV / IOMMU_NOEXEC where the format has them) granted by the path. */
  prot: number;
  /** Level of the leaf, or of the entry that faulted (format numbering). */
  level: number;
  /** Why it failed, or null. */
  fault: TranslationFault | null;
  /**
   * For 'table-fetch': the address of the table that could not be read (for a
   * nested walk, the stage-1 table address that stage 2 did not translate).
   */
  faultAddress: number;
}

/** A fresh {@link Translation} to pass to repeated translate calls. */
export function newTranslation(): Translation {
  return { ok: false, pa: 0, pageSize: 0, prot: 0, level: 0, fault: null, faultAddress: 0 };
}

/** One entry read during a walk, for reports. */
export interface WalkStep {
  /** Level in the format's own numbering (VT-d/x86/AMD: 1 = leaf table; ARM: 0..3). */
  readonly level: number;
  /** Physical address of the table holding the entry. */
  readonly tableAddress: number;
  /** Index of the entry in that table. */
  readonly index: number;
  /** Physical address of the entry. */
  readonly entryAddress: number;
  /** The raw 64-bit entry. */
  readonly raw: bigint;
  /** What the entry is. */
  readonly kind: 'table' | 'leaf' | 'invalid';
  /** Leaf size in bytes (leaves only). */
  readonly pageSize?: number;
}

/** One leaf mapping, as listed by {@link PageTable.leaves}. */
export interface LeafMapping {
  readonly iova: number;
  readonly pa: number;
  readonly size: number;
  readonly prot: number;
}

/**
 * A dirty bitmap as the kernel's iova_bitmap lays it out: bit i (byte i>>3,
 * bit i&7, so the same bytes as little-endian u64 words) is the page of
 * `pageSize` bytes at `baseIova + i * pageSize`.
 */
export interface DirtyBitmap {
  readonly baseIova: number;
  readonly pageSize: number;
  readonly bits: Uint8Array;
}

/** Static facts about a page table. */
export interface PageTableGeometry {
  /** The format. */
  readonly format: PageTableFormatName;
  /** Input (IOVA) address width in bits. */
  readonly inputBits: number;
  /** Output (physical) address width in bits. */
  readonly outputBits: number;
  /** Number of levels walked. */
  readonly levels: number;
  /** Smallest page (the granule). */
  readonly granule: number;
  /** Leaf sizes this table will use, ascending, in bytes. */
  readonly pageSizes: readonly number[];
}

/** How a page table is created. */
export interface PageTableOptions {
  /**
   * Where table pages come from. Required to build (map/unmap); a table
   * without one can only be walked (a guest-built stage-1 table).
   */
  readonly allocator?: FrameAllocator;
  /**
   * Where the walker reads table entries. Default: the allocator. For a
   * nested stage 1, a view that translates table addresses through stage 2.
   */
  readonly memory?: TableMemory;
  /** Walk an existing top-level table at this physical address instead of allocating one. */
  readonly root?: number;
}

/** A page table in its hardware format inside simulated memory. */
export interface PageTable {
  /** Static facts: format, widths, levels, page sizes. */
  readonly geometry: PageTableGeometry;
  /** Physical address of the top-level table (what a context entry, STE or DTE points at). */
  readonly root: number;
  /** Table pages (frames) this table currently holds. */
  readonly tableFrames: number;

  /**
   * Map [iova, iova+length) to [pa, pa+length) with `prot` (IOMMU_* bits),
   * using the largest leaves that alignment and the format allow. All or
   * nothing: returns `length`, or a negative errno with nothing changed
   * (-EINVAL misaligned or out of range, -EEXIST already mapped, -ENOMEM no
   * table pages).
   */
  map(iova: number, pa: number, length: number, prot: number): number;

  /**
   * Unmap [iova, iova+length). Returns the bytes removed, which can be more
   * than `length` where the format and its kernel driver remove a large leaf
   * whole instead of splitting it. Holes are skipped. Empty tables are freed.
   */
  unmap(iova: number, length: number): number;

  /**
   * Translate `iova` for an access (ACCESS_* bits; 0 asks only whether it is
   * mapped). Fills and returns `out` (a new object when omitted).
   */
  translate(iova: number, access?: number, out?: Translation): Translation;

  /** Every entry read on the way to `iova`, top level first. */
  walk(iova: number): WalkStep[];

  /**
   * Report the dirty leaves in [iova, iova+length) into `bitmap` (setting the
   * bits of every bitmap page a dirty leaf covers) and clear their dirty
   * state unless `noClear`. Returns the number of dirty leaves seen.
   */
  readAndClearDirty(iova: number, length: number, bitmap: DirtyBitmap, noClear?: boolean): number;

  /** The leaf mappings overlapping [iova, iova+length) (default: everything), in IOVA order. */
  leaves(iova?: number, length?: number): LeafMapping[];

  /** Free every table page, the top level included. The table is unusable afterwards. */
  free(): void;
}

/**
 * Set in `bitmap` the bit of every page overlapping [iova, iova+length) that
 * lies inside the bitmap. Formats call it for each dirty leaf.
 */
export function markDirty(bitmap: DirtyBitmap, iova: number, length: number): void {
  const first = Math.max(iova, bitmap.baseIova);
  const end = Math.min(iova + length, bitmap.baseIova + bitmap.bits.length * 8 * bitmap.pageSize);
  if (end <= first) return;
  const from = Math.floor((first - bitmap.baseIova) / bitmap.pageSize);
  const to = Math.floor((end - 1 - bitmap.baseIova) / bitmap.pageSize);
  const bits = bitmap.bits;
  for (let i = from; i <= to; i++) bits[i >>> 3] = (bits[i >>> 3] as number) | (1 << (i & 7));
}

/** The 64-bit entry made of two 32-bit words, for reports. */
export function entryToBigInt(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
