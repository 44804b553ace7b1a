/**
 * The radix machinery shared by the two Intel-shaped formats (VT-d second
 * stage and x86-64 first stage): 4 KiB tables of 512 64-bit entries, 9 index
 * bits per level, level 1 the leaf table, PS (bit 7) marking 2 MiB / 1 GiB
 * leaves at levels 2 and 3, the output address in bits 51:12.
 *
 * What differs between the formats (the present test, the bits of a table
 * entry and of a leaf, how permissions combine down the walk, where the
 * accessed and dirty bits are) is given by the subclass as plain numbers, so
 * the hot loops here stay monomorphic and allocate nothing.
 */
import { EEXIST, EINVAL, ENOMEM } from '@iommufd-sim/uapi-types';
import { FrameAllocator, SLAB_SHIFT } from '../memory/frame-allocator.js';
import { FRAME_SIZE, type TableMemory } from '../memory/physical-memory.js';
import {
  ACCESS_UPDATE_AD,
  ACCESS_WRITE,
  type DirtyBitmap,
  entryToBigInt,
  type LeafMapping,
  markDirty,
  newTranslation,
  type PageTable,
  type PageTableFormatName,
  type PageTableGeometry,
  type Translation,
  type TranslationFault,
  type WalkStep,
} from './format.js';

const TWO32 = 4294967296;
const SLAB_MASK = (1 << SLAB_SHIFT) - 1;
/** The PS bit (7) of a level-2/3 entry: the entry is a 2 MiB / 1 GiB leaf. */
export const RADIX_PS = 0x80;
const ADDR_HI_MASK = 0xfffff; // address bits 51:32 in the high word
const ADDR_LO_MASK = 0xfffff000; // address bits 31:12 in the low word

/** Bytes mapped by one entry at `level` (1 = 4 KiB, 2 = 2 MiB, 3 = 1 GiB, ...). */
export function radixLevelSize(level: number): number {
  return LEVEL_SIZE[level] as number;
}
// A table, not 2 ** n: V8 computes a variable power through Math.pow, slowly.
const LEVEL_SIZE = [0, 2 ** 12, 2 ** 21, 2 ** 30, 2 ** 39, 2 ** 48];

/** Index of `iova` (split into 32-bit halves) in the table at `level`. */
function indexOf(lo: number, hi: number, level: number): number {
  const shift = 3 + 9 * level;
  return shift >= 32 ? (hi >>> (shift - 32)) & 511 : ((lo >>> shift) | (hi << (32 - shift))) & 511;
}

/** Output address held in an entry's two words. */
function entryAddress(lo: number, hi: number): number {
  return (hi & ADDR_HI_MASK) * TWO32 + ((lo & ADDR_LO_MASK) >>> 0);
}

/**
 * Output frame number held in an entry: integer arithmetic, so the number
 * stays a small integer V8 can index arrays with (an address divided by 4096
 * is a heap double and makes every table lookup slow).
 */
function entryPfn(lo: number, hi: number): number {
  return (hi & ADDR_HI_MASK) * 1048576 + (lo >>> 12);
}

// Present-entry counts of every table page, indexed by frame relative to the
// allocator's region; shared by all tables of one allocator so a thousand
// domains do not each carry an array the size of the region.
interface CountStore {
  counts: Uint16Array;
}
const countStores = new WeakMap<FrameAllocator, CountStore>();

function countStoreOf(allocator: FrameAllocator): CountStore {
  let store = countStores.get(allocator);
  if (store === undefined) {
    store = { counts: new Uint16Array(4096) };
    countStores.set(allocator, store);
  }
  return store;
}

/** What a format fixes about its entries; given once by the subclass. */
export interface RadixEncoding {
  /** The format's name. */
  readonly format: PageTableFormatName;
  /** Low-word bits of which at least one makes an entry present. */
  readonly presentMask: number;
  /** Low-word bits of an entry pointing at a next-level table. */
  readonly tableBits: number;
  /** Low-word accessed bit. */
  readonly accessedBit: number;
  /** Low-word dirty bit (leaves). */
  readonly dirtyBit: number;
}

