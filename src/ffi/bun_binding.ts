/**
 * The Bun implementation of {@link NativeBinding}: every `bun:ffi` call of the library is in this
 * file. It declares the same helper symbols as the Deno binding (translated from its table), and
 * gives each view ArrayBuffer a native deallocator so that a mapping hold learns when the last
 * buffer over a quarantined mapping is gone.
 * @module
 */

import { NativeLibraryError } from "../core/errors.ts";
import type { NativeBinding, RawPointer, RawPointerView, RuntimeFile } from "./binding.ts";
import { fdOf, LIBRARY_ENV, libraryPath, loadFailure, MAX_VIEW_ENV, maxViewBytes, statFd } from "./binding_common.ts";
import { SYMBOLS } from "./deno_binding.ts";
import { epollWaiter, releaseEpollWaiter } from "./bun_epoll_waiter.ts";

/** A symbol as `bun:ffi` declares it. */
export interface BunSymbolSpec {
  args: string[];
  returns: string;
}

/** A function `bun:ffi` made for a symbol. Arguments are numbers, bigints, typed arrays or null. */
type BunFunction = (...args: unknown[]) => unknown;

/** The part of `bun:ffi` this binding uses (Bun's own types are not available to `deno check`). */
interface BunFfi {
  dlopen(path: string, symbols: Record<string, BunSymbolSpec>): { symbols: Record<string, BunFunction> };
  toArrayBuffer(
    ptr: number,
    byteOffset: number,
    byteLength: number,
    context?: number,
    deallocator?: number,
  ): ArrayBuffer;
  ptr(view: ArrayBufferView): number;
  read: {
    u8(ptr: number, offset: number): number;
    i8(ptr: number, offset: number): number;
    u16(ptr: number, offset: number): number;
    i16(ptr: number, offset: number): number;
    u32(ptr: number, offset: number): number;
    i32(ptr: number, offset: number): number;
    u64(ptr: number, offset: number): bigint;
    i64(ptr: number, offset: number): bigint;
    f32(ptr: number, offset: number): number;
    f64(ptr: number, offset: number): number;
  };
}

/** JavaScriptCore's limit for one ArrayBuffer: 2^32 bytes (one more is a RangeError). */
const BUN_VIEW_CAP = 2 ** 32;

/** Symbols only this binding needs: the mapping holds behind the ArrayBuffer deallocators (the helper exports them on every platform). */
export const HOLD_SYMBOLS: Record<string, BunSymbolSpec> = {
  gm_hold_new: { args: ["u64", "u64"], returns: "u64" },
  gm_hold_ref: { args: ["u64"], returns: "void" },
  gm_hold_release: { args: ["u64", "i32"], returns: "void" },
  gm_hold_refs: { args: ["u64"], returns: "i32" },
  gm_hold_deallocator: { args: [], returns: "u64" },
};

/** Deno's FFI notation in Bun's: `parameters`/`result` become `args`/`returns`, a buffer is a `ptr`. */
function bunSymbols(): Record<string, BunSymbolSpec> {
  const out: Record<string, BunSymbolSpec> = { ...HOLD_SYMBOLS };
  const bunType = (t: string) => (t === "buffer" || t === "pointer" ? "ptr" : t);
  for (const [name, spec] of Object.entries(SYMBOLS)) {
    out[name] = { args: spec.parameters.map(bunType), returns: bunType(spec.result) };
  }
  return out;
}

/** `bun:ffi`, loaded synchronously (Bun's `import.meta.require`), or `undefined` elsewhere. */
function bunFfi(): BunFfi | undefined {
  const meta = import.meta as ImportMeta & { require?: (id: string) => unknown };
  return typeof meta.require === "function" ? meta.require("bun:ffi") as BunFfi : undefined;
}

/** Bun's `process` (a global there), as far as this binding reads it. */
function bunProcess(): { env?: Record<string, string | undefined>; platform?: string; arch?: string } | undefined {
  return (globalThis as { process?: ReturnType<typeof bunProcess> }).process;
}

/** An environment variable from `process.env`, or `undefined` when unset or empty. */
function envVar(name: string): string | undefined {
  return bunProcess()?.env?.[name] || undefined;
}

