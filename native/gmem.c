/*
 * gmem native helper: the few things a direct libc call from TypeScript cannot do well.
 *
 * Every function returns 0 (or a non-negative value) on success and -errno on failure, so the
 * caller never has to read errno after the fact. All 64-bit values travel as uint64_t/int64_t
 * because the FFI fast path needs BigInt-typed 64-bit parameters.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 0x0004U
#endif
#ifndef MADV_HUGEPAGE
#define MADV_HUGEPAGE 14
#endif
#ifndef MADV_DONTDUMP
#define MADV_DONTDUMP 16
#endif

/* Layout of the request block shared with src/ffi/map_request.ts (int64 slots). */
enum {
  REQ_SIZE = 0,        /* bytes to map (usable part) */
  REQ_PROT = 1,        /* PROT_* */
  REQ_FLAGS = 2,       /* MAP_* (no MAP_FIXED) */
  REQ_FD = 3,          /* file descriptor, or -1 */
  REQ_OFFSET = 4,      /* file offset */
  REQ_ALIGN = 5,       /* required alignment of the usable start, 0 = page */
  REQ_GUARD_BEFORE = 6,/* PROT_NONE bytes before the usable part */
  REQ_GUARD_AFTER = 7, /* PROT_NONE bytes after the usable part */
  REQ_OPTIONS = 8,     /* GM_OPT_* bits */
  REQ_MEMFD_FLAGS = 9, /* extra memfd_create flags (MFD_HUGETLB | size bits) */
  OUT_ADDR = 10,       /* usable start */
  OUT_FD = 11,         /* memfd created, or -1 */
  OUT_STEP = 12,       /* which step failed (GM_STEP_*) */
  REQ_SLOTS = 16
};

enum { GM_OPT_MEMFD = 1, GM_OPT_MADV_HUGEPAGE = 2, GM_OPT_MADV_DONTDUMP = 4 };
enum {
  GM_STEP_NONE = 0, GM_STEP_MEMFD_CREATE = 1, GM_STEP_FTRUNCATE = 2, GM_STEP_RESERVE = 3,
  GM_STEP_MMAP = 4, GM_STEP_MADVISE_HUGEPAGE = 5, GM_STEP_MADVISE_DONTDUMP = 6, GM_STEP_MPROTECT = 7
};

/*
 * fstat and memfd_create straight to the kernel: glibc's symbols for them are versioned 2.33 and
 * 2.27, and the prebuilt helper must load on older systems too (it needs glibc 2.17 this way).
 * glibc's struct stat is the kernel's layout on x86_64 and aarch64.
 */
static int fd_stat(int fd, struct stat *st) { return (int)syscall(SYS_fstat, fd, st); }

static int memfd_new(const char *name, unsigned flags) { return (int)syscall(SYS_memfd_create, name, flags); }

static uint64_t page_size(void) {
  static uint64_t ps;
  if (!ps) ps = (uint64_t)sysconf(_SC_PAGESIZE);
  return ps;
}

uint64_t gm_page_size(void) { return page_size(); }

int32_t gm_request_slots(void) { return REQ_SLOTS; }

/*
 * Map memory as the request block describes. With no alignment and no guard pages this is a single
 * mmap. Otherwise a PROT_NONE reservation is taken first (large enough to align inside it), the
 * real mapping is placed over it with MAP_FIXED, and the slack that is neither guard nor mapping is
 * given back. On any failure everything made so far is undone, so nothing is left half-built.
 */
