/**
 * The command table of `gmem` and the help text built from it.
 * @module
 */

import { OPTIONS } from "./args.ts";
import { BYTE_COMMANDS } from "./cmd_bytes.ts";
import { DIRTY_COMMANDS } from "./cmd_dirty.ts";
import { FIND_COMMANDS } from "./cmd_find.ts";
import { IOMMU_COMMANDS } from "./cmd_iommu.ts";
import { MAP_COMMANDS } from "./cmd_map.ts";
import { TRANSFER_COMMANDS } from "./cmd_transfer.ts";
import { type Command, setUsageLookup } from "./command.ts";
import { XP_COMMANDS } from "./cmd_xp.ts";

/**
 * Every command, in help order.
 *
 * @example
 * ```ts
 * import { COMMANDS } from "./commands.ts";
 * console.log(COMMANDS.some((c) => c.name === "hexdump")); // true
 * ```
 */
export const COMMANDS: readonly Command[] = [
  ...BYTE_COMMANDS,
  ...XP_COMMANDS,
  ...FIND_COMMANDS,
  ...TRANSFER_COMMANDS,
  ...IOMMU_COMMANDS,
  ...DIRTY_COMMANDS,
  ...MAP_COMMANDS,
];

/** Options every command accepts. */
export const COMMON_OPTIONS: readonly string[] = ["json", "quiet", "help"];

setUsageLookup((name) => {
  const c = COMMANDS.find((x) => x.name === name);
  return c === undefined ? `gmem ${name}` : `gmem ${c.usage}`;
});

/** The command that installs the tool (quoted in help and docs/cli.md). */
export const INSTALL_COMMAND = "npx -y deno@2 task install (or deno task install; --dir DIR, default ~/.local/bin)";

function optionLine(name: string): string {
  const o = OPTIONS.find((x) => x.name === name)!;
  const flag = `${o.short === undefined ? "    " : `-${o.short}, `}--${o.name}${
    o.value === undefined ? "" : ` ${o.value}`
  }`;
  return `  ${flag.padEnd(28)}${o.help}`;
}

/**
 * The help text: everything, or one command's.
 *
 * @example
 * ```ts
 * import { COMMANDS, helpText } from "./commands.ts";
 * console.log(helpText(COMMANDS.find((c) => c.name === "hexdump")).split("\n")[0]); // "usage: gmem hexdump ADDR LEN [options]"
 * ```
 */
export function helpText(command?: Command): string {
  if (command !== undefined) {
    return [
      `usage: gmem ${command.usage} [options]`,
      "",
      command.summary,
      "",
      "options:",
      ...[...command.options, ...COMMON_OPTIONS].map(optionLine),
    ].join("\n");
  }
  const width = Math.max(...COMMANDS.map((c) => c.usage.length));
  return [
    "gmem: look at and change guest memory that another process (a VMM such as QEMU) owns",
    "",
    "usage: gmem (--mem FILE | --memfd-socket SOCKET) [--layout GPA:SIZE[@OFF],…] COMMAND ARGS… [--json]",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`),
    "  help [COMMAND]".padEnd(width + 4) + "this text, or one command's",
    "",
    "options:",
    ...OPTIONS.map((o) => optionLine(o.name)),
    "",
    "Numbers are hex (0x…) or decimal, with optional k/M/G/T suffixes (powers of 1024). Addresses are",
    "guest physical addresses; a layout range without @OFF continues in the file where the previous",
    "one ended: a 4 GiB QEMU pc (i440fx) guest, RAM split around the PCI hole, is --layout 0:3G,4G:1G.",
    "",
    "Exit status: 0 success, 1 the operation failed (or find found nothing, translate or explain: the",
    "range does not translate), 2 bad arguments. Errors are one line on stderr; with --json, results",
    'are one JSON document on stdout and an error is one JSON line on stderr ({"error": {op, error,',
    "kind, message, exitCode, argument?, value?}}). Progress goes to stderr (--quiet turns it off).",
    "",
    "Memory from a Unix socket: gmem connects, the owner sends one message whose SCM_RIGHTS data",
    "carries the memfd. Dirty sessions: gmem dirty start records page fingerprints in",
    "MEMFILE.gmem-dirty (or --session FILE); gmem's own writes are logged there too.",
    "",
    "Run from a checkout: deno task gmem COMMAND … (paths are relative to where you run it). It runs",
    "with --allow-all: FFI, which maps the memory, is not confined by Deno's permissions anyway, and",
    "Deno wants full access for /dev/shm paths.",
    `Install: ${INSTALL_COMMAND}`,
  ].join("\n");
}
