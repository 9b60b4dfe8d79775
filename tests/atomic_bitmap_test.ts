import assert from "node:assert/strict";
import { InvalidArgumentError } from "../src/core/errors.ts";
import { AtomicBitmap, type Bitmap, BitmapSlice } from "../src/bitmap/atomic_bitmap.ts";
import type { BitmapWorkerRequest } from "./fixtures/bitmap_worker.ts";

const PS = 4096;

function argumentError(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof InvalidArgumentError, String(e));
    return e;
  }
  assert.fail("nothing was thrown");
}

/** The indices of the set bits, read one by one with isBitSet. */
function setBits(bitmap: AtomicBitmap): number[] {
  const out: number[] = [];
  for (let i = 0; i < bitmap.len; i++) if (bitmap.isBitSet(i)) out.push(i);
  return out;
}

function popcount(words: BigUint64Array): number {
  let n = 0;
  for (let w of words) {
    for (; w !== 0n; w &= w - 1n) n++;
  }
  return n;
}

Deno.test("bitmap: pages are ceil(byteSize / pageSize), stored in whole 64-bit words of a SharedArrayBuffer", () => {
  const cases: Array<[number, number, number, number]> = [
    // byteSize, pageSize, pages, buffer bytes
    [0, PS, 0, 0],
    [1, PS, 1, 8],
    [PS, PS, 1, 8],
    [PS + 1, PS, 2, 8],
    [64 * PS, PS, 64, 8],
    [64 * PS + 1, PS, 65, 16],
    [100, 1, 100, 16],
    [1 << 30, 2 * 1024 * 1024, 512, 64],
  ];
  for (const [byteSize, pageSize, pages, bytes] of cases) {
    const b = new AtomicBitmap(byteSize, pageSize);
    assert.deepEqual([b.byteSize, b.pageSize, b.len, b.buffer.byteLength], [byteSize, pageSize, pages, bytes]);
    assert.ok(b.buffer instanceof SharedArrayBuffer);
    assert.equal(AtomicBitmap.bufferBytes(byteSize, pageSize), bytes);
  }
  assert.equal(new AtomicBitmap(10).pageSize, 4096);
  assert.equal(new AtomicBitmap(10).strictOrdering, false);
});

Deno.test("bitmap: an empty bitmap has no pages, ignores every mark and collects nothing", () => {
  const b = new AtomicBitmap(0);
  b.markDirty(0, 1);
  b.setAddrRange(0, 100_000);
  b.setBit(0);
  assert.equal(b.isBitSet(0), false);
  assert.equal(b.dirtyAt(0), false);
  assert.deepEqual(b.getAndReset(), new BigUint64Array(0));
  assert.deepEqual(b.dirtyRuns(), []);
  assert.deepEqual(b.snapshotAndReset(), []);
});

Deno.test("bitmap: a one-byte write at offset 0 marks page 0 only", () => {
  const b = new AtomicBitmap(4 * PS);
  b.markDirty(0, 1);
  assert.deepEqual(setBits(b), [0]);
});

Deno.test("bitmap: a two-byte write at pageSize - 1 marks pages 0 and 1", () => {
  const b = new AtomicBitmap(4 * PS);
  b.markDirty(PS - 1, 2);
  assert.deepEqual(setBits(b), [0, 1]);
});

Deno.test("bitmap: a range ending exactly on a page boundary marks only the pages it touches", () => {
  const b = new AtomicBitmap(8 * PS);
  b.setAddrRange(0, PS);
  assert.deepEqual(setBits(b), [0]);
  b.reset();
  b.setAddrRange(PS, 2 * PS);
  assert.deepEqual(setBits(b), [1, 2]);
  b.reset();
  b.setAddrRange(PS - 1, PS + 1); // bytes 4095..8191
  assert.deepEqual(setBits(b), [0, 1]);
  b.reset();
  b.markDirty(3 * PS + PS - 8, 8); // the last 8 bytes of page 3
  assert.deepEqual(setBits(b), [3]);
});

