/**
 * A descriptor chain as the device received it: the buffers' addresses and lengths, read once from
 * guest memory when the chain was popped (so the guest cannot change them afterwards), the
 * device-readable ones first. Data moves through the chain's memory with the access each part
 * allows: reads from the readable part, writes to the writable part, nothing else.
 * @module
 */

import {
  type AddressLike,
  type GuestMemory,
  InvalidArgumentError,
  type Permission,
  Permissions,
  type VolatileSlice,
} from "../../mod.ts";
import type { VirtqueueError } from "./virtqueue_errors.ts";
import { accessFault } from "./queue_fault.ts";

/** What a chain needs of its queue. */
export interface ChainOwner {
  /** The memory the chain's addresses are in. */
  readonly memory: GuestMemory;
  /** The queue's index, for errors. */
  readonly index: number;
  /** Marks the queue broken for a non-retryable error and returns the error. */
  refuse(e: VirtqueueError): VirtqueueError;
}

/**
 * One popped chain. Its storage belongs to the queue and is reused once the chain is completed
 * (`SplitQueue.addUsed`) or dropped: keep nothing of it past that.
 *
 * @example
 * ```ts ignore
 * const chain = queue.pop();
 * if (chain) {
 *   const header = new Uint8Array(16);
 *   chain.readFrom(0, header);
 *   queue.addUsed(chain, 0);
 * }
 * ```
 */
export class DescriptorChain {
  readonly #owner: ChainOwner;
  /** Addresses below 2^53 as numbers; NaN where the address is in {@link DescriptorChain.#big}. */
  readonly #addrs: Float64Array;
  readonly #lens: Uint32Array;
  #big: Map<number, bigint> | undefined = undefined;
  #head = 0;
  #count = 0;
  #readable = 0;
  #readableLength = 0;
  #writableLength = 0;
  /** Whether the chain is out (popped and neither used nor dropped). Library-internal. */
  busy = false;

  /** Storage for chains of up to `capacity` descriptors. Library-internal: queues make chains. */
  constructor(owner: ChainOwner, capacity: number) {
    this.#owner = owner;
    this.#addrs = new Float64Array(capacity);
    this.#lens = new Uint32Array(capacity);
  }

  /** Index of the chain's first descriptor (the id the used ring reports). @example `chain.head` */
  get head(): number {
    return this.#head;
  }

  /** Number of buffers (descriptors that are not indirect tables). @example `chain.count` */
  get count(): number {
    return this.#count;
  }

  /** Number of device-readable buffers; they come first. @example `chain.readableCount` */
  get readableCount(): number {
    return this.#readable;
  }

  /** Total bytes of the device-readable buffers. @example `chain.readableLength` */
  get readableLength(): number {
    return this.#readableLength;
  }

  /** Total bytes of the device-writable buffers. @example `chain.writableLength` */
  get writableLength(): number {
    return this.#writableLength;
  }

  /**
   * The address of buffer `i` (a number below 2^53, a bigint above).
   *
   * @example
   * ```ts ignore
   * for (let i = 0; i < chain.count; i++) console.log(chain.addrAt(i), chain.lenAt(i), chain.isWritable(i));
   * ```
   */
  addrAt(i: number): number | bigint {
    this.#index(i, "DescriptorChain.addrAt");
    const a = this.#addrs[i];
    return a === a ? a : this.#big!.get(i)!;
  }

  /** The length of buffer `i`. @example `chain.lenAt(0)` */
  lenAt(i: number): number {
    this.#index(i, "DescriptorChain.lenAt");
    return this.#lens[i];
  }

  /** Whether the device may write buffer `i`. @example `chain.isWritable(1)` */
  isWritable(i: number): boolean {
    this.#index(i, "DescriptorChain.isWritable");
    return i >= this.#readable;
  }

