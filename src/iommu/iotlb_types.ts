/**
 * The data an `Iotlb` hands out and reports (entries, counters, JSON, recorded events), apart from
 * the class, so that its inspection and its recorder are written against them without importing it.
 * @module
 */

import type { Permission } from "../core/permissions.ts";

/**
 * One IOTLB entry: `size` bytes from `iova` translate to `target` with `perm`.
 *
 * @example
 * ```ts
 * import { Permissions } from "../../mod.ts";
 * import { Iotlb } from "../../iommu.ts";
 * const tlb = new Iotlb();
 * tlb.setMapping(0x1000, 0x9000, 0x1000, Permissions.Read);
 * const [e] = tlb.entries();
 * console.log(e.iova, e.target, e.size, e.perm); // 4096n 36864n 4096n 1
 * ```
 */
export interface IotlbEntry {
  /** First IOVA. */
  iova: bigint;
  /** Target (physical) address of the first IOVA. */
  target: bigint;
  /** Length in bytes (may exceed 2^53 after merging). */
  size: bigint;
  /** Permissions. */
  perm: Permission;
}

/**
 * Counters of an `Iotlb`, as a snapshot.
 *
 * @example
 * ```ts
 * import { Iotlb } from "../../iommu.ts";
 * console.log(new Iotlb().counters.entries); // 0
 * ```
 */
export interface IotlbCounters {
  /** Successful lookups (including `Iotlb.translateFast` answers). */
  hits: number;
  /** Lookups with at least one unmapped byte. */
  misses: number;
  /** Lookups with at least one byte whose entry denies the access. */
  accessFailures: number;
  /** Entries evicted to stay within `maxEntries`. */
  evictions: number;
  /** Entries now in the table. */
  entries: number;
}

/**
 * The JSON form of an `Iotlb`: entries with hex addresses and permission names, and counters.
 *
 * @example
 * ```ts
 * import { Permissions } from "../../mod.ts";
 * import { Iotlb, type IotlbJson } from "../../iommu.ts";
 * const tlb = new Iotlb();
 * tlb.setMapping(0x1000, 0x9000, 0x1000, Permissions.Read);
 * const json: IotlbJson = tlb.toJSON();
 * console.log(json.entries[0].target); // "0x9000"
 * ```
 */
export interface IotlbJson {
  /** Every entry in IOVA order. */
  entries: Array<{ iova: string; target: string; size: string; perm: string }>;
  /** The counters. */
  counters: IotlbCounters;
  /** The entry limit, present only when the IOTLB is bounded. */
  maxEntries?: number;
  /** The eviction policy, present only when the IOTLB is bounded. */
  eviction?: string;
}

/**
 * What happened: `map` (a `setMapping`), `invalidate` (an `invalidate`, or `invalidateAll` as
 * `[0, 2^64)`), `miss` (a lookup found this range unmapped), `access-failure` (a lookup found it
 * mapped without the permission asked for), `eviction` (an entry dropped to stay within
 * `maxEntries`).
 *
 * @example
 * ```ts
 * import type { IotlbEventKind } from "../../iommu.ts";
 * const traffic = (k: IotlbEventKind) => k === "miss" || k === "access-failure";
 * ```
 */
export type IotlbEventKind = "map" | "invalidate" | "miss" | "access-failure" | "eviction";

/**
 * One recorded event.
 *
 * @example
 * ```ts
 * import { Permissions } from "../../mod.ts";
 * import { Iotlb, IotlbRecorder } from "../../iommu.ts";
 * const tlb = new Iotlb();
 * const rec = new IotlbRecorder(16);
 * tlb.record(rec);
 * tlb.setMapping(0x1000, 0x9000, 0x1000, Permissions.Read);
 * console.log(rec.events()[0]); // { seq: 1, kind: "map", iova: 4096n, size: 4096n, target: 36864n, perm: 1 }
 * ```
 */
export interface IotlbEvent {
  /** 1 for the first event after the recorder was attached, then one more for each event. */
  seq: number;
  /** What happened. */
  kind: IotlbEventKind;
  /** First IOVA of the range. */
  iova: bigint;
  /** Bytes in the range (2^64 for `invalidateAll`). */
  size: bigint;
  /** Target of the first IOVA, for `map` and `eviction`; `null` otherwise. */
  target: bigint | null;
  /**
   * `map` and `eviction`: the entry's permissions; `miss` and `access-failure`: the access that was
   * asked for; `invalidate`: `No`.
   */
  perm: Permission;
}

/**
 * What an `Iotlb` tells the recorder attached with `Iotlb.record` (an `IotlbRecorder`, or any object
 * with these two methods): the entries it holds when attached, then every event as it happens.
 *
 * @example
 * ```ts
 * import type { IotlbObserver } from "./iotlb_types.ts";
 * let maps = 0;
 * const observer: IotlbObserver = { onAttach: () => {}, onEvent: (kind) => void (kind === "map" && maps++) };
 * ```
 */
export interface IotlbObserver {
  /** Called once when attached, with the entries held then. */
  onAttach(entries: IotlbEntry[]): void;
  /** Called for each event; must not throw (the IOTLB's operation has already happened). */
  onEvent(kind: IotlbEventKind, iova: bigint, size: bigint, target: bigint | null, perm: Permission): void;
}
