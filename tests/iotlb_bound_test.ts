/**
 * An IOTLB with `maxEntries` never holds more entries, whatever sequence of mappings and
 * invalidations a hostile front-end sends: invalidations that split entries evict too.
 * @module
 */

import assert from "node:assert/strict";
import fc from "fast-check";
import { Iotlb, type IotlbEntry } from "../src/iommu/iotlb.ts";
import { IotlbRecorder } from "../src/iommu/iotlb_recorder.ts";
import { type Permission, Permissions } from "../src/core/permissions.ts";

const { ReadWrite } = Permissions;
const PAGE = 0x1000;
const BOUND_SEED = 0xb0da;

Deno.test("iotlb bound: invalidations that split one entry 100 times leave maxEntries entries, the oldest evicted", () => {
  // (Random eviction may drop the piece still being cut; the property test below covers it.)
  for (const eviction of ["fifo", "lru"] as const) {
    const tlb = new Iotlb({ maxEntries: 4, eviction });
    tlb.setMapping(0, 0x4000_0000, 0x100 * PAGE, ReadWrite);
    for (let i = 0; i < 100; i++) {
      tlb.invalidate(PAGE + i * 2 * PAGE, PAGE); // the middle of the last piece: a split every time
      assert.equal(tlb.size, Math.min(i + 2, 4), `${eviction}: after invalidation ${i + 1}`);
    }
    // 101 pieces were made, 4 stay: 97 evictions.
    assert.deepEqual(tlb.counters, { hits: 0, misses: 0, accessFailures: 0, evictions: 97, entries: 4 });
    const last = 0x1000 + 99 * 2 * PAGE + PAGE; // where the uncut tail of the mapping starts
    assert.deepEqual(tlb.entries().at(-1), {
      iova: BigInt(last),
      target: BigInt(0x4000_0000 + last),
      size: BigInt(0x100 * PAGE - last),
      perm: ReadWrite,
    });
    // Every piece keeps the stamp of the one mapping they came from: the lowest go first.
    assert.deepEqual(tlb.entries().map((e) => e.iova), [0xc2000n, 0xc4000n, 0xc6000n, BigInt(last)]);
  }
});

Deno.test("iotlb bound: an invalidation that evicts records the eviction after the invalidation, so replay agrees", () => {
  const tlb = new Iotlb({ maxEntries: 2 });
  const rec = new IotlbRecorder(64);
  tlb.record(rec);
  tlb.setMapping(0, 0x9000, 4 * PAGE, ReadWrite);
  tlb.invalidate(PAGE, PAGE);
  tlb.invalidate(2 * PAGE, PAGE); // the split of [2, 4) pages is a truncation: no eviction
  tlb.setMapping(0x10000, 0, PAGE, ReadWrite); // 3 entries: [0, 1), [3, 4), new; [0, 1) goes
  tlb.setMapping(0x20000, 0, 4 * PAGE, ReadWrite);
  tlb.invalidate(0x21000, PAGE); // [3, 4), 0x20000 and 0x22000: the oldest goes
  assert.deepEqual(rec.events().map((e) => `${e.kind} ${e.iova.toString(16)}+${e.size.toString(16)}`), [
    "map 0+4000",
    "invalidate 1000+1000",
    "invalidate 2000+1000",
    "map 10000+1000",
    "eviction 0+1000",
    "map 20000+4000",
    "eviction 3000+1000",
    "invalidate 21000+1000",
    "eviction 10000+1000",
  ]);
  assert.deepEqual(tlb.entries().map((e) => e.iova), [0x20000n, 0x22000n]);
  const copy = new Iotlb();
  rec.replay(copy);
  assert.deepEqual(copy.entries(), tlb.entries());
});

type Op =
  | { op: "set"; page: number; pages: number; target: number; perm: Permission }
  | { op: "inv"; at: number; len: number }
  | { op: "hit"; at: number }
  | { op: "all" };

const SPAN = 64 * PAGE;
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("set" as const),
      page: fc.nat(63),
      pages: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 16 })),
      // Some repeated targets, so that neighbours continue each other and merge as well as split.
      target: fc.oneof(fc.constantFrom(0, 0x100000), fc.nat(0xfff).map((p) => p * PAGE)),
      perm: fc.constantFrom<Permission>(1, 2, 3),
    }),
  },
  {
    // Byte-granular invalidations, mostly small: the hostile case, each one splitting an entry.
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("inv" as const),
      at: fc.nat(SPAN - 1),
      len: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 8 * PAGE })),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("hit" as const), at: fc.nat(SPAN - 1) }) },
  { weight: 1, arbitrary: fc.constant({ op: "all" as const }) },
);

/** Whether every byte of `e` translates the same in `full` (the unbounded table) with the same permission. */
function agrees(full: Iotlb, e: IotlbEntry): boolean {
  let at = e.iova;
  for (const f of full.entriesIn(e.iova, Number(e.size))) {
    if (f.iova > at || f.perm !== e.perm || f.target - f.iova !== e.target - e.iova) return false;
    at = f.iova + f.size;
  }
  return at >= e.iova + e.size;
}

Deno.test(`iotlb bound: random hostile sequences never leave more than maxEntries (fast-check seed ${BOUND_SEED})`, () => {
  let evicted = 0, splitsOverLimit = 0;
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 6 }),
      fc.constantFrom("fifo" as const, "lru" as const, "random" as const),
      fc.array(opArb, { minLength: 1, maxLength: 300, size: "max" }),
      (maxEntries, eviction, ops) => {
        const tlb = new Iotlb({ maxEntries, eviction, seed: 3 });
        const full = new Iotlb(); // the same operations without a limit
        const rec = new IotlbRecorder(4096);
        tlb.record(rec);
        for (const o of ops) {
          const before = tlb.size;
          if (o.op === "set") {
            const len = Math.min(o.pages, 64 - o.page) * PAGE;
            tlb.setMapping(o.page * PAGE, o.target + o.page * PAGE, len, o.perm);
            full.setMapping(o.page * PAGE, o.target + o.page * PAGE, len, o.perm);
          } else if (o.op === "inv") {
            const len = Math.min(o.len, SPAN - o.at);
            const evictions = tlb.counters.evictions;
            tlb.invalidate(o.at, len);
            full.invalidate(o.at, len);
            if (tlb.counters.evictions > evictions) splitsOverLimit++;
            assert.ok(tlb.size <= Math.max(before, maxEntries), "an invalidation never adds beyond the limit");
          } else if (o.op === "hit") {
            tlb.translateFast(o.at, 1, 0);
          } else {
            tlb.invalidateAll();
            full.invalidateAll();
          }
          assert.ok(tlb.size <= maxEntries, `${tlb.size} entries with maxEntries ${maxEntries} after ${o.op}`);
          assert.equal(tlb.counters.entries, tlb.size);
        }
        evicted += tlb.counters.evictions;
        // What stays is part of what the unbounded table holds: eviction only forgets translations.
        for (const e of tlb.entries()) assert.ok(agrees(full, e), `entry ${e.iova} disagrees`);
        const copy = new Iotlb();
        rec.replay(copy);
        assert.deepEqual(copy.entries(), tlb.entries());
      },
    ),
    { seed: BOUND_SEED, numRuns: 200, endOnFailure: true },
  );
  assert.ok(splitsOverLimit >= 200, `only ${splitsOverLimit} invalidations had to evict`);
  assert.ok(evicted >= 1000, `only ${evicted} evictions`);
});
