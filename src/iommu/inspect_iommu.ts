/**
 * What `console.log` and `JSON.stringify` show for an `Iotlb` and an `IommuMemory`: the IOTLB
 * entries as an mtree-like table (IOVA range, target range, size, permission), the counters, the
 * dirty-log addressing and the physical memory behind, instead of the objects' internals.
 * @module
 */

import { AtomicBitmap, type AtomicBitmapJson } from "../bitmap/atomic_bitmap.ts";
import { dirtyPageCount } from "../bitmap/inspect_bitmap.ts";
import { hex } from "../format.ts";
import { columns, plural, rangeText, sizeText } from "../inspect_text.ts";
import type { GuestMemoryRegion, GuestSlice } from "../memory/guest_memory_backend.ts";
import { GuestRegionMmap } from "../memory/guest_region_mmap.ts";
import { type GuestMemoryJson, inspectMemory, memoryJson, memoryRows } from "../memory/inspect_memory.ts";
import type { IommuMemory } from "./iommu_memory.ts";
import type { IotlbIommuCounters } from "./iommu.ts";
import type { IotlbCounters, IotlbEntry, IotlbJson } from "./iotlb.ts";
import type { IotlbEvent } from "./iotlb_recorder.ts";
import { permissionName } from "./permissions.ts";

/** Entries listed before the rest are summarised in one line. */
const MAX_ENTRIES = 32;

/**
 * What the IOTLB text is made of: the public state of an `Iotlb`.
 *
 * @example
 * ```ts
 * import { Iotlb } from "../../mod.ts";
 * import type { IotlbShape } from "./inspect_iommu.ts";
 * const shape: IotlbShape = new Iotlb();
 * ```
 */
export interface IotlbShape {
  /** The entries in IOVA order. */
  entries(): IotlbEntry[];
  /** The counters. */
  readonly counters: IotlbCounters;
  /** The entry limit (`Infinity` when unbounded). */
  readonly maxEntries: number;
  /** The eviction policy used at the limit. */
  readonly eviction: string;
}

/**
 * The counters as one phrase: "hits 3, misses 1, access failures 0, evictions 0".
 *
 * @example
 * ```ts
 * import { Iotlb } from "../../mod.ts";
 * import { countersText } from "./inspect_iommu.ts";
 * console.log(countersText(new Iotlb().counters)); // "hits 0, misses 0, access failures 0, evictions 0"
 * ```
 */
export function countersText(c: IotlbCounters): string {
  return `hits ${c.hits}, misses ${c.misses}, access failures ${c.accessFailures}, evictions ${c.evictions}`;
}

/**
 * The rows of IOTLB entries (`iova-range -> target-range  size  perm`), each line starting with
 * `indent`; after 32 entries one line says how many more there are.
 *
 * @example
 * ```ts
 * import { Iotlb, Permissions } from "../../mod.ts";
 * import { entryRows } from "./inspect_iommu.ts";
 * const tlb = new Iotlb();
 * tlb.setMapping(0x1000, 0x9000, 0x1000, Permissions.Read);
 * console.log(entryRows(tlb.entries(), ""));
 * // 0000000000001000-0000000000001fff -> 0000000000009000-0000000000009fff  4 KiB  Read
 * ```
 */
export function entryRows(entries: readonly IotlbEntry[], indent: string): string {
  const rows = entries.slice(0, MAX_ENTRIES).map((e) => [
    rangeText(e.iova, e.size),
    "->",
    rangeText(e.target, e.size),
    sizeText(e.size),
    permissionName(e.perm),
  ]);
  let text = columns(rows, indent);
  if (entries.length > MAX_ENTRIES) {
    text += `\n${indent}… ${plural(entries.length - MAX_ENTRIES, "more entry", "more entries")}`;
  }
  return text;
}

function bounded(tlb: IotlbShape): boolean {
  return typeof tlb.maxEntries === "number" && tlb.maxEntries !== Infinity;
}

function limitText(tlb: IotlbShape): string {
  return bounded(tlb) ? `at most ${tlb.maxEntries}, ${tlb.eviction} eviction` : "unbounded";
}

/**
 * The text `console.log` shows for an IOTLB: a heading with the entry count, limit and counters,
 * then one row per entry.
 *
 * @example
 * ```ts
 * import { Iotlb, Permissions } from "../../mod.ts";
 * import { inspectIotlb } from "./inspect_iommu.ts";
 * const tlb = new Iotlb();
 * tlb.setMapping(0x1000, 0x9000, 0x1000, Permissions.Read);
 * console.log(inspectIotlb(tlb).split("\n")[0]);
 * // Iotlb: 1 entry (unbounded); hits 0, misses 0, access failures 0, evictions 0
 * ```
 */
