/**
 * The bulk-copy engine: moves bytes between a caller's `Uint8Array` and a region's memory with
 * whichever of `TypedArray.set` and the helper's `memmove` (one FFI call, every argument a double
 * or the array itself, so no BigInt and the runtime's fast call path) is faster for the size and
 * direction on this runtime. Both are safe for the same reason: a region's buffer is attached only
 * while its memory is mapped (`MmapRegion.close` detaches, then unmaps), and the copy checks that
 * and the caller's array's real length right before it runs, with no user code in between.
 * @module
 */

import { bytesWindow, fewerBytesError, TYPED_BYTE_LENGTH, TYPED_LENGTH, TYPED_SET } from "./caller_bytes.ts";
import type { NativeBinding } from "../ffi/binding.ts";
import { native } from "../ffi/native.ts";
import { forgetArrays, knownAddress, knownArray, knownView, noticeArray } from "./array_address.ts";
import type { ElementViews } from "./view_window.ts";

/**
 * The smallest copy (bytes) that goes through `memmove` rather than `TypedArray.set`, per runtime
 * and direction; measured by bench/copy_engine.ts (the figures are in its header). Out of memory,
 * `set` needs a `subarray` of the region's array per call, which costs more than an FFI call at
 * every size on both runtimes. Into memory, `set` of the caller's whole array needs no view and is
 * as fast or faster: through the library, memmove writes measured 1.3x slower at 4 KiB on Bun and
 * no faster on Deno, so writes stay on `set` (the thresholds are Infinity) until a machine says
 * otherwise.
 */
export interface CopyThresholds {
  /** Copies out of memory of at least this many bytes take `memmove`. */
  readonly out: number;
  /** Copies into memory of at least this many bytes take `memmove`. */
  readonly in: number;
}

/**
 * Crossovers per runtime (see {@link CopyThresholds}).
 *
 * @example
 * ```ts ignore
 * console.log(COPY_THRESHOLDS.deno.in); // Infinity: writes copy with TypedArray.set
 * ```
 */
export const COPY_THRESHOLDS: { readonly deno: CopyThresholds; readonly bun: CopyThresholds } = {
  deno: { out: 1, in: Infinity },
  bun: { out: 1, in: Infinity },
};

/** Bound on first use: a region exists by then, so the helper is loaded already. */
let ffi: NativeBinding | undefined;
let outMin = 0;
let inMin = 0;
/**
 * The smallest write {@link copyIn} copies by memmove: smaller ones are the caller's to copy with
 * `TypedArray.set` (copy_range.ts does, inline). 0 until the engine is bound, so that the first
 * write reaches {@link copyIn}, which binds it.
 */
export let copyInMin = 0;
/** Whether copies learn a reused array's address (Deno: see array_address.ts; Bun passes arrays cheaply). */
let learns = false;

function bind(): NativeBinding {
  const n = native();
  const bun = n.runtime === "bun";
  const t = forced ?? (bun ? COPY_THRESHOLDS.bun : COPY_THRESHOLDS.deno);
  outMin = t.out;
  inMin = t.in;
  copyInMin = t.in;
  learns = forcedLearning ?? !bun;
  // FRAGMENTS is the engine's own, never detached, 512 bytes: off V8's heap, so it never moves.
  fragmentsAddress = learns ? Number(n.addressOf(FRAGMENTS)) : 0;
  return ffi = n;
}

/** The host address of {@link FRAGMENTS} where copies pass addresses (see array_address.ts), else 0. */
let fragmentsAddress = 0;
let forced: CopyThresholds | undefined;
let forcedLearning: boolean | undefined;

/**
 * Makes the engine use `thresholds` instead of the runtime's (`undefined`: back to the runtime's),
 * so that tests exercise each engine and each side of a crossover on every runtime. Internal.
 *
 * @example
 * ```ts ignore
 * forceCopyThresholds({ out: Infinity, in: Infinity }); // TypedArray.set only
 * ```
 */
export function forceCopyThresholds(thresholds: CopyThresholds | undefined): void {
  forced = thresholds;
  bind();
}

/**
 * Turns learning reused arrays' addresses (array_address.ts) on or off, forgetting what was learnt;
 * `undefined`: the runtime's choice. Internal, for tests and benchmarks.
 *
 * @example
 * ```ts ignore
 * forceAddressLearning(false); // every copy passes the caller's array itself
 * ```
 */
export function forceAddressLearning(on: boolean | undefined): void {
  forcedLearning = on;
  bind();
  forgetArrays();
}

/**
 * Copies `len` bytes at view offset `off` of `views` into `buf[bufOff…]`. The caller has checked
 * that the views are live and readable and the range lies inside them; `buf` is checked here, as
 * late as possible, against its real length: a read never fills past its end or into a detached
 * array (those take `set`, which refuses them). Throws `InvalidArgumentError` (for `owner.op`) when `buf` cannot take the bytes.
 *
 * @example
 * ```ts ignore
 * copyOut(views, 0x1000, buf, 0, 4096, "GuestMemoryMmap", "read");
 * ```
 */
