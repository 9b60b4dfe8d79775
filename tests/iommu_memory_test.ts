import assert from "node:assert/strict";
import {
  AtomicBitmap,
  GuestMemoryMmap,
  InvalidArgumentError,
  InvalidBackendAddressError,
  InvalidGuestAddressError,
  MisalignedError,
  PartialBufferError,
  Permissions,
} from "../mod.ts";
import type { PhysicalMemory, VolatileSlice } from "../mod.ts";
import { CannotResolveError, FragmentedError, IommuMemory, IotlbIommu, SliceRevokedError } from "../iommu.ts";
import { ArrayBufferMemory, type ArrayBufferSlice, SlicesOnlyMemory } from "./fixtures/array_buffer_memory.ts";
import { expectError } from "./fixtures/guest_assert.ts";

const PAGE = 0x1000;

/** RAM at [0, 64 KiB) and [1 MiB, 1 MiB + 64 KiB), both tracking dirty pages. */
function ram(): GuestMemoryMmap {
  return GuestMemoryMmap.fromRanges([[0, 0x10000], [0x100000, 0x10000]], { dirtyPageSize: PAGE });
}

/** What the tests read and write directly, bypassing the IOMMU. */
interface Direct {
  readU32(addr: number): number;
  writeU32(addr: number, value: number): void;
  readU64(addr: number): bigint;
  writeU64(addr: number, value: bigint): void;
  readSlice(buf: Uint8Array, addr: number | bigint): void;
  regions(): readonly { startAddr: bigint; len: number; bitmap: { dirtyAt(offset: number): boolean } | undefined }[];
}

/** The same RAM over one of the backends: what the IOMMU is given, and how to look at it directly. */
interface Ram extends Disposable {
  backend: PhysicalMemory<VolatileSlice | ArrayBufferSlice>;
  direct: Direct;
}

/**
 * The backends that tests marked "over each backend" run over: real memory, plain ArrayBuffers
 * with views (the fast paths) and without (the generic path; atomics are refused there).
 */
const BACKENDS: ReadonlyArray<{ name: string; views: boolean; ram: () => Ram }> = [
  {
    name: "GuestMemoryMmap",
    views: true,
    ram: () => {
      const m = ram();
      return { backend: m, direct: m, [Symbol.dispose]: () => m.close() };
    },
  },
  { name: "ArrayBufferMemory", views: true, ram: () => abRam(true) },
  { name: "SlicesOnlyMemory", views: false, ram: () => abRam(false) },
];

function abRam(views: boolean): Ram {
  const m = ArrayBufferMemory.fromRanges([[0, 0x10000], [0x100000, 0x10000]], { dirtyPageSize: PAGE });
  return { backend: views ? m : new SlicesOnlyMemory(m), direct: m, [Symbol.dispose]: () => {} };
}

function snapshot(mem: Direct): Uint8Array[] {
  return mem.regions().map((r) => {
    const out = new Uint8Array(r.len);
    mem.readSlice(out, r.startAddr);
    return out;
  });
}

for (const { name, ram } of BACKENDS) {
  Deno.test(`iommu memory over ${name}: a write at an IOVA lands at the translated guest physical address`, () => {
    using r = ram();
    const phys = r.direct;
    const iommu = new IotlbIommu();
    iommu.iotlb.setMapping(0x4000_0000, 0x2000, PAGE, Permissions.ReadWrite);
    const mem = new IommuMemory(r.backend, iommu);
    mem.writeU32(0x4000_0010, 0xdeadbeef);
    mem.writeSlice(new Uint8Array([1, 2, 3]), 0x4000_0ffd);
    assert.equal(phys.readU32(0x2010), 0xdeadbeef);
    const back = new Uint8Array(3);
    phys.readSlice(back, 0x2ffd);
    assert.deepEqual([...back], [1, 2, 3]);
    assert.equal(mem.readU32(0x4000_0010), 0xdeadbeef);
    assert.equal(mem.physicalMemory(), undefined);
  });
}

for (const { name, ram } of BACKENDS) {
  Deno.test(`iommu memory over ${name}: with translation off addresses are physical and the backend is visible`, () => {
    using r = ram();
    const phys = r.direct;
    const mem = new IommuMemory(r.backend, new IotlbIommu(), { enabled: false });
    mem.writeU64(0x100008, 0x1122334455667788n);
    assert.equal(phys.readU64(0x100008), 0x1122334455667788n);
    assert.equal(mem.physicalMemory(), r.backend);
    assert.equal(mem.checkRange(0xff00, 0x200, Permissions.Write), false);
    assert.equal(mem.checkRange(0xfe00, 0x200, Permissions.Write), true);
    assert.deepEqual(phys.regions()[1].bitmap?.dirtyAt(8), true);
    mem.iommuEnabled = true;
    assert.throws(() => mem.readU64(0x100008), CannotResolveError);
  });
}

