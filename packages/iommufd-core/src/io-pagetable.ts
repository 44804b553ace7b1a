/**
 * io_pagetable: the IOVA space of one IOAS. Areas (what MAP and COPY made),
 * reserved ranges (domain apertures, device regions, test reservations) and
 * the allowed list; IOVA allocation with the kernel's first-fit rule; the
 * domains every area is written into and the accesses that pin through it.
 *
 * Areas and merged reserved spans share one ordered range tree, so the
 * automatic IOVA search walks the holes of both at once in O(log n).
 * Checks run in the kernel's order so the first errno matches, and every
 * failure leaves the table as it was.
 */
import { IOMMU_WRITE, type IommuDomain } from '@iommufd-sim/hw-models';
import {
  EADDRINUSE,
  EBUSY,
  EDEADLOCK,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOMEM,
  ENOSPC,
  EOVERFLOW,
  EPERM,
} from '@iommufd-sim/uapi-types';
import { HPAGE_SIZE, PAGE_SIZE } from './address-space.js';
import type { Failure } from './objects.js';
import type { IoptPages } from './pages.js';
import { type RangeNode, RangeTree } from './range-tree.js';

/** ULONG_MAX on x86-64. */
export const ULONG_MAX = (1n << 64n) - 1n;
const PAGE = BigInt(PAGE_SIZE);

/** One mapped range of an IOAS. */
export interface Area {
  /** First IOVA. */
  readonly iova: bigint;
  /** Last IOVA (inclusive). */
  readonly last: bigint;
  /** The memory behind it; null while the area is being set up or torn down. */
  pages: IoptPages | null;
  /** Byte offset of the area's first IOVA inside `pages`. */
  readonly startByte: bigint;
  /** First and last page index of `pages` it covers. */
  readonly firstIndex: number;
  readonly lastIndex: number;
  /** Offset of the first IOVA inside its page (the kernel's page_offset). */
  readonly pageOffset: number;
  /** IOMMU_READ / IOMMU_WRITE / IOMMU_CACHE. */
  readonly prot: number;
  /** Accesses that pinned part of it. */
  numAccesses: number;
  /** Internal locks (HW queues). */
  numLocks: number;
  /** Its pages are in use for the domains (the kernel's storage_domain). */
  filled: boolean;
}

/** A reserved range and who asked for it. */
export interface Reservation {
  readonly start: bigint;
  readonly last: bigint;
  /** A domain, a device, or null for IOMMU_TEST_OP_ADD_RESERVED. */
  readonly owner: object | null;
}

/** A piece of source memory to map (IOAS_MAP gives one, IOAS_COPY one per source area). */
export interface PagesSlice {
  readonly pages: IoptPages;
  /** Byte offset in `pages`. */
  readonly startByte: bigint;
  readonly length: bigint;
}

/** What the io_pagetable needs of an access (iommufd_access). */
export interface IoptAccess {
  /** The alignment it needs (PAGE_SIZE when it pins pages, else 1). */
  readonly iovaAlignment: number;
  /** The kernel's unmap callback: drop every pin it holds in [iova, iova + length). */
  notifyUnmap(iova: bigint, length: bigint): void;
}

type Entry = { readonly area: Area } | { readonly reserved: true };

export type { Failure };

function failure(errno: number, reason: string): Failure {
  return { errno, reason };
}

function hex(v: bigint | number): string {
  return `0x${v.toString(16)}`;
}

/** Lowest set bit of a positive bigint, as a bigint power of two. */
function lowestBit(v: bigint): bigint {
  return v & -v;
}

function roundupPow2(v: bigint): bigint {
  let p = 1n;
  while (p < v) p <<= 1n;
  return p;
}

