import assert from "node:assert/strict";
import { referenceHighWords } from "../bench/lcg.ts";
import {
  formatNs,
  formatPeerMarkdown,
  formatPeerTable,
  medianRound,
  parsePeerReply,
  parsePeerReport,
  PeerFormatError,
  peerRatio,
} from "../bench/peer/report.ts";

// Four rows of a real `deno task bench:peer --json` report (a loaded 2-vCPU VM, hence the large figures).
const SAMPLE = Deno.readTextFileSync(new URL("./fixtures/peer_report_sample.json", import.meta.url));

function formatError(fn: () => unknown): PeerFormatError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof PeerFormatError, `expected PeerFormatError, got ${e}`);
    return e;
  }
  assert.fail("nothing was thrown");
}

Deno.test("peer replies: the vm-memory program's real lines parse into their kinds and values", () => {
  assert.deepEqual(parsePeerReply('{"lcg":65536,"sum":140794298544341}'), {
    kind: "lcg",
    steps: 65536,
    sum: 140794298544341,
  });
  assert.deepEqual(parsePeerReply('{"open":"read_obj_u64_hot","op":"mem.read_obj::<u64>(a)"}'), {
    kind: "open",
    case: "read_obj_u64_hot",
    op: "mem.read_obj::<u64>(a)",
  });
  assert.deepEqual(parsePeerReply('{"ns":163111801}'), { kind: "run", ns: 163111801 });
  assert.deepEqual(parsePeerReply('{"ns":848.8463439941406}'), { kind: "run", ns: 848.8463439941406 });
  assert.deepEqual(parsePeerReply('{"closed":"read_obj_u64_hot"}'), { kind: "closed", case: "read_obj_u64_hot" });
  assert.deepEqual(parsePeerReply('{"unknown":"nope"}'), { kind: "unknown", case: "nope" });
});

Deno.test("peer replies: the Rust LCG's sum over 65536 steps is the BigInt reference's", () => {
  const reply = parsePeerReply('{"lcg":65536,"sum":140794298544341}');
  assert.equal(reply.kind, "lcg");
  assert.equal(reply.sum, referenceHighWords(65536).reduce((a, b) => a + b, 0));
});

Deno.test("peer replies: an error reply, a non-JSON line, a zero time and an unknown object are refused", () => {
  assert.equal(
    formatError(() => parsePeerReply('{"error":"open: no case nope"}')).message,
    "vm-memory peer: open: no case nope",
  );
  assert.equal(
    formatError(() => parsePeerReply("Finished release")).message,
    'peer reply is not JSON: "Finished release"',
  );
  assert.equal(formatError(() => parsePeerReply('{"ns":0}')).message, "run reply: 0 ns");
  assert.equal(formatError(() => parsePeerReply('{"ns":"12"}')).message, 'run reply ns: "12" is not a finite number');
  assert.equal(formatError(() => parsePeerReply('{"x":1}')).message, 'unknown peer reply: "{\\"x\\":1}"');
  assert.equal(formatError(() => parsePeerReply("[1]")).message, 'peer reply is not an object: "[1]"');
});

Deno.test("peer report: the sample's rows, figures and ratios come back exactly", () => {
  const report = parsePeerReport(SAMPLE);
  assert.deepEqual(report.rows.map((r) => r.case), [
    "read_obj_u64_hot",
    "read_slice_4k_hot",
    "iotlb_lookup_8b_hot_swapped",
    "read_slice_64k_iommu_16frag",
  ]);
  assert.equal(report.env.vmMemory, "0.18.0");
  assert.deepEqual(report.skipped, []);
  assert.equal(report.env.reps, 9);
  const [u64, slice4k, lookup, frag] = report.rows;
  assert.equal(u64.gmem.name, "mem.readU64(a)");
  assert.equal(u64.vmMemory.name, "mem.read_obj::<u64>(a)");
  assert.equal(u64.gmem.nsPerOp, 12.59010581254509);
  assert.equal(u64.vmMemory.nsPerOp, 11.830699814909508);
  assert.equal(u64.ratio, 12.59010581254509 / 11.830699814909508);
  assert.equal(u64.gmem.samples.length, 9);
  assert.equal(u64.bytesPerOp, undefined);
  assert.deepEqual(u64.baselines.map((b) => [b.name, b.nsPerOp, b.ratio]), [
    ["DataView.getBigUint64", 5.536935551555853, 12.59010581254509 / 5.536935551555853],
    ["C load loop", 2.6166328922070927, 12.59010581254509 / 2.6166328922070927],
  ]);
  assert.equal(slice4k.bytesPerOp, 4096);
  assert.equal(slice4k.ratio, 107.10707805259916 / 70.90790775034563);
  assert.equal(lookup.ratio, 18.240699301403392 / 266.0616137050004);
  assert.equal(frag.bytesPerOp, 65536);
  assert.equal(frag.vmMemory.gbPerSec, 65536 / 3169.271266073195);
});

