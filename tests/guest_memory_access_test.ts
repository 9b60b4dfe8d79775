// Protection and lifetime: read-only memory refuses writes before touching a byte, and every
// operation after close throws RegionClosed naming the call.
import assert from "node:assert/strict";
import {
  type AtomicBitmap,
  GuestMemoryMmap,
  GuestRegionMmap,
  NoAccessError,
  PartialBufferError,
  PROT_NONE,
  PROT_READ,
  ReadOnlyError,
  RegionClosedError,
} from "../mod.ts";
import { MmapRegion } from "../mod.ts";
import { expectError } from "./fixtures/guest_assert.ts";

const SIZE = 0x2000;

/** Read-only guest memory at 0x10000 over a memfd whose other (writable) mapping is `ram`. */
function readOnlyMemory(): { mem: GuestMemoryMmap; ram: MmapRegion } & Disposable {
  const ram = MmapRegion.memfd(SIZE);
  ram.bytes().fill(0x11);
  const mem = GuestMemoryMmap.fromRangesWithFiles([[0x10000, SIZE, ram.fileOffset]], {
    prot: PROT_READ,
    dirtyPageSize: 0x1000,
  });
  return {
    mem,
    ram,
    [Symbol.dispose]() {
      mem.close();
      ram.close();
    },
  };
}

Deno.test("access: read-only memory reads normally", () => {
  using m = readOnlyMemory();
  assert.equal(m.mem.readU32(0x10000), 0x11111111);
  assert.equal(m.mem.loadU64(0x10008), 0x1111111111111111n);
  const out = new Uint8Array(4);
  assert.equal(m.mem.read(out, 0x11ff0), 4);
  assert.deepEqual([...out], [0x11, 0x11, 0x11, 0x11]);
  const sink = new Uint8Array(8);
  assert.equal(m.mem.writeVolatileTo(0x10000, sink, 8), 8);
  assert.equal(m.mem.getSlice(0x10000, 4).readU8(3), 0x11);
});

Deno.test("access: every kind of write to read-only memory throws ReadOnly and changes no byte or dirty bit", () => {
  using m = readOnlyMemory();
  const { mem } = m;
  const slice = mem.getSlice(0x10100, 0x10);
  const writes: Array<[string, () => unknown]> = [
    ["GuestMemoryMmap.write", () => mem.write(new Uint8Array(4), 0x10100)],
    ["GuestMemoryMmap.writeSlice", () => mem.writeSlice(new Uint8Array(4), 0x10100)],
    ["GuestMemoryMmap.writeU8", () => mem.writeU8(0x10100, 1)],
    ["GuestMemoryMmap.writeU16", () => mem.writeU16(0x10101, 1)],
    ["GuestMemoryMmap.writeU32", () => mem.writeU32(0x10100, 1)],
    ["GuestMemoryMmap.writeU64", () => mem.writeU64(0x10100n, 1n)],
    ["GuestMemoryMmap.writeF64BE", () => mem.writeF64BE(0x10100, 1)],
    ["GuestMemoryMmap.writeI32", () => mem.writeI32(0x10100, -1)],
    ["GuestMemoryMmap.storeU32", () => mem.storeU32(0x10100, 1)],
    ["GuestMemoryMmap.storeU64", () => mem.storeU64(0x10100, 1n)],
    ["GuestMemoryMmap.addU16", () => mem.addU16(0x10100, 1)],
    ["GuestMemoryMmap.orU8", () => mem.orU8(0x10100, 1)],
    ["GuestMemoryMmap.compareExchangeU32", () => mem.compareExchangeU32(0x10100, 0x11111111, 0)],
    ["GuestMemoryMmap.readVolatileFrom", () => mem.readVolatileFrom(0x10100, new Uint8Array(4), 4)],
    ["GuestMemoryMmap.readExactVolatileFrom", () => mem.readExactVolatileFrom(0x10100, new Uint8Array(4), 4)],
    ["GuestMemoryMmap.readVolatileFrom", () => mem.readVolatileFrom(0x10100, m.ram.fd!, 4)],
    ["VolatileSlice.write", () => slice.write(new Uint8Array(1), 0)],
    ["VolatileSlice.writeU32", () => slice.writeU32(0, 1)],
    ["VolatileSlice.storeU16", () => slice.storeU16(0, 1)],
    ["VolatileSlice.copyFrom", () => slice.copyFrom(new Uint8Array(4))],
    ["VolatileSlice.fill", () => slice.fill(0)],
    ["VolatileSlice.bytes", () => slice.bytes()],
    ["VolatileSlice.dataView", () => slice.dataView()],
    ["VolatileSlice.copyToVolatileSlice", () => mem.getSlice(0x10000, 4).copyToVolatileSlice(slice)],
    ["GuestRegionMmap.write", () => mem.regions()[0].write(new Uint8Array(1), 0x100)],
    ["GuestRegionMmap.storeU8", () => mem.regions()[0].storeU8(0x100, 1)],
  ];
  for (const [op, fn] of writes) {
    expectError(fn, ReadOnlyError, { kind: "ReadOnly", op, mentions: ["read-only"] });
  }
  assert.ok(m.ram.bytes().every((b) => b === 0x11), "no byte changed");
  assert.deepEqual((mem.regions()[0].bitmap as AtomicBitmap).dirtyRuns(), [], "no page marked dirty");
});

