/**
 * Crash tests: every risky case runs in a child process (`tests/fixtures/crash_cases.ts`), because
 * a fault on unmapped or protected memory kills the whole process with a signal no test can catch.
 * Each child prints one JSON line of what it observed and exits 0; these tests assert that it did
 * not die of a signal and that the observations are exactly the expected ones. A positive control
 * proves the harness does see a crash when the unsafe thing is done on purpose.
 * @module
 */

import assert from "node:assert/strict";
import { type CaseRun, runCase, survived } from "./fixtures/child_process.ts";

const FIXTURE = new URL("./fixtures/crash_cases.ts", import.meta.url);

/** Runs one fixture case in a fresh Deno process. */
function runCrashCase(name: string): Promise<CaseRun> {
  return runCase(FIXTURE, ["--allow-env=GMEM_NATIVE_LIB"], name);
}

/** Runs the cases in parallel and returns each survivor's report, in order. */
async function reportsOf(...names: string[]): Promise<unknown[]> {
  const runs = await Promise.all(names.map(runCrashCase));
  return runs.map(survived);
}

const TYPE_ERROR = { threw: "TypeError", kind: null };
const READ_ONLY = { threw: "ReadOnlyError", kind: "ReadOnly" };
const NO_ACCESS = { threw: "NoAccessError", kind: "NoAccess" };
const CLOSED = { threw: "RegionClosedError", kind: "RegionClosed" };
const ESCAPED = { threw: "BufferEscapedError", kind: "BufferEscaped" };
const OK = { ok: null };
const PROT_READ = 1;
const PROT_READ_WRITE = 3;
/** What `/proc/self/maps` says about a private read-write mapping (e.g. quarantine scrap pages). */
const PRIVATE_RW = { prot: PROT_READ_WRITE, shared: false };

Deno.test("crash harness control: reading a raw view after munmap kills the child with SIGSEGV", async () => {
  const run = await runCrashCase("control-raw-view-after-munmap");
  assert.equal(run.signal, "SIGSEGV", `stderr: ${run.stderr}`);
  assert.equal(run.code, 139);
  // It got as far as the read, and no further.
  assert.deepEqual(run.lines, [JSON.stringify({ unmapped: true, mapped: null, readingNow: true })]);
});

Deno.test("crash: a Uint8Array view used after close reads undefined or throws TypeError, no SIGSEGV", async () => {
  const [report] = await reportsOf("uint8-view-after-close");
  assert.deepEqual(report, {
    before: 0x41,
    mapped: null,
    closed: true,
    quarantined: false,
    bufferDetached: true,
    length: 0,
    byteLength: 0,
    subLength: 0,
    indexRead: "undefined",
    indexWrite: { ok: "undefined" },
    subIndexRead: "undefined",
    fill: TYPE_ERROR,
    set: TYPE_ERROR,
    at: TYPE_ERROR,
    copyWithin: TYPE_ERROR,
    subarray: TYPE_ERROR,
    slice: TYPE_ERROR,
    reverse: TYPE_ERROR,
    decode: { ok: "" },
  });
});

Deno.test("crash: reading or writing through a DataView after close throws TypeError, no SIGSEGV", async () => {
  const [report] = await reportsOf("dataview-after-close");
  assert.deepEqual(report, {
    before: 0xdeadbeef,
    mapped: null,
    bufferDetached: true,
    byteLength: TYPE_ERROR,
    getUint8: TYPE_ERROR,
    getUint32: TYPE_ERROR,
    getBigUint64: TYPE_ERROR,
    setUint8: TYPE_ERROR,
    setUint32: TYPE_ERROR,
    setFloat64: TYPE_ERROR,
  });
});

Deno.test("crash: Atomics on an Int32Array view after close throw TypeError, no SIGSEGV", async () => {
  const [report] = await reportsOf("atomics-after-close");
  assert.deepEqual(report, {
    before: 5,
    after: 7,
    mapped: null,
    length: 0,
    load: TYPE_ERROR,
    store: TYPE_ERROR,
    add: TYPE_ERROR,
    sub: TYPE_ERROR,
    exchange: TYPE_ERROR,
    compareExchange: TYPE_ERROR,
    and: TYPE_ERROR,
    or: TYPE_ERROR,
    xor: TYPE_ERROR,
    notify: TYPE_ERROR,
  });
});

Deno.test("crash: views escaping a `using` block are detached when it ends, no SIGSEGV", async () => {
  const [report] = await reportsOf("view-escaping-using-scope");
  assert.deepEqual(report, { length: 0, indexRead: "undefined", fill: TYPE_ERROR, getUint8: TYPE_ERROR });
});

Deno.test("crash: writing to a read-only region via write(), bytes() or dataView() throws ReadOnlyError, no SIGSEGV", async () => {
  const [report] = await reportsOf("read-only-region");
  const refused = {
    prot: PROT_READ,
    write: READ_ONLY,
    bytes: READ_ONLY,
    bytesSlice: READ_ONLY,
    dataView: READ_ONLY,
    dataViewSlice: READ_ONLY,
  };
  assert.deepEqual(report, {
    anonymous: { ...refused, kernel: { prot: PROT_READ, shared: false }, read: { ok: [0, 0, 0, 0] } },
    memfd: { ...refused, kernel: { prot: PROT_READ, shared: true }, read: { ok: [1, 2, 3, 4] } },
  });
});

Deno.test("crash: reads and writes on a PROT_NONE region throw NoAccessError, no SIGSEGV", async () => {
  const [report] = await reportsOf("no-access-region");
  assert.deepEqual(report, {
    prot: 0,
    kernel: { prot: 0, shared: false },
    write: NO_ACCESS,
    read: NO_ACCESS,
    bytes: NO_ACCESS,
    dataView: NO_ACCESS,
    unsafeBytes: NO_ACCESS,
  });
});

