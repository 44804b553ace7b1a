/**
 * What the single- and multi-producer rings share: the layout of the control
 * words at the start of the buffer, the options, the exact counters, poll-like
 * readiness and the waits. The hot paths (claim/commit, peek/release) live in
 * each ring's own file.
 */
import { ringCapacity } from './capacity.js';
import {
  POLLIN,
  POLLOUT,
  POLLRDNORM,
  POLLWRNORM,
  ReadinessSignal,
  ringDoorbell,
  waitDoorbell,
} from './readiness.js';

/**
 * What a ring does with a record that arrives while it is full. Either way the
 * push returns false and the record is counted, never silently lost:
 * `'reject'` counts it in `rejected` (the producer still holds it and may wait
 * and retry); `'drop'` counts it in `dropped` (it is gone, as a vEVENT is when
 * the vEVENTQ is full). Overwriting the oldest record is not offered: the
 * consumer may be reading it at that moment, and a lock-free ring cannot take
 * it back without risking a torn read.
 */
export type FullPolicy = 'reject' | 'drop';

/** The two ring kinds; the kind is stored in the buffer so that `attachRing` can tell. */
export type RingKind = 'spsc' | 'mpsc';

/** How to create a ring: its record size and its capacity, in records or in bytes. */
export interface RingOptions {
  /** Bytes per record: a positive multiple of 4 (usually 40, 48, 64 or 128). */
  readonly recordSize: number;
  /** Records the ring holds. Give this or `ringBytes`. */
  readonly capacity?: number;
  /** Bytes of record storage; the capacity is `ringCapacity(ringBytes, recordSize)`. */
  readonly ringBytes?: number;
  /** What a push into a full ring does; `'reject'` when not given. */
  readonly fullPolicy?: FullPolicy;
  /** A SharedArrayBuffer (usable from several threads) when true, the default; else an ArrayBuffer. */
  readonly shared?: boolean;
}

/** The counters of a ring, exact whenever no push or pop is in flight. */
export interface RingStats {
  /** Records committed (for the multi-producer ring: slots claimed, committed or about to be). */
  readonly written: number;
  /** Records consumed. */
  readonly read: number;
  /** Records refused while full under the `'drop'` policy (gone). */
  readonly dropped: number;
  /** Pushes refused while full under the `'reject'` policy (the producer kept the record). */
  readonly rejected: number;
  /** Records waiting: `written - read`. */
  readonly waiting: number;
}

/** The largest capacity a ring accepts (positions must stay well inside 32 bits). */
export const MAX_RING_CAPACITY = 1 << 24;

// Control words, one 64-byte cache line per writer so that the producer's and
// the consumer's stores do not bounce the same line between cores.
const MAGIC = 0x52494e47; // 'RING'
export const W_MAGIC = 0;
export const W_KIND = 1;
export const W_RECORD_SIZE = 2;
export const W_CAPACITY = 3;
export const W_POLICY = 4;
/** Multi-producer ring: positions run modulo this multiple of the capacity. */
export const W_MODULUS = 5;
export const W_TAIL = 16;
export const W_TAIL_HI = 17;
export const W_DROPPED = 18;
export const W_DROPPED_HI = 19;
export const W_REJECTED = 20;
export const W_REJECTED_HI = 21;
export const W_HEAD = 32;
export const W_HEAD_HI = 33;
/** Multi-producer ring: the consumer's position (modulo M), for producers' full check. */
export const W_HEAD_POSITION = 34;
/** Multi-producer ring: records of a committed run the consumer has taken but not read. */
export const W_HEAD_RUN_LEFT = 35;
export const W_CONSUMER_WAITING = 48;
export const W_PRODUCERS_WAITING = 49;
export const W_CLOSED = 50;
export const W_DATA_BELL = 64;
export const W_SPACE_BELL = 65;
const HEADER_WORDS = 80;
// A blocking wait first re-checks this many times: when the other side runs on
// another core, the record is often a few hundred nanoseconds away, far less
// than a futex sleep and wake-up.
const SPIN_CHECKS = 100;
/** Bytes of control words before the record storage. */
export const RING_HEADER_BYTES = HEADER_WORDS * 4;

const KIND_CODES: Record<RingKind, number> = { spsc: 1, mpsc: 2 };
const POLICY_CODES: Record<FullPolicy, number> = { reject: 0, drop: 1 };

const align64 = (n: number): number => Math.ceil(n / 64) * 64;

/**
 * Bytes of per-slot words (multi-producer ring only: a sequence word and a
 * run length per slot), padded to a cache line.
 */
