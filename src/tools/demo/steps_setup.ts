/**
 * Demo steps 1–3: guest RAM, the driver's request and IOMMU mappings, the device connecting to the
 * front-end and receiving the mappings pushed ahead.
 * @module
 */

import { inspect } from "node:util";
import { hex, permissionName } from "../text.ts";
import type { DemoContext } from "./context.ts";
import { DATA, MAPPINGS, RAM_LAYOUT, REQUEST, SECTOR, STATUS, writeRequest } from "./guest.ts";
import { waitUntil } from "./narrator.ts";

/** The page the front-end holds back, so the device has to ask for it. */
export const HELD_BACK = DATA[2];

/** Step 1: guest RAM. */
export function showRam(c: DemoContext): void {
  c.say.step("Guest RAM: two memfds, mapped into this process, placed like a PC's RAM (console.log(ram)):");
  c.say.line(inspect(c.ram));
  c.say.line(`Region names: ${RAM_LAYOUT.map((r) => `${r.name} at GPA ${hex(r.gpa)}`).join(", ")}.`);
  c.say.line("The hole below 4 GiB is where a PC puts its PCI devices. memfds are sparse: a page becomes");
  c.say.line("real memory when first touched. Each region has a dirty bitmap of 4 KiB pages.");
}

/** Step 2: the driver's request and mappings. */
export function showDriver(c: DemoContext): void {
  c.say.step("The guest driver writes a read request into its RAM and maps its buffers for the device:");
  writeRequest(c.ram);
  c.say.line(`request header at GPA ${hex(REQUEST.gpa)}: type 0 (IN: read from the disk), sector ${hex(SECTOR)}`);
  c.say.line(`status byte    at GPA ${hex(STATUS.gpa)}: 0xff until the device overwrites it`);
  c.say.line("the IOMMU mappings (the guest's I/O page tables; the front-end knows them, the device does not yet):");
  for (const m of MAPPINGS) {
    const above = m.gpa >= 0x1_0000_0000n ? "  (RAM above 4 GiB at a 32-bit I/O address)" : "";
    c.say.line(
      `  IOVA ${hex(m.iova)}+${hex(m.size)} -> GPA ${hex(m.gpa).padEnd(11)} ${
        permissionName(m.perm).padEnd(9)
      } ${m.what}${above}`,
    );
  }
  c.say.line("The 16 KiB data buffer is one IOVA range, scattered over four pages of both regions.");
  // From here on the dirty bitmaps show what the device writes, not what the driver prepared.
  for (const r of c.ram.regions()) (r.bitmap as { snapshotAndReset(): unknown } | undefined)?.snapshotAndReset();
  c.say.line("Dirty logging starts now (the bitmaps are cleared), as when a migration begins.");
}

/** Step 3: the device connects and the front-end pushes all mappings but one. */
export async function connectDevice(c: DemoContext): Promise<void> {
  c.say.step(
    `The device (a vhost-user back-end) is connected to the front-end over TCP 127.0.0.1:${c.frontEnd.port}`,
  );
  const ahead = MAPPINGS.filter((m) => m !== HELD_BACK);
  for (const m of ahead) await c.frontEnd.push(m);
  await waitUntil(() => c.device.channel.messagesApplied >= ahead.length, "the front-end's IOTLB updates");
  c.say.line(
    `the front-end pushed ${ahead.length} mappings ahead as VHOST_USER_IOTLB_MSG updates (44 bytes each),`,
  );
  c.say.line(`holding back ${HELD_BACK.what} (IOVA ${hex(HELD_BACK.iova)}); the device's IOTLB now (console.log):`);
  c.say.line(inspect(c.device.iommu.iotlb));
  c.say.line("Targets are guest physical: the channel turned each update's uaddr (the front-end's own");
  c.say.line("address of that guest page) back into a GPA through the memory table.");
}
