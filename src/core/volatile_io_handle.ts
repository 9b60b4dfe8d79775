/**
 * Volatile I/O through a file object's own read and write (a `Deno.FsFile`, which keeps its
 * descriptor to itself): its descriptor, its position, its access mode, and no other handle's.
 * Bytes go straight between the file and zero-copy views of guest memory.
 * @module
 */

import { GuestIOError, InvalidArgumentError, ReadOnlyError } from "./errors.ts";
import type { RuntimeFile } from "../ffi/binding.ts";
import { native } from "../ffi/native.ts";
import type { IoSlice } from "./io_slice.ts";

/** The direction of an I/O, as the access it needs from the file. */
export const ACCESS_READ = 1, ACCESS_WRITE = 2;

/** The largest copy made for memory that may not be handed out as a view (read-only memory). */
const COPY_CHUNK = 1 << 20;

/**
 * A file object to do I/O through, its name for errors, and the access the I/O needs from it.
 *
 * @example
 * ```ts ignore
 * const handle: HandleIo = { file, kind: "Deno.FsFile", access: ACCESS_READ };
 * ```
 */
export interface HandleIo {
  /** The file object. */
  readonly file: RuntimeFile;
  /** Its name in errors, e.g. `"Deno.FsFile"`. */
  readonly kind: string;
  /** {@link ACCESS_READ} or {@link ACCESS_WRITE}. */
  readonly access: number;
}

/**
 * The error for a file object opened without the access an I/O needs.
 *
 * @example
 * ```ts ignore
 * throw notOpenFor("GuestMemoryMmap.writeVolatileTo", "Deno.FsFile", ACCESS_WRITE);
 * ```
 */
export function notOpenFor(op: string, kind: string, access: number): InvalidArgumentError {
  return new InvalidArgumentError(
    op,
    "file",
    kind,
    `is not open for ${access === ACCESS_READ ? "reading" : "writing"}`,
  );
}

/**
 * What the file object's own read or write threw: before any byte moved, a handle opened the other
 * way or already closed is a bad argument; anything else is an I/O failure.
 */
function handleError(e: unknown, handle: HandleIo, op: string, moved: number): Error {
  if (moved === 0 && e instanceof Error) {
    if ((e as { code?: unknown }).code === "EBADF") return notOpenFor(op, handle.kind, handle.access);
    if (e.name === "BadResource") return new InvalidArgumentError(op, "file", handle.kind, "is closed");
  }
  return new GuestIOError(op, e);
}

/**
 * Reads from the file object into the slices in order, each through a zero-copy view. As one
 * `readv` would: a fragment is offered only once the one before it is full; without `exact` each
 * fragment gets one read, with it a fragment is read until full or the file ends. Returns the bytes
 * read (a prefix of the slices), all marked dirty.
 *
 * @example
 * ```ts ignore
 * const n = readThroughHandle(slices, { file, kind: "Deno.FsFile", access: ACCESS_READ }, false, op);
 * ```
 */
export function readThroughHandle(
  slices: readonly IoSlice[],
  handle: HandleIo,
  exact: boolean,
  op: string,
): number {
  for (const s of slices) s.ioAddress(true, op);
  const n = native();
  let done = 0;
  for (const s of slices) {
    if (s.len === 0) continue;
    const view = s.bytes();
    let got = 0;
    while (got < s.len) {
      let k: number;
      try {
        k = n.fileRead(handle.file, got === 0 ? view : view.subarray(got));
      } catch (e) {
        throw handleError(e, handle, op, done + got);
      }
      if (k === 0) break;
      s.dirtyLog?.markDirty(s.dirtyLogOffset + got, k);
      got += k;
      if (!exact) break;
    }
    done += got;
    if (got < s.len) break;
  }
  return done;
}

/**
 * Writes the slices to the file object in order, each one whole (short writes are continued);
 * returns the bytes written. Read-write memory goes out as zero-copy views, read-only memory
 * through a copy (at most 1 MiB at a time), since a view of it cannot be handed out.
 *
 * @example
 * ```ts ignore
 * const n = writeThroughHandle(slices, { file, kind: "Deno.FsFile", access: ACCESS_WRITE }, op);
 * ```
 */
export function writeThroughHandle(slices: readonly IoSlice[], handle: HandleIo, op: string): number {
  for (const s of slices) s.ioAddress(false, op);
  let done = 0;
  for (const s of slices) {
    if (s.len === 0) continue;
    let view: Uint8Array | undefined;
    try {
      view = s.bytes();
    } catch (e) {
      if (!(e instanceof ReadOnlyError)) throw e;
    }
    if (view !== undefined) {
      done += writeAll(view, handle, op, done);
      continue;
    }
    const chunk = new Uint8Array(Math.min(s.len, COPY_CHUNK));
    for (let at = 0; at < s.len;) {
      const k = s.offset(at).copyTo(chunk);
      done += writeAll(k === chunk.length ? chunk : chunk.subarray(0, k), handle, op, done);
      at += k;
    }
  }
  return done;
}

/** Writes all of `bytes` through the file object; `before` is what earlier fragments wrote. */
function writeAll(bytes: Uint8Array, handle: HandleIo, op: string, before: number): number {
  const n = native();
  let put = 0;
  while (put < bytes.length) {
    let k: number;
    try {
      k = n.fileWrite(handle.file, put === 0 ? bytes : bytes.subarray(put));
    } catch (e) {
      throw handleError(e, handle, op, before + put);
    }
    if (k === 0) throw new GuestIOError(op, new Error("the sink accepted no bytes (write returned 0)"));
    put += k;
  }
  return put;
}
