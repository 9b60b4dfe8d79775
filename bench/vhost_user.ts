/**
 * The vhost-user back-end's data path (issue 13, "Speed and bounds"): a synthetic front-end in this
 * process (a driver model that keeps a ring full of 4 KiB block-read chains in guest memory) and
 * the device side popping, translating and completing them, with the real block device reading its
 * image (a memfd) into the guest's buffer with one preadv. Through `IommuMemory` with a warm IOTLB
 * (every page its own 4 KiB entry, as a strict guest maps them) beside the same loop over plain
 * guest memory, and beside the copy alone (preadv of 4 KiB into the same buffer). `_nocheck`: the
 * queue does not check buffers when popping (`checkBuffers: false`); every access is still checked
 * when the device makes it. `vhost_queue_pop_used`: the queue alone (pop, complete, interrupt
 * check), no device work.
 * @module
 */

import { GuestMemoryMmap, MmapRegion, Permissions } from "../mod.ts";
import { IommuMemory, IotlbIommu } from "../iommu.ts";
import { SplitQueue } from "../vhost_user.ts";
import { native } from "../src/ffi/native.ts";
import { BlkDevice } from "../src/tools/vhost_user_blk/blk_device.ts";
import type { BenchCase, Side } from "./foundation.ts";
import { consume, timed } from "./harness.ts";

const KIB = 1024, MIB = 1024 * KIB, PAGE = 4 * KIB;
const RAM = 64 * MIB;
/** Where the guest's IOVAs start (its DMA window); IOVA = this + guest physical. */
const IOVA = 0x1_0000_0000;
const QUEUE = 128;
const DESC = 0x1000, AVAIL = 0x2000, USED = 0x3000;
const HEADERS = 0x10000, DATA = 0x100000, STATUS = 0x80000;

/** The guest side: `QUEUE` read chains (header, 4 KiB data, status) written once, made available again and again. */
class SyntheticFrontend {
  readonly #ram: GuestMemoryMmap;
  #avail = 0;

  constructor(ram: GuestMemoryMmap, iova: number) {
    this.#ram = ram;
    for (let k = 0; k < QUEUE; k++) {
      const d = DESC + 16 * 3 * k;
      const header = HEADERS + 16 * k, data = DATA + PAGE * k, status = STATUS + k;
      // Header: VIRTIO_BLK_T_IN of sector 8k (a different 4 KiB of the image per chain).
      ram.writeU32(header, 0);
      ram.writeU64(header + 8, BigInt(8 * k));
      const descs: [number, number, number][] = [[header, 16, 1], [data, PAGE, 3], [status, 1, 2]];
      descs.forEach(([addr, len, flags], i) => {
        ram.writeU64(d + 16 * i, BigInt(iova + addr));
        ram.writeU32(d + 16 * i + 8, len);
        ram.writeU16(d + 16 * i + 12, flags);
        ram.writeU16(d + 16 * i + 14, 3 * k + i + 1);
      });
    }
    // QUEUE / 3 chains fit the table of QUEUE descriptors: heads 0, 3, 6, …
    for (let slot = 0; slot < QUEUE; slot++) ram.writeU16(AVAIL + 4 + 2 * slot, 3 * (slot % CHAINS));
  }

  /** Makes the next `n` ring entries available (the heads are already in place). */
  publish(n: number): void {
    this.#avail = (this.#avail + n) & 0xffff;
    this.#ram.storeU16(AVAIL + 2, this.#avail);
  }
}

const CHAINS = Math.floor(QUEUE / 3);

