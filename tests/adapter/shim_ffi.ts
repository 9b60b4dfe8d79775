/**
 * `Deno.UnsafePointer` and `Deno.UnsafePointerView` for the Bun test adapter, over the library's
 * own binding (pointers are numbers on Bun), for the few tests that look at raw memory directly.
 * @module
 */

import type { RawPointer, RawPointerView } from "../../src/ffi/binding.ts";
import { native } from "../../src/ffi/native.ts";

/** `Deno.UnsafePointer`. */
export const UnsafePointer = {
  create: (addr: bigint): RawPointer => native().pointer(addr),
  value: (p: RawPointer): bigint => native().addressOfPointer(p),
  of: (view: ArrayBufferView): RawPointer => native().pointer(native().addressOf(view)),
  equals: (a: RawPointer, b: RawPointer): boolean => native().addressOfPointer(a) === native().addressOfPointer(b),
  offset: (p: RawPointer, offset: number): RawPointer =>
    native().pointer(native().addressOfPointer(p) + BigInt(offset)),
};

/**
 * `Deno.UnsafePointerView`: the binding's typed reads, plus the static `getArrayBuffer`.
 *
 * @example
 * ```ts ignore
 * new UnsafePointerView(p).getUint8(0);
 * ```
 */
export class UnsafePointerView {
  readonly #view: RawPointerView;

  /** Reads at `pointer`. */
  constructor(pointer: RawPointer) {
    this.#view = native().pointerView(native().addressOfPointer(pointer));
  }

  /** An ArrayBuffer over `[pointer + offset, pointer + offset + length)`. */
  static getArrayBuffer(pointer: RawPointer, length: number, offset = 0): ArrayBuffer {
    return native().arrayBuffer(native().addressOfPointer(pointer) + BigInt(offset), length);
  }

  /** An unsigned byte. */
  getUint8(offset = 0): number {
    return this.#view.getUint8(offset);
  }
  /** A signed byte. */
  getInt8(offset = 0): number {
    return this.#view.getInt8(offset);
  }
  /** An unsigned 16-bit value. */
  getUint16(offset = 0): number {
    return this.#view.getUint16(offset);
  }
  /** A signed 16-bit value. */
  getInt16(offset = 0): number {
    return this.#view.getInt16(offset);
  }
  /** An unsigned 32-bit value. */
  getUint32(offset = 0): number {
    return this.#view.getUint32(offset);
  }
  /** A signed 32-bit value. */
  getInt32(offset = 0): number {
    return this.#view.getInt32(offset);
  }
  /** An unsigned 64-bit value. */
  getBigUint64(offset = 0): bigint {
    return this.#view.getBigUint64(offset);
  }
  /** A signed 64-bit value. */
  getBigInt64(offset = 0): bigint {
    return this.#view.getBigInt64(offset);
  }
  /** A 32-bit float. */
  getFloat32(offset = 0): number {
    return this.#view.getFloat32(offset);
  }
  /** A 64-bit float. */
  getFloat64(offset = 0): number {
    return this.#view.getFloat64(offset);
  }
}
