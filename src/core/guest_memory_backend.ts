/**
 * The region-level view of guest memory (vm-memory's `GuestMemoryBackend` and
 * `GuestMemoryRegion` traits), so that other backends can be written against it.
 * @module
 */

import type { AddressLike } from "./address.ts";
import type { GuestMemoryError } from "./errors.ts";
import type { DirtyLog } from "./dirty_log.ts";
import type { SliceGuard } from "./slice_guard.ts";
import type { VolatileSlice } from "./volatile_slice.ts";

/**
 * What a translation layer needs of a backend's slices (`VolatileSlice` has all of it): their
 * length, copies to and from caller buffers, and copies of the slice that log writes elsewhere or
 * ask a guard before every use. `S` is the slice type itself.
 *
 * @example
 * ```ts
 * import type { GuestSlice } from "./guest_memory_backend.ts";
 * function total<S extends GuestSlice<S>>(slices: readonly S[]): number {
 *   return slices.reduce((n, s) => n + s.len, 0);
 * }
 * ```
 */
export interface GuestSlice<S> {
  /** Length in bytes. */
  readonly len: number;
  /** Copies `min(len, buf.length)` bytes into `buf`; returns the count. */
  copyTo(buf: Uint8Array): number;
  /** Copies `min(len, buf.length)` bytes from `buf`; returns the count. */
  copyFrom(buf: Uint8Array): number;
  /** The same memory, its writes logged in `log` at `logOffset` + slice offset (or not at all). */
  withDirtyLog(log: DirtyLog | undefined, logOffset: number): S;
  /** The same memory, refused with `guard.revokedError` once `guard.isValid()` says no. */
  withGuard(guard: SliceGuard): S;
}

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
export interface GuestMemoryRegion<S = VolatileSlice> {
  /** First guest address. */
  readonly startAddr: bigint;
  /** Length in bytes (never 0). */
  readonly len: number;
  /** Last guest address (inclusive). */
  readonly lastAddr: bigint;
  /** The region's dirty log (by region offset), if tracking. */
  readonly bitmap: DirtyLog | undefined;
  /** A slice at a region offset; throws if it does not fit. */
  getSlice(offset: AddressLike, count: number): S;
  /** The host address of a region offset. */
  getHostAddress(offset: AddressLike): bigint;
}

/** What `getSlicesResult` returns: the fragments, and the error that ended them early, if any. */
export interface SlicesResult<S = VolatileSlice> {
  /** The fragments, in address order. */
  slices: S[];
  /** Why the sequence ended before `count` bytes (absent when it is complete). */
  error?: GuestMemoryError;
}

/**
 * A sorted, non-overlapping set of guest memory regions, whose slices are of type `S`.
 *
 * @example
 * ```ts
 * import type { GuestMemoryBackend } from "./guest_memory_backend.ts";
 * function total(m: GuestMemoryBackend): number {
 *   return m.regions().reduce((n, r) => n + r.len, 0);
 * }
 * ```
 */
export interface GuestMemoryBackend<R extends GuestMemoryRegion<unknown> = GuestMemoryRegion, S = VolatileSlice> {
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
  getSlice(addr: AddressLike, count: number): S;
  /** The fragments of `[addr, addr + count)`; throws if the first one fails. */
  getSlices(addr: AddressLike, count: number): S[];
  /** The fragments and the error that ended them, without throwing after the first. */
  getSlicesResult(addr: AddressLike, count: number): SlicesResult<S>;
}
