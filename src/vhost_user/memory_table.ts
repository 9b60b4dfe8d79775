/**
 * A front-end's memory table: its regions of guest RAM, each mapped from the descriptor that came
 * with it, as a `GuestMemoryMmap` by guest physical address. Each region keeps the front-end's own
 * (user) address, so the user addresses vhost-user speaks in (vring addresses without an IOMMU,
 * IOTLB targets with one) become guest physical addresses.
 * @module
 */

import { AtomicBitmap, FileOffset, GuestMemoryError, GuestMemoryMmap, GuestRegionMmap, MmapRegion } from "../../mod.ts";
import { hex } from "../core/format.ts";
import { VhostUserError } from "./vhost_user_errors.ts";
import { native } from "../ffi/native.ts";
import type { MemoryRegionDescription } from "./protocol.ts";

const U64_END = 1n << 64n;
const TWO_53 = 1n << 53n;

/** One mapped region and the addresses it is known by. */
export interface MappedRegion extends MemoryRegionDescription {
  /** The mapping in this process. */
  region: GuestRegionMmap;
}

/** Options of {@link MemoryTable.map}. */
export interface MemoryTableOptions {
  /** Give each region a dirty bitmap of this page size (the vhost-user log's 4096), for inspection. */
  dirtyPageSize?: number;
}

/**
 * The regions of one SET_MEM_TABLE, mapped. Owns the descriptors it was given (closed with it).
 *
 * @example
 * ```ts ignore
 * const table = MemoryTable.map(regions, msg.fds);
 * const gpa = table.userToGuest(vringAddr.desc, 16 * 256);
 * table.close();
 * ```
 */
export class MemoryTable {
  /** The regions by guest physical address. */
  readonly memory: GuestMemoryMmap;
  /** The regions as described, with their mappings, in the order they came. */
  readonly regions: readonly MappedRegion[];
  readonly #fds: readonly number[];
  #closed = false;

  private constructor(memory: GuestMemoryMmap, regions: MappedRegion[], fds: number[]) {
    this.memory = memory;
    this.regions = regions;
    this.#fds = fds;
  }

  /**
   * Maps `regions` from `fds` (one per region, in order). Everything is checked before anything is
   * mapped: the count, sizes from 1 byte to 2^53, ranges that stay below 2^64 in all three address
   * spaces, page-aligned file offsets, no two regions overlapping by guest or by user address.
   * Throws `VhostUserError` (`MemoryTable`, `MissingFd`, `UnexpectedFd`); on any failure every
   * descriptor is closed and nothing stays mapped.
   *
   * @example
   * ```ts ignore
   * const table = MemoryTable.map([{ guestAddr: 0n, size: 1n << 29n, userAddr, mmapOffset: 0n }], [memfd]);
   * ```
   */
  static map(
    regions: readonly MemoryRegionDescription[],
    fds: readonly number[],
    options: MemoryTableOptions = {},
  ): MemoryTable {
    const op = "VhostUserBackend.SET_MEM_TABLE";
    const mapped: MappedRegion[] = [];
    try {
      if (fds.length < regions.length) {
        throw new VhostUserError(op, "MissingFd", `${regions.length} regions came with ${fds.length} descriptors`, 5);
      }
      if (fds.length > regions.length) {
        throw new VhostUserError(
          op,
          "UnexpectedFd",
          `${regions.length} regions came with ${fds.length} descriptors`,
          5,
        );
      }
      check(regions, op);
      for (let i = 0; i < regions.length; i++) {
        const r = regions[i];
        let mmap: MmapRegion;
        try {
          mmap = MmapRegion.fromFile(FileOffset.fromFd(fds[i], r.mmapOffset), Number(r.size));
        } catch (e) {
          if (!(e instanceof GuestMemoryError)) throw e;
          throw new VhostUserError(op, "MemoryTable", `region ${i} cannot be mapped: ${e.message}`, 5, { cause: e });
        }
        const bitmap = options.dirtyPageSize === undefined
          ? undefined
          : new AtomicBitmap(mmap.size, options.dirtyPageSize);
        mapped.push({ ...r, region: new GuestRegionMmap(mmap, r.guestAddr, bitmap) });
      }
      const memory = GuestMemoryMmap.fromRegions(mapped.map((m) => m.region));
      return new MemoryTable(memory, mapped, [...fds]);
    } catch (e) {
      for (const m of mapped) m.region.close();
      for (const fd of fds) native().close(fd);
      throw e;
    }
  }

  /** Whether {@link MemoryTable.close} ran. @example `table.closed` */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The guest physical address of the front-end's user address `uaddr`, checking that
   * `[uaddr, uaddr + length)` lies in one region; throws `VhostUserError` (`MemoryTable`) otherwise.
   *
   * @example
   * ```ts ignore
   * const gpa = table.userToGuest(0x7f1234000000n, 4096);
   * ```
   */
  userToGuest(uaddr: bigint, length: number): bigint {
    for (const r of this.regions) {
      if (uaddr >= r.userAddr && uaddr - r.userAddr + BigInt(length) <= r.size) {
        return r.guestAddr + (uaddr - r.userAddr);
      }
    }
    throw new VhostUserError(
      "MemoryTable.userToGuest",
      "MemoryTable",
      `user address ${hex(uaddr)}+${hex(length)} is not inside one region of the memory table`,
    );
  }

  /**
   * Unmaps every region and closes the descriptors. Slices handed out before throw
   * `RegionClosedError` from then on.
   *
   * @example
   * ```ts ignore
   * table.close();
   * ```
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.memory.close();
    for (const fd of this.#fds) native().close(fd);
  }
}

/** The checks of {@link MemoryTable.map} that need no mapping. */
function check(regions: readonly MemoryRegionDescription[], op: string): void {
  const page = BigInt(native().pageSize);
  regions.forEach((r, i) => {
    const bad = (why: string) => new VhostUserError(op, "MemoryTable", `region ${i} ${why}`, 5);
    if (r.size === 0n || r.size >= TWO_53) throw bad(`has size ${hex(r.size)} (1 byte to 2^53)`);
    if (r.guestAddr + r.size > U64_END) throw bad(`at guest address ${hex(r.guestAddr)} runs past 2^64`);
    if (r.userAddr + r.size > U64_END) throw bad(`at user address ${hex(r.userAddr)} runs past 2^64`);
    if (r.mmapOffset + r.size > 1n << 63n) throw bad(`at file offset ${hex(r.mmapOffset)} runs past 2^63`);
    if (r.mmapOffset % page !== 0n) throw bad(`starts at file offset ${hex(r.mmapOffset)}, not a page boundary`);
  });
  for (let i = 0; i < regions.length; i++) {
    for (let j = i + 1; j < regions.length; j++) {
      const a = regions[i], b = regions[j];
      const overlap = (x: bigint, y: bigint) => x < y + b.size && y < x + a.size;
      if (overlap(a.guestAddr, b.guestAddr)) {
        throw new VhostUserError(
          op,
          "MemoryTable",
          `regions ${i} and ${j} overlap at guest addresses ${hex(a.guestAddr)} and ${hex(b.guestAddr)}`,
          5,
        );
      }
      if (overlap(a.userAddr, b.userAddr)) {
        throw new VhostUserError(
          op,
          "MemoryTable",
          `regions ${i} and ${j} overlap at user addresses ${hex(a.userAddr)} and ${hex(b.userAddr)}`,
          5,
        );
      }
    }
  }
}
