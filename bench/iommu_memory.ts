/**
 * IommuMemory benchmark (perf-baselines.md, IOMMU table): u64 reads and slice reads through an
 * IOTLB that never misses, beside the same reads on the physical memory with no translation (a bare
 * typed-array loop, and the C load loop from bench/native/gmem_bench.c) and vm-memory 0.18's published figure.
 * @module
 */

import { GuestMemoryMmap, Permissions } from "../mod.ts";
import { IommuMemory, IotlbIommu } from "../iommu.ts";
import { benchNative } from "./native_bench.ts";
import { alignedBytes } from "./guest_memory_fixture.ts";
import type { BenchCase, PublishedFigure, Side } from "./foundation.ts";
import { consume, timed } from "./harness.ts";
import { Lcg, lcgMask } from "./lcg.ts";

const KIB = 1024;
const MIB = 1024 * KIB;
const GIB = 1024 * MIB;
const PAGE = 4 * KIB;
const REGION = 256 * MIB;
const HOT_BASE = MIB;
const HOT_SPAN = 64 * KIB;
const HOT_4K_SPAN = 256 * KIB;
const C_LOAD_U64 = 1;

/** vm-memory 0.18 figures (ns/op), printed beside ours. */
const VM_MEMORY_IOMMU: Readonly<Record<string, number>> = {
  read_obj_u64_hot_iommu_passthrough: 41.8,
  read_obj_u64_hot_iommu_identity4k: 61.9,
  read_obj_u64_wide_iommu_identity4k: 215.8,
  read_obj_u64_hot_iommu_swapped4k: 95.9,
  read_slice_4k_hot_iommu_swapped4k: 142.4,
  read_slice_64k_iommu_16frag: 1498,
  read_slice_64k_iommu_contig: 651,
};

type Table = "passthrough" | "identity4k" | "swapped4k";

function published(name: string): PublishedFigure {
  return { source: "vm-memory 0.18", nsPerOp: VM_MEMORY_IOMMU[name] };
}

/** The workload's memory: [0, 256 MiB) and [256 MiB, 512 MiB), prefaulted. */
function physical(): GuestMemoryMmap {
  return GuestMemoryMmap.fromRanges([[0, REGION], [REGION, REGION]], { populate: true });
}

function iommuFor(table: Table): IotlbIommu {
  const iommu = new IotlbIommu();
  const iotlb = iommu.iotlb;
  if (table === "identity4k") {
    for (let p = 0; p < 2 * REGION; p += PAGE) iotlb.setMapping(p, p, PAGE, Permissions.ReadWrite);
  } else if (table === "swapped4k") {
    for (let i = 0; i < (2 * REGION) / PAGE; i++) {
      iotlb.setMapping(i * PAGE, (i ^ 1) * PAGE, PAGE, Permissions.ReadWrite);
    }
  }
  return iommu;
}

/** IOVA page i maps to physical page i ^ 1 in the swapped table, i elsewhere. */
function physicalOf(table: Table, iova: number): number {
  return table === "swapped4k" ? (Math.floor(iova / PAGE) ^ 1) * PAGE + (iova % PAGE) : iova;
}

function cLoads(hostBase: bigint, span: number): Side {
  const mask = BigInt(lcgMask(span, 8));
  return {
    name: "C u64 load (no IOMMU)",
    loop: (iters) => Number(benchNative().benchLcg(C_LOAD_U64, hostBase, mask, 0n, 0n, iters)),
  };
}

function readU64Case(name: string, table: Table, wide: boolean): BenchCase {
  return {
    name,
    published: published(name),
    run(measure) {
      using phys = physical();
      const iommu = iommuFor(table);
      const mem = new IommuMemory(phys, iommu, { enabled: table !== "passthrough" });
      const base = wide ? 0 : HOT_BASE;
      const mask = lcgMask(wide ? REGION : HOT_SPAN, 8);
      const region0 = phys.regions()[0];
      const words = new BigUint64Array(region0.mmap.bytes().buffer);
      const ours = timed((iters) => {
        const lcg = new Lcg();
        let acc = 0n;
        for (let i = 0; i < iters; i++) acc ^= mem.readU64(base + (lcg.next() & mask));
        consume(Number(acc & 0xffn));
      });
      // The same reads on the physical addresses the IOMMU would produce: the cost of memory alone.
      const swapped = table === "swapped4k";
      const bare = timed((iters) => {
        const lcg = new Lcg();
        let acc = 0n;
        for (let i = 0; i < iters; i++) {
          const iova = base + (lcg.next() & mask);
          const gpa = swapped ? physicalOf(table, iova) : iova;
          acc ^= words[gpa / 8];
        }
        consume(Number(acc & 0xffn));
      });
      measure({ name: `IommuMemory.readU64 (${table})`, loop: ours }, [
        { name: "BigUint64Array, no IOMMU", loop: bare },
        cLoads(region0.mmap.hostAddress + BigInt(base), wide ? REGION : HOT_SPAN),
      ]);
    },
  };
}

