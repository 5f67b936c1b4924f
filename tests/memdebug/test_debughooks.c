/*
 * The debug hooks (src/debughooks.c): CPython 3.11's block layout and fill
 * bytes, and the fatal report for each kind of misuse they catch, compared
 * line by line with the text CPython prints (PYTHONMALLOC=debug).
 *
 * Every misuse runs in a forked child whose stderr is captured; the child
 * prints the addresses the report will name first ("ADDR p=... tail=..."),
 * so the parent can build the exact expected text.
 */
#include <stdint.h>
#include <signal.h>
#include <string.h>

#include "rcgc_tracemalloc.h"
#include "runtime.h"
#include "testutil.h"

static rcgc_runtime *new_runtime(const char *mode)
{
    rcgc_config cfg = {.size = sizeof cfg, .malloc_mode = mode};
    rcgc_runtime *rt = rcgc_runtime_new(&cfg);
    assert_non_null(rt);
    return rt;
}

/* The value after "key=" in the child's "ADDR ..." line. */
static void *addr_of(const char *out, const char *key)
{
    const char *line = strstr(out, "ADDR ");
    assert_non_null(line);
    char pat[32];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *at = strstr(line, pat);
    assert_non_null(at);
    return (void *)(uintptr_t)strtoull(at + strlen(pat), NULL, 16);
}

static void assert_contains(const char *out, const char *needle)
{
    if (strstr(out, needle) == NULL) {
        fprintf(stderr, "--- expected to find:\n%s\n--- in:\n%s\n", needle, out);
        fail_msg("text not found in the report");
    }
}

/* The report's lines for a block with its 7 leading pads intact. */
static void expect_header(char *buf, size_t cap, const void *p, char api, size_t n)
{
    snprintf(buf, cap,
             "Debug memory block at address p=%p: API '%c'\n"
             "    %zu bytes originally requested\n"
             "    The 7 pad bytes at p-7 are FORBIDDENBYTE, as expected.\n",
             p, api, n);
}

/* ------------------------------------------------------------ layout */

static void check_block(const uint8_t *p, char api, size_t n, uint8_t fill)
{
    for (int i = 0; i < 8; i++)   /* big-endian size */
        assert_int_equal(p[-16 + i], (uint8_t)(n >> (8 * (7 - i))));
    assert_int_equal(p[-8], (uint8_t)api);
    for (int i = -7; i < 0; i++)
        assert_int_equal(p[i], 0xFD);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i], fill);
    for (size_t i = n; i < n + 8; i++)
        assert_int_equal(p[i], 0xFD);
}

static void test_layout(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_runtime("debug");
    assert_true(rcgc_mem_debug_hooks_enabled(rt));
    assert_int_equal(rt->mem.debug_pre, 16);
    assert_int_equal(rt->mem.debug_post, 8);

    uint8_t *m = rcgc_mem_malloc(rt, 20);
    check_block(m, 'm', 20, 0xCD);
    uint8_t *big = rcgc_mem_malloc(rt, 3000);   /* above the pools: RAW base */
    check_block(big, 'm', 3000, 0xCD);
    uint8_t *r = rcgc_raw_malloc(rt, 7);
    check_block(r, 'r', 7, 0xCD);
    uint8_t *z = rcgc_mem_calloc(rt, 5, 3);
    check_block(z, 'm', 15, 0x00);
    uint8_t *o = rcgc_domain_malloc_at(rt, RCGC_DOMAIN_OBJ, 0, RCGC_HERE);
    check_block(o, 'o', 0, 0);
    uint8_t *zero = rcgc_mem_malloc(rt, 0);
    check_block(zero, 'm', 0, 0);

    /* realloc keeps the data, marks new bytes clean, and always moves (a
     * stale pointer to the old block is then a write after free). */
    memset(m, 'a', 20);
    uint8_t *m2 = rcgc_mem_realloc(rt, m, 40);
    assert_ptr_not_equal(m2, m);
    assert_int_equal(m2[-8], 'm');
    for (int i = 0; i < 20; i++)
        assert_int_equal(m2[i], 'a');
    for (int i = 20; i < 40; i++)
        assert_int_equal(m2[i], 0xCD);
    assert_int_equal(m2[40], 0xFD);
    uint8_t *m3 = rcgc_mem_realloc(rt, m2, 4);
    check_block(m3, 'm', 4, 'a');

    /* an object: the OBJ API id in front of its header */
    rcgc_object *obj = RCGC_OBJ(tu_new_node(rt));
    assert_false(obj->flags & RCGC_OF_FOREIGN);
    assert_int_equal(((uint8_t *)obj)[-8], 'o');
    assert_int_equal(((uint8_t *)obj)[sizeof(tu_node)], 0xFD);
    /* getsizeof: the size class minus the hooks' 24 bytes */
    assert_int_equal(rcgc_getsizeof(obj), 64 - 24);
    rcgc_mem_debug_check(rt, RCGC_DOMAIN_OBJ, obj);
    rcgc_decref(obj);

    rcgc_mem_free(rt, m3);
    rcgc_mem_free(rt, big);
    rcgc_raw_free(rt, r);
    rcgc_mem_free(rt, z);
    rcgc_domain_free(rt, RCGC_DOMAIN_OBJ, o);
    rcgc_mem_free(rt, zero);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_runtime_free(rt);
}

