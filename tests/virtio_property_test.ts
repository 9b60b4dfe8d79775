/**
 * Virtqueue property test: a driver model writes random chains (direct and indirect, readable then
 * writable buffers), publishes them in random batches from a random ring position, and the device
 * side pops and completes them in random order. After every step the popped chains must equal what
 * the driver wrote, the used ring must hold exactly the completions in order, and the rings'
 * indices must agree. Also: resolving misses through `retryTranslations`.
 *
 * The seed is fixed (override with GMEM_VIRTIO_PROP_SEED, runs with GMEM_VIRTIO_PROP_RUNS).
 * @module
 */

import fc from "fast-check";
import assert from "node:assert/strict";
import { GuestMemoryMmap, Permissions } from "../mod.ts";
import { IommuMemory, IotlbIommu } from "../iommu.ts";
import { type DescriptorChain, retryTranslations, SplitQueue, VirtqueueError } from "../vhost_user.ts";
import { type DriverBuffer, TestDriver } from "./fixtures/virtio_driver.ts";

const SEED = Number(Deno.env.get("GMEM_VIRTIO_PROP_SEED") ?? 0x71a7);
const RUNS = Number(Deno.env.get("GMEM_VIRTIO_PROP_RUNS") ?? 200);

type Op =
  | { kind: "offer"; buffers: { len: number; write: boolean }[]; indirect: boolean }
  | { kind: "publish" }
  | { kind: "pop" }
  | { kind: "complete"; pick: number; fraction: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant("offer" as const),
    buffers: fc.array(fc.record({ len: fc.integer({ min: 0, max: 300 }), write: fc.boolean() }), {
      minLength: 1,
      maxLength: 5,
    }),
    indirect: fc.boolean(),
  }),
  fc.constant({ kind: "publish" as const }),
  fc.constant({ kind: "pop" as const }),
  fc.record({
    kind: fc.constant("complete" as const),
    pick: fc.nat(),
    fraction: fc.double({ min: 0, max: 1, noNaN: true }),
  }),
);

interface Offered {
  head: number;
  slots: number[];
  buffers: DriverBuffer[];
}