function slotWordBytes(kind: RingKind, capacity: number): number {
  return kind === 'mpsc' ? align64(capacity * 8) : 0;
}

/** The byte length of the buffer a ring of this kind, record size and capacity needs. */
export function ringByteLength(kind: RingKind, recordSize: number, capacity: number): number {
  checkGeometry(kind, recordSize, capacity);
  return RING_HEADER_BYTES + slotWordBytes(kind, capacity) + capacity * recordSize;
}

function checkGeometry(kind: RingKind, recordSize: number, capacity: number): void {
  if (!Number.isInteger(recordSize) || recordSize <= 0 || recordSize % 4 !== 0) {
    throw new RangeError(`record size ${recordSize} is not a positive multiple of 4`);
  }
  const least = kind === 'mpsc' ? 2 : 1;
  if (!Number.isInteger(capacity) || capacity < least || capacity > MAX_RING_CAPACITY) {
    throw new RangeError(
      `capacity ${capacity} is outside ${least}..${MAX_RING_CAPACITY} for a ${kind} ring`,
    );
  }
}

/** Allocates and initialises a ring buffer; the ring classes attach to what this returns. */
export function allocateRing(
  kind: RingKind,
  options: RingOptions,
): ArrayBuffer | SharedArrayBuffer {
  const { recordSize } = options;
  if ((options.capacity === undefined) === (options.ringBytes === undefined)) {
    throw new RangeError('give exactly one of capacity and ringBytes');
  }
  const capacity = options.capacity ?? ringCapacity(options.ringBytes ?? 0, recordSize);
  const bytes = ringByteLength(kind, recordSize, capacity);
  const buffer = options.shared === false ? new ArrayBuffer(bytes) : new SharedArrayBuffer(bytes);
  const ctl = new Int32Array(buffer, 0, HEADER_WORDS);
  ctl[W_KIND] = KIND_CODES[kind];
  ctl[W_RECORD_SIZE] = recordSize;
  ctl[W_CAPACITY] = capacity;
  ctl[W_POLICY] = POLICY_CODES[options.fullPolicy ?? 'reject'];
  // The largest multiple of the capacity up to 2^30: positions wrap there, so
  // a slot index is position % capacity even across the wrap.
  ctl[W_MODULUS] = capacity * Math.floor(2 ** 30 / capacity);
  if (kind === 'mpsc') {
    // -1 is no position: no slot looks committed before its first producer.
    new Int32Array(buffer, RING_HEADER_BYTES, capacity).fill(-1);
  }
  Atomics.store(ctl, W_MAGIC, MAGIC);
  return buffer;
}

/** The kind of ring stored in `buffer`; throws TypeError if it holds no ring. */
export function ringKindOf(buffer: ArrayBuffer | SharedArrayBuffer): RingKind {
  if (buffer.byteLength < RING_HEADER_BYTES) throw new TypeError('buffer too small for a ring');
  const ctl = new Int32Array(buffer, 0, HEADER_WORDS);
  if (Atomics.load(ctl, W_MAGIC) !== MAGIC) throw new TypeError('buffer holds no ring');
  const code = ctl[W_KIND];
  if (code === KIND_CODES.spsc) return 'spsc';
  if (code === KIND_CODES.mpsc) return 'mpsc';
  throw new TypeError(`unknown ring kind ${code}`);
}

// Rings over a plain ArrayBuffer live in one thread; their waiters are woken
// through these signals, shared by every ring object over the same buffer.
const localSignals = new WeakMap<
  ArrayBuffer | SharedArrayBuffer,
  { data: ReadinessSignal; space: ReadinessSignal }
>();

/**
 * Reads a 64-bit total kept as a low word and a high word. A single writer
 * makes the high word odd while the low word wraps, so a reader retries until
 * it sees the same even high word on both sides of the low word.
 */
export function readTotal(ctl: Int32Array, lo: number, hi: number): number {
  for (;;) {
    const h1 = Atomics.load(ctl, hi);
    const l = Atomics.load(ctl, lo);
    const h2 = Atomics.load(ctl, hi);
    if (h1 === h2 && (h1 & 1) === 0) return (h1 >>> 1) * 2 ** 32 + (l >>> 0);
  }
}

/** Single writer: stores a new low word, carrying into the high word when it wraps. */
export function storeTotal(
  ctl: Int32Array,
  lo: number,
  hi: number,
  old: number,
  next: number,
): void {
  if (next >>> 0 < old >>> 0) {
    Atomics.add(ctl, hi, 1); // odd: a reader retries
    Atomics.store(ctl, lo, next);
    Atomics.add(ctl, hi, 1);
  } else {
    Atomics.store(ctl, lo, next);
  }
}

