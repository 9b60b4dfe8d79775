/**
 * Fetches what a real guest needs from Debian's packages and keeps it between runs:
 *
 * - QEMU (`qemu-system-x86`, installed with apt-get when missing, as `.ci/run` does), its qboot
 *   firmware and `qemu-storage-daemon`;
 * - the kernel package `linux-image-cloud-amd64` depends on, and `busybox-static`: both taken with
 *   `apt-get download` and unpacked with `dpkg-deb -x` into a scratch folder, never installed;
 *   only the kernel image, the virtio modules and busybox are kept;
 * - the initramfs built from them and `init.sh` (see `initramfs.ts`).
 *
 * The cache is `$GMEM_GUEST_CACHE`, else `$XDG_CACHE_HOME/gmem-guest`, else `~/.cache/gmem-guest`
 * (outside the repository). Once filled it is used without asking apt again; `--refresh` asks.
 *
 * Run by hand: `npx -y deno@2 run --allow-run --allow-read --allow-write --allow-env src/tools/qemu_guest/fetch_guest.ts [--refresh]`
 * @module
 */

import { GuestUnavailable } from "./errors.ts";
import { findOnPath, hostCommand, lastLine } from "./host_command.ts";
import { buildInitramfs, GUEST_MODULES } from "./initramfs.ts";

const OP = "fetchGuest";
/** The meta-package whose dependency names the kernel to take. */
export const KERNEL_META_PACKAGE = "linux-image-cloud-amd64";
const BUSYBOX_PACKAGE = "busybox-static";
const QEMU_PACKAGE = "qemu-system-x86";

/** Where each guest module sits under `lib/modules/<release>/kernel/` in the kernel package. */
const MODULE_DIRS: Readonly<Record<string, string>> = {
  "virtio_ring": "drivers/virtio",
  "virtio": "drivers/virtio",
  "virtio_pci_modern_dev": "drivers/virtio",
  "virtio_pci_legacy_dev": "drivers/virtio",
  "virtio_pci": "drivers/virtio",
  "virtio_blk": "drivers/block",
  "virtio-rng": "drivers/char/hw_random",
};

/** Everything a boot needs, as absolute paths. */
export interface GuestFiles {
  qemu: string;
  /** QEMU's own vhost-user back-end, the native peer; undefined when the package lacks it. */
  storageDaemon: string | undefined;
  /** qboot, the small firmware that boots in a fraction of SeaBIOS's time. */
  qboot: string;
  kernel: string;
  initrd: string;
  /** `uname -r` of the guest kernel, e.g. `6.1.0-50-cloud-amd64`. */
  kernelRelease: string;
  cacheDir: string;
}

/** What the cache holds, written last so that a half-filled cache is never taken for a full one. */
interface Manifest {
  kernelPackage: string;
  kernelRelease: string;
  busyboxVersion: string;
}

/**
 * The cache folder: `$GMEM_GUEST_CACHE`, `$XDG_CACHE_HOME/gmem-guest` or `~/.cache/gmem-guest`.
 *
 * @example
 * ```ts ignore
 * console.log(defaultCacheDir()); // "/root/.cache/gmem-guest"
 * ```
 */
