/**
 * The benchmark tables of docs/benchmarks.md, generated from saved runs instead of typed by hand.
 * Each table sits between two markers that name its source and which cases it shows:
 *
 *   <!-- generated from bench/docs_run.json: /^iotlb_/ -->
 *   …table…
 *   <!-- end of generated table -->
 *
 * The source is the JSON of `deno task bench --json` (a `results` list) or of
 * `deno task bench:peer --json FILE` (a `rows` list); the filter `env` gives the run's machine line
 * instead of a table. `deno task bench:docs` rewrites every marked block; `--check` only says
 * whether the page is up to date (exit 1 if not). To publish a new run:
 *
 *   deno task bench --json > bench/docs_run.json && deno task bench:docs
 *
 * Tables come out aligned as `deno fmt` leaves them, so the page stays formatted.
 * @module
 */

import { readFileSync, writeFileSync } from "node:fs";
import process from "node:process";
import { formatNs, parsePeerReport, type PeerReport, roundSpread } from "./peer/report.ts";

/** One measured side of a case in `deno task bench --json`. */
export interface BenchFigure {
  name: string;
  nsPerOp: number;
  gbPerSec?: number;
}

/** One case of `deno task bench --json`: gmem, then each same-run baseline with gmem / baseline. */
export interface BenchRow {
  case: string;
  ours: BenchFigure;
  baselines: (BenchFigure & { ratio: number })[];
  published?: { source: string; nsPerOp: number; ratio: number };
}

/** What `deno task bench --json` prints. */
export interface BenchReport {
  env: Record<string, string | number>;
  seconds: number;
  results: BenchRow[];
}

/** A saved run or a page that the generator cannot use, with what is wrong. */
export class BenchDocsError extends Error {
  override name = "BenchDocsError";
}

/**
 * A `deno task bench --json` report, checked field by field.
 *
 * @example
 * ```ts
 * import { parseBenchReport } from "./docs_tables.ts";
 * const r = parseBenchReport('{"env":{},"seconds":1,"results":[]}');
 * console.log(r.results.length); // 0
 * ```
 */
export function parseBenchReport(json: string, source = "report"): BenchReport {
  const doc = JSON.parse(json) as Partial<BenchReport>;
  if (typeof doc !== "object" || doc === null || !Array.isArray(doc.results) || typeof doc.env !== "object") {
    throw new BenchDocsError(`${source}: not the JSON of deno task bench --json (no env and results)`);
  }
  for (const r of doc.results) {
    const ok = typeof r?.case === "string" && isFigure(r.ours) && Array.isArray(r.baselines) &&
      r.baselines.every((b) => isFigure(b) && typeof b.ratio === "number");
    if (!ok) throw new BenchDocsError(`${source}: result ${JSON.stringify(r?.case)} lacks ours or its baselines`);
  }
  return doc as BenchReport;
}

function isFigure(f: unknown): f is BenchFigure {
  return typeof f === "object" && f !== null && typeof (f as BenchFigure).name === "string" &&
    typeof (f as BenchFigure).nsPerOp === "number" && Number.isFinite((f as BenchFigure).nsPerOp);
}

/** A time with its throughput when the case moves bytes: `90.8 ns (45 GB/s)`. */
function timeCell(f: BenchFigure): string {
  return f.gbPerSec === undefined ? formatNs(f.nsPerOp) : `${formatNs(f.nsPerOp)} (${f.gbPerSec.toFixed(0)} GB/s)`;
}

/**
 * A Markdown table laid out as `deno fmt` lays it out: every cell padded to its column's width,
 * right-aligned columns (`right[i]`) padded on the left.
 *
 * @example
 * ```ts
 * import { markdownTable } from "./docs_tables.ts";
 * console.log(markdownTable(["a", "n"], [["x", "1.5"]], [false, true]).join("\n"));
 * // | a   |   n |
 * // | --- | --: |
 * // | x   | 1.5 |
 * ```
 */