/** How a radix table is sized. */
export interface RadixOptions {
  /** Levels walked. */
  readonly levels: number;
  /** Input address width (bits translated). */
  readonly inputBits: number;
  /** Largest usable input address + 1 (the lower canonical half for x86-64). */
  readonly inputLimit: number;
  /** Output address width. */
  readonly outputBits: number;
  /** Leaf sizes used by map (4 KiB always; 2 MiB, 1 GiB optional). */
  readonly pageSizes: readonly number[];
  /** Where tables come from (absent: walk only). */
  readonly allocator?: FrameAllocator | undefined;
  /** Where entries are read (default the allocator). */
  readonly memory?: TableMemory | undefined;
  /** An existing top-level table to walk. */
  readonly root?: number | undefined;
}

/**
 * A 4 KiB-granule, 512-entry-per-level radix page table in simulated memory.
 * Subclasses give the entry encoding and the permission rules.
 */
export abstract class RadixPageTable implements PageTable {
  readonly geometry: PageTableGeometry;
  readonly root: number;
  /** Levels walked (3, 4 or 5). */
  readonly levels: number;
  protected readonly allocator: FrameAllocator | undefined;
  protected readonly memory: TableMemory;
  protected readonly enc: RadixEncoding;
  /** Whether walks set the accessed and dirty bits (with ACCESS_UPDATE_AD). */
  protected adEnabled = true;
  private readonly inputLimit: number;
  private readonly outputLimit: number;
  private readonly outputPfnLimit: number;
  private readonly rootPfn: number;
  private readonly leafLevels: number; // bit L set: level L may hold leaves
  private readonly store: CountStore | undefined;
  private readonly basePfn: number;
  // The allocator's slabs (empty without one) and its region, for walks.
  private readonly slabs: readonly (Uint32Array | undefined)[];
  private readonly slabBase: number;
  private readonly regionFrames: number;
  private frames = 0;
  // The last leaf table map/unmap used: its 2 MiB-region number, words and frame.
  private cacheKey = -1;
  private cacheWords: Uint32Array | undefined;
  private cacheRel = 0;
  // Tables allocated by the map call in progress, for rollback.
  private fresh: number[] | null = null;
  private error = 0;
  // Frame index (relative to the allocator) of the table tableFor returned.
  private tableRel = 0;
  // Leaf flag words by prot & 63 (-1 not computed yet, -2 the prot cannot be mapped).
  private readonly flagLo = new Int32Array(64).fill(-1);
  private readonly flagHi = new Int32Array(64);

  protected constructor(enc: RadixEncoding, options: RadixOptions) {
    const { levels, pageSizes } = options;
    this.enc = enc;
    this.levels = levels;
    this.allocator = options.allocator;
    const memory = options.memory ?? options.allocator;
    if (memory === undefined) {
      throw new TypeError(`${enc.format}: a page table needs an allocator or a memory to read`);
    }
    this.memory = memory;
    let leafLevels = 0;
    for (const size of pageSizes) {
      const level = size === 4096 ? 1 : size === 2 ** 21 ? 2 : size === 2 ** 30 ? 3 : 0;
      if (level === 0) throw new RangeError(`${enc.format}: unsupported page size ${size}`);
      leafLevels |= 1 << level;
    }
    if ((leafLevels & 2) === 0) throw new RangeError(`${enc.format}: 4 KiB pages are required`);
    this.leafLevels = leafLevels;
    this.inputLimit = options.inputLimit;
    this.outputLimit = 2 ** options.outputBits;
    this.outputPfnLimit = 2 ** (options.outputBits - 12);
    this.geometry = {
      format: enc.format,
      inputBits: options.inputBits,
      outputBits: options.outputBits,
      levels,
      granule: 4096,
      pageSizes: [...pageSizes].sort((a, b) => a - b),
    };
    // Tables read from a frame allocator (owned, or walked by an IOMMU) are
    // walked straight in its slabs, and their entry counts kept in a store
    // shared by every table of that allocator.
    const source = this.allocator ?? (memory instanceof FrameAllocator ? memory : undefined);
    if (source !== undefined) {
      this.store = countStoreOf(source);
      this.basePfn = source.basePfn;
      this.slabs = source.slabs;
      this.slabBase = source.slabBasePfn;
      this.regionFrames = source.regionFrames;
    } else {
      this.store = undefined;
      this.basePfn = 0;
      this.slabs = [];
      this.slabBase = 0;
      this.regionFrames = 0;
    }
    if (options.root !== undefined) {
      if (options.root % FRAME_SIZE !== 0) throw new RangeError('root must be 4 KiB aligned');
      this.root = options.root;
    } else {
      if (this.allocator === undefined) throw new TypeError('a new table needs an allocator');
      const root = this.allocTable();
      if (root < 0) throw new RangeError(`${enc.format}: no memory for the top-level table`);
      this.root = root;
    }
    this.rootPfn = this.root / FRAME_SIZE;
  }

