/**
 * The split virtqueue as the device sees it (virtio 1.2, 2.7), over any guest memory: plain guest
 * physical memory, or an `IommuMemory` whose addresses are I/O virtual addresses.
 *
 * Everything the guest wrote is distrusted. A chain is read once and checked as it is read: indices
 * inside their tables, no descriptor twice (loops), at most queue-size buffers, indirect tables of
 * a sane length and never nested, readable buffers before writable ones, lengths that do not wrap,
 * and (by default) every buffer reachable in memory with the access its direction needs. A chain
 * that fails is refused with a {@link VirtqueueError} and the queue is marked broken: nothing more
 * is taken from it until it is reset. The one exception is a translation the IOMMU does not have
 * yet: that error is `retryable`, nothing was consumed, and `pop` may be called again once the
 * front-end answered the miss (see `retryTranslations`).
 *
 * Memory per queue is fixed when it is made and bounded by the queue size: two visit stamps per
 * descriptor and `maxInFlight` chains of at most queue-size buffers. Popping, completing and the
 * notification checks allocate nothing.
 * @module
 */

import { type AddressLike, type GuestMemory, InvalidArgumentError, type Permission, Permissions } from "../../mod.ts";
import { hex } from "../core/format.ts";
import { VirtqueueError, type VirtqueueFault, type VirtqueueFaultAddress } from "./virtqueue_errors.ts";
import {
  AVAIL_F_NO_INTERRUPT,
  DESCRIPTOR_SIZE,
  DescriptorFlag,
  MAX_QUEUE_SIZE,
  USED_F_NO_NOTIFY,
} from "./constants.ts";
import { type ChainOwner, DescriptorChain } from "./descriptor_chain.ts";
import { accessFault } from "./queue_fault.ts";

const TWO_53 = 2 ** 53;
const U64_END = 1n << 64n;
const TWO_32 = 2 ** 32;
const READ = Permissions.Read;
const WRITE = Permissions.Write;

/** How a queue is laid out and what the driver negotiated. */
export interface SplitQueueConfig {
  /** Entries: a power of two from 1 to 32768. */
  size: number;
  /** The descriptor table (16-byte aligned). */
  desc: AddressLike;
  /** The available ring (2-byte aligned). */
  avail: AddressLike;
  /** The used ring (4-byte aligned). */
  used: AddressLike;
  /** `VIRTIO_RING_F_EVENT_IDX` negotiated (default false). */
  eventIdx?: boolean;
  /** `VIRTIO_RING_F_INDIRECT_DESC` negotiated (default false). */
  indirect?: boolean;
  /** The queue's index in its device, for errors (default 0). */
  index?: number;
  /** Where the device resumes in the available ring (vhost-user's `SET_VRING_BASE`; default 0). */
  nextAvail?: number;
  /** Where the device resumes in the used ring (default: `nextAvail`). */
  nextUsed?: number;
  /** Chains that may be out at once (default 4, at most `size`). */
  maxInFlight?: number;
  /**
   * Check every buffer against memory (and the IOMMU's permission) when its chain is popped
   * (default true). Without it, a bad buffer is found when the device touches it.
   */
  checkBuffers?: boolean;
}

/** Ring addresses as numbers while the whole ring lies below 2^53, else as bigints. */
type Addr = number | bigint;

function addrOf(value: AddressLike, extent: number, op: string, name: string): Addr {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new InvalidArgumentError(op, name, value, "must be a non-negative integer below 2^53 or a bigint");
    }
    return value + extent <= TWO_53 ? value : BigInt(value);
  }
  if (typeof value !== "bigint" || value < 0n || value >= U64_END) {
    throw new InvalidArgumentError(op, name, value, "must be a 64-bit guest address");
  }
  return value + BigInt(extent) <= BigInt(TWO_53) ? Number(value) : value;
}

function at(base: Addr, off: number): AddressLike {
  return typeof base === "number" ? base + off : base + BigInt(off);
}

