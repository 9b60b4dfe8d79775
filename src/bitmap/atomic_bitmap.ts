/**
 * Dirty-page tracking: {@link AtomicBitmap}, one bit per page of a region, set by every write to
 * guest memory and collected (read and cleared) by a migration or snapshot tool; {@link BitmapSlice},
 * a view of a bitmap whose offsets start part-way into it; and the {@link Bitmap} interface both
 * implement.
 *
 * The bits live in a `SharedArrayBuffer`, so a bitmap posted to a Worker (see
 * {@link AtomicBitmap.toShared}) is the same bitmap in both threads: bits are set with `Atomics.or`
 * and collected with `Atomics.exchange`, and no mark made by one thread is lost to another.
 *
 * Offsets, lengths and bit indices are `number`s (non-negative safe integers): they are offsets
 * into one region, not guest addresses, and `markDirty` sits on the path of every guest write, where
 * a `bigint` would cost an allocation.
 *
 * @example
 * ```ts
 * import { AtomicBitmap } from "./atomic_bitmap.ts";
 * const bitmap = new AtomicBitmap(64 * 1024); // 16 pages of 4 KiB
 * bitmap.markDirty(0x1ffc, 8); // an 8-byte write straddling pages 1 and 2
 * console.log(bitmap.dirtyRuns()); // [[4096, 8192]]
 * console.log(bitmap.getAndReset()); // BigUint64Array [6n]
 * ```
 * @module
 */

import { isPowerOfTwo, toLength } from "../core/address.ts";
import { sharedBytesLength } from "../core/caller_bytes.ts";
import { describeValue } from "../core/format.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import { inspectBitmap } from "./inspect_bitmap.ts";

/**
 * Something that records which bytes of a region were written: vm-memory's `Bitmap`. Offsets are
 * relative to the start of whatever the bitmap covers.
 *
 * @example
 * ```ts
 * import { AtomicBitmap, type Bitmap } from "./atomic_bitmap.ts";
 * function write(memory: Uint8Array, bitmap: Bitmap, offset: number, data: Uint8Array): void {
 *   memory.set(data, offset); // write first, then mark (see AtomicBitmap.markDirty)
 *   bitmap.markDirty(offset, data.length);
 * }
 * const bitmap = new AtomicBitmap(8192);
 * write(new Uint8Array(8192), bitmap, 5000, new Uint8Array([1, 2, 3]));
 * console.log(bitmap.dirtyAt(4096), bitmap.dirtyAt(0)); // true false
 * ```
 */
export interface Bitmap {
  /** Records that `[offset, offset + len)` was written; `len` 0 records nothing. */
  markDirty(offset: number, len: number): void;
  /** True if the byte at `offset` lies in a page recorded as written. */
  dirtyAt(offset: number): boolean;
}

/** What {@link AtomicBitmap.toShared} returns: everything needed to rebuild the bitmap in a Worker. */
export interface SharedBitmap {
  /** The bits: page `p` is bit `p % 32` of host-endian `Uint32Array` element `floor(p / 32)`. */
  buffer: SharedArrayBuffer;
  /** The number of bytes the bitmap covers. */
  byteSize: number;
  /** The number of bytes one bit stands for. */
  pageSize: number;
  /** Whether marks always use an atomic read-modify-write (see {@link AtomicBitmapOptions.strictOrdering}). */
  strictOrdering?: boolean;
}

/** Options of the {@link AtomicBitmap} constructor. */
export interface AtomicBitmapOptions {
  /**
   * Use these bits instead of new, cleared ones: the bitmap then shares its state with every other
   * bitmap over the same buffer. At least {@link AtomicBitmap.bufferBytes} bytes; its contents are
   * kept.
   */
  buffer?: SharedArrayBuffer;
  /**
   * Mark with an atomic read-modify-write (`Atomics.or`) even when the page is already dirty, as
   * vm-memory does. Safe with a collector that takes the bits while writers run and copies at once,
   * with no other synchronisation; costs ~10 ns more per mark of a dirty page (V8 does not inline
   * `Atomics`). Without it (the default) such a collector must put a process-wide memory barrier
   * between taking the bits and copying: see {@link AtomicBitmap.getAndReset}.
   */
  strictOrdering?: boolean;
}

/** The JSON form of an {@link AtomicBitmap}: its geometry and the dirty byte ranges. */
export interface AtomicBitmapJson {
  /** The number of bytes the bitmap covers. */
  byteSize: number;
  /** The number of bytes one bit stands for. */
  pageSize: number;
  /** The number of bits (pages). */
  pages: number;
  /** The dirty pages as `[start, length]` byte ranges, as {@link AtomicBitmap.dirtyRuns} gives them. */
  dirtyRuns: Array<[start: number, length: number]>;
  /** The number of dirty pages. */
  dirtyPages: number;
}

/** True if the host stores the low half of a 64-bit word first. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The bits `lo..hi` (inclusive, 0 ≤ lo ≤ hi ≤ 31) of a 32-bit word, as an int32. */
function bitsBetween(lo: number, hi: number): number {
  return (0xffff_ffff >>> (31 - hi + lo)) << lo;
}

