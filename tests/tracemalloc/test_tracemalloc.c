/* test_tracemalloc.c - the tracer: start/stop, traced memory and peak,
 * get_object_traceback for pooled and big objects, realloc, track/untrack
 * domains, clear_traces, the three frame sources, the debug-hook report
 * block, the environment variable, tracing's own memory per block, and
 * out-of-memory while tracing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "rcgc.h"
#include "rcgc_tracemalloc.h"

static rcgc_runtime *new_rt(void)
{
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    assert_non_null(rt);
    return rt;
}

static void test_start_stop(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_false(rcgc_tracemalloc_is_tracing(rt));
    assert_int_equal(rcgc_tracemalloc_get_traceback_limit(rt), 1);
    assert_int_equal(rcgc_tracemalloc_start(rt, 0), RCGC_EINVAL);
    assert_int_equal(rcgc_tracemalloc_start(rt, 65536), RCGC_EINVAL);
    assert_false(rcgc_tracemalloc_is_tracing(rt));
    assert_int_equal(rcgc_tracemalloc_start(rt, 65535), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_get_traceback_limit(rt), 65535);
    assert_int_equal(rcgc_tracemalloc_start(rt, 3), RCGC_OK);   /* only the limit changes */
    assert_int_equal(rcgc_tracemalloc_get_traceback_limit(rt), 3);
    assert_true(rcgc_tracemalloc_is_tracing(rt));
    rcgc_snapshot *snap = NULL;
    rcgc_tracemalloc_stop(rt);
    assert_false(rcgc_tracemalloc_is_tracing(rt));
    assert_int_equal(rcgc_tracemalloc_take_snapshot(rt, &snap), RCGC_ESTATE);
    assert_null(snap);
    size_t cur = 1, peak = 1;
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 0);
    assert_int_equal(peak, 0);
    rcgc_runtime_free(rt);
}

static void test_traced_memory_and_peak(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    void *blocks[100];
    for (int i = 0; i < 100; i++)
        blocks[i] = rcgc_mem_malloc(rt, 50);
    void *big = rcgc_mem_malloc(rt, 100000);   /* beyond the pools: RAW base */
    size_t cur, peak;
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 100 * 50 + 100000);
    assert_int_equal(peak, cur);
    for (int i = 0; i < 50; i++)
        rcgc_mem_free(rt, blocks[i]);
    rcgc_mem_free(rt, big);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 50 * 50);
    assert_int_equal(peak, 100 * 50 + 100000);
    rcgc_tracemalloc_reset_peak(rt);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(peak, 50 * 50);
    /* realloc: the block moves or grows; the trace follows it. */
    blocks[50] = rcgc_mem_realloc(rt, blocks[50], 400);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 49 * 50 + 400);
    blocks[50] = rcgc_mem_realloc(rt, blocks[50], 3000);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 49 * 50 + 3000);
    /* clear_traces forgets; freeing untraced blocks changes nothing. */
    rcgc_tracemalloc_clear_traces(rt);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 0);
    for (int i = 50; i < 100; i++)
        rcgc_mem_free(rt, blocks[i]);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 0);
    void *p = rcgc_mem_calloc(rt, 10, 7);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 70);
    rcgc_mem_free(rt, p);
    rcgc_tracemalloc_stop(rt);
    rcgc_runtime_free(rt);
}

typedef struct small {
    rcgc_object ob;
    long x;
} small;
static const rcgc_type small_type = { "small", sizeof(small), 0, 0, NULL, NULL, NULL, NULL,
                                      NULL };
typedef struct huge {
    rcgc_object ob;
    char data[4000];
} huge;
static const rcgc_type huge_type = { "huge", sizeof(huge), 0, 0, NULL, NULL, NULL, NULL, NULL };

static void test_object_traceback(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    rcgc_object *before = rcgc_new(rt, &small_type);
    assert_int_equal(rcgc_tracemalloc_start(rt, 5), RCGC_OK);
    assert_null(rcgc_tracemalloc_get_object_traceback(before));
    int line_small = __LINE__ + 1;
    rcgc_object *a = rcgc_new(rt, &small_type);
    int line_huge = __LINE__ + 1;
    rcgc_object *b = rcgc_new(rt, &huge_type);
    rcgc_traceback *ta = rcgc_tracemalloc_get_object_traceback(a);
    rcgc_traceback *tb = rcgc_tracemalloc_get_object_traceback(b);
    assert_non_null(ta);
    assert_non_null(tb);
    assert_int_equal(rcgc_traceback_len(ta), 1);
    assert_string_equal(rcgc_traceback_frame(ta, 0).filename, __FILE__);
    assert_int_equal(rcgc_traceback_frame(ta, 0).lineno, line_small);
    assert_int_equal(rcgc_traceback_total_nframe(ta), 1);
    assert_int_equal(rcgc_traceback_frame(tb, 0).lineno, line_huge);
    char buf[512];
    rcgc_traceback_str(ta, buf, sizeof buf);
    char want[512];
    snprintf(want, sizeof want, "%s:%d", __FILE__, line_small);
    assert_string_equal(buf, want);
    rcgc_traceback_free(ta);
    rcgc_traceback_free(tb);
    size_t cur;
    rcgc_tracemalloc_get_traced_memory(rt, &cur, NULL);
    assert_true(cur >= sizeof(small) + sizeof(huge));
    rcgc_decref(a);
    rcgc_decref(b);
    rcgc_decref(before);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, NULL);
    assert_int_equal(cur, 0);
    rcgc_tracemalloc_stop(rt);
    rcgc_runtime_free(rt);
}

