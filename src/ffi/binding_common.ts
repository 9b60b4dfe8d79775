/**
 * What the Deno and Bun bindings share: the view-size limit, file objects known by their `fd`, and
 * reading a file's identity through the helper's `fstat`.
 * @module
 */

import { NativeLibraryError } from "../errors.ts";
import type { RuntimeFileStat } from "./binding.ts";
import { errnoName } from "./errno.ts";

/** The environment variable that names a helper library built elsewhere. */
export const LIBRARY_ENV = "GMEM_NATIVE_LIB";

/**
 * Where the helper is expected: `override` (the value of `GMEM_NATIVE_LIB`) if set, else
 * `native/build/libgmem.so` next to the module's `src/` folder.
 *
 * @example
 * ```ts
 * import { libraryPath } from "./binding_common.ts";
 * console.log(libraryPath(undefined).endsWith("native/build/libgmem.so")); // true
 * ```
 */
export function libraryPath(override: string | undefined): string {
  if (override) return override;
  const url = new URL("../../native/build/libgmem.so", import.meta.url);
  if (url.protocol !== "file:") {
    throw new NativeLibraryError(
      "load",
      url.href,
      `the module was not loaded from a local file; set ${LIBRARY_ENV} to a built libgmem.so`,
    );
  }
  return decodeURIComponent(url.pathname);
}

/** The environment variable that lowers the largest view (see `NativeBinding.maxViewBytes`). */
export const MAX_VIEW_ENV = "GMEM_MAX_VIEW_BYTES";

/**
 * The largest view for a runtime whose own limit is `cap`: `cap`, or the smaller page multiple
 * that `override` (the environment variable's text) asks for. Anything else in `override` is a
 * {@link NativeLibraryError}: a typo must not silently leave the seams untested.
 *
 * @example
 * ```ts
 * import { maxViewBytes } from "./binding_common.ts";
 * console.log(maxViewBytes(2 ** 32, 4096, "65536", "libgmem.so")); // 65536
 * ```
 */
export function maxViewBytes(cap: number, pageSize: number, override: string | undefined, path: string): number {
  if (override === undefined || override === "") return cap;
  const n = Number(override);
  if (!Number.isSafeInteger(n) || n <= 0 || n % pageSize !== 0 || n > cap) {
    throw new NativeLibraryError(
      "load",
      path,
      `${MAX_VIEW_ENV}=${JSON.stringify(override)} must be a positive multiple of the page size (${pageSize}) ` +
        `of at most ${cap}`,
    );
  }
  return n;
}

/**
 * The descriptor of an object with a numeric `fd` (a `node:fs/promises` `FileHandle`), else -1.
 *
 * @example
 * ```ts
 * import { fdOf } from "./binding_common.ts";
 * console.log(fdOf({ fd: 3 }), fdOf({})); // 3 -1
 * ```
 */
export function fdOf(value: unknown): number {
  if (value === null || typeof value !== "object" || !("fd" in value)) return -1;
  const fd = value.fd;
  return typeof fd === "number" && Number.isInteger(fd) && fd >= 0 && fd <= 0x7fffffff ? fd : -1;
}

/**
 * Device and inode of descriptor `fd` through the helper's `fstat` (`stat` fills dev, ino, size,
 * mode, access mode and returns 0 or `-errno`).
 *
 * @example
 * ```ts
 * import { statFd } from "./binding_common.ts";
 * import { native } from "./native.ts";
 * console.log(statFd((fd, out) => native().fstat(fd, out), 0).ok); // true
 * ```
 */
export function statFd(stat: (fd: number, out: BigUint64Array) => number, fd: number): RuntimeFileStat {
  const out = new BigUint64Array(5);
  const rc = stat(fd, out);
  if (rc !== 0) return { ok: false, reason: `cannot be used: fstat(fd ${fd}) failed with ${errnoName(-rc)}` };
  return { ok: true, dev: out[0], ino: out[1] };
}
