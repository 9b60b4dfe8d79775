/**
 * Interop with a real VMM: QEMU (Debian's qemu-system-x86, installed by .ci/run when missing) runs
 * with its guest RAM in a shared memory file (`memory-backend-file,share=on`) and its CPU stopped
 * (`-S`). QEMU's `loader` device puts known bytes at guest physical addresses; this library (and the
 * gmem CLI) reads them from the file, writes other bytes, and QEMU's monitor (QMP
 * `human-monitor-command` `xp`) must see them.
 *
 * Skips, saying why, only when QEMU is not installed or cannot start here.
 * @module
 */

import assert from "node:assert/strict";
import { FileOffset, GuestMemoryMmap } from "../mod.ts";

const QEMU = "qemu-system-x86_64";
const RAM = 64 * 2 ** 20;
const CLI = new URL("../src/tools/gmem.ts", import.meta.url).pathname;

/** QEMU itself failed: not installed, or exited before its monitor came up. The only reason to skip. */
class QemuDidNotStart extends Error {}

/** A running QEMU with its RAM file and a QMP connection (over TCP on 127.0.0.1). */
class Qemu implements AsyncDisposable {
  readonly dir: string;
  readonly ramPath: string;
  readonly #child: Deno.ChildProcess;
  readonly #stderr: Promise<string>;
  readonly #port: number;
  #conn: Deno.Conn | undefined;
  #buffered = "";
  #events: string[] = [];
  #exited = false;

