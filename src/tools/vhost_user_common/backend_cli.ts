/**
 * What the vhost-user device tools share: their options, the start-up line, the counters printed
 * when they stop (on SIGINT/SIGTERM, or after the one connection with `--once`), and exit codes
 * (0 done, 1 failed, 2 bad usage).
 * @module
 */

import process from "node:process";
import { GuestMemoryError } from "../../../mod.ts";
import {
  type BackendEvent,
  type VhostUserCounters,
  type VhostUserDevice,
  VhostUserServer,
} from "../../../vhost_user.ts";

/** Exit status for bad arguments. */
export const EXIT_USAGE = 2;
/** Exit status for a back-end that could not run. */
export const EXIT_FAILED = 1;

/** A bad command line, reported as one line and exit status 2. */
export class UsageError extends Error {}

/** One option: `--name VALUE` (or `--name=VALUE`), or a flag without a value. */
export interface CliOption {
  name: string;
  value?: string;
  help: string;
}

/** The options every device tool has. */
export const COMMON_OPTIONS: readonly CliOption[] = [
  { name: "socket", value: "PATH", help: "the Unix socket to listen on (QEMU: -chardev socket,path=PATH)" },
  { name: "queue-size", value: "N", help: "the largest queue size accepted (a power of two; default 256)" },
  {
    name: "miss-timeout",
    value: "MS",
    help: "how long to wait for the front-end to answer an IOTLB miss (default 5000)",
  },
  { name: "once", help: "exit after the first front-end disconnects" },
  { name: "json", help: "also print the counters as one JSON line on stdout when stopping" },
  { name: "verbose", help: "log every protocol event on stderr" },
  { name: "help", help: "show this help" },
];

/**
 * Parses `argv` against `options`: values by name (flags map to "true"). Throws {@link UsageError}
 * for an unknown option, a missing value, or a repeated option.
 *
 * @example
 * ```ts
 * import { COMMON_OPTIONS, parseOptions } from "./backend_cli.ts";
 * console.log(parseOptions(["--socket", "/tmp/s", "--once"], COMMON_OPTIONS)); // { socket: "/tmp/s", once: "true" }
 * ```
 */
