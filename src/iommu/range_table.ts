/**
 * The IOTLB's storage: sorted, non-overlapping byte ranges of the u64 IOVA space, each with a
 * translation and permissions, coalesced like vm-memory's range map (neighbours merge only when
 * contiguous in both spaces with equal permissions).
 *
 * Layout, chosen for a 100k+ entry table: entries live in chunks of {@link CHUNK} inside pooled
 * typed arrays, and a directory lists the chunks in IOVA order with each chunk's first start. An
 * insert moves at most one chunk instead of the whole table. Entry `e` (= chunk id × CHUNK + index)
 * keeps its fields in three arrays, split by how often a translation reads them, because on a large
 * table every array a lookup touches costs a cache miss:
 * - `keys[e]`: the rounded start, so a search reads 512 contiguous bytes per chunk;
 * - `rec[e * STRIDE + …]`: rounded end, rounded diff, permissions, stamp (32 bytes);
 * - `ends[e]`: the rounded end again, for the editing paths: an insert or re-map searches a chunk's
 *   starts and ends together, so the end it checks next is already in the cache (a read of `rec`
 *   there measured about as long as the whole search); lookups read the end from `rec`, beside
 *   the diff and permissions they need anyway;
 * - `res[e * STRIDE + …]`: the residuals, all zero below 2^53, read only for values above it;
 *   a chunk whose residuals are all zero (`resUsed` 0) does not even move them on an insert.
 * Values are exact u64 pairs (see u64_key.ts): `*_F` the rounded double, `*_R` the residual.
 * @module
 */

import { EXACT_LIMIT } from "./u64_key.ts";

/** Doubles per entry in `rec` and in `res`. */
export const STRIDE = 4;
/** `rec` field: rounded end (exclusive; may be 2^64). */
export const END_F = 0;
/** `rec` field: rounded diff `target − start` (a signed integer, never reduced mod 2^64). */
export const DIFF_F = 1;
/** `rec` field: permission bits 0–3. */
export const PERM = 2;
/** `rec` field: eviction stamp, the insertion sequence (fifo) or the last use (lru). */
export const STAMP = 3;
/** `res` field: residual of the start (the rounded start is in `keys`). */
export const START_R = 0;
/** `res` field: residual of the end. */
export const END_R = 1;
/** `res` field: residual of the diff. */
export const DIFF_R = 2;

/** Entries per chunk: 64 measured better than 32 (inserts) and 128 (lookups, re-mapping). */
export const CHUNK = 64;
const CHUNK_DOUBLES = CHUNK * STRIDE;
// A chunk that shrinks below a quarter joins a neighbour if the two fit in three quarters, so a
// table that shrank does not keep one mostly empty 4 KiB chunk per entry.
const SMALL = CHUNK >> 2;
const JOINED_MAX = (CHUNK * 3) >> 2;

/**
 * Sorted range storage with a cursor: searches leave their answer in `k` (directory position) and
 * `i` (index in that chunk); `k === chunks` is the end. Positions are normalized: `i` is always
 * below the chunk's count, and every chunk in the directory holds at least one entry.
 *
 * @example
 * ```ts
 * import { RangeTable } from "./range_table.ts";
 * const t = new RangeTable();
 * t.insert(0, 0, 0x1000, 0, 0x2000, 0, 0x4000, 0, 3, 1); // [0x1000, 0x2000) → 0x5000, ReadWrite
 * console.log(t.floor(0x1800) === t.entry(0, 0)); // true
 * ```
 */
