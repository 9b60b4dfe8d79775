/**
 * Boots the real guest under QEMU (TCG, q35, qboot, guest RAM in a shared memfd, optionally the
 * Intel IOMMU in strict mode), collects its serial console and returns what it reported. A hard
 * deadline kills QEMU, so a guest that never powers off cannot hang the caller.
 *
 * Extra `-chardev`/`-device` arguments attach further devices (a vhost-user back-end, QEMU's own
 * virtio devices). The guest RAM is the memfd object `mem`; do not reuse that id.
 * @module
 */

import { type GuestReport, parseConsole } from "./console.ts";
import { GuestOptionError, GuestUnavailable } from "./errors.ts";
import type { GuestFiles } from "./fetch_guest.ts";
import { isNotFound, isProgram } from "./host_command.ts";

const OP = "bootGuest";

/** The jobs `init.sh` knows. */
export const GUEST_JOBS: readonly string[] = ["hello", "blk", "rng"];

/** How to boot. */
export interface BootOptions {
  /** From `fetchGuest()`. */
  files: Pick<GuestFiles, "qemu" | "qboot" | "kernel" | "initrd">;
  /** The jobs to run, in order (see {@link GUEST_JOBS}). */
  jobs: readonly string[];
  /**
   * With the IOMMU: QEMU's `intel-iommu` (interrupt remapping, device IOTLB, caching mode) and the
   * kernel's `intel_iommu=on iommu.strict=1`. Without: neither, so the guest has no IOMMU at all.
   */
  iommu: boolean;
  /** Job parameters, passed as `gmem.<key>=<value>` on the kernel command line (see `init.sh`). */
  params?: Readonly<Record<string, string | number>>;
  /** Guest RAM in MiB (default 256). */
  memoryMiB?: number;
  /** More QEMU arguments, appended as they are (e.g. `-chardev …`, `-device …`). */
  extraArgs?: readonly string[];
  /** QEMU is killed this long after it started (default 60 000 ms). */
  timeoutMs?: number;
  /** Called with each console line as it arrives (without the line end). */
  onLine?: (line: string) => void;
  /** Aborting kills QEMU; the run then ends with outcome `"aborted"`. */
  signal?: AbortSignal;
}

/**
 * How a boot ended: `"poweroff"` when every job ran and QEMU exited 0; `"timeout"` or `"aborted"`
 * when the harness killed QEMU; `"exited"` when QEMU ended another way (a panic, a QEMU error or
 * assertion, a guest stuck until its own fallback restart).
 */
export type BootOutcome = "poweroff" | "timeout" | "aborted" | "exited";

/** A finished boot: the guest's report and how QEMU ended. */
export interface GuestRun extends GuestReport {
  outcome: BootOutcome;
  /** QEMU's exit code (128 + the signal number when killed). */
  exitCode: number;
  /** Every console line, without line ends. */
  console: string[];
  /** What QEMU wrote on stderr. */
  stderr: string;
  /** The QEMU command line's arguments. */
  args: string[];
  /** From spawning QEMU to its exit, for reports (never for assertions). */
  wallMs: number;
}

const KEY = /^[a-z][a-z0-9_]*$/;
const VALUE = /^[A-Za-z0-9_.,:/+-]+$/;

/** The kernel command line for `options` (validated). */
function kernelCommandLine(options: BootOptions): string {
  if (options.jobs.length === 0) throw new GuestOptionError(OP, "jobs", "no job given");
  for (const job of options.jobs) {
    if (!GUEST_JOBS.includes(job)) {
      throw new GuestOptionError(OP, "jobs", `unknown job ${JSON.stringify(job)} (known: ${GUEST_JOBS.join(", ")})`);
    }
  }
  // no_timer_check: under TCG on a busy host the kernel's IO-APIC timer test can miss its window,
  // and with interrupt remapping on (the IOMMU runs) it then panics instead of falling back.
  const words = ["console=ttyS0", "edd=off", "panic=-1", "no_timer_check"];
  if (options.iommu) words.push("intel_iommu=on", "iommu.strict=1");
  words.push(`gmem.job=${options.jobs.join(",")}`);
  for (const [key, value] of Object.entries(options.params ?? {})) {
    if (!KEY.test(key) || key === "job") throw new GuestOptionError(OP, "params", `bad key ${JSON.stringify(key)}`);
    if (!VALUE.test(String(value))) {
      throw new GuestOptionError(OP, "params", `bad value ${JSON.stringify(String(value))} for ${key}`);
    }
    words.push(`gmem.${key}=${value}`);
  }
  return words.join(" ");
}