for (const { name, ram } of BACKENDS) {
  Deno.test(`iommu memory over ${name}: a failed translation throws CannotResolve naming the range before any byte moves`, () => {
    using r = ram();
    const phys = r.direct;
    const iommu = new IotlbIommu();
    iommu.iotlb.setMapping(0x8000, 0x3000, PAGE, Permissions.ReadWrite);
    const mem = new IommuMemory(r.backend, iommu);
    const before = snapshot(phys);
    const buf = new Uint8Array(0x20).fill(0xaa);
    const e = expectError(() => mem.write(buf, 0x8ff0), CannotResolveError, {
      kind: "CannotResolve",
      op: "IommuMemory.write",
      mentions: ["0x9000+0x10", "unmapped"],
    });
    assert.deepEqual(e.iovaRange, { base: 0x9000n, length: 0x10 });
    assert.equal(e.kind, "CannotResolve");
    assert.equal(e.op, "IommuMemory.write");
    assert.match(e.message, /0x9000\+0x10/);
    assert.deepEqual(snapshot(phys), before);
    assert.equal(phys.regions()[0].bitmap?.dirtyAt(0x3000), false);
  });
}

for (const { name, ram } of BACKENDS) {
  Deno.test(`iommu memory over ${name}: permissions are enforced per access kind`, () => {
    using r = ram();
    const phys = r.direct;
    const iommu = new IotlbIommu();
    iommu.iotlb.setMapping(0x10000, 0x1000, PAGE, Permissions.Read);
    iommu.iotlb.setMapping(0x11000, 0x2000, PAGE, Permissions.Write);
    const mem = new IommuMemory(r.backend, iommu);
    phys.writeU32(0x1000, 77);
    assert.equal(mem.readU32(0x10000), 77);
    assert.throws(
      () => mem.writeU32(0x10000, 1),
      (e: unknown) => e instanceof CannotResolveError && /Write/.test(e.message),
    );
    mem.writeU32(0x11000, 5);
    assert.equal(phys.readU32(0x2000), 5);
    assert.throws(() => mem.readU32(0x11000), CannotResolveError);
    assert.equal(mem.checkRange(0x10000, 0x2000, Permissions.No), true);
    assert.equal(mem.checkRange(0x10000, 0x2000, Permissions.Read), false);
    assert.equal(mem.checkRange(0x10ffc, 4, Permissions.Read), true);
    assert.equal(mem.checkRange(0x10ffc, 8, Permissions.Read), false);
    assert.equal(phys.readU32(0x1000), 77, "the refused write changed nothing");
  });
}

Deno.test("iommu memory: fragments split at every IOTLB entry and at every region boundary", () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x2a000, 0x4000, 0x80, Permissions.ReadWrite);
  iommu.iotlb.setMapping(0x2a080, 0x8000, 0x80, Permissions.ReadWrite);
  // One IOTLB entry whose target runs from the end of region 0 into a hole: fine up to the hole.
  iommu.iotlb.setMapping(0x50000, 0xf000, 0x2000, Permissions.ReadWrite);
  const mem = new IommuMemory(phys, iommu);
  const two = mem.getSlices(0x2a000, 0x100, Permissions.Read);
  assert.deepEqual(two.map((s) => s.len), [0x80, 0x80]);
  assert.equal(two[0].hostAddress, phys.getHostAddress(0x4000));
  assert.equal(two[1].hostAddress, phys.getHostAddress(0x8000));
  const { slices, error } = mem.getSlicesResult(0x50000, 0x2000, Permissions.Write);
  assert.deepEqual(slices.map((s) => s.len), [0x1000]);
  assert.ok(error instanceof InvalidGuestAddressError);
  assert.equal(error.addr, 0x10000n, "the error names the physical address");
  assert.equal(mem.write(new Uint8Array(0x2000), 0x50000), 0x1000);
  const partial = expectError(() => mem.writeSlice(new Uint8Array(0x1800), 0x50000), PartialBufferError, {
    kind: "PartialBuffer",
    op: "IommuMemory.writeSlice",
  });
  assert.equal(partial.expected, 0x1800);
  assert.equal(partial.completed, 0x1000);
});

Deno.test("iommu memory: merged IOTLB entries give one fragment, a physical region boundary still splits", () => {
  using phys = GuestMemoryMmap.fromRanges([[0, 0x2000], [0x2000, 0x2000]]);
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x10000, 0x1000, 0x800, Permissions.Read);
  iommu.iotlb.setMapping(0x10800, 0x1800, 0x1800, Permissions.Read);
  assert.equal(iommu.iotlb.size, 1);
  const mem = new IommuMemory(phys, iommu);
  assert.deepEqual(mem.getSlices(0x10000, 0x2000).map((s) => s.len), [0x1000, 0x1000]);
  assert.equal(mem.getSlice(0x10000, 0x1000).len, 0x1000);
  const e = expectError(() => mem.getSlice(0x10800, 0x1000), FragmentedError, {
    kind: "Fragmented",
    op: "IommuMemory.getSlice",
  });
  assert.equal(e.continuousLength, 0x800);
  assert.deepEqual(e.iovaRange, { base: 0x10800n, length: 0x1000 });
});