/** Several writers: adds one to a counter, carrying into the high word (by 2, staying even). */
function countOne(ctl: Int32Array, lo: number, hi: number): void {
  if (Atomics.add(ctl, lo, 1) === -1) Atomics.add(ctl, hi, 2);
}

/**
 * The shared part of {@link SpscRing} and {@link MpscRing}. A ring object is a
 * view of the buffer: make one per thread with `attachRing(buffer)` (or the
 * ring class's constructor) after sending the buffer to a worker.
 */
export abstract class RingBase {
  /** The buffer holding the control words and the records; send this to a worker. */
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** Bytes per record. */
  readonly recordSize: number;
  /** Int32 words per record (`recordSize / 4`). */
  readonly wordsPerRecord: number;
  /** Records the ring holds. */
  readonly capacity: number;
  /** What a push into a full ring does. */
  readonly fullPolicy: FullPolicy;
  /** The record storage as Int32 words; `claim()` and `peek()` return indices into it. */
  readonly words: Int32Array;
  /** The record storage as bytes; a record at word index `w` starts at byte `4 * w`. */
  readonly bytes: Uint8Array;
  /** True when the buffer is shared, so other threads can attach and waits can block. */
  readonly shared: boolean;
  /** The ring kind. */
  abstract readonly kind: RingKind;

  protected readonly ctl: Int32Array;
  private readonly signals: { data: ReadinessSignal; space: ReadinessSignal } | undefined;

  protected constructor(buffer: ArrayBuffer | SharedArrayBuffer, kind: RingKind) {
    const found = ringKindOf(buffer);
    if (found !== kind) throw new TypeError(`buffer holds a ${found} ring, not ${kind}`);
    this.buffer = buffer;
    this.ctl = new Int32Array(buffer, 0, HEADER_WORDS);
    this.recordSize = this.ctl[W_RECORD_SIZE] as number;
    this.wordsPerRecord = this.recordSize / 4;
    this.capacity = this.ctl[W_CAPACITY] as number;
    this.fullPolicy = this.ctl[W_POLICY] === POLICY_CODES.drop ? 'drop' : 'reject';
    const dataOffset = RING_HEADER_BYTES + slotWordBytes(kind, this.capacity);
    this.words = new Int32Array(buffer, dataOffset, this.capacity * this.wordsPerRecord);
    this.bytes = new Uint8Array(buffer, dataOffset, this.capacity * this.recordSize);
    this.shared = typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer;
    if (this.shared) {
      this.signals = undefined;
    } else {
      let signals = localSignals.get(buffer);
      if (signals === undefined) {
        signals = { data: new ReadinessSignal(), space: new ReadinessSignal() };
        localSignals.set(buffer, signals);
      }
      this.signals = signals;
    }
  }

  // ---- producer side (implemented per kind) --------------------------------

  /**
   * Reserves the next free slot for this producer and returns its word index
   * in `words`, or -1 when the ring is full (counted under the full policy).
   * Write the record there, then call `commit()`. Several claims may precede
   * one commit: the single-producer ring then publishes the whole batch with
   * one atomic store, which is what makes batches fast.
   */
  abstract claim(): number;

  /**
   * Reserves up to `max` free slots that follow each other in `words` (a run
   * stops at the end of the storage) and returns how many, 0 when the ring is
   * full (counted under the full policy, like a refused `claim()`). Record `k`
   * of the run starts at word `runStart + k * wordsPerRecord`. Write them all,
   * then `commit()`. One reservation for many records: the fast way to produce.
   */
  abstract claimRun(max: number): number;

  /** The word index of the first slot of the last `claimRun`. */
  runStart = 0;

  /** Publishes every record claimed (and written) since the last commit. */
  abstract commit(): void;

  // ---- consumer side (implemented per kind) --------------------------------

  /**
   * The word index of the oldest whole record, or -1 when none is ready. The
   * record stays in place, untouched by producers, until `release()`.
   */
  abstract peek(): number;

  /** Frees the record returned by the last `peek()`. */
  abstract release(): void;

  /**
   * Consumes up to `max` records in order, calling `visit(words, index)` for
   * each while it is still in the ring, and returns how many it consumed.
   * Publishing once per batch is what makes this the fast way to consume.
   */
  abstract drain(visit: (words: Int32Array, index: number) => void, max?: number): number;

