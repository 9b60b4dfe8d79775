/**
 * Attaching to guest memory another process owns: a shared memory file (QEMU's
 * `memory-backend-file,share=on`, a /dev/shm file) or a memfd received over a Unix socket, mapped
 * shared with the layout's ranges at their guest physical addresses.
 * @module
 */

import {
  FileOffset,
  GuestMemoryMmap,
  InvalidArgumentError,
  PROT_READ,
  PROT_WRITE,
  ReceivedFd,
  type ReceivedFdStat,
  SyscallError,
} from "../../../mod.ts";
import { hex } from "../text.ts";
import { type LayoutRange, parseLayout } from "./layout.ts";
import { type FileIdentity, type GuestFile, identityOf } from "./output_guard.ts";

/** What to attach to and how. */
export interface AttachRequest {
  /** The operation, for errors (e.g. `"gmem hexdump"`). */
  op: string;
  /** A memory file. */
  mem?: string;
  /** A Unix socket handing over a memfd. */
  memfdSocket?: string;
  /** The layout text; default: the whole file at GPA 0. */
  layout?: string;
  /** Map read-write (commands that write) instead of read-only. */
  writable: boolean;
  /** Track the tool's own writes in pages of this size. */
  dirtyPageSize?: number;
  /** How long to wait for the socket. */
  timeoutMs: number;
}

/**
 * Guest memory the tool attached to. Closing it unmaps; the owner's memory is untouched. Its
 * `identity` (device and inode of the file or memfd) is what the tool's output files are checked
 * against.
 */
export interface Attached extends Disposable, GuestFile {
  /** The guest memory. */
  mem: GuestMemoryMmap;
  /** The layout in effect. */
  ranges: LayoutRange[];
  /** Size of the file or memfd. */
  fileSize: bigint;
  /** The memory file's path (undefined for a memfd). */
  path: string | undefined;
  /** What was attached, for messages: the path or `memfd from SOCKET`. */
  source: string;
}

/**
 * Maps the guest memory a request names.
 *
 * @example
 * ```ts
 * import { attach } from "./attach.ts";
 * // A QEMU-style memory file: 8 KiB of RAM split around a hole, the second half at GPA 0x10000.
 * const mem = Deno.makeTempFileSync();
 * Deno.truncateSync(mem, 0x2000);
 * using a = attach({ op: "gmem", mem, layout: "0:4K,64K:4K", writable: false, timeoutMs: 5000 });
 * console.log(a.mem.numRegions, a.ranges.map((r) => r.fileOffset)); // 2 [0n, 4096n]
 * Deno.removeSync(mem); // the mapping keeps the pages until it is closed
 * ```
 * @throws {InvalidArgumentError} when no memory (or both kinds) is named, the file is missing or
 *   empty, or a range needs file bytes past its end; library errors from mapping.
 */
export function attach(req: AttachRequest): Attached {
  const { op } = req;
  if ((req.mem === undefined) === (req.memfdSocket === undefined)) {
    throw new InvalidArgumentError(
      op,
      "--mem",
      req.mem ?? req.memfdSocket,
      req.mem === undefined
        ? "PATH (a memory file) or --memfd-socket PATH is required: the guest memory to attach to"
        : "and --memfd-socket cannot be used together",
    );
  }
  let received: ReceivedFd | undefined;
  let fileSize: bigint;
  let source: string;
  let identity: FileIdentity;
  if (req.mem !== undefined) {
    const info = memFileInfo(req.mem, op);
    fileSize = BigInt(info.size);
    identity = identityOf(info, op, "--mem", req.mem);
    source = req.mem;
  } else {
    received = receive(req.memfdSocket!, req.timeoutMs, op);
    source = `memfd from ${req.memfdSocket}`;
    let st: ReceivedFdStat;
    try {
      st = received.stat();
    } catch (e) {
      received.close();
      throw e;
    }
    fileSize = st.size;
    // Number() rounds as Deno's FileInfo does, so this compares exactly with a path's stat.
    identity = { dev: Number(st.dev), ino: Number(st.ino) };
  }
  try {
    if (fileSize === 0n) {
      const arg = req.mem !== undefined ? "--mem" : "--memfd-socket";
      throw new InvalidArgumentError(op, arg, source, `${req.mem ?? "memfd"} is empty (0 bytes)`);
    }
    const ranges = req.layout === undefined
      ? [{ gpa: 0n, size: safeSize(fileSize, source, op), fileOffset: 0n }]
      : parseLayout(req.layout, op);
    for (const r of ranges) {
      const end = r.fileOffset + BigInt(r.size);
      if (end > fileSize) {
        throw new InvalidArgumentError(
          op,
          "--layout",
          req.layout,
          `range at GPA ${hex(r.gpa)} needs file bytes [${hex(r.fileOffset)}, ${hex(end)}) but ${source} has ${
            hex(fileSize)
          } bytes`,
        );
      }
    }
    const fileAt = (offset: bigint) =>
      received === undefined ? FileOffset.fromPath(req.mem!, offset) : received.fileOffset(offset);
    const mem = GuestMemoryMmap.fromRangesWithFiles(
      ranges.map((r) => [r.gpa, r.size, fileAt(r.fileOffset)] as const),
      { prot: req.writable ? PROT_READ | PROT_WRITE : PROT_READ, dirtyPageSize: req.dirtyPageSize },
    );
    return {
      mem,
      ranges,
      fileSize,
      path: req.mem,
      source,
      identity,
      [Symbol.dispose]() {
        mem.close();
      },
    };
  } finally {
    // The mappings hold the memory; the descriptor itself is no longer needed.
    received?.close();
  }
}

/**
 * `ReceivedFd.receive` in the tool's words: the user typed `--memfd-socket`, so its errors name that
 * option and the command, not the library's argument and operation.
 */
function receive(path: string, timeoutMs: number, op: string): ReceivedFd {
  try {
    return ReceivedFd.receive(path, timeoutMs);
  } catch (e) {
    if (e instanceof InvalidArgumentError && e.argument === "path") {
      throw new InvalidArgumentError(op, "--memfd-socket", path, e.message.slice(`${e.op}: path `.length));
    }
    if (e instanceof SyscallError) {
      const description = / failed: \S+ \((.*)\)$/.exec(e.message)?.[1] ?? e.errnoName;
      throw new SyscallError(op, e.syscall, e.errno, e.errnoName, description, { ...e.args });
    }
    throw e;
  }
}

function memFileInfo(path: string, op: string): Deno.FileInfo {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "names no file"
      : e instanceof Deno.errors.PermissionDenied || e instanceof Deno.errors.NotCapable
      ? "cannot be read (permission denied)"
      : `cannot be examined (${e instanceof Error ? e.message : String(e)})`;
    throw new InvalidArgumentError(op, "--mem", path, `${path} ${why}`);
  }
  if (!info.isFile) throw new InvalidArgumentError(op, "--mem", path, `${path} is not a regular file`);
  return info;
}

function safeSize(size: bigint, source: string, op: string): number {
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvalidArgumentError(op, "--layout", source, `is required: ${source} is larger than 2^53 bytes`);
  }
  return Number(size);
}
