/**
 * Numbers of virtio-blk (virtio 1.2, 5.2): request types, status values, feature bits and the
 * config-space layout the back-end serves.
 * @module
 */

/** Request types (`VIRTIO_BLK_T_*`). */
export const BlkRequestType = { In: 0, Out: 1, Flush: 4, GetId: 8 } as const;

/** Status bytes (`VIRTIO_BLK_S_*`). */
export const BlkStatus = { Ok: 0, IoErr: 1, Unsupp: 2 } as const;

/** Feature bit numbers (`VIRTIO_BLK_F_*`). */
export const BlkFeature = { SizeMax: 1, SegMax: 2, Geometry: 4, Ro: 5, BlkSize: 6, Flush: 9, Topology: 10 } as const;

/** Bytes of a request header: type u32, reserved u32, sector u64. */
export const BLK_HEADER_SIZE = 16;
/** The sector size of virtio-blk addresses, whatever the device's block size. */
export const SECTOR = 512;
/** Bytes of the id GET_ID answers. */
export const BLK_ID_BYTES = 20;
/** Bytes of the config space served (up to and including `num_queues` and the discard fields). */
export const BLK_CONFIG_SIZE = 60;

/**
 * The config space of a device of `sectors` 512-byte sectors with one queue of `queueSize`
 * entries: capacity, seg_max (two entries of a chain are the header and the status),
 * blk_size 512, num_queues 1; everything else 0.
 *
 * @example
 * ```ts
 * import { blkConfig } from "./blk_config.ts";
 * console.log(new DataView(blkConfig(16384n, 128).buffer).getBigUint64(0, true)); // 16384n
 * ```
 */
export function blkConfig(sectors: bigint, queueSize: number): Uint8Array {
  const out = new Uint8Array(BLK_CONFIG_SIZE);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, sectors, true); // capacity
  dv.setUint32(12, Math.max(1, queueSize - 2), true); // seg_max
  dv.setUint32(20, SECTOR, true); // blk_size
  dv.setUint8(32, 1); // writeback: flushes matter
  dv.setUint16(34, 1, true); // num_queues
  return out;
}
