/**
 * `MmapRegion`: one mapping of host memory that the library owns (or borrows), with safe views, and
 * `MmapRegionBuilder`, every way of making one, validated before any system call. One file, as in
 * vm-memory: each class's API returns the other.
 * @module
 */

import { type AddressLike, isPowerOfTwo, toAddress, toLength } from "../core/address.ts";
import {
  bytesLength,
  bytesWindow,
  claimedLength,
  fewerBytesError,
  TYPED_SET,
  unreadableError,
} from "../core/caller_bytes.ts";
import {
  BufferEscapedError,
  InvalidArgumentError,
  NoAccessError,
  OutOfBoundsError,
  ReadOnlyError,
  RegionClosedError,
  ViewSeamError,
} from "../core/errors.ts";
import type { RawPointer } from "../ffi/binding.ts";
import { native } from "../ffi/native.ts";
import { syscallError } from "../ffi/syscall_error.ts";
import { hex } from "../core/format.ts";
import { sizeText } from "../core/inspect_text.ts";
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_HUGE_1GB,
  MAP_HUGE_2MB,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  mapFlagsToString,
  MFD_HUGETLB,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  protToString,
} from "../core/constants.ts";
import { FileOffset } from "./file_offset.ts";
import { mapHost } from "./host_mapping.ts";
import { type FileIdentity, openMappedFile, reserveFileSpace } from "./mapped_file.ts";
import { mappingPageSize } from "./mapping_page.ts";
import { InvalidPointerError, MapFixedError } from "./mmap_errors.ts";
import { BACKING, type BufferLease, LEASE, type Mapping, PIN, VIEW_BUFFER } from "../core/mapping.ts";

export type { FileIdentity };

/** What the builder hands to a new region. Internal. */
export interface RegionInit {
  addr: bigint;
  size: number;
  /** Bytes the kernel mapped: `size` rounded up to `pageSize`. */
  mapSize: number;
  /** The mapping's page size (a huge page size for hugetlb memory). */
  pageSize: number;
  prot: number;
  flags: number;
  owned: boolean;
  fileOffset: FileOffset | undefined;
  fileIdentity: FileIdentity | undefined;
  hugetlbfs: boolean | undefined;
  memfd: number;
  guardBefore: number;
  guardAfter: number;
}

// Methods the library calls on a region but users do not: keyed by symbols this module keeps.
const FROM_INIT: unique symbol = Symbol("gmem.MmapRegion.fromInit");
const RELEASE: unique symbol = Symbol("gmem.MmapRegion.release");
const LEASE_COUNT: unique symbol = Symbol("gmem.MmapRegion.leaseCount");

export type { BufferLease };

/**
 * The lease record. The buffer is held weakly (a long-running process takes views by the million),
 * except while it is among the region's most recent leases (`strong`), see `MmapRegion.#recent`.
 */
class Lease implements BufferLease {
  readonly region: MmapRegion;
  readonly offset: number;
  readonly length: number;
  readonly ref: WeakRef<ArrayBuffer>;
  strong: ArrayBuffer | undefined;
  /** Set while the region tracks the lease: told when the region drops it without a `release()`. */
  onGone: ((lease: BufferLease) => void) | undefined;
  live = true;

  constructor(
    region: MmapRegion,
    offset: number,
    length: number,
    buffer: ArrayBuffer,
    onGone: ((lease: BufferLease) => void) | undefined,
  ) {
    this.region = region;
    this.offset = offset;
    this.length = length;
    this.ref = new WeakRef(buffer);
    this.strong = buffer;
    this.onGone = onGone;
  }

  get buffer(): ArrayBuffer | undefined {
    return this.live ? this.ref.deref() : undefined;
  }

  release(): void {
    this.region[RELEASE](this);
  }
}

/** How many of a region's latest leases are held strongly (see `MmapRegion.#recent`). */
const RECENT_LEASES = 256;

/**
 * Creates a region from a finished mapping. Internal to the library (the builder uses it).
 *
 * @example
 * ```ts ignore
 * const region = createRegion(init);
 * ```
 */
export function createRegion(init: RegionInit): MmapRegion {
  return MmapRegion[FROM_INIT](init);
}

/**
 * The region's ArrayBuffer number `index` (covering region offsets from `index * viewSize`, see
 * {@link MmapRegion.viewSize}), for the layers above (never handed to users). Throws
 * {@link RegionClosedError} after `close()`.
 *
 * @example
 * ```ts ignore
 * const dv = new DataView(regionArrayBuffer(region, "GuestRegionMmap.create"));
 * ```
 */
export function regionArrayBuffer(region: MmapRegion, op: string, index = 0): ArrayBuffer {
  return region[VIEW_BUFFER](op, index);
}

/**
 * Keeps the region's memory mapped until the returned handle is disposed, for I/O that runs while
 * JavaScript goes on (an `await conn.read(view)`: the kernel writes through its own reference, which
 * detaching views does not stop). A `close()` meanwhile closes the region at once (views detached,
 * every call throws {@link RegionClosedError}) and leaves the `munmap` to the last release. Protection
 * cannot be reduced while pinned. Throws {@link RegionClosedError} if the region is already closed.
 * Disposing a handle twice releases it once. Internal to the library.
 *
 * @example
 * ```ts ignore
 * using _pin = pinRegion(region, "GuestMemoryMmap.readVolatileFromAsync");
 * await conn.read(view);
 * ```
 */
export function pinRegion(region: MmapRegion, op: string): Disposable {
  return region[PIN](op);
}

/**
 * Leases a buffer of its own over region offsets `[offset, offset + length)` (read-write memory
 * only, within one view, as for {@link MmapRegion.bytes}), for views that must be revocable alone:
 * `lease.release()` detaches it and nothing else. The region tracks it like its own buffer:
 * `close()` and a `protect()` that removes a right detach it, and one that user code transferred
 * away counts as an escaped buffer (close quarantines, protect refuses). `onGone` is told when the
 * region drops the lease by itself (closed, protection reduced, transferred away, or the buffer
 * found garbage-collected), so its holder can stop caring. Leases are held weakly and the
 * collected ones forgotten as new ones come (amortised: the record count stays within twice the
 * live count at the last sweep), not through a `FinalizationRegistry`, whose records cost far more
 * than the lease. Releasing a lease while a runtime I/O op writes into a view of it is safe for
 * the reason `close()` is: the op holds the memory through its own reference to the backing store,
 * which detaching does not take away, and the memory stays mapped (a release never unmaps; a close
 * waits for the pins, see {@link pinRegion}). Internal to the library.
 *
 * @example
 * ```ts ignore
 * const lease = leaseBuffer(region, 0, 16, "VolatileSlice.bytes", (l) => leases.delete(l));
 * ```
 */
export function leaseBuffer(
  region: MmapRegion,
  offset: number,
  length: number,
  op: string,
  onGone: ((lease: BufferLease) => void) | undefined,
): BufferLease {
  return region[LEASE](offset, length, op, onGone);
}

/**
 * How many leases the region tracks, after forgetting those whose buffer was collected or stolen
 * (so: the recent ones it holds, and those still alive), for tests of leaks. Internal to the library.
 *
 * @example
 * ```ts ignore
 * console.log(leaseCount(region)); // 0 after close()
 * ```
 */
