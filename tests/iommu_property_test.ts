/**
 * IOMMU property test: random mappings (byte-granular, with every permission), invalidations and
 * accesses through `IommuMemory` onto guest memory with a hole and a read-only region, checked
 * against a byte-level model after every step. The same sequences run over three backends: real
 * memory (`GuestMemoryMmap` over memfds), plain `ArrayBuffer`s with views (the IOMMU's fast paths
 * over a backend not built on `MmapRegion`), and the same without views (the generic path, where
 * atomics are refused):
 *
 * - an access succeeds, fails or stops early exactly where the model says (translation is all or
 *   nothing; physical holes and read-only memory end a transfer at the first byte they cover);
 * - the whole physical memory (read through a second mapping of each memfd) equals the model, so a
 *   refused request touched nothing and a partial one touched exactly its prefix;
 * - the dirty bitmap (IOVA-indexed with `logBy: "iova"`, the regions' own with `"gpa"` or with the
 *   IOMMU off) holds exactly the pages of the bytes written.
 *
 * The seed is fixed (override with GMEM_IOMMU_PROP_SEED, runs with GMEM_IOMMU_PROP_RUNS); a failure
 * prints the seed and the shrunk operation sequence.
 * @module
 */

import fc from "fast-check";
import assert from "node:assert/strict";
import {
  AtomicBitmap,
  type DirtyLog,
  GuestMemoryError,
  GuestMemoryMmap,
  GuestRegionMmap,
  InvalidArgumentError,
  MmapRegion,
  type Permission,
  Permissions,
  type PhysicalMemory,
  PROT_READ,
  type VolatileSlice,
} from "../mod.ts";
import { type DirtyLogAddressing, IommuMemory, Iotlb, IotlbIommu } from "../iommu.ts";
import { ArrayBufferMemory, type ArrayBufferSlice, SlicesOnlyMemory } from "./fixtures/array_buffer_memory.ts";
import { expectError } from "./fixtures/guest_assert.ts";

const SEED = Number(Deno.env.get("GMEM_IOMMU_PROP_SEED") ?? 0x10aa11);
const RUNS = Number(Deno.env.get("GMEM_IOMMU_PROP_RUNS") ?? 300);
const DIRTY_PAGE = 0x100;
const IOVA_SPACE = 0x4000;
/** Physical addresses the mappings may target: the regions, a hole and past the end. */
const PHYS_SPACE = 0x8800;

/** Physical layout: 4 KiB regions that touch (slices split there), a hole at [0x4000, 0x5000), a read-only region. */
const LAYOUT = [
  { base: 0x0000, size: 0x1000, readOnly: false },
  { base: 0x1000, size: 0x1000, readOnly: false },
  { base: 0x2000, size: 0x1000, readOnly: false },
  { base: 0x3000, size: 0x1000, readOnly: false },
  { base: 0x5000, size: 0x1000, readOnly: true },
  { base: 0x6000, size: 0x1000, readOnly: false },
  { base: 0x7000, size: 0x1000, readOnly: false },
] as const;

// ---- the memory behind the IOMMU ----

/** A slice of any of the backends. */
type AnySlice = VolatileSlice | ArrayBufferSlice;

interface Physical extends Disposable {
  mem: PhysicalMemory<AnySlice>;
  /** What the guest memory really holds, region by region (for memfds, a second mapping of each). */
  aliases: Uint8Array[];
  bitmaps: AtomicBitmap[];
  /** Whether the backend has views (atomics are refused without). */
  views: boolean;
}

/** The backends the property runs over. */
const BACKENDS: ReadonlyArray<{ name: string; make: () => Physical }> = [
  { name: "GuestMemoryMmap", make: mmapPhysical },
  { name: "ArrayBufferMemory", make: () => arrayBufferPhysical(true) },
  { name: "SlicesOnlyMemory", make: () => arrayBufferPhysical(false) },
];

function arrayBufferPhysical(views: boolean): Physical {
  const ab = ArrayBufferMemory.fromRanges(LAYOUT.map((r) => [r.base, r.size]), {
    dirtyPageSize: DIRTY_PAGE,
    readOnly: LAYOUT.filter((r) => r.readOnly).map((r) => r.base),
  });
  return {
    mem: views ? ab : new SlicesOnlyMemory(ab),
    aliases: ab.regions().map((r) => r.bytes),
    bitmaps: ab.regions().map((r) => r.bitmap!),
    views,
    [Symbol.dispose]() {},
  };
}

