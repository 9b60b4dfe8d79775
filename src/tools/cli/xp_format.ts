/**
 * QEMU monitor dumps (`xp /FMT ADDR`): the `/FMT` word (count, format letter, unit size) and the
 * lines QEMU prints for it, so a dump from gmem and one from QEMU's monitor compare line by line.
 * @module
 */

import { InvalidArgumentError } from "../../../mod.ts";

/** How each unit is printed: hex, signed or unsigned decimal, octal, or a quoted character. */
export type XpFormat = "x" | "d" | "u" | "o" | "c";

/** A parsed `/FMT`. */
export interface XpSpec {
  /** Units to show. */
  count: number;
  /** How each is printed. */
  format: XpFormat;
  /** Bytes per unit: 1 (b), 2 (h), 4 (w), 8 (g). */
  size: 1 | 2 | 4 | 8;
}

const SIZES: Readonly<Record<string, 1 | 2 | 4 | 8>> = { b: 1, h: 2, w: 4, g: 8 };
const FORMATS = "xduoc";
/** Most units one dump shows: QEMU has no limit, gmem bounds the buffer it reads (8 MiB of g units). */
export const XP_MAX_COUNT = 1 << 20;

/**
 * Parses `/FMT` as QEMU's monitor reads it: an optional count, then at most one format letter
 * (x d u o c) and one size letter (b h w g) in either order. Unset, the count is 1, the format x
 * and the size w (QEMU's start-up defaults; gmem keeps no state between runs), except that c
 * defaults to bytes. As in QEMU, c with a wider size shows COUNT × SIZE bytes, each as a character.
 *
 * @example
 * ```ts
 * import { parseXpFormat } from "./xp_format.ts";
 * parseXpFormat("/4xg", "gmem xp"); // { count: 4, format: "x", size: 8 }
 * ```
 * @throws {InvalidArgumentError} for anything else, naming the letter; `i` (disassembly) is
 *   refused with the reason.
 */
export function parseXpFormat(text: string, op: string): XpSpec {
  const m = /^\/([0-9]*)([a-zA-Z]*)$/.exec(text);
  const bad = (why: string) => new InvalidArgumentError(op, "/FMT", text, why);
  if (m === null) throw bad(`must be /[COUNT][FORMAT][SIZE] like /4xw, got "${text}"`);
  const count = m[1] === "" ? 1 : Number(m[1]);
  if (count === 0 || count > XP_MAX_COUNT) throw bad(`count must be from 1 to ${XP_MAX_COUNT}, got ${m[1]}`);
  let format: XpFormat | undefined;
  let size: 1 | 2 | 4 | 8 | undefined;
  for (const letter of m[2]) {
    if (letter === "i") throw bad("format i (disassembly) is not supported: gmem does not disassemble");
    if (FORMATS.includes(letter) && format === undefined) format = letter as XpFormat;
    else if (letter in SIZES && size === undefined) size = SIZES[letter];
    else {
      throw bad(`has "${letter}" where a format (x d u o c) or size (b h w g) may stand, each at most once`);
    }
  }
  format ??= "x";
  return { count, format, size: size ?? (format === "c" ? 1 : 4) };
}

/** Digits QEMU pads each unit to, per format and size. */
function digits(format: XpFormat, size: number): number {
  const bits = size * 8;
  if (format === "o") return Math.ceil(bits / 3);
  if (format === "x") return bits / 4;
  return Math.ceil((bits * 10) / 33);
}

function unitText(v: bigint, spec: XpSpec): string {
  const width = digits(spec.format, spec.size);
  switch (spec.format) {
    case "x":
      return `0x${v.toString(16).padStart(width, "0")}`;
    case "u":
      return v.toString().padStart(width);
    case "d": {
      // Signed at every size (QEMU sign-extends only g units), since that is what d asks for.
      const bits = BigInt(spec.size * 8);
      return BigInt.asIntN(Number(bits), v).toString().padStart(width);
    }
    case "o":
      return (v === 0n ? "0" : `0${v.toString(8)}`).padStart(width);
    case "c":
      return charText(Number(v));
  }
}

function charText(c: number): string {
  if (c === 0x27) return "'\\''";
  if (c === 0x5c) return "'\\\\'";
  if (c === 0x0a) return "'\\n'";
  if (c === 0x0d) return "'\\r'";
  if (c >= 0x20 && c <= 0x7e) return `'${String.fromCharCode(c)}'`;
  return `'\\x${c.toString(16).padStart(2, "0")}'`;
}

/**
 * The lines of a dump of `bytes` read from guest physical `addr`, as QEMU's `xp` prints them: a
 * 16-digit address and a colon, then 8 bytes a line for byte units, 16 bytes a line otherwise.
 *
 * @example
 * ```ts
 * import { formatXp } from "./xp_format.ts";
 * formatXp(0x1000n, Uint8Array.of(0, 1, 2, 3), { count: 2, format: "x", size: 2 }, false);
 * // ["0000000000001000: 0x0100 0x0302"]
 * ```
 */
export function formatXp(addr: bigint, bytes: Uint8Array, spec: XpSpec, bigEndian: boolean): string[] {
  const lineSize = spec.size === 1 ? 8 : 16;
  const step = spec.format === "c" ? 1 : spec.size;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lines: string[] = [];
  for (let off = 0; off < bytes.length; off += lineSize) {
    let line = `${(addr + BigInt(off)).toString(16).padStart(16, "0")}:`;
    const end = Math.min(off + lineSize, bytes.length);
    for (let i = off; i < end; i += step) line += ` ${unitText(unitAt(view, i, step, bigEndian), spec)}`;
    lines.push(line);
  }
  return lines;
}

function unitAt(view: DataView, at: number, size: number, bigEndian: boolean): bigint {
  const le = !bigEndian;
  switch (size) {
    case 1:
      return BigInt(view.getUint8(at));
    case 2:
      return BigInt(view.getUint16(at, le));
    case 4:
      return BigInt(view.getUint32(at, le));
    default:
      return view.getBigUint64(at, le);
  }
}
