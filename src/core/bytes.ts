/**
 * `Bytes`: vm-memory's trait of the same name (buffers, scalars, atomics) written once for guest memory,
 * regions and slices. A subclass says where an address lives ({@link Bytes.locate}) and how a
 * bulk transfer behaves at its edges ({@link Bytes.transfer}); everything else is here.
 * @module
 */

import { type AddressLike, toAddress, toLength } from "./address.ts";
import { bytesLength, unreadableError } from "./caller_bytes.ts";
import { claimed } from "./array_address.ts";
import { InvalidArgumentError, PartialBufferError } from "./errors.ts";
import type { DirtyLog } from "./dirty_log.ts";
import type { RegionViews } from "./region_views.ts";
import type { ElementViews } from "./view_window.ts";
import { type AbortOptions, signalOf } from "./abort_signal.ts";
import { DECODE_AT, ENCODE_AT, type StructInput, StructLayout } from "./struct_layout.ts";
import { readInto, type VolatileIo, writeFrom } from "./volatile_io.ts";
import {
  adaptStream,
  type AsyncReader,
  type AsyncWriter,
  checkStream,
  type IoFragment,
  readIntoAsync,
  writeFromAsync,
} from "./volatile_io_async.ts";
import type { IoSlice } from "./io_slice.ts";
import { readableOver, type VolatileStreamOptions, writableOver } from "./volatile_streams.ts";

// Scratch space for scalars that take the slow path (unaligned, crossing a region, stale views).
// JavaScript is single-threaded per isolate, and nothing here awaits, so one set is enough.
const SCRATCH = new ArrayBuffer(8);
const SCRATCH_DV = new DataView(SCRATCH);
const SCRATCH_BY_SIZE: readonly Uint8Array[] = [
  new Uint8Array(0),
  new Uint8Array(SCRATCH, 0, 1),
  new Uint8Array(SCRATCH, 0, 2),
  new Uint8Array(0),
  new Uint8Array(SCRATCH, 0, 4),
  new Uint8Array(0),
  new Uint8Array(0),
  new Uint8Array(0),
  new Uint8Array(SCRATCH, 0, 8),
];

function bswap16(v: number): number {
  return ((v & 0xff) << 8) | ((v >>> 8) & 0xff);
}

function bswap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;
}

function bswap64(v: bigint): bigint {
  const lo = Number(v & 0xffffffffn), hi = Number(v >> 32n);
  return (BigInt(bswap32(lo)) << 32n) | BigInt(bswap32(hi));
}

/**
 * The byte-access methods shared by `GuestMemoryMmap`, `GuestRegionMmap` and `VolatileSlice`.
 *
 * Scalars are little-endian unless the name ends in `BE`. A naturally aligned scalar that lies in
 * one region is read or written with a single access of its size; others go through a bulk copy
 * (vm-memory does the same). Atomics require natural alignment and one region.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
 * mem.writeU32(0x1004, 0xdeadbeef);
 * console.log(mem.readU32(0x1004).toString(16)); // "deadbeef"
 * ```
 */
export abstract class Bytes {
  // This constructor must do no work: on Deno, a base class that initialises fields or has
  // `#private` methods (each instance then gets their brand) made `new VolatileSlice` ~13 ns
  // slower, a third of `getSlice`. So the hit fields are declared here and set by each subclass's
  // constructor, `addressName` is abstract, and the private helpers below are static, taking
  // the instance as `self`.
  /** Set by {@link Bytes.locate}: the views that hold the located range. */
  declare protected hitViews: ElementViews;
  /** Set by {@link Bytes.locate}: where writes to the located range are logged. */
  declare protected hitLog: DirtyLog | undefined;
  /** Set by {@link Bytes.locate}: added to a view offset to get the log offset. */
  declare protected hitLogBase: number;

  /** The class name used in error messages. */
  protected abstract readonly typeName: string;

  /** What errors call the address argument: `"addr"`, or `"offset"` where it is relative to a region or slice. */
  protected abstract readonly addressName: string;

  /**
   * Finds `[addr, addr + size)` inside one region and returns its offset in `hitViews` (setting
   * this object's `hitViews`, and for a write `hitLog` and `hitLogBase`, which only writes read), or
   * -1 when the fast path does not apply. `write` is the access wanted, for subclasses whose
   * permissions depend on it (an IOMMU). Must not allocate or throw.
   */
  protected abstract locate(addr: AddressLike, size: number, write: boolean): number;

  /**
   * Copies between `buf` and the memory at `addr` as far as the memory reaches and returns the
   * count; throws when nothing could be transferred because the start itself is invalid. `len` is
   * how many bytes of `buf` take part: for a write its real length (`bytesLength`), for a read at
   * most its claimed one (`claimedLength`). `buf`'s own properties are never read here, since a
   * caller may have shadowed them.
   */
  protected abstract transfer(buf: Uint8Array, len: number, addr: AddressLike, write: boolean, op: string): number;

  /**
   * Locates a naturally aligned, single-region target for an atomic, or throws why not (bounds,
   * alignment, protection, closed). Returns the offset in `hitViews`. Errors name `owner.op`, the
   * class whose public method was called (this one's, unless a translation layer asks).
   */
  protected abstract atomicTarget(addr: AddressLike, size: number, write: boolean, op: string, owner?: string): number;

  // ---- buffers ----

