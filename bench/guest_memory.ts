/**
 * Guest memory benchmarks: the vm-memory workload of perf-baselines.md through `GuestMemoryMmap`'s
 * public API, same case names. Each case runs beside a bare DataView or typed-array loop over the
 * same memory at the same addresses and a C loop from `bench/native/gmem_bench.c` doing the same accesses,
 * with vm-memory 0.18's published figure printed alongside.
 *
 * Addresses come from the LCG (bench/lcg.ts), restarted at the seed by every loop call. `*_hot`:
 * scalars in a 64 KiB window at 1 MiB, 4 KiB copies in a 256 KiB window at 1 MiB; `*_wide`: all
 * of region 0.
 * @module
 */

import { GuestMemoryMmap, GuestRegionMmap } from "../mod.ts";
import type { BenchCase, PublishedFigure, Side } from "./foundation.ts";
import {
  alignedBytes,
  cCopySide,
  checkLcgAgreement,
  CKind,
  cLcgSide,
  type Fixture,
  hostOf,
  KIB,
  MIB,
  openFixture,
  REGION,
} from "./guest_memory_fixture.ts";
import { consume, timed } from "./harness.ts";
import { native } from "../src/ffi/native.ts";
import { Lcg, lcgMask } from "./lcg.ts";

/** Where a case's addresses fall: `[base, base + span)`. */
interface Window {
  base: number;
  span: number;
}

const HOT_OBJ: Window = { base: MIB, span: 64 * KIB };
const HOT_4K: Window = { base: MIB, span: 256 * KIB };
const WIDE: Window = { base: 0, span: REGION };
const PAGE = 4 * KIB;

/** The value the u64 write cases store. */
const U64_VALUE = 0x0123_4567_89ab_cdefn;

function vm018(nsPerOp: number): PublishedFigure {
  return { source: "vm-memory 0.18", nsPerOp };
}

/** A case that opens the two regions, checks the generators agree, and hands the fixture to `sides`. */
function guestCase(
  name: string,
  published: PublishedFigure | undefined,
  bytesPerOp: number | undefined,
  sides: (fx: Fixture) => [Side, Side[]],
): BenchCase {
  return {
    name,
    bytesPerOp,
    published,
    run(measure) {
      checkLcgAgreement();
      using fx = openFixture();
      const [ours, baselines] = sides(fx);
      measure(ours, baselines);
    },
  };
}

function lcgOverhead(): BenchCase {
  const mask = lcgMask(HOT_OBJ.span, 8);
  return guestCase("lcg_overhead", undefined, undefined, () => [
    {
      name: "TypeScript Lcg.next()",
      loop: timed((iters) => {
        const g = new Lcg();
        let acc = 0;
        for (let i = 0; i < iters; i++) acc ^= g.next() & mask;
        consume(acc);
      }),
    },
    [cLcgSide("C LCG loop", CKind.lcgOnly, 0n, mask)],
  ]);
}

function readU64(name: string, w: Window, published?: PublishedFigure): BenchCase {
  const mask = lcgMask(w.span, 8), base = w.base;
  return guestCase(name, published, undefined, (fx) => {
    const mem = fx.mem, dv = fx.lowView;
    return [
      {
        name: "mem.readU64(a)",
        loop: timed((iters) => {
          const g = new Lcg();
          let n = 0;
          for (let i = 0; i < iters; i++) if (mem.readU64(base + (g.next() & mask)) !== 0n) n++;
          consume(n);
        }),
      },
      [
        {
          name: "DataView.getBigUint64",
          loop: timed((iters) => {
            const g = new Lcg();
            let n = 0;
            for (let i = 0; i < iters; i++) if (dv.getBigUint64(base + (g.next() & mask), true) !== 0n) n++;
            consume(n);
          }),
        },
        cLcgSide("C load loop", CKind.loadU64, fx.lowHost + BigInt(base), mask),
      ],
    ];
  });
}

function writeU64(name: string, w: Window, published?: PublishedFigure): BenchCase {
  const mask = lcgMask(w.span, 8), base = w.base;
  return guestCase(name, published, undefined, (fx) => {
    const mem = fx.mem, dv = fx.lowView;
    return [
      {
        name: "mem.writeU64(a, v)",
        loop: timed((iters) => {
          const g = new Lcg();
          for (let i = 0; i < iters; i++) mem.writeU64(base + (g.next() & mask), U64_VALUE);
        }),
      },
      [
        {
          name: "DataView.setBigUint64",
          loop: timed((iters) => {
            const g = new Lcg();
            for (let i = 0; i < iters; i++) dv.setBigUint64(base + (g.next() & mask), U64_VALUE, true);
          }),
        },
        cLcgSide("C store loop", CKind.storeU64, fx.lowHost + BigInt(base), mask),
      ],
    ];
  });
}

