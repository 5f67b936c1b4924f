/*
 * alloc_bench.c - the `alloc` suite: rcgc's object allocator against
 * glibc malloc, mimalloc, jemalloc, tcmalloc and CPython's pymalloc.
 *
 * One source, one binary per allocator: CMake compiles this file once per
 * implementation with BENCH_IMPL_<NAME> defined and links exactly that
 * allocator, so the allocators never share a process (mimalloc, jemalloc
 * and tcmalloc replace malloc itself when they are linked).
 *
 * Usage:  alloc-<impl> CASE [OPS]
 *
 *   pairs_hot   free + allocate pairs of random sizes 8..512 B over 1,000
 *               live blocks: ns per pair
 *   pairs_cold  the same over 100,000 live blocks
 *   pair32      malloc(32) immediately followed by free, another 32-byte
 *               block live meanwhile: ns per pair; pair32_lone without it
 *   memory      allocate 1M blocks of random sizes 8..128 B, free a random
 *               90%, then the rest; RSS above the starting RSS at each step
 *   rcgc only:
 *   new_decref  rcgc_new + rcgc_decref of a 32-byte object, untracked and
 *               tracked, another object of the type live meanwhile (and
 *               the _lone variants without it): ns per pair.  The tracked
 *               type has a traverse and a clear function; the same node
 *               declared by rcgc_type.refs is new_decref_tracked32_refs
 *   overhead    rcgc_getsizeof minus the payload, tracked and untracked
 *
 * Every implementation replays the same pseudo-random sequence (same seed).
 * Samples go to stdout as JSON lines (bench/common/bench.h).  The timed loops
 * are bracketed by callgrind client requests so that
 * `valgrind --tool=callgrind --collect-atstart=no` counts just them.
 */
#include "bench.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Under callgrind (--collect-atstart=no) only the timed loops are counted:
 * the client requests below switch collection on and off around them, and
 * cost a handful of instructions when the program runs natively. */
#if defined(__has_include)
#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define COUNT_BEGIN() CALLGRIND_TOGGLE_COLLECT
#define COUNT_END() CALLGRIND_TOGGLE_COLLECT
#endif
#endif
#ifndef COUNT_BEGIN
#define COUNT_BEGIN() ((void)0)
#define COUNT_END() ((void)0)
#endif

/* ------------------------------------------------------------------------ */
/* The allocator under test                                                 */
/* ------------------------------------------------------------------------ */

#if defined(BENCH_IMPL_RCGC)
#include "rcgc.h"
#define IMPL_NAME "rcgc"
static rcgc_runtime *g_rt;
static void impl_init(void)
{
    g_rt = rcgc_runtime_new(NULL);
    if (g_rt == NULL)
        bench_die("rcgc_runtime_new failed");
}
static inline void *impl_malloc(size_t n) { return rcgc_mem_malloc(g_rt, n); }
static inline void impl_free(void *p) { rcgc_mem_free(g_rt, p); }

#elif defined(BENCH_IMPL_PYMALLOC)
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define IMPL_NAME "pymalloc"
static void impl_init(void)
{
    /* PyObject_Malloc is pymalloc only when PYTHONMALLOC does not say
     * otherwise; the driver unsets it.  Initializing the interpreter gives
     * pymalloc the state it has in a real program. */
    Py_InitializeEx(0);
}
static inline void *impl_malloc(size_t n) { return PyObject_Malloc(n); }
static inline void impl_free(void *p) { PyObject_Free(p); }

#elif defined(BENCH_IMPL_MIMALLOC) || defined(BENCH_IMPL_JEMALLOC) || \
    defined(BENCH_IMPL_TCMALLOC) || defined(BENCH_IMPL_GLIBC)
/* malloc and free are whichever allocator the binary is linked with;
 * impl_init checks that the link really put that allocator in place. */
#if defined(BENCH_IMPL_MIMALLOC)
#include <mimalloc.h>
#define IMPL_NAME "mimalloc"
#elif defined(BENCH_IMPL_JEMALLOC)
#include <jemalloc/jemalloc.h>
#define IMPL_NAME "jemalloc"
#elif defined(BENCH_IMPL_TCMALLOC)
#include <gperftools/malloc_extension_c.h>
#define IMPL_NAME "tcmalloc"
#else
#define IMPL_NAME "glibc"
#endif
static void impl_init(void)
{
    void *p = malloc(64);
    int ours = 1;
    if (p == NULL)
        bench_die("malloc failed");
#if defined(BENCH_IMPL_MIMALLOC)
    ours = mi_is_in_heap_region(p);
#elif defined(BENCH_IMPL_JEMALLOC)
    {
        unsigned arena = 0;
        size_t len = sizeof arena;
        ours = mallctl("arenas.lookup", &arena, &len, &p, sizeof p) == 0;
    }
#elif defined(BENCH_IMPL_TCMALLOC)
    ours = MallocExtension_GetOwnership(p) == MallocExtension_kOwned;
#endif
    free(p);
    if (!ours)
        bench_die("malloc is not " IMPL_NAME " in this binary (link order?)");
}
static inline void *impl_malloc(size_t n) { return malloc(n); }
static inline void impl_free(void *p) { free(p); }

