/**
 * Helpers of the model-based and fuzz tests: a plain reference of what one
 * IOAS does with MAP, UNMAP, COPY, IOVA_RANGES, ALLOW_IOVAS and ADD_RESERVED
 * (sorted arrays, no trees, the kernel's rules written out step by step from
 * io_pagetable.c and ioas.c of Linux 6.17), and a small seeded PRNG.
 */
import {
  EADDRINUSE,
  EEXIST,
  EFAULT,
  EINVAL,
  ENOENT,
  ENOSPC,
  EOPNOTSUPP,
  EOVERFLOW,
  EPERM,
  IOMMU_IOAS_MAP_FIXED_IOVA,
  IOMMU_IOAS_MAP_READABLE,
  IOMMU_IOAS_MAP_WRITEABLE,
} from '@iommufd-sim/uapi-types';

export const MAX = (1n << 64n) - 1n; // ULONG_MAX == U64_MAX on x86-64
const PAGE = 4096n;
const HPAGE = 2n * 1024n * 1024n;
const MAP_FLAGS = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

/** An inclusive range. */
export interface Span {
  start: bigint;
  last: bigint;
}

/** One MAP's source memory (the kernel's iopt_pages): COPY shares it. */
export interface RefPages {
  /** Page-aligned first VA. */
  readonly base: bigint;
  readonly writable: boolean;
}

/** One area. */
export interface RefArea {
  readonly iova: bigint;
  readonly last: bigint;
  readonly pages: RefPages;
  /** Byte offset of the area's first IOVA inside `pages`. */
  readonly startByte: bigint;
}

/** A result: rc (0 or -errno) and the value written back on success. */
export interface RefResult {
  rc: number;
  value?: bigint;
}

const fail = (errno: number): RefResult => ({ rc: -errno });

function intersects(a: Span, start: bigint, last: bigint): boolean {
  return a.start <= last && start <= a.last;
}

/** Sorted union of the spans; adjacent spans merge too (interval_tree_span_iter does). */
export function mergeSpans(spans: readonly Span[]): Span[] {
  const sorted = [...spans].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Span[] = [];
  for (const s of sorted) {
    const top = out[out.length - 1];
    if (top !== undefined && s.start <= top.last + 1n) {
      if (s.last > top.last) top.last = s.last;
    } else out.push({ start: s.start, last: s.last });
  }
  return out;
}

function roundupPow2(v: bigint): bigint {
  let p = 1n;
  while (p < v) p <<= 1n;
  return p;
}

/** __alloc_iova_check_range: the aligned start in [start, last] that fits `length`, if any. */
function fitIn(
  start: bigint,
  last: bigint,
  length: bigint,
  align: bigint,
  pageOffset: bigint,
): bigint | undefined {
  const up = start + align - 1n;
  if (up > MAX) return undefined;
  const aligned = (up & ~(align - 1n)) | pageOffset;
  if (aligned >= last || last - aligned < length - 1n) return undefined;
  return aligned;
}

/** One IOAS of the reference. */
export class RefIoas {
  areas: RefArea[] = [];
  reserved: Span[] = [];
  allowed: Span[] = [];
  alignment = 1n;

  constructor(
    readonly id: number,
    /** Whether a mock domain is attached (pins pages, aperture, alignment 2048). */
    readonly domain: boolean,
  ) {
    if (domain) {
      // The mock domain's aperture is [16 MiB, 2 GiB - 1]; its page is 2 KiB.
      this.reserved.push({ start: 0n, last: (16n << 20n) - 1n }, { start: 2n << 30n, last: MAX });
      this.alignment = 2048n;
    }
  }

  /** IOAS_IOVA_RANGES: the holes of the reserved ranges. */
  iovaRanges(): Span[] {
    const out: Span[] = [];
    let next = 0n;
    for (const s of mergeSpans(this.reserved)) {
      if (s.start > next) out.push({ start: next, last: s.start - 1n });
      next = s.last + 1n;
    }
    if (next <= MAX) out.push({ start: next, last: MAX });
    return out;
  }

  /** iopt_alloc_iova. */
  allocIova(addr: bigint, length: bigint): RefResult {
    if (length === 0n || length >= MAX / 2n) return fail(EOVERFLOW);
    let align = roundupPow2(length);
    if (addr !== 0n) {
      const low = addr & -addr;
      if (low < align) align = low;
    }
    if (align >= HPAGE) align = HPAGE;
    if (align < this.alignment) return fail(EINVAL);
    const pageOffset = addr % PAGE;
    const window: Span = { start: PAGE, last: MAX - PAGE };
    const spans =
      this.allowed.length === 0
        ? [window]
        : mergeSpans(this.allowed)
            .map((s) => ({
              start: s.start > window.start ? s.start : window.start,
              last: s.last < window.last ? s.last : window.last,
            }))
            .filter((s) => s.start <= s.last);
    const used = mergeSpans([
      ...this.reserved,
      ...this.areas.map((a) => ({ start: a.iova, last: a.last })),
    ]);
    for (const span of spans) {
      const first = fitIn(span.start, span.last, length, align, pageOffset);
      if (first === undefined) continue;
      let cur = first;
      for (const u of used) {
        if (u.last < cur) continue;
        if (u.start > span.last) break;
        if (u.start > cur) {
          const got = fitIn(cur, u.start - 1n, length, align, pageOffset);
          if (got !== undefined) return { rc: 0, value: got };
        }
        cur = u.last + 1n;
        if (cur > span.last) break;
      }
      if (cur <= span.last) {
        const got = fitIn(cur, span.last, length, align, pageOffset);
        if (got !== undefined) return { rc: 0, value: got };
      }
    }
    return fail(ENOSPC);
  }

