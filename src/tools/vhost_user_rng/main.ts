/**
 * `vhost-user-rng`: serves entropy to a QEMU guest as a vhost-user-rng device (the guest's
 * `/dev/hwrng`), with or without the guest's IOMMU. Run `deno task vhost-user-rng --help`.
 *
 * @example
 * ```sh
 * deno task vhost-user-rng --socket /tmp/rng.sock
 * qemu-system-x86_64 ... -chardev socket,id=r0,path=/tmp/rng.sock \
 *   -device vhost-user-rng-pci,chardev=r0,iommu_platform=on,ats=on
 * ```
 * @module
 */

import process from "node:process";
import { GuestMemoryError } from "../../../mod.ts";
import { closeIoFile, type IoFile, openIoFile } from "../../../vhost_user.ts";
import { COMMON_OPTIONS, EXIT_FAILED, parseBackendArgs, runBackend } from "../vhost_user_common/backend_cli.ts";
import { RngDevice } from "./rng_device.ts";

const NAME = "vhost-user-rng";
const OPTIONS = [
  { name: "source", value: "FILE", help: "where the bytes come from (default /dev/urandom; a file is read in a loop)" },
  ...COMMON_OPTIONS,
];

/**
 * Runs the tool on `argv`; resolves to the exit status.
 *
 * @example
 * ```ts ignore
 * const status = await main(["--help"]);
 * ```
 */
export async function main(argv: readonly string[]): Promise<number> {
  const args = parseBackendArgs(
    argv,
    NAME,
    "a vhost-user entropy device back-end",
    "--socket PATH [--source FILE] [options]",
    OPTIONS,
  );
  if (typeof args === "number") return args;
  const { opts, queueSize, missTimeoutMs } = args;
  const path = opts.source ?? "/dev/urandom";
  let source: IoFile;
  try {
    source = openIoFile(path, false);
  } catch (e) {
    console.error(`${NAME}: ${e instanceof GuestMemoryError ? e.message : String(e)}`);
    return EXIT_FAILED;
  }
  const device = new RngDevice(source, { maxQueueSize: queueSize });
  return await runBackend({
    name: NAME,
    device,
    serving: source.size > 0 ? `${path} (${source.size} bytes, read in a loop)` : path,
    deviceCounters: () => device.counters,
    socket: opts.socket!,
    once: opts.once === "true",
    json: opts.json === "true",
    verbose: opts.verbose === "true",
    missTimeoutMs,
    cleanup: () => closeIoFile(source.fd),
  });
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
