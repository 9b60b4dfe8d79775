/**
 * `TranslationGuard`: revokes the slices `IommuMemory` hands out once the IOTLB no longer
 * translates their I/O virtual range to the same place.
 * @module
 */

import type { GuestMemoryError } from "../core/errors.ts";
import { type IovaRange, SliceRevokedError } from "./iommu_errors.ts";
import { LEASE_VIEW, RELEASE_VIEW, type SliceGuard } from "../core/slice_guard.ts";
import { type BufferLease, LEASE, type Mapping } from "../core/mapping.ts";
import type { Iotlb } from "./iotlb.ts";
import type { Permission } from "../core/permissions.ts";

/** How many of its latest leases a guard shares with new views of the same range. */
const RECENT = 4;

/**
 * Options of a {@link TranslationGuard}.
 *
 * @example
 * ```ts
 * import type { TranslationGuardOptions } from "../../iommu.ts";
 * const options: TranslationGuardOptions = { revokeViews: true };
 * ```
 */
export interface TranslationGuardOptions {
  /**
   * Also revoke zero-copy views: `bytes()`/`dataView()` of a guarded slice become views over a
   * buffer leased for exactly its range, detached at the IOTLB change that revokes the guard.
   * Default false (only the slices' methods are revoked).
   */
  revokeViews?: boolean;
  /**
   * The lifetime of the memory that handed the slices out (an `IommuMemory`): {@link endGuards}
   * revokes at once the guards of it that watch the IOTLB (they hold leased views), and once it
   * has ended a guard leases no more views (it is revoked instead). Guards that hold nothing are
   * left alone: their check is on every access of their slices, and stays one comparison.
   */
  life?: GuardLife;
}

/**
 * The lifetime shared by the guards of one `IommuMemory`: whether it ended, and the guards that
 * watch the IOTLB meanwhile (they hold leased views and a watcher; the others hold nothing).
 *
 * @example
 * ```ts ignore
 * const life: GuardLife = { ended: false, watching: new Set() };
 * ```
 */
export interface GuardLife {
  /** Set once by {@link endGuards}. */
  ended: boolean;
  /** The guards of this lifetime that watch the IOTLB now. */
  readonly watching: Set<TranslationGuard>;
}

/**
 * Ends `life`: the guards of it that watch the IOTLB are revoked now (their leased views detached,
 * the watcher removed), and no guard of it leases a view afterwards. Calling it again does nothing.
 *
 * @example
 * ```ts ignore
 * endGuards(life); // from IommuMemory's dispose
 * ```
 */
export function endGuards(life: GuardLife): void {
  if (life.ended) return;
  life.ended = true;
  for (const guard of [...life.watching]) guard.revoke();
}

/**
 * Valid while `[iova, iova + length)` still translates, for `access`, to the contiguous target
 * range starting at `target`. The check is lazy: it compares the IOTLB's generation (one integer)
 * and re-translates only after the IOTLB changed; once revoked, the guard stays revoked even if the
 * same mapping comes back (the device would have to translate again).
 *
 * With `revokeViews`, the guard leases the buffers of its slices' zero-copy views and, while it
 * holds any, watches the IOTLB: the change that revokes it detaches them at once (length 0,
 * methods throw `TypeError`), not at the next use. It stops watching when revoked or when its
 * views are gone (garbage, or their memory closed).
 *
 * @example
 * ```ts
 * import { Permissions } from "../../mod.ts";
 * import { Iotlb, TranslationGuard } from "../../iommu.ts";
 * const iotlb = new Iotlb();
 * iotlb.setMapping(0x1000, 0x8000, 0x1000, Permissions.Read);
 * const guard = new TranslationGuard(iotlb, { base: 0x1000n, length: 0x100 }, 0x8000n, Permissions.Read);
 * iotlb.invalidate(0x1080, 1);
 * console.log(guard.isValid()); // false
 * ```
 */
export class TranslationGuard implements SliceGuard {
  readonly #iotlb: Iotlb;
  readonly #range: IovaRange;
  readonly #target: bigint;
  readonly #access: Permission;
  readonly #revokeViews: boolean;
  readonly #life: GuardLife | undefined;
  #generation: number;
  #revoked = false;
  /** The leases of live views (revokeViews only), made on the first. */
  #leases: Set<BufferLease> | undefined = undefined;
  /** The latest leases, for sharing (see LEASE_VIEW). */
  #recent: BufferLease[] | undefined = undefined;
  /** Registered with the IOTLB while there are leases. */
  #watcher: (() => void) | undefined = undefined;
  #onGone: ((lease: BufferLease) => void) | undefined = undefined;

  /** Guards the translation of `range` to `target` for `access`, as the IOTLB has it now. */
  constructor(
    iotlb: Iotlb,
    range: IovaRange,
    target: bigint,
    access: Permission,
    options: TranslationGuardOptions = {},
  ) {
    this.#iotlb = iotlb;
    this.#range = range;
    this.#target = target;
    this.#access = access;
    this.#revokeViews = options.revokeViews === true;
    this.#life = options.life;
    this.#generation = iotlb.generation;
  }

  /** Whether zero-copy views are revoked too (the `revokeViews` option). @example `guard.revokesViews` */
  get revokesViews(): boolean {
    return this.#revokeViews;
  }

