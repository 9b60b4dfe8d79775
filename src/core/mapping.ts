/**
 * `Mapping`: what the core needs of the host memory behind a region's views, so that views, slices
 * and their I/O are written against it and not against one backend. `MmapRegion` implements it.
 * @module
 */

/**
 * The key of the method that returns a mapping's buffer number `index`. Symbol-keyed so that only
 * the library reaches it: the buffers are never handed to users as such.
 *
 * @example
 * ```ts ignore
 * const ab = mapping[VIEW_BUFFER]("GuestRegionMmap.create", 0);
 * ```
 */
export const VIEW_BUFFER: unique symbol = Symbol("gmem.viewBuffer");

/**
 * The key of the method that keeps a mapping's memory mapped until the handle is disposed (I/O
 * that runs while JavaScript goes on).
 *
 * @example
 * ```ts ignore
 * using _pin = mapping[PIN]("GuestMemoryMmap.readVolatileFromAsync");
 * ```
 */
export const PIN: unique symbol = Symbol("gmem.pin");

/**
 * The key of the method that leases a buffer of its own over part of a mapping, for views that must
 * be revocable alone (see {@link BufferLease}).
 *
 * @example
 * ```ts ignore
 * const lease = mapping[LEASE](0x1000, 0x100, "VolatileSlice.bytes", undefined);
 * ```
 */
export const LEASE: unique symbol = Symbol("gmem.lease");

/**
 * The key of the method that names what memory a mapping is, for inspection: `anonymous`,
 * `memfd fd N`, `file …@OFFSET` or `borrowed`.
 *
 * @example
 * ```ts ignore
 * console.log(mapping[BACKING]()); // "anonymous"
 * ```
 */
export const BACKING: unique symbol = Symbol("gmem.backing");

/**
 * A buffer of its own over part of a mapping, so that views over it can be revoked without touching
 * the mapping's other views. Internal to the library.
 *
 * @example
 * ```ts ignore
 * const lease = mapping[LEASE](0x1000, 0x100, "VolatileSlice.bytes", undefined);
 * const view = new Uint8Array(lease.buffer!);
 * lease.release(); // view.length is 0 now
 * ```
 */
export interface BufferLease {
  /** The mapping the buffer lies in. */
  readonly region: Mapping;
  /** Mapping offset of the buffer's first byte. */
  readonly offset: number;
  /** Bytes the buffer covers. */
  readonly length: number;
  /** The buffer, or `undefined` once released, detached by its mapping, or garbage. */
  readonly buffer: ArrayBuffer | undefined;
  /** Detaches the buffer and forgets it; later calls do nothing. */
  release(): void;
}

/**
 * Host memory that region views are made over: its size and protection, and, behind symbol keys,
 * the buffers, pins and leases the layers above use. The public members are the ones `MmapRegion`
 * documents; the symbol-keyed ones are the library's own.
 *
 * @example
 * ```ts
 * import type { Mapping } from "./mapping.ts";
 * const describe = (m: Mapping) => `${m.size} bytes at 0x${m.hostAddress.toString(16)}`;
 * ```
 */
export interface Mapping {
  /** Whether the memory was unmapped (every buffer detached). */
  readonly closed: boolean;
  /** Size in bytes. */
  readonly size: number;
  /** Bytes per buffer: the whole mapping, or the runtime's largest `ArrayBuffer`. */
  readonly viewSize: number;
  /** The `PROT_*` bits the memory has now. */
  readonly prot: number;
  /** Host address of byte 0. */
  readonly hostAddress: bigint;
  /**
   * Buffer number `index`, covering offsets from `index * viewSize`. Throws `RegionClosedError`
   * once closed.
   * @ignore
   */
  [VIEW_BUFFER](op: string, index: number): ArrayBuffer;
  /**
   * Keeps the memory mapped until the handle is disposed; throws `RegionClosedError` if closed.
   * @ignore
   */
  [PIN](op: string): Disposable;
  /**
   * Leases a buffer over `[offset, offset + length)`. `onGone` is told when the mapping drops the
   * lease by itself (closed, protection reduced, transferred away, collected).
   * @ignore
   */
  [LEASE](
    offset: number,
    length: number,
    op: string,
    onGone: ((lease: BufferLease) => void) | undefined,
  ): BufferLease;
  /**
   * What memory this is, for inspection.
   * @ignore
   */
  [BACKING](): string;
}
