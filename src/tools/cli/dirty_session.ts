/**
 * Dirty-tracking sessions of `gmem dirty`.
 *
 * A session is a file (by default `MEMFILE.gmem-dirty`, next to the memory file; `--session FILE`
 * elsewhere, required for a memfd) that remembers, per page of guest memory, since `dirty start` or
 * the last `dirty reset`:
 * - whether `gmem` itself wrote the page (`write`, `fill`, `copy`, `load` log their writes through
 *   the library's dirty bitmaps and add them to the session when they finish);
 * - a 64-bit fingerprint of the page's contents, so that pages changed by anyone else (the guest,
 *   QEMU, another tool) show up too. A change in one 32-bit word always changes the fingerprint;
 *   a wider change could in principle keep it (it is not a cryptographic hash).
 *
 * The file format, and the checks a session file must pass before it is used, are in
 * dirty_session_file.ts. The session file is never the guest memory: it is written to a new
 * temporary file and renamed into place only if its name is not the memory's (output_guard.ts).
 * @module
 */

import { AtomicBitmap, type GuestMemoryMmap, type GuestRegionMmap, InvalidArgumentError } from "../../../mod.ts";
import { hex } from "../text.ts";
import type { Attached } from "./attach.ts";
import {
  encodeSession,
  readSessionFile,
  SESSION_FORMAT,
  SESSION_PAGE_SIZES,
  SESSION_VERSION,
  type SessionHeader,
} from "./dirty_session_file.ts";
import { formatLayout } from "./layout.ts";
import type { Progress } from "./output.ts";
import { type GuestFile, refuseGuestMemory, replaceFile } from "./output_guard.ts";

const CHUNK = 16 * 2 ** 20;

/**
 * The default session file of a memory file.
 *
 * @example
 * ```ts
 * import { sessionPathFor } from "./dirty_session.ts";
 * sessionPathFor("/dev/shm/ram"); // "/dev/shm/ram.gmem-dirty"
 * ```
 */
export function sessionPathFor(memPath: string): string {
  return `${memPath}.gmem-dirty`;
}

/** A run of dirty pages in a {@link DirtySession} listing. */
export interface DirtyRun {
  /** First guest physical address. */
  addr: bigint;
  /** Length in bytes (the last page of a region is clipped to it). */
  length: number;
  /** Pages in the run. */
  pages: number;
  /** `"gmem"`: written by this tool; `"other"`: contents changed by someone else. */
  source: "gmem" | "other";
}

/**
 * An open session: its header, page bits and fingerprints, in memory until {@link DirtySession.save}.
 *
 * @example
 * ```ts ignore
 * import { DirtySession } from "./dirty_session.ts";
 * const s = DirtySession.open("/dev/shm/ram.gmem-dirty", "gmem dirty");
 * console.log(s.pageSize); // 4096
 * ```
 */
export class DirtySession {
  /** The session file. */
  readonly path: string;
  readonly #header: SessionHeader;
  readonly #bits: Uint8Array[];
  readonly #prints: Uint32Array[];

  private constructor(path: string, header: SessionHeader, bits: Uint8Array[], prints: Uint32Array[]) {
    this.path = path;
    this.#header = header;
    this.#bits = bits;
    this.#prints = prints;
  }

  /** The page size. */
  get pageSize(): number {
    return this.#header.pageSize;
  }

  /** When the session started (ISO time). */
  get started(): string {
    return this.#header.started;
  }

  /** Since when pages are counted: the start or the last reset (ISO time). */
  get since(): string {
    return this.#header.since;
  }

