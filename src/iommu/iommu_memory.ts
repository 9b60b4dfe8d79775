/**
 * `IommuMemory`: guest memory seen through an IOMMU (vm-memory 0.18's type of that name). Addresses
 * are I/O virtual addresses while translation is on and guest physical addresses while it is off.
 * @module
 */

import { type AddressLike, toAddress, toLength } from "../core/address.ts";
import { bytesWindow } from "../core/caller_bytes.ts";
import { type DirtyLog, logReach } from "../core/dirty_log.ts";
import { type ElementViews, hasViews, type ViewLocator, type ViewWindow } from "../core/view_window.ts";
import {
  CannotResolveError,
  FragmentedError,
  IommuError,
  IommuMisconfiguredError,
  type IovaRange,
} from "./iommu_errors.ts";
import {
  GuestMemoryError,
  InvalidArgumentError,
  InvalidBackendAddressError,
  InvalidGuestAddressError,
  NoAccessError,
  ReadOnlyError,
  RegionClosedError,
} from "../core/errors.ts";
import { hex } from "../core/format.ts";
import { Bytes } from "../core/bytes.ts";
import { batchesFragments, copyFragments, FRAGMENTS, MAX_FRAGMENTS as MAX_FFI_FRAGMENTS } from "../core/copy_engine.ts";
import { checkAtomic, copyError, copyRange, CopyStatus } from "../core/copy_range.ts";
import type { GuestSlice, SlicesResult } from "../core/guest_memory_backend.ts";
import { NoMemoryRegionError } from "../core/region_errors.ts";
import { VolatileSlice } from "../core/volatile_slice.ts";
import { explainRequest, type Explanation } from "./explain.ts";
import type { GuestMemory, PhysicalMemory } from "../core/guest_memory.ts";
import { inspectIommuMemory, type IommuMemoryJson, iommuMemoryJson } from "./inspect_iommu.ts";
import type { Iommu } from "./iommu.ts";
import type { Iotlb } from "./iotlb.ts";
import { IotlbHit } from "./iotlb_hit.ts";
import { endGuards, type GuardLife, TranslationGuard } from "./translation_guard.ts";
import { abortable, type AbortOptions, signalOf } from "../core/abort_signal.ts";
import { type Permission, Permissions, toPermission } from "../core/permissions.ts";

/**
 * Which address a write through an enabled IOMMU is logged by:
 * - `"iova"`: the `IommuMemory`'s own bitmap, indexed by I/O virtual address (vm-memory's model);
 *   the regions' bitmaps are not touched, and writes the bitmap cannot record are refused;
 * - `"gpa"`: the backend regions' bitmaps, indexed by guest physical address (the vhost-user
 *   protocol's dirty log, which a migrating front-end reads by guest page).
 * With translation off, writes are always logged in the regions' bitmaps.
 */
export type DirtyLogAddressing = "iova" | "gpa";

/**
 * What an IOTLB change that takes away a slice's translation revokes:
 * - `"methods"` (default): every method of the slice (and of slices cut from it) throws
 *   `SliceRevokedError`; zero-copy views taken earlier with `bytes()`/`dataView()` keep working;
 * - `"views"`: the methods, and those views too: they are views over a buffer leased for exactly
 *   the slice's range, detached at the IOTLB change (length 0, their methods throw `TypeError`).
 *   Each `bytes()`/`dataView()` then maps a buffer of its own (a native call), and the IOTLB tells
 *   the slices holding views about each change;
 * - `"off"`: nothing; slices stay usable whatever the IOTLB does (vm-memory's behaviour).
 * Revocation needs an IOMMU with an IOTLB (`Iommu.iotlb`); without one, slices are never revoked.
 */
export type RevocationMode = "methods" | "views" | "off";

/** Options of {@link IommuMemory}. */
export interface IommuMemoryOptions {
  /** Translation on (default) or off. */
  enabled?: boolean;
  /**
   * The dirty log by I/O virtual address (only with `logBy: "iova"`). It must cover every IOVA
   * written: a write it cannot record (past an `AtomicBitmap`'s last page, or at 2^53 and beyond)
   * and every slice there are refused with `CannotResolveError` before anything moves.
   */
  bitmap?: DirtyLog;
  /** How writes through an enabled IOMMU are logged; default `"iova"`. */
  logBy?: DirtyLogAddressing;
  /** What an IOTLB change revokes of the slices handed out; default `"methods"`. */
  revocation?: RevocationMode;
}

const TWO_53 = 2 ** 53;

// Slots of the translation cache (see IommuMemory.#translated).
const SLOTS = 64;
// The IOVA bits that pick a slot: the low bits of the 4 KiB page number.
const SLOT_BITS = (SLOTS - 1) << 12;
// Most windows a bulk transfer is served in from the cache (see IommuMemory.#transferCached).
const MAX_FRAGMENTS = 32;
// Permissions.Write as a literal the compiler folds (a property of an imported object is loaded).
const WRITE = 2;
const READ = 1;

/**
 * What the translation cache checks its records against when the IOMMU has no IOTLB: it then holds
 * only the backend's own windows (translation off), which no IOMMU change affects.
 */
const STILL = { generation: 0 };

/** What an empty slot points at: no elements, so nothing is ever served from it. */
const NO_VIEWS: ElementViews = {
  u8: new Uint8Array(0),
  u16: new Uint16Array(0),
  u32: new Uint32Array(0),
  u64: new BigUint64Array(0),
  f32: new Float32Array(0),
  f64: new Float64Array(0),
  readable: false,
  writable: false,
  closed: true,
  refresh(): void {},
};

/**
 * One cached translation, as the record `#translated` returns: IOVAs `[start, end)` are view
 * offsets `IOVA + delta` of `views` for the access bits in `allows`, while the IOTLB's generation is
 * `generation` (the one invalidation rule: any IOTLB change makes every slot stale). Writes stop
 * at `writeEnd`, where the IOVA log stops recording.
 */
class TranslationWindow implements ViewWindow {
  start = 0;
  end = -1;
  writeEnd = -1;
  delta = 0;
  /** Guest physical address minus IOVA. */
  diff = 0;
  allows = 0;
  generation = -1;
  logBase = 0;
  views: ElementViews = NO_VIEWS;
  log: DirtyLog | undefined = undefined;
}
const TWO_53_BIG = 1n << 53n;

/** Access an atomic asks for: loads read, stores write, read-modify-writes do both. */
function atomicAccess(op: string, write: boolean): Permission {
  if (!write) return Permissions.Read;
  return op.startsWith("store") ? Permissions.Write : Permissions.ReadWrite;
}

/**
 * Guest memory behind an IOMMU. With translation on, every access is translated first: a failed
 * translation throws an {@link IommuError} before any byte moves; otherwise the request is split at
 * every IOTLB entry and every region boundary, and each fragment is a slice of real memory. With
 * translation off, addresses go straight to the backend.
 *
 * Any backend works (see {@link PhysicalMemory}). Over one with the view capability (a
 * `GuestMemoryMmap`), scalar accesses, atomics and copies that hit one IOTLB entry inside one
 * region take an allocation-free path: a cached translation window, else the IOTLB's
 * `translateFast` and the backend's `locateWindow`, each returning a record. With translation
 * off, scalars and atomics use the same cache, holding the backend's windows as they are.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, Permissions } from "../../mod.ts";
 * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
 * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
 * const iommu = new IotlbIommu();
 * iommu.iotlb.setMapping(0x100000, 0x4000, 0x1000, Permissions.ReadWrite);
 * const mem = new IommuMemory(ram, iommu);
 * mem.writeU32(0x100010, 7);
 * console.log(ram.readU32(0x4010)); // 7
 * ```
 */
