// The reference model of the radix-table tests: a sorted list of leaves with
// the kernel's rules (largest leaf alignment allows; a partly covered leaf is
// unmapped whole).

/** One leaf of the model. */
export interface Leaf {
  iova: number;
  pa: number;
  size: number;
  prot: number;
}

/** Leaves keyed by IOVA, as a page table should hold them. */
export class LeafModel {
  readonly leaves: Leaf[] = [];

  /** True when some leaf overlaps [iova, iova+length). */
  overlaps(iova: number, length: number): boolean {
    return this.leaves.some((l) => l.iova < iova + length && l.iova + l.size > iova);
  }

  /** Map with the largest of `sizes` (descending) that iova, pa and the remainder allow. */
  map(iova: number, pa: number, length: number, prot: number, sizes: readonly number[]): void {
    let done = 0;
    while (done < length) {
      const size = sizes.find(
        (s) => (iova + done) % s === 0 && (pa + done) % s === 0 && length - done >= s,
      ) as number;
      this.leaves.push({ iova: iova + done, pa: pa + done, size, prot });
      done += size;
    }
    this.leaves.sort((a, b) => a.iova - b.iova);
  }

  /** Unmap [iova, end): every leaf it touches goes whole. Returns the bytes removed. */
  unmap(iova: number, end: number): number {
    let bytes = 0;
    for (let i = this.leaves.length - 1; i >= 0; i--) {
      const l = this.leaves[i] as Leaf;
      if (l.iova < end && l.iova + l.size > iova) {
        bytes += l.size;
        this.leaves.splice(i, 1);
      }
    }
    return bytes;
  }

  /** The leaf holding `iova`. */
  find(iova: number): Leaf | undefined {
    return this.leaves.find((m) => m.iova <= iova && m.iova + m.size > iova);
  }
}
