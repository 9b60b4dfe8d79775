// Every error kind has its own class: a caller catches any failure with instanceof and reads its
// fields, and switches on `kind` without meeting a kind no class stands for.
import assert from "node:assert/strict";
import {
  BufferEscapedError,
  GuestAddressOverflowError,
  GuestIOError,
  GuestMemoryError,
  type GuestMemoryErrorKind,
  GuestMemoryMmap,
  GuestRegionMmap,
  HostAddressNotAvailableError,
  InvalidArgumentError,
  InvalidBackendAddressError,
  InvalidGuestAddressError,
  InvalidGuestRegionError,
  InvalidPointerError,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MapFixedError,
  MappingPastEofError,
  MemoryRegionOverlapError,
  MisalignedError,
  MmapRegionBuilder,
  NativeLibraryError,
  NoAccessError,
  NoMemoryRegionError,
  OutOfBoundsError,
  PartialBufferError,
  ReadOnlyError,
  RegionClosedError,
  SyscallError,
  UnsortedMemoryRegionsError,
} from "../mod.ts";
import {
  CannotResolveError,
  FragmentedError,
  IommuError,
  IommuMisconfiguredError,
  SliceRevokedError,
} from "../iommu.ts";
import { VhostUserError, VirtqueueError } from "../vhost_user.ts";

type ErrorClass = abstract new (...args: never[]) => GuestMemoryError;

// A Record over the kind union: adding a kind without a class fails the type check.
const CLASS_OF_KIND: Record<GuestMemoryErrorKind, ErrorClass> = {
  InvalidGuestAddress: InvalidGuestAddressError,
  InvalidBackendAddress: InvalidBackendAddressError,
  PartialBuffer: PartialBufferError,
  HostAddressNotAvailable: HostAddressNotAvailableError,
  GuestAddressOverflow: GuestAddressOverflowError,
  IOError: GuestIOError,
  InvalidPointer: InvalidPointerError,
  MapFixed: MapFixedError,
  MappingPastEof: MappingPastEofError,
  Syscall: SyscallError,
  OutOfBounds: OutOfBoundsError,
  RegionClosed: RegionClosedError,
  ReadOnly: ReadOnlyError,
  NoAccess: NoAccessError,
  Misaligned: MisalignedError,
  InvalidArgument: InvalidArgumentError,
  BufferEscaped: BufferEscapedError,
  NativeLibrary: NativeLibraryError,
  NoMemoryRegion: NoMemoryRegionError,
  MemoryRegionOverlap: MemoryRegionOverlapError,
  UnsortedMemoryRegions: UnsortedMemoryRegionsError,
  InvalidGuestRegion: InvalidGuestRegionError,
  CannotResolve: CannotResolveError,
  Fragmented: FragmentedError,
  IommuMisconfigured: IommuMisconfiguredError,
  SliceRevoked: SliceRevokedError,
  Virtqueue: VirtqueueError,
  VhostUser: VhostUserError,
};

function thrown<T extends GuestMemoryError>(fn: () => unknown, type: abstract new (...args: never[]) => T): T {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.name, type.name, "the name is the class, so a log line says which failure");
    assert.ok(e instanceof CLASS_OF_KIND[e.kind], `kind ${e.kind} matches its class`);
    return e;
  }
  assert.fail(`expected ${type.name}, but nothing was thrown`);
}

Deno.test("errors: every kind names one distinct class derived from GuestMemoryError", () => {
  const classes = Object.values(CLASS_OF_KIND);
  assert.equal(classes.length, 28);
  assert.equal(new Set(classes).size, 28, "no two kinds share a class");
  for (const c of classes) assert.ok(c.prototype instanceof GuestMemoryError, c.name);
  const e = new CannotResolveError("op", { base: 0x1000n, length: 4 }, "no mapping");
  assert.equal(e.kind, "CannotResolve");
  assert.ok(e instanceof CLASS_OF_KIND[e.kind]);
});

