/**
 * Compares what an example printed with the `// value` comment written beside its `console.log`.
 * The comment is read the way people write it: a string may be quoted or not, arrays may be
 * `[1, 2]` or Deno's `[ 1, 2 ]`, bigints carry their `n`; so both sides lose their whitespace outside
 * string literals, and the printed values are tried in each spelling that could honestly be meant.
 * @module
 */

import { inspect } from "node:util";

/**
 * Whether `comment` (the text after `//`) says what `args` (one console.log call's arguments)
 * print.
 *
 * @example
 * ```ts
 * import { matchesComment } from "./compare.ts";
 * console.log(matchesComment(["cafe", 3n], '"cafe" 3n'), matchesComment([[1, 2]], "[1, 3]")); // true false
 * ```
 */
export function matchesComment(args: readonly unknown[], comment: string): boolean {
  return matchesSpellings(spellings(args), comment);
}

/**
 * Whether `comment` is one of `spellings` (from {@link spellings}), whitespace aside.
 *
 * @example
 * ```ts
 * import { matchesSpellings, spellings } from "./compare.ts";
 * console.log(matchesSpellings(spellings([[1, 2]]), "[ 1, 2 ]")); // true
 * ```
 */
export function matchesSpellings(spellings: readonly string[], comment: string): boolean {
  const wants = readings(comment.trim()).map(pattern);
  return spellings.some((s) => wants.some((w) => w.test(squash(s))));
}

/**
 * The comment, and the comment cut before prose that follows the value: `7: the same pages`,
 * `-1 (runs past the entry)`, `0, and …` or `12 — …` claim 7, -1, 0 and 12.
 */
function readings(comment: string): string[] {
  const out = [comment];
  for (const sep of [": ", " (", ", ", " — "]) {
    let at = comment.indexOf(sep);
    while (at > 0) {
      out.push(comment.slice(0, at));
      at = comment.indexOf(sep, at + 1);
    }
  }
  return out;
}

/** The squashed comment as an anchored pattern in which `…` stands for any text (a host address, an fd). */
function pattern(comment: string): RegExp {
  const parts = squash(comment).split("…").map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join(".*?")}$`, "s");
}

/**
 * The ways the arguments of one call may be written: quoted or bare top-level strings, compact or
 * the runtime's own form.
 *
 * @example
 * ```ts
 * import { spellings } from "./compare.ts";
 * console.log(spellings(["a"]).slice(0, 2)); // ['"a"', "a"]
 * ```
 */
export function spellings(args: readonly unknown[]): string[] {
  const compact = (quoteTop: boolean, typed: TypedName) => args.map((a) => show(a, quoteTop, false, typed)).join(" ");
  const jsonKeys = args.map((a) => show(a, true, true, "none")).join(" ");
  const runtime = args.map((a) => typeof a === "string" ? a : inspect(a, { depth: 8, breakLength: Infinity })).join(
    " ",
  );
  const runtimeQuoted = args.map((a) => inspect(a, { depth: 8, breakLength: Infinity })).join(" ");
  const typedNames: TypedName[] = ["none", "name", "length"];
  return [...typedNames.flatMap((t) => [compact(true, t), compact(false, t)]), jsonKeys, runtime, runtimeQuoted];
}

/** How a typed array may be introduced: `[1, 2]`, `Uint8Array [1, 2]` or `Uint8Array(2) [1, 2]`. */
type TypedName = "none" | "name" | "length";

/** A value in the compact notation the examples use: `[1, 2]`, `{ a: 1 }`, `"text"`, `5n`. */
function show(v: unknown, quote: boolean, jsonKeys: boolean, typed: TypedName = "none"): string {
  if (typeof v === "string") return quote ? JSON.stringify(v) : v;
  if (typeof v === "bigint") return `${v}n`;
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (v === null || typeof v !== "object") return String(v);
  if (Array.isArray(v)) return `[${v.map((x) => show(x, true, jsonKeys, typed)).join(", ")}]`;
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    const items = Array.from(v as unknown as ArrayLike<number | bigint>, (x) => show(x, true, jsonKeys));
    const name = v.constructor.name;
    const head = typed === "none" ? "" : typed === "name" ? `${name} ` : `${name}(${items.length}) `;
    return `${head}[${items.join(", ")}]`;
  }
  if (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null) {
    const entries = Object.entries(v as Record<string, unknown>).map(([k, x]) =>
      `${jsonKeys || !/^[A-Za-z_$][\w$]*$/.test(k) ? JSON.stringify(k) : k}: ${show(x, true, jsonKeys, typed)}`
    );
    return `{ ${entries.join(", ")} }`;
  }
  return inspect(v, { depth: 8, breakLength: Infinity });
}

/** Text without whitespace outside string literals (single, double or back quotes). */
export function squash(text: string): string {
  let out = "";
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      out += c;
      if (c === "\\" && i + 1 < text.length) out += text[++i];
      else if (c === quote) quote = "";
    } else if (c === '"' || c === "'" || c === "`") {
      quote = c;
      out += c;
    } else if (!/\s/.test(c)) {
      out += c;
    }
  }
  return out;
}
