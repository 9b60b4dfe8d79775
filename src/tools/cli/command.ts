/**
 * What a `gmem` command is and what it gets: its words, the options, the output channel, and
 * (through {@link withMemory}) the attached guest memory with the dirty session kept up to date.
 * @module
 */

import { type GuestMemoryMmap, InvalidArgumentError } from "../../../mod.ts";
import { hasFlag, optionValue, type ParsedArgs } from "./args.ts";
import { attach, type Attached } from "./attach.ts";
import { DirtySession, sessionPathFor } from "./dirty_session.ts";
import { parseLength } from "./numbers.ts";
import type { Output } from "./output.ts";
import { pathIdentity, refuseGuestMemory } from "./output_guard.ts";

/** Everything a command runs with. */
export interface Context {
  /** `gmem NAME`, the operation named in errors. */
  op: string;
  /** The parsed command line. */
  args: ParsedArgs;
  /** The words after the command name. */
  words: string[];
  /** Where results go. */
  out: Output;
}

/** One command of the tool. */
export interface Command {
  /** Its name on the command line. */
  name: string;
  /** Its words, e.g. `hexdump ADDR LEN`. */
  usage: string;
  /** One line saying what it does. */
  summary: string;
  /** Options it accepts besides --json, --quiet and --help. */
  options: readonly string[];
  /** Runs it; resolves to the exit code. */
  run(ctx: Context): number | Promise<number>;
}

/** The options of every command that attaches to guest memory. */
export const MEMORY_OPTIONS: readonly string[] = ["mem", "memfd-socket", "layout", "timeout"];

/**
 * The words of a command, checked for count: exactly `names.length`, or between `min` and that.
 *
 * @example
 * ```ts
 * import { words } from "./command.ts";
 * // const [addr, len] = words(ctx, ["ADDR", "LEN"]);
 * ```
 * @throws {InvalidArgumentError} naming the missing word or the first extra one.
 */
export function words(ctx: Context, names: readonly string[], min = names.length): string[] {
  const w = ctx.words;
  if (w.length < min) {
    throw new InvalidArgumentError(ctx.op, names[w.length], undefined, `is missing (usage: ${usageOf(ctx)})`);
  }
  if (w.length > names.length) {
    throw new InvalidArgumentError(
      ctx.op,
      w[names.length],
      w[names.length],
      `is one word too many (usage: ${usageOf(ctx)})`,
    );
  }
  return w;
}

let usageLookup: (name: string) => string = (name) => name;

/**
 * Lets {@link words} quote a command's usage in its errors (set once by the command table).
 *
 * @example
 * ```ts
 * import { setUsageLookup } from "./command.ts";
 * setUsageLookup((name) => `gmem ${name} …`);
 * ```
 */
export function setUsageLookup(lookup: (name: string) => string): void {
  usageLookup = lookup;
}

function usageOf(ctx: Context): string {
  return usageLookup(ctx.op.replace(/^gmem /, ""));
}

/** What {@link withMemory} hands to its callback. */
export interface MemoryUse {
  /** The guest memory. */
  mem: GuestMemoryMmap;
  /** The attachment (layout, source). */
  attached: Attached;
}

/**
 * Attaches to the guest memory the options name, runs `fn`, and unmaps again. For a `writable`
 * command, if a dirty session exists for this memory (`--session FILE`, or `MEMFILE.gmem-dirty`),
 * the tool's writes are tracked in pages of the session's size and added to the session afterwards
 * (also when `fn` fails half-way, since what was written stays written).
 *
 * @example
 * ```ts
 * import { withMemory } from "./command.ts";
 * // await withMemory(ctx, false, ({ mem }) => mem.readU32(0x1000));
 * ```
 */
export async function withMemory<T>(
  ctx: Context,
  writable: boolean,
  fn: (use: MemoryUse) => T | Promise<T>,
): Promise<T> {
  const memPath = optionValue(ctx.args, "mem");
  let session: DirtySession | undefined;
  if (writable) {
    const path = optionValue(ctx.args, "session") ?? (memPath === undefined ? undefined : sessionPathFor(memPath));
    if (path !== undefined && (optionValue(ctx.args, "session") !== undefined || exists(path))) {
      refuseSessionOnMemoryFile(ctx, path);
      session = DirtySession.open(path, ctx.op);
    }
  }
  using attached = attach({
    op: ctx.op,
    mem: memPath,
    memfdSocket: optionValue(ctx.args, "memfd-socket"),
    layout: layoutOption(ctx.args),
    writable,
    dirtyPageSize: session?.pageSize,
    timeoutMs: timeoutOption(ctx),
  });
  session?.checkMatches(attached, ctx.op);
  try {
    return await fn({ mem: attached.mem, attached });
  } finally {
    session?.record(attached);
  }
}

/**
 * The `--layout` text: repeated options are joined with commas.
 *
 * @example
 * ```ts
 * import { parseArgs } from "./args.ts";
 * import { layoutOption } from "./command.ts";
 * layoutOption(parseArgs(["-l", "0:1M", "-l", "4G:1M"])); // "0:1M,4G:1M"
 * ```
 */
export function layoutOption(args: ParsedArgs): string | undefined {
  return args.options.get("layout")?.join(",");
}

function timeoutOption(ctx: Context): number {
  const t = optionValue(ctx.args, "timeout");
  return t === undefined ? 5000 : Math.min(parseLength(t, ctx.op, "--timeout"), 0x7fffffff);
}

/**
 * Refuses a session path that is the `--mem` file under another name, before the session is read
 * (a session is rewritten after every write). Memory from a socket is checked once attached.
 *
 * @example
 * ```ts
 * import { refuseSessionOnMemoryFile } from "./command.ts";
 * // refuseSessionOnMemoryFile(ctx, "/dev/shm/ram.gmem-dirty");
 * ```
 * @throws {InvalidArgumentError} when `sessionPath` is the memory file.
 */
export function refuseSessionOnMemoryFile(ctx: Context, sessionPath: string): void {
  const memPath = optionValue(ctx.args, "mem");
  if (memPath === undefined) return;
  const identity = pathIdentity(memPath, ctx.op, "--mem");
  if (identity !== undefined) refuseGuestMemory(sessionPath, { identity, source: memPath }, ctx.op, "--session");
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether the command should print JSON.
 *
 * @example
 * ```ts
 * import { jsonWanted } from "./command.ts";
 * // if (jsonWanted(ctx)) …
 * ```
 */
export function jsonWanted(ctx: Context): boolean {
  return hasFlag(ctx.args, "json");
}
