/**
 * `GuestMemoryMmap`: guest physical memory as a sorted set of mmap-backed regions.
 * @module
 */

import { type AddressLike, toAddress, toLength } from "../core/address.ts";
import {
  InvalidArgumentError,
  InvalidBackendAddressError,
  InvalidGuestAddressError,
  RegionClosedError,
  ViewSeamError,
} from "../core/errors.ts";
import { hex } from "../core/format.ts";
import { AtomicBitmap, type SharedBitmap } from "../bitmap/atomic_bitmap.ts";
import type { FileOffset } from "../mmap/file_offset.ts";
import { MmapRegion } from "../mmap/mmap_region.ts";
import { Bytes } from "../core/bytes.ts";
import { MemoryRegionOverlapError, NoMemoryRegionError, UnsortedMemoryRegionsError } from "../core/region_errors.ts";
import { batchesFragments, copyFragments, FRAGMENTS, MAX_FRAGMENTS } from "../core/copy_engine.ts";
import { checkAtomic, copyError, copyRange, CopyStatus } from "../core/copy_range.ts";
import type { GuestMemory } from "../core/guest_memory.ts";
import type { GuestMemoryBackend, SlicesResult } from "../core/guest_memory_backend.ts";
import type { Permission } from "../core/permissions.ts";
import { GuestRegionMmap, type GuestRegionOptions } from "./guest_region_mmap.ts";
import { type GuestMemoryJson, inspectMemory, memoryJson } from "./inspect_memory.ts";
import type { GuestRegionPart as RegionPart } from "./guest_region_mmap.ts";
import { VolatileSlice } from "../core/volatile_slice.ts";
import type { ViewLocator, ViewWindow } from "../core/view_window.ts";

/** One region in a {@link SharedGuestMemory}. */
export interface SharedGuestRegion {
  /** Guest physical base address. */
  guestBase: bigint;
  /** Host address of the mapping (valid in every thread of this process). */
  hostAddress: bigint;
  /** Size in bytes. */
  size: number;
  /** `PROT_*` bits. */
  prot: number;
  /** `MAP_*` flags. */
  flags: number;
  /** The memfd behind the region, if it has one (for handing to another process). */
  fd?: number;
  /** The region's dirty bitmap, if it tracks dirty pages and the bitmap can be shared. */
  dirty?: SharedBitmap;
}

/** A structured-cloneable description of guest memory, for `postMessage` to a `Worker`. */
export interface SharedGuestMemory {
  /** The regions in address order. */
  regions: SharedGuestRegion[];
}

/**
 * Guest physical memory backed by host mappings (vm-memory's `GuestMemoryMmap`): region lookup,
 * fragments that cross region boundaries, and all of `Bytes` on guest addresses.
 *
 * `insertRegion` and `removeRegion` return a new collection and leave this one usable (for memory
 * hotplug); both share the regions. `close()` closes every region, which affects every collection
 * that shares them.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000], [0x10000, 0x10000]]);
 * mem.writeSlice(new Uint8Array([1, 2, 3, 4]), 0xfffe); // crosses into the second region
 * console.log(mem.getSlices(0xfffe, 4).map((s) => s.len)); // [2, 2]
 * ```
 */
