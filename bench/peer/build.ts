/**
 * Gets the vm-memory program ready: the crates from Debian's packages (fetch_crates.sh, cached),
 * a cargo new enough for them (rangemap needs rustc 1.81), and an offline release build whose
 * target directory sits in the same cache, outside the repository.
 * @module
 */

const decoder = new TextDecoder();
const HERE = new URL(".", import.meta.url).pathname;
const MIN_CARGO: readonly [number, number] = [1, 81];

/** The crate or a toolchain cannot be had; the message says why. */
export class PeerUnavailableError extends Error {
  override name = "PeerUnavailableError";
}

/** What was built, and with what. */
export interface PeerBuild {
  program: string;
  cargo: string;
  cargoVersion: string;
  rustcVersion: string;
  /** The vm-memory version in the directory source, e.g. "0.18.0". */
  vmMemory: string;
}

function runSync(cmd: string, args: string[]): { ok: boolean; out: string } | undefined {
  try {
    const r = new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).outputSync();
    return { ok: r.success, out: decoder.decode(r.stdout).trim() };
  } catch {
    return undefined; // not installed
  }
}

function versionAtLeast(text: string, min: readonly [number, number]): boolean {
  const m = /(\d+)\.(\d+)\.\d+/.exec(text);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > min[0] || (major === min[0] && minor >= min[1]);
}

/** $CARGO, then rustup's cargo, then whatever `cargo` is on PATH (bookworm's cargo-web is 1.85). */
function findCargo(): { cargo: string; version: string } {
  const home = Deno.env.get("HOME");
  const candidates = [Deno.env.get("CARGO"), home && `${home}/.cargo/bin/cargo`, "cargo"];
  const seen: string[] = [];
  for (const c of candidates) {
    if (!c) continue;
    const r = runSync(c, ["-V"]);
    if (!r?.ok) continue;
    if (versionAtLeast(r.out, MIN_CARGO)) return { cargo: c, version: r.out };
    seen.push(`${c}: ${r.out}`);
  }
  throw new PeerUnavailableError(
    `no cargo >= ${MIN_CARGO.join(".")} (rangemap, which vm-memory's iommu feature needs, requires it)` +
      (seen.length ? `; found ${seen.join(", ")}` : "") +
      ". Install one (on Debian bookworm: apt-get install cargo-web rustc-web) or point $CARGO at it.",
  );
}

async function fetchCrates(): Promise<string> {
  const child = new Deno.Command("bash", { args: [`${HERE}fetch_crates.sh`], stdout: "piped", stderr: "inherit" })
    .spawn();
  const { code, stdout } = await child.output();
  if (code !== 0) throw new PeerUnavailableError(`bench/peer/fetch_crates.sh failed (exit ${code}); see above`);
  return decoder.decode(stdout).trim();
}

/**
 * Fetches (or finds cached) crates, then builds the program with cargo, offline.
 *
 * @example
 * ```ts ignore
 * const build = await buildPeer();
 * using peer = new PeerProcess(build.program);
 * ```
 */
export async function buildPeer(): Promise<PeerBuild> {
  const registry = await fetchCrates();
  const { cargo, version: cargoVersion } = findCargo();
  const cache = registry.replace(/\/registry\/?$/, "");
  const targetDir = `${cache}/target`;
  const build = new Deno.Command(cargo, {
    args: [
      "build",
      "--release",
      "--offline",
      "--manifest-path",
      `${HERE}Cargo.toml`,
      "--config",
      'source.crates-io.replace-with="gmem-debian"',
      "--config",
      `source.gmem-debian.directory=${JSON.stringify(registry)}`,
    ],
    env: { CARGO_TARGET_DIR: targetDir },
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const status = await build.status;
  if (!status.success) {
    throw new PeerUnavailableError(`cargo build of bench/peer failed (exit ${status.code}); see above`);
  }

  const dir = cargo.includes("/") ? cargo.slice(0, cargo.lastIndexOf("/") + 1) : "";
  const rustc = runSync(`${dir}rustc`, ["-V"]) ?? runSync("rustc", ["-V"]);
  const vm = [...Deno.readDirSync(registry)].map((e) => /^vm-memory-(.+)$/.exec(e.name)?.[1]).find((v) => v);
  return {
    program: `${targetDir}/release/gmem-peer-bench`,
    cargo,
    cargoVersion,
    rustcVersion: rustc?.out ?? "unknown",
    vmMemory: vm ?? "unknown",
  };
}
