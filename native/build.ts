/**
 * Builds the prebuilt native helpers that ship with gmem, so that users need no C compiler:
 * `native/gmem.c` compiled for each target in {@link TARGETS} into
 * `native/prebuilt/<target>/libgmem.so`, and `native/prebuilt/manifest.json` recording, per
 * target, the SHA-256 of the source it came from, the compiler, the flags and the SHA-256 of the
 * result (tests/native_prebuilt_test.ts holds the files to that record).
 *
 *   deno task build            every target (exit 1 if a target's compiler is missing)
 *   deno task build --target linux-x86_64
 *
 * The x86_64 target needs `x86_64-linux-gnu-gcc` (or `cc` on an x86_64 host), the aarch64 one
 * `aarch64-linux-gnu-gcc` (Debian: `apt-get install gcc-aarch64-linux-gnu`, or `cc` on an aarch64
 * host). A build is reproducible: the same compiler and flags give the same bytes.
 * @module
 */

/** The targets, by the directory name under `native/prebuilt/`: the compilers tried, in order, and the host arch that may use `cc`. */
export const TARGETS: Readonly<Record<string, { readonly compilers: readonly string[]; readonly hostArch: string }>> = {
  "linux-x86_64": { compilers: ["x86_64-linux-gnu-gcc"], hostArch: "x86_64" },
  "linux-aarch64": { compilers: ["aarch64-linux-gnu-gcc"], hostArch: "aarch64" },
};

/** The compiler flags of every target (position-independent shared object, warnings are errors). */
export const FLAGS: readonly string[] = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-shared", "-fPIC"];

/** The source, relative to the repository root. */
export const SOURCE = "native/gmem.c";

/** What the manifest records for one target. */
export interface TargetRecord {
  /** The library, relative to `native/prebuilt/`. */
  readonly file: string;
  /** SHA-256 (hex) of `native/gmem.c` as it was compiled. */
  readonly sourceSha256: string;
  /** The compiler's `--version` line without its program name, e.g. `(Debian 12.2.0-14+deb12u1) 12.2.0`. */
  readonly compiler: string;
  /** The flags used. */
  readonly flags: readonly string[];
  /** SHA-256 (hex) of the library. */
  readonly sha256: string;
  /** Size of the library in bytes. */
  readonly bytes: number;
}

/** `native/prebuilt/manifest.json`. */
export interface Manifest {
  readonly source: string;
  readonly targets: Readonly<Record<string, TargetRecord>>;
}

/** The repository root (this file is in `native/`). */
export const ROOT: URL = new URL("../", import.meta.url);

/** `native/prebuilt/`. */
export const PREBUILT: URL = new URL("native/prebuilt/", ROOT);

/**
 * The SHA-256 of `bytes` in hex.
 *
 * @example
 * ```ts ignore
 * await sha256Hex(new Uint8Array()); // "e3b0c442…"
 * ```
 */
export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The first compiler of `target` that runs, with its version (the `--version` line without the
 * program name), or `undefined` when none is installed.
 *
 * @example
 * ```ts ignore
 * const cc = await findCompiler("linux-x86_64");
 * ```
 */
export async function findCompiler(target: string): Promise<{ command: string; version: string } | undefined> {
  const spec = TARGETS[target];
  const candidates = [...spec.compilers, ...(Deno.build.arch === spec.hostArch ? ["cc"] : [])];
  for (const command of candidates) {
    try {
      const out = await new Deno.Command(command, { args: ["--version"], stdout: "piped", stderr: "null" }).output();
      if (!out.success) continue;
      const first = new TextDecoder().decode(out.stdout).split("\n")[0];
      return { command, version: first.slice(first.indexOf(" ") + 1).trim() };
    } catch {
      continue; // not installed
    }
  }
  return undefined;
}

/**
 * Compiles `native/gmem.c` with `command` into `out` (written beside it first, then renamed, so that
 * a process loading the old library never sees half a file).
 *
 * @example
 * ```ts ignore
 * await compile("cc", new URL("file:///tmp/libgmem.so"));
 * ```
 */
export async function compile(command: string, out: URL): Promise<void> {
  const path = decodeURIComponent(out.pathname);
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}`;
  // Run from the root with the relative source path: the object then names the source the same
  // way wherever the checkout is, which keeps the build reproducible.
  const run = await new Deno.Command(command, {
    args: [...FLAGS, "-o", tmp, SOURCE],
    cwd: decodeURIComponent(ROOT.pathname),
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!run.success) {
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`${command} failed to compile ${SOURCE} (exit ${run.code})`);
  }
  await Deno.rename(tmp, path);
}

/** The manifest as it is on disk, or an empty one. */
export async function readManifest(): Promise<Manifest> {
  try {
    return JSON.parse(await Deno.readTextFile(new URL("manifest.json", PREBUILT))) as Manifest;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { source: SOURCE, targets: {} };
    throw e;
  }
}

async function main(args: string[]): Promise<number> {
  let only: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--target" && i + 1 < args.length && args[i + 1] in TARGETS) only = args[++i];
    else {
      console.error(`usage: deno task build [--target ${Object.keys(TARGETS).join("|")}]`);
      return 2;
    }
  }
  const sourceSha256 = await sha256Hex(await Deno.readFile(new URL(SOURCE, ROOT)));
  const manifest = await readManifest();
  const targets: Record<string, TargetRecord> = { ...manifest.targets };
  let missing = 0;
  for (const target of Object.keys(TARGETS)) {
    if (only !== undefined && target !== only) continue;
    const cc = await findCompiler(target);
    if (cc === undefined) {
      const names = [...TARGETS[target].compilers, "cc"].join(" or ");
      console.error(`${target}: no compiler (${names}); its prebuilt helper was left as it was`);
      missing++;
      continue;
    }
    const dir = new URL(`${target}/`, PREBUILT);
    await Deno.mkdir(dir, { recursive: true });
    const out = new URL("libgmem.so", dir);
    await compile(cc.command, out);
    const bytes = await Deno.readFile(out);
    targets[target] = {
      file: `${target}/libgmem.so`,
      sourceSha256,
      compiler: cc.version,
      flags: FLAGS,
      sha256: await sha256Hex(bytes),
      bytes: bytes.length,
    };
    console.log(`${target}: ${bytes.length} bytes with ${cc.command} ${cc.version}`);
  }
  const sorted = Object.fromEntries(Object.keys(targets).sort().map((k) => [k, targets[k]]));
  await Deno.writeTextFile(
    new URL("manifest.json", PREBUILT),
    JSON.stringify({ source: SOURCE, targets: sorted }, null, 2) + "\n",
  );
  return missing === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
