/*
 * The allocator-domain suite shared by test_domains_{glibc,mimalloc,jemalloc}
 * (one executable per allocator: mimalloc and jemalloc replace malloc in
 * the process that links them).  Each test file defines `peer`, an
 * rcgc_allocator over its allocator's own API, and calls domains_main().
 *
 * The suite routes the OBJ and MEM domains (and RAW) through the peer, by
 * rcgc_config.allocators and by rcgc_mem_set_allocator, with and without
 * the debug hooks, and shows that everything still works: objects, lists,
 * cycles collected, weak references, rcgc_getsizeof, rcgc_validate, and a
 * runtime free that gives every block back to the peer.  A counting layer
 * between rcgc and the peer proves the blocks really come from it.
 */
#ifndef RCGC_TEST_DOMAINS_H
#define RCGC_TEST_DOMAINS_H

#include <string.h>

#include "runtime.h"
#include "testutil.h"

/* Supplied by the test file. */
static const char *peer_name;
static rcgc_allocator peer;

/* ------------------------------------------------------- counting layer */

typedef struct counting {
    long live;      /* blocks handed out and not freed */
    long allocs;    /* calls that returned a new block */
} counting;

static counting counters[RCGC_DOMAIN_COUNT];

static void *c_malloc(void *ctx, size_t n)
{
    counting *c = ctx;
    void *p = peer.malloc(peer.ctx, n);
    if (p) {
        c->live++;
        c->allocs++;
    }
    return p;
}
static void *c_calloc(void *ctx, size_t a, size_t b)
{
    counting *c = ctx;
    void *p = peer.calloc(peer.ctx, a, b);
    if (p) {
        c->live++;
        c->allocs++;
    }
    return p;
}
static void *c_realloc(void *ctx, void *p, size_t n)
{
    counting *c = ctx;
    void *q = peer.realloc(peer.ctx, p, n);
    if (q && !p) {
        c->live++;
        c->allocs++;
    }
    return q;
}
static void c_free(void *ctx, void *p)
{
    counting *c = ctx;
    if (p)
        c->live--;
    peer.free(peer.ctx, p);
}

static rcgc_allocator counted(rcgc_domain d)
{
    memset(&counters[d], 0, sizeof counters[d]);
    rcgc_allocator a = {&counters[d], c_malloc, c_calloc, c_realloc, c_free};
    return a;
}

/* ------------------------------------------------------------ workload */

static int callbacks;
static void on_death(rcgc_weakref *w, void *arg)
{
    (void)w;
    (void)arg;
    callbacks++;
}

/* Objects must come from the peer: a new one is one more OBJ block from it
 * (live counts may also drop: rcgc_new can start a collection). */
static tu_node *peer_node(rcgc_runtime *rt)
{
    long before = counters[RCGC_DOMAIN_OBJ].allocs;
    tu_node *n = tu_new_node(rt);
    assert_non_null(n);
    assert_int_equal(counters[RCGC_DOMAIN_OBJ].allocs, before + 1);
    rcgc_object *o = RCGC_OBJ(n);
    assert_true(o->flags & RCGC_OF_FOREIGN);   /* not a pool block */
    assert_false(rcgc_mem_is_pool_address(o));
    /* header, payload and the 32-byte prefix of objects outside the pools */
    assert_int_equal(rcgc_getsizeof(o), sizeof(tu_node) + sizeof(rcgc_foreign));
    if (rt->mem.debug_hooks)
        assert_int_equal(((unsigned char *)rcgc_obj_block(o))[-8], 'o');
    return n;
}

