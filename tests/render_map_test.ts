import assert from "node:assert/strict";
import { AtomicBitmap } from "../src/bitmap/atomic_bitmap.ts";
import { IotlbIommu } from "../src/iommu/iommu.ts";
import { IommuMemory } from "../src/iommu/iommu_memory.ts";
import { Permissions } from "../src/core/permissions.ts";
import { GuestMemoryMmap } from "../src/mmap/guest_memory_mmap.ts";
import { BrokenScale } from "../src/tools/map/scale.ts";
import { renderMap, renderMapHtml } from "../src/tools/render_map.ts";

const { Read, Write, ReadWrite } = Permissions;

function count(svg: string, pattern: RegExp): number {
  return svg.match(new RegExp(pattern.source, "g"))?.length ?? 0;
}

/** The SVG of each band, by its data-space. */
function bands(svg: string): Record<string, string> {
  const out: Record<string, string> = {};
  const parts = svg.split('<g class="band" data-space="').slice(1);
  // A band holds no nested group: it ends at the first </g>.
  for (const p of parts) out[p.slice(0, p.indexOf('"'))] = p.slice(0, p.indexOf("</g>"));
  return out;
}

function assertWellFormed(svg: string): void {
  assert.ok(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), svg.slice(0, 80));
  assert.ok(svg.endsWith("</svg>\n"));
  for (const tag of ["g", "rect", "path", "text", "title"]) {
    const opened = count(svg, new RegExp(`<${tag}[ >]`));
    const closed = count(svg, new RegExp(`</${tag}>`)) + count(svg, new RegExp(`<${tag}\\b[^>]*/>`));
    assert.equal(closed, opened, `<${tag}> opened ${opened} times, closed ${closed}`);
  }
}

/** 64 KiB at 0 and 16 KiB at 1 MiB: a hole of 960 KiB between them. */
function ram(): GuestMemoryMmap {
  return GuestMemoryMmap.fromRanges([[0, 0x10000], [0x100000, 0x4000]], { dirtyPageSize: 4096 });
}

