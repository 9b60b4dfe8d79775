/**
 * Draining one started queue: pop, let the device handle the chain, complete it, signal the guest
 * when it wants it, and when the ring is empty ask to be kicked again. A translation the IOTLB
 * lacks suspends the drain while the front-end is asked (the event loop keeps serving the
 * connection, which is where the answer arrives); an access the front-end cannot or will not
 * translate is refused and breaks the queue.
 * @module
 */

import { GuestMemoryError } from "../../mod.ts";
import { hex } from "../core/format.ts";
import { VirtqueueError, type VirtqueueFaultAddress } from "../virtio/virtqueue_errors.ts";
import type { DescriptorChain } from "../virtio/descriptor_chain.ts";
import type { SplitQueue } from "../virtio/split_queue.ts";
import { MAX_RESOLVE_ROUNDS, type MissResolver } from "../virtio/translation_retry.ts";

/** What a runner calls out for. */
export interface QueueRunnerHooks {
  /** The device's handling of one chain (see `VhostUserDevice.handle`). */
  handle(chain: DescriptorChain): number;
  /** Asks for a missing translation; undefined without an IOMMU. */
  resolve: MissResolver | undefined;
  /** Interrupts the guest (writes the call eventfd). */
  notify(): void;
  /** A chain was completed. */
  completed(chain: DescriptorChain, written: number): void;
  /** The queue was refused and is broken (signal the error eventfd). */
  refused(e: VirtqueueError): void;
}

/**
 * Drains a queue on every kick; at most one drain at a time (a kick during one makes it look
 * again).
 *
 * @example
 * ```ts ignore
 * const runner = new QueueRunner(queue, hooks);
 * runner.kick();
 * await runner.stop();
 * ```
 */
export class QueueRunner {
  /** The queue drained. */
  readonly queue: SplitQueue;
  readonly #hooks: QueueRunnerHooks;
  #generation = 0;
  #running: Promise<void> | undefined;
  #again = false;
  #enabled = true;

  /** A runner of `queue`, enabled, idle until kicked. */
  constructor(queue: SplitQueue, hooks: QueueRunnerHooks) {
    this.queue = queue;
    this.#hooks = hooks;
  }

  /** Whether kicks are acted on (vhost-user's SET_VRING_ENABLE). */
  get enabled(): boolean {
    return this.#enabled;
  }

  set enabled(on: boolean) {
    this.#enabled = on;
    if (on) this.kick();
  }

  /** Whether a drain is going on (or suspended on a miss). */
  get busy(): boolean {
    return this.#running !== undefined;
  }

  /** Looks at the ring now (or once the drain going on ends). */
  kick(): void {
    if (!this.#enabled || this.queue.broken !== undefined) return;
    if (this.#running !== undefined) {
      this.#again = true;
      return;
    }
    const gen = this.#generation;
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          await this.#drain(gen);
        } while (this.#again && gen === this.#generation && this.#enabled && this.queue.broken === undefined);
      } finally {
        if (gen === this.#generation) this.#running = undefined;
      }
    })();
  }

  /**
   * Stops: a drain suspended on a miss gives up when it resumes, and chains it held are dropped
   * (the driver never sees them used). Resolves when no drain runs any more.
   */
  async stop(): Promise<void> {
    this.#generation++;
    this.#enabled = false;
    const running = this.#running;
    this.#running = undefined;
    await running;
  }

  async #drain(gen: number): Promise<void> {
    const q = this.queue, hooks = this.#hooks;
    let chain: DescriptorChain | null = null;
    let written = -1, rounds = 0, completed = 0;
    let last: VirtqueueFaultAddress | undefined;
    q.disableNotification();
    for (;;) {
      try {
        for (;;) {
          if (chain === null) {
            chain = q.pop();
            if (chain === null) {
              if (completed > 0 && q.needsNotification()) hooks.notify();
              completed = 0;
              if (q.enableNotification()) {
                q.disableNotification();
                continue;
              }
              return;
            }
            written = -1;
          }
          if (written < 0) written = hooks.handle(chain);
          q.addUsed(chain, written);
          hooks.completed(chain, written);
          chain = null;
          rounds = 0;
          last = undefined;
          // EVENT_IDX keeps this to the interrupts the guest asked for.
          if (q.needsNotification()) {
            hooks.notify();
            completed = 0;
          } else completed++;
        }
      } catch (e) {
        if (gen !== this.#generation) return;
        if (!(e instanceof VirtqueueError) || !e.retryable) {
          const refusal = e instanceof VirtqueueError ? e : q.refuse(
            new VirtqueueError("QueueRunner.drain", q.index, "Device", `the device failed: ${describe(e)}`, undefined, {
              cause: e,
            }),
          );
          q.refuse(refusal);
          hooks.refused(refusal);
          return;
        }
        const where = e.where!;
        const refuse = (why: string, fault: "Translation" | "Permission" = "Translation", cause: unknown = e) => {
          const what = `${where.access === 2 ? "write" : "read"} of ${where.length} bytes at ${hex(where.addr)}`;
          const r = q.refuse(new VirtqueueError(e.op, q.index, fault, `refused the ${what}: ${why}`, where, { cause }));
          hooks.refused(r);
        };
        if (hooks.resolve === undefined) return refuse("no IOMMU front-end can be asked");
        if (rounds++ >= MAX_RESOLVE_ROUNDS) return refuse(`still missing after ${MAX_RESOLVE_ROUNDS} answers`);
        if (last !== undefined && last.addr === where.addr && last.access === where.access) {
          return refuse("the front-end's answer did not cover it");
        }
        last = where;
        try {
          await hooks.resolve({ addr: where.addr, length: where.length, access: where.access as 1 | 2 });
        } catch (cause) {
          if (gen !== this.#generation) return;
          const fault = cause instanceof VirtqueueError && cause.fault === "Permission" ? "Permission" : "Translation";
          return refuse(describe(cause), fault, cause);
        }
        if (gen !== this.#generation) {
          if (chain !== null) q.drop(chain);
          return;
        }
      }
    }
  }
}

/** The reason of an error, without the operation and queue its message starts with. */
function describe(e: unknown): string {
  if (e instanceof GuestMemoryError) return e.message.slice(e.op.length + 2).replace(/^queue \d+: /, "");
  return e instanceof Error ? e.message : String(e);
}