  /** Whether the translation still holds. @example `guard.isValid()` */
  isValid(): boolean {
    if (this.#revoked) return false;
    const g = this.#iotlb.generation;
    if (g === this.#generation) return true;
    return this.#recheck(g);
  }

  /**
   * Revokes the guard now and for good, whatever the IOTLB says: its slices' methods throw
   * `SliceRevokedError`, its leased views are detached, and it stops watching the IOTLB.
   *
   * @example
   * ```ts
   * import { Iotlb, TranslationGuard } from "../../iommu.ts";
   * import { Permissions } from "../../mod.ts";
   * const iotlb = new Iotlb();
   * iotlb.setMapping(0x1000, 0x8000, 0x1000, Permissions.Read);
   * const guard = new TranslationGuard(iotlb, { base: 0x1000n, length: 0x100 }, 0x8000n, Permissions.Read);
   * guard.revoke();
   * console.log(guard.isValid()); // false
   * ```
   */
  revoke(): void {
    if (!this.#revoked) this.#revoke();
  }

  /** The error for an operation on a revoked slice. @example `guard.revokedError("VolatileSlice.readU8")` */
  revokedError(op: string): GuestMemoryError {
    return new SliceRevokedError(op, this.#range);
  }

  /**
   * With `revokeViews`, a buffer leased from `region` for a view of a guarded slice; otherwise
   * `undefined` (the view is a window on the region's own buffer). Library-internal.
   *
   * @example
   * ```ts ignore
   * const buffer = guard[LEASE_VIEW](mmap, 0x1000, 16, "VolatileSlice.bytes");
   * ```
   * @ignore
   */
  [LEASE_VIEW](region: Mapping, offset: number, length: number, op: string): ArrayBuffer | undefined {
    if (!this.#revokeViews || this.#revoked) return undefined;
    // A disposed IommuMemory's slices take no new leases: the view would need a watcher again.
    if (this.#life?.ended === true) {
      this.#revoke();
      throw this.revokedError(op);
    }
    // Views of a range leased lately share its buffer: bytes() of a slice (or of a few subslices in
    // turn) taken again costs no new buffer.
    const recent = this.#recent ??= [];
    for (let i = 0; i < recent.length; i++) {
      const held = recent[i];
      if (held.offset === offset && held.length === length && held.region === region) {
        const buffer = held.buffer;
        if (buffer?.detached === false) return buffer;
      }
    }
    const onGone = this.#onGone ??= (lease) => this.#forget(lease);
    const lease = region[LEASE](offset, length, op, onGone);
    (this.#leases ??= new Set()).add(lease);
    if (recent.length === RECENT) recent.shift();
    recent.push(lease);
    if (this.#watcher === undefined) {
      this.#watcher = () => this.#changed();
      this.#iotlb.watch(this.#watcher);
      this.#life?.watching.add(this);
    }
    // Made in this same job, so not yet collectable.
    return lease.buffer!;
  }

  /**
   * Detaches `buffer`, a view's buffer this guard leased, and forgets its lease (a disposed slice
   * gives its views back). Library-internal.
   *
   * @example
   * ```ts ignore
   * guard[RELEASE_VIEW](buffer);
   * ```
   */
  [RELEASE_VIEW](buffer: ArrayBuffer): void {
    const leases = this.#leases;
    if (leases === undefined) return;
    for (const lease of leases) {
      if (lease.buffer !== buffer) continue;
      lease.release();
      this.#forget(lease);
      return;
    }
  }

  /**
   * The IOTLB changed: check now rather than at the next use, so that views go at the change; if
   * the translation holds, forget the leases whose views are garbage (the guard may stop watching).
   */
  #changed(): void {
    if (!this.isValid()) return;
    const leases = this.#leases;
    if (leases !== undefined) { for (const lease of leases) if (lease.buffer === undefined) this.#forget(lease); }
  }

  /** Revokes for good: every leased view is detached and the IOTLB no longer watched. */
  #revoke(): false {
    this.#revoked = true;
    const leases = this.#leases;
    this.#leases = undefined;
    this.#recent = undefined;
    this.#unwatch();
    if (leases !== undefined) { for (const lease of leases) lease.release(); }
    return false;
  }

  /** The region dropped a lease by itself (closed, collected, stolen): nothing left to detach there. */
  #forget(lease: BufferLease): void {
    const leases = this.#leases;
    const recent = this.#recent;
    const at = recent === undefined ? -1 : recent.indexOf(lease);
    if (at >= 0) recent!.splice(at, 1);
    if (leases === undefined || !leases.delete(lease) || leases.size !== 0) return;
    this.#leases = undefined;
    this.#unwatch();
  }

  #unwatch(): void {
    if (this.#watcher === undefined) return;
    this.#iotlb.unwatch(this.#watcher);
    this.#watcher = undefined;
    this.#life?.watching.delete(this);
  }

  #recheck(generation: number): boolean {
    const r = this.#iotlb.probe(this.#range.base, this.#range.length, this.#access);
    let expected = this.#target;
    if (r.ok) {
      for (const m of r.ranges) {
        if (m.base !== expected) return this.#revoke();
        expected += BigInt(m.length);
      }
      this.#generation = generation;
      return true;
    }
    return this.#revoke();
  }
}
