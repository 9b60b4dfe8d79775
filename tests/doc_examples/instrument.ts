/**
 * Turns an example into a module the runner can import: its imports point at the checkout (relative
 * ones from the file that holds the example, `@gmem/gmem…` through package.json's exports), and
 * each `console.log(…)` call site reports its arguments with the site's `// value` comment.
 * @module
 */

/** One `console.log` call site of an example and the comment written after it, if any. */
export interface LogSite {
  /** The 0-based line of the site within the example. */
  line: number;
  /** The text after `//` on the line where the call ends, or `undefined` when there is none. */
  comment: string | undefined;
}

/** An example ready to import: its module text and its call sites, in the order of `__docLog(k, …)`. */
export interface Instrumented {
  code: string;
  sites: LogSite[];
}

/**
 * Rewrites `code` (written in the file at `fromUrl`) for the runner; `packageMap` maps
 * `@gmem/gmem` subpaths to file URLs. Each `console.log(` becomes `__docLog(k, ` where `k` is the
 * index into `sites`.
 *
 * @example
 * ```ts
 * import { instrument } from "./instrument.ts";
 * const r = instrument('import { x } from "./a.ts";\nconsole.log(x); // 1', "file:///d/b.ts", {});
 * console.log(r.code.split("\n")[1], r.sites); // 'import { x } from "file:///d/a.ts";' [{ line: 1, comment: "1" }]
 * ```
 */
export function instrument(code: string, fromUrl: string, packageMap: Record<string, string>): Instrumented {
  const imports = code.replace(
    /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(["'])([^"']+)\2/g,
    (all, head: string, q: string, spec: string) => {
      const target = spec.startsWith("./") || spec.startsWith("../") ? new URL(spec, fromUrl).href : packageMap[spec];
      return target === undefined ? all : `${head}${q}${target}${q}`;
    },
  );
  const sites: LogSite[] = [];
  let out = "";
  let i = 0;
  for (;;) {
    const at = imports.indexOf("console.log(", i);
    if (at < 0) break;
    const lineStart = imports.lastIndexOf("\n", at) + 1;
    if (/^\s*\/\//.test(imports.slice(lineStart, at))) {
      out += imports.slice(i, at + "console.log(".length);
      i = at + "console.log(".length;
      continue;
    }
    const close = closingParen(imports, at + "console.log(".length - 1);
    const lineEnd = imports.indexOf("\n", close) < 0 ? imports.length : imports.indexOf("\n", close);
    const tail = /^\)\s*;?\s*(?:\}\s*)*\/\/\s?(.*)$/.exec(imports.slice(close, lineEnd));
    const line = imports.slice(0, at).split("\n").length - 1;
    out += `${imports.slice(i, at)}__docLog(${sites.length}, `;
    sites.push({ line, comment: tail ? tail[1].trim() : commentLinesAfter(imports, lineEnd) });
    i = at + "console.log(".length;
  }
  out += imports.slice(i);
  return { code: `const __docLog = globalThis.__gmemDocLog;\n${out}`, sites };
}

/**
 * The output written as comment lines right below a call whose line has no comment (for text of
 * several lines): `console.log(table);` then `// line 1`, `// line 2`, joined by newlines.
 */
function commentLinesAfter(text: string, lineEnd: number): string | undefined {
  const lines: string[] = [];
  for (const line of text.slice(lineEnd + 1).split("\n")) {
    const m = /^\s*\/\/ ?(.*)$/.exec(line);
    if (!m) break;
    lines.push(m[1]);
  }
  return lines.length === 0 ? undefined : lines.join("\n");
}

/** The index of the `)` that closes the `(` at `open`, skipping strings, templates and comments. */
function closingParen(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'" || c === "`") {
      for (i++; i < text.length && text[i] !== c; i++) if (text[i] === "\\") i++;
    } else if (c === "/" && text[i + 1] === "/") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (c === "(") {
      depth++;
    } else if (c === ")" && --depth === 0) {
      return i;
    }
  }
  return text.length;
}
