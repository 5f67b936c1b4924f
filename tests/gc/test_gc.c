/* The cycle collector: trial deletion, generations, CPython's finalization
 * order, the gc module's surface, debug output and out-of-memory paths. */
#include "gctest.h"
#include "rcgc_tracemalloc.h"

/* ---------------------------------------------------------------- basics */

static void test_cycle_collected(void **state)
{
    (void)state;
    make_garbage_pair(&plain_type, 1, &plain_type, 2);
    assert_int_equal(free_log.n, 0);          /* refcounting cannot free it */
    assert_int_equal(collect(2), 2);
    assert_int_equal(log_count(&free_log, 1), 1);
    assert_int_equal(log_count(&free_log, 2), 1);
    assert_int_equal(collect(2), 0);
}

/* A live structure survives with every refcount exactly as before. */
static void test_live_ring_untouched(void **state)
{
    (void)state;
    enum { N = 3000 };
    gnode *nodes[N];
    for (int i = 0; i < N; i++)
        nodes[i] = gn_new(&plain_type, i);
    for (int i = 0; i < N; i++) {
        gn_set(nodes[i], 0, nodes[(i + 1) % N]);
        gn_set(nodes[i], 1, nodes[(i + N - 1) % N]);
        if (i % 7 == 0)
            gn_set(nodes[i], 2, nodes[(i * 13) % N]);
    }
    size_t before[N];
    for (int i = 0; i < N; i++)
        before[i] = rcgc_refcount(RCGC_OBJ(nodes[i]));
    /* Drop our references to all but one: the ring stays reachable. */
    for (int i = 1; i < N; i++)
        gn_drop(nodes[i]);
    for (int g = 0; g < 3; g++)
        assert_int_equal(collect(g), 0);
    assert_int_equal(free_log.n, 0);
    for (int i = 1; i < N; i++)
        assert_int_equal(rcgc_refcount(RCGC_OBJ(nodes[i])), before[i] - 1);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(nodes[0])), before[0]);
    for (int i = 0; i < N; i++)
        assert_int_equal(nodes[i]->ob.flags & (RCGC_OF_COLLECTING | RCGC_OF_REACHABLE |
                                               RCGC_OF_MARK), 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    gn_drop(nodes[0]);
    assert_int_equal(collect(2), N);
    assert_int_equal(free_log.n, N);
}

/* A wide live structure, laid out in no particular order, beside a garbage
 * one: a full collection marks the live tree through the prefetch ring
 * (GC_RING referents waiting, the mark stack deep) and must reach every
 * node of it.  Each node points at its two children and back at its
 * parent; nodes are created in a scrambled order so that neighbours in the
 * tree are not neighbours in memory.  Fails if the ring loses or skips a
 * referent (a live node freed, or garbage kept). */
static int in_gen(const void *o, int gen);

static void test_wide_live_tree_full_collection(void **state)
{
    (void)state;
    enum { N = 4095 };   /* a complete binary tree of depth 11 */
    static gnode *live[N], *dead[N];
    for (int k = 0; k < N; k++) {
        int i = (k * 2048) % N;   /* a permutation: gcd(2048, N) = 1 */
        live[i] = gn_new(&plain_type, 1);
        dead[i] = gn_new(&plain_type, 2);
    }
    for (int i = 1; i < N; i++) {
        gn_set(live[(i - 1) / 2], (i - 1) % 2, live[i]);
        gn_set(live[i], 2, live[(i - 1) / 2]);
        gn_set(dead[(i - 1) / 2], (i - 1) % 2, dead[i]);
        gn_set(dead[i], 2, dead[(i - 1) / 2]);
    }
    size_t before[N];
    for (int i = 0; i < N; i++)
        before[i] = rcgc_refcount(RCGC_OBJ(live[i]));
    for (int i = 0; i < N; i++) {
        gn_drop(dead[i]);
        if (i > 0)
            gn_drop(live[i]);
    }
    free_log.n = 0;
    assert_int_equal(collect(2), N);
    assert_int_equal(log_count(&free_log, 2), N);
    assert_int_equal(log_count(&free_log, 1), 0);
    for (int i = 1; i < N; i++)
        assert_int_equal(rcgc_refcount(RCGC_OBJ(live[i])), before[i] - 1);
    assert_true(in_gen(live[N - 1], 2));
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    assert_int_equal(collect(2), 0);
    gn_drop(live[0]);
    assert_int_equal(collect(2), N);
    assert_int_equal(log_count(&free_log, 1), N);
}

/* A big set of plain garbage (past the small-set size) is deleted pool by
 * pool, most of each pool's objects leaving their pool's tracking as a
 * batch.  Here the garbage spans generations 0-2 and many pools, each node
 * points at its neighbours and at a node far away in another pool (so some
 * objects outlive their own pool's turn), and two live objects are
 * referenced from the garbage (one a member of the set, one old and not).
 * Every node must be freed exactly once, the live ones kept with their
 * refcounts true, and the heap consistent (the tracked bitmaps, the young
 * counts and list, the generation counts). */
static void garbage_by_pool(int N)
{
    static gnode *g[3 * 8192 + 77];
    assert_true(N <= (int)(sizeof g / sizeof g[0]));
    gnode *old_live = gn_new(&plain_type, 7);
    assert_int_equal(collect(2), 0);             /* old_live: generation 2 */
    for (int i = 0; i < N; i++) {
        g[i] = gn_new(&plain_type, 1);
        if (i == N / 3)
            assert_int_equal(collect(1), 0);     /* a third in generation 2 */
        if (i == 2 * N / 3)
            assert_int_equal(collect(0), 0);     /* a third in generation 1 */
    }
    gnode *young_live = gn_new(&plain_type, 8);
    for (int i = 0; i < N; i++) {
        gn_set(g[i], 0, g[(i + 1) % N]);
        gn_set(g[i], 1, g[(i + N - 1) % N]);
        gn_set(g[i], 2, g[(i * 7919) % N]);
    }
    gn_set(g[5], 2, young_live);
    gn_set(g[N - 5], 2, old_live);
    size_t young_before = rcgc_refcount(RCGC_OBJ(young_live));
    size_t old_before = rcgc_refcount(RCGC_OBJ(old_live));
    for (int i = 0; i < N; i++)
        gn_drop(g[i]);
    free_log.n = 0;
    assert_int_equal(collect(2), N);
    assert_int_equal(log_count(&free_log, 1), N);
    assert_int_equal(free_log.n, N);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(young_live)), young_before - 1);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(old_live)), old_before - 1);
    assert_true(in_gen(young_live, 2));
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    long c[3];
    rcgc_gc_get_count(rt, c);
    assert_int_equal(c[0], 0);
    assert_int_equal(collect(2), 0);
    gn_drop(young_live);
    gn_drop(old_live);
    assert_int_equal(free_log.n, N + 2);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
}

