// Dirty page tracking: every kind of write marks exactly the pages it touched; reads never do.
import assert from "node:assert/strict";
import { GuestMemoryMmap } from "../mod.ts";
import { clearDirty, dirtyPages } from "./fixtures/guest_assert.ts";

const PAGE = 0x1000;

/** Two adjacent regions of four 4 KiB pages each, with dirty tracking. */
function tracked(): GuestMemoryMmap {
  return GuestMemoryMmap.fromRanges([[0, 4 * PAGE], [4 * PAGE, 4 * PAGE]], { dirtyPageSize: PAGE });
}

/** Runs `action` on clean bitmaps and returns the dirty pages of each region afterwards. */
function dirtiedBy(mem: GuestMemoryMmap, action: () => unknown): [number[], number[]] {
  clearDirty(mem);
  action();
  const [a, b] = mem.regions();
  return [dirtyPages(a), dirtyPages(b)];
}

Deno.test("dirty: buffer writes mark every page they touch, per region, and nothing else", () => {
  using mem = tracked();
  assert.deepEqual(dirtiedBy(mem, () => mem.write(new Uint8Array(0x10), 0x3ff8)), [[3], [0]]);
  assert.deepEqual(dirtiedBy(mem, () => mem.writeSlice(new Uint8Array(0x2001), 0xfff)), [[0, 1, 2], []]);
  assert.deepEqual(dirtiedBy(mem, () => mem.writeSlice(new Uint8Array(1), 0x7fff)), [[], [3]]);
  assert.deepEqual(dirtiedBy(mem, () => mem.write(new Uint8Array(8 * PAGE), 0)), [[0, 1, 2, 3], [0, 1, 2, 3]]);
  assert.deepEqual(dirtiedBy(mem, () => mem.write(new Uint8Array(0), 0x1000)), [[], []]);
});

Deno.test("dirty: a partial write into a hole marks only what was written", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 2 * PAGE]], { dirtyPageSize: PAGE });
  clearDirty(mem);
  assert.throws(() => mem.writeSlice(new Uint8Array(0x10), 0x1ff8));
  assert.deepEqual(dirtyPages(mem.regions()[0]), [1]);
});

Deno.test("dirty: scalar writes mark their pages, aligned or straddling a page or region boundary", () => {
  using mem = tracked();
  const cases: Array<[string, () => void, [number[], number[]]]> = [
    ["writeU8", () => mem.writeU8(0x1000, 1), [[1], []]],
    ["writeU16 across pages", () => mem.writeU16(0x1fff, 1), [[1, 2], []]],
    ["writeU32 across pages", () => mem.writeU32(0x2ffe, 1), [[2, 3], []]],
    ["writeU64 across regions", () => mem.writeU64(0x3ffc, 1n), [[3], [0]]],
    ["writeU64 aligned", () => mem.writeU64(0x5008, 1n), [[], [1]]],
    ["writeI8", () => mem.writeI8(0x6000, -1), [[], [2]]],
    ["writeI16", () => mem.writeI16(0x7ffe, -1), [[], [3]]],
    ["writeI32", () => mem.writeI32(0x0, -1), [[0], []]],
    ["writeI64", () => mem.writeI64(0x2000, -1n), [[2], []]],
    ["writeF32", () => mem.writeF32(0x4000, 1.5), [[], [0]]],
    ["writeF64 unaligned", () => mem.writeF64(0x4ffd, 1.5), [[], [0, 1]]],
    ["writeU16BE", () => mem.writeU16BE(0x3000, 1), [[3], []]],
    ["writeU32BE", () => mem.writeU32BE(0x3ffe, 1), [[3], [0]]],
    ["writeU64BE", () => mem.writeU64BE(0x1000, 1n), [[1], []]],
    ["writeI16BE", () => mem.writeI16BE(0x1000, -1), [[1], []]],
    ["writeI32BE", () => mem.writeI32BE(0x1000, -1), [[1], []]],
    ["writeI64BE", () => mem.writeI64BE(0x1000, -1n), [[1], []]],
    ["writeF32BE", () => mem.writeF32BE(0x6000, 2), [[], [2]]],
    ["writeF64BE", () => mem.writeF64BE(0x6ff8, 2), [[], [2]]],
  ];
  for (const [name, action, expected] of cases) {
    assert.deepEqual(dirtiedBy(mem, action), expected, name);
  }
});

