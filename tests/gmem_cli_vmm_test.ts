/**
 * The `gmem` tool as a VMM engineer uses it: exit statuses a script can rely on, writes that are
 * all or nothing, sessions that are not replaced by accident. Every case runs the tool as a child
 * process on a real memory file and checks exact stdout, stderr and exit status.
 * @module
 */

import assert from "node:assert/strict";
import { CONFIG, denoTask, gmem, gmemAt, gmemTask, runIn, runProgram, withMemFile } from "./fixtures/gmem_cli.ts";

const LAYOUT = "0:0x1000,0x2000:0x1000";

Deno.test("gmem cli: a scalar write that runs past RAM fails with exit 1 and leaves every byte as it was", async () => {
  await withMemFile(0x1000, [[0xff8, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)]], async (mem) => {
    const before = await Deno.readFile(mem);
    const r = await gmem("--mem", mem, "write", "u32", "0xffe", "0xaabbccdd");
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, "gmem write: invalid guest address 0x1000: no region contains it\n");
    assert.deepEqual(await Deno.readFile(mem), before);
  });
});

Deno.test("gmem cli: a scalar write across two adjacent ranges writes all its bytes in order", async () => {
  await withMemFile(0x2000, [], async (mem) => {
    const r = await gmem("-m", mem, "-l", "0:0x1000,0x1000:0x1000@0x1000", "write", "u32", "0xffe", "0xaabbccdd");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "wrote u32 0xaabbccdd at 0xffe\n");
    assert.deepEqual([...(await Deno.readFile(mem)).subarray(0xffe, 0x1002)], [0xdd, 0xcc, 0xbb, 0xaa]);
  });
});

Deno.test("gmem cli: a second dirty start is refused with exit 2 and the running session keeps its pages", async () => {
  await withMemFile(0x2000, [], async (mem) => {
    assert.equal((await gmem("-m", mem, "-l", LAYOUT, "dirty", "start")).code, 0);
    assert.equal((await gmem("-m", mem, "-l", LAYOUT, "write", "u8", "0x2000", "1")).code, 0);
    const session = await Deno.readFile(`${mem}.gmem-dirty`);
    const again = await gmem("-m", mem, "-l", LAYOUT, "dirty", "start");
    assert.equal(again.code, 2);
    assert.equal(again.stdout, "");
    assert.match(
      again.stderr,
      new RegExp(
        `^gmem dirty: --session ${mem}\\.gmem-dirty already holds a session started \\d{4}-\\d\\d-\\d\\dT[0-9:.]+Z; ` +
          "gmem dirty reset starts counting again, gmem dirty stop ends it\\n$",
      ),
    );
    assert.deepEqual(await Deno.readFile(`${mem}.gmem-dirty`), session);
    const show = await gmem("-m", mem, "-l", LAYOUT, "dirty", "show");
    assert.equal(show.code, 0, show.stderr);
    assert.equal(
      show.stdout,
      "1 dirty page of 0x1000 bytes in 1 run\n  [0x2000, 0x3000)       1 page   written by gmem\n",
    );
  });
});

Deno.test("gmem cli: dirty start refuses to replace an existing file that is not a session", async () => {
  await withMemFile(0x1000, [], async (mem, dir) => {
    await Deno.writeTextFile(`${dir}/notes`, "keep me");
    const r = await gmem("-m", mem, "dirty", "start", "--session", `${dir}/notes`);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      `gmem dirty: --session ${dir}/notes already exists and is not a session gmem can read; ` +
        "remove it or pass another --session FILE\n",
    );
    assert.equal(await Deno.readTextFile(`${dir}/notes`), "keep me");
  });
});

Deno.test("gmem cli: --version and -V print the package version from deno.json and exit 0", async () => {
  const { version } = JSON.parse(await Deno.readTextFile(CONFIG));
  assert.match(version, /^\d+\.\d+\.\d+/);
  for (const flag of ["--version", "-V"]) {
    const r = await gmem(flag);
    assert.deepEqual(r, { code: 0, stdout: `gmem ${version}\n`, stderr: "" });
  }
});

