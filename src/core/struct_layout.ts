/**
 * Struct layouts: vm-memory's `ByteValued` types (`read_obj`/`write_obj`) as data. A layout names
 * each field's offset and type (integers of 1 to 8 bytes in either byte order, floats, byte arrays,
 * arrays, nested layouts); `Bytes.readObj`/`writeObj` move a whole struct in one call, and
 * {@link StructLayout.decode}/{@link StructLayout.encode} do the same on plain bytes (a message
 * payload). A layout is checked once, when it is made: offsets are non-negative integers, fields
 * do not overlap, the size holds them all.
 * @module
 */

import { InvalidArgumentError } from "./errors.ts";

/**
 * A scalar field: `u`/`i` integers and `f` floats of 8 to 64 bits, little-endian unless the name
 * ends in `be`. 64-bit integers are `bigint`s (a number would lose precision above 2^53).
 *
 * @example
 * ```ts
 * import type { ScalarType } from "./struct_layout.ts";
 * const t: ScalarType = "u32be";
 * ```
 */
export type ScalarType =
  | "u8"
  | "i8"
  | "u16"
  | "i16"
  | "u32"
  | "i32"
  | "u64"
  | "i64"
  | "f32"
  | "f64"
  | "u16be"
  | "i16be"
  | "u32be"
  | "i32be"
  | "u64be"
  | "i64be"
  | "f32be"
  | "f64be";

/**
 * A byte array field of `bytes` bytes, read as a `Uint8Array` copy.
 *
 * @example
 * ```ts
 * import type { BytesType } from "./struct_layout.ts";
 * const mac: BytesType = { bytes: 6 };
 * ```
 */
export interface BytesType {
  /** Its length, at least 1. */
  readonly bytes: number;
}

/**
 * An array field: `count` elements of a scalar type or of a nested layout, packed one after the
 * other (each element's size apart).
 *
 * @example
 * ```ts
 * import type { ArrayType } from "./struct_layout.ts";
 * const ids: ArrayType = { array: "u16", count: 4 };
 * ```
 */
export interface ArrayType {
  /** The element type. */
  readonly array: ScalarType | StructLayout<object>;
  /** How many elements, at least 1. */
  readonly count: number;
}

/**
 * What a field can be.
 *
 * @example
 * ```ts
 * import type { FieldType } from "./struct_layout.ts";
 * const types: FieldType[] = ["u8", { bytes: 4 }, { array: "u32", count: 2 }];
 * ```
 */
export type FieldType = ScalarType | BytesType | ArrayType | StructLayout<object>;

/**
 * A field: its byte offset in the struct and its type.
 *
 * @example
 * ```ts
 * import type { FieldSpec } from "./struct_layout.ts";
 * const len: FieldSpec = [8, "u32"];
 * ```
 */
export type FieldSpec = readonly [offset: number, type: FieldType];

/**
 * The JavaScript value of a field of type `T`.
 *
 * @example
 * ```ts
 * import type { ValueOf } from "./struct_layout.ts";
 * const addr: ValueOf<"u64"> = 0x1000n;
 * ```
 */
export type ValueOf<T> = T extends "u64" | "i64" | "u64be" | "i64be" ? bigint
  : T extends ScalarType ? number
  : T extends BytesType ? Uint8Array
  : T extends { readonly array: infer E; readonly count: number } ? ValueOf<E>[]
  : T extends StructLayout<infer V> ? V
  : never;

/**
 * The plain object a layout with fields `F` reads and writes.
 *
 * @example
 * ```ts
 * import type { StructValue } from "./struct_layout.ts";
 * const v: StructValue<{ id: readonly [0, "u32"] }> = { id: 7 };
 * ```
 */
export type StructValue<F extends Record<string, FieldSpec>> = { -readonly [K in keyof F]: ValueOf<F[K][1]> };

/**
 * What `writeObj` and `encode` accept for a struct read as `V`: the same, except that 64-bit
 * integer fields also take safe integer numbers.
 *
 * @example
 * ```ts
 * import type { StructInput } from "./struct_layout.ts";
 * const v: StructInput<{ addr: bigint }> = { addr: 0x1000 };
 * ```
 */
