/**
 * Keeping `gmem`'s own output files off the guest memory. The tool writes files (`save FILE`, the
 * dirty session and its temporary file); if one of them is the memory file under another name (the
 * same path, a symlink, a hard link, `/proc/PID/fd/N`), opening it for writing would truncate or
 * replace guest RAM. Names prove nothing, so files are compared by device and inode: before
 * anything opens the output, and again on the opened descriptor (the name may have been swapped in
 * between), before a single byte changes.
 * @module
 */

import { InvalidArgumentError } from "../../../mod.ts";

/**
 * A file's identity: its device and inode, as `stat` gives them (as numbers, the way Deno's
 * `FileInfo` has them).
 */
export interface FileIdentity {
  /** `st_dev`. */
  readonly dev: number;
  /** `st_ino`. */
  readonly ino: number;
}

/** The guest memory the tool attached to, as output checks need it. */
export interface GuestFile {
  /** Device and inode of the memory file or memfd. */
  readonly identity: FileIdentity;
  /** How the memory was named on the command line, for messages (a path or `memfd from SOCKET`). */
  readonly source: string;
}

/**
 * Whether two identities are the same file.
 *
 * @example
 * ```ts
 * import { sameFile } from "./output_guard.ts";
 * sameFile({ dev: 1, ino: 2 }, { dev: 1, ino: 2 }); // true
 * ```
 */
export function sameFile(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * The identity of the file a `Deno.FileInfo` describes.
 *
 * @example
 * ```ts
 * import { identityOf } from "./output_guard.ts";
 * // identityOf(Deno.statSync("/dev/shm/ram"), "gmem save", "FILE", "/dev/shm/ram");
 * ```
 * @throws {InvalidArgumentError} when the runtime reports no inode (not Linux).
 */
export function identityOf(
  info: { dev: number; ino: number | null },
  op: string,
  argument: string,
  path: string,
): FileIdentity {
  if (info.ino === null) {
    throw new InvalidArgumentError(
      op,
      argument,
      path,
      `${path} has no inode number here, so it cannot be told apart from the guest memory`,
    );
  }
  return { dev: info.dev, ino: info.ino };
}

/**
 * The identity of the file `path` names, following symlinks (and `/proc/PID/fd/N` links), or
 * `undefined` when nothing exists there.
 *
 * @example
 * ```ts
 * import { pathIdentity } from "./output_guard.ts";
 * pathIdentity("/no/such/file", "gmem save", "FILE"); // undefined
 * ```
 * @throws {InvalidArgumentError} when the path exists but cannot be examined (so it cannot be
 *   shown not to be the guest memory).
 */
export function pathIdentity(path: string, op: string, argument: string): FileIdentity | undefined {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
    throw new InvalidArgumentError(op, argument, path, `${path} cannot be examined (${why})`);
  }
  return identityOf(info, op, argument, path);
}

function refusal(path: string, memory: GuestFile, op: string, argument: string): InvalidArgumentError {
  return new InvalidArgumentError(
    op,
    argument,
    path,
    `${path} is the guest memory ${memory.source} (same device and inode); writing it would destroy guest RAM`,
  );
}

/**
 * Refuses an output path that names the guest memory (compared by device and inode).
 *
 * @example
 * ```ts
 * import { refuseGuestMemory } from "./output_guard.ts";
 * // refuseGuestMemory("/tmp/out.bin", { identity, source: "/dev/shm/ram" }, "gmem save", "FILE");
 * ```
 * @throws {InvalidArgumentError} when `path` is the guest memory or cannot be examined.
 */
export function refuseGuestMemory(path: string, memory: GuestFile, op: string, argument: string): void {
  const id = pathIdentity(path, op, argument);
  if (id !== undefined && sameFile(id, memory.identity)) throw refusal(path, memory, op, argument);
}

/**
 * Opens `path` for writing from its start, created if missing and emptied if it is a regular file,
 * unless it is the guest memory. It is opened without `O_TRUNC` and emptied only once the opened
 * descriptor is shown to be another file, so a name swapped after the first check changes nothing.
 *
 * @example
 * ```ts
 * import { openOutputFile } from "./output_guard.ts";
 * // using file = openOutputFile("/tmp/ram.bin", attached, "gmem save", "FILE");
 * ```
 * @throws {InvalidArgumentError} when `path` is the guest memory, a directory, or cannot be opened.
 */
export function openOutputFile(path: string, memory: GuestFile, op: string, argument: string): Deno.FsFile {
  refuseGuestMemory(path, memory, op, argument);
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { write: true, create: true });
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "names no file"
      : e instanceof Deno.errors.IsADirectory
      ? "is a directory"
      : `cannot be opened (${(e as Error).message.split("\n")[0]})`;
    throw new InvalidArgumentError(op, argument, path, `${path} ${why}`);
  }
  try {
    const info = file.statSync();
    if (sameFile(identityOf(info, op, argument, path), memory.identity)) throw refusal(path, memory, op, argument);
    // Devices and pipes have no length to cut (ftruncate fails on them); they are written as they are.
    if (info.isFile) file.truncateSync(0);
    return file;
  } catch (e) {
    file.close();
    throw e;
  }
}

/**
 * Replaces `path` with `bytes` all at once: written to a new temporary file beside it (created
 * exclusively, so no existing file, whatever it links to, is ever opened), then renamed over `path`
 * unless `path` is the guest memory.
 *
 * @example
 * ```ts
 * import { replaceFile } from "./output_guard.ts";
 * // replaceFile("/dev/shm/ram.gmem-dirty", bytes, attached, "gmem dirty", "--session");
 * ```
 * @throws {InvalidArgumentError} when `path` is the guest memory or the file cannot be written.
 */
export function replaceFile(path: string, bytes: Uint8Array, memory: GuestFile, op: string, argument: string): void {
  refuseGuestMemory(path, memory, op, argument);
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  let created = false;
  try {
    const file = Deno.openSync(tmp, { write: true, createNew: true });
    created = true;
    try {
      for (let rest = bytes; rest.length > 0;) rest = rest.subarray(file.writeSync(rest));
    } finally {
      file.close();
    }
    // The last look before the name changes: a file moved onto `path` meanwhile is not replaced.
    refuseGuestMemory(path, memory, op, argument);
    Deno.renameSync(tmp, path);
    created = false;
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw e;
    throw new InvalidArgumentError(
      op,
      argument,
      path,
      `${path} cannot be written (${(e as Error).message.split("\n")[0]})`,
    );
  } finally {
    if (created) {
      try {
        Deno.removeSync(tmp);
      } catch {
        // Already gone; nothing else to undo.
      }
    }
  }
}
