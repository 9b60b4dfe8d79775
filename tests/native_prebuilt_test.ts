/**
 * The library needs no C compiler: its native helper ships prebuilt for x86_64 and aarch64 Linux
 * in native/prebuilt/, each library held to the source it was built from (native/prebuilt/
 * manifest.json, written by `deno task build`). These tests check that record against the files,
 * rebuild where the recorded compiler is installed and compare bytes, and run the core in a child
 * whose PATH has no compiler at all.
 * @module
 */

import assert from "node:assert/strict";
import { NativeLibraryError } from "../mod.ts";
import { LIBRARY_ENV, libraryPath, loadFailure, PREBUILT_TARGETS } from "../src/ffi/binding_common.ts";
import { HOLD_SYMBOLS, loadBunBinding } from "../src/ffi/bun_binding.ts";
import { loadDenoBinding, SYMBOLS } from "../src/ffi/deno_binding.ts";
import { compile, findCompiler, FLAGS, PREBUILT, readManifest, ROOT, SOURCE, TARGETS } from "../native/build.ts";
import { sha256Hex } from "../native/build.ts";

const CHILD = new URL("./fixtures/no_compiler_child.ts", import.meta.url);
const manifest = await readManifest();
const sourceBytes = await Deno.readFile(new URL(SOURCE, ROOT));

function prebuilt(target: string): Promise<Uint8Array<ArrayBuffer>> {
  return Deno.readFile(new URL(`${target}/libgmem.so`, PREBUILT));
}

/** Runs the child fixture with `flags`, `env` added to this process's environment; its JSON line. */
async function child(mode: string, flags: string[], env: Record<string, string>): Promise<unknown> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-ffi", "--allow-read", ...flags, CHILD.href, mode],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", RUST_BACKTRACE: "0", ...env },
  }).output();
  const stdout = new TextDecoder().decode(out.stdout), stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `child ${mode} failed:\n${stdout}\n${stderr}`);
  return JSON.parse(stdout.trim());
}

/** The NativeLibraryError that `fn` throws (anything else fails the test). */
function thrown(fn: () => unknown): NativeLibraryError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof NativeLibraryError, `expected a NativeLibraryError, got ${e}`);
    return e;
  }
  assert.fail("expected a NativeLibraryError, nothing was thrown");
}

Deno.test("native prebuilt: the manifest records a build of today's native/gmem.c for each target, and the files match it", async () => {
  assert.deepEqual(Object.keys(manifest.targets).sort(), [...PREBUILT_TARGETS].sort());
  assert.deepEqual(Object.keys(TARGETS).sort(), [...PREBUILT_TARGETS].sort());
  const source = await sha256Hex(sourceBytes);
  for (const target of PREBUILT_TARGETS) {
    const record = manifest.targets[target];
    const bytes = await prebuilt(target);
    assert.equal(
      record.sourceSha256,
      source,
      `${target}: native/gmem.c changed since its helper was built; run \`deno task build\``,
    );
    assert.deepEqual(record.flags, FLAGS, `${target}: built with other flags`);
    assert.equal(record.file, `${target}/libgmem.so`);
    assert.equal(record.bytes, bytes.length, `${target}: the library is not the one recorded`);
    assert.equal(record.sha256, await sha256Hex(bytes), `${target}: the library is not the one recorded`);
  }
});