Deno.test("iommu memory: writes are logged by IOVA in the IOMMU bitmap and not in the regions", () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x40000, 0x3000, 0x3000, Permissions.ReadWrite);
  const bitmap = new AtomicBitmap(0x100000, PAGE);
  const mem = new IommuMemory(phys, iommu, { bitmap, logBy: "iova" });
  mem.writeU16(0x41002, 9); // fast path
  mem.write(new Uint8Array(2), 0x40fff); // bulk across the page boundary
  mem.storeU32(0x40010, 1); // atomic
  mem.readU64(0x40100); // reads never log
  assert.deepEqual(bitmap.dirtyRuns(), [[0x40000, 0x2000]]);
  assert.deepEqual(phys.regions()[0].bitmap?.dirtyAt(0x3000), false);
  assert.deepEqual(phys.regions()[0].bitmap?.dirtyAt(0x4000), false);
  const file = Deno.makeTempFileSync();
  try {
    Deno.writeFileSync(file, new Uint8Array(0x10).fill(7));
    using f = Deno.openSync(file, { read: true });
    bitmap.reset();
    assert.equal(mem.readVolatileFrom(0x41ff8, f, 0x10), 0x10);
    assert.equal(phys.readU8(0x4ff8), 7);
  } finally {
    Deno.removeSync(file);
  }
  assert.deepEqual(bitmap.dirtyRuns(), [[0x41000, 0x2000]]);
});

for (const { name, ram } of BACKENDS) {
  Deno.test(`iommu memory over ${name}: logBy gpa logs writes in the regions' bitmaps at the physical page`, () => {
    using r = ram();
    const phys = r.direct;
    const iommu = new IotlbIommu();
    iommu.iotlb.setMapping(0x40000, 0x100000, 0x2000, Permissions.ReadWrite);
    const mem = new IommuMemory(r.backend, iommu, { logBy: "gpa" });
    mem.writeU64(0x41000, 1n);
    mem.write(new Uint8Array(4), 0x40000);
    const bits = phys.regions()[1].bitmap;
    assert.equal(bits?.dirtyAt(0), true);
    assert.equal(bits?.dirtyAt(0x1000), true);
    assert.equal(bits?.dirtyAt(0x2000), false);
    assert.throws(
      () => new IommuMemory(r.backend, iommu, { logBy: "gpa", bitmap: new AtomicBitmap(PAGE) }),
      /only for logBy "iova"/,
    );
  });
}

for (const { name, ram } of BACKENDS.filter((b) => b.views)) {
  Deno.test(`iommu memory over ${name}: atomics ask the access they perform and need one entry and natural alignment`, () => {
    using r = ram();
    const phys = r.direct;
    const iommu = new IotlbIommu();
    iommu.iotlb.setMapping(0x20000, 0x5000, PAGE, Permissions.Write);
    iommu.iotlb.setMapping(0x21000, 0x6000, PAGE, Permissions.ReadWrite);
    iommu.iotlb.setMapping(0x22000, 0x9000, PAGE, Permissions.ReadWrite);
    const mem = new IommuMemory(r.backend, iommu);
    mem.storeU32(0x20008, 3); // Write is enough for a store
    assert.equal(phys.readU32(0x5008), 3);
    assert.throws(() => mem.loadU32(0x20008), CannotResolveError);
    assert.throws(() => mem.addU32(0x20008, 1), CannotResolveError, "an add reads too");
    assert.equal(mem.addU32(0x21008, 5), 0);
    assert.equal(mem.compareExchangeU32(0x21008, 5, 6), 5);
    assert.equal(phys.readU32(0x6008), 6);
    assert.throws(() => mem.loadU64(0x21ffc), InvalidBackendAddressError, "spans two entries");
    assert.throws(() => mem.loadU32(0x21002), MisalignedError);
  });
}

for (const { name, ram } of BACKENDS) {
  Deno.test(`iommu memory over ${name}: an invalidation takes effect on the next access, even on the scalar fast path`, () => {
    using r = ram();
    const phys = r.direct;
    const iommu = new IotlbIommu();
    iommu.iotlb.setMapping(0x30000, 0x7000, PAGE, Permissions.ReadWrite);
    const mem = new IommuMemory(r.backend, iommu);
    phys.writeU64(0x7100, 42n);
    for (let i = 0; i < 100; i++) assert.equal(mem.readU64(0x30100), 42n);
    iommu.iotlb.invalidate(0x30000, 0x200);
    assert.throws(() => mem.readU64(0x30100), CannotResolveError);
    assert.equal(mem.readU64(0x30200), 0n);
    iommu.iotlb.setMapping(0x30000, 0x100000, PAGE, Permissions.Read);
    phys.writeU64(0x100100, 9n);
    assert.equal(mem.readU64(0x30100), 9n, "a remapping is seen at once");
  });
}

