/**
 * What the demo's steps share: the guest's RAM, the front-end, the device, where files go, and
 * what earlier steps left for later ones.
 * @module
 */

import type { GuestMemoryMmap, VolatileSlice } from "../../../mod.ts";
import type { Device } from "./device.ts";
import type { FrontEnd } from "./frontend.ts";
import type { Narrator } from "./narrator.ts";

/** The demo's shared state. */
export interface DemoContext {
  /** Prints the story. */
  say: Narrator;
  /** Guest RAM. */
  ram: GuestMemoryMmap;
  /** The front-end (VMM side). */
  frontEnd: FrontEnd;
  /** The device (back-end side). */
  device: Device;
  /** Where the disk image lives while the demo runs. */
  workDir: string;
  /** Where the picture goes. */
  outDir: string;
  /** The data buffer's fragments, taken in step 5 and still held in step 9. */
  slices: VolatileSlice[];
  /** The picture, drawn while the request is in flight (before the guest unmaps the buffer). */
  svg: string;
  /** The same in an HTML page. */
  html: string;
}