/** Checks that `value` is a non-negative safe integer and returns it (see `toLength`). */
function toIndex(value: unknown, op: string, name: string): number {
  return toLength(value, op, name);
}

/**
 * Checks a bitmap's geometry: `byteSize` as by `toIndex`, and `pageSize` a power of two (the
 * refusal says so, followed by `examples`).
 */
function checkGeometry(byteSize: number, pageSize: number, op: string, examples: string): void {
  toIndex(byteSize, op, "byteSize");
  if (typeof pageSize !== "number" || !isPowerOfTwo(pageSize)) {
    throw new InvalidArgumentError(
      op,
      "pageSize",
      pageSize,
      `must be a power of two${examples}, got ${describeValue(pageSize)}`,
    );
  }
}

/**
 * `base + value`, with `value` checked by `toIndex` and a sum past 2^53 - 1 refused as an
 * InvalidArgumentError on `name`, its reason `says` given the sum written out (`"base + value"`).
 */
function indexSum(base: number, value: number, op: string, name: string, says: (sum: string) => string): number {
  toIndex(value, op, name);
  const sum = base + value;
  if (!Number.isSafeInteger(sum)) throw new InvalidArgumentError(op, name, value, says(`${base} + ${value}`));
  return sum;
}

/**
 * A dirty-page bitmap: one bit for each `pageSize` bytes of a region of `byteSize` bytes, stored in
 * a `SharedArrayBuffer` and updated with `Atomics`, so that several threads (the main thread and
 * Workers that were given {@link AtomicBitmap.toShared}) can mark pages and a collector can take and
 * clear the bits concurrently without losing a mark. vm-memory's `AtomicBitmap`.
 *
 * Pages are numbered from 0; page `p` covers bytes `[p * pageSize, (p + 1) * pageSize)`; the last
 * page may extend past `byteSize`. Marks past the last page are ignored, as in vm-memory.
 *
 * @example
 * ```ts
 * import { AtomicBitmap } from "./atomic_bitmap.ts";
 * const bitmap = new AtomicBitmap(10_000, 4096); // 3 pages, the last one partial
 * bitmap.markDirty(8192, 100);
 * bitmap.markDirty(50_000, 8); // past the end: ignored
 * console.log(bitmap.len, bitmap.isBitSet(2), bitmap.dirtyRuns()); // 3 true [[8192, 1808]]
 * ```
 */
export class AtomicBitmap implements Bitmap {
  #byteSize: number;
  readonly #pageSize: number;
  /** `1 / pageSize`, exact because `pageSize` is a power of two: `offset * inv` is `offset / pageSize`. */
  readonly #invPageSize: number;
  /** `min(log2(pageSize), 31)`: `offset >> #pageShift` is the page of an int32 offset. */
  readonly #pageShift: number;
  #pages: number;
  /** `min(pages, 2^31)`: pages below it take markDirty's integer fast path. */
  #fastPages: number;
  readonly #strictOrdering: boolean;
  #buffer: SharedArrayBuffer;
  /** Page `p` is bit `p % 32` of element `floor(p / 32)`. Always an even number of elements. */
  #words: Uint32Array;

  /**
   * Creates a bitmap covering `byteSize` bytes in pages of `pageSize` bytes: `ceil(byteSize /
   * pageSize)` bits, all clear unless `options.buffer` supplies existing ones.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const a = new AtomicBitmap(1 << 20); // 256 pages of 4 KiB
   * const b = new AtomicBitmap(1 << 20, 2 * 1024 * 1024); // one 2 MiB page
   * const c = new AtomicBitmap(1 << 20, 4096, { buffer: a.buffer }); // shares a's bits
   * a.setBit(7);
   * console.log(a.len, b.len, c.isBitSet(7)); // 256 1 true
   * ```
   * @throws {InvalidArgumentError} if `byteSize` is not a non-negative safe integer, `pageSize` is
   *   not a power of two, `options` is not an object, `options.buffer` is not a
   *   `SharedArrayBuffer` or is too small, `options.strictOrdering` is not a boolean, or the bits
   *   would not fit in a `SharedArrayBuffer`.
   */
  constructor(byteSize: number, pageSize: number = 4096, options?: AtomicBitmapOptions) {
    const op = "AtomicBitmap.constructor";
    checkGeometry(byteSize, pageSize, op, " (1, 2, 4, …, 4096, …)");
    if (options !== undefined && (typeof options !== "object" || options === null)) {
      throw new InvalidArgumentError(op, "options", options, `must be an object, got ${describeValue(options)}`);
    }
    const strictOrdering = options?.strictOrdering ?? false;
    if (typeof strictOrdering !== "boolean") {
      throw new InvalidArgumentError(
        op,
        "options.strictOrdering",
        strictOrdering,
        `must be a boolean, got ${describeValue(strictOrdering)}`,
      );
    }
    const pages = Math.ceil(byteSize / pageSize);
    const bytes = AtomicBitmap.bufferBytes(byteSize, pageSize);
    let buffer: SharedArrayBuffer;
    const given = options?.buffer;
    if (given !== undefined) {
      // The size read through the intrinsic getter: an own `byteLength` on the buffer could claim
      // room it does not have (or fake a SharedArrayBuffer), and the bits would not be shared.
      const size = given instanceof SharedArrayBuffer ? sharedBytesLength(given) : -1;
      if (size < 0) {
        throw new InvalidArgumentError(
          op,
          "options.buffer",
          given,
          `must be a SharedArrayBuffer, got ${describeValue(given)}`,
        );
      }
      if (size < bytes) {
        throw new InvalidArgumentError(
          op,
          "options.buffer",
          given,
          `must hold at least ${bytes} bytes for ${pages} pages, got ${size}`,
        );
      }
      buffer = given;
    } else {
      buffer = allocate(bytes, op, byteSize);
    }
    this.#byteSize = byteSize;
    this.#pageSize = pageSize;
    this.#invPageSize = 1 / pageSize;
    this.#pageShift = Math.min(Math.log2(pageSize), 31);
    this.#pages = pages;
    this.#fastPages = Math.min(pages, 2 ** 31);
    this.#strictOrdering = strictOrdering;
    this.#buffer = buffer;
    this.#words = new Uint32Array(buffer, 0, bytes / 4);
  }