/** One IOAS's io_pagetable. */
export class IoPagetable {
  /** Areas and merged reserved spans. */
  private readonly tree = new RangeTree<Entry>();
  private readonly reservations: Reservation[] = [];
  private allowed: { start: bigint; last: bigint }[] = [];
  /** Attached paging domains, in attach order. */
  readonly domains: IommuDomain[] = [];
  /** Attached accesses. */
  readonly accesses = new Set<IoptAccess>();
  /** The IOVA alignment every map must meet (1 for a fresh IOAS). */
  iovaAlignment = 1;
  /** IOMMU_OPTION_HUGE_PAGES = 0. */
  disableLargePages = false;

  constructor(
    /** RLIMIT_MEMLOCK in pages of whoever is pinning right now. */
    private readonly limitPages: () => number,
  ) {}

  /** Every area, lowest first. */
  *areas(): IterableIterator<Area> {
    for (const node of this.tree) if ('area' in node.value) yield node.value.area;
  }

  /** Number of areas. */
  get areaCount(): number {
    let n = 0;
    for (const _ of this.areas()) n++;
    return n;
  }

  /** The reservations, in the order they were made. */
  get reserved(): readonly Reservation[] {
    return this.reservations;
  }

  /** The allowed list (empty: everything is allowed). */
  get allowedRanges(): readonly { start: bigint; last: bigint }[] {
    return this.allowed;
  }

  /** IOAS_IOVA_RANGES: the holes of the reserved ranges over the whole 64-bit space. */
  iovaRanges(): { start: bigint; last: bigint }[] {
    const spans = this.mergedReservations();
    const out: { start: bigint; last: bigint }[] = [];
    let next = 0n;
    for (const s of spans) {
      if (s.start > next) out.push({ start: next, last: s.start - 1n });
      next = s.last + 1n;
    }
    if (next <= ULONG_MAX) out.push({ start: next, last: ULONG_MAX });
    return out;
  }

  // ---- IOVA checks and allocation ----------------------------------------

  /** iopt_check_iova: a FIXED iova must be aligned, must not wrap, and must hit no reservation or area. */
  checkIova(iova: bigint, length: bigint): Failure | undefined {
    const align = BigInt(this.iovaAlignment);
    if (iova % align !== 0n) {
      return failure(EINVAL, `iova ${hex(iova)} is not aligned to the IOAS alignment ${align}`);
    }
    const last = iova + length - 1n;
    if (last > ULONG_MAX) return failure(EOVERFLOW, `iova ${hex(iova)} + length wraps past 2^64`);
    // One walk: a reservation anywhere in the range wins (EINVAL), else the first area is EEXIST.
    let hit: RangeNode<Entry> | undefined;
    for (let n = this.tree.firstIntersecting(iova, last); n !== undefined; n = this.tree.next(n)) {
      if (n.start > last) break;
      if ('reserved' in n.value) {
        return failure(
          EINVAL,
          `[${hex(iova)}, ${hex(last)}] touches the reserved range [${hex(n.start)}, ${hex(n.last)}]`,
        );
      }
      hit ??= n;
    }
    if (hit !== undefined) {
      return failure(
        EEXIST,
        `[${hex(iova)}, ${hex(last)}] overlaps the mapped area [${hex(hit.start)}, ${hex(hit.last)}]`,
      );
    }
    return undefined;
  }

