/**
 * View lifetimes where the runtime tells the library when an ArrayBuffer is collected (Bun's
 * native deallocators): a mapping whose buffer escaped is quarantined at close and unmapped once
 * the escaped buffer is garbage; buffers of a normally closed mapping never unmap anything later.
 * Ignored where the binding cannot see collections or no `gc()` is exposed (Deno without
 * `--v8-flags=--expose-gc`); the quarantine itself is covered everywhere by the crash tests.
 * @module
 */

import assert from "node:assert/strict";
import { hostProtection, MmapRegion, PROT_READ, PROT_WRITE } from "../mod.ts";
import { native } from "../src/ffi/native.ts";

const gc = (globalThis as { gc?: () => void }).gc;
const ignore = !native().collectsViews || gc === undefined;
const RW = PROT_READ | PROT_WRITE;

/** Collects until `done()` holds (a few rounds: a collection may leave a buffer for the next). */
function collectUntil(done: () => boolean): boolean {
  for (let i = 0; i < 20 && !done(); i++) gc!();
  return done();
}

/** Steals the region's buffer inside a function, so no stack slot keeps it alive afterwards. */
function stealAndDrop(r: MmapRegion): number {
  const stolen = r.bytes().buffer.transfer();
  new Uint8Array(stolen)[0] = 7;
  return stolen.byteLength;
}

Deno.test({
  name: "view release: a closed region whose buffer escaped stays quarantined until that buffer is collected",
  ignore,
  fn() {
    let kept: ArrayBuffer | undefined;
    const r = MmapRegion.anonymous(2 * 4096);
    const host = r.hostAddress;
    kept = r.bytes().buffer.transfer();
    r.close();
    assert.equal(r.quarantined, true);
    gc!();
    assert.deepEqual(hostProtection(host), { prot: RW, shared: false }, "quarantined while the buffer lives");
    assert.equal(new Uint8Array(kept)[0], 0, "the escaped buffer reads scrap pages");
    kept = undefined;
    assert.ok(collectUntil(() => hostProtection(host) === undefined), "unmapped once the buffer is garbage");
  },
});

Deno.test({
  name: "view release: buffers of a normally closed region unmap nothing when collected later",
  ignore,
  fn() {
    const a = MmapRegion.anonymous(4096);
    const views = [a.bytes(), a.dataView(), a.unsafeBytes()];
    a.close();
    // The next mapping of the same size usually lands where the old one was.
    using b = MmapRegion.anonymous(4096);
    b.write(new Uint8Array([42]), 0);
    views.length = 0;
    for (let i = 0; i < 5; i++) gc!();
    assert.deepEqual(hostProtection(b.hostAddress), { prot: RW, shared: false });
    assert.equal(b.bytes(0, 1)[0], 42);
  },
});

Deno.test({
  name: "view release: a buffer stolen before close is unmapped with its mapping when both are gone",
  ignore,
  fn() {
    const r = MmapRegion.anonymous(4096);
    const host = r.hostAddress;
    assert.equal(stealAndDrop(r), 4096);
    r.close();
    assert.equal(r.quarantined, true, "close saw the theft");
    assert.ok(collectUntil(() => hostProtection(host) === undefined));
  },
});

Deno.test({
  name: "view release: protect() detaches the old views and the region keeps working after collections",
  ignore,
  fn() {
    using r = MmapRegion.anonymous(4096);
    const old = r.bytes();
    r.protect(PROT_READ);
    assert.equal(old.length, 0);
    for (let i = 0; i < 3; i++) gc!();
    r.protect(RW);
    r.write(new Uint8Array([5]), 10);
    assert.equal(r.bytes(10, 1)[0], 5);
    assert.deepEqual(hostProtection(r.hostAddress), { prot: RW, shared: false });
  },
});
