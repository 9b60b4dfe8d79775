/**
 * The guest side of the demo: RAM in two memfds placed like a PC's (below and above 4 GiB), and
 * what its driver does before the device runs: a block read request, a 16 KiB buffer scattered
 * over both regions, a status byte, and the IOMMU mappings that let the device reach them.
 * @module
 */

import {
  AtomicBitmap,
  GuestMemoryMmap,
  GuestRegionMmap,
  MmapRegion,
  type Permission,
  Permissions,
} from "../../../mod.ts";

/** Bytes per page: the unit of IOMMU mappings and dirty tracking here. */
export const PAGE = 0x1000;

/** The RAM layout: 2 GiB at 0, the PCI hole, 1 GiB at 4 GiB. */
export const RAM_LAYOUT: ReadonlyArray<{ name: string; gpa: bigint; size: number }> = [
  { name: "ram-below-4g", gpa: 0n, size: 0x8000_0000 },
  { name: "ram-above-4g", gpa: 0x1_0000_0000n, size: 0x4000_0000 },
];

/** One mapping the driver makes for the device. */
export interface DriverMapping {
  /** What it is for. */
  what: string;
  /** Where the device sees it. */
  iova: number;
  /** Where it is in guest RAM. */
  gpa: bigint;
  /** Bytes. */
  size: number;
  /** What the device may do. */
  perm: Permission;
}

/** The request header: virtio-blk's `struct virtio_blk_outhdr` (type, ioprio, sector). */
export const REQUEST: DriverMapping = {
  what: "request header",
  iova: 0x1000_0000,
  gpa: 0x12_3000n,
  size: PAGE,
  perm: Permissions.Read,
};

/** The data buffer: one IOVA range, four guest pages in both regions (two above 4 GiB). */
export const DATA: readonly DriverMapping[] = [0x34_5000n, 0x1_0000_2000n, 0x78_9000n, 0x1_2345_6000n].map((
  gpa,
  i,
) => ({ what: `data page ${i}`, iova: 0x2000_0000 + i * PAGE, gpa, size: PAGE, perm: Permissions.Write }));

/** The status byte the device writes when done. */
export const STATUS: DriverMapping = {
  what: "status byte",
  iova: 0x3000_0000,
  gpa: 0x1_1000n,
  size: PAGE,
  perm: Permissions.ReadWrite,
};

/** Every mapping of the request, in IOVA order. */
export const MAPPINGS: readonly DriverMapping[] = [REQUEST, ...DATA, STATUS];

/** virtio-blk's request type for a read from the disk. */
export const VIRTIO_BLK_T_IN = 0;
/** The sector the request reads (512-byte sectors). */
export const SECTOR = 0x800n;
/** Bytes the request reads: the whole data buffer. */
export const DATA_SIZE: number = DATA.length * PAGE;

/**
 * Guest RAM: one memfd per region, mapped shared, each with a dirty bitmap of 4 KiB pages.
 *
 * @example
 * ```ts ignore
 * using ram = makeGuestRam();
 * ```
 */
export function makeGuestRam(): GuestMemoryMmap {
  const regions: GuestRegionMmap[] = [];
  try {
    for (const r of RAM_LAYOUT) {
      const mmap = MmapRegion.memfd(r.size, { name: r.name });
      regions.push(new GuestRegionMmap(mmap, r.gpa, new AtomicBitmap(r.size, PAGE)));
    }
    return GuestMemoryMmap.fromRegions(regions);
  } catch (e) {
    for (const r of regions) r.close();
    throw e;
  }
}

/**
 * What the guest driver writes into its own RAM before kicking the device: the request header
 * (read `DATA_SIZE` bytes from `SECTOR`) and a status byte the device must overwrite.
 *
 * @example
 * ```ts ignore
 * writeRequest(ram);
 * ```
 */
export function writeRequest(ram: GuestMemoryMmap): void {
  ram.writeU32(REQUEST.gpa, VIRTIO_BLK_T_IN);
  ram.writeU32(REQUEST.gpa + 4n, 0);
  ram.writeU64(REQUEST.gpa + 8n, SECTOR);
  ram.writeU8(STATUS.gpa, 0xff);
}
