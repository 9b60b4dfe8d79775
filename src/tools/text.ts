/**
 * The tools' own text: hex numbers, sizes in binary units, counted nouns and permission names, as
 * the CLI, the demo and the map print them. The tools reach the library through its entry points
 * only, and these are their output format, not part of the library's API.
 * @module
 */

import { InvalidArgumentError, type Permission, Permissions } from "../../mod.ts";

/**
 * An address or length in lower-case hex with a `0x` prefix.
 *
 * @example
 * ```ts
 * import { hex } from "./text.ts";
 * console.log(hex(4096)); // "0x1000"
 * ```
 */
export function hex(value: number | bigint): string {
  if (typeof value === "number" && !Number.isInteger(value)) return String(value);
  return value < 0 ? `-0x${(-BigInt(value)).toString(16)}` : `0x${value.toString(16)}`;
}

const UNITS: ReadonlyArray<readonly [bigint, string]> = [
  [1n << 60n, "EiB"],
  [1n << 50n, "PiB"],
  [1n << 40n, "TiB"],
  [1n << 30n, "GiB"],
  [1n << 20n, "MiB"],
  [1n << 10n, "KiB"],
];

/**
 * A byte count in the largest binary unit that divides it exactly, else in bytes: a size printed by
 * a tool is never rounded.
 *
 * @example
 * ```ts
 * import { sizeText } from "./text.ts";
 * console.log(sizeText(0x1000), sizeText(4097)); // "4 KiB" "4097 B"
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
 * `n` and the noun, singular for 1, else `many`.
 *
 * @example
 * ```ts
 * import { plural } from "./text.ts";
 * console.log(plural(2, "region"), plural(1, "entry", "entries")); // "2 regions" "1 entry"
 * ```
 */
export function plural(n: number | bigint, noun: string, many = `${noun}s`): string {
  return `${n} ${n === 1 || n === 1n ? noun : many}`;
}

const NAMES = ["No", "Read", "Write", "ReadWrite"] as const;

/**
 * The name of a permission as the `Permissions` object spells it.
 *
 * @example
 * ```ts
 * import { permissionName } from "./text.ts";
 * console.log(permissionName(3)); // "ReadWrite"
 * ```
 */
export function permissionName(p: Permission): string {
  return NAMES[p];
}

/**
 * A permission read from a file: 0-3 or one of the names; throws {@link InvalidArgumentError}
 * naming `argument` otherwise.
 *
 * @example
 * ```ts
 * import { parsePermission } from "./text.ts";
 * console.log(parsePermission("Read", "gmem", "perm")); // 1
 * ```
 */
export function parsePermission(value: unknown, op: string, argument: string): Permission {
  if (value === 0 || value === 1 || value === 2 || value === 3) return value;
  if (typeof value === "string" && Object.hasOwn(Permissions, value)) {
    return Permissions[value as keyof typeof Permissions];
  }
  throw new InvalidArgumentError(op, argument, value, "must be a permission: 0-3 or No, Read, Write, ReadWrite");
}

/**
 * Whether `have` grants every right in `want`.
 *
 * @example
 * ```ts
 * import { allows } from "./text.ts";
 * console.log(allows(3, 2), allows(1, 2)); // true false
 * ```
 */
export function allows(have: Permission, want: Permission): boolean {
  return (have & want) === want;
}
