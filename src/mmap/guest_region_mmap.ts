/**
 * `GuestRegionMmap`: an `MmapRegion` placed at a guest physical address (vm-memory's
 * `GuestRegionMmap`), with `Bytes` on region offsets.
 * @module
 */

import { type AddressLike, toAddress, toLength } from "../core/address.ts";
import { AtomicBitmap } from "../bitmap/atomic_bitmap.ts";
import { InvalidArgumentError, InvalidBackendAddressError, ViewSeamError } from "../core/errors.ts";
import { InvalidGuestRegionError } from "../core/region_errors.ts";
import { hex } from "../core/format.ts";
import type { FileOffset } from "./file_offset.ts";
import { MmapRegion } from "./mmap_region.ts";
import type { MapOptions } from "./mmap_region.ts";
import { Bytes } from "../core/bytes.ts";
import { checkAtomic, copyError, copyRange, CopyStatus } from "../core/copy_range.ts";
import { type DirtyLog, logReach } from "../core/dirty_log.ts";
import { inspectRegion, type RegionJson, regionJson } from "./inspect_memory.ts";
import { RegionPart } from "./region_part.ts";
import { RegionViews } from "../core/region_views.ts";
import { VolatileSlice } from "../core/volatile_slice.ts";

const SAFE_LIMIT = 2n ** 53n;
const U64_LIMIT = 1n << 64n;

/** Options for {@link GuestRegionMmap.fromRange} and `GuestMemoryMmap.fromRanges`. */
export interface GuestRegionOptions extends MapOptions {
  /** Track dirty pages of this page size (a power of two, usually 4096); off when absent. */
  dirtyPageSize?: number;
}

/**
 * One view's worth of a {@link GuestRegionMmap}: the unit its collection's lookups work in.
 *
 * @example
 * ```ts ignore
 * const part: GuestRegionPart = region.partAt(0);
 * ```
 */
export type GuestRegionPart = RegionPart<GuestRegionMmap>;

/**
 * A host mapping at a guest physical base address. Its `Bytes` methods take offsets inside the
 * region (vm-memory's `MemoryRegionAddress`); an offset past the end is `InvalidBackendAddress`.
 *
 * @example
 * ```ts
 * import { GuestRegionMmap } from "../../mod.ts";
 * using region = GuestRegionMmap.fromRange(0x10_0000, 0x1000);
 * region.writeU16(0x10, 0xabcd);
 * console.log(region.startAddr, region.lastAddr); // 1048576n 1052671n
 * ```
 */
export class GuestRegionMmap extends Bytes implements Disposable {
  /** Class name used in errors. */
  protected readonly typeName: string = "GuestRegionMmap";
  /** Addresses here are offsets into the region or slice. */
  protected readonly addressName: string = "offset";
  /** The host mapping. */
  readonly mmap: MmapRegion;
  /** First guest physical address. */
  readonly startAddr: bigint;
  /** Length in bytes. */
  readonly len: number;
  /** Last guest physical address (inclusive). */
  readonly lastAddr: bigint;
  /** The dirty log of this region (indexed by region offset), if tracking. */
  readonly bitmap: DirtyLog | undefined;
  /** `startAddr` as a number (exact when {@link GuestRegionMmap.numeric}). Library-internal. */
  readonly startNumber: number;
  /** Whether the whole region lies below 2^53, so number addresses reach it. Library-internal. */
  readonly numeric: boolean;
  /** The views of the region's first part (of all of it, unless it has several). Library-internal. */
  readonly views: RegionViews;
  /**
   * The region split where the runtime's views end: one part, unless the region is larger than
   * `mmap.viewSize` (Bun: 4 GiB). Library-internal.
   */
  readonly parts: readonly GuestRegionPart[];
  /** Bytes per part (all but the last). */
  readonly #partSize: number;

