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
 * n fails) or persistent (n and every later one fail), under the pools, the
 * debug hooks and libc malloc; and once more with an OOM handler that does
 * what handlers are for - it runs a full collection to free memory - and
 * asks for a retry (test_handler_collects).  The RAW memory comes through a
 * checking layer (a cap and a registry of live blocks, see below).
 */
#include <stdint.h>
#include <string.h>

#include "runtime.h"
#include "testutil.h"

/* ----------------------------------------------------------- the harness */

static long oom_calls;
/* Set in the forked children of test_handler_collects: a failure there
 * prints and exits (cmocka's jump back would land in the parent's copy). */
static int in_child;
#define FAIL(...)                                                             \
    do {                                                                      \
        if (in_child) {                                                       \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            _exit(1);                                                         \
        }                                                                     \
        fail_msg(__VA_ARGS__);                                                \
    } while (0)

/* Non-zero: the handler does what handlers are for - it frees memory by
 * running a full collection - and asks for a retry. */
static int handler_collects;

static int count_oom(rcgc_runtime *rt, rcgc_domain d, size_t size, void *arg)
{
    (void)d;
    (void)size;
    (void)arg;
    oom_calls++;
    if (!handler_collects)
        return 0;   /* no retry */
    rcgc_gc_collect(rt, 2);
    return 1;
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
    c.live[RCGC_DOMAIN_MEM] = rcgc_pool_mem_live(rt);   /* derived (M3, pool.h) */
    c.pool_blocks = rcgc_pool_live_blocks(rt);
    return c;
}

static void assert_same(const counts *a, const counts *b, const char *what, long n)
{
    if (a->objects != b->objects || a->pool_blocks != b->pool_blocks ||
        memcmp(a->live, b->live, sizeof a->live) != 0)
        FAIL("%s, failing allocation %ld: leaked: objects %zu -> %zu, pool blocks %zu -> "
                 "%zu, live RAW %ld -> %ld, MEM %ld -> %ld, OBJ %ld -> %ld",
                 what, n, a->objects, b->objects, a->pool_blocks, b->pool_blocks, a->live[0],
                 b->live[0], a->live[1], b->live[1], a->live[2], b->live[2]);
}

/* Every runtime of the harness gets its RAW memory (and, in "malloc" mode,
 * its MEM and OBJ memory) from libc through this checking layer:
 *   - a cap: a scenario that needs more than 256 MiB at once has run away
 *     (an allocating loop that never ends), reported as such instead of
 *     exhausting the machine;
 *   - a registry of the blocks it handed out: realloc or free of a pointer
 *     it does not hold (freed already, stale after a move) is reported at
 *     once, and realloc always moves, so that stale pointers show;
 *   - nothing may be left when the runtime is freed. */
#define CAP_BYTES ((size_t)256 << 20)
static size_t cap_live;
static int cap_hit;
/* The run in progress, for the layer's own reports. */
static const char *run_what = "";
static long run_n;

typedef struct reg_entry {
    void *p;
    size_t n;
} reg_entry;
static reg_entry *reg;
static size_t reg_mask, reg_n;

static size_t reg_slot(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 32;
    return (size_t)x & reg_mask;
}

static void reg_add(void *p, size_t n)
{
    if (reg == NULL || (reg_n + 1) * 2 > reg_mask + 1) {
        size_t ocap = reg ? reg_mask + 1 : 0, ncap = ocap ? ocap * 2 : 1024;
        reg_entry *old = reg;
        reg = calloc(ncap, sizeof *reg);
        if (reg == NULL)
            abort();
        reg_mask = ncap - 1;
        reg_n = 0;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].p)
                reg_add(old[i].p, old[i].n);
        free(old);
    }
    size_t i = reg_slot(p);
    while (reg[i].p)
        i = (i + 1) & reg_mask;
    reg[i] = (reg_entry){p, n};
    reg_n++;
}

/* Remove p; its size, or SIZE_MAX when p is not a live block of ours. */
static size_t reg_take(void *p)
{
    if (reg == NULL)
        return SIZE_MAX;
    size_t i = reg_slot(p);
    while (reg[i].p && reg[i].p != p)
        i = (i + 1) & reg_mask;
    if (reg[i].p == NULL)
        return SIZE_MAX;
    size_t n = reg[i].n;
    /* backward-shift deletion keeps every probe chain unbroken */
    for (size_t j = (i + 1) & reg_mask; reg[j].p; j = (j + 1) & reg_mask) {
        size_t home = reg_slot(reg[j].p);
        if (((j - home) & reg_mask) >= ((j - i) & reg_mask)) {
            reg[i] = reg[j];
            i = j;
        }
    }
    reg[i] = (reg_entry){NULL, 0};
    reg_n--;
    return n;
}

