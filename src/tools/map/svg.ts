/**
 * Just enough SVG writing for the address-space picture: escaped text and attributes, elements
 * as strings.
 * @module
 */

/** Attribute values; `undefined` leaves the attribute out. */
export type Attrs = Record<string, string | number | undefined>;

/**
 * Escapes text for XML content and attribute values.
 *
 * @example
 * ```ts
 * import { escapeXml } from "./svg.ts";
 * console.log(escapeXml('a<b & "c"')); // "a&lt;b &amp; &quot;c&quot;"
 * ```
 */
export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&${{ "<": "lt", ">": "gt", "&": "amp", '"': "quot", "'": "apos" }[c]};`);
}

function number(v: number): string {
  // Two decimals are below a pixel's tenth: enough, and keeps the file small.
  return Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/0+$/, "").replace(/\.$/, "");
}

function attrs(a: Attrs): string {
  let out = "";
  for (const [k, v] of Object.entries(a)) {
    if (v === undefined) continue;
    out += ` ${k}="${typeof v === "number" ? number(v) : escapeXml(v)}"`;
  }
  return out;
}

/**
 * An element with children (already SVG strings); with no children, a self-closing tag.
 *
 * @example
 * ```ts
 * import { el } from "./svg.ts";
 * console.log(el("rect", { x: 1.5, width: 10 })); // '<rect x="1.5" width="10"/>'
 * ```
 */
export function el(name: string, a: Attrs, ...children: string[]): string {
  return children.length === 0 ? `<${name}${attrs(a)}/>` : `<${name}${attrs(a)}>${children.join("")}</${name}>`;
}

/**
 * A text element (content escaped).
 *
 * @example
 * ```ts
 * import { text } from "./svg.ts";
 * console.log(text(0, 10, "a<b", { class: "t" })); // '<text x="0" y="10" class="t">a&lt;b</text>'
 * ```
 */
export function text(x: number, y: number, content: string, a: Attrs = {}): string {
  return `<text${attrs({ x, y, ...a })}>${escapeXml(content)}</text>`;
}

/**
 * A closed polygon path through the points.
 *
 * @example
 * ```ts
 * import { polygon } from "./svg.ts";
 * console.log(polygon([[0, 0], [1, 0], [1, 1]])); // "M0 0L1 0L1 1Z"
 * ```
 */
export function polygon(points: ReadonlyArray<readonly [number, number]>): string {
  return points.map(([x, y], i) => `${i === 0 ? "M" : "L"}${number(x)} ${number(y)}`).join("") + "Z";
}
