/**
 * The inspection text of an `AtomicBitmap` (what `console.log(bitmap)` shows): its geometry and
 * the dirty runs, bounded so that a huge bitmap prints a screenful, not megabytes.
 * @module
 */

import { hex } from "../core/format.ts";
import { plural, sizeText } from "../core/inspect_text.ts";

/** Runs listed before the rest are summarised in one line. */
const MAX_RUNS = 16;

/** What the text is made of: the public state of a bitmap. */
export interface BitmapShape {
  /** Bytes covered. */
  readonly byteSize: number;
  /** Bytes per bit. */
  readonly pageSize: number;
  /** Number of bits. */
  readonly len: number;
  /** The dirty `[start, length]` byte runs. */
  dirtyRuns(): Array<[start: number, length: number]>;
}

/**
 * The number of pages in dirty runs of a bitmap with `pageSize`-byte pages (a run's last page may
 * be clipped to the bitmap's end, and still counts as one page).
 *
 * @example
 * ```ts
 * import { dirtyPageCount } from "./inspect_bitmap.ts";
 * console.log(dirtyPageCount([[0, 4096], [8192, 100]], 4096)); // 2
 * ```
 */
export function dirtyPageCount(runs: ReadonlyArray<readonly [number, number]>, pageSize: number): number {
  let pages = 0;
  for (const [, length] of runs) pages += Math.ceil(length / pageSize);
  return pages;
}

/**
 * The text `console.log` shows for a bitmap: one summary line, then up to 16 dirty runs as
 * half-open hex byte ranges with their page counts.
 *
 * @example
 * ```ts
 * import { AtomicBitmap } from "./atomic_bitmap.ts";
 * import { inspectBitmap } from "./inspect_bitmap.ts";
 * const b = new AtomicBitmap(0x4000);
 * b.markDirty(0x1000, 0x2000);
 * console.log(inspectBitmap(b));
 * // AtomicBitmap: 0x4000 bytes, 4 pages of 4 KiB, 2 dirty pages in 1 run
 * //   [0x1000, 0x3000)  2 pages
 * ```
 */
export function inspectBitmap(bitmap: BitmapShape, name = "AtomicBitmap"): string {
  const runs = bitmap.dirtyRuns();
  const dirty = dirtyPageCount(runs, bitmap.pageSize);
  const head =
    `${name}: ${hex(bitmap.byteSize)} bytes, ${plural(bitmap.len, "page")} of ${sizeText(bitmap.pageSize)}, ` +
    (dirty === 0 ? "clean" : `${plural(dirty, "dirty page")} in ${plural(runs.length, "run")}`);
  const lines = [head];
  for (const [start, length] of runs.slice(0, MAX_RUNS)) {
    lines.push(`  [${hex(start)}, ${hex(start + length)})  ${plural(Math.ceil(length / bitmap.pageSize), "page")}`);
  }
  if (runs.length > MAX_RUNS) lines.push(`  … ${plural(runs.length - MAX_RUNS, "more run")}`);
  return lines.join("\n");
}
