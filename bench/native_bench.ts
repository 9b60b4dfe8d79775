/**
 * The C baselines of the bench (`bench/native/gmem_bench.c`), loaded from
 * `native/build/libgmem_bench.so`, which `deno task build:bench` compiles (the bench tasks depend on
 * it). They live here, not in the library's helper, so that users load no benchmark code and need
 * no compiler: only the bench does.
 * @module
 */

/** The baselines' symbols in Deno's notation (Bun's is derived from it). */
const SYMBOLS = {
  gm_bench_map_unmap: { parameters: ["u64", "i32", "u32"], result: "u64" },
  gm_bench_memcpy: { parameters: ["u64", "u64", "u64", "u32"], result: "u64" },
  gm_bench_lcg: { parameters: ["i32", "u64", "u64", "u64", "u64", "u32"], result: "u64" },
  gm_bench_sink: { parameters: [], result: "u64" },
  gm_bench_copy_ops: { parameters: ["buffer", "u32", "u32"], result: "u64" },
  gm_bench_iotlb_lookup: { parameters: ["buffer", "u32", "u64", "u64", "u64", "u32"], result: "u64" },
  gm_bench_iotlb_overwrite: { parameters: ["buffer", "u32", "u64", "u64", "u32"], result: "u64" },
  gm_bench_iotlb_insert: { parameters: ["u64", "u32", "u32"], result: "u64" },
} as const;

type Name = keyof typeof SYMBOLS;

/** A baseline function as either runtime calls it: bigints for 64-bit values, typed arrays for buffers. */
type CFunction = (...args: (number | bigint | BigUint64Array)[]) => unknown;

/**
 * The C loops, each timed in C: the result is nanoseconds for all `iters` rounds (0 if a round
 * could not run).
 *
 * @example
 * ```ts ignore
 * const ns = Number(benchNative().benchMapUnmap(4096n, 0x22, 1000));
 * ```
 */
export interface BenchNative {
  /** `iters` rounds of mmap + munmap of `size` bytes with `flags`. */
  benchMapUnmap(size: bigint, flags: number, iters: number): bigint;
  /** `iters` memcpy calls of `length` bytes. */
  benchMemcpy(dst: bigint, src: bigint, length: bigint, iters: number): bigint;
  /** `iters` accesses of `kind` (`GM_BENCH_*`) at the vm-memory workload's LCG addresses `base + ((x >> 32) & mask)`. */
  benchLcg(kind: number, base: bigint, mask: bigint, buf: bigint, length: bigint, iters: number): bigint;
  /** What the last run summed (offsets, loaded values, indices or the table size). */
  benchSink(): bigint;
  /** `iters` rounds of the `count` (dst, src, len) copies in `ops`. */
  benchCopyOps(ops: BigUint64Array, count: number, iters: number): bigint;
  /** `iters` binary searches of `[a, a + length)` in `table` (n starts, n ends, n diffs). */
  benchIotlbLookup(table: BigUint64Array, n: number, base: bigint, mask: bigint, length: bigint, iters: number): bigint;
  /** `iters` re-mappings of `length` bytes by binary search and overwrite in `table`. */
  benchIotlbOverwrite(table: BigUint64Array, n: number, mask: bigint, length: bigint, iters: number): bigint;
  /** `iters` inserts into a chunked sorted table that starts empty every `perRound` inserts. */
  benchIotlbInsert(length: bigint, perRound: number, iters: number): bigint;
}

const LIBRARY = new URL("../native/build/libgmem_bench.so", import.meta.url);

let loaded: BenchNative | undefined;

/**
 * The C baselines, loaded on first use with the runtime's own FFI.
 *
 * @example
 * ```ts ignore
 * benchNative().benchSink();
 * ```
 */
export function benchNative(): BenchNative {
  return loaded ??= wrap(open(decodeURIComponent(LIBRARY.pathname)));
}

/** The library's symbols through `bun:ffi` on Bun, `Deno.dlopen` elsewhere. */
function open(path: string): Record<Name, CFunction> {
  try {
    const meta = import.meta as ImportMeta & { require?: (id: string) => unknown };
    if ("Bun" in globalThis && typeof meta.require === "function") {
      const ffi = meta.require("bun:ffi") as {
        dlopen(p: string, s: Record<string, { args: string[]; returns: string }>): { symbols: Record<Name, CFunction> };
      };
      const bunType = (t: string) => (t === "buffer" ? "ptr" : t);
      const specs = Object.fromEntries(
        Object.entries(SYMBOLS).map(([name, s]) => [name, { args: s.parameters.map(bunType), returns: s.result }]),
      );
      return ffi.dlopen(path, specs).symbols;
    }
    return Deno.dlopen(path, SYMBOLS).symbols as unknown as Record<Name, CFunction>;
  } catch (cause) {
    const text = cause instanceof Error ? cause.message : String(cause);
    throw new Error(`cannot load the bench's C baselines ${path}: ${text}. Build them with \`deno task build:bench\``, {
      cause,
    });
  }
}

function wrap(s: Record<Name, CFunction>): BenchNative {
  const big = (f: CFunction) => (...args: (number | bigint | BigUint64Array)[]) => f(...args) as bigint;
  return {
    benchMapUnmap: big(s.gm_bench_map_unmap),
    benchMemcpy: big(s.gm_bench_memcpy),
    benchLcg: big(s.gm_bench_lcg),
    benchSink: big(s.gm_bench_sink),
    benchCopyOps: big(s.gm_bench_copy_ops),
    benchIotlbLookup: big(s.gm_bench_iotlb_lookup),
    benchIotlbOverwrite: big(s.gm_bench_iotlb_overwrite),
    benchIotlbInsert: big(s.gm_bench_iotlb_insert),
  };
}
