/**
 * What a write reports to: a dirty bitmap, or a slice of one, indexed by byte offset.
 * @module
 */

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
