/**
 * View seams: a region larger than the runtime's largest ArrayBuffer (4 GiB on Bun) is covered by
 * several views, and every operation that crosses from one to the next must behave as if the
 * region were one (fragments split there as at a region boundary; single views across a seam are
 * a precise ViewSeamError). On Bun these run against the real 4 GiB limit; where one view covers
 * any region (Deno), they are ignored here and run in a child with `GMEM_MAX_VIEW_BYTES=65536`.
 * @module
 */

import assert from "node:assert/strict";
import {
  GuestMemoryMmap,
  GuestRegionMmap,
  InvalidBackendAddressError,
  MisalignedError,
  MmapRegion,
  ViewSeamError,
} from "../mod.ts";
import { native } from "../src/ffi/native.ts";
import { expectError } from "./fixtures/guest_assert.ts";

const V = native().maxViewBytes;
const P = 4096;
/** Seam tests need a region of 2V + 2P bytes: real address space, nothing resident. */
const SPLITS = V <= 2 ** 33;
const G = 0x1_0000_0000; // guest base of the big region
const SIZE = 2 * V + 2 * P; // views: [0, V), [V, 2V), [2V, 2V + 2P)

function seamTest(name: string, fn: () => void | Promise<void>): void {
  Deno.test({ name: `view seams: ${name}`, ignore: !SPLITS, fn });
}

/** A guest memory of the big region plus a small one right after it, dirty-tracked. */
function bigMemory(): GuestMemoryMmap {
  return GuestMemoryMmap.fromRanges([[G, SIZE], [G + SIZE, 2 * P]], { dirtyPageSize: P });
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 13 + seed) & 0xff;
  return out;
}

seamTest("a region is covered by views of the runtime's size, the last one shorter", () => {
  using r = MmapRegion.anonymous(SIZE);
  assert.equal(r.viewSize, V);
  using small = MmapRegion.anonymous(2 * P);
  assert.equal(small.viewSize, 2 * P, "a region smaller than the limit is one view");
});

seamTest("getSlices splits at a seam exactly as at a region boundary, with contiguous host addresses", () => {
  using mem = bigMemory();
  const host = mem.getHostAddress(G);
  const s = mem.getSlices(G + V - 8, 16);
  assert.deepEqual(s.map((x) => x.len), [8, 8]);
  assert.equal(s[0].hostAddress, host + BigInt(V - 8));
  assert.equal(s[1].hostAddress, host + BigInt(V));
  assert.equal(s[1].dirtyLogOffset, V, "the second fragment logs at its region offset");
  // Across the last seam and on into the next region: the part after the seam is 2P long.
  const t = mem.getSlices(BigInt(G) + BigInt(2 * V) - 8n, 2 * P + 16);
  assert.deepEqual(t.map((x) => x.len), [8, 2 * P, 8]);
  assert.equal(mem.getHostAddress(G + V), host + BigInt(V));
});

seamTest("a single getSlice across a seam is a ViewSeamError naming the range and the seam", () => {
  using mem = bigMemory();
  const e = expectError(() => mem.getSlice(G + V - 8, 16), ViewSeamError, {
    kind: "InvalidBackendAddress",
    op: "GuestMemoryMmap.getSlice",
    mentions: [
      `guest address range [0x${(G + V - 8).toString(16)}, 0x${(G + V + 8).toString(16)})`,
      `crosses the view seam at 0x${(G + V).toString(16)}`,
      `at most 0x${V.toString(16)} bytes`,
    ],
  });
  assert.ok(e instanceof InvalidBackendAddressError);
  assert.equal(e.start, BigInt(G + V - 8));
  assert.equal(e.length, 16);
  assert.equal(e.seam, BigInt(G + V));
  assert.equal(e.viewSize, V);
  assert.equal(mem.getSlice(G + V - 8, 8).len, 8, "up to the seam is fine");
  assert.equal(mem.getSlice(G + V, 8).len, 8, "from the seam on is fine");
  assert.equal(mem.getSlice(G + V, 0).len, 0);
  // The region's end is still the region's end.
  expectError(() => mem.getSlice(G + SIZE - 8, 16), InvalidBackendAddressError, {
    kind: "InvalidBackendAddress",
    op: "GuestMemoryMmap.getSlice",
    mentions: ["crosses the end of the region"],
  });
});

