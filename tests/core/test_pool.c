/* Unit tests for the small-block allocator (pool.c, mem.c). */
#include "testutil.h"
#include "pool.h"
#include "runtime.h"
#include "tmfast.h"
#include "rcgc_tracemalloc.h"

static rcgc_runtime *new_rt(void)
{
    rcgc_config cfg = {.size = sizeof cfg, .malloc_mode = "pymalloc"};
    rcgc_runtime *rt = rcgc_runtime_new(&cfg);
    assert_non_null(rt);
    return rt;
}

static void test_size_classes(void **state)
{
    (void)state;
    assert_int_equal(rcgc_size_class(0), 0);
    assert_int_equal(rcgc_size_class(1), 0);
    assert_int_equal(rcgc_size_class(16), 0);
    assert_int_equal(rcgc_size_class(17), 1);
    assert_int_equal(rcgc_size_class(512), 31);
    assert_int_equal(rcgc_size_class(513), -1);
}

/* Every size gets a block of its class, aligned to 16, writable in full,
 * from a pool; the block index by reciprocal matches the address. */
static void test_alloc_all_sizes(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    void *blocks[513];
    for (size_t n = 0; n <= 512; n++) {
        unsigned char *p = rcgc_mem_malloc(rt, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        assert_true(rcgc_mem_is_pool_address(p));
        rcgc_pool *pool = rcgc_pool_of(p);
        assert_true(pool->size >= (n ? n : 1) && pool->size < (n ? n : 1) + 16);
        assert_ptr_equal(rcgc_pool_block(pool, rcgc_pool_index(pool, p)), p);
        /* an interior pointer maps to the same block (floor division) */
        assert_ptr_equal(rcgc_pool_block(pool, rcgc_pool_index(pool, p + pool->size - 1)), p);
        memset(p, 0xab, n);
        blocks[n] = p;
    }
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    for (size_t n = 0; n <= 512; n++)
        rcgc_mem_free(rt, blocks[n]);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_runtime_free(rt);
}

/* Bigger requests go to the RAW domain, and are not pool addresses. */
static void test_big_blocks(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    char *p = rcgc_mem_malloc(rt, 513);
    assert_non_null(p);
    assert_false(rcgc_mem_is_pool_address(p));
    memset(p, 1, 513);
    p = rcgc_mem_realloc(rt, p, 100000);
    assert_non_null(p);
    assert_int_equal(p[512], 1);
    /* shrinking keeps the content (the block stays with the RAW allocator,
     * which alone knows its size) */
    p = rcgc_mem_realloc(rt, p, 64);
    assert_non_null(p);
    assert_int_equal(p[63], 1);
    p = rcgc_mem_realloc(rt, p, 1);
    p = rcgc_mem_realloc(rt, p, 300);
    assert_int_equal(p[0], 1);
    rcgc_mem_free(rt, p);
    int stack_var;
    assert_false(rcgc_mem_is_pool_address(&stack_var));
    assert_false(rcgc_mem_is_pool_address(NULL));
    rcgc_runtime_free(rt);
}

static void test_calloc_realloc(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    unsigned char *p = rcgc_mem_malloc(rt, 40);
    memset(p, 0xee, 40);
    rcgc_mem_free(rt, p);
    unsigned char *q = rcgc_mem_calloc(rt, 5, 8);
    for (int i = 0; i < 40; i++)
        assert_int_equal(q[i], 0);
    /* realloc within the class keeps the block; growing moves it */
    q[0] = 7;
    unsigned char *r = rcgc_mem_realloc(rt, q, 48);
    assert_ptr_equal(r, q);
    r = rcgc_mem_realloc(rt, r, 200);
    assert_int_equal(r[0], 7);
    assert_null(rcgc_mem_calloc(rt, SIZE_MAX / 2, 4));
    rcgc_mem_free(rt, r);
    /* malloc(0) gives distinct pointers */
    void *a = rcgc_mem_malloc(rt, 0), *b = rcgc_mem_malloc(rt, 0);
    assert_non_null(a);
    assert_ptr_not_equal(a, b);
    rcgc_mem_free(rt, a);
    rcgc_mem_free(rt, b);
    rcgc_runtime_free(rt);
}

/* Freed memory goes back to the OS: after freeing everything only the one
 * spare arena stays mapped. */
static void test_arenas_returned(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    enum { N = 200000 };
    void **ps = malloc(N * sizeof *ps);
    for (int i = 0; i < N; i++)
        ps[i] = rcgc_mem_malloc(rt, 64);
    rcgc_mem_stats st = {.size = sizeof st};
    assert_int_equal(rcgc_mem_get_stats(rt, &st), RCGC_OK);
    assert_true(st.arenas_current >= 12);
    assert_int_equal(st.blocks_allocated, N);
    /* free in a scattered order */
    for (int i = 0; i < N; i += 2)
        rcgc_mem_free(rt, ps[i]);
    for (int i = 1; i < N; i += 2)
        rcgc_mem_free(rt, ps[i]);
    assert_int_equal(rcgc_mem_get_stats(rt, &st), RCGC_OK);
    assert_int_equal(st.arenas_current, 1);
    assert_true(st.arenas_freed_total >= 11);
    assert_int_equal(st.blocks_allocated, 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    free(ps);
    rcgc_runtime_free(rt);
}

/* New pools come from the fullest arena: after freeing most of one arena,
 * new blocks fill the other, fuller arenas' holes first. */
static void test_fullest_arena_first(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    enum { PER_POOL = (16384 - 256) / 512 + 1, N = 64 * 3 * 30 };
    void **ps = calloc(N, sizeof *ps);
    for (int i = 0; i < N; i++)
        ps[i] = rcgc_mem_malloc(rt, 512);
    rcgc_arena *first = rcgc_arena_lookup(ps[0]);
    /* empty the first arena's pools but one block */
    int kept = 0;
    for (int i = 0; i < N; i++) {
        if (rcgc_arena_lookup(ps[i]) == first) {
            if (!kept) {
                kept = 1;
                continue;
            }
            rcgc_mem_free(rt, ps[i]);
            ps[i] = NULL;
        }
    }
    /* free one whole pool's worth elsewhere (in the last arena) */
    rcgc_arena *last = rcgc_arena_lookup(ps[N - 1]);
    assert_ptr_not_equal(first, last);
    int freed = 0;
    for (int i = N - 1; i >= 0 && freed < 40; i--) {
        if (ps[i] && rcgc_arena_lookup(ps[i]) == last) {
            rcgc_mem_free(rt, ps[i]);
            ps[i] = NULL;
            freed++;
        }
    }
    /* a new size class needs a new pool: it must come from `last` (fewer
     * free pools) rather than the nearly empty `first` */
    void *q = rcgc_mem_malloc(rt, 48);
    assert_ptr_not_equal(rcgc_arena_lookup(q), first);
    rcgc_mem_free(rt, q);
    for (int i = 0; i < N; i++)
        rcgc_mem_free(rt, ps[i]);
    free(ps);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_runtime_free(rt);
}

/* A seeded stress of random sizes, frees and reallocs, validating often. */
static void test_stress(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    enum { SLOTS = 5000, OPS = 200000 };
    unsigned char **p = calloc(SLOTS, sizeof *p);
    size_t *len = calloc(SLOTS, sizeof *len);
    uint64_t x = 42;
    for (int op = 0; op < OPS; op++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t i = (size_t)(x % SLOTS);
        size_t n = (size_t)((x >> 20) % 700);
        if (p[i] == NULL) {
            p[i] = rcgc_mem_malloc(rt, n);
            memset(p[i], (int)(i & 0xff), n);
            len[i] = n;
        } else if ((x >> 40) & 1) {
            for (size_t k = 0; k < len[i]; k++)
                assert_int_equal(p[i][k], (unsigned char)(i & 0xff));
            rcgc_mem_free(rt, p[i]);
            p[i] = NULL;
        } else {
            p[i] = rcgc_mem_realloc(rt, p[i], n);
            size_t keep = n < len[i] ? n : len[i];
            for (size_t k = 0; k < keep; k++)
                assert_int_equal(p[i][k], (unsigned char)(i & 0xff));
            memset(p[i], (int)(i & 0xff), n);
            len[i] = n;
        }
        if (op % 50000 == 0)
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    }
    for (int i = 0; i < SLOTS; i++)
        rcgc_mem_free(rt, p[i]);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    free(p);
    free(len);
    rcgc_runtime_free(rt);
}

/* The report has CPython's _debugmallocstats layout. */
static void test_print_stats(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    void *a = rcgc_mem_malloc(rt, 30), *b = rcgc_mem_malloc(rt, 500);
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    rcgc_mem_print_stats(rt, f);
    fclose(f);
    assert_non_null(strstr(text, "Small block threshold = 512, in 32 size classes.\n\n"));
    assert_non_null(strstr(text, "class   size   num pools   blocks in use  avail blocks\n"));
    assert_non_null(strstr(text, "    1     32           1               1"));
    assert_non_null(strstr(text, "   31    512           1               1"));
    assert_non_null(strstr(text, "# arenas allocated current         =                    1\n"));
    assert_non_null(strstr(text, "1 arenas * 1048576 bytes/arena     =            1,048,576\n"));
    assert_non_null(strstr(text, "# bytes in allocated blocks        =                  544\n"));
    free(text);
    rcgc_mem_free(rt, a);
    rcgc_mem_free(rt, b);
    rcgc_runtime_free(rt);
}

/* The free cache: the block freed last is the next one handed out; a
 * class's cache stays bounded, counts as free in the statistics, empties
 * when the class has nothing live (so every arena goes back), and is given
 * back to the pools when the allocator leaves its fast paths. */
static void test_free_cache(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    unsigned c = (unsigned)rcgc_size_class(64);
    void *keep = rcgc_mem_malloc(rt, 64);
    void *a = rcgc_mem_malloc(rt, 64);
    rcgc_mem_free(rt, a);
    assert_int_equal(rcgc_pool_ncache(&rt->pool, c), 1);
    assert_ptr_equal(rcgc_mem_malloc(rt, 64), a);   /* LIFO reuse */
    assert_int_equal(rcgc_pool_ncache(&rt->pool, c), 0);
    rcgc_mem_free(rt, a);

    enum { N = 20000 };
    void **ps = malloc(N * sizeof *ps);
    for (int i = 0; i < N; i++)
        ps[i] = rcgc_mem_malloc(rt, 64);
    for (int i = 0; i < N; i++) {
        rcgc_mem_free(rt, ps[i]);
        assert_true(rcgc_pool_ncache(&rt->pool, c) <= RCGC_FREE_CACHE);
    }
    assert_true(rcgc_pool_ncache(&rt->pool, c) > 0);
    rcgc_mem_stats st = {.size = sizeof st};
    assert_int_equal(rcgc_mem_get_stats(rt, &st), RCGC_OK);
    assert_int_equal(st.blocks_allocated, 1);                /* keep */
    assert_int_equal(rcgc_pool_live_blocks(rt), 1);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);

    /* Nothing of the class live: the cache empties, the arenas go back. */
    rcgc_mem_free(rt, keep);
    assert_int_equal(rcgc_pool_ncache(&rt->pool, c), 0);
    assert_int_equal(rcgc_mem_get_stats(rt, &st), RCGC_OK);
    assert_int_equal(st.blocks_allocated, 0);
    assert_int_equal(st.arenas_current, 1);                  /* the spare */
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);

    /* Leaving the fast paths (fault injection here) flushes every cache. */
    keep = rcgc_mem_malloc(rt, 100);
    for (int i = 0; i < 8; i++)
        ps[i] = rcgc_mem_malloc(rt, 100);
    for (int i = 0; i < 8; i++)
        rcgc_mem_free(rt, ps[i]);
    assert_int_equal(rcgc_pool_ncache(&rt->pool, rcgc_size_class(100)), 8);
    rcgc_mem_fail_after(rt, 1000000, 0);
    assert_int_equal(rcgc_pool_ncache(&rt->pool, rcgc_size_class(100)), 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_mem_free(rt, keep);
    rcgc_mem_fail_after(rt, 0, 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    free(ps);
    rcgc_runtime_free(rt);
}

/* The free cache as a stack: blocks come back newest first, a free writes
 * nothing into its block (the cache is a row of pointers, not a list
 * through the blocks), the row holds RCGC_FREE_CACHE blocks and the next
 * free goes to the block's pool, and the head stays the top's copy through
 * pushes and pops down to the floor. */
static void test_free_cache_stack(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    rcgc_pool_state *ps = &rt->pool;
    unsigned c = (unsigned)rcgc_size_class(48);
    enum { N = RCGC_FREE_CACHE + 2 };
    void *keep = rcgc_mem_malloc(rt, 48);
    void *b[N];
    for (int i = 0; i < N; i++) {
        b[i] = rcgc_mem_malloc(rt, 48);
        memset(b[i], 0xA0 + i % 16, 48);
    }
    assert_int_equal(rcgc_pool_ncache(ps, c), 0);
    assert_null(ps->cache[c]);
    for (int i = 0; i < N; i++) {
        rcgc_pool *pool = rcgc_pool_of(b[i]);
        unsigned nalloc = pool->nalloc;
        rcgc_mem_free(rt, b[i]);
        if (i < RCGC_FREE_CACHE) {
            /* cached: its pool still counts it, nothing written into it */
            assert_int_equal(pool->nalloc, nalloc);
            assert_int_equal(rcgc_pool_ncache(ps, c), i + 1);
            assert_ptr_equal(ps->cache[c], b[i]);
            for (int k = 0; k < 48; k++)
                assert_int_equal(((unsigned char *)b[i])[k], 0xA0 + i % 16);
        } else {
            /* the row is full: to its pool */
            assert_int_equal(pool->nalloc, nalloc - 1);
            assert_int_equal(rcgc_pool_ncache(ps, c), RCGC_FREE_CACHE);
            assert_ptr_equal(ps->cache[c], b[RCGC_FREE_CACHE - 1]);
        }
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    }
    /* newest first, down to the floor */
    for (int i = RCGC_FREE_CACHE - 1; i >= 0; i--) {
        assert_ptr_equal(rcgc_mem_malloc(rt, 48), b[i]);
        assert_int_equal(rcgc_pool_ncache(ps, c), i);
        assert_ptr_equal(ps->cache[c], i > 0 ? b[i - 1] : NULL);
    }
    assert_null(ps->crow[c][0]);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    /* the cache empty, the pool's free list: the blocks freed to it */
    void *x = rcgc_mem_malloc(rt, 48);
    assert_true(x == b[N - 1] || x == b[N - 2]);
    rcgc_mem_free(rt, x);
    assert_ptr_equal(ps->cache[c], x);
    for (int i = 0; i < RCGC_FREE_CACHE; i++)
        rcgc_mem_free(rt, b[i]);
    void *y = rcgc_mem_malloc(rt, 48);
    rcgc_mem_free(rt, y);
    rcgc_mem_free(rt, keep);   /* the last live block: everything back */
    assert_int_equal(rcgc_pool_ncache(ps, c), 0);
    assert_null(ps->cache[c]);
    rcgc_mem_stats st = {.size = sizeof st};
    assert_int_equal(rcgc_mem_get_stats(rt, &st), RCGC_OK);
    assert_int_equal(st.blocks_allocated, 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_runtime_free(rt);
}

/* A push onto a full row: the block goes to its pool inline while the
 * class has other live blocks, and when it is the class's last live block
 * (the row just full with it: nheld == RCGC_FREE_CACHE + 1) the whole
 * cache goes back with it and the class's pools are released. */
static void test_full_row_last_block(void **state)
{
    (void)state;
    for (int extra = 1; extra <= 3; extra++) {
        rcgc_runtime *rt = new_rt();
        rcgc_pool_state *ps = &rt->pool;
        unsigned c = (unsigned)rcgc_size_class(80);
        int n = RCGC_FREE_CACHE + extra;
        void *b[RCGC_FREE_CACHE + 3];
        for (int i = 0; i < n; i++)
            b[i] = rcgc_mem_malloc(rt, 80);
        for (int i = 0; i < n; i++) {
            rcgc_pool *pool = rcgc_pool_of(b[i]);
            unsigned nalloc = pool->nalloc;
            rcgc_mem_free(rt, b[i]);
            if (i < RCGC_FREE_CACHE) {
                assert_int_equal(rcgc_pool_ncache(ps, c), i + 1);
            } else if (i < n - 1) {
                /* full row, others live: to the pool, the row kept */
                assert_int_equal(pool->nalloc, nalloc - 1);
                assert_int_equal(rcgc_pool_ncache(ps, c), RCGC_FREE_CACHE);
                assert_ptr_equal(ps->cache[c], b[RCGC_FREE_CACHE - 1]);
            } else {
                /* the last live block: the row goes back with it */
                assert_int_equal(rcgc_pool_ncache(ps, c), 0);
                assert_null(ps->cache[c]);
            }
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        }
        rcgc_mem_stats st = {.size = sizeof st};
        assert_int_equal(rcgc_mem_get_stats(rt, &st), RCGC_OK);
        assert_int_equal(st.blocks_allocated, 0);
        rcgc_runtime_free(rt);
    }
}

/* The MEM domain's live count (derived, M3 in pool.h) includes the blocks
 * of rcgc_mem_malloc's and rcgc_mem_free's fast paths: the allocator is
 * not replaced while a block from the cache or a pool's free list is live,
 * and is once all are freed, whichever path counted each.  Size 0 takes
 * the slow path (its class test wraps around) and gets a 16-byte block. */
static void test_mem_live_fast_paths(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    rcgc_allocator libc;
    rcgc_mem_get_libc_allocator(&libc);
    long live0 = rcgc_pool_mem_live(rt);
    void *a = rcgc_mem_malloc(rt, 40);   /* takes a pool: the slow path */
    void *b = rcgc_mem_malloc(rt, 40);   /* the pool's free list */
    rcgc_mem_free(rt, a);                /* into the cache */
    void *c = rcgc_mem_malloc(rt, 40);   /* out of the cache */
    assert_ptr_equal(c, a);
    void *z = rcgc_mem_malloc(rt, 0);
    assert_non_null(z);
    assert_true(rcgc_mem_is_pool_address(z));
    assert_int_equal(rcgc_pool_block_size(z), 16);
    assert_int_equal(rcgc_pool_mem_live(rt),
                     live0 + 3);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &libc), RCGC_ESTATE);
    rcgc_mem_free(rt, z);
    rcgc_mem_free(rt, b);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &libc), RCGC_ESTATE);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_RAW, &libc), RCGC_ESTATE);
    rcgc_mem_free(rt, c);
    assert_int_equal(rcgc_pool_mem_live(rt), live0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &libc), RCGC_OK);
    rcgc_runtime_free(rt);
}

