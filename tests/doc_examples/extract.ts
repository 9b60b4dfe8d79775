/**
 * Finds the TypeScript examples of the documentation: the code fences tagged `ts` (or
 * `typescript`) of markdown files and of JSDoc comments. A fence whose info string says `ignore` is listed but not run (Deno's convention),
 * for the few examples that need what CI does not have (a QEMU guest, a second terminal).
 * @module
 */

/** One example: where it is written, and its code. */
export interface Example {
  /** The file it comes from, as given to {@link extractExamples}. */
  file: string;
  /** The 1-based line of the file where the code starts (the line after the opening fence). */
  line: number;
  /** The code, without fences and without JSDoc's leading `*`. */
  code: string;
  /** Whether the fence asks not to run it (`ts ignore`). */
  ignore: boolean;
}

const FENCE = /^(`{3,})\s*(ts|typescript|tsx)\b(.*)$/;

/**
 * The examples of one file: every `ts` fence of a markdown file (`.md`), or every `ts` fence
 * inside a `/** … *\/` comment of a TypeScript file.
 *
 * @example
 * ```ts
 * import { extractExamples } from "./extract.ts";
 * const fence = "`".repeat(3);
 * const md = `text\n${fence}ts\nconsole.log(1); // 1\n${fence}\n`;
 * console.log(extractExamples("a.md", md).map((e) => [e.line, e.code])); // [[3, "console.log(1); // 1"]]
 * ```
 */
export function extractExamples(file: string, text: string): Example[] {
  const lines = text.split("\n");
  return file.endsWith(".md") ? fences(file, lines, (l) => l) : fences(file, lines, jsdocLine, inJsdoc(lines));
}

/** A JSDoc line without its leading ` * `, or `undefined` for a line outside any comment text. */
function jsdocLine(line: string): string {
  const m = /^\s*\*(?: |$)(.*)$/.exec(line);
  return m ? m[1] : line.trim() === "*" ? "" : line;
}

/** Which lines lie inside a `/** … *\/` comment. */
function inJsdoc(lines: readonly string[]): boolean[] {
  const inside: boolean[] = [];
  let open = false;
  for (const line of lines) {
    if (!open && /^\s*\/\*\*/.test(line)) open = true;
    inside.push(open);
    if (open && line.includes("*/")) open = false;
  }
  return inside;
}

function fences(
  file: string,
  lines: readonly string[],
  strip: (line: string) => string,
  allowed?: readonly boolean[],
): Example[] {
  const out: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (allowed && !allowed[i]) continue;
    const open = FENCE.exec(strip(lines[i]).trim());
    if (!open) continue;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && (!allowed || allowed[j]); j++) {
      const text = strip(lines[j]);
      if (text.trim().startsWith(open[1])) break;
      body.push(text);
    }
    out.push({ file, line: i + 2, code: body.join("\n"), ignore: /\bignore\b/.test(open[3]) });
    i = j;
  }
  return out;
}
