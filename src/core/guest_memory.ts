/**
 * The permission-aware guest memory interface (vm-memory 0.18's `GuestMemory` trait), shared by
 * `GuestMemoryMmap` (which has no IOMMU and ignores the access mode) and `IommuMemory`.
 * @module
 */

import type { AddressLike } from "./address.ts";
import type { Bytes } from "./bytes.ts";
import type { GuestMemoryBackend, GuestMemoryRegion, GuestSlice, SlicesResult } from "./guest_memory_backend.ts";
import type { ViewWindow } from "./view_window.ts";
import type { VolatileSlice } from "./volatile_slice.ts";
import type { Permission } from "./permissions.ts";

/**
 * Physical guest memory that an IOMMU can sit in front of: any region collection whose slices
 * (of type `S`) can be copied, logged and guarded (a `GuestMemoryMmap`, a fresh one after a
 * memory-table change, or a backend of your own). A backend that also offers the view capability
 * (`locateWindow`, see `ViewLocator`) has its scalars, atomics and single-region copies served
 * straight from its typed arrays; any other is used through its slices (atomics then need views
 * and are refused).
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, type PhysicalMemory } from "../../mod.ts";
 * using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
 * const phys: PhysicalMemory = ram;
 * ```
 */
export interface PhysicalMemory<S extends GuestSlice<S> = VolatileSlice>
  extends GuestMemoryBackend<GuestMemoryRegion<S>, S> {
  /** The view capability: the window that holds `[addr, addr + size)`, if one does (see `ViewLocator`). */
  locateWindow?(addr: number, size: number): ViewWindow | undefined;
}

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
export interface GuestMemory<S extends GuestSlice<S> = VolatileSlice> extends Bytes {
  /**
   * Whether all of `[addr, addr + len)` can be accessed with `access`. `len` 0 needs no memory, but
   * a translation may still refuse it (vm-memory's `IommuMemory` does inside an entry that denies
   * `access`).
   */
  checkRange(addr: AddressLike, len: number, access?: Permission): boolean;
  /** The fragments of `[addr, addr + count)`; throws if the first one fails. */
  getSlices(addr: AddressLike, count: number, access?: Permission): S[];
  /** The fragments and the error that ended them early, if any. */
  getSlicesResult(addr: AddressLike, count: number, access?: Permission): SlicesResult<S>;
  /** The physical memory addressed directly, or `undefined` while a translation is in the way. */
  physicalMemory(): PhysicalMemory<S> | undefined;
}
