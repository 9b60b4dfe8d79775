/**
 * Runs the operation scripts of `vm_memory_scripts.txt` through gmem's public API and prints what
 * the Rust probe (`vm_memory_probe/`) prints for vm-memory: `script <name>`, then one result line
 * per operation. The scripts file's header describes the operations and the line format.
 * @module
 */

import {
  type AddressLike,
  GuestMemoryError,
  GuestMemoryMmap,
  GuestRegionMmap,
  InvalidArgumentError,
  InvalidGuestAddressError,
  PartialBufferError,
  type Permission,
  Permissions,
} from "../../mod.ts";
import { CannotResolveError, IommuError, IommuMemory, IotlbIommu, type IovaRange } from "../../iommu.ts";

/** One parsed line of the scripts file. */
export interface ScriptLine {
  /** `script` or an operation name. */
  op: string;
  /** The words after it. */
  args: string[];
  /** The whole line before any `=>`, for messages. */
  text: string;
  /** What vm-memory must print (`ok` when the line names no result). */
  vmMemory: string;
  /** What gmem must print: the same as `vmMemory` except on a documented difference. */
  gmem: string;
}

/**
 * The lines of a scripts file, comments and blank lines left out.
 *
 * @example
 * ```ts ignore
 * parseScripts("script a\nnum_regions => 0x0")[1].gmem; // "0x0"
 * ```
 */
export function parseScripts(text: string): ScriptLine[] {
  const out: ScriptLine[] = [];
  for (const raw of text.split("\n")) {
    const [head, expected] = raw.split("=>", 2).map((s) => s.trim());
    if (head === "" || head.startsWith("#")) continue;
    const [op, ...args] = head.split(/\s+/);
    let vmMemory = op === "script" ? head : "ok", gmem = vmMemory;
    if (expected !== undefined) {
      const split = /^vm-memory:\s*(.*?)\s*\|\s*gmem:\s*(.*)$/.exec(expected);
      vmMemory = split ? split[1] : expected;
      gmem = split ? split[2] : expected;
    }
    out.push({ op, args, text: head, vmMemory, gmem });
  }
  return out;
}

function hex(v: number | bigint): string {
  return `0x${v.toString(16)}`;
}

