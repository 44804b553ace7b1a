/**
 * The page table of the iommufd selftest mock domain (Linux 6.17
 * drivers/iommu/iommufd/selftest.c).
 *
 * The kernel keeps one xarray value per 2 KiB IO page (MOCK_IO_PAGE_SIZE): the
 * physical address in 2 KiB units (bits 52:0, MOCK_PFN_MASK) plus flag bits
 * above it: START/LAST (bit 53, one bit for both: set on the first and the
 * last slot of every map_pages call), DIRTY (bit 54, set only by
 * IOMMU_TEST_OP_DIRTY) and HUGE (bit 55, slots of 1 MiB MOCK_HUGE_PAGE_SIZE
 * pages of a HUGE_IOVA device). The mock ignores prot.
 *
 * Here the slots live in simulated memory as a radix tree so a table dump is
 * what the model holds. Layout (ours; the kernel has no hardware format):
 * 4 KiB tables of 512 eight-byte entries; level 1 holds the slots and indexes
 * IOVA bits 19:11, level k bits 11+9(k-1) up; a non-leaf entry is the next
 * table's physical address with bit 0 set; a slot is the kernel's value, and
 * an all-zero slot is empty (a present slot is never zero: the slot mapping
 * physical address 0 is the first of its map call, so it carries START).
 * Five levels cover 56 bits, every IOVA a number can hold.
 */
import { EEXIST, EINVAL, ENOMEM } from '@iommufd-sim/uapi-types';
import type { FrameAllocator } from '../memory/frame-allocator.js';
import type { TableMemory } from '../memory/physical-memory.js';
import {
  type DirtyBitmap,
  entryToBigInt,
  type LeafMapping,
  markDirty,
  newTranslation,
  type PageTable,
  type PageTableGeometry,
  type PageTableOptions,
  type Translation,
  type WalkStep,
} from './format.js';

/** The mock's IO page: PAGE_SIZE / 2. */
export const MOCK_IO_PAGE_SIZE = 2048;
/** The mock's huge page (HUGE_IOVA devices): 512 IO pages. */
export const MOCK_HUGE_PAGE_SIZE = 512 * MOCK_IO_PAGE_SIZE;
/** Bits of a slot holding the physical address in 2 KiB units (ULONG_MAX / MOCK_IO_PAGE_SIZE). */
export const MOCK_PFN_MASK = (1n << 53n) - 1n;
/** Slot flag: the first slot of a map_pages call. */
export const MOCK_PFN_START_IOVA = 1n << 53n;
/** Slot flag: the last slot of a map_pages call (the same bit as START). */
export const MOCK_PFN_LAST_IOVA = 1n << 53n;
/** Slot flag: written by the device (IOMMU_TEST_OP_DIRTY). */
export const MOCK_PFN_DIRTY_IOVA = 1n << 54n;
/** Slot flag: part of a MOCK_HUGE_PAGE_SIZE page. */
export const MOCK_PFN_HUGE_IOVA = 1n << 55n;

// The same flags in the high word of a slot.
const HI_START = 1 << 21;
const HI_DIRTY = 1 << 22;
const HI_HUGE = 1 << 23;
const HI_PFN = (1 << 21) - 1;
const SLOT = 2048;
const HUGE = 1 << 20;
const TABLE = 4096;
const TWO32 = 4294967296;
const READ_WRITE = 3; // IOMMU_READ | IOMMU_WRITE
// Bytes one entry covers, by level.
const SPANS = [0, 2 ** 11, 2 ** 20, 2 ** 29, 2 ** 38, 2 ** 47, 2 ** 56];

/** One slot, decoded. */
export interface MockSlot {
  /** Physical address of the 2 KiB IO page. */
  readonly pa: number;
  /** START/LAST: first or last slot of a map_pages call. */
  readonly startOrLast: boolean;
  readonly dirty: boolean;
  readonly huge: boolean;
  /** The kernel's value. */
  readonly value: bigint;
}

/** How a {@link MockPageTable} is created. */
export interface MockPageTableOptions extends PageTableOptions {
  /** Also map 1 MiB pages (a MOCK_FLAGS_DEVICE_HUGE_IOVA device's domain). */
  readonly hugeIova?: boolean;
  /** IOVA width (default 56: five levels). */
  readonly inputBits?: number;
}

