/**
 * The story `deno task guest` tells while a real guest runs on gmem's back-ends: it listens to the
 * back-ends' events and says, once each, what happens for the first time (the memory table, the
 * features, a ring starting, the first IOTLB miss and its answer, a request's fragments, an
 * invalidation revoking a buffer the device still held), and counts the rest.
 * @module
 */

import { Permissions, type VolatileSlice } from "../../../mod.ts";
import { type IommuMemory, SliceRevokedError } from "../../../iommu.ts";
import {
  type BackendEvent,
  featureMask,
  PROTOCOL_FEATURES_BIT,
  type VhostUserServer,
  VirtioFeature,
} from "../../../vhost_user.ts";
import { hex, permissionName } from "../text.ts";
import { renderMap, renderMapHtml } from "../render_map.ts";
import type { Narrator } from "../demo/narrator.ts";

const FEATURE_NAMES: [number, string][] = [
  [VirtioFeature.Version1, "VERSION_1"],
  [VirtioFeature.AccessPlatform, "IOMMU_PLATFORM"],
  [VirtioFeature.EventIdx, "EVENT_IDX"],
  [VirtioFeature.IndirectDesc, "INDIRECT_DESC"],
  [PROTOCOL_FEATURES_BIT, "PROTOCOL_FEATURES"],
];

function featureNames(f: bigint): string {
  const names = FEATURE_NAMES.filter(([bit]) => (f & featureMask(bit)) !== 0n).map(([, n]) => n);
  return `${hex(f)} (${names.join(", ")}${names.length > 0 ? ", " : ""}and device bits)`;
}

const mib = (n: bigint) => `${Number(n) / 2 ** 20} MiB`;

/** A buffer the story keeps a slice of, to show what an invalidation does to it. */
interface Held {
  iova: bigint;
  slice: VolatileSlice;
}

/** One device's narration. */
export class DeviceStory {
  readonly #say: Narrator;
  readonly #name: string;
  #server: VhostUserServer | undefined;
  #seen = new Set<string>();
  #held: Held | undefined;
  #firstMiss: bigint | undefined;
  /** The address-space picture, drawn while the first request with data was in the guest's hands. */
  svg: string | undefined;
  html: string | undefined;
  /** Dirty guest pages as [start, end) runs, taken when the ring stopped. */
  dirty: [bigint, bigint][] = [];

  constructor(say: Narrator, name: string) {
    this.#say = say;
    this.#name = name;
  }

  /** The server whose session the story looks into. */
  attach(server: VhostUserServer): void {
    this.#server = server;
  }

  #once(key: string): boolean {
    if (this.#seen.has(key)) return false;
    this.#seen.add(key);
    return true;
  }

