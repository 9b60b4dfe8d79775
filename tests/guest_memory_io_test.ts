// I/O between guest memory and real files, descriptors and arrays, plus file-backed round trips.
import assert from "node:assert/strict";
import { FileOffset, GuestIOError, GuestMemoryMmap, InvalidArgumentError, MmapRegion, SyscallError } from "../mod.ts";
import { aliasedMemory, expectError, expectPartial, expectUnbacked } from "./fixtures/guest_assert.ts";

function pattern(n: number, seed = 3): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 13 + seed) & 0xff;
  return out;
}

/** A temp file holding `data`; removed when disposed. */
function tempFile(data: Uint8Array): { path: string } & Disposable {
  const path = Deno.makeTempFileSync({ prefix: "gmem-io-" });
  Deno.writeFileSync(path, data);
  return { path, [Symbol.dispose]: () => Deno.removeSync(path) };
}

Deno.test("guest io: readVolatileFrom a Deno.FsFile fills a range across two regions and advances the file", () => {
  const data = pattern(0x300);
  using tmp = tempFile(data);
  using file = Deno.openSync(tmp.path, { read: true });
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x1000, 0x1000]]);
  assert.equal(mem.readVolatileFrom(0xf00, file, 0x200), 0x200);
  const back = new Uint8Array(0x200);
  mem.readSlice(back, 0xf00);
  assert.deepEqual(back, data.subarray(0, 0x200));
  assert.equal(file.seekSync(0, Deno.SeekMode.Current), 0x200);
  assert.equal(mem.readU8(0xeff), 0, "nothing before the range");
  assert.equal(mem.readU8(0x1100), 0, "nothing after the range");
});

Deno.test("guest io: readVolatileFrom stops at end of file and the exact variant reports PartialBuffer", () => {
  using tmp = tempFile(pattern(10));
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  {
    using file = Deno.openSync(tmp.path, { read: true });
    assert.equal(mem.readVolatileFrom(0x100, file, 100), 10);
    assert.equal(mem.readVolatileFrom(0x200, file, 100), 0, "at end of file");
  }
  using file = Deno.openSync(tmp.path, { read: true });
  const e = expectPartial(
    () => mem.readExactVolatileFrom(0x400, file, 100),
    "GuestMemoryMmap.readExactVolatileFrom",
    100,
    10,
    ["0x400", "only 10 of 100"],
  );
  assert.equal(e.addr, 0x400n);
  assert.equal(mem.readU8(0x409), pattern(10)[9], "the bytes read stay written");
});

Deno.test("guest io: writeVolatileTo a Deno.FsFile writes a cross-region range that reads back from disk", () => {
  const path = Deno.makeTempFileSync({ prefix: "gmem-io-" });
  try {
    using mem = GuestMemoryMmap.fromRanges([[0x10000, 0x1000], [0x11000, 0x1000]]);
    const data = pattern(0x400, 9);
    mem.writeSlice(data, 0x10e00);
    {
      using file = Deno.openSync(path, { write: true });
      assert.equal(mem.writeVolatileTo(0x10e00, file, 0x400), 0x400);
      mem.writeAllVolatileTo(0x10e00, file, 0x10);
    }
    const disk = Deno.readFileSync(path);
    assert.equal(disk.length, 0x410);
    assert.deepEqual(disk.subarray(0, 0x400), data);
    assert.deepEqual(disk.subarray(0x400), data.subarray(0, 0x10));
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("guest io: a raw descriptor works as source and sink, across region boundaries", () => {
  using endpoint = MmapRegion.memfd(0x2000, { name: "io-endpoint" });
  const fd = endpoint.fd!;
  const source = pattern(0x800, 5);
  endpoint.write(source, 0);
  using mem = GuestMemoryMmap.fromRanges([[0, 0x800], [0x800, 0x800]]);
  // The descriptor's file position starts at 0: the read takes bytes [0, 0x400) of the memfd.
  assert.equal(mem.readVolatileFrom(0x600, fd, 0x400), 0x400);
  const got = new Uint8Array(0x400);
  mem.readSlice(got, 0x600);
  assert.deepEqual(got, source.subarray(0, 0x400));
  // The write continues at position 0x400 of the memfd.
  mem.writeSlice(pattern(0x300, 77), 0x700);
  assert.equal(mem.writeVolatileTo(0x700, fd, 0x300), 0x300);
  assert.deepEqual(endpoint.bytes(0x400, 0x300), pattern(0x300, 77));
  mem.readExactVolatileFrom(0, fd, 0x100);
  assert.deepEqual(endpoint.bytes(0x700, 0x100), new Uint8Array(0x100).map((_, i) => mem.readU8(i)));
});

Deno.test("guest io: Uint8Array sources and sinks copy min(count, array) bytes across regions", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x100], [0x100, 0x100]]);
  const src = pattern(0x40, 1);
  assert.equal(mem.readVolatileFrom(0xe0, src, 0x40), 0x40);
  assert.equal(mem.readU8(0xe0), src[0]);
  assert.equal(mem.readU8(0x11f), src[0x3f]);
  assert.equal(mem.readVolatileFrom(0, src, 0x100), 0x40, "the array ends first");
  assert.equal(mem.readVolatileFrom(0, src, 0x10), 0x10, "count ends first");

  const sink = new Uint8Array(0x40);
  assert.equal(mem.writeVolatileTo(0xe0, sink, 0x40), 0x40);
  assert.deepEqual(sink, src);
  const small = new Uint8Array(8);
  assert.equal(mem.writeVolatileTo(0xe0, small, 0x40), 8, "the sink ends first");
  assert.deepEqual(small, src.subarray(0, 8));
});

