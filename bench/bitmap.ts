/**
 * What dirty-page tracking adds to a guest write: a DataView store loop over a 64 KiB window, alone
 * and followed by `AtomicBitmap.markDirty` (and by `BitmapSlice.markDirty`), measured in the same
 * run, interleaved. Every page of the window is dirty after the first pass, so the figures are the
 * steady state of a guest rewriting memory it has already dirtied.
 *
 *   deno run bench/bitmap.ts
 * @module
 */

import { AtomicBitmap } from "../src/bitmap/atomic_bitmap.ts";
import { consume, measureGroup, sink, timed } from "./harness.ts";

const WINDOW = 64 * 1024;
const MASK = WINDOW - 1;

const memory = new DataView(new ArrayBuffer(WINDOW));
const bitmap = new AtomicBitmap(WINDOW);
const slice = bitmap.sliceAt(0);

function report(name: string, plainNs: number, markedNs: number, sliceNs: number): void {
  const f = (n: number) => n.toFixed(2).padStart(6);
  console.log(
    `${name.padEnd(28)} plain ${f(plainNs)} ns  +markDirty ${f(markedNs)} ns (+${f(markedNs - plainNs)})  ` +
      `+slice.markDirty ${f(sliceNs)} ns (+${f(sliceNs - plainNs)})`,
  );
}

const u64 = measureGroup([
  timed((iters) => {
    for (let i = 0; i < iters; i++) memory.setBigUint64((i * 8) & MASK, 0x1234n, true);
  }),
  timed((iters) => {
    for (let i = 0; i < iters; i++) {
      const off = (i * 8) & MASK;
      memory.setBigUint64(off, 0x1234n, true);
      bitmap.markDirty(off, 8);
    }
  }),
  timed((iters) => {
    for (let i = 0; i < iters; i++) {
      const off = (i * 8) & MASK;
      memory.setBigUint64(off, 0x1234n, true);
      slice.markDirty(off, 8);
    }
  }),
]);
report("write_obj_u64_hot_bitmap", u64[0].nsPerOp, u64[1].nsPerOp, u64[2].nsPerOp);

const u32 = measureGroup([
  timed((iters) => {
    for (let i = 0; i < iters; i++) memory.setUint32((i * 4) & MASK, i, true);
  }),
  timed((iters) => {
    for (let i = 0; i < iters; i++) {
      const off = (i * 4) & MASK;
      memory.setUint32(off, i, true);
      bitmap.markDirty(off, 4);
    }
  }),
  timed((iters) => {
    for (let i = 0; i < iters; i++) {
      const off = (i * 4) & MASK;
      memory.setUint32(off, i, true);
      slice.markDirty(off, 4);
    }
  }),
]);
report("write_obj_u32_hot_bitmap", u32[0].nsPerOp, u32[1].nsPerOp, u32[2].nsPerOp);

consume(memory.getUint32(0, true));
consume(bitmap.dirtyRuns().length);
console.log(`(sink ${sink()})`);