int32_t gm_map(int64_t *req, const char *memfd_name) {
  uint64_t size = (uint64_t)req[REQ_SIZE];
  int prot = (int)req[REQ_PROT];
  int flags = (int)req[REQ_FLAGS];
  int fd = (int)req[REQ_FD];
  off_t offset = (off_t)req[REQ_OFFSET];
  uint64_t align = (uint64_t)req[REQ_ALIGN];
  uint64_t gb = (uint64_t)req[REQ_GUARD_BEFORE];
  uint64_t ga = (uint64_t)req[REQ_GUARD_AFTER];
  int64_t options = req[REQ_OPTIONS];
  int created_fd = -1;
  int err = 0;

  req[OUT_ADDR] = 0;
  req[OUT_FD] = -1;
  req[OUT_STEP] = GM_STEP_NONE;
  if (align < page_size()) align = 0;

  if (options & GM_OPT_MEMFD) {
    created_fd = memfd_new(memfd_name ? memfd_name : "gmem", MFD_CLOEXEC | (unsigned)req[REQ_MEMFD_FLAGS]);
    if (created_fd < 0) { req[OUT_STEP] = GM_STEP_MEMFD_CREATE; return -errno; }
    if (ftruncate(created_fd, (off_t)size) != 0) {
      err = errno; close(created_fd); req[OUT_STEP] = GM_STEP_FTRUNCATE; return -err;
    }
    fd = created_fd;
    offset = 0;
  }

  void *usable;
  if (align == 0 && gb == 0 && ga == 0) {
    usable = mmap(NULL, size, prot, flags, fd, offset);
    if (usable == MAP_FAILED) { err = errno; req[OUT_STEP] = GM_STEP_MMAP; goto fail_fd; }
  } else {
    uint64_t slack = align ? align : 0;
    uint64_t total = gb + size + ga + slack;
    char *res = mmap(NULL, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (res == MAP_FAILED) { err = errno; req[OUT_STEP] = GM_STEP_RESERVE; goto fail_fd; }
    uint64_t start = (uint64_t)(uintptr_t)res + gb;
    if (align) start = (start + align - 1) & ~(align - 1);
    usable = mmap((void *)(uintptr_t)start, size, prot, flags | MAP_FIXED, fd, offset);
    if (usable == MAP_FAILED) {
      err = errno; munmap(res, total); req[OUT_STEP] = GM_STEP_MMAP; goto fail_fd;
    }
    /* Give back the slack around [start - gb, start + size + ga). */
    uint64_t keep_lo = start - gb, keep_hi = start + size + ga;
    uint64_t res_lo = (uint64_t)(uintptr_t)res, res_hi = res_lo + total;
    if (keep_lo > res_lo) munmap(res, keep_lo - res_lo);
    if (res_hi > keep_hi) munmap((void *)(uintptr_t)keep_hi, res_hi - keep_hi);
  }

  if ((options & GM_OPT_MADV_HUGEPAGE) && madvise(usable, size, MADV_HUGEPAGE) != 0) {
    err = errno; req[OUT_STEP] = GM_STEP_MADVISE_HUGEPAGE; goto fail_map;
  }
  if ((options & GM_OPT_MADV_DONTDUMP) && madvise(usable, size, MADV_DONTDUMP) != 0) {
    err = errno; req[OUT_STEP] = GM_STEP_MADVISE_DONTDUMP; goto fail_map;
  }
  req[OUT_ADDR] = (int64_t)(uintptr_t)usable;
  req[OUT_FD] = created_fd;
  return 0;

fail_map:
  munmap((char *)usable - gb, gb + size + ga);
fail_fd:
  if (created_fd >= 0) close(created_fd);
  return -err;
}

int32_t gm_unmap(uint64_t addr, uint64_t len) {
  return munmap((void *)(uintptr_t)addr, len) == 0 ? 0 : -errno;
}

int32_t gm_protect(uint64_t addr, uint64_t len, int32_t prot) {
  return mprotect((void *)(uintptr_t)addr, len, prot) == 0 ? 0 : -errno;
}

/*
 * Replace a range with private zero pages that can be read and written. Used instead of munmap when
 * an ArrayBuffer over the range may still be alive somewhere: stale accesses then land in scrap
 * memory rather than in an unmapped hole (SIGSEGV) or in whatever the kernel maps there next.
 */
int32_t gm_quarantine(uint64_t addr, uint64_t len) {
  void *p = mmap((void *)(uintptr_t)addr, len, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? -errno : 0;
}

/*
 * Mapping holds, for runtimes that can give an ArrayBuffer a native deallocator (Bun). A hold counts
 * the owner plus every live ArrayBuffer over the mapping; each buffer's deallocator drops one
 * reference. When the owner closes a mapping whose buffer escaped (user code transferred it away),
 * it quarantines the range and asks for an unmap on last release: the range is then unmapped once
 * the garbage collector has dropped the last buffer that could still reach it, instead of staying
 * reserved for the life of the process. Deallocators may run on a collector thread: atomics.
 */
struct gm_hold {
  uint64_t addr, len;
  int32_t refs;
  int32_t unmap_on_last;
};

static void hold_put(struct gm_hold *h) {
  if (__atomic_sub_fetch(&h->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
  if (__atomic_load_n(&h->unmap_on_last, __ATOMIC_ACQUIRE)) munmap((void *)(uintptr_t)h->addr, h->len);
  free(h);
}

/* A hold with the owner's reference, or 0 when out of memory. */
uint64_t gm_hold_new(uint64_t addr, uint64_t len) {
  struct gm_hold *h = malloc(sizeof *h);
  if (!h) return 0;
  h->addr = addr;
  h->len = len;
  h->refs = 1;
  h->unmap_on_last = 0;
  return (uint64_t)(uintptr_t)h;
}

/* One more reference, taken for each ArrayBuffer made with gm_hold_deallocator. */
void gm_hold_ref(uint64_t hold) { __atomic_add_fetch(&((struct gm_hold *)(uintptr_t)hold)->refs, 1, __ATOMIC_RELAXED); }

/* Drops the owner's reference; with unmap_on_last, the last release unmaps the range. */
void gm_hold_release(uint64_t hold, int32_t unmap_on_last) {
  struct gm_hold *h = (struct gm_hold *)(uintptr_t)hold;
  __atomic_store_n(&h->unmap_on_last, unmap_on_last ? 1 : 0, __ATOMIC_RELEASE);
  hold_put(h);
}

/* References a hold has now (owner + live buffers), for tests. */
int32_t gm_hold_refs(uint64_t hold) { return __atomic_load_n(&((struct gm_hold *)(uintptr_t)hold)->refs, __ATOMIC_ACQUIRE); }

/* The ArrayBuffer deallocator (JSC's `void (*)(void *bytes, void *ctx)`); ctx is the hold. */
static void hold_deallocate(void *bytes, void *ctx) {
  (void)bytes;
  hold_put((struct gm_hold *)ctx);
}

/* The address of the deallocator, to hand to the runtime. */
uint64_t gm_hold_deallocator(void) { return (uint64_t)(uintptr_t)&hold_deallocate; }

int32_t gm_memfd_create(const char *name, uint32_t flags, uint64_t size) {
  int fd = memfd_new(name ? name : "gmem", MFD_CLOEXEC | flags);
  if (fd < 0) return -errno;
  if (ftruncate(fd, (off_t)size) != 0) { int e = errno; close(fd); return -e; }
  return fd;
}

/* Opening never waits: O_NONBLOCK keeps a FIFO without a writer from blocking, and is cleared after. */
static int open_nonblocking(const char *path, int writable) {
  int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return -errno;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) { int e = errno; close(fd); return -e; }
  return fd;
}

int32_t gm_open(const char *path, int32_t writable) { return open_nonblocking(path, writable); }

/* The zero device (major 1, minor 5), whatever its path. */
static int is_dev_zero(const struct stat *st) {
  return S_ISCHR(st->st_mode) && major(st->st_rdev) == 1 && minor(st->st_rdev) == 5;
}

/* The gm_file_info layout for fd, whose stat the caller has. */
static int fill_file_info(int fd, const struct stat *st, uint64_t *out) {
  struct statfs fs;
  if (fstatfs(fd, &fs) != 0) return -errno;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  out[0] = (uint64_t)st->st_dev;
  out[1] = (uint64_t)st->st_ino;
  out[2] = (uint64_t)st->st_size;
  out[3] = (uint64_t)st->st_mode;
  out[4] = (uint64_t)(fl & O_ACCMODE);
  out[5] = (uint64_t)st->st_rdev;
  out[6] = (uint64_t)fs.f_type;
  out[7] = (uint64_t)fs.f_bsize;
  out[8] = (uint64_t)fs.f_blocks;
  out[9] = (uint64_t)st->st_blocks;
  return 0;
}

/*
 * out = st_dev, st_ino, st_size, st_mode, O_ACCMODE, st_rdev, then the file system's f_type,
 * f_bsize and f_blocks (0 for a file system without a size limit, such as the memfd one), then
 * st_blocks (512-byte units allocated).
 */
int32_t gm_file_info(int32_t fd, uint64_t *out) {
  struct stat st;
  if (fd_stat(fd, &st) != 0) return -errno;
  return fill_file_info(fd, &st, out);
}

/*
 * Opens a file to map it: only a regular file or /dev/zero. The path is first opened with O_PATH,
 * which runs no driver code and never blocks, and its type checked; only then is it opened for I/O,
 * with O_NONBLOCK (a mapping never reads through the descriptor, so it is left set), and that
 * descriptor must name the same inode, so a path swapped in between cannot slip another file in.
 * out: the gm_file_info layout of the opened file; when the type is refused, only dev, ino, size,
 * mode and rdev (slots 0-3 and 5) of what the path names. Returns the fd, or -errno: -ENODEV when
 * the file is of another type (it was not opened for I/O), -ESTALE when the path changed between.
 */
int32_t gm_open_mappable(const char *path, int32_t writable, uint64_t *out) {
  memset(out, 0, 10 * sizeof *out);
  int pfd = open(path, O_PATH | O_CLOEXEC);
  if (pfd < 0) return -errno;
  struct stat st;
  int rc = fd_stat(pfd, &st);
  int e = errno;
  close(pfd);
  if (rc != 0) return -e;
  out[0] = (uint64_t)st.st_dev;
  out[1] = (uint64_t)st.st_ino;
  out[2] = (uint64_t)st.st_size;
  out[3] = (uint64_t)st.st_mode;
  out[5] = (uint64_t)st.st_rdev;
  if (!S_ISREG(st.st_mode) && !is_dev_zero(&st)) return -ENODEV;
  int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return -errno;
  struct stat now;
  if (fd_stat(fd, &now) != 0) { e = errno; close(fd); return -e; }
  if (now.st_dev != st.st_dev || now.st_ino != st.st_ino) { close(fd); return -ESTALE; }
  rc = fill_file_info(fd, &now, out);
  if (rc != 0) { close(fd); return rc; }
  return fd;
}

int32_t gm_close(int32_t fd) { return close(fd) == 0 ? 0 : -errno; }

int32_t gm_dup(int32_t fd) {
  int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return d < 0 ? -errno : d;
}

/* out[0] = st_dev, out[1] = st_ino, out[2] = st_size, out[3] = st_mode, out[4] = O_ACCMODE of fd. */
int32_t gm_fstat(int32_t fd, uint64_t *out) {
  struct stat st;
  if (fd_stat(fd, &st) != 0) return -errno;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -errno;
  out[0] = (uint64_t)st.st_dev;
  out[1] = (uint64_t)st.st_ino;
  out[2] = (uint64_t)st.st_size;
  out[3] = (uint64_t)st.st_mode;
  out[4] = (uint64_t)(fl & O_ACCMODE);
  return 0;
}

/* Allocates the file's blocks for [offset, offset + len) (mode 0: the size does not change within it). */
int32_t gm_fallocate(int32_t fd, uint64_t offset, uint64_t len) {
  int r;
  do r = fallocate(fd, 0, (off_t)offset, (off_t)len); while (r != 0 && errno == EINTR);
  return r == 0 ? 0 : -errno;
}

/*
 * The descriptors of this process open on the regular file (dev, ino), up to `max` of them into
 * out; returns how many there are, or -errno.
 */
int32_t gm_fds_of(uint64_t dev, uint64_t ino, int32_t *out, int32_t max) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -errno;
  int self = dirfd(d);
  int32_t found = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = atoi(e->d_name);
    struct stat st;
    if (fd == self || fd_stat(fd, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if ((uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino) continue;
    if (found < max) out[found] = fd;
    found++;
  }
  closedir(d);
  return found;
}

/* The file position of fd if it is still open on the file (dev, ino), else -errno (-ESTALE: another file). */
int64_t gm_fd_position(int32_t fd, uint64_t dev, uint64_t ino) {
  struct stat st;
  if (fd_stat(fd, &st) != 0) return -errno;
  if ((uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != ino) return -ESTALE;
  off_t pos = lseek(fd, 0, SEEK_CUR);
  return pos < 0 ? -errno : (int64_t)pos;
}

/* The default huge page size in bytes (Hugepagesize in /proc/meminfo), or -errno (ENOENT: none). */
int64_t gm_default_huge_page_size(void) {
  FILE *f = fopen("/proc/meminfo", "re");
  if (!f) return -errno;
  char line[128];
  int64_t size = -ENOENT;
  unsigned long long kib;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "Hugepagesize: %llu kB", &kib) == 1) { size = (int64_t)kib * 1024; break; }
  }
  fclose(f);
  return size;
}

void gm_memcpy(uint64_t dst, uint64_t src, uint64_t n) {
  memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
}

/* ops holds count triples (dst, src, len); returns the total bytes copied. */
uint64_t gm_copy_vec(const uint64_t *ops, uint32_t count) {
  uint64_t total = 0;
  for (uint32_t i = 0; i < count; i++) {
    const uint64_t *op = ops + 3 * (uint64_t)i;
    memmove((void *)(uintptr_t)op[0], (const void *)(uintptr_t)op[1], op[2]);
    total += op[2];
  }
  return total;
}

/*
 * The bulk-copy engine (src/memory/copy_engine.ts): one side is a caller's byte array (a typed
 * array argument, which the runtimes pass as a pointer to its bytes), the other guest memory at a
 * host address. Addresses, offsets and lengths are doubles: exact below 2^53 (user-space addresses
 * are below 2^47), and a double keeps the FFI call on the runtime's fast path where a 64-bit
 * integer would need a BigInt. memmove: a caller's array may be a view of the same memory.
 */
void gm_copy_in(double dst, const uint8_t *src, double src_off, double n) {
  memmove((void *)(uintptr_t)dst, src + (uint64_t)src_off, (size_t)n);
}

void gm_copy_out(uint8_t *dst, double dst_off, double src, double n) {
  memmove(dst + (uint64_t)dst_off, (const void *)(uintptr_t)src, (size_t)n);
}

/* Both sides by address, for a caller's array whose address the engine already knows. */
void gm_copy_at(double dst, double src, double n) {
  memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, (size_t)n);
}

/*
 * A request over several fragments in one call: frags holds count (host address, length) pairs,
 * in the order their bytes follow each other in the caller's array from buf_off on.
 */
void gm_copy_in_frags(const double *frags, uint32_t count, const uint8_t *src, double src_off) {
  const uint8_t *p = src + (uint64_t)src_off;
  for (uint32_t i = 0; i < count; i++) {
    size_t n = (size_t)frags[2 * i + 1];
    memmove((void *)(uintptr_t)frags[2 * i], p, n);
    p += n;
  }
}

void gm_copy_out_frags(const double *frags, uint32_t count, uint8_t *dst, double dst_off) {
  uint8_t *p = dst + (uint64_t)dst_off;
  for (uint32_t i = 0; i < count; i++) {
    size_t n = (size_t)frags[2 * i + 1];
    memmove(p, (const void *)(uintptr_t)frags[2 * i], n);
    p += n;
  }
}

/* The fragment copies with the caller's array and the fragment list by address (see gm_copy_at). */
void gm_copy_frags_at(double frags, uint32_t count, double buf, int32_t into_memory) {
  const double *f = (const double *)(uintptr_t)frags;
  if (into_memory) gm_copy_in_frags(f, count, (const uint8_t *)(uintptr_t)buf, 0);
  else gm_copy_out_frags(f, count, (uint8_t *)(uintptr_t)buf, 0);
}

void gm_memset(uint64_t dst, int32_t byte, uint64_t n) {
  memset((void *)(uintptr_t)dst, byte, n);
}

void gm_strerror(int32_t err, char *buf, uint32_t len) {
  if (!len) return;
  const char *s = strerror(err);
  snprintf(buf, len, "%s", s ? s : "unknown error");
}

/*
 * One readv/writev over `count` (address, length) pairs, retried on EINTR. Returns the bytes moved
 * (possibly short, 0 at end of file) or -errno.
 */
int64_t gm_readv(int32_t fd, const uint64_t *pairs, uint32_t count) {
  struct iovec iov[1024];
  if (count > 1024) count = 1024;
  for (uint32_t i = 0; i < count; i++) {
    iov[i].iov_base = (void *)(uintptr_t)pairs[2 * i];
    iov[i].iov_len = pairs[2 * i + 1];
  }
  ssize_t n;
  do n = readv(fd, iov, (int)count); while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : (int64_t)n;
}

int64_t gm_writev(int32_t fd, const uint64_t *pairs, uint32_t count) {
  struct iovec iov[1024];
  if (count > 1024) count = 1024;
  for (uint32_t i = 0; i < count; i++) {
    iov[i].iov_base = (void *)(uintptr_t)pairs[2 * i];
    iov[i].iov_len = pairs[2 * i + 1];
  }
  ssize_t n;
  do n = writev(fd, iov, (int)count); while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : (int64_t)n;
}

/*
 * One recvmsg on socket `s` (with `flags`, retried on EINTR): up to `len` payload bytes to `buf`, up
 * to `max_fds` SCM_RIGHTS descriptors to `fds` (close-on-exec; the rest closed, never leaked).
 * Returns the payload length, or -errno (EPROTO: the kernel truncated the descriptors, and none is
 * kept). The caller sets every slot of `fds` to -1 first.
 */
static int64_t recv_with_fds(int s, int flags, uint8_t *buf, uint32_t len, int32_t *fds, uint32_t max_fds) {
  union { char raw[CMSG_SPACE(64 * sizeof(int))]; struct cmsghdr align; } control;
  struct iovec iov = { .iov_base = buf, .iov_len = len };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.raw,
                        .msg_controllen = sizeof control.raw };
  ssize_t n;
  do n = recvmsg(s, &msg, flags | MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  uint32_t kept = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    int *got = (int *)CMSG_DATA(c);
    for (size_t i = 0; i < count; i++) {
      int d;
      memcpy(&d, got + i, sizeof d);
      if (kept < max_fds) fds[kept++] = d; else close(d);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    for (uint32_t i = 0; i < kept; i++) { close(fds[i]); fds[i] = -1; }
    return -EPROTO;
  }
  return (int64_t)n;
}

/*
 * Receives descriptors another process hands over (a memfd of guest RAM): connects to the Unix
 * stream socket at `path`, takes ONE message and closes the socket. Up to `len` payload bytes go to
 * `buf`, up to `max_fds` SCM_RIGHTS descriptors to `fds` (unused slots -1; descriptors beyond
 * `max_fds` are closed, never leaked). Connecting and receiving each wait at most `timeout_ms`.
 * Returns the payload length, or -errno (EPROTO: the kernel truncated the descriptors).
 */
int64_t gm_unix_recv_fds(const char *path, uint8_t *buf, uint32_t len, int32_t *fds, uint32_t max_fds,
                         int32_t timeout_ms) {
  for (uint32_t i = 0; i < max_fds; i++) fds[i] = -1;
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  size_t plen = strlen(path);
  if (plen == 0 || plen >= sizeof addr.sun_path) return -ENAMETOOLONG;
  memcpy(addr.sun_path, path, plen);
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) { int e = errno; close(s); return -e; }
  int64_t n = recv_with_fds(s, 0, buf, len, fds, max_fds);
  close(s);
  return n;
}