/** The selftest mock domain's slots, as a radix table in simulated memory. */
export class MockPageTable implements PageTable {
  readonly geometry: PageTableGeometry;
  private readonly alloc: FrameAllocator | undefined;
  private readonly mem: TableMemory;
  private readonly rootPa: number;
  private readonly levels: number;
  private readonly inputLimit: number;
  private readonly sizes: number[];
  private readonly basePfn: number;
  private frames = 0;
  private counts = new Uint16Array(256);
  private readonly tables: (Uint32Array | undefined)[] = [];
  // The level-1 table used last: its IOVA base (or -1), words and count slot.
  private cacheBase = -1;
  private cacheWords: Uint32Array = new Uint32Array(0);
  private cacheRel = 0;

  constructor(options: MockPageTableOptions = {}) {
    this.alloc = options.allocator;
    const mem = options.memory ?? options.allocator;
    if (mem === undefined) throw new TypeError('a mock table needs an allocator or a memory');
    this.mem = mem;
    const inputBits = options.inputBits ?? 56;
    if (!(inputBits >= 12 && inputBits <= 56))
      throw new RangeError('inputBits must be in [12, 56]');
    this.levels = Math.ceil((inputBits - 11) / 9);
    this.inputLimit = Math.min(2 ** inputBits, 2 ** 53);
    this.sizes = options.hugeIova === true ? [SLOT, HUGE] : [SLOT];
    this.basePfn = options.allocator?.basePfn ?? 0;
    this.geometry = {
      format: 'mock',
      inputBits,
      outputBits: 64,
      levels: this.levels,
      granule: SLOT,
      pageSizes: this.sizes,
    };
    if (options.root !== undefined) {
      if (this.alloc !== undefined) throw new TypeError('a mock table adopts no existing root');
      this.rootPa = options.root;
    } else {
      if (this.alloc === undefined) throw new TypeError('a new mock table needs an allocator');
      this.rootPa = this.newTable();
      if (this.rootPa < 0) throw new RangeError('no memory for the mock root table');
    }
  }

  get root(): number {
    return this.rootPa;
  }

  get tableFrames(): number {
    return this.frames;
  }

  /**
   * Map as iommu_map() and mock_domain_map_pages() do together: the range is
   * cut into map_pages calls the way the core's iommu_pgsize() picks them, and
   * each call flags its first and last slot START/LAST (and every slot HUGE
   * when its page size is 1 MiB). Unlike the mock (which WARNs and overwrites),
   * an occupied slot fails with -EEXIST and nothing changed.
   */
  map(iova: number, pa: number, length: number, _prot: number): number {
    if (
      !(
        Number.isInteger(iova) &&
        Number.isInteger(pa) &&
        Number.isInteger(length) &&
        iova >= 0 &&
        pa >= 0 &&
        length > 0
      ) ||
      iova % SLOT !== 0 ||
      pa % SLOT !== 0 ||
      length % SLOT !== 0 ||
      iova + length > this.inputLimit
    ) {
      return -EINVAL;
    }
    if (this.alloc === undefined) throw new TypeError('this mock table has no allocator');
    // Fast path: one slot in the level-1 table used last.
    if (length === SLOT && iova - (iova % HUGE) === this.cacheBase) {
      const w = ((iova % HUGE) / SLOT) << 1;
      const words = this.cacheWords;
      if ((words[w] as number) !== 0 || (words[w + 1] as number) !== 0) return -EEXIST;
      const pfn = pa / SLOT;
      words[w] = pfn >>> 0;
      words[w + 1] = Math.floor(pfn / TWO32) | HI_START;
      this.counts[this.cacheRel] = (this.counts[this.cacheRel] as number) + 1;
      return length;
    }
    let done = 0;
    while (done < length) {
      const chunk = this.pgsize(iova + done, pa + done, length - done);
      const r = this.writeChunk(iova + done, pa + done, chunk.pgsize, chunk.count);
      if (r < 0) {
        this.clear(iova, this.failedAt - iova);
        return this.failedErrno;
      }
      done += chunk.pgsize * chunk.count;
    }
    return length;
  }

