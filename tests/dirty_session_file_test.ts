/**
 * The session file of `gmem dirty` (src/tools/cli/dirty_session_file.ts) against damaged and hostile
 * contents: every kind of damage is refused with one line naming the first thing wrong (an
 * InvalidArgumentError, exit 2 in the tool), never a TypeError or RangeError, and a file that is
 * accepted holds exactly what its header says. The fuzz part mutates a valid file with fast-check
 * (truncations, appended and changed bytes, header fields of every JSON type, huge and malformed
 * numbers in the layout) and checks the in-memory parser and the file reader agree on every input.
 *
 * The seed is fixed (override with GMEM_SESSION_FUZZ_SEED, the runs with GMEM_SESSION_FUZZ_RUNS);
 * a failure prints it with the shrunk counterexample.
 * @module
 */

import fc from "fast-check";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../mod.ts";
import {
  encodeSession,
  parseSession,
  readSessionFile,
  type SessionContents,
  type SessionHeader,
} from "../src/tools/cli/dirty_session_file.ts";

const SEED = Number(Deno.env.get("GMEM_SESSION_FUZZ_SEED") ?? 0x5e55);
const RUNS = Number(Deno.env.get("GMEM_SESSION_FUZZ_RUNS") ?? 3000);
const PATH = "/tmp/s.gmem-dirty";
const OP = "gmem dirty";
const PREFIX = `${OP}: --session ${PATH} is not a gmem dirty session (`;

const HEADER: SessionHeader = {
  format: "gmem-dirty-session",
  version: 1,
  pageSize: 4096,
  // 1 page, then 2 pages (the second one short): 1 + 8 and 1 + 16 bytes after the header.
  layout: "0x0:0x1000@0x0,0x2000:0x1800@0x1000",
  source: "/dev/shm/ram",
  started: "2025-01-02T03:04:05.678Z",
  since: "2025-01-02T03:04:06.000Z",
};

function contents(header: Partial<Record<keyof SessionHeader, unknown>> = {}): SessionContents {
  return {
    header: { ...HEADER, ...header } as SessionHeader,
    bits: [Uint8Array.of(0x01), Uint8Array.of(0x02)],
    prints: [Uint32Array.of(1, 2), Uint32Array.of(3, 4, 5, 6)],
  };
}

const enc = (s: string) => new TextEncoder().encode(s);

