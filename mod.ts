/**
 * gmem: guest memory for Deno and Bun on real host memory, in rust-vmm vm-memory's model. This is
 * the guest memory entry point: the interfaces (`GuestMemory`, `GuestMemoryBackend`,
 * `GuestMemoryRegion`, `Bytes`, `VolatileSlice`, `Permissions`, the errors) and their mmap backend.
 *
 * Start from {@link GuestMemoryMmap}: guest physical memory made of mmap-backed regions, with every
 * `Bytes` method (scalars, copies, atomics, volatile I/O). The layer underneath, {@link MmapRegion},
 * is one host mapping, for when you manage mappings yourself. The IOMMU is `@gmem/gmem/iommu`, the
 * virtio and vhost-user back-end layer `@gmem/gmem/vhost-user`, the address-space picture
 * `@gmem/gmem/tools`. docs/architecture.md shows the layers; docs/errors.md lists every error kind.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, InvalidGuestAddressError } from "./mod.ts";
 * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000], [0x20000, 0x1000]]);
 * ram.writeU32(0x2000, 0xcafe);
 * console.log(ram.readU32(0x2000).toString(16)); // "cafe"
 * try {
 *   ram.readU8(0x18000);
 * } catch (e) {
 *   console.log(e instanceof InvalidGuestAddressError); // true: a hole between the regions
 * }
 * ```
 * @module
 */

export { type AddressLike, U64_LIMIT, U64_MAX } from "./src/core/address.ts";
export {
  BufferEscapedError,
  GuestAddressOverflowError,
  GuestIOError,
  GuestMemoryError,
  type GuestMemoryErrorKind,
  HostAddressNotAvailableError,
  InvalidArgumentError,
  InvalidBackendAddressError,
  InvalidGuestAddressError,
  MappingPastEofError,
  MisalignedError,
  NativeLibraryError,
  NoAccessError,
  OutOfBoundsError,
  PartialBufferError,
  ReadOnlyError,
  RegionClosedError,
  SyscallError,
  ViewSeamError,
} from "./src/core/errors.ts";
export type { RawPointer, RawPointerView, RuntimeFile } from "./src/ffi/binding.ts";
export {
  type HostDiagnostics,
  hostDiagnostics,
  type HostProtection,
  hostProtection,
  residentBytes,
} from "./src/mmap/host_diagnostics.ts";
export {
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
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
  protToString,
} from "./src/core/constants.ts";
export { FileOffset, type FileSource } from "./src/mmap/file_offset.ts";
export { ReceivedFd, type ReceivedFdStat } from "./src/mmap/received_fd.ts";
export { type FileIdentity, MmapRegion } from "./src/mmap/mmap_region.ts";
export { type FileSpace, type HugePageSize, type MapOptions, MmapRegionBuilder } from "./src/mmap/mmap_region.ts";
export { InvalidPointerError, MapFixedError } from "./src/mmap/mmap_errors.ts";
export { Bytes } from "./src/core/bytes.ts";
export type { DirtyLog } from "./src/core/dirty_log.ts";
export type { RegionViews } from "./src/core/region_views.ts";
export type { PartOwner, RegionPart } from "./src/mmap/region_part.ts";
export type { IoSlice } from "./src/core/io_slice.ts";
export type { SliceGuard } from "./src/core/slice_guard.ts";
export type { Mapping } from "./src/core/mapping.ts";
export type {
  GuestMemoryBackend,
  GuestMemoryRegion,
  GuestSlice,
  SlicesResult,
} from "./src/core/guest_memory_backend.ts";
export type { ElementViews, ViewLocator, ViewWindow } from "./src/core/view_window.ts";
export { GuestMemoryMmap, type SharedGuestMemory, type SharedGuestRegion } from "./src/mmap/guest_memory_mmap.ts";
export { GuestRegionMmap, type GuestRegionOptions, type GuestRegionPart } from "./src/mmap/guest_region_mmap.ts";
export { VolatileSlice } from "./src/core/volatile_slice.ts";
export {
  type GuestRange,
  InvalidGuestRegionError,
  MemoryRegionOverlapError,
  NoMemoryRegionError,
  UnsortedMemoryRegionsError,
} from "./src/core/region_errors.ts";
export {
  describeRegion,
  type GuestMemoryJson,
  type InspectedRegion,
  type RegionInfo,
  type RegionJson,
} from "./src/mmap/inspect_memory.ts";
export type { VolatileSliceJson } from "./src/core/inspect_slice.ts";
export type { VolatileIo } from "./src/core/volatile_io.ts";
export type { AsyncReader, AsyncWriter } from "./src/core/volatile_io_async.ts";
export type { AbortOptions } from "./src/core/abort_signal.ts";
export { MAX_CHUNK_SIZE, type VolatileStreamOptions } from "./src/core/volatile_streams.ts";
export {
  type ArrayType,
  type BytesType,
  defineLayout,
  type FieldSpec,
  type FieldType,
  type LayoutOptions,
  MAX_LAYOUT_SIZE,
  type ScalarType,
  type StructInput,
  StructLayout,
  type StructValue,
  type ValueOf,
} from "./src/core/struct_layout.ts";
export {
  AtomicBitmap,
  type AtomicBitmapJson,
  type AtomicBitmapOptions,
  type Bitmap,
  BitmapSlice,
  type SharedBitmap,
} from "./src/bitmap/atomic_bitmap.ts";
export { type Permission, Permissions } from "./src/core/permissions.ts";
export type { GuestMemory, PhysicalMemory } from "./src/core/guest_memory.ts";
