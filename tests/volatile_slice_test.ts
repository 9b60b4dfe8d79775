// VolatileSlice: a bounded window of one region, its views, sub-slices, copies and Bytes.
import assert from "node:assert/strict";
import {
  AtomicBitmap,
  GuestMemoryMmap,
  InvalidArgumentError,
  MisalignedError,
  MmapRegion,
  NoAccessError,
  OutOfBoundsError,
  PartialBufferError,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  ReadOnlyError,
  RegionClosedError,
  U64_MAX,
} from "../mod.ts";
import { aliasedMemory, clearDirty, dirtyPages, expectError } from "./fixtures/guest_assert.ts";
import { native } from "../src/ffi/native.ts";

function pattern(n: number, seed = 5): Uint8Array {
  return new Uint8Array(n).map((_, i) => (i * 7 + seed) & 0xff);
}

function outOfBounds(fn: () => unknown, op: string, offset: bigint, length: number, size: number): void {
  const e = expectError(fn, OutOfBoundsError, {
    kind: "OutOfBounds",
    op: `VolatileSlice.${op}`,
    mentions: [
      `[0x${offset.toString(16)}, 0x${(offset + BigInt(length)).toString(16)})`,
      `0x${size.toString(16)} bytes`,
    ],
  });
  assert.equal(e.offset, offset);
  assert.equal(e.length, length);
  assert.equal(e.size, size);
}

Deno.test("slice: offsets are relative to the slice start and reach the right guest bytes", () => {
  using m = aliasedMemory(0x10000, 0x2000);
  const s = m.mem.getSlice(0x10100, 0x100);
  assert.equal(s.len, 0x100);
  s.writeU32(0, 0x11223344);
  assert.deepEqual([...m.alias.subarray(0x100, 0x104)], [0x44, 0x33, 0x22, 0x11]);
  s.write(new Uint8Array([9, 8]), 0xfe);
  assert.equal(m.mem.readU16(0x101fe), 0x0809);
  assert.equal(s.hostAddress, m.mem.getHostAddress(0x10100));
  assert.equal(s.dirtyLog, m.mem.regions()[0].bitmap);
  assert.equal(s.dirtyLogOffset, 0x100);
});

Deno.test("slice: bytes() and dataView() are zero-copy windows of exactly the slice", () => {
  using m = aliasedMemory(0, 0x1000);
  const s = m.mem.getSlice(0x200, 0x10);
  const bytes = s.bytes();
  assert.equal(bytes.length, 0x10);
  bytes[0] = 0xaa;
  bytes[0xf] = 0xbb;
  assert.equal(m.alias[0x200], 0xaa);
  assert.equal(m.alias[0x20f], 0xbb);
  assert.equal(m.alias[0x210], 0);
  const dv = s.dataView();
  assert.equal(dv.byteLength, 0x10);
  dv.setUint16(2, 0x1234, false);
  assert.deepEqual([...m.alias.subarray(0x202, 0x204)], [0x12, 0x34]);
  m.alias[0x208] = 0x77;
  assert.equal(s.bytes()[8], 0x77, "a write through the other mapping shows in the view");
});

Deno.test("slice: pointer and view address the slice's first host byte", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
  const s = mem.getSlice(0x1010, 8);
  s.writeU32(0, 0xdeadbeef);
  s.writeU8(4, 0x42);
  const p = s.pointer;
  assert.ok(p !== null);
  assert.equal(native().addressOfPointer(p), mem.getHostAddress(0x1010));
  const v = s.view;
  assert.equal(v.getUint32(), 0xdeadbeef);
  assert.equal(v.getUint8(4), 0x42);
});

Deno.test("slice: subslice takes [offset, offset+count) and refuses anything past the end with OutOfBounds", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  mem.writeSlice(pattern(0x100), 0x100);
  const s = mem.getSlice(0x100, 0x100);
  const sub = s.subslice(0x10, 0x20);
  assert.equal(sub.len, 0x20);
  assert.equal(sub.hostAddress, s.hostAddress + 0x10n);
  assert.equal(sub.readU8(0), pattern(0x100)[0x10]);
  assert.equal(s.subslice(0x100, 0).len, 0, "an empty sub-slice at the very end is fine");
  assert.equal(s.subslice(0, 0x100).len, 0x100);
  outOfBounds(() => s.subslice(0x10, 0xf1), "subslice", 0x10n, 0xf1, 0x100);
  outOfBounds(() => s.subslice(0x101, 0), "subslice", 0x101n, 0, 0x100);
  outOfBounds(() => s.subslice(U64_MAX, 2), "subslice", U64_MAX, 2, 0x100);
  outOfBounds(() => s.subslice(2, Number.MAX_SAFE_INTEGER), "subslice", 2n, Number.MAX_SAFE_INTEGER, 0x100);
  expectError(() => s.subslice(0, -1), InvalidArgumentError, { kind: "InvalidArgument", op: "VolatileSlice.subslice" });
  expectError(() => s.subslice(-1, 1), InvalidArgumentError, { kind: "InvalidArgument", op: "VolatileSlice.subslice" });
});

