// deno task bench:docs (bench/docs_tables.ts): the benchmark tables of docs/benchmarks.md come from
// saved runs, rendered exactly, between their markers only, and the page in the repository is what
// its saved runs give (so a table cannot be edited by hand).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  BenchDocsError,
  type BenchReport,
  benchTable,
  envLine,
  loadRun,
  parseBenchReport,
  rewriteGenerated,
} from "../bench/docs_tables.ts";

const ROOT = new URL("../", import.meta.url);

const RUN: BenchReport = {
  env: { deno: "2.9.6", os: "linux", arch: "x86_64", cpus: 2, pageSize: 4096, reps: 9, targetMsPerRep: 30 },
  seconds: 12.4,
  results: [
    {
      case: "read_obj_u64_hot",
      ours: { name: "readU64", nsPerOp: 6.159 },
      baselines: [
        { name: "DataView", nsPerOp: 2.25, ratio: 2.737 },
        { name: "C load loop", nsPerOp: 1.43, ratio: 4.307 },
      ],
      published: { source: "vm-memory 0.18", nsPerOp: 6.94, ratio: 0.8875 },
    },
    {
      case: "read_slice_1m_hot",
      ours: { name: "readSlice", nsPerOp: 22100, gbPerSec: 47.4 },
      baselines: [{ name: "C memcpy loop", nsPerOp: 22000, ratio: 1.0045 }],
    },
    { case: "iotlb_lookup", ours: { name: "translateFast", nsPerOp: 12.1 }, baselines: [] },
  ],
};

Deno.test("bench docs: a run's matching cases become a table with each baseline's ratio and the published figure", () => {
  assert.deepEqual(benchTable(RUN, /^read_/), [
    "| case                |              gmem | same-run baselines (gmem / baseline)                  | vm-memory 0.18, published |",
    "| ------------------- | ----------------: | ----------------------------------------------------- | ------------------------- |",
    "| `read_obj_u64_hot`  |           6.16 ns | DataView 2.25 ns (2.74x); C load loop 1.43 ns (4.31x) | 6.94 ns (0.89x)           |",
    "| `read_slice_1m_hot` | 22.1 µs (47 GB/s) | C memcpy loop 22.0 µs (1.00x)                         | —                         |",
  ]);
  assert.throws(() => benchTable(RUN, /^nothing/), BenchDocsError);
});

Deno.test("bench docs: only the marked blocks are rewritten, with the run's machine line or its table", () => {
  const page = [
    "# B",
    "",
    "intro",
    "<!-- generated from run.json: env -->",
    "stale",
    "<!-- end of generated table -->",
    "middle",
    "<!-- generated from run.json: /^iotlb_/ -->",
    "<!-- end of generated table -->",
    "end",
    "",
  ].join("\n");
  const asked: string[] = [];
  const fresh = rewriteGenerated(page, (source) => (asked.push(source), RUN));
  assert.deepEqual(asked, ["run.json", "run.json"]);
  assert.deepEqual(fresh.split("\n"), [
    "# B",
    "",
    "intro",
    "<!-- generated from run.json: env -->",
    "",
    "Run: Deno 2.9.6, linux/x86_64, 2 CPUs, 4096-byte pages, median of 9 interleaved reps of ~30 ms; 12 s in all.",
    "",
    "<!-- end of generated table -->",
    "middle",
    "<!-- generated from run.json: /^iotlb_/ -->",
    "",
    "| case           |    gmem | same-run baselines (gmem / baseline) | vm-memory 0.18, published |",
    "| -------------- | ------: | ------------------------------------ | ------------------------- |",
    "| `iotlb_lookup` | 12.1 ns | —                                    | —                         |",
    "",
    "<!-- end of generated table -->",
    "end",
    "",
  ]);
  assert.equal(rewriteGenerated(fresh, () => RUN), fresh);
  const unclosed = "<!-- generated from run.json: env -->\n<!-- generated from run.json: env -->\n";
  assert.throws(() => rewriteGenerated(unclosed, () => RUN), BenchDocsError);
});

Deno.test("bench docs: a saved run without baselines is refused, naming the case", () => {
  const bad = JSON.stringify({ env: {}, seconds: 1, results: [{ case: "x", ours: { name: "a", nsPerOp: 1 } }] });
  assert.throws(() => parseBenchReport(bad, "run.json"), {
    name: "BenchDocsError",
    message: 'run.json: result "x" lacks ours or its baselines',
  });
});

Deno.test("bench docs: docs/benchmarks.md is exactly what its saved runs give", () => {
  const page = readFileSync(new URL("docs/benchmarks.md", ROOT), "utf8");
  assert.equal(rewriteGenerated(page, (source) => loadRun(ROOT, source)), page);
  assert.ok(page.includes("<!-- generated from bench/docs_run.json: env -->"));
  assert.ok(page.includes("<!-- generated from bench/peer_run.json: /./ -->"));
});

Deno.test("bench docs: a peer run of several rounds says so in its machine line", () => {
  const env = { deno: "2.9.6", os: "linux", arch: "x86_64", cpus: 2, pageSize: 4096, reps: 9, targetMsPerRep: 30 };
  assert.equal(
    envLine({ ...env, rounds: 3 }, 171.2),
    "Run: Deno 2.9.6, linux/x86_64, 2 CPUs, 4096-byte pages, median of 9 interleaved reps of ~30 ms, " +
      "the median of 3 rounds per case; 171 s in all.",
  );
  assert.equal(
    envLine({ ...env, rounds: 1 }, 57),
    "Run: Deno 2.9.6, linux/x86_64, 2 CPUs, 4096-byte pages, median of 9 interleaved reps of ~30 ms; 57 s in all.",
  );
});