Deno.test("iommu memory: IOVAs above 2^53 translate exactly, up to a range ending at 2^64", () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  const top = (1n << 64n) - 0x1000n;
  iommu.iotlb.setMapping(top, 0x100000, PAGE, Permissions.ReadWrite);
  iommu.iotlb.setMapping(0x20000000000001n - 1n, 0x1000, PAGE, Permissions.ReadWrite); // 2^53
  // No IOVA log: one could not record these writes, and refuses them (dirty_log_reach_test.ts).
  const mem = new IommuMemory(phys, iommu);
  mem.writeU32(top + 0xffcn, 0xcafef00d);
  assert.equal(phys.readU32(0x100ffc), 0xcafef00d);
  mem.writeU64(1n << 53n, 5n);
  assert.equal(phys.readU64(0x1000), 5n);
  assert.equal(mem.getSlices(top, 0x1000).length, 1);
  assert.throws(() => mem.readU32(top - 4n), CannotResolveError);
});

Deno.test("iommu memory: withReplacedBackend shares the IOMMU and bitmap, not the enabled switch", () => {
  using a = ram();
  using b = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x1000, 0x1000, PAGE, Permissions.ReadWrite);
  const bitmap = new AtomicBitmap(0x10000);
  const mem = new IommuMemory(a, iommu, { bitmap });
  const other = mem.withReplacedBackend(b);
  assert.equal(other.iommu, iommu);
  assert.equal(other.bitmap, bitmap);
  assert.equal(other.backend, b);
  other.writeU8(0x1000, 1);
  assert.equal(b.readU8(0x1000), 1);
  assert.equal(a.readU8(0x1000), 0);
  other.iommuEnabled = false;
  assert.equal(mem.iommuEnabled, true);
});

Deno.test("iommu memory: zero-length accesses outside any entry, or at an entry's edge, succeed", () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x8000, 0x1000, PAGE, Permissions.Read);
  const mem = new IommuMemory(phys, iommu);
  assert.deepEqual(mem.getSlices(0xdead0000, 0), []);
  assert.equal(mem.write(new Uint8Array(0), 0xdead0000), 0);
  assert.equal(mem.read(new Uint8Array(0), (1n << 64n) - 1n), 0);
  assert.equal(mem.checkRange(0x1234, 0, Permissions.ReadWrite), true);
  assert.equal(mem.getSlice(0x5, 0).len, 0);
  // An entry that starts (or ends) at the address does not overlap the empty range there.
  assert.equal(mem.write(new Uint8Array(0), 0x8000), 0);
  assert.equal(mem.checkRange(0x9000, 0, Permissions.Write), true);
  assert.deepEqual(mem.getSlices(0x8000, 0, Permissions.Write), []);
});

Deno.test("iommu memory: zero-length accesses strictly inside an entry that denies them are refused, as in vm-memory 0.18", () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x10000, 0x1000, PAGE, Permissions.Read);
  iommu.iotlb.setMapping(0x20000, 0x2000, PAGE, Permissions.Write);
  const mem = new IommuMemory(phys, iommu);
  const cases: Array<[() => unknown, string, bigint]> = [
    [() => mem.write(new Uint8Array(0), 0x10800), "IommuMemory.write", 0x10800n],
    [() => mem.writeSlice(new Uint8Array(0), 0x10800), "IommuMemory.writeSlice", 0x10800n],
    [() => mem.getSlices(0x10800, 0, Permissions.Write), "IommuMemory.getSlices", 0x10800n],
    [() => mem.getSlicesResult(0x10800, 0, Permissions.Write), "IommuMemory.getSlicesResult", 0x10800n],
    [() => mem.getSlice(0x10800, 0, Permissions.Write), "IommuMemory.getSlice", 0x10800n],
    [() => mem.readVolatileFrom(0x10800, new Uint8Array(4), 0), "IommuMemory.readVolatileFrom", 0x10800n],
    [() => mem.read(new Uint8Array(0), 0x20800), "IommuMemory.read", 0x20800n],
    [() => mem.readSlice(new Uint8Array(0), 0x20800), "IommuMemory.readSlice", 0x20800n],
    [() => mem.writeVolatileTo(0x20800, new Uint8Array(4), 0), "IommuMemory.writeVolatileTo", 0x20800n],
  ];
  for (const [fn, op, iova] of cases) {
    const e = expectError(fn, CannotResolveError, { kind: "CannotResolve", op });
    assert.deepEqual(e.iovaRange, { base: iova, length: 0 }, op);
  }
  assert.equal(mem.checkRange(0x10800, 0, Permissions.Write), false);
  assert.equal(mem.checkRange(0x20800, 0, Permissions.Read), false);
  assert.equal(mem.checkRange(0x10800, 0, Permissions.Read), true);
  assert.deepEqual(mem.getSlices(0x10800, 0, Permissions.Read), []);
  mem.iommuEnabled = false; // physical addresses have no permissions
  assert.equal(mem.write(new Uint8Array(0), 0x10800), 0);
  assert.equal(mem.checkRange(0x10800, 0, Permissions.Write), true);
});

