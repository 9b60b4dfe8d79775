/**
 * The split virtqueue, device side (src/virtio/): chains as the driver wrote them, completion and
 * notification fields, and a hostile driver's rings refused with the queue marked broken.
 * @module
 */

import assert from "node:assert/strict";
import { GuestMemoryMmap, Permissions } from "../mod.ts";
import { IommuMemory, IotlbIommu } from "../iommu.ts";
import { SplitQueue, VirtqueueError, type VirtqueueFault } from "../vhost_user.ts";
import { type DriverBuffer, TestDriver } from "./fixtures/virtio_driver.ts";

const LAYOUT = { size: 8, desc: 0x1000, avail: 0x2000, used: 0x3000 };

function setup(options: { size?: number; eventIdx?: boolean; indirect?: boolean; maxInFlight?: number } = {}) {
  const mem = GuestMemoryMmap.fromRanges([[0, 0x100000]]);
  const layout = { ...LAYOUT, size: options.size ?? LAYOUT.size };
  const driver = new TestDriver(mem, layout);
  const queue = new SplitQueue(mem, { ...layout, ...options });
  return { mem, driver, queue, [Symbol.dispose]: () => mem.close() };
}

/** Asserts that `f` throws a VirtqueueError with `fault`, and returns it. */
function refused(f: () => unknown, fault: VirtqueueFault, message?: RegExp): VirtqueueError {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof VirtqueueError, `expected VirtqueueError ${fault}, got ${caught}`);
  assert.equal(caught.fault, fault, caught.message);
  assert.equal(caught.kind, "Virtqueue");
  if (message) assert.match(caught.message, message);
  return caught;
}

const BLK_READ: DriverBuffer[] = [
  { addr: 0x10000, len: 16, write: false },
  { addr: 0x20000, len: 4096, write: true },
  { addr: 0x30000, len: 1, write: true },
];

Deno.test("virtqueue: a direct chain pops with its buffers in order, readable first, and completes into the used ring", () => {
  using s = setup();
  const head = s.driver.addChain(BLK_READ);
  s.driver.submit(head);
  const chain = s.queue.pop();
  assert.ok(chain);
  assert.deepEqual(chain.toJSON(), {
    head: 0,
    buffers: [
      { addr: "0x10000", len: 16, writable: false },
      { addr: "0x20000", len: 4096, writable: true },
      { addr: "0x30000", len: 1, writable: true },
    ],
  });
  assert.equal(chain.readableCount, 1);
  assert.equal(chain.readableLength, 16);
  assert.equal(chain.writableLength, 4097);
  assert.equal(s.queue.nextAvail, 1);
  assert.equal(s.queue.inFlight, 1);
  assert.equal(s.queue.pop(), null, "nothing more is available");
  s.queue.addUsed(chain, 4097);
  assert.deepEqual(s.driver.takeUsed(), [{ id: 0, len: 4097 }]);
  assert.equal(s.driver.usedIdx(), 1);
  assert.equal(s.queue.nextUsed, 1);
  assert.equal(s.queue.inFlight, 0);
});

Deno.test("virtqueue: readFrom and writeTo move bytes across buffer boundaries of their own part only", () => {
  using s = setup();
  const head = s.driver.addChain([
    { addr: 0x10000, len: 3, write: false },
    { addr: 0x10100, len: 5, write: false },
    { addr: 0x20000, len: 2, write: true },
    { addr: 0x20100, len: 4, write: true },
  ]);
  s.mem.write(new Uint8Array([1, 2, 3]), 0x10000);
  s.mem.write(new Uint8Array([4, 5, 6, 7, 8]), 0x10100);
  s.driver.submit(head);
  const chain = s.queue.pop()!;
  const got = new Uint8Array(6);
  assert.equal(chain.readFrom(1, got), 6);
  assert.deepEqual([...got], [2, 3, 4, 5, 6, 7]);
  assert.equal(chain.readFrom(6, new Uint8Array(8)), 2, "the readable part ends after 8 bytes");
  assert.equal(chain.writeTo(1, new Uint8Array([9, 9, 9, 9, 9, 9])), 5, "5 writable bytes from offset 1");
  assert.deepEqual([...s.mem.getSlice(0x20000, 2).bytes()], [0, 9]);
  assert.deepEqual([...s.mem.getSlice(0x20100, 4).bytes()], [9, 9, 9, 9]);
  assert.deepEqual([...s.mem.getSlice(0x10000, 3).bytes()], [1, 2, 3], "the readable part is untouched");
  const slices = chain.slices(true, 1, 4);
  assert.deepEqual(slices.map((x) => [x.len]), [[1], [3]]);
});