/* A freed pool block is DEADBYTE from its id byte to its end (the pool's
 * free-list link takes the size field); an object keeps its freed-type mark. */
static void test_dead_fill(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_runtime("debug");
    uint8_t *keep = rcgc_mem_malloc(rt, 24);   /* keeps the pool in use */
    uint8_t *p = rcgc_mem_malloc(rt, 24);
    rcgc_mem_free(rt, p);
    for (int i = -8; i < 24 + 8; i++)
        assert_int_equal(p[i], 0xDD);

    rcgc_object *hold = RCGC_OBJ(tu_new_node(rt));
    rcgc_object *obj = RCGC_OBJ(tu_new_node(rt));
    rcgc_decref(obj);
    assert_ptr_equal(obj->type, RCGC_FREED_TYPE);
    assert_int_equal(obj->refcnt, 0xDDDDDDDDu);
    assert_int_equal(((uint8_t *)obj)[-8], 0xDD);
    /* reused at once (LIFO free list): the mark is not a write after free */
    rcgc_object *again = RCGC_OBJ(tu_new_node(rt));
    assert_ptr_equal(again, obj);
    rcgc_decref(again);
    rcgc_decref(hold);
    rcgc_mem_free(rt, keep);
    rcgc_runtime_free(rt);
}

/* RCGC_MALLOC's values switch the hooks on or leave them off. */
static void test_modes(void **state)
{
    (void)state;
    static const struct {
        const char *mode;
        int hooks;
        int foreign;
    } cases[] = {
        {"debug", 1, 0}, {"pymalloc_debug", 1, 0}, {"malloc_debug", 1, 1},
        {"pymalloc", 0, 0}, {"malloc", 0, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("RCGC_MALLOC", cases[i].mode, 1);
        rcgc_runtime *rt = rcgc_runtime_new(NULL);
        unsetenv("RCGC_MALLOC");
        assert_non_null(rt);
        assert_int_equal(rcgc_mem_debug_hooks_enabled(rt), cases[i].hooks);
        rcgc_object *o = RCGC_OBJ(tu_new_node(rt));
        assert_int_equal(!!(o->flags & RCGC_OF_FOREIGN), cases[i].foreign);
        uint8_t *block = rcgc_obj_block(o);
        if (cases[i].hooks)
            assert_int_equal(block[-8], 'o');
        uint8_t *p = rcgc_mem_malloc(rt, 100);
        if (cases[i].hooks)
            check_block(p, 'm', 100, 0xCD);
        rcgc_mem_free(rt, p);
        rcgc_decref(o);
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        rcgc_runtime_free(rt);
    }
}

/* Everything works under the hooks: objects, lists, chains, sizes. */
static void run_workload(rcgc_runtime *rt)
{
    rcgc_list *l = rcgc_list_new(rt);
    assert_non_null(l);
    for (int i = 0; i < 3000; i++) {
        tu_node *n = tu_new_node(rt);
        assert_non_null(n);
        n->value = i;
        if (i > 0)
            n->a = rcgc_incref(rcgc_list_get(l, (size_t)(i - 1)));
        assert_int_equal(rcgc_list_append(l, RCGC_OBJ(n)), RCGC_OK);
        rcgc_decref(RCGC_OBJ(n));
    }
    /* a variable-size object bigger than a pool block */
    static const rcgc_type blob = {.name = "blob", .size = sizeof(rcgc_object), .itemsize = 1};
    rcgc_object *b = rcgc_new_var(rt, &blob, 2000);
    assert_non_null(b);
    assert_true(b->flags & RCGC_OF_FOREIGN);
    assert_true(rcgc_getsizeof(b) >= 2000);
    rcgc_mem_debug_check(rt, RCGC_DOMAIN_OBJ, rcgc_obj_block(b));
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_decref(b);
    rcgc_decref(RCGC_OBJ(l));
    assert_int_equal(rt->obj.live_objects, 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
}

static void test_workload(void **state)
{
    (void)state;
    const char *modes[] = {"debug", "malloc_debug"};
    for (int i = 0; i < 2; i++) {
        rcgc_runtime *rt = new_runtime(modes[i]);
        run_workload(rt);
        rcgc_runtime_free(rt);
    }
}

/* rcgc_mem_setup_debug_hooks on a runtime in use: only when MEM and OBJ are
 * empty; rcgc's own RAW block (the trashcan stack) moves to the new layout. */
static void test_setup_later(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_runtime("pymalloc");
    assert_false(rcgc_mem_debug_hooks_enabled(rt));
    run_workload(rt);   /* leaves empty arenas with used pools behind */

    void *p = rcgc_mem_malloc(rt, 10);
    assert_int_equal(rcgc_mem_setup_debug_hooks(rt), RCGC_ESTATE);
    rcgc_mem_free(rt, p);
    rcgc_object *o = RCGC_OBJ(tu_new_node(rt));
    assert_int_equal(rcgc_mem_setup_debug_hooks(rt), RCGC_ESTATE);
    rcgc_decref(o);
    assert_false(rcgc_mem_debug_hooks_enabled(rt));

    /* out of memory while moving the trashcan stack: nothing changes */
    void *old_pending = rt->obj.pending;
    long raw_live = rt->mem.domains[RCGC_DOMAIN_RAW].live;
    rcgc_mem_fail_after(rt, 1, 0);
    assert_int_equal(rcgc_mem_setup_debug_hooks(rt), RCGC_ENOMEM);
    rcgc_mem_fail_after(rt, 0, 0);
    assert_false(rcgc_mem_debug_hooks_enabled(rt));
    assert_ptr_equal(rt->obj.pending, old_pending);
    assert_int_equal(rt->mem.domains[RCGC_DOMAIN_RAW].live, raw_live);
    assert_int_equal(rt->mem.debug_pre, 0);

    assert_int_equal(rcgc_mem_setup_debug_hooks(rt), RCGC_OK);
    assert_true(rcgc_mem_debug_hooks_enabled(rt));
    assert_int_equal(rcgc_mem_setup_debug_hooks(rt), RCGC_OK);   /* idempotent */
    assert_int_equal(rt->mem.domains[RCGC_DOMAIN_RAW].live, raw_live);
    check_block((uint8_t *)rt->obj.pending, 'r', rt->obj.cappending * sizeof(void *),
                ((uint8_t *)rt->obj.pending)[0]);
    rcgc_mem_debug_check(rt, RCGC_DOMAIN_RAW, rt->obj.pending);
    run_workload(rt);
    rcgc_runtime_free(rt);
}

/* rcgc_mem_set_allocator with the hooks on: they stay on, around the new
 * allocator. */
static void test_set_allocator_keeps_hooks(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_runtime("debug");
    rcgc_allocator libc, current;
    rcgc_mem_get_libc_allocator(&libc);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_OBJ, &libc), RCGC_OK);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &libc), RCGC_OK);
    assert_true(rcgc_mem_debug_hooks_enabled(rt));
    rcgc_object *o = RCGC_OBJ(tu_new_node(rt));
    assert_true(o->flags & RCGC_OF_FOREIGN);   /* not from the pools any more */
    assert_false(rcgc_mem_is_pool_address(o));
    uint8_t *block = rcgc_obj_block(o);
    assert_int_equal(block[-8], 'o');
    uint8_t *p = rcgc_mem_malloc(rt, 33);
    check_block(p, 'm', 33, 0xCD);
    assert_false(rcgc_mem_is_pool_address(p));
    /* not while the domain holds blocks */
    rcgc_allocator pools;
    rcgc_mem_get_pool_allocator(rt, &pools);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &pools), RCGC_ESTATE);
    rcgc_mem_free(rt, p);
    rcgc_decref(o);
    /* the hooks themselves cannot become the base */
    rcgc_mem_get_allocator(rt, RCGC_DOMAIN_MEM, &current);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &current), RCGC_EINVAL);
    /* back to the pools, still hooked */
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &pools), RCGC_OK);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_OBJ, &pools), RCGC_OK);
    p = rcgc_mem_malloc(rt, 33);
    assert_true(rcgc_mem_is_pool_address(p));
    check_block(p, 'm', 33, 0xCD);
    rcgc_mem_free(rt, p);
    run_workload(rt);
    rcgc_runtime_free(rt);
}

