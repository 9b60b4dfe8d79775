/**
 * Editing a {@link RangeTable} the way vm-memory's range map behaves: removing a range splits or
 * truncates the entries it crosses (each kept part keeps its translation), and writing a range
 * first removes what was there, then merges with a neighbour that touches it, translates
 * contiguously (equal diff) and has the same permissions.
 *
 * The diff is the exact signed `target − start`, not reduced mod 2^64 as vm-memory stores it. The
 * two agree except for neighbours whose targets are contiguous only by wrapping past 2^64; merging
 * those would make one entry whose target range wraps, which this library never hands out.
 * @module
 */

import { RangeEntry, type RangeTable } from "./range_table.ts";
import { U64Pair } from "./u64_key.ts";

// Scratch records of the general paths; no edit calls another while it uses them.
const splitOff = new RangeEntry();
const start = new U64Pair();
const end = new U64Pair();
const diff = new U64Pair();

/**
 * How many edits took each path, for tests that must know the fast paths ran (a count costs less
 * than a nanosecond; nothing reads it otherwise).
 *
 * @example
 * ```ts
 * import { RangeEntry, RangeTable } from "./range_table.ts";
 * import { assign, editPaths } from "./range_edit.ts";
 * const before = editPaths.gapInsert;
 * const e = new RangeEntry();
 * e.end.setNumber(0x1000);
 * assign(new RangeTable(false), e);
 * console.log(editPaths.gapInsert - before); // 1
 * ```
 */
export const editPaths = {
  /** `assign` rewrote one entry with exactly the range in place (nothing to merge). */
  overwrite: 0,
  /** `assign` inserted into a gap, touching and merging with nothing. */
  gapInsert: 0,
  /** `assign` carved and merged in general. */
  assignGeneral: 0,
  /** `carve` removed exactly one whole entry. */
  removeWhole: 0,
  /** `carve` split, truncated or removed entries in general. */
  carveGeneral: 0,
};

/**
 * Removes the coverage of `[from, to)` and leaves the table's cursor where an entry for it would
 * be inserted (the first entry starting at or after `to`).
 *
 * @example
 * ```ts
 * import { RangeEntry, RangeTable } from "./range_table.ts";
 * import { assign, carve } from "./range_edit.ts";
 * import { U64Pair } from "./u64_key.ts";
 * const t = new RangeTable(false);
 * const e = new RangeEntry();
 * e.end.setNumber(100);
 * assign(t, e);
 * carve(t, new U64Pair().setNumber(10), new U64Pair().setNumber(20)); // [0, 10) and [20, 100) remain
 * console.log(t.size); // 2
 * ```
 */
export function carve(t: RangeTable, from: U64Pair, to: U64Pair): void {
  t.locate(from);
  if (!t.atEnd()) {
    const h = t.here();
    if (t.startsAt(h, from) && t.endsAt(h, to)) {
      // Exactly one entry (unmapping what was mapped page by page): what the general path ends in,
      // without its second search for the end.
      editPaths.removeWhole++;
      t.remove(1);
      return;
    }
  }
  editPaths.carveGeneral++;
  carveAt(t, from, to);
}

/** {@link carve} with the cursor already on the first entry whose end lies above `from`. */
function carveAt(t: RangeTable, from: U64Pair, to: U64Pair): void {
  if (t.atEnd()) return;
  let h = t.here();
  if (!t.startsBelow(h, to)) return;
  if (t.startsBelow(h, from)) {
    const inside = t.endsAbove(h, to);
    if (inside) t.read(h, splitOff);
    t.setEnd(h, from);
    t.advance();
    if (inside) {
      // The range lies strictly inside one entry: its right part becomes an entry of its own.
      splitOff.start.copy(to);
      t.insert(splitOff);
      return;
    }
    if (t.atEnd()) return;
    h = t.here();
    if (!t.startsBelow(h, to)) return;
  }
  // The cursor's entry starts inside [from, to).
  if (t.endsAbove(h, to)) {
    t.setStartHere(to);
    return;
  }
  t.removeThrough(to);
  if (!t.atEnd() && t.startsBelow(t.here(), to)) t.setStartHere(to);
}

