/**
 * `MmapRegionBuilder`: every way of making an {@link MmapRegion}, validated before any system call.
 * @module
 */

import { type AddressLike, isPowerOfTwo, toAddress, toLength } from "../address.ts";
import { GuestMemoryError, InvalidArgumentError, MappingPastEofError } from "../errors.ts";
import { native } from "../ffi/native.ts";
import { syscallError } from "../ffi/syscall_error.ts";
import { hex } from "../format.ts";
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_HUGE_1GB,
  MAP_HUGE_2MB,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_HUGETLB,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
} from "./constants.ts";
import { FileOffset } from "./file_offset.ts";
import { mapHost } from "./host_mapping.ts";
import { createRegion, type FileIdentity, type MmapRegion } from "./mmap_region.ts";

/** Huge page sizes the builder can ask the kernel for. */
export type HugePageSize = "2M" | "1G";

/** Options shared by the `MmapRegion` factories and {@link MmapRegionBuilder.withOptions}. */
export interface MapOptions {
  /** `PROT_*` bits; default `PROT_READ | PROT_WRITE`. */
  prot?: number;
  /** `MAP_*` flags replacing the default set (anonymous: private + anonymous + noreserve; file: shared + noreserve). */
  flags?: number;
  /** Prefault every page (`MAP_POPULATE`). */
  populate?: boolean;
  /** Reserve no swap (`MAP_NORESERVE`); default true. Ignored with `hugePages`, which always reserve. */
  noReserve?: boolean;
  /** Back with hugetlb pages of this size (`MAP_HUGETLB` or `MFD_HUGETLB`). */
  hugePages?: HugePageSize;
  /** Ask for transparent huge pages (`madvise(MADV_HUGEPAGE)`). */
  transparentHugePages?: boolean;
  /** Leave the memory out of core dumps (`madvise(MADV_DONTDUMP)`). */
  dontDump?: boolean;
  /** Alignment of the host address in bytes (a power of two), e.g. 2 MiB. */
  alignment?: number;
  /** `PROT_NONE` guard bytes on each side, or `{ before, after }` (page multiples). */
  guardPages?: number | { before: number; after: number };
  /** Record the memory as hugetlbfs-backed (or not). */
  hugetlbfs?: boolean;
}

const HUGE_BYTES: Readonly<Record<HugePageSize, number>> = { "2M": 2 ** 21, "1G": 2 ** 30 };
const HUGE_FLAGS: Readonly<Record<HugePageSize, number>> = { "2M": MAP_HUGE_2MB, "1G": MAP_HUGE_1GB };
const S_IFMT = 0o170000n, S_IFREG = 0o100000n, S_IFCHR = 0o020000n;

let devZero: FileIdentity | null | undefined;

/** The identity of `/dev/zero` (null if it cannot be opened), looked up once. */
function devZeroIdentity(): FileIdentity | null {
  if (devZero !== undefined) return devZero;
  const n = native();
  const fd = n.open(new TextEncoder().encode("/dev/zero\0"), false);
  const st = new BigUint64Array(5);
  devZero = fd >= 0 && n.fstat(fd, st) === 0 ? { dev: st[0], ino: st[1] } : null;
  if (fd >= 0) n.close(fd);
  return devZero;
}

/**
 * Builds an {@link MmapRegion} step by step (vm-memory's `MmapRegionBuilder`). Every argument is
 * checked in TypeScript before the kernel is asked, and a failure leaves nothing mapped or open.
 *
 * @example
 * ```ts
 * import { MmapRegionBuilder, PROT_READ, PROT_WRITE } from "../../mod.ts";
 * using region = new MmapRegionBuilder(1 << 21)
 *   .withMmapProt(PROT_READ | PROT_WRITE)
 *   .withTransparentHugePages()
 *   .withAlignment(1 << 21)
 *   .build();
 * ```
 */
