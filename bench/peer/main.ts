/**
 * gmem beside the Rust crate it models, in one run: every case of bench/guest_memory.ts,
 * bench/iommu.ts and bench/iommu_memory.ts, with vm-memory 0.18 doing the same work at the same
 * addresses (bench/peer/src, built offline from Debian's packaged crates) as one more loop of the
 * case's group. The harness interleaves the group rep by rep (gmem, vm-memory, then the case's C
 * and typed-array baselines, again), so a slow patch of the machine hits every side alike.
 *
 *   deno task bench:peer [--json FILE] [--markdown] [--filter <substring>] [--rounds N]
 *
 * `--rounds N` measures the whole set N times, each round in a Deno process of its own, and keeps
 * per case the round with the median ratio (its figures together) and every round's ratio: a burst
 * of other work on a shared machine then moves one round, not the figure. A process per round, not
 * rounds in one process: a case run again in the same process builds its loop closures anew from
 * the same source, and V8 then stops specialising the loop to the values it captures (the memory,
 * the mask), so later rounds measured gmem's scalar loops up to 1.5x slower than the first (4.6 ->
 * 6.3 ns for read_obj_u32_hot alone), a property of the harness rather than of either library.
 *
 * Exit status 3: the crate or a toolchain for it cannot be had (the reason is printed).
 * @module
 */

import { native } from "../../src/ffi/native.ts";
import type { BenchCase } from "../foundation.ts";
import { DEFAULT_OPTIONS, type HarnessOptions, measureGroup, type Measurement, sink } from "../harness.ts";
import { guestMemoryCases } from "../guest_memory.ts";
import { iotlbCases } from "../iommu.ts";
import { iommuMemoryCases } from "../iommu_memory.ts";
import { referenceHighWords } from "../lcg.ts";
import { buildPeer, PeerUnavailableError } from "./build.ts";
import { PeerProcess } from "./peer_process.ts";
import {
  formatNs,
  formatPeerMarkdown,
  formatPeerTable,
  medianRound,
  parsePeerReport,
  type PeerFigure,
  peerRatio,
  type PeerReport,
  type PeerRow,
} from "./report.ts";

interface Args {
  json: string | undefined;
  markdown: boolean;
  filter: string | undefined;
  rounds: number;
  /** Set in a round's own process (`r/N`): prefixes progress lines, prints no table. */
  roundOf: string | undefined;
}

const USAGE = "usage: deno task bench:peer [--json FILE] [--markdown] [--filter <substring>] [--rounds N]";

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { json: undefined, markdown: false, filter: undefined, rounds: 1, roundOf: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json" && i + 1 < argv.length) args.json = argv[++i];
    else if (a.startsWith("--json=")) args.json = a.slice("--json=".length);
    else if (a === "--markdown") args.markdown = true;
    else if (a === "--filter" && i + 1 < argv.length) args.filter = argv[++i];
    else if (a.startsWith("--filter=")) args.filter = a.slice("--filter=".length);
    else if (a === "--rounds" && i + 1 < argv.length) args.rounds = roundsArg(argv[++i]);
    else if (a.startsWith("--rounds=")) args.rounds = roundsArg(a.slice("--rounds=".length));
    else if (a === "--round-of" && i + 1 < argv.length) args.roundOf = argv[++i];
    else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      Deno.exit(0);
    } else {
      console.error(`unknown argument ${JSON.stringify(a)}\n${USAGE}`);
      Deno.exit(2);
    }
  }
  return args;
}

function roundsArg(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1 || n > 99) {
    console.error(`--rounds takes a whole number from 1 to 99, not ${JSON.stringify(text)}\n${USAGE}`);
    Deno.exit(2);
  }
  return n;
}

function figure(name: string, m: Measurement, bytesPerOp: number | undefined): PeerFigure {
  const f: PeerFigure = {
    name,
    nsPerOp: m.nsPerOp,
    minNsPerOp: m.minNsPerOp,
    maxNsPerOp: m.maxNsPerOp,
    iters: m.iters,
    samples: m.samples,
  };
  if (bytesPerOp !== undefined) f.gbPerSec = bytesPerOp / m.nsPerOp;
  return f;
}

