/**
 * The hexdump format: 16 bytes a line, address, hex in two groups of eight, printable ASCII.
 * Bytes that no region backs (holes) show as `--` and a space. The address carries `0x` so that
 * it can be pasted back into any gmem command as it is.
 * @module
 */

/**
 * Formats `bytes` read from guest address `addr`; `backed[i]` is 0 for a byte in a hole.
 *
 * @example
 * ```ts
 * import { formatHexdump } from "./hexdump.ts";
 * formatHexdump(0x1000n, new TextEncoder().encode("gmem"), new Uint8Array([1, 1, 1, 1]));
 * // "0x0000000000001000  67 6d 65 6d                                       |gmem|"
 * ```
 */
export function formatHexdump(addr: bigint, bytes: Uint8Array, backed: Uint8Array): string {
  const lines: string[] = [];
  const last = addr + BigInt(Math.max(bytes.length, 1) - 1);
  const width = Math.max(16, last.toString(16).length);
  for (let off = 0; off < bytes.length; off += 16) {
    const n = Math.min(16, bytes.length - off);
    let hexPart = "";
    let text = "";
    for (let i = 0; i < 16; i++) {
      if (i === 8) hexPart += " ";
      if (i < n) {
        const b = bytes[off + i];
        const inRam = backed[off + i] !== 0;
        hexPart += inRam ? `${b.toString(16).padStart(2, "0")} ` : "-- ";
        text += inRam ? (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".") : " ";
      } else {
        hexPart += "   ";
      }
    }
    const at = (addr + BigInt(off)).toString(16).padStart(width, "0");
    lines.push(`0x${at}  ${hexPart} |${text}|`);
  }
  return lines.join("\n");
}

/**
 * The bytes as one hex string, `--` for bytes in holes (the `--json` form of a dump).
 *
 * @example
 * ```ts
 * import { hexString } from "./hexdump.ts";
 * hexString(new Uint8Array([0xde, 0xad]), new Uint8Array([1, 0])); // "de--"
 * ```
 */
export function hexString(bytes: Uint8Array, backed: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += backed[i] !== 0 ? bytes[i].toString(16).padStart(2, "0") : "--";
  return s;
}
