/**
 * Process-level memory figures read through the native helper (no extra Deno permission needed):
 * what leak tests and inspection tools compare before and after.
 * @module
 */

import { toAddress, toLength } from "../address.ts";
import { native } from "../ffi/native.ts";
import { syscallError } from "../ffi/syscall_error.ts";

/** The figures {@link hostDiagnostics} returns. */
export interface HostDiagnostics {
  /** Resident bytes of the whole process (`/proc/self/statm`). */
  rssBytes: number;
  /** Number of mappings (`/proc/self/maps` lines). */
  mappings: number;
  /** Number of open file descriptors. */
  openFds: number;
  /** Host page size. */
  pageSize: number;
}

/**
 * Reads resident memory, mapping count and fd count of this process.
 *
 * @example
 * ```ts
 * import { hostDiagnostics } from "../../mod.ts";
 * const d = hostDiagnostics();
 * console.log(d.mappings > 0, d.pageSize); // true 4096
 * ```
 */
export function hostDiagnostics(): HostDiagnostics {
  const n = native();
  const op = "hostDiagnostics";
  const rss = n.rssBytes(), maps = n.countMappings(), fds = n.countFds();
  if (rss < 0n) throw syscallError(op, "read /proc/self/statm", rss, {});
  if (maps < 0n) throw syscallError(op, "read /proc/self/maps", maps, {});
  if (fds < 0n) throw syscallError(op, "opendir /proc/self/fd", fds, {});
  return { rssBytes: Number(rss), mappings: Number(maps), openFds: Number(fds), pageSize: n.pageSize };
}

/**
 * Resident bytes inside a host range, page by page (`mincore`). The range must be mapped.
 *
 * @example
 * ```ts
 * import { MmapRegion, residentBytes } from "../../mod.ts";
 * using r = MmapRegion.anonymous(1 << 20);
 * console.log(residentBytes(r.hostAddress, r.size)); // 0 until touched
 * ```
 */
export function residentBytes(hostAddress: bigint, length: number): number {
  const op = "residentBytes";
  const addr = toAddress(hostAddress, op, "hostAddress");
  const len = toLength(length, op, "length");
  const rc = native().residentIn(addr, BigInt(len));
  if (rc < 0n) throw syscallError(op, "mincore", rc, { addr, length: len });
  return Number(rc);
}
