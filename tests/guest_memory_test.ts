// GuestMemoryMmap as a collection: building it, looking addresses up, slicing ranges, hotplug.
import assert from "node:assert/strict";
import {
  type AddressLike,
  type GuestMemory,
  GuestMemoryError,
  GuestMemoryMmap,
  GuestRegionMmap,
  InvalidArgumentError,
  InvalidBackendAddressError,
  InvalidGuestAddressError,
  Permissions,
  U64_MAX,
} from "../mod.ts";
import { expectError, expectUnbacked } from "./fixtures/guest_assert.ts";

const U64_LIMIT = 1n << 64n;

Deno.test("guest memory: fromRanges maps one region per range, sorted, with exact bounds", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0xa0000], [0x100000, 0x200000]]);
  assert.equal(mem.numRegions, 2);
  const [low, high] = mem.regions();
  assert.equal(low.startAddr, 0n);
  assert.equal(low.len, 0xa0000);
  assert.equal(low.lastAddr, 0x9ffffn);
  assert.equal(high.startAddr, 0x100000n);
  assert.equal(high.lastAddr, 0x2fffffn);
  assert.equal(mem.lastAddr(), 0x2fffffn);
  assert.ok(Object.isFrozen(mem.regions()));
});

Deno.test("guest memory: an empty range list is NoMemoryRegion", () => {
  expectError(() => GuestMemoryMmap.fromRanges([]), GuestMemoryError, {
    kind: "NoMemoryRegion",
    op: "GuestMemoryMmap.fromRanges",
  });
  expectError(() => GuestMemoryMmap.fromRegions([]), GuestMemoryError, {
    kind: "NoMemoryRegion",
    op: "GuestMemoryMmap.fromRegions",
  });
});

Deno.test("guest memory: unsorted ranges are UnsortedMemoryRegions naming both starts", () => {
  expectError(() => GuestMemoryMmap.fromRanges([[0x2000, 0x1000], [0, 0x1000]]), GuestMemoryError, {
    kind: "UnsortedMemoryRegions",
    op: "GuestMemoryMmap.fromRanges",
    mentions: ["0x2000", "0x0"],
  });
});

Deno.test("guest memory: overlapping or duplicate ranges are MemoryRegionOverlap with both ranges in hex", () => {
  expectError(() => GuestMemoryMmap.fromRanges([[0, 0x2000], [0x1fff, 0x1000]]), GuestMemoryError, {
    kind: "MemoryRegionOverlap",
    op: "GuestMemoryMmap.fromRanges",
    mentions: ["[0x0, 0x1fff]", "[0x1fff, 0x2ffe]"],
  });
  expectError(() => GuestMemoryMmap.fromRanges([[0x1000, 0x1000], [0x1000, 0x1000]]), GuestMemoryError, {
    kind: "MemoryRegionOverlap",
    op: "GuestMemoryMmap.fromRanges",
  });
});

Deno.test("guest memory: a zero-size range and a malformed entry are refused with InvalidArgument", () => {
  const zero = expectError(() => GuestMemoryMmap.fromRanges([[0, 0]]), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestRegionMmap.fromRange",
  });
  assert.equal(zero.argument, "size");
  const bad = expectError(
    () => GuestMemoryMmap.fromRangesWithFiles([[0] as unknown as readonly [number, number, undefined]]),
    InvalidArgumentError,
    { kind: "InvalidArgument", op: "GuestMemoryMmap.fromRangesWithFiles", mentions: ["[address, size]"] },
  );
  assert.equal(bad.argument, "ranges");
  const missingSize = expectError(
    () => GuestMemoryMmap.fromRanges([[0] as unknown as readonly [number, number]]),
    InvalidArgumentError,
    { kind: "InvalidArgument", op: "GuestRegionMmap.fromRange" },
  );
  assert.equal(missingSize.argument, "size");
});