Deno.test("bitmap: a zero-length mark is a no-op, wherever it is", () => {
  const b = new AtomicBitmap(4 * PS);
  b.markDirty(0, 0);
  b.markDirty(PS, 0);
  b.setAddrRange(2 * PS + 5, 0);
  b.markDirty(1e15, 0);
  assert.deepEqual(setBits(b), []);
  b.setAddrRange(0, 4 * PS);
  b.resetAddrRange(0, 0);
  assert.deepEqual(setBits(b), [0, 1, 2, 3]);
});

Deno.test("bitmap: marks past the last page are ignored, a range crossing the end marks its in-range pages", () => {
  const b = new AtomicBitmap(3 * PS - 100); // 3 pages, the last partial
  b.markDirty(3 * PS, 8); // the first byte past the last page
  b.markDirty(1e12, 4096);
  b.markDirty(Number.MAX_SAFE_INTEGER, 1);
  b.markDirty(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER); // end rounds past 2^53: still ignored
  assert.deepEqual(setBits(b), []);
  b.markDirty(3 * PS - 100, 50); // past byteSize but inside the last page: page 2
  assert.deepEqual(setBits(b), [2]);
  b.markDirty(PS + 1, 1e9); // pages 1.. far past the end
  assert.deepEqual(setBits(b), [1, 2]);
  b.reset();
  b.markDirty(0, Number.MAX_SAFE_INTEGER); // the end saturates: every page
  assert.deepEqual(setBits(b), [0, 1, 2]);
  b.setBit(3);
  b.setBit(1000);
  b.resetBit(3);
  assert.equal(b.isBitSet(3), false);
  assert.equal(b.isBitSet(1e15), false);
  assert.equal(b.isAddrSet(3 * PS), false);
});

Deno.test("bitmap: getAndReset returns 64-bit words, page 64w + i in bit i of word w, and clears them", () => {
  const b = new AtomicBitmap(100 * PS);
  for (const page of [0, 31, 32, 63, 64]) b.setBit(page);
  assert.deepEqual(b.getAndReset(), new BigUint64Array([0x80000001_80000001n, 1n]));
  assert.deepEqual(b.getAndReset(), new BigUint64Array([0n, 0n]));
  assert.deepEqual(setBits(b), []);
  b.markDirty(99 * PS, 1);
  assert.deepEqual(b.getAndReset(), new BigUint64Array([0n, 1n << 35n]));
});

Deno.test("bitmap: a range over several words sets exactly its pages, whole words in one go", () => {
  const b = new AtomicBitmap(200 * PS);
  b.markDirty(5 * PS + 7, 70 * PS); // bytes in pages 5..75
  const words = b.getAndReset();
  assert.deepEqual(words, new BigUint64Array([0xffff_ffff_ffff_ffe0n, 0xfffn, 0n, 0n]));
  b.setAddrRange(0, 200 * PS); // 3 whole 64-bit words and 8 pages
  const all = 0xffff_ffff_ffff_ffffn;
  assert.deepEqual(b.getAndReset(), new BigUint64Array([all, all, all, 0xffn]));
});

Deno.test("bitmap: bits past the page count in a shared buffer are never reported", () => {
  const buffer = new SharedArrayBuffer(16);
  new Uint32Array(buffer).fill(0xffff_ffff);
  const b = new AtomicBitmap(3 * PS, PS, { buffer });
  assert.deepEqual(setBits(b), [0, 1, 2]);
  assert.equal(b.isBitSet(3), false);
  assert.deepEqual(b.dirtyRuns(), [[0, 3 * PS]]);
  assert.deepEqual(b.getAndReset(), new BigUint64Array([7n]));
});

Deno.test("bitmap: reset clears everything; resetAddrRange and resetBit clear exactly the pages touched", () => {
  const b = new AtomicBitmap(100 * PS);
  b.setAddrRange(0, 100 * PS);
  b.resetAddrRange(PS - 1, 2); // pages 0 and 1
  b.resetAddrRange(30 * PS, 4 * PS); // pages 30..33, across a word boundary
  b.resetAddrRange(99 * PS, 1e9); // page 99, the rest past the end
  b.resetBit(50);
  b.resetBit(5000); // ignored
  const expected = [];
  for (let p = 2; p < 99; p++) if ((p < 30 || p > 33) && p !== 50) expected.push(p);
  assert.deepEqual(setBits(b), expected);
  b.reset();
  assert.deepEqual(setBits(b), []);
  assert.deepEqual(b.getAndReset(), new BigUint64Array(2));
});

