/**
 * A process's memory: page-granular mappings (VMAs) of anonymous memory or of
 * memfd-like files, each backed by a run of host physical frames. The frames
 * are reserved contiguously when the mapping is made (as if transparent huge
 * pages backed it) and cost host memory only once written, so a 1 TiB mapping
 * is cheap and the IOMMU can use large pages for it.
 *
 * Pinned pages and device DMA see the same bytes as the CPU: both go through
 * the physical address of the frame.
 */
import type { PhysicalMemory } from '@iommufd-sim/hw-models';

/** The host page size (x86-64). */
export const PAGE_SIZE = 4096;
/** log2(PAGE_SIZE). */
export const PAGE_SHIFT = 12;
/** Transparent huge page size: large mappings are aligned to it. */
export const HPAGE_SIZE = 2 * 1024 * 1024;

/**
 * A run of physical frames: anonymous memory of one mmap, or a file's pages.
 * Pin counts live here because a pin is a property of the page, whoever
 * mapped it.
 */
export class Backing {
  /** Pins per page, allocated on the first pin. */
  private pins: Int32Array | null = null;
  /** Pages pinned at least once right now. */
  pinnedPages = 0;
  /** Mappings and pins that keep the frames alive. */
  private holders = 0;

  constructor(
    /** Physical address of the first frame. */
    readonly basePa: number,
    /** Frames reserved. */
    readonly pages: number,
    private readonly memory: PhysicalMemory,
  ) {}

  /** Pin count of page `index` (the kernel's refcount / GUP_PIN_COUNTING_BIAS). */
  pinCount(index: number): number {
    return this.pins === null ? 0 : (this.pins[index] ?? 0);
  }

  /** Add `delta` pins to pages [first, first + count). */
  addPins(first: number, count: number, delta: number): void {
    if (this.pins === null) this.pins = new Int32Array(this.pages);
    const pins = this.pins;
    const end = first + count;
    for (let i = first; i < end; i++) {
      const before = pins[i] as number;
      const after = before + delta;
      pins[i] = after;
      if (before === 0 && after !== 0) {
        this.pinnedPages++;
        this.holders++;
      } else if (before !== 0 && after === 0) {
        this.pinnedPages--;
        this.release();
      }
    }
  }

  /** A mapping starts using the frames. */
  hold(): void {
    this.holders++;
  }

  /** Called when the last mapping or pin lets go (a driver's mmap region drops its object reference). */
  onIdle: (() => void) | null = null;

  /** A mapping or a pin stops using the frames; the last one gives them back to the host. */
  release(): void {
    this.holders--;
    if (this.holders === 0) {
      this.memory.fill(this.basePa, this.pages * PAGE_SIZE, 0);
      this.onIdle?.();
    }
  }

  /** Mappings and pins using the frames now. */
  get holderCount(): number {
    return this.holders;
  }
}

/** A memfd-like file: a size and the frames behind its pages. */
export class MemFile {
  constructor(
    /** Its name, for reports. */
    readonly name: string,
    /** The frames (reserved up to the file's maximum size). */
    readonly backing: Backing,
    /** Current size in bytes. */
    public size: number,
  ) {}
}

/** One mapping of a process. */
export interface Vma {
  /** First address (page aligned). */
  readonly start: number;
  /** Bytes (a multiple of PAGE_SIZE). */
  readonly length: number;
  /** The frames behind it. */
  readonly backing: Backing;
  /** Page index in `backing` of the first page. */
  readonly backingPage: number;
  /** Writes are allowed. */
  readonly writable: boolean;
  /** The file it maps, if any. */
  readonly file: MemFile | null;
  /** A driver's I/O pages (VM_IO | VM_PFNMAP): the process reads and writes them, nothing can pin them. */
  readonly io?: boolean;
}

/** A run of physically contiguous pages found by {@link AddressSpace.resolve}. */
export interface PageRun {
  /** Physical address of the first page. */
  readonly pa: number;
  /** Pages in the run. */
  readonly pages: number;
  /** The frames, to pin or unpin them. */
  readonly backing: Backing;
  /** Index of the first page in `backing`. */
  readonly backingPage: number;
}