  /** iopt_check_iova. */
  checkIova(iova: bigint, length: bigint): number {
    if (iova % this.alignment !== 0n) return -EINVAL;
    const last = iova + length - 1n;
    if (last > MAX) return -EOVERFLOW;
    if (this.reserved.some((r) => intersects(r, iova, last))) return -EINVAL;
    if (this.areas.some((a) => a.iova <= last && iova <= a.last)) return -EEXIST;
    return 0;
  }

  /**
   * iopt_map_pages: the slices one after the other at `iova` (or an automatic
   * IOVA). `mapped(va)` says whether a page can be pinned (only asked with a domain).
   */
  mapPages(
    slices: readonly { pages: RefPages; startByte: bigint; length: bigint }[],
    length: bigint,
    iova: bigint | undefined,
    write: boolean,
    mapped: (va: bigint) => boolean,
  ): RefResult {
    if (length === 0n || length % this.alignment !== 0n) return fail(EINVAL);
    let at: bigint;
    if (iova === undefined) {
      const first = slices[0] as (typeof slices)[number];
      const got = this.allocIova(first.pages.base + first.startByte, length);
      if (got.rc !== 0) return got;
      at = got.value as bigint;
    } else {
      const rc = this.checkIova(iova, length);
      if (rc !== 0) return { rc };
      at = iova;
    }
    const made: RefArea[] = [];
    let cursor = at;
    for (const s of slices) {
      if (write && !s.pages.writable) return fail(EPERM);
      if ((s.startByte % PAGE) % this.alignment !== 0n) return fail(EINVAL);
      made.push({
        iova: cursor,
        last: cursor + s.length - 1n,
        pages: s.pages,
        startByte: s.startByte,
      });
      cursor += s.length;
    }
    if (this.domain) {
      for (const a of made) {
        for (const i of pageIndexes(a)) if (!mapped(a.pages.base + i * PAGE)) return fail(EFAULT);
      }
    }
    this.areas.push(...made);
    this.areas.sort((a, b) => (a.iova < b.iova ? -1 : 1));
    return { rc: 0, value: at };
  }

  /** iopt_unmap_iova_range (not atomic: areas removed before a failing one stay removed). */
  unmapRange(start: bigint, last: bigint): RefResult {
    let bytes = 0n;
    for (;;) {
      const a = this.areas.find((x) => x.iova <= last && start <= x.last);
      if (a === undefined) break;
      if (a.iova < start || a.last > last) return fail(ENOENT);
      this.areas.splice(this.areas.indexOf(a), 1);
      bytes += a.last - a.iova + 1n;
    }
    if (bytes === 0n) return fail(ENOENT);
    return { rc: 0, value: bytes };
  }

  /** IOMMU_IOAS_UNMAP after the IOAS lookup. */
  unmap(iova: bigint, length: bigint): RefResult {
    if (iova === 0n && length === MAX) {
      const r = this.unmapRange(0n, MAX);
      return r.rc === -ENOENT ? { rc: 0, value: 0n } : r;
    }
    if (iova >= MAX || length >= MAX) return fail(EOVERFLOW);
    if (length === 0n) return fail(EINVAL);
    const last = iova + length - 1n;
    if (last > MAX) return fail(EOVERFLOW);
    return this.unmapRange(iova, last);
  }

  /** iopt_get_pages: the slices behind [iova, iova + length), contiguous and hole-free. */
  getSlices(
    iova: bigint,
    length: bigint,
  ): { pages: RefPages; startByte: bigint; length: bigint }[] | number {
    if (length === 0n) return -EINVAL;
    const last = iova + length - 1n;
    if (last > MAX) return -EOVERFLOW;
    const out: { pages: RefPages; startByte: bigint; length: bigint }[] = [];
    let cur = iova;
    for (;;) {
      const a = this.areas.find((x) => x.iova <= cur && cur <= x.last);
      if (a === undefined || (cur !== iova && a.iova !== cur)) return -ENOENT;
      const end = a.last < last ? a.last : last;
      out.push({ pages: a.pages, startByte: a.startByte + (cur - a.iova), length: end - cur + 1n });
      if (a.last >= last) return out;
      cur = a.last + 1n;
    }
  }

  /** IOMMU_TEST_OP_ADD_RESERVED after the IOAS lookup (length >= 1, no wrap). */
  addReserved(start: bigint, length: bigint): number {
    const last = start + length - 1n;
    if (this.areas.some((a) => a.iova <= last && start <= a.last)) return -EADDRINUSE;
    if (this.allowed.some((a) => intersects(a, start, last))) return -EADDRINUSE;
    this.reserved.push({ start, last });
    return 0;
  }

