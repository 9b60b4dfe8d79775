/**
 * The typed views over one of a region's buffers that every scalar access uses.
 * @module
 */

import { RegionClosedError } from "./errors.ts";
import { PROT_READ, PROT_WRITE } from "./constants.ts";
import { type Mapping, VIEW_BUFFER } from "./mapping.ts";
import type { ElementViews } from "./view_window.ts";

/**
 * Typed arrays over one view of a mapping (the whole mapping unless the runtime caps an
 * ArrayBuffer below its size, see `MmapRegion.viewSize`), one per element size, plus its protection
 * as seen when they were made. A naturally aligned scalar is read or written as one element of the matching array:
 * one machine access, never assembled byte by byte (DataView builtins outside optimised code do
 * that, and a torn u16 virtqueue index is a real bug class).
 *
 * The object is shared by a region and every slice of it and is refreshed in place, so a slice
 * sees new views when the region's buffer is replaced. A detached view has length 0, so a bounds
 * check against `length` also catches a closed region without a separate test.
 *
 * @example
 * ```ts ignore
 * const views = new RegionViews(mmapRegion);
 * views.u32[0] = 7;
 * ```
 */
export class RegionViews implements ElementViews {
  /** Bytes. */
  u8: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  /** 16-bit elements (aligned offsets only). */
  u16: Uint16Array<ArrayBuffer> = new Uint16Array(0);
  /** 32-bit elements. */
  u32: Uint32Array<ArrayBuffer> = new Uint32Array(0);
  /** 64-bit elements. */
  u64: BigUint64Array<ArrayBuffer> = new BigUint64Array(0);
  /** 32-bit floats. */
  f32: Float32Array<ArrayBuffer> = new Float32Array(0);
  /** 64-bit floats. */
  f64: Float64Array<ArrayBuffer> = new Float64Array(0);
  /** For unaligned or big-endian accesses. */
  dv: DataView<ArrayBuffer> = new DataView(new ArrayBuffer(0));
  /** The mapping could be read when the views were made. */
  readable = false;
  /** The mapping could be written when the views were made. */
  writable = false;
  /** The mapping behind the views. */
  readonly mmap: Mapping;
  /** Which of the mapping's views these are. */
  readonly index: number;
  /** The mapping offset of byte 0 of these views. */
  readonly offset: number;
  /** Bytes these views cover. */
  readonly length: number;
  /**
   * The host address of byte 0 of these views as a number (exact: user-space addresses are below
   * 2^47), for the copy engine's FFI calls, which take doubles to stay off BigInt.
   */
  readonly host: number;

  /** Whether the mapping is closed (the views are detached then). */
  get closed(): boolean {
    return this.mmap.closed;
  }

  /** Makes the views for view `index` of a mapping (the whole of it by default). */
  constructor(mmap: Mapping, op: string, index = 0) {
    this.mmap = mmap;
    this.index = index;
    this.offset = index * mmap.viewSize;
    this.length = Math.min(mmap.viewSize, mmap.size - this.offset);
    this.refresh(op);
    this.host = Number(mmap.hostAddress) + this.offset; // open: refresh threw otherwise
  }

  /**
   * Re-reads the mapping's protection and remakes the views if its buffer changed. Throws
   * {@link RegionClosedError} if the mapping was closed. Called only off the fast path.
   */
  refresh(op: string): void {
    const mmap = this.mmap;
    if (mmap.closed) throw new RegionClosedError(op, `the region's mapping (${mmap.size} bytes)`);
    const ab = mmap[VIEW_BUFFER](op, this.index);
    if (this.u8.buffer !== ab) {
      const size = this.length;
      this.u8 = new Uint8Array(ab);
      this.u16 = new Uint16Array(ab, 0, Math.floor(size / 2));
      this.u32 = new Uint32Array(ab, 0, Math.floor(size / 4));
      this.u64 = new BigUint64Array(ab, 0, Math.floor(size / 8));
      this.f32 = new Float32Array(ab, 0, Math.floor(size / 4));
      this.f64 = new Float64Array(ab, 0, Math.floor(size / 8));
      this.dv = new DataView(ab);
    }
    const prot = mmap.prot;
    this.readable = (prot & PROT_READ) !== 0;
    this.writable = (prot & (PROT_READ | PROT_WRITE)) === (PROT_READ | PROT_WRITE);
  }
}
