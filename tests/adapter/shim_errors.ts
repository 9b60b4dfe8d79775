/**
 * `Deno.errors` for the Bun test adapter: the error classes tests check with `instanceof`, and the
 * mapping from Node-style error codes (what `node:fs` and `node:net` throw on Bun) to them.
 * @module
 */

/** A `Deno.errors.*` class of the adapter. */
export type DenoErrorClass = new (message?: string, options?: ErrorOptions) => Error;

function errorClass(name: string): DenoErrorClass {
  const cls = class extends Error {
    constructor(message?: string, options?: ErrorOptions) {
      super(message, options);
      this.name = name;
    }
  };
  Object.defineProperty(cls, "name", { value: name });
  return cls;
}

/**
 * The adapter's `Deno.errors`.
 *
 * @example
 * ```ts ignore
 * throw new denoErrors.NotFound("no such file");
 * ```
 */
export const denoErrors: Readonly<Record<string, DenoErrorClass>> = Object.fromEntries(
  [
    "NotFound",
    "PermissionDenied",
    "ConnectionRefused",
    "ConnectionReset",
    "ConnectionAborted",
    "NotConnected",
    "AddrInUse",
    "AddrNotAvailable",
    "BrokenPipe",
    "AlreadyExists",
    "InvalidData",
    "TimedOut",
    "Interrupted",
    "WriteZero",
    "WouldBlock",
    "UnexpectedEof",
    "BadResource",
    "Http",
    "Busy",
    "NotSupported",
    "FilesystemLoop",
    "IsADirectory",
    "NetworkUnreachable",
    "NotADirectory",
    "NotCapable",
  ].map((name) => [name, errorClass(name)]),
);

const BY_CODE: Readonly<Record<string, string>> = {
  ENOENT: "NotFound",
  EACCES: "PermissionDenied",
  EPERM: "PermissionDenied",
  EEXIST: "AlreadyExists",
  EISDIR: "IsADirectory",
  ENOTDIR: "NotADirectory",
  EBADF: "BadResource",
  EPIPE: "BrokenPipe",
  // node:net's own refusals of a write once the socket is gone (Bun gives these under load, where
  // Deno reports the kernel's EPIPE): the same broken pipe to a caller.
  ERR_STREAM_DESTROYED: "BrokenPipe",
  ERR_STREAM_WRITE_AFTER_END: "BrokenPipe",
  ECONNREFUSED: "ConnectionRefused",
  ECONNRESET: "ConnectionReset",
  EADDRINUSE: "AddrInUse",
  ETIMEDOUT: "TimedOut",
  EINTR: "Interrupted",
  ELOOP: "FilesystemLoop",
};

/**
 * Runs `fn`, rethrowing a Node-style error (one with a `code`) as the matching `Deno.errors` class,
 * so that `instanceof Deno.errors.NotFound` checks behave as on Deno.
 *
 * @example
 * ```ts ignore
 * const data = denoErrorsFrom(() => fs.readFileSync(path));
 * ```
 */
export function denoErrorsFrom<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw translate(e);
  }
}

/**
 * The `Deno.errors` counterpart of a Node-style error, or the error itself.
 *
 * @example
 * ```ts ignore
 * socket.on("error", (e) => reject(translate(e)));
 * ```
 */
export function translate(e: unknown): unknown {
  const code = e !== null && typeof e === "object" && "code" in e ? String(e.code) : "";
  const name = BY_CODE[code];
  if (name === undefined) return e;
  return new denoErrors[name]((e as Error).message, { cause: e });
}