Deno.test("guest io: short Uint8Array sources and sinks make the exact variants throw PartialBuffer", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  expectPartial(
    () => mem.readExactVolatileFrom(0x10, new Uint8Array(5).fill(1), 16),
    "GuestMemoryMmap.readExactVolatileFrom",
    16,
    5,
    ["only 5 of 16", "0x10", "source ended early"],
  );
  assert.equal(mem.readU8(0x14), 1);
  assert.equal(mem.readU8(0x15), 0);
  expectPartial(
    () => mem.writeAllVolatileTo(0x10, new Uint8Array(3), 16),
    "GuestMemoryMmap.writeAllVolatileTo",
    16,
    3,
    ["only 3 of 16"],
  );
});

Deno.test("guest io: a hole after the first fragment gives a partial count; the exact variants say PartialBuffer", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  assert.equal(mem.readVolatileFrom(0xff0, pattern(0x20), 0x20), 0x10);
  assert.equal(mem.writeVolatileTo(0xff0, new Uint8Array(0x20), 0x20), 0x10);
  expectPartial(
    () => mem.readExactVolatileFrom(0xff0, pattern(0x20), 0x20),
    "GuestMemoryMmap.readExactVolatileFrom",
    0x20,
    0x10,
    ["0xff0"],
  );
  expectPartial(
    () => mem.writeAllVolatileTo(0xff0, new Uint8Array(0x20), 0x20),
    "GuestMemoryMmap.writeAllVolatileTo",
    0x20,
    0x10,
  );
});

Deno.test("guest io: I/O starting in a hole is InvalidGuestAddress before the source is touched", () => {
  using tmp = tempFile(pattern(16));
  using file = Deno.openSync(tmp.path, { read: true });
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
  for (
    const [op, fn] of [
      ["readVolatileFrom", () => mem.readVolatileFrom(0x2000, file, 4)],
      ["readExactVolatileFrom", () => mem.readExactVolatileFrom(0x2000, file, 4)],
      ["writeVolatileTo", () => mem.writeVolatileTo(0x2000, new Uint8Array(4), 4)],
      ["writeAllVolatileTo", () => mem.writeAllVolatileTo(0x2000, new Uint8Array(4), 4)],
    ] as const
  ) {
    expectUnbacked(fn, `GuestMemoryMmap.${op}`, 0x2000n);
  }
  assert.equal(file.seekSync(0, Deno.SeekMode.Current), 0);
});

