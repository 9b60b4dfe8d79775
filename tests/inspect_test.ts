import assert from "node:assert/strict";
import { inspect } from "node:util";
import { AtomicBitmap } from "../src/bitmap/atomic_bitmap.ts";
import { hex } from "../src/core/format.ts";
import { rangeText, sizeText } from "../src/core/inspect_text.ts";
import { IotlbIommu } from "../src/iommu/iommu.ts";
import { IommuMemory } from "../src/iommu/iommu_memory.ts";
import { Iotlb } from "../src/iommu/iotlb.ts";
import { Permissions } from "../src/core/permissions.ts";
import { GuestMemoryMmap } from "../src/mmap/guest_memory_mmap.ts";
import { GuestRegionMmap } from "../src/mmap/guest_region_mmap.ts";
import { MmapRegion } from "../src/mmap/mmap_region.ts";

const { Read, Write, ReadWrite } = Permissions;

/** What console.log prints: Deno's inspector where there is one, node:util's (Bun) otherwise. */
function shown(value: unknown): string {
  const denoInspect = (Deno as { inspect?: (v: unknown) => string }).inspect;
  const text = inspect(value);
  if (typeof denoInspect === "function") assert.equal(denoInspect(value), text, "Deno.inspect and util.inspect agree");
  return text;
}

/** Pads every cell but the last of each row to its column's width, two spaces apart (the layout under test). */
function table(rows: string[][], indent: string): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => widths[i] = Math.max(widths[i] ?? 0, c.length));
  return rows.map((r) => (indent + r.map((c, i) => c.padEnd(widths[i])).join("  ")).trimEnd());
}

/** 64 KiB of memfd RAM at 0 and 16 KiB anonymous at 1 MiB, both tracking 4 KiB dirty pages. */
function layout(): { mem: GuestMemoryMmap; fd: number; hosts: [bigint, bigint] } {
  const a = new GuestRegionMmap(MmapRegion.memfd(0x10000, { name: "inspect-test" }), 0, new AtomicBitmap(0x10000));
  const b = GuestRegionMmap.fromRange(0x100000, 0x4000, undefined, { dirtyPageSize: 4096 });
  const mem = GuestMemoryMmap.fromRegions([a, b]);
  return { mem, fd: a.mmap.fd!, hosts: [a.mmap.hostAddress, b.mmap.hostAddress] };
}

function memoryRows(fd: number, hosts: [bigint, bigint], dirty: [number, number], indent: string): string[] {
  return table([
    [
      "0000000000000000-000000000000ffff",
      "64 KiB",
      `host ${hex(hosts[0])}`,
      `memfd fd ${fd}`,
      "rw-",
      "SHARED|NORESERVE",
      `dirty ${dirty[0]} of 16 pages (4 KiB)`,
    ],
    ["0000000000010000-00000000000fffff", "960 KiB", "(hole)"],
    [
      "0000000000100000-0000000000103fff",
      "16 KiB",
      `host ${hex(hosts[1])}`,
      "anonymous",
      "rw-",
      "PRIVATE|ANONYMOUS|NORESERVE",
      `dirty ${dirty[1]} of 4 pages (4 KiB)`,
    ],
  ], indent);
}

Deno.test("inspect: guest memory prints an mtree-like table of regions and holes with host, backing and dirty pages", () => {
  const { mem, fd, hosts } = layout();
  using _ = mem;
  mem.writeU32(0x1ffe, 7); // two pages of the first region
  mem.writeU8(0x103fff, 1); // the last page of the second
  assert.equal(
    shown(mem),
    ["GuestMemoryMmap: 2 regions, 80 KiB of RAM, 1 hole", ...memoryRows(fd, hosts, [2, 1], "  ")].join("\n"),
  );
});

Deno.test("inspect: guest memory's toJSON lists regions with hex addresses, backing and bitmaps, and the holes", () => {
  const { mem, fd, hosts } = layout();
  using _ = mem;
  mem.writeU8(0x3000, 1);
  assert.deepEqual(JSON.parse(JSON.stringify(mem)), {
    size: "0x14000",
    regions: [
      {
        gpa: "0x0",
        size: "0x10000",
        host: hex(hosts[0]),
        backing: `memfd fd ${fd}`,
        prot: "rw-",
        flags: "SHARED|NORESERVE",
        closed: false,
        dirty: { byteSize: 0x10000, pageSize: 4096, pages: 16, dirtyRuns: [[0x3000, 0x1000]], dirtyPages: 1 },
      },
      {
        gpa: "0x100000",
        size: "0x4000",
        host: hex(hosts[1]),
        backing: "anonymous",
        prot: "rw-",
        flags: "PRIVATE|ANONYMOUS|NORESERVE",
        closed: false,
        dirty: { byteSize: 0x4000, pageSize: 4096, pages: 4, dirtyRuns: [], dirtyPages: 0 },
      },
    ],
    holes: [{ gpa: "0x10000", size: "0xf0000" }],
  });
});

