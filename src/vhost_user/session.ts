/**
 * One front-end connection of a vhost-user back-end: the messages of the protocol, the state they
 * build (features, memory table, queues, IOTLB, back-end channel) and its teardown. Every message
 * is checked before it changes anything; a refused one gets an error reply where the protocol has
 * one, and otherwise ends the connection. Descriptors a message brought and nothing kept are
 * closed; when the connection ends, everything it built is released.
 * @module
 */

import { GuestMemoryError, type Permission } from "../../mod.ts";
import {
  decodeVhostIotlbMsg,
  IommuMemory,
  Iotlb,
  IotlbIommu,
  VhostIotlbChannel,
  type VhostIotlbMsg,
  VhostIotlbType,
  type VhostStream,
} from "../../iommu.ts";
import { hex } from "../core/format.ts";
import { VhostUserError } from "./vhost_user_errors.ts";
import { VirtqueueError } from "../virtio/virtqueue_errors.ts";
import { native } from "../ffi/native.ts";
import { featureMask, VirtioFeature } from "../virtio/constants.ts";
import { SplitQueue } from "../virtio/split_queue.ts";
import type { MissResolver } from "../virtio/translation_retry.ts";
import { BackendChannel } from "./backend_channel.ts";
import type { BackendEvent, VhostUserCounters } from "./backend_events.ts";
import type { VhostUserDevice } from "./device.ts";
import type { FdWatcher } from "./fd_watcher.ts";
import { MemoryTable } from "./memory_table.ts";
import { MessageSocket } from "./message_socket.ts";
import {
  configPayload,
  encodeMessage,
  FLAG_NEED_REPLY,
  FLAG_REPLY,
  FrontendRequest as R,
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  readConfig,
  readMemoryTable,
  readState,
  readU64,
  readVringAddress,
  requestName,
  statePayload,
  u64Payload,
  type VhostUserMessage,
  VRING_NOFD,
  type VringAddress,
} from "./protocol.ts";
import { QueueRunner } from "./queue_runner.ts";

/** Requests whose reply carries an answer (an error cannot be acknowledged: it ends the connection). */
const ANSWERED: ReadonlySet<number> = new Set([
  R.GetFeatures,
  R.GetProtocolFeatures,
  R.GetVringBase,
  R.GetQueueNum,
  R.GetConfig,
]);
const MAX_CONFIG = 256;
const U64_END = 1n << 64n;

/** What a session needs of its back-end. */
export interface SessionContext {
  /** The device served. */
  device: VhostUserDevice;
  /** Feature bits offered (device and transport). */
  features: bigint;
  /** Protocol feature bits offered. */
  protocolFeatures: bigint;
  /** Where the session counts (the back-end's counters). */
  counters: VhostUserCounters;
  /** Where events go. */
  emit: ((e: BackendEvent) => void) | undefined;
  /** How long one IOTLB miss may take. */
  missTimeoutMs: number;
  /** Whether queues check buffers when popping. */
  checkBuffers: boolean;
  /** Dirty bitmap page size of the memory regions, if any. */
  dirtyPageSize: number | undefined;
}

/** Per-queue state as the front-end set it up. */
class Vring {
  readonly index: number;
  size: number | undefined;
  addr: VringAddress | undefined;
  base = 0;
  kickFd = -1;
  callFd = -1;
  errFd = -1;
  enabled = false;
  runner: QueueRunner | undefined;

  constructor(index: number) {
    this.index = index;
  }
}

/** A stream for the IOTLB channel before the front-end gave a back-end channel: it cannot send. */
const NO_CHANNEL: VhostStream = {
  read: () => Promise.resolve(null),
  write: () =>
    Promise.reject(
      new VhostUserError(
        "VhostUserBackend.miss",
        "Closed",
        "the front-end gave no back-end channel (SET_BACKEND_REQ_FD)",
      ),
    ),
};

/**
 * One connection. Made by `VhostUserBackend.serve`; {@link Session.done} settles once it ended and
 * released everything.
 */