/**
 * The device side of one split virtqueue.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * import { SplitQueue } from "./split_queue.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
 * const q = new SplitQueue(mem, { size: 8, desc: 0x1000, avail: 0x2000, used: 0x3000 });
 * console.log(q.pop()); // null: the driver made nothing available
 * ```
 */
export class SplitQueue implements ChainOwner {
  /** The queue's index in its device. */
  readonly index: number;
  #mem: GuestMemory;
  readonly #size: number;
  readonly #desc: Addr;
  readonly #avail: Addr;
  readonly #used: Addr;
  readonly #availIdx: AddressLike;
  readonly #usedIdx: AddressLike;
  readonly #usedEvent: AddressLike;
  readonly #availEvent: AddressLike;
  readonly #eventIdx: boolean;
  readonly #indirect: boolean;
  readonly #checkBuffers: boolean;
  #nextAvail: number;
  #nextUsed: number;
  #signalled = 0;
  #signalledValid = false;
  #broken: VirtqueueError | undefined = undefined;
  /** Per head: 1 while its chain is out. */
  readonly #inFlight: Uint8Array;
  /** Visit stamps of the descriptor table and of the current indirect table (loop detection). */
  readonly #visited: Uint32Array;
  readonly #visitedIndirect: Uint32Array;
  #stamp = 0;
  readonly #chains: DescriptorChain[];
  #out = 0;

  /**
   * A queue over `mem`. Throws `VirtqueueError` (`QueueSize`, `Misaligned`, `LengthOverflow`) for a
   * layout the guest could not have meant, `InvalidArgumentError` for a bad argument.
   *
   * @example
   * ```ts
   * import { GuestMemoryMmap } from "../../mod.ts";
   * import { SplitQueue } from "./split_queue.ts";
   * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
   * const q = new SplitQueue(mem, { size: 256, desc: 0x0, avail: 0x1000, used: 0x2000, eventIdx: true });
   * console.log(q.size); // 256
   * ```
   */
  constructor(mem: GuestMemory, config: SplitQueueConfig) {
    const op = "SplitQueue";
    if (config === null || typeof config !== "object") {
      throw new InvalidArgumentError(op, "config", config, "must be an object");
    }
    const index = config.index ?? 0;
    if (!Number.isSafeInteger(index) || index < 0) {
      throw new InvalidArgumentError(op, "index", index, "must be a non-negative integer");
    }
    this.index = index;
    const size = config.size;
    if (!Number.isInteger(size) || size < 1 || size > MAX_QUEUE_SIZE || (size & (size - 1)) !== 0) {
      throw new VirtqueueError(
        op,
        index,
        "QueueSize",
        `size ${size} is not a power of two from 1 to ${MAX_QUEUE_SIZE}`,
      );
    }
    const extra = config.eventIdx ? 2 : 0;
    this.#desc = addrOf(config.desc, size * DESCRIPTOR_SIZE, op, "desc");
    this.#avail = addrOf(config.avail, 4 + 2 * size + extra, op, "avail");
    this.#used = addrOf(config.used, 4 + 8 * size + extra, op, "used");
    for (
      const [name, base, align, extent] of [
        ["descriptor table", this.#desc, 16, size * DESCRIPTOR_SIZE],
        ["available ring", this.#avail, 2, 4 + 2 * size + extra],
        ["used ring", this.#used, 4, 4 + 8 * size + extra],
      ] as const
    ) {
      const b = BigInt(base);
      if (b % BigInt(align) !== 0n) {
        throw new VirtqueueError(op, index, "Misaligned", `the ${name} at ${hex(b)} is not ${align}-byte aligned`, {
          addr: b,
          length: extent,
          access: READ,
        });
      }
      if (b + BigInt(extent) > U64_END) {
        throw new VirtqueueError(op, index, "LengthOverflow", `the ${name} at ${hex(b)} runs past 2^64`, {
          addr: b,
          length: extent,
          access: READ,
        });
      }
    }
    const maxInFlight = config.maxInFlight ?? Math.min(4, size);
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > size) {
      throw new InvalidArgumentError(op, "maxInFlight", maxInFlight, `must be an integer from 1 to the size (${size})`);
    }
    for (const name of ["nextAvail", "nextUsed"] as const) {
      const v = config[name];
      if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xffff)) {
        throw new InvalidArgumentError(op, name, v, "must be a 16-bit index");
      }
    }
    this.#mem = mem;
    this.#size = size;
    this.#eventIdx = config.eventIdx === true;
    this.#indirect = config.indirect === true;
    this.#checkBuffers = config.checkBuffers ?? true;
    this.#nextAvail = config.nextAvail ?? 0;
    this.#nextUsed = config.nextUsed ?? this.#nextAvail;
    this.#availIdx = at(this.#avail, 2);
    this.#usedIdx = at(this.#used, 2);
    this.#usedEvent = at(this.#avail, 4 + 2 * size);
    this.#availEvent = at(this.#used, 4 + 8 * size);
    this.#inFlight = new Uint8Array(size);
    this.#visited = new Uint32Array(size);
    this.#visitedIndirect = new Uint32Array(size);
    this.#chains = Array.from({ length: maxInFlight }, () => new DescriptorChain(this, size));
  }