/* A user allocator that wraps rcgc's pools: objects get the foreign prefix
 * but live in pool blocks, and a freed one's mark sits behind the prefix. */
static rcgc_allocator pools_inner;
static void *wp_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return pools_inner.malloc(pools_inner.ctx, n);
}
static void *wp_calloc(void *ctx, size_t a, size_t b)
{
    (void)ctx;
    return pools_inner.calloc(pools_inner.ctx, a, b);
}
static void *wp_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return pools_inner.realloc(pools_inner.ctx, p, n);
}
static void wp_free(void *ctx, void *p)
{
    (void)ctx;
    pools_inner.free(pools_inner.ctx, p);
}

static void test_wrapped_pools(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_runtime("debug");
    rcgc_mem_get_pool_allocator(rt, &pools_inner);
    rcgc_allocator wrap = {NULL, wp_malloc, wp_calloc, wp_realloc, wp_free};
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_OBJ, &wrap), RCGC_OK);
    rcgc_object *hold = RCGC_OBJ(tu_new_node(rt));
    rcgc_object *o = RCGC_OBJ(tu_new_node(rt));
    assert_true(o->flags & RCGC_OF_FOREIGN);
    assert_true(rcgc_mem_is_pool_address(rcgc_obj_block(o)));
    rcgc_decref(o);
    assert_ptr_equal(o->type, RCGC_FREED_TYPE);
    rcgc_object *again = RCGC_OBJ(tu_new_node(rt));   /* same block: no false alarm */
    assert_ptr_equal(again, o);
    rcgc_decref(again);
    rcgc_decref(hold);
    run_workload(rt);
    rcgc_runtime_free(rt);
}