static void test_big_garbage_by_pool(void **state)
{
    (void)state;
    garbage_by_pool(3 * 8192 + 77);
}

/* The same for a small set (at most 8192 objects: the whole set is
 * cleared first, then each pool's holds let go of, most as a batch): 700
 * nodes over three pools, far references crossing pools. */
static void test_small_garbage_by_pool(void **state)
{
    (void)state;
    garbage_by_pool(700);
}

/* The memory of big plain garbage is freed a pool at a time (the blocks of
 * a pool's batch go onto its free list together, object.c and pool.c).
 * Three shapes: pools shared with live objects of the same class (they keep
 * their live blocks, go back on their used list and hand the freed blocks
 * out again), pools of a class the garbage has to itself (emptied by the
 * batch and returned; the class's last blocks go one by one and spill its
 * free cache), and the same under tracing (every trace forgotten: the
 * traced total drops by exactly the garbage's traces) and under the debug
 * hooks (block by block through the hooks, which check every free).  Fails
 * if a batch loses or doubles a block, leaves a count or list wrong
 * (rcgc_validate, the pool statistics), or keeps a trace. */
typedef struct ownnode {
    gnode g;
    char pad[200];   /* a size class of its own in this runtime */
} ownnode;
static const rcgc_type own_type = {
    .name = "Own", .size = sizeof(ownnode), .traverse = gn_traverse, .clear = gn_clear,
    .dealloc = gn_dealloc};

static void garbage_ring(const rcgc_type *t, gnode **g, int n, int id, gnode **live, int every,
                         int far)
{
    int nl = 0;
    for (int i = 0; i < n; i++) {
        g[i] = gn_new(t, id);
        if (live && i % every == 0)
            live[nl++] = gn_new(t, id + 1);
    }
    for (int i = 0; i < n; i++) {
        gn_set(g[i], 0, g[(i + 1) % n]);
        if (far)
            gn_set(g[i], 1, g[(i * 31) % n]);
    }
    for (int i = 0; i < n; i++)
        gn_drop(g[i]);
}

static size_t traced_now(void)
{
    size_t cur, peak;
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    return cur;
}

/* mode: 0 plain, 1 tracing, 2 debug hooks (a runtime of its own), 3 fault
 * injection armed. */
static void garbage_batch_free(int mode, int N)
{
    enum { NMAX = 2 * 8192 + 301, EVERY = 5 };
    static gnode *g[NMAX], *live[(NMAX + EVERY - 1) / EVERY];
    const int NL = (N + EVERY - 1) / EVERY;
    assert_true(N <= NMAX);
    rcgc_runtime *outer = rt;
    if (mode == 2) {
        rt = rcgc_runtime_new(&(rcgc_config){.size = sizeof(rcgc_config), .gc_disabled = 1});
        assert_non_null(rt);
        assert_int_equal(rcgc_mem_setup_debug_hooks(rt), RCGC_OK);
    } else if (mode == 1) {
        assert_int_equal(rcgc_tracemalloc_start(rt, 1), 0);
    } else if (mode == 3) {
        rcgc_mem_fail_after(rt, 1000000000, 0);   /* armed, never reached */
    }
    rcgc_mem_stats st0, st1, st2;
    st0.size = st1.size = st2.size = sizeof st0;

    /* Shared pools: every fifth block of the class stays live. */
    size_t tr0 = mode == 1 ? traced_now() : 0;
    garbage_ring(&plain_type, g, N, 1, live, EVERY, 1);
    size_t tr1 = mode == 1 ? traced_now() : 0;
    assert_int_equal(rcgc_mem_get_stats(rt, &st0), RCGC_OK);
    free_log.n = 0;
    assert_int_equal(collect(2), N);
    assert_int_equal(log_count(&free_log, 1), N);
    assert_int_equal(free_log.n, N);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    assert_int_equal(rcgc_mem_get_stats(rt, &st1), RCGC_OK);
    assert_int_equal(st1.blocks_allocated, st0.blocks_allocated - N);
    assert_int_equal(st1.pools_used, st0.pools_used);   /* each keeps a live block */
    if (mode == 1)
        assert_int_equal(traced_now(), tr1 - (tr1 - tr0) / (N + NL) * N);
    /* The freed blocks are handed out again: no new pool. */
    garbage_ring(&plain_type, g, N, 3, NULL, 0, 1);
    assert_int_equal(rcgc_mem_get_stats(rt, &st2), RCGC_OK);
    assert_int_equal(st2.pools_used, st0.pools_used);
    assert_int_equal(collect(2), N);
    for (int i = 0; i < NL; i++)
        gn_drop(live[i]);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);

    /* A class of its own, a plain ring: each pool's garbage but the first
     * object of the set is freed by its batch, which empties the pool. */
    assert_int_equal(rcgc_mem_get_stats(rt, &st0), RCGC_OK);
    tr0 = mode == 1 ? traced_now() : 0;
    garbage_ring(&own_type, g, N, 5, NULL, 0, 0);
    assert_int_equal(rcgc_mem_get_stats(rt, &st1), RCGC_OK);
    assert_true(st1.pools_used > st0.pools_used + (size_t)N / 160);
    free_log.n = 0;
    assert_int_equal(collect(2), N);
    assert_int_equal(log_count(&free_log, 5), N);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    assert_int_equal(rcgc_mem_get_stats(rt, &st2), RCGC_OK);
    assert_int_equal(st2.blocks_allocated, st0.blocks_allocated);
    assert_int_equal(st2.pools_used, st0.pools_used);
    if (mode == 1) {
        assert_int_equal(traced_now(), tr0);
        rcgc_tracemalloc_stop(rt);
    }
    if (mode == 2) {
        rcgc_gc_collect(rt, 2);
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        rcgc_runtime_free(rt);
        rt = outer;
    }
    if (mode == 3) {
        assert_int_equal(rcgc_mem_failures(rt), 0);
        rcgc_mem_fail_after(rt, 0, 0);
    }
}

static void test_big_garbage_batch_free(void **state)
{
    (void)state;
    garbage_batch_free(0, 2 * 8192 + 301);
}

