/**
 * Exact u64 values (and differences of them) kept as two doubles: `rounded`, the value rounded to
 * the nearest double, and `residual`, the small integer the rounding dropped (`value - rounded`).
 *
 * Why not bigint: the IOTLB compares and stores these on every lookup and insert, and a BigInt
 * operation allocates. Why not one double: above 2^53 doubles skip integers. With the pair, every
 * value below 2^53 is `(value, 0)`, so the common case is plain double arithmetic; rounding is
 * monotone, so pairs order lexicographically, and a number below 2^53 compares exactly against
 * `rounded` alone (a rounded value at or above 2^53 belongs to a value at or above 2^53).
 * @module
 */

/** 2^53: the first integer a double cannot tell from its neighbour; values below it are exact. */
export const EXACT_LIMIT = 2 ** 53;

/**
 * The rounded half of a u64 (or of a signed difference of two).
 *
 * @example
 * ```ts
 * import { rounded } from "./u64_key.ts";
 * console.log(rounded(2n ** 64n - 1n)); // 18446744073709552000 (that is 2^64)
 * ```
 */
export function rounded(value: bigint): number {
  return Number(value);
}

/**
 * The residual half: `value - rounded(value)`, a small integer (at most 2^11 in size for a u64).
 *
 * @example
 * ```ts
 * import { residual, rounded } from "./u64_key.ts";
 * const v = 2n ** 64n - 1n;
 * console.log(residual(v, rounded(v))); // -1
 * ```
 */
export function residual(value: bigint, roundedValue: number): number {
  return Number(value - BigInt(roundedValue));
}

/**
 * The exact value of a pair.
 *
 * @example
 * ```ts
 * import { joinU64 } from "./u64_key.ts";
 * console.log(joinU64(2 ** 64, -1)); // 18446744073709551615n
 * ```
 */
export function joinU64(roundedValue: number, residualValue: number): bigint {
  return residualValue === 0 ? BigInt(roundedValue) : BigInt(roundedValue) + BigInt(residualValue);
}

/**
 * Whether pair a is below pair b.
 *
 * @example
 * ```ts
 * import { keyLess } from "./u64_key.ts";
 * console.log(keyLess(2 ** 64, -1, 2 ** 64, 0)); // true
 * ```
 */
export function keyLess(aF: number, aR: number, bF: number, bR: number): boolean {
  return aF < bF || (aF === bF && aR < bR);
}

/**
 * `a - b` as a number, for pairs whose difference is known to be a safe integer (a length).
 *
 * @example
 * ```ts
 * import { keyDistance } from "./u64_key.ts";
 * console.log(keyDistance(2 ** 64, 0, 2 ** 64, -1)); // 1
 * ```
 */
export function keyDistance(aF: number, aR: number, bF: number, bR: number): number {
  if (aR === 0 && bR === 0 && aF < EXACT_LIMIT && bF < EXACT_LIMIT) return aF - bF;
  return Number(joinU64(aF, aR) - joinU64(bF, bR));
}

/**
 * The exact sum of two pairs (an address plus a signed difference), as a bigint.
 *
 * @example
 * ```ts
 * import { sumU64 } from "./u64_key.ts";
 * console.log(sumU64(0x3000, 0, -0x2000, 0)); // 4096n
 * ```
 */
export function sumU64(aF: number, aR: number, bF: number, bR: number): bigint {
  if (aR === 0 && bR === 0) {
    const s = aF + bF;
    if (Math.abs(aF) < EXACT_LIMIT && Math.abs(bF) < EXACT_LIMIT && Math.abs(s) < EXACT_LIMIT) return BigInt(s);
  }
  return joinU64(aF, aR) + joinU64(bF, bR);
}