  /** iopt_alloc_iova: the kernel's automatic IOVA for `length` bytes from source address `addr`. */
  allocIova(addr: bigint, length: bigint): bigint | Failure {
    if (length === 0n || length >= ULONG_MAX / 2n) {
      return failure(EOVERFLOW, `length ${hex(length)} cannot be allocated automatically`);
    }
    const pageOffset = addr % PAGE;
    let alignment = roundupPow2(length);
    if (addr !== 0n) {
      const low = lowestBit(addr);
      if (low < alignment) alignment = low;
    }
    const maxAlign = BigInt(HPAGE_SIZE);
    if (alignment >= maxAlign) alignment = maxAlign;
    if (alignment < BigInt(this.iovaAlignment)) {
      return failure(
        EINVAL,
        `the natural alignment ${alignment} of this map is below the IOAS alignment ${this.iovaAlignment}`,
      );
    }
    const lo = PAGE;
    const hi = ULONG_MAX - PAGE;
    // Adjacent allowed ranges form one span, as interval_tree_span_iter merges them.
    const spans: { start: bigint; last: bigint }[] = [];
    for (const r of this.allowed.length === 0 ? [{ start: lo, last: hi }] : this.allowed) {
      const top = spans[spans.length - 1];
      if (top !== undefined && r.start === top.last + 1n) top.last = r.last;
      else spans.push({ start: r.start, last: r.last });
    }
    for (const span of spans) {
      const start = span.start > lo ? span.start : lo;
      const last = span.last < hi ? span.last : hi;
      if (start > last) continue;
      // The allowed span itself must fit first (__alloc_iova_check_used).
      const first = alignUp(start, alignment, pageOffset);
      if (first === undefined || first >= last || last - first < length - 1n) continue;
      const found = this.tree.findHole(first, last, length, alignment, pageOffset);
      if (found !== undefined) return found;
    }
    return failure(
      ENOSPC,
      `no free IOVA range of ${hex(length)} bytes aligned to ${alignment}${this.allowed.length > 0 ? ' inside the allowed ranges' : ''}`,
    );
  }

  // ---- map, unmap, copy ---------------------------------------------------

  /**
   * iopt_map_pages: put `slices` one after the other at `iova` (or an
   * automatic IOVA), fill every domain, and return the IOVA used.
   */
  mapPages(
    slices: readonly PagesSlice[],
    length: bigint,
    iova: bigint | undefined,
    prot: number,
  ): bigint | Failure {
    const align = BigInt(this.iovaAlignment);
    if (length === 0n || length % align !== 0n) {
      return failure(
        EINVAL,
        length === 0n
          ? 'length is 0'
          : `length ${hex(length)} is not a multiple of the IOAS alignment ${align}`,
      );
    }
    let at: bigint;
    if (iova === undefined) {
      const first = slices[0] as PagesSlice;
      const src = first.pages.source;
      const base = src.kind === 'user' ? src.base : BigInt(src.base);
      const got = this.allocIova(base + first.startByte, length);
      if (typeof got !== 'bigint') return got;
      at = got;
    } else {
      const bad = this.checkIova(iova, length);
      if (bad !== undefined) return bad;
      at = iova;
    }
    // Insert the areas with null pages: they reserve the IOVA while they fill.
    const made: { area: Area; node: RangeNode<Entry>; slice: PagesSlice }[] = [];
    const undoInsert = (): void => {
      for (const m of made) this.tree.remove(m.node);
    };
    let cursor = at;
    for (const slice of slices) {
      const area = this.makeArea(slice, cursor, prot);
      if ('errno' in area) {
        undoInsert();
        return area;
      }
      made.push({ area, node: this.tree.insert(area.iova, area.last, { area }), slice });
      cursor += slice.length;
    }
    // Fill the domains; on failure undo the ones already filled.
    for (let i = 0; i < made.length; i++) {
      const m = made[i] as (typeof made)[number];
      const rc = this.fillDomains(m.area, m.slice.pages);
      if (rc !== undefined) {
        for (let j = 0; j < i; j++) {
          const done = made[j] as (typeof made)[number];
          this.unfillDomains(done.area, done.slice.pages);
        }
        undoInsert();
        return rc;
      }
    }
    for (const m of made) {
      m.area.pages = m.slice.pages;
    }
    return at;
  }

