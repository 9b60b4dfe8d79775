/**
 * Struct layouts of the split virtqueue's structures (virtio 1.2, 2.7), for `readObj`/`writeObj`.
 * All fields are little-endian, as in a modern (VERSION_1) device.
 * @module
 */

import { defineLayout, type StructLayout } from "../core/struct_layout.ts";

/**
 * `struct virtq_desc`: a buffer's guest address, length, flags (`DescriptorFlag`) and the index of
 * the next descriptor of the chain; 16 bytes.
 *
 * @example
 * ```ts
 * import { GuestMemoryMmap } from "../../mod.ts";
 * import { VIRTQ_DESC_LAYOUT } from "../../vhost_user.ts";
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
 * mem.writeObj(0, VIRTQ_DESC_LAYOUT, { addr: 0x8000n, len: 512, flags: 1, next: 1 });
 * console.log(mem.readObj(0, VIRTQ_DESC_LAYOUT).next); // 1
 * ```
 */
export const VIRTQ_DESC_LAYOUT: StructLayout<{ addr: bigint; len: number; flags: number; next: number }> = defineLayout(
  "VirtqDesc",
  { addr: [0, "u64"], len: [8, "u32"], flags: [12, "u16"], next: [14, "u16"] },
);

/**
 * The head of `struct virtq_avail` (flags, idx); its ring of u16 descriptor indices follows at 4.
 *
 * @example
 * ```ts
 * import { VIRTQ_AVAIL_HEADER_LAYOUT } from "../../vhost_user.ts";
 * console.log(VIRTQ_AVAIL_HEADER_LAYOUT.size); // 4
 * ```
 */
export const VIRTQ_AVAIL_HEADER_LAYOUT: StructLayout<{ flags: number; idx: number }> = defineLayout(
  "VirtqAvailHeader",
  { flags: [0, "u16"], idx: [2, "u16"] },
);

/**
 * One element of the available ring: the index of a chain's head descriptor (2 bytes).
 *
 * @example
 * ```ts
 * import { VIRTQ_AVAIL_ELEM_LAYOUT } from "../../vhost_user.ts";
 * console.log(VIRTQ_AVAIL_ELEM_LAYOUT.decode(new Uint8Array([7, 0]))); // { head: 7 }
 * ```
 */
export const VIRTQ_AVAIL_ELEM_LAYOUT: StructLayout<{ head: number }> = defineLayout("VirtqAvailElem", {
  head: [0, "u16"],
});

/**
 * The head of `struct virtq_used` (flags, idx); its ring of {@link VIRTQ_USED_ELEM_LAYOUT} follows at 4.
 *
 * @example
 * ```ts
 * import { VIRTQ_USED_HEADER_LAYOUT } from "../../vhost_user.ts";
 * console.log(VIRTQ_USED_HEADER_LAYOUT.size); // 4
 * ```
 */
export const VIRTQ_USED_HEADER_LAYOUT: StructLayout<{ flags: number; idx: number }> = defineLayout(
  "VirtqUsedHeader",
  { flags: [0, "u16"], idx: [2, "u16"] },
);

/**
 * `struct virtq_used_elem`: the head index of a used chain and the bytes written into it; 8 bytes.
 *
 * @example
 * ```ts
 * import { VIRTQ_USED_ELEM_LAYOUT } from "../../vhost_user.ts";
 * console.log(VIRTQ_USED_ELEM_LAYOUT.decode(new Uint8Array([3, 0, 0, 0, 0, 2, 0, 0]))); // { id: 3, len: 512 }
 * ```
 */
export const VIRTQ_USED_ELEM_LAYOUT: StructLayout<{ id: number; len: number }> = defineLayout("VirtqUsedElem", {
  id: [0, "u32"],
  len: [4, "u32"],
});
