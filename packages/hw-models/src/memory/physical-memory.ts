/**
 * Simulated physical memory: sparse 4 KiB frames, allocated on first write.
 *
 * Frames are `Uint32Array`s of 1024 words so page-table walkers can read
 * 64-bit entries as two little-endian 32-bit halves without a DataView or a
 * bigint. Reads of memory never written return zeros and allocate nothing, so
 * a 1 TiB address space costs only what is touched.
 */

/** log2 of the frame size. */
export const FRAME_SHIFT = 12;
/** Bytes per frame (4 KiB, the x86-64 page size). */
export const FRAME_SIZE = 4096;
/** 32-bit words per frame. */
export const FRAME_WORDS = FRAME_SIZE / 4;

/** Options for {@link PhysicalMemory}. */
export interface PhysicalMemoryOptions {
  /** Physical address width in bits (default 52, the widest any modelled IOMMU outputs). */
  readonly addressBits?: number;
}

/**
 * Anything page-table walkers can read and update, frame by frame. Physical
 * memory, the page-table frame allocator (a faster path to the same frames)
 * and a stage-2-translated view of guest memory all implement it.
 */
export interface TableMemory {
  /**
   * The words of frame `pfn` for reading, or `undefined` when that frame
   * cannot be read (for example a guest table address that stage 2 does not map).
   */
  readFrame(pfn: number): Uint32Array | undefined;
  /** The words of frame `pfn` for writing (hardware accessed/dirty updates), or `undefined`. */
  writeFrame(pfn: number): Uint32Array | undefined;
}

// Shared by every read of untouched memory; never handed out for writing.
const ZERO_FRAME = new Uint32Array(FRAME_WORDS);

/** Sparse simulated physical memory addressed by 64-bit physical addresses. */
export class PhysicalMemory implements TableMemory {
  /** Physical address width in bits. */
  readonly addressBits: number;
  private readonly frames = new Map<number, Uint32Array>();
  // Frames backed by someone else's buffer (table slabs): zeroed in place,
  // never dropped by fill, so the owner's view and memory stay the same words.
  private readonly adopted = new Set<number>();
  private readonly limit: number;

  constructor(options: PhysicalMemoryOptions = {}) {
    const bits = options.addressBits ?? 52;
    if (!Number.isInteger(bits) || bits < 12 || bits > 52) {
      throw new RangeError(`addressBits must be an integer in [12, 52], got ${bits}`);
    }
    this.addressBits = bits;
    this.limit = 2 ** bits;
  }

  /** Number of frames that have been written (and so occupy host memory). */
  get framesTouched(): number {
    return this.frames.size;
  }

  /** Host bytes held by touched frames. */
  get bytesTouched(): number {
    return this.frames.size * FRAME_SIZE;
  }

  readFrame(pfn: number): Uint32Array {
    return this.frames.get(pfn) ?? ZERO_FRAME;
  }

  writeFrame(pfn: number): Uint32Array {
    let frame = this.frames.get(pfn);
    if (frame === undefined) {
      if (!(pfn >= 0 && pfn * FRAME_SIZE < this.limit && Number.isInteger(pfn))) {
        throw new RangeError(`frame ${pfn} is outside ${this.addressBits}-bit physical memory`);
      }
      frame = new Uint32Array(FRAME_WORDS);
      this.frames.set(pfn, frame);
    }
    return frame;
  }

  /**
   * Back `count` frames from `pfn` with `buffer` from byte `offset` (4 KiB
   * per frame), so a table larger than a frame (a 64 KiB granule) is one
   * typed array to its owner and ordinary frames to everyone else. Existing
   * contents are replaced.
   */
  adoptFrames(
    pfn: number,
    buffer: ArrayBuffer,
    count = buffer.byteLength / FRAME_SIZE,
    offset = 0,
  ): void {
    this.checkRange(pfn * FRAME_SIZE, count * FRAME_SIZE);
    for (let i = 0; i < count; i++) {
      this.frames.set(pfn + i, new Uint32Array(buffer, offset + i * FRAME_SIZE, FRAME_WORDS));
      this.adopted.add(pfn + i);
    }
  }

  /** Forget frame `pfn`: it reads as zeros again and costs nothing. */
  releaseFrame(pfn: number): void {
    this.frames.delete(pfn);
    this.adopted.delete(pfn);
  }

  /** Copy `length` bytes from physical address `pa` into `into` at `at` (a new array when omitted). */
  read(pa: number | bigint, length: number, into?: Uint8Array, at = 0): Uint8Array {
    const start = toAddress(pa);
    this.checkRange(start, length);
    const out = into ?? new Uint8Array(length);
    if (at < 0 || at + length > out.length) {
      throw new RangeError(`destination too small: ${length} bytes at ${at} of ${out.length}`);
    }
    let done = 0;
    while (done < length) {
      const addr = start + done;
      const pfn = Math.floor(addr / FRAME_SIZE);
      const offset = addr - pfn * FRAME_SIZE;
      const n = Math.min(FRAME_SIZE - offset, length - done);
      const frame = this.frames.get(pfn);
      if (frame === undefined) out.fill(0, at + done, at + done + n);
      else out.set(new Uint8Array(frame.buffer, frame.byteOffset + offset, n), at + done);
      done += n;
    }
    return out;
  }

