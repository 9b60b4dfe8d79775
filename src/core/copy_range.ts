/**
 * The one bulk copy between caller buffers and a region's memory, with protection checked first.
 * @module
 */

import { MisalignedError, NoAccessError, ReadOnlyError } from "./errors.ts";
import { bytesWindow } from "./caller_bytes.ts";
import { copyIn, copyInMin, copyOut } from "./copy_engine.ts";
import type { DirtyLog } from "./dirty_log.ts";
import type { ElementViews } from "./view_window.ts";

/** Outcome of {@link copyRange}. */
export const enum CopyStatus {
  /** Copied. */
  Done = 0,
  /** A write was asked of memory without write access. */
  ReadOnly = 1,
  /** The memory cannot be read (or written) at all. */
  NoAccess = 2,
}

/**
 * Copies `len` bytes between `buf[bufOff…]` and region offset `off`, marking writes dirty at
 * `logBase + off`. The caller has checked bounds. For a write, `bufLen` is `buf`'s real length
 * (`bytesLength`); the copy engine (copy_engine.ts) checks `buf`'s real length again right before
 * it copies, so its own properties cannot make the copy move more than was checked. `owner.op` names the operation in errors (joined
 * only when one is thrown, so the common path builds no string). Stale views (a replaced or detached buffer, a
 * changed protection) are refreshed here, off the fast path; a closed region throws from there.
 *
 * @example
 * ```ts ignore
 * copyRange(views, 0, data, 0, n, n, true, undefined, 0, "GuestRegionMmap", "write");
 * ```
 */
export function copyRange(
  views: ElementViews,
  off: number,
  buf: Uint8Array,
  bufOff: number,
  len: number,
  bufLen: number,
  write: boolean,
  log: DirtyLog | undefined,
  logBase: number,
  owner: string,
  op: string,
): CopyStatus {
  if (len === 0) return CopyStatus.Done;
  if (views.u8.length === 0 || !(write ? views.writable : views.readable)) {
    views.refresh(`${owner}.${op}`);
    if (write && !views.writable) return views.readable ? CopyStatus.ReadOnly : CopyStatus.NoAccess;
    if (!write && !views.readable) return CopyStatus.NoAccess;
  }
  if (write) {
    if (len < copyInMin) {
      // TypedArray.set, here rather than in the engine: a call more measured 15% on 64-byte writes,
      // and a try/catch around it as much on Bun. `buf` was measured when the request began and no
      // user code ran since, except where the caller re-measures it (a guarded slice).
      // Our array's `set` reads the source's internal length, which is bufLen when whole.
      views.u8.set(bufOff === 0 && len === bufLen ? buf : bytesWindow(buf, bufOff, len, op, owner), off);
    } else {
      copyIn(views, off, buf, bufOff, len, owner, op);
    }
    if (log !== undefined) log.markDirty(logBase + off, len);
  } else {
    copyOut(views, off, buf, bufOff, len, owner, op);
  }
  return CopyStatus.Done;
}

/**
 * Checks an atomic access of `size` bytes at view offset `off` (already known to be in bounds):
 * natural alignment, then protection, refreshing stale views. Throws {@link MisalignedError},
 * {@link ReadOnlyError} or {@link NoAccessError} naming `addr` (the address as the caller gave it).
 *
 * @example
 * ```ts ignore
 * checkAtomic(views, 8, 4, true, "GuestMemoryMmap.storeU32", 0x1008n, "guest address");
 * ```
 */
export function checkAtomic(
  views: ElementViews,
  off: number,
  size: number,
  write: boolean,
  op: string,
  addr: bigint,
  where: string,
): void {
  if (off % size !== 0) throw new MisalignedError(op, addr, size);
  if (views.u8.length === 0 || !(write ? views.writable : views.readable)) {
    views.refresh(op);
    if (write && !views.writable) {
      if (views.readable) throw new ReadOnlyError(op, where, addr, size);
      throw new NoAccessError(op, where, addr, size, "write", "without write access");
    }
    if (!write && !views.readable) throw new NoAccessError(op, where, addr, size, "read", "without read access");
  }
}

/**
 * Turns a failed {@link copyRange} status into its error.
 *
 * @example
 * ```ts ignore
 * throw copyError(CopyStatus.ReadOnly, "GuestMemoryMmap.write", "guest address", 0x1000n, 4);
 * ```
 */
export function copyError(status: CopyStatus, op: string, where: string, addr: bigint, len: number): Error {
  return status === CopyStatus.ReadOnly
    ? new ReadOnlyError(op, where, addr, len)
    : new NoAccessError(op, where, addr, len, "this", "without the needed access");
}
