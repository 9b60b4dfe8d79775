/**
 * The library's error types. Every error it throws is a {@link GuestMemoryError} whose `kind` names
 * the failure (vm-memory's variant names where one exists) and whose message names the operation,
 * the address or range in hex, and the reason.
 * @module
 */

import { hex } from "./format.ts";

/**
 * The kinds of failure: the one discriminator to switch on. Every kind has exactly one class
 * (docs/errors.md has the table), so `kind` and `instanceof` always agree. The first group mirrors
 * vm-memory's `GuestMemoryError` and `MmapRegionError` variants; the rest are this library's own.
 */
export type GuestMemoryErrorKind =
  | "InvalidGuestAddress"
  | "InvalidBackendAddress"
  | "PartialBuffer"
  | "HostAddressNotAvailable"
  | "GuestAddressOverflow"
  | "IOError"
  | "InvalidPointer"
  | "MapFixed"
  | "MappingPastEof"
  | "Syscall"
  | "OutOfBounds"
  | "RegionClosed"
  | "ReadOnly"
  | "NoAccess"
  | "Misaligned"
  | "InvalidArgument"
  | "BufferEscaped"
  | "NativeLibrary"
  | "NoMemoryRegion"
  | "MemoryRegionOverlap"
  | "UnsortedMemoryRegions"
  | "InvalidGuestRegion"
  | "CannotResolve"
  | "Fragmented"
  | "IommuMisconfigured"
  | "SliceRevoked"
  | "Virtqueue"
  | "VhostUser";

/**
 * Base class of every error this library throws.
 *
 * @example
 * ```ts
 * import { GuestMemoryError, MmapRegion } from "../../mod.ts";
 * try {
 *   MmapRegion.anonymous(0);
 * } catch (e) {
 *   if (e instanceof GuestMemoryError) console.log(e.kind, e.op); // "InvalidArgument" "MmapRegion.anonymous"
 * }
 * ```
 */
export class GuestMemoryError extends Error {
  /** What went wrong, as a stable string to switch on. */
  readonly kind: GuestMemoryErrorKind;
  /** The public operation that failed, e.g. `"MmapRegion.write"`. */
  readonly op: string;

  /** Builds an error whose message is `op: reason`. */
  constructor(kind: GuestMemoryErrorKind, op: string, reason: string, options?: ErrorOptions) {
    super(`${op}: ${reason}`, options);
    this.kind = kind;
    this.op = op;
    this.name = new.target.name;
  }
}

/**
 * An argument had the wrong type or an impossible value (negative, fractional, NaN, too large,
 * misaligned where alignment is required, …). Nothing was changed.
 *
 * @example
 * ```ts
 * import { InvalidArgumentError, MmapRegion } from "../../mod.ts";
 * try { MmapRegion.anonymous(-1); } catch (e) {
 *   console.log(e instanceof InvalidArgumentError && e.argument); // "size"
 * }
 * ```
 */
export class InvalidArgumentError extends GuestMemoryError {
  /** The name of the offending argument. */
  readonly argument: string;
  /** The value that was passed. */
  readonly value: unknown;

  /**
   * Builds the error.
   * @param reason says what the argument must be.
   */
  constructor(op: string, argument: string, value: unknown, reason: string) {
    super("InvalidArgument", op, `${argument} ${reason}`);
    this.argument = argument;
    this.value = value;
  }
}

/**
 * The region (or the object built on it) was closed; its memory may no longer be used.
 *
 * @example
 * ```ts
 * import { MmapRegion, RegionClosedError } from "../../mod.ts";
 * const r = MmapRegion.anonymous(4096);
 * r.close();
 * try { r.bytes(); } catch (e) { console.log(e instanceof RegionClosedError); } // true
 * ```
 */
export class RegionClosedError extends GuestMemoryError {
  /**
   * Builds the error.
   * @param what names the closed object, e.g. `"region at host 0x7f…"`.
   */
  constructor(op: string, what: string) {
    super("RegionClosed", op, `${what} is closed`);
  }
}

/**
 * An access fell outside an object's bounds: `[offset, offset + length)` does not fit in `size`.
 *
 * @example
 * ```ts
 * import { MmapRegion, OutOfBoundsError } from "../../mod.ts";
 * using r = MmapRegion.anonymous(4096);
 * try { r.bytes(4000, 200); } catch (e) { console.log(e instanceof OutOfBoundsError && e.offset); } // 4000n
 * ```
 */
export class OutOfBoundsError extends GuestMemoryError {
  /** Start of the requested range. */
  readonly offset: bigint;
  /** Length of the requested range. */
  readonly length: number;
  /** Size of the object. */
  readonly size: number;

