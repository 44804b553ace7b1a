/**
 * Arm VMSAv8-64 long-descriptor page tables (what io-pgtable-arm builds for
 * SMMUv3): stage 1 and stage 2, 4K/16K/64K granules, in simulated memory.
 *
 * Entry i of a table is words 2i (bits 31:0) and 2i+1 (bits 63:32) of the
 * table's frames; the walker reads them through a TableMemory, so the same
 * code walks host tables and (through stage 2) guest tables.
 *
 * Kernel rules modelled (Linux 6.17 io-pgtable-arm): map picks the largest
 * leaf that iova, pa and length allow; mapping over anything present is
 * -EEXIST; unmapping part of a block is refused (the split was removed in
 * 6.13), so unmap stops there; empty tables are freed. Stage-1 leaves carry
 * nG, AF, AP[1] unless IOMMU_PRIV, AP[2] for read-only, AttrIndx 1/0/2 for
 * cacheable/normal/MMIO, SH inner for cacheable (outer otherwise) and XN for
 * IOMMU_NOEXEC; with hardware dirty tracking writable leaves get DBM and
 * start out writable-dirty (AP[2] clear), as the kernel's ARM_HD quirk does.
 */
import { EEXIST, EINVAL, ENOMEM } from '@iommufd-sim/uapi-types';
import { FrameAllocator, SLAB_SHIFT } from '../memory/frame-allocator.js';
import { FRAME_SIZE, type TableMemory } from '../memory/physical-memory.js';
import {
  type ArmGranule,
  type ArmLpaeLayout,
  armContiguousEntries,
  armGranuleShift,
  armLeafSizes,
  armLevelShift,
  armLpaeLayout,
  armS2ConcatMandatory,
  armStartLevel,
} from './arm-lpae-geometry.js';
import {
  ACCESS_EXEC,
  ACCESS_PRIV,
  ACCESS_READ,
  ACCESS_UPDATE_AD,
  ACCESS_WRITE,
  type DirtyBitmap,
  entryToBigInt,
  IOMMU_CACHE,
  IOMMU_MMIO,
  IOMMU_NOEXEC,
  IOMMU_PRIV,
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

const TWO32 = 4294967296;
const SLAB_MASK = (1 << SLAB_SHIFT) - 1;
const TWO20 = 1048576;
const TWO36 = 2 ** 36;

// Low-word bits.
const DESC_VALID = 1;
const DESC_TABLE = 2; // with VALID: table (L0-L2) or page (L3)
const ATTR_AP_UNPRIV = 1 << 6; // S1 AP[1]; S2 S2AP read
const ATTR_AP_RDONLY = 1 << 7; // S1 AP[2]; S2 S2AP write
const ATTR_SH_OS = 2 << 8;
const ATTR_SH_IS = 3 << 8;
const ATTR_AF = 1 << 10;
const ATTR_NG = 1 << 11;
// High-word bits (bit n of the entry is bit n-32 here).
const HI_DBM = 1 << 19; // 51
const HI_CONT = 1 << 20; // 52
const HI_PXN = 1 << 21; // 53
const HI_UXN = 1 << 22; // 54 (S2: XN[1])
const HI_XN = HI_PXN | HI_UXN;
const HI_PXNTABLE = 1 << 27; // 59
const HI_XNTABLE = 1 << 28; // 60
const HI_APTABLE_NOEL0 = 1 << 29; // 61
const HI_APTABLE_RO = 1 << 30; // 62
const HI_ADDR = 0xffff; // output address bits 47:32

/** How an {@link ArmLpaePageTable} is built or walked. */
export interface ArmLpaePageTableOptions extends PageTableOptions {
  /** Stage 1 (VA -> IPA/PA, AP/AttrIndx attributes) or stage 2 (IPA -> PA, S2AP/MemAttr). */
  readonly stage: 1 | 2;
  /** Translation granule. Default 4 KiB. */
  readonly granule?: ArmGranule;
  /** Input address size in bits (the table's T0SZ is 64 minus this). Default 48. */
  readonly inputBits?: number;
  /** Output address size in bits (IPS / S2PS). Default 48; 52 only with a 64K granule. */
  readonly outputBits?: number;
  /** Leaf sizes map may use (a subset of what the granule allows, granule included). Default all. */
  readonly pageSizes?: readonly number[];
  /**
   * Start level of the walk, as an STE's S2SL0 selects it; the start table is
   * then concatenated when the input size needs more than one table.
   * Default: from the input size (and `concatenate`).
   */
  readonly startLevel?: number;
  /**
   * Stage 2: concatenate start tables to save a level. Default: only where
   * the architecture makes it mandatory, as Linux 6.14+ does.
   */
  readonly concatenate?: boolean;
  /**
   * Hardware dirty state (CD.HD / STE.S2HD, the kernel's ARM_HD quirk):
   * writable leaves are mapped with DBM, and a write with ACCESS_UPDATE_AD
   * makes a writable-clean leaf dirty instead of faulting.
   */
  readonly hardwareDirty?: boolean;
  /** Hardware access-flag update (CD.HA / STE.S2HA): AF=0 is set instead of faulting. */
  readonly hardwareAccessFlag?: boolean;
  /** Stage 2 with S2FWB: cacheable mappings get MemAttr 0b0110 (forced write-back). */
  readonly stage2Fwb?: boolean;
}

// One allocation made while descending, so a failed map can undo it.
interface NewTable {
  parentPfn: number;
  index: number;
  pa: number;
}

/** A VMSAv8-64 LPAE page table (formats 'arm-lpae-s1' and 'arm-lpae-s2'). */
export class ArmLpaePageTable implements PageTable {
  readonly geometry: PageTableGeometry;
  readonly root: number;
  /** Table shape: granule, levels, start-table size. */
  readonly layout: ArmLpaeLayout;
  /** 1 or 2. */
  readonly stage: 1 | 2;
  /** HTTU dirty-state update in walks (and DBM on writable leaves at map time). */
  hardwareDirty: boolean;
  /** HTTU access-flag update in walks. */
  hardwareAccessFlag: boolean;
  /**
   * Set by {@link translate}: the leaf reached is writable only through the
   * dirty-bit modifier and is still clean, so a cache must not keep its
   * write permission (the next write has to walk to record the dirty state).
   */
  lastWritableClean = false;

  private readonly memory: TableMemory;
  private readonly allocator: FrameAllocator | undefined;
  private readonly rootPfn: number;
  private readonly rootBytes: number;
  private readonly ownsRoot: boolean;
  private readonly granule: number;
  private readonly granuleFrames: number;
  private readonly startLevel: number;
  private readonly inputLimit: number;
  private readonly outputLimit: number;
  private readonly pa52: boolean;
  private readonly fwb: boolean;
  private readonly mapDbm: boolean;
  // Per level: 2^shift, index mask, leaf allowed at map time, leaf legal in a walk.
  private readonly scale = new Float64Array(4);
  private readonly shift = new Int32Array(4);
  // The allocator's slabs and region when tables are read from it (a direct
  // path to the words for walks), else empty.
  private readonly slabs: readonly (Uint32Array | undefined)[];
  private readonly slabBase: number;
  private readonly regionBase: number;
  private readonly regionFrames: number;
  private readonly mask = new Int32Array(4);
  private readonly mapLeaf = new Uint8Array(4);
  private readonly walkLeaf = new Uint8Array(4);
  private readonly entriesPerTable: number;
  private frames = 0;
  private freed = false;
  // Leaf attribute words per IOMMU_* prot value (index prot & 63), computed on first use.
  private readonly attrLo = new Int32Array(64);
  private readonly attrHi = new Int32Array(64);
  private readonly attrReady = new Uint8Array(64);
  // The last leaf-level table map/unmap reached, to skip the descent for the next page.
  private cacheLevel = -1;
  private cacheBase = 0;
  private cacheEnd = 0;
  private cachePfn = 0;
  private readonly newTables: NewTable[] = [];
  private partial = false;

  constructor(options: ArmLpaePageTableOptions) {
    const granule = options.granule ?? 4096;
    const granuleShift = armGranuleShift(granule);
    const inputBits = options.inputBits ?? 48;
    const outputBits = options.outputBits ?? 48;
    this.stage = options.stage;
    if (this.stage !== 1 && this.stage !== 2) throw new RangeError('stage must be 1 or 2');
    let concatenate = options.concatenate;
    if (concatenate === undefined && this.stage === 2 && options.startLevel === undefined) {
      const natural = armStartLevel(granuleShift, inputBits);
      concatenate = armS2ConcatMandatory(granule, natural, inputBits, outputBits);
    }
    this.layout = armLpaeLayout({
      granule,
      inputBits,
      outputBits,
      ...(options.startLevel === undefined ? {} : { startLevel: options.startLevel }),
      ...(concatenate === undefined ? {} : { concatenate: concatenate && this.stage === 2 }),
    });
    this.granule = granule;
    this.granuleFrames = granule / FRAME_SIZE;
    this.startLevel = this.layout.startLevel;
    this.inputLimit = 2 ** inputBits;
    this.outputLimit = 2 ** outputBits;
    this.pa52 = granule === 65536 && outputBits > 48;
    this.fwb = options.stage2Fwb === true;
    this.hardwareDirty = options.hardwareDirty === true;
    this.mapDbm = this.hardwareDirty;
    this.hardwareAccessFlag = options.hardwareAccessFlag === true;
    this.entriesPerTable = 2 ** this.layout.bitsPerLevel;

    const legal = armLeafSizes(granule, outputBits);
    const sizes = options.pageSizes === undefined ? legal : [...options.pageSizes];
    for (const s of sizes) {
      if (!legal.includes(s)) throw new RangeError(`page size ${s} is not a leaf of this format`);
    }
    if (!sizes.includes(granule)) throw new RangeError('page sizes must include the granule');
    for (let l = 0; l < 4; l++) {
      const shift = armLevelShift(granuleShift, l);
      this.scale[l] = 2 ** shift;
      this.shift[l] = shift;
      this.mask[l] =
        l === this.startLevel ? 2 ** this.layout.startBits - 1 : this.entriesPerTable - 1;
      const size = 2 ** shift;
      this.walkLeaf[l] = legal.includes(size) && l >= this.startLevel ? 1 : 0;
      this.mapLeaf[l] = sizes.includes(size) && l >= this.startLevel ? 1 : 0;
    }
    const usable = sizes.filter((s) => s < this.inputLimit || s === granule).sort((a, b) => a - b);
    this.geometry = {
      format: this.stage === 1 ? 'arm-lpae-s1' : 'arm-lpae-s2',
      inputBits,
      outputBits,
      levels: 4 - this.startLevel,
      granule,
      pageSizes: usable,
    };

    this.memory = options.memory ?? (options.allocator as TableMemory);
    this.allocator = options.allocator;
    const direct = this.memory instanceof FrameAllocator ? this.memory : undefined;
    this.slabs = direct?.slabs ?? [];
    this.slabBase = direct?.slabBasePfn ?? 0;
    this.regionBase = direct?.basePfn ?? 0;
    this.regionFrames = direct?.regionFrames ?? 0;
    // Hardware needs 64-byte alignment for tiny start tables; the allocator hands out whole frames.
    this.rootBytes = Math.max(FRAME_SIZE, 8 * 2 ** this.layout.startBits);
    if (options.root !== undefined) {
      this.root = options.root;
      this.ownsRoot = false;
    } else {
      if (this.allocator === undefined) {
        throw new TypeError('an LPAE table needs an allocator or an existing root');
      }
      const pa = this.allocator.allocate(this.rootBytes);
      if (pa < 0) throw new RangeError('no memory for the top-level table');
      this.root = pa;
      this.ownsRoot = true;
      this.frames = this.rootBytes / FRAME_SIZE;
    }
    if (this.memory === undefined) throw new TypeError('an LPAE table needs memory to walk');
    this.rootPfn = Math.floor(this.root / FRAME_SIZE);
  }

  get tableFrames(): number {
    return this.frames;
  }

  // ---- map -------------------------------------------------------------------

  map(iova: number, pa: number, length: number, prot: number): number {
    checkInteger(iova, 'iova');
    checkInteger(pa, 'pa');
    checkInteger(length, 'length');
    if (this.freed || this.allocator === undefined) throw new TypeError('table cannot be built');
    const g = this.granule;
    if (
      length <= 0 ||
      low(iova, g) !== 0 ||
      low(pa, g) !== 0 ||
      low(length, g) !== 0 ||
      iova + length > this.inputLimit ||
      pa + length > this.outputLimit ||
      (prot & (IOMMU_READ | IOMMU_WRITE)) === 0
    ) {
      return -EINVAL;
    }
    const p = prot & 63;
    if (this.attrReady[p] === 0) this.computeAttrs(p);
    const attrLo = this.attrLo[p] as number;
    const attrHi = this.attrHi[p] as number;
    const scale = this.scale;
    let done = 0;
    while (done < length) {
      const cur = iova + done;
      const curPa = pa + done;
      const rem = length - done;
      // Largest leaf that alignment of iova and pa and the remaining length allow.
      let level = 3;
      for (let l = this.startLevel; l < 3; l++) {
        const size = scale[l] as number;
        if (
          this.mapLeaf[l] === 1 &&
          rem >= size &&
          low(cur, size) === 0 &&
          low(curPa, size) === 0
        ) {
          level = l;
          break;
        }
      }
      const size = scale[level] as number;
      let tablePfn: number;
      if (level === this.cacheLevel && cur >= this.cacheBase && cur < this.cacheEnd) {
        tablePfn = this.cachePfn;
      } else {
        tablePfn = this.descend(cur, level);
        if (tablePfn < 0) {
          this.rollback(iova, done);
          return tablePfn;
        }
        if (level !== this.startLevel) {
          const span = scale[level - 1] as number;
          this.cacheLevel = level;
          this.cacheBase = cur - low(cur, span);
          this.cacheEnd = this.cacheBase + span;
          this.cachePfn = tablePfn;
        }
      }
      const first = Math.floor(cur / size) & (this.mask[level] as number);
      const count =
        Math.min(this.mask[level] as number, first + Math.floor(rem / size) - 1) - first + 1;
      const type = level === 3 ? DESC_VALID | DESC_TABLE : DESC_VALID;
      let frame: Uint32Array | undefined;
      let framePfn = -1;
      for (let k = 0; k < count; k++) {
        const i = first + k;
        const fp = tablePfn + (i >>> 9);
        if (fp !== framePfn) {
          frame = this.memory.writeFrame(fp);
          framePfn = fp;
        }
        const f = frame as Uint32Array;
        const w = (i & 511) << 1;
        if (((f[w] as number) & DESC_VALID) !== 0) {
          this.rollback(iova, done);
          return -EEXIST;
        }
        const a = curPa + k * size;
        const lo = a >>> 0;
        f[w] = (lo & 0xfffff000) | attrLo | type | (this.pa52 ? ((a / 2 ** 48) & 0xf) << 12 : 0);
        f[w + 1] = ((a / TWO32) & HI_ADDR) | attrHi;
        done += size;
      }
    }
    return length;
  }

  // The table at `level` covering `iova`, creating tables on the way; a frame
  // number, or -EEXIST (a block is in the way) / -ENOMEM.
  private descend(iova: number, level: number): number {
    const alloc = this.allocator as FrameAllocator;
    this.newTables.length = 0;
    let pfn = this.rootPfn;
    for (let l = this.startLevel; l < level; l++) {
      const i = Math.floor(iova / (this.scale[l] as number)) & (this.mask[l] as number);
      const frame = this.memory.writeFrame(pfn + (i >>> 9)) as Uint32Array;
      const w = (i & 511) << 1;
      const lo = frame[w] as number;
      if ((lo & DESC_VALID) === 0) {
        const pa = alloc.allocate(this.granule);
        if (pa < 0) {
          this.undoNewTables();
          return -ENOMEM;
        }
        this.frames += this.granuleFrames;
        this.newTables.push({ parentPfn: pfn, index: i, pa });
        frame[w] = ((pa >>> 0) & 0xfffff000) | DESC_VALID | DESC_TABLE | this.pa52Bits(pa);
        frame[w + 1] = (pa / TWO32) & HI_ADDR;
        pfn = pa / FRAME_SIZE;
      } else if ((lo & DESC_TABLE) !== 0) {
        pfn = this.entryPfn(lo, frame[w + 1] as number);
      } else {
        return -EEXIST;
      }
    }
    return pfn;
  }

  private undoNewTables(): void {
    const alloc = this.allocator as FrameAllocator;
    for (let k = this.newTables.length - 1; k >= 0; k--) {
      const t = this.newTables[k] as NewTable;
      const frame = this.memory.writeFrame(t.parentPfn + (t.index >>> 9)) as Uint32Array;
      const w = (t.index & 511) << 1;
      frame[w] = 0;
      frame[w + 1] = 0;
      alloc.free(t.pa, this.granule);
      this.frames -= this.granuleFrames;
    }
    this.newTables.length = 0;
    this.cacheLevel = -1;
  }

  // A failed map removes what it had mapped; the tables it made go with it.
  private rollback(iova: number, done: number): void {
    if (done > 0) {
      this.partial = false;
      this.unmapIn(this.rootPfn, this.startLevel, iova, iova + done);
    }
    this.cacheLevel = -1;
  }

  private computeAttrs(p: number): void {
    let lo = ATTR_AF;
    let hi = 0;
    if (this.stage === 1) {
      lo |= ATTR_NG;
      if ((p & IOMMU_WRITE) === 0 && (p & IOMMU_READ) !== 0) lo |= ATTR_AP_RDONLY;
      else if (this.mapDbm) hi |= HI_DBM;
      if ((p & IOMMU_PRIV) === 0) lo |= ATTR_AP_UNPRIV;
      if ((p & IOMMU_MMIO) !== 0) lo |= 2 << 2;
      else if ((p & IOMMU_CACHE) !== 0) lo |= 1 << 2;
    } else {
      if ((p & IOMMU_READ) !== 0) lo |= ATTR_AP_UNPRIV;
      if ((p & IOMMU_WRITE) !== 0) {
        lo |= ATTR_AP_RDONLY;
        if (this.mapDbm) hi |= HI_DBM;
      }
      if ((p & IOMMU_MMIO) !== 0) lo |= 0x1 << 2;
      else if ((p & IOMMU_CACHE) !== 0) lo |= (this.fwb ? 0x6 : 0xf) << 2;
      else lo |= 0x5 << 2;
    }
    lo |= (p & IOMMU_CACHE) !== 0 ? ATTR_SH_IS : ATTR_SH_OS;
    if ((p & IOMMU_NOEXEC) !== 0) hi |= HI_XN;
    this.attrLo[p] = lo;
    this.attrHi[p] = hi;
    this.attrReady[p] = 1;
  }

  // ---- unmap -----------------------------------------------------------------

  unmap(iova: number, length: number): number {
    checkInteger(iova, 'iova');
    checkInteger(length, 'length');
    if (this.freed || this.allocator === undefined) throw new TypeError('table cannot be built');
    if (length <= 0 || low(iova, this.granule) !== 0 || low(length, this.granule) !== 0) return 0;
    const end = Math.min(iova + length, this.inputLimit);
    if (iova >= end) return 0;
    this.partial = false;
    // One page: find its leaf table (usually the one map/unmap last used) and
    // clear the entry without the general range walk.
    if (length === this.granule && this.startLevel < 3 && this.cacheLeafTable(iova)) {
      const i = Math.floor(iova / this.granule) & (this.mask[3] as number);
      const frame = this.memory.writeFrame(this.cachePfn + (i >>> 9)) as Uint32Array;
      const w = (i & 511) << 1;
      if (((frame[w] as number) & DESC_VALID) === 0) return 0;
      frame[w] = 0;
      frame[w + 1] = 0;
      if (!this.tableEmpty(this.cachePfn, 3, i, i)) return this.granule;
      // The table emptied: let the full walk free it.
      const base = this.cacheBase;
      this.cacheLevel = -1;
      this.unmapIn(this.rootPfn, this.startLevel, base, base + (this.scale[2] as number));
      return this.granule;
    }
    const removed = this.unmapIn(this.rootPfn, this.startLevel, iova, end);
    return removed;
  }

  // Point the one-table cache at the leaf (level 3) table holding `iova`; false when there is none.
  private cacheLeafTable(iova: number): boolean {
    if (this.cacheLevel === 3 && iova >= this.cacheBase && iova < this.cacheEnd) return true;
    let pfn = this.rootPfn;
    for (let l = this.startLevel; l < 3; l++) {
      const i = Math.floor(iova / (this.scale[l] as number)) & (this.mask[l] as number);
      const frame = this.memory.readFrame(pfn + (i >>> 9));
      if (frame === undefined) return false;
      const w = (i & 511) << 1;
      const lo = frame[w] as number;
      if ((lo & (DESC_VALID | DESC_TABLE)) !== (DESC_VALID | DESC_TABLE)) return false;
      pfn = this.entryPfn(lo, frame[w + 1] as number);
    }
    const span = this.scale[2] as number;
    this.cacheLevel = 3;
    this.cacheBase = iova - low(iova, span);
    this.cacheEnd = this.cacheBase + span;
    this.cachePfn = pfn;
    return true;
  }

  // Remove the leaves inside [start, end) below the table at `pfn`; stops (and
  // sets `partial`) at a leaf only partly inside, as Linux 6.13+ refuses to split.
  private unmapIn(pfn: number, level: number, start: number, end: number): number {
    const size = this.scale[level] as number;
    const mask = this.mask[level] as number;
    const first = Math.floor(start / size) & mask;
    const last = Math.floor((end - 1) / size) & mask;
    let entryStart = start - (start % size);
    let removed = 0;
    let frame: Uint32Array | undefined;
    let framePfn = -1;
    for (let i = first; i <= last; i++, entryStart += size) {
      const fp = pfn + (i >>> 9);
      if (fp !== framePfn) {
        frame = this.memory.writeFrame(fp);
        framePfn = fp;
      }
      const f = frame as Uint32Array;
      const w = (i & 511) << 1;
      const lo = f[w] as number;
      if ((lo & DESC_VALID) === 0) continue;
      const entryEnd = entryStart + size;
      if (level === 3 || (lo & DESC_TABLE) === 0) {
        if (entryStart < start || entryEnd > end) {
          this.partial = true;
          break;
        }
        f[w] = 0;
        f[w + 1] = 0;
        removed += size;
        continue;
      }
      const child = this.entryPfn(lo, f[w + 1] as number);
      if (entryStart >= start && entryEnd <= end) {
        removed += this.freeTable(child, level + 1);
        f[w] = 0;
        f[w + 1] = 0;
      } else {
        const s = Math.max(start, entryStart);
        const e = Math.min(end, entryEnd);
        removed += this.unmapIn(child, level + 1, s, e);
        const cs = this.scale[level + 1] as number;
        const cm = this.mask[level + 1] as number;
        if (
          this.tableEmpty(child, level + 1, Math.floor(s / cs) & cm, Math.floor((e - 1) / cs) & cm)
        ) {
          f[w] = 0;
          f[w + 1] = 0;
          (this.allocator as FrameAllocator).free(child * FRAME_SIZE, this.granule);
          this.frames -= this.granuleFrames;
          this.cacheLevel = -1;
        }
      }
      if (this.partial) break;
    }
    return removed;
  }

  // True when no entry of the (non-start) table at `pfn` is valid; looks at
  // the touched range's ends and then outward, so sequential unmaps stop early.
  private tableEmpty(pfn: number, level: number, from: number, to: number): boolean {
    const n = level === this.startLevel ? (this.mask[level] as number) + 1 : this.entriesPerTable;
    if (this.partial) {
      for (let i = 0; i < n; i++) if (this.entryValid(pfn, i)) return false;
      return true;
    }
    if (this.entryValid(pfn, from) || this.entryValid(pfn, to)) return false;
    for (let i = to + 1; i < n; i++) if (this.entryValid(pfn, i)) return false;
    for (let i = from - 1; i >= 0; i--) if (this.entryValid(pfn, i)) return false;
    return true;
  }

  private entryValid(pfn: number, i: number): boolean {
    const frame = this.memory.readFrame(pfn + (i >>> 9));
    return frame !== undefined && ((frame[(i & 511) << 1] as number) & DESC_VALID) !== 0;
  }

  // Free the table at `pfn` and everything below it; returns the leaf bytes it held.
  private freeTable(pfn: number, level: number): number {
    let bytes = 0;
    const size = this.scale[level] as number;
    let frame = this.memory.readFrame(pfn) as Uint32Array;
    for (let i = 0; i < this.entriesPerTable; i++) {
      if ((i & 511) === 0 && i !== 0) frame = this.memory.readFrame(pfn + (i >>> 9)) as Uint32Array;
      const w = (i & 511) << 1;
      const lo = frame[w] as number;
      if ((lo & DESC_VALID) === 0) continue;
      if (level === 3 || (lo & DESC_TABLE) === 0) bytes += size;
      else bytes += this.freeTable(this.entryPfn(lo, frame[w + 1] as number), level + 1);
    }
    (this.allocator as FrameAllocator).free(pfn * FRAME_SIZE, this.granule);
    this.frames -= this.granuleFrames;
    this.cacheLevel = -1;
    return bytes;
  }

  // ---- translate ----------------------------------------------------------------

  translate(iova: number, access = 0, out: Translation = newTranslation()): Translation {
    this.lastWritableClean = false;
    out.ok = false;
    out.pa = 0;
    out.pageSize = 0;
    out.prot = 0;
    out.faultAddress = 0;
    if (!(iova >= 0 && iova < this.inputLimit)) {
      out.level = this.startLevel;
      out.fault = 'address-size';
      return out;
    }
    const stage1 = this.stage === 1;
    let pfn = this.rootPfn;
    let tableHi = 0; // S1 hierarchical attributes gathered from table descriptors
    const ilo = iova >>> 0;
    const ihi = (iova - ilo) / TWO32;
    for (let level = this.startLevel; level < 4; level++) {
      const scale = this.scale[level] as number;
      const sh = this.shift[level] as number;
      // The index from the address halves: no double division.
      const i =
        (sh >= 32 ? ihi >>> (sh - 32) : (ilo >>> sh) | (ihi << (32 - sh))) &
        (this.mask[level] as number);
      const fpfn = pfn + (i >>> 9);
      out.level = level;
      // Tables inside the allocator's region: straight from its slab.
      let frame: Uint32Array | undefined;
      let off = 0;
      const rel = fpfn - this.regionBase;
      if (rel >= 0 && rel < this.regionFrames) {
        frame = this.slabs[(fpfn - this.slabBase) >>> SLAB_SHIFT];
        off = ((fpfn - this.slabBase) & SLAB_MASK) << 10;
      }
      if (frame === undefined) {
        frame = this.memory.readFrame(fpfn);
        off = 0;
      }
      if (frame === undefined) {
        out.fault = 'table-fetch';
        out.faultAddress = pfn * FRAME_SIZE;
        return out;
      }
      const w = off + ((i & 511) << 1);
      const lo = frame[w] as number;
      const hi = frame[w + 1] as number;
      if ((lo & DESC_VALID) === 0) {
        out.fault = 'not-present';
        return out;
      }
      const isTable = (lo & DESC_TABLE) !== 0;
      if (level < 3 && isTable) {
        pfn = this.entryPfn(lo, hi);
        if (pfn * FRAME_SIZE >= this.outputLimit) {
          out.fault = 'address-size';
          return out;
        }
        tableHi |= hi;
        continue;
      }
      if (level === 3 ? !isTable : this.walkLeaf[level] === 0) {
        out.fault = 'reserved-bits'; // block at L3, or a block size the granule lacks
        return out;
      }
      // A leaf.
      const base = this.leafAddress(lo, hi, scale);
      if (base + scale > this.outputLimit) {
        out.fault = 'address-size';
        return out;
      }
      let size = scale;
      if ((hi & HI_CONT) !== 0)
        size = scale * armContiguousEntries(this.granule as ArmGranule, level);
      let prot: number;
      let clean = false;
      const dbm = (hi & HI_DBM) !== 0;
      if (stage1) {
        const ro = (lo & ATTR_AP_RDONLY) !== 0 || (tableHi & HI_APTABLE_RO) !== 0;
        clean = ro && dbm && (tableHi & HI_APTABLE_RO) === 0;
        prot = IOMMU_READ;
        if (!ro || (clean && this.hardwareDirty)) prot |= IOMMU_WRITE;
        if ((lo & ATTR_AP_UNPRIV) === 0 || (tableHi & HI_APTABLE_NOEL0) !== 0) prot |= IOMMU_PRIV;
        if ((hi & HI_XN) !== 0 || (tableHi & (HI_XNTABLE | HI_PXNTABLE)) !== 0)
          prot |= IOMMU_NOEXEC;
      } else {
        const writable = (lo & ATTR_AP_RDONLY) !== 0;
        clean = !writable && dbm;
        prot = (lo & ATTR_AP_UNPRIV) !== 0 ? IOMMU_READ : 0;
        if (writable || (clean && this.hardwareDirty)) prot |= IOMMU_WRITE;
        if ((hi & HI_XN) !== 0) prot |= IOMMU_NOEXEC;
      }
      out.pa = base + low(iova, scale);
      out.pageSize = size;
      out.prot = prot;
      if ((access & (ACCESS_READ | ACCESS_WRITE | ACCESS_EXEC)) !== 0) {
        const update = (access & ACCESS_UPDATE_AD) !== 0;
        if ((lo & ATTR_AF) === 0) {
          if (!this.hardwareAccessFlag) {
            out.fault = 'access-flag';
            return out;
          }
          if (update) this.setEntryBits(pfn, i, ATTR_AF, 0);
        }
        if (!this.permits(access, prot, lo, hi, tableHi)) {
          out.fault = 'permission';
          return out;
        }
        if ((access & ACCESS_WRITE) !== 0 && clean) {
          if (update) {
            // Hardware dirty update: S1 clears AP[2], S2 sets S2AP[1].
            if (stage1) this.setEntryBits(pfn, i, 0, 0, ATTR_AP_RDONLY);
            else this.setEntryBits(pfn, i, ATTR_AP_RDONLY, 0);
            clean = false;
          }
        }
      }
      this.lastWritableClean = clean && (prot & IOMMU_WRITE) !== 0;
      out.ok = true;
      out.fault = null;
      return out;
    }
    out.fault = 'not-present';
    return out;
  }

  private permits(access: number, prot: number, lo: number, hi: number, tableHi: number): boolean {
    const priv = (access & ACCESS_PRIV) !== 0;
    if ((access & ACCESS_WRITE) !== 0 && (prot & IOMMU_WRITE) === 0) return false;
    if (this.stage === 1) {
      // Unprivileged accesses need AP[1] (and no APTable[0]).
      if (!priv && (prot & IOMMU_PRIV) !== 0) return false;
      if ((access & ACCESS_EXEC) !== 0) {
        const xn = priv
          ? (hi & HI_PXN) !== 0 || (tableHi & HI_PXNTABLE) !== 0
          : (hi & HI_UXN) !== 0 || (tableHi & HI_XNTABLE) !== 0;
        if (xn) return false;
      }
      return true;
    }
    if ((access & (ACCESS_READ | ACCESS_EXEC)) !== 0 && (lo & ATTR_AP_UNPRIV) === 0) return false;
    if ((access & ACCESS_EXEC) !== 0 && (hi & HI_XN) !== 0) return false;
    return true;
  }

  private setEntryBits(pfn: number, i: number, setLo: number, setHi: number, clearLo = 0): void {
    const frame = this.memory.writeFrame(pfn + (i >>> 9));
    if (frame === undefined) return;
    const w = (i & 511) << 1;
    frame[w] = ((frame[w] as number) | setLo) & ~clearLo;
    frame[w + 1] = (frame[w + 1] as number) | setHi;
  }

  // ---- walk / leaves / dirty --------------------------------------------------------

  walk(iova: number): WalkStep[] {
    const steps: WalkStep[] = [];
    if (!(iova >= 0 && iova < this.inputLimit)) return steps;
    let pfn = this.rootPfn;
    for (let level = this.startLevel; level < 4; level++) {
      const scale = this.scale[level] as number;
      const i = Math.floor(iova / scale) & (this.mask[level] as number);
      const frame = this.memory.readFrame(pfn + (i >>> 9));
      if (frame === undefined) break;
      const w = (i & 511) << 1;
      const lo = frame[w] as number;
      const hi = frame[w + 1] as number;
      const tableAddress = pfn * FRAME_SIZE;
      const step = {
        level,
        tableAddress,
        index: i,
        entryAddress: tableAddress + i * 8,
        raw: entryToBigInt(lo, hi),
      };
      if ((lo & DESC_VALID) === 0) {
        steps.push({ ...step, kind: 'invalid' });
        break;
      }
      if (level < 3 && (lo & DESC_TABLE) !== 0) {
        steps.push({ ...step, kind: 'table' });
        pfn = this.entryPfn(lo, hi);
        continue;
      }
      const legal = level === 3 ? (lo & DESC_TABLE) !== 0 : this.walkLeaf[level] === 1;
      steps.push(legal ? { ...step, kind: 'leaf', pageSize: scale } : { ...step, kind: 'invalid' });
      break;
    }
    return steps;
  }

  leaves(iova = 0, length = this.inputLimit - iova): LeafMapping[] {
    const list: LeafMapping[] = [];
    const end = Math.min(iova + length, this.inputLimit);
    if (iova < end) {
      this.visitLeaves(this.rootPfn, this.startLevel, iova, end, (start, pa, size, lo, hi) => {
        list.push({ iova: start, pa, size, prot: this.leafProt(lo, hi) });
      });
    }
    return list;
  }

  readAndClearDirty(iova: number, length: number, bitmap: DirtyBitmap, noClear = false): number {
    const end = Math.min(iova + length, this.inputLimit);
    if (!(iova < end)) return 0;
    let count = 0;
    const stage1 = this.stage === 1;
    const visit = (
      start: number,
      _pa: number,
      size: number,
      lo: number,
      hi: number,
      frame: Uint32Array,
      w: number,
      entries: number,
    ): void => {
      if ((hi & HI_DBM) === 0) return;
      const dirty = stage1 ? (lo & ATTR_AP_RDONLY) === 0 : (lo & ATTR_AP_RDONLY) !== 0;
      if (!dirty) return;
      count++;
      markDirty(bitmap, start, size);
      if (!noClear) {
        // Back to writable-clean: S1 sets AP[2], S2 clears S2AP[1]. A contiguous
        // span is one leaf to the caller but every entry of it holds the state.
        for (let k = 0; k < entries; k++) {
          const wk = w + 2 * k;
          frame[wk] = stage1
            ? (frame[wk] as number) | ATTR_AP_RDONLY
            : (frame[wk] as number) & ~ATTR_AP_RDONLY;
        }
      }
    };
    this.visitLeaves(this.rootPfn, this.startLevel, iova, end, visit);
    return count;
  }

  // Calls `fn` for every leaf overlapping [start, end), in order; a contiguous
  // span is reported once, from its first entry.
  private visitLeaves(
    pfn: number,
    level: number,
    start: number,
    end: number,
    fn: (
      iova: number,
      pa: number,
      size: number,
      lo: number,
      hi: number,
      frame: Uint32Array,
      w: number,
      entries: number,
    ) => void,
  ): void {
    const size = this.scale[level] as number;
    const mask = this.mask[level] as number;
    const first = Math.floor(start / size) & mask;
    const last = Math.floor((end - 1) / size) & mask;
    let entryStart = start - (start % size);
    for (let i = first; i <= last; i++, entryStart += size) {
      const frame = this.memory.readFrame(pfn + (i >>> 9));
      if (frame === undefined) continue;
      const w = (i & 511) << 1;
      const lo = frame[w] as number;
      const hi = frame[w + 1] as number;
      if ((lo & DESC_VALID) === 0) continue;
      if (level < 3 && (lo & DESC_TABLE) !== 0) {
        const s = Math.max(start, entryStart);
        this.visitLeaves(this.entryPfn(lo, hi), level + 1, s, Math.min(end, entryStart + size), fn);
        continue;
      }
      if (level === 3 ? (lo & DESC_TABLE) === 0 : this.walkLeaf[level] === 0) continue;
      const pa = this.leafAddress(lo, hi, size);
      if ((hi & HI_CONT) !== 0) {
        const n = armContiguousEntries(this.granule as ArmGranule, level);
        const k = i % n;
        const spanFirst = i - k;
        // Report the span from its first entry (its words hold the span's state).
        const fw = ((spanFirst & 511) << 1) >>> 0;
        const spanFrame =
          spanFirst >>> 9 === i >>> 9 ? frame : this.memory.readFrame(pfn + (spanFirst >>> 9));
        if (spanFrame !== undefined) {
          fn(entryStart - k * size, pa - k * size, size * n, lo, hi, spanFrame, fw, n);
        }
        const skip = n - k - 1;
        i += skip;
        entryStart += skip * size;
        continue;
      }
      fn(entryStart, pa, size, lo, hi, frame, w, 1);
    }
  }

  private leafProt(lo: number, hi: number): number {
    const dbm = (hi & HI_DBM) !== 0;
    let prot: number;
    if (this.stage === 1) {
      prot = IOMMU_READ;
      if ((lo & ATTR_AP_RDONLY) === 0 || dbm) prot |= IOMMU_WRITE;
      if ((lo & ATTR_AP_UNPRIV) === 0) prot |= IOMMU_PRIV;
    } else {
      prot = (lo & ATTR_AP_UNPRIV) !== 0 ? IOMMU_READ : 0;
      if ((lo & ATTR_AP_RDONLY) !== 0 || dbm) prot |= IOMMU_WRITE;
    }
    if ((hi & HI_XN) !== 0) prot |= IOMMU_NOEXEC;
    return prot;
  }

  // ---- free -----------------------------------------------------------------------

  free(): void {
    if (this.freed) return;
    this.freed = true;
    const alloc = this.allocator;
    if (alloc === undefined) return;
    const n = (this.mask[this.startLevel] as number) + 1;
    if (this.startLevel < 3) {
      for (let i = 0; i < n; i++) {
        const frame = this.memory.readFrame(this.rootPfn + (i >>> 9));
        if (frame === undefined) continue;
        const w = (i & 511) << 1;
        const lo = frame[w] as number;
        if ((lo & (DESC_VALID | DESC_TABLE)) !== (DESC_VALID | DESC_TABLE)) continue;
        const child = this.entryPfn(lo, frame[w + 1] as number);
        if (alloc.owns(child * FRAME_SIZE)) this.freeTable(child, this.startLevel + 1);
      }
    }
    if (this.ownsRoot) {
      alloc.free(this.root, this.rootBytes);
      this.frames -= this.rootBytes / FRAME_SIZE;
    }
    this.cacheLevel = -1;
  }

  // ---- entry fields -------------------------------------------------------------------

  // Frame number of a table descriptor's next-level table (bits 47:12, and 51:48 in 15:12 with 52-bit 64K).
  private entryPfn(lo: number, hi: number): number {
    let pfn = (hi & HI_ADDR) * TWO20 + ((lo >>> 12) & ~(this.granuleFrames - 1));
    if (this.pa52) pfn += ((lo >>> 12) & 0xf) * TWO36;
    return pfn;
  }

  // Output address of a leaf of `size` bytes.
  private leafAddress(lo: number, hi: number, size: number): number {
    let pa = (hi & HI_ADDR) * TWO32 + ((lo & 0xfffff000) >>> 0);
    if (this.pa52) pa = pa - low(pa, 65536) + ((lo >>> 12) & 0xf) * 2 ** 48;
    return pa - low(pa, size);
  }

  private pa52Bits(pa: number): number {
    return this.pa52 ? ((pa / 2 ** 48) & 0xf) << 12 : 0;
  }
}

// x mod size for a power-of-two size, without a floating-point remainder
// (which V8 compiles to a libm call for values above 2^31).
function low(x: number, size: number): number {
  return size <= 0x80000000 ? (x >>> 0) & (size - 1) : x % size;
}

function checkInteger(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative safe integer, got ${value}`);
  }
}
