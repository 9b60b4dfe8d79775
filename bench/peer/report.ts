/**
 * The peer benchmark's data: the replies of the vm-memory program (one JSON object a line), the
 * report `deno task bench:peer --json FILE` writes, the ratio gmem / vm-memory, and the table
 * printed from a report. Pure functions, no I/O: README tables are generated from a saved report.
 * @module
 */

/** A measured loop: median of its repetitions, in nanoseconds per iteration. */
export interface PeerFigure {
  name: string;
  nsPerOp: number;
  minNsPerOp: number;
  maxNsPerOp: number;
  iters: number;
  samples: number[];
  /** Only for cases that move bytes: 1e9 bytes per second. */
  gbPerSec?: number;
}

/** A baseline from the same run, with ratio = gmem / baseline. */
export interface PeerBaseline extends PeerFigure {
  ratio: number;
}

/** One case: gmem, vm-memory 0.18 on the same work, and the case's own baselines. */
export interface PeerRow {
  case: string;
  bytesPerOp?: number;
  gmem: PeerFigure;
  /** `name` is the vm-memory call measured. */
  vmMemory: PeerFigure;
  /** gmem.nsPerOp / vmMemory.nsPerOp: below 1 gmem is faster. */
  ratio: number;
  baselines: PeerBaseline[];
  /**
   * With `--rounds N` (N > 1): the ratio of every round in the order run. The row's figures are
   * those of the median round, so that they stay one round's same-run numbers.
   */
  roundRatios?: number[];
}

/** Everything a run produced. */
export interface PeerReport {
  /** Where it ran: runtime, toolchain and machine strings, numbers for the harness settings. */
  env: Record<string, string | number>;
  seconds: number;
  rows: PeerRow[];
  /** Cases of the Deno benchmark the vm-memory program has no counterpart for (not measured). */
  skipped: string[];
}

/** A reply of the vm-memory program, by command. */
export type PeerReply =
  | { kind: "lcg"; steps: number; sum: number }
  | { kind: "open"; case: string; op: string }
  | { kind: "unknown"; case: string }
  | { kind: "run"; ns: number }
  | { kind: "closed"; case: string };

/** A reply or a report that is not what the peer benchmark writes. */
export class PeerFormatError extends Error {
  override name = "PeerFormatError";
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function finiteNumber(v: unknown, what: string): number {
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new PeerFormatError(`${what}: ${JSON.stringify(v)} is not a finite number`);
  }
  return v;
}

function text(v: unknown, what: string): string {
  if (typeof v !== "string") throw new PeerFormatError(`${what}: ${JSON.stringify(v)} is not a string`);
  return v;
}

/**
 * Parses one line from the vm-memory program. An `{"error": ...}` reply, or anything else that is
 * not one of the five replies, throws a `PeerFormatError` carrying the line.
 *
 * @example
 * ```ts
 * import { parsePeerReply } from "./report.ts";
 * console.log(parsePeerReply('{"ns":1250.5}')); // { kind: "run", ns: 1250.5 }
 * ```
 */
export function parsePeerReply(line: string): PeerReply {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new PeerFormatError(`peer reply is not JSON: ${JSON.stringify(line)}`);
  }
  if (!isObject(v)) throw new PeerFormatError(`peer reply is not an object: ${JSON.stringify(line)}`);
  if ("error" in v) throw new PeerFormatError(`vm-memory peer: ${text(v.error, "error")}`);
  if ("ns" in v) {
    const ns = finiteNumber(v.ns, "run reply ns");
    if (!(ns > 0)) throw new PeerFormatError(`run reply: ${ns} ns`);
    return { kind: "run", ns };
  }
  if ("lcg" in v) return { kind: "lcg", steps: finiteNumber(v.lcg, "lcg reply"), sum: finiteNumber(v.sum, "lcg sum") };
  if ("open" in v) return { kind: "open", case: text(v.open, "open reply"), op: text(v.op, "open reply op") };
  if ("closed" in v) return { kind: "closed", case: text(v.closed, "closed reply") };
  if ("unknown" in v) return { kind: "unknown", case: text(v.unknown, "unknown reply") };
  throw new PeerFormatError(`unknown peer reply: ${JSON.stringify(line)}`);
}

