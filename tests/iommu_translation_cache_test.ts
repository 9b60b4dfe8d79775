/**
 * IommuMemory's translation cache: which accesses it serves without asking the IOTLB, and that
 * whatever it serves is the translation of the moment (after remaps, slot reuse and switching
 * translation on or off).
 */
import assert from "node:assert/strict";
import { AtomicBitmap, GuestMemoryMmap, Permissions } from "../mod.ts";
import { type Iommu, IommuMemory, IotlbIommu, type IovaRange } from "../iommu.ts";

const PAGE = 0x1000;

/** RAM at [0, 1 MiB), each 4 KiB page's first u64 holding its own guest physical address. */
function ram(): GuestMemoryMmap {
  const m = GuestMemoryMmap.fromRanges([[0, 0x100000]], { dirtyPageSize: PAGE });
  for (let gpa = 0; gpa < 0x100000; gpa += PAGE) m.writeU64(gpa, BigInt(gpa));
  dirtyLog(m).reset();
  return m;
}

/** The RAM's dirty log. */
function dirtyLog(m: GuestMemoryMmap): AtomicBitmap {
  const log = m.regions()[0].bitmap;
  assert.ok(log instanceof AtomicBitmap);
  return log;
}

Deno.test("iommu translation cache: a window wider than a page asks the IOTLB once, whichever pages are read after it", () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x200000, 0x40000, 16 * PAGE, Permissions.ReadWrite);
  const mem = new IommuMemory(phys, iommu);
  const hits = iommu.iotlb.counters.hits;
  for (const page of [0, 15, 7, 1, 8, 3, 14, 2, 9, 4, 13, 5, 12, 6, 11, 10]) {
    assert.equal(mem.readU64(0x200000 + page * PAGE), BigInt(0x40000 + page * PAGE));
  }
  assert.equal(iommu.iotlb.counters.hits, hits + 1, "16 pages of one entry: one lookup");
  for (let page = 0; page < 16; page++) mem.writeU32(0x200000 + page * PAGE + 8, page);
  assert.equal(iommu.iotlb.counters.hits, hits + 1, "writes too: the entry allows them");
  assert.equal(phys.readU32(0x40000 + 5 * PAGE + 8), 5);
});

Deno.test("iommu translation cache: pages swapped around in physical memory each read their own page, at any IOVA size", () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  // 128 IOVA pages, so that every cache slot serves two of them, each from another physical page;
  // then two pages far above 2^32 whose low bits match the first ones.
  const high = 2 ** 40;
  for (let i = 0; i < 128; i++) iommu.iotlb.setMapping(i * PAGE, (i ^ 1) * PAGE, PAGE, Permissions.Read);
  iommu.iotlb.setMapping(high, 0x90000, PAGE, Permissions.Read);
  iommu.iotlb.setMapping(high + 2 ** 33 + PAGE, 0x91000, PAGE, Permissions.Read);
  const mem = new IommuMemory(phys, iommu);
  for (let round = 0; round < 2; round++) {
    for (const i of [0, 64, 1, 65, 127, 63, 2, 66]) assert.equal(mem.readU64(i * PAGE), BigInt((i ^ 1) * PAGE));
    assert.equal(mem.readU64(high), 0x90000n);
    assert.equal(mem.readU64(0), 0x1000n);
    assert.equal(mem.readU64(high + 2 ** 33 + PAGE), 0x91000n);
    assert.equal(mem.readU64(PAGE), 0n);
  }
});

Deno.test("iommu translation cache: a slot that shared a window rewritten for another page translates afresh", () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x10000, 0x4000, 2 * PAGE, Permissions.Read);
  // 0x50000 and 0x10000 fall in one cache slot (their pages are 64 apart).
  iommu.iotlb.setMapping(0x50000, 0x8000, PAGE, Permissions.Read);
  const mem = new IommuMemory(phys, iommu);
  assert.equal(mem.readU64(0x10000), 0x4000n);
  assert.equal(mem.readU64(0x11000), 0x5000n, "served by the window read first");
  assert.equal(mem.readU64(0x50000), 0x8000n, "rewrites that window's slot");
  assert.equal(mem.readU64(0x11000), 0x5000n);
  assert.equal(mem.readU64(0x10000), 0x4000n);
  assert.equal(mem.readU64(0x50008), 0n);
});

Deno.test("iommu translation cache: switching translation on or off never serves a window cached under the other setting", () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x3000, 0x7000, PAGE, Permissions.ReadWrite);
  const mem = new IommuMemory(phys, iommu, { enabled: false });
  assert.equal(mem.readU64(0x3000), 0x3000n, "a guest physical address");
  mem.iommuEnabled = true;
  assert.equal(mem.readU64(0x3000), 0x7000n, "an I/O virtual address");
  mem.writeU32(0x3008, 1);
  mem.iommuEnabled = false;
  assert.equal(mem.readU64(0x3000), 0x3000n);
  mem.writeU32(0x3008, 2);
  assert.equal(phys.readU32(0x7008), 1);
  assert.equal(phys.readU32(0x3008), 2);
  assert.deepEqual(dirtyLog(phys).dirtyRuns(), [[0x3000, PAGE]], "logged by guest address with translation off only");
});

Deno.test("iommu translation cache: with translation off, an IOMMU without an IOTLB serves reads, writes and atomics", () => {
  using phys = ram();
  const refuse: Iommu = {
    translate(): IovaRange[] {
      throw new Error("not asked while translation is off");
    },
    translateAsync(): Promise<IovaRange[]> {
      return Promise.reject(new Error("not asked while translation is off"));
    },
  };
  const mem = new IommuMemory(phys, refuse, { enabled: false });
  for (let round = 0; round < 2; round++) {
    assert.equal(mem.readU64(0x5000), 0x5000n);
    mem.writeU64(0x5008, 0xabn + BigInt(round));
    assert.equal(mem.addU32(0x5010, 3), 3 * round);
  }
  assert.equal(phys.readU64(0x5008), 0xacn);
  assert.equal(phys.readU32(0x5010), 6);
  assert.deepEqual(dirtyLog(phys).dirtyRuns(), [[0x5000, PAGE]]);
});
