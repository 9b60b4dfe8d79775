import assert from "node:assert/strict";
import {
  type AsyncReader,
  type AtomicBitmap,
  GuestIOError,
  GuestMemoryMmap,
  GuestRegionMmap,
  hostProtection,
  InvalidArgumentError,
  InvalidBackendAddressError,
  InvalidGuestAddressError,
  MmapRegion,
  PartialBufferError,
  PROT_READ,
  ReadOnlyError,
  RegionClosedError,
} from "../mod.ts";
import { tcpPair } from "./fixtures/tcp_pair.ts";

/** Reads exactly `n` bytes from a connection (the peer side of the memory's I/O). */
async function readFull(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const k = await conn.read(out.subarray(got));
    if (k === null) break;
    got += k;
  }
  return out.subarray(0, got);
}

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + seed) & 0xff;
  return out;
}

function bytesAt(mem: GuestMemoryMmap, addr: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  mem.readSlice(out, addr);
  return out;
}

function runs(mem: GuestMemoryMmap): Array<Array<[number, number]>> {
  return mem.regions().map((r) => (r.bitmap as AtomicBitmap).dirtyRuns());
}

/** Resolves once `p` has settled or `ms` passed, and says whether it settled. */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  p.then(() => settled = true, () => settled = true);
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p.catch(() => {}), new Promise((r) => timer = setTimeout(r, ms))]);
  clearTimeout(timer);
  return settled;
}

Deno.test("async I/O: a TCP stream lands across two regions and goes back out byte for byte, marking exactly the pages read", async () => {
  using pair = await tcpPair();
  using mem = GuestMemoryMmap.fromRanges([[0, 0x2000], [0x2000, 0x2000]], { dirtyPageSize: 4096 });
  const data = pattern(0x1000, 3);
  await pair.a.write(data);
  await mem.readExactVolatileFromAsync(0x1800, pair.b, 0x1000);
  assert.deepEqual(bytesAt(mem, 0x1800, 0x1000), data);
  assert.deepEqual(bytesAt(mem, 0x17f0, 0x10), new Uint8Array(0x10), "nothing before the range was written");
  assert.deepEqual(bytesAt(mem, 0x2800, 0x10), new Uint8Array(0x10), "nothing after the range was written");
  assert.deepEqual(runs(mem), [[[0x1000, 0x1000]], [[0, 0x1000]]]);

  await mem.writeAllVolatileToAsync(0x1800, pair.b, 0x1000);
  assert.deepEqual(await readFull(pair.a, 0x1000), data);
  assert.deepEqual(runs(mem), [[[0x1000, 0x1000]], [[0, 0x1000]]], "writing memory out dirties nothing");
});

Deno.test("async I/O: readVolatileFromAsync offers each fragment once; a short read leaves the rest of its fragment untouched", async () => {
  using pair = await tcpPair();
  using mem = GuestMemoryMmap.fromRanges([[0, 0x2000], [0x2000, 0x2000]], { dirtyPageSize: 4096 });
  mem.writeSlice(new Uint8Array(0x200).fill(0xee), 0x1f00);
  const offered: number[] = [], got: Array<number | null> = [];
  let firstDone!: () => void;
  const first = new Promise<void>((r) => firstDone = r);
  const tap: AsyncReader = {
    async read(p) {
      offered.push(p.length);
      const n = await pair.b.read(p);
      got.push(n);
      firstDone();
      return n;
    },
  };
  const head = pattern(0x40, 1), tail = pattern(0x30, 9);
  await pair.a.write(head);
  const op = mem.readVolatileFromAsync(0x1f00, tap, 0x200);
  await first;
  await pair.a.write(tail);
  assert.equal(await op, 0x70);
  assert.deepEqual(offered, [0x100, 0x100]);
  assert.deepEqual(got, [0x40, 0x30]);
  assert.deepEqual(bytesAt(mem, 0x1f00, 0x40), head);
  assert.deepEqual(
    bytesAt(mem, 0x1f40, 0xc0),
    new Uint8Array(0xc0).fill(0xee),
    "the short fragment's rest is untouched",
  );
  assert.deepEqual(bytesAt(mem, 0x2000, 0x30), tail);
  assert.deepEqual(bytesAt(mem, 0x2030, 0xd0), new Uint8Array(0xd0).fill(0xee));
});