  get tableFrames(): number {
    return this.allocator?.owns(this.root) ? this.frames : 0;
  }

  // ---- format hooks --------------------------------------------------------

  /** Low/high flag words of a leaf for `prot`, or null when the prot cannot be mapped. */
  protected abstract leafFlags(prot: number, level: number): { lo: number; hi: number } | null;
  /** The fault (or null) of `access` against the AND of low words and the OR of high words on the path. */
  protected abstract checkAccess(
    andLo: number,
    orHi: number,
    access: number,
  ): TranslationFault | null;
  /** IOMMU_* prot granted by the path. */
  protected abstract protOf(andLo: number, orHi: number): number;
  /** The fault for an input address beyond the table. */
  protected abstract inputFault(): TranslationFault;

  // ---- map -------------------------------------------------------------------

  map(iova: number, pa: number, length: number, prot: number): number {
    checkAddress(iova, 'iova');
    checkAddress(pa, 'pa');
    checkAddress(length, 'length');
    if (this.allocator === undefined) {
      throw new TypeError(`${this.enc.format}: a walk-only table cannot be mapped`);
    }
    // Low bits through >>> 0 (exact for integers below 2^53): a double % is a slow fmod.
    if (
      length === 0 ||
      ((iova >>> 0) & 4095) !== 0 ||
      ((pa >>> 0) & 4095) !== 0 ||
      ((length >>> 0) & 4095) !== 0 ||
      iova + length > this.inputLimit ||
      pa + length > this.outputLimit
    ) {
      return -EINVAL;
    }
    const p = prot & 63;
    if (this.flagLo[p] === -1) {
      const f = this.leafFlags(prot, 1);
      this.flagLo[p] = f === null ? -2 : f.lo;
      this.flagHi[p] = f === null ? 0 : f.hi;
    }
    const flo1 = this.flagLo[p] as number;
    if (flo1 === -2) return -EINVAL;
    const fhi1 = this.flagHi[p] as number;
    const flo2 = flo1 | RADIX_PS;
    const fhi2 = fhi1;
    const big2 = (this.leafLevels & 4) !== 0;
    const big3 = (this.leafLevels & 8) !== 0;
    const present = this.enc.presentMask;
    const counts = (this.store as CountStore).counts;
    this.fresh = null;
    this.error = 0;
    let done = 0;
    while (done < length) {
      const cur = iova + done;
      const curPa = pa + done;
      const rem = length - done;
      let level = 1;
      const align = ((cur >>> 0) | (curPa >>> 0)) & 0x3fffffff;
      if (big3 && rem >= 1073741824 && align === 0) {
        level = 3;
      } else if (big2 && rem >= 2097152 && (align & 0x1fffff) === 0) {
        level = 2;
      }
      const words = this.tableFor(cur, level);
      if (words === undefined) break;
      const size = radixLevelSize(level);
      const lo = cur >>> 0;
      const hi = (cur - lo) / TWO32;
      let j = indexOf(lo, hi, level);
      let plo = curPa >>> 0;
      let phi = (curPa - plo) / TWO32;
      const flo = level === 1 ? flo1 : flo2;
      const fhi = level === 1 ? fhi1 : fhi2;
      let left = Math.floor(rem / size);
      // Within one table only its first slot can start a larger leaf, so fill on.
      let filled = 0;
      while (j < 512 && left > 0) {
        const w = j << 1;
        if (((words[w] as number) & present) !== 0) {
          this.error = EEXIST;
          break;
        }
        words[w] = plo | flo;
        words[w + 1] = phi | fhi;
        filled++;
        j++;
        left--;
        plo += size;
        if (plo >= TWO32) {
          plo -= TWO32;
          phi++;
        }
      }
      counts[this.tableRel] = (counts[this.tableRel] as number) + filled;
      done += filled * size;
      if (this.error !== 0) break;
    }
    if (this.error !== 0) {
      const err = this.error;
      this.rollback(iova, done);
      return -err;
    }
    this.fresh = null;
    return length;
  }

