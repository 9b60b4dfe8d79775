/**
 * What console.log prints for the objects that had no useful inspection: a region (287 lines of
 * typed arrays before), a mapping (`MmapRegion {}` before) and an IotlbIommu (its fields before).
 * The text is checked whole, through Deno.inspect, node:util's inspect and Bun.inspect where
 * they exist, which must agree.
 * @module
 */

import assert from "node:assert/strict";
import { inspect } from "node:util";
import { hex } from "../src/core/format.ts";
import { IotlbIommu } from "../src/iommu/iommu.ts";
import { Iotlb } from "../src/iommu/iotlb.ts";
import { Permissions } from "../src/core/permissions.ts";
import { GuestRegionMmap } from "../src/mmap/guest_region_mmap.ts";
import { MmapRegion } from "../src/mmap/mmap_region.ts";

/** The text every inspector available here prints for `value`, checked to be the same. */
function shown(value: unknown): string {
  const text = inspect(value);
  const denoInspect = (Deno as { inspect?: (v: unknown) => string }).inspect;
  if (typeof denoInspect === "function") assert.equal(denoInspect(value), text, "Deno.inspect agrees");
  const bun = (globalThis as { Bun?: { inspect(v: unknown): string } }).Bun;
  if (bun !== undefined) assert.equal(bun.inspect(value), text, "Bun.inspect agrees");
  return text;
}

Deno.test("inspect objects: a 1 MiB GuestRegionMmap prints one row: guest range, size, host, backing, protection, flags, dirty pages", () => {
  using r = GuestRegionMmap.fromRange(0x1000, 0x100000, undefined, { dirtyPageSize: 4096 });
  r.writeU8(0x2000, 1);
  const host = hex(r.mmap.hostAddress);
  assert.equal(
    shown(r),
    `GuestRegionMmap: 0000000000001000-0000000000100fff  1 MiB  host ${host}  anonymous  rw-  ` +
      "PRIVATE|ANONYMOUS|NORESERVE  dirty 1 of 256 pages (4 KiB)",
  );
  assert.deepEqual(JSON.parse(JSON.stringify(r)), {
    gpa: "0x1000",
    size: "0x100000",
    host,
    backing: "anonymous",
    prot: "rw-",
    flags: "PRIVATE|ANONYMOUS|NORESERVE",
    closed: false,
    dirty: { byteSize: 0x100000, pageSize: 4096, pages: 256, dirtyRuns: [[0x2000, 0x1000]], dirtyPages: 1 },
  });
  r.close();
  assert.equal(
    shown(r),
    "GuestRegionMmap: 0000000000001000-0000000000100fff  1 MiB  closed  anonymous  rw-  PRIVATE|ANONYMOUS|NORESERVE  dirty 1 of 256 pages (4 KiB)",
  );
});

Deno.test("inspect objects: an MmapRegion prints its size, host address, backing, rwx letters, flags, and pins", async () => {
  using anon = MmapRegion.anonymous(0x10000);
  assert.equal(
    shown(anon),
    `MmapRegion: 64 KiB at host ${hex(anon.hostAddress)}, anonymous, rw-, PRIVATE|ANONYMOUS|NORESERVE`,
  );
  anon.protect(1);
  assert.equal(
    shown(anon),
    `MmapRegion: 64 KiB at host ${hex(anon.hostAddress)}, anonymous, r--, PRIVATE|ANONYMOUS|NORESERVE`,
  );
  const fd = MmapRegion.memfd(0x2000);
  const memfd = fd.fd!;
  assert.equal(shown(fd), `MmapRegion: 8 KiB at host ${hex(fd.hostAddress)}, memfd fd ${memfd}, rw-, SHARED|NORESERVE`);
  // An asynchronous read in flight pins the mapping; inspection says so.
  using g = new GuestRegionMmap(MmapRegion.anonymous(0x1000), 0);
  let finish!: (n: number) => void;
  const reading = g.readVolatileFromAsync(0, { read: () => new Promise<number>((r) => finish = r) }, 16);
  assert.equal(
    shown(g.mmap),
    `MmapRegion: 4 KiB at host ${
      hex(g.mmap.hostAddress)
    }, anonymous, rw-, PRIVATE|ANONYMOUS|NORESERVE, pinned by 1 I/O in flight`,
  );
  finish(16);
  assert.equal(await reading, 16);
  fd.close();
  assert.equal(shown(fd), `MmapRegion: 8 KiB closed, file fd ${memfd}@0x0, rw-, SHARED|NORESERVE`);
});

Deno.test("inspect objects: an IotlbIommu prints its handlers, timeout, retries, miss counters and its IOTLB table", async () => {
  const iommu: IotlbIommu = new IotlbIommu(new Iotlb(), {
    asyncMissHandler: (range) => {
      iommu.iotlb.setMapping(range.base, 0x9000n, range.length, Permissions.Read);
      return Promise.resolve();
    },
    timeoutMs: 250,
    maxRetries: 2,
  });
  await iommu.translateAsync(0x1000, 0x1000, Permissions.Read);
  assert.equal(
    shown(iommu),
    [
      "IotlbIommu: async miss handler, timeout 250 ms, 2 retries; 1 asked, 0 merged, 0 timed out, 0 sync faults, 0 pending",
      "  Iotlb: 1 entry (unbounded); hits 1, misses 1, access failures 0, evictions 0",
      "    0000000000001000-0000000000001fff  ->  0000000000009000-0000000000009fff  4 KiB  Read",
    ].join("\n"),
  );
  iommu[Symbol.dispose]();
  assert.equal(
    shown(new IotlbIommu(undefined, { missHandler: () => {} })),
    "IotlbIommu: sync miss handler, timeout 5000 ms, 4 retries; 0 asked, 0 merged, 0 timed out, 0 sync faults, 0 pending\n" +
      "  Iotlb: 0 entries (unbounded); hits 0, misses 0, access failures 0, evictions 0",
  );
  assert.match(shown(iommu).split("\n")[0], /; disposed$/);
});