/** The lowest address mmap hands out: user address 0 is never mapped. */
const MMAP_BASE = 0x10000000000; // 1 TiB
/** The end of the user address space (47 bits on x86-64). */
export const USER_LIMIT = 2 ** 47;

/** The mappings of one process, ordered by address. */
export class AddressSpace {
  private readonly vmas: Vma[] = [];
  private nextVa = MMAP_BASE;

  /** Every mapping, lowest first. */
  get mappings(): readonly Vma[] {
    return this.vmas;
  }

  /** Choose a fresh address for `length` bytes (never reused, 2 MiB aligned when large), or -1. */
  reserve(length: number): number {
    const align = length >= HPAGE_SIZE ? HPAGE_SIZE : PAGE_SIZE;
    const va = Math.ceil(this.nextVa / align) * align;
    if (va + length > USER_LIMIT) return -1;
    this.nextVa = va + length + PAGE_SIZE; // a guard page keeps mappings apart
    return va;
  }

  /** Add a mapping (the caller chose a free range). */
  insert(vma: Vma): void {
    vma.backing.hold();
    const i = this.indexAfter(vma.start);
    this.vmas.splice(i, 0, vma);
  }

  /**
   * Remove [start, start + length) from the mappings, splitting any that
   * cross an end, as munmap does. Returns the number of pages unmapped.
   */
  remove(start: number, length: number): number {
    const end = start + length;
    let removed = 0;
    const kept: Vma[] = [];
    for (const vma of this.vmas) {
      const vEnd = vma.start + vma.length;
      if (vEnd <= start || vma.start >= end) {
        kept.push(vma);
        continue;
      }
      if (vma.start < start) {
        kept.push({ ...vma, length: start - vma.start });
        vma.backing.hold();
      }
      if (vEnd > end) {
        kept.push({
          ...vma,
          start: end,
          length: vEnd - end,
          backingPage: vma.backingPage + (end - vma.start) / PAGE_SIZE,
        });
        vma.backing.hold();
      }
      removed += (Math.min(vEnd, end) - Math.max(vma.start, start)) / PAGE_SIZE;
      vma.backing.release();
    }
    this.vmas.length = 0;
    this.vmas.push(...kept.sort((a, b) => a.start - b.start));
    return removed;
  }

  /** Drop every mapping (the process exits). */
  clear(): void {
    for (const vma of this.vmas) vma.backing.release();
    this.vmas.length = 0;
  }

  /** The mapping containing `va`, or undefined. */
  find(va: number): Vma | undefined {
    const i = this.indexAfter(va) - 1;
    const vma = this.vmas[i];
    return vma !== undefined && va < vma.start + vma.length ? vma : undefined;
  }

  /**
   * The physical runs behind `pages` pages from page-aligned `va`, in order;
   * undefined if any page is unmapped (or read-only when `write`): the
   * kernel's get_user_pages fails with EFAULT then.
   */
  resolve(va: number, pages: number, write: boolean, pin = false): PageRun[] | undefined {
    const runs: PageRun[] = [];
    let at = va;
    let left = pages;
    while (left > 0) {
      const vma = this.find(at);
      if (vma === undefined || (write && !vma.writable) || (pin && vma.io === true))
        return undefined;
      const first = (at - vma.start) / PAGE_SIZE;
      const n = Math.min(left, vma.length / PAGE_SIZE - first);
      const backingPage = vma.backingPage + first;
      runs.push({
        pa: vma.backing.basePa + backingPage * PAGE_SIZE,
        pages: n,
        backing: vma.backing,
        backingPage,
      });
      at += n * PAGE_SIZE;
      left -= n;
    }
    return runs;
  }

  /** Index of the first mapping starting after `va`. */
  private indexAfter(va: number): number {
    let lo = 0;
    let hi = this.vmas.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.vmas[mid] as Vma).start <= va) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
