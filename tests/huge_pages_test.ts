/**
 * hugetlb memory, however it is asked for: it is always reserved at map time (an empty pool is an
 * ENOMEM there, never a SIGBUS at the first touch; that part runs in a child process), its mapping
 * is rounded to the huge page size, and close() unmaps exactly that. A failed unmap is an error
 * and leaves the region open. The tests hold on a host with no free huge pages (the usual case)
 * and on one with some.
 * @module
 */

import assert from "node:assert/strict";
import {
  hostDiagnostics,
  hostProtection,
  MAP_ANONYMOUS,
  MAP_HUGE_1GB,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MmapRegion,
  SyscallError,
} from "../mod.ts";
import { native } from "../src/ffi/native.ts";
import { createRegion, pinRegion } from "../src/mmap/mmap_region.ts";
import { survived } from "./fixtures/child_process.ts";
import { runMappingCase } from "./fixtures/mapping_child.ts";

const PAGE = 4096;
const HUGE = 2 ** 21;

/** Asserts `fn` throws a SyscallError and returns it. */
function syscallFailure(fn: () => unknown): SyscallError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SyscallError, `expected SyscallError, got ${e instanceof Error ? e.stack : String(e)}`);
    return e;
  }
  assert.fail("expected SyscallError, but nothing was thrown");
}

Deno.test("huge pages: however they are asked for, an empty pool is ENOMEM at map time and never SIGBUS on first write", async () => {
  const free = hostDiagnostics().hugePagesFree["2M"];
  const report = survived(await runMappingCase("huge-pages-without-reservation")) as Record<string, unknown>;
  const enomem = { threw: "SyscallError", syscall: "mmap", errnoName: "ENOMEM" };
  if (free === 0) {
    assert.deepEqual(report, {
      anonymous: enomem,
      sharedAnonymous: enomem,
      memfdOption: enomem,
      hugetlbMemfd: enomem,
    });
    return;
  }
  // With free pages each way either maps reserved memory (no NORESERVE left in its flags) or, if
  // another process took the pages first, is refused the same way.
  const mapped = (flags: string) => ({ ok: { flags, pageSize: HUGE, readBack: 0xa5 } });
  const expected: Record<string, string> = {
    anonymous: "PRIVATE|ANONYMOUS|HUGETLB",
    sharedAnonymous: "SHARED|ANONYMOUS|HUGETLB",
    memfdOption: "SHARED",
    hugetlbMemfd: "SHARED",
  };
  for (const [way, flags] of Object.entries(expected)) {
    const got = report[way];
    if (JSON.stringify(got) !== JSON.stringify(enomem)) assert.deepEqual(got, mapped(flags), way);
  }
});

Deno.test("huge pages: MAP_HUGETLB in flags maps whole huge pages (4 KiB asked, 2 MiB mapped) and close() unmaps all of them", () => {
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_HUGETLB;
  if (hostDiagnostics().hugePagesFree["2M"] === 0) {
    // The request the kernel saw is the rounded one (and reserved: no NORESERVE).
    const e = syscallFailure(() => MmapRegion.anonymous(PAGE, { flags }));
    assert.deepEqual([e.op, e.syscall, e.errnoName], ["MmapRegion.anonymous", "mmap", "ENOMEM"]);
    assert.equal(e.args.length, HUGE);
    assert.equal(e.args.flags, "PRIVATE|ANONYMOUS|HUGETLB");
    // Nothing stays mapped: a leak would grow the mappings with the attempts, the runtime's own
    // mappings do not (a warm-up first, then 200 attempts).
    for (let i = 0; i < 10; i++) syscallFailure(() => MmapRegion.anonymous(PAGE, { flags }));
    const before = hostDiagnostics().mappings;
    for (let i = 0; i < 200; i++) syscallFailure(() => MmapRegion.anonymous(PAGE, { flags }));
    const growth = hostDiagnostics().mappings - before;
    assert.ok(growth < 100, `mappings grew by ${growth} over 200 failed attempts`);
  } else {
    const r = MmapRegion.anonymous(PAGE, { flags });
    assert.deepEqual([r.size, r.pageSize, r.isHugetlbfs], [PAGE, HUGE, true]);
    assert.equal(r.bytes().length, PAGE);
    const addr = r.hostAddress;
    assert.deepEqual(hostProtection(addr + BigInt(HUGE - 1)), { prot: 3, shared: false });
    r.close();
    assert.equal(r.closed, true);
    assert.equal(hostProtection(addr), undefined);
    assert.equal(hostProtection(addr + BigInt(HUGE - 1)), undefined);
  }
});

