/**
 * The address-space picture: IOVA space, guest physical space and host mappings as three bands,
 * with every translation drawn between them, permissions as colours, holes cut out, dirty pages
 * marked. Sizes span 4 KiB to terabytes, so the axes are broken and logarithmic (the legend says
 * so). `gmem map` and `deno task demo` draw with it.
 * @module
 */

import { inspect } from "node:util";
import type { GuestMemoryMmap } from "../../mod.ts";
import type { IommuMemory } from "../../iommu.ts";
import { hex, permissionName, plural, sizeText } from "./text.ts";
import { BAND_HEIGHT, type BandShape, drawBand } from "./map/band.ts";
import { type MapModel, mapModel, type Run } from "./map/model.ts";
import { BrokenScale } from "./map/scale.ts";
import { DEFS, PERM_COLOURS, PERM_NAMES, permColour, STYLE } from "./map/style.ts";
import { type Attrs, el, escapeXml, text } from "./map/svg.ts";

/**
 * Options of {@link renderMap}.
 *
 * @example
 * ```ts
 * import type { RenderMapOptions } from "./render_map.ts";
 * const options: RenderMapOptions = { title: "virtio-blk DMA" };
 * ```
 */
export interface RenderMapOptions {
  /** The heading (default "gmem address-space map"). */
  title?: string;
}

const WIDTH = 1400;
const X0 = 40;
const X1 = WIDTH - 40;
/** Vertical distance from one band's top to the next one's. */
const BAND_STEP = 210;
const FIRST_BAND = 112;
const LEGEND_HEIGHT = 140;

const PERM_SHORT = ["--", "r-", "-w", "rw"];

function intervals(runs: ReadonlyArray<readonly [bigint, bigint]>): Array<[bigint, bigint]> {
  return runs.map(([s, e]) => [s, e]);
}

/** A size for a label that has little room: exact when short, else "~" and three digits. */
function shortSize(bytes: bigint): string {
  const exact = sizeText(bytes);
  if (exact.length <= 8) return exact;
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
  let v = Number(bytes), u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `~${v >= 100 ? Math.round(v) : v.toPrecision(3)} ${units[u]}`;
}

function inHole(model: MapModel, start: bigint, end: bigint): boolean {
  return model.holes.some(([s, n]) => s <= start && end <= s + n);
}

function inRam(model: MapModel, start: bigint, end: bigint): boolean {
  return model.regions.some((r) => r.gpa <= start && end <= r.gpa + r.size);
}

/** A curved band between `[a0, a1]` at `yTop` and `[b0, b1]` at `yBottom`. */
function ribbon(a0: number, a1: number, yTop: number, b0: number, b1: number, yBottom: number): string {
  const m = (yTop + yBottom) / 2;
  const f = (v: number) => Number.isInteger(v) ? String(v) : v.toFixed(2);
  return `M${f(a0)} ${f(yTop)}C${f(a0)} ${f(m)} ${f(b0)} ${f(m)} ${f(b0)} ${f(yBottom)}` +
    `L${f(b1)} ${f(yBottom)}C${f(b1)} ${f(m)} ${f(a1)} ${f(m)} ${f(a1)} ${f(yTop)}Z`;
}

/** Where one end of a ribbon lies: the band's scale, the range's start in it, and the edge's y. */
type RibbonEnd = [scale: BrokenScale, start: bigint, y: number];

/** A titled ribbon joining `size` bytes at `top` to the same number at `bottom`. */
function ribbonPath(attrs: Attrs, top: RibbonEnd, bottom: RibbonEnd, size: bigint, title: string): string {
  const [ts, t, ty] = top;
  const [bs, b, by] = bottom;
  return el(
    "path",
    { ...attrs, d: ribbon(ts.x(t), ts.x(t + size), ty, bs.x(b), bs.x(b + size), by) },
    el("title", {}, title),
  );
}

function dirtyPages(runs: readonly Run[]): number {
  let n = 0n;
  for (const [s, e] of runs) n += (e - s + 4095n) / 4096n;
  return Number(n);
}