/* The hooks stay the innermost wrapper: tracemalloc wraps them, and leaves
 * them in place when it stops.  Installing them under a running tracer is
 * refused (the tracer holds the old base). */
static void test_with_tracemalloc(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_runtime("debug");
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    rcgc_allocator cur;
    rcgc_mem_get_allocator(rt, RCGC_DOMAIN_MEM, &cur);
    assert_false(rcgc_debughooks_is_hooks(&cur));   /* the tracer is outermost */
    uint8_t *p = rcgc_mem_malloc(rt, 12);
    check_block(p, 'm', 12, 0xCD);
    size_t traced = 0;
    rcgc_tracemalloc_get_traced_memory(rt, &traced, NULL);
    assert_true(traced >= 12);
    rcgc_mem_free(rt, p);
    run_workload(rt);
    rcgc_tracemalloc_stop(rt);
    rcgc_mem_get_allocator(rt, RCGC_DOMAIN_MEM, &cur);
    assert_true(rcgc_debughooks_is_hooks(&cur));
    p = rcgc_mem_malloc(rt, 12);
    check_block(p, 'm', 12, 0xCD);
    rcgc_mem_free(rt, p);
    rcgc_runtime_free(rt);

    rt = new_runtime("pymalloc");
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    assert_int_equal(rcgc_mem_setup_debug_hooks(rt), RCGC_ESTATE);
    rcgc_tracemalloc_stop(rt);
    assert_int_equal(rcgc_mem_setup_debug_hooks(rt), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    run_workload(rt);
    rcgc_runtime_free(rt);
}

/* ------------------------------------------------------ fatal reports */

typedef struct misuse {
    const char *mode;
    size_t size;
    int what;
} misuse;

enum { OVERFLOW_FREE, OVERFLOW_REALLOC, OVERFLOW_CHECK, UNDERFLOW_FREE };

static void child_corrupt(void *arg)
{
    const misuse *m = arg;
    tu_child_init();
    rcgc_runtime *rt = new_runtime(m->mode);
    uint8_t *p = rcgc_mem_malloc(rt, m->size);
    fprintf(stderr, "ADDR p=%p tail=%p\n", (void *)p, (void *)(p + m->size));
    fflush(stderr);
    if (m->what == UNDERFLOW_FREE)
        p[-3] = 'x';
    else
        p[m->size] = 'x';
    switch (m->what) {
    case OVERFLOW_REALLOC:
        rcgc_mem_realloc(rt, p, 100);
        break;
    case OVERFLOW_CHECK:
        rcgc_mem_debug_check(rt, RCGC_DOMAIN_MEM, p);
        break;
    default:
        rcgc_mem_free(rt, p);
    }
    _exit(0);
}

static const char *tail_ouch =
    "    The 8 pad bytes at tail=%p are not all FORBIDDENBYTE (0xfd):\n"
    "        at tail+0: 0x78 *** OUCH\n"
    "        at tail+1: 0xfd\n"
    "        at tail+2: 0xfd\n"
    "        at tail+3: 0xfd\n"
    "        at tail+4: 0xfd\n"
    "        at tail+5: 0xfd\n"
    "        at tail+6: 0xfd\n"
    "        at tail+7: 0xfd\n";

/* The whole report, as CPython prints it for PyMem_Malloc(20) written one
 * byte past its end and then freed. */
static void check_overflow_report(const char *mode, size_t size, int what, const char *func)
{
    misuse m = {mode, size, what};
    const char *out = tu_run_fatal(child_corrupt, &m);
    void *p = addr_of(out, "p"), *tail = addr_of(out, "tail");
    char expect[2048], part[512];
    expect_header(expect, sizeof expect, p, 'm', size);
    snprintf(part, sizeof part, tail_ouch, tail);
    strcat(expect, part);
    strcat(expect, size > 16 ? "    Data at p: cd cd cd cd cd cd cd cd ... cd cd cd cd cd cd cd cd\n"
                             : "    Data at p: cd cd cd cd cd cd cd cd cd cd\n");
    strcat(expect, "\n"
                   "Enable tracemalloc to get the memory block allocation traceback\n"
                   "\n");
    snprintf(part, sizeof part, "rcgc fatal error: %s: bad trailing pad byte\n", func);
    strcat(expect, part);
    assert_contains(out, expect);
}

static void test_overflow(void **state)
{
    (void)state;
    check_overflow_report("debug", 20, OVERFLOW_FREE, "debug_free");
    check_overflow_report("debug", 10, OVERFLOW_FREE, "debug_free");
    check_overflow_report("debug", 20, OVERFLOW_REALLOC, "debug_realloc");
    check_overflow_report("debug", 20, OVERFLOW_CHECK, "rcgc_mem_debug_check");
    check_overflow_report("debug", 5000, OVERFLOW_FREE, "debug_free");   /* RAW base */
    check_overflow_report("malloc_debug", 20, OVERFLOW_FREE, "debug_free");
}

static void test_underflow(void **state)
{
    (void)state;
    misuse m = {"debug", 20, UNDERFLOW_FREE};
    const char *out = tu_run_fatal(child_corrupt, &m);
    void *p = addr_of(out, "p"), *tail = addr_of(out, "tail");
    char expect[2048];
    snprintf(expect, sizeof expect,
             "Debug memory block at address p=%p: API 'm'\n"
             "    20 bytes originally requested\n"
             "    The 7 pad bytes at p-7 are not all FORBIDDENBYTE (0xfd):\n"
             "        at p-7: 0xfd\n"
             "        at p-6: 0xfd\n"
             "        at p-5: 0xfd\n"
             "        at p-4: 0xfd\n"
             "        at p-3: 0x78 *** OUCH\n"
             "        at p-2: 0xfd\n"
             "        at p-1: 0xfd\n"
             "    Because memory is corrupted at the start, the count of bytes requested\n"
             "       may be bogus, and checking the trailing pad bytes may segfault.\n"
             "    The 8 pad bytes at tail=%p are FORBIDDENBYTE, as expected.\n"
             "    Data at p: cd cd cd cd cd cd cd cd ... cd cd cd cd cd cd cd cd\n"
             "\n"
             "Enable tracemalloc to get the memory block allocation traceback\n"
             "\n"
             "rcgc fatal error: debug_free: bad leading pad byte\n",
             p, tail);
    assert_contains(out, expect);
}

/* An object written past its end is caught when it is freed. */
static void child_object_overflow(void *arg)
{
    (void)arg;
    tu_child_init();
    rcgc_runtime *rt = new_runtime("debug");
    tu_node *n = tu_new_node(rt);
    fprintf(stderr, "ADDR p=%p\n", (void *)n);
    ((char *)n)[sizeof *n + 2] = 'x';
    rcgc_decref(RCGC_OBJ(n));
    _exit(0);
}

static void test_object_overflow(void **state)
{
    (void)state;
    const char *out = tu_run_fatal(child_object_overflow, NULL);
    char expect[512];
    expect_header(expect, sizeof expect, addr_of(out, "p"), 'o', sizeof(tu_node));
    assert_contains(out, expect);
    assert_contains(out, "        at tail+2: 0x78 *** OUCH\n");
    assert_contains(out, "rcgc fatal error: debug_free: bad trailing pad byte\n");
}

/* Double free: the block's id byte is DEADBYTE.  Both while its pool still
 * holds other blocks and after the pool emptied. */
static void child_double_free(void *arg)
{
    int keep_neighbour = *(int *)arg;
    tu_child_init();
    rcgc_runtime *rt = new_runtime("debug");
    void *keep = keep_neighbour ? rcgc_mem_malloc(rt, 40) : NULL;
    void *p = rcgc_mem_malloc(rt, 40);
    fprintf(stderr, "ADDR p=%p\n", p);
    rcgc_mem_free(rt, p);
    rcgc_mem_free(rt, p);
    (void)keep;
    _exit(0);
}

static void test_double_free(void **state)
{
    (void)state;
    for (int keep = 0; keep < 2; keep++) {
        const char *out = tu_run_fatal(child_double_free, &keep);
        char expect[256];
        snprintf(expect, sizeof expect, "Debug memory block at address p=%p: API '\\xdd'\n",
                 addr_of(out, "p"));
        assert_contains(out, expect);
        assert_contains(out, "    The 7 pad bytes at p-7 are not all FORBIDDENBYTE (0xfd):\n"
                             "        at p-7: 0xdd *** OUCH\n");
        assert_contains(out, "rcgc fatal error: debug_free: bad ID: Allocated using API "
                             "'\\xdd', verified using API 'm' (the block is already freed "
                             "(double free?))\n");
    }
}

/* A block freed through another domain than the one that allocated it. */
typedef struct wrong {
    rcgc_domain alloc, free;
    size_t size;
} wrong;

static void child_wrong_domain(void *arg)
{
    const wrong *w = arg;
    tu_child_init();
    rcgc_runtime *rt = new_runtime("debug");
    void *p = rcgc_domain_malloc_at(rt, w->alloc, w->size, RCGC_HERE);
    fprintf(stderr, "ADDR p=%p tail=%p\n", p, (void *)((char *)p + w->size));
    rcgc_domain_free(rt, w->free, p);
    _exit(0);
}

static void test_wrong_domain(void **state)
{
    (void)state;
    static const wrong cases[] = {
        {RCGC_DOMAIN_MEM, RCGC_DOMAIN_OBJ, 20},
        {RCGC_DOMAIN_MEM, RCGC_DOMAIN_RAW, 20},
        {RCGC_DOMAIN_OBJ, RCGC_DOMAIN_MEM, 48},
        {RCGC_DOMAIN_RAW, RCGC_DOMAIN_MEM, 1000},
    };
    const char ids[] = {'r', 'm', 'o'};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *out = tu_run_fatal(child_wrong_domain, (void *)&cases[i]);
        void *p = addr_of(out, "p"), *tail = addr_of(out, "tail");
        char expect[1024], part[256];
        expect_header(expect, sizeof expect, p, ids[cases[i].alloc], cases[i].size);
        snprintf(part, sizeof part,
                 "    The 8 pad bytes at tail=%p are FORBIDDENBYTE, as expected.\n"
                 "    Data at p: cd cd cd cd cd cd cd cd ... cd cd cd cd cd cd cd cd\n\n",
                 tail);
        strcat(expect, part);
        assert_contains(out, expect);
        snprintf(part, sizeof part,
                 "rcgc fatal error: debug_free: bad ID: Allocated using API '%c', verified "
                 "using API '%c' (freed through the wrong domain)\n",
                 ids[cases[i].alloc], ids[cases[i].free]);
        assert_contains(out, part);
    }
}

