/**
 * Demo steps 10–12: the dirty pages a migration would copy, the IOTLB's recorded history and its
 * replay, and the address-space picture written to files.
 * @module
 */

import { inspect } from "node:util";
import { AtomicBitmap } from "../../../mod.ts";
import { Iotlb } from "../../../iommu.ts";
import { hex, plural } from "../text.ts";
import type { DemoContext } from "./context.ts";
import { RAM_LAYOUT } from "./guest.ts";

/** Step 10: dirty pages by guest physical address. */
export function dirtyPages(c: DemoContext): number {
  c.say.step('Dirty pages, by guest physical address (logBy "gpa": the regions\' bitmaps a migration reads)');
  let total = 0;
  const all: string[] = [];
  c.ram.regions().forEach((r, i) => {
    if (!(r.bitmap instanceof AtomicBitmap)) return;
    const runs = r.bitmap.dirtyRuns().map(([s, n]) => [r.startAddr + BigInt(s), r.startAddr + BigInt(s + n)]);
    const pages = runs.reduce((sum, [s, e]) => sum + Number((e - s) / 4096n), 0);
    total += pages;
    const list = runs.map(([s, e]) => `[${hex(s)}, ${hex(e)})`);
    all.push(...runs.map(([s]) => hex(s)));
    c.say.line(`${RAM_LAYOUT[i].name}: ${plural(pages, "dirty page")}${list.length > 0 ? ": " : ""}${list.join(" ")}`);
  });
  c.say.key(`${plural(total, "dirty page")} at GPA ${all.join(", ")}`);
  c.say.line("four data pages and the status page; the refused write and the revoked slice dirtied nothing.");
  return total;
}

/** Step 11: the IOTLB's counters and history, replayed into a fresh IOTLB. */
export function history(c: DemoContext): void {
  const { iommu, recorder, channel } = c.device;
  const tlb = iommu.iotlb;
  c.say.step("What the IOTLB went through (an IotlbRecorder was attached before the first message):");
  c.say.line(inspect(recorder));
  const k = tlb.counters;
  c.say.line(
    `counters: ${plural(k.hits, "hit")}, ${plural(k.misses, "miss", "misses")}, ` +
      `${plural(k.accessFailures, "access failure")}, ${plural(k.evictions, "eviction")}; ` +
      `${plural(iommu.counters.asyncRequests, "question")} to the front-end, ` +
      `${plural(channel.messagesApplied, "message")} applied`,
  );
  const copy = new Iotlb();
  const applied = recorder.replay(copy);
  const same = JSON.stringify(copy.toJSON().entries) === JSON.stringify(tlb.toJSON().entries);
  c.say.key(
    `replay: ${applied} recorded changes rebuilt ${plural(copy.size, "entry", "entries")} in a fresh IOTLB, ` +
      `${same ? "identical to" : "DIFFERENT from"} the device's`,
  );
}

/** Step 12: the picture, written as SVG and HTML. */
export function writePicture(c: DemoContext): string[] {
  c.say.step("The address-space picture (renderMap), drawn at step 7 while the request was in flight:");
  c.say.line("IOVA space -> guest physical space -> host mappings, permissions as colours, dirty pages in red");
  Deno.mkdirSync(c.outDir, { recursive: true });
  const files = [`${c.outDir}/address-space.svg`, `${c.outDir}/address-space.html`];
  Deno.writeTextFileSync(files[0], c.svg);
  Deno.writeTextFileSync(files[1], c.html);
  for (const f of files) c.say.key(`wrote ${f}`);
  return files;
}
