/**
 * The `gmem` command-line tool, run as a child process against real memory files (and a real
 * memfd handed over a Unix socket by a C peer, tests/fixtures/memfd_server.c): exact text output,
 * `--json` shapes, and one-line errors with a non-zero exit for bad input.
 *
 * The memfd peer is compiled with `cc`; without one, its TypeScript twin (memfd_server.ts) runs.
 * @module
 */

import assert from "node:assert/strict";
import { Permissions } from "../mod.ts";
import { Iotlb } from "../iommu.ts";
import { native } from "../src/ffi/native.ts";
import { type DenoRun, runDeno } from "./fixtures/child_process.ts";

const CLI = new URL("../src/tools/gmem.ts", import.meta.url).pathname;

/** Runs the CLI with the narrowest permissions that work for files outside /dev. */
function gmem(...args: string[]): Promise<DenoRun> {
  return runDeno(CLI, ["--allow-ffi", "--allow-read", "--allow-write", "--allow-env"], args);
}

/** Asserts a failure: the exit code, and exactly one stderr line (no stack trace) equal to `message`. */
function assertOneLineError(run: DenoRun, code: number, message: string | RegExp): void {
  assert.equal(run.code, code, `exit code (stderr: ${run.stderr})`);
  const lines = run.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `one stderr line, got: ${run.stderr}`);
  assert.doesNotMatch(run.stderr, /^\s+at /m);
  if (typeof message === "string") assert.equal(lines[0], message);
  else assert.match(lines[0], message);
}

/**
 * A temporary directory with a memory file of `size` bytes, `writes` applied at file offsets. The
 * standard layout used below is `0:0x1000,0x2000:0x1000`: file [0, 0x1000) at GPA 0, a hole at
 * GPA [0x1000, 0x2000), file [0x1000, 0x2000) at GPA 0x2000.
 */
