/**
 * The `Iommu` interface (vm-memory's trait of that name) and {@link IotlbIommu}, an IOMMU that serves
 * translations from an {@link Iotlb} and asks a miss handler for what it lacks.
 *
 * Two ways to answer a miss:
 * - synchronously (`missHandler`): the handler fills the IOTLB before `translate` returns; right
 *   for an IOMMU whose page tables this process can read itself;
 * - asynchronously (`asyncMissHandler`): the handler asks someone else (a vhost-user front-end over
 *   its socket, `VHOST_USER_BACKEND_IOTLB_MSG`) and resolves when the answer is in the IOTLB.
 *   {@link IotlbIommu.translateAsync} awaits that without blocking the event loop; concurrent
 *   requests for the same missing range share one question, as DPDK's vhost library does.
 * The synchronous {@link IotlbIommu.translate} stays the fast path for hits.
 * @module
 */

import { setImmediate } from "node:timers";
import { type AddressLike, toAddress, toLength } from "../core/address.ts";
import { CannotResolveError, IommuMisconfiguredError, type IovaRange } from "./iommu_errors.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import { hex } from "../core/format.ts";
import { type AbortOptions, signalOf } from "../core/abort_signal.ts";
import { inspectIotlb } from "./inspect_iotlb.ts";
import { IntervalIndex, type IntervalNode } from "./interval_index.ts";
import { Iotlb, type IotlbLookup } from "./iotlb.ts";
import { type Permission, permissionName, toPermission } from "../core/permissions.ts";

/**
 * Translates I/O virtual addresses to the physical (guest) address space.
 *
 * @example
 * ```ts
 * import type { Iommu } from "./iommu.ts";
 * function firstTarget(iommu: Iommu): bigint {
 *   return iommu.translate(0x1000, 8, 1)[0].base;
 * }
 * ```
 */
export interface Iommu {
  /**
   * The mapped ranges covering all of `[iova, iova + len)` in order, or throws an `IommuError`
   * (`CannotResolve` when part of it is unmapped or forbidden and cannot be fixed). `len` may be 0:
   * `IommuMemory` translates zero-length accesses too (as vm-memory does), and an IOMMU answers
   * them with no ranges or refuses them.
   */
  translate(iova: AddressLike, len: number, access: Permission): IovaRange[];
  /**
   * The same, waiting for misses to be answered without blocking the event loop. Aborting
   * `options.signal` rejects with its reason and cancels the questions still waiting.
   */
  translateAsync(iova: AddressLike, len: number, access: Permission, options?: AbortOptions): Promise<IovaRange[]>;
  /** The IOTLB behind the IOMMU, if it has one: lets `IommuMemory` serve hits without allocating. */
  readonly iotlb?: Iotlb;
}

/**
 * What a miss handler is told: the request and everything that failed in it. A zero-length request
 * inside an entry that denies its access fails with one access failure of length 0 at `iova`.
 */
export interface IotlbFault {
  /** Start of the request. */
  iova: bigint;
  /** Length of the request. */
  length: number;
  /** The access the request needs. */
  access: Permission;
  /** Unmapped sub-ranges of the request, ascending. */
  misses: IovaRange[];
  /** Sub-ranges mapped without the needed permission, ascending. */
  accessFails: IovaRange[];
}

/**
 * Answers one failing range asynchronously: resolves once the IOTLB holds an answer (or once the
 * question is known to have none; the retry then fails with `CannotResolve`). `signal` is aborted
 * when the asker gives up (timeout, or another question of the same round failed), so the handler
 * can drop its bookkeeping. A handler that throws or rejects fails the request with
 * `IommuMisconfigured`; one that returns something other than a promise has answered. Either way
 * nothing of the question stays behind, and the next miss in the range asks again.
 */
export type AsyncMissHandler = (
  range: IovaRange,
  access: Permission,
  kind: "miss" | "access",
  signal: AbortSignal,
) => Promise<void>;

/** Options of {@link IotlbIommu}. */
export interface IotlbIommuOptions {
  /** Fills the IOTLB for a failed lookup before `translate` retries. */
  missHandler?: (fault: IotlbFault) => void;
  /** Asks for one failing range; used by `translateAsync`. */
  asyncMissHandler?: AsyncMissHandler;
  /** How many times a translation is retried after its handler ran (default 4). */
  maxRetries?: number;
  /**
   * How long `translateAsync` waits for one round of answers, in milliseconds (default 5000), at
   * most {@link MAX_TIMEOUT_MS}: a timer cannot wait longer.
   */
  timeoutMs?: number;
}