  private makeArea(slice: PagesSlice, iova: bigint, prot: number): Area | Failure {
    if ((prot & IOMMU_WRITE) !== 0 && !slice.pages.writable) {
      return failure(EPERM, 'write permission asked for pages that were mapped read-only');
    }
    const pageOffset = Number(slice.startByte % PAGE);
    if (pageOffset % this.iovaAlignment !== 0) {
      return failure(
        EINVAL,
        `the source's offset ${pageOffset} inside its page is not aligned to the IOAS alignment ${this.iovaAlignment}`,
      );
    }
    const last = iova + slice.length - 1n;
    if (last > ULONG_MAX) return failure(EOVERFLOW, 'the area wraps past 2^64');
    const lastByte = slice.startByte + slice.length - 1n;
    const lastIndex = Number(lastByte / PAGE);
    if (lastIndex >= slice.pages.npages) return failure(EOVERFLOW, 'the slice runs past its pages');
    return {
      iova,
      last,
      pages: null,
      startByte: slice.startByte,
      firstIndex: Number(slice.startByte / PAGE),
      lastIndex,
      pageOffset,
      prot,
      numAccesses: 0,
      numLocks: 0,
      filled: false,
    };
  }

  /**
   * iopt_unmap_iova: {@link unmapRange} of [iova, iova + length), after
   * length 0 (EINVAL) and a wrap past 2^64 (EOVERFLOW) are refused.
   */
  unmapIova(iova: bigint, length: bigint): { bytes: bigint; failure?: Failure } {
    if (length === 0n) return { bytes: 0n, failure: failure(EINVAL, 'length is 0') };
    const last = iova + length - 1n;
    if (last > ULONG_MAX) {
      return { bytes: 0n, failure: failure(EOVERFLOW, 'iova + length wraps past 2^64') };
    }
    return this.unmapRange(iova, last);
  }

  /**
   * iopt_unmap_iova_range: remove every area inside [start, last]. An area
   * that is only partly inside is ENOENT; areas removed before it stay
   * removed (the kernel is not atomic here). Returns the bytes unmapped.
   */
  unmapRange(start: bigint, last: bigint): { bytes: bigint; failure?: Failure } {
    let bytes = 0n;
    let tries = 0;
    let from = start;
    for (;;) {
      const node = this.firstAreaIn(from, last);
      if (node === undefined) break;
      const area = (node.value as { area: Area }).area;
      if (area.pages === null) {
        return { bytes, failure: failure(EBUSY, 'the area is still being set up') };
      }
      if (area.numLocks > 0) {
        return {
          bytes,
          failure: failure(
            EBUSY,
            `the area [${hex(area.iova)}, ${hex(area.last)}] is locked by a HW queue`,
          ),
        };
      }
      if (area.iova < start || area.last > last) {
        return {
          bytes,
          failure: failure(
            ENOENT,
            `the area [${hex(area.iova)}, ${hex(area.last)}] is not entirely inside [${hex(start)}, ${hex(last)}]; areas cannot be split`,
          ),
        };
      }
      if (area.iova !== from) tries = 0;
      if (area.numAccesses > 0) {
        from = area.iova;
        for (const access of [...this.accesses]) {
          access.notifyUnmap(area.iova, area.last - area.iova + 1n);
        }
        tries++;
        if (tries > 100) {
          return {
            bytes,
            failure: failure(EDEADLOCK, 'an access does not release its pins on unmap'),
          };
        }
        continue;
      }
      const pages = area.pages;
      area.pages = null;
      this.unfillDomains(area, pages);
      this.tree.remove(node);
      bytes += area.last - area.iova + 1n;
      from = area.iova;
    }
    if (bytes === 0n) {
      return {
        bytes,
        failure: failure(ENOENT, `nothing is mapped in [${hex(start)}, ${hex(last)}]`),
      };
    }
    return { bytes };
  }

  /** iopt_unmap_all: everything; an empty IOAS is fine. */
  unmapAll(): { bytes: bigint; failure?: Failure } {
    const r = this.unmapRange(0n, ULONG_MAX);
    if (r.failure?.errno === ENOENT) return { bytes: r.bytes };
    return r;
  }

