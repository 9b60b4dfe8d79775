/**
 * The bulk-copy engine (src/memory/copy_engine.ts): each engine (TypedArray.set, one FFI memmove,
 * one FFI call for every fragment) moves exactly the bytes asked at each size class, on both sides
 * of a crossover, within a region and across two; and user code that closes memory or detaches the
 * caller's array in the middle of a request gets a typed error, never a copy into what is gone.
 */

import assert from "node:assert/strict";
import { type AtomicBitmap, GuestMemoryMmap, GuestRegionMmap, Permissions } from "../mod.ts";
import { IommuMemory, IotlbIommu } from "../iommu.ts";
import {
  COPY_THRESHOLDS,
  type CopyThresholds,
  forceAddressLearning,
  forceCopyThresholds,
} from "../src/core/copy_engine.ts";
import { runCase, survived } from "./fixtures/child_process.ts";

const PAGE = 4096;
const REGION = 0x10000;
/** Each engine alone, then a crossover at 64 bytes (sizes 63 and 65 take different engines). */
const ENGINES: Array<[string, CopyThresholds]> = [
  ["TypedArray.set", { out: Infinity, in: Infinity }],
  ["memmove", { out: 1, in: 1 }],
  ["crossover at 64", { out: 64, in: 64 }],
];
const SIZES = [1, 7, 63, 64, 65, 4095, 4096, 4097, 3 * PAGE + 5];

/** A byte pattern no two nearby offsets share, different per `seed`. */
function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = (i * 31 + seed * 7 + (i >> 8)) % 251 + 1;
  return out;
}

/** Runs `body` with the engine forced to `t`, then restores the runtime's choice. */
function withEngine(t: CopyThresholds, body: () => void): void {
  forceCopyThresholds(t);
  try {
    body();
  } finally {
    forceCopyThresholds(undefined);
  }
}

Deno.test("copy engine: every engine writes and reads exact bytes at each size class, in one region and across two", () => {
  for (const [name, t] of ENGINES) {
    withEngine(t, () => {
      using mem = GuestMemoryMmap.fromRanges([[0, REGION], [REGION, REGION]], { dirtyPageSize: PAGE });
      const [r0, r1] = mem.regions();
      const whole = new Uint8Array(2 * REGION);
      for (const size of SIZES) {
        // Unaligned inside region 0, then straddling the boundary (two fragments).
        for (const addr of [0x123, REGION - Math.floor(size / 2)]) {
          const where = `${name}, ${size} bytes at ${addr.toString(16)}`;
          const data = pattern(size, size + addr);
          r0.mmap.bytes().fill(0);
          r1.mmap.bytes().fill(0);
          (r0.bitmap as AtomicBitmap).reset();
          (r1.bitmap as AtomicBitmap).reset();
          mem.writeSlice(data, addr);
          whole.set(r0.mmap.bytes(), 0);
          whole.set(r1.mmap.bytes(), REGION);
          assert.deepEqual(whole.subarray(addr, addr + size), data, where);
          assert.equal(whole.subarray(0, addr).some((x) => x !== 0), false, `${where}: bytes before`);
          assert.equal(whole.subarray(addr + size).some((x) => x !== 0), false, `${where}: bytes after`);
          const pages = [];
          for (let p = Math.floor(addr / PAGE); p * PAGE < addr + size; p++) pages.push(p * PAGE);
          const dirty = [];
          for (let p = 0; p < 2 * REGION; p += PAGE) {
            const r = p < REGION ? r0 : r1;
            if (r.bitmap!.dirtyAt(p % REGION)) dirty.push(p);
          }
          assert.deepEqual(dirty, pages, `${where}: dirty pages`);
          // Read back into the middle of a larger array (a byteOffset the copy must honour).
          const backing = new Uint8Array(size + 32).fill(0xee);
          const into = backing.subarray(16, 16 + size);
          mem.readSlice(into, addr);
          assert.deepEqual(into, data, `${where}: read back`);
          assert.deepEqual([backing[15], backing[16 + size]], [0xee, 0xee], `${where}: read stayed inside`);
          assert.equal(mem.read(new Uint8Array(size), addr), size, `${where}: read count`);
        }
      }
    });
  }
});

Deno.test("copy engine: slices and regions copy exact bytes with every engine, clipped at their end", () => {
  for (const [name, t] of ENGINES) {
    withEngine(t, () => {
      using region = GuestRegionMmap.fromRange(0x4000, REGION);
      for (const size of SIZES) {
        const data = pattern(size, size);
        region.mmap.bytes().fill(0);
        const slice = region.getSlice(0x800, size);
        assert.equal(slice.copyFrom(pattern(size + 9, size)), size, `${name} ${size}: copyFrom clips`);
        const out = new Uint8Array(size + 9);
        assert.equal(slice.copyTo(out), size, `${name} ${size}: copyTo count`);
        assert.deepEqual(out.subarray(0, size), data, `${name} ${size}: copyTo bytes`);
        assert.equal(out.subarray(size).some((x) => x !== 0), false, `${name} ${size}: copyTo past the slice`);
        const clipped = Math.min(size, 3);
        assert.equal(region.write(data, REGION - 3), clipped, `${name} ${size}: region write clipped`);
        const tail = new Uint8Array(size);
        assert.equal(region.read(tail, REGION - 3), clipped, `${name} ${size}: region read clipped`);
        assert.deepEqual(tail.subarray(0, clipped), data.subarray(0, clipped), `${name} ${size}: region bytes`);
      }
    });
  }
});