function mmapPhysical(): Physical {
  const owned: MmapRegion[] = [];
  const aliases: Uint8Array[] = [];
  const bitmaps: AtomicBitmap[] = [];
  const regions = LAYOUT.map(({ base, size, readOnly }) => {
    const fd = MmapRegion.memfd(size, { name: "gmem-iommu-prop" });
    owned.push(fd);
    aliases.push(fd.bytes());
    const view = MmapRegion.fromFile(fd.fileOffset!, size, readOnly ? { prot: PROT_READ } : {});
    const bitmap = new AtomicBitmap(size, DIRTY_PAGE);
    bitmaps.push(bitmap);
    return new GuestRegionMmap(view, base, bitmap);
  });
  const mem = GuestMemoryMmap.fromRegions(regions);
  return {
    mem,
    aliases,
    bitmaps,
    views: true,
    [Symbol.dispose]() {
      mem.close();
      for (const r of owned) r.close();
    },
  };
}

// ---- the model ----

/** One IOTLB byte: where it goes (as iova + diff) and what it allows. */
interface Cell {
  diff: number;
  perm: Permission;
}

class Model {
  readonly tlb: (Cell | undefined)[] = new Array(IOVA_SPACE).fill(undefined);
  readonly phys = new Uint8Array(PHYS_SPACE);
  /** Dirty pages: IOVA pages (IOVA log) or physical pages (region logs). */
  readonly dirtyIova = new Set<number>();
  readonly dirtyGpa = new Set<number>();
  enabled = true;

  constructor(readonly logBy: DirtyLogAddressing) {}

  map(iova: number, target: number, len: number, perm: Permission): void {
    for (let i = 0; i < len; i++) this.tlb[iova + i] = { diff: target - iova, perm };
  }

  unmap(iova: number, len: number): void {
    for (let i = 0; i < len; i++) this.tlb[iova + i] = undefined;
  }

  /**
   * Whether every byte of `[a, a + n)` is mapped with `access`. An empty range is refused only
   * inside an entry (the same one on both sides of `a`) that denies the access, as in vm-memory.
   */
  translates(a: number, n: number, access: Permission): boolean {
    if (n === 0) {
      const before = a > 0 ? this.tlb[a - 1] : undefined, at = a < IOVA_SPACE ? this.tlb[a] : undefined;
      const inside = before !== undefined && at !== undefined && before.diff === at.diff && before.perm === at.perm;
      return !inside || (at.perm & access) === access;
    }
    for (let i = a; i < a + n; i++) {
      const c = i < IOVA_SPACE ? this.tlb[i] : undefined;
      if (c === undefined || (c.perm & access) !== access) return false;
    }
    return true;
  }

  gpa(addr: number): number {
    return this.enabled ? addr + this.tlb[addr]!.diff : addr;
  }

  /** Length of the IOTLB entry run (same diff and permission) from `a`, at most `max`. */
  entryRun(a: number, max: number): number {
    const first = this.tlb[a]!;
    let n = 1;
    while (n < max) {
      const c = this.tlb[a + n];
      if (c === undefined || c.diff !== first.diff || c.perm !== first.perm) break;
      n++;
    }
    return n;
  }

  written(addr: number, gpa: number): void {
    if (this.enabled && this.logBy === "iova") this.dirtyIova.add(Math.floor(addr / DIRTY_PAGE));
    else this.dirtyGpa.add(Math.floor(gpa / DIRTY_PAGE));
  }
}

function regionOf(gpa: number) {
  return LAYOUT.find((r) => gpa >= r.base && gpa < r.base + r.size);
}

// ---- operations ----

/**
 * An address: absolute, or relative to the start of the n-th mapping made so far (most hit
 * something); with `fit`, an access there is shortened to end with that mapping.
 */
type Where = number | { map: number; off: number; fit: boolean };

type Op =
  | { t: "map"; iova: number; target: number; len: number; perm: Permission }
  | { t: "unmap"; iova: number; len: number }
  | { t: "unmapAll" }
  | { t: "toggle" }
  | { t: "write"; at: Where; len: number; fill: number; exact: boolean }
  | { t: "read"; at: Where; len: number; exact: boolean }
  | { t: "scalar"; at: Where; size: 1 | 2 | 4 | 8; write: boolean; value: number }
  | { t: "atomic"; at: Where; size: 4 | 8; kind: "load" | "store" | "add" | "cas"; value: number }
  | { t: "slice"; at: Where; len: number; write: boolean };