async function withMemFile(
  size: number,
  writes: Array<[number, Uint8Array]>,
  fn: (path: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gmem-cli-" });
  try {
    const path = `${dir}/ram`;
    const data = new Uint8Array(size);
    for (const [off, bytes] of writes) data.set(bytes, off);
    await Deno.writeFile(path, data);
    await fn(path, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const LAYOUT = "0:0x1000,0x2000:0x1000";
const enc = (s: string) => new TextEncoder().encode(s);
const seq = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);

async function fileBytes(path: string, offset: number, length: number): Promise<number[]> {
  return [...(await Deno.readFile(path)).subarray(offset, offset + length)];
}

Deno.test("gmem cli: hexdump shows 16-byte lines with ASCII and -- for every byte of a hole", async () => {
  await withMemFile(0x2000, [[0xff0, enc("Hello, guest RAM")], [0x1000, seq(16)]], async (mem) => {
    const a = await gmem("--mem", mem, "--layout", LAYOUT, "hexdump", "0xff0", "0x28");
    assert.equal(a.code, 0, a.stderr);
    assert.equal(
      a.stdout,
      [
        "0x0000000000000ff0  48 65 6c 6c 6f 2c 20 67  75 65 73 74 20 52 41 4d  |Hello, guest RAM|",
        "0x0000000000001000  -- -- -- -- -- -- -- --  -- -- -- -- -- -- -- --  |                |",
        "0x0000000000001010  -- -- -- -- -- -- -- --                           |        |",
        "",
      ].join("\n"),
    );
    const b = await gmem("-m", mem, "-l", LAYOUT, "hexdump", "0x1ff8", "16");
    assert.equal(
      b.stdout,
      "0x0000000000001ff8  -- -- -- -- -- -- -- --  00 01 02 03 04 05 06 07  |        ........|\n",
    );
  });
});

Deno.test("gmem cli: hexdump --json gives the bytes as hex with -- for holes", async () => {
  await withMemFile(0x2000, [[0x1000, seq(4)]], async (mem) => {
    const r = await gmem("-m", mem, "-l", LAYOUT, "hexdump", "0x1ffe", "4", "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { addr: "0x1ffe", length: 4, hex: "----0001" });
  });
});

Deno.test("gmem cli: read gives little-endian hex by default, big-endian with --be, decimal with --dec", async () => {
  await withMemFile(0x2000, [[0x1000, seq(16)], [0x10, new Uint8Array([0xfe, 0xff])]], async (mem) => {
    const cases: Array<[string[], string]> = [
      [["read", "u32", "0x2000"], "0x03020100"],
      [["read", "u32", "0x2000", "--be"], "0x00010203"],
      [["read", "u32", "0x2000", "--dec"], "50462976"],
      [["read", "u64", "0x2008", "--be"], "0x08090a0b0c0d0e0f"],
      [["read", "u8", "0x2003"], "0x03"],
      [["read", "i16", "0x10", "--dec"], "-2"],
      [["read", "i16", "0x10"], "0xfffe"],
      [["read", "u16", "0x10", "--be", "--dec"], "65279"],
      [["read", "u16", "0xfff"], "error"], // crosses into the hole
    ];
    for (const [args, want] of cases) {
      const r = await gmem("-m", mem, "-l", LAYOUT, ...args);
      if (want === "error") {
        assertOneLineError(
          r,
          1,
          "gmem read: GuestMemoryMmap.readU16: only 1 of 2 bytes at 0xfff could be transferred (the rest is not backed by memory)",
        );
      } else {
        assert.equal(r.stdout, `${want}\n`, `${args.join(" ")}: ${r.stderr}`);
        assert.equal(r.code, 0);
      }
    }
  });
});

Deno.test("gmem cli: read --json names address, type, endianness, hex and decimal value", async () => {
  await withMemFile(0x2000, [[0x1000, seq(16)]], async (mem) => {
    const r = await gmem("-m", mem, "-l", LAYOUT, "read", "i32", "0x2000", "--be", "--json");
    assert.deepEqual(JSON.parse(r.stdout), {
      addr: "0x2000",
      type: "i32",
      endian: "be",
      value: "0x00010203",
      decimal: "66051",
    });
  });
});

Deno.test("gmem cli: write stores the value at the range's file offset, in the requested byte order", async () => {
  await withMemFile(0x2000, [], async (mem) => {
    const a = await gmem("-m", mem, "-l", LAYOUT, "write", "u16", "0x2010", "0xbeef", "--be");
    assert.equal(a.stdout, "wrote u16 0xbeef at 0x2010 (big-endian)\n");
    assert.deepEqual(await fileBytes(mem, 0x1010, 2), [0xbe, 0xef]);
    const b = await gmem("-m", mem, "-l", LAYOUT, "write", "i32", "0x20", "-2", "--json");
    assert.deepEqual(JSON.parse(b.stdout), { addr: "0x20", type: "i32", endian: "le", value: "0xfffffffe", length: 4 });
    assert.deepEqual(await fileBytes(mem, 0x20, 4), [0xfe, 0xff, 0xff, 0xff]);
    const c = await gmem("-m", mem, "-l", LAYOUT, "write", "u64", "0x2ff8", "0x1122334455667788");
    assert.equal(c.code, 0, c.stderr);
    assert.deepEqual(await fileBytes(mem, 0x1ff8, 8), [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
  });
});

Deno.test("gmem cli: fill sets every byte of the range; copy of overlapping ranges behaves like memmove", async () => {
  await withMemFile(0x2000, [[0x100, seq(16)]], async (mem) => {
    const f = await gmem("-m", mem, "fill", "0x200", "0x10", "0xaa");
    assert.equal(f.stdout, "filled [0x200, 0x210) with 0xaa\n");
    assert.deepEqual(await fileBytes(mem, 0x1ff, 18), [0, ...new Array(16).fill(0xaa), 0]);
    const up = await gmem("-m", mem, "copy", "0x100", "0x104", "0x10");
    assert.equal(up.stdout, "copied 0x10 bytes from 0x100 to 0x104\n");
    assert.deepEqual(await fileBytes(mem, 0x100, 20), [0, 1, 2, 3, ...seq(16)]);
    const down = await gmem("-m", mem, "copy", "0x104", "0x102", "0x10", "--json");
    assert.deepEqual(JSON.parse(down.stdout), { src: "0x104", dst: "0x102", length: 16 });
    assert.deepEqual(await fileBytes(mem, 0x100, 20), [0, 1, ...seq(16), 14, 15]);
  });
});

Deno.test("gmem cli: fill and copy refuse a range with a hole before writing anything", async () => {
  await withMemFile(0x2000, [], async (mem) => {
    const f = await gmem("-m", mem, "-l", LAYOUT, "fill", "0xff0", "0x20", "1");
    assertOneLineError(f, 1, "gmem fill: invalid guest address 0x1000: no region contains it");
    assert.deepEqual(await fileBytes(mem, 0xff0, 16), new Array(16).fill(0));
    const c = await gmem("-m", mem, "-l", LAYOUT, "copy", "0", "0x1ff0", "0x20");
    assertOneLineError(c, 1, "gmem copy: invalid guest address 0x1ff0: no region contains it");
  });
});

Deno.test("gmem cli: find lists every match in order, across two touching regions, and exits 1 for none", async () => {
  // GPA [0, 0x1000) is file [0, 0x1000); GPA [0x1000, 0x2000) is file [0x3000, 0x4000).
  const layout = "0:0x1000,0x1000:0x1000@0x3000";
  await withMemFile(0x4000, [[0xffe, enc("ne")], [0x3000, enc("ed")], [0x3800, enc("need")]], async (mem) => {
    const a = await gmem("-m", mem, "-l", layout, "find", "0", "0x2000", "need", "--text");
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, "0xffe\n0x1800\n");
    const b = await gmem("-m", mem, "-l", layout, "find", "0x1000", "0x1000", "6e:65:65:64", "--json");
    assert.deepEqual(JSON.parse(b.stdout), {
      addr: "0x1000",
      length: 4096,
      pattern: "6e656564",
      matches: ["0x1800"],
      truncated: false,
      skipped: [],
    });
    const c = await gmem("-m", mem, "-l", layout, "find", "0", "0x2000", "6e65", "--max", "1");
    assert.equal(c.stdout, "0xffe\n");
    assert.equal(c.stderr, "gmem find: stopped after 1 match (--max)\n");
    const none = await gmem("-m", mem, "-l", layout, "find", "0", "0x2000", "0badc0de");
    assert.equal(none.code, 1);
    assert.equal(none.stdout, "");
    assert.equal(none.stderr, "");
  });
});

Deno.test("gmem cli: find skips holes and reports them with --json", async () => {
  await withMemFile(0x2000, [[0x1010, enc("xy")]], async (mem) => {
    const r = await gmem("-m", mem, "-l", LAYOUT, "find", "0xff0", "0x1030", "xy", "--text", "--json");
    assert.deepEqual(JSON.parse(r.stdout).matches, ["0x2010"]);
    assert.deepEqual(JSON.parse(r.stdout).skipped, [{ addr: "0x1000", length: 4096 }]);
  });
});

Deno.test("gmem cli: save and load round-trip 64 MiB through files with progress on stderr, none with --quiet", async () => {
  const size = 64 * 2 ** 20;
  await withMemFile(size, [[0, enc("start")], [size - 3, enc("end")]], async (mem, dir) => {
    const s = await gmem("-m", mem, "save", "0", "64M", `${dir}/copy`);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout, `saved [0x0, 0x4000000) (67108864 bytes) to ${dir}/copy\n`);
    assert.equal(s.stderr.split("\n").filter((l) => l !== "").at(-1), "gmem save: 64 MiB of 64 MiB (100%)");
    assert.deepEqual(await Deno.readFile(`${dir}/copy`), await Deno.readFile(mem));
    await gmem("-m", mem, "fill", "0", "64M", "0", "--quiet");
    assert.deepEqual(await fileBytes(mem, 0, 5), [0, 0, 0, 0, 0]);
    const l = await gmem("-m", mem, "load", `${dir}/copy`, "0", "--quiet");
    assert.equal(l.stderr, "");
    assert.equal(l.stdout, `loaded 67108864 bytes from ${dir}/copy to [0x0, 0x4000000)\n`);
    assert.deepEqual(await Deno.readFile(mem), await Deno.readFile(`${dir}/copy`));
    const part = await gmem("-m", mem, "load", `${dir}/copy`, "0x100", "3", "--json");
    assert.deepEqual(JSON.parse(part.stdout), { addr: "0x100", length: 3, file: `${dir}/copy` });
    assert.deepEqual(await fileBytes(mem, 0x100, 3), [...enc("sta")]);
  });
});

Deno.test("gmem cli: save of a range with a hole fails on the hole's address and creates no file", async () => {
  await withMemFile(0x2000, [], async (mem, dir) => {
    const r = await gmem("-m", mem, "-l", LAYOUT, "save", "0", "0x3000", `${dir}/out`);
    assertOneLineError(r, 1, "gmem save: invalid guest address 0x1000: no region contains it");
    await assert.rejects(Deno.stat(`${dir}/out`), Deno.errors.NotFound);
  });
});

/** An IOTLB file written by the library's own Iotlb.toJSON(). */
async function iotlbFile(dir: string): Promise<string> {
  const tlb = new Iotlb();
  tlb.setMapping(0x10000, 0x0, 0x1000, Permissions.ReadWrite);
  tlb.setMapping(0x11000, 0x2000, 0x800, Permissions.Read);
  tlb.setMapping(0x12000, 0x1000, 0x1000, Permissions.Write); // GPA 0x1000 is the layout's hole
  const path = `${dir}/iotlb.json`;
  await Deno.writeTextFile(path, JSON.stringify(tlb.toJSON()));
  return path;
}

Deno.test("gmem cli: translate prints each IOVA piece and its GPA range", async () => {
  await withMemFile(0x2000, [], async (mem, dir) => {
    const tlb = await iotlbFile(dir);
    const r = await gmem("--iotlb", tlb, "-m", mem, "-l", LAYOUT, "translate", "0x10800", "0x1000", "read");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "[0x10800, 0x11000) -> GPA [0x800, 0x1000)\n[0x11000, 0x11800) -> GPA [0x2000, 0x2800)\n");
    const j = await gmem("--iotlb", tlb, "translate", "0x10ff0", "0x20", "r", "--json");
    assert.deepEqual(JSON.parse(j.stdout), {
      iova: "0x10ff0",
      length: 32,
      access: "read",
      ok: true,
      ranges: [{ iova: "0x10ff0", gpa: "0xff0", length: 16 }, { iova: "0x11000", gpa: "0x2000", length: 16 }],
    });
  });
});

Deno.test("gmem cli: translate that fails exits 1 with one CannotResolve line; --json lists misses and access failures", async () => {
  await withMemFile(0x2000, [], async (_mem, dir) => {
    const tlb = await iotlbFile(dir);
    const r = await gmem("--iotlb", tlb, "translate", "0x10ff0", "0x820", "write");
    assertOneLineError(
      r,
      1,
      "gmem translate: cannot translate I/O virtual address range 0x10ff0+0x820: [0x11000, 0x11800) without write permission, [0x11800, 0x11810) unmapped (gmem explain says more)",
    );
    assert.equal(r.stdout, "");
    const j = await gmem("--iotlb", tlb, "translate", "0x10ff0", "0x820", "write", "--json");
    assert.equal(j.code, 1);
    assert.deepEqual(JSON.parse(j.stdout), {
      iova: "0x10ff0",
      length: 0x820,
      access: "write",
      ok: false,
      misses: [{ iova: "0x11800", length: 16 }],
      accessFails: [{ iova: "0x11000", length: 0x800 }],
      unbacked: [],
    });
  });
});

Deno.test("gmem cli: explain names each piece: translated, unmapped, lacking permission, not backed by RAM", async () => {
  await withMemFile(0x2000, [], async (mem, dir) => {
    const tlb = await iotlbFile(dir);
    const r = await gmem("--iotlb", tlb, "-m", mem, "-l", LAYOUT, "explain", "0x10000", "0x3000", "write");
    assert.equal(r.code, 1, "a range that does not translate is a failure");
    assert.equal(r.stderr, "");
    assert.equal(
      r.stdout,
      [
        "IOVA [0x10000, 0x13000) write: does not translate (1 unmapped, 1 without write permission, 1 not backed by guest RAM)",
        "  [0x10000, 0x11000)  ok        -> GPA [0x0, 0x1000) (entry [0x10000, 0x11000) ReadWrite)",
        "  [0x11000, 0x11800)  denied    entry [0x11000, 0x11800) Read does not allow write",
        "  [0x11800, 0x12000)  miss      no IOTLB entry",
        "  [0x12000, 0x13000)  unbacked  -> GPA [0x1000, 0x2000): no guest RAM there (entry [0x12000, 0x13000) Write)",
        "",
      ].join("\n"),
    );
    const ok = await gmem("--iotlb", tlb, "explain", "0x10000", "0x10", "rw");
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(
      ok.stdout,
      "IOVA [0x10000, 0x10010) read-write: translates\n" +
        "  [0x10000, 0x10010)  ok        -> GPA [0x0, 0x10) (entry [0x10000, 0x11000) ReadWrite)\n",
    );
    const j = await gmem("--iotlb", tlb, "explain", "0x11700", "0x200", "read", "--json");
    assert.deepEqual(JSON.parse(j.stdout), {
      iova: "0x11700",
      length: 0x200,
      access: "read",
      ok: false,
      pieces: [
        {
          iova: "0x11700",
          length: 0x100,
          status: "ok",
          gpa: "0x2700",
          entry: { iova: "0x11000", size: "0x800", perm: "Read" },
        },
        { iova: "0x11800", length: 0x100, status: "miss" },
      ],
    });
  });
});

Deno.test("gmem cli: dirty separates gmem's own writes from changes by another process; reset starts over", async () => {
  await withMemFile(0x2000, [], async (mem) => {
    const s = await gmem("-m", mem, "-l", LAYOUT, "dirty", "start");
    assert.equal(s.stdout, `started session ${mem}.gmem-dirty (pages of 0x1000 bytes)\n`);
    await gmem("-m", mem, "-l", LAYOUT, "write", "u32", "0x2ffc", "7");
    // Another process writes file offset 0x10, i.e. GPA 0x10.
    const f = await Deno.open(mem, { write: true });
    await f.seek(0x10, Deno.SeekMode.Start);
    await f.write(enc("guest"));
    f.close();
    const show = await gmem("-m", mem, "-l", LAYOUT, "dirty", "show");
    assert.equal(show.code, 0, show.stderr);
    assert.equal(
      show.stdout,
      [
        "2 dirty pages of 0x1000 bytes in 2 runs",
        "  [0x0, 0x1000)          1 page   changed by another process",
        "  [0x2000, 0x3000)       1 page   written by gmem",
        "",
      ].join("\n"),
    );
    const j = await gmem("-m", mem, "-l", LAYOUT, "dirty", "reset", "--json");
    const doc = JSON.parse(j.stdout);
    assert.deepEqual(
      { ...doc, started: undefined, since: undefined },
      {
        session: `${mem}.gmem-dirty`,
        pageSize: 4096,
        started: undefined,
        since: undefined,
        dirtyPages: 2,
        runs: [
          { addr: "0x0", length: 4096, pages: 1, source: "other" },
          { addr: "0x2000", length: 4096, pages: 1, source: "gmem" },
        ],
        reset: true,
      },
    );
    const after = await gmem("-m", mem, "-l", LAYOUT, "dirty", "show");
    assert.equal(after.stdout, "0 dirty pages of 0x1000 bytes in 0 runs\n");
    const stop = await gmem("-m", mem, "-l", LAYOUT, "dirty", "stop");
    assert.equal(stop.stdout, `stopped session ${mem}.gmem-dirty\n`);
    await assert.rejects(Deno.stat(`${mem}.gmem-dirty`), Deno.errors.NotFound);
  });
});

Deno.test("gmem cli: a dirty session refuses memory attached with another layout", async () => {
  await withMemFile(0x2000, [], async (mem) => {
    await gmem("-m", mem, "-l", LAYOUT, "dirty", "start", "--page-size", "0x800");
    const r = await gmem("-m", mem, "write", "u8", "0", "1");
    assertOneLineError(
      r,
      2,
      `gmem write: --layout 0x0:0x2000@0x0 differs from the layout of session ${mem}.gmem-dirty (0x0:0x1000@0x0,0x2000:0x1000@0x1000); pass that layout or start a new session`,
    );
    assert.deepEqual(await fileBytes(mem, 0, 1), [0]);
  });
});

/** Runs a coreutils command (links, FIFOs, listings: things the Bun adapter does not provide). */
async function sh(cmd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  assert.equal(out.code, 0, `${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** The one-line refusal of an output that is the guest memory. */
function refusal(op: string, argument: string, out: string, memory: string): string {
  return `${op}: ${argument} ${out} is the guest memory ${memory} (same device and inode); writing it would destroy guest RAM`;
}

Deno.test("gmem cli: save refuses FILE when it is the memory file by any name (path, symlink, hard link, /proc/PID/fd/N), before opening it", async () => {
  const original = seq(0x2000);
  await withMemFile(0x2000, [[0, original]], async (mem, dir) => {
    await sh("ln", "-s", mem, `${dir}/link`);
    await sh("ln", mem, `${dir}/hard`);
    // A descriptor of this process on the memory file: /proc/PID/fd/N is one more name for it.
    const fd = native().open(enc(`${mem}\0`), false);
    assert.ok(fd >= 0, `open: ${fd}`);
    try {
      const byFd = `/proc/${Deno.pid}/fd/${fd}`;
      for (const out of [mem, `${dir}/link`, `${dir}/hard`, byFd]) {
        // --allow-all: Deno asks for it to look at /proc paths at all.
        const r = await runDeno(CLI, ["--allow-all"], ["--mem", mem, "save", "0", "4k", out]);
        assertOneLineError(r, 2, refusal("gmem save", "FILE", out, mem));
        assert.deepEqual([...await Deno.readFile(mem)], [...original], `memory after save to ${out}`);
      }
      // The memory named through /proc, the output by its path: the same file all the same.
      const r = await runDeno(CLI, ["--allow-all"], ["--mem", byFd, "save", "0", "4k", mem]);
      assertOneLineError(r, 2, refusal("gmem save", "FILE", mem, byFd));
    } finally {
      native().close(fd);
    }
    assert.deepEqual([...await Deno.readFile(mem)], [...original]);
    // Another file is still written, and a file already there is emptied first.
    await Deno.writeFile(`${dir}/out`, new Uint8Array(0x3000).fill(0xee));
    const ok = await gmem("--mem", mem, "save", "0x10", "4", `${dir}/out`);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual([...await Deno.readFile(`${dir}/out`)], [0x10, 0x11, 0x12, 0x13]);
  });
});

Deno.test("gmem cli: dirty start, stop and writing commands refuse a --session that is the memory file; the memory keeps every byte", async () => {
  const original = seq(0x2000);
  await withMemFile(0x2000, [[0, original]], async (mem, dir) => {
    await sh("ln", "-s", mem, `${dir}/link`);
    await sh("ln", mem, `${dir}/hard`);
    const cases: Array<[string[], string, string]> = [
      [["dirty", "start", "--session", mem], "gmem dirty", mem],
      [["dirty", "start", "--session", `${dir}/link`], "gmem dirty", `${dir}/link`],
      [["dirty", "start", "--session", `${dir}/hard`], "gmem dirty", `${dir}/hard`],
      [["dirty", "reset", "--session", `${dir}/link`], "gmem dirty", `${dir}/link`],
      [["dirty", "stop", "--session", `${dir}/hard`], "gmem dirty", `${dir}/hard`],
      [["write", "u8", "0", "0xff", "--session", `${dir}/link`], "gmem write", `${dir}/link`],
      [["fill", "0", "16", "0xff", "--session", mem], "gmem fill", mem],
    ];
    for (const [args, op, session] of cases) {
      const r = await gmem("--mem", mem, ...args);
      assertOneLineError(r, 2, refusal(op, "--session", session, mem));
      assert.deepEqual([...await Deno.readFile(mem)], [...original], `memory after ${args.join(" ")}`);
    }
    assert.equal(await sh("stat", "-c", "%F", `${dir}/link`), "symbolic link\n", "the symlink is still there");
    assert.deepEqual([...await Deno.readFile(`${dir}/hard`)], [...original]);
  });
});

Deno.test("gmem cli: a stale SESSION.tmp that is a hard link to the memory file is never written; the session goes to a new file", async () => {
  const original = seq(0x2000);
  await withMemFile(0x2000, [[0, original]], async (mem, dir) => {
    const session = `${mem}.gmem-dirty`;
    await sh("ln", mem, `${session}.tmp`);
    const s = await gmem("--mem", mem, "dirty", "start");
    assert.equal(s.code, 0, s.stderr);
    const w = await gmem("--mem", mem, "write", "u8", "0x1000", "0xab");
    assert.equal(w.code, 0, w.stderr);
    const expected = original.slice();
    expected[0x1000] = 0xab;
    assert.deepEqual([...await Deno.readFile(mem)], [...expected]);
    assert.deepEqual([...await Deno.readFile(`${session}.tmp`)], [...expected], "still the memory's other name");
    const show = await gmem("--mem", mem, "dirty", "show");
    assert.equal(
      show.stdout,
      "1 dirty page of 0x1000 bytes in 1 run\n  [0x1000, 0x2000)       1 page   written by gmem\n",
    );
    // No temporary file is left beside the session.
    assert.equal(await sh("ls", dir), "ram\nram.gmem-dirty\nram.gmem-dirty.tmp\n");
  });
});

Deno.test("gmem cli: a damaged --session file is one line and exit 2 (never an unexpected TypeError), and nothing is written", async () => {
  await withMemFile(0x2000, [[0, seq(16)]], async (mem, dir) => {
    assert.equal((await gmem("--mem", mem, "dirty", "start", "--session", `${dir}/good`)).code, 0);
    const good = await Deno.readFile(`${dir}/good`);
    const nl = good.indexOf(10);
    const header = JSON.parse(new TextDecoder().decode(good.subarray(0, nl)));
    const body = good.subarray(nl + 1);
    const withHeader = (h: unknown) => new Uint8Array([...enc(`${JSON.stringify(h)}\n`), ...body]);
    const cases: Array<[string, Uint8Array, string]> = [
      ["null", withHeader(null), "the header is null, not a JSON object"],
      ["no layout", withHeader({ ...header, layout: undefined }), "the header has no layout"],
      ["layout number", withHeader({ ...header, layout: 8192 }), "the header's layout is 8192, not a string"],
      [
        "layout no size",
        withHeader({ ...header, layout: "0x0" }),
        'the header\'s layout "0x0" is not a layout: range "0x0" must be GPA:SIZE[@FILE_OFFSET]',
      ],
      [
        "pageSize string",
        withHeader({ ...header, pageSize: "4096" }),
        'the header\'s pageSize is "4096", not a power of two from 64 to 2^30',
      ],
      [
        "truncated",
        good.subarray(0, good.length - 3),
        `it has ${good.length - 3} bytes, but its header's layout and page size make ${good.length}`,
      ],
    ];
    for (const [name, bytes, why] of cases) {
      const path = `${dir}/${name.replaceAll(" ", "-")}`;
      await Deno.writeFile(path, bytes);
      for (const args of [["dirty", "show"], ["write", "u8", "0", "0xff"]]) {
        const r = await gmem("--mem", mem, ...args, "--session", path);
        const op = `gmem ${args[0]}`;
        assertOneLineError(r, 2, `${op}: --session ${path} is not a gmem dirty session (${why})`);
      }
      assert.deepEqual([...await Deno.readFile(path)], [...bytes], `${name}: the session file is left as it was`);
    }
    assert.deepEqual(await fileBytes(mem, 0, 16), [...seq(16)], "the memory was not written");
  });
});

