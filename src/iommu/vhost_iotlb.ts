/**
 * The vhost IOTLB message (Linux `struct vhost_iotlb_msg`, carried by vhost-user as
 * `VHOST_USER_BACKEND_IOTLB_MSG` from the back-end and `VHOST_USER_IOTLB_MSG` from the front-end),
 * and a channel that answers IOTLB misses over a real stream with it.
 *
 * Wire layout (little-endian, 32 bytes): `iova` u64, `size` u64, `uaddr` u64, `perm` u8, `type` u8,
 * 6 bytes of padding. In vhost-user each message is preceded by the 12-byte header `request` u32,
 * `flags` u32 (version 1 in the low bits, 0x4 = reply, 0x8 = need reply), `size` u32.
 * @module
 */

import { type AddressLike, toAddress } from "../core/address.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import { hex } from "../core/format.ts";
import { abortable, type AbortOptions, signalOf } from "../core/abort_signal.ts";
import { IntervalIndex, type IntervalNode } from "./interval_index.ts";
import type { AsyncMissHandler } from "./iommu.ts";
import type { Iotlb } from "./iotlb.ts";
import { type Permission, toPermission } from "../core/permissions.ts";

/** Message types of `struct vhost_iotlb_msg` (Linux `VHOST_IOTLB_*`). */
export const VhostIotlbType = {
  /** Back-end to front-end: translate this IOVA. */
  Miss: 1,
  /** Front-end to back-end: a mapping. */
  Update: 2,
  /** Front-end to back-end: forget a range. */
  Invalidate: 3,
  /** Back-end to front-end: an access was refused. */
  AccessFail: 4,
} as const;

/** vhost-user request codes carrying a `vhost_iotlb_msg`. */
export const VhostUserRequest = {
  /** Front-end request `VHOST_USER_IOTLB_MSG`. */
  IotlbMsg: 22,
  /** Back-end request `VHOST_USER_BACKEND_IOTLB_MSG` (on the back-end channel). */
  BackendIotlbMsg: 1,
} as const;

/** Size of `struct vhost_iotlb_msg` on the wire. */
export const VHOST_IOTLB_MSG_SIZE = 32;
/** Size of the vhost-user message header. */
export const VHOST_USER_HEADER_SIZE = 12;
const VHOST_USER_VERSION = 0x1;
/** Header flag: this message is a reply (never set on a request). */
const VHOST_USER_REPLY = 0x4;
/** Header flag: the sender asks for a reply. */
const VHOST_USER_NEED_REPLY = 0x8;
const U64_END = 1n << 64n;
/** The largest power of two a `number` length holds: longer ranges are applied in pieces of it. */
const PIECE = 2n ** 52n;

/**
 * One IOTLB message. `perm` uses the same bits as {@link Permission} (Linux `VHOST_ACCESS_RO` = 1,
 * `WO` = 2, `RW` = 3).
 *
 * @example
 * ```ts
 * import { type VhostIotlbMsg, VhostIotlbType } from "./vhost_iotlb.ts";
 * const miss: VhostIotlbMsg = { iova: 0x1000n, size: 0n, uaddr: 0n, perm: 1, type: VhostIotlbType.Miss };
 * ```
 */
export interface VhostIotlbMsg {
  /** I/O virtual address. */
  iova: bigint;
  /** Length in bytes (0 in a miss). */
  size: bigint;
  /** Target address (the front-end's address for the memory; see {@link VhostIotlbChannel}). */
  uaddr: bigint;
  /** Permission bits. */
  perm: Permission;
  /** One of {@link VhostIotlbType}. */
  type: number;
}

/**
 * Encodes a message with its vhost-user header into 44 bytes.
 *
 * @example
 * ```ts
 * import { encodeVhostIotlbMsg, VhostIotlbType, VhostUserRequest } from "./vhost_iotlb.ts";
 * const bytes = encodeVhostIotlbMsg(VhostUserRequest.BackendIotlbMsg, {
 *   iova: 0x1000n, size: 0n, uaddr: 0n, perm: 1, type: VhostIotlbType.Miss,
 * });
 * console.log(bytes.length); // 44
 * ```
 */
