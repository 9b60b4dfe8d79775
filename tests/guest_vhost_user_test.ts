/**
 * The real guest with gmem's back-ends attached: a Linux guest under QEMU (TCG, q35, qboot) whose
 * virtio-blk and virtio-rng devices are served by `deno task vhost-user-blk` and `vhost-user-rng`
 * (run here as child processes), with QEMU's Intel IOMMU in strict mode (`iommu_platform=on,ats=on`,
 * `intel_iommu=on iommu.strict=1`) and without it. The guest writes a pattern through /dev/vda with
 * O_DIRECT, reads it back, and reads /dev/hwrng; the host checks the image, the checksums, and the
 * back-ends' counters: IOTLB misses, updates and invalidations with the IOMMU, none without, and
 * zero refused accesses either way.
 *
 * Ignored, saying why, only when QEMU or the Debian packages cannot be had here.
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { bootGuest, type GuestRun } from "../src/tools/qemu_guest/boot_guest.ts";
import { GuestUnavailable } from "../src/tools/qemu_guest/errors.ts";
import { fetchGuest, type GuestFiles } from "../src/tools/qemu_guest/fetch_guest.ts";
import { GmemBackend } from "./fixtures/gmem_backend.ts";
import { runDeno } from "./fixtures/child_process.ts";

async function guestFiles(): Promise<GuestFiles | string> {
  try {
    return await fetchGuest({ log: (line) => console.log(`guest: ${line}`) });
  } catch (e) {
    if (!(e instanceof GuestUnavailable)) throw e;
    return `${e.message} (.ci/run installs Debian's qemu-system-x86; the packages come from apt)`;
  }
}

const fetched = await guestFiles();
const skip = typeof fetched === "string" ? fetched : undefined;
if (skip !== undefined) console.log(`gmem vhost-user guest tests skipped: ${skip}`);

function files(): GuestFiles {
  if (typeof fetched === "string") throw new Error(`unreachable: the test should have been ignored (${fetched})`);
  return fetched;
}

const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");
const IMAGE = 8 << 20, BYTES = 64 << 10, SEEK_BLOCKS = 256, AT = SEEK_BLOCKS * 4096, RNG_BYTES = 4096;

function blkPattern(bytes: number): Uint8Array {
  let text = "";
  for (let i = 0; i < bytes / 16; i++) text += `gmem blk ${String(i).padStart(6, "0")}\n`;
  return new TextEncoder().encode(text);
}

function context(run: GuestRun, logs: string): string {
  return `QEMU stderr: ${run.stderr.trim()}\nback-ends: ${logs}\nconsole tail:\n${run.console.slice(-25).join("\n")}`;
}

/** Boots the guest with both gmem back-ends and checks everything the guest and the host can see. */
async function bootWithGmem(iommu: boolean): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gmem-vu-guest-" });
  try {
    const seed = new TextEncoder().encode("host seed 000\n".repeat(BYTES / 14 + 1)).subarray(0, BYTES);
    const image = new Uint8Array(IMAGE);
    image.set(seed, 0);
    await Deno.writeFile(`${dir}/disk.img`, image);
    await Deno.writeFile(`${dir}/entropy`, new Uint8Array(1 << 20).fill(0xa5));

    await using blk = await GmemBackend.start("blk", `${dir}/blk.sock`, ["--image", `${dir}/disk.img`]);
    await using rng = await GmemBackend.start("rng", `${dir}/rng.sock`, ["--source", `${dir}/entropy`]);
    const run = await bootGuest({
      files: files(),
      jobs: ["hello", "blk", "rng"],
      iommu,
      params: { blk_bytes: BYTES, blk_seek: SEEK_BLOCKS, rng_bytes: RNG_BYTES },
      extraArgs: [...blk.qemuArgs("blk0", iommu), ...rng.qemuArgs("rng0", iommu)],
    });
    const b = await blk.finish(), r = await rng.finish();
    const ctx = context(
      run,
      `blk ${b.code} ${b.stdout.trim()} ${b.stderr.trim()}; rng ${r.code} ${r.stdout.trim()} ${r.stderr.trim()}`,
    );

    assert.equal(run.outcome, "poweroff", ctx);
    assert.equal(run.exitCode, 0, ctx);
    assert.deepEqual(run.errors, [], ctx);
    assert.deepEqual(run.jobs, ["hello", "blk", "rng"].map((name) => ({ name, status: 0 })), ctx);
    assert.equal(run.results.iommu, iommu ? "on" : "off", ctx);
    if (iommu) {
      assert.equal(run.results.iommu_tlb_policy, "strict", ctx);
      assert.equal(run.results.iommu_group_types, "DMA", "strict domains");
    }

    const pattern = blkPattern(BYTES);
    assert.equal(run.results.blk_sectors, String(IMAGE / 512));
    assert.equal(run.results.blk_seed_md5, md5(seed), "the guest read the host's seed from the device");
    assert.equal(run.results.blk_pattern_md5, md5(pattern));
    assert.equal(run.results.blk_read_md5, md5(pattern), "the guest read back what it wrote");
    const after = await Deno.readFile(`${dir}/disk.img`);
    assert.deepEqual(after.subarray(0, BYTES), seed, "the seed is untouched");
    assert.deepEqual(after.subarray(AT, AT + BYTES), pattern, "the image holds the pattern where the guest wrote it");
    assert.equal(after.subarray(BYTES, AT).findIndex((x) => x !== 0), -1, "nothing between seed and pattern");
    assert.equal(after.subarray(AT + BYTES).findIndex((x) => x !== 0), -1, "nothing after the pattern");

    assert.equal(run.results.rng_current, "virtio_rng.0");
    assert.equal(run.results.rng_bytes, String(RNG_BYTES));
    assert.equal(
      run.results.rng_md5,
      md5(new Uint8Array(RNG_BYTES).fill(0xa5)),
      "the guest's bytes came from our source",
    );

    for (const [name, x] of [["blk", b], ["rng", r]] as const) {
      assert.equal(x.code, 0, `${name}: ${x.stderr}`);
      assert.ok(x.report, `${name} printed its counters: ${x.stdout}`);
      const c = x.report.backend;
      assert.equal(c.connections, 1, name);
      assert.equal(c.rejected, 0, `${name}: no message was refused`);
      assert.equal(c.refused, 0, `${name}: no access was refused`);
      assert.ok(c.requests > 0, `${name}: requests ${c.requests}`);
      if (iommu) {
        assert.ok(c.iotlbMisses > 0, `${name}: IOTLB misses ${c.iotlbMisses}`);
        assert.ok(c.iotlbUpdates >= c.iotlbMisses, `${name}: every miss answered (${c.iotlbUpdates} updates)`);
        assert.ok(c.iotlbInvalidations > 0, `${name}: strict unmaps invalidated (${c.iotlbInvalidations})`);
        assert.equal(c.iotlbRejected, 0, name);
      } else {
        assert.deepEqual([c.iotlbMisses, c.iotlbUpdates, c.iotlbInvalidations], [0, 0, 0], name);
      }
    }
    const d = b.report!.device;
    assert.equal(d.bytesWritten, BYTES, "the guest's writes, exactly");
    assert.equal(d.errors, 0);
    assert.ok(d.reads > 0 && d.writes > 0);
    assert.ok(r.report!.device.bytes >= RNG_BYTES);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name:
    "gmem guest: blk and rng served by gmem behind QEMU's strict IOMMU: pattern, checksums, IOTLB traffic, nothing refused",
  ignore: skip !== undefined,
  fn: () => bootWithGmem(true),
});

