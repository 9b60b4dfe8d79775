/**
 * `save` and `load`: guest memory to and from files, straight between the mapping and the file
 * descriptor (the library's volatile I/O: `writev`/`readv`, no buffer in between), with progress.
 * @module
 */

import { InvalidArgumentError } from "../../../mod.ts";
import { hex } from "../text.ts";
import { inChunks, requireBacked } from "./cmd_bytes.ts";
import { type Command, MEMORY_OPTIONS, withMemory, words } from "./command.ts";
import { parseLength, parseU64 } from "./numbers.ts";
import { openOutputFile } from "./output_guard.ts";

const CHUNK = 64 * 2 ** 20;

function openInput(path: string, op: string): Deno.FsFile {
  try {
    return Deno.openSync(path, { read: true });
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound
      ? "names no file"
      : e instanceof Deno.errors.IsADirectory
      ? "is a directory"
      : `cannot be opened (${(e as Error).message})`;
    throw new InvalidArgumentError(op, "FILE", path, `${path} ${why}`);
  }
}

const save: Command = {
  name: "save",
  usage: "save ADDR LEN FILE",
  summary: "write LEN bytes of guest memory from ADDR to FILE (created or truncated)",
  options: MEMORY_OPTIONS,
  run(ctx) {
    const [a, l, path] = words(ctx, ["ADDR", "LEN", "FILE"]);
    const addr = parseU64(a, ctx.op, "ADDR");
    const len = parseLength(l, ctx.op, "LEN");
    return withMemory(ctx, false, ({ mem, attached }) => {
      requireBacked(mem, addr, len, ctx.op);
      // FILE may be the guest memory under another name: saving into it would truncate guest RAM.
      using file = openOutputFile(path, attached, ctx.op, "FILE");
      inChunks(ctx, len, CHUNK, (done, n) => mem.writeAllVolatileTo(addr + BigInt(done), file, n));
      ctx.out.result(
        { addr: hex(addr), length: len, file: path },
        `saved [${hex(addr)}, ${hex(addr + BigInt(len))}) (${len} bytes) to ${path}`,
      );
      return 0;
    });
  },
};

const load: Command = {
  name: "load",
  usage: "load FILE ADDR [LEN]",
  summary: "read FILE (or its first LEN bytes) into guest memory at ADDR",
  options: [...MEMORY_OPTIONS, "session"],
  run(ctx) {
    const [path, a, l] = words(ctx, ["FILE", "ADDR", "LEN"], 2);
    const addr = parseU64(a, ctx.op, "ADDR");
    using file = openInput(path, ctx.op);
    const size = file.statSync().size;
    const len = l === undefined ? size : parseLength(l, ctx.op, "LEN");
    if (len === 0) throw new InvalidArgumentError(ctx.op, "FILE", path, `${path} is empty`);
    if (len > size) {
      throw new InvalidArgumentError(ctx.op, "LEN", l, `${hex(len)} is more than ${path} holds (${hex(size)} bytes)`);
    }
    return withMemory(ctx, true, ({ mem }) => {
      requireBacked(mem, addr, len, ctx.op);
      inChunks(ctx, len, CHUNK, (done, n) => mem.readExactVolatileFrom(addr + BigInt(done), file, n));
      ctx.out.result(
        { addr: hex(addr), length: len, file: path },
        `loaded ${len} bytes from ${path} to [${hex(addr)}, ${hex(addr + BigInt(len))})`,
      );
      return 0;
    });
  },
};

/**
 * The file transfer commands.
 *
 * @example
 * ```ts
 * import { TRANSFER_COMMANDS } from "./cmd_transfer.ts";
 * console.log(TRANSFER_COMMANDS.map((c) => c.name)); // ["save", "load"]
 * ```
 */
export const TRANSFER_COMMANDS: readonly Command[] = [save, load];
