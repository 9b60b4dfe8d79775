/**
 * The page size a mapping really has. hugetlb memory (`MAP_HUGETLB`, a hugetlb memfd, a file on
 * hugetlbfs) comes in huge pages: the kernel rounds the length up to them, and `munmap` and
 * `mprotect` refuse any length that is not a multiple, so the library must use the rounded one.
 * @module
 */

import { InvalidArgumentError } from "../core/errors.ts";
import { native } from "../ffi/native.ts";
import { syscallError } from "../ffi/syscall_error.ts";
import { MAP_HUGE_SHIFT, MAP_HUGETLB } from "../core/constants.ts";
import { HUGETLBFS_MAGIC, type MappedFile } from "./mapped_file.ts";

/** The largest huge page any Linux host has (16 GiB, on some arm64 and ppc64 configurations). */
const MAX_HUGE_PAGE = 2 ** 34;

/**
 * The page size of a mapping with these `flags`: the file's (hugetlbfs block size) for a file
 * mapping, `memfdHugePage` (0 for none) for a memfd the builder creates, and for anonymous memory
 * with `MAP_HUGETLB` the size its `MAP_HUGE_SHIFT` bits name, or the host's default huge page size.
 * Otherwise the host page size.
 *
 * @example
 * ```ts ignore
 * mappingPageSize("MmapRegion.anonymous", MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, { anonymous: true }); // 2097152
 * ```
 */
export function mappingPageSize(
  op: string,
  flags: number,
  backing: MappedFile | { memfdHugePage: number } | { anonymous: true },
): number {
  const n = native();
  if ("fsType" in backing) return backing.fsType === HUGETLBFS_MAGIC ? Number(backing.fsBlockSize) : n.pageSize;
  // A memfd the builder creates is hugetlb only if created so; MAP_HUGETLB on any other file is EINVAL.
  if ("memfdHugePage" in backing) return backing.memfdHugePage > 0 ? backing.memfdHugePage : n.pageSize;
  if ((flags & MAP_HUGETLB) === 0) return n.pageSize;
  const shift = (flags >>> MAP_HUGE_SHIFT) & 0x3f;
  if (shift !== 0) {
    const bytes = 2 ** shift;
    if (bytes > MAX_HUGE_PAGE) {
      throw new InvalidArgumentError(op, "flags", flags, `ask for huge pages of 2^${shift} bytes, which no host has`);
    }
    return Math.max(bytes, n.pageSize);
  }
  const size = n.defaultHugePageSize();
  if (size === -2n) {
    throw new InvalidArgumentError(op, "flags", flags, "contain MAP_HUGETLB, but this host has no huge pages");
  }
  if (size < 0n) throw syscallError(op, "read /proc/meminfo", size, {});
  return Number(size);
}