  /**
   * The words of the table at `level` that holds `iova`, creating missing
   * tables on the way; undefined (with `error` set) when a leaf blocks the
   * way or memory runs out. Leaves `tableRel` at that table's frame index.
   */
  private tableFor(iova: number, level: number): Uint32Array | undefined {
    const key = Math.floor(iova / 2097152);
    if (level === 1 && key === this.cacheKey) {
      this.tableRel = this.cacheRel;
      return this.cacheWords;
    }
    const lo = iova >>> 0;
    const hi = (iova - lo) / TWO32;
    const present = this.enc.presentMask;
    const counts = (this.store as CountStore).counts;
    let pfn = this.rootPfn;
    let words = this.memory.writeFrame(pfn) as Uint32Array;
    for (let l = this.levels; l > level; l--) {
      const w = indexOf(lo, hi, l) << 1;
      const elo = words[w] as number;
      if ((elo & present) === 0) {
        const table = this.allocTable();
        if (table < 0) {
          this.error = ENOMEM;
          return undefined;
        }
        if (this.fresh === null) this.fresh = [];
        this.fresh.push(table);
        const tlo = table % TWO32;
        words[w] = tlo | this.enc.tableBits;
        words[w + 1] = (table - tlo) / TWO32;
        const rel = pfn - this.basePfn;
        counts[rel] = (counts[rel] as number) + 1;
        pfn = table / FRAME_SIZE;
      } else if (l <= 3 && (elo & RADIX_PS) !== 0) {
        this.error = EEXIST;
        return undefined;
      } else {
        pfn = entryPfn(elo, words[w + 1] as number);
      }
      words = this.memory.writeFrame(pfn) as Uint32Array;
    }
    this.tableRel = pfn - this.basePfn;
    if (level === 1) {
      this.cacheKey = key;
      this.cacheWords = words;
      this.cacheRel = this.tableRel;
    }
    return words;
  }

  private allocTable(): number {
    const allocator = this.allocator as FrameAllocator;
    const pa = allocator.allocate(FRAME_SIZE);
    if (pa < 0) return -1;
    const rel = pa / FRAME_SIZE - allocator.basePfn;
    const store = this.store as CountStore;
    if (rel >= store.counts.length) {
      let n = store.counts.length * 2;
      while (n <= rel) n *= 2;
      const grown = new Uint16Array(n);
      grown.set(store.counts);
      store.counts = grown;
    }
    store.counts[rel] = 0;
    this.frames++;
    return pa;
  }

  private freeTable(pa: number): void {
    (this.allocator as FrameAllocator).free(pa, FRAME_SIZE);
    this.frames--;
  }

  // Undo a failed map: remove the leaves it wrote, then the tables it made
  // that are still empty (deepest first, so parents empty out in turn).
  private rollback(iova: number, done: number): void {
    if (done > 0) this.removeRange(iova, iova + done);
    const fresh = this.fresh;
    this.fresh = null;
    if (fresh === null) return;
    this.cacheKey = -1;
    const counts = (this.store as CountStore).counts;
    for (let k = fresh.length - 1; k >= 0; k--) {
      const table = fresh[k] as number;
      const allocator = this.allocator as FrameAllocator;
      if (!allocator.owns(table) || counts[table / FRAME_SIZE - this.basePfn] !== 0) continue;
      this.detachEmpty(table);
    }
  }

  // Clear the entry that points at the empty table `table` and free it.
  private detachEmpty(table: number): void {
    const present = this.enc.presentMask;
    const counts = (this.store as CountStore).counts;
    const search = (pfn: number, level: number): boolean => {
      const words = this.memory.writeFrame(pfn) as Uint32Array;
      for (let i = 0; i < 512; i++) {
        const w = i << 1;
        const elo = words[w] as number;
        if ((elo & present) === 0 || (level <= 3 && (elo & RADIX_PS) !== 0)) continue;
        const child = entryAddress(elo, words[w + 1] as number);
        if (child === table) {
          words[w] = 0;
          words[w + 1] = 0;
          const rel = pfn - this.basePfn;
          counts[rel] = (counts[rel] as number) - 1;
          this.freeTable(table);
          return true;
        }
        if (level > 2 && search(child / FRAME_SIZE, level - 1)) return true;
      }
      return false;
    };
    search(this.rootPfn, this.levels);
  }

  // ---- unmap -----------------------------------------------------------------

