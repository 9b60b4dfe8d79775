// A dirty log never misses a write. An IOVA-indexed log (IommuMemory, logBy "iova") records IOVAs
// below its end only (an AtomicBitmap drops marks past its last page, and no number reaches 2^53),
// so every write it could not record is refused before it moves a byte; a region takes no bitmap
// smaller than itself; and bytes a stream puts into guest memory are logged even when the read
// then fails (the translation went meanwhile, the stream threw, or it returned a bad count).
import assert from "node:assert/strict";
import {
  AtomicBitmap,
  GuestMemoryError,
  GuestMemoryMmap,
  GuestRegionMmap,
  InvalidArgumentError,
  MmapRegion,
  Permissions,
} from "../mod.ts";
import {
  CannotResolveError,
  type DirtyLogAddressing,
  IommuMemory,
  Iotlb,
  IotlbIommu,
  SliceRevokedError,
} from "../iommu.ts";
import { expectError } from "./fixtures/guest_assert.ts";

const PAGE = 0x1000;
const TOP = (1n << 64n) - 0x1000n; // the last IOVA page
const AT_2_53 = 1n << 53n;

interface Rig extends Disposable {
  ram: GuestMemoryMmap;
  iotlb: Iotlb;
  mem: IommuMemory;
  log: AtomicBitmap;
  /** Guest bytes [0, 0x10000), for "nothing moved". */
  bytes(): number[];
}

/**
 * RAM [0, 0x10000); IOVAs [0, 0x10000) map to the same addresses, 2^53 to 0x1000, the top page to
 * 0x2000; an IOVA log of 0x8000 bytes (pages 0-7), by IOVA.
 */
function rig(logBy: DirtyLogAddressing = "iova"): Rig {
  const ram = GuestMemoryMmap.fromRanges([[0, 0x10000]], { dirtyPageSize: PAGE });
  const iotlb = new Iotlb();
  iotlb.setMapping(0, 0, 0x10000, Permissions.ReadWrite);
  iotlb.setMapping(AT_2_53, 0x1000, PAGE, Permissions.ReadWrite);
  iotlb.setMapping(TOP, 0x2000, PAGE, Permissions.ReadWrite);
  const log = new AtomicBitmap(0x8000, PAGE);
  const mem = new IommuMemory(ram, new IotlbIommu(iotlb), logBy === "iova" ? { bitmap: log } : { logBy });
  return {
    ram,
    iotlb,
    mem,
    log,
    bytes() {
      const b = new Uint8Array(0x10000);
      ram.read(b, 0);
      return Array.from(b);
    },
    [Symbol.dispose]: () => ram.close(),
  };
}

/** Every way to write guest memory through an IommuMemory at `iova`; atomics, and slices (written later). */
const WRITES: Array<[string, (m: IommuMemory, iova: number | bigint) => unknown, ("atomic" | "slice")?]> = [
  ["write", (m, a) => m.write(new Uint8Array(8).fill(1), a)],
  ["writeSlice", (m, a) => m.writeSlice(new Uint8Array(8).fill(1), a)],
  ["writeU32", (m, a) => m.writeU32(a, 1)],
  ["writeU64", (m, a) => m.writeU64(a, 1n)],
  ["writeF64BE", (m, a) => m.writeF64BE(a, 1.5)],
  ["storeU32", (m, a) => m.storeU32(a, 1), "atomic"],
  ["compareExchangeU64", (m, a) => m.compareExchangeU64(a, 0n, 1n), "atomic"],
  ["addU16", (m, a) => m.addU16(a, 1), "atomic"],
  ["orU8", (m, a) => m.orU8(a, 1), "atomic"],
  ["readVolatileFrom", (m, a) => m.readVolatileFrom(a, new Uint8Array(8).fill(1), 8)],
  ["readExactVolatileFrom", (m, a) => m.readExactVolatileFrom(a, new Uint8Array(8).fill(1), 8)],
  ["getSlice", (m, a) => m.getSlice(a, 8, Permissions.Write), "slice"],
  ["getSlices", (m, a) => m.getSlices(a, 8, Permissions.Read), "slice"], // a slice can be written whatever it was taken for
  ["getSlicesResult", (m, a) => m.getSlicesResult(a, 8, Permissions.Read), "slice"],
];