  /**
   * Places `mmap` at `guestBase`. The region must end below 2^64 (vm-memory refuses a region
   * that ends exactly at 2^64, so the address 2^64 − 1 is never guest memory).
   *
   * @example
   * ```ts
   * import { GuestRegionMmap, MmapRegion } from "../../mod.ts";
   * using region = new GuestRegionMmap(MmapRegion.anonymous(0x1000), 0x2000);
   * ```
   * @throws {InvalidArgumentError} for a `bitmap` that records fewer bytes than the region has
   *   (its writes past that would go unlogged).
   */
  constructor(mmap: MmapRegion, guestBase: AddressLike, bitmap?: DirtyLog) {
    super();
    const op = "GuestRegionMmap.constructor";
    if (!(mmap instanceof MmapRegion)) throw new InvalidArgumentError(op, "mmap", mmap, "must be an MmapRegion");
    const base = toAddress(guestBase, op, "guestBase");
    if (base + BigInt(mmap.size) >= U64_LIMIT) {
      throw new InvalidGuestRegionError(op, base, mmap.size);
    }
    if (bitmap !== undefined && logReach(bitmap) < mmap.size) {
      // Refused here: the writes past its end would be dropped by the bitmap, silently.
      throw new InvalidArgumentError(
        op,
        "bitmap",
        bitmap,
        `records only ${hex(logReach(bitmap))} bytes; the region has ${hex(mmap.size)}`,
      );
    }
    this.mmap = mmap;
    this.startAddr = base;
    this.len = mmap.size;
    this.lastAddr = base + BigInt(mmap.size) - 1n;
    this.bitmap = bitmap;
    this.numeric = base + BigInt(mmap.size) <= SAFE_LIMIT;
    this.startNumber = Number(base);
    this.views = new RegionViews(mmap, op);
    this.#partSize = mmap.viewSize;
    const count = Math.ceil(mmap.size / mmap.viewSize);
    const parts: GuestRegionPart[] = [];
    for (let i = 0; i < count; i++) {
      parts.push(new RegionPart(this, i === 0 ? this.views : new RegionViews(mmap, op, i), i === count - 1));
    }
    this.parts = Object.freeze(parts);
    this.hitViews = this.views;
    this.hitLog = bitmap;
    this.hitLogBase = 0;
  }

  /**
   * Maps a region of `size` bytes at `addr`: anonymous memory, or `fileOffset`'s file
   * (vm-memory's `GuestRegionMmap::from_range`).
   *
   * @example
   * ```ts
   * import { GuestRegionMmap } from "../../mod.ts";
   * using region = GuestRegionMmap.fromRange(0, 0x10000, undefined, { dirtyPageSize: 4096 });
   * region.writeU8(0x1000, 1);
   * console.log(region.bitmap?.dirtyAt(0x1000)); // true
   * ```
   */
  static fromRange(
    addr: AddressLike,
    size: number,
    fileOffset?: FileOffset,
    options: GuestRegionOptions = {},
  ): GuestRegionMmap {
    const op = "GuestRegionMmap.fromRange";
    const base = toAddress(addr, op, "addr");
    toLength(size, op, "size", false);
    if (base + BigInt(size) >= U64_LIMIT) {
      throw new InvalidGuestRegionError(op, base, size);
    }
    const { dirtyPageSize, ...mapOptions } = options;
    const bitmap = dirtyPageSize === undefined ? undefined : new AtomicBitmap(size, dirtyPageSize);
    const mmap = fileOffset
      ? MmapRegion.fromFile(fileOffset, size, mapOptions)
      : MmapRegion.anonymous(size, mapOptions);
    try {
      return new GuestRegionMmap(mmap, base, bitmap);
    } catch (e) {
      mmap.close();
      throw e;
    }
  }

  /** The file behind the region, if any. */
  get fileOffset(): FileOffset | undefined {
    return this.mmap.fileOffset;
  }

  /** Whether the memory is hugetlbfs-backed (`undefined` when unknown). */
  get isHugetlbfs(): boolean | undefined {
    return this.mmap.isHugetlbfs;
  }

  /**
   * `offset` if it lies inside the region, else `undefined`.
   *
   * @example
   * ```ts
   * import { GuestRegionMmap } from "../../mod.ts";
   * using r = GuestRegionMmap.fromRange(0, 0x1000);
   * console.log(r.checkAddress(0x1000)); // undefined
   * ```
   */
  checkAddress(offset: AddressLike): bigint | undefined {
    const o = toAddress(offset, "GuestRegionMmap.checkAddress", "offset");
    return o < BigInt(this.len) ? o : undefined;
  }

  /**
   * Whether `offset` lies inside the region.
   *
   * @example
   * ```ts
   * import { GuestRegionMmap } from "../../mod.ts";
   * using r = GuestRegionMmap.fromRange(0, 0x1000);
   * console.log(r.addressInRange(0xfff)); // true
   * ```
   */
  addressInRange(offset: AddressLike): boolean {
    return this.checkAddress(offset) !== undefined;
  }

  /**
   * `base + offset` if that offset lies inside the region, else `undefined`.
   *
   * @example
   * ```ts
   * import { GuestRegionMmap } from "../../mod.ts";
   * using r = GuestRegionMmap.fromRange(0, 0x1000);
   * console.log(r.checkedOffset(0x800, 0x7ff)); // 4095n
   * ```
   */
  checkedOffset(base: AddressLike, offset: AddressLike): bigint | undefined {
    const op = "GuestRegionMmap.checkedOffset";
    const sum = toAddress(base, op, "base") + toAddress(offset, op, "offset");
    return sum < BigInt(this.len) ? sum : undefined;
  }