Deno.test("guest memory: fromRegions accepts adjacent regions and refuses unsorted ones", () => {
  const a = GuestRegionMmap.fromRange(0, 0x1000);
  const b = GuestRegionMmap.fromRange(0x1000, 0x1000);
  try {
    const mem = GuestMemoryMmap.fromRegions([a, b]);
    assert.equal(mem.numRegions, 2);
    assert.equal(mem.lastAddr(), 0x1fffn);
    expectError(() => GuestMemoryMmap.fromRegions([b, a]), GuestMemoryError, {
      kind: "UnsortedMemoryRegions",
      op: "GuestMemoryMmap.fromRegions",
    });
  } finally {
    a.close();
    b.close();
  }
});

Deno.test("guest memory: findRegion matches the exact start, the last byte, and nothing in holes", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000], [0x4000, 0x2000], [0x6000, 0x1000]]);
  const [a, b, c] = mem.regions();
  assert.equal(mem.findRegion(0x1000), a);
  assert.equal(mem.findRegion(0x1fff), a);
  assert.equal(mem.findRegion(0x2000), undefined);
  assert.equal(mem.findRegion(0xfff), undefined);
  assert.equal(mem.findRegion(0), undefined);
  assert.equal(mem.findRegion(0x3fff), undefined);
  assert.equal(mem.findRegion(0x4000n), b);
  assert.equal(mem.findRegion(0x5fff), b);
  assert.equal(mem.findRegion(0x6000), c);
  assert.equal(mem.findRegion(0x6fff), c);
  assert.equal(mem.findRegion(0x7000), undefined);
  assert.equal(mem.findRegion(U64_MAX), undefined);
  // The last-hit cache must not answer for an address outside the cached region.
  assert.equal(mem.findRegion(0x1800), a);
  assert.equal(mem.findRegion(0x2800), undefined);
  assert.equal(mem.findRegion(0x6800), c);
  assert.equal(mem.findRegion(0x1800), a);
});

Deno.test("guest memory: findRegion over 256 regions finds each start and misses each gap", () => {
  const ranges: Array<[number, number]> = [];
  for (let i = 0; i < 256; i++) ranges.push([i * 0x3000, 0x2000]);
  using mem = GuestMemoryMmap.fromRanges(ranges);
  for (let i = 255; i >= 0; i--) {
    assert.equal(mem.findRegion(i * 0x3000)?.startAddr, BigInt(i * 0x3000));
    assert.equal(mem.findRegion(i * 0x3000 + 0x1fff)?.startAddr, BigInt(i * 0x3000));
    assert.equal(mem.findRegion(i * 0x3000 + 0x2000), undefined);
  }
});

Deno.test("guest memory: toRegionAddr, addressInRange and checkAddress give the region and exact offsets", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000], [0x10000, 0x4000]]);
  const [a, b] = mem.regions();
  const hit = mem.toRegionAddr(0x12345);
  assert.ok(hit);
  assert.equal(hit[0], b);
  assert.equal(hit[1], 0x2345n);
  assert.deepEqual(mem.toRegionAddr(0x1000), [a, 0n]);
  assert.equal(mem.toRegionAddr(0x2000), undefined);
  assert.equal(mem.addressInRange(0x13fff), true);
  assert.equal(mem.addressInRange(0x14000), false);
  assert.equal(mem.checkAddress(0x1fff), 0x1fffn);
  assert.equal(mem.checkAddress(0x2000), undefined);
  assert.equal(mem.checkAddress(0x10000n), 0x10000n);
});

Deno.test("guest memory: lookups refuse negative, fractional and out-of-u64 addresses with InvalidArgument", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const neg = expectError(() => mem.findRegion(-1), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestMemoryMmap.findRegion",
    mentions: ["addr must not be negative"],
  });
  assert.equal(neg.value, -1);
  expectError(() => mem.checkAddress(0.5), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestMemoryMmap.checkAddress",
  });
  expectError(() => mem.toRegionAddr(U64_LIMIT), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestMemoryMmap.toRegionAddr",
  });
  expectError(() => mem.checkRange(0, -1), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestMemoryMmap.checkRange",
  });
});

