/**
 * Positioned vectored I/O between a file and guest-memory fragments: one `preadv`/`pwritev` moves
 * the bytes straight between the file and every fragment of a request (the kernel copies; nothing
 * in between), as `readVolatileFrom`/`writeVolatileTo` do at a file's own position.
 * @module
 */

import { GuestIOError, SyscallError, type VolatileSlice } from "../../mod.ts";
import { errnoName } from "../ffi/errno.ts";
import { native } from "../ffi/native.ts";

/** iovecs one call takes (the C side's limit); more fragments take more calls. */
const MAX_IOV = 1024;
/**
 * The (address, length) pairs handed to the kernel, made once: allocating a BigUint64Array costs
 * more than the 4 KiB preadv it describes (~300 ns, measured). Every call here is synchronous.
 */
const PAIRS = new BigUint64Array(2 * MAX_IOV);

/**
 * Reads file bytes from `offset` into `slices` (one `preadv` per 1024 fragments, repeated on a
 * short read); returns the bytes read, fewer only at the end of the file. The fragments read into
 * are marked dirty. Throws `GuestIOError` when the system call fails.
 *
 * @example
 * ```ts ignore
 * const n = preadSlices(imageFd, chain.slices(true, 0, 4096), 8 * 512, "vhost-user-blk.read");
 * ```
 */
export function preadSlices(fd: number, slices: readonly VolatileSlice[], offset: number, op: string): number {
  return vectored(fd, slices, offset, true, op);
}

/**
 * Writes `slices` to the file at `offset` (one `pwritev` per 1024 fragments, repeated on a short
 * write); returns the bytes written. Throws `GuestIOError` when the system call fails or takes
 * nothing.
 *
 * @example
 * ```ts ignore
 * pwriteSlices(imageFd, chain.slices(false, 16, 4096), 8 * 512, "vhost-user-blk.write");
 * ```
 */
export function pwriteSlices(fd: number, slices: readonly VolatileSlice[], offset: number, op: string): number {
  return vectored(fd, slices, offset, false, op);
}

function vectored(fd: number, slices: readonly VolatileSlice[], offset: number, read: boolean, op: string): number {
  let total = 0;
  for (const s of slices) total += s.len;
  const pairs = PAIRS;
  let done = 0;
  while (done < total) {
    // The pairs from byte `done` on: whole fragments after a partial first one.
    let skip = done, k = 0;
    for (const s of slices) {
      if (k === MAX_IOV) break;
      if (skip >= s.len) {
        skip -= s.len;
        continue;
      }
      pairs[2 * k] = skip === 0 ? s.ioAddress(read, op) : s.ioAddress(read, op) + BigInt(skip);
      pairs[2 * k + 1] = BigInt(s.len - skip);
      skip = 0;
      k++;
    }
    const at = BigInt(offset + done);
    const rc = read ? native().preadv(fd, pairs, k, at) : native().pwritev(fd, pairs, k, at);
    if (rc < 0n) {
      const errno = Number(-rc);
      const call = read ? "preadv" : "pwritev";
      throw new GuestIOError(
        op,
        new SyscallError(op, call, errno, errnoName(errno), native().strerror(errno), { fd, offset: at, iovecs: k }),
      );
    }
    if (rc === 0n) {
      if (read) break;
      throw new GuestIOError(op, new Error("the file accepted no bytes (pwritev returned 0)"));
    }
    if (read) markDirty(slices, done, Number(rc));
    done += Number(rc);
  }
  return done;
}

/** Marks bytes `[from, from + n)` of the fragments dirty (memory written from the file). */
function markDirty(slices: readonly VolatileSlice[], from: number, n: number): void {
  let skip = from;
  for (const s of slices) {
    if (n <= 0) return;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    const k = Math.min(n, s.len - skip);
    s.dirtyLog?.markDirty(s.dirtyLogOffset + skip, k);
    n -= k;
    skip = 0;
  }
}

/** A file opened for positioned I/O: its descriptor (owned by the caller) and size. */
export interface IoFile {
  /** The descriptor. */
  fd: number;
  /** Its size in bytes when opened (0 for a character device). */
  size: number;
}

/**
 * Opens `path` for positioned I/O (read-write unless `writable` is false): a regular file, or a
 * character device such as `/dev/urandom` (size 0). Throws `SyscallError` if it cannot be opened.
 *
 * @example
 * ```ts ignore
 * const image = openIoFile("/var/lib/disk.img", true);
 * closeIoFile(image.fd);
 * ```
 */
export function openIoFile(path: string, writable: boolean): IoFile {
  const op = "openIoFile";
  const n = native();
  const fd = n.open(new TextEncoder().encode(path + "\0"), writable);
  if (fd < 0) throw new SyscallError(op, "open", -fd, errnoName(-fd), n.strerror(-fd), { path });
  const info = new BigUint64Array(5);
  const rc = n.fstat(fd, info);
  if (rc < 0) {
    n.close(fd);
    throw new SyscallError(op, "fstat", -rc, errnoName(-rc), n.strerror(-rc), { path });
  }
  return { fd, size: Number(info[2]) };
}

/**
 * `fdatasync`: the file's data reaches its storage. Returns 0 or `-errno`.
 *
 * @example
 * ```ts ignore
 * if (syncData(image.fd) !== 0) status = IOERR;
 * ```
 */
export function syncData(fd: number): number {
  return native().fdatasync(fd);
}

/**
 * One `read` at the file's own position into `slices` (for a source that cannot seek, such as
 * `/dev/urandom`); returns the bytes read. Throws `GuestIOError` when it fails.
 *
 * @example
 * ```ts ignore
 * const n = readSlices(urandomFd, chain.slices(true, 0, chain.writableLength), "vhost-user-rng");
 * ```
 */
export function readSlices(fd: number, slices: readonly VolatileSlice[], op: string): number {
  const k = Math.min(slices.length, MAX_IOV);
  const pairs = PAIRS;
  for (let i = 0; i < k; i++) {
    pairs[2 * i] = slices[i].ioAddress(true, op);
    pairs[2 * i + 1] = BigInt(slices[i].len);
  }
  const rc = native().readv(fd, pairs, k);
  if (rc < 0n) {
    const errno = Number(-rc);
    throw new GuestIOError(
      op,
      new SyscallError(op, "readv", errno, errnoName(errno), native().strerror(errno), { fd }),
    );
  }
  markDirty(slices, 0, Number(rc));
  return Number(rc);
}

/** Closes a descriptor from {@link openIoFile}. @example `closeIoFile(image.fd)` */
export function closeIoFile(fd: number): void {
  native().close(fd);
}
