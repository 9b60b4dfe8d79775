/**
 * A vhost-user back-end: it serves one device to front-ends (QEMU) over Unix-socket connections,
 * one at a time, and counts what it did over all of them.
 * @module
 */

import { InvalidArgumentError } from "../../mod.ts";
import type { VhostUserError } from "./vhost_user_errors.ts";
import { featureMask, MAX_QUEUE_SIZE, VirtioFeature } from "../virtio/constants.ts";
import { type BackendEvent, emptyCounters, type VhostUserCounters } from "./backend_events.ts";
import type { VhostUserDevice } from "./device.ts";
import type { FdWatcher } from "./fd_watcher.ts";
import { PROTOCOL_FEATURES_BIT, ProtocolFeature } from "./protocol.ts";
import { Session } from "./session.ts";

/** Options of {@link VhostUserBackend}. */
export interface VhostUserBackendOptions {
  /** How long a queue waits for the front-end to answer one IOTLB miss, in ms (default 5000). */
  missTimeoutMs?: number;
  /**
   * Check every buffer of a chain against memory and the IOMMU when it is popped (default false:
   * every access is checked when the device makes it, and refused before a byte moves, as
   * rust-vmm's virtio-queue and libvhost-user do; the check at pop costs ~0.5 µs per buffer
   * through `IommuMemory.checkRange` today, see bench/vhost_user.ts).
   */
  checkBuffers?: boolean;
  /** Give each memory region a dirty bitmap of this page size (for inspection; default none). */
  dirtyPageSize?: number;
  /** Everything that happens, for a narrator or a log. Called synchronously: keep it short. */
  onEvent?: (event: BackendEvent) => void;
}

/** The transport features every device served here gets. */
const TRANSPORT_FEATURES = featureMask(VirtioFeature.Version1) | featureMask(VirtioFeature.IndirectDesc) |
  featureMask(VirtioFeature.EventIdx) | featureMask(VirtioFeature.AccessPlatform) | featureMask(PROTOCOL_FEATURES_BIT);

/** The protocol features every back-end here offers (QEMU 7.2 needs REPLY_ACK and BACKEND_REQ with an IOMMU). */
const PROTOCOL_FEATURES = featureMask(ProtocolFeature.Mq) | featureMask(ProtocolFeature.ReplyAck) |
  featureMask(ProtocolFeature.BackendReq);

/**
 * The back-end of one device. {@link VhostUserBackend.serve} runs one connection; `VhostUserServer`
 * accepts them on a socket path.
 *
 * @example
 * ```ts ignore
 * const backend = new VhostUserBackend(device, { onEvent: (e) => console.log(e.type) });
 * await backend.serve(connectedFd, watcher);
 * console.log(backend.counters.requests);
 * ```
 */
export class VhostUserBackend {
  /** The device served. */
  readonly device: VhostUserDevice;
  /** Feature bits offered: the device's and the transport's. */
  readonly features: bigint;
  /** Protocol feature bits offered. */
  readonly protocolFeatures: bigint;
  readonly #counters: VhostUserCounters = emptyCounters();
  readonly #options: Required<Omit<VhostUserBackendOptions, "onEvent" | "dirtyPageSize">> & VhostUserBackendOptions;
  #session: Session | undefined;

  /** A back-end for `device`. Throws `InvalidArgumentError` for a device it cannot serve. */
  constructor(device: VhostUserDevice, options: VhostUserBackendOptions = {}) {
    const op = "VhostUserBackend";
    if (device === null || typeof device !== "object" || typeof device.handle !== "function") {
      throw new InvalidArgumentError(op, "device", device, "must be a VhostUserDevice");
    }
    if (!Number.isInteger(device.numQueues) || device.numQueues < 1 || device.numQueues > 256) {
      throw new InvalidArgumentError(op, "device.numQueues", device.numQueues, "must be 1 to 256");
    }
    const max = device.maxQueueSize;
    if (!Number.isInteger(max) || max < 1 || max > MAX_QUEUE_SIZE || (max & (max - 1)) !== 0) {
      throw new InvalidArgumentError(op, "device.maxQueueSize", max, `must be a power of two up to ${MAX_QUEUE_SIZE}`);
    }
    const timeout = options.missTimeoutMs ?? 5000;
    if (!Number.isInteger(timeout) || timeout < 1 || timeout > 2 ** 31 - 1) {
      throw new InvalidArgumentError(op, "missTimeoutMs", timeout, "must be a whole number of ms from 1 to 2^31 - 1");
    }
    this.device = device;
    this.features = device.features | TRANSPORT_FEATURES;
    this.protocolFeatures = PROTOCOL_FEATURES | (device.protocolFeatures ?? 0n);
    this.#options = { ...options, missTimeoutMs: timeout, checkBuffers: options.checkBuffers ?? false };
  }

  /**
   * Counters over every connection served so far (a copy).
   *
   * @example
   * ```ts ignore
   * const { requests, iotlbMisses, refused } = backend.counters;
   * ```
   */
  get counters(): VhostUserCounters {
    return { ...this.#counters };
  }

  /** The connection being served, if any (its memory table, IOTLB and queues). @example `backend.session?.iotlb` */
  get session(): Session | undefined {
    return this.#session;
  }

  /**
   * Serves the connected socket `fd` (taking ownership of it) until the front-end closes it or
   * breaks the protocol; resolves with the reason it ended (`undefined` for a plain close), after
   * everything the connection built was released. One connection at a time.
   *
   * @example
   * ```ts ignore
   * const why = await backend.serve(fd, watcher);
   * ```
   */
  async serve(fd: number, watcher: FdWatcher): Promise<VhostUserError | undefined> {
    if (this.#session !== undefined) {
      throw new InvalidArgumentError(
        "VhostUserBackend.serve",
        "fd",
        fd,
        "cannot be served while another connection is",
      );
    }
    const o = this.#options;
    const session = new Session(fd, watcher, {
      device: this.device,
      features: this.features,
      protocolFeatures: this.protocolFeatures,
      counters: this.#counters,
      emit: o.onEvent,
      missTimeoutMs: o.missTimeoutMs,
      checkBuffers: o.checkBuffers,
      dirtyPageSize: o.dirtyPageSize,
    });
    this.#session = session;
    try {
      return await session.done;
    } finally {
      this.#session = undefined;
    }
  }

  /**
   * Ends the connection being served, if any; resolves once it is released.
   *
   * @example
   * ```ts ignore
   * await backend.disconnect();
   * ```
   */
  async disconnect(): Promise<void> {
    const s = this.#session;
    if (s === undefined) return;
    s.close();
    await s.done;
  }
}
