import assert from "node:assert/strict";
import fc from "fast-check";
import { InvalidArgumentError } from "../src/core/errors.ts";
import { Iotlb } from "../src/iommu/iotlb.ts";
import { type IotlbEvent, IotlbRecorder } from "../src/iommu/iotlb_recorder.ts";
import { type Permission, Permissions } from "../src/core/permissions.ts";

const { No, Read, Write, ReadWrite } = Permissions;
const TWO_64 = 2n ** 64n;

function argumentError(fn: () => unknown, op: string, argument: string): InvalidArgumentError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${e}`);
    assert.equal(e.kind, "InvalidArgument");
    assert.equal(e.op, op);
    assert.equal(e.argument, argument);
    return e;
  }
  assert.fail("nothing was thrown");
}

function recorded(capacity = 64, tlb = new Iotlb()): { tlb: Iotlb; rec: IotlbRecorder } {
  const rec = new IotlbRecorder(capacity);
  tlb.record(rec);
  return { tlb, rec };
}

function ev(
  seq: number,
  kind: IotlbEvent["kind"],
  iova: bigint,
  size: bigint,
  target: bigint | null,
  perm: Permission,
): IotlbEvent {
  return { seq, kind, iova, size, target, perm };
}

Deno.test("recorder: every kind of event is recorded in order with its range, target and permission", () => {
  const { tlb, rec } = recorded();
  tlb.setMapping(0x1000, 0x9000, 0x2000, ReadWrite);
  tlb.setMapping(0x8000, 0x20000, 0x1000, Read);
  tlb.invalidate(0x1800, 0x100);
  const r = tlb.lookup(0x7000, 0x1800, Write); // [0x7000, 0x8000) unmapped, [0x8000, 0x8800) read-only
  assert.equal(r.ok, false);
  tlb.invalidateAll();
  assert.deepEqual(rec.events(), [
    ev(1, "map", 0x1000n, 0x2000n, 0x9000n, ReadWrite),
    ev(2, "map", 0x8000n, 0x1000n, 0x20000n, Read),
    ev(3, "invalidate", 0x1800n, 0x100n, null, No),
    ev(4, "miss", 0x7000n, 0x1000n, null, Write),
    ev(5, "access-failure", 0x8000n, 0x800n, null, Write),
    ev(6, "invalidate", 0n, TWO_64, null, No),
  ]);
  assert.equal(rec.length, 6);
  assert.equal(rec.dropped, 0);
});

Deno.test("recorder: an eviction is recorded after the mapping that caused it, with the whole evicted entry", () => {
  const tlb = new Iotlb({ maxEntries: 2, eviction: "fifo" });
  tlb.setMapping(0x1000, 0x5000, 0x1000, Read);
  tlb.setMapping(0x2000, 0x6000, 0x1000, Read); // merges with the first: one entry of 0x2000
  tlb.setMapping(0x8000, 0x10000, 0x1000, Write);
  const rec = new IotlbRecorder(8);
  tlb.record(rec);
  tlb.setMapping(0x20000, 0x30000, 0x1000, ReadWrite);
  assert.deepEqual(rec.events(), [
    ev(1, "map", 0x20000n, 0x1000n, 0x30000n, ReadWrite),
    ev(2, "eviction", 0x1000n, 0x2000n, 0x5000n, Read),
  ]);
  assert.equal(tlb.counters.evictions, 1);
});

Deno.test("recorder: hits, translateFast and probe leave no events; a failed translateFast records nothing by itself", () => {
  const { tlb, rec } = recorded();
  tlb.setMapping(0x1000, 0x9000, 0x1000, Read);
  assert.equal(tlb.translateFast(0x1000, 8, Read), 0x9000);
  assert.equal(tlb.translateFast(0x5000, 8, Read), -1);
  assert.equal(tlb.lookup(0x1000, 8, Read).ok, true);
  assert.equal(tlb.probe(0x5000, 8, Read).ok, false);
  assert.equal(tlb.probe(0x1000, 8, Write).ok, false);
  assert.deepEqual(rec.events().map((e) => e.kind), ["map"]);
  // The probe's suppression ends with it: the next failing lookup is recorded again.
  tlb.lookup(0x5000, 8, Read);
  assert.deepEqual(rec.events().map((e) => [e.seq, e.kind, e.iova]), [[1, "map", 0x1000n], [2, "miss", 0x5000n]]);
});

Deno.test("recorder: the ring keeps the newest `capacity` events and counts the dropped ones", () => {
  const { tlb, rec } = recorded(3);
  for (let i = 0; i < 5; i++) tlb.setMapping(i * 0x10000, i * 0x1000, 0x100, Read);
  assert.equal(rec.capacity, 3);
  assert.equal(rec.length, 3);
  assert.equal(rec.dropped, 2);
  assert.deepEqual(rec.events().map((e) => [e.seq, e.iova]), [[3, 0x20000n], [4, 0x30000n], [5, 0x40000n]]);
  const copy = rec.events();
  copy[0].iova = 1n;
  assert.equal(rec.events()[0].iova, 0x20000n, "events() hands out copies");
});

Deno.test("recorder: a capacity of 1 keeps only the last event", () => {
  const { tlb, rec } = recorded(1);
  tlb.setMapping(0, 0, 1, Read);
  tlb.invalidate(0, 1);
  assert.deepEqual(rec.events(), [ev(2, "invalidate", 0n, 1n, null, No)]);
  assert.equal(rec.dropped, 1);
});

Deno.test("recorder: replay rebuilds identical entries, also after events fell out of the ring", () => {
  const { tlb, rec } = recorded(2);
  tlb.setMapping(0x1000, 0x9000, 0x4000, ReadWrite);
  tlb.setMapping(0x10000, 0x20000, 0x1000, Read);
  tlb.invalidate(0x2000, 0x1000);
  tlb.setMapping(0x11000, 0x21000, 0x1000, Read); // merges with the entry at 0x10000
  assert.equal(rec.dropped, 2);
  const copy = new Iotlb();
  assert.equal(rec.replay(copy), 2);
  assert.deepEqual(copy.entries(), tlb.entries());
  assert.equal(copy.size, 3);
});

Deno.test("recorder: replay starts from the entries the IOTLB had when the recorder was attached", () => {
  const tlb = new Iotlb();
  tlb.setMapping(0x4000, 0x8000, 0x1000, Write);
  const rec = new IotlbRecorder(4);
  tlb.record(rec);
  tlb.setMapping(0x5000, 0x9000, 0x1000, Write);
  const copy = new Iotlb();
  rec.replay(copy);
  assert.deepEqual(copy.entries(), [{ iova: 0x4000n, target: 0x8000n, size: 0x2000n, perm: Write }]);
  assert.deepEqual(copy.entries(), tlb.entries());
});

Deno.test("recorder: replay handles entries larger than 2^53 and ranges ending at 2^64", () => {
  const tlb = new Iotlb();
  // Two maximal mappings that merge into one entry of 2^54 - 2 bytes.
  const n = Number.MAX_SAFE_INTEGER;
  tlb.setMapping(0, 0x1000n, n, Read);
  tlb.setMapping(BigInt(n), 0x1000n + BigInt(n), n, Read);
  const rec = new IotlbRecorder(1);
  tlb.record(rec);
  tlb.setMapping(TWO_64 - 0x1000n, 0x5000, 0x1000, ReadWrite);
  tlb.setMapping(TWO_64 - 0x3000n, 0x7000, 0x1000, Write); // drops the previous event into the snapshot
  const copy = new Iotlb();
  rec.replay(copy);
  assert.deepEqual(copy.entries(), tlb.entries());
  assert.equal(copy.entries()[0].size, 2n * BigInt(n));
});

Deno.test("recorder: a bounded IOTLB's evictions replay as removals, giving identical entries", () => {
  const tlb = new Iotlb({ maxEntries: 3, eviction: "random", seed: 11 });
  const rec = new IotlbRecorder(5);
  tlb.record(rec);
  for (let i = 0; i < 20; i++) tlb.setMapping(i * 0x3000, (i % 7) * 0x10000, 0x1000, (i % 4) as Permission);
  assert.equal(tlb.counters.evictions, 17);
  const copy = new Iotlb();
  rec.replay(copy);
  assert.deepEqual(copy.entries(), tlb.entries());
});

Deno.test("recorder: replay gives identical entries for random operation sequences (property)", () => {
  const addr = fc.integer({ min: 0, max: 63 }).map((p) => p * 0x400);
  const op = fc.oneof(
    fc.record({
      kind: fc.constant("map" as const),
      iova: addr,
      target: addr,
      len: fc.integer({ min: 1, max: 8 }).map((n) => n * 0x400),
      perm: fc.constantFrom<Permission>(0, 1, 2, 3),
    }),
    fc.record({ kind: fc.constant("invalidate" as const), iova: addr, len: fc.integer({ min: 1, max: 0x3000 }) }),
    fc.record({ kind: fc.constant("lookup" as const), iova: addr, len: fc.integer({ min: 1, max: 0x3000 }) }),
    fc.constant({ kind: "all" as const }),
  );
  fc.assert(
    fc.property(
      fc.array(op, { maxLength: 60 }),
      fc.integer({ min: 1, max: 12 }),
      fc.option(fc.integer({ min: 1, max: 6 }), { nil: undefined }),
      (ops, capacity, maxEntries) => {
        const tlb = new Iotlb(maxEntries === undefined ? {} : { maxEntries, eviction: "lru" });
        const rec = new IotlbRecorder(capacity);
        tlb.record(rec);
        for (const o of ops) {
          if (o.kind === "map") tlb.setMapping(o.iova, o.target, o.len, o.perm);
          else if (o.kind === "invalidate") tlb.invalidate(o.iova, o.len);
          else if (o.kind === "lookup") tlb.lookup(o.iova, o.len, Read);
          else tlb.invalidateAll();
        }
        const copy = new Iotlb();
        rec.replay(copy);
        assert.deepEqual(copy.entries(), tlb.entries());
        assert.equal(rec.length + rec.dropped, rec.events().at(-1)?.seq ?? 0);
      },
    ),
    { numRuns: 300, seed: 20240611 },
  );
});

Deno.test("recorder: re-attaching restarts it from the IOTLB's current entries; detaching stops it", () => {
  const { tlb, rec } = recorded(4);
  tlb.setMapping(0x1000, 0x1000, 0x1000, Read);
  tlb.record(undefined);
  tlb.setMapping(0x3000, 0x3000, 0x1000, Read);
  assert.equal(rec.length, 1);
  tlb.record(rec);
  assert.equal(rec.length, 0);
  tlb.invalidate(0x1000, 0x1000);
  assert.deepEqual(rec.events(), [ev(1, "invalidate", 0x1000n, 0x1000n, null, No)]);
  const copy = new Iotlb();
  rec.replay(copy);
  assert.deepEqual(copy.entries(), [{ iova: 0x3000n, target: 0x3000n, size: 0x1000n, perm: Read }]);
});

Deno.test("recorder: bad capacities, a non-empty replay target and a non-recorder are refused with typed errors", () => {
  for (const bad of [0, -1, 1.5, NaN, 2 ** 53]) {
    argumentError(() => new IotlbRecorder(bad), "new IotlbRecorder", "capacity");
  }
  argumentError(() => new IotlbRecorder("8" as unknown as number), "new IotlbRecorder", "capacity");
  const { tlb, rec } = recorded();
  tlb.setMapping(0, 0, 1, Read);
  const e = argumentError(() => rec.replay(tlb), "IotlbRecorder.replay", "into");
  assert.match(e.message, /must be an empty Iotlb/);
  argumentError(() => rec.replay({} as Iotlb), "IotlbRecorder.replay", "into");
  argumentError(() => tlb.record(5 as unknown as IotlbRecorder), "Iotlb.record", "recorder");
  argumentError(() => tlb.record(null as unknown as IotlbRecorder), "Iotlb.record", "recorder");
});

Deno.test("recorder: toJSON gives hex ranges and permission names; the inspect text lists the events", async () => {
  const { tlb, rec } = recorded(2);
  tlb.setMapping(0x1000, 0x9000, 0x1000, Read);
  tlb.lookup(0x3000, 8, Write);
  tlb.invalidate(0x1000, 0x10);
  assert.deepEqual(JSON.parse(JSON.stringify(rec)), {
    capacity: 2,
    dropped: 1,
    events: [
      { seq: 2, kind: "miss", iova: "0x3000", size: "0x8", target: null, perm: "Write" },
      { seq: 3, kind: "invalidate", iova: "0x1000", size: "0x10", target: null, perm: "No" },
    ],
  });
  const { inspect } = await import("node:util");
  assert.equal(
    inspect(rec),
    [
      "IotlbRecorder: 2 events (capacity 2, 1 dropped)",
      "  #2  miss        0000000000003000-0000000000003007      Write",
      "  #3  invalidate  0000000000001000-000000000000100f",
    ].join("\n"),
  );
});
