/**
 * What `console.log` and `JSON.stringify` show for guest memory: a table like
 * QEMU's `info mtree` (guest physical range, size, host address, backing, protection, flags, dirty
 * pages, and the holes between regions) instead of the objects' internals. Never throws: a closed
 * region is shown as closed.
 * @module
 */

import { AtomicBitmap, type AtomicBitmapJson } from "../bitmap/atomic_bitmap.ts";
import { dirtyPageCount } from "../bitmap/inspect_bitmap.ts";
import { hex } from "../core/format.ts";
import { columns, plural, rangeText, sizeText } from "../core/inspect_text.ts";
import { mapFlagsToString } from "../core/constants.ts";
import { protLetters } from "../core/inspect_slice.ts";
import { BACKING } from "../core/mapping.ts";
import type { MmapRegion } from "./mmap_region.ts";
import type { DirtyLog } from "../core/dirty_log.ts";

/**
 * What inspection reads of a region: a `GuestRegionMmap`, described structurally so that the
 * region's own inspection can use this file without the two importing each other.
 *
 * @example
 * ```ts
 * import { GuestRegionMmap, type InspectedRegion } from "../../mod.ts";
 * using r = GuestRegionMmap.fromRange(0x1000, 0x1000);
 * const seen: InspectedRegion = r;
 * console.log(seen.len); // 4096
 * ```
 */
export interface InspectedRegion {
  /** First guest address. */
  readonly startAddr: bigint;
  /** Last guest address. */
  readonly lastAddr: bigint;
  /** Length in bytes. */
  readonly len: number;
  /** The host mapping. */
  readonly mmap: MmapRegion;
  /** The dirty log, if any. */
  readonly bitmap: DirtyLog | undefined;
}

/**
 * One region as inspection sees it.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * import { describeRegion } from "./inspect_memory.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
 * console.log(describeRegion(mem.regions()[0]).backing); // "anonymous"
 * ```
 */
export interface RegionInfo {
  /** First guest physical address. */
  gpa: bigint;
  /** Size in bytes. */
  size: bigint;
  /** Host virtual address of the first byte; `undefined` once closed. */
  host: bigint | undefined;
  /** `anonymous`, `memfd fd N`, `file PATH@OFFSET`, `file fd N@OFFSET`, or `borrowed` memory. */
  backing: string;
  /** Protection as `rwx` letters (`-` for a missing right). */
  prot: string;
  /** The `MAP_*` flags by name. */
  flags: string;
  /** Whether the region was closed. */
  closed: boolean;
  /** The dirty bitmap's state, if the region tracks dirty pages with an `AtomicBitmap`. */
  dirty: { pageSize: number; pages: number; dirtyPages: number; runs: Array<[number, number]> } | undefined;
  /** The region's dirty log, if any (an `AtomicBitmap` or something else). */
  log: DirtyLog | undefined;
}

/**
 * A region in the JSON form of guest memory: addresses and sizes as hex strings.
 *
 * @example
 * ```ts
 * import type { RegionJson } from "./inspect_memory.ts";
 * const r: RegionJson = {
 *   gpa: "0x0", size: "0x1000", host: "0x7f0000000000", backing: "anonymous", prot: "rw-",
 *   flags: "PRIVATE|ANONYMOUS|NORESERVE", closed: false, dirty: null,
 * };
 * ```
 */
export interface RegionJson {
  /** First guest physical address. */
  gpa: string;
  /** Size in bytes. */
  size: string;
  /** Host address, `null` once closed. */
  host: string | null;
  /** See {@link RegionInfo.backing}. */
  backing: string;
  /** `rwx` letters. */
  prot: string;
  /** `MAP_*` flag names. */
  flags: string;
  /** Whether the region was closed. */
  closed: boolean;
  /** The dirty bitmap (as `AtomicBitmap.toJSON()` gives it), or `null` without one. */
  dirty: AtomicBitmapJson | null;
}

/**
 * The JSON form of `GuestMemoryMmap`: its regions and the holes between them.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x3000, 0x1000]]);
 * console.log(mem.toJSON().holes); // [ { gpa: "0x1000", size: "0x2000" } ]
 * ```
 */
export interface GuestMemoryJson {
  /** Bytes of guest RAM, all regions together. */
  size: string;
  /** The regions in address order. */
  regions: RegionJson[];
  /** The gaps between regions, in address order. */
  holes: Array<{ gpa: string; size: string }>;
}

/**
 * What memory a mapping is: `anonymous`, `memfd fd N`, `file …@OFFSET` or `borrowed`.
 *
 * @example
 * ```ts
 * import { MmapRegion } from "../../mod.ts";
 * import { backingText } from "./inspect_memory.ts";
 * using r = MmapRegion.memfd(4096);
 * console.log(backingText(r)); // "memfd fd …"
 * ```
 */
export function backingText(mmap: MmapRegion): string {
  return mmap[BACKING]();
}

/**
 * Everything inspection shows about one region.
 *
 * @example
 * ```ts
 * import { GuestRegionMmap } from "../../mod.ts";
 * import { describeRegion } from "./inspect_memory.ts";
 * using r = GuestRegionMmap.fromRange(0x2000, 0x1000, undefined, { dirtyPageSize: 4096 });
 * r.writeU8(0, 1);
 * console.log(describeRegion(r).dirty?.dirtyPages); // 1
 * ```
 */
