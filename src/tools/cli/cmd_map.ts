/**
 * `map`: the guest physical address space as a picture, drawn by `renderMap(mem)` from
 * src/tools/render_map.ts, plus (with `--json`) the regions themselves; `mtree`: the same space as
 * a text table in the columns of QEMU's `info mtree`.
 * @module
 */

import { hex } from "../text.ts";
import { renderMap } from "../render_map.ts";
import { type Command, MEMORY_OPTIONS, withMemory, words } from "./command.ts";

const map: Command = {
  name: "map",
  usage: "map",
  summary: "draw the guest physical address space: regions, holes, backing",
  options: MEMORY_OPTIONS,
  run(ctx) {
    words(ctx, []);
    return withMemory(ctx, false, ({ mem, attached }) => {
      const text = renderMap(mem);
      ctx.out.result(
        {
          source: attached.source,
          regions: attached.ranges.map((r) => ({
            gpa: hex(r.gpa),
            size: hex(r.size),
            fileOffset: hex(r.fileOffset),
          })),
          picture: text,
        },
        text,
      );
      return 0;
    });
  },
};

const mtree: Command = {
  name: "mtree",
  usage: "mtree",
  summary: "list the guest physical address space as a table, like QEMU's info mtree -f",
  options: MEMORY_OPTIONS,
  run(ctx) {
    words(ctx, []);
    return withMemory(ctx, false, ({ attached }) => {
      const name = attached.path === undefined ? "memfd" : basename(attached.path);
      const rows = attached.ranges.map((r) => ({
        start: r.gpa,
        last: r.gpa + BigInt(r.size) - 1n,
        fileOffset: r.fileOffset,
      }));
      ctx.out.result(
        {
          source: attached.source,
          regions: rows.map((r) => ({
            start: hex(r.start),
            last: hex(r.last),
            size: hex(r.last - r.start + 1n),
            kind: "ram",
            name,
            fileOffset: hex(r.fileOffset),
          })),
        },
        () =>
          [
            `address-space: ${attached.source}`,
            // QEMU's columns, so the two tables read alike; @ is where the range starts in the backing.
            ...rows.map((r) => `  ${hex16(r.start)}-${hex16(r.last)} (prio 0, ram): ${name} @${hex16(r.fileOffset)}`),
          ].join("\n"),
      );
      return 0;
    });
  },
};

function hex16(v: bigint): string {
  return v.toString(16).padStart(16, "0");
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/**
 * The address-space commands: the picture and the table.
 *
 * @example
 * ```ts
 * import { MAP_COMMANDS } from "./cmd_map.ts";
 * console.log(MAP_COMMANDS.map((c) => c.name)); // ["map", "mtree"]
 * ```
 */
export const MAP_COMMANDS: readonly Command[] = [map, mtree];
