/**
 * Concurrency: workers sharing one guest memory (`toShared`/`fromShared`), and translation staying
 * consistent while the IOTLB changes.
 *
 * Guest memory is shared by every isolate that maps it; only the scalar atomics (`load*`, `store*`,
 * `add*`, `or*`, `compareExchange*`, naturally aligned) are atomic across them. The IOTLB lives in one
 * isolate and is changed only there, so no lookup ever runs while it changes; what can interleave is
 * an `await`. The rules that keep translation consistent across those points:
 * - a lookup returns a snapshot (fresh range objects the IOTLB never mutates afterwards);
 * - a slice handed out by `IommuMemory` is checked lazily, at its next use, against the IOTLB's
 *   generation: if its range was invalidated or remapped since, every use throws `SliceRevokedError`;
 * - other isolates change translation by sending messages to the IOTLB's owner.
 * @module
 */

import assert from "node:assert/strict";
import { type AtomicBitmap, GuestMemoryMmap, Permissions, type VolatileSlice } from "../mod.ts";
import { CannotResolveError, IommuMemory, Iotlb, IotlbIommu, type IovaRange, SliceRevokedError } from "../iommu.ts";
import { CELLS, hammer, type HammerJob, slotByte } from "./fixtures/concurrency_hammer.ts";
import { type FrontendJob, type FrontendRequest, roundByte } from "./fixtures/concurrency_frontend.ts";

const PAGE = 4096;
const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

function worker(name: string): Worker {
  return new Worker(new URL(`./fixtures/${name}`, import.meta.url).href, { type: "module" });
}

Deno.test("concurrency: three workers and the main thread race atomics and bulk copies on shared pages; totals and bytes are exact", async () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x2000], [0x2000, 0x4000]], { dirtyPageSize: PAGE });
  const participants = 4, rounds = 20_000;
  const workers = [1, 2, 3].map(() => worker("concurrency_hammer.ts"));
  try {
    const done = workers.map((w) =>
      new Promise<string>((resolve, reject) => {
        w.onmessage = (e: MessageEvent<string>) => resolve(e.data);
        w.onerror = (e) => reject(e);
      })
    );
    workers.forEach((w, i) => {
      const job: HammerJob = { shared: mem.toShared(), id: i + 1, participants, rounds };
      w.postMessage(job);
    });
    while ([1, 2, 3].some((id) => mem.loadU32(CELLS.ready + 4 * id) === 0)) await tick();
    mem.storeU32(CELLS.start, 1);
    hammer(mem, { id: 0, participants, rounds });
    assert.deepEqual(await Promise.all(done), ["done", "done", "done"]);

    assert.equal(mem.readU32(CELLS.adds32), participants * rounds);
    assert.equal(mem.readU64(CELLS.adds64), BigInt(rounds * (1 + 2 + 3 + 4)));
    assert.equal(mem.readU64(CELLS.cas64), BigInt(3 * participants * rounds));
    assert.equal(mem.readU32(CELLS.bits), 0b1111);
    // Every slot holds its owner's last pattern, and every owner's copy of its slots matches.
    const lastRound = rounds - 1 - ((rounds - 1) % 8);
    for (let k = 0; k < CELLS.slotCount; k++) {
      const id = k % participants;
      const got = new Uint8Array(64);
      mem.readSlice(got, CELLS.slots + 64 * k);
      assert.deepEqual(got, new Uint8Array(64).map((_, i) => slotByte(id, lastRound, i)), `slot ${k}`);
      const copy = new Uint8Array(64);
      mem.readSlice(copy, CELLS.copies + id * 0x400 + 64 * Math.floor(k / participants));
      assert.deepEqual(copy, got, `participant ${id}'s copy of slot ${k}`);
    }
    // Cells and slots (pages 0 and 1 of region 0), the CAS cell and the copies (pages 0 and 1 of
    // region 1): exactly the pages written, by whichever isolate wrote them.
    const [low, high] = mem.regions().map((r) => r.bitmap as AtomicBitmap);
    assert.deepEqual(low.dirtyRuns(), [[0, 0x2000]]);
    assert.deepEqual(high.dirtyRuns(), [[0, 0x2000]]);
  } finally {
    for (const w of workers) w.terminate();
  }
});

