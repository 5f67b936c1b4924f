/*
 * Fault injection (SQLite's and Lua's practice): every scenario is run with
 * allocation number 1, 2, 3, ... failing, until it runs without a failure.
 * After every run that saw an injected failure:
 *   - a scenario that gave up did so because an API call returned NULL or an
 *     error code, and the OOM handler was called;
 *   - the heap validates (rcgc_validate) with whatever the scenario left;
 *   - once the scenario's leftovers are released (and cyclic garbage is
 *     collected), the live object count and every domain's live block count
 *     are back to their values before the run: nothing leaked.
 * Each scenario runs in two modes: the failure is transient (only allocation
 * n fails) or persistent (n and every later one fail), and under the pools
 * and under the debug hooks.
 */
#include <string.h>

#include "runtime.h"
#include "testutil.h"

/* ----------------------------------------------------------- the harness */

static long oom_calls;

static int count_oom(rcgc_runtime *rt, rcgc_domain d, size_t size, void *arg)
{
    (void)rt;
    (void)d;
    (void)size;
    (void)arg;
    oom_calls++;
    return 0;   /* no retry */
}

typedef struct counts {
    size_t objects;
    long live[RCGC_DOMAIN_COUNT];
    size_t pool_blocks;
} counts;

static counts snapshot(rcgc_runtime *rt)
{
    counts c;
    c.objects = rt->obj.live_objects;
    for (int d = 0; d < RCGC_DOMAIN_COUNT; d++)
        c.live[d] = rt->mem.domains[d].live;
    c.pool_blocks = rt->pool.blocks_live;
    return c;
}

static void assert_same(const counts *a, const counts *b, const char *what, long n)
{
    if (a->objects != b->objects || a->pool_blocks != b->pool_blocks ||
        memcmp(a->live, b->live, sizeof a->live) != 0)
        fail_msg("%s, failing allocation %ld: leaked: objects %zu -> %zu, pool blocks %zu -> "
                 "%zu, live RAW %ld -> %ld, MEM %ld -> %ld, OBJ %ld -> %ld",
                 what, n, a->objects, b->objects, a->pool_blocks, b->pool_blocks, a->live[0],
                 b->live[0], a->live[1], b->live[1], a->live[2], b->live[2]);
}

/* A scenario builds things, checks every call, and on the first failure
 * releases what it built and returns the error.  It returns RCGC_OK when all
 * went well (and then has released everything too, except cyclic garbage
 * that a collection frees). */
typedef int (*scenario_fn)(rcgc_runtime *rt);

static void collect_all(rcgc_runtime *rt)
{
    rcgc_gc_collect(rt, 2);
    rcgc_gc_collect(rt, 2);
}

/* What a scenario leaves for later on purpose (gc.garbage): emptied by its
 * cleanup function, which runs with injection off, after a collection. */
typedef void (*cleanup_fn)(rcgc_runtime *rt);
static cleanup_fn cleanup;

static void settle(rcgc_runtime *rt)
{
    collect_all(rt);
    if (cleanup) {
        cleanup(rt);
        collect_all(rt);
    }
}

/* Run `fn` once per failing allocation number until it runs clean. */
static void inject(const char *name, scenario_fn fn, const char *mode, int persistent)
{
    char what[128];
    snprintf(what, sizeof what, "%s (%s, %s)", name, mode, persistent ? "persistent" : "transient");
    for (long n = 1;; n++) {
        if (n > 100000)
            fail_msg("%s: still failing after 100000 allocations", what);
        rcgc_config cfg = {.size = sizeof cfg, .malloc_mode = mode};
        rcgc_runtime *rt = rcgc_runtime_new(&cfg);
        assert_non_null(rt);
        rcgc_set_oom_handler(rt, count_oom, NULL);
        /* Warm up: lazily made tables (weak references, gc.garbage) exist
         * before the baseline is taken. */
        oom_calls = 0;
        if (fn(rt) != RCGC_OK)
            fail_msg("%s: fails without injection", what);
        settle(rt);
        counts before = snapshot(rt);

        oom_calls = 0;
        rcgc_mem_fail_after(rt, n, persistent);
        int rc = fn(rt);
        long failures = rcgc_mem_failures(rt);
        rcgc_mem_fail_after(rt, 0, 0);
        if (failures == 0) {
            if (rc != RCGC_OK)
                fail_msg("%s: fails with no allocation failing (%d)", what, rc);
            rcgc_runtime_free(rt);
            return;   /* the scenario needs fewer than n allocations */
        }
        if (rc != RCGC_OK && oom_calls == 0)
            fail_msg("%s, failing allocation %ld: gave up (%s) but the OOM handler was not "
                     "called", what, n, rcgc_strerror(rc));
        if (rcgc_validate(rt, stderr) != RCGC_OK)
            fail_msg("%s, failing allocation %ld: the heap does not validate", what, n);
        settle(rt);
        counts after = snapshot(rt);
        assert_same(&before, &after, what, n);
        if (rcgc_validate(rt, stderr) != RCGC_OK)
            fail_msg("%s, failing allocation %ld: the heap does not validate after "
                     "collecting", what, n);
        /* And the runtime still works. */
        if (fn(rt) != RCGC_OK)
            fail_msg("%s, failing allocation %ld: the runtime does not work afterwards",
                     what, n);
        rcgc_runtime_free(rt);
    }
}

