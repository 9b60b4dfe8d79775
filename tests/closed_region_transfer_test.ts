// Hot-unplug: a collection that still lists a region its owner removed and closed. A closed region
// is the caller's lifetime bug, not a hole in the guest's address map, so every transfer that
// would reach it is refused up front with RegionClosedError (naming the method called) and moves
// nothing; transfers that stop before it (at its start, or at a hole) are untouched by it.
import assert from "node:assert/strict";
import { AtomicBitmap, GuestMemoryError, GuestMemoryMmap, Permissions, RegionClosedError } from "../mod.ts";
import { IommuMemory, IotlbIommu } from "../iommu.ts";
import { expectError } from "./fixtures/guest_assert.ts";

const PAGE = 0x1000;

/** Guest RAM [0, 0x10000) + [0x10000, 0x20000) with the second region removed and closed. */
class Unplugged implements Disposable {
  readonly old: GuestMemoryMmap;
  readonly current: GuestMemoryMmap;
  readonly iommu: IommuMemory;
  readonly physical: IommuMemory;
  readonly iovaLog = new AtomicBitmap(0x40000, PAGE);

  constructor() {
    this.old = GuestMemoryMmap.fromRanges([[0, 0x10000], [0x10000, 0x10000]], { dirtyPageSize: PAGE });
    for (let a = 0; a < 0x10000; a += 4) this.old.writeU32(a, 0x5a5a5a5a);
    (this.old.regions()[0].bitmap as AtomicBitmap).reset();
    const [current, removed] = this.old.removeRegion(0x10000, 0x10000);
    removed.close();
    this.current = current;
    const unit = new IotlbIommu();
    unit.iotlb.setMapping(0x20000, 0xf000, PAGE, Permissions.ReadWrite); // the first region's last page
    unit.iotlb.setMapping(0x21000, 0x11000, PAGE, Permissions.ReadWrite); // the closed region, not merged
    this.iommu = new IommuMemory(this.old, unit, { bitmap: this.iovaLog });
    this.physical = new IommuMemory(this.old, unit, { enabled: false });
  }

  /** The open region's bytes and both logs. */
  state(): unknown {
    const bytes = new Uint8Array(0x10000);
    this.current.read(bytes, 0);
    return [
      Array.from(bytes),
      (this.current.regions()[0].bitmap as AtomicBitmap).dirtyRuns(),
      this.iovaLog.dirtyRuns(),
    ];
  }

  [Symbol.dispose](): void {
    this.current.close();
  }
}

/** [op, call]: each reaches the closed region after 0x100 bytes of the open one. */
const REACHING: Array<[string, (u: Unplugged) => unknown]> = [
  ["GuestMemoryMmap.write", (u) => u.old.write(new Uint8Array(512).fill(1), 0xff00)],
  ["GuestMemoryMmap.write", (u) => u.old.write(new Uint8Array(512).fill(1), 0xff00n)],
  ["GuestMemoryMmap.writeSlice", (u) => u.old.writeSlice(new Uint8Array(512).fill(1), 0xff00)],
  ["GuestMemoryMmap.read", (u) => u.old.read(new Uint8Array(512), 0xff00)],
  ["GuestMemoryMmap.readSlice", (u) => u.old.readSlice(new Uint8Array(512), 0xff00n)],
  ["GuestMemoryMmap.writeU32", (u) => u.old.writeU32(0xfffe, 0xffffffff)],
  ["GuestMemoryMmap.readU64", (u) => u.old.readU64(0xfffc)],
  ["GuestMemoryMmap.getSlices", (u) => u.old.getSlices(0xff00, 512)],
  ["GuestMemoryMmap.readVolatileFrom", (u) => u.old.readVolatileFrom(0xff00, new Uint8Array(512).fill(1), 512)],
  ["GuestMemoryMmap.writeVolatileTo", (u) => u.old.writeVolatileTo(0xff00, new Uint8Array(512), 512)],
  ["IommuMemory.write", (u) => u.iommu.write(new Uint8Array(2 * PAGE).fill(1), 0x20000)],
  ["IommuMemory.write", (u) => u.iommu.write(new Uint8Array(2 * PAGE).fill(1), 0x20000n)],
  ["IommuMemory.writeSlice", (u) => u.iommu.writeSlice(new Uint8Array(0x200).fill(1), 0x20f00)],
  ["IommuMemory.read", (u) => u.iommu.read(new Uint8Array(2 * PAGE), 0x20000)],
  ["IommuMemory.writeU32", (u) => u.iommu.writeU32(0x20ffe, 0xffffffff)],
  ["IommuMemory.getSlices", (u) => u.iommu.getSlices(0x20f00, 0x200, Permissions.Write)],
  ["IommuMemory.readVolatileFrom", (u) => u.iommu.readVolatileFrom(0x20f00, new Uint8Array(0x200).fill(1), 0x200)],
  ["IommuMemory.write", (u) => u.physical.write(new Uint8Array(512).fill(1), 0xff00)],
  ["IommuMemory.readSlice", (u) => u.physical.readSlice(new Uint8Array(512), 0xff00)],
  ["IommuMemory.getSlices", (u) => u.physical.getSlices(0xff00, 512)],
];