Deno.test("guest io: a closed descriptor is IOError carrying the EBADF system call error", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const region = MmapRegion.memfd(0x1000);
  const fd = region.fd!;
  region.close();
  const e = expectError(() => mem.readVolatileFrom(0, fd, 16), GuestIOError, {
    kind: "IOError",
    op: "GuestMemoryMmap.readVolatileFrom",
    mentions: ["EBADF"],
  });
  assert.ok(e.cause instanceof SyscallError);
  assert.equal(e.cause.errnoName, "EBADF");
  assert.equal(e.cause.syscall, "readv");
  const w = expectError(() => mem.writeVolatileTo(0, fd, 16), GuestIOError, {
    kind: "IOError",
    op: "GuestMemoryMmap.writeVolatileTo",
  });
  assert.equal((w.cause as SyscallError).syscall, "writev");
});

Deno.test("guest io: bad sources and a file opened the wrong way are InvalidArgument", () => {
  using tmp = tempFile(pattern(16));
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const neg = expectError(() => mem.readVolatileFrom(0, -1, 4), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestMemoryMmap.readVolatileFrom",
  });
  assert.equal(neg.argument, "fd");
  const obj = expectError(
    () => mem.writeVolatileTo(0, {} as unknown as Uint8Array, 4),
    InvalidArgumentError,
    { kind: "InvalidArgument", op: "GuestMemoryMmap.writeVolatileTo" },
  );
  assert.equal(obj.argument, "source");
  using readOnly = Deno.openSync(tmp.path, { read: true });
  const ro = expectError(() => mem.writeVolatileTo(0, readOnly, 4), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestMemoryMmap.writeVolatileTo",
    mentions: ["not open for writing"],
  });
  assert.equal(ro.argument, "file");
  const count = expectError(() => mem.readVolatileFrom(0, new Uint8Array(4), -1), InvalidArgumentError, {
    kind: "InvalidArgument",
    op: "GuestMemoryMmap.readVolatileFrom",
  });
  assert.equal(count.argument, "count");
});

Deno.test("guest io: a file-backed region writes through to the file and shows file writes", () => {
  const path = Deno.makeTempFileSync({ prefix: "gmem-backed-" });
  try {
    Deno.truncateSync(path, 0x3000);
    using mem = GuestMemoryMmap.fromRangesWithFiles([
      [0, 0x1000, undefined],
      [0x1000, 0x2000, FileOffset.fromPath(path, 0x1000)],
    ]);
    assert.equal(mem.regions()[1].fileOffset?.start, 0x1000n);
    const data = pattern(0x100, 21);
    mem.writeSlice(data, 0xf80); // half anonymous, half file-backed
    mem.writeU64(0x2ff8, 0x1122334455667788n);
    const disk = Deno.readFileSync(path);
    assert.deepEqual(disk.subarray(0x1000, 0x1080), data.subarray(0x80));
    assert.ok(disk.subarray(0, 0x1000).every((b) => b === 0), "the anonymous half never reaches the file");
    assert.deepEqual([...disk.subarray(0x2ff8, 0x3000)], [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);

    using file = Deno.openSync(path, { write: true });
    file.seekSync(0x2000, Deno.SeekMode.Start);
    file.writeSync(new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    assert.equal(
      mem.readU32BE(0x2000),
      0xdeadbeef,
      "guest 0x2000 is file offset 0x2000 (region base 0x1000 + start 0x1000)",
    );
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("guest io: two guest memories over one memfd share every byte", () => {
  using m = aliasedMemory(0x4000, 0x2000);
  using other = GuestMemoryMmap.fromRangesWithFiles([[0x100000, 0x2000, m.ram.fileOffset]]);
  const data = pattern(0x1800, 99);
  m.mem.writeSlice(data, 0x4400);
  const back = new Uint8Array(0x1800);
  other.readSlice(back, 0x100400);
  assert.deepEqual(back, data);
  assert.deepEqual(m.alias.subarray(0x400, 0x1c00), data);
  other.writeU32(0x101ffc, 0x0badf00d);
  assert.equal(m.mem.readU32(0x5ffc), 0x0badf00d);
  assert.notEqual(other.getHostAddress(0x100000), m.mem.getHostAddress(0x4000));
});