/* ---- Process diagnostics (no Deno permission needed to read them through here). ---- */

/* Resident bytes of the whole process (second field of /proc/self/statm), or -errno. */
int64_t gm_rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "re");
  if (!f) return -errno;
  unsigned long long size = 0, res = 0;
  int n = fscanf(f, "%llu %llu", &size, &res);
  fclose(f);
  return n == 2 ? (int64_t)(res * page_size()) : -EIO;
}

/* Resident bytes inside [addr, addr+len) as mincore reports them, or -errno. */
int64_t gm_resident_in(uint64_t addr, uint64_t len) {
  uint64_t ps = page_size();
  uint64_t pages = (len + ps - 1) / ps;
  unsigned char vec[4096];
  int64_t resident = 0;
  for (uint64_t done = 0; done < pages;) {
    uint64_t chunk = pages - done > sizeof vec ? sizeof vec : pages - done;
    if (mincore((void *)(uintptr_t)(addr + done * ps), chunk * ps, vec) != 0) return -errno;
    for (uint64_t i = 0; i < chunk; i++) resident += vec[i] & 1;
    done += chunk;
  }
  return resident * (int64_t)ps;
}

/* Number of lines in /proc/self/maps, or -errno. */
int64_t gm_count_mappings(void) {
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f) return -errno;
  int64_t lines = 0;
  int c;
  while ((c = fgetc(f)) != EOF) if (c == '\n') lines++;
  fclose(f);
  return lines;
}

