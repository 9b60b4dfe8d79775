/**
 * The asynchronous miss path cleans up after every way a handler can fail (a synchronous throw, a
 * rejection, a value that is not a promise, no answer at all), so a later miss asks again; and a
 * timeout is either one a timer can wait for or refused.
 * @module
 */

import assert from "node:assert/strict";
import { CannotResolveError, IommuMisconfiguredError } from "../src/iommu/iommu_errors.ts";
import { InvalidArgumentError } from "../src/core/errors.ts";
import { type AsyncMissHandler, IotlbIommu, MAX_TIMEOUT_MS } from "../src/iommu/iommu.ts";
import { Iotlb } from "../src/iommu/iotlb.ts";
import { Permissions } from "../src/core/permissions.ts";

const { Read, ReadWrite } = Permissions;

/** An IOMMU whose handler is `behave(call number)`; unanswered rounds time out after 100 ms. */
function iommuWith(behave: (call: number, iommu: IotlbIommu) => ReturnType<AsyncMissHandler> | unknown) {
  let calls = 0;
  const iommu: IotlbIommu = new IotlbIommu(new Iotlb(), {
    asyncMissHandler: (() => behave(++calls, iommu)) as AsyncMissHandler,
    timeoutMs: 100,
    maxRetries: 1,
  });
  return { iommu, calls: () => calls };
}

function mapPage(iommu: IotlbIommu): void {
  iommu.iotlb.setMapping(0x1000, 0x9000, 0x1000, ReadWrite);
}

Deno.test("iommu async cleanup: a handler that throws synchronously once is asked again at the next miss", async () => {
  const { iommu, calls } = iommuWith((call, mmu) => {
    if (call === 1) throw new RangeError("not yet");
    mapPage(mmu);
    return Promise.resolve();
  });
  const err = await iommu.translateAsync(0x1800, 8, Read).then(() => undefined, (e) => e);
  assert.ok(err instanceof IommuMisconfiguredError, `got ${err}`);
  assert.equal(err.op, "IotlbIommu.translateAsync");
  assert.match(err.reason, /^the miss handler failed for 0x1800\+0x8: not yet$/);
  assert.ok(err.cause instanceof RangeError);
  assert.equal(iommu.pendingRequests, 0, "no dead question is left behind");
  assert.deepEqual(await iommu.translateAsync(0x1800, 8, Read), [{ base: 0x9800n, length: 8 }]);
  assert.equal(calls(), 2, "the handler was asked again");
  assert.deepEqual(iommu.counters, { asyncRequests: 2, mergedRequests: 0, timeouts: 0, syncFaults: 0 });
});

Deno.test("iommu async cleanup: a rejection leaves nothing pending, and the next miss asks again", async () => {
  const { iommu, calls } = iommuWith((call, mmu) => {
    if (call === 1) return Promise.reject(new Error("front-end busy"));
    mapPage(mmu);
    return Promise.resolve();
  });
  await assert.rejects(iommu.translateAsync(0x1000, 4, Read), IommuMisconfiguredError);
  assert.equal(iommu.pendingRequests, 0);
  assert.deepEqual(await iommu.translateAsync(0x1000, 4, Read), [{ base: 0x9000n, length: 4 }]);
  assert.equal(calls(), 2);
});

Deno.test("iommu async cleanup: a handler that returns a value, not a promise, is an answer and leaves nothing", async () => {
  const answered = iommuWith((_call, mmu) => mapPage(mmu)); // fills the IOTLB and returns undefined
  assert.deepEqual(await answered.iommu.translateAsync(0x1ff8, 8, Read), [{ base: 0x9ff8n, length: 8 }]);
  assert.equal(answered.iommu.pendingRequests, 0);
  const unanswered = iommuWith(() => 42); // answers nothing
  const err = await unanswered.iommu.translateAsync(0x5000, 8, Read).then(() => undefined, (e) => e);
  assert.ok(err instanceof CannotResolveError, `got ${err}`);
  assert.deepEqual(err.iovaRange, { base: 0x5000n, length: 8 });
  assert.equal(unanswered.iommu.pendingRequests, 0);
  assert.equal(unanswered.calls(), 1);
});