function expectUnlogged(fn: () => unknown, op: string, base: bigint): void {
  const e = expectError(fn, CannotResolveError, {
    kind: "CannotResolve",
    op,
    mentions: ["dirty log by I/O virtual address records only [0x0, 0x8000)", "unlogged"],
  });
  assert.equal(e.iovaRange.base, base);
}

Deno.test("dirty logs: with an IOVA log, writes at IOVAs from 2^53 on are refused up front on every path", () => {
  for (const [name, call] of WRITES) {
    for (const iova of [AT_2_53, TOP + 0x10n]) {
      using r = rig();
      const before = r.bytes();
      expectUnlogged(() => call(r.mem, iova), `IommuMemory.${name}`, iova);
      assert.deepEqual(r.bytes(), before, `${name} at ${iova} moved nothing`);
      assert.deepEqual(r.log.dirtyRuns(), []);
    }
  }
});

Deno.test("dirty logs: with an IOVA log, writes past its last page are refused, up to it logged, cold and warm", () => {
  for (const [name, call, kind] of WRITES) {
    using r = rig();
    // Warm: the remembered translation [0, 0x10000) covers more than the log records.
    for (let i = 0; i < 500; i++) call(r.mem, 0x7ff0);
    const logged = kind === "slice" ? [] : [[0x7000, PAGE]];
    assert.deepEqual(r.log.dirtyRuns(), logged, name);
    const before = r.bytes();
    // 0x7ffe: 4 or 8 bytes straddling the log's end (an aligned atomic cannot straddle a page).
    for (const iova of kind === "atomic" ? [0x8000, 0xc000] : [0x8000, 0x7ffe, 0xc000]) {
      expectUnlogged(() => call(r.mem, iova), `IommuMemory.${name}`, BigInt(iova));
    }
    assert.deepEqual(r.bytes(), before, `${name} moved nothing`);
    assert.deepEqual(r.log.dirtyRuns(), logged);
  }
});

Deno.test("dirty logs: reads are served past the IOVA log, and an enlarged log takes the writes it now records", async () => {
  using r = rig();
  assert.deepEqual(
    [r.mem.checkRange(0x7000, PAGE, Permissions.Write), r.mem.checkRange(0x7000, PAGE + 1, Permissions.Write)],
    [true, false],
  );
  assert.equal(r.mem.checkRange(0x7000, PAGE + 1, Permissions.Read), true);
  r.ram.writeU32(0x9000, 0xfeedf00d);
  r.ram.writeU32(0x1000, 0xabcd);
  assert.equal(r.mem.readU32(0x9000), 0xfeedf00d);
  assert.equal(r.mem.loadU32(0x9000), 0xfeedf00d);
  assert.equal(r.mem.readU32(AT_2_53), 0xabcd);
  const out = new Uint8Array(4);
  assert.equal(r.mem.read(out, 0x9000), 4);
  assert.equal(r.mem.writeVolatileTo(AT_2_53, out, 4), 4);
  assert.deepEqual(Array.from(out), [0xcd, 0xab, 0, 0]);
  assert.equal(await r.mem.writeVolatileToAsync(0x9000, { write: (p) => Promise.resolve(p.length) }, 4), 4);
  r.log.enlarge(0x8000); // now records [0, 0x10000)
  r.mem.writeU32(0x9000, 1);
  assert.equal(r.mem.write(new Uint8Array(PAGE), 0xf000), PAGE);
  assert.deepEqual(r.log.dirtyRuns(), [[0x9000, PAGE], [0xf000, PAGE]]);
});

Deno.test("dirty logs: an IOVA-logged asynchronous read is refused past the log before the stream is read", async () => {
  using r = rig();
  let reads = 0;
  const source = { read: (p: Uint8Array) => Promise.resolve((reads++, p.fill(1).length)) };
  await assert.rejects(
    () => r.mem.readVolatileFromAsync(AT_2_53, source, 8),
    (e) => e instanceof CannotResolveError && e.op === "IommuMemory.readVolatileFromAsync",
  );
  await assert.rejects(() => r.mem.readExactVolatileFromAsync(0x7ff8, source, 16), CannotResolveError);
  assert.equal(reads, 0);
  assert.deepEqual(r.log.dirtyRuns(), []);
});

