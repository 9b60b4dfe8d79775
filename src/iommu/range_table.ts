/**
 * The IOTLB's storage: sorted, non-overlapping byte ranges of the u64 IOVA space, each with a
 * translation, permissions and an eviction stamp. {@link RangeTable} keeps the entries and offers a
 * cursor and accessors; range_edit.ts builds vm-memory's range-map edits on them, and the IOTLB
 * its policy (eviction, counters, recording).
 *
 * Layout, chosen for a 100k+ entry table: entries live in chunks of {@link CHUNK}, and a directory
 * lists the chunks in IOVA order with each chunk's first start, so an insert moves at most one
 * chunk's entries. A chunk is one 2 KiB block of a pooled Float64Array: its entries' (start, end)
 * pairs, then their (diff, permissions) pairs. A search probes one start in every cache line of
 * the first half, all at once, and so has every start and end of the chunk in the cache after one
 * round of (overlapping) misses: the neighbours' ends and starts an edit checks come free, and a
 * lookup waits for one more line, the (diff, permissions) pair. An insert shifts each half with
 * one `copyWithin` (about 20 ns a call, where a loop moves a double in about 1 ns). Measured
 * against two other layouts on 131072 entries (same run): 32-byte records (start, end, diff,
 * permissions) need a second round of misses to search; four runs of one field each need four
 * moves per insert. Values are exact u64 pairs (see u64_key.ts): the rounded doubles live in the
 * block, the residuals (zero below 2^53) in a second array of the same layout that exists only
 * once a value reaches 2^53 and is moved only for chunks that hold a nonzero one. Eviction stamps
 * live in a third array, kept only by a table that evicts. Unused slots start at +Infinity, so a
 * search needs no count.
 *
 * An entry is named by a handle, the index of its start in the pool: valid until the next edit.
 * @module
 */

import { EXACT_LIMIT, U64Pair } from "./u64_key.ts";

/** Entries per chunk: 64 measured better than 32 (inserts) and 128 (lookups, re-mapping). */
export const CHUNK = 64;
// A chunk's block: (start, end) pairs, then (diff, perm) pairs; an entry's handle is the index of
// its start, its other fields these offsets from it.
const STRIDE = 2;
const END = 1;
const DIFF = CHUNK * STRIDE;
const PERM = DIFF + 1;
const BLOCK = 2 * CHUNK * STRIDE;
// Stamps by handle / STRIDE: this many slots per chunk (half used, in bounded tables only).
const STAMPS = BLOCK / STRIDE;
// Up to this many doubles a loop moves them faster than copyWithin's call.
const COPY_LOOP_MAX = 16;
// A chunk that shrinks below a quarter joins a neighbour if the two fit in three quarters, so a
// table that shrank does not keep one mostly empty block per entry.
const SMALL = CHUNK >> 2;
const JOINED_MAX = (CHUNK * 3) >> 2;

/**
 * One entry's fields: `[start, end)` translates by `diff` (target − start, signed, exact) with
 * `perm`; `stamp` orders entries for eviction. What {@link RangeTable.insert} takes and
 * {@link RangeTable.read} fills; callers keep one and reuse it.
 *
 * @example
 * ```ts
 * import { RangeEntry } from "./range_table.ts";
 * const e = new RangeEntry();
 * e.start.setNumber(0x1000);
 * e.end.setNumber(0x2000);
 * e.diff.setNumber(0x4000); // [0x1000, 0x2000) → [0x5000, 0x6000)
 * e.perm = 3;
 * ```
 */
export class RangeEntry {
  /** First IOVA. */
  readonly start: U64Pair = new U64Pair();
  /** End IOVA (exclusive; may be 2^64). */
  readonly end: U64Pair = new U64Pair();
  /** Target minus start, never reduced mod 2^64. */
  readonly diff: U64Pair = new U64Pair();
  /** Permission bits 0–3. */
  perm = 0;
  /** Eviction stamp: the insertion sequence (fifo) or the last use (lru). */
  stamp = 0;
}