Deno.test("bitmap: isAddrSet and dirtyAt look at the page holding the byte", () => {
  const b = new AtomicBitmap(4 * PS);
  b.markDirty(2 * PS + 100, 1);
  assert.deepEqual(
    [2 * PS - 1, 2 * PS, 3 * PS - 1, 3 * PS, 1e12].map((a) => [b.isAddrSet(a), b.dirtyAt(a)]),
    [[false, false], [true, true], [true, true], [false, false], [false, false]],
  );
});

Deno.test("bitmap: dirtyRuns merges neighbouring pages across words, ascending, and clips the last run", () => {
  const b = new AtomicBitmap(100 * PS - 10);
  assert.deepEqual(b.dirtyRuns(), []);
  b.setAddrRange(30 * PS, 4 * PS); // pages 30..33 cross a 32-bit word
  b.setBit(0);
  b.setBit(2);
  b.setAddrRange(64 * PS, 32 * PS); // pages 64..95: one whole 32-bit word
  b.setBit(96);
  b.setBit(99); // the last page, 10 bytes short
  assert.deepEqual(b.dirtyRuns(), [
    [0, PS],
    [2 * PS, PS],
    [30 * PS, 4 * PS],
    [64 * PS, 33 * PS],
    [99 * PS, PS - 10],
  ]);
  b.setAddrRange(0, 100 * PS);
  assert.deepEqual(b.dirtyRuns(), [[0, 100 * PS - 10]]);
  assert.deepEqual(b.snapshotAndReset(), [[0, 100 * PS - 10]]);
  assert.deepEqual(b.snapshotAndReset(), []);
  assert.deepEqual(setBits(b), []);
});

Deno.test("bitmap: snapshotAndReset returns the runs dirtyRuns would and leaves the bitmap clean", () => {
  const b = new AtomicBitmap(40 * PS);
  b.markDirty(31 * PS, 2 * PS);
  b.markDirty(5, 5);
  const runs = b.dirtyRuns();
  assert.deepEqual(runs, [[0, PS], [31 * PS, 2 * PS]]);
  assert.deepEqual(b.snapshotAndReset(), runs);
  assert.deepEqual(b.getAndReset(), new BigUint64Array([0n]));
});

Deno.test("bitmap: enlarge keeps the bits, adds clean pages and moves to a new buffer", () => {
  const b = new AtomicBitmap(3 * PS);
  b.setBit(0);
  b.setBit(2);
  const old = b.buffer;
  const oldView = AtomicBitmap.fromShared({ buffer: old, byteSize: 3 * PS, pageSize: PS });
  b.enlarge(100 * PS + 1);
  assert.deepEqual([b.byteSize, b.len, b.buffer.byteLength], [103 * PS + 1, 104, 16]);
  assert.notEqual(b.buffer, old);
  assert.deepEqual(setBits(b), [0, 2]);
  b.setBit(103);
  b.setBit(1);
  assert.deepEqual(setBits(b), [0, 1, 2, 103]);
  assert.deepEqual(setBits(oldView), [0, 2]); // the old buffer no longer follows
  const same = b.buffer;
  b.enlarge(0);
  assert.equal(b.buffer, same);
  assert.equal(b.len, 104);
  const e = new AtomicBitmap(0);
  e.enlarge(1);
  e.markDirty(0, 1);
  assert.deepEqual(e.getAndReset(), new BigUint64Array([1n]));
});