static void inject_all_modes(const char *name, scenario_fn fn)
{
    static const char *modes[] = {"pymalloc", "debug", "malloc"};
    for (int m = 0; m < 3; m++)
        for (int persistent = 0; persistent < 2; persistent++)
            inject(name, fn, modes[m], persistent);
}

#define CHECK(call)                                                           \
    do {                                                                      \
        if (!(call))                                                          \
            goto fail;                                                        \
    } while (0)

/* ----------------------------------------------------------- scenarios */

static const rcgc_type blob_type = {.name = "blob", .size = sizeof(rcgc_object), .itemsize = 1};

/* Objects and lists: nested lists, pooled and foreign objects. */
static int scen_objects(rcgc_runtime *rt)
{
    int rc = RCGC_ENOMEM;
    rcgc_list *outer = rcgc_list_new(rt), *inner = NULL;
    rcgc_object *o = NULL;
    CHECK(outer != NULL);
    for (int i = 0; i < 60; i++) {
        CHECK((o = RCGC_OBJ(tu_new_node(rt))) != NULL);
        if (i % 7 == 0) {
            CHECK((inner = rcgc_list_new_at(rt, 3, RCGC_HERE)) != NULL);
            CHECK(rcgc_list_append(inner, o) == RCGC_OK);
            CHECK(rcgc_list_append(outer, RCGC_OBJ(inner)) == RCGC_OK);
            RCGC_CLEAR(inner);
        }
        CHECK(rcgc_list_append(outer, o) == RCGC_OK);
        RCGC_CLEAR(o);
    }
    CHECK((o = rcgc_new_var(rt, &blob_type, 3000)) != NULL);   /* above the pools */
    CHECK(rcgc_list_insert(outer, 0, o) == RCGC_OK);
    RCGC_CLEAR(o);
    rc = RCGC_OK;
fail:
    rcgc_xdecref(o);
    rcgc_xdecref(RCGC_OBJ(inner));
    rcgc_xdecref(RCGC_OBJ(outer));
    return rc;
}

/* A list grown to thousands of items (its array moves from the pools to the
 * RAW domain), then shrunk. */
static int scen_grow(rcgc_runtime *rt)
{
    int rc = RCGC_ENOMEM;
    rcgc_list *l = rcgc_list_new(rt);
    rcgc_object *o = NULL;
    CHECK(l != NULL);
    CHECK((o = RCGC_OBJ(tu_new_node(rt))) != NULL);
    for (int i = 0; i < 3000; i++)
        CHECK(rcgc_list_append(l, o) == RCGC_OK);
    for (int i = 0; i < 100; i++)
        CHECK(rcgc_list_insert(l, 0, o) == RCGC_OK);
    while (rcgc_list_len(l) > 10)
        rcgc_decref(rcgc_list_pop(l, rcgc_list_len(l) - 1));
    rc = RCGC_OK;
fail:
    rcgc_xdecref(o);
    rcgc_xdecref(RCGC_OBJ(l));
    return rc;
}

