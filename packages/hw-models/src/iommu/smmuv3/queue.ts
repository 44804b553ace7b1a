/**
 * SMMUv3 circular queues in memory (command, event and PRI queues): a base
 * address and log2 size, PROD and CONS indices with the wrap bit just above
 * the index, PROD bit 31 as the event/PRI overflow flag and CONS bits 30:24
 * as the command error (SMMU_CERROR).
 */
import type { FrameAllocator } from '../../memory/frame-allocator.js';
import { FRAME_SIZE, type PhysicalMemory } from '../../memory/physical-memory.js';
import { readSmmuWords, writeSmmuWords } from './bits.js';

/** PROD.OVFLG / CONS.OVACKFLG. */
const OVERFLOW = 0x80000000;

/** One queue. */
export class SmmuQueue {
  /** Physical address of entry 0. */
  readonly base: number;
  /** Producer index register (index, wrap bit, and the overflow flag for output queues). */
  prod = 0;
  /** Consumer index register (index, wrap bit, SMMU_CERROR for the command queue). */
  cons = 0;
  private readonly bytes: number;

  constructor(
    /** Memory the entries live in. */
    readonly memory: PhysicalMemory,
    allocator: FrameAllocator,
    /** log2 of the number of entries. */
    readonly log2Size: number,
    /** Bytes per entry (16 or 32). */
    readonly entryBytes: number,
  ) {
    this.bytes = Math.max(FRAME_SIZE, entryBytes * 2 ** log2Size);
    const pa = allocator.allocate(this.bytes);
    if (pa < 0) throw new RangeError('no memory for an SMMU queue');
    this.base = pa;
  }

  /** Number of entries. */
  get capacity(): number {
    return 2 ** this.log2Size;
  }

  private get mask(): number {
    return (2 ** (this.log2Size + 1) - 1) >>> 0;
  }

  /** Entries between CONS and PROD. */
  get count(): number {
    const p = this.prod & this.mask;
    const c = this.cons & this.mask;
    return (p - c + 2 ** (this.log2Size + 1)) % 2 ** (this.log2Size + 1);
  }

  /** PROD.OVFLG differs from CONS.OVACKFLG: entries were lost since the consumer last acknowledged. */
  get overflowed(): boolean {
    return ((this.prod ^ this.cons) & OVERFLOW) !== 0;
  }

  /** Producer: append an entry; false (and the overflow flag toggled) when the queue is full. */
  push(words: readonly bigint[]): boolean {
    if (this.count === this.capacity) {
      this.prod = (this.prod ^ OVERFLOW) >>> 0;
      return false;
    }
    const idx = this.prod & (this.capacity - 1);
    writeSmmuWords(this.memory, this.base + idx * this.entryBytes, words);
    this.prod = ((this.prod & ~this.mask & OVERFLOW) | ((this.prod + 1) & this.mask)) >>> 0;
    return true;
  }

  /** Consumer: take the oldest entry, or undefined when empty. */
  pop(): bigint[] | undefined {
    if (this.count === 0) return undefined;
    const idx = this.cons & (this.capacity - 1);
    const words = readSmmuWords(
      this.memory,
      this.base + idx * this.entryBytes,
      this.entryBytes / 8,
    );
    this.cons = ((this.cons & ~this.mask) | ((this.cons + 1) & this.mask)) >>> 0;
    return words;
  }

  /** Consumer: acknowledge an overflow (copy PROD.OVFLG into CONS). */
  acknowledgeOverflow(): void {
    this.cons = ((this.cons & ~OVERFLOW) | (this.prod & OVERFLOW)) >>> 0;
  }

  /** The Q_BASE register value: address bits 51:5 and LOG2SIZE 4:0. */
  baseRegister(): bigint {
    return BigInt(this.base) | BigInt(this.log2Size);
  }
}