Deno.test("guest memory: checkRange is true only when every byte is backed, and always for length 0", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x400], [0x400, 0x400], [0x1000, 0x400]]);
  assert.equal(mem.checkRange(0, 0x800), true);
  assert.equal(mem.checkRange(0x3ff, 2), true);
  assert.equal(mem.checkRange(0, 0x801), false);
  assert.equal(mem.checkRange(0x7ff, 1), true);
  assert.equal(mem.checkRange(0x800, 1), false);
  assert.equal(mem.checkRange(0xfff, 2), false);
  assert.equal(mem.checkRange(0x1000, 0x400), true);
  assert.equal(mem.checkRange(0, 0), true);
  assert.equal(mem.checkRange(0x800, 0), true);
  assert.equal(mem.checkRange(U64_MAX, 0), true);
  assert.equal(mem.checkRange(0, Number.MAX_SAFE_INTEGER), false);
  assert.equal(mem.checkRange(U64_MAX, 1), false);
});

Deno.test("guest memory: checkedOffset adds without wrapping and needs the sum to be backed", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x2000, 0x1000]]);
  assert.equal(mem.checkedOffset(0x800, 0x7ff), 0xfffn);
  assert.equal(mem.checkedOffset(0x800, 0x800), undefined);
  assert.equal(mem.checkedOffset(0x800, 0x1800), 0x2000n);
  assert.equal(mem.checkedOffset(0, 0), 0n);
  assert.equal(mem.checkedOffset(0, U64_MAX), undefined);
  assert.equal(mem.checkedOffset(1, U64_MAX), undefined, "2^64 wraps to 0, which is backed, but must not count");
  assert.equal(mem.checkedOffset(U64_MAX, 1n), undefined);
});

Deno.test("guest memory: getHostAddress is the region's host base plus the offset; holes are InvalidGuestAddress", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000], [0x4000, 0x1000]]);
  const [a, b] = mem.regions();
  assert.equal(mem.getHostAddress(0x1000), a.mmap.hostAddress);
  assert.equal(mem.getHostAddress(0x1fff), a.mmap.hostAddress + 0xfffn);
  assert.equal(mem.getHostAddress(0x4010n), b.mmap.hostAddress + 0x10n);
  expectUnbacked(() => mem.getHostAddress(0x2000), "GuestMemoryMmap.getHostAddress", 0x2000n);
});

Deno.test("guest memory: getSlice returns exactly one in-region window over the right bytes", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000], [0x2000, 0x1000]]);
  mem.writeSlice(new Uint8Array([1, 2, 3, 4]), 0x1ffc);
  const s = mem.getSlice(0x1ffc, 4);
  assert.equal(s.len, 4);
  assert.equal(s.hostAddress, mem.getHostAddress(0x1ffc));
  assert.deepEqual([...s.bytes()], [1, 2, 3, 4]);
  assert.equal(mem.getSlice(0x2000, 0x1000).len, 0x1000);
  assert.equal(mem.getSlice(0x2fff, 0).len, 0);
});

Deno.test("guest memory: getSlice crossing a region end is InvalidBackendAddress, starting in a hole InvalidGuestAddress", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000], [0x2000, 0x1000]]);
  expectError(() => mem.getSlice(0x1ffc, 8), InvalidBackendAddressError, {
    kind: "InvalidBackendAddress",
    op: "GuestMemoryMmap.getSlice",
    mentions: ["[0x1ffc, 0x2004)", "[0x1000, 0x1fff]"],
  });
  expectUnbacked(() => mem.getSlice(0x3000, 1), "GuestMemoryMmap.getSlice", 0x3000n);
  const zeroInHole = expectError(() => mem.getSlice(0x3000, 0), InvalidGuestAddressError, {
    kind: "InvalidGuestAddress",
    op: "GuestMemoryMmap.getSlice",
  });
  assert.equal(zeroInHole.addr, 0x3000n);
});