Deno.test("gmem cli: under --json an error is one JSON line on stderr with op, class, kind, argument and exit status", async () => {
  await withMemFile(0x1000, [], async (mem) => {
    const bad = await gmem("--mem", mem, "read", "u32", "0xzz", "--json");
    assert.equal(bad.code, 2);
    assert.equal(bad.stdout, "");
    assert.equal(bad.stderr.split("\n").length, 2);
    assert.deepEqual(JSON.parse(bad.stderr), {
      error: {
        op: "gmem read",
        error: "InvalidArgumentError",
        kind: "InvalidArgument",
        message: 'gmem read: ADDR must be a number (hex 0x…, or decimal; k/M/G/T suffix), got "0xzz"',
        argument: "ADDR",
        value: "0xzz",
        exitCode: 2,
      },
    });
    const hole = await gmem("-j", "--mem", mem, "read", "u32", "0x1000");
    assert.equal(hole.code, 1);
    assert.equal(hole.stdout, "");
    assert.deepEqual(JSON.parse(hole.stderr), {
      error: {
        op: "gmem read",
        error: "InvalidGuestAddressError",
        kind: "InvalidGuestAddress",
        message: "gmem read: GuestMemoryMmap.readU32: invalid guest address 0x1000: no region contains it",
        exitCode: 1,
      },
    });
    const parse = await gmem("--json", "--nope");
    assert.equal(parse.code, 2);
    assert.deepEqual(JSON.parse(parse.stderr).error.message, "gmem: --nope is not an option (see gmem --help)");
    const plain = await gmem("--mem", mem, "read", "u32", "0x1000");
    assert.deepEqual(plain, {
      code: 1,
      stdout: "",
      stderr: "gmem read: GuestMemoryMmap.readU32: invalid guest address 0x1000: no region contains it\n",
    });
  });
});

Deno.test("gmem cli: an address hexdump prints can be pasted back as ADDR and names the same bytes", async () => {
  const bytes = Uint8Array.from({ length: 0x30 }, (_, i) => 0xa0 + i);
  await withMemFile(0x2000, [[0x1010, bytes]], async (mem) => {
    const dump = await gmem("--mem", mem, "hexdump", "0x1010", "0x30");
    assert.equal(dump.code, 0, dump.stderr);
    const lines = dump.stdout.split("\n");
    assert.equal(lines[2], "0x0000000000001030  c0 c1 c2 c3 c4 c5 c6 c7  c8 c9 ca cb cc cd ce cf  |................|");
    const pasted = lines[2].split(" ")[0];
    const again = await gmem("--mem", mem, "read", "u8", pasted);
    assert.deepEqual(again, { code: 0, stdout: "0xc0\n", stderr: "" });
  });
});

Deno.test("gmem cli: QEMU's 16-digit addresses (with or without its colon) are hex, other bare digits stay decimal", async () => {
  await withMemFile(0x2000, [[0x1000, Uint8Array.of(0x11)], [1000, Uint8Array.of(0x22)]], async (mem) => {
    for (const addr of ["0000000000001000", "0000000000001000:"]) {
      assert.deepEqual(await gmem("--mem", mem, "read", "u8", addr), { code: 0, stdout: "0x11\n", stderr: "" });
    }
    assert.deepEqual(await gmem("--mem", mem, "read", "u8", "1000"), { code: 0, stdout: "0x22\n", stderr: "" });
    const long = await gmem("--mem", mem, "read", "u8", "0000000000000000001000");
    assert.deepEqual(long, { code: 0, stdout: "0x22\n", stderr: "" });
  });
});

