/**
 * The vhost-user wire format (QEMU's `docs/interop/vhost-user.rst`): request codes, header flags,
 * feature bits, and the payloads the back-end reads and writes, each decoded with its size checked
 * before a field is read. All numbers are little-endian (the host's order on x86).
 * @module
 */

import { defineLayout, type StructLayout } from "../core/struct_layout.ts";
import { VhostUserError } from "./vhost_user_errors.ts";

/** Requests a front-end sends (`VHOST_USER_*`). */
export const FrontendRequest = {
  GetFeatures: 1,
  SetFeatures: 2,
  SetOwner: 3,
  ResetOwner: 4,
  SetMemTable: 5,
  SetLogBase: 6,
  SetLogFd: 7,
  SetVringNum: 8,
  SetVringAddr: 9,
  SetVringBase: 10,
  GetVringBase: 11,
  SetVringKick: 12,
  SetVringCall: 13,
  SetVringErr: 14,
  GetProtocolFeatures: 15,
  SetProtocolFeatures: 16,
  GetQueueNum: 17,
  SetVringEnable: 18,
  SendRarp: 19,
  NetSetMtu: 20,
  SetBackendReqFd: 21,
  IotlbMsg: 22,
  SetVringEndian: 23,
  GetConfig: 24,
  SetConfig: 25,
  GetInflightFd: 31,
  SetInflightFd: 32,
  ResetDevice: 34,
  VringKick: 35,
  GetMaxMemSlots: 36,
  AddMemReg: 37,
  RemMemReg: 38,
  SetStatus: 39,
  GetStatus: 40,
} as const;

/** Requests a back-end sends on the back-end channel (`VHOST_USER_BACKEND_*`). */
export const BackendRequest = {
  IotlbMsg: 1,
  ConfigChangeMsg: 2,
} as const;

const NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(FrontendRequest).map(([k, v]) => [v, k.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase()]),
);

/**
 * The name of a front-end request code, e.g. `"SET_VRING_KICK"`, or `"REQUEST_99"` for an unknown one.
 *
 * @example
 * ```ts
 * import { requestName } from "./protocol.ts";
 * console.log(requestName(12)); // "SET_VRING_KICK"
 * ```
 */
export function requestName(request: number): string {
  return NAMES[request] ?? `REQUEST_${request}`;
}

/** Protocol feature bit numbers (`VHOST_USER_PROTOCOL_F_*`). */
export const ProtocolFeature = {
  Mq: 0,
  LogShmfd: 1,
  Rarp: 2,
  ReplyAck: 3,
  Mtu: 4,
  BackendReq: 5,
  CrossEndian: 6,
  CryptoSession: 7,
  Pagefault: 8,
  Config: 9,
  BackendSendFd: 10,
  HostNotifier: 11,
  InflightShmfd: 12,
  ResetDevice: 13,
  InbandNotifications: 14,
  ConfigureMemSlots: 15,
  Status: 16,
} as const;

/** `VHOST_USER_F_PROTOCOL_FEATURES`: the feature bit that says protocol features exist. */
export const PROTOCOL_FEATURES_BIT = 30;
/** The header: request u32, flags u32, size u32. */
export const HEADER_SIZE = 12;
/**
 * The message header as a struct layout: request code, flags, payload size (u32 each,
 * little-endian); {@link HEADER_SIZE} bytes.
 *
 * @example
 * ```ts
 * import { VHOST_USER_HEADER_LAYOUT } from "../../vhost_user.ts";
 * console.log(VHOST_USER_HEADER_LAYOUT.encode({ request: 1, flags: 1, size: 0 }).length); // 12
 * ```
 */
export const VHOST_USER_HEADER_LAYOUT: StructLayout<{ request: number; flags: number; size: number }> = defineLayout(
  "VhostUserHeader",
  { request: [0, "u32"], flags: [4, "u32"], size: [8, "u32"] },
);

/** The protocol version in the low two bits of the flags. */
export const VERSION = 0x1;
/** Flag: this message is a reply. */
export const FLAG_REPLY = 0x4;
/** Flag: the sender wants a reply (REPLY_ACK). */
export const FLAG_NEED_REPLY = 0x8;
/**
 * The longest payload accepted: a config-space message (12 + 256 bytes) is the largest request a
 * back-end serves, a memory table of 8 regions 264 bytes. Longer is refused before it is read.
 */
export const MAX_PAYLOAD = 4096;
/** Regions a memory table may have (`VHOST_MEMORY_BASELINE_NREGIONS`). */
export const MAX_MEMORY_REGIONS = 8;
/** Descriptors one message may carry. */
export const MAX_FDS = 8;
/** SET_VRING_KICK/CALL/ERR: bit 8 of the payload says no descriptor came. */
export const VRING_NOFD = 0x100;

