/**
 * What the address-space picture shows, read from guest memory (and its IOMMU, if any): IOTLB
 * entries, regions and holes, host mappings, dirty pages in each space.
 * @module
 */

import { AtomicBitmap, describeRegion, type GuestMemoryMmap, GuestRegionMmap, type RegionInfo } from "../../../mod.ts";
import { IommuMemory, type IotlbEntry } from "../../../iommu.ts";

/** A dirty run: `[start, end)` in its space. */
export type Run = readonly [start: bigint, end: bigint];

/**
 * The picture's content.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../../mod.ts";
 * import { mapModel } from "./model.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
 * console.log(mapModel(mem).regions.length, mapModel(mem).iommu); // 1 undefined
 * ```
 */
export interface MapModel {
  /** The IOMMU side, when the memory is an `IommuMemory`. */
  iommu: {
    /** Whether translation is on. */
    enabled: boolean;
    /** The IOTLB entries (empty when the IOMMU has no IOTLB). */
    entries: IotlbEntry[];
    /** How writes are logged. */
    logBy: "iova" | "gpa";
    /** Dirty runs of the IOVA-indexed bitmap. */
    dirty: Run[];
    /** Whether the IOMMU has an IOTLB to draw. */
    hasIotlb: boolean;
  } | undefined;
  /** The regions, in guest physical order. */
  regions: RegionInfo[];
  /** Gaps between regions, `[start, size]`. */
  holes: Array<[bigint, bigint]>;
  /** Dirty runs of the regions' bitmaps, by guest physical address. */
  gpaDirty: Run[];
}

function runsOf(bitmap: AtomicBitmap, base: bigint): Run[] {
  return bitmap.dirtyRuns().map(([s, n]) => [base + BigInt(s), base + BigInt(s) + BigInt(n)] as const);
}

/**
 * Reads the picture's content from plain guest memory or guest memory behind an IOMMU.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, Permissions } from "../../../mod.ts";
 * import { IommuMemory, IotlbIommu } from "../../../iommu.ts";
 * import { mapModel } from "./model.ts";
 * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
 * const iommu = new IotlbIommu();
 * iommu.iotlb.setMapping(0x100000, 0x4000, 0x1000, Permissions.Read);
 * console.log(mapModel(new IommuMemory(ram, iommu)).iommu?.entries.length); // 1
 * ```
 */
export function mapModel(mem: GuestMemoryMmap | IommuMemory): MapModel {
  let regions: readonly GuestRegionMmap[];
  let iommu: MapModel["iommu"];
  if (mem instanceof IommuMemory) {
    // The picture draws mapped memory: another backend's regions are left out.
    regions = mem.backend.regions().filter((r): r is GuestRegionMmap => r instanceof GuestRegionMmap);
    const tlb = mem.iommu.iotlb;
    const bitmap = mem.bitmap;
    iommu = {
      enabled: mem.iommuEnabled,
      entries: tlb === undefined ? [] : tlb.entries(),
      logBy: mem.logBy,
      dirty: bitmap instanceof AtomicBitmap ? runsOf(bitmap, 0n) : [],
      hasIotlb: tlb !== undefined,
    };
  } else {
    regions = mem.regions();
  }
  const infos = regions.map(describeRegion);
  const gpaDirty: Run[] = [];
  for (const info of infos) {
    if (info.log instanceof AtomicBitmap) gpaDirty.push(...runsOf(info.log, info.gpa));
  }
  const holes: Array<[bigint, bigint]> = [];
  for (let i = 1; i < regions.length; i++) {
    const end = regions[i - 1]!.lastAddr + 1n;
    if (regions[i]!.startAddr > end) holes.push([end, regions[i]!.startAddr - end]);
  }
  return { iommu, regions: infos, holes, gpaDirty };
}