#else
#error "define one BENCH_IMPL_*"
#endif

/* ------------------------------------------------------------------------ */
/* Free + allocate pairs over a working set                                 */
/* ------------------------------------------------------------------------ */

#define SEED 0x5eed0001u
#define MIN_SIZE 8u
#define MAX_SIZE 512u

typedef struct op_seq {
    uint32_t *slot;   /* which live block to replace */
    uint16_t *size;   /* the new block's size */
    size_t n;
} op_seq;

/* The sequence is generated before timing, so the loop only reads two
 * arrays sequentially (the hardware prefetcher hides that). */
static op_seq make_ops(bench_rng *rng, size_t n, uint32_t live)
{
    op_seq s;
    s.slot = malloc(n * sizeof *s.slot);
    s.size = malloc(n * sizeof *s.size);
    s.n = n;
    if (s.slot == NULL || s.size == NULL)
        bench_die("out of memory for the op sequence");
    for (size_t i = 0; i < n; i++) {
        s.slot[i] = bench_rng_below(rng, live);
        s.size[i] = (uint16_t)(MIN_SIZE + bench_rng_below(rng, MAX_SIZE - MIN_SIZE + 1));
    }
    return s;
}

/* The timed loop: free one live block, allocate a new one of the next
 * size in its place and write to it (a real program touches what it
 * allocates). */
__attribute__((noinline)) static void bench_loop_pairs(void **slots, const op_seq *s)
{
    for (size_t i = 0; i < s->n; i++) {
        uint32_t k = s->slot[i];
        impl_free(slots[k]);
        void *p = impl_malloc(s->size[i]);
        *(uint64_t *)p = i;
        slots[k] = p;
    }
}

/* The timed window of a case: wall time always (ns_per_pair) and, with
 * BENCH_CPU_TIME=1 in the environment, the thread's CPU time as well
 * (cpu_ns_per_pair): on a loaded machine the wall clock also counts the time
 * the process waited for a core. */
typedef struct pair_clock {
    uint64_t wall0, cpu0;
} pair_clock;

static pair_clock pair_clock_start(void)
{
    pair_clock c;
    c.cpu0 = bench_cpu_ns();
    c.wall0 = bench_now_ns();
    return c;
}

static void pair_clock_emit(const pair_clock *c, const char *name, size_t ops)
{
    uint64_t wall1 = bench_now_ns();
    uint64_t cpu1 = bench_cpu_ns();
    bench_emit("alloc", name, IMPL_NAME, "ns_per_pair", (double)(wall1 - c->wall0) / (double)ops,
               "ns");
    const char *cpu = getenv("BENCH_CPU_TIME");
    if (cpu != NULL && strcmp(cpu, "1") == 0)
        bench_emit("alloc", name, IMPL_NAME, "cpu_ns_per_pair",
                   (double)(cpu1 - c->cpu0) / (double)ops, "ns");
}

static void case_pairs(const char *name, uint32_t live, size_t ops)
{
    bench_rng rng = {SEED};
    void **slots = malloc(live * sizeof *slots);
    if (slots == NULL)
        bench_die("out of memory");
    size_t warm = ops / 4 > 4 * (size_t)live ? ops / 4 : 4 * (size_t)live;
    for (uint32_t i = 0; i < live; i++) {
        slots[i] = impl_malloc(MIN_SIZE + bench_rng_below(&rng, MAX_SIZE - MIN_SIZE + 1));
        if (slots[i] == NULL)
            bench_die("allocation failed");
        *(uint64_t *)slots[i] = i;
    }
    op_seq w = make_ops(&rng, warm, live);
    op_seq t = make_ops(&rng, ops, live);
    bench_loop_pairs(slots, &w);   /* reach the allocator's steady state */

    COUNT_BEGIN();
    pair_clock clock = pair_clock_start();
    bench_loop_pairs(slots, &t);
    pair_clock_emit(&clock, name, ops);
    COUNT_END();
    for (uint32_t i = 0; i < live; i++)
        impl_free(slots[i]);
    free(slots);
    free(w.slot), free(w.size), free(t.slot), free(t.size);
}

