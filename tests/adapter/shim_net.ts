/**
 * TCP for the Bun test adapter: `Deno.listen` and `Deno.connect` with Deno's `Conn` contract
 * (`read(p)` resolves to the byte count or `null` at the end of the stream, `write(p)` to the count
 * written, `closeWrite()`, `close()`), over `node:net` sockets.
 * @module
 */

import * as net from "node:net";
import { native } from "../../src/ffi/native.ts";
import { denoErrors, translate } from "./shim_errors.ts";

/**
 * The most one `write` takes, as one `write(2)` on a socket would: a large write is continued by
 * the caller, and each step resolves only once the socket took it (so a full peer blocks it).
 */
const WRITE_CHUNK = 64 * 1024;

/** A TCP address as Deno reports it. */
export interface NetAddr {
  transport: "tcp";
  hostname: string;
  port: number;
}

function addrOf(hostname: string | undefined, port: number | undefined): NetAddr {
  return { transport: "tcp", hostname: hostname ?? "", port: port ?? 0 };
}

/**
 * A connected socket with Deno's `Conn` methods. Incoming data is queued; a pending `read` takes
 * from the queue as soon as something arrives. Like Deno's, a read fills the memory `p` had when
 * it was called, even if `p`'s buffer was detached meanwhile (gmem pins such memory; Deno's read
 * holds the backing store in the same way).
 *
 * @example
 * ```ts ignore
 * const conn = await connect({ hostname: "127.0.0.1", port });
 * await conn.write(new Uint8Array([1]));
 * ```
 */
export class Conn implements Disposable {
  readonly #socket: net.Socket;
  readonly #queue: Uint8Array[] = [];
  #ended = false;
  #closed = false;
  #failure: unknown = undefined;
  #waiter: (() => void) | undefined;

  /** Wraps a connected socket. */
  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      this.#queue.push(chunk);
      this.#wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("error", (e) => {
      this.#failure = translate(e);
      this.#wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#wake();
    });
  }

  /** Local address. */
  get localAddr(): NetAddr {
    return addrOf(this.#socket.localAddress, this.#socket.localPort);
  }

  /** Peer address. */
  get remoteAddr(): NetAddr {
    return addrOf(this.#socket.remoteAddress, this.#socket.remotePort);
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** Reads what is available into `p` (waiting for at least one byte); `null` at the end. */
  async read(p: Uint8Array): Promise<number | null> {
    const cap = p.length;
    const addr = cap > 0 ? native().addressOf(p) : 0n;
    for (;;) {
      if (this.#closed) throw new denoErrors.BadResource("Bad resource ID");
      if (this.#queue.length > 0) {
        const head = this.#queue[0];
        const n = Math.min(cap, head.length);
        if (p.length === cap) p.set(head.subarray(0, n));
        else intoDetached(addr, head.subarray(0, n));
        if (n === head.length) this.#queue.shift();
        else this.#queue[0] = head.subarray(n);
        return n;
      }
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#waiter = resolve));
    }
  }

  /** Writes a prefix of `p` (at most 64 KiB), resolving once the socket took it; returns its length. */
  write(p: Uint8Array): Promise<number> {
    if (this.#closed) return Promise.reject(new denoErrors.BadResource("Bad resource ID"));
    const copy = p.slice(0, WRITE_CHUNK); // the caller may reuse its buffer as soon as the promise settles
    return new Promise((resolve, reject) => {
      this.#socket.write(copy, (e) => (e ? reject(translate(e)) : resolve(copy.length)));
    });
  }

  /** Half-closes: the peer reads the end of the stream. */
  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(resolve));
  }

  /** Closes the socket; a pending read fails with `BadResource`, as on Deno. */
  close(): void {
    if (this.#closed) throw new denoErrors.BadResource("Bad resource ID");
    this.#closed = true;
    this.#socket.destroy();
    this.#wake();
  }

  /** Sets `TCP_NODELAY`. */
  setNoDelay(noDelay = true): void {
    this.#socket.setNoDelay(noDelay);
  }

  /** Closes unless already closed. */
  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }
}

/** Copies `bytes` to `addr`, the memory of a view detached while a read was pending. */
function intoDetached(addr: bigint, bytes: Uint8Array): void {
  const raw = native().arrayBuffer(addr, bytes.length);
  new Uint8Array(raw).set(bytes);
  raw.transfer(0);
}

/** `Deno.connect` for TCP. */
export function connect(options: { hostname?: string; port: number }): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: options.hostname ?? "127.0.0.1", port: options.port });
    socket.once("connect", () => resolve(new Conn(socket)));
    socket.once("error", (e) => reject(translate(e)));
  });
}

/**
 * A listening TCP socket with Deno's `Listener` methods.
 *
 * @example
 * ```ts ignore
 * const listener = listen({ hostname: "127.0.0.1", port: 0 });
 * const conn = await listener.accept();
 * ```
 */
export class Listener implements Disposable {
  readonly #server: net.Server;
  readonly #pending: net.Socket[] = [];
  readonly #waiters: { resolve: (c: Conn) => void; reject: (e: unknown) => void }[] = [];
  readonly #host: string;
  #closed = false;

  /** Listens on `hostname:port` (0: any free port), synchronously as Deno does. */
  constructor(hostname: string, port: number) {
    this.#server = net.createServer((socket) => {
      const w = this.#waiters.shift();
      if (w) w.resolve(new Conn(socket));
      else this.#pending.push(socket);
    });
    this.#server.listen(port, hostname);
    this.#host = hostname;
  }

  /** The bound address (the port is known once the server is listening). */
  get addr(): NetAddr {
    const a = this.#server.address();
    return addrOf(this.#host, a !== null && typeof a === "object" ? a.port : 0);
  }

  /** The next incoming connection. */
  accept(): Promise<Conn> {
    if (this.#closed) return Promise.reject(new denoErrors.BadResource("Listener has been closed"));
    const s = this.#pending.shift();
    if (s) return Promise.resolve(new Conn(s));
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Stops listening; pending accepts fail with `BadResource`. */
  close(): void {
    this.#closed = true;
    this.#server.close();
    for (const w of this.#waiters.splice(0)) w.reject(new denoErrors.BadResource("Listener has been closed"));
  }

  /** Closes unless already closed. */
  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }
}

/** `Deno.listen` for TCP. */
export function listen(options: { hostname?: string; port?: number }): Listener {
  return new Listener(options.hostname ?? "0.0.0.0", options.port ?? 0);
}
