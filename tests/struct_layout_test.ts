/**
 * Struct-style reads and writes (vm-memory's read_obj / write_obj): layouts are checked when made,
 * readObj/writeObj work the same on every Bytes type, writes are all or nothing, and the exported
 * virtio and vhost-user layouts match their specifications.
 * @module
 */

import assert from "node:assert/strict";
import {
  type AtomicBitmap,
  defineLayout,
  GuestMemoryMmap,
  GuestRegionMmap,
  InvalidArgumentError,
  MmapRegion,
  PartialBufferError,
  Permissions,
  PROT_READ,
  ReadOnlyError,
  RegionClosedError,
  StructLayout,
} from "../mod.ts";
import { CannotResolveError, IommuMemory, IotlbIommu } from "../iommu.ts";
import {
  encodeMessage,
  VHOST_USER_HEADER_LAYOUT,
  VIRTQ_AVAIL_ELEM_LAYOUT,
  VIRTQ_AVAIL_HEADER_LAYOUT,
  VIRTQ_DESC_LAYOUT,
  VIRTQ_USED_ELEM_LAYOUT,
  VIRTQ_USED_HEADER_LAYOUT,
} from "../vhost_user.ts";

const Inner = defineLayout("Inner", { tag: [0, "u8"], value: [2, "i16be"] });
/** Every kind of field, packed without alignment, with padding at the end. */
const Everything = defineLayout("Everything", {
  a: [0, "u8"],
  b: [1, "i8"],
  c: [2, "u16"],
  d: [4, "u16be"],
  e: [6, "i32"],
  f: [10, "u32be"],
  g: [14, "u64"],
  h: [22, "i64be"],
  i: [30, "f32"],
  j: [34, "f64be"],
  mac: [42, { bytes: 6 }],
  ids: [48, { array: "u16", count: 3 }],
  inner: [54, Inner],
  pairs: [58, { array: Inner, count: 2 }],
}, { size: 72 });

const VALUE = {
  a: 0xfe,
  b: -2,
  c: 0xbeef,
  d: 0x1234,
  e: -5,
  f: 0xdeadbeef,
  g: 0xfedcba9876543210n,
  h: -2n,
  i: 1.5,
  j: -0.25,
  mac: new Uint8Array([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
  ids: [1, 2, 0xffff],
  inner: { tag: 7, value: -300 },
  pairs: [{ tag: 1, value: 1 }, { tag: 2, value: -1 }],
};

/** The bytes of VALUE by hand, from the field list above. */
function expectedBytes(): Uint8Array {
  const b = new Uint8Array(72);
  const dv = new DataView(b.buffer);
  dv.setUint8(0, 0xfe);
  dv.setInt8(1, -2);
  dv.setUint16(2, 0xbeef, true);
  dv.setUint16(4, 0x1234, false);
  dv.setInt32(6, -5, true);
  dv.setUint32(10, 0xdeadbeef, false);
  dv.setBigUint64(14, 0xfedcba9876543210n, true);
  dv.setBigInt64(22, -2n, false);
  dv.setFloat32(30, 1.5, true);
  dv.setFloat64(34, -0.25, false);
  b.set([0x52, 0x54, 0, 0x12, 0x34, 0x56], 42);
  dv.setUint16(48, 1, true);
  dv.setUint16(50, 2, true);
  dv.setUint16(52, 0xffff, true);
  dv.setUint8(54, 7);
  dv.setInt16(56, -300, false);
  dv.setUint8(58, 1);
  dv.setInt16(60, 1, false);
  dv.setUint8(62, 2);
  dv.setInt16(64, -1, false);
  return b;
}

function bytesAt(mem: { read(buf: Uint8Array, addr: number): number }, addr: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  assert.equal(mem.read(out, addr), n);
  return out;
}

Deno.test("struct: writeObj lays out every field type at its offset and readObj gives the same value back", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x2000]], { dirtyPageSize: 4096 });
  mem.writeObj(0x1003, Everything, VALUE);
  assert.deepEqual(bytesAt(mem, 0x1003, 72), expectedBytes());
  assert.deepEqual(mem.readObj(0x1003, Everything), VALUE);
  assert.deepEqual((mem.regions()[0].bitmap as AtomicBitmap).dirtyRuns(), [[0x1000, 0x1000]]);
  assert.equal(Everything.size, 72);
  assert.deepEqual(Everything.fields.map((f) => [f.name, f.offset]).slice(0, 3), [["a", 0], ["b", 1], ["c", 2]]);
});

