/*
 * API misuse that debug builds (RCGC_DEBUG >= 1) turn into a fatal report:
 * incref or decref of a freed object, a refcount gone to zero or wrapped,
 * and a runtime entered by two threads at once.  Each report must name the
 * object (address), its type and its refcount.  Release builds do not check
 * (the inline functions stay one instruction): these tests skip there.
 */
#include <pthread.h>
#include <stdint.h>
#include <signal.h>
#include <string.h>

#include "runtime.h"
#include "testutil.h"


#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* These checks exist only when rcgc (and so this test) is built with
 * RCGC_DEBUG >= 1. */
#define REQUIRE_DEBUG()                                                       \
    do {                                                                      \
        if (RCGC_DEBUG < 1) {                                                 \
            skip();                                                           \
            return;                                                           \
        }                                                                     \
    } while (0)

static void assert_contains(const char *out, const char *needle)
{
    if (strstr(out, needle) == NULL) {
        fprintf(stderr, "--- expected to find:\n%s\n--- in:\n%s\n", needle, out);
        fail_msg("text not found in the report");
    }
}

static void *addr_of(const char *out)
{
    const char *at = strstr(out, "ADDR o=");
    assert_non_null(at);
    return (void *)(uintptr_t)strtoull(at + 7, NULL, 16);
}

static rcgc_runtime *child_runtime(const char *mode)
{
    tu_child_init();
    rcgc_config cfg = {.size = sizeof cfg, .malloc_mode = mode};
    rcgc_runtime *rt = rcgc_runtime_new(&cfg);
    if (rt == NULL)
        _exit(2);
    return rt;
}

static void announce(const void *o)
{
    fprintf(stderr, "ADDR o=%p\n", o);
    fflush(stderr);
}

/* ---------------------------------------------------------- the cases */

typedef struct freed_case {
    const char *mode;   /* RCGC_MALLOC value */
    int incref;         /* incref instead of decref */
    int busy;           /* the freed block sits between live, non-zero data */
} freed_case;

/* Use an object after its last reference is gone.  Another object keeps its
 * pool (and the memory) in use, so the read is of rcgc's own memory.  With
 * `busy`, the block before it holds data and the one after it was freed
 * first (the freed object's first bytes then link to it). */
static void child_use_freed(void *arg)
{
    const freed_case *c = arg;
    rcgc_runtime *rt = child_runtime(c->mode);
    tu_node *keep = tu_new_node(rt);
    rcgc_object *o = RCGC_OBJ(tu_new_node(rt));
    announce(o);
    if (c->busy) {
        keep->a = RCGC_OBJ(tu_new_node(rt));   /* non-NULL data before o */
        keep->b = keep->a;
        keep->value = -1;
        rcgc_object *after = RCGC_OBJ(tu_new_node(rt));
        rcgc_decref(after);
    }
    rcgc_decref(o);
    /* A freed block's first bytes are the pool's free-list link: its high
     * half lands in the flags, where RCGC_OF_FOREIGN is set for about half
     * of all address layouts.  Make this run one of those. */
    if (c->busy)
        o->flags |= RCGC_OF_FOREIGN;
    if (c->incref)
        rcgc_incref(o);
    else
        rcgc_decref(o);
    (void)keep;
    _exit(0);
}

static void check_use_freed(const char *mode, int incref, int busy)
{
    freed_case c = {mode, incref, busy};
    const char *out = tu_run_fatal(child_use_freed, &c);
    void *o = addr_of(out);
    char expect[256];
    snprintf(expect, sizeof expect, "rcgc fatal error: %s of a freed object %p\n",
             incref ? "incref" : "decref", o);
    assert_contains(out, expect);
    snprintf(expect, sizeof expect, "object address  : %p\n", o);
    assert_contains(out, expect);
    assert_contains(out, "object type     : <freed>\n");
    assert_contains(out, "object refcount : ");
}

static void test_use_after_free(void **state)
{
    (void)state;
    REQUIRE_DEBUG();
    check_use_freed("pymalloc", 0, 0);
    check_use_freed("pymalloc", 1, 0);
    /* under the debug hooks the block is 0xDD, but the type mark stays */
    check_use_freed("debug", 0, 0);
    check_use_freed("debug", 1, 0);
    /* the report must not trust what the freed header's flags say */
    check_use_freed("pymalloc", 0, 1);
    check_use_freed("debug", 0, 1);
}

/* A dealloc that drops its own object once more (a classic extra decref):
 * the refcount is already zero. */
static void extra_decref_dealloc(rcgc_object *self)
{
    rcgc_decref(self);
}

static const rcgc_type sloppy_type = {
    .name = "sloppy",
    .size = sizeof(rcgc_object) + 16,
    .dealloc = extra_decref_dealloc,
};

static void child_zero(void *arg)
{
    const char *mode = arg;
    rcgc_runtime *rt = child_runtime(mode);
    rcgc_object *o = rcgc_new(rt, &sloppy_type);
    announce(o);
    rcgc_decref(o);
    _exit(0);
}

