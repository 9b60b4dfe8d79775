/**
 * AbortSignal on the asynchronous volatile I/O (readVolatileFromAsync and friends) over real TCP
 * sockets: an abort rejects at once with the signal's reason, while the read the socket already
 * holds keeps guest memory mapped until it settles and its bytes are logged dirty.
 * @module
 */

import assert from "node:assert/strict";
import { type AtomicBitmap, GuestMemoryMmap, hostProtection, InvalidArgumentError, MmapRegion } from "../mod.ts";
import { tcpPair } from "./fixtures/tcp_pair.ts";

Deno.test("async I/O abort: an aborted socket read rejects with the reason, keeps memory mapped until the socket's read ends, and logs what it landed", async () => {
  using pair = await tcpPair();
  using ram = MmapRegion.memfd(0x2000);
  const mem = GuestMemoryMmap.fromRangesWithFiles([[0x10000, 0x2000, ram.fileOffset]], { dirtyPageSize: 4096 });
  const host = mem.regions()[0].mmap.hostAddress;
  const events: string[] = [];
  let inner: Promise<number | null> | undefined;
  const source = {
    read: (p: Uint8Array) => {
      events.push(`read ${p.length}`);
      return inner = pair.b.read(p);
    },
  };
  const controller = new AbortController();
  const reason = new Error("cancelled by the device");
  const read = mem.readVolatileFromAsync(0x11010, source, 0x10, { signal: controller.signal }).then(
    () => events.push("resolved"),
    (e) => {
      events.push("rejected");
      return e;
    },
  );
  await new Promise((r) => setTimeout(r, 5));
  controller.abort(reason);
  assert.equal(await read, reason);
  assert.deepEqual(events, ["read 16", "rejected"]);
  mem.close();
  assert.deepEqual(hostProtection(host), { prot: 3, shared: true }, "the socket still holds a view: still mapped");

  await pair.a.write(new Uint8Array([9, 8, 7]));
  assert.equal(await inner, 3);
  await new Promise((r) => setTimeout(r, 0)); // the pins go in the job after the read settles
  assert.equal(hostProtection(host), undefined, "unmapped once the abandoned read ended");
  assert.deepEqual(ram.bytes(0x1010, 4), new Uint8Array([9, 8, 7, 0]), "the late bytes landed in mapped memory");
  assert.deepEqual(
    (mem.regions()[0].bitmap as AtomicBitmap).dirtyRuns(),
    [[0x1000, 0x1000]],
    "the page the late read wrote is dirty",
  );
});

Deno.test("async I/O abort: an aborted write to a socket rejects with the reason and the next fragment is never offered", async () => {
  using pair = await tcpPair();
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x1000, 0x1000]]);
  mem.writeSlice(new Uint8Array([1, 2, 3, 4]), 0xffe);
  const controller = new AbortController();
  const offered: number[] = [];
  const sink = {
    write: (p: Uint8Array) => {
      offered.push(p.length);
      if (offered.length === 1) controller.abort("stop");
      return pair.a.write(p);
    },
  };
  const e = await mem.writeAllVolatileToAsync(0xffe, sink, 4, { signal: controller.signal }).then(() => 0, (x) => x);
  assert.equal(e, "stop");
  assert.deepEqual(offered, [2], "only the first fragment went out");
  const got = new Uint8Array(8);
  assert.equal(await pair.b.read(got), 2);
  assert.deepEqual(got.subarray(0, 2), new Uint8Array([1, 2]));
});

Deno.test("async I/O abort: an already aborted signal rejects before the stream is touched; a bad signal is InvalidArgumentError", async () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  let calls = 0;
  const source = { read: (p: Uint8Array) => (calls++, Promise.resolve(p.length)) };
  await assert.rejects(
    mem.readExactVolatileFromAsync(0, source, 8, { signal: AbortSignal.abort("early") }),
    (e) => e === "early",
  );
  assert.equal(calls, 0);
  const region = mem.regions()[0];
  const e = await region.readVolatileFromAsync(0, source, 8, { signal: "no" as never }).then(() => 0, (x) => x);
  assert.ok(e instanceof InvalidArgumentError);
  assert.equal(e.op, "GuestRegionMmap.readVolatileFromAsync");
  assert.equal(e.argument, "options.signal");
  assert.equal(calls, 0);
});