function setUp(iommu: boolean, checkBuffers: boolean): {
  ram: GuestMemoryMmap;
  queue: SplitQueue;
  front: SyntheticFrontend;
  image: MmapRegion;
  device: BlkDevice;
} {
  const ram = GuestMemoryMmap.fromRanges([[0, RAM]], { populate: true });
  const image = MmapRegion.memfd(8 * MIB, { name: "bench-image" });
  image.bytes().fill(0x5a); // in the page cache
  const device = new BlkDevice({ fd: image.fd!, size: image.size });
  let mem: GuestMemoryMmap | IommuMemory = ram;
  const base = iommu ? IOVA : 0;
  if (iommu) {
    const mmu = new IotlbIommu();
    for (let p = 0; p < 4 * MIB; p += PAGE) mmu.iotlb.setMapping(IOVA + p, p, PAGE, Permissions.ReadWrite);
    mem = new IommuMemory(ram, mmu);
  }
  const queue = new SplitQueue(mem, {
    size: QUEUE,
    desc: base + DESC,
    avail: base + AVAIL,
    used: base + USED,
    eventIdx: true,
    maxInFlight: 1,
    checkBuffers,
  });
  const front = new SyntheticFrontend(ram, base);
  return { ram, queue, front, image, device };
}

/** The device loop: pop, handle (preadv into the chain's fragments), complete, check for an interrupt. */
function deviceLoop(queue: SplitQueue, front: SyntheticFrontend, device: BlkDevice): Side["loop"] {
  return timed((iters) => {
    let calls = 0;
    for (let i = 0; i < iters; i++) {
      let chain = queue.pop();
      if (chain === null) {
        front.publish(CHAINS);
        chain = queue.pop()!;
      }
      const written = device.handle(0, chain);
      queue.addUsed(chain, written);
      if (queue.needsNotification()) calls++;
    }
    consume(calls);
  });
}

/** The queue alone: pop and complete with no device work (the per-request overhead besides the copy). */
function queueLoop(queue: SplitQueue, front: SyntheticFrontend): Side["loop"] {
  return timed((iters) => {
    let calls = 0;
    for (let i = 0; i < iters; i++) {
      let chain = queue.pop();
      if (chain === null) {
        front.publish(CHAINS);
        chain = queue.pop()!;
      }
      queue.addUsed(chain, chain.writableLength);
      if (queue.needsNotification()) calls++;
    }
    consume(calls);
  });
}

function blkReadCase(checkBuffers: boolean): BenchCase {
  return {
    name: checkBuffers ? "vhost_blk_read_4k" : "vhost_blk_read_4k_nocheck",
    bytesPerOp: PAGE,
    run(measure) {
      const a = setUp(true, checkBuffers), b = setUp(false, checkBuffers);
      try {
        const pairs = new BigUint64Array([b.ram.getHostAddress(DATA), BigInt(PAGE)]);
        const fd = b.image.fd!;
        const copy = timed((iters) => {
          let n = 0;
          for (let i = 0; i < iters; i++) n += Number(native().preadv(fd, pairs, 1, BigInt((i % CHAINS) * PAGE)));
          consume(n);
        });
        measure({ name: "blk 4 KiB read, IommuMemory", loop: deviceLoop(a.queue, a.front, a.device) }, [
          { name: "same, plain guest memory", loop: deviceLoop(b.queue, b.front, b.device) },
          { name: "preadv 4 KiB alone", loop: copy },
        ]);
      } finally {
        for (const s of [a, b]) {
          s.ram.close();
          s.image.close();
        }
      }
    },
  };
}

function queueCase(): BenchCase {
  return {
    name: "vhost_queue_pop_used",
    run(measure) {
      const a = setUp(true, false), b = setUp(false, false);
      try {
        measure({ name: "pop+addUsed, IommuMemory", loop: queueLoop(a.queue, a.front) }, [
          { name: "same, plain guest memory", loop: queueLoop(b.queue, b.front) },
        ]);
      } finally {
        for (const s of [a, b]) {
          s.ram.close();
          s.image.close();
        }
      }
    },
  };
}

/**
 * The vhost-user cases.
 *
 * @example
 * ```ts ignore
 * for (const c of vhostUserCases()) runCase(c, options);
 * ```
 */
export function vhostUserCases(): BenchCase[] {
  return [queueCase(), blkReadCase(true), blkReadCase(false)];
}