  /** IOMMU_IOAS_ALLOW_IOVAS after the IOAS lookup. */
  allowIovas(ranges: readonly Span[]): number {
    const seen: Span[] = [];
    for (const r of ranges) {
      if (r.start >= r.last) return -EINVAL;
      if (seen.some((s) => intersects(s, r.start, r.last))) return -EINVAL;
      seen.push(r);
    }
    if (seen.some((r) => this.reserved.some((s) => intersects(s, r.start, r.last)))) {
      return -EADDRINUSE;
    }
    this.allowed = seen.map((r) => ({ ...r }));
    return 0;
  }
}

/** The page indexes of its pages object an area covers. */
export function pageIndexes(a: RefArea): bigint[] {
  const first = a.startByte / PAGE;
  const last = (a.startByte + (a.last - a.iova)) / PAGE;
  const out: bigint[] = [];
  for (let i = first; i <= last; i++) out.push(i);
  return out;
}

/** The reference of one /dev/iommu with a few IOASes. */
export class RefContext {
  readonly ioas = new Map<number, RefIoas>();

  constructor(
    /** Whether a user page can be pinned (it is mapped in the process). */
    readonly mapped: (va: bigint) => boolean,
  ) {}

  /** IOMMU_IOAS_MAP. `iova` undefined means an automatic IOVA (the field holds 0). */
  map(
    id: number,
    flags: number,
    uptr: bigint,
    length: bigint,
    iova: bigint | undefined,
  ): RefResult {
    const allFlags = iova === undefined ? flags : flags | IOMMU_IOAS_MAP_FIXED_IOVA;
    if ((allFlags & ~MAP_FLAGS) !== 0) return fail(EOPNOTSUPP);
    if ((iova ?? 0n) >= MAX || length >= MAX) return fail(EOVERFLOW);
    if ((flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)) === 0) return fail(EINVAL);
    const ioas = this.ioas.get(id);
    if (ioas === undefined) return fail(ENOENT);
    // iopt_alloc_user_pages: the wrap check comes before iopt_alloc_pages' length check.
    if (uptr + length > MAX) return fail(EOVERFLOW);
    if (length === 0n || length > MAX - PAGE) return fail(EINVAL);
    const startByte = uptr % PAGE;
    const pages: RefPages = {
      base: uptr - startByte,
      writable: (flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0,
    };
    return ioas.mapPages(
      [{ pages, startByte, length }],
      length,
      iova,
      (flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0,
      this.mapped,
    );
  }

  /** IOMMU_IOAS_UNMAP. */
  unmap(id: number, iova: bigint, length: bigint): RefResult {
    const ioas = this.ioas.get(id);
    if (ioas === undefined) return fail(ENOENT);
    return ioas.unmap(iova, length);
  }

  /** IOMMU_IOAS_COPY. `dstIova` undefined means an automatic IOVA (the field holds 0). */
  copy(
    dstId: number,
    srcId: number,
    srcIova: bigint,
    length: bigint,
    dstIova: bigint | undefined,
    flags: number,
  ): RefResult {
    const allFlags = dstIova === undefined ? flags : flags | IOMMU_IOAS_MAP_FIXED_IOVA;
    if ((allFlags & ~MAP_FLAGS) !== 0) return fail(EOPNOTSUPP);
    if (length >= MAX || srcIova >= MAX || (dstIova ?? 0n) >= MAX) return fail(EOVERFLOW);
    if ((flags & (IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE)) === 0) return fail(EINVAL);
    const src = this.ioas.get(srcId);
    if (src === undefined) return fail(ENOENT);
    const slices = src.getSlices(srcIova, length);
    if (typeof slices === 'number') return { rc: slices };
    const dst = this.ioas.get(dstId);
    if (dst === undefined) return fail(ENOENT);
    return dst.mapPages(
      slices,
      length,
      dstIova,
      (flags & IOMMU_IOAS_MAP_WRITEABLE) !== 0,
      this.mapped,
    );
  }

  /**
   * Expected pin count of each page of [buf, buf + pages * 4096): one pin per
   * pages object whose page some area in an IOAS with a domain covers.
   */
  expectedPins(buf: bigint, pages: number): number[] {
    const pinned = new Map<RefPages, Set<bigint>>();
    for (const ioas of this.ioas.values()) {
      if (!ioas.domain) continue;
      for (const a of ioas.areas) {
        let set = pinned.get(a.pages);
        if (set === undefined) {
          set = new Set();
          pinned.set(a.pages, set);
        }
        for (const i of pageIndexes(a)) set.add(i);
      }
    }
    const counts = new Array<number>(pages).fill(0);
    for (const [p, set] of pinned) {
      for (const i of set) {
        const page = Number((p.base + i * PAGE - buf) / PAGE);
        counts[page] = (counts[page] ?? 0) + 1;
      }
    }
    return counts;
  }
}

/** mulberry32: a small seeded PRNG (reproducible fuzz runs). */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
