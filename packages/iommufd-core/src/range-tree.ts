/**
 * The ordered set of disjoint inclusive byte ranges an io_pagetable keeps its
 * areas and reserved spans in: an AVL tree keyed by start, over the full
 * unsigned 64-bit space, with a first-fit hole search for IOVA allocation.
 *
 * Each node is augmented with the hole before it (from its in-order
 * predecessor's end, or from address 0) and the largest such hole in its
 * subtree, so a hole search skips every subtree whose holes are all too small
 * instead of walking all ranges. The hole after the last node is computed from
 * that node when needed. Sizes and bounds are kept as doubles for speed (see
 * EXACT); answers are always exact.
 */

const U64_MAX = (1n << 64n) - 1n;

/**
 * Below 2^53 a double holds an address exactly. BigInt arithmetic and
 * comparisons cost tens of ns each on Node 20, so the hot paths work on
 * doubles: each node keeps Number() copies of its bounds, which order
 * correctly because rounding is monotonic (a < b implies Number(a) <=
 * Number(b)); only a tie between doubles needs the bigint comparison.
 */
const EXACT = 2 ** 53;

/**
 * Number(value) and BigInt(value) cost tens of ns each on Node 20, more than
 * the tree walk they feed; going through a shared 8-byte buffer costs a few ns,
 * because V8 inlines bigint stores to and loads from typed arrays. The store
 * wraps modulo 2^64, so these hold for u64 values only: insert and findHole use
 * them (~20% off an allocate+insert+remove); the other lookups, where it
 * measured no faster, keep Number() and take any bigint.
 */
const scratch64 = new BigUint64Array(1);
const scratch32 = new Uint32Array(scratch64.buffer);
const LOW_WORD = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1 ? 0 : 1;
const HIGH_WORD = 1 - LOW_WORD;
const TWO_POW_32 = 2 ** 32;

/** Number(value) for 0 <= value < 2^64: both halves exact, then one correctly rounded addition. */
function keyOf(value: bigint): number {
  scratch64[0] = value;
  return (scratch32[HIGH_WORD] as number) * TWO_POW_32 + (scratch32[LOW_WORD] as number);
}

/** BigInt(value) for an integer 0 <= value < 2^53. */
function bigintOf(value: number): bigint {
  const low = value % TWO_POW_32;
  scratch32[LOW_WORD] = low;
  scratch32[HIGH_WORD] = (value - low) / TWO_POW_32;
  return scratch64[0] as bigint;
}

/** fitInHoleFast's answers besides a start address. */
const NO_FIT = -1;
const UNDECIDED = -2;

/** One range held by a RangeTree. Treat start/last/value as read-only outside the tree. */
export interface RangeNode<T> {
  readonly start: bigint;
  readonly last: bigint;
  value: T;
}

/** A tree node. Handed out as a RangeNode, so its identity is stable for the range's lifetime. */
class TreeNode<T> implements RangeNode<T> {
  readonly start: bigint;
  readonly last: bigint;
  value: T;
  /** Number(start) and Number(last): exact below 2^53, order-preserving above. */
  readonly startKey: number;
  readonly lastKey: number;
  left: TreeNode<T> | undefined = undefined;
  right: TreeNode<T> | undefined = undefined;
  parent: TreeNode<T> | undefined = undefined;
  /** Height of the subtree rooted here (a leaf is 1). */
  height = 1;
  /** Number() of the count of addresses between the predecessor's last (or address 0) and start. */
  gapKey = 0;
  /** The largest gapKey in this subtree. */
  maxGapKey = 0;
  /** The tree holding this node; undefined once removed, so a second remove is a no-op. */
  owner: RangeTree<T> | undefined;

  constructor(
    start: bigint,
    last: bigint,
    startKey: number,
    lastKey: number,
    value: T,
    owner: RangeTree<T>,
  ) {
    this.start = start;
    this.last = last;
    this.startKey = startKey;
    this.lastKey = lastKey;
    this.value = value;
    this.owner = owner;
  }
}

/** Number() of the hole size between `predecessor` (or address 0) and a range starting at `start`. */
function gapKeyBefore<T>(
  predecessor: TreeNode<T> | undefined,
  start: bigint,
  startKey: number,
): number {
  if (startKey < EXACT) {
    return predecessor === undefined ? startKey : startKey - predecessor.lastKey - 1;
  }
  return keyOf(predecessor === undefined ? start : start - predecessor.last - 1n);
}

