// The package as a user gets it: `npm pack` of the checkout, then fresh projects outside it that
// see only the tarball run README's example. Bun installs it with `bun add`; Deno, which refuses
// TypeScript under node_modules, uses the unpacked tarball through an import map entry (a path
// specifier). The children run with PATH holding only the runtime (so no C compiler), a fresh HOME
// and cache, no GMEM_NATIVE_LIB, and Deno with --allow-ffi only (no read access to the checkout).
import assert from "node:assert/strict";
import { extractExamples } from "./doc_examples/extract.ts";

const ROOT = new URL("../", import.meta.url);
const decoder = new TextDecoder();

/** README's example, as printed on both runtimes (its comments say the same; test:docs checks them). */
const EXPECTED = [
  "cafef00d",
  "4",
  "true false true",
  "true GuestMemoryMmap.readU64: invalid guest address 0xa0000: no region contains it",
  "",
].join("\n");

async function run(cmd: string, args: string[], opts: { cwd: string; env?: Record<string, string> }) {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    env: opts.env,
    clearEnv: opts.env !== undefined,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** The first ts example of README.md: the one a newcomer copies. */
function readmeExample(): string {
  const example = extractExamples("README.md", Deno.readTextFileSync(new URL("README.md", ROOT)))[0];
  assert.ok(example.code.includes('from "@gmem/gmem"'), "README's first example imports @gmem/gmem");
  return example.code;
}

/** A directory holding only `deno` and `bun`, for a PATH with no compiler and no shell on it. */
async function runtimeBin(dir: string): Promise<{ path: string; bun: string; deno: string }> {
  const found = await run("npx", ["-y", "bun@1", "-e", "console.log(process.execPath)"], { cwd: dir });
  assert.equal(found.code, 0, found.stderr);
  const bin = `${dir}/bin`;
  Deno.mkdirSync(bin);
  Deno.symlinkSync(found.stdout.trim(), `${bin}/bun`);
  Deno.symlinkSync(Deno.execPath(), `${bin}/deno`);
  return { path: bin, bun: `${bin}/bun`, deno: `${bin}/deno` };
}

Deno.test("package: package.json and deno.json agree on name, version, license and each exported subpath", () => {
  const npm = JSON.parse(Deno.readTextFileSync(new URL("package.json", ROOT)));
  const deno = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)));
  assert.deepEqual([npm.name, npm.version, npm.license], [deno.name, deno.version, deno.license]);
  assert.equal(npm.license, "Apache-2.0 OR BSD-3-Clause");
  assert.equal(npm.type, "module");
  const denoExports: Record<string, string> = typeof deno.exports === "string" ? { ".": deno.exports } : deno.exports;
  for (const [sub, target] of Object.entries(denoExports)) {
    assert.deepEqual(npm.exports[sub], { types: target, default: target }, `package.json exports ${sub}`);
  }
  for (const [sub, target] of Object.entries(npm.exports as Record<string, { types: string; default: string }>)) {
    assert.equal(target.types, target.default, `${sub}: the TypeScript source is both the types and the code`);
    assert.ok(npm.files.includes(target.default.slice(2)), `${sub}: ${target.default} is packed`);
  }
});

