/**
 * `vhost-user-blk`: serves a raw disk image to a QEMU guest as a vhost-user-blk device, with or
 * without the guest's IOMMU. Run `deno task vhost-user-blk --help`.
 *
 * @example
 * ```sh
 * deno task vhost-user-blk --socket /tmp/blk.sock --image disk.img
 * qemu-system-x86_64 ... -chardev socket,id=c0,path=/tmp/blk.sock \
 *   -device vhost-user-blk-pci,chardev=c0,iommu_platform=on,ats=on
 * ```
 * @module
 */

import process from "node:process";
import { GuestMemoryError } from "../../../mod.ts";
import { closeIoFile, type IoFile, openIoFile } from "../../../vhost_user.ts";
import {
  COMMON_OPTIONS,
  EXIT_FAILED,
  parseBackendArgs,
  runBackend,
  UsageError,
} from "../vhost_user_common/backend_cli.ts";
import { SECTOR } from "./blk_config.ts";
import { BlkDevice } from "./blk_device.ts";

const NAME = "vhost-user-blk";
const OPTIONS = [
  { name: "image", value: "FILE", help: "the raw disk image (its size is the disk's; a multiple of 512 bytes)" },
  { name: "read-only", help: "refuse writes (the guest sees a read-only disk)" },
  { name: "serial", value: "ID", help: "what the guest reads as the disk's id (at most 20 bytes)" },
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
    "a vhost-user block device back-end over a raw image file",
    "--socket PATH --image FILE [options]",
    OPTIONS,
    (opts) => {
      if (opts.image === undefined) throw new UsageError("--image FILE is required");
      if (opts.serial !== undefined && new TextEncoder().encode(opts.serial).length > 20) {
        throw new UsageError(`--serial ${opts.serial} is longer than 20 bytes`);
      }
    },
  );
  if (typeof args === "number") return args;
  const { opts, queueSize, missTimeoutMs } = args;
  const imagePath = opts.image!;
  const readOnly = opts["read-only"] === "true";
  let image: IoFile;
  try {
    image = openIoFile(imagePath, !readOnly);
  } catch (e) {
    console.error(`${NAME}: ${e instanceof GuestMemoryError ? e.message : String(e)}`);
    return EXIT_FAILED;
  }
  if (image.size < SECTOR || image.size % SECTOR !== 0) {
    closeIoFile(image.fd);
    console.error(`${NAME}: ${imagePath} is ${image.size} bytes, not a positive multiple of ${SECTOR}`);
    return EXIT_FAILED;
  }
  const device = new BlkDevice(image, { maxQueueSize: queueSize, readOnly, serial: opts.serial });
  const mib = image.size / 2 ** 20;
  return await runBackend({
    name: NAME,
    device,
    serving: `${imagePath} (${Number.isInteger(mib) ? mib : mib.toFixed(2)} MiB, ${device.sectors} sectors, ${
      readOnly ? "read-only" : "read-write"
    })`,
    deviceCounters: () => device.counters,
    socket: opts.socket!,
    once: opts.once === "true",
    json: opts.json === "true",
    verbose: opts.verbose === "true",
    missTimeoutMs,
    cleanup: () => closeIoFile(image.fd),
  });
}

if (import.meta.main) process.exit(await main(process.argv.slice(2)));