/* The validator's M3 check: a correction count off by more than the MEM
 * domain's live blocks makes the derived count negative, and
 * rcgc_validate says so. */
static void test_validate_mem_count_sign(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    void *p = rcgc_mem_malloc(rt, 40);
    assert_int_equal(rcgc_validate(rt, NULL), RCGC_OK);
    rt->pool.madj += 2;
    assert_int_not_equal(rcgc_validate(rt, NULL), RCGC_OK);
    rt->pool.madj -= 2;
    assert_int_equal(rcgc_validate(rt, NULL), RCGC_OK);
    rcgc_mem_free(rt, p);
    rcgc_runtime_free(rt);
}

/* M3 (pool.h): the MEM domain's count, derived from the pools' live blocks,
 * domains[OBJ].live and madj, is exact in every mode while other holders
 * take pool blocks too: the user through rcgc's pool allocator directly,
 * objects, OBJ domain blocks in and above the pools, and (mode 3) a user
 * MEM allocator over the pools that keeps a second pool block per block of
 * its own.  Tracing and fault injection are turned off half way, so that
 * blocks taken by one path are freed by the other.  The modes: 0 plain,
 * 1 tracing, 2 debug hooks, 3 the user allocator, 4 fault injection on
 * (never failing). */
static rcgc_allocator ml_pools;
static void *ml_side[64];
static int ml_nside;
static void *ml_malloc(void *ctx, size_t n)
{
    (void)ctx;
    void *p = ml_pools.malloc(ml_pools.ctx, n);
    if (p != NULL)
        ml_side[ml_nside++] = ml_pools.malloc(ml_pools.ctx, 24);
    return p;
}
static void *ml_calloc(void *ctx, size_t a, size_t b)
{
    void *p = ml_malloc(ctx, a * b);
    if (p != NULL)
        memset(p, 0, a * b);
    return p;
}
static void *ml_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return ml_pools.realloc(ml_pools.ctx, p, n);
}
static void ml_free(void *ctx, void *p)
{
    (void)ctx;
    if (p != NULL)
        ml_pools.free(ml_pools.ctx, ml_side[--ml_nside]);
    ml_pools.free(ml_pools.ctx, p);
}

