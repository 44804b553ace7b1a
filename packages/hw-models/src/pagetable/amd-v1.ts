/**
 * The AMD-Vi v1 ("host") I/O page table, as Linux 6.17's
 * drivers/iommu/amd/io_pgtable.c builds it and the IOMMU walks it.
 *
 * 4 KiB tables of 512 eight-byte entries; the DTE Mode (1..6) is the number
 * of levels, level L (1 = leaf table) indexing IOVA bits 12+9(L-1) up. An
 * entry is present when PR (bit 0) is set; its NextLevel field (bits 11:9)
 * says what it is: at level 1 always a leaf; above, NL = 0 is a leaf of the
 * level's natural size, NL = 7 a leaf of another power-of-two size encoded in
 * the address (replicated into every slot it covers), and 1 <= NL < level a
 * pointer to a table at level NL. IR (bit 61) and IW (bit 62) are ANDed down
 * the walk; A (bit 5) and D (bit 6) are updated when the DTE's HAD enables it.
 *
 * Like the driver, the table starts at Mode 3 and grows a level (a new root
 * whose entry 0 points at the old one) when a mapping needs a higher address
 * or a larger page; {@link AmdV1PageTable.root} and `geometry.levels` change
 * then, and whoever points a DTE at the table must rewrite it.
 */
import { EEXIST, EINVAL, ENOMEM } from '@iommufd-sim/uapi-types';
import type { FrameAllocator } from '../memory/frame-allocator.js';
import { FRAME_SIZE, type TableMemory } from '../memory/physical-memory.js';
import {
  type DirtyBitmap,
  entryToBigInt,
  IOMMU_READ,
  IOMMU_WRITE,
  type LeafMapping,
  markDirty,
  newTranslation,
  type PageTable,
  type PageTableGeometry,
  type PageTableOptions,
  type Translation,
  type WalkStep,
} from './format.js';

// Hot paths use these local copies: an imported binding can cost a getter call per use.
const PAGE = 4096;
const READ = 1; // IOMMU_READ
const WRITE = 2; // IOMMU_WRITE
const UPDATE_AD = 16; // ACCESS_UPDATE_AD
const ACC_WRITE = 2; // ACCESS_WRITE
const TWO32 = 4294967296;
// Bytes one entry covers, by level (index 7 = the whole 64-bit space).
const SPANS = [0, 2 ** 12, 2 ** 21, 2 ** 30, 2 ** 39, 2 ** 48, 2 ** 57, 2 ** 66];
const SPAN_2M = 2 ** 21;
// Entry bits in the high word (bit n of the entry = bit n-32 of `hi`).
const HI_ADDR = 0xfffff; // address bits 51:32
const HI_FC = 0x10000000; // bit 60
const HI_IR = 0x20000000; // bit 61
const HI_IW = 0x40000000; // bit 62
// Entry bits in the low word.
const LO_PR = 0x1;
const LO_A = 0x20;
const LO_D = 0x40;
const LO_ADDR = 0xfffff000;
const NL_LARGE = 7;

/** PR: the entry is present. */
export const AMD_PTE_PR = 1n;
/** A: accessed (hardware-set when DTE.HAD enables it). */
export const AMD_PTE_A = 1n << 5n;
/** D: dirty (hardware-set on writes when DTE.HAD enables it). */
export const AMD_PTE_D = 1n << 6n;
/** FC: force coherent; Linux sets it on every leaf it writes. */
export const AMD_PTE_FC = 1n << 60n;
/** IR: reads allowed. */
export const AMD_PTE_IR = 1n << 61n;
/** IW: writes allowed. */
export const AMD_PTE_IW = 1n << 62n;

/** Bytes covered by one entry at `level` (1 = 4 KiB, 2 = 2 MiB, ...). */
export function amdV1LevelSpan(level: number): number {
  return SPANS[level] as number;
}

/**
 * The leaf sizes Linux advertises for v1 tables (AMD_IOMMU_PGSIZES: every
 * power of two from 4 KiB, except 512 GiB, which a hardware erratum rules
 * out), listed up to half of a `inputBits`-wide space (at most 2^52).
 */
export function amdV1PageSizes(inputBits = 48): number[] {
  const sizes: number[] = [];
  for (let log = 12; log < Math.min(inputBits, 53); log++) if (log !== 39) sizes.push(2 ** log);
  return sizes;
}

/** A non-leaf entry pointing at the table at `tablePa`, whose level is `nextLevel` (Linux's PM_LEVEL_PDE). */
export function encodeAmdV1Pde(nextLevel: number, tablePa: number): bigint {
  return BigInt(tablePa) | (BigInt(nextLevel & 7) << 9n) | AMD_PTE_PR | AMD_PTE_IR | AMD_PTE_IW;
}

