/**
 * A hostile vhost-user front-end changes the IOTLB only by valid updates and invalidations: every
 * other message is refused and counted. Misses that cannot be sent leave nothing behind, and an
 * update looks only at the misses it answers.
 * @module
 */

import assert from "node:assert/strict";
import { InvalidArgumentError } from "../src/core/errors.ts";
import { IommuMisconfiguredError } from "../src/iommu/iommu_errors.ts";
import { IotlbIommu } from "../src/iommu/iommu.ts";
import { intervalSteps } from "../src/iommu/interval_index.ts";
import { Iotlb, type IotlbLookup } from "../src/iommu/iotlb.ts";
import { type Permission, Permissions } from "../src/core/permissions.ts";
import {
  decodeVhostIotlbMsg,
  encodeVhostIotlbMsg,
  VhostIotlbChannel,
  type VhostIotlbMsg,
  VhostIotlbType,
  vhostIotlbUpdate,
  VhostUserRequest,
} from "../src/iommu/vhost_iotlb.ts";
import { readMessages, send, socketPair, until } from "./fixtures/socket_pair.ts";

const { Read, ReadWrite } = Permissions;
const PAGE = 0x1000;
const TWO_64 = 1n << 64n;

function update(iova: bigint, uaddr: bigint, size: bigint, perm: Permission = ReadWrite): VhostIotlbMsg {
  return { iova, size, uaddr, perm, type: VhostIotlbType.Update };
}

function invalidation(iova: bigint, size: bigint): VhostIotlbMsg {
  return { iova, size, uaddr: 0n, perm: 0, type: VhostIotlbType.Invalidate };
}

/** `msg` as the front-end sends it, with its header's request code and flags, and raw bytes patched. */
function wire(
  msg: VhostIotlbMsg,
  request: number = VhostUserRequest.IotlbMsg,
  flags = 0,
  patch: [number, number][] = [],
) {
  const bytes = encodeVhostIotlbMsg(request, msg, flags);
  for (const [at, value] of patch) bytes[at] = value;
  return bytes;
}

function entries(iotlb: Iotlb): string[] {
  return iotlb.entries().map((e) =>
    `${e.iova.toString(16)}+${e.size.toString(16)}->${e.target.toString(16)} ${e.perm}`
  );
}

Deno.test("vhost hostile: every malformed or foreign message is refused, counted, and changes nothing", async () => {
  await using pair = await socketPair();
  const iotlb = new Iotlb();
  const channel = new VhostIotlbChannel(pair.backend, iotlb);
  const running = channel.run();
  await send(pair.frontend, wire(update(0x10000n, 0x90000n, 0x2000n)));
  await until(() => channel.messagesApplied === 1);
  const before = entries(iotlb);
  const hostile: Array<[string, Uint8Array, string, RegExp]> = [
    [
      "an update under a made-up request code",
      wire(update(0x40000n, 0n, 0x1000n), 0x1234),
      "request",
      /VHOST_USER_IOTLB_MSG \(22\)/,
    ],
    ["an update under the back-end's own code 1", wire(update(0x40000n, 0n, 0x1000n), 1), "request", /22/],
    ["an invalidation under code 1", wire(invalidation(0x10000n, 0x2000n), 1), "request", /22/],
    ["an invalidation under code 0", wire(invalidation(0x10000n, 0x2000n), 0), "request", /22/],
    ["a reply posing as a request", wire(update(0x40000n, 0n, 0x1000n), 22, 0x4), "flags", /a reply is not a request/],
    ["reserved flag bits", wire(invalidation(0x10000n, 0x1000n), 22, 0x100), "flags", /only need-reply/],
    [
      "a miss sent back",
      wire({ ...update(0x10000n, 0n, 0n), type: VhostIotlbType.Miss }),
      "type",
      /Update \(2\) or Invalidate \(3\)/,
    ],
    [
      "an access failure sent back",
      wire({ ...invalidation(0x10000n, 0x1000n), type: VhostIotlbType.AccessFail }),
      "type",
      /Update/,
    ],
    ["an unknown type", wire(update(0x40000n, 0n, 0x1000n), 22, 0, [[37, 9]]), "type", /must be Miss \(1\)/],
    ["a permission above 3", wire(update(0x40000n, 0n, 0x1000n), 22, 0, [[36, 7]]), "perm", /0-3/],
    ["an update of size 0", wire(update(0x40000n, 0n, 0n)), "size", /must not be 0/],
    ["an invalidation of size 0", wire(invalidation(0x10000n, 0n)), "size", /must not be 0/],
    ["an IOVA range wrapping past 2^64", wire(update(TWO_64 - 0x1000n, 0n, 0x2000n)), "size", /runs past 2\^64/],
    ["an invalidation wrapping past 2^64", wire(invalidation(TWO_64 - 1n, 2n)), "size", /runs past 2\^64/],
    ["a target range wrapping past 2^64", wire(update(0x40000n, TWO_64 - 0x800n, 0x1000n)), "uaddr", /runs past 2\^64/],
  ];
  for (const [what, bytes, argument, reason] of hostile) {
    const rejected = channel.messagesRejected;
    await send(pair.frontend, bytes);
    await until(() => channel.messagesRejected === rejected + 1, what);
    const e = channel.lastRejection;
    assert.ok(e instanceof InvalidArgumentError, what);
    assert.equal(e.argument, argument, what);
    assert.match(e.message, reason, what);
    assert.deepEqual(entries(iotlb), before, `${what} changed the IOTLB`);
  }
  assert.equal(channel.messagesApplied, 1);
  // The channel goes on: valid messages, one asking for a reply (as QEMU's do), still apply.
  await send(pair.frontend, wire(invalidation(0x10000n, 0x1000n), 22, 0x8));
  await until(() => channel.messagesApplied === 2);
  assert.deepEqual(entries(iotlb), ["11000+1000->91000 3"]);
  assert.equal(channel.messagesRejected, hostile.length);
  pair.frontend.close();
  await running;
});