Deno.test("virtqueue property: random chains pop as written and complete into the used ring in order", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(4, 8, 16),
      fc.boolean(),
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 1, max: 16 }),
      fc.array(opArb, { maxLength: 120 }),
      (size, eventIdx, start, inFlightWish, ops) => {
        using mem = GuestMemoryMmap.fromRanges([[0, 0x100000]]);
        const layout = { size, desc: 0x1000, avail: 0x2000, used: 0x3000 };
        const driver = new TestDriver(mem, layout);
        driver.startAt(start);
        const maxInFlight = Math.min(inFlightWish, size);
        const queue = new SplitQueue(mem, { ...layout, eventIdx, indirect: true, nextAvail: start, maxInFlight });
        const free = Array.from({ length: size }, (_, i) => i);
        const offered: Offered[] = []; // offered, not yet published
        const published: Offered[] = []; // published, not yet popped
        const out: { chain: DescriptorChain; offer: Offered }[] = [];
        const usedExpected: { id: number; len: number }[] = [];
        let nextData = 0x10000;
        let popped = 0;
        for (const op of ops) {
          if (op.kind === "offer") {
            const buffers: DriverBuffer[] = [...op.buffers]
              .sort((a, b) => Number(a.write) - Number(b.write))
              .map((b) => {
                const addr = nextData;
                nextData = nextData + b.len + 16 > 0xf0000 ? 0x10000 : nextData + b.len + 16;
                return { addr, len: b.len, write: b.write };
              });
            const indirect = op.indirect && buffers.length <= size; // a longer table is a driver bug
            const need = indirect ? 1 : buffers.length;
            if (free.length < need) continue;
            const slots = free.splice(0, need);
            let head: number;
            if (indirect) {
              head = slots[0];
              const table = 0x8000 + head * 0x100;
              buffers.forEach((b, k) =>
                driver.writeDescriptor(
                  table,
                  k,
                  b.addr,
                  b.len,
                  (k < buffers.length - 1 ? 1 : 0) | (b.write ? 2 : 0),
                  k + 1,
                )
              );
              driver.writeDescriptor(layout.desc, head, table, 16 * buffers.length, 4, 0);
            } else {
              head = slots[0];
              slots.forEach((slot, k) => {
                const b = buffers[k];
                const last = k === slots.length - 1;
                driver.writeDescriptor(
                  layout.desc,
                  slot,
                  b.addr,
                  b.len,
                  (last ? 0 : 1) | (b.write ? 2 : 0),
                  last ? 0 : slots[k + 1],
                );
              });
            }
            const o = { head, slots, buffers };
            driver.offer(head);
            offered.push(o);
          } else if (op.kind === "publish") {
            driver.publish();
            published.push(...offered.splice(0));
          } else if (op.kind === "pop") {
            const chain = queue.pop();
            if (published.length === 0 || out.length === maxInFlight) {
              assert.equal(chain, null);
              continue;
            }
            const want = published.shift()!;
            assert.ok(chain, "a published chain pops");
            assert.equal(chain.head, want.head);
            assert.deepEqual(
              chain.toJSON().buffers,
              want.buffers.map((b) => ({ addr: `0x${b.addr.toString(16)}`, len: b.len, writable: b.write })),
            );
            out.push({ chain, offer: want });
            popped++;
          } else {
            if (out.length === 0) continue;
            const [{ chain, offer }] = out.splice(op.pick % out.length, 1);
            const written = Math.floor(op.fraction * chain.writableLength);
            queue.addUsed(chain, written);
            usedExpected.push({ id: offer.head, len: written });
            free.push(...offer.slots);
          }
          assert.deepEqual(driver.takeUsed(), usedExpected.splice(0));
          assert.equal(queue.inFlight, out.length);
          assert.equal(queue.nextAvail, (start + popped) & 0xffff);
          assert.equal(driver.usedIdx(), queue.nextUsed);
        }
        assert.equal(queue.broken, undefined);
      },
    ),
    { seed: SEED, numRuns: RUNS },
  );
});

Deno.test("virtqueue: retryTranslations asks once per missing page and pops once the answers are in", async () => {
  using ram = GuestMemoryMmap.fromRanges([[0, 0x100000]]);
  const iommu = new IotlbIommu();
  const mem = new IommuMemory(ram, iommu);
  const layout = { size: 8, desc: 0x1000, avail: 0x2000, used: 0x3000 };
  const driver = new TestDriver(ram, layout);
  const queue = new SplitQueue(mem, layout);
  // The driver's IOVAs are its physical addresses + 0x1000000; nothing is mapped yet.
  const IOVA = 0x1000000;
  const q2 = new SplitQueue(mem, { size: 8, desc: IOVA + 0x1000, avail: IOVA + 0x2000, used: IOVA + 0x3000 });
  driver.submit(driver.addChain([
    { addr: IOVA + 0x10000, len: 16, write: false },
    { addr: IOVA + 0x20000, len: 0x2000, write: true },
  ]));
  const asked: string[] = [];
  const resolver = (w: { addr: bigint; length: number; access: number }) => {
    asked.push(`${w.addr.toString(16)}+${w.length}/${w.access}`);
    const page = w.addr & ~0xfffn;
    iommu.iotlb.setMapping(page, page - BigInt(IOVA), 0x1000, Permissions.ReadWrite);
    return Promise.resolve();
  };
  const chain = await retryTranslations(q2, () => q2.pop(), resolver);
  assert.ok(chain);
  assert.deepEqual(asked, [
    "1002002+2/1", // the available index (the ring entry is on the same page then)
    "1001000+4/1", // descriptor 0
    "1010000+16/1", // the readable buffer
    "1020000+8192/2", // the writable buffer: both pages missing, asked from the first
    "1021000+4096/2", // its second page, which the answer to the first did not cover
  ]);
  assert.equal(queue.broken, undefined);
  await retryTranslations(q2, () => q2.addUsed(chain, 0), resolver);
  assert.deepEqual(driver.takeUsed(), [{ id: 0, len: 0 }]);
});