/*
 * Protection of the mapping that contains addr, from /proc/self/maps: PROT_READ/WRITE/EXEC bits,
 * plus 0x100 if the mapping is shared; -ENOENT if nothing is mapped there.
 */
int32_t gm_vma_prot(uint64_t addr) {
  FILE *f = fopen("/proc/self/maps", "re");
  if (!f) return -errno;
  char line[512];
  int32_t found = -ENOENT;
  while (fgets(line, sizeof line, f)) {
    unsigned long long lo, hi;
    char perms[5];
    if (sscanf(line, "%llx-%llx %4s", &lo, &hi, perms) != 3) continue;
    if (addr < lo || addr >= hi) continue;
    found = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
            (perms[2] == 'x' ? PROT_EXEC : 0) | (perms[3] == 's' ? 0x100 : 0);
    break;
  }
  fclose(f);
  return found;
}

/* Free huge pages of the given size in KiB (e.g. 2048), or -errno (ENOENT: size not supported). */
int64_t gm_hugepages_free(uint64_t size_kib) {
  char path[128];
  snprintf(path, sizeof path, "/sys/kernel/mm/hugepages/hugepages-%llukB/free_hugepages",
           (unsigned long long)size_kib);
  FILE *f = fopen(path, "re");
  if (!f) return -errno;
  unsigned long long n = 0;
  int ok = fscanf(f, "%llu", &n);
  fclose(f);
  return ok == 1 ? (int64_t)n : -EIO;
}

