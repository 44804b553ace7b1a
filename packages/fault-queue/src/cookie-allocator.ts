/**
 * Fault-group cookies as the kernel hands them out: the lowest free id from 1
 * (an xarray allocated with XA_FLAGS_ALLOC1 and a 32-bit limit), so a cookie
 * is reused as soon as its group has been answered.
 */

/** The largest cookie (the kernel's xa_limit_32b). */
export const MAX_COOKIE = 0xffff_ffff;

/**
 * Allocates the lowest free id ≥ 1. Every freed id is below the high-water
 * mark and waits in a min-heap, so the lowest free id is the heap's top if
 * there is one, else the mark; both operations cost O(log n).
 */
export class CookieAllocator {
  private next = 1;
  private readonly freed: number[] = [];

  /** The lowest free id, now taken; -1 when all 2^32 - 1 ids are in use. */
  allocate(): number {
    const heap = this.freed;
    if (heap.length === 0) return this.next > MAX_COOKIE ? -1 : this.next++;
    const lowest = heap[0] as number;
    const last = heap.pop() as number;
    if (heap.length > 0) {
      heap[0] = last;
      siftDown(heap, 0);
    }
    return lowest;
  }

  /** Gives `id` back (it must have come from `allocate` and not been freed since). */
  free(id: number): void {
    this.freed.push(id);
    if (this.freed.length === this.next - 1) {
      // Nothing in use: start again from 1 with an empty heap.
      this.freed.length = 0;
      this.next = 1;
      return;
    }
    siftUp(this.freed, this.freed.length - 1);
  }

  /** Ids in use. */
  get inUse(): number {
    return this.next - 1 - this.freed.length;
  }
}

function siftUp(heap: number[], at: number): void {
  const value = heap[at] as number;
  while (at > 0) {
    const parent = (at - 1) >> 1;
    if ((heap[parent] as number) <= value) break;
    heap[at] = heap[parent] as number;
    at = parent;
  }
  heap[at] = value;
}

function siftDown(heap: number[], at: number): void {
  const value = heap[at] as number;
  const n = heap.length;
  for (;;) {
    let child = 2 * at + 1;
    if (child >= n) break;
    if (child + 1 < n && (heap[child + 1] as number) < (heap[child] as number)) child++;
    if ((heap[child] as number) >= value) break;
    heap[at] = heap[child] as number;
    at = child;
  }
  heap[at] = value;
}