Deno.test("virtqueue: an indirect chain pops its table's buffers; without INDIRECT_DESC it breaks the queue", () => {
  {
    using s = setup({ indirect: true });
    const head = s.driver.addIndirectChain(0x8000, BLK_READ);
    s.driver.submit(head);
    const chain = s.queue.pop()!;
    assert.deepEqual(chain.toJSON().buffers.map((b) => [b.addr, b.len, b.writable]), [
      ["0x10000", 16, false],
      ["0x20000", 4096, true],
      ["0x30000", 1, true],
    ]);
    assert.equal(chain.head, head);
  }
  using s = setup({ indirect: false });
  s.driver.submit(s.driver.addIndirectChain(0x8000, BLK_READ));
  refused(
    () => s.queue.pop(),
    "IndirectNotNegotiated",
    /descriptor 0 is an indirect table, but INDIRECT_DESC was not negotiated/,
  );
  assert.equal(s.queue.broken?.fault, "IndirectNotNegotiated");
  assert.equal(s.queue.nextAvail, 0, "nothing was consumed");
});

Deno.test("virtqueue: a descriptor loop is refused, the queue is broken and stays broken", () => {
  using s = setup();
  s.driver.writeDescriptor(LAYOUT.desc, 0, 0x10000, 16, 1, 1);
  s.driver.writeDescriptor(LAYOUT.desc, 1, 0x10010, 16, 1, 0); // back to 0
  s.driver.submit(0);
  const e = refused(() => s.queue.pop(), "DescriptorLoop", /queue 0: descriptor 0 comes twice in the chain of 0/);
  assert.equal(e.op, "SplitQueue.pop");
  assert.equal(e.retryable, false);
  assert.equal(s.queue.broken, e);
  assert.equal(s.queue.nextAvail, 0);
  const again = refused(() => s.queue.pop(), "Broken", /the queue is broken since: .*comes twice/);
  assert.equal(again.cause, e);
});

Deno.test("virtqueue: a loop inside an indirect table is refused as a loop", () => {
  using s = setup({ indirect: true });
  s.driver.writeDescriptor(0x8000, 0, 0x10000, 16, 1, 1);
  s.driver.writeDescriptor(0x8000, 1, 0x10010, 16, 1, 0);
  s.driver.writeDescriptor(LAYOUT.desc, 0, 0x8000, 32, 4, 0);
  s.driver.submit(0);
  refused(() => s.queue.pop(), "DescriptorLoop", /descriptor 0 of the indirect table comes twice/);
});

Deno.test("virtqueue: a chain longer than the queue (direct prefix plus indirect table) is refused", () => {
  using s = setup({ indirect: true, size: 4 });
  // Two direct buffers, then a table of 4: 6 buffers in a queue of 4.
  for (let k = 0; k < 4; k++) s.driver.writeDescriptor(0x8000, k, 0x10000 + 0x100 * k, 8, k < 3 ? 1 : 0, k + 1);
  s.driver.writeDescriptor(LAYOUT.desc, 0, 0x11000, 8, 1, 1);
  s.driver.writeDescriptor(LAYOUT.desc, 1, 0x11100, 8, 1, 2);
  s.driver.writeDescriptor(LAYOUT.desc, 2, 0x8000, 64, 4, 0);
  s.driver.submit(0);
  refused(() => s.queue.pop(), "ChainTooLong", /the chain of 0 has more than 4 buffers/);
});

