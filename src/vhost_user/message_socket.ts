/**
 * One end of a vhost-user connection: a non-blocking Unix stream socket whose messages are cut out
 * of the byte stream as they arrive (header first, then exactly its payload, so a read never runs
 * into the next message and its descriptors), with the descriptors that came along.
 * @module
 */

import { VhostUserError } from "./vhost_user_errors.ts";
import { errnoName } from "../ffi/errno.ts";
import { native } from "../ffi/native.ts";
import type { FdWatcher } from "./fd_watcher.ts";
import { HEADER_SIZE, MAX_FDS, MAX_PAYLOAD, VERSION, type VhostUserMessage } from "./protocol.ts";

const EAGAIN = 11;
/** How long a send may wait for room in the socket's buffer before the peer counts as stuck. */
const SEND_TIMEOUT_MS = 2000;

/** What a {@link MessageSocket} tells its owner. */
export interface MessageSocketEvents {
  /** A whole message arrived. Its descriptors are the handler's to keep or close. */
  message(msg: VhostUserMessage): void;
  /** The connection ended: the peer closed it, it failed, or the stream broke the protocol. */
  closed(why: VhostUserError | undefined): void;
}

/**
 * A connected socket that delivers whole messages.
 *
 * @example
 * ```ts ignore
 * const sock = new MessageSocket(fd, watcher, "backend", {
 *   message: (m) => console.log(m.request),
 *   closed: (why) => console.log("closed", why?.message),
 * });
 * sock.send(encodeMessage(1, 0));
 * ```
 */
export class MessageSocket {
  readonly #fd: number;
  readonly #watcher: FdWatcher;
  readonly #events: MessageSocketEvents;
  readonly #name: string;
  readonly #header = new Uint8Array(HEADER_SIZE);
  readonly #fdBuf = new Int32Array(MAX_FDS + 1);
  #have = 0;
  #payload: Uint8Array<ArrayBuffer> | undefined;
  #pendingFds: number[] = [];
  #closed = false;

  /** Takes ownership of the connected, non-blocking socket `fd` and starts reading it. */
  constructor(fd: number, watcher: FdWatcher, name: string, events: MessageSocketEvents) {
    this.#fd = fd;
    this.#watcher = watcher;
    this.#events = events;
    this.#name = name;
    watcher.watch(fd, () => this.#pump());
  }

  /** The socket's descriptor. @example `sock.fd` */
  get fd(): number {
    return this.#fd;
  }

  /** Whether the connection has ended. @example `sock.closed` */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends `bytes` (a whole message) with `fds`; throws `VhostUserError` (`Socket`) if the
   * connection is gone or the peer stopped reading for {@link SEND_TIMEOUT_MS}.
   *
   * @example
   * ```ts ignore
   * sock.send(encodeMessage(FrontendRequest.SetVringKick, 0, u64Payload(0n)), [kickFd]);
   * ```
   */
  send(bytes: Uint8Array, fds: readonly number[] = []): void {
    const op = `${this.#name}.send`;
    if (this.#closed) throw new VhostUserError(op, "Closed", "the connection is closed");
    const rc = native().sendFds(this.#fd, bytes, new Int32Array(fds), SEND_TIMEOUT_MS);
    if (rc < 0n) {
      throw new VhostUserError(op, "Socket", `sendmsg failed: ${errnoName(Number(-rc))}`);
    }
  }

  /**
   * Ends the connection: stops reading, closes the socket and any descriptors of a message that did
   * not arrive whole. `closed` is reported once, with `why`.
   *
   * @example
   * ```ts ignore
   * sock.close();
   * ```
   */
  close(why?: VhostUserError): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watcher.unwatch(this.#fd);
    native().close(this.#fd);
    for (const fd of this.#pendingFds) native().close(fd);
    this.#pendingFds = [];
    this.#events.closed(why);
  }

  /** Reads what is there, delivering every message completed. */
  #pump(): void {
    const op = `${this.#name}.receive`;
    const n = native();
    while (!this.#closed) {
      const into = this.#payload === undefined ? this.#header.subarray(this.#have) : this.#payload.subarray(this.#have);
      let rc: bigint;
      if (into.length === 0) rc = 0n;
      else {
        rc = n.recvFds(this.#fd, into, this.#fdBuf);
        for (const fd of this.#fdBuf) if (fd >= 0) this.#pendingFds.push(fd);
        if (rc === BigInt(-EAGAIN)) return;
        if (rc < 0n) {
          this.close(new VhostUserError(op, "Socket", `recvmsg failed: ${errnoName(Number(-rc))}`));
          return;
        }
        if (rc === 0n) {
          const mid = this.#have > 0 || this.#payload !== undefined;
          this.close(
            mid
              ? new VhostUserError(op, "Socket", "the peer closed the connection in the middle of a message")
              : undefined,
          );
          return;
        }
      }
      if (this.#pendingFds.length > MAX_FDS) {
        this.close(new VhostUserError(op, "UnexpectedFd", `a message came with more than ${MAX_FDS} descriptors`));
        return;
      }
      this.#have += Number(rc);
      if (this.#payload === undefined) {
        if (this.#have < HEADER_SIZE) continue;
        const dv = new DataView(this.#header.buffer);
        const flags = dv.getUint32(4, true), size = dv.getUint32(8, true);
        const request = dv.getUint32(0, true);
        if ((flags & 0x3) !== VERSION) {
          this.close(
            new VhostUserError(
              op,
              "Header",
              `a message with flags 0x${flags.toString(16)}: not vhost-user version 1`,
              request,
            ),
          );
          return;
        }
        if (size > MAX_PAYLOAD) {
          // Refused before anything of it is read: the stream cannot be followed past it.
          this.close(
            new VhostUserError(op, "PayloadSize", `a payload of ${size} bytes (at most ${MAX_PAYLOAD})`, request),
          );
          return;
        }
        this.#payload = new Uint8Array(size);
        this.#have = 0;
      }
      if (this.#have < this.#payload.length) continue;
      const dv = new DataView(this.#header.buffer);
      const msg: VhostUserMessage = {
        request: dv.getUint32(0, true),
        flags: dv.getUint32(4, true),
        payload: this.#payload,
        fds: this.#pendingFds,
      };
      this.#payload = undefined;
      this.#have = 0;
      this.#pendingFds = [];
      this.#events.message(msg);
    }
  }
}
