/**
 * A vhost-user back-end listening on a Unix socket path, as QEMU expects it (QEMU connects with
 * `-chardev socket,path=…`). It serves one connection at a time; when that ends, it takes the next.
 * @module
 */

import { lstatSync, unlinkSync } from "node:fs";
import { SyscallError } from "../../mod.ts";
import { cString } from "../ffi/c_string.ts";
import { type AbortOptions, signalOf } from "../core/abort_signal.ts";
import { errnoName } from "../ffi/errno.ts";
import { native } from "../ffi/native.ts";
import { VhostUserBackend, type VhostUserBackendOptions } from "./backend.ts";
import type { VhostUserDevice } from "./device.ts";
import { EPOLL_CTL_ADD, EPOLLIN, FdWatcher } from "./fd_watcher.ts";

const EAGAIN = 11;

/** Options of {@link VhostUserServer.listen}. */
export interface VhostUserServerOptions extends VhostUserBackendOptions {
  /** Remove a socket file left at the path by an earlier run (default false: refuse it). */
  replace?: boolean;
  /** Called when a connection ends, with why (undefined for a plain close). */
  onDisconnect?: (why: Error | undefined) => void;
}

/**
 * The back-end of `device`, listening at `path`.
 *
 * @example
 * ```ts ignore
 * await using server = VhostUserServer.listen("/tmp/blk.sock", device);
 * // qemu-system-x86_64 ... -chardev socket,id=c0,path=/tmp/blk.sock -device vhost-user-blk-pci,chardev=c0
 * await server.nextDisconnect();
 * ```
 */
export class VhostUserServer implements AsyncDisposable {
  /** The socket path. */
  readonly path: string;
  /** The back-end (its counters, the session being served). */
  readonly backend: VhostUserBackend;
  readonly #watcher: FdWatcher;
  readonly #listenFd: number;
  readonly #onDisconnect: ((why: Error | undefined) => void) | undefined;
  #serving: Promise<void> | undefined;
  #closed = false;
  #waiters: (() => void)[] = [];

  private constructor(
    path: string,
    fd: number,
    watcher: FdWatcher,
    backend: VhostUserBackend,
    options: VhostUserServerOptions,
  ) {
    this.path = path;
    this.#listenFd = fd;
    this.#watcher = watcher;
    this.backend = backend;
    this.#onDisconnect = options.onDisconnect;
    watcher.watch(fd, () => this.#accept());
  }

  /**
   * Listens at `path` for front-ends of `device`. Throws `SyscallError` if the path cannot be
   * bound (in use, too long for a socket address, a missing folder).
   *
   * @example
   * ```ts ignore
   * const server = VhostUserServer.listen("/tmp/rng.sock", rngDevice, { replace: true });
   * ```
   */
  static listen(path: string, device: VhostUserDevice, options: VhostUserServerOptions = {}): VhostUserServer {
    const op = "VhostUserServer.listen";
    const backend = new VhostUserBackend(device, options);
    const cpath = cString(path, op, "path");
    if (options.replace) {
      try {
        if (lstatSync(path).isSocket()) unlinkSync(path);
      } catch { /* nothing there */ }
    }
    const fd = native().unixListen(cpath, 1);
    if (fd < 0) {
      throw new SyscallError(op, "bind", -fd, errnoName(-fd), native().strerror(-fd), { path });
    }
    return new VhostUserServer(path, fd, new FdWatcher(), backend, options);
  }

  /** Whether a front-end is connected. @example `server.connected` */
  get connected(): boolean {
    return this.#serving !== undefined;
  }

  /**
   * Resolves when the connection being served, or one waiting to be accepted, ends (at once if there
   * is none, or the server is closed). Aborting `options.signal` rejects with its reason and
   * forgets the wait.
   *
   * @example
   * ```ts ignore
   * await server.nextDisconnect({ signal: AbortSignal.timeout(5000) });
   * ```
   */
  nextDisconnect(options?: AbortOptions): Promise<void> {
    let signal: AbortSignal | undefined;
    try {
      signal = signalOf(options, "VhostUserServer.nextDisconnect");
    } catch (e) {
      return Promise.reject(e); // a promise-returning call reports bad arguments as a rejection
    }
    if (signal?.aborted) return Promise.reject(signal.reason);
    // A front-end that has connected but is not accepted yet counts as served: the caller who just
    // connected means that connection, whether or not the watcher has run.
    if (this.#closed || (this.#serving === undefined && !this.#acceptPending())) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        reject(signal!.reason);
      };
      this.#waiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Waits of {@link VhostUserServer.nextDisconnect} not yet answered. @example `server.pendingWaits` */
  get pendingWaits(): number {
    return this.#waiters.length;
  }

  /** Whether a connection waits in the backlog: a zero-timeout look at the listening socket. */
  #acceptPending(): boolean {
    const n = native();
    const epfd = n.epollCreate();
    if (epfd < 0) return false;
    try {
      if (n.epollCtl(epfd, EPOLL_CTL_ADD, this.#listenFd, EPOLLIN) < 0) return false;
      return n.epollWait(epfd, new Int32Array(2), 0) > 0;
    } finally {
      n.close(epfd);
    }
  }

  /**
   * Stops listening, ends the connection being served, removes the socket file and stops waiting
   * on descriptors.
   *
   * @example
   * ```ts ignore
   * await server.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.unwatch(this.#listenFd);
    native().close(this.#listenFd);
    try {
      unlinkSync(this.path);
    } catch { /* already gone */ }
    await this.backend.disconnect();
    await this.#serving;
    await this.#watcher.close();
    for (const w of this.#waiters.splice(0)) w(); // a connection never accepted ends with the server
  }

  /** Same as {@link VhostUserServer.close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #accept(): void {
    if (this.#serving !== undefined) return;
    const fd = native().unixAccept(this.#listenFd);
    if (fd === -EAGAIN || fd < 0) return;
    // One front-end at a time: later ones wait in the backlog, unwatched, so they cost nothing.
    this.#watcher.unwatch(this.#listenFd);
    this.#serving = this.backend.serve(fd, this.#watcher).then((why) => {
      this.#serving = undefined;
      this.#onDisconnect?.(why);
      for (const w of this.#waiters.splice(0)) w();
      if (!this.#closed) this.#watcher.watch(this.#listenFd, () => this.#accept());
    });
  }
}
