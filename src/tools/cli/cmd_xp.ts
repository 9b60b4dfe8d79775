/**
 * `xp /FMT ADDR`: QEMU's monitor dump of guest physical memory, with the same `/FMT` and the same
 * lines, for engineers who think in QEMU's terms (and for diffing against a QEMU monitor session).
 * @module
 */

import { InvalidArgumentError } from "../../../mod.ts";
import { hex } from "../text.ts";
import { hasFlag } from "./args.ts";
import { type Command, MEMORY_OPTIONS, withMemory, words } from "./command.ts";
import { requireBacked } from "./cmd_bytes.ts";
import { parseU64 } from "./numbers.ts";
import { formatXp, parseXpFormat, type XpSpec } from "./xp_format.ts";

const DEFAULT: XpSpec = { count: 1, format: "x", size: 4 };

const xp: Command = {
  name: "xp",
  usage: "xp [/FMT] ADDR",
  summary: "dump as QEMU's monitor does: /FMT is [COUNT][x|d|u|o|c][b|h|w|g] (default /1xw; --be)",
  options: [...MEMORY_OPTIONS, "be", "le"],
  run(ctx) {
    const w = words(ctx, ["/FMT", "ADDR"], 0);
    if (w.length === 0 || (w.length === 1 && w[0].startsWith("/"))) {
      throw new InvalidArgumentError(ctx.op, "ADDR", undefined, `is missing (usage: gmem ${xp.usage})`);
    }
    const [f, a] = w.length === 2 ? w : [undefined, w[0]];
    const spec = f === undefined ? DEFAULT : parseXpFormat(f, ctx.op);
    const addr = parseU64(a, ctx.op, "ADDR");
    const be = hasFlag(ctx.args, "be");
    const len = spec.count * spec.size;
    return withMemory(ctx, false, ({ mem }) => {
      // QEMU prints what it can and then "Cannot access memory"; a script is better served by
      // all of the dump or an error naming the first address outside RAM.
      requireBacked(mem, addr, len, ctx.op);
      const bytes = new Uint8Array(len);
      mem.readSlice(bytes, addr);
      ctx.out.result(
        {
          addr: hex(addr),
          count: spec.count,
          format: spec.format,
          size: spec.size,
          endian: be ? "be" : "le",
          lines: formatXp(addr, bytes, spec, be),
        },
        () => formatXp(addr, bytes, spec, be).join("\n"),
      );
      return 0;
    });
  },
};

/**
 * The QEMU-style dump command.
 *
 * @example
 * ```ts
 * import { XP_COMMANDS } from "./cmd_xp.ts";
 * console.log(XP_COMMANDS[0].usage); // "xp [/FMT] ADDR"
 * ```
 */
export const XP_COMMANDS: readonly Command[] = [xp];