static void workload(rcgc_runtime *rt, int mem_from_peer)
{
    /* a list of nodes, growing (its items array lives in MEM) */
    long mem_before = counters[RCGC_DOMAIN_MEM].allocs;
    rcgc_list *l = rcgc_list_new(rt);
    assert_non_null(l);
    for (int i = 0; i < 500; i++) {
        tu_node *n = peer_node(rt);
        n->value = i;
        assert_int_equal(rcgc_list_append(l, RCGC_OBJ(n)), RCGC_OK);
        rcgc_decref(RCGC_OBJ(n));
    }
    assert_int_equal(rcgc_list_len(l), 500);
    assert_int_equal(((tu_node *)rcgc_list_get(l, 499))->value, 499);
    if (mem_from_peer)
        assert_true(counters[RCGC_DOMAIN_MEM].allocs > mem_before);

    /* rcgc_mem_* from the peer */
    char *p = rcgc_mem_malloc(rt, 100);
    assert_non_null(p);
    assert_false(mem_from_peer && rcgc_mem_is_pool_address(p));
    memset(p, 7, 100);
    p = rcgc_mem_realloc(rt, p, 5000);
    assert_non_null(p);
    assert_int_equal(p[99], 7);
    rcgc_mem_free(rt, p);

    /* cycles, one of them watched by a weak reference */
    rcgc_weakref *w = NULL;
    callbacks = 0;
    rcgc_gc_disable(rt);   /* the collection below finds every cycle */
    for (int i = 0; i < 100; i++) {
        tu_node *a = peer_node(rt), *b = peer_node(rt);
        a->a = rcgc_incref(RCGC_OBJ(b));
        b->a = rcgc_incref(RCGC_OBJ(a));
        if (i == 0) {
            w = rcgc_weakref_new(RCGC_OBJ(a), on_death, NULL);
            assert_non_null(w);
        }
        rcgc_decref(RCGC_OBJ(a));
        rcgc_decref(RCGC_OBJ(b));
    }
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_gc_enable(rt);
    long live = counters[RCGC_DOMAIN_OBJ].live;
    long found = rcgc_gc_collect(rt, 2);
    assert_int_equal(counters[RCGC_DOMAIN_OBJ].live, live - 200);   /* back to the peer */
    assert_true(found >= 200);
    assert_int_equal(callbacks, 1);
    assert_null(rcgc_weakref_peek(w));
    rcgc_decref(RCGC_OBJ(w));
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);

    rcgc_decref(RCGC_OBJ(l));
    assert_int_equal(rt->obj.live_objects, 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
}

/* After rcgc_runtime_free, the peer got every block back. */
static void assert_all_returned(void)
{
    for (int d = 0; d < RCGC_DOMAIN_COUNT; d++)
        if (counters[d].live != 0)
            fail_msg("%s: %ld blocks of domain %d not returned", peer_name, counters[d].live, d);
}

/* ---------------------------------------------------------------- tests */

/* OBJ and MEM through the peer, given at creation. */
static void test_config(void **state)
{
    (void)state;
    rcgc_config cfg = {.size = sizeof cfg, .malloc_mode = "pymalloc"};
    cfg.allocators[RCGC_DOMAIN_OBJ] = counted(RCGC_DOMAIN_OBJ);
    cfg.allocators[RCGC_DOMAIN_MEM] = counted(RCGC_DOMAIN_MEM);
    rcgc_runtime *rt = rcgc_runtime_new(&cfg);
    assert_non_null(rt);
    workload(rt, 1);
    rcgc_runtime_free(rt);
    assert_true(counters[RCGC_DOMAIN_OBJ].allocs >= 700);
    assert_all_returned();
}

/* All three domains through the peer, the runtime struct included. */
static void test_config_all(void **state)
{
    (void)state;
    rcgc_config cfg = {.size = sizeof cfg, .malloc_mode = "pymalloc"};
    for (int d = 0; d < RCGC_DOMAIN_COUNT; d++)
        cfg.allocators[d] = counted((rcgc_domain)d);
    rcgc_runtime *rt = rcgc_runtime_new(&cfg);
    assert_non_null(rt);
    assert_true(counters[RCGC_DOMAIN_RAW].live >= 2);   /* the runtime, its trashcan stack */
    workload(rt, 1);
    rcgc_runtime_free(rt);
    assert_all_returned();
}

/* Switched with rcgc_mem_set_allocator while the domains are empty, and
 * back to the pools. */