function heightOf<T>(node: TreeNode<T> | undefined): number {
  return node === undefined ? 0 : node.height;
}

/** Recomputes height and maxGapKey from the children, which must be up to date. */
function recompute<T>(node: TreeNode<T>): void {
  const left = node.left;
  const right = node.right;
  let height = 0;
  let maxGap = node.gapKey;
  if (left !== undefined) {
    height = left.height;
    if (left.maxGapKey > maxGap) maxGap = left.maxGapKey;
  }
  if (right !== undefined) {
    if (right.height > height) height = right.height;
    if (right.maxGapKey > maxGap) maxGap = right.maxGapKey;
  }
  node.height = height + 1;
  node.maxGapKey = maxGap;
}

function leftmost<T>(node: TreeNode<T>): TreeNode<T> {
  let current = node;
  while (current.left !== undefined) current = current.left;
  return current;
}

function rightmost<T>(node: TreeNode<T>): TreeNode<T> {
  let current = node;
  while (current.right !== undefined) current = current.right;
  return current;
}

function successorOf<T>(node: TreeNode<T>): TreeNode<T> | undefined {
  if (node.right !== undefined) return leftmost(node.right);
  let child = node;
  let parent = node.parent;
  while (parent !== undefined && child === parent.right) {
    child = parent;
    parent = parent.parent;
  }
  return parent;
}

function predecessorOf<T>(node: TreeNode<T>): TreeNode<T> | undefined {
  if (node.left !== undefined) return rightmost(node.left);
  let child = node;
  let parent = node.parent;
  while (parent !== undefined && child === parent.left) {
    child = parent;
    parent = parent.parent;
  }
  return parent;
}

/**
 * The lowest node of `subtree` whose gapKey is >= minGapKey; the caller knows
 * subtree.maxGapKey >= minGapKey. (Pruning on rounded sizes is safe: a hole of
 * at least n addresses has Number(size) >= Number(n).)
 */
function leftmostWithGap<T>(subtree: TreeNode<T>, minGapKey: number): TreeNode<T> {
  let node = subtree;
  for (;;) {
    const left = node.left;
    if (left !== undefined && left.maxGapKey >= minGapKey) {
      node = left;
    } else if (node.gapKey >= minGapKey) {
      return node;
    } else {
      // maxGapKey >= minGapKey and neither the left side nor this node has it: the right side does.
      node = node.right as TreeNode<T>;
    }
  }
}

/** The first node after `node` in order whose gapKey is >= minGapKey. */
function nextWithGap<T>(node: TreeNode<T>, minGapKey: number): TreeNode<T> | undefined {
  let right = node.right;
  if (right !== undefined && right.maxGapKey >= minGapKey) return leftmostWithGap(right, minGapKey);
  let child = node;
  let parent = node.parent;
  while (parent !== undefined) {
    if (child === parent.left) {
      if (parent.gapKey >= minGapKey) return parent;
      right = parent.right;
      if (right !== undefined && right.maxGapKey >= minGapKey) {
        return leftmostWithGap(right, minGapKey);
      }
    }
    child = parent;
    parent = parent.parent;
  }
  return undefined;
}

/**
 * The Linux iommufd fit test for one hole [holeStart, holeLast]: round the
 * start up to the alignment (skip the hole if that overflows 64 bits), OR in
 * the sub-page offset, and reject if the result is at or past the hole's last
 * address or leaves fewer than `length` addresses.
 */
function fitInHole(
  holeStart: bigint,
  holeLast: bigint,
  length: bigint,
  alignment: bigint,
  subOffset: bigint,
): bigint | undefined {
  const mask = alignment - 1n;
  const bumped = holeStart + mask;
  if (bumped > U64_MAX) return undefined;
  const aligned = (bumped - (bumped & mask)) | subOffset;
  // `>=` rather than `>`: the kernel rejects a start equal to the hole's last address even for length 1.
  if (aligned >= holeLast || holeLast - aligned < length - 1n) return undefined;
  return aligned;
}

/**
 * fitInHole in doubles, for the common case. `holeStart` and `lengthMinusOne`
 * are exact (below 2^53), `alignment` a power of two, `subOffset` below it;
 * `holeLast` is exact when below 2^53 and otherwise only known to be >= 2^53.
 * Returns the start, NO_FIT, or UNDECIDED when doubles cannot tell (then
 * fitInHole decides).
 */