static void test_mem_live_every_mode(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 16, 40, 40, 100, 512, 513, 2000, 48};
    enum { N = sizeof sizes / sizeof sizes[0] };
    for (int mode = 0; mode < 5; mode++) {
        rcgc_runtime *rt = new_rt();
        if (mode == 2)
            assert_int_equal(rcgc_mem_setup_debug_hooks(rt), RCGC_OK);
        rcgc_mem_get_pool_allocator(rt, &ml_pools);
        if (mode == 3) {
            rcgc_allocator a = {NULL, ml_malloc, ml_calloc, ml_realloc, ml_free};
            ml_nside = 0;
            assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &a), RCGC_OK);
        }
        if (mode == 1)
            assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
        if (mode == 4)
            rcgc_mem_fail_after(rt, 1000000, 0);
        long live0 = rcgc_pool_mem_live(rt);
        assert_int_equal(live0, 0);
        /* the user's own pool blocks and objects: not the MEM domain's */
        void *u = ml_pools.malloc(ml_pools.ctx, 64);
        void *ubig = ml_pools.malloc(ml_pools.ctx, 1000);
        rcgc_list *l[5];   /* empty: no item storage (a MEM block) */
        for (int i = 0; i < 5; i++)
            l[i] = rcgc_list_new(rt);
        void *o1 = rcgc_domain_malloc_at(rt, RCGC_DOMAIN_OBJ, 40, __FILE__, __LINE__);
        void *o2 = rcgc_domain_malloc_at(rt, RCGC_DOMAIN_OBJ, 1000, __FILE__, __LINE__);
        assert_non_null(u);
        assert_non_null(o1);
        assert_non_null(o2);
        assert_int_equal(rcgc_pool_mem_live(rt), 0);
        void *p[N];
        for (int i = 0; i < N; i++) {
            p[i] = rcgc_mem_malloc(rt, sizes[i]);
            assert_non_null(p[i]);
            assert_int_equal(rcgc_pool_mem_live(rt), i + 1);
        }
        p[3] = rcgc_mem_realloc(rt, p[3], 300);   /* moves within the pools */
        p[5] = rcgc_mem_realloc(rt, p[5], 900);   /* out of the pools */
        void *c = rcgc_mem_calloc(rt, 3, 8);
        assert_non_null(c);
        assert_int_equal(rcgc_pool_mem_live(rt), N + 1);
        if (mode != 2 && mode != 3)   /* a wrapper stays on / not empty */
            assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &ml_pools),
                             RCGC_ESTATE);
        /* half way: the slow modes off, half of the blocks freed */
        if (mode == 1)
            rcgc_tracemalloc_stop(rt);
        if (mode == 4)
            rcgc_mem_fail_after(rt, 0, 0);
        for (int i = 0; i < N; i += 2)
            rcgc_mem_free(rt, p[i]);
        assert_int_equal(rcgc_pool_mem_live(rt), N + 1 - (N + 1) / 2);
        if (mode == 0)   /* and the other way: taken untraced, freed traced */
            assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
        for (int i = 1; i < N; i += 2)
            rcgc_mem_free(rt, p[i]);
        rcgc_mem_free(rt, c);
        assert_int_equal(rcgc_pool_mem_live(rt), 0);
        rcgc_domain_free(rt, RCGC_DOMAIN_OBJ, o1);
        rcgc_domain_free(rt, RCGC_DOMAIN_OBJ, o2);
        for (int i = 0; i < 5; i++)
            rcgc_decref(RCGC_OBJ(l[i]));
        ml_pools.free(ml_pools.ctx, u);
        ml_pools.free(ml_pools.ctx, ubig);
        assert_int_equal(rcgc_pool_mem_live(rt), 0);
        if (mode == 0) {
            rcgc_tracemalloc_stop(rt);
            assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &ml_pools), RCGC_OK);
        }
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        rcgc_runtime_free(rt);
    }
}

