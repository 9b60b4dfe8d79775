/**
 * The errors only the mmap layer raises: requests that would map over memory the library does not
 * own, or borrow a pointer that does not point at a usable mapping.
 * @module
 */

import { GuestMemoryError } from "../core/errors.ts";
import { hex } from "../core/format.ts";

/**
 * The mapping flags asked for `MAP_FIXED` (vm-memory's `MapFixed`). Refused because a fixed mapping
 * silently replaces whatever the process had mapped at that address.
 *
 * @example
 * ```ts
 * import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, MapFixedError, MmapRegion } from "../../mod.ts";
 * try {
 *   MmapRegion.builder(4096).withMmapFlags(MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED).build();
 * } catch (e) {
 *   console.log(e instanceof MapFixedError && e.kind); // "MapFixed"
 * }
 * ```
 */
export class MapFixedError extends GuestMemoryError {
  /** The flags that were passed. */
  readonly flags: number;

  /** Builds the error for the refused `flags`. */
  constructor(op: string, flags: number) {
    super("MapFixed", op, "MAP_FIXED is not allowed: it would replace whatever is mapped there");
    this.flags = flags;
  }
}

/**
 * A raw pointer handed to `MmapRegion.builder(...).withRawPointer` is null, not page-aligned, or
 * not mapped at its first or last page (vm-memory's `InvalidPointer`).
 *
 * @example
 * ```ts
 * import { InvalidPointerError, MmapRegion } from "../../mod.ts";
 * try { MmapRegion.builder(4096).withRawMmapPointer(0x1001n).build(); } catch (e) {
 *   console.log(e instanceof InvalidPointerError && e.addr); // 4097n
 * }
 * ```
 */
export class InvalidPointerError extends GuestMemoryError {
  /** The raw pointer that was passed. */
  readonly addr: bigint;
  /** The page found unmapped, when that was the reason; `undefined` for a null or misaligned pointer. */
  readonly unmappedAt: bigint | undefined;

  /**
   * Builds the error.
   * @param size the bytes the pointer was to cover (shown when a page is unmapped)
   * @param unmappedAt the first page found unmapped, if any
   */
  constructor(op: string, addr: bigint, size: number, unmappedAt?: bigint) {
    super(
      "InvalidPointer",
      op,
      unmappedAt === undefined
        ? `raw pointer ${hex(addr)} must be non-null and page-aligned`
        : `raw pointer range [${hex(addr)}, ${hex(addr + BigInt(size))}) is not mapped at ${hex(unmappedAt)}`,
    );
    this.addr = addr;
    this.unmappedAt = unmappedAt;
  }
}