Deno.test("concurrency: a lookup is a snapshot; later updates and lookups change neither its ranges nor their objects", () => {
  const iotlb = new Iotlb();
  iotlb.setMapping(0x1000, 0x8000, 0x1000, Permissions.ReadWrite);
  iotlb.setMapping(0x2000, 0x20000, 0x1000, Permissions.ReadWrite);
  const one = iotlb.lookup(0x1800, 0x100, Permissions.Read); // inside one entry
  const two = iotlb.lookup(0x1800, 0x1000, Permissions.Read); // across two
  assert.ok(one.ok && two.ok);
  const copies = structuredClone([one.ranges, two.ranges]);
  assert.deepEqual(copies, [[{ base: 0x8800n, length: 0x100 }], [{ base: 0x8800n, length: 0x800 }, {
    base: 0x20000n,
    length: 0x800,
  }]]);
  iotlb.setMapping(0x1000, 0x40000, 0x1000, Permissions.Read);
  iotlb.invalidate(0x2400, 0x100);
  // Other translations meanwhile, through both paths of the lookup.
  const later = [iotlb.lookup(0x1800, 0x100, Permissions.Read), iotlb.lookup(0x1f00, 0x200, Permissions.Read)];
  assert.deepEqual(later.map((l) => l.ok && l.ranges), [[{ base: 0x40800n, length: 0x100 }], [
    { base: 0x40f00n, length: 0x100 },
    { base: 0x20000n, length: 0x100 },
  ]]);
  iotlb.invalidateAll();
  assert.deepEqual([one.ranges, two.ranges], copies);
});

Deno.test("concurrency: an async updater remapping a window between two buffers and an async translator interleave; every access sees the mapping of its moment", async () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const iotlb = new Iotlb();
  const iommu = new IommuMemory(mem, new IotlbIommu(iotlb));
  const window = 0x100000, size = 0x800, buffers = [0x2000, 0x6000];
  mem.writeSlice(new Uint8Array(size).fill(0xa0), buffers[0]);
  mem.writeSlice(new Uint8Array(size).fill(0xb1), buffers[1]);
  let current = -1; // which buffer the window maps, as the updater last set it (-1: unmapped)
  let stop = false;
  const updater = (async () => {
    for (let step = 0; step < 400; step++) {
      const phase = step >> 2;
      if (step % 4 === 0) {
        // A new mapping every fourth step: buffer 0, buffer 1, ..., unmapped every fifth phase.
        const next = phase % 5 === 4 ? -1 : phase % 2;
        if (next < 0) iotlb.invalidate(window, size);
        else iotlb.setMapping(window, buffers[next], size, Permissions.ReadWrite);
        current = next;
      } else if (step % 4 === 2 && current >= 0) {
        // The same mapping again: the IOTLB changed, the translation did not; slices stay valid.
        iotlb.setMapping(window, buffers[current], size, Permissions.ReadWrite);
      }
      await tick();
    }
    stop = true;
  })();
  const seen = { reads: 0, refused: 0, revoked: 0, heldUsed: 0 };
  const translator = (async () => {
    let held: { slice: VolatileSlice; buffer: number } | undefined;
    while (!stop) {
      const buf = new Uint8Array(size);
      try {
        iommu.readSlice(buf, window);
        assert.notEqual(current, -1, "a read succeeded while the window was unmapped");
        assert.ok(buf.every((b) => b === (current === 0 ? 0xa0 : 0xb1)), "a read saw the other buffer");
        seen.reads++;
      } catch (e) {
        assert.ok(e instanceof CannotResolveError, String(e));
        assert.equal(current, -1, "a read failed while the window was mapped");
        seen.refused++;
      }
      if (held !== undefined) {
        try {
          assert.equal(held.slice.readU8(0x10), held.buffer === 0 ? 0xa0 : 0xb1);
          assert.equal(current, held.buffer, "a held slice worked after its window moved");
          seen.heldUsed++;
        } catch (e) {
          assert.ok(e instanceof SliceRevokedError, String(e));
          assert.deepEqual(e.iovaRange, { base: BigInt(window), length: size });
          seen.revoked++;
          held = undefined;
        }
      }
      if (held === undefined && current !== -1) held = { slice: iommu.getSlice(window, size), buffer: current };
      await tick();
    }
  })();
  await Promise.all([updater, translator]);
  assert.ok(seen.reads > 0 && seen.refused > 0 && seen.revoked > 0 && seen.heldUsed > 0, JSON.stringify(seen));
  // The buffers were only ever read: neither lost a byte.
  const a = new Uint8Array(size), b = new Uint8Array(size);
  mem.readSlice(a, buffers[0]);
  mem.readSlice(b, buffers[1]);
  assert.ok(a.every((x) => x === 0xa0) && b.every((x) => x === 0xb1));
});

