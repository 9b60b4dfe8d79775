/**
 * gmem's device back-end layer (`@gmem/gmem/vhost-user`), over the guest memory of `mod.ts` and the
 * IOMMU of `iommu.ts`: the split virtqueue as a device sees it (`src/virtio/`) and the back-end side
 * of the vhost-user protocol (`src/vhost_user/`), which serves a real QEMU guest behind its virtual
 * IOMMU. Guest memory and the IOMMU come from their own entry points.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "./mod.ts";
 * import { SplitQueue } from "./vhost_user.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
 * const queue = new SplitQueue(mem, { size: 16, desc: 0x1000, avail: 0x2000, used: 0x3000 });
 * console.log(queue.pop()); // null
 * ```
 * @module
 */

export { VhostUserError, type VhostUserFault } from "./src/vhost_user/vhost_user_errors.ts";
export { VirtqueueError, type VirtqueueFault, type VirtqueueFaultAddress } from "./src/virtio/virtqueue_errors.ts";
export {
  AVAIL_F_NO_INTERRUPT,
  DESCRIPTOR_SIZE,
  DescriptorFlag,
  featureMask,
  MAX_QUEUE_SIZE,
  USED_F_NO_NOTIFY,
  VirtioFeature,
} from "./src/virtio/constants.ts";
export { type ChainOwner, DescriptorChain } from "./src/virtio/descriptor_chain.ts";
export { SplitQueue, type SplitQueueConfig } from "./src/virtio/split_queue.ts";
export {
  VIRTQ_AVAIL_ELEM_LAYOUT,
  VIRTQ_AVAIL_HEADER_LAYOUT,
  VIRTQ_DESC_LAYOUT,
  VIRTQ_USED_ELEM_LAYOUT,
  VIRTQ_USED_HEADER_LAYOUT,
} from "./src/virtio/layouts.ts";
export {
  MAX_RESOLVE_ROUNDS,
  type MissResolver,
  type RetryOwner,
  retryTranslations,
} from "./src/virtio/translation_retry.ts";
export { BackendChannel } from "./src/vhost_user/backend_channel.ts";
export { VhostUserBackend, type VhostUserBackendOptions } from "./src/vhost_user/backend.ts";
export {
  type BackendEvent,
  emptyCounters,
  type MappedRegionInfo,
  type VhostUserCounters,
} from "./src/vhost_user/backend_events.ts";
export type { VhostUserDevice } from "./src/vhost_user/device.ts";
export { FdWatcher } from "./src/vhost_user/fd_watcher.ts";
export { type MappedRegion, MemoryTable, type MemoryTableOptions } from "./src/vhost_user/memory_table.ts";
export { MessageSocket, type MessageSocketEvents } from "./src/vhost_user/message_socket.ts";
export {
  BackendRequest,
  type ConfigAccess,
  configPayload,
  encodeMessage,
  FLAG_NEED_REPLY,
  FLAG_REPLY,
  FrontendRequest,
  HEADER_SIZE,
  MAX_FDS,
  MAX_MEMORY_REGIONS,
  MAX_PAYLOAD,
  type MemoryRegionDescription,
  memoryTablePayload,
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  readConfig,
  readMemoryTable,
  readState,
  readU64,
  readVringAddress,
  requestName,
  statePayload,
  u64Payload,
  VERSION,
  VHOST_USER_HEADER_LAYOUT,
  type VhostUserMessage,
  VRING_NOFD,
  type VringAddress,
  vringAddressPayload,
} from "./src/vhost_user/protocol.ts";
export { QueueRunner, type QueueRunnerHooks } from "./src/vhost_user/queue_runner.ts";
export { Session, type SessionContext } from "./src/vhost_user/session.ts";
export { VhostUserServer, type VhostUserServerOptions } from "./src/vhost_user/server.ts";
export {
  closeIoFile,
  type IoFile,
  openIoFile,
  preadSlices,
  pwriteSlices,
  readSlices,
  syncData,
} from "./src/vhost_user/fragment_io.ts";