  /**
   * The number of bytes of `SharedArrayBuffer` a bitmap of `byteSize` bytes in `pageSize` pages
   * needs: one bit per page, rounded up to whole 64-bit words.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * console.log(AtomicBitmap.bufferBytes(1 << 30)); // 32768 (262144 pages)
   * ```
   */
  static bufferBytes(byteSize: number, pageSize: number = 4096): number {
    const op = "AtomicBitmap.bufferBytes";
    checkGeometry(byteSize, pageSize, op, "");
    return Math.ceil(Math.ceil(byteSize / pageSize) / 64) * 8;
  }

  /**
   * Rebuilds a bitmap from {@link AtomicBitmap.toShared}'s description, typically in a Worker that
   * received it with `postMessage`. Both bitmaps then share the same bits.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const a = new AtomicBitmap(8192);
   * const b = AtomicBitmap.fromShared(structuredClone(a.toShared()));
   * b.markDirty(4096, 1);
   * console.log(a.isBitSet(1)); // true
   * ```
   * @throws {InvalidArgumentError} for a description the constructor would refuse.
   */
  static fromShared(shared: SharedBitmap): AtomicBitmap {
    const op = "AtomicBitmap.fromShared";
    if (typeof shared !== "object" || shared === null) {
      throw new InvalidArgumentError(op, "shared", shared, `must be an object, got ${describeValue(shared)}`);
    }
    if (!(shared.buffer instanceof SharedArrayBuffer)) {
      throw new InvalidArgumentError(
        op,
        "shared.buffer",
        shared.buffer,
        `must be a SharedArrayBuffer, got ${describeValue(shared.buffer)}`,
      );
    }
    return new AtomicBitmap(shared.byteSize, shared.pageSize, {
      buffer: shared.buffer,
      strictOrdering: shared.strictOrdering,
    });
  }

  /**
   * The number of bytes the bitmap covers.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * console.log(new AtomicBitmap(10_000).byteSize); // 10000
   * ```
   */
  get byteSize(): number {
    return this.#byteSize;
  }

  /**
   * The number of bytes one bit stands for.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * console.log(new AtomicBitmap(10_000).pageSize); // 4096
   * ```
   */
  get pageSize(): number {
    return this.#pageSize;
  }

  /**
   * The number of bits: `ceil(byteSize / pageSize)` pages.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * console.log(new AtomicBitmap(10_000).len, new AtomicBitmap(0).len); // 3 0
   * ```
   */
  get len(): number {
    return this.#pages;
  }

  /**
   * The `SharedArrayBuffer` holding the bits (replaced by {@link AtomicBitmap.enlarge}).
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * console.log(new AtomicBitmap(1 << 20).buffer.byteLength); // 32
   * ```
   */
  get buffer(): SharedArrayBuffer {
    return this.#buffer;
  }

  /**
   * Whether every mark is an atomic read-modify-write (see {@link AtomicBitmapOptions.strictOrdering}).
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * console.log(new AtomicBitmap(4096, 4096, { strictOrdering: true }).strictOrdering); // true
   * ```
   */
  get strictOrdering(): boolean {
    return this.#strictOrdering;
  }