/**
 * A leaf mapping `size` bytes at `pa` with IOMMU_READ / IOMMU_WRITE `prot`:
 * NL = 0 with the plain address for a natural size, NL = 7 with the size
 * folded into the address otherwise (Linux's PAGE_SIZE_PTE).
 */
export function encodeAmdV1Leaf(
  pa: number,
  size: number,
  prot: number,
  forceCoherent = true,
): bigint {
  const log = Math.log2(size);
  const natural = (log - 12) % 9 === 0;
  const field = natural ? pa : pa + size / 2 - FRAME_SIZE;
  let e = BigInt(field) | AMD_PTE_PR;
  if (!natural) e |= BigInt(NL_LARGE) << 9n;
  if (forceCoherent) e |= AMD_PTE_FC;
  if (prot & IOMMU_READ) e |= AMD_PTE_IR;
  if (prot & IOMMU_WRITE) e |= AMD_PTE_IW;
  return e;
}

/** The fields of a v1 entry. */
export interface AmdV1Entry {
  readonly present: boolean;
  readonly accessed: boolean;
  readonly dirty: boolean;
  /** NextLevel (bits 11:9). */
  readonly nextLevel: number;
  /** The address field (bits 51:12), for NL = 7 still carrying the size bits. */
  readonly address: number;
  readonly forceCoherent: boolean;
  readonly ir: boolean;
  readonly iw: boolean;
  /** For NL = 7: the page size and its base; otherwise 0 and `address`. */
  readonly largeSize: number;
  readonly base: number;
}

/** Split a v1 entry into its fields. */
export function decodeAmdV1Entry(raw: bigint): AmdV1Entry {
  const lo = Number(raw & 0xffffffffn);
  const hi = Number((raw >> 32n) & 0xffffffffn);
  const nl = (lo >>> 9) & 7;
  const address = (hi & HI_ADDR) * TWO32 + ((lo & LO_ADDR) >>> 0);
  const largeSize = nl === NL_LARGE ? largeSizeOf(lo, hi) : 0;
  return {
    present: (lo & LO_PR) !== 0,
    accessed: (lo & LO_A) !== 0,
    dirty: (lo & LO_D) !== 0,
    nextLevel: nl,
    address,
    forceCoherent: (hi & HI_FC) !== 0,
    ir: (hi & HI_IR) !== 0,
    iw: (hi & HI_IW) !== 0,
    largeSize,
    base: largeSize > 0 ? Math.floor(address / largeSize) * largeSize : address,
  };
}

/** `counts` copied into an array long enough to index `rel` (doubling). */
function grow(counts: Uint16Array, rel: number): Uint16Array<ArrayBuffer> {
  let n = counts.length;
  while (n <= rel) n *= 2;
  const grown = new Uint16Array(n);
  grown.set(counts);
  return grown;
}

/** NL=7 size: 2^(k+1), k = the lowest clear address bit at or above bit 12 (0 = no clear bit). */
function largeSizeOf(lo: number, hi: number): number {
  const low = ~(lo >>> 12) & 0xfffff;
  if (low !== 0) return 2 ** (13 + 31 - Math.clz32(low & -low));
  const high = ~hi & HI_ADDR;
  if (high === 0) return 0;
  return 2 ** (33 + 31 - Math.clz32(high & -high));
}

function entryAddress(lo: number, hi: number): number {
  return (hi & HI_ADDR) * TWO32 + ((lo & LO_ADDR) >>> 0);
}

/**
 * Walk a v1 table in `memory` whose top table is at `root` with `mode`
 * levels, as the IOMMU does for one access, into `out`. Updates A (and D for
 * writes) in the leaf when `access` has ACCESS_UPDATE_AD (the caller sets it
 * only when DTE.HAD asks). Level skipping (1 <= NL < level-1) is followed, the
 * skipped IOVA bits having to be zero.
 */