static void test_big_garbage_batch_free_traced(void **state)
{
    (void)state;
    garbage_batch_free(1, 2 * 8192 + 301);
}

static void test_big_garbage_batch_free_debug_hooks(void **state)
{
    (void)state;
    garbage_batch_free(2, 2 * 8192 + 301);
}

/* Small sets take the same batch free (after the whole set is cleared):
 * 1001 nodes, a few pools of each shape. */
static void test_small_garbage_batch_free(void **state)
{
    (void)state;
    garbage_batch_free(0, 1001);
}

static void test_small_garbage_batch_free_traced(void **state)
{
    (void)state;
    garbage_batch_free(1, 1001);
}

static void test_small_garbage_batch_free_debug_hooks(void **state)
{
    (void)state;
    garbage_batch_free(2, 1001);
}

/* With fault injection armed (the allocator's slow mode, every block
 * freed its own way), small and big. */
static void test_garbage_batch_free_fault_injection(void **state)
{
    (void)state;
    garbage_batch_free(3, 1001);
    garbage_batch_free(3, 2 * 8192 + 301);
}

/* Plain garbage whose first clear runs user code that freezes the heap: a
 * finalizer of an old object the garbage held (outside the set) calls
 * rcgc_gc_freeze, which moves the set's members, still tracked, to the
 * permanent generation before their pool's batch untracks them.  The
 * batch must take them out of the permanent count (rcgc_validate's G1
 * fails otherwise), and free them all. */
static void freeze_on_fin(gnode *self)
{
    (void)self;
    rcgc_gc_freeze(rt);
}

static void test_garbage_frozen_during_delete(void **state)
{
    (void)state;
    gnode *f = gn_new(&fin_type, 1);
    f->on_finalize = freeze_on_fin;
    assert_int_equal(collect(2), 0);   /* f: generation 2, outside the set */
    gnode *a = gn_new(&plain_type, 2), *b = gn_new(&plain_type, 3);
    gn_set(a, 0, b);
    gn_set(b, 0, a);
    gn_set(a, 1, f);
    gn_drop(f);
    gn_drop(a);
    gn_drop(b);
    free_log.n = 0;
    assert_int_equal(collect(0), 2);
    assert_int_equal(log_count(&fin_log, 1), 1);
    assert_int_equal(log_count(&free_log, 1), 1);
    assert_int_equal(log_count(&free_log, 2), 1);
    assert_int_equal(log_count(&free_log, 3), 1);
    assert_int_equal(rcgc_gc_get_freeze_count(rt), 1);   /* gc_setup's list */
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_gc_unfreeze(rt);
}

/* Garbage that is only reachable from garbage, hanging off a cycle, goes too;
 * garbage referenced from a live object does not. */
static void test_reachable_from_outside(void **state)
{
    (void)state;
    gnode *root = gn_new(&plain_type, 100);
    gnode *a = gn_new(&plain_type, 1), *b = gn_new(&plain_type, 2);
    gnode *tail = gn_new(&plain_type, 3);
    gn_set(a, 0, b);
    gn_set(b, 0, a);
    gn_set(b, 1, tail);
    gn_set(root, 0, a);
    gn_drop(a);
    gn_drop(b);
    gn_drop(tail);
    assert_int_equal(collect(2), 0);
    gn_set(root, 0, NULL);
    assert_int_equal(collect(2), 3);
    assert_int_equal(free_log.n, 3);
    gn_drop(root);
}

/* An untracked container's references count as references from outside. */
static void test_untracked_container_keeps_alive(void **state)
{
    (void)state;
    gnode *holder = gn_new(&plain_type, 9);
    rcgc_gc_untrack(RCGC_OBJ(holder));
    assert_false(rcgc_gc_is_tracked(RCGC_OBJ(holder)));
    gnode *a = gn_new(&plain_type, 1);
    gn_set(a, 0, a);
    gn_set(holder, 0, a);
    gn_drop(a);
    assert_int_equal(collect(2), 0);
    gn_set(holder, 0, NULL);
    assert_int_equal(collect(2), 1);
    rcgc_gc_track(RCGC_OBJ(holder));
    assert_true(rcgc_gc_is_tracked(RCGC_OBJ(holder)));
    rcgc_gc_track(RCGC_OBJ(holder));            /* no-op when tracked */
    gn_drop(holder);
}

/* --------------------------------------------------------- generations */

static int contains(rcgc_list *l, const void *o)
{
    return rcgc_list_index(l, (const rcgc_object *)o) >= 0;
}

static int in_gen(const void *o, int gen)
{
    rcgc_list *l = rcgc_gc_get_objects(rt, gen);
    assert_non_null(l);
    int r = contains(l, o);
    rcgc_decref(RCGC_OBJ(l));
    return r;
}

/* test_gc.test_collect_generations: an object trickles up one generation per
 * collection of its own generation; the counts follow CPython's rules. */
static void test_generations(void **state)
{
    (void)state;
    long c[3];
    collect(2);
    gnode *x = gn_new(&plain_type, 1);
    assert_true(in_gen(x, 0));
    collect(0);
    assert_true(in_gen(x, 1));
    rcgc_gc_get_count(rt, c);
    assert_int_equal(c[1], 1);
    assert_int_equal(c[2], 0);
    collect(1);
    assert_true(in_gen(x, 2));
    rcgc_gc_get_count(rt, c);
    assert_int_equal(c[1], 0);
    assert_int_equal(c[2], 1);
    collect(2);
    assert_true(in_gen(x, 2));
    rcgc_gc_get_count(rt, c);
    assert_int_equal(c[1], 0);
    assert_int_equal(c[2], 0);
    /* A young collection leaves older objects alone. */
    gnode *y = gn_new(&plain_type, 2);
    gn_set(x, 0, x);
    gn_drop(x);
    assert_int_equal(collect(0), 0);
    assert_int_equal(collect(1), 0);
    assert_int_equal(collect(2), 1);
    gn_drop(y);
}

/* test_gc.test_get_count: allocation raises count 0, deallocation lowers it. */
static void test_get_count(void **state)
{
    (void)state;
    long a[3], b[3], c[3];
    collect(2);
    rcgc_gc_get_count(rt, a);
    gnode *x = gn_new(&plain_type, 1);
    rcgc_gc_get_count(rt, b);
    assert_int_equal(b[0], a[0] + 1);
    assert_int_equal(b[1], 0);
    assert_int_equal(b[2], 0);
    gn_drop(x);
    rcgc_gc_get_count(rt, c);
    assert_int_equal(c[0], a[0]);
}

