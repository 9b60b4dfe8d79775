/**
 * `IotlbHit`: the output record of `Iotlb.translateFast`, the entry that answered.
 * @module
 */

/**
 * The IOTLB entry behind an answer of `Iotlb.translateFast`, as numbers: IOVAs `[start, end)`
 * translate to `IOVA + diff` with permissions `perm`. `end` is clipped so that both the IOVAs and
 * their targets stay at or below 2^53 (where numbers are exact), so a caller may cache the window
 * and translate any access inside it by one addition, until the IOTLB's `generation` changes.
 * Reuse one record per caller: `translateFast` overwrites it on every answer and leaves it alone
 * on -1.
 *
 * @example
 * ```ts
 * import { Permissions } from "../../mod.ts";
 * import { Iotlb, IotlbHit } from "../../iommu.ts";
 * const tlb = new Iotlb();
 * tlb.setMapping(0x2000, 0x8000, 0x1000, Permissions.Read);
 * const hit = new IotlbHit();
 * console.log(tlb.translateFast(0x2010, 4, Permissions.Read, hit), hit.start, hit.end, hit.diff); // 32784 8192 12288 24576
 * ```
 */
export class IotlbHit {
  /** First IOVA of the entry. */
  start = 0;
  /** End (exclusive) of what the entry translates exactly: its end, or less near 2^53. */
  end = 0;
  /** Target minus IOVA. */
  diff = 0;
  /** The entry's permission bits. */
  perm = 0;
}
