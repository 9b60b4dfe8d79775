/**
 * The device side of the demo (a vhost-user back-end): its IOTLB, fed by a `VhostIotlbChannel`
 * over the socket to the front-end, an `IotlbIommu` that sends misses there, and the
 * `IommuMemory` every DMA goes through. Writes are dirty-logged by guest physical address (what a
 * vhost-user front-end reads during migration). An `IotlbRecorder` keeps the IOTLB's history.
 * @module
 */

import type { GuestMemoryMmap } from "../../../mod.ts";
import { IommuMemory, Iotlb, IotlbIommu, IotlbRecorder, VhostIotlbChannel } from "../../../iommu.ts";

/** Everything the device holds. */
export interface Device {
  /** Guest memory as the device sees it: I/O virtual addresses, translated. */
  dev: IommuMemory;
  /** The IOMMU with its IOTLB and miss counters. */
  iommu: IotlbIommu;
  /** The vhost IOTLB channel to the front-end. */
  channel: VhostIotlbChannel;
  /** Settles when the channel's stream ends. */
  running: Promise<void>;
  /** The IOTLB's event history. */
  recorder: IotlbRecorder;
}

/**
 * A front-end `uaddr` (its own address of guest RAM) as the guest physical address the IOTLB
 * needs: the region whose host mapping holds it. Outside every region it is left as it is, and
 * accesses there fail as not guest RAM.
 *
 * @example
 * ```ts ignore
 * const gpa = uaddrToGpa(ram, ram.getHostAddress(0x1000)); // 0x1000n
 * ```
 */
export function uaddrToGpa(ram: GuestMemoryMmap, uaddr: bigint): bigint {
  for (const r of ram.regions()) {
    const host = r.mmap.hostAddress;
    if (host <= uaddr && uaddr < host + BigInt(r.len)) return r.startAddr + (uaddr - host);
  }
  return uaddr;
}

/**
 * Builds the device over `ram`, talking to the front-end through `conn`, and starts applying the
 * front-end's messages.
 *
 * @example
 * ```ts ignore
 * const device = startDevice(ram, deviceConn);
 * ```
 */
export function startDevice(ram: GuestMemoryMmap, conn: Deno.Conn): Device {
  const iotlb = new Iotlb();
  const recorder = new IotlbRecorder(64);
  iotlb.record(recorder);
  const channel = new VhostIotlbChannel(conn, iotlb, { toTarget: (uaddr) => uaddrToGpa(ram, uaddr) });
  const iommu = new IotlbIommu(iotlb, { asyncMissHandler: channel.missHandler, timeoutMs: 5000 });
  const dev = new IommuMemory(ram, iommu, { logBy: "gpa" });
  return { dev, iommu, channel, running: channel.run(), recorder };
}
