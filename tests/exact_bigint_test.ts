import assert from "node:assert/strict";
import { bigIntOf } from "../src/iommu/exact_bigint.ts";
import { Iotlb, type IotlbLookup } from "../src/iommu/iotlb.ts";
import { Permissions } from "../src/core/permissions.ts";

const TWO_52 = 2 ** 52;
const TWO_53 = 2 ** 53;

Deno.test("exact bigint: bigIntOf gives every safe integer's exact value, on both sides of 2^52", () => {
  const values = [0, 1, 7, 0x1000, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 12345, TWO_52 - 2, TWO_52 - 1];
  values.push(TWO_52, TWO_52 + 1, TWO_52 + 3, TWO_53 - 2, TWO_53 - 1);
  for (const v of values) assert.equal(bigIntOf(v), BigInt(v), `bigIntOf(${v})`);
  assert.equal(bigIntOf(TWO_52 - 1), 4503599627370495n);
  assert.equal(bigIntOf(TWO_52 + 1), 4503599627370497n);
  assert.equal(bigIntOf(TWO_53 - 1), 9007199254740991n);
  assert.equal(bigIntOf(-0), 0n);
});

function firstBase(r: IotlbLookup): bigint {
  assert.ok(r.ok, "expected a hit");
  assert.equal(r.ranges.length, 1);
  return r.ranges[0].base;
}

Deno.test("iotlb: lookup hits answer exact targets just below and above 2^52 and up to 2^53", () => {
  const tlb = new Iotlb();
  const { Read } = Permissions;
  // IOVA page 0x10000 → targets just under 2^52, across it, and at the top of the number range.
  tlb.setMapping(0x10000, TWO_52 - 0x800, 0x1000, Read);
  tlb.setMapping(0x20000, TWO_53 - 0x1000, 0x1000, Read);
  for (let pass = 0; pass < 2; pass++) { // the second pass answers from translateFast's cache
    assert.equal(firstBase(tlb.lookup(0x10000, 8, Read)), 2n ** 52n - 0x800n);
    assert.equal(firstBase(tlb.lookup(0x107ff, 1, Read)), 2n ** 52n - 1n);
    assert.equal(firstBase(tlb.lookup(0x10800, 8, Read)), 2n ** 52n);
    assert.equal(firstBase(tlb.lookup(0x10801, 8, Read)), 2n ** 52n + 1n);
    assert.equal(firstBase(tlb.lookup(0x20fff, 1, Read)), 2n ** 53n - 1n);
  }
  const kept = [tlb.lookup(0x10000, 8, Read), tlb.lookup(0x10008, 8, Read)];
  assert.deepEqual(kept, [
    { ok: true, ranges: [{ base: 2n ** 52n - 0x800n, length: 8 }] },
    { ok: true, ranges: [{ base: 2n ** 52n - 0x7f8n, length: 8 }] },
  ]);
  assert.equal(tlb.counters.hits, 12);
});

Deno.test("iotlb: a lookup by number whose target lies past 2^53 answers the exact bigint target", () => {
  const tlb = new Iotlb();
  const { Read } = Permissions;
  tlb.setMapping(0x30000, 2n ** 53n + 0x1001n, 0x1000, Read);
  for (let pass = 0; pass < 2; pass++) {
    assert.deepEqual(tlb.lookup(0x30008, 8, Read), { ok: true, ranges: [{ base: 2n ** 53n + 0x1009n, length: 8 }] });
  }
  assert.equal(tlb.translateFast(0x30008, 8, Read), -1);
  assert.equal(tlb.counters.hits, 2);
});
