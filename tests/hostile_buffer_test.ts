// Buffers that lie: a Uint8Array's own properties (length, byteLength, byteOffset, buffer, set,
// subarray, constructor) can say anything and run code. Every method that takes a caller's buffer
// must check and copy its real bytes, and never call into it: a lying buffer behaves exactly as an
// honest one of its real length.
import assert from "node:assert/strict";
import {
  AtomicBitmap,
  GuestMemoryError,
  GuestMemoryMmap,
  type GuestRegionMmap,
  InvalidArgumentError,
  MmapRegion,
  OutOfBoundsError,
  Permissions,
  type VolatileSlice,
} from "../mod.ts";
import { IommuMemory, IotlbIommu } from "../iommu.ts";
import { expectError } from "./fixtures/guest_assert.ts";

const PAGE = 0x1000;

/** Guest RAM [0, 0x3000) + [0x3000, 0x4000), a hole, and an IOMMU whose IOVA 0x10000 is RW then RO. */
class World implements Disposable {
  readonly mem: GuestMemoryMmap;
  readonly iommu: IommuMemory;
  readonly physical: IommuMemory;
  readonly region: GuestRegionMmap;
  readonly slice: VolatileSlice;
  readonly iovaLog = new AtomicBitmap(0x20000, PAGE);

  constructor() {
    this.mem = GuestMemoryMmap.fromRanges([[0, 0x3000], [0x3000, PAGE]], { dirtyPageSize: PAGE });
    for (let a = 0; a < 0x4000; a += 4) this.mem.writeU32(a, (a * 2654435761) >>> 0);
    for (const r of this.mem.regions()) (r.bitmap as AtomicBitmap).reset();
    const tlb = new IotlbIommu();
    tlb.iotlb.setMapping(0x10000, 0x1000, PAGE, Permissions.ReadWrite);
    tlb.iotlb.setMapping(0x11000, 0x2000, PAGE, Permissions.Read);
    tlb.iotlb.setMapping(0x12000, 0x0, PAGE, Permissions.ReadWrite);
    this.iommu = new IommuMemory(this.mem, tlb, { bitmap: this.iovaLog });
    this.physical = new IommuMemory(this.mem, tlb, { enabled: false });
    this.region = this.mem.regions()[0];
    this.slice = this.mem.getSlice(0x2000, 0x100);
  }

  /** Every guest byte and every dirty bit. */
  state(): unknown {
    const bytes = new Uint8Array(0x4000);
    this.mem.read(bytes, 0);
    return {
      bytes: Array.from(bytes),
      dirty: this.mem.regions().map((r) => (r.bitmap as AtomicBitmap).dirtyRuns()),
      iova: this.iovaLog.dirtyRuns(),
    };
  }

  [Symbol.dispose](): void {
    this.mem.close();
  }
}

/** What a call did: its result (a returned buffer's bytes included) or its error's class, kind and op. */
function outcome_(fn: () => unknown): unknown {
  try {
    return { ok: fn() };
  } catch (e) {
    if (e instanceof GuestMemoryError) return { threw: e.name, kind: e.kind, op: e.op, message: e.message };
    return { untyped: String(e) };
  }
}

/** A pattern buffer of `n` bytes, distinct from guest memory. */
function pattern(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + 3) & 0xff);
}

/** Ways a buffer's own properties can lie; `calls` counts every time the library ran its code. */
type Lie = (b: Uint8Array, calls: { n: number }) => void;

/** Lies about the length: writes ignore them (they copy the real bytes); reads fill at most the claim. */
const LENGTH_LIES: Record<string, Lie> = {
  "length 1": (b) => Object.defineProperty(b, "length", { value: 1 }),
  "length 0": (b) => Object.defineProperty(b, "length", { value: 0 }),
  "length 2^30": (b) => Object.defineProperty(b, "length", { value: 2 ** 30 }),
  "length that changes each time it is read": (b, calls) => {
    let k = 0;
    Object.defineProperty(b, "length", { get: () => (calls.n++, k++ === 0 ? 1 : 0x100000) });
  },
};