/* A free without the cache (rcgc_pool_free: the slow modes; tracing keeps
 * the cache) of a class's last live block takes the cached blocks back to
 * their pools too (C2: no cached block without a live one). */
static void test_free_nocache_last_spills(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    rcgc_pool_state *ps = &rt->pool;
    unsigned c = (unsigned)rcgc_size_class(48);
    void *keep = rcgc_pool_alloc(rt, 48);
    void *b = rcgc_pool_alloc(rt, 48);
    assert_int_equal(rcgc_pool_nlive(ps, c), 2);
    rcgc_pool_free_class(rt, ps, b, c);
    assert_int_equal(rcgc_pool_ncache(ps, c), 1);
    assert_int_equal(rcgc_pool_nlive(ps, c), 1);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_pool_free(rt, keep);
    assert_int_equal(rcgc_pool_ncache(ps, c), 0);
    assert_int_equal(ps->nheld[c], 0);
    assert_ptr_equal(ps->clim[c], &ps->crow[c][0]);
    assert_int_equal(rcgc_pool_live_blocks(rt), 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_runtime_free(rt);
}

/* rcgc_mem_free's lookup (M1): a pool block's class table entry comes
 * from its map leaf's mapping and is the one rcgc_class_table_of finds;
 * pointers in no arena get NULL. */
static void test_class_entry_lookup(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    for (size_t n = 1; n <= RCGC_SMALL_LIMIT; n += 37) {
        char *p = rcgc_mem_malloc(rt, n);
        const uint8_t *e = rcgc_class_entry_lookup(p + n - 1);
        assert_non_null(e);
        assert_ptr_equal(e, &rcgc_class_table_of(p)->szidx[rcgc_class_slot(p)]);
        assert_int_equal(*e, rcgc_size_class(n));
        rcgc_mem_free(rt, p);
    }
    int local = 0;
    void *big = malloc(64);
    assert_null(rcgc_class_entry_lookup(&local));
    assert_null(rcgc_class_entry_lookup(big));
    assert_null(rcgc_class_entry_lookup(NULL));
    assert_null(rcgc_class_entry_lookup((void *)((uintptr_t)1 << 60)));
    assert_null(rcgc_class_entry_lookup((void *)(((uintptr_t)1 << 48) - 16)));
    free(big);
    /* M2: every range without an arena has the empty leaf; the validator
     * notices a missing leaf or a set entry of the empty leaf */
    size_t top = RCGC_MAP_LEN - 1;   /* the highest 16 GiB: no arena there */
    assert_ptr_equal(atomic_load(&rcgc_arena_map[top]), rcgc_empty_leaf);
    assert_int_equal(rcgc_validate(rt, NULL), RCGC_OK);
    atomic_store(&rcgc_arena_map[top], NULL);
    assert_int_equal(rcgc_validate(rt, NULL), RCGC_EFORMAT);
    atomic_store(&rcgc_arena_map[top], rcgc_empty_leaf);
    atomic_store(&rcgc_empty_leaf[5], (rcgc_arena *)rt);
    assert_int_equal(rcgc_validate(rt, NULL), RCGC_EFORMAT);
    atomic_store(&rcgc_empty_leaf[5], NULL);
    assert_int_equal(rcgc_validate(rt, NULL), RCGC_OK);
    rcgc_runtime_free(rt);
}

/* rcgc_validate fails on rt and says `what` (with the invariant inv). */
static void expect_invalid_as(rcgc_runtime *rt, const char *what, const char *inv)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_int_equal(rcgc_validate(rt, f), RCGC_EFORMAT);
    fclose(f);
    assert_non_null(strstr(text, what));
    assert_non_null(strstr(text, inv));
    free(text);
}