/* The count and the automatic collection as rcgc_new's inline path keeps
 * them, CPython's way: count 0 goes up by one per new object and down by
 * one per dead one; the collection runs when it passes threshold 0, before
 * the new object is tracked, so that object alone is then in generation 0
 * and count 0 is 0. */
static void test_automatic_trigger(void **state)
{
    (void)state;
    enum { T = 50 };
    gnode *kept[T];
    rcgc_gc_stats s0[3], s1[3];
    long c[3];
    collect(2);
    rcgc_gc_set_threshold(rt, T, 10, 10);
    rcgc_gc_enable(rt);
    rcgc_gc_get_stats(rt, s0);
    rcgc_gc_get_count(rt, c);
    assert_int_equal(c[0], 0);
    for (int i = 0; i < T - 1; i++)
        kept[i] = gn_new(&plain_type, i);
    gn_drop(gn_new(&plain_type, 1000));          /* up to T, back to T - 1 */
    rcgc_gc_get_count(rt, c);
    assert_int_equal(c[0], T - 1);
    kept[T - 1] = gn_new(&plain_type, T - 1);    /* T: not past it yet */
    rcgc_gc_get_stats(rt, s1);
    assert_int_equal(s1[0].collections, s0[0].collections);
    rcgc_gc_get_count(rt, c);
    assert_int_equal(c[0], T);
    gnode *x = gn_new(&plain_type, 2000);        /* T + 1: collects first */
    rcgc_gc_get_stats(rt, s1);
    assert_int_equal(s1[0].collections, s0[0].collections + 1);
    assert_int_equal(s1[1].collections, s0[1].collections);
    rcgc_gc_get_count(rt, c);
    assert_int_equal(c[0], 0);
    assert_int_equal(c[1], 1);
    rcgc_gc_disable(rt);
    assert_true(in_gen(x, 0));
    for (int i = 0; i < T; i++)
        assert_true(in_gen(kept[i], 1));
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    gn_drop(x);
    for (int i = 0; i < T; i++)
        gn_drop(kept[i]);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
}

static void test_thresholds(void **state)
{
    (void)state;
    long t[3];
    rcgc_gc_get_threshold(rt, t);
    assert_int_equal(t[0], 700);
    assert_int_equal(t[1], 10);
    assert_int_equal(t[2], 10);
    assert_int_equal(rcgc_gc_set_threshold(rt, 5, 3, 2), RCGC_OK);
    rcgc_gc_get_threshold(rt, t);
    assert_int_equal(t[0], 5);
    assert_int_equal(t[1], 3);
    assert_int_equal(t[2], 2);
    assert_int_equal(rcgc_gc_set_threshold(rt, -1, 3, 2), RCGC_EINVAL);
    assert_int_equal(rcgc_gc_collect(rt, 3), RCGC_EINVAL);
    assert_int_equal(rcgc_gc_collect(rt, -1), RCGC_EINVAL);
}

/* Automatic collection: runs when enabled and threshold 0 > 0, not
 * otherwise; collects the oldest generation over its threshold. */
static void test_automatic(void **state)
{
    (void)state;
    rcgc_gc_stats st[3];
    assert_false(rcgc_gc_isenabled(rt));
    make_garbage_cycles(1000, 1);
    rcgc_gc_get_stats(rt, st);
    assert_int_equal(st[0].collections, 0);

    rcgc_gc_enable(rt);
    assert_true(rcgc_gc_isenabled(rt));
    rcgc_gc_set_threshold(rt, 0, 10, 10);        /* 0 switches it off */
    make_garbage_cycles(1000, 2);
    rcgc_gc_get_stats(rt, st);
    assert_int_equal(st[0].collections, 0);

    rcgc_gc_set_threshold(rt, 100, 10, 10);
    make_garbage_cycles(5000, 3);
    rcgc_gc_get_stats(rt, st);
    assert_true(st[0].collections >= 40);
    assert_true(st[1].collections >= 3);
    assert_true(st[0].collected + st[1].collected + st[2].collected >= 9000);
    rcgc_gc_disable(rt);
    assert_false(rcgc_gc_isenabled(rt));
    collect(2);
    assert_int_equal(log_count(&free_log, 1) + log_count(&free_log, 2) +
                     log_count(&free_log, 3), 14000);
}

static int fulls;
static gnode *promoted[64];
static int npromoted;

static void drop_promoted(rcgc_runtime *r, const char *phase, const rcgc_gc_info *info,
                          void *arg)
{
    (void)r;
    (void)arg;
    if (info->generation == 2 && strcmp(phase, "start") == 0)
        fulls++;
    if (info->generation == 1 && strcmp(phase, "stop") == 0) {
        for (int i = 0; i < npromoted; i++)
            gn_drop(promoted[i]);
        npromoted = 0;
    }
}

/* CPython issue #122569: objects promoted to generation 2 that then die
 * must not push long_lived_pending towards a useless full collection. */
static void test_long_lived_pending_shrinks(void **state)
{
    (void)state;
    enum { BASE = 4000 };
    gnode *base[BASE];
    for (int i = 0; i < BASE; i++)
        base[i] = gn_new(&plain_type, 1);
    collect(2);                                  /* long_lived_total = BASE */
    rcgc_gc_set_threshold(rt, 20, 1, 0);
    assert_int_equal(rcgc_gc_callback_add(rt, drop_promoted, NULL), RCGC_OK);
    rcgc_gc_enable(rt);
    fulls = 0;
    /* Each gen-1 collection promotes what we hold, which then dies: CPython
     * would count ~20 per round into pending and do a full collection about
     * every 50 rounds. */
    for (int round = 0; round < 20000; round++) {
        gnode *n = gn_new(&plain_type, 2);
        if (npromoted < 64)
            promoted[npromoted++] = n;
        else
            gn_drop(n);
    }
    rcgc_gc_disable(rt);
    rcgc_gc_callback_remove(rt, drop_promoted, NULL);
    assert_int_equal(fulls, 0);
    for (int i = 0; i < npromoted; i++)
        gn_drop(promoted[i]);
    npromoted = 0;
    /* Deaths of long-lived objects shrink the total, so a full collection
     * becomes due again once enough new objects arrive. */
    for (int i = 0; i < BASE; i++)
        gn_drop(base[i]);
    rcgc_gc_set_threshold(rt, 20, 1, 0);
    assert_int_equal(rcgc_gc_callback_add(rt, drop_promoted, NULL), RCGC_OK);
    gnode *keep[200];
    rcgc_gc_enable(rt);
    for (int i = 0; i < 200; i++)
        keep[i] = gn_new(&plain_type, 3);
    rcgc_gc_disable(rt);
    rcgc_gc_callback_remove(rt, drop_promoted, NULL);
    assert_true(fulls > 0);
    for (int i = 0; i < 200; i++)
        gn_drop(keep[i]);
}