/* Number of open descriptors, or -errno. */
int64_t gm_count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -errno;
  int64_t n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) if (e->d_name[0] >= '0' && e->d_name[0] <= '9') n++;
  closedir(d);
  return n - 1; /* the directory stream's own descriptor */
}

/* ---- vhost-user: Unix sockets with descriptors, eventfds, positioned vectored I/O, waiting. ---- */

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

/* Fills a sockaddr_un for `path`; -ENAMETOOLONG when it does not fit (or is empty). */
static int unix_address(const char *path, struct sockaddr_un *addr) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  size_t plen = strlen(path);
  if (plen == 0 || plen >= sizeof addr->sun_path) return -ENAMETOOLONG;
  memcpy(addr->sun_path, path, plen);
  return 0;
}

/* A listening Unix stream socket at `path` (non-blocking, close-on-exec); the fd or -errno. */
int32_t gm_unix_listen(const char *path, int32_t backlog) {
  struct sockaddr_un addr;
  int rc = unix_address(path, &addr);
  if (rc) return rc;
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return -errno;
  if (bind(s, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s, backlog) != 0) {
    int e = errno;
    close(s);
    return -e;
  }
  return s;
}

/* One pending connection of a listening socket (non-blocking, close-on-exec); -EAGAIN if none. */
int32_t gm_unix_accept(int32_t fd) {
  int c;
  do c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK); while (c < 0 && errno == EINTR);
  return c < 0 ? -errno : c;
}

