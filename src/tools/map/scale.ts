/**
 * A broken, logarithmic axis for address spaces: a 4 KiB mapping next to a 4 GiB region must both
 * be visible, and a 1 TiB gap between them must not eat the picture.
 * @module
 */

/** One piece of the axis: covered by something drawn, or a gap that is cut out. */
export interface ScalePiece {
  /** First address. */
  start: bigint;
  /** One past the last address. */
  end: bigint;
  /** Left edge in pixels. */
  x0: number;
  /** Right edge in pixels. */
  x1: number;
  /** False for a gap between drawn things (shown shortened, whatever its size). */
  covered: boolean;
}

/** Pixels a gap gets, at most. */
const GAP_PX = 64;
/** Gaps together take at most this share of the width. */
const GAP_SHARE = 0.3;
/** The smallest size that still gets more width than a 4 KiB piece. */
const PAGE = 4096;

/** Width weight of a covered piece: 1 for 4 KiB or less, plus a half per doubling above. */
function weight(size: bigint): number {
  const n = Number(size);
  return 1 + Math.max(0, Math.log2(n / PAGE)) / 2;
}

/**
 * Maps addresses to pixels: every boundary of the intervals it was built from starts a piece;
 * covered pieces get widths that grow with log2 of their size, gaps a fixed width. Inside a
 * piece the axis is linear.
 *
 * @example
 * ```ts
 * import { BrokenScale } from "./scale.ts";
 * const s = new BrokenScale([[0n, 4096n], [1n << 32n, (1n << 32n) + (4n << 30n)]], 0, 1000);
 * console.log(s.pieces.length, s.x(0n), s.x((1n << 32n) + (4n << 30n))); // 3 0 1000
 * ```
 */
export class BrokenScale {
  /** The pieces, left to right. */
  readonly pieces: readonly ScalePiece[];

  /** Builds the axis over `intervals` (`[start, end)`, any order, may overlap) between `x0` and `x1`. */
  constructor(intervals: ReadonlyArray<readonly [bigint, bigint]>, x0: number, x1: number) {
    const bounds = [...new Set(intervals.flatMap(([s, e]) => (e > s ? [s, e] : [])))].sort((a, b) =>
      a < b ? -1 : a > b ? 1 : 0
    );
    const raw: Array<{ start: bigint; end: bigint; covered: boolean }> = [];
    for (let i = 1; i < bounds.length; i++) {
      const start = bounds[i - 1], end = bounds[i];
      raw.push({ start, end, covered: intervals.some(([s, e]) => s <= start && end <= e) });
    }
    const gaps = raw.filter((p) => !p.covered).length;
    const width = x1 - x0;
    const gapPx = gaps === 0 ? 0 : Math.min(GAP_PX, (width * GAP_SHARE) / gaps);
    const totalWeight = raw.reduce((sum, p) => sum + (p.covered ? weight(p.end - p.start) : 0), 0);
    const coveredPx = width - gapPx * gaps;
    const pieces: ScalePiece[] = [];
    let x = x0;
    for (const p of raw) {
      const w = p.covered ? (coveredPx * weight(p.end - p.start)) / totalWeight : gapPx;
      pieces.push({ ...p, x0: x, x1: x + w });
      x += w;
    }
    this.pieces = pieces;
  }

  /**
   * The pixel position of `addr`: interpolated inside its piece, clamped to the ends.
   *
   * @example
   * ```ts
   * import { BrokenScale } from "./scale.ts";
   * console.log(new BrokenScale([[0n, 100n]], 0, 10).x(50n)); // 5
   * ```
   */
  x(addr: bigint): number {
    const pieces = this.pieces;
    if (pieces.length === 0) return 0;
    if (addr <= pieces[0].start) return pieces[0].x0;
    let lo = 0, hi = pieces.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (pieces[mid].start <= addr) lo = mid;
      else hi = mid - 1;
    }
    const p = pieces[lo];
    if (addr >= p.end) return p.x1;
    return p.x0 + ((p.x1 - p.x0) * Number(addr - p.start)) / Number(p.end - p.start);
  }
}