/**
 * Where the helper is on Bun: as on Deno, the file `GMEM_NATIVE_LIB` names, else the prebuilt one
 * for this platform in `native/prebuilt/`.
 *
 * @example
 * ```ts ignore
 * console.log(defaultBunLibraryPath());
 * ```
 */
export function defaultBunLibraryPath(): string {
  const proc = bunProcess();
  return libraryPath(envVar(LIBRARY_ENV), proc?.platform ?? "unknown", proc?.arch ?? "unknown");
}

/**
 * Opens the helper with `bun:ffi`'s `dlopen` and wraps its symbols. Only works on Bun.
 *
 * @example
 * ```ts ignore
 * import { loadBunBinding } from "./bun_binding.ts";
 * console.log(loadBunBinding().runtime); // "bun"
 * ```
 */
export function loadBunBinding(path?: string): NativeBinding {
  const overridden = path !== undefined || envVar(LIBRARY_ENV) !== undefined;
  path ??= defaultBunLibraryPath();
  const ffi = bunFfi();
  if (ffi === undefined) throw new NativeLibraryError("load", path, "bun:ffi is only available on Bun");
  let s: Record<string, BunFunction>;
  try {
    s = ffi.dlopen(path, bunSymbols()).symbols;
  } catch (cause) {
    const text = cause instanceof Error ? cause.message : String(cause);
    throw new NativeLibraryError("load", path, loadFailure(text, overridden), { cause });
  }
  const { toArrayBuffer, read } = ffi;
  const errText = new Uint8Array(256);
  const pageSize = Number(s.gm_page_size() as bigint);
  const deallocator = Number(s.gm_hold_deallocator() as bigint);
  const fstat = (fd: number, out: BigUint64Array) => s.gm_fstat(fd, out) as number;
  const i32 = (f: BunFunction) => (...args: unknown[]) => f(...args) as number;
  const big = (f: BunFunction) => (...args: unknown[]) => f(...args) as bigint;

  return {
    runtime: "bun",
    libraryPath: path,
    pageSize,
    maxViewBytes: maxViewBytes(BUN_VIEW_CAP, pageSize, envVar(MAX_VIEW_ENV), path),
    collectsViews: true,
    map: i32(s.gm_map),
    unmap: i32(s.gm_unmap),
    protect: i32(s.gm_protect),
    quarantine: i32(s.gm_quarantine),
    memfdCreate: i32(s.gm_memfd_create),
    open: (p, writable) => s.gm_open(p, writable ? 1 : 0) as number,
    openMappable: (p, writable, out) => s.gm_open_mappable(p, writable ? 1 : 0, out) as number,
    close: i32(s.gm_close),
    dup: i32(s.gm_dup),
    fstat,
    fileInfo: i32(s.gm_file_info),
    fallocate: i32(s.gm_fallocate),
    fdsOf: (dev, ino, out) => s.gm_fds_of(dev, ino, out, out.length) as number,
    fdPosition: big(s.gm_fd_position),
    defaultHugePageSize: big(s.gm_default_huge_page_size),
    readv: big(s.gm_readv),
    writev: big(s.gm_writev),
    unixRecvFds: (p, buf, fds, timeoutMs) =>
      s.gm_unix_recv_fds(p, buf, buf.length, fds, fds.length, timeoutMs) as bigint,
    memcpy: (dst, src, length) => void s.gm_memcpy(dst, src, length),
    copyVec: big(s.gm_copy_vec),
    // The symbols themselves: a rest-parameter wrapper would cost more than the copy it makes.
    copyIn: s.gm_copy_in as NativeBinding["copyIn"],
    copyOut: s.gm_copy_out as NativeBinding["copyOut"],
    copyAt: s.gm_copy_at as NativeBinding["copyAt"],
    copyFragmentsAt: s.gm_copy_frags_at as NativeBinding["copyFragmentsAt"],
    copyInFrags: s.gm_copy_in_frags as NativeBinding["copyInFrags"],
    copyOutFrags: s.gm_copy_out_frags as NativeBinding["copyOutFrags"],
    memset: (dst, byte, length) => void s.gm_memset(dst, byte, length),
    strerror(errno) {
      s.gm_strerror(errno, errText, errText.length);
      const end = errText.indexOf(0);
      return new TextDecoder().decode(errText.subarray(0, end < 0 ? errText.length : end));
    },
    rssBytes: big(s.gm_rss_bytes),
    residentIn: big(s.gm_resident_in),
    countMappings: big(s.gm_count_mappings),
    countFds: big(s.gm_count_fds),
    vmaProt: i32(s.gm_vma_prot),
    hugePagesFree: big(s.gm_hugepages_free),
    unixListen: i32(s.gm_unix_listen),
    unixAccept: i32(s.gm_unix_accept),
    unixConnect: i32(s.gm_unix_connect),
    socketPair: i32(s.gm_socketpair),
    sendFds: (fd, buf, fds, timeoutMs) => s.gm_send_fds(fd, buf, buf.length, fds, fds.length, timeoutMs) as bigint,
    recvFds: (fd, buf, fds) => s.gm_recv_fds(fd, buf, buf.length, fds, fds.length) as bigint,
    eventfd: i32(s.gm_eventfd),
    eventfdRead: big(s.gm_eventfd_read),
    eventfdWrite: i32(s.gm_eventfd_write),
    epollCreate: i32(s.gm_epoll_create),
    epollCtl: i32(s.gm_epoll_ctl),
    epollWait: (epfd, out, timeoutMs) => s.gm_epoll_wait(epfd, out, out.length >> 1, timeoutMs) as number,
    epollWaitAsync: (epfd, out, timeoutMs) => epollWaiter(epfd).wait(out, timeoutMs),
    epollRelease: (epfd) => releaseEpollWaiter(epfd),
    preadv: big(s.gm_preadv),
    pwritev: big(s.gm_pwritev),
    fdatasync: i32(s.gm_fdatasync),
    arrayBuffer(addr, length, hold = 0n) {
      if (addr === 0n) throw new RangeError("arrayBuffer: null address");
      if (hold === 0n) return toArrayBuffer(Number(addr), 0, length);
      // The reference is the buffer's: its deallocator (run at transfer(0) or collection) drops it.
      s.gm_hold_ref(hold);
      return toArrayBuffer(Number(addr), 0, length, Number(hold), deallocator);
    },
    holdMapping: big(s.gm_hold_new),
    releaseMapping: (hold, unmapOnLastRelease) => void s.gm_hold_release(hold, unmapOnLastRelease ? 1 : 0),
    holdReferences: (hold) => hold === 0n ? 0 : s.gm_hold_refs(hold) as number,
    pointerView(addr): RawPointerView {
      if (addr === 0n) throw new RangeError("pointerView: null address");
      return bunPointerView(read, Number(addr));
    },
    fileKind: (value) => fdOf(value) >= 0 ? "FileHandle" : undefined,
    statFile: (file: RuntimeFile) => statFd(fstat, fdOf(file)),
    // Every file object Bun's binding accepts carries its descriptor: the I/O goes through it.
    fileDescriptor: (file) => fdOf(file),
    fileRead() {
      throw new TypeError("fileRead: file objects on Bun carry their descriptor");
    },
    fileWrite() {
      throw new TypeError("fileWrite: file objects on Bun carry their descriptor");
    },
    ownDescriptor(file) {
      const fd = fdOf(file);
      return fd >= 0 ? { ok: true, fd } : { ok: false, reason: "has no descriptor" };
    },
    pointer: (addr): RawPointer => addr === 0n ? null : Number(addr),
    addressOfPointer: (pointer) => typeof pointer === "number" ? BigInt(pointer) : 0n,
    addressOf: (view) => BigInt(ffi.ptr(view)),
  };
}

/** {@link RawPointerView} over `bun:ffi`'s `read.*` at pointer `p`. */
function bunPointerView(read: BunFfi["read"], p: number): RawPointerView {
  return {
    getUint8: (offset = 0) => read.u8(p, offset),
    getInt8: (offset = 0) => read.i8(p, offset),
    getUint16: (offset = 0) => read.u16(p, offset),
    getInt16: (offset = 0) => read.i16(p, offset),
    getUint32: (offset = 0) => read.u32(p, offset),
    getInt32: (offset = 0) => read.i32(p, offset),
    getBigUint64: (offset = 0) => read.u64(p, offset),
    getBigInt64: (offset = 0) => read.i64(p, offset),
    getFloat32: (offset = 0) => read.f32(p, offset),
    getFloat64: (offset = 0) => read.f64(p, offset),
  };
}