/* Connects to the Unix stream socket at `path`; the connected fd (non-blocking afterwards) or -errno. */
int32_t gm_unix_connect(const char *path) {
  struct sockaddr_un addr;
  int rc = unix_address(path, &addr);
  if (rc) return rc;
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  int r;
  do r = connect(s, (struct sockaddr *)&addr, sizeof addr); while (r != 0 && errno == EINTR);
  if (r != 0 || fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) != 0) {
    int e = errno;
    close(s);
    return -e;
  }
  return s;
}

/* A connected pair of Unix stream sockets (non-blocking, close-on-exec) into out[0], out[1]. */
int32_t gm_socketpair(int32_t *out) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) return -errno;
  out[0] = sv[0];
  out[1] = sv[1];
  return 0;
}

/*
 * Sends all `len` bytes with `nfds` descriptors (SCM_RIGHTS, on the first byte). The socket is
 * non-blocking; when its buffer is full, waits for room at most `timeout_ms` per step, so a peer
 * that stops reading costs a bounded wait, never a hang. Returns `len` or -errno (-ETIMEDOUT).
 */
int64_t gm_send_fds(int32_t fd, const uint8_t *buf, uint32_t len, const int32_t *fds, uint32_t nfds,
                    int32_t timeout_ms) {
  if (nfds > 64) return -EINVAL;
  union { char raw[CMSG_SPACE(64 * sizeof(int))]; struct cmsghdr align; } control;
  uint32_t done = 0;
  int first = 1;
  while (done < len || (len == 0 && first)) {
    struct iovec iov = { .iov_base = (void *)(buf + done), .iov_len = len - done };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (first && nfds > 0) {
      memset(&control, 0, sizeof control);
      msg.msg_control = control.raw;
      msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
      struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
      memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    }
    ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -errno;
      struct pollfd p = { .fd = fd, .events = POLLOUT };
      int r;
      do r = poll(&p, 1, timeout_ms); while (r < 0 && errno == EINTR);
      if (r < 0) return -errno;
      if (r == 0) return -ETIMEDOUT;
      continue;
    }
    first = 0;
    done += (uint32_t)n;
    if (len == 0) break;
  }
  return (int64_t)len;
}