Deno.test("bitmap: slices mark and read at their offset, and slices of slices add up", () => {
  const b = new AtomicBitmap(16 * PS);
  const s: Bitmap = b.sliceAt(4 * PS + 100);
  s.markDirty(0, 1); // byte 4*PS + 100: page 4
  s.markDirty(PS - 100, 8); // page 5
  assert.deepEqual(setBits(b), [4, 5]);
  assert.equal(s.dirtyAt(0), true);
  assert.equal(s.dirtyAt(2 * PS - 101), true); // last byte of page 5
  assert.equal(s.dirtyAt(2 * PS - 100), false); // first byte of page 6
  const ss = b.sliceAt(PS).sliceAt(PS).sliceAt(10);
  assert.ok(ss instanceof BitmapSlice);
  assert.equal(ss.offset, 2 * PS + 10);
  assert.equal(ss.bitmap, b);
  ss.markDirty(PS, PS); // bytes 3*PS + 10 .. 4*PS + 9: pages 3 and 4
  assert.deepEqual(setBits(b), [3, 4, 5]);
  ss.markDirty(1e9, 8); // past the end: ignored
  ss.markDirty(0, 0);
  assert.deepEqual(setBits(b), [3, 4, 5]);
  const direct = new BitmapSlice(b, 15 * PS);
  direct.markDirty(PS - 1, 100); // page 15, the rest past the end
  assert.deepEqual(setBits(b), [3, 4, 5, 15]);
});

