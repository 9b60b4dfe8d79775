/**
 * Running the host's tools (apt-get, dpkg-deb, busybox, sh) for the real-guest harness, with a
 * deadline after which the tool is killed, so that a stuck download cannot hang a test run.
 * @module
 */

import { GuestUnavailable } from "./errors.ts";

/** How a host tool ended and what it printed. */
export interface HostRun {
  /** Its exit code (128 + the signal number when killed). */
  code: number;
  stdout: string;
  stderr: string;
  /** It was still running at the deadline and was killed. */
  timedOut: boolean;
}

/**
 * Whether spawning failed because the program does not exist: Deno throws `NotFound` from `spawn`,
 * Node (under Bun) reports `ENOENT` when the child fails.
 *
 * @example
 * ```ts ignore
 * try { new Deno.Command("no-such-tool").spawn(); } catch (e) { isNotFound(e); } // true
 * ```
 */
export function isNotFound(e: unknown): boolean {
  return e instanceof Deno.errors.NotFound || (e as { code?: unknown } | null)?.code === "ENOENT";
}

/**
 * Whether `path` is a file (spawn then finds it; whether it may run is its own error).
 *
 * @example
 * ```ts ignore
 * await isProgram("/usr/bin/qemu-system-x86_64"); // true where QEMU is installed
 * ```
 */
export async function isProgram(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/**
 * Runs `cmd args…` (`cmd` found on `PATH` unless it is absolute) with no stdin, collects its
 * output, and kills it after `timeoutMs`. A command that does not exist is a
 * {@link GuestUnavailable} for `op`.
 *
 * @example
 * ```ts ignore
 * const r = await hostCommand("fetchGuest", "apt-cache", ["depends", "linux-image-cloud-amd64"]);
 * if (r.code !== 0) console.log(r.stderr);
 * ```
 */
export async function hostCommand(
  op: string,
  cmd: string,
  args: readonly string[],
  options: { cwd?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<HostRun> {
  // Looking first keeps a missing program off spawn's error path, which differs between runtimes
  // (under Bun it surfaces as an AbortError or an unhandled stream error, not as ENOENT).
  const program = cmd.startsWith("/") ? cmd : await findOnPath(op, cmd);
  if (program === undefined || !(await isProgram(program))) throw new GuestUnavailable(op, `${cmd} is not installed`);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args: [...args],
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { LC_ALL: "C", ...options.env },
    }).spawn();
  } catch (e) {
    if (isNotFound(e)) throw new GuestUnavailable(op, `${cmd} is not installed`, { cause: e });
    throw e;
  }
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* it exited meanwhile */ }
  }, options.timeoutMs ?? 300_000);
  try {
    const [stdout, stderr, status] = await Promise.all([
      new Response(child.stdout).text(),
      new Response(child.stderr).text(),
      child.status,
    ]);
    return { code: status.code, stdout, stderr, timedOut };
  } catch (e) {
    if (isNotFound(e)) throw new GuestUnavailable(op, `${cmd} is not installed`, { cause: e });
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The path `sh` finds for `name` on `PATH`, or undefined.
 *
 * @example
 * ```ts ignore
 * const qemu = await findOnPath("fetchGuest", "qemu-system-x86_64"); // "/usr/bin/qemu-system-x86_64"
 * ```
 */
export async function findOnPath(op: string, name: string): Promise<string | undefined> {
  const r = await hostCommand(op, "/bin/sh", ["-c", 'command -v "$1"', "sh", name], { timeoutMs: 10_000 });
  const path = r.stdout.trim();
  return r.code === 0 && path.startsWith("/") ? path : undefined;
}

/** The last non-empty line of a tool's error output, for a one-line reason. */
export function lastLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  return lines.at(-1) ?? "(no output)";
}
