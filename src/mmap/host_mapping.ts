/**
 * One call into the native helper that maps memory as a {@link MapSpec} says, undoing everything on
 * failure.
 * @module
 */

import { MAP_STEP_SYSCALL, MapOption, MapStep, Req } from "../ffi/binding.ts";
import { native } from "../ffi/native.ts";
import { syscallError } from "../ffi/syscall_error.ts";
import { mapFlagsToString, protToString } from "../core/constants.ts";

/** Everything the native map call needs. Sizes are validated by the caller. */
export interface MapSpec {
  /** Usable bytes. */
  size: number;
  /** `PROT_*` bits. */
  prot: number;
  /** `MAP_*` flags, without `MAP_FIXED`. */
  flags: number;
  /** File descriptor to map, or -1. */
  fd: number;
  /** File offset. */
  offset: bigint;
  /** Alignment of the usable start in bytes (0 for the page size). */
  alignment: number;
  /** `PROT_NONE` bytes before the usable part. */
  guardBefore: number;
  /** `PROT_NONE` bytes after the usable part. */
  guardAfter: number;
  /** `madvise(MADV_HUGEPAGE)`. */
  transparentHugePages: boolean;
  /** `madvise(MADV_DONTDUMP)`. */
  dontDump: boolean;
  /** Create a memfd of `size` bytes and map it (then `fd` and `offset` are ignored). */
  memfd?: { name: string; flags: number };
}

/** What was mapped. */
export interface HostMapping {
  /** Address of the usable part. */
  addr: bigint;
  /** The memfd created for the mapping, or -1. */
  memfd: number;
}

// One request block for every call: the native call is synchronous, so it is never shared, and a
// new typed array per mapping measured as about a quarter of the whole map + unmap cost.
const req = new BigInt64Array(Req.slots);

/**
 * Maps memory; throws a {@link SyscallError} naming the step that failed.
 *
 * @example
 * ```ts
 * import { mapHost } from "./host_mapping.ts";
 * const m = mapHost("demo", {
 *   size: 4096, prot: 3, flags: 0x4022, fd: -1, offset: 0n, alignment: 0,
 *   guardBefore: 0, guardAfter: 0, transparentHugePages: false, dontDump: false,
 * });
 * console.log(m.addr > 0n); // true
 * ```
 */
export function mapHost(op: string, spec: MapSpec): HostMapping {
  const n = native();
  req[Req.size] = BigInt(spec.size);
  req[Req.prot] = BigInt(spec.prot);
  req[Req.flags] = BigInt(spec.flags);
  req[Req.fd] = BigInt(spec.fd);
  req[Req.offset] = spec.offset;
  req[Req.align] = BigInt(spec.alignment);
  req[Req.guardBefore] = BigInt(spec.guardBefore);
  req[Req.guardAfter] = BigInt(spec.guardAfter);
  let options = 0;
  if (spec.memfd) options |= MapOption.memfd;
  if (spec.transparentHugePages) options |= MapOption.madvHugepage;
  if (spec.dontDump) options |= MapOption.madvDontdump;
  req[Req.options] = BigInt(options);
  req[Req.memfdFlags] = BigInt(spec.memfd?.flags ?? 0);
  const name = spec.memfd ? new TextEncoder().encode(spec.memfd.name + "\0") : null;

  const rc = n.map(req, name);
  if (rc !== 0) {
    const step = Number(req[Req.outStep]);
    const syscall = MAP_STEP_SYSCALL[step] ?? "mmap";
    throw syscallError(op, syscall, rc, stepArgs(step, syscall, spec));
  }
  return { addr: BigInt.asUintN(64, req[Req.outAddr]), memfd: Number(req[Req.outFd]) };
}

function stepArgs(step: number, syscall: string, spec: MapSpec): Record<string, string | number | bigint> {
  switch (syscall) {
    case "memfd_create":
      return { name: JSON.stringify(spec.memfd?.name ?? ""), flags: spec.memfd?.flags ?? 0 };
    case "ftruncate":
      return { length: spec.size };
    case "madvise":
      return { length: spec.size, advice: step === MapStep.madviseHugepage ? "MADV_HUGEPAGE" : "MADV_DONTDUMP" };
    default:
      return {
        length: spec.size,
        prot: protToString(spec.prot),
        flags: mapFlagsToString(spec.flags),
        fd: spec.memfd ? "memfd" : String(spec.fd),
        offset: spec.offset,
      };
  }
}
