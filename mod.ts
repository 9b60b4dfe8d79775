/**
 * gmem: guest memory and IOMMU translation for Deno and Bun, on real host memory (rust-vmm
 * vm-memory's model).
 *
 * Start from {@link GuestMemoryMmap}: guest physical memory made of mmap-backed regions, with every
 * `Bytes` method (scalars, copies, atomics, volatile I/O). Put an {@link IommuMemory} in front of it
 * to have devices reach it through I/O virtual addresses translated by an {@link Iotlb}. The layer
 * underneath, {@link MmapRegion}, is one host mapping, for when you manage mappings yourself.
 * docs/architecture.md shows the layers; docs/errors.md lists every error kind and its class.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, IommuMemory, Iotlb, IotlbIommu, Permissions } from "./mod.ts";
 * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
 * ram.writeU32(0x2000, 0xcafe);
 * const iotlb = new Iotlb();
 * iotlb.setMapping(0x8000_0000, 0x2000, 0x1000, Permissions.ReadWrite);
 * const dma = new IommuMemory(ram, new IotlbIommu(iotlb));
 * console.log(dma.readU32(0x8000_0000).toString(16)); // "cafe"
 * ```
 * @module
 */

export { type AddressLike, U64_LIMIT, U64_MAX } from "./src/address.ts";
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
} from "./src/errors.ts";
export type { RawPointer, RawPointerView, RuntimeFile } from "./src/ffi/binding.ts";
export { hex } from "./src/format.ts";
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
} from "./src/mmap/constants.ts";
export { FileOffset, type FileSource } from "./src/mmap/file_offset.ts";
export { type FileIdentity, MmapRegion } from "./src/mmap/mmap_region.ts";
export {
  type FileSpace,
  type HugePageSize,
  type MapOptions,
  MmapRegionBuilder,
} from "./src/mmap/mmap_region_builder.ts";
export { InvalidPointerError, MapFixedError } from "./src/mmap/mmap_errors.ts";
export { ByteAccess } from "./src/memory/byte_access.ts";
export type { DirtyLog } from "./src/memory/dirty_log.ts";
export type { RegionViews } from "./src/memory/region_views.ts";
export type { RegionPart } from "./src/memory/region_part.ts";
export type { SliceGuard } from "./src/memory/slice_guard.ts";
export type { GuestMemoryBackend, GuestMemoryRegion, SlicesResult } from "./src/memory/guest_memory_backend.ts";
export { GuestMemoryMmap, type SharedGuestMemory, type SharedGuestRegion } from "./src/memory/guest_memory_mmap.ts";
export { GuestRegionMmap, type GuestRegionOptions } from "./src/memory/guest_region_mmap.ts";
export { VolatileSlice } from "./src/memory/volatile_slice.ts";
export {
  type GuestRange,
  InvalidGuestRegionError,
  MemoryRegionOverlapError,
  NoMemoryRegionError,
  UnsortedMemoryRegionsError,
} from "./src/memory/region_errors.ts";
export type { GuestMemoryJson, RegionJson, VolatileSliceJson } from "./src/memory/inspect_memory.ts";
export type { VolatileIo } from "./src/memory/volatile_io.ts";
export type { AsyncReader, AsyncWriter } from "./src/memory/volatile_io_async.ts";
export type { AbortOptions } from "./src/memory/abort_signal.ts";
export { MAX_CHUNK_SIZE, type VolatileStreamOptions } from "./src/memory/volatile_streams.ts";
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
} from "./src/memory/struct_layout.ts";
export {
  AtomicBitmap,
  type AtomicBitmapJson,
  type AtomicBitmapOptions,
  type Bitmap,
  BitmapSlice,
  type SharedBitmap,
} from "./src/bitmap/atomic_bitmap.ts";

// IOMMU
export {
  CannotResolveError,
  FragmentedError,
  IommuError,
  type IommuErrorVariant,
  IommuMisconfiguredError,
  type IovaRange,
  SliceRevokedError,
} from "./src/errors.ts";
export {
  allows,
  hasWrite,
  intersection,
  type Permission,
  permissionName,
  Permissions,
  toPermission,
  union,
} from "./src/iommu/permissions.ts";
export {
  Iotlb,
  type IotlbCounters,
  type IotlbEntry,
  type IotlbJson,
  type IotlbLookup,
  type IotlbOptions,
} from "./src/iommu/iotlb.ts";
export {
  type IotlbEvent,
  type IotlbEventKind,
  IotlbRecorder,
  type IotlbRecorderJson,
} from "./src/iommu/iotlb_recorder.ts";
export type { GuestMemory, PhysicalMemory } from "./src/iommu/guest_memory.ts";
export {
  type AsyncMissHandler,
  type Iommu,
  type IotlbFault,
  IotlbIommu,
  type IotlbIommuCounters,
  type IotlbIommuOptions,
  MAX_TIMEOUT_MS,
} from "./src/iommu/iommu.ts";
export {
  type DirtyLogAddressing,
  IommuMemory,
  type IommuMemoryOptions,
  type RevocationMode,
} from "./src/iommu/iommu_memory.ts";
export type { IommuMemoryJson } from "./src/iommu/inspect_iommu.ts";
export { type GuardLife, TranslationGuard, type TranslationGuardOptions } from "./src/iommu/translation_guard.ts";
export {
  type ExplainedFailure,
  type ExplainedFragment,
  type ExplainReason,
  explainRequest,
  type ExplainTarget,
  type Explanation,
} from "./src/iommu/explain.ts";
export {
  decodeVhostIotlbMsg,
  encodeVhostIotlbMsg,
  VHOST_IOTLB_MSG_SIZE,
  VHOST_USER_HEADER_SIZE,
  VhostIotlbChannel,
  type VhostIotlbChannelOptions,
  type VhostIotlbMsg,
  VhostIotlbType,
  vhostIotlbUpdate,
  type VhostStream,
  VhostUserRequest,
} from "./src/iommu/vhost_iotlb.ts";