export class RangeTable {
  /** Rounded starts by entry. */
  keys: Float64Array = new Float64Array(CHUNK * 2);
  /** Rounded ends by entry, a copy of `rec`'s END_F (see the module doc). */
  ends: Float64Array = new Float64Array(CHUNK * 2);
  /** End, diff, permissions and stamp, {@link STRIDE} doubles per entry. */
  rec: Float64Array = new Float64Array(CHUNK_DOUBLES * 2);
  /** The residuals of start, end and diff, {@link STRIDE} doubles per entry. */
  res: Float64Array = new Float64Array(CHUNK_DOUBLES * 2);
  /** By chunk id: 1 if the chunk's `res` may hold a nonzero value, 0 if all of it is zero. */
  resUsed: Uint8Array = new Uint8Array(2);
  /** Entries in each chunk, by chunk id. */
  count: Int32Array = new Int32Array(2);
  /** A lower bound of each chunk's smallest stamp, by chunk id (stamps only ever rise in place). */
  minStamp: Float64Array = new Float64Array(2);
  /** Chunk ids in IOVA order. */
  dirChunk: Int32Array = new Int32Array(2);
  /** Rounded start of each directory chunk's first entry. */
  dirFirst: Float64Array = new Float64Array(2);
  /** Chunks in the directory. */
  chunks = 0;
  /** Entries in the table. */
  size = 0;
  /** Cursor: directory position. */
  k = 0;
  /** Cursor: index inside the chunk. */
  i = 0;
  #pooled = 0;
  #free: number[] = [];

  /** Drops every entry and shrinks the pool back. */
  clear(): void {
    this.keys = new Float64Array(CHUNK * 2);
    this.ends = new Float64Array(CHUNK * 2);
    this.rec = new Float64Array(CHUNK_DOUBLES * 2);
    this.res = new Float64Array(CHUNK_DOUBLES * 2);
    this.resUsed = new Uint8Array(2);
    this.count = new Int32Array(2);
    this.minStamp = new Float64Array(2);
    this.dirChunk = new Int32Array(2);
    this.dirFirst = new Float64Array(2);
    this.chunks = 0;
    this.size = 0;
    this.k = 0;
    this.i = 0;
    this.#pooled = 0;
    this.#free = [];
  }

  /** The entry number of directory position `k`, index `i` (its key index; × STRIDE for `rec`, `res`). */
  entry(k: number, i: number): number {
    return this.dirChunk[k] * CHUNK + i;
  }

  /** Entries in the chunk at directory position `k`. */
  countAt(k: number): number {
    return this.count[this.dirChunk[k]];
  }

  /** Whether the cursor is past the last entry. */
  atEnd(): boolean {
    return this.k >= this.chunks;
  }

  /** Rewrites the start of the entry at `(k, i)`, keeping the directory's first key current. */
  setStart(k: number, i: number, sF: number, sR: number): void {
    const e = this.entry(k, i);
    this.setResidual(e, START_R, sR, this.keys[e]);
    this.keys[e] = sF;
    if (i === 0) this.dirFirst[k] = sF;
  }

  /**
   * The residual of entry e's `field` (START_R, END_R or DIFF_R) whose rounded value is `rounded`.
   * Residuals are zero unless the rounded value is 2^53 or more in size, and only then is `res`
   * (a cache miss on a large table) read.
   */
  residualOf(e: number, field: number, rounded: number): number {
    return Math.abs(rounded) < EXACT_LIMIT ? 0 : this.res[e * STRIDE + field];
  }

  /**
   * Stores a residual, before the rounded value it belongs to changes from `oldRounded`. The store
   * is skipped when both are zero, which keeps `res` out of the cache below 2^53.
   */
  setResidual(e: number, field: number, value: number, oldRounded: number): void {
    if (value !== 0) {
      this.resUsed[Math.floor(e / CHUNK)] = 1;
      this.res[e * STRIDE + field] = value;
    } else if (Math.abs(oldRounded) >= EXACT_LIMIT) {
      this.res[e * STRIDE + field] = 0;
    }
  }

  /** The entry before position `(k, i)`, or -1 if it is the first. */
  before(k: number, i: number): number {
    if (i > 0) return this.dirChunk[k] * CHUNK + i - 1;
    if (k === 0) return -1;
    const c = this.dirChunk[k - 1];
    return c * CHUNK + this.count[c] - 1;
  }

  /** The entry after the normalized position `(k, i)`, or -1 if it is the last. */
  after(k: number, i: number): number {
    const c = this.dirChunk[k];
    if (i + 1 < this.count[c]) return c * CHUNK + i + 1;
    return k + 1 < this.chunks ? this.dirChunk[k + 1] * CHUNK : -1;
  }