/*
 * One non-blocking recvmsg of at most `len` bytes, with up to `max_fds` SCM_RIGHTS descriptors into
 * `fds` (unused slots -1; descriptors beyond `max_fds` are closed, never leaked). Returns the bytes
 * read (0 at end of stream), -EAGAIN when nothing is there, -EPROTO when the kernel truncated the
 * descriptors (all of them closed), or another -errno.
 */
int64_t gm_recv_fds(int32_t fd, uint8_t *buf, uint32_t len, int32_t *fds, uint32_t max_fds) {
  for (uint32_t i = 0; i < max_fds; i++) fds[i] = -1;
  return recv_with_fds(fd, MSG_DONTWAIT, buf, len, fds, max_fds);
}

/* A non-blocking, close-on-exec eventfd; the fd or -errno. */
int32_t gm_eventfd(uint32_t initval) {
  int fd = eventfd(initval, EFD_NONBLOCK | EFD_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

/* Reads (and so resets) an eventfd's counter: the value, or -errno (-EAGAIN when it is 0). */
int64_t gm_eventfd_read(int32_t fd) {
  uint64_t v;
  ssize_t n;
  do n = read(fd, &v, sizeof v); while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  if (n != sizeof v) return -EIO;
  return (int64_t)(v & 0x7fffffffffffffffull);
}

/* Adds `value` to an eventfd's counter: 0 or -errno (-EAGAIN when it would overflow). */
int32_t gm_eventfd_write(int32_t fd, uint64_t value) {
  ssize_t n;
  do n = write(fd, &value, sizeof value); while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  return n == sizeof value ? 0 : -EIO;
}

int32_t gm_epoll_create(void) {
  int fd = epoll_create1(EPOLL_CLOEXEC);
  return fd < 0 ? -errno : fd;
}

/* epoll_ctl with the fd itself as the event's data; 0 or -errno. */
int32_t gm_epoll_ctl(int32_t epfd, int32_t op, int32_t fd, uint32_t events) {
  struct epoll_event ev = { .events = events, .data = { .fd = fd } };
  return epoll_ctl(epfd, op, fd, &ev) == 0 ? 0 : -errno;
}

/*
 * Waits at most `timeout_ms` (-1: no limit) for events; writes (fd, events) pairs into `out` (room
 * for `max` pairs) and returns how many, 0 on timeout or signal, or -errno.
 */
int32_t gm_epoll_wait(int32_t epfd, int32_t *out, int32_t max, int32_t timeout_ms) {
  struct epoll_event ev[64];
  if (max > 64) max = 64;
  if (max < 1) return -EINVAL;
  int n = epoll_wait(epfd, ev, max, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -errno;
  for (int i = 0; i < n; i++) {
    out[2 * i] = ev[i].data.fd;
    out[2 * i + 1] = (int32_t)ev[i].events;
  }
  return n;
}

/* The same, for a runtime that runs the call on a thread of its own (Deno's nonblocking FFI). */
int32_t gm_epoll_wait_blocking(int32_t epfd, int32_t *out, int32_t max, int32_t timeout_ms) {
  return gm_epoll_wait(epfd, out, max, timeout_ms);
}

/*
 * One preadv/pwritev over `count` (address, length) pairs at file offset `offset`, retried on
 * EINTR. Returns the bytes moved (possibly short; 0 at end of file) or -errno.
 */
int64_t gm_preadv(int32_t fd, const uint64_t *pairs, uint32_t count, uint64_t offset) {
  struct iovec iov[1024];
  if (count > 1024) return -EINVAL;
  if (offset > (uint64_t)INT64_MAX) return -EINVAL;
  for (uint32_t i = 0; i < count; i++) {
    iov[i].iov_base = (void *)(uintptr_t)pairs[2 * i];
    iov[i].iov_len = pairs[2 * i + 1];
  }
  ssize_t n;
  do n = preadv(fd, iov, (int)count, (off_t)offset); while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : (int64_t)n;
}

int64_t gm_pwritev(int32_t fd, const uint64_t *pairs, uint32_t count, uint64_t offset) {
  struct iovec iov[1024];
  if (count > 1024) return -EINVAL;
  if (offset > (uint64_t)INT64_MAX) return -EINVAL;
  for (uint32_t i = 0; i < count; i++) {
    iov[i].iov_base = (void *)(uintptr_t)pairs[2 * i];
    iov[i].iov_len = pairs[2 * i + 1];
  }
  ssize_t n;
  do n = pwritev(fd, iov, (int)count, (off_t)offset); while (n < 0 && errno == EINTR);
  return n < 0 ? -errno : (int64_t)n;
}

int32_t gm_fdatasync(int32_t fd) {
  return fdatasync(fd) == 0 ? 0 : -errno;
}
