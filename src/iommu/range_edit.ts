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

import { DIFF_F, DIFF_R, END_R, PERM, type RangeTable, STAMP, START_R, STRIDE } from "./range_table.ts";
import { EXACT_LIMIT } from "./u64_key.ts";

// Comparisons of an entry's start or end with a pair (yF, yR). Residuals are all zero below 2^53,
// so `res` (another cache miss on a large table) is read only when the rounded values tie there.

/** Whether entry x starts below y. */
function startsBelow(t: RangeTable, x: number, yF: number, yR: number): boolean {
  const f = t.keys[x];
  return f < yF || (f === yF && f >= EXACT_LIMIT && t.res[x * STRIDE + START_R] < yR);
}

/** Whether entry x starts exactly at y. */
function startsAt(t: RangeTable, x: number, yF: number, yR: number): boolean {
  return t.keys[x] === yF && (yF < EXACT_LIMIT || t.res[x * STRIDE + START_R] === yR);
}

/** Whether entry x ends above y. */
function endsAbove(t: RangeTable, x: number, yF: number, yR: number): boolean {
  const f = t.ends[x];
  return f > yF || (f === yF && f >= EXACT_LIMIT && t.res[x * STRIDE + END_R] > yR);
}

/** Whether entry x ends exactly at y. */
function endsAt(t: RangeTable, x: number, yF: number, yR: number): boolean {
  return t.ends[x] === yF && (yF < EXACT_LIMIT || t.res[x * STRIDE + END_R] === yR);
}

/** Whether entry x translates with diff d and has `perm`. */
function translatesAs(t: RangeTable, x: number, dF: number, dR: number, perm: number): boolean {
  const p = x * STRIDE;
  return t.rec[p + DIFF_F] === dF && t.rec[p + PERM] === perm && t.residualOf(x, DIFF_R, dF) === dR;
}

/** Entry x's end residual. */
function endResidual(t: RangeTable, x: number): number {
  return t.residualOf(x, END_R, t.ends[x]);
}

/**
 * How many edits took each path, for tests that must know the fast paths ran (a count costs less
 * than a nanosecond; nothing reads it otherwise).
 *
 * @example
 * ```ts
 * import { RangeTable } from "./range_table.ts";
 * import { assign, editPaths } from "./range_edit.ts";
 * const before = editPaths.gapInsert;
 * assign(new RangeTable(), 0, 0, 0x1000, 0, 0x5000, 0, 3, 1);
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
 * Removes the coverage of `[s, e)` and leaves the table's cursor where an entry for `[s, e)` would
 * be inserted (the first entry starting at or after `e`).
 *
 * @example
 * ```ts
 * import { RangeTable } from "./range_table.ts";
 * import { carve } from "./range_edit.ts";
 * const t = new RangeTable();
 * t.insert(0, 0, 0, 0, 100, 0, 5, 0, 3, 1);
 * carve(t, 10, 0, 20, 0); // [0, 10) and [20, 100) remain
 * console.log(t.size); // 2
 * ```
 */
export function carve(t: RangeTable, sF: number, sR: number, eF: number, eR: number): void {
  if (seek(t, sF, sR)) {
    const x = t.entry(t.k, t.i);
    if (startsAt(t, x, sF, sR) && endsAt(t, x, eF, eR)) {
      // Exactly one entry (unmapping what was mapped page by page): what the general path ends in,
      // without its second search for the end.
      editPaths.removeWhole++;
      t.remove(t.k, t.i, 1);
      return;
    }
  }
  editPaths.carveGeneral++;
  carveAt(t, sF, sR, eF, eR);
}

/**
 * The cursor to the first entry whose end lies above `s` (as {@link RangeTable.locate} leaves it),
 * by the branch-free search below 2^53; false when there is no such entry.
 */
function seek(t: RangeTable, sF: number, sR: number): boolean {
  if (sF < EXACT_LIMIT) {
    const x = t.seekFloor(sF);
    if (x >= 0 && !endsAbove(t, x, sF, 0)) t.advance();
  } else {
    t.locate(sF, sR);
  }
  return !t.atEnd();
}