/* Writes after free are found when the pool hands the block out again. */
static void child_write_after_free(void *arg)
{
    int object = *(int *)arg;
    tu_child_init();
    rcgc_runtime *rt = new_runtime("debug");
    if (object) {
        rcgc_object *keep = RCGC_OBJ(tu_new_node(rt));
        tu_node *n = tu_new_node(rt);
        fprintf(stderr, "ADDR p=%p\n", (void *)n);
        rcgc_decref(RCGC_OBJ(n));
        n->value = 0x4142;   /* a dangling pointer keeps being used */
        tu_new_node(rt);     /* the same block, handed out again */
        (void)keep;
    } else {
        void *keep = rcgc_mem_malloc(rt, 40);
        uint8_t *p = rcgc_mem_malloc(rt, 40);
        fprintf(stderr, "ADDR p=%p\n", (void *)p);
        rcgc_mem_free(rt, p);
        p[3] = 'x';
        p[30] = 'y';
        rcgc_mem_malloc(rt, 40);
        (void)keep;
    }
    _exit(0);
}

static void test_write_after_free(void **state)
{
    (void)state;
    int object = 0;
    const char *out = tu_run_fatal(child_write_after_free, &object);
    char expect[512];
    snprintf(expect, sizeof expect,
             "Debug memory block at address p=%p: API 'm', freed, reused\n"
             "    The freed block (56 bytes from p-8) is not all DEADBYTE (0xdd): it was "
             "written to after it was freed:\n"
             "        at p+3: 0x78 *** OUCH\n"
             "        at p+30: 0x79 *** OUCH\n"
             "    Data at p: dd dd dd 78 dd dd dd dd ... dd dd dd dd dd dd dd dd\n",
             addr_of(out, "p"));
    assert_contains(out, expect);
    assert_contains(out, "rcgc fatal error: debug_malloc: write after free: a freed block of "
                         "the MEM domain was modified before it was reused\n");
    object = 1;
    out = tu_run_fatal(child_write_after_free, &object);
    snprintf(expect, sizeof expect, "Debug memory block at address p=%p: API 'o', freed, reused\n",
             addr_of(out, "p"));
    assert_contains(out, expect);
    snprintf(expect, sizeof expect, "        at p+%zu: 0x42 *** OUCH\n",
             offsetof(tu_node, value));
    assert_contains(out, expect);
    assert_contains(out, "write after free: a freed block of the OBJ domain");
}