/* A list's growth is traced to the line that appends (or inserts), as
 * Python traces it to the line calling append, not to rcgc's list code. */
static void test_list_growth_traced_to_caller(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    rcgc_object *item = rcgc_new(rt, &small_type);
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    rcgc_list *l = rcgc_list_new(rt);
    int line_append = __LINE__ + 2;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(rcgc_list_append(l, item), RCGC_OK);
    int line_insert = __LINE__ + 2;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(rcgc_list_insert(l, 0, item), RCGC_OK);
    rcgc_snapshot *snap = NULL;
    assert_int_equal(rcgc_tracemalloc_take_snapshot(rt, &snap), RCGC_OK);
    size_t at_append = 0, at_insert = 0, elsewhere = 0;
    for (size_t i = 0; i < rcgc_snapshot_len(snap); i++) {
        rcgc_trace t = rcgc_snapshot_trace(snap, i);
        rcgc_frame f = rcgc_traceback_frame(t.traceback, 0);
        if (strcmp(f.filename, __FILE__) == 0 && f.lineno == line_append)
            at_append += t.size;
        else if (strcmp(f.filename, __FILE__) == 0 && f.lineno == line_insert)
            at_insert += t.size;
        else if (strstr(f.filename, "list.c") != NULL)
            elsewhere += t.size;
    }
    /* The items array holds 2000 pointers: it was last grown by insert. */
    assert_true(at_insert >= 2000 * sizeof(void *));
    assert_int_equal(at_append, 0);
    assert_int_equal(elsewhere, 0);
    rcgc_snapshot_free(snap);
    rcgc_decref(RCGC_OBJ(l));
    rcgc_decref(item);
    rcgc_tracemalloc_stop(rt);
    rcgc_runtime_free(rt);
}

static void test_track_untrack(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_track(rt, 7, 0x1000, 100), -2);
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_track(rt, 7, 0x1000, 100), 0);
    assert_int_equal(rcgc_tracemalloc_track(rt, 8, 0x1000, 30), 0);   /* other domain */
    assert_int_equal(rcgc_tracemalloc_track(rt, 7, 0x1000, 60), 0);   /* replaces */
    size_t cur;
    rcgc_tracemalloc_get_traced_memory(rt, &cur, NULL);
    assert_int_equal(cur, 90);
    rcgc_traceback *t = rcgc_tracemalloc_get_traceback(rt, 8, 0x1000);
    assert_non_null(t);
    assert_string_equal(rcgc_traceback_frame(t, 0).filename, "<unknown>");
    rcgc_traceback_free(t);
    rcgc_snapshot *snap;
    assert_int_equal(rcgc_tracemalloc_take_snapshot(rt, &snap), RCGC_OK);
    size_t seen = 0;
    for (size_t i = 0; i < rcgc_snapshot_len(snap); i++) {
        rcgc_trace tr = rcgc_snapshot_trace(snap, i);
        if (tr.domain == 7) {
            assert_int_equal(tr.size, 60);
            seen++;
        } else if (tr.domain == 8) {
            assert_int_equal(tr.size, 30);
            seen++;
        }
    }
    assert_int_equal(seen, 2);
    rcgc_snapshot_free(snap);
    assert_int_equal(rcgc_tracemalloc_untrack(rt, 7, 0x1000), 0);
    assert_int_equal(rcgc_tracemalloc_untrack(rt, 7, 0x1000), 0);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, NULL);
    assert_int_equal(cur, 30);
    /* Many tracked blocks: the general table grows and shrinks correctly. */
    for (uintptr_t i = 1; i <= 5000; i++)
        assert_int_equal(rcgc_tracemalloc_track(rt, 9, i * 16, 1), 0);
    for (uintptr_t i = 1; i <= 5000; i += 2)
        rcgc_tracemalloc_untrack(rt, 9, i * 16);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, NULL);
    assert_int_equal(cur, 30 + 2500);
    for (uintptr_t i = 2; i <= 5000; i += 2) {
        rcgc_traceback *x = rcgc_tracemalloc_get_traceback(rt, 9, i * 16);
        assert_non_null(x);
        rcgc_traceback_free(x);
        assert_null(rcgc_tracemalloc_get_traceback(rt, 9, (i - 1) * 16));
    }
    rcgc_tracemalloc_stop(rt);
    assert_int_equal(rcgc_tracemalloc_untrack(rt, 7, 0x1000), -2);
    rcgc_runtime_free(rt);
}

