// The number fast paths of guest memory (locate's int32 shortcut, the last-region cache, copies
// across regions and getSlice without bigint) against what the bytes and bitmaps must show.
import assert from "node:assert/strict";
import {
  GuestMemoryMmap,
  GuestRegionMmap,
  InvalidArgumentError,
  InvalidBackendAddressError,
  NoAccessError,
  PROT_NONE,
  PROT_READ,
  ReadOnlyError,
  RegionClosedError,
} from "../mod.ts";
import { clearDirty, dirtyPages, expectError } from "./fixtures/guest_assert.ts";

const PAGE = 0x1000;

Deno.test("fast path: after a lookup moves to another region, writes land in and are logged by the region they address", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 4 * PAGE], [4 * PAGE, 4 * PAGE]], { dirtyPageSize: PAGE });
  const [r0, r1] = mem.regions();
  clearDirty(mem);
  mem.writeU32(0x1000, 0x11111111); // region 0 becomes the last one
  assert.equal(mem.findRegion(0x5000), r1); // a lookup makes region 1 the last one
  mem.writeU32(0x2000, 0x22222222); // back in region 0
  mem.getSlice(0x6000, 8); // region 1 again
  mem.writeU64(0x3008, 0x3333_3333_4444_4444n);
  mem.writeU8(0x7fff, 0x55); // region 1, its last byte
  assert.deepEqual(dirtyPages(r0), [1, 2, 3]);
  assert.deepEqual(dirtyPages(r1), [3]);
  const low = r0.mmap.dataView(), high = r1.mmap.dataView();
  assert.equal(low.getUint32(0x1000, true), 0x11111111);
  assert.equal(low.getUint32(0x2000, true), 0x22222222);
  assert.equal(low.getBigUint64(0x3008, true), 0x3333_3333_4444_4444n);
  assert.equal(high.getUint8(0x3fff), 0x55);
  assert.equal(high.getUint32(0x1000, true), 0, "nothing of region 0's writes reached region 1");
  assert.equal(mem.readU32(0x2000), 0x22222222);
  assert.equal(mem.readU8(0x7fff), 0x55);
});

Deno.test("fast path: regions at 1 GiB, below 2^53 and above 2^53 read back exactly what was written", () => {
  const top = 2 ** 53 - 2 * PAGE; // numeric, but past the int32 shortcut
  using mem = GuestMemoryMmap.fromRanges([[0x4000_0000, PAGE], [top, PAGE], [1n << 60n, PAGE]]);
  const [giga, high, huge] = mem.regions();
  mem.writeU64(0x4000_0008, 0x0102_0304_0506_0708n);
  mem.writeU32(top + 0xffc, 0xdead_beef);
  mem.writeU16((1n << 60n) + 2n, 0xabcd);
  assert.equal(giga.mmap.dataView().getBigUint64(8, true), 0x0102_0304_0506_0708n);
  assert.equal(high.mmap.dataView().getUint32(0xffc, true), 0xdead_beef);
  assert.equal(huge.mmap.dataView().getUint16(2, true), 0xabcd);
  assert.equal(mem.readU64(0x4000_0008), 0x0102_0304_0506_0708n);
  assert.equal(mem.readU32(top + 0xffc), 0xdead_beef);
  assert.equal(mem.readU16((1n << 60n) + 2n), 0xabcd);
  // Alternating between them, each access still finds its own region.
  for (let i = 0; i < 64; i++) {
    assert.equal(mem.readU8(0x4000_0008), 8);
    assert.equal(mem.readU8(top + 0xfff), 0xde);
  }
});