/**
 * The longest `timeoutMs` an {@link IotlbIommu} takes: 2^31 − 1 ms (about 24.8 days), the longest
 * wait `setTimeout` makes (a longer one fires at once).
 *
 * @example
 * ```ts
 * import { MAX_TIMEOUT_MS } from "./iommu.ts";
 * console.log(MAX_TIMEOUT_MS); // 2147483647
 * ```
 */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/** Questions asked between two turns of the event loop during a miss storm. */
const ASK_BATCH = 256;

/** Carries an abort out of a round: its reason is what the caller rejects with, unchanged. */
class Aborted {
  constructor(readonly reason: unknown) {}
}

/** A question to the async handler in flight; `done` settles when the handler has answered. */
interface Question {
  done: Promise<void>;
  index: IntervalIndex<Question>;
}

/** Counters of the miss paths (the IOTLB keeps its own hit and miss counters). */
export interface IotlbIommuCounters {
  /** Questions sent to the async handler. */
  asyncRequests: number;
  /** Requests that found their range already asked for and waited for that answer instead. */
  mergedRequests: number;
  /** Rounds that timed out. */
  timeouts: number;
  /** Calls of the synchronous miss handler. */
  syncFaults: number;
}

function firstFailure(r: IotlbLookup & { ok: false }): IovaRange {
  const a = r.misses[0], b = r.accessFails[0];
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a.base <= b.base ? a : b;
}

/**
 * Validates a translation request under the caller's op (the IOTLB would name its own lookup):
 * a u64 `iova`, a length that does not run past 2^64 (0 included: vm-memory translates empty
 * ranges too, see `Iotlb.lookup`), and a permission.
 */
function checkRequest(op: string, iova: unknown, len: unknown, access: unknown): void {
  if (
    !Number.isSafeInteger(iova) || !Number.isSafeInteger(len) || !((iova as number) >= 0 && (len as number) >= 0) ||
    (iova as number) > 2 ** 53 - (len as number) // `iova + len` would round to 2^53
  ) {
    const a = toAddress(iova, op, "iova");
    const n = toLength(len, op, "len");
    if (a + BigInt(n) > 1n << 64n) {
      throw new InvalidArgumentError(op, "len", len, `${hex(n)} from iova ${hex(a)} runs past 2^64`);
    }
  }
  toPermission(access, op, "access");
}

/** A miss handler threw or rejected: the IOMMU cannot work, and the request range says where. */
function handlerFailed(op: string, iova: AddressLike, len: number, e: unknown): IommuMisconfiguredError {
  const why = e instanceof Error ? e.message : String(e);
  return new IommuMisconfiguredError(
    op,
    `the miss handler failed for ${hex(toAddress(iova, op, "iova"))}+${hex(len)}: ${why}`,
    { cause: e },
  );
}

function describe(r: IotlbLookup & { ok: false }, access: Permission): string {
  const parts: string[] = [];
  if (r.misses.length > 0) parts.push(`unmapped ${r.misses.map((m) => `${hex(m.base)}+${hex(m.length)}`).join(", ")}`);
  if (r.accessFails.length > 0) {
    parts.push(
      `no ${permissionName(access)} permission at ${
        r.accessFails.map((m) => `${hex(m.base)}+${hex(m.length)}`).join(", ")
      }`,
    );
  }
  return parts.join("; ");
}

/**
 * An IOMMU backed by an {@link Iotlb}, with optional synchronous and asynchronous miss handlers.
 * Without handlers it is a software IOMMU whose mappings are set directly on `iotlb`.
 *
 * A failed translation throws {@link CannotResolveError} naming the first failing sub-range when
 * there is exactly one, or the whole request when there are several (as vm-memory's test IOMMU
 * does); the message lists every failing sub-range.
 *
 * @example
 * ```ts
 * import { Permissions } from "../../mod.ts";
 * import { IotlbIommu } from "../../iommu.ts";
 * const iommu = new IotlbIommu();
 * iommu.iotlb.setMapping(0x1000, 0x8000, 0x1000, Permissions.Read);
 * console.log(iommu.translate(0x1010, 16, Permissions.Read)); // [ { base: 32784n, length: 16 } ]
 * ```
 */
