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

import { type AddressLike, toAddress } from "../address.ts";
import { InvalidArgumentError, type IovaRange } from "../errors.ts";
import { hex } from "../format.ts";
import type { AsyncMissHandler } from "./iommu.ts";
import type { Iotlb } from "./iotlb.ts";
import { type Permission, toPermission } from "./permissions.ts";

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
 * payload size or version, or a bad permission.
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
  return {
    request,
    flags,
    msg: {
      iova: dv.getBigUint64(12, true),
      size: dv.getBigUint64(20, true),
      uaddr: dv.getBigUint64(28, true),
      perm: perm as Permission,
      type: dv.getUint8(37),
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
  while (done < bytes.length) done += await stream.write(bytes.subarray(done));
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
    done += n;
  }
  return true;
}

/**
 * The back-end side of vhost-user's IOTLB protocol over a stream: {@link VhostIotlbChannel.missHandler}
 * sends a `Miss` for a failing range and resolves when the front-end's `Update`s cover it;
 * {@link VhostIotlbChannel.run} applies every `Update` and `Invalidate` the front-end sends to the
 * IOTLB as they arrive. A miss is one message per failing range start (the protocol asks by IOVA
 * and permission; the front-end answers with the whole mapping containing it).
 *
 * @example
 * ```ts ignore
 * const channel = new VhostIotlbChannel(conn, iommu.iotlb);
 * const iommu = new IotlbIommu(iotlb, { asyncMissHandler: channel.missHandler });
 * channel.run(); // until the stream ends
 * ```
 */
export class VhostIotlbChannel {
  readonly #stream: VhostStream;
  readonly #iotlb: Iotlb;
  readonly #toTarget: (uaddr: bigint) => bigint;
  /** Misses waiting for updates: re-checked after every update. */
  readonly #waiting = new Set<{ range: IovaRange; access: Permission; resolve: () => void }>();
  #messages = 0;
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
   * An {@link AsyncMissHandler} for `IotlbIommu`: sends one `Miss` (or `AccessFail`) and waits
   * until the range translates for `access` (or the stream ends).
   *
   * @example
   * ```ts ignore
   * new IotlbIommu(iotlb, { asyncMissHandler: channel.missHandler });
   * ```
   */
  readonly missHandler: AsyncMissHandler = async (range, access, kind, signal) => {
    const done = new Promise<void>((resolve) => {
      const w = { range, access, resolve };
      this.#waiting.add(w);
      // The asker gave up: forget the miss so an unanswered question does not stay here forever.
      signal.addEventListener("abort", () => {
        this.#waiting.delete(w);
        resolve();
      }, { once: true });
      if (this.#ended) this.#settle();
    });
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
    await done;
  };

  /**
   * Reads and applies messages until the stream ends (or is closed on this side); then wakes every
   * waiting miss (their retry fails with `CannotResolve`). A malformed message rejects with
   * `InvalidArgument`.
   *
   * @example
   * ```ts ignore
   * await channel.run();
   * ```
   */
  async run(): Promise<void> {
    const buf = new Uint8Array(VHOST_USER_HEADER_SIZE + VHOST_IOTLB_MSG_SIZE);
    try {
      while (await readExact(this.#stream, buf)) {
        const { msg } = decodeVhostIotlbMsg(buf);
        this.apply(msg);
      }
    } finally {
      this.#ended = true;
      for (const w of this.#waiting) w.resolve();
      this.#waiting.clear();
    }
  }

  /**
   * Applies one message from the front-end to the IOTLB and wakes the misses it answers.
   *
   * @example
   * ```ts ignore
   * channel.apply({ iova: 0x1000n, size: 0x1000n, uaddr: 0x8000n, perm: 3, type: VhostIotlbType.Update });
   * ```
   */
  apply(msg: VhostIotlbMsg): void {
    const op = "VhostIotlbChannel.apply";
    // Checked here, so that a bad message is reported as this call's, not as the IOTLB's.
    if (msg === null || typeof msg !== "object") throw new InvalidArgumentError(op, "msg", msg, "must be an object");
    const iova = toAddress(msg.iova, op, "iova");
    const size = toAddress(msg.size, op, "size");
    if (size === 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new InvalidArgumentError(op, "size", msg.size, `must be 1 to 2^53 - 1 (message at ${hex(iova)})`);
    }
    const len = Number(size);
    if (iova + size > 1n << 64n) {
      throw new InvalidArgumentError(op, "size", msg.size, `${hex(size)} from iova ${hex(iova)} runs past 2^64`);
    }
    if (msg.type === VhostIotlbType.Update) {
      const perm = toPermission(msg.perm, op, "perm");
      const target = toAddress(this.#toTarget(toAddress(msg.uaddr, op, "uaddr")), op, "target");
      if (target + size > 1n << 64n) {
        throw new InvalidArgumentError(
          op,
          "uaddr",
          msg.uaddr,
          `maps to ${hex(target)}, and ${hex(size)} from there runs past 2^64`,
        );
      }
      this.#iotlb.setMapping(iova, target, len, perm);
    } else if (msg.type === VhostIotlbType.Invalidate) {
      this.#iotlb.invalidate(iova, len);
    } else {
      throw new InvalidArgumentError(op, "type", msg.type, "must be Update (2) or Invalidate (3) from a front-end");
    }
    this.#messages++;
    this.#settle();
  }

  #settle(): void {
    for (const w of this.#waiting) {
      if (this.#ended || this.#iotlb.probe(w.range.base, w.range.length, w.access).ok) {
        this.#waiting.delete(w);
        w.resolve();
      }
    }
  }
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