  /** Builds the error for the requested range against `size`. */
  constructor(op: string, offset: bigint, length: number, size: number) {
    super(
      "OutOfBounds",
      op,
      `range [${hex(offset)}, ${hex(offset + BigInt(length))}) does not fit in ${hex(size)} bytes`,
    );
    this.offset = offset;
    this.length = length;
    this.size = size;
  }
}

/**
 * A write (or a writable view) was asked of memory mapped without `PROT_WRITE`. Thrown before the
 * memory is touched: the write never reaches the hardware fault.
 *
 * @example
 * ```ts
 * import { MmapRegion, PROT_READ, ReadOnlyError } from "../../mod.ts";
 * using r = MmapRegion.builder(4096).withMmapProt(PROT_READ).build();
 * try { r.write(new Uint8Array([1]), 0); } catch (e) { console.log(e instanceof ReadOnlyError); } // true
 * ```
 */
export class ReadOnlyError extends GuestMemoryError {
  /** Start of the refused range (an offset or an address, as the operation uses). */
  readonly offset: bigint;
  /** Length of the refused range. */
  readonly length: number;

  /**
   * Builds the error.
   * @param where describes the memory, e.g. `"region offset"`.
   */
  constructor(op: string, where: string, offset: bigint, length: number) {
    super(
      "ReadOnly",
      op,
      `${where} [${hex(offset)}, ${hex(offset + BigInt(length))}) is mapped read-only`,
    );
    this.offset = offset;
    this.length = length;
  }
}

/**
 * An access was asked of memory mapped without the needed protection (`PROT_NONE`, or a read of
 * memory mapped without `PROT_READ`). Thrown before the memory is touched.
 *
 * @example
 * ```ts
 * import { MmapRegion, NoAccessError, PROT_NONE } from "../../mod.ts";
 * using r = MmapRegion.builder(4096).withMmapProt(PROT_NONE).build();
 * try { r.read(new Uint8Array(1), 0); } catch (e) { console.log(e instanceof NoAccessError); } // true
 * ```
 */
export class NoAccessError extends GuestMemoryError {
  /** Start of the refused range. */
  readonly offset: bigint;
  /** Length of the refused range. */
  readonly length: number;

  /**
   * Builds the error.
   * @param access is what was wanted (`"read"`, `"read-write"`), `prot` what the mapping has.
   */
  constructor(op: string, where: string, offset: bigint, length: number, access: string, prot: string) {
    super(
      "NoAccess",
      op,
      `${where} [${hex(offset)}, ${hex(offset + BigInt(length))}) is mapped ${prot}; ${access} access refused`,
    );
    this.offset = offset;
    this.length = length;
  }
}

/**
 * A system call failed. Carries the call, `errno`, its symbolic name and the arguments.
 *
 * @example
 * ```ts
 * import { MmapRegion, SyscallError } from "../../mod.ts";
 * try { MmapRegion.builder(2 * 1024 * 1024).withHugePages("2M").build(); } catch (e) {
 *   if (e instanceof SyscallError) console.log(e.syscall, e.errnoName); // "mmap" "ENOMEM" (no huge pages reserved)
 * }
 * ```
 */
export class SyscallError extends GuestMemoryError {
  /** The failing system call, e.g. `"mmap"`. */
  readonly syscall: string;
  /** The positive errno value. */
  readonly errno: number;
  /** The symbolic errno name, e.g. `"ENOMEM"`. */
  readonly errnoName: string;
  /** The arguments of the call, by name. */
  readonly args: Readonly<Record<string, string | number | bigint>>;