export class GuestMemoryMmap extends Bytes
  implements GuestMemory, GuestMemoryBackend<GuestRegionMmap>, ViewLocator, Disposable {
  /** Class name used in errors. */
  protected readonly typeName: string = "GuestMemoryMmap";
  /** Addresses here are guest addresses. */
  protected readonly addressName: string = "addr";
  readonly #regions: readonly GuestRegionMmap[];
  /**
   * What lookups search: every region's parts in address order (one per region unless the runtime
   * caps a view below a region's size), so a view seam splits ranges exactly as a region boundary.
   */
  readonly #parts: readonly RegionPart[];
  readonly #starts: Float64Array;
  /** The part looked up last; undefined only in an empty collection. */
  #last: RegionPart | undefined;
  /** `#last`'s index in `#parts` (0 while there is none). */
  #lastIndex = 0;
  /**
   * `#last`'s first guest address and length when it ends below 2^30, else 0 and -1 (no number
   * matches). Only small integers are ever stored here, so V8 keeps both fields untagged and the
   * common case of `locate` is int32 arithmetic on two fields.
   */
  #smallStart = 0;
  #smallLen = -1;

  private constructor(regions: readonly GuestRegionMmap[]) {
    super();
    this.hitLog = undefined; // Bytes declares its hit fields; #remember sets all three
    this.hitLogBase = 0;
    this.#regions = regions;
    this.#parts = regions.flatMap((r) => r.parts);
    this.#starts = Float64Array.from(this.#parts, (p) => p.startNumber);
    // Empty: #smallLen stays -1 and #last undefined, so every lookup misses (see #find, #locateOther).
    if (this.#parts.length > 0) this.#remember(this.#parts[0], 0);
  }

  /**
   * Makes `p` the part `locate` tries first. `hitViews`, `hitLog` and `hitLogBase` always describe
   * `#last`, so a hit there stores nothing (each object store costs a write barrier).
   */
  #remember(p: RegionPart, index: number): void {
    this.#last = p;
    this.#lastIndex = index;
    const small = p.numeric && p.startNumber + p.len < 2 ** 30;
    this.#smallStart = small ? p.startNumber : 0;
    // `| 0`: a length below 2^30 checked just above, stored as a small integer even when the part
    // computed it as a double.
    this.#smallLen = small ? p.len | 0 : -1;
    this.hitViews = p.views;
    this.hitLog = p.bitmap;
    this.hitLogBase = p.offset;
  }

  /**
   * A collection with no regions (vm-memory's `GuestMemoryMmap::new()`): what a vhost-user back-end
   * holds before the front-end sends its memory table. Every access to it fails as on a hole
   * (`InvalidGuestAddressError` naming the address), zero-length ones succeed, lookups find nothing,
   * `lastAddr()` is 0; {@link GuestMemoryMmap.insertRegion} adds regions.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, GuestRegionMmap } from "../../mod.ts";
   * const none = GuestMemoryMmap.empty();
   * console.log(none.numRegions, none.checkRange(0, 1), none.checkRange(0, 0)); // 0 false true
   * using mem = none.insertRegion(GuestRegionMmap.fromRange(0, 0x1000));
   * console.log(mem.numRegions); // 1
   * ```
   */
  static empty(): GuestMemoryMmap {
    return new GuestMemoryMmap(Object.freeze([]));
  }

  /**
   * A collection of existing regions, which must be sorted by address and must not overlap. An
   * empty list is `NoMemoryRegion`, as in vm-memory (use {@link GuestMemoryMmap.empty} for that).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, GuestRegionMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRegions([GuestRegionMmap.fromRange(0, 0x1000)]);
   * ```
   */
  static fromRegions(regions: readonly GuestRegionMmap[]): GuestMemoryMmap {
    return new GuestMemoryMmap(validated("GuestMemoryMmap.fromRegions", regions));
  }

  /**
   * Maps one anonymous region per `[address, size]` range. Every region is mapped first, then the
   * set is checked; on any failure everything mapped so far is closed again.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0xa0000], [0x100000, 0x100000]], { dirtyPageSize: 4096 });
   * console.log(mem.numRegions); // 2
   * ```
   */
  static fromRanges(
    ranges: ReadonlyArray<readonly [AddressLike, number]>,
    options: GuestRegionOptions = {},
  ): GuestMemoryMmap {
    return GuestMemoryMmap.fromRangesWithFiles(
      ranges.map(([a, s]) => [a, s, undefined] as const),
      options,
      "fromRanges",
    );
  }

  /**
   * Like {@link GuestMemoryMmap.fromRanges}, with an optional file behind each range.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, MmapRegion } from "../../mod.ts";
   * using ram = MmapRegion.memfd(0x2000);
   * using mem = GuestMemoryMmap.fromRangesWithFiles([[0, 0x2000, ram.fileOffset]]);
   * ```
   */
  static fromRangesWithFiles(
    ranges: ReadonlyArray<readonly [AddressLike, number, FileOffset | undefined]>,
    options: GuestRegionOptions = {},
    name = "fromRangesWithFiles",
  ): GuestMemoryMmap {
    const op = `GuestMemoryMmap.${name}`;
    if (!Array.isArray(ranges)) throw new InvalidArgumentError(op, "ranges", ranges, "must be an array");
    const regions: GuestRegionMmap[] = [];
    try {
      for (const range of ranges) {
        if (!Array.isArray(range) || range.length < 2) {
          throw new InvalidArgumentError(
            op,
            "ranges",
            range,
            "entries must be [address, size] or [address, size, fileOffset]",
          );
        }
        regions.push(GuestRegionMmap.fromRange(range[0], range[1], range[2], options));
      }
      return new GuestMemoryMmap(validated(op, regions));
    } catch (e) {
      for (const r of regions) r.close();
      throw e;
    }
  }

  /**
   * A non-owning view of guest memory described by {@link GuestMemoryMmap.toShared}, typically in
   * a `Worker`. Its regions borrow the host mappings (closing it unmaps nothing) and share the
   * dirty bitmaps. The owner must keep the memory open for as long as any view of it is used;
   * closing the owner while a worker still touches the memory crashes the process.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * using view = GuestMemoryMmap.fromShared(mem.toShared()); // what a worker would do
   * view.writeU8(0, 9);
   * console.log(mem.readU8(0)); // 9
   * ```
   */
  static fromShared(shared: SharedGuestMemory): GuestMemoryMmap {
    const op = "GuestMemoryMmap.fromShared";
    if (shared === null || typeof shared !== "object" || !Array.isArray(shared.regions)) {
      throw new InvalidArgumentError(op, "shared", shared, "must be what toShared() returned");
    }
    const regions = shared.regions.map((r) => {
      const mmap = MmapRegion.fromRawPointer(r.hostAddress, r.size, r.prot, r.flags);
      return new GuestRegionMmap(mmap, r.guestBase, r.dirty ? AtomicBitmap.fromShared(r.dirty) : undefined);
    });
    return new GuestMemoryMmap(validated(op, regions, true));
  }

  /**
   * Describes this memory for another thread of the same process (see
   * {@link GuestMemoryMmap.fromShared}): host addresses, sizes, protection, memfds and the shared
   * dirty bitmaps. Throws `RegionClosedError` if a region is closed.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
   * const worker = { postMessage(_: unknown) {} }; // a real Worker in practice
   * worker.postMessage(mem.toShared());
   * ```
   */
  toShared(): SharedGuestMemory {
    return {
      regions: this.#regions.map((r) => {
        if (r.mmap.closed) r.views.refresh("GuestMemoryMmap.toShared"); // refuses under this call's name
        const region: SharedGuestRegion = {
          guestBase: r.startAddr,
          hostAddress: r.mmap.hostAddress,
          size: r.len,
          prot: r.mmap.prot,
          flags: r.mmap.flags,
        };
        const fd = r.mmap.fd;
        if (fd !== undefined) region.fd = fd;
        if (r.bitmap instanceof AtomicBitmap) region.dirty = r.bitmap.toShared();
        return region;
      }),
    };
  }

  /** Number of regions. */
  get numRegions(): number {
    return this.#regions.length;
  }

  /**
   * The regions in address order.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(mem.regions()[0].len); // 4096
   * ```
   */
  regions(): readonly GuestRegionMmap[] {
    return this.#regions;
  }

  /**
   * The regions and the holes between them, with hex addresses, backing, protection and dirty
   * bitmaps, for `JSON.stringify`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x3000, 0x1000]]);
   * console.log(JSON.stringify(mem.toJSON().holes)); // [{"gpa":"0x1000","size":"0x2000"}]
   * ```
   */
  toJSON(): GuestMemoryJson {
    return memoryJson(this.#regions);
  }

  /** A table like QEMU's `info mtree`, for `console.log`. @example `console.log(mem)` */
  [Symbol.for("Deno.customInspect")](): string {
    return inspectMemory(this.#regions);
  }

  /** The same text for Node's and Bun's `util.inspect`. @example `console.log(mem)` */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return inspectMemory(this.#regions);
  }

  /**
   * The region containing `addr` (binary search, with the last hit checked first).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
   * console.log(mem.findRegion(0x1fff)?.startAddr, mem.findRegion(0x2000)); // 4096n undefined
   * ```
   */
  findRegion(addr: AddressLike): GuestRegionMmap | undefined {
    return this.#find(toAddress(addr, "GuestMemoryMmap.findRegion", "addr"))?.region;
  }

  /**
   * The highest guest address backed by a region; 0 for an empty collection (as in vm-memory).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x4000, 0x1000]]);
   * console.log(mem.lastAddr()); // 20479n
   * ```
   */
  lastAddr(): bigint {
    // vm-memory folds the regions' last addresses starting from 0: an empty collection says 0.
    return this.#regions.length === 0 ? 0n : this.#regions[this.#regions.length - 1].lastAddr;
  }

  /**
   * The region containing `addr` and the offset inside it.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
   * console.log(mem.toRegionAddr(0x1800)?.[1]); // 2048n
   * ```
   */
  toRegionAddr(addr: AddressLike): [GuestRegionMmap, bigint] | undefined {
    const a = toAddress(addr, "GuestMemoryMmap.toRegionAddr", "addr");
    const r = this.#find(a)?.region;
    return r ? [r, a - r.startAddr] : undefined;
  }

  /**
   * Whether some region contains `addr`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(mem.addressInRange(0x1000)); // false
   * ```
   */
  addressInRange(addr: AddressLike): boolean {
    return this.findRegion(addr) !== undefined;
  }

  /**
   * `addr` if some region contains it.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(mem.checkAddress(0x10)); // 16n
   * ```
   */
  checkAddress(addr: AddressLike): bigint | undefined {
    const a = toAddress(addr, "GuestMemoryMmap.checkAddress", "addr");
    return this.#find(a) ? a : undefined;
  }

  /**
   * Whether every byte of `[addr, addr + len)` is backed; true for `len` 0 at any address.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x1000, 0x1000]]);
   * console.log(mem.checkRange(0xf00, 0x200), mem.checkRange(0x1f00, 0x200)); // true false
   * ```
   */
  checkRange(addr: AddressLike, len: number, _access?: Permission): boolean {
    const r = this.#walk("checkRange", addr, len, false);
    return r.error === undefined;
  }

  /**
   * `base + offset` if that address is backed (checked: no wrap past 2^64).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(mem.checkedOffset(0x800, 0x7ff), mem.checkedOffset(0x800, 0x800)); // 4095n undefined
   * ```
   */
  checkedOffset(base: AddressLike, offset: AddressLike): bigint | undefined {
    const op = "GuestMemoryMmap.checkedOffset";
    const sum = toAddress(base, op, "base") + toAddress(offset, op, "offset");
    if (sum >= 1n << 64n) return undefined;
    return this.#find(sum) ? sum : undefined;
  }

  /**
   * The host address backing `addr`; `InvalidGuestAddress` if none does.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
   * console.log(mem.getHostAddress(0x1000) === mem.regions()[0].mmap.hostAddress); // true
   * ```
   */
  getHostAddress(addr: AddressLike): bigint {
    const op = "GuestMemoryMmap.getHostAddress";
    const a = toAddress(addr, op, "addr");
    const r = this.#find(a)?.region;
    if (!r) throw new InvalidGuestAddressError(op, a);
    if (r.mmap.closed) r.views.refresh(op); // throws RegionClosed under this op
    return r.getHostAddress(a - r.startAddr);
  }

  /**
   * One slice of `count` bytes at `addr`, inside one region: `InvalidGuestAddress` if `addr` is not
   * backed, `InvalidBackendAddress` if the range crosses the region's end.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(mem.getSlice(0x100, 0x10).len); // 16
   * ```
   */
  getSlice(addr: AddressLike, count: number): VolatileSlice {
    // A number range inside the last part needs no bigint: `locate` checks the address, and a
    // positive integer count that fits is valid (0 and anything odd take the full path below).
    if (typeof addr === "number" && typeof count === "number" && count > 0 && Number.isInteger(count)) {
      const o = this.locate(addr, count, false);
      const p = this.#last!; // a hit made it the last part
      if (o >= 0 && !p.region.mmap.closed) return new VolatileSlice(p.views, o, count, p.bitmap, p.offset);
    }
    const op = "GuestMemoryMmap.getSlice";
    const a = toAddress(addr, op, "addr");
    const n = toLength(count, op, "count");
    const p = this.#find(a);
    if (!p) throw new InvalidGuestAddressError(op, a);
    const r = p.region;
    if (r.mmap.closed) r.views.refresh(op); // a slice of a closed region would only fail later
    const off = Number(a - p.startAddr);
    if (n > p.len - off) {
      if (n <= r.len - p.offset - off) {
        throw new ViewSeamError(op, "guest address", a, n, p.lastAddr + 1n, r.mmap.viewSize);
      }
      throw new InvalidBackendAddressError(
        op,
        `[${hex(a)}, ${hex(a + BigInt(n))}) crosses the end of the region [${hex(r.startAddr)}, ${hex(r.lastAddr)}]`,
      );
    }
    return new VolatileSlice(p.views, off, n, p.bitmap, p.offset);
  }

  /**
   * The fragments of `[addr, addr + count)`, split at region boundaries. If the first fragment
   * fails its error is thrown; a later failure ends the list early (the lengths then add up to less
   * than `count`; use {@link GuestMemoryMmap.getSlicesResult} to see why). `count` 0 gives `[]`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0x800, 0x400], [0xc00, 0x400]]);
   * console.log(mem.getSlices(0xa00, 0x400).map((s) => s.len)); // [512, 512]
   * ```
   */
  getSlices(addr: AddressLike, count: number, _access?: Permission): VolatileSlice[] {
    const result = this.#walk("getSlices", addr, count, true);
    if (result.error !== undefined && result.slices.length === 0) throw result.error;
    return result.slices;
  }

  /**
   * The fragments of `[addr, addr + count)` and, if they stop early, the error that stopped them.
   * A range that reaches a closed region (before a hole) gives no fragments, only its
   * `RegionClosedError`: no part of it may be used.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x400]]);
   * const { slices, error } = mem.getSlicesResult(0, 0x500);
   * console.log(slices.length, error?.kind); // 1 "InvalidGuestAddress"
   * ```
   */
  getSlicesResult(addr: AddressLike, count: number, _access?: Permission): SlicesResult {
    return this.#walk("getSlicesResult", addr, count, true);
  }

  /**
   * This collection: physical memory is addressed directly (vm-memory's `physical_memory()` of a
   * backend). With {@link GuestMemoryMmap.checkRange} and {@link GuestMemoryMmap.getSlices}, whose
   * optional `access` argument is ignored (physical memory has no per-access permissions beyond its
   * protection), this makes a `GuestMemoryMmap` the permission-aware `GuestMemory` too.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(mem.physicalMemory() === mem); // true
   * ```
   */
  physicalMemory(): GuestMemoryMmap {
    return this;
  }

  /**
   * A new collection with `region` added; this one is unchanged. Overlap → `MemoryRegionOverlap`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, GuestRegionMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * const bigger = mem.insertRegion(GuestRegionMmap.fromRange(0x10000, 0x1000));
   * console.log(mem.numRegions, bigger.numRegions); // 1 2
   * ```
   */
  insertRegion(region: GuestRegionMmap): GuestMemoryMmap {
    const op = "GuestMemoryMmap.insertRegion";
    if (!(region instanceof GuestRegionMmap)) {
      throw new InvalidArgumentError(op, "region", region, "must be a GuestRegionMmap");
    }
    const next = [...this.#regions, region].sort((
      a,
      b,
    ) => (a.startAddr < b.startAddr ? -1 : a.startAddr > b.startAddr ? 1 : 0));
    return new GuestMemoryMmap(validated(op, next));
  }

  /**
   * A new collection without the region that starts exactly at `base` and has exactly `size`
   * bytes, and that region (not closed). Otherwise `NoMemoryRegion`. Removing the last region gives
   * an empty collection (as in vm-memory; see {@link GuestMemoryMmap.empty}).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x1000, 0x1000]]);
   * const [smaller, removed] = mem.removeRegion(0x1000, 0x1000);
   * console.log(smaller.numRegions, removed.startAddr); // 1 4096n
   * ```
   */
  removeRegion(base: AddressLike, size: number): [GuestMemoryMmap, GuestRegionMmap] {
    const op = "GuestMemoryMmap.removeRegion";
    const b = toAddress(base, op, "base");
    const n = toLength(size, op, "size");
    const i = this.#regions.findIndex((r) => r.startAddr === b && r.len === n);
    if (i < 0) throw new NoMemoryRegionError(op, `no region starts at ${hex(b)} with ${hex(n)} bytes`);
    return [new GuestMemoryMmap(Object.freeze(this.#regions.filter((_, j) => j !== i))), this.#regions[i]];
  }

  /**
   * Closes every region (see `MmapRegion.close`).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * const mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * mem.close();
   * ```
   */
  close(): void {
    for (const r of this.#regions) r.close();
  }

  /** Same as {@link GuestMemoryMmap.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** The fragments volatile I/O goes through (see `Bytes.ioSlices`). */
  protected ioSlices(addr: AddressLike, count: number, _write: boolean, op: string): VolatileSlice[] {
    // Walk under the caller's op so a hole at the start is reported as, e.g., readVolatileFrom.
    const result = this.#walk(op, addr, count, true);
    if (result.error !== undefined && result.slices.length === 0) throw result.error;
    return result.slices;
  }

  // ---- scalar reads: GuestMemoryMmap's own fast paths ----
  //
  // Bytes' scalar paths are one function for every memory type, and V8 keeps one feedback, and
  // one optimised code, for a function. Once GuestMemoryMmap's reads have compiled Bytes' load
  // helpers with its own `locate` inlined, an IommuMemory read in a later loop is sized by that
  // code against V8's inlining budget and may become a call (IOMMU u64 reads measured 12-13 ns in
  // some rounds and 19-21 ns in others of the same benchmark). These copies of the common case
  // (a naturally aligned range in one part, found by this class's `locate`) are its alone, so
  // the shared helpers serve the other memory types only; everything else, errors included, is
  // Bytes'.

  /** `locate` for a naturally aligned read: the offset in `hitViews`, else -1. */
  #aligned(addr: AddressLike, size: number): number {
    const o = this.locate(addr, size, false);
    // -1 & (size - 1) is nonzero for every size but 1, where o itself is then -1.
    return (o & (size - 1)) === 0 ? o : -1;
  }

  /** Reads a u8 (see {@link Bytes.readU8}). @example `mem.readU8(0x1000)` */
  override readU8(addr: AddressLike): number {
    const o = this.#aligned(addr, 1);
    if (o >= 0) {
      const v = this.hitViews, a = v.u8;
      if (v.readable === true && o < a.length) return a[o];
    }
    return super.readU8(addr);
  }

  /** Reads a little-endian u16 (see {@link Bytes.readU16}). @example `mem.readU16(0x1000)` */
  override readU16(addr: AddressLike): number {
    const o = this.#aligned(addr, 2);
    if (o >= 0) {
      const v = this.hitViews, a = v.u16, i = o / 2;
      if (v.readable === true && i < a.length) return a[i];
    }
    return super.readU16(addr);
  }

  /** Reads a little-endian u32 (see {@link Bytes.readU32}). @example `mem.readU32(0x1000)` */
  override readU32(addr: AddressLike): number {
    const o = this.#aligned(addr, 4);
    if (o >= 0) {
      const v = this.hitViews, a = v.u32, i = o / 4;
      if (v.readable === true && i < a.length) return a[i];
    }
    return super.readU32(addr);
  }

  /** Reads a little-endian u64 as a `bigint` (see {@link Bytes.readU64}). @example `mem.readU64(0x1000)` */
  override readU64(addr: AddressLike): bigint {
    const o = this.#aligned(addr, 8);
    if (o >= 0) {
      const v = this.hitViews, a = v.u64, i = o / 8;
      if (v.readable === true && i < a.length) return a[i];
    }
    return super.readU64(addr);
  }

  /** Where a one-region range lies, for the scalar fast path (see `Bytes.locate`). */
  protected locate(addr: AddressLike, size: number, _write: boolean): number {
    if (typeof addr !== "number") return -1;
    const off = addr - this.#smallStart;
    if (off >= 0 && off <= this.#smallLen - size && Number.isInteger(addr)) return off;
    return this.#locateOther(addr, size);
  }

  /** `locate` beyond the int32 case: the last part by its own fields, then a binary search. */
  #locateOther(addr: number, size: number): number {
    const last = this.#last;
    if (!Number.isInteger(addr) || addr < 0 || last === undefined) return -1;
    const o = addr - last.startNumber;
    // `=== true`: V8 cannot tell the field holds a boolean and would otherwise test every falsy value.
    if (o >= 0 && o <= last.len - size && last.numeric === true) return o;
    // Starts in the last part but runs past it: no one part holds the range, no search needed.
    if (o >= 0 && o < last.len && last.numeric === true) return -1;
    const i = this.#indexOfNumber(addr);
    if (i < 0) return -1;
    const found = this.#parts[i];
    const off = addr - found.startNumber;
    if (off > found.len - size) return -1;
    this.#remember(found, i);
    return off;
  }

  /**
   * The part holding all of `[addr, addr + size)` as a window by guest address (the view
   * capability, see `ViewLocator`): the part looked up last, else a binary search. `undefined` for
   * a hole, a range that crosses a region or view boundary, or an address that is not an integer
   * in [0, 2^53). Allocates nothing and never throws.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
   * const w = mem.locateWindow(0x1010, 4);
   * console.log(w?.start, w?.end, w?.delta); // 4096 8192 -4096
   * ```
   */
  locateWindow(addr: number, size: number): ViewWindow | undefined {
    // typeof first: comparing an object would call its valueOf.
    if (typeof addr !== "number" || typeof size !== "number") return undefined;
    const w = this.#last?.window;
    if (w !== undefined && addr >= w.start && addr <= w.end - size && size > 0 && Number.isInteger(addr)) return w;
    if (!(Number.isInteger(addr) && addr >= 0 && size > 0)) return undefined;
    const i = this.#indexOfNumber(addr);
    if (i < 0) return undefined;
    const found = this.#parts[i];
    if (addr - found.startNumber > found.len - size) return undefined;
    this.#remember(found, i);
    return found.window;
  }

  /**
   * Copies as far as the memory reaches (see `Bytes.transfer`): up to the first hole, as
   * vm-memory does. A closed region is different: it is still listed (a collection that outlived a
   * hot-unplug), so the caller holds memory it gave up, a bug of its own rather than a gap in the
   * guest's address map. A short count would pass it off as a hole, and bytes written before it
   * could not be reported (the call throws), so a transfer that would touch a closed region throws
   * `RegionClosedError` before moving a byte.
   */
  protected transfer(buf: Uint8Array, len: number, addr: AddressLike, write: boolean, op: string): number {
    // Small enough for V8 to inline into read/write/readSlice/writeSlice (the whole method was over
    // its bytecode limit, and the call cost a wide 4 KiB read tens of ns); the rest is apart.
    if (typeof addr === "number" && len !== 0) {
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
          "GuestMemoryMmap",
          op,
        );
        if (status === CopyStatus.Done) return len;
      } else if (Number.isSafeInteger(addr) && addr >= 0) {
        const done = this.#transferAcross(buf, len, addr, write, op);
        if (done > 0) return done;
      }
    }
    return this.#transferSlow(buf, len, addr, write, op);
  }

  /**
   * `transfer` past its fast cases (a range in the part located last, or across parts by number):
   * the general walk by bigint, which also reports why a refused copy failed (the copy moved nothing
   * then, and is refused again here).
   */
  #transferSlow(buf: Uint8Array, len: number, addr: AddressLike, write: boolean, op: string): number {
    const full = `GuestMemoryMmap.${op}`;
    let cur = toAddress(addr, full, "addr");
    this.#refuseClosed(cur, len, full);
    let done = 0;
    while (done < len) {
      const r = this.#find(cur);
      if (r === undefined) {
        if (done === 0) throw new InvalidGuestAddressError(full, cur);
        break;
      }
      const off = Number(cur - r.startAddr);
      const n = Math.min(len - done, r.len - off);
      const status = copyRange(r.views, off, buf, done, n, len, write, r.bitmap, r.offset, "GuestMemoryMmap", op);
      if (status !== CopyStatus.Done) {
        if (done === 0) throw copyError(status, full, "guest address", cur, n);
        break;
      }
      done += n;
      cur += BigInt(n);
    }
    return done;
  }

  /** The checked target of an atomic (see `Bytes.atomicTarget`). */
  protected atomicTarget(
    addr: AddressLike,
    size: number,
    write: boolean,
    op: string,
    owner = "GuestMemoryMmap",
  ): number {
    const o = this.locate(addr, size, write);
    if (o >= 0 && o % size === 0) {
      const v = this.hitViews;
      if ((write ? v.writable : v.readable) && o + size <= v.u8.length) return o;
    }
    const full = `${owner}.${op}`;
    const a = toAddress(addr, full, "addr");
    const p = this.#find(a);
    if (p === undefined) throw new InvalidGuestAddressError(full, a);
    const off = Number(a - p.startAddr);
    // Past a view seam (not the region's end) only a misaligned atomic reaches: checkAtomic says so.
    if (off > p.len - size && p.last) {
      const r = p.region;
      throw new InvalidBackendAddressError(
        full,
        `a ${size}-byte atomic at ${hex(a)} crosses the end of the region [${hex(r.startAddr)}, ${hex(r.lastAddr)}]`,
      );
    }
    checkAtomic(p.views, off, size, write, full, a, "guest address");
    return off; // #find made p the last part: hitViews, hitLog and hitLogBase are its own
  }

  /**
   * `transfer` across parts with number arithmetic: the bigint walk costs more than copying a few
   * KiB. Returns the bytes copied, or 0 when the first fragment fails or a part the transfer
   * reaches is closed, so that the bigint walk redoes it and throws the precise error.
   */
  #transferAcross(buf: Uint8Array, len: number, addr: number, write: boolean, op: string): number {
    const parts = this.#parts, lastPart = this.#last;
    // Most requests start in the part located last (locate just looked there). The index is checked
    // against the part itself: the copy below trusts it for host addresses.
    let first = this.#lastIndex;
    if (
      !(lastPart !== undefined && parts[first] === lastPart && lastPart.numeric === true &&
        addr >= lastPart.startNumber && addr - lastPart.startNumber < lastPart.len)
    ) {
      first = this.#indexOfNumber(addr);
    }
    if (first < 0) return 0;
    // The parts the copy reaches, up to the first hole, must all be open (see transfer): found by
    // following adjacent parts, with no second search.
    let last = first;
    for (let end = parts[first].startNumber + parts[first].len;;) {
      if (parts[last].views.mmap.closed) return 0;
      const next = parts[last + 1];
      if (end >= addr + len || next === undefined || next.startNumber !== end || next.numeric !== true) break;
      last++;
      end += next.len;
    }
    if (last > first && last - first < MAX_FRAGMENTS && batchesFragments(write, len)) {
      const done = this.#batchAcross(buf, len, addr, write, first, last);
      if (done > 0) return done;
    }
    let cur = addr, done = 0;
    for (let i = first; i <= last; i++) {
      const p = parts[i];
      const off = cur - p.startNumber;
      const n = Math.min(len - done, p.len - off);
      // Logged after every part is copied: a log's markDirty is user code, and one that closed a
      // later part would tear the request.
      const status = copyRange(p.views, off, buf, done, n, len, write, undefined, 0, "GuestMemoryMmap", op);
      if (status !== CopyStatus.Done) break;
      done += n;
      cur += n;
    }
    if (write) this.#markAcross(addr, done, first);
    return done;
  }

  /**
   * `#transferAcross` for parts `first..last` (all open, adjacent) in one FFI call: returns the
   * bytes copied, or 0 (nothing copied) when a part's views are stale or lack the access, or `buf`
   * cannot take the copy, so that the per-part loop does it and reports what is wrong.
   */
  #batchAcross(buf: Uint8Array, len: number, addr: number, write: boolean, first: number, last: number): number {
    const parts = this.#parts, frags = FRAGMENTS;
    let cur = addr, done = 0, k = 0;
    for (let i = first; i <= last && done < len; i++, k++) {
      const p = parts[i], v = p.views;
      if (v.u8.length === 0 || (write ? v.writable : v.readable) !== true) return 0;
      const off = cur - p.startNumber;
      const n = Math.min(len - done, p.len - off);
      frags[2 * k] = v.host + off;
      frags[2 * k + 1] = n;
      done += n;
      cur += n;
    }
    if (!copyFragments(k, buf, 0, done, write)) return 0;
    if (write) this.#markAcross(addr, done, first);
    return done;
  }

  /** Marks `done` bytes written from `addr` dirty, part by part from part `first`. */
  #markAcross(addr: number, done: number, first: number): void {
    const parts = this.#parts;
    let cur = addr;
    for (let i = first, left = done; left > 0; i++) {
      const p = parts[i], n = Math.min(left, p.len - (cur - p.startNumber));
      if (p.bitmap !== undefined) p.bitmap.markDirty(p.offset + cur - p.startNumber, n);
      left -= n;
      cur += n;
    }
  }

  /**
   * Throws `RegionClosedError` under `op` if `[addr, addr + len)`, up to its first hole, touches a
   * closed region (see `transfer`).
   */
  #refuseClosed(addr: bigint, len: number, op: string): void {
    const closed = this.#closedIn(addr, len);
    if (closed !== undefined) throw closedError(op, closed);
  }

  /** The first closed part `[addr, addr + len)` reaches before its first hole, if any. */
  #closedIn(addr: bigint, len: number): RegionPart | undefined {
    let cur = addr, left = len;
    while (left > 0) {
      const p = this.#find(cur);
      if (p === undefined) return undefined;
      if (p.views.mmap.closed) return p;
      const n = Math.min(left, p.len - Number(cur - p.startAddr));
      left -= n;
      cur += BigInt(n);
    }
    return undefined;
  }

  /** The index in `#parts` of the part holding `addr` (a number below 2^53), or -1. */
  #indexOfNumber(addr: number): number {
    const starts = this.#starts;
    if (starts.length === 0) return -1; // an empty collection
    let lo = 0, hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1; // indices, not addresses
      if (starts[mid] <= addr) lo = mid;
      else hi = mid - 1;
    }
    const r = this.#parts[lo];
    return r.numeric && addr >= r.startNumber && addr - r.startNumber < r.len ? lo : -1;
  }

  /** Part lookup by any u64. */
  #find(addr: bigint): RegionPart | undefined {
    const last = this.#last;
    if (last === undefined) return undefined; // no region at all
    if (addr >= last.startAddr && addr <= last.lastAddr) return last;
    const parts = this.#parts;
    let lo = 0, hi = parts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (parts[mid].startAddr <= addr) lo = mid;
      else hi = mid - 1;
    }
    const r = parts[lo];
    if (addr < r.startAddr || addr > r.lastAddr) return undefined;
    this.#remember(r, lo);
    return r;
  }

  /**
   * Walks the fragments of a range; collects slices if asked. Never throws for memory errors. A
   * range that reaches a closed region before its first hole gives no slices at all, only the
   * error (see `transfer`: no fragment of it may be used).
   */
  #walk(op: string, addr: AddressLike, count: number, collect: boolean): SlicesResult {
    const full = `GuestMemoryMmap.${op}`;
    let cur = toAddress(addr, full, "addr");
    let left = toLength(count, full, "count");
    const closed = this.#closedIn(cur, left);
    if (closed !== undefined) return { slices: [], error: closedError(full, closed) };
    const slices: VolatileSlice[] = [];
    while (left > 0) {
      const r = this.#find(cur);
      if (r === undefined) return { slices, error: new InvalidGuestAddressError(full, cur) };
      const off = Number(cur - r.startAddr);
      const n = Math.min(left, r.len - off);
      if (collect) slices.push(new VolatileSlice(r.views, off, n, r.bitmap, r.offset));
      left -= n;
      cur += BigInt(n);
    }
    return { slices };
  }
}

