/**
 * `AbortSignal` plumbing shared by the library's asynchronous calls: the options shape, its check,
 * and a wait that gives up the moment the signal fires. As in `fetch` and Deno's own APIs, an aborted
 * call rejects with the signal's `reason` itself (a `DOMException` named `AbortError` unless the
 * caller gave another), so `e === signal.reason` tells an abort from a failure.
 * @module
 */

import { InvalidArgumentError } from "./errors.ts";

/**
 * Options of an asynchronous call that can be given up.
 *
 * @example
 * ```ts
 * import type { AbortOptions } from "./abort_signal.ts";
 * const options: AbortOptions = { signal: AbortSignal.timeout(1000) };
 * ```
 */
export interface AbortOptions {
  /** Aborting it rejects the call with `signal.reason` and cancels what the call still waits for. */
  signal?: AbortSignal;
}

/**
 * The signal of `options`, checked under `op`: `undefined` without one; anything that is not an
 * `AbortSignal` is an `InvalidArgumentError` (a signal of the wrong type would never fire).
 *
 * @example
 * ```ts
 * import { signalOf } from "./abort_signal.ts";
 * const c = new AbortController();
 * console.log(signalOf({ signal: c.signal }, "demo") === c.signal); // true
 * ```
 */
export function signalOf(options: unknown, op: string): AbortSignal | undefined {
  if (options === undefined) return undefined;
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError(op, "options", options, "must be an object ({ signal?: AbortSignal })");
  }
  const signal = (options as { signal?: unknown }).signal;
  if (signal === undefined || signal instanceof AbortSignal) return signal;
  throw new InvalidArgumentError(op, "options.signal", signal, "must be an AbortSignal");
}

/**
 * `promise`, or a rejection with `signal.reason` as soon as `signal` aborts, whichever comes
 * first. The listener goes when either settles, so a long-lived signal collects nothing; a
 * rejection of `promise` after the abort is handled here (it would otherwise end a Deno process).
 *
 * @example
 * ```ts
 * import { abortable } from "./abort_signal.ts";
 * const c = new AbortController();
 * const wait = abortable(new Promise(() => {}), c.signal);
 * c.abort("enough");
 * console.log(await wait.catch((e) => e)); // "enough"
 * ```
 */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
