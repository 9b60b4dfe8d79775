/**
 * gmem's tools as a library (`@gmem/gmem/tools`): the address-space picture that `gmem map` and the
 * demo draw, for programs that want it in their own reports.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "./mod.ts";
 * import { renderMap } from "./tools.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
 * console.log(renderMap(mem, { title: "one region" }).startsWith("<svg")); // true
 * ```
 * @module
 */

export { renderMap, renderMapHtml, type RenderMapOptions } from "./src/tools/render_map.ts";
