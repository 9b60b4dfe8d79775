/**
 * `dirty start|show|reset|stop`: dirty-page tracking sessions (see dirty_session.ts for what a
 * session is and how it is stored).
 * @module
 */

import { InvalidArgumentError } from "../../../mod.ts";
import { hex } from "../text.ts";
import { optionValue } from "./args.ts";
import { type Command, type Context, MEMORY_OPTIONS, refuseSessionOnMemoryFile, withMemory, words } from "./command.ts";
import { type DirtyRun, DirtySession, runText, sessionPathFor } from "./dirty_session.ts";
import { formatLayout } from "./layout.ts";
import { parseLength } from "./numbers.ts";
import { refuseGuestMemory } from "./output_guard.ts";

const ACTIONS = ["start", "show", "reset", "stop"] as const;

function sessionPath(ctx: Context): string {
  const explicit = optionValue(ctx.args, "session");
  if (explicit !== undefined) return explicit;
  const mem = optionValue(ctx.args, "mem");
  if (mem === undefined) {
    throw new InvalidArgumentError(ctx.op, "--session", undefined, "FILE is required when memory is not a --mem file");
  }
  return sessionPathFor(mem);
}

function listing(session: DirtySession, runs: DirtyRun[]) {
  const pages = runs.reduce((n, r) => n + r.pages, 0);
  const json = {
    session: session.path,
    pageSize: session.pageSize,
    started: session.started,
    since: session.since,
    dirtyPages: pages,
    runs: runs.map((r) => ({ addr: hex(r.addr), length: r.length, pages: r.pages, source: r.source })),
  };
  const text = () => {
    const head = `${pages} dirty page${pages === 1 ? "" : "s"} of ${hex(session.pageSize)} bytes in ${runs.length} run${
      runs.length === 1 ? "" : "s"
    }`;
    const left = runs.map(runText);
    const width = Math.max(0, ...left.map((l) => l.length));
    const lines = runs.map((r, i) =>
      `  ${left[i].padEnd(width)}  ${String(r.pages).padStart(6)} page${r.pages === 1 ? " " : "s"}  ${
        r.source === "gmem" ? "written by gmem" : "changed by another process"
      }`
    );
    return [head, ...lines].join("\n");
  };
  return { json, text };
}

/**
 * A second `start` would throw away the pages the first session has counted: refuse it, naming the
 * session and the commands that end or restart it on purpose.
 */
function refuseRunningSession(ctx: Context, path: string): void {
  let running: DirtySession;
  try {
    Deno.statSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  try {
    running = DirtySession.open(path, ctx.op);
  } catch (e) {
    if (e instanceof InvalidArgumentError) {
      throw new InvalidArgumentError(
        ctx.op,
        "--session",
        path,
        `${path} already exists and is not a session gmem can read; remove it or pass another --session FILE`,
      );
    }
    throw e;
  }
  throw new InvalidArgumentError(
    ctx.op,
    "--session",
    path,
    `${path} already holds a session started ${running.started}; gmem dirty reset starts counting again, gmem dirty stop ends it`,
  );
}

const dirty: Command = {
  name: "dirty",
  usage: "dirty start|show|reset|stop",
  summary: "track dirty pages: start a session, show pages written since, reset (show, then start over), stop",
  options: [...MEMORY_OPTIONS, "session", "page-size"],
  run(ctx) {
    const [action] = words(ctx, ["ACTION"]);
    if (!(ACTIONS as readonly string[]).includes(action)) {
      throw new InvalidArgumentError(ctx.op, "ACTION", action, `must be start, show, reset or stop, got "${action}"`);
    }
    const path = sessionPath(ctx);
    const ps = optionValue(ctx.args, "page-size");
    if (ps !== undefined && action !== "start") {
      throw new InvalidArgumentError(ctx.op, "--page-size", ps, "only applies to dirty start");
    }
    // The session file is read, rewritten or removed below: never when it is the memory file.
    refuseSessionOnMemoryFile(ctx, path);
    if (action === "stop") {
      DirtySession.open(path, ctx.op);
      Deno.removeSync(path);
      ctx.out.result({ session: path, stopped: true }, `stopped session ${path}`);
      return 0;
    }
    const existing = action === "start" ? undefined : DirtySession.open(path, ctx.op);
    return withMemory(ctx, false, ({ mem, attached }) => {
      if (action === "start") {
        // The memory check comes first: a memfd's /proc path must be refused as the memory itself.
        refuseGuestMemory(path, attached, ctx.op, "--session");
        refuseRunningSession(ctx, path);
        const pageSize = ps === undefined ? 4096 : parseLength(ps, ctx.op, "--page-size");
        const progress = ctx.out.progress(
          `${ctx.op} start`,
          Number(attached.mem.regions().reduce((n, r) => n + r.len, 0)),
        );
        const s = DirtySession.create(path, attached, pageSize, progress, ctx.op);
        progress.done();
        ctx.out.result(
          { session: path, pageSize, started: s.started, layout: formatLayout(attached.ranges) },
          `started session ${path} (pages of ${hex(pageSize)} bytes)`,
        );
        return 0;
      }
      const session = existing!;
      session.checkMatches(attached, ctx.op);
      const total = mem.regions().reduce((n, r) => n + r.len, 0);
      const progress = ctx.out.progress(`${ctx.op} ${action}`, action === "reset" ? 2 * total : total);
      const runs = session.dirtyRuns(mem, progress);
      if (action === "reset") session.reset(attached, progress, ctx.op);
      progress.done();
      const { json, text } = listing(session, runs);
      ctx.out.result({ ...json, reset: action === "reset" }, () => text() + (action === "reset" ? "\nreset" : ""));
      return 0;
    });
  },
};

/**
 * The dirty-tracking command.
 *
 * @example
 * ```ts
 * import { DIRTY_COMMANDS } from "./cmd_dirty.ts";
 * console.log(DIRTY_COMMANDS[0].usage); // "dirty start|show|reset|stop"
 * ```
 */
export const DIRTY_COMMANDS: readonly Command[] = [dirty];