export function copyOut(
  views: ElementViews,
  off: number,
  buf: Uint8Array,
  bufOff: number,
  len: number,
  owner: string,
  op: string,
): void {
  const n = ffi ?? bind();
  const host = views.host;
  if (len >= outMin && host !== undefined && off + len <= views.u8.length) {
    if (buf === knownArray) {
      // Known to hold bytes that never move; knownView's length is 0 once they are detached.
      if (bufOff + len <= knownView.length) {
        n.copyAt(knownAddress + bufOff, host + off, len);
        return;
      }
    } else {
      // Raw bytes only into an array of bytes: a wider typed array given Uint8Array's prototype
      // (which a read accepts) takes `set`, which converts element by element or refuses.
      const real = TYPED_LENGTH.call(buf) as number;
      if (bufOff + len <= real && TYPED_BYTE_LENGTH.call(buf) === real) {
        n.copyOut(buf, bufOff, host + off, len);
        if (learns) noticeArray(n, buf, real);
        return;
      }
    }
  }
  copyOutBySet(views, off, buf, bufOff, len, owner, op);
}

/** {@link copyOut} by `TypedArray.set`; apart, so that its try/catch is not in the FFI path (JSC). */
function copyOutBySet(
  views: ElementViews,
  off: number,
  buf: Uint8Array,
  bufOff: number,
  len: number,
  owner: string,
  op: string,
): void {
  try {
    TYPED_SET.call(buf, views.u8.subarray(off, off + len), bufOff);
  } catch {
    throw fewerBytesError(`${owner}.${op}`, buf); // it claimed more bytes than it holds
  }
}

/**
 * Copies `buf[bufOff, bufOff + len)` to view offset `off` of `views` (live, writable, in bounds:
 * the caller's checks) by memmove; for writes of at least {@link copyInMin} bytes (smaller ones the
 * caller copies with `TypedArray.set`, as this does for the first write). Throws `InvalidArgumentError` (for `owner.op`) when `buf` no
 * longer holds the bytes, having moved nothing.
 *
 * @example
 * ```ts ignore
 * if (data.length >= copyInMin) copyIn(views, 0x1000, data, 0, data.length, "GuestMemoryMmap", "write");
 * ```
 */
export function copyIn(
  views: ElementViews,
  off: number,
  buf: Uint8Array,
  bufOff: number,
  len: number,
  owner: string,
  op: string,
): void {
  const n = ffi ?? bind();
  // A write's array was checked to hold bytes when the request began; only its length can change.
  const real = buf === knownArray ? knownView.length : TYPED_LENGTH.call(buf) as number;
  if (bufOff + len > real) throw fewerBytesError(`${owner}.${op}`, buf);
  const host = views.host;
  if (len < inMin || host === undefined || off + len > views.u8.length) {
    // The first write, made before the engine knew its threshold, or a range the views do not
    // hold (which `set` refuses with a RangeError rather than copy).
    views.u8.set(bytesWindow(buf, bufOff, len, op, owner), off);
    return;
  }
  if (buf === knownArray) {
    n.copyAt(host + off, knownAddress + bufOff, len);
  } else {
    n.copyIn(host + off, buf, bufOff, len);
    if (learns) noticeArray(n, buf, real);
  }
}

/** The most fragments {@link copyFragments} takes in one call; longer requests copy per fragment. */
export const MAX_FRAGMENTS = 32;

/**
 * Scratch for one request's fragments, filled by the caller right before {@link copyFragments}:
 * `(host address, length)` pairs, in the order their bytes follow each other in the caller's array.
 * JavaScript runs one request at a time per isolate, and nothing runs between filling and copying.
 *
 * @example
 * ```ts ignore
 * FRAGMENTS[0] = views.host + off; FRAGMENTS[1] = n;
 * ```
 */
export const FRAGMENTS: Float64Array = new Float64Array(2 * MAX_FRAGMENTS);

/**
 * Whether a request of `len` bytes in several fragments goes through one {@link copyFragments} call
 * (the engine's choice for a single copy of that size and direction).
 *
 * @example
 * ```ts ignore
 * if (batchesFragments(false, 8192)) copyFragments(2, buf, 0, 8192, false, "GuestMemoryMmap", "read");
 * ```
 */
export function batchesFragments(write: boolean, len: number): boolean {
  if (ffi === undefined) bind();
  return len >= (write ? inMin : outMin);
}

/**
 * Copies the `count` fragments in {@link FRAGMENTS} (their views checked live, with the access
 * allowed, by the caller, with no user code since) to or from `buf[bufOff, bufOff + len)` in one
 * FFI call; `len` is the fragments' total. Returns false, having copied nothing, when `buf` does
 * not really hold `len` bytes from `bufOff` or is not an array of bytes: the caller then copies per
 * fragment, which says what is wrong.
 *
 * @example
 * ```ts ignore
 * if (!copyFragments(2, buf, 0, 8192, false)) copyPerFragment();
 * ```
 */
export function copyFragments(count: number, buf: Uint8Array, bufOff: number, len: number, write: boolean): boolean {
  const n = ffi ?? bind();
  const real = buf === knownArray ? knownView.length : TYPED_LENGTH.call(buf) as number;
  if (bufOff + len > real) return false;
  if (buf === knownArray && fragmentsAddress !== 0) {
    n.copyFragmentsAt(fragmentsAddress, count, knownAddress + bufOff, write ? 1 : 0);
    return true;
  }
  if (TYPED_BYTE_LENGTH.call(buf) !== real) return false;
  if (write) n.copyInFrags(FRAGMENTS, count, buf, bufOff);
  else n.copyOutFrags(FRAGMENTS, count, buf, bufOff);
  if (learns) noticeArray(n, buf, real);
  return true;
}
