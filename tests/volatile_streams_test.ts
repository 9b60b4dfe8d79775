/**
 * Web streams over guest memory with real files and a real child's pipes: bytes arrive exactly,
 * nothing is read ahead, chunks are copies that outlive the memory, BYOB readers get their own
 * buffers filled, and ranges that end early or overflow are typed errors.
 * @module
 */

import assert from "node:assert/strict";
import { createReadStream, createWriteStream } from "node:fs";
import { Readable, Writable } from "node:stream";
import {
  type AtomicBitmap,
  GuestMemoryMmap,
  InvalidArgumentError,
  InvalidGuestAddressError,
  PartialBufferError,
  Permissions,
  RegionClosedError,
} from "../mod.ts";
import { IommuMemory, IotlbIommu } from "../iommu.ts";

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 13 + seed) & 0xff;
  return out;
}

/** A real file's writable and readable side: Deno.FsFile's own streams where the runtime has them. */
async function fileWritable(path: string): Promise<WritableStream<Uint8Array>> {
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const own = (file as { writable?: WritableStream<Uint8Array> }).writable;
  if (own !== undefined) return own;
  file.close();
  return Writable.toWeb(createWriteStream(path)) as WritableStream<Uint8Array>;
}

async function fileReadable(path: string): Promise<ReadableStream<Uint8Array>> {
  const file = await Deno.open(path, { read: true });
  const own = (file as { readable?: ReadableStream<Uint8Array> }).readable;
  if (own !== undefined) return own;
  file.close();
  return Readable.toWeb(createReadStream(path)) as ReadableStream<Uint8Array>;
}

Deno.test("streams: guest memory across two regions goes to a real file and comes back byte for byte, dirty exactly where written", async () => {
  const path = Deno.makeTempFileSync({ prefix: "gmem-stream-" });
  try {
    using src = GuestMemoryMmap.fromRanges([[0, 0x10000], [0x10000, 0x10000]]);
    const data = pattern(0x9000, 3);
    src.writeSlice(data, 0xc000);
    await src.readableStream(0xc000, 0x9000, { chunkSize: 0x1000 }).pipeTo(await fileWritable(path));
    assert.deepEqual(new Uint8Array(Deno.readFileSync(path)), data);

    using dst = GuestMemoryMmap.fromRanges([[0, 0x20000]], { dirtyPageSize: 4096 });
    await (await fileReadable(path)).pipeTo(dst.writableStream(0x3000, 0x9000));
    const back = new Uint8Array(0x9000);
    dst.readSlice(back, 0x3000);
    assert.deepEqual(back, data);
    assert.deepEqual((dst.regions()[0].bitmap as AtomicBitmap).dirtyRuns(), [[0x3000, 0x9000]]);
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("streams: memory piped through a real child's stdin and stdout (cat) lands unchanged", async () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x40000]]);
  const data = pattern(0x18000, 9);
  mem.writeSlice(data, 0x1000);
  const child = new Deno.Command("cat", { stdin: "piped", stdout: "piped" }).spawn();
  await Promise.all([
    mem.readableStream(0x1000, 0x18000).pipeTo(child.stdin),
    child.stdout.pipeTo(mem.writableStream(0x20000, 0x18000)),
  ]);
  assert.equal((await child.status).code, 0);
  const out = new Uint8Array(0x18000);
  mem.readSlice(out, 0x20000);
  assert.deepEqual(out, data);
});

Deno.test("streams: nothing is read ahead, and chunks are copies that outlive closed memory", async () => {
  const mem = GuestMemoryMmap.fromRanges([[0, 0x4000]]);
  mem.getSlice(0, 0x4000).fill(1);
  const reader = mem.readableStream(0, 0x3000, { chunkSize: 0x1000 }).getReader();
  const first = await reader.read();
  assert.equal(first.value?.length, 0x1000);
  await new Promise((r) => setTimeout(r, 0)); // time for any read-ahead to happen
  mem.writeU8(0x1000, 7); // after the first pull: the second chunk must see it
  const second = await reader.read();
  assert.equal(second.value?.[0], 7, "the second chunk was copied when it was asked for, not before");
  second.value![1] = 99;
  assert.equal(mem.readU8(0x1001), 1, "a chunk is a copy");
  mem.close();
  assert.equal(second.value?.[1], 99, "and stays readable after the memory is closed");
  assert.equal(first.value?.byteLength, 0x1000);
  const third = await reader.read().then(() => undefined, (e) => e);
  assert.ok(third instanceof PartialBufferError, String(third));
  assert.deepEqual([third.expected, third.completed], [0x3000, 0x2000]);
  assert.ok(third.cause instanceof RegionClosedError, "the cause is the memory's own error");
});

