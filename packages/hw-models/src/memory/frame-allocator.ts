/**
 * The allocator of page-table pages: naturally aligned blocks of one or more
 * 4 KiB frames from a region of physical memory, zeroed on allocation and
 * counted while in use.
 *
 * It is also the fastest {@link TableMemory}: frames it handed out are found
 * in a dense array indexed by frame number, so a walker over tables it owns
 * does no hash lookups.
 */
import {
  FRAME_SHIFT,
  FRAME_SIZE,
  type PhysicalMemory,
  type TableMemory,
} from './physical-memory.js';

/** log2 of the frames per slab (64 frames, 256 KiB per host allocation). */
export const SLAB_SHIFT = 6;
const SLAB_FRAMES = 1 << SLAB_SHIFT;

/** Where an allocator takes its frames from. */
export interface FrameAllocatorOptions {
  /** First byte of the region (4 KiB aligned). Default 64 GiB. */
  readonly base?: number;
  /** Size of the region in bytes (multiple of 4 KiB). Default 64 GiB. */
  readonly size?: number;
}

/** Allocates page-table pages inside a region of {@link PhysicalMemory}. */
export class FrameAllocator implements TableMemory {
  /** The memory the frames live in. */
  readonly memory: PhysicalMemory;
  /** First frame number of the region. */
  readonly basePfn: number;
  /** Frames in the region. */
  readonly regionFrames: number;
  // Index = pfn - basePfn; the words of every frame this allocator handed out.
  private readonly dense: (Uint32Array | undefined)[] = [];
  // Next never-used frame (relative), and freed blocks by log2(frames).
  private bump = 0;
  private readonly freeLists: number[][] = [];
  private inUse = 0;
  private peak = 0;
  /**
   * The words of every slab, by `(pfn - slabBasePfn) >>> SLAB_SHIFT`: a
   * walker finds entry `w` of frame `pfn` at `slab[((pfn - slabBasePfn) &
   * 63) << 10 | w]` with one lookup in a short array. Slabs are aligned to
   * their size in absolute frame numbers, so a naturally aligned block never
   * straddles two; one ArrayBuffer per table would cost a host allocation
   * per table page. Use it only for frames inside the region
   * (`pfn - basePfn` in [0, regionFrames)): there a slab and physical memory
   * hold the same words.
   */
  readonly slabs: (Uint32Array<ArrayBuffer> | undefined)[] = [];
  /** The frame number slab 0 starts at. */
  readonly slabBasePfn: number;

  constructor(memory: PhysicalMemory, options: FrameAllocatorOptions = {}) {
    const base = options.base ?? 64 * 2 ** 30;
    const size = options.size ?? 64 * 2 ** 30;
    if (base % FRAME_SIZE !== 0 || size % FRAME_SIZE !== 0 || size <= 0) {
      throw new RangeError('frame allocator region must be 4 KiB aligned and non-empty');
    }
    if (base + size > 2 ** memory.addressBits) {
      throw new RangeError(`frame allocator region ends past ${memory.addressBits}-bit memory`);
    }
    this.memory = memory;
    this.basePfn = base / FRAME_SIZE;
    this.regionFrames = size / FRAME_SIZE;
    this.slabBasePfn = Math.floor(this.basePfn / SLAB_FRAMES) * SLAB_FRAMES;
  }

  /** Frames currently allocated. */
  get framesInUse(): number {
    return this.inUse;
  }

  /** Bytes currently allocated. */
  get bytesInUse(): number {
    return this.inUse * FRAME_SIZE;
  }

  /** The most frames ever in use at once. */
  get peakFramesInUse(): number {
    return this.peak;
  }

