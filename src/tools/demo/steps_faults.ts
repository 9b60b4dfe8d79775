/**
 * Demo steps 8–9: a write the IOMMU refuses (read-only mapping), and a slice revoked when the
 * guest unmaps the buffer and the front-end invalidates it.
 * @module
 */

import { inspect } from "node:util";
import { GuestMemoryError } from "../../../mod.ts";
import { IommuError } from "../../../iommu.ts";
import { hex } from "../text.ts";
import type { DemoContext } from "./context.ts";
import { DATA, DATA_SIZE, REQUEST } from "./guest.ts";
import { waitUntil } from "./narrator.ts";

function describe(e: unknown): string {
  if (e instanceof IommuError) return `${e.name} (kind ${e.kind}, an IommuError)`;
  if (e instanceof GuestMemoryError) return `${e.name} (kind ${e.kind})`;
  return e instanceof Error ? e.name : String(e);
}

/** Step 8: a write to the read-only request header. */
export function refusedWrite(c: DemoContext): void {
  const { dev } = c.device;
  c.say.step(`A buggy device writes into the request header, which the driver mapped read-only`);
  try {
    dev.writeU32(REQUEST.iova, 0xdead);
    throw new Error("the IOMMU let a write to a read-only mapping through");
  } catch (e) {
    if (!(e instanceof GuestMemoryError)) throw e;
    c.say.key(`write to the read-only request header refused: ${describe(e)}`);
    c.say.line(e.message);
  }
  c.say.line(`nothing moved: the guest's request type is still ${c.ram.readU32(REQUEST.gpa)}`);
}

/** Step 9: the guest unmaps the buffer; the slices the device still holds stop working. */
export async function revokedSlice(c: DemoContext): Promise<void> {
  const { channel, iommu } = c.device;
  const base = DATA[0].iova;
  c.say.step(`The guest unmaps the data buffer; the front-end invalidates IOVA ${hex(base)}+${hex(DATA_SIZE)}`);
  const applied = channel.messagesApplied;
  await c.frontEnd.invalidate(base, DATA_SIZE);
  await waitUntil(() => channel.messagesApplied > applied, "the IOTLB invalidation");
  c.say.line(`the IOTLB has ${iommu.iotlb.size} entries left; the device still holds its slices from step 5`);
  const slice = c.slices[1];
  try {
    slice.writeU8(0, 0x42);
    throw new Error("a slice outlived the invalidation of its translation");
  } catch (e) {
    if (!(e instanceof GuestMemoryError)) throw e;
    c.say.key(`slice revoked after the invalidation: ${describe(e)}`);
    c.say.line(e.message);
  }
  c.say.line(`console.log(slice): ${inspect(slice)}`);
}
