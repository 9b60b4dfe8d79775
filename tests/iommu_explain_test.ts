import assert from "node:assert/strict";
import { GuestMemoryMmap, type Permission, Permissions } from "../mod.ts";
import { type Iommu, IommuMemory, Iotlb, IotlbIommu } from "../iommu.ts";
import { RegionClosedError } from "../mod.ts";
import { CannotResolveError } from "../iommu.ts";

const PAGE = 0x1000;

/** RAM at [0, 64 KiB) and [1 MiB, 1 MiB + 64 KiB). */
function ram(): GuestMemoryMmap {
  return GuestMemoryMmap.fromRanges([[0, 0x10000], [0x100000, 0x10000]]);
}

Deno.test("iotlb: entriesIn lists the whole entries a range overlaps, in order, and counts nothing", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x1000, 0x8000, 0x1000, Permissions.Read);
  tlb.setMapping(0x3000, 0x9000, 0x2000, Permissions.Write);
  tlb.setMapping(0x9000, 0x1000, 0x1000, Permissions.ReadWrite);
  assert.deepEqual(tlb.entriesIn(0x1800, 0x2000), [
    { iova: 0x1000n, target: 0x8000n, size: 0x1000n, perm: Permissions.Read },
    { iova: 0x3000n, target: 0x9000n, size: 0x2000n, perm: Permissions.Write },
  ]);
  assert.deepEqual(tlb.entriesIn(0x2000, 0x1000), []);
  assert.deepEqual(tlb.entriesIn(0x4fff, 1).map((e) => e.iova), [0x3000n]);
  assert.deepEqual(tlb.entriesIn(0x5000, 0x4000), [], "an entry starting at the range's end is not in it");
  const top = (1n << 64n) - 0x1000n;
  tlb.setMapping(top, 0x2000, 0x1000, Permissions.Read);
  assert.deepEqual(tlb.entriesIn(top + 0xff0n, 0x10), [{ iova: top, target: 0x2000n, size: 0x1000n, perm: 1 }]);
  assert.equal(tlb.counters.hits + tlb.counters.misses, 0);
  assert.throws(() => tlb.entriesIn(0, 0), /Iotlb\.entriesIn: len/);
});

Deno.test("iommu explain: a translating request lists entries and fragments with IOVA, GPA, host address and region", () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x40000, 0xf000, 0x1000, Permissions.ReadWrite); // last page of region 0
  iommu.iotlb.setMapping(0x41000, 0x100000, 0x1000, Permissions.Read); // first page of region 1
  const mem = new IommuMemory(phys, iommu);
  const x = mem.explain(0x40800, 0x1000, Permissions.Read);
  assert.equal(x.ok, true);
  assert.equal(x.translated, true);
  assert.equal(x.failure, undefined);
  assert.deepEqual(x.entries.map((e) => [e.iova, e.target, e.size, e.perm]), [
    [0x40000n, 0xf000n, 0x1000n, Permissions.ReadWrite],
    [0x41000n, 0x100000n, 0x1000n, Permissions.Read],
  ]);
  assert.deepEqual(
    x.fragments.map((f) => [f.iova, f.length, f.gpa, f.hostAddress, f.region.startAddr, f.entry?.iova]),
    [
      [0x40800n, 0x800, 0xf800n, phys.getHostAddress(0xf800), 0n, 0x40000n],
      [0x41000n, 0x800, 0x100000n, phys.getHostAddress(0x100000), 0x100000n, 0x41000n],
    ],
  );
  assert.equal(iommu.iotlb.counters.hits, 0, "explaining is not traffic");
});