Deno.test("fast path: a copy across regions moves every byte; a read-only region or a hole after the first fragment ends it early", () => {
  const ro = GuestRegionMmap.fromRange(PAGE, PAGE, undefined, { prot: PROT_READ });
  using mem = GuestMemoryMmap.fromRegions([
    GuestRegionMmap.fromRange(0, PAGE),
    ro,
    GuestRegionMmap.fromRange(3 * PAGE, PAGE),
  ]);
  const first = mem.regions()[0].mmap.bytes();
  first.subarray(0xff8).set([1, 2, 3, 4, 5, 6, 7, 8]);
  const third = mem.regions()[2].mmap.bytes();
  third.set([9, 10, 11, 12], 0);

  const out = new Uint8Array(16);
  mem.readSlice(out, 0xff8); // region 0 then the read-only region (zeros)
  assert.deepEqual([...out], [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(mem.read(out.fill(0xee), 0x1ff8), 8, "the hole at 0x2000 ends the read");
  assert.deepEqual([...out], [0, 0, 0, 0, 0, 0, 0, 0, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee, 0xee]);

  const data = Uint8Array.from({ length: 16 }, (_, i) => 0x80 + i);
  assert.equal(mem.write(data, 0xff8), 8, "the read-only region ends the write");
  assert.deepEqual([...first.subarray(0xff8)], [0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87]);
  assert.equal(ro.readU64(0), 0n, "nothing reached the read-only region");
  const e = expectError(() => mem.write(data, PAGE), ReadOnlyError, { kind: "ReadOnly", op: "GuestMemoryMmap.write" });
  assert.equal(e.message.includes("0x1000"), true);
  assert.equal(mem.read(out, 3 * PAGE), 16);
  assert.deepEqual([...out.subarray(0, 4)], [9, 10, 11, 12]);
});

Deno.test("fast path: getSlice with a number gives the slice a bigint gives, and refuses the same ranges", () => {
  const mem = GuestMemoryMmap.fromRanges([[0, 2 * PAGE], [2 * PAGE, PAGE]], { dirtyPageSize: PAGE });
  const a = mem.getSlice(0x1010, 0x20), b = mem.getSlice(0x1010n, 0x20);
  assert.equal(a.len, 0x20);
  assert.equal(a.hostAddress, b.hostAddress);
  assert.equal(a.dirtyLogOffset, 0x1010);
  assert.equal(mem.getSlice(0x1010, 0).len, 0);
  a.writeU32(4, 0xcafe_f00d);
  assert.equal(mem.readU32(0x1014), 0xcafe_f00d);
  assert.deepEqual(dirtyPages(mem.regions()[0]), [1]);
  const s = mem.getSlice(2 * PAGE, PAGE); // all of region 1
  assert.equal(s.hostAddress, mem.regions()[1].mmap.hostAddress);
  expectError(() => mem.getSlice(0x1ff0, 0x20), InvalidBackendAddressError, {
    kind: "InvalidBackendAddress",
    op: "GuestMemoryMmap.getSlice",
    mentions: ["0x1ff0"],
  });
  mem.close();
  expectError(() => mem.getSlice(0x1010, 0x20), RegionClosedError, {
    kind: "RegionClosed",
    op: "GuestMemoryMmap.getSlice",
  });
});

Deno.test("fast path: u64 writes take 0 to 2^64 - 1, before and after values of 63 bits and more, and refuse -1n and 2^64", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, PAGE]]);
  const values = [0n, 1n, 0x7fff_ffff_ffff_ffffn, 1n << 63n, (1n << 64n) - 1n, 0x1234n];
  // Enough rounds that the check runs optimised, first with small values only, then with all.
  for (let i = 0; i < 20_000; i++) mem.writeU64((i & 7) * 8, BigInt(i));
  for (let i = 0; i < 20_000; i++) {
    const v = values[i % values.length];
    mem.writeU64(8 * (i % 16), v);
    assert.equal(mem.readU64(8 * (i % 16)), v);
  }
  const before = mem.readU64(0x10);
  for (const bad of [-1n, 1n << 64n, -(1n << 63n)]) {
    expectError(() => mem.writeU64(0x10, bad), InvalidArgumentError, {
      kind: "InvalidArgument",
      op: "GuestMemoryMmap.writeU64",
    });
  }
  assert.equal(mem.readU64(0x10), before, "a refused write stores nothing");
});

Deno.test("fast path: a copy across regions starts in the right region whichever one was located last", () => {
  using mem = GuestMemoryMmap.fromRegions([0, 1, 2, 3].map((i) => GuestRegionMmap.fromRange(i * PAGE, PAGE)));
  mem.regions().forEach((r, i) => r.mmap.bytes().fill(0x10 * (i + 1)));
  const out = new Uint8Array(8);
  const expectRead = (addr: number, bytes: number[]) => {
    mem.readSlice(out, addr);
    assert.deepEqual([...out], bytes, `read at ${addr.toString(16)}`);
  };
  mem.readU8(0); // region 0 located last
  expectRead(PAGE - 4, [0x10, 0x10, 0x10, 0x10, 0x20, 0x20, 0x20, 0x20]); // starts in the last one
  expectRead(3 * PAGE - 2, [0x30, 0x30, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40]); // starts elsewhere
  mem.readU8(2 * PAGE); // region 2 located last
  expectRead(PAGE - 6, [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x20, 0x20]);
  expectRead(3 * PAGE - 1, [0x30, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40, 0x40]);
  mem.readU8(3 * PAGE);
  // A write across regions lands in both, each logged by its own region's bytes.
  mem.writeSlice(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 2 * PAGE - 3);
  assert.deepEqual([...mem.regions()[1].mmap.bytes().subarray(PAGE - 3)], [1, 2, 3]);
  assert.deepEqual([...mem.regions()[2].mmap.bytes().subarray(0, 5)], [4, 5, 6, 7, 8]);
});

Deno.test("fast path: warm scalar reads still refuse no access, a closed region and bad addresses, and read odd ones exactly", () => {
  const mem = GuestMemoryMmap.fromRegions([GuestRegionMmap.fromRange(0, PAGE), GuestRegionMmap.fromRange(PAGE, PAGE)]);
  const [r0] = mem.regions();
  const bytes = r0.mmap.bytes();
  for (let i = 0; i < PAGE; i++) bytes[i] = i & 0xff;
  mem.regions()[1].mmap.bytes().fill(0xee);
  let sum = 0n;
  for (let i = 0; i < 5000; i++) {
    sum += mem.readU64((i * 8) % PAGE) + BigInt(mem.readU32(16) + mem.readU16(2) + mem.readU8(1));
  }
  assert.equal(sum > 0n, true);
  assert.equal(mem.readU64(8), 0x0f0e0d0c0b0a0908n);
  assert.equal(mem.readU32(3), 0x06050403, "unaligned: assembled by the general path");
  assert.equal(mem.readU16(PAGE - 1), 0xeeff, "across two regions");
  assert.equal(mem.readU64(8n), 0x0f0e0d0c0b0a0908n, "a bigint address");
  expectError(() => mem.readU32(1.5), InvalidArgumentError, { kind: "InvalidArgument", op: "GuestMemoryMmap.readU32" });
  r0.mmap.protect(PROT_NONE);
  expectError(() => mem.readU64(8), NoAccessError, { kind: "NoAccess", op: "GuestMemoryMmap.readU64" });
  expectError(() => mem.readU8(1), NoAccessError, { kind: "NoAccess", op: "GuestMemoryMmap.readU8" });
  r0.mmap.protect(PROT_READ);
  assert.equal(mem.readU16(2), 0x0302, "readable again");
  mem.close();
  expectError(() => mem.readU64(8), RegionClosedError, { kind: "RegionClosed", op: "GuestMemoryMmap.readU64" });
});
