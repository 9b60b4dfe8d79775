// Atomics on guest addresses: exact old values, wrapping, natural alignment, single-region rule.
import assert from "node:assert/strict";
import { GuestMemoryMmap, InvalidArgumentError, InvalidBackendAddressError, MisalignedError } from "../mod.ts";
import { aliasedMemory, expectError, expectUnbacked } from "./fixtures/guest_assert.ts";

Deno.test("guest atomics: load and store of 8/16/32/64 bits hit the exact bytes", () => {
  using m = aliasedMemory(0x1000, 0x1000);
  const { mem, alias } = m;
  mem.storeU8(0x1001, 0xab);
  assert.equal(alias[1], 0xab);
  assert.equal(mem.loadU8(0x1001), 0xab);
  mem.storeU16(0x1002, 0xc0de);
  assert.deepEqual([...alias.subarray(2, 4)], [0xde, 0xc0]);
  assert.equal(mem.loadU16(0x1002n), 0xc0de);
  mem.storeU32(0x1004, 0xfedcba98);
  assert.deepEqual([...alias.subarray(4, 8)], [0x98, 0xba, 0xdc, 0xfe]);
  assert.equal(mem.loadU32(0x1004), 0xfedcba98);
  mem.storeU64(0x1008, 0xffffffffffffffffn);
  assert.ok(alias.subarray(8, 16).every((b) => b === 0xff));
  assert.equal(mem.loadU64(0x1008), 0xffffffffffffffffn);
  mem.storeU64(0x1010, 5);
  assert.equal(mem.loadU64(0x1010), 5n);
  alias[0x20] = 0x34;
  alias[0x21] = 0x12;
  assert.equal(mem.loadU16(0x1020), 0x1234, "a load sees the other mapping's bytes");
});

Deno.test("guest atomics: compareExchange returns the old value and swaps only on a match", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  mem.storeU8(0, 7);
  assert.equal(mem.compareExchangeU8(0, 6, 9), 7);
  assert.equal(mem.loadU8(0), 7);
  assert.equal(mem.compareExchangeU8(0, 7, 9), 7);
  assert.equal(mem.loadU8(0), 9);

  mem.storeU16(2, 0x1111);
  assert.equal(mem.compareExchangeU16(2, 0x1111, 0xffff), 0x1111);
  assert.equal(mem.compareExchangeU16(2, 0x1111, 0), 0xffff);
  assert.equal(mem.loadU16(2), 0xffff);

  mem.storeU32(4, 0x80000000);
  assert.equal(mem.compareExchangeU32(4, 0x80000000, 0xffffffff), 0x80000000);
  assert.equal(mem.loadU32(4), 0xffffffff);
  assert.equal(mem.compareExchangeU32(4, 0, 1), 0xffffffff);

  mem.storeU64(8, 1n << 63n);
  assert.equal(mem.compareExchangeU64(8, 1n << 63n, 3n), 1n << 63n);
  assert.equal(mem.compareExchangeU64(8, 4, 5), 3n);
  assert.equal(mem.loadU64(8), 3n);
  assert.equal(mem.compareExchangeU64(8, 3, 0xffffffffffffffffn), 3n);
  assert.equal(mem.loadU64(8), 0xffffffffffffffffn);
});

Deno.test("guest atomics: add wraps at the width and returns the old value", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  mem.storeU8(0, 250);
  assert.equal(mem.addU8(0, 10), 250);
  assert.equal(mem.loadU8(0), 4);
  mem.storeU16(2, 0xfffe);
  assert.equal(mem.addU16(2, 3), 0xfffe);
  assert.equal(mem.loadU16(2), 1);
  mem.storeU32(4, 0xffffffff);
  assert.equal(mem.addU32(4, 2), 0xffffffff);
  assert.equal(mem.loadU32(4), 1);
  mem.storeU64(8, 0xffffffffffffffffn);
  assert.equal(mem.addU64(8, 2n), 0xffffffffffffffffn);
  assert.equal(mem.loadU64(8), 1n);
  assert.equal(mem.addU64(8, 41), 1n);
  assert.equal(mem.loadU64(8), 42n);
});

Deno.test("guest atomics: or sets bits and returns the old value", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  mem.storeU8(0, 0x0f);
  assert.equal(mem.orU8(0, 0xf0), 0x0f);
  assert.equal(mem.loadU8(0), 0xff);
  mem.storeU16(2, 0x0100);
  assert.equal(mem.orU16(2, 0x8001), 0x0100);
  assert.equal(mem.loadU16(2), 0x8101);
  mem.storeU32(4, 0x80000000);
  assert.equal(mem.orU32(4, 1), 0x80000000);
  assert.equal(mem.loadU32(4), 0x80000001);
  mem.storeU64(8, 1n << 63n);
  assert.equal(mem.orU64(8, 1n << 32n), 1n << 63n);
  assert.equal(mem.loadU64(8), (1n << 63n) | (1n << 32n));
});

