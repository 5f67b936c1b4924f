/* test_symbolize.c - native stacks symbolized with libdw (rcgc_symbolize):
 * the frames above the call site name this file, the right functions and
 * the lines of the calls, and statistics group them by line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rcgc.h"
#include "rcgc_symbolize.h"
#include "rcgc_tracemalloc.h"

static int line_leaf, line_mid, line_top;

static __attribute__((noinline)) void *leaf(rcgc_runtime *rt)
{
    line_leaf = __LINE__ + 1;
    void *p = rcgc_mem_malloc(rt, 40);
    __asm__ volatile("" ::: "memory");
    return p;
}

static __attribute__((noinline)) void *mid(rcgc_runtime *rt)
{
    line_mid = __LINE__ + 1;
    void *p = leaf(rt);
    __asm__ volatile("" ::: "memory");
    return p;
}

static __attribute__((noinline)) void *top(rcgc_runtime *rt)
{
    line_top = __LINE__ + 1;
    void *p = mid(rt);
    __asm__ volatile("" ::: "memory");
    return p;
}

static void test_native_symbolized(void **state)
{
    (void)state;
    rcgc_symbolize_install();
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    assert_non_null(rt);
    assert_int_equal(rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_NATIVE), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_start(rt, 8), RCGC_OK);
    void *p = top(rt);
    rcgc_traceback *tb = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)p);
    assert_non_null(tb);
    size_t n = rcgc_traceback_len(tb);
    assert_true(n >= 3);
    /* Most recent first: the call site, then mid's call, then top's. */
    rcgc_frame f0 = rcgc_traceback_frame(tb, n - 1);
    rcgc_frame f1 = rcgc_traceback_frame(tb, n - 2);
    rcgc_frame f2 = rcgc_traceback_frame(tb, n - 3);
    assert_int_equal(f0.lineno, line_leaf);
    assert_non_null(strstr(f1.filename, "test_symbolize.c"));
    assert_int_equal(f1.lineno, line_mid);
    assert_string_equal(rcgc_traceback_function(tb, n - 2), "mid");
    assert_non_null(strstr(f2.filename, "test_symbolize.c"));
    assert_int_equal(f2.lineno, line_top);
    assert_string_equal(rcgc_traceback_function(tb, n - 3), "top");
    rcgc_traceback_format(tb, 3, 1, stdout);
    rcgc_traceback_free(tb);

    rcgc_snapshot *snap;
    assert_int_equal(rcgc_tracemalloc_take_snapshot(rt, &snap), RCGC_OK);
    rcgc_stats *st;
    assert_int_equal(rcgc_snapshot_statistics(snap, RCGC_KEY_LINENO, 1, &st), RCGC_OK);
    int seen_mid = 0;
    for (size_t i = 0; i < rcgc_stats_len(st); i++) {
        rcgc_frame f = rcgc_traceback_frame(rcgc_stats_get(st, i)->traceback, 0);
        if (strstr(f.filename, "test_symbolize.c") && f.lineno == line_mid)
            seen_mid = 1;
    }
    assert_true(seen_mid);
    rcgc_stats_free(st);
    rcgc_snapshot_free(snap);
    rcgc_mem_free(rt, p);
    rcgc_runtime_free(rt);
    rcgc_symbolize_reset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_native_symbolized),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