Deno.test("virtqueue: indirect tables of a bad length, with NEXT, or nested are refused", () => {
  const cases: [number, number, VirtqueueFault, RegExp][] = [
    [24, 4, "IndirectTable", /is 24 bytes, not 1 to 8 descriptors/],
    [0, 4, "IndirectTable", /is 0 bytes/],
    [16 * 9, 4, "IndirectTable", /is 144 bytes/],
    [32, 4 | 1, "IndirectTable", /indirect table and has NEXT too/],
  ];
  for (const [len, flags, fault, message] of cases) {
    using s = setup({ indirect: true });
    s.driver.writeDescriptor(LAYOUT.desc, 0, 0x8000, len, flags, 1);
    s.driver.submit(0);
    refused(() => s.queue.pop(), fault, message);
  }
  using s = setup({ indirect: true });
  s.driver.writeDescriptor(0x8000, 0, 0x9000, 16, 4, 0);
  s.driver.writeDescriptor(LAYOUT.desc, 0, 0x8000, 16, 4, 0);
  s.driver.submit(0);
  refused(() => s.queue.pop(), "NestedIndirect", /descriptor 0 of an indirect table is an indirect table itself/);
});

Deno.test("virtqueue: indices past the ring are refused: available index, head and next", () => {
  {
    using s = setup();
    s.driver.setAvailIdx(9); // 9 entries ahead of 0 in a queue of 8
    refused(
      () => s.queue.pop(),
      "AvailIndex",
      /available index 9 is 9 entries past the device's 0, more than the size 8/,
    );
  }
  {
    using s = setup();
    s.driver.submit(8);
    refused(() => s.queue.pop(), "HeadIndex", /available entry 0 names descriptor 8, past the table of 8/);
  }
  using s = setup();
  s.driver.writeDescriptor(LAYOUT.desc, 0, 0x10000, 16, 1, 8);
  s.driver.submit(0);
  refused(() => s.queue.pop(), "NextIndex", /descriptor 0 goes on at 8, past the table of 8/);
});

Deno.test("virtqueue: lengths that wrap past 2^64 or make a part of 2^32 bytes are refused", () => {
  {
    using s = setup();
    s.driver.writeDescriptor(LAYOUT.desc, 0, 0xffff_ffff_ffff_f000n, 0x2000, 0, 0);
    s.driver.submit(0);
    const e = refused(() => s.queue.pop(), "LengthOverflow", /8192 bytes at 0xfffffffffffff000 run past 2\^64/);
    assert.deepEqual(e.where, { addr: 0xffff_ffff_ffff_f000n, length: 0x2000, access: 1 });
  }
  using s = setup();
  s.driver.writeDescriptor(LAYOUT.desc, 0, 0x10000, 0xffff_ffff, 3, 1);
  s.driver.writeDescriptor(LAYOUT.desc, 1, 0x10000, 1, 2, 0);
  s.driver.submit(0);
  refused(() => s.queue.pop(), "LengthOverflow", /the writable part of the chain of 0 is 2\^32 bytes or longer/);
});

Deno.test("virtqueue: a buffer outside guest memory is refused before the device touches it", () => {
  using s = setup();
  s.driver.submit(
    s.driver.addChain([{ addr: 0x10000, len: 16, write: false }, { addr: 0x200000, len: 512, write: true }]),
  );
  const e = refused(() => s.queue.pop(), "Memory", /the write of 512 bytes at 0x200000 is outside guest memory/);
  assert.deepEqual(e.where, { addr: 0x200000n, length: 512, access: 2 });
  // The same chain straddling the end of memory.
  using t = setup();
  t.driver.submit(t.driver.addChain([{ addr: 0xff000, len: 0x2000, write: true }]));
  refused(() => t.queue.pop(), "Memory", /8192 bytes at 0xff000 are not all guest memory/);
});

Deno.test("virtqueue: a readable buffer after a writable one is refused", () => {
  using s = setup();
  s.driver.submit(s.driver.addChain([{ addr: 0x20000, len: 8, write: true }, { addr: 0x10000, len: 8, write: false }]));
  refused(
    () => s.queue.pop(),
    "ReadableAfterWritable",
    /buffer 1 of the chain of 0 is readable but follows a writable one/,
  );
});

