/**
 * The file of a `gmem dirty` session, and the checks that keep a damaged or hostile one from
 * reaching the rest of the tool.
 *
 * Format (little-endian): one line of JSON, the header
 * `{"format":"gmem-dirty-session","version":1,"pageSize":N,"layout":"GPA:SIZE@OFF,…","source":"…","started":ISO,"since":ISO}`,
 * then for each layout range in guest address order its page bits (bit `p % 8` of byte `p / 8`; the
 * bits past the last page are zero) and its fingerprints (8 bytes per page). Nothing follows.
 *
 * A file is accepted only when every field has its type and range, the layout is one `gmem` writes
 * (canonical, in order, not overlapping, inside 2^64), and the file is exactly as long as the header
 * says; anything else is refused with one line naming the first thing wrong.
 * @module
 */

import { InvalidArgumentError } from "../../../mod.ts";
import { formatLayout, type LayoutRange, parseLayout } from "./layout.ts";

/** The header's `format`. */
export const SESSION_FORMAT = "gmem-dirty-session";
/** The header's `version`. */
export const SESSION_VERSION = 1;
/** Smallest and largest page size of a session. */
export const SESSION_PAGE_SIZES = { min: 64, max: 2 ** 30 } as const;
/** The header line is read from at most this many leading bytes. */
const MAX_HEADER_BYTES = 1 << 20;
/** Longest `source` text kept (a path, or `memfd from SOCKET`). */
const MAX_SOURCE = 8192;

const HEADER_FIELDS = ["format", "version", "pageSize", "layout", "source", "started", "since"] as const;

/** The header line of a session file. */
export interface SessionHeader {
  /** Always {@link SESSION_FORMAT}. */
  format: string;
  /** Always {@link SESSION_VERSION}. */
  version: number;
  /** Bytes per page: a power of two from 64 to 2^30. */
  pageSize: number;
  /** The layout the session was started with, in `formatLayout`'s canonical form. */
  layout: string;
  /** What was attached when the session started (a path or `memfd from SOCKET`). */
  source: string;
  /** When the session started (ISO time). */
  started: string;
  /** When pages were last counted from (ISO time): the start or the last reset. */
  since: string;
}

/** A session as it is held in memory: the header, then per range its page bits and fingerprints. */
export interface SessionContents {
  /** The header. */
  header: SessionHeader;
  /** Page bits per range, in guest address order. */
  bits: Uint8Array[];
  /** Two 32-bit fingerprint lanes per page, per range. */
  prints: Uint32Array[];
}

/** Where the header ends and how long the whole file must be. */
interface HeaderShape {
  header: SessionHeader;
  ranges: LayoutRange[];
  /** Bytes of the header line, newline included. */
  headerBytes: number;
  /** The exact length the file must have. */
  totalBytes: bigint;
}

/**
 * The bytes a range of `size` bytes takes in the file: its page bits, then its fingerprints.
 *
 * @example
 * ```ts
 * import { rangeBytes } from "./dirty_session_file.ts";
 * rangeBytes(0x3000, 4096); // { pages: 3, bitBytes: 1, printBytes: 24 }
 * ```
 */
export function rangeBytes(size: number, pageSize: number): { pages: number; bitBytes: number; printBytes: number } {
  const pages = Math.ceil(size / pageSize);
  return { pages, bitBytes: Math.ceil(pages / 8), printBytes: pages * 8 };
}

/** An InvalidArgumentError saying `path` is no session, and why (one line). */
function notASession(path: string, op: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(op, "--session", path, `${path} is not a gmem dirty session (${why})`);
}

