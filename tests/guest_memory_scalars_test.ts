// Scalar reads and writes on guest addresses: byte order, signedness, floats, value checks, and
// the aligned single-access fast path checked byte for byte through a second mapping of the memfd.
import assert from "node:assert/strict";
import { GuestMemoryMmap, InvalidArgumentError } from "../mod.ts";
import { aliasedMemory, expectError } from "./fixtures/guest_assert.ts";

/** The little-endian bytes of `value` in `size` bytes. */
function leBytes(value: bigint, size: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < size; i++) out.push(Number((value >> BigInt(8 * i)) & 0xffn));
  return out;
}

Deno.test("guest scalars: little-endian unsigned writes store the exact bytes at every offset 0..16", () => {
  using m = aliasedMemory(0x1000, 0x2000);
  const { mem, alias } = m;
  for (let off = 0; off <= 16; off++) {
    const a = 0x1100 + off;
    alias.fill(0, 0x100, 0x120);
    mem.writeU8(a, 0xa5);
    assert.deepEqual([...alias.subarray(0x100 + off, 0x101 + off)], [0xa5]);
    mem.writeU16(a, 0xb2a1);
    assert.deepEqual([...alias.subarray(0x100 + off, 0x102 + off)], [0xa1, 0xb2], `u16 at +${off}`);
    mem.writeU32(a, 0xd4c3b2a1);
    assert.deepEqual([...alias.subarray(0x100 + off, 0x104 + off)], [0xa1, 0xb2, 0xc3, 0xd4], `u32 at +${off}`);
    mem.writeU64(a, 0x0807060504030201n);
    assert.deepEqual([...alias.subarray(0x100 + off, 0x108 + off)], [1, 2, 3, 4, 5, 6, 7, 8], `u64 at +${off}`);
    assert.equal(alias[0x108 + off], 0, "nothing written past the scalar");
    if (off > 0) assert.equal(alias[0x100 + off - 1], 0, "nothing written before the scalar");
  }
});

Deno.test("guest scalars: reads see bytes stored through the other mapping at every offset and width", () => {
  using m = aliasedMemory(0x1000, 0x2000);
  const { mem, alias } = m;
  for (let i = 0; i < 64; i++) alias[0x200 + i] = (i * 37 + 11) & 0xff;
  const expect = (off: number, size: number): bigint => {
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(alias[0x200 + off + i]);
    return v;
  };
  for (let off = 0; off < 24; off++) {
    const a = 0x1200 + off;
    assert.equal(mem.readU8(a), Number(expect(off, 1)));
    assert.equal(mem.readU16(a), Number(expect(off, 2)), `u16 at +${off}`);
    assert.equal(mem.readU32(a), Number(expect(off, 4)), `u32 at +${off}`);
    assert.equal(mem.readU64(a), expect(off, 8), `u64 at +${off}`);
    assert.equal(mem.readU16BE(a), Number(expect(off, 2) >> 8n | (expect(off, 2) & 0xffn) << 8n), `u16be at +${off}`);
  }
});

Deno.test("guest scalars: an odd guest base keeps values right (alignment follows the host mapping)", () => {
  using m = aliasedMemory(0x1001, 0x1000);
  const { mem, alias } = m;
  for (let off = 0; off < 16; off++) {
    const a = 0x1001 + 0x40 + off;
    mem.writeU64(a, 0xf1e2d3c4b5a69788n);
    assert.deepEqual([...alias.subarray(0x40 + off, 0x48 + off)], leBytes(0xf1e2d3c4b5a69788n, 8), `+${off}`);
    assert.equal(mem.readU64(a), 0xf1e2d3c4b5a69788n);
    mem.writeU32(a, 0x01020304);
    assert.equal(mem.readU32(a), 0x01020304);
    assert.deepEqual([...alias.subarray(0x40 + off, 0x44 + off)], [4, 3, 2, 1]);
  }
});

