/**
 * Paths handed to C are taken whole or refused: a NUL inside a path (as a string, or percent-escaped
 * in a URL) would make C read a shorter path, so `secret%00.img` would map `secret`. Malformed
 * URLs are typed errors too, not bare `URIError`s.
 * @module
 */

import assert from "node:assert/strict";
import { FileOffset, MmapRegion, PROT_READ, ReceivedFd } from "../mod.ts";
import { refused } from "./fixtures/guest_assert.ts";

const PAGE = 4096;

Deno.test("file paths: a NUL percent-escaped in a file: URL is refused, and the file before it is not mapped", () => {
  const dir = Deno.makeTempDirSync({ prefix: "gmem-paths-" });
  try {
    Deno.writeFileSync(`${dir}/secret`, new Uint8Array(PAGE).fill(0x5e));
    const url = new URL(`file://${dir}/secret%00.img`);
    const e = refused(() => MmapRegion.fromFile(FileOffset.fromPath(url), PAGE, { prot: PROT_READ }));
    assert.deepEqual([e.op, e.argument, e.value], ["FileOffset.fromPath", "path", `${dir}/secret\0.img`]);
    assert.equal(
      e.message,
      `FileOffset.fromPath: path must not contain a NUL character (found at index ${dir.length + 7}): ` +
        `C would read only ${JSON.stringify(`${dir}/secret`)}`,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("file paths: a NUL inside a string path is refused with the same typed error", () => {
  const e = refused(() => FileOffset.fromPath("/tmp/secret\0.img"));
  assert.deepEqual([e.op, e.argument, e.value], ["FileOffset.fromPath", "path", "/tmp/secret\0.img"]);
  assert.equal(
    e.message,
    'FileOffset.fromPath: path must not contain a NUL character (found at index 11): C would read only "/tmp/secret"',
  );
  assert.equal(refused(() => FileOffset.fromPath("")).message, "FileOffset.fromPath: path must not be empty");
});

Deno.test("file paths: malformed file: URLs are InvalidArgument, not URIError", () => {
  const cases: Array<[string, string]> = [
    ["file:///tmp/bad%E0%A4%A.img", "path has a malformed percent escape"],
    ["file:///tmp/bad%ZZ", "path has a malformed percent escape"],
    ["file:///tmp/a%2Fb", "path must not contain an escaped '/' (%2F)"],
    ["file://server/share/ram", "path must name a local file, not one on host server"],
    ["http://localhost/ram", "path must be a file: URL"],
  ];
  for (const [href, reason] of cases) {
    const e = refused(() => FileOffset.fromPath(new URL(href)));
    assert.deepEqual([e.op, e.argument, e.message], ["FileOffset.fromPath", "path", `FileOffset.fromPath: ${reason}`]);
  }
});

Deno.test("file paths: a well-formed file: URL with escapes names the decoded path", () => {
  const dir = Deno.makeTempDirSync({ prefix: "gmem-paths-" });
  try {
    Deno.writeFileSync(`${dir}/guest ram`, new Uint8Array(PAGE).fill(3));
    const fo = FileOffset.fromPath(new URL(`file://localhost${dir}/guest%20ram`));
    assert.deepEqual(fo.source, { kind: "path", path: `${dir}/guest ram` });
    using r = MmapRegion.fromFile(fo, PAGE, { prot: PROT_READ });
    assert.equal(r.unsafeBytes(0, 1)[0], 3);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("file paths: a Unix socket path with a NUL is refused before connecting", () => {
  const e = refused(() => ReceivedFd.receive("/run/vmm/ram.sock\0other", 100));
  assert.deepEqual([e.op, e.argument], ["ReceivedFd.receive", "path"]);
  assert.match(e.message, /^ReceivedFd\.receive: path must not contain a NUL character \(found at index 17\)/);
});
