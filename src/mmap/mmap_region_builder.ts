/**
 * `MmapRegionBuilder`: every way of making an {@link MmapRegion}, validated before any system call.
 * @module
 */

import { type AddressLike, isPowerOfTwo, toAddress, toLength } from "../core/address.ts";
import { InvalidArgumentError } from "../core/errors.ts";
import { native } from "../ffi/native.ts";
import { hex } from "../core/format.ts";
import { InvalidPointerError, MapFixedError } from "./mmap_errors.ts";
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
} from "../core/constants.ts";
import { FileOffset } from "./file_offset.ts";
import { mapHost } from "./host_mapping.ts";
import { openMappedFile, reserveFileSpace } from "./mapped_file.ts";
import { mappingPageSize } from "./mapping_page.ts";
import { createRegion, type MmapRegion } from "./mmap_region.ts";

/** Huge page sizes the builder can ask the kernel for. */
export type HugePageSize = "2M" | "1G";

/**
 * What a file mapping does about the file's space (see {@link MapOptions.fileSpace}): `"reserve"`
 * allocates it at map time, `"sparse"` leaves holes to be filled on first write.
 */
export type FileSpace = "reserve" | "sparse";

/** Options shared by the `MmapRegion` factories and {@link MmapRegionBuilder.withOptions}. */
export interface MapOptions {
  /** `PROT_*` bits; default `PROT_READ | PROT_WRITE`. */
  prot?: number;
  /** `MAP_*` flags replacing the default set (anonymous: private + anonymous + noreserve; file: shared + noreserve). */
  flags?: number;
  /** Prefault every page (`MAP_POPULATE`). */
  populate?: boolean;
  /**
   * Reserve no swap (`MAP_NORESERVE`); default true. Huge pages, however asked for (`hugePages`,
   * `MAP_HUGETLB` in `flags`, a hugetlbfs file or memfd), always reserve: an empty pool is then an
   * `ENOMEM` at map time, not a SIGBUS at the first touch.
   */
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
  /**
   * For a shared mapping of a regular file through a read-write descriptor, on a file system with
   * a size limit: `"reserve"` (the default) allocates the file's blocks for the mapped range first
   * (`fallocate`), so that a write through the mapping never meets a full file system, which
   * would kill the process with SIGBUS; a full one is an `ENOSPC` error at map time instead. It
   * costs the space up front (on tmpfs such as `/dev/shm`, that is memory). `"sparse"` maps the
   * file as it is: holes are filled on first write, and a write the file system has no room for
   * kills the process. Memfds (no size limit) and hugetlbfs files (reserved by the mapping itself)
   * need neither.
   *
   * What no option can protect: on tmpfs (`/dev/shm`) even reading an unallocated page of a
   * mapped file allocates one, so a read-only or private mapping of a sparse tmpfs file dies of
   * SIGBUS on such a read once that tmpfs is full (allocate the file first, or map it shared
   * through a read-write descriptor); and a file that another process truncates below the
   * mapped range after it was mapped faults on the pages past its new end.
   */
  fileSpace?: FileSpace;
}

const HUGE_BYTES: Readonly<Record<HugePageSize, number>> = { "2M": 2 ** 21, "1G": 2 ** 30 };
const HUGE_FLAGS: Readonly<Record<HugePageSize, number>> = { "2M": MAP_HUGE_2MB, "1G": MAP_HUGE_1GB };

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
  #fileSpace: FileSpace = "reserve";

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

  /** Chooses what a file mapping does about the file's space (see {@link MapOptions.fileSpace}). */
  withFileSpace(mode: FileSpace): this {
    if (mode !== "reserve" && mode !== "sparse") {
      throw new InvalidArgumentError(this.#op, "fileSpace", mode, 'must be "reserve" or "sparse"');
    }
    this.#fileSpace = mode;
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
    if (options.fileSpace !== undefined) this.withFileSpace(options.fileSpace);
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
      throw new MapFixedError(op, flags);
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
    let memfdHugePage = 0;
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
      if (this.#memfdName !== undefined) {
        memfdFlags = MFD_HUGETLB | HUGE_FLAGS[this.#hugePages];
        memfdHugePage = bytes;
      } else {
        flags |= MAP_HUGETLB | HUGE_FLAGS[this.#hugePages];
      }
    }
    const asked = this.#alignment > page ? this.#alignment : 0;
    // Checked before anything is opened; the huge page rounding below is checked again.
    if (this.#guardBefore + size + this.#guardAfter + asked > Number.MAX_SAFE_INTEGER) {
      throw new InvalidArgumentError(op, "size", size, "plus guard pages and alignment must stay below 2^53");
    }

    const file = this.#fileOffset
      ? openMappedFile(op, this.#fileOffset, size, (this.#prot & PROT_WRITE) !== 0 && (flags & MAP_SHARED) !== 0)
      : undefined;
    let mapping;
    let pageSize: number;
    let mapSize: number;
    try {
      pageSize = mappingPageSize(
        op,
        flags,
        file ?? (this.#memfdName !== undefined ? { memfdHugePage } : { anonymous: true }),
      );
      if (pageSize > page) {
        // However huge pages were asked for (option, raw flags, a hugetlbfs file or memfd): without
        // a reservation an empty pool is only noticed at the first touch, as SIGBUS; reserving at
        // map time turns that into ENOMEM here.
        flags &= ~MAP_NORESERVE;
        hugetlbfs ??= true;
      }
      mapSize = Math.ceil(size / pageSize) * pageSize;
      // A hugetlb mapping placed inside a reservation (guards, alignment) must start on a huge page.
      const reserved = asked > 0 || this.#guardBefore > 0 || this.#guardAfter > 0;
      const alignment = reserved && pageSize > page ? Math.max(asked, pageSize) : asked;
      if (this.#guardBefore + mapSize + this.#guardAfter + alignment > Number.MAX_SAFE_INTEGER) {
        throw new InvalidArgumentError(
          op,
          "size",
          size,
          `rounded up to ${hex(pageSize)}-byte pages must stay below 2^53`,
        );
      }
      if (file !== undefined && this.#fileSpace === "reserve") {
        reserveFileSpace(op, file, (flags & MAP_SHARED) !== 0, this.#fileOffset!.start, mapSize);
      }
      mapping = mapHost(op, {
        size: mapSize,
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
      mapSize,
      pageSize,
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
      throw new InvalidPointerError(op, addr, this.#size);
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
      mapSize: this.#size,
      pageSize: page,
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
      throw new InvalidPointerError(op, addr, size, at);
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
