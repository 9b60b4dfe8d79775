/**
 * Asynchronous I/O between guest memory and streams: `Deno.Conn` (TCP, Unix sockets), `Deno.FsFile`
 * or anything with promise-returning `read`/`write`. Streams have no descriptor to `readv` into, so
 * each fragment is handed to the stream as a zero-copy view of guest memory, one after the other.
 * The regions stay pinned while that happens: closing them meanwhile cannot unmap memory the kernel
 * is about to write.
 * @module
 */

import { GuestIOError, InvalidArgumentError, PartialBufferError, RegionClosedError } from "./errors.ts";
import { hex } from "./format.ts";
import { PIN } from "./mapping.ts";
import { abortable } from "./abort_signal.ts";
import type { RegionViews } from "./region_views.ts";
import type { IoSlice } from "./io_slice.ts";

/**
 * A source of bytes with Deno's `Reader` shape: `read` fills a prefix of `p` and resolves to the
 * count, or to `null` at the end of the stream. `Deno.Conn`, `Deno.UnixConn`, `Deno.FsFile` fit.
 *
 * @example
 * ```ts
 * import type { AsyncReader } from "./volatile_io_async.ts";
 * const zeros: AsyncReader = { read: (p) => Promise.resolve(p.fill(0).length) };
 * ```
 */
export interface AsyncReader {
  /** Reads into `p`; resolves to the number of bytes read, or `null` at the end. */
  read(p: Uint8Array): Promise<number | null>;
}

/**
 * A sink of bytes with Deno's `Writer` shape: `write` takes a prefix of `p` and resolves to its
 * length. `Deno.Conn`, `Deno.UnixConn`, `Deno.FsFile` fit.
 *
 * @example
 * ```ts
 * import type { AsyncWriter } from "./volatile_io_async.ts";
 * const devNull: AsyncWriter = { write: (p) => Promise.resolve(p.length) };
 * ```
 */
export interface AsyncWriter {
  /** Writes (a prefix of) `p`; resolves to the number of bytes written. */
  write(p: Uint8Array): Promise<number>;
}

/**
 * One fragment of an I/O and the views of the region holding it (whose mapping gets pinned).
 *
 * @example
 * ```ts ignore
 * const fragment: IoFragment = { slice, views: region.views };
 * ```
 */
export interface IoFragment {
  /** The fragment. */
  readonly slice: IoSlice;
  /** The views over the region that holds it. */
  readonly views: RegionViews;
}

/**
 * Checks `io` has the method the transfer needs, so a wrong argument fails before anything moves.
 *
 * @example
 * ```ts ignore
 * checkStream(conn, true, "GuestMemoryMmap.readVolatileFromAsync");
 * ```
 */
export function checkStream(io: unknown, intoMemory: boolean, op: string): void {
  const method = intoMemory ? "read" : "write";
  if (io === null || typeof io !== "object" || typeof (io as Record<string, unknown>)[method] !== "function") {
    throw new InvalidArgumentError(
      op,
      intoMemory ? "source" : "sink",
      io,
      intoMemory
        ? "must have a read(p: Uint8Array): Promise<number | null> method (Deno.Conn, Deno.FsFile, …) or be a byte ReadableStream"
        : "must have a write(p: Uint8Array): Promise<number> method (Deno.Conn, Deno.FsFile, …) or be a WritableStream",
    );
  }
}

/** The largest bounce buffer a stream source reads into at once. */
const BOUNCE_MAX = 1 << 20;

/**
 * A web stream given as the source or sink of an asynchronous transfer, seen as an
 * {@link AsyncReader} or {@link AsyncWriter} for that one transfer; `release` gives the stream's
 * lock back afterwards, so the caller can go on using the stream. A source must be a byte stream
 * (`Deno.FsFile.readable`, a `fetch` body, `readableStream` here): its BYOB reads take exactly the
 * bytes asked for, where splitting a default stream's chunk would lose the rest. Reads go through
 * a buffer of the adapter's own and writes hand the sink a copy: a stream may keep or transfer
 * the chunks it is given, which must never be guest memory. Anything else is returned as is.
 *
 * @example
 * ```ts ignore
 * const { io, release } = adaptStream(file.readable, true, "GuestMemoryMmap.readVolatileFromAsync");
 * ```
 */
