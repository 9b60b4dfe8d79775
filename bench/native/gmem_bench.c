/*
 * gmem benchmark baselines: the bench's workloads done in plain C loops and timed in C, so that each
 * TypeScript figure has a same-run native figure beside it. Built only by `deno task build:bench`
 * into native/build/libgmem_bench.so; the library itself never loads it.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Nanoseconds for `iters` rounds of mmap(size, RW, flags) + munmap; 0 if a mapping failed. */
uint64_t gm_bench_map_unmap(uint64_t size, int32_t flags, uint32_t iters) {
  uint64_t t0 = now_ns();
  for (uint32_t i = 0; i < iters; i++) {
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) return 0;
    munmap(p, size);
  }
  return now_ns() - t0;
}

/* Nanoseconds for `iters` memcpy calls of n bytes from src to dst. */
uint64_t gm_bench_memcpy(uint64_t dst, uint64_t src, uint64_t n, uint32_t iters) {
  uint64_t t0 = now_ns();
  for (uint32_t i = 0; i < iters; i++) {
    memcpy((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    __asm__ __volatile__("" ::: "memory");
  }
  return now_ns() - t0;
}

/*
 * Guest memory baselines (bench/guest_memory.ts): the LCG address stream of the vm-memory workload
 * (x = x * MUL + ADD mod 2^64 from SEED; address = base + ((x >> 32) & mask)) driving plain C
 * accesses. Volatile accesses keep the compiler from merging or dropping them; loads are summed
 * into a sink the caller can read back, which also lets it check its own LCG against this one.
 */
enum {
  GM_BENCH_LCG_ONLY = 0,
  GM_BENCH_LOAD_U64 = 1,
  GM_BENCH_STORE_U64 = 2,
  GM_BENCH_LOAD_U32 = 3,
  GM_BENCH_STORE_U8 = 4,
  GM_BENCH_COPY_OUT = 5,       /* memcpy(buf, address, len) */
  GM_BENCH_COPY_IN = 6,        /* memcpy(address, buf, len) */
  GM_BENCH_STORE_U64_DIRTY = 7, /* store, then set the 4 KiB page's bit (relative to base) in uint32 words at buf */
  GM_BENCH_COPY_OUT_FENCED = 8  /* COPY_OUT with an lfence after each memcpy (x86-64 only; 0 ns elsewhere) */
};

#define GM_LCG_MUL 6364136223846793005ull
#define GM_LCG_ADD 1442695040888963407ull
#define GM_LCG_SEED 0x243F6A8885A308D3ull

static uint64_t bench_sink;

/* What the last gm_bench_lcg run accumulated (the sum of the offsets for LCG_ONLY, of the loaded values for loads). */
uint64_t gm_bench_sink(void) { return bench_sink; }

/* Nanoseconds (at least 1) for `iters` accesses of `kind` at LCG addresses; 0 for an unknown kind. */
uint64_t gm_bench_lcg(int32_t kind, uint64_t base, uint64_t mask, uint64_t buf, uint64_t len, uint32_t iters) {
  char *b = (char *)(uintptr_t)base;
  char *out = (char *)(uintptr_t)buf;
  uint64_t x = GM_LCG_SEED, acc = 0;
  uint64_t t0 = now_ns();
  switch (kind) {
  case GM_BENCH_LCG_ONLY:
    for (uint32_t i = 0; i < iters; i++) {
      x = x * GM_LCG_MUL + GM_LCG_ADD;
      acc += (x >> 32) & mask;
      __asm__ __volatile__("" : "+r"(acc)); /* one add per step, not a closed form */
    }
    break;
  case GM_BENCH_LOAD_U64:
    for (uint32_t i = 0; i < iters; i++) {
      x = x * GM_LCG_MUL + GM_LCG_ADD;
      acc += *(volatile uint64_t *)(b + ((x >> 32) & mask));
    }
    break;
  case GM_BENCH_STORE_U64:
    for (uint32_t i = 0; i < iters; i++) {
      x = x * GM_LCG_MUL + GM_LCG_ADD;
      *(volatile uint64_t *)(b + ((x >> 32) & mask)) = x;
    }
    break;
  case GM_BENCH_LOAD_U32:
    for (uint32_t i = 0; i < iters; i++) {
      x = x * GM_LCG_MUL + GM_LCG_ADD;
      acc += *(volatile uint32_t *)(b + ((x >> 32) & mask));
    }
    break;
  case GM_BENCH_STORE_U8:
    for (uint32_t i = 0; i < iters; i++) {
      x = x * GM_LCG_MUL + GM_LCG_ADD;
      *(volatile uint8_t *)(b + ((x >> 32) & mask)) = (uint8_t)i;
    }
    break;
  case GM_BENCH_COPY_OUT:
    for (uint32_t i = 0; i < iters; i++) {
      x = x * GM_LCG_MUL + GM_LCG_ADD;
      memcpy(out, b + ((x >> 32) & mask), len);
      __asm__ __volatile__("" ::: "memory");
    }
    break;
#if defined(__x86_64__)
  case GM_BENCH_COPY_OUT_FENCED:
    /* What a copy costs when the next one cannot start until this one's instructions are done: the
       figure a copy called through FFI from a JavaScript loop lands near (see bench/guest_memory.ts). */
    for (uint32_t i = 0; i < iters; i++) {
      x = x * GM_LCG_MUL + GM_LCG_ADD;
      memcpy(out, b + ((x >> 32) & mask), len);
      __asm__ __volatile__("lfence" ::: "memory");
    }
    break;
#endif
  case GM_BENCH_COPY_IN:
    for (uint32_t i = 0; i < iters; i++) {
      x = x * GM_LCG_MUL + GM_LCG_ADD;
      memcpy(b + ((x >> 32) & mask), out, len);
      __asm__ __volatile__("" ::: "memory");
    }
    break;
  case GM_BENCH_STORE_U64_DIRTY: {
    uint32_t *words = (uint32_t *)(uintptr_t)buf;
    for (uint32_t i = 0; i < iters; i++) {
      x = x * GM_LCG_MUL + GM_LCG_ADD;
      uint64_t off = (x >> 32) & mask;
      *(volatile uint64_t *)(b + off) = x;
      uint32_t *w = words + (off >> 17), bit = 1u << ((off >> 12) & 31);
      /* Atomic only when the bit is clear, as AtomicBitmap marks by default. */
      if (!(__atomic_load_n(w, __ATOMIC_RELAXED) & bit)) __atomic_fetch_or(w, bit, __ATOMIC_RELAXED);
    }
    break;
  }
  default:
    return 0;
  }
  uint64_t ns = now_ns() - t0;
  bench_sink = acc;
  return ns ? ns : 1;
}

/* Nanoseconds (at least 1) for `iters` rounds of the `count` copies in ops (dst, src, len triples). */
uint64_t gm_bench_copy_ops(const uint64_t *ops, uint32_t count, uint32_t iters) {
  uint64_t t0 = now_ns();
  for (uint32_t i = 0; i < iters; i++) {
    for (uint32_t k = 0; k < count; k++) {
      memcpy((void *)(uintptr_t)ops[3 * k], (const void *)(uintptr_t)ops[3 * k + 1], ops[3 * k + 2]);
    }
    __asm__ __volatile__("" ::: "memory");
  }
  uint64_t ns = now_ns() - t0;
  return ns ? ns : 1;
}

/*
 * IOTLB baselines (bench/iommu.ts): the bench's table as one sorted array in C, `table` = n starts
 * (ascending, entries not overlapping), then n exclusive ends, then n diffs (target - start mod
 * 2^64). Index of the last entry whose start is <= a, or n if there is none.
 */
static uint32_t iotlb_floor(const uint64_t *starts, uint32_t n, uint64_t a) {
  uint32_t lo = 0, hi = n; /* first start above a */
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (starts[mid] <= a) lo = mid + 1;
    else hi = mid;
  }
  return lo ? lo - 1 : n;
}

/*
 * Nanoseconds (at least 1) for `iters` translations of [a, a + len) at the LCG addresses
 * a = base + ((x >> 32) & mask): a binary search, then the end check. bench_sink gets the sum of
 * the translated addresses (misses add nothing), for the caller to compare with its own.
 */
uint64_t gm_bench_iotlb_lookup(const uint64_t *table, uint32_t n, uint64_t base, uint64_t mask, uint64_t len,
                               uint32_t iters) {
  const uint64_t *starts = table, *ends = table + n, *diffs = table + 2 * (size_t)n;
  uint64_t x = GM_LCG_SEED, acc = 0;
  uint64_t t0 = now_ns();
  for (uint32_t i = 0; i < iters; i++) {
    x = x * GM_LCG_MUL + GM_LCG_ADD;
    uint64_t a = base + ((x >> 32) & mask);
    uint32_t k = iotlb_floor(starts, n, a);
    if (k < n && a + len <= ends[k]) acc += a + diffs[k];
  }
  uint64_t ns = now_ns() - t0;
  bench_sink = acc;
  return ns ? ns : 1;
}

/*
 * Nanoseconds (at least 1) for `iters` re-mappings of len bytes at a = (x >> 32) & mask to target
 * a / 2 + (i & 1) * 2^30 in the same table layout: a binary search for the entry starting at a and
 * an overwrite of its end and diff (a key that is not present is skipped). bench_sink gets the sum
 * of the indices found.
 */
uint64_t gm_bench_iotlb_overwrite(uint64_t *table, uint32_t n, uint64_t mask, uint64_t len, uint32_t iters) {
  uint64_t *starts = table, *ends = table + n, *diffs = table + 2 * (size_t)n;
  uint64_t x = GM_LCG_SEED, acc = 0;
  uint64_t t0 = now_ns();
  for (uint32_t i = 0; i < iters; i++) {
    x = x * GM_LCG_MUL + GM_LCG_ADD;
    uint64_t a = (x >> 32) & mask;
    uint32_t k = iotlb_floor(starts, n, a);
    if (k < n && starts[k] == a) {
      ends[k] = a + len;
      diffs[k] = (a / 2 + ((uint64_t)(i & 1) << 30)) - a;
      acc += k;
    }
    __asm__ __volatile__("" ::: "memory");
  }
  uint64_t ns = now_ns() - t0;
  bench_sink = acc;
  return ns ? ns : 1;
}

/*
 * Baseline of iotlb_set_mapping_4k_sparse: the IOTLB's own layout in C, a directory of chunks in
 * start order, each chunk up to 64 entries (starts, ends, diffs) kept sorted by memmove and split
 * in halves when full, growing by realloc. Round after round it starts empty and inserts
 * `per_round` mappings of len bytes at a = (x >> 32) * len, to a + len for even pages and a - len
 * for odd ones, so no two entries ever continue each other. An insert checks what any range map
 * must: an entry with the same range (overwritten in place) and neighbours in its chunk that
 * continue it (extended). Rounds run whole; the time of the `iters` inserts asked for is scaled
 * from them. bench_sink gets the size of the last round's table.
 */
#define GM_IOTLB_CHUNK 64

struct gm_iotlb_chunk {
  uint64_t start[GM_IOTLB_CHUNK], end[GM_IOTLB_CHUNK], diff[GM_IOTLB_CHUNK];
  uint32_t n;
};

struct gm_iotlb_table {
  struct gm_iotlb_chunk *pool; /* chunk ids are never freed here: id = order of creation */
  uint32_t *dir;               /* chunk ids in start order */
  uint64_t *first;             /* first start of each directory chunk */
  uint32_t chunks, cap;
  uint64_t size;
};

static int iotlb_grow(struct gm_iotlb_table *t) {
  uint32_t cap = t->cap ? t->cap * 2 : 2;
  struct gm_iotlb_chunk *pool = realloc(t->pool, cap * sizeof *pool);
  if (pool == NULL) return -1;
  t->pool = pool;
  uint32_t *dir = realloc(t->dir, cap * sizeof *dir);
  if (dir == NULL) return -1;
  t->dir = dir;
  uint64_t *first = realloc(t->first, cap * sizeof *first);
  if (first == NULL) return -1;
  t->first = first;
  t->cap = cap;
  return 0;
}

/* Maps [a, e) to a + d (mod 2^64); -1 when out of memory. */
static int iotlb_insert(struct gm_iotlb_table *t, uint64_t a, uint64_t e, uint64_t d) {
  if (t->chunks == 0) {
    if (t->cap == 0 && iotlb_grow(t)) return -1;
    t->dir[0] = 0;
    t->first[0] = a;
    t->pool[0].n = 0;
    t->chunks = 1;
  }
  uint32_t lo = 0, hi = t->chunks; /* first chunk starting above a */
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (t->first[mid] <= a) lo = mid + 1;
    else hi = mid;
  }
  uint32_t k = lo ? lo - 1 : 0;
  struct gm_iotlb_chunk *c = &t->pool[t->dir[k]];
  uint32_t i = 0, j = c->n; /* first entry starting above a */
  while (i < j) {
    uint32_t mid = i + (j - i) / 2;
    if (c->start[mid] <= a) i = mid + 1;
    else j = mid;
  }
  if (i > 0 && c->start[i - 1] == a && c->end[i - 1] == e) {
    c->diff[i - 1] = d;
    return 0;
  }
  if (i > 0 && c->end[i - 1] == a && c->diff[i - 1] == d) {
    c->end[i - 1] = e;
    return 0;
  }
  if (i < c->n && c->start[i] == e && c->diff[i] == d) {
    c->start[i] = a;
    if (i == 0) t->first[k] = a;
    return 0;
  }
  if (c->n == GM_IOTLB_CHUNK) {
    if (t->chunks == t->cap && iotlb_grow(t)) return -1;
    c = &t->pool[t->dir[k]]; /* the pool may have moved */
    uint32_t id = t->chunks, half = GM_IOTLB_CHUNK / 2;
    struct gm_iotlb_chunk *r = &t->pool[id];
    memcpy(r->start, c->start + half, half * sizeof(uint64_t));
    memcpy(r->end, c->end + half, half * sizeof(uint64_t));
    memcpy(r->diff, c->diff + half, half * sizeof(uint64_t));
    r->n = half;
    c->n = half;
    memmove(t->dir + k + 2, t->dir + k + 1, (t->chunks - k - 1) * sizeof *t->dir);
    memmove(t->first + k + 2, t->first + k + 1, (t->chunks - k - 1) * sizeof *t->first);
    t->dir[k + 1] = id;
    t->first[k + 1] = r->start[0];
    t->chunks++;
    if (i > half) {
      c = r;
      i -= half;
      k++;
    }
  }
  uint32_t tail = c->n - i;
  memmove(c->start + i + 1, c->start + i, tail * sizeof(uint64_t));
  memmove(c->end + i + 1, c->end + i, tail * sizeof(uint64_t));
  memmove(c->diff + i + 1, c->diff + i, tail * sizeof(uint64_t));
  c->start[i] = a;
  c->end[i] = e;
  c->diff[i] = d;
  c->n++;
  if (i == 0) t->first[k] = a;
  t->size++;
  return 0;
}

/* Nanoseconds (at least 1) for `iters` inserts as described above; 0 if per_round is 0 or memory ran out. */
uint64_t gm_bench_iotlb_insert(uint64_t len, uint32_t per_round, uint32_t iters) {
  if (per_round == 0) return 0;
  uint64_t ns = 0, done = 0;
  do {
    struct gm_iotlb_table t = {0};
    uint64_t x = GM_LCG_SEED;
    int failed = 0;
    uint64_t t0 = now_ns();
    for (uint32_t i = 0; i < per_round && !failed; i++) {
      x = x * GM_LCG_MUL + GM_LCG_ADD;
      uint64_t page = x >> 32, a = page * len;
      failed = iotlb_insert(&t, a, a + len, (page & 1) ? 0 - len : len);
    }
    ns += now_ns() - t0;
    done += per_round;
    bench_sink = t.size;
    free(t.pool);
    free(t.dir);
    free(t.first);
    if (failed) return 0;
  } while (done < iters);
  ns = (uint64_t)((double)ns * iters / (double)done);
  return ns ? ns : 1;
}