/* Pointers rcgc never handed out: a buffer of our own with a fake header,
 * a pointer into the middle of a pool block, an arena's descriptors. */
static uint8_t fake[64];

static void child_foreign(void *arg)
{
    int which = *(int *)arg;
    tu_child_init();
    rcgc_runtime *rt = new_runtime("debug");
    uint8_t *p;
    if (which == 0) {
        memset(fake, 0x11, sizeof fake);   /* looks like nothing rcgc writes */
        p = fake + 16;
    } else if (which == 1) {
        p = (uint8_t *)rcgc_mem_malloc(rt, 64) + 16;
    } else {
        uint8_t *block = rcgc_mem_malloc(rt, 64);
        p = (uint8_t *)((uintptr_t)block & ~(uintptr_t)(1024 * 1024 - 1)) + 4096;
    }
    fprintf(stderr, "ADDR p=%p\n", (void *)p);
    rcgc_mem_free(rt, p);
    _exit(0);
}

static void test_foreign_pointer(void **state)
{
    (void)state;
    int which = 0;
    const char *out = tu_run_fatal(child_foreign, &which);
    char expect[256];
    snprintf(expect, sizeof expect,
             "Debug memory block at address p=%p: API '\\x11'\n"
             "    1229782938247303441 bytes originally requested\n",
             addr_of(out, "p"));
    assert_contains(out, expect);
    assert_contains(out, "    The count of bytes requested is bogus (larger than the block): "
                         "the trailing pad bytes are not checked.\n");
    assert_contains(out, "rcgc fatal error: debug_free: bad ID: Allocated using API '\\x11', "
                         "verified using API 'm' (not a block allocated by rcgc)\n");

    which = 1;
    out = tu_run_fatal(child_foreign, &which);
    snprintf(expect, sizeof expect,
             "Debug memory block at address p=%p: not a block rcgc allocated\n"
             "    p lies in a pool of 96-byte blocks, at offset 32 of a block\n",
             addr_of(out, "p"));
    assert_contains(out, expect);
    snprintf(expect, sizeof expect,
             "rcgc fatal error: debug_free: bad pointer: %p was not allocated by rcgc "
             "(MEM domain)\n", addr_of(out, "p"));
    assert_contains(out, expect);

    which = 2;
    out = tu_run_fatal(child_foreign, &which);
    assert_contains(out, "    p lies in an arena's descriptors\n");
    assert_contains(out, "bad pointer");
}

