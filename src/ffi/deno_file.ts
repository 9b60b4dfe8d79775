/**
 * `Deno.FsFile` keeps its descriptor to itself. The library therefore moves bytes through the
 * handle's own methods (its descriptor, its position), and finds which descriptor of the process
 * is the handle's only when a file must be mapped, by a file position no other handle has.
 * @module
 */

import type { RuntimeFileDescriptor } from "./binding.ts";

/** The `Deno.FsFile` methods the library calls, taken from the prototype once. */
export interface FsFileMethods {
  /** `Deno.FsFile.prototype.readSync`. */
  readSync(this: Deno.FsFile, p: Uint8Array): number | null;
  /** `Deno.FsFile.prototype.writeSync`. */
  writeSync(this: Deno.FsFile, p: Uint8Array): number;
  /** `Deno.FsFile.prototype.seekSync`. */
  seekSync(this: Deno.FsFile, offset: number | bigint, whence: Deno.SeekMode): number;
  /** `Deno.FsFile.prototype.statSync`. */
  statSync(this: Deno.FsFile): Deno.FileInfo;
}

/**
 * The prototype's methods, so that an override on a subclass or on the handle itself is never
 * handed a view of guest memory (it could keep it, or write into read-only memory) and cannot
 * steer which descriptor gets mapped.
 *
 * @example
 * ```ts
 * import { fsFileMethods } from "./deno_file.ts";
 * const methods = fsFileMethods();
 * console.log(typeof methods.readSync); // "function"
 * ```
 */
export function fsFileMethods(): FsFileMethods {
  const proto = Deno.FsFile.prototype;
  return { readSync: proto.readSync, writeSync: proto.writeSync, seekSync: proto.seekSync, statSync: proto.statSync };
}

/** Descriptors of one file looked at; a process rarely has more open on the same file. */
const MAX_CANDIDATES = 64;

/** What {@link ownFsFileDescriptor} asks of the native helper. */
export interface DescriptorProbe {
  /** The descriptors open on the regular file (dev, ino), into `out`; the count, or `-errno`. */
  fdsOf(dev: bigint, ino: bigint, out: Int32Array): number;
  /** The position of `fd` if it is still open on the file (dev, ino), else `-errno`. */
  fdPosition(fd: number, dev: bigint, ino: bigint): bigint;
}

/**
 * A file position for the search: odd, in `[2^31, 2^32)` so that every file system that can hold a
 * 4 GiB file accepts it, and not `avoid`.
 */
function marker(avoid: number): number {
  for (;;) {
    const m = 2 ** 31 + 2 * Math.floor(Math.random() * 2 ** 30) + 1;
    if (m !== avoid) return m;
  }
}

const HOW_INSTEAD = "map the file with FileOffset.fromPath(path) or FileOffset.fromFd(fd)";

/**
 * The descriptor of this process that belongs to `file`. The descriptors open on the same file are
 * listed, then the handle's position is moved to two random markers in turn, and the descriptors
 * found at both (the handle's open file description, and dups of it) are the answer. The position
 * is put back before returning. If none is found at both markers, or the list was too long to be
 * complete, the answer is a reason instead: a descriptor of the same file that only looks right is
 * never used, because its access mode and position are not the handle's.
 *
 * @example
 * ```ts ignore
 * const own = ownFsFileDescriptor(file, fsFileMethods(), native());
 * ```
 */
export function ownFsFileDescriptor(
  file: Deno.FsFile,
  methods: FsFileMethods,
  probe: DescriptorProbe,
): RuntimeFileDescriptor {
  let info: Deno.FileInfo;
  try {
    info = methods.statSync.call(file);
  } catch (cause) {
    return { ok: false, reason: `cannot be used: ${cause instanceof Error ? cause.message : String(cause)}` };
  }
  if (!info.isFile) return { ok: false, reason: `is not a regular file; ${HOW_INSTEAD}` };
  if (info.dev === null || info.ino === null) return { ok: false, reason: "has no device/inode on this platform" };
  const dev = BigInt(info.dev), ino = BigInt(info.ino);
  const out = new Int32Array(MAX_CANDIDATES);
  const count = probe.fdsOf(dev, ino, out);
  if (count < 0) return { ok: false, reason: `cannot be matched to a descriptor (errno ${-count}); ${HOW_INSTEAD}` };
  if (count > MAX_CANDIDATES) {
    return { ok: false, reason: `is one of ${count} descriptors of the file, too many to tell apart; ${HOW_INSTEAD}` };
  }
  let candidates = Array.from(out.subarray(0, count));
  let start: number;
  try {
    start = methods.seekSync.call(file, 0, Deno.SeekMode.Current);
  } catch (cause) {
    return { ok: false, reason: `has no file position to find its descriptor by (${String(cause)}); ${HOW_INSTEAD}` };
  }
  let failure: string | undefined;
  try {
    let last = start;
    for (let round = 0; round < 2; round++) {
      const at = marker(last);
      last = at;
      methods.seekSync.call(file, at, Deno.SeekMode.Start);
      candidates = candidates.filter((fd) => probe.fdPosition(fd, dev, ino) === BigInt(at));
    }
  } catch (cause) {
    failure = `cannot be moved to find its descriptor (${String(cause)}); ${HOW_INSTEAD}`;
  } finally {
    methods.seekSync.call(file, start, Deno.SeekMode.Start);
  }
  if (failure !== undefined) return { ok: false, reason: failure };
  if (candidates.length === 0) {
    return { ok: false, reason: `has no descriptor this process can be sure is its own; ${HOW_INSTEAD}` };
  }
  return { ok: true, fd: candidates[0] };
}