export class Session {
  readonly #ctx: SessionContext;
  readonly #watcher: FdWatcher;
  readonly #sock: MessageSocket;
  readonly #vrings: Vring[];
  /** The IOTLB the front-end fills. */
  readonly iotlb: Iotlb = new Iotlb();
  /** The IOMMU over it, asking the front-end for misses. */
  readonly iommu: IotlbIommu;
  #channel: VhostIotlbChannel;
  #channelStream: BackendChannel | undefined;
  #table: MemoryTable | undefined;
  #iommuMemory: IommuMemory | undefined;
  #features = 0n;
  #featuresSet = false;
  #protocol = 0n;
  #ending = false;
  #end!: () => void;
  /** Settles when the connection ended and everything was released. */
  readonly done: Promise<VhostUserError | undefined>;
  #why: VhostUserError | undefined;

  /** Serves the connected socket `fd` (owned from now on). */
  constructor(fd: number, watcher: FdWatcher, ctx: SessionContext) {
    this.#ctx = ctx;
    this.#watcher = watcher;
    this.#vrings = Array.from({ length: ctx.device.numQueues }, (_, i) => new Vring(i));
    this.iommu = new IotlbIommu(this.iotlb, {
      // Only misses are asked: a mapping without the access is the guest's decision (QEMU 7.2 does
      // not take ACCESS_FAIL messages anyway), refused by the resolver below.
      asyncMissHandler: (range, access, kind, signal) =>
        kind === "miss"
          ? this.#channel.missHandler(range, access, kind, signal)
          : Promise.reject(new Error(`${hex(range.base)}+${hex(range.length)} is mapped without the access`)),
      timeoutMs: ctx.missTimeoutMs,
    });
    this.#channel = this.#iotlbChannel(NO_CHANNEL);
    const ended = new Promise<void>((resolve) => (this.#end = resolve));
    this.done = ended.then(() => this.#teardown()).then(() => this.#why);
    this.#sock = new MessageSocket(fd, watcher, "VhostUserBackend", {
      message: (msg) => this.#dispatch(msg),
      closed: (why) => {
        this.#why = why;
        this.#end();
      },
    });
    ctx.counters.connections++;
    ctx.emit?.({ type: "connected" });
  }

  /** The memory table, once the front-end sent one. */
  get memoryTable(): MemoryTable | undefined {
    return this.#table;
  }

  /** The guest memory behind the IOMMU, once a memory table came and IOMMU_PLATFORM was negotiated. */
  get iommuMemory(): IommuMemory | undefined {
    return this.#iommuMemory;
  }

  /** The features the front-end acknowledged. */
  get features(): bigint {
    return this.#features;
  }

  /** The queue `index` while it is started. */
  queue(index: number): SplitQueue | undefined {
    return this.#vrings[index]?.runner?.queue;
  }

  /** Ends the connection (as if the front-end had closed it). */
  close(why?: VhostUserError): void {
    this.#sock.close(why);
  }

  // ---- dispatch ----

  #dispatch(msg: VhostUserMessage): void {
    const name = requestName(msg.request);
    const op = `VhostUserBackend.${name}`;
    const ctx = this.#ctx;
    ctx.counters.messages++;
    ctx.emit?.({
      type: "message",
      request: msg.request,
      name,
      flags: msg.flags,
      size: msg.payload.length,
      fds: msg.fds.length,
    });
    let answer: Uint8Array | undefined;
    try {
      if ((msg.flags & FLAG_REPLY) !== 0) {
        throw new VhostUserError(op, "Header", "a reply is not a request", msg.request);
      }
      answer = this.#handle(op, msg);
    } catch (e) {
      this.#closeFds(msg);
      const error = e instanceof GuestMemoryError
        ? e
        : new VhostUserError(op, "Socket", String(e), msg.request, { cause: e });
      ctx.counters.rejected++;
      ctx.emit?.({ type: "rejected", request: msg.request, name, error });
      if (msg.request === R.GetConfig) {
        // The protocol's error answer to GET_CONFIG is a config reply of size 0.
        return this.#reply(msg, configPayload(0, 0, new Uint8Array(0)));
      }
      if (!ANSWERED.has(msg.request) && (msg.flags & FLAG_NEED_REPLY) !== 0) return this.#reply(msg, u64Payload(1n));
      const why = error instanceof VhostUserError
        ? error
        : new VhostUserError(op, "Socket", error.message, msg.request, { cause: error });
      this.#sock.close(why);
      return;
    }
    this.#closeFds(msg);
    if (answer !== undefined) this.#reply(msg, answer);
    else if ((msg.flags & FLAG_NEED_REPLY) !== 0) this.#reply(msg, u64Payload(0n));
  }