Deno.test("crash: closing a region whose buffer was stolen (transfer, structuredClone, postMessage) quarantines it: reads 0, writes absorbed", async () => {
  const reports = await reportsOf("stolen-by-transfer", "stolen-by-structured-clone", "stolen-by-post-message");
  const expected = {
    stolenByteLength: 4096,
    viewDetached: true,
    aliasedBeforeClose: 0x5a,
    mappedAfterClose: PRIVATE_RW,
    closed: true,
    quarantined: true,
    readAfterClose: 0,
    dataViewReadAfterClose: 0,
    writesAbsorbed: [0xff, 0xcafe],
    fillAbsorbed: { ok: 0xab },
    closeAgain: OK,
  };
  assert.deepEqual(reports, [expected, expected, expected]);
});

Deno.test("crash: quarantining a stolen memfd buffer cuts it off from the file another mapping still sees", async () => {
  const [report] = await reportsOf("stolen-memfd-quarantine-disconnects-file");
  assert.deepEqual(report, {
    seenByOtherMappingBefore: 0x11,
    mappedBeforeClose: { prot: PROT_READ_WRITE, shared: true },
    mappedAfterClose: PRIVATE_RW,
    quarantined: true,
    readAfterClose: 0,
    stolenReadBack: 0x22,
    seenByOtherMappingAfter: 0x11,
  });
});

Deno.test("crash: protect(PROT_READ) detaches old views (TypeError) and write() throws ReadOnlyError, no SIGSEGV", async () => {
  const [report] = await reportsOf("protect-read-only-revokes-views");
  assert.deepEqual(report, {
    prot: PROT_READ,
    kernel: { prot: PROT_READ, shared: false },
    viewLength: 0,
    viewIndexRead: "undefined",
    viewFill: TYPE_ERROR,
    dataViewSet: TYPE_ERROR,
    dataViewGet: TYPE_ERROR,
    atomicsStore: TYPE_ERROR,
    write: READ_ONLY,
    bytes: READ_ONLY,
    dataView: READ_ONLY,
    read: { ok: 7 },
    noneKernel: { prot: 0, shared: false },
    noneRead: NO_ACCESS,
    noneWrite: NO_ACCESS,
    restoredWrite: OK,
    restoredBytes: { ok: 9 },
    quarantined: false,
  });
});

Deno.test("crash: protect() after the buffer was stolen throws BufferEscapedError and leaves protection unchanged", async () => {
  const [report] = await reportsOf("protect-after-steal");
  assert.deepEqual(report, {
    protectRead: ESCAPED,
    protectNone: ESCAPED,
    protUnchanged: PROT_READ_WRITE,
    kernelUnchanged: PRIVATE_RW,
    stolenWrite: { ok: 0x33 },
    protectSame: OK,
    quarantined: true,
    mappedAfterClose: PRIVATE_RW,
    stolenAfterClose: 0,
  });
});

Deno.test("crash: every method after close throws RegionClosedError and closing twice is harmless", async () => {
  const [report] = await reportsOf("every-method-after-close");
  assert.deepEqual(report, {
    closed: true,
    quarantined: false,
    size: 4096,
    prot: PROT_READ_WRITE,
    closeAgain: OK,
    disposeAgain: OK,
    bytes: CLOSED,
    dataView: CLOSED,
    unsafeBytes: CLOSED,
    read: CLOSED,
    write: CLOSED,
    pointer: CLOSED,
    protect: CLOSED,
    hostAddress: CLOSED,
    fd: CLOSED,
    toStringSaysClosed: true,
  });
});

Deno.test("crash: closing a borrowed region then its owner detaches the borrowed views, no SIGSEGV", async () => {
  const [report] = await reportsOf("borrowed-closed-then-owner-closed");
  assert.deepEqual(report, {
    sharedMemory: true,
    afterBorrowedClose: {
      mapped: PRIVATE_RW,
      owned: false,
      quarantined: false,
      borrowedLength: 0,
      borrowedIndexRead: "undefined",
      borrowedFill: TYPE_ERROR,
      borrowedDataView: TYPE_ERROR,
      borrowedBytes: CLOSED,
      ownerStillMapped: 0x11,
    },
    mappedAfterOwnerClose: null,
    ownerQuarantined: false,
    ownerViewLength: 0,
    ownerIndexRead: "undefined",
    borrowedIndexRead: "undefined",
    borrowedFill: TYPE_ERROR,
  });
});

Deno.test("crash: an open region whose buffer was stolen keeps working with a fresh buffer and is quarantined on close", async () => {
  const [report] = await reportsOf("open-region-keeps-working-after-steal");
  assert.deepEqual(report, {
    read: { ok: 0x5a },
    write: OK,
    stolenSeesWrite: 0x66,
    freshView: { ok: "90,102" },
    protectDown: { threw: "BufferEscapedError", kind: "BufferEscaped" },
    quarantined: true,
    mappedAfterClose: PRIVATE_RW,
    stolenReadAfterClose: 0,
  });
});

Deno.test("crash: closing a borrowed region whose buffer was stolen reports BufferEscaped and leaves the owner mapped", async () => {
  const [report] = await reportsOf("borrowed-stolen-close-reports-escape");
  assert.deepEqual(report, {
    close: { threw: "BufferEscapedError", kind: "BufferEscaped" },
    closed: true,
    quarantined: false,
    ownerSees: 0x33,
    ownerStillMapped: PRIVATE_RW,
    stolenStillWorks: 0x33,
  });
});
