/*
 * preload.c - librcgc-prof.so's malloc-family hooks and the per-stack
 * aggregate (docs/prof.md, "How capture works").
 *
 * Every traced block carries a 16-byte header just before the pointer the
 * program sees:
 *
 *      base (from the real allocator)          p (returned to the program)
 *      |  [aligned blocks: padding, base at p-24]  | size u64 | stack u32 | magic u32 |  data...
 *
 * so free() finds the block's size and stack without a global pointer map.
 * The magic word mixes the pointer's bits with a kind (plain or aligned) and
 * always has its top bit set; a glibc chunk's size field never does in its
 * upper half, so a pointer we did not allocate (made before we were ready,
 * or while the reentrancy guard was set) is recognised and passed to the
 * real free untouched.  free() clears the magic word, so a double free
 * reaches the real allocator, which reports it as it would unprofiled.
 *
 * Recursion: dlsym() may call calloc, libunwind may call malloc, and the
 * sampler thread allocates through zstd and pthread.  A thread-local guard,
 * set whenever we are inside our own code, sends every nested call straight
 * to the real allocator (untraced, no header); before the real functions are
 * known, a static bootstrap arena serves them.
 */
#include "preload.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>


struct pf_state pf PF_HIDDEN;
__thread int pf_guard PF_TLS PF_HIDDEN;
/* The last block this thread allocated: freeing it before the thread
 * allocates anything else makes it "temporary" (heaptrack's definition). */
static __thread void *t_last PF_TLS;
static __thread uintptr_t t_frames[RCGC_PROF_MAX_FRAMES + 2] PF_TLS;
static __thread uint32_t t_cached PF_TLS; /* pf_unwind's stack id, if known */
/* the biased lock ("the hooks' critical section" below) */
static __thread int t_owner PF_TLS; /* 0 not yet known, 1 owner, 2 other */
static int owner_claimed, owner_in_cs, multi, membarrier_ok;


#define HDR 16u
#define KIND_PLAIN 1u
#define KIND_ALIGNED 2u

struct hdr {
    uint64_t size;
    uint32_t stack;
    uint32_t magic;
};

static void *(*real_malloc)(size_t);
static void (*real_free)(void *);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void *(*real_memalign)(size_t, size_t);
static size_t (*real_usable)(void *);

/* ---- small utilities --------------------------------------------------- */

void pf_lock(void)
{
    int spins = 0;
    while (__atomic_exchange_n(&pf.lock, 1, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&pf.lock, __ATOMIC_RELAXED)) {
            if (++spins < 200)
                __builtin_ia32_pause();
            else
                sched_yield();
        }
    }
}

void pf_unlock(void)
{
    __atomic_store_n(&pf.lock, 0, __ATOMIC_RELEASE);
}

int pf_trylock_for(int *lock, int ms)
{
    struct timespec ts = { 0, 1000000 };
    for (int i = 0; i <= ms; i++) {
        if (!__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE))
            return 1;
        nanosleep(&ts, NULL);
    }
    return 0;
}

uint64_t pf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void *pf_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static inline uint32_t magic_of(const void *p, uint32_t kind)
{
    uint32_t m = (uint32_t)(((uintptr_t)p >> 4) * 0x9E3779B1u);
    return ((m | 0x80000000u) & ~3u) | kind;
}

static inline struct hdr *hdr_of(void *p)
{
    return (struct hdr *)((char *)p - HDR);
}

/* The kind of a block, or 0 if it carries no header of ours. */
static inline uint32_t kind_of(void *p)
{
    if (((uintptr_t)p & 15u) != 0)
        return 0;
    uint32_t m = hdr_of(p)->magic;
    uint32_t k = m & 3u;
    if ((k == KIND_PLAIN || k == KIND_ALIGNED) && m == magic_of(p, k))
        return k;
    return 0;
}

static inline void *base_of(void *p, uint32_t kind)
{
    if (kind == KIND_ALIGNED)
        return *(void **)((char *)p - 24);
    return (char *)p - HDR;
}

/* ---- bootstrap arena: before the real allocator is known ---------------- */

static _Alignas(16) unsigned char boot_arena[1 << 16];
static size_t boot_used;

static int in_boot(const void *p)
{
    return (const unsigned char *)p >= boot_arena &&
           (const unsigned char *)p < boot_arena + sizeof boot_arena;
}