/* A base allocator that calls back into its own domain would recurse
 * forever; the hooks say so instead. */
static rcgc_allocator outer;
static void *loop_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return outer.malloc(outer.ctx, n);
}
static void *loop_calloc(void *ctx, size_t a, size_t b)
{
    (void)ctx;
    return outer.calloc(outer.ctx, a, b);
}
static void *loop_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return outer.realloc(outer.ctx, p, n);
}
static void loop_free(void *ctx, void *p)
{
    (void)ctx;
    outer.free(outer.ctx, p);
}

static void child_recursion(void *arg)
{
    (void)arg;
    tu_child_init();
    rcgc_runtime *rt = new_runtime("debug");
    rcgc_mem_get_allocator(rt, RCGC_DOMAIN_MEM, &outer);
    rcgc_allocator wrap = {NULL, loop_malloc, loop_calloc, loop_realloc, loop_free};
    if (rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &wrap) != RCGC_OK)
        _exit(1);
    rcgc_mem_malloc(rt, 10);
    _exit(0);
}

static void test_recursion(void **state)
{
    (void)state;
    const char *out = tu_run_fatal(child_recursion, NULL);
    assert_contains(out, "rcgc fatal error: the MEM domain's base allocator called back into "
                         "the MEM domain");
}

/* With tracing on, the report ends with the block's allocation traceback
 * (CPython's "Memory block allocated at" section), whether the damage is
 * found by a check, a realloc or a free. */
