/**
 * The reference the benchmarks compare against: the simplest 4-level radix
 * page table one would write in plain JavaScript (nested arrays, leaves as
 * numbers, 4 KiB pages only, no simulated memory).
 */
const FANOUT = 512;

type Node = (Node | number | undefined)[];

export class ReferenceRadix {
  private root: Node = new Array(FANOUT);
  tables = 1;

  map(iova: number, pa: number, length: number): void {
    for (let off = 0; off < length; off += 4096) {
      const page = (iova + off) / 4096;
      const leaf = this.leafTable(page, true) as Node;
      leaf[page % FANOUT] = pa + off + 3; // low bits: read | write
    }
  }

  translate(iova: number): number {
    const page = Math.floor(iova / 4096);
    const leaf = this.leafTable(page, false);
    const e = leaf?.[page % FANOUT];
    return typeof e === 'number' ? e - 3 + (iova % 4096) : -1;
  }

  unmap(iova: number, length: number): number {
    let n = 0;
    for (let off = 0; off < length; off += 4096) {
      const page = (iova + off) / 4096;
      const leaf = this.leafTable(page, false);
      if (leaf?.[page % FANOUT] !== undefined) {
        leaf[page % FANOUT] = undefined;
        n += 4096;
      }
    }
    return n;
  }

  private leafTable(page: number, create: boolean): Node | undefined {
    let node = this.root;
    for (let level = 3; level >= 1; level--) {
      const i = Math.floor(page / FANOUT ** level) % FANOUT;
      let next = node[i] as Node | undefined;
      if (next === undefined) {
        if (!create) return undefined;
        next = new Array(FANOUT);
        node[i] = next;
        this.tables++;
      }
      node = next;
    }
    return node;
  }
}