const addrArb = fc.oneof(
  fc.integer({ min: 0, max: IOVA_SPACE - 1 }),
  fc.integer({ min: 0, max: IOVA_SPACE / 8 - 1 }).map((x) => x * 8),
  fc.constantFrom(0x2ffc, 0x2fff, 0x3ffc, 0x3fff, 0x1000, 0x0),
);
const whereArb: fc.Arbitrary<Where> = fc.oneof(
  addrArb,
  fc.record({
    map: fc.nat(40),
    fit: fc.boolean(),
    off: fc.oneof(
      fc.integer({ min: -8, max: 8 }),
      fc.integer({ min: 0, max: 0x100 }),
      fc.integer({ min: 0, max: 0x1800 }),
    ),
  }),
);
const lenArb = fc.oneof(fc.integer({ min: 0, max: 16 }), fc.integer({ min: 1, max: 0x1200 }));
const permArb = fc.constantFrom<Permission>(0, 1, 2, 3, 3, 3);

/** A target just below a region boundary, so that mapped ranges cross into the next region or a hole. */
const nearBoundary = fc.tuple(
  fc.constantFrom(0x1000, 0x2000, 0x3000, 0x4000, 0x6000, 0x7000, 0x8000),
  fc.integer({ min: 1, max: 0x80 }),
).map(([b, k]) => b - k);

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant("map" as const),
      iova: addrArb,
      target: fc.oneof(
        fc.integer({ min: 0, max: PHYS_SPACE - 1 }),
        fc.integer({ min: 0, max: PHYS_SPACE / 0x100 - 1 }).map((x) => x * 0x100),
        nearBoundary, // twice: crossings are where fragments, holes and dirty logging meet
        nearBoundary,
      ),
      len: fc.integer({ min: 1, max: 0x1800 }),
      perm: permArb,
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant("unmap" as const), iova: addrArb, len: lenArb }) },
  { weight: 1, arbitrary: fc.constant({ t: "unmapAll" as const }) },
  { weight: 1, arbitrary: fc.constant({ t: "toggle" as const }) },
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant("write" as const),
      at: whereArb,
      len: lenArb,
      fill: fc.integer({ min: 1, max: 255 }),
      exact: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ t: fc.constant("read" as const), at: whereArb, len: lenArb, exact: fc.boolean() }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant("scalar" as const),
      at: whereArb,
      size: fc.constantFrom<1 | 2 | 4 | 8>(1, 2, 4, 8),
      write: fc.boolean(),
      value: fc.integer({ min: 0, max: 255 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant("atomic" as const),
      at: whereArb,
      size: fc.constantFrom<4 | 8>(4, 8),
      kind: fc.constantFrom<"load" | "store" | "add" | "cas">("load", "store", "add", "cas"),
      value: fc.integer({ min: 1, max: 255 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant("slice" as const), at: whereArb, len: lenArb, write: fc.boolean() }),
  },
);

/** What an access is predicted to do: return a count, or throw an error of a kind. */
type Outcome = { ok: number } | { kind: string };

function outcomeOf(fn: () => number): Outcome {
  try {
    return { ok: fn() };
  } catch (e) {
    if (e instanceof GuestMemoryError) return { kind: e.kind };
    throw e;
  }
}

/**
 * The model's prediction for a byte transfer of `n` bytes at `addr`: the count of leading bytes
 * that reach backed (and, for writes, writable) memory, or the error for the first byte.
 */
function predictTransfer(m: Model, addr: number, n: number, write: boolean): Outcome {
  if (m.enabled && !m.translates(addr, n, write ? Permissions.Write : Permissions.Read)) {
    return { kind: "CannotResolve" };
  }
  if (n === 0) return { ok: 0 };
  let done = 0;
  while (done < n) {
    const r = regionOf(m.gpa(addr + done));
    if (r === undefined || (write && r.readOnly)) break;
    done++;
  }
  if (done > 0) return { ok: done };
  return { kind: regionOf(m.gpa(addr)) === undefined ? "InvalidGuestAddress" : "ReadOnly" };
}

/**
 * The model's prediction for an atomic at `addr` (see vm-memory's `store`/`load` through slices).
 * Over memory without views, an atomic that would reach its memory is refused (`InvalidArgument`).
 */