Deno.test("gmem cli: a --session that is a FIFO or a directory is refused at once, without opening it (no hang)", async () => {
  await withMemFile(0x2000, [], async (mem, dir) => {
    await sh("mkfifo", `${dir}/fifo`);
    for (
      const [path, args] of [[`${dir}/fifo`, ["dirty", "show"]], [`${dir}/fifo`, ["write", "u8", "0", "1"]], [dir, [
        "dirty",
        "stop",
      ]]] as const
    ) {
      // A FIFO without a writer blocks open() for ever: the run is killed after a generous minute.
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-prompt",
          "--allow-ffi",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          CLI,
          "--mem",
          mem,
          ...args,
          "--session",
          path,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1", RUST_BACKTRACE: "0" },
        signal: AbortSignal.timeout(60_000),
      }).output();
      const run = { code: out.code, signal: out.signal, stdout: "", stderr: new TextDecoder().decode(out.stderr) };
      assertOneLineError(
        run,
        2,
        `gmem ${args[0]}: --session ${path} is not a gmem dirty session (it is not a regular file)`,
      );
    }
    assert.deepEqual(await fileBytes(mem, 0, 1), [0]);
  });
});

/** How to start the memfd peer: its program and the arguments before the peer's own. */
interface Peer {
  command: string;
  args: string[];
}