  /** Copy `bytes` to physical address `pa`. */
  write(pa: number | bigint, bytes: Uint8Array): void {
    const start = toAddress(pa);
    this.checkRange(start, bytes.length);
    let done = 0;
    while (done < bytes.length) {
      const addr = start + done;
      const pfn = Math.floor(addr / FRAME_SIZE);
      const offset = addr - pfn * FRAME_SIZE;
      const n = Math.min(FRAME_SIZE - offset, bytes.length - done);
      const frame = this.writeFrame(pfn);
      new Uint8Array(frame.buffer, frame.byteOffset + offset, n).set(
        bytes.subarray(done, done + n),
      );
      done += n;
    }
  }

  /** Set `length` bytes from `pa` to `value`. */
  fill(pa: number | bigint, length: number, value = 0): void {
    const start = toAddress(pa);
    this.checkRange(start, length);
    if (value === 0 && length / FRAME_SIZE > this.frames.size + 2) {
      // Zeroing a range wider than all touched memory (freeing a large
      // mapping): visit the touched frames, not every frame of the range.
      this.zeroSparse(start, length);
      return;
    }
    let done = 0;
    while (done < length) {
      const addr = start + done;
      const pfn = Math.floor(addr / FRAME_SIZE);
      const offset = addr - pfn * FRAME_SIZE;
      const n = Math.min(FRAME_SIZE - offset, length - done);
      if (value === 0 && n === FRAME_SIZE && !this.adopted.has(pfn)) this.frames.delete(pfn);
      else if (value !== 0 || this.frames.has(pfn)) {
        const frame = this.writeFrame(pfn);
        new Uint8Array(frame.buffer, frame.byteOffset + offset, n).fill(value);
      }
      done += n;
    }
  }

  private zeroSparse(start: number, length: number): void {
    const end = start + length;
    for (const pfn of [...this.frames.keys()]) {
      const lo = Math.max(start, pfn * FRAME_SIZE);
      const hi = Math.min(end, (pfn + 1) * FRAME_SIZE);
      if (lo >= hi) continue;
      if (hi - lo === FRAME_SIZE && !this.adopted.has(pfn)) this.frames.delete(pfn);
      else {
        const frame = this.writeFrame(pfn);
        new Uint8Array(frame.buffer, frame.byteOffset + (lo - pfn * FRAME_SIZE), hi - lo).fill(0);
      }
    }
  }

  /** The little-endian 32-bit word at `pa` (4-byte aligned). */
  readU32(pa: number | bigint): number {
    const addr = toAddress(pa);
    this.checkAligned(addr, 4);
    return this.readFrame(Math.floor(addr / FRAME_SIZE))[(addr % FRAME_SIZE) >>> 2] as number;
  }

  /** Store the 32-bit word `value` at `pa` (4-byte aligned). */
  writeU32(pa: number | bigint, value: number): void {
    const addr = toAddress(pa);
    this.checkAligned(addr, 4);
    this.writeFrame(Math.floor(addr / FRAME_SIZE))[(addr % FRAME_SIZE) >>> 2] = value;
  }

  /** The little-endian 64-bit word at `pa` (8-byte aligned). */
  readU64(pa: number | bigint): bigint {
    const addr = toAddress(pa);
    this.checkAligned(addr, 8);
    const frame = this.readFrame(Math.floor(addr / FRAME_SIZE));
    const w = (addr % FRAME_SIZE) >>> 2;
    return (BigInt(frame[w + 1] as number) << 32n) | BigInt(frame[w] as number);
  }

  /** Store the 64-bit word `value` at `pa` (8-byte aligned). */
  writeU64(pa: number | bigint, value: bigint): void {
    const addr = toAddress(pa);
    this.checkAligned(addr, 8);
    const frame = this.writeFrame(Math.floor(addr / FRAME_SIZE));
    const w = (addr % FRAME_SIZE) >>> 2;
    const v = BigInt.asUintN(64, value);
    frame[w] = Number(v & 0xffffffffn);
    frame[w + 1] = Number(v >> 32n);
  }

  private checkRange(start: number, length: number): void {
    if (!Number.isInteger(length) || length < 0 || start + length > this.limit) {
      throw new RangeError(
        `[0x${start.toString(16)}, +0x${length.toString(16)}) is outside ${this.addressBits}-bit physical memory`,
      );
    }
  }

  private checkAligned(addr: number, align: number): void {
    this.checkRange(addr, align);
    if (addr % align !== 0)
      throw new RangeError(`0x${addr.toString(16)} is not ${align}-byte aligned`);
  }
}

/** A physical address as a plain number; bigints must be below 2^53. */
export function toAddress(pa: number | bigint): number {
  if (typeof pa === 'bigint') {
    if (pa < 0n || pa > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new RangeError(`address 0x${pa.toString(16)} is outside the modelled range`);
    }
    return Number(pa);
  }
  if (!Number.isInteger(pa) || pa < 0 || pa > Number.MAX_SAFE_INTEGER) {
    throw new RangeError(`address ${pa} is not a non-negative integer below 2^53`);
  }
  return pa;
}
