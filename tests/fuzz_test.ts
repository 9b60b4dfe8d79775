/**
 * The fuzzer: `tests/fixtures/fuzz_child.ts` drives every public method of the library with random
 * and hostile arguments inside a child process; these tests assert that the child exits normally
 * (a SIGSEGV/SIGBUS would end it with a signal) and that it saw no rule breach (an untyped throw, an
 * error that does not name its operation or address, a promise that never settles).
 *
 * The seed is fixed and printed. Reproduce or explore with `GMEM_FUZZ_SEED=<u32>` (and
 * `GMEM_FUZZ_CALLS=<n>`); `GMEM_FUZZ_VERBOSE=1` makes the child log every call to stderr.
 * @module
 */

import assert from "node:assert/strict";
import type { FuzzReport } from "./fixtures/fuzz_child.ts";

const CHILD = new URL("./fixtures/fuzz_child.ts", import.meta.url);
const SEED = Number(Deno.env.get("GMEM_FUZZ_SEED") ?? 0x9e3779b1) >>> 0;
const CALLS = Number(Deno.env.get("GMEM_FUZZ_CALLS") ?? 30_000);
console.log(`fuzz: seed ${SEED} (0x${SEED.toString(16)}), ${CALLS} calls; rerun with GMEM_FUZZ_SEED=${SEED}`);

/** How a child ended and what it reported. */
interface ChildRun {
  code: number;
  signal: Deno.Signal | null;
  report: FuzzReport | undefined;
  stdout: string;
  stderr: string;
}

/** Runs the fuzzer child with the test's own permissions; kills it after `limitMs`. */
async function runFuzzChild(seed: number, calls: number, control = "", limitMs = 120_000): Promise<ChildRun> {
  const env: Record<string, string> = {
    RUST_BACKTRACE: "0",
    NO_COLOR: "1",
    GMEM_FUZZ_SEED: String(seed),
    GMEM_FUZZ_CALLS: String(calls),
    GMEM_FUZZ_CONTROL: control,
  };
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-ffi", "--allow-read", "--allow-write", "--allow-env", CHILD.href],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env,
    signal: AbortSignal.timeout(limitMs),
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const line = stdout.split("\n").find((l) => l.startsWith("{"));
  return {
    code: out.code,
    signal: out.signal,
    report: line === undefined ? undefined : JSON.parse(line) as FuzzReport,
    stdout,
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** Everything wrong with a run, in words; empty when the run passes. */
function verdict(run: ChildRun, calls: number): string[] {
  const problems: string[] = [];
  if (run.signal !== null) problems.push(`the child died of ${run.signal}`);
  if (run.code !== 0) problems.push(`the child exited with code ${run.code}`);
  const r = run.report;
  if (r === undefined) return [...problems, "the child printed no report"];
  if (r.calls !== calls) problems.push(`the child made ${r.calls} of ${calls} calls`);
  if (r.missing.length > 0) problems.push(`public methods without a fuzz recipe: ${r.missing.join(", ")}`);
  for (const v of r.violations) {
    problems.push(`${v.call}(${v.args}) [x${v.count}, first at call ${v.step}]: ${v.problem}`);
  }
  if (r.violationCount > 0 && r.violations.length === 0) problems.push(`${r.violationCount} violations`);
  return problems;
}

function explain(run: ChildRun, problems: string[]): string {
  return `${problems.join("\n")}\n--- stderr (tail) ---\n${run.stderr.slice(-2000)}`;
}

Deno.test("fuzz: hostile calls to every public method never crash; every throw is typed and names its op and address", async () => {
  const run = await runFuzzChild(SEED, CALLS);
  const problems = verdict(run, CALLS);
  assert.deepEqual(problems, [], explain(run, problems));
  const r = run.report!;
  assert.equal(r.seed, SEED);
  assert.equal(r.ok + Object.values(r.thrown).reduce((a, b) => a + b, 0), CALLS, "every call returned or threw");
  // The fuzzer reached every class and every way of failing that its world sets up.
  for (
    const kind of [
      "InvalidArgument",
      "OutOfBounds",
      "InvalidGuestAddress",
      "InvalidBackendAddress",
      "PartialBuffer",
      "ReadOnly",
      "NoAccess",
      "Misaligned",
      "RegionClosed",
      "Syscall",
      "MappingPastEof",
      "IOError",
    ]
  ) assert.ok((r.kinds[kind] ?? 0) > 0, `no ${kind} error was provoked: ${JSON.stringify(r.kinds)}`);
  // Translation failures as a family (IommuError): which of its kinds a random world provokes varies.
  const iommu = ["CannotResolve", "Fragmented", "IommuMisconfigured"].reduce((n, k) => n + (r.kinds[k] ?? 0), 0);
  assert.ok(iommu > 0, `no IOMMU error was provoked: ${JSON.stringify(r.kinds)}`);
  for (const cls of ["MmapRegion", "GuestMemoryMmap", "GuestRegionMmap", "VolatileSlice", "AtomicBitmap", "Iotlb"]) {
    assert.ok(r.methods.filter((m) => m.startsWith(`${cls}.`)).length >= 15, `few ${cls} methods were called`);
  }
  assert.ok(r.methods.filter((m) => m.startsWith("IotlbIommu.")).length >= 4);
  assert.ok(r.methods.filter((m) => m.startsWith("IommuMemory.")).length >= 40);
});

Deno.test("fuzz: the same seed replays the same sequence of outcomes", async () => {
  const calls = 3000;
  const [a, b, c] = await Promise.all([
    runFuzzChild(SEED ^ 0x55aa, calls),
    runFuzzChild(SEED ^ 0x55aa, calls),
    runFuzzChild(SEED ^ 0xaa55, calls),
  ]);
  for (const run of [a, b, c]) assert.deepEqual(verdict(run, calls), [], explain(run, verdict(run, calls)));
  assert.equal(a.report!.trace, b.report!.trace, "one seed, one trace");
  assert.deepEqual(a.report!.kinds, b.report!.kinds);
  assert.notEqual(a.report!.trace, c.report!.trace, "another seed takes another path");
});

Deno.test("fuzz harness control: a child that faults on purpose fails the verdict with its signal", async () => {
  const run = await runFuzzChild(SEED, 200, "segv");
  assert.equal(run.signal, "SIGSEGV", run.stderr);
  assert.equal(run.report, undefined);
  assert.deepEqual(verdict(run, 200), [
    "the child died of SIGSEGV",
    "the child exited with code 139",
    "the child printed no report",
  ]);
});

Deno.test("fuzz harness control: a method that throws a plain Error is reported as an untyped throw", async () => {
  const run = await runFuzzChild(SEED, 4000, "untyped");
  const problems = verdict(run, 4000);
  assert.equal(run.signal, null);
  assert.ok(problems.length > 0);
  assert.ok(
    problems.every((p) =>
      /\.toString\(\) \[x\d+, first at call \d+\]: untyped throw Error: control: a plain Error/.test(p)
    ),
    problems.join("\n"),
  );
});