/**
 * The memfd peer: compiled from C once per test that needs it, an independent implementation of the
 * socket side; or, on a machine without `cc`, the same peer in TypeScript (the library needs no
 * compiler, and neither does its test suite).
 */
async function memfdServer(dir: string): Promise<Peer> {
  const exe = `${dir}/memfd_server`;
  const src = new URL("./fixtures/memfd_server.c", import.meta.url).pathname;
  let cc: Deno.CommandOutput;
  try {
    cc = await new Deno.Command("cc", { args: ["-std=c11", "-O2", "-o", exe, src], stderr: "piped" }).output();
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
    const script = new URL("./fixtures/memfd_server.ts", import.meta.url).href;
    return { command: Deno.execPath(), args: ["run", "--no-prompt", "--allow-all", script] };
  }
  assert.equal(cc.code, 0, new TextDecoder().decode(cc.stderr));
  return { command: exe, args: [] };
}

/** Starts the peer and waits for its "ready" line; returns the process and its remaining stdout. */
async function startPeer(peer: Peer, args: string[]): Promise<{ child: Deno.ChildProcess; rest: Promise<string> }> {
  const child = new Deno.Command(peer.command, {
    args: [...peer.args, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  assert.equal(text.split("\n")[0], "ready");
  const rest = (async () => {
    let more = text.slice(text.indexOf("\n") + 1);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return more;
      more += value;
    }
  })();
  return { child, rest };
}

Deno.test("gmem cli: memory from a memfd received over a Unix socket: reads the owner's bytes, the owner sees gmem's write", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gmem-memfd-" });
  try {
    const exe = await memfdServer(dir);
    const sock = `${dir}/ram.sock`;
    const { child, rest } = await startPeer(exe, [sock, String(0x10000), "3"]);
    try {
      const h = await gmem("--memfd-socket", sock, "hexdump", "0x100", "12");
      assert.equal(h.stdout, "0x0000000000000100  6d 65 6d 66 64 2d 73 65  72 76 65 72              |memfd-server|\n");
      const r = await gmem("--memfd-socket", sock, "-l", "0x100000:0x2000@0x1000", "read", "u32", "0x1000fc");
      assert.equal(r.stdout, "0xfffefdfc\n");
      const w = await gmem("--memfd-socket", sock, "write", "u64", "0x2000", "0x1122334455667788");
      assert.equal(w.code, 0, w.stderr);
      await child.stdin.close(); // gmem has exited: its write is in the memfd; let the owner look
      assert.equal(await rest, "88776655443322110000000000000000\n");
      assert.equal((await child.status).code, 0);
    } finally {
      try {
        child.kill();
      } catch { /* already exited */ }
      await child.status;
      await rest;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gmem cli: with memory from a memfd socket, the owner's /proc/PID/fd/N of that memfd is refused as save FILE and --session", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gmem-memfd-" });
  try {
    const exe = await memfdServer(dir);
    const sock = `${dir}/ram.sock`;
    const { child, rest } = await startPeer(exe, [sock, String(0x10000), "3"]);
    try {
      const listing = await sh("ls", "-l", `/proc/${child.pid}/fd`);
      const n = /(\d+) -> \/memfd:memfd-server/.exec(listing);
      assert.ok(n !== null, listing);
      const byFd = `/proc/${child.pid}/fd/${n[1]}`;
      const source = `memfd from ${sock}`;
      const all = (...args: string[]) => runDeno(CLI, ["--allow-all"], ["--memfd-socket", sock, ...args]);
      assertOneLineError(await all("save", "0", "4k", byFd), 2, refusal("gmem save", "FILE", byFd, source));
      assertOneLineError(
        await all("dirty", "start", "--session", byFd),
        2,
        refusal("gmem dirty", "--session", byFd, source),
      );
      const h = await all("hexdump", "0x100", "12");
      assert.equal(h.stdout, "0x0000000000000100  6d 65 6d 66 64 2d 73 65  72 76 65 72              |memfd-server|\n");
      // Truncated, the owner's memfd would kill the owner (SIGBUS) when it reads its bytes at 0x2000.
      await child.stdin.close();
      assert.equal(await rest, "00000000000000000000000000000000\n");
      const status = await child.status;
      assert.deepEqual([status.code, status.signal], [0, null]);
    } finally {
      try {
        child.kill();
      } catch { /* already exited */ }
      await child.status;
      await rest;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gmem cli: a memfd socket that sends no descriptor, or does not exist, is a one-line error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gmem-memfd-" });
  try {
    const exe = await memfdServer(dir);
    const sock = `${dir}/ram.sock`;
    const { child, rest } = await startPeer(exe, [sock, "4096", "1", "nofd"]);
    try {
      const r = await gmem("--memfd-socket", sock, "hexdump", "0", "1");
      assertOneLineError(r, 2, `gmem hexdump: --memfd-socket ${sock} sent a message without a descriptor`);
    } finally {
      await child.stdin.close();
      await child.status;
      await rest;
    }
    const gone = await gmem("--memfd-socket", sock, "hexdump", "0", "1");
    assertOneLineError(
      gone,
      1,
      `gmem hexdump: connect/recvmsg(path=${sock}) failed: ENOENT (No such file or directory)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gmem cli: bad input is one line on stderr and exit 2, never a stack trace", async () => {
  await withMemFile(0x2000, [], async (mem, dir) => {
    await Deno.writeTextFile(
      `${dir}/bad.json`,
      '{"entries":[{"iova":"0x0","target":"0x0","size":"0x10","perm":"Exec"}]}',
    );
    const cases: Array<[string[], string]> = [
      [[], "gmem: COMMAND is missing (gmem --help lists the commands)"],
      [["frobnicate"], 'gmem: COMMAND "frobnicate" is not a command (gmem --help lists them)'],
      [["hexdump", "0", "1", "--colour"], "gmem: --colour is not an option (see gmem --help)"],
      [
        ["-m", mem, "hexdump", "0x", "1"],
        'gmem hexdump: ADDR must be a number (hex 0x…, or decimal; k/M/G/T suffix), got "0x"',
      ],
      [["-m", mem, "hexdump", "0"], "gmem hexdump: LEN is missing (usage: gmem hexdump ADDR LEN)"],
      [["-m", mem, "hexdump", "0", "1", "2"], "gmem hexdump: 2 is one word too many (usage: gmem hexdump ADDR LEN)"],
      [["-m", mem, "hexdump", "0", "0"], "gmem hexdump: LEN must not be zero"],
      [["-m", mem, "hexdump", "0", "17M"], "gmem hexdump: LEN must be at most 0x1000000 (use gmem save for more)"],
      [["-m", mem, "hexdump", "0", "1", "--iotlb", "x"], "gmem hexdump: --iotlb does not apply to hexdump"],
      [
        ["hexdump", "0", "1"],
        "gmem hexdump: --mem PATH (a memory file) or --memfd-socket PATH is required: the guest memory to attach to",
      ],
      [["-m", `${dir}/nope`, "hexdump", "0", "1"], `gmem hexdump: --mem ${dir}/nope names no file`],
      [
        ["-m", mem, "-l", "0:1M", "hexdump", "0", "1"],
        `gmem hexdump: --layout range at GPA 0x0 needs file bytes [0x0, 0x100000) but ${mem} has 0x2000 bytes`,
      ],
      [
        ["-m", mem, "-l", "0:0x2000,0x1000:0x1000@0", "hexdump", "0", "1"],
        "gmem hexdump: --layout ranges [0x0, 0x2000) and [0x1000, 0x2000) overlap",
      ],
      [
        ["-m", mem, "-l", "0x1000", "hexdump", "0", "1"],
        'gmem hexdump: --layout range "0x1000" must be GPA:SIZE[@FILE_OFFSET]',
      ],
      [
        ["-m", mem, "read", "u24", "0"],
        'gmem read: TYPE must be one of u8, u16, u32, u64, i8, i16, i32, i64, got "u24"',
      ],
      [["-m", mem, "read", "u8", "0", "--be", "--le"], "gmem read: --be and --le cannot be used together"],
      [["-m", mem, "write", "u8", "0", "256"], "gmem write: VALUE must fit in u8 [0, 255], got 256"],
      [["-m", mem, "write", "i8", "0", "-129"], "gmem write: VALUE must fit in i8 [-128, 127], got -129"],
      [["-m", mem, "write", "u16", "0", "-1"], "gmem write: VALUE must fit in u16 [0, 65535], got -1"],
      [["-m", mem, "fill", "0", "16", "0x100"], "gmem fill: BYTE must fit in u8 [0, 255], got 0x100"],
      [
        ["-m", mem, "hexdump", "0xffffffffffffffff", "2"],
        "gmem hexdump: LEN 0x2 from 0xffffffffffffffff runs past 2^64",
      ],
      [
        ["-m", mem, "find", "0", "16", "abc"],
        'gmem find: PATTERN must be hex bytes like deadbeef or de:ad:be:ef (or text with --text), got "abc"',
      ],
      [["-m", mem, "--quiet", "--quiet", "map"], "gmem: --quiet was given more than once"],
      [
        ["translate", "0", "16", "read"],
        "gmem translate: --iotlb FILE is required (an IOTLB as Iotlb.toJSON() writes it)",
      ],
      [
        ["translate", "0", "16", "exec", "--iotlb", `${dir}/bad.json`],
        'gmem translate: ACCESS must be read, write, rw or none, got "exec"',
      ],
      [
        ["translate", "0", "16", "read", "--iotlb", `${dir}/bad.json`],
        `gmem translate: ${dir}/bad.json entries[0].perm must be a permission: 0-3 or No, Read, Write, ReadWrite`,
      ],
      [["translate", "0", "16", "read", "--iotlb", mem], ""],
      [
        ["-m", mem, "dirty", "show"],
        `gmem dirty: --session ${mem}.gmem-dirty does not exist (start one with gmem dirty start)`,
      ],
      [["-m", mem, "dirty", "show", "--page-size", "4096"], "gmem dirty: --page-size only applies to dirty start"],
      [["-m", mem, "dirty", "begin"], 'gmem dirty: ACTION must be start, show, reset or stop, got "begin"'],
      [
        ["-m", mem, "dirty", "start", "--page-size", "1000"],
        "gmem dirty: --page-size must be a power of two from 64 to 1G, got 1000",
      ],
      [["-m", mem, "load", `${dir}/nope`, "0"], `gmem load: FILE ${dir}/nope names no file`],
    ];
    for (const [args, message] of cases) {
      const r = await gmem(...args);
      if (message === "") {
        // A file that is not JSON: the parser's own words follow, so only the start is fixed.
        assert.equal(r.code, 2, args.join(" "));
        assert.match(r.stderr, new RegExp(`^gmem translate: --iotlb ${mem} is not JSON \\(.+\\)\\n$`));
        continue;
      }
      assertOneLineError(r, 2, message);
    }
  });
});

Deno.test("gmem cli: help lists every command, the exit codes and the install command", async () => {
  const r = await gmem("--help");
  assert.equal(r.code, 0);
  for (
    const usage of [
      "hexdump ADDR LEN",
      "read TYPE ADDR",
      "write TYPE ADDR VALUE",
      "fill ADDR LEN BYTE",
      "copy SRC DST LEN",
      "find ADDR LEN PATTERN",
      "save ADDR LEN FILE",
      "load FILE ADDR [LEN]",
      "translate IOVA LEN ACCESS",
      "explain IOVA LEN ACCESS",
      "dirty start|show|reset|stop",
      "map",
      "xp [/FMT] ADDR",
      "mtree",
    ]
  ) assert.match(r.stdout, new RegExp(`^  ${usage.replace(/[|[\]]/g, "\\$&")} `, "m"));
  assert.match(
    r.stdout,
    /^Install: npx -y deno@2 task install \(or deno task install; --dir DIR, default ~\/\.local\/bin\)$/m,
  );
  assert.match(r.stdout, /2 bad arguments/);
  const one = await gmem("help", "find");
  assert.equal(one.stdout.split("\n")[0], "usage: gmem find ADDR LEN PATTERN [options]");
  assert.match(one.stdout, /--max N/);
});

Deno.test("gmem cli: map draws the address space through render_map.ts", async () => {
  await withMemFile(0x2000, [], async (mem) => {
    const r = await gmem("-m", mem, "-l", LAYOUT, "map", "--json");
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.deepEqual(doc.regions, [
      { gpa: "0x0", size: "0x1000", fileOffset: "0x0" },
      { gpa: "0x2000", size: "0x1000", fileOffset: "0x1000" },
    ]);
    assert.ok(doc.picture.startsWith("<svg"), doc.picture.slice(0, 40));
  });
});

Deno.test("gmem cli: a memory file and its dirty session in /dev/shm work with the task's --allow-all", async () => {
  const path = `/dev/shm/gmem-cli-${crypto.randomUUID()}`;
  // The test itself may not touch /dev (Deno wants --allow-all there), so coreutils make and remove the file.
  const made = await new Deno.Command("truncate", { args: ["-s", "8192", path] }).output();
  assert.equal(made.code, 0, new TextDecoder().decode(made.stderr));
  try {
    const all = (...args: string[]) => runDeno(CLI, ["--allow-all"], ["-m", path, ...args]);
    assert.equal((await all("dirty", "start")).code, 0);
    const w = await all("write", "u32", "0x1000", "0xfeedface");
    assert.equal(w.stdout, "wrote u32 0xfeedface at 0x1000\n");
    const h = await all("hexdump", "0x1000", "4");
    assert.equal(h.stdout, "0x0000000000001000  ce fa ed fe                                       |....|\n");
    const d = await all("dirty", "show", "--json");
    assert.deepEqual(JSON.parse(d.stdout).runs, [{ addr: "0x1000", length: 4096, pages: 1, source: "gmem" }]);
    const narrow = await gmem("-m", path, "hexdump", "0", "1");
    assertOneLineError(narrow, 2, `gmem hexdump: --mem ${path} cannot be read (permission denied)`);
  } finally {
    await new Deno.Command("rm", { args: ["-f", path, `${path}.gmem-dirty`] }).output();
  }
});
