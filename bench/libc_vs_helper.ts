/**
 * What binding libc directly would buy over the helper (issue 14, item 1): the same system calls
 * through the prebuilt helper (which returns `-errno`) and through libc.so.6 (which returns -1 and
 * leaves errno behind, read with a second FFI call to `__errno_location`), in one run, ns per call.
 *
 *   deno run --allow-ffi --allow-read bench/libc_vs_helper.ts
 *   npx -y bun@1 bench/libc_vs_helper.ts
 * @module
 */

import { native } from "../src/ffi/native.ts";
import { defaultLibraryPath } from "../src/ffi/deno_binding.ts";

/** The calls compared, in Deno's notation (translated for Bun). */
const HELPER = {
  gm_protect: { parameters: ["u64", "u64", "i32"], result: "i32" },
  gm_close: { parameters: ["i32"], result: "i32" },
  gm_readv: { parameters: ["i32", "buffer", "u32"], result: "i64" },
  gm_memcpy: { parameters: ["u64", "u64", "u64"], result: "void" },
} as const;

const LIBC = {
  mprotect: { parameters: ["u64", "u64", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  readv: { parameters: ["i32", "buffer", "i32"], result: "i64" },
  memmove: { parameters: ["u64", "u64", "u64"], result: "u64" },
  __errno_location: { parameters: [], result: "u64" },
} as const;

type Fn = (...args: (number | bigint | BigUint64Array)[]) => number | bigint;

function open(path: string, symbols: Record<string, { parameters: readonly string[]; result: string }>) {
  const meta = import.meta as ImportMeta & { require?: (id: string) => unknown };
  if ("Bun" in globalThis && typeof meta.require === "function") {
    const ffi = meta.require("bun:ffi") as {
      dlopen(p: string, s: Record<string, { args: string[]; returns: string }>): { symbols: Record<string, Fn> };
    };
    const t = (x: string) => (x === "buffer" ? "ptr" : x);
    const specs = Object.fromEntries(
      Object.entries(symbols).map(([n, s]) => [n, { args: s.parameters.map(t), returns: t(s.result) }]),
    );
    return ffi.dlopen(path, specs).symbols;
  }
  const lib = Deno.dlopen(path, symbols as unknown as Deno.ForeignLibraryInterface);
  return lib.symbols as unknown as Record<string, Fn>;
}

const helperPath = "Bun" in globalThis ? native().libraryPath : defaultLibraryPath();
const h = open(helperPath, HELPER);
const c = open("libc.so.6", LIBC);
const errnoAt = native().pointerView(BigInt(c.__errno_location()));

const PAGE = 4096n;
const region = native();
const req = new BigInt64Array(16);
req[0] = PAGE * 2n; // size
req[1] = 3n; // PROT_READ | PROT_WRITE
req[2] = 0x22n; // MAP_PRIVATE | MAP_ANONYMOUS
req[3] = -1n;
if (region.map(req, null) !== 0) throw new Error("map failed");
const addr = BigInt(req[10]);
const zero = native().open(new TextEncoder().encode("/dev/zero\0"), false);
const pairs = new BigUint64Array([addr, 64n]);

/** Median ns per call of `body` over 9 timed rounds of `n` calls. */
function perCall(body: (n: number) => number, n = 200_000): number {
  body(n); // warm up and optimise
  const rounds: number[] = [];
  for (let r = 0; r < 9; r++) {
    const t0 = performance.now();
    body(n);
    rounds.push(((performance.now() - t0) * 1e6) / n);
  }
  return rounds.sort((a, b) => a - b)[4];
}

let sink = 0;
const rows: [string, number, number][] = [
  [
    "mprotect 4 KiB (succeeds)",
    perCall((n) => {
      for (let i = 0; i < n; i++) sink += h.gm_protect(addr, PAGE, 3) as number;
      return sink;
    }),
    perCall((n) => {
      for (let i = 0; i < n; i++) {
        const rc = c.mprotect(addr, PAGE, 3) as number;
        sink += rc < 0 ? -errnoAt.getInt32() : rc;
      }
      return sink;
    }),
  ],
  [
    "close(-1) (fails: EBADF)",
    perCall((n) => {
      for (let i = 0; i < n; i++) sink += h.gm_close(-1) as number;
      return sink;
    }),
    perCall((n) => {
      for (let i = 0; i < n; i++) {
        const rc = c.close(-1) as number;
        sink += rc < 0 ? -errnoAt.getInt32() : rc;
      }
      return sink;
    }),
  ],
  [
    "readv 64 B from /dev/zero",
    perCall((n) => {
      for (let i = 0; i < n; i++) sink += Number(h.gm_readv(zero, pairs, 1));
      return sink;
    }),
    perCall((n) => {
      for (let i = 0; i < n; i++) {
        const rc = Number(c.readv(zero, pairs, 1));
        sink += rc < 0 ? -errnoAt.getInt32() : rc;
      }
      return sink;
    }),
  ],
  [
    "memmove 64 B",
    perCall((n) => {
      for (let i = 0; i < n; i++) h.gm_memcpy(addr + PAGE, addr, 64n);
      return sink;
    }),
    perCall((n) => {
      for (let i = 0; i < n; i++) c.memmove(addr + PAGE, addr, 64n);
      return sink;
    }),
  ],
];

native().close(zero);
native().unmap(addr, PAGE * 2n);
const runtime = "Bun" in globalThis ? "bun" : "deno";
console.log(`${runtime}: ns per call (median of 9 rounds of 200000), helper vs libc + errno`);
for (const [name, helper, libc] of rows) {
  console.log(`  ${name.padEnd(28)} helper ${helper.toFixed(1).padStart(6)}  libc ${libc.toFixed(1).padStart(6)}`);
}
if (sink === 0.5) console.log(sink);