/** Measures case `c` beside its vm-memory counterpart; undefined if the program has none. */
function runCase(c: BenchCase, peer: PeerProcess, options: HarnessOptions): PeerRow | undefined {
  // The Rust side maps and fills its memory first, outside any timing, and keeps it while the
  // Deno side's fixture is open.
  const op = peer.open(c.name);
  if (op === undefined) return undefined;
  let row: PeerRow | undefined;
  try {
    c.run((ours, baselines) => {
      const [g, v, ...bs] = measureGroup(
        [ours.loop, (iters) => peer.run(iters), ...baselines.map((b) => b.loop)],
        options,
      );
      row = {
        case: c.name,
        bytesPerOp: c.bytesPerOp,
        gmem: figure(ours.name, g, c.bytesPerOp),
        vmMemory: figure(op, v, c.bytesPerOp),
        ratio: peerRatio(g.nsPerOp, v.nsPerOp),
        baselines: bs.map((m, i) => ({ ...figure(baselines[i].name, m, c.bytesPerOp), ratio: g.nsPerOp / m.nsPerOp })),
      };
    });
  } finally {
    peer.close();
  }
  if (!row) throw new Error(`case ${c.name} measured nothing`);
  return row;
}

/** CPU model, kernel and THP mode, through a shell: Deno wants --allow-all to read /proc and /sys. */
function machineFacts(): { cpuModel: string; kernel: string; thp: string } {
  const [cpuModel, kernel, thp] = shellLines(
    "sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1; uname -r; " +
      "sed -n 's/.*\\[\\(.*\\)\\].*/\\1/p' /sys/kernel/mm/transparent_hugepage/enabled",
  );
  return { cpuModel: cpuModel ?? "unknown", kernel: kernel ?? "unknown", thp: thp ?? "unknown" };
}

/** The 1, 5 and 15 minute load averages: other work on a shared machine shows up here. */
function loadAverage(): string {
  return shellLines("cut -d ' ' -f 1-3 /proc/loadavg")[0] ?? "unknown";
}

function shellLines(script: string): string[] {
  const out = new Deno.Command("bash", { args: ["-c", script], stdout: "piped", stderr: "null" }).outputSync();
  return new TextDecoder().decode(out.stdout).split("\n").map((s) => s.trim() || "unknown");
}

/**
 * Runs each of `args.rounds` rounds in a Deno process of its own (see the module doc), each writing
 * its report to a temporary file, and merges them: per case the median round (`medianRound`).
 */