Deno.test("iommu memory: zero-length async I/O and resolve are refused inside a denying entry too", async () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x10000, 0x1000, PAGE, Permissions.Read);
  const mem = new IommuMemory(phys, iommu);
  const source = { read: (p: Uint8Array) => Promise.resolve(p.length) };
  await assert.rejects(() => mem.readVolatileFromAsync(0x10800, source, 0), (e: unknown) => {
    assert.ok(e instanceof CannotResolveError);
    assert.deepEqual([e.op, e.iovaRange], ["IommuMemory.readVolatileFromAsync", { base: 0x10800n, length: 0 }]);
    return true;
  });
  await assert.rejects(() => mem.resolve(0x10800, 0, Permissions.Write), CannotResolveError);
  await assert.rejects(() => mem.getSlicesAsync(0x10800, 0, Permissions.Write), CannotResolveError);
  assert.equal(await mem.readVolatileFromAsync(0x10000, source, 0), 0, "at the entry's start");
  await mem.resolve(0x10800, 0, Permissions.Read);
});

Deno.test("iommu memory: getSlicesResult returns the first fragment's own failure behind a valid translation", () => {
  using phys = GuestMemoryMmap.fromRanges([[0, PAGE]]);
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x10000, 0x5000, PAGE, Permissions.ReadWrite); // no memory at 0x5000
  iommu.iotlb.setMapping(0x20000, 0xff0, 0x20, Permissions.ReadWrite); // memory ends at 0x1000
  const mem = new IommuMemory(phys, iommu);
  const first = mem.getSlicesResult(0x10000, 16, Permissions.Read);
  assert.deepEqual(first.slices, []);
  assert.ok(first.error instanceof InvalidGuestAddressError);
  assert.deepEqual([first.error.op, first.error.addr], ["IommuMemory.getSlicesResult", 0x5000n]);
  const later = mem.getSlicesResult(0x20000, 0x20, Permissions.Read);
  assert.deepEqual(later.slices.map((x) => x.len), [0x10]);
  assert.ok(later.error instanceof InvalidGuestAddressError);
  assert.equal(later.error.addr, 0x1000n);
  const thrown = expectError(() => mem.getSlices(0x10000, 16), InvalidGuestAddressError, {
    kind: "InvalidGuestAddress",
    op: "IommuMemory.getSlices",
  });
  assert.equal(thrown.addr, 0x5000n, "getSlices still throws it");
  expectError(() => mem.getSlicesResult(0x30000, 16), CannotResolveError, {
    kind: "CannotResolve",
    op: "IommuMemory.getSlicesResult",
  }); // a translation failure is still thrown
});

Deno.test("iommu memory: an atomic across two IOTLB entries fails with its first fragment's own error first", () => {
  using phys = GuestMemoryMmap.fromRanges([[0, PAGE]]);
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x10000, 0x5000, PAGE, Permissions.ReadWrite); // no memory behind it
  iommu.iotlb.setMapping(0x11000, 0x0, PAGE, Permissions.ReadWrite);
  iommu.iotlb.setMapping(0x30000, 0x100, 2, Permissions.ReadWrite); // backed, then split
  iommu.iotlb.setMapping(0x30002, 0x300, 0xffe, Permissions.ReadWrite);
  const mem = new IommuMemory(phys, iommu);
  for (
    const [name, fn] of [["loadU32", () => mem.loadU32(0x10ffe)], ["storeU32", () => mem.storeU32(0x10ffe, 1)]] as const
  ) {
    const e = expectError(fn, InvalidGuestAddressError, { kind: "InvalidGuestAddress", op: `IommuMemory.${name}` });
    assert.equal(e.addr, 0x5ffen);
  }
  const big = expectError(() => mem.loadU32(0x10ffen), InvalidGuestAddressError, {
    kind: "InvalidGuestAddress",
    op: "IommuMemory.loadU32",
  });
  assert.equal(big.addr, 0x5ffen, "the bigint path agrees");
  assert.equal(
    expectError(() => mem.readU64(0x10ffc), InvalidGuestAddressError, {
      kind: "InvalidGuestAddress",
      op: "IommuMemory.readU64",
    }).addr,
    0x5ffcn,
  );
  expectError(() => mem.loadU32(0x30000), InvalidBackendAddressError, {
    kind: "InvalidBackendAddress",
    op: "IommuMemory.loadU32",
    mentions: ["spans two IOTLB entries"],
  });
  expectError(() => mem.storeU64(0x30000, 1n), InvalidBackendAddressError, {
    kind: "InvalidBackendAddress",
    op: "IommuMemory.storeU64",
  });
});