static void *boot_alloc(size_t n)
{
    size_t need = (n + 16 + 15) & ~(size_t)15;
    size_t at = __atomic_fetch_add(&boot_used, need, __ATOMIC_RELAXED);
    if (n > sizeof boot_arena || at + need > sizeof boot_arena)
        return NULL;
    *(size_t *)(boot_arena + at) = n;
    return boot_arena + at + 16; /* memory is static: already zero */
}

static size_t boot_size(const void *p)
{
    return *(const size_t *)((const unsigned char *)p - 16);
}

/* ---- initialization ------------------------------------------------------ */

static void parse_config(void)
{
    pf.nframes = 32;
    pf.interval_ms = 10;
    pf.root_pid = 0;
    pf.out[0] = 0;
    const char *e = getenv("RCGC_PROF");
    /* "frames=N,interval=MS,root=PID,out=PATH" (out last: it may hold commas) */
    while (e && *e) {
        if (!strncmp(e, "out=", 4)) {
            size_t n = strlen(e + 4);
            if (n >= sizeof pf.out)
                n = sizeof pf.out - 1;
            memcpy(pf.out, e + 4, n);
            pf.out[n] = 0;
            break;
        }
        const char *eq = strchr(e, '=');
        if (!eq)
            break;
        long v = strtol(eq + 1, NULL, 10);
        if (!strncmp(e, "frames=", 7))
            pf.nframes = (int)(v < 1 ? 1 : v > RCGC_PROF_MAX_FRAMES ? RCGC_PROF_MAX_FRAMES : v);
        else if (!strncmp(e, "interval=", 9))
            pf.interval_ms = (int)(v < 1 ? 1 : v > 60000 ? 60000 : v);
        else if (!strncmp(e, "root=", 5))
            pf.root_pid = (pid_t)v;
        else if (!strncmp(e, "unwind=libunwind", 16))
            pf.slow_unwind = 1;
        const char *comma = strchr(e, ',');
        e = comma ? comma + 1 : NULL;
    }
}

/* Resolve the real allocator and map the tables.  Runs on the first hook
 * call (possibly before our constructor) and is idempotent. */
