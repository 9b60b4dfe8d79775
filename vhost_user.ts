/**
 * gmem's device back-end layer, over the guest memory and IOMMU of `mod.ts`: the split virtqueue as
 * a device sees it (`src/virtio/`) and the back-end side of the vhost-user protocol
 * (`src/vhost_user/`), which serves a real QEMU guest behind its virtual IOMMU.
 *
 * A separate entry point because this layer is built on `mod.ts` and imports it; it re-exports all
 * of `mod.ts` too, so a back-end needs only this import.
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

// The whole library too: this entry point is a superset of mod.ts, so one import serves a back-end.
export * from "./mod.ts";
export {
  VhostUserError,
  type VhostUserFault,
  VirtqueueError,
  type VirtqueueFault,
  type VirtqueueFaultAddress,
} from "./src/errors.ts";
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
  MAX_RESOLVE_ROUNDS,
  type MissResolver,
  type RetryOwner,
  retryTranslations,
} from "./src/virtio/translation_retry.ts";