Deno.test("huge pages: the MAP_HUGE_SHIFT bits in flags choose the page size the mapping is rounded to", () => {
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_HUGETLB | MAP_HUGE_1GB;
  if (hostDiagnostics().hugePagesFree["1G"] > 0) {
    using r = MmapRegion.anonymous(PAGE, { flags });
    assert.deepEqual([r.size, r.pageSize], [PAGE, 2 ** 30]);
    return;
  }
  const e = syscallFailure(() => MmapRegion.anonymous(PAGE, { flags }));
  assert.equal(e.syscall, "mmap");
  assert.ok(["ENOMEM", "EINVAL"].includes(e.errnoName), e.errnoName);
  assert.equal(e.args.length, 2 ** 30);
  assert.equal(e.args.flags, "PRIVATE|ANONYMOUS|HUGETLB|HUGE_1GB");
});

Deno.test("huge pages: a region of the host page size keeps its exact size and page size", () => {
  using r = MmapRegion.anonymous(100);
  assert.deepEqual([r.size, r.pageSize], [100, PAGE]);
});

Deno.test("close: a munmap the kernel refuses is a SyscallError, and the region stays open with its memory and memfd", () => {
  // A real memfd mapping, described to the region with a misaligned start (the only way to make
  // munmap fail without huge pages): its unmap is refused with EINVAL.
  const n = native();
  const memfd = n.memfdCreate(new TextEncoder().encode("gmem-unmap-fails\0"), 0, BigInt(PAGE));
  assert.ok(memfd >= 0);
  const fds = hostDiagnostics().openFds;
  const owner = MmapRegion.anonymous(2 * PAGE);
  const addr = owner.hostAddress;
  const r = createRegion({
    addr: addr + 8n,
    size: PAGE - 8,
    mapSize: PAGE - 8,
    pageSize: PAGE,
    prot: 3,
    flags: MAP_PRIVATE | MAP_ANONYMOUS,
    owned: true,
    fileOffset: undefined,
    fileIdentity: undefined,
    hugetlbfs: undefined,
    memfd,
    guardBefore: 0,
    guardAfter: 0,
  });
  r.write(new Uint8Array([7]), 0);
  const view = r.bytes(0, 1);
  const e = syscallFailure(() => r.close());
  assert.deepEqual([e.op, e.syscall, e.errnoName], ["MmapRegion.close", "munmap", "EINVAL"]);
  assert.equal(e.args.addr, addr + 8n);
  assert.equal(e.args.length, BigInt(PAGE - 8));
  assert.equal(r.closed, false, "the region says what the kernel says: still mapped");
  assert.equal(view.length, 0, "the views handed out before were detached all the same");
  assert.deepEqual(hostProtection(addr), { prot: 3, shared: false });
  assert.equal(r.bytes(0, 1)[0], 7, "and it can be used again");
  assert.equal(r.fd, memfd, "the memfd is still the region's");
  assert.equal(hostDiagnostics().openFds, fds);
  assert.equal(syscallFailure(() => r.close()).errnoName, "EINVAL", "closing again says so again");
  // The same when the unmap waited for in-flight I/O: the last release reports it and reopens.
  const pin = pinRegion(r, "test");
  r.close();
  assert.equal(r.closed, true, "closed at once while pinned");
  assert.equal(syscallFailure(() => pin[Symbol.dispose]()).errnoName, "EINVAL");
  assert.equal(r.closed, false);
  assert.equal(r.bytes(0, 1)[0], 7);
  n.close(memfd);
  owner.close();
});
