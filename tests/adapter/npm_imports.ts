/**
 * deno.json's `npm:` imports for Bun, which reads no import map: installs the packages once into
 * `native/build/bun_modules` (git-ignored, next to the built helper) with Bun's own installer, and
 * resolves the bare names the map defines (`"fast-check"`) there: through a Bun plugin for scripts,
 * and (because `bun test` does not consult plugins for bare names) through `mock.module` in the
 * test preload. Packages added to the map later need no change here.
 * @module
 */

import * as fs from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const MODULES = `${ROOT}native/build/bun_modules/`;

/** The part of Bun's global this file uses. */
interface BunGlobal {
  plugin(p: {
    name: string;
    setup(build: {
      onResolve(o: { filter: RegExp }, cb: (args: { path: string }) => { path: string }): void;
    }): void;
  }): void;
  resolveSync(specifier: string, from: string): string;
  spawnSync(cmd: string[], o: { cwd: string; stdout: "inherit"; stderr: "inherit" }): { exitCode: number };
}

/** `name -> "pkg@range"` for every `npm:` entry of deno.json's imports. */
function npmImports(): Map<string, string> {
  const config = JSON.parse(fs.readFileSync(`${ROOT}deno.json`, "utf8")) as { imports?: Record<string, string> };
  const out = new Map<string, string>();
  for (const [name, target] of Object.entries(config.imports ?? {})) {
    if (target.startsWith("npm:")) out.set(name, target.slice(4));
  }
  return out;
}

/** The package name of a `pkg@range` spec (`@scope/pkg@range` included). */
function packageName(spec: string): string {
  const at = spec.indexOf("@", spec.startsWith("@") ? 1 : 0);
  return at < 0 ? spec : spec.slice(0, at);
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

/**
 * Installs what is missing and registers the resolver; returns each bare name with the file it
 * resolves to. Does nothing outside Bun.
 *
 * @example
 * ```ts ignore
 * registerNpmImports();
 * ```
 */
export function registerNpmImports(): Map<string, string> {
  const bun = (globalThis as { Bun?: BunGlobal }).Bun;
  const resolved = new Map<string, string>();
  if (bun === undefined) return resolved;
  const imports = npmImports();
  const missing = [...imports.values()].filter((spec) =>
    !fs.existsSync(`${MODULES}node_modules/${packageName(spec)}/package.json`)
  );
  if (missing.length > 0) {
    fs.mkdirSync(MODULES, { recursive: true });
    if (!fs.existsSync(`${MODULES}package.json`)) fs.writeFileSync(`${MODULES}package.json`, "{}\n");
    const r = bun.spawnSync([process.execPath, "add", ...missing], {
      cwd: MODULES,
      stdout: "inherit",
      stderr: "inherit",
    });
    if (r.exitCode !== 0) throw new Error(`bun add ${missing.join(" ")} failed in ${MODULES}`);
  }
  for (const name of imports.keys()) {
    resolved.set(name, bun.resolveSync(name, MODULES));
    bun.plugin({
      name: `deno.json import ${name}`,
      setup(build) {
        build.onResolve({ filter: new RegExp(`^${escape(name)}(/.*)?$`) }, (args) => ({
          path: bun.resolveSync(args.path, MODULES),
        }));
      },
    });
  }
  return resolved;
}