  /** The memory the queue's addresses are in. */
  get memory(): GuestMemory {
    return this.#mem;
  }

  /**
   * Replaces the memory (a new memory table from the front-end); chains out keep working only if
   * their addresses mean the same in it.
   */
  set memory(mem: GuestMemory) {
    this.#mem = mem;
  }

  /** Entries in the queue. @example `q.size` */
  get size(): number {
    return this.#size;
  }

  /** The next available-ring index the device will take (vhost-user's vring base). @example `q.nextAvail` */
  get nextAvail(): number {
    return this.#nextAvail;
  }

  /** The next used-ring index the device will fill. @example `q.nextUsed` */
  get nextUsed(): number {
    return this.#nextUsed;
  }

  /** Chains popped and not yet used or dropped. @example `q.inFlight` */
  get inFlight(): number {
    return this.#out;
  }

  /** Why the queue is broken, or `undefined` while it works. @example `q.broken?.fault` */
  get broken(): VirtqueueError | undefined {
    return this.#broken;
  }

  /**
   * Marks the queue broken by `e` (the first reason stays) and returns `e`. Devices call it when a
   * retryable error could not be resolved.
   *
   * @example
   * ```ts ignore
   * throw q.refuse(error);
   * ```
   */
  refuse(e: VirtqueueError): VirtqueueError {
    this.#broken ??= e;
    return e;
  }

