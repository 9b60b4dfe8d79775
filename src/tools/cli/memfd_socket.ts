/**
 * Receiving a memfd (or any file descriptor) that another process hands over a Unix socket.
 *
 * The protocol is the smallest one that works: `gmem` connects to the socket, the owner sends ONE
 * message with at least one payload byte and the descriptor(s) as `SCM_RIGHTS` ancillary data, and
 * both sides close. The payload is ignored. The first descriptor is guest memory; others are closed.
 * @module
 */

import { InvalidArgumentError } from "../../core/errors.ts";
import { cString } from "../../ffi/c_string.ts";
import { errnoName } from "../../ffi/errno.ts";
import { native } from "../../ffi/native.ts";
import { syscallError } from "../../ffi/syscall_error.ts";

/** What {@link receiveFd} got. */
export interface ReceivedFd {
  /** The descriptor, owned by the caller (close it when done). */
  fd: number;
  /** The message's payload bytes. */
  payload: Uint8Array;
}

/**
 * Connects to `path`, takes one message and returns its first descriptor.
 *
 * @example
 * ```ts ignore
 * import { receiveFd } from "./memfd_socket.ts";
 * const { fd } = receiveFd("/run/vmm/ram.sock", 5000, "gmem");
 * ```
 * @throws {SyscallError} when connecting or receiving fails (ENOENT, ECONNREFUSED, EAGAIN on
 *   timeout); {@link InvalidArgumentError} when the message carried no descriptor.
 */
export function receiveFd(path: string, timeoutMs: number, op: string): ReceivedFd {
  const b = native();
  const buf = new Uint8Array(4096);
  const fds = new Int32Array(16);
  const n = b.unixRecvFds(cString(path, op, "--memfd-socket"), buf, fds, timeoutMs);
  if (n < 0n) {
    const errno = Number(-n);
    if (errnoName(errno) === "EAGAIN") {
      throw new InvalidArgumentError(op, "--memfd-socket", path, `${path} sent no descriptor within ${timeoutMs} ms`);
    }
    throw syscallError(op, "connect/recvmsg", n, { path });
  }
  const got = [...fds].filter((fd) => fd >= 0);
  if (got.length === 0) {
    throw new InvalidArgumentError(
      op,
      "--memfd-socket",
      path,
      `${path} ${
        n === 0n ? "closed the connection without sending a descriptor" : "sent a message without a descriptor"
      }`,
    );
  }
  for (const extra of got.slice(1)) b.close(extra);
  return { fd: got[0], payload: buf.slice(0, Number(n)) };
}