/* malloc(32) then free, the allocator's best case (LIFO reuse). */
__attribute__((noinline)) static void bench_loop_pair32(size_t ops)
{
    for (size_t i = 0; i < ops; i++) {
        void *p = impl_malloc(32);
        bench_escape(p);
        impl_free(p);
    }
}

/* Two variants.  "pair32": another 32-byte block stays live during the
 * loop, as in any real program, which has other blocks of a size class it
 * uses; this is the steady state the targets are about.  "pair32_lone":
 * nothing else of that size is live, so for a pool allocator every free
 * empties the pool and every allocation takes a pool again - the boundary
 * case, reported so that its cost stays visible. */
static void case_pair32(size_t ops)
{
    for (int lone = 0; lone < 2; lone++) {
        void *keep = lone ? NULL : impl_malloc(32);
        bench_escape(keep);
        bench_loop_pair32(ops / 10);
        pair_clock clock = pair_clock_start();
        bench_loop_pair32(ops);
        pair_clock_emit(&clock, lone ? "pair32_lone" : "pair32", ops);
        if (keep != NULL)
            impl_free(keep);
    }
}

/* ------------------------------------------------------------------------ */
/* Memory given back                                                        */
/* ------------------------------------------------------------------------ */

#define MEM_BLOCKS 1000000u
#define MEM_MAX 128u

static void emit_rss(const char *metric, size_t rss, size_t base)
{
    double mib = rss > base ? (double)(rss - base) / (1024.0 * 1024.0) : 0.0;
    bench_emit("alloc", "memory", IMPL_NAME, metric, mib, "MiB");
}

static void case_memory(void)
{
    bench_rng rng = {SEED};
    void **blocks = malloc(MEM_BLOCKS * sizeof *blocks);
    uint32_t *order = malloc(MEM_BLOCKS * sizeof *order);
    if (blocks == NULL || order == NULL)
        bench_die("out of memory");
    for (uint32_t i = 0; i < MEM_BLOCKS; i++)
        order[i] = i;
    for (uint32_t i = MEM_BLOCKS - 1; i > 0; i--) {   /* Fisher-Yates */
        uint32_t j = bench_rng_below(&rng, i + 1);
        uint32_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
    memset(blocks, 0, MEM_BLOCKS * sizeof *blocks);   /* fault the tables in first */
    size_t base = bench_rss_bytes();

    for (uint32_t i = 0; i < MEM_BLOCKS; i++) {
        size_t n = MIN_SIZE + bench_rng_below(&rng, MEM_MAX - MIN_SIZE + 1);
        blocks[i] = impl_malloc(n);
        if (blocks[i] == NULL)
            bench_die("allocation failed");
        memset(blocks[i], 1, n);
    }
    size_t rss_alloc = bench_rss_bytes();
    uint32_t ninety = MEM_BLOCKS / 10 * 9;
    for (uint32_t i = 0; i < ninety; i++)
        impl_free(blocks[order[i]]);
    size_t rss_free90 = bench_rss_bytes();
    for (uint32_t i = ninety; i < MEM_BLOCKS; i++)
        impl_free(blocks[order[i]]);
    size_t rss_freeall = bench_rss_bytes();

    emit_rss("rss_alloc", rss_alloc, base);
    emit_rss("rss_free90", rss_free90, base);
    emit_rss("rss_freeall", rss_freeall, base);
    /* What each free step gave back, as a share of what the allocations
     * added: comparable between allocators whose peaks differ a little. */
    double added = rss_alloc > base ? (double)(rss_alloc - base) : 1.0;
    bench_emit("alloc", "memory", IMPL_NAME, "returned_free90",
               100.0 * ((double)rss_alloc - (double)rss_free90) / added, "%");
    bench_emit("alloc", "memory", IMPL_NAME, "returned_freeall",
               100.0 * ((double)rss_alloc - (double)rss_freeall) / added, "%");
    free(blocks);
    free(order);
}

/* ------------------------------------------------------------------------ */
/* rcgc objects                                                             */
/* ------------------------------------------------------------------------ */

#if defined(BENCH_IMPL_RCGC)
/* 16 bytes of payload after the 16-byte header: a 32-byte object. */
typedef struct pair_obj {
    rcgc_object ob;
    rcgc_object *a;
    rcgc_object *b;
} pair_obj;

typedef struct blob_obj {
    rcgc_object ob;
    double x, y;
} blob_obj;

typedef struct small_obj {
    rcgc_object ob;
    double x;
} small_obj;

static int pair_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    pair_obj *p = (pair_obj *)self;
    int r;
    if (p->a != NULL && (r = visit(p->a, arg)) != 0)
        return r;
    if (p->b != NULL && (r = visit(p->b, arg)) != 0)
        return r;
    return 0;
}