static void *cap_malloc(void *ctx, size_t n)
{
    (void)ctx;
    if (n > CAP_BYTES - cap_live) {
        cap_hit = 1;
        return NULL;
    }
    void *p = malloc(n ? n : 1);
    if (p) {
        cap_live += n;
        reg_add(p, n);
    }
    return p;
}
static void *cap_calloc(void *ctx, size_t a, size_t b)
{
    if (b != 0 && a > SIZE_MAX / b)
        return NULL;
    void *p = cap_malloc(ctx, a * b);
    if (p)
        memset(p, 0, a * b);
    return p;
}
static void cap_free(void *ctx, void *p);
static void *cap_realloc(void *ctx, void *p, size_t n)
{
    if (p == NULL)
        return cap_malloc(ctx, n);
    size_t old = reg_take(p);
    if (old == SIZE_MAX)
        FAIL("%s, failing allocation %ld: realloc(%p) of a RAW block that is not live (freed "
             "already, or a stale pointer to a block that moved)", run_what, run_n, p);
    reg_add(p, old);
    void *q = cap_malloc(ctx, n);
    if (q == NULL)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    cap_free(ctx, p);
    return q;
}
static void cap_free(void *ctx, void *p)
{
    (void)ctx;
    if (p == NULL)
        return;
    size_t n = reg_take(p);
    if (n == SIZE_MAX)
        FAIL("%s, failing allocation %ld: free(%p) of a RAW block that is not live (double "
             "free?)", run_what, run_n, p);
    cap_live -= n;
    free(p);
}

