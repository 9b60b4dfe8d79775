/**
 * Validation of addresses, offsets and lengths at the public boundary.
 *
 * Addresses are unsigned 64-bit. A caller may pass a `number` (a non-negative safe integer) or a
 * `bigint` (any value in `[0, 2^64)`); the library hands addresses back as `bigint`. Lengths are
 * `number`s: non-negative safe integers.
 * @module
 */

import { InvalidArgumentError } from "./errors.ts";

/** An address as callers may pass it: a non-negative safe integer or a u64 `bigint`. */
export type AddressLike = number | bigint;

/** 2^64, one past the largest u64. */
export const U64_LIMIT: bigint = 1n << 64n;

/** The largest u64, 2^64 − 1. */
export const U64_MAX: bigint = U64_LIMIT - 1n;

/**
 * Checks `value` is a u64 address and returns it as a `bigint`.
 *
 * @example
 * ```ts
 * import { toAddress } from "./address.ts";
 * toAddress(4096, "demo", "addr"); // 4096n
 * ```
 * @throws {InvalidArgumentError} for a negative, fractional, NaN, infinite or unsafe number, a
 *   bigint outside `[0, 2^64)`, or any other type.
 */
export function toAddress(value: unknown, op: string, name: string): bigint {
  if (typeof value === "bigint") {
    if (value < 0n || value > U64_MAX) {
      throw new InvalidArgumentError(op, name, value, `must be in [0, 2^64), got ${value}n`);
    }
    return value;
  }
  if (typeof value === "number") {
    if (Number.isSafeInteger(value) && value >= 0) return BigInt(value);
    throw new InvalidArgumentError(op, name, value, numberProblem(value));
  }
  throw new InvalidArgumentError(op, name, value, `must be a number or bigint, got ${typeName(value)}`);
}

/**
 * Checks `value` is a length (a non-negative safe integer `number`) and returns it.
 *
 * @example
 * ```ts
 * import { toLength } from "./address.ts";
 * toLength(16, "demo", "len"); // 16
 * ```
 * @throws {InvalidArgumentError} for anything else, or for zero when `allowZero` is false.
 */
export function toLength(value: unknown, op: string, name: string, allowZero = true): number {
  if (typeof value !== "number") {
    throw new InvalidArgumentError(op, name, value, `must be a number, got ${typeName(value)}`);
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(op, name, value, numberProblem(value));
  }
  if (value === 0 && !allowZero) throw new InvalidArgumentError(op, name, value, "must not be zero");
  return value;
}

/**
 * True if `value` is a power of two (as a safe integer).
 *
 * @example
 * ```ts
 * import { isPowerOfTwo } from "./address.ts";
 * isPowerOfTwo(4096); // true
 * ```
 */
export function isPowerOfTwo(value: number): boolean {
  return Number.isSafeInteger(value) && value > 0 && (BigInt(value) & (BigInt(value) - 1n)) === 0n;
}

function numberProblem(value: number): string {
  if (Number.isNaN(value)) return "must be an integer, got NaN";
  if (!Number.isFinite(value)) return `must be finite, got ${value}`;
  if (!Number.isInteger(value)) return `must be an integer, got ${value}`;
  if (value < 0) return `must not be negative, got ${value}`;
  // BigInt shows the double's exact integer value; its default string form is rounded.
  return `must be below 2^53 as a number (pass a bigint for larger values), got ${BigInt(value)}`;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return value.constructor?.name ?? "object";
  return typeof value;
}