function readSlice4kCase(): BenchCase {
  const name = "read_slice_4k_hot_iommu_swapped4k";
  return {
    name,
    bytesPerOp: PAGE,
    published: published(name),
    run(measure) {
      using phys = physical();
      const mem = new IommuMemory(phys, iommuFor("swapped4k"));
      const mask = lcgMask(HOT_4K_SPAN, PAGE);
      const buf = alignedBytes(PAGE);
      const bytes = phys.regions()[0].mmap.bytes();
      const ours = timed((iters) => {
        const lcg = new Lcg();
        for (let i = 0; i < iters; i++) mem.readSlice(buf, HOT_BASE + (lcg.next() & mask));
        consume(buf[7]);
      });
      const bare = timed((iters) => {
        const lcg = new Lcg();
        for (let i = 0; i < iters; i++) {
          const gpa = physicalOf("swapped4k", HOT_BASE + (lcg.next() & mask));
          buf.set(bytes.subarray(gpa, gpa + PAGE));
        }
        consume(buf[7]);
      });
      measure({ name: "IommuMemory.readSlice 4 KiB", loop: ours }, [{ name: "Uint8Array.set, no IOMMU", loop: bare }]);
    },
  };
}

function readSlice64kCase(name: string, fragmented: boolean): BenchCase {
  const size = 64 * KIB;
  return {
    name,
    bytesPerOp: size,
    published: published(name),
    run(measure) {
      using phys = physical();
      const iommu = new IotlbIommu();
      const iova = GIB;
      const phys0 = 64 * MIB;
      if (fragmented) {
        for (let i = 0; i < 16; i++) {
          iommu.iotlb.setMapping(iova + i * PAGE, phys0 + 3 * i * PAGE, PAGE, Permissions.ReadWrite);
        }
      } else {
        iommu.iotlb.setMapping(iova, phys0, size, Permissions.ReadWrite);
      }
      const mem = new IommuMemory(phys, iommu);
      const buf = alignedBytes(size);
      const bytes = phys.regions()[0].mmap.bytes();
      const ours = timed((iters) => {
        for (let i = 0; i < iters; i++) mem.readSlice(buf, iova);
        consume(buf[9]);
      });
      const bare = timed((iters) => {
        for (let i = 0; i < iters; i++) {
          if (fragmented) {
            for (let f = 0; f < 16; f++) {
              const src = phys0 + 3 * f * PAGE;
              buf.set(bytes.subarray(src, src + PAGE), f * PAGE);
            }
          } else {
            buf.set(bytes.subarray(phys0, phys0 + size));
          }
        }
        consume(buf[9]);
      });
      measure({ name: `IommuMemory.readSlice 64 KiB`, loop: ours }, [
        { name: fragmented ? "16 x Uint8Array.set" : "Uint8Array.set", loop: bare },
      ]);
    },
  };
}

/** The IommuMemory cases in perf-baselines.md order. */
export function iommuMemoryCases(): BenchCase[] {
  return [
    readU64Case("read_obj_u64_hot_iommu_passthrough", "passthrough", false),
    readU64Case("read_obj_u64_hot_iommu_identity4k", "identity4k", false),
    readU64Case("read_obj_u64_wide_iommu_identity4k", "identity4k", true),
    readU64Case("read_obj_u64_hot_iommu_swapped4k", "swapped4k", false),
    readSlice4kCase(),
    readSlice64kCase("read_slice_64k_iommu_16frag", true),
    readSlice64kCase("read_slice_64k_iommu_contig", false),
  ];
}
