/**
 * The front-end of the demo (the VMM side of vhost-user): it knows the guest's IOMMU mappings and
 * answers the device's IOTLB misses over a real TCP socket on 127.0.0.1, with the same 44-byte
 * messages vhost-user uses. Its addresses are its own virtual addresses of guest RAM (`uaddr`),
 * as in vhost-user; the device side turns them back into guest physical addresses.
 * @module
 */

import { type GuestMemoryMmap, Permissions } from "../../../mod.ts";
import {
  decodeVhostIotlbMsg,
  encodeVhostIotlbMsg,
  VHOST_IOTLB_MSG_SIZE,
  VHOST_USER_HEADER_SIZE,
  VhostIotlbType,
  vhostIotlbUpdate,
  VhostUserRequest,
} from "../../../iommu.ts";
import { hex } from "../text.ts";
import type { DriverMapping } from "./guest.ts";

const MESSAGE = VHOST_USER_HEADER_SIZE + VHOST_IOTLB_MSG_SIZE;

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
}

/** Reads one message; `null` at the end of the stream or once the socket is closed here. */
async function readMessage(conn: Deno.Conn): Promise<Uint8Array | null> {
  const buf = new Uint8Array(MESSAGE);
  for (let done = 0; done < MESSAGE;) {
    let n: number | null;
    try {
      n = await conn.read(buf.subarray(done));
    } catch {
      return null;
    }
    if (n === null) return null;
    done += n;
  }
  return buf;
}

/**
 * The front-end: a listening socket, its connection to the device, the guest's mappings, and a log
 * of the misses it answered.
 *
 * @example
 * ```ts ignore
 * const { frontEnd, deviceConn } = await FrontEnd.start(ram, MAPPINGS);
 * ```
 */
export class FrontEnd {
  readonly #conn: Deno.Conn;
  readonly #ram: GuestMemoryMmap;
  readonly #mappings: readonly DriverMapping[];
  #serving: Promise<void> | undefined;
  /** What it did, one line per miss answered. */
  readonly answered: string[] = [];
  /** Where it listened. */
  readonly port: number;

  private constructor(conn: Deno.Conn, ram: GuestMemoryMmap, mappings: readonly DriverMapping[], port: number) {
    this.#conn = conn;
    this.#ram = ram;
    this.#mappings = mappings;
    this.port = port;
  }

  /** Listens on 127.0.0.1, connects the device's end, and returns both ends. */
  static async start(
    ram: GuestMemoryMmap,
    mappings: readonly DriverMapping[],
  ): Promise<{ frontEnd: FrontEnd; deviceConn: Deno.Conn }> {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const port = (listener.addr as Deno.NetAddr).port;
      const [deviceConn, frontConn] = await Promise.all([
        Deno.connect({ hostname: "127.0.0.1", port }),
        listener.accept(),
      ]);
      return { frontEnd: new FrontEnd(frontConn, ram, mappings, port), deviceConn };
    } finally {
      listener.close();
    }
  }

  /** The front-end's own address of a guest physical address (what vhost-user calls `uaddr`). */
  uaddrOf(gpa: bigint): bigint {
    return this.#ram.getHostAddress(gpa);
  }

  /** Sends an IOTLB update for a mapping, unasked (front-ends may prefill the device's IOTLB). */
  async push(m: DriverMapping): Promise<void> {
    await writeAll(this.#conn, vhostIotlbUpdate(m.iova, this.uaddrOf(m.gpa), m.size, m.perm));
  }

  /** Sends an IOTLB invalidation (the guest unmapped the range). */
  async invalidate(iova: number, size: number): Promise<void> {
    await writeAll(
      this.#conn,
      encodeVhostIotlbMsg(VhostUserRequest.IotlbMsg, {
        iova: BigInt(iova),
        size: BigInt(size),
        uaddr: 0n,
        perm: Permissions.No,
        type: VhostIotlbType.Invalidate,
      }),
    );
  }

  /** Starts answering misses until the connection closes. */
  serve(): void {
    this.#serving ??= this.#loop();
  }

  async #loop(): Promise<void> {
    for (let bytes = await readMessage(this.#conn); bytes !== null; bytes = await readMessage(this.#conn)) {
      const { request, msg } = decodeVhostIotlbMsg(bytes);
      // Only the back-end's IOTLB request asks anything of a front-end.
      if (request !== VhostUserRequest.BackendIotlbMsg || msg.type !== VhostIotlbType.Miss) continue;
      const m = this.#mappings.find((x) => BigInt(x.iova) <= msg.iova && msg.iova < BigInt(x.iova + x.size));
      if (m === undefined) {
        this.answered.push(`miss at IOVA ${hex(msg.iova)}: the guest has no mapping there, no answer`);
        continue;
      }
      this.answered.push(
        `miss at IOVA ${hex(msg.iova)} -> update IOVA ${hex(m.iova)}+${hex(m.size)} to uaddr ${
          hex(this.uaddrOf(m.gpa))
        } (GPA ${hex(m.gpa)})`,
      );
      await this.push(m);
    }
  }

  /** Closes the connection and waits for the answering loop to end. */
  async close(): Promise<void> {
    try {
      this.#conn.close();
    } catch {
      // Already closed by the other side.
    }
    await this.#serving;
  }
}
