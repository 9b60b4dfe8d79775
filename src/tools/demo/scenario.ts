/**
 * The demo from start to end: sets up guest RAM, the front-end and the device, runs the steps in
 * order, and always tears everything down (sockets, memory, the disk image).
 * @module
 */

import type { DemoContext } from "./context.ts";
import { startDevice } from "./device.ts";
import { FrontEnd } from "./frontend.ts";
import { makeGuestRam, MAPPINGS } from "./guest.ts";
import { Narrator } from "./narrator.ts";
import type { DemoOptions } from "./options.ts";
import { fillBuffer, readRequest, takeBuffer, writeStatus } from "./steps_dma.ts";
import { refusedWrite, revokedSlice } from "./steps_faults.ts";
import { dirtyPages, history, writePicture } from "./steps_report.ts";
import { connectDevice, showDriver, showRam } from "./steps_setup.ts";

/**
 * Runs the demo, printing through `write`; resolves to the files written.
 *
 * @example
 * ```ts ignore
 * await runDemo({ out: undefined, quiet: false, help: false });
 * ```
 */
export async function runDemo(options: DemoOptions, write?: (line: string) => void): Promise<string[]> {
  const say = new Narrator(options.quiet, write);
  const workDir = Deno.makeTempDirSync({ prefix: "gmem-demo-" });
  say.plain("gmem demo: a virtio-style block read through an IOMMU, on real memory");
  using ram = makeGuestRam();
  const { frontEnd, deviceConn } = await FrontEnd.start(ram, MAPPINGS);
  const device = startDevice(ram, deviceConn);
  frontEnd.serve();
  const c: DemoContext = {
    say,
    ram,
    frontEnd,
    device,
    workDir,
    outDir: options.out ?? workDir,
    slices: [],
    svg: "",
    html: "",
  };
  try {
    showRam(c);
    showDriver(c);
    await connectDevice(c);
    const sector = readRequest(c);
    await takeBuffer(c);
    fillBuffer(c, sector);
    writeStatus(c);
    refusedWrite(c);
    await revokedSlice(c);
    dirtyPages(c);
    history(c);
    return writePicture(c);
  } finally {
    await frontEnd.close();
    await device.running.catch(() => {});
    try {
      deviceConn.close();
    } catch {
      // Closed when the front-end hung up.
    }
    Deno.removeSync(`${workDir}/disk.img`, {});
    if (c.outDir !== workDir) Deno.removeSync(workDir, { recursive: true });
  }
}