Deno.test("inspect: closed memory is shown as closed instead of throwing", () => {
  const mem = GuestMemoryMmap.fromRanges([[0x2000, 0x1000]]);
  const slice = mem.getSlice(0x2000, 0x10);
  mem.close();
  assert.equal(
    shown(mem),
    [
      "GuestMemoryMmap: 1 region, 4 KiB of RAM, 0 holes",
      "  0000000000002000-0000000000002fff  4 KiB  closed  anonymous  rw-  PRIVATE|ANONYMOUS|NORESERVE  no dirty log",
    ].join("\n"),
  );
  assert.equal(mem.toJSON().regions[0].host, null);
  assert.equal(mem.toJSON().regions[0].closed, true);
  assert.equal(
    shown(slice),
    "VolatileSlice: 16 B in a closed region, offset 0x0 of anonymous memory, rw-, not dirty-logged",
  );
});

Deno.test("inspect: a slice prints its size, host address, region offset, backing and dirty-log offset", () => {
  const { mem, fd, hosts } = layout();
  using _ = mem;
  const s = mem.getSlice(0x2010, 0x20);
  assert.equal(
    shown(s),
    `VolatileSlice: 32 B at host ${hex(hosts[0] + 0x2010n)}, offset 0x2010 of memfd fd ${fd}, rw-, dirty log at 0x2010`,
  );
  assert.deepEqual(s.toJSON(), {
    len: 32,
    host: hex(hosts[0] + 0x2010n),
    regionOffset: "0x2010",
    backing: `memfd fd ${fd}`,
    prot: "rw-",
    dirtyLogOffset: 0x2010,
    guard: "none",
    closed: false,
  });
  const sub = mem.getSlice(0x100000, 0x4000).subslice(0x1000, 0x1000);
  assert.equal(sub.toJSON().regionOffset, "0x1000");
  assert.equal(sub.toJSON().dirtyLogOffset, 0x1000);
});

Deno.test("inspect: a slice through the IOMMU says whether its translation still holds", () => {
  using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x40000, 0x3000, 0x1000, ReadWrite);
  const dev = new IommuMemory(ram, iommu, { logBy: "gpa" });
  const s = dev.getSlice(0x40100, 0x100, Write);
  const host = hex(ram.regions()[0].mmap.hostAddress + 0x3100n);
  const line = `VolatileSlice: 256 B at host ${host}, offset 0x3100 of anonymous memory, rw-, not dirty-logged`;
  assert.equal(shown(s), `${line}, translation valid`);
  assert.equal(s.toJSON().guard, "valid");
  iommu.iotlb.invalidate(0x40000, 0x1000);
  assert.equal(shown(s), `${line}, REVOKED (its translation changed)`);
  assert.equal(s.toJSON().guard, "revoked");
});

Deno.test("inspect: an IOTLB prints its limit, counters and one row per entry", () => {
  const tlb = new Iotlb({ maxEntries: 4, eviction: "lru" });
  tlb.setMapping(0x10000000, 0x123000, 0x1000, Read);
  tlb.setMapping(0x20000000, 0x1_0000_2000n, 0x3000, Write);
  tlb.setMapping(2n ** 64n - 0x1000n, 0, 0x1000, ReadWrite);
  tlb.lookup(0x10000000, 4, Read);
  tlb.lookup(0x30000000, 4, Read);
  tlb.lookup(0x10000000, 4, Write);
  assert.equal(
    shown(tlb),
    [
      "Iotlb: 3 entries (at most 4, lru eviction); hits 1, misses 1, access failures 1, evictions 0",
      "  0000000010000000-0000000010000fff  ->  0000000000123000-0000000000123fff  4 KiB   Read",
      "  0000000020000000-0000000020002fff  ->  0000000100002000-0000000100004fff  12 KiB  Write",
      "  fffffffffffff000-ffffffffffffffff  ->  0000000000000000-0000000000000fff  4 KiB   ReadWrite",
    ].join("\n"),
  );
  assert.equal(shown(new Iotlb()), "Iotlb: 0 entries (unbounded); hits 0, misses 0, access failures 0, evictions 0");
});

Deno.test("inspect: an IOTLB with many entries lists 32 and says how many more", () => {
  const tlb = new Iotlb();
  for (let i = 0; i < 40; i++) tlb.setMapping(i * 0x2000, i * 0x2000, 0x1000, Read);
  const lines = shown(tlb).split("\n");
  assert.equal(lines.length, 1 + 32 + 1);
  assert.equal(lines[0], "Iotlb: 40 entries (unbounded); hits 0, misses 0, access failures 0, evictions 0");
  assert.equal(lines[32], "  000000000003e000-000000000003efff  ->  000000000003e000-000000000003efff  4 KiB  Read");
  assert.equal(lines[33], "  … 8 more entries");
});

