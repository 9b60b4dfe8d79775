// Addresses no fast path may accept: fractions, negative numbers, NaN, infinities, numbers from
// 2^53 on, bigints outside u64, and values that are not numbers at all. Each method must refuse
// them with the same InvalidArgumentError whether it is cold (nothing cached, nothing compiled) or
// warm (thousands of valid calls at the neighbouring address first, so every cache and compiled
// fast path is primed), and move nothing.
import assert from "node:assert/strict";
import { AtomicBitmap, GuestMemoryError, GuestMemoryMmap, InvalidArgumentError, Permissions } from "../mod.ts";
import { IommuMemory, IotlbIommu } from "../iommu.ts";
import { expectError } from "./fixtures/guest_assert.ts";

const BASE = 0x10000, SIZE = 0x4000, IOVA = 0x40000;
const WARM_CALLS = 2000;

type Method = (o: unknown, addr: unknown) => unknown;

function invoke(name: string, ...args: unknown[]): Method {
  return (o, addr) => (o as Record<string, (...a: unknown[]) => unknown>)[name](addr, ...args);
}

function invokeBuffer(name: string): Method {
  return (o, addr) => (o as Record<string, (...a: unknown[]) => unknown>)[name](new Uint8Array(8), addr);
}

function invokeIo(name: string): Method {
  return (o, addr) => (o as Record<string, (...a: unknown[]) => unknown>)[name](addr, new Uint8Array(8), 8);
}

const WIDTHS = ["U8", "U16", "U32", "U64"];

/** Every method of Bytes that takes an address, called with valid other arguments. */
const BYTE_ACCESS: Record<string, Method> = Object.fromEntries([
  ...["write", "read", "writeSlice", "readSlice"].map((n) => [n, invokeBuffer(n)]),
  ...["readVolatileFrom", "readExactVolatileFrom", "writeVolatileTo", "writeAllVolatileTo"].map((
    n,
  ) => [n, invokeIo(n)]),
  ...["U8", "U16", "U32", "U64", "U64Number", "I8", "I16", "I32", "I64", "F32", "F64"].map((t) => [
    `read${t}`,
    invoke(`read${t}`),
  ]),
  ...["U16", "U32", "U64", "I16", "I32", "I64", "F32", "F64"].map((t) => [`read${t}BE`, invoke(`read${t}BE`)]),
  ...["U8", "U16", "U32", "U64", "I8", "I16", "I32", "I64", "F32", "F64"].map((
    t,
  ) => [`write${t}`, invoke(`write${t}`, 1)]),
  ...["U16", "U32", "U64", "I16", "I32", "I64", "F32", "F64"].map((t) => [`write${t}BE`, invoke(`write${t}BE`, 1)]),
  ...WIDTHS.map((w) => [`load${w}`, invoke(`load${w}`)]),
  ...WIDTHS.map((w) => [`store${w}`, invoke(`store${w}`, 1)]),
  ...WIDTHS.map((w) => [`compareExchange${w}`, invoke(`compareExchange${w}`, 0, 1)]),
  ...WIDTHS.map((w) => [`add${w}`, invoke(`add${w}`, 1)]),
  ...WIDTHS.map((w) => [`or${w}`, invoke(`or${w}`, 1)]),
]);

const BAD: Array<[string, (valid: number) => unknown]> = [
  ["the valid address + 0.5", (v) => v + 0.5],
  ["the valid address - 0.5", (v) => v - 0.5],
  ["the valid address + 2^-20", (v) => v + 2 ** -20],
  ["-1", () => -1],
  ["-8", () => -8],
  ["NaN", () => NaN],
  ["Infinity", () => Infinity],
  ["-Infinity", () => -Infinity],
  ["2^53", () => 2 ** 53],
  ["2^53 + 8", () => 2 ** 53 + 8],
  ["1e300", () => 1e300],
  ["-1n", () => -1n],
  ["2^64n", () => 1n << 64n],
  ["a numeric string", (v) => String(v)],
  ["null", () => null],
  ["undefined", () => undefined],
  ["true", () => true],
  ["an object whose valueOf is the valid address", (v) => ({ valueOf: () => v })],
  ["an array holding the valid address", (v) => [v]],
];