Deno.test("guest atomics: a misaligned atomic is Misaligned with the address and the alignment", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
  const cases: Array<[string, number, number, () => unknown]> = [
    ["loadU16", 0x1001, 2, () => mem.loadU16(0x1001)],
    ["storeU32", 0x1002, 4, () => mem.storeU32(0x1002, 1)],
    ["loadU64", 0x1004, 8, () => mem.loadU64(0x1004)],
    ["compareExchangeU64", 0x100c, 8, () => mem.compareExchangeU64(0x100c, 0, 1)],
    ["addU32", 0x1003, 4, () => mem.addU32(0x1003, 1)],
    ["orU16", 0x1ffd, 2, () => mem.orU16(0x1ffd, 1)],
  ];
  for (const [op, addr, alignment, fn] of cases) {
    const e = expectError(fn, MisalignedError, {
      kind: "Misaligned",
      op: `GuestMemoryMmap.${op}`,
      mentions: [`0x${addr.toString(16)}`, `${alignment} bytes`],
    });
    assert.equal(e.addr, BigInt(addr));
    assert.equal(e.alignment, alignment);
  }
  assert.equal(mem.loadU64(0x1000), 0n, "nothing was stored");
});

Deno.test("guest atomics: alignment is the host alignment (region offset), not the guest address", () => {
  // vm-memory checks the host pointer; regions are page-aligned on the host, so with an odd guest
  // base the guest address 0x1001 is the aligned one.
  using mem = GuestMemoryMmap.fromRanges([[0x1001, 0x1000]]);
  mem.storeU64(0x1001, 0x1234n);
  assert.equal(mem.loadU64(0x1001), 0x1234n);
  const e = expectError(() => mem.loadU32(0x1000 + 0x10), MisalignedError, {
    kind: "Misaligned",
    op: "GuestMemoryMmap.loadU32",
    mentions: ["0x1010"],
  });
  assert.equal(e.addr, 0x1010n);
  assert.equal(e.alignment, 4);
});

Deno.test("guest atomics: an atomic crossing a region end is InvalidBackendAddress even if the next region is adjacent", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1004], [0x1004, 0x1000]]);
  // 0x1000 is 8-aligned on the host, but [0x1000, 0x1008) spans two regions.
  const e = expectError(() => mem.loadU64(0x1000), InvalidBackendAddressError, {
    kind: "InvalidBackendAddress",
    op: "GuestMemoryMmap.loadU64",
    mentions: ["0x1000", "[0x0, 0x1003]"],
  });
  assert.equal(e.name, "InvalidBackendAddressError");
  expectError(() => mem.storeU32(0x1002, 1), InvalidBackendAddressError, {
    kind: "InvalidBackendAddress",
    op: "GuestMemoryMmap.storeU32",
  });
  assert.equal(mem.readU64(0x1000), 0n, "the plain read may span the two regions");
});

Deno.test("guest atomics: an atomic in a hole is InvalidGuestAddress", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
  for (
    const [op, fn] of [
      ["loadU32", () => mem.loadU32(0x2000)],
      ["storeU8", () => mem.storeU8(0x2000n, 1)],
      ["addU64", () => mem.addU64(0x2000, 1n)],
    ] as const
  ) {
    expectUnbacked(fn, `GuestMemoryMmap.${op}`, 0x2000n);
  }
});

Deno.test("guest atomics: bad operand values are InvalidArgument and the memory keeps its value", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  mem.storeU32(0, 77);
  for (
    const [op, fn] of [
      ["storeU8", () => mem.storeU8(0, 0x100)],
      ["storeU32", () => mem.storeU32(0, -1)],
      ["addU16", () => mem.addU16(0, 0x10000)],
      ["orU32", () => mem.orU32(0, 2 ** 32)],
      ["compareExchangeU32", () => mem.compareExchangeU32(0, 77, 0.5)],
      ["compareExchangeU64", () => mem.compareExchangeU64(0, -1n, 0n)],
      ["storeU64", () => mem.storeU64(0, 1n << 64n)],
    ] as const
  ) {
    expectError(fn, InvalidArgumentError, { kind: "InvalidArgument", op: `GuestMemoryMmap.${op}` });
  }
  assert.equal(mem.loadU32(0), 77);
});

Deno.test("guest atomics: bigint addresses above 2^53 work like numbers", () => {
  const base = 1n << 56n;
  using mem = GuestMemoryMmap.fromRanges([[base, 0x1000]]);
  mem.storeU32(base + 0x40n, 10);
  assert.equal(mem.addU32(base + 0x40n, 5), 10);
  assert.equal(mem.compareExchangeU32(base + 0x40n, 15, 16), 15);
  assert.equal(mem.loadU32(base + 0x40n), 16);
  const e = expectError(() => mem.loadU32(base + 0x41n), MisalignedError, {
    kind: "Misaligned",
    op: "GuestMemoryMmap.loadU32",
    mentions: ["0x100000000000041"],
  });
  assert.equal(e.addr, base + 0x41n);
});
