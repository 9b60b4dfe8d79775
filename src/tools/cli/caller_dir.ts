/**
 * Where the user was when they ran the tool. `deno task` runs commands in the directory of
 * deno.json, not the caller's; the `gmem` task passes the caller's directory (Deno's `INIT_CWD`)
 * in {@link TASK_CWD_ENV}, and the tool moves there before reading any path, so that
 * `deno task gmem --mem ram.img …` means the ram.img the user sees.
 * @module
 */

import { InvalidArgumentError } from "../../../mod.ts";

/**
 * The variable the `gmem` task sets. Not `INIT_CWD` itself: npm sets that too, for every script
 * it runs, so an installed gmem started from an npm script in another directory would follow it.
 */
export const TASK_CWD_ENV = "GMEM_TASK_CWD";

/**
 * Changes to the directory the `gmem` task was run from, if it was run as a task.
 *
 * @example
 * ```ts
 * import { enterCallerDirectory } from "./caller_dir.ts";
 * enterCallerDirectory(); // no-op unless GMEM_TASK_CWD is set
 * ```
 * @throws {InvalidArgumentError} when that directory cannot be entered (removed meanwhile).
 */
export function enterCallerDirectory(): void {
  let dir: string | undefined;
  try {
    dir = Deno.env.get(TASK_CWD_ENV);
  } catch {
    // Without --allow-env the tool was not started by the task, which grants everything.
    return;
  }
  if (dir === undefined || dir === "") return;
  try {
    Deno.chdir(dir);
  } catch (e) {
    throw new InvalidArgumentError(
      "gmem",
      TASK_CWD_ENV,
      dir,
      `names the directory deno task was run from, ${dir}, which cannot be entered (${
        e instanceof Error ? e.message.split("\n")[0] : String(e)
      })`,
    );
  }
}