/* The same for C1. */
static void expect_invalid(rcgc_runtime *rt, const char *what)
{
    expect_invalid_as(rt, what, "(C1)");
}

/* The validator notices a broken invariant. */
static void test_validate_detects(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    void *p = rcgc_mem_malloc(rt, 32);
    rcgc_pool *pool = rcgc_pool_of(p);
    pool->nalloc++;
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_int_equal(rcgc_validate(rt, f), RCGC_EFORMAT);
    fclose(f);
    assert_non_null(strstr(text, "(P1)"));
    free(text);
    pool->nalloc--;
    assert_int_equal(rcgc_validate(rt, NULL), RCGC_OK);
    /* a free cache broken four ways: its head not the top's copy, its
     * floor overwritten, a block in it twice, a block also on its pool's
     * free list */
    void *q = rcgc_mem_malloc(rt, 32);
    void *q2 = rcgc_mem_malloc(rt, 32);
    rcgc_mem_free(rt, q);
    rcgc_mem_free(rt, q2);
    unsigned c = (unsigned)rcgc_size_class(32);
    rcgc_pool_state *ps = &rt->pool;
    assert_int_equal(rcgc_pool_ncache(ps, c), 2);
    assert_ptr_equal(ps->cache[c], q2);
    ps->cache[c] = q;
    expect_invalid(rt, "is not the top");
    ps->cache[c] = q2;
    ps->crow[c][0] = q;
    expect_invalid(rt, "floor overwritten");
    ps->crow[c][0] = NULL;
    /* the limit (C3) off by one either way, the held count (C2) */
    ps->clim[c]++;
    expect_invalid_as(rt, "cache limit", "(C3)");
    ps->clim[c] -= 2;
    expect_invalid_as(rt, "cache limit", "(C3)");
    ps->clim[c]++;
    ps->nheld[c]++;
    expect_invalid_as(rt, "blocks held", "(C2)");
    ps->nheld[c]--;
    assert_int_equal(rcgc_validate(rt, NULL), RCGC_OK);
    ps->crow[c][1] = q2;
    expect_invalid(rt, "cached twice");
    ps->crow[c][1] = q;
    void *saved = pool->freeblock;
    *(void **)q = saved;
    pool->freeblock = q;
    pool->nalloc--;   /* P1 holds: only C1 is broken */
    expect_invalid(rt, "on its pool's free list");
    pool->nalloc++;
    pool->freeblock = saved;
    assert_int_equal(rcgc_validate(rt, NULL), RCGC_OK);
    rcgc_mem_free(rt, p);
    rcgc_runtime_free(rt);
}

/* C4: rcgc_mem_free's push has a limit of its own, mlim, which is the
 * cache limit while nothing is on and below every row otherwise, so that
 * free needs no test of the mode before its push: under fault injection
 * it caches nothing (the block goes to the domain), under tracing the
 * block's trace is forgotten (the traced free caches it); the limit
 * follows the cache limit through pool allocations and frees, and
 * validate catches it off. */
