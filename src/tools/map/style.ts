/**
 * Colours and the stylesheet of the address-space picture. Permissions have one colour each,
 * everywhere: the IOTLB entry, its translation, the legend.
 * @module
 */

import type { Permission } from "../../../mod.ts";

/** Fill colour per permission: index = `Permission` (No, Read, Write, ReadWrite). */
export const PERM_COLOURS: readonly string[] = ["#8c8c8c", "#3b78c4", "#e07b20", "#3a9a4a"];

/** Legend names per permission. */
export const PERM_NAMES: readonly string[] = ["no-access", "read-only", "write-only", "read-write"];

/**
 * The colour of a permission.
 *
 * @example
 * ```ts
 * import { permColour } from "./style.ts";
 * console.log(permColour(3)); // "#3a9a4a"
 * ```
 */
export function permColour(p: Permission): string {
  return PERM_COLOURS[p];
}

/** The stylesheet inside the SVG (so the file stands alone). */
export const STYLE = `
  text { font-family: "DejaVu Sans", Verdana, sans-serif; fill: #1f2933; }
  .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; }
  .title { font-size: 20px; font-weight: bold; }
  .subtitle { font-size: 13px; fill: #52606d; }
  .band-title { font-size: 13px; font-weight: bold; }
  .band-note { font-size: 12px; fill: #52606d; }
  .band-title, .band-note { paint-order: stroke; stroke: #ffffff; stroke-width: 4px; stroke-linejoin: round; }
  .band-bg { fill: #f5f7fa; stroke: #cbd2d9; }
  .label { font-size: 10px; }
  .label-light { font-size: 10px; fill: #ffffff; }
  .axis { font-size: 10px; fill: #52606d; }
  .tick { stroke: #9aa5b1; stroke-width: 1; }
  .region { fill: #c8d3e0; stroke: #52606d; stroke-width: 1; }
  .mapping { fill: #ddd3ec; stroke: #6b5b8c; stroke-width: 1; }
  .entry { stroke: #ffffff; stroke-width: 1; }
  .hole { fill: url(#hatch); stroke: #cbd2d9; }
  .break { stroke: #9aa5b1; stroke-width: 1.5; fill: none; }
  .dirty { fill: #d62728; }
  .target { fill-opacity: 0.55; stroke: #1f2933; stroke-opacity: 0.35; stroke-width: 0.5; }
  .translation { fill-opacity: 0.22; stroke-opacity: 0.9; stroke-width: 1; }
  .outside-ram { stroke-dasharray: 4 3; }
  .backing { fill: #8e7cc3; fill-opacity: 0.16; stroke: #8e7cc3; stroke-opacity: 0.7; }
  .legend-text { font-size: 12px; }
  .legend-note { font-size: 11.5px; fill: #52606d; }
`;

/** Pattern definitions: the hatching of holes and unmapped gaps. */
export const DEFS = `<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" ` +
  `patternTransform="rotate(45)"><rect width="6" height="6" fill="#fbfcfd"/>` +
  `<line x1="0" y1="0" x2="0" y2="6" stroke="#d5dbe1" stroke-width="2"/></pattern></defs>`;
