/**
 * Web streams over guest memory: a `ReadableStream` of a range's bytes and a `WritableStream`
 * that fills a range, to `pipeTo`/`pipeThrough` a `Deno.FsFile`, a `fetch` body, a child's pipe,
 * or to iterate with `for await`. Bounded: one chunk is copied per pull or write, never the whole
 * range, and nothing is read ahead. Every chunk handed out is a copy (or the reader's own BYOB
 * buffer, filled by a copy), so no view of guest memory escapes into code that could keep it past
 * an unmap.
 * @module
 */

import { toAddress, toLength } from "./address.ts";
import { GuestMemoryError, InvalidArgumentError, PartialBufferError } from "./errors.ts";

/**
 * Options of `readableStream` and `writableStream`.
 *
 * @example
 * ```ts
 * import type { VolatileStreamOptions } from "./volatile_streams.ts";
 * const options: VolatileStreamOptions = { chunkSize: 16 * 1024 };
 * ```
 */
export interface VolatileStreamOptions {
  /**
   * Bytes per chunk a readable stream enqueues when the reader brings no buffer of its own
   * (default 64 KiB, at most {@link MAX_CHUNK_SIZE}).
   */
  chunkSize?: number;
  /**
   * For a writable stream: whether closing it before `count` bytes were written is an error
   * (`PartialBufferError`, the default) or fine (a source shorter than the range).
   */
  exact?: boolean;
}

/**
 * The largest `chunkSize` a stream takes (16 MiB): a chunk is a copy in JavaScript memory.
 *
 * @example
 * ```ts
 * import { MAX_CHUNK_SIZE } from "./volatile_streams.ts";
 * console.log(MAX_CHUNK_SIZE); // 16777216
 * ```
 */
export const MAX_CHUNK_SIZE = 1 << 24;

const DEFAULT_CHUNK = 1 << 16;

/**
 * Copies between `buf` and memory at `addr`, as far as the memory reaches; returns the count or
 * throws when nothing could move (a `Bytes`'s transfer, bound to its object).
 *
 * @example
 * ```ts ignore
 * const copy: Copier = (buf, len, addr) => this.transfer(buf, len, addr, false, "readableStream");
 * ```
 */
export type Copier = (buf: Uint8Array, len: number, addr: number | bigint) => number;

interface Range {
  start: number | bigint;
  count: number;
  op: string;
}

function checkRange(addr: unknown, count: unknown, options: unknown, op: string, addressName: string): Range {
  const n = toLength(count, op, "count");
  const a = toAddress(addr, op, addressName);
  if (a + BigInt(n) > 1n << 64n) {
    throw new InvalidArgumentError(op, "count", count, `runs past 2^64 from ${addressName} 0x${a.toString(16)}`);
  }
  if (options !== undefined && (options === null || typeof options !== "object")) {
    throw new InvalidArgumentError(op, "options", options, "must be an object");
  }
  return { start: a < 2n ** 53n - BigInt(n) ? Number(a) : a, count: n, op };
}

function at(r: Range, done: number): number | bigint {
  return typeof r.start === "number" ? r.start + done : r.start + BigInt(done);
}

function chunkSizeOf(options: VolatileStreamOptions | undefined, op: string): number {
  const c = options?.chunkSize ?? DEFAULT_CHUNK;
  if (typeof c !== "number" || !Number.isSafeInteger(c) || c < 1 || c > MAX_CHUNK_SIZE) {
    throw new InvalidArgumentError(op, "options.chunkSize", c, `must be an integer in [1, ${MAX_CHUNK_SIZE}]`);
  }
  return c;
}

/** A failure after `done` bytes: the library's own errors as they are once nothing moved, else PartialBuffer. */
function stopped(r: Range, done: number, e: unknown): unknown {
  if (done === 0 && e instanceof GuestMemoryError) return e;
  const why = e instanceof Error ? e.message : String(e);
  const err = new PartialBufferError(r.op, BigInt(r.start), r.count, done, why);
  (err as { cause?: unknown }).cause = e;
  return err;
}

