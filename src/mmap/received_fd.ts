/**
 * `ReceivedFd`: a file descriptor (a memfd, typically a VMM's guest RAM) that another process hands
 * over a Unix socket, ready to map with {@link FileOffset.fromFd}.
 * @module
 */

import { InvalidArgumentError } from "../core/errors.ts";
import { cString } from "../ffi/c_string.ts";
import { errnoName } from "../ffi/errno.ts";
import { native } from "../ffi/native.ts";
import { syscallError } from "../ffi/syscall_error.ts";
import { FileOffset } from "./file_offset.ts";

/**
 * What `fstat` says about a received descriptor.
 *
 * @example
 * ```ts
 * import type { ReceivedFdStat } from "./received_fd.ts";
 * const pages = (st: ReceivedFdStat) => st.size / 4096n;
 * ```
 */
export interface ReceivedFdStat {
  /** `st_size`: bytes in the file. */
  readonly size: bigint;
  /** `st_dev`. */
  readonly dev: bigint;
  /** `st_ino`. */
  readonly ino: bigint;
}

/**
 * A descriptor received over a Unix socket, owned by this object until {@link ReceivedFd.close}.
 *
 * The protocol is the smallest one that works: `receive` connects to the socket, the peer sends ONE
 * message with at least one payload byte and the descriptor(s) as `SCM_RIGHTS` ancillary data, and
 * both sides close. The first descriptor is kept; any others are closed at once. Mappings made from
 * it hold the memory by themselves, so it may be closed as soon as they exist.
 *
 * @example
 * ```ts ignore
 * import { GuestMemoryMmap, ReceivedFd } from "./mod.ts";
 * using received = ReceivedFd.receive("/run/vmm/ram.sock", 5000);
 * const { size } = received.stat();
 * using mem = GuestMemoryMmap.fromRangesWithFiles([[0, Number(size), received.fileOffset(0)]]);
 * ```
 */
export class ReceivedFd implements Disposable {
  #fd: number;
  /** The message's payload bytes. */
  readonly payload: Uint8Array;

  private constructor(fd: number, payload: Uint8Array) {
    this.#fd = fd;
    this.payload = payload;
  }

  /**
   * Connects to the Unix socket at `path`, takes one message and keeps its first descriptor.
   * Throws `SyscallError` when connecting or receiving fails (ENOENT, ECONNREFUSED), and
   * {@link InvalidArgumentError} (argument `path`) when nothing came within `timeoutMs` or the
   * message carried no descriptor.
   *
   * @example
   * ```ts ignore
   * import { ReceivedFd } from "./mod.ts";
   * using received = ReceivedFd.receive("/run/vmm/ram.sock", 5000);
   * console.log(received.fd >= 0); // true
   * ```
   */
  static receive(path: string, timeoutMs: number): ReceivedFd {
    const op = "ReceivedFd.receive";
    if (typeof timeoutMs !== "number" || !Number.isSafeInteger(timeoutMs) || timeoutMs < 0) {
      throw new InvalidArgumentError(op, "timeoutMs", timeoutMs, "must be a non-negative integer");
    }
    const b = native();
    const buf = new Uint8Array(4096);
    const fds = new Int32Array(16).fill(-1);
    const n = b.unixRecvFds(cString(path, op, "path"), buf, fds, timeoutMs);
    if (n < 0n) {
      if (errnoName(Number(-n)) === "EAGAIN") {
        throw new InvalidArgumentError(op, "path", path, `${path} sent no descriptor within ${timeoutMs} ms`);
      }
      throw syscallError(op, "connect/recvmsg", n, { path });
    }
    const got = [...fds].filter((fd) => fd >= 0);
    if (got.length === 0) {
      throw new InvalidArgumentError(
        op,
        "path",
        path,
        `${path} ${
          n === 0n ? "closed the connection without sending a descriptor" : "sent a message without a descriptor"
        }`,
      );
    }
    for (const extra of got.slice(1)) b.close(extra);
    return new ReceivedFd(got[0]!, buf.slice(0, Number(n)));
  }

  /** The descriptor; -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /**
   * The file's size, device and inode (`fstat`). Throws `SyscallError` if `fstat` fails and
   * {@link InvalidArgumentError} once closed.
   *
   * @example
   * ```ts ignore
   * console.log(received.stat().size); // 1073741824n
   * ```
   */
  stat(): ReceivedFdStat {
    const op = "ReceivedFd.stat";
    this.#checkOpen(op);
    const st = new BigUint64Array(5);
    const rc = native().fstat(this.#fd, st);
    if (rc < 0) throw syscallError(op, "fstat", rc, { fd: this.#fd });
    return { size: st[2]!, dev: st[0]!, ino: st[1]! };
  }

  /**
   * Where to map the file from: offset `start` of this descriptor. Valid while it is open.
   *
   * @example
   * ```ts ignore
   * using mem = GuestMemoryMmap.fromRangesWithFiles([[0, 0x10000, received.fileOffset(0)]]);
   * ```
   */
  fileOffset(start: number | bigint = 0): FileOffset {
    this.#checkOpen("ReceivedFd.fileOffset");
    return FileOffset.fromFd(this.#fd, start);
  }

  /** Closes the descriptor; later calls do nothing. Mappings made from it stay. */
  close(): void {
    if (this.#fd < 0) return;
    native().close(this.#fd);
    this.#fd = -1;
  }

  /** Same as {@link ReceivedFd.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #checkOpen(op: string): void {
    if (this.#fd < 0) throw new InvalidArgumentError(op, "this", undefined, "the descriptor was closed");
  }
}