export class IotlbIommu implements Iommu, Disposable {
  /** The IOTLB translations are served from. */
  readonly iotlb: Iotlb;
  readonly #missHandler: ((fault: IotlbFault) => void) | undefined;
  readonly #asyncMissHandler: AsyncMissHandler | undefined;
  readonly #maxRetries: number;
  readonly #timeoutMs: number;
  /** Questions in flight, one index per access (0-3), so a storm of misses is not a scan per miss. */
  readonly #pending = [0, 1, 2, 3].map(() => new IntervalIndex<Question>());
  readonly #counters: IotlbIommuCounters = { asyncRequests: 0, mergedRequests: 0, timeouts: 0, syncFaults: 0 };
  /** How to end each round in flight at once (its reason), for dispose. */
  readonly #rounds = new Set<(why: unknown) => void>();
  #disposed = false;

  /** Makes the IOMMU over `iotlb` (a new unbounded one by default). */
  constructor(iotlb: Iotlb = new Iotlb(), options: IotlbIommuOptions = {}) {
    const op = "IotlbIommu";
    if (!(iotlb instanceof Iotlb)) throw new InvalidArgumentError(op, "iotlb", iotlb, "must be an Iotlb");
    if (options === null || typeof options !== "object") {
      throw new InvalidArgumentError(op, "options", options, "must be an object");
    }
    for (const name of ["missHandler", "asyncMissHandler"] as const) {
      // Checked here: a handler of the wrong type would only fail at the first miss, far from the cause.
      const h = options[name];
      if (h !== undefined && typeof h !== "function") throw new InvalidArgumentError(op, name, h, "must be a function");
    }
    this.iotlb = iotlb;
    this.#missHandler = options.missHandler;
    this.#asyncMissHandler = options.asyncMissHandler;
    this.#maxRetries = toLength(options.maxRetries ?? 4, op, "maxRetries");
    this.#timeoutMs = toLength(options.timeoutMs ?? 5000, op, "timeoutMs");
    if (this.#timeoutMs > MAX_TIMEOUT_MS) {
      throw new InvalidArgumentError(
        op,
        "timeoutMs",
        options.timeoutMs,
        `must be at most ${MAX_TIMEOUT_MS} (2^31 - 1), the longest wait a timer makes`,
      );
    }
  }

