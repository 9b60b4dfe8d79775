/**
 * `FileOffset`: the file behind a mapping and where in it the mapping starts.
 * @module
 */

import { toAddress } from "../core/address.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import type { RuntimeFile } from "../ffi/binding.ts";
import { cString } from "../ffi/c_string.ts";
import { native } from "../ffi/native.ts";
import { hex } from "../core/format.ts";

/** Where a {@link FileOffset}'s file comes from. */
export type FileSource =
  | { readonly kind: "path"; readonly path: string }
  | { readonly kind: "file"; readonly file: RuntimeFile; readonly name: string }
  | { readonly kind: "fd"; readonly fd: number };

/**
 * A file (by path, as an open file object, or as a raw descriptor such as a memfd) plus the byte
 * offset in it where a mapping starts. The offset must be a multiple of the page size.
 *
 * @example
 * ```ts
 * import { FileOffset, MmapRegion } from "../../mod.ts";
 * const path = Deno.makeTempFileSync();
 * Deno.truncateSync(path, 8192);
 * using region = MmapRegion.fromFile(FileOffset.fromPath(path, 4096), 4096);
 * console.log(region.size); // 4096
 * ```
 */
export class FileOffset {
  /** The file. */
  readonly source: FileSource;
  /** Byte offset of the mapping in the file. */
  readonly start: bigint;

  private constructor(source: FileSource, start: bigint) {
    this.source = source;
    this.start = start;
  }

  /**
   * A file named by path; it is opened when the region is built (read-write for shared writable
   * mappings, read-only otherwise) and closed again once mapped. Only a regular file or
   * `/dev/zero` is opened: a FIFO, socket, directory or device is refused by type first, so the
   * build never blocks. A path (or `file:` URL) with a NUL is refused here.
   *
   * @example
   * ```ts
   * import { FileOffset } from "../../mod.ts";
   * const fo = FileOffset.fromPath("/dev/shm/guest-ram", 0);
   * console.log(fo.start); // 0n
   * ```
   */
  static fromPath(path: string | URL, start: number | bigint = 0): FileOffset {
    const op = "FileOffset.fromPath";
    let p: string;
    if (path instanceof URL) p = fileUrlPath(path, op);
    else if (typeof path === "string") p = path;
    else throw new InvalidArgumentError(op, "path", path, "must be a non-empty string or file: URL");
    // Checked here, not only when the file is opened: the path is what the caller sees in errors.
    cString(p, op, "path");
    return new FileOffset({ kind: "path", path: p }, toAddress(start, op, "start"));
  }

  /**
   * An open file object: a `Deno.FsFile`, or anything with a numeric `fd` (a `node:fs/promises`
   * `FileHandle`, on Deno or Bun). The region is built from that object's own descriptor, with its
   * access mode (a read-only handle never maps writable), so the file must stay open until then.
   * A `Deno.FsFile` does not show its descriptor: it is found by moving the handle's position to
   * two random values and back while the region is built (so no asynchronous read or write on the
   * handle may be pending then); if that cannot single it out, the build is refused with an
   * `InvalidArgumentError` that says to use {@link FileOffset.fromPath} or {@link FileOffset.fromFd}.
   *
   * @example
   * ```ts
   * import { FileOffset } from "../../mod.ts";
   * const file = Deno.openSync(Deno.makeTempFileSync(), { read: true, write: true });
   * const fo = FileOffset.fromFile(file);
   * console.log(fo.source.kind); // "file"
   * ```
   */
  static fromFile(file: RuntimeFile, start: number | bigint = 0): FileOffset {
    const op = "FileOffset.fromFile";
    const name = native().fileKind(file);
    if (name === undefined) {
      throw new InvalidArgumentError(op, "file", file, "must be a Deno.FsFile or an open file handle with an fd");
    }
    return new FileOffset({ kind: "file", file, name }, toAddress(start, op, "start"));
  }

  /**
   * A raw file descriptor of this process (for example a memfd received over a Unix socket). The
   * descriptor is borrowed: the library never closes it, and maps it with its own access mode. A
   * directory, FIFO or socket is refused when the region is built.
   *
   * @example
   * ```ts
   * import { FileOffset } from "../../mod.ts";
   * const fo = FileOffset.fromFd(3, 0);
   * console.log(fo.source); // { kind: "fd", fd: 3 }
   * ```
   */
  static fromFd(fd: number, start: number | bigint = 0): FileOffset {
    const op = "FileOffset.fromFd";
    if (typeof fd !== "number" || !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
      throw new InvalidArgumentError(op, "fd", fd, "must be a non-negative 32-bit integer");
    }
    return new FileOffset({ kind: "fd", fd }, toAddress(start, op, "start"));
  }

  /**
   * A short description, e.g. `"/dev/shm/ram@0x0"` or `"fd 7@0x1000"`.
   *
   * @example
   * ```ts
   * import { FileOffset } from "../../mod.ts";
   * FileOffset.fromFd(7, 4096).toString(); // "fd 7@0x1000"
   * ```
   */
  toString(): string {
    const s = this.source;
    const what = s.kind === "path" ? s.path : s.kind === "fd" ? `fd ${s.fd}` : s.name;
    return `${what}@${hex(this.start)}`;
  }
}

/**
 * The local path a `file:` URL names. Refused: other schemes, a host other than `localhost` (the
 * path would be read as a local one), a malformed percent escape, and an escaped `/` (which would
 * turn one path segment into two).
 */
function fileUrlPath(url: URL, op: string): string {
  if (url.protocol !== "file:") throw new InvalidArgumentError(op, "path", url.href, "must be a file: URL");
  if (url.hostname !== "" && url.hostname !== "localhost") {
    throw new InvalidArgumentError(op, "path", url.href, `must name a local file, not one on host ${url.hostname}`);
  }
  if (/%2f/i.test(url.pathname)) {
    throw new InvalidArgumentError(op, "path", url.href, "must not contain an escaped '/' (%2F)");
  }
  try {
    return decodeURIComponent(url.pathname);
  } catch {
    throw new InvalidArgumentError(op, "path", url.href, "has a malformed percent escape");
  }
}
