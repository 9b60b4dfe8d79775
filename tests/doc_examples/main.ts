/**
 * Runs every TypeScript example of the documentation (README.md, docs/*.md, and the JSDoc of the
 * entry points and src/) and checks each `console.log` against the `// value` comment beside it, so
 * that an example that throws, or a comment that says something else than what is printed, fails.
 * A `console.log` without such a comment fails too: an example shows what it claims.
 *
 *   deno task test:docs [FILTER] [--root DIR]
 *
 * FILTER runs only the examples whose `file:line` contains it; `--root` reads another tree (the
 * runner's own test uses a small one with a wrong comment).
 * The examples run in this one process, one after another (each its own module), with the
 * permissions the task grants; the last line is "N passed, N failed" (examples), as .ci/run counts.
 * @module
 */

import { extractExamples } from "./extract.ts";
import { instrument, type LogSite } from "./instrument.ts";
import { matchesSpellings, spellings } from "./compare.ts";

const rootAt = Deno.args.indexOf("--root");
const ROOT = rootAt >= 0
  ? new URL(`file://${Deno.realPathSync(Deno.args[rootAt + 1])}/`)
  : new URL("../../", import.meta.url);
const words = rootAt >= 0 ? Deno.args.filter((_, i) => i !== rootAt && i !== rootAt + 1) : Deno.args;
const ENTRY_POINTS = ["mod.ts", "iommu.ts", "vhost_user.ts", "tools.ts"];
const TIMEOUT_MS = 30_000;

/** The documentation files whose examples run: README, docs/*.md, entry points, and all of src/. */
function sources(): string[] {
  const files = ["README.md"];
  if (exists("docs")) {
    for (const e of Deno.readDirSync(new URL("docs/", ROOT))) if (e.name.endsWith(".md")) files.push(`docs/${e.name}`);
  }
  for (const f of ENTRY_POINTS) if (exists(f)) files.push(f);
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(new URL(dir, ROOT))) {
      const path = `${dir}${e.name}`;
      if (e.isDirectory) walk(`${path}/`);
      else if (path.endsWith(".ts")) files.push(path);
    }
  };
  if (exists("src")) walk("src/");
  return files.sort();
}

function exists(path: string): boolean {
  try {
    Deno.statSync(new URL(path, ROOT));
    return true;
  } catch {
    return false;
  }
}

/** `@gmem/gmem` and its subpaths, as package.json's exports name them, to file URLs of the checkout. */
function packageMap(): Record<string, string> {
  const pkg = JSON.parse(Deno.readTextFileSync(new URL("package.json", ROOT)));
  const map: Record<string, string> = {};
  for (const [sub, target] of Object.entries(pkg.exports as Record<string, { default: string }>)) {
    map[sub === "." ? pkg.name : `${pkg.name}/${sub.slice(2)}`] = new URL(target.default, ROOT).href;
  }
  return map;
}

/** What one call printed, spelled out at once: the views an example prints die with its regions. */
interface Printed {
  site: number;
  shown: string;
  spellings: string[];
}
let printed: Printed[] = [];
(globalThis as Record<string, unknown>).__gmemDocLog = (site: number, ...args: unknown[]) => {
  printed.push({ site, shown: Deno.inspect(args), spellings: spellings(args) });
};
let stray: unknown[] = [];
globalThis.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  stray.push(e.reason);
});

/** What is wrong with one run: its error, a site that printed something else, one never reached. */
function problems(sites: readonly LogSite[], error: unknown): string[] {
  const out: string[] = [];
  if (error !== undefined) out.push(`threw ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
  for (const reason of stray) out.push(`unhandled rejection ${reason instanceof Error ? reason.message : reason}`);
  sites.forEach((site, k) => {
    const calls = printed.filter((p) => p.site === k);
    if (site.comment === undefined) {
      out.push(`line ${site.line + 1}: console.log without a "// value" comment saying what it prints`);
    } else if (calls.length === 0 && error === undefined) {
      out.push(`line ${site.line + 1}: console.log never ran (comment: ${site.comment})`);
    }
    for (const call of calls) {
      if (site.comment !== undefined && !matchesSpellings(call.spellings, site.comment)) {
        out.push(`line ${site.line + 1}: printed ${call.shown} but the comment says ${site.comment}`);
      }
    }
  });
  return out;
}

const dir = Deno.makeTempDirSync({ prefix: "gmem-doc-examples-" });
const map = packageMap();
const filter = words[0];
let passed = 0, failed = 0, skipped = 0, n = 0;
try {
  for (const file of sources()) {
    const fileUrl = new URL(file, ROOT).href;
    for (const ex of extractExamples(file, Deno.readTextFileSync(new URL(file, ROOT)))) {
      const where = `${file}:${ex.line}`;
      if (filter !== undefined && !where.includes(filter)) continue;
      if (ex.ignore) {
        skipped++;
        continue;
      }
      const { code, sites } = instrument(ex.code, fileUrl, map);
      const path = `${dir}/example_${n++}.ts`;
      Deno.writeTextFileSync(path, code);
      printed = [];
      stray = [];
      let error: unknown;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          import(new URL(`file://${path}`).href),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`did not finish in ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
          }),
        ]);
      } catch (e) {
        error = e;
      } finally {
        clearTimeout(timer);
      }
      // Let callbacks of the example (promise reactions, a closed socket's event) print before judging.
      await new Promise((r) => setTimeout(r, 0));
      const wrong = problems(sites, error);
      if (wrong.length === 0) {
        passed++;
      } else {
        failed++;
        console.log(`FAILED ${where}\n  ${wrong.join("\n  ")}`);
      }
    }
  }
} finally {
  Deno.removeSync(dir, { recursive: true });
}
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped (documentation examples)`);
Deno.exit(failed === 0 ? 0 : 1);