Deno.test("gmem cli: xp dumps units as QEMU's monitor does, default /1xw, --be, signed d at every size", async () => {
  const bytes = Uint8Array.of(0xfe, 0xff, 0xff, 0xff, 0x41, 0x0a, 0x27, 0x00, 0x10, 0x20, 0x30, 0x40);
  await withMemFile(0x2000, [[0x100, bytes]], async (mem) => {
    const cases: Array<[string[], string]> = [
      [["0x100"], "0000000000000100: 0xfffffffe\n"],
      [["/2xw", "0x100", "--be"], "0000000000000100: 0xfeffffff 0x410a2700\n"],
      [["/1dw", "0x100"], "0000000000000100:         -2\n"],
      [["/1uw", "0x100"], "0000000000000100: 4294967294\n"],
      [["/4c", "0x104"], "0000000000000104: 'A' '\\n' '\\'' '\\x00'\n"],
      [
        ["/10xb", "0000000000000100:"],
        [
          "0000000000000100: 0xfe 0xff 0xff 0xff 0x41 0x0a 0x27 0x00",
          "0000000000000108: 0x10 0x20",
          "",
        ].join("\n"),
      ],
    ];
    for (const [args, expected] of cases) {
      assert.deepEqual(
        await gmem("--mem", mem, "xp", ...args),
        { code: 0, stdout: expected, stderr: "" },
        args.join(" "),
      );
    }
    const j = await gmem("--mem", mem, "xp", "/2hx", "0x108", "--json");
    assert.deepEqual(JSON.parse(j.stdout), {
      addr: "0x108",
      count: 2,
      format: "x",
      size: 2,
      endian: "le",
      lines: ["0000000000000108: 0x2010 0x4030"],
    });
  });
});

Deno.test("gmem cli: xp refuses a range that leaves RAM (exit 1) and a bad /FMT (exit 2), printing nothing", async () => {
  await withMemFile(0x1000, [], async (mem) => {
    const cases: Array<[string[], number, string]> = [
      [["/2xg", "0xff8"], 1, "gmem xp: invalid guest address 0x1000: no region contains it"],
      [["/2i", "0"], 2, "gmem xp: /FMT format i (disassembly) is not supported: gmem does not disassemble"],
      [
        ["/4xx", "0"],
        2,
        'gmem xp: /FMT has "x" where a format (x d u o c) or size (b h w g) may stand, each at most once',
      ],
      [["/0x", "0"], 2, "gmem xp: /FMT count must be from 1 to 1048576, got 0"],
      [["4xw", "0"], 2, 'gmem xp: /FMT must be /[COUNT][FORMAT][SIZE] like /4xw, got "4xw"'],
      [[], 2, "gmem xp: ADDR is missing (usage: gmem xp [/FMT] ADDR)"],
      [["/4xw"], 2, "gmem xp: ADDR is missing (usage: gmem xp [/FMT] ADDR)"],
    ];
    for (const [args, code, message] of cases) {
      assert.deepEqual(await gmem("--mem", mem, "xp", ...args), { code, stdout: "", stderr: `${message}\n` });
    }
  });
});

Deno.test("gmem cli: mtree lists each RAM range in QEMU's info mtree columns with its file offset", async () => {
  await withMemFile(0x3000, [], async (mem) => {
    const r = await gmem("--mem", mem, "-l", "0:0x1000,4G:0x2000", "mtree");
    assert.deepEqual(r, {
      code: 0,
      stdout: [
        `address-space: ${mem}`,
        "  0000000000000000-0000000000000fff (prio 0, ram): ram @0000000000000000",
        "  0000000100000000-0000000100001fff (prio 0, ram): ram @0000000000001000",
        "",
      ].join("\n"),
      stderr: "",
    });
    const j = await gmem("--mem", mem, "-l", "0:0x1000,4G:0x2000", "mtree", "--json");
    assert.deepEqual(JSON.parse(j.stdout), {
      source: mem,
      regions: [
        { start: "0x0", last: "0xfff", size: "0x1000", kind: "ram", name: "ram", fileOffset: "0x0" },
        { start: "0x100000000", last: "0x100001fff", size: "0x2000", kind: "ram", name: "ram", fileOffset: "0x1000" },
      ],
    });
  });
});

