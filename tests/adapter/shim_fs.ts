/**
 * Files for the Bun test adapter: `Deno.openSync`/`open` with an `FsFile` over a real descriptor,
 * temporary files, and the whole-file helpers the tests use, on `node:fs` (plus `lseek` from libc,
 * which `node:fs` does not expose). The `FsFile` has a numeric `fd`, which is what the library
 * accepts as a file object on Bun.
 * @module
 */

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { denoErrorsFrom } from "./shim_errors.ts";

/** `Deno.SeekMode`. */
export const SeekMode = { Start: 0, Current: 1, End: 2 } as const;

interface Libc {
  lseek(fd: number, offset: bigint, whence: number): bigint;
}

let libc: Libc | undefined;

/** libc's `lseek` through `bun:ffi` (the adapter only runs on Bun). */
function lseek(fd: number, offset: bigint, whence: number): bigint {
  if (libc === undefined) {
    const meta = import.meta as ImportMeta & { require: (id: string) => unknown };
    const ffi = meta.require("bun:ffi") as {
      dlopen(p: string, s: Record<string, { args: string[]; returns: string }>): { symbols: Libc };
    };
    libc = ffi.dlopen("libc.so.6", { lseek: { args: ["i32", "i64", "i32"], returns: "i64" } }).symbols;
  }
  return libc.lseek(fd, offset, whence);
}

/** Linux's `O_CLOEXEC` (not in `node:fs` constants' types); Deno opens files with it too. */
const O_CLOEXEC = 0o2000000;

/** `Deno.OpenOptions`. */
export interface OpenOptions {
  read?: boolean;
  write?: boolean;
  append?: boolean;
  truncate?: boolean;
  create?: boolean;
  createNew?: boolean;
  mode?: number;
}

function flagsOf(o: OpenOptions): number {
  const c = fs.constants;
  const write = o.write === true || o.append === true;
  const read = o.read === true || !write;
  let flags = read && write ? c.O_RDWR : write ? c.O_WRONLY : c.O_RDONLY;
  if (o.append) flags |= c.O_APPEND;
  if (o.truncate) flags |= c.O_TRUNC;
  if (o.create || o.createNew) flags |= c.O_CREAT;
  if (o.createNew) flags |= c.O_EXCL;
  return flags | O_CLOEXEC;
}

/**
 * `Deno.FsFile` over a descriptor: reads and writes at the kernel's file position (so I/O the
 * library does on the same descriptor moves it, as on Deno).
 *
 * @example
 * ```ts ignore
 * using f = new FsFile(fs.openSync(path, "r"));
 * ```
 */
export class FsFile implements Disposable {
  /** The descriptor. */
  readonly fd: number;
  #closed = false;

  /** Wraps an open descriptor. */
  constructor(fd: number) {
    this.fd = fd;
  }

  /** Reads into `p`; `null` at the end of the file. */
  readSync(p: Uint8Array): number | null {
    const n = denoErrorsFrom(() => fs.readSync(this.fd, p, 0, p.length, null));
    return n === 0 && p.length > 0 ? null : n;
  }

  /** Writes (a prefix of) `p`. */
  writeSync(p: Uint8Array): number {
    return denoErrorsFrom(() => fs.writeSync(this.fd, p, 0, p.length, null));
  }

  /** {@link FsFile.readSync}, as a promise. */
  read(p: Uint8Array): Promise<number | null> {
    return Promise.resolve().then(() => this.readSync(p));
  }

  /** {@link FsFile.writeSync}, as a promise. */
  write(p: Uint8Array): Promise<number> {
    return Promise.resolve().then(() => this.writeSync(p));
  }

  /** Moves the file position; returns the new one. */
  seekSync(offset: number | bigint, whence: number): number {
    const r = lseek(this.fd, BigInt(offset), whence);
    if (r < 0n) throw new Error(`lseek failed on fd ${this.fd}`);
    return Number(r);
  }

  /** {@link FsFile.seekSync}, as a promise. */
  seek(offset: number | bigint, whence: number): Promise<number> {
    return Promise.resolve().then(() => this.seekSync(offset, whence));
  }

  /** `fstat` in `Deno.FileInfo`'s shape (the fields tests use). */
  statSync(): { size: number; dev: number; ino: number; mode: number; isFile: boolean } {
    const st = denoErrorsFrom(() => fs.fstatSync(this.fd));
    return { size: st.size, dev: st.dev, ino: st.ino, mode: st.mode, isFile: st.isFile() };
  }

  /** `ftruncate`. */
  truncateSync(len = 0): void {
    denoErrorsFrom(() => fs.ftruncateSync(this.fd, len));
  }

