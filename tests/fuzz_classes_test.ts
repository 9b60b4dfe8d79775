/**
 * The class fuzzer: `tests/fixtures/fuzz_classes_child.ts` attacks the library with the classes of
 * mistake that outside testing found (shadowed buffer properties, hostile addresses on warm fast
 * paths, foreign descriptors, paths that are not regular files, hostile vhost-user frames), each
 * judged by an oracle that compares two runs that must not differ. The child runs in its own
 * process with a time limit: a crash ends it with a signal, a hang (a FIFO opened for mapping) with
 * the limit.
 *
 * Reproduce or explore with `GMEM_CLASS_SEED=<u32>`, `GMEM_CLASS_ROUNDS=<n>` and `GMEM_CLASS_ONLY=<class>`.
 * @module
 */

import assert from "node:assert/strict";
import type { ClassReport } from "./fixtures/fuzz_classes_child.ts";

const CHILD = new URL("./fixtures/fuzz_classes_child.ts", import.meta.url);
const SEED = Number(Deno.env.get("GMEM_CLASS_SEED") ?? 0x6d2b79f5) >>> 0;
const ROUNDS = Number(Deno.env.get("GMEM_CLASS_ROUNDS") ?? 400);
const CLASSES = ["shadow", "warm", "fd", "files", "vhost"];
console.log(`fuzz classes: seed ${SEED}, ${ROUNDS} rounds per class; rerun with GMEM_CLASS_SEED=${SEED}`);

Deno.test("fuzz classes: shadowed lengths, warm hostile addresses, foreign fds, special files and hostile frames change nothing", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-ffi",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      "--allow-env",
      "--allow-net",
      CHILD.href,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0", GMEM_CLASS_SEED: String(SEED), GMEM_CLASS_ROUNDS: String(ROUNDS) },
    signal: AbortSignal.timeout(Math.max(120_000, ROUNDS * 2_000)),
  }).output();
  const stderr = new TextDecoder().decode(out.stderr).slice(-3000);
  assert.equal(out.signal, null, `the child died of a signal (or hung until the limit)\n${stderr}`);
  assert.equal(out.code, 0, stderr);
  const line = new TextDecoder().decode(out.stdout).split("\n").find((l) => l.startsWith("{"));
  assert.ok(line !== undefined, `the child printed no report\n${stderr}`);
  const report = JSON.parse(line) as ClassReport;
  assert.deepEqual(report.violations, [], `${report.violationCount} violations:\n${report.violations.join("\n")}`);
  assert.equal(report.seed, SEED);
  for (const c of CLASSES) assert.equal(report.rounds[c], ROUNDS, `class ${c} ran every round`);
  // Every round of these classes attacks with something that must be refused.
  for (const c of ["warm", "files"]) assert.equal(report.refused[c], ROUNDS, `every ${c} attack was refused`);
  // The others mix valid and hostile inputs: both kinds were seen.
  for (const c of ["shadow", "vhost"]) {
    assert.ok(report.refused[c] > 0 && report.refused[c] < ROUNDS, `${c}: ${report.refused[c]} of ${ROUNDS} refused`);
  }
});
