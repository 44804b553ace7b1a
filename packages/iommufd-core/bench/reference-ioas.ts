/**
 * The reference the IOAS benchmarks compare against: the simplest IOAS one
 * would write in plain JavaScript. Areas in a sorted array, free IOVA as a
 * sorted array of holes (first fit from the bottom), pinned pages in a Map
 * with a count, the domain's page table a Map from IO page to physical
 * address. Numbers, not bigints: IOVAs stay below 2^52. No ioctl decoding,
 * no accounting, no simulated memory.
 */

/** One mapped range. */
export interface ReferenceArea {
  readonly iova: number;
  readonly last: number;
  /** First user VA (page aligned). */
  readonly va: number;
}

/** A free IOVA range. */
interface Hole {
  start: number;
  last: number;
}

const PAGE = 4096;
const ENOENT = 2;
const EEXIST = 17;
const ENOSPC = 28;
const TOP = 2 ** 52 - 1;

/** The reference IOAS, optionally with one domain that pins and maps every area. */
export class ReferenceIoas {
  /** Areas, lowest first. */
  readonly areas: ReferenceArea[] = [];
  /** Free IOVA, lowest first. */
  private readonly holes: Hole[];
  /** Pinned user pages (VA page number) -> [pa, pins]. */
  readonly pinned = new Map<number, [number, number]>();
  /** The domain's page table: IO page number -> pa. */
  readonly pageTable = new Map<number, number>();

  constructor(
    /** The domain's page size (2048 for the mock, 4096 for 4 KiB leaves). */
    readonly ioPage: number,
    /** Whether a domain is attached (maps pin and fill the page table). */
    readonly domain: boolean,
    /** The domain aperture (or the whole searchable space without a domain). */
    apertureStart = PAGE,
    apertureLast = TOP,
    /** The CPU's translation of a user VA. */
    readonly vaToPa: (va: number) => number = (va) => va,
  ) {
    this.holes = [{ start: apertureStart, last: apertureLast }];
  }

  /** Map `length` bytes of user memory at `va` (page aligned), at `iova` or first fit. Returns the IOVA or -errno. */
  map(va: number, length: number, iova?: number): number {
    let at: number;
    let holeIndex: number;
    if (iova === undefined) {
      holeIndex = this.holes.findIndex((h) => {
        const start = Math.ceil(h.start / PAGE) * PAGE;
        return h.last - start + 1 >= length;
      });
      if (holeIndex < 0) return -ENOSPC;
      at = Math.ceil((this.holes[holeIndex] as Hole).start / PAGE) * PAGE;
    } else {
      holeIndex = this.holes.findIndex((h) => h.start <= iova && iova + length - 1 <= h.last);
      if (holeIndex < 0) return -EEXIST;
      at = iova;
    }
    if (this.domain) {
      for (let off = 0; off < length; off += PAGE) {
        const page = (va + off) / PAGE;
        const pin = this.pinned.get(page);
        if (pin === undefined) this.pinned.set(page, [this.vaToPa(va + off), 1]);
        else pin[1]++;
      }
      for (let off = 0; off < length; off += this.ioPage) {
        const pin = this.pinned.get(Math.floor((va + off) / PAGE)) as [number, number];
        this.pageTable.set((at + off) / this.ioPage, pin[0] + ((va + off) % PAGE));
      }
    }
    this.carve(holeIndex, at, at + length - 1);
    const area = { iova: at, last: at + length - 1, va };
    this.areas.splice(this.indexAfter(at), 0, area);
    return at;
  }

  /** Unmap the areas inside [iova, iova + length): the bytes unmapped, or -ENOENT. */
  unmap(iova: number, length: number): number {
    const last = iova + length - 1;
    const i = this.indexAfter(iova - 1);
    const before = this.areas[i - 1];
    if (before !== undefined && before.last >= iova) return -ENOENT;
    let bytes = 0;
    while (i < this.areas.length) {
      const a = this.areas[i] as ReferenceArea;
      if (a.iova > last) break;
      if (a.last > last) return bytes > 0 ? bytes : -ENOENT;
      if (this.domain) {
        for (let off = 0; off <= a.last - a.iova; off += this.ioPage) {
          this.pageTable.delete((a.iova + off) / this.ioPage);
        }
        for (let off = 0; off <= a.last - a.iova; off += PAGE) {
          const page = (a.va + off) / PAGE;
          const pin = this.pinned.get(page) as [number, number];
          if (--pin[1] === 0) this.pinned.delete(page);
        }
      }
      this.areas.splice(i, 1);
      this.free(a.iova, a.last);
      bytes += a.last - a.iova + 1;
    }
    return bytes > 0 ? bytes : -ENOENT;
  }

  /** Take [start, last] out of hole `index`. */
  private carve(index: number, start: number, last: number): void {
    const h = this.holes[index] as Hole;
    const pieces: Hole[] = [];
    if (h.start < start) pieces.push({ start: h.start, last: start - 1 });
    if (last < h.last) pieces.push({ start: last + 1, last: h.last });
    this.holes.splice(index, 1, ...pieces);
  }

  /** Give [start, last] back, merging with the holes beside it. */
  private free(start: number, last: number): void {
    let lo = 0;
    let hi = this.holes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.holes[mid] as Hole).start < start) lo = mid + 1;
      else hi = mid;
    }
    const prev = this.holes[lo - 1];
    const next = this.holes[lo];
    if (prev !== undefined && prev.last + 1 === start) {
      prev.last = last;
      if (next !== undefined && next.start === last + 1) {
        prev.last = next.last;
        this.holes.splice(lo, 1);
      }
    } else if (next !== undefined && next.start === last + 1) {
      next.start = start;
    } else {
      this.holes.splice(lo, 0, { start, last });
    }
  }

  /** Index of the first area starting after `iova`. */
  private indexAfter(iova: number): number {
    let lo = 0;
    let hi = this.areas.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.areas[mid] as ReferenceArea).iova <= iova) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** The reference's ioctl: read the id from the argument and look it up. */
export function referenceDestroy(objects: Map<number, object>, arg: Uint8Array): number {
  const view = new DataView(arg.buffer, arg.byteOffset, arg.byteLength);
  if (view.getUint32(0, true) < 8) return -22;
  const id = view.getUint32(4, true);
  return objects.delete(id) ? 0 : -ENOENT;
}
