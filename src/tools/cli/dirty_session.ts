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
 * File format (little-endian): one line of JSON (the header: format, version, page size, layout,
 * source, times), then for each layout range in guest address order its page bits (bit `p % 8` of
 * byte `p / 8`) and its fingerprints (8 bytes per page).
 * @module
 */

import { AtomicBitmap } from "../../bitmap/atomic_bitmap.ts";
import { InvalidArgumentError } from "../../errors.ts";
import { hex } from "../../format.ts";
import type { GuestMemoryMmap } from "../../memory/guest_memory_mmap.ts";
import type { GuestRegionMmap } from "../../memory/guest_region_mmap.ts";
import type { Attached } from "./attach.ts";
import { formatLayout } from "./layout.ts";
import type { Progress } from "./output.ts";

const FORMAT = "gmem-dirty-session";
const VERSION = 1;
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

interface Header {
  format: string;
  version: number;
  pageSize: number;
  layout: string;
  source: string;
  started: string;
  since: string;
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
 * ```ts
 * import { DirtySession } from "./dirty_session.ts";
 * const s = DirtySession.open("/dev/shm/ram.gmem-dirty", "gmem dirty");
 * console.log(s.pageSize);
 * ```
 */
export class DirtySession {
  /** The session file. */
  readonly path: string;
  readonly #header: Header;
  readonly #bits: Uint8Array[];
  readonly #prints: Uint32Array[];

  private constructor(path: string, header: Header, bits: Uint8Array[], prints: Uint32Array[]) {
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
   * Overwrites an existing session file.
   *
   * @example
   * ```ts
   * import { DirtySession } from "./dirty_session.ts";
   * // DirtySession.create("/dev/shm/ram.gmem-dirty", attached, 4096, progress, "gmem dirty");
   * ```
   * @throws {InvalidArgumentError} for a page size that is not a power of two in [64, 2^30].
   */
  static create(path: string, attached: Attached, pageSize: number, progress: Progress, op: string): DirtySession {
    if (!Number.isInteger(pageSize) || pageSize < 64 || pageSize > 2 ** 30 || (pageSize & (pageSize - 1)) !== 0) {
      throw new InvalidArgumentError(
        op,
        "--page-size",
        pageSize,
        `must be a power of two from 64 to 1G, got ${pageSize}`,
      );
    }
    const now = new Date().toISOString();
    const header: Header = {
      format: FORMAT,
      version: VERSION,
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
    s.save(op);
    return s;
  }

  /**
   * Reads a session file.
   *
   * @example
   * ```ts
   * import { DirtySession } from "./dirty_session.ts";
   * const s = DirtySession.open("/dev/shm/ram.gmem-dirty", "gmem dirty");
   * ```
   * @throws {InvalidArgumentError} when the file is missing or not a session.
   */
  static open(path: string, op: string): DirtySession {
    let data: Uint8Array;
    try {
      data = Deno.readFileSync(path);
    } catch (e) {
      const why = e instanceof Deno.errors.NotFound
        ? "does not exist (start one with gmem dirty start)"
        : `cannot be read (${(e as Error).message})`;
      throw new InvalidArgumentError(op, "--session", path, `${path} ${why}`);
    }
    const bad = (why: string) =>
      new InvalidArgumentError(op, "--session", path, `${path} is not a gmem dirty session (${why})`);
    const nl = data.indexOf(0x0a);
    if (nl < 0) throw bad("no header line");
    let header: Header;
    try {
      header = JSON.parse(new TextDecoder().decode(data.subarray(0, nl)));
    } catch {
      throw bad("the header is not JSON");
    }
    if (header.format !== FORMAT || header.version !== VERSION) throw bad(`format ${header.format} ${header.version}`);
    const geometry = header.layout.split(",").map((r) => Number(BigInt(r.split(":")[1].split("@")[0])));
    const bits: Uint8Array[] = [];
    const prints: Uint32Array[] = [];
    let at = nl + 1;
    for (const size of geometry) {
      const pages = Math.ceil(size / header.pageSize);
      const nBits = Math.ceil(pages / 8);
      if (at + nBits + pages * 8 > data.length) throw bad("truncated");
      bits.push(data.slice(at, at + nBits));
      at += nBits;
      prints.push(new Uint32Array(data.slice(at, at + pages * 8).buffer));
      at += pages * 8;
    }
    if (at !== data.length) throw bad("trailing bytes");
    return new DirtySession(path, header, bits, prints);
  }

  /**
   * Refuses to use the session with memory attached with another layout.
   *
   * @example
   * ```ts
   * // session.checkMatches(attached, "gmem write");
   * ```
   * @throws {InvalidArgumentError} naming both layouts.
   */
  checkMatches(attached: Attached, op: string): void {
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
   * // session.record(attached.mem);
   * ```
   */
  record(mem: GuestMemoryMmap): void {
    let any = false;
    mem.regions().forEach((r, i) => {
      if (!(r.bitmap instanceof AtomicBitmap)) return;
      for (const [start, length] of r.bitmap.dirtyRuns()) {
        const first = start / this.pageSize, end = Math.ceil((start + length) / this.pageSize);
        for (let p = first; p < end; p++) this.#bits[i][p >> 3] |= 1 << (p & 7);
        any = true;
      }
    });
    if (any) this.save("gmem");
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
   * // session.reset(attached.mem, progress, "gmem dirty reset");
   * ```
   */
  reset(mem: GuestMemoryMmap, progress: Progress, op: string): void {
    mem.regions().forEach((r, i) => {
      this.#bits[i].fill(0);
      this.#prints[i].set(fingerprints(r, this.pageSize, progress));
    });
    this.#header.since = new Date().toISOString();
    this.save(op);
  }

  /**
   * Writes the session file (to a temporary name first, so a crash never leaves half a session).
   *
   * @example
   * ```ts
   * // session.save("gmem");
   * ```
   */
  save(op: string): void {
    const head = new TextEncoder().encode(`${JSON.stringify(this.#header)}\n`);
    let total = head.length;
    for (let i = 0; i < this.#bits.length; i++) total += this.#bits[i].length + this.#prints[i].byteLength;
    const out = new Uint8Array(total);
    out.set(head);
    let at = head.length;
    for (let i = 0; i < this.#bits.length; i++) {
      out.set(this.#bits[i], at);
      at += this.#bits[i].length;
      out.set(new Uint8Array(this.#prints[i].buffer, this.#prints[i].byteOffset, this.#prints[i].byteLength), at);
      at += this.#prints[i].byteLength;
    }
    const tmp = `${this.path}.tmp`;
    try {
      Deno.writeFileSync(tmp, out);
      Deno.renameSync(tmp, this.path);
    } catch (e) {
      throw new InvalidArgumentError(
        op,
        "--session",
        this.path,
        `${this.path} cannot be written (${(e as Error).message})`,
      );
    }
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
