/**
 * Formatting used in error messages and inspection output.
 * @module
 */

/**
 * Formats an address or length in lower-case hexadecimal with a `0x` prefix.
 *
 * @example
 * ```ts
 * import { hex } from "./format.ts";
 * hex(4096); // "0x1000"
 * ```
 */
export function hex(value: number | bigint): string {
  if (typeof value === "number" && !Number.isInteger(value)) return String(value);
  return value < 0 ? `-0x${(-BigInt(value)).toString(16)}` : `0x${value.toString(16)}`;
}

/**
 * Describes any value for an error message without throwing (BigInts get an `n`, strings quotes).
 *
 * @example
 * ```ts
 * import { describeValue } from "./format.ts";
 * describeValue(2n ** 64n); // "18446744073709551616n"
 * ```
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case "bigint":
      return `${value}n`;
    case "string":
      return JSON.stringify(value);
    case "number":
    case "boolean":
    case "undefined":
      return String(value);
    case "symbol":
      return value.toString();
    case "function":
      return "a function";
    default:
      return value === null ? "null" : `a ${(value as object).constructor?.name ?? "object"}`;
  }
}