static void child_traced(void *arg)
{
    int how = *(int *)arg;
    tu_child_init();
    rcgc_config cfg = {.size = sizeof cfg, .malloc_mode = "debug", .tracemalloc_frames = 1};
    rcgc_runtime *rt = rcgc_runtime_new(&cfg);
    if (rt == NULL)
        _exit(2);
    uint8_t *p = rcgc_mem_malloc(rt, 20); int line = __LINE__;
    fprintf(stderr, "ADDR p=%p line=%x\n", (void *)p, (unsigned)line);
    p[20] = 'x';
    if (how == OVERFLOW_CHECK)
        rcgc_mem_debug_check(rt, RCGC_DOMAIN_MEM, p);
    else if (how == OVERFLOW_REALLOC)
        rcgc_mem_realloc(rt, p, 30);
    else
        rcgc_mem_free(rt, p);
    _exit(0);
}

static void test_traceback(void **state)
{
    (void)state;
    static const struct {
        int how;
        const char *func;
    } cases[] = {
        {OVERFLOW_CHECK, "rcgc_mem_debug_check"},
        {OVERFLOW_REALLOC, "debug_realloc"},
        {OVERFLOW_FREE, "debug_free"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int how = cases[i].how;
        const char *out = tu_run_fatal(child_traced, &how);
        unsigned line = (unsigned)(uintptr_t)addr_of(out, "line");
        char expect[512];
        snprintf(expect, sizeof expect,
                 "    Data at p: cd cd cd cd cd cd cd cd ... cd cd cd cd cd cd cd cd\n"
                 "\n"
                 "Memory block allocated at (most recent call first):\n"
                 "  File \"%s\", line %u\n"
                 "\n"
                 "rcgc fatal error: %s: bad trailing pad byte\n",
                 __FILE__, line, cases[i].func);
        assert_contains(out, expect);
    }
}

int main(void)
{
    unsetenv("RCGC_MALLOC");
    unsetenv("RCGC_TRACEMALLOC");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_dead_fill),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_workload),
        cmocka_unit_test(test_setup_later),
        cmocka_unit_test(test_set_allocator_keeps_hooks),
        cmocka_unit_test(test_wrapped_pools),
        cmocka_unit_test(test_with_tracemalloc),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_underflow),
        cmocka_unit_test(test_object_overflow),
        cmocka_unit_test(test_double_free),
        cmocka_unit_test(test_wrong_domain),
        cmocka_unit_test(test_write_after_free),
        cmocka_unit_test(test_foreign_pointer),
        cmocka_unit_test(test_recursion),
        cmocka_unit_test(test_traceback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
