/**
 * The vEVENTQ of Linux 6.17 (eventq.c and driver.c): events a vIOMMU reports,
 * each read as an 8-byte header {flags, sequence} followed by its type's
 * payload. The queue holds at most `depth` events; past that, events are lost
 * and one preallocated LOST_EVENTS header (no payload) sits at the tail with
 * a fresh sequence number, so the reader sees the gap. Every queued item,
 * the marker included, takes the next sequence, which wraps from INT_MAX to 0.
 *
 * Because the marker is only ever at the tail (a real event removes it first
 * when it is), the queue keeps events in a typed-array ring and the marker as
 * a flag plus its sequence.
 */
import {
  EINVAL,
  ESPIPE,
  IOMMU_VEVENTQ_FLAG_LOST_EVENTS,
  veventHeader,
  veventRecordSize,
} from '@iommufd-sim/uapi-types';
import { POLLIN, POLLRDNORM, ReadinessSignal } from './readiness.js';

/** The largest vEVENT sequence number; the next one after it is 0. */
export const INT_MAX = 0x7fff_ffff;

/** How to make a {@link VeventQueue}. */
export interface VeventQueueOptions {
  /** The vEVENTQ type (`IOMMU_VEVENTQ_TYPE_*`, or the selftest type). */
  readonly type: number;
  /** The most events it holds (`veventq_depth`): 1 .. 2^32 - 1. */
  readonly depth: number;
  /**
   * Bytes of payload per event; by default the size of the type's struct
   * (SMMUv3 32, Tegra241 CMDQV 16, selftest 4). Required for another type.
   */
  readonly payloadSize?: number;
  /** The sequence of the first item (0 .. INT_MAX); 0 as in the kernel. For tests of the wrap. */
  readonly firstSequence?: number;
}

/** The counters of a {@link VeventQueue}. */
export interface VeventQueueStats {
  /** Events queued by `report`. */
  readonly queued: number;
  /** Events lost because the queue was at its depth. */
  readonly lost: number;
  /** Events handed out by `read`. */
  readonly eventsRead: number;
  /** LOST_EVENTS headers handed out by `read`. */
  readonly markersRead: number;
  /** Bytes handed out by `read`. */
  readonly bytesRead: number;
}

const HEADER_SIZE = veventHeader.sizeof;
const H = veventHeader.fields;
const INITIAL_SLOTS = 16;

/**
 * One vEVENTQ. The driver side calls `report`; the vEVENTQ fd's read() is
 * `read`, which never throws and returns a byte count or a negative errno as
 * the kernel's fops do.
 */
export class VeventQueue {
  /** The vEVENTQ type. */
  readonly type: number;
  /** The most events it holds. */
  readonly depth: number;
  /** Bytes of payload per event. */
  readonly payloadSize: number;
  /** Bytes of one event as read: header plus payload. */
  readonly recordSize: number;

  // Events in a ring that grows by doubling up to `depth`.
  private sequences: Int32Array;
  private payloads: Uint8Array;
  private first = 0;
  private count = 0;
  private sequence: number;
  private markerQueued = false;
  private markerSequence = 0;
  private readonly signal = new ReadinessSignal();
  private counts = { queued: 0, lost: 0, eventsRead: 0, markersRead: 0, bytesRead: 0 };

  /**
   * Makes an empty queue. Throws RangeError for a depth outside 1 .. 2^32 - 1,
   * a type with no known payload size and no `payloadSize`, or a bad
   * `firstSequence` (the ioctl's checks belong to iommufd-core, before this).
   */
  constructor(options: VeventQueueOptions) {
    const { type, depth } = options;
    if (!Number.isInteger(type) || type < 0 || type > 0xffff_ffff) {
      throw new RangeError(`vEVENTQ type ${type} is not a u32`);
    }
    if (!Number.isInteger(depth) || depth < 1 || depth > 0xffff_ffff) {
      throw new RangeError(`vEVENTQ depth ${depth} is outside 1..2^32-1`);
    }
    const known = veventRecordSize(type);
    const payloadSize =
      options.payloadSize ?? (known === undefined ? undefined : known - HEADER_SIZE);
    if (payloadSize === undefined) {
      throw new RangeError(`vEVENTQ type ${type} has no known payload size: give payloadSize`);
    }
    if (!Number.isInteger(payloadSize) || payloadSize < 1) {
      throw new RangeError(`payload size ${payloadSize} is not a positive integer`);
    }
    const firstSequence = options.firstSequence ?? 0;
    if (!Number.isInteger(firstSequence) || firstSequence < 0 || firstSequence > INT_MAX) {
      throw new RangeError(`first sequence ${firstSequence} is outside 0..INT_MAX`);
    }
    this.type = type;
    this.depth = depth;
    this.payloadSize = payloadSize;
    this.recordSize = HEADER_SIZE + payloadSize;
    this.sequence = firstSequence;
    const slots = Math.min(depth, INITIAL_SLOTS);
    this.sequences = new Int32Array(slots);
    this.payloads = new Uint8Array(slots * payloadSize);
  }

