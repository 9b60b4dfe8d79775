/**
 * Runs first in every worker the Bun test adapter starts: the `Deno` shim, and the
 * `WorkerGlobalScope` global that Deno (like browsers) defines in workers and fixtures test for.
 * @module
 */

import "./deno_shim.ts";

const g = globalThis as { WorkerGlobalScope?: unknown };
g.WorkerGlobalScope ??= class WorkerGlobalScope {};
