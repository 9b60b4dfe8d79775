/**
 * The device tools as a user runs them (`deno task vhost-user-blk`, `vhost-user-rng`), as child
 * processes: help, one-line usage errors, the start-up line, and the counters printed when they
 * stop, after one front-end with `--once` or on SIGTERM.
 * @module
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { FrontendRequest as R } from "../vhost_user.ts";
import { runDeno } from "./fixtures/child_process.ts";
import { TestFrontend, u64 } from "./fixtures/vhost_frontend.ts";

const BLK = new URL("../src/tools/vhost_user_blk/main.ts", import.meta.url).pathname;
const RNG = new URL("../src/tools/vhost_user_rng/main.ts", import.meta.url).pathname;
const FLAGS = ["--allow-ffi", "--allow-read", "--allow-write", "--allow-env"];

Deno.test("vhost-user tools: --help shows usage and every option, exit 0", async () => {
  const blk = await runDeno(BLK, FLAGS, ["--help"]);
  assert.equal(blk.code, 0);
  assert.match(
    blk.stdout,
    /^vhost-user-blk: a vhost-user block device back-end over a raw image file\n\nUsage: deno task vhost-user-blk --socket PATH --image FILE \[options\]/,
  );
  for (
    const o of ["--image FILE", "--read-only", "--serial ID", "--socket PATH", "--queue-size N", "--once", "--json"]
  ) {
    assert.ok(blk.stdout.includes(`  ${o}`), o);
  }
  const rng = await runDeno(RNG, FLAGS, ["--help"]);
  assert.equal(rng.code, 0);
  assert.match(rng.stdout, /Usage: deno task vhost-user-rng --socket PATH \[--source FILE\] \[options\]/);
});

Deno.test("vhost-user tools: bad usage is one line on stderr and exit 2; an unusable image exit 1", async () => {
  const cases: [string, string[], number, string][] = [
    [BLK, ["--image", "x.img"], 2, "vhost-user-blk: --socket PATH is required"],
    [BLK, ["--socket", "/tmp/x.sock"], 2, "vhost-user-blk: --image FILE is required"],
    [
      BLK,
      ["--socket", "/tmp/x.sock", "--image", "x", "--queue-size", "100"],
      2,
      "vhost-user-blk: --queue-size 100 is not a power of two",
    ],
    [
      BLK,
      ["--socket", "/tmp/x.sock", "--image", "x", "--frobnicate"],
      2,
      "vhost-user-blk: unknown option --frobnicate (see --help)",
    ],
    [RNG, ["--socket"], 2, "vhost-user-rng: --socket needs a value (PATH)"],
  ];
  for (const [tool, args, code, line] of cases) {
    const r = await runDeno(tool, FLAGS, args);
    assert.equal(r.code, code, r.stderr);
    assert.equal(r.stderr, line + "\n");
  }
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/odd.img`, new Uint8Array(1000));
    const r = await runDeno(BLK, FLAGS, ["--socket", `${dir}/s`, "--image", `${dir}/odd.img`]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `vhost-user-blk: ${dir}/odd.img is 1000 bytes, not a positive multiple of 512\n`);
    const missing = await runDeno(BLK, FLAGS, ["--socket", `${dir}/s`, "--image", `${dir}/none.img`]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^vhost-user-blk: openIoFile: open\(path=.*none\.img\) failed: ENOENT/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Starts a tool and waits for its start-up line. */
async function start(
  tool: string,
  args: string[],
): Promise<{ child: Deno.ChildProcess; first: string; rest: Promise<string> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", ...FLAGS, tool, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  const nl = text.indexOf("\n");
  const rest = (async () => {
    let more = text.slice(nl + 1);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return more;
      more += value;
    }
  })();
  return { child, first: text.slice(0, nl), rest };
}

Deno.test("vhost-user-blk tool: serves one front-end with --once, then prints its counters and a JSON line", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/disk.img`, new Uint8Array(1 << 20));
    const sock = `${dir}/blk.sock`;
    const { child, first, rest } = await start(BLK, [
      "--socket",
      sock,
      "--image",
      `${dir}/disk.img`,
      "--once",
      "--json",
    ]);
    assert.match(
      first,
      new RegExp(
        `^vhost-user-blk: serving ${dir}/disk\\.img \\(1 MiB, 2048 sectors, read-write\\) on ${sock} \\(pid \\d+\\)$`,
      ),
    );
    const fe = TestFrontend.connect(sock);
    assert.equal(u64(await fe.ask(R.GetQueueNum)), 1n);
    await fe.close();
    const status = await child.status;
    const out = (await rest).split("\n").filter((l) => l !== "");
    await child.stderr.cancel();
    assert.equal(status.code, 0);
    assert.equal(
      out[0],
      "vhost-user-blk: the front-end disconnected; reads 0, writes 0, flushes 0, getIds 0, unsupported 0, errors 0, bytesRead 0, bytesWritten 0; connections 1, messages 1, rejected 0, kicks 0, calls 0, requests 0, refused 0, iotlbMisses 0, iotlbUpdates 0, iotlbInvalidations 0, iotlbRejected 0",
    );
    const json = JSON.parse(out[1]);
    assert.equal(json.name, "vhost-user-blk");
    assert.equal(json.backend.messages, 1);
    assert.equal(json.device.reads, 0);
    assert.equal(existsSync(sock), false, "the socket file is removed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vhost-user-rng tool: SIGTERM stops it cleanly with its counters", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const sock = `${dir}/rng.sock`;
    const { child, first, rest } = await start(RNG, ["--socket", sock]);
    assert.match(first, /^vhost-user-rng: serving \/dev\/urandom on .*rng\.sock \(pid \d+\)$/);
    child.kill("SIGTERM");
    const status = await child.status;
    const out = (await rest).split("\n").filter((l) => l !== "");
    await child.stderr.cancel();
    assert.equal(status.code, 0);
    assert.match(
      out[0],
      /^vhost-user-rng: stopped by SIGTERM; requests 0, bytes 0, errors 0; connections 0, messages 0,/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