export function markdownTable(header: string[], rows: string[][], right: boolean[]): string[] {
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (right[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(" | ")} |`;
  const rule = `| ${widths.map((w, i) => (right[i] ? `${"-".repeat(w - 1)}:` : "-".repeat(w))).join(" | ")} |`;
  return [line(header), rule, ...rows.map(line)];
}

/**
 * The cases of a `deno task bench` run whose names match `filter`: gmem, each same-run baseline with
 * gmem / baseline, and vm-memory's published figure where the case has one.
 *
 * @example
 * ```ts
 * import { benchTable } from "./docs_tables.ts";
 * const row = { case: "c", ours: { name: "gmem", nsPerOp: 6 }, baselines: [{ name: "C", nsPerOp: 2, ratio: 3 }] };
 * console.log(benchTable({ env: {}, seconds: 1, results: [row] }, /./)[2]); // "| `c`  | 6.00 ns | C 2.00 ns (3.00x)            | —                           |"
 * ```
 */
export function benchTable(report: BenchReport, filter: RegExp): string[] {
  const rows = report.results.filter((r) => filter.test(r.case)).map((r) => [
    `\`${r.case}\``,
    timeCell(r.ours),
    r.baselines.map((b) => `${b.name} ${formatNs(b.nsPerOp)} (${b.ratio.toFixed(2)}x)`).join("; ") || "—",
    r.published ? `${formatNs(r.published.nsPerOp)} (${r.published.ratio.toFixed(2)}x)` : "—",
  ]);
  if (rows.length === 0) throw new BenchDocsError(`no case of the run matches ${filter}`);
  return markdownTable(
    ["case", "gmem", "same-run baselines (gmem / baseline)", "vm-memory 0.18, published"],
    rows,
    [false, true, false, false],
  );
}

/**
 * A `deno task bench:peer` report's cases that match `filter`, beside vm-memory 0.18 in the same run.
 *
 * @example
 * ```ts ignore
 * console.log(peerTable(report, /iommu/).join("\n"));
 * ```
 */
export function peerTable(report: PeerReport, filter: RegExp): string[] {
  const rows = report.rows.filter((r) => filter.test(r.case)).map((r) => [
    `\`${r.case}\``,
    formatNs(r.gmem.nsPerOp),
    formatNs(r.vmMemory.nsPerOp),
    `${r.ratio.toFixed(2)}x${roundSpread(r)}`,
    r.baselines.map((b) => `${b.name} ${formatNs(b.nsPerOp)} (${b.ratio.toFixed(2)}x)`).join("; "),
  ]);
  if (rows.length === 0) throw new BenchDocsError(`no case of the peer run matches ${filter}`);
  return markdownTable(
    ["case", "gmem", "vm-memory 0.18", "gmem / vm-memory", "same-run baselines (gmem / baseline)"],
    rows,
    [false, true, true, true, false],
  );
}

/**
 * The machine and settings of a run, as one sentence.
 *
 * @example
 * ```ts
 * import { envLine } from "./docs_tables.ts";
 * console.log(envLine({ deno: "2.9.6", os: "linux", arch: "x86_64", cpus: 2, pageSize: 4096 }, 61.4));
 * // Run: Deno 2.9.6, linux/x86_64, 2 CPUs, 4096-byte pages; 61 s in all.
 * ```
 */
