/**
 * The vhost-user back-end (src/vhost_user/) against a front-end written in the test: a real Unix
 * socket, real memfds and eventfds passed with SCM_RIGHTS, the rings in the front-end's guest RAM,
 * and, with the IOMMU, misses asked on the back-end channel and answered by IOTLB updates.
 * @module
 */

import assert from "node:assert/strict";
import {
  type BackendEvent,
  configPayload,
  featureMask,
  FrontendRequest as R,
  PROTOCOL_FEATURES_BIT,
  ProtocolFeature,
  readConfig,
  readState,
  statePayload,
  u64Payload,
  VhostUserServer,
  VirtioFeature,
} from "../vhost_user.ts";
import { native } from "../src/ffi/native.ts";
import { TestDriver } from "./fixtures/virtio_driver.ts";
import { GuestRam, startDevice, TestFrontend, u64 } from "./fixtures/vhost_frontend.ts";
import { eventfdSignal, upperDevice } from "./fixtures/upper_device.ts";

const F = (bit: number) => featureMask(bit);
const OFFERED = F(VirtioFeature.Version1) | F(VirtioFeature.IndirectDesc) | F(VirtioFeature.EventIdx) |
  F(VirtioFeature.AccessPlatform) | F(PROTOCOL_FEATURES_BIT);
const PROTOCOL = F(ProtocolFeature.Mq) | F(ProtocolFeature.ReplyAck) | F(ProtocolFeature.BackendReq) |
  F(ProtocolFeature.Config);
const text = (s: string) => new TextEncoder().encode(s);

async function tempSocket(): Promise<{ path: string; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "gmem-vu-" });
  return { path: `${dir}/vu.sock`, dir };
}

