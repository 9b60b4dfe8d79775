/**
 * Turns a `-errno` return of the native helper into a {@link SyscallError}.
 * @module
 */

import { SyscallError } from "../core/errors.ts";
import { errnoName } from "./errno.ts";
import { native } from "./native.ts";

/**
 * Builds the error for a failed call that returned `negErrno` (a negative number).
 *
 * @example
 * ```ts
 * import { syscallError } from "./syscall_error.ts";
 * const e = syscallError("demo", "mmap", -12, { length: 4096 });
 * console.log(e.errnoName); // "ENOMEM"
 * ```
 */
export function syscallError(
  op: string,
  syscall: string,
  negErrno: number | bigint,
  args: Record<string, string | number | bigint>,
): SyscallError {
  const errno = -Number(negErrno);
  return new SyscallError(op, syscall, errno, errnoName(errno), native().strerror(errno), args);
}
