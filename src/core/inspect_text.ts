/**
 * Text pieces shared by the inspection output of every layer (`console.log(mem)` in the REPL, the
 * demo, the tools): sizes in binary units, address ranges in QEMU's `info mtree` style, aligned
 * tables. Nothing here throws.
 * @module
 */

const UNITS: ReadonlyArray<readonly [bigint, string]> = [
  [1n << 60n, "EiB"],
  [1n << 50n, "PiB"],
  [1n << 40n, "TiB"],
  [1n << 30n, "GiB"],
  [1n << 20n, "MiB"],
  [1n << 10n, "KiB"],
];

/**
 * A byte count in the largest binary unit that divides it exactly ("4 KiB", "1536 MiB"), else in
 * bytes ("4097 B"): inspection output must not round a size away.
 *
 * @example
 * ```ts
 * import { sizeText } from "./inspect_text.ts";
 * console.log(sizeText(0x1000), sizeText(2n ** 64n), sizeText(4097)); // "4 KiB" "16 EiB" "4097 B"
 * ```
 */
export function sizeText(bytes: number | bigint): string {
  if (typeof bytes === "number" && !Number.isSafeInteger(bytes)) return `${bytes} B`;
  const n = BigInt(bytes);
  if (n > 0n) {
    for (const [unit, name] of UNITS) {
      if (n % unit === 0n) return `${n / unit} ${name}`;
    }
  }
  return `${n} B`;
}

/**
 * An address as 16 hex digits without prefix, as QEMU's `info mtree` prints it.
 *
 * @example
 * ```ts
 * import { hex16 } from "./inspect_text.ts";
 * console.log(hex16(0x1000n)); // "0000000000001000"
 * ```
 */
export function hex16(addr: number | bigint): string {
  return addr.toString(16).padStart(16, "0");
}

/**
 * The inclusive range `first-last` of `size` bytes from `start`, mtree style; a range ending at
 * 2^64 ends in `ffffffffffffffff`. An empty range is `(empty)`.
 *
 * @example
 * ```ts
 * import { rangeText } from "./inspect_text.ts";
 * console.log(rangeText(0x1000n, 0x1000n)); // "0000000000001000-0000000000001fff"
 * ```
 */
export function rangeText(start: bigint, size: bigint): string {
  if (size <= 0n) return `${hex16(start)} (empty)`;
  return `${hex16(start)}-${hex16(start + size - 1n)}`;
}

/**
 * Lays out rows as columns separated by two spaces, each line prefixed with `indent` and
 * trimmed at the end. Cells of a row may be fewer than the columns.
 *
 * @example
 * ```ts
 * import { columns } from "./inspect_text.ts";
 * console.log(columns([["a", "bb"], ["ccc", "d"]], "  ")); // "  a    bb\n  ccc  d"
 * ```
 */
export function columns(rows: ReadonlyArray<readonly string[]>, indent = ""): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => widths[i] = Math.max(widths[i] ?? 0, cell.length));
  }
  return rows.map((row) => (indent + row.map((cell, i) => cell.padEnd(widths[i])).join("  ")).trimEnd()).join("\n");
}

/**
 * `n` and the noun, singular for 1, else `many` (by default the noun with an `s`).
 *
 * @example
 * ```ts
 * import { plural } from "./inspect_text.ts";
 * console.log(plural(2, "region"), plural(1, "entry", "entries")); // "2 regions" "1 entry"
 * ```
 */
export function plural(n: number | bigint, noun: string, many = `${noun}s`): string {
  return `${n} ${n === 1 || n === 1n ? noun : many}`;
}