/**
 * gmem's time over vm-memory's: below 1 gmem is faster.
 *
 * @example
 * ```ts
 * import { peerRatio } from "./report.ts";
 * console.log(peerRatio(5, 8)); // 0.625
 * ```
 */
export function peerRatio(gmemNsPerOp: number, vmMemoryNsPerOp: number): number {
  if (!(gmemNsPerOp > 0) || !(vmMemoryNsPerOp > 0)) {
    throw new PeerFormatError(`peerRatio: ${gmemNsPerOp} / ${vmMemoryNsPerOp} ns is not a ratio of two times`);
  }
  return gmemNsPerOp / vmMemoryNsPerOp;
}

function parseFigure(v: unknown, what: string): PeerFigure {
  if (!isObject(v)) throw new PeerFormatError(`${what} is not an object`);
  const samples = v.samples;
  if (!Array.isArray(samples)) throw new PeerFormatError(`${what}.samples is not an array`);
  const f: PeerFigure = {
    name: text(v.name, `${what}.name`),
    nsPerOp: finiteNumber(v.nsPerOp, `${what}.nsPerOp`),
    minNsPerOp: finiteNumber(v.minNsPerOp, `${what}.minNsPerOp`),
    maxNsPerOp: finiteNumber(v.maxNsPerOp, `${what}.maxNsPerOp`),
    iters: finiteNumber(v.iters, `${what}.iters`),
    samples: samples.map((s, i) => finiteNumber(s, `${what}.samples[${i}]`)),
  };
  if (v.gbPerSec !== undefined) f.gbPerSec = finiteNumber(v.gbPerSec, `${what}.gbPerSec`);
  return f;
}

/**
 * Reads a report written by `deno task bench:peer --json FILE`. The ratios are computed again
 * from the figures (a hand-edited ratio cannot slip into a table).
 *
 * @example
 * ```ts ignore
 * const report = parsePeerReport(Deno.readTextFileSync("peer.json"));
 * ```
 */
export function parsePeerReport(json: string): PeerReport {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (e) {
    throw new PeerFormatError(`peer report is not JSON: ${(e as Error).message}`);
  }
  if (!isObject(v) || !isObject(v.env) || !Array.isArray(v.rows)) {
    throw new PeerFormatError("peer report: expected an object with env, seconds and rows");
  }
  const env: Record<string, string | number> = {};
  for (const [k, x] of Object.entries(v.env)) {
    if (typeof x !== "string" && typeof x !== "number") {
      throw new PeerFormatError(`peer report env.${k} is not a string or number`);
    }
    env[k] = x;
  }
  const rows = v.rows.map((r: unknown, i: number): PeerRow => {
    if (!isObject(r)) throw new PeerFormatError(`rows[${i}] is not an object`);
    const name = text(r.case, `rows[${i}].case`);
    const gmem = parseFigure(r.gmem, `${name}.gmem`);
    const vmMemory = parseFigure(r.vmMemory, `${name}.vmMemory`);
    if (!Array.isArray(r.baselines)) throw new PeerFormatError(`${name}.baselines is not an array`);
    const baselines = r.baselines.map((b: unknown, j: number) => {
      const f = parseFigure(b, `${name}.baselines[${j}]`);
      return { ...f, ratio: gmem.nsPerOp / f.nsPerOp };
    });
    const row: PeerRow = { case: name, gmem, vmMemory, ratio: peerRatio(gmem.nsPerOp, vmMemory.nsPerOp), baselines };
    if (r.bytesPerOp !== undefined) row.bytesPerOp = finiteNumber(r.bytesPerOp, `${name}.bytesPerOp`);
    if (r.roundRatios !== undefined) {
      if (!Array.isArray(r.roundRatios)) throw new PeerFormatError(`${name}.roundRatios is not an array`);
      row.roundRatios = r.roundRatios.map((x, j) => finiteNumber(x, `${name}.roundRatios[${j}]`));
    }
    return row;
  });
  const skipped = v.skipped === undefined ? [] : v.skipped;
  if (!Array.isArray(skipped)) throw new PeerFormatError("peer report skipped is not an array");
  return {
    env,
    seconds: finiteNumber(v.seconds, "peer report seconds"),
    rows,
    skipped: skipped.map((x, i) => text(x, `skipped[${i}]`)),
  };
}