function fitInHoleFast(
  holeStart: number,
  holeLast: number,
  lengthMinusOne: number,
  alignment: number,
  subOffset: number,
): number {
  // Exact: a power-of-two division, and holeStart < 2^53 cannot overflow 64 bits when rounded up.
  // Adding subOffset is the OR, as the rounded value is a multiple of alignment > subOffset.
  const aligned = Math.ceil(holeStart / alignment) * alignment + subOffset;
  if (holeLast < EXACT) {
    return aligned >= holeLast || holeLast - aligned < lengthMinusOne ? NO_FIT : aligned;
  }
  return aligned < EXACT && lengthMinusOne < EXACT - aligned ? aligned : UNDECIDED;
}

/** True when `value` (Number(alignment)) is a power of two; exact checks for large ones. */
function isPowerOfTwo(alignment: bigint, value: number): boolean {
  if (value < 2 ** 31) return value >= 1 && (value & (value - 1)) === 0;
  return (alignment & (alignment - 1n)) === 0n;
}

function hex(value: bigint): string {
  return `0x${value.toString(16)}`;
}

/**
 * Disjoint inclusive ranges [start, last] of unsigned 64-bit addresses, in
 * order, each carrying a value: O(log n) insert, remove and lookup, in-order
 * walks, and first-fit hole search (`findHole`) that skips subtrees whose holes
 * are all too small.
 *
 * Ranges are u64 (0 <= x <= 2^64 - 1): insert() throws RangeError otherwise.
 * findHole's arguments must be u64 too; it does not check, to stay fast (parts
 * of it take an argument modulo 2^64). The other queries accept any bigint.
 */
export class RangeTree<T> {
  private root: TreeNode<T> | undefined = undefined;
  /** The last node in order, kept so the tail hole costs no walk. */
  private highest: TreeNode<T> | undefined = undefined;
  private count = 0;

  /** Number of ranges held. */
  get size(): number {
    return this.count;
  }

  /**
   * Insert [start, last] (start <= last). Returns the node. Throws Error if it overlaps a range already held
   * (callers check first; an overlap is a bug, not user input).
   */
  insert(start: bigint, last: bigint, value: T): RangeNode<T> {
    if (start < 0n || last > U64_MAX) {
      throw new RangeError(`range [${hex(start)}, ${hex(last)}] is outside the 64-bit space`);
    }
    const startKey = keyOf(start);
    const lastKey = keyOf(last);
    if (startKey > lastKey || (startKey === lastKey && start > last)) {
      throw new RangeError(`invalid range [${hex(start)}, ${hex(last)}]: start > last`);
    }
    let parent: TreeNode<T> | undefined;
    let predecessor: TreeNode<T> | undefined;
    let successor: TreeNode<T> | undefined;
    let current = this.root;
    let asLeftChild = false;
    // The predecessor and successor are the last nodes passed going right and left; checking
    // against those two is enough to know the new range overlaps nothing.
    while (current !== undefined) {
      parent = current;
      if (lastKey < current.startKey || (lastKey === current.startKey && last < current.start)) {
        successor = current;
        asLeftChild = true;
        current = current.left;
      } else if (
        startKey > current.lastKey ||
        (startKey === current.lastKey && start > current.last)
      ) {
        predecessor = current;
        asLeftChild = false;
        current = current.right;
      } else {
        throw new Error(
          `range [${hex(start)}, ${hex(last)}] overlaps [${hex(current.start)}, ${hex(current.last)}]`,
        );
      }
    }
    const node = new TreeNode(start, last, startKey, lastKey, value, this);
    node.gapKey = gapKeyBefore(predecessor, start, startKey);
    node.maxGapKey = node.gapKey;
    node.parent = parent;
    if (parent === undefined) this.root = node;
    else if (asLeftChild) parent.left = node;
    else parent.right = node;
    // The successor is an ancestor of the new leaf, so the walk up refreshes its maxGapKey.
    if (successor !== undefined) {
      successor.gapKey = gapKeyBefore(node, successor.start, successor.startKey);
    } else {
      this.highest = node;
    }
    this.count++;
    this.rebalanceUpFrom(parent, successor);
    return node;
  }