/** Lies no copy may even look at. */
const OTHER_LIES: Record<string, Lie> = {
  "byteLength 1": (b) => Object.defineProperty(b, "byteLength", { value: 1 }),
  "byteOffset 5": (b) => Object.defineProperty(b, "byteOffset", { value: 5 }),
  "buffer of another array": (b) => Object.defineProperty(b, "buffer", { value: new ArrayBuffer(0x10000) }),
  "set that keeps what it is given": (b, calls) =>
    Object.defineProperty(b, "set", { value: (..._: unknown[]) => void calls.n++ }),
  "subarray that returns 64 KiB": (b, calls) =>
    Object.defineProperty(b, "subarray", { value: () => (calls.n++, new Uint8Array(0x10000).fill(0xee)) }),
  "species that builds 64 KiB": (b, calls) =>
    Object.defineProperty(b, "constructor", {
      value: {
        [Symbol.species]: function () {
          calls.n++;
          return new Uint8Array(0x10000).fill(0xee);
        },
      },
    }),
};

/** A call on one world: `buf` is the caller's buffer, lying or honest. */
type Call = (w: World, buf: Uint8Array) => unknown;

/** [name, buffer size, call]: memory written from the buffer (fast paths, across regions, partial, refused). */
const WRITES: Array<[string, number, Call]> = [
  ["GuestMemoryMmap.write in one region", 0x2000, (w, b) => w.mem.write(b, 0x800)],
  ["GuestMemoryMmap.write across regions", 0x2000, (w, b) => w.mem.write(b, 0x2800)],
  ["GuestMemoryMmap.write into the hole", 0x2000, (w, b) => w.mem.write(b, 0x3800)],
  ["GuestMemoryMmap.write at a bigint", 0x2000, (w, b) => w.mem.write(b, 0x800n)],
  ["GuestMemoryMmap.writeSlice into the hole", 0x2000, (w, b) => w.mem.writeSlice(b, 0x3800)],
  ["GuestRegionMmap.write past its end", 0x2000, (w, b) => w.region.write(b, 0x2000)],
  ["VolatileSlice.copyFrom", 0x2000, (w, b) => w.slice.copyFrom(b)],
  ["VolatileSlice.copyFrom, a shorter buffer", 0x40, (w, b) => w.slice.copyFrom(b)],
  ["VolatileSlice.write at 0x80", 0x2000, (w, b) => w.slice.write(b, 0x80)],
  ["IommuMemory.write into a read-only IOTLB page", 0x2000, (w, b) => w.iommu.write(b, 0x10000)],
  ["IommuMemory.write over two mappings", 0x2000, (w, b) => w.iommu.write(b, 0x12000 - 0x1000)],
  ["IommuMemory.write in one page", 0x800, (w, b) => w.iommu.write(b, 0x10100)],
  ["IommuMemory.writeSlice, translation off", 0x2000, (w, b) => w.physical.writeSlice(b, 0x2800)],
  ["GuestMemoryMmap.readVolatileFrom an array", 0x2000, (w, b) => w.mem.readVolatileFrom(0x800, b, 0x3000)],
  ["IommuMemory.readVolatileFrom an array", 0x2000, (w, b) => w.iommu.readVolatileFrom(0x12000, b, 0x1000)],
  [
    "GuestMemoryMmap.writeVolatileTo an array",
    0x2000,
    (w, b) => [w.mem.writeVolatileTo(0x800, b, 0x3000), Array.from(b)],
  ],
  ["MmapRegion.write", 0x2000, (w, b) => w.region.mmap.write(b, 0x800)],
  ["MmapRegion.write past its end", 0x2000, (w, b) => w.region.mmap.write(b, 0x2800)],
];

/** Memory read into the buffer; each returns the count (or nothing) and the buffer's bytes. */
const READS: Array<[string, number, Call]> = [
  ["GuestMemoryMmap.read across regions", 0x2000, (w, b) => [w.mem.read(b, 0x2800), Array.from(b)]],
  ["GuestMemoryMmap.read at a bigint", 0x2000, (w, b) => [w.mem.read(b, 0x800n), Array.from(b)]],
  ["GuestMemoryMmap.readSlice", 0x2000, (w, b) => [w.mem.readSlice(b, 0x1000), Array.from(b)]],
  ["GuestRegionMmap.read", 0x2000, (w, b) => [w.region.read(b, 0x800), Array.from(b)]],
  ["VolatileSlice.copyTo", 0x2000, (w, b) => [w.slice.copyTo(b), Array.from(b)]],
  ["VolatileSlice.readSlice", 0x2000, (w, b) => [w.slice.readSlice(b, 0), Array.from(b)]],
  ["IommuMemory.read over three mappings", 0x3000, (w, b) => [w.iommu.read(b, 0x10000), Array.from(b)]],
  ["IommuMemory.read, translation off", 0x2000, (w, b) => [w.physical.read(b, 0x3000), Array.from(b)]],
  ["MmapRegion.read", 0x2000, (w, b) => [w.region.mmap.read(b, 0x800), Array.from(b)]],
];

