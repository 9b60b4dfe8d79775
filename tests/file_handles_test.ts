/**
 * A file object is used through its own descriptor, never through another descriptor of the same
 * file: I/O happens at that handle's position (and moves only it), its access mode is the one
 * checked, and a read-only handle never yields a writable mapping. Each test opens two handles of
 * one file at different positions.
 * @module
 */

import assert from "node:assert/strict";
import { FileOffset, GuestMemoryMmap, MmapRegion, PROT_READ, PROT_WRITE } from "../mod.ts";
import { refused } from "./fixtures/guest_assert.ts";

const PAGE = 4096;

function pattern(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + 1) & 0xff;
  return out;
}

/** A temp file holding `data`; removed when disposed. */
function tempFile(data: Uint8Array): { path: string } & Disposable {
  const path = Deno.makeTempFileSync({ prefix: "gmem-handles-" });
  Deno.writeFileSync(path, data);
  return { path, [Symbol.dispose]: () => Deno.removeSync(path) };
}

function position(file: Deno.FsFile): number {
  return file.seekSync(0, Deno.SeekMode.Current);
}

Deno.test("file handles: readVolatileFrom reads at the given handle's position and leaves the other handle where it was", () => {
  const data = pattern(2 * PAGE);
  using tmp = tempFile(data);
  using first = Deno.openSync(tmp.path, { read: true });
  using second = Deno.openSync(tmp.path, { read: true });
  first.seekSync(0x100, Deno.SeekMode.Start);
  second.seekSync(0x800, Deno.SeekMode.Start);
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x1000, 0x1000]]);
  assert.equal(mem.readVolatileFrom(0xff8, second, 16), 16);
  const got = new Uint8Array(16);
  mem.readSlice(got, 0xff8);
  assert.deepEqual(got, data.subarray(0x800, 0x810));
  assert.deepEqual([position(first), position(second)], [0x100, 0x810]);
  mem.readExactVolatileFrom(0, first, 8);
  const head = new Uint8Array(8);
  mem.readSlice(head, 0);
  assert.deepEqual(head, data.subarray(0x100, 0x108));
  assert.deepEqual([position(first), position(second)], [0x108, 0x810]);
});

Deno.test("file handles: writeVolatileTo writes at the given handle's offset; the other handle's offset and bytes stay", () => {
  using tmp = tempFile(new Uint8Array(2 * PAGE));
  using first = Deno.openSync(tmp.path, { read: true, write: true });
  using second = Deno.openSync(tmp.path, { read: true, write: true });
  first.seekSync(0x100, Deno.SeekMode.Start);
  second.seekSync(0x800, Deno.SeekMode.Start);
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000], [0x1000, 0x1000]]);
  mem.writeSlice(pattern(32), 0xff0);
  assert.equal(mem.writeVolatileTo(0xff0, second, 32), 32);
  mem.writeAllVolatileTo(0xff0, second, 4);
  const disk = Deno.readFileSync(tmp.path);
  assert.deepEqual(disk.subarray(0x800, 0x820), pattern(32));
  assert.deepEqual(disk.subarray(0x820, 0x824), pattern(4));
  assert.ok(disk.subarray(0x100, 0x140).every((b) => b === 0), "nothing at the first handle's offset");
  assert.deepEqual([position(first), position(second)], [0x100, 0x824]);
});

Deno.test("file handles: a read-only handle is not written through while a read-write handle of the file is open", () => {
  using tmp = tempFile(new Uint8Array(PAGE));
  using readWrite = Deno.openSync(tmp.path, { read: true, write: true });
  using readOnly = Deno.openSync(tmp.path, { read: true });
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  mem.writeSlice(pattern(16), 0);
  const e = refused(() => mem.writeVolatileTo(0, readOnly, 16));
  assert.deepEqual([e.op, e.argument], ["GuestMemoryMmap.writeVolatileTo", "file"]);
  assert.match(e.message, /^GuestMemoryMmap\.writeVolatileTo: file is not open for writing$/);
  assert.ok(Deno.readFileSync(tmp.path).every((b) => b === 0));
  assert.deepEqual([position(readWrite), position(readOnly)], [0, 0]);
});

Deno.test("file handles: a read-only handle never maps writable, even while a read-write handle of the file is open", () => {
  using tmp = tempFile(pattern(2 * PAGE));
  using readWrite = Deno.openSync(tmp.path, { read: true, write: true });
  using readOnly = Deno.openSync(tmp.path, { read: true });
  readWrite.seekSync(0x10, Deno.SeekMode.Start);
  readOnly.seekSync(0x20, Deno.SeekMode.Start);
  const e = refused(() => MmapRegion.fromFile(FileOffset.fromFile(readOnly), 2 * PAGE));
  assert.deepEqual([e.op, e.argument], ["MmapRegion.fromFile", "fileOffset.file"]);
  assert.match(e.message, /^MmapRegion\.fromFile: fileOffset\.file was not opened read-write/);
  using r = MmapRegion.fromFile(FileOffset.fromFile(readOnly), 2 * PAGE, { prot: PROT_READ });
  assert.deepEqual(r.unsafeBytes(PAGE, 4), pattern(2 * PAGE).subarray(PAGE, PAGE + 4));
  // The kernel agrees: the mapping came from the read-only descriptor, so it cannot be made writable.
  assert.throws(() => r.protect(PROT_READ | PROT_WRITE), /mprotect\(.*\) failed: EACCES/);
  assert.deepEqual([position(readWrite), position(readOnly)], [0x10, 0x20], "both positions are put back");
});

Deno.test("file handles: a read-write handle opened after a read-only one maps shared and writable through its own descriptor", () => {
  using tmp = tempFile(new Uint8Array(PAGE));
  using readOnly = Deno.openSync(tmp.path, { read: true });
  using readWrite = Deno.openSync(tmp.path, { read: true, write: true });
  readWrite.seekSync(0x30, Deno.SeekMode.Start);
  using r = MmapRegion.fromFile(FileOffset.fromFile(readWrite), PAGE);
  r.write(new Uint8Array([1, 2, 3]), 0x40);
  assert.deepEqual([...Deno.readFileSync(tmp.path).subarray(0x40, 0x43)], [1, 2, 3]);
  assert.deepEqual([position(readOnly), position(readWrite)], [0, 0x30]);
});
