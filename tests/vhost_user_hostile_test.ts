/**
 * A hostile vhost-user front-end: bad headers, oversized payloads, unknown requests, missing or
 * extra descriptors, impossible memory tables and queue setups, IOTLB messages the back-end must
 * refuse, a connection dropped mid-message, and seeded garbage. Each gets an error reply or a clean
 * disconnect; descriptors that came along are closed, mappings released, and the back-end serves
 * the next front-end as if nothing happened.
 * @module
 */

import assert from "node:assert/strict";
import { MmapRegion } from "../mod.ts";
import {
  type BackendEvent,
  encodeMessage,
  featureMask,
  FLAG_NEED_REPLY,
  FLAG_REPLY,
  FrontendRequest as R,
  memoryTablePayload,
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  statePayload,
  u64Payload,
  type VhostUserFault,
  VhostUserServer,
  VirtioFeature,
} from "../vhost_user.ts";
import { native } from "../src/ffi/native.ts";
import { iotlbPayload, TestFrontend, u64 } from "./fixtures/vhost_frontend.ts";
import { upperDevice } from "./fixtures/upper_device.ts";
import { Rng } from "./fixtures/rng.ts";

const F = (bit: number) => featureMask(bit);
const FEATURES = F(VirtioFeature.Version1) | F(VirtioFeature.AccessPlatform) | F(PROTOCOL_FEATURES_BIT);
const PROTOCOL = F(ProtocolFeature.ReplyAck) | F(ProtocolFeature.BackendReq);