Deno.test("guest scalars: big-endian forms store the most significant byte first", () => {
  using m = aliasedMemory(0, 0x1000);
  const { mem, alias } = m;
  mem.writeU16BE(0x10, 0x1234);
  assert.deepEqual([...alias.subarray(0x10, 0x12)], [0x12, 0x34]);
  assert.equal(mem.readU16BE(0x10), 0x1234);
  assert.equal(mem.readU16(0x10), 0x3412);
  mem.writeU32BE(0x21, 0x89abcdef);
  assert.deepEqual([...alias.subarray(0x21, 0x25)], [0x89, 0xab, 0xcd, 0xef]);
  assert.equal(mem.readU32BE(0x21), 0x89abcdef);
  mem.writeU64BE(0x30, 0x0102030405060708n);
  assert.deepEqual([...alias.subarray(0x30, 0x38)], [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(mem.readU64BE(0x30), 0x0102030405060708n);
  assert.equal(mem.readU64(0x30), 0x0807060504030201n);
  mem.writeI16BE(0x40, -2);
  assert.deepEqual([...alias.subarray(0x40, 0x42)], [0xff, 0xfe]);
  assert.equal(mem.readI16BE(0x40), -2);
  mem.writeI32BE(0x44, -0x12345678);
  assert.equal(mem.readI32BE(0x44), -0x12345678);
  assert.deepEqual([...alias.subarray(0x44, 0x48)], [0xed, 0xcb, 0xa9, 0x88]);
  mem.writeI64BE(0x48, -0x0102030405060708n);
  assert.equal(mem.readI64BE(0x48), -0x0102030405060708n);
  assert.equal(alias[0x48], 0xfe);
  mem.writeF32BE(0x50, 1.5);
  assert.deepEqual([...alias.subarray(0x50, 0x54)], [0x3f, 0xc0, 0, 0]);
  assert.equal(mem.readF32BE(0x50), 1.5);
  mem.writeF64BE(0x58, -0.1);
  assert.deepEqual([...alias.subarray(0x58, 0x60)], [0xbf, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a]);
  assert.equal(mem.readF64BE(0x58), -0.1);
});

Deno.test("guest scalars: signed forms sign-extend on read and accept their full range on write", () => {
  using m = aliasedMemory(0, 0x1000);
  const { mem, alias } = m;
  mem.writeI8(0, -128);
  assert.equal(alias[0], 0x80);
  assert.equal(mem.readI8(0), -128);
  assert.equal(mem.readU8(0), 128);
  mem.writeI8(1, 127);
  assert.equal(mem.readI8(1), 127);
  mem.writeI16(2, -32768);
  assert.equal(mem.readI16(2), -32768);
  assert.equal(mem.readU16(2), 0x8000);
  mem.writeI32(4, -1);
  assert.equal(mem.readI32(4), -1);
  assert.equal(mem.readU32(4), 0xffffffff);
  mem.writeI32(8, -0x80000000);
  assert.deepEqual([...alias.subarray(8, 12)], [0, 0, 0, 0x80]);
  mem.writeI64(16, -(1n << 63n));
  assert.equal(mem.readI64(16), -(1n << 63n));
  assert.equal(mem.readU64(16), 1n << 63n);
  mem.writeI64(24, -5);
  assert.equal(mem.readI64(24), -5n);
  assert.deepEqual([...alias.subarray(24, 32)], [0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  mem.writeI16(33, -300);
  assert.equal(mem.readI16(33), -300, "unaligned signed");
});

Deno.test("guest scalars: f32 and f64 round-trip exactly, including NaN bits, infinities and -0", () => {
  using m = aliasedMemory(0, 0x1000);
  const { mem, alias } = m;
  mem.writeF32(0, 3.140000104904175);
  assert.equal(mem.readF32(0), 3.140000104904175);
  mem.writeF32(5, -1e-40);
  assert.equal(mem.readF32(5), Math.fround(-1e-40));
  mem.writeF64(8, Number.MAX_VALUE);
  assert.equal(mem.readF64(8), Number.MAX_VALUE);
  mem.writeF64(17, -Infinity);
  assert.equal(mem.readF64(17), -Infinity);
  mem.writeF64(32, -0);
  assert.ok(Object.is(mem.readF64(32), -0));
  assert.deepEqual([...alias.subarray(32, 40)], [0, 0, 0, 0, 0, 0, 0, 0x80]);
  mem.writeF32(40, NaN);
  assert.ok(Number.isNaN(mem.readF32(40)));
  mem.writeF32(44, 1);
  assert.deepEqual([...alias.subarray(44, 48)], [0, 0, 0x80, 0x3f]);
});

Deno.test("guest scalars: readU64Number returns numbers below 2^53 and refuses 2^53 and above", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  mem.writeU64(0, 2 ** 53 - 1);
  assert.equal(mem.readU64Number(0), 2 ** 53 - 1);
  mem.writeU64(8, 1n << 53n);
  const e = expectError(() => mem.readU64Number(8), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestMemoryMmap.readU64Number",
    mentions: ["2^53"],
  });
  assert.equal(e.value, 1n << 53n);
  mem.writeU64(16, 0xffffffffffffffffn);
  expectError(() => mem.readU64Number(16), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestMemoryMmap.readU64Number",
  });
});

Deno.test("guest scalars: out-of-range or non-integer values are InvalidArgument and write nothing", () => {
  using m = aliasedMemory(0, 0x1000);
  const { mem, alias } = m;
  const cases: Array<[string, () => void]> = [
    ["writeU8", () => mem.writeU8(0, 256)],
    ["writeU8", () => mem.writeU8(0, -1)],
    ["writeU16", () => mem.writeU16(0, 0x10000)],
    ["writeU32", () => mem.writeU32(0, 2 ** 32)],
    ["writeU32", () => mem.writeU32(0, 1.5)],
    ["writeU64", () => mem.writeU64(0, -1n)],
    ["writeU64", () => mem.writeU64(0, 1n << 64n)],
    ["writeU64", () => mem.writeU64(0, 2 ** 53)],
    ["writeI8", () => mem.writeI8(0, 128)],
    ["writeI16", () => mem.writeI16(0, -32769)],
    ["writeI32", () => mem.writeI32(0, 0x80000000)],
    ["writeI64", () => mem.writeI64(0, 1n << 63n)],
    ["writeI64", () => mem.writeI64(0, -(1n << 63n) - 1n)],
    ["writeI64", () => mem.writeI64(0, 0.5)],
    ["writeU16BE", () => mem.writeU16BE(0, -1)],
    ["writeI64BE", () => mem.writeI64BE(0, 1n << 63n)],
    ["writeF32", () => mem.writeF32(0, "1" as unknown as number)],
    ["writeF64BE", () => mem.writeF64BE(0, 1n as unknown as number)],
  ];
  for (const [op, fn] of cases) {
    const e = expectError(fn, InvalidArgumentError, { kind: "InvalidArgument", op: `GuestMemoryMmap.${op}` });
    assert.equal(e.argument, "value");
  }
  assert.ok(alias.subarray(0, 8).every((b) => b === 0));
});

Deno.test("guest scalars: u8/u16/u32 writes refuse every number their bit mask would wrap, and call no valueOf", () => {
  using m = aliasedMemory(0, 0x1000);
  const { mem, alias } = m;
  let called = 0;
  const sneaky = { valueOf: () => (called++, 7) } as unknown as number;
  const bad: Array<[string, (v: number) => void, number[]]> = [
    ["writeU8", (v) => mem.writeU8(0, v), [1.5, NaN, Infinity, -Infinity, 2 ** 32 + 5, 2 ** 53, -256, 255.5]],
    ["writeU16", (v) => mem.writeU16(0, v), [65535.5, NaN, 2 ** 32 + 1, -65536, 1e300]],
    ["writeU32", (v) => mem.writeU32(0, v), [-1, 2 ** 32 + 1, 2 ** 33, NaN, -Infinity, 0.25, 1e300]],
  ];
  for (const [op, write, values] of bad) {
    for (const v of [...values, sneaky, "7" as unknown as number]) {
      const e = expectError(() => write(v), InvalidArgumentError, {
        kind: "InvalidArgument",
        op: `GuestMemoryMmap.${op}`,
      });
      assert.equal(e.argument, "value");
    }
  }
  assert.equal(called, 0);
  assert.ok(alias.subarray(0, 8).every((b) => b === 0));
  // The edges are taken, and -0 is 0.
  mem.writeU8(0, 255);
  mem.writeU16(2, 65535);
  mem.writeU32(4, 2 ** 32 - 1);
  mem.writeU8(1, -0);
  assert.deepEqual([...alias.subarray(0, 8)], [255, 0, 255, 255, 255, 255, 255, 255]);
});