export function encodeVhostIotlbMsg(request: number, msg: VhostIotlbMsg, flags = 0): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(VHOST_USER_HEADER_SIZE + VHOST_IOTLB_MSG_SIZE);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, request, true);
  dv.setUint32(4, VHOST_USER_VERSION | flags, true);
  dv.setUint32(8, VHOST_IOTLB_MSG_SIZE, true);
  const op = "encodeVhostIotlbMsg";
  dv.setBigUint64(12, toAddress(msg.iova, op, "iova"), true);
  dv.setBigUint64(20, toAddress(msg.size, op, "size"), true);
  dv.setBigUint64(28, toAddress(msg.uaddr, op, "uaddr"), true);
  dv.setUint8(36, msg.perm);
  dv.setUint8(37, msg.type);
  return out;
}

/**
 * Decodes one header + message (44 bytes); throws `InvalidArgument` on a short buffer, a wrong
 * payload size or version, a bad permission, or a type that is not one of {@link VhostIotlbType}.
 * The request code is returned as it came: which codes are valid depends on the direction.
 *
 * @example
 * ```ts
 * import { decodeVhostIotlbMsg, encodeVhostIotlbMsg, VhostIotlbType } from "./vhost_iotlb.ts";
 * const m = { iova: 0x2000n, size: 0x1000n, uaddr: 0x9000n, perm: 3, type: VhostIotlbType.Update } as const;
 * console.log(decodeVhostIotlbMsg(encodeVhostIotlbMsg(22, m)).msg.uaddr); // 36864n
 * ```
 */
export function decodeVhostIotlbMsg(bytes: Uint8Array): { request: number; flags: number; msg: VhostIotlbMsg } {
  const op = "decodeVhostIotlbMsg";
  if (bytes.length < VHOST_USER_HEADER_SIZE + VHOST_IOTLB_MSG_SIZE) {
    throw new InvalidArgumentError(
      op,
      "bytes",
      bytes.length,
      `must hold ${VHOST_USER_HEADER_SIZE + VHOST_IOTLB_MSG_SIZE} bytes`,
    );
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const request = dv.getUint32(0, true);
  const flags = dv.getUint32(4, true);
  const size = dv.getUint32(8, true);
  if ((flags & 0x3) !== VHOST_USER_VERSION) {
    throw new InvalidArgumentError(op, "flags", flags, "must carry vhost-user version 1");
  }
  if (size !== VHOST_IOTLB_MSG_SIZE) {
    throw new InvalidArgumentError(op, "size", size, `must be ${VHOST_IOTLB_MSG_SIZE} for an IOTLB message`);
  }
  const perm = dv.getUint8(36);
  if (perm > 3) throw new InvalidArgumentError(op, "perm", perm, "must be 0-3");
  const type = dv.getUint8(37);
  if (type < VhostIotlbType.Miss || type > VhostIotlbType.AccessFail) {
    throw new InvalidArgumentError(op, "type", type, "must be Miss (1), Update (2), Invalidate (3) or AccessFail (4)");
  }
  return {
    request,
    flags,
    msg: {
      iova: dv.getBigUint64(12, true),
      size: dv.getBigUint64(20, true),
      uaddr: dv.getBigUint64(28, true),
      perm: perm as Permission,
      type,
    },
  };
}

/** A byte stream both ways, such as a `Deno.Conn` over a Unix socket. */
export interface VhostStream {
  /** Reads into `p`; `null` at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes from `p`; returns how much was written. */
  write(p: Uint8Array): Promise<number>;
}

/** Options of {@link VhostIotlbChannel}. */
export interface VhostIotlbChannelOptions {
  /** Turns a message's `uaddr` into the target address stored in the IOTLB (default: unchanged). */
  toTarget?: (uaddr: bigint) => bigint;
}

async function writeAll(stream: VhostStream, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const n = await stream.write(bytes.subarray(done));
    // A stream that reports no progress (or nonsense) would have this loop spin forever.
    if (!Number.isSafeInteger(n) || n <= 0 || n > bytes.length - done) {
      throw new InvalidArgumentError("VhostIotlbChannel", "stream", n, "write must report 1 to the bytes offered");
    }
    done += n;
  }
}

