/**
 * The real guest (src/tools/qemu_guest/): a Debian cloud kernel and a busybox initramfs booted under QEMU
 * (TCG, q35, qboot), with the emulated Intel IOMMU in strict mode and without it, and the blk job
 * served by QEMU's own vhost-user-blk back-end (`qemu-storage-daemon`) as the native peer that a
 * gmem back-end will be compared with.
 *
 * Ignored, saying why, only when QEMU or the Debian packages cannot be had here (fetchGuest throws
 * GuestUnavailable); anything else fails.
 * @module
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { bootGuest, type GuestRun } from "../src/tools/qemu_guest/boot_guest.ts";
import { parseConsole } from "../src/tools/qemu_guest/console.ts";
import { GuestOptionError, GuestUnavailable } from "../src/tools/qemu_guest/errors.ts";
import { fetchGuest, type GuestFiles } from "../src/tools/qemu_guest/fetch_guest.ts";
import { hostCommand } from "../src/tools/qemu_guest/host_command.ts";
import { StorageDaemon } from "../src/tools/qemu_guest/storage_daemon.ts";

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
if (skip !== undefined) console.log(`guest boot tests skipped: ${skip}`);
const noDaemon = typeof fetched !== "string" && fetched.storageDaemon === undefined
  ? "qemu-storage-daemon is not installed (it comes with qemu-system-common)"
  : undefined;
if (noDaemon !== undefined) console.log(`guest blk test skipped: ${noDaemon}`);

function files(): GuestFiles {
  if (typeof fetched === "string") throw new Error(`unreachable: the test should have been ignored (${fetched})`);
  return fetched;
}

const md5 = (bytes: Uint8Array) => createHash("md5").update(bytes).digest("hex");

/** A run's essentials, so that a failure shows the guest's own words next to what went wrong. */
function assertCleanRun(run: GuestRun, jobs: string[]): void {
  const context = `QEMU stderr: ${run.stderr.trim()}\nconsole tail:\n${run.console.slice(-25).join("\n")}`;
  assert.equal(run.outcome, "poweroff", context);
  assert.equal(run.exitCode, 0, context);
  assert.deepEqual(run.errors, [], context);
  assert.deepEqual(run.jobs, jobs.map((name) => ({ name, status: 0 })), context);
  assert.equal(run.panicked, false, context);
}

/** `bytes` bytes of 16-byte records "gmem blk NNNNNN\n", as the blk job writes them. */
function blkPattern(bytes: number): Uint8Array {
  let text = "";
  for (let i = 0; i < bytes / 16; i++) text += `gmem blk ${String(i).padStart(6, "0")}\n`;
  return new TextEncoder().encode(text);
}

function firstNonZero(bytes: Uint8Array): number {
  return bytes.findIndex((b) => b !== 0);
}

