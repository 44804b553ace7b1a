/**
 * iopt_pages: one linear chunk of source memory (a user VA range of one
 * process, or a range of a memfd) that areas map. Several areas, in one or
 * several IOASes (after IOAS_COPY), share it, and each of its pages is pinned
 * **once** while anything needs it: an area whose IOAS has a domain, or an
 * access that pinned it. The PFN of every pinned page is kept here (the
 * kernel keeps it in a domain or an xarray), so later domains and accesses
 * are filled without asking the source again.
 *
 * Counters are per page in 512-page chunks of typed arrays, created only for
 * pages that are used, so a lazily mapped 2^40-byte range costs nothing.
 */
import { EFAULT, EINVAL } from '@iommufd-sim/uapi-types';
import { type ChargeTarget, chargePinned } from './accounting.js';
import {
  type AddressSpace,
  type Backing,
  type MemFile,
  PAGE_SIZE,
  type PageRun,
} from './address-space.js';

// Page indexes reach 2^52, past 32-bit bit operations: chunks use division.
const CHUNK = 512;

interface Chunk {
  /** How many users (areas with domains, access pins) need each page. */
  readonly users: Int32Array;
  /** Physical address of each pinned page. */
  readonly pa: Float64Array;
}

/** Where a pages object's memory comes from. */
export type PagesSource =
  | {
      readonly kind: 'user';
      /** The address space the VA belongs to (the process that mapped it, or the one CHANGE_PROCESS moved it to). */
      space: AddressSpace;
      /** Page-aligned first VA (any u64: a lazy map need not be valid). */
      readonly base: bigint;
    }
  | {
      readonly kind: 'file';
      readonly file: MemFile;
      /** Page-aligned first byte in the file. */
      readonly base: number;
    };

/** Finds the backing a physical address belongs to (the host's registry). */
export type BackingLookup = (pa: number) => Backing | undefined;

/** One iopt_pages. */
export class IoptPages {
  /** Pages pinned right now (npinned). */
  npinned = 0;
  // Created on the first pin: an empty Map costs ~185 bytes, and lazy maps never pin.
  private chunkMap: Map<number, Chunk> | null = null;

  constructor(
    /** The memory behind it. */
    readonly source: PagesSource,
    /** Pages it spans. */
    readonly npages: number,
    /** Mapped with write permission (the source was pinned for writing). */
    readonly writable: boolean,
    /** Who is charged for its pins. */
    readonly charge: ChargeTarget,
    private readonly backingAt: BackingLookup,
  ) {}

  /** Whether page `index` is pinned. */
  isPinned(index: number): boolean {
    const c = this.chunkMap?.get(Math.floor(index / CHUNK));
    return c !== undefined && (c.users[index % CHUNK] as number) > 0;
  }

  /** Physical address of pinned page `index` (NaN when not pinned). */
  paOf(index: number): number {
    const c = this.chunkMap?.get(Math.floor(index / CHUNK));
    if (c === undefined || (c.users[index % CHUNK] as number) === 0) return Number.NaN;
    return c.pa[index % CHUNK] as number;
  }

  /**
   * Take one use of pages [first, last]: pages nobody used yet are looked up
   * in the source, pinned and charged. Returns 0, -EFAULT (a page cannot be
   * pinned), -EINVAL (a memfd page past the end of the file) or -ENOMEM
   * (over the memlock limit); on failure nothing changed.
   */
  use(first: number, last: number, limitPages: number): number {
    // Which pages need pinning, as runs.
    const missing: number[] = [];
    let runStart = -1;
    // Chunk by chunk: one Map lookup per 512 pages, not per page.
    for (let base = Math.floor(first / CHUNK) * CHUNK; base <= last; base += CHUNK) {
      const users = this.chunkMap?.get(base / CHUNK)?.users;
      const end = Math.min(last, base + CHUNK - 1);
      for (let i = Math.max(first, base); i <= end; i++) {
        const free = users === undefined || users[i - base] === 0;
        if (free && runStart < 0) runStart = i;
        else if (!free && runStart >= 0) {
          missing.push(runStart, i - 1);
          runStart = -1;
        }
      }
    }
    if (runStart >= 0) missing.push(runStart, last);

    const resolved: (PageRun & { first: number })[] = [];
    let newly = 0;
    for (let k = 0; k < missing.length; k += 2) {
      const a = missing[k] as number;
      const b = missing[k + 1] as number;
      if (this.pastEndOfFile(b)) return -EINVAL;
      const runs = this.resolve(a, b - a + 1);
      if (runs === undefined) return -EFAULT;
      let at = a;
      for (const r of runs) {
        resolved.push({ first: at, ...r });
        at += r.pages;
      }
      newly += b - a + 1;
    }
    if (newly > 0) {
      const rc = chargePinned(this.charge, newly, limitPages);
      if (rc !== 0) return rc;
    }
    for (const r of resolved) {
      const end = r.first + r.pages - 1;
      for (let base = Math.floor(r.first / CHUNK) * CHUNK; base <= end; base += CHUNK) {
        const pa = this.chunkFor(base).pa;
        const stop = Math.min(end, base + CHUNK - 1);
        for (let i = Math.max(r.first, base); i <= stop; i++) {
          pa[i - base] = r.pa + (i - r.first) * PAGE_SIZE;
        }
      }
      // The run already names its backing: no registry lookup on the pin path.
      r.backing.addPins(r.backingPage, r.pages, 1);
    }
    this.npinned += newly;
    for (let base = Math.floor(first / CHUNK) * CHUNK; base <= last; base += CHUNK) {
      const users = this.chunkFor(base).users;
      const end = Math.min(last, base + CHUNK - 1);
      for (let i = Math.max(first, base); i <= end; i++)
        users[i - base] = (users[i - base] as number) + 1;
    }
    return 0;
  }