Deno.test("guest memory: getSlices splits at region boundaries (0xa00+0x400 over two regions is 0x200+0x200)", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x800, 0x400], [0xc00, 0x400]]);
  const slices = mem.getSlices(0xa00, 0x400);
  assert.deepEqual(slices.map((s) => s.len), [0x200, 0x200]);
  assert.equal(slices[0].hostAddress, mem.getHostAddress(0xa00));
  assert.equal(slices[1].hostAddress, mem.getHostAddress(0xc00));
  assert.deepEqual(mem.getSlices(0x800, 0x800).map((s) => s.len), [0x400, 0x400]);
  assert.deepEqual(mem.getSlices(0x900, 0x10).map((s) => s.len), [0x10]);
});

Deno.test("guest memory: getSlices of length 0 is empty at any address, even an unbacked one", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
  assert.deepEqual(mem.getSlices(0x1000, 0), []);
  assert.deepEqual(mem.getSlices(0, 0), []);
  assert.deepEqual(mem.getSlices(U64_MAX, 0), []);
  assert.deepEqual(mem.getSlicesResult(0x5000, 0), { slices: [] });
});

Deno.test("guest memory: the first failing fragment throws; a later one ends the list and getSlicesResult says why", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x400], [0x800, 0x400]]);
  expectUnbacked(() => mem.getSlices(0x400, 0x10), "GuestMemoryMmap.getSlices", 0x400n);

  const partial = mem.getSlices(0, 0x500);
  assert.deepEqual(partial.map((s) => s.len), [0x400]);

  const result = mem.getSlicesResult(0, 0x500);
  assert.deepEqual(result.slices.map((s) => s.len), [0x400]);
  assert.ok(result.error instanceof InvalidGuestAddressError);
  assert.equal(result.error.addr, 0x400n);
  assert.equal(result.error.op, "GuestMemoryMmap.getSlicesResult");

  // The walk never resumes after the hole, even though [0x800, 0xc00) is backed.
  const across = mem.getSlicesResult(0x300, 0x900);
  assert.deepEqual(across.slices.map((s) => s.len), [0x100]);
  assert.equal((across.error as InvalidGuestAddressError).addr, 0x400n);

  const none = mem.getSlicesResult(0x400, 0x10);
  assert.deepEqual(none.slices, []);
  assert.equal((none.error as InvalidGuestAddressError).addr, 0x400n);

  const complete = mem.getSlicesResult(0x800, 0x400);
  assert.equal(complete.error, undefined);
  assert.deepEqual(complete.slices.map((s) => s.len), [0x400]);
});

Deno.test("guest memory: a region may end at 2^64 - 1 but not at 2^64; ranges running past it stop at 2^64 - 1", () => {
  const top = U64_LIMIT - 0x1001n; // last byte 2^64 - 2
  using mem = GuestMemoryMmap.fromRanges([[top, 0x1000]]);
  assert.equal(mem.lastAddr(), U64_LIMIT - 2n);
  assert.equal(mem.checkRange(top, 0x1000), true);
  assert.equal(mem.checkRange(top, 0x1001), false);
  assert.equal(mem.checkRange(U64_LIMIT - 2n, 2), false);
  assert.equal(mem.checkedOffset(top, 0xfff), U64_LIMIT - 2n);
  assert.equal(mem.checkedOffset(top, 0x1000), undefined);
  const { slices, error } = mem.getSlicesResult(top, 0x2000);
  assert.deepEqual(slices.map((s) => s.len), [0x1000]);
  assert.equal((error as InvalidGuestAddressError).addr, U64_MAX);
  mem.writeU64(U64_LIMIT - 9n, 0x0102030405060708n);
  assert.equal(mem.readU64(U64_LIMIT - 9n), 0x0102030405060708n);

  const atLimit = expectError(() => GuestMemoryMmap.fromRanges([[U64_LIMIT - 0x1000n, 0x1000]]), GuestMemoryError, {
    kind: "InvalidGuestRegion",
    op: "GuestRegionMmap.fromRange",
    mentions: ["0xfffffffffffff000"],
  });
  assert.equal(atLimit.name, "InvalidGuestRegionError");
});