static int pair_clear(rcgc_object *self)
{
    pair_obj *p = (pair_obj *)self;
    RCGC_CLEAR(p->a);
    RCGC_CLEAR(p->b);
    return 0;
}

static const rcgc_type pair_type = {
    .name = "pair", .size = sizeof(pair_obj), .flags = RCGC_TYPE_GC,
    .traverse = pair_traverse, .clear = pair_clear,
};
static const rcgc_type pair_refs_type = {
    .name = "pair_refs", .size = sizeof(pair_obj), .refs = RCGC_REFS(pair_obj, a, b),
};
static const rcgc_type blob_type = {.name = "blob", .size = sizeof(blob_obj)};
static const rcgc_type small_type = {.name = "small", .size = sizeof(small_obj)};

__attribute__((noinline)) static void bench_loop_new_decref(const rcgc_type *type, size_t ops)
{
    for (size_t i = 0; i < ops; i++) {
        rcgc_object *o = rcgc_new(g_rt, type);
        bench_escape(o);
        rcgc_decref(o);
    }
}

/* Steady state (another object of the type stays live, as for pair32) and
 * the lone variant. */
static void case_new_decref(size_t ops)
{
    const rcgc_type *types[2] = {&blob_type, &pair_type};
    const char *names[2][2] = {{"new_decref_untracked32", "new_decref_tracked32"},
                               {"new_decref_untracked32_lone", "new_decref_tracked32_lone"}};
    for (int lone = 0; lone < 2; lone++) {
        for (int k = 0; k < 2; k++) {
            rcgc_object *keep = lone ? NULL : rcgc_new(g_rt, types[k]);
            bench_loop_new_decref(types[k], ops / 10);
            pair_clock clock = pair_clock_start();
            bench_loop_new_decref(types[k], ops);
            pair_clock_emit(&clock, names[lone][k], ops);
            rcgc_xdecref(keep);
        }
    }
    rcgc_object *keep = rcgc_new(g_rt, &pair_refs_type);
    bench_loop_new_decref(&pair_refs_type, ops / 10);
    pair_clock clock = pair_clock_start();
    bench_loop_new_decref(&pair_refs_type, ops);
    pair_clock_emit(&clock, "new_decref_tracked32_refs", ops);
    rcgc_xdecref(keep);
}

static void emit_overhead(const char *name, const rcgc_type *type, size_t payload)
{
    rcgc_object *o = rcgc_new(g_rt, type);
    if (o == NULL)
        bench_die("rcgc_new failed");
    bench_emit("alloc", name, IMPL_NAME, "bytes",
               (double)rcgc_getsizeof(o) - (double)payload, "B");
    rcgc_decref(o);
}

static void case_overhead(void)
{
    emit_overhead("overhead_tracked", &pair_type, 2 * sizeof(void *));
    emit_overhead("overhead_untracked", &blob_type, 2 * sizeof(double));
    emit_overhead("overhead_untracked_8B", &small_type, sizeof(double));
}
#endif

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s pairs_hot|pairs_cold|pair32|memory"
#if defined(BENCH_IMPL_RCGC)
                        "|new_decref|overhead"
#endif
                        " [OPS]\n", argv[0]);
        return 2;
    }
    const char *c = argv[1];
    size_t ops = argc > 2 ? bench_parse_count(argv[2]) : 0;
    impl_init();
    if (strcmp(c, "pairs_hot") == 0)
        case_pairs(c, 1000, ops ? ops : 5000000);
    else if (strcmp(c, "pairs_cold") == 0)
        case_pairs(c, 100000, ops ? ops : 2000000);
    else if (strcmp(c, "pair32") == 0)
        case_pair32(ops ? ops : 20000000);
    else if (strcmp(c, "memory") == 0)
        case_memory();
#if defined(BENCH_IMPL_RCGC)
    else if (strcmp(c, "new_decref") == 0)
        case_new_decref(ops ? ops : 20000000);
    else if (strcmp(c, "overhead") == 0)
        case_overhead();
#endif
    else {
        fprintf(stderr, "%s: unknown case %s\n", argv[0], c);
        return 2;
    }
#if defined(BENCH_IMPL_RCGC)
    rcgc_runtime_free(g_rt);
#endif
    return 0;
}
