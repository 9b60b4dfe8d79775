/**
 * Revocation modes of `IommuMemory`: `"views"` detaches the zero-copy views of a slice at the IOTLB
 * change that takes its translation away, `"methods"` (the default) only makes the slice's methods
 * throw, `"off"` never revokes. Everything runs on real mapped memory; the cases that would kill
 * the process if a view outlived its memory, and the leak checks that need `gc()`, run in child
 * processes (`tests/fixtures/revocation_cases.ts`).
 * @module
 */

import assert from "node:assert/strict";
import {
  GuestIOError,
  GuestMemoryMmap,
  hostProtection,
  InvalidArgumentError,
  type Permission,
  Permissions,
  PROT_READ,
  type VolatileSlice,
} from "../mod.ts";
import { IommuMemory, Iotlb, IotlbIommu, type RevocationMode, SliceRevokedError } from "../iommu.ts";
import { leaseCount } from "../src/mmap/mmap_region.ts";
import { type CaseRun, runCase, survived } from "./fixtures/child_process.ts";
import { expectError } from "./fixtures/guest_assert.ts";

const PAGE = 0x1000;
const IOVA = 0x4000_0000;
const GPA = 0x3000;
const RW = Permissions.ReadWrite;

/** 64 KiB of RAM behind an IOMMU that maps one read-write page at IOVA → GPA. */
function setup(revocation?: RevocationMode, iotlb = new Iotlb()) {
  const ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const iommu = new IotlbIommu(iotlb);
  iotlb.setMapping(IOVA, GPA, PAGE, RW);
  const mem = new IommuMemory(ram, iommu, revocation === undefined ? {} : { revocation });
  return { ram, iotlb, mem, region: ram.regions()[0].mmap };
}

/** What a detached view looks like: nothing left, and every typed-array method refuses. */
function assertDetached(u8: Uint8Array<ArrayBuffer>, dv: DataView): void {
  assert.equal(u8.length, 0);
  assert.equal(u8.byteLength, 0);
  assert.equal(u8.buffer.detached, true);
  assert.equal(u8[0], undefined);
  assert.throws(() => u8.fill(1), TypeError);
  assert.throws(() => u8.set([1]), TypeError);
  assert.throws(() => u8.subarray(0, 1), TypeError);
  assert.throws(() => dv.getUint32(0, true), TypeError);
  assert.throws(() => dv.setUint8(0, 1), TypeError);
}

/** Takes a `bytes()` and a `dataView()` view of `slice` and proves they reach guest memory at `gpa`. */
function liveViews(ram: GuestMemoryMmap, slice: VolatileSlice, gpa: number): [Uint8Array<ArrayBuffer>, DataView] {
  const u8 = slice.bytes();
  const dv = slice.dataView();
  u8[0] = 0xa5;
  dv.setUint16(2, 0xbeef, true);
  assert.equal(ram.readU8(gpa), 0xa5);
  assert.equal(ram.readU16(gpa + 2), 0xbeef);
  return [u8, dv];
}

for (
  const [change, apply] of [
    ["iotlb.invalidate of one byte of its range", (t: Iotlb) => t.invalidate(IOVA + 0x7f, 1)],
    ["setMapping of its range to another target", (t: Iotlb) => t.setMapping(IOVA, 0x8000, PAGE, RW)],
    ["setMapping that takes away the write access it was made for", (t: Iotlb) => t.setMapping(IOVA, GPA, PAGE, 1)],
    ["invalidateAll", (t: Iotlb) => t.invalidateAll()],
  ] as const
) {
  Deno.test(`revocation views: a bytes() view has length 0 and throws TypeError right after ${change}`, () => {
    const { ram, iotlb, mem } = setup("views");
    using _ram = ram;
    const slice = mem.getSlice(IOVA, 0x80, Permissions.Write);
    const [u8, dv] = liveViews(ram, slice, GPA);
    assert.equal(u8.length, 0x80);
    apply(iotlb);
    assertDetached(u8, dv);
    const e = expectError(() => slice.readU8(0), SliceRevokedError, {
      kind: "SliceRevoked",
      op: "VolatileSlice.readU8",
      mentions: ["0x40000000+0x80"],
    });
    assert.deepEqual(e.iovaRange, { base: BigInt(IOVA), length: 0x80 });
    expectError(() => slice.bytes(), SliceRevokedError, { kind: "SliceRevoked", op: "VolatileSlice.bytes" });
    expectError(() => slice.dataView(), SliceRevokedError, { kind: "SliceRevoked", op: "VolatileSlice.dataView" });
    // What the view wrote stays in guest memory; only the window onto it is gone.
    assert.equal(ram.readU8(GPA), 0xa5);
  });
}