  #reply(msg: VhostUserMessage, payload: Uint8Array): void {
    if (this.#sock.closed) return;
    try {
      this.#sock.send(encodeMessage(msg.request, FLAG_REPLY, payload));
    } catch (e) {
      this.#sock.close(e instanceof VhostUserError ? e : undefined);
    }
  }

  /** Descriptors nothing took are closed here: a message can never leak one. */
  #closeFds(msg: VhostUserMessage): void {
    for (const fd of msg.fds) native().close(fd);
    msg.fds.length = 0;
  }

  /** Takes the message's one descriptor, or throws `MissingFd`. */
  #takeFd(op: string, msg: VhostUserMessage): number {
    const fd = msg.fds.shift();
    if (fd === undefined) {
      throw new VhostUserError(op, "MissingFd", `${requestName(msg.request)} came without its descriptor`, msg.request);
    }
    return fd;
  }

  #handle(op: string, msg: VhostUserMessage): Uint8Array | undefined {
    const ctx = this.#ctx;
    switch (msg.request) {
      case R.GetFeatures:
        this.#empty(op, msg);
        return u64Payload(ctx.features);
      case R.SetFeatures: {
        const f = readU64(op, msg);
        const extra = f & ~ctx.features;
        if (extra !== 0n) {
          throw new VhostUserError(
            op,
            "Features",
            `features ${hex(extra)} were not offered (offered ${hex(ctx.features)})`,
            msg.request,
          );
        }
        this.#features = f;
        this.#featuresSet = true;
        ctx.device.acked?.(f & ~featureMask(PROTOCOL_FEATURES_BIT));
        ctx.emit?.({ type: "features", features: f });
        return undefined;
      }
      case R.GetProtocolFeatures:
        this.#empty(op, msg);
        return u64Payload(ctx.protocolFeatures);
      case R.SetProtocolFeatures: {
        const f = readU64(op, msg);
        const extra = f & ~ctx.protocolFeatures;
        if (extra !== 0n) {
          throw new VhostUserError(op, "Features", `protocol features ${hex(extra)} were not offered`, msg.request);
        }
        this.#protocol = f;
        ctx.emit?.({ type: "protocol-features", features: f });
        return undefined;
      }
      case R.SetOwner:
        this.#empty(op, msg);
        return undefined;
      case R.ResetOwner:
        this.#empty(op, msg);
        for (const v of this.#vrings) this.#stopRing(v);
        return undefined;
      case R.SetMemTable:
        this.#setMemTable(op, msg);
        return undefined;
      case R.SetVringNum: {
        const { index, num } = readState(op, msg);
        const v = this.#stopped(op, msg, index);
        const max = ctx.device.maxQueueSize;
        if (num < 1 || num > max || (num & (num - 1)) !== 0) {
          throw new VhostUserError(
            op,
            "QueueState",
            `queue size ${num} is not a power of two from 1 to ${max}`,
            msg.request,
          );
        }
        v.size = num;
        return undefined;
      }
      case R.SetVringAddr: {
        const a = readVringAddress(op, msg);
        this.#stopped(op, msg, a.index).addr = a;
        return undefined;
      }
      case R.SetVringBase: {
        const { index, num } = readState(op, msg);
        const v = this.#stopped(op, msg, index);
        if (num > 0xffff) {
          throw new VhostUserError(op, "QueueState", `vring base ${num} is not a 16-bit index`, msg.request);
        }
        v.base = num;
        return undefined;
      }
      case R.GetVringBase: {
        const { index } = readState(op, msg);
        const v = this.#vring(op, msg, index);
        const base = v.runner?.queue.nextAvail ?? v.base;
        this.#stopRing(v);
        v.base = base;
        for (const fd of [v.callFd, v.errFd]) if (fd >= 0) native().close(fd);
        v.callFd = v.errFd = -1;
        ctx.emit?.({ type: "vring-stopped", index, base });
        return statePayload(index, base);
      }
      case R.SetVringKick:
      case R.SetVringCall:
      case R.SetVringErr:
        this.#setVringFd(op, msg);
        return undefined;
      case R.GetQueueNum:
        this.#empty(op, msg);
        return u64Payload(BigInt(ctx.device.numQueues));
      case R.SetVringEnable: {
        const { index, num } = readState(op, msg);
        const v = this.#vring(op, msg, index);
        if (num > 1) throw new VhostUserError(op, "QueueState", `enable ${num} is neither 0 nor 1`, msg.request);
        v.enabled = num === 1;
        if (v.runner !== undefined) v.runner.enabled = v.enabled;
        ctx.emit?.({ type: "vring-enabled", index, enabled: v.enabled });
        return undefined;
      }
      case R.SetBackendReqFd: {
        this.#needProtocol(op, msg, ProtocolFeature.BackendReq, "BACKEND_REQ");
        this.#empty(op, msg);
        const fd = this.#takeFd(op, msg);
        this.#channelStream?.close();
        const stream = new BackendChannel(fd, this.#watcher, (bytes) => this.#sentMiss(bytes));
        this.#channelStream = stream;
        this.#channel = this.#iotlbChannel(stream);
        // Read until the front-end closes it: that wakes every miss still waiting on it.
        this.#channel.run().catch(() => stream.close());
        return undefined;
      }
      case R.IotlbMsg:
        this.#iotlbMessage(op, msg);
        return undefined;
      case R.GetConfig: {
        this.#needProtocol(op, msg, ProtocolFeature.Config, "CONFIG");
        const c = readConfig(op, msg);
        const space = ctx.device.config?.();
        if (space === undefined) {
          throw new VhostUserError(op, "Config", `${ctx.device.name} has no config space`, msg.request);
        }
        if (c.size > MAX_CONFIG || c.offset + c.size > space.length) {
          throw new VhostUserError(
            op,
            "Config",
            `config bytes ${c.offset}+${c.size} are outside the ${space.length}-byte config space`,
            msg.request,
          );
        }
        return configPayload(c.offset, c.flags, space.subarray(c.offset, c.offset + c.size));
      }
      case R.SetConfig:
        readConfig(op, msg);
        throw new VhostUserError(op, "Config", `the config space of ${ctx.device.name} is read-only`, msg.request);
      default:
        throw new VhostUserError(
          op,
          "UnknownRequest",
          `request ${msg.request} (${requestName(msg.request)}) is not served`,
          msg.request,
        );
    }
  }

  #empty(op: string, msg: VhostUserMessage): void {
    if (msg.payload.length !== 0) {
      throw new VhostUserError(
        op,
        "PayloadSize",
        `${requestName(msg.request)} carries ${msg.payload.length} payload bytes, not 0`,
        msg.request,
      );
    }
  }

  #needProtocol(op: string, msg: VhostUserMessage, bit: number, name: string): void {
    if ((this.#protocol & featureMask(bit)) === 0n) {
      throw new VhostUserError(
        op,
        "Features",
        `${requestName(msg.request)} needs protocol feature ${name}, not negotiated`,
        msg.request,
      );
    }
  }

  #has(bit: number): boolean {
    return (this.#features & featureMask(bit)) !== 0n;
  }

  #vring(op: string, msg: VhostUserMessage, index: number): Vring {
    const v = this.#vrings[index];
    if (v === undefined) {
      throw new VhostUserError(
        op,
        "QueueIndex",
        `queue ${index} does not exist (${this.#vrings.length} queues)`,
        msg.request,
      );
    }
    return v;
  }

  /** The queue, which must not be started (its layout is fixed while it runs). */
  #stopped(op: string, msg: VhostUserMessage, index: number): Vring {
    const v = this.#vring(op, msg, index);
    if (v.runner !== undefined) {
      throw new VhostUserError(
        op,
        "QueueState",
        `queue ${index} is started; stop it (GET_VRING_BASE) first`,
        msg.request,
      );
    }
    return v;
  }

  // ---- memory table ----

  #setMemTable(op: string, msg: VhostUserMessage): void {
    const regions = readMemoryTable(op, msg);
    const fds = msg.fds.splice(0);
    const table = MemoryTable.map(regions, fds, { dirtyPageSize: this.#ctx.dirtyPageSize });
    const old = this.#table;
    this.#table = table;
    if (this.#iommuMemory !== undefined) this.#iommuMemory = this.#iommuMemory.withReplacedBackend(table.memory);
    // Translations made against the old table may point elsewhere now.
    if (old !== undefined) this.iotlb.invalidateAll();
    for (const v of this.#vrings) {
      const q = v.runner?.queue;
      if (q !== undefined) q.memory = this.#has(VirtioFeature.AccessPlatform) ? this.#iommu() : table.memory;
    }
    old?.close();
    this.#ctx.emit?.({
      type: "memory-table",
      regions: table.regions.map((r) => ({
        guestAddr: r.guestAddr,
        size: r.size,
        userAddr: r.userAddr,
        mmapOffset: r.mmapOffset,
        hostAddr: r.region.mmap.hostAddress,
      })),
    });
  }

  #iommu(): IommuMemory {
    // With dirty bitmaps, translated writes are logged by guest physical address (vhost-user's log).
    const logBy = this.#ctx.dirtyPageSize === undefined ? "iova" : "gpa";
    return this.#iommuMemory ??= new IommuMemory(this.#table!.memory, this.iommu, { logBy });
  }

  // ---- vrings ----

  #setVringFd(op: string, msg: VhostUserMessage): void {
    const value = readU64(op, msg);
    const index = Number(value & 0xffn);
    const nofd = (value & BigInt(VRING_NOFD)) !== 0n;
    if ((value & ~0x1ffn) !== 0n) {
      throw new VhostUserError(
        op,
        "QueueState",
        `payload ${hex(value)} has bits set besides the index and NOFD`,
        msg.request,
      );
    }
    const v = this.#vring(op, msg, index);
    if (nofd && msg.request === R.SetVringKick) {
      throw new VhostUserError(
        op,
        "QueueState",
        "polling a queue without a kick descriptor is not supported",
        msg.request,
      );
    }
    const fd = nofd ? -1 : this.#takeFd(op, msg);
    if (msg.request === R.SetVringCall) {
      if (v.callFd >= 0) native().close(v.callFd);
      v.callFd = fd;
      return;
    }
    if (msg.request === R.SetVringErr) {
      if (v.errFd >= 0) native().close(v.errFd);
      v.errFd = fd;
      return;
    }
    try {
      this.#startRing(op, msg, v);
    } catch (e) {
      native().close(fd);
      throw e;
    }
    if (v.kickFd >= 0) {
      this.#watcher.unwatch(v.kickFd);
      native().close(v.kickFd);
    }
    v.kickFd = fd;
    this.#watcher.watch(fd, () => {
      if (native().eventfdRead(fd) > 0n) {
        this.#ctx.counters.kicks++;
        v.runner?.kick();
      }
    });
    v.runner!.kick();
  }

  #startRing(op: string, msg: VhostUserMessage, v: Vring): void {
    if (v.runner !== undefined) return; // a new kick descriptor for a running queue
    const table = this.#table;
    if (v.size === undefined || v.addr === undefined) {
      throw new VhostUserError(
        op,
        "QueueState",
        `queue ${v.index} needs SET_VRING_NUM and SET_VRING_ADDR before its kick`,
        msg.request,
      );
    }
    if (table === undefined) {
      throw new VhostUserError(op, "QueueState", `queue ${v.index} cannot start without a memory table`, msg.request);
    }
    const iommu = this.#has(VirtioFeature.AccessPlatform);
    const size = v.size, a = v.addr;
    const eventIdx = this.#has(VirtioFeature.EventIdx);
    const extra = eventIdx ? 2 : 0;
    // Without an IOMMU the ring addresses are the front-end's user addresses; with one, IOVAs.
    const desc = iommu ? a.desc : table.userToGuest(a.desc, 16 * size);
    const avail = iommu ? a.avail : table.userToGuest(a.avail, 4 + 2 * size + extra);
    const used = iommu ? a.used : table.userToGuest(a.used, 4 + 8 * size + extra);
    let queue: SplitQueue;
    try {
      queue = new SplitQueue(iommu ? this.#iommu() : table.memory, {
        size,
        desc,
        avail,
        used,
        eventIdx,
        indirect: this.#has(VirtioFeature.IndirectDesc),
        index: v.index,
        nextAvail: v.base,
        maxInFlight: 1,
        checkBuffers: this.#ctx.checkBuffers,
      });
    } catch (e) {
      if (!(e instanceof VirtqueueError)) throw e;
      throw new VhostUserError(op, "QueueState", e.message, msg.request, { cause: e });
    }
    const ctx = this.#ctx, device = ctx.device, counters = ctx.counters;
    const runner = new QueueRunner(queue, {
      handle: (chain) => device.handle(v.index, chain),
      resolve: iommu ? this.#resolver(v.index) : undefined,
      notify: () => {
        if (v.callFd < 0) return;
        counters.calls++;
        native().eventfdWrite(v.callFd, 1n);
      },
      completed: (chain, written) => {
        counters.requests++;
        if (ctx.emit !== undefined) {
          ctx.emit({ type: "request", queue: v.index, head: chain.head, buffers: chain.toJSON().buffers, written });
        }
      },
      refused: (error) => {
        counters.refused++;
        if (v.errFd >= 0) native().eventfdWrite(v.errFd, 1n);
        ctx.emit?.({ type: "refused", queue: v.index, error });
      },
    });
    // Without protocol features a ring is enabled once started; with them, by SET_VRING_ENABLE.
    runner.enabled = v.enabled || (this.#features & featureMask(PROTOCOL_FEATURES_BIT)) === 0n;
    v.runner = runner;
    ctx.emit?.({
      type: "vring-started",
      index: v.index,
      size,
      desc: BigInt(desc),
      avail: BigInt(avail),
      used: BigInt(used),
      iommu,
    });
  }

  #stopRing(v: Vring): void {
    const runner = v.runner;
    v.runner = undefined;
    if (runner !== undefined) void runner.stop();
    if (v.kickFd >= 0) {
      this.#watcher.unwatch(v.kickFd);
      native().close(v.kickFd);
      v.kickFd = -1;
    }
  }

  /** Asks the front-end for a missing translation; refuses at once what the IOTLB maps without the access. */
  #resolver(queue: number): MissResolver {
    const denied = (addr: bigint, length: number, access: Permission): VirtqueueError | undefined => {
      const r = this.iotlb.lookup(addr, length, access);
      if (r.ok || r.accessFails.length === 0) return undefined;
      const f = r.accessFails[0];
      return new VirtqueueError(
        "VhostUserBackend.resolve",
        queue,
        "Permission",
        `the IOTLB maps ${hex(f.base)}+${hex(f.length)} without ${access === 2 ? "write" : "read"} permission`,
        { addr: f.base, length: f.length, access },
      );
    };
    return async ({ addr, length, access }) => {
      try {
        await this.iommu.translateAsync(addr, length, access);
      } catch (e) {
        // The front-end answered the miss with a mapping that denies the access.
        throw denied(addr, length, access) ?? e;
      }
    };
  }

  // ---- IOTLB ----

  #iotlbChannel(stream: VhostStream): VhostIotlbChannel {
    return new VhostIotlbChannel(stream, this.iotlb, {
      toTarget: (uaddr) => {
        if (this.#table === undefined) throw new Error("no memory table yet");
        return this.#table.userToGuest(uaddr, 1);
      },
    });
  }

  #sentMiss(bytes: Uint8Array): void {
    this.#ctx.counters.iotlbMisses++;
    if (this.#ctx.emit !== undefined) {
      const { msg } = decodeVhostIotlbMsg(bytes);
      this.#ctx.emit({ type: "iotlb-miss", iova: msg.iova, perm: msg.perm });
    }
  }

  #iotlbMessage(op: string, msg: VhostUserMessage): void {
    const counters = this.#ctx.counters;
    try {
      if (!this.#has(VirtioFeature.AccessPlatform)) {
        throw new VhostUserError(op, "Features", "IOTLB_MSG without IOMMU_PLATFORM negotiated", msg.request);
      }
      if (msg.payload.length !== 32) {
        throw new VhostUserError(
          op,
          "PayloadSize",
          `IOTLB_MSG carries ${msg.payload.length} payload bytes, not 32`,
          msg.request,
        );
      }
      // The shared decoder checks the message as the IOTLB channel does (permission, type).
      const framed = new Uint8Array(44);
      const head = new DataView(framed.buffer);
      head.setUint32(0, R.IotlbMsg, true);
      head.setUint32(4, 1, true);
      head.setUint32(8, 32, true);
      framed.set(msg.payload, 12);
      let m: VhostIotlbMsg;
      try {
        m = decodeVhostIotlbMsg(framed).msg;
      } catch (e) {
        throw new VhostUserError(op, "Iotlb", e instanceof Error ? e.message : String(e), msg.request, { cause: e });
      }
      if (m.type === VhostIotlbType.Update) this.#update(op, msg, m);
      else {
        this.#apply(op, msg, m);
        counters.iotlbInvalidations++;
        this.#ctx.emit?.({ type: "iotlb-invalidate", iova: m.iova, size: m.size });
      }
    } catch (e) {
      counters.iotlbRejected++;
      throw e;
    }
  }

  /** An update, split where its user range crosses from one memory region to the next. */
  #update(op: string, msg: VhostUserMessage, m: VhostIotlbMsg): void {
    const table = this.#table;
    if (table === undefined) {
      throw new VhostUserError(op, "Iotlb", "an IOTLB update before any memory table", msg.request);
    }
    if (m.size === 0n || m.iova + m.size > U64_END) {
      this.#apply(op, msg, m); // the channel refuses it in its own words
      throw new VhostUserError(op, "Iotlb", `update of ${hex(m.iova)}+${hex(m.size)} is impossible`, msg.request);
    }
    const pieces: VhostIotlbMsg[] = [];
    let at = 0n;
    while (at < m.size) {
      const u = m.uaddr + at;
      const r = table.regions.find((r) => u >= r.userAddr && u < r.userAddr + r.size);
      if (r === undefined) {
        throw new VhostUserError(
          op,
          "Iotlb",
          `update of ${hex(m.iova)}+${hex(m.size)}: user address ${hex(u)} is outside the memory table`,
          msg.request,
        );
      }
      const n = m.size - at < r.userAddr + r.size - u ? m.size - at : r.userAddr + r.size - u;
      pieces.push({ ...m, iova: m.iova + at, uaddr: u, size: n });
      at += n;
    }
    for (const p of pieces) {
      this.#apply(op, msg, p);
      this.#ctx.emit?.({
        type: "iotlb-update",
        iova: p.iova,
        size: p.size,
        uaddr: p.uaddr,
        gpa: table.userToGuest(p.uaddr, 1),
        perm: p.perm,
      });
    }
    this.#ctx.counters.iotlbUpdates++;
  }

  #apply(op: string, msg: VhostUserMessage, m: VhostIotlbMsg): void {
    try {
      this.#channel.apply(m);
    } catch (e) {
      if (!(e instanceof GuestMemoryError)) throw e;
      throw new VhostUserError(op, "Iotlb", e.message, msg.request, { cause: e });
    }
  }

  // ---- teardown ----

  async #teardown(): Promise<void> {
    if (this.#ending) return;
    this.#ending = true;
    this.#channelStream?.close();
    const stops: Promise<void>[] = [];
    for (const v of this.#vrings) {
      const runner = v.runner;
      v.runner = undefined;
      if (runner !== undefined) stops.push(runner.stop());
      if (v.kickFd >= 0) this.#watcher.unwatch(v.kickFd);
      for (const fd of [v.kickFd, v.callFd, v.errFd]) if (fd >= 0) native().close(fd);
      v.kickFd = v.callFd = v.errFd = -1;
    }
    await Promise.all(stops);
    this.iotlb.invalidateAll();
    this.#table?.close();
    this.#table = undefined;
    this.#ctx.emit?.({ type: "disconnected", error: this.#why });
  }
}
