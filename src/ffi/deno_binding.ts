/**
 * The Deno implementation of {@link NativeBinding}: every `Deno.dlopen`, pointer and
 * `getArrayBuffer` call of the library is in this file.
 * @module
 */

import { NativeLibraryError } from "../core/errors.ts";
import type { NativeBinding, RawPointer, RawPointerView } from "./binding.ts";
import { fdOf, LIBRARY_ENV, libraryPath, loadFailure, MAX_VIEW_ENV, maxViewBytes, statFd } from "./binding_common.ts";
import { fsFileMethods, ownFsFileDescriptor } from "./deno_file.ts";

/** The helper's symbols in Deno's notation; the Bun binding translates the same table. */
export const SYMBOLS = {
  gm_page_size: { parameters: [], result: "u64" },
  gm_map: { parameters: ["buffer", "buffer"], result: "i32" },
  gm_unmap: { parameters: ["u64", "u64"], result: "i32" },
  gm_protect: { parameters: ["u64", "u64", "i32"], result: "i32" },
  gm_quarantine: { parameters: ["u64", "u64"], result: "i32" },
  gm_memfd_create: { parameters: ["buffer", "u32", "u64"], result: "i32" },
  gm_open: { parameters: ["buffer", "i32"], result: "i32" },
  gm_open_mappable: { parameters: ["buffer", "i32", "buffer"], result: "i32" },
  gm_close: { parameters: ["i32"], result: "i32" },
  gm_dup: { parameters: ["i32"], result: "i32" },
  gm_fstat: { parameters: ["i32", "buffer"], result: "i32" },
  gm_file_info: { parameters: ["i32", "buffer"], result: "i32" },
  gm_fallocate: { parameters: ["i32", "u64", "u64"], result: "i32" },
  gm_fds_of: { parameters: ["u64", "u64", "buffer", "i32"], result: "i32" },
  gm_fd_position: { parameters: ["i32", "u64", "u64"], result: "i64" },
  gm_default_huge_page_size: { parameters: [], result: "i64" },
  gm_memcpy: { parameters: ["u64", "u64", "u64"], result: "void" },
  gm_unix_recv_fds: { parameters: ["buffer", "buffer", "u32", "buffer", "u32", "i32"], result: "i64" },
  gm_readv: { parameters: ["i32", "buffer", "u32"], result: "i64" },
  gm_writev: { parameters: ["i32", "buffer", "u32"], result: "i64" },
  gm_copy_vec: { parameters: ["buffer", "u32"], result: "u64" },
  gm_copy_in: { parameters: ["f64", "buffer", "f64", "f64"], result: "void" },
  gm_copy_out: { parameters: ["buffer", "f64", "f64", "f64"], result: "void" },
  gm_copy_at: { parameters: ["f64", "f64", "f64"], result: "void" },
  gm_copy_frags_at: { parameters: ["f64", "u32", "f64", "i32"], result: "void" },
  gm_copy_in_frags: { parameters: ["buffer", "u32", "buffer", "f64"], result: "void" },
  gm_copy_out_frags: { parameters: ["buffer", "u32", "buffer", "f64"], result: "void" },
  gm_memset: { parameters: ["u64", "i32", "u64"], result: "void" },
  gm_strerror: { parameters: ["i32", "buffer", "u32"], result: "void" },
  gm_rss_bytes: { parameters: [], result: "i64" },
  gm_resident_in: { parameters: ["u64", "u64"], result: "i64" },
  gm_count_mappings: { parameters: [], result: "i64" },
  gm_count_fds: { parameters: [], result: "i64" },
  gm_vma_prot: { parameters: ["u64"], result: "i32" },
  gm_hugepages_free: { parameters: ["u64"], result: "i64" },
  gm_unix_listen: { parameters: ["buffer", "i32"], result: "i32" },
  gm_unix_accept: { parameters: ["i32"], result: "i32" },
  gm_unix_connect: { parameters: ["buffer"], result: "i32" },
  gm_socketpair: { parameters: ["buffer"], result: "i32" },
  gm_send_fds: { parameters: ["i32", "buffer", "u32", "buffer", "u32", "i32"], result: "i64" },
  gm_recv_fds: { parameters: ["i32", "buffer", "u32", "buffer", "u32"], result: "i64" },
  gm_eventfd: { parameters: ["u32"], result: "i32" },
  gm_eventfd_read: { parameters: ["i32"], result: "i64" },
  gm_eventfd_write: { parameters: ["i32", "u64"], result: "i32" },
  gm_epoll_create: { parameters: [], result: "i32" },
  gm_epoll_ctl: { parameters: ["i32", "i32", "i32", "u32"], result: "i32" },
  gm_epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  // Runs on a thread of Deno's own, so waiting does not block the event loop (Bun: see bun_binding.ts).
  gm_epoll_wait_blocking: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32", nonblocking: true },
  gm_preadv: { parameters: ["i32", "buffer", "u32", "u64"], result: "i64" },
  gm_pwritev: { parameters: ["i32", "buffer", "u32", "u64"], result: "i64" },
  gm_fdatasync: { parameters: ["i32"], result: "i32" },
} as const;

