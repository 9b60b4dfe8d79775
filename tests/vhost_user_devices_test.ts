/**
 * The two devices (src/tools/vhost_user_blk/, src/tools/vhost_user_rng/) on a real split queue over
 * real guest memory: block requests against a real image file (read, write, flush, get-id, and the
 * ones a device must answer with an error), and entropy from a file and from /dev/urandom.
 * @module
 */

import assert from "node:assert/strict";
import { GuestMemoryMmap } from "../mod.ts";
import { closeIoFile, openIoFile, SplitQueue } from "../vhost_user.ts";
import { BlkDevice } from "../src/tools/vhost_user_blk/blk_device.ts";
import { RngDevice } from "../src/tools/vhost_user_rng/rng_device.ts";
import { type DriverBuffer, TestDriver } from "./fixtures/virtio_driver.ts";

const LAYOUT = { size: 64, desc: 0x1000, avail: 0x2000, used: 0x3000 };
const IMAGE = 64 * 1024;

/** An image file whose byte i is (i * 7 + 3) & 0xff. */
async function imageFile(dir: string): Promise<string> {
  const path = `${dir}/disk.img`;
  await Deno.writeFile(path, Uint8Array.from({ length: IMAGE }, (_, i) => (i * 7 + 3) & 0xff));
  return path;
}

function header(type: number, sector: number): Uint8Array {
  const h = new Uint8Array(16);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, type, true);
  dv.setBigUint64(8, BigInt(sector), true);
  return h;
}

/** A queue over fresh guest memory and a driver of it. */
interface Rig extends Disposable {
  mem: GuestMemoryMmap;
  driver: TestDriver;
  queue: SplitQueue;
  /** Submits a chain, lets the device handle it, completes it; returns the used length. */
  run(
    device: { handle(q: number, c: NonNullable<ReturnType<SplitQueue["pop"]>>): number },
    buffers: DriverBuffer[],
    indirect?: boolean,
  ): number;
}

function rig(): Rig {
  const mem = GuestMemoryMmap.fromRanges([[0, 0x100000]], { dirtyPageSize: 4096 });
  const driver = new TestDriver(mem, LAYOUT);
  const queue = new SplitQueue(mem, { ...LAYOUT, indirect: true });
  let table = 0x8000;
  return {
    mem,
    driver,
    queue,
    run(device, buffers, indirect = false) {
      driver.submit(indirect ? driver.addIndirectChain(table += 0x100, buffers) : driver.addChain(buffers));
      const chain = queue.pop()!;
      const written = device.handle(0, chain);
      queue.addUsed(chain, written);
      const [used] = driver.takeUsed();
      assert.equal(used.len, written);
      return written;
    },
    [Symbol.dispose]: () => mem.close(),
  };
}