static void test_free_mode_limit(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    rcgc_pool_state *ps = &rt->pool;
    unsigned c = (unsigned)rcgc_size_class(64);
    for (unsigned k = 0; k < RCGC_NCLASSES; k++)
        assert_true(ps->mlim[k] == (uintptr_t)ps->clim[k]);
    void *keep = rcgc_mem_malloc(rt, 64);
    void *a = rcgc_mem_malloc(rt, 64);
    assert_true(ps->mlim[c] == (uintptr_t)ps->clim[c]);

    /* fault injection on: the free's push fails, the block leaves */
    rcgc_mem_fail_after(rt, 1000000, 0);
    for (unsigned k = 0; k < RCGC_NCLASSES; k++)
        assert_true(ps->mlim[k] < (uintptr_t)&ps->crow[0][1]);
    rcgc_mem_free(rt, a);
    assert_int_equal(rcgc_pool_ncache(ps, c), 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    a = rcgc_mem_malloc(rt, 64);
    rcgc_mem_fail_after(rt, 0, 0);
    assert_true(ps->mlim[c] == (uintptr_t)ps->clim[c]);

    /* tracing: the free takes the traced path (its trace goes).  The
     * blocks rcgc_mem_malloc traces come from the traced twin of their
     * class (H1, tmfast.h; perf-tm17): their own rows, ct and dt below,
     * with their traces in their headers (no slot entries). */
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    unsigned ct = c + RCGC_NCLASSES;
    assert_true(ps->mlim[c] < (uintptr_t)&ps->crow[0][1]);
    void *tkeep = rcgc_mem_malloc(rt, 64);   /* keeps the twin class live (C3) */
    void *b = rcgc_mem_malloc(rt, 64);
    size_t cur = 0, peak = 0;
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 128);
    rcgc_mem_free(rt, b);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 64);
    assert_int_equal(rcgc_pool_ncache(ps, ct), 0);   /* T4: in the traced free's ring */
    assert_int_equal(rcgc_mem_hdr_ring_count(rt), 1);
    rcgc_mem_hdr_ring_flush(rt);
    assert_int_equal(rcgc_pool_ncache(ps, ct), 1);   /* cached by the ring's settle */
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    /* The traced free pushes at the top its failed push computed
     * (perf-tm10: passed to the traced continuation with the lookup's
     * leaf and index; perf-tm12: with the row's address for the class,
     * R8): traced blocks of two classes freed in turn stack in their
     * own rows, each the top of its row with its trace slot beside it,
     * until the row's limit sends the rest to their pools. */
    {
        enum { M = RCGC_FREE_CACHE + 4 };
        unsigned d = (unsigned)rcgc_size_class(200) + RCGC_NCLASSES;
        void *tb[M], *td[M];
        for (int i = 0; i < M; i++) {
            tb[i] = rcgc_mem_malloc(rt, 64);
            td[i] = rcgc_mem_malloc(rt, 200);
        }
        void *dkeep = rcgc_mem_malloc(rt, 200);
        uint32_t n0 = rcgc_pool_ncache(ps, ct), d0 = rcgc_pool_ncache(ps, d);
        assert_int_equal(d0, 0);
        for (int i = 0; i < M; i++) {
            rcgc_mem_free(rt, tb[i]);
            rcgc_mem_free(rt, td[i]);
            rcgc_mem_hdr_ring_flush(rt);   /* T4: cached in the order freed */
            uint32_t nc = n0 + (uint32_t)i + 1, nd = (uint32_t)i + 1;
            if (nc > RCGC_FREE_CACHE)
                nc = RCGC_FREE_CACHE;
            if (nd > RCGC_FREE_CACHE)
                nd = RCGC_FREE_CACHE;
            assert_int_equal(rcgc_pool_ncache(ps, ct), nc);
            assert_int_equal(rcgc_pool_ncache(ps, d), nd);
            if (n0 + (uint32_t)i < RCGC_FREE_CACHE) {
                assert_ptr_equal(ps->cache[ct], tb[i]);
                assert_ptr_equal(*ps->ctop[ct], tb[i]);
                assert_false(rcgc_trace_hdr_lazy(ps, ct, ps->ctop[ct]));   /* T4: settled */
            }
            if ((uint32_t)i < RCGC_FREE_CACHE) {
                assert_ptr_equal(ps->cache[d], td[i]);
                assert_ptr_equal(*ps->ctop[d], td[i]);
                assert_false(rcgc_trace_hdr_lazy(ps, d, ps->ctop[d]));   /* T4: settled */
            }
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        }
        /* perf-tm11: the traced allocation takes its block from the old
         * top (C1), not from cache[c]: allocations at one call site pop
         * the row top first, each counted (perf-alloc9: the pop moves
         * the top alone, cache[d] need not be its copy while tracing:
         * C1, C5, test_alloc_mode_floor). */
        {
            enum { K = 5 };
            void *got[K];
            for (int i = 0; i < K; i++) {
                got[i] = rcgc_mem_malloc(rt, 200);
                assert_ptr_equal(got[i], td[RCGC_FREE_CACHE - 1 - i]);
                assert_ptr_equal(*ps->ctop[d], td[RCGC_FREE_CACHE - 2 - i]);
                assert_int_equal(rcgc_pool_ncache(ps, d), RCGC_FREE_CACHE - 1 - (unsigned)i);
                rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
                assert_int_equal(cur, 200 * ((size_t)i + 2) + 64);
            }
            for (int i = K - 1; i >= 0; i--)
                rcgc_mem_free(rt, got[i]);
            rcgc_mem_hdr_ring_flush(rt);   /* T4 */
            assert_ptr_equal(ps->cache[d], td[RCGC_FREE_CACHE - 1]);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        }
        rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
        assert_int_equal(cur, 200 + 64);
        rcgc_mem_free(rt, dkeep);
        rcgc_mem_free(rt, tkeep);
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    }
    rcgc_tracemalloc_stop(rt);

    /* off again: the limit follows the cache limit through the pools'
     * paths (a class's blocks come and go past the row's size) */
    enum { N = 3 * RCGC_FREE_CACHE };
    void *v[N];
    for (int i = 0; i < N; i++)
        v[i] = rcgc_mem_malloc(rt, 64);
    for (unsigned k = 0; k < RCGC_NCLASSES; k++)
        assert_true(ps->mlim[k] == (uintptr_t)ps->clim[k]);
    for (int i = 0; i < N; i++)
        rcgc_mem_free(rt, v[i]);
    assert_true(ps->mlim[c] == (uintptr_t)ps->clim[c]);
    rcgc_mem_free(rt, a);
    assert_int_equal(rcgc_pool_ncache(ps, c), RCGC_FREE_CACHE);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    ps->mlim[c] += sizeof(void *);
    expect_invalid_as(rt, "free's limit", "(C4)");
    ps->mlim[c] -= sizeof(void *);
    rcgc_mem_free(rt, keep);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_runtime_free(rt);
}

/* One rcgc_mem_malloc call site for test_alloc_mode_floor's traced
 * allocations (the traced pop needs the last site to match). */
static void *floor_malloc(rcgc_runtime *rt, size_t n)
{
    return rcgc_mem_malloc(rt, n);
}

/* rcgc_mem_malloc from the free cache and the blocks it must not hand
 * out: the row's top (C1) when the untraced pop may go ahead, never a
 * live block. */
static void floor_expect_pop(rcgc_runtime *rt, unsigned c, void *const *live, int nlive)
{
    rcgc_pool_state *ps = &rt->pool;
    void *top = *ps->ctop[c];
    uint32_t n = rcgc_pool_ncache(ps, c);
    assert_non_null(top);
    void *p = floor_malloc(rt, 64);
    assert_ptr_equal(p, top);
    assert_int_equal(rcgc_pool_ncache(ps, c), n - 1);
    for (int i = 0; i < nlive; i++)
        assert_ptr_not_equal(p, live[i]);
    rcgc_mem_free(rt, p);
    assert_ptr_equal(*ps->ctop[c], top);
}

/* C5: the untraced allocations' pop (rcgc_mem_malloc_at, rcgc_new) has a
 * floor of its own, mfloor, which is the row's floor while nothing is on
 * and above every row otherwise, so that they need no test of the mode
 * before the pop.  While tracing the traced pops leave cache[c] (C1),
 * which may then name a live block: the untraced pop must not run (the
 * allocation would go untraced, or hand out that block twice), and
 * cache[c] must be the top's copy again once tracing stops.  Each mode:
 * tracing (on, off, on again), the tracer holding itself (its own
 * allocations: nothing is flushed, yet nothing may come from the cache),
 * fault injection, debug hooks, a user allocator; validate catches the
 * floor off. */
