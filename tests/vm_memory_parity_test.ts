/**
 * The same operation scripts (tests/parity/vm_memory_scripts.txt) through gmem and through the real
 * vm-memory 0.18 crate: each must print the results written beside its operations, which are the
 * same for both except where a line states a documented difference.
 *
 * The crate side builds tests/parity/vm_memory_probe with cargo, offline, against Debian's packaged
 * crates (a cargo directory source; bench/peer/fetch_crates.sh makes one). Those tests skip, saying
 * why, only when cargo or the crates are not on this machine; a probe that fails to build or run
 * fails them.
 * @module
 */

import assert from "node:assert/strict";
import { parseScripts, runScripts, type ScriptLine } from "./parity/gmem_runner.ts";

const SCRIPTS = new URL("./parity/vm_memory_scripts.txt", import.meta.url).pathname;
const PROBE_SOURCES = new URL("./parity/vm_memory_probe/", import.meta.url).pathname;
const REPO = new URL("../", import.meta.url).pathname;

/** The lines of each script, in order. */
function byScript(lines: readonly ScriptLine[]): Map<string, { from: number; to: number }> {
  const out = new Map<string, { from: number; to: number }>();
  let name = "";
  lines.forEach((l, i) => {
    if (l.op === "script") {
      name = l.args[0];
      out.set(name, { from: i, to: i + 1 });
    } else out.get(name)!.to = i + 1;
  });
  return out;
}

/** `line => result` for each line of one script, so a failure shows the operation beside it. */
function shown(lines: readonly ScriptLine[], results: readonly string[], from: number, to: number): string[] {
  return lines.slice(from, to).map((l, i) => `${l.text} => ${results[from + i]}`);
}

function cacheDir(): string {
  const env = Deno.env.toObject();
  return env.XDG_CACHE_HOME ?? `${env.HOME ?? "/tmp"}/.cache`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

/** Cargo, or why there is none. */
async function findCargo(): Promise<string | { skip: string }> {
  const env = Deno.env.toObject();
  for (const c of [env.CARGO, `${env.HOME}/.cargo/bin/cargo`, "/usr/bin/cargo"]) {
    if (c !== undefined && await exists(c)) return c;
  }
  return { skip: "cargo is not installed (set CARGO to its path)" };
}

/** The directory source holding vm-memory 0.18 and its crates, or why there is none. */
async function findCrates(): Promise<string | { skip: string }> {
  const env = Deno.env.toObject();
  const registry = `${env.GMEM_PEER_CACHE ?? `${cacheDir()}/gmem-peer`}/registry`;
  if (await exists(`${registry}/vm-memory-0.18.0`)) return registry;
  const fetcher = `${REPO}bench/peer/fetch_crates.sh`;
  if (!(await exists(fetcher))) return { skip: `no vm-memory 0.18 crates at ${registry}` };
  const r = await run("bash", [fetcher]);
  if (r.code === 3) return { skip: `the crates cannot be had: ${r.stderr.trim()}` };
  assert.equal(r.code, 0, `fetch_crates.sh failed: ${r.stderr}`);
  return r.stdout.trim();
}

/**
 * Builds the probe (sources copied to a cache directory so the checkout stays clean; a copy is only
 * rewritten when it changed, so cargo rebuilds only then) and returns its binary, or why not.
 */
async function buildProbe(): Promise<string | { skip: string }> {
  const cargo = await findCargo();
  if (typeof cargo !== "string") return cargo;
  const crates = await findCrates();
  if (typeof crates !== "string") return crates;
  const dir = `${cacheDir()}/gmem-parity-probe`;
  await Deno.mkdir(`${dir}/src`, { recursive: true });
  for (const file of ["Cargo.toml", "src/main.rs"]) {
    const text = await Deno.readTextFile(PROBE_SOURCES + file);
    const there = await exists(`${dir}/${file}`) ? await Deno.readTextFile(`${dir}/${file}`) : undefined;
    if (there !== text) await Deno.writeTextFile(`${dir}/${file}`, text);
  }
  const r = await run(cargo, [
    "build",
    "--release",
    "--offline",
    "--quiet",
    "--manifest-path",
    `${dir}/Cargo.toml`,
    "--config",
    'source.crates-io.replace-with="gmem-debian"',
    "--config",
    `source.gmem-debian.directory="${crates}"`,
  ], { CARGO_TARGET_DIR: `${dir}/target` });
  // A toolchain older than the crates need (Debian bookworm's rustc 1.63; rangemap wants 1.81) cannot
  // build them at all; any other failure is the probe's and must fail the tests.
  if (r.code !== 0 && /is not supported by the following package|requires rustc/.test(r.stderr)) {
    return { skip: `${cargo} is too old for the crates: ${r.stderr.trim().split("\n")[0]}` };
  }
  assert.equal(r.code, 0, `the vm-memory probe did not build:\n${r.stderr}`);
  return `${dir}/target/release/gmem-vm-memory-probe`;
}

const lines = parseScripts(await Deno.readTextFile(SCRIPTS));
const scripts = byScript(lines);
const probe = await buildProbe();
if (typeof probe !== "string") console.log(`vm-memory parity: the crate side is skipped: ${probe.skip}`);
let crateOutput: string[] | undefined;

async function crateResults(binary: string): Promise<string[]> {
  if (crateOutput === undefined) {
    const r = await run(binary, [SCRIPTS]);
    assert.equal(r.code, 0, `the probe failed:\n${r.stderr}`);
    crateOutput = r.stdout.trimEnd().split("\n");
    assert.equal(crateOutput.length, lines.length, "the probe prints one line per script line");
  }
  return crateOutput;
}

const gmemOutput = runScripts(lines);

for (const [name, { from, to }] of scripts) {
  Deno.test(`parity script ${name}: gmem gives the expected result of every operation`, () => {
    assert.deepEqual(
      shown(lines, gmemOutput, from, to),
      shown(lines, lines.map((l) => l.gmem), from, to),
    );
  });

  Deno.test({
    name: `parity script ${name}: vm-memory 0.18 gives the expected result of every operation`,
    ignore: typeof probe !== "string",
    fn: async () => {
      const out = await crateResults(probe as string);
      assert.deepEqual(shown(lines, out, from, to), shown(lines, lines.map((l) => l.vmMemory), from, to));
    },
  });
}

Deno.test("parity scripts: the differences from vm-memory are exactly those docs/vm-memory.md lists", () => {
  // Adding or removing one must be deliberate: docs/vm-memory.md names each.
  const differences = lines.filter((l) => l.vmMemory !== l.gmem).map((l) => l.text);
  assert.deepEqual(differences, [
    "map 0x10000 0xfffffffffffff800 0x1000 rw",
    "write 0x10800 0x4 0xcd",
    "read 0x0 0x4",
    "memory 0x0 0x0",
    "map 0x1000 0x0 0x0 rw",
    "unmap 0x1000 0x0",
    "map 0xfffffffffffff000 0x0 0x1000 rw",
    "map 0xfffffffffffff000 0x0 0x2000 rw",
    "unmap 0xfffffffffffff000 0x2000",
    "lookup 0xfffffffffffff000 0x2000 r",
    "lookup 0xfffffffffffff000 0x1000 r",
    "check_range 0xfffffffffffff000 0x2000 r",
    "read 0xfffffffffffff000 0x2000",
    "read 0xfffffffffffff000 0x1000",
    "load_u32 0x2",
    "store_u64 0x1004 0x1",
  ]);
});