  /** True when a whole record waits to be read (as seen from any thread). */
  abstract readable(): boolean;

  /** Records waiting (claimed slots included for the multi-producer ring). */
  abstract get size(): number;

  /** Records written so far. */
  protected abstract writtenTotal(): number;

  // ---- shared ----------------------------------------------------------------

  /**
   * Copies one record from `record` (at byte `offset`) into the ring. Returns
   * false when the ring is full (the push is counted under the full policy).
   */
  push(record: Uint8Array, offset = 0): boolean {
    this.checkFits(record, offset);
    const w = this.claim();
    if (w < 0) return false;
    this.copy(record, offset, w, true);
    this.commit();
    return true;
  }

  /**
   * Copies the oldest record into `into` (at byte `offset`) and frees its
   * slot. Returns false when no record is ready.
   */
  pop(into: Uint8Array, offset = 0): boolean {
    this.checkFits(into, offset);
    const w = this.peek();
    if (w < 0) return false;
    this.copy(into, offset, w, false);
    this.release();
    return true;
  }

  private checkFits(bytes: Uint8Array, offset: number): void {
    if (!(offset >= 0 && offset + this.recordSize <= bytes.length)) {
      throw new RangeError(
        `a ${this.recordSize}-byte record at offset ${offset} does not fit in ${bytes.length} bytes`,
      );
    }
  }

  // Copies one record between the caller's bytes (at `offset`) and the slot at word `w`.
  private copy(bytes: Uint8Array, offset: number, w: number, intoRing: boolean): void {
    const { words, wordsPerRecord, recordSize } = this;
    const view = this.wordViewOf(bytes, offset);
    if (view === undefined) {
      if (intoRing) this.bytes.set(bytes.subarray(offset, offset + recordSize), w * 4);
      else bytes.set(this.bytes.subarray(w * 4, w * 4 + recordSize), offset);
      return;
    }
    const at = offset >> 2;
    if (intoRing) for (let i = 0; i < wordsPerRecord; i++) words[w + i] = view[at + i] as number;
    else for (let i = 0; i < wordsPerRecord; i++) view[at + i] = words[w + i] as number;
  }

  // Copying word by word beats making a subarray per record; a word view of
  // the caller's bytes is kept for the next call with the same array.
  private lastBytes: Uint8Array | undefined;
  private lastWords: Int32Array | undefined;

