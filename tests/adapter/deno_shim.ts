/**
 * The Bun side of the test adapter: on Bun, installs a `Deno` global with the subset of Deno's API
 * that the tests, fixtures and benchmarks use (files, TCP, child processes, environment, raw
 * pointers), so the same files run on both runtimes. On Deno it does nothing. A member it does not
 * provide throws a TypeError naming itself and this file, rather than failing obscurely.
 *
 * It also makes deno.json's `npm:` imports resolvable (see `npm_imports.ts`).
 *
 * `bun --preload ./tests/adapter/deno_shim.ts script.ts` runs a script; `bun test` preloads
 * `bun_test_preload.ts`, which adds `Deno.test`.
 * @module
 */

import process from "node:process";
import { denoErrors } from "./shim_errors.ts";
import { UnsafePointer, UnsafePointerView } from "./shim_ffi.ts";
import {
  asyncFileFunctions,
  fileFunctions,
  FsFile,
  makeTempDirSync,
  makeTempFileSync,
  open,
  openSync,
  SeekMode,
} from "./shim_fs.ts";
import { connect, listen } from "./shim_net.ts";
import { registerNpmImports } from "./npm_imports.ts";
import { wrapWorkers } from "./shim_worker.ts";
import { build, ChildProcess, Command, env, stream, version } from "./shim_process.ts";

/** Members that may be probed without being provided (feature checks, promise resolution). */
const PROBED = new Set(["then", "toJSON", "inspect", "constructor"]);

/**
 * Installs `globalThis.Deno` on Bun (once) and returns it; on Deno returns the real one.
 *
 * @example
 * ```ts ignore
 * const deno = installDenoShim();
registerNpmImports();
 * deno.env.get("HOME");
 * ```
 */
export function installDenoShim(): Record<string | symbol, unknown> {
  const g = globalThis as Record<string, unknown>;
  if (!("Bun" in g) || g.Deno !== undefined) return g.Deno as Record<string | symbol, unknown>;
  const members: Record<string | symbol, unknown> = {
    ...fileFunctions,
    ...asyncFileFunctions,
    args: process.argv.slice(2),
    env,
    build,
    version,
    pid: process.pid,
    exit: (code = 0): never => process.exit(code),
    execPath: () => process.execPath,
    cwd: () => process.cwd(),
    chdir: (dir: string | URL) => process.chdir(dir instanceof URL ? dir.pathname : dir),
    stdout: stream(1),
    stderr: stream(2),
    errors: denoErrors,
    SeekMode,
    FsFile,
    openSync,
    open,
    makeTempFileSync,
    makeTempDirSync,
    listen,
    connect,
    Command,
    ChildProcess,
    UnsafePointer,
    UnsafePointerView,
    // Set by bun_test_preload.ts under `bun test`; a script calling it outside a test run is a mistake.
    test: () => {
      throw new TypeError("Deno.test: run test files with `deno task test:bun` (bun test + the adapter's preload)");
    },
  };
  const shim = new Proxy(members, {
    get(target, key) {
      if (key in target || typeof key === "symbol" || PROBED.has(key)) return target[key];
      throw new TypeError(`Deno.${key} is not provided on Bun by the test adapter (tests/adapter/deno_shim.ts)`);
    },
  });
  g.Deno = shim;
  if (g.WorkerGlobalScope === undefined && typeof g.Worker === "function") wrapWorkers();
  // What `--v8-flags=--expose-gc` gives on Deno: a synchronous full collection.
  const bun = g.Bun as { gc(force: boolean): void };
  g.gc ??= () => bun.gc(true);
  return shim;
}

installDenoShim();
registerNpmImports();