  /**
   * The region offset of a guest address, or `undefined` if the region does not contain it.
   *
   * @example
   * ```ts
   * import { GuestRegionMmap } from "../../mod.ts";
   * using r = GuestRegionMmap.fromRange(0x1000, 0x1000);
   * console.log(r.toRegionAddr(0x1800)); // 2048n
   * ```
   */
  toRegionAddr(addr: AddressLike): bigint | undefined {
    const a = toAddress(addr, "GuestRegionMmap.toRegionAddr", "addr");
    return a >= this.startAddr && a <= this.lastAddr ? a - this.startAddr : undefined;
  }

  /**
   * The host address of a region offset; `InvalidBackendAddress` past the end.
   *
   * @example
   * ```ts
   * import { GuestRegionMmap } from "../../mod.ts";
   * using r = GuestRegionMmap.fromRange(0, 0x1000);
   * console.log(r.getHostAddress(0x10) === r.mmap.hostAddress + 0x10n); // true
   * ```
   */
  getHostAddress(offset: AddressLike): bigint {
    const op = "GuestRegionMmap.getHostAddress";
    const o = toAddress(offset, op, "offset");
    if (o >= BigInt(this.len)) throw this.#pastEnd(op, o, 0);
    this.#open(op);
    return this.mmap.hostAddress + o;
  }