Deno.test("vhost-user: the back-end offers its features and protocol features and refuses bits it did not offer", async () => {
  const { path, dir } = await tempSocket();
  const server = VhostUserServer.listen(path, upperDevice());
  const fe = TestFrontend.connect(path);
  try {
    assert.equal(u64(await fe.ask(R.GetFeatures)), OFFERED);
    assert.equal(u64(await fe.ask(R.GetProtocolFeatures)), PROTOCOL);
    assert.equal(u64(await fe.ask(R.GetQueueNum)), 1n);
    assert.equal(
      await fe.ack(R.SetFeatures, u64Payload(OFFERED | F(VirtioFeature.RingPacked))),
      1n,
      "packed rings were not offered",
    );
    assert.equal(await fe.ack(R.SetProtocolFeatures, u64Payload(F(ProtocolFeature.Status))), 1n);
    assert.equal(await fe.ack(R.SetFeatures, u64Payload(OFFERED)), 0n);
    assert.equal(fe.isClosed, false, "an error reply keeps the connection");
    assert.equal(server.backend.counters.rejected, 2);
    assert.equal(server.backend.session?.features, OFFERED);
  } finally {
    await fe.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vhost-user: GET_CONFIG answers the bytes asked for, and a range outside the config space with size 0", async () => {
  const { path, dir } = await tempSocket();
  const server = VhostUserServer.listen(path, upperDevice());
  const fe = TestFrontend.connect(path);
  try {
    // Before CONFIG is negotiated: an error, i.e. a config reply of size 0.
    let r = await fe.ask(R.GetConfig, configPayload(0, 0, new Uint8Array(4)));
    assert.equal(readConfig("test", r).size, 0);
    assert.equal(await fe.ack(R.SetFeatures, u64Payload(OFFERED)), 0n);
    assert.equal(await fe.ack(R.SetProtocolFeatures, u64Payload(PROTOCOL)), 0n);
    r = await fe.ask(R.GetConfig, configPayload(6, 0, new Uint8Array(6)));
    const c = readConfig("test", r);
    assert.deepEqual([c.offset, c.size, new TextDecoder().decode(c.data)], [6, 6, "config"]);
    r = await fe.ask(R.GetConfig, configPayload(10, 0, new Uint8Array(8)));
    assert.equal(readConfig("test", r).size, 0, "17 bytes of config space end before 10 + 8");
    assert.equal(
      await fe.ack(R.SetConfig, configPayload(0, 0, new Uint8Array(1))),
      1n,
      "the config space is read-only",
    );
  } finally {
    await fe.close();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vhost-user: without an IOMMU, a kicked chain is handled through user-address rings and the guest is called", async () => {
  const { path, dir } = await tempSocket();
  const events: BackendEvent[] = [];
  const device = upperDevice();
  const server = VhostUserServer.listen(path, device, { onEvent: (e) => events.push(e) });
  using ram = new GuestRam(1 << 20);
  const fe = TestFrontend.connect(path);
  const n = native();
  try {
    const layout = { size: 16, desc: 0x1000, avail: 0x2000, used: 0x3000 };
    const driver = new TestDriver(ram.memory, layout);
    const features = OFFERED & ~F(VirtioFeature.AccessPlatform);
    const q = await startDevice(fe, ram, { features, protocol: PROTOCOL, ...layout, iommu: false });
    ram.memory.write(text("hello vhost"), 0x10000);
    driver.submit(driver.addChain([{ addr: 0x10000, len: 11, write: false }, { addr: 0x20000, len: 64, write: true }]));
    const called = eventfdSignal(fe.watcher, q.call, (fd) => n.eventfdRead(fd));
    n.eventfdWrite(q.kick, 1n);
    assert.equal(await called, 1n);
    assert.deepEqual(driver.takeUsed(), [{ id: 0, len: 11 }]);
    assert.equal(new TextDecoder().decode(ram.memory.getSlice(0x20000, 11).bytes()), "HELLO VHOST");
    const c = server.backend.counters;
    assert.deepEqual([c.requests, c.kicks, c.calls, c.refused, c.iotlbMisses], [1, 1, 1, 0, 0]);
    const started = events.find((e) => e.type === "vring-started");
    assert.deepEqual(started, {
      type: "vring-started",
      index: 0,
      size: 16,
      desc: 0x1000n,
      avail: 0x2000n,
      used: 0x3000n,
      iommu: false,
    });
    const base = await fe.ask(R.GetVringBase, statePayload(0, 0));
    assert.deepEqual(readState("test", base), { index: 0, num: 1 });
    for (const fd of [q.kick, q.call, q.err]) n.close(fd);
  } finally {
    await fe.close();
    await server.nextDisconnect();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** IOVA = guest physical + this, so every page the driver uses has a translation the front-end knows. */
const IOVA_BASE = 0x7_0000_0000;

Deno.test("vhost-user: with the IOMMU, misses go out on the back-end channel, updates answer them, invalidations revoke", async () => {
  const { path, dir } = await tempSocket();
  const server = VhostUserServer.listen(path, upperDevice());
  using ram = new GuestRam(1 << 20);
  const fe = TestFrontend.connect(path);
  const n = native();
  const updates: string[] = [];
  fe.onMiss = (m) => {
    const page = m.iova & ~0xfffn;
    updates.push(`${(page - BigInt(IOVA_BASE)).toString(16)}/${m.perm}`);
    void fe.update(page, 0x1000, ram.uaddr(page - BigInt(IOVA_BASE)), 3);
  };
  try {
    const layout = { size: 16, desc: 0x1000, avail: 0x2000, used: 0x3000 };
    const driver = new TestDriver(ram.memory, layout);
    const q = await startDevice(fe, ram, {
      features: OFFERED,
      protocol: PROTOCOL,
      size: 16,
      desc: IOVA_BASE + 0x1000,
      avail: IOVA_BASE + 0x2000,
      used: IOVA_BASE + 0x3000,
      iommu: true,
    });
    ram.memory.write(text("through the iommu"), 0x10000);
    driver.submit(driver.addChain([
      { addr: IOVA_BASE + 0x10000, len: 17, write: false },
      { addr: IOVA_BASE + 0x20000, len: 17, write: true },
    ]));
    let called = eventfdSignal(fe.watcher, q.call, (fd) => n.eventfdRead(fd));
    n.eventfdWrite(q.kick, 1n);
    await called;
    assert.equal(new TextDecoder().decode(ram.memory.getSlice(0x20000, 17).bytes()), "THROUGH THE IOMMU");
    assert.deepEqual(driver.takeUsed(), [{ id: 0, len: 17 }]);
    // Each page asked for once, with the access needed: the rings and descriptors, the two buffers.
    // (The order depends on whether the first drain, at SET_VRING_ENABLE, saw the chain yet.)
    assert.deepEqual([...updates].sort(), ["1000/1", "10000/1", "2000/1", "20000/2", "3000/2"]);
    let c = server.backend.counters;
    assert.deepEqual([c.iotlbMisses, c.iotlbUpdates, c.iotlbInvalidations, c.refused, c.requests], [5, 5, 0, 0, 1]);

    // The guest unmaps the output buffer: the back-end forgets it and asks again next time.
    assert.equal(await fe.invalidate(IOVA_BASE + 0x20000, 0x1000), 0n);
    ram.memory.write(text("again"), 0x10000);
    driver.submit(driver.addChain([
      { addr: IOVA_BASE + 0x10000, len: 5, write: false },
      { addr: IOVA_BASE + 0x20000, len: 5, write: true },
    ]));
    called = eventfdSignal(fe.watcher, q.call, (fd) => n.eventfdRead(fd));
    n.eventfdWrite(q.kick, 1n);
    await called;
    assert.equal(new TextDecoder().decode(ram.memory.getSlice(0x20000, 5).bytes()), "AGAIN");
    assert.deepEqual(updates.slice(5), ["20000/2"]);
    c = server.backend.counters;
    assert.deepEqual([c.iotlbMisses, c.iotlbUpdates, c.iotlbInvalidations, c.refused, c.requests], [6, 6, 1, 0, 2]);
    for (const fd of [q.kick, q.call, q.err]) n.close(fd);
  } finally {
    await fe.close();
    await server.nextDisconnect();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A chain whose output buffer the guest mapped read-only: refused (Permission), the queue broken,
 * the error eventfd signalled, nothing written there and nothing completed. With `checkBuffers`
 * the chain is refused when popped, before the device sees it; without, at the device's write.
 */
async function readOnlyOutput(checkBuffers: boolean): Promise<void> {
  const { path, dir } = await tempSocket();
  const events: BackendEvent[] = [];
  const device = upperDevice();
  const server = VhostUserServer.listen(path, device, { checkBuffers, onEvent: (e) => events.push(e) });
  using ram = new GuestRam(1 << 20);
  const fe = TestFrontend.connect(path);
  const n = native();
  fe.onMiss = (m) => {
    const page = m.iova & ~0xfffn;
    // The output buffer's page is mapped read-only: the device may not write it.
    const perm = page === BigInt(IOVA_BASE + 0x20000) ? 1 : 3;
    void fe.update(page, 0x1000, ram.uaddr(page - BigInt(IOVA_BASE)), perm);
  };
  try {
    const layout = { size: 16, desc: 0x1000, avail: 0x2000, used: 0x3000 };
    const driver = new TestDriver(ram.memory, layout);
    const q = await startDevice(fe, ram, {
      features: OFFERED,
      protocol: PROTOCOL,
      size: 16,
      desc: IOVA_BASE + 0x1000,
      avail: IOVA_BASE + 0x2000,
      used: IOVA_BASE + 0x3000,
      iommu: true,
    });
    ram.memory.write(text("abcd"), 0x10000);
    driver.submit(driver.addChain([
      { addr: IOVA_BASE + 0x10000, len: 4, write: false },
      { addr: IOVA_BASE + 0x20000, len: 4, write: true },
    ]));
    const err = eventfdSignal(fe.watcher, q.err, (fd) => n.eventfdRead(fd));
    n.eventfdWrite(q.kick, 1n);
    assert.equal(await err, 1n);
    const refused = events.find((e) => e.type === "refused");
    assert.ok(refused?.type === "refused");
    assert.equal(refused.error.fault, "Permission");
    assert.deepEqual(refused.error.where, { addr: BigInt(IOVA_BASE + 0x20000), length: 4, access: 2 });
    const op = checkBuffers ? "SplitQueue.pop" : "DescriptorChain.writeTo";
    assert.equal(
      refused.error.message,
      `${op}: queue 0: refused the write of 4 bytes at 0x700020000: the IOTLB maps 0x700020000+0x4 without write permission`,
    );
    // Without the check the device ran (twice: once more after each miss its accesses raised).
    assert.equal(device.handled, checkBuffers ? 0 : 2, "refused at pop, or at the device's write");
    assert.equal(ram.memory.readU32(0x20000), 0, "nothing was written to the read-only buffer");
    assert.equal(server.backend.counters.refused, 1);
    assert.equal(server.backend.counters.requests, 0);
    assert.deepEqual(driver.takeUsed(), [], "nothing was completed");
    assert.equal(server.backend.session?.queue(0)?.broken?.fault, "Permission");
    for (const fd of [q.kick, q.call, q.err]) n.close(fd);
  } finally {
    await fe.close();
    await server.nextDisconnect();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(
  "vhost-user: a buffer the guest mapped read-only for the device to write is refused at the write, the error eventfd fires",
  () => readOnlyOutput(false),
);

Deno.test(
  "vhost-user: with checkBuffers, a read-only output buffer is refused when popped, before the device sees the chain",
  () => readOnlyOutput(true),
);

Deno.test("vhost-user: a miss the front-end never answers is refused after the timeout, not waited on forever", async () => {
  const { path, dir } = await tempSocket();
  const server = VhostUserServer.listen(path, upperDevice(), { missTimeoutMs: 100 });
  using ram = new GuestRam(1 << 20);
  const fe = TestFrontend.connect(path);
  const n = native();
  try {
    const layout = { size: 16, desc: 0x1000, avail: 0x2000, used: 0x3000 };
    new TestDriver(ram.memory, layout);
    const q = await startDevice(fe, ram, {
      features: OFFERED,
      protocol: PROTOCOL,
      size: 16,
      desc: IOVA_BASE + 0x1000,
      avail: IOVA_BASE + 0x2000,
      used: IOVA_BASE + 0x3000,
      iommu: true,
    });
    const err = eventfdSignal(fe.watcher, q.err, (fd) => n.eventfdRead(fd));
    n.eventfdWrite(q.kick, 1n);
    assert.equal(await err, 1n);
    assert.equal(fe.misses.length >= 1, true);
    assert.deepEqual(
      [fe.misses[0].iova, fe.misses[0].perm, fe.misses[0].type],
      [BigInt(IOVA_BASE + 0x2002), 1, 1],
      "the first miss is the available index, for reading",
    );
    assert.equal(server.backend.session?.queue(0)?.broken?.fault, "Translation");
    assert.match(server.backend.session!.queue(0)!.broken!.message, /did not answer within 100 ms/);
    for (const fd of [q.kick, q.call, q.err]) n.close(fd);
  } finally {
    await fe.close();
    await server.nextDisconnect();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});