  /**
   * Clear every present slot in [iova, iova+length), as mock_domain_unmap_pages
   * erases slot by slot (a part of a huge page goes alone). Returns the bytes
   * of slots that were present; 0 for a range not 2 KiB aligned (the core's
   * refusal).
   */
  unmap(iova: number, length: number): number {
    if (
      !(Number.isInteger(iova) && Number.isInteger(length) && iova >= 0 && length > 0) ||
      iova % SLOT !== 0 ||
      length % SLOT !== 0
    ) {
      return 0;
    }
    if (this.alloc === undefined) throw new TypeError('this mock table has no allocator');
    if (length === SLOT && iova - (iova % HUGE) === this.cacheBase) {
      const w = ((iova % HUGE) / SLOT) << 1;
      const words = this.cacheWords;
      const count = this.counts[this.cacheRel] as number;
      if (count > 1) {
        if ((words[w] as number) === 0 && (words[w + 1] as number) === 0) return 0;
        words[w] = 0;
        words[w + 1] = 0;
        this.counts[this.cacheRel] = count - 1;
        return SLOT;
      }
    }
    return this.clear(iova, Math.min(length, this.inputLimit - iova));
  }

  translate(iova: number, _access = 0, out: Translation = newTranslation()): Translation {
    out.level = 1;
    out.faultAddress = 0;
    out.prot = 0;
    out.pageSize = 0;
    out.pa = 0;
    if (!(iova >= 0 && iova < this.inputLimit)) {
      out.ok = false;
      out.fault = 'address-size';
      return out;
    }
    const words = this.leafWords(iova);
    if (words !== undefined) {
      const w = (Math.floor(iova / SLOT) & 511) << 1;
      const lo = words[w] as number;
      const hi = words[w + 1] as number;
      if (lo !== 0 || hi !== 0) {
        out.ok = true;
        out.fault = null;
        out.pa = ((hi & HI_PFN) * TWO32 + lo) * SLOT + (iova % SLOT);
        out.pageSize = SLOT;
        out.prot = READ_WRITE;
        return out;
      }
    }
    out.ok = false;
    out.fault = 'not-present';
    return out;
  }

  walk(iova: number): WalkStep[] {
    const steps: WalkStep[] = [];
    if (!(iova >= 0 && iova < this.inputLimit)) return steps;
    let table = this.rootPa;
    for (let level = this.levels; level >= 1; level--) {
      const words = this.mem.readFrame(Math.floor(table / TABLE));
      if (words === undefined) return steps;
      const index = Math.floor(iova / (SPANS[level] as number)) & 511;
      const lo = words[index * 2] as number;
      const hi = words[index * 2 + 1] as number;
      const raw = entryToBigInt(lo, hi);
      const step = { level, tableAddress: table, index, entryAddress: table + index * 8, raw };
      if (lo === 0 && hi === 0) {
        steps.push({ ...step, kind: 'invalid' });
        return steps;
      }
      if (level === 1) {
        steps.push({ ...step, kind: 'leaf', pageSize: SLOT });
        return steps;
      }
      steps.push({ ...step, kind: 'table' });
      table = hi * TWO32 + ((lo & ~1) >>> 0);
    }
    return steps;
  }

  /**
   * mock_domain_read_and_clear_dirty: from `iova`, look at the slot; a HUGE
   * slot stands for the 1 MiB page around it, any DIRTY slot of which makes
   * the page dirty, recorded from `iova` (as the kernel does, even when `iova`
   * is inside the page) for the page's size; then step by that size. Returns
   * the number of dirty pages recorded.
   */
  readAndClearDirty(iova: number, length: number, bitmap: DirtyBitmap, noClear = false): number {
    const end = iova + length;
    let cur = Math.floor(iova / SLOT) * SLOT;
    let seen = 0;
    do {
      const words = this.leafWords(cur);
      if (words === undefined) {
        cur = this.nextTableBoundary(cur);
        continue;
      }
      const w = (Math.floor(cur / SLOT) & 511) << 1;
      const hi = words[w + 1] as number;
      if ((words[w] as number) === 0 && hi === 0) {
        cur += SLOT;
        continue;
      }
      const pgsize = (hi & HI_HUGE) !== 0 ? HUGE : SLOT;
      const head = cur - (cur % pgsize);
      if (this.testAndClearDirty(head, pgsize, noClear)) {
        markDirty(bitmap, cur, pgsize);
        seen++;
      }
      cur += pgsize;
    } while (cur < end);
    return seen;
  }