static void test_alloc_mode_floor(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    rcgc_pool_state *ps = &rt->pool;
    unsigned c = (unsigned)rcgc_size_class(64);
    for (unsigned k = 0; k < RCGC_NCLASSES; k++)
        assert_true(ps->mfloor[k] == (uintptr_t)&ps->crow[k][0]);
    void *keep = floor_malloc(rt, 64);
    void *x = floor_malloc(rt, 64), *y = floor_malloc(rt, 64);
    rcgc_mem_free(rt, x);
    floor_expect_pop(rt, c, &keep, 1);   /* nothing on: the pop goes ahead */
    x = floor_malloc(rt, 64);

    /* tracing: an allocation at the last site pops the row traced
     * (counted) and leaves cache[c] on the block it handed out */
    for (int round = 0; round < 2; round++) {
        assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
        for (unsigned k = 0; k < RCGC_NCLASSES; k++)
            assert_true(ps->mfloor[k] == UINTPTR_MAX);
        size_t cur = 0, peak = 0;
        /* an object freed while tracing goes to the cache; the next
         * creation of its size is traced, not the untraced pop's */
        rcgc_list *l = rcgc_list_new(rt);
        rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
        size_t with_list = cur;
        assert_true(with_list > 0);
        rcgc_decref(RCGC_OBJ(l));
        rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
        assert_int_equal(cur, 0);
        l = rcgc_list_new(rt);
        rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
        assert_int_equal(cur, with_list);
        rcgc_decref(RCGC_OBJ(l));
        /* the site made the last one (tk keeps the traced twin's class
         * live, C3), then three blocks cached in the traced twin's row
         * (H1: rcgc_mem_malloc's traced blocks, perf-tm17) */
        unsigned ct = c + RCGC_NCLASSES;
        void *tk = floor_malloc(rt, 64);
        void *t[3];
        for (int i = 0; i < 3; i++)
            t[i] = floor_malloc(rt, 64);
        for (int i = 0; i < 3; i++)
            rcgc_mem_free(rt, t[i]);
        rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
        assert_int_equal(cur, 64);
        rcgc_mem_hdr_ring_flush(rt);   /* T4: the ring's blocks cached */
        assert_ptr_equal(*ps->ctop[ct], t[2]);
        void *u = floor_malloc(rt, 64);
        assert_ptr_equal(u, t[2]);
        rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
        assert_int_equal(cur, 128);
        assert_ptr_equal(*ps->ctop[ct], t[1]);
        assert_ptr_equal(ps->cache[ct], t[2]);   /* live, not the top (C1) */
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        /* off: cache[c] is the top's copy again, not the live u */
        rcgc_tracemalloc_stop(rt);
        for (unsigned k = 0; k < RCGC_NCLASSES; k++) {
            assert_true(ps->mfloor[k] == (uintptr_t)&ps->crow[k][0]);
            assert_ptr_equal(ps->cache[k], *ps->ctop[k]);
        }
        for (unsigned k = RCGC_NCLASSES; k < RCGC_NROWS; k++)
            assert_ptr_equal(ps->cache[k], *ps->ctop[k]);
        assert_ptr_equal(ps->cache[ct], t[1]);
        rcgc_mem_free(rt, u);
        rcgc_mem_free(rt, tk);
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    }

    /* the tracer holding itself: the cache keeps its blocks (nothing is
     * flushed), the allocation goes through the domain (counted there).
     * (The traced rounds cached their blocks in the traced twin's row,
     * H1: one untraced block for row c.) */
    rcgc_mem_free(rt, floor_malloc(rt, 64));
    assert_true(rcgc_pool_ncache(ps, c) >= 1);
    rcgc_mem_trace_hold(rt, 1);
    assert_true(ps->mfloor[c] == UINTPTR_MAX);
    long dlive = rt->mem.domains[RCGC_DOMAIN_MEM].live;
    void *h = floor_malloc(rt, 64);
    assert_non_null(h);
    assert_int_equal(rt->mem.domains[RCGC_DOMAIN_MEM].live, dlive + 1);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_mem_free(rt, h);
    rcgc_mem_trace_hold(rt, -1);
    assert_true(ps->mfloor[c] == (uintptr_t)&ps->crow[c][0]);
    assert_ptr_equal(ps->cache[c], *ps->ctop[c]);

    /* fault injection: the cache is flushed, the floor up while it is on */
    rcgc_mem_fail_after(rt, 1000000, 0);
    for (unsigned k = 0; k < RCGC_NCLASSES; k++)
        assert_true(ps->mfloor[k] == UINTPTR_MAX);
    assert_int_equal(rcgc_pool_ncache(ps, c), 0);
    void *q = floor_malloc(rt, 64);
    assert_non_null(q);
    rcgc_mem_free(rt, q);
    assert_int_equal(rcgc_pool_ncache(ps, c), 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_mem_fail_after(rt, 0, 0);
    for (unsigned k = 0; k < RCGC_NCLASSES; k++)
        assert_true(ps->mfloor[k] == (uintptr_t)&ps->crow[k][0]);
    /* debug hooks, a user allocator (set up on a runtime of their own):
     * the floor up from the start */
    for (int mode = 0; mode < 2; mode++) {
        rcgc_runtime *rt2 = new_rt();
        rcgc_pool_state *ps2 = &rt2->pool;
        rcgc_allocator al = {NULL, ml_malloc, ml_calloc, ml_realloc, ml_free};
        rcgc_mem_get_pool_allocator(rt2, &ml_pools);
        ml_nside = 0;
        if (mode == 0)
            assert_int_equal(rcgc_mem_setup_debug_hooks(rt2), RCGC_OK);
        else
            assert_int_equal(rcgc_mem_set_allocator(rt2, RCGC_DOMAIN_MEM, &al), RCGC_OK);
        for (unsigned k = 0; k < RCGC_NCLASSES; k++)
            assert_true(ps2->mfloor[k] == UINTPTR_MAX);
        void *v[3];
        for (int i = 0; i < 3; i++)
            assert_non_null(v[i] = floor_malloc(rt2, 64));
        rcgc_mem_free(rt2, v[1]);
        assert_int_equal(rcgc_pool_ncache(ps2, c), 0);
        void *w = floor_malloc(rt2, 64);
        assert_non_null(w);
        assert_int_equal(rcgc_validate(rt2, stderr), RCGC_OK);
        rcgc_mem_free(rt2, w);
        rcgc_mem_free(rt2, v[0]);
        rcgc_mem_free(rt2, v[2]);
        assert_int_equal(rcgc_validate(rt2, stderr), RCGC_OK);
        rcgc_runtime_free(rt2);
    }
    rcgc_mem_trace_hold(rt, 1);
    ps->mfloor[c] = (uintptr_t)&ps->crow[c][0];
    expect_invalid_as(rt, "allocation's floor", "(C5)");
    ps->mfloor[c] = UINTPTR_MAX;
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_mem_trace_hold(rt, -1);
    ps->mfloor[c] = UINTPTR_MAX;
    expect_invalid_as(rt, "allocation's floor", "(C5)");
    ps->mfloor[c] = (uintptr_t)&ps->crow[c][0];
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_mem_free(rt, keep);
    rcgc_mem_free(rt, x);
    rcgc_mem_free(rt, y);
    rcgc_runtime_free(rt);
}

/* H2 (tmfast.h, perf-tm17): a block of a traced pool freed after stop.
 * stop zeroes every header, so the untraced free (which reads none)
 * caches the block in its traced twin's row with a zero header; after a
 * new start the traced allocation takes it again and traces it, and the
 * traced free of a block traced in the earlier session counts nothing. */
static void test_traced_block_freed_after_stop(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    rcgc_pool_state *ps = &rt->pool;
    unsigned ct = (unsigned)rcgc_size_class(64) + RCGC_NCLASSES;
    void *keep = floor_malloc(rt, 64);
    size_t cur = 0, peak = 0;
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    void *tk = floor_malloc(rt, 64);
    void *b = floor_malloc(rt, 64);
    assert_int_equal(rcgc_pool_of(b)->szidx, ct);
    assert_int_equal(((const rcgc_trace_slot *)b - 1)->tb != 0, 1);
    assert_int_equal(((const rcgc_trace_slot *)b - 1)->size, 64);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_tracemalloc_stop(rt);
    assert_int_equal(((const rcgc_trace_slot *)b - 1)->tb, 0);   /* stop zeroed it */
    assert_int_equal(((const rcgc_trace_slot *)tk - 1)->tb, 0);
    rcgc_mem_free(rt, b);                       /* untraced: into the twin's row */
    assert_ptr_equal(*ps->ctop[ct], b);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    void *y = floor_malloc(rt, 64);
    assert_ptr_equal(y, b);                     /* the twin's row, traced again */
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 64);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_mem_free(rt, tk);                      /* traced before: counts nothing */
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 64);
    rcgc_mem_free(rt, y);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_tracemalloc_stop(rt);
    rcgc_mem_free(rt, keep);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_runtime_free(rt);
}

