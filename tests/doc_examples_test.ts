// The documentation example runner (deno task test:docs): how it reads a `// value` comment, how it
// rewrites an example into a module, and, end to end on a small tree, that a wrong comment, an
// example that throws and a console.log without a comment each fail the run with their line.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { matchesComment } from "./doc_examples/compare.ts";
import { extractExamples } from "./doc_examples/extract.ts";
import { instrument } from "./doc_examples/instrument.ts";

Deno.test("doc examples: a comment matches the printed values in the spellings people write, and nothing else", () => {
  assert.equal(matchesComment(["cafe"], '"cafe"'), true);
  assert.equal(matchesComment(["cafe"], "cafe"), true);
  assert.equal(matchesComment(["cafe"], '"caff"'), false);
  assert.equal(matchesComment([3, true, [[8192, 1808]]], "3 true [[8192, 1808]]"), true);
  assert.equal(matchesComment([3, true, [[8192, 1808]]], "3 true [[8192, 1809]]"), false);
  assert.equal(matchesComment([4096n], "4096n"), true);
  assert.equal(matchesComment([4096n], "4096"), false);
  assert.equal(matchesComment([{ base: 69632n, length: 16 }], "{ base: 69632n, length: 16 }"), true);
  assert.equal(matchesComment([new Uint8Array([1, 2])], "Uint8Array(2) [1, 2]"), true);
  assert.equal(matchesComment([new Uint8Array([1, 2])], "Uint8Array(2) [1, 3]"), false);
  // Prose after the value, and … for what differs between runs (a host address, an fd).
  assert.equal(matchesComment([7], "7: the same pages"), true);
  assert.equal(matchesComment([8], "7: the same pages"), false);
  assert.equal(matchesComment([-1], "-1 (runs past the entry)"), true);
  assert.equal(matchesComment(["memfd fd 23"], '"memfd fd …"'), true);
  assert.equal(matchesComment(["memory fd 23"], '"memfd fd …"'), false);
});

Deno.test("doc examples: fences are found in markdown and in JSDoc, with their first code line and ignore flag", () => {
  const md = extractExamples("a.md", "# t\n\n```ts\nconst a = 1;\n```\n\n```sh\nls\n```\n\n```ts ignore\nx;\n```\n");
  assert.deepEqual(md, [
    { file: "a.md", line: 4, code: "const a = 1;", ignore: false },
    { file: "a.md", line: 12, code: "x;", ignore: true },
  ]);
  const ts = extractExamples("b.ts", "/**\n * @example\n * ```ts\n * f(); // 1\n * ```\n */\nconst s = '```ts';\n");
  assert.deepEqual(ts, [{ file: "b.ts", line: 4, code: "f(); // 1", ignore: false }]);
});

Deno.test("doc examples: imports point at the checkout and each console.log site carries its comment", () => {
  const r = instrument(
    [
      'import { a } from "./a.ts";',
      'import { b } from "@gmem/gmem/iommu";',
      "console.log(a, f(1)); // 1 2",
      'try { a(); } catch (e) { console.log((e as Error).name); } // "TypeError"',
      "console.log(table);",
      "// row 1",
      "// row 2",
      "",
      "// console.log(commented);",
      "console.log(bare);",
    ].join("\n"),
    "file:///d/src/x.ts",
    { "@gmem/gmem/iommu": "file:///d/iommu.ts" },
  );
  assert.deepEqual(r.code.split("\n").slice(1, 6), [
    'import { a } from "file:///d/src/a.ts";',
    'import { b } from "file:///d/iommu.ts";',
    "__docLog(0, a, f(1)); // 1 2",
    'try { a(); } catch (e) { __docLog(1, (e as Error).name); } // "TypeError"',
    "__docLog(2, table);",
  ]);
  assert.deepEqual(r.sites, [
    { line: 2, comment: "1 2" },
    { line: 3, comment: '"TypeError"' },
    { line: 4, comment: "row 1\nrow 2" },
    { line: 9, comment: undefined },
  ]);
});

Deno.test("doc examples: a bare call with a value comment is checked too; prose and continuation lines are not", () => {
  const r = instrument(
    [
      "isPowerOfTwo(4096); // true",
      "table.remove(10, 20); // [0, 10) and [20, 100) remain",
      "const x = f(",
      "  g(1)); // 3",
      "mem.write(buf, 0); // runs into the hole",
      "// h(2); // 2",
    ].join("\n"),
    "file:///d/x.ts",
    {},
  );
  assert.deepEqual(r.code.split("\n").slice(1), [
    "__docLog(0, isPowerOfTwo(4096)); // true",
    "table.remove(10, 20); // [0, 10) and [20, 100) remain",
    "const x = f(",
    "  g(1)); // 3",
    "mem.write(buf, 0); // runs into the hole",
    "// h(2); // 2",
  ]);
  assert.deepEqual(r.sites, [{ line: 0, comment: "true" }]);
});

Deno.test({
  name: "doc examples: the runner fails a wrong comment, a throwing example and an unclaimed console.log, by line",
  // The runner is a Deno program (Deno.inspect, dynamic import of written modules); Bun runs the unit tests above.
  ignore: "Bun" in globalThis,
  fn: async () => {
    const root = mkdtempSync(`${tmpdir()}/gmem-doc-examples-test-`);
    try {
      mkdirSync(`${root}/docs`);
      writeFileSync(`${root}/package.json`, JSON.stringify({ name: "@x/y", exports: { ".": { default: "./m.ts" } } }));
      writeFileSync(`${root}/m.ts`, "export const two = 2;\n");
      writeFileSync(
        `${root}/README.md`,
        [
          "```ts",
          'import { two } from "@x/y";',
          "console.log(two + 1); // 3",
          "```",
          "",
          "```ts",
          'import { two } from "./m.ts";',
          "console.log(two * 2); // 5",
          "```",
        ].join("\n"),
      );
      writeFileSync(
        `${root}/docs/guide.md`,
        "```ts\nthrow new RangeError('no');\n```\n\n```ts\nconsole.log(1);\n```\n",
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          new URL("./doc_examples/main.ts", import.meta.url).href,
          "--root",
          root,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 1, text + new TextDecoder().decode(out.stderr));
      const failures = text.split("\n").filter((l) => /^(FAILED| {2}line| {2}threw)/.test(l));
      assert.deepEqual(failures, [
        "FAILED README.md:7",
        "  line 2: printed [ 4 ] but the comment says 5",
        "FAILED docs/guide.md:2",
        "  threw RangeError: no",
        "FAILED docs/guide.md:6",
        '  line 1: console.log without a "// value" comment saying what it prints',
      ]);
      assert.equal(text.trimEnd().split("\n").at(-1), "1 passed, 3 failed, 0 skipped (documentation examples)");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  },
});