Deno.test("iommu async cleanup: a handler that never answers times out, and the next miss asks it again", async () => {
  const signals: AbortSignal[] = [];
  let calls = 0;
  const iommu: IotlbIommu = new IotlbIommu(new Iotlb(), {
    asyncMissHandler: (_range, _access, _kind, signal) => {
      signals.push(signal);
      if (++calls === 1) return new Promise<void>(() => {}); // ignores its signal too
      mapPage(iommu);
      return Promise.resolve();
    },
    timeoutMs: 50,
    maxRetries: 1,
  });
  const err = await iommu.translateAsync(0x1000, 8, Read).then(() => undefined, (e) => e);
  assert.ok(err instanceof CannotResolveError, `got ${err}`);
  assert.equal(err.reason, "the miss handler did not answer within 50 ms");
  assert.equal(signals[0].aborted, true, "the handler was told the asker gave up");
  assert.equal(iommu.pendingRequests, 0, "the unanswered question was forgotten");
  assert.deepEqual(await iommu.translateAsync(0x1000, 8, Read), [{ base: 0x9000n, length: 8 }]);
  assert.equal(calls, 2);
  assert.deepEqual(iommu.counters, { asyncRequests: 2, mergedRequests: 0, timeouts: 1, syncFaults: 0 });
});

Deno.test("iommu async cleanup: when one question of a round fails, the others' signal aborts and nothing stays", async () => {
  const signals: AbortSignal[] = [];
  const iotlb = new Iotlb();
  iotlb.setMapping(0x2000, 0, 0x1000, Read); // the request below misses [0x1000, 0x2000) and [0x3000, 0x4000)
  const iommu = new IotlbIommu(iotlb, {
    asyncMissHandler: (range, _access, _kind, signal) => {
      signals.push(signal);
      return range.base === 0x1000n ? new Promise<void>(() => {}) : Promise.reject(new Error("no"));
    },
    timeoutMs: 60_000,
  });
  await assert.rejects(iommu.translateAsync(0x1000, 0x3000, Read), IommuMisconfiguredError);
  assert.equal(signals.length, 2);
  assert.ok(signals.every((s) => s.aborted));
  assert.equal(iommu.pendingRequests, 0);
});

Deno.test("iommu async cleanup: a timeoutMs longer than a timer can wait is refused, the longest one waits", async () => {
  for (const timeoutMs of [2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
    assert.throws(() => new IotlbIommu(new Iotlb(), { timeoutMs }), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError);
      assert.equal(e.op, "IotlbIommu");
      assert.equal(e.argument, "timeoutMs");
      assert.equal(e.value, timeoutMs);
      assert.match(e.message, /timeoutMs must be at most 2147483647 \(2\^31 - 1\)/);
      return true;
    });
  }
  assert.equal(MAX_TIMEOUT_MS, 2147483647);
  // The longest accepted timeout really waits: after several turns of the event loop (and a timer
  // of its own) the question is still open, where a clamped timer would have fired at once.
  let answer!: () => void;
  const iommu: IotlbIommu = new IotlbIommu(new Iotlb(), {
    asyncMissHandler: () => new Promise<void>((resolve) => (answer = resolve)),
    timeoutMs: MAX_TIMEOUT_MS,
  });
  let settled = false;
  const pending = iommu.translateAsync(0x1000, 8, Read).finally(() => (settled = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(settled, false);
  assert.equal(iommu.counters.timeouts, 0);
  mapPage(iommu);
  answer();
  assert.deepEqual(await pending, [{ base: 0x9000n, length: 8 }]);
});

Deno.test("iommu async cleanup: questions already asked when a later one throws reject later without going unhandled", async () => {
  const iotlb = new Iotlb();
  iotlb.setMapping(0x2000, 0, 0x1000, Read); // the request misses [0x1000, 0x2000) and [0x3000, 0x4000)
  let rejectFirst!: (e: Error) => void;
  const iommu = new IotlbIommu(iotlb, {
    asyncMissHandler: (range) => {
      if (range.base === 0x1000n) return new Promise<void>((_, reject) => (rejectFirst = reject));
      throw new TypeError("second handler broke");
    },
  });
  const err = await iommu.translateAsync(0x1000, 0x3000, Read).then(() => undefined, (e) => e);
  assert.ok(err instanceof IommuMisconfiguredError, `got ${err}`);
  assert.match(err.reason, /second handler broke/);
  assert.equal(iommu.pendingRequests, 0);
  rejectFirst(new Error("first handler gave up late"));
  // A rejection nobody handles would fail this test (and end a Deno process).
  await new Promise((r) => setTimeout(r, 10));
});