export function envLine(env: Record<string, string | number>, seconds: number): string {
  const named: [string, string | number | undefined][] = [
    ["Deno", env.deno],
    ["Bun", env.bun],
    ["V8", env.v8],
    ["", env.rustc],
    ["vm-memory", env.vmMemory],
  ];
  // Under Bun the harness fills the Deno fields with "(Bun 1.4.5)" and "(JavaScriptCore)": print those as they are.
  const parts = named.filter(([, v]) => v !== undefined).map(([k, v]) =>
    typeof v === "string" && v.startsWith("(") ? v.slice(1, -1) : k ? `${k} ${v}` : `${v}`
  );
  const cpu = env.cpuModel === undefined ? `${env.cpus} CPUs` : `${env.cpus} CPUs (${env.cpuModel})`;
  const where = [`${env.os}/${env.arch}`, cpu, `${env.pageSize}-byte pages`];
  const reps = env.reps === undefined ? [] : [`median of ${env.reps} interleaved reps of ~${env.targetMsPerRep} ms`];
  // A run of several rounds keeps per case the round with the median ratio (bench/peer/main.ts).
  if (typeof env.rounds === "number" && env.rounds > 1) reps.push(`the median of ${env.rounds} rounds per case`);
  const load = env.loadAverageBefore === undefined
    ? ""
    : `; load average ${env.loadAverageBefore} before, ${env.loadAverageAfter} after`;
  return `Run: ${[...parts, ...where, ...reps].join(", ")}; ${seconds.toFixed(0)} s in all${load}.`;
}

const START = /^<!-- generated from (\S+): (\/.*\/|env) -->$/;
const END = "<!-- end of generated table -->";

/**
 * `page` with every marked block replaced by what `load(source)` gives for its filter: a table of
 * the matching cases, or the run's machine line for `env`.
 *
 * @example
 * ```ts
 * import { rewriteGenerated } from "./docs_tables.ts";
 * const page = "a\n<!-- generated from r.json: env -->\nold\n<!-- end of generated table -->\nb\n";
 * const report = { env: { os: "linux", arch: "x86_64", cpus: 2, pageSize: 4096 }, seconds: 3, results: [] };
 * console.log(rewriteGenerated(page, () => report).split("\n")[3]); // "Run: linux/x86_64, 2 CPUs, 4096-byte pages; 3 s in all."
 * ```
 */
export function rewriteGenerated(page: string, load: (source: string) => BenchReport | PeerReport): string {
  const lines = page.split("\n");
  const out: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = START.exec(lines[i]);
    out.push(lines[i]);
    if (!m) continue;
    const end = lines.indexOf(END, i + 1);
    const next = lines.findIndex((l, j) => j > i && START.test(l));
    if (end < 0 || (next >= 0 && next < end)) {
      throw new BenchDocsError(`line ${i + 1}: "${lines[i]}" has no "${END}" before the next table`);
    }
    const report = load(m[1]);
    const filter = m[2] === "env" ? undefined : new RegExp(m[2].slice(1, -1));
    // Blank lines around the block and prose wrapped at 120 columns: the page as deno fmt leaves it.
    out.push("");
    if (filter === undefined) out.push(...wrap(envLine(report.env, report.seconds), 120));
    else out.push(...("rows" in report ? peerTable(report, filter) : benchTable(report, filter)));
    out.push("", END);
    i = end;
  }
  return out.join("\n");
}

/** `text` broken at spaces into lines of at most `width` characters (a longer word stays whole). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}

/** A saved run by its path from the repository root: a bench report or a peer report. */
export function loadRun(root: URL, source: string): BenchReport | PeerReport {
  const text = readFileSync(new URL(source, root), "utf8");
  return "rows" in (JSON.parse(text) as object) ? parsePeerReport(text) : parseBenchReport(text, source);
}

if (import.meta.main) {
  const root = new URL("../", import.meta.url);
  const pageUrl = new URL("docs/benchmarks.md", root);
  const page = readFileSync(pageUrl, "utf8");
  const fresh = rewriteGenerated(page, (source) => loadRun(root, source));
  if (process.argv.includes("--check")) {
    if (fresh !== page) {
      console.error("docs/benchmarks.md is not what its saved runs give: run deno task bench:docs");
      process.exit(1);
    }
    console.log("docs/benchmarks.md matches its saved runs");
  } else {
    writeFileSync(pageUrl, fresh);
    console.log(fresh === page ? "docs/benchmarks.md was up to date" : "docs/benchmarks.md rewritten");
  }
}