function predictAtomic(
  m: Model,
  addr: number,
  size: number,
  access: Permission,
  views: boolean,
): Outcome & { gpa?: number } {
  const o = predictAtomicInViews(m, addr, size, access);
  if (views || !("ok" in o || o.kind === "Misaligned" || o.kind === "ReadOnly")) return o;
  return { kind: "InvalidArgument" };
}

function predictAtomicInViews(m: Model, addr: number, size: number, access: Permission): Outcome & { gpa?: number } {
  if (m.enabled) {
    if (!m.translates(addr, size, access)) return { kind: "CannotResolve" };
    // Split between entries: the first fragment fails first when nothing backs it.
    if (m.entryRun(addr, size) < size) {
      return { kind: regionOf(m.gpa(addr)) === undefined ? "InvalidGuestAddress" : "InvalidBackendAddress" };
    }
  }
  const gpa = m.gpa(addr);
  const r = regionOf(gpa);
  if (r === undefined) return { kind: "InvalidGuestAddress" };
  if (gpa + size > r.base + r.size) return { kind: "InvalidBackendAddress" };
  if (gpa % size !== 0) return { kind: "Misaligned" };
  if ((access & Permissions.Write) !== 0 && r.readOnly) return { kind: "ReadOnly" };
  return { ok: size, gpa };
}

/** The model's prediction for `getSlices`: translation as for a transfer, then the backed prefix. */
function predictSlices(m: Model, addr: number, n: number, access: Permission): Outcome {
  if (m.enabled && !m.translates(addr, n, access)) return { kind: "CannotResolve" };
  if (n === 0) return { ok: 0 };
  let done = 0;
  while (done < n && regionOf(m.gpa(addr + done)) !== undefined) done++;
  return done > 0 ? { ok: done } : { kind: "InvalidGuestAddress" };
}

/** A slice obtained through the IOMMU, with the translation of its bytes at that moment. */
interface Held {
  slice: AnySlice;
  addr: number;
  len: number;
  access: Permission;
  was: (Cell | undefined)[];
  /** Where its IOTLB entry (clipped to the request) starts, and that whole entry as it was. */
  pieceStart: number;
  piece: (Cell | undefined)[];
  revoked: boolean;
}

/**
 * A held slice must be refused (SliceRevoked) once any of its own bytes no longer translates, for
 * its access, to where it did; it must keep working while nothing in its entry changed. (Between
 * the two, a change elsewhere in the same IOTLB entry, revoking is allowed.)
 */
function checkHeld(h: Held, m: Model, at: string): void {
  const same = (c: Cell | undefined, i: number) => {
    const now = m.tlb[h.addr + i];
    return c !== undefined && now !== undefined && now.diff === c.diff && (now.perm & h.access) === h.access;
  };
  const own = h.was.every(same);
  const untouched = h.piece.every((c, i) => {
    const now = m.tlb[h.pieceStart + i];
    return now !== undefined && now.diff === c!.diff && now.perm === c!.perm;
  });
  const buf = new Uint8Array(1);
  const r = outcomeOf(() => h.slice.read(buf, 0));
  if ("kind" in r) {
    assert.equal(r.kind, "SliceRevoked", `${at}: a held slice failed otherwise`);
    assert.ok(
      h.revoked || !untouched,
      `${at}: the slice at IOVA 0x${h.addr.toString(16)} was revoked, nothing changed`,
    );
    h.revoked = true;
    return;
  }
  assert.ok(!h.revoked, `${at}: a revoked slice at IOVA 0x${h.addr.toString(16)} works again`);
  assert.ok(own, `${at}: the slice at IOVA 0x${h.addr.toString(16)} still works after its translation changed`);
  assert.equal(buf[0], m.phys[h.addr + h.was[0]!.diff], `${at}: a held slice reads its own byte`);
}

const READS = { 1: "readU8", 2: "readU16", 4: "readU32", 8: "readU64" } as const;
const WRITES = { 1: "writeU8", 2: "writeU16", 4: "writeU32", 8: "writeU64" } as const;

/** A little-endian value of `size` bytes, each `byte`. */
function repeated(byte: number, size: number): bigint {
  let v = 0n;
  for (let i = 0; i < size; i++) v = (v << 8n) | BigInt(byte);
  return v;
}

function valueAt(phys: Uint8Array, gpa: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(phys[gpa + i]);
  return v;
}