  /**
   * Starts a session over the attached memory: no page logged, every page fingerprinted now.
   * Replaces an existing session file (never the memory itself).
   *
   * @example
   * ```ts
   * import { DirtySession } from "./dirty_session.ts";
   * // DirtySession.create("/dev/shm/ram.gmem-dirty", attached, 4096, progress, "gmem dirty");
   * ```
   * @throws {InvalidArgumentError} for a page size that is not a power of two in [64, 2^30], or a
   *   session path that is the guest memory.
   */
  static create(path: string, attached: Attached, pageSize: number, progress: Progress, op: string): DirtySession {
    refuseGuestMemory(path, attached, op, "--session");
    if (
      !Number.isInteger(pageSize) || pageSize < SESSION_PAGE_SIZES.min || pageSize > SESSION_PAGE_SIZES.max ||
      (pageSize & (pageSize - 1)) !== 0
    ) {
      throw new InvalidArgumentError(
        op,
        "--page-size",
        pageSize,
        `must be a power of two from 64 to 1G, got ${pageSize}`,
      );
    }
    const now = new Date().toISOString();
    const header: SessionHeader = {
      format: SESSION_FORMAT,
      version: SESSION_VERSION,
      pageSize,
      layout: formatLayout(attached.ranges),
      source: attached.source,
      started: now,
      since: now,
    };
    const regions = attached.mem.regions();
    const bits = regions.map((r) => new Uint8Array(Math.ceil(pageCount(r, pageSize) / 8)));
    const prints = regions.map((r) => fingerprints(r, pageSize, progress));
    const s = new DirtySession(path, header, bits, prints);
    s.save(attached, op);
    return s;
  }

  /**
   * Reads a session file.
   *
   * @example
   * ```ts ignore
   * import { DirtySession } from "./dirty_session.ts";
   * const s = DirtySession.open("/dev/shm/ram.gmem-dirty", "gmem dirty");
   * ```
   * @throws {InvalidArgumentError} when the file is missing, not a regular file, or not a valid
   *   session (every header field is checked, and the length the header implies).
   */
  static open(path: string, op: string): DirtySession {
    const { header, bits, prints } = readSessionFile(path, op);
    return new DirtySession(path, header, bits, prints);
  }

  /**
   * Refuses to use the session with memory attached with another layout (which also gives other
   * sizes), or when the session file is the attached memory itself.
   *
   * @example
   * ```ts
   * // session.checkMatches(attached, "gmem write");
   * ```
   * @throws {InvalidArgumentError} naming both layouts, or the session path.
   */
  checkMatches(attached: Attached, op: string): void {
    refuseGuestMemory(this.path, attached, op, "--session");
    const layout = formatLayout(attached.ranges);
    if (layout !== this.#header.layout) {
      throw new InvalidArgumentError(
        op,
        "--layout",
        layout,
        `${layout} differs from the layout of session ${this.path} (${this.#header.layout}); pass that layout or start a new session`,
      );
    }
  }

  /**
   * Adds the pages the tool's own writes marked in the regions' dirty bitmaps, and saves.
   *
   * @example
   * ```ts
   * // session.record(attached);
   * ```
   */
  record(attached: Attached): void {
    let any = false;
    attached.mem.regions().forEach((r, i) => {
      if (!(r.bitmap instanceof AtomicBitmap)) return;
      for (const [start, length] of r.bitmap.dirtyRuns()) {
        const first = start / this.pageSize, end = Math.ceil((start + length) / this.pageSize);
        for (let p = first; p < end; p++) this.#bits[i][p >> 3] |= 1 << (p & 7);
        any = true;
      }
    });
    if (any) this.save(attached, "gmem");
  }

  /**
   * The dirty pages as runs: logged by the tool, or with a changed fingerprint.
   *
   * @example
   * ```ts
   * // for (const run of session.dirtyRuns(mem, progress)) console.log(run.addr, run.source);
   * ```
   */
  dirtyRuns(mem: GuestMemoryMmap, progress: Progress): DirtyRun[] {
    const ps = this.pageSize;
    const runs: DirtyRun[] = [];
    mem.regions().forEach((r, i) => {
      const now = fingerprints(r, ps, progress);
      const was = this.#prints[i];
      const bits = this.#bits[i];
      let open: DirtyRun | undefined;
      const pages = pageCount(r, ps);
      for (let p = 0; p < pages; p++) {
        const logged = (bits[p >> 3] & (1 << (p & 7))) !== 0;
        const changed = now[2 * p] !== was[2 * p] || now[2 * p + 1] !== was[2 * p + 1];
        const source = logged ? "gmem" : changed ? "other" : undefined;
        if (open !== undefined && open.source !== source) {
          runs.push(open);
          open = undefined;
        }
        if (source === undefined) continue;
        const length = Math.min(ps, r.len - p * ps);
        if (open === undefined) open = { addr: r.startAddr + BigInt(p * ps), length, pages: 1, source };
        else {
          open.length += length;
          open.pages++;
        }
      }
      if (open !== undefined) runs.push(open);
    });
    return runs;
  }