  /**
   * Builds the error.
   * @param description is the C library's text for the errno.
   */
  constructor(
    op: string,
    syscall: string,
    errno: number,
    errnoName: string,
    description: string,
    args: Record<string, string | number | bigint>,
  ) {
    const shown = Object.entries(args)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : hex(v)}`)
      .join(", ");
    super("Syscall", op, `${syscall}(${shown}) failed: ${errnoName} (${description})`);
    this.syscall = syscall;
    this.errno = errno;
    this.errnoName = errnoName;
    this.args = Object.freeze({ ...args });
  }
}

/**
 * A file mapping would extend past the end of its file (touching such pages raises SIGBUS, so the
 * library refuses the mapping up front).
 *
 * @example
 * ```ts
 * import { FileOffset, MappingPastEofError, MmapRegion } from "../../mod.ts";
 * try { MmapRegion.fromFile(FileOffset.fromPath("/etc/hostname"), 1 << 20); } catch (e) {
 *   console.log(e instanceof MappingPastEofError); // true
 * }
 * ```
 */
export class MappingPastEofError extends GuestMemoryError {
  /** The file's size when the mapping was attempted. */
  readonly fileSize: bigint;
  /** The mapping's file offset. */
  readonly start: bigint;
  /** The mapping's size. */
  readonly size: number;

  /** Builds the error for `[start, start + size)` of a file of `fileSize` bytes. */
  constructor(op: string, fileSize: bigint, start: bigint, size: number) {
    super(
      "MappingPastEof",
      op,
      `file range [${hex(start)}, ${hex(start + BigInt(size))}) extends past the end of the file (${
        hex(fileSize)
      } bytes)`,
    );
    this.fileSize = fileSize;
    this.start = start;
    this.size = size;
  }
}

/**
 * The ArrayBuffer over a mapping was transferred away by user code (`buffer.transfer()`,
 * `postMessage` with a transfer list), so the library can no longer detach every view before an
 * operation that would make them unsafe.
 *
 * @example
 * ```ts
 * import { BufferEscapedError, MmapRegion, PROT_READ } from "../../mod.ts";
 * using r = MmapRegion.anonymous(4096);
 * const stolen = r.bytes().buffer.transfer();
 * try { r.protect(PROT_READ); } catch (e) { console.log(e instanceof BufferEscapedError, stolen.byteLength); } // true 4096
 * ```
 */
export class BufferEscapedError extends GuestMemoryError {
  /**
   * Builds the error.
   * @param what describes the mapping.
   */
  constructor(op: string, what: string) {
    super(
      "BufferEscaped",
      op,
      `the ArrayBuffer over ${what} was transferred away by user code; views cannot be revoked`,
    );
  }
}

/**
 * The native helper library could not be loaded (not built, or not found next to the module).
 *
 * @example
 * ```ts
 * import { NativeLibraryError } from "../../mod.ts";
 * const e = new NativeLibraryError("load", "/x/libgmem.so", "not found");
 * console.log(e.kind); // "NativeLibrary"
 * ```
 */
export class NativeLibraryError extends GuestMemoryError {
  /** Where the library was looked for. */
  readonly path: string;

  /**
   * Builds the error.
   * @param reason says what failed and how to fix it.
   */
  constructor(op: string, path: string, reason: string, options?: ErrorOptions) {
    super("NativeLibrary", op, `cannot load the native helper ${path}: ${reason}`, options);
    this.path = path;
  }
}

/**
 * No guest memory region contains the address (vm-memory's `InvalidGuestAddress`).
 *
 * @example
 * ```ts
 * import { InvalidGuestAddressError } from "../../mod.ts";
 * const e = new InvalidGuestAddressError("GuestMemoryMmap.read", 0x5000n);
 * console.log(e.addr); // 20480n
 * ```
 */
export class InvalidGuestAddressError extends GuestMemoryError {
  /** The guest address that is not backed by any region. */
  readonly addr: bigint;

  /**
   * Builds the error.
   * @param addr the address no region contains
   */
  constructor(op: string, addr: bigint) {
    super("InvalidGuestAddress", op, `invalid guest address ${hex(addr)}: no region contains it`);
    this.addr = addr;
  }
}

/**
 * An offset inside a region (or slice) is out of its range (vm-memory's `InvalidBackendAddress`).
 *
 * @example
 * ```ts
 * import { InvalidBackendAddressError } from "../../mod.ts";
 * const e = new InvalidBackendAddressError("GuestRegionMmap.read", "region offset 0x2000 is past the end (0x1000 bytes)");
 * console.log(e.kind); // "InvalidBackendAddress"
 * ```
 */
export class InvalidBackendAddressError extends GuestMemoryError {
  /**
   * Builds the error.
   * @param reason says which offset and why
   */
  constructor(op: string, reason: string) {
    super("InvalidBackendAddress", op, `invalid backend address: ${reason}`);
  }
}

/**
 * One zero-copy view was asked to span a view seam: a region larger than the runtime's largest
 * ArrayBuffer (4 GiB on Bun) is covered by several views, and a single slice, `bytes()` or
 * `dataView()` cannot straddle two of them. Kind `InvalidBackendAddress`, as at a region boundary;
 * copies, scalars, `getSlices` and I/O cross seams as they cross region boundaries.
 *
 * @example
 * ```ts
 * import { ViewSeamError } from "../../mod.ts";
 * const e = new ViewSeamError("GuestMemoryMmap.getSlice", "guest address", 0xffff_fff0n, 0x20, 0x1_0000_0000n, 2 ** 32);
 * console.log(e.kind, e.seam); // "InvalidBackendAddress" 4294967296n
 * ```
 */
export class ViewSeamError extends InvalidBackendAddressError {
  /** Start of the requested range (in the units `where` names). */
  readonly start: bigint;
  /** Length of the requested range. */
  readonly length: number;
  /** Where the next view begins, in the same units. */
  readonly seam: bigint;
  /** The most bytes one view holds on this runtime. */
  readonly viewSize: number;

  /**
   * Builds the error.
   * @param where names the address space, e.g. `"guest address"` or `"region offset"`
   */
  constructor(op: string, where: string, start: bigint, length: number, seam: bigint, viewSize: number) {
    super(
      op,
      `${where} range [${hex(start)}, ${hex(start + BigInt(length))}) crosses the view seam at ${hex(seam)} ` +
        `(one view holds at most ${hex(viewSize)} bytes on this runtime); split the range there, or use ` +
        "getSlices or a copy",
    );
    this.start = start;
    this.length = length;
    this.seam = seam;
    this.viewSize = viewSize;
  }
}

/**
 * Only part of a buffer was transferred (vm-memory's `PartialBuffer`). The bytes that were
 * transferred stay transferred.
 *
 * @example
 * ```ts
 * import { PartialBufferError } from "../../mod.ts";
 * const e = new PartialBufferError("GuestMemoryMmap.writeSlice", 0x13ffn, 5, 1);
 * console.log(e.expected, e.completed); // 5 1
 * ```
 */
export class PartialBufferError extends GuestMemoryError {
  /** Bytes asked for. */
  readonly expected: number;
  /** Bytes actually transferred. */
  readonly completed: number;
  /** Where the transfer started. */
  readonly addr: bigint;

  /**
   * Builds the error.
   * @param addr where the transfer started
   * @param reason why the rest could not be transferred
   */
  constructor(
    op: string,
    addr: bigint,
    expected: number,
    completed: number,
    reason = "the rest is not backed by memory",
  ) {
    super(
      "PartialBuffer",
      op,
      `only ${completed} of ${expected} bytes at ${hex(addr)} could be transferred (${reason})`,
    );
    this.expected = expected;
    this.completed = completed;
    this.addr = addr;
  }
}

/**
 * Advancing an address would wrap past 2^64 (vm-memory's `GuestAddressOverflow`).
 *
 * @example
 * ```ts
 * import { GuestAddressOverflowError } from "../../mod.ts";
 * const e = new GuestAddressOverflowError("GuestMemoryMmap.read", 2n ** 64n - 1n, 2);
 * console.log(e.kind); // "GuestAddressOverflow"
 * ```
 */
export class GuestAddressOverflowError extends GuestMemoryError {
  /** The start of the range. */
  readonly addr: bigint;
  /** The length that made it wrap. */
  readonly length: number;

  /**
   * Builds the error.
   * @param length the length that runs past 2^64
   */
  constructor(op: string, addr: bigint, length: number) {
    super("GuestAddressOverflow", op, `range ${hex(addr)} + ${hex(length)} wraps past 2^64`);
    this.addr = addr;
    this.length = length;
  }
}

/**
 * An atomic access was not naturally aligned.
 *
 * @example
 * ```ts
 * import { MisalignedError } from "../../mod.ts";
 * const e = new MisalignedError("GuestMemoryMmap.loadU32", 0x1002n, 4);
 * console.log(e.alignment); // 4
 * ```
 */
export class MisalignedError extends GuestMemoryError {
  /** The misaligned address. */
  readonly addr: bigint;
  /** The alignment the access needs. */
  readonly alignment: number;

  /**
   * Builds the error.
   * @param alignment the natural alignment required
   */
  constructor(op: string, addr: bigint, alignment: number) {
    super("Misaligned", op, `address ${hex(addr)} is not aligned to ${alignment} bytes`);
    this.addr = addr;
    this.alignment = alignment;
  }
}

/**
 * A region has no host mapping to hand out (vm-memory's `HostAddressNotAvailable`).
 *
 * @example
 * ```ts
 * import { HostAddressNotAvailableError } from "../../mod.ts";
 * console.log(new HostAddressNotAvailableError("getHostAddress").kind); // "HostAddressNotAvailable"
 * ```
 */
export class HostAddressNotAvailableError extends GuestMemoryError {
  /** Builds the error. */
  constructor(op: string) {
    super("HostAddressNotAvailable", op, "host virtual address not available");
  }
}

/**
 * An I/O source or sink failed (vm-memory's `IOError`); the original error is the `cause`.
 *
 * @example
 * ```ts
 * import { GuestIOError } from "../../mod.ts";
 * const e = new GuestIOError("readVolatileFrom", new Error("EOF"));
 * console.log(e.kind); // "IOError"
 * ```
 */
export class GuestIOError extends GuestMemoryError {
  /**
   * Builds the error.
   * @param cause the underlying error
   */
  constructor(op: string, cause: unknown) {
    super("IOError", op, `I/O failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