/** The error for a range that reaches the closed part `p`, as its views would report it. */
function closedError(op: string, p: RegionPart): RegionClosedError {
  return new RegionClosedError(op, `the region's mapping (${p.region.mmap.size} bytes)`);
}

/**
 * Checks a region list: non-empty (unless `allowEmpty`: what `toShared` of an empty collection
 * gives), sorted by start, no overlaps. Returns a frozen copy.
 */
function validated(op: string, regions: readonly GuestRegionMmap[], allowEmpty = false): readonly GuestRegionMmap[] {
  if (!Array.isArray(regions)) throw new InvalidArgumentError(op, "regions", regions, "must be an array");
  if (regions.length === 0 && !allowEmpty) throw new NoMemoryRegionError(op, "no memory region given");
  for (const r of regions) {
    if (!(r instanceof GuestRegionMmap)) {
      throw new InvalidArgumentError(op, "regions", r, "must hold GuestRegionMmap objects");
    }
  }
  for (let i = 1; i < regions.length; i++) {
    const prev = regions[i - 1], next = regions[i];
    if (prev.startAddr > next.startAddr) {
      throw new UnsortedMemoryRegionsError(op, prev.startAddr, next.startAddr);
    }
    if (prev.lastAddr >= next.startAddr) {
      throw new MemoryRegionOverlapError(
        op,
        { start: prev.startAddr, last: prev.lastAddr },
        { start: next.startAddr, last: next.lastAddr },
      );
    }
  }
  return Object.freeze([...regions]);
}