/* Reference cycles, dropped and collected. */
static int scen_cycles(rcgc_runtime *rt)
{
    int rc = RCGC_ENOMEM;
    rcgc_gc_disable(rt);   /* the one collection below finds them all */
    for (int i = 0; i < 40; i++) {
        tu_node *a = tu_new_node(rt), *b = NULL;
        CHECK(a != NULL);
        b = tu_new_node(rt);
        if (b == NULL) {
            rcgc_decref(RCGC_OBJ(a));
            goto fail;
        }
        a->a = rcgc_incref(RCGC_OBJ(b));
        b->a = rcgc_incref(RCGC_OBJ(a));
        rcgc_decref(RCGC_OBJ(a));
        rcgc_decref(RCGC_OBJ(b));
    }
    rcgc_list *self = rcgc_list_new(rt);   /* a list that contains itself */
    CHECK(self != NULL);
    if (rcgc_list_append(self, RCGC_OBJ(self)) != RCGC_OK) {
        rcgc_decref(RCGC_OBJ(self));
        goto fail;
    }
    rcgc_decref(RCGC_OBJ(self));
    rcgc_gc_enable(rt);
    long n = rcgc_gc_collect(rt, 2);
    if (n < 0)
        return (int)n;
    if (n < 81)
        fail_msg("the collector found %ld unreachable objects, expected 81", n);
    return RCGC_OK;
fail:
    rcgc_gc_enable(rt);
    return rc;
}

static int fired;
static void on_death(rcgc_weakref *w, void *arg)
{
    (void)w;
    (void)arg;
    fired++;
}

/* Weak references with callbacks, a weak-valued map. */
static int scen_weak(rcgc_runtime *rt)
{
    int rc = RCGC_ENOMEM;
    rcgc_object *target = NULL, *got = NULL;
    rcgc_weakref *w1 = NULL, *w2 = NULL;
    rcgc_weakmap *map = NULL;
    rcgc_list *refs = NULL;
    fired = 0;
    CHECK((target = RCGC_OBJ(tu_new_node(rt))) != NULL);
    CHECK((w1 = rcgc_weakref_new(target, on_death, NULL)) != NULL);
    CHECK((w2 = rcgc_weakref_new(target, NULL, NULL)) != NULL);
    CHECK((refs = rcgc_weakref_list(target)) != NULL);
    if (rcgc_list_len(refs) != 2)
        fail_msg("weakref_list: %zu references", rcgc_list_len(refs));
    CHECK((map = rcgc_weakmap_new(rt)) != NULL);
    CHECK(rcgc_weakmap_set(map, "target", target) == RCGC_OK);
    CHECK((got = rcgc_weakmap_get(map, "target")) == target);
    RCGC_CLEAR(got);
    RCGC_CLEAR(target);
    if (fired != 1 || rcgc_weakref_peek(w1) != NULL || rcgc_weakmap_len(map) != 0)
        fail_msg("the weak references did not see the target die");
    rc = RCGC_OK;
fail:
    rcgc_xdecref(got);
    rcgc_xdecref(target);
    rcgc_xdecref(RCGC_OBJ(refs));
    rcgc_xdecref(RCGC_OBJ(map));
    rcgc_xdecref(RCGC_OBJ(w1));
    rcgc_xdecref(RCGC_OBJ(w2));
    return rc;
}

/* rcgc_mem_*: malloc, calloc, realloc across the small limit and back; a
 * failed realloc leaves the old block valid. */
static int scen_mem(rcgc_runtime *rt)
{
    int rc = RCGC_ENOMEM;
    char *p = NULL, *q = NULL, *r = NULL, *raw = NULL, *obj = NULL;
    CHECK((p = rcgc_mem_malloc(rt, 100)) != NULL);
    memset(p, 'a', 100);
    CHECK((q = rcgc_mem_realloc(rt, p, 2000)) != NULL);
    p = NULL;
    if (q[99] != 'a')
        fail_msg("realloc lost the data");
    memset(q, 'b', 2000);
    CHECK((p = rcgc_mem_realloc(rt, q, 64)) != NULL);
    q = NULL;
    if (p[63] != 'b')
        fail_msg("realloc lost the data");
    CHECK((r = rcgc_mem_calloc(rt, 30, 20)) != NULL);
    for (int i = 0; i < 600; i++)
        if (r[i] != 0)
            fail_msg("calloc gave dirty memory");
    CHECK((raw = rcgc_raw_malloc(rt, 50)) != NULL);
    CHECK((obj = rcgc_domain_malloc_at(rt, RCGC_DOMAIN_OBJ, 700, RCGC_HERE)) != NULL);
    rc = RCGC_OK;
fail:
    rcgc_mem_free(rt, p);
    rcgc_mem_free(rt, q);
    rcgc_mem_free(rt, r);
    rcgc_raw_free(rt, raw);
    rcgc_domain_free(rt, RCGC_DOMAIN_OBJ, obj);
    return rc;
}