Deno.test("iommu: IotlbIommu answers a zero-length request, telling its miss handler of a zero-length denial", () => {
  const faults: string[] = [];
  const iommu: IotlbIommu = new IotlbIommu(undefined, {
    missHandler: (f) => {
      const fails = f.accessFails.map((r) => `${r.base.toString(16)}+${r.length}`).join(",");
      faults.push(`${f.iova.toString(16)}+${f.length} access ${f.access} misses ${f.misses.length} fails ${fails}`);
      if (f.access === Permissions.Write) iommu.iotlb.setMapping(0x10000, 0x1000, PAGE, Permissions.ReadWrite);
    },
  });
  iommu.iotlb.setMapping(0x10000, 0x1000, PAGE, Permissions.Read);
  assert.deepEqual(iommu.translate(0x10800, 0, Permissions.Read), []);
  assert.deepEqual(iommu.translate(0x50000, 0, Permissions.Write), [], "nothing mapped, nothing to miss");
  const e = expectError(() => iommu.translate(0x10800, 0, Permissions.ReadWrite), CannotResolveError, {
    kind: "CannotResolve",
    op: "IotlbIommu.translate",
    mentions: ["no ReadWrite permission at 0x10800+0x0"],
  });
  assert.deepEqual(e.iovaRange, { base: 0x10800n, length: 0 });
  assert.deepEqual(iommu.translate(0x10800, 0, Permissions.Write), [], "the handler granted Write");
  assert.deepEqual(faults, [
    ...Array(4).fill("10800+0 access 3 misses 0 fails 10800+0"), // maxRetries, then CannotResolve
    "10800+0 access 2 misses 0 fails 10800+0",
  ]);
});

Deno.test("iommu memory: a synchronous miss handler fills the IOTLB and the access is retried", () => {
  using phys = ram();
  const faults: string[] = [];
  const iommu: IotlbIommu = new IotlbIommu(undefined, {
    missHandler: (f) => {
      faults.push(`${f.iova.toString(16)}+${f.length.toString(16)} ${f.misses.length}/${f.accessFails.length}`);
      for (const m of f.misses) iommu.iotlb.setMapping(m.base, m.base - 0x60000n, m.length, Permissions.ReadWrite);
    },
  });
  const mem = new IommuMemory(phys, iommu);
  mem.writeU32(0x60100, 11);
  assert.equal(phys.readU32(0x100), 11);
  assert.deepEqual(faults, ["60100+4 1/0"]);
  assert.equal(iommu.counters.syncFaults, 1);
});

Deno.test("iommu memory: bad arguments throw typed errors naming the operation", () => {
  using phys = ram();
  const mem = new IommuMemory(phys, new IotlbIommu());
  const cases: Array<[() => unknown, string, string]> = [
    [() => mem.readU32(-1), "IommuMemory.readU32", "addr"],
    [() => mem.getSlices(0, 1.5), "IommuMemory.getSlices", "count"],
    [() => mem.getSlices(0, 4, 7 as 0), "IommuMemory.getSlices", "access"],
    [() => new IommuMemory(phys, {} as IotlbIommu), "IommuMemory", "iommu"],
    [() => (mem.iommuEnabled = 1 as unknown as boolean), "IommuMemory.iommuEnabled", "value"],
  ];
  for (const [fn, op, argument] of cases) {
    const e = expectError(fn, InvalidArgumentError, { kind: "InvalidArgument", op, mentions: [argument] });
    assert.equal(e.argument, argument);
  }
});

Deno.test("iommu memory: a slice is revoked when its translation is invalidated, and only then", () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x70000, 0x9000, 0x2000, Permissions.ReadWrite);
  const mem = new IommuMemory(phys, iommu);
  const [slice] = mem.getSlices(0x70000, 0x1000, Permissions.Write);
  const sub = slice.subslice(0x10, 0x10);
  slice.writeU32(0, 1);
  // Unrelated changes to the IOTLB leave the slice usable.
  iommu.iotlb.setMapping(0x90000, 0x1000, PAGE, Permissions.Read);
  iommu.iotlb.invalidate(0x71000, PAGE);
  assert.equal(slice.readU32(0), 1);
  assert.equal(sub.readU8(0), 0);
  // Invalidating one byte of its range revokes it and everything cut from it.
  iommu.iotlb.invalidate(0x70fff, 1);
  const e = expectError(() => slice.readU32(0), SliceRevokedError, {
    kind: "SliceRevoked",
    op: "VolatileSlice.readU32",
    mentions: ["0x70000+0x1000"],
  });
  assert.deepEqual(e.iovaRange, { base: 0x70000n, length: 0x1000 });
  expectError(() => sub.writeU8(0, 1), SliceRevokedError, { kind: "SliceRevoked", op: "VolatileSlice.writeU8" });
  expectError(() => slice.bytes(), SliceRevokedError, { kind: "SliceRevoked", op: "VolatileSlice.bytes" });
  expectError(() => slice.copyFrom(new Uint8Array(4)), SliceRevokedError, {
    kind: "SliceRevoked",
    op: "VolatileSlice.copyFrom",
  });
  expectError(() => slice.storeU32(0, 1), SliceRevokedError, { kind: "SliceRevoked", op: "VolatileSlice.storeU32" });
  // Mapping the same translation again does not bring the old slice back: the device must translate again.
  iommu.iotlb.setMapping(0x70fff, 0x9fff, 1, Permissions.ReadWrite);
  assert.throws(() => slice.readU32(0), SliceRevokedError);
  assert.equal(mem.getSlices(0x70000, 0x1000, Permissions.Read)[0].readU32(0), 1);
});

