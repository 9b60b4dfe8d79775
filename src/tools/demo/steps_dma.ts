/**
 * Demo steps 4–7: the device reads the request through the IOMMU, takes an IOTLB miss that the
 * front-end answers, fills the scattered buffer from a disk image with one readv, and writes the
 * status byte.
 * @module
 */

import { Permissions } from "../../../mod.ts";
import { hex } from "../text.ts";
import { renderMap, renderMapHtml } from "../render_map.ts";
import type { DemoContext } from "./context.ts";
import { uaddrToGpa } from "./device.ts";
import { DATA, DATA_SIZE, PAGE, REQUEST, STATUS } from "./guest.ts";
import { HELD_BACK } from "./steps_setup.ts";

const SECTOR_SIZE = 512n;

/** The disk image: every 4 KiB page of the read starts with a line saying where it came from. */
export function writeDiskImage(path: string, sector: bigint): void {
  const start = Number(sector * SECTOR_SIZE);
  const image = new Uint8Array(start + DATA_SIZE);
  const enc = new TextEncoder();
  for (let i = 0; i < DATA.length; i++) {
    image.set(enc.encode(`disk byte ${hex(start + i * PAGE)}: block ${i} of the read\n`), start + i * PAGE);
  }
  Deno.writeFileSync(path, image);
}

/** Step 4: the device reads the request header through the IOMMU. */
export function readRequest(c: DemoContext): bigint {
  const { dev } = c.device;
  c.say.step(
    `The device reads the request through the IOMMU (IommuMemory.readU32/readU64 at IOVA ${hex(REQUEST.iova)})`,
  );
  const type = dev.readU32(REQUEST.iova);
  const sector = dev.readU64(REQUEST.iova + 8);
  c.say.line(
    `type ${type} (IN), sector ${hex(sector)}: read ${DATA_SIZE / 1024} KiB from byte ${
      hex(sector * SECTOR_SIZE)
    } of the disk`,
  );
  c.say.line(
    `IOVA ${hex(REQUEST.iova)} -> GPA ${hex(REQUEST.gpa)} -> host ${hex(c.ram.getHostAddress(REQUEST.gpa))}: ` +
      "two IOTLB hits, no allocation",
  );
  return sector;
}

/** Step 5: the data buffer's fragments, after an IOTLB miss answered over the socket. */
export async function takeBuffer(c: DemoContext): Promise<void> {
  const { dev, iommu } = c.device;
  const base = DATA[0].iova;
  c.say.step(
    `The device asks for the data buffer, for writing (getSlicesAsync(${hex(base)}, ${hex(DATA_SIZE)}, Write))`,
  );
  const missesBefore = iommu.iotlb.counters.misses;
  c.slices = await dev.getSlicesAsync(base, DATA_SIZE, Permissions.Write);
  c.say.line(
    `IOTLB miss at IOVA ${hex(HELD_BACK.iova)}: the device sent a VHOST_USER_BACKEND_IOTLB_MSG miss and waited`,
  );
  for (const line of c.frontEnd.answered) c.say.line(`front-end: ${line}`);
  c.say.key(
    `IOTLB miss at IOVA ${hex(HELD_BACK.iova)} answered by the front-end over TCP ` +
      `(${iommu.iotlb.counters.misses - missesBefore} miss, ${iommu.counters.asyncRequests} question asked)`,
  );
  c.say.line(`${c.slices.length} fragments, one per guest page (IOVA -> GPA -> host):`);
  let iova = base;
  for (const s of c.slices) {
    const host = s.hostAddress;
    c.say.line(
      `  IOVA ${hex(iova)}+${hex(s.len)} -> GPA ${hex(uaddrToGpa(c.ram, host)).padEnd(11)} -> host ${hex(host)}`,
    );
    iova += s.len;
  }
}

/** Step 6: one readv from the disk image into the four fragments. */
export function fillBuffer(c: DemoContext, sector: bigint): void {
  const { dev } = c.device;
  const path = `${c.workDir}/disk.img`;
  writeDiskImage(path, sector);
  c.say.step("The device reads the disk into the buffer (readVolatileFrom: one readv straight into 4 fragments)");
  const file = Deno.openSync(path, { read: true });
  try {
    file.seekSync(Number(sector * SECTOR_SIZE), Deno.SeekMode.Start);
    const n = dev.readVolatileFrom(DATA[0].iova, file, DATA_SIZE);
    c.say.line(`read ${n} bytes from ${path}; the guest finds them in its scattered pages:`);
  } finally {
    file.close();
  }
  const dec = new TextDecoder();
  for (const page of DATA) {
    const bytes = new Uint8Array(31);
    c.ram.readSlice(bytes, page.gpa);
    c.say.line(`  GPA ${hex(page.gpa).padEnd(11)} ${JSON.stringify(dec.decode(bytes))}`);
  }
}

/** Step 7: the status byte; the picture is drawn here, while the request is in flight. */
export function writeStatus(c: DemoContext): void {
  const { dev } = c.device;
  c.say.step(`The device writes the status byte (writeU8 at IOVA ${hex(STATUS.iova)}: 0 = VIRTIO_BLK_S_OK)`);
  dev.writeU8(STATUS.iova, 0);
  c.say.line(`the guest reads ${hex(c.ram.readU8(STATUS.gpa))} at GPA ${hex(STATUS.gpa)}: the request is done`);
  const title = "gmem demo: a block read through an IOMMU, while the request is in flight";
  c.svg = renderMap(dev, { title });
  c.html = renderMapHtml(dev, { title });
}