  /**
   * iopt_cut_iova, for VFIO type1 (v1) compatibility: split the area that
   * holds each IOVA of `iovas` so the IOVA ends one area and the next byte
   * starts another. IOVAs in no area, or at an area's first or last byte, need
   * no cut. Stops at the first refusal; cuts made before it stay.
   */
  cutIova(iovas: readonly bigint[]): Failure | undefined {
    for (const iova of iovas) {
      const node = this.tree.find(iova);
      if (node === undefined || !('area' in node.value)) continue;
      const bad = this.splitArea(node, node.value.area, iova);
      if (bad !== undefined) return bad;
    }
    return undefined;
  }

  /**
   * iopt_area_split: `area` becomes [area.iova, iova] and [iova + 1, area.last]
   * over the same pages. Nothing is pinned or unpinned: a filled area is only
   * split with large pages disabled, where the alignment is at least a page,
   * so the halves share no page; and the domains hold PAGE_SIZE entries then,
   * which each half can unmap alone.
   */
  private splitArea(node: RangeNode<Entry>, area: Area, iova: bigint): Failure | undefined {
    if (iova === area.iova || iova === area.last) return undefined;
    const where = `[${hex(area.iova)}, ${hex(area.last)}]`;
    if (area.pages === null) {
      return failure(EBUSY, `the area ${where} is being set up or torn down`);
    }
    const newStart = iova + 1n;
    const rhsStartByte = area.startByte + (newStart - area.iova);
    const align = BigInt(this.iovaAlignment);
    if (newStart % align !== 0n || rhsStartByte % align !== 0n) {
      return failure(
        EINVAL,
        `cannot cut the area ${where} after ${hex(iova)}: not aligned to the IOAS alignment ${align}`,
      );
    }
    if (area.numAccesses > 0 || area.numLocks > 0) {
      return failure(EINVAL, `cannot cut the area ${where}: an access has pinned part of it`);
    }
    if (area.filled && !this.disableLargePages) {
      return failure(
        EINVAL,
        `cannot cut the area ${where}: a domain may map it with large pages (HUGE_PAGES is 1)`,
      );
    }
    const lhs: Area = {
      ...area,
      last: iova,
      lastIndex: Number((area.startByte + (iova - area.iova)) / PAGE),
    };
    const rhs: Area = {
      ...area,
      iova: newStart,
      startByte: rhsStartByte,
      firstIndex: Number(rhsStartByte / PAGE),
      pageOffset: Number(rhsStartByte % PAGE),
    };
    this.tree.remove(node);
    this.tree.insert(lhs.iova, lhs.last, { area: lhs });
    this.tree.insert(rhs.iova, rhs.last, { area: rhs });
    return undefined;
  }

  /**
   * iopt_get_pages: the slices behind [iova, iova + length), which must be
   * covered by areas with no hole (ENOENT otherwise).
   */
  getSlices(iova: bigint, length: bigint): PagesSlice[] | Failure {
    if (length === 0n) return failure(EINVAL, 'length is 0');
    const last = iova + length - 1n;
    if (last > ULONG_MAX) return failure(EOVERFLOW, 'iova + length wraps past 2^64');
    const slices: PagesSlice[] = [];
    const ok = this.forEachContig(iova, last, (area, cur, end) => {
      const pages = area.pages as IoptPages;
      slices.push({ pages, startByte: area.startByte + (cur - area.iova), length: end - cur + 1n });
      return true;
    });
    if (!ok) {
      return failure(
        ENOENT,
        `[${hex(iova)}, ${hex(last)}] is not covered by mapped areas without a hole`,
      );
    }
    return slices;
  }