export function walkAmdV1(
  memory: TableMemory,
  root: number,
  mode: number,
  iova: number,
  access: number,
  out: Translation,
): Translation {
  out.ok = false;
  out.pa = 0;
  out.pageSize = 0;
  out.prot = 0;
  out.fault = null;
  out.faultAddress = 0;
  let level = mode;
  out.level = level;
  if (!(iova >= 0 && (mode >= 6 || iova < (SPANS[mode + 1] as number)))) {
    out.fault = 'address-size';
    return out;
  }
  let table = root;
  let prot = READ | WRITE;
  for (;;) {
    const pfn = Math.floor(table / PAGE);
    const words = memory.readFrame(pfn);
    if (words === undefined) {
      out.fault = 'table-fetch';
      out.faultAddress = table;
      out.level = level;
      return out;
    }
    const span = SPANS[level] as number;
    const w = (Math.floor(iova / span) & 511) << 1;
    const lo = words[w] as number;
    const hi = words[w + 1] as number;
    out.level = level;
    if ((lo & LO_PR) === 0) {
      out.fault = 'not-present';
      return out;
    }
    prot &= (hi >>> 29) & 3;
    const nl = (lo >>> 9) & 7;
    if (level === 1 || nl === 0 || nl === NL_LARGE) {
      let size = span;
      if (nl === NL_LARGE) {
        size = largeSizeOf(lo, hi);
        if (!(size > span && size < span * 512)) {
          out.fault = 'reserved-bits';
          return out;
        }
      } else if (nl !== 0) {
        out.fault = 'reserved-bits';
        return out;
      }
      out.prot = prot;
      out.pageSize = size;
      const need = access & 3;
      if ((need & ~prot) !== 0) {
        out.fault = 'permission';
        return out;
      }
      const base = Math.floor(entryAddress(lo, hi) / size) * size;
      out.pa = base + (iova - Math.floor(iova / size) * size);
      out.ok = true;
      if ((access & UPDATE_AD) !== 0) {
        const set = LO_A | ((access & ACC_WRITE) !== 0 ? LO_D : 0);
        if ((lo & set) !== set) {
          const writable = memory.writeFrame(pfn);
          if (writable !== undefined) writable[w] = (lo | set) >>> 0;
        }
      }
      return out;
    }
    if (nl >= level) {
      out.fault = 'reserved-bits';
      return out;
    }
    if (nl < level - 1) {
      // Skipped levels: their index bits must be zero.
      const skipped = Math.floor(iova / (SPANS[nl + 1] as number)) % 512 ** (level - 1 - nl);
      if (skipped !== 0) {
        out.fault = 'not-present';
        return out;
      }
    }
    table = entryAddress(lo, hi);
    level = nl;
  }
}

/** How an {@link AmdV1PageTable} is created. */
export interface AmdV1PageTableOptions extends PageTableOptions {
  /** The Mode the table starts with (Linux: 3), or of the existing table at `root`. */
  readonly levels?: number;
  /** The Mode it may grow to (Linux's amd_iommu_hpt_level, from EFR.HATS). Default 6. */
  readonly maxLevels?: number;
  /** Leaf sizes map may use. Default {@link amdV1PageSizes} (AMD_IOMMU_PGSIZES). */
  readonly pageSizes?: readonly number[];
  /** Output address width. Default 52. */
  readonly outputBits?: number;
  /** Set FC in leaves as Linux does. Default true. */
  readonly forceCoherent?: boolean;
}

/** An AMD-Vi v1 host page table in simulated memory. */
export class AmdV1PageTable implements PageTable {
  /** The Mode it may grow to. */
  readonly maxLevels: number;
  private readonly alloc: FrameAllocator | undefined;
  private readonly mem: TableMemory;
  private rootPa: number;
  private mode: number;
  private frames = 0;
  private readonly sizesDesc: number[];
  private readonly outputLimit: number;
  private readonly inputLimit: number;
  private readonly leafFlags: number;
  private geo: PageTableGeometry;
  // Present entries per table, by frame number relative to the allocator's region.
  private counts = new Uint16Array(256);
  // The words of every table this table allocated, by the same relative frame number.
  private readonly tables: (Uint32Array | undefined)[] = [];
  private readonly basePfn: number;
  // Walk through `tables` (no TableMemory call) when the walker reads what the allocator owns.
  private readonly ownMemory: boolean;
  // The level-1 table last used by map/unmap: its IOVA base (or -1), words and count slot.
  private cacheBase = -1;
  private cacheWords: Uint32Array = new Uint32Array(0);
  private cacheRel = 0;
  // State of one unmap / dirty walk (fields, so the recursion allocates nothing).
  private opLength = 0;
  private opDone = 0;
  private pinned = -1;
  private readonly scratch = newTranslation();

