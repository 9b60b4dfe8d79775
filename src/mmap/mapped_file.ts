/**
 * The file behind a file mapping: the caller's own descriptor (or one the library opens without
 * waiting), checked to be something that can be mapped, and the file system facts a safe mapping
 * depends on (huge pages, space that can run out).
 * @module
 */

import { InvalidArgumentError, MappingPastEofError } from "../core/errors.ts";
import { cString } from "../ffi/c_string.ts";
import { native } from "../ffi/native.ts";
import { syscallError } from "../ffi/syscall_error.ts";
import type { FileOffset } from "./file_offset.ts";

/** The identity of a mapped file, for `MmapRegion.fdsOverlap`. */
export interface FileIdentity {
  /** `st_dev`. */
  readonly dev: bigint;
  /** `st_ino`. */
  readonly ino: bigint;
}

/** `statfs` type of hugetlbfs: its files (and hugetlb memfds) are made of huge pages. */
export const HUGETLBFS_MAGIC = 0x958458f6n;
/** `statfs` type of tmpfs (`/dev/shm`, memfds), which counts only data pages as the file's blocks. */
const TMPFS_MAGIC = 0x01021994n;

/** What the builder needs to know about the file it maps. */
export interface MappedFile {
  /** The descriptor to map. */
  fd: number;
  /** Whether the library opened it (and closes it once mapped). */
  owned: boolean;
  /** Device and inode. */
  identity: FileIdentity;
  /** `st_mode`. */
  mode: bigint;
  /** `st_size`. */
  size: bigint;
  /** `st_blocks`: 512-byte units allocated. */
  blocks: bigint;
  /** The descriptor's `O_ACCMODE`. */
  access: number;
  /** The file system's `statfs` type. */
  fsType: bigint;
  /** The file system's block size (for hugetlbfs: the huge page size). */
  fsBlockSize: bigint;
  /** Whether the file system has a size limit (`f_blocks` > 0): writes to unallocated pages can fail. */
  fsLimited: boolean;
}

const S_IFMT = 0o170000n;
const S_IFREG = 0o100000n, S_IFCHR = 0o020000n, S_IFBLK = 0o060000n;
const S_IFDIR = 0o040000n, S_IFIFO = 0o010000n, S_IFSOCK = 0o140000n, S_IFLNK = 0o120000n;
const O_RDWR = 2;
const ENODEV = 19;

/** Whether `mode` is a regular file. */
function isRegular(mode: bigint): boolean {
  return (mode & S_IFMT) === S_IFREG;
}

/** The zero device (major 1, minor 5), whatever path it was reached by. */
function isDevZero(mode: bigint, rdev: bigint): boolean {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return (mode & S_IFMT) === S_IFCHR && major === 1n && minor === 5n;
}

/** What kind of file `mode` is, for messages. */
function fileType(mode: bigint): string {
  switch (mode & S_IFMT) {
    case S_IFDIR:
      return "a directory";
    case S_IFIFO:
      return "a FIFO";
    case S_IFSOCK:
      return "a socket";
    case S_IFCHR:
      return "a character device";
    case S_IFBLK:
      return "a block device";
    case S_IFLNK:
      return "a symbolic link";
    default:
      return "not a regular file";
  }
}

/** Types no descriptor can be mapped from: the kernel refuses them anyway, here they are named. */
function neverMappable(mode: bigint): boolean {
  const t = mode & S_IFMT;
  return t === S_IFDIR || t === S_IFIFO || t === S_IFSOCK;
}

/**
 * Resolves a FileOffset to a descriptor and checks the mapping fits in the file. A path is opened
 * only if it names a regular file or `/dev/zero` (nothing else is opened, so a FIFO cannot block);
 * a file object's own descriptor is used, never another one of the same file; a descriptor the
 * caller gave is used as it is, unless it is a directory, FIFO or socket. `needWrite`: the mapping
 * is shared and writable, so the descriptor must be open read-write. On failure nothing stays open.
 *
 * @example
 * ```ts ignore
 * const file = openMappedFile("MmapRegion.fromFile", FileOffset.fromPath(path), 4096, true);
 * ```
 */
