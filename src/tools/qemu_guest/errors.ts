/**
 * The real-guest harness's two failures: what this machine cannot provide (the tests that need it
 * are then ignored, saying why) and what the caller got wrong. Anything else is a bug and is thrown
 * as it is, so that it fails the test instead of skipping it.
 * @module
 */

/**
 * QEMU, a Debian package or a host tool cannot be had here (not installed and not installable, no
 * network, not root). The message starts with the operation and says what was missing.
 *
 * @example
 * ```ts ignore
 * try {
 *   await fetchGuest();
 * } catch (e) {
 *   if (e instanceof GuestUnavailable) console.log(`skipped: ${e.message}`);
 *   else throw e;
 * }
 * ```
 */
export class GuestUnavailable extends Error {
  /** The harness operation that needed it, e.g. `"fetchGuest"`. */
  readonly op: string;

  /** Builds an error whose message is `op: reason`. */
  constructor(op: string, reason: string, options?: ErrorOptions) {
    super(`${op}: ${reason}`, options);
    this.op = op;
    this.name = "GuestUnavailable";
  }
}

/**
 * A harness call had an impossible argument (an unknown job, a kernel parameter with a space, a
 * timeout that is not a positive number). Nothing was started.
 *
 * @example
 * ```ts ignore
 * await bootGuest({ files, jobs: ["no such job"], iommu: false }); // throws GuestOptionError
 * ```
 */
export class GuestOptionError extends Error {
  /** The harness operation, e.g. `"bootGuest"`. */
  readonly op: string;
  /** The option that was wrong, e.g. `"jobs"`. */
  readonly option: string;

  /** Builds an error whose message is `op: option: reason`. */
  constructor(op: string, option: string, reason: string) {
    super(`${op}: ${option}: ${reason}`);
    this.op = op;
    this.option = option;
    this.name = "GuestOptionError";
  }
}
