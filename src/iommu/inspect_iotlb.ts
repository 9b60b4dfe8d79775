/**
 * What `console.log` and `JSON.stringify` show for an `Iotlb` and an `IotlbRecorder`: the IOTLB
 * entries as an mtree-like table (IOVA range, target range, size, permission) and the counters,
 * instead of the objects' internals. Written against the IOTLB's data types, not the class.
 * @module
 */

import { hex } from "../core/format.ts";
import { columns, plural, rangeText, sizeText } from "../core/inspect_text.ts";
import { permissionName } from "../core/permissions.ts";
import type { IotlbCounters, IotlbEntry, IotlbEvent, IotlbJson } from "./iotlb_types.ts";

/** Entries listed before the rest are summarised in one line. */
const MAX_ENTRIES = 32;

/**
 * What the IOTLB text is made of: the public state of an `Iotlb`.
 *
 * @example
 * ```ts
 * import { Iotlb } from "../../iommu.ts";
 * import type { IotlbShape } from "./inspect_iotlb.ts";
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
 * import { Iotlb } from "../../iommu.ts";
 * import { countersText } from "./inspect_iotlb.ts";
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
 * import { Permissions } from "../../mod.ts";
 * import { Iotlb } from "../../iommu.ts";
 * import { entryRows } from "./inspect_iotlb.ts";
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
 * import { Permissions } from "../../mod.ts";
 * import { Iotlb } from "../../iommu.ts";
 * import { inspectIotlb } from "./inspect_iotlb.ts";
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
 * import { Iotlb } from "../../iommu.ts";
 * import { iotlbJson } from "./inspect_iotlb.ts";
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
 * The text `console.log` shows for an `IotlbRecorder`: a heading, then one row per kept event
 * (sequence number, kind, IOVA range, target range for mappings and evictions, permission).
 *
 * @example
 * ```ts
 * import { Permissions } from "../../mod.ts";
 * import { IotlbRecorder } from "../../iommu.ts";
 * import { inspectRecorder } from "./inspect_iotlb.ts";
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
