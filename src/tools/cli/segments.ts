/**
 * Cutting a guest physical range at region boundaries: which parts are RAM, which are holes.
 * @module
 */

import { type GuestMemoryMmap, type GuestRegionMmap, InvalidArgumentError, U64_LIMIT } from "../../../mod.ts";
import { hex } from "../text.ts";

/** A piece of a range: inside one region, or in a hole (`region` undefined). */
export interface Segment {
  /** First guest physical address. */
  addr: bigint;
  /** Length in bytes. */
  length: number;
  /** The region holding it, or undefined for a hole. */
  region: GuestRegionMmap | undefined;
}

/**
 * Splits `[addr, addr + len)` into consecutive segments, one per region crossed and one per hole.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../../mod.ts";
 * import { splitByRegions } from "./segments.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
 * splitByRegions(mem, 0x800n, 0x1000, "demo").map((s) => [s.addr, s.length, s.region !== undefined]);
 * // [[2048n, 2048, false], [4096n, 2048, true]]
 * ```
 * @throws {InvalidArgumentError} if the range runs past 2^64.
 */
export function splitByRegions(mem: GuestMemoryMmap, addr: bigint, len: number, op: string): Segment[] {
  const end = addr + BigInt(len);
  if (end > U64_LIMIT) {
    throw new InvalidArgumentError(op, "LEN", len, `${hex(len)} from ${hex(addr)} runs past 2^64`);
  }
  const out: Segment[] = [];
  let at = addr;
  for (const r of mem.regions()) {
    if (at >= end) break;
    const rEnd = r.lastAddr + 1n;
    if (rEnd <= at) continue;
    if (r.startAddr >= end) break;
    if (r.startAddr > at) {
      out.push({ addr: at, length: Number(r.startAddr - at), region: undefined });
      at = r.startAddr;
    }
    const stop = rEnd < end ? rEnd : end;
    out.push({ addr: at, length: Number(stop - at), region: r });
    at = stop;
  }
  if (at < end) out.push({ addr: at, length: Number(end - at), region: undefined });
  return out;
}

/**
 * The holes of a range, as `[addr, length]` pairs.
 *
 * @example
 * ```ts
 * import { holes } from "./segments.ts";
 * holes([{ addr: 0n, length: 16, region: undefined }]); // [{ addr: 0n, length: 16, region: undefined }]
 * ```
 */
export function holes(segments: readonly Segment[]): Segment[] {
  return segments.filter((s) => s.region === undefined);
}

/**
 * Reads `[addr, addr + len)` into a new buffer; bytes in holes stay 0 and are reported in
 * `backed` (1 for RAM, 0 for a hole).
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../../mod.ts";
 * import { readBacked } from "./segments.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
 * const { bytes, backed } = readBacked(mem, 0xff8n, 16, "demo");
 * console.log(bytes.length, backed[7], backed[8]); // 16 1 0
 * ```
 */
export function readBacked(
  mem: GuestMemoryMmap,
  addr: bigint,
  len: number,
  op: string,
): { bytes: Uint8Array; backed: Uint8Array } {
  const bytes = new Uint8Array(len);
  const backed = new Uint8Array(len);
  for (const s of splitByRegions(mem, addr, len, op)) {
    if (s.region === undefined) continue;
    const at = Number(s.addr - addr);
    mem.readSlice(bytes.subarray(at, at + s.length), s.addr);
    backed.fill(1, at, at + s.length);
  }
  return { bytes, backed };
}