  /**
   * Walk the areas covering [iova, last] with no hole (iopt_for_each_contig_area).
   * `fn` gets each area and the part [cur, end] of it inside the range, and
   * may stop the walk by returning false. The result says whether the whole
   * range was covered (and walked).
   */
  forEachContig(
    iova: bigint,
    last: bigint,
    fn: (area: Area, cur: bigint, end: bigint) => boolean,
  ): boolean {
    let cur = iova;
    // The first area may start before iova; each later one must start right after the previous.
    let node = this.tree.find(iova);
    while (node !== undefined && 'area' in node.value) {
      const area = node.value.area;
      if (area.pages === null || (cur !== iova && area.iova !== cur)) return false;
      const end = area.last < last ? area.last : last;
      if (!fn(area, cur, end)) return false;
      if (area.last >= last) return true;
      cur = area.last + 1n;
      node = this.tree.next(node);
    }
    return false;
  }

  // ---- reserved and allowed ranges ---------------------------------------

  /** iopt_reserve_iova: EADDRINUSE if an area or an allowed range intersects. */
  reserve(start: bigint, last: bigint, owner: object | null): Failure | undefined {
    const area = this.firstAreaIn(start, last);
    if (area !== undefined) {
      return failure(
        EADDRINUSE,
        `[${hex(start)}, ${hex(last)}] intersects the mapped area [${hex(area.start)}, ${hex(area.last)}]`,
      );
    }
    const allowed = this.allowed.find((a) => a.start <= last && start <= a.last);
    if (allowed !== undefined) {
      return failure(
        EADDRINUSE,
        `[${hex(start)}, ${hex(last)}] intersects the allowed range [${hex(allowed.start)}, ${hex(allowed.last)}]`,
      );
    }
    this.reservations.push({ start, last, owner });
    this.rebuildReservedSpans();
    return undefined;
  }

  /** Drop every reservation of `owner`. */
  removeReserved(owner: object | null): void {
    const before = this.reservations.length;
    for (let i = this.reservations.length - 1; i >= 0; i--) {
      if ((this.reservations[i] as Reservation).owner === owner) this.reservations.splice(i, 1);
    }
    if (this.reservations.length !== before) this.rebuildReservedSpans();
  }

  /** iopt_set_allow_iova: replace the allowed list; EADDRINUSE (old list kept) if one hits a reservation. */
  setAllowed(ranges: { start: bigint; last: bigint }[]): Failure | undefined {
    for (const r of ranges) {
      const hit = this.reservations.find((s) => s.start <= r.last && r.start <= s.last);
      if (hit !== undefined) {
        return failure(
          EADDRINUSE,
          `the allowed range [${hex(r.start)}, ${hex(r.last)}] intersects the reserved range [${hex(hit.start)}, ${hex(hit.last)}]`,
        );
      }
    }
    this.allowed = [...ranges].sort((a, b) => (a.start < b.start ? -1 : 1));
    return undefined;
  }

  // ---- domains -------------------------------------------------------------

  /**
   * iopt_table_add_domain: raise the alignment to the domain's smallest page,
   * reserve what is outside its aperture, and write every area into it.
   */
  addDomain(domain: IommuDomain): Failure | undefined {
    const minPage = Math.min(...domain.geometry.pageSizes);
    const newAlign = Math.max(minPage, this.iovaAlignment);
    if (newAlign > PAGE_SIZE) {
      return failure(EINVAL, `the domain's smallest page ${minPage} is larger than PAGE_SIZE`);
    }
    if (newAlign !== this.iovaAlignment) {
      const bad = this.checkAlignment(newAlign);
      if (bad !== undefined) return bad;
    }
    const start = BigInt(domain.geometry.apertureStart);
    const end = BigInt(domain.geometry.apertureLast);
    if (start !== 0n) {
      const bad = this.reserve(0n, start - 1n, domain);
      if (bad !== undefined) {
        this.removeReserved(domain);
        return {
          errno: bad.errno,
          reason: `the domain's aperture starts at ${hex(start)} but ${bad.reason}`,
        };
      }
    }
    if (end < ULONG_MAX) {
      const bad = this.reserve(end + 1n, ULONG_MAX, domain);
      if (bad !== undefined) {
        this.removeReserved(domain);
        return {
          errno: bad.errno,
          reason: `the domain's aperture ends at ${hex(end)} but ${bad.reason}`,
        };
      }
    }
    const first = this.domains.length === 0;
    const done: Area[] = [];
    for (const area of this.areas()) {
      if (area.pages === null) continue;
      const rc = this.fillDomain(area, area.pages, domain, first);
      if (rc !== undefined) {
        for (const a of done) {
          this.unmapFromDomain(a, domain);
          if (first) this.unpinArea(a, a.pages as IoptPages);
        }
        this.removeReserved(domain);
        return rc;
      }
      done.push(area);
    }
    this.iovaAlignment = newAlign;
    this.domains.push(domain);
    return undefined;
  }