  unmap(iova: number, length: number): number {
    checkAddress(iova, 'iova');
    checkAddress(length, 'length');
    if (this.allocator === undefined) {
      throw new TypeError(`${this.enc.format}: a walk-only table cannot be unmapped`);
    }
    if (length === 0 || iova >= this.inputLimit) return 0;
    const end = Math.min(iova + length, this.inputLimit);
    // Fast path: the range lies in the cached leaf table and leaves it non-empty.
    const key = Math.floor(iova / 2097152);
    if (key === this.cacheKey && Math.floor((end - 1) / 2097152) === key) {
      const words = this.cacheWords as Uint32Array;
      const counts = (this.store as CountStore).counts;
      const first = (iova / 4096) & 511;
      const last = ((end - 1) / 4096) & 511;
      const present = this.enc.presentMask;
      let n = 0;
      for (let j = first; j <= last; j++) if (((words[j << 1] as number) & present) !== 0) n++;
      const count = counts[this.cacheRel] as number;
      if (n < count) {
        for (let j = first; j <= last; j++) {
          words[j << 1] = 0;
          words[(j << 1) + 1] = 0;
        }
        counts[this.cacheRel] = count - n;
        return n * 4096;
      }
    }
    return this.removeRange(iova, end);
  }

  private removeRange(start: number, end: number): number {
    return this.unmapLevel(this.rootPfn, this.levels, 0, start, end);
  }

  private unmapLevel(pfn: number, level: number, base: number, start: number, end: number): number {
    const words = this.memory.writeFrame(pfn) as Uint32Array;
    const counts = (this.store as CountStore).counts;
    const rel = pfn - this.basePfn;
    const size = radixLevelSize(level);
    const present = this.enc.presentMask;
    const i0 = start <= base ? 0 : Math.floor((start - base) / size);
    const i1 = end - base >= size * 512 ? 511 : Math.floor((end - 1 - base) / size);
    let removed = 0;
    let cleared = 0;
    for (let i = i0; i <= i1; i++) {
      const w = i << 1;
      const elo = words[w] as number;
      if ((elo & present) === 0) continue;
      const entryBase = base + i * size;
      if (level === 1 || (level <= 3 && (elo & RADIX_PS) !== 0)) {
        // A leaf the range only partly covers goes whole (the 6.17 Intel driver's rule).
        removed += size;
      } else {
        const childPfn = entryPfn(elo, words[w + 1] as number);
        if (start <= entryBase && end >= entryBase + size) {
          removed += this.releaseSubtree(childPfn, level - 1);
        } else {
          removed += this.unmapLevel(childPfn, level - 1, entryBase, start, end);
          if (counts[childPfn - this.basePfn] !== 0) continue;
          if (childPfn - this.basePfn === this.cacheRel) this.cacheKey = -1;
          this.freeTable(childPfn * FRAME_SIZE);
        }
      }
      words[w] = 0;
      words[w + 1] = 0;
      cleared++;
    }
    const left = (counts[rel] as number) - cleared;
    counts[rel] = left;
    if (level === 1 && left > 0) {
      // Page-by-page unmaps of this table take the fast path from now on.
      this.cacheKey = Math.floor(base / 2097152);
      this.cacheWords = words;
      this.cacheRel = rel;
    }
    return removed;
  }

  // Free a whole subtree; returns the bytes its leaves mapped.
  private releaseSubtree(pfn: number, level: number): number {
    const counts = (this.store as CountStore).counts;
    const rel = pfn - this.basePfn;
    let bytes = 0;
    if (level === 1) {
      bytes = (counts[rel] as number) * 4096;
    } else {
      const words = this.memory.readFrame(pfn) as Uint32Array;
      const size = radixLevelSize(level);
      const present = this.enc.presentMask;
      for (let i = 0; i < 512; i++) {
        const elo = words[i << 1] as number;
        if ((elo & present) === 0) continue;
        if (level <= 3 && (elo & RADIX_PS) !== 0) bytes += size;
        else bytes += this.releaseSubtree(entryPfn(elo, words[(i << 1) + 1] as number), level - 1);
      }
    }
    if (rel === this.cacheRel) this.cacheKey = -1;
    this.freeTable(pfn * FRAME_SIZE);
    return bytes;
  }

  // ---- translate ---------------------------------------------------------------

