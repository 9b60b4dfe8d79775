/**
 * One band of the address-space picture: an address space drawn on a broken log axis, with its
 * shapes (IOTLB entries, regions or host mappings), the cut-out gaps between them, dirty pages and
 * the addresses of every boundary underneath.
 * @module
 */

import { hex } from "../text.ts";
import type { Run } from "./model.ts";
import type { BrokenScale } from "./scale.ts";
import { type Attrs, el, text } from "./svg.ts";

/** Height of a band in pixels. */
export const BAND_HEIGHT = 46;
/** Width of one character of the 10 px monospace font, for fitting labels. */
const CHAR_PX = 6.1;

/**
 * Something drawn in a band.
 *
 * @example
 * ```ts
 * import type { BandShape } from "./band.ts";
 * const s: BandShape = { start: 0n, end: 0x1000n, cls: "region", lines: [["0x0"], ["4 KiB"]], title: "RAM" };
 * ```
 */
export interface BandShape {
  /** First address. */
  start: bigint;
  /** One past the last address. */
  end: bigint;
  /** CSS class (`entry`, `region`, `mapping`). */
  cls: string;
  /** Fill colour, if not the class's. */
  fill?: string;
  /** Label rows (at most two shown), each a list of alternatives, longest first: the first that fits is shown. */
  lines: string[][];
  /** White text (on a dark fill). */
  light?: boolean;
  /** Extra attributes (`data-*`). */
  data?: Attrs;
  /** Tooltip. */
  title: string;
}

/**
 * A band to draw.
 *
 * @example
 * ```ts
 * import type { BandSpec } from "./band.ts";
 * const spec: BandSpec = { space: "gpa", title: "guest physical", y: 100, shapes: [], dirty: [], gapText: () => [] };
 * ```
 */
export interface BandSpec {
  /** `iova`, `gpa` or `host` (the band's `data-space`). */
  space: string;
  /** Heading above the band. */
  title: string;
  /** Smaller text after the heading. */
  note?: string;
  /** Top edge of the band. */
  y: number;
  /** What is drawn. */
  shapes: BandShape[];
  /** Dirty runs in this space. */
  dirty: readonly Run[];
  /** The label rows of a gap `[start, end)` (see {@link BandShape.lines}). */
  gapText: (start: bigint, end: bigint) => string[][];
  /** The kind of a gap, for `data-kind` (default `gap`). */
  gapKind?: (start: bigint, end: bigint) => string;
  /** Shown inside an empty band. */
  emptyText?: string;
  /** Drawn over the shapes, without labels (where translations land). */
  marks?: BandShape[];
}

function fits(line: string, width: number): boolean {
  return line.length * CHAR_PX + 8 <= width;
}

function labels(x0: number, x1: number, y: number, rows: readonly string[][], cls: string): string {
  const width = x1 - x0;
  const shown: string[] = [];
  for (const row of rows) {
    const fitting = row.find((l) => fits(l, width));
    if (fitting !== undefined && shown.length < 2) shown.push(fitting);
  }
  const cx = (x0 + x1) / 2;
  const top = shown.length === 1 ? y + BAND_HEIGHT / 2 + 4 : y + BAND_HEIGHT / 2 - 3;
  return shown.map((l, i) => text(cx, top + i * 13, l, { class: `${cls} mono`, "text-anchor": "middle" })).join("");
}

/** The widest stretch of `[x0, x1]` that no mark covers: where a shape's label goes. */
function widestFree(x0: number, x1: number, marks: ReadonlyArray<readonly [number, number]>): [number, number] {
  const inside = marks.filter(([a, b]) => b > x0 && a < x1).sort((p, q) => p[0] - q[0]);
  let best: [number, number] = [x0, x0];
  let from = x0;
  for (const [a, b] of [...inside, [x1, x1] as const]) {
    if (a - from > best[1] - best[0]) best = [from, a];
    from = Math.max(from, b);
  }
  return best;
}

/** Two short slanted strokes: the sign of a cut-out piece of axis. */
function breakMark(cx: number, y: number): string {
  const t = y + BAND_HEIGHT + 2, b = y + BAND_HEIGHT + 12;
  return el("path", { class: "break", d: `M${cx - 5} ${b}L${cx - 1} ${t}M${cx + 1} ${b}L${cx + 5} ${t}` });
}

