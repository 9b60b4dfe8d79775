/**
 * The revocation hook of a `VolatileSlice`: a slice handed out through a translation (an IOMMU)
 * asks its guard before every use whether the translation still holds.
 * @module
 */

import type { GuestMemoryError } from "../errors.ts";

/**
 * Decides whether a slice may still be used. `isValid` runs before every access through the slice,
 * so it must be cheap when nothing changed (a counter comparison) and must not allocate or throw.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, InvalidArgumentError, type SliceGuard } from "../../mod.ts";
 * let open = true;
 * const guard: SliceGuard = {
 *   isValid: () => open,
 *   revokedError: (op) => new InvalidArgumentError(op, "slice", undefined, "was closed by its owner"),
 * };
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
 * const s = mem.getSlice(0, 16).withGuard(guard);
 * open = false; // every use of `s` now throws
 * ```
 */
export interface SliceGuard {
  /** Whether the slice may still be used. */
  isValid(): boolean;
  /** The error thrown by operation `op` on a slice that may not. */
  revokedError(op: string): GuestMemoryError;
}
