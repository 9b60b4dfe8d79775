/**
 * Guest memory layouts on the command line: `GPA:SIZE[@FILE_OFFSET]` ranges, comma-separated.
 * @module
 */

import { InvalidArgumentError } from "../../../mod.ts";
import { hex } from "../text.ts";
import { parseLength, parseU64 } from "./numbers.ts";

/** One guest RAM range: `size` bytes at guest physical `gpa`, backed from `fileOffset` of the file. */
export interface LayoutRange {
  /** First guest physical address. */
  gpa: bigint;
  /** Length in bytes. */
  size: number;
  /** Where the range starts in the memory file or memfd. */
  fileOffset: bigint;
}

/**
 * Parses a layout. A range without `@FILE_OFFSET` starts in the file where the previous range
 * ended (0 for the first), which is how QEMU lays out RAM split around the PCI hole:
 * `0:3G,4G:1G` puts file bytes [3G, 4G) at GPA 4G.
 *
 * @example
 * ```ts
 * import { parseLayout } from "./layout.ts";
 * console.log(parseLayout("0:2G,4G:2G", "gmem"));
 * // [{ gpa: 0n, size: 2147483648, fileOffset: 0n }, { gpa: 4294967296n, size: 2147483648, fileOffset: 2147483648n }]
 * ```
 * @throws {InvalidArgumentError} for an empty spec, a range without `:`, bad numbers, a zero size,
 *   or ranges that overlap in guest physical address space.
 */
export function parseLayout(spec: string, op: string): LayoutRange[] {
  const parts = spec.split(",").map((p) => p.trim());
  if (spec.trim() === "" || parts.some((p) => p === "")) {
    throw new InvalidArgumentError(op, "--layout", spec, "must be GPA:SIZE[@FILE_OFFSET] ranges separated by commas");
  }
  const ranges: LayoutRange[] = [];
  let nextOffset = 0n;
  for (const part of parts) {
    const m = /^([^:@]+):([^:@]+)(?:@([^:@]+))?$/.exec(part);
    if (m === null) {
      throw new InvalidArgumentError(op, "--layout", part, `range "${part}" must be GPA:SIZE[@FILE_OFFSET]`);
    }
    const gpa = parseU64(m[1], op, "--layout GPA");
    const size = parseLength(m[2], op, "--layout SIZE");
    const fileOffset = m[3] === undefined ? nextOffset : parseU64(m[3], op, "--layout FILE_OFFSET");
    ranges.push({ gpa, size, fileOffset });
    nextOffset = fileOffset + BigInt(size);
  }
  const sorted = [...ranges].sort((a, b) => (a.gpa < b.gpa ? -1 : a.gpa > b.gpa ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    if (prev.gpa + BigInt(prev.size) > sorted[i].gpa) {
      throw new InvalidArgumentError(
        op,
        "--layout",
        spec,
        `ranges [${hex(prev.gpa)}, ${hex(prev.gpa + BigInt(prev.size))}) and [${hex(sorted[i].gpa)}, ${
          hex(sorted[i].gpa + BigInt(sorted[i].size))
        }) overlap`,
      );
    }
  }
  return sorted;
}

/**
 * The canonical text of a layout (every offset explicit, hex), as stored in a dirty session.
 *
 * @example
 * ```ts
 * import { formatLayout } from "./layout.ts";
 * formatLayout([{ gpa: 0n, size: 4096, fileOffset: 0n }]); // "0x0:0x1000@0x0"
 * ```
 */
export function formatLayout(ranges: readonly LayoutRange[]): string {
  return ranges.map((r) => `${hex(r.gpa)}:${hex(r.size)}@${hex(r.fileOffset)}`).join(",");
}
