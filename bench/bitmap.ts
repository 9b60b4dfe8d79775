/**
 * What dirty-page tracking adds to a guest write: a DataView store loop over a 64 KiB window, alone
 * and followed by `AtomicBitmap.markDirty` (and by `BitmapSlice.markDirty`), measured in the same
 * run, interleaved. Every page of the window is dirty after the first pass, so the figures are the
 * steady state of a guest rewriting memory it has already dirtied. Further lines: the same at
 * offsets above 2 GiB, and with `strictOrdering` (an `Atomics.or` on every mark).
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
    `${name.padEnd(32)} plain ${f(plainNs)} ns  +markDirty ${f(markedNs)} ns (+${f(markedNs - plainNs)})  ` +
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

// Offsets above 2 GiB (a 6 GiB region) take the Math.floor path instead of shifts.
const HIGH = 5 * 1024 * 1024 * 1024;
const big = new AtomicBitmap(6 * 1024 * 1024 * 1024);
const bigSlice = big.sliceAt(HIGH);
const high = measureGroup([
  timed((iters) => {
    for (let i = 0; i < iters; i++) memory.setBigUint64((i * 8) & MASK, 0x1234n, true);
  }),
  timed((iters) => {
    for (let i = 0; i < iters; i++) {
      const off = (i * 8) & MASK;
      memory.setBigUint64(off, 0x1234n, true);
      big.markDirty(HIGH + off, 8);
    }
  }),
  timed((iters) => {
    for (let i = 0; i < iters; i++) {
      const off = (i * 8) & MASK;
      memory.setBigUint64(off, 0x1234n, true);
      bigSlice.markDirty(off, 8);
    }
  }),
]);
report("write_obj_u64_hot_bitmap_5g", high[0].nsPerOp, high[1].nsPerOp, high[2].nsPerOp);

// strictOrdering: an Atomics.or on every mark, as vm-memory does.
const strict = new AtomicBitmap(WINDOW, 4096, { strictOrdering: true });
const strictSlice = strict.sliceAt(0);
const ordered = measureGroup([
  timed((iters) => {
    for (let i = 0; i < iters; i++) memory.setBigUint64((i * 8) & MASK, 0x1234n, true);
  }),
  timed((iters) => {
    for (let i = 0; i < iters; i++) {
      const off = (i * 8) & MASK;
      memory.setBigUint64(off, 0x1234n, true);
      strict.markDirty(off, 8);
    }
  }),
  timed((iters) => {
    for (let i = 0; i < iters; i++) {
      const off = (i * 8) & MASK;
      memory.setBigUint64(off, 0x1234n, true);
      strictSlice.markDirty(off, 8);
    }
  }),
]);
report("write_obj_u64_hot_bitmap_strict", ordered[0].nsPerOp, ordered[1].nsPerOp, ordered[2].nsPerOp);

consume(memory.getUint32(0, true));
consume(big.dirtyRuns().length + strict.dirtyRuns().length);
consume(bitmap.dirtyRuns().length);
console.log(`(sink ${sink()})`);
