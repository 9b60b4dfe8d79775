/**
 * What a vhost-user back-end counts and reports as it serves a front-end.
 * @module
 */

import type { GuestMemoryError, Permission } from "../../mod.ts";
import type { VhostUserError } from "./vhost_user_errors.ts";
import type { VirtqueueError } from "../virtio/virtqueue_errors.ts";

/** Counters of a back-end over all its connections. */
export interface VhostUserCounters {
  /** Connections served. */
  connections: number;
  /** Messages received from front-ends. */
  messages: number;
  /** Messages refused (answered with an error, or the connection closed). */
  rejected: number;
  /** Kicks received (eventfd reads that found a count). */
  kicks: number;
  /** Interrupts sent to the guest (call eventfd writes). */
  calls: number;
  /** Chains completed. */
  requests: number;
  /** Accesses refused: chains that broke their queue (a bad ring, or memory the IOMMU denies). */
  refused: number;
  /** IOTLB misses sent on the back-end channel. */
  iotlbMisses: number;
  /** IOTLB updates applied. */
  iotlbUpdates: number;
  /** IOTLB invalidations applied. */
  iotlbInvalidations: number;
  /** IOTLB messages refused. */
  iotlbRejected: number;
}

/** A fresh set of counters. @example `const c = emptyCounters();` */
export function emptyCounters(): VhostUserCounters {
  return {
    connections: 0,
    messages: 0,
    rejected: 0,
    kicks: 0,
    calls: 0,
    requests: 0,
    refused: 0,
    iotlbMisses: 0,
    iotlbUpdates: 0,
    iotlbInvalidations: 0,
    iotlbRejected: 0,
  };
}

/** One region of a memory table as it was mapped. */
export interface MappedRegionInfo {
  /** Guest physical address. */
  guestAddr: bigint;
  /** Bytes. */
  size: bigint;
  /** The front-end's own address of it. */
  userAddr: bigint;
  /** Where it starts in its file. */
  mmapOffset: bigint;
  /** Where it is mapped in this process. */
  hostAddr: bigint;
}

/** Something that happened, for a narrator or a log (see `VhostUserBackendOptions.onEvent`). */
export type BackendEvent =
  | { type: "connected" }
  | { type: "message"; request: number; name: string; flags: number; size: number; fds: number }
  | { type: "rejected"; request: number; name: string; error: GuestMemoryError }
  | { type: "features"; features: bigint }
  | { type: "protocol-features"; features: bigint }
  | { type: "memory-table"; regions: MappedRegionInfo[] }
  | { type: "vring-started"; index: number; size: number; desc: bigint; avail: bigint; used: bigint; iommu: boolean }
  | { type: "vring-stopped"; index: number; base: number }
  | { type: "vring-enabled"; index: number; enabled: boolean }
  | { type: "iotlb-update"; iova: bigint; size: bigint; uaddr: bigint; gpa: bigint; perm: Permission }
  | { type: "iotlb-invalidate"; iova: bigint; size: bigint }
  | { type: "iotlb-miss"; iova: bigint; perm: Permission }
  | {
    type: "request";
    queue: number;
    head: number;
    buffers: { addr: string; len: number; writable: boolean }[];
    written: number;
  }
  | { type: "refused"; queue: number; error: VirtqueueError }
  | { type: "disconnected"; error: VhostUserError | undefined };