/* ----------------------------------------------------------- finalizers */

static void test_finalizers_once(void **state)
{
    (void)state;
    make_garbage_pair(&fin_type, 1, &fin_type, 2);
    assert_int_equal(collect(2), 2);
    assert_int_equal(log_count(&fin_log, 1), 1);
    assert_int_equal(log_count(&fin_log, 2), 1);
    assert_int_equal(free_log.n, 2);
}

/* test_gc.test_resurrection_*: resurrected objects and all they reach
 * survive and are not counted; finalizers never run twice. */
static void test_resurrection(void **state)
{
    (void)state;
    gnode *r = gn_new(&res_type, 1), *p = gn_new(&plain_type, 2);
    gnode *other = gn_new(&fin_type, 3);
    gn_set(r, 0, p);
    gn_set(p, 0, r);
    gn_set(other, 0, other);
    gn_drop(r);
    gn_drop(p);
    gn_drop(other);
    assert_int_equal(collect(2), 1);              /* only `other` */
    assert_int_equal(log_count(&fin_log, 1), 1);
    assert_int_equal(log_count(&free_log, 3), 1);
    assert_int_equal(log_count(&free_log, 1) + log_count(&free_log, 2), 0);
    assert_int_equal(rcgc_list_len(saved), 1);
    assert_true(rcgc_gc_is_finalized(rcgc_list_get(saved, 0)));
    assert_true(in_gen(rcgc_list_get(saved, 0), 2));
    assert_int_equal(collect(2), 0);
    rcgc_list_clear(saved);
    assert_int_equal(collect(2), 2);              /* no second finalization */
    assert_int_equal(log_count(&fin_log, 1), 1);
    assert_int_equal(log_count(&free_log, 1), 1);
    assert_int_equal(log_count(&free_log, 2), 1);
}

static gnode *victim_owner;

static void drop_b(gnode *self)
{
    gn_set(self, 1, NULL);
}

/* A finalizer frees another trash object by dropping the last reference to
 * it: CPython frees it on the spot, so it is not counted as collected. */
static void test_freed_by_finalizer_not_counted(void **state)
{
    (void)state;
    gnode *a = gn_new(&fin_type, 1), *b = gn_new(&plain_type, 2);
    a->on_finalize = drop_b;
    gn_set(a, 0, a);
    gn_set(a, 1, b);
    gn_drop(b);
    gn_drop(a);
    assert_int_equal(collect(2), 1);
    assert_int_equal(free_log.n, 2);
    (void)victim_owner;
}

/* The same with a long chain freed by the finalizer, in both heap orders
 * (the orphan passes go both ways). */
static void chain_case(int reverse)
{
    enum { N = 2000 };
    gnode *nodes[N];
    for (int i = 0; i < N; i++)
        nodes[i] = gn_new(&plain_type, 10 + reverse);
    gnode *a = gn_new(&fin_type, 1);
    for (int i = 0; i + 1 < N; i++) {
        if (reverse)
            gn_set(nodes[i + 1], 0, nodes[i]);
        else
            gn_set(nodes[i], 0, nodes[i + 1]);
    }
    a->on_finalize = drop_b;
    gn_set(a, 0, a);
    gn_set(a, 1, nodes[reverse ? N - 1 : 0]);
    for (int i = 0; i < N; i++)
        gn_drop(nodes[i]);
    gn_drop(a);
    assert_int_equal(collect(2), 1);
    assert_int_equal(log_count(&free_log, 10 + reverse), N);
}

static void test_freed_chain(void **state)
{
    (void)state;
    chain_case(0);
    chain_case(1);
}

/* ---------------------------------------------------- legacy finalizers */

/* Legacy finalizers and everything they reach are uncollectable and go to
 * gc.garbage (only the legacy objects); the rest of the trash goes. */
static void test_legacy_uncollectable(void **state)
{
    (void)state;
    gnode *l = gn_new(&legacy_type, 1), *x = gn_new(&plain_type, 2);
    gnode *t = gn_new(&fin_type, 3);
    gn_set(l, 0, l);
    gn_set(l, 1, x);
    gn_set(t, 0, t);
    gn_set(t, 1, l);                               /* trash -> legacy */
    gn_drop(l);
    gn_drop(x);
    gn_drop(t);
    assert_int_equal(collect(2), 3);             /* 1 collected + 2 uncollectable */
    rcgc_gc_stats st[3];
    rcgc_gc_get_stats(rt, st);
    assert_int_equal(st[2].collected, 1);
    assert_int_equal(st[2].uncollectable, 2);
    rcgc_list *g = rcgc_gc_garbage(rt);
    assert_int_equal(rcgc_list_len(g), 1);
    assert_ptr_equal(rcgc_list_get(g, 0), RCGC_OBJ(l));
    assert_int_equal(log_count(&fin_log, 3), 1);
    assert_int_equal(log_count(&del_log, 1), 0);
    assert_int_equal(log_count(&free_log, 3), 1);
    /* Still uncollectable while gc.garbage holds it; not counted again. */
    assert_int_equal(collect(2), 0);
    /* Without gc.garbage's reference it is found again, and again cannot
     * be collected. */
    rcgc_list_clear(g);
    assert_int_equal(collect(2), 2);
    assert_int_equal(rcgc_list_len(g), 1);
    assert_int_equal(log_count(&del_log, 1), 0);
    /* The program breaks the cycle: refcounting frees it, legacy_del runs. */
    rcgc_object *o = rcgc_list_pop(g, 0);
    gn_set((gnode *)o, 0, NULL);
    rcgc_decref(o);
    assert_int_equal(log_count(&del_log, 1), 1);
    assert_int_equal(log_count(&free_log, 1), 1);
    assert_int_equal(log_count(&free_log, 2), 1);
}

/* A legacy object freed when the trash referring to it is cleared is not
 * counted as uncollectable (CPython counts after clearing). */