Deno.test("access: ReadOnly names the guest address range that was refused", () => {
  using m = readOnlyMemory();
  const e = expectError(() => m.mem.write(new Uint8Array(4), 0x10ffe), ReadOnlyError, {
    kind: "ReadOnly",
    op: "GuestMemoryMmap.write",
    mentions: ["guest address [0x10ffe, 0x11002)"],
  });
  assert.equal(e.offset, 0x10ffen);
  assert.equal(e.length, 4);
  const a = expectError(() => m.mem.storeU64(0x11000, 1n), ReadOnlyError, {
    kind: "ReadOnly",
    op: "GuestMemoryMmap.storeU64",
    mentions: ["[0x11000, 0x11008)"],
  });
  assert.equal(a.offset, 0x11000n);
});

Deno.test("access: a write running from writable into read-only memory stops at the boundary", () => {
  using ram = MmapRegion.memfd(0x1000);
  using rw = GuestRegionMmap.fromRange(0, 0x1000);
  using ro = GuestRegionMmap.fromRange(0x1000, 0x1000, ram.fileOffset, { prot: PROT_READ });
  const mem = GuestMemoryMmap.fromRegions([rw, ro]);
  assert.equal(mem.write(new Uint8Array(8).fill(0xab), 0xffc), 4);
  assert.equal(mem.readU32(0xffc), 0xabababab);
  assert.ok(ram.bytes().every((b) => b === 0));
  const e = expectError(() => mem.writeSlice(new Uint8Array(8), 0xffc), PartialBufferError, {
    kind: "PartialBuffer",
    op: "GuestMemoryMmap.writeSlice",
  });
  assert.deepEqual([e.expected, e.completed], [8, 4]);
});

Deno.test("access: memory without any access refuses reads with NoAccess", () => {
  using region = GuestRegionMmap.fromRange(0, 0x1000, undefined, { prot: PROT_NONE });
  const mem = GuestMemoryMmap.fromRegions([region]);
  expectError(() => mem.read(new Uint8Array(1), 0), NoAccessError, { kind: "NoAccess", op: "GuestMemoryMmap.read" });
  expectError(() => mem.readU32(0), NoAccessError, { kind: "NoAccess", op: "GuestMemoryMmap.readU32" });
  expectError(() => mem.loadU32(0), NoAccessError, { kind: "NoAccess", op: "GuestMemoryMmap.loadU32" });
  expectError(() => mem.writeU8(0, 1), NoAccessError, { kind: "NoAccess", op: "GuestMemoryMmap.writeU8" });
  expectError(() => mem.writeVolatileTo(0, new Uint8Array(4), 4), NoAccessError, {
    kind: "NoAccess",
    op: "GuestMemoryMmap.writeVolatileTo",
  });
});

