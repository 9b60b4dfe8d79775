/**
 * Command-line parsing for `gmem`: one table of options, `--name value` / `--name=value`, short
 * aliases, `--` to end options. Options may stand anywhere, before or after the command.
 * @module
 */

import { InvalidArgumentError } from "../../../mod.ts";

/** One option of the tool. */
export interface OptionSpec {
  /** Long name without dashes. */
  name: string;
  /** One-letter alias, if any. */
  short?: string;
  /** Name of its value in help (`PATH`, `N`), or undefined for a flag. */
  value?: string;
  /** May be given more than once (values are kept in order). */
  repeat?: boolean;
  /** One line of help. */
  help: string;
}

/**
 * Every option `gmem` knows. Which commands accept which is decided in the command table.
 *
 * @example
 * ```ts
 * import { OPTIONS } from "./args.ts";
 * console.log(OPTIONS.find((o) => o.name === "mem")?.value); // "PATH"
 * ```
 */
export const OPTIONS: readonly OptionSpec[] = [
  { name: "mem", short: "m", value: "PATH", help: "guest memory file (QEMU memory-backend-file mem-path, /dev/shm/…)" },
  { name: "memfd-socket", value: "PATH", help: "Unix socket that hands over a memfd of guest memory (SCM_RIGHTS)" },
  {
    name: "layout",
    short: "l",
    value: "SPEC",
    repeat: true,
    help: "GPA:SIZE[@FILE_OFFSET],… ranges (default: the whole file at GPA 0)",
  },
  { name: "timeout", value: "MS", help: "how long to wait for --memfd-socket (default 5000)" },
  { name: "iotlb", value: "FILE", help: "IOTLB as JSON (the format of Iotlb.toJSON())" },
  { name: "session", value: "FILE", help: "dirty-tracking session file (default: MEMFILE.gmem-dirty)" },
  { name: "page-size", value: "N", help: "page size of a new dirty session (default 4096)" },
  { name: "be", help: "big-endian scalar" },
  { name: "le", help: "little-endian scalar (the default)" },
  { name: "dec", help: "print scalars in decimal" },
  { name: "text", help: "PATTERN is UTF-8 text, not hex bytes" },
  { name: "max", value: "N", help: "stop after N matches (default 100)" },
  { name: "json", short: "j", help: "machine-readable output: one JSON document on stdout" },
  { name: "quiet", short: "q", help: "no progress on stderr" },
  { name: "help", short: "h", help: "show help (for a command: gmem help COMMAND)" },
  { name: "version", short: "V", help: "print gmem's version and exit" },
];

const BY_LONG = new Map(OPTIONS.map((o) => [o.name, o]));
const BY_SHORT = new Map(OPTIONS.filter((o) => o.short !== undefined).map((o) => [o.short!, o]));

/** What {@link parseArgs} found. */
export interface ParsedArgs {
  /** The first positional word, if any. */
  command: string | undefined;
  /** The remaining positional words. */
  positionals: string[];
  /** Options given, by long name; flags have an empty-string value. */
  options: Map<string, string[]>;
}

/**
 * Splits `argv` into the command, its positional arguments and options. A word that starts with
 * `-` followed by a digit (`-5`) is a value, not an option.
 *
 * @example
 * ```ts
 * import { parseArgs } from "./args.ts";
 * const a = parseArgs(["--mem", "/dev/shm/ram", "read", "u32", "0x1000", "--be"]);
 * console.log(a.command, a.positionals, a.options.has("be")); // "read" ["u32", "0x1000"] true
 * ```
 * @throws {InvalidArgumentError} for an unknown option, a missing value, a value given to a flag,
 *   or a non-repeatable option given twice.
 */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const op = "gmem";
  const words: string[] = [];
  const options = new Map<string, string[]>();
  const add = (spec: OptionSpec, value: string, shown: string) => {
    const list = options.get(spec.name);
    if (list !== undefined && !spec.repeat) {
      throw new InvalidArgumentError(op, shown, value, "was given more than once");
    }
    options.set(spec.name, [...(list ?? []), value]);
  };
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (word === "--") {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (!word.startsWith("-") || word === "-" || /^-[0-9]/.test(word)) {
      words.push(word);
      continue;
    }
    let spec: OptionSpec | undefined;
    let inline: string | undefined;
    let shown: string;
    if (word.startsWith("--")) {
      const eq = word.indexOf("=");
      const name = eq < 0 ? word.slice(2) : word.slice(2, eq);
      if (eq >= 0) inline = word.slice(eq + 1);
      spec = BY_LONG.get(name);
      shown = `--${name}`;
    } else {
      if (word.length !== 2) throw new InvalidArgumentError(op, word, word, "is not an option (see gmem --help)");
      spec = BY_SHORT.get(word[1]);
      shown = word;
    }
    if (spec === undefined) {
      throw new InvalidArgumentError(op, shown, word, "is not an option (see gmem --help)");
    }
    if (spec.value === undefined) {
      if (inline !== undefined) throw new InvalidArgumentError(op, shown, word, "takes no value");
      add(spec, "", shown);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) {
        throw new InvalidArgumentError(op, shown, undefined, `needs a value (${spec.value})`);
      }
      value = argv[++i];
    }
    add(spec, value, shown);
  }
  return { command: words[0], positionals: words.slice(1), options };
}

/**
 * The single value of option `name`, or `undefined`.
 *
 * @example
 * ```ts
 * import { optionValue, parseArgs } from "./args.ts";
 * optionValue(parseArgs(["--iotlb", "t.json"]), "iotlb"); // "t.json"
 * ```
 */
export function optionValue(args: ParsedArgs, name: string): string | undefined {
  const v = args.options.get(name);
  return v === undefined ? undefined : v[v.length - 1];
}

/**
 * Whether flag `name` was given.
 *
 * @example
 * ```ts
 * import { hasFlag, parseArgs } from "./args.ts";
 * hasFlag(parseArgs(["--json"]), "json"); // true
 * ```
 */
export function hasFlag(args: ParsedArgs, name: string): boolean {
  return args.options.has(name);
}