  constructor(options: AmdV1PageTableOptions = {}) {
    this.alloc = options.allocator;
    const mem = options.memory ?? options.allocator;
    if (mem === undefined) throw new TypeError('an AMD v1 table needs an allocator or a memory');
    this.mem = mem;
    this.basePfn = options.allocator?.basePfn ?? 0;
    this.ownMemory = options.memory === undefined || options.memory === options.allocator;
    this.maxLevels = options.maxLevels ?? 6;
    this.mode = options.levels ?? 3;
    if (!(this.maxLevels >= 1 && this.maxLevels <= 6 && this.mode >= 1 && this.mode <= 6)) {
      throw new RangeError('AMD v1 levels must be in [1, 6]');
    }
    if (this.mode > this.maxLevels) throw new RangeError('levels exceeds maxLevels');
    const outputBits = options.outputBits ?? 52;
    this.outputLimit = 2 ** outputBits;
    this.inputLimit = Math.min(2 ** 53, SPANS[this.maxLevels + 1] as number);
    const sizes = options.pageSizes ?? amdV1PageSizes(Math.min(64, 12 + 9 * this.maxLevels));
    for (const s of sizes) {
      const log = Math.log2(s);
      if (!Number.isInteger(log) || log < 12 || log === 39 || log > 52) {
        throw new RangeError(`AMD v1 cannot map a ${s}-byte page`);
      }
    }
    this.sizesDesc = [...sizes].sort((a, b) => b - a);
    this.leafFlags = options.forceCoherent === false ? 0 : HI_FC;
    if (options.root !== undefined) {
      this.rootPa = options.root;
      if (this.alloc !== undefined) this.recount(this.rootPa, this.mode);
    } else {
      if (this.alloc === undefined) throw new TypeError('a new AMD v1 table needs an allocator');
      this.rootPa = this.newTable();
      if (this.rootPa < 0) throw new RangeError('no memory for the AMD v1 root table');
    }
    this.geo = this.makeGeometry();
  }

  get geometry(): PageTableGeometry {
    return this.geo;
  }

  get root(): number {
    return this.rootPa;
  }

  /** The current Mode (number of levels), what a DTE pointing at the table must carry. */
  get levels(): number {
    return this.mode;
  }

  get tableFrames(): number {
    return this.frames;
  }

  map(iova: number, pa: number, length: number, prot: number): number {
    if (
      !(
        Number.isInteger(iova) &&
        Number.isInteger(pa) &&
        Number.isInteger(length) &&
        iova >= 0 &&
        pa >= 0 &&
        length > 0
      )
    ) {
      return -EINVAL;
    }
    if (iova % PAGE !== 0 || pa % PAGE !== 0 || length % PAGE !== 0) {
      return -EINVAL;
    }
    if (iova + length > this.inputLimit || pa + length > this.outputLimit) return -EINVAL;
    // Linux refuses a mapping with neither IR nor IW.
    if ((prot & (READ | WRITE)) === 0) return -EINVAL;
    this.needAllocator();
    const hiFlags = this.leafFlags | (prot & READ ? HI_IR : 0) | (prot & WRITE ? HI_IW : 0);
    // Fast path: one 4 KiB page in the level-1 table used last.
    if (length === PAGE && iova - (iova % SPAN_2M) === this.cacheBase) {
      const w = ((iova % SPAN_2M) / PAGE) << 1;
      const words = this.cacheWords;
      if (((words[w] as number) & LO_PR) !== 0) return -EEXIST;
      words[w] = ((pa >>> 0) & LO_ADDR) | LO_PR;
      words[w + 1] = Math.floor(pa / TWO32) | hiFlags;
      this.counts[this.cacheRel] = (this.counts[this.cacheRel] as number) + 1;
      return length;
    }
    const startMode = this.mode;
    const sizes = this.sizesDesc;
    let done = 0;
    while (done < length) {
      const va = iova + done;
      const pa0 = pa + done;
      const left = length - done;
      let size = 0;
      for (const s of sizes) {
        if (s <= left && va % s === 0 && pa0 % s === 0) {
          size = s;
          break;
        }
      }
      if (size === 0) {
        this.rollback(iova, done, startMode);
        return -EINVAL;
      }
      // Runs of 4 KiB pages fill the level-1 table directly.
      if (size === PAGE && va - (va % SPAN_2M) === this.cacheBase) {
        const words = this.cacheWords;
        let w = ((va % SPAN_2M) / PAGE) << 1;
        const smallest = sizes.length === 1;
        let n = 0;
        while (done < length && w < 1024) {
          const v = iova + done;
          const p = pa + done;
          // Stop where a larger page would fit.
          if (!smallest && n > 0 && this.fitsLarger(v, p, length - done)) break;
          if (((words[w] as number) & LO_PR) !== 0) {
            this.counts[this.cacheRel] = (this.counts[this.cacheRel] as number) + n;
            this.rollback(iova, done, startMode);
            return -EEXIST;
          }
          words[w] = ((p >>> 0) & LO_ADDR) | LO_PR;
          words[w + 1] = Math.floor(p / TWO32) | hiFlags;
          w += 2;
          n++;
          done += PAGE;
        }
        this.counts[this.cacheRel] = (this.counts[this.cacheRel] as number) + n;
        continue;
      }
      const r = this.installLeaf(va, pa0, size, hiFlags);
      if (r < 0) {
        this.rollback(iova, done, startMode);
        return r;
      }
      done += size;
    }
    return length;
  }