/**
 * Sorted range storage with one cursor. Searches move the cursor and return the handle of the
 * entry they found; `atEnd()` is the position past the last entry. Accessors read an entry by its
 * handle: the `rounded` halves directly (exact below 2^53, which is all a number-keyed fast path
 * needs), exact pairs into a {@link U64Pair}, and comparisons with a pair that read a residual
 * only when the rounded values tie at or above 2^53. Edits keep the order; the caller
 * (range_edit.ts) keeps entries from overlapping.
 *
 * Stamps are kept only by a `stamped` table (a bounded IOTLB, which evicts by them); an unbounded
 * one neither stores nor moves them.
 *
 * @example
 * ```ts
 * import { RangeEntry, RangeTable } from "./range_table.ts";
 * const t = new RangeTable(false);
 * const e = new RangeEntry();
 * e.start.setNumber(0x1000);
 * e.end.setNumber(0x2000);
 * e.diff.setNumber(0x4000);
 * e.perm = 3;
 * t.locate(e.start);
 * t.insert(e);
 * const h = t.floor(0x1800);
 * console.log(t.start(h), t.end(h), t.diff(h), t.perm(h)); // 4096 8192 16384 3
 * ```
 */
export class RangeTable {
  readonly #stamped: boolean;
  // The blocks (see the module doc), the residuals in the same layout, and the stamps by entry.
  // The residuals are allocated when a value at or above 2^53 first enters (only those read them):
  // a table below 2^53 would otherwise zero and fault in as many bytes again at every growth.
  #pool = new Float64Array(BLOCK * 2);
  #res = new Float64Array(0);
  #stamps = new Float64Array(STAMPS * 2);
  // By chunk id: 1 if the chunk's residuals may hold a nonzero value; entries; a lower bound of its
  // smallest stamp (stamps only ever rise in place).
  #resUsed = new Uint8Array(2);
  #count = new Int32Array(2);
  #minStamp = new Float64Array(2);
  // The directory: chunk ids in IOVA order, and the rounded start of each one's first entry.
  #dirChunk = new Int32Array(2);
  #dirFirst = new Float64Array(2);
  #chunks = 0;
  #size = 0;
  // The cursor: directory position and index in that chunk, always below the chunk's count (every
  // chunk in the directory holds at least one entry); #k === #chunks is the end.
  #k = 0;
  #i = 0;
  // The directory position the last floor search found (a guess: checked before it is used).
  #hint = 0;
  #pooled = 0;
  #free: number[] = [];

  /** An empty table; `stamped` keeps eviction stamps (see the class doc). */
  constructor(stamped: boolean) {
    this.#stamped = stamped;
  }

  /** Entries in the table. */
  get size(): number {
    return this.#size;
  }

  /** Chunks in use (for tests of how full the table stays). */
  get chunkCount(): number {
    return this.#chunks;
  }

  /** Drops every entry and shrinks the pool back. */
  clear(): void {
    this.#pool = new Float64Array(BLOCK * 2);
    this.#res = new Float64Array(0);
    this.#stamps = new Float64Array(STAMPS * 2);
    this.#resUsed = new Uint8Array(2);
    this.#count = new Int32Array(2);
    this.#minStamp = new Float64Array(2);
    this.#dirChunk = new Int32Array(2);
    this.#dirFirst = new Float64Array(2);
    this.#chunks = 0;
    this.#size = 0;
    this.#k = 0;
    this.#i = 0;
    this.#pooled = 0;
    this.#free = [];
  }

  // ---- the cursor ----

  /** Whether the cursor is past the last entry. */
  atEnd(): boolean {
    return this.#k >= this.#chunks;
  }

  /** The handle of the entry at the cursor (not at the end). */
  here(): number {
    return this.#dirChunk[this.#k] * BLOCK + this.#i * STRIDE;
  }