Deno.test("iommu memory: a remapping to another target or a lost permission revokes a slice", () => {
  using phys = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x70000, 0x9000, PAGE, Permissions.ReadWrite);
  iommu.iotlb.setMapping(0x80000, 0xa000, PAGE, Permissions.ReadWrite);
  const mem = new IommuMemory(phys, iommu);
  const moved = mem.getSlice(0x70000, 0x100, Permissions.Read);
  const narrowed = mem.getSlice(0x80000, 0x100, Permissions.Write);
  const stillReadable = mem.getSlice(0x80000, 0x100, Permissions.Read);
  iommu.iotlb.setMapping(0x70000, 0xb000, PAGE, Permissions.ReadWrite);
  iommu.iotlb.setMapping(0x80000, 0xa000, PAGE, Permissions.Read);
  assert.throws(() => moved.readU8(0), SliceRevokedError);
  assert.throws(() => narrowed.readU8(0), SliceRevokedError);
  assert.equal(stillReadable.readU8(0), 0);
  const counters = iommu.iotlb.counters;
  stillReadable.readU8(1);
  assert.deepEqual(iommu.iotlb.counters, counters, "checking a slice does not count as IOTLB traffic");
});

for (const { name, ram } of BACKENDS) {
  Deno.test(`iommu memory over ${name}: the remembered scalar translation stops at the region's end and at the access it was made for`, () => {
    using r = ram();
    const phys = r.direct;
    const iommu = new IotlbIommu();
    // One entry whose target runs off the end of region 0 (64 KiB) into the hole after it.
    iommu.iotlb.setMapping(0x10000, 0xf000, 0x2000, Permissions.ReadWrite);
    iommu.iotlb.setMapping(0x20000, 0x2000, PAGE, Permissions.Read);
    const mem = new IommuMemory(r.backend, iommu);
    phys.writeU64(0xfff8, 0x55n);
    assert.equal(mem.readU64(0x10ff8), 0x55n);
    expectError(() => mem.readU64(0x11000), InvalidGuestAddressError, {
      kind: "InvalidGuestAddress",
      op: "IommuMemory.readU64",
      mentions: ["0x10000"],
    });
    mem.writeU64(0x10ff0, 7n); // a write after reads of the same entry
    assert.equal(phys.readU64(0xfff0), 7n);
    for (let i = 0; i < 10; i++) assert.equal(mem.readU32(0x20000 + 4 * i), 0);
    assert.throws(
      () => mem.writeU32(0x20000, 1),
      CannotResolveError,
      "reads of a read-only entry do not open it to writes",
    );
    assert.equal(phys.readU32(0x2000), 0);
  });
}

for (const { name, ram } of BACKENDS.filter((b) => b.views)) {
  Deno.test(`iommu memory over ${name}: pages used in turn keep their own remembered translations, each revoked on its own change`, () => {
    using r = ram();
    const phys = r.direct;
    const iommu = new IotlbIommu();
    // A ring page and three buffer pages, swapped around in physical memory.
    const pages = [[0x80000, 0x5000], [0x81000, 0x2000], [0x82000, 0xa000], [0x83000, 0x100000]] as const;
    for (const [iova, gpa] of pages) iommu.iotlb.setMapping(iova, gpa, PAGE, Permissions.ReadWrite);
    const mem = new IommuMemory(r.backend, iommu);
    for (let round = 0; round < 3; round++) {
      for (const [iova, gpa] of pages) {
        mem.writeU32(iova + 8 * round, round + 1);
        assert.equal(phys.readU32(gpa + 8 * round), round + 1);
      }
    }
    for (const [iova] of pages) mem.readU32(iova); // reads ask once more: the slots held Write only
    const hits = iommu.iotlb.counters.hits;
    for (let round = 0; round < 3; round++) {
      for (const [iova] of pages) {
        mem.readU32(iova + 8 * round);
        mem.writeU32(iova + 8 * round + 4, 7);
      }
    }
    assert.equal(iommu.iotlb.counters.hits, hits, "remembered for both accesses: the IOTLB was not asked again");
    iommu.iotlb.setMapping(0x82000, 0xb000, PAGE, Permissions.ReadWrite);
    phys.writeU32(0xb000, 99);
    assert.equal(mem.readU32(0x82000), 99, "the remapped page is translated afresh");
    assert.equal(mem.readU32(0x80000), 1);
  });
}

