/**
 * Where `gmem` writes: results on stdout (text, or one JSON document with `--json`), progress of
 * long operations on stderr.
 * @module
 */

import { humanBytes } from "./numbers.ts";

const encoder = new TextEncoder();

/** Writes every byte of `text` to a stream (a plain `writeSync` may write only part of it). */
function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
}

/**
 * The result channel of a command.
 *
 * @example
 * ```ts
 * import { Output } from "./output.ts";
 * const out = new Output(false, true);
 * out.result({ value: "0x1" }, "0x1"); // prints "0x1"
 * ```
 */
export class Output {
  /** Whether results are JSON. */
  readonly json: boolean;
  /** Whether progress is suppressed. */
  readonly quiet: boolean;

  /** Creates the channel for `--json` / `--quiet`. */
  constructor(json: boolean, quiet: boolean) {
    this.json = json;
    this.quiet = quiet;
  }

  /**
   * Prints the command's result: `data` as JSON with `--json`, else `text` (lines, or a function
   * that builds them, so that text is only formatted when shown).
   */
  result(data: unknown, text: string | (() => string)): void {
    if (this.json) {
      writeAll(Deno.stdout, `${JSON.stringify(data, jsonValue, 2)}\n`);
    } else {
      const t = typeof text === "function" ? text() : text;
      if (t !== "") writeAll(Deno.stdout, t.endsWith("\n") ? t : `${t}\n`);
    }
  }

  /** Prints one line of text output as it is produced (for long listings); nothing with `--json`. */
  line(text: string): void {
    if (!this.json) writeAll(Deno.stdout, `${text}\n`);
  }

  /** A progress reporter for an operation over `total` bytes (silent when small or `--quiet`). */
  progress(what: string, total: number): Progress {
    return new Progress(what, total, this.quiet || total < PROGRESS_MIN_BYTES);
  }
}

/** Operations smaller than this report no progress. */
export const PROGRESS_MIN_BYTES = 64 * 2 ** 20;

/** Bytes between two progress lines when stderr is not a terminal. */
const LINE_EVERY = 256 * 2 ** 20;

/**
 * Progress of a long operation on stderr: a line rewritten in place on a terminal, otherwise a line
 * per 256 MiB and a final one.
 *
 * @example
 * ```ts
 * import { Progress } from "./output.ts";
 * const p = new Progress("gmem save", 1 << 30, false);
 * p.advance(1 << 29);
 * p.done();
 * ```
 */
export class Progress {
  readonly #what: string;
  readonly #total: number;
  readonly #silent: boolean;
  readonly #tty: boolean;
  #done = 0;
  #lastLine = 0;
  #lastDraw = 0;

  /** Creates a reporter; `silent` turns it off. */
  constructor(what: string, total: number, silent: boolean) {
    this.#what = what;
    this.#total = total;
    this.#silent = silent;
    this.#tty = !silent && Deno.stderr.isTerminal();
  }

  /** Records `bytes` more as done. */
  advance(bytes: number): void {
    this.#done += bytes;
    if (this.#silent) return;
    if (this.#tty) {
      const now = Date.now();
      if (now - this.#lastDraw >= 100) {
        this.#lastDraw = now;
        writeAll(Deno.stderr, `\r${this.#text()}\x1b[K`);
      }
    } else if (this.#done - this.#lastLine >= LINE_EVERY && this.#done < this.#total) {
      this.#lastLine = this.#done;
      writeAll(Deno.stderr, `${this.#text()}\n`);
    }
  }

  /** Prints the final line. */
  done(): void {
    if (this.#silent) return;
    writeAll(Deno.stderr, this.#tty ? `\r${this.#text()}\x1b[K\n` : `${this.#text()}\n`);
  }

  #text(): string {
    const pct = this.#total === 0 ? 100 : Math.floor((this.#done / this.#total) * 100);
    return `${this.#what}: ${humanBytes(this.#done)} of ${humanBytes(this.#total)} (${pct}%)`;
  }
}

/** JSON replacer: bigints (never expected in results, which use hex strings) become strings. */
function jsonValue(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
