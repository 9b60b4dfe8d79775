/**
 * How a request through an IOMMU resolves, as data: the IOTLB entries it touches, the fragments
 * it becomes (IOVA, guest physical address, host address, region), and the first failure with its
 * reason. Side-effect free: it never asks a miss handler and counts no IOTLB traffic.
 * @module
 */

import { type AddressLike, toAddress, toLength, U64_LIMIT } from "../core/address.ts";
import { InvalidArgumentError, RegionClosedError } from "../core/errors.ts";
import { hex } from "../core/format.ts";
import type { GuestMemoryBackend, GuestMemoryRegion } from "../core/guest_memory_backend.ts";
import type { Iommu } from "./iommu.ts";
import type { Iotlb, IotlbEntry } from "./iotlb.ts";
import { allows, type Permission, permissionName, toPermission } from "../core/permissions.ts";

/** One fragment of an explained request: where a piece of it lands. */
export interface ExplainedFragment {
  /** First I/O virtual address (the guest physical address while translation is off). */
  iova: bigint;
  /** Length in bytes. */
  length: number;
  /** Guest physical address of the first byte. */
  gpa: bigint;
  /** Host virtual address of the first byte. */
  hostAddress: bigint;
  /** The region holding it (a `GuestRegionMmap` over the mmap backend). */
  region: GuestMemoryRegion<unknown>;
  /** The IOTLB entry that translated it (absent while translation is off or without an IOTLB). */
  entry?: IotlbEntry;
}

/** Why an explained request stops. */
export type ExplainReason = "unmapped" | "denied" | "unbacked" | "unresolved";

/** The first failure of an explained request. */
export interface ExplainedFailure {
  /** `unmapped`: no IOTLB entry; `denied`: the entry lacks the access; `unbacked`: no RAM at the
   * guest physical address; `unresolved`: an IOMMU without an IOTLB refused it. */
  reason: ExplainReason;
  /** Where the failing piece starts (IOVA). */
  iova: bigint;
  /** How long the failing piece is. */
  length: number;
  /** The guest physical address, for `unbacked`. */
  gpa?: bigint;
  /** The entry, for `denied` and `unbacked`. */
  entry?: IotlbEntry;
  /** The same in words. */
  message: string;
}

/** The whole answer of `IommuMemory.explain`. */
export interface Explanation {
  /** The request. */
  iova: bigint;
  /** The request's length. */
  length: number;
  /** The access asked for. */
  access: Permission;
  /** Whether translation was on. */
  translated: boolean;
  /** Whether the whole request would succeed. */
  ok: boolean;
  /** The IOTLB entries overlapping the request, whole, in IOVA order. */
  entries: IotlbEntry[];
  /** The fragments before the first failure (all of them when `ok`). */
  fragments: ExplainedFragment[];
  /** The first failure, if any. */
  failure?: ExplainedFailure;
}

/** What {@link explainRequest} needs to know about the memory it explains. */
export interface ExplainTarget {
  /** The physical memory. */
  backend: GuestMemoryBackend<GuestMemoryRegion<unknown>, unknown>;
  /** The IOMMU. */
  iommu: Iommu;
  /** Whether translation is on. */
  enabled: boolean;
}

function span(a: bigint, n: number | bigint): string {
  return `[${hex(a)}, ${hex(a + BigInt(n))})`;
}

/**
 * Explains `[iova, iova + len)` for `access` (the logic behind `IommuMemory.explain`).
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap, Permissions } from "../../mod.ts";
 * import { explainRequest, IotlbIommu } from "../../iommu.ts";
 * using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
 * const iommu = new IotlbIommu();
 * iommu.iotlb.setMapping(0x8000, 0x1000, 0x1000, Permissions.Read);
 * const x = explainRequest({ backend: ram, iommu, enabled: true }, 0x8ff0, 0x20, Permissions.Read);
 * console.log(x.ok, x.fragments.length, x.failure?.reason); // false 1 "unmapped"
 * ```
 * @throws {InvalidArgumentError} for a bad address, length or access, or a range past 2^64.
 */