Deno.test("peer report: the ratio is computed from the figures, not taken from the file", () => {
  const edited = JSON.parse(SAMPLE);
  edited.rows[0].ratio = 99;
  edited.rows[0].baselines[0].ratio = 99;
  const row = parsePeerReport(JSON.stringify(edited)).rows[0];
  assert.equal(row.ratio, 12.59010581254509 / 11.830699814909508);
  assert.equal(row.baselines[0].ratio, 12.59010581254509 / 5.536935551555853);
});

Deno.test("peer report: a row without its vm-memory figure, or with a non-numeric sample, is refused by name", () => {
  const missing = JSON.parse(SAMPLE);
  delete missing.rows[1].vmMemory;
  assert.equal(
    formatError(() => parsePeerReport(JSON.stringify(missing))).message,
    "read_slice_4k_hot.vmMemory is not an object",
  );
  const badSample = JSON.parse(SAMPLE);
  badSample.rows[2].gmem.samples[3] = null;
  assert.equal(
    formatError(() => parsePeerReport(JSON.stringify(badSample))).message,
    "iotlb_lookup_8b_hot_swapped.gmem.samples[3]: null is not a finite number",
  );
  assert.equal(
    formatError(() => parsePeerReport("{}")).message,
    "peer report: expected an object with env, seconds and rows",
  );
});

Deno.test("peer report: the cases skipped for want of a vm-memory counterpart are kept by name", () => {
  const withSkipped = JSON.parse(SAMPLE);
  withSkipped.skipped = ["read_slice_64b_hot"];
  assert.deepEqual(parsePeerReport(JSON.stringify(withSkipped)).skipped, ["read_slice_64b_hot"]);
  withSkipped.skipped = [7];
  assert.equal(
    formatError(() => parsePeerReport(JSON.stringify(withSkipped))).message,
    "skipped[0]: 7 is not a string",
  );
});

Deno.test("peerRatio: gmem over vm-memory, and no ratio of a zero or negative time", () => {
  assert.equal(peerRatio(5, 8), 0.625);
  assert.equal(peerRatio(107.10707805259916, 70.90790775034563), 107.10707805259916 / 70.90790775034563);
  assert.equal(formatError(() => peerRatio(5, 0)).message, "peerRatio: 5 / 0 ns is not a ratio of two times");
  assert.equal(formatError(() => peerRatio(-1, 8)).message, "peerRatio: -1 / 8 ns is not a ratio of two times");
});

Deno.test("formatNs: three significant digits in ns, µs from 10 µs", () => {
  assert.deepEqual([6.159, 12.59010581254509, 604.2, 6835.725567007759, 22100, 72312.4].map(formatNs), [
    "6.16 ns",
    "12.6 ns",
    "604 ns",
    "6836 ns",
    "22.1 µs",
    "72.3 µs",
  ]);
});

