/**
 * Linux `mmap` protection and flag values (x86_64 and arm64 share them).
 * @module
 */

/** No access. */
export const PROT_NONE = 0;
/** Pages may be read. */
export const PROT_READ = 1;
/** Pages may be written. */
export const PROT_WRITE = 2;
/** Pages may be executed. */
export const PROT_EXEC = 4;

/** Share the mapping with every other mapping of the same object. */
export const MAP_SHARED = 0x01;
/** Copy-on-write private mapping. */
export const MAP_PRIVATE = 0x02;
/** Place the mapping exactly at the given address (refused by this library). */
export const MAP_FIXED = 0x10;
/** Not backed by a file. */
export const MAP_ANONYMOUS = 0x20;
/** Reserve no swap: a large mapping costs nothing until touched. */
export const MAP_NORESERVE = 0x4000;
/** Prefault every page at map time. */
export const MAP_POPULATE = 0x8000;
/** Back the mapping with huge pages from the hugetlb pool. */
export const MAP_HUGETLB = 0x40000;
/** Shift of the huge page size (log2) inside the flags. */
export const MAP_HUGE_SHIFT = 26;
/** 2 MiB huge pages. */
export const MAP_HUGE_2MB: number = 21 << MAP_HUGE_SHIFT;
/** 1 GiB huge pages. */
export const MAP_HUGE_1GB: number = 30 << MAP_HUGE_SHIFT;

/** `memfd_create` flag: back the memfd with huge pages. */
export const MFD_HUGETLB = 0x0004;

const PROT_NAMES: ReadonlyArray<[number, string]> = [[PROT_READ, "READ"], [PROT_WRITE, "WRITE"], [
  PROT_EXEC,
  "EXEC",
]];
const FLAG_NAMES: ReadonlyArray<[number, string]> = [
  [MAP_SHARED, "SHARED"],
  [MAP_PRIVATE, "PRIVATE"],
  [MAP_FIXED, "FIXED"],
  [MAP_ANONYMOUS, "ANONYMOUS"],
  [MAP_NORESERVE, "NORESERVE"],
  [MAP_POPULATE, "POPULATE"],
  [MAP_HUGETLB, "HUGETLB"],
];

/**
 * Names the bits of a `prot` value, e.g. `"READ|WRITE"`, or `"NONE"`.
 *
 * @example
 * ```ts
 * import { PROT_READ, PROT_WRITE, protToString } from "./constants.ts";
 * protToString(PROT_READ | PROT_WRITE); // "READ|WRITE"
 * ```
 */
export function protToString(prot: number): string {
  const names = PROT_NAMES.filter(([bit]) => (prot & bit) !== 0).map(([, n]) => n);
  return names.length === 0 ? "NONE" : names.join("|");
}

/**
 * Names the bits of `mmap` flags, e.g. `"PRIVATE|ANONYMOUS|NORESERVE"`.
 *
 * @example
 * ```ts
 * import { MAP_ANONYMOUS, MAP_PRIVATE, mapFlagsToString } from "./constants.ts";
 * mapFlagsToString(MAP_PRIVATE | MAP_ANONYMOUS); // "PRIVATE|ANONYMOUS"
 * ```
 */
export function mapFlagsToString(flags: number): string {
  const names = FLAG_NAMES.filter(([bit]) => (flags & bit) !== 0).map(([, n]) => n);
  const huge = (flags >>> MAP_HUGE_SHIFT) & 0x3f;
  if (huge !== 0) names.push(`HUGE_${huge === 21 ? "2MB" : huge === 30 ? "1GB" : `2^${huge}`}`);
  return names.length === 0 ? "0" : names.join("|");
}