export function leaseCount(region: MmapRegion): number {
  return region[LEASE_COUNT]();
}

/**
 * A mapping of host memory: anonymous, file-backed, memfd-backed, or a borrowed raw pointer. It is
 * the equivalent of vm-memory's `MmapRegion`.
 *
 * All access goes through one ArrayBuffer over the mapping (several where the runtime caps a buffer
 * below the region's size: 4 GiB on Bun; see {@link MmapRegion.viewSize}), plus the separate
 * buffers the layers above lease over parts of it for views they must revoke alone (IOMMU slices
 * with `revocation: "views"`). `close()` (or `using`)
 * detaches them all before unmapping, so every view handed out earlier throws a `TypeError` afterwards
 * instead of crashing the process. If user code transferred a buffer away, the range is quarantined
 * (replaced by scrap zero pages) rather than unmapped; where the runtime reports a buffer's
 * collection (Bun), the quarantined range is unmapped once that buffer is garbage. Protection is
 * enforced before memory is touched: writes to a read-only region throw {@link ReadOnlyError}.
 *
 * @example
 * ```ts
 * import { MmapRegion } from "../../mod.ts";
 * using region = MmapRegion.anonymous(1 << 20);
 * region.write(new TextEncoder().encode("hello"), 0x100);
 * const out = new Uint8Array(5);
 * region.read(out, 0x100);
 * console.log(new TextDecoder().decode(out)); // "hello"
 * ```
 */
export class MmapRegion implements Disposable, Mapping {
  #addr: bigint;
  #size: number;
  /** What munmap and mprotect must be given: for hugetlb memory, `#size` rounded up to a huge page. */
  readonly #mapSize: number;
  readonly #pageSize: number;
  #prot: number;
  readonly #flags: number;
  readonly #owned: boolean;
  readonly #fileOffset: FileOffset | undefined;
  readonly #fileIdentity: FileIdentity | undefined;
  #hugetlbfs: boolean | undefined;
  #memfd: number;
  readonly #guardBefore: number;
  readonly #guardAfter: number;
  /** Bytes per view: the whole region, or the runtime's largest ArrayBuffer. */
  readonly #viewSize: number;
  /** One buffer per view, made on first use. */
  readonly #buffers: (ArrayBuffer | undefined)[];
  /** The native hold of an owned mapping on runtimes whose buffers report their release, else 0n. */
  #hold = 0n;
  #closed = false;
  #quarantined = false;
  /** Set once user code was seen to have transferred a buffer of this region away. */
  #escaped = false;
  /** In-flight asynchronous operations that need the memory to stay mapped (see `pinRegion`). */
  #pins = 0;
  /** `close()` came while pinned: the last release unmaps. */
  #unmapPending = false;
  /** Buffers leased for revocable views (see `leaseBuffer`), made on first lease. */
  #leases: Set<Lease> | undefined = undefined;
  /**
   * The latest leases, whose buffers are held strongly: a buffer that user code transferred away
   * and then dropped could be collected before the region looks at it, and its escape would go
   * unnoticed. Holding the recent ones means that takes hundreds of leases in between.
   */
  #recent: (Lease | undefined)[] | undefined = undefined;
  #recentAt = 0;
  /** Lease count at which the next lease first forgets the collected ones (amortised). */
  #pruneAt = 64;

  /**
   * Makes the region object for a finished mapping (see `createRegion`).
   * @ignore
   */
  static [FROM_INIT](init: RegionInit): MmapRegion {
    return new MmapRegion(init);
  }

  /**
   * See `regionArrayBuffer`.
   * @ignore
   */
  [VIEW_BUFFER](op: string, index: number): ArrayBuffer {
    return this.#arrayBuffer(op, index);
  }

  /**
   * See `pinRegion`.
   * @ignore
   */
  [PIN](op: string): Disposable {
    return this.#pin(op);
  }

  /**
   * See `leaseBuffer`.
   * @ignore
   */
  [LEASE](
    offset: number,
    length: number,
    op: string,
    onGone: ((lease: BufferLease) => void) | undefined,
  ): BufferLease {
    return this.#lease(offset, length, op, onGone);
  }

  /**
   * Drops a lease its holder released.
   * @ignore
   */
  [RELEASE](lease: Lease): void {
    this.#release(lease);
  }