Deno.test({
  name: "package: npm pack's tarball installs in fresh Bun and Deno projects that run README's example",
  // One run covers both runtimes (the children are Bun and Deno); the Bun pass of the suite skips it.
  ignore: "Bun" in globalThis,
  fn: async () => {
    const tmp = Deno.makeTempDirSync({ prefix: "gmem-package-" });
    try {
      const packed = await run("npm", ["pack", "--silent", "--pack-destination", tmp], { cwd: ROOT.pathname });
      assert.equal(packed.code, 0, packed.stderr);
      const tarball = `${tmp}/${packed.stdout.trim().split("\n").at(-1)}`;
      const pkg = JSON.parse(Deno.readTextFileSync(new URL("package.json", ROOT)));
      assert.equal(tarball, `${tmp}/${pkg.name.replace("@", "").replace("/", "-")}-${pkg.version}.tgz`);
      const { path, bun, deno } = await runtimeBin(tmp);
      const env = (home: string) => ({ PATH: path, HOME: home, NO_COLOR: "1" });
      const example = readmeExample();

      // Bun: `bun add` of the tarball in an empty project, then the example.
      const bunApp = `${tmp}/bun-app`;
      Deno.mkdirSync(`${bunApp}/home`, { recursive: true });
      Deno.writeTextFileSync(`${bunApp}/package.json`, JSON.stringify({ name: "app", private: true, type: "module" }));
      Deno.writeTextFileSync(`${bunApp}/example.ts`, example);
      const added = await run(bun, ["add", tarball], { cwd: bunApp, env: env(`${bunApp}/home`) });
      assert.equal(added.code, 0, added.stderr);
      const bunRun = await run(bun, ["example.ts"], { cwd: bunApp, env: env(`${bunApp}/home`) });
      assert.equal(bunRun.stderr, "");
      assert.equal(bunRun.stdout, EXPECTED);
      assert.equal(bunRun.code, 0);

      // Deno: the unpacked tarball in the project, @gmem/gmem and its subpaths mapped to it.
      const denoApp = `${tmp}/deno-app`;
      Deno.mkdirSync(`${denoApp}/vendor`, { recursive: true });
      const untar = await run("tar", ["-xzf", tarball, "-C", `${denoApp}/vendor`], { cwd: denoApp });
      assert.equal(untar.code, 0, untar.stderr);
      Deno.renameSync(`${denoApp}/vendor/package`, `${denoApp}/vendor/gmem`);
      const exports = JSON.parse(Deno.readTextFileSync(`${denoApp}/vendor/gmem/package.json`)).exports;
      const imports: Record<string, string> = {};
      for (const [sub, target] of Object.entries(exports as Record<string, { default: string }>)) {
        imports[sub === "." ? pkg.name : `${pkg.name}/${sub.slice(2)}`] = `./vendor/gmem/${target.default.slice(2)}`;
      }
      Deno.writeTextFileSync(`${denoApp}/deno.json`, JSON.stringify({ imports }));
      Deno.writeTextFileSync(`${denoApp}/example.ts`, example);
      const denoEnv = { ...env(`${denoApp}`), DENO_DIR: `${denoApp}/.deno`, DENO_NO_UPDATE_CHECK: "1" };
      const denoRun = await run(deno, ["run", "--allow-ffi", "example.ts"], { cwd: denoApp, env: denoEnv });
      assert.equal(denoRun.stderr, "");
      assert.equal(denoRun.stdout, EXPECTED);
      assert.equal(denoRun.code, 0);
    } finally {
      Deno.removeSync(tmp, { recursive: true });
    }
  },
});

Deno.test({
  name: "package: deno publish --dry-run succeeds and would ship the library, its docs and licenses, nothing else",
  ignore: "Bun" in globalThis,
  fn: async () => {
    const dry = await run(Deno.execPath(), ["publish", "--dry-run", "--allow-dirty"], {
      cwd: ROOT.pathname,
      env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "", NO_COLOR: "1" },
    });
    const text = dry.stdout + dry.stderr;
    assert.equal(dry.code, 0, text);
    assert.match(text, /Success Dry run complete/);
    assert.doesNotMatch(text, /^warning/m);
    const files = [...text.matchAll(/^\s+(file:\/\/\S+) \(/gm)].map((m) => m[1].slice(ROOT.href.length));
    assert.ok(files.length > 100, `${files.length} files`);
    const top = [...new Set(files.map((f) => f.includes("/") ? `${f.split("/")[0]}/` : f))].sort();
    assert.deepEqual(
      top.filter((f) => !["iommu.ts", "tools.ts"].includes(f)),
      [
        "LICENSE-APACHE",
        "LICENSE-BSD-3-Clause",
        "README.md",
        "deno.json",
        "docs/",
        "mod.ts",
        "native/",
        "src/",
        "vhost_user.ts",
      ],
    );
    assert.deepEqual(files.filter((f) => f.startsWith("native/")), ["native/gmem.c"]);
    assert.deepEqual(files.filter((f) => f.startsWith("docs/") && !f.endsWith(".md")), []);
  },
});