export function adaptStream(
  io: unknown,
  intoMemory: boolean,
  op: string,
): { io: unknown; release: () => void } {
  if (intoMemory && io instanceof ReadableStream) {
    let reader: ReadableStreamBYOBReader;
    try {
      reader = io.getReader({ mode: "byob" });
    } catch (e) {
      const why = e instanceof TypeError && !io.locked
        ? "must be a byte stream (Deno.FsFile.readable, a fetch body): a default stream's chunk could not be split without losing bytes"
        : "is locked by another reader";
      throw new InvalidArgumentError(op, "source", "ReadableStream", why);
    }
    const source: AsyncReader = {
      read: async (p) => {
        // Bounded: a fragment may be a whole region, its bounce buffer is at most 1 MiB.
        const { value, done } = await reader.read(new Uint8Array(Math.min(p.length, BOUNCE_MAX)));
        if (done || value === undefined) return null;
        p.set(value);
        return value.length;
      },
    };
    return { io: source, release: () => reader.releaseLock() };
  }
  if (!intoMemory && io instanceof WritableStream) {
    if (io.locked) throw new InvalidArgumentError(op, "sink", "WritableStream", "is locked by another writer");
    const writer = io.getWriter();
    const sink: AsyncWriter = {
      write: async (p) => {
        await writer.write(p.slice());
        return p.length;
      },
    };
    return { io: sink, release: () => writer.releaseLock() };
  }
  return { io, release: () => {} };
}

/**
 * Reads from `source` into the fragments in order; resolves to the bytes read. Without `exact`,
 * each fragment gets one `read` and a short one does not stop the next fragment from being offered
 * (vm-memory's `read_volatile_from`); with `exact`, each fragment is read until full, and fewer
 * than `count` bytes in all rejects with `PartialBufferError`. Bytes read are marked dirty.
 *
 * Aborting `signal` rejects at once with its reason; a `read` already handed a view keeps the
 * regions pinned until it settles, and whatever it puts in memory is marked dirty then.
 *
 * @example
 * ```ts ignore
 * const n = await readIntoAsync(fragments, conn, false, 4096, 0x1000n, "GuestMemoryMmap.readVolatileFromAsync");
 * ```
 */
export async function readIntoAsync(
  fragments: readonly IoFragment[],
  source: AsyncReader,
  exact: boolean,
  count: number,
  addr: bigint,
  op: string,
  signal?: AbortSignal,
): Promise<number> {
  return await pinnedWhile(
    fragments,
    true,
    op,
    (abandon) => readFragments(fragments, source, exact, count, addr, op, signal, abandon),
  );
}

/**
 * Runs `transfer` with the fragments' regions pinned. A call still running when an abort ended the
 * transfer (handed to `abandon`) keeps them pinned until it settles.
 */
async function pinnedWhile(
  fragments: readonly IoFragment[],
  write: boolean,
  op: string,
  transfer: (abandon: (call: Promise<unknown>) => void) => Promise<number>,
): Promise<number> {
  const pins = pinAll(fragments, write, op);
  let late: Promise<unknown> | undefined;
  try {
    return await transfer((p) => late = p);
  } finally {
    if (late === undefined) pins[Symbol.dispose]();
    else late.then(() => pins[Symbol.dispose](), () => pins[Symbol.dispose]());
  }
}

async function readFragments(
  fragments: readonly IoFragment[],
  source: AsyncReader,
  exact: boolean,
  count: number,
  addr: bigint,
  op: string,
  signal: AbortSignal | undefined,
  abandon: (call: Promise<unknown>) => void,
): Promise<number> {
  let done = 0, ended = false;
  for (const f of fragments) {
    const s = f.slice;
    let got = 0;
    while (got < s.len) {
      const view = viewOf(f, got, true, op);
      const len = view.length; // a close() meanwhile detaches the view
      let n: unknown;
      if (signal?.aborted) throw signal.reason;
      let call: Promise<number | null> | undefined;
      try {
        call = Promise.resolve(source.read(view));
        n = await abortable(call, signal);
      } catch (e) {
        // The source had the view: whatever it wrote there before failing is in guest memory.
        logLanded(s, got, len);
        if (signal?.aborted && e === signal.reason && call !== undefined) {
          // Still running: it may yet write into the view, so log that too when it does.
          const at = got;
          abandon(call.finally(() => logLanded(s, at, len)));
          throw e;
        }
        throw new GuestIOError(op, e);
      }
      let k: number;
      try {
        k = n === null ? 0 : checkCount(n, len, "source.read", op);
      } catch (e) {
        logLanded(s, got, len); // a count that cannot be believed: any byte of the view may be new
        throw e;
      }
      // Logged before anything below can throw: the bytes are in guest memory whatever happened to
      // it meanwhile, and a dirty log must never miss a write that landed.
      if (k > 0) logLanded(s, got, k);
      // The bytes landed in memory that is still mapped (the pin saw to that), but the caller
      // closed it meanwhile: they are lost, which must not look like success.
      if (f.views.mmap.closed) throw closedMeanwhile(op, addr + BigInt(done + got));
      // Likewise a leased view (IOMMU revocation "views") detached because the translation went:
      // the bytes landed where the IOVA pointed before (and are logged there, above). The slice's
      // guard says so (or, if user code merely transferred the buffer away, lets the read count).
      if (view.buffer.detached) s.ioAddress(true, op);
      if (k === 0) {
        ended = true;
        break;
      }
      got += k;
      if (!exact) break;
    }
    done += got;
    if (exact && ended) break;
  }
  if (exact && done !== count) {
    throw new PartialBufferError(op, addr, count, done, ended ? "the source ended early" : undefined);
  }
  return done;
}