  unmap(iova: number, length: number): number {
    if (!(Number.isInteger(iova) && Number.isInteger(length) && iova >= 0 && length > 0)) return 0;
    if (iova % PAGE !== 0 || length % PAGE !== 0) return 0;
    this.needAllocator();
    // Fast path: one 4 KiB leaf in the level-1 table used last, which stays non-empty.
    if (length === PAGE && iova - (iova % SPAN_2M) === this.cacheBase) {
      const w = ((iova % SPAN_2M) / PAGE) << 1;
      const words = this.cacheWords;
      const lo = words[w] as number;
      const count = this.counts[this.cacheRel] as number;
      if ((lo & LO_PR) !== 0 && ((lo >>> 9) & 7) === 0 && count > 1) {
        words[w] = 0;
        words[w + 1] = 0;
        this.counts[this.cacheRel] = count - 1;
        return PAGE;
      }
    }
    this.opLength = length;
    this.opDone = 0;
    const end = Math.min(iova + length, SPANS[this.mode + 1] as number);
    if (iova < end) this.unmapIn(this.rootPa, this.mode, 0, iova, end);
    return this.opDone;
  }

  translate(iova: number, access = 0, out: Translation = newTranslation()): Translation {
    if (!this.ownMemory || (access & UPDATE_AD) !== 0) {
      return walkAmdV1(this.mem, this.rootPa, this.mode, iova, access, out);
    }
    // The common case, walked through the table's own frame list.
    const mode = this.mode;
    if (iova >= 0 && (mode >= 6 || iova < (SPANS[mode + 1] as number))) {
      const tables = this.tables;
      const basePfn = this.basePfn;
      let words = tables[this.rootPa / PAGE - basePfn];
      let level = mode;
      let prot = READ | WRITE;
      while (words !== undefined) {
        const span = SPANS[level] as number;
        const w = (Math.floor(iova / span) & 511) << 1;
        const lo = words[w] as number;
        const hi = words[w + 1] as number;
        const nl = (lo >>> 9) & 7;
        if ((lo & LO_PR) === 0 || (level > 1 && nl !== 0 && nl !== NL_LARGE && nl !== level - 1)) {
          break; // not present, or an encoding the general walker reports
        }
        prot &= (hi >>> 29) & 3;
        if (level === 1 || nl === 0 || nl === NL_LARGE) {
          if (nl !== 0 || (access & ~prot & 3) !== 0) break;
          out.ok = true;
          out.pa = (hi & HI_ADDR) * TWO32 + ((lo & LO_ADDR) >>> 0) + (iova % span);
          out.pageSize = span;
          out.prot = prot;
          out.level = level;
          out.fault = null;
          out.faultAddress = 0;
          return out;
        }
        words = tables[((hi & HI_ADDR) * TWO32 + ((lo & LO_ADDR) >>> 0)) / PAGE - basePfn];
        level = nl;
      }
    }
    return walkAmdV1(this.mem, this.rootPa, this.mode, iova, access, out);
  }

  walk(iova: number): WalkStep[] {
    const steps: WalkStep[] = [];
    if (!(iova >= 0 && (this.mode >= 6 || iova < (SPANS[this.mode + 1] as number)))) return steps;
    let table = this.rootPa;
    let level = this.mode;
    for (;;) {
      const words = this.mem.readFrame(Math.floor(table / PAGE));
      if (words === undefined) return steps;
      const span = SPANS[level] as number;
      const index = Math.floor(iova / span) & 511;
      const lo = words[index * 2] as number;
      const hi = words[index * 2 + 1] as number;
      const raw = entryToBigInt(lo, hi);
      const base = { level, tableAddress: table, index, entryAddress: table + index * 8, raw };
      const nl = (lo >>> 9) & 7;
      if ((lo & LO_PR) === 0) {
        steps.push({ ...base, kind: 'invalid' });
        return steps;
      }
      if (level === 1 || nl === 0 || nl === NL_LARGE) {
        const size = nl === NL_LARGE ? largeSizeOf(lo, hi) : span;
        steps.push({ ...base, kind: 'leaf', pageSize: size });
        return steps;
      }
      if (nl >= level) {
        steps.push({ ...base, kind: 'invalid' });
        return steps;
      }
      steps.push({ ...base, kind: 'table' });
      table = entryAddress(lo, hi);
      level = nl;
    }
  }