/** Where an access goes, and how long it may be (up to the end of its mapping with `fit`). */
function place(w: Where, maps: ReadonlyArray<{ iova: number; len: number }>): { addr: number; room: number } {
  if (typeof w === "number") return { addr: w, room: Infinity };
  const m = maps[w.map % Math.max(1, maps.length)] ?? { iova: 0, len: 0 };
  const addr = Math.max(0, m.iova + w.off);
  return { addr, room: w.fit ? Math.max(0, m.iova + m.len - addr) : Infinity };
}

/** Runs one sequence against the real thing and the model, checking after every step. */
function runSequence(p: Physical, logBy: DirtyLogAddressing, ops: readonly Op[]): void {
  const iotlb = new Iotlb();
  const iovaLog = new AtomicBitmap(IOVA_SPACE + 0x2000, DIRTY_PAGE);
  const mem = new IommuMemory(p.mem, new IotlbIommu(iotlb), logBy === "iova" ? { bitmap: iovaLog } : { logBy });
  const m = new Model(logBy);
  for (const a of p.aliases) a.fill(0);
  for (const b of p.bitmaps) b.reset();
  const held: Held[] = [];

  const maps: Array<{ iova: number; len: number }> = [];
  ops.forEach((op, step) => {
    const { addr, room } = "at" in op ? place(op.at, maps) : { addr: 0, room: 0 };
    const len = op.t === "write" || op.t === "read" || op.t === "slice" ? Math.min(op.len, room) : 0;
    const at = `step ${step} ${JSON.stringify(op)} (0x${addr.toString(16)}, 0x${len.toString(16)} bytes)`;
    switch (op.t) {
      case "map":
        if (op.iova + op.len <= IOVA_SPACE) {
          iotlb.setMapping(op.iova, op.target, op.len, op.perm);
          m.map(op.iova, op.target, op.len, op.perm);
          maps.push({ iova: op.iova, len: op.len });
        }
        break;
      case "unmap":
        if (op.len > 0 && op.iova + op.len <= IOVA_SPACE) {
          iotlb.invalidate(op.iova, op.len);
          m.unmap(op.iova, op.len);
        }
        break;
      case "unmapAll":
        iotlb.invalidateAll();
        m.unmap(0, IOVA_SPACE);
        break;
      case "toggle":
        mem.iommuEnabled = m.enabled = !m.enabled;
        break;
      case "write": {
        const buf = new Uint8Array(len).map((_, i) => (op.fill + i) & 0xff);
        const want = predictTransfer(m, addr, len, true);
        const got = outcomeOf(() => {
          if (!op.exact) return mem.write(buf, addr);
          mem.writeSlice(buf, addr);
          return len;
        });
        const done = "ok" in want ? want.ok : 0;
        for (let i = 0; i < done; i++) {
          m.phys[m.gpa(addr + i)] = buf[i];
          m.written(addr + i, m.gpa(addr + i));
        }
        const expected = op.exact && "ok" in want && done < len ? { kind: "PartialBuffer" } : want;
        assert.deepEqual(got, expected, at);
        break;
      }
      case "read": {
        const buf = new Uint8Array(len);
        const want = predictTransfer(m, addr, len, false);
        const got = outcomeOf(() => {
          if (!op.exact) return mem.read(buf, addr);
          mem.readSlice(buf, addr);
          return len;
        });
        const done = "ok" in want ? want.ok : 0;
        const expected = op.exact && "ok" in want && done < len ? { kind: "PartialBuffer" } : want;
        assert.deepEqual(got, expected, at);
        for (let i = 0; i < done; i++) assert.equal(buf[i], m.phys[m.gpa(addr + i)], `${at}: byte ${i}`);
        break;
      }
      case "scalar": {
        const want = predictTransfer(m, addr, op.size, op.write);
        const expected = "ok" in want && want.ok < op.size ? { kind: "PartialBuffer" } : want;
        let read: bigint | undefined;
        const got = outcomeOf(() => {
          if (op.write) {
            const v = repeated(op.value, op.size);
            if (op.size === 8) mem.writeU64(addr, v);
            else mem[WRITES[op.size]](addr, Number(v));
          } else {
            const v = op.size === 8 ? mem.readU64(addr) : mem[READS[op.size]](addr);
            read = BigInt(v);
          }
          return op.size;
        });
        // A scalar that stops early still wrote its leading bytes (vm-memory's write_obj is write_slice).
        const done = "ok" in want ? want.ok : 0;
        if (op.write) {
          for (let i = 0; i < done; i++) {
            m.phys[m.gpa(addr + i)] = op.value;
            m.written(addr + i, m.gpa(addr + i));
          }
        }
        assert.deepEqual(got, expected, at);
        if (read !== undefined) {
          let v = 0n;
          for (let i = op.size - 1; i >= 0; i--) v = (v << 8n) | BigInt(m.phys[m.gpa(addr + i)]);
          assert.equal(read, v, at);
        }
        break;
      }
      case "atomic": {
        const access = op.kind === "load"
          ? Permissions.Read
          : op.kind === "store"
          ? Permissions.Write
          : Permissions.ReadWrite;
        const want = predictAtomic(m, addr, op.size, access, p.views);
        let result: bigint | undefined;
        const got = outcomeOf(() => {
          const v = BigInt(op.value);
          if (op.size === 8) {
            if (op.kind === "load") result = mem.loadU64(addr);
            else if (op.kind === "store") mem.storeU64(addr, v);
            else if (op.kind === "add") result = mem.addU64(addr, v);
            else result = mem.compareExchangeU64(addr, 0n, v);
          } else {
            const n = op.value;
            if (op.kind === "load") result = BigInt(mem.loadU32(addr));
            else if (op.kind === "store") mem.storeU32(addr, n);
            else if (op.kind === "add") result = BigInt(mem.addU32(addr, n));
            else result = BigInt(mem.compareExchangeU32(addr, 0, n));
          }
          return op.size;
        });
        assert.deepEqual(got, "ok" in want ? { ok: want.ok } : want, at);
        if (want.gpa !== undefined) {
          const old = valueAt(m.phys, want.gpa, op.size);
          if (op.kind !== "store") assert.equal(result, old, `${at}: old value`);
          const mask = (1n << BigInt(op.size * 8)) - 1n;
          const next = op.kind === "store"
            ? BigInt(op.value)
            : op.kind === "add"
            ? (old + BigInt(op.value)) & mask
            : op.kind === "cas" && old === 0n
            ? BigInt(op.value)
            : undefined;
          if (next !== undefined) {
            for (let i = 0; i < op.size; i++) {
              m.phys[want.gpa + i] = Number((next >> BigInt(8 * i)) & 0xffn);
              m.written(addr + i, want.gpa + i);
            }
          }
        }
        break;
      }
      case "slice": {
        // Slices handed out now are used (and must be revoked, or not) on every later step.
        const access = op.write ? Permissions.Write : Permissions.Read;
        const want = predictSlices(m, addr, len, access);
        let slices: AnySlice[] = [];
        const got = outcomeOf(() => {
          slices = mem.getSlices(addr, len, access);
          return slices.reduce((n, s) => n + s.len, 0);
        });
        assert.deepEqual(got, want, at);
        if (m.enabled) {
          let off = 0;
          for (const s of slices) {
            const sa = addr + off;
            const c = m.tlb[sa]!;
            let pieceStart = sa;
            while (
              pieceStart > addr && m.tlb[pieceStart - 1]?.diff === c.diff && m.tlb[pieceStart - 1]?.perm === c.perm
            ) {
              pieceStart--;
            }
            const pieceEnd = sa + m.entryRun(sa, addr + len - sa);
            held.push({
              slice: s,
              addr: sa,
              len: s.len,
              access,
              was: m.tlb.slice(sa, sa + s.len),
              pieceStart,
              piece: m.tlb.slice(pieceStart, pieceEnd),
              revoked: false,
            });
            off += s.len;
          }
        }
        break;
      }
    }
    for (const h of held) checkHeld(h, m, at);
    checkMemory(p, m, at);
    checkDirty(p, m, mem.bitmap as AtomicBitmap | undefined, at);
  });
}