static rcgc_runtime *capped_runtime(const char *mode)
{
    rcgc_config cfg = {.size = sizeof cfg, .malloc_mode = mode};
    rcgc_allocator cap = {NULL, cap_malloc, cap_calloc, cap_realloc, cap_free};
    cfg.allocators[RCGC_DOMAIN_RAW] = cap;
    if (strcmp(mode, "malloc") == 0)
        cfg.allocators[RCGC_DOMAIN_MEM] = cfg.allocators[RCGC_DOMAIN_OBJ] = cap;
    return rcgc_runtime_new(&cfg);
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
            FAIL("%s: still failing after 100000 allocations", what);
        cap_hit = 0;
        rcgc_runtime *rt = capped_runtime(mode);
        if (rt == NULL)
            FAIL("%s: no runtime", what);
        rcgc_set_oom_handler(rt, count_oom, NULL);
        /* Warm up: lazily made tables (weak references, gc.garbage) exist
         * before the baseline is taken. */
        oom_calls = 0;
        if (fn(rt) != RCGC_OK)
            FAIL("%s: fails without injection", what);
        settle(rt);
        counts before = snapshot(rt);

        oom_calls = 0;
        run_what = what;
        run_n = n;
        rcgc_mem_fail_after(rt, n, persistent);
        int rc = fn(rt);
        long failures = rcgc_mem_failures(rt);
        rcgc_mem_fail_after(rt, 0, 0);
        if (cap_hit)
            FAIL("%s, failing allocation %ld: ran away (asked for more than %zu MiB)", what,
                 n, CAP_BYTES >> 20);
        if (failures == 0) {
            if (rc != RCGC_OK)
                FAIL("%s: fails with no allocation failing (%d)", what, rc);
            settle(rt);
            rcgc_runtime_free(rt);
            if (reg_n != 0)
                FAIL("%s: %zu libc blocks left after rcgc_runtime_free", what, reg_n);
            return;   /* the scenario needs fewer than n allocations */
        }
        if (rc != RCGC_OK && oom_calls == 0)
            FAIL("%s, failing allocation %ld: gave up (%s) but the OOM handler was not called",
                 what, n, rcgc_strerror(rc));
        if (rcgc_validate(rt, stderr) != RCGC_OK)
            FAIL("%s, failing allocation %ld: the heap does not validate", what, n);
        settle(rt);
        counts after = snapshot(rt);
        assert_same(&before, &after, what, n);
        if (rcgc_validate(rt, stderr) != RCGC_OK)
            FAIL("%s, failing allocation %ld: the heap does not validate after collecting",
                 what, n);
        /* And the runtime still works. */
        if (fn(rt) != RCGC_OK)
            FAIL("%s, failing allocation %ld: the runtime does not work afterwards", what, n);
        settle(rt);
        rcgc_runtime_free(rt);
        if (reg_n != 0)
            FAIL("%s, failing allocation %ld: %zu libc blocks left after rcgc_runtime_free",
                 what, n, reg_n);
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
    if (n < 81 && !handler_collects)   /* a handler's collection found some */
        FAIL("the collector found %ld unreachable objects, expected 81", n);
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
        FAIL("weakref_list: %zu references", rcgc_list_len(refs));
    CHECK((map = rcgc_weakmap_new(rt)) != NULL);
    CHECK(rcgc_weakmap_set(map, "target", target) == RCGC_OK);
    CHECK((got = rcgc_weakmap_get(map, "target")) == target);
    RCGC_CLEAR(got);
    RCGC_CLEAR(target);
    if (fired != 1 || rcgc_weakref_peek(w1) != NULL || rcgc_weakmap_len(map) != 0)
        FAIL("the weak references did not see the target die");
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
        FAIL("realloc lost the data");
    memset(q, 'b', 2000);
    CHECK((p = rcgc_mem_realloc(rt, q, 64)) != NULL);
    q = NULL;
    if (p[63] != 'b')
        FAIL("realloc lost the data");
    CHECK((r = rcgc_mem_calloc(rt, 30, 20)) != NULL);
    for (int i = 0; i < 600; i++)
        if (r[i] != 0)
            FAIL("calloc gave dirty memory");
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
        FAIL("get_referrers missed the holder");
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

/* Objects that hold no references: never tracked. */
static const rcgc_type leaf_type = {.name = "leaf", .size = sizeof(rcgc_object) + 16};

/* A chain as deep as the trashcan's depth (64) whose innermost node holds a
 * list of more nodes than the pending stack holds: they are all deferred at
 * once, so the stack grows while the chain is freed (and falls back to
 * recursion when it cannot grow). */
static int scen_chain(rcgc_runtime *rt)
{
    int rc = RCGC_ENOMEM;
    tu_node *head = NULL, *n = NULL, *c1 = NULL, *c2 = NULL;
    rcgc_object *o = NULL;
    rcgc_list *wide = rcgc_list_new(rt);
    CHECK(wide != NULL);
    /* more items than the stack holds now (it never shrinks): it grows in
     * every run, the warm-up's included */
    size_t items = rt->obj.cappending + 100;
    for (size_t i = 0; i < items; i++) {
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
    /* garbage for a collection that an OOM handler starts while the chain
     * is being freed (made last: no automatic collection takes it first): a
     * cycle holding untracked objects, which die - and are deferred - when
     * the collector clears the cycle */
    CHECK((c1 = tu_new_node(rt)) != NULL);
    CHECK((c2 = tu_new_node(rt)) != NULL);
    c1->a = rcgc_incref(RCGC_OBJ(c2));
    c2->a = rcgc_incref(RCGC_OBJ(c1));
    CHECK((wide = rcgc_list_new(rt)) != NULL);
    c1->b = RCGC_OBJ(wide);
    wide = NULL;
    for (size_t i = 0; i < items; i++) {
        CHECK((o = rcgc_new(rt, &leaf_type)) != NULL);
        CHECK(rcgc_list_append((rcgc_list *)c1->b, o) == RCGC_OK);
        RCGC_CLEAR(o);
    }
    rc = RCGC_OK;
fail:
    rcgc_xdecref(o);
    rcgc_xdecref(RCGC_OBJ(c1));
    rcgc_xdecref(RCGC_OBJ(c2));
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
        FAIL("weakmap: %zu live entries, expected 120", rcgc_weakmap_len(m));
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        CHECK(rcgc_weakmap_delete(m, key) == RCGC_OK);
    }
    rcgc_list_clear(values);   /* every value dies: the map empties */
    if (rcgc_weakmap_len(m) != 0)
        FAIL("weakmap: %zu entries outlived their values", rcgc_weakmap_len(m));
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

/* Every scenario again with a handler that collects and retries, each in a
 * forked child (a crash there is a failure of this test, not of the run). */
static void run_with_collecting_handler(void *arg)
{
    scenario_fn fn = *(scenario_fn *)arg;
    in_child = 1;
    handler_collects = 1;
    inject_all_modes("collecting handler", fn);
    _exit(0);
}

static void test_handler_collects(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        scenario_fn fn;
        cleanup_fn cleanup;
    } all[] = {
        {"objects and lists", scen_objects, NULL}, {"growing a list", scen_grow, NULL},
        {"cycles", scen_cycles, NULL},             {"weak references", scen_weak, NULL},
        {"rcgc_mem_*", scen_mem, NULL},            {"gc lists", scen_gc_lists, NULL},
        {"long chain", scen_chain, NULL},          {"weak-valued map", scen_weakmap, NULL},
        {"gc.garbage", scen_garbage, clear_garbage},
        {"resurrecting finalizers", scen_resurrect, NULL},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        int status = 0;
        cleanup = all[i].cleanup;
        scenario_fn fn = all[i].fn;
        const char *out = tu_run_child(run_with_collecting_handler, &fn, &status);
        cleanup = NULL;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            const char *cut = strlen(out) > 2000 ? out + strlen(out) - 2000 : out;
            fprintf(stderr, "%s with a collecting OOM handler: child status 0x%x; the end of its "
                    "output:\n%s\n", all[i].name, status, cut);
            failed++;
        }
    }
    if (failed)
        FAIL("%d scenarios break when the OOM handler collects", failed);
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
                        FAIL("%s: creation failed with no allocation failing", modes[m]);
                    if (f.live != 0)
                        FAIL("%s, failing RAW call %ld: creation failed and leaked %ld "
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
                    FAIL("%s: %ld RAW blocks left after rcgc_runtime_free", modes[m], f.live);
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
        cmocka_unit_test(test_finalize),         cmocka_unit_test(test_handler_collects),
        cmocka_unit_test(test_runtime_creation),
        cmocka_unit_test(test_setup_hooks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