Deno.test("bitmap: invalid arguments throw InvalidArgumentError naming the operation and the argument", () => {
  const b = new AtomicBitmap(4 * PS);
  const cases: Array<[() => unknown, string, string]> = [
    [() => new AtomicBitmap(-1), "AtomicBitmap.constructor", "byteSize"],
    [() => new AtomicBitmap(1.5), "AtomicBitmap.constructor", "byteSize"],
    [() => new AtomicBitmap(NaN), "AtomicBitmap.constructor", "byteSize"],
    [() => new AtomicBitmap(2 ** 53), "AtomicBitmap.constructor", "byteSize"],
    [() => new AtomicBitmap("4096" as unknown as number), "AtomicBitmap.constructor", "byteSize"],
    [() => new AtomicBitmap(PS, 0), "AtomicBitmap.constructor", "pageSize"],
    [() => new AtomicBitmap(PS, 3), "AtomicBitmap.constructor", "pageSize"],
    [() => new AtomicBitmap(PS, -4096), "AtomicBitmap.constructor", "pageSize"],
    [() => new AtomicBitmap(PS, 4096.5), "AtomicBitmap.constructor", "pageSize"],
    [() => new AtomicBitmap(PS, 4096n as unknown as number), "AtomicBitmap.constructor", "pageSize"],
    [() => new AtomicBitmap(PS, PS, null as unknown as undefined), "AtomicBitmap.constructor", "options"],
    [
      () => new AtomicBitmap(PS, PS, { buffer: new ArrayBuffer(8) as unknown as SharedArrayBuffer }),
      "AtomicBitmap.constructor",
      "options.buffer",
    ],
    [
      () => new AtomicBitmap(65 * PS, PS, { buffer: new SharedArrayBuffer(8) }),
      "AtomicBitmap.constructor",
      "options.buffer",
    ],
    [
      () => new AtomicBitmap(PS, PS, { strictOrdering: 1 as unknown as boolean }),
      "AtomicBitmap.constructor",
      "options.strictOrdering",
    ],
    [() => new AtomicBitmap(Number.MAX_SAFE_INTEGER, 1), "AtomicBitmap.constructor", "byteSize"], // a 1 PiB bitmap
    [() => b.markDirty(-1, 1), "AtomicBitmap.markDirty", "offset"],
    [() => b.markDirty(1.5, 1), "AtomicBitmap.markDirty", "offset"],
    [() => b.markDirty(NaN, 1), "AtomicBitmap.markDirty", "offset"],
    [() => b.markDirty(0n as unknown as number, 1), "AtomicBitmap.markDirty", "offset"],
    [() => b.markDirty(0, -1), "AtomicBitmap.markDirty", "len"],
    [() => b.markDirty(0, 0.5), "AtomicBitmap.markDirty", "len"],
    [() => b.markDirty(0, Infinity), "AtomicBitmap.markDirty", "len"],
    [() => b.setAddrRange(-PS, 1), "AtomicBitmap.setAddrRange", "offset"],
    [() => b.resetAddrRange(-1, 1), "AtomicBitmap.resetAddrRange", "start"],
    [() => b.resetAddrRange(0, -1), "AtomicBitmap.resetAddrRange", "len"],
    [() => b.setBit(-1), "AtomicBitmap.setBit", "index"],
    [() => b.resetBit(0.5), "AtomicBitmap.resetBit", "index"],
    [() => b.isBitSet(-1), "AtomicBitmap.isBitSet", "index"],
    [() => b.isAddrSet(-1), "AtomicBitmap.isAddrSet", "addr"],
    [() => b.dirtyAt(NaN), "AtomicBitmap.dirtyAt", "offset"],
    [() => b.enlarge(-1), "AtomicBitmap.enlarge", "additionalBytes"],
    [() => b.enlarge(Number.MAX_SAFE_INTEGER), "AtomicBitmap.enlarge", "additionalBytes"],
    [() => b.sliceAt(-1), "AtomicBitmap.sliceAt", "offset"],
    [() => b.sliceAt(0).markDirty(-1, 1), "BitmapSlice.markDirty", "offset"],
    [() => b.sliceAt(PS).markDirty(-1, 1), "BitmapSlice.markDirty", "offset"],
    [() => b.sliceAt(0).markDirty(0, -1), "BitmapSlice.markDirty", "len"],
    [() => b.sliceAt(0).dirtyAt(-1), "BitmapSlice.dirtyAt", "offset"],
    [() => b.sliceAt(0).sliceAt(-1), "BitmapSlice.sliceAt", "offset"],
    [() => b.sliceAt(2 ** 52).sliceAt(2 ** 52), "BitmapSlice.sliceAt", "offset"],
    [() => b.sliceAt(0).markDirty(1n as unknown as number, 1), "BitmapSlice.markDirty", "offset"],
    [() => b.sliceAt(PS).markDirty(1.5, 1), "BitmapSlice.markDirty", "offset"],
    [() => new BitmapSlice(b, NaN), "BitmapSlice.constructor", "offset"],
    [() => AtomicBitmap.fromShared(null as unknown as never), "AtomicBitmap.fromShared", "shared"],
    [
      () =>
        AtomicBitmap.fromShared({
          buffer: new ArrayBuffer(8) as unknown as SharedArrayBuffer,
          byteSize: 1,
          pageSize: 1,
        }),
      "AtomicBitmap.fromShared",
      "shared.buffer",
    ],
    [
      () => AtomicBitmap.fromShared({ buffer: new SharedArrayBuffer(8), byteSize: 1, pageSize: 6 }),
      "AtomicBitmap.constructor",
      "pageSize",
    ],
  ];
  for (const [fn, op, argument] of cases) {
    const e = argumentError(fn);
    assert.equal(e.kind, "InvalidArgument");
    assert.deepEqual([e.op, e.argument], [op, argument], e.message);
    assert.ok(e.message.startsWith(`${op}: ${argument} `), e.message);
  }
  assert.equal(
    argumentError(() => new AtomicBitmap(PS, 3)).message,
    "AtomicBitmap.constructor: pageSize must be a power of two (1, 2, 4, …, 4096, …), got 3",
  );
  assert.equal(
    argumentError(() => b.markDirty(-1, 1)).message,
    "AtomicBitmap.markDirty: offset must not be negative, got -1",
  );
  assert.deepEqual(setBits(b), []); // nothing was marked on the way
});

Deno.test("bitmap: page indices past 2^32 are not wrapped into low bits", () => {
  // pageSize 1 makes a bitmap with more than 2^32 pages cheap (512 MiB of lazily zeroed memory).
  const b = new AtomicBitmap(2 ** 32 + 64, 1);
  b.markDirty(2 ** 32 + 5, 1);
  b.markDirty(2 ** 31 + 3, 1);
  assert.equal(b.isBitSet(2 ** 32 + 5), true);
  assert.equal(b.isBitSet(2 ** 31 + 3), true);
  assert.equal(b.isBitSet(5), false);
  assert.equal(b.isBitSet(3), false);
  b.markDirty(2 ** 32 + 62, 10); // pages 2^32 + 62, 2^32 + 63, the rest past the end
  assert.equal(b.isAddrSet(2 ** 32 + 63), true);
  b.resetBit(2 ** 32 + 5);
  assert.equal(b.isBitSet(2 ** 32 + 5), false);
});