Deno.test("struct: readObj and writeObj work on a region, a slice and IOMMU memory, at their own addresses", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x10000, 0x2000]]);
  const region = mem.regions()[0];
  region.writeObj(0x100, Everything, VALUE);
  assert.deepEqual(mem.readObj(0x10100, Everything), VALUE);
  const slice = mem.getSlice(0x10800, 0x100);
  slice.writeObj(8, VIRTQ_USED_ELEM_LAYOUT, { id: 9, len: 0x200 });
  assert.deepEqual(region.readObj(0x808, VIRTQ_USED_ELEM_LAYOUT), { id: 9, len: 0x200 });
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x400000, 0x10000, 0x1000, Permissions.ReadWrite);
  iommu.iotlb.setMapping(0x401000, 0x11000, 0x1000, Permissions.ReadWrite);
  const dma = new IommuMemory(mem, iommu);
  assert.deepEqual(dma.readObj(0x400100, Everything), VALUE);
  dma.writeObj(0x400ffc, VIRTQ_DESC_LAYOUT, { addr: 0x1122334455667788n, len: 7, flags: 3, next: 4 });
  assert.deepEqual(mem.readObj(0x10ffc, VIRTQ_DESC_LAYOUT), { addr: 0x1122334455667788n, len: 7, flags: 3, next: 4 });
});

Deno.test("struct: a struct across two regions is read and written whole", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x1000, 0x1000]]);
  mem.writeObj(0xff0, Everything, VALUE);
  assert.deepEqual(bytesAt(mem, 0xff0, 72), expectedBytes());
  assert.deepEqual(mem.readObj(0xff0, Everything), VALUE);
});

Deno.test("struct: writeObj is all or nothing: a bad field, a hole, read-only memory, a closed region, an IOMMU refusal change no byte", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x3000, 0x1000]]);
  mem.getSlice(0xfc0, 0x40).fill(0xaa);
  const untouched = () => assert.deepEqual(bytesAt(mem, 0xfc0, 0x40), new Uint8Array(0x40).fill(0xaa));

  const bad = { ...VALUE, pairs: [{ tag: 1, value: 1 }, { tag: 256, value: 0 }] };
  assert.throws(
    () => mem.writeObj(0xfc0, Everything, bad),
    (e) =>
      e instanceof InvalidArgumentError && e.op === "GuestMemoryMmap.writeObj" && e.argument === "value.pairs[1].tag",
  );
  untouched();

  const hole = (() => {
    try {
      mem.writeObj(0xfd0, Everything, VALUE); // 48 bytes fit, 24 would fall in the hole
    } catch (e) {
      return e;
    }
  })();
  assert.ok(hole instanceof PartialBufferError, String(hole));
  assert.equal(hole.op, "GuestMemoryMmap.writeObj");
  assert.equal(hole.expected, 72);
  assert.equal(hole.completed, 0);
  untouched();

  using ro = GuestMemoryMmap.fromRegions([
    GuestRegionMmap.fromRange(0, 0x1000),
    new GuestRegionMmap(MmapRegion.anonymous(0x1000, { prot: PROT_READ }), 0x1000),
  ]);
  ro.getSlice(0xfc0, 0x40).fill(0xaa);
  assert.throws(() => ro.writeObj(0xfd0, Everything, VALUE), ReadOnlyError);
  assert.deepEqual(bytesAt(ro, 0xfc0, 0x40), new Uint8Array(0x40).fill(0xaa));

  const two = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x1000, 0x1000]]);
  two.getSlice(0xfc0, 0x40).fill(0xaa);
  const first = two.regions()[0];
  two.regions()[1].close();
  assert.throws(() => two.writeObj(0xfd0, Everything, VALUE), RegionClosedError);
  assert.deepEqual(bytesAt(first, 0xfc0, 0x40), new Uint8Array(0x40).fill(0xaa));
  first.close();

  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x8000, 0xf00, 0x100, Permissions.ReadWrite);
  iommu.iotlb.setMapping(0x8100, 0x3000, 0x100, Permissions.Read);
  const dma = new IommuMemory(mem, iommu);
  assert.throws(() => dma.writeObj(0x80e0, Everything, VALUE), CannotResolveError);
  untouched();
});