export function defaultCacheDir(): string {
  const explicit = Deno.env.get("GMEM_GUEST_CACHE");
  if (explicit) return explicit;
  const xdg = Deno.env.get("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/gmem-guest`;
  const home = Deno.env.get("HOME");
  if (!home) throw new GuestUnavailable(OP, "neither GMEM_GUEST_CACHE, XDG_CACHE_HOME nor HOME is set");
  return `${home}/.cache/gmem-guest`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function apt(
  cmd: "apt-get" | "apt-cache",
  args: string[],
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<{ ok: boolean; stdout: string; why: string }> {
  const r = await hostCommand(OP, cmd, args, {
    cwd: options.cwd,
    timeoutMs: options.timeoutMs ?? 300_000,
    env: { DEBIAN_FRONTEND: "noninteractive" },
  });
  const why = `${cmd} ${args.join(" ")}: ${r.timedOut ? "timed out" : lastLine(r.stderr)}`;
  return { ok: r.code === 0 && !r.timedOut, stdout: r.stdout, why };
}

/**
 * apt-get update, at most once per process, after apt failed `because` (a package it does not
 * know, or an old index naming a file the mirror no longer has).
 */
let updated = false;
async function aptUpdate(log: (line: string) => void, because: string): Promise<void> {
  if (updated) throw new GuestUnavailable(OP, because);
  updated = true;
  log(`apt-get update, because ${because}`);
  const u = await apt("apt-get", ["update", "-q"]);
  if (!u.ok) throw new GuestUnavailable(OP, `${because}; then ${u.why}`);
}

async function ensureQemu(log: (line: string) => void): Promise<string> {
  const found = await findOnPath(OP, "qemu-system-x86_64");
  if (found !== undefined) return found;
  log(`installing ${QEMU_PACKAGE}`);
  const install = ["install", "-y", "-q", "--no-install-recommends", QEMU_PACKAGE];
  try {
    let r = await apt("apt-get", install);
    if (!r.ok) {
      await aptUpdate(log, r.why);
      r = await apt("apt-get", install);
    }
    if (!r.ok) throw new GuestUnavailable(OP, r.why);
  } catch (e) {
    if (!(e instanceof GuestUnavailable)) throw e;
    const why = e.message.slice(`${OP}: `.length);
    throw new GuestUnavailable(OP, `qemu-system-x86_64 is not installed, and installing it failed: ${why}`, {
      cause: e,
    });
  }
  const path = await findOnPath(OP, "qemu-system-x86_64");
  if (path === undefined) throw new GuestUnavailable(OP, `${QEMU_PACKAGE} installed no qemu-system-x86_64`);
  return path;
}

/** qboot.rom in one of the folders `qemu -L help` lists (its firmware search path). */
async function findQboot(qemu: string): Promise<string> {
  const r = await hostCommand(OP, qemu, ["-L", "help"], { timeoutMs: 30_000 });
  for (const dir of r.stdout.split("\n").map((l) => l.trim()).filter((l) => l.startsWith("/"))) {
    // new URL() folds the "bin/.." QEMU reports its folders with.
    const path = new URL(`file://${dir}/qboot.rom`).pathname;
    if (await exists(path)) return path;
  }
  throw new GuestUnavailable(OP, `no qboot.rom in QEMU's firmware folders (${qemu} -L help)`);
}

/** The kernel package the meta-package depends on now, e.g. `linux-image-6.1.0-50-cloud-amd64`. */
async function kernelPackage(log: (line: string) => void): Promise<string> {
  for (let attempt = 0;; attempt++) {
    const r = await apt("apt-cache", ["depends", KERNEL_META_PACKAGE], { timeoutMs: 60_000 });
    const m = r.stdout.match(/Depends: (linux-image-[0-9][^\s<>]*)/);
    if (r.ok && m !== null) return m[1];
    const why = r.ok ? `apt-cache names no kernel for ${KERNEL_META_PACKAGE}` : r.why;
    if (attempt > 0) throw new GuestUnavailable(OP, why);
    await aptUpdate(log, why);
  }
}

/** `apt-get download`s `pkg` into the empty folder `dir` and unpacks it into `dir/x`; returns its version. */
async function downloadAndUnpack(pkg: string, dir: string, log: (line: string) => void): Promise<string> {
  const t0 = performance.now();
  let r = await apt("apt-get", ["download", "-q", pkg], { cwd: dir });
  if (!r.ok) {
    await aptUpdate(log, r.why);
    r = await apt("apt-get", ["download", "-q", pkg], { cwd: dir });
  }
  if (!r.ok) throw new GuestUnavailable(OP, r.why);
  // apt names the file <pkg>_<version with ':' escaped>_<arch>.deb; the shell's glob finds it.
  const unpack = await hostCommand(
    OP,
    "sh",
    ["-c", 'set -e; deb=$(echo "$1"_*.deb); dpkg-deb -x "$deb" x; dpkg-deb -f "$deb" Version', "sh", pkg],
    { cwd: dir, timeoutMs: 120_000 },
  );
  if (unpack.code !== 0) {
    throw new GuestUnavailable(OP, `dpkg-deb could not unpack ${pkg}: ${lastLine(unpack.stderr)}`);
  }
  log(`${pkg}: downloaded and unpacked in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return unpack.stdout.trim();
}

/** Moves the finished folder `from` to `to`, unless a concurrent run put one there first. */
async function publish(from: string, to: string): Promise<void> {
  if (await exists(to)) return;
  try {
    await Deno.rename(from, to);
  } catch (e) {
    if (!(await exists(to))) throw e;
  }
}

const kernelDir = (cache: string, release: string) => `${cache}/kernel-${release}`;
const busyboxDir = (cache: string, version: string) => `${cache}/busybox-${version.replace(/[^A-Za-z0-9.+-]/g, "_")}`;

async function cachedManifest(cache: string): Promise<Manifest | undefined> {
  let m: Manifest;
  try {
    m = JSON.parse(await Deno.readTextFile(`${cache}/guest.json`));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof SyntaxError) return undefined;
    throw e;
  }
  const need = [
    `${kernelDir(cache, m.kernelRelease)}/vmlinuz`,
    ...GUEST_MODULES.map((mod) => `${kernelDir(cache, m.kernelRelease)}/${mod}.ko`),
    `${busyboxDir(cache, m.busyboxVersion)}/busybox`,
  ];
  for (const p of need) if (!(await exists(p))) return undefined;
  return m;
}

async function fetchPackages(cache: string, log: (line: string) => void): Promise<Manifest> {
  const pkg = await kernelPackage(log);
  const release = pkg.slice("linux-image-".length);
  const work = await Deno.makeTempDir({ dir: cache, prefix: ".fetch-" });
  try {
    await Deno.mkdir(`${work}/kernel`);
    await downloadAndUnpack(pkg, `${work}/kernel`, log);
    const keep = `${work}/kernel/keep`;
    await Deno.mkdir(keep);
    const unpacked = `${work}/kernel/x`;
    await Deno.rename(`${unpacked}/boot/vmlinuz-${release}`, `${keep}/vmlinuz`);
    for (const m of GUEST_MODULES) {
      const src = `${unpacked}/lib/modules/${release}/kernel/${MODULE_DIRS[m]}/${m}.ko`;
      if (!(await exists(src))) {
        // The package changed shape (e.g. compressed modules): a bug to fix here, not a reason to skip.
        throw new Error(`${OP}: ${pkg} has no ${src.slice(unpacked.length)}`);
      }
      await Deno.rename(src, `${keep}/${m}.ko`);
    }
    await publish(keep, kernelDir(cache, release));

    await Deno.mkdir(`${work}/busybox`);
    const version = await downloadAndUnpack(BUSYBOX_PACKAGE, `${work}/busybox`, log);
    await Deno.mkdir(`${work}/busybox/keep`);
    await Deno.rename(`${work}/busybox/x/bin/busybox`, `${work}/busybox/keep/busybox`);
    await publish(`${work}/busybox/keep`, busyboxDir(cache, version));

    const manifest: Manifest = { kernelPackage: pkg, kernelRelease: release, busyboxVersion: version };
    await Deno.writeTextFile(`${work}/guest.json`, JSON.stringify(manifest, null, 2) + "\n");
    await Deno.rename(`${work}/guest.json`, `${cache}/guest.json`);
    return manifest;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

/**
 * Makes sure QEMU and the guest's files are here, fetching what is missing, and returns their paths.
 * Throws {@link GuestUnavailable} when something cannot be had (no apt, no network, not root for
 * installing QEMU); any other error is a bug.
 *
 * @example
 * ```ts ignore
 * const files = await fetchGuest({ log: console.log });
 * console.log(files.kernel, files.initrd);
 * ```
 */
export async function fetchGuest(
  options: { cacheDir?: string; refresh?: boolean; log?: (line: string) => void } = {},
): Promise<GuestFiles> {
  const log = options.log ?? (() => {});
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const qemu = await ensureQemu(log);
  const qboot = await findQboot(qemu);
  const storageDaemon = await findOnPath(OP, "qemu-storage-daemon");
  await Deno.mkdir(cacheDir, { recursive: true });
  const manifest = (options.refresh ? undefined : await cachedManifest(cacheDir)) ??
    await fetchPackages(cacheDir, log);
  const kdir = kernelDir(cacheDir, manifest.kernelRelease);
  const initrd = await buildInitramfs(cacheDir, {
    busybox: `${busyboxDir(cacheDir, manifest.busyboxVersion)}/busybox`,
    modulesDir: kdir,
    kernelRelease: manifest.kernelRelease,
    busyboxVersion: manifest.busyboxVersion,
  });
  return {
    qemu,
    storageDaemon,
    qboot,
    kernel: `${kdir}/vmlinuz`,
    initrd,
    kernelRelease: manifest.kernelRelease,
    cacheDir,
  };
}

if (import.meta.main) {
  const t0 = performance.now();
  try {
    const files = await fetchGuest({ refresh: Deno.args.includes("--refresh"), log: (l) => console.log(l) });
    console.log(JSON.stringify(files, null, 2));
    console.log(`ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  } catch (e) {
    if (!(e instanceof GuestUnavailable)) throw e;
    console.error(e.message);
    Deno.exit(2);
  }
}
