/**
 * The IOTLB: a byte-granular cache of IOVA → target translations with permissions (vm-memory's
 * `Iotlb`), keyed over the whole u64 IOVA space, with optional size limits and eviction like the
 * kernel's vhost IOTLB and DPDK, counters, and an allocation-free fast path for scalar accesses.
 * @module
 */

import { type AddressLike, toAddress, toLength, U64_LIMIT } from "../core/address.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import type { IovaRange } from "./iommu_errors.ts";
import { hex } from "../core/format.ts";
import { inspectIotlb, iotlbJson } from "./inspect_iotlb.ts";
import type { IotlbCounters, IotlbEntry, IotlbJson, IotlbObserver } from "./iotlb_types.ts";
import { type Permission, toPermission } from "../core/permissions.ts";
import type { IotlbHit } from "./iotlb_hit.ts";
import { assign, carve } from "./range_edit.ts";
import { RangeEntry, RangeTable } from "./range_table.ts";
import { EXACT_LIMIT, U64Pair } from "./u64_key.ts";
import { bigIntOf } from "./exact_bigint.ts";

export type { IotlbCounters, IotlbEntry, IotlbJson };

/**
 * Options of an {@link Iotlb}.
 *
 * @example
 * ```ts
 * import { Iotlb, type IotlbOptions } from "../../iommu.ts";
 * const options: IotlbOptions = { maxEntries: 2048, eviction: "lru" };
 * const tlb = new Iotlb(options);
 * ```
 */
export interface IotlbOptions {
  /** Most entries kept; an insert beyond it evicts others. Default: unbounded. */
  maxEntries?: number;
  /**
   * Which entry goes when the table is full: `"fifo"` the oldest inserted (the default, like the
   * kernel's `VHOST_IOTLB_FLAG_RETIRE`), `"random"` one picked by a seeded generator, `"lru"` the
   * least recently hit. The entry just inserted is never evicted.
   */
  eviction?: "fifo" | "random" | "lru";
  /** Seed of the `"random"` policy, an integer in [0, 2^32): the same seed evicts the same entries. */
  seed?: number;
}

/**
 * The answer of {@link Iotlb.lookup}: the mapped ranges, or every failing sub-range.
 *
 * @example
 * ```ts
 * import { Permissions } from "../../mod.ts";
 * import { Iotlb } from "../../iommu.ts";
 * const r = new Iotlb().lookup(0x1000, 8, Permissions.Read);
 * if (!r.ok) console.log(r.misses); // [ { base: 4096n, length: 8 } ]
 * ```
 */
export type IotlbLookup =
  /** Mapped (physical) ranges in IOVA order, one per entry touched. */
  | { ok: true; ranges: IovaRange[] }
  /** Unmapped sub-ranges and sub-ranges whose entry denies the access, each clipped and ascending. */
  | { ok: false; misses: IovaRange[]; accessFails: IovaRange[] };

const POLICIES = ["fifo", "random", "lru"] as const;
const RANDOM = 1, LRU = 2;
const DEFAULT_SEED = 0x9e3779b9;

// The translateFast cache: SLOTS entries picked by IOVA page number, each SLOT doubles:
const SLOTS = 64;
const SLOT = 8;
const FROM = 0; // first IOVA it answers for (the entry's start)
const TO = 1; // end of what it answers for: the entry's end, clipped so IOVA and target stay <= 2^53
const DIFF = 2; // target − IOVA
const ALLOWS = 3; // permission bits
const STAMP_AT = 4; // the entry's handle in the range table, to stamp its use
/**
 * IOVA → 4 KiB page number, exactly (a power of two), for the number-keyed caches of the IOMMU path
 * (this IOTLB's and `IommuMemory`'s). Multiplying keeps addresses up to 2^53 exact, where `>>> 12`
 * would cut them to 32 bits. Internal.
 */
export const IOVA_PAGE_SCALE = 2 ** -12;
// Hot paths use a module-local copy: V8 folds a local const into the code, but loads an exported or
// imported binding from its cell on every use (a 4.6x slower loop in a micro-benchmark).
const PAGE_SCALE = IOVA_PAGE_SCALE;

/**
 * An IOTLB: byte-granular IOVA → target translations with permissions.
 *
 * `setMapping` overwrites (and splits) whatever it overlaps and merges with neighbours that
 * continue the same translation with the same permissions; `invalidate` removes exactly a range;
 * `lookup` reports the mapped ranges or every miss and access failure; `translateFast` answers a
 * single-entry access with a number and no allocation. IOVAs above 2^53 work exactly when passed
 * as bigint; a mapping may end exactly at 2^64.
 *
 * @example
 * ```ts
 * import { Permissions } from "../../mod.ts";
 * import { Iotlb } from "../../iommu.ts";
 * const tlb = new Iotlb();
 * tlb.setMapping(0x10000, 0x200000, 0x1000, Permissions.ReadWrite);
 * console.log(tlb.translateFast(0x10008, 8, Permissions.Read)); // 2097160
 * const r = tlb.lookup(0x10ff0, 0x20, Permissions.Write);
 * console.log(r.ok ? r.ranges : r.misses); // [ { base: 69632n, length: 16 } ]  (the unmapped tail)
 * ```
 */