export function describeRegion(region: InspectedRegion): RegionInfo {
  const mmap = region.mmap;
  const log = region.bitmap;
  let dirty: RegionInfo["dirty"];
  if (log instanceof AtomicBitmap) {
    const runs = log.dirtyRuns();
    dirty = { pageSize: log.pageSize, pages: log.len, dirtyPages: dirtyPageCount(runs, log.pageSize), runs };
  }
  return {
    gpa: region.startAddr,
    size: BigInt(region.len),
    host: mmap.closed ? undefined : mmap.hostAddress,
    backing: backingText(mmap),
    prot: protLetters(mmap.prot),
    flags: mapFlagsToString(mmap.flags),
    closed: mmap.closed,
    dirty,
    log,
  };
}

/**
 * The gaps between sorted regions, as `[start, size]`.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * import { holesBetween } from "./inspect_memory.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x4000, 0x1000]]);
 * console.log(holesBetween(mem.regions())); // [ [ 4096n, 12288n ] ]
 * ```
 */
export function holesBetween(regions: readonly InspectedRegion[]): Array<[start: bigint, size: bigint]> {
  const holes: Array<[bigint, bigint]> = [];
  for (let i = 1; i < regions.length; i++) {
    const end = regions[i - 1].lastAddr + 1n;
    if (regions[i].startAddr > end) holes.push([end, regions[i].startAddr - end]);
  }
  return holes;
}

function dirtyText(info: RegionInfo): string {
  if (info.dirty !== undefined) {
    return `dirty ${info.dirty.dirtyPages} of ${plural(info.dirty.pages, "page")} (${sizeText(info.dirty.pageSize)})`;
  }
  return info.log === undefined ? "no dirty log" : "dirty log";
}

/**
 * The mtree-like rows of guest memory (range, size, host, backing, protection, flags, dirty
 * pages; holes in between), without a heading, each line starting with `indent`.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * import { memoryRows } from "./inspect_memory.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
 * console.log(memoryRows(mem.regions(), "  ").startsWith("  0000000000000000-0000000000000fff  4 KiB  host 0x")); // true
 * ```
 */
export function memoryRows(regions: readonly InspectedRegion[], indent: string): string {
  const rows: string[][] = [];
  const holes = holesBetween(regions);
  let h = 0;
  for (const region of regions) {
    while (h < holes.length && holes[h][0] < region.startAddr) {
      const [start, size] = holes[h++];
      rows.push([rangeText(start, size), sizeText(size), "(hole)"]);
    }
    const info = describeRegion(region);
    rows.push([
      rangeText(info.gpa, info.size),
      sizeText(info.size),
      info.host === undefined ? "closed" : `host ${hex(info.host)}`,
      info.backing,
      info.prot,
      info.flags,
      dirtyText(info),
    ]);
  }
  return columns(rows, indent);
}

/**
 * The text `console.log` shows for guest memory: a heading with the region count, RAM size and
 * holes, then one row per region and hole.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * import { inspectMemory } from "./inspect_memory.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x3000, 0x1000]]);
 * console.log(inspectMemory(mem.regions()).split("\n")[0]); // "GuestMemoryMmap: 2 regions, 8 KiB of RAM, 1 hole"
 * ```
 */
export function inspectMemory(regions: readonly InspectedRegion[], name = "GuestMemoryMmap"): string {
  let total = 0n;
  for (const r of regions) total += BigInt(r.len);
  const holes = holesBetween(regions);
  const head = `${name}: ${plural(regions.length, "region")}, ${sizeText(total)} of RAM, ${
    plural(holes.length, "hole")
  }`;
  return `${head}\n${memoryRows(regions, "  ")}`;
}

/**
 * The JSON form of guest memory.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * import { memoryJson } from "./inspect_memory.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
 * console.log(memoryJson(mem.regions()).size); // "0x1000"
 * ```
 */
export function memoryJson(regions: readonly InspectedRegion[]): GuestMemoryJson {
  let total = 0n;
  const out: RegionJson[] = regions.map((region) => {
    total += BigInt(region.len);
    return regionJson(region);
  });
  return {
    size: hex(total),
    regions: out,
    holes: holesBetween(regions).map(([start, size]) => ({ gpa: hex(start), size: hex(size) })),
  };
}

/**
 * The JSON form of one region (as in {@link GuestMemoryJson}'s list).
 *
 * @example
 * ```ts
 * import { GuestRegionMmap } from "../../mod.ts";
 * import { regionJson } from "./inspect_memory.ts";
 * using r = GuestRegionMmap.fromRange(0x2000, 0x1000);
 * console.log(regionJson(r).gpa, regionJson(r).size); // "0x2000" "0x1000"
 * ```
 */
export function regionJson(region: InspectedRegion): RegionJson {
  const info = describeRegion(region);
  return {
    gpa: hex(info.gpa),
    size: hex(info.size),
    host: info.host === undefined ? null : hex(info.host),
    backing: info.backing,
    prot: info.prot,
    flags: info.flags,
    closed: info.closed,
    dirty: info.log instanceof AtomicBitmap ? info.log.toJSON() : null,
  };
}

/**
 * The line `console.log` shows for one region: `GuestRegionMmap:` and its row of the guest memory
 * table (guest range, size, host, backing, protection, flags, dirty pages).
 *
 * @example
 * ```ts
 * import { GuestRegionMmap } from "../../mod.ts";
 * import { inspectRegion } from "./inspect_memory.ts";
 * using r = GuestRegionMmap.fromRange(0x1000, 0x1000);
 * console.log(inspectRegion(r).startsWith("GuestRegionMmap: 0000000000001000-0000000000001fff  4 KiB  host 0x")); // true
 * ```
 */
export function inspectRegion(region: InspectedRegion): string {
  return `GuestRegionMmap: ${memoryRows([region], "")}`;
}
