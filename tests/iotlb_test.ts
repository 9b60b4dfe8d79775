import assert from "node:assert/strict";
import fc from "fast-check";
import { InvalidArgumentError } from "../src/core/errors.ts";
import type { IovaRange } from "../src/iommu/iommu_errors.ts";
import { Iotlb, type IotlbEntry, type IotlbLookup } from "../src/iommu/iotlb.ts";
import { IotlbHit } from "../src/iommu/iotlb_hit.ts";
import { IotlbRecorder } from "../src/iommu/iotlb_recorder.ts";
import { assign, carve, editPaths } from "../src/iommu/range_edit.ts";
import { CHUNK, RangeEntry, RangeTable } from "../src/iommu/range_table.ts";
import { U64Pair } from "../src/iommu/u64_key.ts";
import { type Permission, Permissions } from "../src/core/permissions.ts";

const { No, Read, Write, ReadWrite } = Permissions;
const TWO_53 = 2 ** 53;
const TWO_64 = 2n ** 64n;

function argumentError(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${e}`);
    assert.equal(e.kind, "InvalidArgument");
    return e;
  }
  assert.fail("nothing was thrown");
}

function entryList(tlb: Iotlb): Array<[bigint, bigint, bigint, Permission]> {
  return tlb.entries().map((e) => [e.iova, e.target, e.size, e.perm]);
}

function ranges(r: IotlbLookup): IovaRange[] {
  assert.ok(r.ok, `expected a hit, got ${JSON.stringify(r, (_k, v) => typeof v === "bigint" ? `${v}n` : v)}`);
  return r.ranges;
}

function fails(r: IotlbLookup): { misses: IovaRange[]; accessFails: IovaRange[] } {
  assert.ok(!r.ok, "expected a failed lookup");
  return { misses: r.misses, accessFails: r.accessFails };
}

/** The three entries of the vm-memory §3.7 probe. */
function probeTable(): Iotlb {
  const tlb = new Iotlb();
  tlb.setMapping(10, 1010, 10, Read);
  tlb.setMapping(30, 1030, 10, Write);
  tlb.setMapping(50, 1050, 10, Read);
  return tlb;
}

// ---- lookups ----

Deno.test("iotlb: a lookup inside one entry returns the translated range, clipped to the request", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x10000, 0x7000, 0x1000, ReadWrite);
  assert.deepEqual(ranges(tlb.lookup(0x10800, 0x100, Read)), [{ base: 0x7800n, length: 0x100 }]);
  assert.deepEqual(ranges(tlb.lookup(0x10000, 0x1000, Write)), [{ base: 0x7000n, length: 0x1000 }]);
});

Deno.test("iotlb: a lookup across entries returns one range per entry touched, in IOVA order", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x1000, 0x9000, 0x1000, Read);
  tlb.setMapping(0x2000, 0x3000, 0x800, ReadWrite);
  tlb.setMapping(0x2800, 0x3800, 0x800, Read); // contiguous with the previous but other perms
  assert.deepEqual(ranges(tlb.lookup(0x1ff0, 0x1000, Read)), [
    { base: 0x9ff0n, length: 0x10 },
    { base: 0x3000n, length: 0x800 },
    { base: 0x3800n, length: 0x7f0 },
  ]);
});

Deno.test("iotlb: the §3.7 probe reports every miss and every denied entry, clipped and ascending", () => {
  const tlb = probeTable();
  assert.deepEqual(fails(tlb.lookup(0, 70, Read)), {
    misses: [{ base: 0n, length: 10 }, { base: 20n, length: 10 }, { base: 40n, length: 10 }, { base: 60n, length: 10 }],
    accessFails: [{ base: 30n, length: 10 }],
  });
  assert.deepEqual(fails(tlb.lookup(15, 40, Write)), {
    misses: [{ base: 20n, length: 10 }, { base: 40n, length: 10 }],
    accessFails: [{ base: 15n, length: 5 }, { base: 50n, length: 5 }],
  });
});

Deno.test("iotlb: adjacent denied entries are reported as separate access failures", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0, 100, 10, Read);
  tlb.setMapping(10, 500, 10, Read);
  assert.deepEqual(fails(tlb.lookup(5, 10, Write)), {
    misses: [],
    accessFails: [{ base: 5n, length: 5 }, { base: 10n, length: 5 }],
  });
});

Deno.test("iotlb: access No only asks for presence; ReadWrite needs a ReadWrite entry", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0, 0x100, 0x10, No);
  tlb.setMapping(0x10, 0x200, 0x10, Read);
  assert.deepEqual(ranges(tlb.lookup(0, 0x20, No)), [{ base: 0x100n, length: 0x10 }, { base: 0x200n, length: 0x10 }]);
  assert.deepEqual(fails(tlb.lookup(0, 0x20, Read)).accessFails, [{ base: 0n, length: 0x10 }]);
  assert.deepEqual(fails(tlb.lookup(0x10, 4, ReadWrite)).accessFails, [{ base: 0x10n, length: 4 }]);
  assert.deepEqual(fails(tlb.lookup(0x20, 1, No)).misses, [{ base: 0x20n, length: 1 }]);
});

Deno.test("iotlb: a lookup in an empty table misses the whole request", () => {
  assert.deepEqual(fails(new Iotlb().lookup(0x5000, 0x30, Read)), {
    misses: [{ base: 0x5000n, length: 0x30 }],
    accessFails: [],
  });
});

// ---- overwriting, splitting, invalidating ----

Deno.test("iotlb: the §3.9 probe: invalidating across three entries keeps both outer parts with their offset", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x1000, 0x9000, 0x400, Read);
  tlb.setMapping(0x1400, 0x5000, 0x100, ReadWrite);
  tlb.setMapping(0x1500, 0x9500, 0xb00, Read);
  tlb.invalidate(0x1300, 0x180);
  assert.deepEqual(entryList(tlb), [
    [0x1000n, 0x9000n, 0x300n, Read],
    [0x1480n, 0x5080n, 0x80n, ReadWrite],
    [0x1500n, 0x9500n, 0xb00n, Read],
  ]);
  assert.deepEqual(fails(tlb.lookup(0x1000, 0x1000, Read)), {
    misses: [{ base: 0x1300n, length: 0x180 }],
    accessFails: [],
  });
});

Deno.test("iotlb: invalidating the middle of an entry keeps both ends", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x4000, 0x20000, 0x3000, ReadWrite);
  tlb.invalidate(0x5000, 0x1000);
  assert.deepEqual(entryList(tlb), [
    [0x4000n, 0x20000n, 0x1000n, ReadWrite],
    [0x6000n, 0x22000n, 0x1000n, ReadWrite],
  ]);
});

Deno.test("iotlb: setMapping over the middle of an entry splits it into left, new and right", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x1000, 0x9000, 0x3000, Read);
  tlb.setMapping(0x2000, 0x40000, 0x800, Write);
  assert.deepEqual(entryList(tlb), [
    [0x1000n, 0x9000n, 0x1000n, Read],
    [0x2000n, 0x40000n, 0x800n, Write],
    [0x2800n, 0xa800n, 0x1800n, Read],
  ]);
});

Deno.test("iotlb: setMapping replaces every entry it covers and truncates the ones it crosses", () => {
  const tlb = new Iotlb();
  for (let i = 0; i < 8; i++) tlb.setMapping(i * 0x1000, 0x100000 + i * 0x3000, 0x1000, Read);
  tlb.setMapping(0x1800, 0x800000, 0x5000, ReadWrite);
  assert.deepEqual(entryList(tlb), [
    [0x0n, 0x100000n, 0x1000n, Read],
    [0x1000n, 0x103000n, 0x800n, Read],
    [0x1800n, 0x800000n, 0x5000n, ReadWrite],
    [0x6800n, 0x112800n, 0x800n, Read],
    [0x7000n, 0x115000n, 0x1000n, Read],
  ]);
});

Deno.test("iotlb: invalidating a range with nothing in it changes nothing but the generation", () => {
  const tlb = probeTable();
  const before = entryList(tlb);
  const gen = tlb.generation;
  tlb.invalidate(20, 10);
  tlb.invalidate(1000, 5);
  assert.deepEqual(entryList(tlb), before);
  assert.equal(tlb.generation, gen + 2);
});

Deno.test("iotlb: invalidateAll clears the table and a later mapping works again", () => {
  const tlb = probeTable();
  tlb.invalidateAll();
  assert.equal(tlb.size, 0);
  assert.deepEqual(tlb.entries(), []);
  assert.equal(tlb.translateFast(10, 1, Read), -1);
  tlb.setMapping(10, 7, 1, Read);
  assert.equal(tlb.translateFast(10, 1, Read), 7);
});

// ---- merging ----

Deno.test("iotlb: test_iotlb_merge: neighbours contiguous in both spaces with equal perms become one entry", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x1000, 0x8000, 0x1000, ReadWrite);
  tlb.setMapping(0x2000, 0x9000, 0x1000, ReadWrite);
  assert.deepEqual(entryList(tlb), [[0x1000n, 0x8000n, 0x2000n, ReadWrite]]);
  assert.deepEqual(ranges(tlb.lookup(0x1800, 0x1000, Read)), [{ base: 0x8800n, length: 0x1000 }]);
});

Deno.test("iotlb: test_iotlb_nomerge_same_phys: two IOVA pages on one physical page stay two entries", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x1000, 0x8000, 0x1000, ReadWrite);
  tlb.setMapping(0x2000, 0x8000, 0x1000, ReadWrite);
  assert.equal(tlb.size, 2);
  assert.deepEqual(ranges(tlb.lookup(0x1800, 0x1000, Read)), [
    { base: 0x8800n, length: 0x800 },
    { base: 0x8000n, length: 0x800 },
  ]);
});

Deno.test("iotlb: neighbours with different permissions or a gap do not merge", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0, 0x100, 0x10, Read);
  tlb.setMapping(0x10, 0x110, 0x10, ReadWrite);
  tlb.setMapping(0x21, 0x121, 0x10, ReadWrite);
  assert.equal(tlb.size, 3);
});

Deno.test("iotlb: a mapping that closes the gap between two continuing entries merges all three", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x3000, 0x13000, 0x1000, Read);
  tlb.setMapping(0x1000, 0x11000, 0x1000, Read);
  assert.equal(tlb.size, 2);
  tlb.setMapping(0x2000, 0x12000, 0x1000, Read);
  assert.deepEqual(entryList(tlb), [[0x1000n, 0x11000n, 0x3000n, Read]]);
});

Deno.test("iotlb: an overlapping mapping with the same translation widens the entry", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0, 500, 100, Write);
  tlb.setMapping(50, 550, 100, Write);
  assert.deepEqual(entryList(tlb), [[0n, 500n, 150n, Write]]);
});

Deno.test("iotlb: re-mapping the middle of an entry with its own translation leaves one entry", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x1000, 0x5000, 0x3000, Read);
  tlb.setMapping(0x2000, 0x6000, 0x100, Read);
  assert.deepEqual(entryList(tlb), [[0x1000n, 0x5000n, 0x3000n, Read]]);
});

Deno.test("iotlb: identity pages over 512 MiB merge into one entry whose size is the sum", () => {
  const tlb = new Iotlb();
  for (let i = 0; i < 131072; i++) tlb.setMapping(i * 4096, i * 4096, 4096, ReadWrite);
  assert.deepEqual(entryList(tlb), [[0n, 0n, 512n << 20n, ReadWrite]]);
});

// ---- large tables (many chunks) ----

Deno.test("iotlb: a swapped table of 131072 pages translates every page, and bulk edits keep the rest exact", () => {
  const tlb = new Iotlb();
  const pages = 131072;
  for (let i = 0; i < pages; i++) tlb.setMapping(i * 4096, (i ^ 1) * 4096, 4096, ReadWrite);
  assert.equal(tlb.size, pages);
  for (let i = 0; i < pages - 1; i += 97) {
    assert.equal(tlb.translateFast(i * 4096 + 8, 8, Read), (i ^ 1) * 4096 + 8);
    assert.deepEqual(ranges(tlb.lookup(i * 4096 + 4000, 200, Read)), [
      { base: BigInt((i ^ 1) * 4096 + 4000), length: 96 },
      { base: BigInt(((i + 1) ^ 1) * 4096), length: 104 },
    ]);
  }
  // Remove pages 1000..99999 and part of pages 999 and 100000, across many chunks at once.
  tlb.invalidate(1000 * 4096 - 16, 99000 * 4096 + 32);
  assert.equal(tlb.size, pages - 99000);
  assert.equal(tlb.translateFast(999 * 4096 + 4080 - 8, 8, Read), (999 ^ 1) * 4096 + 4072);
  assert.equal(tlb.translateFast(999 * 4096 + 4080, 8, Read), -1);
  assert.equal(tlb.translateFast(100000 * 4096 + 16, 8, Read), (100000 ^ 1) * 4096 + 16);
  assert.deepEqual(fails(tlb.lookup(1000 * 4096 - 16, 99000 * 4096 + 32, No)).misses, [
    { base: BigInt(1000 * 4096 - 16), length: 99000 * 4096 + 32 },
  ]);
  // One mapping over many entries replaces them all.
  tlb.setMapping(10 * 4096, 0x1_0000_0000, 900 * 4096, Read);
  assert.equal(tlb.size, pages - 99000 - 900 + 1);
  assert.deepEqual(tlb.entries().slice(9, 12).map((e) => [e.iova, e.target, e.size]), [
    [9n * 4096n, 8n * 4096n, 4096n],
    [10n * 4096n, 0x1_0000_0000n, 900n * 4096n],
    [910n * 4096n, 911n * 4096n, 4096n],
  ]);
  // Filling the hole back in restores every page.
  for (let i = 1000; i < 100000; i++) tlb.setMapping(i * 4096, (i ^ 1) * 4096, 4096, ReadWrite);
  tlb.setMapping(999 * 4096 + 4080, (999 ^ 1) * 4096 + 4080, 16, ReadWrite);
  tlb.setMapping(100000 * 4096, (100000 ^ 1) * 4096, 16, ReadWrite);
  assert.equal(tlb.size, pages - 900 + 1);
  for (let i = 911; i < pages; i += 13) assert.equal(tlb.translateFast(i * 4096, 4096, Read), (i ^ 1) * 4096);
});

Deno.test("iotlb: removing most of a large table one page at a time leaves exactly the rest", () => {
  const tlb = new Iotlb();
  for (let i = 0; i < 20000; i++) tlb.setMapping(i * 8192, i * 4096 * 3, 4096, Read);
  for (let i = 0; i < 20000; i++) if (i % 50 !== 7) tlb.invalidate(i * 8192, 4096);
  const kept = tlb.entries();
  assert.equal(kept.length, 400);
  kept.forEach((e, j) => {
    const i = j * 50 + 7;
    assert.deepEqual([e.iova, e.target, e.size], [BigInt(i * 8192), BigInt(i * 4096 * 3), 4096n]);
  });
  assert.equal(tlb.translateFast(7 * 8192 + 100, 4, Read), 7 * 4096 * 3 + 100);
  assert.equal(tlb.translateFast(8 * 8192, 4, Read), -1);
});

// ---- u64 edges ----

Deno.test("iotlb: IOVAs above 2^53 are exact when passed as bigint", () => {
  const tlb = new Iotlb();
  const base = 2n ** 53n - 2n; // crosses 2^53, where doubles start skipping integers
  tlb.setMapping(base, 0x1000, 5, Read);
  tlb.setMapping(base + 5n, 0x2000, 1, Read);
  tlb.setMapping(2n ** 60n + 1n, 2n ** 60n + 3n, 1, Write);
  assert.deepEqual(entryList(tlb), [
    [base, 0x1000n, 5n, Read],
    [base + 5n, 0x2000n, 1n, Read],
    [2n ** 60n + 1n, 2n ** 60n + 3n, 1n, Write],
  ]);
  assert.deepEqual(ranges(tlb.lookup(base + 3n, 3, Read)), [{ base: 0x1003n, length: 2 }, {
    base: 0x2000n,
    length: 1,
  }]);
  assert.deepEqual(fails(tlb.lookup(2n ** 60n, 3, Write)), {
    misses: [{ base: 2n ** 60n, length: 1 }, { base: 2n ** 60n + 2n, length: 1 }],
    accessFails: [],
  });
  tlb.invalidate(2n ** 53n + 1n, 1);
  assert.deepEqual(entryList(tlb).slice(0, 3), [
    [base, 0x1000n, 3n, Read],
    [base + 4n, 0x1004n, 1n, Read],
    [base + 5n, 0x2000n, 1n, Read],
  ]);
});

Deno.test("iotlb: at 2^53, where 2^53 and 2^53 + 1 round alike, entries keep their exact order", () => {
  const tlb = new Iotlb();
  const t53 = 2n ** 53n;
  tlb.setMapping(t53 - 4n, 0x100, 5, Read); // ends at 2^53 + 1
  tlb.setMapping(t53 + 1n, 0x900, 4, Read);
  assert.deepEqual(ranges(tlb.lookup(t53, 2, Read)), [{ base: 0x104n, length: 1 }, { base: 0x900n, length: 1 }]);
  tlb.invalidate(t53, 1);
  assert.deepEqual(entryList(tlb), [[t53 - 4n, 0x100n, 4n, Read], [t53 + 1n, 0x900n, 4n, Read]]);
  tlb.setMapping(t53, 0x104, 1, Read); // fills the hole again: merges back with the left entry only
  assert.deepEqual(entryList(tlb), [[t53 - 4n, 0x100n, 5n, Read], [t53 + 1n, 0x900n, 4n, Read]]);
});

Deno.test("iotlb: an entry that grows past 2^53 keeps its exact end when later inserts move it", () => {
  const tlb = new Iotlb();
  const t53 = 2n ** 53n;
  tlb.setMapping(t53 - 100n, 0x1000, 50, Read); // wholly below 2^53
  tlb.setMapping(t53 - 50n, 0x1000 + 50, 51, Read); // continues it: the merged end is 2^53 + 1
  for (let i = 0; i < 8; i++) tlb.setMapping(0x1000 + i * 0x100, i * 0x10, 0x10, Read); // inserted before it
  assert.deepEqual(entryList(tlb).slice(-2), [[0x1700n, 0x70n, 0x10n, Read], [t53 - 100n, 0x1000n, 101n, Read]]);
});

Deno.test("iotlb: entries above 2^53 keep their exact bounds through chunk joins and later shifts", () => {
  const tlb = new Iotlb();
  const big = 2n ** 53n;
  const small = (
    i: number,
  ): [bigint, bigint, bigint, Permission] => [BigInt(0x10000 + i * 16), BigInt(i * 32), 8n, Read];
  // Odd starts above 2^53 fall between doubles: each has a nonzero residual.
  const high = (
    i: number,
  ): [bigint, bigint, bigint, Permission] => [big + BigInt(i * 16 + 1), BigInt(0x8000 + i * 32), 8n, Read];
  for (let i = 0; i < 64; i++) tlb.setMapping(0x10000 + i * 16, i * 32, 8, Read);
  for (let i = 0; i < 64; i++) tlb.setMapping(big + BigInt(i * 16 + 1), 0x8000 + i * 32, 8, Read);
  for (let i = 4; i < 64; i++) {
    tlb.invalidate(0x10000 + i * 16, 8);
    tlb.invalidate(big + BigInt(i * 16 + 1), 8);
  }
  // New entries in front move every later one within its chunk.
  for (let i = 0; i < 8; i++) tlb.setMapping(i * 16, 0x4000 + i * 32, 8, Read);
  const front = [...Array(8).keys()].map((i): [bigint, bigint, bigint, Permission] => [
    BigInt(i * 16),
    BigInt(0x4000 + i * 32),
    8n,
    Read,
  ]);
  const rest = [0, 1, 2, 3].map(small).concat([0, 1, 2, 3].map(high));
  assert.deepEqual(entryList(tlb), [...front, ...rest]);
});

Deno.test("iotlb: a mapping may end exactly at 2^64 and its last byte 2^64 - 1 translates", () => {
  const tlb = new Iotlb();
  tlb.setMapping(TWO_64 - 0x1000n, 0x5000, 0x1000, ReadWrite);
  assert.deepEqual(entryList(tlb), [[TWO_64 - 0x1000n, 0x5000n, 0x1000n, ReadWrite]]);
  assert.deepEqual(ranges(tlb.lookup(TWO_64 - 1n, 1, Write)), [{ base: 0x5fffn, length: 1 }]);
  assert.deepEqual(ranges(tlb.lookup(TWO_64 - 0x10n, 0x10, Read)), [{ base: 0x5ff0n, length: 0x10 }]);
  tlb.invalidate(TWO_64 - 2n, 1);
  assert.deepEqual(entryList(tlb), [
    [TWO_64 - 0x1000n, 0x5000n, 0xffen, ReadWrite],
    [TWO_64 - 1n, 0x5fffn, 1n, ReadWrite],
  ]);
});

Deno.test("iotlb: a target range may end exactly at 2^64; target ranges past it are refused", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x1000, TWO_64 - 0x1000n, 0x1000, Read);
  assert.deepEqual(ranges(tlb.lookup(0x1ff8, 8, Read)), [{ base: TWO_64 - 8n, length: 8 }]);
  assert.equal(tlb.translateFast(0x1ff8, 8, Read), -1); // target above 2^53
  const e = argumentError(() => tlb.setMapping(0x1000, TWO_64 - 0xfffn, 0x1000, Read));
  assert.equal(e.op, "Iotlb.setMapping");
  assert.equal(e.argument, "target");
  assert.equal(e.message, "Iotlb.setMapping: target range 0xfffffffffffff001 + 0x1000 runs past 2^64");
  assert.equal(tlb.size, 1);
});

Deno.test("iotlb: targets contiguous only by wrapping past 2^64 do not merge", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x1000, TWO_64 - 0x1000n, 0x1000, Read);
  tlb.setMapping(0x2000, 0, 0x1000, Read);
  assert.equal(tlb.size, 2);
  assert.deepEqual(ranges(tlb.lookup(0x1fff, 2, Read)), [{ base: TWO_64 - 1n, length: 1 }, { base: 0n, length: 1 }]);
});

Deno.test("iotlb: ranges that wrap past 2^64 are refused by setMapping, invalidate and lookup", () => {
  const tlb = new Iotlb();
  const cases: Array<[string, () => unknown]> = [
    ["Iotlb.setMapping", () => tlb.setMapping(TWO_64 - 1n, 0, 2, Read)],
    ["Iotlb.invalidate", () => tlb.invalidate(TWO_64 - 1n, 2)],
    ["Iotlb.lookup", () => tlb.lookup(TWO_64 - 0x10n, 0x11, Read)],
  ];
  for (const [op, fn] of cases) {
    const e = argumentError(fn);
    assert.equal(e.op, op);
    assert.equal(e.argument, "len");
  }
  assert.equal(
    argumentError(() => tlb.lookup(TWO_64 - 0x10n, 0x11, Read)).message,
    "Iotlb.lookup: len 0x11 from iova 0xfffffffffffffff0 runs past 2^64",
  );
  assert.equal(tlb.size, 0);
});

Deno.test("iotlb: a zero-length lookup has no ranges, or a zero-length access failure strictly inside a denying entry", () => {
  // vm-memory 0.18 asks its range map about the empty range [iova, iova): only an entry that
  // starts before iova and ends after it overlaps that (tests/parity runs the crate on the same).
  const tlb = probeTable(); // [10, 20) Read, [30, 40) Write, [50, 60) Read
  const before = tlb.counters;
  assert.deepEqual(ranges(tlb.lookup(0, 0, Read)), [], "unmapped: nothing to miss");
  assert.deepEqual(ranges(tlb.lookup(10, 0, Write)), [], "at an entry's start nothing overlaps");
  assert.deepEqual(ranges(tlb.lookup(20, 0, Write)), [], "nor at its end");
  assert.deepEqual(ranges(tlb.lookup(15, 0, Read)), [], "inside an entry that allows it");
  assert.deepEqual(ranges(tlb.lookup(15, 0, No)), []);
  assert.deepEqual(fails(tlb.lookup(15, 0, Write)), { misses: [], accessFails: [{ base: 15n, length: 0 }] });
  assert.deepEqual(fails(tlb.lookup(35, 0, ReadWrite)), { misses: [], accessFails: [{ base: 35n, length: 0 }] });
  assert.deepEqual(fails(tlb.probe(55, 0, Write)), { misses: [], accessFails: [{ base: 55n, length: 0 }] });
  const after = tlb.counters;
  assert.deepEqual(
    [after.hits - before.hits, after.misses - before.misses, after.accessFailures - before.accessFailures],
    [5, 0, 2],
    "counted as lookups (the probe not at all)",
  );
});

Deno.test("iotlb: zero-length lookups are exact above 2^53 and up to the last IOVA", () => {
  const tlb = new Iotlb();
  const high = 2n ** 53n + 1n; // rounds to 2^53 as a number: the residual decides
  tlb.setMapping(high, 0x1000, 4, Read);
  tlb.setMapping(TWO_64 - 0x1000n, 0x2000, 0x1000, Read);
  assert.deepEqual(ranges(tlb.lookup(high, 0, Write)), []);
  assert.deepEqual(fails(tlb.lookup(high + 1n, 0, Write)).accessFails, [{ base: high + 1n, length: 0 }]);
  assert.deepEqual(ranges(tlb.lookup(high + 4n, 0, Write)), []);
  assert.deepEqual(fails(tlb.lookup(TWO_64 - 1n, 0, Write)).accessFails, [{ base: TWO_64 - 1n, length: 0 }]);
  assert.deepEqual(ranges(tlb.lookup(TWO_64 - 0x1000n, 0, Write)), []);
  const e = argumentError(() => tlb.lookup(TWO_64, 0, Read));
  assert.deepEqual([e.op, e.argument], ["Iotlb.lookup", "iova"]);
  assert.deepEqual([argumentError(() => tlb.lookup(0, 0, 4 as Permission)).argument], ["access"]);
});

// ---- argument errors ----

Deno.test("iotlb: zero lengths are refused by setMapping and invalidate (vm-memory's range map panics on them)", () => {
  const tlb = probeTable();
  for (const fn of [() => tlb.setMapping(0, 0, 0, Read), () => tlb.invalidate(10, 0)]) {
    const e = argumentError(fn);
    assert.equal(e.argument, "len");
    assert.equal(e.value, 0);
    assert.match(e.message, /len must not be zero$/);
  }
  assert.equal(tlb.size, 3);
});

Deno.test("iotlb: bad addresses, lengths and permissions are refused with the argument named", () => {
  const tlb = new Iotlb();
  const cases: Array<[() => unknown, string, unknown]> = [
    [() => tlb.setMapping(-1, 0, 1, Read), "iova", -1],
    [() => tlb.setMapping(1.5, 0, 1, Read), "iova", 1.5],
    [() => tlb.setMapping(NaN, 0, 1, Read), "iova", NaN],
    [() => tlb.setMapping(2 ** 53, 0, 1, Read), "iova", 2 ** 53],
    [() => tlb.setMapping("0x1000" as unknown as number, 0, 1, Read), "iova", "0x1000"],
    [() => tlb.setMapping(0, -4096, 1, Read), "target", -4096],
    [() => tlb.setMapping(0, TWO_64, 1, Read), "target", TWO_64],
    [() => tlb.setMapping(0, 0, 1.5, Read), "len", 1.5],
    [() => tlb.setMapping(0, 0, 4n as unknown as number, Read), "len", 4n],
    [() => tlb.setMapping(0, 0, 1, 4 as Permission), "perm", 4],
    [() => tlb.setMapping(0, 0, 1, "rw" as unknown as Permission), "perm", "rw"],
    [() => tlb.invalidate(-1n, 1), "iova", -1n],
    [() => tlb.invalidate(0, -1), "len", -1],
    [() => tlb.lookup(0, 1, 7 as Permission), "access", 7],
    [() => tlb.lookup(0, NaN, Read), "len", NaN],
  ];
  for (const [fn, argument, value] of cases) {
    const e = argumentError(fn);
    assert.equal(e.argument, argument);
    assert.ok(Object.is(e.value, value), `${argument}: ${String(e.value)}`);
  }
  assert.equal(tlb.size, 0);
  assert.equal(tlb.generation, 0);
});

Deno.test("iotlb: bad options are refused", () => {
  const cases: Array<[unknown, string]> = [
    [{ maxEntries: 0 }, "options.maxEntries"],
    [{ maxEntries: -3 }, "options.maxEntries"],
    [{ maxEntries: 2.5 }, "options.maxEntries"],
    [{ eviction: "lfu" }, "options.eviction"],
    [{ seed: -1 }, "options.seed"],
    [{ seed: 2 ** 32 }, "options.seed"],
    [{ seed: 0.5 }, "options.seed"],
    [null, "options"],
    [5, "options"],
  ];
  for (const [options, argument] of cases) {
    const e = argumentError(() => new Iotlb(options as never));
    assert.equal(e.op, "new Iotlb");
    assert.equal(e.argument, argument);
  }
});

// ---- translateFast ----

Deno.test("iotlb: translateFast answers within one entry and writes that entry to the caller's record", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x2000, 0x8000, 0x1000, Read);
  tlb.setMapping(0x3000, 0x100000, 0x1000, ReadWrite);
  const hit = new IotlbHit();
  assert.equal(tlb.translateFast(0x2ff8, 8, Read, hit), 0x8ff8);
  assert.deepEqual([hit.start, hit.end, hit.diff, hit.perm], [0x2000, 0x3000, 0x6000, Read]);
  assert.equal(tlb.translateFast(0x3004, 4, Write, hit), 0x100004);
  assert.deepEqual([hit.start, hit.end, hit.diff, hit.perm], [0x3000, 0x4000, 0xfd000, ReadWrite]);
  // A refusal leaves the record as it was.
  assert.equal(tlb.translateFast(0x3ffc, 8, Read, hit), -1);
  assert.deepEqual([hit.start, hit.end, hit.diff, hit.perm], [0x3000, 0x4000, 0xfd000, ReadWrite]);
  assert.equal(tlb.translateFast(0x3008, 8, Read), 0x100008); // through the IOTLB's own cache
  assert.equal(tlb.counters.hits, 3);
});

Deno.test("iotlb: translateFast returns -1 and counts nothing for misses, denials, crossings and bad input", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x2000, 0x8000, 0x1000, Read);
  tlb.setMapping(0x3000, 0x9000, 0x1000, Write); // contiguous target, other perms: two entries
  assert.equal(tlb.translateFast(0x2000, 4, Read), 0x8000);
  const bad: Array<[number, number, number]> = [
    [0x1ffc, 4, Read], // miss before
    [0x2ffc, 8, Read], // crosses into the Write entry
    [0x2000, 4, Write], // denied
    [0x2000, 4, ReadWrite],
    [0x4000, 1, Read], // miss after
    [8192.5, 4, Read],
    [0x2000, 2.5, Read],
    [0x2000, 0, Read],
    [0x2000, -4, Read],
    [NaN, 4, Read],
    [-8, 4, Read],
    [0x2000, 4, 4],
    [0x2000, 4, -1],
  ];
  for (const [iova, len, access] of bad) {
    assert.equal(tlb.translateFast(iova, len, access as Permission), -1, `${iova}, ${len}, ${access}`);
  }
  assert.equal(tlb.counters.hits, 1);
  assert.equal(tlb.counters.misses, 0);
});

Deno.test("iotlb: translateFast stays below 2^53 in both spaces and is exact right up to it", () => {
  const tlb = new Iotlb();
  tlb.setMapping(TWO_53 - 0x1000, 0, 0x2000, Read); // IOVA range crosses 2^53
  tlb.setMapping(0x1000, TWO_53 - 0x800, 0x1000, Read); // target range crosses 2^53
  const hit = new IotlbHit();
  assert.equal(tlb.translateFast(TWO_53 - 8, 8, Read, hit), 0xff8);
  assert.equal(hit.end, TWO_53);
  assert.equal(tlb.translateFast(0x1000, 8, Read, hit), TWO_53 - 0x800);
  assert.equal(hit.end, 0x1800); // the target reaches 2^53 there
  assert.equal(tlb.translateFast(TWO_53 - 8, 9, Read), -1);
  assert.equal(tlb.translateFast(0x1000 + 0x7f8, 8, Read), TWO_53 - 8);
  assert.equal(tlb.translateFast(0x1000 + 0x7f8, 9, Read), -1);
  assert.equal(tlb.translateFast(0x1000 + 0x800, 1, Read), -1);
  assert.deepEqual(ranges(tlb.lookup(0x1800, 1, Read)), [{ base: 2n ** 53n, length: 1 }]);
});

Deno.test("iotlb: every change empties the last-hit check, so translateFast never answers from a stale entry", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0, 0x10000, 0x1000, ReadWrite);
  assert.equal(tlb.translateFast(0x10, 4, Read), 0x10010);
  tlb.setMapping(0, 0x20000, 0x100, ReadWrite);
  assert.equal(tlb.translateFast(0x10, 4, Read), 0x20010);
  tlb.setMapping(0, 0x20000, 0x100, Read);
  assert.equal(tlb.translateFast(0x10, 4, Write), -1);
  tlb.invalidate(0x10, 1);
  assert.equal(tlb.translateFast(0x10, 4, Read), -1);
  assert.equal(tlb.translateFast(0x200, 4, Read), 0x10200);
  tlb.invalidateAll();
  assert.equal(tlb.translateFast(0x200, 4, Read), -1);
});

Deno.test("iotlb: translateFast stays exact when many pages share its answer cache, and after each change", () => {
  const tlb = new Iotlb();
  const target = (i: number) => (i ^ 5) * 4096 * 3;
  let answers = 0;
  const expect = (iova: number, access: Permission, want: number) => {
    assert.equal(tlb.translateFast(iova, 8, access), want, `iova ${iova.toString(16)}`);
    if (want !== -1) answers++;
  };
  // 256 pages take turns in every cache slot; every third page is read-only.
  for (let i = 0; i < 256; i++) tlb.setMapping(i * 4096, target(i), 4096, i % 3 === 0 ? Read : ReadWrite);
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 256; i++) {
      expect(i * 4096 + 100, Write, i % 3 === 0 ? -1 : target(i) + 100);
      expect(i * 4096 + 100, Read, target(i) + 100);
      expect(i * 4096 + 4092, Read, -1); // crosses into the next entry
    }
  }
  // Re-map every seventh page elsewhere and drop part of every eleventh: no cached answer may survive.
  for (let i = 0; i < 256; i += 7) tlb.setMapping(i * 4096, 0x4000_0000 + i * 8192, 4096, ReadWrite);
  for (let i = 0; i < 256; i += 11) tlb.invalidate(i * 4096 + 50, 100);
  for (let i = 0; i < 256; i++) {
    expect(i * 4096 + 100, Read, i % 11 === 0 ? -1 : i % 7 === 0 ? 0x4000_0000 + i * 8192 + 100 : target(i) + 100);
  }
  assert.equal(tlb.counters.hits, answers);
});

/** Maps `[start, end)` in a bare table, identity, read-only. */
function mapRange(t: RangeTable, start: number, end: number, stamp: number): void {
  const e = new RangeEntry();
  e.start.setNumber(start);
  e.end.setNumber(end);
  e.perm = Read;
  e.stamp = stamp;
  assign(t, e);
}

/** Unmaps `[start, end)` in a bare table. */
function unmapRange(t: RangeTable, start: number, end: number): void {
  carve(t, new U64Pair().setNumber(start), new U64Pair().setNumber(end));
}

Deno.test("iotlb storage: removing most entries joins the emptied chunks, so the table stays at least half full", () => {
  for (const keep of [16, 2, 10]) {
    const t = new RangeTable(false);
    const n = CHUNK * 40;
    for (let i = 0; i < n; i++) mapRange(t, i * 2, i * 2 + 1, i);
    for (let i = 0; i < n; i++) if (i % keep !== 0) unmapRange(t, i * 2, i * 2 + 1);
    assert.equal(t.size, n / keep);
    assert.ok(t.size >= (t.chunkCount * CHUNK) / 2, `keep 1/${keep}: ${t.size} entries in ${t.chunkCount} chunks`);
  }
});

// ---- counters, generation, snapshots ----

Deno.test("iotlb: counters count hits, lookups with misses and lookups with access failures; reset zeroes them", () => {
  const tlb = probeTable();
  tlb.lookup(10, 10, Read); // hit
  tlb.lookup(0, 70, Read); // misses and an access failure
  tlb.lookup(30, 10, Read); // access failure only
  tlb.lookup(20, 5, Read); // miss only
  tlb.translateFast(12, 4, Read); // hit
  tlb.translateFast(20, 4, Read); // -1: not counted
  assert.deepEqual(tlb.counters, { hits: 2, misses: 2, accessFailures: 2, evictions: 0, entries: 3 });
  tlb.resetCounters();
  assert.deepEqual(tlb.counters, { hits: 0, misses: 0, accessFailures: 0, evictions: 0, entries: 3 });
});

Deno.test("iotlb: the generation rises by one per change and per eviction, never on lookups", () => {
  const tlb = new Iotlb({ maxEntries: 2 });
  assert.equal(tlb.generation, 0);
  tlb.setMapping(0, 0, 10, Read);
  tlb.setMapping(20, 0, 10, Read);
  assert.equal(tlb.generation, 2);
  tlb.lookup(0, 5, Read);
  tlb.translateFast(0, 5, Read);
  assert.equal(tlb.generation, 2);
  tlb.setMapping(40, 0, 10, Read); // one eviction
  assert.equal(tlb.generation, 4);
  tlb.invalidate(0, 100);
  tlb.invalidateAll();
  assert.equal(tlb.generation, 6);
});

Deno.test("iotlb: entries() and counters are snapshots; toJSON shows hex and permission names", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x1000, 0x9000, 0x1000, ReadWrite);
  tlb.setMapping(TWO_64 - 0x10n, 0x20, 0x10, No);
  const snap = tlb.entries();
  snap[0].size = 1n;
  const counters = tlb.counters;
  counters.hits = 99;
  assert.equal(tlb.entries()[0].size, 0x1000n);
  assert.equal(tlb.counters.hits, 0);
  assert.deepEqual(JSON.parse(JSON.stringify(tlb)), {
    entries: [
      { iova: "0x1000", target: "0x9000", size: "0x1000", perm: "ReadWrite" },
      { iova: "0xfffffffffffffff0", target: "0x20", size: "0x10", perm: "No" },
    ],
    counters: { hits: 0, misses: 0, accessFailures: 0, evictions: 0, entries: 2 },
  });
});

// ---- eviction ----

Deno.test("iotlb: fifo eviction drops the oldest insertion and counts it", () => {
  const tlb = new Iotlb({ maxEntries: 3, eviction: "fifo" });
  for (const page of [5, 1, 9, 3]) tlb.setMapping(page * 0x1000, page * 0x2000, 0x1000, Read);
  assert.deepEqual(tlb.entries().map((e) => e.iova), [0x1000n, 0x3000n, 0x9000n]);
  tlb.translateFast(0x1000, 4, Read); // hits do not matter to fifo
  tlb.setMapping(0x20000, 0, 0x1000, Read);
  assert.deepEqual(tlb.entries().map((e) => e.iova), [0x3000n, 0x9000n, 0x20000n]);
  assert.deepEqual(tlb.counters, { hits: 1, misses: 0, accessFailures: 0, evictions: 2, entries: 3 });
});

Deno.test("iotlb: a split that overflows the limit evicts the split-off parts, never the new entry", () => {
  const tlb = new Iotlb({ maxEntries: 1 });
  tlb.setMapping(0, 0x10000, 0x3000, Read);
  tlb.setMapping(0x1000, 0x50000, 0x1000, Write);
  assert.deepEqual(entryList(tlb), [[0x1000n, 0x50000n, 0x1000n, Write]]);
  assert.equal(tlb.counters.evictions, 2);
});

Deno.test("iotlb: lru eviction drops the entry hit least recently (translateFast, cached hits and lookup count)", () => {
  const tlb = new Iotlb({ maxEntries: 3, eviction: "lru" });
  tlb.setMapping(0x1000, 0x11000, 0x1000, Read); // A
  tlb.setMapping(0x3000, 0x13000, 0x1000, Read); // B
  tlb.setMapping(0x5000, 0x15000, 0x1000, Read); // C
  assert.equal(tlb.translateFast(0x1000, 4, Read), 0x11000); // A, searched
  assert.ok(tlb.lookup(0x3000, 4, Read).ok); // B
  tlb.setMapping(0x7000, 0x17000, 0x1000, Read); // D evicts C
  assert.deepEqual(tlb.entries().map((e) => e.iova), [0x1000n, 0x3000n, 0x7000n]);
  assert.equal(tlb.translateFast(0x1000, 4, Read), 0x11000); // A again: searched (the change emptied the cache)
  assert.equal(tlb.translateFast(0x3000, 4, Read), 0x13000); // B
  assert.equal(tlb.translateFast(0x3004, 4, Read), 0x13004); // B again, from the last-hit check
  assert.equal(tlb.translateFast(0x7000, 4, Read), 0x17000); // D
  assert.equal(tlb.translateFast(0x1008, 4, Read), 0x11008); // A: now the most recent
  tlb.setMapping(0x9000, 0x19000, 0x1000, Read); // E evicts B (least recent: 0x3004 came before D and A)
  assert.deepEqual(tlb.entries().map((e) => e.iova), [0x1000n, 0x7000n, 0x9000n]);
  assert.deepEqual(tlb.counters, { hits: 7, misses: 0, accessFailures: 0, evictions: 2, entries: 3 });
});

Deno.test("iotlb: lru counts a lookup answered from translateFast's cache as a use of its entry", () => {
  const tlb = new Iotlb({ maxEntries: 3, eviction: "lru" });
  tlb.setMapping(0x1000, 0x11000, 0x1000, Read); // A
  tlb.setMapping(0x3000, 0x13000, 0x1000, Read); // B
  tlb.setMapping(0x5000, 0x15000, 0x1000, Read); // C
  assert.equal(tlb.translateFast(0x1000, 4, Read), 0x11000); // A, searched: now cached
  assert.equal(tlb.translateFast(0x3000, 4, Read), 0x13000); // B
  assert.equal(tlb.translateFast(0x5000, 4, Read), 0x15000); // C: A is the least recent
  assert.deepEqual(tlb.lookup(0x1010, 8, Read), { ok: true, ranges: [{ base: 0x11010n, length: 8 }] }); // A, cached
  tlb.setMapping(0x7000, 0x17000, 0x1000, Read); // D evicts B, not A
  assert.deepEqual(tlb.entries().map((e) => e.iova), [0x1000n, 0x5000n, 0x7000n]);
  assert.deepEqual(tlb.counters, { hits: 4, misses: 0, accessFailures: 0, evictions: 1, entries: 3 });
});

Deno.test("iotlb: random eviction is deterministic for a seed and keeps the entry just inserted", () => {
  const run = (seed: number) => {
    const tlb = new Iotlb({ maxEntries: 4, eviction: "random", seed });
    for (let i = 0; i < 12; i++) {
      tlb.setMapping(i * 0x2000, i * 0x3000, 0x1000, Read);
      assert.equal(tlb.size, Math.min(i + 1, 4));
      assert.ok(tlb.entries().some((e) => e.iova === BigInt(i * 0x2000)), "the new entry survives");
    }
    assert.equal(tlb.counters.evictions, 8);
    return tlb.entries().map((e) => e.iova).join(",");
  };
  const outcomes = [1, 2, 3, 4, 5, 6].map(run);
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(run), outcomes);
  assert.ok(new Set(outcomes).size > 1, `six seeds all evicted alike: ${outcomes[0]}`);
});

Deno.test("iotlb: over thousands of inserts across many chunks, fifo and lru evict exactly what their order says", () => {
  for (const eviction of ["fifo", "random", "lru"] as const) {
    const limit = 150; // several chunks, which split and join as entries come and go
    const tlb = new Iotlb({ maxEntries: limit, eviction, seed: 42 });
    // Expected survivors in eviction order (first = next victim); a Map keeps insertion order.
    const order = new Map<number, true>();
    const touch = (page: number) => {
      order.delete(page);
      order.set(page, true);
    };
    let state = 12345;
    for (let i = 0; i < 3000; i++) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      const page = state % 5000;
      tlb.setMapping(page * 0x2000, page * 0x1000, 0x1000, Read); // never touching: no merges
      touch(page);
      // Random evictions are checked for count only: the model follows fifo for them.
      if (order.size > limit) order.delete(order.keys().next().value!);
      if (i % 3 === 0) {
        // A hit on a surviving page, chosen by the same generator.
        const pages = eviction === "random" ? tlb.entries().map((e) => Number(e.iova) / 0x2000) : [...order.keys()];
        const hit = pages[state % pages.length];
        assert.equal(tlb.translateFast(hit * 0x2000 + 8, 8, Read), hit * 0x1000 + 8);
        if (eviction === "lru") touch(hit);
      }
      assert.equal(tlb.size, Math.min(order.size, limit));
      if (eviction !== "random") {
        const want = [...order.keys()].sort((a, b) => a - b).map((p) => BigInt(p * 0x2000));
        assert.deepEqual(tlb.entries().map((e) => e.iova), want, `${eviction}: step ${i}`);
      }
    }
    assert.equal(tlb.counters.entries, limit, eviction);
  }
});

// ---- editing fast paths ----

/** Runs `edit` and returns how many edits took each path during it. */
function pathsOf(edit: () => void): typeof editPaths {
  const before = { ...editPaths };
  edit();
  return pathsSince(before);
}

const NO_PATHS = { overwrite: 0, gapInsert: 0, assignGeneral: 0, removeWhole: 0, carveGeneral: 0 };

/** Three touching pages at 0x1000, 0x2000, 0x3000 that do not continue each other. */
function threePages(middleTarget = 0x50000, rightTarget = 0x30000): Iotlb {
  const tlb = new Iotlb();
  tlb.setMapping(0x1000, 0x10000, 0x1000, Read);
  tlb.setMapping(0x2000, middleTarget, 0x1000, ReadWrite);
  tlb.setMapping(0x3000, rightTarget, 0x1000, Read);
  return tlb;
}

Deno.test("iotlb fast paths: re-mapping exactly one entry rewrites it in place and leaves its neighbours", () => {
  const tlb = threePages();
  assert.deepEqual(pathsOf(() => tlb.setMapping(0x2000, 0x70000, 0x1000, Write)), { ...NO_PATHS, overwrite: 1 });
  assert.deepEqual(entryList(tlb), [
    [0x1000n, 0x10000n, 0x1000n, Read],
    [0x2000n, 0x70000n, 0x1000n, Write],
    [0x3000n, 0x30000n, 0x1000n, Read],
  ]);
  // The left neighbour's continuation with other permissions does not merge either.
  assert.deepEqual(pathsOf(() => tlb.setMapping(0x2000, 0x11000, 0x1000, ReadWrite)), { ...NO_PATHS, overwrite: 1 });
  assert.deepEqual(entryList(tlb)[1], [0x2000n, 0x11000n, 0x1000n, ReadWrite]);
  assert.equal(tlb.size, 3);
});

Deno.test("iotlb fast paths: an exact re-map that continues the left neighbour merges with it", () => {
  const tlb = threePages();
  assert.deepEqual(pathsOf(() => tlb.setMapping(0x2000, 0x11000, 0x1000, Read)), { ...NO_PATHS, assignGeneral: 1 });
  assert.deepEqual(entryList(tlb), [[0x1000n, 0x10000n, 0x2000n, Read], [0x3000n, 0x30000n, 0x1000n, Read]]);
});

Deno.test("iotlb fast paths: an exact re-map that continues the right neighbour merges with it", () => {
  const tlb = threePages();
  assert.deepEqual(pathsOf(() => tlb.setMapping(0x2000, 0x2f000, 0x1000, Read)), { ...NO_PATHS, assignGeneral: 1 });
  assert.deepEqual(entryList(tlb), [[0x1000n, 0x10000n, 0x1000n, Read], [0x2000n, 0x2f000n, 0x2000n, Read]]);
});

Deno.test("iotlb fast paths: an exact re-map that continues both neighbours makes one entry of three", () => {
  const tlb = threePages(0x50000, 0x12000);
  assert.deepEqual(pathsOf(() => tlb.setMapping(0x2000, 0x11000, 0x1000, Read)), { ...NO_PATHS, assignGeneral: 1 });
  assert.deepEqual(entryList(tlb), [[0x1000n, 0x10000n, 0x3000n, Read]]);
});

Deno.test("iotlb fast paths: an exact re-map with the entry's own translation changes nothing but its age", () => {
  const tlb = threePages();
  const generation = tlb.generation;
  assert.deepEqual(pathsOf(() => tlb.setMapping(0x2000, 0x50000, 0x1000, ReadWrite)), { ...NO_PATHS, overwrite: 1 });
  assert.deepEqual(entryList(tlb)[1], [0x2000n, 0x50000n, 0x1000n, ReadWrite]);
  assert.equal(tlb.generation, generation + 1, "still a change: cached translations are dropped");
});

Deno.test("iotlb fast paths: a mapping in a gap is inserted unless it continues a neighbour", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x2000, 0x20000, 0x1000, Read);
  tlb.setMapping(0x6000, 0x60000, 0x1000, Read);
  // Touching on the left and on the right, continuing neither (other target, other permission).
  assert.deepEqual(pathsOf(() => tlb.setMapping(0x3000, 0x40000, 0x1000, Read)), { ...NO_PATHS, gapInsert: 1 });
  assert.deepEqual(pathsOf(() => tlb.setMapping(0x5000, 0x5f000, 0x1000, Write)), { ...NO_PATHS, gapInsert: 1 });
  // Before every entry and after every entry.
  assert.deepEqual(pathsOf(() => tlb.setMapping(0x0, 0x90000, 0x1000, Read)), { ...NO_PATHS, gapInsert: 1 });
  assert.deepEqual(pathsOf(() => tlb.setMapping(0x8000, 0x90000, 0x1000, Read)), { ...NO_PATHS, gapInsert: 1 });
  assert.deepEqual(entryList(tlb), [
    [0x0n, 0x90000n, 0x1000n, Read],
    [0x2000n, 0x20000n, 0x1000n, Read],
    [0x3000n, 0x40000n, 0x1000n, Read],
    [0x5000n, 0x5f000n, 0x1000n, Write],
    [0x6000n, 0x60000n, 0x1000n, Read],
    [0x8000n, 0x90000n, 0x1000n, Read],
  ]);
});

Deno.test("iotlb fast paths: a gap mapping continuing the left, the right or both neighbours merges", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x2000, 0x20000, 0x1000, Read);
  tlb.setMapping(0x6000, 0x60000, 0x1000, Read);
  assert.deepEqual(pathsOf(() => tlb.setMapping(0x3000, 0x21000, 0x800, Read)), { ...NO_PATHS, assignGeneral: 1 });
  assert.deepEqual(pathsOf(() => tlb.setMapping(0x5000, 0x5f000, 0x1000, Read)), { ...NO_PATHS, assignGeneral: 1 });
  assert.deepEqual(entryList(tlb), [[0x2000n, 0x20000n, 0x1800n, Read], [0x5000n, 0x5f000n, 0x2000n, Read]]);
  // Past every entry, continuing the last one.
  assert.deepEqual(pathsOf(() => tlb.setMapping(0x7000, 0x61000, 0x1000, Read)), { ...NO_PATHS, assignGeneral: 1 });
  // Closing a gap between two entries that continue each other.
  tlb.setMapping(0x10000, 0x100000, 0x1000, Read);
  tlb.setMapping(0x12000, 0x102000, 0x1000, Read);
  assert.deepEqual(pathsOf(() => tlb.setMapping(0x11000, 0x101000, 0x1000, Read)), { ...NO_PATHS, assignGeneral: 1 });
  assert.deepEqual(entryList(tlb), [
    [0x2000n, 0x20000n, 0x1800n, Read],
    [0x5000n, 0x5f000n, 0x3000n, Read],
    [0x10000n, 0x100000n, 0x3000n, Read],
  ]);
});

Deno.test("iotlb fast paths: gap inserts fill and split chunks and keep every entry exact", () => {
  const tlb = new Iotlb();
  // Even pages descending, then odd pages ascending: inserts at the front, the back and inside full chunks.
  const pages = CHUNK * 6;
  const paths = pathsOf(() => {
    for (let p = pages - 2; p >= 0; p -= 2) tlb.setMapping(p * 0x1000, (p ^ 1) * 0x1000, 0x1000, Read);
    for (let p = 1; p < pages; p += 2) tlb.setMapping(p * 0x1000, (p ^ 1) * 0x1000, 0x1000, Read);
  });
  assert.deepEqual(paths, { ...NO_PATHS, gapInsert: pages });
  const want = Array.from({ length: pages }, (_, p) => [BigInt(p * 0x1000), BigInt((p ^ 1) * 0x1000), 0x1000n, Read]);
  assert.deepEqual(entryList(tlb), want);
});

Deno.test("iotlb fast paths: invalidating exactly one entry removes it alone; other ranges go the general way", () => {
  const tlb = threePages();
  assert.deepEqual(pathsOf(() => tlb.invalidate(0x2000, 0x1000)), { ...NO_PATHS, removeWhole: 1 });
  assert.deepEqual(entryList(tlb), [[0x1000n, 0x10000n, 0x1000n, Read], [0x3000n, 0x30000n, 0x1000n, Read]]);
  assert.deepEqual(pathsOf(() => tlb.invalidate(0x3000, 0x800)), { ...NO_PATHS, carveGeneral: 1 });
  assert.deepEqual(pathsOf(() => tlb.invalidate(0x0, 0x4000)), { ...NO_PATHS, carveGeneral: 1 });
  assert.deepEqual(entryList(tlb), []);
  assert.deepEqual(pathsOf(() => tlb.invalidate(0x1000, 0x1000)), { ...NO_PATHS, carveGeneral: 1 }, "empty table");
});

Deno.test("iotlb fast paths: an exact re-map renews the entry's age for fifo and lru eviction", () => {
  for (const eviction of ["fifo", "lru"] as const) {
    const tlb = new Iotlb({ maxEntries: 3, eviction });
    tlb.setMapping(0x1000, 0x11000, 0x1000, Read); // A
    tlb.setMapping(0x3000, 0x13000, 0x1000, Read); // B
    tlb.setMapping(0x5000, 0x15000, 0x1000, Read); // C
    tlb.setMapping(0x1000, 0x21000, 0x1000, Read); // A, re-mapped in place: now the youngest
    tlb.setMapping(0x7000, 0x17000, 0x1000, Read); // D evicts B
    assert.deepEqual(tlb.entries().map((e) => e.iova), [0x1000n, 0x5000n, 0x7000n], eviction);
    tlb.setMapping(0x5000, 0x15000, 0x1000, Read); // C, re-mapped to the same: younger than A
    tlb.setMapping(0x9000, 0x19000, 0x1000, Read); // E evicts A
    assert.deepEqual(tlb.entries().map((e) => e.iova), [0x5000n, 0x7000n, 0x9000n], eviction);
    assert.deepEqual(tlb.counters, { hits: 0, misses: 0, accessFailures: 0, evictions: 2, entries: 3 }, eviction);
  }
});

Deno.test("iotlb fast paths: each records its event, bumps the generation once and tells watchers once", () => {
  const tlb = new Iotlb({ maxEntries: 3 });
  const rec = new IotlbRecorder(16);
  tlb.record(rec);
  let told = 0;
  const watcher = () => told++;
  tlb.watch(watcher);
  const steps: Array<[() => void, Partial<typeof editPaths>]> = [
    [() => tlb.setMapping(0x1000, 0x11000, 0x1000, Read), { gapInsert: 1 }],
    [() => tlb.setMapping(0x3000, 0x13000, 0x1000, Write), { gapInsert: 1 }],
    [() => tlb.setMapping(0x1000, 0x21000, 0x1000, ReadWrite), { overwrite: 1 }],
    [() => tlb.invalidate(0x3000, 0x1000), { removeWhole: 1 }],
    [() => tlb.setMapping(0x5000, 0x15000, 0x1000, Read), { gapInsert: 1 }],
    [() => tlb.setMapping(0x7000, 0x17000, 0x1000, Read), { gapInsert: 1 }],
    [() => tlb.setMapping(0x9000, 0x19000, 0x1000, Read), { gapInsert: 1 }], // evicts 0x1000 (re-mapped at step 2)
  ];
  for (const [i, [step, path]] of steps.entries()) {
    const generation = tlb.generation;
    assert.deepEqual(pathsOf(step), { ...NO_PATHS, ...path }, `step ${i}`);
    assert.equal(tlb.generation, generation + (i === 6 ? 2 : 1), `step ${i}: the eviction is a change too`);
    assert.equal(told, i + 1, `step ${i}`);
  }
  tlb.unwatch(watcher);
  assert.deepEqual(
    rec.events().map((e) => [e.seq, e.kind, e.iova, e.size, e.target, e.perm]),
    [
      [1, "map", 0x1000n, 0x1000n, 0x11000n, Read],
      [2, "map", 0x3000n, 0x1000n, 0x13000n, Write],
      [3, "map", 0x1000n, 0x1000n, 0x21000n, ReadWrite],
      [4, "invalidate", 0x3000n, 0x1000n, null, No],
      [5, "map", 0x5000n, 0x1000n, 0x15000n, Read],
      [6, "map", 0x7000n, 0x1000n, 0x17000n, Read],
      [7, "map", 0x9000n, 0x1000n, 0x19000n, Read],
      [8, "eviction", 0x1000n, 0x1000n, 0x21000n, ReadWrite],
    ],
  );
  assert.deepEqual(entryList(tlb), [
    [0x5000n, 0x15000n, 0x1000n, Read],
    [0x7000n, 0x17000n, 0x1000n, Read],
    [0x9000n, 0x19000n, 0x1000n, Read],
  ]);
});

Deno.test("iotlb fast paths: an exact re-map drops the residual of a diff past 2^53 it replaces", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x1000, 2n ** 60n + 1n, 0x1000, Read); // diff 2^60 - 0xfff: not a double
  tlb.setMapping(0x1000, 0x5000, 0x1000, Read);
  assert.deepEqual(entryList(tlb), [[0x1000n, 0x5000n, 0x1000n, Read]]);
  tlb.setMapping(0x1000, 2n ** 60n, 0x1000, Read); // diff 2^60 - 0x1000: a double, no residual
  assert.deepEqual(entryList(tlb), [[0x1000n, 2n ** 60n, 0x1000n, Read]]);
  tlb.setMapping(0x1000, 2n ** 60n + 3n, 0x1000, Write);
  assert.deepEqual(entryList(tlb), [[0x1000n, 2n ** 60n + 3n, 0x1000n, Write]]);
});

Deno.test("iotlb fast paths: translateFast never answers from an entry re-mapped or removed in place", () => {
  const tlb = threePages();
  assert.equal(tlb.translateFast(0x2010, 8, Read), 0x50010);
  tlb.setMapping(0x2000, 0x70000, 0x1000, Read);
  assert.equal(tlb.translateFast(0x2010, 8, Read), 0x70010);
  tlb.setMapping(0x2000, 0x70000, 0x1000, Write);
  assert.equal(tlb.translateFast(0x2010, 8, Read), -1, "now write-only");
  tlb.invalidate(0x2000, 0x1000);
  assert.equal(tlb.translateFast(0x2010, 8, Write), -1, "removed");
});

Deno.test("iotlb storage: floor finds the entry starting last at or below x, across uneven chunks", () => {
  for (const n of [0, 1, 7, 8, 9, 63, 64, 65, 1000]) {
    const t = new RangeTable(false);
    for (let i = 0; i < n; i++) mapRange(t, i * 16, i * 16 + 8, i);
    // Thin some chunks out (uneven counts, some joined), keep others full.
    const kept: number[] = [];
    for (let i = 0; i < n; i++) {
      if (i % 5 === 1 || (i > 300 && i % 3 === 0)) unmapRange(t, i * 16, i * 16 + 8);
      else kept.push(i * 16);
    }
    for (let x = 0; x <= n * 16 + 1; x++) {
      const want = kept.findLast((start) => start <= x);
      const h = t.floor(x);
      if (want === undefined) {
        assert.equal(h, -1, `n ${n}, x ${x}`);
        continue;
      }
      assert.deepEqual([t.start(h), t.end(h), t.diff(h), t.perm(h)], [want, want + 8, 0, Read], `n ${n}, x ${x}`);
      assert.equal(t.here(), h, `n ${n}, x ${x}: the cursor`);
      assert.equal(t.rank(), kept.indexOf(want), `n ${n}, x ${x}: the rank`);
    }
  }
});

// ---- the model ----

interface ModelByte {
  target: bigint;
  perm: Permission;
}

interface Segment {
  start: number;
  end: number;
  target: bigint;
  perm: Permission;
}

/** Maximal runs of bytes that continue one translation with one permission: what entries() must be. */
function segments(model: Map<number, ModelByte>, space: number): Segment[] {
  const out: Segment[] = [];
  for (let b = 0; b < space; b++) {
    const m = model.get(b);
    if (m === undefined) continue;
    const last = out.at(-1);
    if (last && last.end === b && last.perm === m.perm && last.target + BigInt(b - last.start) === m.target) last.end++;
    else out.push({ start: b, end: b + 1, target: m.target, perm: m.perm });
  }
  return out;
}

function modelLookup(segs: Segment[], base: bigint, iova: number, len: number, access: Permission): IotlbLookup {
  const out: IovaRange[] = [], misses: IovaRange[] = [], accessFails: IovaRange[] = [];
  let cur = iova;
  const end = iova + len;
  for (const s of segs) {
    if (s.end <= iova || s.start >= end) continue;
    if (s.start > cur) misses.push({ base: base + BigInt(cur), length: s.start - cur });
    const from = Math.max(s.start, iova), to = Math.min(s.end, end);
    if ((s.perm & access) === access) out.push({ base: s.target + BigInt(from - s.start), length: to - from });
    else accessFails.push({ base: base + BigInt(from), length: to - from });
    cur = to;
  }
  if (cur < end) misses.push({ base: base + BigInt(cur), length: end - cur });
  return misses.length || accessFails.length ? { ok: false, misses, accessFails } : { ok: true, ranges: out };
}

type Op =
  | { op: "set"; iova: number; len: number; target: number; perm: Permission }
  | { op: "inv"; iova: number; len: number }
  | { op: "look"; iova: number; len: number; access: Permission }
  // Re-map exactly the entry holding byte `at` (if any): to `target`, or continuing its left or
  // right neighbour's translation when that touches it (`like`), so that it merges.
  | { op: "reset"; at: number; like: "none" | "left" | "right"; target: number; perm: Permission }
  // Invalidate exactly the entry holding byte `at` (if any).
  | { op: "drop"; at: number };

const SPACE = 1200;
const TARGET_SPACE = 1300;
const PROPERTY_SEED = 0x1077b;

const permArb = fc.constantFrom<Permission>(0, 1, 2, 3);
const lenArb = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 6 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 120 }) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant("set" as const),
      iova: fc.nat(SPACE - 1),
      len: lenArb,
      // Small targets repeat often, so that neighbours continue each other and merge.
      target: fc.oneof(fc.nat(TARGET_SPACE - 130), fc.constantFrom(0, 10, 20, 30)),
      perm: permArb,
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("inv" as const), iova: fc.nat(SPACE - 1), len: lenArb }) },
  {
    weight: 3,
    arbitrary: fc.record({ op: fc.constant("look" as const), iova: fc.nat(SPACE - 1), len: lenArb, access: permArb }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("reset" as const),
      at: fc.nat(SPACE - 1),
      like: fc.constantFrom("none" as const, "left" as const, "right" as const),
      target: fc.nat(TARGET_SPACE - 130),
      perm: permArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("drop" as const), at: fc.nat(SPACE - 1) }) },
);

/** The entry holding IOVA `iova`, if any. */
function entryAt(tlb: Iotlb, iova: bigint): IotlbEntry | undefined {
  return iova < 0n || iova >= TWO_64 ? undefined : tlb.entriesIn(iova, 1)[0];
}

/** `set` for a `reset` or `drop` op: the range of the entry it names, and for `reset` a target and permission. */
function exactOp(tlb: Iotlb, o: Op, base: bigint, targetBase: bigint): Op | undefined {
  if (o.op !== "reset" && o.op !== "drop") return o;
  const e = entryAt(tlb, base + BigInt(o.at));
  if (e === undefined) return undefined;
  const iova = Number(e.iova - base), len = Number(e.size);
  if (o.op === "drop") return { op: "inv", iova, len };
  let target = targetBase + BigInt(Math.min(o.target, TARGET_SPACE - len)), perm = o.perm;
  const other = o.like === "left"
    ? entryAt(tlb, e.iova - 1n)
    : o.like === "right"
    ? entryAt(tlb, e.iova + e.size)
    : undefined;
  if (other !== undefined) {
    const like = other.target + (o.like === "left" ? other.size : -e.size);
    // Only targets inside the target space: the top-of-u64 run must stay below 2^64.
    if (like >= targetBase && like + e.size <= targetBase + BigInt(TARGET_SPACE)) {
      target = like;
      perm = other.perm;
    }
  }
  return { op: "set", iova, len, target: Number(target - targetBase), perm };
}

/** How many edits took each path since `before` (a copy of editPaths). */
function pathsSince(before: typeof editPaths): typeof editPaths {
  return {
    overwrite: editPaths.overwrite - before.overwrite,
    gapInsert: editPaths.gapInsert - before.gapInsert,
    assignGeneral: editPaths.assignGeneral - before.assignGeneral,
    removeWhole: editPaths.removeWhole - before.removeWhole,
    carveGeneral: editPaths.carveGeneral - before.carveGeneral,
  };
}

/**
 * Runs random operations on an Iotlb and the byte model side by side, IOVAs at `base`, targets at
 * `targetBase`, and checks that every editing path (the fast ones and the general ones) ran often.
 */
function checkAgainstModel(base: bigint, targetBase: bigint): void {
  const numeric = base + BigInt(SPACE) <= 2n ** 53n && targetBase + BigInt(TARGET_SPACE) <= 2n ** 53n;
  const before = { ...editPaths };
  let mergedResets = 0; // exact re-maps that continued a neighbour, and merged
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 600, size: "max" }), (ops) => {
      const tlb = new Iotlb();
      const model = new Map<number, ModelByte>();
      for (const op of ops) {
        const o = exactOp(tlb, op, base, targetBase);
        if (o === undefined || o.op === "reset" || o.op === "drop") continue;
        const len = Math.min(o.len, SPACE - o.iova);
        const iova = numeric ? Number(base) + o.iova : base + BigInt(o.iova);
        if (o.op === "set") {
          const target = targetBase + BigInt(o.target);
          const size = tlb.size;
          tlb.setMapping(iova, numeric ? Number(target) : target, len, o.perm);
          if (op.op === "reset" && tlb.size < size) mergedResets++;
          for (let b = 0; b < len; b++) model.set(o.iova + b, { target: target + BigInt(b), perm: o.perm });
        } else if (o.op === "inv") {
          tlb.invalidate(iova, len);
          for (let b = 0; b < len; b++) model.delete(o.iova + b);
        } else {
          const segs = segments(model, SPACE);
          assert.deepEqual(tlb.lookup(iova, len, o.access), modelLookup(segs, base, o.iova, len, o.access));
          if (numeric) {
            const seg = segs.find((s) => s.start <= o.iova && o.iova + len <= s.end);
            const ok = seg !== undefined && (seg.perm & o.access) === o.access;
            const want = ok ? Number(seg.target + BigInt(o.iova - seg.start)) : -1;
            assert.equal(tlb.translateFast(iova as number, len, o.access), want);
          }
        }
      }
      const segs = segments(model, SPACE);
      assert.deepEqual(
        tlb.entries(),
        segs.map((s) => ({
          iova: base + BigInt(s.start),
          target: s.target,
          size: BigInt(s.end - s.start),
          perm: s.perm,
        })),
      );
      const entries = tlb.entries();
      if (Deno.env.get("IOTLB_STATS")) console.log("ops", ops.length, "entries", entries.length);
      for (let j = 1; j < entries.length; j++) {
        const a = entries[j - 1], b = entries[j];
        const mergeable = a.iova + a.size === b.iova && a.target + a.size === b.target && a.perm === b.perm;
        assert.ok(!mergeable, `entries ${j - 1} and ${j} should have merged`);
      }
    }),
    { seed: PROPERTY_SEED, numRuns: 150, endOnFailure: true },
  );
  const paths = pathsSince(before);
  for (const [path, count] of Object.entries(paths)) assert.ok(count >= 500, `${path} ran ${count} times`);
  assert.ok(mergedResets >= 100, `${mergedResets} exact re-maps merged`);
  if (Deno.env.get("IOTLB_STATS")) console.log(paths, mergedResets);
}

Deno.test(`iotlb: random set/invalidate/lookup sequences match a byte model (fast-check seed ${PROPERTY_SEED})`, () => {
  checkAgainstModel(0n, 0n);
});

Deno.test(`iotlb: the byte model also holds across 2^53 as bigints (fast-check seed ${PROPERTY_SEED})`, () => {
  checkAgainstModel(2n ** 53n - 300n, 2n ** 53n - 350n);
});

Deno.test(`iotlb: the byte model also holds at the top of the u64 space, ending at 2^64 (seed ${PROPERTY_SEED})`, () => {
  checkAgainstModel(TWO_64 - BigInt(SPACE), TWO_64 - BigInt(TARGET_SPACE));
});

Deno.test(`iotlb: the byte model holds for numbers just below 2^53 with translateFast (seed ${PROPERTY_SEED})`, () => {
  checkAgainstModel(2n ** 53n - BigInt(SPACE), 2n ** 53n - BigInt(TARGET_SPACE));
});

Deno.test("iotlb: translateRanges writes one (target, length) pair per entry, or -1 for anything lookup would refuse", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x1000, 0x8000, 0x1000, Permissions.ReadWrite);
  tlb.setMapping(0x2000, 0x4000, 0x800, Permissions.Read);
  tlb.setMapping(0x2800, 0x4800, 0x800, Permissions.Write); // contiguous target, other permission: own entry
  const out = new Float64Array(8).fill(-7);
  assert.equal(tlb.translateRanges(0x1ff0, 0x1000, Permissions.No, out), 3);
  assert.deepEqual([...out.subarray(0, 6)], [0x8ff0, 0x10, 0x4000, 0x800, 0x4800, 0x7f0]);
  assert.equal(tlb.counters.hits, 1);
  const before = tlb.counters;
  assert.equal(tlb.translateRanges(0x1ff0, 0x1000, Permissions.Read, out), -1, "the last entry is write-only");
  assert.equal(tlb.translateRanges(0x800, 0x1000, Permissions.No, out), -1, "a miss before the first entry");
  assert.equal(tlb.translateRanges(0x2f00, 0x200, Permissions.No, out), -1, "a miss after the last entry");
  assert.equal(tlb.translateRanges(0x1000, 0x2000, Permissions.No, new Float64Array(4)), -1, "no room for 3 pairs");
  assert.equal(tlb.translateRanges(0x1000, 0, Permissions.No, out), -1);
  assert.equal(tlb.translateRanges(-1, 4, Permissions.No, out), -1);
  assert.equal(tlb.translateRanges(0x1000, 1.5, Permissions.No, out), -1);
  assert.deepEqual(tlb.counters, before, "a refusal counts nothing: the caller falls back to lookup");
  const high = new Iotlb();
  high.setMapping(2 ** 53 - 0x1000, 0x1000, 0x1000, Permissions.Read);
  high.setMapping(0x1000, 2 ** 53 - 0x800, 0x1000, Permissions.Read);
  assert.equal(high.translateRanges(2 ** 53 - 0x1000, 0x1000, Permissions.Read, out), 1);
  assert.deepEqual([...out.subarray(0, 2)], [0x1000, 0x1000]);
  assert.equal(high.translateRanges(0x1000, 0x1000, Permissions.Read, out), -1, "a target past 2^53 is not a number");
  assert.equal(high.translateRanges(0x1000, 0x800, Permissions.Read, out), 1);
});

Deno.test("iotlb: watch calls a watcher once per change, twice-watched once, until unwatched", () => {
  const tlb = new Iotlb();
  const told: string[] = [];
  const a = () => told.push("a");
  const b = () => told.push("b");
  tlb.watch(a);
  tlb.watch(a);
  tlb.watch(b);
  assert.equal(tlb.watcherCount, 2);
  tlb.setMapping(0x1000, 0x5000, 0x1000, Read);
  tlb.unwatch(a);
  tlb.invalidate(0x1000, 0x1000);
  tlb.unwatch(b);
  tlb.unwatch(b);
  tlb.invalidateAll();
  assert.deepEqual(told, ["a", "b", "b"]);
  assert.equal(tlb.watcherCount, 0);
  for (const bad of [null, {}, 5]) {
    assert.throws(() => tlb.watch(bad as unknown as () => void), {
      name: "InvalidArgumentError",
      kind: "InvalidArgument",
      argument: "watcher",
      message: "Iotlb.watch: watcher must be a function",
    });
    assert.throws(() => tlb.unwatch(bad as unknown as () => void), {
      name: "InvalidArgumentError",
      op: "Iotlb.unwatch",
    });
  }
});