for (const { name, ram } of BACKENDS.filter((b) => b.views)) {
  Deno.test(`iommu memory over ${name}: atomics are served from the translation cache, the IOTLB asked once per entry`, () => {
    using r = ram();
    const phys = r.direct;
    const iommu = new IotlbIommu();
    iommu.iotlb.setMapping(0x60000, 0x3000, PAGE, Permissions.ReadWrite);
    const mem = new IommuMemory(r.backend, iommu);
    assert.equal(mem.addU32(0x60010, 5), 0);
    const hits = iommu.iotlb.counters.hits;
    for (let i = 0; i < 10; i++) {
      mem.storeU64(0x60100 + 8 * i, BigInt(i));
      assert.equal(mem.loadU64(0x60100 + 8 * i), BigInt(i));
      assert.equal(mem.compareExchangeU32(0x60010, 5 + i, 6 + i), 5 + i);
    }
    assert.equal(iommu.iotlb.counters.hits, hits, "30 atomics after the first asked the IOTLB nothing");
    assert.equal(phys.readU32(0x3010), 15);
    assert.equal(phys.readU64(0x3148), 9n);
    iommu.iotlb.setMapping(0x60000, 0x4000, PAGE, Permissions.Read);
    assert.throws(() => mem.storeU32(0x60010, 1), CannotResolveError, "a change reaches the cached atomics at once");
    assert.equal(mem.loadU32(0x60010), phys.readU32(0x4010));
  });
}

Deno.test("iommu memory over SlicesOnlyMemory: copies and scalars go through the slices, atomics are refused before anything moves", () => {
  using r = abRam(false);
  const phys = r.direct;
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x60000, 0xff00, 0x200, Permissions.ReadWrite); // runs into the hole at 64 KiB
  const log = new AtomicBitmap(0x100000, PAGE);
  const mem = new IommuMemory(r.backend, iommu, { bitmap: log });
  mem.writeU64(0x60008, 0x1122334455667788n);
  assert.equal(phys.readU64(0xff08), 0x1122334455667788n);
  assert.equal(mem.readU32(0x6000c), 0x11223344);
  assert.equal(mem.write(new Uint8Array(0x200).fill(3), 0x60000), 0x100, "up to the hole");
  assert.deepEqual(log.dirtyRuns(), [[0x60000, PAGE]]);
  const e = expectError(() => mem.storeU32(0x60010, 1), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "IommuMemory.storeU32",
    mentions: ["0xff10", "without views"],
  });
  assert.equal(e.argument, "addr");
  assert.equal(phys.readU32(0xff10), 0x03030303, "the refused store changed nothing");
  expectError(() => mem.loadU32(0x60010), InvalidArgumentError, { kind: "InvalidArgument", op: "IommuMemory.loadU32" });
  expectError(() => mem.loadU32(0x70000), CannotResolveError, { kind: "CannotResolve", op: "IommuMemory.loadU32" });
  const slices = mem.getSlices(0x60000, 0x100, Permissions.Read);
  assert.deepEqual(slices.map((s) => s.len), [0x100]);
  iommu.iotlb.invalidate(0x60000, 1);
  expectError(() => slices[0].read(new Uint8Array(1), 0), SliceRevokedError, {
    kind: "SliceRevoked",
    op: "ArrayBufferSlice.read",
  });
});

for (const { name, ram } of BACKENDS.filter((b) => b.views)) {
  Deno.test(`iommu memory over ${name}: getSlices and checkRange inside a cached translation ask the IOTLB nothing and behave as before`, () => {
    using r = ram();
    const phys = r.direct;
    const iommu = new IotlbIommu();
    iommu.iotlb.setMapping(0x60000, 0x3000, 2 * PAGE, Permissions.ReadWrite);
    const log = new AtomicBitmap(0x100000, PAGE);
    const mem = new IommuMemory(r.backend, iommu, { bitmap: log });
    mem.readU8(0x60000); // caches [0x60000, 0x62000)
    const hits = iommu.iotlb.counters.hits;
    assert.equal(mem.checkRange(0x60010, 0x1ff0, Permissions.Write), true);
    const [s] = mem.getSlices(0x61ff0, 0x10, Permissions.Write);
    assert.equal(s.len, 0x10);
    assert.deepEqual(mem.getSlices(0x60000, 0x800, Permissions.Read).map((x) => x.len), [0x800]);
    assert.equal(iommu.iotlb.counters.hits, hits, "three calls, no IOTLB lookup");
    s.copyFrom(new Uint8Array(0x10).fill(9));
    assert.equal(phys.readU32(0x4ffc), 0x09090909);
    assert.deepEqual(log.dirtyRuns(), [[0x61000, PAGE]], "logged by IOVA");
    assert.equal(mem.checkRange(0x61ff0, 0x11, Permissions.Read), false, "past the entry");
    iommu.iotlb.invalidate(0x61fff, 1);
    expectError(() => s.copyFrom(new Uint8Array(1)), SliceRevokedError, {
      kind: "SliceRevoked",
      op: `${name === "GuestMemoryMmap" ? "VolatileSlice" : "ArrayBufferSlice"}.copyFrom`,
    });
    assert.equal(mem.checkRange(0x60010, 0x1ff0, Permissions.Write), false, "a change reaches checkRange at once");
  });
}