  /**
   * Writes as much of `buf` as fits at `addr`; returns the count (vm-memory's `write`).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x400]]);
   * console.log(mem.write(new Uint8Array(5), 0x13ff)); // 1
   * ```
   */
  write(buf: Uint8Array, addr: AddressLike): number {
    return this.transfer(buf, Bytes.#length(this, buf, "write"), addr, true, "write");
  }

  /**
   * Reads as much as is available at `addr` into `buf`; returns the count (vm-memory's `read`).
   * At most `buf.length` bytes (the property, read once) are filled; a buffer that holds fewer
   * than it claims is refused with `InvalidArgumentError`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * console.log(mem.read(new Uint8Array(16), 0xff8)); // 8
   * ```
   */
  read(buf: Uint8Array, addr: AddressLike): number {
    return this.transfer(buf, Bytes.#claimed(this, buf, "read"), addr, false, "read");
  }

  /**
   * Writes all of `buf` at `addr` or throws `PartialBufferError` (bytes written before the gap stay).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * mem.writeSlice(new TextEncoder().encode("hello"), 0x10);
   * ```
   */
  writeSlice(buf: Uint8Array, addr: AddressLike): void {
    const len = Bytes.#length(this, buf, "writeSlice");
    const n = this.transfer(buf, len, addr, true, "writeSlice");
    if (n !== len) throw Bytes.#partial(this, "writeSlice", addr, len, n);
  }

  /**
   * Fills all of `buf` from `addr` or throws `PartialBufferError`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * const out = new Uint8Array(4);
   * mem.readSlice(out, 0x10);
   * ```
   */
  readSlice(buf: Uint8Array, addr: AddressLike): void {
    const len = Bytes.#claimed(this, buf, "readSlice");
    const n = this.transfer(buf, len, addr, false, "readSlice");
    if (n !== len) throw Bytes.#partial(this, "readSlice", addr, len, n);
  }

  // ---- web streams ----

  /**
   * A `ReadableStream` of the `count` bytes at `addr`, for `pipeTo` (a `Deno.FsFile`'s `writable`,
   * a child's `stdin`, a `fetch` upload body) or `for await`. It reads nothing ahead: each pull
   * copies one chunk (`options.chunkSize`, default 64 KiB), or fills a BYOB reader's own buffer.
   * Chunks are copies, never views of guest memory. Memory that ends early or closes errors the
   * stream (`PartialBufferError` with the bytes delivered, or the memory's own error when nothing
   * was).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * mem.writeSlice(new TextEncoder().encode("hello"), 0x100);
   * console.log(await new Response(mem.readableStream(0x100, 5)).text()); // "hello"
   * ```
   */
  readableStream(addr: AddressLike, count: number, options?: VolatileStreamOptions): ReadableStream<Uint8Array> {
    return readableOver(
      (buf, len, a) => this.transfer(buf, len, a, false, "readableStream"),
      addr,
      count,
      options,
      Bytes.#op(this, "readableStream"),
      this.addressName,
    );
  }

  /**
   * A `WritableStream` that fills the `count` bytes at `addr` with what is written to it, in order
   * (a `Deno.FsFile`'s `readable`, a child's `stdout` or a `fetch` response body piped in). Each
   * chunk is copied in as it arrives and marked dirty. A chunk that would run past `count` errors
   * the stream before any of it is written; closing it short of `count` is a `PartialBufferError`
   * unless `options.exact` is false.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * await new Response("hello").body!.pipeTo(mem.writableStream(0x200, 5));
   * console.log(mem.readU8(0x200)); // 104
   * ```
   */
  writableStream(addr: AddressLike, count: number, options?: VolatileStreamOptions): WritableStream<Uint8Array> {
    return writableOver(
      (buf, len, a) => this.transfer(buf, len, a, true, "writableStream"),
      addr,
      count,
      options,
      Bytes.#op(this, "writableStream"),
      this.addressName,
    );
  }

  // ---- structs (vm-memory's read_obj / write_obj of a ByteValued type) ----

  /**
   * The struct `layout` describes, read from `addr` as a plain object in one call (vm-memory's
   * `read_obj`): `u64` fields as `bigint`, byte arrays as copies. A struct inside one region is
   * decoded where it lies; one that crosses regions is copied out first. Throws
   * `PartialBufferError` when the memory ends inside the struct (nothing is returned).
   *
   * @example
   * ```ts
   * import { defineLayout, GuestMemoryMmap } from "../../mod.ts";
   * const Desc = defineLayout("Desc", { addr: [0, "u64"], len: [8, "u32"], flags: [12, "u16"], next: [14, "u16"] });
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * mem.writeU64(0x100, 0x8000n);
   * mem.writeU32(0x108, 512);
   * console.log(mem.readObj(0x100, Desc)); // { addr: 32768n, len: 512, flags: 0, next: 0 }
   * ```
   */
  readObj<V extends object>(addr: AddressLike, layout: StructLayout<V>): V {
    Bytes.#checkLayout(this, layout, "readObj");
    const size = layout.size;
    const o = this.locate(addr, size, false);
    if (o >= 0) {
      const v = this.hitViews;
      // Decoded in place from views that carry a DataView (the mmap backend's); others copy first.
      const dv = (v as Partial<RegionViews>).dv;
      if (dv !== undefined && v.readable === true && o + size <= v.u8.length) return layout[DECODE_AT](dv, o);
    }
    const buf = new Uint8Array(size);
    const n = this.transfer(buf, size, addr, false, "readObj");
    if (n !== size) throw Bytes.#partial(this, "readObj", addr, size, n);
    return layout[DECODE_AT](new DataView(buf.buffer), 0);
  }

  /**
   * Writes `value` as the struct `layout` describes at `addr` (vm-memory's `write_obj`), all or
   * nothing: every field is checked (present, of its type and range) and the whole range is
   * checked writable before a byte moves, so a bad field or a range that runs into a hole, a
   * read-only or a closed region changes nothing (`InvalidArgumentError` naming the field,
   * `PartialBufferError` with `completed` 0, `ReadOnlyError`, ...). The bytes written are marked
   * dirty. Fields of `value` that the layout does not name are ignored.
   *
   * @example
   * ```ts
   * import { defineLayout, GuestMemoryMmap } from "../../mod.ts";
   * const UsedElem = defineLayout("UsedElem", { id: [0, "u32"], len: [4, "u32"] });
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * mem.writeObj(0x200, UsedElem, { id: 5, len: 4096 });
   * console.log(mem.readU32(0x204)); // 4096
   * ```
   */
  writeObj<V extends object>(addr: AddressLike, layout: StructLayout<V>, value: StructInput<V>): void {
    Bytes.#checkLayout(this, layout, "writeObj");
    const size = layout.size;
    const scratch = layout.takeScratch();
    try {
      layout[ENCODE_AT](layout.scratchView(scratch), 0, value, Bytes.#op(this, "writeObj"));
      const o = this.locate(addr, size, true);
      if (o >= 0) {
        const v = this.hitViews;
        if (v.writable === true && o + size <= v.u8.length) {
          v.u8.set(scratch, o);
          Bytes.#logged(this, o, size);
          return;
        }
      }
      Bytes.#writeAcross(this, addr, scratch, "writeObj");
    } finally {
      layout.releaseScratch(scratch);
    }
  }

  /**
   * Writes `bytes` at `addr` over several fragments, after checking that the fragments cover it
   * all and each may be written: nothing moves unless everything can.
   */
  static #writeAcross(self: Bytes, addr: AddressLike, bytes: Uint8Array, op: string): void {
    const full = Bytes.#op(self, op);
    const size = bytes.length;
    toAddress(addr, full, self.addressName);
    const slices = self.ioSlices(addr, size, true, op);
    let covered = 0;
    for (const s of slices) {
      s.ioAddress(true, full);
      covered += s.len;
    }
    if (covered < size) throw Bytes.#partial(self, op, addr, size, 0);
    let at = 0;
    for (const s of slices) {
      s.copyFrom(bytes.subarray(at, at + s.len));
      at += s.len;
    }
  }

  static #checkLayout(self: Bytes, layout: unknown, op: string): void {
    if (!(layout instanceof StructLayout)) {
      throw new InvalidArgumentError(
        Bytes.#op(self, op),
        "layout",
        layout,
        "must be a StructLayout (see defineLayout)",
      );
    }
  }

  // ---- I/O between memory and files, descriptors or arrays ----

  /**
   * Reads up to `count` bytes from `source` into memory at `addr` (one `readv` over every
   * fragment for a descriptor or `Deno.FsFile`); returns the bytes read. Marks them dirty.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * using file = Deno.openSync("/etc/hostname");
   * const n = mem.readVolatileFrom(0x1000, file, 64);
   * ```
   */
  readVolatileFrom(addr: AddressLike, source: VolatileIo, count: number): number {
    return Bytes.#io(this, addr, source, count, true, false, "readVolatileFrom");
  }

  /**
   * Reads exactly `count` bytes from `source` into memory, or throws `PartialBufferError` (vm-memory's
   * `read_exact_volatile_from`).
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * mem.readExactVolatileFrom(0, new Uint8Array([1, 2, 3]), 3);
   * ```
   */
  readExactVolatileFrom(addr: AddressLike, source: VolatileIo, count: number): void {
    Bytes.#io(this, addr, source, count, true, true, "readExactVolatileFrom");
  }

  /**
   * Writes up to `count` bytes of memory at `addr` to `sink`; returns the bytes written. Each
   * fragment is written whole.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const out = new Uint8Array(16);
   * console.log(mem.writeVolatileTo(0, out, 16)); // 16
   * ```
   */
  writeVolatileTo(addr: AddressLike, sink: VolatileIo, count: number): number {
    return Bytes.#io(this, addr, sink, count, false, false, "writeVolatileTo");
  }

  /**
   * Writes exactly `count` bytes of memory to `sink`, or throws `PartialBufferError`.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * mem.writeAllVolatileTo(0, new Uint8Array(8), 8);
   * ```
   */
  writeAllVolatileTo(addr: AddressLike, sink: VolatileIo, count: number): void {
    Bytes.#io(this, addr, sink, count, false, true, "writeAllVolatileTo");
  }

  /**
   * The fragments that I/O of `count` bytes at `addr` goes through, following the level's rules
   * (guest memory: stop at a hole after the first fragment; region and slice: clip at the end).
   */
  protected abstract ioSlices(addr: AddressLike, count: number, write: boolean, op: string): (IoSlice & Bytes)[];

  /**
   * Called for I/O of zero bytes, which moves nothing and needs no fragments. A level that refuses
   * even an empty access (an IOMMU whose entry denies it, as in vm-memory) throws here; by default
   * nothing happens.
   */
  protected checkEmptyIo(_addr: AddressLike, _write: boolean, _op: string): void {}

  // ---- asynchronous I/O with streams (sockets, files): zero-copy views, regions pinned meanwhile ----

  /**
   * Reads up to `count` bytes from `source` (a `Deno.Conn`, `Deno.UnixConn`, `Deno.FsFile`,
   * anything with `read(p): Promise<number | null>`, or a byte `ReadableStream` such as
   * `file.readable` or a `fetch` body, read BYOB through a bounce buffer of at most 1 MiB and
   * unlocked afterwards) into memory at `addr`; resolves to the bytes read. Each fragment of the range is handed to `source.read` as a zero-copy view of guest memory,
   * once: a short read leaves the rest of that fragment untouched and the next fragment is still
   * offered (vm-memory's `read_volatile_from`). Marks the bytes read dirty.
   *
   * The regions involved stay mapped until the promise settles: a `close()` meanwhile closes them at
   * once (views detached, calls throw `RegionClosedError`) and unmaps when this read is done, which
   * then rejects with `RegionClosedError` because its bytes were lost. Errors of the source reject
   * with `GuestIOError`; an address not backed by memory with `InvalidGuestAddressError`.
   * Aborting `options.signal` rejects at once with its reason; a `read` already in flight keeps
   * the regions mapped until it settles, and the bytes it lands are marked dirty.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * using file = await Deno.open("/etc/hostname");
   * const n = await mem.readVolatileFromAsync(0x1000, file, 64);
   * ```
   */
  readVolatileFromAsync(
    addr: AddressLike,
    source: AsyncReader | ReadableStream<Uint8Array>,
    count: number,
    options?: AbortOptions,
  ): Promise<number> {
    return Bytes.#ioAsync(this, addr, source, count, true, false, "readVolatileFromAsync", options);
  }

  /**
   * Reads exactly `count` bytes from `source` into memory at `addr`, reading each fragment until it
   * is full. Rejects with `PartialBufferError` `{expected: count, completed}` when the source ends
   * early or the range runs into a hole (the bytes read stay written and dirty). Same lifetime rules
   * as {@link Bytes.readVolatileFromAsync}.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const source = { read: (p: Uint8Array) => Promise.resolve(p.fill(7).length) };
   * await mem.readExactVolatileFromAsync(0x100, source, 16);
   * ```
   */
  async readExactVolatileFromAsync(
    addr: AddressLike,
    source: AsyncReader | ReadableStream<Uint8Array>,
    count: number,
    options?: AbortOptions,
  ): Promise<void> {
    await Bytes.#ioAsync(this, addr, source, count, true, true, "readExactVolatileFromAsync", options);
  }

  /**
   * Writes up to `count` bytes of memory at `addr` to `sink` (a `Deno.Conn`, `Deno.FsFile`,
   * anything with `write(p): Promise<number>`, or a `WritableStream`, which gets copies and is
   * unlocked afterwards); resolves to the bytes written. Every fragment is
   * written whole (short writes are continued), straight from a zero-copy view of guest memory
   * (a copy for memory without write access). A hole after the first fragment ends the transfer.
   * The regions stay mapped until the promise settles.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const chunks: Uint8Array[] = [];
   * const sink = { write: (p: Uint8Array) => Promise.resolve(chunks.push(p.slice()) && p.length) };
   * console.log(await mem.writeVolatileToAsync(0xff00, sink, 0x200)); // 256: the memory ends at 0x10000
   * ```
   */
  writeVolatileToAsync(
    addr: AddressLike,
    sink: AsyncWriter | WritableStream<Uint8Array>,
    count: number,
    options?: AbortOptions,
  ): Promise<number> {
    return Bytes.#ioAsync(this, addr, sink, count, false, false, "writeVolatileToAsync", options);
  }

  /**
   * Writes exactly `count` bytes of memory at `addr` to `sink`, or rejects with
   * `PartialBufferError` `{expected: count, completed}` when the range runs into a hole.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * using out = await Deno.open("/dev/null", { write: true });
   * await mem.writeAllVolatileToAsync(0, out, 0x10000);
   * ```
   */
  async writeAllVolatileToAsync(
    addr: AddressLike,
    sink: AsyncWriter | WritableStream<Uint8Array>,
    count: number,
    options?: AbortOptions,
  ): Promise<void> {
    await Bytes.#ioAsync(this, addr, sink, count, false, true, "writeAllVolatileToAsync", options);
  }

  static async #ioAsync(
    self: Bytes,
    addr: AddressLike,
    stream: AsyncReader | AsyncWriter | ReadableStream<Uint8Array> | WritableStream<Uint8Array>,
    count: number,
    intoMemory: boolean,
    exact: boolean,
    op: string,
    options: AbortOptions | undefined,
  ): Promise<number> {
    const full = Bytes.#op(self, op);
    const n = toLength(count, full, "count");
    const start = toAddress(addr, full, self.addressName);
    const signal = signalOf(options, full);
    const adapted = adaptStream(stream, intoMemory, full);
    try {
      const io = adapted.io as AsyncReader | AsyncWriter;
      checkStream(io, intoMemory, full);
      if (signal?.aborted) throw signal.reason;
      if (n === 0) {
        self.checkEmptyIo(addr, intoMemory, op);
        return 0;
      }
      // A slice's hitViews are its own views for its whole life (it never adopts another's hit).
      const fragments: IoFragment[] = self.ioSlices(addr, n, intoMemory, op).map((s) => ({
        slice: s,
        views: s.hitViews as RegionViews, // a VolatileSlice's views are its region's
      }));
      return intoMemory
        ? await readIntoAsync(fragments, io as AsyncReader, exact, n, start, full, signal)
        : await writeFromAsync(fragments, io as AsyncWriter, exact, n, start, full, signal);
    } finally {
      adapted.release();
    }
  }