  private wordViewOf(bytes: Uint8Array, offset: number): Int32Array | undefined {
    if (bytes !== this.lastBytes) {
      this.lastBytes = bytes;
      this.lastWords =
        bytes.byteOffset % 4 === 0
          ? new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >> 2)
          : undefined;
    }
    const view = this.lastWords;
    // The view must still cover the record (a detached or shrunk buffer does not).
    if (
      view === undefined ||
      offset % 4 !== 0 ||
      (offset >> 2) + this.wordsPerRecord > view.length
    ) {
      return undefined;
    }
    return view;
  }

  /** The counters. */
  stats(): RingStats {
    const read = readTotal(this.ctl, W_HEAD, W_HEAD_HI);
    const written = this.writtenTotal();
    return {
      written,
      read,
      dropped: readTotal(this.ctl, W_DROPPED, W_DROPPED_HI),
      rejected: readTotal(this.ctl, W_REJECTED, W_REJECTED_HI),
      waiting: written - read,
    };
  }

  /** True when a push would find a free slot. */
  writable(): boolean {
    return this.size < this.capacity;
  }

  /** poll(2) flags: POLLIN | POLLRDNORM when a record waits, POLLOUT | POLLWRNORM when one fits. */
  poll(): number {
    return (
      (this.readable() ? POLLIN | POLLRDNORM : 0) | (this.writable() ? POLLOUT | POLLWRNORM : 0)
    );
  }

  /**
   * Marks the end of the stream: the consumer's `records()` iterator ends once
   * the ring is empty, and waiters wake. Pushes still work; closing only tells.
   */
  close(): void {
    Atomics.store(this.ctl, W_CLOSED, 1);
    this.wakeConsumer();
    this.wakeProducers();
  }

  /** True once `close()` was called from any thread. */
  get closed(): boolean {
    return Atomics.load(this.ctl, W_CLOSED) !== 0;
  }

  /**
   * Resolves true when a record waits, false after `timeoutMs` (or at once if
   * the ring is closed and empty). Does not block the thread: on a shared
   * buffer it parks on Atomics.waitAsync, so a producer in another worker
   * wakes it.
   */
  waitReadable(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    return this.waitAsync(W_CONSUMER_WAITING, W_DATA_BELL, () => this.readable(), timeoutMs);
  }

  /** Resolves true when a push would find room, false after `timeoutMs`. */
  waitWritable(timeoutMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    return this.waitAsync(W_PRODUCERS_WAITING, W_SPACE_BELL, () => this.writable(), timeoutMs);
  }

  /**
   * Blocks the thread (Atomics.wait, meant for workers) until a record waits
   * or `timeoutMs` passes; returns whether one waits. On an unshared buffer
   * nothing else can produce, so it returns at once.
   */
  waitReadableSync(timeoutMs = Number.POSITIVE_INFINITY): boolean {
    return this.waitSync(W_CONSUMER_WAITING, W_DATA_BELL, () => this.readable(), timeoutMs);
  }

  /** Blocks the thread until a push would find room or `timeoutMs` passes; returns whether it would. */
  waitWritableSync(timeoutMs = Number.POSITIVE_INFINITY): boolean {
    return this.waitSync(W_PRODUCERS_WAITING, W_SPACE_BELL, () => this.writable(), timeoutMs);
  }

  /**
   * The records as they arrive, each a copy, until the ring is closed and
   * empty. The consumer's side: one iterator per ring.
   */
  async *records(): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      const w = this.peek();
      if (w >= 0) {
        const record = this.bytes.slice(w * 4, w * 4 + this.recordSize);
        this.release();
        yield record;
      } else if (this.closed) {
        if (this.peek() < 0) return;
      } else {
        await this.waitReadable();
      }
    }
  }

  // ---- for the subclasses ----------------------------------------------------

  /** Throws unless `max` is a positive integer (a run of nothing is a caller's bug). */
  protected checkRun(max: number): void {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(
        `claimRun(${max}): the most records to claim must be a positive integer`,
      );
    }
  }

  /** Counts a push refused while full, under the policy, and returns -1 for `claim()`. */
  protected full(): number {
    if (this.fullPolicy === 'drop') countOne(this.ctl, W_DROPPED, W_DROPPED_HI);
    else countOne(this.ctl, W_REJECTED, W_REJECTED_HI);
    return -1;
  }

  /** After a commit: wakes the consumer if it said it was parking. */
  protected wakeConsumer(): void {
    ringDoorbell(this.ctl, W_DATA_BELL);
    this.signals?.data.notify();
  }

  /** After freeing slots: wakes producers parked on a full ring. */
  protected wakeProducers(): void {
    ringDoorbell(this.ctl, W_SPACE_BELL);
    this.signals?.space.notify();
  }

  // One turn of a wait: its answer when it has one (ready; closed; out of
  // time), else the milliseconds left to sleep.
  private settle(ready: () => boolean, deadline: number): boolean | number {
    if (ready()) return true;
    if (this.closed) return ready();
    const left = deadline - performance.now();
    return left <= 0 ? false : left;
  }

  // The waiter raises its flag, reads the doorbell, and only then re-checks its
  // condition; a producer stores its record before reading the flag. Either
  // the producer sees the flag and rings, or the waiter sees the record.
  private async waitAsync(
    flag: number,
    bell: number,
    ready: () => boolean,
    timeoutMs: number,
  ): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const left = this.settle(ready, deadline);
      if (typeof left === 'boolean') return left;
      Atomics.add(this.ctl, flag, 1);
      const seen = Atomics.load(this.ctl, bell);
      try {
        if (ready() || this.closed) continue;
        if (this.signals === undefined) {
          await waitDoorbell(this.ctl, bell, seen, left);
        } else {
          const signal = flag === W_CONSUMER_WAITING ? this.signals.data : this.signals.space;
          await signal.wait(() => Atomics.load(this.ctl, bell) !== seen, left);
        }
      } finally {
        Atomics.sub(this.ctl, flag, 1);
      }
    }
  }

  private waitSync(flag: number, bell: number, ready: () => boolean, timeoutMs: number): boolean {
    if (!this.shared) return ready();
    for (let i = 0; i < SPIN_CHECKS; i++) if (ready()) return true;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const left = this.settle(ready, deadline);
      if (typeof left === 'boolean') return left;
      Atomics.add(this.ctl, flag, 1);
      const seen = Atomics.load(this.ctl, bell);
      if (!ready() && !this.closed) Atomics.wait(this.ctl, bell, seen, left);
      Atomics.sub(this.ctl, flag, 1);
    }
  }
}