Deno.test("virtqueue: a translation the resolver refuses breaks the queue with the resolver's fault", async () => {
  using ram = GuestMemoryMmap.fromRanges([[0, 0x100000]]);
  const iommu = new IotlbIommu();
  const mem = new IommuMemory(ram, iommu);
  const layout = { size: 8, desc: 0x1000, avail: 0x2000, used: 0x3000 };
  iommu.iotlb.setMapping(0x1000, 0x1000, 0x3000, Permissions.ReadWrite);
  iommu.iotlb.setMapping(0x20000, 0x20000, 0x1000, Permissions.Read); // the guest mapped it read-only
  const driver = new TestDriver(ram, layout);
  const queue = new SplitQueue(mem, layout);
  driver.submit(driver.addChain([{ addr: 0x20000, len: 64, write: true }]));
  await assert.rejects(
    retryTranslations(queue, () => queue.pop(), (w) => {
      const r = iommu.iotlb.lookup(w.addr, w.length, w.access as 1 | 2);
      if (!r.ok && r.accessFails.length > 0) {
        return Promise.reject(new VirtqueueError("test", 0, "Permission", "the mapping denies the write"));
      }
      return Promise.resolve();
    }),
    (e) => {
      assert.ok(e instanceof VirtqueueError);
      assert.equal(e.fault, "Permission");
      assert.deepEqual(e.where, { addr: 0x20000n, length: 64, access: 2 });
      return true;
    },
  );
  assert.equal(queue.broken?.fault, "Permission");
  assert.equal(queue.nextAvail, 0, "the refused chain was never followed");
  // A resolver that answers without covering the range: refused on the second try, not looped on.
  const q2 = new SplitQueue(mem, { ...layout, index: 1 });
  let calls = 0;
  await assert.rejects(
    retryTranslations(q2, () => q2.pop(), () => {
      calls++;
      return Promise.resolve();
    }),
    (e) =>
      e instanceof VirtqueueError && e.fault === "Translation" &&
      /the front-end's answer did not cover it/.test(e.message),
  );
  assert.equal(calls, 1);
});

Deno.test("virtqueue: 10,000 chains of queue-size buffers pass through the same two chain slots (memory fixed by the size)", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x100000]]);
  const size = 64;
  const layout = { size, desc: 0x1000, avail: 0x2000, used: 0x3000 };
  const queue = new SplitQueue(mem, { ...layout, indirect: true, maxInFlight: 2 });
  // One head per ring slot, each an indirect table of `size` buffers (the longest chain allowed).
  for (let h = 0; h < size; h++) {
    const table = 0x10000 + h * 16 * size;
    for (let k = 0; k < size; k++) {
      mem.writeU64(table + 16 * k, BigInt(0x80000 + k));
      mem.writeU32(table + 16 * k + 8, 1);
      mem.writeU16(table + 16 * k + 12, k < size - 1 ? 1 : 0);
      mem.writeU16(table + 16 * k + 14, k + 1);
    }
    mem.writeU64(layout.desc + 16 * h, BigInt(table));
    mem.writeU32(layout.desc + 16 * h + 8, 16 * size);
    mem.writeU16(layout.desc + 16 * h + 12, 4);
    mem.writeU16(layout.avail + 4 + 2 * h, h);
  }
  const seen = new Set<object>();
  let avail = 0;
  for (let i = 0; i < 10_000; i += 2) {
    if (((avail - queue.nextAvail) & 0xffff) < 2) mem.storeU16(layout.avail + 2, avail = (avail + size) & 0xffff);
    const a = queue.pop()!, b = queue.pop()!;
    assert.equal(queue.pop(), null, "a third chain waits for a free slot");
    assert.equal(a.count, size);
    seen.add(a).add(b);
    queue.addUsed(b, 0);
    queue.addUsed(a, 0);
  }
  assert.equal(seen.size, 2, "no chain storage was made after the queue was");
  assert.equal(queue.inFlight, 0);
  assert.equal(queue.broken, undefined);
});