Deno.test("slice: offset drops the first bytes; past the end is OutOfBounds with the offset", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const s = mem.getSlice(0x100, 0x100);
  const rest = s.offset(0x40);
  assert.equal(rest.len, 0xc0);
  assert.equal(rest.hostAddress, s.hostAddress + 0x40n);
  assert.equal(s.offset(0x100).len, 0);
  assert.equal(s.offset(0n).len, 0x100);
  outOfBounds(() => s.offset(0x101), "offset", 0x101n, 0, 0x100);
  outOfBounds(() => s.offset(U64_MAX), "offset", U64_MAX, 0, 0x100);
});

Deno.test("slice: splitAt gives [0, mid) and [mid, len), mid 0 and len included; past len is OutOfBounds", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const s = mem.getSlice(0x800, 0x100);
  const [head, tail] = s.splitAt(0x40);
  assert.deepEqual([head.len, tail.len], [0x40, 0xc0]);
  assert.equal(head.hostAddress, s.hostAddress);
  assert.equal(tail.hostAddress, s.hostAddress + 0x40n);
  tail.writeU8(0, 0x99);
  assert.equal(mem.readU8(0x840), 0x99);
  assert.deepEqual(s.splitAt(0).map((x) => x.len), [0, 0x100]);
  assert.deepEqual(s.splitAt(0x100).map((x) => x.len), [0x100, 0]);
  outOfBounds(() => s.splitAt(0x101), "splitAt", 0x101n, 0, 0x100);
});

Deno.test("slice: copyTo and copyFrom move min(buffer, slice) bytes and return the count", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const s = mem.getSlice(0x100, 8);
  assert.equal(s.copyFrom(pattern(12)), 8);
  assert.equal(mem.readU8(0x108), 0, "nothing past the slice");
  const big = new Uint8Array(12).fill(0xee);
  assert.equal(s.copyTo(big), 8);
  assert.deepEqual(big.subarray(0, 8), pattern(8));
  assert.equal(big[8], 0xee);
  const small = new Uint8Array(3);
  assert.equal(s.copyTo(small), 3);
  assert.deepEqual(small, pattern(3));
  assert.equal(s.copyFrom(new Uint8Array([1, 2])), 2);
  assert.equal(mem.readU16(0x100), 0x0201);
  assert.equal(s.copyTo(new Uint8Array(0)), 0);
  assert.equal(mem.getSlice(0x100, 0).copyFrom(pattern(4)), 0);
});

Deno.test("slice: copyToVolatileSlice copies min(len) bytes between regions and memmoves overlaps", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x1000, 0x1000]]);
  mem.writeSlice(pattern(0x100, 1), 0x100);
  assert.equal(mem.getSlice(0x100, 0x100).copyToVolatileSlice(mem.getSlice(0x1f00, 0x80)), 0x80);
  const across = new Uint8Array(0x81);
  mem.readSlice(across, 0x1f00);
  assert.deepEqual(across.subarray(0, 0x80), pattern(0x80, 1));
  assert.equal(across[0x80], 0);
  // Overlapping, destination after source: the result must be the original source bytes.
  assert.equal(mem.getSlice(0x100, 0x100).copyToVolatileSlice(mem.getSlice(0x180, 0x100)), 0x100);
  const moved = new Uint8Array(0x100);
  mem.readSlice(moved, 0x180);
  assert.deepEqual(moved, pattern(0x100, 1));
  // Overlapping, destination before source.
  mem.writeSlice(pattern(0x100, 2), 0x400);
  mem.getSlice(0x400, 0x100).copyToVolatileSlice(mem.getSlice(0x3c0, 0x100));
  const back = new Uint8Array(0x100);
  mem.readSlice(back, 0x3c0);
  assert.deepEqual(back, pattern(0x100, 2));
  assert.equal(mem.getSlice(0, 0).copyToVolatileSlice(mem.getSlice(0x10, 4)), 0);
});