/* gc.get_objects / get_referrers / get_referents build lists. */
static int scen_gc_lists(rcgc_runtime *rt)
{
    int rc = RCGC_ENOMEM;
    rcgc_list *objs = NULL, *refs = NULL, *holder = NULL;
    rcgc_object *n = NULL;
    CHECK((holder = rcgc_list_new(rt)) != NULL);
    CHECK((n = RCGC_OBJ(tu_new_node(rt))) != NULL);
    CHECK(rcgc_list_append(holder, n) == RCGC_OK);
    CHECK((objs = rcgc_gc_get_objects(rt, -1)) != NULL);
    RCGC_CLEAR(objs);
    CHECK((refs = rcgc_gc_get_referrers(rt, &n, 1)) != NULL);
    if (rcgc_list_index(refs, RCGC_OBJ(holder)) < 0)
        fail_msg("get_referrers missed the holder");
    RCGC_CLEAR(refs);
    rcgc_object *h = RCGC_OBJ(holder);
    CHECK((refs = rcgc_gc_get_referents(rt, &h, 1)) != NULL);
    rc = RCGC_OK;
fail:
    rcgc_xdecref(RCGC_OBJ(objs));
    rcgc_xdecref(RCGC_OBJ(refs));
    rcgc_xdecref(n);
    rcgc_xdecref(RCGC_OBJ(holder));
    return rc;
}

/* A chain as deep as the trashcan's depth (64) whose innermost node holds a
 * list of 600 nodes: they are all deferred at once, so the pending stack
 * grows past its initial 256 entries while the chain is freed (and falls
 * back to recursion when it cannot grow). */
static int scen_chain(rcgc_runtime *rt)
{
    int rc = RCGC_ENOMEM;
    tu_node *head = NULL, *n = NULL;
    rcgc_list *wide = rcgc_list_new(rt);
    CHECK(wide != NULL);
    for (int i = 0; i < 600; i++) {
        CHECK((n = tu_new_node(rt)) != NULL);
        CHECK(rcgc_list_append(wide, RCGC_OBJ(n)) == RCGC_OK);
        RCGC_CLEAR(n);
    }
    CHECK((head = tu_new_node(rt)) != NULL);
    head->a = RCGC_OBJ(wide);
    wide = NULL;
    /* 63 nodes above the list: the list is the 64th nested deallocation,
     * the deepest that runs at once, so each item it drops is deferred. */
    for (int i = 0; i < 62; i++) {
        CHECK((n = tu_new_node(rt)) != NULL);
        n->a = RCGC_OBJ(head);
        head = n;
        n = NULL;
    }
    rc = RCGC_OK;
fail:
    rcgc_xdecref(RCGC_OBJ(n));
    rcgc_xdecref(RCGC_OBJ(wide));
    rcgc_xdecref(RCGC_OBJ(head));
    return rc;
}

/* A weak-valued map with many keys (its table and the key copies grow),
 * replaced and deleted entries, values that die. */
static int scen_weakmap(rcgc_runtime *rt)
{
    int rc = RCGC_ENOMEM;
    rcgc_weakmap *m = rcgc_weakmap_new(rt);
    rcgc_list *values = rcgc_list_new(rt);
    rcgc_object *v = NULL;
    CHECK(m != NULL && values != NULL);
    char key[32];
    for (int i = 0; i < 150; i++) {
        CHECK((v = RCGC_OBJ(tu_new_node(rt))) != NULL);
        CHECK(rcgc_list_append(values, v) == RCGC_OK);
        snprintf(key, sizeof key, "key-%d", i % 120);   /* some keys replaced */
        CHECK(rcgc_weakmap_set(m, key, v) == RCGC_OK);
        RCGC_CLEAR(v);
    }
    if (rcgc_weakmap_len(m) != 120)
        fail_msg("weakmap: %zu live entries, expected 120", rcgc_weakmap_len(m));
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        CHECK(rcgc_weakmap_delete(m, key) == RCGC_OK);
    }
    rcgc_list_clear(values);   /* every value dies: the map empties */
    if (rcgc_weakmap_len(m) != 0)
        fail_msg("weakmap: %zu entries outlived their values", rcgc_weakmap_len(m));
    rc = RCGC_OK;
