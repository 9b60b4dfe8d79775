#!/bin/busybox sh
# The guest's /init (src/tools/qemu_guest/fetch_guest.ts packs it into the initramfs beside busybox and the
# virtio modules). It takes its work from the kernel command line, because that is the only input
# a guest booted with -kernel/-initrd has without a disk or network:
#   gmem.job=hello,blk,rng   the jobs to run, in order (default: hello)
#   gmem.blk_bytes=N         bytes the blk job writes and reads back (a multiple of 4096; default 65536)
#   gmem.blk_seek=N          where it writes them, in 4 KiB blocks (default 256, i.e. at 1 MiB)
#   gmem.rng_bytes=N         bytes the rng job reads from /dev/hwrng (default 4096)
# Every line meant for the host starts with GMEM- so that the host can pick them out of the serial
# console (src/tools/qemu_guest/boot_guest.ts parses them):
#   GMEM-INIT uptime=S               init started, S seconds after the kernel did
#   GMEM-JOB start NAME / GMEM-JOB end NAME status=N
#   GMEM-RESULT key=value            one measured fact (keys are unique across jobs)
#   GMEM-ERROR text                  something went wrong; the job's status says which job
#   GMEM-END uptime=S                all jobs ran; the guest powers off next

/bin/busybox mkdir -p /bin /proc /sys /dev /tmp
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Kernel messages printed on the console in the middle of one of our lines would break it for the
# host's parser; only emergencies (panic, "reboot: Power down") still reach the console.
dmesg -n 1

say() { echo "GMEM-$*"; }
result() { echo "GMEM-RESULT $1=$2"; }
error() { echo "GMEM-ERROR $*"; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }

say "INIT uptime=$(uptime_s)"

# The value of gmem.NAME on the kernel command line, or DEFAULT.
arg() {
  for word in $(cat /proc/cmdline); do
    case "$word" in "gmem.$1="*) echo "${word#*=}"; return ;; esac
  done
  echo "$2"
}

# The package has no modules.dep, so the modules go in by hand, each after those it needs.
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk virtio-rng; do
  insmod "/lib/modules/$m.ko" || error "insmod $m failed"
done

# Device nodes appear from the kernel's devtmpfs thread, a moment after the driver bound.
wait_for() {
  i=0
  while [ ! -e "$1" ]; do
    i=$((i + 1))
    [ "$i" -gt 100 ] && { error "$1 did not appear in 10 s"; return 1; }
    sleep 0.1
  done
}

md5() { md5sum "$1" | cut -d' ' -f1; }

job_hello() {
  result kernel "$(uname -r)"
  result machine "$(uname -m)"
  result mem_total_kb "$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
  units=$(ls /sys/class/iommu 2>/dev/null | tr '\n' ',' | sed 's/,$//')
  if [ -n "$units" ]; then result iommu on; else result iommu off; fi
  result iommu_units "${units:-none}"
  if dmesg | grep -q 'DMAR: IOMMU enabled'; then result dmar_enabled yes; else result dmar_enabled no; fi
  # "strict" or "lazy": whether every unmap is invalidated at once (the kernel prints it at boot).
  policy=$(dmesg | sed -n 's/.*TLB invalidation policy: \([a-z]*\) mode.*/\1/p' | head -n 1)
  result iommu_tlb_policy "${policy:-unknown}"
  domain=$(dmesg | sed -n 's/.*Default domain type: \([A-Za-z]*\).*/\1/p' | head -n 1)
  result iommu_domain "${domain:-unknown}"
  # What the domains really are: "DMA" is strict, "DMA-FQ" lazy (a flush queue batches unmaps). The
  # policy line above only echoes the command line; caching mode forces strict after it is printed.
  types=$(cat /sys/kernel/iommu_groups/*/type 2>/dev/null | sort -u | tr '\n' ',' | sed 's/,$//')
  result iommu_group_types "${types:-none}"
}

job_blk() {
  dev=/dev/vda
  wait_for "$dev" || return 1
  bytes=$(arg blk_bytes 65536)
  seek=$(arg blk_seek 256)
  count=$((bytes / 4096))
  if [ "$count" -lt 1 ] || [ $((count * 4096)) -ne "$bytes" ]; then
    error "blk: gmem.blk_bytes=$bytes is not a positive multiple of 4096"
    return 1
  fi
  result blk_sectors "$(cat /sys/block/vda/size)"
  result blk_bytes "$bytes"
  result blk_seek "$seek"
  # What the host put at the start of the disk, read past the page cache so that it comes from the device.
  dd if="$dev" of=/tmp/seed bs=4096 count="$count" iflag=direct 2>/tmp/dd.err ||
    { error "blk: reading the seed failed: $(cat /tmp/dd.err)"; return 1; }
  result blk_seed_md5 "$(md5 /tmp/seed)"
  # 16-byte records "gmem blk NNNNNN\n": the host makes the same bytes and looks for them in the image.
  awk -v n=$((bytes / 16)) 'BEGIN { for (i = 0; i < n; i++) printf "gmem blk %06d\n", i }' >/tmp/pattern
  result blk_pattern_md5 "$(md5 /tmp/pattern)"
  dd if=/tmp/pattern of="$dev" bs=4096 seek="$seek" count="$count" oflag=direct conv=fsync 2>/tmp/dd.err ||
    { error "blk: writing the pattern failed: $(cat /tmp/dd.err)"; return 1; }
  dd if="$dev" of=/tmp/back bs=4096 skip="$seek" count="$count" iflag=direct 2>/tmp/dd.err ||
    { error "blk: reading the pattern back failed: $(cat /tmp/dd.err)"; return 1; }
  result blk_read_md5 "$(md5 /tmp/back)"
}

job_rng() {
  wait_for /dev/hwrng || return 1
  bytes=$(arg rng_bytes 4096)
  result rng_current "$(cat /sys/class/misc/hw_random/rng_current)"
  head -c "$bytes" /dev/hwrng >/tmp/rng || { error "rng: reading /dev/hwrng failed"; return 1; }
  result rng_bytes "$(wc -c </tmp/rng)"
  result rng_md5 "$(md5 /tmp/rng)"
}

for job in $(arg job hello | tr ',' ' '); do
  say "JOB start $job"
  case "$job" in
    hello) job_hello ;;
    blk) job_blk ;;
    rng) job_rng ;;
    *) error "unknown job $job"; false ;;
  esac
  say "JOB end $job status=$?"
done

say "END uptime=$(uptime_s)"
# poweroff -f can block behind a device that never completes a request (the kernel shuts devices
# down first); sysrq b restarts at once, and QEMU runs with -no-reboot, so either way QEMU exits.
poweroff -f &
sleep 5
error "poweroff did not finish in 5 s; restarting through sysrq"
echo b >/proc/sysrq-trigger