Deno.test("async I/O: readExactVolatileFromAsync from a source that ends early rejects with PartialBuffer and keeps what it read, dirty", async () => {
  using pair = await tcpPair();
  using mem = GuestMemoryMmap.fromRanges([[0, 0x2000], [0x2000, 0x2000]], { dirtyPageSize: 4096 });
  const data = pattern(0x30, 5);
  await pair.a.write(data);
  await pair.a.closeWrite();
  const err = await mem.readExactVolatileFromAsync(0x1ff0, pair.b, 0x100).then(() => undefined, (e) => e);
  assert.ok(err instanceof PartialBufferError, String(err));
  assert.equal(err.kind, "PartialBuffer");
  assert.equal(err.op, "GuestMemoryMmap.readExactVolatileFromAsync");
  assert.equal(err.expected, 0x100);
  assert.equal(err.completed, 0x30);
  assert.equal(err.addr, 0x1ff0n);
  assert.match(err.message, /only 48 of 256 bytes at 0x1ff0 .*the source ended early/);
  assert.deepEqual(bytesAt(mem, 0x1ff0, 0x30), data);
  assert.deepEqual(runs(mem), [[[0x1000, 0x1000]], [[0, 0x1000]]]);
  assert.equal(await mem.readVolatileFromAsync(0, pair.b, 0x10), 0, "at the end of the stream a read gets 0 bytes");
});

Deno.test("async I/O: a range that runs into a hole sends its first fragment, then stops (count) or rejects (exact)", async () => {
  using pair = await tcpPair();
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x2000, 0x1000]]);
  const data = pattern(0x100, 11);
  mem.writeSlice(data, 0xf00);
  assert.equal(await mem.writeVolatileToAsync(0xf00, pair.a, 0x200), 0x100);
  assert.deepEqual(await readFull(pair.b, 0x100), data);

  const err = await mem.writeAllVolatileToAsync(0xf00, pair.a, 0x200).then(() => undefined, (e) => e);
  assert.ok(err instanceof PartialBufferError, String(err));
  assert.equal(err.op, "GuestMemoryMmap.writeAllVolatileToAsync");
  assert.equal(err.expected, 0x200);
  assert.equal(err.completed, 0x100);
  assert.deepEqual(await readFull(pair.b, 0x100), data, "the fragment before the hole was still sent");

  const hole = await mem.readVolatileFromAsync(0x1800, pair.b, 0x10).then(() => undefined, (e) => e);
  assert.ok(hole instanceof InvalidGuestAddressError, String(hole));
  assert.equal(hole.addr, 0x1800n);
  assert.equal(hole.op, "GuestMemoryMmap.readVolatileFromAsync");
});

Deno.test("async I/O: closing guest memory while a socket read is in flight keeps it mapped until the read ends, then unmaps", async () => {
  using pair = await tcpPair();
  // The guest region is a second mapping of a memfd, so the bytes can be checked after it is gone.
  using ram = MmapRegion.memfd(0x2000);
  const mem = GuestMemoryMmap.fromRangesWithFiles([[0x10000, 0x2000, ram.fileOffset]]);
  const host = mem.regions()[0].mmap.hostAddress;
  const read = mem.readVolatileFromAsync(0x10010, pair.b, 0x10);
  assert.equal(await settledWithin(read, 20), false, "the read waits for the peer");
  mem.close();
  assert.deepEqual(hostProtection(host), { prot: PROT_READ | 2, shared: true }, "still mapped while in flight");
  assert.throws(() => mem.readU8(0x10000), RegionClosedError);
  assert.throws(() => mem.getSlice(0x10000, 4).bytes(), RegionClosedError);

  await pair.a.write(new Uint8Array([1, 2, 3]));
  const err = await read.then(() => undefined, (e) => e);
  assert.ok(err instanceof RegionClosedError, String(err));
  assert.equal(err.op, "GuestMemoryMmap.readVolatileFromAsync");
  assert.match(err.message, /memory at 0x10010, which the in-flight read was filling, is closed/);
  assert.equal(hostProtection(host), undefined, "unmapped once the read ended");
  assert.deepEqual(ram.bytes(0x10, 4), new Uint8Array([1, 2, 3, 0]), "the kernel wrote into still-mapped memory");

  const later = await mem.readVolatileFromAsync(0x10000, pair.b, 4).then(() => undefined, (e) => e);
  assert.ok(later instanceof RegionClosedError, String(later));
  await assert.rejects(mem.writeVolatileToAsync(0x10000, pair.a, 4), RegionClosedError);
});

