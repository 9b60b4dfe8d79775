/**
 * What dirty-page tracking adds to a guest write, measured on the bitmap alone: a DataView store
 * loop over a 64 KiB window followed by `AtomicBitmap.markDirty` (or `BitmapSlice.markDirty`),
 * beside the same store loop without marking, interleaved in one run. Every page of the window is
 * dirty after the first pass, so the figures are the steady state of a guest rewriting memory it
 * has already dirtied. Further cases: offsets above 2 GiB (the non-int32 path) and
 * `strictOrdering` (an `Atomics.or` on every mark). `write_obj_u64_hot_bitmap` in guest_memory.ts
 * measures the same through `GuestMemoryMmap`.
 *
 * The `bitmap_runs_2m` and `bitmap_json_2m` cases read a bitmap with 2 million dirty runs (every
 * other page of 16 GiB): `dirtyRuns()` beside a plain loop building the same 2 million
 * `[start, length]` pairs (the allocation no listing can avoid), and `JSON.stringify(bitmap)` beside
 * `JSON.stringify` of the same object built beforehand (the serialisation alone).
 *
 *   deno task bench --filter bitmap_
 * @module
 */

import { AtomicBitmap, type BitmapSlice } from "../src/bitmap/atomic_bitmap.ts";
import type { BenchCase, Side } from "./foundation.ts";
import { consume, timed } from "./harness.ts";

const WINDOW = 64 * 1024;
const MASK = WINDOW - 1;
const VALUE = 0x1234n;

/** Where the marks go: a bitmap at `base`, or a slice of one (whose offsets start at 0). */
type Target = { bitmap: AtomicBitmap; base: number } | { slice: BitmapSlice };

/** The plain store loop every case is measured against. */
function plainStores(memory: DataView, size: 4 | 8): Side {
  return {
    name: `DataView store (${size} B), no mark`,
    loop: timed((iters) => {
      if (size === 8) { for (let i = 0; i < iters; i++) memory.setBigUint64((i * 8) & MASK, VALUE, true); }
      else for (let i = 0; i < iters; i++) memory.setUint32((i * 4) & MASK, i, true);
      consume(memory.getUint32(0, true));
    }),
  };
}

function markedU64(target: Target, memory: DataView): Side {
  if ("slice" in target) {
    const slice = target.slice;
    return {
      name: "store + slice.markDirty",
      loop: timed((iters) => {
        for (let i = 0; i < iters; i++) {
          const off = (i * 8) & MASK;
          memory.setBigUint64(off, VALUE, true);
          slice.markDirty(off, 8);
        }
      }),
    };
  }
  const { bitmap, base } = target;
  return {
    name: "store + markDirty",
    loop: timed((iters) => {
      for (let i = 0; i < iters; i++) {
        const off = (i * 8) & MASK;
        memory.setBigUint64(off, VALUE, true);
        bitmap.markDirty(base + off, 8);
      }
    }),
  };
}

function markedU32(bitmap: AtomicBitmap, memory: DataView): Side {
  return {
    name: "store + markDirty",
    loop: timed((iters) => {
      for (let i = 0; i < iters; i++) {
        const off = (i * 4) & MASK;
        memory.setUint32(off, i, true);
        bitmap.markDirty(off, 4);
      }
    }),
  };
}

/**
 * A case over a fresh bitmap of `byteSize` bytes whose marks land at `base`; afterwards every page
 * of the window there, and no other, must be dirty.
 */
function bitmapCase(
  name: string,
  byteSize: number,
  base: number,
  options: { slice?: boolean; strict?: boolean; u32?: boolean } = {},
): BenchCase {
  return {
    name,
    run(measure) {
      const memory = new DataView(new ArrayBuffer(WINDOW));
      const bitmap = new AtomicBitmap(byteSize, 4096, { strictOrdering: options.strict ?? false });
      const target: Target = options.slice ? { slice: bitmap.sliceAt(base) } : { bitmap, base };
      const ours = options.u32 ? markedU32(bitmap, memory) : markedU64(target, memory);
      measure(ours, [plainStores(memory, options.u32 ? 4 : 8)]);
      const runs = bitmap.dirtyRuns();
      if (runs.length !== 1 || runs[0][0] !== base || runs[0][1] !== WINDOW) {
        throw new Error(`${name}: dirty runs ${JSON.stringify(runs)}, expected [[${base}, ${WINDOW}]]`);
      }
    },
  };
}

