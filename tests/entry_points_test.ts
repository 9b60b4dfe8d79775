// The public surface, entry point by entry point: exactly these names, so nothing internal leaks
// through a re-export and nothing public disappears unnoticed. Values are checked on the loaded
// module; types (which leave no trace at run time) in the entry file's export clauses.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

interface Surface {
  values: readonly string[];
  types: readonly string[];
}

const SURFACES: Record<string, Surface> = {
  "mod.ts": {
    values: [
      "AtomicBitmap",
      "BitmapSlice",
      "BufferEscapedError",
      "Bytes",
      "FileOffset",
      "GuestAddressOverflowError",
      "GuestIOError",
      "GuestMemoryError",
      "GuestMemoryMmap",
      "GuestRegionMmap",
      "HostAddressNotAvailableError",
      "InvalidArgumentError",
      "InvalidBackendAddressError",
      "InvalidGuestAddressError",
      "InvalidGuestRegionError",
      "InvalidPointerError",
      "MAP_ANONYMOUS",
      "MAP_FIXED",
      "MAP_HUGETLB",
      "MAP_HUGE_1GB",
      "MAP_HUGE_2MB",
      "MAP_NORESERVE",
      "MAP_POPULATE",
      "MAP_PRIVATE",
      "MAP_SHARED",
      "MapFixedError",
      "MappingPastEofError",
      "MemoryRegionOverlapError",
      "MisalignedError",
      "MmapRegion",
      "MmapRegionBuilder",
      "NativeLibraryError",
      "NoAccessError",
      "NoMemoryRegionError",
      "OutOfBoundsError",
      "PROT_EXEC",
      "PROT_NONE",
      "PROT_READ",
      "PROT_WRITE",
      "PartialBufferError",
      "Permissions",
      "ReadOnlyError",
      "ReceivedFd",
      "RegionClosedError",
      "SyscallError",
      "U64_LIMIT",
      "U64_MAX",
      "UnsortedMemoryRegionsError",
      "ViewSeamError",
      "VolatileSlice",
      "describeRegion",
      "hostDiagnostics",
      "hostProtection",
      "mapFlagsToString",
      "protToString",
      "residentBytes",
    ],
    types: [
      "AddressLike",
      "AsyncReader",
      "AsyncWriter",
      "AtomicBitmapJson",
      "AtomicBitmapOptions",
      "Bitmap",
      "DirtyLog",
      "ElementViews",
      "FileIdentity",
      "FileSource",
      "FileSpace",
      "GuestMemory",
      "GuestMemoryBackend",
      "GuestMemoryErrorKind",
      "GuestMemoryJson",
      "GuestMemoryRegion",
      "GuestRange",
      "GuestRegionOptions",
      "GuestRegionPart",
      "GuestSlice",
      "HostDiagnostics",
      "HostProtection",
      "HugePageSize",
      "InspectedRegion",
      "IoSlice",
      "MapOptions",
      "Mapping",
      "PartOwner",
      "Permission",
      "PhysicalMemory",
      "RawPointer",
      "RawPointerView",
      "ReceivedFdStat",
      "RegionInfo",
      "RegionJson",
      "RegionPart",
      "RegionViews",
      "RuntimeFile",
      "SharedBitmap",
      "SharedGuestMemory",
      "SharedGuestRegion",
      "SliceGuard",
      "SlicesResult",
      "ViewLocator",
      "ViewWindow",
      "VolatileIo",
      "VolatileSliceJson",
    ],
  },
  "iommu.ts": {
    values: [
      "CannotResolveError",
      "FragmentedError",
      "IommuError",
      "IommuMemory",
      "IommuMisconfiguredError",
      "Iotlb",
      "IotlbHit",
      "IotlbIommu",
      "IotlbRecorder",
      "MAX_TIMEOUT_MS",
      "SliceRevokedError",
      "TranslationGuard",
      "VHOST_IOTLB_MSG_SIZE",
      "VHOST_USER_HEADER_SIZE",
      "VhostIotlbChannel",
      "VhostIotlbType",
      "VhostUserRequest",
      "decodeVhostIotlbMsg",
      "encodeVhostIotlbMsg",
      "explainRequest",
      "vhostIotlbUpdate",
    ],
    types: [
      "AsyncMissHandler",
      "DirtyLogAddressing",
      "ExplainReason",
      "ExplainTarget",
      "ExplainedFailure",
      "ExplainedFragment",
      "Explanation",
      "GuardLife",
      "Iommu",
      "IommuErrorKind",
      "IommuMemoryJson",
      "IommuMemoryOptions",
      "IotlbCounters",
      "IotlbEntry",
      "IotlbEvent",
      "IotlbEventKind",
      "IotlbFault",
      "IotlbIommuCounters",
      "IotlbIommuOptions",
      "IotlbJson",
      "IotlbLookup",
      "IotlbObserver",
      "IotlbOptions",
      "IotlbRecorderJson",
      "IovaRange",
      "RevocationMode",
      "TranslationGuardOptions",
      "VhostIotlbChannelOptions",
      "VhostIotlbMsg",
      "VhostStream",
    ],
  },
  "vhost_user.ts": {
    values: [
      "AVAIL_F_NO_INTERRUPT",
      "BackendChannel",
      "BackendRequest",
      "DESCRIPTOR_SIZE",
      "DescriptorChain",
      "DescriptorFlag",
      "FLAG_NEED_REPLY",
      "FLAG_REPLY",
      "FdWatcher",
      "FrontendRequest",
      "HEADER_SIZE",
      "MAX_FDS",
      "MAX_MEMORY_REGIONS",
      "MAX_PAYLOAD",
      "MAX_QUEUE_SIZE",
      "MAX_RESOLVE_ROUNDS",
      "MemoryTable",
      "MessageSocket",
      "PROTOCOL_FEATURES_BIT",
      "ProtocolFeature",
      "QueueRunner",
      "Session",
      "SplitQueue",
      "USED_F_NO_NOTIFY",
      "VERSION",
      "VRING_NOFD",
      "VhostUserBackend",
      "VhostUserError",
      "VhostUserServer",
      "VirtioFeature",
      "VirtqueueError",
      "closeIoFile",
      "configPayload",
      "emptyCounters",
      "encodeMessage",
      "featureMask",
      "memoryTablePayload",
      "openIoFile",
      "preadSlices",
      "pwriteSlices",
      "readConfig",
      "readMemoryTable",
      "readSlices",
      "readState",
      "readU64",
      "readVringAddress",
      "requestName",
      "retryTranslations",
      "statePayload",
      "syncData",
      "u64Payload",
      "vringAddressPayload",
    ],
    types: [
      "BackendEvent",
      "ChainOwner",
      "ConfigAccess",
      "IoFile",
      "MappedRegion",
      "MappedRegionInfo",
      "MemoryRegionDescription",
      "MemoryTableOptions",
      "MessageSocketEvents",
      "MissResolver",
      "QueueRunnerHooks",
      "RetryOwner",
      "SessionContext",
      "SplitQueueConfig",
      "VhostUserBackendOptions",
      "VhostUserCounters",
      "VhostUserDevice",
      "VhostUserFault",
      "VhostUserMessage",
      "VhostUserServerOptions",
      "VirtqueueFault",
      "VirtqueueFaultAddress",
      "VringAddress",
    ],
  },
  "tools.ts": {
    values: [
      "renderMap",
      "renderMapHtml",
    ],
    types: [
      "RenderMapOptions",
    ],
  },
};