  /** Remove a node previously returned by insert/lookup (no-op if already removed). */
  remove(handle: RangeNode<T>): void {
    if (!(handle instanceof TreeNode) || handle.owner !== this) return;
    const node: TreeNode<T> = handle;
    node.owner = undefined;
    this.count--;

    const successor = successorOf(node);
    // The successor's hole now reaches back to the node's predecessor.
    if (successor !== undefined) {
      successor.gapKey = gapKeyBefore(predecessorOf(node), successor.start, successor.startKey);
    } else {
      this.highest = predecessorOf(node);
    }

    const left = node.left;
    const right = node.right;
    let rebalanceFrom: TreeNode<T> | undefined;
    let stale = successor; // a node on the walk whose maxGapKey must be refreshed before stopping early
    if (left !== undefined && right !== undefined && successor !== undefined) {
      // Two children: the successor (leftmost of the right subtree) takes the node's place.
      // Nodes move rather than swap contents, because callers hold node references.
      if (successor === right) {
        rebalanceFrom = successor;
      } else {
        const successorParent = successor.parent as TreeNode<T>;
        rebalanceFrom = successorParent;
        successorParent.left = successor.right;
        if (successor.right !== undefined) successor.right.parent = successorParent;
        successor.right = right;
        right.parent = successor;
      }
      successor.left = left;
      left.parent = successor;
      this.replaceChild(node.parent, node, successor);
      successor.parent = node.parent;
      // Take over the old values so the early stop compares like with like.
      successor.height = node.height;
      successor.maxGapKey = node.maxGapKey;
    } else {
      const child = left ?? right;
      this.replaceChild(node.parent, node, child);
      if (child !== undefined) child.parent = node.parent;
      rebalanceFrom = node.parent;
      if (child !== undefined && child === successor) {
        // A lone right child is a leaf in an AVL tree and sits below the walk: refresh it now.
        recompute(child);
        stale = undefined;
      }
    }
    node.left = undefined;
    node.right = undefined;
    node.parent = undefined;
    this.rebalanceUpFrom(rebalanceFrom, stale);
  }

  /** The lowest-start node intersecting [start, last], or undefined. */
  firstIntersecting(start: bigint, last: bigint): RangeNode<T> | undefined {
    const startKey = Number(start);
    const lastKey = Number(last);
    if (startKey > lastKey || (startKey === lastKey && start > last)) return undefined;
    const node = this.lowestEndingAtOrAfter(start, startKey);
    if (node === undefined || node.startKey > lastKey) return undefined;
    return node.startKey < lastKey || node.start <= last ? node : undefined;
  }

  /** The node containing `address`, or undefined. */
  find(address: bigint): RangeNode<T> | undefined {
    const key = Number(address);
    const node = this.lowestEndingAtOrAfter(address, key);
    if (node === undefined || node.startKey > key) return undefined;
    return node.startKey < key || node.start <= address ? node : undefined;
  }

  /** The next node in order, or undefined at the end (or for a removed node). */
  next(node: RangeNode<T>): RangeNode<T> | undefined {
    return node instanceof TreeNode && node.owner === this ? successorOf(node) : undefined;
  }

  /** The previous node in order, or undefined at the start (or for a removed node). */
  prev(node: RangeNode<T>): RangeNode<T> | undefined {
    return node instanceof TreeNode && node.owner === this ? predecessorOf(node) : undefined;
  }

  /** The lowest node, or undefined when empty. */
  first(): RangeNode<T> | undefined {
    return this.root === undefined ? undefined : leftmost(this.root);
  }

  /** The highest node, or undefined when empty. */
  last(): RangeNode<T> | undefined {
    return this.highest;
  }

  /**
   * Every node intersecting [start, last], lowest first. The caller may remove the node it was just
   * given before asking for the next one (the next node is fetched before yielding).
   */
  *intersecting(start: bigint, last: bigint): IterableIterator<RangeNode<T>> {
    if (start > last) return;
    const lastKey = Number(last);
    let node = this.lowestEndingAtOrAfter(start, Number(start));
    while (
      node !== undefined &&
      (node.startKey < lastKey || (node.startKey === lastKey && node.start <= last))
    ) {
      const following = successorOf(node);
      yield node;
      node = following;
    }
  }

  /** All nodes in order (removing the node just yielded is safe). */
  *[Symbol.iterator](): IterableIterator<RangeNode<T>> {
    let node = this.root === undefined ? undefined : leftmost(this.root);
    while (node !== undefined) {
      const following = successorOf(node);
      yield node;
      node = following;
    }
  }

