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
 * An exact u64 (or a signed difference of two) as the pair described in the module doc: a mutable
 * record, so that the IOTLB's paths can keep a few and reuse them instead of allocating a bigint
 * per value.
 *
 * @example
 * ```ts
 * import { U64Pair } from "./u64_key.ts";
 * const top = new U64Pair().setBigInt(2n ** 64n - 1n);
 * console.log(top.rounded, top.residual, top.toBigInt()); // 18446744073709552000 -1 18446744073709551615n
 * ```
 */
export class U64Pair {
  /** The value rounded to the nearest double. */
  rounded = 0;
  /** The value minus `rounded`: a small integer (at most 2^11 in size for a u64), zero below 2^53. */
  residual = 0;

  /** Sets the pair from its two halves. */
  set(rounded: number, residual: number): this {
    this.rounded = rounded;
    this.residual = residual;
    return this;
  }

  /** Sets the pair to a safe integer, exact as it stands. */
  setNumber(value: number): this {
    this.rounded = value;
    this.residual = 0;
    return this;
  }

  /** Sets the pair to an exact bigint. */
  setBigInt(value: bigint): this {
    this.rounded = Number(value);
    this.residual = Number(value - BigInt(this.rounded));
    return this;
  }

  /** Sets the pair to another's value. */
  copy(from: U64Pair): this {
    this.rounded = from.rounded;
    this.residual = from.residual;
    return this;
  }

  /** Whether this value is below `other`'s (rounding is monotone, so pairs order lexicographically). */
  isBelow(other: U64Pair): boolean {
    return this.rounded < other.rounded || (this.rounded === other.rounded && this.residual < other.residual);
  }

  /** The exact value. */
  toBigInt(): bigint {
    return this.residual === 0 ? BigInt(this.rounded) : BigInt(this.rounded) + BigInt(this.residual);
  }

  /** `this − from` as a number, for pairs whose difference is known to be a safe integer (a length). */
  distanceFrom(from: U64Pair): number {
    if (this.residual === 0 && from.residual === 0 && this.rounded < EXACT_LIMIT && from.rounded < EXACT_LIMIT) {
      return this.rounded - from.rounded;
    }
    return Number(this.toBigInt() - from.toBigInt());
  }

  /** The exact `this + offset` (an address plus a signed difference), as a bigint. */
  plus(offset: U64Pair): bigint {
    const a = this.rounded, b = offset.rounded;
    if (this.residual === 0 && offset.residual === 0) {
      const sum = a + b;
      if (Math.abs(a) < EXACT_LIMIT && Math.abs(b) < EXACT_LIMIT && Math.abs(sum) < EXACT_LIMIT) return BigInt(sum);
    }
    return this.toBigInt() + offset.toBigInt();
  }
}
