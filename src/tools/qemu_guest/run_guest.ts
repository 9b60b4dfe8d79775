/**
 * Boots the real guest by hand: fetches what it needs (cached), boots it, shows the console as it
 * comes and then the run's summary. For trying jobs and QEMU devices outside the test suite.
 *
 *   npx -y deno@2 run --allow-all src/tools/qemu_guest/run_guest.ts [options] [-- more QEMU arguments]
 *
 * Exits 0 when the guest powered off after every job succeeded, 1 otherwise, 2 on bad usage or
 * when QEMU or the packages cannot be had.
 * @module
 */

import { bootGuest, GUEST_JOBS, qemuArgs } from "./boot_guest.ts";
import { GuestOptionError, GuestUnavailable } from "./errors.ts";
import { fetchGuest } from "./fetch_guest.ts";

const HELP = `run_guest: boot the gmem test guest under QEMU and show what it reports

Options:
  --job LIST        jobs to run, comma-separated (${GUEST_JOBS.join(", ")}; default hello)
  --iommu on|off    the emulated Intel IOMMU in strict mode, or none (default on)
  --param KEY=VALUE a job parameter, passed as gmem.KEY=VALUE (repeatable; see src/tools/qemu_guest/init.sh)
  --memory MIB      guest RAM (default 256)
  --timeout SECONDS QEMU is killed after this long (default 60)
  --quiet           show only the guest's GMEM- lines, not the kernel's log
  --print-args      print the QEMU command line before booting
  -- ARGS           everything after -- goes to QEMU as it is (e.g. -device virtio-rng-pci)
`;

interface Cli {
  jobs: string[];
  iommu: boolean;
  params: Record<string, string>;
  memoryMiB: number;
  timeoutMs: number;
  quiet: boolean;
  printArgs: boolean;
  extraArgs: string[];
}

function parse(args: string[]): Cli | "help" {
  const cli: Cli = {
    jobs: ["hello"],
    iommu: true,
    params: {},
    memoryMiB: 256,
    timeoutMs: 60_000,
    quiet: false,
    printArgs: false,
    extraArgs: [],
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      if (i + 1 >= args.length) throw new GuestOptionError("run_guest", a, "needs a value");
      return args[++i];
    };
    if (a === "--help" || a === "-h") return "help";
    else if (a === "--job") cli.jobs = value().split(",");
    else if (a === "--iommu") {
      const v = value();
      if (v !== "on" && v !== "off") throw new GuestOptionError("run_guest", a, `${v} is not on or off`);
      cli.iommu = v === "on";
    } else if (a === "--param") {
      const v = value();
      const eq = v.indexOf("=");
      if (eq <= 0) throw new GuestOptionError("run_guest", a, `${v} is not KEY=VALUE`);
      cli.params[v.slice(0, eq)] = v.slice(eq + 1);
    } else if (a === "--memory") cli.memoryMiB = Number(value());
    else if (a === "--timeout") cli.timeoutMs = Number(value()) * 1000;
    else if (a === "--quiet") cli.quiet = true;
    else if (a === "--print-args") cli.printArgs = true;
    else if (a === "--") {
      cli.extraArgs = args.slice(i + 1);
      break;
    } else throw new GuestOptionError("run_guest", a, "unknown option (see --help)");
  }
  return cli;
}

async function main(args: string[]): Promise<number> {
  let cli: Cli | "help";
  try {
    cli = parse(args);
  } catch (e) {
    if (!(e instanceof GuestOptionError)) throw e;
    console.error(e.message);
    return 2;
  }
  if (cli === "help") {
    console.log(HELP);
    return 0;
  }
  try {
    const t0 = performance.now();
    const files = await fetchGuest({ log: (l) => console.error(`fetch: ${l}`) });
    console.error(`fetch: ready in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const options = { files, ...cli, onLine: (l: string) => (!cli.quiet || l.startsWith("GMEM-")) && console.log(l) };
    if (cli.printArgs) console.error([files.qemu, ...qemuArgs(options)].join(" "));
    const run = await bootGuest(options);
    if (run.stderr.trim() !== "") console.error(`qemu stderr: ${run.stderr.trim()}`);
    const ok = run.outcome === "poweroff" && run.jobs.every((j) => j.status === 0);
    console.error(
      `${run.outcome}, QEMU exit ${run.exitCode}, boot to exit ${(run.wallMs / 1000).toFixed(2)} s` +
        ` (init at guest uptime ${run.initUptime ?? "?"} s, end at ${run.endUptime ?? "?"} s)` +
        `; jobs: ${run.jobs.map((j) => `${j.name}=${j.status ?? "unfinished"}`).join(" ") || "none"}`,
    );
    return ok ? 0 : 1;
  } catch (e) {
    if (!(e instanceof GuestUnavailable || e instanceof GuestOptionError)) throw e;
    console.error(e.message);
    return 2;
  }
}

Deno.exit(await main(Deno.args));
