/**
 * What `console.log` and `JSON.stringify` show for a `VolatileSlice`: its length, host address,
 * backing, protection, dirty log and guard, instead of the object's internals. Never throws: a
 * slice of a closed region is shown as closed.
 * @module
 */

import { PROT_EXEC, PROT_READ, PROT_WRITE } from "./constants.ts";
import type { DirtyLog } from "./dirty_log.ts";
import { hex } from "./format.ts";
import { sizeText } from "./inspect_text.ts";
import { BACKING, type Mapping } from "./mapping.ts";
import type { SliceGuard } from "./slice_guard.ts";

/**
 * The JSON form of a `VolatileSlice`.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x2000]]);
 * console.log(mem.getSlice(0x1000, 16).toJSON().regionOffset); // "0x1000"
 * ```
 */
export interface VolatileSliceJson {
  /** Length in bytes. */
  len: number;
  /** Host address of the first byte, `null` once the region is closed. */
  host: string | null;
  /** Offset of the first byte in its region's mapping. */
  regionOffset: string;
  /** The region's backing (`anonymous`, `memfd fd N`, `file …@OFFSET` or `borrowed`). */
  backing: string;
  /** The region's protection, `rwx` letters. */
  prot: string;
  /** Where byte 0 is recorded in the dirty log, or `null` when writes are not logged. */
  dirtyLogOffset: number | null;
  /** `none` for an ordinary slice; `valid` or `revoked` for one handed out through a translation. */
  guard: "none" | "valid" | "revoked";
  /** Whether its region was closed. */
  closed: boolean;
}

/**
 * The `rwx` letters of `PROT_*` bits.
 *
 * @example
 * ```ts
 * import { protLetters } from "./inspect_slice.ts";
 * console.log(protLetters(3)); // "rw-"
 * ```
 */
export function protLetters(prot: number): string {
  return `${prot & PROT_READ ? "r" : "-"}${prot & PROT_WRITE ? "w" : "-"}${prot & PROT_EXEC ? "x" : "-"}`;
}

/**
 * What a slice's inspection is made of (its private state, handed over by the slice itself).
 *
 * @example
 * ```ts
 * import type { SliceShape } from "./inspect_slice.ts";
 * const describe = (s: SliceShape) => `${s.len} bytes at offset ${s.offset}`;
 * ```
 */
export interface SliceShape {
  /** Length in bytes. */
  len: number;
  /** The mapping the slice lies in. */
  mmap: Mapping;
  /** Offset of byte 0 in the mapping. */
  offset: number;
  /** The dirty log and where byte 0 is recorded in it. */
  log: DirtyLog | undefined;
  /** See {@link SliceShape.log}. */
  logOffset: number;
  /** The revocation guard, if the slice came through a translation. */
  guard: SliceGuard | undefined;
  /** Whether the slice was disposed. */
  disposed?: boolean;
}

function guardState(guard: SliceGuard | undefined): "none" | "valid" | "revoked" {
  if (guard === undefined) return "none";
  try {
    return guard.isValid() ? "valid" : "revoked";
  } catch {
    return "revoked";
  }
}

/**
 * The JSON form of a slice.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x2000]]);
 * console.log(JSON.stringify(mem.getSlice(0x10, 4)).includes('"guard":"none"')); // true
 * ```
 */
export function sliceJson(s: SliceShape): VolatileSliceJson {
  const closed = s.mmap.closed;
  return {
    len: s.len,
    host: closed ? null : hex(s.mmap.hostAddress + BigInt(s.offset)),
    regionOffset: hex(s.offset),
    backing: s.mmap[BACKING](),
    prot: protLetters(s.mmap.prot),
    dirtyLogOffset: s.log === undefined ? null : s.logOffset,
    guard: guardState(s.guard),
    closed,
  };
}

/**
 * The one line `console.log` shows for a slice.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x2000]], { dirtyPageSize: 4096 });
 * console.log(Deno.inspect(mem.getSlice(0x1000, 16)));
 * // VolatileSlice: 16 B at host 0x7f…, offset 0x1000 of anonymous memory, rw-, dirty log at 0x1000
 * ```
 */
export function inspectSlice(s: SliceShape): string {
  const j = sliceJson(s);
  const where = j.closed ? "in a closed region" : `at host ${j.host}`;
  const backing = j.backing === "anonymous" || j.backing === "borrowed" ? `${j.backing} memory` : j.backing;
  const parts = [
    `VolatileSlice: ${sizeText(j.len)} ${where}, offset ${j.regionOffset} of ${backing}`,
    j.prot,
    j.dirtyLogOffset === null ? "not dirty-logged" : `dirty log at ${hex(j.dirtyLogOffset)}`,
  ];
  if (s.disposed === true) parts.push("DISPOSED");
  else if (j.guard === "valid") parts.push("translation valid");
  else if (j.guard === "revoked") parts.push("REVOKED (its translation changed)");
  return parts.join(", ");
}
