/**
 * `IommuMemory`: guest memory seen through an IOMMU (vm-memory 0.18's type of that name). Addresses
 * are I/O virtual addresses while translation is on and guest physical addresses while it is off.
 * @module
 */

import { type AddressLike, toAddress, toLength } from "../address.ts";
import { bytesWindow } from "../caller_bytes.ts";
import { type DirtyLog, logReach } from "../memory/dirty_log.ts";
import type { RegionViews } from "../memory/region_views.ts";
import {
  CannotResolveError,
  FragmentedError,
  GuestMemoryError,
  InvalidArgumentError,
  InvalidBackendAddressError,
  InvalidGuestAddressError,
  IommuError,
  IommuMisconfiguredError,
  type IovaRange,
  NoAccessError,
  ReadOnlyError,
  RegionClosedError,
} from "../errors.ts";
import { hex } from "../format.ts";
import { ByteAccess } from "../memory/byte_access.ts";
import { copyError, copyRange, CopyStatus } from "../memory/copy_range.ts";
import type { GuestMemoryBackend, SlicesResult } from "../memory/guest_memory_backend.ts";
import { NoMemoryRegionError } from "../memory/region_errors.ts";
import type { VolatileSlice } from "../memory/volatile_slice.ts";
import { explainRequest, type Explanation } from "./explain.ts";
import type { GuestMemory, PhysicalMemory } from "./guest_memory.ts";
import { inspectIommuMemory, type IommuMemoryJson, iommuMemoryJson } from "./inspect_iommu.ts";
import type { Iommu } from "./iommu.ts";
import { type Iotlb, IOVA_PAGE_SCALE } from "./iotlb.ts";
import { endGuards, type GuardLife, TranslationGuard } from "./translation_guard.ts";
import { abortable, type AbortOptions, signalOf } from "../memory/abort_signal.ts";
import { type Permission, Permissions, toPermission } from "./permissions.ts";

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

// Slots of the scalar translation cache of IommuMemory.locate.
const SLOTS = 32;

/**
 * One remembered translation: IOVAs `[from, to)` are view offsets `IOVA + offset` of `views` for
 * the access bits in `allows`, while the IOTLB's generation is `generation`.
 */
