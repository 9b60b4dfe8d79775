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

import { GuestMemoryError, InvalidArgumentError } from "../errors.ts";
import { hasFlag, parseArgs } from "./cli/args.ts";
import { COMMANDS, COMMON_OPTIONS, helpText } from "./cli/commands.ts";
import { Output } from "./cli/output.ts";

/** Exit status for bad arguments. */
const EXIT_USAGE = 2;
/** Exit status for an operation that failed. */
const EXIT_FAILED = 1;

function fail(error: unknown, op: string): number {
  if (error instanceof GuestMemoryError) {
    // Library errors name the library call; the prefix says which command made it.
    const text = error.op.startsWith("gmem") ? error.message : `${op}: ${error.message}`;
    console.error(text.replace(/\n/g, " "));
    return error instanceof InvalidArgumentError ? EXIT_USAGE : EXIT_FAILED;
  }
  if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
    console.error(`${op}: ${(error as Error).message.split("\n")[0]}`);
    return EXIT_FAILED;
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  console.error(`${op}: unexpected error: ${message.split("\n")[0]}`);
  return EXIT_FAILED;
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
    return fail(error, op);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
