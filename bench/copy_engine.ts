/**
 * Where the copy engine's crossovers lie on this runtime (src/memory/copy_engine.ts): for each size,
 * a copy out of and into guest memory by `TypedArray.set` and by the helper's FFI `memmove`, through
 * the library (`readSlice`/`writeSlice` with each engine forced) and bare, beside a C `memcpy` loop,
 * all interleaved in one run. The copies walk 4 KiB-aligned addresses over a 256 KiB window (the hot
 * cases' working set).
 *
 *   deno run --allow-ffi --allow-read --allow-env bench/copy_engine.ts [--sizes 64,4096]
 *   npx -y bun@1 --preload ./tests/adapter/deno_shim.ts bench/copy_engine.ts
 *
 * Figures the thresholds come from (ns per copy; 2 cores shared with other work, so read the
 * columns against each other, not across runs). Bare calls, median of 9 interleaved reps:
 *
 *   Deno 2.9.6  size | out: set  memmove | in: set  memmove
 *                64 B |     36       18   |     11      18
 *              1 KiB |     45       27   |     30      33
 *              4 KiB |  82-94       70   |  77-82   80-86
 *   Bun 1.4.5   64 B |     45       10   |     13      10
 *              4 KiB |     75       43   |     85      80
 *
 * Through the library, CPU time of one process running the previous code and this side by side
 * (wall time on a machine at load 10 swings by 2x): readSlice 4 KiB 0.58-0.83x on Deno, 0.45x on
 * Bun; writeSlice 4 KiB by memmove 1.31-1.34x on Bun, so writes stay on `set` on both runtimes.
 * @module
 */

import { GuestMemoryMmap } from "../mod.ts";
import { native } from "../src/ffi/native.ts";
import { benchNative } from "./native_bench.ts";
import { alignedBytes } from "./guest_memory_fixture.ts";
import { forceCopyThresholds } from "../src/core/copy_engine.ts";
import { consume, DEFAULT_OPTIONS, measureGroup, sink, timed, type TimedLoop } from "./harness.ts";

const WINDOW = 256 * 1024;
const BASE = 1024 * 1024;
const STEP = 4096 * 7; // odd multiple of a page: every page of the window in turn

function sizesArg(): number[] {
  const i = Deno.args.indexOf("--sizes");
  const text = i >= 0 ? Deno.args[i + 1] : undefined;
  return text ? text.split(",").map(Number) : [16, 64, 256, 1024, 4096, 16384, 65536];
}

/** A loop over the window's pages calling `copy(address)`. */
function walk(copy: (addr: number) => void): TimedLoop {
  const mask = WINDOW - 1;
  return timed((iters) => {
    let a = 0;
    for (let i = 0; i < iters; i++) {
      copy(BASE + a);
      a = (a + STEP) & mask;
    }
  });
}

/** Runs `loop` with the engine forced to memmove (`ffi`) or `TypedArray.set`. */
function forced(ffi: boolean, loop: TimedLoop): TimedLoop {
  return (iters) => {
    forceCopyThresholds(ffi ? { out: 1, in: 1 } : { out: Infinity, in: Infinity });
    try {
      return loop(iters);
    } finally {
      forceCopyThresholds(undefined);
    }
  };
}

const n = native();
const nb = benchNative();
using mem = GuestMemoryMmap.fromRanges([[0, 4 * 1024 * 1024]]);
const region = mem.regions()[0];
const u8 = region.mmap.bytes().fill(0x5a);
const host = Number(region.mmap.hostAddress);
const names = ["readSlice set", "readSlice memmove", "bare set", "bare memmove", "C memcpy"];
console.log(`# ${n.runtime}: ns per copy, median of ${DEFAULT_OPTIONS.reps} interleaved reps`);
console.log(`size   | out: ${names.join(" | ")} || in: ${names.join(" | ")}`);
for (const size of sizesArg()) {
  const buf = alignedBytes(size, 1);
  const bufHost = n.addressOf(buf);
  const mask = BigInt((WINDOW - 1) & ~4095);
  const cLoop = (kind: number): TimedLoop => (iters) =>
    Number(nb.benchLcg(kind, BigInt(host + BASE), mask, bufHost, BigInt(size), iters));
  const out = measureGroup([
    forced(false, walk((a) => mem.readSlice(buf, a))),
    forced(true, walk((a) => mem.readSlice(buf, a))),
    walk((a) => buf.set(u8.subarray(a, a + size))),
    walk((a) => n.copyOut(buf, 0, host + a, size)),
    cLoop(5),
  ]);
  consume(buf[size - 1]);
  const into = measureGroup([
    forced(false, walk((a) => mem.writeSlice(buf, a))),
    forced(true, walk((a) => mem.writeSlice(buf, a))),
    walk((a) => u8.set(buf, a)),
    walk((a) => n.copyIn(host + a, buf, 0, size)),
    cLoop(6),
  ]);
  const f = (ms: { nsPerOp: number }[]) => ms.map((m) => m.nsPerOp.toFixed(1).padStart(7)).join(" | ");
  console.log(`${String(size).padStart(6)} | ${f(out)} || ${f(into)}`);
}
console.log(`# sink ${sink()}`);