Deno.test("async I/O: with two reads in flight on one region, close unmaps only after the second ends", async () => {
  using p1 = await tcpPair();
  using p2 = await tcpPair();
  const mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const host = mem.regions()[0].mmap.hostAddress;
  const r1 = mem.readVolatileFromAsync(0, p1.b, 8).then(() => "ok", (e) => (e as Error).name);
  const r2 = mem.readVolatileFromAsync(0x800, p2.b, 8).then(() => "ok", (e) => (e as Error).name);
  await settledWithin(r1, 10);
  mem.close();
  await p1.a.write(new Uint8Array(8));
  assert.equal(await r1, "RegionClosedError");
  assert.notEqual(hostProtection(host), undefined, "the second read still pins the mapping");
  await p2.a.write(new Uint8Array(8));
  assert.equal(await r2, "RegionClosedError");
  assert.equal(hostProtection(host), undefined);
});

Deno.test("async I/O: closing memory while a large socket write is blocked lets the write finish its chunk, then refuses the rest and unmaps", async () => {
  using pair = await tcpPair();
  const size = 32 << 20;
  const mem = GuestMemoryMmap.fromRanges([[0, size]]);
  const host = mem.regions()[0].mmap.hostAddress;
  const data = pattern(size, 13);
  mem.writeSlice(data, 0);
  const write = mem.writeAllVolatileToAsync(0, pair.a, size);
  assert.equal(await settledWithin(write, 50), false, "no reader: the socket buffer is full");
  mem.close();
  assert.notEqual(hostProtection(host), undefined);
  const received = readFull(pair.b, size);
  const err = await write.then(() => undefined, (e) => e);
  assert.ok(err instanceof RegionClosedError, String(err));
  assert.equal(hostProtection(host), undefined);
  pair.a.close();
  const got = await received;
  assert.ok(got.length > 0 && got.length < size, `received ${got.length} bytes`);
  assert.deepEqual(got, data.subarray(0, got.length), "everything sent came from the memory, in order");
});

Deno.test("async I/O: protection cannot be reduced under an in-flight read", async () => {
  using pair = await tcpPair();
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const mmap = mem.regions()[0].mmap;
  const read = mem.readVolatileFromAsync(0, pair.b, 4);
  await settledWithin(read, 10);
  const err = (() => {
    try {
      mmap.protect(PROT_READ);
    } catch (e) {
      return e;
    }
  })();
  assert.ok(err instanceof InvalidArgumentError, String(err));
  assert.equal(err.op, "MmapRegion.protect");
  assert.match(err.message, /removes access from host 0x[0-9a-f]+, 0x1000 bytes while 1 asynchronous I\/O/);
  assert.equal(mmap.prot, PROT_READ | 2);
  await pair.a.write(new Uint8Array([9, 8, 7, 6]));
  assert.equal(await read, 4);
  mmap.protect(PROT_READ);
  assert.equal(mem.readU32(0), 0x06070809);
});