  /**
   * Records that `[offset, offset + len)` was written: sets the bits of pages `floor(offset /
   * pageSize)` through `floor((offset + len - 1) / pageSize)`. `len` 0 records nothing; pages past
   * the end are ignored. vm-memory's `mark_dirty`. Allocates nothing.
   *
   * Call it AFTER writing the memory: a collector that takes the bits with
   * {@link AtomicBitmap.getAndReset} and then copies the dirty pages then finds each write either
   * in this round (the bit, and the bytes when it copies) or in its next (the bit is still set).
   * A page already marked costs one plain read (~2 ns); marking a clear page is an `Atomics.or`.
   * A collector running concurrently with writers needs the barrier described under
   * {@link AtomicBitmap.getAndReset}, unless the bitmap has `strictOrdering`.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const memory = new DataView(new ArrayBuffer(16384));
   * const bitmap = new AtomicBitmap(16384);
   * memory.setBigUint64(8192, 42n, true);
   * bitmap.markDirty(8192, 8);
   * console.log(bitmap.isBitSet(2)); // true
   * ```
   * @throws {InvalidArgumentError} if `offset` or `len` is not a non-negative safe integer.
   */
  markDirty(offset: number, len: number): void {
    this.#set(offset, len, "AtomicBitmap.markDirty");
  }

  /**
   * Sets the bits of the pages `[start, start + len)` touches; the same as
   * {@link AtomicBitmap.markDirty}. vm-memory's `set_addr_range`.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(16384);
   * bitmap.setAddrRange(4095, 2); // the last byte of page 0 and the first of page 1
   * console.log(bitmap.isBitSet(0), bitmap.isBitSet(1), bitmap.isBitSet(2)); // true true false
   * ```
   * @throws {InvalidArgumentError} if `start` or `len` is not a non-negative safe integer.
   */
  setAddrRange(start: number, len: number): void {
    this.#set(start, len, "AtomicBitmap.setAddrRange");
  }

  #set(offset: number, len: number, op: string): void {
    // The fast path: a write within one page at an int32 offset. It is inlined into every guest
    // write's path, so it stays small: a larger #set made V8 stop inlining untracked writes too,
    // once a tracked one had run (their shared store helper's compiled size counts against the
    // caller's inlining budget). Anything else goes to #setOther.
    if (typeof offset === "number" && typeof len === "number" && len > 0) {
      const end = offset + len - 1;
      if ((offset | 0) === offset && (end | 0) === end && offset >= 0) {
        // Both ends are int32 (offsets below 2 GiB), so len is an integer too and shifting by
        // log2(pageSize) (capped at 31) gives the pages exactly.
        const shift = this.#pageShift;
        const page = offset >> shift;
        if (page === end >> shift && page < this.#pages) {
          // #markPage, written out (one call fewer on every tracked write).
          const words = this.#words, word = page >>> 5, mask = 1 << (page & 31);
          if (this.#strictOrdering || (words[word] & mask) === 0) Atomics.or(words, word, mask);
          return;
        }
      }
    }
    this.#setOther(offset, len, op);
  }