  translate(iova: number, access = 0, out: Translation = newTranslation()): Translation {
    checkAddress(iova, 'iova');
    out.ok = false;
    out.pa = 0;
    out.pageSize = 0;
    out.prot = 0;
    out.faultAddress = 0;
    if (iova >= this.inputLimit) {
      out.level = this.levels;
      out.fault = this.inputFault();
      return out;
    }
    const lo = iova >>> 0;
    const hi = (iova - lo) / TWO32;
    const present = this.enc.presentMask;
    const update = (access & ACCESS_UPDATE_AD) !== 0 && this.adEnabled;
    const memory = this.memory;
    const slabs = this.slabs;
    const slabBase = this.slabBase;
    const base = this.basePfn;
    const regionFrames = this.regionFrames;
    const pfnLimit = this.outputPfnLimit;
    let pfn = this.rootPfn;
    let andLo = -1;
    let orHi = 0;
    for (let level = this.levels; level >= 1; level--) {
      // Tables inside the allocator's region are read straight from its slab
      // (one short-array lookup); anything else through the memory interface.
      const rel = pfn - base;
      let words: Uint32Array | undefined;
      let off = 0;
      let inSlab = false;
      if (rel >= 0 && rel < regionFrames) {
        words = slabs[(pfn - slabBase) >>> SLAB_SHIFT];
        if (words !== undefined) {
          off = ((pfn - slabBase) & SLAB_MASK) << 10;
          inSlab = true;
        }
      }
      if (!inSlab) {
        words = memory.readFrame(pfn);
        if (words === undefined) {
          out.level = level;
          return this.fetchFault(out, pfn);
        }
      }
      const wi = indexOf(lo, hi, level) << 1;
      let elo = (words as Uint32Array)[off + wi] as number;
      const ehi = (words as Uint32Array)[off + wi + 1] as number;
      if ((elo & present) === 0) {
        out.level = level;
        out.fault = 'not-present';
        return out;
      }
      const next = entryPfn(elo, ehi);
      const leaf = level === 1 || (level <= 3 && (elo & RADIX_PS) !== 0);
      if (leaf) {
        out.level = level;
        const mask = (LEVEL_SIZE[level] as number) - 1; // below 2^30: a 32-bit mask
        if (
          next >= pfnLimit ||
          (elo & mask & ADDR_LO_MASK) !== 0 ||
          (this.leafLevels & (1 << level)) === 0
        ) {
          out.fault = 'reserved-bits';
          return out;
        }
        andLo &= elo;
        orHi |= ehi;
        const fault = this.checkAccess(andLo, orHi, access);
        if (fault !== null) {
          out.fault = fault;
          return out;
        }
        if (update) {
          const want =
            this.enc.accessedBit | ((access & ACCESS_WRITE) !== 0 ? this.enc.dirtyBit : 0);
          if ((elo & want) !== want) {
            elo |= want;
            if (!this.writeEntryLow(inSlab, words as Uint32Array, off + wi, pfn, wi, elo)) {
              return this.fetchFault(out, pfn);
            }
          }
        }
        out.ok = true;
        out.fault = null;
        out.pageSize = mask + 1;
        out.pa = next * FRAME_SIZE + (lo & mask);
        out.prot = this.protOf(andLo, orHi);
        return out;
      }
      if (next >= pfnLimit || (level > 3 && (elo & RADIX_PS) !== 0)) {
        out.level = level;
        out.fault = 'reserved-bits';
        return out;
      }
      andLo &= elo;
      orHi |= ehi;
      if (update && (elo & this.enc.accessedBit) === 0) {
        if (
          !this.writeEntryLow(
            inSlab,
            words as Uint32Array,
            off + wi,
            pfn,
            wi,
            elo | this.enc.accessedBit,
          )
        ) {
          out.level = level;
          return this.fetchFault(out, pfn);
        }
      }
      pfn = next;
    }
    out.fault = 'not-present';
    return out;
  }

  // Store a hardware A/D update: in place in a slab, else through the memory
  // interface (a frame read for walking may be the shared zero frame).
  private writeEntryLow(
    inSlab: boolean,
    words: Uint32Array,
    at: number,
    pfn: number,
    wi: number,
    value: number,
  ): boolean {
    if (inSlab) {
      words[at] = value;
      return true;
    }
    const frame = this.memory.writeFrame(pfn);
    if (frame === undefined) return false;
    frame[wi] = value;
    return true;
  }

  private fetchFault(out: Translation, pfn: number): Translation {
    out.fault = 'table-fetch';
    out.faultAddress = pfn * FRAME_SIZE;
    return out;
  }