static void test_below_zero(void **state)
{
    (void)state;
    REQUIRE_DEBUG();
    const char *modes[] = {"pymalloc", "debug", "malloc"};
    for (int i = 0; i < 3; i++) {
        const char *out = tu_run_fatal(child_zero, (void *)modes[i]);
        void *o = addr_of(out);
        char expect[256];
        snprintf(expect, sizeof expect,
                 "rcgc fatal error: decref of object %p (sloppy) with refcount 0: it is freed "
                 "or being freed\n", o);
        assert_contains(out, expect);
        snprintf(expect, sizeof expect,
                 "object address  : %p\n"
                 "object refcount : 0\n"
                 "object type     : sloppy\n", o);
        assert_contains(out, expect);
    }
}

/* A refcount that wrapped (or memory that is not an object header). */
static void child_wrapped(void *arg)
{
    (void)arg;
    rcgc_runtime *rt = child_runtime("pymalloc");
    tu_node *n = tu_new_node(rt);
    announce(n);
    n->ob.refcnt = UINT32_MAX;
    rcgc_incref(RCGC_OBJ(n));
    _exit(0);
}

static void test_wrapped(void **state)
{
    (void)state;
    REQUIRE_DEBUG();
    const char *out = tu_run_fatal(child_wrapped, NULL);
    void *o = addr_of(out);
    char expect[256];
    snprintf(expect, sizeof expect,
             "rcgc fatal error: incref of object %p: refcount 4294967295 is invalid "
             "(freed memory or overflow)\n", o);
    assert_contains(out, expect);
    assert_contains(out, "object refcount : 4294967295\nobject type     : node\n");
}

/* A foreign object (libc malloc): its header is read after free() only in
 * a build without AddressSanitizer (which rightly stops at the read). */
static void test_use_after_free_foreign(void **state)
{
    (void)state;
    REQUIRE_DEBUG();
    if (UNDER_ASAN)
        skip();
    else
        check_use_freed("malloc_debug", 0, 0);
}

/* With tracing on, the report ends with where the object was allocated. */
static void child_traced(void *arg)
{
    (void)arg;
    tu_child_init();
    rcgc_config cfg = {.size = sizeof cfg, .tracemalloc_frames = 1};
    rcgc_runtime *rt = rcgc_runtime_new(&cfg);
    if (rt == NULL)
        _exit(2);
    rcgc_object *o = rcgc_new(rt, &sloppy_type); int line = __LINE__;
    fprintf(stderr, "ADDR o=%p line=%d\n", (void *)o, line);
    rcgc_decref(o);
    _exit(0);
}

static void test_traceback(void **state)
{
    (void)state;
    REQUIRE_DEBUG();
    const char *out = tu_run_fatal(child_traced, NULL);
    const char *l = strstr(out, "line=");
    assert_non_null(l);
    char expect[512];
    snprintf(expect, sizeof expect,
             "object type     : sloppy\n"
             "object flags    : 0x200 (not tracked, generation 0)\n"
             "Memory block allocated at (most recent call first):\n"
             "  File \"%s\", line %d\n", __FILE__, atoi(l + 5));
    assert_contains(out, expect);
}

/* ------------------------------------------------------------- threads */

typedef struct hammer {
    rcgc_runtime *rt;
    pthread_barrier_t *start;
} hammer;

static void *hammer_thread(void *arg)
{
    hammer *h = arg;
    pthread_barrier_wait(h->start);
    for (long i = 0; i < 50L * 1000 * 1000; i++) {
        rcgc_object *o = RCGC_OBJ(tu_new_node(h->rt));
        if (o)
            rcgc_decref(o);
    }
    return NULL;
}

/* Two threads creating objects in one runtime at once: debug builds stop
 * at the first overlap with a report that says what happened. */
static void child_two_threads(void *arg)
{
    (void)arg;
    rcgc_runtime *rt = child_runtime("pymalloc");
    fprintf(stderr, "ADDR o=%p\n", (void *)rt);
    fflush(stderr);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    hammer h = {rt, &start};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, hammer_thread, &h);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    _exit(0);   /* never detected: the test fails */
}

static void test_two_threads(void **state)
{
    (void)state;
    REQUIRE_DEBUG();
    const char *out = tu_run_fatal(child_two_threads, NULL);
    char expect[128];
    snprintf(expect, sizeof expect, "rcgc fatal error: runtime %p used by thread 0x",
             addr_of(out));
    assert_contains(out, expect);
    assert_contains(out, " is inside it: a runtime belongs to one thread at a time");
}

/* Handing a runtime over with detach/attach is allowed. */
static void *attach_and_work(void *arg)
{
    rcgc_runtime *rt = arg;
    rcgc_runtime_attach(rt);
    for (int i = 0; i < 1000; i++)
        rcgc_decref(RCGC_OBJ(tu_new_node(rt)));
    rcgc_runtime_detach(rt);
    return NULL;
}

static void test_handover(void **state)
{
    (void)state;
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    assert_non_null(rt);
    for (int round = 0; round < 4; round++) {
        pthread_t t;
        pthread_create(&t, NULL, attach_and_work, rt);
        pthread_join(t, NULL);
    }
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_runtime_free(rt);
}

int main(void)
{
    unsetenv("RCGC_MALLOC");
    unsetenv("RCGC_TRACEMALLOC");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_use_after_free),
        cmocka_unit_test(test_below_zero),
        cmocka_unit_test(test_wrapped),
        cmocka_unit_test(test_use_after_free_foreign),
        cmocka_unit_test(test_traceback),
        cmocka_unit_test(test_two_threads),
        cmocka_unit_test(test_handover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