export function inspectIotlb(tlb: IotlbShape, name = "Iotlb", indent = ""): string {
  const entries = tlb.entries();
  const head = `${indent}${name}: ${plural(entries.length, "entry", "entries")} (${limitText(tlb)}); ${
    countersText(tlb.counters)
  }`;
  return entries.length === 0 ? head : `${head}\n${entryRows(entries, `${indent}  `)}`;
}

/**
 * The JSON form of an IOTLB: the entries and counters (the format `gmem translate --iotlb` reads),
 * plus `maxEntries` and `eviction` when the IOTLB is bounded.
 *
 * @example
 * ```ts
 * import { Iotlb } from "../../mod.ts";
 * import { iotlbJson } from "./inspect_iommu.ts";
 * console.log(JSON.stringify(iotlbJson(new Iotlb({ maxEntries: 8 })))); // {"entries":[],"counters":{…},"maxEntries":8,"eviction":"fifo"}
 * ```
 */
export function iotlbJson(tlb: IotlbShape): IotlbJson {
  const json: IotlbJson = {
    entries: tlb.entries().map((e) => ({
      iova: hex(e.iova),
      target: hex(e.target),
      size: hex(e.size),
      perm: permissionName(e.perm),
    })),
    counters: tlb.counters,
  };
  if (bounded(tlb)) {
    json.maxEntries = tlb.maxEntries;
    json.eviction = tlb.eviction;
  }
  return json;
}

/**
 * The JSON form of an `IommuMemory`.
 *
 * @example
 * ```ts
 * import type { IommuMemoryJson } from "./inspect_iommu.ts";
 * const show = (j: IommuMemoryJson) => `${j.enabled ? "on" : "off"}, ${j.iotlb?.entries.length ?? 0} entries`;
 * ```
 */
export interface IommuMemoryJson {
  /** Whether translation is on. */
  enabled: boolean;
  /** How writes through the IOMMU are logged. */
  logBy: "iova" | "gpa";
  /** The IOVA-indexed dirty bitmap (logBy `"iova"`), or `null`. */
  bitmap: AtomicBitmapJson | null;
  /** The IOMMU: its class and, for `IotlbIommu`, the miss-path counters. */
  iommu: { type: string; counters: IotlbIommuCounters | null; pendingRequests: number | null };
  /** The IOTLB, if the IOMMU has one. */
  iotlb: IotlbJson | null;
  /** The physical memory behind the IOMMU. */
  memory: GuestMemoryJson;
}

interface MissPath {
  counters?: IotlbIommuCounters;
  pendingRequests?: number;
}

function iommuType<S extends GuestSlice<S>>(mem: IommuMemory<S>): string {
  const iommu = mem.iommu as object;
  return iommu.constructor?.name ?? "Iommu";
}

function missPath<S extends GuestSlice<S>>(
  mem: IommuMemory<S>,
): { counters: IotlbIommuCounters | null; pendingRequests: number | null } {
  const m = mem.iommu as MissPath;
  const c = m.counters;
  const counters = c !== null && typeof c === "object" && typeof c.asyncRequests === "number" ? c : null;
  return { counters, pendingRequests: typeof m.pendingRequests === "number" ? m.pendingRequests : null };
}

function shapeOf<S extends GuestSlice<S>>(mem: IommuMemory<S>): IotlbShape | undefined {
  const tlb = mem.iommu.iotlb as Partial<IotlbShape> | undefined;
  return tlb !== undefined && typeof tlb.entries === "function" ? tlb as IotlbShape : undefined;
}

/**
 * The JSON form of an `IommuMemory`: translation state, dirty-log addressing and bitmap, IOMMU
 * counters, IOTLB and physical memory.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, IommuMemory, IotlbIommu } from "../../mod.ts";
 * import { iommuMemoryJson } from "./inspect_iommu.ts";
 * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
 * console.log(iommuMemoryJson(new IommuMemory(ram, new IotlbIommu())).iommu.type); // "IotlbIommu"
 * ```
 */