Deno.test("revocation views: an eviction of its IOTLB entry detaches the view at the insert that evicts", () => {
  const { ram, iotlb, mem } = setup("views", new Iotlb({ maxEntries: 1 }));
  using _ram = ram;
  const [u8, dv] = liveViews(ram, mem.getSlice(IOVA + 0x100, 0x10, Permissions.Write), GPA + 0x100);
  iotlb.setMapping(0x9000_0000, 0x5000, PAGE, RW);
  assert.equal(iotlb.counters.evictions, 1);
  assertDetached(u8, dv);
});

Deno.test("revocation views: unrelated IOTLB changes keep views working and the guard watching", () => {
  const { ram, iotlb, mem, region } = setup("views");
  using _ram = ram;
  iotlb.setMapping(IOVA + PAGE, GPA + PAGE, PAGE, RW); // merges: one entry of two pages
  const slice = mem.getSlice(IOVA + 0x10, 0x20, Permissions.Write);
  const [u8, dv] = liveViews(ram, slice, GPA + 0x10);
  assert.equal(iotlb.watcherCount, 1);
  const { hits, misses, accessFailures } = iotlb.counters;
  iotlb.setMapping(0x9000_0000, 0x8000, PAGE, Permissions.Read); // elsewhere
  iotlb.invalidate(IOVA + PAGE, PAGE); // the other page of the same entry
  iotlb.setMapping(IOVA, GPA, 0x10, RW); // the same translation again, before the slice
  iotlb.setMapping(IOVA + 0x10, GPA + 0x10, 0x20, RW); // the same translation again, over it
  assert.equal(u8.length, 0x20);
  u8[0x1f] = 0x3c;
  dv.setUint32(4, 0x01020304, true);
  assert.equal(ram.readU8(GPA + 0x2f), 0x3c);
  assert.equal(ram.readU32(GPA + 0x14), 0x01020304);
  assert.equal(slice.readU32(4), 0x01020304);
  const after = iotlb.counters;
  assert.deepEqual(
    [after.hits, after.misses, after.accessFailures],
    [hits, misses, accessFailures],
    "re-checking the guard at each change is not IOTLB traffic",
  );
  assert.equal(iotlb.watcherCount, 1);
  assert.equal(leaseCount(region), 1, "bytes() and dataView() of one slice share one leased buffer");
});

Deno.test("revocation views: each fragment's views go with their own translation only", () => {
  const { ram, iotlb, mem } = setup("views");
  using _ram = ram;
  iotlb.setMapping(IOVA + PAGE, 0x9000, PAGE, RW);
  const [a, b] = mem.getSlices(IOVA + PAGE - 0x10, 0x20, Permissions.Write);
  assert.equal(a.len, 0x10);
  assert.equal(b.len, 0x10);
  const [ua, da] = liveViews(ram, a, GPA + PAGE - 0x10);
  const [ub, db] = liveViews(ram, b, 0x9000);
  iotlb.invalidate(IOVA + PAGE + 0x8, 1);
  assertDetached(ub, db);
  assert.equal(ua.length, 0x10);
  da.setUint8(0xf, 0x77);
  assert.equal(ram.readU8(GPA + PAGE - 1), 0x77);
  assert.equal(iotlb.watcherCount, 1, "the revoked guard stopped watching, the other did not");
});

