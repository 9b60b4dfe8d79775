/**
 * `IotlbRecorder`: an opt-in, bounded record of what happened to an `Iotlb` (mappings,
 * invalidations, misses, access failures, evictions), for debugging a device against its
 * front-end and for rebuilding the IOTLB elsewhere with {@link IotlbRecorder.replay}.
 * @module
 */

import { toLength, U64_LIMIT } from "../core/address.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import { hex } from "../core/format.ts";
import { inspectRecorder } from "./inspect_iotlb.ts";
import { Iotlb } from "./iotlb.ts";
import type { IotlbEntry, IotlbEvent, IotlbEventKind, IotlbObserver } from "./iotlb_types.ts";
import { type Permission, permissionName } from "../core/permissions.ts";

export type { IotlbEvent, IotlbEventKind, IotlbObserver };

/**
 * The JSON form of an {@link IotlbRecorder}.
 *
 * @example
 * ```ts
 * import { IotlbRecorder, type IotlbRecorderJson } from "../../iommu.ts";
 * const json: IotlbRecorderJson = new IotlbRecorder(4).toJSON();
 * console.log(json.capacity); // 4
 * ```
 */
export interface IotlbRecorderJson {
  /** Most events kept. */
  capacity: number;
  /** Events that fell out of the ring (they still count for {@link IotlbRecorder.replay}). */
  dropped: number;
  /** The kept events, oldest first, with hex addresses and permission names. */
  events: Array<{ seq: number; kind: IotlbEventKind; iova: string; size: string; target: string | null; perm: string }>;
}

/** The largest length one `setMapping`/`invalidate` call takes that is a power of two. */
const CHUNK = 2n ** 52n;

/** Maps `size` bytes, in chunks that fit a `number` length; the chunks merge back into one entry. */
function mapRange(tlb: Iotlb, iova: bigint, target: bigint, size: bigint, perm: Permission): void {
  for (let done = 0n; done < size; done += CHUNK) {
    const n = size - done < CHUNK ? size - done : CHUNK;
    tlb.setMapping(iova + done, target + done, Number(n), perm);
  }
}

function unmapRange(tlb: Iotlb, iova: bigint, size: bigint): void {
  if (iova === 0n && size === U64_LIMIT) {
    tlb.invalidateAll();
    return;
  }
  for (let done = 0n; done < size; done += CHUNK) {
    const n = size - done < CHUNK ? size - done : CHUNK;
    tlb.invalidate(iova + done, Number(n));
  }
}

/** Applies an event that changes the table; misses and access failures change nothing. */
function apply(tlb: Iotlb, e: IotlbEvent): void {
  if (e.kind === "map") mapRange(tlb, e.iova, e.target ?? 0n, e.size, e.perm);
  else if (e.kind === "invalidate" || e.kind === "eviction") unmapRange(tlb, e.iova, e.size);
}

/**
 * A bounded ring buffer of {@link IotlbEvent}s. Attach it with `iotlb.record(recorder)`: it then
 * notes every `setMapping`, `invalidate`, `invalidateAll`, eviction, and every miss and access
 * failure a `lookup` reports (the `translateFast` hit path is never recorded and costs nothing
 * extra; its misses go on to `lookup`). Only the newest `capacity` events are kept, but replay
 * stays exact: an event leaving the ring is first folded into a snapshot of the table as of
 * attaching, so {@link IotlbRecorder.replay} always rebuilds exactly the recorded IOTLB's entries.
 *
 * @example
 * ```ts
 * import { Permissions } from "../../mod.ts";
 * import { Iotlb, IotlbRecorder } from "../../iommu.ts";
 * const tlb = new Iotlb();
 * const rec = new IotlbRecorder(2);
 * tlb.record(rec);
 * tlb.setMapping(0x1000, 0x9000, 0x3000, Permissions.ReadWrite);
 * tlb.invalidate(0x2000, 0x1000);
 * tlb.lookup(0x2000, 8, Permissions.Read); // a miss
 * console.log(rec.events().map((e) => e.kind), rec.dropped); // [ "invalidate", "miss" ] 1
 * const copy = new Iotlb();
 * rec.replay(copy);
 * console.log(copy.entries().length); // 2
 * ```
 */
export class IotlbRecorder implements IotlbObserver {
  readonly #capacity: number;
  readonly #ring: IotlbEvent[] = [];
  /** Index of the oldest event once the ring is full. */
  #head = 0;
  #seq = 0;
  #dropped = 0;
  /** The table as of attaching, with every dropped event applied; built when first needed. */
  #base: Iotlb | undefined;
  #initial: IotlbEntry[] = [];

  /**
   * A recorder keeping the newest `capacity` events.
   *
   * @example
   * ```ts
   * import { IotlbRecorder } from "../../iommu.ts";
   * console.log(new IotlbRecorder(1024).capacity); // 1024
   * ```
   * @throws {InvalidArgumentError} for a capacity that is not a positive safe integer.
   */
  constructor(capacity: number) {
    this.#capacity = toLength(capacity, "new IotlbRecorder", "capacity", false);
  }

  /** Most events kept. @example `new IotlbRecorder(8).capacity // 8` */
  get capacity(): number {
    return this.#capacity;
  }

  /** Events now kept (at most {@link IotlbRecorder.capacity}). @example `rec.length` */
  get length(): number {
    return this.#ring.length;
  }