  /** iopt_table_remove_domain: unmap every area from it; the last domain also unpins. */
  removeDomain(domain: IommuDomain): void {
    const i = this.domains.indexOf(domain);
    if (i < 0) return;
    this.domains.splice(i, 1);
    const last = this.domains.length === 0;
    for (const area of this.areas()) {
      if (area.pages === null) continue;
      this.unmapFromDomain(area, domain);
      if (last) this.unpinArea(area, area.pages);
    }
    this.removeReserved(domain);
    this.recalcAlignment();
  }

  // ---- alignment -----------------------------------------------------------

  /** iopt_check_iova_alignment: every area must meet a raised alignment (EADDRINUSE). */
  checkAlignment(align: number): Failure | undefined {
    const a = BigInt(align);
    for (const area of this.areas()) {
      if (
        area.iova % a !== 0n ||
        (area.last - area.iova + 1n) % a !== 0n ||
        area.pageOffset % align !== 0
      ) {
        return failure(
          EADDRINUSE,
          `the area [${hex(area.iova)}, ${hex(area.last)}] (page offset ${area.pageOffset}) does not meet the alignment ${align}`,
        );
      }
    }
    return undefined;
  }

  /** iopt_calculate_iova_alignment: the largest need of large-page mode, domains and accesses. */
  recalcAlignment(): Failure | undefined {
    let align = this.disableLargePages ? PAGE_SIZE : 1;
    for (const d of this.domains) align = Math.max(align, Math.min(...d.geometry.pageSizes));
    for (const a of this.accesses) align = Math.max(align, a.iovaAlignment);
    if (align > this.iovaAlignment) {
      const bad = this.checkAlignment(align);
      if (bad !== undefined) return bad;
    }
    this.iovaAlignment = align;
    return undefined;
  }

  /** iopt_disable_large_pages (HUGE_PAGES = 0). */
  disableLarge(): Failure | undefined {
    if (this.disableLargePages) return undefined;
    if (this.domains.length > 0 && this.areaCount > 0) {
      return failure(EINVAL, 'large pages cannot be disabled while domains already map areas');
    }
    this.disableLargePages = true;
    const bad = this.recalcAlignment();
    if (bad !== undefined) this.disableLargePages = false;
    return bad;
  }

  /** iopt_enable_large_pages (HUGE_PAGES = 1). */
  enableLarge(): void {
    this.disableLargePages = false;
    this.recalcAlignment();
  }

  /** Attach an access (iopt_add_access): its alignment joins the IOAS's. */
  addAccess(access: IoptAccess): Failure | undefined {
    this.accesses.add(access);
    const bad = this.recalcAlignment();
    if (bad !== undefined) this.accesses.delete(access);
    return bad;
  }

  /** Detach an access. */
  removeAccess(access: IoptAccess): void {
    this.accesses.delete(access);
    this.recalcAlignment();
  }

  // ---- internals -------------------------------------------------------------

  private firstAreaIn(start: bigint, last: bigint): RangeNode<Entry> | undefined {
    for (const n of this.tree.intersecting(start, last)) if ('area' in n.value) return n;
    return undefined;
  }

