/**
 * The foundation benchmark: mapping and unmapping, views over a mapping, and copies between
 * mappings, each beside the same work done in a C loop or over a plain ArrayBuffer.
 * @module
 */

import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, MmapRegion } from "../mod.ts";
import { benchNative } from "./native_bench.ts";
import { native } from "../src/ffi/native.ts";
import { consume, timed, type TimedLoop } from "./harness.ts";

/** One loop of a case: ours, or a baseline. */
export interface Side {
  name: string;
  loop: TimedLoop;
}

/** Measures `ours` beside its baselines (all while the case's resources are open). */
export type MeasureSides = (ours: Side, baselines: readonly Side[]) => void;

/**
 * A figure published for the same case elsewhere (another machine, another run): printed beside
 * ours for orientation, never as a same-run baseline.
 *
 * @example
 * ```ts ignore
 * const published: PublishedFigure = { source: "vm-memory 0.18", nsPerOp: 6.94 };
 * ```
 */
export interface PublishedFigure {
  /** Where it comes from, e.g. `"vm-memory 0.18"`. */
  source: string;
  /** Nanoseconds per operation as published (a GB/s figure converted with the case's bytes). */
  nsPerOp: number;
}

export interface BenchCase {
  name: string;
  /** Bytes moved per iteration, for cases reported in GB/s. */
  bytesPerOp?: number;
  /** The reference implementation's published figure for this case, if there is one. */
  published?: PublishedFigure;
  /** Sets up, hands the loops to `measure`, and releases everything it opened. */
  run(measure: MeasureSides): void;
}

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;
const ANON_FLAGS = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;

function cMapUnmapRounds(size: bigint, rounds: number): number {
  const ns = Number(benchNative().benchMapUnmap(size, ANON_FLAGS, rounds));
  if (ns === 0) throw new Error(`C mmap of ${size} bytes failed`);
  return ns;
}

/**
 * The baselines of the map cases, both from `bench/native/gmem_bench.c`: the C loop doing all `iters` rounds of
 * mmap + munmap in one call (timed in C), and the same C function called once per round from a JS
 * loop, which adds only the FFI boundary (and a syscall path made cold by the JS in between).
 */
function cMapUnmap(size: number): Side[] {
  const bigSize = BigInt(size);
  return [
    { name: "C mmap+munmap", loop: (iters) => cMapUnmapRounds(bigSize, iters) },
    {
      name: "C 1 round/FFI call",
      loop: timed((iters) => {
        for (let i = 0; i < iters; i++) cMapUnmapRounds(bigSize, 1);
      }),
    },
  ];
}

/** Map + close per iteration; with `view`, also make a view so close has a buffer to detach. */
function mapUnmap(name: string, size: number, view = false): BenchCase {
  return {
    name,
    run(measure) {
      const ours = timed((iters) => {
        let acc = 0;
        for (let i = 0; i < iters; i++) {
          const region = MmapRegion.anonymous(size);
          try {
            acc += view ? region.bytes().length : region.size;
          } finally {
            region.close();
          }
        }
        consume(acc);
      });
      const label = `MmapRegion.anonymous(size)${view ? " + bytes()" : ""} + close()`;
      measure({ name: label, loop: ours }, cMapUnmap(size));
    },
  };
}

/** Page-aligned offsets cycling through a 1 MiB region, so views do not all start at 0. */
const VIEW_REGION = MIB;
const VIEW_LEN = 4 * KIB;
const VIEW_SLOTS = VIEW_REGION / VIEW_LEN;

function viewCreate(name: string, kind: "bytes" | "dataView"): BenchCase {
  return {
    name,
    run(measure) {
      using region = MmapRegion.anonymous(VIEW_REGION);
      region.bytes().fill(1); // fault every page in before timing
      const plain = new ArrayBuffer(VIEW_REGION);
      new Uint8Array(plain).fill(1);

      if (kind === "bytes") {
        const ours = timed((iters) => {
          let acc = 0;
          for (let i = 0; i < iters; i++) {
            const v = region.bytes((i % VIEW_SLOTS) * VIEW_LEN, VIEW_LEN);
            acc += v[i & (VIEW_LEN - 1)];
          }
          consume(acc);
        });
        const base = timed((iters) => {
          let acc = 0;
          for (let i = 0; i < iters; i++) {
            const v = new Uint8Array(plain, (i % VIEW_SLOTS) * VIEW_LEN, VIEW_LEN);
            acc += v[i & (VIEW_LEN - 1)];
          }
          consume(acc);
        });
        measure({ name: "region.bytes(off, 4096)", loop: ours }, [{ name: "new Uint8Array(ab)", loop: base }]);
      } else {
        const ours = timed((iters) => {
          let acc = 0;
          for (let i = 0; i < iters; i++) {
            const v = region.dataView((i % VIEW_SLOTS) * VIEW_LEN, VIEW_LEN);
            acc += v.getUint8(i & (VIEW_LEN - 1));
          }
          consume(acc);
        });
        const base = timed((iters) => {
          let acc = 0;
          for (let i = 0; i < iters; i++) {
            const v = new DataView(plain, (i % VIEW_SLOTS) * VIEW_LEN, VIEW_LEN);
            acc += v.getUint8(i & (VIEW_LEN - 1));
          }
          consume(acc);
        });
        measure({ name: "region.dataView(off, 4096)", loop: ours }, [{ name: "new DataView(ab)", loop: base }]);
      }
    },
  };
}

function memcpy(name: string, size: number): BenchCase {
  return {
    name,
    bytesPerOp: size,
    run(measure) {
      using src = MmapRegion.anonymous(size);
      using dst = MmapRegion.anonymous(size);
      const srcView = src.bytes();
      const dstView = dst.bytes();
      for (let i = 0; i < size; i++) srcView[i] = i * 7;
      dstView.fill(0); // fault the destination in too
      const n = native();
      const srcAddr = src.hostAddress, dstAddr = dst.hostAddress, len = BigInt(size);
      const last = size - 1;

      const ours = timed((iters) => {
        for (let i = 0; i < iters; i++) n.memcpy(dstAddr, srcAddr, len);
        consume(dstView[last]);
      });
      const cLoop: TimedLoop = (iters) => {
        const ns = Number(benchNative().benchMemcpy(dstAddr, srcAddr, len, iters));
        consume(dstView[last]);
        return ns;
      };
      const set = timed((iters) => {
        for (let i = 0; i < iters; i++) dstView.set(srcView);
        consume(dstView[last]);
      });
      measure({ name: "native().memcpy(dst, src, n) per FFI call", loop: ours }, [
        { name: "C memcpy loop", loop: cLoop },
        { name: "Uint8Array.set", loop: set },
      ]);
      if (dstView[last] !== srcView[last]) throw new Error(`${name}: the copy did not arrive`);
    },
  };
}

export function foundationCases(): BenchCase[] {
  return [
    mapUnmap("map_unmap_4k", 4 * KIB),
    mapUnmap("map_unmap_1m", MIB),
    mapUnmap("map_unmap_1g", GIB),
    mapUnmap("map_view_unmap_4k", 4 * KIB, true),
    viewCreate("view_create_4k", "bytes"),
    viewCreate("dataview_create_4k", "dataView"),
    memcpy("memcpy_4k", 4 * KIB),
    memcpy("memcpy_1m", MIB),
  ];
}
