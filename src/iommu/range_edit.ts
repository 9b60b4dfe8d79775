/**
 * Editing a {@link RangeTable} the way vm-memory's range map behaves: removing a range splits or
 * truncates the records it crosses (each kept part keeps its translation), and writing a range
 * first removes what was there, then merges with a neighbour that touches it, translates
 * contiguously (equal diff) and has the same permissions.
 *
 * The diff is the exact signed `target − start`, not reduced mod 2^64 as vm-memory stores it. The
 * two agree except for neighbours whose targets are contiguous only by wrapping past 2^64; merging
 * those would make one record whose target range wraps, which this library never hands out.
 * @module
 */

import { DIFF_F, DIFF_R, END_F, END_R, PERM, type RangeTable, STAMP, START_F, START_R } from "./range_table.ts";
import { keyLess } from "./u64_key.ts";

/**
 * Removes the coverage of `[s, e)` and leaves the table's cursor where a record for `[s, e)` would
 * be inserted (the first record starting at or after `e`).
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
  if (t.atEnd()) return;
  const rec = t.rec;
  const p = t.slot(t.k, t.i);
  if (!keyLess(rec[p + START_F], rec[p + START_R], eF, eR)) return;
  if (keyLess(rec[p + START_F], rec[p + START_R], sF, sR)) {
    const oldEndF = rec[p + END_F], oldEndR = rec[p + END_R];
    rec[p + END_F] = sF;
    rec[p + END_R] = sR;
    t.advance();
    if (keyLess(eF, eR, oldEndF, oldEndR)) {
      // The range lies strictly inside one record: its right part becomes a record of its own.
      t.insert(t.k, t.i, eF, eR, oldEndF, oldEndR, rec[p + DIFF_F], rec[p + DIFF_R], rec[p + PERM], rec[p + STAMP]);
      return;
    }
  }
  const k0 = t.k, i0 = t.i;
  t.locate(eF, eR);
  const n = between(t, k0, i0, t.k, t.i);
  if (n > 0) t.remove(k0, i0, n);
  if (t.atEnd()) return;
  const q = t.slot(t.k, t.i);
  if (keyLess(t.rec[q + START_F], t.rec[q + START_R], eF, eR)) t.setStart(t.k, t.i, eF, eR);
}

/**
 * Maps `[s, e)` with diff `d` and `perm`, overwriting what was there and merging with touching
 * neighbours that continue the same translation with the same permissions. The merged or new
 * record gets `stamp`.
 *
 * @example
 * ```ts
 * import { RangeTable } from "./range_table.ts";
 * import { assign } from "./range_edit.ts";
 * const t = new RangeTable();
 * assign(t, 0, 0, 0x1000, 0, 0x5000, 0, 3, 1);
 * assign(t, 0x1000, 0, 0x2000, 0, 0x5000, 0, 3, 2); // continues the first: one record
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
  carve(t, sF, sR, eF, eR);
  const k = t.k, i = t.i;
  const rec = t.rec;
  let right = -1;
  if (!t.atEnd()) {
    const p = t.slot(k, i);
    if (
      rec[p + START_F] === eF && rec[p + START_R] === eR && rec[p + DIFF_F] === dF && rec[p + DIFF_R] === dR &&
      rec[p + PERM] === perm
    ) right = p;
  }
  let left = -1;
  if (t.retreat()) {
    const p = t.slot(t.k, t.i);
    if (
      rec[p + END_F] === sF && rec[p + END_R] === sR && rec[p + DIFF_F] === dF && rec[p + DIFF_R] === dR &&
      rec[p + PERM] === perm
    ) left = p;
  }
  if (left >= 0 && right >= 0) {
    rec[left + END_F] = rec[right + END_F];
    rec[left + END_R] = rec[right + END_R];
    rec[left + STAMP] = stamp;
    t.remove(k, i, 1);
  } else if (left >= 0) {
    rec[left + END_F] = eF;
    rec[left + END_R] = eR;
    rec[left + STAMP] = stamp;
  } else if (right >= 0) {
    t.setStart(k, i, sF, sR);
    rec[right + STAMP] = stamp;
  } else {
    t.insert(k, i, sF, sR, eF, eR, dF, dR, perm, stamp);
  }
}

/** Records from position (k0, i0) up to, not including, position (k1, i1). */
function between(t: RangeTable, k0: number, i0: number, k1: number, i1: number): number {
  if (k0 === k1) return i1 - i0;
  let n = t.countAt(k0) - i0;
  for (let k = k0 + 1; k < k1; k++) n += t.countAt(k);
  return n + i1;
}