class TranslationSlot {
  from = 0;
  to = -1;
  offset = 0;
  allows = 0;
  generation = -1;
  logBase = 0;
  views: RegionViews | undefined = undefined;
  log: DirtyLog | undefined = undefined;
}
const PAGE_SCALE = IOVA_PAGE_SCALE; // a local copy, folded by V8 (see iotlb.ts)
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
 * Scalar accesses that hit one IOTLB entry inside one region take an allocation-free path (the
 * IOTLB's `translateFast`, then the backend's region lookup).
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, IommuMemory, IotlbIommu, Permissions } from "../../mod.ts";
 * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
 * const iommu = new IotlbIommu();
 * iommu.iotlb.setMapping(0x100000, 0x4000, 0x1000, Permissions.ReadWrite);
 * const mem = new IommuMemory(ram, iommu);
 * mem.writeU32(0x100010, 7);
 * console.log(ram.readU32(0x4010)); // 7
 * ```
 */
export class IommuMemory extends ByteAccess implements GuestMemory, Disposable {
  /** Class name used in errors. */
  protected readonly typeName: string = "IommuMemory";
  readonly #backend: PhysicalMemory;
  readonly #iommu: Iommu;
  readonly #iotlb: Iotlb | undefined;
  readonly #bitmap: DirtyLog | undefined;
  readonly #logBy: DirtyLogAddressing;
  readonly #revocation: RevocationMode;
  #enabled: boolean;
  // Recent scalar translations (see locate), one slot per IOVA page hash: several pages in turn (a
  // ring and its buffers) each keep their translation.
  readonly #slots: TranslationSlot[] = Array.from({ length: SLOTS }, () => new TranslationSlot());
  #lastSlot: TranslationSlot = this.#slots[0];
  /** Scratch for `Iotlb.translateRanges`: up to 32 `(target, length)` pairs per bulk transfer. */
  readonly #pairs = new Float64Array(64);
  /** The lifetime of the slices' guards; ended by dispose. */
  readonly #life: GuardLife = { ended: false, watching: new Set() };
  /** How to end each asynchronous call in flight, for dispose. */
  readonly #waits = new Set<AbortController>();

  /**
   * Puts `backend` behind `iommu`.
   *
   * @example
   * ```ts
   * import { AtomicBitmap, GuestMemoryMmap, IommuMemory, IotlbIommu } from "../../mod.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const mem = new IommuMemory(ram, new IotlbIommu(), { bitmap: new AtomicBitmap(1 << 20), logBy: "iova" });
   * console.log(mem.iommuEnabled); // true
   * ```
   * @throws {InvalidArgumentError} for a backend or IOMMU of the wrong kind, a bitmap with `logBy: "gpa"`,
   *   or an unknown `revocation`.
   */
  constructor(backend: PhysicalMemory, iommu: Iommu, options: IommuMemoryOptions = {}) {
    super();
    const op = "IommuMemory";
    if (!(backend instanceof ByteAccess) || typeof (backend as Partial<GuestMemoryBackend>).regions !== "function") {
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
    this.#iommu = iommu;
    this.#iotlb = iommu.iotlb;
    this.#bitmap = options.bitmap;
    this.#logBy = logBy;
    this.#revocation = revocation;
    this.#enabled = enabled;
  }

  /** The physical memory behind the IOMMU. @example `mem.backend.numRegions` */
  get backend(): PhysicalMemory {
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
   * import { GuestMemoryMmap, IommuMemory, IotlbIommu, Permissions } from "../../mod.ts";
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
   * import { GuestMemoryMmap, IommuMemory, IotlbIommu } from "../../mod.ts";
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
    this.#enabled = value;
  }

  /**
   * The same IOMMU, bitmap and settings over another backend (vhost-user replaces its memory table
   * at run time). The two objects share the IOMMU and bitmap; switching translation on one does
   * not switch it on the other.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, IommuMemory, IotlbIommu } from "../../mod.ts";
   * using a = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * using b = GuestMemoryMmap.fromRanges([[0, 0x2000]]);
   * const mem = new IommuMemory(a, new IotlbIommu());
   * console.log(mem.withReplacedBackend(b).iommu === mem.iommu); // true
   * ```
   */
  withReplacedBackend(newBackend: PhysicalMemory): IommuMemory {
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
   * import { GuestMemoryMmap, IommuMemory, IotlbIommu } from "../../mod.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(new IommuMemory(ram, new IotlbIommu()).physicalMemory()); // undefined
   * ```
   */
  physicalMemory(): PhysicalMemory | undefined {
    return this.#enabled ? undefined : this.#backend;
  }

  /**
   * Translation state, dirty-log addressing and bitmap, IOMMU counters, the IOTLB entries and the
   * physical memory, for `JSON.stringify`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, IommuMemory, IotlbIommu } from "../../mod.ts";
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
   * import { GuestMemoryMmap, IommuMemory, IotlbIommu, Permissions } from "../../mod.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * const iommu = new IotlbIommu();
   * iommu.iotlb.setMapping(0x8000, 0, 0x1000, Permissions.Read);
   * const mem = new IommuMemory(ram, iommu);
   * console.log(mem.checkRange(0x8000, 16, Permissions.Read), mem.checkRange(0x8000, 16, Permissions.Write)); // true false
   * ```
   */
  checkRange(addr: AddressLike, len: number, access: Permission = Permissions.No): boolean {
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
   * import { GuestMemoryMmap, IommuMemory, IotlbIommu, Permissions } from "../../mod.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const iommu = new IotlbIommu();
   * iommu.iotlb.setMapping(0x2a000, 0x4000, 0x80, Permissions.Read);
   * iommu.iotlb.setMapping(0x2a080, 0x8000, 0x80, Permissions.Read);
   * const mem = new IommuMemory(ram, iommu);
   * console.log(mem.getSlices(0x2a000, 0x100, Permissions.Read).map((s) => s.len)); // [128, 128]
   * ```
   */
  getSlices(addr: AddressLike, count: number, access: Permission = Permissions.Read): VolatileSlice[] {
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
   * import { GuestMemoryMmap, IommuMemory, IotlbIommu, Permissions } from "../../mod.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * const iommu = new IotlbIommu();
   * iommu.iotlb.setMapping(0, 0x800, 0x1000, Permissions.Read); // the second half has no RAM
   * const { slices, error } = new IommuMemory(ram, iommu).getSlicesResult(0, 0x1000, Permissions.Read);
   * console.log(slices.length, error?.kind); // 1 "InvalidGuestAddress"
   * ```
   */
  getSlicesResult(addr: AddressLike, count: number, access: Permission = Permissions.Read): SlicesResult {
    const op = "getSlicesResult";
    return this.#slices(addr, count, toPermission(access, `IommuMemory.${op}`, "access"), op);
  }

  /**
   * The single slice of `[addr, addr + count)`: it must translate to one contiguous range inside
   * one region, else `Fragmented {iovaRange, continuousLength}` (or the translation error).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, IommuMemory, IotlbIommu, Permissions } from "../../mod.ts";
   * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const iommu = new IotlbIommu();
   * iommu.iotlb.setMapping(0x1000, 0x3000, 0x1000, Permissions.ReadWrite);
   * console.log(new IommuMemory(ram, iommu).getSlice(0x1000, 0x100, Permissions.Write).len); // 256
   * ```
   */
  getSlice(addr: AddressLike, count: number, access: Permission = Permissions.Read): VolatileSlice {
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
   * import { GuestMemoryMmap, IommuMemory, IotlbIommu, Permissions } from "../../mod.ts";
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
  ): Promise<VolatileSlice[]> {
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
   * import { GuestMemoryMmap, IommuMemory, IotlbIommu, Permissions } from "../../mod.ts";
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
   * import { GuestMemoryMmap, IommuMemory, IotlbIommu, Permissions } from "../../mod.ts";
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
   * import { GuestMemoryMmap, IommuMemory, IotlbIommu, Permissions } from "../../mod.ts";
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

  // ---- ByteAccess hooks ----

  /** Where a one-region range lies, for the scalar fast path (see `ByteAccess.locate`). */
  protected locate(addr: AddressLike, size: number, write: boolean): number {
    if (!this.#enabled) return this.locateThrough(this.#backend, addr, size, write);
    const iotlb = this.#iotlb;
    if (typeof addr !== "number" || iotlb === undefined) return -1;
    const want = write ? Permissions.Write : Permissions.Read;
    // A recent translation, while the IOTLB is unchanged: the IOVA window where one entry and one
    // view of one region overlap maps to view offsets by a constant. Two compares and the
    // generation, instead of the IOTLB's cache and the backend's region lookup. The slot is picked
    // by the IOVA's 4 KiB page (a hash, so `&` on the truncated page number is fine).
    // The slot filled last first (a burst in one wide window needs no hash), then the page's slot.
    // The window compares turn away negative numbers, NaN, infinities and anything from 2^53 on
    // (no window reaches past it); a fraction inside a window needs its own test, or it would index
    // the views at a fractional offset (reading undefined, writing at the rounded-down address).
    let e = this.#lastSlot;
    if (!(addr >= e.from && addr <= e.to - size)) e = this.#slots[(addr * PAGE_SCALE) & (SLOTS - 1)];
    if (
      addr >= e.from && addr <= e.to - size && (e.allows & want) === want && iotlb.generation === e.generation &&
      Number.isInteger(addr)
    ) {
      this.hitViews = e.views!;
      this.hitLog = e.log;
      this.hitLogBase = e.logBase;
      return addr + e.offset;
    }
    const gpa = iotlb.translateFast(addr, size, want);
    if (gpa < 0) return -1;
    // A write the IOVA log cannot record takes the slow path, which refuses it.
    if (write && addr + size > this.#iovaReach()) return -1;
    const o = this.locateThrough(this.#backend, gpa, size, write);
    if (o < 0) return -1;
    if (this.#logBy === "iova") {
      this.hitLog = this.#bitmap;
      this.hitLogBase = addr - o;
    }
    this.#remember(iotlb, addr, o, want);
    return o;
  }

  /** Caches the translation `locate` just made in the slot of `addr`'s page (see there). */
  #remember(iotlb: Iotlb, addr: number, o: number, want: Permission): void {
    const views = this.hitViews;
    const from = Math.max(iotlb.lastHitStart, addr - o);
    // Not past what the IOVA log records, so that no write beyond it is served from here.
    const to = Math.min(iotlb.lastHitEnd, addr - o + views.u8.length, this.#iovaReach());
    const offset = o - addr;
    const generation = iotlb.generation;
    const e = this.#slots[(addr * PAGE_SCALE) & (SLOTS - 1)];
    this.#lastSlot = e;
    const same = e.views === views && e.from === from && e.to === to && e.offset === offset &&
      e.generation === generation;
    e.allows = same ? e.allows | want : want;
    e.from = from;
    e.to = to;
    e.offset = offset;
    e.generation = generation;
    e.logBase = this.hitLogBase;
    e.views = views;
    e.log = this.hitLog;
  }

  /** Copies as far as the memory reaches (see `ByteAccess.transfer`). */
  protected transfer(buf: Uint8Array, len: number, addr: AddressLike, write: boolean, op: string): number {
    if (len !== 0 && typeof addr === "number") {
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
    let r: SlicesResult;
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

  /** The checked target of an atomic (see `ByteAccess.atomicTarget`). */
  protected atomicTarget(addr: AddressLike, size: number, write: boolean, op: string): number {
    const backend = this.#backend;
    if (!this.#enabled) return this.atomicTargetThrough(backend, addr, size, write, op);
    const full = `IommuMemory.${op}`;
    const access = atomicAccess(op, write);
    let gpa: AddressLike = -1;
    const iotlb = this.#iotlb;
    if (typeof addr === "number" && iotlb !== undefined) gpa = iotlb.translateFast(addr, size, access);
    if (gpa === -1) {
      const a = toAddress(addr, full, "addr");
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
    const o = this.atomicTargetThrough(backend, gpa, size, write, op);
    if (this.#logBy === "iova") {
      if (write) this.#refuseUnlogged(addr, size, full);
      this.hitLog = this.#bitmap;
      this.hitLogBase = (typeof addr === "number" ? addr : Number(addr)) - o; // exact wherever a store logs
    }
    return o;
  }

  /** Zero-byte I/O is translated too while translation is on (see `ByteAccess.checkEmptyIo`). */
  protected override checkEmptyIo(addr: AddressLike, write: boolean, op: string): void {
    if (this.#enabled) this.#slices(addr, 0, write ? Permissions.Write : Permissions.Read, op);
  }

  /** The fragments volatile I/O goes through (see `ByteAccess.ioSlices`). */
  protected ioSlices(addr: AddressLike, count: number, write: boolean, op: string): VolatileSlice[] {
    const r = this.#slices(addr, count, write ? Permissions.Write : Permissions.Read, op, write);
    if (r.error !== undefined && r.slices.length === 0) throw r.error;
    return r.slices;
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
  #iovaLogged(s: VolatileSlice, writable: boolean, iova: number | bigint): VolatileSlice {
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
  #slices(addr: AddressLike, count: number, access: Permission, name: string, writable = true): SlicesResult {
    const op = `IommuMemory.${name}`;
    const n = toLength(count, op, "count");
    const a = toAddress(addr, op, "addr");
    const backend = this.#backend;
    if (!this.#enabled) return physicalSlices(backend, a, n, op);
    // A zero-length request is translated (vm-memory 0.18) but writes nothing to log.
    if (writable && n > 0 && this.#logBy === "iova") this.#refuseUnlogged(a, n, op);
    const ranges = this.#translate(a, n, access, op);
    const slices: VolatileSlice[] = [];
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
    const o = typeof gpa === "number" || gpa < TWO_53_BIG ? this.locateThrough(backend, Number(gpa), n, write) : -1;
    if (o >= 0) {
      const log = iovaLog ? this.#bitmap : this.hitLog;
      const logBase = iovaLog ? at0 - o : this.hitLogBase;
      const status = copyRange(this.hitViews, o, buf, done, n, bufLen, write, log, logBase, "IommuMemory", op);
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
    if (typeof gpa === "number" || gpa < TWO_53_BIG) {
      if (this.locateThrough(this.#backend, Number(gpa), n, false) >= 0) {
        if (this.hitViews.mmap.closed) throw new RegionClosedError(op, `the memory at guest address ${hex(gpa)}`);
        return true;
      }
    }
    const r = physicalSlices(this.#backend, BigInt(gpa), n, op);
    if (r.error instanceof RegionClosedError) throw r.error;
    return r.error === undefined;
  }

  #emptySlice(addr: AddressLike, op: string): VolatileSlice {
    // A zero-length slice needs somewhere to point; the first region's start is always valid.
    const r = this.#backend.regions()[0];
    if (r === undefined) {
      throw new NoMemoryRegionError(op, `no memory behind ${hex(toAddress(addr, op, "addr"))}`);
    }
    return r.getSlice(0, 0);
  }
}

/** The backend's fragments of a physical range, its errors named under `op`. */
function physicalSlices(backend: PhysicalMemory, gpa: bigint, len: number, op: string): SlicesResult {
  let r: SlicesResult;
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