/** A server and the events it reported, for one test. */
async function withServer(body: (path: string, events: BackendEvent[], server: VhostUserServer) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "gmem-vu-" });
  const events: BackendEvent[] = [];
  const server = VhostUserServer.listen(`${dir}/vu.sock`, upperDevice(), { onEvent: (e) => events.push(e) });
  try {
    await body(server.path, events, server);
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The faults of the messages the back-end refused. */
function refusals(events: BackendEvent[]): { name: string; fault: VhostUserFault | undefined; message: string }[] {
  return events.flatMap((e) =>
    e.type === "rejected"
      ? [{ name: e.name, fault: (e.error as { fault?: VhostUserFault }).fault, message: e.error.message }]
      : []
  );
}

/** `p`, or a failure after `ms`: a back-end that waits where it should refuse fails the test, not hangs it. */
async function within<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((
        _,
        reject,
      ) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function disconnected(fe: TestFrontend, server: VhostUserServer): Promise<string | undefined> {
  await within(fe.closed, "the back-end closes the connection");
  await server.nextDisconnect();
  const why = fe.closedWhy?.message;
  await fe.close();
  return why;
}

Deno.test("vhost-user hostile: a header of another version ends the connection; the next front-end is served", async () => {
  await withServer(async (path, events, server) => {
    const fe = TestFrontend.connect(path);
    const bad = encodeMessage(R.GetFeatures, 0);
    new DataView(bad.buffer).setUint32(4, 0x2, true);
    fe.sendRaw(bad);
    await disconnected(fe, server);
    const end = events.findLast((e) => e.type === "disconnected");
    assert.ok(end?.type === "disconnected");
    assert.equal(end.error?.fault, "Header");
    assert.equal(end.error?.message, "VhostUserBackend.receive: a message with flags 0x2: not vhost-user version 1");
    const next = TestFrontend.connect(path);
    assert.equal(u64(await next.ask(R.GetQueueNum)), 1n);
    await next.close();
    assert.equal(server.backend.counters.connections, 2);
  });
});

Deno.test("vhost-user hostile: a payload size past the limit ends the connection before anything is read", async () => {
  await withServer(async (path, events, server) => {
    const fe = TestFrontend.connect(path);
    const head = new Uint8Array(12);
    const dv = new DataView(head.buffer);
    dv.setUint32(0, R.SetMemTable, true);
    dv.setUint32(4, 1, true);
    dv.setUint32(8, 0x7fffffff, true);
    fe.sendRaw(head);
    await disconnected(fe, server);
    const end = events.findLast((e) => e.type === "disconnected");
    assert.ok(end?.type === "disconnected");
    assert.equal(end.error?.fault, "PayloadSize");
    assert.equal(end.error?.request, R.SetMemTable);
    assert.match(end.error!.message, /a payload of 2147483647 bytes \(at most 4096\)/);
  });
});

Deno.test("vhost-user hostile: an unknown request is answered with an error when a reply was asked, else disconnected", async () => {
  await withServer(async (path, events, server) => {
    const fe = TestFrontend.connect(path);
    assert.equal(await fe.ack(99), 1n);
    assert.equal(await fe.ack(R.SetOwner), 0n, "the connection still works");
    fe.send(99);
    await disconnected(fe, server);
    assert.deepEqual(refusals(events).map((r) => [r.name, r.fault]), [["REQUEST_99", "UnknownRequest"], [
      "REQUEST_99",
      "UnknownRequest",
    ]]);
  });
});

Deno.test("vhost-user hostile: payloads of the wrong size, a reply flag, and impossible queue setups are refused", async () => {
  await withServer(async (path, events) => {
    const fe = TestFrontend.connect(path);
    assert.equal(await fe.ack(R.SetVringNum, new Uint8Array(4)), 1n);
    assert.equal(await fe.ack(R.SetOwner, new Uint8Array(8)), 1n);
    assert.equal(await fe.ack(R.SetVringNum, statePayload(0, 100)), 1n);
    assert.equal(await fe.ack(R.SetVringNum, statePayload(0, 512)), 1n, "the device takes at most 256");
    assert.equal(await fe.ack(R.SetVringNum, statePayload(3, 16)), 1n);
    assert.equal(await fe.ack(R.SetVringBase, statePayload(0, 0x10000)), 1n);
    assert.equal(await fe.ack(R.SetVringEnable, statePayload(0, 2)), 1n);
    fe.send(R.SetOwner, new Uint8Array(0), [], FLAG_REPLY | FLAG_NEED_REPLY);
    assert.equal(u64(await fe.nextReply()), 1n);
    assert.equal(await fe.ack(R.SetVringNum, statePayload(0, 16)), 0n);
    assert.deepEqual(refusals(events).map((r) => [r.name, r.fault, r.message]), [
      ["SET_VRING_NUM", "PayloadSize", "VhostUserBackend.SET_VRING_NUM: SET_VRING_NUM carries 4 payload bytes, not 8"],
      ["SET_OWNER", "PayloadSize", "VhostUserBackend.SET_OWNER: SET_OWNER carries 8 payload bytes, not 0"],
      [
        "SET_VRING_NUM",
        "QueueState",
        "VhostUserBackend.SET_VRING_NUM: queue size 100 is not a power of two from 1 to 256",
      ],
      [
        "SET_VRING_NUM",
        "QueueState",
        "VhostUserBackend.SET_VRING_NUM: queue size 512 is not a power of two from 1 to 256",
      ],
      ["SET_VRING_NUM", "QueueIndex", "VhostUserBackend.SET_VRING_NUM: queue 3 does not exist (1 queues)"],
      ["SET_VRING_BASE", "QueueState", "VhostUserBackend.SET_VRING_BASE: vring base 65536 is not a 16-bit index"],
      ["SET_VRING_ENABLE", "QueueState", "VhostUserBackend.SET_VRING_ENABLE: enable 2 is neither 0 nor 1"],
      ["SET_OWNER", "Header", "VhostUserBackend.SET_OWNER: a reply is not a request"],
    ]);
    await fe.close();
  });
});

Deno.test("vhost-user hostile: descriptors missing, extra, or too many are refused or closed, never kept", async () => {
  await withServer(async (path, events, server) => {
    const n = native();
    const fe = TestFrontend.connect(path);
    assert.equal(await fe.ack(R.SetVringKick, u64Payload(0n)), 1n, "a kick without its eventfd");
    assert.equal(await fe.ack(R.SetVringCall, u64Payload(0x200n), [n.eventfd(0)]), 1n, "bits past NOFD");
    const extra = [n.eventfd(0), n.eventfd(0), n.eventfd(0)];
    const before = n.countFds();
    assert.equal(await fe.ack(R.SetOwner, new Uint8Array(0), extra), 0n, "SET_OWNER with descriptors it does not need");
    assert.equal(n.countFds(), before, "the back-end's copies were closed at once");
    for (const fd of extra) n.close(fd);
    const many = Array.from({ length: 12 }, () => n.eventfd(0));
    fe.send(R.SetOwner, new Uint8Array(0), many);
    for (const fd of many) n.close(fd);
    await disconnected(fe, server);
    assert.deepEqual(refusals(events).map((r) => [r.name, r.fault]), [["SET_VRING_KICK", "MissingFd"], [
      "SET_VRING_CALL",
      "QueueState",
    ]]);
    const end = events.findLast((e) => e.type === "disconnected");
    assert.ok(end?.type === "disconnected");
    assert.equal(end.error?.fault, "UnexpectedFd");
  });
});

Deno.test("vhost-user hostile: memory tables that overlap, outrun their file, or lack descriptors map nothing", async () => {
  await withServer(async (path, events, server) => {
    using ram = MmapRegion.memfd(1 << 20, { name: "hostile-ram" });
    const fe = TestFrontend.connect(path);
    const region = (guestAddr: bigint, size: bigint, userAddr: bigint, mmapOffset = 0n) => ({
      guestAddr,
      size,
      userAddr,
      mmapOffset,
    });
    const u = ram.hostAddress;
    const dup = () => native().dup(ram.fd!);
    const cases: [Uint8Array, number, string][] = [
      [
        memoryTablePayload([region(0n, 0x80000n, u), region(0x40000n, 0x80000n, u + 0x80000n, 0x80000n)]),
        2,
        "regions 0 and 1 overlap at guest addresses 0x0 and 0x40000",
      ],
      [
        memoryTablePayload([region(0n, 0x80000n, u), region(0x100000n, 0x80000n, u + 0x40000n)]),
        2,
        "regions 0 and 1 overlap at user addresses",
      ],
      [memoryTablePayload([region(0n, 2n << 20n, u)]), 1, "region 0 cannot be mapped: .*past the end"],
      [
        memoryTablePayload([region(0n, 0x1000n, u, 0x800n)]),
        1,
        "region 0 starts at file offset 0x800, not a page boundary",
      ],
      [
        memoryTablePayload([region(0xffff_ffff_ffff_f000n, 0x2000n, u)]),
        1,
        "region 0 at guest address 0xfffffffffffff000 runs past 2\\^64",
      ],
      [memoryTablePayload([region(0n, 0n, u)]), 1, "region 0 has size 0x0"],
      [
        memoryTablePayload([region(0n, 0x1000n, u), region(0x1000n, 0x1000n, u + 0x1000n, 0x1000n)]),
        1,
        "2 regions came with 1 descriptors",
      ],
      [
        memoryTablePayload([region(0n, 0x1000n, u)]).subarray(0, 30),
        1,
        "SET_MEM_TABLE of 1 regions carries 30 payload bytes, not 40",
      ],
    ];
    const pass = async () => {
      for (const [payload, fds] of cases) {
        const sent = Array.from({ length: fds }, dup);
        assert.equal(await fe.ack(R.SetMemTable, payload, sent), 1n);
        for (const fd of sent) native().close(fd);
      }
    };
    await pass(); // the first pass may make the runtime's own lazily opened descriptors
    const fdsBefore = native().countFds();
    await pass();
    assert.equal(native().countFds(), fdsBefore, "every descriptor sent with a refused table was closed");
    const tableOf = () => server.backend.session?.memoryTable;
    assert.equal(tableOf(), undefined, "nothing was mapped");
    const got = refusals(events);
    assert.equal(got.length, 2 * cases.length);
    got.forEach((r, i) => {
      assert.equal(r.name, "SET_MEM_TABLE");
      assert.match(r.message, new RegExp(cases[i % cases.length][2]), `case ${i}: ${r.message}`);
    });
    // A good table still maps, and is released with the connection.
    const fd = dup();
    assert.equal(await fe.ack(R.SetMemTable, memoryTablePayload([region(0n, 1n << 20n, u)]), [fd]), 0n);
    native().close(fd);
    const table = tableOf()!;
    assert.equal(table.regions.length, 1);
    await fe.close();
    await server.nextDisconnect();
    assert.equal(table.closed, true, "the mapping is gone with the connection");
  });
});

Deno.test("vhost-user hostile: IOTLB messages without the IOMMU, of a bad type, or outside the memory table are refused", async () => {
  await withServer(async (path, events, server) => {
    using ram = MmapRegion.memfd(1 << 20, { name: "hostile-ram" });
    const fe = TestFrontend.connect(path);
    const update = (iova: bigint, size: bigint, uaddr: bigint, perm: number, type = 2) =>
      iotlbPayload({ iova, size, uaddr, perm: perm as 1, type });
    assert.equal(
      await fe.ack(R.IotlbMsg, update(0x1000n, 0x1000n, ram.hostAddress, 3)),
      1n,
      "IOMMU_PLATFORM not negotiated",
    );
    assert.equal(await fe.ack(R.SetFeatures, u64Payload(FEATURES)), 0n);
    assert.equal(await fe.ack(R.SetProtocolFeatures, u64Payload(PROTOCOL)), 0n);
    assert.equal(await fe.ack(R.IotlbMsg, update(0x1000n, 0x1000n, ram.hostAddress, 3)), 1n, "no memory table yet");
    const fd = native().dup(ram.fd!);
    await fe.ack(
      R.SetMemTable,
      memoryTablePayload([{ guestAddr: 0n, size: 1n << 20n, userAddr: ram.hostAddress, mmapOffset: 0n }]),
      [fd],
    );
    native().close(fd);
    assert.equal(
      await fe.ack(R.IotlbMsg, update(0x1000n, 0x1000n, ram.hostAddress + 0xff800n, 3)),
      1n,
      "runs past the region",
    );
    assert.equal(await fe.ack(R.IotlbMsg, update(0x1000n, 0x1000n, ram.hostAddress, 7)), 1n, "permission 7");
    assert.equal(await fe.ack(R.IotlbMsg, update(0x1000n, 0x1000n, ram.hostAddress, 3, 9)), 1n, "type 9");
    assert.equal(await fe.ack(R.IotlbMsg, update(0x1000n, 0n, ram.hostAddress, 3)), 1n, "size 0");
    assert.equal(
      await fe.ack(R.IotlbMsg, update(0xffff_ffff_ffff_f000n, 0x2000n, ram.hostAddress, 3)),
      1n,
      "past 2^64",
    );
    assert.equal(
      await fe.ack(R.IotlbMsg, update(0x1000n, 0x1000n, ram.hostAddress, 3, 1)),
      1n,
      "a miss is not the front-end's to send",
    );
    assert.equal(await fe.ack(R.IotlbMsg, update(0x1000n, 0x1000n, ram.hostAddress + 0x5000n, 1)), 0n);
    const session = server.backend.session!;
    assert.deepEqual(session.iotlb.entries().map((e) => [e.iova, e.target, e.size, e.perm]), [[
      0x1000n,
      0x5000n,
      4096n,
      1,
    ]]);
    const c = server.backend.counters;
    assert.deepEqual([c.iotlbRejected, c.iotlbUpdates], [8, 1]);
    assert.deepEqual(refusals(events).map((r) => r.fault), [
      "Features",
      "Iotlb",
      "Iotlb",
      "Iotlb",
      "Iotlb",
      "Iotlb",
      "Iotlb",
      "Iotlb",
    ]);
    await fe.close();
  });
});

Deno.test("vhost-user hostile: a front-end that hangs up in the middle of a message leaves nothing behind", async () => {
  await withServer(async (path, events, server) => {
    const n = native();
    const fe = TestFrontend.connect(path);
    const msg = encodeMessage(R.SetVringKick, 0, u64Payload(0n));
    const kick = n.eventfd(0);
    fe.sendRaw(msg.subarray(0, 14), [kick]); // the header and 2 of 8 payload bytes, with the eventfd
    n.close(kick);
    // Asked before the event loop turns, so the server has not accepted yet: the connection waiting
    // in the backlog is the one nextDisconnect waits for.
    const gone = server.nextDisconnect();
    let settled = false;
    void gone.then(() => (settled = true));
    await Promise.resolve(); // microtasks only: the watcher cannot have run
    assert.equal(settled, false, "nextDisconnect waits for the connection in the backlog");
    await fe.close();
    await within(gone, "the disconnect of a connection not yet accepted");
    const end = events.findLast((e) => e.type === "disconnected");
    assert.ok(end?.type === "disconnected");
    assert.equal(
      end.error?.message,
      "VhostUserBackend.receive: the peer closed the connection in the middle of a message",
    );
  });
});

Deno.test("vhost-user hostile: seeded garbage never crashes the back-end, and what it leaves does not grow with it", async () => {
  await withServer(async (path, _events, server) => {
    const n = native();
    const round = async (rng: Rng) => {
      const fe = TestFrontend.connect(path);
      for (let k = 0; k < 20 && !fe.isClosed; k++) {
        // Plausible headers with random requests, flags and payloads, some with eventfds.
        const payload = new Uint8Array(rng.int(3) === 0 ? rng.int(300) : [0, 8, 40, 32][rng.int(4)]);
        for (let i = 0; i < payload.length; i++) payload[i] = rng.int(256);
        const flags = [0, FLAG_NEED_REPLY, FLAG_NEED_REPLY, 0x7][rng.int(4)];
        const fds = Array.from({ length: rng.int(3) }, () => n.eventfd(0));
        try {
          fe.send(rng.int(45), payload, fds, flags);
        } catch { /* the back-end hung up */ }
        for (const fd of fds) n.close(fd);
        await new Promise((r) => setTimeout(r, 1));
      }
      await fe.close();
      await server.nextDisconnect();
    };
    const rng = new Rng(0x6a5b);
    await round(rng); // warm-up: lazily made things exist after it
    const fds0 = Number(n.countFds());
    const maps0 = Number(n.countMappings());
    for (let i = 0; i < 2; i++) await round(rng);
    const fds1 = Number(n.countFds()), maps1 = Number(n.countMappings());
    for (let i = 0; i < 12; i++) await round(rng);
    const fds2 = Number(n.countFds()), maps2 = Number(n.countMappings());
    assert.ok(fds2 - fds1 <= fds1 - fds0 + 2, `descriptors grew with the rounds: ${fds0} ${fds1} ${fds2}`);
    assert.ok(maps2 - maps1 <= maps1 - maps0 + 16, `mappings grew with the rounds: ${maps0} ${maps1} ${maps2}`);
    assert.ok(server.backend.counters.rejected > 0);
    assert.equal(server.backend.counters.connections, 15);
  });
});