Deno.test("revocation views: a view covers exactly its slice's range, and subslices lease their own", () => {
  const { ram, iotlb, mem, region } = setup("views");
  using _ram = ram;
  const slice = mem.getSlice(IOVA + 0x200, 0x100, Permissions.Write);
  const sub = slice.subslice(0x40, 8);
  const [head, tail] = slice.splitAt(0x80);
  const views = [slice.bytes(), sub.bytes(), head.bytes(), tail.bytes()];
  assert.deepEqual(views.map((v) => v.buffer.byteLength), [0x100, 8, 0x80, 0x80]);
  assert.deepEqual(views.map((v) => v.byteOffset), [0, 0, 0, 0]);
  assert.equal(slice.bytes().buffer, views[0].buffer, "the same slice's views share a buffer");
  assert.equal(leaseCount(region), 4);
  views[1].set([1, 2, 3, 4, 5, 6, 7, 8]);
  views[3][0x7f] = 0xee;
  assert.equal(ram.readU64(GPA + 0x240), 0x0807060504030201n);
  assert.equal(ram.readU8(GPA + 0x2ff), 0xee);
  assert.equal(views[0][0x40], 1, "two leases of one memory alias it");
  iotlb.invalidate(IOVA + 0x200, 1); // the guard they all share goes
  assert.deepEqual(views.map((v) => v.length), [0, 0, 0, 0]);
  assert.equal(leaseCount(region), 0);
});

Deno.test("revocation methods (default): methods throw after revocation, but views taken before keep working", () => {
  const { ram, iotlb, mem } = setup();
  using _ram = ram;
  assert.equal(mem.revocation, "methods");
  const slice = mem.getSlice(IOVA, 0x40, Permissions.Write);
  const [u8, dv] = liveViews(ram, slice, GPA);
  assert.equal(u8.buffer.byteLength, 0x10000, "a window on the region's own buffer");
  iotlb.invalidate(IOVA, PAGE);
  expectError(() => slice.writeU8(0, 1), SliceRevokedError, { kind: "SliceRevoked", op: "VolatileSlice.writeU8" });
  // The documented difference: the stale view still reaches the memory the IOVA no longer maps.
  u8[1] = 0x11;
  dv.setUint8(4, 0x22);
  assert.equal(ram.readU8(GPA + 1), 0x11);
  assert.equal(ram.readU8(GPA + 4), 0x22);
  assert.equal(iotlb.watcherCount, 0, "nothing watches the IOTLB in this mode");
});

Deno.test("revocation off: no IOTLB change revokes a slice or its views", () => {
  const { ram, iotlb, mem } = setup("off");
  using _ram = ram;
  const slice = mem.getSlice(IOVA, 0x40, Permissions.Write);
  const [u8] = liveViews(ram, slice, GPA);
  iotlb.setMapping(IOVA, 0x8000, PAGE, RW);
  iotlb.invalidateAll();
  slice.writeU32(8, 0xcafe);
  u8[0x3f] = 9;
  assert.equal(ram.readU32(GPA + 8), 0xcafe);
  assert.equal(ram.readU8(GPA + 0x3f), 9);
  assert.equal(slice.bytes().length, 0x40);
  assert.equal(slice.toJSON().guard, "none");
  // A new slice still needs a translation.
  assert.throws(() => mem.getSlice(IOVA, 0x40), /CannotResolve|not mapped|translat/i);
});

