/**
 * Numbers of the virtio specification (1.2) that the split virtqueue and the devices use: feature
 * bits, descriptor and ring flags, and the queue-size limit.
 * @module
 */

/**
 * Feature bit numbers (not masks) of the virtio transport that the device side acts on.
 *
 * @example
 * ```ts
 * import { VirtioFeature } from "./constants.ts";
 * const features = (1n << BigInt(VirtioFeature.Version1)) | (1n << BigInt(VirtioFeature.EventIdx));
 * ```
 */
export const VirtioFeature = {
  /** `VIRTIO_F_NOTIFY_ON_EMPTY` (legacy). */
  NotifyOnEmpty: 24,
  /** `VIRTIO_F_ANY_LAYOUT` (legacy). */
  AnyLayout: 27,
  /** `VIRTIO_RING_F_INDIRECT_DESC`: descriptors may point to tables of descriptors. */
  IndirectDesc: 28,
  /** `VIRTIO_RING_F_EVENT_IDX`: notifications are suppressed by ring indices, not flags. */
  EventIdx: 29,
  /** `VIRTIO_F_VERSION_1`: a modern (non-legacy) device. */
  Version1: 32,
  /** `VIRTIO_F_ACCESS_PLATFORM` (`IOMMU_PLATFORM`): buffer addresses go through the platform's IOMMU. */
  AccessPlatform: 33,
  /** `VIRTIO_F_RING_PACKED`: the packed ring layout (not supported here). */
  RingPacked: 34,
  /** `VIRTIO_F_RING_RESET`: single queues can be reset. */
  RingReset: 40,
} as const;

/**
 * The mask of a feature bit number.
 *
 * @example
 * ```ts
 * import { featureMask, VirtioFeature } from "./constants.ts";
 * console.log(featureMask(VirtioFeature.Version1)); // 4294967296n
 * ```
 */
export function featureMask(bit: number): bigint {
  return 1n << BigInt(bit);
}

/** Descriptor flags (`VIRTQ_DESC_F_*`). */
export const DescriptorFlag = {
  /** The chain goes on at `next`. */
  Next: 1,
  /** The device writes this buffer (otherwise it reads it). */
  Write: 2,
  /** The buffer is a table of descriptors. */
  Indirect: 4,
} as const;

/** `VIRTQ_USED_F_NO_NOTIFY`: the device asks not to be kicked (used ring flags). */
export const USED_F_NO_NOTIFY = 1;
/** `VIRTQ_AVAIL_F_NO_INTERRUPT`: the driver asks not to be interrupted (available ring flags). */
export const AVAIL_F_NO_INTERRUPT = 1;
/** The largest split queue (2^15 entries). */
export const MAX_QUEUE_SIZE = 32768;
/** Bytes of one descriptor: addr u64, len u32, flags u16, next u16. */
export const DESCRIPTOR_SIZE = 16;