interface Subject extends Disposable {
  readonly target: unknown;
  /** A digest of every byte and dirty bit the subject can change. */
  state(): string;
}

interface Kind {
  name: string;
  /** The class name errors carry. */
  type: string;
  /** The name of the address argument in errors. */
  argument: string;
  valid: number;
  methods: Record<string, Method>;
  /** Methods whose address defaults to 0 when left undefined. */
  defaulted?: readonly string[];
  make(): Subject;
}

function subject(pick: (mem: GuestMemoryMmap, iovaLog: AtomicBitmap) => unknown): () => Subject {
  return () => {
    const mem = GuestMemoryMmap.fromRanges([[BASE, SIZE]], { dirtyPageSize: 0x1000 });
    const iovaLog = new AtomicBitmap(IOVA + SIZE, 0x1000);
    return {
      target: pick(mem, iovaLog),
      state() {
        const bytes = new Uint8Array(SIZE);
        mem.read(bytes, BASE);
        let hash = 2166136261;
        for (let i = 0; i < bytes.length; i++) hash = Math.imul(hash ^ bytes[i], 16777619);
        const dirty = [(mem.regions()[0].bitmap as AtomicBitmap).dirtyRuns(), iovaLog.dirtyRuns()];
        return `${hash >>> 0} ${JSON.stringify(dirty)}`;
      },
      [Symbol.dispose]: () => mem.close(),
    };
  };
}

function iommu(mem: GuestMemoryMmap, iovaLog: AtomicBitmap, enabled: boolean): IommuMemory {
  const unit = new IotlbIommu();
  unit.iotlb.setMapping(IOVA, BASE, SIZE, Permissions.ReadWrite);
  return new IommuMemory(mem, unit, { enabled, bitmap: iovaLog });
}

const KINDS: Kind[] = [
  {
    name: "GuestMemoryMmap",
    type: "GuestMemoryMmap",
    argument: "addr",
    valid: BASE + 8,
    methods: {
      ...BYTE_ACCESS,
      getSlice: invoke("getSlice", 8),
      getSlices: invoke("getSlices", 8),
      getSlicesResult: invoke("getSlicesResult", 8),
      checkRange: invoke("checkRange", 8),
      findRegion: invoke("findRegion"),
      getHostAddress: invoke("getHostAddress"),
      toRegionAddr: invoke("toRegionAddr"),
      checkAddress: invoke("checkAddress"),
    },
    make: subject((mem) => mem),
  },
  {
    name: "GuestRegionMmap",
    type: "GuestRegionMmap",
    argument: "offset",
    valid: 8,
    methods: { ...BYTE_ACCESS, getSlice: invoke("getSlice", 8), getHostAddress: invoke("getHostAddress") },
    make: subject((mem) => mem.regions()[0]),
  },
  {
    name: "VolatileSlice",
    type: "VolatileSlice",
    argument: "offset",
    valid: 8,
    methods: { ...BYTE_ACCESS, subslice: invoke("subslice", 8), offset: invoke("offset"), splitAt: invoke("splitAt") },
    make: subject((mem) => mem.getSlice(BASE, SIZE)),
  },
  {
    name: "IommuMemory, translation on",
    type: "IommuMemory",
    argument: "addr",
    valid: IOVA + 8,
    methods: {
      ...BYTE_ACCESS,
      getSlice: invoke("getSlice", 8, Permissions.Write),
      getSlices: invoke("getSlices", 8, Permissions.Write),
      getSlicesResult: invoke("getSlicesResult", 8, Permissions.Read),
      checkRange: invoke("checkRange", 8, Permissions.Write),
    },
    make: subject((mem, log) => iommu(mem, log, true)),
  },
  {
    name: "IommuMemory, translation off",
    type: "IommuMemory",
    argument: "addr",
    valid: BASE + 8,
    methods: {
      ...BYTE_ACCESS,
      getSlice: invoke("getSlice", 8, Permissions.Write),
      getSlices: invoke("getSlices", 8, Permissions.Write),
      getSlicesResult: invoke("getSlicesResult", 8, Permissions.Read),
      checkRange: invoke("checkRange", 8, Permissions.Write),
    },
    make: subject((mem, log) => iommu(mem, log, false)),
  },
  {
    name: "MmapRegion",
    type: "MmapRegion",
    argument: "offset",
    valid: 8,
    methods: {
      read: invokeBuffer("read"),
      write: invokeBuffer("write"),
      bytes: invoke("bytes", 8),
      dataView: invoke("dataView", 8),
      unsafeBytes: invoke("unsafeBytes", 8),
      pointer: invoke("pointer"),
    },
    defaulted: ["bytes", "dataView", "unsafeBytes", "pointer"],
    make: subject((mem) => mem.regions()[0].mmap),
  },
];