export function iommuMemoryJson<S extends GuestSlice<S>>(mem: IommuMemory<S>): IommuMemoryJson {
  const tlb = shapeOf(mem);
  const bitmap = mem.bitmap;
  return {
    enabled: mem.iommuEnabled,
    logBy: mem.logBy,
    bitmap: bitmap instanceof AtomicBitmap ? bitmap.toJSON() : null,
    iommu: { type: iommuType(mem), ...missPath(mem) },
    iotlb: tlb === undefined ? null : iotlbJson(tlb),
    memory: memoryJson(mmapRegions(mem.backend.regions())),
  };
}

function dirtyLogText<S extends GuestSlice<S>>(mem: IommuMemory<S>): string {
  if (mem.logBy === "gpa") return "dirty log by guest physical address (the regions' bitmaps)";
  const b = mem.bitmap;
  if (b === undefined) return "dirty log by IOVA, but no bitmap given (writes through the IOMMU are not logged)";
  if (!(b instanceof AtomicBitmap)) return "dirty log by IOVA (own log)";
  const runs = b.dirtyRuns();
  return `dirty log by IOVA (own bitmap of ${sizeText(b.byteSize)} in ${sizeText(b.pageSize)} pages: ${
    plural(dirtyPageCount(runs, b.pageSize), "dirty page")
  })`;
}

/**
 * The text `console.log` shows for an `IommuMemory`: translation state and dirty logging, the
 * IOTLB table, the miss-path counters, then the physical memory table.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, IommuMemory, IotlbIommu } from "../../mod.ts";
 * import { inspectIommuMemory } from "./inspect_iommu.ts";
 * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
 * console.log(inspectIommuMemory(new IommuMemory(ram, new IotlbIommu())).split("\n")[0]);
 * // IommuMemory: translation on, dirty log by IOVA, but no bitmap given (…)
 * ```
 */
export function inspectIommuMemory<S extends GuestSlice<S>>(mem: IommuMemory<S>): string {
  const lines = [`IommuMemory: translation ${mem.iommuEnabled ? "on" : "off"}, ${dirtyLogText(mem)}`];
  const tlb = shapeOf(mem);
  const type = iommuType(mem);
  lines.push(tlb === undefined ? `  IOMMU: ${type} (no IOTLB)` : inspectIotlb(tlb, `IOTLB of ${type}`, "  "));
  const { counters, pendingRequests } = missPath(mem);
  if (counters !== null) {
    lines.push(
      `  miss handling: ${counters.asyncRequests} asked, ${counters.mergedRequests} merged, ${counters.timeouts} timed out, ${counters.syncFaults} sync faults, ${
        pendingRequests ?? 0
      } pending`,
    );
  }
  const regions = mmapRegions(mem.backend.regions());
  const memory = inspectMemory(regions, "physical memory").split("\n")[0];
  lines.push(`  ${memory}`, memoryRows(regions, "    "));
  return lines.join("\n");
}

/**
 * The text `console.log` shows for an `IotlbRecorder`: a heading, then one row per kept event
 * (sequence number, kind, IOVA range, target range for mappings and evictions, permission).
 *
 * @example
 * ```ts
 * import { IotlbRecorder, Permissions } from "../../mod.ts";
 * import { inspectRecorder } from "./inspect_iommu.ts";
 * const rec = new IotlbRecorder(8);
 * rec.onEvent("miss", 0x1000n, 8n, null, Permissions.Read);
 * console.log(inspectRecorder(rec.events(), rec.capacity, rec.dropped));
 * // IotlbRecorder: 1 event (capacity 8, 0 dropped)
 * //   #1  miss  0000000000001000-0000000000001007  Read
 * ```
 */
export function inspectRecorder(events: readonly IotlbEvent[], capacity: number, dropped: number): string {
  const head = `IotlbRecorder: ${plural(events.length, "event")} (capacity ${capacity}, ${dropped} dropped)`;
  if (events.length === 0) return head;
  const rows = events.map((e) => {
    const row = [`#${e.seq}`, e.kind, rangeText(e.iova, e.size)];
    if (e.target !== null) row.push("->", rangeText(e.target, e.size));
    else row.push("", "");
    if (e.kind !== "invalidate") row.push(permissionName(e.perm));
    return row;
  });
  return `${head}\n${columns(rows, "  ")}`;
}

/** The regions of the mmap backend among `regions` (the tables show mapped memory; another backend's regions are left out). */
function mmapRegions(regions: readonly GuestMemoryRegion<unknown>[]): GuestRegionMmap[] {
  return regions.filter((r): r is GuestRegionMmap => r instanceof GuestRegionMmap);
}