export class MmapRegionBuilder {
  readonly #op: string;
  readonly #size: number;
  #prot = PROT_READ | PROT_WRITE;
  #flags: number | undefined;
  #populate = false;
  #noReserve = true;
  #fileOffset: FileOffset | undefined;
  #memfdName: string | undefined;
  #rawPointer: bigint | undefined;
  #hugePages: HugePageSize | undefined;
  #thp = false;
  #dontDump = false;
  #alignment = 0;
  #guardBefore = 0;
  #guardAfter = 0;
  #hugetlbfs: boolean | undefined;

  /**
   * Starts a builder for `size` bytes (a positive safe integer).
   *
   * @example
   * ```ts
   * import { MmapRegionBuilder } from "../../mod.ts";
   * using r = new MmapRegionBuilder(4096).build();
   * ```
   */
  constructor(size: number, op = "MmapRegionBuilder") {
    this.#op = op;
    this.#size = toLength(size, op, "size", false);
  }

  /** Sets the `PROT_*` bits (default `PROT_READ | PROT_WRITE`). */
  withMmapProt(prot: number): this {
    if (
      typeof prot !== "number" || !Number.isInteger(prot) || prot < 0 || prot > 7 || // `&` would wrap 2^32
      (prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0
    ) {
      throw new InvalidArgumentError(
        this.#op,
        "prot",
        prot,
        "must be a combination of PROT_READ, PROT_WRITE, PROT_EXEC",
      );
    }
    this.#prot = prot;
    return this;
  }

  /** Replaces the default `MAP_*` flags. `MAP_FIXED` is refused at build time. */
  withMmapFlags(flags: number): this {
    if (typeof flags !== "number" || !Number.isInteger(flags) || flags < 0 || flags > 0x7fffffff) {
      throw new InvalidArgumentError(this.#op, "flags", flags, "must be a non-negative 32-bit integer");
    }
    this.#flags = flags;
    return this;
  }

  /** Maps a file from the given offset instead of anonymous memory. */
  withFileOffset(fileOffset: FileOffset): this {
    if (!(fileOffset instanceof FileOffset)) {
      throw new InvalidArgumentError(this.#op, "fileOffset", fileOffset, "must be a FileOffset");
    }
    this.#fileOffset = fileOffset;
    return this;
  }

  /** Creates a memfd (named for `/proc/<pid>/fd` listings) and maps it shared. */
  withMemfd(name = "gmem"): this {
    if (typeof name !== "string" || name.includes("\0") || name.length > 249) {
      throw new InvalidArgumentError(this.#op, "name", name, "must be a string of at most 249 characters without NUL");
    }
    this.#memfdName = name;
    return this;
  }

  /** Borrows memory mapped elsewhere at `addr` (page-aligned); nothing is mapped or unmapped. */
  withRawMmapPointer(addr: AddressLike): this {
    this.#rawPointer = toAddress(addr, this.#op, "addr");
    return this;
  }

  /** Records whether the memory is hugetlbfs-backed. */
  withHugetlbfs(value: boolean): this {
    this.#hugetlbfs = Boolean(value);
    return this;
  }

  /** Backs the region with hugetlb pages of the given size; the size must be a multiple of it. */
  withHugePages(size: HugePageSize): this {
    if (size !== "2M" && size !== "1G") {
      throw new InvalidArgumentError(this.#op, "hugePages", size, 'must be "2M" or "1G"');
    }
    this.#hugePages = size;
    return this;
  }

  /** Asks for transparent huge pages (`MADV_HUGEPAGE`). */
  withTransparentHugePages(on = true): this {
    this.#thp = Boolean(on);
    return this;
  }

  /** Leaves the memory out of core dumps (`MADV_DONTDUMP`). */
  withDontDump(on = true): this {
    this.#dontDump = Boolean(on);
    return this;
  }

  /** Prefaults every page (`MAP_POPULATE`). */
  withPopulate(on = true): this {
    this.#populate = Boolean(on);
    return this;
  }

  /** Reserves no swap (`MAP_NORESERVE`, the default). */
  withNoReserve(on = true): this {
    this.#noReserve = Boolean(on);
    return this;
  }

  /** Aligns the host address to `bytes` (a power of two). */
  withAlignment(bytes: number): this {
    const a = toLength(bytes, this.#op, "alignment");
    if (a !== 0 && !isPowerOfTwo(a)) {
      throw new InvalidArgumentError(this.#op, "alignment", bytes, "must be a power of two");
    }
    this.#alignment = a;
    return this;
  }

  /** Surrounds the region with `PROT_NONE` guard bytes (page multiples). */
  withGuardPages(before: number, after: number = before): this {
    this.#guardBefore = toLength(before, this.#op, "guardPages.before");
    this.#guardAfter = toLength(after, this.#op, "guardPages.after");
    return this;
  }

  /** Applies a {@link MapOptions} object. */
  withOptions(options: MapOptions): this {
    if (options === null || typeof options !== "object") {
      throw new InvalidArgumentError(this.#op, "options", options, "must be an object");
    }
    if (options.prot !== undefined) this.withMmapProt(options.prot);
    if (options.flags !== undefined) this.withMmapFlags(options.flags);
    if (options.populate !== undefined) this.withPopulate(options.populate);
    if (options.noReserve !== undefined) this.withNoReserve(options.noReserve);
    if (options.hugePages !== undefined) this.withHugePages(options.hugePages);
    if (options.transparentHugePages !== undefined) this.withTransparentHugePages(options.transparentHugePages);
    if (options.dontDump !== undefined) this.withDontDump(options.dontDump);
    if (options.alignment !== undefined) this.withAlignment(options.alignment);
    if (options.hugetlbfs !== undefined) this.withHugetlbfs(options.hugetlbfs);
    const g = options.guardPages;
    if (typeof g === "number") this.withGuardPages(g);
    else if (g !== undefined) this.withGuardPages(g?.before, g?.after);
    return this;
  }

  /**
   * Maps the memory and returns the region.
   *
   * @example
   * ```ts
   * import { MmapRegionBuilder } from "../../mod.ts";
   * using r = new MmapRegionBuilder(8192).withGuardPages(4096).build();
   * console.log(r.guardBefore, r.guardAfter); // 4096 4096
   * ```
   */
  build(): MmapRegion {
    const op = this.#op === "MmapRegionBuilder" ? "MmapRegionBuilder.build" : this.#op;
    const n = native();
    const page = n.pageSize;
    const size = this.#size;

    if (this.#rawPointer !== undefined) return this.#buildBorrowed(op, page);

    for (
      const [name, v] of [["guardPages.before", this.#guardBefore], ["guardPages.after", this.#guardAfter]] as const
    ) {
      if (v % page !== 0) throw new InvalidArgumentError(op, name, v, `must be a multiple of the page size ${page}`);
    }
    if (this.#fileOffset && this.#memfdName !== undefined) {
      throw new InvalidArgumentError(op, "fileOffset", this.#fileOffset.toString(), "cannot be combined with a memfd");
    }
    const fileBacked = this.#fileOffset !== undefined || this.#memfdName !== undefined;
    let flags = this.#flags ?? (fileBacked ? MAP_SHARED | MAP_NORESERVE : MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    if (this.#flags === undefined && !this.#noReserve) flags &= ~MAP_NORESERVE;
    if (this.#populate) flags |= MAP_POPULATE;
    if ((flags & MAP_FIXED) !== 0) {
      throw new GuestMemoryError("MapFixed", op, "MAP_FIXED is not allowed: it would replace whatever is mapped there");
    }
    if (((flags & MAP_SHARED) !== 0) === ((flags & MAP_PRIVATE) !== 0)) {
      throw new InvalidArgumentError(op, "flags", flags, "must contain exactly one of MAP_SHARED and MAP_PRIVATE");
    }
    if (fileBacked && (flags & MAP_ANONYMOUS) !== 0) {
      throw new InvalidArgumentError(op, "flags", flags, "must not contain MAP_ANONYMOUS for a file or memfd mapping");
    }
    if (!fileBacked && (flags & MAP_ANONYMOUS) === 0) {
      throw new InvalidArgumentError(op, "flags", flags, "must contain MAP_ANONYMOUS when no file is given");
    }

    let memfdFlags = 0;
    let hugetlbfs = this.#hugetlbfs;
    if (this.#hugePages) {
      const bytes = HUGE_BYTES[this.#hugePages];
      if (size % bytes !== 0) {
        throw new InvalidArgumentError(op, "size", size, `must be a multiple of the huge page size ${hex(bytes)}`);
      }
      if (this.#fileOffset) {
        throw new InvalidArgumentError(
          op,
          "hugePages",
          this.#hugePages,
          "does not apply to a file mapping (map a hugetlbfs file instead)",
        );
      }
      if (this.#memfdName !== undefined) memfdFlags = MFD_HUGETLB | HUGE_FLAGS[this.#hugePages];
      else flags |= MAP_HUGETLB | HUGE_FLAGS[this.#hugePages];
      // Without a reservation an empty hugetlb pool is only noticed at the first touch, as SIGBUS;
      // reserving at map time turns that into ENOMEM here.
      flags &= ~MAP_NORESERVE;
      hugetlbfs ??= true;
    }
    const alignment = this.#alignment > page ? this.#alignment : 0;
    if (this.#guardBefore + size + this.#guardAfter + alignment > Number.MAX_SAFE_INTEGER) {
      throw new InvalidArgumentError(op, "size", size, "plus guard pages and alignment must stay below 2^53");
    }

    const file = this.#fileOffset
      ? openFile(op, this.#fileOffset, size, (this.#prot & PROT_WRITE) !== 0 && (flags & MAP_SHARED) !== 0)
      : undefined;
    let mapping;
    try {
      mapping = mapHost(op, {
        size,
        prot: this.#prot,
        flags,
        fd: file?.fd ?? -1,
        offset: this.#fileOffset?.start ?? 0n,
        alignment,
        guardBefore: this.#guardBefore,
        guardAfter: this.#guardAfter,
        transparentHugePages: this.#thp,
        dontDump: this.#dontDump,
        memfd: this.#memfdName !== undefined ? { name: this.#memfdName, flags: memfdFlags } : undefined,
      });
    } finally {
      if (file?.owned) n.close(file.fd);
    }

    let fileOffset = this.#fileOffset;
    let identity = file?.identity;
    if (mapping.memfd >= 0) {
      const st = new BigUint64Array(5);
      if (n.fstat(mapping.memfd, st) === 0) identity = { dev: st[0], ino: st[1] };
      fileOffset = FileOffset.fromFd(mapping.memfd, 0);
    }
    return createRegion({
      addr: mapping.addr,
      size,
      prot: this.#prot,
      flags,
      owned: true,
      fileOffset,
      fileIdentity: identity,
      hugetlbfs,
      memfd: mapping.memfd,
      guardBefore: this.#guardBefore,
      guardAfter: this.#guardAfter,
    });
  }

  #buildBorrowed(op: string, page: number): MmapRegion {
    const addr = this.#rawPointer!;
    if (addr === 0n || addr % BigInt(page) !== 0n) {
      throw new GuestMemoryError("InvalidPointer", op, `raw pointer ${hex(addr)} must be non-null and page-aligned`);
    }
    if (addr + BigInt(this.#size) > 1n << 64n) {
      throw new InvalidArgumentError(
        op,
        "size",
        this.#size,
        `runs past the end of the address space from ${hex(addr)}`,
      );
    }
    checkBorrowable(op, addr, this.#size, this.#prot, page);
    return createRegion({
      addr,
      size: this.#size,
      prot: this.#prot,
      flags: this.#flags ?? 0,
      owned: false,
      fileOffset: this.#fileOffset,
      fileIdentity: undefined,
      hugetlbfs: this.#hugetlbfs,
      memfd: -1,
      guardBefore: 0,
      guardAfter: 0,
    });
  }
}

/**
 * Refuses a borrowed range whose first or last page is not mapped, or is mapped with less than
 * `prot`: a view of it would fault at once. (Checking the ends is O(1); a hole or a protection change
 * in the middle of a huge range is still the caller's to avoid.)
 */
function checkBorrowable(op: string, addr: bigint, size: number, prot: number, page: number): void {
  const n = native();
  const last = addr + BigInt(Math.ceil(size / page) - 1) * BigInt(page);
  for (const at of addr === last ? [addr] : [addr, last]) {
    const have = n.residentIn(at, BigInt(page)) < 0n ? -1 : n.vmaProt(at);
    if (have < 0) {
      throw new GuestMemoryError(
        "InvalidPointer",
        op,
        `raw pointer range [${hex(addr)}, ${hex(addr + BigInt(size))}) is not mapped at ${hex(at)}`,
      );
    }
    if ((prot & ~have & (PROT_READ | PROT_WRITE | PROT_EXEC)) !== 0) {
      throw new InvalidArgumentError(
        op,
        "prot",
        prot,
        `asks for more than the memory at ${hex(at)} is mapped with (${have & 7})`,
      );
    }
  }
}

interface OpenedFile {
  fd: number;
  owned: boolean;
  identity: FileIdentity;
}

/** Resolves a FileOffset to a descriptor and checks the mapping fits in the file. */
function openFile(op: string, fo: FileOffset, size: number, needWrite: boolean): OpenedFile {
  const n = native();
  const page = BigInt(n.pageSize);
  if (fo.start % page !== 0n) {
    throw new InvalidArgumentError(op, "fileOffset.start", fo.start, `must be a multiple of the page size ${page}`);
  }
  if (fo.start + BigInt(size) > (1n << 63n) - 1n) {
    throw new InvalidArgumentError(op, "fileOffset.start", fo.start, "plus size must stay below 2^63");
  }
  const src = fo.source;
  let fd: number;
  let owned = false;
  if (src.kind === "path") {
    fd = n.open(new TextEncoder().encode(src.path + "\0"), needWrite);
    if (fd < 0) throw syscallError(op, "open", fd, { path: src.path, mode: needWrite ? "O_RDWR" : "O_RDONLY" });
    owned = true;
  } else if (src.kind === "file") {
    const id = n.statFile(src.file);
    if (!id.ok) throw new InvalidArgumentError(op, "fileOffset.file", src.name, id.reason);
    fd = n.findFd(id.dev, id.ino, needWrite ? 3 : 1);
    if (fd < 0) {
      throw new InvalidArgumentError(
        op,
        "fileOffset.file",
        src.name,
        needWrite ? "was not opened read-write, which a shared writable mapping needs" : "has no open descriptor",
      );
    }
  } else {
    fd = src.fd;
  }
  const st = new BigUint64Array(5);
  const rc = n.fstat(fd, st);
  if (rc !== 0) {
    if (owned) n.close(fd);
    throw syscallError(op, "fstat", rc, { fd: String(fd) });
  }
  const [dev, ino, fileSize, mode, access] = st;
  if (needWrite && access !== 2n) {
    if (owned) n.close(fd);
    throw new InvalidArgumentError(
      op,
      "fileOffset",
      fo.toString(),
      "is not open read-write, which a shared writable mapping needs",
    );
  }
  const zero = (mode & S_IFMT) === S_IFCHR && fo.start !== 0n ? devZeroIdentity() : null;
  if (zero !== null && zero.dev === dev && zero.ino === ino) {
    // A shared mapping of /dev/zero is a new shared memory object of exactly the mapping's size,
    // indexed from the file offset: any offset but 0 makes every page fault with SIGBUS.
    if (owned) n.close(fd);
    throw new InvalidArgumentError(op, "fileOffset.start", fo.start, "must be 0 for a mapping of /dev/zero");
  }
  if ((mode & S_IFMT) === S_IFREG && fo.start + BigInt(size) > fileSize) {
    if (owned) n.close(fd);
    throw new MappingPastEofError(op, fileSize, fo.start, size);
  }
  return { fd, owned, identity: { dev, ino } };
}