/** Runs `call` with a pattern buffer of `size` bytes given `lie`; what it did, and what ran of the buffer's code. */
function run(call: Call, size: number, lie?: Lie): { outcome: unknown; state: unknown; calls: number } {
  using world = new World();
  const buf = pattern(size);
  const calls = { n: 0 };
  lie?.(buf, calls);
  const outcome = outcome_(() => call(world, buf));
  return { outcome, state: world.state(), calls: calls.n };
}

Deno.test("hostile buffers: a buffer whose own properties lie is written from exactly as an honest one of its real size", () => {
  const mismatches: string[] = [];
  for (const [name, size, call] of WRITES) {
    const honest = run(call, size);
    for (const [lieName, lie] of Object.entries({ ...LENGTH_LIES, ...OTHER_LIES })) {
      const got = run(call, size, lie);
      if (got.calls !== 0) mismatches.push(`${name} / ${lieName}: ran the buffer's own code ${got.calls} times`);
      try {
        assert.deepEqual(got.outcome, honest.outcome);
        assert.deepEqual(got.state, honest.state);
      } catch {
        mismatches.push(`${name} / ${lieName}: got ${JSON.stringify(got.outcome).slice(0, 200)}`);
      }
    }
  }
  assert.deepEqual(mismatches, []);
});

Deno.test("hostile buffers: a read fills a lying buffer as an honest one of its real size, calling none of its code", () => {
  const mismatches: string[] = [];
  for (const [name, size, call] of READS) {
    const honest = run(call, size);
    for (const [lieName, lie] of Object.entries(OTHER_LIES)) {
      const got = run(call, size, lie);
      if (got.calls !== 0) mismatches.push(`${name} / ${lieName}: ran the buffer's own code ${got.calls} times`);
      try {
        assert.deepEqual(got.outcome, honest.outcome);
        assert.deepEqual(got.state, honest.state);
      } catch {
        mismatches.push(`${name} / ${lieName}: got ${JSON.stringify(got.outcome).slice(0, 200)}`);
      }
    }
  }
  assert.deepEqual(mismatches, []);
});

Deno.test("hostile buffers: a read fills at most the length a buffer claims, read once, and no byte after it", () => {
  const mismatches: string[] = [];
  for (const [name, size, call] of READS) {
    for (const [lieName, lie] of Object.entries(LENGTH_LIES)) {
      if (lieName === "length 2^30") continue; // claims past the real end: the next test
      const claimed = lieName === "length 0" ? 0 : 1;
      const got = run(call, size, lie);
      if (got.calls > 1) mismatches.push(`${name} / ${lieName}: read its length ${got.calls} times`);
      const honest = run(call, claimed).outcome as { ok: [unknown, number[]] };
      const out = got.outcome as { ok?: [unknown, number[]] };
      const expected = [honest.ok[0], [...honest.ok[1], ...Array.from(pattern(size).slice(claimed))]];
      try {
        assert.deepEqual(out.ok, expected);
      } catch {
        mismatches.push(`${name} / ${lieName}: got ${JSON.stringify(got.outcome).slice(0, 200)}`);
      }
    }
  }
  assert.deepEqual(mismatches, []);
});

Deno.test("hostile buffers: a read refuses a buffer that claims more bytes than it holds, before filling any", () => {
  using w = new World();
  const liar = (n: number, claim: number) => {
    const b = new Uint8Array(n).fill(0xcc);
    Object.defineProperty(b, "length", { value: claim });
    return b;
  };
  const cases: Array<[string, string, (b: Uint8Array) => unknown]> = [
    ["GuestMemoryMmap.read", "buf", (b) => w.mem.read(b, 0x800)],
    ["GuestMemoryMmap.readSlice", "buf", (b) => w.mem.readSlice(b, 0x800n)],
    ["GuestRegionMmap.read", "buf", (b) => w.region.read(b, 0)],
    ["VolatileSlice.copyTo", "buf", (b) => w.slice.copyTo(b)],
    ["IommuMemory.read", "buf", (b) => w.iommu.read(b, 0x10000)],
    ["IommuMemory.read", "buf", (b) => w.physical.read(b, 0x2800)],
    ["MmapRegion.read", "dst", (b) => w.region.mmap.read(b, 0)],
  ];
  for (const [op, argument, call] of cases) {
    const b = liar(0x10, 0x1000);
    const e = expectError(() => call(b), InvalidArgumentError, {
      kind: "InvalidArgument",
      op,
      mentions: ["fewer than its length"],
    });
    assert.equal(e.argument, argument, op);
    assert.ok(Array.from(new Uint8Array(b.buffer)).every((x) => x === 0xcc), `${op} filled nothing`);
  }
});

