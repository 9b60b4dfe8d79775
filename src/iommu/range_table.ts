/**
 * The IOTLB's storage: sorted, non-overlapping byte ranges of the u64 IOVA space, each with a
 * translation and permissions, coalesced like vm-memory's range map (neighbours merge only when
 * contiguous in both spaces with equal permissions).
 *
 * Layout, chosen for a 100k+ entry table: entries live in chunks of {@link CHUNK} records inside
 * one pooled Float64Array (a record is {@link STRIDE} doubles, one cache line), and a directory
 * lists the chunks in IOVA order with each chunk's first start. A lookup is two binary searches
 * over typed arrays; an insert moves at most one chunk's records instead of the whole table.
 * Values are exact u64 pairs (see u64_key.ts): `*_F` the rounded double, `*_R` the residual.
 * @module
 */

import { keyLess } from "./u64_key.ts";

/** Doubles per record. */
export const STRIDE = 8;
/** Record fields: start, end (exclusive), diff = target − start (signed, exact), perm, stamp. */
export const START_F = 0;
/** Residual of the start. */
export const START_R = 1;
/** Rounded end (exclusive; may be 2^64). */
export const END_F = 2;
/** Residual of the end. */
export const END_R = 3;
/** Rounded diff `target − start` (a signed integer, never reduced mod 2^64). */
export const DIFF_F = 4;
/** Residual of the diff. */
export const DIFF_R = 5;
/** Permission bits 0–3. */
export const PERM = 6;
/** Eviction stamp: insertion sequence (fifo) or last use (lru). */
export const STAMP = 7;

/** Records per chunk: 64 records are 4 KiB, so an insert moves 2 KiB on average. */
export const CHUNK = 64;
const CHUNK_DOUBLES = CHUNK * STRIDE;
// A chunk that shrinks below a quarter joins a neighbour if the two fit in three quarters, so a
// table that shrank does not keep one mostly empty 4 KiB chunk per entry.
const SMALL = CHUNK >> 2;
const JOINED_MAX = (CHUNK * 3) >> 2;

/**
 * Sorted range storage with a cursor: searches leave their answer in `k` (directory position) and
 * `i` (index in that chunk); `k === chunks` is the end. Positions are normalized: `i` is always
 * below the chunk's count, and every chunk in the directory holds at least one record.
 */
export class RangeTable {
  /** The record pool; chunk `c` occupies doubles `[c * CHUNK * STRIDE, (c + 1) * CHUNK * STRIDE)`. */
  rec: Float64Array = new Float64Array(CHUNK_DOUBLES * 2);
  /** Records in each chunk, by chunk id. */
  count: Int32Array = new Int32Array(2);
  /** A lower bound of each chunk's smallest stamp, by chunk id (stamps only ever rise in place). */
  minStamp: Float64Array = new Float64Array(2);
  /** Chunk ids in IOVA order. */
  dirChunk: Int32Array = new Int32Array(2);
  /** Rounded start of each directory chunk's first record. */
  dirFirst: Float64Array = new Float64Array(2);
  /** Chunks in the directory. */
  chunks = 0;
  /** Records in the table. */
  size = 0;
  /** Cursor: directory position. */
  k = 0;
  /** Cursor: index inside the chunk. */
  i = 0;
  #pooled = 0;
  #free: number[] = [];

  /** Drops every record and shrinks the pool back. */
  clear(): void {
    this.rec = new Float64Array(CHUNK_DOUBLES * 2);
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

  /** Offset in `rec` of the record at directory position `k`, index `i`. */
  slot(k: number, i: number): number {
    return (this.dirChunk[k] * CHUNK + i) * STRIDE;
  }

  /** Records in the chunk at directory position `k`. */
  countAt(k: number): number {
    return this.count[this.dirChunk[k]];
  }

  /** Whether the cursor is past the last record. */
  atEnd(): boolean {
    return this.k >= this.chunks;
  }

  /** Rewrites the start of the record at `(k, i)`, keeping the directory's first key current. */
  setStart(k: number, i: number, sF: number, sR: number): void {
    const p = this.slot(k, i);
    this.rec[p + START_F] = sF;
    this.rec[p + START_R] = sR;
    if (i === 0) this.dirFirst[k] = sF;
  }

  /** Moves the cursor to the next record (or the end). */
  advance(): void {
    if (++this.i === this.countAt(this.k)) {
      this.k++;
      this.i = 0;
    }
  }

  /** Moves the cursor to the record before it; false (cursor unchanged) if there is none. */
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

  /** Cursor to the first record whose end lies above `x`: the record containing x, or the next one. */
  locate(xF: number, xR: number): void {
    const n = this.chunks;
    if (n === 0) {
      this.k = 0;
      this.i = 0;
      return;
    }
    const rec = this.rec, dirFirst = this.dirFirst, dirChunk = this.dirChunk;
    let lo = 0, hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      const f = dirFirst[mid];
      if (f < xF || (f === xF && rec[dirChunk[mid] * CHUNK_DOUBLES + START_R] <= xR)) lo = mid;
      else hi = mid - 1;
    }
    let k = lo;
    const base = dirChunk[k] * CHUNK_DOUBLES;
    const cnt = this.count[dirChunk[k]];
    let a = -1, b = cnt - 1;
    while (a < b) {
      const m = (a + b + 1) >> 1;
      const p = base + m * STRIDE;
      const f = rec[p];
      if (f < xF || (f === xF && rec[p + START_R] <= xR)) a = m;
      else b = m - 1;
    }
    if (a >= 0) {
      const p = base + a * STRIDE;
      if (keyLess(xF, xR, rec[p + END_F], rec[p + END_R])) {
        this.k = k;
        this.i = a;
        return;
      }
      if (++a === cnt) {
        k++;
        a = 0;
      }
    } else {
      a = 0; // x precedes every record: only chunk 0 can start above x
    }
    this.k = k;
    this.i = a;
  }

