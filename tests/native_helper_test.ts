import assert from "node:assert/strict";
import { MmapRegion } from "../mod.ts";
import { native } from "../src/ffi/native.ts";
import { errnoName } from "../src/ffi/errno.ts";

Deno.test("native: memcpy copies between two host mappings", () => {
  using a = MmapRegion.anonymous(8192);
  using b = MmapRegion.anonymous(8192);
  a.bytes().forEach((_, i, arr) => (arr[i] = i * 7));
  native().memcpy(b.hostAddress + 100n, a.hostAddress + 5n, 4000n);
  const expected = a.bytes(5, 4000);
  assert.deepEqual(b.bytes(100, 4000), expected);
  assert.equal(b.bytes(99, 1)[0], 0);
  assert.equal(b.bytes(4100, 1)[0], 0);
});

Deno.test("native: a scatter/gather copy moves every (dst, src, len) triple in one call", () => {
  using src = MmapRegion.anonymous(4096);
  using dst = MmapRegion.anonymous(4096);
  src.write(new TextEncoder().encode("abcdefghij"), 0);
  const ops = new BigUint64Array([
    dst.hostAddress + 1000n,
    src.hostAddress + 0n,
    3n,
    dst.hostAddress + 10n,
    src.hostAddress + 3n,
    4n,
    dst.hostAddress + 2000n,
    src.hostAddress + 7n,
    3n,
  ]);
  assert.equal(native().copyVec(ops, 3), 10n);
  const text = (o: number, n: number) => new TextDecoder().decode(dst.bytes(o, n));
  assert.equal(text(1000, 3), "abc");
  assert.equal(text(10, 4), "defg");
  assert.equal(text(2000, 3), "hij");
});

Deno.test("native: memset fills a host range", () => {
  using r = MmapRegion.anonymous(4096);
  native().memset(r.hostAddress + 10n, 0xee, 20n);
  assert.deepEqual([...r.bytes(9, 22)], [0, ...new Array(20).fill(0xee), 0]);
});

Deno.test("native: failures come back as -errno with names and C library text", () => {
  const n = native();
  assert.equal(n.close(987654), -9);
  assert.equal(errnoName(9), "EBADF");
  assert.equal(n.strerror(9), "Bad file descriptor");
  assert.equal(n.unmap(4097n, 4096n), -22);
  assert.equal(errnoName(22), "EINVAL");
  assert.equal(errnoName(4242), "E4242");
  assert.equal(n.pageSize, 4096);
});
