/**
 * I/O straight between guest memory and a file descriptor, an open file object (`Deno.FsFile`, a
 * `FileHandle`) or a `Uint8Array`
 * (vm-memory's `ReadVolatile`/`WriteVolatile` sources and sinks). For descriptors, one
 * `readv`/`writev` covers every fragment: the kernel copies, with no buffer in between. A
 * `Deno.FsFile` reads and writes through its own methods, straight into and out of zero-copy views.
 * @module
 */

import { bytesLength, bytesWindow } from "./caller_bytes.ts";
import { GuestIOError, InvalidArgumentError, PartialBufferError } from "./errors.ts";
import type { RuntimeFile } from "../ffi/binding.ts";
import { native } from "../ffi/native.ts";
import { errnoName } from "../ffi/errno.ts";
import { syscallError } from "../ffi/syscall_error.ts";
import {
  ACCESS_READ,
  ACCESS_WRITE,
  type HandleIo,
  notOpenFor,
  readThroughHandle,
  writeThroughHandle,
} from "./volatile_io_handle.ts";
import type { IoSlice } from "./io_slice.ts";

/**
 * Where bytes come from or go to: a raw file descriptor of this process, an open file object of the
 * runtime (a `Deno.FsFile`, read and written through its own methods at its own position; or
 * anything with a numeric `fd`, such as a `node:fs/promises` `FileHandle`, through that
 * descriptor), or a `Uint8Array`.
 */
export type VolatileIo = number | RuntimeFile | Uint8Array;

const O_WRONLY = 1, O_RDWR = 2;

/**
 * Resolves a source or sink to the caller's own descriptor, a file object to do the I/O through,
 * or the array itself. A descriptor of the same file that the caller did not give is never used:
 * its position and access mode are another handle's.
 */
function resolve(io: VolatileIo, access: number, op: string): number | HandleIo | Uint8Array {
  if (io instanceof Uint8Array) return io;
  if (typeof io === "number") {
    if (!Number.isInteger(io) || io < 0 || io > 0x7fffffff) {
      throw new InvalidArgumentError(op, "fd", io, "must be a non-negative 32-bit integer");
    }
    return io;
  }
  const n = native();
  const kind = n.fileKind(io);
  if (kind === undefined) {
    throw new InvalidArgumentError(
      op,
      "source",
      io,
      "must be a file descriptor, a Deno.FsFile or a Uint8Array (for streams such as Deno.Conn use the *Async methods)",
    );
  }
  const fd = n.fileDescriptor(io);
  if (fd < 0) return { file: io, kind, access };
  const info = new BigUint64Array(5);
  const rc = n.fstat(fd, info);
  if (rc !== 0) {
    throw new InvalidArgumentError(op, "file", kind, `cannot be used: fstat(fd ${fd}) failed with ${errnoName(-rc)}`);
  }
  const mode = Number(info[4]);
  if (access === ACCESS_READ ? mode === O_WRONLY : mode !== O_WRONLY && mode !== O_RDWR) {
    throw notOpenFor(op, kind, access);
  }
  return fd;
}

/** A source's or sink's real length (see `bytesLength`), which its own `length` may misstate. */
function arrayLength(array: Uint8Array, op: string): number {
  const len = bytesLength(array);
  if (len < 0) throw new InvalidArgumentError(op, "source", array, "must be a Uint8Array");
  return len;
}

/** The (address, length) pairs of slices from byte `skip` on, for readv/writev. */
function iovecs(slices: readonly IoSlice[], skip: number, write: boolean, op: string): [BigUint64Array, number] {
  const pairs = new BigUint64Array(slices.length * 2);
  let n = 0;
  for (const s of slices) {
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    pairs[2 * n] = s.ioAddress(write, op) + BigInt(skip);
    pairs[2 * n + 1] = BigInt(s.len - skip);
    skip = 0;
    n++;
  }
  return [pairs, n];
}

/** Marks the first `n` bytes of the slices dirty (memory written from a source). */
function markFirst(slices: readonly IoSlice[], n: number): void {
  for (const s of slices) {
    if (n <= 0) return;
    const k = Math.min(n, s.len);
    s.dirtyLog?.markDirty(s.dirtyLogOffset, k);
    n -= k;
  }
}

/**
 * Fills the slices from `source`: up to their total length (or exactly, throwing
 * `PartialBufferError`), returning the bytes read.
 *
 * @example
 * ```ts ignore
 * const n = readInto(mem.getSlices(0x1000, 4096), file, false, 4096, 0x1000n, "GuestMemoryMmap.readVolatileFrom");
 * ```
 */
export function readInto(
  slices: readonly IoSlice[],
  source: VolatileIo,
  exact: boolean,
  count: number,
  addr: bigint,
  op: string,
): number {
  const from = resolve(source, ACCESS_READ, op);
  let done = 0;
  if (from instanceof Uint8Array) {
    // Checked up front under the caller's op, as the descriptor path does in iovecs().
    for (const s of slices) s.ioAddress(true, op);
    const len = arrayLength(from, op);
    for (const s of slices) {
      if (done >= len) break;
      done += s.copyFrom(bytesWindow(from, done, len - done, op));
    }
  } else if (typeof from !== "number") {
    done = readThroughHandle(slices, from, exact, op);
  } else {
    const size = total(slices);
    while (done < size) {
      const [pairs, k] = iovecs(slices, done, true, op);
      const n = native().readv(from, pairs, k);
      if (n < 0n) {
        throw new GuestIOError(op, syscallError(op, "readv", n, { fd: String(from), iovecs: k }));
      }
      if (n === 0n) break;
      markFirst(slices, done + Number(n));
      done += Number(n);
      if (!exact) break;
    }
  }
  if (exact && done !== count) {
    throw new PartialBufferError(op, addr, count, done, done < total(slices) ? "the source ended early" : undefined);
  }
  return done;
}

function total(slices: readonly IoSlice[]): number {
  return slices.reduce((n, s) => n + s.len, 0);
}

/**
 * Writes the slices to `sink` (whole fragments, retrying short writes), returning the bytes
 * written; with `exact`, fewer than `count` throws `PartialBufferError`.
 *
 * @example
 * ```ts ignore
 * writeFrom(mem.getSlices(0x1000, 4096), 1, true, 4096, 0x1000n, "GuestMemoryMmap.writeAllVolatileTo");
 * ```
 */
export function writeFrom(
  slices: readonly IoSlice[],
  sink: VolatileIo,
  exact: boolean,
  count: number,
  addr: bigint,
  op: string,
): number {
  const to = resolve(sink, ACCESS_WRITE, op);
  let done = 0;
  if (to instanceof Uint8Array) {
    for (const s of slices) s.ioAddress(false, op);
    const len = arrayLength(to, op);
    for (const s of slices) {
      if (done >= len) break;
      done += s.copyTo(bytesWindow(to, done, len - done, op));
    }
  } else if (typeof to !== "number") {
    done = writeThroughHandle(slices, to, op);
  } else {
    const size = total(slices);
    while (done < size) {
      const [pairs, k] = iovecs(slices, done, false, op);
      const n = native().writev(to, pairs, k);
      if (n < 0n) {
        throw new GuestIOError(op, syscallError(op, "writev", n, { fd: String(to), iovecs: k }));
      }
      if (n === 0n) throw new GuestIOError(op, new Error("the sink accepted no bytes (write returned 0)"));
      done += Number(n);
    }
  }
  if (exact && done !== count) {
    throw new PartialBufferError(op, addr, count, done, done < total(slices) ? "the sink took fewer bytes" : undefined);
  }
  return done;
}