  /**
   * Counters of the miss paths.
   *
   * @example
   * ```ts
   * import { IotlbIommu } from "../../iommu.ts";
   * console.log(new IotlbIommu().counters.asyncRequests); // 0
   * ```
   */
  get counters(): IotlbIommuCounters {
    return { ...this.#counters };
  }

  /**
   * Number of questions to the async handler still unanswered.
   *
   * @example
   * ```ts
   * import { IotlbIommu } from "../../iommu.ts";
   * console.log(new IotlbIommu().pendingRequests); // 0
   * ```
   */
  get pendingRequests(): number {
    let n = 0;
    for (const index of this.#pending) n += index.size;
    return n;
  }

  /**
   * The mapped ranges covering `[iova, iova + len)`; runs the synchronous miss handler and retries
   * on a failed lookup. Throws `CannotResolve` if the range stays unresolved.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { IotlbIommu } from "../../iommu.ts";
   * const iommu = new IotlbIommu(undefined, {
   *   missHandler: (f) => iommu.iotlb.setMapping(f.iova, f.iova, f.length, Permissions.ReadWrite),
   * });
   * console.log(iommu.translate(0x5000, 8, Permissions.Write)[0].base); // 20480n
   * ```
   */
  translate(iova: AddressLike, len: number, access: Permission): IovaRange[] {
    return this.#translateSync(iova, len, access, "IotlbIommu.translate");
  }

  #translateSync(iova: AddressLike, len: number, access: Permission, op: string): IovaRange[] {
    checkRequest(op, iova, len, access);
    let r = this.iotlb.lookup(iova, len, access);
    for (let attempt = 0; !r.ok && this.#missHandler !== undefined && attempt < this.#maxRetries; attempt++) {
      this.#counters.syncFaults++;
      try {
        this.#missHandler(this.#fault(iova, len, access, r, op));
      } catch (e) {
        if (e instanceof CannotResolveError) throw e;
        throw handlerFailed(op, iova, len, e);
      }
      r = this.iotlb.lookup(iova, len, access);
    }
    if (r.ok) return r.ranges;
    throw this.#error(op, iova, len, access, r);
  }

  /**
   * Like {@link IotlbIommu.translate}, answering misses through the async handler: every failing
   * sub-range is asked for once (a request for a range already asked for waits for that answer),
   * the answers are awaited with a timeout, and the lookup is retried. A storm of misses is asked
   * in batches with a turn of the event loop between them, so timers and I/O keep running.
   *
   * @example
   * ```ts
   * import { Permissions } from "../../mod.ts";
   * import { IotlbIommu } from "../../iommu.ts";
   * const iommu: IotlbIommu = new IotlbIommu(undefined, {
   *   asyncMissHandler: async (range) => {
   *     await Promise.resolve(); // a real handler asks over a socket
   *     iommu.iotlb.setMapping(range.base, range.base + 0x100000n, range.length, Permissions.Read);
   *   },
   * });
   * console.log((await iommu.translateAsync(0x2000, 4, Permissions.Read))[0].base); // 1056768n
   * ```
   */
  async translateAsync(
    iova: AddressLike,
    len: number,
    permission: Permission,
    options?: AbortOptions,
  ): Promise<IovaRange[]> {
    const op = "IotlbIommu.translateAsync";
    checkRequest(op, iova, len, permission);
    const signal = signalOf(options, op);
    const access = toPermission(permission, op, "access"); // a name ("Read") as its bits
    if (signal?.aborted) throw signal.reason;
    if (this.#disposed) throw this.#disposedError(op, iova, len);
    let r = this.iotlb.lookup(iova, len, access);
    if (r.ok) return r.ranges;
    const handler = this.#asyncMissHandler;
    if (handler === undefined) {
      if (this.#missHandler !== undefined) return this.#translateSync(iova, len, access, op);
      throw this.#error(op, iova, len, access, r);
    }
    for (let attempt = 0; !r.ok && attempt < this.#maxRetries; attempt++) {
      await this.#round(handler, r, access, op, iova, len, signal);
      r = this.iotlb.lookup(iova, len, access);
    }
    if (r.ok) return r.ranges;
    throw this.#error(op, iova, len, access, r);
  }

  /**
   * Ends what the IOMMU holds: every `translateAsync` still waiting rejects at once with
   * `CannotResolveError` ("the IOMMU was disposed"), the miss handlers' signals abort so they can
   * drop their questions, no timer stays armed, and later `translateAsync` calls reject the same
   * way. `translate` and the IOTLB keep working (they hold nothing). Calling it again does nothing.
   *
   * @example
   * ```ts
   * import { IotlbIommu } from "../../iommu.ts";
   * import { Permissions } from "../../mod.ts";
   * const iommu = new IotlbIommu(undefined, { asyncMissHandler: () => new Promise(() => {}) });
   * const waiting = iommu.translateAsync(0x1000, 8, Permissions.Read).catch((e) => e.reason);
   * iommu[Symbol.dispose]();
   * console.log(await waiting, iommu.pendingRequests); // "the IOMMU was disposed" 0
   * ```
   */
  [Symbol.dispose](): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const end of [...this.#rounds]) end(undefined);
  }

  /**
   * A heading (miss handlers, timeout, retries, the miss-path counters, pending questions) and the
   * IOTLB's table, for `console.log`, instead of the object's fields.
   *
   * @example
   * ```ts
   * import { IotlbIommu } from "../../iommu.ts";
   * console.log(Deno.inspect(new IotlbIommu()).split("\n")[0]);
   * // "IotlbIommu: no miss handler, timeout 5000 ms, 4 retries; 0 asked, 0 merged, 0 timed out, 0 sync faults, 0 pending"
   * ```
   */
  [Symbol.for("Deno.customInspect")](): string {
    return this.#inspect();
  }

  /** The same text for Node's and Bun's `util.inspect`. @example `console.log(iommu)` */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.#inspect();
  }

  #inspect(): string {
    const sync = this.#missHandler !== undefined, async = this.#asyncMissHandler !== undefined;
    const handlers = sync && async
      ? "sync and async miss handlers"
      : sync
      ? "sync miss handler"
      : async
      ? "async miss handler"
      : "no miss handler";
    const c = this.#counters;
    const head =
      `IotlbIommu: ${handlers}, timeout ${this.#timeoutMs} ms, ${this.#maxRetries} retries; ${c.asyncRequests} asked, ${c.mergedRequests} merged, ${c.timeouts} timed out, ${c.syncFaults} sync faults, ${this.pendingRequests} pending${
        this.#disposed ? "; disposed" : ""
      }`;
    return `${head}\n${inspectIotlb(this.iotlb, "Iotlb", "  ")}`;
  }

  #disposedError(op: string, iova: AddressLike, len: number): CannotResolveError {
    return new CannotResolveError(op, { base: toAddress(iova, op, "iova"), length: len }, "the IOMMU was disposed");
  }