export type StructInput<V> = V extends bigint ? bigint | number
  : V extends Uint8Array ? Uint8Array
  : V extends readonly (infer E)[] ? StructInput<E>[]
  : V extends object ? { [K in keyof V]: StructInput<V[K]> }
  : V;

/** Options of {@link defineLayout}. */
export interface LayoutOptions {
  /** The struct's size in bytes, at least the end of its last field (padding); default that end. */
  size?: number;
}

/**
 * The largest struct a layout may describe: `readObj` and `writeObj` move the whole struct through
 * memory of their own, so it is bounded.
 *
 * @example
 * ```ts
 * import { MAX_LAYOUT_SIZE } from "./struct_layout.ts";
 * console.log(MAX_LAYOUT_SIZE); // 1048576
 * ```
 */
export const MAX_LAYOUT_SIZE = 1 << 20;

/** Key of a layout's decoder over a DataView. Library-internal (not exported by the package). */
export const DECODE_AT: unique symbol = Symbol("gmem.decodeAt");
/** Key of a layout's checked encoder into a DataView. Library-internal. */
export const ENCODE_AT: unique symbol = Symbol("gmem.encodeAt");

// Scalar kinds: [size, getter, little-endian].
const SCALARS: Readonly<Record<ScalarType, readonly [number, number, boolean]>> = {
  u8: [1, 0, true],
  i8: [1, 1, true],
  u16: [2, 2, true],
  i16: [2, 3, true],
  u32: [4, 4, true],
  i32: [4, 5, true],
  u64: [8, 6, true],
  i64: [8, 7, true],
  f32: [4, 8, true],
  f64: [8, 9, true],
  u16be: [2, 2, false],
  i16be: [2, 3, false],
  u32be: [4, 4, false],
  i32be: [4, 5, false],
  u64be: [8, 6, false],
  i64be: [8, 7, false],
  f32be: [4, 8, false],
  f64be: [8, 9, false],
};

const INT_RANGE: ReadonlyArray<readonly [number, number]> = [
  [0, 0xff],
  [-0x80, 0x7f],
  [0, 0xffff],
  [-0x8000, 0x7fff],
  [0, 0xffffffff],
  [-0x80000000, 0x7fffffff],
];

/** A compiled field: `kind` 0-9 scalar (see SCALARS), 10 bytes, 11 nested; `count` > 0 for arrays. */
interface Field {
  readonly name: string;
  readonly offset: number;
  readonly kind: number;
  readonly le: boolean;
  /** Bytes of one element. */
  readonly size: number;
  /** Elements of an array field; 0 for a single value. */
  readonly count: number;
  readonly nested: StructLayout<object> | undefined;
}

function isScalar(t: unknown): t is ScalarType {
  return typeof t === "string" && Object.hasOwn(SCALARS, t);
}

function countOf(n: unknown, op: string, argument: string): number {
  if (typeof n === "number" && Number.isSafeInteger(n) && n >= 1 && n <= MAX_LAYOUT_SIZE) return n;
  throw new InvalidArgumentError(op, argument, n, `must be an integer in [1, ${MAX_LAYOUT_SIZE}]`);
}

function compileField(name: string, spec: unknown, op: string): Field {
  const where = `fields.${name}`;
  if (!Array.isArray(spec) || spec.length !== 2) {
    throw new InvalidArgumentError(op, where, spec, "must be [offset, type]");
  }
  const [offset, type] = spec as [unknown, unknown];
  if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0 || offset >= MAX_LAYOUT_SIZE) {
    throw new InvalidArgumentError(op, `${where} offset`, offset, `must be an integer in [0, ${MAX_LAYOUT_SIZE})`);
  }
  if (isScalar(type)) {
    const [size, kind, le] = SCALARS[type];
    return { name, offset, kind, le, size, count: 0, nested: undefined };
  }
  if (type instanceof StructLayout) {
    return { name, offset, kind: 11, le: true, size: type.size, count: 0, nested: type };
  }
  if (type !== null && typeof type === "object") {
    const t = type as Partial<BytesType & ArrayType>;
    if ("bytes" in t) {
      return {
        name,
        offset,
        kind: 10,
        le: true,
        size: countOf(t.bytes, op, `${where} bytes`),
        count: 0,
        nested: undefined,
      };
    }
    if ("array" in t) {
      const count = countOf(t.count, op, `${where} count`);
      const e = t.array;
      if (isScalar(e)) {
        const [size, kind, le] = SCALARS[e];
        return { name, offset, kind, le, size, count, nested: undefined };
      }
      if (e instanceof StructLayout) return { name, offset, kind: 11, le: true, size: e.size, count, nested: e };
      throw new InvalidArgumentError(op, `${where} array`, e, "must be a scalar type name or a StructLayout");
    }
  }
  throw new InvalidArgumentError(
    op,
    `${where} type`,
    type,
    "must be a scalar type (u8 … u64, i8 … i64, f32, f64, with a be suffix for big-endian), { bytes }, { array, count } or a StructLayout",
  );
}

