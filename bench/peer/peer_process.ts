/**
 * The vm-memory program as a child process driven synchronously, so that its loop can be one more
 * side in `measureGroup` and run rep by rep between gmem's loops. Deno's pipes to a child are
 * asynchronous streams; two named pipes opened as files give blocking reads and writes instead.
 *
 * The child is started as `bash -c 'exec PROGRAM <requests >replies'`: the shell opens both pipes
 * before the program starts, so if the program dies (or cannot start) the reply pipe's only writer
 * is gone and the next read sees end-of-file instead of blocking forever.
 * @module
 */

import { parsePeerReply, PeerFormatError, type PeerReply } from "./report.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A running vm-memory program. */
export class PeerProcess implements Disposable {
  readonly #child: Deno.ChildProcess;
  readonly #dir: string;
  readonly #requests: Deno.FsFile;
  readonly #replies: Deno.FsFile;
  readonly #chunk = new Uint8Array(4096);
  #pending = "";
  #closed = false;

  /** Starts `program` and connects to it. */
  constructor(program: string) {
    this.#dir = Deno.makeTempDirSync({ prefix: "gmem-peer-" });
    const requests = `${this.#dir}/requests`, replies = `${this.#dir}/replies`;
    const mk = new Deno.Command("mkfifo", { args: [requests, replies] }).outputSync();
    if (!mk.success) throw new Error(`mkfifo failed: ${decoder.decode(mk.stderr)}`);
    this.#child = new Deno.Command("bash", {
      args: ["-c", 'exec "$0" <"$1" >"$2"', program, requests, replies],
      stdin: "null",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    // Same order as the shell's redirections, or both would wait for each other.
    this.#requests = Deno.openSync(requests, { write: true });
    this.#replies = Deno.openSync(replies, { read: true });
  }

  #send(command: string): PeerReply {
    const bytes = encoder.encode(`${command}\n`);
    for (let off = 0; off < bytes.length;) off += this.#requests.writeSync(bytes.subarray(off));
    return parsePeerReply(this.#readLine(command));
  }

  #readLine(command: string): string {
    for (;;) {
      const nl = this.#pending.indexOf("\n");
      if (nl >= 0) {
        const line = this.#pending.slice(0, nl);
        this.#pending = this.#pending.slice(nl + 1);
        return line;
      }
      const n = this.#replies.readSync(this.#chunk);
      if (n === null) throw new Error(`vm-memory peer exited without answering ${JSON.stringify(command)}`);
      this.#pending += decoder.decode(this.#chunk.subarray(0, n), { stream: true });
    }
  }

  #expect<K extends PeerReply["kind"]>(command: string, kind: K): Extract<PeerReply, { kind: K }> {
    const reply = this.#send(command);
    if (reply.kind !== kind) throw new PeerFormatError(`${command}: expected a ${kind} reply, got ${reply.kind}`);
    return reply as Extract<PeerReply, { kind: K }>;
  }

  /** The sum of the LCG's first `steps` high words, as the Rust side computes it. */
  lcgSum(steps: number): number {
    return this.#expect(`lcg ${steps}`, "lcg").sum;
  }

  /**
   * Sets case `name` up on the Rust side; returns the vm-memory call it measures, or undefined if
   * the program has no such case.
   */
  open(name: string): string | undefined {
    const reply = this.#send(`open ${name}`);
    if (reply.kind === "unknown" && reply.case === name) return undefined;
    if (reply.kind !== "open" || reply.case !== name) {
      throw new PeerFormatError(`open ${name}: the peer answered ${JSON.stringify(reply)}`);
    }
    return reply.op;
  }

  /** Runs `iters` iterations of the open case; the elapsed nanoseconds, timed by the program. */
  run(iters: number): number {
    return this.#expect(`run ${iters}`, "run").ns;
  }

  /** Closes the open case (its checks run, its memory is freed). */
  close(): void {
    this.#expect("close", "closed");
  }

  /** Asks the program to quit and waits for it. */
  async quit(): Promise<void> {
    this[Symbol.dispose]();
    const status = await this.#child.status;
    if (!status.success) throw new Error(`vm-memory peer exited with status ${status.code}`);
  }

  [Symbol.dispose](): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#requests.writeSync(encoder.encode("quit\n"));
    } catch {
      // Already gone: closing the pipes below is all that is left to do.
    }
    this.#requests.close();
    this.#replies.close();
    Deno.removeSync(this.#dir, { recursive: true });
  }
}
