/**
 * Waiting on an epoll descriptor without blocking Bun's event loop. `bun:ffi` has no asynchronous
 * calls (Deno runs `nonblocking` symbols on a thread of its own), so each epoll descriptor gets a
 * worker that makes the blocking `epoll_wait` and posts the events back. The worker holds the
 * process open only while a wait is pending.
 * @module
 */

/** What the worker is asked: one wait. */
export interface EpollWaitRequest {
  epfd: number;
  max: number;
  timeoutMs: number;
}

/** What the worker answers: the count (or -errno) and the (fd, events) pairs. */
export interface EpollWaitAnswer {
  n: number;
  events: Int32Array;
}

/** The part of Bun's `Worker` used here (`ref`/`unref` are Bun's). */
interface BunWorker {
  postMessage(message: EpollWaitRequest): void;
  terminate(): void;
  ref?(): void;
  unref?(): void;
  onmessage: ((event: MessageEvent<EpollWaitAnswer>) => void) | null;
  onerror: ((event: ErrorEvent) => void) | null;
}

/** One epoll descriptor's worker: one wait at a time. */
class EpollWaiter {
  readonly #epfd: number;
  readonly #worker: BunWorker;
  #pending: { out: Int32Array; resolve: (n: number) => void; reject: (e: unknown) => void } | undefined;

  constructor(epfd: number) {
    this.#epfd = epfd;
    const url = new URL("./bun_epoll_worker.ts", import.meta.url);
    this.#worker = new Worker(url.href, { type: "module" }) as unknown as BunWorker;
    this.#worker.unref?.();
    this.#worker.onmessage = (event) => {
      const p = this.#pending;
      this.#pending = undefined;
      this.#worker.unref?.();
      if (p === undefined) return;
      const { n, events } = event.data;
      p.out.set(events.subarray(0, Math.min(events.length, p.out.length)));
      p.resolve(n);
    };
    this.#worker.onerror = (event) => {
      const p = this.#pending;
      this.#pending = undefined;
      this.#worker.unref?.();
      p?.reject(new Error(`epoll worker failed: ${event.message}`));
    };
  }

  wait(out: Int32Array, timeoutMs: number): Promise<number> {
    if (this.#pending !== undefined) return Promise.resolve(-16); // -EBUSY: one wait at a time
    return new Promise((resolve, reject) => {
      this.#pending = { out, resolve, reject };
      this.#worker.ref?.();
      this.#worker.postMessage({ epfd: this.#epfd, max: out.length >> 1, timeoutMs });
    });
  }

  terminate(): void {
    this.#worker.terminate();
  }
}

const waiters = new Map<number, EpollWaiter>();

/**
 * The waiter of `epfd`, made on first use.
 *
 * @example
 * ```ts ignore
 * const n = await epollWaiter(epfd).wait(new Int32Array(32), -1);
 * ```
 */
export function epollWaiter(epfd: number): { wait(out: Int32Array, timeoutMs: number): Promise<number> } {
  let w = waiters.get(epfd);
  if (w === undefined) waiters.set(epfd, w = new EpollWaiter(epfd));
  return w;
}

/**
 * Ends the waiter of `epfd`, if any (its wait must have returned).
 *
 * @example
 * ```ts ignore
 * releaseEpollWaiter(epfd);
 * ```
 */
export function releaseEpollWaiter(epfd: number): void {
  waiters.get(epfd)?.terminate();
  waiters.delete(epfd);
}