  /** Directory position and index of the record with global rank `rank` (0-based), into the cursor. */
  seek(rank: number): void {
    let k = 0;
    while (rank >= this.countAt(k)) rank -= this.countAt(k++);
    this.k = k;
    this.i = rank;
  }

  /** Global rank of the record at the cursor. */
  rank(): number {
    let r = this.i;
    for (let k = 0; k < this.k; k++) r += this.countAt(k);
    return r;
  }

  /**
   * Cursor to a record with the smallest stamp (the first such in IOVA order). The per-chunk lower
   * bounds pick a chunk; its true minimum is scanned, and if a hit raised it the bound is tightened
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
   * Inserts a record before the cursor position `(k, i)` (`k === chunks`: at the end) and leaves
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
        const rec = this.rec;
        rec.copyWithin(d * CHUNK_DOUBLES, c * CHUNK_DOUBLES + half * STRIDE, (c + 1) * CHUNK_DOUBLES);
        this.count[d] = CHUNK - half;
        this.count[c] = half;
        this.minStamp[d] = this.minStamp[c];
        this.dirFirst[k + 1] = rec[d * CHUNK_DOUBLES];
        if (i > half) {
          k++;
          c = d;
          i -= half;
        }
      }
      n = this.count[c];
    }
    const rec = this.rec;
    const base = c * CHUNK_DOUBLES;
    const p = base + i * STRIDE;
    if (i < n) rec.copyWithin(p + STRIDE, p, base + n * STRIDE);
    rec[p + START_F] = sF;
    rec[p + START_R] = sR;
    rec[p + END_F] = eF;
    rec[p + END_R] = eR;
    rec[p + DIFF_F] = dF;
    rec[p + DIFF_R] = dR;
    rec[p + PERM] = perm;
    rec[p + STAMP] = stamp;
    this.count[c] = n + 1;
    if (stamp < this.minStamp[c]) this.minStamp[c] = stamp;
    if (i === 0) this.dirFirst[k] = sF;
    this.size++;
    this.k = k;
    this.i = i;
  }

  /**
   * Removes `n` records starting at the normalized position `(k, i)` and leaves the cursor on the
   * record that followed them (or the end).
   */
  remove(k: number, i: number, n: number): void {
    this.size -= n;
    const first = this.dirChunk[k];
    const firstCount = this.count[first];
    if (i > 0 || n < firstCount) {
      const take = Math.min(n, firstCount - i);
      const base = first * CHUNK_DOUBLES;
      this.rec.copyWithin(base + i * STRIDE, base + (i + take) * STRIDE, base + firstCount * STRIDE);
      this.count[first] = firstCount - take;
      if (i === 0) this.dirFirst[k] = this.rec[base];
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
      const base = c * CHUNK_DOUBLES;
      this.rec.copyWithin(base, base + n * STRIDE, base + this.count[c] * STRIDE);
      this.count[c] -= n;
      this.dirFirst[k] = this.rec[base];
    }
    const before = k - 1;
    this.#settle(k, 0);
    // The chunk before the removal point may have shrunk too.
    if (before >= 0 && before < this.chunks) this.#joinSmall(before);
  }

  /** Sets the cursor to (k, i) after joining the chunk at k if it became small. */
  #settle(k: number, i: number): void {
    this.k = k;
    this.i = i;
    if (k < this.chunks) this.#joinSmall(k);
  }

  /**
   * Joins the chunk at directory position k with a neighbour when it is small and the two fit,
   * keeping the cursor on the same record.
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
    this.rec.copyWithin(
      (left * CHUNK + ln) * STRIDE,
      right * CHUNK_DOUBLES,
      right * CHUNK_DOUBLES + rn * STRIDE,
    );
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
      const rec = new Float64Array(cap * CHUNK_DOUBLES);
      rec.set(this.rec);
      this.rec = rec;
      const count = new Int32Array(cap);
      count.set(this.count);
      this.count = count;
      const minStamp = new Float64Array(cap);
      minStamp.set(this.minStamp);
      this.minStamp = minStamp;
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