/**
 * Maps `[entry.start, entry.end)` with `entry.diff` and `entry.perm`, overwriting what was there
 * and merging with touching neighbours that continue the same translation with the same
 * permissions. The merged or new entry gets `entry.stamp`.
 *
 * @example
 * ```ts
 * import { RangeEntry, RangeTable } from "./range_table.ts";
 * import { assign } from "./range_edit.ts";
 * const t = new RangeTable(false);
 * const e = new RangeEntry();
 * e.end.setNumber(0x1000);
 * e.diff.setNumber(0x5000);
 * e.perm = 3;
 * assign(t, e);
 * e.start.setNumber(0x1000);
 * e.end.setNumber(0x2000); // continues the first: one entry
 * assign(t, e);
 * console.log(t.size); // 1
 * ```
 */
export function assign(t: RangeTable, entry: RangeEntry): void {
  // The fast paths come first and call nothing that does not inline; the general path is
  // assignAt. On a large table their cost is the search's cache misses and the record's write.
  const from = entry.start, to = entry.end;
  t.locate(from);
  if (!t.atEnd()) {
    const h = t.here();
    if (t.startsAt(h, from)) {
      if (t.endsAt(h, to) && !continues(t, t.before(), t.after(), entry)) {
        // Exactly one entry's range, and nothing to merge with: rewrite it in place. Its old
        // translation is not read (another cache miss): had it been the same, no neighbour could
        // continue it either, as the table never holds two entries that could merge.
        t.setTranslation(h, entry.diff, entry.perm, entry.stamp);
        editPaths.overwrite++;
        return;
      }
    } else if (!t.startsBelow(h, to) && !continues(t, t.before(), h, entry)) {
      // In the gap before entry h, continuing neither neighbour.
      editPaths.gapInsert++;
      t.insert(entry);
      return;
    }
  } else if (!continues(t, t.before(), -1, entry)) {
    // Past every entry, continuing none.
    editPaths.gapInsert++;
    t.insert(entry);
    return;
  }
  editPaths.assignGeneral++;
  assignAt(t, entry);
}

/**
 * Whether `entry` would merge with entry `left` (ending at its start) or entry `right` (starting
 * at its end); -1 stands for no entry.
 */
function continues(t: RangeTable, left: number, right: number, entry: RangeEntry): boolean {
  return (left >= 0 && t.endsAt(left, entry.start) && t.translatesAs(left, entry.diff, entry.perm)) ||
    (right >= 0 && t.startsAt(right, entry.end) && t.translatesAs(right, entry.diff, entry.perm));
}

/** {@link assign} in general, with the cursor on the first entry whose end lies above the start. */
function assignAt(t: RangeTable, entry: RangeEntry): void {
  const from = entry.start, to = entry.end;
  if (!t.atEnd()) {
    const h = t.here();
    if (t.startsAt(h, from) && t.endsAt(h, to)) {
      // Exactly one entry's range, with a new translation that continues a neighbour's.
      t.setTranslation(h, entry.diff, entry.perm, entry.stamp);
      coalesce(t, entry.stamp);
      return;
    }
  }
  carveAt(t, from, to);
  let right = -1;
  if (!t.atEnd()) {
    const h = t.here();
    if (t.startsAt(h, to) && t.translatesAs(h, entry.diff, entry.perm)) right = h;
  }
  let left = t.before();
  if (left >= 0 && !(t.endsAt(left, from) && t.translatesAs(left, entry.diff, entry.perm))) left = -1;
  if (left >= 0 && right >= 0) {
    t.setEnd(left, t.readEnd(right, end));
    t.renew(left, entry.stamp);
    t.remove(1);
  } else if (left >= 0) {
    t.setEnd(left, to);
    t.renew(left, entry.stamp);
  } else if (right >= 0) {
    t.setStartHere(from);
    t.renew(right, entry.stamp);
  } else {
    t.insert(entry);
  }
}

/** Merges the entry at the cursor with the neighbours that continue it; the result gets `stamp`. */
function coalesce(t: RangeTable, stamp: number): void {
  const h = t.here(), perm = t.perm(h);
  t.readDiff(h, diff);
  let right = t.after();
  if (right >= 0 && !(t.startsAt(right, t.readEnd(h, end)) && t.translatesAs(right, diff, perm))) right = -1;
  let left = t.before();
  if (left >= 0 && !(t.endsAt(left, t.readStart(h, start)) && t.translatesAs(left, diff, perm))) left = -1;
  if (left >= 0) {
    t.setEnd(left, t.readEnd(right >= 0 ? right : h, end));
    t.renew(left, stamp);
    t.remove(right >= 0 ? 2 : 1);
  } else if (right >= 0) {
    t.setEnd(h, t.readEnd(right, end));
    t.advance();
    t.remove(1);
  }
}