function span(f: Field): number {
  return f.size * (f.count === 0 ? 1 : f.count);
}

/**
 * A checked struct layout (see {@link defineLayout}): its name, size and fields, and the decoder
 * and encoder `readObj`/`writeObj` use.
 *
 * @example
 * ```ts
 * import { defineLayout } from "./struct_layout.ts";
 * const Pair = defineLayout("Pair", { a: [0, "u16"], b: [2, "u16be"] });
 * console.log(Pair.size, Pair.decode(new Uint8Array([1, 0, 0, 2]))); // 4 { a: 1, b: 2 }
 * ```
 */
export class StructLayout<V extends object> {
  /** The name errors and inspection use. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** The fields as given, in offset order: name, offset and type. */
  readonly fields: ReadonlyArray<{ readonly name: string; readonly offset: number; readonly type: FieldType }>;
  readonly #fields: readonly Field[];
  // Every decoded object starts as a copy of this one, so that it has its final shape at once:
  // adding the fields one by one to `{}` goes through a new hidden class per field (measured
  // several times slower).
  readonly #template: Record<string, unknown>;
  #scratch: Uint8Array<ArrayBuffer> | undefined = undefined;
  #scratchView: DataView<ArrayBuffer> | undefined = undefined;
  #busy = false;

  /**
   * Checks and compiles the fields (see {@link defineLayout}, which also types the value).
   *
   * @example
   * ```ts
   * import { StructLayout } from "./struct_layout.ts";
   * console.log(new StructLayout("One", { x: [0, "u8"] }).size); // 1
   * ```
   */
  constructor(name: string, fields: Readonly<Record<string, FieldSpec>>, options: LayoutOptions = {}) {
    const { size, compiled, given } = compileLayout(name, fields, options);
    this.name = name;
    this.size = size;
    this.#fields = compiled;
    const template: Record<string, unknown> = {};
    for (const f of compiled) template[f.name] = undefined;
    this.#template = template;
    this.fields = Object.freeze(
      compiled.map((f) => Object.freeze({ name: f.name, offset: f.offset, type: given[f.name] })),
    );
  }

  /**
   * The struct at `offset` of `bytes`, as a plain object (byte arrays are copies). Throws
   * `InvalidArgumentError` unless `bytes` holds `size` bytes from `offset`.
   *
   * @example
   * ```ts
   * import { VHOST_USER_HEADER_LAYOUT } from "../../vhost_user.ts";
   * const h = VHOST_USER_HEADER_LAYOUT.decode(new Uint8Array([1, 0, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0]));
   * console.log(h); // { request: 1, flags: 1, size: 8 }
   * ```
   */
  decode(bytes: Uint8Array, offset = 0): V {
    const dv = this.#window(bytes, offset, `${this.name}.decode`);
    return this[DECODE_AT](dv, 0);
  }

  /**
   * `value` as bytes: into a new array, or into `into` at `offset`. Every field is checked first
   * (present, of its type and range), so `into` is untouched when one is wrong.
   *
   * @example
   * ```ts
   * import { VIRTQ_USED_ELEM_LAYOUT } from "../../vhost_user.ts";
   * console.log(VIRTQ_USED_ELEM_LAYOUT.encode({ id: 3, len: 512 })); // Uint8Array(8) [ 3, 0, 0, 0, 0, 2, 0, 0 ]
   * ```
   */
  encode(value: StructInput<V>, into?: Uint8Array, offset = 0): Uint8Array {
    const op = `${this.name}.encode`;
    const out = new Uint8Array(this.size);
    this[ENCODE_AT](new DataView(out.buffer), 0, value, op);
    if (into === undefined) return out;
    this.#window(into, offset, op);
    into.set(out, offset);
    return into;
  }

