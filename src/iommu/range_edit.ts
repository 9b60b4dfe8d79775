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

import { DIFF_F, DIFF_R, END_F, END_R, PERM, type RangeTable, STAMP, START_R, STRIDE } from "./range_table.ts";
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
  const f = t.rec[x * STRIDE + END_F];
  return f > yF || (f === yF && f >= EXACT_LIMIT && t.res[x * STRIDE + END_R] > yR);
}

/** Whether entry x ends exactly at y. */
function endsAt(t: RangeTable, x: number, yF: number, yR: number): boolean {
  return t.rec[x * STRIDE + END_F] === yF && (yF < EXACT_LIMIT || t.res[x * STRIDE + END_R] === yR);
}

/** Whether entry x translates with diff d and has `perm`. */
function translatesAs(t: RangeTable, x: number, dF: number, dR: number, perm: number): boolean {
  const p = x * STRIDE;
  return t.rec[p + DIFF_F] === dF && t.rec[p + PERM] === perm && t.residualOf(x, DIFF_R, dF) === dR;
}

/** Sets entry x's end. */
function setEnd(t: RangeTable, x: number, eF: number, eR: number): void {
  t.setResidual(x, END_R, eR, t.rec[x * STRIDE + END_F]);
  t.rec[x * STRIDE + END_F] = eF;
}

/** Entry x's end residual. */
function endResidual(t: RangeTable, x: number): number {
  return t.residualOf(x, END_R, t.rec[x * STRIDE + END_F]);
}

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
  t.locate(sF, sR);
  carveAt(t, sF, sR, eF, eR);
}

/** {@link carve} with the cursor already on the first entry whose end lies above `s`. */
function carveAt(t: RangeTable, sF: number, sR: number, eF: number, eR: number): void {
  if (t.atEnd()) return;
  let x = t.entry(t.k, t.i);
  if (!startsBelow(t, x, eF, eR)) return;
  if (startsBelow(t, x, sF, sR)) {
    const p = x * STRIDE;
    const oldEndF = t.rec[p + END_F], oldEndR = endResidual(t, x);
    const inside = endsAbove(t, x, eF, eR);
    setEnd(t, x, sF, sR);
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
  t.locate(sF, sR);
  if (!t.atEnd()) {
    const x = t.entry(t.k, t.i);
    if (startsAt(t, x, sF, sR) && endsAt(t, x, eF, eR)) {
      // Exactly one entry's range again (re-mapping a page): rewrite it where it is. With its
      // translation unchanged it cannot have become mergeable with a neighbour.
      const p = x * STRIDE;
      if (translatesAs(t, x, dF, dR, perm)) {
        t.rec[p + STAMP] = stamp;
        return;
      }
      t.setResidual(x, DIFF_R, dR, t.rec[p + DIFF_F]);
      t.rec[p + DIFF_F] = dF;
      t.rec[p + PERM] = perm;
      t.rec[p + STAMP] = stamp;
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
    setEnd(t, left, t.rec[right * STRIDE + END_F], endResidual(t, right));
    t.rec[left * STRIDE + STAMP] = stamp;
    t.remove(k, i, 1);
  } else if (left >= 0) {
    setEnd(t, left, eF, eR);
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
  const endF = t.rec[p + END_F], endR = endResidual(t, x);
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
    setEnd(t, left, t.rec[last * STRIDE + END_F], endResidual(t, last));
    t.rec[left * STRIDE + STAMP] = stamp;
    t.remove(k, i, right >= 0 ? 2 : 1);
  } else if (right >= 0) {
    setEnd(t, x, t.rec[right * STRIDE + END_F], endResidual(t, right));
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