/** A file whose header line is `headerText` and whose body is the valid body for HEADER. */
function withHeaderText(headerText: string, body = encodeSession(contents()).subarray(headerLength())): Uint8Array {
  const head = enc(`${headerText}\n`);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

function headerLength(): number {
  return enc(`${JSON.stringify(HEADER)}\n`).length;
}

/** The one-line reason parseSession gives for `bytes`, or "accepted". */
function reason(bytes: Uint8Array): string {
  try {
    parseSession(bytes, PATH, OP);
    return "accepted";
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    assert.equal(e.op, OP);
    assert.equal(e.argument, "--session");
    assert.ok(e.message.startsWith(PREFIX) && e.message.endsWith(")"), e.message);
    assert.doesNotMatch(e.message, /\n/);
    return e.message.slice(PREFIX.length, -1);
  }
}

Deno.test("dirty session file: a valid file is read back with the header, page bits and fingerprints it was written with", () => {
  const bytes = encodeSession(contents());
  assert.equal(bytes.length, headerLength() + 1 + 8 + 1 + 16);
  const s = parseSession(bytes, PATH, OP);
  assert.deepEqual(s.header, HEADER);
  assert.deepEqual(s.bits.map((b) => [...b]), [[0x01], [0x02]]);
  assert.deepEqual(s.prints.map((p) => [...p]), [[1, 2], [3, 4, 5, 6]]);
  assert.deepEqual(encodeSession(s), bytes);
});

Deno.test("dirty session file: every kind of damage is refused with one line naming the first thing wrong", () => {
  const valid = encodeSession(contents());
  const header = (h: Partial<Record<keyof SessionHeader, unknown>>) => encodeSession(contents(h));
  const extra = (key: string, value: unknown) => withHeaderText(JSON.stringify({ ...HEADER, [key]: value }));
  const without = (key: keyof SessionHeader) => {
    const h: Record<string, unknown> = { ...HEADER };
    delete h[key];
    return withHeaderText(JSON.stringify(h));
  };
  // 2^53 - 1 bytes in pages of 64: 2^47 pages, so 2^44 bytes of bits and 2^50 of fingerprints.
  const huge = header({ layout: "0x0:0x1fffffffffffff@0x0", pageSize: 64 });
  const lastBitsByte = headerLength() + 1 + 8;
  const strayBit = valid.slice();
  strayBit[lastBitsByte] = 0x04; // page 2 of a 2-page range
  const cases: Array<[string, Uint8Array, string]> = [
    ["empty", new Uint8Array(0), "no header line"],
    ["no newline", enc('{"format":"gmem-dirty-session"'), "no header line"],
    ["not UTF-8", withHeaderText("\xff"), "the header is not JSON"],
    ["bad UTF-8 bytes", Uint8Array.of(0xc3, 0x28, 0x0a), "the header is not UTF-8"],
    ["not JSON", withHeaderText("{format: 1}"), "the header is not JSON"],
    ["null", withHeaderText("null"), "the header is null, not a JSON object"],
    ["array", withHeaderText("[1,2]"), "the header is [1,2], not a JSON object"],
    ["number", withHeaderText("12"), "the header is 12, not a JSON object"],
    ["unknown field", extra("pages", 3), 'the header has an unknown field "pages"'],
    [
      "__proto__",
      withHeaderText(`{"__proto__":{},${JSON.stringify(HEADER).slice(1)}`),
      'the header has an unknown field "__proto__"',
    ],
    ["no layout", without("layout"), "the header has no layout"],
    ["no since", without("since"), "the header has no since"],
    ["format", header({ format: "gmem-dirty" }), 'the header\'s format is "gmem-dirty", not "gmem-dirty-session"'],
    ["version 2", header({ version: 2 }), "the header's version is 2, not 1"],
    ["version string", header({ version: "1" }), 'the header\'s version is "1", not 1'],
    ["pageSize 3", header({ pageSize: 3 }), "the header's pageSize is 3, not a power of two from 64 to 2^30"],
    ["pageSize 32", header({ pageSize: 32 }), "the header's pageSize is 32, not a power of two from 64 to 2^30"],
    [
      "pageSize 2^31",
      header({ pageSize: 2 ** 31 }),
      "the header's pageSize is 2147483648, not a power of two from 64 to 2^30",
    ],
    [
      "pageSize fraction",
      header({ pageSize: 4096.5 }),
      "the header's pageSize is 4096.5, not a power of two from 64 to 2^30",
    ],
    [
      "pageSize huge",
      withHeaderText(JSON.stringify(HEADER).replace('"pageSize":4096', '"pageSize":1e400')),
      "the header's pageSize is null, not a power of two from 64 to 2^30",
    ],
    [
      "pageSize string",
      header({ pageSize: "4096" }),
      'the header\'s pageSize is "4096", not a power of two from 64 to 2^30',
    ],
    [
      "pageSize negative",
      header({ pageSize: -4096 }),
      "the header's pageSize is -4096, not a power of two from 64 to 2^30",
    ],
    ["layout number", header({ layout: 4096 }), "the header's layout is 4096, not a string"],
    ["layout null", header({ layout: null }), "the header's layout is null, not a string"],
    [
      "layout empty",
      header({ layout: "" }),
      'the header\'s layout "" is not a layout: must be GPA:SIZE[@FILE_OFFSET] ranges separated by commas',
    ],
    [
      "layout no size",
      header({ layout: "0x0" }),
      'the header\'s layout "0x0" is not a layout: range "0x0" must be GPA:SIZE[@FILE_OFFSET]',
    ],
    [
      "layout bad hex",
      header({ layout: "0x0:0xZZ@0x0" }),
      'the header\'s layout "0x0:0xZZ@0x0" is not a layout: SIZE must be a number (hex 0x…, or decimal; k/M/G/T suffix), got "0xZZ"',
    ],
    [
      "layout size 2^53",
      header({ layout: "0x0:0x20000000000000@0x0" }),
      'the header\'s layout "0x0:0x20000000000000@0x0" is not a layout: SIZE must be below 2^53, got "0x20000000000000"',
    ],
    [
      "layout GPA 2^64",
      header({ layout: "0x10000000000000000:0x1000@0x0" }),
      'the header\'s layout "0x10000000000000000:0x1000@0x0" is not a layout: GPA must be below 2^64, got "0x10000000000000000"',
    ],
    [
      "layout past 2^64",
      header({ layout: "0xfffffffffffff000:0x2000@0x0" }),
      'the header\'s layout has a range past 2^64 at GPA "fffffffffffff000"',
    ],
    [
      "layout overlap",
      header({ layout: "0x0:0x2000@0x0,0x1000:0x1000@0x2000" }),
      'the header\'s layout "0x0:0x2000@0x0,0x1000:0x1000@0x2000" is not a layout: ranges [0x0, 0x2000) and [0x1000, 0x2000) overlap',
    ],
    [
      "layout decimal",
      header({ layout: "0:4096@0,8192:6144@4096" }),
      'the header\'s layout "0:4096@0,8192:6144@4096" is not in the form gmem writes (GPA:SIZE@OFFSET in hex, in order)',
    ],
    [
      "layout out of order",
      header({ layout: "0x2000:0x1800@0x1000,0x0:0x1000@0x0" }),
      'the header\'s layout "0x2000:0x1800@0x1000,0x0:0x1000@0x0" is not in the form gmem writes (GPA:SIZE@OFFSET in hex, in order)',
    ],
    ["source number", header({ source: 7 }), "the header's source is 7, not a string of at most 8192 characters"],
    [
      "source huge",
      header({ source: "x".repeat(8193) }),
      `the header's source is "${"x".repeat(36)}..., not a string of at most 8192 characters`,
    ],
    ["started words", header({ started: "yesterday" }), 'the header\'s started is "yesterday", not an ISO time'],
    ["since number", header({ since: 1735787045678 }), "the header's since is 1735787045678, not an ISO time"],
    ["since not canonical", header({ since: "2025-01-02" }), 'the header\'s since is "2025-01-02", not an ISO time'],
    [
      "truncated",
      valid.subarray(0, valid.length - 1),
      `it has ${valid.length - 1} bytes, but its header's layout and page size make ${valid.length}`,
    ],
    [
      "header only",
      valid.subarray(0, headerLength()),
      `it has ${headerLength()} bytes, but its header's layout and page size make ${valid.length}`,
    ],
    [
      "trailing byte",
      Uint8Array.from([...valid, 0]),
      `it has ${valid.length + 1} bytes, but its header's layout and page size make ${valid.length}`,
    ],
    ["bits past the last page", strayBit, "the range at GPA 0x2000 has bits set past its last page"],
    [
      "a huge layout on a small file",
      huge,
      `it has ${huge.length} bytes, but its header's layout and page size make ${
        BigInt(huge.indexOf(10) + 1) + 2n ** 47n / 8n + 2n ** 47n * 8n
      }`,
    ],
  ];
  for (const [name, bytes, why] of cases) assert.equal(reason(bytes), why, name);
  assert.equal(reason(valid), "accepted");
});

// ---- fuzz ----

/** Numbers as a hostile layout would spell them: hex, decimal, suffixed, huge, malformed. */
const numberText = fc.oneof(
  fc.bigInt({ min: 0n, max: 2n ** 70n }).map((v) => `0x${v.toString(16)}`),
  fc.bigInt({ min: 0n, max: 2n ** 66n }).map((v) => v.toString()),
  fc.constantFrom("0x", "0xZZ", "-1", "1e3", "0x1_000", "", "4k", "1T", "0x1000 ", "NaN", "0x-1", "0b101"),
  fc.constantFrom("0x0", "0x1000", "0x2000", "0x1800", "0x40", "0xfffffffffffff000"),
  fc.string({ maxLength: 6 }),
);

const layoutText = fc.oneof(
  fc.array(fc.tuple(numberText, numberText, fc.option(numberText)), { minLength: 1, maxLength: 4 }).map((rs) =>
    rs.map(([g, s, o]) => (o === null ? `${g}:${s}` : `${g}:${s}@${o}`)).join(",")
  ),
  fc.constantFrom(HEADER.layout, "0x0:0x1000@0x0", "0x0:0x40@0x0,0x40:0x40@0x40"),
  fc.string({ maxLength: 30 }),
);

const fieldValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(64, 4096, 2 ** 30, 2 ** 31, 2 ** 53, -0, 1e308, Number.MAX_SAFE_INTEGER),
  layoutText,
);