function readU32(name: string, w: Window, published?: PublishedFigure): BenchCase {
  const mask = lcgMask(w.span, 4), base = w.base;
  return guestCase(name, published, undefined, (fx) => {
    const mem = fx.mem, dv = fx.lowView;
    return [
      {
        name: "mem.readU32(a)",
        loop: timed((iters) => {
          const g = new Lcg();
          let acc = 0;
          for (let i = 0; i < iters; i++) acc ^= mem.readU32(base + (g.next() & mask));
          consume(acc);
        }),
      },
      [
        {
          name: "DataView.getUint32",
          loop: timed((iters) => {
            const g = new Lcg();
            let acc = 0;
            for (let i = 0; i < iters; i++) acc ^= dv.getUint32(base + (g.next() & mask), true);
            consume(acc);
          }),
        },
        cLcgSide("C load loop", CKind.loadU32, fx.lowHost + BigInt(base), mask),
      ],
    ];
  });
}

function writeU8(name: string, w: Window, published?: PublishedFigure): BenchCase {
  const mask = lcgMask(w.span, 1), base = w.base;
  return guestCase(name, published, undefined, (fx) => {
    const mem = fx.mem, dv = fx.lowView;
    return [
      {
        name: "mem.writeU8(a, v)",
        loop: timed((iters) => {
          const g = new Lcg();
          for (let i = 0; i < iters; i++) mem.writeU8(base + (g.next() & mask), i & 0xff);
        }),
      },
      [
        {
          name: "DataView.setUint8",
          loop: timed((iters) => {
            const g = new Lcg();
            for (let i = 0; i < iters; i++) dv.setUint8(base + (g.next() & mask), i & 0xff);
          }),
        },
        cLcgSide("C store loop", CKind.storeU8, fx.lowHost + BigInt(base), mask),
      ],
    ];
  });
}

/** 4 KiB out of memory at page-aligned LCG addresses into one reused buffer. */
function readSlice4k(name: string, w: Window, published?: PublishedFigure): BenchCase {
  const mask = lcgMask(w.span, PAGE), base = w.base;
  return guestCase(name, published, PAGE, (fx) => {
    const mem = fx.mem, low = fx.low, buf = alignedBytes(PAGE);
    return [
      {
        name: "mem.readSlice(buf, a)",
        loop: timed((iters) => {
          const g = new Lcg();
          for (let i = 0; i < iters; i++) mem.readSlice(buf, base + (g.next() & mask));
          consume(buf[PAGE - 1]);
        }),
      },
      [
        typedArrayRead4k(low, buf, base, mask),
        bareFfiCopy("bare FFI memmove", false, fx.lowHost, buf, base, mask),
        cLcgSide("C memcpy loop", CKind.copyOut, fx.lowHost + BigInt(base), mask, hostOf(buf), PAGE),
        // What the FFI floor looks like from C: a loop whose copies cannot overlap (x86-64 only).
        ...(Deno.build.arch === "x86_64"
          ? [cLcgSide("C memcpy+lfence loop", CKind.copyOutFenced, fx.lowHost + BigInt(base), mask, hostOf(buf), PAGE)]
          : []),
      ],
    ];
  });
}

/**
 * The helper's memmove called straight from a loop, no library around it: the floor a copy through
 * FFI has on this runtime (the call boundary included), beside the C loop that has none.
 */
function bareFfiCopy(name: string, into: boolean, host: bigint, buf: Uint8Array, base: number, mask: number): Side {
  const n = native(), guest = Number(host), at = Number(hostOf(buf));
  return {
    name,
    loop: timed((iters) => {
      const g = new Lcg();
      if (into) { for (let i = 0; i < iters; i++) n.copyAt(guest + base + (g.next() & mask), at, PAGE); }
      else for (let i = 0; i < iters; i++) n.copyAt(at, guest + base + (g.next() & mask), PAGE);
      consume(buf[PAGE - 1]);
    }),
  };
}

function typedArrayRead4k(low: Uint8Array, buf: Uint8Array, base: number, mask: number): Side {
  return {
    name: "buf.set(u8.subarray)",
    loop: timed((iters) => {
      const g = new Lcg();
      for (let i = 0; i < iters; i++) {
        const a = base + (g.next() & mask);
        buf.set(low.subarray(a, a + PAGE));
      }
      consume(buf[PAGE - 1]);
    }),
  };
}

