/**
 * The revocation hook of a `VolatileSlice`: a slice handed out through a translation (an IOMMU)
 * asks its guard before every use whether the translation still holds.
 * @module
 */

import type { GuestMemoryError } from "./errors.ts";
import type { Mapping } from "./mapping.ts";

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

/**
 * The key of the method by which a guard leases the buffers of a slice's zero-copy views (see
 * {@link ViewLeasingGuard}). Not exported from the package: only the library's own guards lease.
 *
 * @example
 * ```ts ignore
 * const buffer = (guard as ViewLeasingGuard)[LEASE_VIEW](mmap, offset, length, "VolatileSlice.bytes");
 * ```
 */
export const LEASE_VIEW: unique symbol = Symbol("gmem.leaseView");

/**
 * The key of the method by which a slice gives back a buffer its guard leased for one of its views
 * (the slice was disposed). Internal, like {@link LEASE_VIEW}.
 *
 * @example
 * ```ts ignore
 * (guard as ViewLeasingGuard)[RELEASE_VIEW](buffer);
 * ```
 */
export const RELEASE_VIEW: unique symbol = Symbol("gmem.releaseView");

/**
 * A guard that also revokes zero-copy views: `bytes()`/`dataView()` of its slices are views over a
 * buffer it leased for exactly the slice's range, which it detaches when it revokes. Internal.
 *
 * @example
 * ```ts ignore
 * const leasing = LEASE_VIEW in guard ? guard as ViewLeasingGuard : undefined;
 * ```
 */
export interface ViewLeasingGuard extends SliceGuard {
  /**
   * A buffer over region offsets `[offset, offset + length)` of `region` to build a view on, or
   * `undefined` to use the region's own buffer. Called right after `isValid()` said yes.
   */
  [LEASE_VIEW](region: Mapping, offset: number, length: number, op: string): ArrayBuffer | undefined;
  /** Detaches `buffer`, leased by {@link LEASE_VIEW}, and forgets its lease; nothing if unknown. */
  [RELEASE_VIEW]?(buffer: ArrayBuffer): void;
}
