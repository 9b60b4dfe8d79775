/**
 * vhost-user-blk's device: requests on one queue served from a raw image file. Data moves with one
 * `preadv`/`pwritev` between the file and the request's fragments in guest memory; a request the
 * device cannot do gets an error status, never a broken queue.
 * @module
 */

import { GuestIOError } from "../../../mod.ts";
import {
  type DescriptorChain,
  featureMask,
  type IoFile,
  preadSlices,
  ProtocolFeature,
  pwriteSlices,
  syncData,
  type VhostUserDevice,
} from "../../../vhost_user.ts";
import {
  BLK_HEADER_SIZE,
  BLK_ID_BYTES,
  blkConfig,
  BlkFeature,
  BlkRequestType,
  BlkStatus,
  SECTOR,
} from "./blk_config.ts";

/** What the block device did. */
export interface BlkCounters {
  reads: number;
  writes: number;
  flushes: number;
  getIds: number;
  /** Requests of a type the device does not serve. */
  unsupported: number;
  /** Requests answered with an I/O error (out of range, malformed, a failed system call). */
  errors: number;
  /** Bytes read from the image into guest memory. */
  bytesRead: number;
  /** Bytes written from guest memory to the image. */
  bytesWritten: number;
}

/** Options of {@link BlkDevice}. */
export interface BlkDeviceOptions {
  /** The largest queue the device takes (default 256). */
  maxQueueSize?: number;
  /** Refuse writes and offer VIRTIO_BLK_F_RO (default false). */
  readOnly?: boolean;
  /** What GET_ID answers (at most 20 bytes; default "gmem-vhost-user-blk"). */
  serial?: string;
}

/**
 * The block device over an open image (the caller owns the descriptor).
 *
 * @example
 * ```ts ignore
 * const device = new BlkDevice({ fd, size }, { serial: "disk0" });
 * const server = VhostUserServer.listen("/tmp/blk.sock", device);
 * ```
 */
export class BlkDevice implements VhostUserDevice {
  readonly name = "vhost-user-blk";
  readonly features: bigint;
  readonly protocolFeatures: bigint = featureMask(ProtocolFeature.Config);
  readonly numQueues = 1;
  readonly maxQueueSize: number;
  readonly #image: IoFile;
  readonly #readOnly: boolean;
  readonly #id: Uint8Array;
  readonly #counters: BlkCounters = {
    reads: 0,
    writes: 0,
    flushes: 0,
    getIds: 0,
    unsupported: 0,
    errors: 0,
    bytesRead: 0,
    bytesWritten: 0,
  };

  constructor(image: IoFile, options: BlkDeviceOptions = {}) {
    this.#image = image;
    this.#readOnly = options.readOnly ?? false;
    this.maxQueueSize = options.maxQueueSize ?? 256;
    const id = new TextEncoder().encode(options.serial ?? "gmem-vhost-user-blk");
    this.#id = new Uint8Array(BLK_ID_BYTES);
    this.#id.set(id.subarray(0, BLK_ID_BYTES));
    this.features = featureMask(BlkFeature.SegMax) | featureMask(BlkFeature.BlkSize) | featureMask(BlkFeature.Flush) |
      (this.#readOnly ? featureMask(BlkFeature.Ro) : 0n);
  }

  /** A copy of the counters. @example `device.counters.reads` */
  get counters(): BlkCounters {
    return { ...this.#counters };
  }

  /** The image's size in sectors. @example `device.sectors` */
  get sectors(): number {
    return Math.floor(this.#image.size / SECTOR);
  }

  /** The config space. */
  config(): Uint8Array {
    return blkConfig(BigInt(this.sectors), this.maxQueueSize);
  }

  /** Serves one request; returns the bytes written to the chain (data read, id, status). */
  handle(_queue: number, chain: DescriptorChain): number {
    const c = this.#counters;
    const wlen = chain.writableLength;
    if (wlen < 1) {
      // No room for a status: nothing can be told to the driver. Complete it empty.
      c.errors++;
      return 0;
    }
    if (chain.readableLength < BLK_HEADER_SIZE) return this.#finish(chain, BlkStatus.IoErr, 0, "errors");
    const type = chain.readU32(0);
    const sectorLo = chain.readU32(8), sectorHi = chain.readU32(12);
    switch (type) {
      case BlkRequestType.In: {
        const len = wlen - 1;
        const offset = this.#offset(sectorLo, sectorHi, len);
        if (offset < 0) return this.#finish(chain, BlkStatus.IoErr, 0, "errors");
        let n: number;
        try {
          n = len === 0 ? 0 : preadSlices(this.#image.fd, chain.slices(true, 0, len), offset, "vhost-user-blk.read");
        } catch (e) {
          if (!(e instanceof GuestIOError)) throw e;
          return this.#finish(chain, BlkStatus.IoErr, 0, "errors");
        }
        if (n < len) return this.#finish(chain, BlkStatus.IoErr, n, "errors");
        return this.#finish(chain, BlkStatus.Ok, n, "reads", "bytesRead", n);
      }
      case BlkRequestType.Out: {
        const len = chain.readableLength - BLK_HEADER_SIZE;
        const offset = this.#offset(sectorLo, sectorHi, len);
        if (offset < 0 || this.#readOnly) return this.#finish(chain, BlkStatus.IoErr, 0, "errors");
        try {
          if (len > 0) {
            pwriteSlices(this.#image.fd, chain.slices(false, BLK_HEADER_SIZE, len), offset, "vhost-user-blk.write");
          }
        } catch (e) {
          if (!(e instanceof GuestIOError)) throw e;
          return this.#finish(chain, BlkStatus.IoErr, 0, "errors");
        }
        return this.#finish(chain, BlkStatus.Ok, 0, "writes", "bytesWritten", len);
      }
      case BlkRequestType.Flush: {
        const ok = this.#readOnly || syncData(this.#image.fd) === 0;
        return this.#finish(chain, ok ? BlkStatus.Ok : BlkStatus.IoErr, 0, ok ? "flushes" : "errors");
      }
      case BlkRequestType.GetId: {
        const n = Math.min(BLK_ID_BYTES, wlen - 1);
        chain.writeTo(0, n === BLK_ID_BYTES ? this.#id : this.#id.subarray(0, n));
        return this.#finish(chain, BlkStatus.Ok, n, "getIds");
      }
      default:
        return this.#finish(chain, BlkStatus.Unsupp, 0, "unsupported");
    }
  }

  /** The byte offset of a request of `len` bytes at the sector, or -1 if it is not inside the image. */
  #offset(lo: number, hi: number, len: number): number {
    if (len < 0 || hi >= 0x200000 / SECTOR) return -1;
    const offset = (hi * 2 ** 32 + lo) * SECTOR;
    return offset + len <= this.#image.size ? offset : -1;
  }

  /**
   * Writes the status byte (the chain's last writable byte) and counts the request; returns the
   * bytes written. Counting last: a retry after a translation miss runs the request again.
   */
  #finish(
    chain: DescriptorChain,
    status: number,
    data: number,
    counter: keyof BlkCounters,
    bytes?: "bytesRead" | "bytesWritten",
    n = 0,
  ): number {
    chain.writeU8(chain.writableLength - 1, status);
    this.#counters[counter]++;
    if (bytes !== undefined) this.#counters[bytes] += n;
    return data + 1;
  }
}
