/**
 * `deno task install`: puts a `gmem` launcher on the user's PATH that works whether Deno is
 * installed or only reachable through `npx -y deno@2`. (`deno install` writes a launcher that runs
 * a bare `deno`, which an npx-only user does not have.)
 *
 * @example
 * ```sh
 * npx -y deno@2 task install              # writes ~/.local/bin/gmem
 * npx -y deno@2 task install --dir ~/bin  # elsewhere
 * ```
 * @module
 */

import { InvalidArgumentError } from "../../../mod.ts";

/** Quotes `text` for a POSIX shell. */
function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * The launcher script for the tool at `script`: the installed `deno` when there is one, else
 * Deno through npx.
 *
 * @example
 * ```ts
 * import { launcherScript } from "./install.ts";
 * console.log(launcherScript("/src/gmem/src/tools/gmem.ts").includes("npx -y deno@2 run")); // true
 * ```
 */
export function launcherScript(script: string): string {
  const q = shellQuote(script);
  return [
    "#!/bin/sh",
    "# gmem launcher, written by deno task install",
    "if command -v deno >/dev/null 2>&1; then",
    `  exec deno run --allow-all ${q} "$@"`,
    "fi",
    `exec npx -y deno@2 run --allow-all ${q} "$@"`,
    "",
  ].join("\n");
}

/**
 * Writes the launcher into `dir` (made if missing) and returns its path.
 *
 * @example
 * ```ts
 * import { installLauncher } from "./install.ts";
 * // installLauncher("/home/me/.local/bin"); // "/home/me/.local/bin/gmem"
 * ```
 */
export function installLauncher(dir: string): string {
  const script = new URL("../gmem.ts", import.meta.url).pathname;
  Deno.mkdirSync(dir, { recursive: true });
  const path = `${dir.replace(/\/+$/, "")}/gmem`;
  Deno.writeTextFileSync(path, launcherScript(script), { mode: 0o755 });
  Deno.chmodSync(path, 0o755);
  return path;
}

function targetDir(argv: readonly string[]): string {
  if (argv.length === 0) {
    const home = Deno.env.get("HOME");
    if (home === undefined || home === "") {
      throw new InvalidArgumentError("gmem install", "--dir", undefined, "DIR is required when HOME is not set");
    }
    return `${home}/.local/bin`;
  }
  if (argv.length === 2 && argv[0] === "--dir" && argv[1] !== "") {
    // deno task runs in the repository; a relative DIR means the caller's directory.
    const base = Deno.env.get("GMEM_TASK_CWD");
    return argv[1].startsWith("/") || base === undefined || base === "" ? argv[1] : `${base}/${argv[1]}`;
  }
  throw new InvalidArgumentError("gmem install", "ARGS", argv.join(" "), "must be nothing or --dir DIR");
}

if (import.meta.main) {
  try {
    const path = installLauncher(targetDir(Deno.args));
    console.log(`installed ${path}; run gmem --help (${path.slice(0, path.lastIndexOf("/"))} must be on PATH)`);
  } catch (e) {
    console.error(e instanceof Error ? e.message.split("\n")[0] : String(e));
    Deno.exit(e instanceof InvalidArgumentError ? 2 : 1);
  }
}
