/**
 * Why an IOVA range does or does not translate: the range cut into pieces that translate, pieces
 * no IOTLB entry covers, pieces whose entry lacks the permission, and (with guest memory attached)
 * pieces that translate to guest physical addresses no RAM backs.
 * @module
 */

import { type GuestMemoryMmap, InvalidArgumentError, type Permission, Permissions } from "../../../mod.ts";
import type { Iotlb, IotlbLookup, IovaRange } from "../../../iommu.ts";
import { allows, hex, permissionName } from "../text.ts";
import { splitByRegions } from "./segments.ts";

/** One piece of an explained range. */
export interface Piece {
  /** First IOVA. */
  iova: bigint;
  /** Length in bytes. */
  length: number;
  /** `ok`: translates; `miss`: no entry; `denied`: the entry lacks the access; `unbacked`: no RAM at the target. */
  status: "ok" | "miss" | "denied" | "unbacked";
  /** The guest physical address of the first byte (not for misses). */
  gpa?: bigint;
  /** The covering entry's IOVA range and permission (not for misses). */
  entry?: { iova: bigint; size: bigint; perm: Permission };
}

/** The whole answer. */
export interface Explanation {
  /** Whether an access of the whole range would succeed. */
  ok: boolean;
  /** The IOTLB's own verdict. */
  lookup: IotlbLookup;
  /** The range in pieces, in IOVA order. */
  pieces: Piece[];
}

/**
 * Parses an access word: `read`/`r`, `write`/`w`, `rw`/`readwrite`, `none`; or a permission name.
 *
 * @example
 * ```ts
 * import { parseAccess } from "./explain.ts";
 * parseAccess("rw", "gmem translate"); // 3
 * ```
 * @throws {InvalidArgumentError} for anything else.
 */
export function parseAccess(text: string, op: string): Permission {
  const t = text.toLowerCase();
  if (t === "read" || t === "r") return Permissions.Read;
  if (t === "write" || t === "w") return Permissions.Write;
  if (t === "rw" || t === "readwrite" || t === "read-write") return Permissions.ReadWrite;
  if (t === "none" || t === "no") return Permissions.No;
  throw new InvalidArgumentError(op, "ACCESS", text, `must be read, write, rw or none, got "${text}"`);
}

/**
 * The word for an access in messages.
 *
 * @example
 * ```ts
 * import { accessWord } from "./explain.ts";
 * accessWord(3); // "read-write"
 * ```
 */
export function accessWord(access: Permission): string {
  return ["no", "read", "write", "read-write"][access];
}

/**
 * Explains the translation of `[iova, iova + len)` for `access` through `tlb`; with `mem`, also
 * checks that the guest physical targets are RAM.
 *
 * @example
 * ```ts
 * import { Permissions } from "../../../mod.ts";
 * import { Iotlb } from "../../../iommu.ts";
 * import { explain } from "./explain.ts";
 * const tlb = new Iotlb();
 * tlb.setMapping(0x10, 0x9010, 0x10, Permissions.Read);
 * explain(tlb, 0n, 0x20, Permissions.Read, undefined).pieces.map((p) => p.status); // ["miss", "ok"]
 * ```
 */
export function explain(
  tlb: Iotlb,
  iova: bigint,
  len: number,
  access: Permission,
  mem: GuestMemoryMmap | undefined,
): Explanation {
  const lookup = tlb.lookup(iova, len, access);
  const end = iova + BigInt(len);
  const pieces: Piece[] = [];
  let at = iova;
  for (const e of tlb.entries()) {
    const eEnd = e.iova + e.size;
    if (eEnd <= at) continue;
    if (e.iova >= end) break;
    if (e.iova > at) {
      pieces.push({ iova: at, length: Number(e.iova - at), status: "miss" });
      at = e.iova;
    }
    const stop = eEnd < end ? eEnd : end;
    const entry = { iova: e.iova, size: e.size, perm: e.perm };
    const gpa = e.target + (at - e.iova);
    const length = Number(stop - at);
    if (!allows(e.perm, access)) {
      pieces.push({ iova: at, length, status: "denied", gpa, entry });
    } else if (mem === undefined) {
      pieces.push({ iova: at, length, status: "ok", gpa, entry });
    } else {
      for (const s of splitByRegions(mem, gpa, length, "gmem explain")) {
        pieces.push({
          iova: at + (s.addr - gpa),
          length: s.length,
          status: s.region === undefined ? "unbacked" : "ok",
          gpa: s.addr,
          entry,
        });
      }
    }
    at = stop;
  }
  if (at < end) pieces.push({ iova: at, length: Number(end - at), status: "miss" });
  return { ok: lookup.ok && pieces.every((p) => p.status === "ok"), lookup, pieces };
}

