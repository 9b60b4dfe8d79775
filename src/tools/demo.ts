/**
 * The quick-start demo: one memfd of guest RAM mapped twice, a write through one mapping read back
 * through the other, and what happens to a view once its region is closed.
 *
 * Run with `deno task demo` (or `npx -y deno@2 task demo`); `--help` explains it.
 * @module
 */

import { hex, hostProtection, MmapRegion, protToString, RegionClosedError } from "../../mod.ts";

const HELP = `gmem demo: real host memory through Deno FFI

  deno task demo [--size BYTES]

Creates a memfd (anonymous shared memory with a file descriptor), maps it twice into this
process, writes through the first mapping and reads the same bytes through the second. Then it
closes one mapping and shows that a view over it is detached (a TypeError, not a crash), while the
other mapping keeps the memory alive.

Options:
  --size BYTES   size of the memfd (default 1 MiB, rounded up to the page size)
  --help         this text`;

function parseSize(args: string[]): number {
  const i = args.indexOf("--size");
  if (i < 0) return 1 << 20;
  const v = Number(args[i + 1]);
  if (!Number.isSafeInteger(v) || v <= 0) {
    console.error(`demo: --size needs a positive integer, got ${JSON.stringify(args[i + 1] ?? "")}`);
    Deno.exit(2);
  }
  return Math.ceil(v / 4096) * 4096;
}

function describe(label: string, r: MmapRegion): string {
  const kernel = hostProtection(r.hostAddress);
  return `${label}: host ${hex(r.hostAddress)}..${hex(r.hostAddress + BigInt(r.size) - 1n)}  ` +
    `${protToString(r.prot)}, kernel says ${kernel ? protToString(kernel.prot) : "unmapped"}` +
    `${kernel?.shared ? " shared" : ""}`;
}

function main(args: string[]): void {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(HELP);
    return;
  }
  const size = parseSize(args);
  console.log(`1. memfd of ${hex(size)} bytes, mapped shared (MmapRegion.memfd)`);
  using first = MmapRegion.memfd(size, { name: "gmem-demo" });
  console.log(`   fd ${first.fd}; ${describe("mapping A", first)}`);

  console.log("2. the same memfd mapped a second time (MmapRegion.fromFile(A.fileOffset))");
  const second = MmapRegion.fromFile(first.fileOffset!, size);
  console.log(`   ${describe("mapping B", second)}`);
  console.log(`   A and B map overlapping ranges of one file: fdsOverlap = ${first.fdsOverlap(second)}`);

  const offset = size - 64;
  const message = new TextEncoder().encode("written through A");
  first.write(message, offset);
  console.log(`3. wrote ${message.length} bytes through A at offset ${hex(offset)}`);
  const seen = new TextDecoder().decode(second.bytes(offset, message.length));
  console.log(`   read through B at the same offset: ${JSON.stringify(seen)}`);
  second.dataView(0, 8).setBigUint64(0, 0x1122334455667788n, true);
  console.log(
    `   wrote u64 0x1122334455667788 through B at 0; A reads ${hex(first.dataView(0, 8).getBigUint64(0, true))}`,
  );

  console.log("4. close B while a view over it is still held");
  const staleView = second.bytes(0, 16);
  const addressB = second.hostAddress;
  second.close();
  console.log(
    `   B's range is now ${hostProtection(addressB) ? "still mapped" : "unmapped"}; ` +
      `the old view has length ${staleView.length}`,
  );
  try {
    staleView.fill(1);
  } catch (e) {
    console.log(`   using the old view throws ${(e as Error).name}: no SIGSEGV`);
  }
  try {
    second.bytes();
  } catch (e) {
    if (e instanceof RegionClosedError) console.log(`   asking B for a new view throws ${e.kind}: ${e.message}`);
  }
  console.log(`   A still reads ${JSON.stringify(new TextDecoder().decode(first.bytes(offset, message.length)))}`);
  console.log("5. A is closed at the end of its `using` block; nothing is left mapped.");
}

main(Deno.args);
