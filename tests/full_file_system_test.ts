/**
 * A shared writable mapping of a file on a file system that can run full: its space is allocated
 * at map time (`fileSpace: "reserve"`, the default), so a full file system is an ENOSPC there and
 * never a SIGBUS at a write through the mapping. Shown on a real 64 KiB tmpfs (mounted for each
 * test; the tests are skipped, saying why, where mounting is not permitted). The writes that could
 * fault run in child processes.
 * @module
 */

import assert from "node:assert/strict";
import { FileOffset, hostDiagnostics, MAP_PRIVATE, MmapRegion, PROT_READ, SyscallError } from "../mod.ts";
import { survived } from "./fixtures/child_process.ts";
import { runMappingCase } from "./fixtures/mapping_child.ts";

const PAGE = 4096;
const SMALL_FS = 64 * 1024;

/** Why a small tmpfs cannot be mounted here, or undefined if it can. */
function cannotMount(): string | undefined {
  const dir = Deno.makeTempDirSync({ prefix: "gmem-fullfs-probe-" });
  try {
    const mount = new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir], stderr: "piped" })
      .outputSync();
    if (!mount.success) return `mount -t tmpfs failed: ${new TextDecoder().decode(mount.stderr).trim()}`;
    new Deno.Command("umount", { args: [dir] }).outputSync();
    return undefined;
  } catch (e) {
    return `mount could not be run: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

const skipReason = cannotMount();
if (skipReason !== undefined) console.log(`full file system tests skipped: ${skipReason}`);

/** Runs `fn` with a fresh 64 KiB tmpfs mounted on a temporary directory. */
async function withSmallTmpfs(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "gmem-fullfs-" });
  const mounted = new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir] }).outputSync();
  assert.ok(mounted.success, "mount -t tmpfs");
  try {
    await fn(dir);
  } finally {
    new Deno.Command("umount", { args: [dir] }).outputSync();
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Bytes still free on the file system holding `dir` (`df`, in 1 KiB blocks). */
function freeBytes(dir: string): number {
  const out = new Deno.Command("df", { args: ["-k", "--output=avail", dir], stdout: "piped" }).outputSync();
  return Number(new TextDecoder().decode(out.stdout).trim().split("\n")[1]) * 1024;
}

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, ignore: skipReason !== undefined, fn });

test("full file system: a shared writable mapping of a sparse file bigger than the free space is ENOSPC at map time, leaving nothing behind", () =>
  withSmallTmpfs((dir) => {
    const path = `${dir}/guest-ram`;
    Deno.writeFileSync(path, new Uint8Array(0));
    Deno.truncateSync(path, 1 << 20);
    const before = hostDiagnostics();
    let error: unknown;
    try {
      MmapRegion.fromFile(FileOffset.fromPath(path), 1 << 20).close();
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof SyscallError, String(error));
    assert.deepEqual([error.op, error.syscall, error.errnoName], ["MmapRegion.fromFile", "fallocate", "ENOSPC"]);
    assert.deepEqual([error.args.offset, error.args.length], [0n, 1 << 20]);
    assert.match(
      error.message,
      /^MmapRegion\.fromFile: fallocate\(fd=\d+, offset=0x0, length=0x100000\) failed: ENOSPC/,
    );
    assert.equal(hostDiagnostics().openFds, before.openFds);
    assert.equal(freeBytes(dir), SMALL_FS, "the failed reservation gave its pages back");
  }));

test("full file system: space reserved at map time stays the mapping's; filling the file system afterwards cannot make a write through it fault", () =>
  withSmallTmpfs(async (dir) => {
    const report = survived(await runMappingCase("reserved-file-outlives-a-full-file-system", dir));
    assert.deepEqual(report, { fillerBytes: SMALL_FS - 8 * PAGE, pagesWritten: 8, lastPageByte: 8 });
  }));

test('full file system: with fileSpace "sparse" the file is mapped as it is, and the write that finds no free page dies of SIGBUS', () =>
  withSmallTmpfs(async (dir) => {
    const run = await runMappingCase("sparse-file-write-past-free-space", dir);
    assert.equal(run.signal, "SIGBUS", `stderr: ${run.stderr}`);
    // Pages 0 to 15 fill the 64 KiB; the 17th page is the one that faults.
    assert.equal(run.lines.at(-1), JSON.stringify({ writingPage: SMALL_FS / PAGE }));
  }));

test("full file system: read-only and private mappings reserve nothing (they cannot write to the file)", () =>
  withSmallTmpfs((dir) => {
    const path = `${dir}/image`;
    Deno.writeFileSync(path, new Uint8Array(0));
    Deno.truncateSync(path, 1 << 20);
    using ro = MmapRegion.fromFile(FileOffset.fromPath(path), 1 << 20, { prot: PROT_READ });
    using priv = MmapRegion.fromFile(FileOffset.fromPath(path), 1 << 20, { flags: MAP_PRIVATE });
    assert.deepEqual([ro.size, priv.size], [1 << 20, 1 << 20]);
    assert.equal(freeBytes(dir), SMALL_FS);
  }));

/** Blocks (512 bytes) allocated to the file behind descriptor `fd` of this process. */
function allocatedBlocks(fd: number): number {
  const out = new Deno.Command("stat", { args: ["-L", "-c", "%b", `/proc/${Deno.pid}/fd/${fd}`], stdout: "piped" })
    .outputSync();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

Deno.test("full file system: a memfd (no size limit, nothing to run out of) gets no space allocated: 1 GiB mapped twice, 0 blocks", () => {
  using ram = MmapRegion.memfd(2 ** 30);
  using again = MmapRegion.fromFile(ram.fileOffset!, 2 ** 30);
  assert.equal(again.size, 2 ** 30);
  assert.equal(allocatedBlocks(ram.fd!), 0);
});