Deno.test("gmem tools: a program outside the repository imports renderMap from tools.ts and draws", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gmem-tools-" });
  try {
    const root = new URL("../", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/draw.ts`,
      [
        `import { GuestMemoryMmap } from "${root}mod.ts";`,
        `import { renderMap } from "${root}tools.ts";`,
        "using mem = GuestMemoryMmap.fromRanges([[0, 0x10000], [1n << 32n, 0x10000]]);",
        "const svg = renderMap(mem, { title: 'mine' });",
        "console.log(svg.startsWith('<svg'), svg.includes('mine'));",
      ].join("\n"),
    );
    const r = await runIn(dir, ["run", "--no-prompt", "--allow-ffi", "--allow-read", "--allow-env", "draw.ts"]);
    assert.deepEqual(r, { code: 0, stdout: "true true\n", stderr: "" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gmem cli: deno task gmem run from another directory reads and writes paths relative to that directory", async () => {
  await withMemFile(0x1000, [[0, new TextEncoder().encode("here")]], async (_mem, dir) => {
    const dump = await gmemTask(dir, "--mem", "ram", "hexdump", "0", "4");
    assert.deepEqual(dump, {
      code: 0,
      stdout: "0x0000000000000000  68 65 72 65                                       |here|\n",
      stderr: "",
    });
    const start = await gmemTask(dir, "--mem", "ram", "dirty", "start", "--session", "s.dirty", "--json");
    assert.equal(start.code, 0, start.stderr);
    assert.equal(JSON.parse(start.stdout).session, "s.dirty");
    assert.equal((await Deno.stat(`${dir}/s.dirty`)).isFile, true);
    const save = await gmemTask(dir, "--mem", "ram", "save", "0", "4", "copy.bin", "--quiet");
    assert.equal(save.code, 0, save.stderr);
    assert.equal(await Deno.readTextFile(`${dir}/copy.bin`), "here");
  });
});

Deno.test("gmem cli: only the gmem task's GMEM_TASK_CWD moves the tool, not an INIT_CWD npm left behind", async () => {
  await withMemFile(0x1000, [], async (_mem, dir) => {
    const elsewhere = await Deno.makeTempDir({ prefix: "gmem-elsewhere-" });
    try {
      const npm = await gmemAt({ cwd: elsewhere, env: { INIT_CWD: dir } }, "--mem", "ram", "read", "u8", "0");
      assert.deepEqual(npm, { code: 2, stdout: "", stderr: "gmem read: --mem ram names no file\n" });
      const task = await gmemAt({ cwd: elsewhere, env: { GMEM_TASK_CWD: dir } }, "--mem", "ram", "read", "u8", "0");
      assert.deepEqual(task, { code: 0, stdout: "0x00\n", stderr: "" });
      const gone = await gmemAt({ cwd: elsewhere, env: { GMEM_TASK_CWD: `${dir}/gone` } }, "--version");
      assert.equal(gone.code, 2);
      assert.match(
        gone.stderr,
        new RegExp(
          `^gmem: GMEM_TASK_CWD names the directory deno task was run from, ${dir}/gone, which cannot be entered \\(`,
        ),
      );
    } finally {
      await Deno.remove(elsewhere, { recursive: true });
    }
  });
});

/** PATH without any directory that holds a `deno`, as for a user who has Deno only through npx. */
function pathWithoutDeno(): string {
  return (Deno.env.get("PATH") ?? "").split(":").filter((d) => {
    try {
      Deno.statSync(`${d}/deno`);
      return false;
    } catch {
      return d !== "";
    }
  }).join(":");
}

Deno.test("gmem cli: the launcher deno task install writes runs gmem with Deno from npx, or with an installed deno", async () => {
  await withMemFile(0x1000, [[0, Uint8Array.of(0x5a)]], async (_mem, dir) => {
    const inst = await denoTask(dir, "install", "--dir", "bin");
    assert.deepEqual(inst, {
      code: 0,
      stdout: `installed ${dir}/bin/gmem; run gmem --help (${dir}/bin must be on PATH)\n`,
      stderr: "",
    });
    const viaNpx = await runProgram(`${dir}/bin/gmem`, ["--mem", "ram", "read", "u8", "0"], {
      cwd: dir,
      env: { PATH: pathWithoutDeno() },
    });
    assert.deepEqual(viaNpx, { code: 0, stdout: "0x5a\n", stderr: "" });
    // An installed deno is preferred: this one says so, then runs the real one.
    await Deno.mkdir(`${dir}/denobin`);
    await Deno.writeTextFile(
      `${dir}/denobin/deno`,
      `#!/bin/sh\necho "installed deno"\nexec '${Deno.execPath()}' "$@"\n`,
      { mode: 0o755 },
    );
    const viaDeno = await runProgram(`${dir}/bin/gmem`, ["--mem", "ram", "read", "u8", "0"], {
      cwd: dir,
      env: { PATH: `${dir}/denobin:${pathWithoutDeno()}` },
    });
    assert.deepEqual(viaDeno, { code: 0, stdout: "installed deno\n0x5a\n", stderr: "" });
  });
});