static void test_legacy_freed_by_clear(void **state)
{
    (void)state;
    gnode *l = gn_new(&legacy_type, 1), *t = gn_new(&plain_type, 2);
    gn_set(t, 0, t);
    gn_set(t, 1, l);
    gn_drop(l);
    gn_drop(t);
    assert_int_equal(collect(2), 1);
    assert_int_equal(rcgc_list_len(rcgc_gc_garbage(rt)), 0);
    assert_int_equal(log_count(&del_log, 1), 1);
    assert_int_equal(log_count(&free_log, 1), 1);
}

static void test_saveall(void **state)
{
    (void)state;
    gnode *a = gn_new(&plain_type, 1), *b = gn_new(&plain_type, 2);
    gn_set(a, 0, b);
    gn_set(b, 0, a);
    gn_drop(a);
    gn_drop(b);
    rcgc_gc_set_debug(rt, RCGC_DEBUG_SAVEALL);
    assert_int_equal(rcgc_gc_get_debug(rt), RCGC_DEBUG_SAVEALL);
    assert_int_equal(collect(2), 2);
    rcgc_list *g = rcgc_gc_garbage(rt);
    assert_int_equal(rcgc_list_len(g), 2);
    assert_true(contains(g, a) && contains(g, b));
    assert_int_equal(free_log.n, 0);
    rcgc_gc_set_debug(rt, 0);
    rcgc_list_clear(g);
    assert_int_equal(collect(2), 2);
}

/* ------------------------------------------------- re-entrancy, callbacks */

static long nested_result = -1;

static void collect_inside(gnode *self)
{
    (void)self;
    nested_result = rcgc_gc_collect(rt, 2);
}

static void test_collect_during_collect(void **state)
{
    (void)state;
    gnode *a = gn_new(&fin_type, 1);
    a->on_finalize = collect_inside;
    gn_set(a, 0, a);
    gn_drop(a);
    assert_int_equal(collect(2), 1);
    assert_int_equal(nested_result, 0);
}

typedef struct cb_record {
    char phase[8];
    rcgc_gc_info info;
    long inner;
} cb_record;
static cb_record records[16];
static int nrecords;

static void record_cb(rcgc_runtime *r, const char *phase, const rcgc_gc_info *info, void *arg)
{
    (void)r;
    if (nrecords < 16) {
        strncpy(records[nrecords].phase, phase, 7);
        records[nrecords].info = *info;
        records[nrecords].inner = rcgc_gc_collect(rt, 2);
        nrecords++;
    }
    *(int *)arg += 1;
}

static void test_callbacks(void **state)
{
    (void)state;
    int calls = 0;
    nrecords = 0;
    assert_int_equal(rcgc_gc_callback_add(rt, record_cb, &calls), RCGC_OK);
    gnode *l = gn_new(&legacy_type, 1), *a = gn_new(&plain_type, 2);
    gn_set(l, 0, l);
    gn_set(a, 0, a);
    gn_drop(l);
    gn_drop(a);
    assert_int_equal(collect(1), 2);
    assert_int_equal(nrecords, 2);
    assert_string_equal(records[0].phase, "start");
    assert_int_equal(records[0].info.generation, 1);
    assert_int_equal(records[0].info.collected, 0);
    assert_string_equal(records[1].phase, "stop");
    assert_int_equal(records[1].info.collected, 1);
    assert_int_equal(records[1].info.uncollectable, 1);
    assert_int_equal(records[0].inner, 0);      /* no collection inside */
    assert_int_equal(rcgc_gc_callback_remove(rt, record_cb, &calls), RCGC_OK);
    assert_int_equal(rcgc_gc_callback_remove(rt, record_cb, &calls), RCGC_EINVAL);
    collect(2);
    assert_int_equal(calls, 2);
    rcgc_list_clear(rcgc_gc_garbage(rt));
}

/* --------------------------------------------------------- introspection */

static void test_referrers_referents(void **state)
{
    (void)state;
    gnode *a = gn_new(&plain_type, 1), *b = gn_new(&plain_type, 2);
    gnode *c = gn_new(&plain_type, 3);
    gn_set(a, 0, c);
    gn_set(b, 0, c);
    gn_set(b, 1, a);
    rcgc_object *objs[] = {RCGC_OBJ(c)};
    rcgc_list *r = rcgc_gc_get_referrers(rt, objs, 1);
    assert_non_null(r);
    assert_int_equal(rcgc_list_len(r), 2);
    assert_true(contains(r, a) && contains(r, b));
    rcgc_decref(RCGC_OBJ(r));
    rcgc_object *objs2[] = {RCGC_OBJ(b), RCGC_OBJ(c)};
    rcgc_list *e = rcgc_gc_get_referents(rt, objs2, 2);
    assert_non_null(e);
    assert_int_equal(rcgc_list_len(e), 2);
    assert_ptr_equal(rcgc_list_get(e, 0), RCGC_OBJ(c));
    assert_ptr_equal(rcgc_list_get(e, 1), RCGC_OBJ(a));
    rcgc_decref(RCGC_OBJ(e));
    rcgc_list *all = rcgc_gc_get_objects(rt, -1);
    assert_true(contains(all, a) && contains(all, b) && contains(all, c));
    assert_false(contains(all, all));
    rcgc_decref(RCGC_OBJ(all));
    assert_null(rcgc_gc_get_objects(rt, 3));
    assert_null(rcgc_gc_get_objects(rt, -2));
    gn_drop(a);
    gn_drop(b);
    gn_drop(c);
}

static void test_freeze(void **state)
{
    (void)state;
    collect(2);
    gnode *a = gn_new(&plain_type, 1);
    gn_set(a, 0, a);
    long before = rcgc_gc_get_freeze_count(rt);
    rcgc_gc_freeze(rt);
    long c[3];
    rcgc_gc_get_count(rt, c);
    assert_int_equal(c[0], 0);
    assert_true(rcgc_gc_get_freeze_count(rt) >= before + 1);
    gn_drop(a);
    assert_int_equal(collect(2), 0);             /* frozen: never touched */
    assert_false(in_gen(a, 2));
    rcgc_gc_unfreeze(rt);
    assert_int_equal(rcgc_gc_get_freeze_count(rt), 0);
    assert_int_equal(collect(2), 1);
}

/* ------------------------------------------------------- out of memory */