export class Iotlb {
  readonly #table: RangeTable;
  readonly #max: number;
  readonly #policy: number;
  readonly #lru: boolean;
  #rng: number;
  #tick = 0;
  #generation = 0;
  #hits = 0;
  #misses = 0;
  #accessFailures = 0;
  #evictions = 0;
  // Entries translateFast answered from (see SLOT), one per slot. A change empties them
  // (TO = -Infinity matches nothing), if any was filled since the last change.
  readonly #cache = new Float64Array(SLOTS * SLOT).fill(-Infinity);
  #cacheFilled = false;
  // Opt-in event recording; checked only on slow paths (changes and failed lookups).
  #recorder: IotlbObserver | undefined = undefined;
  // Told after each change (see watch); undefined while nobody watches, so a change costs one check.
  #watchers: Set<() => void> | undefined = undefined;
  // The mapping setMapping writes; the range the other calls work on (set by #range); the pairs a
  // lookup walks with; the entry entries() reads. Reused: a call allocates none of them.
  readonly #entry = new RangeEntry();
  readonly #from = new U64Pair();
  readonly #to = new U64Pair();
  readonly #cur = new U64Pair();
  readonly #at = new U64Pair();
  readonly #over = new U64Pair();
  readonly #stop = new U64Pair();
  readonly #diff = new U64Pair();
  readonly #read = new RangeEntry();

  /**
   * Creates an empty IOTLB.
   *
   * @example
   * ```ts
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb({ maxEntries: 2048, eviction: "random", seed: 7 });
   * console.log(tlb.size); // 0
   * ```
   * @throws {InvalidArgumentError} for options that are not an object, a `maxEntries` that is
   *   not a positive safe integer, an unknown `eviction`, or a seed outside [0, 2^32).
   */
  constructor(options: IotlbOptions = {}) {
    const op = "new Iotlb";
    if (typeof options !== "object" || options === null) {
      throw new InvalidArgumentError(op, "options", options, "must be an object");
    }
    const { maxEntries, eviction = "fifo", seed = DEFAULT_SEED } = options;
    this.#max = maxEntries === undefined ? Infinity : toLength(maxEntries, op, "options.maxEntries", false);
    const policy = (POLICIES as readonly unknown[]).indexOf(eviction);
    if (policy < 0) {
      throw new InvalidArgumentError(op, "options.eviction", eviction, 'must be "fifo", "random" or "lru"');
    }
    if (!Number.isSafeInteger(seed) || seed < 0 || seed >= 2 ** 32) {
      throw new InvalidArgumentError(op, "options.seed", seed, "must be an integer in [0, 2^32)");
    }
    this.#policy = policy;
    this.#lru = policy === LRU;
    // Only a bounded table evicts, so only it keeps the stamps eviction orders by.
    this.#table = new RangeTable(this.#max !== Infinity);
    this.#rng = seed;
  }