Deno.test("iommu explain: the first failure is named with its reason: unmapped, denied, unbacked", () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x40000, 0xf000, 0x2000, Permissions.ReadWrite); // runs off region 0 into the hole
  iommu.iotlb.setMapping(0x50000, 0x1000, 0x1000, Permissions.Read);
  const mem = new IommuMemory(phys, iommu);

  const hole = mem.explain(0x40000, 0x2000, Permissions.Write);
  assert.equal(hole.ok, false);
  assert.deepEqual(hole.fragments.map((f) => [f.iova, f.length, f.gpa]), [[0x40000n, 0x1000, 0xf000n]]);
  assert.equal(hole.failure?.reason, "unbacked");
  assert.equal(hole.failure?.iova, 0x41000n);
  assert.equal(hole.failure?.gpa, 0x10000n);
  assert.equal(hole.failure?.length, 0x1000);
  assert.equal(hole.failure?.message, "no guest RAM at guest physical [0x10000, 0x11000)");

  const denied = mem.explain(0x50000, 8, Permissions.Write);
  assert.equal(denied.failure?.reason, "denied");
  assert.equal(denied.failure?.entry?.iova, 0x50000n);
  assert.equal(denied.failure?.message, "the entry [0x50000, 0x51000) allows Read, not Write");
  assert.throws(() => mem.writeU64(0x50000, 1n), CannotResolveError, "explain agrees with the access");

  const gap = mem.explain(0x4f000, 0x1010, Permissions.Read);
  assert.deepEqual(gap.fragments, []);
  assert.deepEqual(
    [gap.failure?.reason, gap.failure?.iova, gap.failure?.length],
    ["unmapped", 0x4f000n, PAGE],
  );
  const tail = mem.explain(0x50ff0, 0x20, Permissions.Read);
  assert.deepEqual([tail.fragments.length, tail.failure?.reason, tail.failure?.iova], [1, "unmapped", 0x51000n]);
});

Deno.test("iommu explain: with translation off addresses are physical; without an IOTLB the IOMMU's refusal is quoted", () => {
  using phys = ram();
  const off = new IommuMemory(phys, new IotlbIommu(), { enabled: false });
  const x = off.explain(0xff00, 0x200, Permissions.Write);
  assert.equal(x.translated, false);
  assert.deepEqual(x.entries, []);
  assert.deepEqual(x.fragments.map((f) => [f.gpa, f.length]), [[0xff00n, 0x100]]);
  assert.deepEqual([x.failure?.reason, x.failure?.gpa], ["unbacked", 0x10000n]);

  const refusing: Iommu = {
    translate: () => {
      throw new CannotResolveError("Custom.translate", { base: 0n, length: 1 }, "nothing mapped");
    },
    translateAsync: () => Promise.reject(new Error("unused")),
  };
  const custom = new IommuMemory(phys, refusing);
  const y = custom.explain(0x1000, 4, Permissions.Read);
  assert.equal(y.failure?.reason, "unresolved");
  assert.match(y.failure?.message ?? "", /nothing mapped/);
  const empty = custom.explain(0x1000, 0);
  assert.deepEqual(
    [empty.ok, empty.failure?.reason, empty.failure?.length],
    [false, "unresolved", 0],
    "a zero-length request is translated too, so this IOMMU refuses it",
  );
  assert.throws(() => custom.explain((1n << 64n) - 1n, 2), /runs past 2\^64/);
});

Deno.test("iommu explain: a zero-length request is denied only strictly inside an entry that lacks the access", () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x50000, 0x1000, PAGE, Permissions.Read);
  const mem = new IommuMemory(phys, iommu);
  const inside = mem.explain(0x50800, 0, Permissions.Write);
  assert.deepEqual(
    [inside.ok, inside.failure?.reason, inside.failure?.iova, inside.failure?.length, inside.failure?.entry?.iova],
    [false, "denied", 0x50800n, 0, 0x50000n],
  );
  assert.equal(inside.failure?.message, "the entry [0x50000, 0x51000) allows Read, not Write");
  assert.deepEqual(inside.entries.map((e) => e.iova), [0x50000n]);
  assert.throws(() => mem.write(new Uint8Array(0), 0x50800), CannotResolveError, "explain agrees with the access");
  const allowed: Array<[number, Permission]> = [
    [0x50800, Permissions.Read],
    [0x50000, Permissions.Write],
    [0x51000, Permissions.Write],
  ];
  for (const [iova, access] of allowed) {
    const x = mem.explain(iova, 0, access);
    assert.deepEqual([x.ok, x.entries, x.fragments, x.failure], [true, [], [], undefined], `0x${iova.toString(16)}`);
  }
  const before = iommu.iotlb.counters;
  mem.explain(0x50800, 0, Permissions.Write);
  assert.deepEqual(iommu.iotlb.counters, before, "explain counts no IOTLB traffic");
});

Deno.test("iommu explain: closed memory is RegionClosed under explain's own name", () => {
  const phys = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x1000, 0x1000, PAGE, Permissions.Read);
  const mem = new IommuMemory(phys, iommu);
  phys.close();
  assert.throws(
    () => mem.explain(0x1000, 8),
    (e: unknown) => e instanceof RegionClosedError && e.op === "IommuMemory.explain" && /0x0/.test(e.message),
  );
});