function legend(y: number, iommu: boolean): string {
  const items: string[] = [];
  let x = X0, row = y;
  const swatch = (cls: string, fill: string | undefined, label: string) => {
    const w = 28 + label.length * 7;
    if (x + w > X1) {
      x = X0;
      row += 22;
    }
    items.push(el("rect", { class: cls, x, y: row, width: 22, height: 14, fill }));
    items.push(text(x + 28, row + 11.5, label, { class: "legend-text" }));
    x += w + 26;
  };
  if (iommu) {
    for (let p = 3; p >= 0; p--) swatch("entry", PERM_COLOURS[p], `${PERM_NAMES[p]} entry`);
  }
  swatch("region", undefined, "guest RAM region");
  swatch("mapping", undefined, "host mapping");
  swatch("hole", undefined, "hole, unmapped");
  swatch("dirty", undefined, "dirty page");
  const notes = [
    ...(iommu
      ? ["IOTLB entries, their ribbons and the marks where they land in RAM and in the host share their colour."]
      : []),
    "Scale: not linear. Each drawn piece is as wide as log2 of its size (4 KiB narrowest, each doubling adds a little),",
    "so a 4 KiB mapping stays visible next to a 4 GiB region; gaps between pieces are cut out (//) whatever their size.",
    "Addresses under each band mark every boundary (some are left out where they would overlap); hover a shape for details.",
  ];
  const lines = notes.map((n, i) => text(X0, row + 36 + i * 16, n, { class: "legend-note" }));
  return el("g", { class: "legend" }, text(X0, y - 8, "Legend", { class: "band-title" }), ...items, ...lines);
}

function regionShapes(model: MapModel): BandShape[] {
  return model.regions.map((r, i) => ({
    start: r.gpa,
    end: r.gpa + r.size,
    cls: "region",
    lines: [[hex(r.gpa)], [`${sizeText(r.size)} · ${r.backing}`, sizeText(r.size)]],
    data: { "data-region": i },
    title: `region ${i}: GPA [${hex(r.gpa)}, ${hex(r.gpa + r.size)}), ${sizeText(r.size)}, ${r.backing}, ${r.prot}` +
      (r.dirty === undefined ? "" : `, ${r.dirty.dirtyPages} dirty pages of ${sizeText(r.dirty.pageSize)}`),
  }));
}

/** Where each IOTLB entry lands: in guest physical space, and (for the part in RAM) in host space. */
function targetMarks(model: MapModel): { gpa: BandShape[]; host: BandShape[] } {
  const gpa: BandShape[] = [], host: BandShape[] = [];
  (model.iommu?.entries ?? []).forEach((e, i) => {
    const perm = permissionName(e.perm);
    const data = { "data-entry": i, "data-perm": perm };
    const end = e.target + e.size;
    gpa.push({
      start: e.target,
      end,
      cls: "target",
      fill: permColour(e.perm),
      lines: [],
      data,
      title: `GPA [${hex(e.target)}, ${hex(end)}) from IOVA ${hex(e.iova)}, ${perm}`,
    });
    for (const r of model.regions) {
      const s = e.target > r.gpa ? e.target : r.gpa, t = end < r.gpa + r.size ? end : r.gpa + r.size;
      if (s >= t || r.host === undefined) continue;
      host.push({
        start: r.host + (s - r.gpa),
        end: r.host + (t - r.gpa),
        cls: "target",
        fill: permColour(e.perm),
        lines: [],
        data,
        title: `host [${hex(r.host + (s - r.gpa))}, ${hex(r.host + (t - r.gpa))}): GPA ${hex(s)} from IOVA ${
          hex(e.iova + (s - e.target))
        }`,
      });
    }
  });
  return { gpa, host };
}

function hostShapes(model: MapModel): BandShape[] {
  const shapes: BandShape[] = [];
  model.regions.forEach((r, i) => {
    if (r.host === undefined) return;
    shapes.push({
      start: r.host,
      end: r.host + r.size,
      cls: "mapping",
      lines: [[hex(r.host)], [`${sizeText(r.size)} · ${r.backing}`, r.backing, sizeText(r.size)]],
      data: { "data-region": i },
      title: `host [${hex(r.host)}, ${hex(r.host + r.size)}): ${r.backing}, ${r.prot} ${r.flags}`,
    });
  });
  return shapes.sort((a, b) => (a.start < b.start ? -1 : 1));
}