static void test_set_allocator(void **state)
{
    (void)state;
    rcgc_config cfg = {.size = sizeof cfg, .malloc_mode = "pymalloc"};
    rcgc_runtime *rt = rcgc_runtime_new(&cfg);
    assert_non_null(rt);
    rcgc_object *pooled = RCGC_OBJ(tu_new_node(rt));
    rcgc_allocator obj = counted(RCGC_DOMAIN_OBJ), mem = counted(RCGC_DOMAIN_MEM);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_OBJ, &obj), RCGC_ESTATE);
    rcgc_decref(pooled);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_OBJ, &obj), RCGC_OK);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &mem), RCGC_OK);
    rcgc_allocator got;
    rcgc_mem_get_allocator(rt, RCGC_DOMAIN_OBJ, &got);
    assert_ptr_equal(got.ctx, &counters[RCGC_DOMAIN_OBJ]);
    workload(rt, 1);
    assert_int_equal(counters[RCGC_DOMAIN_OBJ].live, 0);

    rcgc_allocator pools;
    rcgc_mem_get_pool_allocator(rt, &pools);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_OBJ, &pools), RCGC_OK);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &pools), RCGC_OK);
    rcgc_object *o = RCGC_OBJ(tu_new_node(rt));
    assert_true(rcgc_mem_is_pool_address(o));
    rcgc_decref(o);
    rcgc_runtime_free(rt);
    assert_all_returned();
}

/* Under the debug hooks (RCGC_MALLOC=debug and malloc_debug): the hooks
 * wrap the peer; their layout is in every block. */
static void test_debug_hooks(void **state)
{
    (void)state;
    const char *modes[] = {"debug", "malloc_debug"};
    for (int m = 0; m < 2; m++) {
        setenv("RCGC_MALLOC", modes[m], 1);
        rcgc_config cfg = {.size = sizeof cfg};
        cfg.allocators[RCGC_DOMAIN_OBJ] = counted(RCGC_DOMAIN_OBJ);
        cfg.allocators[RCGC_DOMAIN_MEM] = counted(RCGC_DOMAIN_MEM);
        rcgc_runtime *rt = rcgc_runtime_new(&cfg);
        unsetenv("RCGC_MALLOC");
        assert_non_null(rt);
        assert_true(rcgc_mem_debug_hooks_enabled(rt));
        workload(rt, 1);
        rcgc_runtime_free(rt);
        assert_all_returned();
    }
    /* hooks first, peer later: they stay on */
    rcgc_config cfg = {.size = sizeof cfg, .malloc_mode = "debug"};
    rcgc_runtime *rt = rcgc_runtime_new(&cfg);
    assert_non_null(rt);
    rcgc_allocator obj = counted(RCGC_DOMAIN_OBJ), mem = counted(RCGC_DOMAIN_MEM);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_OBJ, &obj), RCGC_OK);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &mem), RCGC_OK);
    assert_true(rcgc_mem_debug_hooks_enabled(rt));
    workload(rt, 1);
    rcgc_runtime_free(rt);
    assert_all_returned();
}

/* An overflow of a block from the peer is reported like any other. */
static void exit_on_fatal(const char *message, void *arg)
{
    (void)message;
    (void)arg;
    _exit(77);
}

static void child_overflow(void *arg)
{
    (void)arg;
    rcgc_set_fatal_handler(exit_on_fatal, NULL);
    rcgc_config cfg = {.size = sizeof cfg, .malloc_mode = "debug"};
    cfg.allocators[RCGC_DOMAIN_MEM] = counted(RCGC_DOMAIN_MEM);
    rcgc_runtime *rt = rcgc_runtime_new(&cfg);
    unsigned char *p = rcgc_mem_malloc(rt, 30);
    p[30] = 'x';
    rcgc_mem_free(rt, p);
    _exit(0);
}

static void test_overflow_report(void **state)
{
    (void)state;
    int status;
    const char *out = tu_run_child(child_overflow, NULL, &status);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 77);
    assert_non_null(strstr(out, "    30 bytes originally requested\n"));
    assert_non_null(strstr(out, "        at tail+0: 0x78 *** OUCH\n"));
    assert_non_null(strstr(out, "rcgc fatal error: debug_free: bad trailing pad byte\n"));
}

static int domains_main(void)
{
    unsetenv("RCGC_MALLOC");
    unsetenv("RCGC_TRACEMALLOC");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),       cmocka_unit_test(test_config_all),
        cmocka_unit_test(test_set_allocator), cmocka_unit_test(test_debug_hooks),
        cmocka_unit_test(test_overflow_report),
    };
    return cmocka_run_group_tests_name(peer_name, tests, NULL, NULL);
}

#endif