/** The names an entry file exports as types only (`export type { A }`, `export { type A }`). */
function typeExports(file: string): string[] {
  const text = readFileSync(new URL(`../${file}`, import.meta.url), "utf8").replace(/\/\*[\s\S]*?\*\//g, "");
  const names: string[] = [];
  for (const m of text.matchAll(/export\s+(type\s+)?\{([^}]*)\}/g)) {
    for (const raw of m[2]!.split(",")) {
      const item = raw.trim();
      if (item !== "" && (m[1] !== undefined || item.startsWith("type "))) names.push(item.replace(/^type\s+/, ""));
    }
  }
  return names.sort();
}

for (const [file, surface] of Object.entries(SURFACES)) {
  Deno.test(`entry points: ${file} exports exactly its documented values and types`, async () => {
    const module = await import(`../${file}`);
    assert.deepEqual(Object.keys(module).sort(), [...surface.values].sort());
    assert.deepEqual(typeExports(file), [...surface.types].sort());
  });
}

Deno.test("entry points: no generic helper (hex, union, intersection, allows) is public", async () => {
  for (const file of Object.keys(SURFACES)) {
    const module = await import(`../${file}`);
    for (const name of ["hex", "union", "intersection", "allows", "hasWrite", "toPermission", "describeValue"]) {
      assert.equal(name in module, false, `${file} exports ${name}`);
    }
  }
});

Deno.test("entry points: deno.json maps the four subpaths to the four entry files", () => {
  const config = JSON.parse(readFileSync(new URL("../deno.json", import.meta.url), "utf8"));
  assert.deepEqual(config.exports, {
    ".": "./mod.ts",
    "./iommu": "./iommu.ts",
    "./vhost-user": "./vhost_user.ts",
    "./tools": "./tools.ts",
  });
});