Deno.test("slice: fill sets every byte of the slice and no other; a bad byte is InvalidArgument", () => {
  using m = aliasedMemory(0, 0x1000);
  m.mem.getSlice(0x10, 0x20).fill(0x5a);
  assert.equal(m.alias[0xf], 0);
  assert.ok(m.alias.subarray(0x10, 0x30).every((b) => b === 0x5a));
  assert.equal(m.alias[0x30], 0);
  for (const bad of [256, -1, 1.5, NaN]) {
    const e = expectError(() => m.mem.getSlice(0, 4).fill(bad), InvalidArgumentError, {
      kind: "InvalidArgument",
      op: "VolatileSlice.fill",
    });
    assert.equal(e.argument, "byte");
  }
});

Deno.test("slice: write/read clip at the slice end; at or past the end is OutOfBounds", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const s = mem.getSlice(0x100, 0x10);
  assert.equal(s.write(pattern(8), 0xc), 4);
  assert.equal(mem.readU8(0x110), 0, "the byte after the slice is untouched");
  const out = new Uint8Array(8);
  assert.equal(s.read(out, 0xc), 4);
  assert.deepEqual(out.subarray(0, 4), pattern(4));
  outOfBounds(() => s.write(new Uint8Array(1), 0x10), "write", 0x10n, 1, 0x10);
  outOfBounds(() => s.read(new Uint8Array(2), 0x11n), "read", 0x11n, 2, 0x10);
  outOfBounds(() => s.readU8(U64_MAX), "readU8", U64_MAX, 1, 0x10);
});

Deno.test("slice: zero-length accesses give 0 at any offset, on any slice, even an empty one", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const s = mem.getSlice(0x100, 0x10);
  const empty = mem.getSlice(0x1000 - 1, 0);
  for (const slice of [s, empty]) {
    for (const off of [0, 0x10, 0x11, 0x1000, U64_MAX]) {
      assert.equal(slice.write(new Uint8Array(0), off), 0);
      assert.equal(slice.read(new Uint8Array(0), off), 0);
      slice.readSlice(new Uint8Array(0), off);
    }
  }
  outOfBounds(() => empty.write(new Uint8Array(1), 0), "write", 0n, 1, 0);
  const e = expectError(() => s.write(new Uint8Array(0), -1), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "VolatileSlice.write",
  });
  assert.equal(e.argument, "offset");
});

Deno.test("slice: writeSlice/readSlice and scalars past the end are PartialBuffer (5-byte slice, u16 at 4 -> {2, 1})", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const s = mem.getSlice(0x200, 5);
  const w = expectError(() => s.writeU16(4, 55), PartialBufferError, {
    kind: "PartialBuffer",
    op: "VolatileSlice.writeU16",
    mentions: ["0x4"],
  });
  assert.deepEqual([w.expected, w.completed, w.addr], [2, 1, 4n]);
  assert.equal(mem.readU8(0x204), 55, "the first byte was written");
  assert.equal(mem.readU8(0x205), 0);
  const r = expectError(() => s.readU16(4), PartialBufferError, { kind: "PartialBuffer", op: "VolatileSlice.readU16" });
  assert.deepEqual([r.expected, r.completed], [2, 1]);
  outOfBounds(() => s.writeU16(U64_MAX, 55), "writeU16", U64_MAX, 2, 5);
  const ws = expectError(() => s.writeSlice(new Uint8Array(8), 2), PartialBufferError, {
    kind: "PartialBuffer",
    op: "VolatileSlice.writeSlice",
  });
  assert.deepEqual([ws.expected, ws.completed], [8, 3]);
});

Deno.test("slice: scalars of every width and order round-trip at every offset of an unaligned slice", () => {
  using m = aliasedMemory(0, 0x1000);
  const s = m.mem.getSlice(0x103, 0x40); // starts at an odd host address
  for (let off = 0; off < 16; off++) {
    s.writeU64(off, 0x0102030405060708n);
    assert.deepEqual([...m.alias.subarray(0x103 + off, 0x10b + off)], [8, 7, 6, 5, 4, 3, 2, 1], `u64 at +${off}`);
    assert.equal(s.readU64(off), 0x0102030405060708n);
    s.writeU32BE(off, 0xa0b0c0d0);
    assert.equal(s.readU32(off), 0xd0c0b0a0);
    s.writeI16(off, -2);
    assert.equal(s.readI16(off), -2);
    s.writeF32(off, 0.5);
    assert.equal(s.readF32(off), 0.5);
  }
});