  /**
   * One round of questions: asks for every failure of `r` not already asked for, and waits for the
   * answers or the timeout. A round that gives up (timeout, a handler that threw or rejected)
   * aborts its signal and forgets its questions, so later misses ask again.
   */
  async #round(
    handler: AsyncMissHandler,
    r: IotlbLookup & { ok: false },
    access: Permission,
    op: string,
    iova: AddressLike,
    len: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const abort = new AbortController();
    const asked: IntervalNode<Question>[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    let end!: (why: unknown) => void;
    // Ends the round with `why`: the timeout, the caller's abort or dispose, whichever comes first.
    const stopped = new Promise<never>((_, reject) => {
      end = (why) => {
        abort.abort(why instanceof Aborted ? why.reason : undefined);
        reject(why ?? this.#disposedError(op, iova, len));
      };
      timer = setTimeout(() => {
        this.#counters.timeouts++;
        end(
          new CannotResolveError(
            op,
            { base: toAddress(iova, op, "iova"), length: len },
            `the miss handler did not answer within ${this.#timeoutMs} ms`,
          ),
        );
      }, this.#timeoutMs);
    });
    stopped.catch(() => {}); // awaited below, unless the round failed first
    const onAbort = () => end(new Aborted(signal!.reason));
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#rounds.add(end);
    try {
      const waits: Promise<void>[] = [];
      let n = 0;
      for (const [ranges, kind] of [[r.misses, "miss"], [r.accessFails, "access"]] as const) {
        for (const range of ranges) {
          if (++n % ASK_BATCH === 0) {
            await new Promise((resolve) => setImmediate(resolve));
            if (abort.signal.aborted) await stopped;
          }
          waits.push(this.#ask(handler, range, access, kind, abort.signal, asked));
        }
      }
      await Promise.race([Promise.all(waits), stopped]);
    } catch (e) {
      abort.abort();
      for (const node of asked) node.value.index.delete(node);
      if (e instanceof Aborted) throw e.reason;
      if (e instanceof CannotResolveError) throw e;
      throw handlerFailed(op, iova, len, e);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      this.#rounds.delete(end);
    }
  }

  /**
   * Asks `handler` for `range`, unless a question in flight covers it with at least `access`: then
   * waits for that one. A handler that throws at once throws here, and leaves nothing pending.
   */
  #ask(
    handler: AsyncMissHandler,
    range: IovaRange,
    access: Permission,
    kind: "miss" | "access",
    signal: AbortSignal,
    asked: IntervalNode<Question>[],
  ): Promise<void> {
    const base = range.base, end = range.base + BigInt(range.length);
    for (let a: number = access; a < 4; a = (a + 1) | access) {
      const cover = this.#pending[a].covering(base, end);
      if (cover !== undefined) {
        this.#counters.mergedRequests++;
        return cover.value.done;
      }
    }
    this.#counters.asyncRequests++;
    const index = this.#pending[access];
    const question: Question = { done: Promise.resolve(), index };
    const node = index.add(base, end, question);
    let answer: unknown;
    try {
      answer = handler(range, access, kind, signal);
    } catch (e) {
      index.delete(node);
      throw e;
    }
    asked.push(node);
    // Any answer settles the question: a promise, or a value from a handler that is not async.
    question.done = Promise.resolve(answer).then(
      () => void index.delete(node),
      (e) => {
        index.delete(node);
        throw e;
      },
    );
    // Its askers see a rejection through Promise.all; a round that failed before it got that far
    // (a later handler threw) must not leave the rejection unhandled, which ends a Deno process.
    question.done.catch(() => {});
    return question.done;
  }

  #fault(iova: AddressLike, len: number, access: Permission, r: IotlbLookup & { ok: false }, op: string): IotlbFault {
    return {
      iova: toAddress(iova, op, "iova"),
      length: len,
      access: toPermission(access, op, "access"),
      misses: r.misses,
      accessFails: r.accessFails,
    };
  }

  #error(op: string, iova: AddressLike, len: number, access: Permission, r: IotlbLookup & { ok: false }) {
    const count = r.misses.length + r.accessFails.length;
    const range = count === 1 ? firstFailure(r) : { base: toAddress(iova, op, "iova"), length: len };
    return new CannotResolveError(op, range, describe(r, access));
  }
}
