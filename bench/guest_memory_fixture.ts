/**
 * The memory and the C baselines of the guest memory benchmark: the vm-memory workload's two
 * prefaulted anonymous regions `[0, 256 MiB)` and `[256 MiB, 512 MiB)`, and the loops of
 * `bench/native/gmem_bench.c` that do the same accesses at the same addresses.
 * @module
 */

import { GuestMemoryMmap, type GuestRegionOptions } from "../mod.ts";
import { benchNative } from "./native_bench.ts";
import { native } from "../src/ffi/native.ts";
import type { Side } from "./foundation.ts";
import { consume } from "./harness.ts";
import { Lcg, referenceHighWords } from "./lcg.ts";

/** One KiB. @example `4 * KIB` */
export const KIB = 1024;
/** One MiB. @example `256 * MIB` */
export const MIB = 1024 * KIB;
/** Size of each of the two regions. @example `[[0, REGION], [REGION, REGION]]` */
export const REGION = 256 * MIB;

/** Every byte of the memory starts as this (so loads return something other than zero). @example `low[0] === FILL` */
export const FILL = 0x5a;

/** The access kinds of `gm_bench_lcg` (`GM_BENCH_*` in `bench/native/gmem_bench.c`). @example `CKind.loadU64` */
export const CKind = {
  lcgOnly: 0,
  loadU64: 1,
  storeU64: 2,
  loadU32: 3,
  storeU8: 4,
  copyOut: 5,
  copyIn: 6,
  storeU64Dirty: 7,
  /** copyOut with an lfence after each copy; x86-64 only (the loop reports 0 ns elsewhere). */
  copyOutFenced: 8,
} as const;

/**
 * The two regions, prefaulted, with the raw views the baselines use.
 *
 * @example
 * ```ts ignore
 * using fx = openFixture();
 * fx.mem.readU64(0x100000) === fx.lowView.getBigUint64(0x100000, true); // true
 * ```
 */
export interface Fixture extends Disposable {
  /** The guest memory under test. */
  mem: GuestMemoryMmap;
  /** All of region 0: guest address = index. */
  low: Uint8Array<ArrayBuffer>;
  /** All of region 1: guest address = 256 MiB + index. */
  high: Uint8Array<ArrayBuffer>;
  /** A DataView over all of region 0. */
  lowView: DataView<ArrayBuffer>;
  /** Host address of region 0's first byte. */
  lowHost: bigint;
  /** Host address of region 1's first byte. */
  highHost: bigint;
}

/**
 * Maps the two regions (with `options`, e.g. dirty tracking) and touches every page.
 *
 * @example
 * ```ts ignore
 * using fx = openFixture({ dirtyPageSize: 4096 });
 * ```
 */
export function openFixture(options: GuestRegionOptions = {}): Fixture {
  const mem = GuestMemoryMmap.fromRanges([[0, REGION], [REGION, REGION]], options);
  const [r0, r1] = mem.regions();
  const low = r0.mmap.bytes(), high = r1.mmap.bytes();
  // Through the raw views, which are not dirty-logged: a tracking case starts from a clean bitmap.
  low.fill(FILL);
  high.fill(FILL);
  return {
    mem,
    low,
    high,
    lowView: r0.mmap.dataView(),
    lowHost: r0.mmap.hostAddress,
    highHost: r1.mmap.hostAddress,
    [Symbol.dispose]: () => mem.close(),
  };
}

let lcgChecked = false;

/**
 * Checks once that the TypeScript LCG gives the BigInt reference sequence and the same sum as the
 * C loop, so that every pair of loops compared really visits the same addresses.
 *
 * @example
 * ```ts ignore
 * checkLcgAgreement(); // throws if the generators disagree
 * ```
 */
export function checkLcgAgreement(): void {
  if (lcgChecked) return;
  const steps = 1 << 16;
  const reference = referenceHighWords(steps);
  const g = new Lcg();
  let sum = 0;
  for (let i = 0; i < steps; i++) {
    const v = g.next() >>> 0;
    if (v !== reference[i]) throw new Error(`Lcg step ${i} gave ${v}, the reference ${reference[i]}`);
    sum += v;
  }
  const n = benchNative();
  n.benchLcg(CKind.lcgOnly, 0n, 0xffff_ffffn, 0n, 0n, steps);
  const cSum = n.benchSink();
  if (cSum !== BigInt(sum)) throw new Error(`the C LCG summed ${cSum} over ${steps} steps, the TypeScript one ${sum}`);
  lcgChecked = true;
}

/**
 * A C loop of `gm_bench_lcg`: `kind` accesses at `host + ((x >> 32) & mask)`, copying `length`
 * bytes to or from `buf` (a host address) for the copy kinds.
 *
 * @example
 * ```ts ignore
 * const side = cLcgSide("C load loop", CKind.loadU64, fx.lowHost + BigInt(MIB), lcgMask(64 * KIB, 8));
 * ```
 */
export function cLcgSide(name: string, kind: number, host: bigint, mask: number, buf = 0n, length = 0): Side {
  const n = benchNative();
  const m = BigInt(mask), len = BigInt(length);
  return {
    name,
    loop: (iters) => {
      const ns = Number(n.benchLcg(kind, host, m, buf, len, iters));
      if (ns === 0) throw new Error(`gm_bench_lcg does not know kind ${kind}`);
      consume(Number(n.benchSink() & 0xffff_ffffn));
      return ns;
    },
  };
}

/**
 * A C loop of `gm_bench_copy_ops`: every iteration does the (dst, src, length) copies in order.
 *
 * @example
 * ```ts ignore
 * const side = cCopySide("C memcpy loop", [[hostOf(buf), fx.lowHost, buf.length]]);
 * ```
 */
export function cCopySide(name: string, copies: ReadonlyArray<readonly [bigint, bigint, number]>): Side {
  const n = benchNative();
  const ops = new BigUint64Array(copies.flatMap(([dst, src, len]) => [dst, src, BigInt(len)]));
  return { name, loop: (iters) => Number(n.benchCopyOps(ops, copies.length, iters)) };
}

/**
 * Where every case's own buffer starts: a cache line, as in the Rust peer (`BUFFER_ALIGN` in
 * bench/peer/src/case.rs). V8 starts a `new Uint8Array(4096)` at any 16-byte boundary, and a 4 KiB
 * copy's time moves by ~20 ns with where its buffer falls in a cache line (C loop 48 ns at 16 mod
 * 64, 42 ns at 64 mod 4096, 37 ns page-aligned), so each side's allocator would otherwise decide.
 */
export const BUFFER_ALIGN = 64;

/**
 * `size` bytes filled with `fill`, starting at a {@link BUFFER_ALIGN} boundary (a window of a
 * slightly larger array, whose bytes live outside V8's heap and never move).
 *
 * @example
 * ```ts ignore
 * console.log(hostOf(alignedBytes(4096)) % 64n); // 0n
 * ```
 */
export function alignedBytes(size: number, fill = 0): Uint8Array {
  const raw = new Uint8Array(size + BUFFER_ALIGN);
  const skew = Number(hostOf(raw) % BigInt(BUFFER_ALIGN));
  const start = (BUFFER_ALIGN - skew) % BUFFER_ALIGN;
  return raw.subarray(start, start + size).fill(fill);
}

/** The host address of a buffer's first byte, for a C loop that copies into or out of it. @example `hostOf(new Uint8Array(4096))` */
export function hostOf(buf: Uint8Array): bigint {
  return native().addressOf(buf);
}