  /**
   * IOMMU_TEST_OP_DIRTY: for every bit i set in `bits` (all when omitted),
   * mark dirty the slot at index (iova + i * pageSize) / pageSize, if present.
   * The index divides by `pageSize`, not the IO page size, exactly as 6.17
   * does (it lines up only for 2 KiB). Returns the slots marked, or -EINVAL
   * for a zero or misaligned size.
   */
  setDirty(iova: number, length: number, pageSize = SLOT, bits?: Uint8Array): number {
    if (!(pageSize > 0 && length > 0) || iova % pageSize !== 0 || length % pageSize !== 0) {
      return -EINVAL;
    }
    const max = length / pageSize;
    let count = 0;
    for (let i = 0; i < max; i++) {
      if (bits !== undefined && (((bits[i >>> 3] as number) >>> (i & 7)) & 1) === 0) continue;
      const slotIova = Math.floor((iova + i * pageSize) / pageSize) * SLOT;
      const words = this.leafWords(slotIova);
      if (words === undefined) continue;
      const w = (Math.floor(slotIova / SLOT) & 511) << 1;
      if ((words[w] as number) === 0 && (words[w + 1] as number) === 0) continue;
      words[w + 1] = ((words[w + 1] as number) | HI_DIRTY) >>> 0;
      count++;
    }
    return count;
  }

  /** The slot mapping `iova`, decoded, or null. */
  slot(iova: number): MockSlot | null {
    const words = this.leafWords(iova);
    if (words === undefined) return null;
    const w = (Math.floor(iova / SLOT) & 511) << 1;
    const lo = words[w] as number;
    const hi = words[w + 1] as number;
    if (lo === 0 && hi === 0) return null;
    return {
      pa: ((hi & HI_PFN) * TWO32 + lo) * SLOT,
      startOrLast: (hi & HI_START) !== 0,
      dirty: (hi & HI_DIRTY) !== 0,
      huge: (hi & HI_HUGE) !== 0,
      value: entryToBigInt(lo, hi),
    };
  }

  /** The physical address of the IO page holding `iova` (plus the offset), or -1 (the kernel's iova_to_phys). */
  physicalAddress(iova: number): number {
    const t = this.translate(iova);
    return t.ok ? t.pa : -1;
  }

  /** Every present slot in [iova, iova+length) as 2 KiB leaves, whole HUGE pages as one 1 MiB leaf. */
  leaves(iova = 0, length = this.inputLimit - iova): LeafMapping[] {
    const list: LeafMapping[] = [];
    const end = Math.min(iova + length, this.inputLimit);
    let cur = Math.floor(iova / SLOT) * SLOT;
    while (cur < end) {
      const words = this.leafWords(cur);
      if (words === undefined) {
        cur = this.nextTableBoundary(cur);
        continue;
      }
      const w = (Math.floor(cur / SLOT) & 511) << 1;
      const lo = words[w] as number;
      const hi = words[w + 1] as number;
      if (lo === 0 && hi === 0) {
        cur += SLOT;
        continue;
      }
      const pa = ((hi & HI_PFN) * TWO32 + lo) * SLOT;
      if (
        (hi & HI_HUGE) !== 0 &&
        cur % HUGE === 0 &&
        cur + HUGE <= end &&
        this.wholeHuge(words, pa)
      ) {
        list.push({ iova: cur, pa, size: HUGE, prot: READ_WRITE });
        cur += HUGE;
        continue;
      }
      list.push({ iova: cur, pa, size: SLOT, prot: READ_WRITE });
      cur += SLOT;
    }
    return list;
  }

  free(): void {
    if (this.alloc === undefined) return;
    this.freeTree(this.rootPa, this.levels);
    this.cacheBase = -1;
  }

  // ---- internals --------------------------------------------------------------------

  /** The core's iommu_pgsize(): the page size and count of the next map_pages call. */
  private pgsize(iova: number, pa: number, size: number): { pgsize: number; count: number } {
    const sizes = this.sizes;
    let pgsize = SLOT;
    for (const s of sizes) if (s <= size && iova % s === 0 && pa % s === 0) pgsize = s;
    let span = size;
    const next = sizes.find((s) => s > pgsize);
    if (next !== undefined && iova % next === pa % next) {
      const offset = next - (iova % next);
      if (offset + next <= size) span = offset;
    }
    return { pgsize, count: Math.floor(span / pgsize) };
  }

