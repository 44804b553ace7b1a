/**
 * The reference the device benchmarks compare against: what one would write
 * in plain JavaScript for "a device reading and writing through an IOMMU
 * with dirty tracking". The page table is a Map from IO page to physical
 * page, memory a Map from physical page to a 4 KiB Uint8Array, dirty pages a
 * Set. No IOTLB, no table walk in simulated memory, no uAPI.
 */

const PAGE = 4096;

/** A device behind a Map page table over a contiguous mapping. */
export class ReferenceDevice {
  private readonly pageTable = new Map<number, number>();
  private readonly memory = new Map<number, Uint8Array>();
  private readonly dirty = new Set<number>();

  /** Map [iova, iova + length) to physical [pa, pa + length). */
  constructor(iova: number, length: number, pa: number) {
    for (let off = 0; off < length; off += PAGE) {
      this.pageTable.set((iova + off) / PAGE, (pa + off) / PAGE);
    }
  }

  /** Read `length` bytes at `iova` (within one page). */
  read(iova: number, length: number): Uint8Array {
    const ppage = this.pageTable.get(Math.floor(iova / PAGE));
    if (ppage === undefined) throw new Error(`fault at ${iova}`);
    const frame = this.memory.get(ppage);
    const at = iova % PAGE;
    return frame === undefined ? new Uint8Array(length) : frame.slice(at, at + length);
  }

  /** Write `data` at `iova` (within one page), marking the page dirty. */
  write(iova: number, data: Uint8Array): void {
    const vpage = Math.floor(iova / PAGE);
    const ppage = this.pageTable.get(vpage);
    if (ppage === undefined) throw new Error(`fault at ${iova}`);
    let frame = this.memory.get(ppage);
    if (frame === undefined) {
      frame = new Uint8Array(PAGE);
      this.memory.set(ppage, frame);
    }
    frame.set(data, iova % PAGE);
    this.dirty.add(vpage);
  }

  /** Set one bit per dirty `pageSize` unit of [iova, iova + length) and clear the dirty pages. */
  harvest(iova: number, length: number, pageSize: number, bitmap: Uint8Array): void {
    for (let off = 0; off < length; off += PAGE) {
      const vpage = (iova + off) / PAGE;
      if (!this.dirty.has(vpage)) continue;
      this.dirty.delete(vpage);
      const bit = Math.floor(off / pageSize);
      bitmap[bit >>> 3] = (bitmap[bit >>> 3] as number) | (1 << (bit & 7));
    }
  }
}