  /** `fsync`. */
  syncSync(): void {
    fs.fsyncSync(this.fd);
  }

  /** Closes the descriptor (once). */
  close(): void {
    if (this.#closed) throw new Error(`Bad resource ID: fd ${this.fd} is already closed`);
    this.#closed = true;
    fs.closeSync(this.fd);
  }

  /** Closes the descriptor unless already closed. */
  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }
}

/** `Deno.openSync`. */
export function openSync(p: string | URL, options: OpenOptions = { read: true }): FsFile {
  return new FsFile(denoErrorsFrom(() => fs.openSync(p, flagsOf(options), options.mode ?? 0o666)));
}

/** `Deno.open`. */
export function open(p: string | URL, options: OpenOptions = { read: true }): Promise<FsFile> {
  return Promise.resolve().then(() => openSync(p, options));
}

/** `Deno.makeTempFileSync`: an empty file, mode 0600, in `dir` or the system's temporary directory. */
export function makeTempFileSync(options: { dir?: string; prefix?: string; suffix?: string } = {}): string {
  for (;;) {
    const name = `${options.prefix ?? ""}${Math.random().toString(36).slice(2, 10)}${options.suffix ?? ""}`;
    const p = path.join(options.dir ?? os.tmpdir(), name);
    try {
      fs.closeSync(fs.openSync(p, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_RDWR, 0o600));
      return p;
    } catch (e) {
      if ((e as { code?: string }).code !== "EEXIST") throw e;
    }
  }
}

/** `Deno.makeTempDirSync`. */
export function makeTempDirSync(options: { dir?: string; prefix?: string } = {}): string {
  return fs.mkdtempSync(path.join(options.dir ?? os.tmpdir(), options.prefix ?? "tmp"));
}

const later = <T>(fn: () => T): Promise<T> => Promise.resolve().then(fn);

/** The whole-file helpers of `Deno`, with Deno's error classes (the async ones run the sync ones). */
export const fileFunctions = {
  readFileSync: (p: string | URL) => new Uint8Array(denoErrorsFrom(() => fs.readFileSync(p))),
  readTextFileSync: (p: string | URL) => denoErrorsFrom(() => fs.readFileSync(p, "utf8")),
  writeFileSync: (p: string | URL, data: Uint8Array) => denoErrorsFrom(() => fs.writeFileSync(p, data)),
  writeTextFileSync: (p: string | URL, text: string) => denoErrorsFrom(() => fs.writeFileSync(p, text)),
  truncateSync: (p: string | URL, len = 0) => denoErrorsFrom(() => fs.truncateSync(p, len)),
  removeSync: (p: string | URL, o: { recursive?: boolean } = {}) =>
    denoErrorsFrom(() => fs.rmSync(p, { recursive: o.recursive === true })),
  renameSync: (from: string | URL, to: string | URL) => denoErrorsFrom(() => fs.renameSync(from, to)),
  mkdirSync: (p: string | URL, o: { recursive?: boolean } = {}) => {
    denoErrorsFrom(() => fs.mkdirSync(p, { recursive: o.recursive === true }));
  },
  statSync: (p: string | URL) => {
    const st = denoErrorsFrom(() => fs.statSync(p));
    return {
      size: st.size,
      dev: st.dev,
      ino: st.ino,
      mode: st.mode,
      isFile: st.isFile(),
      isDirectory: st.isDirectory(),
    };
  },
};

/** The promise forms of {@link fileFunctions} and of the temporary-file makers. */
export const asyncFileFunctions = {
  readFile: (p: string | URL) => later(() => fileFunctions.readFileSync(p)),
  readTextFile: (p: string | URL) => later(() => fileFunctions.readTextFileSync(p)),
  writeFile: (p: string | URL, data: Uint8Array) => later(() => fileFunctions.writeFileSync(p, data)),
  writeTextFile: (p: string | URL, text: string) => later(() => fileFunctions.writeTextFileSync(p, text)),
  truncate: (p: string | URL, len = 0) => later(() => fileFunctions.truncateSync(p, len)),
  remove: (p: string | URL, o: { recursive?: boolean } = {}) => later(() => fileFunctions.removeSync(p, o)),
  rename: (from: string | URL, to: string | URL) => later(() => fileFunctions.renameSync(from, to)),
  mkdir: (p: string | URL, o: { recursive?: boolean } = {}) => later(() => fileFunctions.mkdirSync(p, o)),
  stat: (p: string | URL) => later(() => fileFunctions.statSync(p)),
  makeTempFile: (o: { dir?: string; prefix?: string; suffix?: string } = {}) => later(() => makeTempFileSync(o)),
  makeTempDir: (o: { dir?: string; prefix?: string } = {}) => later(() => makeTempDirSync(o)),
};