Deno.test("bitmap: one-byte pages and pages larger than 2^31 bytes count pages exactly", () => {
  const bytes = new AtomicBitmap(100, 1);
  bytes.markDirty(31, 3); // pages 31..33
  bytes.markDirty(99, 1);
  assert.deepEqual(setBits(bytes), [31, 32, 33, 99]);
  assert.deepEqual(bytes.dirtyRuns(), [[31, 3], [99, 1]]);
  const huge = new AtomicBitmap(3 * 2 ** 33, 2 ** 33); // 3 pages of 8 GiB
  huge.markDirty(2 ** 31 - 1, 2); // inside page 0
  huge.markDirty(2 ** 33 + 5, 8); // page 1
  assert.deepEqual(setBits(huge), [0, 1]);
  huge.markDirty(2 ** 33 - 1, 2); // pages 0 and 1
  huge.markDirty(2 * 2 ** 33, 1); // page 2
  assert.deepEqual(huge.dirtyRuns(), [[0, 3 * 2 ** 33]]);
  const twoGiB = new AtomicBitmap(2 ** 33, 2 ** 31); // pages of exactly 2^31 bytes
  twoGiB.markDirty(2 ** 31 - 1, 1);
  twoGiB.markDirty(2 ** 31, 1);
  twoGiB.markDirty(3 * 2 ** 31 + 7, 1);
  assert.deepEqual(setBits(twoGiB), [0, 1, 3]);
});

Deno.test("bitmap: strictOrdering marks and collects the same bits, and travels with toShared", () => {
  const strict = new AtomicBitmap(100 * PS, PS, { strictOrdering: true });
  const plain = new AtomicBitmap(100 * PS);
  for (const b of [strict, plain]) {
    b.markDirty(PS - 1, 2);
    b.markDirty(PS - 1, 2); // already dirty
    b.markDirty(30 * PS, 40 * PS);
    b.markDirty(30 * PS, 40 * PS);
  }
  assert.deepEqual(strict.dirtyRuns(), plain.dirtyRuns());
  assert.deepEqual(strict.getAndReset(), plain.getAndReset());
  const shared = strict.toShared();
  assert.equal(shared.strictOrdering, true);
  assert.equal(AtomicBitmap.fromShared(structuredClone(shared)).strictOrdering, true);
});

Deno.test("bitmap: toShared survives structured cloning and fromShared shares the same bits", () => {
  const a = new AtomicBitmap(10 * PS, PS);
  const desc = structuredClone(a.toShared());
  assert.deepEqual([desc.byteSize, desc.pageSize, desc.strictOrdering], [10 * PS, PS, false]);
  const b = AtomicBitmap.fromShared(desc);
  b.markDirty(3 * PS, 1);
  a.markDirty(7 * PS, 1);
  assert.deepEqual(setBits(a), [3, 7]);
  assert.deepEqual(setBits(b), [3, 7]);
  assert.deepEqual(a.getAndReset(), new BigUint64Array([0x88n]));
  assert.deepEqual(setBits(b), []);
});

/** The dirty runs of raw words, page by page: what dirtyRuns must give. */
function modelRuns(words: Int32Array, pages: number, pageSize: number, byteSize: number): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  let start = -1;
  for (let p = 0; p <= pages; p++) {
    const set = p < pages && (words[p >> 5] & (1 << (p & 31))) !== 0;
    if (set && start < 0) start = p;
    if (!set && start >= 0) {
      runs.push([start * pageSize, Math.min(p * pageSize, byteSize) - start * pageSize]);
      start = -1;
    }
  }
  return runs;
}

