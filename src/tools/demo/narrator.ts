/**
 * How the demo talks: numbered steps with indented detail lines, and key lines that `--quiet`
 * keeps.
 * @module
 */

/** Prints the demo's story. */
export class Narrator {
  readonly #quiet: boolean;
  readonly #write: (line: string) => void;
  #step = 0;

  /** Prints with `write` (console.log by default); `quiet` keeps only key lines. */
  constructor(quiet: boolean, write: (line: string) => void = (l) => console.log(l)) {
    this.#quiet = quiet;
    this.#write = write;
  }

  /** Starts the next numbered step. */
  step(title: string): void {
    this.#step++;
    if (!this.#quiet) this.#write(`\n${this.#step}. ${title}`);
  }

  /** A detail line of the current step (indented; multi-line text keeps its own indentation). */
  line(text = ""): void {
    if (this.#quiet) return;
    for (const l of text.split("\n")) this.#write(l === "" ? "" : `   ${l}`);
  }

  /** A line printed even with `--quiet`. */
  key(text: string): void {
    this.#write(this.#quiet ? text.trimStart() : `   ${text}`);
  }

  /** A line outside the steps (heading, closing words). */
  plain(text: string): void {
    if (!this.#quiet) this.#write(text);
  }
}

/**
 * Waits (without blocking the event loop) until `done()` is true; throws naming `what` after
 * `ms` milliseconds.
 *
 * @example
 * ```ts ignore
 * await waitUntil(() => channel.messagesApplied >= 5, "the front-end's updates");
 * ```
 */
export async function waitUntil(done: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}