Deno.test("revocation: the option is checked, and withReplacedBackend keeps it", () => {
  using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  using other = GuestMemoryMmap.fromRanges([[0, 0x20000]]);
  const iommu = new IotlbIommu();
  for (const bad of ["never", "", "Views", 1, true]) {
    const e = expectError(
      () => new IommuMemory(ram, iommu, { revocation: bad as RevocationMode }),
      InvalidArgumentError,
      { kind: "InvalidArgument", op: "IommuMemory", mentions: ['revocation must be "methods", "views" or "off"'] },
    );
    assert.equal(e.argument, "revocation");
    assert.equal(e.value, bad);
  }
  for (const mode of ["methods", "views", "off"] as const) {
    const mem = new IommuMemory(ram, iommu, { revocation: mode });
    assert.equal(mem.revocation, mode);
    assert.equal(mem.withReplacedBackend(other).revocation, mode);
  }
  assert.equal(new IommuMemory(ram, iommu, {}).revocation, "methods");
});

Deno.test("revocation views: close() of the guest memory detaches leased views whose translation holds", () => {
  const { ram, iotlb, mem, region } = setup("views");
  const host = ram.getHostAddress(GPA);
  const [u8, dv] = liveViews(ram, mem.getSlice(IOVA, 0x40, Permissions.Write), GPA);
  assert.equal(iotlb.watcherCount, 1);
  ram.close();
  assertDetached(u8, dv);
  assert.equal(region.quarantined, false);
  assert.equal(hostProtection(host), undefined, "unmapped, not quarantined");
  assert.equal(leaseCount(region), 0);
  assert.equal(iotlb.watcherCount, 0, "the guard stopped watching: its views are gone");
});

Deno.test("revocation views: a protect() that removes write access detaches leased views", () => {
  const { ram, mem, region } = setup("views");
  using _ram = ram;
  const slice = mem.getSlice(IOVA, 0x40, Permissions.Write);
  const [u8, dv] = liveViews(ram, slice, GPA);
  region.protect(PROT_READ);
  assertDetached(u8, dv);
  assert.equal(slice.readU8(0), 0xa5, "reading through the slice still works");
  assert.equal(leaseCount(region), 0);
});

/** A connected TCP pair on the loopback: the read side's `read` is a Deno op writing into our view. */
async function socketPair(): Promise<{ server: Deno.Conn; client: Deno.Conn; [Symbol.dispose](): void }> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: (listener.addr as Deno.NetAddr).port });
  const server = await listener.accept();
  return {
    server,
    client,
    [Symbol.dispose]() {
      server.close();
      client.close();
    },
  };
}

/** Resolves once a reader is waiting in `read` (the socket has nothing yet). */
function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 10));
}

Deno.test("revocation views: an in-flight socket read into a revoked view lands at the old target and rejects with SliceRevoked", async () => {
  const { ram, iotlb, mem, region } = setup("views");
  using _ram = ram;
  using pair = await socketPair();
  const reading = mem.readVolatileFromAsync(IOVA + 0x10, pair.server, 16);
  await tick();
  assert.equal(leaseCount(region), 1, "the socket reads into a leased view");
  iotlb.invalidate(IOVA, PAGE); // detaches the view the Deno op is about to fill
  assert.equal(leaseCount(region), 0);
  await pair.client.write(new Uint8Array([1, 2, 3, 4, 5]));
  const e = await reading.then(() => undefined, (e) => e);
  assert.ok(e instanceof SliceRevokedError, String(e));
  assert.equal(e.op, "IommuMemory.readVolatileFromAsync");
  assert.deepEqual(e.iovaRange, { base: BigInt(IOVA + 0x10), length: 16 });
  // The op wrote through its own reference into memory that stayed mapped: no crash, no loss.
  const landed = new Uint8Array(5);
  ram.readSlice(landed, GPA + 0x10);
  assert.deepEqual([...landed], [1, 2, 3, 4, 5]);
});

