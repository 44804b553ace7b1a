/**
 * A translation cache shaped like the hardware's: a fixed number of sets of a
 * few ways each, entries tagged the way the IOMMU tags them (a domain id or
 * VMID, an ASID or PASID, the input page), so it can hold stale entries until
 * software invalidates them, and it forgets entries when sets overflow.
 *
 * Entries live in typed arrays; a hit costs a hash, a few compares and no
 * allocation.
 */

/** Marks "no ASID/PASID" in the `asid` tag. */
export const NO_ASID = 0xffffffff;

/** The fields of a hit, filled by {@link Iotlb.lookup}. */
export interface TlbHit {
  /** Output address of `iova` (page base plus offset). */
  pa: number;
  /** Size of the cached leaf. */
  pageSize: number;
  /** Permission bits cached with the entry (IOMMU_READ / IOMMU_WRITE ...). */
  prot: number;
}

/** A fresh {@link TlbHit}. */
export function newTlbHit(): TlbHit {
  return { pa: 0, pageSize: 0, prot: 0 };
}

/** Sizes of an {@link Iotlb}. */
export interface IotlbOptions {
  /** Number of sets (a power of two). Default 1024. */
  readonly sets?: number;
  /** Ways per set. Default 4. */
  readonly ways?: number;
}

/** Counters of an {@link Iotlb}. */
export interface IotlbStats {
  hits: number;
  misses: number;
  fills: number;
  evictions: number;
  invalidated: number;
}

/** A set-associative IOTLB keyed by (tag, asid, input page, page size). */
export class Iotlb {
  /** Capacity in entries. */
  readonly capacity: number;
  private readonly counters = { fills: 0, evictions: 0, invalidated: 0 };
  private readonly ways: number;
  private readonly setMask: number;
  private readonly tag: Uint32Array;
  private readonly asid: Uint32Array;
  private readonly page: Float64Array; // iova / pageSize, exact below 2^53
  private readonly sizeLog2: Uint8Array; // 0 = empty slot
  private readonly out: Float64Array; // output page base
  private readonly prot: Uint8Array;
  private readonly next: Uint8Array; // round-robin victim per set
  // Page sizes ever filled (ascending) and their log2: each lookup probes one set per size.
  private readonly sizes: number[] = [];
  private readonly log2s: number[] = [];
  // Counters as plain fields: the hot path increments them.
  private hits = 0;
  private misses = 0;

  constructor(options: IotlbOptions = {}) {
    const sets = options.sets ?? 1024;
    const ways = options.ways ?? 4;
    if (sets <= 0 || (sets & (sets - 1)) !== 0) throw new RangeError('sets must be a power of two');
    if (ways <= 0 || ways > 255) throw new RangeError('ways must be in [1, 255]');
    this.ways = ways;
    this.setMask = sets - 1;
    this.capacity = sets * ways;
    this.tag = new Uint32Array(this.capacity);
    this.asid = new Uint32Array(this.capacity);
    this.page = new Float64Array(this.capacity);
    this.sizeLog2 = new Uint8Array(this.capacity);
    this.out = new Float64Array(this.capacity);
    this.prot = new Uint8Array(this.capacity);
    this.next = new Uint8Array(sets);
  }

