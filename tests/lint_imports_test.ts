// The import lint (deno task lint:imports) on small trees built for the purpose: it names each
// cycle and each import up the layers, tells value cycles from type-only ones, ignores imports in
// comments and JSDoc examples, and fails when a tolerated cycle is gone.
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
    assert.deepEqual(lintImports(root, new Set()), []);
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
    assert.deepEqual(lintImports(root, new Set()), [
      "src/core/errors.ts (layer 0) imports src/mmap/a.ts (layer 4): up the layers",
      "import cycle between src/mmap/a.ts, src/mmap/b.ts",
      "import cycle (through type imports) between src/iommu/c.ts, src/iommu/d.ts",
      "import cycle (through type imports) between src/iommu/e.ts, src/iommu/f.ts",
    ]);
    assert.deepEqual(
      lintImports(
        root,
        new Set([
          "src/iommu/c.ts src/iommu/d.ts",
          "src/iommu/e.ts src/iommu/f.ts",
          "src/mmap/a.ts src/mmap/b.ts",
          "src/x.ts src/y.ts",
        ]),
      ),
      [
        "src/core/errors.ts (layer 0) imports src/mmap/a.ts (layer 4): up the layers",
        "known cycle src/x.ts src/y.ts is gone or changed: update KNOWN_CYCLES",
      ],
    );
  } finally {
    rmSync(root, { recursive: true });
  }
});
