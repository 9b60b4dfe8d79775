/**
 * `IoSlice`: what volatile I/O needs of a slice, so that the I/O code and `Bytes` are written
 * against it and `VolatileSlice` (which is built on both) implements it.
 * @module
 */

import type { AddressLike } from "./address.ts";
import type { DirtyLog } from "./dirty_log.ts";

/**
 * One contiguous fragment of guest memory as volatile I/O uses it: its length, its bytes, where
 * writes to it are logged, and the host address the kernel reads or writes. `VolatileSlice`
 * implements it.
 *
 * @example
 * ```ts
 * import type { IoSlice } from "./io_slice.ts";
 * const total = (slices: readonly IoSlice[]) => slices.reduce((n, s) => n + s.len, 0);
 * ```
 */
export interface IoSlice {
  /** Length in bytes. */
  readonly len: number;
  /** The dirty log its writes are recorded in, if any. */
  readonly dirtyLog: DirtyLog | undefined;
  /** Where its byte 0 is recorded in {@link IoSlice.dirtyLog}. */
  readonly dirtyLogOffset: number;
  /** A view of its bytes. */
  bytes(): Uint8Array<ArrayBuffer>;
  /** The part from `count` bytes in. */
  offset(count: AddressLike): IoSlice;
  /** Copies from the slice into `buf`; the byte count. */
  copyTo(buf: Uint8Array): number;
  /** Copies `buf` into the slice; the byte count. */
  copyFrom(buf: Uint8Array): number;
  /** The host address of byte 0 for a system call that reads (`write` false) or writes it. */
  ioAddress(write: boolean, op: string): bigint;
}