function checkMemory(p: Physical, m: Model, at: string): void {
  LAYOUT.forEach((r, i) => {
    const real = p.aliases[i];
    const model = m.phys.subarray(r.base, r.base + r.size);
    if (!real.every((b, j) => b === model[j])) {
      const j = real.findIndex((b, k) => b !== model[k]);
      assert.fail(`${at}: physical byte 0x${(r.base + j).toString(16)} is ${real[j]}, the model says ${model[j]}`);
    }
  });
}

function checkDirty(p: Physical, m: Model, iovaLog: AtomicBitmap | undefined, at: string): void {
  const gpaPages: number[] = [];
  LAYOUT.forEach((r, i) => {
    for (let pg = 0; pg < p.bitmaps[i].len; pg++) {
      if (p.bitmaps[i].isBitSet(pg)) gpaPages.push(r.base / DIRTY_PAGE + pg);
    }
  });
  assert.deepEqual(gpaPages, [...m.dirtyGpa].sort((a, b) => a - b), `${at}: region dirty pages`);
  if (iovaLog !== undefined) {
    const iovaPages: number[] = [];
    for (let pg = 0; pg < iovaLog.len; pg++) if (iovaLog.isBitSet(pg)) iovaPages.push(pg);
    assert.deepEqual(iovaPages, [...m.dirtyIova].sort((a, b) => a - b), `${at}: IOVA dirty pages`);
  }
}

