/**
 * The guest's initramfs: busybox, the virtio modules and `init.sh` as `/init`, packed with busybox's
 * own `cpio -H newc` and `gzip` (so the host needs neither), and cached under a name derived from
 * everything that goes in, so that editing `init.sh` makes a new one and nothing else does.
 * @module
 */

import { hostCommand, lastLine } from "./host_command.ts";

/** The virtio modules the guest loads, in the order `init.sh` loads them (each after those it needs). */
export const GUEST_MODULES: readonly string[] = [
  "virtio_ring",
  "virtio",
  "virtio_pci_modern_dev",
  "virtio_pci_legacy_dev",
  "virtio_pci",
  "virtio_blk",
  "virtio-rng",
];

/** What goes into the initramfs. */
export interface InitramfsInputs {
  /** The static busybox binary. */
  busybox: string;
  /** A folder holding `<module>.ko` for each of {@link GUEST_MODULES}. */
  modulesDir: string;
  /** Kernel release and busybox version: part of the cache key, as they decide the contents. */
  kernelRelease: string;
  busyboxVersion: string;
}

const INIT_SCRIPT = new URL("./init.sh", import.meta.url);

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function cacheKey(init: Uint8Array, inputs: InitramfsInputs): Promise<string> {
  const text = new TextEncoder().encode(
    `${inputs.kernelRelease}\0${inputs.busyboxVersion}\0${GUEST_MODULES.join(",")}\0`,
  );
  const all = new Uint8Array(text.length + init.length);
  all.set(text);
  all.set(init, text.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...digest.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function must(what: string, cmd: string, args: readonly string[], cwd?: string): Promise<void> {
  const r = await hostCommand("buildInitramfs", cmd, args, { cwd, timeoutMs: 60_000 });
  if (r.code !== 0 || r.timedOut) {
    throw new Error(`buildInitramfs: ${what} failed (exit ${r.code}): ${lastLine(r.stderr)}`);
  }
}

/**
 * Returns the path of the initramfs for `inputs` in `cacheDir`, building it first if it is not
 * there. Building writes a temporary file and renames it, so concurrent runs never see half of one.
 *
 * @example
 * ```ts ignore
 * const initrd = await buildInitramfs(cacheDir, { busybox, modulesDir, kernelRelease, busyboxVersion });
 * ```
 */
export async function buildInitramfs(cacheDir: string, inputs: InitramfsInputs): Promise<string> {
  const init = await Deno.readFile(INIT_SCRIPT);
  const target = `${cacheDir}/initrd-${await cacheKey(init, inputs)}.cpio.gz`;
  if (await exists(target)) return target;

  const work = await Deno.makeTempDir({ dir: cacheDir, prefix: ".initrd-" });
  try {
    const root = `${work}/root`;
    await Deno.mkdir(`${root}/bin`, { recursive: true });
    await Deno.mkdir(`${root}/lib/modules`, { recursive: true });
    await Deno.writeFile(`${root}/bin/busybox`, await Deno.readFile(inputs.busybox));
    await Deno.writeFile(`${root}/init`, init);
    for (const m of GUEST_MODULES) {
      await Deno.writeFile(`${root}/lib/modules/${m}.ko`, await Deno.readFile(`${inputs.modulesDir}/${m}.ko`));
    }
    const bb = inputs.busybox;
    await must("chmod", bb, ["chmod", "0755", `${root}/bin/busybox`, `${root}/init`]);
    // The kernel unpacks the archive as it finds it: the listing starts at "." so paths stay relative.
    await must("cpio", "sh", ["-c", '"$1" find . | "$1" cpio -o -H newc >"$2"', "sh", bb, `${work}/initrd.cpio`], root);
    await must("gzip", bb, ["gzip", "-9", `${work}/initrd.cpio`]);
    try {
      await Deno.rename(`${work}/initrd.cpio.gz`, target);
    } catch (e) {
      // Another run renamed the same contents there first.
      if (!(await exists(target))) throw e;
    }
    return target;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}