  /** Sets entry e's end (in `rec` and `ends`). */
  setEnd(e: number, eF: number, eR: number): void {
    const p = e * STRIDE;
    this.setResidual(e, END_R, eR, this.rec[p + END_F]);
    this.rec[p + END_F] = eF;
    this.ends[e] = eF;
  }

  /**
   * Sets entry e's diff. Its old value is read only when a residual may have to be cleared: on a
   * large table that read would be a cache miss of its own.
   */
  setDiff(e: number, dF: number, dR: number): void {
    const p = e * STRIDE;
    if (dR !== 0 || this.resUsed[Math.floor(e / CHUNK)] !== 0) this.setResidual(e, DIFF_R, dR, this.rec[p + DIFF_F]);
    this.rec[p + DIFF_F] = dF;
  }

  /** Moves the cursor to the next entry (or the end). */
  advance(): void {
    if (++this.i === this.countAt(this.k)) {
      this.k++;
      this.i = 0;
    }
  }

  /** Moves the cursor to the entry before it; false (cursor unchanged) if there is none. */
  retreat(): boolean {
    if (this.i > 0) {
      this.i--;
      return true;
    }
    if (this.k === 0) return false;
    this.k--;
    this.i = this.countAt(this.k) - 1;
    return true;
  }

  /**
   * The entry with the greatest start at or below `x`, a number below 2^53, or -1 if every entry
   * starts above it. Exact with rounded starts alone: a start at or above 2^53 rounds to at least
   * 2^53 > x. Both searches branch: a branch-free chunk search (tried) was no faster on scattered
   * lookups, where predicted branches let the next loads start early, and slower for inserts; hot
   * lookups are answered before this by the IOTLB's answer cache.
   */
  floor(x: number): number {
    if (this.chunks === 0 || this.dirFirst[0] > x) return -1;
    return this.#floorFrom(x);
  }

