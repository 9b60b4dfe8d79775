/**
 * What the vhost-user back-end refuses: {@link VhostUserError} and the faults it names.
 * @module
 */

import { GuestMemoryError } from "../core/errors.ts";

/**
 * What was wrong with a vhost-user message (kind `VhostUser`, field `fault`): `Header` (version or
 * flags), `PayloadSize` (too long, or the wrong size for its request), `UnknownRequest`, `MissingFd`
 * and `UnexpectedFd` (descriptors that should or should not have come with it), `Features` (bits
 * that were not offered, or a request that needs a feature not negotiated), `MemoryTable` (regions
 * that overlap, wrap, or cannot be mapped), `QueueIndex`, `QueueState` (a queue set up impossibly),
 * `Config` (a config-space range past the device's), `Iotlb` (an IOTLB message refused), `Socket`
 * (the connection failed) and `Closed`.
 *
 * @example
 * ```ts
 * import type { VhostUserFault } from "../../vhost_user.ts";
 * const fatal = (f: VhostUserFault) => f === "Socket" || f === "Closed";
 * ```
 */
export type VhostUserFault =
  | "Header"
  | "PayloadSize"
  | "UnknownRequest"
  | "MissingFd"
  | "UnexpectedFd"
  | "Features"
  | "MemoryTable"
  | "QueueIndex"
  | "QueueState"
  | "Config"
  | "Iotlb"
  | "Socket"
  | "Closed";

/**
 * A vhost-user front-end sent something the back-end refused, or the connection failed (kind
 * `VhostUser`). The back-end answers such a request with an error reply where the protocol has
 * one, and otherwise closes the connection; nothing the message carried is kept.
 *
 * @example
 * ```ts
 * import { VhostUserError } from "../../vhost_user.ts";
 * const e = new VhostUserError("VhostUserBackend.SET_VRING_NUM", "QueueState", "queue size 3 is not a power of two", 8);
 * console.log(e.fault, e.request); // "QueueState" 8
 * ```
 */
export class VhostUserError extends GuestMemoryError {
  /** What was wrong. */
  readonly fault: VhostUserFault;
  /** The request code of the message, when there was one. */
  readonly request: number | undefined;

  /** Builds the error. */
  constructor(op: string, fault: VhostUserFault, reason: string, request?: number, options?: ErrorOptions) {
    super("VhostUser", op, reason, options);
    this.fault = fault;
    this.request = request;
  }
}