  /** The handle of the entry before the cursor (the last one at the end), or -1 if there is none. */
  before(): number {
    const k = this.#k, i = this.#i;
    if (i > 0) return this.#dirChunk[k] * BLOCK + (i - 1) * STRIDE;
    if (k === 0) return -1;
    const c = this.#dirChunk[k - 1];
    return c * BLOCK + (this.#count[c] - 1) * STRIDE;
  }

  /** The handle of the entry after the cursor's (not at the end), or -1 if it is the last. */
  after(): number {
    const c = this.#dirChunk[this.#k];
    if (this.#i + 1 < this.#count[c]) return c * BLOCK + (this.#i + 1) * STRIDE;
    return this.#k + 1 < this.#chunks ? this.#dirChunk[this.#k + 1] * BLOCK : -1;
  }

  /** Moves the cursor to the next entry (or the end). */
  advance(): void {
    if (++this.#i === this.#count[this.#dirChunk[this.#k]]) {
      this.#k++;
      this.#i = 0;
    }
  }

  /** Moves the cursor to the entry before it; false (cursor unchanged) if there is none. */
  retreat(): boolean {
    if (this.#i > 0) {
      this.#i--;
      return true;
    }
    if (this.#k === 0) return false;
    this.#k--;
    this.#i = this.#count[this.#dirChunk[this.#k]] - 1;
    return true;
  }

  /** Cursor to the first entry (the end in an empty table). */
  seekFirst(): void {
    this.#k = 0;
    this.#i = 0;
  }

  /** Global rank of the entry at the cursor. */
  rank(): number {
    let r = this.#i;
    for (let k = 0; k < this.#k; k++) r += this.#count[this.#dirChunk[k]];
    return r;
  }

  /** Cursor to the entry with global rank `rank` (0-based, below `size`). */
  seekRank(rank: number): void {
    let k = 0;
    while (rank >= this.#count[this.#dirChunk[k]]) rank -= this.#count[this.#dirChunk[k++]];
    this.#k = k;
    this.#i = rank;
  }

  // ---- searches ----

  /**
   * The entry with the greatest start at or below `x`, a number below 2^53, with the cursor on it;
   * -1 if every entry starts above `x` (the cursor then on the first entry, or the end). Exact with
   * rounded starts alone: a start at or above 2^53 rounds to at least 2^53 > x. (For a rounded
   * value above 2^53 it finds the last entry of that rounded start or below; {@link locate}
   * settles the ties.)
   *
   * Built for cache misses, as lookups at scattered addresses and inserts make them: after the
   * directory, it compares every 4th start of the chunk at once (one per 64 bytes), then the 3
   * starts after the last one at or below x, counting instead of branching: the loads are
   * independent, so their misses overlap, and nothing mispredicts, where a bisection waits for
   * each miss in turn and mispredicts about every other step.
   */
  floor(x: number): number {
    const dirFirst = this.#dirFirst;
    if (this.#chunks === 0 || dirFirst[0] > x) {
      this.#k = 0;
      this.#i = 0;
      return -1;
    }
    // The chunk of the last search first: a run of lookups in one region skips the directory.
    let k = this.#hint;
    if (!(k < this.#chunks && dirFirst[k] <= x && (k + 1 === this.#chunks || dirFirst[k + 1] > x))) {
      k = floorIndex(dirFirst, 0, this.#chunks, x);
      this.#hint = k;
    }
    const pool = this.#pool;
    const c = this.#dirChunk[k];
    const first = c * BLOCK;
    // Unused slots start at +Infinity (see #vacate), so the probes need no count: 16 loads and
    // compares in a row (CHUNK / 4, every 4 · STRIDE doubles), no loop. The one branch skips them
    // when x lies in the first four entries, as in a table of a few entries (predicted otherwise,
    // it lets the loads start together all the same).
    const p = first + 3 * STRIDE;
    const passed = pool[p] > x
      ? 0
      : +(pool[p] <= x) + +(pool[p + 8] <= x) + +(pool[p + 16] <= x) + +(pool[p + 24] <= x) +
        +(pool[p + 32] <= x) + +(pool[p + 40] <= x) + +(pool[p + 48] <= x) + +(pool[p + 56] <= x) +
        +(pool[p + 64] <= x) + +(pool[p + 72] <= x) + +(pool[p + 80] <= x) + +(pool[p + 88] <= x) +
        +(pool[p + 96] <= x) + +(pool[p + 104] <= x) + +(pool[p + 112] <= x) + +(pool[p + 120] <= x);
    // Entry 4·passed − 1 starts at or below x and entry 4·passed + 3 (if any) above it.
    const g = first + 8 * passed;
    const below = passed === 16 ? 0 : +(pool[g] <= x) + +(pool[g + 2] <= x) + +(pool[g + 4] <= x);
    const i = 4 * passed + below - 1;
    this.#k = k;
    this.#i = i;
    return first + i * STRIDE;
  }

  /** Cursor to the first entry whose end lies above `x`: the entry containing x, or the next one. */
  locate(x: U64Pair): void {
    const xF = x.rounded;
    if (xF < EXACT_LIMIT) {
      const h = this.floor(xF);
      if (h >= 0 && !(this.#pool[h + END] > xF)) this.advance();
      return;
    }
    // At or above 2^53 rounded values may tie: search on the rounded value, then step back over
    // entries sharing x's rounded start that lie above x, and on past one that ends at or below x.
    if (this.floor(xF) < 0) return;
    const pool = this.#pool, res = this.#res;
    let h = this.here();
    while (pool[h] === xF && res[h] > x.residual) {
      if (!this.retreat()) return; // x precedes every entry: the cursor is on the first
      h = this.here();
    }
    if (!this.endsAbove(h, x)) this.advance();
  }

  /**
   * Cursor to an entry with the smallest stamp (the first such in IOVA order), in a stamped table.
   * The per-chunk lower bounds pick a chunk; its true minimum is scanned, and if hits raised it the
   * bound is tightened and the choice made again.
   */
  seekOldest(): void {
    const stamps = this.#stamps, dirChunk = this.#dirChunk, minStamp = this.#minStamp;
    for (;;) {
      let best = 0, bound = Infinity;
      for (let k = 0; k < this.#chunks; k++) {
        const v = minStamp[dirChunk[k]];
        if (v < bound) {
          bound = v;
          best = k;
        }
      }
      const c = dirChunk[best];
      const base = c * STAMPS;
      const cnt = this.#count[c];
      let at = 0, low = Infinity;
      for (let j = 0; j < cnt; j++) {
        const s = stamps[base + j];
        if (s < low) {
          low = s;
          at = j;
        }
      }
      if (low === bound || !this.#stamped) {
        this.#k = best;
        this.#i = at;
        return;
      }
      minStamp[c] = low;
    }
  }

  // ---- accessors by handle ----

  /** The rounded start of entry h (its start, below 2^53). */
  start(h: number): number {
    return this.#pool[h];
  }

  /** The rounded end of entry h (its end, below 2^53). */
  end(h: number): number {
    return this.#pool[h + END];
  }

  /** The rounded diff of entry h (its diff, below 2^53 in size). */
  diff(h: number): number {
    return this.#pool[h + DIFF];
  }

  /** Whether entry h's diff is exact as {@link diff} returns it (no residual). */
  diffIsExact(h: number): boolean {
    return Math.abs(this.#pool[h + DIFF]) < EXACT_LIMIT || this.#res[h + DIFF] === 0;
  }

  /** Whether entry h's start is exact as {@link start} returns it (no residual). */
  startIsExact(h: number): boolean {
    return this.#pool[h] < EXACT_LIMIT || this.#res[h] === 0;
  }

  /** Entry h's permission bits. */
  perm(h: number): number {
    return this.#pool[h + PERM];
  }

  /** Entry h's eviction stamp (0 in a table without stamps). */
  stamp(h: number): number {
    return this.#stamped ? this.#stamps[h / STRIDE] : 0;
  }

  /** Sets entry h's stamp to a value at least its current one (a use, for lru). */
  setStamp(h: number, stamp: number): void {
    if (this.#stamped) this.#stamps[h / STRIDE] = stamp;
  }

  /** Entry h's exact start, into `out`. */
  readStart(h: number, out: U64Pair): U64Pair {
    return out.set(this.#pool[h], this.#residual(h));
  }

  /** Entry h's exact end, into `out`. */
  readEnd(h: number, out: U64Pair): U64Pair {
    return out.set(this.#pool[h + END], this.#residual(h + END));
  }

  /** Entry h's exact diff, into `out`. */
  readDiff(h: number, out: U64Pair): U64Pair {
    return out.set(this.#pool[h + DIFF], this.#residual(h + DIFF));
  }

  /** Every field of entry h, into `out`. */
  read(h: number, out: RangeEntry): RangeEntry {
    this.readStart(h, out.start);
    this.readEnd(h, out.end);
    this.readDiff(h, out.diff);
    out.perm = this.#pool[h + PERM];
    out.stamp = this.stamp(h);
    return out;
  }

  /** Whether entry h starts below y. */
  startsBelow(h: number, y: U64Pair): boolean {
    const f = this.#pool[h];
    return f < y.rounded || (f === y.rounded && f >= EXACT_LIMIT && this.#res[h] < y.residual);
  }

  /** Whether entry h starts exactly at y. */
  startsAt(h: number, y: U64Pair): boolean {
    return this.#pool[h] === y.rounded && (y.rounded < EXACT_LIMIT || this.#res[h] === y.residual);
  }

  /** Whether entry h ends above y. */
  endsAbove(h: number, y: U64Pair): boolean {
    const f = this.#pool[h + END];
    return f > y.rounded || (f === y.rounded && f >= EXACT_LIMIT && this.#res[h + END] > y.residual);
  }

  /** Whether entry h ends exactly at y. */
  endsAt(h: number, y: U64Pair): boolean {
    return this.#pool[h + END] === y.rounded && (y.rounded < EXACT_LIMIT || this.#res[h + END] === y.residual);
  }

  /** Whether entry h translates by `diff` with `perm`. */
  translatesAs(h: number, diff: U64Pair, perm: number): boolean {
    const f = this.#pool[h + DIFF];
    return f === diff.rounded && this.#pool[h + PERM] === perm &&
      (Math.abs(f) < EXACT_LIMIT ? 0 : this.#res[h + DIFF]) === diff.residual;
  }

  /** The residual at pool index j, read only when its rounded value is 2^53 or more in size. */
  #residual(j: number): number {
    return Math.abs(this.#pool[j]) < EXACT_LIMIT ? 0 : this.#res[j];
  }

  // ---- edits ----

  /** Sets entry h's end. */
  setEnd(h: number, end: U64Pair): void {
    this.#setValue(h + END, end);
  }

  /**
   * Sets the start of the entry at the cursor (keeping the directory's first start current); it
   * must stay above the previous entry's end.
   */
  setStartHere(start: U64Pair): void {
    this.#setValue(this.here(), start);
    if (this.#i === 0) this.#dirFirst[this.#k] = start.rounded;
  }

  /**
   * Gives entry h a new translation, permissions and stamp. Its old diff is read only when a
   * residual may have to be cleared: on a large table that read is a cache miss of its own.
   */
  setTranslation(h: number, diff: U64Pair, perm: number, stamp: number): void {
    const pool = this.#pool;
    if (diff.residual !== 0 || this.#resUsed[Math.floor(h / BLOCK)] !== 0) this.#setValue(h + DIFF, diff);
    else pool[h + DIFF] = diff.rounded;
    pool[h + PERM] = perm;
    if (this.#stamped) this.#renew(h, stamp);
  }

  /** Sets entry h's stamp to a newer one (a re-map or merge), for eviction by age. */
  renew(h: number, stamp: number): void {
    if (this.#stamped) this.#renew(h, stamp);
  }

  #renew(h: number, stamp: number): void {
    this.#stamps[h / STRIDE] = stamp;
  }

  /**
   * Stores a pair at pool index j, its residual first; the residual store is skipped when both the
   * new and the old one are zero, which keeps the residual array out of the cache below 2^53.
   */
  #setValue(j: number, v: U64Pair): void {
    const pool = this.#pool;
    if (Math.abs(v.rounded) >= EXACT_LIMIT) this.#holdResiduals();
    if (v.residual !== 0) {
      this.#resUsed[Math.floor(j / BLOCK)] = 1;
      this.#res[j] = v.residual;
    } else if (Math.abs(pool[j]) >= EXACT_LIMIT) {
      this.#res[j] = 0;
    }
    pool[j] = v.rounded;
  }

  /**
   * Inserts `entry` before the cursor (at the end when the cursor is there) and leaves the cursor
   * on it. The caller guarantees order and no overlap.
   */
  insert(entry: RangeEntry): void {
    let k = this.#k, i = this.#i;
    if (this.#chunks === 0) {
      this.#dirInsert(0, this.#newChunk());
      k = 0;
      i = 0;
    } else if (k === this.#chunks) {
      k--;
      i = this.#count[this.#dirChunk[k]];
    } else if (i === 0 && k > 0 && this.#count[this.#dirChunk[k - 1]] < CHUNK) {
      // Filling the previous chunk's tail moves nothing; shifting this chunk would move it all.
      k--;
      i = this.#count[this.#dirChunk[k]];
    }
    let c = this.#dirChunk[k];
    let n = this.#count[c];
    if (n === CHUNK) {
      const d = this.#newChunk();
      this.#dirInsert(k + 1, d);
      if (i === CHUNK) {
        // Appending past a full chunk (ascending fills): start a new chunk and leave this one full.
        k++;
        c = d;
        i = 0;
      } else {
        const half = CHUNK >> 1;
        this.#move(c * BLOCK + half * STRIDE, d * BLOCK, CHUNK - half, this.#resUsed[c]);
        this.#resUsed[d] = this.#resUsed[c];
        this.#count[d] = CHUNK - half;
        this.#count[c] = half;
        this.#vacate(c, half, CHUNK);
        this.#minStamp[d] = this.#minStamp[c];
        this.#dirFirst[k + 1] = this.#pool[d * BLOCK];
        if (i > half) {
          k++;
          c = d;
          i -= half;
        }
      }
      n = this.#count[c];
    }
    const h = c * BLOCK + i * STRIDE;
    if (i < n) this.#move(h, h + STRIDE, n - i, this.#resUsed[c]);
    const pool = this.#pool;
    const start = entry.start, end = entry.end, diff = entry.diff;
    if (end.rounded >= EXACT_LIMIT || Math.abs(diff.rounded) >= EXACT_LIMIT) this.#holdResiduals();
    pool[h] = start.rounded;
    pool[h + END] = end.rounded;
    pool[h + DIFF] = diff.rounded;
    pool[h + PERM] = entry.perm;
    if (start.residual !== 0 || end.residual !== 0 || diff.residual !== 0) this.#resUsed[c] = 1;
    if (this.#resUsed[c] !== 0) {
      const res = this.#res;
      res[h] = start.residual;
      res[h + END] = end.residual;
      res[h + DIFF] = diff.residual;
    }
    if (this.#stamped) {
      this.#stamps[h / STRIDE] = entry.stamp;
      if (entry.stamp < this.#minStamp[c]) this.#minStamp[c] = entry.stamp;
    }
    this.#count[c] = n + 1;
    if (i === 0) this.#dirFirst[k] = start.rounded;
    this.#size++;
    this.#k = k;
    this.#i = i;
  }

  /** Removes `n` entries from the cursor on and leaves the cursor on the entry after them (or the end). */
  remove(n: number): void {
    let k = this.#k, i = this.#i;
    this.#size -= n;
    const first = this.#dirChunk[k];
    const firstCount = this.#count[first];
    if (i > 0 || n < firstCount) {
      const take = Math.min(n, firstCount - i);
      this.#cut(first, i, take);
      if (i === 0) this.#dirFirst[k] = this.#pool[first * BLOCK];
      n -= take;
      if (i < this.#count[first]) {
        this.#settle(k, i);
        return;
      }
      k++;
      i = 0;
    }
    let whole = k;
    while (n > 0 && n >= this.#count[this.#dirChunk[whole]]) {
      n -= this.#count[this.#dirChunk[whole]];
      this.#free.push(this.#dirChunk[whole]);
      whole++;
    }
    if (whole > k) this.#dirRemove(k, whole - k);
    if (n > 0) {
      const c = this.#dirChunk[k];
      this.#cut(c, 0, n);
      this.#dirFirst[k] = this.#pool[c * BLOCK];
    }
    const before = k - 1;
    this.#settle(k, 0);
    // The chunk before the removal point may have shrunk too.
    if (before >= 0 && before < this.#chunks) this.#joinSmall(before);
  }

  /**
   * Removes the entries from the cursor on that end at or below `end`, leaving the cursor on the
   * entry after them (or the end).
   */
  removeThrough(end: U64Pair): void {
    const k0 = this.#k, i0 = this.#i;
    this.locate(end);
    let n: number;
    if (k0 === this.#k) {
      n = this.#i - i0;
    } else {
      n = this.#count[this.#dirChunk[k0]] - i0;
      for (let k = k0 + 1; k < this.#k; k++) n += this.#count[this.#dirChunk[k]];
      n += this.#i;
    }
    this.#k = k0;
    this.#i = i0;
    if (n > 0) this.remove(n);
  }

  /** Removes `n` entries from index `i` of chunk `c`, closing the gap. */
  #cut(c: number, i: number, n: number): void {
    const cnt = this.#count[c];
    const h = c * BLOCK + i * STRIDE;
    this.#move(h + n * STRIDE, h, cnt - i - n, this.#resUsed[c]);
    this.#count[c] = cnt - n;
    this.#vacate(c, cnt - n, cnt);
  }

  /** Marks slots [from, to) of chunk c unused: a start of +Infinity, which no search passes. */
  #vacate(c: number, from: number, to: number): void {
    this.#pool.fill(Infinity, c * BLOCK + from * STRIDE, c * BLOCK + to * STRIDE);
  }

  /**
   * Copies `n` entries from handle `from` to handle `to` (the ranges may overlap), their stamps
   * only in a stamped table and their residuals only if `withRes` (otherwise both places hold
   * zeros).
   */
  #move(from: number, to: number, n: number, withRes: number): void {
    if (n <= 0) return;
    const pool = this.#pool;
    copy(pool, to, from, n * STRIDE);
    copy(pool, to + DIFF, from + DIFF, n * STRIDE);
    if (this.#stamped) copy(this.#stamps, to / STRIDE, from / STRIDE, n);
    if (withRes !== 0) {
      copy(this.#res, to, from, n * STRIDE);
      copy(this.#res, to + DIFF, from + DIFF, n * STRIDE);
    }
  }

  /** Sets the cursor to (k, i) after joining the chunk at k if it became small. */
  #settle(k: number, i: number): void {
    this.#k = k;
    this.#i = i;
    if (k < this.#chunks) this.#joinSmall(k);
  }

  /**
   * Joins the chunk at directory position k with a neighbour when it is small and the two fit,
   * keeping the cursor on the same entry.
   */
  #joinSmall(k: number): void {
    const n = this.#count[this.#dirChunk[k]];
    if (n >= SMALL) return;
    if (k + 1 < this.#chunks && n + this.#count[this.#dirChunk[k + 1]] <= JOINED_MAX) this.#join(k);
    else if (k > 0 && n + this.#count[this.#dirChunk[k - 1]] <= JOINED_MAX) this.#join(k - 1);
  }

  /** Appends the chunk at k + 1 to the chunk at k and drops it from the directory. */
  #join(k: number): void {
    const left = this.#dirChunk[k], right = this.#dirChunk[k + 1];
    const ln = this.#count[left], rn = this.#count[right];
    const withRes = this.#resUsed[left] | this.#resUsed[right];
    this.#move(right * BLOCK, left * BLOCK + ln * STRIDE, rn, withRes);
    this.#resUsed[left] = withRes;
    this.#count[left] = ln + rn;
    if (this.#minStamp[right] < this.#minStamp[left]) this.#minStamp[left] = this.#minStamp[right];
    this.#free.push(right);
    this.#dirRemove(k + 1, 1);
    if (this.#k === k + 1) {
      this.#k = k;
      this.#i += ln;
    } else if (this.#k > k + 1) {
      this.#k--;
    }
  }

  /** Allocates the residuals, before a value at or above 2^53 is stored (see #res). */
  #holdResiduals(): void {
    if (this.#res.length === 0) this.#res = new Float64Array(this.#pool.length);
  }

  #newChunk(): number {
    const reused = this.#free.pop();
    const c = reused ?? this.#pooled++;
    if (c >= this.#count.length) {
      const cap = this.#count.length * 2;
      const pool = new Float64Array(cap * BLOCK);
      pool.set(this.#pool);
      this.#pool = pool;
      if (this.#res.length !== 0) {
        const res = new Float64Array(cap * BLOCK);
        // Below 2^53 every residual is zero, and so is the new array: copying megabytes of zeros
        // would only fault its pages in.
        if (this.#resUsed.includes(1)) res.set(this.#res);
        this.#res = res;
      }
      if (this.#stamped) {
        const stamps = new Float64Array(cap * STAMPS);
        stamps.set(this.#stamps);
        this.#stamps = stamps;
      }
      const resUsed = new Uint8Array(cap);
      resUsed.set(this.#resUsed);
      this.#resUsed = resUsed;
      const count = new Int32Array(cap);
      count.set(this.#count);
      this.#count = count;
      const minStamp = new Float64Array(cap);
      minStamp.set(this.#minStamp);
      this.#minStamp = minStamp;
    }
    if (this.#resUsed[c] !== 0) {
      this.#res.fill(0, c * BLOCK, (c + 1) * BLOCK);
      this.#resUsed[c] = 0;
    }
    this.#count[c] = 0;
    this.#vacate(c, 0, CHUNK);
    this.#minStamp[c] = Infinity;
    return c;
  }

  #dirInsert(k: number, c: number): void {
    if (this.#chunks === this.#dirChunk.length) {
      const dirChunk = new Int32Array(this.#chunks * 2);
      dirChunk.set(this.#dirChunk);
      this.#dirChunk = dirChunk;
      const dirFirst = new Float64Array(this.#chunks * 2);
      dirFirst.set(this.#dirFirst);
      this.#dirFirst = dirFirst;
    }
    this.#dirChunk.copyWithin(k + 1, k, this.#chunks);
    this.#dirFirst.copyWithin(k + 1, k, this.#chunks);
    this.#dirChunk[k] = c;
    this.#chunks++;
  }

  #dirRemove(k: number, n: number): void {
    this.#dirChunk.copyWithin(k, k + n, this.#chunks);
    this.#dirFirst.copyWithin(k, k + n, this.#chunks);
    this.#chunks -= n;
  }
}

/** `a.copyWithin(to, from, from + n)`, by a loop when that is short. */
function copy(a: Float64Array, to: number, from: number, n: number): void {
  if (n > COPY_LOOP_MAX) {
    a.copyWithin(to, from, from + n);
  } else if (to > from) {
    for (let j = n - 1; j >= 0; j--) a[to + j] = a[from + j];
  } else {
    for (let j = 0; j < n; j++) a[to + j] = a[from + j];
  }
}

/**
 * The greatest index j in [0, n) with `a[from + j] <= x`, given `a[from] <= x` and `a` ascending
 * there: a bisection without branches. The directory it searches (8 bytes per chunk, 16 KiB at
 * 131072 entries) stays in the cache, so its loads hit and the only cost is their latency; probing
 * eight at a time, as {@link RangeTable.floor} does in a chunk, measured about twice as slow here.
 */
function floorIndex(a: Float64Array, from: number, n: number, x: number): number {
  let lo = from, len = n;
  while (len > 1) {
    const half = len >> 1;
    // `half & -1` keeps half, `half & -0` drops it: the step is taken without a branch to mispredict.
    lo += half & -(+(a[lo + half] <= x));
    len -= half;
  }
  return lo - from;
}
