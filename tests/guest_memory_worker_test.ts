import assert from "node:assert/strict";
import { type AtomicBitmap, GuestMemoryMmap } from "../mod.ts";

Deno.test("workers: a worker and the main thread race atomic adds and CAS loops on shared guest memory; totals are exact", async () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x2000], [0x2000, 0x2000]], { dirtyPageSize: 4096 });
  const worker = new Worker(new URL("./fixtures/guest_memory_worker.ts", import.meta.url).href, { type: "module" });
  try {
    const iterations = 20000;
    const done = new Promise<string>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<string>) => resolve(e.data);
      worker.onerror = (e) => reject(e);
    });
    worker.postMessage({ shared: mem.toShared(), iterations });
    while (mem.loadU32(0x4) === 0) await new Promise((r) => setTimeout(r, 1));
    mem.storeU32(0x0, 1);
    for (let i = 0; i < iterations; i++) {
      mem.addU32(0x100, 1);
      for (;;) {
        const old = mem.loadU64(0x2000);
        if (mem.compareExchangeU64(0x2000, old, old + 3n) === old) break;
      }
    }
    assert.equal(await done, "done");
    assert.equal(mem.readU32(0x100), 2 * iterations);
    assert.equal(mem.readU64(0x2000), BigInt(5 * iterations));
    const text = new Uint8Array(15);
    mem.readSlice(text, 0x1800);
    assert.equal(new TextDecoder().decode(text), "from the worker");
    const [low, high] = mem.regions().map((r) => r.bitmap as AtomicBitmap);
    assert.deepEqual(
      low.dirtyRuns(),
      [[0, 0x2000]],
      "the worker's write at 0x1800 dirtied page 1 in the shared bitmap",
    );
    assert.deepEqual(high.dirtyRuns(), [[0, 0x1000]]);
  } finally {
    worker.terminate();
  }
});

Deno.test("workers: a shared description is plain cloneable data and a view of it borrows, never unmaps", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x10000, 0x1000]]);
  const shared = structuredClone(mem.toShared());
  assert.equal(shared.regions.length, 1);
  assert.equal(shared.regions[0].guestBase, 0x10000n);
  assert.equal(shared.regions[0].size, 0x1000);
  assert.equal(shared.regions[0].hostAddress, mem.regions()[0].mmap.hostAddress);
  const view = GuestMemoryMmap.fromShared(shared);
  view.writeU16(0x10002, 0xbeef);
  view.close();
  assert.equal(mem.readU16(0x10002), 0xbeef, "closing the view left the owner's memory mapped");
});