export function openMappedFile(op: string, fo: FileOffset, size: number, needWrite: boolean): MappedFile {
  const n = native();
  const page = BigInt(n.pageSize);
  if (fo.start % page !== 0n) {
    throw new InvalidArgumentError(op, "fileOffset.start", fo.start, `must be a multiple of the page size ${page}`);
  }
  if (fo.start + BigInt(size) > (1n << 63n) - 1n) {
    throw new InvalidArgumentError(op, "fileOffset.start", fo.start, "plus size must stay below 2^63");
  }
  const src = fo.source;
  const info = new BigUint64Array(10);
  let fd: number;
  let owned = false;
  if (src.kind === "path") {
    fd = n.openMappable(cString(src.path, op, "fileOffset.path"), needWrite, info);
    if (fd === -ENODEV && info[3] !== 0n) {
      throw new InvalidArgumentError(
        op,
        "fileOffset",
        fo.toString(),
        `${fo} names ${fileType(info[3])}; only a regular file or /dev/zero is opened to be mapped`,
      );
    }
    if (fd < 0) throw syscallError(op, "open", fd, { path: src.path, mode: needWrite ? "O_RDWR" : "O_RDONLY" });
    owned = true;
  } else if (src.kind === "file") {
    const own = n.ownDescriptor(src.file);
    if (!own.ok) throw new InvalidArgumentError(op, "fileOffset.file", src.name, own.reason);
    fd = own.fd;
  } else {
    fd = src.fd;
  }
  if (!owned) {
    // The caller's descriptor; a path was described as it was opened.
    const rc = n.fileInfo(fd, info);
    if (rc !== 0) throw syscallError(op, "fstat", rc, { fd: String(fd) });
  }
  try {
    return describe(op, fo, fd, owned, size, needWrite, info);
  } catch (e) {
    if (owned) n.close(fd);
    throw e;
  }
}

function describe(
  op: string,
  fo: FileOffset,
  fd: number,
  owned: boolean,
  size: number,
  needWrite: boolean,
  info: BigUint64Array,
): MappedFile {
  const [dev, ino, fileSize, mode, access, rdev, fsType, fsBlockSize, fsBlocks, blocks] = info;
  if (neverMappable(mode)) {
    throw new InvalidArgumentError(
      op,
      "fileOffset",
      fo.toString(),
      `${fo} is ${fileType(mode)}, which cannot be mapped`,
    );
  }
  if (needWrite && Number(access) !== O_RDWR) {
    if (fo.source.kind === "file") {
      throw new InvalidArgumentError(
        op,
        "fileOffset.file",
        fo.source.name,
        "was not opened read-write, which a shared writable mapping needs",
      );
    }
    throw new InvalidArgumentError(
      op,
      "fileOffset",
      fo.toString(),
      "is not open read-write, which a shared writable mapping needs",
    );
  }
  if (isDevZero(mode, rdev) && fo.start !== 0n) {
    // A shared mapping of /dev/zero is a new shared memory object of exactly the mapping's size,
    // indexed from the file offset: any offset but 0 makes every page fault with SIGBUS.
    throw new InvalidArgumentError(op, "fileOffset.start", fo.start, "must be 0 for a mapping of /dev/zero");
  }
  if (isRegular(mode) && fo.start + BigInt(size) > fileSize) {
    throw new MappingPastEofError(op, fileSize, fo.start, size);
  }
  return {
    fd,
    owned,
    identity: { dev, ino },
    mode,
    size: fileSize,
    blocks,
    access: Number(access),
    fsType,
    fsBlockSize,
    fsLimited: fsBlocks > 0n,
  };
}

/**
 * Allocates the file's space for `[start, start + length)` before a shared mapping that can be
 * written is made, so that a write through it never meets a full file system: that would be a
 * SIGBUS, here it is an `ENOSPC` (or the file system's refusal, such as `EOPNOTSUPP`) at map time.
 * Skipped where it cannot help or is not needed: not a regular file, a descriptor without write
 * access (the mapping can never be made writable), a private mapping (its writes are copies in
 * memory), hugetlbfs (the mapping's own reservation covers it), a file system with no size
 * limit (memfds), and a tmpfs file with every page allocated already (there `fallocate` would walk
 * every page of it: milliseconds per 64 MiB).
 *
 * @example
 * ```ts ignore
 * reserveFileSpace(op, file, true, 0n, 1 << 20);
 * ```
 */
export function reserveFileSpace(op: string, file: MappedFile, shared: boolean, start: bigint, length: number): void {
  if (!shared || !isRegular(file.mode) || file.access !== O_RDWR) return;
  if (!file.fsLimited || file.fsType === HUGETLBFS_MAGIC) return;
  if (file.fsType === TMPFS_MAGIC && file.blocks * 512n >= file.size) return;
  const rc = native().fallocate(file.fd, start, BigInt(length));
  if (rc !== 0) throw syscallError(op, "fallocate", rc, { fd: String(file.fd), offset: start, length });
}
