/**
 * What a device plugs into the vhost-user back-end: its features, queues, config space, and the
 * handling of one descriptor chain.
 * @module
 */

import type { DescriptorChain } from "../virtio/descriptor_chain.ts";

/**
 * A virtio device served over vhost-user.
 *
 * `handle` runs synchronously on the event loop for one chain and returns the bytes it wrote into
 * the chain's writable part. It may be called more than once for the same chain: when a buffer
 * needs a translation the IOTLB lacks, the chain's accessors throw a retryable `VirtqueueError`,
 * the back-end asks the front-end for the translation and calls `handle` again. So it must give the
 * same result when repeated (re-reading a request and re-writing the same bytes is fine). Errors of
 * its own (a failed file write) it reports to the guest in the request's status; anything it
 * throws other than a retryable `VirtqueueError` breaks the queue.
 *
 * @example
 * ```ts ignore
 * const zeroes: VhostUserDevice = {
 *   name: "zeroes", deviceId: 4, features: 0n, numQueues: 1, maxQueueSize: 256,
 *   handle: (_q, chain) => chain.writeTo(0, new Uint8Array(chain.writableLength)),
 * };
 * ```
 */
export interface VhostUserDevice {
  /** A short name for logs, e.g. `"vhost-user-blk"`. */
  readonly name: string;
  /** Device-specific feature bits it offers (the back-end adds the transport ones it supports). */
  readonly features: bigint;
  /** Protocol feature bits it needs besides the back-end's own (e.g. CONFIG for a config space). */
  readonly protocolFeatures?: bigint;
  /** Queues the device has. */
  readonly numQueues: number;
  /** The largest queue size it accepts (a power of two, at most 32768). */
  readonly maxQueueSize: number;
  /** Its config space, for GET_CONFIG; without it GET_CONFIG is refused. */
  config?(): Uint8Array;
  /** The features the driver accepted (SET_FEATURES). */
  acked?(features: bigint): void;
  /** Handles one chain of queue `queue`; returns the bytes written to its writable part. */
  handle(queue: number, chain: DescriptorChain): number;
}