Deno.test("revocation views: closing the memory under an in-flight read into a leased view waits for the read to unmap", async () => {
  const { ram, mem } = setup("views");
  const host = ram.getHostAddress(GPA);
  using pair = await socketPair();
  const reading = mem.readVolatileFromAsync(IOVA, pair.server, 8);
  await tick();
  ram.close();
  assert.deepEqual(hostProtection(host), { prot: 3, shared: false }, "pinned: still mapped while the op may write");
  await pair.client.write(new Uint8Array([9, 9]));
  const e = await reading.then(() => undefined, (e) => e);
  assert.equal((e as Error).name, "RegionClosedError", String(e));
  assert.equal(hostProtection(host), undefined, "the last pin unmapped it");
});

Deno.test("revocation views: a JavaScript stream that writes into its view after revocation gets TypeError, wrapped", async () => {
  const { ram, iotlb, mem } = setup("views");
  using _ram = ram;
  let release = () => {};
  const source = {
    async read(p: Uint8Array): Promise<number> {
      await new Promise<void>((resolve) => (release = resolve));
      p.set([7, 7, 7]); // the view was detached meanwhile
      return 3;
    },
  };
  const reading = mem.readVolatileFromAsync(IOVA, source, 8);
  await tick();
  iotlb.invalidate(IOVA, 1);
  release();
  const e = await reading.then(() => undefined, (e) => e);
  assert.ok(e instanceof GuestIOError, String(e));
  assert.equal(e.op, "IommuMemory.readVolatileFromAsync");
  assert.ok(e.cause instanceof TypeError, String(e.cause));
  assert.equal(ram.readU8(GPA), 0, "nothing was written");
});

for (const [mode, afterRevocation] of [["views", 0], ["methods", 0x20]] as const) {
  Deno.test(`revocation ${mode}: a view a stream kept from writeVolatileToAsync is ${afterRevocation ? "still usable" : "detached"} after revocation`, async () => {
    const { ram, iotlb, mem } = setup(mode);
    using _ram = ram;
    ram.writeSlice(new Uint8Array([4, 3, 2, 1]), GPA);
    const kept: Uint8Array[] = [];
    const sink = {
      write(p: Uint8Array): Promise<number> {
        kept.push(p);
        return Promise.resolve(p.length);
      },
    };
    assert.equal(await mem.writeVolatileToAsync(IOVA, sink, 0x20), 0x20);
    assert.equal(kept.length, 1);
    assert.deepEqual([...kept[0].subarray(0, 4)], [4, 3, 2, 1]);
    iotlb.invalidate(IOVA, PAGE);
    assert.equal(kept[0].length, afterRevocation);
  });
}

Deno.test("revocation views: a user guard added on top revokes methods and leaves views to the translation", () => {
  const { ram, iotlb, mem, region } = setup("views");
  using _ram = ram;
  let open = true;
  const slice = mem.getSlice(IOVA, 0x20, Permissions.Write).withGuard({
    isValid: () => open,
    revokedError: (op) => new InvalidArgumentError(op, "slice", undefined, "was closed by its owner"),
  });
  const u8 = slice.bytes();
  assert.equal(u8.buffer.byteLength, 0x20, "still leased through the translation guard");
  open = false;
  assert.throws(() => slice.readU8(0), InvalidArgumentError);
  assert.equal(u8.length, 0x20);
  iotlb.invalidate(IOVA, 1);
  assert.equal(u8.length, 0);
  assert.equal(leaseCount(region), 0);
});

Deno.test("revocation views: slices made for reading lease views revoked when the read access goes", () => {
  const { ram, iotlb, mem } = setup("views");
  using _ram = ram;
  const access: Permission = Permissions.Read;
  const u8 = mem.getSlice(IOVA + 0x800, 0x10, access).bytes();
  iotlb.setMapping(IOVA, GPA, PAGE, Permissions.Write); // write-only now: the read translation went
  assert.equal(u8.length, 0);
});

// ---- child processes ----

const FIXTURE = new URL("./fixtures/revocation_cases.ts", import.meta.url);

/** Runs one fixture case in a fresh Deno process (with `gc()` exposed). */
function runRevocationCase(name: string): Promise<CaseRun> {
  return runCase(FIXTURE, ["--v8-flags=--expose-gc"], name);
}