/**
 * A byte stream of `count` bytes of memory from `addr`, read one chunk per pull (into the reader's
 * buffer for a BYOB reader). Memory that ends early errors the stream with `PartialBufferError`
 * (`completed` = the bytes delivered), or with the memory's own error if nothing was.
 *
 * @example
 * ```ts ignore
 * return readableOver((buf, len, a) => this.transfer(buf, len, a, false, "readableStream"), addr, count, options, op, "addr");
 * ```
 */
export function readableOver(
  copy: Copier,
  addr: unknown,
  count: unknown,
  options: VolatileStreamOptions | undefined,
  op: string,
  addressName: string,
): ReadableStream<Uint8Array> {
  const r = checkRange(addr, count, options, op, addressName);
  const chunkSize = chunkSizeOf(options, op);
  let done = 0;
  /** Fills `view` (at most what is left) from the cursor; returns the bytes copied. */
  const fill = (view: Uint8Array): number => {
    const want = Math.min(view.length, r.count - done);
    let n: number;
    try {
      n = copy(view, want, at(r, done));
    } catch (e) {
      throw stopped(r, done, e);
    }
    if (n === 0) throw stopped(r, done, new Error("the memory ends there"));
    done += n;
    return n;
  };
  return new ReadableStream({
    type: "bytes",
    autoAllocateChunkSize: chunkSize,
    pull(controller) {
      if (done === r.count) {
        controller.close();
        controller.byobRequest?.respond(0);
        return;
      }
      const req = controller.byobRequest;
      const view = req?.view;
      if (req && view) {
        const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
        req.respond(fill(bytes));
      } else {
        const chunk = new Uint8Array(Math.min(chunkSize, r.count - done));
        const n = fill(chunk);
        controller.enqueue(n === chunk.length ? chunk : chunk.slice(0, n));
      }
      if (done === r.count) {
        controller.close();
      }
    },
  }, { highWaterMark: 0 });
}

/**
 * A stream that writes its chunks to memory from `addr` on, in order, up to `count` bytes. A chunk
 * that would run past `count` errors the stream with `InvalidArgumentError` before any of it is
 * written; memory that ends early errors it with `PartialBufferError` (bytes before the gap stay
 * written); closing it short of `count` is `PartialBufferError` unless `exact` is false.
 *
 * @example
 * ```ts ignore
 * return writableOver((buf, len, a) => this.transfer(buf, len, a, true, "writableStream"), addr, count, options, op, "addr");
 * ```
 */
export function writableOver(
  copy: Copier,
  addr: unknown,
  count: unknown,
  options: VolatileStreamOptions | undefined,
  op: string,
  addressName: string,
): WritableStream<Uint8Array> {
  const r = checkRange(addr, count, options, op, addressName);
  const exact = options?.exact ?? true;
  if (typeof exact !== "boolean") throw new InvalidArgumentError(op, "options.exact", exact, "must be a boolean");
  let done = 0;
  return new WritableStream<Uint8Array>({
    write(chunk) {
      if (!(chunk instanceof Uint8Array)) {
        throw new InvalidArgumentError(op, "chunk", chunk, "must be a Uint8Array");
      }
      const len = chunk.length;
      if (len > r.count - done) {
        throw new InvalidArgumentError(
          op,
          "chunk",
          `${len} bytes`,
          `runs past the ${r.count} bytes the stream writes (${done} written so far)`,
        );
      }
      if (len === 0) return;
      let n: number;
      try {
        n = copy(chunk, len, at(r, done));
      } catch (e) {
        throw stopped(r, done, e);
      }
      done += n;
      if (n < len) throw stopped(r, done, new Error("the memory ends there"));
    },
    close() {
      if (exact && done < r.count) {
        throw new PartialBufferError(op, BigInt(r.start), r.count, done, "the source ended early");
      }
    },
  }, { highWaterMark: 1 });
}