/** {@link carve} with the cursor already on the first entry whose end lies above `s`. */
function carveAt(t: RangeTable, sF: number, sR: number, eF: number, eR: number): void {
  if (t.atEnd()) return;
  let x = t.entry(t.k, t.i);
  if (!startsBelow(t, x, eF, eR)) return;
  if (startsBelow(t, x, sF, sR)) {
    const p = x * STRIDE;
    const oldEndF = t.ends[x], oldEndR = endResidual(t, x);
    const inside = endsAbove(t, x, eF, eR);
    t.setEnd(x, sF, sR);
    t.advance();
    if (inside) {
      // The range lies strictly inside one entry: its right part becomes an entry of its own.
      const rec = t.rec, dF = rec[p + DIFF_F];
      t.insert(t.k, t.i, eF, eR, oldEndF, oldEndR, dF, t.residualOf(x, DIFF_R, dF), rec[p + PERM], rec[p + STAMP]);
      return;
    }
    if (t.atEnd()) return;
    x = t.entry(t.k, t.i);
    if (!startsBelow(t, x, eF, eR)) return;
  }
  // The cursor's entry starts inside [s, e).
  if (endsAbove(t, x, eF, eR)) {
    t.setStart(t.k, t.i, eF, eR);
    return;
  }
  const k0 = t.k, i0 = t.i;
  t.locate(eF, eR);
  t.remove(k0, i0, between(t, k0, i0, t.k, t.i));
  if (t.atEnd()) return;
  x = t.entry(t.k, t.i);
  if (startsBelow(t, x, eF, eR)) t.setStart(t.k, t.i, eF, eR);
}

/**
 * Maps `[s, e)` with diff `d` and `perm`, overwriting what was there and merging with touching
 * neighbours that continue the same translation with the same permissions. The merged or new
 * entry gets `stamp`.
 *
 * @example
 * ```ts
 * import { RangeTable } from "./range_table.ts";
 * import { assign } from "./range_edit.ts";
 * const t = new RangeTable();
 * assign(t, 0, 0, 0x1000, 0, 0x5000, 0, 3, 1);
 * assign(t, 0x1000, 0, 0x2000, 0, 0x5000, 0, 3, 2); // continues the first: one entry
 * console.log(t.size); // 1
 * ```
 */
export function assign(
  t: RangeTable,
  sF: number,
  sR: number,
  eF: number,
  eR: number,
  dF: number,
  dR: number,
  perm: number,
  stamp: number,
): void {
  // The fast paths come first and call nothing that does not inline; the general path is
  // assignAt. On a large table their cost is the search's cache misses and the record's write.
  if (seek(t, sF, sR)) {
    const k = t.k, i = t.i, x = t.entry(k, i);
    if (startsAt(t, x, sF, sR)) {
      if (endsAt(t, x, eF, eR) && !continues(t, t.before(k, i), t.after(k, i), sF, sR, eF, eR, dF, dR, perm)) {
        // Exactly one entry's range, and nothing to merge with: rewrite it in place. Its old
        // translation is not read (another cache miss): had it been the same, no neighbour could
        // continue it either, as the table never holds two entries that could merge.
        t.setDiff(x, dF, dR);
        const rec = t.rec, p = x * STRIDE;
        rec[p + PERM] = perm;
        rec[p + STAMP] = stamp;
        editPaths.overwrite++;
        return;
      }
    } else if (
      !startsBelow(t, x, eF, eR) && !continues(t, t.before(k, i), x, sF, sR, eF, eR, dF, dR, perm)
    ) {
      // In the gap before entry x, continuing neither neighbour.
      editPaths.gapInsert++;
      t.insert(k, i, sF, sR, eF, eR, dF, dR, perm, stamp);
      return;
    }
  } else if (!continues(t, t.before(t.chunks, 0), -1, sF, sR, eF, eR, dF, dR, perm)) {
    // Past every entry, continuing none.
    editPaths.gapInsert++;
    t.insert(t.chunks, 0, sF, sR, eF, eR, dF, dR, perm, stamp);
    return;
  }
  editPaths.assignGeneral++;
  assignAt(t, sF, sR, eF, eR, dF, dR, perm, stamp);
}

/**
 * Whether a mapping of `[s, e)` with diff d and `perm` would merge with entry `left` (ending at s)
 * or entry `right` (starting at e); -1 stands for no entry.
 */