  /**
   * First-fit allocation, the Linux iommufd rule: walk the holes intersecting [lo, hi] (clipped to it)
   * lowest first; in each, round the start up to `alignment` (a power of two; skip the hole if that
   * overflows 64 bits), OR in `subOffset`, and take it unless it is >= the hole's last address or
   * leaves fewer than `length` (>= 1) addresses. Returns the chosen start or undefined.
   * All five arguments must be u64 values (unchecked, see the class comment).
   */
  findHole(
    lo: bigint,
    hi: bigint,
    length: bigint,
    alignment: bigint,
    subOffset: bigint,
  ): bigint | undefined {
    const lengthKey = keyOf(length);
    const alignmentKey = keyOf(alignment);
    if (lengthKey < 1 || !isPowerOfTwo(alignment, alignmentKey)) {
      throw new RangeError(`invalid hole request: length ${length}, alignment ${alignment}`);
    }
    const loKey = keyOf(lo);
    const hiKey = keyOf(hi);
    if (loKey > hiKey || (loKey === hiKey && lo > hi)) return undefined;
    const subOffsetKey = keyOf(subOffset);
    // Doubles decide exactly for holes below 2^53 when length and subOffset are exact and the
    // OR is an addition; anything else takes the bigint path.
    const fast = lengthKey < EXACT && subOffsetKey < alignmentKey;
    const lengthMinusOneKey = lengthKey - 1;

    const root = this.root;
    if (root !== undefined) {
      // A fit needs a hole of at least `length` addresses, and of two even for length 1 (the `>=`
      // quirk), so smaller holes, and every subtree holding only smaller holes, are skipped.
      const minGapKey = lengthKey < 2 ? 2 : lengthKey;
      if (root.maxGapKey >= minGapKey) {
        // Holes ending at or after lo are the ones before nodes starting after lo.
        const firstAfterLo = this.lowestStartingAfter(lo, loKey);
        let candidate =
          firstAfterLo === undefined || firstAfterLo.gapKey >= minGapKey
            ? firstAfterLo
            : nextWithGap(firstAfterLo, minGapKey);
        while (candidate !== undefined) {
          if (fast && candidate.startKey < EXACT) {
            // All exact: lo < candidate.start < 2^53, and hi clips only when below 2^53 too.
            const holeStart = candidate.startKey - candidate.gapKey;
            if (holeStart > hiKey) return undefined; // later holes, the tail included, start higher still
            const holeLast = candidate.startKey - 1;
            const fit = fitInHoleFast(
              holeStart > loKey ? holeStart : loKey,
              holeLast < hiKey ? holeLast : hiKey,
              lengthMinusOneKey,
              alignmentKey,
              subOffsetKey,
            );
            if (fit >= 0) return bigintOf(fit);
          } else {
            const predecessor = predecessorOf(candidate);
            const holeStart = predecessor === undefined ? 0n : predecessor.last + 1n;
            if (holeStart > hi) return undefined;
            const holeLast = candidate.start - 1n;
            const fit = fitInHole(
              holeStart > lo ? holeStart : lo,
              holeLast < hi ? holeLast : hi,
              length,
              alignment,
              subOffset,
            );
            if (fit !== undefined) return fit;
          }
          candidate = nextWithGap(candidate, minGapKey);
        }
      }
    }

    // The tail hole, after the highest range (the whole space when empty).
    const highest = this.highest;
    if (highest !== undefined) {
      // No tail within [lo, hi] when the highest range reaches hi.
      if (highest.lastKey > hiKey || (highest.lastKey === hiKey && highest.last >= hi)) {
        return undefined;
      }
    }
    const tailStartKey = highest === undefined ? 0 : highest.lastKey + 1;
    if (fast && tailStartKey < EXACT && loKey < EXACT) {
      const fit = fitInHoleFast(
        tailStartKey > loKey ? tailStartKey : loKey,
        hiKey,
        lengthMinusOneKey,
        alignmentKey,
        subOffsetKey,
      );
      if (fit >= 0) return bigintOf(fit);
      if (fit === NO_FIT) return undefined;
    }
    const tailStart = highest === undefined ? 0n : highest.last + 1n;
    return fitInHole(tailStart > lo ? tailStart : lo, hi, length, alignment, subOffset);
  }