async function readExact(stream: VhostStream, bytes: Uint8Array): Promise<boolean> {
  let done = 0;
  while (done < bytes.length) {
    let n: number | null;
    try {
      n = await stream.read(bytes.subarray(done));
    } catch (e) {
      // Our own side closed the stream (Deno reports the cancelled read as Interrupted or
      // BadResource): that ends the channel like an end of stream does.
      if (done === 0 && e instanceof Error && (e.name === "Interrupted" || e.name === "BadResource")) return false;
      throw e;
    }
    if (n === null) {
      if (done === 0) return false;
      throw new InvalidArgumentError("VhostIotlbChannel", "stream", done, "ended in the middle of a message");
    }
    if (!Number.isSafeInteger(n) || n <= 0 || n > bytes.length - done) {
      throw new InvalidArgumentError("VhostIotlbChannel", "stream", n, "read must report 1 to the bytes asked for");
    }
    done += n;
  }
  return true;
}

/** A miss waiting for the front-end's answer. */
interface Waiter {
  resolve: () => void;
  /** The misses asked with the same signal: one abort listener serves them all. */
  group: Set<IntervalNode<Waiter>>;
}

/**
 * The back-end side of vhost-user's IOTLB protocol over a stream: {@link VhostIotlbChannel.missHandler}
 * sends a `Miss` for a failing range and resolves when a front-end `Update` covers the IOVA it
 * asked for; {@link VhostIotlbChannel.run} applies every `Update` and `Invalidate` the front-end
 * sends to the IOTLB as they arrive. A miss is one message per failing range start (the protocol
 * asks by IOVA and permission; the front-end answers with the whole mapping containing it).
 *
 * Every message from the front-end is checked before anything changes: request code
 * `VHOST_USER_IOTLB_MSG` (22), flags (version 1, optionally need-reply, nothing else), payload
 * size, type `Update` or `Invalidate`, permission, a size that is not zero and a range (IOVA and
 * target) that stays within 2^64. A message that fails is counted in
 * {@link VhostIotlbChannel.messagesRejected} and changes nothing; a header whose version or size
 * is wrong ends {@link VhostIotlbChannel.run} with `InvalidArgument`, since the stream can no
 * longer be split into messages.
 *
 * @example
 * ```ts ignore
 * const channel = new VhostIotlbChannel(conn, iommu.iotlb);
 * const iommu = new IotlbIommu(iotlb, { asyncMissHandler: channel.missHandler });
 * channel.run(); // until the stream ends
 * ```
 */
export class VhostIotlbChannel implements Disposable {
  readonly #stream: VhostStream;
  readonly #iotlb: Iotlb;
  readonly #toTarget: (uaddr: bigint) => bigint;
  /** Misses waiting for updates, by the IOVA asked for: an update wakes only those it covers. */
  readonly #waiting = new IntervalIndex<Waiter>();
  readonly #groups = new WeakMap<AbortSignal, Set<IntervalNode<Waiter>>>();
  #messages = 0;
  #rejected = 0;
  #lastRejection: InvalidArgumentError | undefined = undefined;
  #ended = false;

  /** Serves `iotlb` from the front-end at the other end of `stream`. */
  constructor(stream: VhostStream, iotlb: Iotlb, options: VhostIotlbChannelOptions = {}) {
    this.#stream = stream;
    this.#iotlb = iotlb;
    this.#toTarget = options.toTarget ?? ((u) => u);
  }

  /** Messages applied so far. @example `channel.messagesApplied` */
  get messagesApplied(): number {
    return this.#messages;
  }

  /**
   * Messages {@link VhostIotlbChannel.run} received and refused (wrong request code, flags, type,
   * permission, size or range); none of them changed the IOTLB.
   *
   * @example
   * ```ts ignore
   * console.log(channel.messagesRejected, channel.lastRejection?.message);
   * ```
   */
  get messagesRejected(): number {
    return this.#rejected;
  }

  /** Why the last refused message was refused. @example `channel.lastRejection?.argument` */
  get lastRejection(): InvalidArgumentError | undefined {
    return this.#lastRejection;
  }

  /**
   * Misses sent and not yet answered (each leaves when an update answers it, its asker gives up,
   * sending it failed, or the stream ends).
   *
   * @example
   * ```ts ignore
   * console.log(channel.pendingMisses); // 0
   * ```
   */
  get pendingMisses(): number {
    return this.#waiting.size;
  }

