// GuestRegionMmap: a mapping placed at a guest address, with Bytes on region offsets.
import assert from "node:assert/strict";
import {
  AtomicBitmap,
  FileOffset,
  GuestMemoryError,
  GuestRegionMmap,
  InvalidArgumentError,
  InvalidBackendAddressError,
  InvalidGuestRegionError,
  MisalignedError,
  MmapRegion,
  U64_MAX,
} from "../mod.ts";
import { dirtyPages, expectError, expectPartial } from "./fixtures/guest_assert.ts";

const U64_LIMIT = 1n << 64n;

Deno.test("region: fromRange places a fresh mapping at the guest base with exact bounds", () => {
  using r = GuestRegionMmap.fromRange(0x10_0000, 0x3000);
  assert.equal(r.startAddr, 0x100000n);
  assert.equal(r.len, 0x3000);
  assert.equal(r.lastAddr, 0x102fffn);
  assert.equal(r.mmap.size, 0x3000);
  assert.equal(r.bitmap, undefined);
  assert.equal(r.fileOffset, undefined);
  assert.equal(r.isHugetlbfs, undefined);
  assert.match(String(r), /^GuestRegionMmap\(\[0x100000, 0x102fff\], 0x3000 bytes, MmapRegion\(/);
});

Deno.test("region: fromRange with dirtyPageSize tracks pages of that size by region offset", () => {
  using r = GuestRegionMmap.fromRange(0x4000, 0x4000, undefined, { dirtyPageSize: 0x2000 });
  assert.ok(r.bitmap instanceof AtomicBitmap);
  assert.equal(r.bitmap.pageSize, 0x2000);
  assert.equal(r.bitmap.len, 2);
  r.writeU8(0x2000, 1);
  assert.deepEqual(dirtyPages(r), [1]);
});

Deno.test("region: the constructor wraps an existing mapping and an optional bitmap", () => {
  using mmap = MmapRegion.anonymous(0x2000);
  const bitmap = new AtomicBitmap(0x2000, 0x1000);
  const r = new GuestRegionMmap(mmap, 0x8000n, bitmap);
  assert.equal(r.mmap, mmap);
  assert.equal(r.bitmap, bitmap);
  r.writeU32(0x1000, 0xaabbccdd);
  assert.equal(bitmap.isBitSet(1), true);
  assert.equal(bitmap.isBitSet(0), false);
  assert.deepEqual([...mmap.bytes(0x1000, 4)], [0xdd, 0xcc, 0xbb, 0xaa]);
});

Deno.test("region: a region must end below 2^64; ending exactly there is InvalidGuestRegion", () => {
  using ok = GuestRegionMmap.fromRange(U64_LIMIT - 0x1001n, 0x1000);
  assert.equal(ok.lastAddr, U64_LIMIT - 2n);
  const e = expectError(() => GuestRegionMmap.fromRange(U64_LIMIT - 0x1000n, 0x1000), InvalidGuestRegionError, {
    kind: "InvalidGuestRegion",
    op: "GuestRegionMmap.fromRange",
    mentions: ["0xfffffffffffff000", "0x1000", "2^64"],
  });
  assert.equal(e.name, "InvalidGuestRegionError");
  assert.equal(e.base, U64_LIMIT - 0x1000n);
  assert.equal(e.size, 0x1000);
  using mmap = MmapRegion.anonymous(0x1000);
  expectError(() => new GuestRegionMmap(mmap, U64_MAX), GuestMemoryError, {
    kind: "InvalidGuestRegion",
    op: "GuestRegionMmap.constructor",
    mentions: ["0xffffffffffffffff"],
  });
  assert.equal(mmap.closed, false, "a refused constructor leaves the caller's mapping alone");
});

Deno.test("region: bad constructor arguments are InvalidArgument", () => {
  const notMmap = expectError(
    () => new GuestRegionMmap({} as MmapRegion, 0),
    InvalidArgumentError,
    { kind: "InvalidArgument", op: "GuestRegionMmap.constructor" },
  );
  assert.equal(notMmap.argument, "mmap");
  const size = expectError(() => GuestRegionMmap.fromRange(0, 0), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestRegionMmap.fromRange",
    mentions: ["must not be zero"],
  });
  assert.equal(size.argument, "size");
  const addr = expectError(() => GuestRegionMmap.fromRange(-0x1000, 0x1000), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestRegionMmap.fromRange",
  });
  assert.equal(addr.argument, "addr");
});