fail:
    rcgc_xdecref(v);
    rcgc_xdecref(RCGC_OBJ(values));
    rcgc_xdecref(RCGC_OBJ(m));
    return rc;
}

/* Collections that fill gc.garbage: DEBUG_SAVEALL, and uncollectable cycles
 * with a legacy finalizer; collector callbacks registered meanwhile. */
typedef struct legacy_node {
    rcgc_object ob;
    rcgc_object *ref;
} legacy_node;

static int legacy_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    legacy_node *n = (legacy_node *)self;
    return n->ref ? visit(n->ref, arg) : 0;
}
static int legacy_clear(rcgc_object *self)
{
    RCGC_CLEAR(((legacy_node *)self)->ref);
    return 0;
}
static void legacy_del(rcgc_object *self)
{
    (void)self;
}
static const rcgc_type legacy_type = {
    .name = "legacy",
    .size = sizeof(legacy_node),
    .traverse = legacy_traverse,
    .clear = legacy_clear,
    .legacy_del = legacy_del,
};

static long gc_callbacks;
static void on_gc(rcgc_runtime *rt, const char *phase, const rcgc_gc_info *info, void *arg)
{
    (void)rt;
    (void)phase;
    (void)info;
    (void)arg;
    gc_callbacks++;
}

/* Break the cycles left in gc.garbage and empty it. */
static void clear_garbage(rcgc_runtime *rt)
{
    rcgc_list *g = rcgc_gc_garbage(rt);
    if (g == NULL)
        return;
    for (size_t i = 0; i < rcgc_list_len(g); i++) {
        rcgc_object *o = rcgc_list_get(g, i);
        if (o->type->clear)
            o->type->clear(o);
    }
    rcgc_list_clear(g);
}

static int scen_garbage(rcgc_runtime *rt)
{
    int rc = RCGC_ENOMEM;
    int cb = 0;
    rcgc_gc_disable(rt);
    CHECK(rcgc_gc_callback_add(rt, on_gc, NULL) == RCGC_OK);
    cb = 1;
    for (int i = 0; i < 30; i++) {
        legacy_node *a = (legacy_node *)rcgc_new(rt, &legacy_type);
        CHECK(a != NULL);
        a->ref = rcgc_incref(RCGC_OBJ(a));   /* uncollectable: goes to gc.garbage */
        rcgc_decref(RCGC_OBJ(a));
        tu_node *n = tu_new_node(rt);
        CHECK(n != NULL);
        n->a = rcgc_incref(RCGC_OBJ(n));
        rcgc_decref(RCGC_OBJ(n));
    }
    long found = rcgc_gc_collect(rt, 2);
    if (found < 0) {
        rc = (int)found;
        goto fail;
    }
    rcgc_gc_set_debug(rt, RCGC_DEBUG_SAVEALL);
    for (int i = 0; i < 30; i++) {
        tu_node *n = tu_new_node(rt);
        if (n == NULL) {
            rcgc_gc_set_debug(rt, 0);
            goto fail;
        }
        n->a = rcgc_incref(RCGC_OBJ(n));
        rcgc_decref(RCGC_OBJ(n));
    }
    found = rcgc_gc_collect(rt, 2);
    rcgc_gc_set_debug(rt, 0);
    if (found < 0) {
        rc = (int)found;
        goto fail;
    }
    rc = RCGC_OK;
fail:
    if (cb)
        rcgc_gc_callback_remove(rt, on_gc, NULL);
    rcgc_gc_enable(rt);
    return rc;
}

/* PEP 442 finalizers that resurrect their object during a collection. */
typedef struct phoenix {
    rcgc_object ob;
    rcgc_object *self;
} phoenix;

static rcgc_list *graveyard;
static int phoenix_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    phoenix *p = (phoenix *)self;
    return p->self ? visit(p->self, arg) : 0;
}
static int phoenix_clear(rcgc_object *self)
{
    RCGC_CLEAR(((phoenix *)self)->self);
    return 0;
}
static void phoenix_finalize(rcgc_object *self)
{
    if (graveyard)
        rcgc_list_append(graveyard, self);   /* may fail: then it dies */
}
static const rcgc_type phoenix_type = {
    .name = "phoenix",
    .size = sizeof(phoenix),
    .traverse = phoenix_traverse,
    .clear = phoenix_clear,
    .finalize = phoenix_finalize,
};