Deno.test("guest memory: regions above 2^53 are reached with bigint addresses; a number never aliases them", () => {
  const high = 1n << 60n;
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000], [high, 0x2000]]);
  mem.writeU32(high + 0x1ffcn, 0xfeedface);
  assert.equal(mem.readU32(high + 0x1ffcn), 0xfeedface);
  assert.equal(mem.findRegion(high + 0x1fffn)?.startAddr, high);
  assert.equal(mem.checkRange(high, 0x2000), true);
  assert.deepEqual(mem.toRegionAddr(high + 5n)?.[1], 5n);
  // 2^60 as a number would be unsafe and is refused rather than rounded.
  expectError(() => mem.readU8(2 ** 60), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestMemoryMmap.readU8",
  });
});

Deno.test("guest memory: a region straddling 2^53 is reached by numbers below 2^53 and bigints above", () => {
  const base = 2 ** 53 - 0x1000;
  using mem = GuestMemoryMmap.fromRanges([[base, 0x2000]]);
  mem.writeU32(base + 0xffc, 0x11223344);
  mem.writeU32(2n ** 53n, 0x55667788);
  assert.equal(mem.readU32(BigInt(base) + 0xffcn), 0x11223344);
  assert.equal(mem.readU64(base + 0xff8) >> 32n, 0x11223344n);
  assert.equal(mem.readU32(2n ** 53n), 0x55667788);
  assert.deepEqual(mem.getSlices(base + 0xffc, 8).map((s) => s.len), [8]);
});

Deno.test("guest memory: insertRegion returns a new collection and leaves the old one usable", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x4000, 0x1000]]);
  mem.writeU32(0x10, 0xabcd);
  const added = GuestRegionMmap.fromRange(0x2000, 0x1000);
  const bigger = mem.insertRegion(added);
  assert.equal(mem.numRegions, 2);
  assert.equal(bigger.numRegions, 3);
  assert.deepEqual(bigger.regions().map((r) => r.startAddr), [0n, 0x2000n, 0x4000n]);
  assert.equal(mem.findRegion(0x2000), undefined);
  assert.equal(bigger.findRegion(0x2000), added);
  // The regions are shared: a write through either collection is visible through the other.
  assert.equal(bigger.readU32(0x10), 0xabcd);
  bigger.writeU8(0x4000, 0x5a);
  assert.equal(mem.readU8(0x4000), 0x5a);
  bigger.writeU8(0x2000, 1);
  assert.equal(added.readU8(0), 1);
  expectError(() => mem.readU8(0x2000), InvalidGuestAddressError, {
    kind: "InvalidGuestAddress",
    op: "GuestMemoryMmap.readU8",
  });
  added.close();
});

Deno.test("guest memory: insertRegion overlapping an existing region is MemoryRegionOverlap and changes nothing", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x2000]]);
  using overlapping = GuestRegionMmap.fromRange(0x2fff, 0x1000);
  expectError(() => mem.insertRegion(overlapping), GuestMemoryError, {
    kind: "MemoryRegionOverlap",
    op: "GuestMemoryMmap.insertRegion",
    mentions: ["[0x1000, 0x2fff]", "[0x2fff, 0x3ffe]"],
  });
  expectError(() => mem.insertRegion(mem.regions()[0]), GuestMemoryError, {
    kind: "MemoryRegionOverlap",
    op: "GuestMemoryMmap.insertRegion",
  });
  assert.equal(mem.numRegions, 1);
  assert.equal(mem.findRegion(0x3000), undefined);
  const bad = expectError(
    () => mem.insertRegion({} as GuestRegionMmap),
    InvalidArgumentError,
    { kind: "InvalidArgument", op: "GuestMemoryMmap.insertRegion" },
  );
  assert.equal(bad.argument, "region");
});