static void pf_init(void)
{
    int expect = 0;
    if (!__atomic_compare_exchange_n(&pf.ready, &expect, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return;
    pf_guard++;
    real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    real_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
    real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    real_memalign = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "memalign");
    real_usable = (size_t(*)(void *))dlsym(RTLD_NEXT, "malloc_usable_size");
    parse_config();
    pf.cap_stacks = 1u << 20;
    pf.stacks = pf_map(sizeof(struct pf_stack) * pf.cap_stacks);
    pf.cap_frames = 1u << 25;
    pf.frames = pf_map(sizeof(uintptr_t) * pf.cap_frames);
    pf.index_mask = (1u << 12) - 1;
    pf.index = pf_map(sizeof(uint32_t) * (pf.index_mask + 1u));
    pf.cap_samples = 4096;
    pf.samples = pf_map(sizeof(struct pf_sample) * pf.cap_samples);
    pf.stride = 1;
    pf.pid = getpid();
    pf.parent_pid = getppid();
    pf.t0_ns = pf_now_ns();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pf.start_unix_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    pf.n_stacks = 1; /* id 0: blocks whose stack did not fit ("overflow") */
    membarrier_ok = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    if (!pf.slow_unwind)
        pf_unwind_init(); /* without it, every walk is unw_backtrace's */
    pf_guard--;
    if (!real_malloc || !real_free || !real_calloc || !real_realloc || !real_memalign ||
        !pf.stacks || !pf.frames || !pf.index || !pf.samples) {
        __atomic_store_n(&pf.ready, 3, __ATOMIC_RELEASE); /* pass-through only */
        return;
    }
    __atomic_store_n(&pf.ready, 2, __ATOMIC_RELEASE);
}

__attribute__((constructor)) static void pf_constructor(void)
{
    pf_init();
    if (pf.ready == 2)
        pf_out_init();
}

/* ---- the stack table ----------------------------------------------------- */

static inline uint64_t hash_frames(const uintptr_t *f, int n)
{
    uint64_t h = 0x243F6A8885A308D3u ^ (uint64_t)n;
    for (int i = 0; i < n; i++) {
        h ^= f[i];
        h *= 0x9E3779B97F4A7C15u;
        h ^= h >> 29;
    }
    return h | 1u;
}

static void index_grow(void)
{
    uint32_t ncap = (pf.index_mask + 1u) * 2u;
    uint32_t *ni = pf_map(sizeof(uint32_t) * ncap);
    if (!ni)
        return;
    for (uint32_t id = 1; id < pf.n_stacks; id++) {
        uint32_t i = (uint32_t)pf.stacks[id].hash & (ncap - 1u);
        while (ni[i])
            i = (i + 1u) & (ncap - 1u);
        ni[i] = id;
    }
    munmap(pf.index, sizeof(uint32_t) * (pf.index_mask + 1u));
    pf.index = ni;
    pf.index_mask = ncap - 1u;
}

/* The id of stack f[0..n), inserting it if new.  Under pf.lock. */
static uint32_t stack_id(const uintptr_t *f, int n, uint64_t h)
{
    uint32_t i = (uint32_t)h & pf.index_mask;
    for (;;) {
        uint32_t id = pf.index[i];
        if (!id)
            break;
        struct pf_stack *s = &pf.stacks[id];
        if (s->hash == h && s->nframes == (uint32_t)n &&
            !memcmp(&pf.frames[s->frames_off], f, sizeof(uintptr_t) * (size_t)n))
            return id;
        i = (i + 1u) & pf.index_mask;
    }
    if (pf.n_stacks >= pf.cap_stacks || pf.n_frames + (uint32_t)n > pf.cap_frames)
        return 0;
    uint32_t id = pf.n_stacks;
    struct pf_stack *s = &pf.stacks[id];
    memcpy(&pf.frames[pf.n_frames], f, sizeof(uintptr_t) * (size_t)n);
    s->hash = h;
    s->frames_off = pf.n_frames;
    s->nframes = (uint32_t)n;
    s->peak_gen = pf.gen;
    pf.n_frames += (uint32_t)n;
    pf.index[i] = id;
    __atomic_store_n(&pf.n_stacks, id + 1u, __ATOMIC_RELEASE);
    if ((pf.n_stacks - 1u) * 2u > pf.index_mask)
        index_grow();
    return id;
}

/* S2: before a stack's live value changes, remember it if it was the value
 * at the latest peak. */
static inline void touch(struct pf_stack *s)
{
    if (s->peak_gen != pf.gen) {
        s->st[RCGC_PROF_ST_PEAK_COUNT] = s->st[RCGC_PROF_ST_LIVE_COUNT];
        s->st[RCGC_PROF_ST_PEAK_BYTES] = s->st[RCGC_PROF_ST_LIVE_BYTES];
        s->peak_gen = pf.gen;
    }
}

/* Account a new block of `size` bytes at the stack in t_frames (nf frames
 * after the hook's own), or at t_cached when the walk found it known;
 * returns the stack id.  Caller holds pf.lock. */
static inline uint32_t account_alloc(int nf, size_t size)
{
    uint32_t id = t_cached;
    if (id == UINT32_MAX) {
        const uintptr_t *f = t_frames + 1;
        id = stack_id(f, nf, hash_frames(f, nf));
        pf_unwind_commit(id);
    }
    struct pf_stack *s = &pf.stacks[id];
    touch(s);
    s->st[RCGC_PROF_ST_ALLOC_COUNT]++;
    s->st[RCGC_PROF_ST_ALLOC_BYTES] += size;
    s->st[RCGC_PROF_ST_LIVE_COUNT]++;
    s->st[RCGC_PROF_ST_LIVE_BYTES] += size;
    pf.tot.alloc_calls++;
    pf.tot.alloc_bytes += size;
    pf.tot.cur_count++;
    pf.tot.cur_bytes += size;
    if (pf.tot.cur_bytes > pf.tot.peak_bytes) {
        pf.tot.peak_bytes = pf.tot.cur_bytes;
        pf.tot.peak_ms = pf.now_ms;
        pf.gen++;
        s->st[RCGC_PROF_ST_PEAK_COUNT] = s->st[RCGC_PROF_ST_LIVE_COUNT];
        s->st[RCGC_PROF_ST_PEAK_BYTES] = s->st[RCGC_PROF_ST_LIVE_BYTES];
        s->peak_gen = pf.gen;
    }
    return id;
}

/* Account the end of a block.  Caller holds pf.lock. */
static inline void account_free(uint32_t id, uint64_t size, int temporary)
{
    if (id >= pf.n_stacks)
        id = 0;
    struct pf_stack *s = &pf.stacks[id];
    touch(s);
    s->st[RCGC_PROF_ST_LIVE_COUNT]--;
    s->st[RCGC_PROF_ST_LIVE_BYTES] -= size;
    pf.tot.free_calls++;
    pf.tot.cur_count--;
    pf.tot.cur_bytes -= size;
    if (temporary) {
        s->st[RCGC_PROF_ST_TEMP_COUNT]++;
        s->st[RCGC_PROF_ST_TEMP_BYTES] += size;
        pf.tot.temp_calls++;
    }
}

/* ---- the hooks' critical section ------------------------------------------ */

/* While only one thread has ever traced a call, that thread (the "owner")
 * updates the aggregate without the lock: a biased lock.  The owner marks
 * itself inside (owner_in_cs) and then checks `multi` with no fence between;
 * a second thread sets `multi`, then membarrier() forces a barrier on every
 * running thread, so afterwards either the owner sees `multi` on entry, or
 * the second thread sees owner_in_cs and waits for it to leave.  From then
 * on everyone takes the lock.  (The sampler thread only reads, and only the
 * dense stack array, which is safe without the lock.)  Without membarrier
 * there is no owner and every thread locks. */

static void become_known(void)
{
    int expect = 0;
    if (membarrier_ok && __atomic_compare_exchange_n(&owner_claimed, &expect, 1, 0,
                                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        t_owner = 1;
        return;
    }
    t_owner = 2;
    if (!__atomic_load_n(&multi, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&multi, 1, __ATOMIC_SEQ_CST);
        if (membarrier_ok)
            syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
        while (__atomic_load_n(&owner_in_cs, __ATOMIC_ACQUIRE))
            sched_yield();
    }
}

/* Enter the aggregate's critical section; returns whether the lock was taken. */
static inline int cs_enter(void)
{
    if (PF_LIKELY(t_owner == 1)) {
        __atomic_store_n(&owner_in_cs, 1, __ATOMIC_RELAXED);
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (PF_LIKELY(!__atomic_load_n(&multi, __ATOMIC_RELAXED)))
            return 0;
        __atomic_store_n(&owner_in_cs, 0, __ATOMIC_RELEASE);
    } else if (PF_UNLIKELY(t_owner == 0)) {
        become_known();
        if (t_owner == 1)
            return cs_enter();
    }
    pf_lock();
    return 1;
}

static inline void cs_exit(int locked)
{
    if (locked)
        pf_unlock();
    else
        __atomic_store_n(&owner_in_cs, 0, __ATOMIC_RELEASE);
}

/* In a forked child only the forking thread is left. */
void pf_cs_child(void)
{
    owner_in_cs = 0;
    if (t_owner != 1) { /* the owner is gone: nobody may skip the lock */
        owner_claimed = 1;
        multi = 1;
    }
}

/* ---- the traced paths ---------------------------------------------------- */

/* Unwind from inside a hook: frame 0 is the hook itself and is dropped.
 * A macro so that the walk starts in the exported function's frame. */
#define CAPTURE(nf)                                                            \
    do {                                                                       \
        int n_ = pf_unwind(t_frames, pf.nframes + 1, &t_cached);               \
        (nf) = n_ > 1 ? n_ - 1 : 0;                                            \
    } while (0)

static inline int tracing(void)
{
    if (PF_UNLIKELY(pf.ready != 2)) {
        if (pf.ready == 0)
            pf_init();
        return 0;
    }
    if (PF_UNLIKELY(pf.need_sampler) && !pf_guard)
        pf_start_sampler();
    return !pf_guard;
}

static inline void *finish_plain(void *base, size_t n, int nf)
{
    void *p = (char *)base + HDR;
    int locked_ = cs_enter();
    uint32_t id = account_alloc(nf, n);
    cs_exit(locked_);
    struct hdr *hd = hdr_of(p);
    hd->size = n;
    hd->stack = id;
    hd->magic = magic_of(p, KIND_PLAIN);
    t_last = p;
    return p;
}

/* Untraced allocation for nested calls and early start-up. */
static void *raw_malloc(size_t n)
{
    if (real_malloc)
        return real_malloc(n);
    return boot_alloc(n);
}

static void traced_free(void *p, uint32_t kind)
{
    struct hdr *hd = hdr_of(p);
    int temporary = p == t_last;
    if (temporary)
        t_last = NULL;
    int locked_ = cs_enter();
    account_free(hd->stack, hd->size, temporary);
    cs_exit(locked_);
    void *base = base_of(p, kind);
    hd->magic = 0;
    real_free(base);
}

void *malloc(size_t n)
{
    if (PF_UNLIKELY(!tracing()))
        return raw_malloc(n);
    if (PF_UNLIKELY(n > SIZE_MAX - 64)) {
        errno = ENOMEM;
        return NULL;
    }
    pf_guard++;
    int nf;
    CAPTURE(nf);
    void *base = real_malloc(n + HDR);
    void *p = base ? finish_plain(base, n, nf) : NULL;
    pf_guard--;
    return p;
}

void free(void *p)
{
    if (!p || in_boot(p))
        return;
    uint32_t kind = kind_of(p);
    if (PF_UNLIKELY(!kind)) {
        if (real_free)
            real_free(p);
        return;
    }
    if (PF_UNLIKELY(pf_guard || pf.ready != 2)) {
        /* A traced block freed from inside our own code (a signal handler
         * that interrupted a hook): release it without accounting; the lock
         * may be ours.  The aggregate then keeps it as live. */
        hdr_of(p)->magic = 0;
        real_free(base_of(p, kind));
        return;
    }
    pf_guard++;
    traced_free(p, kind);
    pf_guard--;
}

void *calloc(size_t a, size_t b)
{
    size_t n;
    if (__builtin_mul_overflow(a, b, &n) || n > SIZE_MAX - 64) {
        errno = ENOMEM;
        return NULL;
    }
    if (PF_UNLIKELY(!tracing())) {
        if (real_calloc)
            return real_calloc(1, n);
        return boot_alloc(n);
    }
    pf_guard++;
    int nf;
    CAPTURE(nf);
    void *base = real_calloc(1, n + HDR);
    void *p = base ? finish_plain(base, n, nf) : NULL;
    pf_guard--;
    return p;
}

/* Aligned allocation: alignments up to 16 are malloc's own; larger ones get
 * `off` bytes in front (a multiple of the alignment, at least 32) holding
 * the base pointer at p-24 and the header at p-16. */
static void *aligned_common(size_t align, size_t n, int nf)
{
    if (align <= 16) {
        void *base = real_malloc(n + HDR);
        return base ? finish_plain(base, n, nf) : NULL;
    }
    size_t off = align < 32 ? 32 : align;
    if (n > SIZE_MAX - off - 64) {
        errno = ENOMEM;
        return NULL;
    }
    void *base = real_memalign(align, n + off);
    if (!base)
        return NULL;
    void *p = (char *)base + off;
    int locked_ = cs_enter();
    uint32_t id = account_alloc(nf, n);
    cs_exit(locked_);
    *(void **)((char *)p - 24) = base;
    struct hdr *hd = hdr_of(p);
    hd->size = n;
    hd->stack = id;
    hd->magic = magic_of(p, KIND_ALIGNED);
    t_last = p;
    return p;
}

static size_t round_pow2(size_t a)
{
    size_t r = 1;
    while (r < a && r)
        r <<= 1;
    return r;
}

static void *raw_memalign(size_t align, size_t n)
{
    if (real_memalign)
        return real_memalign(align, n);
    return NULL;
}

void *memalign(size_t align, size_t n)
{
    align = round_pow2(align);
    if (!align) {
        errno = EINVAL;
        return NULL;
    }
    if (PF_UNLIKELY(!tracing()))
        return raw_memalign(align, n);
    pf_guard++;
    int nf;
    CAPTURE(nf);
    void *p = aligned_common(align, n, nf);
    pf_guard--;
    return p;
}

/* The same contract here (glibc accepts any alignment for both). */
void *aligned_alloc(size_t align, size_t n) __attribute__((alias("memalign")));

int posix_memalign(void **out, size_t align, size_t n)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return EINVAL;
    int saved = errno;
    void *p;
    if (PF_UNLIKELY(!tracing())) {
        p = raw_memalign(align, n);
    } else {
        pf_guard++;
        int nf;
        CAPTURE(nf);
        p = aligned_common(align, n, nf);
        pf_guard--;
    }
    if (!p) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

void *valloc(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (PF_UNLIKELY(!tracing()))
        return raw_memalign(page, n);
    pf_guard++;
    int nf;
    CAPTURE(nf);
    void *p = aligned_common(page, n, nf);
    pf_guard--;
    return p;
}

void *pvalloc(size_t n)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (n > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    n = (n + page - 1) & ~(page - 1);
    if (n == 0)
        n = page;
    if (PF_UNLIKELY(!tracing()))
        return raw_memalign(page, n);
    pf_guard++;
    int nf;
    CAPTURE(nf);
    void *p = aligned_common(page, n, nf);
    pf_guard--;
    return p;
}

/* realloc's traced body; frames already captured in t_frames. */
static void *traced_realloc(void *p, size_t n, int nf)
{
    uint32_t kind = kind_of(p);
    if (!kind) {
        /* A block from before we were ready: move it into a traced one. */
        size_t old = in_boot(p) ? boot_size(p) : real_usable ? real_usable(p) : 0;
        void *base = real_malloc(n + HDR);
        if (!base)
            return NULL;
        memcpy((char *)base + HDR, p, old < n ? old : n);
        if (!in_boot(p))
            real_free(p);
        return finish_plain(base, n, nf);
    }
    struct hdr *hd = hdr_of(p);
    uint64_t old_size = hd->size;
    uint32_t old_id = hd->stack;
    if (kind == KIND_ALIGNED) {
        void *base = real_malloc(n + HDR);
        if (!base)
            return NULL;
        memcpy((char *)base + HDR, p, old_size < n ? old_size : n);
        traced_free(p, kind);
        return finish_plain(base, n, nf);
    }
    int temporary = p == t_last;
    hd->magic = 0;
    void *nb = real_realloc((char *)p - HDR, n + HDR);
    if (!nb) {
        hd->magic = magic_of(p, KIND_PLAIN);
        return NULL;
    }
    void *np = (char *)nb + HDR;
    int locked_ = cs_enter();
    account_free(old_id, old_size, temporary);
    uint32_t id = account_alloc(nf, n);
    cs_exit(locked_);
    struct hdr *nh = hdr_of(np);
    nh->size = n;
    nh->stack = id;
    nh->magic = magic_of(np, KIND_PLAIN);
    t_last = np;
    return np;
}

static void *raw_realloc(void *p, size_t n)
{
    if (!p)
        return raw_malloc(n);
    if (in_boot(p)) {
        void *q = raw_malloc(n);
        if (q) {
            size_t old = boot_size(p);
            memcpy(q, p, old < n ? old : n);
        }
        return q;
    }
    uint32_t kind = kind_of(p);
    if (kind == KIND_PLAIN) {
        /* Traced block reallocated from inside our own code: keep its header
         * and accounted size, so the eventual free stays consistent. */
        struct hdr keep = *hdr_of(p);
        void *nb = real_realloc((char *)p - HDR, n + HDR);
        if (!nb)
            return NULL;
        *(struct hdr *)nb = keep;
        hdr_of((char *)nb + HDR)->magic = magic_of((char *)nb + HDR, KIND_PLAIN);
        return (char *)nb + HDR;
    }
    if (kind == KIND_ALIGNED) {
        void *q = real_malloc(n);
        if (q) {
            uint64_t old = hdr_of(p)->size;
            memcpy(q, p, old < n ? old : n);
        }
        return q; /* the old aligned block stays accounted as live */
    }
    return real_realloc ? real_realloc(p, n) : NULL;
}

/* realloc and reallocarray while tracing.  Inlined into both (always), so
 * the stack is captured from the interposed function's own frame. */
static inline __attribute__((always_inline)) void *realloc_traced(void *p, size_t n)
{
    if (p && n == 0) {
        /* glibc frees and returns NULL: a free, not an allocation. */
        free(p);
        return NULL;
    }
    pf_guard++;
    int nf;
    CAPTURE(nf);
    void *q;
    if (!p) {
        void *base = real_malloc(n + HDR);
        q = base ? finish_plain(base, n, nf) : NULL;
    } else {
        q = traced_realloc(p, n, nf);
    }
    pf_guard--;
    return q;
}

void *realloc(void *p, size_t n)
{
    if (PF_UNLIKELY(!tracing()))
        return raw_realloc(p, n);
    if (n > SIZE_MAX - 64) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc_traced(p, n);
}

void *reallocarray(void *p, size_t a, size_t b)
{
    size_t n;
    if (__builtin_mul_overflow(a, b, &n) || n > SIZE_MAX - 64) {
        errno = ENOMEM;
        return NULL;
    }
    if (PF_UNLIKELY(!tracing()))
        return raw_realloc(p, n);
    return realloc_traced(p, n);
}

size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    if (in_boot(p))
        return boot_size(p);
    uint32_t kind = kind_of(p);
    if (!real_usable)
        return 0;
    if (!kind)
        return real_usable(p);
    void *base = base_of(p, kind);
    size_t u = real_usable(base);
    size_t off = (size_t)((char *)p - (char *)base);
    return u > off ? u - off : 0;
}