static int scen_resurrect(rcgc_runtime *rt)
{
    int rc = RCGC_ENOMEM;
    rcgc_gc_disable(rt);
    graveyard = rcgc_list_new(rt);
    CHECK(graveyard != NULL);
    for (int i = 0; i < 20; i++) {
        phoenix *p = (phoenix *)rcgc_new(rt, &phoenix_type);
        CHECK(p != NULL);
        p->self = rcgc_incref(RCGC_OBJ(p));
        rcgc_decref(RCGC_OBJ(p));
    }
    long found = rcgc_gc_collect(rt, 2);
    if (found < 0) {
        rc = (int)found;
        goto fail;
    }
    rc = RCGC_OK;
fail:
    if (graveyard) {
        /* the resurrected: break their cycles, drop them */
        for (size_t i = 0; i < rcgc_list_len(graveyard); i++)
            phoenix_clear(rcgc_list_get(graveyard, i));
        rcgc_list *g = graveyard;
        graveyard = NULL;
        rcgc_decref(RCGC_OBJ(g));
    }
    rcgc_gc_enable(rt);
    return rc;
}

static void test_objects(void **state)
{
    (void)state;
    inject_all_modes("objects and lists", scen_objects);
}

static void test_grow(void **state)
{
    (void)state;
    inject_all_modes("growing a list", scen_grow);
}

static void test_cycles(void **state)
{
    (void)state;
    inject_all_modes("cycles", scen_cycles);
}

static void test_weak(void **state)
{
    (void)state;
    inject_all_modes("weak references", scen_weak);
}

static void test_mem(void **state)
{
    (void)state;
    inject_all_modes("rcgc_mem_*", scen_mem);
}

static void test_gc_lists(void **state)
{
    (void)state;
    inject_all_modes("gc lists", scen_gc_lists);
}

static void test_weakmap(void **state)
{
    (void)state;
    inject_all_modes("weak-valued map", scen_weakmap);
}

static void test_garbage(void **state)
{
    (void)state;
    cleanup = clear_garbage;
    inject_all_modes("gc.garbage", scen_garbage);
    cleanup = NULL;
}

static void test_resurrect(void **state)
{
    (void)state;
    inject_all_modes("resurrecting finalizers", scen_resurrect);
}

static int finalized;
static void on_finalize(void *arg)
{
    (void)arg;
    finalized++;
}

/* weakref.finalize under injection: NULL and nothing left behind, or a
 * handle (owned by the runtime until it is freed) that fires once. */
static void test_finalize(void **state)
{
    (void)state;
    for (long n = 1;; n++) {
        rcgc_runtime *rt = rcgc_runtime_new(NULL);
        assert_non_null(rt);
        rcgc_set_oom_handler(rt, count_oom, NULL);
        rcgc_object *o = RCGC_OBJ(tu_new_node(rt));
        assert_non_null(o);
        /* the weak-reference table, made on first use, stays */
        rcgc_weakref *warm = rcgc_weakref_new(o, NULL, NULL);
        assert_non_null(warm);
        rcgc_decref(RCGC_OBJ(warm));
        counts before = snapshot(rt);
        oom_calls = 0;
        finalized = 0;
        rcgc_mem_fail_after(rt, n, 1);
        rcgc_finalizer *f = rcgc_weakref_finalize(o, on_finalize, NULL);
        long failures = rcgc_mem_failures(rt);
        rcgc_mem_fail_after(rt, 0, 0);
        if (f == NULL) {
            assert_true(failures > 0);
            assert_true(oom_calls > 0);
            counts after = snapshot(rt);
            assert_same(&before, &after, "weakref.finalize", n);
        }
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        rcgc_decref(o);
        assert_int_equal(finalized, f != NULL);
        rcgc_runtime_free(rt);
        if (failures == 0)
            break;
    }
}

static void test_chain(void **state)
{
    (void)state;
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    assert_non_null(rt);
    size_t cap = rt->obj.cappending;
    assert_int_equal(scen_chain(rt), RCGC_OK);
    assert_true(rt->obj.cappending > cap);   /* the scenario does grow it */
    rcgc_runtime_free(rt);
    inject_all_modes("long chain", scen_chain);
}

/* -------------------------------------------- creating a runtime itself */

/* A RAW allocator that fails call number `fail_at` (and, persistent, every
 * later one) and counts its live blocks. */
typedef struct failing {
    long calls, fail_at, live;
    int persistent;
} failing;