export class IommuMemory<S extends GuestSlice<S> = VolatileSlice> extends Bytes implements GuestMemory<S>, Disposable {
  /** Class name used in errors. */
  protected readonly typeName: string = "IommuMemory";
  /** Addresses here are I/O virtual addresses (guest addresses while the IOMMU is off). */
  protected readonly addressName: string = "addr";
  readonly #backend: PhysicalMemory<S>;
  /** The backend's view capability, if it has one. */
  readonly #views: ViewLocator | undefined;
  readonly #iommu: Iommu;
  readonly #iotlb: Iotlb | undefined;
  /** Whose generation the cache's records are checked against: the IOTLB's, else one that stays 0. */
  readonly #clock: { readonly generation: number };
  readonly #bitmap: DirtyLog | undefined;
  readonly #logBy: DirtyLogAddressing;
  readonly #revocation: RevocationMode;
  #enabled: boolean;
  // The translation cache (see #translated): one slot per IOVA page hash, so that several pages in
  // turn (a ring and its buffers) each keep their translation. A slot points at a window record:
  // its own (#windows, where #fill writes), or the one filled last when that window covers the
  // slot's page too, so a window wider than a page costs one IOTLB lookup, not one per page.
  readonly #windows: TranslationWindow[] = Array.from({ length: SLOTS }, () => new TranslationWindow());
  readonly #slots: TranslationWindow[] = this.#windows.slice();
  #lastFilled: TranslationWindow = this.#windows[0];
  /** Where `translateFast` writes the entry it found (reused: the miss path allocates nothing). */
  readonly #hit = new IotlbHit();
  /** Scratch for `Iotlb.translateRanges`: up to 32 `(target, length)` pairs per bulk transfer. */
  readonly #pairs = new Float64Array(64);
  // Scratch for #transferCached, one entry per window: views, log, and (view offset, length, log base).
  readonly #fragViews: ElementViews[] = new Array(MAX_FRAGMENTS).fill(NO_VIEWS);
  readonly #fragLogs: (DirtyLog | undefined)[] = new Array(MAX_FRAGMENTS).fill(undefined);
  readonly #fragNumbers = new Float64Array(3 * MAX_FRAGMENTS);
  /** The lifetime of the slices' guards; ended by dispose. */
  readonly #life: GuardLife = { ended: false, watching: new Set() };
  /** How to end each asynchronous call in flight, for dispose. */
  readonly #waits = new Set<AbortController>();

  /**
   * Puts `backend` behind `iommu`.
   *
   * @example
   * ```ts
   * import { AtomicBitmap, GuestMemoryMmap } from "../../mod.ts";
   * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const mem = new IommuMemory(ram, new IotlbIommu(), { bitmap: new AtomicBitmap(1 << 20), logBy: "iova" });
   * console.log(mem.iommuEnabled); // true
   * ```
   * @throws {InvalidArgumentError} for a backend or IOMMU of the wrong kind, a bitmap with `logBy: "gpa"`,
   *   or an unknown `revocation`.
   */
  constructor(backend: PhysicalMemory<S>, iommu: Iommu, options: IommuMemoryOptions = {}) {
    super();
    // Bytes declares its hit fields; set here, in one order, so that every IommuMemory keeps one
    // shape (a field added by the first access made instances differ, and the scalar path polymorphic).
    this.hitViews = NO_VIEWS;
    this.hitLog = undefined;
    this.hitLogBase = 0;
    const op = "IommuMemory";
    if (!isPhysicalMemory(backend)) {
      throw new InvalidArgumentError(op, "backend", backend, "must be guest memory (e.g. a GuestMemoryMmap)");
    }
    if (iommu === null || typeof iommu !== "object" || typeof iommu.translate !== "function") {
      throw new InvalidArgumentError(op, "iommu", iommu, "must implement Iommu (translate, translateAsync)");
    }
    const logBy = options.logBy ?? "iova";
    if (logBy !== "iova" && logBy !== "gpa") {
      throw new InvalidArgumentError(op, "logBy", logBy, 'must be "iova" or "gpa"');
    }
    if (logBy === "gpa" && options.bitmap !== undefined) {
      throw new InvalidArgumentError(
        op,
        "bitmap",
        options.bitmap,
        'is only for logBy "iova"; with "gpa" writes are logged in the regions\' bitmaps',
      );
    }
    const enabled = options.enabled ?? true;
    if (typeof enabled !== "boolean") throw new InvalidArgumentError(op, "enabled", enabled, "must be a boolean");
    const revocation = options.revocation ?? "methods";
    if (revocation !== "methods" && revocation !== "views" && revocation !== "off") {
      throw new InvalidArgumentError(op, "revocation", revocation, 'must be "methods", "views" or "off"');
    }
    this.#backend = backend;
    this.#views = hasViews(backend) ? backend : undefined;
    this.#iommu = iommu;
    this.#iotlb = iommu.iotlb;
    this.#clock = iommu.iotlb ?? STILL;
    this.#bitmap = options.bitmap;
    this.#logBy = logBy;
    this.#revocation = revocation;
    this.#enabled = enabled;
  }

  /** The physical memory behind the IOMMU. @example `mem.backend.numRegions` */
  get backend(): PhysicalMemory<S> {
    return this.#backend;
  }

  /** The IOMMU (shared with copies made by {@link IommuMemory.withReplacedBackend}). @example `mem.iommu` */
  get iommu(): Iommu {
    return this.#iommu;
  }

  /** The dirty log by I/O virtual address, if any. @example `mem.bitmap?.dirtyAt(0)` */
  get bitmap(): DirtyLog | undefined {
    return this.#bitmap;
  }

  /** How writes through an enabled IOMMU are logged. @example `mem.logBy // "iova"` */
  get logBy(): DirtyLogAddressing {
    return this.#logBy;
  }

  /**
   * What an IOTLB change revokes of the slices handed out (see {@link RevocationMode}).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, Permissions } from "../../mod.ts";
   * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const iommu = new IotlbIommu();
   * iommu.iotlb.setMapping(0x8000, 0x1000, 0x1000, Permissions.ReadWrite);
   * const mem = new IommuMemory(ram, iommu, { revocation: "views" });
   * const view = mem.getSlice(0x8000, 16, Permissions.Write).bytes();
   * iommu.iotlb.invalidate(0x8000, 0x1000);
   * console.log(mem.revocation, view.length); // "views" 0
   * ```
   */
  get revocation(): RevocationMode {
    return this.#revocation;
  }

  /**
   * Whether translation is on. Can be switched at any time (a guest enabling its IOMMU).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * const mem = new IommuMemory(ram, new IotlbIommu(), { enabled: false });
   * mem.writeU8(0x10, 1); // a guest physical address
   * mem.iommuEnabled = true;
   * ```
   */
  get iommuEnabled(): boolean {
    return this.#enabled;
  }

