/**
 * Resources over time: mapping and closing regions by the hundred thousand, creating and dropping
 * slices by the million, failing mappings, and an IOTLB under a storm of a million mappings must
 * leave the process as they found it: no mapping, memory or descriptor that grows with the work,
 * and an IOTLB that never holds more than its limit.
 *
 * The process's own figures (mappings, virtual and resident bytes, descriptors) also move with the
 * runtime's heap, so they are judged by growth that scales with the work (tests/fixtures/growth.ts:
 * batch A of n rounds, batch B of 4n, after a warm-up); what only this library creates (mappings of
 * the distinctive sizes the tests use, memfds and the tests' `gmem-…` files) is compared exactly.
 * @module
 */

import assert from "node:assert/strict";
import {
  FileOffset,
  GuestMemoryError,
  GuestMemoryMmap,
  hostProtection,
  MAP_HUGETLB,
  MAP_SHARED,
  MappingPastEofError,
  MmapRegion,
  Permissions,
  SyscallError,
} from "../mod.ts";
import { IommuMemory, Iotlb, type IotlbCounters, IotlbIommu } from "../iommu.ts";
import { type LeakRates, leaks, measureGrowth } from "./fixtures/growth.ts";
import { libraryFds, mappingSizes, processFigures } from "./fixtures/process_figures.ts";

const PAGE = 4096;

/**
 * The process figures after a full collection where the runtime offers one to scripts (Bun): under
 * load JavaScriptCore put off collecting and its heap pages showed as resident memory growing with
 * the work (30, 48 then 131 MB over the memfd batches of one CI run), which a full collection
 * clears; memory a leak keeps stays. Deno's V8 exposes no collection here and needed none.
 */
function sampleAfterCollecting(): ReturnType<typeof processFigures> {
  (globalThis as { Bun?: { gc(force: boolean): void } }).Bun?.gc(true);
  return processFigures();
}

/**
 * Runs `round` in batches (see growth.ts) and returns the growth of the process figures, with the
 * library's own descriptors counted before the first batch and after the last.
 */
function measured(n: number, round: (i: number) => void) {
  const fdsBefore = libraryFds();
  const growth = measureGrowth(n, round, sampleAfterCollecting);
  return { growth, fdsBefore, fdsAfter: libraryFds() };
}

/** Asserts the library's descriptors are back exactly and no figure grew with the work. */
function assertSteady(run: ReturnType<typeof measured>, what: string, minLeak: LeakRates): void {
  assert.equal(run.fdsAfter, run.fdsBefore, `${what}: open file and memfd descriptors`);
  assert.deepEqual(leaks(run.growth, minLeak), [], `${what}: ${JSON.stringify(run.growth)}`);
}

/** What a leak per round of one resource of each kind would add at least (or of one in `every`). */
function perRound(every = 1): LeakRates {
  return { mappings: 1 / every, virtualBytes: PAGE / every, rssBytes: PAGE / every, openFds: 1 / every };
}

Deno.test("leak: mapping, touching and closing 96,000 regions adds no mapping, memory or descriptor that grows with the work", () => {
  const odd = 0x35b000; // a size nothing else maps, so a leftover would be visible in /proc/self/maps
  const already = mappingSizes().filter((s) => s === odd).length;
  const run = measured(16_000, (i) => {
    const r = MmapRegion.anonymous(i % 8 === 0 ? odd : PAGE);
    r.write(new Uint8Array([i & 0xff]), 0); // resident now: a leaked page would show in RSS
    r.close();
  });
  assertSteady(run, "anonymous regions", perRound());
  assert.equal(mappingSizes().filter((s) => s === odd).length, already, "no region of the odd size is left");
});

