/**
 * Byte-level commands: `hexdump`, `read` and `write` of scalars, `fill`, `copy`.
 * @module
 */

import { type GuestMemoryMmap, InvalidArgumentError, InvalidGuestAddressError } from "../../../mod.ts";
import { hex } from "../text.ts";
import { hasFlag } from "./args.ts";
import { type Command, type Context, MEMORY_OPTIONS, withMemory, words } from "./command.ts";
import { formatHexdump, hexString } from "./hexdump.ts";
import {
  formatScalar,
  parseLength,
  parseScalarType,
  parseScalarValue,
  parseU64,
  scalarSize,
  type ScalarType,
} from "./numbers.ts";
import { holes, readBacked, type Segment, splitByRegions } from "./segments.ts";

/** Most bytes `hexdump` shows at once (use `save` for more). */
export const HEXDUMP_MAX = 16 * 2 ** 20;

/** Chunk of work between two progress updates. */
const CHUNK = 16 * 2 ** 20;

/**
 * Throws unless all of `[addr, addr + len)` is guest RAM, naming the first hole.
 *
 * @example
 * ```ts
 * // requireBacked(mem, 0x1000n, 0x100, "gmem save");
 * ```
 * @throws {InvalidGuestAddressError} at the first address no region backs.
 */
export function requireBacked(mem: GuestMemoryMmap, addr: bigint, len: number, op: string): Segment[] {
  const segs = splitByRegions(mem, addr, len, op);
  const hole = holes(segs)[0];
  if (hole !== undefined) throw new InvalidGuestAddressError(op, hole.addr);
  return segs;
}

/**
 * Runs `step` over `[0, len)` in chunks of at most `chunk` bytes, advancing `ctx`'s progress
 * after each, so a long transfer shows progress and never needs a buffer of `len` bytes.
 *
 * @example
 * ```ts
 * // inChunks(ctx, len, 16 * 2 ** 20, (done, n) => mem.writeAllVolatileTo(addr + BigInt(done), file, n));
 * ```
 */
export function inChunks(ctx: Context, len: number, chunk: number, step: (done: number, n: number) => void): void {
  const progress = ctx.out.progress(ctx.op, len);
  for (let done = 0; done < len; done += chunk) {
    const n = Math.min(chunk, len - done);
    step(done, n);
    progress.advance(n);
  }
  progress.done();
}

const hexdump: Command = {
  name: "hexdump",
  usage: "hexdump ADDR LEN",
  summary: "show LEN bytes from guest physical ADDR (holes show as --)",
  options: MEMORY_OPTIONS,
  run(ctx) {
    const [a, l] = words(ctx, ["ADDR", "LEN"]);
    const addr = parseU64(a, ctx.op, "ADDR");
    const len = parseLength(l, ctx.op, "LEN");
    if (len > HEXDUMP_MAX) {
      throw new InvalidArgumentError(ctx.op, "LEN", l, `must be at most ${hex(HEXDUMP_MAX)} (use gmem save for more)`);
    }
    return withMemory(ctx, false, ({ mem }) => {
      const { bytes, backed } = readBacked(mem, addr, len, ctx.op);
      if (!backed.includes(1)) throw new InvalidGuestAddressError(ctx.op, addr);
      ctx.out.result(
        { addr: hex(addr), length: len, hex: hexString(bytes, backed) },
        () => formatHexdump(addr, bytes, backed),
      );
      return 0;
    });
  },
};

function readScalar(mem: GuestMemoryMmap, type: ScalarType, addr: bigint, be: boolean): bigint {
  switch (type) {
    case "u8":
      return BigInt(mem.readU8(addr));
    case "i8":
      return BigInt(mem.readI8(addr));
    case "u16":
      return BigInt(be ? mem.readU16BE(addr) : mem.readU16(addr));
    case "i16":
      return BigInt(be ? mem.readI16BE(addr) : mem.readI16(addr));
    case "u32":
      return BigInt(be ? mem.readU32BE(addr) : mem.readU32(addr));
    case "i32":
      return BigInt(be ? mem.readI32BE(addr) : mem.readI32(addr));
    case "u64":
      return be ? mem.readU64BE(addr) : mem.readU64(addr);
    case "i64":
      return be ? mem.readI64BE(addr) : mem.readI64(addr);
  }
}

/**
 * The bytes of a scalar as it lies in memory. The CLI writes them only after the whole range is
 * known to be RAM, so a write at the end of a region changes nothing instead of half the value.
 */
function scalarBytes(type: ScalarType, value: bigint, be: boolean): Uint8Array {
  const size = scalarSize(type);
  const bytes = new Uint8Array(size);
  const bits = value < 0n ? value + (1n << BigInt(size * 8)) : value;
  for (let i = 0; i < size; i++) {
    const b = Number((bits >> BigInt(8 * i)) & 0xffn);
    bytes[be ? size - 1 - i : i] = b;
  }
  return bytes;
}

function endianOf(ctx: Context): boolean {
  const be = hasFlag(ctx.args, "be");
  if (be && hasFlag(ctx.args, "le")) {
    throw new InvalidArgumentError(ctx.op, "--be", "--le", "and --le cannot be used together");
  }
  return be;
}

