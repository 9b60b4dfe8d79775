// Every IommuMemory method names itself in the errors it throws, with translation on and off: the
// backend behind it (a GuestMemoryMmap) and the slices it makes are details a caller never called.
import assert from "node:assert/strict";
import { GuestMemoryError, GuestMemoryMmap, GuestRegionMmap, Permissions, PROT_READ } from "../mod.ts";
import { IommuMemory, IotlbIommu } from "../iommu.ts";

const PAGE = 0x1000;

/** Where each failure happens, by guest physical address and by the IOVA that maps to it. */
const PLACES = {
  unbacked: { gpa: 0x40000, iova: 0x300000 },
  readOnly: { gpa: 0x10000, iova: 0x200000 },
  misaligned: { gpa: 0x1001, iova: 0x101001 },
};

type Place = keyof typeof PLACES;

function memory(enabled: boolean): [IommuMemory, GuestMemoryMmap] {
  const ro = GuestRegionMmap.fromRange(0x10000, PAGE, undefined, { prot: PROT_READ });
  const ram = GuestMemoryMmap.fromRanges([[0, 0x10000]]).insertRegion(ro);
  const unit = new IotlbIommu();
  unit.iotlb.setMapping(0x100000, 0, 0x10000, Permissions.ReadWrite);
  unit.iotlb.setMapping(0x200000, 0x10000, PAGE, Permissions.ReadWrite);
  unit.iotlb.setMapping(0x300000, 0x40000, PAGE, Permissions.ReadWrite);
  return [new IommuMemory(ram, unit, { enabled }), ram];
}

type Call = (m: IommuMemory, addr: number) => unknown;

function method(name: string, ...rest: unknown[]): Call {
  return (m, addr) => (m as unknown as Record<string, (...a: unknown[]) => unknown>)[name](addr, ...rest);
}

const WIDTHS = ["U8", "U16", "U32", "U64"];
const SCALARS = ["U8", "U16", "U32", "U64", "I8", "I16", "I32", "I64", "F32", "F64"];

/** [method, places that make it fail, call]. */
const CASES: Array<[string, Place[], Call]> = [
  ["write", ["unbacked", "readOnly"], (m, a) => m.write(new Uint8Array(8), a)],
  ["read", ["unbacked"], (m, a) => m.read(new Uint8Array(8), a)],
  ["writeSlice", ["unbacked", "readOnly"], (m, a) => m.writeSlice(new Uint8Array(8), a)],
  ["readSlice", ["unbacked"], (m, a) => m.readSlice(new Uint8Array(8), a)],
  ["readVolatileFrom", ["unbacked", "readOnly"], (m, a) => m.readVolatileFrom(a, new Uint8Array(8), 8)],
  ["readExactVolatileFrom", ["unbacked", "readOnly"], (m, a) => m.readExactVolatileFrom(a, new Uint8Array(8), 8)],
  ["writeVolatileTo", ["unbacked"], (m, a) => m.writeVolatileTo(a, new Uint8Array(8), 8)],
  ["writeAllVolatileTo", ["unbacked"], (m, a) => m.writeAllVolatileTo(a, new Uint8Array(8), 8)],
  ["getSlice", ["unbacked"], (m, a) => m.getSlice(a, 8)],
  ["getSlices", ["unbacked"], (m, a) => m.getSlices(a, 8)],
  ...SCALARS.map((t): [string, Place[], Call] => [`read${t}`, ["unbacked"], method(`read${t}`)]),
  ...SCALARS.map((t): [string, Place[], Call] => [`write${t}`, ["unbacked", "readOnly"], method(`write${t}`, 1)]),
  ...["U16", "U32", "U64", "I16", "I32", "I64", "F32", "F64"].flatMap((t): Array<[string, Place[], Call]> => [
    [`read${t}BE`, ["unbacked"], method(`read${t}BE`)],
    [`write${t}BE`, ["unbacked", "readOnly"], method(`write${t}BE`, 1)],
  ]),
  ...WIDTHS.flatMap((w): Array<[string, Place[], Call]> => [
    [`load${w}`, w === "U8" ? ["unbacked"] : ["unbacked", "misaligned"], method(`load${w}`)],
    [
      `store${w}`,
      w === "U8" ? ["unbacked", "readOnly"] : ["unbacked", "readOnly", "misaligned"],
      method(`store${w}`, 1),
    ],
    [`compareExchange${w}`, ["unbacked", "readOnly"], method(`compareExchange${w}`, 0, 1)],
    [`add${w}`, ["unbacked", "readOnly"], method(`add${w}`, 1)],
    [`or${w}`, ["unbacked", "readOnly"], method(`or${w}`, 1)],
  ]),
];

for (const enabled of [true, false]) {
  Deno.test(`iommu names: with translation ${enabled ? "on" : "off"}, every method's errors name that method`, () => {
    const [mem, ram] = memory(enabled);
    using _ram = ram;
    const problems: string[] = [];
    for (const [name, places, call] of CASES) {
      for (const place of places) {
        const addr = enabled ? PLACES[place].iova : PLACES[place].gpa;
        try {
          call(mem, addr);
          problems.push(`${name} at ${place}: did not throw`);
        } catch (e) {
          if (!(e instanceof GuestMemoryError)) problems.push(`${name} at ${place}: untyped ${String(e)}`);
          else if (e.op !== `IommuMemory.${name}` || !e.message.startsWith(`IommuMemory.${name}: `)) {
            problems.push(`${name} at ${place}: ${e.name} ${e.message}`);
          }
        }
      }
    }
    assert.deepEqual(problems, []);
  });

  Deno.test(`iommu names: with translation ${enabled ? "on" : "off"}, asynchronous I/O names its method`, async () => {
    const [mem, ram] = memory(enabled);
    using _ram = ram;
    const addr = enabled ? PLACES.unbacked.iova : PLACES.unbacked.gpa;
    const stream = {
      read: (p: Uint8Array) => Promise.resolve(p.length),
      write: (p: Uint8Array) => Promise.resolve(p.length),
    };
    for (
      const [name, run] of [
        ["readVolatileFromAsync", () => mem.readVolatileFromAsync(addr, stream, 8)],
        ["readExactVolatileFromAsync", () => mem.readExactVolatileFromAsync(addr, stream, 8)],
        ["writeVolatileToAsync", () => mem.writeVolatileToAsync(addr, stream, 8)],
        ["writeAllVolatileToAsync", () => mem.writeAllVolatileToAsync(addr, stream, 8)],
      ] as const
    ) {
      await assert.rejects(run, (e) => e instanceof GuestMemoryError && e.op === `IommuMemory.${name}`);
    }
  });
}
