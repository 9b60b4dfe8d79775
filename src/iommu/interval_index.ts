/**
 * IOVA ranges in flight (questions to a miss handler, misses waiting for a front-end's answer),
 * indexed so that a storm of N misses costs O(N log N) rather than a scan of every range per miss.
 *
 * A treap ordered by start, each node keeping the greatest end in its subtree, answers "is there a
 * range containing this one" and "which ranges start inside this span" in O(log n + answers).
 * Priorities are random, so no order of insertion (ascending misses, or a hostile guest's
 * choice of addresses) makes the tree deep. Not a hot path: keys are bigints.
 * @module
 */

/**
 * How much work the indexes did, for tests that must show a storm costs O(N log N): every node a
 * search, insertion or removal looks at counts one. Nothing reads it otherwise.
 *
 * @example
 * ```ts
 * import { IntervalIndex, intervalSteps } from "./interval_index.ts";
 * const before = intervalSteps.visits;
 * new IntervalIndex<string>().covering(0n, 1n);
 * console.log(intervalSteps.visits - before); // 0
 * ```
 */
export const intervalSteps = {
  /** Nodes looked at. */
  visits: 0,
};

/**
 * One range in an {@link IntervalIndex}, as {@link IntervalIndex.add} returns it: the handle to
 * remove it with.
 *
 * @example
 * ```ts
 * import { IntervalIndex } from "./interval_index.ts";
 * const node = new IntervalIndex<string>().add(0x1000n, 0x2000n, "page 1");
 * console.log(node.base, node.end, node.value); // 4096n 8192n page 1
 * ```
 */
export interface IntervalNode<T> {
  /** First byte. */
  readonly base: bigint;
  /** First byte after the range. */
  readonly end: bigint;
  /** What the range stands for. */
  readonly value: T;
}

class Node<T> implements IntervalNode<T> {
  left: Node<T> | null = null;
  right: Node<T> | null = null;
  maxEnd: bigint;
  live = true;
  constructor(
    readonly base: bigint,
    readonly end: bigint,
    readonly seq: number,
    readonly prio: number,
    readonly value: T,
  ) {
    this.maxEnd = end;
  }
}

/** Whether a sorts before b: by start, then by insertion (ranges may share a start). */
function before<T>(a: Node<T>, b: Node<T>): boolean {
  return a.base < b.base || (a.base === b.base && a.seq < b.seq);
}

function pull<T>(n: Node<T>): void {
  let m = n.end;
  if (n.left !== null && n.left.maxEnd > m) m = n.left.maxEnd;
  if (n.right !== null && n.right.maxEnd > m) m = n.right.maxEnd;
  n.maxEnd = m;
}

/** Splits `n` into the nodes before `key` and the rest. */
function split<T>(n: Node<T> | null, key: Node<T>): [Node<T> | null, Node<T> | null] {
  if (n === null) return [null, null];
  intervalSteps.visits++;
  if (before(n, key)) {
    const [l, r] = split(n.right, key);
    n.right = l;
    pull(n);
    return [n, r];
  }
  const [l, r] = split(n.left, key);
  n.left = r;
  pull(n);
  return [l, n];
}

/** Joins two trees, every node of `a` sorting before every node of `b`. */
function merge<T>(a: Node<T> | null, b: Node<T> | null): Node<T> | null {
  if (a === null) return b;
  if (b === null) return a;
  intervalSteps.visits++;
  if (a.prio > b.prio) {
    a.right = merge(a.right, b);
    pull(a);
    return a;
  }
  b.left = merge(a, b.left);
  pull(b);
  return b;
}

function insert<T>(n: Node<T> | null, x: Node<T>): Node<T> {
  if (n === null) return x;
  intervalSteps.visits++;
  if (x.prio > n.prio) {
    [x.left, x.right] = split(n, x);
    pull(x);
    return x;
  }
  if (before(x, n)) n.left = insert(n.left, x);
  else n.right = insert(n.right, x);
  pull(n);
  return n;
}

function remove<T>(n: Node<T> | null, x: Node<T>): Node<T> | null {
  if (n === null) return null;
  intervalSteps.visits++;
  if (n === x) return merge(n.left, n.right);
  if (before(x, n)) n.left = remove(n.left, x);
  else n.right = remove(n.right, x);
  pull(n);
  return n;
}

/** Some node of subtree `n` ending at or after `end`, given that `n.maxEnd >= end`. */
function endingAtLeast<T>(n: Node<T>, end: bigint): Node<T> {
  for (;;) {
    intervalSteps.visits++;
    if (n.end >= end) return n;
    n = n.left !== null && n.left.maxEnd >= end ? n.left : n.right!;
  }
}

function collect<T>(n: Node<T> | null, lo: bigint, hi: bigint, out: Node<T>[]): void {
  if (n === null) return;
  intervalSteps.visits++;
  if (n.base >= lo) collect(n.left, lo, hi, out);
  if (n.base >= lo && n.base < hi) out.push(n);
  if (n.base < hi) collect(n.right, lo, hi, out);
}

/**
 * A set of IOVA ranges `[base, end)`, each with a value; ranges may overlap or repeat.
 *
 * @example
 * ```ts
 * import { IntervalIndex } from "./interval_index.ts";
 * const index = new IntervalIndex<string>();
 * const a = index.add(0x1000n, 0x3000n, "a");
 * console.log(index.covering(0x1800n, 0x2000n)?.value); // a
 * index.delete(a);
 * console.log(index.size); // 0
 * ```
 */
export class IntervalIndex<T> {
  #root: Node<T> | null = null;
  #size = 0;
  #seq = 0;

  /** Ranges in the index. */
  get size(): number {
    return this.#size;
  }

  /** Adds `[base, end)` with `value` and returns its handle. */
  add(base: bigint, end: bigint, value: T): IntervalNode<T> {
    const node = new Node(base, end, this.#seq++, Math.random(), value);
    this.#root = insert(this.#root, node);
    this.#size++;
    return node;
  }

  /** Removes a range added here; false (and nothing changes) if it was removed already. */
  delete(handle: IntervalNode<T>): boolean {
    const node = handle as Node<T>;
    if (!node.live) return false;
    node.live = false;
    this.#root = remove(this.#root, node);
    this.#size--;
    return true;
  }

  /** A range containing all of `[base, end)`, if there is one. */
  covering(base: bigint, end: bigint): IntervalNode<T> | undefined {
    let n = this.#root;
    while (n !== null) {
      intervalSteps.visits++;
      if (n.base <= base) {
        if (n.end >= end) return n;
        // Everything on the left starts at or before n, so before `base` too: only its ends matter.
        if (n.left !== null && n.left.maxEnd >= end) return endingAtLeast(n.left, end);
        n = n.right;
      } else {
        n = n.left;
      }
    }
    return undefined;
  }

  /** The ranges that start in `[lo, hi)`, in order. */
  startingIn(lo: bigint, hi: bigint): IntervalNode<T>[] {
    const out: Node<T>[] = [];
    collect(this.#root, lo, hi, out);
    return out;
  }

  /** Every range, in order, and empties the index. */
  drain(): IntervalNode<T>[] {
    const out: Node<T>[] = [];
    const walk = (n: Node<T> | null): void => {
      if (n === null) return;
      walk(n.left);
      n.live = false;
      out.push(n);
      walk(n.right);
    };
    walk(this.#root);
    this.#root = null;
    this.#size = 0;
    return out;
  }
}
