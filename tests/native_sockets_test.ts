/**
 * The native helper's pieces for vhost-user: Unix sockets that carry descriptors, eventfds, epoll
 * waits that do not block the event loop, and positioned vectored I/O.
 * @module
 */

import assert from "node:assert/strict";
import { FileOffset, MmapRegion } from "../mod.ts";
import { native } from "../src/ffi/native.ts";

const EAGAIN = 11, EPOLL_CTL_ADD = 1, EPOLLIN = 1;

Deno.test("native sockets: a memfd sent with SCM_RIGHTS arrives as a new descriptor of the same pages", () => {
  const n = native();
  const pair = new Int32Array(2);
  assert.equal(n.socketPair(pair), 0);
  using ram = MmapRegion.memfd(4096, { name: "sent" });
  ram.write(new TextEncoder().encode("pages"), 0);
  const payload = new TextEncoder().encode("hello");
  assert.equal(n.sendFds(pair[0], payload, new Int32Array([ram.fd!]), 1000), 5n);
  const buf = new Uint8Array(16), fds = new Int32Array(4);
  assert.equal(n.recvFds(pair[1], buf, fds), 5n);
  assert.equal(new TextDecoder().decode(buf.subarray(0, 5)), "hello");
  assert.ok(fds[0] >= 0 && fds[0] !== ram.fd);
  assert.deepEqual([...fds.subarray(1)], [-1, -1, -1]);
  const received = fds[0];
  const fo = MmapRegion.fromFile(FileOffset.fromFd(received), 4096);
  assert.equal(new TextDecoder().decode(fo.bytes(0, 5)), "pages");
  fo.close();
  assert.equal(n.recvFds(pair[1], buf, fds), BigInt(-EAGAIN), "nothing more: EAGAIN, not a wait");
  for (const fd of [received, pair[0], pair[1]]) assert.equal(n.close(fd), 0);
});

Deno.test("native sockets: descriptors beyond the receiver's room are closed, not leaked", () => {
  const n = native();
  const before = n.countFds();
  const pair = new Int32Array(2);
  n.socketPair(pair);
  const efds = [n.eventfd(0), n.eventfd(0), n.eventfd(0)];
  n.sendFds(pair[0], new Uint8Array([1]), new Int32Array(efds), 1000);
  for (const fd of efds) n.close(fd);
  const fds = new Int32Array(1);
  assert.equal(n.recvFds(pair[1], new Uint8Array(1), fds), 1n);
  assert.ok(fds[0] >= 0);
  n.close(fds[0]);
  n.close(pair[0]);
  n.close(pair[1]);
  assert.equal(n.countFds(), before);
});

Deno.test("native sockets: a listening socket accepts a connection made by path, and end of stream reads 0", () => {
  const n = native();
  const dir = Deno.makeTempDirSync();
  try {
    const path = new TextEncoder().encode(`${dir}/s.sock\0`);
    const l = n.unixListen(path, 4);
    assert.ok(l >= 0);
    assert.equal(n.unixAccept(l), -EAGAIN);
    const c = n.unixConnect(path);
    assert.ok(c >= 0);
    const s = n.unixAccept(l);
    assert.ok(s >= 0);
    n.sendFds(c, new Uint8Array([7, 8]), new Int32Array(0), 1000);
    const buf = new Uint8Array(4);
    assert.equal(n.recvFds(s, buf, new Int32Array(1)), 2n);
    assert.deepEqual([...buf.subarray(0, 2)], [7, 8]);
    n.close(c);
    assert.equal(n.recvFds(s, buf, new Int32Array(1)), 0n);
    n.close(s);
    n.close(l);
    assert.equal(n.unixConnect(new TextEncoder().encode(`${dir}/none.sock\0`)), -2); // ENOENT
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("native sockets: an eventfd counts writes until read, then reads EAGAIN", () => {
  const n = native();
  const fd = n.eventfd(0);
  assert.equal(n.eventfdRead(fd), BigInt(-EAGAIN));
  n.eventfdWrite(fd, 2n);
  n.eventfdWrite(fd, 3n);
  assert.equal(n.eventfdRead(fd), 5n);
  assert.equal(n.eventfdRead(fd), BigInt(-EAGAIN));
  n.close(fd);
});

Deno.test("native sockets: an epoll wait runs off the event loop and reports the descriptor that became readable", async () => {
  const n = native();
  const ep = n.epollCreate();
  const fd = n.eventfd(0);
  assert.equal(n.epollCtl(ep, EPOLL_CTL_ADD, fd, EPOLLIN), 0);
  const out = new Int32Array(8);
  const waiting = n.epollWaitAsync(ep, out, 5000);
  let timerRan = false;
  await new Promise((r) => setTimeout(r, 10)).then(() => (timerRan = true));
  assert.equal(timerRan, true, "timers ran while the wait was pending");
  n.eventfdWrite(fd, 1n);
  assert.equal(await waiting, 1);
  assert.deepEqual([out[0], out[1] & EPOLLIN], [fd, EPOLLIN]);
  assert.equal(n.epollWait(ep, out, 0), 1, "still readable until read");
  n.eventfdRead(fd);
  assert.equal(n.epollWait(ep, out, 0), 0);
  n.epollRelease(ep);
  n.close(fd);
  n.close(ep);
});

Deno.test("native sockets: preadv and pwritev move one vector at a file offset without moving the position", () => {
  const n = native();
  const path = Deno.makeTempFileSync();
  try {
    Deno.writeFileSync(path, new TextEncoder().encode("0123456789abcdef"));
    using buf = MmapRegion.anonymous(4096);
    const file = n.open(new TextEncoder().encode(`${path}\0`), true);
    const pairs = new BigUint64Array([buf.hostAddress, 3n, buf.hostAddress + 100n, 2n]);
    assert.equal(n.preadv(file, pairs, 2, 10n), 5n);
    assert.equal(new TextDecoder().decode(buf.bytes(0, 3)) + new TextDecoder().decode(buf.bytes(100, 2)), "abcde");
    buf.write(new TextEncoder().encode("XY"), 200);
    assert.equal(n.pwritev(file, new BigUint64Array([buf.hostAddress + 200n, 2n]), 1, 4n), 2n);
    assert.equal(n.fdatasync(file), 0);
    assert.equal(n.preadv(file, pairs, 2, 16n), 0n, "at the end: 0");
    n.close(file);
    assert.equal(new TextDecoder().decode(Deno.readFileSync(path)), "0123XY6789abcdef");
  } finally {
    Deno.removeSync(path);
  }
});