const read: Command = {
  name: "read",
  usage: "read TYPE ADDR",
  summary: "read a scalar (TYPE: u8 u16 u32 u64 i8 i16 i32 i64; --be for big-endian, --dec for decimal)",
  options: [...MEMORY_OPTIONS, "be", "le", "dec"],
  run(ctx) {
    const [t, a] = words(ctx, ["TYPE", "ADDR"]);
    const type = parseScalarType(t, ctx.op);
    const addr = parseU64(a, ctx.op, "ADDR");
    const be = endianOf(ctx);
    return withMemory(ctx, false, ({ mem }) => {
      const value = readScalar(mem, type, addr, be);
      ctx.out.result(
        {
          addr: hex(addr),
          type,
          endian: be ? "be" : "le",
          value: formatScalar(value, type, false),
          decimal: value.toString(),
        },
        formatScalar(value, type, hasFlag(ctx.args, "dec")),
      );
      return 0;
    });
  },
};

const write: Command = {
  name: "write",
  usage: "write TYPE ADDR VALUE",
  summary: "write a scalar (VALUE in hex or decimal; --be for big-endian)",
  options: [...MEMORY_OPTIONS, "be", "le", "session"],
  run(ctx) {
    const [t, a, v] = words(ctx, ["TYPE", "ADDR", "VALUE"]);
    const type = parseScalarType(t, ctx.op);
    const addr = parseU64(a, ctx.op, "ADDR");
    const value = parseScalarValue(v, type, ctx.op);
    const be = endianOf(ctx);
    const bytes = scalarBytes(type, value, be);
    return withMemory(ctx, true, ({ mem }) => {
      requireBacked(mem, addr, bytes.length, ctx.op);
      mem.writeSlice(bytes, addr);
      const shown = formatScalar(value, type, false);
      ctx.out.result(
        { addr: hex(addr), type, endian: be ? "be" : "le", value: shown, length: scalarSize(type) },
        `wrote ${type} ${shown} at ${hex(addr)}${be ? " (big-endian)" : ""}`,
      );
      return 0;
    });
  },
};

const fill: Command = {
  name: "fill",
  usage: "fill ADDR LEN BYTE",
  summary: "set LEN bytes from ADDR to BYTE",
  options: [...MEMORY_OPTIONS, "session"],
  run(ctx) {
    const [a, l, b] = words(ctx, ["ADDR", "LEN", "BYTE"]);
    const addr = parseU64(a, ctx.op, "ADDR");
    const len = parseLength(l, ctx.op, "LEN");
    const byte = Number(parseScalarValue(b, "u8", ctx.op, "BYTE"));
    return withMemory(ctx, true, ({ mem }) => {
      requireBacked(mem, addr, len, ctx.op);
      inChunks(ctx, len, CHUNK, (done, n) => {
        for (const slice of mem.getSlices(addr + BigInt(done), n)) slice.fill(byte);
      });
      ctx.out.result(
        { addr: hex(addr), length: len, byte: `0x${byte.toString(16).padStart(2, "0")}` },
        `filled [${hex(addr)}, ${hex(addr + BigInt(len))}) with 0x${byte.toString(16).padStart(2, "0")}`,
      );
      return 0;
    });
  },
};

const copy: Command = {
  name: "copy",
  usage: "copy SRC DST LEN",
  summary: "copy LEN bytes from guest address SRC to DST (overlapping ranges work like memmove)",
  options: [...MEMORY_OPTIONS, "session"],
  run(ctx) {
    const [s, d, l] = words(ctx, ["SRC", "DST", "LEN"]);
    const src = parseU64(s, ctx.op, "SRC");
    const dst = parseU64(d, ctx.op, "DST");
    const len = parseLength(l, ctx.op, "LEN");
    return withMemory(ctx, true, ({ mem }) => {
      requireBacked(mem, src, len, ctx.op);
      requireBacked(mem, dst, len, ctx.op);
      const progress = ctx.out.progress(ctx.op, len);
      const buf = new Uint8Array(Math.min(CHUNK, len));
      // Copying forwards would overwrite source bytes not yet read when DST lies inside the source.
      const backwards = dst > src && dst < src + BigInt(len);
      const chunks = Math.ceil(len / CHUNK);
      for (let k = 0; k < chunks; k++) {
        const i = backwards ? chunks - 1 - k : k;
        const off = i * CHUNK;
        const n = Math.min(CHUNK, len - off);
        const part = buf.subarray(0, n);
        mem.readSlice(part, src + BigInt(off));
        mem.writeSlice(part, dst + BigInt(off));
        progress.advance(n);
      }
      progress.done();
      ctx.out.result(
        { src: hex(src), dst: hex(dst), length: len },
        `copied ${hex(len)} bytes from ${hex(src)} to ${hex(dst)}`,
      );
      return 0;
    });
  },
};

/**
 * The byte-level commands.
 *
 * @example
 * ```ts
 * import { BYTE_COMMANDS } from "./cmd_bytes.ts";
 * console.log(BYTE_COMMANDS.map((c) => c.name)); // ["hexdump", "read", "write", "fill", "copy"]
 * ```
 */
export const BYTE_COMMANDS: readonly Command[] = [hexdump, read, write, fill, copy];