  /** Every hole (maximal run of addresses held by no node) intersecting [lo, hi], clipped to it, lowest first. */
  *holes(lo: bigint, hi: bigint): IterableIterator<{ start: bigint; last: bigint }> {
    if (lo > hi) return;
    let cursor = lo; // lowest address not yet accounted for
    let node = this.lowestEndingAtOrAfter(lo, Number(lo));
    while (node !== undefined && node.start <= hi) {
      const following = successorOf(node);
      const nodeStart = node.start;
      const nodeLast = node.last;
      if (nodeStart > cursor) yield { start: cursor, last: nodeStart - 1n };
      if (nodeLast >= hi) return;
      cursor = nodeLast + 1n;
      node = following;
    }
    yield { start: cursor, last: hi };
  }

  /** The lowest node whose last is >= address (the first that could contain or follow it). */
  private lowestEndingAtOrAfter(address: bigint, key: number): TreeNode<T> | undefined {
    let found: TreeNode<T> | undefined;
    let current = this.root;
    while (current !== undefined) {
      if (current.lastKey > key || (current.lastKey === key && current.last >= address)) {
        found = current;
        current = current.left;
      } else {
        current = current.right;
      }
    }
    return found;
  }

  /** The lowest node whose start is > address. */
  private lowestStartingAfter(address: bigint, key: number): TreeNode<T> | undefined {
    let found: TreeNode<T> | undefined;
    let current = this.root;
    while (current !== undefined) {
      if (current.startKey > key || (current.startKey === key && current.start > address)) {
        found = current;
        current = current.left;
      } else {
        current = current.right;
      }
    }
    return found;
  }

  private replaceChild(
    parent: TreeNode<T> | undefined,
    oldChild: TreeNode<T>,
    newChild: TreeNode<T> | undefined,
  ): void {
    if (parent === undefined) this.root = newChild;
    else if (parent.left === oldChild) parent.left = newChild;
    else parent.right = newChild;
  }

  /**
   * Walks from `from` to the root restoring AVL balance and refreshing height and maxGapKey. Stops
   * early once a node comes out unchanged, but never before passing `stale`, a node whose gap changed.
   */
  private rebalanceUpFrom(from: TreeNode<T> | undefined, stale: TreeNode<T> | undefined): void {
    let pending = stale;
    let node = from;
    while (node !== undefined) {
      const parent = node.parent;
      const oldHeight = node.height;
      const oldMaxGap = node.maxGapKey;
      const top = this.rebalance(node);
      if (node === pending) pending = undefined;
      if (
        top === node &&
        pending === undefined &&
        node.height === oldHeight &&
        node.maxGapKey === oldMaxGap
      ) {
        return;
      }
      node = parent;
    }
  }

  /** Rotates at `node` if it is out of balance; returns the subtree's root, refreshed. */
  private rebalance(node: TreeNode<T>): TreeNode<T> {
    const left = node.left;
    const right = node.right;
    const leftHeight = heightOf(left);
    const rightHeight = heightOf(right);
    if (left !== undefined && leftHeight > rightHeight + 1) {
      if (heightOf(left.right) > heightOf(left.left)) this.rotateLeft(left);
      return this.rotateRight(node);
    }
    if (right !== undefined && rightHeight > leftHeight + 1) {
      if (heightOf(right.left) > heightOf(right.right)) this.rotateRight(right);
      return this.rotateLeft(node);
    }
    recompute(node);
    return node;
  }

  private rotateLeft(node: TreeNode<T>): TreeNode<T> {
    const pivot = node.right as TreeNode<T>;
    const inner = pivot.left;
    node.right = inner;
    if (inner !== undefined) inner.parent = node;
    this.replaceChild(node.parent, node, pivot);
    pivot.parent = node.parent;
    pivot.left = node;
    node.parent = pivot;
    recompute(node);
    recompute(pivot);
    return pivot;
  }

  private rotateRight(node: TreeNode<T>): TreeNode<T> {
    const pivot = node.left as TreeNode<T>;
    const inner = pivot.right;
    node.left = inner;
    if (inner !== undefined) inner.parent = node;
    this.replaceChild(node.parent, node, pivot);
    pivot.parent = node.parent;
    pivot.right = node;
    node.parent = pivot;
    recompute(node);
    recompute(pivot);
    return pivot;
  }
}