/** A value from the file as it may appear in a message: JSON, on one line, at most 40 characters. */
function shown(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

function isIsoTime(value: unknown): value is string {
  if (typeof value !== "string" || value.length > 32) return false;
  const t = Date.parse(value);
  return Number.isFinite(t) && new Date(t).toISOString() === value;
}

/** Checks every header field; returns the header and its ranges. */
function checkHeader(value: unknown, bad: (why: string) => InvalidArgumentError): [SessionHeader, LayoutRange[]] {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw bad(`the header is ${shown(value)}, not a JSON object`);
  }
  const h = value as Record<string, unknown>;
  for (const key of Object.keys(h)) {
    if (!(HEADER_FIELDS as readonly string[]).includes(key)) throw bad(`the header has an unknown field ${shown(key)}`);
  }
  for (const key of HEADER_FIELDS) {
    if (!(key in h)) throw bad(`the header has no ${key}`);
  }
  if (h.format !== SESSION_FORMAT) throw bad(`the header's format is ${shown(h.format)}, not "${SESSION_FORMAT}"`);
  if (h.version !== SESSION_VERSION) throw bad(`the header's version is ${shown(h.version)}, not ${SESSION_VERSION}`);
  const ps = h.pageSize;
  if (
    typeof ps !== "number" || !Number.isInteger(ps) || ps < SESSION_PAGE_SIZES.min || ps > SESSION_PAGE_SIZES.max ||
    (ps & (ps - 1)) !== 0
  ) {
    throw bad(`the header's pageSize is ${shown(ps)}, not a power of two from 64 to 2^30`);
  }
  if (typeof h.layout !== "string") throw bad(`the header's layout is ${shown(h.layout)}, not a string`);
  let ranges: LayoutRange[];
  try {
    ranges = parseLayout(h.layout, "layout");
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    throw bad(
      `the header's layout ${shown(h.layout)} is not a layout: ${e.message.replace(/^layout: (--layout )?/, "")}`,
    );
  }
  if (formatLayout(ranges) !== h.layout) {
    throw bad(
      `the header's layout ${shown(h.layout)} is not in the form gmem writes (GPA:SIZE@OFFSET in hex, in order)`,
    );
  }
  for (const r of ranges) {
    if (r.gpa + BigInt(r.size) > 1n << 64n) {
      throw bad(`the header's layout has a range past 2^64 at GPA ${shown(r.gpa.toString(16))}`);
    }
  }
  if (typeof h.source !== "string" || h.source.length > MAX_SOURCE) {
    throw bad(`the header's source is ${shown(h.source)}, not a string of at most ${MAX_SOURCE} characters`);
  }
  for (const key of ["started", "since"] as const) {
    if (!isIsoTime(h[key])) throw bad(`the header's ${key} is ${shown(h[key])}, not an ISO time`);
  }
  const header: SessionHeader = {
    format: SESSION_FORMAT,
    version: SESSION_VERSION,
    pageSize: ps,
    layout: h.layout,
    source: h.source,
    started: h.started as string,
    since: h.since as string,
  };
  return [header, ranges];
}

/**
 * Reads and checks the header line at the start of `prefix` (the first bytes of a session file)
 * and works out how long the file must be.
 */