/** One received message. */
export interface VhostUserMessage {
  /** The request code. */
  request: number;
  /** The header flags (version, reply, need-reply). */
  flags: number;
  /** The payload (its size is the header's). */
  payload: Uint8Array<ArrayBuffer>;
  /** Descriptors received with it; whoever handles the message closes those it does not keep. */
  fds: number[];
}

/**
 * The header and payload of a message, ready to send.
 *
 * @example
 * ```ts
 * import { encodeMessage, FrontendRequest } from "./protocol.ts";
 * console.log(encodeMessage(FrontendRequest.GetFeatures, 0).length); // 12
 * ```
 */
export function encodeMessage(request: number, flags: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(HEADER_SIZE + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, request, true);
  dv.setUint32(4, VERSION | flags, true);
  dv.setUint32(8, payload.length, true);
  out.set(payload, HEADER_SIZE);
  return out;
}

/**
 * A u64 payload.
 *
 * @example
 * ```ts
 * import { u64Payload } from "./protocol.ts";
 * console.log(u64Payload(1n).length); // 8
 * ```
 */
export function u64Payload(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, value), true);
  return out;
}

/**
 * A vring state payload (index u32, num u32).
 *
 * @example
 * ```ts
 * import { statePayload } from "./protocol.ts";
 * console.log(statePayload(0, 256).length); // 8
 * ```
 */
export function statePayload(index: number, num: number): Uint8Array {
  const out = new Uint8Array(8);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, index, true);
  dv.setUint32(4, num, true);
  return out;
}

function sized(op: string, msg: VhostUserMessage, size: number): DataView {
  if (msg.payload.length !== size) {
    throw new VhostUserError(
      op,
      "PayloadSize",
      `${requestName(msg.request)} carries ${msg.payload.length} payload bytes, not ${size}`,
      msg.request,
    );
  }
  return new DataView(msg.payload.buffer, msg.payload.byteOffset, msg.payload.byteLength);
}

/**
 * The u64 of a message, its size checked.
 *
 * @example
 * ```ts ignore
 * const features = readU64(op, msg);
 * ```
 */
export function readU64(op: string, msg: VhostUserMessage): bigint {
  return sized(op, msg, 8).getBigUint64(0, true);
}

/**
 * The vring state (index, num) of a message, its size checked.
 *
 * @example
 * ```ts ignore
 * const { index, num } = readState(op, msg);
 * ```
 */
export function readState(op: string, msg: VhostUserMessage): { index: number; num: number } {
  const dv = sized(op, msg, 8);
  return { index: dv.getUint32(0, true), num: dv.getUint32(4, true) };
}

/** A vring address description. */
export interface VringAddress {
  /** The queue. */
  index: number;
  /** `VHOST_VRING_F_LOG` (bit 0) or nothing. */
  flags: number;
  /** The descriptor table. */
  desc: bigint;
  /** The used ring. */
  used: bigint;
  /** The available ring. */
  avail: bigint;
  /** Where used-ring writes are logged. */
  log: bigint;
}

/**
 * The vring addresses of a SET_VRING_ADDR, its size checked.
 *
 * @example
 * ```ts ignore
 * const { desc, avail, used } = readVringAddress(op, msg);
 * ```
 */
export function readVringAddress(op: string, msg: VhostUserMessage): VringAddress {
  const dv = sized(op, msg, 40);
  return {
    index: dv.getUint32(0, true),
    flags: dv.getUint32(4, true),
    desc: dv.getBigUint64(8, true),
    used: dv.getBigUint64(16, true),
    avail: dv.getBigUint64(24, true),
    log: dv.getBigUint64(32, true),
  };
}

/** One region of a memory table. */
export interface MemoryRegionDescription {
  /** Guest physical address. */
  guestAddr: bigint;
  /** Bytes. */
  size: bigint;
  /** The front-end's own (user) address of the region. */
  userAddr: bigint;
  /** Where the region starts in its file descriptor. */
  mmapOffset: bigint;
}

/**
 * The regions of a SET_MEM_TABLE: a count from 1 to {@link MAX_MEMORY_REGIONS} and exactly that many
 * 32-byte regions.
 *
 * @example
 * ```ts ignore
 * const regions = readMemoryTable(op, msg);
 * ```
 */