Deno.test("errors: an IOMMU failure's kind is vm-memory's iommu::Error variant; IommuError is the family", () => {
  const range = { base: 0x1000n, length: 0x2000 };
  const cases: [IommuError, GuestMemoryErrorKind, string][] = [
    [new CannotResolveError("IommuMemory.readU32", range, "no mapping"), "CannotResolve", "CannotResolveError"],
    [new FragmentedError("IommuMemory.getSlice", range, 0x1000), "Fragmented", "FragmentedError"],
    [
      new IommuMisconfiguredError("Iommu.translate", "no miss handler"),
      "IommuMisconfigured",
      "IommuMisconfiguredError",
    ],
  ];
  for (const [e, kind, name] of cases) {
    assert.equal(e.kind, kind);
    assert.equal(e.name, name);
    assert.ok(e instanceof IommuError, `${name} is an IommuError`);
    assert.ok(e instanceof CLASS_OF_KIND[e.kind]);
    assert.equal("variant" in e, false, "kind is the one discriminator");
  }
  assert.equal(Object.hasOwn(CLASS_OF_KIND, "IommuError"), false, "the family is not a kind of its own");
});

Deno.test("errors: MAP_FIXED is a MapFixedError carrying the refused flags", () => {
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
  const e = thrown(() => new MmapRegionBuilder(0x1000).withMmapFlags(flags).build(), MapFixedError);
  assert.equal(e.kind, "MapFixed");
  assert.equal(e.flags, flags);
  assert.equal(
    e.message,
    "MmapRegionBuilder.build: MAP_FIXED is not allowed: it would replace whatever is mapped there",
  );
});

Deno.test("errors: a misaligned or unmapped raw pointer is an InvalidPointerError naming the pointer", () => {
  const odd = thrown(() => new MmapRegionBuilder(0x1000).withRawMmapPointer(0x1001).build(), InvalidPointerError);
  assert.equal(odd.kind, "InvalidPointer");
  assert.equal(odd.addr, 0x1001n);
  assert.equal(odd.unmappedAt, undefined);
  // Page 1 lies below every Linux mmap_min_addr, so nothing is ever mapped there.
  const hole = thrown(() => new MmapRegionBuilder(0x2000).withRawMmapPointer(0x1000).build(), InvalidPointerError);
  assert.equal(hole.addr, 0x1000n);
  assert.equal(hole.unmappedAt, 0x1000n);
  assert.equal(hole.message, "MmapRegionBuilder.build: raw pointer range [0x1000, 0x3000) is not mapped at 0x1000");
});

Deno.test("errors: region lists fail with NoMemoryRegion, Unsorted and Overlap classes and their addresses", () => {
  const none = thrown(() => GuestMemoryMmap.fromRanges([]), NoMemoryRegionError);
  assert.equal(none.message, "GuestMemoryMmap.fromRanges: no memory region given");
  const unsorted = thrown(
    () => GuestMemoryMmap.fromRanges([[0x2000, 0x1000], [0, 0x1000]]),
    UnsortedMemoryRegionsError,
  );
  assert.equal(unsorted.previous, 0x2000n);
  assert.equal(unsorted.next, 0n);
  const overlap = thrown(
    () => GuestMemoryMmap.fromRanges([[0, 0x2000], [0x1fff, 0x1000]]),
    MemoryRegionOverlapError,
  );
  assert.deepEqual(overlap.first, { start: 0n, last: 0x1fffn });
  assert.deepEqual(overlap.second, { start: 0x1fffn, last: 0x2ffen });
  using mem = GuestMemoryMmap.fromRanges([[0x1000, 0x1000]]);
  const missing = thrown(() => mem.removeRegion(0x2000, 0x1000), NoMemoryRegionError);
  assert.equal(missing.message, "GuestMemoryMmap.removeRegion: no region starts at 0x2000 with 0x1000 bytes");
});

Deno.test("errors: a region reaching 2^64 is an InvalidGuestRegionError with its base and size", () => {
  const base = (1n << 64n) - 0x1000n;
  const e = thrown(() => GuestRegionMmap.fromRange(base, 0x1000), InvalidGuestRegionError);
  assert.equal(e.kind, "InvalidGuestRegion");
  assert.equal(e.base, base);
  assert.equal(e.size, 0x1000);
  assert.equal(e.op, "GuestRegionMmap.fromRange");
});