type Mutation =
  | { kind: "truncate"; at: number }
  | { kind: "append"; bytes: number[] }
  | { kind: "set"; at: number; byte: number }
  | { kind: "field"; key: string; value: unknown }
  | { kind: "drop"; key: keyof SessionHeader }
  | { kind: "layout"; layout: string; pageSize: number; fitBody: boolean };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.nat({ max: 200 }).map((at): Mutation => ({ kind: "truncate", at })),
  fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 16 }).map((bytes): Mutation => ({
    kind: "append",
    bytes,
  })),
  fc.tuple(fc.nat({ max: 260 }), fc.integer({ min: 0, max: 255 })).map(([at, byte]): Mutation => ({
    kind: "set",
    at,
    byte,
  })),
  fc.tuple(
    fc.constantFrom("format", "version", "pageSize", "layout", "source", "started", "since", "extra", "__proto__"),
    fieldValue,
  ).map(([key, value]): Mutation => ({ kind: "field", key, value })),
  fc.constantFrom<keyof SessionHeader>("format", "version", "pageSize", "layout", "source", "started", "since").map(
    (key): Mutation => ({ kind: "drop", key }),
  ),
  fc.tuple(layoutText, fc.constantFrom(32, 64, 4096, 2 ** 20, 2 ** 30, 3), fc.boolean()).map((
    [layout, pageSize, fitBody],
  ): Mutation => ({ kind: "layout", layout, pageSize, fitBody })),
);

