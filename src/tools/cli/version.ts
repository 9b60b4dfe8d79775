/**
 * The version `gmem --version` prints: the package's own, from deno.json, so it cannot drift
 * from what is published.
 * @module
 */

import config from "../../../deno.json" with { type: "json" };

/**
 * The package version, e.g. `"0.1.0"`.
 *
 * @example
 * ```ts
 * import { VERSION } from "./version.ts";
 * console.log(`gmem ${VERSION}`); // "gmem 0.1.0"
 * ```
 */
export const VERSION: string = config.version;