Deno.test("virtqueue: a head made available again while out is refused; chains out are bounded by maxInFlight", () => {
  {
    using s = setup();
    const head = s.driver.addChain(BLK_READ);
    s.driver.submit(head);
    s.driver.submit(head);
    assert.ok(s.queue.pop());
    refused(() => s.queue.pop(), "HeadInFlight", /descriptor 0 was made available again before the device used it/);
  }
  using s = setup({ maxInFlight: 2 });
  for (let k = 0; k < 4; k++) s.driver.submit(s.driver.addChain([{ addr: 0x10000 + 0x100 * k, len: 8, write: true }]));
  const a = s.queue.pop()!, b = s.queue.pop()!;
  assert.equal(s.queue.pop(), null, "both chain slots are out");
  assert.equal(s.queue.inFlight, 2);
  assert.equal(s.queue.nextAvail, 2);
  s.queue.addUsed(b, 8);
  const c = s.queue.pop()!;
  assert.equal(c.head, 2);
  s.queue.drop(a);
  s.queue.addUsed(c, 0);
  assert.deepEqual(s.driver.takeUsed(), [{ id: 1, len: 8 }, { id: 2, len: 0 }]);
  assert.throws(() => s.queue.addUsed(c, 0), (e) => e instanceof VirtqueueError && e.fault === "UnknownHead");
});

Deno.test("virtqueue: queue size and ring alignment are checked when the queue is made", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const make = (size: number, desc: number, avail: number, used: number) => () =>
    new SplitQueue(mem, { size, desc, avail, used, index: 3 });
  refused(make(6, 0, 0x1000, 0x2000), "QueueSize", /queue 3: size 6 is not a power of two from 1 to 32768/);
  refused(make(65536, 0, 0x1000, 0x2000), "QueueSize");
  refused(make(0, 0, 0x1000, 0x2000), "QueueSize");
  refused(make(8, 8, 0x1000, 0x2000), "Misaligned", /the descriptor table at 0x8 is not 16-byte aligned/);
  refused(make(8, 0, 0x1001, 0x2000), "Misaligned", /the available ring at 0x1001 is not 2-byte aligned/);
  refused(make(8, 0, 0x1000, 0x2002), "Misaligned", /the used ring at 0x2002 is not 4-byte aligned/);
  assert.equal(new SplitQueue(mem, { size: 32768, desc: 0, avail: 0, used: 0 }).size, 32768);
});

Deno.test("virtqueue: without EVENT_IDX the driver's NO_INTERRUPT flag and the device's NO_NOTIFY flag decide", () => {
  using s = setup();
  s.queue.disableNotification();
  assert.equal(s.driver.usedFlags(), 1);
  s.driver.submit(s.driver.addChain([{ addr: 0x20000, len: 8, write: true }]));
  assert.equal(s.queue.enableNotification(), true, "a chain arrived: go on instead of waiting");
  assert.equal(s.driver.usedFlags(), 0);
  const c = s.queue.pop()!;
  assert.equal(s.queue.enableNotification(), false);
  s.queue.addUsed(c, 8);
  assert.equal(s.queue.needsNotification(), true);
  s.driver.setAvailFlags(1);
  assert.equal(s.queue.needsNotification(), false);
});

Deno.test("virtqueue: with EVENT_IDX, interrupts follow used_event and kicks are asked for at avail_event", () => {
  using s = setup({ eventIdx: true });
  for (let k = 0; k < 3; k++) s.driver.offer(s.driver.addChain([{ addr: 0x20000 + 0x100 * k, len: 8, write: true }]));
  s.driver.publish();
  s.driver.setUsedEvent(1); // interrupt once used passes index 1
  const chains = [s.queue.pop()!, s.queue.pop()!, s.queue.pop()!];
  s.queue.addUsed(chains[0], 1);
  assert.equal(s.queue.needsNotification(), true, "the first check always notifies");
  s.queue.addUsed(chains[1], 1);
  assert.equal(s.queue.needsNotification(), true, "used went 1 -> 2, past used_event 1");
  s.queue.addUsed(chains[2], 1);
  assert.equal(s.queue.needsNotification(), false, "used went 2 -> 3, used_event 1 was already passed");
  assert.equal(s.queue.needsNotification(), false, "nothing new");
  assert.equal(s.queue.enableNotification(), false);
  assert.equal(s.driver.availEvent(), 3, "kick when the driver makes entry 3 available");
  assert.equal(s.driver.usedFlags(), 0, "no flag is used with EVENT_IDX");
});