async function forkedRounds(args: Args): Promise<PeerReport> {
  const dir = Deno.makeTempDirSync({ prefix: "gmem-peer-" });
  const started = performance.now();
  const reports: PeerReport[] = [];
  try {
    for (let round = 1; round <= args.rounds; round++) {
      const json = `${dir}/round-${round}.json`;
      const argv = ["run", "--allow-ffi", "--allow-read", "--allow-write", "--allow-env", "--allow-run"];
      argv.push(new URL(import.meta.url).pathname, "--json", json, "--round-of", `${round}/${args.rounds}`);
      if (args.filter !== undefined) argv.push("--filter", args.filter);
      const { code } = await new Deno.Command(Deno.execPath(), { args: argv, stdout: "inherit", stderr: "inherit" })
        .output();
      if (code !== 0) {
        // A round's own status (3: no crate) is the run's; exit skips the finally below.
        Deno.removeSync(dir, { recursive: true });
        Deno.exit(code);
      }
      reports.push(parsePeerReport(Deno.readTextFileSync(json)));
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  const byCase = new Map<string, PeerRow[]>();
  for (const r of reports) for (const row of r.rows) byCase.set(row.case, [...(byCase.get(row.case) ?? []), row]);
  const first = reports[0], last = reports[reports.length - 1];
  return {
    env: { ...first.env, rounds: args.rounds, loadAverageAfter: last.env.loadAverageAfter ?? "unknown" },
    seconds: (performance.now() - started) / 1000,
    rows: [...byCase.values()].map((rs) => medianRound(rs)),
    skipped: first.skipped,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(Deno.args);
  const report = args.rounds > 1 ? await forkedRounds(args) : await measureOnce(args);
  if (args.roundOf === undefined) {
    console.log();
    for (const line of formatPeerTable(report)) console.log(line);
    if (report.skipped.length > 0) {
      console.log(`# not measured (no vm-memory counterpart): ${report.skipped.join(", ")}`);
    }
    if (args.markdown) {
      console.log();
      for (const line of formatPeerMarkdown(report)) console.log(line);
    }
    console.log(
      `# sink ${sink()} (keeps results alive), ${report.seconds.toFixed(1)} s, load ${report.env.loadAverageAfter}`,
    );
  }
  if (args.json !== undefined) {
    Deno.writeTextFileSync(args.json, JSON.stringify(report, null, 2) + "\n");
    if (args.roundOf === undefined) console.log(`# report written to ${args.json}`);
  }
}

/** One round in this process: every case once, gmem beside vm-memory. */
async function measureOnce(args: Args): Promise<PeerReport> {
  const options = DEFAULT_OPTIONS;
  const cases = [...guestMemoryCases(), ...iotlbCases(), ...iommuMemoryCases()]
    .filter((c) => args.filter === undefined || c.name.includes(args.filter));
  if (cases.length === 0) {
    console.error(`no case matches ${JSON.stringify(args.filter)}`);
    Deno.exit(2);
  }

  let build;
  try {
    build = await buildPeer();
  } catch (e) {
    if (!(e instanceof PeerUnavailableError)) throw e;
    console.error(`bench:peer: ${e.message}`);
    Deno.exit(3);
  }

  const machine = machineFacts();
  const env = {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    os: Deno.build.os,
    arch: Deno.build.arch,
    kernel: machine.kernel,
    cpuModel: machine.cpuModel,
    cpus: navigator.hardwareConcurrency,
    transparentHugepages: machine.thp,
    pageSize: native().pageSize,
    vmMemory: build.vmMemory,
    rustc: build.rustcVersion,
    cargo: build.cargoVersion,
    reps: options.reps,
    rounds: 1,
    targetMsPerRep: options.targetMs,
    warmupMsPerLoop: options.warmupMs,
    date: new Date().toISOString(),
    loadAverageBefore: loadAverage(),
  };
  console.log(
    `# gmem vs vm-memory ${env.vmMemory}: deno ${env.deno}, ${env.rustc}, ${env.cpuModel}, ${env.cpus} cpus, ` +
      `linux ${env.kernel}, THP ${env.transparentHugepages}, load ${env.loadAverageBefore}`,
  );
  console.log(
    `# median of ${options.reps} interleaved reps of ~${options.targetMs} ms (gmem, vm-memory, baselines) after ` +
      `>=${options.warmupMs} ms warm-up each; ratio = gmem / vm-memory (<1 = gmem faster)`,
  );

  const peer = new PeerProcess(build.program);
  const started = performance.now();
  const rows: PeerRow[] = [];
  const skipped: string[] = [];
  try {
    const steps = 1 << 16;
    const expected = referenceHighWords(steps).reduce((a, b) => a + b, 0);
    const theirs = peer.lcgSum(steps);
    if (theirs !== expected) {
      throw new Error(`the Rust LCG summed ${theirs} over ${steps} steps, the reference ${expected}`);
    }
    for (const c of cases) {
      const row = runCase(c, peer, options);
      if (row === undefined) {
        // A case added to the Deno benchmark before bench/peer/src learnt it: said, not hidden.
        skipped.push(c.name);
        console.log(`# ${c.name}: no vm-memory counterpart in bench/peer/src, skipped`);
        continue;
      }
      rows.push(row);
      console.log(
        `# ${args.roundOf !== undefined ? `round ${args.roundOf}: ` : ""}${row.case}: gmem ${
          formatNs(row.gmem.nsPerOp)
        }, vm-memory ${formatNs(row.vmMemory.nsPerOp)}, ${row.ratio.toFixed(2)}x`,
      );
    }
  } catch (e) {
    peer[Symbol.dispose](); // the error that stopped the run is the one to report
    throw e;
  }
  await peer.quit();
  return {
    env: { ...env, loadAverageAfter: loadAverage() },
    seconds: (performance.now() - started) / 1000,
    rows,
    skipped,
  };
}

await main();
