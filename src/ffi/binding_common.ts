/**
 * What the Deno and Bun bindings share: where the helper is (the prebuilt one for this platform, or
 * `GMEM_NATIVE_LIB`) and what a load error says to do, the view-size limit, file objects known by
 * their `fd`, and reading a file's identity through the helper's `fstat`.
 * @module
 */

import { NativeLibraryError } from "../core/errors.ts";
import type { RuntimeFileStat } from "./binding.ts";
import { errnoName } from "./errno.ts";

/** The environment variable that names a helper library built elsewhere. */
export const LIBRARY_ENV = "GMEM_NATIVE_LIB";

/** The platforms a prebuilt helper ships for, as `native/prebuilt/<os>-<arch>/` names them. */
export const PREBUILT_TARGETS: readonly string[] = ["linux-x86_64", "linux-aarch64"];

/** How to point the library at a helper of one's own, quoted in every error about loading one. */
export const OVERRIDE_HINT =
  `or set ${LIBRARY_ENV} to the path of a libgmem.so built from native/gmem.c (cc -O2 -shared -fPIC); ` +
  `Deno reads it only with --allow-env`;

/**
 * The prebuilt target for a runtime's OS and CPU names (`Deno.build` or Node-style `process`
 * names), e.g. `linux-x86_64`, or `undefined` when none ships for it.
 *
 * @example
 * ```ts
 * import { prebuiltTarget } from "./binding_common.ts";
 * console.log(prebuiltTarget("linux", "x64"), prebuiltTarget("darwin", "arm64")); // linux-x86_64 undefined
 * ```
 */
export function prebuiltTarget(os: string, arch: string): string | undefined {
  const cpu = arch === "x64" ? "x86_64" : arch === "arm64" ? "aarch64" : arch;
  const target = `${os}-${cpu}`;
  return PREBUILT_TARGETS.includes(target) ? target : undefined;
}

/**
 * Where the helper is: `override` (the value of `GMEM_NATIVE_LIB`) if set, else the prebuilt
 * `native/prebuilt/<os>-<arch>/libgmem.so` of the package, which ships with the module (no
 * compiler needed). A platform without a prebuilt helper, or a module not loaded from local files,
 * is a {@link NativeLibraryError} that says what to do.
 *
 * @example
 * ```ts
 * import { libraryPath } from "./binding_common.ts";
 * console.log(libraryPath(undefined, "linux", "x86_64").endsWith("native/prebuilt/linux-x86_64/libgmem.so")); // true
 * ```
 */
export function libraryPath(override: string | undefined, os: string, arch: string): string {
  if (override) return override;
  const target = prebuiltTarget(os, arch);
  if (target === undefined) {
    throw new NativeLibraryError(
      "load",
      `native/prebuilt/${os}-${arch}/libgmem.so`,
      `no prebuilt helper ships for ${os}-${arch} (only ${PREBUILT_TARGETS.join(", ")}); ` +
        `build native/gmem.c for this host and set ${LIBRARY_ENV} to its path (Deno reads it only with --allow-env)`,
    );
  }
  const url = new URL(`../../native/prebuilt/${target}/libgmem.so`, import.meta.url);
  if (url.protocol !== "file:") {
    throw new NativeLibraryError(
      "load",
      url.href,
      `the module was loaded from ${url.protocol}// and not from local files, so its prebuilt helper cannot ` +
        `be opened; install the package (npm or a local copy), ${OVERRIDE_HINT}`,
    );
  }
  return decodeURIComponent(url.pathname);
}

/**
 * Why a helper that exists by name did not load, and what to do: `text` is the runtime's error;
 * `overridden` tells whether `GMEM_NATIVE_LIB` chose the path.
 *
 * @example
 * ```ts
 * import { loadFailure } from "./binding_common.ts";
 * console.log(loadFailure("not found", false).startsWith("not found.")); // true
 * ```
 */
export function loadFailure(text: string, overridden: boolean): string {
  if (overridden) {
    return `${text}. ${LIBRARY_ENV} names this file: point it at a libgmem.so built from native/gmem.c, ` +
      `or unset it to use the prebuilt helper`;
  }
  return `${text}. The prebuilt helper ships in native/prebuilt/ of the package: reinstall it, or rebuild it ` +
    `with \`deno task build\`, ${OVERRIDE_HINT}`;
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
