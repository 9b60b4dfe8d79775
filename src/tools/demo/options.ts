/**
 * The demo's command line: `--out DIR`, `--quiet`, `--help`.
 * @module
 */

/** What the demo was asked to do. */
export interface DemoOptions {
  /** Where the picture goes; a new temporary directory when absent. */
  out: string | undefined;
  /** Print only the summary and the files written. */
  quiet: boolean;
  /** Print the help text and exit. */
  help: boolean;
}

/** The help text. */
export const HELP = `gmem demo: a block device doing DMA through an IOMMU, on real memory

  deno task demo [--out DIR] [--quiet]

A self-contained scenario, step by step: guest RAM in two memfds (one region above 4 GiB), a
guest driver that maps a request, a scattered 16 KiB data buffer and a status byte into I/O
virtual address space, and a device that reads the request through the IOMMU, takes an IOTLB miss
that a vhost-user style front-end answers over a real TCP socket on 127.0.0.1, fills the buffer
from a file with one readv, writes the status, is refused a write to a read-only mapping, loses a
slice when the guest unmaps the buffer, and lists the dirty pages a migration would copy. At the
end it draws the address space (IOVA -> guest physical -> host) as SVG and HTML.

Options:
  --out DIR   write address-space.svg and address-space.html to DIR (created if missing);
              default: a new temporary directory, named at the end
  --quiet     print only the summary lines and the files written
  --help, -h  this text

Permissions (the demo task grants them): --allow-ffi (the memory), --allow-read and
--allow-write (the disk image and the picture), --allow-net=127.0.0.1 (the front-end's socket).`;

/** A bad command line: the message, for exit status 2. */
export class DemoUsageError extends Error {
  /** Makes the error. */
  constructor(message: string) {
    super(message);
    this.name = "DemoUsageError";
  }
}

/**
 * Parses the demo's arguments.
 *
 * @example
 * ```ts
 * import { parseDemoArgs } from "./options.ts";
 * console.log(parseDemoArgs(["--out", "/tmp/x", "--quiet"])); // { out: "/tmp/x", quiet: true, help: false }
 * ```
 * @throws {DemoUsageError} for an unknown option or `--out` without a directory.
 */
export function parseDemoArgs(args: readonly string[]): DemoOptions {
  const options: DemoOptions = { out: undefined, quiet: false, help: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--help" || a === "-h") options.help = true;
    else if (a === "--quiet" || a === "-q") options.quiet = true;
    else if (a === "--out" || a.startsWith("--out=")) {
      const value = a === "--out" ? args[++i] : a.slice("--out=".length);
      if (value === undefined || value === "" || value.startsWith("--")) {
        throw new DemoUsageError("--out needs a directory");
      }
      options.out = value;
    } else {
      throw new DemoUsageError(`unknown argument ${JSON.stringify(a)} (try --help)`);
    }
  }
  return options;
}
