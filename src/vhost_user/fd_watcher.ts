/**
 * Readiness of descriptors the runtime knows nothing about (a vhost-user socket received by path,
 * eventfds passed by a front-end), delivered on the event loop. One epoll set per watcher; the
 * waiting happens on another thread (see `NativeBinding.epollWaitAsync`), so the event loop keeps
 * running. Level-triggered: a handler that leaves data unread is called again.
 * @module
 */

import { SyscallError } from "../../mod.ts";
import { errnoName } from "../ffi/errno.ts";
import { native } from "../ffi/native.ts";

/** epoll_ctl(2) operations. */
export const EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2;
/** epoll(7) events: readable, and the peer hung up its writing side. */
export const EPOLLIN = 0x1, EPOLLRDHUP = 0x2000;
/** Events taken from one wait (the C side caps it at 64). */
const BATCH = 64;

/**
 * Calls a handler on the event loop whenever its descriptor is readable (or hung up). The wait
 * loop runs only while something is watched, so an idle watcher keeps no process alive.
 *
 * @example
 * ```ts ignore
 * const watcher = new FdWatcher();
 * watcher.watch(kickFd, () => native().eventfdRead(kickFd));
 * // ...
 * await watcher.close();
 * ```
 */
export class FdWatcher {
  readonly #epfd: number;
  readonly #wake: number;
  readonly #handlers = new Map<number, () => void>();
  readonly #out = new Int32Array(2 * BATCH);
  readonly #onError: (e: unknown) => void;
  #loop: Promise<void> | undefined;
  #closed = false;

  /**
   * A watcher; `onError` gets what a handler threw (by default it is logged), so one bad handler
   * cannot end the others.
   */
  constructor(onError: (e: unknown) => void = (e) => console.error("FdWatcher: a handler failed:", e)) {
    const n = native();
    const epfd = n.epollCreate();
    if (epfd < 0) throw syscall("epoll_create1", epfd, {});
    const wake = n.eventfd(0);
    if (wake < 0) {
      n.close(epfd);
      throw syscall("eventfd", wake, {});
    }
    const rc = n.epollCtl(epfd, EPOLL_CTL_ADD, wake, EPOLLIN);
    if (rc < 0) {
      n.close(wake);
      n.close(epfd);
      throw syscall("epoll_ctl", rc, { fd: wake });
    }
    this.#epfd = epfd;
    this.#wake = wake;
    this.#onError = onError;
  }

  /** Descriptors watched now. @example `watcher.size` */
  get size(): number {
    return this.#handlers.size;
  }

  /**
   * Calls `onReadable` whenever `fd` is readable or hung up, until {@link FdWatcher.unwatch}.
   * Throws `SyscallError` if the kernel refuses the descriptor (closed, or already watched).
   *
   * @example
   * ```ts ignore
   * watcher.watch(fd, () => pump(fd));
   * ```
   */
  watch(fd: number, onReadable: () => void): void {
    if (this.#closed) {
      throw new SyscallError("FdWatcher.watch", "epoll_ctl", 9, "EBADF", "the watcher is closed", { fd });
    }
    const rc = native().epollCtl(this.#epfd, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLRDHUP);
    if (rc < 0) throw syscall("epoll_ctl", rc, { fd });
    this.#handlers.set(fd, onReadable);
    this.#loop ??= this.#run();
  }

  /**
   * Stops watching `fd` (before it is closed: a closed descriptor leaves the set by itself only
   * when no duplicate of it is open). Unknown descriptors are ignored.
   *
   * @example
   * ```ts ignore
   * watcher.unwatch(fd);
   * native().close(fd);
   * ```
   */
  unwatch(fd: number): void {
    if (!this.#handlers.delete(fd)) return;
    native().epollCtl(this.#epfd, EPOLL_CTL_DEL, fd, 0);
    // The wait must see that nothing is left, or it would hold the process open.
    if (this.#handlers.size === 0) native().eventfdWrite(this.#wake, 1n);
  }

  /**
   * Stops the wait loop and closes the epoll set; handlers still registered are forgotten (their
   * descriptors stay open: they belong to whoever registered them).
   *
   * @example
   * ```ts ignore
   * await watcher.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#handlers.clear();
    native().eventfdWrite(this.#wake, 1n);
    await this.#loop;
    native().epollRelease(this.#epfd);
    native().close(this.#wake);
    native().close(this.#epfd);
  }

  /** Waits and dispatches while anything is watched. */
  async #run(): Promise<void> {
    const n = native(), out = this.#out;
    try {
      while (!this.#closed && this.#handlers.size > 0) {
        const count = await n.epollWaitAsync(this.#epfd, out, -1);
        if (count < 0) {
          this.#onError(syscall("epoll_wait", count, { epfd: this.#epfd }));
          return;
        }
        for (let i = 0; i < count; i++) {
          const fd = out[2 * i];
          if (fd === this.#wake) {
            n.eventfdRead(this.#wake);
            continue;
          }
          const handler = this.#handlers.get(fd);
          if (handler === undefined) continue;
          try {
            handler();
          } catch (e) {
            this.#onError(e);
          }
        }
      }
    } finally {
      this.#loop = undefined;
      // Watched again while the last wait was ending: go on.
      if (!this.#closed && this.#handlers.size > 0) this.#loop = this.#run();
    }
  }
}

function syscall(name: string, rc: number, args: Record<string, number>): SyscallError {
  const errno = -rc;
  return new SyscallError("FdWatcher", name, errno, errnoName(errno), native().strerror(errno), args);
}