Deno.test("guest memory: removeRegion needs the exact base and size and returns the region, still open", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x1000, 0x2000], [0x8000, 0x1000]]);
  const middle = mem.regions()[1];
  for (const [base, size] of [[0x1000, 0x1000], [0x1001, 0x2000], [0x1000, 0x2001], [0x3000, 0x1000]]) {
    expectError(() => mem.removeRegion(base, size), GuestMemoryError, {
      kind: "NoMemoryRegion",
      op: "GuestMemoryMmap.removeRegion",
      mentions: [`0x${base.toString(16)}`, `0x${size.toString(16)}`],
    });
  }
  const [smaller, removed] = mem.removeRegion(0x1000n, 0x2000);
  assert.equal(removed, middle);
  assert.equal(smaller.numRegions, 2);
  assert.deepEqual(smaller.regions().map((r) => r.startAddr), [0n, 0x8000n]);
  assert.equal(smaller.checkRange(0, 0x2000), false);
  assert.equal(mem.numRegions, 3, "the original collection is unchanged");
  assert.equal(mem.checkRange(0, 0x3000), true);
  removed.writeU8(0, 7);
  assert.equal(mem.readU8(0x1000), 7);
});

Deno.test("guest memory: removing the last region gives an empty collection, as vm-memory's remove_region", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
  const only = mem.regions()[0];
  const [none, removed] = mem.removeRegion(0x1000, 0x1000);
  assert.equal(removed, only);
  assert.equal(none.numRegions, 0);
  assert.deepEqual(none.regions(), []);
  assert.equal(none.lastAddr(), 0n);
  expectUnbacked(() => none.readU32(0x1000), "GuestMemoryMmap.readU32", 0x1000n);
  expectError(() => none.removeRegion(0x1000, 0x1000), GuestMemoryError, {
    kind: "NoMemoryRegion",
    op: "GuestMemoryMmap.removeRegion",
    mentions: ["0x1000"],
  });
  assert.equal(mem.numRegions, 1, "the original collection is unchanged");
  removed.writeU8(0, 9);
  assert.equal(mem.readU8(0x1000), 9, "the removed region stays open");
});

Deno.test("guest memory: an empty collection finds nothing and fails every access at its address", () => {
  const none = GuestMemoryMmap.empty();
  assert.equal(none.numRegions, 0);
  assert.equal(none.lastAddr(), 0n, "vm-memory folds last addresses from 0");
  assert.equal(none.findRegion(0), undefined);
  assert.equal(none.toRegionAddr(0x10), undefined);
  assert.equal(none.addressInRange(0x10), false);
  assert.equal(none.checkAddress(0x10), undefined);
  assert.equal(none.checkedOffset(0x10, 0), undefined);
  assert.equal(none.checkRange(0, 1), false);
  assert.equal(none.checkRange(0x10, 0), true, "an empty range needs no memory");
  assert.deepEqual(none.getSlices(0x10, 0), []);
  assert.equal(none.write(new Uint8Array(0), 0x10), 0);
  assert.equal(none.readVolatileFrom(0x10, new Uint8Array(4), 0), 0);
  const result = none.getSlicesResult(0x10, 4);
  assert.deepEqual(result.slices, []);
  assert.ok(result.error instanceof InvalidGuestAddressError);
  assert.equal(result.error.addr, 0x10n);
  const big = (1n << 60n) + 8n;
  const cases: Array<[string, AddressLike, (a: AddressLike) => unknown]> = [
    ["getSlices", 0x10, (a) => none.getSlices(a, 4)],
    ["getSlice", 0x10, (a) => none.getSlice(a, 0)],
    ["getHostAddress", 0x10, (a) => none.getHostAddress(a)],
    ["read", 0x10, (a) => none.read(new Uint8Array(4), a)],
    ["writeSlice", 0x10, (a) => none.writeSlice(new Uint8Array(4), a)],
    ["readU8", 0x10, (a) => none.readU8(a)],
    ["readU64", 2 ** 40, (a) => none.readU64(a)],
    ["writeU32", big, (a) => none.writeU32(a, 1)],
    ["loadU32", 0x10, (a) => none.loadU32(a)],
    ["storeU64", 0x10, (a) => none.storeU64(a, 1n)],
    ["readVolatileFrom", 0x10, (a) => none.readVolatileFrom(a, new Uint8Array(4), 4)],
    ["writeVolatileTo", 0x10, (a) => none.writeVolatileTo(a, new Uint8Array(4), 4)],
  ];
  for (const [name, addr, fn] of cases) expectUnbacked(() => fn(addr), `GuestMemoryMmap.${name}`, BigInt(addr));
  assert.deepEqual(none.toShared(), { regions: [] });
  assert.equal(GuestMemoryMmap.fromShared(none.toShared()).numRegions, 0, "a worker's view of it is empty too");
  none.close();
});

