import assert from "node:assert/strict";
import { GuestMemoryMmap, Permissions } from "../mod.ts";
import {
  CannotResolveError,
  decodeVhostIotlbMsg,
  encodeVhostIotlbMsg,
  IommuMemory,
  Iotlb,
  IotlbIommu,
  VHOST_IOTLB_MSG_SIZE,
  VHOST_USER_HEADER_SIZE,
  VhostIotlbChannel,
  type VhostIotlbMsg,
  VhostIotlbType,
  vhostIotlbUpdate,
  VhostUserRequest,
} from "../iommu.ts";

const MSG = VHOST_USER_HEADER_SIZE + VHOST_IOTLB_MSG_SIZE;
const IOVA_BASE = 0x1_0000_0000n;

/** Reads whole 44-byte messages from `conn` until it closes. */
async function* messages(conn: Deno.Conn): AsyncGenerator<VhostIotlbMsg> {
  const buf = new Uint8Array(MSG);
  for (;;) {
    let got = 0;
    while (got < MSG) {
      const n = await conn.read(buf.subarray(got));
      if (n === null) return;
      got += n;
    }
    yield decodeVhostIotlbMsg(buf).msg;
  }
}

async function send(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.length) done += await conn.write(bytes.subarray(done));
}

interface FrontEnd {
  /** Misses seen, as "iova perm". */
  seen: string[];
  backend: Deno.Conn;
  frontend: Deno.Conn;
  served: Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * A front-end on the other end of a real socket: answers each miss after `delayMs` with an
 * update of the 4 KiB page containing it, mapped to guest physical `iova - IOVA_BASE`, unless the
 * page is listed in `ignore`.
 */
async function frontEnd(delayMs: number, ignore: bigint[] = []): Promise<FrontEnd> {
  // vhost-user runs over a Unix socket; the protocol is a plain byte stream, so loopback TCP (which
  // the test task's scoped --allow-net=127.0.0.1 permits) exercises the same code.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const backend = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const frontend = await accepted;
  listener.close();
  const seen: string[] = [];
  const served = (async () => {
    for await (const m of messages(frontend)) {
      assert.equal(m.type, VhostIotlbType.Miss);
      seen.push(`${m.iova.toString(16)} ${m.perm}`);
      const page = m.iova & ~0xfffn;
      if (ignore.includes(page)) continue;
      await new Promise((r) => setTimeout(r, delayMs));
      await send(frontend, vhostIotlbUpdate(page, page - IOVA_BASE, 0x1000, Permissions.ReadWrite));
    }
  })().catch((e) => {
    // A test closing the front-end's end on purpose interrupts the read in flight.
    if (!(e instanceof Deno.errors.Interrupted || e instanceof Deno.errors.BadResource)) throw e;
  });
  return {
    seen,
    backend,
    frontend,
    served,
    async [Symbol.asyncDispose]() {
      try {
        backend.close();
      } catch { /* already closed by the test */ }
      await served.catch(() => {});
      try {
        frontend.close();
      } catch { /* already closed */ }
    },
  };
}

Deno.test("vhost iotlb: a message encodes to the kernel's 32-byte layout behind a 12-byte header", () => {
  const bytes = encodeVhostIotlbMsg(VhostUserRequest.BackendIotlbMsg, {
    iova: 0x1122334455667788n,
    size: 0x1000n,
    uaddr: 0xffff_0000_0000_1000n,
    perm: Permissions.Write,
    type: VhostIotlbType.AccessFail,
  });
  assert.equal(bytes.length, 44);
  const dv = new DataView(bytes.buffer);
  assert.equal(dv.getUint32(0, true), 1);
  assert.equal(dv.getUint32(4, true), 1);
  assert.equal(dv.getUint32(8, true), 32);
  assert.equal(dv.getBigUint64(12, true), 0x1122334455667788n);
  assert.equal(dv.getBigUint64(20, true), 0x1000n);
  assert.equal(dv.getBigUint64(28, true), 0xffff_0000_0000_1000n);
  assert.deepEqual([...bytes.subarray(36)], [2, 4, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(decodeVhostIotlbMsg(bytes).msg, {
    iova: 0x1122334455667788n,
    size: 0x1000n,
    uaddr: 0xffff_0000_0000_1000n,
    perm: 2,
    type: 4,
  });
  const badSize = bytes.slice();
  badSize[8] = 31;
  assert.throws(() => decodeVhostIotlbMsg(badSize), /size must be 32/);
  assert.throws(() => decodeVhostIotlbMsg(bytes.subarray(0, 43)), /must hold 44 bytes/);
});

Deno.test("iommu async: misses are answered over a socket; duplicate misses in flight are asked once", async () => {
  await using fe = await frontEnd(20);
  using phys = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  phys.writeU32(0x2010, 0xabcd);
  const iotlb = new Iotlb();
  const channel = new VhostIotlbChannel(fe.backend, iotlb);
  // The answer comes in ~20 ms; the timeout only bounds a broken run, so it is long enough for any load.
  const iommu = new IotlbIommu(iotlb, { asyncMissHandler: channel.missHandler, timeoutMs: 60_000 });
  const mem = new IommuMemory(phys, iommu);
  const running = channel.run().catch((e) => e);

  let ticked = false;
  setTimeout(() => (ticked = true), 0);
  const [a, b, c, d] = await Promise.all([
    mem.getSlicesAsync(IOVA_BASE + 0x2010n, 4, Permissions.Read),
    mem.getSlicesAsync(IOVA_BASE + 0x2010n, 4, Permissions.Read), // the same miss again
    mem.getSlicesAsync(IOVA_BASE + 0x2012n, 2, Permissions.Read), // inside the range already asked for
    mem.getSlicesAsync(IOVA_BASE + 0x5000n, 8, Permissions.Write),
  ]);
  assert.ok(ticked, "the event loop kept running while misses were outstanding");
  assert.equal(a[0].readU32(0), 0xabcd);
  assert.equal(b[0].hostAddress, phys.getHostAddress(0x2010));
  assert.equal(c[0].hostAddress, phys.getHostAddress(0x2012));
  assert.equal(d[0].hostAddress, phys.getHostAddress(0x5000));
  assert.deepEqual(fe.seen.sort(), ["100002010 1", "100005000 2"]);
  assert.equal(iommu.counters.asyncRequests, 2);
  assert.equal(iommu.counters.mergedRequests, 2);
  assert.equal(iommu.pendingRequests, 0);
  assert.equal(channel.messagesApplied, 2);
  // Now resident: the synchronous path hits without asking again.
  assert.equal(mem.readU32(IOVA_BASE + 0x2010n), 0xabcd);
  assert.equal(fe.seen.length, 2);
  fe.backend.close();
  await running.catch(() => {});
});

Deno.test("iommu async: an unanswered miss times out with CannotResolve and leaves nothing pending", async () => {
  await using fe = await frontEnd(0, [IOVA_BASE + 0x3000n]);
  using phys = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const iotlb = new Iotlb();
  const channel = new VhostIotlbChannel(fe.backend, iotlb);
  const iommu = new IotlbIommu(iotlb, { asyncMissHandler: channel.missHandler, timeoutMs: 150, maxRetries: 1 });
  const mem = new IommuMemory(phys, iommu);
  const running = channel.run().catch((e) => e);
  await assert.rejects(mem.resolve(IOVA_BASE + 0x3000n, 8, Permissions.Read), CannotResolveError);
  try {
    await mem.resolve(IOVA_BASE + 0x3000n, 8, Permissions.Read);
    assert.fail("resolved an unanswered miss");
  } catch (err) {
    assert.ok(err instanceof CannotResolveError);
    assert.equal(err.op, "IommuMemory.resolve");
    assert.match(err.reason, /did not answer within 150 ms/);
  }
  assert.equal(iommu.counters.timeouts, 2);
  assert.equal(iommu.pendingRequests, 0);
  fe.backend.close();
  await running.catch(() => {});
});

Deno.test("iommu async: an invalidation from the front-end revokes the translation at once", async () => {
  await using fe = await frontEnd(0);
  using phys = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const iotlb = new Iotlb();
  const channel = new VhostIotlbChannel(fe.backend, iotlb);
  const iommu = new IotlbIommu(iotlb, { asyncMissHandler: channel.missHandler });
  const mem = new IommuMemory(phys, iommu);
  const running = channel.run().catch((e) => e);
  await mem.resolve(IOVA_BASE + 0x4000n, 0x1000, Permissions.Write);
  mem.writeU64(IOVA_BASE + 0x4008n, 3n);
  assert.equal(phys.readU64(0x4008), 3n);
  await send(
    fe.frontend,
    encodeVhostIotlbMsg(VhostUserRequest.IotlbMsg, {
      iova: IOVA_BASE + 0x4000n,
      size: 0x800n,
      uaddr: 0n,
      perm: 0,
      type: VhostIotlbType.Invalidate,
    }),
  );
  while (channel.messagesApplied < 2) await new Promise((r) => setTimeout(r, 5));
  assert.throws(() => mem.writeU64(IOVA_BASE + 0x4008n, 4n), CannotResolveError);
  assert.equal(phys.readU64(0x4008), 3n);
  mem.writeU64(IOVA_BASE + 0x4808n, 4n);
  assert.equal(phys.readU64(0x4808), 4n, "the rest of the page keeps its translation");
  fe.backend.close();
  await running.catch(() => {});
});

Deno.test("iommu async: when the front-end goes away, waiting misses fail instead of hanging", async () => {
  await using fe = await frontEnd(0, [IOVA_BASE]);
  using phys = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const iotlb = new Iotlb();
  const channel = new VhostIotlbChannel(fe.backend, iotlb);
  // Long enough that a slow machine never times out first (the test expects the close, not a timeout).
  const iommu = new IotlbIommu(iotlb, { asyncMissHandler: channel.missHandler, timeoutMs: 60_000, maxRetries: 1 });
  const mem = new IommuMemory(phys, iommu);
  const running = channel.run().catch((e) => e);
  const pending = mem.resolve(IOVA_BASE, 8, Permissions.Read);
  while (fe.seen.length === 0) await new Promise((r) => setTimeout(r, 5));
  fe.frontend.close();
  await running;
  await assert.rejects(pending, CannotResolveError);
  assert.equal(iommu.counters.timeouts, 0);
});
