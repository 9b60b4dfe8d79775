/**
 * Process-level memory figures read through the native helper (no extra Deno permission needed):
 * what leak tests and inspection tools compare before and after.
 * @module
 */

import { toAddress, toLength } from "../core/address.ts";
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
  /** Free hugetlb pages of 2 MiB and 1 GiB (0 where the size is not supported). */
  hugePagesFree: { "2M": number; "1G": number };
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
  const free = (kib: bigint) => {
    const v = n.hugePagesFree(kib);
    return v < 0n ? 0 : Number(v);
  };
  return {
    rssBytes: Number(rss),
    mappings: Number(maps),
    openFds: Number(fds),
    pageSize: n.pageSize,
    hugePagesFree: { "2M": free(2048n), "1G": free(1048576n) },
  };
}

/**
 * Resident bytes inside a host range, page by page (`mincore`). The range must be mapped.
 *
 * @example
 * ```ts
 * import { MmapRegion, residentBytes } from "../../mod.ts";
 * using r = MmapRegion.anonymous(1 << 20);
 * console.log(residentBytes(r.hostAddress, r.size)); // 0: nothing touched yet
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

/** What {@link hostProtection} found at an address. */
export interface HostProtection {
  /** `PROT_*` bits of the mapping. */
  prot: number;
  /** Whether the mapping is shared (`MAP_SHARED`). */
  shared: boolean;
}

/**
 * The kernel's view of the mapping that contains a host address (`/proc/self/maps`), or
 * `undefined` if nothing is mapped there.
 *
 * @example
 * ```ts
 * import { hostProtection, MmapRegion } from "../../mod.ts";
 * using r = MmapRegion.anonymous(4096);
 * console.log(hostProtection(r.hostAddress)); // { prot: 3, shared: false }
 * ```
 */
export function hostProtection(hostAddress: bigint | number): HostProtection | undefined {
  const op = "hostProtection";
  const rc = native().vmaProt(toAddress(hostAddress, op, "hostAddress"));
  if (rc === -2) return undefined;
  if (rc < 0) throw syscallError(op, "read /proc/self/maps", rc, {});
  return { prot: rc & 7, shared: (rc & 0x100) !== 0 };
}