Deno.test("region: offset lookups (checkAddress, addressInRange, checkedOffset, toRegionAddr) are exact", () => {
  using r = GuestRegionMmap.fromRange(0x1000, 0x1000);
  assert.equal(r.checkAddress(0), 0n);
  assert.equal(r.checkAddress(0xfff), 0xfffn);
  assert.equal(r.checkAddress(0x1000), undefined);
  assert.equal(r.checkAddress(U64_MAX), undefined);
  assert.equal(r.addressInRange(0xfff), true);
  assert.equal(r.addressInRange(0x1000n), false);
  assert.equal(r.checkedOffset(0x800, 0x7ff), 0xfffn);
  assert.equal(r.checkedOffset(0x800, 0x800), undefined);
  assert.equal(r.checkedOffset(U64_MAX, 1), undefined);
  assert.equal(r.toRegionAddr(0x1000), 0n);
  assert.equal(r.toRegionAddr(0x1800n), 0x800n);
  assert.equal(r.toRegionAddr(0x1fff), 0xfffn);
  assert.equal(r.toRegionAddr(0xfff), undefined);
  assert.equal(r.toRegionAddr(0x2000), undefined);
  expectError(() => r.checkAddress(-1), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestRegionMmap.checkAddress",
  });
});

Deno.test("region: getHostAddress is the mapping base plus the offset; past the end is InvalidBackendAddress", () => {
  using r = GuestRegionMmap.fromRange(0x1000, 0x1000);
  assert.equal(r.getHostAddress(0), r.mmap.hostAddress);
  assert.equal(r.getHostAddress(0xfffn), r.mmap.hostAddress + 0xfffn);
  expectError(() => r.getHostAddress(0x1000), InvalidBackendAddressError, {
    kind: "InvalidBackendAddress",
    op: "GuestRegionMmap.getHostAddress",
    mentions: ["0x1000"],
  });
});

Deno.test("region: getSlice fits or is InvalidBackendAddress; an empty slice at the very end is fine", () => {
  using r = GuestRegionMmap.fromRange(0x1000, 0x1000);
  const s = r.getSlice(0xf00, 0x100);
  assert.equal(s.len, 0x100);
  assert.equal(s.hostAddress, r.mmap.hostAddress + 0xf00n);
  assert.equal(r.getSlice(0x1000, 0).len, 0);
  assert.equal(r.asVolatileSlice().len, 0x1000);
  expectError(() => r.getSlice(0xf00, 0x101), InvalidBackendAddressError, {
    kind: "InvalidBackendAddress",
    op: "GuestRegionMmap.getSlice",
    mentions: ["[0xf00, 0x1001)", "0x1000 bytes"],
  });
  expectError(() => r.getSlice(0x1001, 0), InvalidBackendAddressError, {
    kind: "InvalidBackendAddress",
    op: "GuestRegionMmap.getSlice",
  });
  expectError(() => r.getSlice(U64_MAX, 1), InvalidBackendAddressError, {
    kind: "InvalidBackendAddress",
    op: "GuestRegionMmap.getSlice",
  });
});

Deno.test("region: write and read clip at the region end and return the count", () => {
  using r = GuestRegionMmap.fromRange(0x1000, 0x1000);
  assert.equal(r.write(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), 0xffc), 4);
  const out = new Uint8Array(8);
  assert.equal(r.read(out, 0xffc), 4);
  assert.deepEqual([...out], [1, 2, 3, 4, 0, 0, 0, 0]);
  assert.equal(r.write(new Uint8Array(0x10), 0), 0x10);
});

Deno.test("region: an access starting at or past the end is InvalidBackendAddress naming the offset", () => {
  using r = GuestRegionMmap.fromRange(0x1000, 0x1000);
  for (
    const [op, fn] of [
      ["write", () => r.write(new Uint8Array(1), 0x1000)],
      ["read", () => r.read(new Uint8Array(1), 0x2000n)],
      ["readSlice", () => r.readSlice(new Uint8Array(1), U64_MAX)],
      ["readU32", () => r.readU32(0x1000)],
      ["writeU64", () => r.writeU64(0x1000, 1n)],
      ["loadU32", () => r.loadU32(0x1000)],
      ["storeU64", () => r.storeU64(0xffc, 1n)],
      ["readVolatileFrom", () => r.readVolatileFrom(0x1000, new Uint8Array(4), 4)],
      ["writeVolatileTo", () => r.writeVolatileTo(0x1000, new Uint8Array(4), 4)],
    ] as const
  ) {
    expectError(fn, InvalidBackendAddressError, {
      kind: "InvalidBackendAddress",
      op: `GuestRegionMmap.${op}`,
      mentions: ["past the end", "0x1000 bytes"],
    });
  }
});

Deno.test("region: zero-length accesses give 0 at any offset, even past the end", () => {
  using r = GuestRegionMmap.fromRange(0x1000, 0x1000);
  for (const off of [0, 0xfff, 0x1000, 0x5000, U64_MAX]) {
    assert.equal(r.write(new Uint8Array(0), off), 0);
    assert.equal(r.read(new Uint8Array(0), off), 0);
    r.writeSlice(new Uint8Array(0), off);
    assert.equal(r.readVolatileFrom(off, new Uint8Array(1), 0), 0);
    assert.equal(r.writeVolatileTo(off, new Uint8Array(1), 0), 0);
  }
});