  readAndClearDirty(iova: number, length: number, bitmap: DirtyBitmap, noClear = false): number {
    let seen = 0;
    const end = Math.min(iova + length, SPANS[this.mode + 1] as number);
    this.forEachLeaf(this.rootPa, this.mode, 0, iova, end, (words, first, count, va, size) => {
      let dirty = false;
      // Software must OR the D bits of every replicated slot (AMD IOMMU spec 2.2.3.2).
      for (let i = 0; i < count; i++) {
        const w = (first + i) << 1;
        if (((words[w] as number) & LO_D) !== 0) {
          dirty = true;
          if (!noClear) words[w] = ((words[w] as number) & ~LO_D) >>> 0;
        }
      }
      if (dirty) {
        markDirty(bitmap, va, size);
        seen++;
      }
    });
    return seen;
  }

  leaves(iova = 0, length = this.inputLimit - iova): LeafMapping[] {
    const list: LeafMapping[] = [];
    const end = Math.min(iova + length, SPANS[this.mode + 1] as number);
    this.forEachLeaf(this.rootPa, this.mode, 0, iova, end, (words, first, _count, va, size) => {
      const lo = words[first << 1] as number;
      const hi = words[(first << 1) + 1] as number;
      const pa = Math.floor(entryAddress(lo, hi) / size) * size;
      list.push({ iova: va, pa, size, prot: (hi >>> 29) & 3 });
    });
    return list;
  }

  free(): void {
    if (this.alloc === undefined) return;
    this.freeTree(this.rootPa, this.mode);
    this.cacheBase = -1;
    this.rootPa = -1;
  }

  // ---- building ------------------------------------------------------------------

  private needAllocator(): void {
    if (this.alloc === undefined) throw new TypeError('this AMD v1 table has no allocator');
  }

  private makeGeometry(): PageTableGeometry {
    return {
      format: 'amd-v1',
      inputBits: Math.min(64, 12 + 9 * this.maxLevels),
      outputBits: Math.log2(this.outputLimit),
      levels: this.mode,
      granule: PAGE,
      pageSizes: [...this.sizesDesc].reverse(),
    };
  }

  private rel(pa: number): number {
    return pa / PAGE - (this.alloc as FrameAllocator).basePfn;
  }

  private newTable(): number {
    const pa = (this.alloc as FrameAllocator).allocate(PAGE);
    if (pa < 0) return -1;
    const rel = this.rel(pa);
    if (rel >= this.counts.length) this.counts = grow(this.counts, rel);
    this.counts[rel] = 0;
    this.tables[rel] = (this.alloc as FrameAllocator).blockWords(pa, PAGE);
    this.frames++;
    return pa;
  }

  private releaseTable(pa: number): void {
    (this.alloc as FrameAllocator).free(pa, PAGE);
    this.tables[pa / PAGE - this.basePfn] = undefined;
    this.frames--;
    if (this.cacheBase >= 0) this.cacheBase = -1;
  }

  private words(pa: number): Uint32Array {
    return this.tables[pa / PAGE - this.basePfn] as Uint32Array;
  }

  /** True when a page larger than 4 KiB could start at (va, pa) with `left` bytes to go. */
  private fitsLarger(va: number, pa: number, left: number): boolean {
    const sizes = this.sizesDesc;
    for (let i = 0; i < sizes.length - 1; i++) {
      const s = sizes[i] as number;
      if (s <= left && va % s === 0 && pa % s === 0) return true;
    }
    return false;
  }

  /** Add a level above the root (the driver's increase_address_space). */
  private grow(): number {
    const pa = this.newTable();
    if (pa < 0) return -ENOMEM;
    const words = this.words(pa);
    words[0] = ((this.rootPa >>> 0) & LO_ADDR) | (this.mode << 9) | LO_PR;
    words[1] = Math.floor(this.rootPa / TWO32) | HI_IR | HI_IW;
    this.counts[this.rel(pa)] = 1;
    this.rootPa = pa;
    this.mode++;
    this.geo = this.makeGeometry();
    return 0;
  }