Deno.test("bitmap: dirtyRuns, snapshotAndReset and toJSON match a page-by-page model for random raw words, padding bits included", () => {
  let seed = 0x2545f491;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  // Page counts around word edges; the buffer rounds up to 64-bit words, so some have a whole
  // padding word after the last valid one, and every value of the raw words is tried there too.
  for (const pages of [1, 2, 31, 32, 33, 63, 64, 65, 95, 96, 97, 128, 129, 300]) {
    for (const pageSize of [64, PS]) {
      for (const shortBy of [0, 1, pageSize - 1]) {
        const byteSize = pages * pageSize - shortBy;
        const b = new AtomicBitmap(byteSize, pageSize);
        const words = new Int32Array(b.toShared().buffer);
        for (let round = 0; round < 12; round++) {
          const density = next() % 4; // 0: sparse, 1: dense, 2: half, 3: whole words
          for (let w = 0; w < words.length; w++) {
            const r = next() | 0, r2 = next() | 0;
            words[w] = density === 0 ? r & r2 & next() : density === 1 ? r | r2 : density === 2 ? r : (r & 1 ? -1 : 0);
          }
          const expected = modelRuns(words, pages, pageSize, byteSize);
          const dirtyPages = expected.reduce((n, [, len]) => n + Math.ceil(len / pageSize), 0);
          const what = `${pages} pages of ${pageSize}, ${shortBy} short, round ${round}`;
          assert.deepEqual(b.dirtyRuns(), expected, what);
          const json = b.toJSON();
          assert.deepEqual(json, { byteSize, pageSize, pages, dirtyRuns: expected, dirtyPages }, what);
          assert.deepEqual(b.snapshotAndReset(), expected, what);
          assert.deepEqual(b.dirtyRuns(), [], what);
        }
      }
    }
  }
});

Deno.test("bitmap: toJSON gives the geometry and the dirty runs", () => {
  const b = new AtomicBitmap(3 * PS - 1);
  b.markDirty(PS, 2 * PS);
  assert.equal(
    JSON.stringify(b),
    `{"byteSize":${3 * PS - 1},"pageSize":${PS},"pages":3,"dirtyRuns":[[${PS},${2 * PS - 1}]],"dirtyPages":2}`,
  );
});

Deno.test("bitmap: a Worker marking odd pages while the main thread marks even ones loses no bit", async () => {
  const ROUNDS = 200;
  const bitmap = new AtomicBitmap(501 * PS);
  const control = new Int32Array(new SharedArrayBuffer(8));
  const worker = new Worker(new URL("./fixtures/bitmap_worker.ts", import.meta.url).href, { type: "module" });
  try {
    const messages: string[] = [];
    let wake: () => void = () => {};
    worker.onmessage = (e: MessageEvent<string>) => {
      messages.push(e.data);
      wake();
    };
    const errored = new Promise<never>((_, reject) => {
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`worker failed: ${e.message}`));
      };
    });
    const next = () => Promise.race([new Promise<void>((resolve) => (wake = resolve)), errored]);
    const request: BitmapWorkerRequest = {
      shared: bitmap.toShared(),
      control: control.buffer,
      rounds: ROUNDS,
      pageSize: PS,
    };
    worker.postMessage(request);
    await next();
    assert.deepEqual(messages, ["ready"]);
    let overlapped = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      Atomics.store(control, 0, round); // start: the worker is spinning on this
      for (let page = 2; page <= 500; page += 2) bitmap.markDirty(page * PS + 128, 8);
      for (let page = 500; page >= 2; page -= 2) bitmap.markDirty(page * PS + PS - 1, 1);
      if (Atomics.load(control, 1) < round) overlapped++; // the worker was still marking
      const deadline = Date.now() + 30_000;
      while (Atomics.load(control, 1) < round) {
        if (Date.now() > deadline) assert.fail(`the worker never finished round ${round}`);
      }
      for (let page = 1; page <= 500; page++) {
        if (!bitmap.isBitSet(page)) assert.fail(`round ${round}: page ${page} lost its mark`);
      }
      assert.equal(bitmap.isBitSet(0), false);
      const words = bitmap.getAndReset();
      assert.equal(popcount(words), 500, `round ${round}`);
      assert.equal(popcount(bitmap.getAndReset()), 0);
    }
    await next();
    assert.deepEqual(messages, ["ready", "done"]);
    console.log(`rounds in which both threads were marking at once: ${overlapped} of ${ROUNDS}`);
  } finally {
    worker.terminate();
  }
});
