/**
 * The single-producer, single-consumer ring: one thread writes, one thread
 * reads, and neither ever waits for the other while there is room and data.
 * The producer owns the tail word, the consumer the head word; each keeps a
 * cached copy of the other's word and reloads it only when the ring looks
 * full (or empty), so a record costs one atomic store on each side, and a
 * run of records (claimRun, drain) one store for the whole run. Counts in
 * flight are differences of 32-bit counters taken with `| 0`: they never
 * exceed the capacity, and V8 keeps them small integers (`>>> 0` made them
 * doubles and halved the throughput).
 */
import {
  allocateRing,
  RingBase,
  type RingOptions,
  readTotal,
  storeTotal,
  W_CONSUMER_WAITING,
  W_HEAD,
  W_HEAD_HI,
  W_PRODUCERS_WAITING,
  W_TAIL,
  W_TAIL_HI,
} from './ring-base.js';

/**
 * A lock-free ring of fixed-size records for one producer and one consumer,
 * over a SharedArrayBuffer (across `worker_threads`) or an ArrayBuffer.
 * Create it with `SpscRing.create(options)`, send `ring.buffer` to the other
 * thread and attach there with `new SpscRing(buffer)` (or `attachRing`).
 */
export class SpscRing extends RingBase {
  /** Always `'spsc'`. */
  readonly kind = 'spsc' as const;

  // Producer's view: records published (low 32 bits), records claimed (the
  // same plus the batch being written), the next slot, the head it last saw.
  private tail: number;
  private claimed: number;
  private claimSlot: number;
  private headSeen: number;
  // Consumer's view: records read (low 32 bits), its slot, the tail it last saw.
  private head: number;
  private headSlot: number;
  private tailSeen: number;

  /** Allocates a new ring (a SharedArrayBuffer unless `shared: false`). */
  static create(options: RingOptions): SpscRing {
    return new SpscRing(allocateRing('spsc', options));
  }

  /** Attaches to a ring made by `SpscRing.create` (here or in another thread). */
  constructor(buffer: ArrayBuffer | SharedArrayBuffer) {
    super(buffer, 'spsc');
    this.tail = Atomics.load(this.ctl, W_TAIL);
    this.claimed = this.tail;
    this.claimSlot = readTotal(this.ctl, W_TAIL, W_TAIL_HI) % this.capacity;
    this.headSeen = Atomics.load(this.ctl, W_HEAD);
    this.head = this.headSeen;
    this.headSlot = readTotal(this.ctl, W_HEAD, W_HEAD_HI) % this.capacity;
    this.tailSeen = this.tail;
  }

  /** {@inheritDoc RingBase.claim} */
  claim(): number {
    if (((this.claimed - this.headSeen) | 0) >= this.capacity) {
      this.headSeen = Atomics.load(this.ctl, W_HEAD);
      if (((this.claimed - this.headSeen) | 0) >= this.capacity) return this.full();
    }
    const slot = this.claimSlot;
    this.claimSlot = slot + 1 === this.capacity ? 0 : slot + 1;
    this.claimed = (this.claimed + 1) | 0;
    return slot * this.wordsPerRecord;
  }

  /** {@inheritDoc RingBase.claimRun} */
  claimRun(max: number): number {
    this.checkRun(max);
    const { capacity } = this;
    let free = capacity - ((this.claimed - this.headSeen) | 0);
    if (free < max) {
      this.headSeen = Atomics.load(this.ctl, W_HEAD);
      free = capacity - ((this.claimed - this.headSeen) | 0);
      if (free === 0) {
        this.full();
        return 0;
      }
    }
    const slot = this.claimSlot;
    const n = Math.min(max, free, capacity - slot);
    this.runStart = slot * this.wordsPerRecord;
    this.claimSlot = slot + n === capacity ? 0 : slot + n;
    this.claimed = (this.claimed + n) | 0;
    return n;
  }

  /** {@inheritDoc RingBase.commit} */
  commit(): void {
    if (this.claimed === this.tail) return;
    storeTotal(this.ctl, W_TAIL, W_TAIL_HI, this.tail, this.claimed);
    this.tail = this.claimed;
    if (Atomics.load(this.ctl, W_CONSUMER_WAITING) !== 0) this.wakeConsumer();
  }

  /** {@inheritDoc RingBase.peek} */
  peek(): number {
    if (this.head === this.tailSeen) {
      this.tailSeen = Atomics.load(this.ctl, W_TAIL);
      if (this.head === this.tailSeen) return -1;
    }
    return this.headSlot * this.wordsPerRecord;
  }

  /** {@inheritDoc RingBase.release} */
  release(): void {
    this.advance(1);
  }

  /** {@inheritDoc RingBase.drain} */
  drain(visit: (words: Int32Array, index: number) => void, max = Number.POSITIVE_INFINITY): number {
    const { words, wordsPerRecord, capacity } = this;
    let done = 0;
    while (done < max) {
      let ready = (this.tailSeen - this.head) | 0;
      if (ready === 0) {
        this.tailSeen = Atomics.load(this.ctl, W_TAIL);
        ready = (this.tailSeen - this.head) | 0;
        if (ready === 0) break;
      }
      const take = Math.min(ready, max - done);
      let slot = this.headSlot;
      for (let i = 0; i < take; i++) {
        visit(words, slot * wordsPerRecord);
        slot = slot + 1 === capacity ? 0 : slot + 1;
      }
      this.advance(take);
      done += take;
    }
    return done;
  }

  /** {@inheritDoc RingBase.readable} */
  readable(): boolean {
    return Atomics.load(this.ctl, W_HEAD) !== Atomics.load(this.ctl, W_TAIL);
  }

  /** {@inheritDoc RingBase.size} */
  get size(): number {
    return (Atomics.load(this.ctl, W_TAIL) - Atomics.load(this.ctl, W_HEAD)) | 0;
  }

  protected writtenTotal(): number {
    return readTotal(this.ctl, W_TAIL, W_TAIL_HI);
  }

  private advance(count: number): void {
    const next = (this.head + count) | 0;
    storeTotal(this.ctl, W_HEAD, W_HEAD_HI, this.head, next);
    this.head = next;
    this.headSlot = (this.headSlot + count) % this.capacity;
    if (Atomics.load(this.ctl, W_PRODUCERS_WAITING) !== 0) this.wakeProducers();
  }
}
