/**
 * `translate` and `explain`: I/O virtual addresses through an IOTLB loaded from a JSON file,
 * optionally checked against the attached guest memory.
 * @module
 */

import { type GuestMemoryMmap, InvalidArgumentError } from "../../../mod.ts";
import { CannotResolveError } from "../../../iommu.ts";
import { hex } from "../text.ts";
import { optionValue } from "./args.ts";
import { type Command, type Context, MEMORY_OPTIONS, withMemory, words } from "./command.ts";
import {
  accessWord,
  explain,
  type Explanation,
  explanationText,
  parseAccess,
  pieceJson,
  rangesJson,
  span,
} from "./explain.ts";
import { loadIotlb } from "./iotlb_file.ts";
import { parseLength, parseU64 } from "./numbers.ts";

/** Runs `fn` with the guest memory when one is named, without otherwise. */
async function maybeMemory<T>(ctx: Context, fn: (mem: GuestMemoryMmap | undefined) => T): Promise<T> {
  const named = ctx.args.options.has("mem") || ctx.args.options.has("memfd-socket");
  return named ? await withMemory(ctx, false, ({ mem }) => fn(mem)) : fn(undefined);
}

function prepare(ctx: Context) {
  const [i, l, acc] = words(ctx, ["IOVA", "LEN", "ACCESS"]);
  const iova = parseU64(i, ctx.op, "IOVA");
  const len = parseLength(l, ctx.op, "LEN");
  const access = parseAccess(acc, ctx.op);
  const file = optionValue(ctx.args, "iotlb");
  if (file === undefined) {
    throw new InvalidArgumentError(
      ctx.op,
      "--iotlb",
      undefined,
      "FILE is required (an IOTLB as Iotlb.toJSON() writes it)",
    );
  }
  return { iova, len, access, tlb: loadIotlb(file, ctx.op) };
}

function explanationJson(x: Explanation, iova: bigint, len: number, access: number) {
  return {
    iova: hex(iova),
    length: len,
    access: accessWord(access as 0 | 1 | 2 | 3),
    ok: x.ok,
    pieces: x.pieces.map(pieceJson),
  };
}

const translate: Command = {
  name: "translate",
  usage: "translate IOVA LEN ACCESS",
  summary: "translate an IOVA range (ACCESS: read, write, rw, none) with --iotlb FILE; exit 1 if it fails",
  options: [...MEMORY_OPTIONS, "iotlb"],
  run(ctx) {
    const { iova, len, access, tlb } = prepare(ctx);
    return maybeMemory(ctx, (mem) => {
      const x = explain(tlb, iova, len, access, mem);
      const ok = x.pieces.filter((p) => p.status === "ok");
      if (x.ok) {
        ctx.out.result(
          {
            ...explanationJson(x, iova, len, access),
            pieces: undefined,
            ranges: ok.map((p) => ({ iova: hex(p.iova), gpa: hex(p.gpa!), length: p.length })),
          },
          () => ok.map((p) => `${span(p.iova, p.length)} -> GPA ${span(p.gpa!, p.length)}`).join("\n"),
        );
        return 0;
      }
      const lookup = x.lookup;
      ctx.out.result(
        {
          ...explanationJson(x, iova, len, access),
          pieces: undefined,
          misses: lookup.ok ? [] : rangesJson(lookup.misses),
          accessFails: lookup.ok ? [] : rangesJson(lookup.accessFails),
          unbacked: x.pieces.filter((p) => p.status === "unbacked").map(pieceJson),
        },
        "",
      );
      const reasons = x.pieces.filter((p) => p.status !== "ok").map((p) =>
        `${span(p.iova, p.length)} ${
          p.status === "miss"
            ? "unmapped"
            : p.status === "denied"
            ? `without ${accessWord(access)} permission`
            : "not backed by RAM"
        }`
      );
      throw new CannotResolveError(
        ctx.op,
        { base: iova, length: len },
        `${reasons.join(", ")} (gmem explain says more)`,
      );
    });
  },
};

const explainCommand: Command = {
  name: "explain",
  usage: "explain IOVA LEN ACCESS",
  summary: "show why an IOVA range does or does not translate, piece by piece (--iotlb FILE); exit 1 if it does not",
  options: [...MEMORY_OPTIONS, "iotlb"],
  run(ctx) {
    const { iova, len, access, tlb } = prepare(ctx);
    return maybeMemory(ctx, (mem) => {
      const x = explain(tlb, iova, len, access, mem);
      ctx.out.result(explanationJson(x, iova, len, access), () => explanationText(x, iova, len, access).join("\n"));
      // The explanation is the output either way; the status lets a script test the verdict.
      return x.ok ? 0 : 1;
    });
  },
};

/**
 * The IOMMU commands.
 *
 * @example
 * ```ts
 * import { IOMMU_COMMANDS } from "./cmd_iommu.ts";
 * console.log(IOMMU_COMMANDS.map((c) => c.name)); // ["translate", "explain"]
 * ```
 */
export const IOMMU_COMMANDS: readonly Command[] = [translate, explainCommand];