function writeSlice4k(name: string, w: Window, published?: PublishedFigure): BenchCase {
  const mask = lcgMask(w.span, PAGE), base = w.base;
  return guestCase(name, published, PAGE, (fx) => {
    const mem = fx.mem, low = fx.low, buf = alignedBytes(PAGE, 0xa5);
    return [
      {
        name: "mem.writeSlice(buf, a)",
        loop: timed((iters) => {
          const g = new Lcg();
          for (let i = 0; i < iters; i++) mem.writeSlice(buf, base + (g.next() & mask));
        }),
      },
      [
        {
          name: "u8.set(buf, a)",
          loop: timed((iters) => {
            const g = new Lcg();
            for (let i = 0; i < iters; i++) low.set(buf, base + (g.next() & mask));
          }),
        },
        bareFfiCopy("bare FFI memmove", true, fx.lowHost, buf, base, mask),
        cLcgSide("C memcpy loop", CKind.copyIn, fx.lowHost + BigInt(base), mask, hostOf(buf), PAGE),
      ],
    ];
  });
}

function getSliceCopyTo4k(name: string, w: Window, published?: PublishedFigure): BenchCase {
  const mask = lcgMask(w.span, PAGE), base = w.base;
  return guestCase(name, published, PAGE, (fx) => {
    const mem = fx.mem, buf = alignedBytes(PAGE);
    return [
      {
        name: "getSlice(a, 4096).copyTo",
        loop: timed((iters) => {
          const g = new Lcg();
          for (let i = 0; i < iters; i++) mem.getSlice(base + (g.next() & mask), PAGE).copyTo(buf);
          consume(buf[PAGE - 1]);
        }),
      },
      [
        typedArrayRead4k(fx.low, buf, base, mask),
        bareFfiCopy("bare FFI memmove", false, fx.lowHost, buf, base, mask),
        cLcgSide("C memcpy loop", CKind.copyOut, fx.lowHost + BigInt(base), mask, hostOf(buf), PAGE),
      ],
    ];
  });
}

/** 1 MiB at guest address 1 MiB, into or out of one buffer. */
function slice1m(name: string, write: boolean, published?: PublishedFigure): BenchCase {
  return guestCase(name, published, MIB, (fx) => {
    const mem = fx.mem, low = fx.low, buf = alignedBytes(MIB, 0xa5);
    const guest = fx.lowHost + BigInt(MIB), host = hostOf(buf);
    if (write) {
      return [
        { name: "mem.writeSlice(buf, 1M)", loop: timed((iters) => repeat(iters, () => mem.writeSlice(buf, MIB))) },
        [
          { name: "u8.set(buf, 1M)", loop: timed((iters) => repeat(iters, () => low.set(buf, MIB))) },
          cCopySide("C memcpy loop", [[guest, host, MIB]]),
        ],
      ];
    }
    return [
      { name: "mem.readSlice(buf, 1M)", loop: timed((iters) => repeat(iters, () => mem.readSlice(buf, MIB))) },
      [
        {
          name: "buf.set(u8.subarray)",
          loop: timed((iters) => repeat(iters, () => buf.set(low.subarray(MIB, 2 * MIB)))),
        },
        cCopySide("C memcpy loop", [[host, guest, MIB]]),
      ],
    ];
  });
}

/** Calls `f` `iters` times (for copies large enough that the call does not matter). */
function repeat(iters: number, f: () => void): void {
  for (let i = 0; i < iters; i++) f();
}

/** 8 KiB ending 4 KiB into region 1 (two fragments), or ending where region 0 ends (one). */
function slice8k(name: string, cross: boolean, published?: PublishedFigure): BenchCase {
  const addr = REGION - (cross ? PAGE : 2 * PAGE);
  return guestCase(name, published, 2 * PAGE, (fx) => {
    const mem = fx.mem, low = fx.low, high = fx.high, buf = alignedBytes(2 * PAGE);
    const host = hostOf(buf);
    const ours: Side = {
      name: "mem.readSlice(buf, a)",
      loop: timed((iters) => {
        for (let i = 0; i < iters; i++) mem.readSlice(buf, addr);
      }),
    };
    if (cross) {
      const lowHead = fx.lowHost + BigInt(addr);
      return [ours, [
        {
          name: "2x buf.set(subarray)",
          loop: timed((iters) => {
            for (let i = 0; i < iters; i++) {
              buf.set(low.subarray(addr, REGION));
              buf.set(high.subarray(0, PAGE), PAGE);
            }
          }),
        },
        cCopySide("C 2x memcpy loop", [[host, lowHead, PAGE], [host + BigInt(PAGE), fx.highHost, PAGE]]),
      ]];
    }
    return [ours, [
      {
        name: "buf.set(u8.subarray)",
        loop: timed((iters) => {
          for (let i = 0; i < iters; i++) buf.set(low.subarray(addr, addr + 2 * PAGE));
        }),
      },
      cCopySide("C memcpy loop", [[host, fx.lowHost + BigInt(addr), 2 * PAGE]]),
    ]];
  });
}