Deno.test("access: protect() to read-only and back is seen by guest memory on the next access", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  mem.writeU32(0, 1);
  const region = mem.regions()[0];
  region.mmap.protect(PROT_READ);
  expectError(() => mem.writeU32(0, 2), ReadOnlyError, { kind: "ReadOnly", op: "GuestMemoryMmap.writeU32" });
  assert.equal(mem.readU32(0), 1);
  region.mmap.protect(PROT_READ | 0x2);
  mem.writeU32(0, 3);
  assert.equal(mem.readU32(0), 3);
});

Deno.test("access: every memory operation after close throws RegionClosed naming the call", () => {
  const mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x1000, 0x1000]]);
  const slice = mem.getSlice(0x800, 0x10);
  const view = slice.bytes();
  const region = mem.regions()[1];
  mem.close();
  assert.equal(view.length, 0, "old views are detached");
  const calls: Array<[string, () => unknown]> = [
    ["GuestMemoryMmap.read", () => mem.read(new Uint8Array(4), 0)],
    ["GuestMemoryMmap.write", () => mem.write(new Uint8Array(4), 0xffe)],
    ["GuestMemoryMmap.readSlice", () => mem.readSlice(new Uint8Array(4), 0x10n)],
    ["GuestMemoryMmap.writeSlice", () => mem.writeSlice(new Uint8Array(4), 0x10)],
    ["GuestMemoryMmap.readU8", () => mem.readU8(0)],
    ["GuestMemoryMmap.readU32", () => mem.readU32(0x1000)],
    ["GuestMemoryMmap.readU64", () => mem.readU64(0x1000n)],
    ["GuestMemoryMmap.writeU16", () => mem.writeU16(2, 1)],
    ["GuestMemoryMmap.writeF64", () => mem.writeF64(8, 1)],
    ["GuestMemoryMmap.loadU32", () => mem.loadU32(4)],
    ["GuestMemoryMmap.storeU64", () => mem.storeU64(8, 1n)],
    ["GuestMemoryMmap.addU32", () => mem.addU32(4, 1)],
    ["GuestMemoryMmap.compareExchangeU8", () => mem.compareExchangeU8(0, 0, 1)],
    ["GuestMemoryMmap.readVolatileFrom", () => mem.readVolatileFrom(0, new Uint8Array(4), 4)],
    ["GuestMemoryMmap.writeVolatileTo", () => mem.writeVolatileTo(0, new Uint8Array(4), 4)],
    ["GuestMemoryMmap.getSlice", () => mem.getSlice(0, 4)],
    ["GuestMemoryMmap.getSlices", () => mem.getSlices(0, 4)],
    ["GuestMemoryMmap.getHostAddress", () => mem.getHostAddress(0)],
    ["VolatileSlice.read", () => slice.read(new Uint8Array(1), 0)],
    ["VolatileSlice.writeU32", () => slice.writeU32(0, 1)],
    ["VolatileSlice.loadU32", () => slice.loadU32(0)],
    ["VolatileSlice.bytes", () => slice.bytes()],
    ["VolatileSlice.fill", () => slice.fill(1)],
    ["VolatileSlice.copyTo", () => slice.copyTo(new Uint8Array(4))],
    ["GuestRegionMmap.readU8", () => region.readU8(0)],
    ["GuestRegionMmap.getSlice", () => region.getSlice(0, 4)],
    ["GuestRegionMmap.getHostAddress", () => region.getHostAddress(0)],
  ];
  for (const [op, fn] of calls) {
    expectError(fn, RegionClosedError, { kind: "RegionClosed", op, mentions: ["closed"] });
  }
  mem.close(); // closing twice is harmless
});

Deno.test("access: closing a collection closes the regions every collection shares", () => {
  const mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  using extra = GuestRegionMmap.fromRange(0x1000, 0x1000);
  const bigger = mem.insertRegion(extra);
  mem.close();
  expectError(() => bigger.readU8(0), RegionClosedError, { kind: "RegionClosed", op: "GuestMemoryMmap.readU8" });
  assert.equal(bigger.readU8(0x1000), 0, "the region only the new collection holds is still open");
});