function continues(
  t: RangeTable,
  left: number,
  right: number,
  sF: number,
  sR: number,
  eF: number,
  eR: number,
  dF: number,
  dR: number,
  perm: number,
): boolean {
  return (left >= 0 && endsAt(t, left, sF, sR) && translatesAs(t, left, dF, dR, perm)) ||
    (right >= 0 && startsAt(t, right, eF, eR) && translatesAs(t, right, dF, dR, perm));
}

/** {@link assign} in general, with the cursor on the first entry whose end lies above `s`. */
function assignAt(
  t: RangeTable,
  sF: number,
  sR: number,
  eF: number,
  eR: number,
  dF: number,
  dR: number,
  perm: number,
  stamp: number,
): void {
  if (!t.atEnd()) {
    const x = t.entry(t.k, t.i);
    if (startsAt(t, x, sF, sR) && endsAt(t, x, eF, eR)) {
      // Exactly one entry's range, with a new translation that continues a neighbour's.
      t.setDiff(x, dF, dR);
      t.rec[x * STRIDE + PERM] = perm;
      t.rec[x * STRIDE + STAMP] = stamp;
      coalesce(t, t.k, t.i, stamp);
      return;
    }
  }
  carveAt(t, sF, sR, eF, eR);
  const k = t.k, i = t.i;
  let right = -1;
  if (!t.atEnd()) {
    const x = t.entry(k, i);
    if (startsAt(t, x, eF, eR) && translatesAs(t, x, dF, dR, perm)) right = x;
  }
  let left = -1;
  if (t.retreat()) {
    const x = t.entry(t.k, t.i);
    if (endsAt(t, x, sF, sR) && translatesAs(t, x, dF, dR, perm)) left = x;
  }
  if (left >= 0 && right >= 0) {
    t.setEnd(left, t.ends[right], endResidual(t, right));
    t.rec[left * STRIDE + STAMP] = stamp;
    t.remove(k, i, 1);
  } else if (left >= 0) {
    t.setEnd(left, eF, eR);
    t.rec[left * STRIDE + STAMP] = stamp;
  } else if (right >= 0) {
    t.setStart(k, i, sF, sR);
    t.rec[right * STRIDE + STAMP] = stamp;
  } else {
    t.insert(k, i, sF, sR, eF, eR, dF, dR, perm, stamp);
  }
}

/** Merges the entry at `(k, i)` with the neighbours that continue it; the result gets `stamp`. */
function coalesce(t: RangeTable, k: number, i: number, stamp: number): void {
  const x = t.entry(k, i), p = x * STRIDE;
  const dF = t.rec[p + DIFF_F], dR = t.residualOf(x, DIFF_R, dF), perm = t.rec[p + PERM];
  const endF = t.ends[x], endR = endResidual(t, x);
  let right = -1;
  const rk = i + 1 < t.countAt(k) ? k : k + 1, ri = rk === k ? i + 1 : 0;
  if (rk < t.chunks) {
    const y = t.entry(rk, ri);
    if (startsAt(t, y, endF, endR) && translatesAs(t, y, dF, dR, perm)) right = y;
  }
  let left = -1;
  t.k = k;
  t.i = i;
  if (t.retreat()) {
    const y = t.entry(t.k, t.i);
    const sF = t.keys[x];
    if (endsAt(t, y, sF, t.residualOf(x, START_R, sF)) && translatesAs(t, y, dF, dR, perm)) left = y;
  }
  const last = right >= 0 ? right : x;
  if (left >= 0) {
    t.setEnd(left, t.ends[last], endResidual(t, last));
    t.rec[left * STRIDE + STAMP] = stamp;
    t.remove(k, i, right >= 0 ? 2 : 1);
  } else if (right >= 0) {
    t.setEnd(x, t.ends[right], endResidual(t, right));
    t.remove(rk, ri, 1);
  }
}

/** Entries from position (k0, i0) up to, not including, position (k1, i1). */
function between(t: RangeTable, k0: number, i0: number, k1: number, i1: number): number {
  if (k0 === k1) return i1 - i0;
  let n = t.countAt(k0) - i0;
  for (let k = k0 + 1; k < k1; k++) n += t.countAt(k);
  return n + i1;
}
