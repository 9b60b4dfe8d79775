/**
 * Selects and loads the binding for the runtime the library runs on, once, on first use (so that
 * importing the module needs no permission until memory is actually mapped).
 * @module
 */

import type { NativeBinding } from "./binding.ts";
import { loadDenoBinding } from "./deno_binding.ts";

let loaded: NativeBinding | undefined;

/**
 * The native binding for this runtime, loaded on first call.
 *
 * @example
 * ```ts
 * import { native } from "./native.ts";
 * console.log(native().pageSize);
 * ```
 */
export function native(): NativeBinding {
  return loaded ??= loadDenoBinding();
}