function property(make: () => Physical, logBy: DirtyLogAddressing, seed: number): void {
  using p = make();
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 1, maxLength: 40 }), (ops) => runSequence(p, logBy, ops)),
    { seed, numRuns: RUNS, endOnFailure: false },
  );
}

for (const { name, make } of BACKENDS) {
  Deno.test(`iommu property over ${name}: accesses with logBy "iova" touch only mapped, permitted bytes and log every written IOVA page (seed ${SEED})`, () => {
    property(make, "iova", SEED);
  });

  Deno.test(`iommu property over ${name}: accesses with logBy "gpa" touch only mapped, permitted bytes and log every written physical page (seed ${SEED + 1})`, () => {
    property(make, "gpa", SEED + 1);
  });
}

Deno.test("iommu: a write whose mapping crosses a region boundary logs every IOVA page it wrote, and only those", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x3000], [0x3000, 0x1000]]);
  const iotlb = new Iotlb();
  iotlb.setMapping(0x10000, 0x2f00, 0x400, Permissions.ReadWrite);
  const log = new AtomicBitmap(0x20000, DIRTY_PAGE);
  const iommu = new IommuMemory(mem, new IotlbIommu(iotlb), { bitmap: log });
  // IOVA [0x10080, 0x10280) is guest [0x2f80, 0x3180): two fragments, 0x80 and 0x180 bytes.
  assert.equal(iommu.write(new Uint8Array(0x200).fill(1), 0x10080), 0x200);
  assert.deepEqual(log.dirtyRuns(), [[0x10000, 0x300]]);
  assert.deepEqual(mem.regions().map((r) => r.bitmap), [undefined, undefined]);
  const back = new Uint8Array(0x202);
  assert.equal(mem.read(back, 0x2f7f), 0x202);
  assert.deepEqual([back[0], back[1], back[0x200], back[0x201]], [0, 1, 1, 0]);
});

Deno.test("dirty logs: a slice takes only a log that records all of it, and logs every write through it", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
  const bitmap = new AtomicBitmap(0x1000, DIRTY_PAGE); // records [0, 0x1000)
  const s = mem.getSlice(0x10, 0x200);
  // Each would record only part of the slice (or none of it): the rest of its writes would be
  // dropped by the bitmap, silently. A window whose end lies past 2^53 records nothing at all.
  const refused: Array<[DirtyLog, number]> = [[bitmap.sliceAt(2 ** 53 - 0x100), 0], [bitmap, 0xe01], [
    bitmap.sliceAt(0xf00),
    0,
  ]];
  for (const [log, offset] of refused) {
    const e = expectError(() => s.withDirtyLog(log, offset), InvalidArgumentError, {
      kind: "InvalidArgument",
      op: "VolatileSlice.withDirtyLog",
      mentions: ["logOffset"],
    });
    assert.equal(e.value, offset);
  }
  assert.deepEqual(bitmap.dirtyRuns(), []);
  const last = s.withDirtyLog(bitmap, 0xe00); // ends exactly where the bitmap does
  last.writeU8(0x1ff, 0xab);
  assert.deepEqual(bitmap.dirtyRuns(), [[0xf00, 0x100]]);
  const low = s.withDirtyLog(bitmap.sliceAt(0x100), 0);
  low.fill(1);
  assert.deepEqual(bitmap.dirtyRuns(), [[0x100, 0x200], [0xf00, 0x100]]); // [start, length]
  assert.equal(mem.readU8(0x20f), 1);
});
