/**
 * The runtime-neutral interface to the native helper (`native/gmem.c`). Everything above `src/ffi/`
 * talks to host memory through this interface only, so another runtime's binding can sit beside the
 * Deno one without changes elsewhere. Calls return `-errno` on failure, never throw.
 * @module
 */

/**
 * A native pointer as the runtime represents it: on Deno a `Deno.PointerValue` (an opaque object,
 * `null` for address 0), on Bun a plain number. Only the binding looks inside; use
 * `NativeBinding.addressOfPointer` to get the address.
 */
export type RawPointer = Deno.PointerValue | number;

/**
 * Read-only typed reads at a native address, the subset of `Deno.UnsafePointerView` that every
 * runtime can provide (Bun: `bun:ffi`'s `read.*`). Offsets are in bytes from the pointer and
 * default to 0; multi-byte values are little-endian (the host's order).
 *
 * @example
 * ```ts
 * import { native } from "./native.ts";
 * const cell = new Uint32Array([7]);
 * console.log(native().pointerView(native().addressOf(cell)).getUint32()); // 7
 * ```
 */
export interface RawPointerView {
  /** An unsigned byte. */
  getUint8(offset?: number): number;
  /** A signed byte. */
  getInt8(offset?: number): number;
  /** An unsigned 16-bit value. */
  getUint16(offset?: number): number;
  /** A signed 16-bit value. */
  getInt16(offset?: number): number;
  /** An unsigned 32-bit value. */
  getUint32(offset?: number): number;
  /** A signed 32-bit value. */
  getInt32(offset?: number): number;
  /** An unsigned 64-bit value. */
  getBigUint64(offset?: number): bigint;
  /** A signed 64-bit value. */
  getBigInt64(offset?: number): bigint;
  /** A 32-bit float. */
  getFloat32(offset?: number): number;
  /** A 64-bit float. */
  getFloat64(offset?: number): number;
}

/**
 * An open file object of the runtime that the library accepts where it takes a file: a
 * `Deno.FsFile` on Deno, or anything with a numeric `fd` (a `node:fs/promises` `FileHandle`) on
 * either runtime.
 */
export type RuntimeFile = Deno.FsFile | { readonly fd: number };

/** What `NativeBinding.statFile` found out about a runtime file object. */
export type RuntimeFileStat =
  | { readonly ok: true; readonly dev: bigint; readonly ino: bigint }
  | { readonly ok: false; readonly reason: string };

/** What `NativeBinding.ownDescriptor` found: the file object's own descriptor, or why not. */
export type RuntimeFileDescriptor =
  | { readonly ok: true; readonly fd: number }
  | { readonly ok: false; readonly reason: string };

/** Slot indices of the map request block (`int64_t req[]` in `native/gmem.c`). */
export const Req = {
  size: 0,
  prot: 1,
  flags: 2,
  fd: 3,
  offset: 4,
  align: 5,
  guardBefore: 6,
  guardAfter: 7,
  options: 8,
  memfdFlags: 9,
  outAddr: 10,
  outFd: 11,
  outStep: 12,
  slots: 16,
} as const;

/** Option bits of the map request (`GM_OPT_*`). */
export const MapOption = { memfd: 1, madvHugepage: 2, madvDontdump: 4 } as const;

/** Steps of a map request (`GM_STEP_*`), reported in the `outStep` slot when one fails. */
export const MapStep = { madviseHugepage: 5, madviseDontdump: 6 } as const;

/** Which step of a map request failed (`GM_STEP_*`), as the syscall it made. */
export const MAP_STEP_SYSCALL: readonly string[] = [
  "none",
  "memfd_create",
  "ftruncate",
  "mmap",
  "mmap",
  "madvise",
  "madvise",
  "mprotect",
];

/**
 * The native helper's functions. Addresses and 64-bit sizes are `bigint` (the FFI fast path).
 *
 * @example
 * ```ts
 * import { native } from "./native.ts";
 * const b = native();
 * console.log(b.pageSize); // 4096 (x86_64 Linux)
 * ```
 */