/**
 * u64 writes with dirty tracking (4 KiB pages) in the hot window. Baselines: the same writes on
 * the same memory without tracking (the difference is what tracking costs), a DataView store
 * followed by the region's own `markDirty`, and C stores that set a bit per page.
 */
function writeU64Bitmap(name: string, published?: PublishedFigure): BenchCase {
  const w = HOT_OBJ, mask = lcgMask(w.span, 8), base = w.base;
  return {
    name,
    published,
    run(measure) {
      checkLcgAgreement();
      using fx = openFixture({ dirtyPageSize: PAGE });
      const tracked = fx.mem, dv = fx.lowView;
      const bitmap = tracked.regions()[0].bitmap;
      if (bitmap === undefined) throw new Error(`${name}: the region has no dirty bitmap`);
      // The same mappings without a bitmap; not closed separately (closing fx unmaps them).
      const untracked = GuestMemoryMmap.fromRegions(
        tracked.regions().map((r) => new GuestRegionMmap(r.mmap, r.startAddr)),
      );
      const cWords = new Uint32Array(w.span / PAGE / 32 + 1);
      measure(
        {
          name: "tracked writeU64",
          loop: timed((iters) => {
            const g = new Lcg();
            for (let i = 0; i < iters; i++) tracked.writeU64(base + (g.next() & mask), U64_VALUE);
          }),
        },
        [
          {
            name: "untracked writeU64",
            loop: timed((iters) => {
              const g = new Lcg();
              for (let i = 0; i < iters; i++) untracked.writeU64(base + (g.next() & mask), U64_VALUE);
            }),
          },
          {
            name: "DataView + markDirty",
            loop: timed((iters) => {
              const g = new Lcg();
              for (let i = 0; i < iters; i++) {
                const a = base + (g.next() & mask);
                dv.setBigUint64(a, U64_VALUE, true);
                bitmap.markDirty(a, 8);
              }
            }),
          },
          cLcgSide(
            "C store + page bit",
            CKind.storeU64Dirty,
            fx.lowHost + BigInt(base),
            mask,
            hostOf(new Uint8Array(cWords.buffer)),
          ),
        ],
      );
      // Every page of the window, and nothing else, must have been logged.
      for (let a = 0; a < 2 * w.span + base; a += PAGE) {
        const inside = a >= base && a < base + w.span;
        if (bitmap.dirtyAt(a) !== inside) throw new Error(`${name}: page at ${a} dirty=${!inside}`);
      }
    },
  };
}

/**
 * The guest memory cases in the order of perf-baselines.md.
 *
 * @example
 * ```ts ignore
 * const cases = guestMemoryCases().filter((c) => c.name.startsWith("read_obj"));
 * ```
 */
export function guestMemoryCases(): BenchCase[] {
  return [
    lcgOverhead(),
    readU64("read_obj_u64_hot", HOT_OBJ, vm018(6.94)),
    readU64("read_obj_u64_wide", WIDE, vm018(49.8)),
    writeU64("write_obj_u64_hot", HOT_OBJ, vm018(5.78)),
    writeU64("write_obj_u64_wide", WIDE),
    readU32("read_obj_u32_hot", HOT_OBJ, vm018(13.57)),
    writeU8("write_obj_u8_hot", HOT_OBJ, vm018(13.57)),
    readSlice4k("read_slice_4k_hot", HOT_4K, vm018(48.8)),
    readSlice4k("read_slice_4k_wide", WIDE, vm018(331)),
    writeSlice4k("write_slice_4k_hot", HOT_4K, vm018(38.9)),
    slice1m("read_slice_1m_hot", false, vm018(MIB / 57.9)), // published as 57.9 GB/s
    slice1m("write_slice_1m_hot", true),
    slice8k("read_slice_8k_cross", true, vm018(76.8)),
    slice8k("read_slice_8k_nocross", false, vm018(64.7)),
    getSliceCopyTo4k("get_slice_copy_to_4k_hot", HOT_4K, vm018(47.3)),
    writeU64Bitmap("write_obj_u64_hot_bitmap", vm018(27.7)),
  ];
}
