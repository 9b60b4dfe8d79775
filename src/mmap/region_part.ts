/**
 * `RegionPart`: the stretch of a guest region that one view covers, the unit that lookups, slices
 * and the scalar fast paths work in.
 * @module
 */

import type { DirtyLog } from "../core/dirty_log.ts";
import type { RegionViews } from "../core/region_views.ts";

/**
 * What a part needs of the region it belongs to (a `GuestRegionMmap`, which declares the type of its
 * parts as `RegionPart<GuestRegionMmap>`).
 *
 * @example
 * ```ts ignore
 * const owner: PartOwner = { startAddr: 0x1000n, bitmap: undefined };
 * ```
 */
export interface PartOwner {
  /** First guest address. */
  readonly startAddr: bigint;
  /** The region's dirty log, if it tracks writes. */
  readonly bitmap: DirtyLog | undefined;
}
import type { ViewWindow } from "../core/view_window.ts";

/**
 * One view's worth of a guest region. A region is one part unless the runtime caps an ArrayBuffer
 * below its size (Bun: 4 GiB); then each part covers `viewSize` bytes (the last one the rest), and
 * every range that crosses from one part to the next is split there, as at a region boundary.
 * Library-internal.
 *
 * @example
 * ```ts ignore
 * const part = region.parts[0];
 * part.views.u8[0] = 1; // region offset part.offset + 0
 * ```
 */
export class RegionPart<R extends PartOwner = PartOwner> {
  /** The region this part belongs to. */
  readonly region: R;
  /** The views over this part (view offset 0 is region offset {@link RegionPart.offset}). */
  readonly views: RegionViews;
  /** Region offset of the first byte; also where its writes are logged in the region's bitmap. */
  readonly offset: number;
  /** Length in bytes. */
  readonly len: number;
  /** First guest address. */
  readonly startAddr: bigint;
  /** Last guest address (inclusive). */
  readonly lastAddr: bigint;
  /** `startAddr` as a number (exact when {@link RegionPart.numeric}). */
  readonly startNumber: number;
  /** Whether the whole part lies below 2^53, so number addresses reach it. */
  readonly numeric: boolean;
  /** The region's dirty log, if it tracks writes. */
  readonly bitmap: DirtyLog | undefined;
  /** Whether this is the region's last part (its end is the region's end, not a view seam). */
  readonly last: boolean;
  /** The part as the record a lookup returns, by guest address; undefined unless {@link RegionPart.numeric}. */
  readonly window: ViewWindow | undefined;

  /** Describes `views` as a part of `region`. */
  constructor(region: R, views: RegionViews, last: boolean) {
    this.region = region;
    this.views = views;
    this.offset = views.offset;
    this.len = views.length;
    this.startAddr = region.startAddr + BigInt(views.offset);
    this.lastAddr = this.startAddr + BigInt(views.length) - 1n;
    this.startNumber = Number(this.startAddr);
    this.numeric = region.startAddr + BigInt(views.offset + views.length) <= 2n ** 53n;
    this.bitmap = region.bitmap;
    this.last = last;
    this.window = this.numeric
      ? {
        views,
        log: this.bitmap,
        logBase: this.offset,
        delta: -this.startNumber,
        start: this.startNumber,
        end: this.startNumber + this.len,
      }
      : undefined;
  }
}