Deno.test("async I/O: read-only memory goes to a sink as a copy and refuses a source before reading", async () => {
  using pair = await tcpPair();
  const ro = MmapRegion.builder(0x1000).withMmapProt(PROT_READ).build();
  using mem = GuestMemoryMmap.fromRegions([new GuestRegionMmap(ro, 0x4000)]);
  let scribbled = 0;
  const scribbler = {
    write(p: Uint8Array) {
      p.fill(0xff); // would fault on a view of read-only memory
      scribbled += p.length;
      return Promise.resolve(p.length);
    },
  };
  assert.equal(await mem.writeVolatileToAsync(0x4000, scribbler, 0x1000), 0x1000);
  assert.equal(scribbled, 0x1000);
  assert.equal(mem.readU32(0x4000), 0);
  assert.equal(await mem.writeVolatileToAsync(0x4ff0, pair.a, 0x10), 0x10);
  assert.deepEqual(await readFull(pair.b, 0x10), new Uint8Array(0x10));

  let reads = 0;
  const counting = { read: () => Promise.resolve(++reads) };
  const err = await mem.readVolatileFromAsync(0x4000, counting, 8).then(() => undefined, (e) => e);
  assert.ok(err instanceof ReadOnlyError, String(err));
  assert.equal(err.op, "GuestMemoryMmap.readVolatileFromAsync");
  assert.equal(reads, 0);
});

Deno.test("async I/O: regions take offsets and slices clip at their end; a file works as a source", async () => {
  using pair = await tcpPair();
  using region = GuestRegionMmap.fromRange(0x100000, 0x1000, undefined, { dirtyPageSize: 4096 });
  await pair.a.write(pattern(0x20, 2));
  assert.equal(await region.readVolatileFromAsync(0xff0, pair.b, 0x20), 0x10, "clipped at the region end");
  assert.deepEqual(await readFull(pair.b, 0x10), pattern(0x20, 2).subarray(0x10), "the rest stayed in the socket");
  const past = await region.readVolatileFromAsync(0x1000, pair.b, 1).then(() => undefined, (e) => e);
  assert.ok(past instanceof InvalidBackendAddressError, String(past));
  assert.equal(past.op, "GuestRegionMmap.readVolatileFromAsync");
  assert.deepEqual((region.bitmap as AtomicBitmap).dirtyRuns(), [[0, 0x1000]]);

  const slice = region.getSlice(0xff0, 0x10);
  assert.equal(await slice.writeVolatileToAsync(8, pair.a, 0x100), 8);
  assert.deepEqual(await readFull(pair.b, 8), pattern(0x20, 2).subarray(8, 16));

  const path = Deno.makeTempFileSync();
  try {
    Deno.writeFileSync(path, pattern(0x30, 4));
    using file = await Deno.open(path);
    await region.readExactVolatileFromAsync(0x100, file, 0x30);
    const out = new Uint8Array(0x30);
    region.readSlice(out, 0x100);
    assert.deepEqual(out, pattern(0x30, 4));
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("async I/O: bad arguments and misbehaving streams reject with typed errors", async () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  using pair = await tcpPair();
  assert.throws(
    () => mem.readVolatileFrom(0, pair.b as unknown as Deno.FsFile, 4),
    (e) => e instanceof InvalidArgumentError && /use the \*Async methods/.test(e.message),
    "the synchronous form points a socket at the asynchronous one",
  );
  const noRead = await mem.readVolatileFromAsync(0, {} as AsyncReader, 4).then(() => undefined, (e) => e);
  assert.ok(noRead instanceof InvalidArgumentError, String(noRead));
  assert.equal(noRead.argument, "source");
  const badCount = mem.readVolatileFromAsync(0, { read: () => Promise.resolve(0) }, -1);
  await assert.rejects(badCount, (e) => e instanceof InvalidArgumentError && e.argument === "count");
  assert.equal(
    await mem.readVolatileFromAsync(0x5000, { read: () => Promise.resolve(1) }, 0),
    0,
    "zero bytes anywhere",
  );

  const liar = await mem.readVolatileFromAsync(0, { read: (p) => Promise.resolve(p.length + 1) }, 4).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(liar instanceof GuestIOError, String(liar));
  assert.match(liar.message, /source\.read returned 5 for a 4-byte buffer/);

  const cause = new Error("peer reset");
  const failing = await mem.writeVolatileToAsync(0, { write: () => Promise.reject(cause) }, 4).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(failing instanceof GuestIOError, String(failing));
  assert.equal(failing.cause, cause);
  const stuck = await mem.writeVolatileToAsync(0, { write: () => Promise.resolve(0) }, 4).then(
    () => undefined,
    (e) => e,
  );
  assert.ok(stuck instanceof GuestIOError, String(stuck));
  assert.match(stuck.message, /accepted no bytes/);
});
