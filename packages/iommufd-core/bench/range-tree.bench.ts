/**
 * `npx tsx bench/range-tree.bench.ts`: ns per operation of the io_pagetable's
 * RangeTree, beside a plain sorted-array reference measured in the same run.
 *
 * Fill: N areas of 4 KiB, each placed by a first-fit findHole from 4096
 * (alignment 4096) and inserted there, so the search passes N live areas;
 * then all removed in insertion order. Churn: with N areas live, one more
 * findHole + insert + remove at a time (an IOAS_MAP with automatic IOVA
 * followed by its IOAS_UNMAP).
 *
 * The reference's findHole walks every area, so its fill is quadratic: it
 * runs with fewer areas (BENCH_REF_AREAS) and its figures say so. Rounds of
 * the tree alternate with the reference and the median is kept.
 */
import { type RangeNode, RangeTree } from '../src/range-tree.js';

const AREAS = Number(process.env.BENCH_AREAS ?? 100_000);
const REF_AREAS = Number(process.env.BENCH_REF_AREAS ?? 10_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CHURN = 200_000;
const U64_MAX = (1n << 64n) - 1n;
const PAGE = 4096n;

/** The simplest structure one would write instead: areas in a start-sorted array. */
class SortedArrayRanges {
  private readonly ranges: { start: bigint; last: bigint }[] = [];

  private indexOf(start: bigint): number {
    let low = 0;
    let high = this.ranges.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.ranges[middle]!.start < start) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  insert(start: bigint, last: bigint): { start: bigint; last: bigint } {
    const range = { start, last };
    this.ranges.splice(this.indexOf(start), 0, range);
    return range;
  }

  remove(range: { start: bigint; last: bigint }): void {
    this.ranges.splice(this.indexOf(range.start), 1);
  }

  /** First fit, the same rule as RangeTree.findHole, walking every hole from address 0. */
  findHole(lo: bigint, hi: bigint, length: bigint, alignment: bigint, subOffset: bigint) {
    const fits = (holeStart: bigint, holeLast: bigint): bigint | undefined => {
      const start = holeStart > lo ? holeStart : lo;
      const last = holeLast < hi ? holeLast : hi;
      if (start > last) return undefined;
      const rounded = ((start + alignment - 1n) / alignment) * alignment;
      if (rounded > U64_MAX) return undefined;
      const aligned = rounded | subOffset;
      return aligned >= last || last - aligned < length - 1n ? undefined : aligned;
    };
    let cursor = 0n;
    for (const range of this.ranges) {
      if (range.start > cursor) {
        const fit = fits(cursor, range.start - 1n);
        if (fit !== undefined) return fit;
      }
      cursor = range.last + 1n;
    }
    return cursor <= U64_MAX ? fits(cursor, U64_MAX) : undefined;
  }
}

interface Structure<N> {
  insert(start: bigint, last: bigint): N;
  remove(node: N): void;
  findHole(
    lo: bigint,
    hi: bigint,
    length: bigint,
    alignment: bigint,
    subOffset: bigint,
  ): bigint | undefined;
}

function rangeTree(): Structure<RangeNode<number>> {
  const tree = new RangeTree<number>();
  return {
    insert: (start, last) => tree.insert(start, last, 0),
    remove: (node) => tree.remove(node),
    findHole: (lo, hi, length, alignment, subOffset) =>
      tree.findHole(lo, hi, length, alignment, subOffset),
  };
}

function sortedArray(): Structure<{ start: bigint; last: bigint }> {
  return new SortedArrayRanges();
}

function allocate<N>(structure: Structure<N>): N {
  const start = structure.findHole(PAGE, U64_MAX, PAGE, PAGE, 0n);
  if (start === undefined) throw new Error('no hole');
  return structure.insert(start, start + PAGE - 1n);
}

interface Figures {
  fillNsPerOp: number;
  removeNsPerOp: number;
  churnNsPerOp: number;
}

function measure<N>(make: () => Structure<N>, areas: number, churn: number): Figures {
  const structure = make();
  const nodes: N[] = new Array(areas);
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < areas; i++) nodes[i] = allocate(structure);
  const fillNs = Number(process.hrtime.bigint() - t0);

  t0 = process.hrtime.bigint();
  for (let i = 0; i < churn; i++) structure.remove(allocate(structure));
  const churnNs = Number(process.hrtime.bigint() - t0);

  t0 = process.hrtime.bigint();
  for (let i = 0; i < areas; i++) structure.remove(nodes[i] as N);
  const removeNs = Number(process.hrtime.bigint() - t0);
  return {
    fillNsPerOp: fillNs / areas,
    removeNsPerOp: removeNs / areas,
    churnNsPerOp: churnNs / churn,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1] ?? Number.NaN;
}

const treeRounds: Figures[] = [];
const referenceRounds: Figures[] = [];
// A small warm-up so both are compiled before the first timed round.
measure(rangeTree, 2000, 2000);
measure(sortedArray, 2000, 200);
for (let round = 0; round < ROUNDS; round++) {
  treeRounds.push(measure(rangeTree, AREAS, CHURN));
  referenceRounds.push(measure(sortedArray, REF_AREAS, 2000));
}

function row(label: string, areas: number, rounds: Figures[]) {
  return {
    structure: label,
    areas,
    'findHole+insert ns': Math.round(median(rounds.map((r) => r.fillNsPerOp))),
    'remove ns': Math.round(median(rounds.map((r) => r.removeNsPerOp))),
    'churn (findHole+insert+remove) ns': Math.round(median(rounds.map((r) => r.churnNsPerOp))),
  };
}

console.log(`median of ${ROUNDS} rounds; 4 KiB areas, first fit from 4096, alignment 4096`);
console.table([
  row('RangeTree', AREAS, treeRounds),
  row('sorted array', REF_AREAS, referenceRounds),
]);
