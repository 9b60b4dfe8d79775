/**
 * vhost-user-rng's device: the guest's requests on its one queue are filled with bytes from an
 * entropy source, read straight into the request's fragments. `/dev/urandom` by default; a regular
 * file is read in a loop from its start (so a test knows what the guest gets).
 * @module
 */

import { GuestIOError } from "../../../mod.ts";
import {
  type DescriptorChain,
  type IoFile,
  preadSlices,
  readSlices,
  type VhostUserDevice,
} from "../../../vhost_user.ts";

/** What the device did. */
export interface RngCounters {
  /** Requests filled. */
  requests: number;
  /** Bytes given to the guest. */
  bytes: number;
  /** Requests the source could not fill (completed empty). */
  errors: number;
}

/**
 * The entropy device over an open source (the caller owns the descriptor). A source of size 0 (a
 * character device) is read at its own position; a regular file at an offset that wraps.
 *
 * @example
 * ```ts ignore
 * const device = new RngDevice(openIoFile("/dev/urandom", false));
 * ```
 */
export class RngDevice implements VhostUserDevice {
  readonly name = "vhost-user-rng";
  readonly features = 0n;
  readonly numQueues = 1;
  readonly maxQueueSize: number;
  readonly #source: IoFile;
  #offset = 0;
  readonly #counters: RngCounters = { requests: 0, bytes: 0, errors: 0 };

  constructor(source: IoFile, options: { maxQueueSize?: number } = {}) {
    this.#source = source;
    this.maxQueueSize = options.maxQueueSize ?? 256;
  }

  /** A copy of the counters. @example `device.counters.bytes` */
  get counters(): RngCounters {
    return { ...this.#counters };
  }

  /** Fills the chain's writable part; returns how much was filled. */
  handle(_queue: number, chain: DescriptorChain): number {
    const len = chain.writableLength;
    if (len === 0) {
      this.#counters.requests++;
      return 0;
    }
    const slices = chain.slices(true, 0, len);
    let n: number;
    try {
      n = this.#source.size > 0 ? this.#fromFile(slices) : readSlices(this.#source.fd, slices, "vhost-user-rng.read");
    } catch (e) {
      if (!(e instanceof GuestIOError)) throw e;
      this.#counters.errors++;
      return 0;
    }
    this.#counters.requests++;
    this.#counters.bytes += n;
    return n;
  }

  /** Reads a regular file from the current offset, wrapping to its start at the end. */
  #fromFile(slices: ReturnType<DescriptorChain["slices"]>): number {
    const size = this.#source.size;
    const want = slices.reduce((n, s) => n + s.len, 0);
    const first = Math.min(want, size - this.#offset);
    let n = preadSlices(this.#source.fd, slices, this.#offset, "vhost-user-rng.read");
    // A request longer than the rest of the file: what preadv did not fill comes from the start.
    if (n === first && n < want) {
      let skip = n;
      const rest = [];
      for (const s of slices) {
        if (skip >= s.len) {
          skip -= s.len;
          continue;
        }
        rest.push(skip === 0 ? s : s.offset(skip));
        skip = 0;
      }
      n += preadSlices(this.#source.fd, rest, 0, "vhost-user-rng.read");
    }
    this.#offset = (this.#offset + n) % size;
    return n;
  }
}
