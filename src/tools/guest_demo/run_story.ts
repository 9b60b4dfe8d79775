/**
 * `deno task guest`: boots the real guest with gmem serving its disk and its entropy device, behind
 * QEMU's strict IOMMU (or without it), and narrates what the back-ends see (see `story.ts`); then
 * the guest's own results, the counters, the dirty pages and the address-space picture.
 * @module
 */

import { closeIoFile, openIoFile, type VhostUserServer, VhostUserServer as Server } from "../../../vhost_user.ts";
import { hex } from "../text.ts";
import { bootGuest } from "../qemu_guest/boot_guest.ts";
import { fetchGuest } from "../qemu_guest/fetch_guest.ts";
import { BlkDevice } from "../vhost_user_blk/blk_device.ts";
import { RngDevice } from "../vhost_user_rng/rng_device.ts";
import { countersLine } from "../vhost_user_common/backend_cli.ts";
import { Narrator } from "../demo/narrator.ts";
import { DeviceStory } from "./story.ts";

/** What `deno task guest` was asked. */
export interface GuestStoryOptions {
  iommu: boolean;
  quiet: boolean;
  outDir: string;
}

const IMAGE = 8 << 20;

/**
 * Runs the story; resolves to true when the guest ran every job and nothing was refused.
 *
 * @example
 * ```ts ignore
 * await runGuestStory({ iommu: true, quiet: false, outDir: "guest-out" });
 * ```
 */
export async function runGuestStory(options: GuestStoryOptions): Promise<boolean> {
  const say = new Narrator(options.quiet);
  say.plain(
    `gmem serves a real Linux guest: virtio-blk and virtio-rng over vhost-user, ${
      options.iommu ? "behind QEMU's Intel IOMMU in strict mode" : "without an IOMMU"
    }`,
  );
  const files = await fetchGuest({ log: (l) => say.line(`fetch: ${l}`) });
  say.line(`guest kernel ${files.kernelRelease}, QEMU ${files.qemu}`);
  const dir = Deno.makeTempDirSync({ prefix: "gmem-guest-story-" });
  const servers: VhostUserServer[] = [];
  const fds: number[] = [];
  try {
    const seed = new TextEncoder().encode("host seed 000\n".repeat(5000)).subarray(0, 65536);
    const image = new Uint8Array(IMAGE);
    image.set(seed);
    Deno.writeFileSync(`${dir}/disk.img`, image);
    const disk = openIoFile(`${dir}/disk.img`, true);
    const entropy = openIoFile("/dev/urandom", false);
    fds.push(disk.fd, entropy.fd);
    const blk = new BlkDevice(disk, { serial: "gmem-story" });
    const rng = new RngDevice(entropy);
    const blkStory = new DeviceStory(say, "blk"), rngStory = new DeviceStory(say, "rng");
    const blkServer = Server.listen(`${dir}/blk.sock`, blk, { dirtyPageSize: 4096, onEvent: (e) => blkStory.event(e) });
    servers.push(blkServer);
    blkStory.attach(blkServer);
    const rngServer = Server.listen(`${dir}/rng.sock`, rng, { onEvent: (e) => rngStory.event(e) });
    servers.push(rngServer);
    rngStory.attach(rngServer);
    const platform = options.iommu ? ",iommu_platform=on,ats=on" : "";
    const run = await bootGuest({
      files,
      jobs: ["hello", "blk", "rng"],
      iommu: options.iommu,
      extraArgs: [
        "-chardev",
        `socket,id=blk0,path=${blkServer.path}`,
        "-device",
        `vhost-user-blk-pci,chardev=blk0,num-queues=1,disable-legacy=on${platform}`,
        "-chardev",
        `socket,id=rng0,path=${rngServer.path}`,
        "-device",
        `vhost-user-rng-pci,chardev=rng0${platform}`,
      ],
      onLine: (line) => {
        if (line.startsWith("GMEM-RESULT ") || line.startsWith("GMEM-ERROR ")) say.line(`guest: ${line.slice(5)}`);
      },
    });
    await Promise.all(servers.map((s) => s.nextDisconnect()));
    say.step("What the guest reported and what the back-ends counted");
    say.key(
      `guest: ${run.outcome}, jobs ${run.jobs.map((j) => `${j.name}=${j.status}`).join(" ")}, boot to exit ${
        (run.wallMs / 1000).toFixed(1)
      } s`,
    );
    const checksOk = run.results.blk_pattern_md5 !== undefined &&
      run.results.blk_pattern_md5 === run.results.blk_read_md5;
    say.key(
      `blk: the pattern the guest wrote and read back ${
        checksOk ? "agree" : "DIFFER"
      } (md5 ${run.results.blk_read_md5})`,
    );
    say.key(`blk: ${countersLine(blk.counters)}`);
    say.key(`blk back-end: ${countersLine(blkServer.backend.counters)}`);
    say.key(`rng: ${countersLine(rng.counters)}; back-end: ${countersLine(rngServer.backend.counters)}`);
    say.step("The guest pages the disk's DMA dirtied (by guest physical address, 4 KiB pages)");
    const pages = blkStory.dirty.reduce((n, [s, e]) => n + Number((e - s) / 4096n), 0);
    say.key(`${pages} dirty pages in ${blkStory.dirty.length} runs`);
    say.line(
      blkStory.dirty.slice(0, 12).map(([s, e]) => `[${hex(s)}, ${hex(e)})`).join(" ") +
        (blkStory.dirty.length > 12 ? " …" : ""),
    );
    if (blkStory.svg !== undefined && blkStory.html !== undefined) {
      say.step("The address-space picture of the real guest (IOVA -> guest physical -> host), drawn mid-request");
      Deno.mkdirSync(options.outDir, { recursive: true });
      Deno.writeTextFileSync(`${options.outDir}/guest-address-space.svg`, blkStory.svg);
      Deno.writeTextFileSync(`${options.outDir}/guest-address-space.html`, blkStory.html);
      say.key(`wrote ${options.outDir}/guest-address-space.svg and .html`);
    }
    const refused = blkServer.backend.counters.refused + rngServer.backend.counters.refused;
    return run.outcome === "poweroff" && run.jobs.every((j) => j.status === 0) && checksOk && refused === 0;
  } finally {
    for (const s of servers) await s.close();
    for (const fd of fds) closeIoFile(fd);
    Deno.removeSync(dir, { recursive: true });
  }
}
