/**
 * The back-end channel (`SET_BACKEND_REQ_FD`): a socket on which the back-end asks the front-end
 * things, here IOTLB misses. It is a `VhostStream`, so gmem's `VhostIotlbChannel` sends its misses
 * on it and reads it until the front-end closes it (which wakes every miss still waiting).
 * @module
 */

import type { VhostStream } from "../../iommu.ts";
import { VhostUserError } from "./vhost_user_errors.ts";
import { errnoName } from "../ffi/errno.ts";
import { native } from "../ffi/native.ts";
import type { FdWatcher } from "./fd_watcher.ts";

const EAGAIN = 11;
const SEND_TIMEOUT_MS = 2000;

/**
 * The back-end channel over a connected socket this object owns.
 *
 * @example
 * ```ts ignore
 * const stream = new BackendChannel(fd, watcher, () => counters.iotlbMisses++);
 * const channel = new VhostIotlbChannel(stream, iotlb, { toTarget });
 * channel.run();
 * ```
 */
export class BackendChannel implements VhostStream {
  readonly #fd: number;
  readonly #watcher: FdWatcher;
  readonly #onSend: (bytes: Uint8Array) => void;
  readonly #fdBuf = new Int32Array(4);
  #wake: (() => void) | undefined;
  #closed = false;

  /** Owns `fd`; `onSend` sees every message sent. */
  constructor(fd: number, watcher: FdWatcher, onSend: (bytes: Uint8Array) => void) {
    this.#fd = fd;
    this.#watcher = watcher;
    this.#onSend = onSend;
  }

  /** Whether the channel is closed. @example `stream.closed` */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sends `p` whole (one message); throws `VhostUserError` when the channel is gone or stuck. */
  write(p: Uint8Array): Promise<number> {
    const op = "BackendChannel.write";
    if (this.#closed) return Promise.reject(new VhostUserError(op, "Closed", "the back-end channel is closed"));
    const rc = native().sendFds(this.#fd, p, new Int32Array(0), SEND_TIMEOUT_MS);
    if (rc < 0n) {
      return Promise.reject(
        new VhostUserError(op, "Socket", `sendmsg on the back-end channel failed: ${errnoName(Number(-rc))}`),
      );
    }
    this.#onSend(p);
    return Promise.resolve(p.length);
  }

  /** Reads what the front-end sends; `null` once it closed the channel or this side did. */
  async read(p: Uint8Array): Promise<number | null> {
    const n = native();
    for (;;) {
      if (this.#closed) return null;
      const rc = n.recvFds(this.#fd, p, this.#fdBuf);
      // Nothing on this channel carries descriptors.
      for (const fd of this.#fdBuf) if (fd >= 0) n.close(fd);
      if (rc === BigInt(-EAGAIN)) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          this.#watcher.watch(this.#fd, resolve);
        });
        this.#wake = undefined;
        if (!this.#closed) this.#watcher.unwatch(this.#fd);
        continue;
      }
      if (rc === 0n) return null;
      if (rc < 0n) {
        throw new VhostUserError(
          "BackendChannel.read",
          "Socket",
          `recvmsg on the back-end channel failed: ${errnoName(Number(-rc))}`,
        );
      }
      return Number(rc);
    }
  }

  /** Closes the channel; a pending read returns `null`. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.unwatch(this.#fd);
    native().close(this.#fd);
    this.#wake?.();
  }
}