Deno.test({
  name:
    "gmem guest: blk and rng served by gmem without an IOMMU: pattern, checksums, no IOTLB traffic, nothing refused",
  ignore: skip !== undefined,
  fn: () => bootWithGmem(false),
});

Deno.test({
  name: "deno task guest: narrates the real guest's DMA behind the IOMMU, a revoked slice included, and draws it",
  ignore: skip !== undefined,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "gmem-guest-story-" });
    try {
      const run = await runDeno(new URL("../src/tools/guest_demo.ts", import.meta.url).pathname, ["--allow-all"], [
        "--out",
        out,
      ]);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      for (
        const line of [
          /the memory table arrived: the guest's RAM, passed as a memfd and mapped here/,
          /guest physical \[0x0, 0x10000000\) 256 MiB: QEMU has it at user address 0x[0-9a-f]+, gmem mapped it at host 0x[0-9a-f]+/,
          /blk: the first IOTLB miss: the device needs IOVA 0x[0-9a-f]+ \(Read\), asks QEMU/,
          /QEMU answered: IOVA \[0x[0-9a-f]+, 0x[0-9a-f]+\) -> user 0x[0-9a-f]+ -> guest physical 0x[0-9a-f]+, ReadWrite/,
          /device writes {2}4096 bytes at 0x[0-9a-f]+ -> guest 0x[0-9a-f]+ \(host 0x[0-9a-f]+\)/,
          /the slice the device kept is revoked: VolatileSlice\.readU8: the translation of I\/O virtual address range 0x[0-9a-f]+\+0x200 this slice came from was invalidated or changed/,
          /blk: the pattern the guest wrote and read back agree/,
          /blk back-end: .*refused 0, iotlbMisses [1-9]\d*, iotlbUpdates [1-9]\d*, iotlbInvalidations [1-9]\d*/,
          /\d+ dirty pages in \d+ runs/,
        ]
      ) assert.match(run.stdout, line);
      const svg = await Deno.readTextFile(`${out}/guest-address-space.svg`);
      assert.match(svg, /^<svg /);
      assert.match(svg, /the real guest&apos;s blk DMA, request \d+ in flight/);
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