Deno.test("render map: plain memory gives a guest physical band and a host band, one shape per region", () => {
  using mem = ram();
  mem.writeU8(0x1000, 1);
  mem.writeU8(0x100000, 1);
  const svg = renderMap(mem);
  assertWellFormed(svg);
  assert.deepEqual(Object.keys(bands(svg)), ["gpa", "host"]);
  const { gpa, host } = bands(svg);
  assert.equal(count(gpa, /class="region"/), 2);
  assert.equal(count(gpa, /class="hole" data-kind="hole"/), 1);
  assert.equal(count(gpa, /class="dirty"/), 2);
  assert.equal(count(host, /class="mapping"/), 2);
  // The host band cuts out whatever lies between the two mappings, if anything does.
  const [a, b] = mem.regions().map((r) => [r.mmap.hostAddress, r.mmap.hostAddress + BigInt(r.len)]).sort((x, y) =>
    x[0] < y[0] ? -1 : 1
  );
  assert.equal(count(host, /class="hole" data-kind="unrelated"/), a[1] === b[0] ? 0 : 1);
  assert.equal(count(svg, /class="backing"/), 2);
  assert.equal(count(svg, /class="translation/), 0);
  assert.equal(count(svg, /class="entry"/), 0);
  assert.equal(count(svg, /class="legend"/), 1);
  assert.match(svg, /Scale: not linear\. Each drawn piece is as wide as log2 of its size/);
  assert.match(svg, /<text[^>]*>hole<\/text><text[^>]*>960 KiB<\/text>/);
});

Deno.test("render map: through an IOMMU, three bands, one shape and one translation per IOTLB entry, colours by permission", () => {
  using mem = ram();
  const iommu = new IotlbIommu();
  const tlb = iommu.iotlb;
  tlb.setMapping(0x1000_0000, 0x3000, 0x1000, Read);
  tlb.setMapping(0x2000_0000, 0x100000, 0x2000, Write);
  tlb.setMapping(0x2000_2000, 0x8000, 0x1000, Write); // continues in IOVA, not in GPA: its own entry
  tlb.setMapping(0x3000_0000, 0x50000, 0x1000, ReadWrite); // inside the hole: not RAM
  const dev = new IommuMemory(mem, iommu, { bitmap: new AtomicBitmap(2 ** 32), logBy: "iova" });
  dev.writeU32(0x2000_0000, 7);
  const svg = renderMap(dev);
  assertWellFormed(svg);
  const { iova, gpa, host } = bands(svg);
  assert.deepEqual(Object.keys(bands(svg)), ["iova", "gpa", "host"]);
  assert.equal(count(iova, /class="entry"/), 4);
  assert.deepEqual(
    [...iova.matchAll(/class="entry" data-entry="(\d)" data-perm="(\w+)"[^>]*fill="(#\w+)"/g)].map((m) => m.slice(1)),
    [["0", "Read", "#3b78c4"], ["1", "Write", "#e07b20"], ["2", "Write", "#e07b20"], ["3", "ReadWrite", "#3a9a4a"]],
  );
  assert.equal(count(iova, /class="hole" data-kind="unmapped"/), 2);
  assert.equal(count(iova, /class="dirty"/), 1, "logged by IOVA: marked in the IOVA band");
  assert.equal(count(gpa, /class="dirty"/), 0);
  assert.equal(count(svg, /class="translation"/), 3);
  assert.equal(count(svg, /class="translation outside-ram"/), 1);
  assert.equal(count(gpa, /class="target"/), 4);
  assert.equal(count(host, /class="target"/), 3, "the entry outside RAM lands nowhere in the host");
  // The 4 KiB target splits the hole in three pieces, all drawn as hole.
  assert.equal(count(gpa, /class="hole" data-kind="hole"/), 3);
  assert.equal(count(gpa, /class="region"/), 2);
  assert.equal(count(host, /class="mapping"/), 2);
  assert.equal(count(svg, /class="legend"/), 1);
  assert.equal(
    count(svg, /<g class="legend">.*read-write entry.*write-only entry.*read-only entry.*no-access entry/),
    1,
  );
});

Deno.test("render map: an IOMMU without entries still draws its band, saying it is empty", () => {
  using mem = ram();
  const svg = renderMap(new IommuMemory(mem, new IotlbIommu()));
  assertWellFormed(svg);
  const { iova } = bands(svg);
  assert.equal(count(iova, /class="entry"/), 0);
  assert.match(iova, />no IOTLB entries</);
  assert.match(iova, />0 IOTLB entries; translation on; writes logged by IOVA</);
});

Deno.test("render map: the scale gives a 4 KiB piece a visible share next to 4 GiB and cuts the gap between them", () => {
  const s = new BrokenScale([[0n, 0x1000n], [1n << 32n, 2n << 32n]], 0, 1000);
  assert.deepEqual(s.pieces.map((p) => [p.start, p.end, p.covered]), [
    [0n, 0x1000n, true],
    [0x1000n, 1n << 32n, false],
    [1n << 32n, 2n << 32n, true],
  ]);
  // Weights 1 (4 KiB) and 1 + 20/2 (4 GiB) share the 1000 px less one 64 px gap.
  const [small, gap, big] = s.pieces.map((p) => p.x1 - p.x0);
  assert.equal(gap, 64);
  assert.ok(Math.abs(small - 936 / 12) < 1e-9, `${small}`);
  assert.ok(Math.abs(big - (936 * 11) / 12) < 1e-9, `${big}`);
  assert.equal(s.x((1n << 32n) + (1n << 31n)), 78 + 64 + 429);
  assert.equal(s.x(2n << 40n), 1000);
});

Deno.test("render map: the HTML page embeds the picture and the same state as text", () => {
  using mem = ram();
  const iommu = new IotlbIommu();
  iommu.iotlb.setMapping(0x1000, 0x3000, 0x1000, Read);
  const html = renderMapHtml(new IommuMemory(mem, iommu), { title: "a <test> map" });
  assert.ok(html.startsWith("<!DOCTYPE html>"));
  assert.equal(count(html, /<svg /), 1);
  assert.match(html, /<title>a &lt;test&gt; map<\/title>/);
  assert.match(html, /<pre>IommuMemory: translation on, dirty log by IOVA, but no bitmap given/);
  assert.ok(html.includes("0000000000001000-0000000000001fff  -&gt;  0000000000003000-0000000000003fff  4 KiB  Read"));
});