Deno.test("streams: a BYOB reader gets its own buffer filled, at most what is left", async () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  mem.writeSlice(pattern(0x100, 5), 0x800);
  const reader = mem.readableStream(0x800, 0x100).getReader({ mode: "byob" });
  const a = await reader.read(new Uint8Array(0xc0));
  assert.equal(a.value?.length, 0xc0);
  assert.deepEqual(a.value, pattern(0x100, 5).subarray(0, 0xc0));
  const b = await reader.read(new Uint8Array(0x100));
  assert.equal(b.value?.length, 0x40, "only what is left of the range");
  assert.deepEqual(b.value, pattern(0x100, 5).subarray(0xc0));
  const c = await reader.read(new Uint8Array(8));
  assert.equal(c.done, true);
});

Deno.test("streams: a range that runs into a hole errors the stream with PartialBuffer after the bytes before it", async () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x3000, 0x1000]]);
  const got: number[] = [];
  const e = await mem.readableStream(0xe00, 0x400).pipeTo(
    new WritableStream({ write: (c) => void got.push(c.length) }),
  ).then(() => undefined, (x) => x);
  assert.ok(e instanceof PartialBufferError, String(e));
  assert.equal(e.op, "GuestMemoryMmap.readableStream");
  assert.equal(e.addr, 0xe00n);
  assert.deepEqual([e.expected, e.completed], [0x400, 0x200]);
  assert.deepEqual(got, [0x200]);
  const none = await mem.readableStream(0x1800, 4).getReader().read().then(() => undefined, (x) => x);
  assert.ok(none instanceof InvalidGuestAddressError, "nothing delivered: the memory's own error");
});

Deno.test("streams: a writable stream refuses a chunk past its range before writing it, and a short close is PartialBuffer unless exact is false", async () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const w = mem.writableStream(0x100, 6).getWriter();
  await w.write(new Uint8Array([1, 2, 3, 4]));
  const e = await w.write(new Uint8Array([5, 6, 7])).then(() => undefined, (x) => x);
  assert.ok(e instanceof InvalidArgumentError, String(e));
  assert.equal(e.op, "GuestMemoryMmap.writableStream");
  assert.equal(e.argument, "chunk");
  const out = new Uint8Array(8);
  mem.readSlice(out, 0x100);
  assert.deepEqual(out, new Uint8Array([1, 2, 3, 4, 0, 0, 0, 0]), "no byte of the refused chunk");

  const short = mem.writableStream(0x200, 4).getWriter();
  await short.write(new Uint8Array([9]));
  const c = await short.close().then(() => undefined, (x) => x);
  assert.ok(c instanceof PartialBufferError);
  assert.deepEqual([c.expected, c.completed], [4, 1]);
  const loose = mem.writableStream(0x300, 4, { exact: false }).getWriter();
  await loose.write(new Uint8Array([9]));
  await loose.close();
  assert.equal(mem.readU8(0x300), 9);

  const notBytes = mem.writableStream(0, 4).getWriter();
  const n = await notBytes.write("text" as never).then(() => undefined, (x) => x);
  assert.ok(n instanceof InvalidArgumentError);
  assert.equal(n.argument, "chunk");
});

Deno.test("streams: bad chunk sizes and ranges are InvalidArgument when the stream is made", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  for (const chunkSize of [0, 1.5, 2 ** 24 + 1, -1]) {
    assert.throws(
      () => mem.readableStream(0, 16, { chunkSize }),
      (e) => e instanceof InvalidArgumentError && e.argument === "options.chunkSize",
    );
  }
  assert.throws(() => mem.readableStream(0.5, 16), InvalidArgumentError);
  assert.throws(() => mem.writableStream(2n ** 64n - 4n, 16), InvalidArgumentError);
  assert.throws(() => mem.writableStream(0, 4, { exact: "yes" as never }), InvalidArgumentError);
});