/**
 * Draws guest memory, or guest memory behind an IOMMU, as a standalone SVG document: one band per
 * address space (IOVA only with an IOMMU), one shape per IOTLB entry, region and host mapping,
 * one ribbon per translation, hatched holes, red dirty-page marks and a legend. Elements carry
 * classes (`band`, `entry`, `region`, `mapping`, `translation`, `backing`, `hole`, `dirty`,
 * `legend`) and `data-*` attributes, so the picture can be checked and styled.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * import { renderMap } from "./render_map.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000], [1n << 32n, 0x10000]]);
 * const svg = renderMap(mem);
 * console.log(svg.startsWith("<svg"), svg.match(/<rect class="region" data-region/g)?.length); // true 2
 * ```
 */
export function renderMap(mem: GuestMemoryMmap | IommuMemory, options: RenderMapOptions = {}): string {
  const model = mapModel(mem);
  const iommu = model.iommu;
  const bands = iommu === undefined ? 2 : 3;
  const yIova = FIRST_BAND;
  const yGpa = FIRST_BAND + (bands === 3 ? BAND_STEP : 0);
  const yHost = yGpa + BAND_STEP;
  const yLegend = yHost + BAND_HEIGHT + 62;
  const height = yLegend + LEGEND_HEIGHT;

  const entries = iommu?.entries ?? [];
  const iovaScale = new BrokenScale(
    [...entries.map((e) => [e.iova, e.iova + e.size] as [bigint, bigint]), ...intervals(iommu?.dirty ?? [])],
    X0,
    X1,
  );
  const gpaScale = new BrokenScale(
    [
      ...model.regions.map((r) => [r.gpa, r.gpa + r.size] as [bigint, bigint]),
      ...entries.map((e) => [e.target, e.target + e.size] as [bigint, bigint]),
    ],
    X0,
    X1,
  );
  const hosts = hostShapes(model);
  const marks = targetMarks(model);
  const hostScale = new BrokenScale([...hosts, ...marks.host].map((s) => [s.start, s.end]), X0, X1);

  const body: string[] = [];
  // Ribbons first, so the bands are drawn over their ends.
  const ribbons: string[] = [];
  if (iommu !== undefined) {
    // The widest first, so narrow ribbons stay on top of wide ones.
    const bySize = [...entries].sort((a, b) => (a.size > b.size ? -1 : a.size < b.size ? 1 : 0));
    for (const e of bySize) {
      const ram = inRam(model, e.target, e.target + e.size);
      ribbons.push(
        ribbonPath(
          {
            class: ram ? "translation" : "translation outside-ram",
            fill: permColour(e.perm),
            stroke: permColour(e.perm),
          },
          [iovaScale, e.iova, yIova + BAND_HEIGHT],
          [gpaScale, e.target, yGpa],
          e.size,
          `IOVA [${hex(e.iova)}, ${hex(e.iova + e.size)}) -> GPA [${hex(e.target)}, ${hex(e.target + e.size)}) ${
            permissionName(e.perm)
          }${ram ? "" : " (not guest RAM)"}`,
        ),
      );
    }
  }
  model.regions.forEach((r) => {
    if (r.host === undefined) return;
    ribbons.push(
      ribbonPath(
        { class: "backing" },
        [gpaScale, r.gpa, yGpa + BAND_HEIGHT],
        [hostScale, r.host, yHost],
        r.size,
        `GPA [${hex(r.gpa)}, ${hex(r.gpa + r.size)}) is host [${hex(r.host)}, ${hex(r.host + r.size)})`,
      ),
    );
  });
  body.push(el("g", { class: "ribbons" }, ...ribbons));

  if (iommu !== undefined) {
    const note = !iommu.hasIotlb
      ? "this IOMMU has no IOTLB to show"
      : `${entries.length} IOTLB entries; translation ${iommu.enabled ? "on" : "off"}; writes logged by ${
        iommu.logBy === "iova" ? "IOVA" : "guest physical address"
      }`;
    body.push(drawBand({
      space: "iova",
      title: "I/O virtual addresses (IOVA): what the device asks for",
      note,
      y: yIova,
      shapes: entries.map((e, i) => ({
        start: e.iova,
        end: e.iova + e.size,
        cls: "entry",
        fill: permColour(e.perm),
        light: true,
        lines: [[hex(e.iova)], [`${sizeText(e.size)} ${PERM_SHORT[e.perm]}`, sizeText(e.size)]],
        data: { "data-entry": i, "data-perm": permissionName(e.perm) },
        title: `IOTLB entry ${i}: IOVA [${hex(e.iova)}, ${hex(e.iova + e.size)}) -> ${hex(e.target)}, ${
          permissionName(e.perm)
        }`,
      })),
      dirty: iommu.logBy === "iova" ? iommu.dirty : [],
      gapText: (s, e) => [["unmapped"], [shortSize(e - s)]],
      gapKind: () => "unmapped",
      emptyText: "no IOTLB entries",
    }, iovaScale));
  }
  let ram = 0n;
  for (const r of model.regions) ram += r.size;
  body.push(drawBand({
    space: "gpa",
    title: "Guest physical addresses (GPA): the guest's RAM",
    note: `${plural(model.regions.length, "region")}, ${sizeText(ram)} of RAM, ${plural(model.holes.length, "hole")}; ${
      plural(dirtyPages(model.gpaDirty), "dirty page")
    }`,
    y: yGpa,
    shapes: regionShapes(model),
    marks: marks.gpa,
    dirty: model.gpaDirty,
    gapText: (s, e) => [[inHole(model, s, e) ? "hole" : "not RAM"], [shortSize(e - s)]],
    gapKind: (s, e) => (inHole(model, s, e) ? "hole" : "not-ram"),
  }, gpaScale));
  body.push(drawBand({
    space: "host",
    title: "Host virtual addresses: where this process maps the RAM",
    note: "each region is one mmap of its memfd, file or anonymous memory",
    y: yHost,
    shapes: hosts,
    marks: marks.host,
    dirty: [],
    gapText: () => [],
    gapKind: () => "unrelated",
  }, hostScale));
  body.push(legend(yLegend, iommu !== undefined));

  const title = options.title ?? "gmem address-space map";
  const subtitle = iommu === undefined
    ? "guest physical memory and the host mappings behind it"
    : "device I/O virtual addresses → guest physical memory → host mappings";
  return el(
    "svg",
    {
      xmlns: "http://www.w3.org/2000/svg",
      width: WIDTH,
      height,
      viewBox: `0 0 ${WIDTH} ${height}`,
      role: "img",
      "aria-label": title,
    },
    el("style", {}, STYLE),
    DEFS,
    el("rect", { x: 0, y: 0, width: WIDTH, height, fill: "#ffffff" }),
    text(X0, 36, title, { class: "title" }),
    text(X0, 58, subtitle, { class: "subtitle" }),
    ...body,
  ) + "\n";
}

/**
 * An HTML page with the picture and, under it, the same state as text (what `console.log` shows
 * for the memory), for opening in a browser.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * import { renderMapHtml } from "./render_map.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
 * console.log(renderMapHtml(mem).includes("<svg")); // true
 * ```
 */
export function renderMapHtml(mem: GuestMemoryMmap | IommuMemory, options: RenderMapOptions = {}): string {
  const title = options.title ?? "gmem address-space map";
  // The text console.log shows (both memory types give node:util their own inspect hook).
  const state = inspect(mem);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeXml(title)}</title>
<style>
  body { margin: 24px; font-family: "DejaVu Sans", Verdana, sans-serif; color: #1f2933; background: #ffffff; }
  svg { max-width: 100%; height: auto; border: 1px solid #e4e7eb; }
  pre { font-size: 12px; background: #f5f7fa; padding: 12px; overflow-x: auto; }
</style>
</head>
<body>
${renderMap(mem, options)}<h2>The same, as text</h2>
<pre>${escapeXml(state)}</pre>
</body>
</html>
`;
}