Deno.test("guest memory: regions inserted into an empty collection are found and accessed", () => {
  const none = GuestMemoryMmap.empty();
  using mem = none.insertRegion(GuestRegionMmap.fromRange(0x2000, 0x1000));
  assert.equal(none.numRegions, 0, "the empty collection is unchanged");
  assert.equal(mem.numRegions, 1);
  assert.equal(mem.lastAddr(), 0x2fffn);
  assert.equal(mem.write(new Uint8Array([7, 7, 7, 7]), 0x2ffe), 2);
  assert.equal(mem.readU32(0x2ffc), 0x07070000);
  expectUnbacked(() => mem.readU8(0x1fff), "GuestMemoryMmap.readU8", 0x1fffn);
});

Deno.test("guest memory: a region can be re-inserted at another base through its mapping", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x1000, 0x1000]]);
  const [smaller, removed] = mem.removeRegion(0x1000, 0x1000);
  const moved = new GuestRegionMmap(removed.mmap, 0x10000);
  const rebased = smaller.insertRegion(moved);
  rebased.writeU16(0x10000, 0xbeef);
  assert.equal(mem.readU16(0x1000), 0xbeef, "both bases reach the same host pages");
  assert.equal(rebased.getHostAddress(0x10000), mem.getHostAddress(0x1000));
});

Deno.test("guest memory: a range ending exactly at 2^64 is an ordinary miss, never an overflow", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
  // 2^64 - 1 is never guest memory, so [2^64 - 1, 2^64) fails on the address, not on wrapping.
  const end = mem.getSlicesResult(U64_MAX, 1);
  assert.deepEqual(end.slices, []);
  assert.ok(end.error instanceof InvalidGuestAddressError);
  assert.equal(end.error.addr, U64_MAX);
  const write = expectError(() => mem.write(new Uint8Array(1), U64_MAX), InvalidGuestAddressError, {
    kind: "InvalidGuestAddress",
    op: "GuestMemoryMmap.write",
    mentions: ["0xffffffffffffffff"],
  });
  assert.equal(write.addr, U64_MAX);
  const wrap = expectError(() => mem.readU64(U64_MAX - 3n), InvalidGuestAddressError, {
    kind: "InvalidGuestAddress",
    op: "GuestMemoryMmap.readU64",
  });
  assert.equal(wrap.addr, U64_MAX - 3n);
  assert.equal(mem.checkRange(U64_MAX, 1), false);
  assert.equal(mem.checkRange(U64_MAX - 1n, 2), false);
});

Deno.test("guest memory: the backend ignores the access argument and is its own physical memory", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x400], [0x400, 0x400]]);
  // A GuestMemoryMmap is a GuestMemory (it declares so), usable as one with no cast.
  const asGuestMemory: GuestMemory = mem;
  assert.equal(asGuestMemory.physicalMemory(), mem);
  for (const access of [Permissions.No, Permissions.Read, Permissions.Write, Permissions.ReadWrite]) {
    assert.equal(mem.checkRange(0x300, 0x200, access), true);
    assert.equal(mem.checkRange(0x700, 0x200, access), false);
    assert.deepEqual(mem.getSlices(0x300, 0x200, access).map((s) => s.len), [0x100, 0x100]);
  }
});
