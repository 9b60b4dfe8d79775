/**
 * `deno task guest`: a real Linux guest under QEMU whose disk and entropy device are gmem's
 * vhost-user back-ends, narrated: the memory table arriving, the first IOTLB miss, a request's
 * fragments, an invalidation revoking a buffer, the dirty pages, and the address-space picture.
 * `--help` says more.
 * @module
 */

import { runGuestStory } from "./guest_demo/run_story.ts";

const HELP = `guest: boot a real Linux guest on gmem's vhost-user back-ends and narrate its DMA

Usage: deno task guest [--iommu on|off] [--quiet] [--out DIR]

  --iommu on|off  QEMU's Intel IOMMU in strict mode (default on), or none
  --quiet         only the key lines
  --out DIR       where the address-space picture goes (default: a new temporary directory)
  --help          this text

QEMU and the guest kernel come from Debian's packages, fetched once into a cache
(src/tools/qemu_guest/fetch_guest.ts). Exit status 0 when the guest ran every job and nothing was refused.
`;

function parse(args: string[]): { iommu: boolean; quiet: boolean; outDir: string | undefined } | "help" | string {
  const o: { iommu: boolean; quiet: boolean; outDir: string | undefined } = {
    iommu: true,
    quiet: false,
    outDir: undefined,
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--help") return "help";
    if (a === "--quiet") o.quiet = true;
    else if (a === "--iommu" && (args[i + 1] === "on" || args[i + 1] === "off")) o.iommu = args[++i] === "on";
    else if (a === "--out" && i + 1 < args.length) o.outDir = args[++i];
    else return `unknown or incomplete option ${JSON.stringify(a)} (see --help)`;
  }
  return o;
}

const parsed = parse(Deno.args);
if (parsed === "help") {
  console.log(HELP);
  Deno.exit(0);
}
if (typeof parsed === "string") {
  console.error(`guest: ${parsed}`);
  Deno.exit(2);
}
try {
  const outDir = parsed.outDir ?? Deno.makeTempDirSync({ prefix: "gmem-guest-" });
  Deno.exit((await runGuestStory({ ...parsed, outDir })) ? 0 : 1);
} catch (e) {
  console.error(`guest: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
  Deno.exit(1);
}