for (const target of PREBUILT_TARGETS) {
  const cc = await findCompiler(target);
  const recorded = manifest.targets[target]?.compiler;
  const why = cc === undefined
    ? `no compiler for ${target} here`
    : cc.version !== recorded
    ? `${cc.command} is ${cc.version}, the helper was built with ${recorded}`
    : undefined;
  Deno.test({
    name: `native prebuilt: rebuilding native/gmem.c for ${target} with the recorded compiler gives the shipped bytes` +
      (why ? ` (ignored: ${why})` : ""),
    ignore: why !== undefined,
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: "gmem-prebuilt-" });
      try {
        const out = new URL(`file://${dir}/libgmem.so`);
        await compile(cc!.command, out);
        const again = await Deno.readFile(out);
        assert.equal(await sha256Hex(again), manifest.targets[target].sha256);
        assert.deepEqual(again, await prebuilt(target));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

/** What tests/fixtures/prebuilt_smoke.c prints for a working helper, on every target. */
const SMOKE = [
  "page 4096",
  "map 0 aligned 1 fd -1",
  "prot rw 3 guard 0",
  "protect 0 prot 1",
  "memfd map 0 fd>2 1 fstat 0 size 8192 regular 1 accmode 2",
  "socketpair 0",
  "send 5",
  "recv 5 memfd fd>2 1 unused -1",
  "received fstat 0 size 8192",
  "writev 17",
  "readv 17 through the memfd",
  "pwritev 17",
  "preadv 17 through the memfd",
  "memfd_create fd>2 1 fstat 0 size 12288 dup>fd 1",
  "open /dev/zero fd>2 1",
  "open file fd>2 1 size 12 accmode 2 blocksize>0 1",
  "file_info 0 size 12 mode 644",
  "open dir -19",
  "close bad -9 Bad file descriptor",
  "unmap unaligned -22",
  "epoll ctl 0 wait 1 fd match 1 events 1",
  "hold refs 2",
  "hold refs after release 1",
];

/** How to run a program built for `target` here: directly, under qemu-user, or not at all (why). */
async function runnerFor(target: string): Promise<{ compiler: string; prefix: string[] } | string> {
  const cc = await findCompiler(target);
  if (cc === undefined) return `no compiler for ${target}`;
  if (TARGETS[target].hostArch === Deno.build.arch) return { compiler: cc.command, prefix: [] };
  const cpu = TARGETS[target].hostArch;
  try {
    const q = await new Deno.Command(`qemu-${cpu}`, { args: ["--version"], stdout: "null", stderr: "null" }).output();
    if (!q.success) return `qemu-${cpu} does not run`;
  } catch {
    return `no qemu-${cpu} (Debian: qemu-user)`;
  }
  return { compiler: cc.command, prefix: [`qemu-${cpu}`, "-L", `/usr/${cpu}-linux-gnu`] };
}

for (const target of PREBUILT_TARGETS) {
  const runner = await runnerFor(target);
  Deno.test({
    name:
      `native prebuilt: the ${target} helper maps, passes a memfd, moves vectors, stats files and fails with errno` +
      (typeof runner === "string" ? ` (ignored: ${runner})` : ""),
    ignore: typeof runner === "string",
    fn: async () => {
      if (typeof runner === "string") return;
      const dir = await Deno.makeTempDir({ prefix: "gmem-smoke-" });
      try {
        const exe = `${dir}/prebuilt_smoke`;
        const src = decodeURIComponent(new URL("./fixtures/prebuilt_smoke.c", import.meta.url).pathname);
        const built = await new Deno.Command(runner.compiler, {
          args: ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", exe, src, "-ldl"],
          stderr: "piped",
        }).output();
        assert.equal(built.code, 0, new TextDecoder().decode(built.stderr));
        await Deno.mkdir(`${dir}/files`);
        const lib = decodeURIComponent(new URL(`${target}/libgmem.so`, PREBUILT).pathname);
        const [command, ...args] = [...runner.prefix, exe, lib, `${dir}/files`];
        const run = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped" }).output();
        assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
        assert.deepEqual(new TextDecoder().decode(run.stdout).trimEnd().split("\n"), SMOKE);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test("native prebuilt: each helper asks for nothing newer than glibc 2.17", async () => {
  for (const target of PREBUILT_TARGETS) {
    const text = new TextDecoder("latin1").decode(await prebuilt(target));
    const versions = [...text.matchAll(/GLIBC_2\.(\d+)/g)].map((m) => Number(m[1]));
    assert.ok(versions.length > 0, `${target}: no glibc version references found`);
    const newest = Math.max(...versions);
    assert.ok(newest <= 17, `${target}: needs GLIBC_2.${newest}`);
  }
});

Deno.test("native prebuilt: each helper exports every symbol the Deno and Bun bindings declare, and no bench loop", async () => {
  const declared = [...Object.keys(SYMBOLS), ...Object.keys(HOLD_SYMBOLS)];
  assert.ok(declared.includes("gm_map") && declared.includes("gm_hold_deallocator"));
  for (const target of PREBUILT_TARGETS) {
    const text = new TextDecoder("latin1").decode(await prebuilt(target));
    const missing = declared.filter((name) => !text.includes(`\0${name}\0`));
    assert.deepEqual(missing, [], `${target}: symbols missing`);
    assert.equal(text.includes("gm_bench_"), false, `${target}: benchmark code is in the library users load`);
  }
  assert.equal(Object.keys(SYMBOLS).some((name) => name.startsWith("gm_bench_")), false);
});

Deno.test("native prebuilt: with no compiler on PATH, a child maps, shares a memfd over a socket, moves vectors, protects and reports errno", async () => {
  const empty = await Deno.makeTempDir({ prefix: "gmem-no-cc-path-" });
  try {
    const report = await child("core", ["--allow-write", "--allow-env=PATH"], { PATH: empty });
    assert.deepEqual(report, {
      library: `native/prebuilt/linux-${Deno.build.arch}/libgmem.so`,
      ccOnPath: false,
      anonymous: "anonymous",
      sent: 5,
      received: "memfd",
      receivedDescriptor: true,
      peerSees: "shared bytes",
      writev: 12,
      readv: 12,
      readBack: "shared bytes",
      protectedProt: 1,
      closeBadFd: -9,
      strerror: "Bad file descriptor",
      missingFile: {
        class: "SyscallError",
        kind: "Syscall",
        message:
          "MmapRegion.fromFile: open(path=/nonexistent/gmem-no-cc.img, mode=O_RDWR) failed: ENOENT (No such file or directory)",
      },
    });
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("native prebuilt: GMEM_NATIVE_LIB, when the environment may be read, names the helper to load instead", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gmem-own-helper-" });
  try {
    const own = `${dir}/libgmem.so`;
    await Deno.writeFile(own, await prebuilt(`linux-${Deno.build.arch}`));
    assert.deepEqual(await child("library", [`--allow-env=${LIBRARY_ENV}`], { [LIBRARY_ENV]: own }), { library: own });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "native prebuilt: on Deno without --allow-env, GMEM_NATIVE_LIB is not read and the prebuilt helper loads",
  ignore: "Bun" in globalThis, // Bun has no permissions: it always reads the environment
  fn: async () => {
    assert.deepEqual(await child("library", [], { [LIBRARY_ENV]: "/nonexistent/libgmem.so" }), {
      library: `native/prebuilt/linux-${Deno.build.arch}/libgmem.so`,
    });
  },
});

Deno.test("native prebuilt: a helper that does not load is a NativeLibraryError saying what to do", () => {
  const load = "Bun" in globalThis ? loadBunBinding : loadDenoBinding;
  const own = "/nonexistent/gmem/libgmem.so";
  const err = thrown(() => load(own));
  assert.equal(err.path, own);
  assert.ok(err.message.startsWith(`load: cannot load the native helper ${own}: `), err.message);
  assert.ok(
    err.message.endsWith(
      `. GMEM_NATIVE_LIB names this file: point it at a libgmem.so built from native/gmem.c, ` +
        `or unset it to use the prebuilt helper`,
    ),
    err.message,
  );

  assert.equal(
    loadFailure("libgmem.so: cannot open shared object file", false),
    "libgmem.so: cannot open shared object file. The prebuilt helper ships in native/prebuilt/ of the package: " +
      "reinstall it, or rebuild it with `deno task build`, or set GMEM_NATIVE_LIB to the path of a libgmem.so " +
      "built from native/gmem.c (cc -O2 -shared -fPIC); Deno reads it only with --allow-env",
  );

  const other = thrown(() => libraryPath(undefined, "darwin", "aarch64"));
  assert.equal(other.path, "native/prebuilt/darwin-aarch64/libgmem.so");
  assert.equal(
    other.message,
    "load: cannot load the native helper native/prebuilt/darwin-aarch64/libgmem.so: no prebuilt helper ships for " +
      "darwin-aarch64 (only linux-x86_64, linux-aarch64); build native/gmem.c for this host and set GMEM_NATIVE_LIB " +
      "to its path (Deno reads it only with --allow-env)",
  );
  assert.equal(libraryPath(own, "darwin", "aarch64"), own);
  assert.ok(libraryPath(undefined, "linux", "arm64").endsWith("/native/prebuilt/linux-aarch64/libgmem.so"));
  assert.ok(libraryPath(undefined, "linux", "x64").endsWith("/native/prebuilt/linux-x86_64/libgmem.so"));
});