  /** Undo a failed map: remove [iova, iova+done) and drop levels added since `mode`. */
  private rollback(iova: number, done: number, mode: number): void {
    if (done > 0) {
      // The root the map started from must survive, even emptied.
      let keep = this.rootPa;
      for (let m = this.mode; m > mode; m--) {
        const w = this.words(keep);
        keep = entryAddress(w[0] as number, w[1] as number);
      }
      this.pinned = keep;
      this.opLength = done;
      this.opDone = 0;
      this.unmapIn(this.rootPa, this.mode, 0, iova, iova + done);
      this.pinned = -1;
    }
    while (this.mode > mode) {
      const words = this.words(this.rootPa);
      const child = entryAddress(words[0] as number, words[1] as number);
      this.releaseTable(this.rootPa);
      this.rootPa = child;
      this.mode--;
    }
    this.geo = this.makeGeometry();
  }

  private installLeaf(va: number, pa: number, size: number, hiFlags: number): number {
    const log = Math.round(Math.log2(size));
    const target = Math.floor((log - 12) / 9) + 1;
    const count = 2 ** ((log - 12) % 9);
    while (va + size > (SPANS[this.mode + 1] as number) || this.mode < target) {
      if (this.mode >= this.maxLevels) return -EINVAL;
      const r = this.grow();
      if (r < 0) return r;
    }
    let table = this.rootPa;
    let level = this.mode;
    // Tables created on this descent, to take back if a later allocation fails.
    let created0 = -1;
    let createdParent = -1;
    let createdIndex = 0;
    while (level > target) {
      const words = this.words(table);
      const w = (Math.floor(va / (SPANS[level] as number)) & 511) << 1;
      const lo = words[w] as number;
      if ((lo & LO_PR) !== 0) {
        const nl = (lo >>> 9) & 7;
        if (nl === 0 || nl === NL_LARGE) return -EEXIST;
        table = entryAddress(lo, words[w + 1] as number);
      } else {
        const child = this.newTable();
        if (child < 0) {
          if (created0 >= 0) this.dropChain(createdParent, createdIndex, created0);
          return -ENOMEM;
        }
        words[w] = ((child >>> 0) & LO_ADDR) | ((level - 1) << 9) | LO_PR;
        words[w + 1] = Math.floor(child / TWO32) | HI_IR | HI_IW;
        const relT = this.rel(table);
        this.counts[relT] = (this.counts[relT] as number) + 1;
        if (created0 < 0) {
          created0 = child;
          createdParent = table;
          createdIndex = w;
        }
        table = child;
      }
      level--;
    }
    const words = this.words(table);
    const first = (Math.floor(va / (SPANS[target] as number)) & 511) << 1;
    for (let i = 0; i < count; i++) {
      if (((words[first + 2 * i] as number) & LO_PR) !== 0) return -EEXIST;
    }
    const natural = count === 1;
    const field = natural ? pa : pa + size / 2 - PAGE;
    const lo = ((field >>> 0) & LO_ADDR) | (natural ? 0 : NL_LARGE << 9) | LO_PR;
    const hi = Math.floor(field / TWO32) | hiFlags;
    for (let i = 0; i < count; i++) {
      words[first + 2 * i] = lo;
      words[first + 2 * i + 1] = hi;
    }
    const rel = this.rel(table);
    this.counts[rel] = (this.counts[rel] as number) + count;
    if (target === 1) {
      this.cacheBase = va - (va % SPAN_2M);
      this.cacheWords = words;
      this.cacheRel = rel;
    }
    return 0;
  }

  /** Free a chain of empty tables hanging from entry `w` of `parent`. */
  private dropChain(parent: number, w: number, top: number): void {
    let table = top;
    for (;;) {
      const words = this.words(table);
      let next = -1;
      for (let i = 0; i < 1024; i += 2) {
        if (((words[i] as number) & LO_PR) !== 0) {
          next = entryAddress(words[i] as number, words[i + 1] as number);
          break;
        }
      }
      this.releaseTable(table);
      if (next < 0) break;
      table = next;
    }
    const pw = this.words(parent);
    pw[w] = 0;
    pw[w + 1] = 0;
    const rel = this.rel(parent);
    this.counts[rel] = (this.counts[rel] as number) - 1;
  }

  // ---- removing --------------------------------------------------------------------