Deno.test("streams: a slice's readable and writable cover it; IOMMU memory streams through its translation", async () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const slice = mem.getSlice(0x2000, 8);
  await new Response(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8])).body!.pipeTo(slice.writable);
  assert.deepEqual(
    new Uint8Array(await new Response(slice.readable).arrayBuffer()),
    new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
  );
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x100000, 0x2000, 0x4, Permissions.Read);
  iommu.iotlb.setMapping(0x100004, 0x8000, 0x4, Permissions.ReadWrite);
  const dma = new IommuMemory(mem, iommu);
  mem.writeU32(0x8000, 0x0d0c0b0a);
  assert.deepEqual(
    new Uint8Array(await new Response(dma.readableStream(0x100000, 8)).arrayBuffer()),
    new Uint8Array([1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d]),
  );
  const e = await new Response(new Uint8Array(8)).body!.pipeTo(dma.writableStream(0x100000, 8)).then(
    () => undefined,
    (x) => x,
  );
  assert.equal((e as Error).name, "CannotResolveError", "the IOMMU refuses writes to the read-only entry");
});

Deno.test("streams as I/O: a byte ReadableStream feeds readExactVolatileFromAsync and stays usable for the rest", async () => {
  const path = Deno.makeTempFileSync({ prefix: "gmem-stream-src-" });
  try {
    const data = pattern(0x5000, 11);
    Deno.writeFileSync(path, data);
    using mem = GuestMemoryMmap.fromRanges([[0, 0x2000], [0x2000, 0x4000]], { dirtyPageSize: 4096 });
    // Deno.FsFile.readable where the runtime has it, else another memory's byte stream.
    using src = GuestMemoryMmap.fromRanges([[0, 0x5000]]);
    src.writeSlice(data, 0);
    const file = await Deno.open(path, { read: true });
    const own = (file as { readable?: ReadableStream<Uint8Array> }).readable;
    if (own === undefined) file.close();
    const stream = own ?? src.readableStream(0, 0x5000);
    await mem.readExactVolatileFromAsync(0x1000, stream, 0x3000);
    const got = new Uint8Array(0x3000);
    mem.readSlice(got, 0x1000);
    assert.deepEqual(got, data.subarray(0, 0x3000));
    assert.equal(stream.locked, false, "the lock is given back");
    const parts: Uint8Array[] = [];
    const reader = stream.getReader();
    for (let r = await reader.read(); !r.done; r = await reader.read()) parts.push(r.value);
    const rest = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    parts.reduce((at, p) => (rest.set(p, at), at + p.length), 0);
    assert.deepEqual(rest, data.subarray(0x3000), "no byte past the range was taken from the stream");
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("streams as I/O: a WritableStream sink gets copies, is unlocked afterwards; a default ReadableStream source is refused", async () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x2000]]);
  mem.writeSlice(pattern(0x1800, 2), 0x400);
  const kept: Uint8Array[] = [];
  const sink = new WritableStream<Uint8Array>({ write: (c) => void kept.push(c) });
  assert.equal(await mem.writeVolatileToAsync(0x400, sink, 0x1800), 0x1800);
  assert.equal(sink.locked, false);
  mem.getSlice(0x400, 0x1800).fill(0);
  assert.deepEqual(kept[0], pattern(0x1800, 2), "the sink kept a copy, not a view of guest memory");
  assert.notEqual(kept[0].buffer, mem.regions()[0].views.u8.buffer);

  const plain = new ReadableStream<Uint8Array>({ pull: (c) => c.enqueue(new Uint8Array(8)) });
  const e = await mem.readVolatileFromAsync(0, plain, 8).then(() => undefined, (x) => x);
  assert.ok(e instanceof InvalidArgumentError, String(e));
  assert.equal(e.argument, "source");
  assert.match(e.message, /must be a byte stream/);
  assert.equal(plain.locked, false, "a refused stream is left as it was");
});

Deno.test("streams: for await over readableStream yields the range in chunks of chunkSize, the last one short", async () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const data = pattern(0x2800, 4);
  mem.writeSlice(data, 0x100);
  const sizes: number[] = [];
  const out = new Uint8Array(0x2800);
  let at = 0;
  for await (const chunk of mem.readableStream(0x100, 0x2800, { chunkSize: 0x1000 })) {
    sizes.push(chunk.length);
    out.set(chunk, at);
    at += chunk.length;
  }
  assert.deepEqual(sizes, [0x1000, 0x1000, 0x800]);
  assert.deepEqual(out, data);
});