  set iommuEnabled(value: boolean) {
    if (typeof value !== "boolean") {
      throw new InvalidArgumentError("IommuMemory.iommuEnabled", "value", value, "must be a boolean");
    }
    if (value !== this.#enabled) this.#flush();
    this.#enabled = value;
  }

  /**
   * The same IOMMU, bitmap and settings over another backend (vhost-user replaces its memory table
   * at run time). The two objects share the IOMMU and bitmap; switching translation on one does
   * not switch it on the other.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
   * using a = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * using b = GuestMemoryMmap.fromRanges([[0, 0x2000]]);
   * const mem = new IommuMemory(a, new IotlbIommu());
   * console.log(mem.withReplacedBackend(b).iommu === mem.iommu); // true
   * ```
   */
  withReplacedBackend(newBackend: PhysicalMemory<S>): IommuMemory<S> {
    return new IommuMemory(newBackend, this.#iommu, {
      enabled: this.#enabled,
      bitmap: this.#bitmap,
      logBy: this.#logBy,
      revocation: this.#revocation,
    });
  }

  /**
   * The physical memory while translation is off; `undefined` while it is on (addresses are then
   * not physical).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(new IommuMemory(ram, new IotlbIommu()).physicalMemory()); // undefined
   * ```
   */
  physicalMemory(): PhysicalMemory<S> | undefined {
    return this.#enabled ? undefined : this.#backend;
  }

  /**
   * Translation state, dirty-log addressing and bitmap, IOMMU counters, the IOTLB entries and the
   * physical memory, for `JSON.stringify`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(new IommuMemory(ram, new IotlbIommu()).toJSON().logBy); // "iova"
   * ```
   */
  toJSON(): IommuMemoryJson {
    return iommuMemoryJson(this);
  }

  /** The IOTLB and memory tables with the counters, for `console.log`. @example `console.log(mem)` */
  [Symbol.for("Deno.customInspect")](): string {
    return inspectIommuMemory(this);
  }

