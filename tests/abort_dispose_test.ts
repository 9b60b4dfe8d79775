/**
 * AbortSignal on the IOMMU's asynchronous calls and `using`/`Symbol.dispose` on the objects that
 * hold waiters, watchers or leases. Real timers: every round is given a timeout far longer than any
 * test (MAX_TIMEOUT_MS), so a promise that settles at all settled because of the abort or the
 * dispose; Deno's sanitizers fail a test that leaves that timer armed.
 * @module
 */

import assert from "node:assert/strict";
import { inspect } from "node:util";
import { InvalidArgumentError, RegionClosedError } from "../src/core/errors.ts";
import { CannotResolveError, SliceRevokedError } from "../src/iommu/iommu_errors.ts";
import { type AsyncMissHandler, type Iommu, IotlbIommu, MAX_TIMEOUT_MS } from "../src/iommu/iommu.ts";
import { IommuMemory } from "../src/iommu/iommu_memory.ts";
import { Iotlb } from "../src/iommu/iotlb.ts";
import { Permissions } from "../src/core/permissions.ts";
import { GuestMemoryMmap } from "../src/mmap/guest_memory_mmap.ts";
import type { VolatileSlice } from "../src/core/volatile_slice.ts";
import type { IovaRange } from "../src/iommu/iommu_errors.ts";

const { Read, ReadWrite } = Permissions;

/** An IOMMU whose handler never answers on its own; it records what happens to each question. */
function silentIommu(events: string[]): { iommu: IotlbIommu; signals: AbortSignal[] } {
  const signals: AbortSignal[] = [];
  const handler: AsyncMissHandler = (range, _access, _kind, signal) => {
    events.push(`asked ${range.base.toString(16)}`);
    signals.push(signal);
    signal.addEventListener("abort", () => events.push("handler told"));
    return new Promise(() => {});
  };
  const iommu = new IotlbIommu(new Iotlb(), { asyncMissHandler: handler, timeoutMs: MAX_TIMEOUT_MS, maxRetries: 1 });
  return { iommu, signals };
}

/** Settles `p` into a tagged outcome, logging when it settled. */
function settle<T>(
  p: Promise<T>,
  events: string[],
  name: string,
): Promise<{ ok: true; value: T } | { ok: false; e: unknown }> {
  return p.then(
    (value) => (events.push(`${name} resolved`), { ok: true as const, value }),
    (e) => (events.push(`${name} rejected`), { ok: false as const, e }),
  );
}

Deno.test("abort: getSlicesAsync aborted while its miss is unanswered rejects with the signal's reason and forgets the question", async () => {
  using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const events: string[] = [];
  const { iommu, signals } = silentIommu(events);
  const mem = new IommuMemory(ram, iommu);
  const controller = new AbortController();
  const reason = new Error("the guest reset the device");
  const outcome = settle(mem.getSlicesAsync(0x4000, 0x100, Read, { signal: controller.signal }), events, "call");
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(iommu.pendingRequests, 1, "the question is in flight before the abort");
  events.push("abort");
  controller.abort(reason);
  const r = await outcome;
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.e, reason, "rejected with the signal's reason itself");
  assert.deepEqual(events, ["asked 4000", "abort", "handler told", "call rejected"]);
  assert.equal(signals[0].aborted, true);
  assert.equal(signals[0].reason, reason, "the handler learns why");
  assert.equal(iommu.pendingRequests, 0, "the waiter is forgotten");
  assert.equal(iommu.counters.timeouts, 0, "it did not end by its timeout");
});

Deno.test("abort: an already aborted signal rejects before the handler is asked", async () => {
  using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const events: string[] = [];
  const { iommu } = silentIommu(events);
  const mem = new IommuMemory(ram, iommu);
  const signal = AbortSignal.abort("stale");
  await assert.rejects(mem.resolve(0x4000, 8, Read, { signal }), (e) => e === "stale");
  await assert.rejects(iommu.translateAsync(0x4000, 8, Read, { signal }), (e) => e === "stale");
  assert.deepEqual(events, []);
  assert.equal(iommu.counters.asyncRequests, 0);
});