const GIB = 1024 * 1024 * 1024;

/** Dirty runs in the listing cases: every other page, so no two marked pages touch. */
const RUNS = 2 ** 21;
const RUN_PAGE = 4096;

/** A bitmap of 2 * RUNS pages with every even page marked. */
function alternatingBitmap(): AtomicBitmap {
  const bitmap = new AtomicBitmap(2 * RUNS * RUN_PAGE, RUN_PAGE);
  for (let p = 0; p < 2 * RUNS; p += 2) bitmap.setBit(p);
  return bitmap;
}

/** The runs the alternating bitmap must list, built by a plain loop. */
function plainRuns(): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (let i = 0; i < RUNS; i++) runs.push([2 * i * RUN_PAGE, RUN_PAGE]);
  return runs;
}

function checkRuns(name: string, runs: Array<[number, number]>): void {
  const last = runs[RUNS - 1];
  if (runs.length !== RUNS || last[0] !== 2 * (RUNS - 1) * RUN_PAGE || last[1] !== RUN_PAGE) {
    throw new Error(`${name}: ${runs.length} runs, the last ${JSON.stringify(last)}`);
  }
}

/** `dirtyRuns()` of 2 million runs, beside building the same pairs in a plain loop. */
function runsCase(): BenchCase {
  return {
    name: "bitmap_runs_2m",
    run(measure) {
      const bitmap = alternatingBitmap();
      checkRuns("bitmap_runs_2m", bitmap.dirtyRuns());
      measure(
        {
          name: "dirtyRuns() of 2M runs",
          loop: timed((iters) => {
            for (let i = 0; i < iters; i++) consume(bitmap.dirtyRuns().length);
          }),
        },
        [{
          name: "plain loop, 2M pairs",
          loop: timed((iters) => {
            for (let i = 0; i < iters; i++) consume(plainRuns().length);
          }),
        }],
      );
    },
  };
}

/** `JSON.stringify(bitmap)` with 2 million runs, beside stringifying the same object built beforehand. */
function jsonCase(): BenchCase {
  return {
    name: "bitmap_json_2m",
    run(measure) {
      const bitmap = alternatingBitmap();
      const prebuilt = bitmap.toJSON();
      checkRuns("bitmap_json_2m", prebuilt.dirtyRuns);
      if (prebuilt.dirtyPages !== RUNS || JSON.stringify(bitmap) !== JSON.stringify(prebuilt)) {
        throw new Error(`bitmap_json_2m: toJSON() gives ${prebuilt.dirtyPages} dirty pages`);
      }
      measure(
        {
          name: "JSON.stringify(bitmap)",
          loop: timed((iters) => {
            for (let i = 0; i < iters; i++) consume(JSON.stringify(bitmap).length);
          }),
        },
        [{
          name: "stringify prebuilt",
          loop: timed((iters) => {
            for (let i = 0; i < iters; i++) consume(JSON.stringify(prebuilt).length);
          }),
        }],
      );
    },
  };
}

/**
 * The bitmap cases: ours = store + mark, baseline = the same stores unmarked.
 *
 * @example
 * ```ts ignore
 * const names = bitmapCases().map((c) => c.name); // ["bitmap_mark_u64_hot", ...]
 * ```
 */
export function bitmapCases(): BenchCase[] {
  return [
    bitmapCase("bitmap_mark_u64_hot", WINDOW, 0),
    bitmapCase("bitmap_slice_mark_u64_hot", WINDOW, 0, { slice: true }),
    bitmapCase("bitmap_mark_u32_hot", WINDOW, 0, { u32: true }),
    // A 6 GiB bitmap marked at 5 GiB: offsets past 2^31 take the Math.floor path instead of shifts.
    bitmapCase("bitmap_mark_u64_hot_5g", 6 * GIB, 5 * GIB),
    bitmapCase("bitmap_slice_mark_u64_hot_5g", 6 * GIB, 5 * GIB, { slice: true }),
    bitmapCase("bitmap_mark_u64_hot_strict", WINDOW, 0, { strict: true }),
    runsCase(),
    jsonCase(),
  ];
}
