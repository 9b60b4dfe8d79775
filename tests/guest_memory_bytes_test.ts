// Bytes on guest addresses: buffers across regions and holes, partial counts, zero-length accesses.
import assert from "node:assert/strict";
import { GuestMemoryMmap, InvalidArgumentError, U64_MAX } from "../mod.ts";
import { expectError, expectPartial, expectUnbacked } from "./fixtures/guest_assert.ts";

function pattern(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

Deno.test("guest bytes: write and read return the full count inside one region and copy the exact bytes", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
  const data = pattern(100);
  assert.equal(mem.write(data, 0x1100), 100);
  const back = new Uint8Array(100);
  assert.equal(mem.read(back, 0x1100n), 100);
  assert.deepEqual(back, data);
  const around = new Uint8Array(102);
  mem.read(around, 0x10ff);
  assert.equal(around[0], 0);
  assert.equal(around[101], 0);
  assert.deepEqual(around.subarray(1, 101), data);
});

Deno.test("guest bytes: a write running into a hole returns the partial count (region [0x1000,0x1400), 5 bytes at 0x13ff -> 1)", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x400]]);
  assert.equal(mem.write(new Uint8Array([9, 8, 7, 6, 5]), 0x13ff), 1);
  assert.equal(mem.readU8(0x13ff), 9);
  const out = new Uint8Array(5).fill(0xee);
  assert.equal(mem.read(out, 0x13ff), 1);
  assert.deepEqual([...out], [9, 0xee, 0xee, 0xee, 0xee], "bytes past the hole are not touched");
});

Deno.test("guest bytes: a write that starts in a hole throws InvalidGuestAddress with the start address", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x400]]);
  for (const addr of [0x1400, 0x0, 0xfff]) {
    expectUnbacked(() => mem.write(new Uint8Array(4), addr), "GuestMemoryMmap.write", BigInt(addr));
  }
  expectUnbacked(() => mem.read(new Uint8Array(1), 0x2000n), "GuestMemoryMmap.read", 0x2000n);
});

Deno.test("guest bytes: writeSlice and readSlice cross adjacent regions byte for byte", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x1000, 0x1000], [0x2000, 0x1000]]);
  const data = pattern(0x2000, 7);
  mem.writeSlice(data, 0x800);
  const back = new Uint8Array(0x2000);
  mem.readSlice(back, 0x800);
  assert.deepEqual(back, data);
  // Each region holds its own part.
  const [a, b, c] = mem.regions();
  const inA = new Uint8Array(0x800), inB = new Uint8Array(0x1000), inC = new Uint8Array(0x800);
  a.readSlice(inA, 0x800);
  b.readSlice(inB, 0);
  c.readSlice(inC, 0);
  assert.deepEqual(inA, data.subarray(0, 0x800));
  assert.deepEqual(inB, data.subarray(0x800, 0x1800));
  assert.deepEqual(inC, data.subarray(0x1800));
});

Deno.test("guest bytes: writeSlice into a hole is PartialBuffer with expected/completed; the leading bytes stay written", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x400]]);
  const e = expectPartial(
    () => mem.writeSlice(new Uint8Array([1, 2, 3, 4, 5]), 0x13fe),
    "GuestMemoryMmap.writeSlice",
    5,
    2,
    ["0x13fe", "only 2 of 5"],
  );
  assert.equal(e.addr, 0x13fen);
  assert.equal(mem.readU16(0x13fe), 0x0201);

  const out = new Uint8Array(8);
  expectPartial(() => mem.readSlice(out, 0x13fc), "GuestMemoryMmap.readSlice", 8, 4, ["0x13fc"]);
  assert.deepEqual([...out.subarray(0, 4)], [0, 0, 1, 2]);
});

Deno.test("guest bytes: readSlice/writeSlice starting in a hole are InvalidGuestAddress, not PartialBuffer", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x2000]]);
  expectUnbacked(() => mem.writeSlice(new Uint8Array(8), 0x2001), "GuestMemoryMmap.writeSlice", 0x2001n);
});