export function explainRequest(target: ExplainTarget, iova: AddressLike, len: number, access: Permission): Explanation {
  const op = "IommuMemory.explain";
  const a = toAddress(iova, op, "iova");
  const n = toLength(len, op, "len");
  const want = toPermission(access, op, "access");
  if (a + BigInt(n) > U64_LIMIT) {
    throw new InvalidArgumentError(op, "len", len, `${hex(n)} from ${hex(a)} runs past 2^64`);
  }
  const out: Explanation = {
    iova: a,
    length: n,
    access: want,
    translated: target.enabled,
    ok: true,
    entries: [],
    fragments: [],
  };
  if (n === 0 && !target.enabled) return out;
  const fail = (f: ExplainedFailure): Explanation => {
    out.ok = false;
    out.failure = f;
    return out;
  };
  if (!target.enabled) {
    const bad = place(target.backend, out, a, a, n, undefined);
    return bad === undefined ? out : fail(bad);
  }
  const iotlb: Iotlb | undefined = target.iommu.iotlb;
  if (iotlb === undefined) {
    let ranges;
    try {
      ranges = target.iommu.translate(a, n, want);
    } catch (e) {
      return fail({
        reason: "unresolved",
        iova: a,
        length: n,
        message: `the IOMMU refused ${span(a, n)}: ${e instanceof Error ? e.message : String(e)}`,
      });
    }
    let at = a;
    for (const r of ranges) {
      const bad = place(target.backend, out, at, r.base, r.length, undefined);
      if (bad !== undefined) return fail(bad);
      at += BigInt(r.length);
    }
    return out;
  }
  if (n === 0) {
    // An empty request is translated too (see Iotlb.lookup): refused only inside an entry that
    // starts before it and denies the access.
    if (iotlb.probe(a, 0, want).ok) return out;
    const e = iotlb.entriesIn(a, 1)[0];
    out.entries = [e];
    return fail({
      reason: "denied",
      iova: a,
      length: 0,
      entry: e,
      message: `the entry ${span(e.iova, e.size)} allows ${permissionName(e.perm)}, not ${permissionName(want)}`,
    });
  }
  out.entries = iotlb.entriesIn(a, n);
  const end = a + BigInt(n);
  let at = a;
  for (const e of out.entries) {
    if (e.iova > at) {
      const gap = Number(e.iova - at);
      return fail({ reason: "unmapped", iova: at, length: gap, message: `no IOTLB entry maps ${span(at, gap)}` });
    }
    const eEnd = e.iova + e.size;
    const stop = eEnd < end ? eEnd : end;
    const length = Number(stop - at);
    if (!allows(e.perm, want)) {
      return fail({
        reason: "denied",
        iova: at,
        length,
        entry: e,
        message: `the entry ${span(e.iova, e.size)} allows ${permissionName(e.perm)}, not ${permissionName(want)}`,
      });
    }
    const bad = place(target.backend, out, at, e.target + (at - e.iova), length, e);
    if (bad !== undefined) return fail(bad);
    at = stop;
  }
  if (at < end) {
    const gap = Number(end - at);
    return fail({ reason: "unmapped", iova: at, length: gap, message: `no IOTLB entry maps ${span(at, gap)}` });
  }
  return out;
}

/** Adds the fragments of `length` bytes at `gpa` (IOVA `iova`); the failure if RAM runs out. */
function place(
  backend: GuestMemoryBackend<GuestMemoryRegion<unknown>, unknown>,
  out: Explanation,
  iova: bigint,
  gpa: bigint,
  length: number,
  entry: IotlbEntry | undefined,
): ExplainedFailure | undefined {
  let done = 0;
  while (done < length) {
    const g = gpa + BigInt(done);
    const region = backend.findRegion(g);
    if (region === undefined) {
      const left = length - done;
      return {
        reason: "unbacked",
        iova: iova + BigInt(done),
        length: left,
        gpa: g,
        entry,
        message: `no guest RAM at guest physical ${span(g, left)}`,
      };
    }
    if ((region as { mmap?: { closed?: unknown } }).mmap?.closed === true) {
      throw new RegionClosedError("IommuMemory.explain", `the region at guest physical ${hex(region.startAddr)}`);
    }
    const offset = g - region.startAddr;
    const take = Math.min(length - done, region.len - Number(offset));
    const fragment: ExplainedFragment = {
      iova: iova + BigInt(done),
      length: take,
      gpa: g,
      hostAddress: region.getHostAddress(offset),
      region,
    };
    if (entry !== undefined) fragment.entry = entry;
    out.fragments.push(fragment);
    done += take;
  }
  return undefined;
}
