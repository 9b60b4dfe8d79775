/**
 * The IOMMU's errors (vm-memory's `iommu::Error`, nested in its `GuestMemoryError::IommuError`) and
 * the revoked-slice error of its translation guards, with the `IovaRange` they report.
 * @module
 */

import { GuestMemoryError } from "../core/errors.ts";
import { hex } from "../core/format.ts";

/**
 * A range of I/O virtual addresses: `length` bytes from `base` (vm-memory's `IovaRange`). The same
 * shape describes a mapped range in the physical space.
 *
 * @example
 * ```ts
 * import type { IovaRange } from "../../iommu.ts";
 * const r: IovaRange = { base: 0x1000n, length: 0x200 };
 * ```
 */
export interface IovaRange {
  /** First address. */
  base: bigint;
  /** Length in bytes. */
  length: number;
}

/**
 * The kinds of IOMMU failure, vm-memory's `iommu::Error` variants: each is a `kind` of its own with
 * its own class, all three subclasses of {@link IommuError}.
 *
 * @example
 * ```ts
 * import type { IommuErrorKind } from "../../iommu.ts";
 * const retryable = (kind: IommuErrorKind) => kind === "CannotResolve";
 * ```
 */
export type IommuErrorKind = "CannotResolve" | "Fragmented" | "IommuMisconfigured";

function rangeText(r: IovaRange): string {
  return `${hex(r.base)}+${hex(r.length)}`;
}

/**
 * The IOMMU could not translate an access: vm-memory's `GuestMemoryError::IommuError`, the family of
 * its three `iommu::Error` variants. Never thrown as such: every instance is a
 * {@link CannotResolveError}, {@link FragmentedError} or {@link IommuMisconfiguredError}, whose
 * `kind` is the variant's name. `instanceof IommuError` asks "did translation fail?"; `kind` says
 * how. Thrown before any byte moves.
 *
 * @example
 * ```ts
 * import { IommuError } from "../../iommu.ts";
 * function isMiss(e: unknown): boolean {
 *   return e instanceof IommuError && e.kind === "CannotResolve";
 * }
 * ```
 */
export abstract class IommuError extends GuestMemoryError {
  /** Which failure. */
  declare readonly kind: IommuErrorKind;

  /** Builds the error. */
  constructor(kind: IommuErrorKind, op: string, reason: string, options?: ErrorOptions) {
    super(kind, op, reason, options);
  }
}

/**
 * Part of an IOVA range is unmapped or mapped without the permission asked for, and the IOMMU could
 * not fix that (vm-memory's `CannotResolve`).
 *
 * @example
 * ```ts
 * import { CannotResolveError } from "../../iommu.ts";
 * const e = new CannotResolveError("IommuMemory.readU32", { base: 0x1000n, length: 4 }, "no mapping");
 * console.log(e.message); // "IommuMemory.readU32: cannot translate I/O virtual address range 0x1000+0x4: no mapping"
 * ```
 */
export class CannotResolveError extends IommuError {
  /** The range that could not be translated (a failing sub-range, or the whole request). */
  readonly iovaRange: IovaRange;
  /** Why, in words. */
  readonly reason: string;

  /** Builds the error. */
  constructor(op: string, iovaRange: IovaRange, reason: string, options?: ErrorOptions) {
    super(
      "CannotResolve",
      op,
      `cannot translate I/O virtual address range ${rangeText(iovaRange)}: ${reason}`,
      options,
    );
    this.iovaRange = iovaRange;
    this.reason = reason;
  }
}

/**
 * A range that had to be contiguous in the target space is not (vm-memory's `Fragmented`).
 *
 * @example
 * ```ts
 * import { FragmentedError } from "../../iommu.ts";
 * const e = new FragmentedError("IommuMemory.getSlice", { base: 0x1000n, length: 0x2000 }, 0x1000);
 * console.log(e.continuousLength); // 4096
 * ```
 */
export class FragmentedError extends IommuError {
  /** The requested range. */
  readonly iovaRange: IovaRange;
  /** How many leading bytes are contiguous. */
  readonly continuousLength: number;

  /** Builds the error. */
  constructor(op: string, iovaRange: IovaRange, continuousLength: number) {
    super(
      "Fragmented",
      op,
      `expected ${rangeText(iovaRange)} to be one contiguous range, but only ${continuousLength} bytes are`,
    );
    this.iovaRange = iovaRange;
    this.continuousLength = continuousLength;
  }
}

/**
 * The IOMMU is not set up so that it can work (vm-memory's `IommuMisconfigured`), e.g. a miss
 * handler that answered with something other than mappings.
 *
 * @example
 * ```ts
 * import { IommuMisconfiguredError } from "../../iommu.ts";
 * console.log(new IommuMisconfiguredError("Iommu.translate", "no miss handler").kind); // "IommuMisconfigured"
 * ```
 */
export class IommuMisconfiguredError extends IommuError {
  /** Why, in words. */
  readonly reason: string;

  /** Builds the error. */
  constructor(op: string, reason: string, options?: ErrorOptions) {
    super("IommuMisconfigured", op, `IOMMU not configured correctly: ${reason}`, options);
    this.reason = reason;
  }
}

/**
 * A slice obtained through an IOMMU was used after the translation it came from was invalidated or
 * changed (kind `SliceRevoked`). The memory is still there; the device just may no longer reach it.
 *
 * @example
 * ```ts
 * import { SliceRevokedError } from "../../iommu.ts";
 * const e = new SliceRevokedError("VolatileSlice.readU32", { base: 0x1000n, length: 0x100 });
 * console.log(e.message); // "VolatileSlice.readU32: the translation of I/O virtual address range 0x1000+0x100 this slice came from was invalidated or changed"
 * ```
 */
export class SliceRevokedError extends GuestMemoryError {
  /** The I/O virtual range the slice was translated from. */
  readonly iovaRange: IovaRange;

  /** Builds the error. */
  constructor(op: string, iovaRange: IovaRange) {
    super(
      "SliceRevoked",
      op,
      `the translation of I/O virtual address range ${
        rangeText(iovaRange)
      } this slice came from was invalidated or changed`,
    );
    this.iovaRange = iovaRange;
  }
}