Deno.test("dirty: atomic stores, adds, ors and successful compare-exchanges mark their page", () => {
  using mem = tracked();
  const cases: Array<[string, () => unknown, [number[], number[]]]> = [
    ["storeU8", () => mem.storeU8(0x1001, 1), [[1], []]],
    ["storeU16", () => mem.storeU16(0x2002, 1), [[2], []]],
    ["storeU32", () => mem.storeU32(0x3ffc, 1), [[3], []]],
    ["storeU64", () => mem.storeU64(0x4000, 1n), [[], [0]]],
    ["addU8", () => mem.addU8(0x5000, 1), [[], [1]]],
    ["addU16", () => mem.addU16(0x5002, 1), [[], [1]]],
    ["addU32", () => mem.addU32(0x6004, 1), [[], [2]]],
    ["addU64", () => mem.addU64(0x7ff8, 1n), [[], [3]]],
    ["orU8", () => mem.orU8(0x0, 1), [[0], []]],
    ["orU16", () => mem.orU16(0x1000, 1), [[1], []]],
    ["orU32", () => mem.orU32(0x2000, 1), [[2], []]],
    ["orU64", () => mem.orU64(0x3000, 1n), [[3], []]],
    ["compareExchangeU8", () => mem.compareExchangeU8(0x4100, 0, 1), [[], [0]]],
    ["compareExchangeU16", () => mem.compareExchangeU16(0x5100, 0, 1), [[], [1]]],
    ["compareExchangeU32", () => mem.compareExchangeU32(0x6100, 0, 1), [[], [2]]],
    ["compareExchangeU64", () => mem.compareExchangeU64(0x7100, 0, 1), [[], [3]]],
  ];
  for (const [name, action, expected] of cases) {
    assert.deepEqual(dirtiedBy(mem, action), expected, name);
  }
});

Deno.test("dirty: a compare-exchange that does not swap writes nothing and marks nothing", () => {
  using mem = tracked();
  mem.storeU32(0x1000, 5);
  mem.storeU64(0x6000, 5n);
  assert.deepEqual(dirtiedBy(mem, () => mem.compareExchangeU32(0x1000, 4, 9)), [[], []]);
  assert.deepEqual(dirtiedBy(mem, () => mem.compareExchangeU64(0x6000, 4n, 9n)), [[], []]);
  assert.deepEqual(dirtiedBy(mem, () => mem.compareExchangeU8(0x2000, 1, 9)), [[], []]);
  assert.deepEqual(dirtiedBy(mem, () => mem.compareExchangeU16(0x2000, 1, 9)), [[], []]);
});