  /** Drop one use of pages [first, last]; pages nobody uses any more are unpinned and uncharged. */
  unuse(first: number, last: number): void {
    let freed = 0;
    let runPa = -1;
    let runPages = 0;
    const flush = (): void => {
      if (runPages === 0) return;
      const backing = this.backingAt(runPa) as Backing;
      backing.addPins((runPa - backing.basePa) / PAGE_SIZE, runPages, -1);
      runPages = 0;
    };
    for (let base = Math.floor(first / CHUNK) * CHUNK; base <= last; base += CHUNK) {
      const c = this.chunkMap?.get(base / CHUNK) as Chunk;
      const end = Math.min(last, base + CHUNK - 1);
      for (let i = Math.max(first, base); i <= end; i++) {
        const k = i - base;
        const users = (c.users[k] as number) - 1;
        c.users[k] = users;
        if (users !== 0) continue;
        const pa = c.pa[k] as number;
        if (runPages > 0 && pa === runPa + runPages * PAGE_SIZE) runPages++;
        else {
          flush();
          runPa = pa;
          runPages = 1;
        }
        freed++;
      }
    }
    flush();
    if (freed > 0) {
      this.npinned -= freed;
      chargePinned(this.charge, -freed, Number.POSITIVE_INFINITY);
    }
  }

  /**
   * Calls `fn` for each run of physically contiguous pinned pages in
   * [first, last] (all must be pinned): the first page index, its physical
   * address and the number of pages. `maxPages` caps a run (1 when large
   * pages are disabled).
   */
  forEachRun(
    first: number,
    last: number,
    maxPages: number,
    fn: (index: number, pa: number, pages: number) => number,
  ): number {
    let start = first;
    let startPa = this.paOf(first);
    let n = 1;
    for (let base = Math.floor(first / CHUNK) * CHUNK; base <= last; base += CHUNK) {
      const c = this.chunkMap?.get(base / CHUNK);
      const end = Math.min(last, base + CHUNK - 1);
      for (let i = Math.max(first + 1, base); i <= end; i++) {
        const k = i - base;
        const pa =
          c === undefined || (c.users[k] as number) === 0 ? Number.NaN : (c.pa[k] as number);
        if (pa === startPa + n * PAGE_SIZE && n < maxPages) {
          n++;
          continue;
        }
        const rc = fn(start, startPa, n);
        if (rc !== 0) return rc;
        start = i;
        startPa = pa;
        n = 1;
      }
    }
    return fn(start, startPa, n);
  }

  /**
   * The physical address of page `index` without pinning it: the pinned
   * copy when there is one, else the source's current page (undefined when
   * the source cannot supply it: the process is gone or the VA is unmapped).
   */
  peekPa(index: number): number | undefined {
    const pa = this.paOf(index);
    if (!Number.isNaN(pa)) return pa;
    const runs = this.resolve(index, 1);
    return runs?.[0]?.pa;
  }

  /** A memfd page at or past the file's size cannot be pinned (shmem answers EINVAL). */
  private pastEndOfFile(index: number): boolean {
    const src = this.source;
    return src.kind === 'file' && src.base + index * PAGE_SIZE >= src.file.size;
  }

  private resolve(first: number, pages: number): PageRun[] | undefined {
    const src = this.source;
    if (src.kind === 'file') {
      const backing = src.file.backing;
      const page = src.base / PAGE_SIZE + first;
      if (page + pages > backing.pages) return undefined;
      return [{ pa: backing.basePa + page * PAGE_SIZE, pages, backing, backingPage: page }];
    }
    const va = src.base + BigInt(first) * BigInt(PAGE_SIZE);
    if (va + BigInt(pages * PAGE_SIZE) > BigInt(Number.MAX_SAFE_INTEGER)) return undefined;
    return src.space.resolve(Number(va), pages, this.writable, true);
  }

  private chunkFor(index: number): Chunk {
    const key = Math.floor(index / CHUNK);
    if (this.chunkMap === null) this.chunkMap = new Map();
    let c = this.chunkMap.get(key);
    if (c === undefined) {
      c = { users: new Int32Array(CHUNK), pa: new Float64Array(CHUNK) };
      this.chunkMap.set(key, c);
    }
    return c;
  }
}