Deno.test("leak: 24,000 memfd regions, file mappings and guest memories with bitmaps close their descriptors and mappings", () => {
  const path = Deno.makeTempFileSync({ prefix: "gmem-leak-" });
  try {
    Deno.writeFileSync(path, new Uint8Array(2 * PAGE));
    const run = measured(4000, (i) => {
      using fd = MmapRegion.memfd(PAGE, { name: "gmem-leak" });
      fd.write(new Uint8Array([1]), 0);
      using file = MmapRegion.fromFile(FileOffset.fromPath(path), 2 * PAGE);
      using mem = GuestMemoryMmap.fromRanges([[0, PAGE], [0x10000, 2 * PAGE]], { dirtyPageSize: PAGE });
      mem.writeU32(0x10004, i);
      void file.bytes(0, 1)[0];
    });
    assertSteady(run, "memfd, file and guest memory", perRound());
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("leak: creating and dropping 2,700,000 slices (guest memory, region, subslices, IOMMU) keeps resident memory flat", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x10000], [0x10000, 0x10000]], { dirtyPageSize: PAGE });
  const iotlb = new Iotlb();
  iotlb.setMapping(0x100000, 0, 0x20000, Permissions.ReadWrite);
  const iommu = new IommuMemory(mem, new IotlbIommu(iotlb));
  const region = mem.regions()[0];
  let sum = 0;
  const run = measured(150_000, (i) => {
    const a = mem.getSlice(i & 0xfff0, 16);
    const b = region.getSlice(0x100, 0x100).subslice(i & 0xf0, 8);
    const c = iommu.getSlices(0x100000 + (i & 0x1fff0), 8);
    a.writeU8(0, i & 0xff);
    sum += b.readU8(0) + c.length;
  });
  assert.ok(sum > 0);
  // Four slice objects a round: keeping even 64 bytes of them a round is a leak.
  assertSteady(run, "slices", { mappings: 1, virtualBytes: 64, rssBytes: 64, openFds: 1 });
});

Deno.test("leak: closing twice is harmless: the second close does not unmap what was mapped there since", () => {
  const fds = libraryFds();
  const a = MmapRegion.anonymous(PAGE);
  a.close();
  // The kernel usually hands the freed range to the next mapping of that size.
  const b = MmapRegion.anonymous(PAGE);
  b.write(new Uint8Array([0x5a]), 0);
  a.close();
  a[Symbol.dispose]();
  assert.deepEqual(hostProtection(b.hostAddress), { prot: 3, shared: false }, "b is still mapped");
  assert.equal(b.bytes(0, 1)[0], 0x5a);

  const mem = GuestMemoryMmap.fromRanges([[0, PAGE], [0x10000, PAGE]]);
  mem.close();
  const c = MmapRegion.memfd(PAGE);
  c.write(new Uint8Array([7]), 0);
  mem.close();
  mem.regions()[1].close();
  mem[Symbol.dispose]();
  assert.deepEqual(hostProtection(c.hostAddress), { prot: 3, shared: true }, "c is still mapped");
  assert.equal(c.bytes(0, 1)[0], 7);
  assert.equal(c.fd !== undefined, true, "c's memfd is still open");
  c.close();
  b.close();
  assert.equal(libraryFds(), fds);
});

// ---- mapping failures from the kernel ----

/**
 * Runs a failing mapping 600 times (see growth.ts); returns the error and checks nothing was left
 * behind. `distinctiveSize` is the size of what the failure path maps before it fails, if anything.
 */
function failsCleanly(what: string, fn: () => unknown, distinctiveSize?: number): Error {
  let error: unknown;
  const sized = () => mappingSizes().filter((s) => s === distinctiveSize).length;
  const already = distinctiveSize === undefined ? 0 : sized();
  let mapped = 0;
  const run = measured(100, () => {
    try {
      (fn() as { close(): void }).close();
      mapped++;
    } catch (e) {
      error = e;
    }
  });
  assert.equal(mapped, 0, `${what}: the mapping succeeded`);
  // A failure path can leave a descriptor, a mapping, or (where it maps something first) the
  // distinctive reservation; the runtime's heap pages (256 KiB each, several MiB at a time) are
  // far below a reservation a round, so only such paths are judged by virtual size.
  const minLeak: LeakRates = { mappings: 1, openFds: 1 };
  if (distinctiveSize !== undefined) minLeak.virtualBytes = distinctiveSize;
  assertSteady(run, what, minLeak);
  if (distinctiveSize !== undefined) assert.equal(sized(), already, `${what}: a half-built mapping is left`);
  assert.ok(error instanceof Error);
  return error;
}

