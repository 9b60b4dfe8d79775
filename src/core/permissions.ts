/**
 * Access permissions of an IOMMU mapping and of an access (vm-memory's `Permissions`): two bits,
 * read and write, so that "every wanted bit is held" is one AND.
 * @module
 */

import { InvalidArgumentError } from "./errors.ts";

/**
 * The four permission values. An access asks for one of them; a mapping grants one of them.
 *
 * @example
 * ```ts
 * import { allows, Permissions } from "./permissions.ts";
 * console.log(allows(Permissions.ReadWrite, Permissions.Write)); // true
 * ```
 */
export const Permissions = {
  /** Nothing; as an access, only asks that the range be mapped. */
  No: 0,
  /** Read only. */
  Read: 1,
  /** Write only. */
  Write: 2,
  /** Both. */
  ReadWrite: 3,
} as const;

/**
 * One permission value: 0 (No), 1 (Read), 2 (Write) or 3 (ReadWrite).
 *
 * @example
 * ```ts
 * import { type Permission, Permissions } from "./permissions.ts";
 * const p: Permission = Permissions.Read;
 * ```
 */
export type Permission = 0 | 1 | 2 | 3;

const NAMES = ["No", "Read", "Write", "ReadWrite"] as const;

/**
 * Whether `have` grants every bit `want` asks for. `No` is allowed by everything; `ReadWrite` needs
 * `ReadWrite`.
 *
 * @example
 * ```ts
 * import { allows, Permissions } from "./permissions.ts";
 * console.log(allows(Permissions.Read, Permissions.ReadWrite)); // false
 * ```
 */
export function allows(have: Permission, want: Permission): boolean {
  return (have & want) === want;
}

/**
 * The permissions held by either side.
 *
 * @example
 * ```ts
 * import { Permissions, union } from "./permissions.ts";
 * console.log(union(Permissions.Read, Permissions.Write)); // 3
 * ```
 */
export function union(a: Permission, b: Permission): Permission {
  return (a | b) as Permission;
}

/**
 * The permissions held by both sides.
 *
 * @example
 * ```ts
 * import { intersection, Permissions } from "./permissions.ts";
 * console.log(intersection(Permissions.ReadWrite, Permissions.Write)); // 2
 * ```
 */
export function intersection(a: Permission, b: Permission): Permission {
  return (a & b) as Permission;
}

/**
 * Whether the write bit is set (Write or ReadWrite).
 *
 * @example
 * ```ts
 * import { hasWrite, Permissions } from "./permissions.ts";
 * console.log(hasWrite(Permissions.Read)); // false
 * ```
 */
export function hasWrite(p: Permission): boolean {
  return (p & 2) !== 0;
}

/**
 * The name of a permission value ("No", "Read", "Write", "ReadWrite").
 *
 * @example
 * ```ts
 * import { permissionName } from "./permissions.ts";
 * console.log(permissionName(3)); // "ReadWrite"
 * ```
 */
export function permissionName(p: Permission): string {
  return NAMES[p];
}

/**
 * Checks that `value` is a permission (an integer 0–3, or one of the names) and returns it.
 *
 * @example
 * ```ts
 * import { toPermission } from "./permissions.ts";
 * console.log(toPermission("Write", "Iotlb.setMapping", "perm")); // 2
 * ```
 * @throws {InvalidArgumentError} for anything else.
 */
export function toPermission(value: unknown, op: string, argument: string): Permission {
  if (value === 0 || value === 1 || value === 2 || value === 3) return value;
  if (typeof value === "string") {
    const i = (NAMES as readonly string[]).indexOf(value);
    if (i >= 0) return i as Permission;
  }
  throw new InvalidArgumentError(op, argument, value, "must be a permission: 0-3 or No, Read, Write, ReadWrite");
}