  /**
   * An {@link AsyncMissHandler} for `IotlbIommu`: sends one `Miss` (or `AccessFail`) and waits
   * until an update covers the IOVA asked for (or the asker gives up, or the stream ends). Resolves
   * at once, sending nothing, when the IOTLB already translates the range or the stream has ended;
   * rejects, keeping nothing, when sending fails.
   *
   * @example
   * ```ts ignore
   * new IotlbIommu(iotlb, { asyncMissHandler: channel.missHandler });
   * ```
   */
  readonly missHandler: AsyncMissHandler = async (range, access, kind, signal) => {
    if (this.#ended || signal.aborted || this.#iotlb.probe(range.base, range.length, access).ok) return;
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    let group = this.#groups.get(signal);
    if (group === undefined) {
      const members = group = new Set();
      this.#groups.set(signal, members);
      // The asker gave up: forget its misses so an unanswered question does not stay here forever.
      signal.addEventListener("abort", () => {
        for (const node of members) this.#wake(node);
      }, { once: true });
    }
    const node = this.#waiting.add(range.base, range.base + BigInt(range.length), { resolve, group });
    group.add(node);
    try {
      await writeAll(
        this.#stream,
        encodeVhostIotlbMsg(VhostUserRequest.BackendIotlbMsg, {
          iova: range.base,
          size: kind === "miss" ? 0n : BigInt(range.length),
          uaddr: 0n,
          perm: access,
          type: kind === "miss" ? VhostIotlbType.Miss : VhostIotlbType.AccessFail,
        }),
      );
    } catch (e) {
      this.#wake(node);
      throw e;
    }
    await done;
  };

  /**
   * Reads and applies messages until the stream ends (or is closed on this side); then wakes every
   * waiting miss (their retry fails with `CannotResolve`). A message that fails a check is counted
   * in {@link VhostIotlbChannel.messagesRejected}, changes nothing, and the channel goes on; a
   * header with a wrong version or payload size rejects with `InvalidArgument`. Aborting
   * `options.signal` ends it the same way at once (the waiting misses are woken) and rejects with
   * the signal's reason; a read already given to the stream is abandoned, so the stream may be left
   * inside a message: close it.
   *
   * @example
   * ```ts ignore
   * await channel.run({ signal: controller.signal });
   * ```
   */
  async run(options?: AbortOptions): Promise<void> {
    const op = "VhostIotlbChannel.run";
    const signal = signalOf(options, op);
    const buf = new Uint8Array(VHOST_USER_HEADER_SIZE + VHOST_IOTLB_MSG_SIZE);
    const dv = new DataView(buf.buffer);
    try {
      if (signal?.aborted) throw signal.reason;
      while (await abortable(readExact(this.#stream, buf), signal)) {
        if (this.#ended) break; // disposed while the read was pending
        const flags = dv.getUint32(4, true), size = dv.getUint32(8, true);
        if ((flags & 0x3) !== VHOST_USER_VERSION || size !== VHOST_IOTLB_MSG_SIZE) {
          throw new InvalidArgumentError(
            op,
            "header",
            `flags ${hex(flags)} size ${size}`,
            `must be vhost-user version 1 with a ${VHOST_IOTLB_MSG_SIZE}-byte payload`,
          );
        }
        try {
          this.#receive(buf, flags);
        } catch (e) {
          if (!(e instanceof InvalidArgumentError)) throw e;
          this.#rejected++;
          this.#lastRejection = e;
        }
      }
    } finally {
      this.#end();
    }
  }

  /**
   * Ends the channel as if the stream had ended: every miss waiting for the front-end is woken
   * (its retry fails with `CannotResolve`) and later misses are not sent. The stream is the
   * caller's to close; a `run` still reading stops at its next message. Calling it again does
   * nothing.
   *
   * @example
   * ```ts ignore
   * using channel = new VhostIotlbChannel(conn, iotlb);
   * ```
   */
  [Symbol.dispose](): void {
    this.#end();
  }

  #end(): void {
    this.#ended = true;
    for (const node of this.#waiting.drain()) {
      node.value.group.delete(node);
      node.value.resolve();
    }
  }

  /** Checks the request code and flags of a received message, then applies it. */
  #receive(buf: Uint8Array, flags: number): void {
    const op = "VhostIotlbChannel.run";
    const { request, msg } = decodeVhostIotlbMsg(buf);
    if (request !== VhostUserRequest.IotlbMsg) {
      throw new InvalidArgumentError(op, "request", request, `must be VHOST_USER_IOTLB_MSG (22) from a front-end`);
    }
    if ((flags & ~(0x3 | VHOST_USER_NEED_REPLY)) !== 0) {
      const why = (flags & VHOST_USER_REPLY) !== 0 ? "a reply is not a request" : "only need-reply may be set";
      throw new InvalidArgumentError(op, "flags", flags, `must be version 1 and need-reply at most: ${why}`);
    }
    this.apply(msg);
  }

  /**
   * Applies one message from the front-end to the IOTLB and wakes the misses it answers. Every
   * field is checked first; a message that fails changes nothing.
   *
   * @example
   * ```ts ignore
   * channel.apply({ iova: 0x1000n, size: 0x1000n, uaddr: 0x8000n, perm: 3, type: VhostIotlbType.Update });
   * ```
   * @throws {InvalidArgumentError} for a message that is not an object, a type other than Update
   *   or Invalidate, a bad permission, a zero size, or a range whose IOVA or target runs past 2^64.
   */
  apply(msg: VhostIotlbMsg): void {
    const op = "VhostIotlbChannel.apply";
    // Checked here, so that a bad message is reported as this call's, not as the IOTLB's.
    if (msg === null || typeof msg !== "object") throw new InvalidArgumentError(op, "msg", msg, "must be an object");
    const { type } = msg;
    if (type !== VhostIotlbType.Update && type !== VhostIotlbType.Invalidate) {
      throw new InvalidArgumentError(op, "type", type, "must be Update (2) or Invalidate (3) from a front-end");
    }
    const iova = toAddress(msg.iova, op, "iova");
    const size = toAddress(msg.size, op, "size");
    const perm = toPermission(msg.perm, op, "perm");
    if (size === 0n) throw new InvalidArgumentError(op, "size", msg.size, `must not be 0 (message at ${hex(iova)})`);
    if (iova + size > U64_END) {
      throw new InvalidArgumentError(op, "size", msg.size, `${hex(size)} from iova ${hex(iova)} runs past 2^64`);
    }
    if (type === VhostIotlbType.Invalidate) {
      if (iova === 0n && size === U64_END) this.#iotlb.invalidateAll();
      // Sizes past 2^53 (a front-end flushing a large span) in pieces a `number` length holds.
      else for (let at = 0n; at < size; at += PIECE) this.#iotlb.invalidate(iova + at, pieceOf(size - at));
      this.#messages++;
      return;
    }
    const uaddr = toAddress(msg.uaddr, op, "uaddr");
    let mapped: unknown;
    try {
      mapped = this.#toTarget(uaddr);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new InvalidArgumentError(op, "uaddr", msg.uaddr, `was refused by toTarget: ${why}`);
    }
    const target = toAddress(mapped, op, "target");
    if (target + size > U64_END) {
      throw new InvalidArgumentError(
        op,
        "uaddr",
        msg.uaddr,
        `maps to ${hex(target)}, and ${hex(size)} from there runs past 2^64`,
      );
    }
    // The pieces of a mapping past 2^53 continue each other, so they merge back into one entry.
    for (let at = 0n; at < size; at += PIECE) this.#iotlb.setMapping(iova + at, target + at, pieceOf(size - at), perm);
    this.#messages++;
    for (const node of this.#waiting.startingIn(iova, iova + size)) this.#wake(node);
  }

  /** Resolves a waiting miss and forgets it; nothing happens if it was already woken. */
  #wake(node: IntervalNode<Waiter>): void {
    if (!this.#waiting.delete(node)) return;
    node.value.group.delete(node);
    node.value.resolve();
  }
}

/** `rest` as a length no longer than {@link PIECE}. */
function pieceOf(rest: bigint): number {
  return Number(rest < PIECE ? rest : PIECE);
}

/**
 * The front-end's reply to a miss, for tests and simulators that play the front-end: an `Update`
 * of `[iova, iova + size)` to `uaddr`.
 *
 * @example
 * ```ts
 * import { vhostIotlbUpdate } from "./vhost_iotlb.ts";
 * console.log(vhostIotlbUpdate(0x1000, 0x8000, 0x1000, 3).length); // 44
 * ```
 */
export function vhostIotlbUpdate(
  iova: AddressLike,
  uaddr: AddressLike,
  size: number,
  perm: Permission,
): Uint8Array<ArrayBuffer> {
  const op = "vhostIotlbUpdate";
  return encodeVhostIotlbMsg(VhostUserRequest.IotlbMsg, {
    iova: toAddress(iova, op, "iova"),
    size: BigInt(size),
    uaddr: toAddress(uaddr, op, "uaddr"),
    perm,
    type: VhostIotlbType.Update,
  });
}
