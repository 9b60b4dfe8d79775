// The import lint (deno task lint:imports) on small trees built for the purpose: it names each
// cycle and each import up the layers, tells value cycles from type-only ones, ignores imports in
// comments and JSDoc examples, and keeps the tools on the public entry points; and on the real
// tree, which has none of these.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { lintImports } from "../.ci/lint_imports.ts";

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(`${tmpdir()}/gmem-lint-`) + "/";
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(root + path.slice(0, path.lastIndexOf("/") + 1), { recursive: true });
    writeFileSync(root + path, text);
  }
  return root;
}

Deno.test("import lint: a clean tree, with imports only in comments going up, has no problem", () => {
  const root = tree({
    "mod.ts": 'export { a } from "./src/mmap/a.ts";\n',
    "src/core/errors.ts":
      '/*\nimport { a } from "../mmap/a.ts";\n*/\n// import { b } from "../iommu/b.ts";\nexport const e = 1;\n',
    "src/mmap/a.ts": 'import { e } from "../core/errors.ts";\nexport const a = e;\n',
  });
  try {
    assert.deepEqual(lintImports(root), []);
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("import lint: names an import up the layers, a value cycle and a type-only cycle", () => {
  const root = tree({
    "src/core/errors.ts": 'import { a } from "../mmap/a.ts";\nexport const e = a;\n',
    "src/mmap/a.ts": 'import {\n  b,\n} from "./b.ts";\nexport const a = b;\n',
    "src/mmap/b.ts": 'export const b = 1;\nexport async function later() {\n  return await import("./a.ts");\n}\n',
    "src/iommu/c.ts": 'import type { D } from "./d.ts";\nexport type C = D | 1;\n',
    "src/iommu/d.ts": 'import type { C } from "./c.ts";\nexport type D = C | 2;\n',
    "src/iommu/e.ts": 'import { type F } from "./f.ts";\nexport type E = F | 1;\n',
    "src/iommu/f.ts": 'export { type E } from "./e.ts";\nexport type F = 2;\n',
  });
  try {
    assert.deepEqual(lintImports(root), [
      "src/core/errors.ts (layer 0) imports src/mmap/a.ts (layer 4): up the layers",
      "import cycle between src/mmap/a.ts, src/mmap/b.ts",
      "import cycle (through type imports) between src/iommu/c.ts, src/iommu/d.ts",
      "import cycle (through type imports) between src/iommu/e.ts, src/iommu/f.ts",
    ]);
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("import lint: one cycle fails it, even through type imports only, and even at the top", () => {
  const root = tree({
    "src/core/a.ts": 'import type { B } from "./b.ts";\nexport type A = B;\n',
    "src/core/b.ts": 'import type { A } from "./a.ts";\nexport type B = A | 1;\n',
    "src/tools/x.ts": 'import { y } from "./y.ts";\nexport const x = y;\n',
    "src/tools/y.ts": 'import { x } from "./x.ts";\nexport const y = () => x;\n',
  });
  try {
    assert.deepEqual(lintImports(root), [
      "import cycle between src/tools/x.ts, src/tools/y.ts",
      "import cycle (through type imports) between src/core/a.ts, src/core/b.ts",
    ]);
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("import lint: an import up the layers fails it, however far up", () => {
  const root = tree({
    "mod.ts": 'export { m } from "./src/mmap/m.ts";\n',
    "iommu.ts": 'export { i } from "./src/iommu/i.ts";\n',
    "src/core/c.ts": 'import type { M } from "../mmap/m.ts";\nexport type C = M;\n',
    "src/mmap/m.ts": 'import { i } from "../iommu/i.ts";\nexport const m = i;\nexport type M = 1;\n',
    "src/iommu/i.ts": 'import { m } from "../../mod.ts";\nexport const i = 1;\nexport const j = m;\n',
  });
  try {
    const problems = lintImports(root);
    assert.deepEqual(problems.filter((p) => p.endsWith("up the layers")), [
      "src/core/c.ts (layer 3) imports src/mmap/m.ts (layer 4): up the layers",
      "src/iommu/i.ts (layer 5) imports mod.ts (layer 6): up the layers",
      "src/mmap/m.ts (layer 4) imports src/iommu/i.ts (layer 5): up the layers",
    ]);
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("import lint: a tool reaches the library through the entry points only", () => {
  const root = tree({
    "mod.ts": 'export { e } from "./src/core/errors.ts";\n',
    "src/core/errors.ts": "export const e = 1;\n",
    "src/tools/ok.ts": 'import { e } from "../../mod.ts";\nimport { t } from "./text.ts";\nexport const ok = e + t;\n',
    "src/tools/text.ts": "export const t = 1;\n",
    "src/tools/cli/bad.ts": 'import type { E } from "../../core/errors.ts";\nexport type Bad = E;\n',
  });
  try {
    assert.deepEqual(lintImports(root), [
      "src/tools/cli/bad.ts (a tool) imports src/core/errors.ts: tools use the library through its entry points only",
    ]);
  } finally {
    rmSync(root, { recursive: true });
  }
});

Deno.test("import lint: the library has no cycle, no import up the layers and no tool past the entry points", () => {
  assert.deepEqual(lintImports(), []);
});
