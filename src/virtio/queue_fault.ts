/**
 * Turning a failed guest-memory access of a virtqueue into a {@link VirtqueueError}: an IOMMU that
 * cannot translate yet is retryable (a miss may still be asked for); anything else outside guest
 * memory is the guest's fault.
 * @module
 */

import { type AddressLike, GuestMemoryError, type Permission } from "../../mod.ts";
import { CannotResolveError } from "../../iommu.ts";
import { hex } from "../core/format.ts";
import { VirtqueueError } from "./virtqueue_errors.ts";

/**
 * The error for an access of `length` bytes at `addr` that threw `e`: `Translation` (retryable,
 * `where` naming the range the IOMMU could not translate) for an IOMMU that could not translate,
 * `Memory` for any other guest-memory failure; a
 * `VirtqueueError` is returned as it is, and anything else (a bug) is rethrown.
 *
 * @example
 * ```ts ignore
 * try { mem.readU16(addr); } catch (e) { throw accessFault(e, "SplitQueue.pop", 0, addr, 2, Permissions.Read); }
 * ```
 */
export function accessFault(
  e: unknown,
  op: string,
  queue: number,
  addr: AddressLike,
  length: number,
  access: Permission,
): VirtqueueError {
  if (e instanceof VirtqueueError) return e;
  const where = { addr: BigInt(addr), length, access };
  const what = `${access === 2 ? "write" : "read"} of ${length} bytes at ${hex(where.addr)}`;
  if (e instanceof CannotResolveError) {
    // What to ask for is the part that failed (a later page of a buffer whose first page is mapped).
    const failing = { addr: e.iovaRange.base, length: e.iovaRange.length, access };
    return new VirtqueueError(
      op,
      queue,
      "Translation",
      `the IOMMU does not translate the ${what}: ${e.reason}`,
      failing,
      {
        cause: e,
        retryable: true,
      },
    );
  }
  if (e instanceof GuestMemoryError) {
    return new VirtqueueError(op, queue, "Memory", `the ${what} is outside guest memory: ${e.message}`, where, {
      cause: e,
    });
  }
  throw e;
}
