/**
 * `VolatileSlice`: a bounded window of one region's memory (vm-memory's `VolatileSlice`).
 * @module
 */

import { type AddressLike, toAddress, toLength } from "./address.ts";
import { bytesLength, bytesWindow, fewerBytesError, unreadableError } from "./caller_bytes.ts";
import { claimed } from "./array_address.ts";
import { InvalidArgumentError, OutOfBoundsError, RegionClosedError } from "./errors.ts";
import { hex } from "./format.ts";
import type { RawPointer, RawPointerView } from "../ffi/binding.ts";
import { native } from "../ffi/native.ts";
import { Bytes } from "./bytes.ts";
import { checkAtomic, copyError, copyRange, CopyStatus } from "./copy_range.ts";
import { copyOut } from "./copy_engine.ts";
import { type DirtyLog, logReach } from "./dirty_log.ts";
import { inspectSlice, sliceJson, type SliceShape, type VolatileSliceJson } from "./inspect_slice.ts";
import type { RegionViews } from "./region_views.ts";
import { LEASE_VIEW, RELEASE_VIEW, type SliceGuard, type ViewLeasingGuard } from "./slice_guard.ts";

/** Slices ended by dispose (rare: kept off the slice, see the class's fields). */
const disposed = new WeakSet<VolatileSlice>();
/**
 * The buffers of views a view-leasing guard leased for a slice, given back by its dispose. Held
 * weakly, as the region holds its leases: a view that is garbage needs no giving back.
 */
const leasedBuffers = new WeakMap<VolatileSlice, WeakRef<ArrayBuffer>[]>();

/**
 * A window `[0, len)` onto one region's memory. Offsets given to its methods are relative to the
 * slice. Writes through its methods are logged to its dirty log (if the region tracks dirty pages);
 * writes through the raw `bytes()` view or `pointer` are not, as in vm-memory.
 *
 * Slices come from `GuestMemoryMmap.getSlice`/`getSlices` and `GuestRegionMmap.getSlice`; when the
 * region is closed, every method throws `RegionClosedError` and old `bytes()` views are detached.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
 * const slice = mem.getSlice(0x1000, 0x100);
 * slice.writeU32(0, 0xcafe);
 * console.log(mem.readU32(0x1000)); // 51966
 * ```
 */
export class VolatileSlice extends Bytes implements Disposable {
  // A slice is made per access (`getSlice(a, n).copyTo(buf)`), so it holds only what every slice
  // needs, set once in the constructor: the views, log and log base are the inherited hit fields
  // (a slice's never change), the class and address names are getters on the prototype, and what
  // only disposed or view-leasing slices need lives in the WeakMaps below. Each field dropped
  // measured about 1 ns off `getSlice`.
  /** The region's views (a slice's never change). */
  declare protected hitViews: RegionViews;
  readonly #base: number;
  readonly #len: number;
  // Replaced once, by dispose: the guard that refuses everything is how a disposed slice refuses.
  #guard: SliceGuard | undefined;

  /**
   * Makes a slice of `len` bytes at view offset `base`. Writes are logged at `logBase + view
   * offset`. Library-internal: use `getSlice`.
   */
  constructor(
    views: RegionViews,
    base: number,
    len: number,
    log: DirtyLog | undefined,
    logBase: number,
    guard?: SliceGuard,
  ) {
    super();
    this.hitViews = views;
    this.hitLog = log;
    this.hitLogBase = logBase;
    this.#base = base;
    this.#len = len;
    this.#guard = guard;
  }

  /** Class name used in errors. */
  protected get typeName(): string {
    return "VolatileSlice";
  }

  /** Addresses here are offsets into the region or slice. */
  protected get addressName(): string {
    return "offset";
  }

  /** Length in bytes. */
  get len(): number {
    return this.#len;
  }