Deno.test("copy engine: a closed region refuses every engine's copy with RegionClosed and moves nothing", () => {
  for (const [name, t] of ENGINES) {
    withEngine(t, () => {
      using mem = GuestMemoryMmap.fromRanges([[0, REGION], [REGION, REGION]]);
      mem.regions()[1].close();
      for (const size of [64, 4096]) {
        const buf = new Uint8Array(size);
        assert.throws(() => mem.readSlice(buf, REGION - 16), { name: "RegionClosedError", kind: "RegionClosed" });
        assert.throws(() => mem.writeSlice(pattern(size, 1), REGION - 16), { kind: "RegionClosed" });
        assert.equal(buf.some((x) => x !== 0), false, `${name} ${size}: nothing read`);
        const head = new Uint8Array(16);
        mem.readSlice(head, REGION - 16);
        assert.equal(head.some((x) => x !== 0), false, `${name} ${size}: nothing written before the closed region`);
      }
    });
  }
});

Deno.test("copy engine: an array copied again and again (its address learnt) gets exact bytes at its offset each time", () => {
  forceCopyThresholds({ out: 1, in: 1 });
  forceAddressLearning(true);
  try {
    using mem = GuestMemoryMmap.fromRanges([[0, REGION], [REGION, REGION]]);
    const u8 = mem.regions()[0].mmap.bytes(), high = mem.regions()[1].mmap.bytes();
    const backing = new ArrayBuffer(2 * PAGE);
    const whole = new Uint8Array(backing).fill(0xee);
    const view = new Uint8Array(backing, 100, PAGE);
    for (let round = 0; round < 4; round++) {
      u8.set(pattern(PAGE, round), 0x1000);
      mem.readSlice(view, 0x1000);
      assert.deepEqual(view, pattern(PAGE, round), `read round ${round}`);
      assert.deepEqual([whole[99], whole[100 + PAGE]], [0xee, 0xee], `read round ${round} stayed inside`);
      view.set(pattern(PAGE, round + 10));
      mem.writeSlice(view, 0x3000 + round);
      assert.deepEqual(u8.subarray(0x3000 + round, 0x3000 + round + PAGE), pattern(PAGE, round + 10), `write ${round}`);
      // Across the two regions: one call for both fragments, with the learnt address.
      const cross = REGION - 100 - round;
      mem.readSlice(view, cross);
      const expected = new Uint8Array(PAGE);
      expected.set(u8.subarray(cross), 0);
      expected.set(high.subarray(0, PAGE - (REGION - cross)), REGION - cross);
      assert.deepEqual(view, expected, `read across, round ${round}`);
      assert.deepEqual([whole[99], whole[100 + PAGE]], [0xee, 0xee], `read across ${round} stayed inside`);
      view.set(pattern(PAGE, round + 30));
      mem.writeSlice(view, cross);
      const back = new Uint8Array(PAGE);
      back.set(u8.subarray(cross), 0);
      back.set(high.subarray(0, PAGE - (REGION - cross)), REGION - cross);
      assert.deepEqual(back, pattern(PAGE, round + 30), `write across, round ${round}`);
    }
    // Arrays whose bytes may move or be shared are never learnt; they copy exactly all the same.
    const others = [
      new Uint8Array(new SharedArrayBuffer(PAGE)),
      new Uint8Array(new ArrayBuffer(PAGE, { maxByteLength: 2 * PAGE })),
      new Uint8Array(64),
    ];
    for (const other of others) {
      for (let round = 0; round < 3; round++) {
        const size = other.length;
        u8.set(pattern(size, round + 20), 0x5000);
        mem.readSlice(other, 0x5000);
        assert.deepEqual(new Uint8Array(other), pattern(size, round + 20), `${other.buffer.constructor.name} ${round}`);
      }
    }
  } finally {
    forceAddressLearning(undefined);
    forceCopyThresholds(undefined);
  }
});

