/**
 * Loading an IOTLB from a JSON file in the format `Iotlb.toJSON()` writes:
 * `{"entries": [{"iova": "0x1000", "target": "0x9000", "size": "0x1000", "perm": "ReadWrite"}, …]}`
 * (`counters` may be present and is ignored).
 * @module
 */

import { InvalidArgumentError } from "../../../mod.ts";
import { Iotlb } from "../../../iommu.ts";
import { parsePermission } from "../text.ts";
import { parseU64 } from "./numbers.ts";

/** Largest piece handed to `setMapping` at once (its length is a safe integer); pieces merge again. */
const PIECE = 1n << 52n;

/**
 * Reads `path` and builds the IOTLB it describes.
 *
 * @example
 * ```ts
 * import { loadIotlb } from "./iotlb_file.ts";
 * const path = Deno.makeTempFileSync({ suffix: ".json" });
 * const entry = { iova: "0x1000", target: "0x9000", size: "0x1000", perm: "Read" };
 * Deno.writeTextFileSync(path, JSON.stringify({ entries: [entry] }));
 * const tlb = loadIotlb(path, "gmem translate");
 * console.log(tlb.size); // 1
 * Deno.removeSync(path);
 * ```
 * @throws {InvalidArgumentError} naming the file (and the entry) when it cannot be read, is not
 *   JSON, or an entry is malformed.
 */
export function loadIotlb(path: string, op: string): Iotlb {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (e) {
    const why = e instanceof Deno.errors.NotFound ? "names no file" : `cannot be read (${(e as Error).message})`;
    throw new InvalidArgumentError(op, "--iotlb", path, `${path} ${why}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new InvalidArgumentError(op, "--iotlb", path, `${path} is not JSON (${(e as Error).message})`);
  }
  const entries = (doc !== null && typeof doc === "object") ? (doc as { entries?: unknown }).entries : undefined;
  if (!Array.isArray(entries)) {
    throw new InvalidArgumentError(op, "--iotlb", path, `${path} has no "entries" array (expected Iotlb.toJSON())`);
  }
  const tlb = new Iotlb();
  entries.forEach((entry: unknown, i: number) => {
    const where = `${path} entries[${i}]`;
    if (entry === null || typeof entry !== "object") {
      throw new InvalidArgumentError(op, "--iotlb", path, `${where} must be an object`);
    }
    const e = entry as Record<string, unknown>;
    const field = (name: string): bigint => {
      const v = e[name];
      if (typeof v === "string") return parseU64(v, op, `${where}.${name}`);
      if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
      throw new InvalidArgumentError(op, `${where}.${name}`, v, `must be a hex string like "0x1000"`);
    };
    const iova = field("iova"), target = field("target"), size = field("size");
    if (size === 0n) throw new InvalidArgumentError(op, `${where}.size`, e.size, "must not be zero");
    const perm = parsePermission(e.perm, op, `${where}.perm`);
    for (let done = 0n; done < size; done += PIECE) {
      const n = size - done < PIECE ? size - done : PIECE;
      tlb.setMapping(iova + done, target + done, Number(n), perm);
    }
  });
  tlb.resetCounters();
  return tlb;
}
