/**
 * Reading a guest's serial console: the `GMEM-` lines `init.sh` prints (see its header for the
 * format) and the kernel's own last words (power down, panic), turned into one typed report.
 * @module
 */

/** One job as the console told it. */
export interface GuestJob {
  name: string;
  /** The job's exit status; undefined when the console never showed its end (the guest stopped in it). */
  status: number | undefined;
}

/** What the guest reported on its console. */
export interface GuestReport {
  /** Guest uptime in seconds when `/init` started, and when all jobs had run. */
  initUptime: number | undefined;
  endUptime: number | undefined;
  /** The jobs in the order they started. */
  jobs: GuestJob[];
  /** Every `GMEM-RESULT key=value`; a key reported twice keeps its last value. */
  results: Record<string, string>;
  /** The text of every `GMEM-ERROR` line. */
  errors: string[];
  /** `GMEM-END` was printed: every job ran. */
  ended: boolean;
  /** The kernel printed `reboot: Power down`. */
  poweredOff: boolean;
  /** The kernel printed `Kernel panic`. */
  panicked: boolean;
}

const RESULT = /^GMEM-RESULT ([A-Za-z0-9_]+)=(.*)$/;
const JOB = /^GMEM-JOB (start|end) (\S+)(?: status=(\d+))?$/;
const UPTIME = /^GMEM-(INIT|END) uptime=([0-9.]+)$/;

/**
 * Parses console lines (with or without the serial line's trailing `\r`) into a {@link GuestReport}.
 * Lines that are not the guest's markers are ignored, so the kernel's boot log may surround them.
 *
 * @example
 * ```ts ignore
 * const r = parseConsole(["GMEM-JOB start hello", "GMEM-RESULT iommu=on", "GMEM-JOB end hello status=0"]);
 * r.results.iommu; // "on"
 * r.jobs; // [{ name: "hello", status: 0 }]
 * ```
 */
export function parseConsole(lines: readonly string[]): GuestReport {
  const report: GuestReport = {
    initUptime: undefined,
    endUptime: undefined,
    jobs: [],
    results: {},
    errors: [],
    ended: false,
    poweredOff: false,
    panicked: false,
  };
  for (const raw of lines) {
    const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (!line.startsWith("GMEM-")) {
      if (line.includes("reboot: Power down")) report.poweredOff = true;
      if (line.includes("Kernel panic")) report.panicked = true;
      continue;
    }
    let m: RegExpMatchArray | null;
    if ((m = line.match(RESULT)) !== null) {
      report.results[m[1]] = m[2];
    } else if ((m = line.match(JOB)) !== null) {
      if (m[1] === "start") {
        report.jobs.push({ name: m[2], status: undefined });
      } else {
        const job = report.jobs.findLast((j) => j.name === m![2] && j.status === undefined);
        if (job !== undefined && m[3] !== undefined) job.status = Number(m[3]);
      }
    } else if ((m = line.match(UPTIME)) !== null) {
      if (m[1] === "INIT") report.initUptime = Number(m[2]);
      else {
        report.endUptime = Number(m[2]);
        report.ended = true;
      }
    } else if (line.startsWith("GMEM-ERROR ")) {
      report.errors.push(line.slice("GMEM-ERROR ".length));
    }
  }
  return report;
}