  /** Entries currently valid. */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.capacity; i++) if (this.sizeLog2[i] !== 0) n++;
    return n;
  }

  /** Counters since creation or the last {@link resetStats}. */
  get stats(): IotlbStats {
    return { hits: this.hits, misses: this.misses, ...this.counters };
  }

  /** Zero the counters. */
  resetStats(): void {
    this.hits = this.misses = 0;
    const c = this.counters;
    c.fills = c.evictions = c.invalidated = 0;
  }

  /** Look `iova` up under (tag, asid). On a hit fills `hit` and returns true. */
  lookup(tag: number, asid: number, iova: number, hit: TlbHit): boolean {
    const t = tag >>> 0;
    const a = asid >>> 0;
    const sizes = this.sizes;
    for (let k = 0; k < sizes.length; k++) {
      if (this.probe(t, a, iova, sizes[k] as number, this.log2s[k] as number, hit)) {
        this.hits++;
        return true;
      }
    }
    this.misses++;
    return false;
  }

  /** Cache a leaf of `pageSize` bytes mapping `iova` to `pa` (both may be unaligned). */
  fill(tag: number, asid: number, iova: number, pa: number, pageSize: number, prot: number): void {
    const log2 = Math.log2(pageSize);
    if (!Number.isInteger(log2) || log2 < 10 || log2 > 63) {
      throw new RangeError(`page size ${pageSize} is not a power of two >= 1 KiB`);
    }
    const page = Math.floor(iova / pageSize);
    const set = this.setOf(tag, asid, page, log2);
    const base = set * this.ways;
    let victim = -1;
    for (let w = 0; w < this.ways; w++) {
      const i = base + w;
      if (this.sizeLog2[i] === 0) {
        if (victim < 0) victim = i;
      } else if (
        this.sizeLog2[i] === log2 &&
        this.page[i] === page &&
        this.tag[i] === tag >>> 0 &&
        this.asid[i] === asid >>> 0
      ) {
        victim = i; // refresh in place
        break;
      }
    }
    if (victim < 0) {
      const w = this.next[set] as number;
      this.next[set] = (w + 1) % this.ways;
      victim = base + w;
      this.counters.evictions++;
    }
    this.tag[victim] = tag;
    this.asid[victim] = asid;
    this.page[victim] = page;
    this.sizeLog2[victim] = log2;
    this.out[victim] = Math.floor(pa / pageSize) * pageSize;
    this.prot[victim] = prot;
    if (!this.sizes.includes(pageSize)) {
      this.sizes.push(pageSize);
      this.sizes.sort((x, y) => x - y);
      for (let k = 0; k < this.sizes.length; k++)
        this.log2s[k] = Math.log2(this.sizes[k] as number);
    }
    this.counters.fills++;
  }

  /** Drop everything. */
  invalidateAll(): number {
    return this.invalidateWhere(() => true);
  }

  /** Drop every entry of `tag` (a domain id / VMID). */
  invalidateTag(tag: number): number {
    const t = tag >>> 0;
    return this.invalidateWhere((i) => this.tag[i] === t);
  }

  /** Drop every entry of (tag, asid). */
  invalidateAsid(tag: number, asid: number): number {
    const t = tag >>> 0;
    const a = asid >>> 0;
    return this.invalidateWhere((i) => this.tag[i] === t && this.asid[i] === a);
  }

  /**
   * Drop entries of `tag` (and of `asid` unless it is undefined) whose page
   * overlaps [iova, iova+length).
   */
  invalidateRange(tag: number, asid: number | undefined, iova: number, length: number): number {
    const t = tag >>> 0;
    const a = asid === undefined ? -1 : asid >>> 0;
    const end = iova + length;
    return this.invalidateWhere((i) => {
      if (this.tag[i] !== t || (a >= 0 && this.asid[i] !== a)) return false;
      const size = 2 ** (this.sizeLog2[i] as number);
      const start = (this.page[i] as number) * size;
      return start < end && start + size > iova;
    });
  }

  /** Every valid entry, for reports and tests. */
  entries(): {
    tag: number;
    asid: number;
    iova: number;
    pa: number;
    pageSize: number;
    prot: number;
  }[] {
    const list = [];
    for (let i = 0; i < this.capacity; i++) {
      const log2 = this.sizeLog2[i] as number;
      if (log2 === 0) continue;
      const size = 2 ** log2;
      list.push({
        tag: this.tag[i] as number,
        asid: this.asid[i] as number,
        iova: (this.page[i] as number) * size,
        pa: this.out[i] as number,
        pageSize: size,
        prot: this.prot[i] as number,
      });
    }
    return list;
  }

  private probe(
    t: number,
    a: number,
    iova: number,
    size: number,
    log2: number,
    hit: TlbHit,
  ): boolean {
    const page = Math.floor(iova / size);
    const base = this.setOf(t, a, page, log2) * this.ways;
    for (let w = 0; w < this.ways; w++) {
      const i = base + w;
      if (
        this.sizeLog2[i] === log2 &&
        this.page[i] === page &&
        this.tag[i] === t &&
        this.asid[i] === a
      ) {
        hit.pa = (this.out[i] as number) + (iova - page * size);
        hit.pageSize = size;
        hit.prot = this.prot[i] as number;
        return true;
      }
    }
    return false;
  }

  private setOf(tag: number, asid: number, page: number, log2: number): number {
    // Mix the low and high halves of the page number with the tags.
    const lo = page >>> 0;
    // Most page numbers fit 32 bits: skip the double division for them.
    const hi = page > 0xffffffff ? (page / 4294967296) >>> 0 : 0;
    let h = Math.imul(lo ^ (hi * 31) ^ log2, 0x9e3779b1);
    h ^= Math.imul(tag ^ (asid << 7), 0x85ebca77);
    return (h ^ (h >>> 15)) & this.setMask;
  }

  private invalidateWhere(match: (i: number) => boolean): number {
    let n = 0;
    for (let i = 0; i < this.capacity; i++) {
      if (this.sizeLog2[i] !== 0 && match(i)) {
        this.sizeLog2[i] = 0;
        n++;
      }
    }
    this.counters.invalidated += n;
    return n;
  }
}