export function parseOptions(argv: readonly string[], options: readonly CliOption[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new UsageError(`unexpected argument ${JSON.stringify(a)} (see --help)`);
    const eq = a.indexOf("=");
    const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
    const spec = options.find((o) => o.name === name);
    if (spec === undefined) throw new UsageError(`unknown option --${name} (see --help)`);
    if (name in out) throw new UsageError(`--${name} given twice`);
    if (spec.value === undefined) {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      out[name] = "true";
    } else if (eq >= 0) out[name] = a.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value (${spec.value})`);
      out[name] = argv[++i];
    }
  }
  return out;
}

/**
 * The help text: a summary line, usage, and one line per option.
 *
 * @example
 * ```ts
 * import { COMMON_OPTIONS, helpText } from "./backend_cli.ts";
 * console.log(helpText("vhost-user-x", "does x", "--socket PATH", COMMON_OPTIONS).split("\n")[0]); // "vhost-user-x: does x"
 * ```
 */
export function helpText(name: string, summary: string, usage: string, options: readonly CliOption[]): string {
  const rows = options.map((o) => [`--${o.name}${o.value ? ` ${o.value}` : ""}`, o.help]);
  const width = Math.max(...rows.map((r) => r[0].length));
  return [
    `${name}: ${summary}`,
    "",
    `Usage: deno task ${name} ${usage}`,
    "",
    "Options:",
    ...rows.map(([l, r]) => `  ${l.padEnd(width)}  ${r}`),
    "",
  ].join("\n");
}

/**
 * A whole number in `[min, max]` from option `name`, or `fallback` when it is not given.
 *
 * @example
 * ```ts
 * import { intOption } from "./backend_cli.ts";
 * console.log(intOption({ n: "8" }, "n", 1, 1, 64)); // 8
 * ```
 */
export function intOption(
  opts: Record<string, string>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const text = opts[name];
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new UsageError(`--${name} ${text} is not a whole number from ${min} to ${max}`);
  }
  return v;
}

/** The queue size option: a power of two up to 32768. */
export function queueSizeOption(opts: Record<string, string>): number {
  const v = intOption(opts, "queue-size", 256, 1, 32768);
  if ((v & (v - 1)) !== 0) throw new UsageError(`--queue-size ${v} is not a power of two`);
  return v;
}

/** What {@link parseBackendArgs} read: the options, and the two every back-end takes. */
export interface BackendArgs {
  opts: Record<string, string>;
  queueSize: number;
  missTimeoutMs: number;
}

/**
 * Reads a device tool's arguments: prints its help (exit 0), or checks `--socket`, the queue size,
 * the miss timeout and then the tool's own `check` (which throws `UsageError`), printing a usage
 * error (exit 2). Returns the arguments, or the exit status when the tool is to stop.
 *
 * @example
 * ```ts ignore
 * const args = parseBackendArgs(argv, "vhost-user-rng", "an entropy device", "--socket PATH", OPTIONS);
 * if (typeof args === "number") return args;
 * ```
 */
export function parseBackendArgs(
  argv: readonly string[],
  name: string,
  summary: string,
  usage: string,
  options: readonly CliOption[],
  check: (opts: Record<string, string>) => void = () => {},
): BackendArgs | number {
  try {
    const opts = parseOptions(argv, options);
    if (opts.help) {
      console.log(helpText(name, summary, usage, options));
      return 0;
    }
    if (opts.socket === undefined) throw new UsageError("--socket PATH is required");
    check(opts);
    return {
      opts,
      queueSize: queueSizeOption(opts),
      missTimeoutMs: intOption(opts, "miss-timeout", 5000, 1, 2 ** 31 - 1),
    };
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`${name}: ${e.message}`);
    return EXIT_USAGE;
  }
}

/** One line for a counters object: `name value` pairs, in order. */
export function countersLine(counters: object): string {
  return Object.entries(counters).map(([k, v]) => `${k} ${v}`).join(", ");
}

/** How a device tool runs: its device, what it says on start, and its own counters. */
export interface BackendRun {
  name: string;
  device: VhostUserDevice;
  /** What is served, for the start-up line (e.g. "disk.img (8 MiB, 16384 sectors, read-write)"). */
  serving: string;
  deviceCounters: () => object;
  socket: string;
  once: boolean;
  json: boolean;
  verbose: boolean;
  missTimeoutMs: number;
  /** Called once the back-end stopped (close the image, …). */
  cleanup: () => void;
}

/** Events as one line each, for `--verbose`. */
function eventLine(e: BackendEvent): string {
  return JSON.stringify(
    e,
    (_k, v) => (typeof v === "bigint" ? `0x${v.toString(16)}` : v instanceof Error ? v.message : v),
  );
}

/**
 * Listens, prints the start-up line, serves until a signal (or the first disconnect with
 * `once`), then prints the counters and resolves to the exit status.
 *
 * @example
 * ```ts ignore
 * Deno.exit(await runBackend({ name, device, serving, deviceCounters, socket, once: false, ... }));
 * ```
 */
export async function runBackend(run: BackendRun): Promise<number> {
  let stop!: (why: string) => void;
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  let server: VhostUserServer;
  try {
    server = VhostUserServer.listen(run.socket, run.device, {
      replace: true,
      missTimeoutMs: run.missTimeoutMs,
      onEvent: run.verbose ? (e) => console.error(`${run.name}: ${eventLine(e)}`) : undefined,
      onDisconnect: (why) => {
        if (why !== undefined) console.error(`${run.name}: front-end disconnected: ${why.message}`);
        if (run.once) stop("the front-end disconnected");
      },
    });
  } catch (e) {
    run.cleanup();
    console.error(`${run.name}: ${e instanceof GuestMemoryError ? e.message : String(e)}`);
    return EXIT_FAILED;
  }
  // Listening for signals before saying it serves: whoever reads that line may stop it at once.
  const onSignal = (signal: string) => () => stop(`stopped by ${signal}`);
  const sigint = onSignal("SIGINT"), sigterm = onSignal("SIGTERM");
  process.on("SIGINT", sigint);
  process.on("SIGTERM", sigterm);
  console.log(`${run.name}: serving ${run.serving} on ${run.socket} (pid ${process.pid})`);
  const why = await stopped;
  process.off("SIGINT", sigint);
  process.off("SIGTERM", sigterm);
  await server.close();
  run.cleanup();
  const backend: VhostUserCounters = server.backend.counters;
  const device = run.deviceCounters();
  console.log(`${run.name}: ${why}; ${countersLine(device)}; ${countersLine(backend)}`);
  if (run.json) console.log(JSON.stringify({ name: run.name, device, backend }));
  return 0;
}