  /**
   * See `leaseCount`.
   * @ignore
   */
  [LEASE_COUNT](): number {
    if (this.#leases !== undefined) this.#pruneLeases();
    return this.#leases?.size ?? 0;
  }

  /**
   * What memory this is, for inspection: `anonymous`, `memfd fd N`, `file …@OFFSET` or `borrowed`.
   * @ignore
   */
  [BACKING](): string {
    if (!this.#owned) return "borrowed";
    if (!this.#closed && this.#memfd >= 0) return `memfd fd ${this.#memfd}`;
    if (this.#fileOffset !== undefined) return `file ${this.#fileOffset}`;
    return "anonymous";
  }

  private constructor(init: RegionInit) {
    this.#addr = init.addr;
    this.#size = init.size;
    this.#mapSize = init.mapSize;
    this.#pageSize = init.pageSize;
    this.#prot = init.prot;
    this.#flags = init.flags;
    this.#owned = init.owned;
    this.#fileOffset = init.fileOffset;
    this.#fileIdentity = init.fileIdentity;
    this.#hugetlbfs = init.hugetlbfs;
    this.#memfd = init.memfd;
    this.#guardBefore = init.guardBefore;
    this.#guardAfter = init.guardAfter;
    const n = native();
    this.#viewSize = Math.min(init.size, n.maxViewBytes);
    this.#buffers = new Array(Math.ceil(init.size / this.#viewSize)).fill(undefined);
    if (init.owned && n.collectsViews) {
      this.#hold = n.holdMapping(
        init.addr - BigInt(init.guardBefore),
        BigInt(init.guardBefore + init.mapSize + init.guardAfter),
      );
    }
  }

  /**
   * Maps `size` bytes of anonymous memory: read-write, `MAP_PRIVATE | MAP_ANONYMOUS |
   * MAP_NORESERVE` unless `options` say otherwise (vm-memory's `MmapRegion::new`).
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * using big = MmapRegion.anonymous(64 * 2 ** 30); // 64 GiB reserved, nothing resident yet
   * console.log(big.size); // 68719476736
   * ```
   */
  static anonymous(size: number, options: MapOptions = {}): MmapRegion {
    return new MmapRegionBuilder(size, "MmapRegion.anonymous").withOptions(options).build();
  }

  /**
   * Maps `size` bytes of a file from `fileOffset.start`: read-write, `MAP_SHARED | MAP_NORESERVE`
   * unless `options` say otherwise (vm-memory's `MmapRegion::from_file`).
   *
   * @example
   * ```ts
   * import { FileOffset, MmapRegion } from "../../mod.ts";
   * const path = Deno.makeTempFileSync();
   * Deno.truncateSync(path, 4096);
   * using region = MmapRegion.fromFile(FileOffset.fromPath(path), 4096);
   * region.write(new Uint8Array([42]), 0); // visible in the file
   * ```
   */
  static fromFile(fileOffset: FileOffset, size: number, options: MapOptions = {}): MmapRegion {
    return new MmapRegionBuilder(size, "MmapRegion.fromFile").withFileOffset(fileOffset).withOptions(options)
      .build();
  }

  /**
   * Creates a memfd of `size` bytes and maps it shared. The region owns the descriptor (see
   * {@link MmapRegion.fd}); map it again with `MmapRegion.fromFile(region.fileOffset!, size)` or hand
   * it to another process.
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * using a = MmapRegion.memfd(4096, { name: "guest-ram" });
   * using b = MmapRegion.fromFile(a.fileOffset!, 4096);
   * a.write(new Uint8Array([7]), 0);
   * console.log(b.bytes(0, 1)[0]); // 7: the same pages
   * ```
   */
  static memfd(size: number, options: MapOptions & { name?: string } = {}): MmapRegion {
    return new MmapRegionBuilder(size, "MmapRegion.memfd").withMemfd(options.name).withOptions(options).build();
  }

  /**
   * Borrows memory that something else mapped. The region never unmaps it; `close()` only
   * detaches the region's views. The caller promises the range stays mapped with `prot` while the
   * region is open.
   *
   * @example
   * ```ts
   * import { MmapRegion, PROT_READ, PROT_WRITE } from "../../mod.ts";
   * using owner = MmapRegion.anonymous(4096);
   * using borrowed = MmapRegion.fromRawPointer(owner.hostAddress, 4096, PROT_READ | PROT_WRITE);
   * console.log(borrowed.owned); // false
   * ```
   */
  static fromRawPointer(addr: AddressLike, size: number, prot: number, flags = 0): MmapRegion {
    return new MmapRegionBuilder(size, "MmapRegion.fromRawPointer").withRawMmapPointer(addr).withMmapProt(prot)
      .withMmapFlags(flags).build();
  }

  /**
   * A builder for every mapping option (vm-memory's `MmapRegionBuilder`).
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * using r = MmapRegion.builder(2 << 20).withAlignment(2 << 20).withGuardPages(4096).build();
   * console.log(r.hostAddress % (2n << 20n)); // 0n
   * ```
   */
  static builder(size: number): MmapRegionBuilder {
    return new MmapRegionBuilder(size, "MmapRegionBuilder");
  }

  /** Usable size in bytes. */
  get size(): number {
    return this.#size;
  }

  /**
   * Bytes one zero-copy view can cover: the whole region, unless the runtime caps an ArrayBuffer
   * below that (Bun: 4 GiB). Views then begin at multiples of this size, and a `bytes()`,
   * `dataView()` or slice may not straddle such a seam ({@link ViewSeamError}); copies may.
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * using r = MmapRegion.anonymous(4096);
   * console.log(r.viewSize); // 4096
   * ```
   */
  get viewSize(): number {
    return this.#viewSize;
  }

  /**
   * The page size the kernel backs the mapping with: the host page size, or the huge page size of
   * hugetlb memory (whose mapping then spans `size` rounded up to it; views cover `size` only).
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * using r = MmapRegion.anonymous(100);
   * console.log(r.pageSize); // 4096
   * ```
   */
  get pageSize(): number {
    return this.#pageSize;
  }

  /** Host virtual address of the first usable byte. */
  get hostAddress(): bigint {
    this.#checkOpen("MmapRegion.hostAddress");
    return this.#addr;
  }

  /** Current `PROT_*` bits. */
  get prot(): number {
    return this.#prot;
  }

  /** The `MAP_*` flags the region was mapped with. */
  get flags(): number {
    return this.#flags;
  }

  /** The file and offset behind the mapping, if any (a memfd's is `FileOffset.fromFd(fd, 0)`). */
  get fileOffset(): FileOffset | undefined {
    return this.#fileOffset;
  }

  /** Whether the region unmaps its memory on close (false for {@link MmapRegion.fromRawPointer}). */
  get owned(): boolean {
    return this.#owned;
  }

  /** Whether the memory is hugetlbfs-backed: `undefined` unless set or known from `MAP_HUGETLB`. */
  get isHugetlbfs(): boolean | undefined {
    return this.#hugetlbfs;
  }

  /** Bytes of `PROT_NONE` guard before the usable part. */
  get guardBefore(): number {
    return this.#guardBefore;
  }

  /** Bytes of `PROT_NONE` guard after the usable part. */
  get guardAfter(): number {
    return this.#guardAfter;
  }

  /** The memfd this region created and owns, or `undefined`. Throws after close. */
  get fd(): number | undefined {
    this.#checkOpen("MmapRegion.fd");
    return this.#memfd >= 0 ? this.#memfd : undefined;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Whether close found the ArrayBuffer transferred away and replaced the range with scrap pages
   * instead of unmapping it (the address range then stays reserved for the process's lifetime).
   */
  get quarantined(): boolean {
    return this.#quarantined;
  }

  /**
   * Records whether the memory is hugetlbfs-backed (vm-memory's `set_hugetlbfs`).
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * using r = MmapRegion.anonymous(4096);
   * r.setHugetlbfs(false);
   * console.log(r.isHugetlbfs); // false
   * ```
   */
  setHugetlbfs(value: boolean): void {
    this.#hugetlbfs = Boolean(value);
  }

  /**
   * True if both regions map the same file (same device and inode) and their file ranges
   * intersect. vm-memory compares raw descriptors; comparing the file itself also catches two
   * descriptors of one file.
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * using a = MmapRegion.memfd(8192);
   * using b = MmapRegion.fromFile(a.fileOffset!, 4096);
   * console.log(a.fdsOverlap(b)); // true
   * ```
   */
  fdsOverlap(other: MmapRegion): boolean {
    const a = this.#fileIdentity, b = other.#fileIdentity;
    if (!a || !b || a.dev !== b.dev || a.ino !== b.ino) return false;
    const aStart = this.#fileOffset!.start, bStart = other.#fileOffset!.start;
    return aStart < bStart + BigInt(other.#size) && bStart < aStart + BigInt(this.#size);
  }

  /**
   * A zero-copy `Uint8Array` over `[offset, offset + length)` (to the end by default). The region
   * must be readable and writable: a writable view of read-only memory would crash on its first
   * write. It becomes detached (length 0, methods throw) when the region is closed or its
   * protection is reduced.
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * using r = MmapRegion.anonymous(4096);
   * const page = r.bytes();
   * page.fill(0xab);
   * console.log(page[4095]); // 171
   * ```
   */
  bytes(offset: number | bigint = 0, length?: number): Uint8Array<ArrayBuffer> {
    const op = "MmapRegion.bytes";
    const off = this.#checkRange(op, offset, length);
    const len = length ?? this.#size - off;
    this.#requireProt(op, off, len, PROT_READ | PROT_WRITE);
    const i = this.#viewIndex(op, off, len);
    return new Uint8Array(this.#arrayBuffer(op, i), off - i * this.#viewSize, len);
  }

  /**
   * A zero-copy `DataView` over `[offset, offset + length)`; same rules as {@link MmapRegion.bytes}.
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * using r = MmapRegion.anonymous(4096);
   * r.dataView(8, 8).setBigUint64(0, 0xdeadbeefn, true);
   * ```
   */
  dataView(offset: number | bigint = 0, length?: number): DataView<ArrayBuffer> {
    const op = "MmapRegion.dataView";
    const off = this.#checkRange(op, offset, length);
    const len = length ?? this.#size - off;
    this.#requireProt(op, off, len, PROT_READ | PROT_WRITE);
    const i = this.#viewIndex(op, off, len);
    return new DataView(this.#arrayBuffer(op, i), off - i * this.#viewSize, len);
  }

  /**
   * A zero-copy view that only requires the region to be readable. Writing through it into
   * read-only memory kills the process with SIGSEGV; use it only to read.
   *
   * @example
   * ```ts
   * import { MmapRegion, PROT_READ } from "../../mod.ts";
   * using r = MmapRegion.builder(4096).withMmapProt(PROT_READ).build();
   * console.log(r.unsafeBytes(0, 4)); // Uint8Array(4) [0, 0, 0, 0]
   * ```
   */
  unsafeBytes(offset: number | bigint = 0, length?: number): Uint8Array<ArrayBuffer> {
    const op = "MmapRegion.unsafeBytes";
    const off = this.#checkRange(op, offset, length);
    const len = length ?? this.#size - off;
    this.#requireProt(op, off, len, PROT_READ);
    const i = this.#viewIndex(op, off, len);
    return new Uint8Array(this.#arrayBuffer(op, i), off - i * this.#viewSize, len);
  }

  /**
   * Copies `dst.length` bytes from region offset `offset` into `dst`. All or nothing: a range that
   * does not fit throws {@link OutOfBoundsError} and copies nothing.
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * using r = MmapRegion.anonymous(4096);
   * const out = new Uint8Array(16);
   * r.read(out, 4080);
   * ```
   */
  read(dst: Uint8Array, offset: number | bigint): void {
    const op = "MmapRegion.read";
    const len = claimedLength(dst);
    if (len < 0) throw unreadableError(op, "dst", dst, len);
    const off = this.#checkRange(op, offset, len);
    this.#requireProt(op, off, len, PROT_READ);
    this.#copy(op, dst, len, off, false);
  }

  /**
   * Copies `src` into the region at offset `offset`. All or nothing; throws {@link ReadOnlyError}
   * before touching read-only memory.
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * using r = MmapRegion.anonymous(4096);
   * r.write(new Uint8Array([1, 2, 3]), 0);
   * ```
   */
  write(src: Uint8Array, offset: number | bigint): void {
    const op = "MmapRegion.write";
    const len = bytesLength(src);
    if (len < 0) throw new InvalidArgumentError(op, "src", src, "must be a Uint8Array");
    const off = this.#checkRange(op, offset, len);
    this.#requireProt(op, off, len, PROT_WRITE);
    this.#copy(op, src, len, off, true);
  }

  /**
   * The runtime's native pointer to `offset` (for passing to C through FFI).
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * using r = MmapRegion.anonymous(4096);
   * const p = r.pointer(0);
   * ```
   */
  pointer(offset: number | bigint = 0): RawPointer {
    const op = "MmapRegion.pointer";
    const off = this.#checkRange(op, offset, 0);
    return native().pointer(this.#addr + BigInt(off));
  }

  /**
   * Changes the protection of the whole region (`mprotect`). When any right is removed, every view
   * handed out so far is detached first, so none of them can fault on the new protection; if user
   * code transferred the buffer away, that cannot be guaranteed and {@link BufferEscapedError} is
   * thrown with nothing changed. A borrowed region ({@link MmapRegion.fromRawPointer}) refuses: its
   * memory's protection belongs to the owner.
   *
   * @example
   * ```ts
   * import { MmapRegion, PROT_READ } from "../../mod.ts";
   * using r = MmapRegion.anonymous(4096);
   * const before = r.bytes();
   * r.protect(PROT_READ);
   * console.log(before.length); // 0: detached
   * ```
   */
  protect(prot: number): void {
    const op = "MmapRegion.protect";
    this.#checkOpen(op);
    if (
      typeof prot !== "number" || !Number.isInteger(prot) || prot < 0 || prot > 7 || // `&` would wrap 2^32
      (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0
    ) {
      throw new InvalidArgumentError(op, "prot", prot, "must be a combination of PROT_READ, PROT_WRITE, PROT_EXEC");
    }
    const removed = this.#prot & ~prot;
    if (!this.#owned) {
      // The borrowed memory's real protection is its owner's, whatever `prot` this region claims:
      // other views of it (the owner, other borrowers, fromShared copies in workers) would fault.
      throw new InvalidArgumentError(
        op,
        "prot",
        protToString(prot),
        `cannot be set on borrowed ${this.#describe()}; change the protection through the memory's owner`,
      );
    }
    if (removed !== 0 && this.#pins > 0) {
      // The kernel (or a runtime's own copy, as for TLS) may still touch the memory with the old rights.
      throw new InvalidArgumentError(
        op,
        "prot",
        protToString(prot),
        `removes access from ${this.#describe()} while ${this.#pins} asynchronous I/O operation(s) use it; await them first`,
      );
    }
    if (removed !== 0) {
      this.#noteEscape();
      if (this.#escaped) throw new BufferEscapedError(op, this.#describe());
      this.#detachAll();
    }
    const rc = native().protect(this.#addr, BigInt(this.#mapSize), prot);
    if (rc !== 0) {
      throw syscallError(op, "mprotect", rc, { addr: this.#addr, length: this.#mapSize, prot: protToString(prot) });
    }
    this.#prot = prot;
  }

  /**
   * Releases the mapping: detaches every view, then unmaps (owned regions) and closes the memfd the
   * region created. Calling it again does nothing. While asynchronous I/O of the library is in flight
   * on the region (`readVolatileFromAsync` and friends), the region is closed at once but the unmap
   * waits until that I/O settles, so the kernel never writes into memory that is gone. If the kernel
   * refuses to unmap, that is a `SyscallError` and the region stays open (`closed` false, the
   * memory mapped, the memfd open), so nothing is lost without a word and it can be closed again.
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * const r = MmapRegion.anonymous(4096);
   * const view = r.bytes();
   * r.close();
   * console.log(view.length); // 0, and view.fill(1) throws TypeError instead of crashing
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#noteEscape();
    const escaped = this.#escaped;
    this.#detachAll();
    if (this.#pins > 0) this.#unmapPending = true;
    else {
      const failure = this.#unmap();
      if (failure) {
        // The memory is still mapped, so the region stays open: what it says matches the kernel,
        // its views come back on demand, and close() can be tried again.
        this.#closed = false;
        throw failure;
      }
    }
    if (escaped && !this.#owned) {
      // Borrowed memory is not ours to quarantine: whoever owns it must keep it mapped for as
      // long as the transferred buffer lives, and the caller has to learn that.
      throw new BufferEscapedError("MmapRegion.close", `borrowed ${this.#describe()} (the owner must keep it mapped)`);
    }
  }

  /**
   * Unmaps (or quarantines) owned memory and closes the memfd; returns what failed, in which case
   * nothing was released (the mapping, the memfd and the hold are all still there).
   */
  #unmap(): Error | undefined {
    const n = native();
    if (this.#owned) {
      const base = this.#addr - BigInt(this.#guardBefore);
      const total = BigInt(this.#guardBefore + this.#mapSize + this.#guardAfter);
      if (this.#escaped) {
        const rc = n.quarantine(base, total);
        if (rc !== 0) return syscallError("MmapRegion.close", "mmap", rc, { addr: base, length: total });
        this.#quarantined = true;
      } else {
        const rc = n.unmap(base, total);
        if (rc !== 0) return syscallError("MmapRegion.close", "munmap", rc, { addr: base, length: total });
      }
      if (this.#hold !== 0n) {
        // An escaped buffer still reaches the quarantined range: it is unmapped when that buffer is
        // collected. Otherwise the range is gone already and the hold only counts down.
        n.releaseMapping(this.#hold, this.#quarantined);
        this.#hold = 0n;
      }
    }
    if (this.#memfd >= 0) {
      n.close(this.#memfd);
      this.#memfd = -1;
    }
    return undefined;
  }

  #pin(op: string): Disposable {
    this.#checkOpen(op);
    this.#pins++;
    let held = true;
    return {
      [Symbol.dispose]: () => {
        if (!held) return;
        held = false;
        if (--this.#pins > 0 || !this.#unmapPending) return;
        this.#unmapPending = false;
        const failure = this.#unmap();
        if (failure) {
          // As in close(): still mapped, so open again (and closable again), and the caller is told.
          this.#closed = false;
          throw failure;
        }
      },
    };
  }

  /** Same as {@link MmapRegion.close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * A one-line description.
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * using r = MmapRegion.anonymous(4096);
   * console.log(r.toString()); // "MmapRegion(host 0x7f…, 0x1000 bytes, READ|WRITE, PRIVATE|ANONYMOUS|NORESERVE)"
   * ```
   */
  toString(): string {
    return `MmapRegion(${this.#describe()}, ${protToString(this.#prot)}, ${mapFlagsToString(this.#flags)}${
      this.#fileOffset ? `, file ${this.#fileOffset}` : ""
    }${this.#owned ? "" : ", borrowed"}${this.#closed ? ", closed" : ""})`;
  }

  #describe(): string {
    return `host ${hex(this.#addr)}, ${hex(this.#size)} bytes`;
  }

  /**
   * One line for `console.log`/`Deno.inspect` (and Node's and Bun's `util.inspect`): size, host
   * address (or `closed`), what backs it, protection as `rwx` letters, the `MAP_*` flags, and the
   * asynchronous I/O pinning it, instead of the empty object a class with private fields shows.
   *
   * @example
   * ```ts
   * import { MmapRegion } from "../../mod.ts";
   * using r = MmapRegion.anonymous(0x10000);
   * console.log(Deno.inspect(r).replace(/0x[0-9a-f]+/, "0x…"));
   * // "MmapRegion: 64 KiB at host 0x…, anonymous, rw-, PRIVATE|ANONYMOUS|NORESERVE"
   * ```
   */
  [Symbol.for("Deno.customInspect")](): string {
    return this.#inspect();
  }

  /** The same text for Node's and Bun's `util.inspect`. @example `console.log(region)` */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.#inspect();
  }

  #inspect(): string {
    const p = this.#prot;
    const where = this.#closed ? "closed" : `at host ${hex(this.#addr)}`;
    let backing = "anonymous";
    if (!this.#owned) backing = "borrowed";
    else if (this.#memfd >= 0) backing = `memfd fd ${this.#memfd}`;
    else if (this.#fileOffset !== undefined) backing = `file ${this.#fileOffset}`;
    const parts = [
      `MmapRegion: ${sizeText(this.#size)} ${where}`,
      backing,
      `${p & PROT_READ ? "r" : "-"}${p & PROT_WRITE ? "w" : "-"}${p & PROT_EXEC ? "x" : "-"}`,
      mapFlagsToString(this.#flags),
    ];
    if (this.#pins > 0) parts.push(`pinned by ${this.#pins} I/O in flight`);
    return parts.join(", ");
  }

  #checkOpen(op: string): void {
    if (this.#closed) throw new RegionClosedError(op, `region at ${this.#describe()}`);
  }

  #arrayBuffer(op: string, index: number): ArrayBuffer {
    this.#checkOpen(op);
    const buffer = this.#buffers[index];
    if (buffer !== undefined && !buffer.detached) return buffer;
    this.#noteEscape();
    const start = index * this.#viewSize;
    const length = Math.min(this.#viewSize, this.#size - start);
    return this.#buffers[index] = native().arrayBuffer(this.#addr + BigInt(start), length, this.#hold);
  }

  /**
   * The library only detaches its buffers right before forgetting them, so a detached buffer still
   * held here was transferred away by user code and may alias the mapping from elsewhere.
   */
  #noteEscape(): void {
    const buffers = this.#buffers;
    for (let i = 0; i < buffers.length; i++) {
      if (buffers[i]?.detached) {
        this.#escaped = true;
        buffers[i] = undefined;
      }
    }
    if (this.#leases !== undefined) this.#pruneLeases();
  }

  /** Detaches and forgets every buffer, leased ones too (none of them escaped: the caller checked). */
  #detachAll(): void {
    const buffers = this.#buffers;
    for (let i = 0; i < buffers.length; i++) {
      buffers[i]?.transfer(0);
      buffers[i] = undefined;
    }
    const leases = this.#leases;
    if (leases === undefined) return;
    this.#leases = undefined;
    this.#recent = undefined;
    for (const lease of leases) {
      const buffer = lease.ref.deref();
      if (buffer !== undefined && !buffer.detached) buffer.transfer(0);
      this.#forget(lease);
      lease.onGone?.(lease);
    }
  }

  #lease(
    offset: number,
    length: number,
    op: string,
    onGone: ((lease: BufferLease) => void) | undefined,
  ): Lease {
    const off = this.#checkRange(op, offset, length);
    this.#requireProt(op, off, length, PROT_READ | PROT_WRITE);
    this.#viewIndex(op, off, length);
    const buffer = native().arrayBuffer(this.#addr + BigInt(off), length, this.#hold);
    const leases = this.#leases ??= new Set();
    if (leases.size >= this.#pruneAt) this.#pruneLeases();
    const lease = new Lease(this, off, length, buffer, onGone);
    leases.add(lease);
    const recent = this.#recent ??= new Array(RECENT_LEASES).fill(undefined);
    const older = recent[this.#recentAt];
    recent[this.#recentAt] = lease;
    this.#recentAt = (this.#recentAt + 1) % RECENT_LEASES;
    if (older !== undefined) this.#demote(older);
    return lease;
  }

  /** A lease leaves the strongly held recent ones: the last chance to see it transferred away. */
  #demote(lease: Lease): void {
    const buffer = lease.strong;
    lease.strong = undefined;
    if (lease.live && buffer?.detached) this.#lost(lease);
  }

  /**
   * Forgets leases whose buffer was collected or transferred away by user code (the library
   * detaches a lease only as it forgets it, so a detached buffer still tracked was stolen).
   */
  #pruneLeases(): void {
    const leases = this.#leases!;
    for (const lease of leases) {
      const buffer = lease.ref.deref();
      if (buffer === undefined) this.#gone(lease);
      else if (buffer.detached) this.#lost(lease);
    }
    this.#pruneAt = Math.max(64, 2 * leases.size);
  }

  /** A leased buffer was transferred away: the region can no longer revoke that alias. */
  #lost(lease: Lease): void {
    this.#escaped = true;
    this.#gone(lease);
  }

  /** Drops a lease the holder did not release (collected, stolen), and tells the holder. */
  #gone(lease: Lease): void {
    if (!lease.live || this.#leases?.delete(lease) !== true) return;
    this.#forget(lease);
    lease.onGone?.(lease);
  }

  #release(lease: Lease): void {
    if (!lease.live || this.#leases?.delete(lease) !== true) return;
    const buffer = lease.ref.deref();
    this.#forget(lease);
    if (buffer === undefined) return;
    if (buffer.detached) this.#escaped = true;
    else buffer.transfer(0);
  }

  #forget(lease: Lease): void {
    lease.live = false;
    lease.strong = undefined;
  }

  /**
   * The view holding `[off, off + len)` (the last one for an empty range at the end), or a
   * {@link ViewSeamError} if the range straddles two.
   */
  #viewIndex(op: string, off: number, len: number): number {
    const size = this.#viewSize;
    const i = Math.min(Math.floor(off / size), this.#buffers.length - 1);
    const seam = (i + 1) * size;
    if (off + len > seam) throw new ViewSeamError(op, "region offset", BigInt(off), len, BigInt(seam), size);
    return i;
  }

  /**
   * Copies between `buf` and `[off, off + len)` (checked), view by view. `len` is `buf`'s real
   * length for a write, its claimed one for a read; `buf` is used only through intrinsics (see
   * caller_bytes.ts).
   */
  #copy(op: string, buf: Uint8Array, len: number, off: number, write: boolean): void {
    const size = this.#viewSize;
    let done = 0;
    while (done < len) {
      const at = off + done;
      const i = Math.floor(at / size);
      const local = at - i * size;
      const n = Math.min(len - done, size - local);
      const view = new Uint8Array(this.#arrayBuffer(op, i), local, n);
      if (write) view.set(done === 0 && n === len ? buf : bytesWindow(buf, done, n, op));
      else {
        try {
          TYPED_SET.call(buf, view, done);
        } catch {
          throw fewerBytesError(op, buf, "dst"); // a claimed length past the real end (see claimedLength)
        }
      }
      done += n;
    }
  }

  /**
   * Validates `[offset, offset + length)` (length defaults to the rest of the region) and returns
   * the offset as a number. Plain number arguments take a path with no BigInt and no allocation.
   */
  #checkRange(op: string, offset: unknown, length: unknown): number {
    this.#checkOpen(op);
    const size = this.#size;
    if (
      typeof offset === "number" && Number.isSafeInteger(offset) && offset >= 0 && offset <= size &&
      (length === undefined ||
        (typeof length === "number" && Number.isSafeInteger(length) && length >= 0 && length <= size - offset))
    ) {
      return offset;
    }
    const len = length === undefined ? undefined : toLength(length, op, "length");
    const big = toAddress(offset, op, "offset");
    if (big > BigInt(size) || (len !== undefined && len > size - Number(big))) {
      throw new OutOfBoundsError(op, big, len ?? 0, size);
    }
    return Number(big);
  }

  #requireProt(op: string, off: number, len: number, want: number): void {
    const prot = this.#prot;
    if ((prot & want) === want) return;
    if ((want & PROT_WRITE) !== 0 && (prot & PROT_READ) !== 0) {
      throw new ReadOnlyError(op, "region offset", BigInt(off), len);
    }
    throw new NoAccessError(
      op,
      "region offset",
      BigInt(off),
      len,
      protToString(want).toLowerCase().replace("|", "-"),
      protToString(prot),
    );
  }
}

// ---- MmapRegionBuilder ----

/** Huge page sizes the builder can ask the kernel for. */
export type HugePageSize = "2M" | "1G";

/**
 * What a file mapping does about the file's space (see {@link MapOptions.fileSpace}): `"reserve"`
 * allocates it at map time, `"sparse"` leaves holes to be filled on first write.
 */
export type FileSpace = "reserve" | "sparse";

/** Options shared by the `MmapRegion` factories and {@link MmapRegionBuilder.withOptions}. */
export interface MapOptions {
  /** `PROT_*` bits; default `PROT_READ | PROT_WRITE`. */
  prot?: number;
  /** `MAP_*` flags replacing the default set (anonymous: private + anonymous + noreserve; file: shared + noreserve). */
  flags?: number;
  /** Prefault every page (`MAP_POPULATE`). */
  populate?: boolean;
  /**
   * Reserve no swap (`MAP_NORESERVE`); default true. Huge pages, however asked for (`hugePages`,
   * `MAP_HUGETLB` in `flags`, a hugetlbfs file or memfd), always reserve: an empty pool is then an
   * `ENOMEM` at map time, not a SIGBUS at the first touch.
   */
  noReserve?: boolean;
  /** Back with hugetlb pages of this size (`MAP_HUGETLB` or `MFD_HUGETLB`). */
  hugePages?: HugePageSize;
  /** Ask for transparent huge pages (`madvise(MADV_HUGEPAGE)`). */
  transparentHugePages?: boolean;
  /** Leave the memory out of core dumps (`madvise(MADV_DONTDUMP)`). */
  dontDump?: boolean;
  /** Alignment of the host address in bytes (a power of two), e.g. 2 MiB. */
  alignment?: number;
  /** `PROT_NONE` guard bytes on each side, or `{ before, after }` (page multiples). */
  guardPages?: number | { before: number; after: number };
  /** Record the memory as hugetlbfs-backed (or not). */
  hugetlbfs?: boolean;
  /**
   * For a shared mapping of a regular file through a read-write descriptor, on a file system with
   * a size limit: `"reserve"` (the default) allocates the file's blocks for the mapped range first
   * (`fallocate`), so that a write through the mapping never meets a full file system, which
   * would kill the process with SIGBUS; a full one is an `ENOSPC` error at map time instead. It
   * costs the space up front (on tmpfs such as `/dev/shm`, that is memory). `"sparse"` maps the
   * file as it is: holes are filled on first write, and a write the file system has no room for
   * kills the process. Memfds (no size limit) and hugetlbfs files (reserved by the mapping itself)
   * need neither.
   *
   * What no option can protect: on tmpfs (`/dev/shm`) even reading an unallocated page of a
   * mapped file allocates one, so a read-only or private mapping of a sparse tmpfs file dies of
   * SIGBUS on such a read once that tmpfs is full (allocate the file first, or map it shared
   * through a read-write descriptor); and a file that another process truncates below the
   * mapped range after it was mapped faults on the pages past its new end.
   */
  fileSpace?: FileSpace;
}

const HUGE_BYTES: Readonly<Record<HugePageSize, number>> = { "2M": 2 ** 21, "1G": 2 ** 30 };
const HUGE_FLAGS: Readonly<Record<HugePageSize, number>> = { "2M": MAP_HUGE_2MB, "1G": MAP_HUGE_1GB };

/**
 * Builds an {@link MmapRegion} step by step (vm-memory's `MmapRegionBuilder`). Every argument is
 * checked in TypeScript before the kernel is asked, and a failure leaves nothing mapped or open.
 *
 * @example
 * ```ts
 * import { MmapRegionBuilder, PROT_READ, PROT_WRITE } from "../../mod.ts";
 * using region = new MmapRegionBuilder(1 << 21)
 *   .withMmapProt(PROT_READ | PROT_WRITE)
 *   .withTransparentHugePages()
 *   .withAlignment(1 << 21)
 *   .build();
 * ```
 */
export class MmapRegionBuilder {
  readonly #op: string;
  readonly #size: number;
  #prot = PROT_READ | PROT_WRITE;
  #flags: number | undefined;
  #populate = false;
  #noReserve = true;
  #fileOffset: FileOffset | undefined;
  #memfdName: string | undefined;
  #rawPointer: bigint | undefined;
  #hugePages: HugePageSize | undefined;
  #thp = false;
  #dontDump = false;
  #alignment = 0;
  #guardBefore = 0;
  #guardAfter = 0;
  #hugetlbfs: boolean | undefined;
  #fileSpace: FileSpace = "reserve";

  /**
   * Starts a builder for `size` bytes (a positive safe integer).
   *
   * @example
   * ```ts
   * import { MmapRegionBuilder } from "../../mod.ts";
   * using r = new MmapRegionBuilder(4096).build();
   * ```
   */
  constructor(size: number, op = "MmapRegionBuilder") {
    this.#op = op;
    this.#size = toLength(size, op, "size", false);
  }

  /** Sets the `PROT_*` bits (default `PROT_READ | PROT_WRITE`). */
  withMmapProt(prot: number): this {
    if (
      typeof prot !== "number" || !Number.isInteger(prot) || prot < 0 || prot > 7 || // `&` would wrap 2^32
      (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0
    ) {
      throw new InvalidArgumentError(
        this.#op,
        "prot",
        prot,
        "must be a combination of PROT_READ, PROT_WRITE, PROT_EXEC",
      );
    }
    this.#prot = prot;
    return this;
  }

  /** Replaces the default `MAP_*` flags. `MAP_FIXED` is refused at build time. */
  withMmapFlags(flags: number): this {
    if (typeof flags !== "number" || !Number.isInteger(flags) || flags < 0 || flags > 0x7fffffff) {
      throw new InvalidArgumentError(this.#op, "flags", flags, "must be a non-negative 32-bit integer");
    }
    this.#flags = flags;
    return this;
  }

  /** Maps a file from the given offset instead of anonymous memory. */
  withFileOffset(fileOffset: FileOffset): this {
    if (!(fileOffset instanceof FileOffset)) {
      throw new InvalidArgumentError(this.#op, "fileOffset", fileOffset, "must be a FileOffset");
    }
    this.#fileOffset = fileOffset;
    return this;
  }

  /** Creates a memfd (named for `/proc/<pid>/fd` listings) and maps it shared. */
  withMemfd(name = "gmem"): this {
    if (typeof name !== "string" || name.includes("\0") || name.length > 249) {
      throw new InvalidArgumentError(this.#op, "name", name, "must be a string of at most 249 characters without NUL");
    }
    this.#memfdName = name;
    return this;
  }

  /** Borrows memory mapped elsewhere at `addr` (page-aligned); nothing is mapped or unmapped. */
  withRawMmapPointer(addr: AddressLike): this {
    this.#rawPointer = toAddress(addr, this.#op, "addr");
    return this;
  }

  /** Records whether the memory is hugetlbfs-backed. */
  withHugetlbfs(value: boolean): this {
    this.#hugetlbfs = Boolean(value);
    return this;
  }

  /** Backs the region with hugetlb pages of the given size; the size must be a multiple of it. */
  withHugePages(size: HugePageSize): this {
    if (size !== "2M" && size !== "1G") {
      throw new InvalidArgumentError(this.#op, "hugePages", size, 'must be "2M" or "1G"');
    }
    this.#hugePages = size;
    return this;
  }

  /** Asks for transparent huge pages (`MADV_HUGEPAGE`). */
  withTransparentHugePages(on = true): this {
    this.#thp = Boolean(on);
    return this;
  }

  /** Leaves the memory out of core dumps (`MADV_DONTDUMP`). */
  withDontDump(on = true): this {
    this.#dontDump = Boolean(on);
    return this;
  }

  /** Prefaults every page (`MAP_POPULATE`). */
  withPopulate(on = true): this {
    this.#populate = Boolean(on);
    return this;
  }

  /** Reserves no swap (`MAP_NORESERVE`, the default). */
  withNoReserve(on = true): this {
    this.#noReserve = Boolean(on);
    return this;
  }

  /** Chooses what a file mapping does about the file's space (see {@link MapOptions.fileSpace}). */
  withFileSpace(mode: FileSpace): this {
    if (mode !== "reserve" && mode !== "sparse") {
      throw new InvalidArgumentError(this.#op, "fileSpace", mode, 'must be "reserve" or "sparse"');
    }
    this.#fileSpace = mode;
    return this;
  }

  /** Aligns the host address to `bytes` (a power of two). */
  withAlignment(bytes: number): this {
    const a = toLength(bytes, this.#op, "alignment");
    if (a !== 0 && !isPowerOfTwo(a)) {
      throw new InvalidArgumentError(this.#op, "alignment", bytes, "must be a power of two");
    }
    this.#alignment = a;
    return this;
  }

  /** Surrounds the region with `PROT_NONE` guard bytes (page multiples). */
  withGuardPages(before: number, after: number = before): this {
    this.#guardBefore = toLength(before, this.#op, "guardPages.before");
    this.#guardAfter = toLength(after, this.#op, "guardPages.after");
    return this;
  }

  /** Applies a {@link MapOptions} object. */
  withOptions(options: MapOptions): this {
    if (options === null || typeof options !== "object") {
      throw new InvalidArgumentError(this.#op, "options", options, "must be an object");
    }
    if (options.prot !== undefined) this.withMmapProt(options.prot);
    if (options.flags !== undefined) this.withMmapFlags(options.flags);
    if (options.populate !== undefined) this.withPopulate(options.populate);
    if (options.noReserve !== undefined) this.withNoReserve(options.noReserve);
    if (options.hugePages !== undefined) this.withHugePages(options.hugePages);
    if (options.transparentHugePages !== undefined) this.withTransparentHugePages(options.transparentHugePages);
    if (options.dontDump !== undefined) this.withDontDump(options.dontDump);
    if (options.alignment !== undefined) this.withAlignment(options.alignment);
    if (options.hugetlbfs !== undefined) this.withHugetlbfs(options.hugetlbfs);
    if (options.fileSpace !== undefined) this.withFileSpace(options.fileSpace);
    const g = options.guardPages;
    if (typeof g === "number") this.withGuardPages(g);
    else if (g !== undefined) this.withGuardPages(g?.before, g?.after);
    return this;
  }

  /**
   * Maps the memory and returns the region.
   *
   * @example
   * ```ts
   * import { MmapRegionBuilder } from "../../mod.ts";
   * using r = new MmapRegionBuilder(8192).withGuardPages(4096).build();
   * console.log(r.guardBefore, r.guardAfter); // 4096 4096
   * ```
   */
  build(): MmapRegion {
    const op = this.#op === "MmapRegionBuilder" ? "MmapRegionBuilder.build" : this.#op;
    const n = native();
    const page = n.pageSize;
    const size = this.#size;

    if (this.#rawPointer !== undefined) return this.#buildBorrowed(op, page);

    for (
      const [name, v] of [["guardPages.before", this.#guardBefore], ["guardPages.after", this.#guardAfter]] as const
    ) {
      if (v % page !== 0) throw new InvalidArgumentError(op, name, v, `must be a multiple of the page size ${page}`);
    }
    if (this.#fileOffset && this.#memfdName !== undefined) {
      throw new InvalidArgumentError(op, "fileOffset", this.#fileOffset.toString(), "cannot be combined with a memfd");
    }
    const fileBacked = this.#fileOffset !== undefined || this.#memfdName !== undefined;
    let flags = this.#flags ?? (fileBacked ? MAP_SHARED | MAP_NORESERVE : MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    if (this.#flags === undefined && !this.#noReserve) flags &= ~MAP_NORESERVE;
    if (this.#populate) flags |= MAP_POPULATE;
    if ((flags & MAP_FIXED) !== 0) {
      throw new MapFixedError(op, flags);
    }
    if (((flags & MAP_SHARED) !== 0) === ((flags & MAP_PRIVATE) !== 0)) {
      throw new InvalidArgumentError(op, "flags", flags, "must contain exactly one of MAP_SHARED and MAP_PRIVATE");
    }
    if (fileBacked && (flags & MAP_ANONYMOUS) !== 0) {
      throw new InvalidArgumentError(op, "flags", flags, "must not contain MAP_ANONYMOUS for a file or memfd mapping");
    }
    if (!fileBacked && (flags & MAP_ANONYMOUS) === 0) {
      throw new InvalidArgumentError(op, "flags", flags, "must contain MAP_ANONYMOUS when no file is given");
    }

    let memfdFlags = 0;
    let memfdHugePage = 0;
    let hugetlbfs = this.#hugetlbfs;
    if (this.#hugePages) {
      const bytes = HUGE_BYTES[this.#hugePages];
      if (size % bytes !== 0) {
        throw new InvalidArgumentError(op, "size", size, `must be a multiple of the huge page size ${hex(bytes)}`);
      }
      if (this.#fileOffset) {
        throw new InvalidArgumentError(
          op,
          "hugePages",
          this.#hugePages,
          "does not apply to a file mapping (map a hugetlbfs file instead)",
        );
      }
      if (this.#memfdName !== undefined) {
        memfdFlags = MFD_HUGETLB | HUGE_FLAGS[this.#hugePages];
        memfdHugePage = bytes;
      } else {
        flags |= MAP_HUGETLB | HUGE_FLAGS[this.#hugePages];
      }
    }
    const asked = this.#alignment > page ? this.#alignment : 0;
    // Checked before anything is opened; the huge page rounding below is checked again.
    if (this.#guardBefore + size + this.#guardAfter + asked > Number.MAX_SAFE_INTEGER) {
      throw new InvalidArgumentError(op, "size", size, "plus guard pages and alignment must stay below 2^53");
    }

    const file = this.#fileOffset
      ? openMappedFile(op, this.#fileOffset, size, (this.#prot & PROT_WRITE) !== 0 && (flags & MAP_SHARED) !== 0)
      : undefined;
    let mapping;
    let pageSize: number;
    let mapSize: number;
    try {
      pageSize = mappingPageSize(
        op,
        flags,
        file ?? (this.#memfdName !== undefined ? { memfdHugePage } : { anonymous: true }),
      );
      if (pageSize > page) {
        // However huge pages were asked for (option, raw flags, a hugetlbfs file or memfd): without
        // a reservation an empty pool is only noticed at the first touch, as SIGBUS; reserving at
        // map time turns that into ENOMEM here.
        flags &= ~MAP_NORESERVE;
        hugetlbfs ??= true;
      }
      mapSize = Math.ceil(size / pageSize) * pageSize;
      // A hugetlb mapping placed inside a reservation (guards, alignment) must start on a huge page.
      const reserved = asked > 0 || this.#guardBefore > 0 || this.#guardAfter > 0;
      const alignment = reserved && pageSize > page ? Math.max(asked, pageSize) : asked;
      if (this.#guardBefore + mapSize + this.#guardAfter + alignment > Number.MAX_SAFE_INTEGER) {
        throw new InvalidArgumentError(
          op,
          "size",
          size,
          `rounded up to ${hex(pageSize)}-byte pages must stay below 2^53`,
        );
      }
      if (file !== undefined && this.#fileSpace === "reserve") {
        reserveFileSpace(op, file, (flags & MAP_SHARED) !== 0, this.#fileOffset!.start, mapSize);
      }
      mapping = mapHost(op, {
        size: mapSize,
        prot: this.#prot,
        flags,
        fd: file?.fd ?? -1,
        offset: this.#fileOffset?.start ?? 0n,
        alignment,
        guardBefore: this.#guardBefore,
        guardAfter: this.#guardAfter,
        transparentHugePages: this.#thp,
        dontDump: this.#dontDump,
        memfd: this.#memfdName !== undefined ? { name: this.#memfdName, flags: memfdFlags } : undefined,
      });
    } finally {
      if (file?.owned) n.close(file.fd);
    }

    let fileOffset = this.#fileOffset;
    let identity = file?.identity;
    if (mapping.memfd >= 0) {
      const st = new BigUint64Array(5);
      if (n.fstat(mapping.memfd, st) === 0) identity = { dev: st[0], ino: st[1] };
      fileOffset = FileOffset.fromFd(mapping.memfd, 0);
    }
    return createRegion({
      addr: mapping.addr,
      size,
      mapSize,
      pageSize,
      prot: this.#prot,
      flags,
      owned: true,
      fileOffset,
      fileIdentity: identity,
      hugetlbfs,
      memfd: mapping.memfd,
      guardBefore: this.#guardBefore,
      guardAfter: this.#guardAfter,
    });
  }

  #buildBorrowed(op: string, page: number): MmapRegion {
    const addr = this.#rawPointer!;
    if (addr === 0n || addr % BigInt(page) !== 0n) {
      throw new InvalidPointerError(op, addr, this.#size);
    }
    if (addr + BigInt(this.#size) > 1n << 64n) {
      throw new InvalidArgumentError(
        op,
        "size",
        this.#size,
        `runs past the end of the address space from ${hex(addr)}`,
      );
    }
    checkBorrowable(op, addr, this.#size, this.#prot, page);
    return createRegion({
      addr,
      size: this.#size,
      mapSize: this.#size,
      pageSize: page,
      prot: this.#prot,
      flags: this.#flags ?? 0,
      owned: false,
      fileOffset: this.#fileOffset,
      fileIdentity: undefined,
      hugetlbfs: this.#hugetlbfs,
      memfd: -1,
      guardBefore: 0,
      guardAfter: 0,
    });
  }
}

/**
 * Refuses a borrowed range whose first or last page is not mapped, or is mapped with less than
 * `prot`: a view of it would fault at once. (Checking the ends is O(1); a hole or a protection change
 * in the middle of a huge range is still the caller's to avoid.)
 */
function checkBorrowable(op: string, addr: bigint, size: number, prot: number, page: number): void {
  const n = native();
  const last = addr + BigInt(Math.ceil(size / page) - 1) * BigInt(page);
  for (const at of addr === last ? [addr] : [addr, last]) {
    const have = n.residentIn(at, BigInt(page)) < 0n ? -1 : n.vmaProt(at);
    if (have < 0) {
      throw new InvalidPointerError(op, addr, size, at);
    }
    if ((prot & ~have & (PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0) {
      throw new InvalidArgumentError(
        op,
        "prot",
        prot,
        `asks for more than the memory at ${hex(at)} is mapped with (${have & 7})`,
      );
    }
  }
}