Deno.test("vhost hostile: a header that breaks the framing ends run() with InvalidArgument, applying nothing", async () => {
  for (const [flags, size] of [[2, 32], [0, 32], [1, 31], [1, 4096]]) {
    await using pair = await socketPair();
    const iotlb = new Iotlb();
    const channel = new VhostIotlbChannel(pair.backend, iotlb);
    const running = channel.run().then(() => undefined, (e) => e);
    const bytes = wire(update(0x1000n, 0n, 0x1000n));
    new DataView(bytes.buffer).setUint32(4, flags, true);
    new DataView(bytes.buffer).setUint32(8, size, true);
    await send(pair.frontend, bytes);
    const e = await running;
    assert.ok(e instanceof InvalidArgumentError, `flags ${flags} size ${size}: ${e}`);
    assert.equal(e.op, "VhostIotlbChannel.run");
    assert.equal(e.argument, "header");
    assert.equal(iotlb.size, 0);
    assert.equal(channel.messagesApplied, 0);
  }
});

Deno.test("vhost hostile: apply() checks every field itself and names the field", () => {
  const iotlb = new Iotlb();
  const channel = new VhostIotlbChannel(
    { read: () => Promise.resolve(null), write: (p) => Promise.resolve(p.length) },
    iotlb,
    {
      toTarget: (u) => {
        if (u === 0xdead000n) throw new Error("not guest RAM");
        return u;
      },
    },
  );
  const cases: Array<[unknown, string, RegExp]> = [
    [null, "msg", /must be an object/],
    [{ ...update(0n, 0n, 1n), type: 1 }, "type", /Update \(2\) or Invalidate \(3\)/],
    [{ ...update(0n, 0n, 1n), type: 0x1234 }, "type", /Update/],
    [{ ...update(0n, 0n, 1n), perm: 4 }, "perm", /permission/],
    [{ ...invalidation(0n, 1n), perm: -1 }, "perm", /permission/],
    [update(-1n, 0n, 1n), "iova", /./],
    [update(0n, 0n, 0n), "size", /must not be 0/],
    [update(0n, 0n, TWO_64), "size", /./],
    [update(2n, 0n, TWO_64 - 1n), "size", /runs past 2\^64/],
    [update(0n, TWO_64 - 1n, 2n), "uaddr", /runs past 2\^64/],
    [update(0n, 0xdead000n, 0x1000n), "uaddr", /refused by toTarget: not guest RAM/],
  ];
  for (const [msg, argument, reason] of cases) {
    assert.throws(() => channel.apply(msg as VhostIotlbMsg), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError, `${argument}: ${e}`);
      assert.equal(e.op, "VhostIotlbChannel.apply");
      assert.equal(e.argument, argument);
      assert.match(e.message, reason);
      return true;
    });
  }
  assert.equal(iotlb.size, 0);
  assert.equal(channel.messagesApplied, 0);
  // Valid messages longer than 2^53 apply whole: a mapping of the top half, then a flush of all but the last byte.
  channel.apply(update(1n << 63n, 0n, 1n << 63n, Read));
  assert.deepEqual(entries(iotlb), ["8000000000000000+8000000000000000->0 1"]);
  channel.apply(invalidation(0n, TWO_64 - 1n));
  assert.deepEqual(entries(iotlb), ["ffffffffffffffff+1->7fffffffffffffff 1"]);
  assert.equal(channel.messagesApplied, 2);
});

Deno.test("vhost hostile: 1,000 splitting invalidations keep a bounded IOTLB within maxEntries", async () => {
  await using pair = await socketPair();
  const iotlb = new Iotlb({ maxEntries: 8 });
  const channel = new VhostIotlbChannel(pair.backend, iotlb);
  const running = channel.run();
  await send(pair.frontend, wire(update(0n, 0x100000n, 0x400000n)));
  for (let i = 0; i < 1000; i++) await send(pair.frontend, wire(invalidation(BigInt(17 + i * 0x1000), 1n)));
  await until(() => channel.messagesApplied === 1001);
  assert.equal(iotlb.size, 8);
  assert.equal(iotlb.counters.evictions, 1001 - 8);
  pair.frontend.close();
  await running;
});