Deno.test("inspect: an IOTLB's toJSON is unchanged when unbounded and adds the limit when bounded", () => {
  const open = new Iotlb();
  open.setMapping(0x1000, 0x9000, 0x1000, ReadWrite);
  assert.deepEqual(JSON.parse(JSON.stringify(open)), {
    entries: [{ iova: "0x1000", target: "0x9000", size: "0x1000", perm: "ReadWrite" }],
    counters: { hits: 0, misses: 0, accessFailures: 0, evictions: 0, entries: 1 },
  });
  const bounded = new Iotlb({ maxEntries: 2048, eviction: "random" });
  assert.deepEqual(bounded.toJSON(), {
    entries: [],
    counters: { hits: 0, misses: 0, accessFailures: 0, evictions: 0, entries: 0 },
    maxEntries: 2048,
    eviction: "random",
  });
  assert.equal(bounded.maxEntries, 2048);
  assert.equal(open.maxEntries, Infinity);
  assert.equal(open.eviction, "fifo");
});

Deno.test("inspect: IOMMU memory prints the dirty-log addressing, the IOTLB, the miss counters and the memory", () => {
  const { mem, fd, hosts } = layout();
  using _ = mem;
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x80000000, 0x100000, 0x2000, ReadWrite);
  const bitmap = new AtomicBitmap(2 ** 32, 4096);
  const dev = new IommuMemory(mem, iommu, { bitmap, logBy: "iova" });
  dev.writeU32(0x80001000, 1); // logged by IOVA only: the regions' bitmaps stay clean
  assert.equal(
    shown(dev),
    [
      "IommuMemory: translation on, dirty log by IOVA (own bitmap of 4 GiB in 4 KiB pages: 1 dirty page)",
      "  IOTLB of IotlbIommu: 1 entry (unbounded); hits 1, misses 0, access failures 0, evictions 0",
      "    0000000080000000-0000000080001fff  ->  0000000000100000-0000000000101fff  8 KiB  ReadWrite",
      "  miss handling: 0 asked, 0 merged, 0 timed out, 0 sync faults, 0 pending",
      "  physical memory: 2 regions, 80 KiB of RAM, 1 hole",
      ...memoryRows(fd, hosts, [0, 0], "    "),
    ].join("\n"),
  );
  const gpaDev = new IommuMemory(mem, iommu, { logBy: "gpa", enabled: false });
  assert.equal(
    shown(gpaDev).split("\n")[0],
    "IommuMemory: translation off, dirty log by guest physical address (the regions' bitmaps)",
  );
});

Deno.test("inspect: IOMMU memory's toJSON has the translation state, bitmap, IOMMU counters, IOTLB and memory", () => {
  const { mem } = layout();
  using _ = mem;
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x5000, 0x1000, 0x1000, Read);
  const bitmap = new AtomicBitmap(0x10000, 4096);
  const dev = new IommuMemory(mem, iommu, { bitmap });
  const json = JSON.parse(JSON.stringify(dev));
  assert.deepEqual(Object.keys(json), ["enabled", "logBy", "bitmap", "iommu", "iotlb", "memory"]);
  assert.equal(json.enabled, true);
  assert.equal(json.logBy, "iova");
  assert.deepEqual(json.bitmap, { byteSize: 0x10000, pageSize: 4096, pages: 16, dirtyRuns: [], dirtyPages: 0 });
  assert.deepEqual(json.iommu, {
    type: "IotlbIommu",
    counters: { asyncRequests: 0, mergedRequests: 0, timeouts: 0, syncFaults: 0 },
    pendingRequests: 0,
  });
  assert.deepEqual(json.iotlb.entries, [{ iova: "0x5000", target: "0x1000", size: "0x1000", perm: "Read" }]);
  assert.deepEqual(json.memory, mem.toJSON());
});

Deno.test("inspect: a bitmap prints its geometry and dirty runs, 16 at most", () => {
  const b = new AtomicBitmap(0x40000 - 100, 4096);
  assert.equal(shown(b), "AtomicBitmap: 0x3ff9c bytes, 64 pages of 4 KiB, clean");
  b.markDirty(0x1000, 0x2000);
  b.markDirty(0x3f000, 1);
  assert.equal(
    shown(b),
    [
      "AtomicBitmap: 0x3ff9c bytes, 64 pages of 4 KiB, 3 dirty pages in 2 runs",
      "  [0x1000, 0x3000)  2 pages",
      "  [0x3f000, 0x3ff9c)  1 page",
    ].join("\n"),
  );
  for (let p = 4; p < 60; p += 2) b.setBit(p);
  const lines = shown(b).split("\n");
  assert.equal(lines[0], "AtomicBitmap: 0x3ff9c bytes, 64 pages of 4 KiB, 31 dirty pages in 30 runs");
  assert.equal(lines.length, 1 + 16 + 1);
  assert.equal(lines[17], "  … 14 more runs");
});

Deno.test("inspect: sizes are exact in binary units and ranges are inclusive, mtree style", () => {
  assert.deepEqual(
    [0, 1, 4097, 0x1000, 0x60000000, 2 ** 40].map((n) => sizeText(n)),
    ["0 B", "1 B", "4097 B", "4 KiB", "1536 MiB", "1 TiB"],
  );
  assert.equal(sizeText(2n ** 64n), "16 EiB");
  assert.equal(rangeText(2n ** 64n - 1n, 1n), "ffffffffffffffff-ffffffffffffffff");
  assert.equal(rangeText(0x1000n, 0n), "0000000000001000 (empty)");
});