/* An interpreter's frames: a fake three-deep script stack. */
static int fake_depth = 3;
static int fake_frames(void *arg, rcgc_frame *frames, int max, int *total)
{
    (void)arg;
    static const char *names[] = { "script.py", "lib.py", "main.py" };
    int n = fake_depth < max ? fake_depth : max;
    for (int i = 0; i < n; i++)
        frames[i] = (rcgc_frame){ names[i % 3], 10 * (i + 1) };
    *total = fake_depth;
    return n;
}

static void test_callback_frames(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_CALLBACK), RCGC_EINVAL);
    assert_int_equal(rcgc_tracemalloc_set_frames_callback(rt, fake_frames, NULL), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_get_frame_source(rt), RCGC_FRAMES_CALLBACK);
    assert_int_equal(rcgc_tracemalloc_start(rt, 2), RCGC_OK);
    rcgc_object *o = rcgc_new(rt, &small_type);
    rcgc_traceback *t = rcgc_tracemalloc_get_object_traceback(o);
    assert_int_equal(rcgc_traceback_len(t), 2);          /* cut to the limit */
    assert_int_equal(rcgc_traceback_total_nframe(t), 3);
    /* Python order: 0 = oldest. */
    assert_string_equal(rcgc_traceback_frame(t, 0).filename, "lib.py");
    assert_string_equal(rcgc_traceback_frame(t, 1).filename, "script.py");
    assert_int_equal(rcgc_traceback_frame(t, 1).lineno, 10);
    rcgc_traceback_free(t);
    fake_depth = 0;   /* no interpreter frame: the C call site */
    int line = __LINE__ + 1;
    rcgc_object *c = rcgc_new(rt, &small_type);
    t = rcgc_tracemalloc_get_object_traceback(c);
    assert_int_equal(rcgc_traceback_frame(t, 0).lineno, line);
    rcgc_traceback_free(t);
    fake_depth = 3;
    rcgc_decref(o);
    rcgc_decref(c);
    assert_int_equal(rcgc_tracemalloc_set_frames_callback(rt, NULL, NULL), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_get_frame_source(rt), RCGC_FRAMES_CALL_SITE);
    rcgc_runtime_free(rt);
}

static __attribute__((noinline)) void *native_leaf(rcgc_runtime *rt, int *line)
{
    *line = __LINE__ + 1;
    void *p = rcgc_mem_malloc(rt, 24);
    __asm__ volatile("" ::: "memory");
    return p;
}
static __attribute__((noinline)) void *native_mid(rcgc_runtime *rt, int *line)
{
    void *p = native_leaf(rt, line);
    __asm__ volatile("" ::: "memory");
    return p;
}

static void test_native_frames(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_NATIVE), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_start(rt, 16), RCGC_OK);
    int line = 0;
    void *p = native_mid(rt, &line);
    rcgc_traceback *t = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)p);
    assert_non_null(t);
    size_t n = rcgc_traceback_len(t);
    /* The most recent frame is the call site, exactly. */
    assert_string_equal(rcgc_traceback_frame(t, n - 1).filename, __FILE__);
    assert_int_equal(rcgc_traceback_frame(t, n - 1).lineno, line);
    /* This test is built with frame pointers (ASan builds always are), so
     * the callers above are there too: native_mid, this test, cmocka... */
    assert_true(n >= 3);
    assert_true(rcgc_traceback_total_nframe(t) >= (long)n);
    rcgc_traceback_free(t);
    rcgc_snapshot *snap;
    assert_int_equal(rcgc_tracemalloc_take_snapshot(rt, &snap), RCGC_OK);
    rcgc_stats *st;
    assert_int_equal(rcgc_snapshot_statistics(snap, RCGC_KEY_TRACEBACK, 0, &st), RCGC_OK);
    assert_true(rcgc_stats_len(st) >= 1);
    rcgc_stats_free(st);
    rcgc_snapshot_free(snap);
    rcgc_mem_free(rt, p);
    rcgc_runtime_free(rt);
}

static void test_print_block(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    int line = __LINE__ + 1;
    rcgc_object *o = rcgc_new(rt, &small_type);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    rcgc_object_dump(o, mem);
    fclose(mem);
    char want[600];
    snprintf(want, sizeof want,
             "Memory block allocated at (most recent call first):\n"
             "  File \"%s\", line %d\n\n", __FILE__, line);
    assert_non_null(strstr(text, want));
    free(text);
    rcgc_decref(o);
    rcgc_runtime_free(rt);
}