  private failedAt = 0;
  private failedErrno = 0;

  /** One map_pages call; on failure sets failedAt / failedErrno and returns -1. */
  private writeChunk(iova: number, pa: number, pgsize: number, count: number): number {
    const total = pgsize * count;
    const huge = pgsize !== SLOT ? HI_HUGE : 0;
    let done = 0;
    while (done < total) {
      const va = iova + done;
      const words = this.leafWords(va, true);
      if (words === undefined) {
        this.failedAt = va;
        this.failedErrno = -ENOMEM;
        return -1;
      }
      let w = (Math.floor(va / SLOT) & 511) << 1;
      const rel = this.cacheRel;
      let n = 0;
      while (done < total && w < 1024) {
        if ((words[w] as number) !== 0 || (words[w + 1] as number) !== 0) {
          this.counts[rel] = (this.counts[rel] as number) + n;
          this.failedAt = iova + done;
          this.failedErrno = -EEXIST;
          return -1;
        }
        const pfn = (pa + done) / SLOT;
        const edge = done === 0 || done + SLOT === total ? HI_START : 0;
        words[w] = pfn >>> 0;
        words[w + 1] = Math.floor(pfn / TWO32) | edge | huge;
        w += 2;
        n++;
        done += SLOT;
      }
      this.counts[rel] = (this.counts[rel] as number) + n;
    }
    return 0;
  }

  private newTable(): number {
    const alloc = this.alloc as FrameAllocator;
    const pa = alloc.allocate(TABLE);
    if (pa < 0) return -1;
    const rel = pa / TABLE - this.basePfn;
    if (rel >= this.counts.length) {
      let n = this.counts.length;
      while (n <= rel) n *= 2;
      const grown = new Uint16Array(n);
      grown.set(this.counts);
      this.counts = grown;
    }
    this.counts[rel] = 0;
    this.tables[rel] = alloc.blockWords(pa, TABLE);
    this.frames++;
    return pa;
  }

  private releaseTable(pa: number): void {
    (this.alloc as FrameAllocator).free(pa, TABLE);
    this.tables[pa / TABLE - this.basePfn] = undefined;
    this.frames--;
    this.cacheBase = -1;
  }

  private wordsOf(pa: number): Uint32Array | undefined {
    if (this.alloc !== undefined) return this.tables[pa / TABLE - this.basePfn];
    return this.mem.readFrame(Math.floor(pa / TABLE));
  }

  /**
   * The level-1 table holding the slot of `iova` (and makes it the cached
   * one), creating the missing tables when `create`; undefined when absent or
   * out of table memory (nothing left half-built).
   */
  private leafWords(iova: number, create = false): Uint32Array | undefined {
    const base = iova - (iova % HUGE);
    if (base === this.cacheBase) return this.cacheWords;
    let table = this.rootPa;
    let createdTop = -1;
    let createdParent: Uint32Array | undefined;
    let createdW = 0;
    let createdParentPa = 0;
    for (let level = this.levels; level > 1; level--) {
      const words = this.wordsOf(table);
      if (words === undefined) return undefined;
      const w = (Math.floor(iova / (SPANS[level] as number)) & 511) << 1;
      const lo = words[w] as number;
      if ((lo & 1) === 0) {
        if (!create) return undefined;
        const child = this.newTable();
        if (child < 0) {
          if (createdParent !== undefined) {
            this.freeTree(createdTop, 0);
            createdParent[createdW] = 0;
            createdParent[createdW + 1] = 0;
            this.bump(createdParentPa, -1);
          }
          return undefined;
        }
        words[w] = (child >>> 0) | 1;
        words[w + 1] = Math.floor(child / TWO32);
        this.bump(table, 1);
        if (createdParent === undefined) {
          createdTop = child;
          createdParent = words;
          createdW = w;
          createdParentPa = table;
        }
        table = child;
      } else {
        table = (words[w + 1] as number) * TWO32 + ((lo & ~1) >>> 0);
      }
    }
    const leaf = this.wordsOf(table);
    if (leaf !== undefined && this.alloc !== undefined) {
      this.cacheBase = base;
      this.cacheWords = leaf;
      this.cacheRel = table / TABLE - this.basePfn;
    }
    return leaf;
  }

