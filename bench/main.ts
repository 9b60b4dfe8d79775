/**
 * Runs every benchmark and prints one line per case: our figure, then each baseline measured in the
 * same run with the ratio ours / baseline (above 1 means we are slower).
 *
 *   deno task bench [--json] [--filter <substring>]
 * @module
 */

import { native } from "../src/ffi/native.ts";
import { type BenchCase, foundationCases, type PublishedFigure, type Side } from "./foundation.ts";
import { DEFAULT_OPTIONS, type HarnessOptions, measureGroup, type Measurement, sink } from "./harness.ts";
import { guestMemoryCases } from "./guest_memory.ts";
import { bitmapCases } from "./bitmap.ts";
import { type AsyncBenchCase, iommuAsyncCases, iotlbCases } from "./iommu.ts";
import { iommuMemoryCases } from "./iommu_memory.ts";
import { vhostUserCases } from "./vhost_user.ts";

interface Figure {
  name: string;
  nsPerOp: number;
  minNsPerOp: number;
  maxNsPerOp: number;
  iters: number;
  samples: number[];
  /** Only for cases that move bytes: 1e9 bytes per second. */
  gbPerSec?: number;
}

interface BaselineFigure extends Figure {
  /** ours.nsPerOp / baseline.nsPerOp. */
  ratio: number;
}

interface Row {
  case: string;
  bytesPerOp?: number;
  ours: Figure;
  baselines: BaselineFigure[];
  /** Measured elsewhere (not in this run), for orientation; ratio = ours / published. */
  published?: PublishedFigure & { ratio: number };
}

interface Args {
  json: boolean;
  filter: string | undefined;
}

const USAGE = "usage: deno task bench [--json] [--filter <substring>]";

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { json: false, filter: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") args.json = true;
    else if (a === "--filter" && i + 1 < argv.length) args.filter = argv[++i];
    else if (a.startsWith("--filter=")) args.filter = a.slice("--filter=".length);
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

function figure(side: Side, m: Measurement, bytesPerOp: number | undefined): Figure {
  const f: Figure = {
    name: side.name,
    nsPerOp: m.nsPerOp,
    minNsPerOp: m.minNsPerOp,
    maxNsPerOp: m.maxNsPerOp,
    iters: m.iters,
    samples: m.samples,
  };
  if (bytesPerOp !== undefined) f.gbPerSec = bytesPerOp / m.nsPerOp; // bytes per ns = 1e9 bytes per s
  return f;
}

function runCase(c: BenchCase, options: HarnessOptions): Row {
  let row: Row | undefined;
  c.run((ours, baselines) => {
    const [o, ...bs] = measureGroup([ours.loop, ...baselines.map((b) => b.loop)], options);
    const oursFigure = figure(ours, o, c.bytesPerOp);
    row = {
      case: c.name,
      bytesPerOp: c.bytesPerOp,
      ours: oursFigure,
      baselines: bs.map((m, i) => ({ ...figure(baselines[i], m, c.bytesPerOp), ratio: o.nsPerOp / m.nsPerOp })),
    };
    if (c.published) row.published = { ...c.published, ratio: o.nsPerOp / c.published.nsPerOp };
  });
  if (!row) throw new Error(`case ${c.name} measured nothing`);
  return row;
}

async function runAsyncCase(c: AsyncBenchCase): Promise<Row> {
  const [o, ...bs] = await c.run();
  const side = (name: string): Side => ({ name, loop: () => 0 });
  return {
    case: c.name,
    ours: figure(side(o.name), o.m, undefined),
    baselines: bs.map((b) => ({ ...figure(side(b.name), b.m, undefined), ratio: o.m.nsPerOp / b.m.nsPerOp })),
  };
}

function ns(value: number): string {
  const digits = value < 10 ? 2 : 1;
  return value.toFixed(digits);
}

function cell(f: Figure): string {
  const gb = f.gbPerSec === undefined ? "" : ` ${f.gbPerSec.toFixed(2).padStart(6)} GB/s`;
  return `${ns(f.nsPerOp).padStart(10)} ns/op${gb}`;
}

function formatRow(row: Row): string {
  const parts = [`${row.case.padEnd(20)}${cell(row.ours)}`];
  for (const b of row.baselines) parts.push(`${b.name.padEnd(20)}${cell(b)}`, `${b.ratio.toFixed(2).padStart(6)}x`);
  const p = row.published;
  if (p) {
    const gb = row.bytesPerOp === undefined ? "" : ` ${(row.bytesPerOp / p.nsPerOp).toFixed(2).padStart(6)} GB/s`;
    parts.push(`${p.source} (published) ${ns(p.nsPerOp).padStart(8)} ns/op${gb}`, `${p.ratio.toFixed(2).padStart(6)}x`);
  }
  return parts.join(" | ");
}

async function main(): Promise<void> {
  const args = parseArgs(Deno.args);
  const options = DEFAULT_OPTIONS;
  const cases = [
    ...foundationCases(),
    ...guestMemoryCases(),
    ...bitmapCases(),
    ...iotlbCases(),
    ...iommuMemoryCases(),
    ...vhostUserCases(),
  ]
    .filter((c) => args.filter === undefined || c.name.includes(args.filter));
  const asyncCases = iommuAsyncCases().filter((c) => args.filter === undefined || c.name.includes(args.filter));
  if (cases.length === 0 && asyncCases.length === 0) {
    console.error(`no case matches ${JSON.stringify(args.filter)}`);
    Deno.exit(2);
  }
  const env = {
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    os: Deno.build.os,
    arch: Deno.build.arch,
    cpus: navigator.hardwareConcurrency,
    pageSize: native().pageSize,
    reps: options.reps,
    targetMsPerRep: options.targetMs,
    warmupMsPerLoop: options.warmupMs,
  };
  const started = performance.now();

  if (!args.json) {
    console.log(
      `# gmem bench: deno ${env.deno}, v8 ${env.v8}, ${env.os}/${env.arch}, ${env.cpus} cpus, page ${env.pageSize}`,
    );
    console.log(
      `# median of ${options.reps} interleaved reps of ~${options.targetMs} ms after >=${options.warmupMs} ms warm-up; ` +
        "ratio = ours / baseline (>1 = slower)",
    );
  }
  const rows: Row[] = [];
  for (const c of cases) {
    const row = runCase(c, options);
    rows.push(row);
    if (!args.json) console.log(formatRow(row));
  }
  for (const c of asyncCases) {
    const row = await runAsyncCase(c);
    rows.push(row);
    if (!args.json) console.log(formatRow(row));
  }
  const seconds = (performance.now() - started) / 1000;

  if (args.json) {
    console.log(JSON.stringify({ env, seconds, sink: sink(), results: rows }, null, 2));
  } else {
    for (const row of rows) console.log(`# ${row.case}: ours = ${row.ours.name}`);
    console.log(`# sink ${sink()} (keeps results alive), ${seconds.toFixed(1)} s`);
  }
}

await main();