/* The debug hooks' fatal report ends with the block's allocation
 * traceback (CPython's _PyMem_DumpTraceback): run the overflow in a child
 * and read its stderr. */
static void test_debug_hooks_report(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int line = 0;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        rcgc_config cfg;
        memset(&cfg, 0, sizeof cfg);
        cfg.size = sizeof cfg;
        cfg.malloc_mode = "debug";
        cfg.tracemalloc_frames = 1;
        rcgc_runtime *rt = rcgc_runtime_new(&cfg);
        if (!rt)
            _exit(3);
        char *p = rcgc_mem_malloc(rt, 10);
        memset(p, 'x', 11);   /* one byte past the end */
        rcgc_mem_free(rt, p); /* fatal */
        _exit(4);
    }
    int line_end = __LINE__ - 1;   /* the child's lines lie before this */
    close(fds[1]);
    char out[8192];
    size_t n = 0;
    ssize_t got;
    while (n < sizeof out - 1 && (got = read(fds[0], out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)got;
    out[n] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    assert_false(WIFEXITED(status) && (WEXITSTATUS(status) == 3 || WEXITSTATUS(status) == 4));
    char want[600];
    snprintf(want, sizeof want,
             "Memory block allocated at (most recent call first):\n"
             "  File \"%s\", line ", __FILE__);
    const char *at = strstr(out, want);
    if (!at)
        fail_msg("report without the traceback:\n%s", out);
    line = atoi(at + strlen(want));
    /* rcgc_mem_malloc's line, inside the child's block, then a blank line */
    assert_true(line > line_end - 12 && line < line_end);
    assert_non_null(strstr(at, "\n\n"));
}

static void test_env_variable(void **state)
{
    (void)state;
    setenv("RCGC_TRACEMALLOC", "7", 1);
    rcgc_runtime *rt = new_rt();
    unsetenv("RCGC_TRACEMALLOC");
    assert_true(rcgc_tracemalloc_is_tracing(rt));
    assert_int_equal(rcgc_tracemalloc_get_traceback_limit(rt), 7);
    rcgc_runtime_free(rt);
}

/* Tracing's own memory per live traced block (target: <= 32 B). */
static void test_memory_per_block(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    size_t m0 = rcgc_tracemalloc_get_tracemalloc_memory(rt);
    assert_true(m0 > 0);
    enum { N = 200000 };
    void **p = malloc(N * sizeof *p);
    for (int i = 0; i < N; i++)
        p[i] = rcgc_mem_malloc(rt, (size_t)(8 + (i % 64) * 8));
    size_t m1 = rcgc_tracemalloc_get_tracemalloc_memory(rt);
    double per = (double)(m1 - m0) / N;
    print_message("tracing memory: %.1f B per live traced block\n", per);
    assert_true(per <= 32.0);
    for (int i = 0; i < N; i++)
        rcgc_mem_free(rt, p[i]);
    size_t cur;
    rcgc_tracemalloc_get_traced_memory(rt, &cur, NULL);
    assert_int_equal(cur, 0);
    free(p);
    rcgc_runtime_free(rt);
}

/* Out of memory anywhere while tracing: allocations fail cleanly, the
 * traced size stays exact. */
static void test_oom_while_tracing(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    for (long k = 1; k < 40; k++) {
        rcgc_mem_fail_after(rt, k, 0);
        void *ps[30];
        size_t want = 0;
        for (int i = 0; i < 30; i++) {
            ps[i] = rcgc_mem_malloc(rt, (size_t)(i * 37 % 700 + 1));
            if (ps[i])
                want += (size_t)(i * 37 % 700 + 1);
        }
        size_t cur;
        rcgc_tracemalloc_get_traced_memory(rt, &cur, NULL);
        assert_int_equal(cur, want);
        for (int i = 0; i < 30; i++)
            rcgc_mem_free(rt, ps[i]);
        rcgc_tracemalloc_get_traced_memory(rt, &cur, NULL);
        assert_int_equal(cur, 0);
    }
    rcgc_mem_fail_after(rt, 0, 0);
    rcgc_runtime_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_stop),
        cmocka_unit_test(test_traced_memory_and_peak),
        cmocka_unit_test(test_object_traceback),
        cmocka_unit_test(test_track_untrack),
        cmocka_unit_test(test_list_growth_traced_to_caller),
        cmocka_unit_test(test_callback_frames),
        cmocka_unit_test(test_native_frames),
        cmocka_unit_test(test_print_block),
        cmocka_unit_test(test_debug_hooks_report),
        cmocka_unit_test(test_env_variable),
        cmocka_unit_test(test_memory_per_block),
        cmocka_unit_test(test_oom_while_tracing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