/**
 * `[start, end)` of a range in hex.
 *
 * @example
 * ```ts
 * import { span } from "./explain.ts";
 * span(0x1000n, 0x10); // "[0x1000, 0x1010)"
 * ```
 */
export function span(start: bigint, length: number | bigint): string {
  return `[${hex(start)}, ${hex(start + BigInt(length))})`;
}

/**
 * The text lines of an explanation.
 *
 * @example
 * ```ts
 * // console.log(explanationText(x, 0x1000n, 0x20, Permissions.Read).join("\n"));
 * ```
 */
export function explanationText(x: Explanation, iova: bigint, len: number, access: Permission): string[] {
  const counts = (s: Piece["status"]) => x.pieces.filter((p) => p.status === s).length;
  const problems = [
    [counts("miss"), "unmapped"],
    [counts("denied"), `without ${accessWord(access)} permission`],
    [counts("unbacked"), "not backed by guest RAM"],
  ].filter(([n]) => (n as number) > 0).map(([n, what]) => `${n} ${what}`);
  const head = `IOVA ${span(iova, len)} ${accessWord(access)}: ${
    x.ok ? "translates" : `does not translate (${problems.join(", ")})`
  }`;
  const left = x.pieces.map((p) => span(p.iova, p.length));
  const width = Math.max(...left.map((l) => l.length));
  const lines = x.pieces.map((p, i) => {
    const e = p.entry;
    const via = e === undefined ? "" : `entry ${span(e.iova, e.size)} ${permissionName(e.perm)}`;
    const target = p.gpa === undefined ? "" : `GPA ${span(p.gpa, p.length)}`;
    const what = p.status === "miss"
      ? "no IOTLB entry"
      : p.status === "denied"
      ? `${via} does not allow ${accessWord(access)}`
      : p.status === "unbacked"
      ? `-> ${target}: no guest RAM there (${via})`
      : `-> ${target} (${via})`;
    return `  ${left[i].padEnd(width)}  ${p.status.padEnd(8)}  ${what}`;
  });
  return [head, ...lines];
}

/**
 * The JSON form of a piece.
 *
 * @example
 * ```ts
 * import { pieceJson } from "./explain.ts";
 * pieceJson({ iova: 0n, length: 16, status: "miss" }); // { iova: "0x0", length: 16, status: "miss" }
 * ```
 */
export function pieceJson(p: Piece): Record<string, unknown> {
  return {
    iova: hex(p.iova),
    length: p.length,
    status: p.status,
    ...(p.gpa === undefined ? {} : { gpa: hex(p.gpa) }),
    ...(p.entry === undefined
      ? {}
      : { entry: { iova: hex(p.entry.iova), size: hex(p.entry.size), perm: permissionName(p.entry.perm) } }),
  };
}

/**
 * The JSON form of IOVA ranges.
 *
 * @example
 * ```ts
 * import { rangesJson } from "./explain.ts";
 * rangesJson([{ base: 0x10n, length: 4 }]); // [{ iova: "0x10", length: 4 }]
 * ```
 */
export function rangesJson(ranges: readonly IovaRange[]): Array<{ iova: string; length: number }> {
  return ranges.map((r) => ({ iova: hex(r.base), length: r.length }));
}