  private constructor(dir: string, child: Deno.ChildProcess, port: number) {
    this.dir = dir;
    this.#port = port;
    this.ramPath = `${dir}/ram`;
    this.#child = child;
    this.#stderr = new Response(child.stderr).text();
    child.status.then(() => (this.#exited = true));
  }

  /** Starts QEMU with `loaders` (`addr=…,data=…,data-len=…`) and connects to QMP. */
  static async start(loaders: string[], ram = RAM): Promise<Qemu> {
    const dir = await Deno.makeTempDir({ prefix: "gmem-qemu-" });
    const port = freePort();
    const args = [
      "-machine",
      "pc,memory-backend=ram",
      "-object",
      `memory-backend-file,id=ram,size=${ram},mem-path=${dir}/ram,share=on`,
      "-m",
      `${ram / 2 ** 20}M`,
      "-S",
      "-accel",
      "tcg",
      "-display",
      "none",
      "-nodefaults",
      "-qmp",
      `tcp:127.0.0.1:${port},server=on,wait=off`,
      ...loaders.flatMap((l) => ["-device", `loader,${l}`]),
    ];
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(QEMU, { args, stdin: "null", stdout: "null", stderr: "piped" }).spawn();
    } catch (e) {
      await Deno.remove(dir, { recursive: true });
      throw e instanceof Deno.errors.NotFound ? new QemuDidNotStart(`${QEMU} is not installed`) : e;
    }
    const q = new Qemu(dir, child, port);
    try {
      await q.#connect();
    } catch (e) {
      await q[Symbol.asyncDispose]();
      throw e;
    }
    return q;
  }

  async #connect(): Promise<void> {
    // Generous: QEMU starts in about a second, but a loaded 2-core machine can take far longer.
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (this.#exited) {
        throw new QemuDidNotStart(`${QEMU} exited: ${(await this.#stderr).trim().split("\n")[0]}`);
      }
      try {
        this.#conn = await Deno.connect({ hostname: "127.0.0.1", port: this.#port });
        break;
      } catch (e) {
        if (!(e instanceof Deno.errors.ConnectionRefused)) throw e;
        if (Date.now() > deadline) throw new Error(`QMP on port ${this.#port} did not come up in 60 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const greeting = await this.#message();
    assert.ok("QMP" in greeting, JSON.stringify(greeting));
    await this.execute("qmp_capabilities");
  }

  async #message(): Promise<Record<string, unknown>> {
    const buf = new Uint8Array(65536);
    for (;;) {
      const nl = this.#buffered.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buffered.slice(0, nl);
        this.#buffered = this.#buffered.slice(nl + 1);
        if (line.trim() !== "") return JSON.parse(line);
        continue;
      }
      const n = await this.#conn!.read(buf);
      if (n === null) throw new Error("QMP connection closed");
      this.#buffered += new TextDecoder().decode(buf.subarray(0, n));
    }
  }

  /** Runs a QMP command and returns its `return` value (events that arrive meanwhile are kept). */
  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const text = JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args });
    await this.#conn!.write(new TextEncoder().encode(`${text}\n`));
    for (;;) {
      const m = await this.#message();
      if ("event" in m) {
        this.#events.push(String(m.event));
        continue;
      }
      if ("error" in m) throw new Error(`QMP ${command}: ${JSON.stringify(m.error)}`);
      return m.return;
    }
  }

  /** Waits for a QMP event (or finds it among those already seen). */
  async event(name: string): Promise<void> {
    const i = this.#events.indexOf(name);
    if (i >= 0) {
      this.#events.splice(i, 1);
      return;
    }
    for (;;) {
      const m = await this.#message();
      if (m.event === name) return;
      if ("event" in m) this.#events.push(String(m.event));
    }
  }

  /** QEMU's own view of guest physical memory: `xp /COUNTxb ADDR`, as numbers. */
  async physBytes(addr: number, count: number): Promise<number[]> {
    const out = String(
      await this.execute("human-monitor-command", { "command-line": `xp /${count}xb 0x${addr.toString(16)}` }),
    );
    return out.split("\n").flatMap((line) => {
      const colon = line.indexOf(":");
      return colon < 0 ? [] : (line.slice(colon + 1).match(/0x[0-9a-f]+/g) ?? []).map((h) => parseInt(h, 16));
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      if (this.#conn !== undefined && !this.#exited) {
        await Promise.race([this.execute("quit").catch(() => {}), new Promise((r) => setTimeout(r, 2000))]);
      }
    } finally {
      try {
        this.#conn?.close();
      } catch { /* already closed */ }
      if (!this.#exited) {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* exited meanwhile */ }
      }
      await this.#child.status;
      await this.#stderr;
      await Deno.remove(this.dir, { recursive: true });
    }
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

/** Why the tests cannot run here, or undefined when QEMU is installed and starts. */
async function unavailable(): Promise<string | undefined> {
  try {
    await using _q = await Qemu.start([], 16 * 2 ** 20);
    return undefined;
  } catch (e) {
    // Anything else (a permission, a bug in this file) must fail loudly, not skip.
    if (!(e instanceof QemuDidNotStart)) throw e;
    return `${e.message} (.ci/run installs Debian's qemu-system-x86)`;
  }
}

const skip = await unavailable();
if (skip !== undefined) console.log(`qemu interop tests skipped: ${skip}`);

async function gmem(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-all", CLI, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "qemu interop: loader bytes read back through GuestMemoryMmap, library writes show in QEMU's xp",
  ignore: skip !== undefined,
  async fn() {
    await using q = await Qemu.start([
      "addr=0x100000,data=0x1122334455667788,data-len=8",
      "addr=0x300000,data=0xcafef00d,data-len=4",
    ]);
    assert.deepEqual(await q.execute("query-status"), { status: "prelaunch", singlestep: false, running: false });
    using mem = GuestMemoryMmap.fromRangesWithFiles([[0, RAM, FileOffset.fromPath(q.ramPath)]]);
    assert.equal(mem.readU64(0x100000), 0x1122334455667788n);
    assert.equal(mem.readU32(0x300000), 0xcafef00d);
    assert.equal(mem.readU32BE(0x300000), 0x0df0feca);

    mem.writeU32(0x200000, 0xdeadbeef);
    mem.writeSlice(new TextEncoder().encode("gmem->qemu"), 0x200010);
    mem.writeU64BE(RAM - 8, 0x0102030405060708n); // the last bytes of guest RAM
    assert.deepEqual(await q.physBytes(0x200000, 4), [0xef, 0xbe, 0xad, 0xde]);
    assert.deepEqual(await q.physBytes(0x200010, 10), [...new TextEncoder().encode("gmem->qemu")]);
    assert.deepEqual(await q.physBytes(RAM - 8, 8), [1, 2, 3, 4, 5, 6, 7, 8]);
    // And what QEMU shows of the loader's bytes is what the library read.
    assert.deepEqual(await q.physBytes(0x100000, 8), [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
  },
});

Deno.test({
  name: "qemu interop: the gmem CLI hexdumps QEMU's loader bytes and its writes reach QEMU",
  ignore: skip !== undefined,
  async fn() {
    await using q = await Qemu.start(["addr=0x100000,data=0x1122334455667788,data-len=8"]);
    const h = await gmem("--mem", q.ramPath, "hexdump", "0x100000", "8");
    assert.equal(h.code, 0, h.stderr);
    assert.equal(h.stdout, '0x0000000000100000  88 77 66 55 44 33 22 11                           |.wfUD3".|\n');
    const r = await gmem("--mem", q.ramPath, "read", "u64", "0x100000", "--json");
    assert.equal(JSON.parse(r.stdout).value, "0x1122334455667788");
    const w = await gmem("--mem", q.ramPath, "write", "u64", "0x210000", "0x0123456789abcdef", "--be");
    assert.equal(w.stdout, "wrote u64 0x0123456789abcdef at 0x210000 (big-endian)\n");
    assert.deepEqual(await q.physBytes(0x210000, 8), [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
    const f = await gmem("--mem", q.ramPath, "find", "0", "64M", "8877665544332211");
    assert.equal(f.stdout, "0x100000\n");
  },
});

Deno.test({
  name: "qemu interop: a dirty session tells gmem's write from QEMU's reset-time loader write",
  ignore: skip !== undefined,
  async fn() {
    await using q = await Qemu.start(["addr=0x300000,data=0xcafef00d,data-len=4"]);
    // Clobber the loader's bytes before the session starts, so that the reset changes that page.
    assert.equal((await gmem("--mem", q.ramPath, "write", "u32", "0x300000", "0")).code, 0);
    const start = await gmem("--mem", q.ramPath, "dirty", "start");
    assert.equal(start.code, 0, start.stderr);
    assert.equal((await gmem("--mem", q.ramPath, "write", "u8", "0x280004", "0x5a")).code, 0);
    await q.execute("system_reset");
    await q.event("RESET");
    using mem = GuestMemoryMmap.fromRangesWithFiles([[0, RAM, FileOffset.fromPath(q.ramPath)]]);
    assert.equal(mem.readU32(0x300000), 0xcafef00d, "the loader wrote its bytes again on reset");
    const show = await gmem("--mem", q.ramPath, "dirty", "show", "--json");
    assert.equal(show.code, 0, show.stderr);
    assert.deepEqual(JSON.parse(show.stdout).runs, [
      { addr: "0x280000", length: 4096, pages: 1, source: "gmem" },
      { addr: "0x300000", length: 4096, pages: 1, source: "other" },
    ]);
  },
});

Deno.test({
  name: "qemu interop: gmem xp prints exactly the lines QEMU's monitor xp prints for the same /FMT",
  ignore: skip !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "gmem-xp-" });
    try {
      // Every byte value, four times, so each format meets high bits, zero and printable text.
      const data = Uint8Array.from({ length: 1024 }, (_, i) => i & 0xff);
      await Deno.writeFile(`${dir}/bytes`, data);
      await using q = await Qemu.start([`file=${dir}/bytes,addr=0x1000,force-raw=on`]);
      const cases: Array<[string, string]> = [
        ["/5xb", "0x1000"],
        ["/5xw", "0x1000"],
        ["/3xg", "0x1004"],
        ["/3xh", "0x1000"],
        ["/20db", "0x1000"],
        ["/2dg", "0x10f0"],
        ["/6uw", "0x10f0"],
        ["/2ub", "0x10fe"],
        ["/4ow", "0x1000"],
        ["/2og", "0x10f0"],
        ["/3oh", "0x1000"],
        ["/10cb", "0x1000"],
        ["/24c", "0x1020"],
        ["/4cw", "0x1058"],
        ["/9gx", "0x1100"],
      ];
      for (const [fmt, addr] of cases) {
        const theirs = String(await q.execute("human-monitor-command", { "command-line": `xp ${fmt} ${addr}` }))
          .replaceAll("\r", "");
        const ours = await gmem("--mem", q.ramPath, "xp", fmt, addr);
        assert.equal(ours.code, 0, ours.stderr);
        assert.equal(ours.stdout, theirs, `xp ${fmt} ${addr}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
