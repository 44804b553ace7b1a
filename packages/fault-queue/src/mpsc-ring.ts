/**
 * The multi-producer, single-consumer ring. A producer reserves a run of
 * consecutive positions with one compare-and-swap on the tail, after checking
 * against the consumer's published position that they are free. It writes
 * the records, then commits the run: it stores the run's length beside the
 * run's first slot, then that slot's sequence word (atomically) as "first
 * position + 1". The consumer takes a run only when its first slot says so,
 * so no record is read half-written, and a producer that stalls between claim
 * and commit holds up the records behind it instead of letting them pass.
 * Committing and taking cost one atomic store and one atomic load per run,
 * not per record.
 *
 * Positions run modulo M, the largest multiple of the capacity up to 2^30,
 * so that `position % capacity` names the slot even across the wrap and any
 * capacity works (85 records of 48 bytes in 4 KiB, not only powers of two).
 */
import {
  allocateRing,
  RING_HEADER_BYTES,
  RingBase,
  type RingOptions,
  readTotal,
  storeTotal,
  W_CONSUMER_WAITING,
  W_HEAD,
  W_HEAD_HI,
  W_HEAD_POSITION,
  W_HEAD_RUN_LEFT,
  W_MODULUS,
  W_PRODUCERS_WAITING,
  W_TAIL,
} from './ring-base.js';

/** A sequence word that names no position: set on a run's first slot once it is taken. */
const NO_POSITION = -1;

/**
 * A lock-free ring of fixed-size records for any number of producers (in any
 * threads) and one consumer. Create it with `MpscRing.create(options)`, send
 * `ring.buffer` to every worker, and attach there with `new MpscRing(buffer)`
 * (or `attachRing`). Records of one producer arrive in the order it claimed
 * them; records of different producers interleave.
 */
export class MpscRing extends RingBase {
  /** Always `'mpsc'`. */
  readonly kind = 'mpsc' as const;

  private readonly seqs: Int32Array;
  private readonly runLengths: Int32Array;
  private readonly modulus: number;
  // This producer: the consumer position it last saw, the tail position it
  // saw then, and its claims not yet committed (runs of positions).
  private headSeen: number;
  private headSeenAt: number;
  private readonly pendingStarts: number[] = [];
  private readonly pendingCounts: number[] = [];
  // The consumer: its position (modulo M), its slot, what is left of the run
  // it has taken, and its read count (low 32 bits).
  private position: number;
  private slot: number;
  private runLeft: number;
  private readCount: number;

  /** Allocates a new ring (a SharedArrayBuffer unless `shared: false`). */
  static create(options: RingOptions): MpscRing {
    return new MpscRing(allocateRing('mpsc', options));
  }

  /** Attaches to a ring made by `MpscRing.create` (here or in another thread). */
  constructor(buffer: ArrayBuffer | SharedArrayBuffer) {
    super(buffer, 'mpsc');
    this.seqs = new Int32Array(buffer, RING_HEADER_BYTES, this.capacity);
    this.runLengths = new Int32Array(buffer, RING_HEADER_BYTES + 4 * this.capacity, this.capacity);
    this.modulus = this.ctl[W_MODULUS] as number;
    this.position = Atomics.load(this.ctl, W_HEAD_POSITION);
    this.slot = this.position % this.capacity;
    this.runLeft = Atomics.load(this.ctl, W_HEAD_RUN_LEFT);
    this.readCount = Atomics.load(this.ctl, W_HEAD);
    this.headSeen = this.position;
    this.headSeenAt = this.position;
  }

  /** {@inheritDoc RingBase.claim} */
  claim(): number {
    return this.reserve(1) === 0 ? this.full() : this.runStart;
  }

  /** {@inheritDoc RingBase.claimRun} */
  claimRun(max: number): number {
    this.checkRun(max);
    const n = this.reserve(max);
    if (n === 0) this.full();
    return n;
  }

  /** {@inheritDoc RingBase.commit} */
  commit(): void {
    const { pendingStarts, pendingCounts, seqs, runLengths, capacity, modulus } = this;
    if (pendingStarts.length === 0) return;
    for (let r = 0; r < pendingStarts.length; r++) {
      const start = pendingStarts[r] as number;
      const slot = start % capacity;
      runLengths[slot] = pendingCounts[r] as number; // made visible by the store below
      Atomics.store(seqs, slot, start + 1 === modulus ? 0 : start + 1);
    }
    pendingStarts.length = 0;
    pendingCounts.length = 0;
    if (Atomics.load(this.ctl, W_CONSUMER_WAITING) !== 0) this.wakeConsumer();
  }

  /** {@inheritDoc RingBase.peek} */
  peek(): number {
    return this.runLeft > 0 || this.takeRun() ? this.slot * this.wordsPerRecord : -1;
  }

  /** {@inheritDoc RingBase.release} */
  release(): void {
    this.runLeft--;
    this.step();
    this.publish(1);
  }