  /** The buffers as plain data, for logs and tests. @example `console.log(chain.toJSON())` */
  toJSON(): { head: number; buffers: { addr: string; len: number; writable: boolean }[] } {
    const buffers = [];
    for (let i = 0; i < this.#count; i++) {
      buffers.push({ addr: `0x${this.addrAt(i).toString(16)}`, len: this.#lens[i], writable: i >= this.#readable });
    }
    return { head: this.#head, buffers };
  }

  /**
   * Copies readable bytes from byte `offset` of the readable part into `dst`; returns how many
   * (fewer when the part ends first). Throws `VirtqueueError` (`Translation` retryable, `Memory`
   * breaking the queue) if the memory refuses.
   *
   * @example
   * ```ts ignore
   * const header = new Uint8Array(16);
   * if (chain.readFrom(0, header) < 16) throw new Error("short header");
   * ```
   */
  readFrom(offset: number, dst: Uint8Array): number {
    return this.#copy(offset, dst, false, "DescriptorChain.readFrom");
  }

  /**
   * Copies `src` into the writable part from byte `offset` on; returns how many bytes (fewer when
   * the part ends first). Errors as {@link DescriptorChain.readFrom}.
   *
   * @example
   * ```ts ignore
   * chain.writeTo(chain.writableLength - 1, new Uint8Array([0])); // a status byte at the end
   * ```
   */
  writeTo(offset: number, src: Uint8Array): number {
    return this.#copy(offset, src, true, "DescriptorChain.writeTo");
  }

  /**
   * Reads a little-endian u32 at byte `offset` of the readable part (a request header's field):
   * one scalar access when the four bytes lie in one buffer. Errors as
   * {@link DescriptorChain.readFrom}; `InvalidArgumentError` past the part.
   *
   * @example
   * ```ts ignore
   * const type = chain.readU32(0);
   * ```
   */
  readU32(offset: number): number {
    const op = "DescriptorChain.readU32";
    const addr = this.#scalar(offset, 4, false, op);
    if (addr === undefined) {
      this.#copy(offset, this.#scratch4, false, op);
      return this.#scratchView.getUint32(0, true);
    }
    try {
      return this.#owner.memory.readU32(addr);
    } catch (e) {
      throw this.#fault(e, op, addr, 4, Permissions.Read);
    }
  }

  /**
   * Writes a byte at `offset` of the writable part (a status byte): one scalar access. Errors as
   * {@link DescriptorChain.readFrom}; `InvalidArgumentError` past the part.
   *
   * @example
   * ```ts ignore
   * chain.writeU8(chain.writableLength - 1, 0);
   * ```
   */
  writeU8(offset: number, value: number): void {
    const op = "DescriptorChain.writeU8";
    const addr = this.#scalar(offset, 1, true, op)!;
    try {
      this.#owner.memory.writeU8(addr, value);
    } catch (e) {
      throw this.#fault(e, op, addr, 1, Permissions.Write);
    }
  }

  /**
   * The memory of `[offset, offset + length)` of the readable or writable part as slices, for I/O
   * (e.g. one `preadv` into all of them). Asks the memory with the part's access, so an IOMMU
   * checks Read or Write. Errors as {@link DescriptorChain.readFrom}; a range past the part is an
   * `InvalidArgumentError`.
   *
   * @example
   * ```ts ignore
   * const slices = chain.slices(true, 0, chain.writableLength - 1); // the data before a status byte
   * ```
   */
  slices(writable: boolean, offset: number, length: number): VolatileSlice[] {
    const op = "DescriptorChain.slices";
    const part = writable ? this.#writableLength : this.#readableLength;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new InvalidArgumentError(op, "range", `${offset}+${length}`, "must be non-negative integers");
    }
    if (offset + length > part) {
      throw new InvalidArgumentError(op, "range", `${offset}+${length}`, `runs past the ${part}-byte part`);
    }
    const mem = this.#owner.memory;
    const access: Permission = writable ? Permissions.Write : Permissions.Read;
    let i = writable ? this.#readable : 0;
    const end = writable ? this.#count : this.#readable;
    // The common case, a range inside one buffer: the memory's own list, no copy of it.
    let skip0 = offset, k = i;
    while (k < end && skip0 >= this.#lens[k]) skip0 -= this.#lens[k++];
    if (k < end && skip0 + length <= this.#lens[k] && length > 0) {
      const addr = this.#at(k, skip0);
      try {
        return mem.getSlices(addr, length, access);
      } catch (e) {
        throw this.#fault(e, op, addr, length, access);
      }
    }
    const out: VolatileSlice[] = [];
    let skip = offset, left = length;
    for (; i < end && left > 0; i++) {
      const len = this.#lens[i];
      if (skip >= len) {
        skip -= len;
        continue;
      }
      const n = Math.min(len - skip, left);
      const addr = this.#at(i, skip);
      try {
        for (const s of mem.getSlices(addr, n, access)) out.push(s);
      } catch (e) {
        throw this.#fault(e, op, addr, n, access);
      }
      skip = 0;
      left -= n;
    }
    return out;
  }

  // ---- queue side ----

  /** Starts filling the chain of `head`. Library-internal. */
  reset(head: number): void {
    this.#head = head;
    this.#count = 0;
    this.#readable = 0;
    this.#readableLength = 0;
    this.#writableLength = 0;
    this.#big?.clear();
  }

  /** Appends a buffer (the queue has checked it). Library-internal. */
  push(addr: number | bigint, len: number, writable: boolean): void {
    const i = this.#count++;
    if (typeof addr === "number") this.#addrs[i] = addr;
    else {
      this.#addrs[i] = NaN;
      (this.#big ??= new Map()).set(i, addr);
    }
    this.#lens[i] = len;
    if (writable) this.#writableLength += len;
    else {
      this.#readable++;
      this.#readableLength += len;
    }
  }

  // ---- internals ----

  readonly #scratch4 = new Uint8Array(4);
  readonly #scratchView = new DataView(this.#scratch4.buffer);

  /**
   * The address of `[offset, offset + size)` of a part when it lies in one buffer, `undefined` when
   * it spans two; throws `InvalidArgumentError` past the part.
   */
  #scalar(offset: number, size: number, writable: boolean, op: string): AddressLike | undefined {
    const part = writable ? this.#writableLength : this.#readableLength;
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + size > part) {
      throw new InvalidArgumentError(op, "offset", offset, `must leave ${size} bytes in the ${part}-byte part`);
    }
    let i = writable ? this.#readable : 0, skip = offset;
    for (; skip >= this.#lens[i]; i++) skip -= this.#lens[i];
    return skip + size <= this.#lens[i] ? this.#at(i, skip) : undefined;
  }

  #index(i: number, op: string): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.#count) {
      throw new InvalidArgumentError(op, "i", i, `must be a buffer index below ${this.#count}`);
    }
  }

  /** The address `skip` bytes into buffer `i`. */
  #at(i: number, skip: number): AddressLike {
    const a = this.#addrs[i];
    if (a === a && a + skip < 2 ** 53) return a + skip;
    return (a === a ? BigInt(a) : this.#big!.get(i)!) + BigInt(skip);
  }

  #fault(e: unknown, op: string, addr: AddressLike, n: number, access: Permission): VirtqueueError {
    const f = accessFault(e, op, this.#owner.index, addr, n, access);
    return f.retryable ? f : this.#owner.refuse(f);
  }

  #copy(offset: number, buf: Uint8Array, write: boolean, op: string): number {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new InvalidArgumentError(op, "offset", offset, "must be a non-negative integer");
    }
    const mem = this.#owner.memory;
    let i = write ? this.#readable : 0;
    const end = write ? this.#count : this.#readable;
    let skip = offset, done = 0;
    for (; i < end && done < buf.length; i++) {
      const len = this.#lens[i];
      if (skip >= len) {
        skip -= len;
        continue;
      }
      const n = Math.min(len - skip, buf.length - done);
      const addr = this.#at(i, skip);
      // A whole buffer needs no view of it: the common case (a header, a status byte) allocates nothing.
      const part = n === buf.length ? buf : buf.subarray(done, done + n);
      try {
        if (write) mem.writeSlice(part, addr);
        else mem.readSlice(part, addr);
      } catch (e) {
        throw this.#fault(e, op, addr, n, write ? Permissions.Write : Permissions.Read);
      }
      skip = 0;
      done += n;
    }
    return done;
  }
}