  /** {@link AtomicBitmap.#set} past its int32 fast path: larger offsets within one page, else the checked range. */
  #setOther(offset: number, len: number, op: string): void {
    if (typeof offset === "number" && typeof len === "number" && len > 0) {
      // `* (1 / pageSize)` is an exact division by a power of two. The integer tests turn away
      // fractions, NaN and infinities (and negative values fail `page >= 0`).
      const inv = this.#invPageSize;
      const page = Math.floor(offset * inv);
      const end = offset + len - 1;
      if (
        page >= 0 && page < this.#fastPages && page === Math.floor(end * inv) && offset === Math.floor(offset) &&
        len === Math.floor(len)
      ) {
        this.#markPage(page | 0); // exact: page < #fastPages <= 2^31
        return;
      }
    }
    this.#setRange(offset, len, op);
  }

  /** Sets the bit of `page`, an int32 below the page count. */
  #markPage(page: number): void {
    const word = page >>> 5;
    const mask = 1 << (page & 31);
    const words = this.#words;
    // Test first: a plain read of an already-set bit saves the atomic read-modify-write, which V8
    // does not inline (a builtin call of ~10 ns, against ~2-3 ns for the whole fast path). The
    // caller wrote the memory before calling, so a bit seen set is a bit a collector has not taken
    // yet, and it will copy this page after taking it. The one gap: the CPU may complete this load
    // before the caller's store is visible to other threads (x86 lets a load pass an earlier
    // store; Arm more so), so a collector that takes the bits within that window of nanoseconds
    // and copies at once could copy the page without the write and leave the bit clear. A
    // collector running concurrently with writers closes the gap with a process-wide barrier
    // between taking the bits and copying (Linux membarrier(2), a few microseconds per round; see
    // getAndReset). `strictOrdering` instead always does the read-modify-write, which publishes
    // the write before the bit, as vm-memory's fetch_or does.
    if (this.#strictOrdering || (words[word] & mask) === 0) Atomics.or(words, word, mask);
  }

  /** The checked path of {@link AtomicBitmap.markDirty}: validates, then sets the bits word by word. */
  #setRange(offset: number, len: number, op: string): void {
    toIndex(offset, op, "offset");
    toIndex(len, op, "len");
    if (len === 0) return;
    const pages = this.#pages;
    const first = Math.floor(offset * this.#invPageSize);
    if (first >= pages) return;
    // offset + len - 1 may round above 2^53; it is then far past any page count and clamped.
    const last = Math.min(Math.floor((offset + len - 1) * this.#invPageSize), pages - 1);
    const words = this.#words;
    const firstWord = Math.floor(first / 32);
    const lastWord = Math.floor(last / 32);
    for (let w = firstWord; w <= lastWord; w++) {
      const lo = w === firstWord ? first - w * 32 : 0;
      const hi = w === lastWord ? last - w * 32 : 31;
      const mask = bitsBetween(lo, hi);
      // Test first, as in the fast path (and with the same caveat).
      if (this.#strictOrdering || (words[w] & mask) !== mask) Atomics.or(words, w, mask);
    }
  }

  /**
   * Clears the bits of the pages `[start, start + len)` touches (the same pages
   * {@link AtomicBitmap.setAddrRange} would set). `len` 0 clears nothing; pages past the end are
   * ignored. vm-memory's `reset_addr_range`.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(16384);
   * bitmap.setAddrRange(0, 16384);
   * bitmap.resetAddrRange(4096, 4097); // pages 1 and 2
   * console.log(bitmap.dirtyRuns()); // [[0, 4096], [12288, 4096]]
   * ```
   * @throws {InvalidArgumentError} if `start` or `len` is not a non-negative safe integer.
   */
  resetAddrRange(start: number, len: number): void {
    const op = "AtomicBitmap.resetAddrRange";
    toIndex(start, op, "start");
    toIndex(len, op, "len");
    if (len === 0) return;
    const pages = this.#pages;
    const first = Math.floor(start * this.#invPageSize);
    if (first >= pages) return;
    const last = Math.min(Math.floor((start + len - 1) * this.#invPageSize), pages - 1);
    const words = this.#words;
    const firstWord = Math.floor(first / 32);
    const lastWord = Math.floor(last / 32);
    for (let w = firstWord; w <= lastWord; w++) {
      const lo = w === firstWord ? first - w * 32 : 0;
      const hi = w === lastWord ? last - w * 32 : 31;
      Atomics.and(words, w, ~bitsBetween(lo, hi));
    }
  }

  /**
   * Sets bit (page) `index`; an index past the end is ignored. vm-memory's `set_bit`.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(8192);
   * bitmap.setBit(1);
   * bitmap.setBit(99); // ignored
   * console.log(bitmap.dirtyRuns()); // [[4096, 4096]]
   * ```
   * @throws {InvalidArgumentError} if `index` is not a non-negative safe integer.
   */
  setBit(index: number): void {
    toIndex(index, "AtomicBitmap.setBit", "index");
    if (index >= this.#pages) return;
    const word = Math.floor(index / 32);
    Atomics.or(this.#words, word, 1 << (index - word * 32));
  }

  /**
   * Clears bit (page) `index`; an index past the end is ignored. vm-memory's `reset_bit`.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(8192);
   * bitmap.setAddrRange(0, 8192);
   * bitmap.resetBit(0);
   * console.log(bitmap.isBitSet(0), bitmap.isBitSet(1)); // false true
   * ```
   * @throws {InvalidArgumentError} if `index` is not a non-negative safe integer.
   */
  resetBit(index: number): void {
    toIndex(index, "AtomicBitmap.resetBit", "index");
    if (index >= this.#pages) return;
    const word = Math.floor(index / 32);
    Atomics.and(this.#words, word, ~(1 << (index - word * 32)));
  }

  /**
   * True if bit (page) `index` is set; false for an index past the end. vm-memory's `is_bit_set`.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(8192);
   * bitmap.setBit(1);
   * console.log(bitmap.isBitSet(0), bitmap.isBitSet(1), bitmap.isBitSet(2)); // false true false
   * ```
   * @throws {InvalidArgumentError} if `index` is not a non-negative safe integer.
   */
  isBitSet(index: number): boolean {
    toIndex(index, "AtomicBitmap.isBitSet", "index");
    return this.#bit(index);
  }

  /**
   * True if the page holding byte `addr` is marked; false past the end. vm-memory's `is_addr_set`.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(8192);
   * bitmap.markDirty(4100, 4);
   * console.log(bitmap.isAddrSet(4096), bitmap.isAddrSet(4095)); // true false
   * ```
   * @throws {InvalidArgumentError} if `addr` is not a non-negative safe integer.
   */
  isAddrSet(addr: number): boolean {
    toIndex(addr, "AtomicBitmap.isAddrSet", "addr");
    return this.#bit(Math.floor(addr * this.#invPageSize));
  }

  /**
   * True if the page holding byte `offset` is marked; the same as {@link AtomicBitmap.isAddrSet}.
   * vm-memory's `dirty_at`.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(8192);
   * bitmap.markDirty(0, 1);
   * console.log(bitmap.dirtyAt(4095), bitmap.dirtyAt(4096)); // true false
   * ```
   * @throws {InvalidArgumentError} if `offset` is not a non-negative safe integer.
   */
  dirtyAt(offset: number): boolean {
    toIndex(offset, "AtomicBitmap.dirtyAt", "offset");
    return this.#bit(Math.floor(offset * this.#invPageSize));
  }

  #bit(page: number): boolean {
    if (page >= this.#pages) return false;
    const word = Math.floor(page / 32);
    return (Atomics.load(this.#words, word) & (1 << (page - word * 32))) !== 0;
  }

  /**
   * Takes the bits and clears them: element `w` of the result holds pages `64w` to `64w + 63`, page
   * `64w + i` in bit `i`. Each 32-bit half is taken with `Atomics.exchange`, so a page marked
   * concurrently is either in the result or still set afterwards, never lost. vm-memory's
   * `get_and_reset`.
   *
   * Copying the pages while writers still run: a writer skips the atomic operation when it sees
   * its page already marked, and its CPU may make that check before its write to guest memory is
   * visible to this thread. Unless the bitmap has `strictOrdering`, make every thread pass a full
   * memory barrier after this returns and before reading the pages: on Linux,
   * `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` (registered once with
   * `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED`), a few microseconds per round. Writers that are
   * stopped (a final stop-and-copy round) need nothing.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(100 * 4096);
   * for (const page of [0, 63, 64]) bitmap.setBit(page);
   * console.log(bitmap.getAndReset()); // BigUint64Array [9223372036854775809n, 1n]
   * console.log(bitmap.getAndReset()); // BigUint64Array [0n, 0n]
   * ```
   */
  getAndReset(): BigUint64Array {
    const words = this.#words;
    const count = words.length / 2;
    const result = new BigUint64Array(count);
    const halves = new Uint32Array(result.buffer);
    const flip = LITTLE_ENDIAN ? 0 : 1; // big-endian hosts keep the high half first
    for (let w = 0; w < words.length; w++) {
      halves[w ^ flip] = Atomics.exchange(words, w, 0) & this.#validBits(w);
    }
    return result;
  }

  /** The mask of bits of storage word `w` that stand for pages (all but the last word: all). */
  #validBits(w: number): number {
    const beyond = (w + 1) * 32 - this.#pages;
    if (beyond <= 0) return -1;
    if (beyond >= 32) return 0;
    return bitsBetween(0, 31 - beyond);
  }

  /**
   * Clears every bit. vm-memory's `reset`.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(8192);
   * bitmap.markDirty(0, 8192);
   * bitmap.reset();
   * console.log(bitmap.dirtyRuns()); // []
   * ```
   */
  reset(): void {
    const words = this.#words;
    for (let w = 0; w < words.length; w++) Atomics.store(words, w, 0);
  }

  /**
   * The marked pages as byte ranges `[start, length]`, ascending, neighbouring pages merged into one
   * range, the last range clipped to `byteSize`. Reads the bits without clearing them.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(5 * 4096 - 100);
   * bitmap.markDirty(4096, 4096);
   * bitmap.setBit(2);
   * bitmap.setBit(4);
   * console.log(bitmap.dirtyRuns()); // [[4096, 8192], [16384, 3996]]
   * ```
   */
  dirtyRuns(): Array<[start: number, length: number]> {
    return this.#runs(false);
  }

  /**
   * Like {@link AtomicBitmap.dirtyRuns}, but clears the bits as it reads them, each 32-bit word in
   * one `Atomics.exchange`: a page marked concurrently is either in the result or still marked
   * afterwards. The one call a migration round needs; the barrier described under
   * {@link AtomicBitmap.getAndReset} applies here too.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(16384);
   * bitmap.markDirty(100, 5000);
   * console.log(bitmap.snapshotAndReset(), bitmap.snapshotAndReset()); // [[0, 8192]] []
   * ```
   */
  snapshotAndReset(): Array<[start: number, length: number]> {
    return this.#runs(true);
  }

  #runs(take: boolean): Array<[start: number, length: number]> {
    const words = this.#words;
    const ps = this.#pageSize;
    const byteSize = this.#byteSize;
    const n = words.length;
    const whole = Math.floor(this.#pages / 32); // words whose 32 bits all stand for pages
    const runs: Array<[number, number]> = [];
    let runStart = -1; // first page of the open run, or -1
    // A run ending at the first page past the end (masked bits, a padding word) is clipped to byteSize.
    for (let w = 0; w < n; w++) {
      let bits = take ? Atomics.exchange(words, w, 0) : Atomics.load(words, w);
      if (w >= whole) bits &= this.#validBits(w);
      const base = w * 32;
      if (bits === 0) {
        if (runStart >= 0) {
          runs.push([runStart * ps, Math.min(base * ps, byteSize) - runStart * ps]);
          runStart = -1;
        }
        continue;
      }
      if (bits === -1) {
        if (runStart < 0) runStart = base;
        continue;
      }
      // Jump from edge to edge (the lowest set bit of the bits, or of their complement, at or
      // above b) instead of testing 32 bits one by one: the work follows the runs, not the pages.
      for (let b = 0;;) {
        const rest = (runStart < 0 ? bits : ~bits) >>> b;
        if (rest === 0) break;
        b += 31 - Math.clz32(rest & -rest);
        if (runStart < 0) runStart = base + b;
        else {
          runs.push([runStart * ps, Math.min((base + b) * ps, byteSize) - runStart * ps]);
          runStart = -1;
        }
      }
    }
    if (runStart >= 0) runs.push([runStart * ps, byteSize - runStart * ps]);
    return runs;
  }

  /**
   * Grows the bitmap to cover `additionalBytes` more bytes; the new pages start clear and the
   * existing bits are kept. vm-memory's `enlarge`.
   *
   * The bits move to a new, larger `SharedArrayBuffer` (bits are copied, so do not enlarge while
   * other threads are marking). Workers holding the old buffer keep marking the old one: send them
   * {@link AtomicBitmap.toShared} again and have them rebuild with {@link AtomicBitmap.fromShared}.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(4096);
   * bitmap.setBit(0);
   * bitmap.enlarge(8192);
   * console.log(bitmap.len, bitmap.isBitSet(0), bitmap.isBitSet(1)); // 3 true false
   * ```
   * @throws {InvalidArgumentError} if `additionalBytes` is not a non-negative safe integer, or the
   *   new size is not one.
   */
  enlarge(additionalBytes: number): void {
    const op = "AtomicBitmap.enlarge";
    const byteSize = indexSum(
      this.#byteSize,
      additionalBytes,
      op,
      "additionalBytes",
      (sum) => `makes the size ${sum} exceed 2^53 - 1`,
    );
    if (additionalBytes === 0) return;
    const bytes = AtomicBitmap.bufferBytes(byteSize, this.#pageSize);
    const buffer = allocate(bytes, op, byteSize);
    const words = new Uint32Array(buffer);
    // Plain copy: enlarging while others mark would lose their marks anyway (they mark the old
    // buffer until they re-fetch), so it needs the writers stopped, as vm-memory's `&mut self` does.
    words.set(this.#words);
    this.#byteSize = byteSize;
    this.#pages = Math.ceil(byteSize / this.#pageSize);
    this.#fastPages = Math.min(this.#pages, 2 ** 31);
    this.#buffer = buffer;
    this.#words = words;
  }

  /**
   * A view of this bitmap whose offset 0 is this bitmap's `offset`: vm-memory's `slice_at`, used to
   * hand a bitmap to something that only knows a part of the region.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(16384);
   * const slice = bitmap.sliceAt(8192);
   * slice.markDirty(0, 1);
   * console.log(bitmap.isBitSet(2), slice.dirtyAt(0)); // true true
   * ```
   * @throws {InvalidArgumentError} if `offset` is not a non-negative safe integer.
   */
  sliceAt(offset: number): BitmapSlice {
    toIndex(offset, "AtomicBitmap.sliceAt", "offset");
    return new BitmapSlice(this, offset);
  }

  /**
   * What a Worker needs to share this bitmap: the buffer and the geometry, all structured-cloneable.
   * Post it and call {@link AtomicBitmap.fromShared} on the other side.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const { buffer, byteSize, pageSize, strictOrdering } = new AtomicBitmap(8192).toShared();
   * console.log(buffer.byteLength, byteSize, pageSize, strictOrdering); // 8 8192 4096 false
   * ```
   */
  toShared(): SharedBitmap {
    return {
      buffer: this.#buffer,
      byteSize: this.#byteSize,
      pageSize: this.#pageSize,
      strictOrdering: this.#strictOrdering,
    };
  }

  /**
   * The geometry and the dirty ranges, for `JSON.stringify`.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(8192);
   * bitmap.setBit(1);
   * console.log(JSON.stringify(bitmap));
   * // {"byteSize":8192,"pageSize":4096,"pages":2,"dirtyRuns":[[4096,4096]],"dirtyPages":1}
   * ```
   */
  toJSON(): AtomicBitmapJson {
    const dirtyRuns = this.dirtyRuns();
    let dirtyPages = 0;
    // Every run but a last one clipped to byteSize is whole pages: its length / pageSize is exact.
    for (let i = 0; i < dirtyRuns.length; i++) dirtyPages += Math.ceil(dirtyRuns[i][1] / this.#pageSize);
    return { byteSize: this.#byteSize, pageSize: this.#pageSize, pages: this.#pages, dirtyRuns, dirtyPages };
  }

  /** The geometry and the dirty runs, for `console.log`. @example `console.log(bitmap)` */
  [Symbol.for("Deno.customInspect")](): string {
    return inspectBitmap(this);
  }

  /** The same text for Node's and Bun's `util.inspect`. @example `console.log(bitmap)` */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return inspectBitmap(this);
  }
}

/** Allocates the bits, turning an allocation failure into an error naming `byteSize`. */
function allocate(bytes: number, op: string, byteSize: number): SharedArrayBuffer {
  try {
    return new SharedArrayBuffer(bytes);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new InvalidArgumentError(
      op,
      "byteSize",
      byteSize,
      `needs a ${bytes}-byte bitmap, which cannot be allocated (${e.message})`,
    );
  }
}

/**
 * A view of a {@link Bitmap} starting `offset` bytes into it: `markDirty(o, l)` marks `[offset +
 * o, offset + o + l)` of the underlying bitmap. vm-memory's `BaseSlice` (`RefSlice`); a slice of a
 * slice is a slice of the underlying bitmap at the summed offset. Like the bitmap, its `markDirty`
 * allocates nothing.
 *
 * @example
 * ```ts
 * import { AtomicBitmap, BitmapSlice } from "./atomic_bitmap.ts";
 * const bitmap = new AtomicBitmap(8 * 4096);
 * const slice = new BitmapSlice(bitmap, 4096).sliceAt(4096); // starts at byte 8192
 * slice.markDirty(4096, 8);
 * console.log(slice.offset, bitmap.isBitSet(3)); // 8192 true
 * ```
 */
export class BitmapSlice implements Bitmap {
  readonly #bitmap: Bitmap;
  readonly #offset: number;

  /**
   * A view of `bitmap` starting at its byte `offset`.
   *
   * @example
   * ```ts
   * import { AtomicBitmap, BitmapSlice } from "./atomic_bitmap.ts";
   * const slice = new BitmapSlice(new AtomicBitmap(8192), 4096);
   * console.log(slice.offset); // 4096
   * ```
   * @throws {InvalidArgumentError} if `offset` is not a non-negative safe integer.
   */
  constructor(bitmap: Bitmap, offset: number) {
    const op = "BitmapSlice.constructor";
    if (
      bitmap === null || typeof bitmap !== "object" || typeof bitmap.markDirty !== "function" ||
      typeof bitmap.dirtyAt !== "function"
    ) {
      // Checked here: a wrong bitmap would only fail at the first write, far from the cause.
      throw new InvalidArgumentError(op, "bitmap", bitmap, "must be a Bitmap (markDirty and dirtyAt)");
    }
    toIndex(offset, op, "offset");
    this.#bitmap = bitmap;
    this.#offset = offset;
  }

  /**
   * The bitmap this slice views.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(8192);
   * console.log(bitmap.sliceAt(1).sliceAt(2).bitmap === bitmap); // true
   * ```
   */
  get bitmap(): Bitmap {
    return this.#bitmap;
  }

  /**
   * Where the slice starts in {@link BitmapSlice.bitmap}, in bytes.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * console.log(new AtomicBitmap(8192).sliceAt(1).sliceAt(2).offset); // 3
   * ```
   */
  get offset(): number {
    return this.#offset;
  }

  /**
   * Marks `[offset, offset + len)` of the slice, that is `[this.offset + offset, … + len)` of the
   * bitmap. Allocates nothing.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(16384);
   * bitmap.sliceAt(4096).markDirty(4096, 8);
   * console.log(bitmap.isBitSet(2)); // true
   * ```
   * Bytes at 2^53 and beyond in the bitmap are past the end of any bitmap, and are ignored as the
   * bitmap ignores bytes past its end (a write that already happened must not fail in its log).
   * @throws {InvalidArgumentError} if `offset` or `len` is not a non-negative safe integer.
   */
  markDirty(offset: number, len: number): void {
    // A negative offset must not be absorbed by the base; anything wrong is reported under this
    // slice's op, not the bitmap's.
    if (Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(len) && len >= 0) {
      const at = this.#offset + offset;
      if (Number.isSafeInteger(at + len)) return this.#bitmap.markDirty(at, len);
      if (at < 2 ** 53 && len > 0) this.#bitmap.markDirty(at, 2 ** 53 - at); // the part below 2^53
      return;
    }
    const op = "BitmapSlice.markDirty";
    toIndex(offset, op, "offset");
    toIndex(len, op, "len");
  }

  /**
   * True if byte `offset` of the slice lies in a marked page.
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * const bitmap = new AtomicBitmap(16384);
   * bitmap.setBit(1);
   * console.log(bitmap.sliceAt(4000).dirtyAt(96), bitmap.sliceAt(4000).dirtyAt(95)); // true false
   * ```
   * @throws {InvalidArgumentError} if `offset` is not a non-negative safe integer.
   */
  dirtyAt(offset: number): boolean {
    toIndex(offset, "BitmapSlice.dirtyAt", "offset");
    const at = this.#offset + offset;
    return Number.isSafeInteger(at) && this.#bitmap.dirtyAt(at); // 2^53 and beyond: past any bitmap's end
  }

  /**
   * A slice starting `offset` bytes into this one (a slice of the same bitmap).
   *
   * @example
   * ```ts
   * import { AtomicBitmap } from "./atomic_bitmap.ts";
   * console.log(new AtomicBitmap(8192).sliceAt(100).sliceAt(28).offset); // 128
   * ```
   * @throws {InvalidArgumentError} if `offset` is not a non-negative safe integer, or the new
   *   slice's offset in the bitmap is not one.
   */
  sliceAt(offset: number): BitmapSlice {
    const op = "BitmapSlice.sliceAt";
    const base = indexSum(this.#offset, offset, op, "offset", (sum) => `puts the slice at ${sum}, past 2^53 - 1`);
    return new BitmapSlice(this.#bitmap, base);
  }
}
