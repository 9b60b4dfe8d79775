import assert from "node:assert/strict";
import { InvalidArgumentError, U64_MAX } from "../mod.ts";
import { isPowerOfTwo, toAddress, toLength } from "../src/core/address.ts";
import { hex } from "../src/core/format.ts";

function argumentError(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof InvalidArgumentError, String(e));
    return e;
  }
  assert.fail("nothing was thrown");
}

Deno.test("address: numbers up to 2^53 - 1 and bigints up to 2^64 - 1 are accepted as bigint", () => {
  assert.equal(toAddress(0, "t", "addr"), 0n);
  assert.equal(toAddress(Number.MAX_SAFE_INTEGER, "t", "addr"), 2n ** 53n - 1n);
  assert.equal(toAddress(2n ** 64n - 1n, "t", "addr"), U64_MAX);
  assert.equal(toAddress(2n ** 53n + 1n, "t", "addr"), 9007199254740993n);
});

Deno.test("address: negative, fractional, NaN, infinite, unsafe and out-of-u64 values are refused with the reason", () => {
  const cases: Array<[unknown, string]> = [
    [-1, "t: addr must not be negative, got -1"],
    [-0.5, "t: addr must be an integer, got -0.5"],
    [1.5, "t: addr must be an integer, got 1.5"],
    [NaN, "t: addr must be an integer, got NaN"],
    [Infinity, "t: addr must be finite, got Infinity"],
    [-Infinity, "t: addr must be finite, got -Infinity"],
    [2 ** 53, "t: addr must be below 2^53 as a number (pass a bigint for larger values), got 9007199254740992"],
    [2n ** 64n, "t: addr must be in [0, 2^64), got 18446744073709551616n"],
    [-1n, "t: addr must be in [0, 2^64), got -1n"],
    ["0x1000", "t: addr must be a number or bigint, got string"],
    [null, "t: addr must be a number or bigint, got null"],
    [undefined, "t: addr must be a number or bigint, got undefined"],
    [{}, "t: addr must be a number or bigint, got Object"],
  ];
  for (const [value, message] of cases) {
    const e = argumentError(() => toAddress(value, "t", "addr"));
    assert.equal(e.message, message);
    assert.equal(e.argument, "addr");
    assert.equal(e.op, "t");
    assert.equal(e.kind, "InvalidArgument");
    assert.ok(Object.is(e.value, value) || (typeof value === "number" && Number.isNaN(value)));
  }
});

Deno.test("address: lengths are non-negative safe integer numbers; zero can be refused", () => {
  assert.equal(toLength(0, "t", "len"), 0);
  assert.equal(toLength(Number.MAX_SAFE_INTEGER, "t", "len"), Number.MAX_SAFE_INTEGER);
  assert.equal(argumentError(() => toLength(0, "t", "len", false)).message, "t: len must not be zero");
  assert.equal(argumentError(() => toLength(5n, "t", "len")).message, "t: len must be a number, got bigint");
  assert.equal(argumentError(() => toLength(-0.1, "t", "len")).message, "t: len must be an integer, got -0.1");
  assert.equal(
    argumentError(() => toLength(2 ** 60, "t", "len")).message,
    "t: len must be below 2^53 as a number (pass a bigint for larger values), got 1152921504606846976",
  );
});

Deno.test("address: hex formats numbers and bigints without precision loss", () => {
  assert.equal(hex(0), "0x0");
  assert.equal(hex(4096), "0x1000");
  assert.equal(hex(2n ** 64n - 1n), "0xffffffffffffffff");
  assert.equal(hex(-16), "-0x10");
  assert.equal(isPowerOfTwo(2 ** 30), true);
  assert.equal(isPowerOfTwo(3 * 4096), false);
  assert.equal(isPowerOfTwo(0), false);
});
