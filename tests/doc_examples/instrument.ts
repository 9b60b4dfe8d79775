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
  const claims = printClaims(imports);
  const sites: LogSite[] = [];
  let out = "";
  let i = 0;
  for (;;) {
    const at = claims.indexOf("console.log(", i);
    if (at < 0) break;
    const lineStart = claims.lastIndexOf("\n", at) + 1;
    if (/^\s*\/\//.test(claims.slice(lineStart, at))) {
      out += claims.slice(i, at + "console.log(".length);
      i = at + "console.log(".length;
      continue;
    }
    const close = closingParen(claims, at + "console.log(".length - 1);
    const lineEnd = claims.indexOf("\n", close) < 0 ? claims.length : claims.indexOf("\n", close);
    const tail = /^\)\s*;?\s*(?:\}\s*)*\/\/\s?(.*)$/.exec(claims.slice(close, lineEnd));
    const line = claims.slice(0, at).split("\n").length - 1;
    out += `${claims.slice(i, at)}__docLog(${sites.length}, `;
    sites.push({ line, comment: tail ? tail[1].trim() : commentLinesAfter(claims, lineEnd) });
    i = at + "console.log(".length;
  }
  out += claims.slice(i);
  return { code: `const __docLog = globalThis.__gmemDocLog;\n${out}`, sites };
}

/**
 * A statement that is a call followed by a comment that starts like a value: `f(1); // 3`. Not a
 * comment that starts with a half-open range (`[0, 10) remains`), which describes, not prints.
 */
const CLAIM =
  /^(\s*)(?!\/\/|(?:const|let|var|using|return|throw|if|for|while|import|export|yield|new)\b)([^=]*?\));\s*\/\/\s*(?!\[[^\]]*\))((?:true|false|null|undefined|-?\d|"|'|\[|\{).*)$/;

/**
 * The examples' claims made without console.log, written as console.log so that they are checked
 * too: a line `f(1); // 3` that starts a statement and holds one whole call expression becomes
 * `console.log(f(1)); // 3`.
 */
function printClaims(code: string): string {
  const lines = code.split("\n");
  let previous = "";
  for (let k = 0; k < lines.length; k++) {
    const m = CLAIM.exec(lines[k]);
    const startsStatement = previous === "" || /[;{}]$/.test(previous) || previous.startsWith("//");
    if (m && startsStatement && !m[2].includes("console.log") && balanced(m[2])) {
      lines[k] = `${m[1]}console.log(${m[2]}); // ${m[3]}`;
    }
    if (lines[k].trim() !== "") previous = lines[k].trim();
  }
  return lines.join("\n");
}

/** Whether the parentheses, brackets and braces of `expr` (outside strings) close as they open. */
function balanced(expr: string): boolean {
  let depth = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (c === '"' || c === "'" || c === "`") {
      for (i++; i < expr.length && expr[i] !== c; i++) if (expr[i] === "\\") i++;
    } else if ("([{".includes(c)) {
      depth++;
    } else if (")]}".includes(c) && --depth < 0) {
      return false;
    }
  }
  return depth === 0;
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