Deno.test("slice: atomics check bounds, then host alignment, reporting the slice offset", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const s = mem.getSlice(0x102, 0x20); // slice offset 2 is host-aligned to 4
  s.storeU32(2, 0xcafe);
  assert.equal(mem.loadU32(0x104), 0xcafe);
  assert.equal(s.addU32(2, 1), 0xcafe);
  assert.equal(s.compareExchangeU32(2, 0xcaff, 7), 0xcaff);
  assert.equal(s.orU16(0, 0x8000), 0, "slice offset 0 is host offset 0x102: 2-aligned");
  assert.equal(s.loadU16(0), 0x8000);
  s.storeU64(6, 9n);
  assert.equal(mem.loadU64(0x108), 9n);
  const mis = expectError(() => s.storeU32(0, 1), MisalignedError, {
    kind: "Misaligned",
    op: "VolatileSlice.storeU32",
    mentions: ["0x0", "4 bytes"],
  });
  assert.equal(mis.addr, 0n);
  assert.equal(mis.alignment, 4);
  outOfBounds(() => s.loadU32(0x1e), "loadU32", 0x1en, 4, 0x20);
  outOfBounds(() => s.storeU64(0x20, 1n), "storeU64", 0x20n, 8, 0x20);
  outOfBounds(() => mem.getSlice(0, 2).loadU32(0), "loadU32", 0n, 4, 2);
});

Deno.test("slice: I/O with arrays and descriptors clips at the slice end; the exact variants throw PartialBuffer", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const s = mem.getSlice(0x100, 0x10);
  assert.equal(s.readVolatileFrom(0x8, pattern(0x20), 0x20), 8);
  assert.equal(s.readVolatileFrom(0x10, pattern(0x20), 0x20), 0, "at the end: nothing to read into");
  outOfBounds(() => s.readVolatileFrom(0x11, pattern(4), 4), "readVolatileFrom", 0x11n, 4, 0x10);
  const sink = new Uint8Array(0x20);
  assert.equal(s.writeVolatileTo(0x8, sink, 0x20), 8);
  assert.deepEqual(sink.subarray(0, 8), pattern(8));

  // Ours reports a short source as PartialBuffer (vm-memory's slice-level read_exact says IOError
  // UnexpectedEof); every level of this port reports short transfers the same way.
  const e = expectError(() => s.readExactVolatileFrom(0, pattern(3), 8), PartialBufferError, {
    kind: "PartialBuffer",
    op: "VolatileSlice.readExactVolatileFrom",
    mentions: ["source ended early"],
  });
  assert.deepEqual([e.expected, e.completed], [8, 3]);

  using endpoint = MmapRegion.memfd(0x1000);
  endpoint.write(pattern(0x10, 9), 0);
  assert.equal(s.readVolatileFrom(0, endpoint.fd!, 0x10), 0x10);
  assert.equal(mem.readU8(0x10f), pattern(0x10, 9)[0xf]);
  assert.equal(s.writeVolatileTo(0, endpoint.fd!, 0x10), 0x10);
  assert.deepEqual(endpoint.bytes(0x10, 0x10), pattern(0x10, 9));
});

Deno.test("slice: withDirtyLog sends the slice's writes to another log at the given offset", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x4000]], { dirtyPageSize: 0x1000 });
  const other = new AtomicBitmap(0x10000, 0x1000);
  const s = mem.getSlice(0x1000, 0x2000).withDirtyLog(other, 0x8000);
  s.writeU32(0x1000, 1);
  assert.equal(other.isBitSet(9), true);
  assert.deepEqual(other.dirtyRuns(), [[0x9000, 0x1000]]);
  assert.deepEqual((mem.regions()[0].bitmap as AtomicBitmap).dirtyRuns(), [], "the region's log is bypassed");
  mem.getSlice(0, 4).withDirtyLog(undefined, 0).writeU32(0, 1);
  assert.deepEqual((mem.regions()[0].bitmap as AtomicBitmap).dirtyRuns(), []);
  expectError(() => s.withDirtyLog(other, -1), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "VolatileSlice.withDirtyLog",
  });
});

/** A slice valid while `lease.ok`, a plain one and one to dispose: 4 KiB each at 0x1000, 0x2000, 0x3000. */
function threeSlices(mem: GuestMemoryMmap, lease: { ok: boolean }) {
  const guarded = mem.getSlice(0x1000, 0x1000).withGuard({
    isValid: () => lease.ok,
    revokedError: (op) => new RegionClosedError(op, "the test's lease"),
  });
  return { guarded, plain: mem.getSlice(0x2000, 0x1000), disposed: mem.getSlice(0x3000, 0x1000) };
}