function bytes(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function ranges(list: readonly IovaRange[]): string {
  return `[${list.map((r) => `${hex(r.base)}+${hex(r.length)}`).join(",")}]`;
}

/** vm-memory's error as the probe prints it; a gmem-only error by its kind and argument. */
function error(e: unknown): string {
  if (e instanceof InvalidGuestAddressError) return `InvalidGuestAddress(${hex(e.addr)})`;
  if (e instanceof PartialBufferError) return `PartialBuffer(${hex(e.expected)},${hex(e.completed)})`;
  if (e instanceof CannotResolveError) return `IommuError(CannotResolve(${ranges([e.iovaRange]).slice(1, -1)}))`;
  if (e instanceof IommuError) return `IommuError(${e.kind})`;
  if (e instanceof InvalidArgumentError) return `InvalidArgument(${e.argument})`;
  if (e instanceof GuestMemoryError) return e.kind;
  throw e;
}

/** A number while it is exact, as a caller would pass it; a bigint above 2^53. */
function address(word: string): AddressLike {
  const v = BigInt(word);
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function length(word: string): number {
  return Number(BigInt(word));
}

const PERMS: Record<string, Permission> = {
  no: Permissions.No,
  r: Permissions.Read,
  w: Permissions.Write,
  rw: Permissions.ReadWrite,
};

function perm(word: string): Permission {
  const p = PERMS[word];
  if (p === undefined) throw new Error(`bad permission ${word}`);
  return p;
}

/** One script's memory, IOMMU and IOTLB, like the probe's `State`. */
class State {
  ram = GuestMemoryMmap.empty();
  readonly iommu = new IotlbIommu();
  dev = new IommuMemory(this.ram, this.iommu, { enabled: false });
  viaBackend = false;
  /** Every region mapped so far, closed when the run ends. */
  readonly made: Set<GuestRegionMmap>;

  constructor(made: Set<GuestRegionMmap>) {
    this.made = made;
  }

  /** Swaps the physical memory, keeping the IOMMU, as vm-memory's `with_replaced_backend`. */
  replace(ram: GuestMemoryMmap): void {
    for (const r of ram.regions()) this.made.add(r);
    this.ram = ram;
    this.dev = this.dev.withReplacedBackend(ram);
  }
}

/** Runs one operation and returns its line. */
function run(s: State, op: string, a: string[]): string {
  const mem = s.viaBackend ? s.ram : s.dev;
  const fill = (n: number, byte: string) => new Uint8Array(n).fill(Number(BigInt(byte)));
  switch (op) {
    case "via":
      s.viaBackend = a[0] === "backend";
      return "ok";
    case "memory": {
      const pairs: Array<[AddressLike, number]> = [];
      for (let i = 0; i < a.length; i += 2) pairs.push([address(a[i]), length(a[i + 1])]);
      s.replace(pairs.length === 0 ? GuestMemoryMmap.empty() : GuestMemoryMmap.fromRanges(pairs));
      return "ok";
    }
    case "insert_region": {
      const r = GuestRegionMmap.fromRange(address(a[0]), length(a[1]));
      try {
        s.replace(s.ram.insertRegion(r));
      } catch (e) {
        r.close();
        throw e;
      }
      return "ok";
    }
    case "remove_region":
      s.replace(s.ram.removeRegion(address(a[0]), length(a[1]))[0]);
      return "ok";
    case "iommu":
      s.dev.iommuEnabled = a[0] === "on";
      return "ok";
    case "map":
      s.iommu.iotlb.setMapping(address(a[0]), address(a[1]), length(a[2]), perm(a[3]));
      return "ok";
    case "unmap":
      s.iommu.iotlb.invalidate(address(a[0]), length(a[1]));
      return "ok";
    case "lookup": {
      const r = s.iommu.iotlb.lookup(address(a[0]), length(a[1]), perm(a[2]));
      return r.ok ? `ok ${ranges(r.ranges)}` : `fail misses ${ranges(r.misses)} access_fails ${ranges(r.accessFails)}`;
    }
    case "num_regions":
      return hex(s.ram.numRegions);
    case "last_addr":
      return hex(s.ram.lastAddr());
    case "find_region": {
      const r = s.ram.findRegion(address(a[0]));
      return r === undefined ? "none" : hex(r.startAddr);
    }
    case "address_in_range":
      return String(s.ram.addressInRange(address(a[0])));
    case "check_address": {
      const r = s.ram.checkAddress(address(a[0]));
      return r === undefined ? "none" : hex(r);
    }
    case "checked_offset": {
      const r = s.ram.checkedOffset(address(a[0]), address(a[1]));
      return r === undefined ? "none" : hex(r);
    }
    case "get_slice":
      return hex(s.ram.getSlice(address(a[0]), length(a[1])).len);
    case "get_host_address":
      s.ram.getHostAddress(address(a[0]));
      return "ok";
    case "check_range":
      return String(mem.checkRange(address(a[0]), length(a[1]), perm(a[2])));
    case "get_slices": {
      const r = mem.getSlicesResult(address(a[0]), length(a[1]), perm(a[2]));
      const lens = `[${r.slices.map((x) => hex(x.len)).join(",")}]`;
      return r.error === undefined ? lens : `${lens} ${error(r.error)}`;
    }
    case "write":
      return hex(mem.write(fill(length(a[1]), a[2]), address(a[0])));
    case "read": {
      const buf = new Uint8Array(length(a[1]));
      const n = mem.read(buf, address(a[0]));
      return n === 0 ? hex(0) : `${hex(n)} ${bytes(buf.subarray(0, n))}`;
    }
    case "write_slice":
      mem.writeSlice(fill(length(a[1]), a[2]), address(a[0]));
      return "ok";
    case "read_slice": {
      const buf = new Uint8Array(length(a[1]));
      mem.readSlice(buf, address(a[0]));
      return buf.length === 0 ? "ok" : `ok ${bytes(buf)}`;
    }
    case "read_u64":
      return hex(mem.readU64(address(a[0])));
    case "load_u32":
      return hex(mem.loadU32(address(a[0])));
    case "load_u64":
      return hex(mem.loadU64(address(a[0])));
    case "store_u32":
      mem.storeU32(address(a[0]), length(a[1]));
      return "ok";
    case "store_u64":
      mem.storeU64(address(a[0]), BigInt(a[1]));
      return "ok";
    case "read_volatile_from": {
      const n = length(a[1]);
      return hex(mem.readVolatileFrom(address(a[0]), new Uint8Array(n).fill(0xee), n));
    }
    case "write_volatile_to": {
      const n = length(a[1]);
      return hex(mem.writeVolatileTo(address(a[0]), new Uint8Array(n), n));
    }
  }
  throw new Error(`unknown operation ${op}`);
}

/**
 * The output lines of `lines` run through gmem: `script <name>` lines as they are, and each
 * operation's result (`err <error>` when it throws a library error). Every region the scripts map
 * is closed before returning.
 *
 * @example
 * ```ts ignore
 * runScripts(parseScripts("script a\nmemory\nnum_regions")); // ["script a", "ok", "0x0"]
 * ```
 */
export function runScripts(lines: readonly ScriptLine[]): string[] {
  const made = new Set<GuestRegionMmap>();
  const out: string[] = [];
  let state = new State(made);
  try {
    for (const { op, args, text } of lines) {
      if (op === "script") {
        state = new State(made);
        out.push(text);
        continue;
      }
      try {
        out.push(run(state, op, args));
      } catch (e) {
        out.push(`err ${error(e)}`);
      }
    }
  } finally {
    for (const r of made) r.close();
  }
  return out;
}
