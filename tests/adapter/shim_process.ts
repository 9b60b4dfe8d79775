/**
 * The process side of the Bun test adapter: `Deno.env`, `args`, `exit`, `execPath`, `build`,
 * `version`, standard streams, and `Deno.Command`, which runs a `deno run [flags] script args…`
 * child as `bun --preload <this adapter> script args…` (Deno's permission flags have no meaning on
 * Bun and are dropped). Any other `deno` subcommand is refused with a clear error.
 * @module
 */

import { type ChildProcess as NodeChild, spawn, spawnSync, type StdioOptions } from "node:child_process";
import * as os from "node:os";
import process from "node:process";
import { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { denoErrorsFrom, translate as denoError } from "./shim_errors.ts";

const SHIM = fileURLToPath(new URL("./deno_shim.ts", import.meta.url));

/** `Deno.env`. */
export const env = {
  get: (name: string): string | undefined => process.env[name],
  set: (name: string, value: string): void => void (process.env[name] = value),
  delete: (name: string): void => void delete process.env[name],
  has: (name: string): boolean => process.env[name] !== undefined,
  toObject: (): Record<string, string> =>
    Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined)),
};

/** `Deno.build` (the fields tests and benches read). */
export const build = {
  os: process.platform,
  arch: process.arch === "x64" ? "x86_64" : process.arch === "arm64" ? "aarch64" : process.arch,
  target: `${process.arch}-${process.platform}`,
};

/** `Deno.version`: there is no Deno here, so the runtime says what it is. */
export const version = {
  deno: `(Bun ${process.versions.bun ?? "?"})`,
  v8: "(JavaScriptCore)",
  typescript: "(Bun's transpiler)",
};

/** `Deno.stdout` / `Deno.stderr`. */
export function stream(fd: 1 | 2): {
  writeSync(p: Uint8Array): number;
  write(p: Uint8Array): Promise<number>;
  isTerminal(): boolean;
} {
  const out = fd === 1 ? process.stdout : process.stderr;
  return {
    writeSync: (p) => (out.write(p), p.length),
    write: (p) => new Promise((resolve) => out.write(p, () => resolve(p.length))),
    isTerminal: () => out.isTTY === true,
  };
}

/** What `Deno.Command` takes (the subset the tests use). */
export interface CommandOptions {
  args?: string[];
  env?: Record<string, string>;
  clearEnv?: boolean;
  cwd?: string | URL;
  stdin?: "null" | "piped" | "inherit";
  stdout?: "null" | "piped" | "inherit";
  stderr?: "null" | "piped" | "inherit";
  signal?: AbortSignal;
}

/** What `Deno.Command.output()` resolves to. */
export interface CommandOutput {
  code: number;
  signal: string | null;
  success: boolean;
  stdout: Uint8Array;
  stderr: Uint8Array;
}

/** A `deno` command line as the Bun command that does the same, or an error saying why not. */
function translate(command: string, args: readonly string[]): [string, string[]] {
  const isDeno = command === process.execPath || command === "deno" || command.endsWith("/deno");
  if (!isDeno) return [command, [...args]];
  if (args[0] !== "run") {
    throw new Error(
      `Deno.Command: \`deno ${args[0] ?? ""}\` has no Bun equivalent in the test adapter (only \`deno run\`)`,
    );
  }
  let i = 1;
  while (i < args.length && args[i].startsWith("-")) i++;
  if (i >= args.length) throw new Error("Deno.Command: `deno run` without a script");
  const script = args[i].startsWith("file:") ? fileURLToPath(args[i]) : args[i];
  return [process.execPath, ["--preload", SHIM, script, ...args.slice(i + 1)]];
}

function stdio(o: CommandOptions): StdioOptions {
  const map = (v: string | undefined, dflt: "pipe" | "inherit") =>
    v === "null" ? "ignore" : v === "piped" ? "pipe" : v === "inherit" ? "inherit" : dflt;
  return [map(o.stdin, "inherit"), map(o.stdout, "pipe"), map(o.stderr, "pipe")];
}

function childEnv(o: CommandOptions): Record<string, string | undefined> {
  return o.clearEnv ? { ...o.env } : { ...process.env, ...o.env };
}

function result(code: number | null, signal: string | null, stdout: Uint8Array, stderr: Uint8Array): CommandOutput {
  const signo = signal === null ? 0 : (os.constants.signals as Record<string, number>)[signal] ?? 0;
  const c = code ?? 128 + signo;
  return { code: c, signal, success: c === 0 && signal === null, stdout, stderr };
}

/** What `Deno.ChildProcess.status` resolves to. */
export interface CommandStatus {
  code: number;
  signal: string | null;
  success: boolean;
}

