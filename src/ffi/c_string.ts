/**
 * Text handed to C as a NUL-terminated string. C stops at the first NUL, so a string with one
 * inside would name something else than the caller wrote (`"/d/secret\0.img"` opens `/d/secret`):
 * such a string is refused, never cut short.
 * @module
 */

import { InvalidArgumentError } from "../core/errors.ts";

/**
 * The UTF-8 bytes of `text` plus a terminating NUL, or an {@link InvalidArgumentError} naming
 * `argument` of `op` if `text` is empty or holds a NUL of its own.
 *
 * @example
 * ```ts
 * import { cString } from "./c_string.ts";
 * console.log(cString("/dev/zero", "demo", "path").length); // 10
 * ```
 */
export function cString(text: string, op: string, argument: string): Uint8Array<ArrayBuffer> {
  if (text.length === 0) throw new InvalidArgumentError(op, argument, text, "must not be empty");
  const nul = text.indexOf("\0");
  if (nul >= 0) {
    throw new InvalidArgumentError(
      op,
      argument,
      text,
      `must not contain a NUL character (found at index ${nul}): C would read only ${
        JSON.stringify(text.slice(0, nul))
      }`,
    );
  }
  return new TextEncoder().encode(text + "\0");
}
