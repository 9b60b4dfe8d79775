/**
 * The permission-aware guest memory interface (vm-memory 0.18's `GuestMemory` trait), shared by
 * `GuestMemoryMmap` (which has no IOMMU and ignores the access mode) and `IommuMemory`.
 * @module
 */

import type { AddressLike } from "./address.ts";
import type { Bytes } from "./bytes.ts";
import type { GuestMemoryBackend, GuestMemoryRegion, SlicesResult } from "./guest_memory_backend.ts";
import type { VolatileSlice } from "./volatile_slice.ts";
import type { Permission } from "./permissions.ts";

/**
 * Physical guest memory that an IOMMU can sit in front of: a region collection with the byte
 * accessors (a `GuestMemoryMmap`, or a fresh one after a memory-table change).
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, type PhysicalMemory } from "../../mod.ts";
 * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
 * const phys: PhysicalMemory = ram;
 * ```
 */
export type PhysicalMemory<R extends GuestMemoryRegion = GuestMemoryRegion> = Bytes & GuestMemoryBackend<R>;

/**
 * Guest memory addressed through a possibly permission-checking translation. All of the byte
 * accessors (`read`, `write`, scalars, atomics, volatile I/O) come from {@link Bytes}: reads
 * ask for Read, writes and `readVolatileFrom` ask for Write, atomic loads Read, stores Write and
 * read-modify-writes ReadWrite.
 *
 * @example
 * ```ts
 * import { type GuestMemory, Permissions } from "../../mod.ts";
 * function canDma(mem: GuestMemory, addr: bigint, len: number): boolean {
 *   return mem.checkRange(addr, len, Permissions.Write);
 * }
 * ```
 */
export interface GuestMemory extends Bytes {
  /**
   * Whether all of `[addr, addr + len)` can be accessed with `access`. `len` 0 needs no memory, but
   * a translation may still refuse it (vm-memory's `IommuMemory` does inside an entry that denies
   * `access`).
   */
  checkRange(addr: AddressLike, len: number, access?: Permission): boolean;
  /** The fragments of `[addr, addr + count)`; throws if the first one fails. */
  getSlices(addr: AddressLike, count: number, access?: Permission): VolatileSlice[];
  /** The fragments and the error that ended them early, if any. */
  getSlicesResult(addr: AddressLike, count: number, access?: Permission): SlicesResult;
  /** The physical memory addressed directly, or `undefined` while a translation is in the way. */
  physicalMemory(): PhysicalMemory | undefined;
}