Deno.test("vhost hostile: misses whose message cannot be sent (a closed peer) leave no waiter and no question", async () => {
  await using pair = await socketPair();
  const iotlb = new Iotlb();
  const channel = new VhostIotlbChannel(pair.backend, iotlb); // not run: the misses go out, nothing comes back
  pair.frontend.close();
  // The first bytes written after the peer closed are still accepted (the peer answers them with a
  // reset): write until the socket knows, so that every miss below fails to send.
  let primed = false;
  for (let i = 0; i < 1000 && !primed; i++) {
    primed = await pair.backend.write(new Uint8Array(1)).then(() => false, () => true);
    if (!primed) await new Promise((r) => setTimeout(r, 2));
  }
  assert.ok(primed, "writes to a closed peer kept succeeding");
  // Asked directly, with a signal nobody aborts: a failed send must clean up by itself.
  const never = new AbortController().signal;
  for (let i = 0; i < 100; i++) {
    const err = await channel.missHandler({ base: BigInt(i * PAGE), length: 8 }, Read, "miss", never).then(
      () => undefined,
      (e) => e,
    );
    assert.ok(err instanceof Error, `miss ${i} was not refused: ${err}`);
    assert.match(err.name, /BrokenPipe|ConnectionReset|NotConnected/);
    assert.equal(channel.pendingMisses, 0, `after miss ${i}`);
  }
  // Through an IOMMU: each failed round leaves neither a waiter nor a question.
  const iommu = new IotlbIommu(iotlb, { asyncMissHandler: channel.missHandler, maxRetries: 1 });
  for (let i = 0; i < 100; i++) {
    const err = await iommu.translateAsync(0x100000 + i * PAGE, 8, Read).then(() => undefined, (e) => e);
    assert.ok(err instanceof IommuMisconfiguredError, `miss ${i}: ${err}`);
    assert.ok(err.cause instanceof Error);
    assert.match(err.cause.name, /BrokenPipe|ConnectionReset|NotConnected/);
    assert.equal(channel.pendingMisses, 0, `after miss ${i}`);
    assert.equal(iommu.pendingRequests, 0, `after miss ${i}`);
  }
});

/** An IOTLB that counts the probes made of it (the channel's old way to find answered misses). */
class CountingIotlb extends Iotlb {
  probes = 0;
  override probe(iova: bigint | number, len: number, access: Permission): IotlbLookup {
    this.probes++;
    return super.probe(iova, len, access);
  }
}

Deno.test("vhost hostile: an update looks only at the misses it answers, not at every miss waiting", async () => {
  await using pair = await socketPair();
  const waiting = 4000;
  const iotlb = new CountingIotlb();
  const channel = new VhostIotlbChannel(pair.backend, iotlb);
  const iommu = new IotlbIommu(iotlb, { asyncMissHandler: channel.missHandler, timeoutMs: 60_000 });
  const running = channel.run();
  const asked: bigint[] = [];
  const served = readMessages(pair.frontend, (m) => void asked.push(decodeMiss(m)));
  // One request over `waiting` unmapped pages, each apart: `waiting` misses sent, none answered yet.
  for (let i = 0; i < waiting; i++) iotlb.setMapping(2 * i * PAGE + PAGE, 0, PAGE, Read);
  const storm = iommu.translateAsync(0, 2 * waiting * PAGE, Read);
  await until(() => asked.length === waiting);
  assert.equal(channel.pendingMisses, waiting);
  // 500 updates far from every miss (a hostile or just busy front-end): none may scan the waiting misses.
  const probes = iotlb.probes, steps = intervalSteps.visits;
  for (let i = 0; i < 500; i++) await send(pair.frontend, vhostIotlbUpdate(0x1_0000_0000 + i * PAGE, 0, PAGE, Read));
  await until(() => channel.messagesApplied === 500);
  assert.equal(iotlb.probes - probes, 0, "an update probed waiting misses");
  const perUpdate = (intervalSteps.visits - steps) / 500;
  assert.ok(perUpdate < 60, `${perUpdate} index steps per update with ${waiting} misses waiting`);
  assert.equal(channel.pendingMisses, waiting);
  // Now answer them: each update wakes exactly the miss it answers.
  for (const iova of asked) await send(pair.frontend, vhostIotlbUpdate(iova, iova, PAGE, Read));
  await storm;
  assert.equal(channel.pendingMisses, 0);
  assert.equal(iommu.pendingRequests, 0);
  pair.frontend.close();
  await running;
  await served;
});

function decodeMiss(m: VhostIotlbMsg): bigint {
  assert.equal(m.type, VhostIotlbType.Miss);
  return m.iova;
}

Deno.test("vhost hostile: the decoder refuses types outside Miss..AccessFail", () => {
  const bytes = wire(update(0n, 0n, 1n), 22, 0, [[37, 0]]);
  assert.throws(() => decodeVhostIotlbMsg(bytes), /type must be Miss \(1\)/);
  bytes[37] = 5;
  assert.throws(() => decodeVhostIotlbMsg(bytes), InvalidArgumentError);
});