seamTest("buffers written across a seam read back whole and land on both sides", () => {
  using mem = bigMemory();
  const data = pattern(P, 5);
  mem.writeSlice(data, G + V - 100);
  const back = new Uint8Array(P);
  mem.readSlice(back, G + V - 100);
  assert.deepEqual(back, data);
  assert.deepEqual(mem.getSlice(G + V - 100, 100).bytes(), data.subarray(0, 100));
  assert.deepEqual(mem.getSlice(G + V, P - 100).bytes(), data.subarray(100));
  assert.equal(mem.write(pattern(16, 9), BigInt(G + SIZE) - 8n), 16, "and on into the next region");
});

seamTest("scalars straddling a seam are assembled from both views; aligned ones on either side are plain", () => {
  using mem = bigMemory();
  mem.writeU64(G + V - 4, 0x1122334455667788n);
  assert.equal(mem.readU64(G + V - 4), 0x1122334455667788n);
  assert.equal(mem.readU32(G + V - 4), 0x55667788);
  assert.equal(mem.readU32(G + V), 0x11223344);
  mem.writeU32BE(BigInt(G + V - 2), 0xa1b2c3d4);
  assert.deepEqual([mem.readU8(G + V - 2), mem.readU8(G + V - 1), mem.readU8(G + V), mem.readU8(G + V + 1)], [
    0xa1,
    0xb2,
    0xc3,
    0xd4,
  ]);
  mem.writeU64(G + V - 8, 1n);
  mem.writeU64(G + V, 2n);
  assert.deepEqual([mem.readU64(G + V - 8), mem.readU64(G + V)], [1n, 2n]);
});

seamTest("atomics work on both sides of a seam; one straddling it is misaligned", () => {
  using mem = bigMemory();
  mem.storeU64(G + V - 8, 40n);
  assert.equal(mem.addU64(G + V - 8, 2n), 40n);
  assert.equal(mem.loadU64(G + V - 8), 42n);
  assert.equal(mem.compareExchangeU32(G + V, 0, 7), 0);
  assert.equal(mem.loadU32(G + V), 7);
  expectError(() => mem.loadU64(G + V - 4), MisalignedError, { kind: "Misaligned", op: "GuestMemoryMmap.loadU64" });
});

seamTest("writes across a seam mark the pages on both sides dirty, by region offset", () => {
  using mem = bigMemory();
  const log = mem.regions()[0].bitmap!;
  mem.writeSlice(new Uint8Array(16), G + V - 8);
  assert.deepEqual([log.dirtyAt(V - P - 1), log.dirtyAt(V - 1), log.dirtyAt(V), log.dirtyAt(V + P)], [
    false,
    true,
    true,
    false,
  ]);
  mem.writeU8(G + 2 * V + 5, 1);
  assert.ok(log.dirtyAt(2 * V), "the fast path past a seam logs at the part's region offset");
  mem.storeU32(G + V + 2 * P, 1);
  assert.ok(log.dirtyAt(V + 2 * P));
});

seamTest("GuestRegionMmap: region offsets cross seams in copies and I/O; one slice may not", () => {
  using region = GuestRegionMmap.fromRange(G, SIZE, undefined, { dirtyPageSize: P });
  const data = pattern(64, 3);
  region.writeSlice(data, V - 32);
  assert.deepEqual([region.bitmap!.dirtyAt(V - 1), region.bitmap!.dirtyAt(V), region.bitmap!.dirtyAt(V + P)], [
    true,
    true,
    false,
  ]);
  region.writeU32(V + 2 * P + 8, 1);
  assert.ok(region.bitmap!.dirtyAt(V + 2 * P), "a scalar past a seam logs at its region offset");
  const back = new Uint8Array(64);
  region.readSlice(back, V - 32);
  assert.deepEqual(back, data);
  assert.equal(region.readU16(V - 1), region.readU8(V - 1) | (region.readU8(V) << 8));
  const e = expectError(() => region.getSlice(V - 1, 2), ViewSeamError, {
    kind: "InvalidBackendAddress",
    op: "GuestRegionMmap.getSlice",
    mentions: [`region offset range [0x${(V - 1).toString(16)}, 0x${(V + 1).toString(16)})`],
  });
  assert.equal(e.seam, BigInt(V));
  expectError(() => region.asVolatileSlice(), ViewSeamError, {
    kind: "InvalidBackendAddress",
    op: "GuestRegionMmap.getSlice",
  });
  const source = pattern(48, 11);
  assert.equal(region.readVolatileFrom(V - 16, source, 48), 48);
  assert.deepEqual(region.getSlice(V - 16, 16).bytes(), source.subarray(0, 16));
  assert.deepEqual(region.getSlice(V, 32).bytes(), source.subarray(16));
});

