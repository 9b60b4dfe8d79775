/**
 * AbortSignal on the vhost-user layer's waits: VhostIotlbChannel.run, VhostUserServer.nextDisconnect
 * and retryTranslations reject with the signal's reason, forget their waiters and leave the
 * queue usable.
 * @module
 */

import assert from "node:assert/strict";
import { GuestMemoryMmap, Permissions } from "../mod.ts";
import { IommuMemory, IotlbIommu } from "../iommu.ts";
import { Iotlb } from "../src/iommu/iotlb.ts";
import { VhostIotlbChannel } from "../src/iommu/vhost_iotlb.ts";
import { retryTranslations, SplitQueue, VhostUserServer } from "../vhost_user.ts";
import { upperDevice } from "./fixtures/upper_device.ts";
import { TestFrontend } from "./fixtures/vhost_frontend.ts";
import { TestDriver } from "./fixtures/virtio_driver.ts";

Deno.test("abort vhost: aborting VhostIotlbChannel.run rejects with the reason and wakes the misses waiting for the front-end", async () => {
  const sent: number[] = [];
  const stream = {
    read: () => new Promise<number | null>(() => {}), // a front-end that never answers
    write: (p: Uint8Array) => (sent.push(p.length), Promise.resolve(p.length)),
  };
  const iotlb = new Iotlb();
  const channel = new VhostIotlbChannel(stream, iotlb);
  const controller = new AbortController();
  const running = channel.run({ signal: controller.signal }).then(() => "resolved", (e) => e);
  const iommu = new IotlbIommu(iotlb, { asyncMissHandler: channel.missHandler, timeoutMs: 2 ** 31 - 1 });
  const miss = iommu.translateAsync(0x1000, 8, Permissions.Read).then(() => "ok", (e) => e.name);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(channel.pendingMisses, 1);
  assert.deepEqual(sent, [44], "one IOTLB miss message went out");
  controller.abort("device reset");
  assert.equal(await running, "device reset");
  assert.equal(channel.pendingMisses, 0, "the waiting miss was woken");
  assert.equal(await miss, "CannotResolveError", "its retry finds no answer and says so");
  assert.equal(iommu.pendingRequests, 0);
  await assert.rejects(channel.run({ signal: AbortSignal.abort("again") }), (e) => e === "again");
});

Deno.test("abort vhost: aborting nextDisconnect rejects with the reason and forgets the wait; a later one still resolves", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gmem-vu-abort-" });
  const path = `${dir}/vu.sock`;
  const server = VhostUserServer.listen(path, upperDevice());
  const fe = TestFrontend.connect(path);
  try {
    const controller = new AbortController();
    const first = server.nextDisconnect({ signal: controller.signal }).then(() => "resolved", (e) => e);
    assert.equal(server.pendingWaits, 1);
    controller.abort("give up");
    assert.equal(await first, "give up");
    assert.equal(server.pendingWaits, 0, "the aborted wait is forgotten");
    const second = server.nextDisconnect();
    await fe.close();
    await second;
    assert.equal(server.pendingWaits, 0);
    await assert.rejects(server.nextDisconnect({ signal: 3 as never }), { name: "InvalidArgumentError" });
  } finally {
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("abort vhost: aborting retryTranslations rejects with the reason and does not break the queue", async () => {
  using ram = GuestMemoryMmap.fromRanges([[0, 0x100000]]);
  const iommu = new IotlbIommu();
  const mem = new IommuMemory(ram, iommu);
  const IOVA = 0x1000000;
  const layout = { size: 8, desc: 0x1000, avail: 0x2000, used: 0x3000 };
  const driver = new TestDriver(ram, layout);
  const q = new SplitQueue(mem, { size: 8, desc: IOVA + 0x1000, avail: IOVA + 0x2000, used: IOVA + 0x3000 });
  driver.submit(driver.addChain([{ addr: IOVA + 0x10000, len: 16, write: false }]));
  const controller = new AbortController();
  const asked: string[] = [];
  const never = (w: { addr: bigint }) => {
    asked.push(w.addr.toString(16));
    return new Promise<void>(() => {});
  };
  const popping = retryTranslations(q, () => q.pop(), never, undefined, { signal: controller.signal }).then(
    () => "popped",
    (e) => e,
  );
  await new Promise((r) => setTimeout(r, 5));
  controller.abort("stop");
  assert.equal(await popping, "stop");
  assert.deepEqual(asked, ["1002002"]);
  assert.equal(q.broken, undefined, "the queue is not broken by an abort");
  const answer = (w: { addr: bigint }) => {
    const page = w.addr & ~0xfffn;
    iommu.iotlb.setMapping(page, page - BigInt(IOVA), 0x1000, Permissions.ReadWrite);
    return Promise.resolve();
  };
  const chain = await retryTranslations(q, () => q.pop(), answer);
  assert.ok(chain, "the same pop succeeds later");
});

Deno.test("abort vhost: disposing a VhostIotlbChannel wakes its waiting misses and sends no more", async () => {
  const sent: number[] = [];
  const stream = {
    read: () => new Promise<number | null>(() => {}),
    write: (p: Uint8Array) => (sent.push(p.length), Promise.resolve(p.length)),
  };
  const iotlb = new Iotlb();
  const channel = new VhostIotlbChannel(stream, iotlb);
  const iommu = new IotlbIommu(iotlb, { asyncMissHandler: channel.missHandler, timeoutMs: 2 ** 31 - 1 });
  const miss = iommu.translateAsync(0x1000, 8, Permissions.Read).then(() => "ok", (e) => e.name);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(channel.pendingMisses, 1);
  channel[Symbol.dispose]();
  assert.equal(channel.pendingMisses, 0);
  assert.equal(await miss, "CannotResolveError");
  await assert.rejects(iommu.translateAsync(0x5000, 8, Permissions.Read), { name: "CannotResolveError" });
  assert.deepEqual(sent, [44], "the disposed channel asked nothing more");
  channel[Symbol.dispose](); // idempotent
});