/** Asserts the child exited cleanly with one JSON line and returns it. */
async function survivor(name: string): Promise<Record<string, unknown>> {
  return survived(await runRevocationCase(name)) as Record<string, unknown>;
}

const TYPE_ERROR = { threw: "TypeError", kind: null };
const DETACHED_USE = {
  length: 0,
  byteLength: 0,
  subLength: 0,
  indexRead: "undefined",
  indexWrite: { ok: "undefined" },
  fill: TYPE_ERROR,
  set: TYPE_ERROR,
  subarray: TYPE_ERROR,
  slice: TYPE_ERROR,
  getUint32: TYPE_ERROR,
  setUint32: TYPE_ERROR,
  atomicsLoad: TYPE_ERROR,
  atomicsAdd: TYPE_ERROR,
};

Deno.test("revocation harness control: a raw, unleased view read after close kills the child with SIGSEGV", async () => {
  const run = await runRevocationCase("control-raw-view-after-close");
  assert.equal(run.signal, "SIGSEGV", run.stderr);
  assert.equal(run.code, 139);
  assert.deepEqual(run.lines, [JSON.stringify({ mapped: null, readingNow: true })]);
});

Deno.test("revocation views: using a revoked view every way, before and after its memory is unmapped, never crashes", async () => {
  assert.deepEqual(await survivor("revoked-view-used-then-unmapped"), {
    landed: 0x41,
    revoked: DETACHED_USE,
    method: { threw: "SliceRevokedError", kind: "SliceRevoked" },
    mappedAfterClose: null,
    afterClose: DETACHED_USE,
  });
});

Deno.test("revocation views: a live leased view used after its memory is closed throws instead of crashing", async () => {
  assert.deepEqual(await survivor("live-view-closed"), {
    before: 0x17,
    detached: true,
    quarantined: false,
    mappedAfterClose: null,
    used: DETACHED_USE,
  });
});

Deno.test("revocation views: a leased buffer transferred away escapes revocation, so protect refuses and close quarantines", async () => {
  assert.deepEqual(await survivor("stolen-lease-quarantined"), {
    aliased: 0x5a,
    afterRevocation: { length: 0x100, first: 0x5a },
    protect: { threw: "BufferEscapedError", kind: "BufferEscaped" },
    quarantined: true,
    mappedAfterClose: { prot: 3, shared: false },
    readAfterClose: [0, 0xff],
    fillAfterClose: { ok: 0xab },
  });
});

Deno.test("revocation views: 390,000 bytes()/dataView() calls on a slice and a subslice lease two buffers and leak nothing", async () => {
  const r = await survivor("views-of-one-slice");
  assert.equal(r.leases, 2);
  assert.equal(r.watchers, 1);
  // Heap, mappings, resident memory and descriptors judged by growth with the work (fixtures/growth.ts).
  assert.deepEqual(r.leaks, [], JSON.stringify(r.growth));
  assert.equal(r.leasesAfterInvalidateAll, 0);
  assert.equal(r.watchersAfterInvalidateAll, 0);
});

Deno.test("revocation views: 390,000 fresh slices with a view each are forgotten once collected, but for the latest 256", async () => {
  const r = await survivor("views-of-fresh-slices");
  assert.equal(r.sum, 390_000);
  // The region holds its 256 latest leases strongly (to see one transferred away); the rest went.
  assert.equal(r.leases, 256);
  assert.equal(r.watchers, 256);
  // Garbage views are only found at full collections, and their records swept as new leases come:
  // what stays is bounded, so nothing (heap, mappings, resident memory, descriptors) grows with the
  // number of slices (fixtures/growth.ts).
  assert.deepEqual(r.leaks, [], JSON.stringify(r.growth));
  assert.equal(r.leasesAfterInvalidateAll, 0);
  assert.equal(r.watchersAfterInvalidateAll, 0);
});