Deno.test("peer table: one aligned line per case with gmem, vm-memory, the ratio and the baselines", () => {
  const lines = formatPeerTable(parsePeerReport(SAMPLE));
  assert.equal(lines.length, 6);
  assert.equal(
    lines[0],
    "case                        |    gmem | vm-memory 0.18 | gmem/vm | same-run baselines (gmem/baseline)",
  );
  assert.equal(
    lines[2],
    "read_obj_u64_hot            | 12.6 ns |        11.8 ns |   1.06x | DataView.getBigUint64 5.54 ns (2.27x); C load loop 2.62 ns (4.81x)",
  );
  assert.equal(
    lines[4],
    "iotlb_lookup_8b_hot_swapped | 18.2 ns |         266 ns |   0.07x | C binary search (131072 entries) 74.9 ns (0.24x)",
  );
  assert.equal(
    lines[5],
    "read_slice_64k_iommu_16frag | 6836 ns |        3169 ns |   2.16x | 16 x Uint8Array.set 5355 ns (1.28x)",
  );
});

Deno.test("peer table: the Markdown form has the same cells", () => {
  const md = formatPeerMarkdown(parsePeerReport(SAMPLE));
  assert.equal(md.length, 6);
  assert.equal(md[0], "| case | gmem | vm-memory 0.18 | gmem / vm-memory | same-run baselines (gmem / baseline) |");
  assert.equal(
    md[3],
    "| `read_slice_4k_hot` | 107 ns | 70.9 ns | 1.51x | buf.set(u8.subarray) 99.8 ns (1.07x); C memcpy loop 49.8 ns (2.15x) |",
  );
});

/** The sample's first row with its gmem time scaled, as a round of a several-round run would give it. */
function round(gmemNs: number) {
  const row = parsePeerReport(SAMPLE).rows[0];
  return { ...row, gmem: { ...row.gmem, nsPerOp: gmemNs }, ratio: gmemNs / row.vmMemory.nsPerOp };
}

Deno.test("rounds: the median round is kept whole, with every round's ratio in run order", () => {
  const vm = 11.830699814909508;
  const picked = medianRound([round(14), round(10), round(12), round(30), round(11)]);
  assert.equal(picked.gmem.nsPerOp, 12);
  assert.equal(picked.ratio, 12 / vm);
  assert.equal(picked.vmMemory.nsPerOp, vm);
  assert.deepEqual(picked.roundRatios, [14 / vm, 10 / vm, 12 / vm, 30 / vm, 11 / vm]);
  // An even count keeps the lower middle round, a real one rather than an average of two.
  assert.equal(medianRound([round(14), round(10), round(12), round(30)]).gmem.nsPerOp, 12);
  assert.equal(medianRound([round(9)]).gmem.nsPerOp, 9);
});

Deno.test("rounds: no rounds, or rounds of two cases, are refused", () => {
  assert.equal(formatError(() => medianRound([])).message, "medianRound: no rounds");
  const other = { ...round(10), case: "write_obj_u8_hot" };
  assert.equal(formatError(() => medianRound([round(10), other])).message, "medianRound: rounds of different cases");
});

Deno.test("rounds: a report keeps the round ratios, the tables show their spread, a bad one is refused", () => {
  const edited = JSON.parse(SAMPLE);
  edited.rows[0].roundRatios = [1.5, 1.06, 0.9];
  const report = parsePeerReport(JSON.stringify(edited));
  assert.deepEqual(report.rows[0].roundRatios, [1.5, 1.06, 0.9]);
  assert.equal(report.rows[1].roundRatios, undefined);
  assert.equal(
    formatPeerTable(report)[2],
    "read_obj_u64_hot            | 12.6 ns |        11.8 ns | 1.06x (0.90–1.50) | DataView.getBigUint64 5.54 ns (2.27x); C load loop 2.62 ns (4.81x)",
  );
  assert.equal(
    formatPeerMarkdown(report)[2],
    "| `read_obj_u64_hot` | 12.6 ns | 11.8 ns | 1.06x (0.90–1.50) | DataView.getBigUint64 5.54 ns (2.27x); C load loop 2.62 ns (4.81x) |",
  );
  edited.rows[0].roundRatios = [1, "x"];
  assert.equal(
    formatError(() => parsePeerReport(JSON.stringify(edited))).message,
    'read_obj_u64_hot.roundRatios[1]: "x" is not a finite number',
  );
});
