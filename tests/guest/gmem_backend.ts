/**
 * A gmem vhost-user device tool (`src/tools/vhost_user_blk/main.ts`, `…/vhost_user_rng/main.ts`)
 * running as a child process for a real guest: started with `--once --json`, it serves the one QEMU
 * that connects and then prints its counters, which {@link GmemBackend.finish} returns.
 * @module
 */

/** The counters a tool prints as its JSON line (device and back-end). */
export interface BackendReport {
  name: string;
  device: Record<string, number>;
  backend: {
    connections: number;
    messages: number;
    rejected: number;
    kicks: number;
    calls: number;
    requests: number;
    refused: number;
    iotlbMisses: number;
    iotlbUpdates: number;
    iotlbInvalidations: number;
    iotlbRejected: number;
  };
}

const TOOLS = {
  blk: new URL("../../src/tools/vhost_user_blk/main.ts", import.meta.url).pathname,
  rng: new URL("../../src/tools/vhost_user_rng/main.ts", import.meta.url).pathname,
} as const;

/** A running device tool; disposing it kills it if it is still running. */
export class GmemBackend implements AsyncDisposable {
  /** The socket QEMU connects to. */
  readonly socket: string;
  /** Which device. */
  readonly kind: "blk" | "rng";
  readonly #child: Deno.ChildProcess;
  readonly #stdout: Promise<string>;
  readonly #stderr: Promise<string>;
  #exited = false;

  private constructor(kind: "blk" | "rng", socket: string, child: Deno.ChildProcess, rest: Promise<string>) {
    this.kind = kind;
    this.socket = socket;
    this.#child = child;
    this.#stdout = rest;
    this.#stderr = new Response(child.stderr).text();
    child.status.then(() => (this.#exited = true), () => (this.#exited = true));
  }

  /**
   * Starts the tool for `kind` with `args` (plus `--socket`, `--once`, `--json`) and waits for its
   * start-up line; throws with its stderr if it exits first.
   *
   * @example
   * ```ts ignore
   * await using blk = await GmemBackend.start("blk", `${dir}/blk.sock`, ["--image", `${dir}/disk.img`]);
   * ```
   */
  static async start(kind: "blk" | "rng", socket: string, args: string[]): Promise<GmemBackend> {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        "--allow-ffi",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        TOOLS[kind],
        "--socket",
        socket,
        "--once",
        "--json",
        ...args,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const rest = (async () => {
      let more = text.slice(text.indexOf("\n") + 1);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return more;
        more += value;
      }
    })();
    const b = new GmemBackend(kind, socket, child, rest);
    if (!text.includes(": serving ")) {
      await b[Symbol.asyncDispose]();
      throw new Error(`vhost-user-${kind} did not start: ${text.trim()} ${(await b.#stderr).trim()}`);
    }
    return b;
  }

  /** QEMU's arguments attaching this back-end as chardev `id`, behind the IOMMU or not. */
  qemuArgs(id: string, iommu: boolean): string[] {
    const platform = iommu ? ",iommu_platform=on,ats=on" : "";
    const device = this.kind === "blk"
      ? `vhost-user-blk-pci,chardev=${id},num-queues=1,disable-legacy=on${platform}`
      : `vhost-user-rng-pci,chardev=${id}${platform}`;
    return ["-chardev", `socket,id=${id},path=${this.socket}`, "-device", device];
  }

  /**
   * Waits for the tool to exit (it does once QEMU disconnected, or after `timeoutMs` it is killed)
   * and returns its counters, with its exit code and stderr for messages.
   */
  async finish(
    timeoutMs = 10_000,
  ): Promise<{ report: BackendReport | undefined; code: number; stdout: string; stderr: string }> {
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }, timeoutMs);
    const status = await this.#child.status;
    clearTimeout(timer);
    const stdout = await this.#stdout, stderr = await this.#stderr;
    const line = stdout.split("\n").find((l) => l.startsWith("{"));
    return { report: line === undefined ? undefined : JSON.parse(line), code: status.code, stdout, stderr };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGKILL");
      } catch { /* exited meanwhile */ }
    }
    await this.#child.status.catch(() => {});
    await this.#stdout.catch(() => "");
    await this.#stderr.catch(() => "");
  }
}