  /**
   * Takes the next available chain, or `null` when the driver made none available (or all
   * `maxInFlight` chains are out). Throws `VirtqueueError`: retryable for a translation the IOMMU
   * lacks (nothing consumed), otherwise the queue is broken.
   *
   * @example
   * ```ts ignore
   * for (let c = q.pop(); c !== null; c = q.pop()) q.addUsed(c, 0);
   * ```
   */
  pop(): DescriptorChain | null {
    const op = "SplitQueue.pop";
    if (this.#broken !== undefined) throw this.#brokenError(op);
    if (this.#out === this.#chains.length) return null;
    const availIdx = this.#load16(this.#availIdx, op);
    const pending = (availIdx - this.#nextAvail) & 0xffff;
    if (pending === 0) return null;
    if (pending > this.#size) {
      throw this.#refuse(
        op,
        "AvailIndex",
        `the available index ${availIdx} is ${pending} entries past the device's ${this.#nextAvail}, more than the size ${this.#size}`,
      );
    }
    const head = this.#read16(at(this.#avail, 4 + 2 * (this.#nextAvail & (this.#size - 1))), op);
    if (head >= this.#size) {
      throw this.#refuse(
        op,
        "HeadIndex",
        `available entry ${this.#nextAvail} names descriptor ${head}, past the table of ${this.#size}`,
      );
    }
    if (this.#inFlight[head] !== 0) {
      throw this.#refuse(op, "HeadInFlight", `descriptor ${head} was made available again before the device used it`);
    }
    let chain = this.#chains[0];
    for (const c of this.#chains) {
      if (!c.busy) {
        chain = c;
        break;
      }
    }
    this.#walk(chain, head, op);
    chain.busy = true;
    this.#inFlight[head] = 1;
    this.#out++;
    this.#nextAvail = (this.#nextAvail + 1) & 0xffff;
    return chain;
  }

  /**
   * Puts `chain` in the used ring with `written` bytes written to its writable part, and makes it
   * visible to the driver (the index is stored after the element, with a full barrier). Throws
   * retryable `VirtqueueError` for a translation the IOMMU lacks (nothing changed: call again),
   * `InvalidArgumentError` for a chain that is not out or a length past its writable part.
   *
   * @example
   * ```ts ignore
   * q.addUsed(chain, chain.writableLength);
   * if (q.needsNotification()) signal();
   * ```
   */
  addUsed(chain: DescriptorChain, written: number): void {
    const op = "SplitQueue.addUsed";
    this.#own(chain, op);
    if (!Number.isInteger(written) || written < 0 || written > chain.writableLength) {
      throw new InvalidArgumentError(
        op,
        "written",
        written,
        `must be 0 to the chain's ${chain.writableLength} writable bytes`,
      );
    }
    if (this.#broken !== undefined) throw this.#brokenError(op);
    const e = at(this.#used, 4 + 8 * (this.#nextUsed & (this.#size - 1)));
    this.#write32(e, chain.head, op);
    this.#write32(at(e, 4), written, op);
    const next = (this.#nextUsed + 1) & 0xffff;
    this.#store16(this.#usedIdx, next, op);
    this.#nextUsed = next;
    this.#release(chain);
  }

  /**
   * Gives a chain back without using it (the device will not complete it, e.g. the queue is being
   * stopped). The driver never sees it used.
   *
   * @example
   * ```ts ignore
   * q.drop(chain);
   * ```
   */
  drop(chain: DescriptorChain): void {
    this.#own(chain, "SplitQueue.drop");
    this.#release(chain);
  }

  /**
   * Whether the driver wants an interrupt for what was used since the last call: with EVENT_IDX,
   * when the used index passed the driver's `used_event`; otherwise unless the driver set
   * NO_INTERRUPT. Errors as {@link SplitQueue.pop}.
   *
   * @example
   * ```ts ignore
   * if (q.needsNotification()) native().eventfdWrite(callFd, 1n);
   * ```
   */
  needsNotification(): boolean {
    const op = "SplitQueue.needsNotification";
    if (this.#eventIdx) {
      // A plain read: the used index was stored with a full barrier just before (addUsed), which
      // is the store-load fence this check needs against the driver's used_event update.
      const event = this.#read16(this.#usedEvent, op);
      const next = this.#nextUsed, old = this.#signalled, valid = this.#signalledValid;
      this.#signalled = next;
      this.#signalledValid = true;
      if (!valid) return true;
      return ((next - event - 1) & 0xffff) < ((next - old) & 0xffff);
    }
    return (this.#load16(this.#avail, op) & AVAIL_F_NO_INTERRUPT) === 0;
  }

  /**
   * Asks the driver to kick again for new chains (EVENT_IDX: `avail_event` at the next index;
   * otherwise clears NO_NOTIFY), then looks once more: returns true if chains arrived meanwhile,
   * so the device must go on popping instead of waiting.
   *
   * @example
   * ```ts ignore
   * do { while ((c = q.pop())) handle(c); } while (q.enableNotification());
   * ```
   */
  enableNotification(): boolean {
    const op = "SplitQueue.enableNotification";
    if (this.#eventIdx) this.#store16(this.#availEvent, this.#nextAvail, op);
    else this.#store16(this.#used, 0, op);
    return this.#load16(this.#availIdx, op) !== this.#nextAvail;
  }

  /**
   * Asks the driver not to kick while the device is busy (without EVENT_IDX; with it, the
   * `avail_event` left behind already says so).
   *
   * @example
   * ```ts ignore
   * q.disableNotification();
   * ```
   */
  disableNotification(): void {
    if (!this.#eventIdx) this.#store16(this.#used, USED_F_NO_NOTIFY, "SplitQueue.disableNotification");
  }

  // ---- the walk ----

  /** Reads the chain of `head` into `chain`, checking everything (see the module comment). */
  #walk(chain: DescriptorChain, head: number, op: string): void {
    const size = this.#size;
    if (++this.#stamp === 0xffffffff) {
      this.#visited.fill(0);
      this.#visitedIndirect.fill(0);
      this.#stamp = 1;
    }
    const stamp = this.#stamp;
    chain.reset(head);
    let table: Addr = this.#desc, tableSize = size, visited = this.#visited, indirect = false;
    let i = head, count = 0, writable = false, readableLength = 0, writableLength = 0;
    for (;;) {
      if (visited[i] === stamp) {
        throw this.#refuse(
          op,
          "DescriptorLoop",
          `descriptor ${i}${indirect ? " of the indirect table" : ""} comes twice in the chain of ${head}`,
        );
      }
      visited[i] = stamp;
      // Five scalar reads: each is a few ns on the fast path, a 16-byte copy costs more (measured).
      const d = at(table, i * DESCRIPTOR_SIZE);
      const lo = this.#read32(d, op);
      const hi = this.#read32(at(d, 4), op);
      const len = this.#read32(at(d, 8), op);
      const flags = this.#read16(at(d, 12), op);
      const next = this.#read16(at(d, 14), op);
      const addr: Addr = hi < 0x200000 ? hi * TWO_32 + lo : (BigInt(hi) << 32n) | BigInt(lo);
      if ((flags & DescriptorFlag.Indirect) !== 0) {
        if (indirect) {
          throw this.#refuse(op, "NestedIndirect", `descriptor ${i} of an indirect table is an indirect table itself`);
        }
        if (!this.#indirect) {
          throw this.#refuse(
            op,
            "IndirectNotNegotiated",
            `descriptor ${i} is an indirect table, but INDIRECT_DESC was not negotiated`,
          );
        }
        if ((flags & DescriptorFlag.Next) !== 0) {
          throw this.#refuse(op, "IndirectTable", `descriptor ${i} is an indirect table and has NEXT too`);
        }
        if (len === 0 || len % DESCRIPTOR_SIZE !== 0 || len / DESCRIPTOR_SIZE > size) {
          throw this.#refuse(
            op,
            "IndirectTable",
            `the indirect table of descriptor ${i} is ${len} bytes, not 1 to ${size} descriptors of 16 bytes`,
          );
        }
        this.#noWrap(addr, len, READ, op);
        table = typeof addr === "number" && addr + len <= TWO_53 ? addr : BigInt(addr);
        tableSize = len / DESCRIPTOR_SIZE;
        visited = this.#visitedIndirect;
        indirect = true;
        i = 0;
        continue;
      }
      if (++count > size) {
        throw this.#refuse(op, "ChainTooLong", `the chain of ${head} has more than ${size} buffers`);
      }
      const write = (flags & DescriptorFlag.Write) !== 0;
      if (write) {
        writable = true;
        writableLength += len;
      } else {
        if (writable) {
          throw this.#refuse(
            op,
            "ReadableAfterWritable",
            `buffer ${count - 1} of the chain of ${head} is readable but follows a writable one`,
          );
        }
        readableLength += len;
      }
      if (readableLength >= TWO_32 || writableLength >= TWO_32) {
        throw this.#refuse(
          op,
          "LengthOverflow",
          `the ${write ? "writable" : "readable"} part of the chain of ${head} is 2^32 bytes or longer`,
        );
      }
      this.#noWrap(addr, len, write ? WRITE : READ, op);
      chain.push(addr, len, write);
      if ((flags & DescriptorFlag.Next) === 0) break;
      if (next >= tableSize) {
        throw this.#refuse(
          op,
          "NextIndex",
          `descriptor ${i}${
            indirect ? " of the indirect table" : ""
          } goes on at ${next}, past the table of ${tableSize}`,
        );
      }
      i = next;
    }
    // Memory last: a chain that is wrong in itself is refused as such, whatever memory it names.
    if (this.#checkBuffers) {
      const mem = this.#mem;
      for (let k = 0; k < chain.count; k++) {
        const len = chain.lenAt(k);
        if (len === 0) continue;
        const addr = chain.addrAt(k), access = k < chain.readableCount ? READ : WRITE;
        if (!mem.checkRange(addr, len, access)) this.#whyNot(addr, len, access, op);
      }
    }
  }