/* T1, T2 (pool.h, tmfast.h): the traced pools' blocks live in the traced
 * region, whose free finds their row by its class bytes; in every other
 * mode, and after stop, the arena map's way frees them.  Arenas of the
 * region are given back and their slots taken again. */
static void test_traced_region(void **state)
{
    (void)state;
#ifdef RCGC_REGION_HI
    enum { N = 6000 };
    static void *blk[N];
    rcgc_runtime *rt = new_rt();
    rcgc_pool_state *ps = &rt->pool;
    void *before = rcgc_mem_malloc(rt, 100);   /* untraced: a general arena */
    assert_false(rcgc_pool_in_region(before));
    /* T3: below the region (rcgc_mem_free's inline range), from 17 TiB */
    assert_true((uintptr_t)before >= RCGC_LOW_FIRST &&
                (uintptr_t)before >> (RCGC_ARENA_BITS + RCGC_MAP_BITS) < RCGC_FREE_HI);
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    assert_int_equal(rt->region_rows, RCGC_NCLASSES);   /* T2: the mode */
    size_t want = 0, cur = 0, peak = 0;
    for (int i = 0; i < N; i++) {
        size_t n = 1 + (size_t)(i * 37) % 512;
        blk[i] = rcgc_mem_malloc(rt, n);
        assert_non_null(blk[i]);
        want += n;
        assert_true(rcgc_pool_in_region(blk[i]));
        assert_int_equal(rcgc_pool_of(blk[i])->szidx, rcgc_size_class(n) + RCGC_NCLASSES);
        assert_int_equal(rcgc_pool_of(blk[i])->arena->set, &ps->rarenas);
    }
    /* more than one region arena (6000 blocks of 16-528 bytes) */
    int nregion = 0;
    for (rcgc_arena *a = ps->all; a; a = a->allnext)
        nregion += a->set == &ps->rarenas;
    assert_true(nregion > 1);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    /* the region's free (T2), the first half */
    for (int i = 0; i < N / 2; i++) {
        want -= 1 + (size_t)(i * 37) % 512;
        rcgc_mem_free(rt, blk[i]);
    }
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, want);   /* the ring's blocks not counted (T4) */
    /* T4: the last 16 frees wait in the traced free's ring; the
     * validator catches a block in it twice, or one not of its row */
    assert_int_equal(rcgc_mem_hdr_ring_count(rt), RCGC_HDR_RING);
    {
        void *q0 = rt->hdr_ring[0];
        uint8_t r0 = rt->hdr_ring_row[0];
        rt->hdr_ring[0] = rt->hdr_ring[1];
        rt->hdr_ring_row[0] = rt->hdr_ring_row[1];
        expect_invalid_as(rt, "twice in the ring", "(T4)");
        rt->hdr_ring[0] = q0;
        rt->hdr_ring_row[0] = (uint8_t)(r0 == RCGC_NROWS - 1 ? r0 - 1 : r0 + 1);
        expect_invalid_as(rt, "of its row", "(T4)");
        rt->hdr_ring_row[0] = r0;
    }
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);   /* settles the ring */
    assert_int_equal(rcgc_mem_hdr_ring_count(rt), 0);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, want);
    /* another mode beside tracing: fault injection (T2 off: the map's way) */
    rcgc_mem_fail_after(rt, 1000000, 0);
    assert_int_equal(rt->region_rows, RCGC_NROWS);
    for (int i = N / 2; i < N / 2 + 500; i++) {
        want -= 1 + (size_t)(i * 37) % 512;
        rcgc_mem_free(rt, blk[i]);
    }
    rcgc_mem_fail_after(rt, 0, 0);
    assert_int_equal(rt->region_rows, RCGC_NCLASSES);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, want);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    /* the validator's T2 check */
    rt->region_rows = RCGC_NROWS;
    assert_int_equal(rcgc_validate(rt, NULL), RCGC_EFORMAT);
    rt->region_rows = RCGC_NCLASSES;
    /* after stop, the map's way */
    rcgc_tracemalloc_stop(rt);
    assert_int_equal(rt->region_rows, RCGC_NROWS);
    for (int i = N / 2 + 500; i < N; i++)
        rcgc_mem_free(rt, blk[i]);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    /* every region arena went back but the spare, and its class bytes
     * with it (T1: a block of it would read class 0) */
    nregion = 0;
    for (rcgc_arena *a = ps->all; a; a = a->allnext)
        nregion += a->set == &ps->rarenas;
    assert_true(nregion <= 1);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    /* again: the slots are taken again, the blocks in the region */
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    for (int i = 0; i < N; i++) {
        blk[i] = rcgc_mem_malloc(rt, 1 + (size_t)(i * 37) % 512);
        assert_true(rcgc_pool_in_region(blk[i]));
    }
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    /* a second runtime tracing at the same time has arenas of its own there */
    rcgc_runtime *rt2 = new_rt();
    assert_int_equal(rcgc_tracemalloc_start(rt2, 1), RCGC_OK);
    void *o = rcgc_mem_malloc(rt2, 40);
    assert_true(rcgc_pool_in_region(o));
    assert_ptr_equal(rcgc_pool_of(o)->rt, rt2);
    assert_ptr_not_equal(rcgc_arena_of(o), rcgc_arena_of(blk[0]));
    rcgc_mem_free(rt2, o);
    assert_int_equal(rcgc_validate(rt2, stderr), RCGC_OK);
    rcgc_runtime_free(rt2);
    for (int i = 0; i < N; i++)
        rcgc_mem_free(rt, blk[i]);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_tracemalloc_stop(rt);
    rcgc_mem_free(rt, before);
    rcgc_runtime_free(rt);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_size_classes),   cmocka_unit_test(test_alloc_all_sizes),
        cmocka_unit_test(test_big_blocks),     cmocka_unit_test(test_calloc_realloc),
        cmocka_unit_test(test_arenas_returned), cmocka_unit_test(test_fullest_arena_first),
        cmocka_unit_test(test_stress),         cmocka_unit_test(test_print_stats),
        cmocka_unit_test(test_validate_detects), cmocka_unit_test(test_free_cache),
        cmocka_unit_test(test_free_cache_stack),
        cmocka_unit_test(test_full_row_last_block),
        cmocka_unit_test(test_validate_mem_count_sign), cmocka_unit_test(test_class_entry_lookup),
        cmocka_unit_test(test_mem_live_fast_paths),
        cmocka_unit_test(test_mem_live_every_mode), cmocka_unit_test(test_free_nocache_last_spills),
        cmocka_unit_test(test_free_mode_limit),  cmocka_unit_test(test_alloc_mode_floor),
        cmocka_unit_test(test_traced_block_freed_after_stop),
        cmocka_unit_test(test_traced_region),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