  /**
   * Starts counting afresh: clears the logged pages and fingerprints every page again, then saves.
   *
   * @example
   * ```ts
   * // session.reset(attached, progress, "gmem dirty reset");
   * ```
   */
  reset(attached: Attached, progress: Progress, op: string): void {
    attached.mem.regions().forEach((r, i) => {
      this.#bits[i].fill(0);
      this.#prints[i].set(fingerprints(r, this.pageSize, progress));
    });
    this.#header.since = new Date().toISOString();
    this.save(attached, op);
  }

  /**
   * Writes the session file: to a new temporary file first, renamed into place, so a crash never
   * leaves half a session and no existing file but the session is ever written.
   *
   * @example
   * ```ts
   * // session.save(attached, "gmem");
   * ```
   * @throws {InvalidArgumentError} when the session path is the guest memory or cannot be written.
   */
  save(memory: GuestFile, op: string): void {
    const bytes = encodeSession({ header: this.#header, bits: this.#bits, prints: this.#prints });
    replaceFile(this.path, bytes, memory, op, "--session");
  }
}

function pageCount(r: GuestRegionMmap, pageSize: number): number {
  return Math.ceil(r.len / pageSize);
}

/**
 * Two 32-bit lanes per page. Lane 0 is FNV-style (xor, then multiply by an odd constant): each step
 * is a bijection, so changing any one word always changes it. Lane 1 mixes differently, for the
 * rest. Hashing reads the mapping through read-only views, in chunks, with progress.
 */
function fingerprints(r: GuestRegionMmap, pageSize: number, progress: Progress): Uint32Array {
  const pages = pageCount(r, pageSize);
  const out = new Uint32Array(pages * 2);
  const chunk = Math.max(CHUNK - (CHUNK % pageSize), pageSize);
  for (let off = 0; off < r.len; off += chunk) {
    const n = Math.min(chunk, r.len - off);
    const bytes = r.mmap.unsafeBytes(off, n);
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, n >>> 2);
    for (let p0 = 0; p0 < n; p0 += pageSize) {
      const len = Math.min(pageSize, n - p0);
      let a = 0x811c9dc5 ^ len, b = 0x9e3779b9;
      const w0 = p0 >>> 2, w1 = (p0 + len) >>> 2;
      for (let w = w0; w < w1; w++) {
        const x = words[w];
        a = Math.imul(a ^ x, 0x01000193);
        b = Math.imul(b ^ (x + w), 0x85ebca6b) ^ (b >>> 15);
      }
      for (let t = p0 + ((len >>> 2) << 2); t < p0 + len; t++) {
        a = Math.imul(a ^ bytes[t], 0x01000193);
      }
      const page = (off + p0) / pageSize;
      out[2 * page] = a >>> 0;
      out[2 * page + 1] = b >>> 0;
    }
    progress.advance(n);
  }
  return out;
}

/**
 * The address text of a run, `[start, end)`.
 *
 * @example
 * ```ts
 * import { runText } from "./dirty_session.ts";
 * runText({ addr: 0x1000n, length: 0x2000, pages: 2, source: "gmem" }); // "[0x1000, 0x3000)"
 * ```
 */
export function runText(run: DirtyRun): string {
  return `[${hex(run.addr)}, ${hex(run.addr + BigInt(run.length))})`;
}