  /** Host address of the first byte (throws `RegionClosedError` once the region is closed). */
  get hostAddress(): bigint {
    const v = this.hitViews;
    return v.mmap.hostAddress + BigInt(v.offset + this.#base);
  }

  /** The dirty log writes are reported to, if any. */
  get dirtyLog(): DirtyLog | undefined {
    return this.hitLog;
  }

  /** Where in the dirty log byte 0 of this slice is recorded. */
  get dirtyLogOffset(): number {
    return this.hitLogBase + this.#base;
  }

  /**
   * Length, host address, region offset, backing, protection, dirty logging and whether a
   * translated slice was revoked, for `JSON.stringify`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x2000]]);
   * console.log(mem.getSlice(0x1000, 16).toJSON().guard); // "none"
   * ```
   */
  toJSON(): VolatileSliceJson {
    return sliceJson(this.#shape());
  }

  /** One line: where the slice is, what backs it, whether it is logged or revoked. @example `console.log(slice)` */
  [Symbol.for("Deno.customInspect")](): string {
    return inspectSlice(this.#shape());
  }

  /** The same text for Node's and Bun's `util.inspect`. @example `console.log(slice)` */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return inspectSlice(this.#shape());
  }

  #shape(): SliceShape {
    const v = this.hitViews;
    return {
      len: this.#len,
      mmap: v.mmap,
      offset: v.offset + this.#base,
      log: this.hitLog,
      logOffset: this.hitLogBase + this.#base,
      guard: this.#guard,
      disposed: disposed.has(this),
    };
  }

  /**
   * Ends the slice, once (later calls do nothing): every method of it, and of slices cut from it
   * afterwards, throws `RegionClosedError`; views `bytes()`/`dataView()` gave over a buffer leased
   * for the slice (an `IommuMemory` slice with `revocation: "views"`) are detached and their lease
   * released, so the IOTLB is no longer watched for them. Views of the same range taken through
   * another slice of the same translation share that buffer and go too. The memory itself belongs
   * to its region and stays; slices cut from this one before keep working.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, RegionClosedError } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * const s = mem.getSlice(0x10, 8);
   * s[Symbol.dispose]();
   * try { s.readU8(0); } catch (e) { console.log(e instanceof RegionClosedError); } // true
   * ```
   */
  [Symbol.dispose](): void {
    if (disposed.has(this)) return;
    disposed.add(this);
    const prev = this.#guard;
    const what = `a disposed slice (${this.#len} bytes at region offset ${hex(this.hitViews.offset + this.#base)})`;
    this.#guard = { isValid: () => false, revokedError: (op) => new RegionClosedError(op, what) };
    const buffers = leasedBuffers.get(this);
    leasedBuffers.delete(this);
    if (buffers === undefined || prev === undefined || !(RELEASE_VIEW in prev)) return;
    for (const ref of buffers) {
      const buffer = ref.deref();
      if (buffer !== undefined) (prev as Required<ViewLeasingGuard>)[RELEASE_VIEW](buffer);
    }
  }

  /**
   * A new `ReadableStream` of the whole slice (see `ByteAccess.readableStream`), as a
   * `Deno.FsFile` offers its `readable`: each access makes a new stream.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log((await new Response(mem.getSlice(0, 16).readable).arrayBuffer()).byteLength); // 16
   * ```
   */
  get readable(): ReadableStream<Uint8Array> {
    return this.readableStream(0, this.#len);
  }

  /**
   * A new `WritableStream` that fills the whole slice (see `ByteAccess.writableStream`); closing
   * it before the slice is full is a `PartialBufferError`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * await new Response(new Uint8Array([1, 2])).body!.pipeTo(mem.getSlice(0x10, 2).writable);
   * console.log(mem.readU16(0x10)); // 513
   * ```
   */
  get writable(): WritableStream<Uint8Array> {
    return this.writableStream(0, this.#len);
  }

  /**
   * The runtime's native pointer to the first byte, for passing to C.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * const p = mem.getSlice(0x10, 4).pointer;
   * ```
   */
  get pointer(): RawPointer {
    this.#checkGuard("pointer");
    return native().pointer(this.hostAddress);
  }

  /**
   * Typed reads at the first byte through the runtime's pointer reads (a `Deno.UnsafePointerView`
   * on Deno, `bun:ffi`'s `read.*` on Bun): for native interop; for speed use the slice's own
   * accessors.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(mem.getSlice(0, 4).view.getUint32()); // 0
   * ```
   */
  get view(): RawPointerView {
    this.#checkGuard("view");
    const addr = this.hostAddress;
    if (addr === 0n) throw new InvalidArgumentError("VolatileSlice.view", "pointer", null, "is null");
    return native().pointerView(addr);
  }

  /**
   * A zero-copy `Uint8Array` over the slice (needs read-write memory). Writes through it are not
   * dirty-logged. It is a window on the region's buffer, detached when the region closes; a slice
   * whose guard revokes views (an `IommuMemory` slice with `revocation: "views"`) gives a view over
   * a buffer of its own, exactly the slice's range, detached as soon as the translation goes.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * mem.getSlice(0, 16).bytes().fill(7);
   * ```
   */
  bytes(): Uint8Array<ArrayBuffer> {
    this.#checkGuard("bytes");
    this.#ensure(true, "bytes");
    const leased = this.#leased("VolatileSlice.bytes");
    return leased !== undefined
      ? new Uint8Array(leased)
      : new Uint8Array(this.hitViews.u8.buffer, this.#base, this.#len);
  }

  /**
   * A zero-copy `DataView` over the slice (needs read-write memory; writes are not dirty-logged),
   * revoked like {@link VolatileSlice.bytes}.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * mem.getSlice(0, 16).dataView().setUint16(0, 1, true);
   * ```
   */
  dataView(): DataView<ArrayBuffer> {
    this.#checkGuard("dataView");
    this.#ensure(true, "dataView");
    const leased = this.#leased("VolatileSlice.dataView");
    return leased !== undefined ? new DataView(leased) : new DataView(this.hitViews.u8.buffer, this.#base, this.#len);
  }

  /**
   * `[offset, offset + count)` of this slice as a new slice.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(mem.getSlice(0, 0x100).subslice(0x10, 0x20).len); // 32
   * ```
   */
  subslice(offset: AddressLike, count: number): VolatileSlice {
    const op = "VolatileSlice.subslice";
    const off = this.#offsetWithin(op, offset, toLength(count, op, "count"));
    return new VolatileSlice(this.hitViews, this.#base + off, count, this.hitLog, this.hitLogBase, this.#guard);
  }

  /**
   * The slice without its first `count` bytes.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(mem.getSlice(0, 0x100).offset(0x10).len); // 240
   * ```
   */
  offset(count: AddressLike): VolatileSlice {
    const op = "VolatileSlice.offset";
    const off = this.#offsetWithin(op, count, 0);
    return new VolatileSlice(
      this.hitViews,
      this.#base + off,
      this.#len - off,
      this.hitLog,
      this.hitLogBase,
      this.#guard,
    );
  }

  /**
   * Splits at `mid` into `[0, mid)` and `[mid, len)`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * const [head, tail] = mem.getSlice(0, 0x100).splitAt(0x40);
   * console.log(head.len, tail.len); // 64 192
   * ```
   */
  splitAt(mid: AddressLike): [VolatileSlice, VolatileSlice] {
    const off = this.#offsetWithin("VolatileSlice.splitAt", mid, 0);
    return [
      new VolatileSlice(this.hitViews, this.#base, off, this.hitLog, this.hitLogBase, this.#guard),
      new VolatileSlice(this.hitViews, this.#base + off, this.#len - off, this.hitLog, this.hitLogBase, this.#guard),
    ];
  }

  /**
   * Copies `min(buf.length, len)` bytes out of the slice into `buf`; returns the count.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(mem.getSlice(0, 8).copyTo(new Uint8Array(16))); // 8
   * ```
   */
  copyTo(buf: Uint8Array): number {
    const len = claimed(buf);
    if (len < 0) throw unreadableError("VolatileSlice.copyTo", "buf", buf, len);
    const n = len < this.#len ? len : this.#len;
    const v = this.hitViews;
    // An unguarded slice of readable, attached views goes straight to the engine: `transfer` is
    // too big for V8 to inline here, and a slice that stays inside the caller's compiled code
    // (`getSlice(a, n).copyTo(buf)`) need not be allocated at all.
    if (n !== 0 && this.#guard === undefined && v.readable === true && v.u8.length !== 0) {
      copyOut(v, this.#base, buf, 0, n, "VolatileSlice", "copyTo");
      return n;
    }
    if (n === 0) return 0;
    // A read fills the first bytes of buf, no window needed (see Bytes.transfer).
    return this.transfer(buf, n, 0, false, "copyTo");
  }

  /**
   * Copies `min(buf.length, len)` bytes of `buf` into the slice; returns the count.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(mem.getSlice(0, 4).copyFrom(new Uint8Array([1, 2, 3, 4, 5]))); // 4
   * ```
   */
  copyFrom(buf: Uint8Array): number {
    const len = bytesLength(buf);
    if (len < 0) throw new InvalidArgumentError("VolatileSlice.copyFrom", "buf", buf, "must be a Uint8Array");
    if (len === 0 || this.#len === 0) return 0;
    // As copyTo: an unguarded slice copies without `transfer`, through the same copyRange call
    // (protection, refresh, dirty log); a copy it refuses moved nothing and takes `transfer`,
    // which refuses it again and says why.
    if (len <= this.#len && this.#guard === undefined) {
      const status = copyRange(
        this.hitViews,
        this.#base,
        buf,
        0,
        len,
        len,
        true,
        this.hitLog,
        this.hitLogBase,
        "VolatileSlice",
        "copyFrom",
      );
      if (status === CopyStatus.Done) return len;
    }
    return len > this.#len
      ? this.transfer(bytesWindow(buf, 0, this.#len, "VolatileSlice.copyFrom"), this.#len, 0, true, "copyFrom")
      : this.transfer(buf, len, 0, true, "copyFrom");
  }

  /**
   * Copies `min(this.len, dst.len)` bytes into another slice (which logs them dirty); returns the
   * count. Overlapping slices are handled like `memmove`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(mem.getSlice(0, 16).copyToVolatileSlice(mem.getSlice(0x100, 8))); // 8
   * ```
   */
  copyToVolatileSlice(dst: VolatileSlice): number {
    if (!(dst instanceof VolatileSlice) || !(#base in dst)) {
      throw new InvalidArgumentError("VolatileSlice.copyToVolatileSlice", "dst", dst, "must be a VolatileSlice");
    }
    const n = Math.min(this.#len, dst.#len);
    if (n === 0) return 0;
    this.#checkGuard("copyToVolatileSlice");
    dst.#checkGuard("copyToVolatileSlice");
    this.#ensure(false, "copyToVolatileSlice");
    dst.#ensure(true, "copyToVolatileSlice");
    if (dst.hitViews.u8.buffer === this.hitViews.u8.buffer) {
      dst.hitViews.u8.copyWithin(dst.#base, this.#base, this.#base + n);
    } else {
      dst.hitViews.u8.set(this.hitViews.u8.subarray(this.#base, this.#base + n), dst.#base);
    }
    dst.hitLog?.markDirty(dst.hitLogBase + dst.#base, n);
    return n;
  }

  /**
   * The same memory with its writes logged in `log` at `logOffset + slice offset` instead (vm-memory
   * replaces a slice's bitmap this way when an IOMMU logs writes by I/O virtual address). `log`
   * undefined turns logging off for the new slice.
   *
   * @example
   * ```ts
   * import { AtomicBitmap, GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * const iovaLog = new AtomicBitmap(0x10000);
   * mem.getSlice(0x10, 4).withDirtyLog(iovaLog, 0x8000).writeU32(0, 1);
   * console.log(iovaLog.dirtyAt(0x8000)); // true
   * ```
   * @throws {InvalidArgumentError} if `logOffset` is not a non-negative safe integer, or the slice would
   *   reach past what `log` records (2^53, or an `AtomicBitmap`'s last page).
   */
  withDirtyLog(log: DirtyLog | undefined, logOffset: number): VolatileSlice {
    if (log !== undefined && (log === null || typeof log !== "object" || typeof log.markDirty !== "function")) {
      // Checked here: a wrong log would only fail at the first write, far from the cause.
      throw new InvalidArgumentError("VolatileSlice.withDirtyLog", "log", log, "must be a DirtyLog or undefined");
    }
    // The whole slice must lie where the log records (below 2^53 for any log, within an
    // AtomicBitmap's pages): a write that had already landed must neither fail in its log nor be
    // dropped by it.
    const reach = log === undefined ? 2 ** 53 : logReach(log);
    if (!Number.isSafeInteger(logOffset) || logOffset < 0 || logOffset > reach - this.#len) {
      throw new InvalidArgumentError(
        "VolatileSlice.withDirtyLog",
        "logOffset",
        logOffset,
        `must be a non-negative integer with logOffset + ${this.#len} (the slice's length) at most ${
          reach === 2 ** 53 ? "2^53" : `${reach} (the bytes the log records)`
        }`,
      );
    }
    return new VolatileSlice(this.hitViews, this.#base, this.#len, log, logOffset - this.#base, this.#guard);
  }

  /**
   * The same memory, usable only while `guard` says so (and any guard the slice already has):
   * every method of the new slice (and of slices made from it) first asks `guard.isValid()` and
   * throws `guard.revokedError(op)` when it says no. `IommuMemory` guards its slices this way so that an IOTLB invalidation revokes them.
   * Zero-copy views already taken with `bytes()`/`dataView()` cannot be revoked by such a guard;
   * only the library's translation guards with `revokeViews` revoke those (see `TranslationGuard`).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap, RegionClosedError } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * let ok = true;
   * const s = mem.getSlice(0, 8).withGuard({ isValid: () => ok, revokedError: (op) => new RegionClosedError(op, "lease") });
   * ok = false;
   * try { s.readU8(0); } catch (e) { console.log((e as Error).name); } // "RegionClosedError"
   * ```
   */
  withGuard(guard: SliceGuard): VolatileSlice {
    if (
      guard === null || typeof guard !== "object" || typeof guard.isValid !== "function" ||
      typeof guard.revokedError !== "function"
    ) {
      throw new InvalidArgumentError(
        "VolatileSlice.withGuard",
        "guard",
        guard,
        "must have isValid() and revokedError()",
      );
    }
    // Adding a guard never removes one: a slice already guarded stays bound by both.
    const prev = this.#guard;
    let both: SliceGuard = guard;
    if (prev !== undefined) {
      both = {
        isValid: () => prev.isValid() && guard.isValid(),
        revokedError: (op) => (prev.isValid() ? guard.revokedError(op) : prev.revokedError(op)),
      };
      // Views are leased from one guard, the earlier if both lease: the other revokes methods only.
      const leasing = LEASE_VIEW in prev
        ? prev as ViewLeasingGuard
        : LEASE_VIEW in guard
        ? guard as ViewLeasingGuard
        : undefined;
      if (leasing !== undefined) {
        (both as ViewLeasingGuard)[LEASE_VIEW] = (m, o, l, op) => leasing[LEASE_VIEW](m, o, l, op);
      }
    }
    return new VolatileSlice(this.hitViews, this.#base, this.#len, this.hitLog, this.hitLogBase, both);
  }

  /**
   * Sets every byte of the slice to `byte`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * mem.getSlice(0, 0x100).fill(0xff);
   * ```
   */
  fill(byte: number): void {
    if (typeof byte !== "number" || !Number.isInteger(byte) || byte < 0 || byte > 255) {
      throw new InvalidArgumentError("VolatileSlice.fill", "byte", byte, "must be an integer in [0, 255]");
    }
    if (this.#len === 0) return;
    this.#checkGuard("fill");
    this.#ensure(true, "fill");
    this.hitViews.u8.fill(byte, this.#base, this.#base + this.#len);
    this.hitLog?.markDirty(this.hitLogBase + this.#base, this.#len);
  }

  /**
   * The host address of the first byte, after checking the memory allows the access (for handing
   * to a system call). Library-internal.
   */
  ioAddress(write: boolean, op: string): bigint {
    this.#checkGuard(op);
    this.#ensure(write, op);
    return this.hostAddress;
  }

  /** The fragments volatile I/O goes through (see `Bytes.ioSlices`). */
  protected ioSlices(addr: AddressLike, count: number, _write: boolean, op: string): VolatileSlice[] {
    const full = `VolatileSlice.${op}`;
    this.#checkGuard(full);
    const off = toAddress(addr, full, "offset");
    if (off > BigInt(this.#len)) throw new OutOfBoundsError(full, off, count, this.#len);
    const o = Number(off);
    return [
      new VolatileSlice(
        this.hitViews,
        this.#base + o,
        Math.min(count, this.#len - o),
        this.hitLog,
        this.hitLogBase,
        this.#guard,
      ),
    ];
  }

  /** Where a one-region range lies, for the scalar fast path (see `Bytes.locate`). */
  protected locate(addr: AddressLike, size: number, _write: boolean): number {
    // A revoked slice takes the slow path, which throws.
    const guard = this.#guard;
    if (guard !== undefined && !guard.isValid()) return -1;
    if (typeof addr === "number" && Number.isInteger(addr) && addr >= 0 && addr <= this.#len - size) {
      return this.#base + addr;
    }
    return -1;
  }

  /** Copies as far as the memory reaches (see `Bytes.transfer`). */
  protected transfer(buf: Uint8Array, len: number, addr: AddressLike, write: boolean, op: string): number {
    // The qualified name is built only off the fast path: a string per copy costs what the copy does.
    this.#checkGuard(op);
    if (write && this.#guard !== undefined && bytesLength(buf) < len) {
      // The guard is user code: it may have detached the array measured before it ran.
      throw fewerBytesError(`VolatileSlice.${op}`, buf);
    }
    if (typeof addr === "number" && addr >= 0 && addr < this.#len && Number.isInteger(addr) && len !== 0) {
      // The common case, without bigint: an offset inside the slice. A copy that fails falls
      // through to the full path, which fails the same way and says why.
      const n = Math.min(len, this.#len - addr);
      const at = this.#base + addr;
      if (
        copyRange(this.hitViews, at, buf, 0, n, len, write, this.hitLog, this.hitLogBase, "VolatileSlice", op) ===
          CopyStatus.Done
      ) {
        return n;
      }
    }
    const full = `VolatileSlice.${op}`;
    // Validated before the empty-buffer shortcut: a bad offset is an error even when nothing moves.
    const off = toAddress(addr, full, "offset");
    if (len === 0) return 0;
    if (off >= BigInt(this.#len)) throw new OutOfBoundsError(full, off, len, this.#len);
    const o = Number(off);
    const n = Math.min(len, this.#len - o);
    const status = copyRange(
      this.hitViews,
      this.#base + o,
      buf,
      0,
      n,
      len,
      write,
      this.hitLog,
      this.hitLogBase,
      "VolatileSlice",
      op,
    );
    if (status !== CopyStatus.Done) throw copyError(status, full, "slice offset", off, n);
    return n;
  }

  /** The checked target of an atomic (see `Bytes.atomicTarget`). */
  protected atomicTarget(addr: AddressLike, size: number, write: boolean, op: string): number {
    const full = `VolatileSlice.${op}`;
    this.#checkGuard(full);
    const off = toAddress(addr, full, "offset");
    if (off > BigInt(this.#len - size)) throw new OutOfBoundsError(full, off, size, this.#len);
    const o = this.#base + Number(off);
    checkAtomic(this.hitViews, o, size, write, full, off, "slice offset");
    return o;
  }

  #offsetWithin(op: string, offset: AddressLike, count: number): number {
    const off = toAddress(offset, op, "offset");
    if (off > BigInt(this.#len) || count > this.#len - Number(off)) {
      throw new OutOfBoundsError(op, off, count, this.#len);
    }
    return Number(off);
  }

  /** A buffer leased by the guard for a view of the whole slice, or `undefined` (no such guard). */
  #leased(op: string): ArrayBuffer | undefined {
    const guard = this.#guard;
    if (guard === undefined || !(LEASE_VIEW in guard)) return undefined;
    const v = this.hitViews;
    const buffer = (guard as ViewLeasingGuard)[LEASE_VIEW](v.mmap, v.offset + this.#base, this.#len, op);
    if (buffer !== undefined) {
      // Remembered for dispose; the guard shares one buffer among views of one range.
      let held = leasedBuffers.get(this);
      if (held === undefined) leasedBuffers.set(this, held = []);
      if (held.length === 0 || held[held.length - 1].deref() !== buffer) held.push(new WeakRef(buffer));
    }
    return buffer;
  }

  /** Throws the guard's error if the slice was revoked. `op` may be qualified (`Type.method`). */
  #checkGuard(op: string): void {
    const guard = this.#guard;
    if (guard !== undefined && !guard.isValid()) {
      throw guard.revokedError(op.includes(".") ? op : `VolatileSlice.${op}`);
    }
  }

  /** Refreshes stale views and throws if the access is not allowed. */
  #ensure(write: boolean, op: string): void {
    const v = this.hitViews;
    if (v.u8.length !== 0 && (write ? v.writable : v.readable)) return;
    // A qualified op (`GuestMemoryMmap.readVolatileFrom`) comes from a caller doing I/O for its
    // own public method; errors must name that method, not this slice.
    const full = op.includes(".") ? op : `VolatileSlice.${op}`;
    v.refresh(full);
    if (write ? !v.writable : !v.readable) {
      throw copyError(
        write && v.readable ? CopyStatus.ReadOnly : CopyStatus.NoAccess,
        full,
        "slice offset",
        0n,
        this.#len,
      );
    }
  }
}