/**
 * One row out of the same case measured in several rounds of a run (`--rounds N`): the round whose
 * ratio is the median (the lower middle one for an even count), with every round's ratio in
 * `roundRatios`. A round's figures are kept together rather than taking each figure's own median,
 * which could pair a gmem time and a vm-memory time from different moments of the machine.
 *
 * @example
 * ```ts ignore
 * const row = medianRound([round1Row, round2Row, round3Row]);
 * console.log(row.roundRatios); // [1.04, 0.98, 1.01]
 * ```
 */
export function medianRound(rounds: readonly PeerRow[]): PeerRow {
  if (rounds.length === 0) throw new PeerFormatError("medianRound: no rounds");
  const name = rounds[0].case;
  if (rounds.some((r) => r.case !== name)) throw new PeerFormatError(`medianRound: rounds of different cases`);
  const order = rounds.map((_, i) => i).sort((a, b) => rounds[a].ratio - rounds[b].ratio);
  const mid = order[(rounds.length - 1) >> 1];
  return { ...rounds[mid], roundRatios: rounds.map((r) => r.ratio) };
}

/**
 * The spread of a row's rounds for a table cell, after its ratio: "" for a single round.
 *
 * @example
 * ```ts ignore
 * console.log(roundSpread(row)); // " (0.90–1.50)"
 * ```
 */
export function roundSpread(r: PeerRow): string {
  const rs = r.roundRatios;
  if (rs === undefined || rs.length < 2) return "";
  return ` (${Math.min(...rs).toFixed(2)}–${Math.max(...rs).toFixed(2)})`;
}

/**
 * A time for a table: µs from 10 µs up, else ns with three significant digits.
 *
 * @example
 * ```ts
 * import { formatNs } from "./report.ts";
 * console.log(formatNs(6.159), formatNs(604.2), formatNs(22100)); // "6.16 ns" "604 ns" "22.1 µs"
 * ```
 */
export function formatNs(ns: number): string {
  if (ns >= 10_000) return `${(ns / 1000).toPrecision(3)} µs`;
  if (ns >= 100) return `${Math.round(ns)} ns`;
  return `${ns.toPrecision(3)} ns`;
}

function ratioText(r: number): string {
  return `${r.toFixed(2)}x`;
}

/**
 * The report as aligned text lines: one row per case, gmem, vm-memory 0.18, their ratio (with the
 * lowest and highest round's after it, for a run of several rounds), then the case's own baselines
 * each with gmem / baseline.
 *
 * @example
 * ```ts ignore
 * for (const line of formatPeerTable(report)) console.log(line);
 * ```
 */
export function formatPeerTable(report: PeerReport): string[] {
  const header = ["case", "gmem", "vm-memory 0.18", "gmem/vm", "same-run baselines (gmem/baseline)"];
  const cells = report.rows.map((r) => [
    r.case,
    formatNs(r.gmem.nsPerOp),
    formatNs(r.vmMemory.nsPerOp),
    ratioText(r.ratio) + roundSpread(r),
    r.baselines.map((b) => `${b.name} ${formatNs(b.nsPerOp)} (${ratioText(b.ratio)})`).join("; "),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    c.map((x, i) => (i === 0 || i === c.length - 1 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join(" | ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...cells.map(line)];
}

/**
 * The report as a Markdown table (for README), same columns as `formatPeerTable`.
 *
 * @example
 * ```ts ignore
 * console.log(formatPeerMarkdown(report).join("\n"));
 * ```
 */
export function formatPeerMarkdown(report: PeerReport): string[] {
  const out = [
    "| case | gmem | vm-memory 0.18 | gmem / vm-memory | same-run baselines (gmem / baseline) |",
    "| --- | ---: | ---: | ---: | --- |",
  ];
  for (const r of report.rows) {
    const bs = r.baselines.map((b) => `${b.name} ${formatNs(b.nsPerOp)} (${ratioText(b.ratio)})`).join("; ");
    out.push(
      `| \`${r.case}\` | ${formatNs(r.gmem.nsPerOp)} | ${formatNs(r.vmMemory.nsPerOp)} | ${
        ratioText(r.ratio) + roundSpread(r)
      } | ${bs} |`,
    );
  }
  return out;
}