Deno.test("struct: readObj past the end is PartialBuffer; byte fields are copies that outlive the memory", () => {
  const mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const e = (() => {
    try {
      mem.readObj(0xfe0, Everything);
    } catch (x) {
      return x;
    }
  })();
  assert.ok(e instanceof PartialBufferError);
  assert.equal(e.op, "GuestMemoryMmap.readObj");
  assert.equal(e.expected, 72);
  assert.equal(e.completed, 32);
  mem.writeObj(0, Everything, VALUE);
  const v = mem.readObj(0, Everything);
  v.mac[0] = 0;
  assert.equal(mem.readU8(42), 0x52, "changing the copy changes no guest byte");
  mem.close();
  assert.deepEqual(v.mac, new Uint8Array([0, 0x54, 0, 0x12, 0x34, 0x56]), "the copy is still readable after close");
  assert.throws(() => mem.readObj(0, Everything), RegionClosedError);
});

Deno.test("struct: values of the wrong type or range are InvalidArgument naming the field", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const cases: Array<[Partial<Record<keyof typeof VALUE, unknown>>, string]> = [
    [{ a: 256 }, "value.a"],
    [{ b: -129 }, "value.b"],
    [{ c: 1.5 }, "value.c"],
    [{ e: 2 ** 31 }, "value.e"],
    [{ f: -1 }, "value.f"],
    [{ g: 2n ** 64n }, "value.g"],
    [{ g: 2 ** 53 }, "value.g"],
    [{ g: -1n }, "value.g"],
    [{ h: 2n ** 63n }, "value.h"],
    [{ i: "1" }, "value.i"],
    [{ mac: new Uint8Array(5) }, "value.mac"],
    [{ ids: [1, 2] }, "value.ids"],
    [{ inner: null }, "value.inner"],
    [{ a: undefined }, "value.a"],
  ];
  for (const [patch, argument] of cases) {
    try {
      mem.writeObj(0, Everything, { ...VALUE, ...patch } as typeof VALUE);
      assert.fail(`${argument} was accepted`);
    } catch (e) {
      assert.ok(e instanceof InvalidArgumentError, `${argument}: ${e}`);
      assert.equal(e.argument, argument);
    }
  }
  assert.deepEqual(bytesAt(mem, 0, 72), new Uint8Array(72), "nothing was written by any of them");
  assert.throws(() => mem.writeObj(0, Everything, null as never), { name: "InvalidArgumentError" });
  assert.throws(
    () => mem.readObj(0, { size: 4 } as never),
    (e) => e instanceof InvalidArgumentError && e.argument === "layout",
  );
  const withExtra = { ...VALUE, g: 2 ** 53 - 1, extra: "ignored" };
  mem.writeObj(0, Everything, withExtra);
  assert.equal(mem.readObj(0, Everything).g, 2n ** 53n - 1n);
});

