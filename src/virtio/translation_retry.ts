/**
 * Running a virtqueue step again after the IOMMU's front-end answered a miss. A step that needs a
 * translation the IOTLB lacks fails with a retryable `VirtqueueError` and changes nothing that
 * matters (a pop consumes nothing; completing and copying write the same bytes again); the
 * resolver asks for the translation, and the step runs again. A step that fails at the same place
 * after its translation was answered, a resolver that gives up, or too many rounds: the access is
 * refused and the queue is marked broken.
 * @module
 */

import type { Permission } from "../../mod.ts";
import { hex } from "../core/format.ts";
import { VirtqueueError, type VirtqueueFaultAddress } from "./virtqueue_errors.ts";
import { abortable, type AbortOptions, signalOf } from "../core/abort_signal.ts";

/**
 * Asks for the translation of `[addr, addr + length)` with `access` and resolves once it is there.
 * Rejects when it cannot be had: with a `VirtqueueError` whose fault says why (`Permission` for a
 * mapping that denies the access), or any other error (reported as `Translation`).
 */
export type MissResolver = (where: VirtqueueFaultAddress & { access: Permission }) => Promise<void>;

/** What a retried step belongs to: the queue that is broken when the step is refused. */
export interface RetryOwner {
  /** The queue's index, for errors. */
  readonly index: number;
  /** Marks the queue broken. */
  refuse(e: VirtqueueError): VirtqueueError;
}

/** The most resolver rounds one step may take (each round answers another miss). */
export const MAX_RESOLVE_ROUNDS = 256;

/**
 * Runs `step` until it succeeds, resolving each retryable translation failure with `resolve` in
 * between. Without a resolver, the first such failure is refused. Aborting `options.signal`
 * rejects with its reason at once, without breaking the queue (the step changed nothing that
 * matters; it can be retried later).
 *
 * @example
 * ```ts ignore
 * const chain = await retryTranslations(queue, () => queue.pop(), resolver);
 * ```
 */
export async function retryTranslations<T>(
  owner: RetryOwner,
  step: () => T,
  resolve: MissResolver | undefined,
  maxRounds: number = MAX_RESOLVE_ROUNDS,
  options?: AbortOptions,
): Promise<T> {
  const signal = signalOf(options, "retryTranslations");
  let last: VirtqueueFaultAddress | undefined;
  for (let round = 0;; round++) {
    let miss: VirtqueueError;
    try {
      return step();
    } catch (e) {
      if (!(e instanceof VirtqueueError) || !e.retryable) throw e;
      miss = e;
    }
    const where = miss.where!;
    const op = miss.op;
    if (resolve === undefined) throw owner.refuse(refusal(op, owner, miss, "no IOMMU front-end can be asked"));
    if (round >= maxRounds) throw owner.refuse(refusal(op, owner, miss, `still missing after ${maxRounds} answers`));
    if (last !== undefined && last.addr === where.addr && last.access === where.access) {
      throw owner.refuse(refusal(op, owner, miss, "the front-end's answer did not cover it"));
    }
    if (signal?.aborted) throw signal.reason;
    try {
      await abortable(
        Promise.resolve(resolve({ addr: where.addr, length: where.length, access: where.access as Permission })),
        signal,
      );
    } catch (cause) {
      if (signal?.aborted && cause === signal.reason) throw cause;
      if (cause instanceof VirtqueueError) {
        throw owner.refuse(new VirtqueueError(op, owner.index, cause.fault, cause.message, where, { cause }));
      }
      const why = cause instanceof Error ? cause.message : String(cause);
      throw owner.refuse(refusal(op, owner, miss, why, cause));
    }
    last = where;
  }
}

function refusal(op: string, owner: RetryOwner, miss: VirtqueueError, why: string, cause?: unknown): VirtqueueError {
  const w = miss.where!;
  const what = `${w.access === 2 ? "write" : "read"} of ${w.length} bytes at ${hex(w.addr)}`;
  return new VirtqueueError(op, owner.index, "Translation", `no translation for the ${what}: ${why}`, w, {
    cause: cause ?? miss,
  });
}