seamTest("I/O through a file descriptor covers both sides of a seam in one call", () => {
  using mem = bigMemory();
  const path = Deno.makeTempFileSync({ prefix: "gmem-seam-" });
  try {
    const data = pattern(2 * P, 7);
    Deno.writeFileSync(path, data);
    {
      using file = Deno.openSync(path, { read: true });
      assert.equal(mem.readVolatileFrom(G + V - P, file, 2 * P), 2 * P);
    }
    assert.deepEqual(mem.getSlice(G + V - P, P).bytes(), data.subarray(0, P));
    assert.deepEqual(mem.getSlice(G + V, P).bytes(), data.subarray(P));
    mem.writeSlice(pattern(2 * P, 99), G + V - P);
    {
      using file = Deno.openSync(path, { write: true });
      assert.equal(mem.writeVolatileTo(G + V - P, file, 2 * P), 2 * P);
    }
    assert.deepEqual(Deno.readFileSync(path), pattern(2 * P, 99));
  } finally {
    Deno.removeSync(path);
  }
});

seamTest("MmapRegion: bytes() may not straddle a seam; read and write may; close detaches every view", () => {
  const r = MmapRegion.anonymous(SIZE);
  const e = expectError(() => r.bytes(V - 8, 16), ViewSeamError, {
    kind: "InvalidBackendAddress",
    op: "MmapRegion.bytes",
    mentions: [`region offset range [0x${(V - 8).toString(16)}, 0x${(V + 8).toString(16)})`],
  });
  assert.equal(e.seam, BigInt(V));
  expectError(() => r.bytes(), ViewSeamError, { kind: "InvalidBackendAddress", op: "MmapRegion.bytes" });
  expectError(() => r.dataView(V - 1, 2), ViewSeamError, { kind: "InvalidBackendAddress", op: "MmapRegion.dataView" });
  r.write(pattern(32, 1), V - 16);
  const out = new Uint8Array(32);
  r.read(out, V - 16);
  assert.deepEqual(out, pattern(32, 1));
  const before = r.bytes(V - 16, 16), after = r.bytes(V, 16), last = r.bytes(SIZE - 16, 16);
  assert.deepEqual([...before, ...after], [...pattern(32, 1)]);
  assert.equal(r.bytes(SIZE, 0).length, 0, "an empty view at the end is fine");
  r.close();
  assert.deepEqual([before.length, after.length, last.length], [0, 0, 0], "every view is detached");
});

seamTest("a buffer stolen from a view after the first is noticed: close quarantines the whole mapping", () => {
  const r = MmapRegion.anonymous(SIZE);
  const view = r.bytes(V, 16);
  view[0] = 1;
  const stolen = view.buffer.transfer();
  r.close();
  assert.equal(r.quarantined, true);
  assert.equal(new Uint8Array(stolen)[0], 0, "the stolen buffer reads scrap zero pages, not freed memory");
});

Deno.test({
  name: "view seams: with one view per region here, the seam tests pass in a child with 64 KiB views",
  ignore: SPLITS,
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["test", "--no-check", "--allow-ffi", "--allow-read", "--allow-write", "--allow-env", import.meta.url],
      env: { GMEM_MAX_VIEW_BYTES: "65536", NO_COLOR: "1", RUST_BACKTRACE: "0" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /ok \| 11 passed \| 0 failed \| 1 ignored/, text);
  },
});
