/**
 * gmem's IOMMU (`@gmem/gmem/iommu`): an {@link IommuMemory} in front of guest memory, so that a
 * device reaches it through I/O virtual addresses translated by an {@link Iotlb}, with misses asked
 * of an {@link Iommu} (vm-memory's `iommu` module), plus the vhost IOTLB messages a front-end
 * sends. Guest memory itself comes from the main entry point (`mod.ts`).
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, Permissions } from "./mod.ts";
 * import { IommuMemory, Iotlb, IotlbIommu } from "./iommu.ts";
 * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
 * ram.writeU32(0x2000, 0xcafe);
 * const iotlb = new Iotlb();
 * iotlb.setMapping(0x8000_0000, 0x2000, 0x1000, Permissions.ReadWrite);
 * const dma = new IommuMemory(ram, new IotlbIommu(iotlb));
 * console.log(dma.readU32(0x8000_0000).toString(16)); // "cafe"
 * ```
 * @module
 */

export {
  CannotResolveError,
  FragmentedError,
  IommuError,
  type IommuErrorKind,
  IommuMisconfiguredError,
  type IovaRange,
  SliceRevokedError,
} from "./src/iommu/iommu_errors.ts";
export {
  Iotlb,
  type IotlbCounters,
  type IotlbEntry,
  type IotlbJson,
  type IotlbLookup,
  type IotlbOptions,
} from "./src/iommu/iotlb.ts";
export { IotlbHit } from "./src/iommu/iotlb_hit.ts";
export {
  type IotlbEvent,
  type IotlbEventKind,
  type IotlbObserver,
  IotlbRecorder,
  type IotlbRecorderJson,
} from "./src/iommu/iotlb_recorder.ts";
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