  /** A buffer or table that runs past 2^64 (only a bigint address can). */
  #noWrap(addr: Addr, len: number, access: Permission, op: string): void {
    if (typeof addr === "bigint" && addr + BigInt(len) > U64_END) {
      throw this.#refuse(op, "LengthOverflow", `${len} bytes at ${hex(addr)} run past 2^64`, {
        addr,
        length: len,
        access,
      });
    }
  }

  /** Finds out why `checkRange` refused a buffer, and throws that (retryable for a translation). */
  #whyNot(addr: AddressLike, len: number, access: Permission, op: string): never {
    try {
      this.#mem.getSlices(addr, len, access);
    } catch (e) {
      const f = accessFault(e, op, this.index, addr, len, access);
      throw f.retryable ? f : this.refuse(f);
    }
    // The first fragment exists but the range has a hole later on.
    throw this.#refuse(op, "Memory", `${len} bytes at ${hex(BigInt(addr))} are not all guest memory`, {
      addr: BigInt(addr),
      length: len,
      access,
    });
  }

  // ---- memory accesses, their failures as VirtqueueError ----

  #load16(addr: AddressLike, op: string): number {
    try {
      return this.#mem.loadU16(addr);
    } catch (e) {
      throw this.#fault(e, op, addr, 2, READ);
    }
  }

  #read16(addr: AddressLike, op: string): number {
    try {
      return this.#mem.readU16(addr);
    } catch (e) {
      throw this.#fault(e, op, addr, 2, READ);
    }
  }

  #read32(addr: AddressLike, op: string): number {
    try {
      return this.#mem.readU32(addr);
    } catch (e) {
      throw this.#fault(e, op, addr, 4, READ);
    }
  }

  #write32(addr: AddressLike, value: number, op: string): void {
    try {
      this.#mem.writeU32(addr, value);
    } catch (e) {
      throw this.#fault(e, op, addr, 4, WRITE);
    }
  }

  #store16(addr: AddressLike, value: number, op: string): void {
    try {
      this.#mem.storeU16(addr, value);
    } catch (e) {
      throw this.#fault(e, op, addr, 2, WRITE);
    }
  }

  #fault(e: unknown, op: string, addr: AddressLike, len: number, access: Permission): VirtqueueError {
    const f = accessFault(e, op, this.index, addr, len, access);
    return f.retryable ? f : this.refuse(f);
  }

  #refuse(op: string, fault: VirtqueueFault, reason: string, where?: VirtqueueFaultAddress): VirtqueueError {
    return this.refuse(new VirtqueueError(op, this.index, fault, reason, where));
  }

  #brokenError(op: string): VirtqueueError {
    const b = this.#broken!;
    return new VirtqueueError(op, this.index, "Broken", `the queue is broken since: ${b.message}`, b.where, {
      cause: b,
    });
  }

  #own(chain: DescriptorChain, op: string): void {
    if (!this.#chains.includes(chain) || !chain.busy) {
      throw new VirtqueueError(op, this.index, "UnknownHead", "the chain is not one this queue has out");
    }
  }

  #release(chain: DescriptorChain): void {
    chain.busy = false;
    this.#inFlight[chain.head] = 0;
    this.#out--;
  }
}