export function readMemoryTable(op: string, msg: VhostUserMessage): MemoryRegionDescription[] {
  const p = msg.payload;
  if (p.length < 8) {
    throw new VhostUserError(
      op,
      "PayloadSize",
      `SET_MEM_TABLE carries ${p.length} payload bytes, not 8 + 32 per region`,
      msg.request,
    );
  }
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const n = dv.getUint32(0, true);
  if (n < 1 || n > MAX_MEMORY_REGIONS) {
    throw new VhostUserError(
      op,
      "MemoryTable",
      `a memory table of ${n} regions (1 to ${MAX_MEMORY_REGIONS})`,
      msg.request,
    );
  }
  if (p.length !== 8 + 32 * n) {
    throw new VhostUserError(
      op,
      "PayloadSize",
      `SET_MEM_TABLE of ${n} regions carries ${p.length} payload bytes, not ${8 + 32 * n}`,
      msg.request,
    );
  }
  const regions: MemoryRegionDescription[] = [];
  for (let i = 0; i < n; i++) {
    const o = 8 + 32 * i;
    regions.push({
      guestAddr: dv.getBigUint64(o, true),
      size: dv.getBigUint64(o + 8, true),
      userAddr: dv.getBigUint64(o + 16, true),
      mmapOffset: dv.getBigUint64(o + 24, true),
    });
  }
  return regions;
}

/**
 * A SET_MEM_TABLE payload, for front-ends in tests and simulators.
 *
 * @example
 * ```ts
 * import { memoryTablePayload } from "./protocol.ts";
 * console.log(memoryTablePayload([{ guestAddr: 0n, size: 4096n, userAddr: 0x7f0000000000n, mmapOffset: 0n }]).length); // 40
 * ```
 */
export function memoryTablePayload(regions: readonly MemoryRegionDescription[]): Uint8Array {
  const out = new Uint8Array(8 + 32 * regions.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, regions.length, true);
  regions.forEach((r, i) => {
    const o = 8 + 32 * i;
    dv.setBigUint64(o, r.guestAddr, true);
    dv.setBigUint64(o + 8, r.size, true);
    dv.setBigUint64(o + 16, r.userAddr, true);
    dv.setBigUint64(o + 24, r.mmapOffset, true);
  });
  return out;
}

/**
 * A SET_VRING_ADDR payload, for front-ends in tests and simulators.
 *
 * @example
 * ```ts
 * import { vringAddressPayload } from "./protocol.ts";
 * console.log(vringAddressPayload({ index: 0, flags: 0, desc: 0n, used: 0n, avail: 0n, log: 0n }).length); // 40
 * ```
 */
export function vringAddressPayload(a: VringAddress): Uint8Array {
  const out = new Uint8Array(40);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, a.index, true);
  dv.setUint32(4, a.flags, true);
  dv.setBigUint64(8, a.desc, true);
  dv.setBigUint64(16, a.used, true);
  dv.setBigUint64(24, a.avail, true);
  dv.setBigUint64(32, a.log, true);
  return out;
}

/** A config-space access (GET_CONFIG / SET_CONFIG). */
export interface ConfigAccess {
  /** The first config-space byte. */
  offset: number;
  /** How many bytes. */
  size: number;
  /** 0: a guest's write; 1: live migration. */
  flags: number;
  /** The bytes after the 12-byte head (for GET_CONFIG: as many as `size`, their content unused). */
  data: Uint8Array;
}

/**
 * The config-space access of a message: the 12-byte head and `size` bytes after it.
 *
 * @example
 * ```ts ignore
 * const { offset, size } = readConfig(op, msg);
 * ```
 */
export function readConfig(op: string, msg: VhostUserMessage): ConfigAccess {
  const p = msg.payload;
  if (p.length < 12) {
    throw new VhostUserError(
      op,
      "PayloadSize",
      `${requestName(msg.request)} carries ${p.length} payload bytes, fewer than 12`,
      msg.request,
    );
  }
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const offset = dv.getUint32(0, true), size = dv.getUint32(4, true), flags = dv.getUint32(8, true);
  if (p.length !== 12 + size) {
    throw new VhostUserError(
      op,
      "PayloadSize",
      `${requestName(msg.request)} of ${size} config bytes carries ${p.length} payload bytes, not ${12 + size}`,
      msg.request,
    );
  }
  return { offset, size, flags, data: p.subarray(12) };
}

/**
 * A config-space payload: the head and `data`.
 *
 * @example
 * ```ts
 * import { configPayload } from "./protocol.ts";
 * console.log(configPayload(0, 0, new Uint8Array(8)).length); // 20
 * ```
 */
export function configPayload(offset: number, flags: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, offset, true);
  dv.setUint32(4, data.length, true);
  dv.setUint32(8, flags, true);
  out.set(data, 12);
  return out;
}