  /**
   * A slice of `count` bytes at region offset `offset`; `InvalidBackendAddress` if it does not fit.
   *
   * @example
   * ```ts
   * import { GuestRegionMmap } from "../../mod.ts";
   * using r = GuestRegionMmap.fromRange(0, 0x1000);
   * console.log(r.getSlice(0xf00, 0x100).len); // 256
   * ```
   */
  getSlice(offset: AddressLike, count: number): VolatileSlice {
    const op = "GuestRegionMmap.getSlice";
    const o = toAddress(offset, op, "offset");
    const n = toLength(count, op, "count");
    if (o > BigInt(this.len) || n > this.len - Number(o)) throw this.#pastEnd(op, o, n);
    this.#open(op);
    const off = Number(o);
    const p = this.partAt(off);
    if (off - p.offset + n > p.len) {
      throw new ViewSeamError(op, "region offset", o, n, BigInt(p.offset + p.len), this.#partSize);
    }
    return new VolatileSlice(p.views, off - p.offset, n, this.bitmap, p.offset);
  }

  /**
   * The part holding region offset `off` (the last part for the offset just past the end).
   * Library-internal.
   */
  partAt(off: number): GuestRegionPart {
    const parts = this.parts;
    return parts.length === 1 ? parts[0] : parts[Math.min(Math.floor(off / this.#partSize), parts.length - 1)];
  }

  /**
   * The whole region as one slice. A region larger than one view (see `MmapRegion.viewSize`) throws
   * {@link ViewSeamError}; use `getSlice` per part or copies instead.
   *
   * @example
   * ```ts
   * import { GuestRegionMmap } from "../../mod.ts";
   * using r = GuestRegionMmap.fromRange(0, 0x1000);
   * console.log(r.asVolatileSlice().len); // 4096
   * ```
   */
  asVolatileSlice(): VolatileSlice {
    return this.getSlice(0, this.len);
  }

  /**
   * Closes the host mapping (see `MmapRegion.close`).
   *
   * @example
   * ```ts
   * import { GuestRegionMmap } from "../../mod.ts";
   * const r = GuestRegionMmap.fromRange(0, 0x1000);
   * r.close();
   * ```
   */
  close(): void {
    this.mmap.close();
  }

  /** Same as {@link GuestRegionMmap.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Guest range, host address, backing, protection, flags and dirty bitmap, for `JSON.stringify`.
   *
   * @example
   * ```ts
   * import { GuestRegionMmap } from "../../mod.ts";
   * using r = GuestRegionMmap.fromRange(0x1000, 0x1000);
   * console.log(r.toJSON().gpa); // "0x1000"
   * ```
   */
  toJSON(): RegionJson {
    return regionJson(this);
  }

  /**
   * One line for `console.log`: the region's row of the guest memory table, instead of its
   * internal typed arrays.
   *
   * @example
   * ```ts
   * import { GuestRegionMmap } from "../../mod.ts";
   * using r = GuestRegionMmap.fromRange(0x1000, 0x1000);
   * console.log(Deno.inspect(r).split("  ")[0]); // "GuestRegionMmap: 0000000000001000-0000000000001fff"
   * ```
   */
  [Symbol.for("Deno.customInspect")](): string {
    return inspectRegion(this);
  }

  /** The same text for Node's and Bun's `util.inspect`. @example `console.log(region)` */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return inspectRegion(this);
  }

  /**
   * A one-line description.
   *
   * @example
   * ```ts
   * import { GuestRegionMmap } from "../../mod.ts";
   * using r = GuestRegionMmap.fromRange(0x1000, 0x1000);
   * console.log(String(r)); // "GuestRegionMmap([0x1000, 0x1fff], 0x1000 bytes, …)"
   * ```
   */
  override toString(): string {
    return `GuestRegionMmap([${hex(this.startAddr)}, ${hex(this.lastAddr)}], ${hex(this.len)} bytes, ${this.mmap})`;
  }

  /** The fragments volatile I/O goes through (see `Bytes.ioSlices`). */
  protected ioSlices(addr: AddressLike, count: number, _write: boolean, op: string): VolatileSlice[] {
    const full = `GuestRegionMmap.${op}`;
    const o = toAddress(addr, full, "offset");
    if (o >= BigInt(this.len)) throw this.#pastEnd(full, o, count);
    this.#open(full); // else getSlice below would refuse a closed region under its own name
    const slices: VolatileSlice[] = [];
    let off = Number(o);
    let left = Math.min(count, this.len - off);
    do {
      const p = this.partAt(off);
      const n = Math.min(left, p.offset + p.len - off);
      slices.push(this.getSlice(off, n));
      off += n;
      left -= n;
    } while (left > 0);
    return slices;
  }

  /** Where a one-region range lies, for the scalar fast path (see `Bytes.locate`). */
  protected locate(addr: AddressLike, size: number, _write: boolean): number {
    if (!(typeof addr === "number" && Number.isInteger(addr) && addr >= 0 && addr <= this.len - size)) return -1;
    if (this.parts.length === 1) return addr;
    const p = this.partAt(addr);
    const off = addr - p.offset;
    if (off > p.len - size) return -1; // straddles a view seam: the copy path splits it
    this.hitViews = p.views;
    this.hitLogBase = p.offset;
    return off;
  }

  /** Copies as far as the memory reaches (see `Bytes.transfer`). */
  protected transfer(buf: Uint8Array, len: number, addr: AddressLike, write: boolean, op: string): number {
    // A range inside one part by number copies with no message string and no BigInt: this much
    // V8 inlines into the callers; ranges that end early, cross a seam or fail go the long way.
    if (typeof addr === "number" && len !== 0) {
      const o = this.locate(addr, len, write);
      if (
        o >= 0 &&
        copyRange(this.hitViews, o, buf, 0, len, len, write, this.hitLog, this.hitLogBase, "GuestRegionMmap", op) ===
          CopyStatus.Done
      ) {
        return len;
      }
    }
    return this.#transferSlow(buf, len, addr, write, op);
  }

  /** `transfer` past the fast case: validates, clips at the region's end, copies part by part. */
  #transferSlow(buf: Uint8Array, len: number, addr: AddressLike, write: boolean, op: string): number {
    const full = `GuestRegionMmap.${op}`;
    // Validated before the empty-buffer shortcut: a bad offset is an error even when nothing moves.
    const o = toAddress(addr, full, "offset");
    if (len === 0) return 0;
    if (o >= BigInt(this.len)) throw this.#pastEnd(full, o, len);
    const off = Number(o);
    const n = Math.min(len, this.len - off);
    let done = 0;
    while (done < n) {
      const p = this.partAt(off + done);
      const local = off + done - p.offset;
      const step = Math.min(n - done, p.len - local);
      const status = copyRange(
        p.views,
        local,
        buf,
        done,
        step,
        len,
        write,
        this.bitmap,
        p.offset,
        "GuestRegionMmap",
        op,
      );
      if (status !== CopyStatus.Done) throw copyError(status, full, "region offset", o, n);
      done += step;
    }
    return n;
  }

  /** The checked target of an atomic (see `Bytes.atomicTarget`). */
  protected atomicTarget(addr: AddressLike, size: number, write: boolean, op: string): number {
    const full = `GuestRegionMmap.${op}`;
    const o = toAddress(addr, full, "offset");
    if (o > BigInt(this.len - size)) throw this.#pastEnd(full, o, size);
    const p = this.partAt(Number(o));
    // An aligned atomic never straddles a seam (views are page multiples); a misaligned one is
    // refused by the alignment check before its length matters.
    const off = Number(o) - p.offset;
    checkAtomic(p.views, off, size, write, full, o, "region offset");
    this.hitViews = p.views;
    this.hitLogBase = p.offset;
    return off;
  }

  #pastEnd(op: string, offset: bigint, length: number): InvalidBackendAddressError {
    return new InvalidBackendAddressError(
      op,
      `region offset range [${hex(offset)}, ${hex(offset + BigInt(length))}) is past the end (${hex(this.len)} bytes)`,
    );
  }

  #open(op: string): void {
    if (this.mmap.closed) this.views.refresh(op);
  }
}