  /**
   * Reads the struct from `dv` at byte `base` (which must hold `size` bytes). Library-internal.
   *
   * @example
   * ```ts ignore
   * const v = layout[DECODE_AT](views.dv, offset);
   * ```
   */
  [DECODE_AT](dv: DataView, base: number): V {
    const out: Record<string, unknown> = { ...this.#template };
    const fields = this.#fields;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      const at = base + f.offset;
      if (f.count === 0) {
        out[f.name] = readField(f, dv, at);
      } else {
        const items: unknown[] = new Array(f.count);
        for (let k = 0; k < f.count; k++) items[k] = readField(f, dv, at + k * f.size);
        out[f.name] = items;
      }
    }
    return out as V;
  }

  /**
   * Writes `value` into `dv` at `base`, checking each field as it goes (errors name `op` and the
   * field's path). Callers write into scratch memory and copy once everything passed.
   * Library-internal.
   *
   * @example
   * ```ts ignore
   * layout[ENCODE_AT](scratchView, 0, value, "GuestMemoryMmap.writeObj");
   * ```
   */
  [ENCODE_AT](dv: DataView, base: number, value: unknown, op: string, path = "value"): void {
    if (value === null || typeof value !== "object") {
      throw new InvalidArgumentError(op, path, value, `must be an object with the fields of ${this.name}`);
    }
    const v = value as Record<string, unknown>;
    const fields = this.#fields;
    for (let i = 0; i < fields.length; i++) {
      const f = fields[i];
      const at = base + f.offset;
      const x = v[f.name];
      // Field paths are built only for an error: this runs for every field of every write.
      if (f.count === 0) {
        if (!writeField(f, dv, at, x, op, path)) throw fieldError(f, x, op, `${path}.${f.name}`);
        continue;
      }
      if (!Array.isArray(x) || x.length !== f.count) {
        throw new InvalidArgumentError(op, `${path}.${f.name}`, x, `must be an array of ${f.count} elements`);
      }
      for (let k = 0; k < f.count; k++) {
        if (!writeField(f, dv, at + k * f.size, x[k], op, path, k)) {
          throw fieldError(f, x[k], op, `${path}.${f.name}[${k}]`);
        }
      }
    }
  }