  private fillDomains(area: Area, pages: IoptPages): Failure | undefined {
    for (let i = 0; i < this.domains.length; i++) {
      const rc = this.fillDomain(area, pages, this.domains[i] as IommuDomain, i === 0);
      if (rc !== undefined) {
        for (let j = 0; j < i; j++) this.unmapFromDomain(area, this.domains[j] as IommuDomain);
        this.unpinArea(area, pages);
        return rc;
      }
    }
    return undefined;
  }

  private unfillDomains(area: Area, pages: IoptPages): void {
    for (const domain of this.domains) this.unmapFromDomain(area, domain);
    this.unpinArea(area, pages);
  }

  private unpinArea(area: Area, pages: IoptPages): void {
    if (!area.filled) return;
    pages.unuse(area.firstIndex, area.lastIndex);
    area.filled = false;
  }

  /** Write `area` into `domain`, pinning its pages first when `pin` (the first domain). */
  private fillDomain(
    area: Area,
    pages: IoptPages,
    domain: IommuDomain,
    pin: boolean,
  ): Failure | undefined {
    if (pin && !area.filled) {
      const rc = pages.use(area.firstIndex, area.lastIndex, this.limitPages());
      if (rc !== 0) {
        return failure(
          -rc,
          rc === -ENOMEM
            ? 'pinning these pages would exceed RLIMIT_MEMLOCK'
            : rc === -EINVAL
              ? 'the memfd range runs past the end of the file'
              : 'the source pages cannot be pinned (unmapped, read-only, or their process has exited)',
        );
      }
      area.filled = true;
    }
    const areaLen = Number(area.last - area.iova + 1n);
    const areaStart = area.firstIndex * PAGE_SIZE + area.pageOffset;
    const iova = Number(area.iova);
    let mapped = 0;
    const rc = pages.forEachRun(
      area.firstIndex,
      area.lastIndex,
      this.disableLargePages ? 1 : Number.POSITIVE_INFINITY,
      (index, pa, n) => {
        const runStart = Math.max(index * PAGE_SIZE, areaStart);
        const runEnd = Math.min((index + n) * PAGE_SIZE, areaStart + areaLen);
        const len = runEnd - runStart;
        const r = domain.map(
          iova + (runStart - areaStart),
          pa + (runStart - index * PAGE_SIZE),
          len,
          area.prot,
        );
        if (r < 0) return r;
        mapped += len;
        return 0;
      },
    );
    if (rc < 0) {
      if (mapped > 0) domain.unmap(iova, mapped);
      if (pin) this.unpinArea(area, pages);
      return failure(-rc, `the IOMMU driver refused to map [${hex(area.iova)}, ${hex(area.last)}]`);
    }
    return undefined;
  }

  private unmapFromDomain(area: Area, domain: IommuDomain): void {
    domain.unmap(Number(area.iova), Number(area.last - area.iova + 1n));
  }

  private mergedReservations(): { start: bigint; last: bigint }[] {
    const sorted = [...this.reservations].sort((a, b) =>
      a.start < b.start ? -1 : a.start > b.start ? 1 : 0,
    );
    const out: { start: bigint; last: bigint }[] = [];
    for (const r of sorted) {
      const top = out[out.length - 1];
      if (top !== undefined && r.start <= top.last + 1n) {
        if (r.last > top.last) top.last = r.last;
      } else out.push({ start: r.start, last: r.last });
    }
    return out;
  }

  private rebuildReservedSpans(): void {
    const old: RangeNode<Entry>[] = [];
    for (const n of this.tree) if ('reserved' in n.value) old.push(n);
    for (const n of old) this.tree.remove(n);
    for (const s of this.mergedReservations())
      this.tree.insert(s.start, s.last, { reserved: true });
  }
}

function alignUp(start: bigint, alignment: bigint, subOffset: bigint): bigint | undefined {
  const up = start + alignment - 1n;
  if (up > ULONG_MAX) return undefined;
  return (up & ~(alignment - 1n)) | subOffset;
}