Deno.test("vhost-user-blk: a read puts the image's sectors into every fragment with one preadv, status OK", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const image = openIoFile(await imageFile(dir), true);
    const device = new BlkDevice(image);
    using r = rig();
    r.mem.write(header(0, 8), 0x10000);
    const used = r.run(device, [
      { addr: 0x10000, len: 16, write: false },
      { addr: 0x20000, len: 1000, write: true },
      { addr: 0x30000, len: 3096, write: true },
      { addr: 0x40000, len: 1, write: true },
    ]);
    assert.equal(used, 4097);
    const expect = (i: number) => ((8 * 512 + i) * 7 + 3) & 0xff;
    assert.deepEqual([...r.mem.getSlice(0x20000, 1000).bytes()], Array.from({ length: 1000 }, (_, i) => expect(i)));
    assert.deepEqual(
      [...r.mem.getSlice(0x30000, 3096).bytes()],
      Array.from({ length: 3096 }, (_, i) => expect(1000 + i)),
    );
    assert.equal(r.mem.readU8(0x40000), 0, "VIRTIO_BLK_S_OK");
    const bitmap = r.mem.regions()[0].bitmap!;
    assert.deepEqual(
      [0x1f000, 0x20000, 0x21000, 0x30000, 0x31000].map((a) => bitmap.dirtyAt(a)),
      [false, true, false, true, false],
      "the pages the preadv filled are dirty (0x30000 + 3096 ends in its first page)",
    );
    assert.deepEqual(device.counters, {
      reads: 1,
      writes: 0,
      flushes: 0,
      getIds: 0,
      unsupported: 0,
      errors: 0,
      bytesRead: 4096,
      bytesWritten: 0,
    });
    closeIoFile(image.fd);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vhost-user-blk: a write through an indirect table lands in the image at its sector; flush and get-id answer", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = await imageFile(dir);
    const image = openIoFile(path, true);
    const device = new BlkDevice(image, { serial: "disk-0042" });
    using r = rig();
    r.mem.write(header(1, 16), 0x10000);
    r.mem.write(new TextEncoder().encode("A".repeat(512)), 0x20000);
    r.mem.write(new TextEncoder().encode("B".repeat(512)), 0x30000);
    const used = r.run(device, [
      { addr: 0x10000, len: 16, write: false },
      { addr: 0x20000, len: 512, write: false },
      { addr: 0x30000, len: 512, write: false },
      { addr: 0x40000, len: 1, write: true },
    ], true);
    assert.equal(used, 1);
    assert.equal(r.mem.readU8(0x40000), 0);
    const after = await Deno.readFile(path);
    assert.equal(new TextDecoder().decode(after.subarray(16 * 512, 18 * 512)), "A".repeat(512) + "B".repeat(512));
    assert.equal(after[16 * 512 - 1], ((16 * 512 - 1) * 7 + 3) & 0xff, "the byte before is untouched");
    r.mem.write(header(4, 0), 0x10000);
    assert.equal(r.run(device, [{ addr: 0x10000, len: 16, write: false }, { addr: 0x40000, len: 1, write: true }]), 1);
    assert.equal(r.mem.readU8(0x40000), 0);
    r.mem.write(header(8, 0), 0x10000);
    assert.equal(
      r.run(device, [{ addr: 0x10000, len: 16, write: false }, { addr: 0x50000, len: 21, write: true }]),
      21,
    );
    assert.equal(new TextDecoder().decode(r.mem.getSlice(0x50000, 20).bytes()), "disk-0042" + "\0".repeat(11));
    assert.equal(r.mem.readU8(0x50000 + 20), 0);
    const c = device.counters;
    assert.deepEqual([c.writes, c.flushes, c.getIds, c.bytesWritten], [1, 1, 1, 1024]);
    closeIoFile(image.fd);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vhost-user-blk: out-of-range, short-header, read-only and unknown requests get error statuses, not a broken queue", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = await imageFile(dir);
    const image = openIoFile(path, true);
    const device = new BlkDevice(image);
    using r = rig();
    const status = (buffers: DriverBuffer[], dev: BlkDevice = device) => {
      r.run(dev, buffers);
      const last = buffers[buffers.length - 1];
      return r.mem.readU8(Number(last.addr) + last.len - 1);
    };
    r.mem.write(header(0, IMAGE / 512 - 1), 0x10000); // the last sector, but 1024 bytes asked
    assert.equal(
      status([{ addr: 0x10000, len: 16, write: false }, { addr: 0x20000, len: 1024, write: true }, {
        addr: 0x40000,
        len: 1,
        write: true,
      }]),
      1,
    );
    r.mem.write(header(0, 2 ** 40), 0x10000);
    assert.equal(
      status([{ addr: 0x10000, len: 16, write: false }, { addr: 0x20000, len: 512, write: true }, {
        addr: 0x40000,
        len: 1,
        write: true,
      }]),
      1,
    );
    assert.equal(
      status([{ addr: 0x10000, len: 8, write: false }, { addr: 0x40000, len: 1, write: true }]),
      1,
      "an 8-byte header",
    );
    r.mem.write(header(1, IMAGE / 512 - 1), 0x10000); // a write of 1024 bytes at the last sector
    assert.equal(
      status([{ addr: 0x10000, len: 16, write: false }, { addr: 0x20000, len: 1024, write: false }, {
        addr: 0x40000,
        len: 1,
        write: true,
      }]),
      1,
    );
    assert.equal((await Deno.stat(path)).size, IMAGE, "the image did not grow");
    r.mem.write(header(11, 0), 0x10000); // DISCARD is not offered
    assert.equal(status([{ addr: 0x10000, len: 16, write: false }, { addr: 0x40000, len: 1, write: true }]), 2);
    assert.equal(r.run(device, [{ addr: 0x10000, len: 16, write: false }]), 0, "no status byte: completed empty");
    const ro = new BlkDevice(image, { readOnly: true });
    r.mem.write(header(1, 0), 0x10000);
    assert.equal(
      status([{ addr: 0x10000, len: 16, write: false }, { addr: 0x20000, len: 512, write: false }, {
        addr: 0x40000,
        len: 1,
        write: true,
      }], ro),
      1,
    );
    assert.equal((await Deno.readFile(path))[0], 3, "the read-only device wrote nothing");
    assert.equal(r.queue.broken, undefined);
    assert.deepEqual([device.counters.errors, device.counters.unsupported, ro.counters.errors], [5, 1, 1]);
    assert.equal(ro.features & (1n << 5n), 1n << 5n, "VIRTIO_BLK_F_RO is offered");
    closeIoFile(image.fd);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vhost-user-blk: the config space says the capacity, seg_max, blk_size and one queue", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const image = openIoFile(await imageFile(dir), false);
    const config = new BlkDevice(image, { maxQueueSize: 128 }).config();
    const dv = new DataView(config.buffer);
    assert.equal(config.length, 60);
    assert.deepEqual(
      [dv.getBigUint64(0, true), dv.getUint32(12, true), dv.getUint32(20, true), dv.getUint16(34, true)],
      [
        128n,
        126,
        512,
        1,
      ],
    );
    closeIoFile(image.fd);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vhost-user-rng: a file source fills requests in order and wraps at its end; /dev/urandom fills them too", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/entropy`;
    await Deno.writeFile(path, Uint8Array.from({ length: 100 }, (_, i) => i));
    const source = openIoFile(path, false);
    const device = new RngDevice(source);
    using r = rig();
    assert.equal(r.run(device, [{ addr: 0x20000, len: 60, write: true }]), 60);
    assert.equal(r.run(device, [{ addr: 0x21000, len: 30, write: true }, { addr: 0x22000, len: 30, write: true }]), 60);
    assert.deepEqual([...r.mem.getSlice(0x20000, 60).bytes()], Array.from({ length: 60 }, (_, i) => i));
    assert.deepEqual([...r.mem.getSlice(0x21000, 30).bytes()], Array.from({ length: 30 }, (_, i) => 60 + i));
    assert.deepEqual([...r.mem.getSlice(0x22000, 30).bytes()], [
      ...Array.from({ length: 10 }, (_, i) => 90 + i),
      ...Array.from({ length: 20 }, (_, i) => i),
    ]);
    assert.deepEqual(device.counters, { requests: 2, bytes: 120, errors: 0 });
    closeIoFile(source.fd);
    const urandom = openIoFile("/dev/urandom", false);
    const u = new RngDevice(urandom);
    assert.equal(r.run(u, [{ addr: 0x30000, len: 4096, write: true }]), 4096);
    assert.ok(r.mem.getSlice(0x30000, 4096).bytes().some((b) => b !== 0));
    closeIoFile(urandom.fd);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