static int should_fail(failing *f)
{
    f->calls++;
    return f->fail_at != 0 && (f->calls == f->fail_at || (f->persistent && f->calls > f->fail_at));
}
static void *f_malloc(void *ctx, size_t n)
{
    failing *f = ctx;
    if (should_fail(f))
        return NULL;
    void *p = malloc(n ? n : 1);
    f->live += p != NULL;
    return p;
}
static void *f_calloc(void *ctx, size_t a, size_t b)
{
    failing *f = ctx;
    if (should_fail(f))
        return NULL;
    void *p = calloc(a ? a : 1, b ? b : 1);
    f->live += p != NULL;
    return p;
}
static void *f_realloc(void *ctx, void *p, size_t n)
{
    failing *f = ctx;
    if (should_fail(f))
        return NULL;
    void *q = realloc(p, n ? n : 1);
    f->live += q != NULL && p == NULL;
    return q;
}
static void f_free(void *ctx, void *p)
{
    failing *f = ctx;
    f->live -= p != NULL;
    free(p);
}

static void test_runtime_creation(void **state)
{
    (void)state;
    static const char *modes[] = {"pymalloc", "debug", "malloc", "malloc_debug"};
    for (int m = 0; m < 4; m++) {
        for (int persistent = 0; persistent < 2; persistent++) {
            for (long n = 1;; n++) {
                assert_true(n < 1000);
                failing f = {0, n, 0, persistent};
                rcgc_config cfg = {.size = sizeof cfg, .malloc_mode = modes[m]};
                cfg.allocators[RCGC_DOMAIN_RAW] =
                    (rcgc_allocator){&f, f_malloc, f_calloc, f_realloc, f_free};
                rcgc_runtime *rt = rcgc_runtime_new(&cfg);
                if (rt == NULL) {
                    if (f.calls < n)
                        fail_msg("%s: creation failed with no allocation failing", modes[m]);
                    if (f.live != 0)
                        fail_msg("%s, failing RAW call %ld: creation failed and leaked %ld "
                                 "blocks", modes[m], n, f.live);
                    continue;
                }
                /* Created (perhaps after a failure it could absorb): it works,
                 * and gives every block back when freed.  Keep the RAW
                 * allocator failing as configured. */
                int clean = f.calls < n;
                f.fail_at = 0;
                assert_int_equal(scen_objects(rt), RCGC_OK);
                assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
                rcgc_runtime_free(rt);
                if (f.live != 0)
                    fail_msg("%s: %ld RAW blocks left after rcgc_runtime_free", modes[m], f.live);
                if (clean)
                    break;
            }
        }
    }
}

/* The debug hooks installed on a runtime in use, with the move of the
 * trashcan stack failing. */
static void test_setup_hooks(void **state)
{
    (void)state;
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    assert_non_null(rt);
    rcgc_set_oom_handler(rt, count_oom, NULL);
    assert_int_equal(scen_objects(rt), RCGC_OK);
    counts before = snapshot(rt);
    oom_calls = 0;
    rcgc_mem_fail_after(rt, 1, 1);
    assert_int_equal(rcgc_mem_setup_debug_hooks(rt), RCGC_ENOMEM);
    rcgc_mem_fail_after(rt, 0, 0);
    assert_int_equal(oom_calls, 1);
    assert_false(rcgc_mem_debug_hooks_enabled(rt));
    counts after = snapshot(rt);
    assert_same(&before, &after, "setup_debug_hooks", 1);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    assert_int_equal(rcgc_mem_setup_debug_hooks(rt), RCGC_OK);
    assert_int_equal(scen_objects(rt), RCGC_OK);
    assert_int_equal(scen_cycles(rt), RCGC_OK);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_runtime_free(rt);
}

int main(void)
{
    unsetenv("RCGC_MALLOC");
    unsetenv("RCGC_TRACEMALLOC");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_objects),          cmocka_unit_test(test_grow),
        cmocka_unit_test(test_cycles),           cmocka_unit_test(test_weak),
        cmocka_unit_test(test_mem),              cmocka_unit_test(test_gc_lists),
        cmocka_unit_test(test_chain),            cmocka_unit_test(test_weakmap),
        cmocka_unit_test(test_garbage),          cmocka_unit_test(test_resurrect),
        cmocka_unit_test(test_finalize),         cmocka_unit_test(test_runtime_creation),
        cmocka_unit_test(test_setup_hooks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
