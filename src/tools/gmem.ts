/**
 * `gmem`: a command-line tool for host experiments on guest memory another process owns (a QEMU
 * `memory-backend-file,share=on` file, a /dev/shm file, or a memfd handed over a Unix socket).
 * Run `deno task gmem --help`.
 *
 * @example
 * ```sh
 * deno task gmem --mem /dev/shm/vm-ram hexdump 0x100000 32
 * ```
 * @module
 */

import { GuestMemoryError, InvalidArgumentError } from "../../mod.ts";
import { hasFlag, parseArgs } from "./cli/args.ts";
import { enterCallerDirectory } from "./cli/caller_dir.ts";
import { COMMANDS, COMMON_OPTIONS, helpText } from "./cli/commands.ts";
import { Output } from "./cli/output.ts";
import { VERSION } from "./cli/version.ts";

/** Exit status for bad arguments. */
const EXIT_USAGE = 2;
/** Exit status for an operation that failed. */
const EXIT_FAILED = 1;

/** What a failure looks like on stderr: its exit status and the one line to print. */
interface Failure {
  code: number;
  text: string;
  json: Record<string, unknown>;
}

function describe(error: unknown, op: string): Failure {
  if (error instanceof GuestMemoryError) {
    // Library errors name the library call; the prefix says which command made it.
    const text = (error.op.startsWith("gmem") ? error.message : `${op}: ${error.message}`).replace(/\n/g, " ");
    const code = error instanceof InvalidArgumentError ? EXIT_USAGE : EXIT_FAILED;
    const json: Record<string, unknown> = { op, error: error.name, kind: error.kind, message: text, exitCode: code };
    if (error instanceof InvalidArgumentError) {
      json.argument = error.argument;
      if (error.value !== undefined) json.value = String(error.value);
    }
    return { code, text, json };
  }
  const permission = error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied;
  const name = error instanceof Error ? error.name : "Error";
  const first = (error instanceof Error ? error.message : String(error)).split("\n")[0];
  const text = permission ? `${op}: ${first}` : `${op}: unexpected error: ${name}: ${first}`;
  return {
    code: EXIT_FAILED,
    text,
    json: {
      op,
      error: name,
      kind: permission ? "PermissionDenied" : "Unexpected",
      message: text,
      exitCode: EXIT_FAILED,
    },
  };
}

function fail(error: unknown, op: string, json: boolean): number {
  const f = describe(error, op);
  // Still one line on stderr, so stdout keeps only results; under --json a script parses it.
  console.error(json ? JSON.stringify({ error: f.json }) : f.text);
  return f.code;
}

/** Whether `--json` (or `-j`) is among the options, looked for before parsing so parse errors honour it. */
function jsonRequested(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end < 0 ? argv : argv.slice(0, end)).some((w) => w === "--json" || w === "-j");
}

/**
 * Runs the tool on `argv` and resolves to the exit status (never throws).
 *
 * @example
 * ```ts
 * import { main } from "./gmem.ts";
 * const status = await main(["--help"]);
 * ```
 */
export async function main(argv: readonly string[]): Promise<number> {
  let op = "gmem";
  try {
    enterCallerDirectory();
    const args = parseArgs(argv);
    let name = args.command;
    let words = args.positionals;
    if (name === "help") {
      name = words[0];
      words = [];
      if (name === undefined) {
        console.log(helpText());
        return 0;
      }
      args.options.set("help", [""]);
    }
    if (hasFlag(args, "version")) {
      console.log(`gmem ${VERSION}`);
      return 0;
    }
    if (name === undefined) {
      if (hasFlag(args, "help")) {
        console.log(helpText());
        return 0;
      }
      throw new InvalidArgumentError("gmem", "COMMAND", undefined, "is missing (gmem --help lists the commands)");
    }
    const command = COMMANDS.find((c) => c.name === name);
    if (command === undefined) {
      throw new InvalidArgumentError("gmem", "COMMAND", name, `"${name}" is not a command (gmem --help lists them)`);
    }
    if (hasFlag(args, "help")) {
      console.log(helpText(command));
      return 0;
    }
    for (const option of args.options.keys()) {
      if (!command.options.includes(option) && !COMMON_OPTIONS.includes(option)) {
        throw new InvalidArgumentError(`gmem ${name}`, `--${option}`, option, `does not apply to ${name}`);
      }
    }
    op = `gmem ${name}`;
    const out = new Output(hasFlag(args, "json"), hasFlag(args, "quiet"));
    return await command.run({ op, args, words, out });
  } catch (error) {
    return fail(error, op, jsonRequested(argv));
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
