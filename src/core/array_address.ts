/**
 * The host address of the caller's array the copy engine meets again and again (a device's reused
 * request buffer), so that a copy can pass two addresses instead of the array itself: on Deno an
 * array argument costs about as much as the rest of the FFI call. Only an array whose bytes never
 * move qualifies: a plain, fixed-length `ArrayBuffer` (V8 never moves such a backing store while it
 * is attached), and an array long enough never to live inside V8's heap (small arrays can, and the
 * collector moves those). Detaching is the one way left to take the bytes away, and the engine
 * checks the array's real length (0 once detached) before every copy.
 * @module
 */

import { claimedLength, CLAIMS_TOO_MUCH, TYPED_BUFFER, TYPED_BYTE_OFFSET } from "./caller_bytes.ts";
import type { NativeBinding } from "../ffi/binding.ts";

/** Smallest array (bytes) whose address is learnt: far above V8's on-heap limit for typed arrays (64). */
const MIN_BYTES = 256;
/** Largest: bigger copies gain nothing measurable, and a learnt array stays reachable (see below). */
const MAX_BYTES = 1024 * 1024;

const RESIZABLE = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "resizable")?.get;

/**
 * The array whose address is known, or `undefined`. It is kept reachable until another array takes
 * its place (as is {@link noticeArray}'s candidate): at most two of the caller's recent arrays, of
 * at most 1 MiB each.
 */
export let knownArray: Uint8Array | undefined = undefined;
/** The host address of `knownArray`'s first byte (its byte offset included). */
export let knownAddress = 0;
/**
 * The library's own array over exactly `knownArray`'s bytes: its `length` is the real one, read
 * without a call (0 once the buffer is detached, which detaches every view of it), and no caller
 * can shadow it, since the array never leaves this module's users.
 */
export let knownView: Uint8Array = new Uint8Array(0);
let candidate: Uint8Array | undefined = undefined;

/**
 * Called after a copy passed `buf` (a byte array of `real` bytes) as an array: the second time in a
 * row, its address is learnt, if it qualifies. Allocates only then (the runtime's pointer object).
 *
 * @example
 * ```ts ignore
 * noticeArray(native(), buf, real);
 * ```
 */
export function noticeArray(n: NativeBinding, buf: Uint8Array, real: number): void {
  if (buf !== candidate) {
    candidate = real >= MIN_BYTES && real <= MAX_BYTES ? buf : undefined;
    return;
  }
  candidate = undefined;
  const buffer = TYPED_BUFFER.call(buf);
  try {
    // A SharedArrayBuffer is refused by the getter (it throws); a resizable buffer may move.
    if (RESIZABLE === undefined || RESIZABLE.call(buffer) !== false) return;
  } catch {
    return;
  }
  knownView = new Uint8Array(buffer as ArrayBuffer, TYPED_BYTE_OFFSET.call(buf) as number, real);
  knownAddress = Number(n.addressOf(buf));
  knownArray = buf;
}

/**
 * `claimedLength(buf)` (caller_bytes.ts), the same answer, without a call for the known array: its
 * `length` property read once, checked against {@link knownView}'s length.
 *
 * @example
 * ```ts ignore
 * const len = claimed(buf);
 * ```
 */
export function claimed(buf: Uint8Array): number {
  if (buf !== knownArray || !(buf instanceof Uint8Array)) return claimedLength(buf);
  // claimedLength's read of `length`, written out again: the same read as a shared helper (inlined
  // all the same) measured 3 ns more per 4 KiB readSlice on Deno 2.9.6.
  let n: unknown;
  try {
    n = buf.length;
  } catch {
    return -1; // an own getter that throws
  }
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) return -1;
  return n <= knownView.length ? n : CLAIMS_TOO_MUCH;
}

/**
 * Forgets the known array (tests, and a runtime that cannot give addresses).
 *
 * @example
 * ```ts ignore
 * forgetArrays();
 * ```
 */
export function forgetArrays(): void {
  knownArray = undefined;
  knownView = new Uint8Array(0);
  candidate = undefined;
  knownAddress = 0;
}