  #iommuMemory(): IommuMemory | undefined {
    return this.#server?.backend.session?.iommuMemory;
  }

  /** Handles one event of the back-end (synchronously: the back-end waits for it). */
  event(e: BackendEvent): void {
    const say = this.#say, n = this.#name;
    switch (e.type) {
      case "connected":
        say.step(`${n}: QEMU connected to the back-end's socket`);
        break;
      case "features":
        if (this.#once(`features ${e.features}`)) {
          say.line(`${n}: the driver accepted features ${featureNames(e.features)}`);
        }
        break;
      case "memory-table":
        say.step(`${n}: the memory table arrived: the guest's RAM, passed as a memfd and mapped here`);
        for (const r of e.regions) {
          say.line(
            `guest physical [${hex(r.guestAddr)}, ${hex(r.guestAddr + r.size)}) ${mib(r.size)}: ` +
              `QEMU has it at user address ${hex(r.userAddr)}, gmem mapped it at host ${hex(r.hostAddr)}`,
          );
        }
        break;
      case "vring-started":
        say.line(
          `${n}: queue ${e.index} started, ${e.size} entries; descriptors at ${hex(e.desc)}, available ring ` +
            `${hex(e.avail)}, used ring ${hex(e.used)} (${e.iommu ? "I/O virtual addresses" : "guest physical"})`,
        );
        break;
      case "iotlb-miss":
        if (this.#once("miss")) {
          this.#firstMiss = e.iova;
          say.step(
            `${n}: the first IOTLB miss: the device needs IOVA ${hex(e.iova)} (${permissionName(e.perm)}), asks QEMU`,
          );
        }
        break;
      case "iotlb-update":
        if (
          this.#firstMiss !== undefined && e.iova <= this.#firstMiss && this.#firstMiss < e.iova + e.size &&
          this.#once("answer")
        ) {
          say.line(
            `QEMU answered: IOVA [${hex(e.iova)}, ${hex(e.iova + e.size)}) -> user ${hex(e.uaddr)} -> ` +
              `guest physical ${hex(e.gpa)}, ${permissionName(e.perm)}; the request goes on`,
          );
        }
        break;
      case "request":
        if (e.buffers.length >= 3 && this.#once("request")) this.#request(e);
        break;
      case "iotlb-invalidate":
        this.#invalidated(e.iova, e.size);
        break;
      case "vring-stopped": {
        const session = this.#server?.backend.session;
        for (const r of session?.memoryTable?.regions ?? []) {
          const runs = (r.region.bitmap as { dirtyRuns?: () => [number, number][] } | undefined)?.dirtyRuns?.() ?? [];
          for (const [s, len] of runs) this.dirty.push([r.guestAddr + BigInt(s), r.guestAddr + BigInt(s + len)]);
        }
        say.line(`${n}: queue ${e.index} stopped at available index ${e.base}`);
        break;
      }
      case "refused":
        say.key(`${n}: REFUSED on queue ${e.queue}: ${e.error.message}`);
        break;
      case "rejected":
        say.key(`${n}: message ${e.name} refused: ${e.error.message}`);
        break;
      case "disconnected":
        say.line(`${n}: QEMU disconnected${e.error ? `: ${e.error.message}` : ""}`);
        break;
    }
  }

  /** The first request with data: its fragments, how each translates, and the picture. */
  #request(e: Extract<BackendEvent, { type: "request" }>): void {
    const say = this.#say;
    say.step(`${this.#name}: a request's fragments (chain ${e.head}, ${e.written} bytes written back)`);
    const mem = this.#iommuMemory();
    for (const b of e.buffers) {
      const iova = BigInt(b.addr);
      const access = b.writable ? Permissions.Write : Permissions.Read;
      let where = "";
      if (mem !== undefined) {
        const x = mem.explain(iova, b.len, access);
        where = x.ok
          ? ` -> ${x.fragments.map((f) => `guest ${hex(f.gpa)} (host ${hex(f.hostAddress)})`).join(" + ")}`
          : ` -> ${x.failure?.message}`;
      }
      say.line(
        `${b.writable ? "device writes" : "device reads "} ${String(b.len).padStart(5)} bytes at ${b.addr}${where}`,
      );
    }
    const drawn = mem ?? this.#server?.backend.session?.memoryTable?.memory;
    if (drawn !== undefined) {
      const title = `the real guest's ${this.#name} DMA, request ${e.head} in flight`;
      this.svg = renderMap(drawn, { title });
      this.html = renderMapHtml(drawn, { title });
    }
    if (mem !== undefined) {
      // Keep a slice of the biggest buffer, as a device that wanted to look at it later would.
      const big = e.buffers.reduce((a, b) => (b.len > a.len ? b : a));
      try {
        const slice = mem.getSlices(BigInt(big.addr), Math.min(big.len, 512), Permissions.Read)[0];
        this.#held = { iova: BigInt(big.addr), slice };
        say.line(`the device keeps a slice of ${big.addr} (${slice.len} bytes) after completing the request`);
      } catch (err) {
        say.line(`(no slice of ${big.addr} could be kept: ${err instanceof Error ? err.message : err})`);
      }
    }
  }

  /** An invalidation: if it covers the held buffer, show the slice is revoked. */
  #invalidated(iova: bigint, size: bigint): void {
    const h = this.#held;
    if (h === undefined || h.iova < iova || h.iova >= iova + size) return;
    this.#held = undefined;
    const say = this.#say;
    say.step(
      `${this.#name}: the guest unmapped the buffer (strict mode): QEMU invalidates [${hex(iova)}, ${
        hex(iova + size)
      })`,
    );
    try {
      h.slice.readU8(0);
      say.key("the kept slice still reads: NOT revoked");
    } catch (e) {
      if (!(e instanceof SliceRevokedError)) throw e;
      say.key(`the slice the device kept is revoked: ${e.message}`);
    }
  }
}
