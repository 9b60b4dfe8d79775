/**
 * How the library reads the extent of a byte array a caller hands in. A `Uint8Array` is an
 * ordinary object: own properties can shadow `length`, `byteLength`, `byteOffset`, `buffer`, `set`,
 * `subarray` (or the `constructor` it takes its species from), lie about the array, and run code
 * in the middle of a copy. So the library never calls a caller's array's methods and never trusts
 * its properties for anything that could move more bytes than were checked:
 * - an array memory is written from is measured with the typed-array getters captured here, which
 *   read its internal slots ({@link bytesLength}): every check, dirty mark and count uses the
 *   length the copy (our array's `set`, which reads the same slots) really moves;
 * - an array memory is read into is filled with at most `length` bytes, the value its property
 *   gives, read once ({@link claimedLength}): the copy is the captured `%TypedArray%.prototype.set`,
 *   which stops at the array's real end on its own (a claim past it is refused, see
 *   {@link fewerBytesError}), so no more guest memory is read than was checked, with no getter call
 *   on the hot path.
 * @module
 */

import { InvalidArgumentError } from "./errors.ts";

const TYPED_ARRAY: object = Object.getPrototypeOf(Uint8Array.prototype);

function intrinsic(owner: object, key: string, part: "get" | "value"): (this: unknown, ...args: unknown[]) => unknown {
  const found = Object.getOwnPropertyDescriptor(owner, key)?.[part];
  if (typeof found !== "function") throw new Error(`caller_bytes: the runtime has no ${key} to capture`);
  return found;
}

// Exported so that hot paths call them inline (`TYPED_SET.call(buf, …)`): behind a helper
// function the 4 KiB read measured slower.
/** `%TypedArray%.prototype.length`'s getter. */
export const TYPED_LENGTH = intrinsic(TYPED_ARRAY, "length", "get");
/** `%TypedArray%.prototype.byteLength`'s getter. */
export const TYPED_BYTE_LENGTH = intrinsic(TYPED_ARRAY, "byteLength", "get");
/** `%TypedArray%.prototype.byteOffset`'s getter. */
export const TYPED_BYTE_OFFSET = intrinsic(TYPED_ARRAY, "byteOffset", "get");
/** `%TypedArray%.prototype.buffer`'s getter. */
export const TYPED_BUFFER = intrinsic(TYPED_ARRAY, "buffer", "get");
/**
 * `%TypedArray%.prototype.set`: `TYPED_SET.call(buf, src, at)` copies into a caller's array
 * without looking up its own `set` (which would be handed a view of guest memory to keep). It
 * throws (RangeError, or TypeError for a detached array) rather than write past the array's end.
 */
export const TYPED_SET = intrinsic(TYPED_ARRAY, "set", "value");
const SHARED_BYTE_LENGTH = intrinsic(SharedArrayBuffer.prototype, "byteLength", "get");

/**
 * The number of bytes in `buf` if it is a `Uint8Array`, whatever its own properties claim; -1 for
 * anything else (including an object that only inherits from `Uint8Array.prototype`, and a wider
 * typed array given that prototype). A detached array has 0.
 *
 * @example
 * ```ts
 * import { bytesLength } from "./caller_bytes.ts";
 * const b = new Uint8Array(8192);
 * Object.defineProperty(b, "length", { value: 1 });
 * console.log(b.length, bytesLength(b)); // 1 8192
 * ```
 */
export function bytesLength(buf: unknown): number {
  if (!(buf instanceof Uint8Array)) return -1;
  try {
    const n = TYPED_LENGTH.call(buf) as number;
    // Equal only for one-byte elements: a Float64Array given Uint8Array's prototype is refused.
    return TYPED_BYTE_LENGTH.call(buf) === n ? n : -1;
  } catch {
    return -1; // not a typed array at all: the getters refuse it
  }
}