  /**
   * Clear the leaves of the table at `table` (level `level`, covering IOVA from
   * `base`) that overlap [from, to), whole leaves only, until `opLength` bytes
   * are done (iommu_v1_unmap_pages counts bytes, so an unmap starting inside a
   * large page removes all of it and may stop before `to`). Frees tables that
   * become empty, except the root.
   */
  private unmapIn(table: number, level: number, base: number, from: number, to: number): void {
    const words = this.words(table);
    const rel = this.rel(table);
    const span = SPANS[level] as number;
    if (level === 1) {
      this.cacheBase = base;
      this.cacheWords = words;
      this.cacheRel = rel;
    }
    let i = Math.floor((Math.max(from, base) - base) / span);
    const last = Math.min(511, Math.floor((to - 1 - base) / span));
    let count = this.counts[rel] as number;
    for (; i <= last && this.opDone < this.opLength; i++) {
      const w = i << 1;
      const lo = words[w] as number;
      if ((lo & LO_PR) === 0) continue;
      const nl = (lo >>> 9) & 7;
      if (level === 1 && nl === 0) {
        words[w] = 0;
        words[w + 1] = 0;
        count--;
        this.opDone += PAGE;
        continue;
      }
      if (level === 1 || nl === 0 || nl === NL_LARGE) {
        const size = nl === NL_LARGE ? largeSizeOf(lo, words[w + 1] as number) : span;
        const n = size / span;
        const first = i - (i % n);
        for (let k = first; k < first + n; k++) {
          words[k << 1] = 0;
          words[(k << 1) + 1] = 0;
        }
        count -= n;
        this.opDone += size;
        i = first + n - 1;
        continue;
      }
      const child = entryAddress(lo, words[w + 1] as number);
      const childBase = base + i * span;
      this.counts[rel] = count;
      this.unmapIn(child, nl, childBase, Math.max(from, childBase), Math.min(to, childBase + span));
      if (this.counts[this.rel(child)] === 0 && child !== this.pinned) {
        this.releaseTable(child);
        words[w] = 0;
        words[w + 1] = 0;
        count--;
      }
    }
    this.counts[rel] = count;
  }

  private forEachLeaf(
    table: number,
    level: number,
    base: number,
    from: number,
    to: number,
    visit: (words: Uint32Array, first: number, count: number, iova: number, size: number) => void,
  ): void {
    const words = this.mem.readFrame(Math.floor(table / PAGE));
    if (words === undefined || from >= to) return;
    const span = SPANS[level] as number;
    let i = Math.floor((Math.max(from, base) - base) / span);
    const last = Math.min(511, Math.floor((to - 1 - base) / span));
    for (; i <= last; i++) {
      const lo = words[i << 1] as number;
      if ((lo & LO_PR) === 0) continue;
      const nl = (lo >>> 9) & 7;
      if (level === 1 || nl === 0 || nl === NL_LARGE) {
        const size = nl === NL_LARGE ? largeSizeOf(lo, words[(i << 1) + 1] as number) : span;
        const n = Math.max(1, size / span);
        const first = i - (i % n);
        visit(words, first, n, base + first * span, size);
        i = first + n - 1;
        continue;
      }
      if (nl >= level) continue;
      const childBase = base + i * span;
      const child = entryAddress(lo, words[(i << 1) + 1] as number);
      this.forEachLeaf(
        child,
        nl,
        childBase,
        Math.max(from, childBase),
        Math.min(to, childBase + span),
        visit,
      );
    }
  }

  private freeTree(table: number, level: number): void {
    if (level > 1) {
      const words = this.words(table);
      for (let i = 0; i < 1024; i += 2) {
        const lo = words[i] as number;
        if ((lo & LO_PR) === 0) continue;
        const nl = (lo >>> 9) & 7;
        if (nl === 0 || nl === NL_LARGE || nl >= level) continue;
        this.freeTree(entryAddress(lo, words[i + 1] as number), nl);
      }
    }
    this.releaseTable(table);
  }

  /** Count present entries of an existing table tree (a table adopted through `root`). */
  private recount(table: number, level: number): void {
    const alloc = this.alloc as FrameAllocator;
    if (!alloc.owns(table)) throw new RangeError('an adopted root must come from the allocator');
    const rel = this.rel(table);
    if (rel >= this.counts.length) this.counts = grow(this.counts, rel);
    this.tables[rel] = alloc.blockWords(table, PAGE);
    const words = this.words(table);
    let count = 0;
    for (let i = 0; i < 1024; i += 2) {
      const lo = words[i] as number;
      if ((lo & LO_PR) === 0) continue;
      count++;
      const nl = (lo >>> 9) & 7;
      if (level > 1 && nl !== 0 && nl !== NL_LARGE && nl < level) {
        this.recount(entryAddress(lo, words[i + 1] as number), nl);
      }
    }
    this.counts[rel] = count;
    this.frames++;
  }

  /** Translate without an out object of the caller's (for quick checks). */
  lookup(iova: number): number {
    const t = this.translate(iova, 0, this.scratch);
    return t.ok ? t.pa : -1;
  }
}