  walk(iova: number): WalkStep[] {
    checkAddress(iova, 'iova');
    const steps: WalkStep[] = [];
    if (iova >= this.inputLimit) return steps;
    const lo = iova >>> 0;
    const hi = (iova - lo) / TWO32;
    let table = this.root;
    for (let level = this.levels; level >= 1; level--) {
      const words = this.memory.readFrame(table / FRAME_SIZE);
      if (words === undefined) break;
      const index = indexOf(lo, hi, level);
      const elo = words[index << 1] as number;
      const ehi = words[(index << 1) + 1] as number;
      const base = {
        level,
        tableAddress: table,
        index,
        entryAddress: table + index * 8,
        raw: entryToBigInt(elo, ehi),
      };
      if ((elo & this.enc.presentMask) === 0) {
        steps.push({ ...base, kind: 'invalid' });
        break;
      }
      if (level === 1 || (level <= 3 && (elo & RADIX_PS) !== 0)) {
        steps.push({ ...base, kind: 'leaf', pageSize: radixLevelSize(level) });
        break;
      }
      steps.push({ ...base, kind: 'table' });
      table = entryAddress(elo, ehi);
    }
    return steps;
  }

  // ---- whole-range visits ------------------------------------------------------

  /**
   * Call `visit` for every leaf overlapping [start, end) in IOVA order with the
   * words holding it; `visit` may rewrite the leaf's low word.
   */
  private visitLeaves(
    start: number,
    end: number,
    visit: (
      pfn: number,
      words: Uint32Array,
      w: number,
      iova: number,
      size: number,
      andLo: number,
      orHi: number,
    ) => void,
  ): void {
    const present = this.enc.presentMask;
    const rec = (pfn: number, level: number, base: number, andLo: number, orHi: number): void => {
      const words = this.memory.readFrame(pfn);
      if (words === undefined) return;
      const size = radixLevelSize(level);
      const i0 = Math.max(0, Math.floor((start - base) / size));
      const i1 = Math.min(511, Math.floor((end - 1 - base) / size));
      for (let i = i0; i <= i1; i++) {
        const w = i << 1;
        const elo = words[w] as number;
        if ((elo & present) === 0) continue;
        const ehi = words[w + 1] as number;
        const entryBase = base + i * size;
        if (level === 1 || (level <= 3 && (elo & RADIX_PS) !== 0)) {
          visit(pfn, words, w, entryBase, size, andLo & elo, orHi | ehi);
        } else {
          rec(entryPfn(elo, ehi), level - 1, entryBase, andLo & elo, orHi | ehi);
        }
      }
    };
    if (end > start) rec(this.rootPfn, this.levels, 0, -1, 0);
  }

  readAndClearDirty(iova: number, length: number, bitmap: DirtyBitmap, noClear = false): number {
    checkAddress(iova, 'iova');
    checkAddress(length, 'length');
    const dirty = this.enc.dirtyBit;
    let seen = 0;
    const end = Math.min(iova + length, this.inputLimit);
    this.visitLeaves(iova, end, (pfn, words, w, leafIova, size) => {
      const elo = words[w] as number;
      if ((elo & dirty) === 0) return;
      seen++;
      markDirty(bitmap, leafIova, size);
      if (!noClear) {
        const writable = this.memory.writeFrame(pfn);
        if (writable !== undefined) writable[w] = elo & ~dirty;
      }
    });
    return seen;
  }

  leaves(iova = 0, length = this.inputLimit - iova): LeafMapping[] {
    checkAddress(iova, 'iova');
    checkAddress(length, 'length');
    const list: LeafMapping[] = [];
    const end = Math.min(iova + length, this.inputLimit);
    this.visitLeaves(iova, end, (_pfn, words, w, leafIova, size, andLo, orHi) => {
      list.push({
        iova: leafIova,
        pa: entryAddress(words[w] as number, words[w + 1] as number),
        size,
        prot: this.protOf(andLo, orHi),
      });
    });
    return list;
  }

  free(): void {
    if (this.allocator === undefined) return;
    if (!this.allocator.owns(this.root)) return;
    this.releaseSubtree(this.rootPfn, this.levels);
    this.cacheKey = -1;
  }
}

function checkAddress(value: number, name: string): void {
  if (!(Number.isInteger(value) && value >= 0 && value <= Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`${name} must be a non-negative integer below 2^53, got ${value}`);
  }
}