/** What a call did, in a form two calls can be compared by. */
function refusal(fn: () => unknown): string {
  try {
    const result = fn();
    return `returned ${typeof result === "object" ? Object.prototype.toString.call(result) : String(result)}`;
  } catch (e) {
    if (!(e instanceof GuestMemoryError)) return `threw untyped ${String(e)}`;
    const argument = e instanceof InvalidArgumentError ? e.argument : "-";
    return `${e.name} ${e.kind} ${e.op} ${argument}: ${e.message}`;
  }
}

for (const kind of KINDS) {
  Deno.test(`hostile addresses: ${kind.name} refuses every bad address cold and warm alike, moving nothing`, () => {
    const problems: string[] = [];
    for (const [method, call] of Object.entries(kind.methods)) {
      const bad = kind.defaulted?.includes(method) ? BAD.filter(([label]) => label !== "undefined") : BAD;
      const expected = `InvalidArgumentError InvalidArgument ${kind.type}.${method} ${kind.argument}`;
      using cold = kind.make();
      const coldOutcomes = bad.map(([label, value]) => {
        const before = cold.state();
        const outcome = refusal(() => call(cold.target, value(kind.valid)));
        if (!outcome.startsWith(expected)) problems.push(`${method} cold, ${label}: ${outcome}`);
        if (cold.state() !== before) problems.push(`${method} cold, ${label}: moved`);
        return outcome;
      });
      using warm = kind.make();
      for (let i = 0; i < WARM_CALLS; i++) call(warm.target, kind.valid);
      bad.forEach(([label, value], i) => {
        const before = warm.state();
        const outcome = refusal(() => call(warm.target, value(kind.valid)));
        if (outcome !== coldOutcomes[i]) {
          problems.push(`${method} warm, ${label}: ${outcome}, cold: ${coldOutcomes[i]}`);
        }
        if (warm.state() !== before) problems.push(`${method} warm, ${label}: moved`);
      });
    }
    assert.deepEqual(problems, []);
  });
}

Deno.test("hostile addresses: a warm IommuMemory reads and writes nothing at IOVA 0x10000.5 (the issue's case)", () => {
  using mem = GuestMemoryMmap.fromRanges([[0, 0x10000]]);
  const unit = new IotlbIommu();
  unit.iotlb.setMapping(0x10000, 0, 0x1000, Permissions.ReadWrite);
  const dev = new IommuMemory(mem, unit);
  mem.writeU32(0, 0x04030201);
  for (let i = 0; i < 1000; i++) assert.equal(dev.readU8(0x10000), 1);
  const calls: Array<[string, () => unknown, number]> = [
    ["readU8", () => dev.readU8(0x10000 + 0.5), 0x10000 + 0.5],
    ["readI8", () => dev.readI8(0x10000 + 0.5), 0x10000 + 0.5],
    ["writeU16", () => dev.writeU16(0x10002 - 0.5, 0xbeef), 0x10002 - 0.5],
    ["write", () => dev.write(new Uint8Array([9]), 0x10000 + 0.5), 0x10000 + 0.5],
  ];
  for (const [method, call, addr] of calls) {
    const e = expectError(call, InvalidArgumentError, {
      kind: "InvalidArgument",
      op: `IommuMemory.${method}`,
      mentions: ["addr must be an integer"],
    });
    assert.deepEqual([e.argument, e.value], ["addr", addr]);
  }
  assert.equal(mem.readU32(0), 0x04030201, "no byte changed");
});