function parseHeader(prefix: Uint8Array, path: string, op: string): HeaderShape {
  const bad = (why: string) => notASession(path, op, why);
  const nl = prefix.subarray(0, MAX_HEADER_BYTES).indexOf(0x0a);
  if (nl < 0) {
    throw bad(
      prefix.length >= MAX_HEADER_BYTES ? `no header line in the first ${MAX_HEADER_BYTES} bytes` : "no header line",
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(prefix.subarray(0, nl));
  } catch {
    throw bad("the header is not UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad("the header is not JSON");
  }
  const [header, ranges] = checkHeader(value, bad);
  let totalBytes = BigInt(nl + 1);
  for (const r of ranges) {
    const { bitBytes, printBytes } = rangeBytes(r.size, header.pageSize);
    totalBytes += BigInt(bitBytes) + BigInt(printBytes);
  }
  return { header, ranges, headerBytes: nl + 1, totalBytes };
}

/**
 * Checks a whole session file's bytes and splits them into header, page bits and fingerprints
 * (copies: nothing keeps `data` alive).
 *
 * @example
 * ```ts
 * import { parseSession } from "./dirty_session_file.ts";
 * // const s = parseSession(Deno.readFileSync(path), path, "gmem dirty");
 * ```
 * @throws {InvalidArgumentError} naming the first thing that is wrong, on one line.
 */
export function parseSession(data: Uint8Array, path: string, op: string): SessionContents {
  const shape = parseHeader(data, path, op);
  if (BigInt(data.length) !== shape.totalBytes) {
    throw notASession(
      path,
      op,
      `it has ${data.length} bytes, but its header's layout and page size make ${shape.totalBytes}`,
    );
  }
  return splitBody(data, shape, path, op);
}

function splitBody(data: Uint8Array, shape: HeaderShape, path: string, op: string): SessionContents {
  const ps = shape.header.pageSize;
  const bits: Uint8Array[] = [];
  const prints: Uint32Array[] = [];
  let at = shape.headerBytes;
  for (const r of shape.ranges) {
    const { pages, bitBytes, printBytes } = rangeBytes(r.size, ps);
    const b = data.slice(at, at + bitBytes);
    const spare = bitBytes * 8 - pages;
    if (spare > 0 && (b[bitBytes - 1] >> (8 - spare)) !== 0) {
      throw notASession(path, op, `the range at GPA 0x${r.gpa.toString(16)} has bits set past its last page`);
    }
    bits.push(b);
    at += bitBytes;
    prints.push(new Uint32Array(data.slice(at, at + printBytes).buffer));
    at += printBytes;
  }
  return { header: shape.header, bits, prints };
}

/** Reads exactly `into.length` bytes; false if the file ended first. */
function readFully(file: Deno.FsFile, into: Uint8Array): boolean {
  for (let at = 0; at < into.length;) {
    const n = file.readSync(into.subarray(at));
    if (n === null || n === 0) return false;
    at += n;
  }
  return true;
}

/**
 * Reads and checks the session file at `path`. Only a regular file is opened (a FIFO or device
 * would block or never end), and only as many bytes as its header accounts for are read: a wrong
 * file is refused after its first megabyte at most.
 *
 * @example
 * ```ts
 * import { readSessionFile } from "./dirty_session_file.ts";
 * // const s = readSessionFile("/dev/shm/ram.gmem-dirty", "gmem dirty");
 * ```
 * @throws {InvalidArgumentError} when the file is missing, unreadable, not a regular file, or not a
 *   valid session.
 */
export function readSessionFile(path: string, op: string): SessionContents {
  const cannot = (e: unknown) => {
    const why = e instanceof Deno.errors.NotFound
      ? "does not exist (start one with gmem dirty start)"
      : `cannot be read (${(e as Error).message.split("\n")[0]})`;
    return new InvalidArgumentError(op, "--session", path, `${path} ${why}`);
  };
  let isFile: boolean;
  try {
    isFile = Deno.statSync(path).isFile;
  } catch (e) {
    throw cannot(e);
  }
  if (!isFile) throw notASession(path, op, "it is not a regular file");
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (e) {
    throw cannot(e);
  }
  try {
    const size = file.statSync().size;
    const prefix = new Uint8Array(Math.min(size, MAX_HEADER_BYTES));
    if (!readFully(file, prefix)) throw notASession(path, op, "it changed while being read");
    const shape = parseHeader(prefix, path, op);
    if (BigInt(size) !== shape.totalBytes) {
      throw notASession(
        path,
        op,
        `it has ${size} bytes, but its header's layout and page size make ${shape.totalBytes}`,
      );
    }
    const data = new Uint8Array(size);
    data.set(prefix);
    const extra = new Uint8Array(1);
    if (!readFully(file, data.subarray(prefix.length)) || readFully(file, extra)) {
      throw notASession(path, op, "it changed while being read");
    }
    return splitBody(data, shape, path, op);
  } catch (e) {
    if (e instanceof InvalidArgumentError) throw e;
    throw cannot(e);
  } finally {
    file.close();
  }
}

/**
 * The bytes of a session file.
 *
 * @example
 * ```ts
 * import { encodeSession } from "./dirty_session_file.ts";
 * // Deno.writeFileSync(path, encodeSession(contents));
 * ```
 */
export function encodeSession(contents: SessionContents): Uint8Array {
  const head = new TextEncoder().encode(`${JSON.stringify(contents.header)}\n`);
  let total = head.length;
  for (let i = 0; i < contents.bits.length; i++) total += contents.bits[i].length + contents.prints[i].byteLength;
  const out = new Uint8Array(total);
  out.set(head);
  let at = head.length;
  for (let i = 0; i < contents.bits.length; i++) {
    out.set(contents.bits[i], at);
    at += contents.bits[i].length;
    const p = contents.prints[i];
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), at);
    at += p.byteLength;
  }
  return out;
}