/** The body a valid file with this layout and page size would have (empty bits and prints). */
function bodyFor(layout: string, pageSize: number): Uint8Array | undefined {
  let total = 0;
  for (const part of layout.split(",")) {
    const m = /^0x([0-9a-f]+):0x([0-9a-f]+)@0x[0-9a-f]+$/.exec(part);
    if (m === null) return undefined;
    const pages = Math.ceil(Number(BigInt(`0x${m[2]}`)) / pageSize);
    total += Math.ceil(pages / 8) + pages * 8;
    if (total > 1 << 20) return undefined;
  }
  return new Uint8Array(total);
}

function apply(bytes: Uint8Array, m: Mutation): Uint8Array {
  switch (m.kind) {
    case "truncate":
      return bytes.subarray(0, Math.min(m.at, bytes.length));
    case "append":
      return Uint8Array.from([...bytes, ...m.bytes]);
    case "set": {
      const out = bytes.slice();
      if (out.length > 0) out[m.at % out.length] = m.byte;
      return out;
    }
    case "field": {
      const h: Record<string, unknown> = JSON.parse(new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(10))));
      if (m.key === "__proto__") Object.defineProperty(h, "__proto__", { value: m.value, enumerable: true });
      else h[m.key] = m.value;
      return withHeaderText(JSON.stringify(h), bytes.subarray(bytes.indexOf(10) + 1));
    }
    case "drop": {
      const h: Record<string, unknown> = JSON.parse(new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(10))));
      delete h[m.key];
      return withHeaderText(JSON.stringify(h), bytes.subarray(bytes.indexOf(10) + 1));
    }
    case "layout": {
      const body = m.fitBody ? bodyFor(m.layout, m.pageSize) : undefined;
      return withHeaderText(JSON.stringify({ ...HEADER, layout: m.layout, pageSize: m.pageSize }), body);
    }
  }
}

