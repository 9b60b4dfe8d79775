import assert from "node:assert/strict";
import { type DenoRun, runDeno } from "./fixtures/child_process.ts";

const DEMO = new URL("../src/tools/demo.ts", import.meta.url).pathname;
/** The demo task's permissions (deno.json), so the test runs what `deno task demo` runs. */
const PERMISSIONS = ["--allow-ffi", "--allow-read", "--allow-write", "--allow-net=127.0.0.1"];

/** Runs the demo as `deno task demo` does. */
function demo(...args: string[]): Promise<DenoRun> {
  return runDeno(DEMO, PERMISSIONS, args);
}

Deno.test("demo: runs to the end and tells the miss, the refused write, the revoked slice and the dirty pages", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "gmem-demo-test-" });
  try {
    const out = `${dir}/pictures`;
    const r = await demo("--out", out);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, "");
    const lines = r.stdout.split("\n").map((l) => l.trim());
    for (
      const expected of [
        "IOTLB miss at IOVA 0x20002000 answered by the front-end over TCP (1 miss, 1 question asked)",
        "write to the read-only request header refused: CannotResolveError (kind CannotResolve, an IommuError)",
        "IommuMemory.writeU32: cannot translate I/O virtual address range 0x10000000+0x4: no Write permission at 0x10000000+0x4",
        "slice revoked after the invalidation: SliceRevokedError (kind SliceRevoked)",
        "5 dirty pages at GPA 0x11000, 0x345000, 0x789000, 0x100002000, 0x123456000",
        "replay: 7 recorded changes rebuilt 2 entries in a fresh IOTLB, identical to the device's",
        `wrote ${out}/address-space.svg`,
        `wrote ${out}/address-space.html`,
      ]
    ) assert.ok(lines.includes(expected), `missing line: ${expected}\n--- output:\n${r.stdout}`);
    // The steps are numbered 1 to 12, in order.
    assert.deepEqual(
      [...r.stdout.matchAll(/^(\d+)\. /gm)].map((m) => Number(m[1])),
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
    // The data read from the disk image landed in the scattered guest pages, above 4 GiB too.
    assert.match(r.stdout, /GPA 0x123456000 "disk byte 0x103000: block 3 of "/);
    const svg = Deno.readTextFileSync(`${out}/address-space.svg`);
    assert.ok(svg.startsWith("<svg"));
    assert.equal(svg.match(/<g class="band"/g)?.length, 3);
    assert.equal(
      svg.match(/class="entry" data-entry=/g)?.length,
      6,
      "six IOTLB entries while the request is in flight",
    );
    assert.equal(svg.match(/<title>dirty \[/g)?.length, 5, "five dirty pages marked");
    assert.match(Deno.readTextFileSync(`${out}/address-space.html`), /^<!DOCTYPE html>/);
    // Only the picture stays: the disk image was a working file.
    assert.throws(() => Deno.statSync(`${out}/disk.img`), Deno.errors.NotFound);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("demo: --quiet keeps only the key lines", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "gmem-demo-test-" });
  try {
    const r = await demo("--quiet", `--out=${dir}`);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 7, r.stdout);
    assert.equal(
      lines[0],
      "IOTLB miss at IOVA 0x20002000 answered by the front-end over TCP (1 miss, 1 question asked)",
    );
    assert.equal(lines[6], `wrote ${dir}/address-space.html`);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("demo: --help explains the options; a bad argument is one line on stderr with exit status 2", async () => {
  const help = await demo("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^gmem demo: /);
  assert.match(help.stdout, /--out DIR/);
  assert.match(help.stdout, /--quiet/);
  const bad = await demo("--colour");
  assert.equal(bad.code, 2);
  assert.equal(bad.stdout, "");
  assert.equal(bad.stderr, 'demo: unknown argument "--colour" (try --help)\n');
  const noDir = await demo("--out");
  assert.equal(noDir.code, 2);
  assert.equal(noDir.stderr, "demo: --out needs a directory\n");
});