  /**
   * Allocate a zeroed block of `bytes` (a power of two, at least 4 KiB),
   * aligned to its size. Returns its physical address, or -1 when the region
   * is exhausted (the caller answers ENOMEM).
   */
  allocate(bytes = FRAME_SIZE): number {
    const frames = bytes >>> FRAME_SHIFT;
    if (bytes < FRAME_SIZE || (frames & (frames - 1)) !== 0 || frames << FRAME_SHIFT !== bytes) {
      throw new RangeError(`table block size must be a power of two >= 4096, got ${bytes}`);
    }
    const order = 31 - Math.clz32(frames);
    let rel = this.freeLists[order]?.pop();
    if (rel === undefined) {
      // Align relative to the absolute frame number so blocks are naturally aligned.
      const aligned = Math.ceil((this.basePfn + this.bump) / frames) * frames - this.basePfn;
      if (aligned + frames > this.regionFrames) return -1;
      // Frames skipped for alignment become single free frames.
      for (let f = this.bump; f < aligned; f++) this.pushFree(0, f);
      rel = aligned;
      this.bump = aligned + frames;
    }
    const pfn = this.basePfn + rel;
    if (frames > SLAB_FRAMES) {
      this.memory.adoptFrames(pfn, new ArrayBuffer(bytes), frames);
    } else {
      const s = (pfn - this.slabBasePfn) >>> SLAB_SHIFT;
      let slab = this.slabs[s];
      if (slab === undefined) {
        slab = new Uint32Array(SLAB_FRAMES * (FRAME_SIZE / 4));
        this.slabs[s] = slab;
        // The slab's frames inside the region become physical memory at once
        // (unallocated ones read as zeros either way), so walkers may read the
        // slab directly for any frame of the region.
        const slabPfn = this.slabBasePfn + (s << SLAB_SHIFT);
        const from = Math.max(slabPfn, this.basePfn);
        const to = Math.min(slabPfn + SLAB_FRAMES, this.basePfn + this.regionFrames);
        this.memory.adoptFrames(from, slab.buffer, to - from, (from - slabPfn) * FRAME_SIZE);
      }
      // Someone may have written to the frames since they were freed.
      const first = ((pfn - this.slabBasePfn) & (SLAB_FRAMES - 1)) * (FRAME_SIZE / 4);
      slab.fill(0, first, first + frames * (FRAME_SIZE / 4));
    }
    for (let i = 0; i < frames; i++) this.dense[rel + i] = this.memory.readFrame(pfn + i);
    this.inUse += frames;
    if (this.inUse > this.peak) this.peak = this.inUse;
    return pfn * FRAME_SIZE;
  }

  /**
   * The words of a whole block allocated at `pa` (one array even when the
   * block spans several frames).
   */
  blockWords(pa: number, bytes = FRAME_SIZE): Uint32Array {
    const first = this.dense[pa / FRAME_SIZE - this.basePfn];
    if (first === undefined) throw new RangeError(`0x${pa.toString(16)} is not an allocated table`);
    if (bytes === FRAME_SIZE) return first;
    return new Uint32Array(first.buffer, first.byteOffset, bytes >>> 2);
  }

  /** Return a block allocated by {@link allocate}; its frames read as zeros again. */
  free(pa: number, bytes = FRAME_SIZE): void {
    const frames = bytes >>> FRAME_SHIFT;
    const rel = pa / FRAME_SIZE - this.basePfn;
    if (!Number.isInteger(rel) || rel < 0 || this.dense[rel] === undefined) {
      throw new RangeError(`0x${pa.toString(16)} is not an allocated table`);
    }
    for (let i = 0; i < frames; i++) {
      // Zero it where it is: a slab frame stays adopted so walkers reading the
      // slab and readers of physical memory agree.
      (this.dense[rel + i] as Uint32Array).fill(0);
      this.dense[rel + i] = undefined;
      if (frames > SLAB_FRAMES) this.memory.releaseFrame(this.basePfn + rel + i);
    }
    this.inUse -= frames;
    this.pushFree(31 - Math.clz32(frames), rel);
  }

  /** True when `pa` lies in a block this allocator handed out and has not freed. */
  owns(pa: number): boolean {
    return this.dense[Math.floor(pa / FRAME_SIZE) - this.basePfn] !== undefined;
  }

  readFrame(pfn: number): Uint32Array | undefined {
    const rel = pfn - this.basePfn;
    return (rel >= 0 ? this.dense[rel] : undefined) ?? this.memory.readFrame(pfn);
  }

  writeFrame(pfn: number): Uint32Array | undefined {
    const rel = pfn - this.basePfn;
    return (rel >= 0 ? this.dense[rel] : undefined) ?? this.memory.writeFrame(pfn);
  }

  private pushFree(order: number, rel: number): void {
    let list = this.freeLists[order];
    if (list === undefined) {
      list = [];
      this.freeLists[order] = list;
    }
    list.push(rel);
  }
}
