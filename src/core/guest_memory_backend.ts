/**
 * The region-level view of guest memory (vm-memory's `GuestMemoryBackend` and
 * `GuestMemoryRegion` traits), so that other backends can be written against it.
 * @module
 */

import type { AddressLike } from "./address.ts";
import type { GuestMemoryError } from "./errors.ts";
import type { DirtyLog } from "./dirty_log.ts";
import type { VolatileSlice } from "./volatile_slice.ts";

/**
 * One region of guest physical memory.
 *
 * @example
 * ```ts
 * import type { GuestMemoryRegion } from "./guest_memory_backend.ts";
 * function describe(r: GuestMemoryRegion): string {
 *   return `${r.startAddr.toString(16)}+${r.len.toString(16)}`;
 * }
 * ```
 */
export interface GuestMemoryRegion {
  /** First guest address. */
  readonly startAddr: bigint;
  /** Length in bytes (never 0). */
  readonly len: number;
  /** Last guest address (inclusive). */
  readonly lastAddr: bigint;
  /** The region's dirty log (by region offset), if tracking. */
  readonly bitmap: DirtyLog | undefined;
  /** A slice at a region offset; throws if it does not fit. */
  getSlice(offset: AddressLike, count: number): VolatileSlice;
  /** The host address of a region offset. */
  getHostAddress(offset: AddressLike): bigint;
}

/** What `getSlicesResult` returns: the fragments, and the error that ended them early, if any. */
export interface SlicesResult {
  /** The fragments, in address order. */
  slices: VolatileSlice[];
  /** Why the sequence ended before `count` bytes (absent when it is complete). */
  error?: GuestMemoryError;
}

/**
 * A sorted, non-overlapping set of guest memory regions.
 *
 * @example
 * ```ts
 * import type { GuestMemoryBackend } from "./guest_memory_backend.ts";
 * function total(m: GuestMemoryBackend): number {
 *   return m.regions().reduce((n, r) => n + r.len, 0);
 * }
 * ```
 */
export interface GuestMemoryBackend<R extends GuestMemoryRegion = GuestMemoryRegion> {
  /** Number of regions. */
  readonly numRegions: number;
  /** The regions in address order. */
  regions(): readonly R[];
  /** The region containing `addr`, if any. */
  findRegion(addr: AddressLike): R | undefined;
  /** The highest guest address backed by a region (0 when empty). */
  lastAddr(): bigint;
  /** The region containing `addr` and the offset inside it. */
  toRegionAddr(addr: AddressLike): [R, bigint] | undefined;
  /** Whether some region contains `addr`. */
  addressInRange(addr: AddressLike): boolean;
  /** `addr` if some region contains it. */
  checkAddress(addr: AddressLike): bigint | undefined;
  /** Whether every byte of `[addr, addr + len)` is backed (true for `len` 0). */
  checkRange(addr: AddressLike, len: number): boolean;
  /** `base + offset` if that address is backed. */
  checkedOffset(base: AddressLike, offset: AddressLike): bigint | undefined;
  /** The host address backing `addr`. */
  getHostAddress(addr: AddressLike): bigint;
  /** One slice inside one region. */
  getSlice(addr: AddressLike, count: number): VolatileSlice;
  /** The fragments of `[addr, addr + count)`; throws if the first one fails. */
  getSlices(addr: AddressLike, count: number): VolatileSlice[];
  /** The fragments and the error that ended them, without throwing after the first. */
  getSlicesResult(addr: AddressLike, count: number): SlicesResult;
}