  static #io(
    self: Bytes,
    addr: AddressLike,
    io: VolatileIo,
    count: number,
    intoMemory: boolean,
    exact: boolean,
    op: string,
  ): number {
    const full = Bytes.#op(self, op);
    const n = toLength(count, full, "count");
    const start = toAddress(addr, full, self.addressName);
    if (n === 0) {
      self.checkEmptyIo(addr, intoMemory, op);
      return 0;
    }
    const slices = self.ioSlices(addr, n, intoMemory, op);
    return intoMemory ? readInto(slices, io, exact, n, start, full) : writeFrom(slices, io, exact, n, start, full);
  }

  // ---- little-endian scalars ----

  /** Reads a u8. @example `mem.readU8(0x1000)` */
  readU8(addr: AddressLike): number {
    return Bytes.#loadU8(this, addr, "readU8");
  }

  /** Reads a little-endian u16. @example `mem.readU16(0x1000)` */
  readU16(addr: AddressLike): number {
    return Bytes.#loadU16(this, addr, "readU16");
  }

  /** Reads a little-endian u32. @example `mem.readU32(0x1000)` */
  readU32(addr: AddressLike): number {
    return Bytes.#loadU32(this, addr, "readU32");
  }

  /** Reads a little-endian u64 as a `bigint`. @example `mem.readU64(0x1000)` */
  readU64(addr: AddressLike): bigint {
    return Bytes.#loadU64(this, addr, "readU64");
  }

  /**
   * Reads a little-endian u64 as a `number`; throws `InvalidArgumentError` if it is 2^53 or more.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
   * mem.writeU64(8, 4096);
   * console.log(mem.readU64Number(8)); // 4096
   * ```
   */
  readU64Number(addr: AddressLike): number {
    const v = Bytes.#loadU64(this, addr, "readU64Number");
    if (v > 9007199254740991n) {
      throw new InvalidArgumentError(Bytes.#op(this, "readU64Number"), "value", v, "is 2^53 or more; use readU64");
    }
    return Number(v);
  }

  /** Reads an i8. @example `mem.readI8(0x1000)` */
  readI8(addr: AddressLike): number {
    return (Bytes.#loadU8(this, addr, "readI8") << 24) >> 24;
  }

  /** Reads a little-endian i16. @example `mem.readI16(0x1000)` */
  readI16(addr: AddressLike): number {
    return (Bytes.#loadU16(this, addr, "readI16") << 16) >> 16;
  }

  /** Reads a little-endian i32. @example `mem.readI32(0x1000)` */
  readI32(addr: AddressLike): number {
    return Bytes.#loadU32(this, addr, "readI32") | 0;
  }

  /** Reads a little-endian i64 as a `bigint`. @example `mem.readI64(0x1000)` */
  readI64(addr: AddressLike): bigint {
    return BigInt.asIntN(64, Bytes.#loadU64(this, addr, "readI64"));
  }

  /** Reads a little-endian f32. @example `mem.readF32(0x1000)` */
  readF32(addr: AddressLike): number {
    return Bytes.#loadF32(this, addr, "readF32");
  }

  /** Reads a little-endian f64. @example `mem.readF64(0x1000)` */
  readF64(addr: AddressLike): number {
    return Bytes.#loadF64(this, addr, "readF64");
  }

  /** Writes a u8 (0…255). @example `mem.writeU8(0x1000, 0xff)` */
  writeU8(addr: AddressLike, value: number): void {
    // For a number, `(value & 0xff) === value` is the whole range check (fractions, NaN, infinities
    // and values out of range all fail it), in fewer instructions than isInteger and two compares;
    // #checkInt then only builds the error.
    if (typeof value !== "number" || (value & 0xff) !== value) Bytes.#checkInt(this, value, 0, 0xff, "writeU8");
    Bytes.#storeU8(this, addr, value, "writeU8");
  }

  /** Writes a little-endian u16 (0…65535). @example `mem.writeU16(0x1000, 0xffff)` */
  writeU16(addr: AddressLike, value: number): void {
    if (typeof value !== "number" || (value & 0xffff) !== value) Bytes.#checkInt(this, value, 0, 0xffff, "writeU16");
    Bytes.#storeU16(this, addr, value, "writeU16");
  }

  /** Writes a little-endian u32. @example `mem.writeU32(0x1000, 0xdeadbeef)` */
  writeU32(addr: AddressLike, value: number): void {
    // `>>> 0` on a value, never an address: a number that survives it unchanged is a u32.
    if (typeof value !== "number" || value >>> 0 !== value) Bytes.#checkInt(this, value, 0, 0xffffffff, "writeU32");
    Bytes.#storeU32(this, addr, value, "writeU32");
  }

  /** Writes a little-endian u64 from a `bigint` or a safe-integer `number`. @example `mem.writeU64(0x1000, 1n << 63n)` */
  writeU64(addr: AddressLike, value: bigint | number): void {
    // The bigint check inline and #u64Value (numbers, errors) apart: a write's whole chain must stay
    // within V8's inlining budget of the caller's loop, or the store becomes a call (~2x slower).
    const v = typeof value === "bigint" && BigInt.asUintN(64, value) === value
      ? value
      : Bytes.#u64Value(this, value, "writeU64");
    Bytes.#storeU64(this, addr, v, "writeU64");
  }

  /** Writes an i8 (−128…127). @example `mem.writeI8(0x1000, -1)` */
  writeI8(addr: AddressLike, value: number): void {
    Bytes.#checkInt(this, value, -0x80, 0x7f, "writeI8");
    Bytes.#storeU8(this, addr, value & 0xff, "writeI8");
  }

  /** Writes a little-endian i16. @example `mem.writeI16(0x1000, -2)` */
  writeI16(addr: AddressLike, value: number): void {
    Bytes.#checkInt(this, value, -0x8000, 0x7fff, "writeI16");
    Bytes.#storeU16(this, addr, value & 0xffff, "writeI16");
  }

  /** Writes a little-endian i32. @example `mem.writeI32(0x1000, -3)` */
  writeI32(addr: AddressLike, value: number): void {
    Bytes.#checkInt(this, value, -0x80000000, 0x7fffffff, "writeI32");
    Bytes.#storeU32(this, addr, value >>> 0, "writeI32");
  }

  /** Writes a little-endian i64 from a `bigint` or safe-integer `number`. @example `mem.writeI64(0x1000, -4n)` */
  writeI64(addr: AddressLike, value: bigint | number): void {
    const v = typeof value === "number" ? Bytes.#safeInt(this, value, "writeI64") : value;
    if (typeof v !== "bigint" || v < -(1n << 63n) || v >= 1n << 63n) {
      throw new InvalidArgumentError(
        Bytes.#op(this, "writeI64"),
        "value",
        value,
        "must be an i64 (bigint or safe integer)",
      );
    }
    Bytes.#storeU64(this, addr, BigInt.asUintN(64, v), "writeI64");
  }

  /** Writes a little-endian f32. @example `mem.writeF32(0x1000, 1.5)` */
  writeF32(addr: AddressLike, value: number): void {
    Bytes.#checkNumber(this, value, "writeF32");
    Bytes.#storeF32(this, addr, value, "writeF32");
  }

  /** Writes a little-endian f64. @example `mem.writeF64(0x1000, Math.PI)` */
  writeF64(addr: AddressLike, value: number): void {
    Bytes.#checkNumber(this, value, "writeF64");
    Bytes.#storeF64(this, addr, value, "writeF64");
  }

  // ---- big-endian scalars: one access of the full size, then a byte swap ----

  /** Reads a big-endian u16. @example `mem.readU16BE(0x1000)` */
  readU16BE(addr: AddressLike): number {
    return bswap16(Bytes.#loadU16(this, addr, "readU16BE"));
  }

  /** Reads a big-endian u32. @example `mem.readU32BE(0x1000)` */
  readU32BE(addr: AddressLike): number {
    return bswap32(Bytes.#loadU32(this, addr, "readU32BE"));
  }

  /** Reads a big-endian u64. @example `mem.readU64BE(0x1000)` */
  readU64BE(addr: AddressLike): bigint {
    return bswap64(Bytes.#loadU64(this, addr, "readU64BE"));
  }

  /** Reads a big-endian i16. @example `mem.readI16BE(0x1000)` */
  readI16BE(addr: AddressLike): number {
    return (bswap16(Bytes.#loadU16(this, addr, "readI16BE")) << 16) >> 16;
  }

  /** Reads a big-endian i32. @example `mem.readI32BE(0x1000)` */
  readI32BE(addr: AddressLike): number {
    return bswap32(Bytes.#loadU32(this, addr, "readI32BE")) | 0;
  }

  /** Reads a big-endian i64. @example `mem.readI64BE(0x1000)` */
  readI64BE(addr: AddressLike): bigint {
    return BigInt.asIntN(64, bswap64(Bytes.#loadU64(this, addr, "readI64BE")));
  }

  /** Reads a big-endian f32. @example `mem.readF32BE(0x1000)` */
  readF32BE(addr: AddressLike): number {
    SCRATCH_DV.setUint32(0, Bytes.#loadU32(this, addr, "readF32BE"), true);
    return SCRATCH_DV.getFloat32(0, false);
  }

  /** Reads a big-endian f64. @example `mem.readF64BE(0x1000)` */
  readF64BE(addr: AddressLike): number {
    SCRATCH_DV.setBigUint64(0, Bytes.#loadU64(this, addr, "readF64BE"), true);
    return SCRATCH_DV.getFloat64(0, false);
  }

  /** Writes a big-endian u16. @example `mem.writeU16BE(0x1000, 0x1234)` */
  writeU16BE(addr: AddressLike, value: number): void {
    Bytes.#checkInt(this, value, 0, 0xffff, "writeU16BE");
    Bytes.#storeU16(this, addr, bswap16(value), "writeU16BE");
  }

  /** Writes a big-endian u32. @example `mem.writeU32BE(0x1000, 0x12345678)` */
  writeU32BE(addr: AddressLike, value: number): void {
    Bytes.#checkInt(this, value, 0, 0xffffffff, "writeU32BE");
    Bytes.#storeU32(this, addr, bswap32(value), "writeU32BE");
  }

  /** Writes a big-endian u64. @example `mem.writeU64BE(0x1000, 0x0102030405060708n)` */
  writeU64BE(addr: AddressLike, value: bigint | number): void {
    Bytes.#storeU64(this, addr, bswap64(Bytes.#u64Value(this, value, "writeU64BE")), "writeU64BE");
  }

  /** Writes a big-endian i16. @example `mem.writeI16BE(0x1000, -2)` */
  writeI16BE(addr: AddressLike, value: number): void {
    Bytes.#checkInt(this, value, -0x8000, 0x7fff, "writeI16BE");
    Bytes.#storeU16(this, addr, bswap16(value & 0xffff), "writeI16BE");
  }

  /** Writes a big-endian i32. @example `mem.writeI32BE(0x1000, -3)` */
  writeI32BE(addr: AddressLike, value: number): void {
    Bytes.#checkInt(this, value, -0x80000000, 0x7fffffff, "writeI32BE");
    Bytes.#storeU32(this, addr, bswap32(value >>> 0), "writeI32BE");
  }

  /** Writes a big-endian i64. @example `mem.writeI64BE(0x1000, -4n)` */
  writeI64BE(addr: AddressLike, value: bigint | number): void {
    const v = typeof value === "number" ? Bytes.#safeInt(this, value, "writeI64BE") : value;
    if (typeof v !== "bigint" || v < -(1n << 63n) || v >= 1n << 63n) {
      throw new InvalidArgumentError(
        Bytes.#op(this, "writeI64BE"),
        "value",
        value,
        "must be an i64 (bigint or safe integer)",
      );
    }
    Bytes.#storeU64(this, addr, bswap64(BigInt.asUintN(64, v)), "writeI64BE");
  }

  /** Writes a big-endian f32. @example `mem.writeF32BE(0x1000, 1.5)` */
  writeF32BE(addr: AddressLike, value: number): void {
    Bytes.#checkNumber(this, value, "writeF32BE");
    SCRATCH_DV.setFloat32(0, value, false);
    Bytes.#storeU32(this, addr, SCRATCH_DV.getUint32(0, true), "writeF32BE");
  }

  /** Writes a big-endian f64. @example `mem.writeF64BE(0x1000, 1.5)` */
  writeF64BE(addr: AddressLike, value: number): void {
    Bytes.#checkNumber(this, value, "writeF64BE");
    SCRATCH_DV.setFloat64(0, value, false);
    Bytes.#storeU64(this, addr, SCRATCH_DV.getBigUint64(0, true), "writeF64BE");
  }

  // ---- atomics (natural alignment, one region; `Misaligned` otherwise) ----

  /** Atomic u8 load. @example `mem.loadU8(0x1000)` */
  loadU8(addr: AddressLike): number {
    // atomicTarget first: it decides which region's views hitViews holds.
    const o = this.atomicTarget(addr, 1, false, "loadU8");
    return Atomics.load(this.hitViews.u8, o);
  }

  /** Atomic u16 load. @example `mem.loadU16(0x1000)` */
  loadU16(addr: AddressLike): number {
    const o = this.atomicTarget(addr, 2, false, "loadU16");
    return Atomics.load(this.hitViews.u16, o / 2);
  }

  /** Atomic u32 load. @example `mem.loadU32(0x1000)` */
  loadU32(addr: AddressLike): number {
    const o = this.atomicTarget(addr, 4, false, "loadU32");
    return Atomics.load(this.hitViews.u32, o / 4);
  }

  /** Atomic u64 load. @example `mem.loadU64(0x1000)` */
  loadU64(addr: AddressLike): bigint {
    const o = this.atomicTarget(addr, 8, false, "loadU64");
    return Atomics.load(this.hitViews.u64, o / 8);
  }

  /** Atomic u8 store. @example `mem.storeU8(0x1000, 1)` */
  storeU8(addr: AddressLike, value: number): void {
    Bytes.#checkInt(this, value, 0, 0xff, "storeU8");
    const o = this.atomicTarget(addr, 1, true, "storeU8");
    Atomics.store(this.hitViews.u8, o, value);
    Bytes.#logged(this, o, 1);
  }

  /** Atomic u16 store. @example `mem.storeU16(0x1000, 1)` */
  storeU16(addr: AddressLike, value: number): void {
    Bytes.#checkInt(this, value, 0, 0xffff, "storeU16");
    const o = this.atomicTarget(addr, 2, true, "storeU16");
    Atomics.store(this.hitViews.u16, o / 2, value);
    Bytes.#logged(this, o, 2);
  }

  /** Atomic u32 store. @example `mem.storeU32(0x1000, 1)` */
  storeU32(addr: AddressLike, value: number): void {
    Bytes.#checkInt(this, value, 0, 0xffffffff, "storeU32");
    const o = this.atomicTarget(addr, 4, true, "storeU32");
    Atomics.store(this.hitViews.u32, o / 4, value);
    Bytes.#logged(this, o, 4);
  }

  /** Atomic u64 store. @example `mem.storeU64(0x1000, 1n)` */
  storeU64(addr: AddressLike, value: bigint | number): void {
    const v = Bytes.#u64Value(this, value, "storeU64");
    const o = this.atomicTarget(addr, 8, true, "storeU64");
    Atomics.store(this.hitViews.u64, o / 8, v);
    Bytes.#logged(this, o, 8);
  }

  /** Atomic u8 compare-and-exchange; returns the old value. @example `mem.compareExchangeU8(0x1000, 0, 1)` */
  compareExchangeU8(addr: AddressLike, expected: number, value: number): number {
    Bytes.#checkInt(this, expected, 0, 0xff, "compareExchangeU8");
    Bytes.#checkInt(this, value, 0, 0xff, "compareExchangeU8");
    const o = this.atomicTarget(addr, 1, true, "compareExchangeU8");
    const old = Atomics.compareExchange(this.hitViews.u8, o, expected, value);
    if (old === expected) Bytes.#logged(this, o, 1);
    return old;
  }

  /** Atomic u16 compare-and-exchange; returns the old value. @example `mem.compareExchangeU16(0x1000, 0, 1)` */
  compareExchangeU16(addr: AddressLike, expected: number, value: number): number {
    Bytes.#checkInt(this, expected, 0, 0xffff, "compareExchangeU16");
    Bytes.#checkInt(this, value, 0, 0xffff, "compareExchangeU16");
    const o = this.atomicTarget(addr, 2, true, "compareExchangeU16");
    const old = Atomics.compareExchange(this.hitViews.u16, o / 2, expected, value);
    if (old === expected) Bytes.#logged(this, o, 2);
    return old;
  }

  /** Atomic u32 compare-and-exchange; returns the old value. @example `mem.compareExchangeU32(0x1000, 0, 1)` */
  compareExchangeU32(addr: AddressLike, expected: number, value: number): number {
    Bytes.#checkInt(this, expected, 0, 0xffffffff, "compareExchangeU32");
    Bytes.#checkInt(this, value, 0, 0xffffffff, "compareExchangeU32");
    const o = this.atomicTarget(addr, 4, true, "compareExchangeU32");
    const old = Atomics.compareExchange(this.hitViews.u32, o / 4, expected, value);
    if (old === expected) Bytes.#logged(this, o, 4);
    return old;
  }

  /** Atomic u64 compare-and-exchange; returns the old value. @example `mem.compareExchangeU64(0x1000, 0n, 1n)` */
  compareExchangeU64(addr: AddressLike, expected: bigint | number, value: bigint | number): bigint {
    const e = Bytes.#u64Value(this, expected, "compareExchangeU64"),
      v = Bytes.#u64Value(this, value, "compareExchangeU64");
    const o = this.atomicTarget(addr, 8, true, "compareExchangeU64");
    const old = Atomics.compareExchange(this.hitViews.u64, o / 8, e, v);
    if (old === e) Bytes.#logged(this, o, 8);
    return old;
  }

  /** Atomic u8 add (wrapping); returns the old value. @example `mem.addU8(0x1000, 1)` */
  addU8(addr: AddressLike, value: number): number {
    Bytes.#checkInt(this, value, 0, 0xff, "addU8");
    const o = this.atomicTarget(addr, 1, true, "addU8");
    Bytes.#logged(this, o, 1);
    return Atomics.add(this.hitViews.u8, o, value);
  }

  /** Atomic u16 add (wrapping); returns the old value. @example `mem.addU16(0x1000, 1)` */
  addU16(addr: AddressLike, value: number): number {
    Bytes.#checkInt(this, value, 0, 0xffff, "addU16");
    const o = this.atomicTarget(addr, 2, true, "addU16");
    Bytes.#logged(this, o, 2);
    return Atomics.add(this.hitViews.u16, o / 2, value);
  }

  /** Atomic u32 add (wrapping); returns the old value. @example `mem.addU32(0x1000, 1)` */
  addU32(addr: AddressLike, value: number): number {
    Bytes.#checkInt(this, value, 0, 0xffffffff, "addU32");
    const o = this.atomicTarget(addr, 4, true, "addU32");
    Bytes.#logged(this, o, 4);
    return Atomics.add(this.hitViews.u32, o / 4, value);
  }

  /** Atomic u64 add (wrapping); returns the old value. @example `mem.addU64(0x1000, 1n)` */
  addU64(addr: AddressLike, value: bigint | number): bigint {
    const v = Bytes.#u64Value(this, value, "addU64");
    const o = this.atomicTarget(addr, 8, true, "addU64");
    Bytes.#logged(this, o, 8);
    return Atomics.add(this.hitViews.u64, o / 8, v);
  }

  /** Atomic u8 or; returns the old value. @example `mem.orU8(0x1000, 0x80)` */
  orU8(addr: AddressLike, value: number): number {
    Bytes.#checkInt(this, value, 0, 0xff, "orU8");
    const o = this.atomicTarget(addr, 1, true, "orU8");
    Bytes.#logged(this, o, 1);
    return Atomics.or(this.hitViews.u8, o, value);
  }

  /** Atomic u16 or; returns the old value. @example `mem.orU16(0x1000, 1)` */
  orU16(addr: AddressLike, value: number): number {
    Bytes.#checkInt(this, value, 0, 0xffff, "orU16");
    const o = this.atomicTarget(addr, 2, true, "orU16");
    Bytes.#logged(this, o, 2);
    return Atomics.or(this.hitViews.u16, o / 2, value);
  }

  /** Atomic u32 or; returns the old value. @example `mem.orU32(0x1000, 1)` */
  orU32(addr: AddressLike, value: number): number {
    Bytes.#checkInt(this, value, 0, 0xffffffff, "orU32");
    const o = this.atomicTarget(addr, 4, true, "orU32");
    Bytes.#logged(this, o, 4);
    return Atomics.or(this.hitViews.u32, o / 4, value);
  }

  /** Atomic u64 or; returns the old value. @example `mem.orU64(0x1000, 1n)` */
  orU64(addr: AddressLike, value: bigint | number): bigint {
    const v = Bytes.#u64Value(this, value, "orU64");
    const o = this.atomicTarget(addr, 8, true, "orU64");
    Bytes.#logged(this, o, 8);
    return Atomics.or(this.hitViews.u64, o / 8, v);
  }

  // ---- internals ----

  /** `Type.op` for error messages. */
  static #op(self: Bytes, op: string): string {
    return `${self.typeName}.${op}`;
  }

  static #logged(self: Bytes, offset: number, len: number): void {
    const log = self.hitLog;
    if (log !== undefined) log.markDirty(self.hitLogBase + offset, len);
  }

  static #slowRead(self: Bytes, addr: AddressLike, size: number, op: string): DataView {
    const n = self.transfer(SCRATCH_BY_SIZE[size], size, addr, false, op);
    if (n !== size) throw Bytes.#partial(self, op, addr, size, n);
    return SCRATCH_DV;
  }

  static #slowWrite(self: Bytes, addr: AddressLike, size: number, op: string): void {
    const n = self.transfer(SCRATCH_BY_SIZE[size], size, addr, true, op);
    if (n !== size) throw Bytes.#partial(self, op, addr, size, n);
  }

  // The loads and stores take the public method's name, so that errors name what the caller called.
  //
  // The fast path: `locate` found the range in one region, the offset is naturally aligned
  // (`o & (size - 1)` is exact below 2^53: 2^32 is a multiple of every size), the views allow the
  // access, and the element lies inside its own typed array, whose length is 0 once the region is
  // closed. Each helper reads `hitViews` once and compares flags with `=== true` (V8 cannot tell
  // they are booleans and would test every falsy value): bench/guest_memory.ts measured these
  // paths at 2.7-4.1x a bare DataView access before, 1.9-2.7x after. Anything else takes the bulk
  // copy, which reports what went wrong.

  static #loadU8(self: Bytes, addr: AddressLike, op: string): number {
    const o = self.locate(addr, 1, false);
    if (o >= 0) {
      const v = self.hitViews, a = v.u8;
      if (v.readable === true && o < a.length) return a[o];
    }
    return Bytes.#slowRead(self, addr, 1, op).getUint8(0);
  }

  static #loadU16(self: Bytes, addr: AddressLike, op: string): number {
    const o = self.locate(addr, 2, false);
    if (o >= 0 && (o & 1) === 0) {
      const v = self.hitViews, a = v.u16, i = o / 2;
      if (v.readable === true && i < a.length) return a[i];
    }
    return Bytes.#slowRead(self, addr, 2, op).getUint16(0, true);
  }

  static #loadU32(self: Bytes, addr: AddressLike, op: string): number {
    const o = self.locate(addr, 4, false);
    if (o >= 0 && (o & 3) === 0) {
      const v = self.hitViews, a = v.u32, i = o / 4;
      if (v.readable === true && i < a.length) return a[i];
    }
    return Bytes.#slowRead(self, addr, 4, op).getUint32(0, true);
  }

  static #loadU64(self: Bytes, addr: AddressLike, op: string): bigint {
    const o = self.locate(addr, 8, false);
    if (o >= 0 && (o & 7) === 0) {
      const v = self.hitViews, a = v.u64, i = o / 8;
      if (v.readable === true && i < a.length) return a[i];
    }
    return Bytes.#slowRead(self, addr, 8, op).getBigUint64(0, true);
  }

  static #loadF32(self: Bytes, addr: AddressLike, op: string): number {
    const o = self.locate(addr, 4, false);
    if (o >= 0 && (o & 3) === 0) {
      const v = self.hitViews, a = v.f32, i = o / 4;
      if (v.readable === true && i < a.length) return a[i];
    }
    return Bytes.#slowRead(self, addr, 4, op).getFloat32(0, true);
  }

  static #loadF64(self: Bytes, addr: AddressLike, op: string): number {
    const o = self.locate(addr, 8, false);
    if (o >= 0 && (o & 7) === 0) {
      const v = self.hitViews, a = v.f64, i = o / 8;
      if (v.readable === true && i < a.length) return a[i];
    }
    return Bytes.#slowRead(self, addr, 8, op).getFloat64(0, true);
  }

  static #storeU8(self: Bytes, addr: AddressLike, value: number, op: string): void {
    const o = self.locate(addr, 1, true);
    if (o >= 0) {
      const v = self.hitViews, a = v.u8;
      if (v.writable === true && o < a.length) {
        a[o] = value;
        const log = self.hitLog; // #logged, written out (see #storeU64)
        if (log !== undefined) log.markDirty(self.hitLogBase + o, 1);
        return;
      }
    }
    SCRATCH_DV.setUint8(0, value);
    Bytes.#slowWrite(self, addr, 1, op);
  }

  static #storeU16(self: Bytes, addr: AddressLike, value: number, op: string): void {
    const o = self.locate(addr, 2, true);
    if (o >= 0 && (o & 1) === 0) {
      const v = self.hitViews, a = v.u16, i = o / 2;
      if (v.writable === true && i < a.length) {
        a[i] = value;
        const log = self.hitLog; // #logged, written out (see #storeU64)
        if (log !== undefined) log.markDirty(self.hitLogBase + o, 2);
        return;
      }
    }
    SCRATCH_DV.setUint16(0, value, true);
    Bytes.#slowWrite(self, addr, 2, op);
  }

  static #storeU32(self: Bytes, addr: AddressLike, value: number, op: string): void {
    const o = self.locate(addr, 4, true);
    if (o >= 0 && (o & 3) === 0) {
      const v = self.hitViews, a = v.u32, i = o / 4;
      if (v.writable === true && i < a.length) {
        a[i] = value;
        const log = self.hitLog; // #logged, written out (see #storeU64)
        if (log !== undefined) log.markDirty(self.hitLogBase + o, 4);
        return;
      }
    }
    SCRATCH_DV.setUint32(0, value, true);
    Bytes.#slowWrite(self, addr, 4, op);
  }

  static #storeU64(self: Bytes, addr: AddressLike, value: bigint, op: string): void {
    const o = self.locate(addr, 8, true);
    if (o >= 0 && (o & 7) === 0) {
      const v = self.hitViews, a = v.u64, i = o / 8;
      if (v.writable === true && i < a.length) {
        a[i] = value;
        // #logged, written out: a write's chain (public method, store, locate, a log's markDirty) is
        // near V8's inlining budget, and past it the store becomes a call (2x slower).
        const log = self.hitLog;
        if (log !== undefined) log.markDirty(self.hitLogBase + o, 8);
        return;
      }
    }
    Bytes.#slowWriteU64(self, addr, value, op);
  }

  /** #storeU64 past its fast path, apart so that the fast one stays small (V8 inlines by size). */
  static #slowWriteU64(self: Bytes, addr: AddressLike, value: bigint, op: string): void {
    SCRATCH_DV.setBigUint64(0, value, true);
    Bytes.#slowWrite(self, addr, 8, op);
  }

  static #storeF32(self: Bytes, addr: AddressLike, value: number, op: string): void {
    const o = self.locate(addr, 4, true);
    if (o >= 0 && (o & 3) === 0) {
      const v = self.hitViews, a = v.f32, i = o / 4;
      if (v.writable === true && i < a.length) {
        a[i] = value;
        const log = self.hitLog; // #logged, written out (see #storeU64)
        if (log !== undefined) log.markDirty(self.hitLogBase + o, 4);
        return;
      }
    }
    SCRATCH_DV.setFloat32(0, value, true);
    Bytes.#slowWrite(self, addr, 4, op);
  }

  static #storeF64(self: Bytes, addr: AddressLike, value: number, op: string): void {
    const o = self.locate(addr, 8, true);
    if (o >= 0 && (o & 7) === 0) {
      const v = self.hitViews, a = v.f64, i = o / 8;
      if (v.writable === true && i < a.length) {
        a[i] = value;
        const log = self.hitLog; // #logged, written out (see #storeU64)
        if (log !== undefined) log.markDirty(self.hitLogBase + o, 8);
        return;
      }
    }
    SCRATCH_DV.setFloat64(0, value, true);
    Bytes.#slowWrite(self, addr, 8, op);
  }

  static #partial(self: Bytes, op: string, addr: AddressLike, expected: number, completed: number): PartialBufferError {
    return new PartialBufferError(Bytes.#op(self, op), BigInt(addr), expected, completed);
  }

  /** The length of `buf` to write from: its real one, which every check and the copy use (see `bytesLength`). */
  static #length(self: Bytes, buf: Uint8Array, op: string): number {
    const len = bytesLength(buf);
    if (len < 0) throw new InvalidArgumentError(Bytes.#op(self, op), "buf", buf, "must be a Uint8Array");
    return len;
  }

  /** How many bytes to read into `buf`: its `length`, read once (see `claimedLength`). */
  static #claimed(self: Bytes, buf: Uint8Array, op: string): number {
    const len = claimed(buf);
    if (len < 0) throw unreadableError(Bytes.#op(self, op), "buf", buf, len);
    return len;
  }

  static #checkInt(self: Bytes, value: number, min: number, max: number, op: string): void {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      throw new InvalidArgumentError(Bytes.#op(self, op), "value", value, `must be an integer in [${min}, ${max}]`);
    }
  }

  static #checkNumber(self: Bytes, value: number, op: string): void {
    if (typeof value !== "number") {
      throw new InvalidArgumentError(Bytes.#op(self, op), "value", value, "must be a number");
    }
  }

  static #safeInt(self: Bytes, value: number, op: string): bigint {
    if (!Number.isSafeInteger(value)) {
      throw new InvalidArgumentError(Bytes.#op(self, op), "value", value, "must be a safe integer number or a bigint");
    }
    return BigInt(value);
  }

  static #u64Value(self: Bytes, value: bigint | number, op: string): bigint {
    if (typeof value === "bigint") {
      // One comparison, which V8 compiles to a compare of machine words while the values it has
      // seen fit in 63 bits; `0n <= value <= U64_MAX` calls a BigInt builtin twice per write.
      if (BigInt.asUintN(64, value) === value) return value;
    } else if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) {
      return BigInt(value);
    }
    throw new InvalidArgumentError(
      Bytes.#op(self, op),
      "value",
      value,
      "must be a u64 (bigint, or a safe non-negative integer)",
    );
  }
}