Deno.test("abort: one caller giving up does not fail another caller waiting on the same question", async () => {
  const events: string[] = [];
  let answer!: () => void;
  const iommu: IotlbIommu = new IotlbIommu(new Iotlb(), {
    asyncMissHandler: (range) => {
      events.push("asked");
      return new Promise<void>((resolve) =>
        answer = () => {
          iommu.iotlb.setMapping(range.base, 0x9000n, range.length, ReadWrite);
          resolve();
        }
      );
    },
    timeoutMs: MAX_TIMEOUT_MS,
  });
  const controller = new AbortController();
  const first = settle(iommu.translateAsync(0x1000, 0x10, Read, { signal: controller.signal }), events, "first");
  const second = settle(iommu.translateAsync(0x1000, 0x10, Read), events, "second");
  await new Promise((r) => setTimeout(r, 5));
  controller.abort();
  const a = await first;
  assert.equal(!a.ok && (a.e as Error).name, "AbortError");
  answer();
  const b = await second;
  assert.deepEqual(b, { ok: true, value: [{ base: 0x9000n, length: 0x10 }] });
  assert.deepEqual(events, ["asked", "first rejected", "second resolved"]);
  assert.equal(iommu.counters.mergedRequests, 1);
  assert.equal(iommu.pendingRequests, 0);
});

Deno.test("abort: IommuMemory rejects at once even when the IOMMU ignores the signal", async () => {
  using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  let told: AbortSignal | undefined;
  const stubborn: Iommu = {
    translate: () => [],
    translateAsync: (_i, _l, _a, options) => {
      told = options?.signal;
      return new Promise<IovaRange[]>(() => {});
    },
  };
  const mem = new IommuMemory(ram, stubborn);
  const controller = new AbortController();
  const call = mem.resolve(0x10, 4, Read, { signal: controller.signal });
  controller.abort("stop");
  await assert.rejects(call, (e) => e === "stop");
  assert.equal(told?.aborted, true, "the IOMMU was given a signal that fired");
});

Deno.test("abort: options that are not an object or a signal that is not an AbortSignal are InvalidArgumentError", async () => {
  using ram = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const iommu = new IotlbIommu();
  const mem = new IommuMemory(ram, iommu);
  for (const [options, argument] of [[{ signal: {} }, "options.signal"], [7, "options"], [null, "options"]] as const) {
    const e = await mem.getSlicesAsync(0, 4, Read, options as never).then(() => undefined, (x) => x);
    assert.ok(e instanceof InvalidArgumentError, String(e));
    assert.equal(e.op, "IommuMemory.getSlicesAsync");
    assert.equal(e.argument, argument);
    const f = await iommu.translateAsync(0, 4, Read, options as never).then(() => undefined, (x) => x);
    assert.ok(f instanceof InvalidArgumentError);
    assert.equal(f.op, "IotlbIommu.translateAsync");
    assert.equal(f.argument, argument);
  }
});

Deno.test("dispose: disposing an IotlbIommu rejects its waiting translations, tells the handler, and refuses new ones", async () => {
  const events: string[] = [];
  const { iommu, signals } = silentIommu(events);
  const waiting = settle(iommu.translateAsync(0x2000, 8, Read), events, "call");
  await new Promise((r) => setTimeout(r, 5));
  events.push("dispose");
  {
    using _ = iommu;
  }
  const r = await waiting;
  assert.ok(!r.ok && r.e instanceof CannotResolveError, "a typed error");
  assert.equal(!r.ok && (r.e as CannotResolveError).reason, "the IOMMU was disposed");
  assert.deepEqual(!r.ok && (r.e as CannotResolveError).iovaRange, { base: 0x2000n, length: 8 });
  assert.deepEqual(events, ["asked 2000", "dispose", "handler told", "call rejected"]);
  assert.equal(signals[0].aborted, true);
  assert.equal(iommu.pendingRequests, 0);
  iommu[Symbol.dispose](); // idempotent
  await assert.rejects(iommu.translateAsync(0x2000, 8, Read), CannotResolveError);
  assert.deepEqual(events.length, 4, "a disposed IOMMU asks nobody");
});