  /**
   * The search of {@link floor} and {@link locate}, for an `x` at or above the first start: the
   * entry with the greatest start at or below `x`, with the cursor left on it.
   */
  #floorFrom(x: number): number {
    const dirFirst = this.dirFirst;
    let lo = 0, hi = this.chunks - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (dirFirst[mid] <= x) lo = mid;
      else hi = mid - 1;
    }
    const keys = this.keys;
    const first = this.dirChunk[lo] * CHUNK;
    let a = 0, b = this.count[this.dirChunk[lo]] - 1;
    while (a < b) {
      const m = (a + b + 1) >> 1;
      if (keys[first + m] <= x) a = m;
      else b = m - 1;
    }
    this.k = lo;
    this.i = a;
    return first + a;
  }

  /**
   * {@link floor} for the editing paths, leaving the cursor on the entry found (or on the first
   * entry, at `(0, 0)`, when it returns -1). An insert or re-map lands on a random chunk, so this
   * search is built for cache misses rather than for hits: it probes every 8th entry at once (the
   * loads are independent, so their misses overlap) and only then bisects, branch-free (a
   * branching search mispredicts about every other step). In the chunk it probes the ends as
   * well, which bounds the answer too and brings in the ends the caller checks next. Measured on a
   * 131072-entry table: the search and an end check about half the time of {@link locate} and a
   * read of `rec`.
   */
  seekFloor(x: number): number {
    const dirFirst = this.dirFirst;
    if (this.chunks === 0 || dirFirst[0] > x) {
      this.k = 0;
      this.i = 0;
      return -1;
    }
    const k = floorIndex(dirFirst, 0, this.chunks, x);
    const keys = this.keys, ends = this.ends;
    const c = this.dirChunk[k];
    const first = c * CHUNK;
    const n = this.count[c];
    let lo = 0, len = n;
    if (n > 8) {
      // The probed entry 8m + 7 starting at or below x puts the answer at or after it; ending at or
      // below x, after it; starting above x (so also ending above), before it.
      let starts = 0, ended = 0;
      for (let j = first + 7; j < first + n; j += 8) {
        starts += +(keys[j] <= x);
        ended += +(ends[j] <= x);
      }
      lo = Math.max(8 * starts - 1, 8 * ended - 1, 0);
      len = Math.min(8 * starts + 6, 8 * ended + 7, n - 1) - lo + 1;
    }
    const i = lo + floorIndex(keys, first + lo, len, x);
    this.k = k;
    this.i = i;
    return first + i;
  }

  /** Cursor to the first entry whose end lies above `x`: the entry containing x, or the next one. */
  locate(xF: number, xR: number): void {
    if (this.chunks === 0 || this.dirFirst[0] > xF) {
      this.k = 0;
      this.i = 0;
      return;
    }
    let e = this.#floorFrom(xF);
    const keys = this.keys;
    // The search compared rounded starts only; entries that share x's rounded start (possible at or
    // above 2^53) order by residual, so step back over those above x.
    if (xF >= EXACT_LIMIT) {
      while (keys[e] === xF && this.res[e * STRIDE + START_R] > xR) {
        if (!this.retreat()) return; // x precedes every entry: the cursor is on the first
        e = this.entry(this.k, this.i);
      }
    }
    const endF = this.rec[e * STRIDE + END_F];
    if (!(xF < endF || (xF === endF && xF >= EXACT_LIMIT && xR < this.res[e * STRIDE + END_R]))) this.advance();
  }

  /** Cursor to the entry with global rank `rank` (0-based, below `size`). */
  seek(rank: number): void {
    let k = 0;
    while (rank >= this.countAt(k)) rank -= this.countAt(k++);
    this.k = k;
    this.i = rank;
  }

  /** Global rank of the entry at the cursor. */
  rank(): number {
    let r = this.i;
    for (let k = 0; k < this.k; k++) r += this.countAt(k);
    return r;
  }

  /**
   * Cursor to an entry with the smallest stamp (the first such in IOVA order). The per-chunk lower
   * bounds pick a chunk; its true minimum is scanned, and if hits raised it the bound is tightened
   * and the choice made again.
   */
  oldest(): void {
    const rec = this.rec, dirChunk = this.dirChunk, minStamp = this.minStamp;
    for (;;) {
      let best = 0, bound = Infinity;
      for (let k = 0; k < this.chunks; k++) {
        const v = minStamp[dirChunk[k]];
        if (v < bound) {
          bound = v;
          best = k;
        }
      }
      const c = dirChunk[best];
      const base = c * CHUNK_DOUBLES + STAMP;
      const cnt = this.count[c];
      let at = 0, low = Infinity;
      for (let j = 0; j < cnt; j++) {
        const s = rec[base + j * STRIDE];
        if (s < low) {
          low = s;
          at = j;
        }
      }
      if (low === bound) {
        this.k = best;
        this.i = at;
        return;
      }
      minStamp[c] = low;
    }
  }

  /**
   * Inserts an entry before the cursor position `(k, i)` (`k === chunks`: at the end) and leaves
   * the cursor on it. The caller guarantees order and no overlap.
   */
  insert(
    k: number,
    i: number,
    sF: number,
    sR: number,
    eF: number,
    eR: number,
    dF: number,
    dR: number,
    perm: number,
    stamp: number,
  ): void {
    if (this.chunks === 0) {
      this.#dirInsert(0, this.#newChunk());
      k = 0;
      i = 0;
    } else if (k === this.chunks) {
      k--;
      i = this.countAt(k);
    } else if (i === 0 && k > 0 && this.countAt(k - 1) < CHUNK) {
      // Filling the previous chunk's tail moves nothing; shifting this chunk would move it all.
      k--;
      i = this.countAt(k);
    }
    let c = this.dirChunk[k];
    let n = this.count[c];
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
        this.#move(c * CHUNK + half, d * CHUNK, CHUNK - half, this.resUsed[c]);
        this.resUsed[d] = this.resUsed[c];
        this.count[d] = CHUNK - half;
        this.count[c] = half;
        this.minStamp[d] = this.minStamp[c];
        this.dirFirst[k + 1] = this.keys[d * CHUNK];
        if (i > half) {
          k++;
          c = d;
          i -= half;
        }
      }
      n = this.count[c];
    }
    const e = c * CHUNK + i;
    if (i < n) this.#move(e, e + 1, n - i, this.resUsed[c]);
    this.keys[e] = sF;
    const rec = this.rec;
    const p = e * STRIDE;
    rec[p + END_F] = eF;
    this.ends[e] = eF;
    rec[p + DIFF_F] = dF;
    rec[p + PERM] = perm;
    rec[p + STAMP] = stamp;
    if (sR !== 0 || eR !== 0 || dR !== 0) this.resUsed[c] = 1;
    if (this.resUsed[c] !== 0) {
      const res = this.res;
      res[p + START_R] = sR;
      res[p + END_R] = eR;
      res[p + DIFF_R] = dR;
    }
    this.count[c] = n + 1;
    if (stamp < this.minStamp[c]) this.minStamp[c] = stamp;
    if (i === 0) this.dirFirst[k] = sF;
    this.size++;
    this.k = k;
    this.i = i;
  }

  /**
   * Removes `n` entries starting at the normalized position `(k, i)` and leaves the cursor on the
   * entry that followed them (or the end).
   */
  remove(k: number, i: number, n: number): void {
    this.size -= n;
    const first = this.dirChunk[k];
    const firstCount = this.count[first];
    if (i > 0 || n < firstCount) {
      const take = Math.min(n, firstCount - i);
      this.#cut(first, i, take);
      if (i === 0) this.dirFirst[k] = this.keys[first * CHUNK];
      n -= take;
      if (i < this.count[first]) {
        this.#settle(k, i);
        return;
      }
      k++;
      i = 0;
    }
    let whole = k;
    while (n > 0 && n >= this.countAt(whole)) {
      n -= this.countAt(whole);
      this.#free.push(this.dirChunk[whole]);
      whole++;
    }
    if (whole > k) this.#dirRemove(k, whole - k);
    if (n > 0) {
      const c = this.dirChunk[k];
      this.#cut(c, 0, n);
      this.dirFirst[k] = this.keys[c * CHUNK];
    }
    const before = k - 1;
    this.#settle(k, 0);
    // The chunk before the removal point may have shrunk too.
    if (before >= 0 && before < this.chunks) this.#joinSmall(before);
  }

  /** Removes `n` entries from index `i` of chunk `c`, closing the gap. */
  #cut(c: number, i: number, n: number): void {
    const cnt = this.count[c];
    const e = c * CHUNK + i;
    this.#move(e + n, e, cnt - i - n, this.resUsed[c]);
    this.count[c] = cnt - n;
  }

  /**
   * Copies `n` entries from entry `from` to entry `to` (the ranges may overlap), their residuals
   * only if `withRes` (otherwise both places hold zeros).
   */
  #move(from: number, to: number, n: number, withRes: number): void {
    if (n <= 0) return;
    copy(this.keys, to, from, n);
    copy(this.ends, to, from, n);
    copy(this.rec, to * STRIDE, from * STRIDE, n * STRIDE);
    if (withRes !== 0) copy(this.res, to * STRIDE, from * STRIDE, n * STRIDE);
  }

  /** Sets the cursor to (k, i) after joining the chunk at k if it became small. */
  #settle(k: number, i: number): void {
    this.k = k;
    this.i = i;
    if (k < this.chunks) this.#joinSmall(k);
  }

  /**
   * Joins the chunk at directory position k with a neighbour when it is small and the two fit,
   * keeping the cursor on the same entry.
   */
  #joinSmall(k: number): void {
    const n = this.countAt(k);
    if (n >= SMALL) return;
    if (k + 1 < this.chunks && n + this.countAt(k + 1) <= JOINED_MAX) this.#join(k);
    else if (k > 0 && n + this.countAt(k - 1) <= JOINED_MAX) this.#join(k - 1);
  }

  /** Appends the chunk at k + 1 to the chunk at k and drops it from the directory. */
  #join(k: number): void {
    const left = this.dirChunk[k], right = this.dirChunk[k + 1];
    const ln = this.count[left], rn = this.count[right];
    const withRes = this.resUsed[left] | this.resUsed[right];
    this.#move(right * CHUNK, left * CHUNK + ln, rn, withRes);
    this.resUsed[left] = withRes;
    this.count[left] = ln + rn;
    if (this.minStamp[right] < this.minStamp[left]) this.minStamp[left] = this.minStamp[right];
    this.#free.push(right);
    this.#dirRemove(k + 1, 1);
    if (this.k === k + 1) {
      this.k = k;
      this.i += ln;
    } else if (this.k > k + 1) {
      this.k--;
    }
  }

  #newChunk(): number {
    const reused = this.#free.pop();
    const c = reused ?? this.#pooled++;
    if (c >= this.count.length) {
      const cap = this.count.length * 2;
      const keys = new Float64Array(cap * CHUNK);
      keys.set(this.keys);
      this.keys = keys;
      const ends = new Float64Array(cap * CHUNK);
      ends.set(this.ends);
      this.ends = ends;
      const rec = new Float64Array(cap * CHUNK_DOUBLES);
      rec.set(this.rec);
      this.rec = rec;
      const res = new Float64Array(cap * CHUNK_DOUBLES);
      // Below 2^53 every residual is zero, and so is the new array: copying 4 MiB of zeros (at
      // 131072 entries) would only fault its pages in.
      if (this.resUsed.includes(1)) res.set(this.res);
      this.res = res;
      const resUsed = new Uint8Array(cap);
      resUsed.set(this.resUsed);
      this.resUsed = resUsed;
      const count = new Int32Array(cap);
      count.set(this.count);
      this.count = count;
      const minStamp = new Float64Array(cap);
      minStamp.set(this.minStamp);
      this.minStamp = minStamp;
    }
    if (this.resUsed[c] !== 0) {
      this.res.fill(0, c * CHUNK_DOUBLES, (c + 1) * CHUNK_DOUBLES);
      this.resUsed[c] = 0;
    }
    this.count[c] = 0;
    this.minStamp[c] = Infinity;
    return c;
  }

  #dirInsert(k: number, c: number): void {
    if (this.chunks === this.dirChunk.length) {
      const dirChunk = new Int32Array(this.chunks * 2);
      dirChunk.set(this.dirChunk);
      this.dirChunk = dirChunk;
      const dirFirst = new Float64Array(this.chunks * 2);
      dirFirst.set(this.dirFirst);
      this.dirFirst = dirFirst;
    }
    this.dirChunk.copyWithin(k + 1, k, this.chunks);
    this.dirFirst.copyWithin(k + 1, k, this.chunks);
    this.dirChunk[k] = c;
    this.chunks++;
  }

  #dirRemove(k: number, n: number): void {
    this.dirChunk.copyWithin(k, k + n, this.chunks);
    this.dirFirst.copyWithin(k, k + n, this.chunks);
    this.chunks -= n;
  }
}

// Up to this many doubles, a loop moves them faster than copyWithin, which costs about 35 ns a call
// (measured: 8 doubles 8.6 against 38 ns, 32 doubles 26 against 37 ns, 128 doubles 76 against 58 ns).
const COPY_LOOP_MAX = 64;

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
 * there. Probes every 8^m-th element at once, narrowing to 8^m elements per level, then bisects
 * without branches (see {@link RangeTable.seekFloor}).
 */
function floorIndex(a: Float64Array, from: number, n: number, x: number): number {
  let lo = 0, len = n;
  let stride = 8;
  while (stride * 8 < len) stride *= 8;
  for (; stride > 1 && len > stride; stride /= 8) {
    let below = 0;
    for (let j = from + lo + stride - 1; j < from + lo + len; j += stride) below += +(a[j] <= x);
    const hi = Math.min(lo + stride * below + stride - 2, lo + len - 1);
    if (below > 0) lo += stride * below - 1;
    len = hi - lo + 1;
  }
  while (len > 1) {
    const half = len >> 1;
    lo += half & -(+(a[from + lo + half] <= x));
    len -= half;
  }
  return lo;
}