/**
 * `Deno.ChildProcess`: web streams over the child's pipes, its exit status, `kill`.
 *
 * @example
 * ```ts ignore
 * const child = new Command("cat", { stdin: "piped", stdout: "piped" }).spawn();
 * ```
 */
export class ChildProcess implements AsyncDisposable {
  readonly #child: NodeChild;
  /** The child's process id. */
  readonly pid: number;
  /** Resolves when the child has exited. */
  readonly status: Promise<CommandStatus>;

  /** Wraps a spawned child. */
  constructor(child: NodeChild) {
    this.#child = child;
    this.pid = child.pid ?? 0;
    this.status = new Promise((resolve, reject) => {
      child.on("error", reject);
      child.on("close", (code, signal) => {
        const r = result(code, signal, new Uint8Array(0), new Uint8Array(0));
        resolve({ code: r.code, signal: r.signal, success: r.success });
      });
    });
  }

  /** The child's standard input (only with `stdin: "piped"`). */
  get stdin(): WritableStream<Uint8Array> {
    if (!this.#child.stdin) throw new TypeError("stdin is not piped");
    return Writable.toWeb(this.#child.stdin) as WritableStream<Uint8Array>;
  }

  /** The child's standard output (only with `stdout: "piped"`). */
  get stdout(): ReadableStream<Uint8Array> {
    if (!this.#child.stdout) throw new TypeError("stdout is not piped");
    return Readable.toWeb(this.#child.stdout) as ReadableStream<Uint8Array>;
  }

  /** The child's standard error (only with `stderr: "piped"`). */
  get stderr(): ReadableStream<Uint8Array> {
    if (!this.#child.stderr) throw new TypeError("stderr is not piped");
    return Readable.toWeb(this.#child.stderr) as ReadableStream<Uint8Array>;
  }

  /** Sends a signal (SIGTERM by default). */
  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    this.#child.kill(signal);
  }

  /** Kills the child if it still runs and waits for it. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.kill();
    await this.status.catch(() => {});
  }
}

/**
 * `Deno.Command`, for `output()`, `outputSync()` and `spawn()`.
 *
 * @example
 * ```ts ignore
 * const out = await new Command(Deno.execPath(), { args: ["run", "child.ts"] }).output();
 * ```
 */
export class Command {
  readonly #command: string;
  readonly #options: CommandOptions;

  /** Remembers the command; nothing runs until `output()`. */
  constructor(command: string | URL, options: CommandOptions = {}) {
    this.#command = command instanceof URL ? fileURLToPath(command) : command;
    this.#options = options;
  }

  /** Runs the child to its end and collects its output. */
  output(): Promise<CommandOutput> {
    const [cmd, args] = translate(this.#command, this.#options.args ?? []);
    const o = this.#options;
    return new Promise((resolve, reject) => {
      // A program that is not there is Deno.errors.NotFound, as on Deno (Bun throws ENOENT here).
      const child = denoErrorsFrom(() =>
        spawn(cmd, args, { stdio: stdio(o), env: childEnv(o), cwd: o.cwd, signal: o.signal })
      );
      const out: Uint8Array[] = [], err: Uint8Array[] = [];
      child.stdout?.on("data", (d: Uint8Array) => out.push(d));
      child.stderr?.on("data", (d: Uint8Array) => err.push(d));
      child.on("error", (e) => reject(denoError(e)));
      child.on("close", (code, signal) => {
        resolve(result(code, signal, new Uint8Array(Buffer.concat(out)), new Uint8Array(Buffer.concat(err))));
      });
    });
  }

  /** Starts the child (pipes default to inherited, as in Deno's `spawn`). */
  spawn(): ChildProcess {
    const [cmd, args] = translate(this.#command, this.#options.args ?? []);
    const o = this.#options;
    const io: StdioOptions = [o.stdin ?? "inherit", o.stdout ?? "inherit", o.stderr ?? "inherit"].map((v) =>
      v === "null" ? "ignore" : v === "piped" ? "pipe" : "inherit"
    );
    return new ChildProcess(
      denoErrorsFrom(() => spawn(cmd, args, { stdio: io, env: childEnv(o), cwd: o.cwd, signal: o.signal })),
    );
  }

  /** Runs the child synchronously. */
  outputSync(): CommandOutput {
    const [cmd, args] = translate(this.#command, this.#options.args ?? []);
    const o = this.#options;
    const r = spawnSync(cmd, args, { stdio: stdio(o), env: childEnv(o), cwd: o.cwd });
    if (r.error) throw denoError(r.error);
    return result(r.status, r.signal, new Uint8Array(r.stdout ?? []), new Uint8Array(r.stderr ?? []));
  }
}
