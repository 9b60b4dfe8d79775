/**
 * What a virtqueue refuses: {@link VirtqueueError} and the faults it names.
 * @module
 */

import { GuestMemoryError } from "../core/errors.ts";

/**
 * What a guest did wrong with a virtqueue (kind `Virtqueue`, field `fault`):
 * - `QueueSize`, `Misaligned`, `NotReady`: the queue's size or ring addresses are impossible, or the
 *   queue is used before it is set up;
 * - `AvailIndex`: the available index ran more than the queue size ahead of the device;
 * - `HeadIndex`, `NextIndex`: a descriptor index past the descriptor table (or the indirect table);
 * - `DescriptorLoop`: a chain came back to a descriptor it already used;
 * - `ChainTooLong`: a chain (indirect tables included) longer than the queue size;
 * - `IndirectTable`, `NestedIndirect`, `IndirectNotNegotiated`: an indirect table of a bad length,
 *   one inside another, one that also has NEXT, or one the driver was not allowed to use;
 * - `ReadableAfterWritable`: a device-readable descriptor after a device-writable one;
 * - `LengthOverflow`: a buffer that runs past 2^64, or parts longer than 2^32 - 1 bytes;
 * - `Memory`: an address outside guest memory;
 * - `Translation`: an I/O virtual address the IOMMU does not translate (retryable while a miss can
 *   still be asked for; refused once it was);
 * - `Permission`: the IOMMU maps the address without the access the descriptor needs;
 * - `HeadInFlight`: the driver made a chain available again before the device used it;
 * - `UnknownHead`: the device completed a chain it does not hold (a device bug, not the guest's);
 * - `Device`: the device failed on a request in a way it could not report to the guest;
 * - `Broken`: the queue refused an earlier request and is out of service until it is reset.
 *
 * @example
 * ```ts
 * import type { VirtqueueFault } from "../../vhost_user.ts";
 * const guestBug = (f: VirtqueueFault) => f !== "UnknownHead" && f !== "Device";
 * ```
 */
export type VirtqueueFault =
  | "QueueSize"
  | "Misaligned"
  | "NotReady"
  | "AvailIndex"
  | "HeadIndex"
  | "NextIndex"
  | "DescriptorLoop"
  | "ChainTooLong"
  | "IndirectTable"
  | "NestedIndirect"
  | "IndirectNotNegotiated"
  | "ReadableAfterWritable"
  | "LengthOverflow"
  | "Memory"
  | "Translation"
  | "Permission"
  | "HeadInFlight"
  | "UnknownHead"
  | "Device"
  | "Broken";

/**
 * Where in guest memory a virtqueue fault happened, when it is about an address.
 *
 * @example
 * ```ts
 * import type { VirtqueueFaultAddress } from "../../vhost_user.ts";
 * const where: VirtqueueFaultAddress = { addr: 0x1000n, length: 16, access: 1 };
 * ```
 */
export interface VirtqueueFaultAddress {
  /** The address (an I/O virtual address behind an IOMMU). */
  addr: bigint;
  /** The bytes accessed there. */
  length: number;
  /** The access asked for (1 read, 2 write). */
  access: number;
}

/**
 * A virtqueue refused what the guest put in it (kind `Virtqueue`). Unless {@link VirtqueueError.retryable},
 * the queue is marked broken: nothing more is taken from it until it is reset, and nothing the guest
 * wrote was followed.
 *
 * @example
 * ```ts
 * import { VirtqueueError } from "../../vhost_user.ts";
 * const e = new VirtqueueError("SplitQueue.pop", 0, "DescriptorLoop", "descriptor 3 is used twice in one chain");
 * console.log(e.message); // "SplitQueue.pop: queue 0: descriptor 3 is used twice in one chain"
 * ```
 */
export class VirtqueueError extends GuestMemoryError {
  /** The queue's index in its device. */
  readonly queue: number;
  /** What was wrong. */
  readonly fault: VirtqueueFault;
  /** The address involved, for `Memory`, `Translation`, `Permission` and `LengthOverflow`. */
  readonly where: VirtqueueFaultAddress | undefined;
  /** Whether asking the IOMMU's front-end for a translation and trying again may succeed. */
  readonly retryable: boolean;

  /** Builds the error. */
  constructor(
    op: string,
    queue: number,
    fault: VirtqueueFault,
    reason: string,
    where?: VirtqueueFaultAddress,
    options?: ErrorOptions & { retryable?: boolean },
  ) {
    super("Virtqueue", op, `queue ${queue}: ${reason}`, options);
    this.queue = queue;
    this.fault = fault;
    this.where = where;
    this.retryable = options?.retryable ?? false;
  }
}