  /**
   * Reports one event (the driver's `iommufd_viommu_report_event`): queues a
   * copy of `payload` under the next sequence number, or, when `depth` events
   * already wait, loses it and moves the LOST_EVENTS marker to the tail with
   * the next sequence number. Returns 0 either way, as the kernel does (see
   * `stats().lost`), or -EINVAL, queue unchanged, when the payload is not
   * `payloadSize` bytes.
   */
  report(payload: Uint8Array): number {
    if (!(payload instanceof Uint8Array) || payload.length !== this.payloadSize) return -EINVAL;
    if (this.count === this.depth) {
      this.markerQueued = true;
      this.markerSequence = this.takeSequence();
      this.counts.lost++;
    } else {
      this.markerQueued = false; // the marker was the tail: a real event replaces it
      if (this.count === this.sequences.length) this.grow();
      const slot = (this.first + this.count) % this.sequences.length;
      this.sequences[slot] = this.takeSequence();
      this.payloads.set(payload, slot * this.payloadSize);
      this.count++;
      this.counts.queued++;
    }
    this.signal.notify();
    return 0;
  }

  /**
   * read() on the vEVENTQ fd: fills `buf` with whole events, oldest first,
   * each its header then its payload, then the LOST_EVENTS header if one is
   * queued, and returns the bytes written. An event that does not fit in what
   * is left of `buf` stops the read and stays queued (a read that fits
   * nothing returns 0, as does an empty queue, without blocking); the marker
   * needs only its 8 bytes. A nonzero file position gives -ESPIPE; there is no
   * rule on the length.
   */
  read(buf: Uint8Array, position = 0): number {
    if (!(buf instanceof Uint8Array)) return -EINVAL;
    if (position !== 0) return -ESPIPE;
    const count = buf.length;
    const { payloadSize, recordSize } = this;
    let done = 0;
    let view: DataView | undefined;
    while (this.count > 0 && count - done >= recordSize) {
      view ??= new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      const slot = this.first;
      view.setUint32(done + H.flags.offset, 0, true);
      view.setUint32(done + H.sequence.offset, this.sequences[slot] as number, true);
      const from = slot * payloadSize;
      buf.set(this.payloads.subarray(from, from + payloadSize), done + HEADER_SIZE);
      done += recordSize;
      this.first = slot + 1 === this.sequences.length ? 0 : slot + 1;
      this.count--;
      this.counts.eventsRead++;
    }
    if (this.count === 0 && this.markerQueued && count - done >= HEADER_SIZE) {
      view ??= new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      view.setUint32(done + H.flags.offset, IOMMU_VEVENTQ_FLAG_LOST_EVENTS, true);
      view.setUint32(done + H.sequence.offset, this.markerSequence, true);
      done += HEADER_SIZE;
      this.markerQueued = false;
      this.counts.markersRead++;
    }
    this.counts.bytesRead += done;
    return done;
  }

  /** Events waiting (the kernel's `num_events`; the marker does not count). */
  get numEvents(): number {
    return this.count;
  }

  /** True while a LOST_EVENTS header waits at the tail. */
  get lostEventsPending(): boolean {
    return this.markerQueued;
  }

  /** The sequence number the next queued item will get. */
  get nextSequence(): number {
    return this.sequence;
  }

  /** True when an event or a LOST_EVENTS header waits. */
  readable(): boolean {
    return this.count > 0 || this.markerQueued;
  }

  /** poll(2) on the vEVENTQ fd: POLLIN | POLLRDNORM when something waits, else 0 (it is not writable). */
  poll(): number {
    return this.readable() ? POLLIN | POLLRDNORM : 0;
  }

  /** Resolves true when something waits (at once if it does), false after `timeoutMs`. */
  waitReadable(timeoutMs?: number): Promise<boolean> {
    return this.signal.wait(() => this.readable(), timeoutMs);
  }

  /** Destroy: frees every queued event and the marker; returns the events freed. */
  clear(): number {
    const freed = this.count;
    this.first = 0;
    this.count = 0;
    this.markerQueued = false;
    return freed;
  }

  /** The counters. */
  stats(): VeventQueueStats {
    return { ...this.counts };
  }

  private takeSequence(): number {
    const sequence = this.sequence;
    this.sequence = sequence === INT_MAX ? 0 : sequence + 1;
    return sequence;
  }

  private grow(): void {
    const slots = Math.min(this.depth, this.sequences.length * 2);
    const sequences = new Int32Array(slots);
    const payloads = new Uint8Array(slots * this.payloadSize);
    for (let i = 0; i < this.count; i++) {
      const from = (this.first + i) % this.sequences.length;
      sequences[i] = this.sequences[from] as number;
      payloads.set(
        this.payloads.subarray(from * this.payloadSize, (from + 1) * this.payloadSize),
        i * this.payloadSize,
      );
    }
    this.sequences = sequences;
    this.payloads = payloads;
    this.first = 0;
  }
}