  /**
   * Calls `watcher` after every change of this IOTLB (`setMapping` with any eviction it causes,
   * `invalidate`, `invalidateAll`), once the change is complete: for translation guards that must
   * act at the change rather than at their next use (detaching the views they leased). A watcher
   * must not change the IOTLB. Watching twice with one function watches once.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * let changes = 0;
   * const onChange = () => changes++;
   * tlb.watch(onChange);
   * tlb.setMapping(0x1000, 0x5000, 0x1000, Permissions.Read);
   * tlb.unwatch(onChange);
   * tlb.invalidateAll();
   * console.log(changes); // 1
   * ```
   */
  watch(watcher: () => void): void {
    if (typeof watcher !== "function") {
      throw new InvalidArgumentError("Iotlb.watch", "watcher", watcher, "must be a function");
    }
    (this.#watchers ??= new Set()).add(watcher);
  }

  /**
   * Stops calling `watcher` (see {@link Iotlb.watch}); nothing happens if it was not watching.
   *
   * @example
   * ```ts
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * const onChange = () => {};
   * tlb.watch(onChange);
   * tlb.unwatch(onChange);
   * console.log(tlb.watcherCount); // 0
   * ```
   */
  unwatch(watcher: () => void): void {
    if (typeof watcher !== "function") {
      throw new InvalidArgumentError("Iotlb.unwatch", "watcher", watcher, "must be a function");
    }
    // Back to undefined when empty: the mutation paths test only that, not the set's size.
    if (this.#watchers?.delete(watcher) && this.#watchers.size === 0) this.#watchers = undefined;
  }

  /**
   * How many functions {@link Iotlb.watch} calls, e.g. to see that guards stopped watching.
   *
   * @example
   * ```ts
   * import { Iotlb } from "../../iommu.ts";
   * console.log(new Iotlb().watcherCount); // 0
   * ```
   */
  get watcherCount(): number {
    return this.#watchers?.size ?? 0;
  }

  /**
   * Maps `[iova, iova + len)` to `[target, target + len)` with `perm`, replacing whatever part of
   * the range was mapped before (entries it crosses are split, their outer parts keep their
   * translation). Merges with neighbours contiguous in both spaces with equal permissions.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * tlb.setMapping(0x1000, 0x5000, 0x1000, Permissions.Read);
   * tlb.setMapping(0x2000, 0x6000, 0x1000, Permissions.Read); // continues it: one entry
   * console.log(tlb.size); // 1
   * ```
   * @throws {InvalidArgumentError} for a bad address, length or permission, a zero length, or an
   *   IOVA or target range that would run past 2^64 (ending exactly at 2^64 is fine).
   */
  setMapping(iova: AddressLike, target: AddressLike, len: number, perm: Permission): void {
    const op = "Iotlb.setMapping";
    const entry = this.#entry;
    if (
      typeof iova === "number" && typeof target === "number" && typeof len === "number" &&
      Number.isSafeInteger(iova) && iova >= 0 && Number.isSafeInteger(target) && target >= 0 &&
      Number.isSafeInteger(len) && len > 0 && iova <= EXACT_LIMIT - len && target <= EXACT_LIMIT - len
    ) {
      entry.start.setNumber(iova);
      entry.end.setNumber(iova + len);
      entry.diff.setNumber(target - iova);
    } else {
      this.#exactMapping(iova, target, len);
    }
    entry.perm = toPermission(perm, op, "perm");
    entry.stamp = ++this.#tick;
    const table = this.#table;
    assign(table, entry);
    this.#changed();
    this.#recorder?.onEvent("map", BigInt(iova), BigInt(len), BigInt(target), entry.perm as Permission);
    if (table.size > this.#max) this.#evict(entry.start);
    if (this.#watchers !== undefined) this.#notify();
  }

  /**
   * Removes the translations of exactly `[iova, iova + len)`; entries partly inside keep their
   * outer parts with their translation.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * tlb.setMapping(0x1000, 0x9000, 0x1000, Permissions.Read);
   * tlb.invalidate(0x1400, 0x100);
   * console.log(tlb.entries().map((e) => [e.iova, e.target, e.size])); // [[4096n, 36864n, 1024n], [5376n, 38144n, 2816n]]
   * ```
   * @throws {InvalidArgumentError} for a bad address or length, a zero length, or a range running past 2^64.
   */
  invalidate(iova: AddressLike, len: number): void {
    this.#range("Iotlb.invalidate", iova, len);
    const table = this.#table;
    carve(table, this.#from, this.#to);
    this.#changed();
    this.#recorder?.onEvent("invalidate", BigInt(iova), BigInt(len), null, 0);
    // Removing the middle of an entry splits it in two: a bounded table must evict to stay bounded.
    if (table.size > this.#max) this.#evict(undefined);
    if (this.#watchers !== undefined) this.#notify();
  }

  /**
   * Removes every translation.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * tlb.setMapping(0, 0, 0x1000, Permissions.Read);
   * tlb.invalidateAll();
   * console.log(tlb.size); // 0
   * ```
   */
  invalidateAll(): void {
    this.#table.clear();
    this.#changed();
    this.#recorder?.onEvent("invalidate", 0n, U64_LIMIT, null, 0);
    if (this.#watchers !== undefined) this.#notify();
  }

  /**
   * Translates `[iova, iova + len)` for `access`. Never throws on a miss (misses are normal
   * traffic): the answer is either every mapped range, clipped, one per entry touched, in IOVA
   * order, or every unmapped sub-range (`misses`) and every part of an entry that denies the access
   * (`accessFails`), clipped and ascending. `access` No only asks that the range be mapped.
   *
   * A zero length is answered as vm-memory 0.18 answers it (its range map's view of an empty range
   * `[iova, iova)`): no ranges, unless an entry that starts before `iova` and ends after it denies
   * the access; that is then an access failure of length 0 at `iova`. Nothing is unmapped in an
   * empty range, so it never misses.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * tlb.setMapping(10, 110, 10, Permissions.Read);
   * tlb.setMapping(30, 130, 10, Permissions.Write);
   * const r = tlb.lookup(0, 40, Permissions.Read);
   * if (!r.ok) console.log(r.misses.length, r.accessFails); // 2 [ { base: 30n, length: 10 } ]
   * ```
   * @throws {InvalidArgumentError} for a bad address, length or access, or a range running past 2^64.
   */
  lookup(iova: AddressLike, len: number, access: Permission): IotlbLookup {
    // translateFast's answer, from its cache or else its search: a target below 2^53 inside one
    // entry. Whatever that refuses (bad arguments too) takes #lookupGeneral, which counts and
    // explains it. This method stays small enough for V8 to inline, so the caller's use of the
    // answer is compiled with it (and objects that do not escape are not allocated).
    if (
      typeof iova === "number" && Number.isSafeInteger(iova) && iova >= 0 && Number.isSafeInteger(len) && len > 0 &&
      iova <= EXACT_LIMIT - len && (access === 0 || access === 1 || access === 2 || access === 3)
    ) {
      const c = this.#cache;
      const s = ((iova * PAGE_SCALE) & (SLOTS - 1)) * SLOT;
      let target: number;
      if (iova < c[s + FROM] || iova > c[s + TO] - len || (c[s + ALLOWS] & access) !== access) {
        target = this.#fill(iova, len, access, s);
      } else {
        if (this.#lru) this.#table.setStamp(c[s + STAMP_AT], ++this.#tick);
        this.#hits++;
        target = iova + c[s + DIFF];
      }
      if (target >= 0) return { ok: true, ranges: [{ base: bigIntOf(target), length: len }] };
    }
    return this.#lookupGeneral(iova, len, access);
  }

  /** {@link Iotlb.lookup} of anything its first line does not answer. */
  #lookupGeneral(iova: AddressLike, len: number, access: Permission): IotlbLookup {
    const op = "Iotlb.lookup";
    if (len === 0) return this.#lookupEmpty(iova, access, op);
    this.#range(op, iova, len);
    const want = toPermission(access, op, "access");
    const from = this.#from, to = this.#to;
    const t = this.#table;
    // A number IOVA was searched for by lookup's first lines already; a second search would only
    // slow down misses, the common way here (its rare gain: a hit whose target is past 2^53).
    if (typeof iova !== "number" && to.rounded <= EXACT_LIMIT && to.residual === 0) {
      const hit = this.#lookupOne(from.rounded, len, want);
      if (hit !== undefined) return hit;
    }
    const ranges: IovaRange[] = [];
    const used: number[] | undefined = this.#lru ? [] : undefined;
    let misses: IovaRange[] | undefined;
    let fails: IovaRange[] | undefined;
    const cur = this.#cur.copy(from); // the first byte not yet accounted for
    for (t.locate(from); !t.atEnd(); t.advance()) {
      const h = t.here();
      const at = t.readStart(h, this.#at);
      if (!at.isBelow(to)) break;
      const over = this.#over.copy(cur); // the entry's start or the request's, whichever is later
      if (cur.isBelow(at)) {
        (misses ??= []).push({ base: cur.toBigInt(), length: at.distanceFrom(cur) });
        over.copy(at);
      }
      const stop = t.readEnd(h, this.#stop);
      if (to.isBelow(stop)) stop.copy(to);
      const length = stop.distanceFrom(over);
      if ((t.perm(h) & want) !== want) {
        (fails ??= []).push({ base: over.toBigInt(), length });
      } else if (misses === undefined && fails === undefined) {
        ranges.push({ base: over.plus(t.readDiff(h, this.#diff)), length });
        used?.push(h);
      }
      cur.copy(stop);
    }
    if (cur.isBelow(to)) (misses ??= []).push({ base: cur.toBigInt(), length: to.distanceFrom(cur) });
    if (misses !== undefined || fails !== undefined) {
      if (misses !== undefined) this.#misses++;
      if (fails !== undefined) this.#accessFailures++;
      const recorder = this.#recorder;
      if (recorder !== undefined) {
        for (const m of misses ?? []) recorder.onEvent("miss", m.base, BigInt(m.length), null, want);
        for (const f of fails ?? []) recorder.onEvent("access-failure", f.base, BigInt(f.length), null, want);
      }
      return { ok: false, misses: misses ?? [], accessFails: fails ?? [] };
    }
    this.#hits++;
    if (used !== undefined) { for (const h of used) t.setStamp(h, ++this.#tick); }
    return { ok: true, ranges };
  }

  /**
   * {@link Iotlb.lookup} without counting it: for checks made on behalf of an earlier translation
   * (a slice asking whether it is still valid), which are not new traffic. LRU stamps are updated,
   * since the entries are in use.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * tlb.setMapping(0, 0x1000, 0x1000, Permissions.Read);
   * console.log(tlb.probe(0, 8, Permissions.Read).ok, tlb.counters.hits); // true 0
   * ```
   */
  probe(iova: AddressLike, len: number, access: Permission): IotlbLookup {
    const hits = this.#hits, misses = this.#misses, fails = this.#accessFailures, recorder = this.#recorder;
    if (len !== 0) this.#range("Iotlb.probe", iova, len); // refused under this call's name, not lookup's
    else toAddress(iova, "Iotlb.probe", "iova");
    toPermission(access, "Iotlb.probe", "access");
    this.#recorder = undefined; // nor recorded: it is not traffic
    try {
      return this.lookup(iova, len, access);
    } finally {
      this.#hits = hits;
      this.#misses = misses;
      this.#accessFailures = fails;
      this.#recorder = recorder;
    }
  }

  /**
   * The fast path of scalar accesses: the target address of `iova` as a number when
   * `[iova, iova + len)` lies inside ONE entry that allows `access`, with both that IOVA range and
   * its target range at or below 2^53; otherwise -1 (also for arguments that are not
   * non-negative safe integers). Never throws, allocates nothing and uses no BigInt. Counts a hit
   * when it answers; counts nothing on -1, since the caller then asks {@link Iotlb.lookup}.
   *
   * With `out`, the entry that answered is written there (see {@link IotlbHit}) for a caller that
   * caches translations itself (`IommuMemory`): the table is searched directly, and this IOTLB's
   * own cache of recent entries is neither read nor filled, so that a translation is cached in one
   * place only. Without `out`, recent entries are answered from that cache.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb, IotlbHit } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * tlb.setMapping(0x2000, 0x8000, 0x1000, Permissions.Read);
   * console.log(tlb.translateFast(0x2010, 4, Permissions.Read)); // 32784
   * console.log(tlb.translateFast(0x2ffe, 4, Permissions.Read)); // -1 (runs past the entry)
   * const hit = new IotlbHit();
   * tlb.translateFast(0x2ff8, 8, Permissions.Read, hit);
   * console.log(hit.start, hit.end, hit.start + hit.diff); // 8192 12288 32768
   * ```
   */
  translateFast(iova: number, len: number, access: Permission, out?: IotlbHit): number {
    // Number.isInteger and typeof first: comparing an object would call its valueOf.
    if (!(Number.isInteger(len) && Number.isInteger(iova) && typeof access === "number" && len > 0)) return -1;
    if (out !== undefined) return this.#search(iova, len, access, -1, out);
    const c = this.#cache;
    // The slot of iova's 4 KiB page; `&` keeps the low bits of the truncated page number, which is
    // exact for any safe integer (it is a hash, not an address). One slot check, not a last-hit
    // check first: with a few pages in turn, a last-hit check mostly fails, and mispredicts.
    const s = ((iova * PAGE_SCALE) & (SLOTS - 1)) * SLOT;
    if (iova < c[s + FROM] || iova > c[s + TO] - len || (c[s + ALLOWS] & access) !== access) {
      return this.#search(iova, len, access, s, undefined);
    }
    if (this.#lru) this.#table.setStamp(c[s + STAMP_AT], ++this.#tick);
    this.#hits++;
    return iova + c[s + DIFF];
  }

  /**
   * The bulk counterpart of {@link Iotlb.translateFast}: writes the mapped ranges of
   * `[iova, iova + len)` into `out` as `(target, length)` pairs, one per entry touched, and returns
   * how many pairs it wrote; -1 when the request is not fully mapped with `access`, when an IOVA or
   * target is not a number below 2^53, or when `out` has no room (the caller then asks
   * {@link Iotlb.lookup}). Allocates nothing and uses no BigInt; counts a hit when it answers.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * tlb.setMapping(0x1000, 0x8000, 0x1000, Permissions.Read);
   * tlb.setMapping(0x2000, 0x4000, 0x1000, Permissions.Read);
   * const out = new Float64Array(8);
   * console.log(tlb.translateRanges(0x1800, 0x1000, Permissions.Read, out), [...out.subarray(0, 4)]); // 2 [ 34816, 2048, 16384, 2048 ]
   * ```
   */
  translateRanges(iova: number, len: number, access: Permission, out: Float64Array): number {
    if (
      !(Number.isSafeInteger(iova) && Number.isSafeInteger(len) && iova >= 0 && len > 0 && iova <= EXACT_LIMIT - len) ||
      !(access === 0 || access === 1 || access === 2 || access === 3) || !(out instanceof Float64Array)
    ) return -1;
    const t = this.#table;
    const end = iova + len;
    const from = this.#cur.setNumber(iova);
    let cur = iova, n = 0;
    for (t.locate(from); !t.atEnd(); t.advance()) {
      const h = t.here();
      const start = t.start(h);
      if (start >= end) break;
      // A gap before this entry is a miss; a start with a residual lies above 2^53, past `end`.
      if (start > cur || !t.startIsExact(h)) return -1;
      if ((t.perm(h) & access) !== access) return -1;
      const diff = t.diff(h);
      if (!t.diffIsExact(h)) return -1;
      // An end at or above 2^53 rounds to at least 2^53 >= end, so clipping to `end` is exact.
      const stop = Math.min(t.end(h), end);
      const target = cur + diff;
      if (target < 0 || target > EXACT_LIMIT - (stop - cur) || 2 * n + 2 > out.length) return -1;
      out[2 * n] = target;
      out[2 * n + 1] = stop - cur;
      n++;
      cur = stop;
      if (cur >= end) break;
    }
    if (cur < end) return -1;
    this.#hits++;
    if (this.#lru) {
      // Stamp the entries used, as lookup does; rare enough (LRU tables only) to walk again.
      for (t.locate(from); !t.atEnd(); t.advance()) {
        const h = t.here();
        if (t.start(h) >= end) break;
        t.setStamp(h, ++this.#tick);
      }
    }
    return n;
  }

  /**
   * A sorted snapshot of the entries.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * tlb.setMapping(2n ** 64n - 0x1000n, 0, 0x1000, Permissions.Read); // ends exactly at 2^64
   * console.log(tlb.entries()[0].iova); // 18446744073709547520n
   * ```
   */
  entries(): IotlbEntry[] {
    const t = this.#table;
    const out: IotlbEntry[] = [];
    for (t.seekFirst(); !t.atEnd(); t.advance()) out.push(this.#entryAt(t.here()));
    return out;
  }

  /**
   * The entries that overlap `[iova, iova + len)`, whole (not clipped), in IOVA order: for
   * diagnostics such as `IommuMemory.explain`. Counts nothing.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * tlb.setMapping(0x1000, 0x8000, 0x1000, Permissions.Read);
   * tlb.setMapping(0x3000, 0x9000, 0x1000, Permissions.Write);
   * console.log(tlb.entriesIn(0x1800, 0x2000).map((e) => e.iova)); // [ 4096n, 12288n ]
   * ```
   * @throws {InvalidArgumentError} for a bad address or length, a zero length, or a range past 2^64.
   */
  entriesIn(iova: AddressLike, len: number): IotlbEntry[] {
    this.#range("Iotlb.entriesIn", iova, len);
    const t = this.#table;
    const out: IotlbEntry[] = [];
    for (t.locate(this.#from); !t.atEnd() && t.startsBelow(t.here(), this.#to); t.advance()) {
      out.push(this.#entryAt(t.here()));
    }
    return out;
  }

  /**
   * Number of entries.
   *
   * @example
   * ```ts
   * import { Iotlb } from "../../iommu.ts";
   * console.log(new Iotlb().size); // 0
   * ```
   */
  get size(): number {
    return this.#table.size;
  }

  /**
   * A snapshot of the counters.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * tlb.lookup(0, 1, Permissions.Read);
   * console.log(tlb.counters.misses); // 1
   * ```
   */
  get counters(): IotlbCounters {
    return {
      hits: this.#hits,
      misses: this.#misses,
      accessFailures: this.#accessFailures,
      evictions: this.#evictions,
      entries: this.#table.size,
    };
  }

  /**
   * Sets hits, misses, access failures and evictions back to zero.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * tlb.lookup(0, 1, Permissions.Read);
   * tlb.resetCounters();
   * console.log(tlb.counters.misses); // 0
   * ```
   */
  resetCounters(): void {
    this.#hits = 0;
    this.#misses = 0;
    this.#accessFailures = 0;
    this.#evictions = 0;
  }

  /**
   * A number that increases on every change (each `setMapping`, `invalidate`, `invalidateAll` and
   * eviction), so callers can cache translations and notice when to drop them.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * const before = tlb.generation;
   * tlb.setMapping(0, 0, 1, Permissions.Read);
   * console.log(tlb.generation > before); // true
   * ```
   */
  get generation(): number {
    return this.#generation;
  }

  /**
   * The entries (hex addresses and sizes, permission names) and counters.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * tlb.setMapping(0x1000, 0x9000, 0x1000, Permissions.ReadWrite);
   * console.log(JSON.stringify(tlb.toJSON().entries)); // [{"iova":"0x1000","target":"0x9000","size":"0x1000","perm":"ReadWrite"}]
   * ```
   */
  toJSON(): IotlbJson {
    return iotlbJson(this);
  }

  /**
   * The entry limit: `Infinity` unless `maxEntries` was given.
   *
   * @example
   * ```ts
   * import { Iotlb } from "../../iommu.ts";
   * console.log(new Iotlb({ maxEntries: 2048 }).maxEntries, new Iotlb().maxEntries); // 2048 Infinity
   * ```
   */
  get maxEntries(): number {
    return this.#max;
  }

  /**
   * The eviction policy used at the limit.
   *
   * @example
   * ```ts
   * import { Iotlb } from "../../iommu.ts";
   * console.log(new Iotlb({ maxEntries: 8, eviction: "lru" }).eviction); // "lru"
   * ```
   */
  get eviction(): "fifo" | "random" | "lru" {
    return POLICIES[this.#policy];
  }

  /**
   * Starts recording events into `recorder` (replacing any recorder attached before), which
   * restarts it from this IOTLB's current entries; `undefined` stops recording. Recording never
   * touches the hit path (`translateFast`, successful `lookup`s).
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { Iotlb, IotlbRecorder } from "../../iommu.ts";
   * const tlb = new Iotlb();
   * const rec = new IotlbRecorder(256);
   * tlb.record(rec);
   * tlb.setMapping(0x1000, 0x9000, 0x1000, Permissions.Read);
   * tlb.record(undefined);
   * console.log(rec.length); // 1
   * ```
   */
  record(recorder: IotlbObserver | undefined): void {
    if (recorder !== undefined && (recorder === null || typeof recorder.onEvent !== "function")) {
      throw new InvalidArgumentError("Iotlb.record", "recorder", recorder, "must be an IotlbRecorder or undefined");
    }
    recorder?.onAttach(this.entries());
    this.#recorder = recorder;
  }

  /** The entries as a table with the counters, for `console.log`. @example `console.log(tlb)` */
  [Symbol.for("Deno.customInspect")](): string {
    return inspectIotlb(this);
  }

  /** The same text for Node's and Bun's `util.inspect`. @example `console.log(tlb)` */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return inspectIotlb(this);
  }

  /**
   * The entry that serves `[iova, iova + len)` for `access` (arguments already checked) with its
   * target range below 2^53, or -1. An end at or above 2^53 rounds to >= 2^53 >= iova + len, so the
   * rounded end compares exactly; a usable diff is below 2^53 in size, hence exact.
   */
  #serving(iova: number, len: number, access: number): number {
    const t = this.#table;
    const h = t.floor(iova);
    if (h < 0 || iova + len > t.end(h) || (t.perm(h) & access) !== access) return -1;
    return iova + t.diff(h) > EXACT_LIMIT - len ? -1 : h;
  }

  /** #search for arguments lookup has checked: the table's entry for `iova`, into cache slot `s`. */
  #fill(iova: number, len: number, access: number, s: number): number {
    const h = this.#serving(iova, len, access);
    if (h < 0) return -1;
    const t = this.#table, diff = t.diff(h), c = this.#cache;
    c[s + FROM] = t.start(h);
    c[s + TO] = Math.min(t.end(h), EXACT_LIMIT, EXACT_LIMIT - diff);
    c[s + DIFF] = diff;
    c[s + ALLOWS] = t.perm(h);
    c[s + STAMP_AT] = h;
    this.#cacheFilled = true;
    if (this.#lru) t.setStamp(h, ++this.#tick);
    this.#hits++;
    return iova + diff;
  }

  /**
   * translateFast past its cache: the table's entry for `iova`, written to cache slot `s` (or to
   * `out`, with `s` unused).
   */
  #search(iova: number, len: number, access: number, s: number, out: IotlbHit | undefined): number {
    if (
      !Number.isSafeInteger(iova) || iova < 0 || !Number.isSafeInteger(len) || len <= 0 || iova > EXACT_LIMIT - len ||
      (access !== 0 && access !== 1 && access !== 2 && access !== 3)
    ) return -1;
    if (out === undefined) return this.#fill(iova, len, access, s);
    const h = this.#serving(iova, len, access);
    if (h < 0) return -1;
    const t = this.#table, diff = t.diff(h);
    out.start = t.start(h);
    out.end = Math.min(t.end(h), EXACT_LIMIT, EXACT_LIMIT - diff);
    out.diff = diff;
    out.perm = t.perm(h);
    if (this.#lru) t.setStamp(h, ++this.#tick);
    this.#hits++;
    return iova + diff;
  }

  /**
   * setMapping's range as exact pairs in #entry, for arguments past the number fast path: bigints,
   * values at or above 2^53, and everything it must refuse.
   */
  #exactMapping(iova: AddressLike, target: AddressLike, len: number): void {
    const op = "Iotlb.setMapping";
    const s = toAddress(iova, op, "iova");
    const t = toAddress(target, op, "target");
    const n = toLength(len, op, "len", false);
    const e = s + BigInt(n);
    if (e > U64_LIMIT) {
      throw new InvalidArgumentError(op, "len", len, `${hex(n)} from iova ${hex(s)} runs past 2^64`);
    }
    if (t + BigInt(n) > U64_LIMIT) {
      throw new InvalidArgumentError(op, "target", target, `range ${hex(t)} + ${hex(n)} runs past 2^64`);
    }
    const entry = this.#entry;
    entry.start.setBigInt(s);
    entry.end.setBigInt(e);
    entry.diff.setBigInt(t - s);
  }

  /**
   * {@link Iotlb.lookup}'s common answer, for a valid request below 2^53 that one entry holds
   * whole: plain numbers, no cursor walk. Undefined when it is not that case.
   */
  #lookupOne(iova: number, len: number, access: number): IotlbLookup | undefined {
    const t = this.#table;
    const h = t.floor(iova);
    if (h < 0 || iova + len > t.end(h) || (t.perm(h) & access) !== access) return undefined;
    this.#hits++;
    if (this.#lru) t.setStamp(h, ++this.#tick);
    const diff = t.diff(h);
    // A target that is not a safe integer (a diff or target at or above 2^53) is summed exactly.
    const target = Math.abs(diff) < EXACT_LIMIT && iova + diff < EXACT_LIMIT
      ? bigIntOf(iova + diff)
      : this.#cur.setNumber(iova).plus(t.readDiff(h, this.#diff));
    return { ok: true, ranges: [{ base: target, length: len }] };
  }

  /** {@link Iotlb.lookup} of the empty range `[iova, iova)` (see there). */
  #lookupEmpty(iova: AddressLike, access: Permission, op: string): IotlbLookup {
    const a = toAddress(iova, op, "iova");
    const want = toPermission(access, op, "access");
    const at = this.#from.setBigInt(a);
    const t = this.#table;
    t.locate(at); // the entry whose end lies above `a`, or the next one
    if (!t.atEnd()) {
      const h = t.here();
      // Only an entry that starts strictly before `a` overlaps `[a, a)` in vm-memory's range map.
      if (t.startsBelow(h, at) && (t.perm(h) & want) !== want) {
        this.#accessFailures++;
        this.#recorder?.onEvent("access-failure", a, 0n, null, want);
        return { ok: false, misses: [], accessFails: [{ base: a, length: 0 }] };
      }
    }
    this.#hits++;
    return { ok: true, ranges: [] };
  }

  /** Validates `[iova, iova + len)` and stores it in #from and #to. */
  #range(op: string, iova: AddressLike, len: number): void {
    if (
      typeof iova === "number" && typeof len === "number" && Number.isSafeInteger(iova) && iova >= 0 &&
      Number.isSafeInteger(len) && len > 0 && iova <= EXACT_LIMIT - len
    ) {
      this.#from.setNumber(iova);
      this.#to.setNumber(iova + len);
      return;
    }
    const s = toAddress(iova, op, "iova");
    const n = toLength(len, op, "len", false);
    const e = s + BigInt(n);
    if (e > U64_LIMIT) throw new InvalidArgumentError(op, "len", len, `${hex(n)} from iova ${hex(s)} runs past 2^64`);
    this.#from.setBigInt(s);
    this.#to.setBigInt(e);
  }

  /** Records a change: a new generation, and the translateFast cache emptied. */
  #changed(): void {
    this.#generation++;
    if (this.#cacheFilled) {
      const c = this.#cache;
      for (let s = TO; s < c.length; s += SLOT) c[s] = -Infinity;
      this.#cacheFilled = false;
    }
  }

  /** Tells the watchers about a finished change; one may stop watching (or stop another) meanwhile. */
  #notify(): void {
    for (const watcher of this.#watchers!) watcher();
  }

  /** Entry h, as {@link Iotlb.entries} shows it. */
  #entryAt(h: number): IotlbEntry {
    const e = this.#table.read(h, this.#read);
    const iova = e.start.toBigInt();
    return { iova, target: e.start.plus(e.diff), size: e.end.toBigInt() - iova, perm: e.perm as Permission };
  }

  /**
   * Evicts until the table fits, never the entry that contains `keep` (the start of the one just
   * written); `undefined` keeps none (after an invalidation split an entry).
   */
  #evict(keep: U64Pair | undefined): void {
    const t = this.#table;
    while (t.size > this.#max) {
      if (this.#policy === RANDOM) {
        let kept = t.size;
        if (keep !== undefined) {
          t.locate(keep);
          kept = t.rank();
        }
        const choices = kept < t.size ? t.size - 1 : t.size;
        this.#rng = (Math.imul(this.#rng, 1664525) + 1013904223) >>> 0;
        // The high bits of an LCG are its good ones: scale rather than take a remainder.
        let r = Math.floor((this.#rng / 2 ** 32) * choices);
        if (r >= kept) r++;
        t.seekRank(r);
      } else {
        t.seekOldest();
      }
      if (this.#recorder !== undefined) {
        const e = this.#entryAt(t.here());
        this.#recorder.onEvent("eviction", e.iova, e.size, e.target, e.perm);
      }
      t.remove(1);
      this.#evictions++;
      this.#changed();
    }
  }
}