  private bump(tablePa: number, by: number): void {
    const rel = tablePa / TABLE - this.basePfn;
    this.counts[rel] = (this.counts[rel] as number) + by;
  }

  /** The first IOVA after `iova` in a level-1 table other than the absent one holding `iova`. */
  private nextTableBoundary(iova: number): number {
    // Find the highest absent level on the path and skip its whole span.
    let table = this.rootPa;
    for (let level = this.levels; level > 1; level--) {
      const words = this.wordsOf(table);
      const span = SPANS[level] as number;
      const w = (Math.floor(iova / span) & 511) << 1;
      const lo = words === undefined ? 0 : (words[w] as number);
      if ((lo & 1) === 0) return (Math.floor(iova / span) + 1) * span;
      table = (words?.[w + 1] as number) * TWO32 + ((lo & ~1) >>> 0);
    }
    return iova - (iova % HUGE) + HUGE;
  }

  private testAndClearDirty(head: number, pgsize: number, noClear: boolean): boolean {
    let dirty = false;
    for (let cur = head; cur < head + pgsize - 1; cur += SLOT) {
      const words = this.leafWords(cur);
      if (words === undefined) continue;
      const w = (Math.floor(cur / SLOT) & 511) << 1;
      const hi = words[w + 1] as number;
      if ((hi & HI_DIRTY) === 0) continue;
      dirty = true;
      if (!noClear) words[w + 1] = (hi & ~HI_DIRTY) >>> 0;
    }
    return dirty;
  }

  private wholeHuge(words: Uint32Array, pa: number): boolean {
    for (let i = 0; i < 512; i++) {
      const lo = words[i << 1] as number;
      const hi = words[(i << 1) + 1] as number;
      if ((hi & HI_HUGE) === 0 || ((hi & HI_PFN) * TWO32 + lo) * SLOT !== pa + i * SLOT)
        return false;
    }
    return true;
  }

  /** Clear present slots in [iova, iova+length), freeing emptied tables; bytes cleared. */
  private clear(iova: number, length: number): number {
    if (length <= 0) return 0;
    return this.clearIn(this.rootPa, this.levels, 0, iova, iova + length);
  }

  private clearIn(table: number, level: number, base: number, from: number, to: number): number {
    const words = this.wordsOf(table) as Uint32Array;
    const rel = table / TABLE - this.basePfn;
    const span = SPANS[level] as number;
    let i = Math.floor((Math.max(from, base) - base) / span);
    const last = Math.min(511, Math.floor((to - 1 - base) / span));
    let count = this.counts[rel] as number;
    let cleared = 0;
    if (level === 1) {
      for (; i <= last; i++) {
        const w = i << 1;
        if ((words[w] as number) === 0 && (words[w + 1] as number) === 0) continue;
        words[w] = 0;
        words[w + 1] = 0;
        count--;
        cleared += SLOT;
      }
      this.counts[rel] = count;
      return cleared;
    }
    for (; i <= last; i++) {
      const w = i << 1;
      const lo = words[w] as number;
      if ((lo & 1) === 0) continue;
      const child = (words[w + 1] as number) * TWO32 + ((lo & ~1) >>> 0);
      const childBase = base + i * span;
      cleared += this.clearIn(
        child,
        level - 1,
        childBase,
        Math.max(from, childBase),
        Math.min(to, childBase + span),
      );
      if (this.counts[child / TABLE - this.basePfn] === 0) {
        this.releaseTable(child);
        words[w] = 0;
        words[w + 1] = 0;
        count--;
      }
    }
    this.counts[rel] = count;
    return cleared;
  }

  /** Free `table` and, above level 1, every table under it (level 0: follow whatever is present). */
  private freeTree(table: number, level: number): void {
    if (level !== 1) {
      const words = this.wordsOf(table) as Uint32Array;
      for (let i = 0; i < 1024; i += 2) {
        const lo = words[i] as number;
        if ((lo & 1) === 0) continue;
        const child = (words[i + 1] as number) * TWO32 + ((lo & ~1) >>> 0);
        this.freeTree(child, level === 0 ? 0 : level - 1);
        if (level === 0) break;
      }
    }
    this.releaseTable(table);
  }
}