function axis(scale: BrokenScale, y: number): string {
  const out: string[] = [];
  const base = y + BAND_HEIGHT;
  let lastEnd = -Infinity;
  const bounds: Array<[bigint, number]> = [];
  for (const p of scale.pieces) bounds.push([p.start, p.x0]);
  const last = scale.pieces.at(-1);
  if (last !== undefined) bounds.push([last.end, last.x1]);
  for (const [addr, x] of bounds) {
    out.push(el("line", { class: "tick", x1: x, y1: base, x2: x, y2: base + 5 }));
    const label = hex(addr);
    const w = label.length * CHAR_PX;
    // Centred under the tick, clamped inside the band, left out where it would overlap the previous one.
    const left = Math.min(Math.max(x - w / 2, scale.pieces[0].x0), last!.x1 - w);
    if (left < lastEnd + 8) continue;
    out.push(text(left, base + 17, label, { class: "axis mono" }));
    lastEnd = left + w;
  }
  return out.join("");
}

/**
 * The band as an SVG group `<g class="band" data-space="…">`.
 *
 * @example
 * ```ts
 * import { drawBand } from "./band.ts";
 * import { BrokenScale } from "./scale.ts";
 * const scale = new BrokenScale([[0n, 0x1000n]], 40, 1360);
 * const svg = drawBand({ space: "gpa", title: "guest physical", y: 100, shapes: [], dirty: [], gapText: () => [] }, scale);
 * console.log(svg.startsWith('<g class="band" data-space="gpa"')); // true
 * ```
 */
export function drawBand(spec: BandSpec, scale: BrokenScale): string {
  const { y } = spec;
  const pieces = scale.pieces;
  const x0 = pieces.length === 0 ? 40 : pieces[0].x0;
  const x1 = pieces.length === 0 ? 1360 : pieces[pieces.length - 1].x1;
  const parts: string[] = [
    text(x0, y - 10, spec.title, { class: "band-title" }),
  ];
  if (spec.note !== undefined) {
    parts.push(text(x1, y - 10, spec.note, { class: "band-note", "text-anchor": "end" }));
  }
  parts.push(el("rect", { class: "band-bg", x: x0, y, width: x1 - x0, height: BAND_HEIGHT }));
  if (spec.shapes.length === 0 && spec.emptyText !== undefined) {
    parts.push(text((x0 + x1) / 2, y + BAND_HEIGHT / 2 + 4, spec.emptyText, {
      class: "band-note",
      "text-anchor": "middle",
    }));
  }
  // Pieces of the axis no shape covers: holes between regions, unmapped IOVA, other processes' memory.
  for (const p of pieces) {
    if (spec.shapes.some((s) => s.start <= p.start && p.end <= s.end)) continue;
    const kind = spec.gapKind?.(p.start, p.end) ?? "gap";
    parts.push(
      el(
        "rect",
        { class: "hole", "data-kind": kind, x: p.x0, y: y + 1, width: p.x1 - p.x0, height: BAND_HEIGHT - 2 },
        el("title", {}, `${kind} [${hex(p.start)}, ${hex(p.end)}), ${hex(p.end - p.start)} bytes`),
      ),
      labels(p.x0, p.x1, y, spec.gapText(p.start, p.end), "label"),
    );
    if (!p.covered) parts.push(breakMark((p.x0 + p.x1) / 2, y));
  }
  const marks = (spec.marks ?? []).map((m) => [scale.x(m.start), scale.x(m.end)] as const);
  for (const s of spec.shapes) {
    const sx0 = scale.x(s.start), sx1 = scale.x(s.end);
    const [lx0, lx1] = widestFree(sx0, sx1, marks);
    parts.push(
      el(
        "rect",
        { class: s.cls, ...s.data, x: sx0, y, width: Math.max(sx1 - sx0, 1), height: BAND_HEIGHT, fill: s.fill },
        el("title", {}, s.title),
      ),
      labels(lx0, lx1, y, s.lines, s.light ? "label-light" : "label"),
    );
  }
  for (const [i, m] of (spec.marks ?? []).entries()) {
    const [mx0, mx1] = marks[i];
    parts.push(
      el(
        "rect",
        {
          class: m.cls,
          ...m.data,
          x: mx0,
          y: y + 1,
          width: Math.max(mx1 - mx0, 2),
          height: BAND_HEIGHT - 2,
          fill: m.fill,
        },
        el("title", {}, m.title),
      ),
    );
  }
  for (const [start, end] of spec.dirty) {
    const dx0 = scale.x(start), dx1 = scale.x(end);
    // A dirty 4 KiB page inside a 4 GiB piece is far below a pixel: it still gets a visible mark.
    const w = Math.max(dx1 - dx0, 3);
    parts.push(
      el(
        "rect",
        { class: "dirty", x: Math.min(dx0, x1 - w), y: y + BAND_HEIGHT - 8, width: w, height: 8 },
        el("title", {}, `dirty [${hex(start)}, ${hex(end)})`),
      ),
    );
  }
  if (pieces.length > 0) parts.push(axis(scale, y));
  return el("g", { class: "band", "data-space": spec.space }, ...parts);
}
