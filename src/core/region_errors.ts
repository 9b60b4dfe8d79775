/**
 * The errors raised while putting guest regions together into a guest memory: a region that does
 * not fit the 64-bit guest space, a list that is empty, unsorted or overlapping, a region that is not
 * there to remove.
 * @module
 */

import { GuestMemoryError } from "./errors.ts";
import { hex } from "./format.ts";

/**
 * No memory region was given, or none matched (vm-memory's `NoMemoryRegion`): an empty region list,
 * a `removeRegion` of a region that is not there, or a zero-length access of a memory without
 * regions.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, NoMemoryRegionError } from "../../mod.ts";
 * try { GuestMemoryMmap.fromRanges([]); } catch (e) {
 *   console.log(e instanceof NoMemoryRegionError && e.kind); // "NoMemoryRegion"
 * }
 * ```
 */
export class NoMemoryRegionError extends GuestMemoryError {
  /**
   * Builds the error.
   * @param reason says what was missing, e.g. `"no memory region given"`
   */
  constructor(op: string, reason: string) {
    super("NoMemoryRegion", op, reason);
  }
}

/** A guest address range `[start, last]`, as the region errors report it. */
export interface GuestRange {
  /** First guest address. */
  readonly start: bigint;
  /** Last guest address (inclusive, so a range ending at 2^64 - 1 fits). */
  readonly last: bigint;
}

/**
 * Two regions of one guest memory share addresses (vm-memory's `MemoryRegionOverlap`).
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, MemoryRegionOverlapError } from "../../mod.ts";
 * try { GuestMemoryMmap.fromRanges([[0, 0x2000], [0x1000, 0x1000]]); } catch (e) {
 *   console.log(e instanceof MemoryRegionOverlapError && e.second.start); // 4096n
 * }
 * ```
 */
export class MemoryRegionOverlapError extends GuestMemoryError {
  /** The earlier region. */
  readonly first: GuestRange;
  /** The region that starts inside it. */
  readonly second: GuestRange;

  /** Builds the error for the two overlapping regions. */
  constructor(op: string, first: GuestRange, second: GuestRange) {
    super(
      "MemoryRegionOverlap",
      op,
      `region [${hex(first.start)}, ${hex(first.last)}] overlaps region [${hex(second.start)}, ${hex(second.last)}]`,
    );
    this.first = Object.freeze({ start: first.start, last: first.last });
    this.second = Object.freeze({ start: second.start, last: second.last });
  }
}

/**
 * A region list is not sorted by guest address (vm-memory's `UnsortedMemoryRegions`).
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, UnsortedMemoryRegionsError } from "../../mod.ts";
 * try { GuestMemoryMmap.fromRanges([[0x2000, 0x1000], [0, 0x1000]]); } catch (e) {
 *   console.log(e instanceof UnsortedMemoryRegionsError && e.previous); // 8192n
 * }
 * ```
 */
export class UnsortedMemoryRegionsError extends GuestMemoryError {
  /** Start of the region listed first. */
  readonly previous: bigint;
  /** Start of the region listed after it, though it starts lower. */
  readonly next: bigint;

  /** Builds the error for a region starting at `next` listed after one starting at `previous`. */
  constructor(op: string, previous: bigint, next: bigint) {
    super("UnsortedMemoryRegions", op, `region at ${hex(next)} comes after the region at ${hex(previous)}`);
    this.previous = previous;
    this.next = next;
  }
}

/**
 * A region would end at or past 2^64 in the guest space (vm-memory's `InvalidGuestRegion`).
 *
 * @example
 * ```ts
 * import { GuestRegionMmap, InvalidGuestRegionError } from "../../mod.ts";
 * try { GuestRegionMmap.fromRange(2n ** 64n - 0x1000n, 0x1000); } catch (e) {
 *   console.log(e instanceof InvalidGuestRegionError && e.size); // 4096
 * }
 * ```
 */
export class InvalidGuestRegionError extends GuestMemoryError {
  /** The region's guest start address. */
  readonly base: bigint;
  /** The region's size in bytes. */
  readonly size: number;

  /** Builds the error for a region of `size` bytes at `base`. */
  constructor(op: string, base: bigint, size: number) {
    super("InvalidGuestRegion", op, `region at ${hex(base)} of ${hex(size)} bytes would end at or past 2^64`);
    this.base = base;
    this.size = size;
  }
}
