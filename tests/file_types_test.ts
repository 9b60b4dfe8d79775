/**
 * Only regular files (memfds included) and /dev/zero are opened to be mapped. A FIFO, a socket, a
 * directory or a device named by path is refused by type before anything is opened for I/O, so
 * nothing blocks (a FIFO without a writer would block open(2) forever) and no driver code runs.
 * The FIFO case runs in a child process that the test kills if it hangs.
 * @module
 */

import assert from "node:assert/strict";
import { symlinkSync } from "node:fs";
import { FileOffset, hostDiagnostics, MmapRegion, PROT_READ } from "../mod.ts";
import { survived } from "./fixtures/child_process.ts";
import { runMappingCase } from "./fixtures/mapping_child.ts";
import { refused } from "./fixtures/guest_assert.ts";

const PAGE = 4096;

Deno.test("file types: a FIFO, a socket, a directory or /dev/null named by path is refused by type without blocking", async () => {
  const dir = Deno.makeTempDirSync({ prefix: "gmem-types-" });
  try {
    const run = await runMappingCase("not-regular-files", dir);
    assert.notEqual(run.signal, "SIGTERM", "the child hung and was killed");
    const report = survived(run) as Record<string, unknown>;
    const byType = (path: string, type: string) => ({
      threw: "InvalidArgumentError",
      kind: "InvalidArgument",
      message: `MmapRegion.fromFile: fileOffset ${path}@0x0 names ${type}; only a regular file or /dev/zero is ` +
        "opened to be mapped",
    });
    const both = (path: string, type: string) => ({ readOnly: byType(path, type), readWrite: byType(path, type) });
    assert.deepEqual(report, {
      fifo: both(`${dir}/fifo`, "a FIFO"),
      socket: both(`${dir}/socket`, "a socket"),
      directory: both(dir, "a directory"),
      devNull: both("/dev/null", "a character device"),
      fifoFd: report.fifoFd,
      fifoDescriptor: {
        threw: "InvalidArgumentError",
        kind: "InvalidArgument",
        message: `MmapRegion.fromFile: fileOffset fd ${report.fifoFd}@0x0 is a FIFO, which cannot be mapped`,
      },
      fdsLeft: 0,
    });
    assert.equal(typeof report.fifoFd, "number");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("file types: a block device named by path is refused by type before it is opened", () => {
  const device = ["/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/loop0"].find((p) => {
    try {
      return ((Deno.statSync(p).mode ?? 0) & 0o170000) === 0o060000;
    } catch {
      return false;
    }
  });
  if (device === undefined) {
    console.log("skipped: no block device among /dev/vda, /dev/sda, /dev/nvme0n1, /dev/loop0");
    return;
  }
  const fds = hostDiagnostics().openFds;
  const e = refused(() => MmapRegion.fromFile(FileOffset.fromPath(device), PAGE, { prot: PROT_READ }));
  assert.deepEqual([e.op, e.argument, e.value], ["MmapRegion.fromFile", "fileOffset", `${device}@0x0`]);
  assert.equal(
    e.message,
    `MmapRegion.fromFile: fileOffset ${device}@0x0 names a block device; only a regular file or /dev/zero is opened ` +
      "to be mapped",
  );
  assert.equal(hostDiagnostics().openFds, fds);
});

Deno.test("file types: /dev/zero and regular files (also through a symbolic link) are still mapped", () => {
  using zero = MmapRegion.fromFile(FileOffset.fromPath("/dev/zero"), PAGE);
  zero.write(new Uint8Array([9]), 0);
  assert.equal(zero.bytes(0, 1)[0], 9);
  const dir = Deno.makeTempDirSync({ prefix: "gmem-types-" });
  try {
    Deno.writeFileSync(`${dir}/file`, new Uint8Array(PAGE).fill(4));
    symlinkSync(`${dir}/file`, `${dir}/link`);
    using r = MmapRegion.fromFile(FileOffset.fromPath(`${dir}/link`), PAGE, { prot: PROT_READ });
    assert.equal(r.unsafeBytes(PAGE - 1, 1)[0], 4);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
