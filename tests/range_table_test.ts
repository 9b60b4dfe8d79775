import assert from "node:assert/strict";
import fc from "fast-check";
import { assign, carve } from "../src/iommu/range_edit.ts";
import { CHUNK, RangeEntry, RangeTable } from "../src/iommu/range_table.ts";
import { U64Pair } from "../src/iommu/u64_key.ts";

// The IOTLB's byte model (iotlb_test.ts) checks every edit path on small tables; these tests check
// RangeTable itself at the sizes where its chunks split, join and move: thousands of entries,
// against a list of segments, with its cursor and accessors read after every batch.

interface Segment {
  start: bigint;
  end: bigint;
  diff: bigint;
  perm: number;
}

/** vm-memory's range map on a sorted segment list: remove `[start, end)`, splitting what it crosses. */
function modelCarve(model: Segment[], start: bigint, end: bigint): Segment[] {
  const out: Segment[] = [];
  for (const s of model) {
    if (s.end <= start || s.start >= end) {
      out.push(s);
      continue;
    }
    if (s.start < start) out.push({ ...s, end: start });
    if (s.end > end) out.push({ ...s, start: end });
  }
  return out;
}

/** Maps `[start, end)`, then merges neighbours that touch with the same diff and permissions. */
function modelAssign(model: Segment[], seg: Segment): Segment[] {
  const out = modelCarve(model, seg.start, seg.end);
  const at = out.findIndex((s) => s.start > seg.start);
  out.splice(at < 0 ? out.length : at, 0, { ...seg });
  const merged: Segment[] = [];
  for (const s of out) {
    const last = merged.at(-1);
    if (last && last.end === s.start && last.diff === s.diff && last.perm === s.perm) last.end = s.end;
    else merged.push({ ...s });
  }
  return merged;
}

/** Every entry of `t` in order, read through the cursor and the exact accessors. */
function tableSegments(t: RangeTable): Segment[] {
  const out: Segment[] = [];
  const e = new RangeEntry();
  for (t.seekFirst(); !t.atEnd(); t.advance()) {
    t.read(t.here(), e);
    out.push({ start: e.start.toBigInt(), end: e.end.toBigInt(), diff: e.diff.toBigInt(), perm: e.perm });
  }
  return out;
}

type Op =
  | { op: "map"; page: number; pages: number; target: number; perm: number }
  | { op: "unmap"; page: number; pages: number; offset: number };

const PAGES = 40_000;
const UNIT = 0x1000n;
const SEED = 0x7ab1e;

const pagesArb = fc.oneof(
  { weight: 12, arbitrary: fc.constant(1) },
  { weight: 3, arbitrary: fc.integer({ min: 2, max: 8 }) },
  { weight: 1, arbitrary: fc.integer({ min: 9, max: 64 }) },
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("map" as const),
      page: fc.nat(PAGES - 1),
      pages: pagesArb,
      // Few distinct targets, so that neighbours often continue each other and merge.
      target: fc.oneof(fc.nat(PAGES), fc.constantFrom(0, 1, 2)),
      perm: fc.constantFrom(1, 3),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant("unmap" as const),
      page: fc.nat(PAGES - 1),
      pages: pagesArb,
      // Unmaps that start inside a page split entries in the middle.
      offset: fc.constantFrom(0, 0, 0x800),
    }),
  },
);

/**
 * Runs random maps and unmaps at `base` (IOVAs) on a RangeTable and on the segment list side by
 * side; after each batch, compares every entry, then checks locate, floor (below 2^53), rank,
 * seekRank, before and after at sampled addresses against the list.
 */