Deno.test("struct: hostile layouts are refused with InvalidArgument naming what is wrong", () => {
  const refused = (fields: unknown, argument: string, options?: unknown) => {
    try {
      new StructLayout("Bad", fields as never, options as never);
      assert.fail(`accepted ${argument}`);
    } catch (e) {
      assert.ok(e instanceof InvalidArgumentError, `${argument}: ${e}`);
      assert.equal(e.op, "defineLayout");
      assert.equal(e.argument, argument);
      return e;
    }
  };
  refused({ x: [1.5, "u8"] }, "fields.x offset");
  refused({ x: [-1, "u8"] }, "fields.x offset");
  refused({ x: [2 ** 53, "u8"] }, "fields.x offset");
  refused({ x: ["0", "u8"] }, "fields.x offset");
  refused({ x: [0, "u24"] }, "fields.x type");
  refused({ x: [0, "toString"] }, "fields.x type");
  refused({ x: [0, { bytes: 0 }] }, "fields.x bytes");
  refused({ x: [0, { bytes: 2.5 }] }, "fields.x bytes");
  refused({ x: [0, { array: "u8", count: 0 }] }, "fields.x count");
  refused({ x: [0, { array: { bytes: 2 }, count: 2 }] }, "fields.x array");
  refused({ x: [0] }, "fields.x");
  refused({}, "fields");
  refused(null, "fields");
  refused(JSON.parse('{"__proto__": [0, "u8"]}'), "fields");
  const overlap = refused({ a: [0, "u32"], b: [3, "u8"] }, "fields.b");
  assert.match(overlap!.message, /overlaps field a \[0x0, 0x4\)/);
  refused({ a: [0, { array: "u16", count: 2 }], b: [2, "u8"] }, "fields.b");
  refused({ a: [0, "u64"] }, "options.size", { size: 4 });
  refused({ a: [0, "u8"] }, "options.size", { size: 2 ** 21 });
  refused({ a: [0, { bytes: 2 ** 20 }], b: [2 ** 20, "u8"] }, "fields.b offset");
  refused({ a: [2 ** 20 - 1, "u16"] }, "fields.a");
  assert.throws(() => defineLayout("", { a: [0, "u8"] }), InvalidArgumentError);
});

Deno.test("struct: decode and encode work on plain bytes; encode into a short buffer changes nothing", () => {
  const into = new Uint8Array(10).fill(1);
  assert.throws(
    () => VIRTQ_USED_ELEM_LAYOUT.encode({ id: 1, len: 2 }, into, 4),
    (e) => e instanceof InvalidArgumentError && e.argument === "offset",
  );
  assert.deepEqual(into, new Uint8Array(10).fill(1));
  VIRTQ_USED_ELEM_LAYOUT.encode({ id: 1, len: 2 }, into, 2);
  assert.deepEqual(into, new Uint8Array([1, 1, 1, 0, 0, 0, 2, 0, 0, 0]));
  assert.deepEqual(VIRTQ_USED_ELEM_LAYOUT.decode(into, 2), { id: 1, len: 2 });
  assert.throws(() => VIRTQ_USED_ELEM_LAYOUT.decode(into, 3), InvalidArgumentError);
  assert.throws(() => VIRTQ_USED_ELEM_LAYOUT.decode(into, 0.5), InvalidArgumentError);
  assert.equal(String(Inner), "StructLayout Inner (4 bytes): tag u8 @0x0, value i16be @0x2");
});

Deno.test("struct: the virtio and vhost-user layouts match their specifications", () => {
  assert.equal(
    String(VIRTQ_DESC_LAYOUT),
    "StructLayout VirtqDesc (16 bytes): addr u64 @0x0, len u32 @0x8, flags u16 @0xc, next u16 @0xe",
  );
  assert.equal(
    String(VIRTQ_AVAIL_HEADER_LAYOUT),
    "StructLayout VirtqAvailHeader (4 bytes): flags u16 @0x0, idx u16 @0x2",
  );
  assert.equal(String(VIRTQ_AVAIL_ELEM_LAYOUT), "StructLayout VirtqAvailElem (2 bytes): head u16 @0x0");
  assert.equal(
    String(VIRTQ_USED_HEADER_LAYOUT),
    "StructLayout VirtqUsedHeader (4 bytes): flags u16 @0x0, idx u16 @0x2",
  );
  assert.equal(String(VIRTQ_USED_ELEM_LAYOUT), "StructLayout VirtqUsedElem (8 bytes): id u32 @0x0, len u32 @0x4");
  const msg = encodeMessage(3, 0x8, new Uint8Array(8));
  assert.deepEqual(VHOST_USER_HEADER_LAYOUT.decode(msg), { request: 3, flags: 0x9, size: 8 });
  assert.deepEqual(VHOST_USER_HEADER_LAYOUT.encode({ request: 3, flags: 0x9, size: 8 }), msg.subarray(0, 12));
});