Deno.test("hostile buffers: a write shadowing length 1 is refused by the IOTLB for all 8 KiB, and moves nothing", () => {
  using w = new World();
  const before = w.state();
  const b = new Uint8Array(0x2000).fill(0xaa);
  Object.defineProperty(b, "length", { value: 1 });
  const e = expectError(() => w.iommu.write(b, 0x10000), GuestMemoryError, {
    kind: "CannotResolve",
    op: "IommuMemory.write",
    mentions: ["no Write permission at 0x11000+0x1000"],
  });
  assert.equal(e.name, "CannotResolveError");
  assert.deepEqual(w.state(), before, "neither the read-write page nor the read-only one changed");
});

Deno.test("hostile buffers: a write shadowing length 1 logs every page it wrote (0x2000 bytes at 0x800: pages 0-2)", () => {
  using w = new World();
  const b = new Uint8Array(0x2000).fill(0xaa);
  Object.defineProperty(b, "length", { value: 1 });
  assert.equal(w.mem.write(b, 0x800), 0x2000);
  assert.deepEqual((w.region.bitmap as AtomicBitmap).dirtyRuns(), [[0, 0x3000]]);
  assert.equal(w.mem.readU8(0x27ff), 0xaa);
});

Deno.test("hostile buffers: a slice's copyFrom stops at the slice's end whatever length the buffer claims", () => {
  using w = new World();
  const b = new Uint8Array(0x40).fill(0xaa);
  Object.defineProperty(b, "length", { value: 1 });
  const s = w.mem.getSlice(0x2000, 0x10);
  const after = w.mem.readU8(0x2010);
  assert.equal(s.copyFrom(b), 0x10);
  assert.equal(w.mem.readU8(0x200f), 0xaa);
  assert.equal(w.mem.readU8(0x2010), after, "the byte past the slice is untouched");
});

Deno.test("hostile buffers: a read never hands guest memory to the buffer's own set (a read-only IOTLB page stays read-only)", () => {
  using w = new World();
  let stolen: unknown;
  const out = new Uint8Array(16);
  Object.defineProperty(out, "set", { value: (src: unknown) => void (stolen = src) });
  assert.equal(w.iommu.read(out, 0x11000), 16);
  assert.equal(stolen, undefined);
  assert.deepEqual(Array.from(out), Array.from(w.mem.getSlice(0x2000, 16).bytes()));
});

