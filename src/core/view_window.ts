/**
 * `ViewWindow`: the record a memory lookup returns for the scalar and copy fast paths (which typed
 * arrays hold a range, where its writes are logged), and the view capability a backend may offer.
 * @module
 */

import type { DirtyLog } from "./dirty_log.ts";

/**
 * Typed arrays over one stretch of memory, one per element size, and whether it could be read and
 * written when they were made: what a naturally aligned scalar access needs (one element of the
 * matching array is one machine access). `RegionViews` is the mmap backend's; a backend over other
 * buffers supplies its own.
 *
 * @example
 * ```ts
 * import type { ElementViews } from "./view_window.ts";
 * function firstWord(v: ElementViews): number {
 *   return v.readable === true && v.u32.length > 0 ? v.u32[0] : -1;
 * }
 * ```
 */
export interface ElementViews {
  /** Bytes. */
  readonly u8: Uint8Array<ArrayBuffer>;
  /** 16-bit elements (aligned offsets only). */
  readonly u16: Uint16Array<ArrayBuffer>;
  /** 32-bit elements. */
  readonly u32: Uint32Array<ArrayBuffer>;
  /** 64-bit elements. */
  readonly u64: BigUint64Array<ArrayBuffer>;
  /** 32-bit floats. */
  readonly f32: Float32Array<ArrayBuffer>;
  /** 64-bit floats. */
  readonly f64: Float64Array<ArrayBuffer>;
  /** The memory could be read when the views were made. */
  readonly readable: boolean;
  /** The memory could be written when the views were made. */
  readonly writable: boolean;
  /** Whether the memory is gone for good (a closed mapping): every access must fail. */
  readonly closed: boolean;
  /**
   * The host address of byte 0 as a number, when the views are over host memory that native code
   * may copy to and from (the mmap backend's); absent otherwise, and then copies use the arrays.
   */
  readonly host?: number;
  /**
   * Brings stale views up to date (a replaced buffer, a changed protection), or throws why the
   * memory cannot be used (`RegionClosedError` under `op`). Called only off the fast path.
   */
  refresh(op: string): void;
}

/**
 * Where a located range lives: addresses `[start, end)` are the view offsets `address + delta` of
 * `views`, and a write at view offset `o` is logged at `logBase + o` in `log`. All numbers are
 * exact (below 2^53). A lookup returns one of these; the caller reads it and keeps nothing it does
 * not own, so results never travel through fields of another object.
 *
 * @example
 * ```ts
 * import type { ViewWindow } from "./view_window.ts";
 * function readU8At(w: ViewWindow, addr: number): number {
 *   return w.views.u8[addr + w.delta];
 * }
 * ```
 */
export interface ViewWindow {
  /** The typed arrays that hold the window. */
  readonly views: ElementViews;
  /** Where writes are logged, if anywhere. */
  readonly log: DirtyLog | undefined;
  /** Added to a view offset to get the log offset. */
  readonly logBase: number;
  /** Added to an address of the window to get its view offset. */
  readonly delta: number;
  /** The window's first address. */
  readonly start: number;
  /** The window's end (exclusive). */
  readonly end: number;
}

/**
 * The view capability of a memory backend: it can say which typed arrays hold a range, so that
 * translation layers (an `IommuMemory`) serve scalars and copies straight from them. A backend
 * without it is used through its slices only.
 *
 * @example
 * ```ts
 * import type { ViewLocator } from "./view_window.ts";
 * function holds(m: ViewLocator, addr: number): boolean {
 *   return m.locateWindow(addr, 1) !== undefined;
 * }
 * ```
 */
export interface ViewLocator {
  /**
   * The window holding all of `[addr, addr + size)` (guest physical addresses), or `undefined` if
   * no single window does (a hole, a region or view boundary inside, an address that is not a
   * non-negative integer below 2^53). Must not throw or allocate: it runs on every access that
   * misses a cache.
   */
  locateWindow(addr: number, size: number): ViewWindow | undefined;
}

/**
 * Whether `memory` offers {@link ViewLocator}.
 *
 * @example
 * ```ts
 * import { hasViews } from "./view_window.ts";
 * console.log(hasViews({})); // false
 * ```
 */
export function hasViews(memory: object): memory is ViewLocator {
  return typeof (memory as Partial<ViewLocator>).locateWindow === "function";
}
