/**
 * Numbers as people type them on a command line: addresses and sizes in hex or decimal with k/M/G
 * suffixes, and scalar values checked against their type's range.
 * @module
 */

import { InvalidArgumentError, U64_LIMIT } from "../../../mod.ts";

const SUFFIX: Readonly<Record<string, bigint>> = {
  "": 1n,
  k: 1n << 10n,
  K: 1n << 10n,
  m: 1n << 20n,
  M: 1n << 20n,
  g: 1n << 30n,
  G: 1n << 30n,
  t: 1n << 40n,
  T: 1n << 40n,
};

const NUMBER = /^(0[xX][0-9a-fA-F](?:_?[0-9a-fA-F])*|[0-9](?:_?[0-9])*)([kKmMgGtT]?)$/;

/**
 * An address as QEMU's monitor (`xp`, `info mtree`) and `gmem xp` print it: 16 hex digits, zero
 * padded, maybe with the colon that follows it there. Nobody writes a decimal with a leading zero,
 * so reading these as hex lets a printed address be pasted back.
 */
const PADDED_HEX = /^(0[0-9a-fA-F]{15}):?$/;

/**
 * Parses an unsigned number: `0x1000`, `4096`, `64M`, `4G`, `0x10k` (k/M/G/T are powers of 1024;
 * `_` may separate digits), or 16 hex digits with a leading zero as QEMU prints addresses
 * (`0000000000001000`, also with a trailing `:`). The result must be below 2^64.
 *
 * @example
 * ```ts
 * import { parseU64 } from "./numbers.ts";
 * parseU64("64M", "gmem", "SIZE"); // 67108864n
 * parseU64("0000000000001000:", "gmem", "ADDR"); // 4096n
 * ```
 * @throws {InvalidArgumentError} naming `what` for anything else.
 */
export function parseU64(text: string, op: string, what: string): bigint {
  const padded = PADDED_HEX.exec(text);
  if (padded !== null) return BigInt(`0x${padded[1]}`);
  const m = NUMBER.exec(text);
  if (m === null) {
    throw new InvalidArgumentError(
      op,
      what,
      text,
      `must be a number (hex 0x…, or decimal; k/M/G/T suffix), got "${text}"`,
    );
  }
  const value = BigInt(m[1].replaceAll("_", "")) * SUFFIX[m[2]];
  if (value >= U64_LIMIT) throw new InvalidArgumentError(op, what, text, `must be below 2^64, got "${text}"`);
  return value;
}

/**
 * Parses a length (see {@link parseU64}) that must also be a safe integer, and returns a number.
 *
 * @example
 * ```ts
 * import { parseLength } from "./numbers.ts";
 * parseLength("0x20", "gmem hexdump", "LEN"); // 32
 * ```
 * @throws {InvalidArgumentError} for a malformed number, one of 2^53 or more, or zero unless `allowZero`.
 */
export function parseLength(text: string, op: string, what: string, allowZero = false): number {
  const v = parseU64(text, op, what);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvalidArgumentError(op, what, text, `must be below 2^53, got "${text}"`);
  }
  if (v === 0n && !allowZero) throw new InvalidArgumentError(op, what, text, "must not be zero");
  return Number(v);
}

/** Scalar types the tool reads and writes. */
export type ScalarType = "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64";

/** Every scalar type, in the order help lists them. */
export const SCALAR_TYPES: readonly ScalarType[] = ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"];

/**
 * The byte width of a scalar type.
 *
 * @example
 * ```ts
 * import { scalarSize } from "./numbers.ts";
 * scalarSize("u32"); // 4
 * ```
 */
export function scalarSize(type: ScalarType): number {
  return Number(type.slice(1)) / 8;
}

/**
 * Checks a type name.
 *
 * @example
 * ```ts
 * import { parseScalarType } from "./numbers.ts";
 * parseScalarType("u16", "gmem read"); // "u16"
 * ```
 * @throws {InvalidArgumentError} for anything but u8…u64 and i8…i64.
 */
export function parseScalarType(text: string, op: string): ScalarType {
  if ((SCALAR_TYPES as readonly string[]).includes(text)) return text as ScalarType;
  throw new InvalidArgumentError(op, "TYPE", text, `must be one of ${SCALAR_TYPES.join(", ")}, got "${text}"`);
}

/**
 * Parses a value for a scalar of `type`: hex or decimal, a leading `-` for signed types. Hex is
 * also accepted for a signed type as its two's-complement bit pattern (`i8 0xff` is -1).
 *
 * @example
 * ```ts
 * import { parseScalarValue } from "./numbers.ts";
 * parseScalarValue("-2", "i16", "gmem write"); // -2n
 * parseScalarValue("0xffff", "i16", "gmem write"); // -1n
 * ```
 * @throws {InvalidArgumentError} for malformed text or a value outside the type's range.
 */
export function parseScalarValue(text: string, type: ScalarType, op: string, what = "VALUE"): bigint {
  const bits = BigInt(scalarSize(type) * 8);
  const signed = type[0] === "i";
  const negative = text.startsWith("-");
  const body = negative ? text.slice(1) : text;
  if (!/^(0[xX][0-9a-fA-F_]+|[0-9_]+)$/.test(body) || body.endsWith("_")) {
    throw new InvalidArgumentError(op, what, text, `must be a ${type} in hex (0x…) or decimal, got "${text}"`);
  }
  const magnitude = BigInt(body.replaceAll("_", ""));
  const isHex = /^0[xX]/.test(body);
  const max = 1n << bits;
  if (!signed) {
    if (negative || magnitude >= max) {
      throw new InvalidArgumentError(op, what, text, `must fit in ${type} [0, ${max - 1n}], got ${text}`);
    }
    return magnitude;
  }
  const half = 1n << (bits - 1n);
  if (isHex && !negative) {
    if (magnitude >= max) {
      throw new InvalidArgumentError(op, what, text, `must fit in ${bits} bits for ${type}, got ${text}`);
    }
    return magnitude >= half ? magnitude - max : magnitude;
  }
  const value = negative ? -magnitude : magnitude;
  if (value < -half || value >= half) {
    throw new InvalidArgumentError(op, what, text, `must fit in ${type} [${-half}, ${half - 1n}], got ${text}`);
  }
  return value;
}

/**
 * Formats a scalar: hex of its bit pattern by default (`0x` + 2 digits per byte), decimal
 * (signed for i-types) with `decimal`.
 *
 * @example
 * ```ts
 * import { formatScalar } from "./numbers.ts";
 * formatScalar(-1n, "i8", false); // "0xff"
 * formatScalar(-1n, "i8", true); // "-1"
 * ```
 */
export function formatScalar(value: bigint, type: ScalarType, decimal: boolean): string {
  if (decimal) return value.toString();
  const size = scalarSize(type);
  const bits = value < 0n ? value + (1n << BigInt(size * 8)) : value;
  return `0x${bits.toString(16).padStart(size * 2, "0")}`;
}

/**
 * Formats a byte count for people: `4 KiB`, `1.5 GiB`, `100 bytes`.
 *
 * @example
 * ```ts
 * import { humanBytes } from "./numbers.ts";
 * humanBytes(64 * 2 ** 20); // "64 MiB"
 * ```
 */
export function humanBytes(n: number | bigint): string {
  const v = Number(n);
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  if (v < 1024) return `${v} byte${v === 1 ? "" : "s"}`;
  let u = -1, x = v;
  while (x >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  const shown = Number.isInteger(x) ? String(x) : x.toFixed(1);
  return `${shown} ${units[u]}`;
}