/**
 * How many bytes a read into `buf` fills: its `length` property, read once, if `buf` is a
 * `Uint8Array` (by prototype) and the value is a length (a non-negative safe integer) that the
 * array really holds; a negative code otherwise (see {@link unreadableError}). A claim past the real end is refused here, up front, so that a
 * read over several fragments never fills some and then fails at the next.
 *
 * @example
 * ```ts
 * import { claimedLength } from "./caller_bytes.ts";
 * console.log(claimedLength(new Uint8Array(16)), claimedLength([1, 2])); // 16 -1
 * ```
 */
export function claimedLength(buf: unknown): number {
  if (!(buf instanceof Uint8Array)) return -1;
  let n: unknown;
  try {
    n = buf.length;
  } catch {
    return -1; // an own getter that throws
  }
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) return -1;
  try {
    return n <= (TYPED_LENGTH.call(buf) as number) ? n : CLAIMS_TOO_MUCH;
  } catch {
    return -1; // not a typed array at all: the getter refuses it
  }
}

/** What {@link claimedLength} returns for a `length` past the array's real end. */
export const CLAIMS_TOO_MUCH: number = -2;

/**
 * The error for a buffer {@link claimedLength} refused (`code` is what it returned): one that
 * claims more bytes than it holds is told so; anything else is not a byte array with a length.
 *
 * @example
 * ```ts
 * import { claimedLength, unreadableError } from "./caller_bytes.ts";
 * const b = new Uint8Array(4);
 * Object.defineProperty(b, "length", { value: 8 });
 * console.log(unreadableError("read", "buf", b, claimedLength(b)).kind); // "InvalidArgument"
 * ```
 */
export function unreadableError(op: string, argument: string, buf: unknown, code: number): InvalidArgumentError {
  if (code === CLAIMS_TOO_MUCH) return fewerBytesError(op, buf, argument);
  return new InvalidArgumentError(op, argument, buf, "must be a Uint8Array with a length");
}

/**
 * A new `Uint8Array` over bytes `[from, from + len)` of `buf`, made from its real buffer and
 * offset (never `buf.subarray`, whose species a caller controls). Throws {@link fewerBytesError}
 * for `owner.op` (joined only then) if `buf` does not really hold those bytes.
 *
 * @example
 * ```ts
 * import { bytesWindow } from "./caller_bytes.ts";
 * const b = new Uint8Array([1, 2, 3, 4]);
 * console.log(bytesWindow(b, 1, 2, "demo")); // Uint8Array(2) [ 2, 3 ]
 * ```
 */
export function bytesWindow(buf: Uint8Array, from: number, len: number, op: string, owner?: string): Uint8Array {
  try {
    return new Uint8Array(TYPED_BUFFER.call(buf) as ArrayBuffer, (TYPED_BYTE_OFFSET.call(buf) as number) + from, len);
  } catch {
    throw fewerBytesError(owner === undefined ? op : `${owner}.${op}`, buf);
  }
}

/**
 * The error for an array a read cannot fill: it holds fewer bytes than its `length` says, was
 * detached meanwhile, or its elements are not numbers (a BigInt64Array given Uint8Array's prototype).
 *
 * @example
 * ```ts
 * import { fewerBytesError } from "./caller_bytes.ts";
 * console.log(fewerBytesError("GuestMemoryMmap.read", new Uint8Array(0)).argument); // "buf"
 * ```
 */
export function fewerBytesError(op: string, buf: unknown, argument = "buf"): InvalidArgumentError {
  return new InvalidArgumentError(
    op,
    argument,
    buf,
    "cannot take the bytes: it holds fewer than its length property says, was detached, or is not a byte array",
  );
}

/**
 * The size of `buffer` if it is a `SharedArrayBuffer`, whatever its own properties claim; -1 for
 * anything else.
 *
 * @example
 * ```ts
 * import { sharedBytesLength } from "./caller_bytes.ts";
 * console.log(sharedBytesLength(new SharedArrayBuffer(64)), sharedBytesLength(new ArrayBuffer(64))); // 64 -1
 * ```
 */
export function sharedBytesLength(buffer: unknown): number {
  try {
    return SHARED_BYTE_LENGTH.call(buffer) as number;
  } catch {
    return -1;
  }
}
