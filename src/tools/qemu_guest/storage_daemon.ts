/**
 * QEMU's own vhost-user-blk back-end (`qemu-storage-daemon`) serving a raw image on a Unix socket:
 * the native peer a gmem back-end's guest-visible results are compared with. It supports no IOMMU
 * (`iommu_platform=on` is refused by QEMU at start), so it serves guests booted without one.
 * @module
 */

/** A running `qemu-storage-daemon`; disposing it stops it (SIGTERM, then SIGKILL after 5 s). */
export class StorageDaemon implements AsyncDisposable {
  /** The Unix socket QEMU connects to. */
  readonly socket: string;
  readonly #child: Deno.ChildProcess;
  readonly #stderr: Promise<string>;
  #exited = false;

  private constructor(socket: string, child: Deno.ChildProcess) {
    this.socket = socket;
    this.#child = child;
    this.#stderr = new Response(child.stderr).text();
    child.status.then(() => (this.#exited = true), () => (this.#exited = true));
  }

  /**
   * Starts the daemon exporting `image` (writable) on `socket`, and waits until the socket exists.
   * Throws if the daemon exits first or the socket does not appear within `timeoutMs`.
   *
   * @example
   * ```ts ignore
   * await using qsd = await StorageDaemon.start(files.storageDaemon!, "/tmp/disk.img", "/tmp/blk.sock");
   * const extraArgs = qsd.qemuArgs("blk0");
   * ```
   */
  static async start(binary: string, image: string, socket: string, timeoutMs = 10_000): Promise<StorageDaemon> {
    const child = new Deno.Command(binary, {
      args: [
        "--blockdev",
        `driver=file,node-name=disk,filename=${image}`,
        "--export",
        `type=vhost-user-blk,id=exp,node-name=disk,addr.type=unix,addr.path=${socket},writable=on`,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const d = new StorageDaemon(socket, child);
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        if (d.#exited) throw new Error(`qemu-storage-daemon exited: ${(await d.#stderr).trim()}`);
        try {
          await Deno.stat(socket);
          return d;
        } catch (e) {
          if (!(e instanceof Deno.errors.NotFound)) throw e;
        }
        if (Date.now() > deadline) throw new Error(`qemu-storage-daemon: no socket ${socket} after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } catch (e) {
      await d[Symbol.asyncDispose]();
      throw e;
    }
  }

  /** The QEMU arguments attaching this export as a vhost-user-blk-pci device with chardev id `id`. */
  qemuArgs(id: string): string[] {
    return [
      "-chardev",
      `socket,id=${id},path=${this.socket}`,
      "-device",
      `vhost-user-blk-pci,chardev=${id},num-queues=1`,
    ];
  }

  /** What the daemon wrote on stderr (complete once it has stopped). */
  stderr(): Promise<string> {
    return this.#stderr;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill("SIGTERM");
      } catch { /* exited meanwhile */ }
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killLater = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* exited meanwhile */ }
        resolve();
      }, 5_000);
    });
    await Promise.race([this.#child.status.catch(() => {}), killLater]);
    clearTimeout(timer);
    await this.#child.status.catch(() => {});
    await this.#stderr;
  }
}