/**
 * What a hostile file may lead to: a session whose parts add up to exactly the file's length and
 * whose header has only valid values, or a one-line refusal; anything thrown but an
 * InvalidArgumentError fails the property.
 */
function checkOutcome(bytes: Uint8Array): string {
  const why = reason(bytes);
  if (why !== "accepted") return why;
  const s = parseSession(bytes, PATH, OP);
  const h = s.header;
  assert.equal(h.format, "gmem-dirty-session");
  assert.equal(h.version, 1);
  assert.ok(Number.isInteger(h.pageSize) && h.pageSize >= 64 && h.pageSize <= 2 ** 30, String(h.pageSize));
  assert.equal(h.pageSize & (h.pageSize - 1), 0);
  for (const v of [h.layout, h.source, h.started, h.since]) assert.equal(typeof v, "string");
  const headerBytes = bytes.indexOf(10) + 1;
  const body = s.bits.reduce((n, b, i) => n + b.length + s.prints[i].byteLength, 0);
  assert.equal(headerBytes + body, bytes.length);
  // What is accepted is written back the same way and read again unchanged.
  const again = parseSession(encodeSession(s), PATH, OP);
  assert.deepEqual(again, s);
  return why;
}

Deno.test("dirty session fuzz: mutated session files are read exactly or refused in one line, never a TypeError", () => {
  const valid = encodeSession(contents());
  const seen = new Set<string>();
  try {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
        let bytes = valid;
        for (const m of ms) {
          // Header edits need a header to edit; after a truncation there may be none.
          if ((m.kind === "field" || m.kind === "drop") && reason(bytes) === "the header is not JSON") continue;
          if ((m.kind === "field" || m.kind === "drop") && bytes.indexOf(10) < 0) continue;
          try {
            bytes = apply(bytes, m);
          } catch (e) {
            if (!(e instanceof SyntaxError)) throw e; // header edits on a header that is no longer JSON
          }
        }
        const why = checkOutcome(bytes);
        seen.add(why === "accepted" ? why : why.replace(/[0-9"].*$/, ""));
      }),
      { seed: SEED, numRuns: RUNS },
    );
  } catch (e) {
    console.error(`dirty session fuzz failed with seed ${SEED} (rerun with GMEM_SESSION_FUZZ_SEED=${SEED})`);
    throw e;
  }
  // Guards the fuzz against testing only the easy cases: each check was reached.
  for (
    const start of [
      "accepted",
      "no header line",
      "the header is not JSON",
      "the header has an unknown field ",
      "the header has no ",
      "the header's pageSize is ",
      "the header's layout ",
      "the header's started is ",
      "it has ",
    ]
  ) {
    assert.ok([...seen].some((s) => s.startsWith(start)), `no input reached "${start}": ${[...seen].join(" | ")}`);
  }
});

Deno.test("dirty session fuzz: the file reader (header first, then exactly the size it implies) agrees with the parser", () => {
  const dir = Deno.makeTempDirSync({ prefix: "gmem-session-" });
  const valid = encodeSession(contents());
  try {
    const path = `${dir}/s`;
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 2 }), (ms) => {
        let bytes = valid;
        for (const m of ms) {
          if ((m.kind === "field" || m.kind === "drop") && bytes.indexOf(10) < 0) continue;
          try {
            bytes = apply(bytes, m);
          } catch (e) {
            if (!(e instanceof SyntaxError)) throw e;
          }
        }
        Deno.writeFileSync(path, bytes);
        let fromFile: string;
        try {
          const s = readSessionFile(path, OP);
          fromFile = "accepted";
          assert.deepEqual(s, parseSession(bytes, path, OP));
        } catch (e) {
          if (!(e instanceof InvalidArgumentError)) throw e;
          fromFile = e.message;
        }
        let parsed: string;
        try {
          parseSession(bytes, path, OP);
          parsed = "accepted";
        } catch (e) {
          if (!(e instanceof InvalidArgumentError)) throw e;
          parsed = e.message;
        }
        assert.equal(fromFile, parsed);
      }),
      { seed: SEED + 1, numRuns: Math.ceil(RUNS / 10) },
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