Deno.test("region: a bad offset is InvalidArgument even for an empty buffer", () => {
  using r = GuestRegionMmap.fromRange(0, 0x1000);
  const e = expectError(() => r.write(new Uint8Array(0), -1), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestRegionMmap.write",
  });
  assert.equal(e.argument, "offset");
  expectError(() => r.read(new Uint8Array(0), 1n << 64n), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestRegionMmap.read",
  });
});

Deno.test("region: writeSlice/readSlice and scalars running past the end are PartialBuffer with exact numbers", () => {
  using r = GuestRegionMmap.fromRange(0x1000, 0x1000);
  const w = expectPartial(() => r.writeSlice(new Uint8Array(5).fill(9), 0xffe), "GuestRegionMmap.writeSlice", 5, 2, [
    "0xffe",
    "only 2 of 5",
  ]);
  assert.equal(w.addr, 0xffen);
  assert.equal(r.readU16(0xffe), 0x0909);
  expectPartial(() => r.readSlice(new Uint8Array(3), 0xfff), "GuestRegionMmap.readSlice", 3, 1);
  expectPartial(() => r.readU32(0xffe), "GuestRegionMmap.readU32", 4, 2);
  expectPartial(() => r.writeU64(0xffc, 1n), "GuestRegionMmap.writeU64", 8, 4);
});

Deno.test("region: scalars of every width and byte order round-trip at region offsets", () => {
  using r = GuestRegionMmap.fromRange(0x7000, 0x1000);
  for (let off = 0; off < 9; off++) {
    r.writeU16(0x100 + off, 0xfedc);
    assert.equal(r.readU16(0x100 + off), 0xfedc);
    r.writeU32BE(0x200 + off, 0x01020304);
    assert.equal(r.readU8(0x200 + off), 1);
    assert.equal(r.readU32(0x200 + off), 0x04030201);
    r.writeI64(0x300 + off, -7n);
    assert.equal(r.readI64(0x300 + off), -7n);
    r.writeF64BE(0x400 + off, 6.25);
    assert.equal(r.readF64BE(0x400 + off), 6.25);
  }
  assert.equal(r.mmap.bytes(0x200, 1)[0], 1, "offsets are region offsets, not guest addresses");
});

Deno.test("region: atomics need natural alignment of the offset and report Misaligned with it", () => {
  using r = GuestRegionMmap.fromRange(0x1001, 0x1000);
  r.storeU32(0x10, 5);
  assert.equal(r.addU32(0x10, 2), 5);
  assert.equal(r.compareExchangeU32(0x10, 7, 1), 7);
  assert.equal(r.orU8(0x10, 0x80), 1);
  assert.equal(r.loadU32(0x10), 0x81);
  r.storeU64(0xff8, 0x0102030405060708n);
  assert.equal(r.loadU64(0xff8), 0x0102030405060708n);
  const e = expectError(() => r.loadU64(0x14), MisalignedError, {
    kind: "Misaligned",
    op: "GuestRegionMmap.loadU64",
    mentions: ["0x14", "8 bytes"],
  });
  assert.equal(e.addr, 0x14n);
  assert.equal(e.alignment, 8);
});

Deno.test("region: readVolatileFrom/writeVolatileTo clip at the end; exact variants are PartialBuffer", () => {
  using r = GuestRegionMmap.fromRange(0, 0x1000);
  const src = new Uint8Array(0x20).map((_, i) => i + 1);
  assert.equal(r.readVolatileFrom(0xff0, src, 0x20), 0x10);
  assert.equal(r.readU8(0xfff), 0x10);
  const sink = new Uint8Array(0x20);
  assert.equal(r.writeVolatileTo(0xff0, sink, 0x20), 0x10);
  assert.deepEqual(sink.subarray(0, 0x10), src.subarray(0, 0x10));
  expectPartial(() => r.readExactVolatileFrom(0xff0, src, 0x20), "GuestRegionMmap.readExactVolatileFrom", 0x20, 0x10);
  expectPartial(() => r.writeAllVolatileTo(0xff0, sink, 0x20), "GuestRegionMmap.writeAllVolatileTo", 0x20, 0x10);
});

Deno.test("region: a file-backed region reads and writes the file at its offset", () => {
  const path = Deno.makeTempFileSync({ prefix: "gmem-region-" });
  try {
    const initial = new Uint8Array(0x3000).map((_, i) => (i >> 4) & 0xff);
    Deno.writeFileSync(path, initial);
    using r = GuestRegionMmap.fromRange(0x40000, 0x1000, FileOffset.fromPath(path, 0x2000));
    assert.equal(r.fileOffset?.start, 0x2000n);
    assert.equal(r.readU8(0x10), initial[0x2010]);
    r.writeU32BE(0x20, 0xcafebabe);
    const disk = Deno.readFileSync(path);
    assert.deepEqual([...disk.subarray(0x2020, 0x2024)], [0xca, 0xfe, 0xba, 0xbe]);
    assert.deepEqual(disk.subarray(0, 0x2000), initial.subarray(0, 0x2000), "bytes before the offset are untouched");
  } finally {
    Deno.removeSync(path);
  }
});