Deno.test("copy engine: a learnt array's own length is still read once and held to its real length", () => {
  forceCopyThresholds({ out: 1, in: 1 });
  forceAddressLearning(true);
  try {
    using mem = GuestMemoryMmap.fromRanges([[0, REGION]]);
    mem.regions()[0].mmap.bytes().set(pattern(PAGE, 1), 0);
    const buf = new Uint8Array(PAGE);
    mem.readSlice(buf, 0);
    mem.readSlice(buf, 0); // learnt from here on
    let reads = 0;
    Object.defineProperty(buf, "length", { get: () => (reads++, 2 * PAGE), configurable: true });
    assert.throws(() => mem.readSlice(buf, 0), { name: "InvalidArgumentError", kind: "InvalidArgument" });
    assert.equal(reads, 1, "the length property is read once");
    Object.defineProperty(buf, "length", { get: () => (reads++, 16), configurable: true });
    buf.fill(0);
    assert.equal(mem.read(buf, 0), 16);
    assert.equal(reads, 2);
    assert.deepEqual(buf.subarray(0, 17), new Uint8Array([...pattern(PAGE, 1).subarray(0, 16), 0]));
    Object.setPrototypeOf(buf, Object.prototype); // no longer a Uint8Array to the library
    assert.throws(() => mem.readSlice(buf, 0), { kind: "InvalidArgument" });
  } finally {
    forceAddressLearning(undefined);
    forceCopyThresholds(undefined);
  }
});

Deno.test("copy engine: an IOMMU read over scattered pages gets exact bytes with every engine; a closed page refuses it", () => {
  for (const [name, t] of ENGINES) {
    withEngine(t, () => {
      using phys = GuestMemoryMmap.fromRanges([[0, REGION], [REGION, REGION]]);
      const iommu = new IotlbIommu();
      // IOVA page i -> physical page 3 * i + 1 (i < 8), the last two in the second region.
      for (let i = 0; i < 8; i++) {
        const gpa = i < 6 ? (3 * i + 1) * PAGE : REGION + i * PAGE;
        iommu.iotlb.setMapping(0x40_0000 + i * PAGE, gpa, PAGE, Permissions.ReadWrite);
        phys.writeSlice(pattern(PAGE, i), gpa);
      }
      const mem = new IommuMemory(phys, iommu);
      for (const [start, size] of [[0x40_0000 + 0x10, 8 * PAGE - 0x20], [0x40_0000 + 5 * PAGE - 7, 64]]) {
        const out = new Uint8Array(size);
        mem.readSlice(out, start);
        const expected = new Uint8Array(8 * PAGE);
        for (let i = 0; i < 8; i++) expected.set(pattern(PAGE, i), i * PAGE);
        const from = start - 0x40_0000;
        assert.deepEqual(out, expected.subarray(from, from + size), `${name}: ${size} bytes at ${start.toString(16)}`);
      }
      phys.regions()[1].close();
      const out = new Uint8Array(8 * PAGE);
      assert.throws(() => mem.readSlice(out, 0x40_0000), { kind: "RegionClosed" });
      assert.equal(out.some((x) => x !== 0), false, `${name}: nothing read before the refusal`);
    });
  }
});

Deno.test("copy engine: each runtime's crossovers are the measured ones", () => {
  assert.deepEqual(COPY_THRESHOLDS, { deno: { out: 1, in: Infinity }, bun: { out: 1, in: Infinity } });
});

const FIXTURE = new URL("./fixtures/copy_engine_cases.ts", import.meta.url);
const CLOSED = { threw: "RegionClosedError", kind: "RegionClosed" };
const INVALID = { threw: "InvalidArgumentError", kind: "InvalidArgument" };

/** Runs a case of the fixture in a child process with engine `engine` and returns its report. */
async function report(name: string, engine: "set" | "ffi"): Promise<unknown> {
  return survived(await runCase(FIXTURE, ["--allow-env=GMEM_NATIVE_LIB"], `${name}@${engine}`));
}

for (const engine of ["set", "ffi"] as const) {
  Deno.test(`copy engine (${engine}): memory closed by user code mid-request is refused before a byte moves`, async () => {
    assert.deepEqual(await report("length-getter-closes-second-region", engine), {
      outcome: CLOSED,
      buf: { count: 0, sum: 0 },
      closed: true,
    });
    assert.deepEqual(await report("guard-closes-region", engine), {
      write: CLOSED,
      read: CLOSED,
      out: { count: 0, sum: 0 },
    });
  });

  Deno.test(`copy engine (${engine}): a caller's array detached mid-request is refused with InvalidArgument, never copied`, async () => {
    assert.deepEqual(await report("guard-detaches-buffer", engine), {
      read: INVALID,
      write: INVALID,
      memory: { count: PAGE, sum: 3 * PAGE },
    });
  });

  if (engine === "ffi") {
    Deno.test("copy engine (ffi): a learnt array detached mid-request is refused with InvalidArgument, never copied into", async () => {
      assert.deepEqual(await report("learnt-array-detached-mid-request", engine), {
        first: { ok: PAGE },
        second: { ok: PAGE },
        third: INVALID,
        length: 0,
      });
    });
  }

  Deno.test(`copy engine (${engine}): a dirty log that closes the next region does not tear the write; the next one is refused`, async () => {
    assert.deepEqual(await report("dirty-log-closes-second-region", engine), {
      first: { ok: PAGE },
      marks: [[PAGE / 2, PAGE / 2]],
      a: { count: PAGE / 2, sum: 5 * PAGE / 2 },
      b: { count: PAGE / 2, sum: 5 * PAGE / 2 },
      closed: true,
      next: CLOSED,
    });
  });
}