Deno.test("dispose: disposing an IommuMemory rejects its waits, revokes its view-holding slices, and stops its guards watching", async () => {
  using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const events: string[] = [];
  const { iommu } = silentIommu(events);
  iommu.iotlb.setMapping(0x8000, 0x1000, 0x1000, ReadWrite);
  const mem = new IommuMemory(ram, iommu, { revocation: "views" });
  const other = new IommuMemory(ram, iommu, { revocation: "views" });
  const slice = mem.getSlice(0x8000, 16, ReadWrite);
  const view = slice.bytes();
  const noView = mem.getSlice(0x8010, 16, ReadWrite);
  const kept = other.getSlice(0x8000, 16, ReadWrite);
  kept.bytes();
  assert.equal(iommu.iotlb.watcherCount, 2);
  const waiting = settle(mem.resolve(0x20000, 8, Read), events, "resolve");
  await new Promise((r) => setTimeout(r, 5));
  mem[Symbol.dispose]();
  const r = await waiting;
  assert.ok(!r.ok && r.e instanceof CannotResolveError);
  assert.equal(!r.ok && (r.e as CannotResolveError).reason, "the IommuMemory was disposed");
  assert.equal(!r.ok && (r.e as CannotResolveError).op, "IommuMemory.resolve");
  assert.equal(iommu.pendingRequests, 0, "its question to the IOMMU was cancelled");
  assert.equal(view.length, 0, "the leased view is detached now");
  assert.throws(() => slice.readU8(0), SliceRevokedError);
  assert.equal(iommu.iotlb.watcherCount, 1, "only the other memory's guard still watches");
  assert.equal(noView.readU8(0), 0, "a slice that held nothing stays valid while its translation holds");
  assert.throws(() => noView.bytes(), SliceRevokedError, "but takes no new lease");
  assert.equal(iommu.iotlb.watcherCount, 1, "and so adds no watcher");
  assert.equal(kept.readU8(0), 0, "another IommuMemory on the same IOMMU is untouched");
  mem[Symbol.dispose](); // idempotent
  await assert.rejects(mem.getSlicesAsync(0x8000, 4, Read), CannotResolveError);
  assert.equal(mem.readU8(0x8000), 0, "synchronous access still works: the memory is the backend's");
});

Deno.test("dispose: a disposed VolatileSlice refuses every method with RegionClosedError; slices cut before keep working", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  let early: VolatileSlice;
  let late: VolatileSlice;
  {
    using s = mem.getSlice(0x10, 8);
    s.writeU32(0, 0xfeedf00d);
    early = s.subslice(0, 4);
    late = s; // disposed at the end of this block
  }
  assert.throws(() => late.readU8(0), RegionClosedError);
  assert.throws(() => late.readU32(0), {
    name: "RegionClosedError",
    message: "VolatileSlice.readU32: a disposed slice (8 bytes at region offset 0x10) is closed",
  });
  assert.throws(() => late.bytes(), RegionClosedError);
  assert.throws(() => late.copyFrom(new Uint8Array(1)), RegionClosedError);
  assert.throws(() => late.subslice(0, 4).readU8(0), RegionClosedError, "a slice cut afterwards is disposed too");
  assert.equal(early.readU32(0), 0xfeedf00d);
  late[Symbol.dispose](); // idempotent
  assert.match(inspect(late), /, DISPOSED$/);
  assert.equal(mem.readU32(0x10), 0xfeedf00d, "the memory stays");
});

Deno.test("dispose: disposing an IOMMU slice detaches the views it leased and its guard stops watching the IOTLB", () => {
  using ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x8000, 0x1000, 0x2000, ReadWrite);
  const mem = new IommuMemory(ram, iommu, { revocation: "views" });
  const other = mem.getSlice(0x9000, 16, ReadWrite);
  const otherView = other.bytes();
  const s = mem.getSlice(0x8000, 16, ReadWrite);
  const view = s.bytes();
  const dv = s.dataView();
  assert.equal(iommu.iotlb.watcherCount, 2);
  s[Symbol.dispose]();
  assert.equal(view.length, 0, "the view is detached");
  assert.equal(dv.buffer.detached, true, "so is the DataView");
  assert.equal(iommu.iotlb.watcherCount, 1, "only the other slice's guard still watches");
  assert.throws(() => s.readU8(0), RegionClosedError);
  assert.equal(otherView.length, 16, "another slice's view is untouched");
  otherView[0] = 5;
  assert.equal(ram.readU8(0x2000), 5);
});