Deno.test("concurrency: a worker front-end forwards updates and invalidations by postMessage; the owner's translator sees each round's bytes, then a miss, and its held slice revoked", async () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const iotlb = new Iotlb();
  const iommu = new IommuMemory(mem, new IotlbIommu(iotlb));
  const rounds = 40, window = 0x7000_0000, size = 0x300;
  const job: FrontendJob = { shared: mem.toShared(), rounds, window, size, buffers: [0x1000, 0x4000, 0x9000] };
  const front = worker("concurrency_frontend.ts");
  // The translator's view of each round, filled in by the translator loop below.
  const rounds_: Array<{ bytes: boolean; missAfter: boolean; revokedAfter: boolean }> = [];
  let state: { round: number; mapped: boolean } = { round: -1, mapped: false };
  let wake: (() => void) | undefined;
  const observed = () => new Promise<void>((resolve) => (wake = resolve));
  let finished = false;
  const translator = (async () => {
    let held: VolatileSlice | undefined;
    while (!finished) {
      await tick();
      const { round, mapped } = state;
      if (round < 0 || wake === undefined) continue;
      const buf = new Uint8Array(size);
      if (mapped) {
        iommu.readSlice(buf, window);
        rounds_[round] = { bytes: buf.every((b) => b === roundByte(round)), missAfter: false, revokedAfter: false };
        held = iommu.getSlice(window, size);
      } else {
        assert.throws(() => iommu.readSlice(buf, window), CannotResolveError);
        rounds_[round].missAfter = true;
        assert.throws(() => held!.readU8(0), SliceRevokedError);
        assert.throws(() => held!.fill(0), SliceRevokedError);
        rounds_[round].revokedAfter = true;
      }
      const w = wake;
      wake = undefined;
      w();
    }
  })();
  try {
    await new Promise<void>((resolve, reject) => {
      front.onerror = (e) => reject(e);
      front.onmessage = async (e: MessageEvent<FrontendRequest>) => {
        const m = e.data;
        if (m.type === "done") return resolve();
        const seen = observed();
        if (m.type === "update") {
          iotlb.setMapping(m.iova, m.gpa, m.size, Permissions.ReadWrite);
          state = { round: m.round, mapped: true };
        } else {
          iotlb.invalidate(m.iova, m.size);
          state = { round: m.round, mapped: false };
        }
        await seen;
        front.postMessage("ack");
      };
      front.postMessage(job);
    });
  } finally {
    finished = true;
    front.terminate();
    await translator;
  }
  assert.equal(rounds_.length, rounds);
  assert.deepEqual(
    rounds_,
    Array.from({ length: rounds }, () => ({ bytes: true, missAfter: true, revokedAfter: true })),
  );
  assert.deepEqual(iotlb.entries(), []);
});

Deno.test("concurrency: a miss storm of 5,000 concurrent translateAsync calls over 5 missing ranges keeps exactly one request in flight per range", async () => {
  const ranges: IovaRange[] = [0x10000, 0x30000, 0x50000, 0x90000, 0xf0000].map((b) => ({
    base: BigInt(b),
    length: 0x4000,
  }));
  const answers: Array<() => void> = [];
  const asked: IovaRange[] = [];
  const iommu: IotlbIommu = new IotlbIommu(new Iotlb(), {
    asyncMissHandler: (range, access) => {
      asked.push(range);
      return new Promise<void>((resolve) =>
        answers.push(() => {
          iommu.iotlb.setMapping(range.base, range.base + 0x1000_0000n, range.length, access);
          resolve();
        })
      );
    },
  });
  let seed = 7;
  const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
  const calls: Array<Promise<IovaRange[]>> = [];
  const wanted: IovaRange[] = [];
  for (let i = 0; i < 5000; i++) {
    const r = ranges[i < ranges.length ? i : rand(ranges.length)];
    // The first call of each range asks for all of it; the rest ask for pieces inside it.
    const off = i < ranges.length ? 0 : rand(r.length - 1);
    const len = i < ranges.length ? r.length : 1 + rand(r.length - off);
    wanted.push({ base: r.base + BigInt(off), length: len });
    calls.push(iommu.translateAsync(r.base + BigInt(off), len, Permissions.Read));
  }
  await tick();
  assert.equal(iommu.pendingRequests, ranges.length);
  assert.deepEqual(iommu.counters, { asyncRequests: 5, mergedRequests: 4995, timeouts: 0, syncFaults: 0 });
  assert.deepEqual(asked, ranges);
  for (const answer of answers) answer();
  const results = await Promise.all(calls);
  results.forEach((got, i) => {
    assert.deepEqual(got, [{ base: wanted[i].base + 0x1000_0000n, length: wanted[i].length }], `call ${i}`);
  });
  assert.equal(iommu.pendingRequests, 0);
  assert.deepEqual(iommu.counters, { asyncRequests: 5, mergedRequests: 4995, timeouts: 0, syncFaults: 0 });
  // Now everything hits: no new requests.
  await Promise.all(wanted.map((w) => iommu.translateAsync(w.base, w.length, Permissions.Read)));
  assert.equal(iommu.counters.asyncRequests, 5);
});