// copyTo copies an unguarded slice of readable memory without going through `transfer`; these
// are the cases that shortcut must leave to the full path, each after the shortcut has run often
// enough to be compiled.
Deno.test("slice: copyTo after many copies still refuses a revoked guard, no read access, a closed region and a disposed slice", () => {
  const mem = GuestMemoryMmap.fromRanges([[0, 0x4000]]);
  const region = mem.regions()[0];
  region.mmap.bytes().set(pattern(0x4000));
  const out = new Uint8Array(0x1000);
  const warm = (s: { copyTo(b: Uint8Array): number }) => {
    for (let i = 0; i < 2000; i++) assert.equal(s.copyTo(out), 0x1000);
  };
  const lease = { ok: true };
  const { guarded, plain, disposed } = threeSlices(mem, lease);
  warm(guarded);
  warm(disposed);
  warm(plain);
  assert.deepEqual(out, pattern(0x4000).subarray(0x2000, 0x3000));
  lease.ok = false;
  out.fill(0);
  expectError(() => guarded.copyTo(out), RegionClosedError, { kind: "RegionClosed", op: "VolatileSlice.copyTo" });
  disposed[Symbol.dispose]();
  expectError(() => disposed.copyTo(out), RegionClosedError, { kind: "RegionClosed", op: "VolatileSlice.copyTo" });
  region.mmap.protect(PROT_NONE);
  expectError(() => plain.copyTo(out), NoAccessError, { kind: "NoAccess", op: "VolatileSlice.copyTo" });
  region.mmap.protect(PROT_READ | PROT_WRITE);
  assert.equal(plain.copyTo(out), 0x1000, "readable again");
  assert.deepEqual(out, pattern(0x4000).subarray(0x2000, 0x3000));
  out.fill(0);
  mem.close();
  expectError(() => plain.copyTo(out), RegionClosedError, { kind: "RegionClosed", op: "VolatileSlice.copyTo" });
  assert.equal(out.some((b) => b !== 0), false, "no refused copy moved a byte");
});

// copyFrom's shortcut for unguarded slices, as copyTo's above: it must still log, and leave to
// the full path what that refuses.
Deno.test("slice: copyFrom after many copies still logs its pages and refuses a revoked guard, read-only memory, a closed region and a disposed slice", () => {
  const mem = GuestMemoryMmap.fromRanges([[0, 0x5000]], { dirtyPageSize: 0x1000 });
  const region = mem.regions()[0];
  const data = pattern(0x1000, 9);
  const lease = { ok: true };
  const { guarded, plain, disposed } = threeSlices(mem, lease);
  for (const s of [guarded, disposed, plain]) {
    for (let i = 0; i < 2000; i++) assert.equal(s.copyFrom(data), 0x1000);
  }
  assert.deepEqual(dirtyPages(region), [1, 2, 3]);
  clearDirty(mem);
  region.mmap.bytes().fill(0);
  assert.equal(mem.getSlice(0x4000, 0x1000).copyFrom(data), 0x1000, "a slice of another page, once");
  assert.deepEqual(dirtyPages(region), [4], "the write is logged at the slice's page");
  assert.deepEqual(region.mmap.bytes().subarray(0x4000), data);
  lease.ok = false;
  expectError(() => guarded.copyFrom(data), RegionClosedError, { kind: "RegionClosed", op: "VolatileSlice.copyFrom" });
  disposed[Symbol.dispose]();
  expectError(() => disposed.copyFrom(data), RegionClosedError, { kind: "RegionClosed", op: "VolatileSlice.copyFrom" });
  region.mmap.protect(PROT_READ);
  expectError(() => plain.copyFrom(data), ReadOnlyError, { kind: "ReadOnly", op: "VolatileSlice.copyFrom" });
  region.mmap.protect(PROT_NONE);
  expectError(() => plain.copyFrom(data), NoAccessError, { kind: "NoAccess", op: "VolatileSlice.copyFrom" });
  region.mmap.protect(PROT_READ | PROT_WRITE);
  assert.deepEqual(dirtyPages(region), [4], "no refused write was logged");
  assert.equal(region.mmap.bytes().subarray(0, 0x4000).some((b) => b !== 0), false, "no refused write moved a byte");
  mem.close();
  expectError(() => plain.copyFrom(data), RegionClosedError, { kind: "RegionClosed", op: "VolatileSlice.copyFrom" });
});