  /**
   * A scratch buffer of `size` bytes for one encoding, or a fresh one when the scratch is in use
   * (a getter of the value written re-entered). Give it back with {@link StructLayout.releaseScratch}.
   * Library-internal.
   *
   * @example
   * ```ts ignore
   * const scratch = layout.takeScratch();
   * ```
   */
  takeScratch(): Uint8Array<ArrayBuffer> {
    if (this.#busy) return new Uint8Array(this.size);
    this.#busy = true;
    return this.#scratch ??= new Uint8Array(this.size);
  }

  /**
   * A DataView over `scratch` (from {@link StructLayout.takeScratch}): the layout's own, made
   * once, for its own scratch. Library-internal.
   *
   * @example
   * ```ts ignore
   * layout[ENCODE_AT](layout.scratchView(scratch), 0, value, op);
   * ```
   */
  scratchView(scratch: Uint8Array<ArrayBuffer>): DataView<ArrayBuffer> {
    if (scratch !== this.#scratch) return new DataView(scratch.buffer);
    return this.#scratchView ??= new DataView(scratch.buffer);
  }

  /** Gives back what {@link StructLayout.takeScratch} gave. Library-internal. @example `layout.releaseScratch(s)` */
  releaseScratch(scratch: Uint8Array): void {
    if (scratch === this.#scratch) this.#busy = false;
  }

  /**
   * One line: name, size and fields with their offsets and types.
   *
   * @example
   * ```ts
   * import { VIRTQ_USED_ELEM_LAYOUT } from "../../vhost_user.ts";
   * console.log(String(VIRTQ_USED_ELEM_LAYOUT)); // "StructLayout VirtqUsedElem (8 bytes): id u32 @0x0, len u32 @0x4"
   * ```
   */
  toString(): string {
    const fields = this.fields.map((f) => `${f.name} ${typeText(f.type)} @0x${f.offset.toString(16)}`);
    return `StructLayout ${this.name} (${this.size} bytes): ${fields.join(", ")}`;
  }

  /** The same line for `console.log`. @example `console.log(layout)` */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /** The same line for Node's and Bun's `util.inspect`. @example `console.log(layout)` */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  #window(bytes: Uint8Array, offset: number, op: string): DataView {
    if (!(bytes instanceof Uint8Array)) throw new InvalidArgumentError(op, "bytes", bytes, "must be a Uint8Array");
    if (!Number.isSafeInteger(offset) || offset < 0 || offset > bytes.length - this.size) {
      throw new InvalidArgumentError(
        op,
        "offset",
        offset,
        `must be an integer with offset + ${this.size} (the struct's size) at most ${bytes.length}`,
      );
    }
    return new DataView(bytes.buffer, bytes.byteOffset + offset, this.size);
  }
}

function typeText(t: FieldType): string {
  if (typeof t === "string") return t;
  if (t instanceof StructLayout) return t.name;
  if ("bytes" in t) return `[u8; ${t.bytes}]`;
  return `[${typeof t.array === "string" ? t.array : t.array.name}; ${t.count}]`;
}

function readField(f: Field, dv: DataView, at: number): unknown {
  const le = f.le;
  switch (f.kind) {
    case 0:
      return dv.getUint8(at);
    case 1:
      return dv.getInt8(at);
    case 2:
      return dv.getUint16(at, le);
    case 3:
      return dv.getInt16(at, le);
    case 4:
      return dv.getUint32(at, le);
    case 5:
      return dv.getInt32(at, le);
    case 6:
      return dv.getBigUint64(at, le);
    case 7:
      return dv.getBigInt64(at, le);
    case 8:
      return f.size === 4 ? dv.getFloat32(at, le) : dv.getFloat64(at, le);
    case 9:
      return dv.getFloat64(at, le);
    case 10:
      return new Uint8Array(dv.buffer.slice(dv.byteOffset + at, dv.byteOffset + at + f.size));
    default:
      return f.nested![DECODE_AT](dv, at);
  }
}

/**
 * Writes one element of `f` at `at`; false if `x` is not of its type or range (the caller names
 * the field). A nested struct checks and throws itself, under the path `path.name[index]`.
 */
function writeField(f: Field, dv: DataView, at: number, x: unknown, op: string, path: string, index = -1): boolean {
  const le = f.le;
  const kind = f.kind;
  if (kind <= 5) {
    const range = INT_RANGE[kind];
    if (typeof x !== "number" || !Number.isInteger(x) || x < range[0] || x > range[1]) return false;
    if (kind <= 1) dv.setUint8(at, x & 0xff);
    else if (kind <= 3) dv.setUint16(at, x & 0xffff, le);
    else dv.setUint32(at, x >>> 0, le);
    return true;
  }
  if (kind === 6 || kind === 7) {
    let b: bigint;
    if (typeof x === "bigint") b = x;
    else if (typeof x === "number" && Number.isSafeInteger(x)) b = BigInt(x);
    else return false;
    if (kind === 7 ? BigInt.asIntN(64, b) !== b : BigInt.asUintN(64, b) !== b) return false;
    dv.setBigUint64(at, BigInt.asUintN(64, b), le);
    return true;
  }
  if (kind === 8 || kind === 9) {
    if (typeof x !== "number") return false;
    if (f.size === 4) dv.setFloat32(at, x, le);
    else dv.setFloat64(at, x, le);
    return true;
  }
  if (kind === 10) {
    if (!(x instanceof Uint8Array) || x.length !== f.size) return false;
    new Uint8Array(dv.buffer, dv.byteOffset + at, f.size).set(x);
    return true;
  }
  f.nested![ENCODE_AT](dv, at, x, op, index < 0 ? `${path}.${f.name}` : `${path}.${f.name}[${index}]`);
  return true;
}

function fieldError(f: Field, x: unknown, op: string, where: string): InvalidArgumentError {
  const kind = f.kind;
  let why: string;
  if (kind <= 5) why = `must be an integer in [${INT_RANGE[kind][0]}, ${INT_RANGE[kind][1]}]`;
  else if (kind === 6) why = "must be a u64 (bigint, or a safe non-negative integer)";
  else if (kind === 7) why = "must be an i64 (bigint, or a safe integer)";
  else if (kind <= 9) why = "must be a number";
  else why = `must be a Uint8Array of ${f.size} bytes`;
  return new InvalidArgumentError(op, where, x, why);
}

/**
 * A struct layout from its fields, each `name: [offset, type]`. The result's `readObj`/`decode`
 * value has exactly these fields, typed (`u64` fields as `bigint`). Throws
 * `InvalidArgumentError` for a field whose offset is not a non-negative integer, whose type is
 * unknown, that overlaps another, that is named `__proto__`, for no fields at all, or for a
 * `size` smaller than the fields' end or above {@link MAX_LAYOUT_SIZE}.
 *
 * @example
 * ```ts
 * import { defineLayout, GuestMemoryMmap } from "../../mod.ts";
 * const Header = defineLayout("Header", { magic: [0, "u32be"], version: [4, "u16"], flags: [6, "u16"] }, { size: 16 });
 * using mem = GuestMemoryMmap.fromRanges([[0, 0x1000]]);
 * mem.writeObj(0x100, Header, { magic: 0x7f454c46, version: 1, flags: 0 });
 * console.log(mem.readObj(0x100, Header).magic.toString(16)); // "7f454c46"
 * ```
 */
export function defineLayout<const F extends Record<string, FieldSpec>>(
  name: string,
  fields: F,
  options: LayoutOptions = {},
): StructLayout<StructValue<F>> {
  return new StructLayout<StructValue<F>>(name, fields, options);
}

function compileLayout(
  name: unknown,
  fields: unknown,
  options: unknown,
): { size: number; compiled: Field[]; given: Record<string, FieldType> } {
  const op = "defineLayout";
  if (typeof name !== "string" || name.length === 0) {
    throw new InvalidArgumentError(op, "name", name, "must be a non-empty string");
  }
  if (fields === null || typeof fields !== "object" || Array.isArray(fields)) {
    throw new InvalidArgumentError(op, "fields", fields, "must be an object of name: [offset, type]");
  }
  if (options === null || typeof options !== "object") {
    throw new InvalidArgumentError(op, "options", options, "must be an object");
  }
  const names = Object.keys(fields);
  if (names.length === 0) throw new InvalidArgumentError(op, "fields", fields, "must have at least one field");
  const compiled: Field[] = [];
  const given: Record<string, FieldType> = {};
  for (const n of names) {
    if (n === "__proto__") {
      throw new InvalidArgumentError(
        op,
        "fields",
        n,
        "may not have a field named __proto__ (it would set the prototype)",
      );
    }
    const f = compileField(n, (fields as Record<string, unknown>)[n], op);
    compiled.push(f);
    given[n] = (fields as Record<string, FieldSpec>)[n][1];
  }
  compiled.sort((a, b) => a.offset - b.offset);
  let end = 0;
  for (let i = 0; i < compiled.length; i++) {
    const f = compiled[i];
    const fEnd = f.offset + span(f);
    if (fEnd > MAX_LAYOUT_SIZE) {
      throw new InvalidArgumentError(op, `fields.${f.name}`, fEnd, `ends past ${MAX_LAYOUT_SIZE} bytes`);
    }
    const prev = compiled[i - 1];
    if (prev !== undefined && f.offset < prev.offset + span(prev)) {
      throw new InvalidArgumentError(
        op,
        `fields.${f.name}`,
        f.offset,
        `overlaps field ${prev.name} [0x${prev.offset.toString(16)}, 0x${(prev.offset + span(prev)).toString(16)})`,
      );
    }
    end = Math.max(end, fEnd);
  }
  const size = (options as LayoutOptions).size ?? end;
  if (typeof size !== "number" || !Number.isSafeInteger(size) || size < end || size > MAX_LAYOUT_SIZE) {
    throw new InvalidArgumentError(
      op,
      "options.size",
      size,
      `must be an integer in [${end}, ${MAX_LAYOUT_SIZE}] (the fields end at ${end})`,
    );
  }
  return { size, compiled, given };
}