/**
 * Writes the fragments to `sink` in order, each one whole (short writes are continued, as
 * vm-memory's `write_all_volatile`); resolves to the bytes written. With `exact`, fewer than
 * `count` (the range ran into a hole) rejects with `PartialBufferError`. Aborting `signal` rejects
 * at once with its reason; a `write` in flight keeps the regions pinned until it settles.
 *
 * @example
 * ```ts ignore
 * await writeFromAsync(fragments, conn, true, 4096, 0x1000n, "GuestMemoryMmap.writeAllVolatileToAsync");
 * ```
 */
export async function writeFromAsync(
  fragments: readonly IoFragment[],
  sink: AsyncWriter,
  exact: boolean,
  count: number,
  addr: bigint,
  op: string,
  signal?: AbortSignal,
): Promise<number> {
  return await pinnedWhile(
    fragments,
    false,
    op,
    (abandon) => writeFragments(fragments, sink, exact, count, addr, op, signal, abandon),
  );
}

async function writeFragments(
  fragments: readonly IoFragment[],
  sink: AsyncWriter,
  exact: boolean,
  count: number,
  addr: bigint,
  op: string,
  signal: AbortSignal | undefined,
  abandon: (call: Promise<unknown>) => void,
): Promise<number> {
  let done = 0;
  for (const f of fragments) {
    let put = 0;
    while (put < f.slice.len) {
      const view = viewOf(f, put, false, op);
      const len = view.length; // a close() meanwhile detaches the view
      let n: unknown;
      if (signal?.aborted) throw signal.reason;
      let call: Promise<number> | undefined;
      try {
        call = Promise.resolve(sink.write(view));
        n = await abortable(call, signal);
      } catch (e) {
        if (signal?.aborted && e === signal.reason && call !== undefined) {
          abandon(call);
          throw e;
        }
        throw new GuestIOError(op, e);
      }
      const k = checkCount(n, len, "sink.write", op);
      if (k === 0) throw new GuestIOError(op, new Error("the sink accepted no bytes (write returned 0)"));
      put += k;
    }
    done += put;
  }
  if (exact && done !== count) throw new PartialBufferError(op, addr, count, done);
  return done;
}

/**
 * Pins every region the fragments touch, after checking each fragment allows the access, so a
 * refusal comes before any byte moves.
 */
function pinAll(fragments: readonly IoFragment[], write: boolean, op: string): Disposable {
  const pins: Disposable[] = [];
  const pinned: unknown[] = [];
  const release = {
    [Symbol.dispose]() {
      let failure: unknown;
      for (const p of pins) {
        try {
          p[Symbol.dispose]();
        } catch (e) {
          failure ??= e;
        }
      }
      if (failure !== undefined) throw failure;
    },
  };
  try {
    for (const f of fragments) {
      f.slice.ioAddress(write, op);
      const mmap = f.views.mmap;
      if (pinned.includes(mmap)) continue;
      pins.push(mmap[PIN](op));
      pinned.push(mmap);
    }
  } catch (e) {
    release[Symbol.dispose]();
    throw e;
  }
  return release;
}

/**
 * A view of the fragment from byte `skip` on. Guest memory is handed out zero-copy, except that
 * memory without write access goes to a sink as a copy: a JavaScript sink that wrote into a view
 * of read-only memory would fault. Throws `RegionClosedError` once the region is closed.
 */
function viewOf(f: IoFragment, skip: number, write: boolean, op: string): Uint8Array<ArrayBuffer> {
  const host = f.slice.ioAddress(write, op); // refreshes stale views; throws if closed or refused
  const views = f.views;
  const base = Number(host - views.mmap.hostAddress) - views.offset + skip;
  const end = base + f.slice.len - skip;
  // Zero-copy through the slice, so that a guard that revokes views leases this one too.
  return write || views.writable ? f.slice.offset(skip).bytes() : views.u8.slice(base, end);
}

/** Marks `len` bytes of the fragment from byte `from` on dirty, in the slice's own log. */
function logLanded(s: IoSlice, from: number, len: number): void {
  s.dirtyLog?.markDirty(s.dirtyLogOffset + from, len);
}

function checkCount(n: unknown, max: number, what: string, op: string): number {
  if (typeof n === "number" && Number.isInteger(n) && n >= 0 && n <= max) return n;
  throw new GuestIOError(op, new Error(`${what} returned ${String(n)} for a ${max}-byte buffer`));
}

function closedMeanwhile(op: string, addr: bigint): RegionClosedError {
  return new RegionClosedError(
    op,
    `the memory at ${hex(addr)}, which the in-flight read was filling,`,
  );
}