/* No work space: RCGC_ENOMEM and nothing changed. */
static void test_enomem_changes_nothing(void **state)
{
    (void)state;
    gnode *a = gn_new(&plain_type, 1);
    gn_set(a, 0, a);
    gn_drop(a);
    long c0[3], c1[3];
    rcgc_gc_stats s0[3], s1[3];
    rcgc_gc_get_count(rt, c0);
    rcgc_gc_get_stats(rt, s0);
    rcgc_mem_fail_after(rt, 1, 1);
    assert_int_equal(collect(2), RCGC_ENOMEM);
    rcgc_mem_fail_after(rt, 0, 0);
    rcgc_gc_get_count(rt, c1);
    rcgc_gc_get_stats(rt, s1);
    assert_memory_equal(c0, c1, sizeof c0);
    assert_memory_equal(s0, s1, sizeof s0);
    assert_true(in_gen(a, 0));
    assert_int_equal(collect(2), 1);
}

/* No memory for the mark stack: the rescanning fallback gives the same
 * answer. */
static void test_mark_stack_fallback(void **state)
{
    (void)state;
    enum { N = 5000 };
    gnode *head = gn_new(&plain_type, 1), *prev = head;
    for (int i = 1; i < N; i++) {
        gnode *n = gn_new(&plain_type, 2);
        gn_set(prev, 0, n);
        gn_set(n, 1, prev);
        gn_drop(n);
        prev = n;
    }
    make_garbage_cycles(300, 3);
    make_garbage_pair(&legacy_type, 4, &plain_type, 5);
    /* Allocation 1 (the work array) succeeds, every later one fails. */
    rcgc_mem_fail_after(rt, 2, 1);
    long r = collect(2);
    rcgc_mem_fail_after(rt, 0, 0);
    assert_int_equal(r, 600 + 2);
    assert_int_equal(log_count(&free_log, 3), 600);
    assert_int_equal(log_count(&free_log, 2), 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    gn_drop(head);
    rcgc_list_clear(rcgc_gc_garbage(rt));
    assert_int_equal(collect(2), N + 2);
}

/* More internal references to one object than its count in the flags can
 * hold (2^20 - 1, then the excess goes to the refcount and is given back):
 * the same answers as for any object, and true refcounts afterwards.
 * x is referenced by N holders h[i] (slot 0), which form a chain (slot 1)
 * that x heads (x.s[0] = h[0]). */
enum { SAT_N = (1 << 20) + 5 };

static gnode *sat_build(gnode **last)
{
    gnode *x = gn_new(&plain_type, 1);
    gnode *prev = NULL;
    for (int i = 0; i < SAT_N; i++) {
        gnode *h = gn_new(&plain_type, 2);
        gn_set(h, 0, x);
        if (prev)
            gn_set(prev, 1, h);
        else
            gn_set(x, 0, h);
        if (prev)
            gn_drop(prev);
        prev = h;
    }
    *last = prev;   /* the caller owns one reference to the last holder */
    return x;
}

static void test_internal_count_saturates(void **state)
{
    (void)state;
    gnode *last, *x = sat_build(&last);
    gn_drop(last);
    /* Live through x: nothing found, every refcount true. */
    assert_int_equal(collect(2), 0);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(x)), SAT_N + 1);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(last)), 1);
    assert_true(in_gen(x, 2));
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    assert_int_equal(collect(2), 0);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(x)), SAT_N + 1);
    /* Garbage: x with exactly its internal references is no root. */
    gn_drop(x);
    assert_int_equal(collect(2), SAT_N + 1);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);

    /* Live through the last holder only (x's count saturates, its refcount
     * is no more than its internal references): all reached from there. */
    x = sat_build(&last);
    gn_drop(x);
    assert_int_equal(collect(0), 0);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(x)), SAT_N);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(last)), 2);
    assert_true(in_gen(x, 1));
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    gn_drop(last);
    assert_int_equal(collect(1), SAT_N + 1);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
}

/* Garbage made of pooled and foreign (bigger than a pool block) objects,
 * deleted straight from the pool sets when nothing needs finalization, and
 * listed (pooled, then foreign) for the finalizers when something does. */
static const rcgc_type big_type = {
    .name = "Big", .size = sizeof(gnode) + 1024, .traverse = gn_traverse, .clear = gn_clear,
    .dealloc = gn_dealloc};
static const rcgc_type big_fin_type = {
    .name = "BigFin", .size = sizeof(gnode) + 1024, .traverse = gn_traverse,
    .clear = gn_clear, .finalize = gn_finalize, .dealloc = gn_dealloc};

static void test_pooled_and_foreign_garbage(void **state)
{
    (void)state;
    gnode *p = gn_new(&plain_type, 1), *b = gn_new(&big_type, 2);
    assert_true(b->ob.flags & RCGC_OF_FOREIGN);
    assert_false(p->ob.flags & RCGC_OF_FOREIGN);
    gn_set(p, 0, b);
    gn_set(b, 0, p);
    gn_drop(p);
    gn_drop(b);
    assert_int_equal(collect(0), 2);
    assert_int_equal(log_count(&free_log, 1), 1);
    assert_int_equal(log_count(&free_log, 2), 1);

    gnode *q = gn_new(&plain_type, 3), *f = gn_new(&big_fin_type, 4);
    gnode *r = gn_new(&fin_type, 5), *keep = gn_new(&plain_type, 6);
    gn_set(q, 0, f);
    gn_set(f, 0, r);
    gn_set(r, 0, q);
    gn_set(keep, 0, keep);   /* a live cycle beside it, held by us */
    gn_drop(q);
    gn_drop(f);
    gn_drop(r);
    assert_int_equal(collect(2), 3);
    assert_int_equal(log_count(&fin_log, 4), 1);
    assert_int_equal(log_count(&fin_log, 5), 1);
    for (int id = 3; id <= 5; id++)
        assert_int_equal(log_count(&free_log, id), 1);
    assert_int_equal(log_count(&free_log, 6), 0);
    assert_true(in_gen(keep, 2));
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    gn_set(keep, 0, NULL);
    gn_drop(keep);

    /* Sets bigger than GC_DELETE_SMALL (8192) are cleared and released
     * object by object (a ring of finalizable nodes: the listed path) or
     * pool by pool (a ring of plain nodes: straight from the bitmaps), each
     * node also pointing back, so most are still referenced after their
     * own clear and the nodes at pool edges after their pool's clears. */
    enum { RING = 9000 };
    for (int kind = 0; kind < 2; kind++) {
        const rcgc_type *t = kind ? &plain_type : &fin_type;
        int id = 100 + kind;
        fin_log.n = free_log.n = 0;
        gnode *head = gn_new(t, id), *prev = head;
        for (int i = 1; i < RING; i++) {
            gnode *n = gn_new(t, id);
            gn_set(prev, 0, n);
            gn_set(n, 1, prev);
            gn_drop(n);
            prev = n;
        }
        gn_set(prev, 0, head);
        gn_set(head, 1, prev);
        gn_drop(head);
        assert_int_equal(collect(2), RING);
        assert_int_equal(log_count(&fin_log, id), kind ? 0 : RING);
        assert_int_equal(log_count(&free_log, id), RING);
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    }
}

