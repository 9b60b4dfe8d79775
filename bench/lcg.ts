/**
 * The address generator of the vm-memory workload (perf-baselines.md): the 64-bit LCG
 * `x = x * 6364136223846793005 + 1442695040888963407 (mod 2^64)` from seed `0x243F6A8885A308D3`,
 * of which an address uses the high 32 bits. Kept as two 32-bit halves so the loop runs on small
 * integers: a BigInt per step would cost more than most of the accesses being measured.
 * @module
 */

const MUL = 6364136223846793005n;
const ADD = 1442695040888963407n;
const SEED = 0x243f6a8885a308d3n;

const MUL_LO = Number(MUL & 0xffffffffn) | 0;
const MUL_LO_U = MUL_LO >>> 0;
const MUL_HI = Number(MUL >> 32n) | 0;
const ADD_LO = Number(ADD & 0xffffffffn) | 0;
const ADD_LO_U = ADD_LO >>> 0;
const ADD_HI = Number(ADD >> 32n) | 0;
const INV_2_32 = 2 ** -32;

/**
 * The LCG, restarted at the seed on construction.
 *
 * @example
 * ```ts
 * import { Lcg, lcgMask } from "./lcg.ts";
 * const g = new Lcg(), mask = lcgMask(64 * 1024, 8);
 * const addr = 0x100000 + (g.next() & mask); // an 8-byte aligned address in a 64 KiB window
 * ```
 */
export class Lcg {
  // An Int32Array rather than two fields: V8 keeps int32 elements unboxed, and this measured
  // fastest of the layouts tried (fields, locals, typed array).
  readonly #state = new Int32Array([Number(SEED & 0xffffffffn) | 0, Number(SEED >> 32n) | 0]);

  /**
   * Steps once and returns the high 32 bits of the new state, as a signed int32 (mask it).
   *
   * The new high word needs the top half of `lo * MUL_LO + ADD_LO` (up to 2^64), which
   * `Math.imul` does not give. The double `lo * MUL_LO + ADD_LO` is within 2^14 of the exact value,
   * whose low word is known exactly, so (double - low word) / 2^32 is within 2^-18 of the exact
   * top half and rounding it recovers that top half with no BigInt and no 16-bit pieces.
   */
  next(): number {
    const s = this.#state;
    const lo = s[0], hi = s[1];
    const low = (Math.imul(lo, MUL_LO) + ADD_LO) | 0;
    const top = (((lo >>> 0) * MUL_LO_U + ADD_LO_U - (low >>> 0)) * INV_2_32 + 0.5) | 0;
    const high = (Math.imul(hi, MUL_LO) + Math.imul(lo, MUL_HI) + top + ADD_HI) | 0;
    s[0] = low;
    s[1] = high;
    return high;
  }
}

/**
 * The mask that turns `next()` into an offset in `[0, span)` aligned to `align`. Both must be
 * powers of two and `span` at most 2^31, so that `next() & mask` stays a non-negative int32.
 *
 * @example
 * ```ts
 * import { lcgMask } from "./lcg.ts";
 * console.log(lcgMask(4096, 8).toString(16)); // "ff8"
 * ```
 */
export function lcgMask(span: number, align: number): number {
  const pow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  if (!pow2(span) || span > 2 ** 31 || !pow2(align) || align > span) {
    throw new RangeError(`lcgMask: span ${span} and align ${align} must be powers of two, align <= span <= 2^31`);
  }
  return (span - 1) & ~(align - 1);
}

/**
 * The high 32 bits (unsigned) of the first `n` states, computed with BigInt: what `Lcg` must match.
 *
 * @example
 * ```ts
 * import { Lcg, referenceHighWords } from "./lcg.ts";
 * console.log(referenceHighWords(1)[0] === new Lcg().next() >>> 0); // true
 * ```
 */
export function referenceHighWords(n: number): number[] {
  const out: number[] = [];
  let x = SEED;
  for (let i = 0; i < n; i++) {
    x = (x * MUL + ADD) & 0xffff_ffff_ffff_ffffn;
    out.push(Number(x >> 32n));
  }
  return out;
}
