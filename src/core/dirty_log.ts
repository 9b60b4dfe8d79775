/**
 * What a write reports to: a dirty bitmap, or a slice of one, indexed by byte offset.
 * @module
 */

import { AtomicBitmap, BitmapSlice } from "../bitmap/atomic_bitmap.ts";

/**
 * Anything that records written byte ranges. `AtomicBitmap` and its slices implement it.
 *
 * @example
 * ```ts
 * import type { DirtyLog } from "./dirty_log.ts";
 * const seen: Array<[number, number]> = [];
 * const log: DirtyLog = { markDirty: (offset, len) => void seen.push([offset, len]), dirtyAt: () => false };
 * log.markDirty(4096, 8);
 * ```
 */
export interface DirtyLog {
  /** Records that `[offset, offset + len)` was written. Must not allocate: it runs on every write. */
  markDirty(offset: number, len: number): void;
  /** Whether the page holding `offset` is dirty. */
  dirtyAt(offset: number): boolean;
}

/** Offsets a number holds exactly: the most any log can be asked to record. */
const NUMBER_REACH = 2 ** 53;

/**
 * How many bytes from offset 0 `log` records. An `AtomicBitmap` records its pages and drops marks
 * past them (as vm-memory's does), so a write there would go unlogged; a `BitmapSlice` records what
 * its bitmap does past its offset; any other log is taken to record every offset below 2^53. It
 * can grow (`AtomicBitmap.enlarge`), never shrink, so a reach checked earlier still holds.
 *
 * @example
 * ```ts
 * import { AtomicBitmap } from "../bitmap/atomic_bitmap.ts";
 * import { logReach } from "./dirty_log.ts";
 * console.log(logReach(new AtomicBitmap(10_000))); // 12288: three 4 KiB pages
 * ```
 */
export function logReach(log: DirtyLog): number {
  if (log instanceof AtomicBitmap) return Math.min(log.len * log.pageSize, NUMBER_REACH);
  if (log instanceof BitmapSlice) return Math.max(0, logReach(log.bitmap) - log.offset);
  return NUMBER_REACH;
}