/**
 * The QEMU arguments for `options`: the boot this harness does, for logs and for running it by hand.
 * Throws {@link GuestOptionError} for an impossible option.
 *
 * @example
 * ```ts ignore
 * console.log(qemuArgs({ files, jobs: ["hello"], iommu: true }).join(" "));
 * ```
 */
export function qemuArgs(options: BootOptions): string[] {
  const mib = options.memoryMiB ?? 256;
  if (!Number.isInteger(mib) || mib < 64 || mib > 65536) {
    throw new GuestOptionError(OP, "memoryMiB", `${mib} is not a whole number of MiB from 64 to 65536`);
  }
  const args = [
    "-machine",
    "q35,memory-backend=mem",
    "-accel",
    "tcg",
    "-smp",
    "1",
    "-m",
    `${mib}M`,
    // vhost-user back-ends map the guest's RAM, so it must be a shared memfd.
    "-object",
    `memory-backend-memfd,id=mem,size=${mib}M,share=on`,
    // qboot instead of SeaBIOS: SeaBIOS takes seconds longer and drives virtio disks itself.
    "-bios",
    options.files.qboot,
    "-nodefaults",
    "-no-user-config",
    "-nographic",
    "-serial",
    "stdio",
    "-no-reboot",
  ];
  if (options.iommu) args.push("-device", "intel-iommu,intremap=on,device-iotlb=on,caching-mode=on");
  args.push(
    "-kernel",
    options.files.kernel,
    "-initrd",
    options.files.initrd,
    "-append",
    kernelCommandLine(options),
  );
  args.push(...(options.extraArgs ?? []));
  return args;
}

/** Splits a byte stream into lines, calling `each` per complete line; resolves at the stream's end. */
async function readLines(stream: ReadableStream<Uint8Array>, each: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      each(pending.slice(0, nl).replace(/\r$/, ""));
      pending = pending.slice(nl + 1);
    }
  }
  pending += decoder.decode();
  if (pending !== "") each(pending.replace(/\r$/, ""));
}

/**
 * Boots the guest, runs its jobs and returns what it reported. Never hangs: QEMU is killed at
 * `timeoutMs`. Throws {@link GuestOptionError} for a bad option and {@link GuestUnavailable} when
 * QEMU cannot be started at all; a QEMU that starts and fails is a run with outcome `"exited"`.
 *
 * @example
 * ```ts ignore
 * const files = await fetchGuest();
 * const run = await bootGuest({ files, jobs: ["hello"], iommu: true });
 * console.log(run.outcome, run.results.iommu); // "poweroff" "on"
 * ```
 */
export async function bootGuest(options: BootOptions): Promise<GuestRun> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  if (!(timeoutMs > 0 && Number.isFinite(timeoutMs))) {
    throw new GuestOptionError(OP, "timeoutMs", `${timeoutMs} is not a positive number of milliseconds`);
  }
  const args = qemuArgs(options);
  if (options.signal?.aborted) throw new GuestOptionError(OP, "signal", "already aborted");

  if (!(await isProgram(options.files.qemu))) throw new GuestUnavailable(OP, `${options.files.qemu} is not installed`);

  const t0 = performance.now();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(options.files.qemu, { args, stdin: "null", stdout: "piped", stderr: "piped" }).spawn();
  } catch (e) {
    if (isNotFound(e)) throw new GuestUnavailable(OP, `${options.files.qemu} is not installed`, { cause: e });
    throw e;
  }

  let killedFor: "timeout" | "aborted" | undefined;
  const kill = (why: "timeout" | "aborted") => {
    if (killedFor !== undefined) return;
    killedFor = why;
    try {
      child.kill("SIGKILL");
    } catch { /* it exited meanwhile */ }
  };
  const timer = setTimeout(() => kill("timeout"), timeoutMs);
  const onAbort = () => kill("aborted");
  options.signal?.addEventListener("abort", onAbort, { once: true });

  const lines: string[] = [];
  try {
    const [, stderr, status] = await Promise.all([
      readLines(child.stdout, (line) => {
        lines.push(line);
        options.onLine?.(line);
      }),
      new Response(child.stderr).text(),
      child.status,
    ]);
    const wallMs = performance.now() - t0;
    const report = parseConsole(lines);
    const outcome: BootOutcome = killedFor ??
      (status.code === 0 && report.ended && report.poweredOff ? "poweroff" : "exited");
    return { ...report, outcome, exitCode: status.code, console: lines, stderr, args, wallMs };
  } catch (e) {
    // A throwing onLine (or a spawn that failed late, as under Bun) must not leave QEMU running.
    kill("aborted");
    await child.status.catch(() => {});
    if (isNotFound(e)) throw new GuestUnavailable(OP, `${options.files.qemu} is not installed`, { cause: e });
    throw e;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
  }
}