function checkAgainstModel(base: bigint, stamped: boolean): void {
  const numeric = base + BigInt(PAGES + 70) * UNIT <= 2n ** 53n;
  let biggest = 0, mostChunks = 0;
  fc.assert(
    fc.property(
      fc.array(fc.array(opArb, { minLength: 100, maxLength: 600, size: "max" }), {
        minLength: 4,
        maxLength: 12,
        size: "max",
      }),
      (batches) => {
        const t = new RangeTable(stamped);
        const entry = new RangeEntry();
        const from = new U64Pair(), to = new U64Pair(), probe = new U64Pair();
        let model: Segment[] = [];
        let stamp = 0;
        for (const batch of batches) {
          for (const o of batch) {
            const start = base + BigInt(o.page) * UNIT + (o.op === "unmap" ? BigInt(o.offset) : 0n);
            const end = start + BigInt(o.pages) * UNIT;
            if (o.op === "map") {
              const diff = BigInt(o.target) * UNIT - (start - base);
              entry.start.setBigInt(start);
              entry.end.setBigInt(end);
              entry.diff.setBigInt(diff);
              entry.perm = o.perm;
              entry.stamp = ++stamp;
              assign(t, entry);
              model = modelAssign(model, { start, end, diff, perm: o.perm });
            } else {
              carve(t, from.setBigInt(start), to.setBigInt(end));
              model = modelCarve(model, start, end);
            }
          }
          assert.deepEqual(tableSegments(t), model);
          assert.equal(t.size, model.length);
          biggest = Math.max(biggest, t.size);
          mostChunks = Math.max(mostChunks, t.chunkCount);
          // A table that shrank joins its chunks: never more than one per CHUNK / 4 entries, plus one.
          assert.ok(t.chunkCount <= Math.ceil(t.size / (CHUNK / 4)) + 1, `${t.size} entries in ${t.chunkCount} chunks`);
          for (let q = 0; q < 60; q++) {
            const x = base + BigInt((q * 7919) % (PAGES + 70)) * UNIT + BigInt(q % 3) * 0x7ffn;
            const next = model.findIndex((s) => s.end > x);
            t.locate(probe.setBigInt(x));
            if (next < 0) {
              assert.ok(t.atEnd(), `locate ${x}: past the last entry`);
            } else {
              const h = t.here();
              assert.deepEqual(
                [t.readStart(h, from).toBigInt(), t.readEnd(h, to).toBigInt()],
                [model[next].start, model[next].end],
                `locate ${x}`,
              );
              assert.equal(t.rank(), next, `rank at ${x}`);
              const before = t.before(), after = t.after();
              assert.equal(before < 0 ? -1n : t.readEnd(before, from).toBigInt(), next > 0 ? model[next - 1].end : -1n);
              assert.equal(
                after < 0 ? -1n : t.readStart(after, from).toBigInt(),
                next + 1 < model.length ? model[next + 1].start : -1n,
              );
              t.seekRank(next);
              assert.equal(t.here(), h, `seekRank ${next}`);
            }
            if (numeric) {
              const at = model.findLastIndex((s) => s.start <= x);
              const h = t.floor(Number(x));
              assert.equal(h < 0 ? -1 : t.rank(), at, `floor ${x}`);
              if (h >= 0) assert.equal(BigInt(t.start(h)), model[at].start);
            }
          }
        }
      },
    ),
    { seed: SEED, numRuns: 10, endOnFailure: true },
  );
  // The runs must have reached the sizes this test is for.
  assert.ok(biggest >= 2000 && mostChunks >= 40, `at most ${biggest} entries in ${mostChunks} chunks`);
}

Deno.test(`range table: maps and unmaps over thousands of entries match a segment model (seed ${SEED})`, () => {
  checkAgainstModel(0n, false);
});

Deno.test(`range table: the segment model also holds for a stamped table just below 2^53 (seed ${SEED})`, () => {
  checkAgainstModel(2n ** 53n - BigInt(PAGES + 70) * UNIT, true);
});

Deno.test(`range table: the segment model also holds across 2^53 and up to 2^64 (seed ${SEED})`, () => {
  checkAgainstModel(2n ** 53n - 5000n * UNIT, false);
  checkAgainstModel(2n ** 64n - BigInt(PAGES + 70) * UNIT, false);
});

Deno.test("range table: seekOldest finds the smallest stamp as stamps rise in place, across chunks", () => {
  const t = new RangeTable(true);
  const e = new RangeEntry();
  const n = CHUNK * 6;
  // Inserted in a shuffled order, so stamps do not follow IOVA order.
  for (let j = 0; j < n; j++) {
    const page = (j * 37) % n;
    e.start.setNumber(page * 2);
    e.end.setNumber(page * 2 + 1);
    e.stamp = j + 1;
    assign(t, e);
  }
  // Renew every entry but the one inserted 100th, oldest first: it is then the oldest.
  let tick = n;
  for (let j = 0; j < n; j++) {
    if (j === 99) continue;
    const page = (j * 37) % n;
    t.floor(page * 2);
    t.setStamp(t.here(), ++tick);
  }
  t.seekOldest();
  assert.equal(t.start(t.here()), ((99 * 37) % n) * 2);
  assert.equal(t.stamp(t.here()), 100);
  t.remove(1);
  t.seekOldest();
  assert.equal(t.stamp(t.here()), n + 1, "then the first renewed");
  assert.equal(t.start(t.here()), 0);
});

Deno.test("range table: lookups find every entry while chunks split and join", async () => {
  const { Iotlb } = await import("../iommu.ts");
  const { Permissions } = await import("../mod.ts");
  const PAGE = 0x1000, n = 5 * CHUNK;
  const tlb = new Iotlb();
  // Out of order, so that chunks split in their middle rather than only filling at the end.
  for (let j = 0; j < n; j++) {
    const i = (j * 97) % n;
    tlb.setMapping(2 * i * PAGE, (3 * i + 1) * PAGE, PAGE, Permissions.ReadWrite);
  }
  const check = (live: (i: number) => boolean) => {
    for (let i = 0; i < n; i++) {
      const want = live(i) ? (3 * i + 1) * PAGE + 8 : -1;
      assert.equal(tlb.translateFast(2 * i * PAGE + 8, 8, Permissions.Read), want, `entry ${i}`);
    }
  };
  check(() => true);
  // Empty most of the middle chunks so that they join their neighbours, looking everything up after
  // every removal (a join moves entries into a chunk with no other write there).
  const gone = (i: number) => i >= CHUNK + 3 && i < 3 * CHUNK - 3 && i % 7 !== 0;
  const removed = new Set<number>();
  for (let i = 0; i < n; i++) {
    if (!gone(i)) continue;
    tlb.invalidate(2 * i * PAGE, PAGE);
    removed.add(i);
    check((j) => !removed.has(j));
  }
  // And fill the gaps again, each entry now between kept neighbours.
  for (let i = 0; i < n; i++) {
    if (gone(i)) tlb.setMapping(2 * i * PAGE, (3 * i + 1) * PAGE, PAGE, Permissions.ReadWrite);
  }
  check(() => true);
});
