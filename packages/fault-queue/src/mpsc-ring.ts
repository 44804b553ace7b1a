/**
 * The multi-producer, single-consumer ring. Producers take positions with a
 * compare-and-swap on the tail; each slot has a sequence word that says
 * whose turn it is, so a record becomes visible only when its producer has
 * finished writing it (never torn), and a slot is reused only after the
 * consumer has freed it (never overwritten unread). This is D. Vyukov's
 * bounded queue, reduced to one consumer.
 *
 * Positions run modulo M, the largest multiple of the capacity up to 2^30, so
 * that `position % capacity` names the slot even across the wrap and any
 * capacity works (85 records of 48 bytes in 4 KiB, not only powers of two).
 * A slot's sequence word holds the position it waits for: `p` when free for
 * the producer of position `p`, `p + 1` once that record is committed.
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
  W_MODULUS,
  W_PRODUCERS_WAITING,
  W_TAIL,
} from './ring-base.js';

/**
 * A lock-free ring of fixed-size records for any number of producers (in any
 * threads) and one consumer. Create it with `MpscRing.create(options)`, send
 * `ring.buffer` to every worker, and attach there with `new MpscRing(buffer)`
 * (or `attachRing`). Records of one producer arrive in the order it committed
 * them; records of different producers interleave.
 */
export class MpscRing extends RingBase {
  /** Always `'mpsc'`. */
  readonly kind = 'mpsc' as const;

  private readonly seqs: Int32Array;
  private readonly modulus: number;
  private readonly half: number;
  // This producer's outstanding claim.
  private claimPosition = -1;
  private claimSlot = 0;
  // The consumer's position (modulo M), its slot and its read count (low 32 bits).
  private position: number;
  private slot: number;
  private readCount: number;

  /** Allocates a new ring (a SharedArrayBuffer unless `shared: false`). */
  static create(options: RingOptions): MpscRing {
    return new MpscRing(allocateRing('mpsc', options));
  }

  /** Attaches to a ring made by `MpscRing.create` (here or in another thread). */
  constructor(buffer: ArrayBuffer | SharedArrayBuffer) {
    super(buffer, 'mpsc');
    this.seqs = new Int32Array(buffer, RING_HEADER_BYTES, this.capacity);
    this.modulus = this.ctl[W_MODULUS] as number;
    this.half = this.modulus / 2;
    const read = readTotal(this.ctl, W_HEAD, W_HEAD_HI);
    this.position = read % this.modulus;
    this.slot = this.position % this.capacity;
    this.readCount = Atomics.load(this.ctl, W_HEAD);
  }

  /** {@inheritDoc RingBase.claim} */
  claim(): number {
    const { ctl, seqs, capacity, modulus, half } = this;
    let position = Atomics.load(ctl, W_TAIL);
    for (;;) {
      const slot = position % capacity;
      let distance = Atomics.load(seqs, slot) - position;
      if (distance > half) distance -= modulus;
      else if (distance < -half) distance += modulus;
      if (distance === 0) {
        const next = position + 1 === modulus ? 0 : position + 1;
        const seen = Atomics.compareExchange(ctl, W_TAIL, position, next);
        if (seen === position) {
          this.claimPosition = position;
          this.claimSlot = slot;
          return slot * this.wordsPerRecord;
        }
        position = seen; // another producer took it: try the next one
      } else if (distance < 0) {
        return this.full(); // the slot still holds last lap's record
      } else {
        position = Atomics.load(ctl, W_TAIL);
      }
    }
  }

  /** {@inheritDoc RingBase.commit} */
  commit(): void {
    const position = this.claimPosition;
    if (position < 0) throw new Error('commit() without a claim()');
    this.claimPosition = -1;
    Atomics.store(this.seqs, this.claimSlot, position + 1 === this.modulus ? 0 : position + 1);
    if (Atomics.load(this.ctl, W_CONSUMER_WAITING) !== 0) this.wakeConsumer();
  }

  /** {@inheritDoc RingBase.peek} */
  peek(): number {
    const committed = this.position + 1 === this.modulus ? 0 : this.position + 1;
    return Atomics.load(this.seqs, this.slot) === committed ? this.slot * this.wordsPerRecord : -1;
  }

  /** {@inheritDoc RingBase.release} */
  release(): void {
    this.free();
    this.publish(1);
  }

  /** {@inheritDoc RingBase.drain} */
  drain(visit: (words: Int32Array, index: number) => void, max = Number.POSITIVE_INFINITY): number {
    const { seqs, words, wordsPerRecord, modulus } = this;
    let done = 0;
    while (done < max) {
      const committed = this.position + 1 === modulus ? 0 : this.position + 1;
      if (Atomics.load(seqs, this.slot) !== committed) break;
      visit(words, this.slot * wordsPerRecord);
      this.free();
      done++;
    }
    if (done > 0) this.publish(done);
    return done;
  }

  /** {@inheritDoc RingBase.readable} */
  readable(): boolean {
    const position = readTotal(this.ctl, W_HEAD, W_HEAD_HI) % this.modulus;
    const committed = position + 1 === this.modulus ? 0 : position + 1;
    return Atomics.load(this.seqs, position % this.capacity) === committed;
  }

  /** {@inheritDoc RingBase.size} */
  get size(): number {
    const head = readTotal(this.ctl, W_HEAD, W_HEAD_HI) % this.modulus;
    const claimed = Atomics.load(this.ctl, W_TAIL) - head;
    return claimed < 0 ? claimed + this.modulus : claimed;
  }

  protected writtenTotal(): number {
    // Claimed slots count as written: a producer between claim and commit
    // will commit, and the ring has no other way to count across producers.
    for (;;) {
      const read = readTotal(this.ctl, W_HEAD, W_HEAD_HI);
      const tail = Atomics.load(this.ctl, W_TAIL);
      if (readTotal(this.ctl, W_HEAD, W_HEAD_HI) !== read) continue;
      const claimed = tail - (read % this.modulus);
      return read + (claimed < 0 ? claimed + this.modulus : claimed);
    }
  }

  // Hands the consumer's slot back to the producer of the next lap.
  private free(): void {
    const reuse = this.position + this.capacity;
    Atomics.store(this.seqs, this.slot, reuse >= this.modulus ? reuse - this.modulus : reuse);
    this.position = this.position + 1 === this.modulus ? 0 : this.position + 1;
    this.slot = this.slot + 1 === this.capacity ? 0 : this.slot + 1;
  }

  private publish(count: number): void {
    const next = (this.readCount + count) | 0;
    storeTotal(this.ctl, W_HEAD, W_HEAD_HI, this.readCount, next);
    this.readCount = next;
    if (Atomics.load(this.ctl, W_PRODUCERS_WAITING) !== 0) this.wakeProducers();
  }
}