export interface NativeBinding {
  /** The runtime this binding is for, e.g. `"deno"`. */
  readonly runtime: string;
  /** Where the helper library was loaded from. */
  readonly libraryPath: string;
  /** The host page size in bytes. */
  readonly pageSize: number;
  /**
   * The most bytes one ArrayBuffer over native memory may cover (a multiple of the page size):
   * 2^53 − 1 on Deno, 2^32 on Bun. Larger mappings are covered by several views, each this size
   * except the last. `GMEM_MAX_VIEW_BYTES` (a smaller page multiple) lowers it, to exercise the
   * seams between views on any runtime.
   */
  readonly maxViewBytes: number;
  /**
   * Whether ArrayBuffers made by {@link NativeBinding.arrayBuffer} can carry a native deallocator,
   * so that a mapping hold (see {@link NativeBinding.holdMapping}) learns when the last one is
   * collected (Bun: yes; Deno: no).
   */
  readonly collectsViews: boolean;
  /** Runs a map request (see {@link Req}); returns 0 or `-errno`. */
  map(request: BigInt64Array, memfdName: Uint8Array | null): number;
  /** `munmap`; returns 0 or `-errno`. */
  unmap(addr: bigint, length: bigint): number;
  /** `mprotect`; returns 0 or `-errno`. */
  protect(addr: bigint, length: bigint, prot: number): number;
  /** Replaces the range with private read-write zero pages; returns 0 or `-errno`. */
  quarantine(addr: bigint, length: bigint): number;
  /** `memfd_create` + `ftruncate`; returns the fd or `-errno`. */
  memfdCreate(name: Uint8Array, flags: number, size: bigint): number;
  /**
   * `open(path, O_RDWR or O_RDONLY | O_CLOEXEC)` without waiting (a FIFO does not block it);
   * returns the fd or `-errno`.
   */
  open(path: Uint8Array, writable: boolean): number;
  /**
   * Opens a file to be mapped: a regular file or `/dev/zero`, checked before anything is opened for
   * I/O (so a FIFO, socket, directory or device is refused without blocking or running driver
   * code). `out` (10 slots) gets what {@link NativeBinding.fileInfo} gives for the opened file; for
   * a refused one, only its dev, ino, size, mode and rdev. Returns the fd, or `-errno`: `-ENODEV`
   * for a file of another type, `-ESTALE` if the path changed meanwhile.
   */
  openMappable(path: Uint8Array, writable: boolean, out: BigUint64Array): number;
  /** `close`; returns 0 or `-errno`. */
  close(fd: number): number;
  /** `fcntl(F_DUPFD_CLOEXEC)`; returns the new fd or `-errno`. */
  dup(fd: number): number;
  /** `fstat` + `F_GETFL` into `out` (dev, ino, size, mode, access mode); returns 0 or `-errno`. */
  fstat(fd: number, out: BigUint64Array): number;
  /**
   * `fstat`, `F_GETFL` and `fstatfs` into `out`: dev, ino, size, mode, access mode, rdev, then the
   * file system's type, block size and block count (0 when it has no size limit), then the file's
   * allocated 512-byte blocks; 0 or `-errno`.
   */
  fileInfo(fd: number, out: BigUint64Array): number;
  /** `fallocate(fd, 0, offset, length)`: reserves the blocks of that range; 0 or `-errno`. */
  fallocate(fd: number, offset: bigint, length: bigint): number;
  /**
   * The descriptors of this process open on the regular file (dev, ino), as many as fit into
   * `out`; returns how many there are, or `-errno`.
   */
  fdsOf(dev: bigint, ino: bigint, out: Int32Array): number;
  /** The file position of `fd` if it is still open on the file (dev, ino), else `-errno`. */
  fdPosition(fd: number, dev: bigint, ino: bigint): bigint;
  /** The default huge page size in bytes, or `-errno` (`-ENOENT` when the host has none). */
  defaultHugePageSize(): bigint;
  /** One `readv` into `count` (address, length) pairs; bytes read, or `-errno`. */
  readv(fd: number, pairs: BigUint64Array, count: number): bigint;
  /** One `writev` from `count` (address, length) pairs; bytes written, or `-errno`. */
  writev(fd: number, pairs: BigUint64Array, count: number): bigint;
  /**
   * Connects to the Unix socket at `path` (NUL-terminated), receives one message and closes the
   * socket: payload into `buf`, SCM_RIGHTS descriptors into `fds` (unused slots -1). Waits at most
   * `timeoutMs` for each step. Returns the payload length, or `-errno`.
   */
  unixRecvFds(path: Uint8Array, buf: Uint8Array, fds: Int32Array, timeoutMs: number): bigint;
  /** A listening Unix stream socket at `path` (NUL-terminated; non-blocking); the fd or `-errno`. */
  unixListen(path: Uint8Array, backlog: number): number;
  /** One pending connection of a listening socket (non-blocking); the fd, or `-EAGAIN` when none waits. */
  unixAccept(fd: number): number;
  /** Connects to the Unix stream socket at `path` (NUL-terminated); the fd (non-blocking) or `-errno`. */
  unixConnect(path: Uint8Array): number;
  /** A connected pair of Unix stream sockets (non-blocking) into `out[0]`, `out[1]`; 0 or `-errno`. */
  socketPair(out: Int32Array): number;
  /**
   * Sends all of `buf` with the descriptors in `fds` (SCM_RIGHTS), waiting at most `timeoutMs` per
   * step while the socket's buffer is full; the byte count or `-errno` (`-ETIMEDOUT`).
   */
  sendFds(fd: number, buf: Uint8Array, fds: Int32Array, timeoutMs: number): bigint;
  /**
   * One non-blocking receive into `buf`, descriptors into `fds` (unused slots -1, extra ones closed);
   * the byte count (0 at end of stream), `-EAGAIN` when nothing is there, or `-errno`.
   */
  recvFds(fd: number, buf: Uint8Array, fds: Int32Array): bigint;
  /** A non-blocking eventfd with counter `initval`; the fd or `-errno`. */
  eventfd(initval: number): number;
  /** Reads and resets an eventfd's counter: the value, or `-errno` (`-EAGAIN` when it is 0). */
  eventfdRead(fd: number): bigint;
  /** Adds `value` to an eventfd's counter; 0 or `-errno`. */
  eventfdWrite(fd: number, value: bigint): number;
  /** `epoll_create1(EPOLL_CLOEXEC)`; the fd or `-errno`. */
  epollCreate(): number;
  /** `epoll_ctl(epfd, op, fd, {events, data: fd})`; 0 or `-errno`. */
  epollCtl(epfd: number, op: number, fd: number, events: number): number;
  /**
   * `epoll_wait` into `out` as (fd, events) pairs (room for `out.length / 2`), blocking the calling
   * thread at most `timeoutMs` (-1: no limit); how many, or `-errno`.
   */
  epollWait(epfd: number, out: Int32Array, timeoutMs: number): number;
  /**
   * The same without blocking the event loop: the wait runs on another thread (Deno: a nonblocking
   * FFI call; Bun: a worker per `epfd`). `out` must not be touched until the promise settles.
   */
  epollWaitAsync(epfd: number, out: Int32Array, timeoutMs: number): Promise<number>;
  /** Forgets what {@link NativeBinding.epollWaitAsync} keeps for `epfd` (Bun: its worker); no wait may be pending. */
  epollRelease(epfd: number): void;
  /** One `preadv` at file offset `offset` into `count` (address, length) pairs; bytes read, or `-errno`. */
  preadv(fd: number, pairs: BigUint64Array, count: number, offset: bigint): bigint;
  /** One `pwritev` at file offset `offset` from `count` (address, length) pairs; bytes written, or `-errno`. */
  pwritev(fd: number, pairs: BigUint64Array, count: number, offset: bigint): bigint;
  /** `fdatasync`; 0 or `-errno`. */
  fdatasync(fd: number): number;
  /** `memmove(dst, src, n)` between host addresses. */
  memcpy(dst: bigint, src: bigint, length: bigint): void;
  /** Copies `count` (dst, src, len) triples from `ops`; returns the total bytes. */
  copyVec(ops: BigUint64Array, count: number): bigint;
  /**
   * `memmove(dst, src + srcOff, n)` from a byte array to host address `dst`. Every number is exact
   * below 2^53 and passed as a double, which keeps the call on the runtime's fast path.
   */
  copyIn(dst: number, src: Uint8Array, srcOff: number, n: number): void;
  /** `memmove(dst + dstOff, src, n)` from host address `src` into a byte array (see `copyIn`). */
  copyOut(dst: Uint8Array, dstOff: number, src: number, n: number): void;
  /** `memmove(dst, src, n)` between host addresses given as doubles (see `copyIn`). */
  copyAt(dst: number, src: number, n: number): void;
  /**
   * {@link NativeBinding.copyInFrags} (`intoMemory` 1) or {@link NativeBinding.copyOutFrags} (0) with the
   * fragment list and the array's first byte by address.
   */
  copyFragmentsAt(frags: number, count: number, buf: number, intoMemory: number): void;
  /**
   * One {@link NativeBinding.copyIn} per (host address, length) pair of `frags[0, 2 * count)`, the
   * bytes taken one after another from `src` at `srcOff`.
   */
  copyInFrags(frags: Float64Array, count: number, src: Uint8Array, srcOff: number): void;
  /** {@link NativeBinding.copyInFrags} the other way: the fragments' bytes into `dst` from `dstOff` on. */
  copyOutFrags(frags: Float64Array, count: number, dst: Uint8Array, dstOff: number): void;
  /** `memset(dst, byte, n)`. */
  memset(dst: bigint, byte: number, length: bigint): void;
  /** The C library's text for an errno value. */
  strerror(errno: number): string;
  /** Resident bytes of this process, or `-errno`. */
  rssBytes(): bigint;
  /** Resident bytes inside a range (mincore), or `-errno`. */
  residentIn(addr: bigint, length: bigint): bigint;
  /** Lines in `/proc/self/maps`, or `-errno`. */
  countMappings(): bigint;
  /** PROT bits of the mapping containing `addr` (plus 0x100 if shared), or `-errno` (ENOENT: unmapped). */
  vmaProt(addr: bigint): number;
  /** Free hugetlb pages of the given size in KiB, or `-errno`. */
  hugePagesFree(sizeKiB: bigint): bigint;
  /** Open file descriptors, or `-errno`. */
  countFds(): bigint;
  /**
   * An ArrayBuffer over `[addr, addr + length)`; the caller has validated both (`length` at most
   * {@link NativeBinding.maxViewBytes}). With a `hold` (and {@link NativeBinding.collectsViews}),
   * the buffer takes a reference that its deallocator drops when it is detached or collected.
   */
  arrayBuffer(addr: bigint, length: number, hold?: bigint): ArrayBuffer;
  /**
   * A hold on the mapping `[addr, addr + length)` carrying the owner's reference, or `0n` when the
   * runtime's buffers cannot report their release ({@link NativeBinding.collectsViews} false).
   */
  holdMapping(addr: bigint, length: bigint): bigint;
  /**
   * Drops the owner's reference to a hold. With `unmapOnLastRelease`, the range is unmapped once
   * the last buffer holding it has been released (at once if none is alive).
   */
  releaseMapping(hold: bigint, unmapOnLastRelease: boolean): void;
  /** References a hold has now (the owner's, if not released, plus live buffers). */
  holdReferences(hold: bigint): number;
  /** Typed reads at a native address (the caller has checked it is readable). */
  pointerView(addr: bigint): RawPointerView;
  /**
   * The name errors use for `value` if it is an open file object of this runtime (see
   * {@link RuntimeFile}), else `undefined`.
   */
  fileKind(value: unknown): string | undefined;
  /** Device and inode of a file object {@link NativeBinding.fileKind} recognised. */
  statFile(file: RuntimeFile): RuntimeFileStat;
  /**
   * The descriptor a file object carries itself (a `FileHandle`'s `fd`), or -1 for one that keeps
   * it hidden (`Deno.FsFile`): I/O with such a file goes through {@link NativeBinding.fileRead} and
   * {@link NativeBinding.fileWrite}, never through another descriptor of the same file.
   */
  fileDescriptor(file: RuntimeFile): number;
  /**
   * Reads into `view` through the file object's own read method (its descriptor and position);
   * returns the bytes read, 0 at the end. Throws what the runtime throws.
   */
  fileRead(file: RuntimeFile, view: Uint8Array): number;
  /** Writes (a prefix of) `view` through the file object's own write method; returns the count. */
  fileWrite(file: RuntimeFile, view: Uint8Array): number;
  /**
   * This process's descriptor of the file object itself (never another descriptor of the same
   * file), for mapping it; or why it cannot be known for sure.
   */
  ownDescriptor(file: RuntimeFile): RuntimeFileDescriptor;
  /** The runtime's pointer for an address (`null` for 0). */
  pointer(addr: bigint): RawPointer;
  /** The address of a pointer. */
  addressOfPointer(pointer: RawPointer): bigint;
  /** The address of the first byte of a typed array or DataView's memory. */
  addressOf(view: ArrayBufferView): bigint;
}
