/**
 * `find`: where a byte pattern occurs in a guest physical range. Searches the mappings in place
 * (read-only views, no copies), across region boundaries where regions touch; holes are skipped.
 * @module
 */

import { InvalidArgumentError } from "../../../mod.ts";
import { hex } from "../text.ts";
import { hasFlag, optionValue } from "./args.ts";
import { type Command, MEMORY_OPTIONS, withMemory, words } from "./command.ts";
import { parseLength, parseU64 } from "./numbers.ts";
import { holes, splitByRegions } from "./segments.ts";

const CHUNK = 16 * 2 ** 20;

/**
 * Parses a pattern: hex bytes (`deadbeef`, `de ad be ef`, `de:ad:be:ef`, an optional `0x`), or
 * UTF-8 text with `text`.
 *
 * @example
 * ```ts
 * import { parsePattern } from "./cmd_find.ts";
 * parsePattern("de:ad", false, "gmem find"); // Uint8Array [0xde, 0xad]
 * ```
 * @throws {InvalidArgumentError} for an empty pattern, or hex with an odd digit count or a non-hex character.
 */
export function parsePattern(text: string, asText: boolean, op: string): Uint8Array {
  if (asText) {
    if (text === "") throw new InvalidArgumentError(op, "PATTERN", text, "must not be empty");
    return new TextEncoder().encode(text);
  }
  const digits = text.replace(/^0[xX]/, "").replace(/[\s:]/g, "");
  if (digits === "" || digits.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(digits)) {
    throw new InvalidArgumentError(
      op,
      "PATTERN",
      text,
      `must be hex bytes like deadbeef or de:ad:be:ef (or text with --text), got "${text}"`,
    );
  }
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Offsets in `hay` where `needle` starts, from `from`, at most `max - found` of them. */
function scan(hay: Uint8Array, needle: Uint8Array, from: number, limit: number, hit: (at: number) => boolean): void {
  const first = needle[0];
  const last = hay.length - needle.length;
  let i = hay.indexOf(first, from);
  while (i >= 0 && i <= last && i < limit) {
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length && !hit(i)) return;
    i = hay.indexOf(first, i + 1);
  }
}

const find: Command = {
  name: "find",
  usage: "find ADDR LEN PATTERN",
  summary: "list where PATTERN (hex bytes, or --text) starts in [ADDR, ADDR+LEN); exit 1 if nowhere",
  options: [...MEMORY_OPTIONS, "text", "max"],
  run(ctx) {
    const [a, l, p] = words(ctx, ["ADDR", "LEN", "PATTERN"]);
    const addr = parseU64(a, ctx.op, "ADDR");
    const len = parseLength(l, ctx.op, "LEN");
    const needle = parsePattern(p, hasFlag(ctx.args, "text"), ctx.op);
    const maxText = optionValue(ctx.args, "max");
    const max = maxText === undefined ? 100 : parseLength(maxText, ctx.op, "--max");
    return withMemory(ctx, false, ({ mem }) => {
      const segs = splitByRegions(mem, addr, len, ctx.op);
      const matches: bigint[] = [];
      let truncated = false;
      const report = (at: bigint): boolean => {
        if (matches.length >= max) {
          truncated = true;
          return false;
        }
        matches.push(at);
        ctx.out.line(hex(at));
        return true;
      };
      const progress = ctx.out.progress(ctx.op, len);
      // The tail of the previous chunk, kept while the next chunk continues it in guest memory,
      // so that a match across two chunks or two touching regions is found.
      let carry = new Uint8Array(0);
      let carryAt = 0n;
      for (const s of segs) {
        if (s.region === undefined) {
          carry = new Uint8Array(0);
          progress.advance(s.length);
          continue;
        }
        const base = Number(s.addr - s.region.startAddr);
        for (let off = 0; off < s.length && !truncated; off += CHUNK) {
          const n = Math.min(CHUNK, s.length - off);
          const view = s.region.mmap.unsafeBytes(base + off, n);
          const at = s.addr + BigInt(off);
          if (carry.length > 0 && carryAt + BigInt(carry.length) === at) {
            const joint = new Uint8Array(carry.length + Math.min(n, needle.length - 1));
            joint.set(carry);
            joint.set(view.subarray(0, joint.length - carry.length), carry.length);
            scan(joint, needle, 0, carry.length, (i) => report(carryAt + BigInt(i)));
          }
          if (!truncated) scan(view, needle, 0, n, (i) => report(at + BigInt(i)));
          const keep = Math.min(needle.length - 1, n);
          carry = view.slice(n - keep);
          carryAt = at + BigInt(n - keep);
          progress.advance(n);
        }
        if (truncated) break;
      }
      progress.done();
      if (truncated) console.error(`${ctx.op}: stopped after ${max} match${max === 1 ? "" : "es"} (--max)`);
      ctx.out.result(
        {
          addr: hex(addr),
          length: len,
          pattern: [...needle].map((b) => b.toString(16).padStart(2, "0")).join(""),
          matches: matches.map((m) => hex(m)),
          truncated,
          skipped: holes(segs).map((h) => ({ addr: hex(h.addr), length: h.length })),
        },
        "",
      );
      return matches.length > 0 ? 0 : 1;
    });
  },
};

/**
 * The search command.
 *
 * @example
 * ```ts
 * import { FIND_COMMANDS } from "./cmd_find.ts";
 * console.log(FIND_COMMANDS[0].name); // "find"
 * ```
 */
export const FIND_COMMANDS: readonly Command[] = [find];