Deno.test("virtqueue: ring indices wrap at 2^16 from a vring base near the end", () => {
  using s = setup();
  const mem = s.mem;
  const q = new SplitQueue(mem, { ...LAYOUT, nextAvail: 0xfffe });
  const d = new TestDriver(mem, LAYOUT);
  d.setAvailIdx(0xfffe);
  for (let k = 0; k < 4; k++) d.submit(d.addChain([{ addr: 0x20000 + 0x100 * k, len: 4, write: true }]));
  const heads = [];
  for (let c = q.pop(); c !== null; c = q.pop()) {
    heads.push(c.head);
    q.addUsed(c, 4);
  }
  assert.deepEqual(heads, [0, 1, 2, 3]);
  assert.equal(q.nextAvail, 2);
  assert.equal(q.nextUsed, 2);
  assert.equal(d.usedIdx(), 2);
});

Deno.test("virtqueue: behind an IOMMU, a missing translation is retryable and consumes nothing; a mapping makes it pop", () => {
  using ram = GuestMemoryMmap.fromRanges([[0, 0x100000]]);
  const iommu = new IotlbIommu();
  const mem = new IommuMemory(ram, iommu);
  // Rings identity-mapped; the data page is not mapped yet.
  iommu.iotlb.setMapping(0x1000, 0x1000, 0x3000, Permissions.ReadWrite);
  const driver = new TestDriver(ram, LAYOUT);
  const q = new SplitQueue(mem, LAYOUT);
  driver.submit(driver.addChain([{ addr: 0xabc000, len: 512, write: true }]));
  const e = refused(() => q.pop(), "Translation", /the IOMMU does not translate the write of 512 bytes at 0xabc000/);
  assert.equal(e.retryable, true);
  assert.deepEqual(e.where, { addr: 0xabc000n, length: 512, access: 2 });
  assert.equal(q.broken, undefined, "a miss does not break the queue");
  assert.equal(q.nextAvail, 0);
  iommu.iotlb.setMapping(0xabc000, 0x40000, 0x1000, Permissions.Write);
  const chain = q.pop()!;
  chain.writeTo(0, new Uint8Array([0x5a]));
  assert.equal(ram.readU8(0x40000), 0x5a, "the write went to the guest physical page the IOVA maps to");
  q.addUsed(chain, 1);
  assert.deepEqual(driver.takeUsed(), [{ id: 0, len: 1 }]);
});

Deno.test("virtqueue: readU32 reads a field across a buffer boundary; writeU8 writes the last writable byte", () => {
  using s = setup();
  s.driver.submit(s.driver.addChain([
    { addr: 0x10000, len: 6, write: false },
    { addr: 0x10100, len: 10, write: false },
    { addr: 0x20000, len: 3, write: true },
  ]));
  s.mem.write(new Uint8Array([1, 2, 3, 4, 0x11, 0x22]), 0x10000);
  s.mem.write(new Uint8Array([0x33, 0x44, 5, 6]), 0x10100);
  const chain = s.queue.pop()!;
  assert.equal(chain.readU32(0), 0x04030201);
  assert.equal(chain.readU32(4), 0x44332211, "two bytes in each buffer");
  assert.equal(chain.readU32(12), 0);
  assert.throws(() => chain.readU32(13), /DescriptorChain.readU32: offset must leave 4 bytes in the 16-byte part/);
  chain.writeU8(2, 0x7f);
  assert.equal(s.mem.readU8(0x20002), 0x7f);
  assert.throws(() => chain.writeU8(3, 0), /offset must leave 1 bytes in the 3-byte part/);
});