Deno.test({
  name: "guest boot: with the IOMMU on, the guest has DMAR unit dmar0 in strict mode and reads rng bytes through it",
  ignore: skip !== undefined,
  async fn() {
    // A regular file as the entropy source makes the guest's bytes known: all 0xa5, whatever the
    // kernel's own hwrng thread took first.
    const dir = await Deno.makeTempDir({ prefix: "gmem-guest-" });
    try {
      await Deno.writeFile(`${dir}/entropy`, new Uint8Array(1 << 20).fill(0xa5));
      const run = await bootGuest({
        files: files(),
        jobs: ["hello", "rng"],
        iommu: true,
        params: { rng_bytes: 4096 },
        extraArgs: [
          "-object",
          `rng-random,id=rng0,filename=${dir}/entropy`,
          "-device",
          "virtio-rng-pci,rng=rng0,iommu_platform=on,ats=on,disable-legacy=on",
        ],
      });
      assertCleanRun(run, ["hello", "rng"]);
      assert.equal(run.poweredOff, true);
      assert.equal(run.results.kernel, files().kernelRelease);
      assert.equal(run.results.iommu, "on");
      assert.equal(run.results.iommu_units, "dmar0");
      assert.equal(run.results.dmar_enabled, "yes");
      assert.equal(run.results.iommu_tlb_policy, "strict");
      assert.equal(run.results.iommu_group_types, "DMA", "strict domains (a lazy one is DMA-FQ)");
      assert.equal(run.results.rng_current, "virtio_rng.0");
      assert.equal(run.results.rng_bytes, "4096");
      assert.equal(run.results.rng_md5, md5(new Uint8Array(4096).fill(0xa5)));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "guest boot: with the IOMMU off, the guest has no IOMMU unit and no DMAR",
  ignore: skip !== undefined,
  async fn() {
    const run = await bootGuest({ files: files(), jobs: ["hello"], iommu: false });
    assertCleanRun(run, ["hello"]);
    assert.equal(run.results.kernel, files().kernelRelease);
    assert.equal(run.results.iommu, "off");
    assert.equal(run.results.iommu_units, "none");
    assert.equal(run.results.dmar_enabled, "no");
    assert.equal(run.results.iommu_tlb_policy, "lazy");
    assert.equal(run.results.iommu_group_types, "none");
  },
});

Deno.test({
  name: "guest boot: the blk job through qemu-storage-daemon leaves its pattern in the image and the checksums agree",
  ignore: skip !== undefined || noDaemon !== undefined,
  async fn() {
    const IMAGE = 8 << 20, BYTES = 64 << 10, SEEK_BLOCKS = 256, AT = SEEK_BLOCKS * 4096;
    const dir = await Deno.makeTempDir({ prefix: "gmem-guest-" });
    try {
      // The host's own bytes at the start, which the guest must read from the device.
      const seed = new TextEncoder().encode("host seed 000\n".repeat(BYTES / 14 + 1)).subarray(0, BYTES);
      const image = new Uint8Array(IMAGE);
      image.set(seed, 0);
      await Deno.writeFile(`${dir}/disk.img`, image);

      let run: GuestRun;
      {
        await using qsd = await StorageDaemon.start(files().storageDaemon!, `${dir}/disk.img`, `${dir}/blk.sock`);
        run = await bootGuest({
          files: files(),
          jobs: ["blk"],
          iommu: false,
          params: { blk_bytes: BYTES, blk_seek: SEEK_BLOCKS },
          extraArgs: qsd.qemuArgs("blk0"),
        });
      }
      assertCleanRun(run, ["blk"]);
      const pattern = blkPattern(BYTES);
      assert.equal(run.results.blk_sectors, String(IMAGE / 512));
      assert.equal(run.results.blk_bytes, String(BYTES));
      assert.equal(run.results.blk_seek, String(SEEK_BLOCKS));
      assert.equal(run.results.blk_seed_md5, md5(seed));
      assert.equal(run.results.blk_pattern_md5, md5(pattern));
      assert.equal(run.results.blk_read_md5, md5(pattern));

      const after = await Deno.readFile(`${dir}/disk.img`);
      assert.equal(after.length, IMAGE);
      assert.deepEqual(after.subarray(0, BYTES), seed, "the seed is untouched");
      assert.deepEqual(after.subarray(AT, AT + BYTES), pattern, "the pattern is where the guest wrote it");
      assert.equal(firstNonZero(after.subarray(BYTES, AT)), -1, "nothing was written between the seed and the pattern");
      assert.equal(firstNonZero(after.subarray(AT + BYTES)), -1, "nothing was written after the pattern");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "guest boot: the hard timeout kills QEMU and the run says timeout",
  ignore: skip !== undefined,
  async fn() {
    // The guest needs seconds to reach its init; 1 s ends it in the middle of the kernel's boot.
    const run = await bootGuest({ files: files(), jobs: ["hello"], iommu: false, timeoutMs: 1000 });
    assert.equal(run.outcome, "timeout");
    assert.equal(run.exitCode, 128 + 9); // SIGKILL
    assert.equal(run.initUptime, undefined);
    assert.deepEqual(run.jobs, []);
    assert.equal(run.ended, false);
    assert.equal(run.poweredOff, false);
  },
});

Deno.test({
  name: "guest boot: aborting on the first console line kills QEMU and the run says aborted",
  ignore: skip !== undefined,
  async fn() {
    const stop = new AbortController();
    const seen: string[] = [];
    const run = await bootGuest({
      files: files(),
      jobs: ["hello"],
      iommu: false,
      onLine: (line) => {
        seen.push(line);
        stop.abort();
      },
      signal: stop.signal,
    });
    assert.equal(run.outcome, "aborted");
    assert.equal(run.exitCode, 128 + 9);
    assert.equal(run.ended, false);
    assert.ok(seen.length >= 1);
    assert.deepEqual(run.console, seen, "onLine saw every line the run kept, as it came");
  },
});

Deno.test({
  name: "guest boot: an onLine that throws ends the boot with that error and QEMU is gone",
  ignore: skip !== undefined,
  async fn() {
    const boom = new Error("onLine failed");
    // A name only this QEMU has, to look for it among the host's processes afterwards.
    const marker = `gmem-guest-${crypto.randomUUID()}`;
    await assert.rejects(
      bootGuest({
        files: files(),
        jobs: ["hello"],
        iommu: false,
        extraArgs: ["-name", marker],
        onLine: () => {
          throw boom;
        },
      }),
      (e) => e === boom,
    );
    const left = (await hostCommand("test", "pgrep", ["-f", marker])).stdout.split("\n").filter((l) => l !== "");
    for (const pid of left) await hostCommand("test", "kill", ["-KILL", pid]);
    assert.deepEqual(left, [], "no QEMU is left running");
  },
});

Deno.test("guest boot: bad options are refused with GuestOptionError before QEMU starts", async () => {
  // A QEMU that does not exist: reaching the spawn would be GuestUnavailable, not GuestOptionError.
  const nowhere = { qemu: "/nonexistent/qemu", qboot: "/q", kernel: "/k", initrd: "/i" };
  const cases: [Parameters<typeof bootGuest>[0], string, string][] = [
    [{ files: nowhere, jobs: [], iommu: false }, "jobs", "bootGuest: jobs: no job given"],
    [
      { files: nowhere, jobs: ["hello", "disk"], iommu: false },
      "jobs",
      'bootGuest: jobs: unknown job "disk" (known: hello, blk, rng)',
    ],
    [
      { files: nowhere, jobs: ["blk"], iommu: false, params: { blk_bytes: "4096 init=/bin/sh" } },
      "params",
      'bootGuest: params: bad value "4096 init=/bin/sh" for blk_bytes',
    ],
    [
      { files: nowhere, jobs: ["blk"], iommu: false, params: { job: "rng" } },
      "params",
      'bootGuest: params: bad key "job"',
    ],
    [
      { files: nowhere, jobs: ["hello"], iommu: false, memoryMiB: 100.5 },
      "memoryMiB",
      "bootGuest: memoryMiB: 100.5 is not a whole number of MiB from 64 to 65536",
    ],
    [
      { files: nowhere, jobs: ["hello"], iommu: false, timeoutMs: 0 },
      "timeoutMs",
      "bootGuest: timeoutMs: 0 is not a positive number of milliseconds",
    ],
  ];
  for (const [options, option, message] of cases) {
    await assert.rejects(bootGuest(options), (e) => {
      assert.ok(e instanceof GuestOptionError, String(e));
      assert.equal(e.op, "bootGuest");
      assert.equal(e.option, option);
      assert.equal(e.message, message);
      return true;
    });
  }
});

Deno.test("guest console: markers are read among kernel lines, with serial line ends, unfinished jobs and a panic", () => {
  const report = parseConsole([
    "[    1.765676] Run /init as init process\r",
    "GMEM-INIT uptime=1.94\r",
    "GMEM-JOB start hello",
    "GMEM-RESULT iommu=on\r",
    "GMEM-RESULT iommu_units=dmar0,dmar1",
    "[    2.000001] some kernel line GMEM-RESULT fake=1",
    "GMEM-JOB end hello status=0",
    "GMEM-JOB start blk",
    "GMEM-ERROR /dev/vda did not appear in 10 s",
    "GMEM-RESULT iommu=twice",
    "GMEM-JOB end blk status=1",
    "GMEM-JOB start rng",
    "[    9.1] Kernel panic - not syncing: Attempted to kill init!",
  ]);
  assert.deepEqual(report, {
    initUptime: 1.94,
    endUptime: undefined,
    jobs: [{ name: "hello", status: 0 }, { name: "blk", status: 1 }, { name: "rng", status: undefined }],
    results: { iommu: "twice", iommu_units: "dmar0,dmar1" },
    errors: ["/dev/vda did not appear in 10 s"],
    ended: false,
    poweredOff: false,
    panicked: true,
  });
  const clean = parseConsole(["GMEM-END uptime=2.21\r", "[    2.213994] reboot: Power down\r"]);
  assert.equal(clean.ended, true);
  assert.equal(clean.endUptime, 2.21);
  assert.equal(clean.poweredOff, true);
  assert.equal(clean.panicked, false);
});