Deno.test("guest bytes: a hole between two regions stops the transfer; the region after it is not written", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x2000, 0x1000]]);
  assert.equal(mem.write(new Uint8Array(0x1800).fill(0xaa), 0x800), 0x800);
  assert.equal(mem.readU8(0xfff), 0xaa);
  assert.equal(mem.readU8(0x2000), 0);
});

Deno.test("guest bytes: zero-length buffers give 0 at any address, even unbacked or the top of u64", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
  const empty = new Uint8Array(0);
  for (const addr of [0x1000, 0x1fff, 0x2000, 0, 0x5000, U64_MAX]) {
    assert.equal(mem.write(empty, addr), 0);
    assert.equal(mem.read(empty, addr), 0);
    mem.writeSlice(empty, addr);
    mem.readSlice(empty, addr);
    assert.equal(mem.readVolatileFrom(addr, new Uint8Array(4), 0), 0);
    assert.equal(mem.writeVolatileTo(addr, new Uint8Array(4), 0), 0);
    mem.readExactVolatileFrom(addr, new Uint8Array(4), 0);
    mem.writeAllVolatileTo(addr, new Uint8Array(4), 0);
  }
});

Deno.test("guest bytes: a bad address or buffer is InvalidArgument even when nothing would be copied", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const e = expectError(() => mem.write(new Uint8Array(0), -1), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestMemoryMmap.write",
  });
  assert.equal(e.argument, "addr");
  expectError(() => mem.read(new Uint8Array(1), 1n << 64n), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestMemoryMmap.read",
  });
  const buf = expectError(() => mem.write([1, 2] as unknown as Uint8Array, 0), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestMemoryMmap.write",
  });
  assert.equal(buf.argument, "buf");
});

Deno.test("guest bytes: a u64 at 0x1ffc over [0,0x2000) is PartialBuffer {expected: 8, completed: 4}", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x2000]]);
  expectPartial(() => mem.writeU64(0x1ffc, 0x1122334455667788n), "GuestMemoryMmap.writeU64", 8, 4, ["0x1ffc"]);
  assert.equal(mem.readU32(0x1ffc), 0x55667788, "the low half landed before the hole");
  expectPartial(() => mem.readU64(0x1ffc), "GuestMemoryMmap.readU64", 8, 4);
  expectPartial(() => mem.readU16(0x1fff), "GuestMemoryMmap.readU16", 2, 1);
  expectUnbacked(() => mem.writeU64(0x2001, 1n), "GuestMemoryMmap.writeU64", 0x2001n);
});

Deno.test("guest bytes: every scalar width crosses adjacent regions whole, at every split point", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x1000, 0x1000]]);
  for (let back = 1; back < 8; back++) {
    const at = 0x1000 - back;
    mem.writeU64(at, 0x8877665544332211n);
    assert.equal(mem.readU64(at), 0x8877665544332211n, `u64 split ${back}/${8 - back}`);
    const bytes = new Uint8Array(8);
    mem.readSlice(bytes, at);
    assert.deepEqual([...bytes], [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    if (back < 4) {
      mem.writeU32(at, 0xa1b2c3d4);
      assert.equal(mem.readU32(at), 0xa1b2c3d4);
      mem.writeF32BE(at, -2.5);
      assert.equal(mem.readF32BE(at), -2.5);
    }
    if (back < 2) {
      mem.writeU16BE(at, 0xbeef);
      assert.equal(mem.readU8(at), 0xbe);
      assert.equal(mem.readU8(at + 1), 0xef);
    }
  }
  mem.writeF64(0xffc, Math.PI);
  assert.equal(mem.readF64(0xffc), Math.PI);
  mem.writeI64BE(0xffd, -2n);
  assert.equal(mem.readI64BE(0xffd), -2n);
});

Deno.test("guest bytes: scalar slow paths with bigint addresses give the same bytes as the number fast path", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x10000, 0x1000]]);
  mem.writeU32(0x10010n, 0xcafef00d);
  assert.equal(mem.readU32(0x10010), 0xcafef00d);
  mem.writeU64(0x10020, 0x0123456789abcdefn);
  assert.equal(mem.readU64(0x10020n), 0x0123456789abcdefn);
  mem.writeU16(0x10031n, 0x1234);
  assert.equal(mem.readU16(0x10031), 0x1234);
});
