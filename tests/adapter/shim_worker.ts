/**
 * Workers for the Bun test adapter. Bun neither preloads the adapter into a worker nor defines
 * `WorkerGlobalScope` there, both of which test fixtures rely on (Deno has the global; fixtures may
 * use `Deno.*`). `Worker` is wrapped so that each worker first runs `worker_prelude.ts`, then the
 * fixture: the worker is started from a two-line module written next to the Bun modules.
 * @module
 */

import * as fs from "node:fs";
import { fileURLToPath } from "node:url";

const DIR = fileURLToPath(new URL("../../native/build/bun_modules/workers/", import.meta.url));
const PRELUDE = new URL("./worker_prelude.ts", import.meta.url).href;

/** The module that runs the prelude, then `target`. */
function wrapperFor(target: string): string {
  const file = `${DIR}${target.replace(/[^A-Za-z0-9_.-]/g, "_")}.ts`;
  const text = `import ${JSON.stringify(PRELUDE)};\nimport ${JSON.stringify(target)};\n`;
  if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) {
    fs.mkdirSync(DIR, { recursive: true });
    fs.writeFileSync(file, text);
  }
  return `file://${file}`;
}

/**
 * Replaces `globalThis.Worker` with a subclass that starts module workers through the prelude.
 *
 * @example
 * ```ts ignore
 * wrapWorkers();
 * ```
 */
export function wrapWorkers(): void {
  const g = globalThis as { Worker: typeof Worker };
  const Base = g.Worker;
  g.Worker = class extends Base {
    constructor(url: string | URL, options?: WorkerOptions & { deno?: unknown }) {
      const { deno: _deno, ...rest } = options ?? {};
      const href = url instanceof URL ? url.href : new URL(url, "file:///").href;
      super(rest.type === "module" && href.startsWith("file:") ? wrapperFor(href) : url, rest);
    }
  };
}