/* ----------------------------------------------------------- debug output */

static const rcgc_type bad_type;

static int bad_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    gnode *n = (gnode *)self;
    /* Visits its one reference twice. */
    if (n->s[0]) {
        visit(n->s[0], arg);
        visit(n->s[0], arg);
    }
    return 0;
}

static const rcgc_type bad_type = {
    .name = "BadTraverse", .size = sizeof(gnode), .traverse = bad_traverse, .clear = gn_clear};

static void debug_child(void *arg)
{
    (void)arg;
    gc_setup(NULL);
    gnode *a = gn_new(&plain_type, 1), *b = gn_new(&plain_type, 2);
    gnode *l = gn_new(&legacy_type, 3);
    gn_set(a, 0, b);
    gn_set(b, 0, a);
    gn_set(l, 0, l);
    gn_drop(a);
    gn_drop(b);
    gn_drop(l);
    rcgc_gc_set_debug(rt, RCGC_DEBUG_STATS | RCGC_DEBUG_COLLECTABLE | RCGC_DEBUG_UNCOLLECTABLE);
    fprintf(stderr, "result %ld\n", rcgc_gc_collect(rt, 2));
    rcgc_gc_set_debug(rt, 0);
    /* gc.garbage still holds l at shutdown. */
    rcgc_list_clear(saved);
    RCGC_CLEAR(saved);
    rcgc_runtime_free(rt);
}

static void test_debug_messages(void **state)
{
    (void)state;
    int status;
    const char *err = tu_run_child(debug_child, NULL, &status);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_non_null(strstr(err, "gc: collecting generation 2...\n"
                                "gc: objects in each generation: "));
    assert_non_null(strstr(err, "\ngc: objects in permanent generation: 0\n"));
    assert_non_null(strstr(err, "gc: collectable <Plain 0x"));
    assert_non_null(strstr(err, "gc: uncollectable <Legacy 0x"));
    assert_non_null(strstr(err, "gc: done, 3 unreachable, 1 uncollectable, 0.0"));
    assert_non_null(strstr(err, "s elapsed\nresult 3\n"));
    assert_non_null(strstr(err, "gc: 1 uncollectable objects at shutdown; use "
                                "rcgc_gc_set_debug(rt, RCGC_DEBUG_UNCOLLECTABLE) to list them"));
}

static void shutdown_child(void *arg)
{
    int debug = *(int *)arg;
    gc_setup(NULL);
    gnode *l = gn_new(&legacy_type, 3);
    gn_set(l, 0, l);
    gn_drop(l);
    rcgc_list_clear(saved);
    RCGC_CLEAR(saved);
    rcgc_gc_set_debug(rt, debug);
    rcgc_runtime_free(rt);
}

static void test_shutdown_report(void **state)
{
    (void)state;
    int status, debug = RCGC_DEBUG_UNCOLLECTABLE;
    const char *err = tu_run_child(shutdown_child, &debug, &status);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_non_null(strstr(err, "gc: 1 uncollectable objects at shutdown\n      [<Legacy 0x"));
    debug = RCGC_DEBUG_SAVEALL;
    err = tu_run_child(shutdown_child, &debug, &status);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_null(strstr(err, "at shutdown"));
}

static void bad_child(void *arg)
{
    (void)arg;
    gc_setup(NULL);
    gnode *a = (gnode *)rcgc_new(rt, &bad_type);
    gn_set(a, 0, a);
    gn_drop(a);
    rcgc_gc_collect(rt, 2);
}

/* Debug builds name the traverse that visits more than it owns. */
static void test_subtract_underflow_reported(void **state)
{
    (void)state;
#if RCGC_DEBUG >= 2
    int status;
    const char *err = tu_run_child(bad_child, NULL, &status);
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_non_null(strstr(err, "(BadTraverse) visits"));
    assert_non_null(strstr(err, "more times than there are references"));
#else
    (void)bad_child;
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GC_TEST(test_cycle_collected),
        GC_TEST(test_live_ring_untouched),
        GC_TEST(test_big_garbage_by_pool),
        GC_TEST(test_big_garbage_batch_free),
        GC_TEST(test_big_garbage_batch_free_traced),
        GC_TEST(test_big_garbage_batch_free_debug_hooks),
        GC_TEST(test_small_garbage_by_pool),
        GC_TEST(test_garbage_frozen_during_delete),
        GC_TEST(test_small_garbage_batch_free),
        GC_TEST(test_small_garbage_batch_free_traced),
        GC_TEST(test_small_garbage_batch_free_debug_hooks),
        GC_TEST(test_garbage_batch_free_fault_injection),
        GC_TEST(test_reachable_from_outside),
        GC_TEST(test_untracked_container_keeps_alive),
        GC_TEST(test_generations),
        GC_TEST(test_get_count),
        GC_TEST(test_thresholds),
        GC_TEST(test_automatic),
        GC_TEST(test_automatic_trigger),
        GC_TEST(test_long_lived_pending_shrinks),
        GC_TEST(test_finalizers_once),
        GC_TEST(test_resurrection),
        GC_TEST(test_freed_by_finalizer_not_counted),
        GC_TEST(test_freed_chain),
        GC_TEST(test_legacy_uncollectable),
        GC_TEST(test_legacy_freed_by_clear),
        GC_TEST(test_saveall),
        GC_TEST(test_collect_during_collect),
        GC_TEST(test_callbacks),
        GC_TEST(test_referrers_referents),
        GC_TEST(test_freeze),
        GC_TEST(test_enomem_changes_nothing),
        GC_TEST(test_mark_stack_fallback),
        GC_TEST(test_internal_count_saturates),
        GC_TEST(test_pooled_and_foreign_garbage),
        GC_TEST(test_wide_live_tree_full_collection),
        GC_TEST(test_debug_messages),
        GC_TEST(test_shutdown_report),
        GC_TEST(test_subtract_underflow_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