Deno.test("mapping failures: ENOMEM for an impossible size without MAP_NORESERVE is a typed SyscallError and leaves nothing", () => {
  const e = failsCleanly("ENOMEM", () => MmapRegion.anonymous(2 ** 46, { noReserve: false }));
  assert.ok(e instanceof SyscallError, String(e));
  assert.deepEqual([e.kind, e.op, e.syscall, e.errnoName], ["Syscall", "MmapRegion.anonymous", "mmap", "ENOMEM"]);
  assert.equal(e.args.length, 2 ** 46);
  assert.match(e.message, /^MmapRegion\.anonymous: mmap\(length=0x400000000000, .*\) failed: ENOMEM/);
});

Deno.test("mapping failures: a memfd whose mapping fails closes the memfd it created", () => {
  const e = failsCleanly("memfd ENOMEM", () => MmapRegion.memfd(2 ** 47, { noReserve: false }));
  assert.ok(e instanceof SyscallError, String(e));
  assert.deepEqual([e.op, e.syscall, e.errnoName], ["MmapRegion.memfd", "mmap", "ENOMEM"]);
});

Deno.test("mapping failures: EINVAL from the kernel (MAP_HUGETLB on a plain file) inside a guard-page reservation unmaps the reservation", () => {
  const path = Deno.makeTempFileSync({ prefix: "gmem-leak-" });
  try {
    const size = 2 ** 20 + 5 * PAGE; // 200 leaked reservations of this would be 200 MiB of address space
    Deno.truncateSync(path, size);
    const guard = 3 * PAGE;
    const e = failsCleanly(
      "EINVAL",
      () =>
        MmapRegion.fromFile(FileOffset.fromPath(path), size, { flags: MAP_SHARED | MAP_HUGETLB, guardPages: guard }),
      2 * guard + size,
    );
    assert.ok(e instanceof SyscallError, String(e));
    assert.deepEqual([e.op, e.syscall, e.errnoName], ["MmapRegion.fromFile", "mmap", "EINVAL"]);
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("mapping failures: a file shorter than the mapping is MappingPastEof with the sizes, and its descriptor is closed", () => {
  const path = Deno.makeTempFileSync({ prefix: "gmem-leak-" });
  try {
    Deno.writeFileSync(path, new Uint8Array(3 * PAGE));
    const e = failsCleanly("past EOF", () => MmapRegion.fromFile(FileOffset.fromPath(path, PAGE), 3 * PAGE));
    assert.ok(e instanceof MappingPastEofError, String(e));
    assert.deepEqual([e.kind, e.op, e.fileSize, e.start, e.size], [
      "MappingPastEof",
      "MmapRegion.fromFile",
      3n * BigInt(PAGE),
      BigInt(PAGE),
      3 * PAGE,
    ]);
    assert.equal(
      e.message,
      "MmapRegion.fromFile: file range [0x1000, 0x4000) extends past the end of the file (0x3000 bytes)",
    );
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("mapping failures: guest memory whose second range fails (or overlaps) unmaps the regions it had already mapped", () => {
  const odd = 0x35b000;
  // Guard pages keep a leaked region from merging with its neighbours, so its odd size would show.
  const guarded = { guardPages: PAGE };
  const failing = failsCleanly(
    "second range ENOMEM",
    () => GuestMemoryMmap.fromRanges([[0, odd], [0x1000_0000, 2 ** 46]], { ...guarded, noReserve: false }),
    odd,
  );
  assert.ok(failing instanceof SyscallError, String(failing));
  assert.deepEqual([failing.op, failing.errnoName], ["MmapRegion.anonymous", "ENOMEM"]);
  const overlap = failsCleanly("overlap", () => GuestMemoryMmap.fromRanges([[0, odd], [0x1000, odd]], guarded), odd);
  assert.ok(overlap instanceof GuestMemoryError);
  assert.deepEqual([overlap.kind, overlap.op], [
    "MemoryRegionOverlap",
    "GuestMemoryMmap.fromRanges",
  ]);
});

// ---- bounded resources ----

/** A page index per step that never repeats below 2^20 steps (an odd multiplier is a bijection). */
function page(i: number): number {
  return Math.imul(i, 0x9e3779b1) & 0xfffff;
}

for (const eviction of ["fifo", "lru", "random"] as const) {
  Deno.test(`bounded: an Iotlb with maxEntries 1024 (${eviction}) under 1,000,000 distinct 4 KiB mappings stays at its limit with exact counters`, () => {
    const limit = 1024, inserts = 1_000_000;
    const iotlb = new Iotlb({ maxEntries: limit, eviction });
    for (let i = 0; i < inserts; i++) {
      const p = page(i);
      // Each page maps to 3 * page: no two neighbours share a target offset, so nothing merges.
      iotlb.setMapping(p * PAGE, p * 3 * PAGE, PAGE, Permissions.ReadWrite);
    }
    const expected: IotlbCounters = {
      hits: 0,
      misses: 0,
      accessFailures: 0,
      evictions: inserts - limit,
      entries: limit,
    };
    assert.deepEqual(iotlb.counters, expected);
    assert.equal(iotlb.size, limit);
    const entries = iotlb.entries();
    assert.equal(entries.length, limit);
    for (const e of entries) {
      assert.equal(e.size, BigInt(PAGE));
      assert.equal(e.target, e.iova * 3n);
    }
    // The newest mapping always survives; with fifo and lru (no lookups) exactly the newest `limit` do.
    const last = page(inserts - 1);
    assert.ok(iotlb.lookup(last * PAGE, 8, Permissions.Read).ok);
    if (eviction !== "random") {
      const kept = new Set(entries.map((e) => Number(e.iova) / PAGE));
      const newest = new Set(Array.from({ length: limit }, (_, k) => page(inserts - 1 - k)));
      assert.deepEqual(kept, newest);
      assert.equal(iotlb.lookup(page(inserts - limit - 1) * PAGE, 8, Permissions.Read).ok, false);
    }
    assert.deepEqual(iotlb.counters, { ...expected, hits: 1, misses: eviction === "random" ? 0 : 1 });
  });
}

Deno.test("bounded: with lru, entries that keep being looked up survive a storm; merged and overwritten mappings evict nothing", () => {
  const iotlb = new Iotlb({ maxEntries: 64, eviction: "lru" });
  const hot = [page(1), page(2), page(3)];
  for (let i = 0; i < 200_000; i++) {
    iotlb.setMapping(page(i) * PAGE, page(i) * 3 * PAGE, PAGE, Permissions.Read);
    if (i >= 3) {
      for (const p of hot) assert.ok(iotlb.lookup(p * PAGE, 1, Permissions.Read).ok, `hot page ${p} at ${i}`);
    }
  }
  assert.equal(iotlb.counters.evictions, 200_000 - 64);
  assert.equal(iotlb.counters.entries, 64);
  // Contiguous identity pages merge into one entry; remapping the same page replaces it.
  const merged = new Iotlb({ maxEntries: 4 });
  for (let i = 0; i < 100_000; i++) merged.setMapping(i * PAGE, i * PAGE, PAGE, Permissions.ReadWrite);
  for (let i = 0; i < 100_000; i++) merged.setMapping(0x1_0000_0000 + PAGE, i * PAGE, PAGE, Permissions.Read);
  assert.deepEqual(merged.counters, { hits: 0, misses: 0, accessFailures: 0, evictions: 0, entries: 2 });
  assert.deepEqual(merged.entries().map((e) => [e.iova, e.size]), [[0n, 100_000n * BigInt(PAGE)], [
    0x1_0000_1000n,
    BigInt(PAGE),
  ]]);
});