  /** Events that fell out of the ring since attaching. @example `rec.dropped` */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * The kept events, oldest first (copies: changing them changes nothing here).
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb, IotlbRecorder } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * const rec = new IotlbRecorder(8);
   * tlb.record(rec);
   * tlb.invalidateAll();
   * console.log(rec.events()[0].size); // 18446744073709551616n
   * ```
   */
  events(): IotlbEvent[] {
    const ring = this.#ring;
    const out: IotlbEvent[] = [];
    for (let i = 0; i < ring.length; i++) out.push({ ...ring[(this.#head + i) % ring.length] });
    return out;
  }

  /**
   * Rebuilds the recorded IOTLB's entries in `into`, which must be empty: the entries it had when
   * the recorder was attached, then every recorded change in order (evictions as invalidations of
   * the evicted entry). Returns the number of changes applied after the snapshot. `into` should be
   * unbounded: one with `maxEntries` may evict on its own.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb, IotlbRecorder } from "../../iommu.ts";
   * const tlb = new Iotlb({ maxEntries: 1 });
   * const rec = new IotlbRecorder(8);
   * tlb.record(rec);
   * tlb.setMapping(0x1000, 0x5000, 0x1000, Permissions.Read);
   * tlb.setMapping(0x8000, 0x7000, 0x1000, Permissions.Read); // evicts the first
   * const copy = new Iotlb();
   * rec.replay(copy);
   * console.log(copy.entries().map((e) => e.iova)); // [ 32768n ]
   * ```
   * @throws {InvalidArgumentError} if `into` is not an `Iotlb` or is not empty.
   */
  replay(into: Iotlb): number {
    const op = "IotlbRecorder.replay";
    if (!(into instanceof Iotlb)) throw new InvalidArgumentError(op, "into", into, "must be an Iotlb");
    if (into.size !== 0) {
      throw new InvalidArgumentError(op, "into", into.size, "must be an empty Iotlb (it has entries)");
    }
    const start = this.#base === undefined ? this.#initial : this.#base.entries();
    for (const e of start) mapRange(into, e.iova, e.target, e.size, e.perm);
    let applied = 0;
    for (const e of this.events()) {
      if (e.kind === "map" || e.kind === "invalidate" || e.kind === "eviction") {
        apply(into, e);
        applied++;
      }
    }
    return applied;
  }

  /**
   * Forgets every event and takes `entries` as the starting point of replay. Called by
   * `Iotlb.record` when the recorder is attached; calling it yourself makes replay start from
   * whatever you pass.
   *
   * @example
   * ```ts
   * import { IotlbRecorder } from "../../iommu.ts";
   * const rec = new IotlbRecorder(8);
   * rec.onAttach([]);
   * console.log(rec.length); // 0
   * ```
   */
  onAttach(entries: IotlbEntry[]): void {
    this.#ring.length = 0;
    this.#head = 0;
    this.#seq = 0;
    this.#dropped = 0;
    this.#base = undefined;
    this.#initial = entries.map((e) => ({ ...e }));
  }

  /**
   * Records one event. Called by the `Iotlb` the recorder is attached to; an event you add yourself
   * is replayed like a real one.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { IotlbRecorder } from "../../iommu.ts";
   * const rec = new IotlbRecorder(8);
   * rec.onEvent("miss", 0x1000n, 8n, null, Permissions.Read);
   * console.log(rec.events()[0].seq); // 1
   * ```
   */
  onEvent(kind: IotlbEventKind, iova: bigint, size: bigint, target: bigint | null, perm: Permission): void {
    const event: IotlbEvent = { seq: ++this.#seq, kind, iova, size, target, perm };
    const ring = this.#ring;
    if (ring.length < this.#capacity) {
      ring.push(event);
      return;
    }
    const old = ring[this.#head];
    if (old.kind === "map" || old.kind === "invalidate" || old.kind === "eviction") {
      if (this.#base === undefined) {
        this.#base = new Iotlb();
        for (const e of this.#initial) mapRange(this.#base, e.iova, e.target, e.size, e.perm);
        this.#initial = [];
      }
      apply(this.#base, old);
    }
    ring[this.#head] = event;
    this.#head = (this.#head + 1) % this.#capacity;
    this.#dropped++;
  }

  /**
   * The capacity, dropped count and kept events with hex addresses.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { IotlbRecorder } from "../../iommu.ts";
   * const rec = new IotlbRecorder(8);
   * rec.onEvent("miss", 0x1000n, 8n, null, Permissions.Read);
   * console.log(JSON.stringify(rec.toJSON().events[0])); // {"seq":1,"kind":"miss","iova":"0x1000","size":"0x8","target":null,"perm":"Read"}
   * ```
   */
  toJSON(): IotlbRecorderJson {
    return {
      capacity: this.#capacity,
      dropped: this.#dropped,
      events: this.events().map((e) => ({
        seq: e.seq,
        kind: e.kind,
        iova: hex(e.iova),
        size: hex(e.size),
        target: e.target === null ? null : hex(e.target),
        perm: permissionName(e.perm),
      })),
    };
  }

  /** The events as a table, for `console.log`. @example `console.log(recorder)` */
  [Symbol.for("Deno.customInspect")](): string {
    return inspectRecorder(this.events(), this.#capacity, this.#dropped);
  }

  /** The same text for Node's and Bun's `util.inspect`. @example `console.log(recorder)` */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return inspectRecorder(this.events(), this.#capacity, this.#dropped);
  }
}
