/**
 * Fails (exit 1) on an import cycle between files of the library (src/ and the entry points), on
 * an import that runs up the layers, and on a tool (src/tools/) that reaches the library other than
 * through its entry points. Type-only imports count: a type cycle is still two files that cannot be
 * read one before the other.
 *
 *   deno task lint:imports
 *
 * The layers, lowest first (docs/architecture.md explains them). A file may import files of its own
 * layer and of lower ones. Folders not listed (new work) sit with the tools, at the top, over the
 * public entry points.
 * @module
 */

// node:fs rather than Deno's API: the same test file runs on Bun (tests/lint_imports_test.ts).
import { readdirSync, readFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";

const LAYERS: readonly (readonly string[])[] = [
  // The core's base: what even the FFI binding needs (the error base class, formatting, addresses).
  [
    "src/core/address.ts",
    "src/core/errors.ts",
    "src/core/format.ts",
    "src/core/caller_bytes.ts",
    "src/core/inspect_text.ts",
    "src/core/permissions.ts",
    "src/core/constants.ts",
  ],
  ["src/ffi/"],
  ["src/bitmap/"],
  ["src/core/"],
  ["src/mmap/"],
  ["src/iommu/"],
  ["mod.ts", "iommu.ts"],
  ["src/virtio/", "src/vhost_user/"],
  ["vhost_user.ts"],
  ["src/tools/"],
  ["tools.ts"],
];

/** The public entry points: what users import, and all that the tools may import of the library. */
const ENTRY_POINTS: ReadonlySet<string> = new Set(["mod.ts", "iommu.ts", "vhost_user.ts", "tools.ts"]);
const TOOLS = "src/tools/";
const TOP = LAYERS.length - 1;

const ROOT = fileURLToPath(new URL("../", import.meta.url));

function layerOf(file: string): number {
  for (let i = 0; i < LAYERS.length; i++) {
    for (const prefix of LAYERS[i]!) {
      if (prefix.endsWith("/") ? file.startsWith(prefix) : file === prefix) return i;
    }
  }
  return TOP;
}

/** Library files: every .ts under src/ plus the entry points at the top of the tree. */
function libraryFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(root + dir, { withFileTypes: true })) {
      const rel = `${dir}${e.name}`;
      if (e.isDirectory()) walk(`${rel}/`);
      else if (e.isFile() && e.name.endsWith(".ts")) out.push(rel);
    }
  };
  walk("src/");
  for (const e of readdirSync(root, { withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith(".ts")) out.push(e.name);
  }
  return out.sort();
}

// Comments go first, so that JSDoc examples (" * import ... from") never count.
const BLOCK_COMMENT = /\/\*[\s\S]*?\*\//g;
const LINE_COMMENT = /^\s*\/\/.*$/gm;
const STATIC = /^\s*(import|export)\s+(type\s+)?([^;"'`]*?)\s*from\s*["']([^"']+)["']/gm;
const SIDE_EFFECT = /^\s*import\s+["']([^"']+)["']/gm;
const DYNAMIC = /\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** One import of a file: the file imported, and whether only types come through it. */
interface Edge {
  to: string;
  typeOnly: boolean;
}

/** `{ type A, type B }` brings only types; `{ A, type B }`, `* as x` or a default bring values. */
function onlyTypes(typeKeyword: boolean, clause: string): boolean {
  if (typeKeyword) return true;
  const braces = /^\{([\s\S]*)\}$/.exec(clause.trim());
  if (!braces) return false;
  const names = braces[1]!.split(",").map((n) => n.trim()).filter((n) => n !== "");
  return names.length > 0 && names.every((n) => n.startsWith("type "));
}

function importsOf(root: string, file: string): Edge[] {
  const text = readFileSync(root + file, "utf8").replace(BLOCK_COMMENT, "").replace(LINE_COMMENT, "");
  const found: { spec: string; typeOnly: boolean }[] = [];
  for (const m of text.matchAll(STATIC)) found.push({ spec: m[4]!, typeOnly: onlyTypes(m[2] !== undefined, m[3]!) });
  for (const m of text.matchAll(SIDE_EFFECT)) found.push({ spec: m[1]!, typeOnly: false });
  for (const m of text.matchAll(DYNAMIC)) found.push({ spec: m[1]!, typeOnly: false });
  const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/") + 1) : "";
  return found
    .filter(({ spec }) => spec.startsWith("./") || spec.startsWith("../"))
    .map(({ spec, typeOnly }) => ({ to: new URL(spec, `file:///${dir}`).pathname.slice(1), typeOnly }));
}

/** Strongly connected components of more than one file (Tarjan), each sorted. */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

/**
 * The problems found under `root` (a directory URL or path ending in "/"), one line each; empty
 * when the graph is clean.
 */
export function lintImports(root: string = ROOT): string[] {
  const edges = new Map<string, Edge[]>();
  for (const f of libraryFiles(root)) edges.set(f, importsOf(root, f));
  const problems: string[] = [];
  for (const [from, list] of edges) {
    for (const { to } of list) {
      if (to.endsWith(".json")) continue; // data (deno.json's version): it imports nothing, so it closes no cycle
      if (!edges.has(to)) problems.push(`${from}: imports ${to}, which is not a library file`);
      else if (from.startsWith(TOOLS) && !to.startsWith(TOOLS) && !ENTRY_POINTS.has(to)) {
        problems.push(`${from} (a tool) imports ${to}: tools use the library through its entry points only`);
      } else if (layerOf(to) > layerOf(from)) {
        problems.push(`${from} (layer ${layerOf(from)}) imports ${to} (layer ${layerOf(to)}): up the layers`);
      }
    }
  }
  const all = new Map([...edges].map(([f, list]) => [f, list.map((e) => e.to)]));
  const values = new Map([...edges].map(([f, list]) => [f, list.filter((e) => !e.typeOnly).map((e) => e.to)]));
  const seen = new Set<string>();
  for (const [graph, how] of [[values, ""], [all, " (through type imports)"]] as const) {
    for (const scc of cycles(graph)) {
      const key = scc.join(" ");
      if (seen.has(key)) continue;
      seen.add(key);
      problems.push(`import cycle${how} between ${scc.join(", ")}`);
    }
  }
  return problems;
}

if (import.meta.main) {
  const problems = lintImports();
  for (const p of problems) console.error(p);
  if (problems.length > 0) process.exit(1);
  console.log("imports: no cycle, no import up the layers, tools on the entry points only");
}