Deno.test("dirty logs: without an IOVA log, or logging by guest physical address, high IOVAs are written and logged as ever", () => {
  using plain = rig("gpa");
  plain.mem.writeU32(TOP + 4n, 7);
  plain.mem.write(new Uint8Array(8).fill(2), AT_2_53);
  assert.deepEqual((plain.ram.regions()[0].bitmap as AtomicBitmap).dirtyRuns(), [[0x1000, 0x2000]]);
});

Deno.test("dirty logs: a region refuses a bitmap that does not record all of it", () => {
  using mmap = MmapRegion.anonymous(0x4000);
  for (const bitmap of [new AtomicBitmap(0x3001, PAGE).sliceAt(0x1000), new AtomicBitmap(0x3000, PAGE)]) {
    const e = expectError(() => new GuestRegionMmap(mmap, 0, bitmap), InvalidArgumentError, {
      kind: "InvalidArgument",
      op: "GuestRegionMmap.constructor",
      mentions: ["records only 0x3000 bytes; the region has 0x4000"],
    });
    assert.equal(e.argument, "bitmap");
  }
  const exact = new AtomicBitmap(0x3001, PAGE); // four pages: records 0x4000 bytes
  const region = new GuestRegionMmap(mmap, 0, exact);
  region.writeU8(0x3fff, 1);
  assert.equal(exact.isBitSet(3), true);
});

/** A connected TCP pair on the loopback: the read side's `read` is a Deno op writing into our view. */
async function socketPair(): Promise<{ server: Deno.Conn; client: Deno.Conn } & Disposable> {
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

function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 10));
}

for (const logBy of ["iova", "gpa"] as const) {
  Deno.test(`dirty logs: a socket read that lands after an invalidate is logged (revocation views, logBy ${logBy})`, async () => {
    using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]], { dirtyPageSize: PAGE });
    const iotlb = new Iotlb();
    iotlb.setMapping(0x40000, 0x3000, PAGE, Permissions.ReadWrite);
    const iovaLog = new AtomicBitmap(0x80000, PAGE);
    const mem = new IommuMemory(ram, new IotlbIommu(iotlb), {
      revocation: "views",
      ...(logBy === "iova" ? { bitmap: iovaLog } : { logBy }),
    });
    using pair = await socketPair();
    const reading = mem.readVolatileFromAsync(0x40010, pair.server, 16);
    await tick();
    iotlb.invalidate(0x40000, PAGE); // detaches the view the Deno op is about to fill
    await pair.client.write(new Uint8Array([1, 2, 3, 4, 5]));
    const e = await reading.then(() => undefined, (e) => e);
    assert.ok(e instanceof SliceRevokedError, String(e));
    const landed = new Uint8Array(5);
    ram.readSlice(landed, 0x3010);
    assert.deepEqual(Array.from(landed), [1, 2, 3, 4, 5], "the bytes landed at the old target");
    const regionLog = ram.regions()[0].bitmap as AtomicBitmap;
    if (logBy === "iova") {
      assert.deepEqual(iovaLog.dirtyRuns(), [[0x40000, PAGE]]);
      assert.deepEqual(regionLog.dirtyRuns(), []);
    } else {
      assert.deepEqual(regionLog.dirtyRuns(), [[0x3000, PAGE]]);
    }
  });
}

Deno.test("dirty logs: bytes a stream wrote into its view before it threw or gave a bad count are logged", async () => {
  const sources = {
    throws: (p: Uint8Array) => {
      p.fill(0xaa, 0, 3);
      return Promise.reject(new Error("connection reset"));
    },
    "returns a count larger than the view": (p: Uint8Array) => Promise.resolve(p.fill(0xbb).length + 1),
    "returns a fraction": (p: Uint8Array) => Promise.resolve((p.fill(0xcc), 1.5)),
  };
  for (const [what, read] of Object.entries(sources)) {
    using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]], { dirtyPageSize: PAGE });
    const e = await ram.readVolatileFromAsync(0x5ff0, { read }, 0x20).then(() => undefined, (e) => e);
    assert.ok(e instanceof GuestMemoryError && e.kind === "IOError", `${what}: ${e}`);
    assert.notEqual(ram.readU8(0x5ff0), 0, `${what}: the stream did write`);
    // The first fragment (one region, so the whole range) is logged: any byte of it may be new.
    assert.deepEqual((ram.regions()[0].bitmap as AtomicBitmap).dirtyRuns(), [[0x5000, 0x2000]], what);
  }
});