  /** {@inheritDoc RingBase.drain} */
  drain(visit: (words: Int32Array, index: number) => void, max = Number.POSITIVE_INFINITY): number {
    const { words, wordsPerRecord } = this;
    let done = 0;
    while (done < max && (this.runLeft > 0 || this.takeRun())) {
      const take = Math.min(this.runLeft, max - done);
      for (let i = 0; i < take; i++) {
        visit(words, this.slot * wordsPerRecord);
        this.step();
      }
      this.runLeft -= take;
      done += take;
    }
    if (done > 0) this.publish(done);
    return done;
  }

  /** {@inheritDoc RingBase.readable} */
  readable(): boolean {
    if (Atomics.load(this.ctl, W_HEAD_RUN_LEFT) > 0) return true;
    const position = Atomics.load(this.ctl, W_HEAD_POSITION);
    const committed = position + 1 === this.modulus ? 0 : position + 1;
    return Atomics.load(this.seqs, position % this.capacity) === committed;
  }

  /** {@inheritDoc RingBase.size} */
  get size(): number {
    const claimed = Atomics.load(this.ctl, W_TAIL) - Atomics.load(this.ctl, W_HEAD_POSITION);
    return claimed < 0 ? claimed + this.modulus : claimed;
  }

  protected writtenTotal(): number {
    // Claimed slots count as written: a producer between claim and commit
    // will commit, and the ring has no other way to count across producers.
    // The read total is loaded before the tail, so the tail is never behind it.
    const read = readTotal(this.ctl, W_HEAD, W_HEAD_HI);
    const claimed = Atomics.load(this.ctl, W_TAIL) - (read % this.modulus);
    return read + (claimed < 0 ? claimed + this.modulus : claimed);
  }

  // Takes up to `max` positions that are free and whose slots follow each
  // other, with one compare-and-swap; sets runStart and returns how many (0: full).
  private reserve(max: number): number {
    const { ctl, capacity, modulus } = this;
    let position = Atomics.load(ctl, W_TAIL);
    for (;;) {
      // A cached head more than M/4 behind could alias modulo M: refresh it.
      let sinceSeen = position - this.headSeenAt;
      if (sinceSeen < 0) sinceSeen += modulus;
      let used = position - this.headSeen;
      if (used < 0) used += modulus;
      if (capacity - used < max || sinceSeen > modulus / 4) {
        this.headSeen = Atomics.load(ctl, W_HEAD_POSITION);
        this.headSeenAt = position;
        used = position - this.headSeen;
        if (used < 0) used += modulus;
        if (used >= capacity) return 0;
      }
      const slot = position % capacity;
      const n = Math.min(max, capacity - used, capacity - slot);
      let next = position + n;
      if (next >= modulus) next -= modulus;
      const seen = Atomics.compareExchange(ctl, W_TAIL, position, next);
      if (seen === position) {
        this.addPending(position, n);
        this.runStart = slot * this.wordsPerRecord;
        return n;
      }
      position = seen; // another producer took it: try again from where the tail is
    }
  }

  // A reservation right after this producer's previous one extends its run
  // (the consumer walks a run slot by slot, across the end of the storage too).
  private addPending(position: number, n: number): void {
    const last = this.pendingStarts.length - 1;
    if (last >= 0) {
      const end = (this.pendingStarts[last] as number) + (this.pendingCounts[last] as number);
      if (end % this.modulus === position) {
        this.pendingCounts[last] = (this.pendingCounts[last] as number) + n;
        return;
      }
    }
    this.pendingStarts.push(position);
    this.pendingCounts.push(n);
  }

  // The consumer takes the run that starts at its position, if it is committed.
  private takeRun(): boolean {
    const committed = this.position + 1 === this.modulus ? 0 : this.position + 1;
    if (Atomics.load(this.seqs, this.slot) !== committed) return false;
    this.runLeft = this.runLengths[this.slot] as number;
    // Forget the mark, so that a slot that starts no run for many laps can
    // never show a stale one that happens to match.
    Atomics.store(this.seqs, this.slot, NO_POSITION);
    return true;
  }

  private step(): void {
    this.position = this.position + 1 === this.modulus ? 0 : this.position + 1;
    this.slot = this.slot + 1 === this.capacity ? 0 : this.slot + 1;
  }

  // The position first (producers' room), then the total (the counters).
  private publish(count: number): void {
    Atomics.store(this.ctl, W_HEAD_RUN_LEFT, this.runLeft);
    Atomics.store(this.ctl, W_HEAD_POSITION, this.position);
    const next = (this.readCount + count) | 0;
    storeTotal(this.ctl, W_HEAD, W_HEAD_HI, this.readCount, next);
    this.readCount = next;
    if (Atomics.load(this.ctl, W_PRODUCERS_WAITING) !== 0) this.wakeProducers();
  }
}
