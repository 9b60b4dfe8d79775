/**
 * `TranslationGuard`: revokes the slices `IommuMemory` hands out once the IOTLB no longer
 * translates their I/O virtual range to the same place.
 * @module
 */

import { type GuestMemoryError, type IovaRange, SliceRevokedError } from "../errors.ts";
import type { SliceGuard } from "../memory/slice_guard.ts";
import type { Iotlb } from "./iotlb.ts";
import type { Permission } from "./permissions.ts";

/**
 * Valid while `[iova, iova + length)` still translates, for `access`, to the contiguous target
 * range starting at `target`. The check is lazy: it compares the IOTLB's generation (one integer)
 * and re-translates only after the IOTLB changed; once revoked, the guard stays revoked even if the
 * same mapping comes back (the device would have to translate again).
 *
 * @example
 * ```ts
 * import { Iotlb, Permissions, TranslationGuard } from "../../mod.ts";
 * const iotlb = new Iotlb();
 * iotlb.setMapping(0x1000, 0x8000, 0x1000, Permissions.Read);
 * const guard = new TranslationGuard(iotlb, { base: 0x1000n, length: 0x100 }, 0x8000n, Permissions.Read);
 * iotlb.invalidate(0x1080, 1);
 * console.log(guard.isValid()); // false
 * ```
 */
export class TranslationGuard implements SliceGuard {
  readonly #iotlb: Iotlb;
  readonly #range: IovaRange;
  readonly #target: bigint;
  readonly #access: Permission;
  #generation: number;
  #revoked = false;

  /** Guards the translation of `range` to `target` for `access`, as the IOTLB has it now. */
  constructor(iotlb: Iotlb, range: IovaRange, target: bigint, access: Permission) {
    this.#iotlb = iotlb;
    this.#range = range;
    this.#target = target;
    this.#access = access;
    this.#generation = iotlb.generation;
  }

  /** Whether the translation still holds. @example `guard.isValid()` */
  isValid(): boolean {
    if (this.#revoked) return false;
    const g = this.#iotlb.generation;
    if (g === this.#generation) return true;
    return this.#recheck(g);
  }

  /** The error for an operation on a revoked slice. @example `guard.revokedError("VolatileSlice.readU8")` */
  revokedError(op: string): GuestMemoryError {
    return new SliceRevokedError(op, this.#range);
  }

  #recheck(generation: number): boolean {
    const r = this.#iotlb.probe(this.#range.base, this.#range.length, this.#access);
    let expected = this.#target;
    if (r.ok) {
      for (const m of r.ranges) {
        if (m.base !== expected) {
          this.#revoked = true;
          return false;
        }
        expected += BigInt(m.length);
      }
      this.#generation = generation;
      return true;
    }
    this.#revoked = true;
    return false;
  }
}