Deno.test("hostile buffers: objects that only look like a Uint8Array are InvalidArgument, before anything moves", () => {
  // [name, make, refused by reads too]: a read fills any typed array with Uint8Array's prototype
  // element by element (one byte each, exactly the bytes checked), and refuses what set() cannot fill.
  const fakes: Array<[string, () => unknown, boolean]> = [
    ["an object inheriting Uint8Array.prototype", () => Object.create(Uint8Array.prototype), true],
    [
      "a BigInt64Array given Uint8Array's prototype",
      () => Object.setPrototypeOf(new BigInt64Array(4), Uint8Array.prototype),
      true,
    ],
    [
      "a Float64Array given Uint8Array's prototype",
      () => Object.setPrototypeOf(new Float64Array(4), Uint8Array.prototype),
      false,
    ],
    [
      "a Uint16Array given Uint8Array's prototype",
      () => Object.setPrototypeOf(new Uint16Array(4), Uint8Array.prototype),
      false,
    ],
  ];
  // [op, argument, reads memory into the buffer, call]
  const methods: Array<[string, string, boolean, (w: World, b: Uint8Array) => unknown]> = [
    ["GuestMemoryMmap.write", "buf", false, (w, b) => w.mem.write(b, 0)],
    ["GuestMemoryMmap.read", "buf", true, (w, b) => w.mem.read(b, 0)],
    ["GuestMemoryMmap.writeSlice", "buf", false, (w, b) => w.mem.writeSlice(b, 0)],
    ["GuestMemoryMmap.readSlice", "buf", true, (w, b) => w.mem.readSlice(b, 0)],
    ["GuestRegionMmap.write", "buf", false, (w, b) => w.region.write(b, 0)],
    ["VolatileSlice.copyFrom", "buf", false, (w, b) => w.slice.copyFrom(b)],
    ["VolatileSlice.copyTo", "buf", true, (w, b) => w.slice.copyTo(b)],
    ["VolatileSlice.write", "buf", false, (w, b) => w.slice.write(b, 0)],
    ["IommuMemory.write", "buf", false, (w, b) => w.iommu.write(b, 0x12000)],
    ["IommuMemory.read", "buf", true, (w, b) => w.iommu.read(b, 0x12000)],
    ["GuestMemoryMmap.readVolatileFrom", "source", false, (w, b) => w.mem.readVolatileFrom(0, b, 16)],
    ["GuestMemoryMmap.writeVolatileTo", "source", false, (w, b) => w.mem.writeVolatileTo(0, b, 16)],
    ["MmapRegion.write", "src", false, (w, b) => w.region.mmap.write(b, 0)],
    ["MmapRegion.read", "dst", true, (w, b) => w.region.mmap.read(b, 0)],
  ];
  for (const [fakeName, make, refusedByReads] of fakes) {
    for (const [op, argument, reads, call] of methods) {
      if (reads && !refusedByReads) continue;
      using w = new World();
      const before = w.state();
      const fake = make() as Uint8Array;
      const e = expectError(() => call(w, fake), InvalidArgumentError, { kind: "InvalidArgument", op });
      assert.equal(e.argument, argument, `${op} with ${fakeName}`);
      assert.equal(e.value, fake);
      assert.deepEqual(w.state(), before, `${op} with ${fakeName} moved nothing`);
    }
  }
  using w = new World();
  const wide = Object.setPrototypeOf(new Uint16Array(4), Uint8Array.prototype) as Uint8Array;
  assert.equal(w.mem.read(wide, 0x10), 4);
  assert.deepEqual(Array.from(wide), [0x10, 0x11, 0x12, 0x13].map((a) => w.mem.readU8(a)));
});

Deno.test("hostile buffers: a region's write checks the real length against its end (OutOfBounds, nothing written)", () => {
  using r = MmapRegion.anonymous(PAGE);
  const b = new Uint8Array(0x100).fill(1);
  Object.defineProperty(b, "length", { value: 1 });
  const e = expectError(() => r.write(b, PAGE - 1), OutOfBoundsError, { kind: "OutOfBounds", op: "MmapRegion.write" });
  assert.deepEqual([e.offset, e.length, e.size], [BigInt(PAGE - 1), 0x100, PAGE]);
  assert.equal(r.bytes(PAGE - 1, 1)[0], 0);
});

Deno.test("hostile buffers: copyToVolatileSlice takes only a slice as its destination", () => {
  using w = new World();
  for (const dst of [undefined, null, 7, {}, Object.create(w.slice)]) {
    const e = expectError(() => w.slice.copyToVolatileSlice(dst as VolatileSlice), InvalidArgumentError, {
      kind: "InvalidArgument",
      op: "VolatileSlice.copyToVolatileSlice",
    });
    assert.equal(e.argument, "dst");
  }
});

Deno.test("hostile buffers: a bitmap's buffer is measured by its real size, not an own byteLength", () => {
  const small = new SharedArrayBuffer(8);
  Object.defineProperty(small, "byteLength", { value: 1 << 20 });
  const e = expectError(
    () => new AtomicBitmap(1 << 20, PAGE, { buffer: small }),
    InvalidArgumentError,
    { kind: "InvalidArgument", op: "AtomicBitmap.constructor", mentions: ["at least 32 bytes", "got 8"] },
  );
  assert.equal(e.argument, "options.buffer");
  const fake = Object.create(SharedArrayBuffer.prototype);
  for (
    const make of [
      () => new AtomicBitmap(PAGE, PAGE, { buffer: fake }),
      () => AtomicBitmap.fromShared({ buffer: fake, byteSize: PAGE, pageSize: PAGE }),
    ]
  ) {
    const f = expectError(make, InvalidArgumentError, { kind: "InvalidArgument", op: "AtomicBitmap.constructor" });
    assert.equal(f.argument, "options.buffer");
  }
});
