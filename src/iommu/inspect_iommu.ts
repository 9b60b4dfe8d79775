/**
 * What `console.log` and `JSON.stringify` show for an `IommuMemory`: translation state, the
 * dirty-log addressing, the IOTLB (see `inspect_iotlb.ts`), the miss-path counters and the physical
 * memory behind, instead of the object's internals.
 * @module
 */

import { AtomicBitmap, type AtomicBitmapJson } from "../bitmap/atomic_bitmap.ts";
import { dirtyPageCount } from "../bitmap/inspect_bitmap.ts";
import type { DirtyLog } from "../core/dirty_log.ts";
import { plural, sizeText } from "../core/inspect_text.ts";
import type { GuestMemoryRegion } from "../core/guest_memory_backend.ts";
import { GuestRegionMmap } from "../mmap/guest_region_mmap.ts";
import { type GuestMemoryJson, inspectMemory, memoryJson, memoryRows } from "../mmap/inspect_memory.ts";
import { inspectIotlb, iotlbJson, type IotlbShape } from "./inspect_iotlb.ts";
import type { Iommu, IotlbIommuCounters } from "./iommu.ts";
import type { IotlbJson } from "./iotlb_types.ts";

/**
 * What inspection reads of an `IommuMemory`: its public state (a structural type, so that this
 * module and the class do not import each other).
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
 * import type { InspectedIommuMemory } from "./inspect_iommu.ts";
 * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
 * const seen: InspectedIommuMemory = new IommuMemory(ram, new IotlbIommu());
 * ```
 */
export interface InspectedIommuMemory {
  /** Whether translation is on. */
  readonly iommuEnabled: boolean;
  /** How writes through the IOMMU are logged. */
  readonly logBy: "iova" | "gpa";
  /** The IOVA-indexed dirty log, if any. */
  readonly bitmap: DirtyLog | undefined;
  /** The IOMMU. */
  readonly iommu: Iommu;
  /** The physical memory behind it. */
  readonly backend: { regions(): readonly GuestMemoryRegion<unknown>[] };
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

function iommuType(mem: InspectedIommuMemory): string {
  const iommu = mem.iommu as object;
  return iommu.constructor?.name ?? "Iommu";
}

function missPath(mem: InspectedIommuMemory): { counters: IotlbIommuCounters | null; pendingRequests: number | null } {
  const m = mem.iommu as MissPath;
  const c = m.counters;
  const counters = c !== null && typeof c === "object" && typeof c.asyncRequests === "number" ? c : null;
  return { counters, pendingRequests: typeof m.pendingRequests === "number" ? m.pendingRequests : null };
}

function shapeOf(mem: InspectedIommuMemory): IotlbShape | undefined {
  const tlb = mem.iommu.iotlb as Partial<IotlbShape> | undefined;
  return tlb !== undefined && typeof tlb.entries === "function" ? tlb as IotlbShape : undefined;
}

/**
 * The JSON form of an `IommuMemory`: translation state, dirty-log addressing and bitmap, IOMMU
 * counters, IOTLB and physical memory.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
 * import { iommuMemoryJson } from "./inspect_iommu.ts";
 * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
 * console.log(iommuMemoryJson(new IommuMemory(ram, new IotlbIommu())).iommu.type); // "IotlbIommu"
 * ```
 */
export function iommuMemoryJson(mem: InspectedIommuMemory): IommuMemoryJson {
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

function dirtyLogText(mem: InspectedIommuMemory): string {
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
 * import { GuestMemoryMmap } from "../../mod.ts";
 * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
 * import { inspectIommuMemory } from "./inspect_iommu.ts";
 * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
 * console.log(inspectIommuMemory(new IommuMemory(ram, new IotlbIommu())).split("\n")[0]);
 * // IommuMemory: translation on, dirty log by IOVA, but no bitmap given (…)
 * ```
 */
export function inspectIommuMemory(mem: InspectedIommuMemory): string {
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

/** The mmap regions among `regions`: the ones the guest memory table can describe. */
function mmapRegions(regions: readonly GuestMemoryRegion<unknown>[]): GuestRegionMmap[] {
  return regions.filter((r): r is GuestRegionMmap => r instanceof GuestRegionMmap);
}