  /** The same text for Node's and Bun's `util.inspect`. @example `console.log(mem)` */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return inspectIommuMemory(this);
  }

  /**
   * Whether all of `[addr, addr + len)` can be accessed with `access`: translation succeeds (when
   * on) and every translated byte is backed. Translation failures give `false`; malformed arguments
   * throw. `len` 0 is true at any address while translation is off; while it is on, the empty range
   * is translated too (vm-memory 0.18 does), so it is false inside an IOTLB entry that denies
   * `access`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, Permissions } from "../../mod.ts";
   * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * const iommu = new IotlbIommu();
   * iommu.iotlb.setMapping(0x8000, 0, 0x1000, Permissions.Read);
   * const mem = new IommuMemory(ram, iommu);
   * console.log(mem.checkRange(0x8000, 16, Permissions.Read), mem.checkRange(0x8000, 16, Permissions.Write)); // true false
   * ```
   */
  checkRange(addr: AddressLike, len: number, access: Permission = Permissions.No): boolean {
    if (this.#cachedRange(addr, len, access)) return true;
    const op = "IommuMemory.checkRange";
    const n = toLength(len, op, "len");
    const a = toAddress(addr, op, "addr");
    const want = toPermission(access, op, "access");
    if (!this.#enabled) return this.#backend.checkRange(a, n);
    let ranges: IovaRange[];
    try {
      if ((want & Permissions.Write) !== 0 && this.#logBy === "iova") this.#refuseUnlogged(a, n, op);
      ranges = this.#translate(a, n, want, op);
    } catch (e) {
      if (e instanceof IommuError) return false;
      throw e;
    }
    return ranges.every((r) => this.#backend.checkRange(r.base, r.length));
  }

  /**
   * The fragments of `[addr, addr + count)` for `access`, split at IOTLB entries and regions. A
   * failed translation or a failing first fragment throws; a later failing fragment ends the list
   * early (see {@link IommuMemory.getSlicesResult} for why). `count` 0 gives `[]`, after a
   * translation while translation is on (a zero-length request inside an IOTLB entry that denies
   * `access` is refused, as in vm-memory 0.18).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, Permissions } from "../../mod.ts";
   * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const iommu = new IotlbIommu();
   * iommu.iotlb.setMapping(0x2a000, 0x4000, 0x80, Permissions.Read);
   * iommu.iotlb.setMapping(0x2a080, 0x8000, 0x80, Permissions.Read);
   * const mem = new IommuMemory(ram, iommu);
   * console.log(mem.getSlices(0x2a000, 0x100, Permissions.Read).map((s) => s.len)); // [128, 128]
   * ```
   */
  getSlices(addr: AddressLike, count: number, access: Permission = Permissions.Read): S[] {
    const r = this.#slices(addr, count, toPermission(access, "IommuMemory.getSlices", "access"), "getSlices");
    if (r.error !== undefined && r.slices.length === 0) throw r.error;
    return r.slices;
  }

  /**
   * The fragments and, if they stop early, the error that stopped them: also when the first
   * fragment fails (no fragments and its error, e.g. `InvalidGuestAddress` naming the guest physical
   * address behind a translation that has no memory). A translation failure is thrown: it happens
   * before any fragment exists (vm-memory's `get_slices` returns it as its own `Err`).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, Permissions } from "../../mod.ts";
   * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * const iommu = new IotlbIommu();
   * iommu.iotlb.setMapping(0, 0x800, 0x1000, Permissions.Read); // the second half has no RAM
   * const { slices, error } = new IommuMemory(ram, iommu).getSlicesResult(0, 0x1000, Permissions.Read);
   * console.log(slices.length, error?.kind); // 1 "InvalidGuestAddress"
   * ```
   */
  getSlicesResult(addr: AddressLike, count: number, access: Permission = Permissions.Read): SlicesResult<S> {
    const op = "getSlicesResult";
    return this.#slices(addr, count, toPermission(access, `IommuMemory.${op}`, "access"), op);
  }

  /**
   * The single slice of `[addr, addr + count)`: it must translate to one contiguous range inside
   * one region, else `Fragmented {iovaRange, continuousLength}` (or the translation error).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, Permissions } from "../../mod.ts";
   * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const iommu = new IotlbIommu();
   * iommu.iotlb.setMapping(0x1000, 0x3000, 0x1000, Permissions.ReadWrite);
   * console.log(new IommuMemory(ram, iommu).getSlice(0x1000, 0x100, Permissions.Write).len); // 256
   * ```
   */
  getSlice(addr: AddressLike, count: number, access: Permission = Permissions.Read): S {
    const op = "IommuMemory.getSlice";
    const n = toLength(count, op, "count");
    const r = this.#slices(addr, n, toPermission(access, op, "access"), "getSlice");
    if (r.slices.length === 1 && r.slices[0].len === n) return r.slices[0];
    if (r.error !== undefined && r.slices.length === 0) throw r.error;
    if (n === 0) return this.#emptySlice(addr, op);
    throw new FragmentedError(op, { base: toAddress(addr, op, "addr"), length: n }, r.slices[0]?.len ?? 0);
  }

  /**
   * Like {@link IommuMemory.getSlices}, first awaiting the IOMMU's asynchronous miss path (a
   * vhost-user front-end answering IOTLB misses over its socket) so the event loop keeps running.
   * Aborting `options.signal` rejects at once with its reason (see {@link IommuMemory.resolve}).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, Permissions } from "../../mod.ts";
   * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const iommu: IotlbIommu = new IotlbIommu(undefined, {
   *   asyncMissHandler: async (r) => iommu.iotlb.setMapping(r.base, r.base - 0x100000n, r.length, Permissions.ReadWrite),
   * });
   * const mem = new IommuMemory(ram, iommu);
   * const slices = await mem.getSlicesAsync(0x100000, 0x100, Permissions.Write);
   * console.log(slices[0].hostAddress === ram.getHostAddress(0)); // true
   * ```
   */
  async getSlicesAsync(
    addr: AddressLike,
    count: number,
    access: Permission = Permissions.Read,
    options?: AbortOptions,
  ): Promise<S[]> {
    await this.#resolve(addr, count, access, "IommuMemory.getSlicesAsync", options);
    const r = this.#slices(addr, count, toPermission(access, "IommuMemory.getSlicesAsync", "access"), "getSlicesAsync");
    if (r.error !== undefined && r.slices.length === 0) throw r.error;
    return r.slices;
  }

  /**
   * Makes sure `[addr, addr + count)` translates for `access`, answering misses through the
   * IOMMU's asynchronous path; afterwards the synchronous accessors hit (unless the mapping is
   * invalidated in between). Does nothing while translation is off. `count` 0 is translated too
   * (see {@link IommuMemory.getSlices}). Aborting `options.signal` rejects at once with its reason
   * and cancels the IOMMU's questions for this call (whatever the IOMMU does with its signal, the
   * promise does not wait for it).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, Permissions } from "../../mod.ts";
   * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const iommu: IotlbIommu = new IotlbIommu(undefined, {
   *   asyncMissHandler: async (r) => iommu.iotlb.setMapping(r.base, 0, r.length, Permissions.Read),
   * });
   * const mem = new IommuMemory(ram, iommu);
   * await mem.resolve(0x7000, 8, Permissions.Read, { signal: new AbortController().signal });
   * console.log(mem.readU64(0x7000)); // 0n
   * ```
   */
  resolve(
    addr: AddressLike,
    count: number,
    access: Permission = Permissions.Read,
    options?: AbortOptions,
  ): Promise<void> {
    return this.#resolve(addr, count, access, "IommuMemory.resolve", options);
  }

  async #resolve(
    addr: AddressLike,
    count: number,
    access: Permission,
    op: string,
    options: AbortOptions | undefined,
  ): Promise<void> {
    const n = toLength(count, op, "count");
    const a = toAddress(addr, op, "addr");
    const want = toPermission(access, op, "access");
    const signal = signalOf(options, op);
    if (signal?.aborted) throw signal.reason;
    if (this.#life.ended) throw new CannotResolveError(op, { base: a, length: n }, "the IommuMemory was disposed");
    if (!this.#enabled) return;
    pastTheEnd(a, n, op);
    // One controller per call: the caller's abort and dispose both end it, and the IOMMU is told.
    const own = new AbortController();
    const onAbort = () => own.abort(signal!.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#waits.add(own);
    try {
      await abortable(this.#iommu.translateAsync(a, n, want, { signal: own.signal }), own.signal);
    } catch (e) {
      if (own.signal.aborted && e === own.signal.reason) {
        if (signal?.aborted) throw signal.reason;
        throw new CannotResolveError(op, { base: a, length: n }, "the IommuMemory was disposed");
      }
      throw this.#rewrap(e, op);
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.#waits.delete(own);
    }
  }

  /**
   * Ends what this object holds, once (a second call does nothing): its `resolve`/`getSlicesAsync`
   * calls in flight reject at once with `CannotResolveError` ("the IommuMemory was disposed") and
   * their IOMMU questions are cancelled; the slices holding views leased under
   * `revocation: "views"` stop watching the IOTLB, their views are detached and the slices revoked
   * (`SliceRevokedError`); no slice of it leases a view afterwards (`bytes()` throws
   * `SliceRevokedError`). Slices that hold nothing stay valid while their translation holds, as
   * before (checking a disposal on each of their accesses would slow every one). Later
   * asynchronous calls reject the same way. The backend and the IOMMU are not disposed (they are
   * shared); the synchronous accessors keep working.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, Permissions } from "../../mod.ts";
   * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const iommu = new IotlbIommu();
   * iommu.iotlb.setMapping(0x8000, 0x1000, 0x1000, Permissions.ReadWrite);
   * let view;
   * {
   *   using mem = new IommuMemory(ram, iommu, { revocation: "views" });
   *   view = mem.getSlice(0x8000, 16, Permissions.Read).bytes();
   * }
   * console.log(view.length, iommu.iotlb.watcherCount); // 0 0
   * ```
   */
  [Symbol.dispose](): void {
    if (this.#life.ended) return;
    endGuards(this.#life);
    for (const wait of [...this.#waits]) wait.abort();
  }

  /**
   * How `[iova, iova + len)` resolves for `access`, as data: the IOTLB entries it touches, the
   * fragments (IOVA, guest physical and host address, region, entry), and the first failure with
   * its reason (`unmapped`, `denied`, `unbacked`, `unresolved`). It never asks a miss handler and
   * counts no IOTLB traffic, so it can be called while debugging a live device.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, Permissions } from "../../mod.ts";
   * import { IommuMemory, IotlbIommu } from "../../iommu.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const iommu = new IotlbIommu();
   * iommu.iotlb.setMapping(0x8000, 0x1000, 0x1000, Permissions.Read);
   * const x = new IommuMemory(ram, iommu).explain(0x8000, 0x10, Permissions.Write);
   * console.log(x.failure?.reason, x.failure?.message); // "denied" "the entry [0x8000, 0x9000) allows Read, not Write"
   * ```
   * @throws {InvalidArgumentError} for a bad address, length or access, or a range past 2^64.
   */
  explain(iova: AddressLike, len: number, access: Permission = Permissions.Read): Explanation {
    return explainRequest({ backend: this.#backend, iommu: this.#iommu, enabled: this.#enabled }, iova, len, access);
  }

  // ---- Bytes hooks ----

  /** Where a one-region range lies, for the scalar fast path (see `Bytes.locate`). */
  protected locate(addr: AddressLike, size: number, write: boolean): number {
    if (typeof addr !== "number") return -1;
    const e = this.#translated(addr, size, write ? WRITE : READ);
    if (e === undefined) return -1;
    this.hitViews = e.views;
    // A read leaves the log fields as they were: Bytes reads them only after a write it located
    // (to log it), and two stores fewer measured 0.5 ns a read.
    if (write) {
      this.hitLog = e.log;
      this.hitLogBase = e.logBase;
    }
    return addr + e.delta;
  }

  /** Empties the translation cache: every slot back to its own record, every record empty. */
  #flush(): void {
    const slots = this.#slots, windows = this.#windows;
    for (let k = 0; k < SLOTS; k++) {
      const e = windows[k];
      e.start = 0;
      e.end = -1;
      e.writeEnd = -1;
      slots[k] = e;
    }
  }

  /**
   * The one translation path of the fast paths: the window holding `[addr, addr + size)` (IOVAs,
   * or guest physical addresses while translation is off) for `want`, as a record (a cache record
   * itself), or `undefined` when the slow path must run (not mapped or not allowed, across an
   * entry, a region or a view boundary, a write the IOVA log cannot record, no views, not an integer
   * below 2^53). Allocates nothing and never throws.
   *
   * One slot check, then `#fill`: the slot of the IOVA's 4 KiB page, picked by `&` on the IOVA,
   * which keeps the low bits of its integer part at any size (a hash: the IOVA itself is only
   * compared). A slot answers while the IOTLB's generation is the one it was filled under. The
   * window compares turn away negative numbers, NaN, infinities and anything from 2^53 on (no window
   * reaches past it); a fraction inside a window needs its own test, or it would index the views at
   * a fractional offset. Kept this small so that V8 inlines the whole scalar path into its caller:
   * a check of the slot filled last, before this one, cost 4-8 ns per read over pages in turn.
   */
  #translated(addr: number, size: number, want: Permission): TranslationWindow | undefined {
    const e = this.#slots[(addr & SLOT_BITS) >> 12];
    if (
      addr >= e.start && addr <= ((want & WRITE) !== 0 ? e.writeEnd : e.end) - size && (e.allows & want) === want &&
      e.generation === this.#clock.generation && Number.isInteger(addr)
    ) {
      return e;
    }
    return this.#fill(addr, size, want);
  }

  /**
   * A cache miss in the slot of `addr`'s page. If the window filled last holds the access, the slot
   * points at it (a burst through one wide window asks the IOTLB once). Otherwise the slot's own
   * record is filled: with translation on, the IOTLB's entry (written to `#hit`) intersected with
   * the backend's window, allowing what the entry allows, writes stopping where the IOVA log does;
   * with translation off, the backend's window as it is (the backend checks access). The record
   * covers the whole window, not just this access. A record another slot also points at may be
   * rewritten here: every use checks the range and generation, so that slot just misses.
   */
  #fill(addr: number, size: number, want: Permission): TranslationWindow | undefined {
    const views = this.#views, iotlb = this.#iotlb, enabled = this.#enabled;
    if (views === undefined || (enabled && iotlb === undefined)) return undefined;
    const slot = (addr & SLOT_BITS) >> 12;
    const generation = this.#clock.generation;
    const last = this.#lastFilled;
    if (
      addr >= last.start && addr <= ((want & WRITE) !== 0 ? last.writeEnd : last.end) - size &&
      (last.allows & want) === want && last.generation === generation && Number.isInteger(addr)
    ) {
      this.#slots[slot] = last;
      return last;
    }
    const hit = this.#hit;
    let gpa = addr, diff = 0, start = 0, end = TWO_53, reach = TWO_53, allows = READ | WRITE;
    if (enabled) {
      gpa = iotlb!.translateFast(addr, size, want, hit);
      if (gpa < 0) return undefined;
      // Not past what the IOVA log records: a write there takes the slow path, which refuses it.
      reach = this.#iovaReach();
      if ((want & WRITE) !== 0 && addr + size > reach) return undefined;
      diff = hit.diff;
      start = hit.start;
      end = hit.end;
      allows = hit.perm;
    }
    const w = views.locateWindow(gpa, size);
    if (w === undefined) return undefined;
    const e = this.#windows[slot];
    this.#slots[slot] = e;
    this.#lastFilled = e;
    // Every number stored goes through Math.trunc, exact on these integers: it hands back a value
    // read from a Float64Array (the IOTLB's, a region's) as a small integer where one fits. A heap
    // number stored once would turn the records' fields into doubles for good, and with them the
    // scalar path's arithmetic (measured: 4 ns a read).
    const windowEnd = Math.trunc(Math.min(end, w.end - diff));
    const delta = Math.trunc(diff + w.delta);
    e.start = Math.trunc(Math.max(start, w.start - diff));
    e.end = windowEnd;
    e.writeEnd = Math.trunc(Math.min(windowEnd, reach));
    e.delta = delta;
    e.diff = Math.trunc(diff);
    e.allows = Math.trunc(allows);
    e.generation = generation;
    e.views = w.views;
    if (enabled && this.#logBy === "iova") {
      // View offset + logBase = IOVA.
      e.log = this.#bitmap;
      e.logBase = Math.trunc(0 - delta);
    } else {
      e.log = w.log;
      e.logBase = Math.trunc(w.logBase);
    }
    return e;
  }

  /** Copies as far as the memory reaches (see `Bytes.transfer`). */
  protected transfer(buf: Uint8Array, len: number, addr: AddressLike, write: boolean, op: string): number {
    if (len !== 0 && typeof addr === "number" && this.#enabled) {
      const done = this.#transferCached(buf, len, addr, write, op);
      if (done >= 0) return done;
    } else if (len !== 0 && typeof addr === "number") {
      const o = this.locate(addr, len, write);
      if (o >= 0) {
        const status = copyRange(
          this.hitViews,
          o,
          buf,
          0,
          len,
          len,
          write,
          this.hitLog,
          this.hitLogBase,
          "IommuMemory",
          op,
        );
        if (status === CopyStatus.Done) return len;
      }
    }
    if (this.#enabled && len !== 0) return this.#transferTranslated(buf, len, addr, write, op);
    const full = `IommuMemory.${op}`;
    let r: SlicesResult<S>;
    try {
      r = this.#slices(addr, len, write ? Permissions.Write : Permissions.Read, op);
    } catch (e) {
      throw underOp(e, full, toAddress(addr, full, "addr"), len);
    }
    if (r.error !== undefined && r.slices.length === 0) {
      throw underOp(r.error, full, toAddress(addr, full, "addr"), len);
    }
    let done = 0;
    for (const s of r.slices) {
      const part = bytesWindow(buf, done, s.len, full);
      try {
        if (write) s.copyFrom(part);
        else s.copyTo(part);
      } catch (e) {
        if (done === 0) throw underOp(e, full, toAddress(addr, full, "addr"), s.len);
        break;
      }
      done += s.len;
    }
    return done;
  }

  /**
   * The checked target of an atomic (see `Bytes.atomicTarget`): through the translation cache
   * like every scalar, else translated in full and checked against the backend's regions.
   */
  protected atomicTarget(addr: AddressLike, size: number, write: boolean, op: string): number {
    const access = atomicAccess(op, write);
    if (typeof addr === "number") {
      const w = this.#translated(addr, size, access);
      if (w !== undefined) {
        const o = addr + w.delta, v = w.views;
        if (o % size === 0 && (write ? v.writable : v.readable) === true && o + size <= v.u8.length) {
          this.hitViews = v;
          this.hitLog = w.log;
          this.hitLogBase = w.logBase;
          return o;
        }
      }
    }
    return this.#atomicSlow(addr, size, write, access, `IommuMemory.${op}`);
  }

  /** An atomic the cache cannot serve: translated in full, then checked, or refused with the reason. */
  #atomicSlow(addr: AddressLike, size: number, write: boolean, access: Permission, full: string): number {
    const backend = this.#backend;
    const a = toAddress(addr, full, "addr");
    let gpa = a;
    if (this.#enabled) {
      const first = this.#translate(a, size, access, full)[0];
      if (first.length < size) {
        // vm-memory takes the first fragment before it looks at its length: when no memory lies
        // behind it, that is the error, not the split.
        if (backend.findRegion(first.base) === undefined) throw new InvalidGuestAddressError(full, first.base);
        throw new InvalidBackendAddressError(
          full,
          `a ${size}-byte atomic at I/O virtual address ${
            hex(a)
          } spans two IOTLB entries (the first maps ${first.length} bytes)`,
        );
      }
      gpa = first.base;
    }
    const o = this.#atomicIn(addr, gpa, size, write, full);
    if (this.#enabled && this.#logBy === "iova") {
      if (write) this.#refuseUnlogged(a, size, full);
      this.hitLog = this.#bitmap;
      this.hitLogBase = Number(a) - o; // exact wherever a store logs
    }
    return o;
  }

  /**
   * The view offset of an atomic at guest physical `gpa`, setting this object's hit fields from the
   * backend's window; throws what is wrong (no memory, across a region's end, misaligned,
   * protection, closed, no views), naming `full`.
   */
  #atomicIn(addr: AddressLike, gpa: bigint, size: number, write: boolean, full: string): number {
    const region = this.#backend.findRegion(gpa);
    if (region === undefined) throw new InvalidGuestAddressError(full, gpa);
    if (gpa - region.startAddr > BigInt(region.len - size)) {
      throw new InvalidBackendAddressError(
        full,
        `a ${size}-byte atomic at ${hex(gpa)} crosses the end of the region [${hex(region.startAddr)}, ${
          hex(region.lastAddr)
        }]`,
      );
    }
    const views = this.#views;
    // The window of the first byte: an atomic that crosses a view seam is misaligned (seams lie on
    // page boundaries), which checkAtomic reports.
    const w = views !== undefined && gpa < TWO_53_BIG ? views.locateWindow(Number(gpa), 1) : undefined;
    if (w === undefined) {
      throw new InvalidArgumentError(
        full,
        "addr",
        addr,
        gpa < TWO_53_BIG
          ? `reaches guest physical ${hex(gpa)} in a backend without views (no locateWindow), which atomics need`
          : `reaches guest physical ${hex(gpa)}, at or above 2^53, where no view window reaches`,
      );
    }
    const o = Number(gpa) + w.delta;
    checkAtomic(w.views, o, size, write, full, gpa, "guest address");
    this.hitViews = w.views;
    this.hitLog = w.log;
    this.hitLogBase = w.logBase;
    return o;
  }

  /** Zero-byte I/O is translated too while translation is on (see `Bytes.checkEmptyIo`). */
  protected override checkEmptyIo(addr: AddressLike, write: boolean, op: string): void {
    if (this.#enabled) this.#slices(addr, 0, write ? Permissions.Write : Permissions.Read, op);
  }

  /** The fragments volatile I/O goes through (see `Bytes.ioSlices`). */
  protected ioSlices(addr: AddressLike, count: number, write: boolean, op: string): VolatileSlice[] {
    const r = this.#slices(addr, count, write ? Permissions.Write : Permissions.Read, op, write);
    if (r.error !== undefined && r.slices.length === 0) throw r.error;
    const out: VolatileSlice[] = [];
    for (const s of r.slices) {
      // The I/O engines hand host addresses to the kernel: only VolatileSlices have them.
      if (!(s instanceof VolatileSlice)) {
        throw new InvalidArgumentError(
          `IommuMemory.${op}`,
          "backend",
          this.#backend,
          "hands out slices that are not VolatileSlices, which volatile I/O needs",
        );
      }
      out.push(s);
    }
    return out;
  }

  // ---- internals ----

  #translate(iova: bigint, len: number, access: Permission, op: string): IovaRange[] {
    pastTheEnd(iova, len, op);
    let ranges: unknown;
    try {
      ranges = this.#iommu.translate(iova, len, access);
    } catch (e) {
      throw this.#rewrap(e, op);
    }
    return covering(ranges, iova, len, op);
  }

  /**
   * `s`, a physical slice at IOVA `iova`, logging its writes by IOVA when it may be written
   * (`writable`); the caller refused writable ranges the log cannot record.
   */
  #iovaLogged(s: S, writable: boolean, iova: number | bigint): S {
    const log = writable ? this.#bitmap : undefined;
    return log === undefined ? s.withDirtyLog(undefined, 0) : s.withDirtyLog(log, Number(iova));
  }

  /** How many bytes of IOVA space writes are logged in; every number below 2^53 without an IOVA log. */
  #iovaReach(): number {
    const log = this.#bitmap;
    return this.#logBy === "iova" && log !== undefined ? logReach(log) : TWO_53;
  }

  /**
   * Refuses, before anything moves, a write of `len` bytes at IOVA `iova` that the IOVA log
   * cannot record (past its last page, or at 2^53 and beyond, where no number is exact): it would
   * land unlogged. An IOMMU fault, as an access the IOMMU will not allow.
   */
  #refuseUnlogged(iova: AddressLike, len: number, op: string): void {
    const log = this.#bitmap;
    if (log === undefined || len === 0) return;
    const reach = logReach(log);
    const end = typeof iova === "number" ? iova + len : iova + BigInt(len);
    if (end <= reach) return;
    throw new CannotResolveError(
      op,
      { base: BigInt(iova), length: len },
      `the dirty log by I/O virtual address records only [0x0, ${hex(reach)}); the write would go unlogged`,
    );
  }

  /** An IOMMU error raised inside the IOMMU, re-raised under this object's operation name. */
  #rewrap(e: unknown, op: string): unknown {
    if (e instanceof CannotResolveError) return new CannotResolveError(op, e.iovaRange, e.reason, { cause: e });
    if (e instanceof IommuMisconfiguredError) return new IommuMisconfiguredError(op, e.reason, { cause: e });
    return e;
  }

  /**
   * The slices of `[addr, addr + count)`. `writable` says whether they may be written (handed out,
   * or filled by I/O): with an IOVA log, they must then lie where the log records.
   */
  #slices(addr: AddressLike, count: number, access: Permission, name: string, writable = true): SlicesResult<S> {
    if (typeof addr === "number" && this.#enabled && Number.isInteger(count) && count > 0) {
      const one = this.#cachedSlice(addr, count, access, writable);
      if (one !== undefined) return { slices: [one] };
    }
    const op = `IommuMemory.${name}`;
    const n = toLength(count, op, "count");
    const a = toAddress(addr, op, "addr");
    const backend = this.#backend;
    if (!this.#enabled) return physicalSlices(backend, a, n, op);
    // A zero-length request is translated (vm-memory 0.18) but writes nothing to log.
    if (writable && n > 0 && this.#logBy === "iova") this.#refuseUnlogged(a, n, op);
    const ranges = this.#translate(a, n, access, op);
    const slices: S[] = [];
    const iovaLog = this.#logBy === "iova";
    const iotlb = this.#iotlb;
    const revocation = this.#revocation;
    let iova = a;
    for (const range of ranges) {
      const part = physicalSlices(backend, range.base, range.length, op);
      // Every slice of this range is revoked together once the IOTLB stops translating it here.
      const guard = iotlb === undefined || revocation === "off"
        ? undefined
        : new TranslationGuard(iotlb, { base: iova, length: range.length }, range.base, access, {
          revokeViews: revocation === "views",
          life: this.#life,
        });
      for (const s of part.slices) {
        // Slices that may be written lie where the log records (refused above otherwise); the
        // others, never written, are not logged.
        let out = iovaLog ? this.#iovaLogged(s, writable, iova) : s;
        if (guard !== undefined) out = out.withGuard(guard);
        slices.push(out);
        iova += BigInt(s.len);
      }
      if (part.error !== undefined) {
        // A closed region: no fragment of the range may be used (see GuestMemoryMmap.transfer).
        if (part.error instanceof RegionClosedError) return { slices: [], error: part.error };
        // Also with no slice yet: the callers that want the first failure thrown throw it.
        return { slices, error: part.error };
      }
    }
    return { slices };
  }

  /**
   * Whether the translation cache alone shows that all of `[addr, addr + len)` translates for
   * `access` to open memory (`len` > 0, translation on). `false` means "ask the slow path", which
   * has the last word. Allocates nothing.
   */
  #cachedRange(addr: AddressLike, len: number, access: Permission): boolean {
    if (
      typeof addr !== "number" || !Number.isSafeInteger(addr) || !this.#enabled || !Number.isInteger(len) || len <= 0 ||
      !(access === 0 || access === 1 || access === 2 || access === 3)
    ) return false;
    const end = addr + len;
    for (let cur = addr; cur < end;) {
      const e = this.#translated(cur, 1, access);
      if (e === undefined || e.views.closed === true) return false;
      cur = (access & WRITE) !== 0 ? e.writeEnd : e.end;
    }
    return true;
  }

  /**
   * The one slice of `[addr, addr + count)` when a cached window holds all of it (see `#slices`):
   * made by the backend at the guest physical address, logged and guarded as `#slices` does, with
   * no IOTLB lookup and no bigint beyond the guard's. `undefined` sends the request to the slow path.
   */
  #cachedSlice(addr: number, count: number, access: Permission, writable: boolean): S | undefined {
    const e = this.#translated(addr, count, access);
    // A slice that may be written must lie where the IOVA log records (writeEnd); the slow path
    // refuses it otherwise. A closed region: the slow path says so in the result, as the backend would.
    if (e === undefined || addr > (writable ? e.writeEnd : e.end) - count || e.views.closed === true) return undefined;
    const gpa = addr + e.diff;
    const s = this.#backend.getSlice(gpa, count);
    const out = this.#logBy === "iova" ? this.#iovaLogged(s, writable, addr) : s;
    const iotlb = this.#iotlb!; // a cached window came from it
    if (this.#revocation === "off") return out;
    const guard = new TranslationGuard(iotlb, { base: BigInt(addr), length: count }, BigInt(gpa), access, {
      revokeViews: this.#revocation === "views",
      life: this.#life,
    });
    return out.withGuard(guard);
  }

  /**
   * A bulk transfer through an enabled IOMMU served from the translation cache: the windows of the
   * whole range first, each from `#translated` (so an unmapped or refused byte, or a closed region,
   * sends it to the slow path before anything moves), then one copy per window. Returns the bytes
   * copied, or -1 when the cache cannot serve it (more than `MAX_FRAGMENTS` windows, a hole, an
   * address that is not a number below 2^53): the slow path then does it, and says what is wrong.
   * A DMA buffer scattered over pages costs a slot check per page here, not an IOTLB search and a
   * region lookup per page. Allocates nothing.
   */
  #transferCached(buf: Uint8Array, len: number, addr: number, write: boolean, op: string): number {
    const want = write ? Permissions.Write : Permissions.Read;
    const end = addr + len;
    const first = this.#translated(addr, 1, want);
    if (first === undefined) return -1;
    if (end <= (write ? first.writeEnd : first.end)) {
      // One window, the common case: no scratch. A closed region fails the copy, before any byte moves.
      const status = copyRange(
        first.views,
        addr + first.delta,
        buf,
        0,
        len,
        len,
        write,
        first.log,
        first.logBase,
        "IommuMemory",
        op,
      );
      return status === CopyStatus.Done ? len : -1;
    }
    const views = this.#fragViews, logs = this.#fragLogs, num = this.#fragNumbers;
    let n = 0;
    for (let cur = addr, e: TranslationWindow | undefined = first; cur < end; n++) {
      if (n > 0) e = this.#translated(cur, 1, want);
      if (e === undefined || e.views.closed === true || n === MAX_FRAGMENTS) return -1;
      const stop = Math.min(end, write ? e.writeEnd : e.end);
      views[n] = e.views;
      logs[n] = e.log;
      num[3 * n] = cur + e.delta;
      num[3 * n + 1] = stop - cur;
      num[3 * n + 2] = e.logBase;
      cur = stop;
    }
    // A read over several windows of host memory: one FFI call for all of them where the engine
    // would copy such a read by memmove (writes log per window, and copy below).
    if (!write && n > 1 && n <= MAX_FFI_FRAGMENTS && batchesFragments(false, len)) {
      const frags = FRAGMENTS;
      let k = 0;
      for (; k < n; k++) {
        const v = views[k], host = v.host;
        if (host === undefined || v.u8.length === 0 || v.readable !== true) break;
        frags[2 * k] = host + num[3 * k];
        frags[2 * k + 1] = num[3 * k + 1];
      }
      if (k === n && copyFragments(n, buf, 0, len, false)) return len;
    }
    let done = 0;
    for (let k = 0; k < n; k++) {
      const count = num[3 * k + 1];
      const status = copyRange(
        views[k],
        num[3 * k],
        buf,
        done,
        count,
        len,
        write,
        logs[k],
        num[3 * k + 2],
        "IommuMemory",
        op,
      );
      // Nothing moved yet: the slow path redoes it and throws the precise error.
      if (status !== CopyStatus.Done) return done === 0 ? -1 : done;
      done += count;
    }
    return done;
  }

  /**
   * A bulk transfer through an enabled IOMMU: one translation (allocation-free through
   * `Iotlb.translateRanges` when the request and its targets are numbers, else through the IOMMU),
   * then one copy per mapped range.
   */
  #transferTranslated(buf: Uint8Array, len: number, addr: AddressLike, write: boolean, op: string): number {
    const full = `IommuMemory.${op}`;
    if (write && this.#logBy === "iova" && this.#bitmap !== undefined) {
      const iova = typeof addr === "number" && Number.isSafeInteger(addr) && addr >= 0
        ? addr
        : toAddress(addr, full, "addr");
      this.#refuseUnlogged(iova, len, full);
    }
    const access = write ? Permissions.Write : Permissions.Read;
    const iotlb = this.#iotlb;
    const p = this.#pairs;
    const pairs = iotlb !== undefined && typeof addr === "number" ? iotlb.translateRanges(addr, len, access, p) : -1;
    if (pairs > 0) {
      // A read over several mapped ranges: one FFI call for all of them where the engine would copy
      // such a read by memmove (writes log per fragment, and copy below).
      if (!write && pairs > 1 && pairs <= MAX_FFI_FRAGMENTS && batchesFragments(false, len)) {
        const done = this.#readFragments(buf, pairs);
        if (done > 0) return done;
      }
      if (pairs > 1) { for (let k = 0; k < pairs; k++) if (!this.#refuseClosed(p[2 * k], p[2 * k + 1], full)) break; }
      let done = 0;
      for (let k = 0; k < pairs; k++) {
        const n = p[2 * k + 1];
        const copied = this.#copyRange(buf, len, done, p[2 * k], n, addr as number, write, op, full);
        done += copied;
        if (copied < n) break;
      }
      return done;
    }
    const a = toAddress(addr, full, "addr");
    const ranges = this.#translate(a, len, access, full);
    if (ranges.length > 1) { for (const r of ranges) if (!this.#refuseClosed(r.base, r.length, full)) break; }
    let done = 0;
    for (const range of ranges) {
      const copied = this.#copyRange(buf, len, done, range.base, range.length, a, write, op, full);
      done += copied;
      if (copied < range.length) break;
    }
    return done;
  }

  /**
   * Reads the `pairs` (guest physical, length) ranges in `#pairs` into `buf` from offset 0 in one
   * FFI call, if every range lies inside one open, readable region: returns the bytes read, or 0
   * (nothing moved) for the per-range copy to do it and report what stops it.
   */
  #readFragments(buf: Uint8Array, pairs: number): number {
    const p = this.#pairs, frags = FRAGMENTS, locator = this.#views;
    if (locator === undefined) return 0;
    let total = 0;
    for (let k = 0; k < pairs; k++) {
      const gpa = p[2 * k], n = p[2 * k + 1];
      const w = locator.locateWindow(gpa, n);
      if (w === undefined) return 0;
      const v = w.views, host = v.host;
      if (host === undefined || v.closed || v.u8.length === 0 || v.readable !== true) return 0;
      frags[2 * k] = host + gpa + w.delta;
      frags[2 * k + 1] = n;
      total += n;
    }
    return copyFragments(pairs, buf, 0, total, false) ? total : 0;
  }

  /**
   * Copies `buf[done, done + n)` to or from guest physical `gpa`, the target of IOVA `iova + done`,
   * and returns how much of it moved: all of it, or less where the memory ends (a hole, a closed or
   * protected region). Throws when nothing of the whole transfer moved. A range inside one region is
   * one copy with no slice objects (a fragmented DMA buffer is the common case); the slice
   * machinery serves ranges that cross a region boundary or a hole.
   */
  #copyRange(
    buf: Uint8Array,
    bufLen: number,
    done: number,
    gpa: number | bigint,
    n: number,
    iova: number | bigint,
    write: boolean,
    op: string,
    full: string,
  ): number {
    const backend = this.#backend;
    const iovaLog = this.#logBy === "iova";
    // Exact for every write: #transferTranslated refused writes the IOVA log cannot record.
    const at0 = Number(iova) + done;
    const views = this.#views;
    const w = views !== undefined && (typeof gpa === "number" || gpa < TWO_53_BIG)
      ? views.locateWindow(Number(gpa), n)
      : undefined;
    if (w !== undefined) {
      const o = Number(gpa) + w.delta;
      const log = iovaLog ? this.#bitmap : w.log;
      const logBase = iovaLog ? at0 - o : w.logBase;
      const status = copyRange(w.views, o, buf, done, n, bufLen, write, log, logBase, "IommuMemory", op);
      if (status === CopyStatus.Done) return n;
      if (done === 0) throw copyError(status, full, "I/O virtual address", BigInt(iova), n);
      return 0;
    }
    let g = BigInt(gpa);
    const part = physicalSlices(backend, g, n, full);
    let copied = 0;
    for (const s of part.slices) {
      // Each fragment logs at its own IOVA: the range's start plus what came before it. Reads log
      // nothing, and may lie past the log's reach.
      const target = iovaLog ? this.#iovaLogged(s, write, at0 + copied) : s;
      const piece = bytesWindow(buf, done + copied, s.len, full);
      try {
        if (write) target.copyFrom(piece);
        else target.copyTo(piece);
      } catch (e) {
        if (done + copied === 0) throw underOp(e, full, g, s.len);
        return copied;
      }
      copied += s.len;
      g += BigInt(s.len);
    }
    if (part.error !== undefined && done + copied === 0) throw underOp(part.error, full, g, n);
    return copied;
  }

  /**
   * Before a transfer over several physical ranges copies a byte: throws `RegionClosedError` if
   * the range at `gpa` reaches a closed region (all or nothing, as `GuestMemoryMmap.transfer`
   * explains), and returns whether the copy would go on past it (false at a hole, which ends the
   * transfer before any later range). Needed only when there are several: a single range's copy
   * fails before it moves anything.
   */
  #refuseClosed(gpa: number | bigint, n: number, op: string): boolean {
    const views = this.#views;
    if (views !== undefined && (typeof gpa === "number" || gpa < TWO_53_BIG)) {
      const w = views.locateWindow(Number(gpa), n);
      if (w !== undefined) {
        if (w.views.closed) throw new RegionClosedError(op, `the memory at guest address ${hex(gpa)}`);
        return true;
      }
    }
    const r = physicalSlices(this.#backend, BigInt(gpa), n, op);
    if (r.error instanceof RegionClosedError) throw r.error;
    return r.error === undefined;
  }

  #emptySlice(addr: AddressLike, op: string): S {
    // A zero-length slice needs somewhere to point; the first region's start is always valid.
    const r = this.#backend.regions()[0];
    if (r === undefined) {
      throw new NoMemoryRegionError(op, `no memory behind ${hex(toAddress(addr, op, "addr"))}`);
    }
    return r.getSlice(0, 0);
  }
}

/** The backend's fragments of a physical range, its errors named under `op`. */
function physicalSlices<S extends GuestSlice<S>>(
  backend: PhysicalMemory<S>,
  gpa: bigint,
  len: number,
  op: string,
): SlicesResult<S> {
  let r: SlicesResult<S>;
  try {
    r = backend.getSlicesResult(gpa, len);
  } catch (e) {
    throw underOp(e, op, gpa, len);
  }
  return r.error === undefined ? r : { slices: r.slices, error: underOp(r.error, op, gpa, len) as GuestMemoryError };
}

/** A range running past 2^64 has no translation (the IOTLB cannot map it); refuse it as such. */
function pastTheEnd(iova: bigint, len: number, op: string): void {
  if (iova + BigInt(len) > 1n << 64n) {
    throw new CannotResolveError(op, { base: iova, length: len }, "the range runs past 2^64");
  }
}

/**
 * Checks what an `Iommu` answered: ranges with a non-negative base and a positive length that
 * together cover exactly `len` bytes. A custom IOMMU that answers otherwise would make the copies below run
 * short or long.
 */
function covering(ranges: unknown, iova: bigint, len: number, op: string): IovaRange[] {
  let sum = 0;
  if (Array.isArray(ranges)) {
    for (const r of ranges as unknown[]) {
      const { base, length } = (r ?? {}) as Partial<IovaRange>;
      // No BigInt arithmetic here: this runs once per fragment of every translated bulk transfer.
      if (typeof base !== "bigint" || base < 0n || !Number.isSafeInteger(length) || (length as number) <= 0) {
        sum = -1;
        break;
      }
      sum += length as number;
    }
    if (sum === len) return ranges as IovaRange[];
  }
  throw new IommuMisconfiguredError(
    op,
    `the IOMMU translated ${hex(iova)}+${hex(len)} to something other than ranges covering ${len} bytes`,
  );
}

/**
 * An error of the backend (which names its own call: `getSlicesResult`, a slice's `copyFrom`) for the
 * physical range `[gpa, gpa + len)`, re-raised under this object's operation.
 */
function underOp(e: unknown, op: string, gpa: bigint, len: number): unknown {
  if (!(e instanceof GuestMemoryError) || e.op === op) return e;
  if (e instanceof InvalidGuestAddressError) return new InvalidGuestAddressError(op, e.addr);
  if (e instanceof ReadOnlyError) return new ReadOnlyError(op, "guest address", gpa, len);
  if (e instanceof NoAccessError) return copyError(CopyStatus.NoAccess, op, "guest address", gpa, len);
  if (e instanceof RegionClosedError) return new RegionClosedError(op, `the memory at guest address ${hex(gpa)}`);
  return e;
}

/** Whether `backend` has what {@link IommuMemory} uses of a backend (see {@link PhysicalMemory}). */
function isPhysicalMemory<S extends GuestSlice<S>>(backend: PhysicalMemory<S>): boolean {
  if (backend === null || typeof backend !== "object") return false;
  const b = backend as Partial<PhysicalMemory<S>>;
  return typeof b.regions === "function" && typeof b.findRegion === "function" &&
    typeof b.checkRange === "function" && typeof b.getSlicesResult === "function";
}