/**
 * Where the helper is: the file `GMEM_NATIVE_LIB` names (read only with `--allow-env`), else the
 * prebuilt one for this platform in `native/prebuilt/`.
 */
export function defaultLibraryPath(): string {
  return libraryPath(envVar(LIBRARY_ENV), Deno.build.os, Deno.build.arch);
}

/** An environment variable, or `undefined` when unset, empty or not readable (no `--allow-env`). */
function envVar(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch {
    return undefined;
  }
}

/** V8 takes any safe length for an external ArrayBuffer: one view covers any region. */
const DENO_VIEW_CAP = Number.MAX_SAFE_INTEGER;

/**
 * Opens the helper with `Deno.dlopen` and wraps its symbols.
 *
 * @example
 * ```ts
 * import { loadDenoBinding } from "./deno_binding.ts";
 * const b = loadDenoBinding();
 * console.log(b.runtime); // "deno"
 * ```
 */
export function loadDenoBinding(path?: string): NativeBinding {
  const overridden = path !== undefined || envVar(LIBRARY_ENV) !== undefined;
  path ??= defaultLibraryPath();
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(path, SYMBOLS);
  } catch (cause) {
    const text = cause instanceof Error ? cause.message : String(cause);
    const reason = /ffi access|NotCapable|--allow-ffi/i.test(text)
      ? "FFI is not permitted; run with --allow-ffi"
      : loadFailure(text, overridden);
    throw new NativeLibraryError("load", path, reason, { cause });
  }
  const s = lib.symbols;
  const errText = new Uint8Array(256);
  const pageSize = Number(s.gm_page_size());
  const fstat = (fd: number, out: BigUint64Array) => s.gm_fstat(fd, out);
  const fdsOf = (dev: bigint, ino: bigint, out: Int32Array) => s.gm_fds_of(dev, ino, out, out.length);
  const fdPosition = (fd: number, dev: bigint, ino: bigint) => s.gm_fd_position(fd, dev, ino) as bigint;
  const fsFile = fsFileMethods();

  return {
    runtime: "deno",
    libraryPath: path,
    pageSize,
    maxViewBytes: maxViewBytes(DENO_VIEW_CAP, pageSize, envVar(MAX_VIEW_ENV), path),
    collectsViews: false,
    map: (request, name) => s.gm_map(request, name),
    unmap: (addr, length) => s.gm_unmap(addr, length),
    protect: (addr, length, prot) => s.gm_protect(addr, length, prot),
    quarantine: (addr, length) => s.gm_quarantine(addr, length),
    memfdCreate: (name, flags, size) => s.gm_memfd_create(name, flags, size),
    open: (p, writable) => s.gm_open(p, writable ? 1 : 0),
    openMappable: (p, writable, out) => s.gm_open_mappable(p, writable ? 1 : 0, out),
    close: (fd) => s.gm_close(fd),
    dup: (fd) => s.gm_dup(fd),
    fstat,
    fileInfo: (fd, out) => s.gm_file_info(fd, out),
    fallocate: (fd, offset, length) => s.gm_fallocate(fd, offset, length),
    fdsOf,
    fdPosition,
    defaultHugePageSize: () => s.gm_default_huge_page_size() as bigint,
    readv: (fd, pairs, count) => s.gm_readv(fd, pairs, count) as bigint,
    writev: (fd, pairs, count) => s.gm_writev(fd, pairs, count) as bigint,
    unixRecvFds: (path, buf, fds, timeoutMs) =>
      s.gm_unix_recv_fds(path, buf, buf.length, fds, fds.length, timeoutMs) as bigint,
    memcpy: (dst, src, length) => s.gm_memcpy(dst, src, length),
    copyVec: (ops, count) => s.gm_copy_vec(ops, count) as bigint,
    // The symbols themselves, not wrappers: these sit on every bulk copy (see src/memory/copy_engine.ts).
    copyIn: s.gm_copy_in,
    copyOut: s.gm_copy_out,
    copyAt: s.gm_copy_at,
    copyFragmentsAt: s.gm_copy_frags_at,
    copyInFrags: s.gm_copy_in_frags,
    copyOutFrags: s.gm_copy_out_frags,
    memset: (dst, byte, length) => s.gm_memset(dst, byte, length),
    strerror(errno) {
      s.gm_strerror(errno, errText, errText.length);
      const end = errText.indexOf(0);
      return new TextDecoder().decode(errText.subarray(0, end < 0 ? errText.length : end));
    },
    rssBytes: () => s.gm_rss_bytes() as bigint,
    residentIn: (addr, length) => s.gm_resident_in(addr, length) as bigint,
    countMappings: () => s.gm_count_mappings() as bigint,
    countFds: () => s.gm_count_fds() as bigint,
    vmaProt: (addr) => s.gm_vma_prot(addr),
    hugePagesFree: (sizeKiB) => s.gm_hugepages_free(sizeKiB) as bigint,
    unixListen: (path, backlog) => s.gm_unix_listen(path, backlog),
    unixAccept: (fd) => s.gm_unix_accept(fd),
    unixConnect: (path) => s.gm_unix_connect(path),
    socketPair: (out) => s.gm_socketpair(out),
    sendFds: (fd, buf, fds, timeoutMs) => s.gm_send_fds(fd, buf, buf.length, fds, fds.length, timeoutMs) as bigint,
    recvFds: (fd, buf, fds) => s.gm_recv_fds(fd, buf, buf.length, fds, fds.length) as bigint,
    eventfd: (initval) => s.gm_eventfd(initval),
    eventfdRead: (fd) => s.gm_eventfd_read(fd) as bigint,
    eventfdWrite: (fd, value) => s.gm_eventfd_write(fd, value),
    epollCreate: () => s.gm_epoll_create(),
    epollCtl: (epfd, op, fd, events) => s.gm_epoll_ctl(epfd, op, fd, events),
    epollWait: (epfd, out, timeoutMs) => s.gm_epoll_wait(epfd, out, out.length >> 1, timeoutMs),
    epollWaitAsync: (epfd, out, timeoutMs) => s.gm_epoll_wait_blocking(epfd, out, out.length >> 1, timeoutMs),
    epollRelease: () => {},
    preadv: (fd, pairs, count, offset) => s.gm_preadv(fd, pairs, count, offset) as bigint,
    pwritev: (fd, pairs, count, offset) => s.gm_pwritev(fd, pairs, count, offset) as bigint,
    fdatasync: (fd) => s.gm_fdatasync(fd),
    arrayBuffer(addr, length) {
      const p = Deno.UnsafePointer.create(addr);
      if (p === null) throw new RangeError("arrayBuffer: null address");
      return Deno.UnsafePointerView.getArrayBuffer(p, length);
    },
    holdMapping: () => 0n,
    releaseMapping: () => {},
    holdReferences: () => 0,
    pointerView(addr): RawPointerView {
      const p = Deno.UnsafePointer.create(addr);
      if (p === null) throw new RangeError("pointerView: null address");
      return new Deno.UnsafePointerView(p);
    },
    fileKind: (value) => value instanceof Deno.FsFile ? "Deno.FsFile" : fdOf(value) >= 0 ? "FileHandle" : undefined,
    statFile(file) {
      if (!(file instanceof Deno.FsFile)) return statFd(fstat, fdOf(file));
      let info: Deno.FileInfo;
      try {
        info = file.statSync();
      } catch (cause) {
        return { ok: false, reason: `cannot be used: ${cause instanceof Error ? cause.message : String(cause)}` };
      }
      if (info.dev === null || info.ino === null) return { ok: false, reason: "has no device/inode on this platform" };
      return { ok: true, dev: BigInt(info.dev), ino: BigInt(info.ino) };
    },
    fileDescriptor: (file) => file instanceof Deno.FsFile ? -1 : fdOf(file),
    fileRead(file, view) {
      if (!(file instanceof Deno.FsFile)) throw new TypeError("fileRead: only for a Deno.FsFile");
      return fsFile.readSync.call(file, view) ?? 0;
    },
    fileWrite(file, view) {
      if (!(file instanceof Deno.FsFile)) throw new TypeError("fileWrite: only for a Deno.FsFile");
      return fsFile.writeSync.call(file, view);
    },
    ownDescriptor(file) {
      if (file instanceof Deno.FsFile) return ownFsFileDescriptor(file, fsFile, { fdsOf, fdPosition });
      const fd = fdOf(file);
      return fd >= 0 ? { ok: true, fd } : { ok: false, reason: "has no descriptor" };
    },
    pointer: (addr): RawPointer => Deno.UnsafePointer.create(addr),
    addressOfPointer: (pointer) =>
      typeof pointer === "number" ? BigInt(pointer) : pointer === null ? 0n : BigInt(Deno.UnsafePointer.value(pointer)),
    addressOf(view) {
      const p = Deno.UnsafePointer.of(view as Uint8Array<ArrayBuffer>);
      return p === null ? 0n : BigInt(Deno.UnsafePointer.value(p));
    },
  };
}
