/**
 * Soak: runs the fuzzer and the property tests over and over with fresh random seeds, each round
 * much longer than in `deno task test`, until the time is up or a round fails. Every round prints
 * its seeds first, so a failure can be replayed exactly with the command it prints.
 *
 * Usage: `deno task soak [--minutes N] [--calls N] [--runs N]` (or `GMEM_SOAK_MINUTES`,
 * `GMEM_SOAK_CALLS`, `GMEM_SOAK_RUNS`). Defaults: 10 minutes, 200,000 fuzz calls, 3,000 IOMMU
 * property runs, 3,000 class-fuzzer rounds per class and ten times as many dirty-session-file fuzz
 * runs per round.
 * @module
 */

const TESTS = [
  "tests/fuzz_test.ts",
  "tests/fuzz_classes_test.ts",
  "tests/iommu_property_test.ts",
  "tests/guest_memory_property_test.ts",
  "tests/dirty_session_file_test.ts",
];
/** The long-running tests of those files (the fuzz controls and determinism check need no soak). */
const FILTER = "/^(fuzz: hostile|fuzz classes|iommu property|guest memory property: random|dirty session fuzz)/";
const PERMISSIONS = ["--allow-ffi", "--allow-read", "--allow-write", "--allow-run", "--allow-env"];

/** A number option from `--name N` or the environment, else `fallback`. */
function option(name: string, env: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  const raw = i >= 0 ? Deno.args[i + 1] : Deno.env.get(env);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`soak: --${name} / ${env} must be a positive number, got ${JSON.stringify(raw)}`);
    Deno.exit(2);
  }
  return n;
}

function seed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0];
}

const minutes = option("minutes", "GMEM_SOAK_MINUTES", 10);
const calls = Math.floor(option("calls", "GMEM_SOAK_CALLS", 200_000));
const runs = Math.floor(option("runs", "GMEM_SOAK_RUNS", 3000));
const deadline = Date.now() + minutes * 60_000;
console.log(`soak: ${minutes} min, ${calls} fuzz calls and ${runs} IOMMU property runs per round`);

let round = 0;
while (Date.now() < deadline) {
  round++;
  const env = {
    GMEM_FUZZ_SEED: String(seed()),
    GMEM_FUZZ_CALLS: String(calls),
    GMEM_IOMMU_PROP_SEED: String(seed()),
    GMEM_IOMMU_PROP_RUNS: String(runs),
    GMEM_PROP_SEED: String(seed()),
    GMEM_CLASS_SEED: String(seed()),
    GMEM_CLASS_ROUNDS: String(Math.max(100, Math.floor(runs))),
    GMEM_SESSION_FUZZ_SEED: String(seed()),
    GMEM_SESSION_FUZZ_RUNS: String(10 * runs),
    RUST_BACKTRACE: "0",
    NO_COLOR: "1",
  };
  const replay = `${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ")} deno test ${
    PERMISSIONS.join(" ")
  } --filter '${FILTER}' ${TESTS.join(" ")}`;
  console.log(`soak round ${round}: ${Object.entries(env).slice(0, 9).map(([k, v]) => `${k}=${v}`).join(" ")}`);
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["test", ...PERMISSIONS, "--filter", FILTER, ...TESTS],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  if (out.code !== 0 || out.signal !== null) {
    console.log(new TextDecoder().decode(out.stdout));
    console.error(new TextDecoder().decode(out.stderr));
    console.error(`soak round ${round} FAILED after ${seconds} s (code ${out.code}, signal ${out.signal}).`);
    console.error(`replay: ${replay}`);
    Deno.exit(1);
  }
  const summary = new TextDecoder().decode(out.stdout).match(/ok \| (\d+) passed/);
  if (summary === null || Number(summary[1]) < 6) {
    console.error(
      `soak round ${round}: expected at least 6 long tests to run:\n${new TextDecoder().decode(out.stdout)}`,
    );
    Deno.exit(1);
  }
  console.log(`soak round ${round}: ${summary[1]} tests passed in ${seconds} s`);
}
console.log(`soak: ${round} rounds passed`);
