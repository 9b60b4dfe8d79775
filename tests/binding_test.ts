/**
 * The runtime-neutral binding surface that replaced direct Deno calls above `src/ffi/`: pointers
 * and pointer reads, file objects known by their `fd`, the view-size limit. Runs unchanged on Deno
 * and Bun; the expectations come from the binding itself, never from asking which runtime it is.
 * @module
 */

import assert from "node:assert/strict";
import { open } from "node:fs/promises";
import { FileOffset, GuestMemoryMmap, MmapRegion, NativeLibraryError } from "../mod.ts";
import { fdOf, maxViewBytes, statFd } from "../src/ffi/binding_common.ts";
import { native } from "../src/ffi/native.ts";

Deno.test("binding: a pointer round-trips to its address and its view reads the memory there", () => {
  const n = native();
  using r = MmapRegion.anonymous(4096);
  r.dataView(8, 16).setBigUint64(0, 0x8877665544332211n, true);
  r.dataView(8, 16).setFloat64(8, -2.5, true);
  const addr = r.hostAddress + 8n;
  assert.equal(n.addressOfPointer(n.pointer(addr)), addr);
  assert.equal(n.pointer(0n), null);
  const v = n.pointerView(addr);
  assert.deepEqual(
    [v.getUint8(), v.getInt8(7), v.getUint16(0), v.getInt16(6), v.getUint32(), v.getInt32(4)],
    [0x11, -0x78, 0x2211, -0x7789, 0x44332211, -0x778899ab],
  );
  assert.equal(v.getBigUint64(), 0x8877665544332211n);
  assert.equal(v.getBigInt64(), 0x8877665544332211n - (1n << 64n));
  assert.equal(v.getFloat64(8), -2.5);
  assert.equal(n.addressOf(r.bytes(8, 4)), addr, "a view over the mapping has the mapping's address");
});

Deno.test("binding: VolatileSlice.view and pointer agree with the slice's host address", () => {
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
  mem.writeU32(0x1010, 0xcafebabe);
  const s = mem.getSlice(0x1010, 4);
  assert.equal(s.view.getUint32(), 0xcafebabe);
  assert.equal(native().addressOfPointer(s.pointer), s.hostAddress);
});

Deno.test("binding: a node:fs FileHandle is a file object on every runtime: stat, I/O and mapping", async () => {
  const n = native();
  const path = Deno.makeTempFileSync({ prefix: "gmem-binding-" });
  try {
    Deno.writeFileSync(path, new Uint8Array(8192).fill(3));
    await using handle = await open(path, "r+");
    assert.equal(n.fileKind(handle), "FileHandle");
    assert.equal(n.fileKind({ fd: -1 }), undefined);
    assert.equal(n.fileKind(7), undefined, "a bare descriptor is not a file object");
    const id = n.statFile(handle);
    const st = new BigUint64Array(5);
    assert.equal(n.fstat(handle.fd, st), 0);
    assert.deepEqual(id, { ok: true, dev: st[0], ino: st[1] });
    using mem = GuestMemoryMmap.fromRanges([[0, 0x4000]]);
    assert.equal(mem.readVolatileFrom(0x100, handle, 16), 16);
    assert.equal(mem.readU8(0x10f), 3);
    const fo = FileOffset.fromFile(handle);
    assert.equal(fo.toString(), "FileHandle@0x0");
    using mapped = MmapRegion.fromFile(fo, 8192);
    assert.equal(mapped.bytes(4000, 1)[0], 3);
    mapped.write(new Uint8Array([9]), 0);
    assert.equal(Deno.readFileSync(path)[0], 9, "the shared mapping reaches the file");
  } finally {
    Deno.removeSync(path);
  }
});

Deno.test("binding: the view-size limit is the runtime's cap unless a smaller page multiple is asked for", () => {
  const cap = 2 ** 32;
  assert.equal(maxViewBytes(cap, 4096, undefined, "lib"), cap);
  assert.equal(maxViewBytes(cap, 4096, "", "lib"), cap);
  assert.equal(maxViewBytes(cap, 4096, "65536", "lib"), 65536);
  for (const bad of ["1000", "0", "-4096", "4096.5", "lots", String(2 * cap)]) {
    let thrown: unknown;
    try {
      maxViewBytes(cap, 4096, bad, "/x/libgmem.so");
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown instanceof NativeLibraryError, `${bad}: ${thrown}`);
    assert.equal(thrown.kind, "NativeLibrary");
    assert.equal(
      thrown.message,
      `load: cannot load the native helper /x/libgmem.so: GMEM_MAX_VIEW_BYTES=${
        JSON.stringify(bad)
      } must be a positive multiple ` +
        "of the page size (4096) of at most 4294967296",
    );
  }
  const n = native();
  assert.ok(n.maxViewBytes === Number.MAX_SAFE_INTEGER || n.maxViewBytes % n.pageSize === 0, String(n.maxViewBytes));
});

Deno.test("binding: fdOf accepts only objects with a usable descriptor; statFd names a bad one", () => {
  assert.deepEqual([fdOf({ fd: 3 }), fdOf({ fd: -1 }), fdOf({ fd: 1.5 }), fdOf({ fd: "3" }), fdOf(null), fdOf(3)], [
    3,
    -1,
    -1,
    -1,
    -1,
    -1,
  ]);
  const bad = statFd((fd, out) => native().fstat(fd, out), 0x7ffffff0);
  assert.deepEqual(bad, { ok: false, reason: "cannot be used: fstat(fd 2147483632) failed with EBADF" });
});
