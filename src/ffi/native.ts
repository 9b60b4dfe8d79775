/**
 * Selects and loads the binding for the runtime the library runs on, once, on first use (so that
 * importing the module needs no permission until memory is actually mapped). This is the one place
 * that asks which runtime it is; everything above talks to {@link NativeBinding}.
 * @module
 */

import type { NativeBinding } from "./binding.ts";
import { loadBunBinding } from "./bun_binding.ts";
import { loadDenoBinding } from "./deno_binding.ts";

let loaded: NativeBinding | undefined;

/**
 * The native binding for this runtime, loaded on first call: Bun's when `globalThis.Bun` exists
 * (checked first, because a test adapter may provide a `Deno` global on Bun), else Deno's.
 *
 * @example
 * ```ts
 * import { native } from "./native.ts";
 * console.log(native().pageSize); // 4096 (x86_64 Linux)
 * ```
 */
export function native(): NativeBinding {
  return loaded ??= "Bun" in globalThis ? loadBunBinding() : loadDenoBinding();
}