Deno.test("dirty: readVolatileFrom marks the bytes it read from an array or a file, across regions", () => {
  using mem = tracked();
  assert.deepEqual(dirtiedBy(mem, () => mem.readVolatileFrom(0x3f00, new Uint8Array(0x200), 0x200)), [[3], [0]]);
  assert.deepEqual(
    dirtiedBy(mem, () => mem.readExactVolatileFrom(0x1800, new Uint8Array(0x1000), 0x1000)),
    [[1, 2], []],
  );
  const path = Deno.makeTempFileSync({ prefix: "gmem-dirty-" });
  try {
    Deno.writeFileSync(path, new Uint8Array(0x2000).fill(1));
    {
      using file = Deno.openSync(path, { read: true });
      assert.deepEqual(dirtiedBy(mem, () => mem.readVolatileFrom(0x3800, file, 0x1000)), [[3], [0]]);
    }
    Deno.truncateSync(path, 0x10);
    using short = Deno.openSync(path, { read: true });
    // Only 0x10 bytes arrive, all in page 0: the rest of the requested range stays clean.
    assert.deepEqual(dirtiedBy(mem, () => mem.readVolatileFrom(0xff0, short, 0x3000)), [[0], []]);
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("dirty: writes through slices mark the region's pages at the slice's position", () => {
  using mem = tracked();
  const slice = mem.getSlice(0x5000, 0x2000); // pages 1 and 2 of the second region
  assert.deepEqual(dirtiedBy(mem, () => slice.write(new Uint8Array(4), 0x1000)), [[], [2]]);
  assert.deepEqual(dirtiedBy(mem, () => slice.writeU32(0xffe, 1)), [[], [1, 2]]);
  assert.deepEqual(dirtiedBy(mem, () => slice.storeU64(0x1ff8, 1n)), [[], [2]]);
  assert.deepEqual(dirtiedBy(mem, () => slice.copyFrom(new Uint8Array(0x1001))), [[], [1, 2]]);
  assert.deepEqual(dirtiedBy(mem, () => slice.fill(0xff)), [[], [1, 2]]);
  assert.deepEqual(dirtiedBy(mem, () => slice.subslice(0x1800, 0x10).writeU8(0, 1)), [[], [2]]);
  assert.deepEqual(dirtiedBy(mem, () => slice.offset(0x1000).write(new Uint8Array(1), 0)), [[], [2]]);
  const [head, tail] = slice.splitAt(0x1000);
  assert.deepEqual(dirtiedBy(mem, () => tail.writeU8(0, 1)), [[], [2]]);
  assert.deepEqual(dirtiedBy(mem, () => head.writeU8(0xfff, 1)), [[], [1]]);
  assert.deepEqual(dirtiedBy(mem, () => slice.readVolatileFrom(0x800, new Uint8Array(0x1000), 0x1000)), [[], [1, 2]]);
});

Deno.test("dirty: copyToVolatileSlice marks the destination only", () => {
  using mem = tracked();
  const src = mem.getSlice(0x0, 0x100);
  const dst = mem.getSlice(0x7f80, 0x80);
  assert.deepEqual(dirtiedBy(mem, () => src.copyToVolatileSlice(dst)), [[], [3]]);
  const dstCross = mem.getSlice(0x2ff0, 0x20);
  assert.deepEqual(dirtiedBy(mem, () => mem.getSlice(0x4000, 0x20).copyToVolatileSlice(dstCross)), [[2, 3], []]);
});

Deno.test("dirty: writes through a region use region offsets", () => {
  using mem = tracked();
  const second = mem.regions()[1];
  assert.deepEqual(dirtiedBy(mem, () => second.writeU32(0x2000, 1)), [[], [2]]);
  assert.deepEqual(dirtiedBy(mem, () => second.write(new Uint8Array(2), 0xfff)), [[], [0, 1]]);
  assert.deepEqual(dirtiedBy(mem, () => second.storeU16(0x3ffe, 1)), [[], [3]]);
  assert.deepEqual(dirtiedBy(mem, () => second.readVolatileFrom(0x1000, new Uint8Array(8), 8)), [[], [1]]);
});

Deno.test("dirty: reads of every kind never mark a page", () => {
  using mem = tracked();
  const slice = mem.getSlice(0x1000, 0x1000);
  const reads: Array<[string, () => unknown]> = [
    ["read", () => mem.read(new Uint8Array(0x2000), 0x3000)],
    ["readSlice", () => mem.readSlice(new Uint8Array(0x10), 0x3ff8)],
    ["readU8", () => mem.readU8(0x1000)],
    ["readU16 unaligned", () => mem.readU16(0x1fff)],
    ["readU32", () => mem.readU32(0x2000)],
    ["readU64 across regions", () => mem.readU64(0x3ffc)],
    ["readI64BE", () => mem.readI64BE(0x5000)],
    ["readF64", () => mem.readF64(0x6000)],
    ["loadU8", () => mem.loadU8(0x1000)],
    ["loadU16", () => mem.loadU16(0x1002)],
    ["loadU32", () => mem.loadU32(0x2004)],
    ["loadU64", () => mem.loadU64(0x7ff8)],
    ["writeVolatileTo", () => mem.writeVolatileTo(0x3000, new Uint8Array(0x2000), 0x2000)],
    ["writeAllVolatileTo", () => mem.writeAllVolatileTo(0x3000, new Uint8Array(0x10), 0x10)],
    ["getSlices", () => mem.getSlices(0, 0x8000)],
    ["slice.read", () => slice.read(new Uint8Array(0x10), 0)],
    ["slice.copyTo", () => slice.copyTo(new Uint8Array(0x1000))],
    ["slice.loadU32", () => slice.loadU32(0x10)],
    ["slice as copy source", () => slice.copyToVolatileSlice(mem.getSlice(0x1000, 0))],
    ["region.readU32", () => mem.regions()[1].readU32(0)],
  ];
  for (const [name, action] of reads) {
    assert.deepEqual(dirtiedBy(mem, action), [[], []], name);
  }
});

Deno.test("dirty: raw views and host pointers are not tracked (as in vm-memory)", () => {
  using mem = tracked();
  assert.deepEqual(dirtiedBy(mem, () => mem.getSlice(0x1000, 0x10).bytes().fill(1)), [[], []]);
  assert.deepEqual(dirtiedBy(mem, () => mem.getSlice(0x2000, 0x10).dataView().setUint32(0, 1)), [[], []]);
  assert.equal(mem.readU8(0x1000), 1, "the raw write did land");
});

Deno.test("dirty: memory without dirty tracking has no bitmap and writes still work", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, PAGE]]);
  assert.equal(mem.regions()[0].bitmap, undefined);
  assert.equal(mem.getSlice(0, 4).dirtyLog, undefined);
  mem.writeU32(0, 1);
  mem.storeU32(4, 2);
  assert.equal(mem.readU64(0), (2n << 32n) | 1n);
});