Deno.test("closed region: every transfer that would reach it throws RegionClosed under its own name and moves nothing", () => {
  for (const [op, call] of REACHING) {
    using u = new Unplugged();
    const before = u.state();
    const e = expectError(() => call(u), RegionClosedError, { kind: "RegionClosed", op, mentions: ["closed"] });
    assert.ok(e instanceof GuestMemoryError);
    assert.deepEqual(u.state(), before, `${op} moved nothing`);
  }
});

Deno.test("closed region: a read that would reach it leaves the caller's buffer untouched", () => {
  using u = new Unplugged();
  const out = new Uint8Array(512).fill(0xcc);
  assert.throws(() => u.old.read(out, 0xff00), RegionClosedError);
  assert.ok(out.every((b) => b === 0xcc));
  assert.throws(() => u.iommu.read(out, 0x20f00), RegionClosedError);
  assert.ok(out.every((b) => b === 0xcc));
});

Deno.test("closed region: getSlicesResult gives no slices and the RegionClosed error; checkRange says false", () => {
  using u = new Unplugged();
  for (
    const [op, result] of [
      ["GuestMemoryMmap.getSlicesResult", u.old.getSlicesResult(0xff00, 512)],
      ["IommuMemory.getSlicesResult", u.iommu.getSlicesResult(0x20f00, 0x200, Permissions.Read)],
      ["IommuMemory.getSlicesResult", u.physical.getSlicesResult(0xff00, 512)],
    ] as const
  ) {
    assert.equal(result.slices.length, 0, op);
    assert.ok(result.error instanceof RegionClosedError, op);
    assert.equal(result.error.op, op);
  }
  assert.equal(u.old.checkRange(0xff00, 512), false);
  assert.equal(u.iommu.checkRange(0x20f00, 0x200, Permissions.Read), false);
});

Deno.test("closed region: transfers that stop before it are served in full (its start, a hole before it)", () => {
  using u = new Unplugged();
  assert.equal(u.old.write(new Uint8Array(256).fill(7), 0xff00), 256);
  assert.equal(u.current.readU8(0xffff), 7);
  assert.equal(u.iommu.write(new Uint8Array(PAGE).fill(8), 0x20000), PAGE);
  assert.equal(u.current.readU8(0xf000), 8);
  assert.deepEqual(u.iovaLog.dirtyRuns(), [[0x20000, PAGE]]);
  // A hole ends a transfer before the closed region: it is never reached.
  using holes = GuestMemoryMmap.fromRanges([[0, PAGE], [2 * PAGE, PAGE]]);
  const [, far] = holes.removeRegion(2 * PAGE, PAGE);
  far.close();
  assert.equal(holes.write(new Uint8Array(3 * PAGE).fill(9), 0xf00), 0x100);
  assert.equal(holes.getSlices(0xf00, 3 * PAGE).length, 1);
  holes.regions()[0].close();
});

Deno.test("closed region: asynchronous I/O that would reach it is refused before the stream is read", async () => {
  using u = new Unplugged();
  const before = u.state();
  let reads = 0;
  const source = { read: (p: Uint8Array) => Promise.resolve((reads++, p.fill(1).length)) };
  await assert.rejects(() => u.old.readVolatileFromAsync(0xff00, source, 512), RegionClosedError);
  await assert.rejects(() => u.iommu.readVolatileFromAsync(0x20f00, source, 0x200), RegionClosedError);
  assert.equal(reads, 0);
  assert.deepEqual(u.state(), before);
});
