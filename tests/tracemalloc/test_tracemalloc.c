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
#include "runtime.h"
#include "tmfast.h"
#include "unwind.h"

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
                                      NULL, NULL };
typedef struct huge {
    rcgc_object ob;
    char data[4000];
} huge;
static const rcgc_type huge_type = { "huge", sizeof(huge), 0, 0, NULL, NULL, NULL, NULL, NULL,
                                     NULL };

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

/* K1 (unwind.h): the tracer's most recent native walk keeps its head in
 * step with record 0, and the validator tells when it does not. */
static __attribute__((noinline)) void native_repeat(rcgc_runtime *rt)
{
    for (int i = 0; i < 8; i++) {
        void *p = rcgc_mem_malloc(rt, 24 + 8 * (size_t)i);
        assert_non_null(p);
        rcgc_mem_free(rt, p);
    }
    __asm__ volatile("" ::: "memory");
}

static void expect_invalid_h(rcgc_runtime *rt, const char *what);
static void check_valid(rcgc_runtime *rt);

static void test_native_walk_head(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_NATIVE), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_start(rt, 16), RCGC_OK);
    native_repeat(rt);
    check_valid(rt);
    rcgc_unwind_memo *m = (rcgc_unwind_memo *)(uintptr_t)rt->trace_mru;
    if (m->key != RCGC_UNWIND_NO_KEY) {
        assert_true(m->head_fp == m->fps[0] && m->fps[0] != 0);
        assert_true(m->w0tag[0] == m->words[0]);
        m->head_fp += 16;
        expect_invalid_h(rt, "K1");
        m->head_fp -= 16;
        check_valid(rt);
        m->w0tag[0] ^= 16;
        expect_invalid_h(rt, "K1");
        m->w0tag[0] ^= 16;
    }
    check_valid(rt);
    native_repeat(rt);
    check_valid(rt);
    rcgc_tracemalloc_stop(rt);
    rcgc_runtime_free(rt);
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

/* ------------------------------------------- the fast path (tmfast.h) */

typedef struct pair_obj {
    rcgc_object ob;
    rcgc_object *ref;
} pair_obj;
static int pair_traverse(rcgc_object *o, rcgc_visitfn visit, void *arg)
{
    pair_obj *p = (pair_obj *)o;
    return p->ref ? visit(p->ref, arg) : 0;
}
static int pair_clear(rcgc_object *o)
{
    pair_obj *p = (pair_obj *)o;
    rcgc_object *r = p->ref;
    p->ref = NULL;
    if (r)
        rcgc_decref(r);
    return 0;
}
static const rcgc_type pair_type = { "pair", sizeof(pair_obj), 0, 0, pair_traverse, pair_clear,
                                     NULL, NULL, NULL, NULL };

static void check_valid(rcgc_runtime *rt)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    int rc = rcgc_validate(rt, mem);
    fclose(mem);
    if (rc != RCGC_OK)
        print_error("%s", text);
    free(text);
    assert_int_equal(rc, RCGC_OK);
}

static size_t traced_now(rcgc_runtime *rt)
{
    size_t cur = 0;
    rcgc_tracemalloc_get_traced_memory(rt, &cur, NULL);
    return cur;
}

/* Each frame of t as "file:line", between before and after. */
static void put_frames(FILE *out, const rcgc_traceback *t, const char *before, const char *after)
{
    for (size_t k = 0; k < rcgc_traceback_len(t); k++)
        fprintf(out, "%s%s:%d%s", before, rcgc_traceback_frame(t, k).filename,
                rcgc_traceback_frame(t, k).lineno, after);
}

/* Every statistic by traceback, one line each, plus the traced memory:
 * what a run recorded. */

static char *recorded(rcgc_runtime *rt)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    size_t cur, peak;
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    fprintf(out, "traced %zu peak %zu\n", cur, peak);
    rcgc_snapshot *snap;
    assert_int_equal(rcgc_tracemalloc_take_snapshot(rt, &snap), RCGC_OK);
    fprintf(out, "traces %zu\n", rcgc_snapshot_len(snap));
    rcgc_stats *st;
    assert_int_equal(rcgc_snapshot_statistics(snap, RCGC_KEY_TRACEBACK, 0, &st), RCGC_OK);
    for (size_t i = 0; i < rcgc_stats_len(st); i++) {
        rcgc_stats_print(st, i, out);
        /* every frame, and the depth before the cut */
        const rcgc_traceback *t = rcgc_stats_get(st, i)->traceback;
        fprintf(out, "  total_nframe %ld\n", rcgc_traceback_total_nframe(t));
        put_frames(out, t, "  ", "\n");
    }
    rcgc_stats_free(st);
    rcgc_snapshot_free(snap);
    fclose(out);
    return text;
}

/* The same allocations and frees, from the same lines, in all domains and
 * with realloc, calloc, big blocks and objects. */
static __attribute__((noinline)) void workload(rcgc_runtime *rt, void **keep, rcgc_object **objs)
{
    for (int i = 0; i < 600; i++)
        keep[i] = rcgc_mem_malloc(rt, (size_t)(1 + (i * 37) % 700));
    for (int i = 0; i < 600; i += 3) {
        rcgc_mem_free(rt, keep[i]);
        keep[i] = NULL;
    }
    for (int i = 1; i < 600; i += 7)
        keep[i] = rcgc_mem_realloc(rt, keep[i], (size_t)(1 + (i * 11) % 300));
    for (int i = 0; i < 600; i += 3) {
        rcgc_mem_free(rt, keep[i]);   /* realloc(NULL) gave some a block */
        keep[i] = i % 2 ? rcgc_mem_calloc(rt, 3, (size_t)(1 + i % 50))
                        : rcgc_mem_malloc(rt, (size_t)(i % 90));
    }
    for (int i = 0; i < 100; i++) {
        objs[i] = rcgc_new(rt, i % 2 ? &small_type : &pair_type);
        if (i % 2 == 0 && i > 0) {
            rcgc_incref(objs[i - 1]);
            ((pair_obj *)objs[i])->ref = objs[i - 1];
        }
    }
    for (int i = 0; i < 100; i += 4) {
        rcgc_decref(objs[i]);
        objs[i] = NULL;
    }
    for (int i = 0; i < 20; i++)
        objs[i * 4] = rcgc_new(rt, i % 3 ? &huge_type : &small_type);
}

static void workload_free(rcgc_runtime *rt, void **keep, rcgc_object **objs)
{
    for (int i = 0; i < 600; i++)
        rcgc_mem_free(rt, keep[i]);
    for (int i = 0; i < 100; i++)
        if (objs[i])
            rcgc_decref(objs[i]);
}

/* The inline path records exactly what the wrappers record: the same
 * workload with tracing alone (fast path) and with fault injection armed
 * far away (every call through the wrappers) gives the same traces, sizes,
 * counts and tracebacks, for call sites and for native stacks. */
static void run_fast_vs_wrappers(rcgc_frame_source src, int nframe)
{
    char *got[2];
    for (int mode = 0; mode < 2; mode++) {
        rcgc_runtime *rt = new_rt();
        if (src == RCGC_FRAMES_NATIVE)
            assert_int_equal(rcgc_tracemalloc_set_frame_source(rt, src), RCGC_OK);
        assert_int_equal(rcgc_tracemalloc_start(rt, nframe), RCGC_OK);
        if (mode == 1)
            rcgc_mem_fail_after(rt, 1L << 40, 0);   /* never reached: wrappers only */
        void *keep[600];
        rcgc_object *objs[100];
        workload(rt, keep, objs);
        check_valid(rt);
        got[mode] = recorded(rt);
        workload_free(rt, keep, objs);
        rcgc_gc_collect(rt, 2);
        if (traced_now(rt) != 0) {
            char *left = recorded(rt);
            print_error("mode %d left:\n%s\n", mode, left);
            free(left);
        }
        assert_int_equal(traced_now(rt), 0);
        check_valid(rt);
        rcgc_mem_fail_after(rt, 0, 0);
        rcgc_runtime_free(rt);
    }
    if (strcmp(got[0], got[1]) != 0)
        print_error("fast path:\n%s\nwrappers:\n%s\n", got[0], got[1]);
    assert_string_equal(got[0], got[1]);
    assert_true(strlen(got[0]) > 200);
    free(got[0]);
    free(got[1]);
}

static void test_fast_path_equals_wrappers(void **state)
{
    (void)state;
    run_fast_vs_wrappers(RCGC_FRAMES_CALL_SITE, 1);
    run_fast_vs_wrappers(RCGC_FRAMES_NATIVE, 8);
}

/* start, clear_traces and stop with live blocks, through the fast path:
 * blocks from before start stay untraced, frees after stop break nothing,
 * and the counts stay those of the live traced blocks. */
static void test_fast_path_transitions(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    enum { N = 3000 };
    void **a = calloc(N, sizeof *a), **b = calloc(N, sizeof *b), **c = calloc(N, sizeof *c);
    rcgc_object *objs[200];
    for (int i = 0; i < N; i++)
        a[i] = rcgc_mem_malloc(rt, (size_t)(1 + i % 500));     /* before start */
    for (int i = 0; i < 100; i++)
        objs[i] = rcgc_new(rt, &pair_type);
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    check_valid(rt);
    size_t want = 0;
    for (int i = 0; i < N; i++) {
        b[i] = rcgc_mem_malloc(rt, (size_t)(1 + i % 512));    /* same pools as a[] */
        want += (size_t)(1 + i % 512);
    }
    for (int i = 100; i < 200; i++)
        objs[i] = rcgc_new(rt, &pair_type);
    want += 100 * sizeof(pair_obj);
    assert_int_equal(traced_now(rt), want);
    for (int i = 0; i < 100; i++)
        assert_null(rcgc_tracemalloc_get_object_traceback(objs[i]));
    int line = __LINE__ + 1;
    void *probe = rcgc_mem_malloc(rt, 40);
    want += 40;
    rcgc_traceback *t = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)probe);
    assert_non_null(t);
    assert_int_equal(rcgc_traceback_frame(t, 0).lineno, line);
    rcgc_traceback_free(t);
    check_valid(rt);
    /* Freeing blocks from before start changes nothing; freeing every other
     * traced block takes exactly its size off, and pools that empty and
     * change class keep no stale slot. */
    for (int i = 0; i < N; i++) {
        rcgc_mem_free(rt, a[i]);
        a[i] = NULL;
    }
    for (int i = 0; i < 100; i++)
        rcgc_decref(objs[i]);
    assert_int_equal(traced_now(rt), want);
    for (int i = 0; i < N; i += 2) {
        rcgc_mem_free(rt, b[i]);
        want -= (size_t)(1 + i % 512);
        b[i] = NULL;
    }
    assert_int_equal(traced_now(rt), want);
    for (int i = 0; i < N; i++)
        a[i] = rcgc_mem_malloc(rt, (size_t)(1 + (i * 7) % 512));
    check_valid(rt);
    /* clear_traces with live blocks: all of them untraced from now on. */
    rcgc_tracemalloc_clear_traces(rt);
    assert_int_equal(traced_now(rt), 0);
    check_valid(rt);
    assert_null(rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)probe));
    for (int i = 0; i < N; i++)
        c[i] = rcgc_mem_malloc(rt, 24);
    assert_int_equal(traced_now(rt), (size_t)N * 24);
    for (int i = 0; i < N; i++) {
        rcgc_mem_free(rt, a[i]);
        rcgc_mem_free(rt, b[i]);
        a[i] = b[i] = NULL;
    }
    for (int i = 100; i < 150; i++)
        rcgc_decref(objs[i]);
    assert_int_equal(traced_now(rt), (size_t)N * 24);
    check_valid(rt);
    /* stop with live traced blocks; free some after stop; start again. */
    rcgc_tracemalloc_stop(rt);
    check_valid(rt);
    for (int i = 0; i < N; i += 2) {
        rcgc_mem_free(rt, c[i]);
        c[i] = NULL;
    }
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    assert_int_equal(traced_now(rt), 0);
    for (int i = 0; i < N; i += 2)
        c[i] = rcgc_mem_malloc(rt, 8);
    assert_int_equal(traced_now(rt), (size_t)(N / 2) * 8);
    check_valid(rt);
    for (int i = 0; i < N; i++)
        rcgc_mem_free(rt, c[i]);
    rcgc_mem_free(rt, probe);
    for (int i = 150; i < 200; i++)
        rcgc_decref(objs[i]);
    assert_int_equal(traced_now(rt), 0);
    check_valid(rt);
    /* The fast path is left when anything else comes in (fault injection)
     * and taken again after, on the same live blocks. */
    void *x = rcgc_mem_malloc(rt, 100);
    rcgc_mem_fail_after(rt, 1L << 40, 0);
    void *y = rcgc_mem_malloc(rt, 100);
    rcgc_mem_free(rt, x);
    rcgc_mem_fail_after(rt, 0, 0);
    rcgc_mem_free(rt, y);
    assert_int_equal(traced_now(rt), 0);
    check_valid(rt);
    rcgc_tracemalloc_stop(rt);
    free(a), free(b), free(c);
    rcgc_runtime_free(rt);
}

/* Native stacks from two call chains that alternate: the recorded walk of
 * one must never be taken for the other (depths and frames differ). */
static __attribute__((noinline)) void *at_depth(rcgc_runtime *rt, int depth)
{
    void *p = depth > 0 ? at_depth(rt, depth - 1) : rcgc_mem_malloc(rt, 32);
    __asm__ volatile("" ::: "memory");
    return p;
}

static void test_native_alternating_stacks(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_NATIVE), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_start(rt, 4), RCGC_OK);
    void *p[40];
    for (int i = 0; i < 40; i++)
        p[i] = at_depth(rt, i % 2 ? 5 : 2);
    long total[2] = { 0, 0 };
    for (int i = 0; i < 40; i++) {
        rcgc_traceback *t = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)p[i]);
        assert_non_null(t);
        assert_int_equal(rcgc_traceback_len(t), 4);
        long tn = rcgc_traceback_total_nframe(t);
        if (i < 2)
            total[i] = tn;
        else
            assert_int_equal(tn, total[i % 2]);
        rcgc_traceback_free(t);
    }
    /* Built with frame pointers, the deeper chain has 3 more frames. */
    assert_int_equal(total[1] - total[0], 3);
    rcgc_snapshot *snap;
    assert_int_equal(rcgc_tracemalloc_take_snapshot(rt, &snap), RCGC_OK);
    rcgc_stats *st;
    assert_int_equal(rcgc_snapshot_statistics(snap, RCGC_KEY_TRACEBACK, 0, &st), RCGC_OK);
    assert_int_equal(rcgc_stats_len(st), 2);
    rcgc_stats_free(st);
    rcgc_snapshot_free(snap);
    for (int i = 0; i < 40; i++)
        rcgc_mem_free(rt, p[i]);
    check_valid(rt);
    rcgc_runtime_free(rt);
}

/* Native stacks on the pairs of a free and an allocation: the repeated
 * stack takes blocks of the free cache that carry their slot (F4) and
 * reuses the last walk; the stack changes depth every few allocations and
 * the sizes change class.  Every allocation's traceback, frame by frame
 * with its total_nframe, must be what the wrappers alone record for the
 * same run. */
static __attribute__((noinline)) void *native_at(rcgc_runtime *rt, int depth, size_t size)
{
    void *p = depth > 0 ? native_at(rt, depth - 1, size) : rcgc_mem_malloc(rt, size);
    __asm__ volatile("" ::: "memory");
    return p;
}

/* native_at from two call sites of one frame: the same frame addresses
 * all the way, one return address different, `depth` + 2 frames above
 * the allocation. */
static __attribute__((noinline)) void *native_via(rcgc_runtime *rt, int which, int depth,
                                                  size_t size)
{
    void *p;
    if (which) {
        p = native_at(rt, depth, size);
        __asm__ volatile("nop" ::: "memory");
    } else {
        __asm__ volatile("nop; nop" ::: "memory");
        p = native_at(rt, depth, size);
    }
    __asm__ volatile("" ::: "memory");
    return p;
}

/* The run of the test below: one line per allocation.  Every traceback of
 * one stack (which, depth) must be the first one of that stack, and with
 * all frames kept (`distinct`) the five stacks give five tracebacks: a
 * reused walk that missed a changed frame would break one or the other
 * (the wrappers reuse walks the same way, so comparing with them alone
 * would not). */
static char *native_pairs(int wrappers, int nframe, int distinct)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_NATIVE), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_start(rt, nframe), RCGC_OK);
    if (wrappers)
        rcgc_mem_fail_after(rt, 1L << 40, 0);   /* never reached: wrappers only */
    enum { LIVE = 64, N = 3000, KEYS = 32 };
    void *live[LIVE] = { 0 };
    char *first[KEYS] = { 0 };
    for (int i = 0; i < N; i++) {
        int k = (i * 7) % LIVE;
        rcgc_mem_free(rt, live[k]);
        /* Runs of 5 from one stack; the stacks differ in depth, or only
         * in a return address 2 or 11 frames above the allocation. */
        static const int depths[6] = { 0, 0, 9, 9, 2, 9 };
        int r = (i / 5) % 6, which = r & 1, key = which * 16 + depths[r];
        live[k] = native_via(rt, which, depths[r], (size_t)(8 + (i * 13) % 120));
        rcgc_traceback *t = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)live[k]);
        assert_non_null(t);
        char line[4096];
        int n = snprintf(line, sizeof line, "total %ld", rcgc_traceback_total_nframe(t));
        for (size_t f = 0; f < rcgc_traceback_len(t); f++)
            n += snprintf(line + n, sizeof line - (size_t)n, " %s:%d",
                          rcgc_traceback_frame(t, f).filename, rcgc_traceback_frame(t, f).lineno);
        assert_true(n < (int)sizeof line);
        rcgc_traceback_free(t);
        if (!first[key]) {
            first[key] = strdup(line);
            for (int o = 0; distinct && o < KEYS; o++)
                if (o != key && first[o] && strcmp(first[o], line) == 0)
                    fail_msg("allocation %d: stack %d recorded as stack %d: %s", i, key, o,
                             line);
        } else if (strcmp(first[key], line) != 0) {
            fail_msg("allocation %d: stack %d was\n%s\nnow\n%s", i, key, first[key], line);
        }
        fprintf(out, "%d: %s\n", i, line);
    }
    for (int o = 0; o < KEYS; o++)
        free(first[o]);
    check_valid(rt);
    for (int k = 0; k < LIVE; k++)
        rcgc_mem_free(rt, live[k]);
    assert_int_equal(traced_now(rt), 0);
    check_valid(rt);
    rcgc_mem_fail_after(rt, 0, 0);
    rcgc_runtime_free(rt);
    fclose(out);
    return text;
}

/* Where the repeat check has an AVX2 loop (RCGC_UNWIND_HAVE_AVX2 and a CPU
 * with AVX2), the native tests run it and then the SSE2 loop. */
static int avx2_modes(void)
{
#if defined(RCGC_UNWIND_HAVE_AVX2)
    return rcgc_unwind_avx2 ? 2 : 1;
#else
    return 1;
#endif
}

static void set_avx2_mode(int mode, int had)
{
#if defined(RCGC_UNWIND_HAVE_AVX2)
    rcgc_unwind_avx2 = mode == 0 ? had : 0;
#else
    (void)mode, (void)had;
#endif
}

static int avx2_now(void)
{
#if defined(RCGC_UNWIND_HAVE_AVX2)
    return rcgc_unwind_avx2;
#else
    return 0;
#endif
}

static void native_pairs_all_limits(void);

static void test_native_pairs_equal_wrappers(void **state)
{
    (void)state;
    int had = avx2_now(), modes = avx2_modes();
    for (int mode = 0; mode < modes; mode++) {
        set_avx2_mode(mode, had);
        native_pairs_all_limits();
    }
    set_avx2_mode(0, had);
}

static void native_pairs_all_limits(void)
{
    static const int limits[] = { 1, 3, 16 };
    for (int l = 0; l < 3; l++) {
        char *got[2];
        /* One call site (a loop the compiler cannot unroll): the same
         * outer frames both times. */
        volatile int runs = 2;
        for (int w = 0; w < runs; w++)
            got[w] = native_pairs(w, limits[l], limits[l] == 16);
        char *fast = got[0], *slow = got[1];
        if (strcmp(fast, slow) != 0) {
            const char *a = fast, *b = slow;
            while (*a && *a == *b)
                a++, b++;
            while (a > fast && a[-1] != '\n')
                a--, b--;
            print_error("limit %d: first difference:\nfast path: %.200s\nwrappers:  %.200s\n",
                        limits[l], a, b);
        }
        assert_string_equal(fast, slow);
        assert_non_null(strstr(fast, "\n2999: "));
        free(fast);
        free(slow);
    }
}

/* A native stack that repeats the last one reuses its traceback only while
 * the settings it was captured with hold: a new limit (start while
 * tracing) or another frame source must capture again.  The settings
 * change in a call of their own, so that every allocation comes from the
 * same call and the stacks are identical word for word. */
static __attribute__((noinline)) void repeat_settings(rcgc_runtime *rt, int i)
{
    if (i == 3)
        assert_int_equal(rcgc_tracemalloc_start(rt, 2), RCGC_OK);
    if (i == 5)
        assert_int_equal(rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_CALL_SITE), RCGC_OK);
    if (i == 6)
        assert_int_equal(rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_NATIVE), RCGC_OK);
}

static void test_native_repeat_follows_settings(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_NATIVE), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_start(rt, 16), RCGC_OK);
    enum { N = 8 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        repeat_settings(rt, i);
        p[i] = at_depth(rt, 20);
    }
    size_t want_len[N] = { 16, 16, 16, 2, 2, 1, 2, 2 };
    long total = 0;
    for (int i = 0; i < N; i++) {
        rcgc_traceback *t = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)p[i]);
        assert_non_null(t);
        /* 21 frames of at_depth, built with frame pointers. */
        assert_int_equal(rcgc_traceback_len(t), want_len[i]);
        long tn = rcgc_traceback_total_nframe(t);
        if (i == 0)
            total = tn;
        if (i == 5) {
            assert_string_equal(rcgc_traceback_frame(t, 0).filename, __FILE__);
        } else {
            assert_true(total > 21);
            assert_int_equal(tn, total);
        }
        rcgc_traceback_free(t);
    }
    for (int i = 0; i < N; i++)
        rcgc_mem_free(rt, p[i]);
    check_valid(rt);
    rcgc_runtime_free(rt);
}

/* Blocks freed into the free cache while tracing have their trace slot in
 * the cache's slot entry (F4), and clear_traces, stop and start must not leave them naming a
 * freed side array: after each, blocks from the cache are traced exactly
 * (rcgc_validate checks F4, ASan the stores). */
static __attribute__((noinline)) void cache_round(rcgc_runtime *rt, void **p, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = rcgc_mem_malloc(rt, 48);
}

static void test_cached_slots_across_clear(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    /* One block of the class stays live, so frees are cached, not spilled. */
    void *keep = rcgc_mem_malloc(rt, 40);
    enum { N = 20 };
    void *p[N];
    for (int round = 0; round < 3; round++) {
        /* Blocks cached by the last round wait in the free cache. */
        if (round == 1) {
            rcgc_tracemalloc_clear_traces(rt);
        } else {
            rcgc_tracemalloc_stop(rt);
            assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
        }
        check_valid(rt);
        cache_round(rt, p, N);
        assert_int_equal(traced_now(rt), (size_t)N * 48);
        for (int i = 0; i < N; i++)
            rcgc_mem_free(rt, p[i]);
        assert_int_equal(traced_now(rt), 0);
        check_valid(rt);
        cache_round(rt, p, N);   /* from the cache, slots carried */
        assert_int_equal(traced_now(rt), (size_t)N * 48);
        for (int i = 0; i < N; i++) {
            rcgc_traceback *t = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)p[i]);
            assert_non_null(t);
            rcgc_traceback_free(t);
        }
        for (int i = 0; i < N; i++)
            rcgc_mem_free(rt, p[i]);
        check_valid(rt);
    }
    rcgc_tracemalloc_stop(rt);
    rcgc_mem_free(rt, keep);
    check_valid(rt);
    rcgc_runtime_free(rt);
}

/* get_traced_memory against a model, after every free and allocation of
 * random free/allocate pairs through the fast path (call sites and native
 * frames; pool blocks, a few big ones, reallocs, reset_peak now and then):
 * current and peak must be exact at every step. */
static void check_model(rcgc_runtime *rt, size_t cur_model, size_t peak_model)
{
    size_t cur, peak;
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, cur_model);
    assert_int_equal(peak, peak_model);
}

/* A pooled object freed while tracing enters its class's free cache with
 * NULL in its slot entry (F4); the next traced rcgc_mem_malloc of its
 * class from the call site that hit last takes a block of the traced
 * twin (H1, perf-tm17), not the object's, with its trace in its header. */
static __attribute__((noinline)) void *alloc_small_here(rcgc_runtime *rt, int *line)
{
    *line = __LINE__ + 1;
    return rcgc_mem_malloc(rt, sizeof(small));
}

static void test_freed_object_not_a_slot(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    int line;
    void *keep[4];
    for (int i = 0; i < 4; i++)   /* the site's cache entry becomes the last hit */
        keep[i] = alloc_small_here(rt, &line);
    size_t before = traced_now(rt);
    assert_int_equal(before, 4 * sizeof(small));
    rcgc_object *o = rcgc_new(rt, &small_type);
    rcgc_decref(o);               /* into the free cache, NULL in its slot entry */
    assert_int_equal(traced_now(rt), before);
    void *p = alloc_small_here(rt, &line);
    assert_ptr_not_equal(p, (void *)o);   /* the traced twin's block (H1) */
    assert_int_equal(rcgc_pool_of(p)->szidx,
                     (unsigned)rcgc_size_class(sizeof(small)) + RCGC_NCLASSES);
    assert_int_equal(traced_now(rt), before + sizeof(small));
    rcgc_traceback *t = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)p);
    assert_non_null(t);
    assert_int_equal(rcgc_traceback_frame(t, 0).lineno, line);
    rcgc_traceback_free(t);
    check_valid(rt);
    rcgc_mem_free(rt, p);
    for (int i = 0; i < 4; i++)
        rcgc_mem_free(rt, keep[i]);
    assert_int_equal(traced_now(rt), 0);
    check_valid(rt);
    rcgc_tracemalloc_stop(rt);
    rcgc_runtime_free(rt);
}

/* H1 (perf-tm17; F4 before it): a traced free of a block of a traced
 * pool pushes it into the traced twin's row; the traced allocation pops
 * it again (a stays live and traced); a pooled object freed next goes to
 * its own class's row: the next traced allocation takes a block of the
 * traced twin, not the object's, and a's trace stays. */
static void test_object_push_clears_slot_entry(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    int line;
    void *keep[4];
    for (int i = 0; i < 4; i++)   /* the site's cache entry becomes the last hit */
        keep[i] = alloc_small_here(rt, &line);
    void *a = alloc_small_here(rt, &line);
    rcgc_mem_free(rt, a);         /* into the traced free's ring (T4) */
    rcgc_mem_hdr_ring_flush(rt);  /* cached */
    void *a2 = alloc_small_here(rt, &line);
    assert_ptr_equal(a2, a);      /* popped: the entry stays behind, stale */
    size_t before = traced_now(rt);
    assert_int_equal(before, 5 * sizeof(small));
    rcgc_object *o = rcgc_new(rt, &small_type);
    assert_ptr_not_equal((void *)o, a);
    rcgc_decref(o);               /* pushed at a's old position */
    assert_int_equal(traced_now(rt), before);
    check_valid(rt);
    void *p = alloc_small_here(rt, &line);
    assert_ptr_not_equal(p, (void *)o);
    assert_int_equal(rcgc_pool_of(p)->szidx,
                     (unsigned)rcgc_size_class(sizeof(small)) + RCGC_NCLASSES);
    assert_int_equal(traced_now(rt), before + sizeof(small));
    rcgc_traceback *t = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)p);
    assert_non_null(t);
    assert_int_equal(rcgc_traceback_frame(t, 0).lineno, line);
    rcgc_traceback_free(t);
    t = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)a);
    assert_non_null(t);
    rcgc_traceback_free(t);
    check_valid(rt);
    rcgc_mem_free(rt, p);
    rcgc_mem_free(rt, a);
    for (int i = 0; i < 4; i++)
        rcgc_mem_free(rt, keep[i]);
    assert_int_equal(traced_now(rt), 0);
    check_valid(rt);
    rcgc_tracemalloc_stop(rt);
    rcgc_runtime_free(rt);
}


/* The traced allocation from the free cache tests only the top's block
 * (tmfast.h, rcgc_trace_try_cached_last): an empty row's top is its NULL
 * floor.  Blocks freed traced fill the traced twin's row (H1),
 * allocations from the same site pop them all, and the next ones find
 * the floor: they must come from the pools, traced, and
 * get_traced_memory must stay exact. */
static void test_empty_cache_floor(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    /* the traced twin's row (H1): where rcgc_mem_malloc's traced blocks
     * are cached */
    unsigned c = (unsigned)rcgc_size_class(sizeof(small)) + RCGC_NCLASSES;
    for (unsigned k = 0; k < RCGC_NCLASSES; k++)
        assert_null(rt->pool.cslot[k][0]);
    int line;
    enum { NB = 12, NKEEP = 4, NMORE = 6 };
    void *keep[NKEEP], *b[NB], *more[NMORE];
    for (int i = 0; i < NKEEP; i++)   /* the class keeps live blocks: no spill */
        keep[i] = alloc_small_here(rt, &line);
    for (int i = 0; i < NB; i++)
        b[i] = alloc_small_here(rt, &line);
    /* Whatever the cache held before start goes first (untraced entries). */
    void *pre[RCGC_FREE_CACHE];
    int npre = 0;
    while (rcgc_pool_ncache(&rt->pool, c) > 0)
        pre[npre++] = alloc_small_here(rt, &line);
    for (int i = 0; i < NB; i++)
        rcgc_mem_free(rt, b[i]);
    rcgc_mem_hdr_ring_flush(rt);   /* T4: the ring's blocks cached, in order */
    assert_int_equal(rcgc_pool_ncache(&rt->pool, c), NB);
    check_valid(rt);
    size_t base = (size_t)(NKEEP + npre) * sizeof(small);
    assert_int_equal(traced_now(rt), base);
    for (int i = NB - 1; i >= 0; i--) {   /* LIFO: the same blocks, through F4 */
        void *p = alloc_small_here(rt, &line);
        assert_ptr_equal(p, b[i]);
    }
    assert_int_equal(rcgc_pool_ncache(&rt->pool, c), 0);
    for (int i = 0; i < NMORE; i++) {     /* the floor: from the pools */
        more[i] = alloc_small_here(rt, &line);
        assert_non_null(more[i]);
        for (int j = 0; j < NB; j++)
            assert_ptr_not_equal(more[i], b[j]);
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(more[i], more[j]);
        rcgc_traceback *t = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)more[i]);
        assert_non_null(t);
        assert_int_equal(rcgc_traceback_frame(t, 0).lineno, line);
        rcgc_traceback_free(t);
    }
    assert_int_equal(traced_now(rt), base + (size_t)(NB + NMORE) * sizeof(small));
    check_valid(rt);
    for (int i = 0; i < NMORE; i++)
        rcgc_mem_free(rt, more[i]);
    for (int i = 0; i < NB; i++)
        rcgc_mem_free(rt, b[i]);
    for (int i = 0; i < npre; i++)
        rcgc_mem_free(rt, pre[i]);
    for (int i = 0; i < NKEEP; i++)
        rcgc_mem_free(rt, keep[i]);
    assert_int_equal(traced_now(rt), 0);
    check_valid(rt);
    rcgc_tracemalloc_stop(rt);
    rcgc_runtime_free(rt);
}

/* A repeated native stack takes the block of its own size class: the
 * allocation's failed pop hands its top and where it lives to the
 * tracer (rcgc_trace_malloc_native), which pops from them.  Every class
 * gets blocks freed into its cache (one block of each kept live, so the
 * pushes go ahead), then one stack (one call site: the walk repeats)
 * allocates every class in turn, in another order than the frees: each
 * must get its own class's last freed block back (LIFO), traced at its
 * size.  Fails when the class or the top passed is another class's. */
static void test_native_pop_own_class(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_NATIVE), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_start(rt, 16), RCGC_OK);
    enum { NB = 3 };
    void *keep[RCGC_NCLASSES], *b[RCGC_NCLASSES][NB];
    for (int k = 0; k < RCGC_NCLASSES; k++) {
        size_t size = (size_t)(k + 1) * RCGC_ALIGNMENT;
        keep[k] = native_at(rt, 2, size);
        for (int i = 0; i < NB; i++)
            b[k][i] = native_at(rt, 2, size);
    }
    size_t live = traced_now(rt);
    for (int i = 0; i < NB; i++)
        for (int k = 0; k < RCGC_NCLASSES; k++)
            rcgc_mem_free(rt, b[k][i]);
    check_valid(rt);
    /* One call site for all (the walk repeats from the second on):
     * each block is taken, freed and taken again. */
    for (int n = 0; n < NB * RCGC_NCLASSES * 2; n++) {
        int i = NB - 1 - n / (2 * RCGC_NCLASSES), j = n / 2 % RCGC_NCLASSES;
        int k = (j * 7 + i) % RCGC_NCLASSES;   /* 7 is prime to 32 */
        size_t size = (size_t)(k + 1) * RCGC_ALIGNMENT - (size_t)(j % 3);
        size_t before = traced_now(rt);
        void *p = native_at(rt, 2, size);
        assert_ptr_equal(p, b[k][i]);
        assert_int_equal(traced_now(rt), before + size);
        if (n % 2 == 0) {
            rcgc_mem_free(rt, p);
            rcgc_mem_hdr_ring_flush(rt);   /* T4: cached at once */
        }
    }
    check_valid(rt);
    assert_true(traced_now(rt) <= live);
    for (int k = 0; k < RCGC_NCLASSES; k++) {
        for (int i = 0; i < NB; i++)
            rcgc_mem_free(rt, b[k][i]);
        rcgc_mem_free(rt, keep[k]);
    }
    assert_int_equal(traced_now(rt), 0);
    check_valid(rt);
    rcgc_tracemalloc_stop(rt);
    rcgc_runtime_free(rt);
}

/* The traced free finds a block's slot from its arena's trace table,
 * whose entry is the pool's side array biased by the pool's position in
 * its 64 KiB (tmfast.h, rcgc_trace_table_bias) and indexed with the
 * address's low 16 bits.  Every size class, five pools' worth of blocks
 * (pools at all four positions), each of a different size within its
 * class, freed in a scrambled order: after every free the traced memory
 * must be the exact sum of the blocks still live, and rcgc_validate (F1)
 * must agree.  Fails when the bias or the index is off for any class or
 * position. */
static void test_trace_table_bias(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    for (unsigned c = 0; c < 32; c++) {
        size_t bsize = 16 * (size_t)(c + 1);
        size_t n = 5 * (16384 / bsize);
        void **p = malloc(n * sizeof *p);
        size_t *sz = malloc(n * sizeof *sz);
        assert_non_null(p);
        assert_non_null(sz);
        size_t live = traced_now(rt), sum = live;
        for (size_t i = 0; i < n; i++) {
            sz[i] = bsize - i % 16;
            p[i] = rcgc_mem_malloc(rt, sz[i]);
            assert_non_null(p[i]);
            sum += sz[i];
        }
        assert_int_equal(traced_now(rt), sum);
        check_valid(rt);
        for (size_t k = 0; k < n; k++) {
            size_t i = (k * 7919) % n;   /* n is never a multiple of 7919 */
            rcgc_mem_free(rt, p[i]);
            sum -= sz[i];
            assert_int_equal(traced_now(rt), sum);
        }
        assert_int_equal(sum, live);
        check_valid(rt);
        free(p);
        free(sz);
    }
    assert_int_equal(traced_now(rt), 0);
    rcgc_tracemalloc_stop(rt);
    rcgc_runtime_free(rt);
}

/* A walk that could not be recorded (a chain longer than the memo) leaves
 * a memo that rcgc_unwind_same never takes for a repeat, even when the
 * same memo held a shorter walk from the same frame before (its frame
 * pointer is gone: fps[0] == 0).  The shorter walk itself repeats, but
 * not once the saved frame pointer of its first record changes, nor with
 * another stack top. */
static __attribute__((noinline)) int walk_at_depth(int depth, rcgc_unwind_memo *m, int *same)
{
    if (depth > 0) {
        int r = walk_at_depth(depth - 1, m, same);
        __asm__ volatile("" ::: "memory");
        return r;
    }
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    int seen;
    rcgc_unwind_walk(fp, 1, 4, &seen, m);
    *same = rcgc_unwind_same(fp, 1, m);
    /* The keyed check (the fast paths'): the same answer where its loop
     * can run (a walk recorded while the AVX2 loop is off has no key and
     * never repeats there). */
    int keyed = rcgc_unwind_same_key(fp, m, 0);
#if defined(RCGC_UNWIND_HAVE_AVX2)
    if (!rcgc_unwind_avx2) {
        if (keyed || m->key != RCGC_UNWIND_NO_KEY)
            *same = 5;
        keyed = *same;
    }
#endif
#if defined(RCGC_UNWIND_HAVE_U1)
    /* U3: a walk whose records span 512 KiB or more has no key: the
     * unkeyed check alone answers for it. */
    if (m->fps[0] != 0 && !rcgc_unwind_u3_fits(m, m->nchk)) {
        if (rcgc_unwind_same_key(fp, m, 0) || m->key != RCGC_UNWIND_NO_KEY)
            *same = 5;
        keyed = *same;
    }
#endif
    if (keyed != *same)
        *same = 6;
    if (*same == 1 && m->key != RCGC_UNWIND_NO_KEY) {
        /* Its accumulator starts with record 0's saved frame pointer;
         * another key (another skip or stack top) never repeats. */
        volatile uintptr_t *saved = (volatile uintptr_t *)fp;
        uintptr_t keep = *saved;
        *saved = keep + 16;
        int changed = rcgc_unwind_same_key(fp, m, 0);
        *saved = keep;
        if (changed)
            *same = 7;
        m->key += 16;
        if (rcgc_unwind_same_key(fp, m, 0))
            *same = 8;
        m->key = RCGC_UNWIND_NO_KEY;
        if (rcgc_unwind_same_key(fp, m, 0))
            *same = 9;
        m->key = m->hi;
        if (!rcgc_unwind_same_key(fp, m, 0))
            *same = 10;
        /* Another tag (the tracer's call site) never repeats. */
        if (rcgc_unwind_same_key(fp, m, 8) || rcgc_unwind_same_key(fp, m, (uintptr_t)1 << 63))
            *same = 12;
        /* K1: the head is record 0's frame and saved frame pointer, and
         * a head with another frame (the gate) never repeats. */
        if (m->head_fp != m->fps[0] || m->w0tag[0] != m->words[0])
            *same = 15;
        m->head_fp += 16;
        if (rcgc_unwind_same_key(fp, m, 0))
            *same = 16;
        m->head_fp -= 16;
        m->w0tag[0] ^= 16;
        if (rcgc_unwind_same_key(fp, m, 0))
            *same = 17;
        m->w0tag[0] ^= 16;
        if (!rcgc_unwind_same_key(fp, m, 0))
            *same = 18;
#if defined(RCGC_UNWIND_HAVE_U1)
        /* U3: the quads' record offsets from record 0, four to a word,
         * and the entry's word. */
        for (int q = 0; 4 * q + 4 <= m->nchk && q < RCGC_UNWIND_MEMO / 8; q++)
            if (m->fpq[q] != ((uint64_t)((m->fps[4 * q + 3] - fp) / 8) |
                              (uint64_t)((m->fps[4 * q + 4] - fp) / 8) << 16 |
                              (uint64_t)((m->fps[4 * q + 1] - fp) / 8) << 32 |
                              (uint64_t)((m->fps[4 * q + 2] - fp) / 8) << 48))
                *same = 13;
        if (m->entw != rcgc_unwind_u3_entw(m, m->n))
            *same = 14;
#endif
        /* Every record's words count, each of them (the keyed check runs
         * unrolled halves of four records from the one of the walk's
         * last records, and a loop first over the records past 64). */
        for (int k = 1; k < m->n; k++) {
            volatile uintptr_t *rec = (volatile uintptr_t *)m->fps[k];
            for (int w = 0; w < 2; w++) {
                uintptr_t keep_w = rec[w];
                rec[w] = keep_w ^ 0x40;
                int rec_same = rcgc_unwind_same_key(fp, m, 0) || rcgc_unwind_same(fp, 1, m);
                rec[w] = keep_w;
                if (rec_same)
                    *same = 11;
            }
        }
    }
    if (*same && m->n > 0) {
        /* The first record's saved frame pointer counts too: changed
         * for a moment (it is read only when this function returns),
         * the walk is no longer the same. */
        volatile uintptr_t *saved = (volatile uintptr_t *)fp;
        uintptr_t keep = *saved;
        *saved = keep + 16;
        int changed = rcgc_unwind_same(fp, 1, m);
        *saved = keep;
        if (changed)
            *same = 2;
        /* Another stack top (another thread's stack) is never the same
         * walk; the stack's bottom takes no part (every record lies
         * between fp and the top). */
        m->hi += 16;
        if (rcgc_unwind_same(fp, 1, m))
            *same = 3;
        m->hi -= 16;
        m->lo -= 16;
        if (!rcgc_unwind_same(fp, 1, m))
            *same = 4;
        m->lo += 16;
    }
    return seen;
}

/* U3: a walk whose records span 512 KiB or more (a frame with a large
 * buffer) has no key, and the unkeyed check still takes it for a repeat;
 * a keyed walk's quad words and entry word are the packed offsets. */
static __attribute__((noinline)) void walk_under_big_frame(rcgc_unwind_memo *m, int *res)
{
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    int seen;
    rcgc_unwind_walk(fp, 1, 4, &seen, m);
    res[0] = m->n >= 3 && m->fps[m->nchk] - m->fps[0] > 8 * (uintptr_t)UINT16_MAX;
    res[1] = m->key == RCGC_UNWIND_NO_KEY;
    res[2] = rcgc_unwind_same(fp, 1, m);
    res[3] = rcgc_unwind_same_key(fp, m, 0);
}

static __attribute__((noinline)) void big_frame(rcgc_unwind_memo *m, int *res)
{
    volatile char buf[640 * 1024];
    buf[0] = 1;
    walk_under_big_frame(m, res);
    buf[sizeof buf - 1] = 2;
}

static void test_wide_walk_has_no_key(void **state)
{
    (void)state;
    rcgc_unwind_memo *m = calloc(1, sizeof *m);
    assert_non_null(m);
    int res[4];
    big_frame(m, res);
#if !defined(__SANITIZE_ADDRESS__)
    /* (ASan may keep the buffer on its own stack, out of the chain.) */
    assert_true(res[0]);
#endif
#if defined(RCGC_UNWIND_HAVE_U1)
    if (res[0])
        assert_true(res[1]);
#endif
    assert_int_equal(res[2], 1);
    if (res[1])
        assert_int_equal(res[3], 0);
    free(m);
}

static void unrecorded_walk_never_repeats(void);

static void test_unrecorded_walk_never_repeats(void **state)
{
    (void)state;
    int had = avx2_now(), modes = avx2_modes();
    for (int mode = 0; mode < modes; mode++) {
        set_avx2_mode(mode, had);
        unrecorded_walk_never_repeats();
    }
    set_avx2_mode(0, had);
}

static void unrecorded_walk_never_repeats(void)
{
    rcgc_unwind_memo *m = calloc(1, sizeof *m);
    assert_non_null(m);
    int same = -1;
    /* Walks of 80 lengths in a row: every count of records modulo eight
     * (the AVX2 loop's rounds and its odd half), every entry into the
     * keyed check's unrolled halves and walks past them (more than 64
     * records after the first: its loop, then all the halves). */
    for (int d = 0; d < 80; d++) {
        walk_at_depth(d, m, &same);
        assert_true(m->n > d);
        assert_int_equal(same, 1);
    }
    int shallow = walk_at_depth(3, m, &same);
    assert_true(m->n > 0);
    assert_int_equal(same, 1);
    int deep = walk_at_depth(RCGC_UNWIND_MEMO + 20, m, &same);
    assert_true(deep > shallow + RCGC_UNWIND_MEMO);
    assert_int_equal(m->n, 0);
    assert_int_equal(same, 0);
    /* A walk of one record (a frame on this stack whose saved frame
     * pointer ends the chain): the check still runs a full round of four
     * (its loop has no test before the first, so nchk >= 4, the padding
     * repeating record 0); it repeats, and stops repeating when either
     * word of the record changes.  Crashes or fails with nchk == 0. */
    _Alignas(16) volatile uintptr_t frame[2] = { 0, 0x1234 };
    uintptr_t ffp = (uintptr_t)&frame[0];
    assert_int_equal(rcgc_unwind_walk(ffp, 0, 4, &same, m), 1);
    assert_int_equal(m->n, 1);
    assert_int_equal(m->nchk, 4);
    assert_true(rcgc_unwind_same(ffp, 0, m));
    frame[1] = 0x1238;
    assert_false(rcgc_unwind_same(ffp, 0, m));
    frame[1] = 0x1234;
    frame[0] = 8;
    assert_false(rcgc_unwind_same(ffp, 0, m));
    frame[0] = 0;
    assert_true(rcgc_unwind_same(ffp, 0, m));
    free(m);
}


/* Native stacks left by longjmp and by a switch to another stack: the
 * repeat check compares what the walk would read, so a chain rebuilt at
 * the same addresses after a longjmp, from another caller, is walked
 * again, and an allocation on a stack outside this thread's (a coroutine
 * on memory of its own: the walk ends at once, no frame is recorded)
 * never takes a walk recorded on the thread's stack, before or after. */
static rcgc_runtime *switch_rt;
static void *switch_block;
static jmp_buf switch_jmp;

/* The one call site of the test. */
static __attribute__((noinline)) void *switch_site(void)
{
    void *p = rcgc_mem_malloc(switch_rt, 40);
    __asm__ volatile("" ::: "memory");
    return p;
}

static __attribute__((noinline)) void switch_chain(int depth, int jump)
{
    if (depth > 0) {
        switch_chain(depth - 1, jump);
        __asm__ volatile("" ::: "memory");
        return;
    }
    switch_block = switch_site();
    if (jump)
        longjmp(switch_jmp, 1);
}

/* switch_chain's frames from another caller at the same depth. */
static __attribute__((noinline)) void switch_chain_other(int depth, int jump)
{
    switch_chain(depth, jump);
    __asm__ volatile("nop" ::: "memory");
}

static long switch_total(void *p)
{
    rcgc_traceback *t = rcgc_tracemalloc_get_traceback(switch_rt, 0, (uintptr_t)p);
    assert_non_null(t);
    long n = rcgc_traceback_total_nframe(t);
    rcgc_traceback_free(t);
    return n;
}

static char *switch_text(void *p)
{
    rcgc_traceback *t = rcgc_tracemalloc_get_traceback(switch_rt, 0, (uintptr_t)p);
    assert_non_null(t);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    fprintf(out, "%ld", rcgc_traceback_total_nframe(t));
    put_frames(out, t, " ", "");
    fclose(out);
    rcgc_traceback_free(t);
    return text;
}

#if !defined(__SANITIZE_ADDRESS__)
#include <ucontext.h>
static ucontext_t switch_main_ctx, switch_co_ctx;
static void *switch_co_blocks[3];

static void switch_coroutine(void)
{
    for (int i = 0; i < 3; i++) {
        switch_chain(2, 0);
        switch_co_blocks[i] = switch_block;
    }
}
#endif

static void test_native_longjmp_and_switched_stacks(void **state)
{
    (void)state;
    switch_rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_set_frame_source(switch_rt, RCGC_FRAMES_NATIVE), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_start(switch_rt, 32), RCGC_OK);
    enum { N = 12 };
    void *p[N];
    char *text[N];
    /* Repeats from one chain, then longjmp out of it (its frames are
     * gone), then the same depth from another caller (the same call site,
     * the same frame addresses below switch_chain_other's): the walk must
     * see the other caller, then the first chain again. */
    for (int i = 0; i < N; i++) {
        int other = i >= 4 && i < 8;
        if (setjmp(switch_jmp) == 0) {
            if (other)
                switch_chain_other(3, i % 2);
            else
                switch_chain(4, i % 2);
        }
        p[i] = switch_block;
        text[i] = switch_text(p[i]);
    }
    for (int i = 0; i < N; i++) {
        int other = i >= 4 && i < 8;
        assert_string_equal(text[i], text[other ? 4 : 0]);
    }
    assert_string_not_equal(text[0], text[4]);
    long thread_total = switch_total(p[0]);
#if !defined(__SANITIZE_ADDRESS__)
    /* A coroutine on its own stack: its walks end at its first frame
     * (outside the thread's stack); between its allocations the thread's
     * chain allocates again at the same call site. */
    size_t size = 256 * 1024;
    void *stack = malloc(size);
    assert_non_null(stack);
    assert_int_equal(getcontext(&switch_co_ctx), 0);
    switch_co_ctx.uc_stack.ss_sp = stack;
    switch_co_ctx.uc_stack.ss_size = size;
    switch_co_ctx.uc_link = &switch_main_ctx;
    makecontext(&switch_co_ctx, switch_coroutine, 0);
    void *around[2];
    for (volatile int k = 0; k < 2; k++) {
        /* One call site (a loop the compiler does not unroll): before
         * the coroutine runs, then after. */
        switch_chain(4, 0);
        around[k] = switch_block;
        if (k == 0)
            assert_int_equal(swapcontext(&switch_main_ctx, &switch_co_ctx), 0);
    }
    for (int i = 0; i < 3; i++)
        assert_true(switch_total(switch_co_blocks[i]) < thread_total);
    char *tb = switch_text(around[0]), *ta = switch_text(around[1]);
    assert_string_equal(tb, ta);
    assert_int_equal(switch_total(around[0]), thread_total);
    free(tb), free(ta);
    rcgc_mem_free(switch_rt, around[0]);
    rcgc_mem_free(switch_rt, around[1]);
    for (int i = 0; i < 3; i++)
        rcgc_mem_free(switch_rt, switch_co_blocks[i]);
    free(stack);
#endif
    (void)thread_total;
    for (int i = 0; i < N; i++) {
        free(text[i]);
        rcgc_mem_free(switch_rt, p[i]);
    }
    check_valid(switch_rt);
    rcgc_runtime_free(switch_rt);
}

/* One call site for test_peak_headroom. */
static void *headroom_alloc(rcgc_runtime *rt, size_t n)
{
    return rcgc_mem_malloc(rt, n);
}

/* The traced size is kept as peak - room (runtime.h, rcgc_trace_count):
 * an allocation that fits the headroom exactly leaves the peak, one byte
 * more raises it by that byte, reset_peak leaves no headroom, and every
 * step is exact through the inline path (the same site and size class,
 * blocks cached with their slots, F4) and rcgc_validate's R1 holds. */
static void test_peak_headroom(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    check_model(rt, 0, 0);
    void *a = headroom_alloc(rt, 100);
    void *b = headroom_alloc(rt, 100);
    check_model(rt, 200, 200);
    rcgc_mem_free(rt, a);
    rcgc_mem_free(rt, b);
    check_model(rt, 0, 200);
    /* Headroom 200: 100 + 100 fit exactly, the peak stays. */
    a = headroom_alloc(rt, 100);
    check_model(rt, 100, 200);
    b = headroom_alloc(rt, 100);
    check_model(rt, 200, 200);
    assert_int_equal(rcgc_validate(rt, stderr), 0);
    /* No headroom left: one byte past the peak raises it by one. */
    rcgc_mem_free(rt, b);
    b = headroom_alloc(rt, 101);
    check_model(rt, 201, 201);
    rcgc_mem_free(rt, a);
    a = headroom_alloc(rt, 99);
    check_model(rt, 200, 201);
    void *c = headroom_alloc(rt, 97);   /* headroom 1: a borrow of 96 */
    check_model(rt, 297, 297);
    assert_int_equal(rcgc_validate(rt, stderr), 0);
    /* reset_peak with headroom: the peak drops to traced. */
    rcgc_mem_free(rt, c);
    check_model(rt, 200, 297);
    rcgc_tracemalloc_reset_peak(rt);
    check_model(rt, 200, 200);
    rcgc_mem_free(rt, a);
    check_model(rt, 101, 200);
    c = headroom_alloc(rt, 100);
    check_model(rt, 201, 201);
    assert_int_equal(rcgc_validate(rt, stderr), 0);
    rcgc_mem_free(rt, b);
    rcgc_mem_free(rt, c);
    check_model(rt, 0, 201);
    assert_int_equal(rcgc_validate(rt, stderr), 0);
    rcgc_tracemalloc_stop(rt);
    rcgc_runtime_free(rt);
}

/* The MEM domain's live count (derived, M3 in pool.h) stays exact while
 * the traced fast paths count nothing: blocks allocated and freed through the inline call-site path
 * and the native entry, some of them freed after tracing stops. */
static long mem_live_now(rcgc_runtime *rt)
{
    return rcgc_pool_mem_live(rt);
}

static void test_mem_live_while_tracing(void **state)
{
    (void)state;
    enum { N = 64 };
    for (int src = 0; src < 2; src++) {
        rcgc_runtime *rt = new_rt();
        long live0 = mem_live_now(rt);
        void *early = rcgc_mem_malloc(rt, 48);   /* before start: untraced */
        if (src == 1)
            rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_NATIVE);
        assert_int_equal(rcgc_tracemalloc_start(rt, src ? 16 : 1), RCGC_OK);
        void *p[N];
        for (int round = 0; round < 3; round++) {
            for (int i = 0; i < N; i++)
                p[i] = headroom_alloc(rt, 16 + (size_t)(i % 4) * 16);
            assert_int_equal(mem_live_now(rt), live0 + 1 + N);
            for (int i = 0; i < N; i++)
                rcgc_mem_free(rt, p[i]);
            assert_int_equal(mem_live_now(rt), live0 + 1);
        }
        for (int i = 0; i < N; i++)
            p[i] = headroom_alloc(rt, 32);
        rcgc_mem_free(rt, early);
        assert_int_equal(mem_live_now(rt), live0 + N);
        assert_int_equal(rcgc_validate(rt, stderr), 0);
        rcgc_tracemalloc_stop(rt);
        for (int i = 0; i < N; i++)
            rcgc_mem_free(rt, p[i]);   /* traced blocks freed untraced */
        assert_int_equal(mem_live_now(rt), live0);
        assert_int_equal(rcgc_validate(rt, stderr), 0);
        rcgc_runtime_free(rt);
    }
}

static void test_traced_memory_model(void **state)
{
    (void)state;
    enum { LIVE = 300, STEPS = 20000 };
    for (int src = 0; src < 2; src++) {
        rcgc_runtime *rt = new_rt();
        if (src == 1)
            rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_NATIVE);
        assert_int_equal(rcgc_tracemalloc_start(rt, src ? 4 : 1), RCGC_OK);
        void *p[LIVE];
        size_t sz[LIVE];
        size_t cur = 0, peak = 0;
        uint32_t x = 0x9e3779b9u;
        for (int i = 0; i < LIVE; i++) {
            x = x * 1664525u + 1013904223u;
            sz[i] = 1 + (x >> 8) % 512;
            p[i] = rcgc_mem_malloc(rt, sz[i]);
            assert_non_null(p[i]);
            cur += sz[i];
            if (cur > peak)
                peak = cur;
            check_model(rt, cur, peak);
        }
        for (int step = 0; step < STEPS; step++) {
            x = x * 1664525u + 1013904223u;
            int k = (int)((x >> 8) % LIVE);
            x = x * 1664525u + 1013904223u;
            size_t n = 1 + (x >> 8) % 512;
            if ((x & 0xff) == 0)
                n = 600 + (x >> 20);   /* beyond the pools: the wrappers */
            if ((x & 0xff00) == 0) {
                /* realloc: the trace moves with the block. */
                p[k] = rcgc_mem_realloc(rt, p[k], n);
                assert_non_null(p[k]);
                cur = cur - sz[k] + n;
                sz[k] = n;
                if (cur > peak)
                    peak = cur;
                check_model(rt, cur, peak);
                continue;
            }
            rcgc_mem_free(rt, p[k]);
            cur -= sz[k];
            check_model(rt, cur, peak);
            p[k] = rcgc_mem_malloc(rt, n);
            assert_non_null(p[k]);
            sz[k] = n;
            cur += n;
            if (cur > peak)
                peak = cur;
            check_model(rt, cur, peak);
            if (step % 997 == 0) {
                rcgc_tracemalloc_reset_peak(rt);
                peak = cur;
                check_model(rt, cur, peak);
            }
        }
        assert_int_equal(rcgc_validate(rt, stderr), 0);
        for (int i = 0; i < LIVE; i++) {
            rcgc_mem_free(rt, p[i]);
            cur -= sz[i];
            check_model(rt, cur, peak);
        }
        assert_int_equal(cur, 0);
        rcgc_tracemalloc_stop(rt);
        rcgc_runtime_free(rt);
    }
}

/* One call site for test_pending_free (its line in *line). */
/* calloc: through the wrappers, a block of a request class's pool, with
 * its trace in a side slot (rcgc_mem_malloc's traced blocks have headers,
 * H1, which are never pending); rcgc_mem_free still takes the traced
 * free, D1 and all. */
static __attribute__((noinline)) void *pend_alloc(rcgc_runtime *rt, size_t n, int *line)
{
    *line = __LINE__ + 1;
    return rcgc_mem_calloc(rt, 1, n);
}

static int pend_traceback_line(rcgc_runtime *rt, const void *p)
{
    rcgc_traceback *t = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)p);
    if (t == NULL)
        return 0;
    int line = rcgc_traceback_frame(t, 0).lineno;
    rcgc_traceback_free(t);
    return line;
}

static size_t pend_snapshot_len(rcgc_runtime *rt)
{
    rcgc_snapshot *snap;
    assert_int_equal(rcgc_tracemalloc_take_snapshot(rt, &snap), RCGC_OK);
    size_t n = rcgc_snapshot_len(snap);
    rcgc_snapshot_free(snap);
    return n;
}

/* D1 (tmfast.h): the traced rcgc_mem_free leaves its block's slot
 * pending (still holding the trace, its size not yet back in room) and
 * clears the slot pending before.  Nothing may see the difference: the
 * traced memory, the traceback of the freed block, snapshots and
 * reset_peak are exact right after a free; the block freed last,
 * allocated again at once (same class: the free cache's top), gets its
 * new trace and keeps it when the next free clears the pending slot; an
 * allocation that borrows from the headroom takes the pending size back
 * first, so the peak moves only by the true shortfall; a free whose
 * block goes to its pool (the class's cache row full) leaves its slot
 * pending on the pool's free list, which rcgc_validate accepts.  Fails
 * without the pending check of rcgc_trace_write_slot, without the settle
 * of rcgc_trace_borrow, of reset_peak, of the readers, or with
 * get_traced_memory counting the pending size. */
static void test_pending_free(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    int line;
    /* 100 B: class 6; 90 B: class 5; 150 B: class 9.  k* keep each
     * class live, so frees stay in the free cache. */
    void *k100 = pend_alloc(rt, 100, &line);
    void *k90 = pend_alloc(rt, 90, &line);
    void *k150 = pend_alloc(rt, 150, &line);
    void *v = pend_alloc(rt, 90, &line);
    void *w = pend_alloc(rt, 150, &line);
    void *a = pend_alloc(rt, 100, &line);
    void *b = pend_alloc(rt, 100, &line);
    size_t cur = 100 + 90 + 150 + 90 + 150 + 100 + 100;
    check_model(rt, cur, cur);
    size_t n0 = pend_snapshot_len(rt);
    assert_int_equal(n0, 7);

    /* Right after a free: traced memory, traceback, snapshot. */
    rcgc_mem_free(rt, b);
    assert_ptr_not_equal(rt->mem.trace.pending, &rt->mem.trace.idle);
    cur -= 100;
    check_model(rt, cur, cur + 100);
    check_valid(rt);
    assert_int_equal(pend_traceback_line(rt, b), 0);
    assert_int_equal(pend_snapshot_len(rt), n0 - 1);
    assert_ptr_equal(rt->mem.trace.pending, &rt->mem.trace.idle);   /* the readers settled */

    /* The block freed last, allocated again at once: its new trace
     * survives the next free. */
    rcgc_mem_free(rt, a);
    cur -= 100;
    void *a2 = pend_alloc(rt, 97, &line);
    assert_ptr_equal(a2, a);   /* the cache's top, its slot pending */
    cur += 97;
    check_model(rt, cur, cur + 3 + 100);
    rcgc_mem_free(rt, v);   /* clears the pending slot: must not be a2's */
    cur -= 90;
    check_model(rt, cur, cur + 90 + 3 + 100);
    assert_int_equal(pend_traceback_line(rt, a2), line);
    check_valid(rt);

    /* A borrow takes the pending size back first. */
    rcgc_mem_free(rt, w);   /* w cached with its slot, pending */
    cur -= 150;
    rcgc_tracemalloc_reset_peak(rt);   /* settles: peak = traced exactly */
    check_model(rt, cur, cur);
    size_t peak = cur;
    rcgc_mem_free(rt, a2);   /* pending: 97 B, the headroom still 0 */
    cur -= 97;
    check_model(rt, cur, peak);
    void *v2 = pend_alloc(rt, 90, &line);   /* v, cached with its slot */
    assert_ptr_equal(v2, v);
    cur += 90;   /* 7 B below the peak: no new peak */
    check_model(rt, cur, peak);
    void *w2 = pend_alloc(rt, 150, &line);   /* w: a true shortfall of 143 */
    assert_ptr_equal(w2, w);
    cur += 150;
    peak = cur;
    check_model(rt, cur, peak);
    check_valid(rt);

    /* Frees whose blocks go to their pools (the cache row of class 1
     * full): the last one's slot is pending on its pool's free list. */
    enum { NB = RCGC_FREE_CACHE + 8 };
    void *blk[NB];
    for (int i = 0; i < NB; i++)
        blk[i] = pend_alloc(rt, 32, &line);
    cur += (size_t)NB * 32;
    if (cur > peak)
        peak = cur;
    for (int i = 0; i < NB; i++) {
        rcgc_mem_free(rt, blk[i]);
        cur -= 32;
        check_valid(rt);
    }
    check_model(rt, cur, peak);

    rcgc_mem_free(rt, k100);
    rcgc_mem_free(rt, k90);
    rcgc_mem_free(rt, k150);
    rcgc_mem_free(rt, v2);
    rcgc_mem_free(rt, w2);
    check_model(rt, 0, peak);
    check_valid(rt);
    rcgc_tracemalloc_clear_traces(rt);
    check_model(rt, 0, 0);
    check_valid(rt);
    rcgc_tracemalloc_stop(rt);
    check_valid(rt);
    rcgc_runtime_free(rt);
}

/* R6 (tmfast.h): rcgc_mem_malloc_at sends every slow != 0 to the traced
 * path, whose first test is the last call site; that site must match
 * nothing unless tracing is all that is on.  A symbolizer runs inside the
 * tracer (slow has RCGC_SLOW_HOLD): its allocation at the site that hit
 * last, with a block of that class cached with its slot, must not be
 * traced by the inline path. */
static const char r6_file[] = "r6_site.c";
static rcgc_runtime *r6_rt;
static void *r6_block;
static int r6_calls;

static void *r6_alloc(rcgc_runtime *rt)
{
    return rcgc_mem_malloc_at(rt, 64, r6_file, 7);
}

static int r6_symbolize(void *arg, uintptr_t pc, rcgc_symbol *out)
{
    (void)arg, (void)pc, (void)out;
    r6_calls++;
    if (r6_block == NULL) {
        assert_ptr_equal(r6_rt->mem.trace.last.file, rcgc_trace_no_site);
        r6_block = r6_alloc(r6_rt);
    }
    return 0;
}

static void test_last_site_only_while_alone(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    /* One native trace, so that the snapshot calls the symbolizer. */
    assert_int_equal(rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_NATIVE), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_start(rt, 4), RCGC_OK);
    void *n = rcgc_mem_malloc(rt, 64);
    assert_non_null(n);
    assert_int_equal(rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_CALL_SITE), RCGC_OK);
    void *a = r6_alloc(rt), *b = r6_alloc(rt), *c = r6_alloc(rt);
    assert_ptr_equal(rt->mem.trace.last.file, r6_file);   /* the site hit last */
    rcgc_mem_free(rt, c);   /* cached with its slot (F4) */
    size_t cur, peak;
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 3 * 64);

    /* Fault injection and the debug hooks' states are covered by
     * rcgc_validate (check_valid); here the tracer's own hold. */
    r6_rt = rt;
    r6_block = NULL;
    r6_calls = 0;
    rcgc_tracemalloc_set_symbolizer(r6_symbolize, NULL);
    rcgc_snapshot *snap = NULL;
    assert_int_equal(rcgc_tracemalloc_take_snapshot(rt, &snap), RCGC_OK);
    rcgc_tracemalloc_set_symbolizer(NULL, NULL);
    rcgc_snapshot_free(snap);
    assert_true(r6_calls > 0);
    assert_non_null(r6_block);
    /* Not traced (the tracer was running), whatever block it got. */
    rcgc_traceback *t = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)r6_block);
    assert_null(t);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 3 * 64);
    check_valid(rt);

    /* Back to tracing alone: the site is found again and hits. */
    void *d = r6_alloc(rt);
    void *e = r6_alloc(rt);
    assert_ptr_equal(rt->mem.trace.last.file, r6_file);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 5 * 64);
    check_valid(rt);
    /* Fault injection on: the site no longer hits (R6). */
    rcgc_mem_fail_after(rt, 1000, 0);
    assert_ptr_equal(rt->mem.trace.last.file, rcgc_trace_no_site);
    check_valid(rt);
    rcgc_mem_fail_after(rt, 0, 0);
    void *ptrs[] = { n, a, b, r6_block, d, e };
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++)
        rcgc_mem_free(rt, ptrs[i]);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 0);
    check_valid(rt);
    rcgc_tracemalloc_stop(rt);
    rcgc_runtime_free(rt);
}

/* R8: rcgc_mem_free's continuation after a failed push (every free while
 * anything is on, C4) follows the mode: the traced free only while
 * tracing is all that is on, the limit or the domain otherwise. */
static void test_free_route_follows_mode(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    rcgc_mem_free_not_fn traced = rcgc_mem_free_not_of(RCGC_SLOW_TRACE);
    assert_ptr_not_equal(traced, rcgc_mem_free_not_of(0));
    assert_ptr_equal(rcgc_mem_free_not_of(RCGC_SLOW_TRACE | RCGC_SLOW_HOLD),
                     rcgc_mem_free_not_of(0));
    assert_ptr_equal(rt->mem.trace.free_not, rcgc_mem_free_not_of(0));
    check_valid(rt);
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    assert_ptr_equal(rt->mem.trace.free_not, traced);
    void *p[8];
    for (int i = 0; i < 8; i++) {
        p[i] = r6_alloc(rt);
        assert_non_null(p[i]);
    }
    size_t cur, peak;
    for (int i = 0; i < 4; i++)
        rcgc_mem_free(rt, p[i]);   /* the traced free (R8) */
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 4 * 64);
    assert_int_equal(peak, 8 * 64);
    check_valid(rt);
    /* Fault injection: every free goes to the domain (the wrappers). */
    rcgc_mem_fail_after(rt, 1000, 0);
    assert_ptr_not_equal(rt->mem.trace.free_not, traced);
    rcgc_mem_free(rt, p[4]);
    rcgc_mem_free(rt, p[5]);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 2 * 64);
    check_valid(rt);
    rcgc_mem_fail_after(rt, 0, 0);
    assert_ptr_equal(rt->mem.trace.free_not, traced);
    rcgc_mem_free(rt, p[6]);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 64);
    check_valid(rt);
    rcgc_tracemalloc_stop(rt);
    assert_ptr_equal(rt->mem.trace.free_not, rcgc_mem_free_not_of(0));
    rcgc_mem_free(rt, p[7]);
    check_valid(rt);
    /* Untraced again: frees past a row's limit take the limit path. */
    void *q[200];
    for (int i = 0; i < 200; i++)
        q[i] = rcgc_mem_malloc(rt, 64);
    for (int i = 0; i < 200; i++)
        rcgc_mem_free(rt, q[i]);
    check_valid(rt);
    rcgc_runtime_free(rt);
}

/* F5: while tracing, every pool in use has its side array (the traced
 * free tests none): the pools in use at start get one, so do pools
 * carved while tracing, and clear_traces keeps them (zeroed).  Blocks
 * allocated before start and freed while tracing leave the counts
 * exact. */
static int every_pool_has_array(rcgc_runtime *rt)
{
    for (rcgc_arena *ar = rt->pool.all; ar; ar = ar->allnext)
        for (unsigned i = 0; i < ar->ncarved; i++) {
            const rcgc_pool *pool = rcgc_arena_pool(ar, i);
            /* a traced pool (H1) keeps its traces in its headers */
            if (pool->szidx >= RCGC_NCLASSES && pool->szidx != UINT16_MAX) {
                if (pool->trace_slots != NULL)
                    return 0;
                continue;
            }
            if (pool->szidx != UINT16_MAX && pool->trace_slots == NULL)
                return 0;
        }
    return 1;
}

static void test_every_pool_has_array(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    enum { N = 600 };
    static void *old[N], *cur[N];
    /* Untraced blocks of every class, in many pools. */
    for (int i = 0; i < N; i++)
        old[i] = rcgc_mem_malloc(rt, 8 + (size_t)(i * 37) % 505);
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    assert_true(every_pool_has_array(rt));
    check_valid(rt);
    /* Traced blocks, in those pools and in pools carved now. */
    size_t sum = 0;
    for (int i = 0; i < N; i++) {
        size_t n = 8 + (size_t)(i * 53) % 505;
        cur[i] = rcgc_mem_malloc(rt, n);
        assert_non_null(cur[i]);
        sum += n;
    }
    assert_true(every_pool_has_array(rt));
    assert_int_equal(traced_now(rt), sum);
    /* The untraced blocks freed by the traced free: nothing counted. */
    for (int i = 0; i < N; i += 2)
        rcgc_mem_free(rt, old[i]);
    assert_int_equal(traced_now(rt), sum);
    check_valid(rt);
    /* clear_traces keeps every array (zeroed): the traced free of a block
     * traced before it, and of one traced after it, stay exact. */
    rcgc_tracemalloc_clear_traces(rt);
    assert_true(every_pool_has_array(rt));
    assert_int_equal(traced_now(rt), 0);
    check_valid(rt);
    for (int i = 0; i < N; i += 2)
        rcgc_mem_free(rt, cur[i]);
    assert_int_equal(traced_now(rt), 0);
    for (int i = 0; i < N; i += 2)
        cur[i] = rcgc_mem_malloc(rt, 24);
    assert_int_equal(traced_now(rt), (size_t)(N / 2) * 24);
    for (int i = 0; i < N; i++)
        rcgc_mem_free(rt, cur[i]);
    assert_int_equal(traced_now(rt), 0);
    check_valid(rt);
    rcgc_tracemalloc_stop(rt);
    check_valid(rt);
    for (int i = 1; i < N; i += 2)
        rcgc_mem_free(rt, old[i]);
    check_valid(rt);
    rcgc_runtime_free(rt);
}

/* H1, H2 (tmfast.h, perf-tm17): the per-block header of a traced pool's
 * block.  rcgc_mem_malloc's traced blocks come from the traced twin of
 * their class, the trace 8 bytes before the block; a realloc that moves
 * such a block to a request class's pool takes its trace along (side
 * slot), one that keeps it in place rewrites the header, a failed one
 * keeps it; the wrappers' free (fault injection on) clears it before the
 * block goes; clear_traces zeroes every header; snapshots and
 * get_tracemalloc_memory see the traced pools; the validator catches a
 * header that breaks H2. */
static __attribute__((noinline)) void *hdr_alloc(rcgc_runtime *rt, size_t n, int *line)
{
    *line = __LINE__ + 1;
    return rcgc_mem_malloc(rt, n);
}

static size_t snap_len_now(rcgc_runtime *rt)
{
    rcgc_snapshot *snap;
    assert_int_equal(rcgc_tracemalloc_take_snapshot(rt, &snap), RCGC_OK);
    size_t n = rcgc_snapshot_len(snap);
    rcgc_snapshot_free(snap);
    return n;
}

static void expect_invalid_h(rcgc_runtime *rt, const char *what)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    int rc = rcgc_validate(rt, mem);
    fclose(mem);
    assert_int_not_equal(rc, RCGC_OK);
    assert_non_null(strstr(text, what));
    free(text);
}

/* L1 (perf-tm24): the traced free of a traced pool's block caches it
 * lazily with its row's credit, the pop gives back the rest, a borrow
 * settles the lazy frees before it raises the peak: a free + malloc
 * workload of random sizes at one call site (the fast path), whose
 * traced size keeps reaching new peaks, keeps the current size and the
 * peak exact at every step, against a count kept here, and the
 * validator's R1 and L1 at every few steps. */
static void test_traced_pairs_exact(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    enum { LIVE = 200, STEPS = 30000 };
    void *blk[LIVE];
    size_t sz[LIVE];
    size_t cur = 0, peak = 0;
    uint64_t x = 0x9E3779B97F4A7C15u;
    int line;
    for (unsigned k = 0; k < LIVE; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        sz[k] = 1 + (size_t)(x % 512);
        blk[k] = hdr_alloc(rt, sz[k], &line);
        cur += sz[k];
        peak = cur > peak ? cur : peak;
    }
    for (unsigned i = 0; i < STEPS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        unsigned k = (unsigned)(x % LIVE);
        rcgc_mem_free(rt, blk[k]);
        cur -= sz[k];
        /* a drift of the sizes now and then, so that the peak moves */
        size_t lo = (i / 5000) % 2 ? 200 : 1;
        sz[k] = lo + (size_t)((x >> 20) % (513 - lo));
        blk[k] = hdr_alloc(rt, sz[k], &line);
        assert_int_equal(rcgc_pool_of(blk[k])->szidx, rcgc_size_class(sz[k]) + RCGC_NCLASSES);
        cur += sz[k];
        peak = cur > peak ? cur : peak;
        size_t c = 0, p = 0;
        rcgc_tracemalloc_get_traced_memory(rt, &c, &p);
        assert_int_equal(c, cur);
        assert_int_equal(p, peak);
        if (i % 997 == 0)
            check_valid(rt);
    }
    check_valid(rt);
    for (unsigned k = 0; k < LIVE; k++)
        rcgc_mem_free(rt, blk[k]);
    assert_int_equal(traced_now(rt), 0);
    check_valid(rt);
    rcgc_tracemalloc_stop(rt);
    rcgc_runtime_free(rt);
}

static void test_traced_block_header(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    int line;
    unsigned c = (unsigned)rcgc_size_class(40);
    void *keep = hdr_alloc(rt, 40, &line);   /* keeps the pool live */
    void *a = hdr_alloc(rt, 40, &line);
    const rcgc_pool *pool = rcgc_pool_of(a);
    assert_int_equal(pool->szidx, c + RCGC_NCLASSES);
    assert_int_equal(pool->size, 64);                /* 16 longer */
    assert_int_equal(((uintptr_t)a - (uintptr_t)pool->mem) % 64, 16);
    const rcgc_trace_slot *ha = (const rcgc_trace_slot *)a - 1;
    assert_true(ha->tb != 0);
    assert_int_equal(ha->size, 40);
    assert_int_equal(traced_now(rt), 80);
    assert_int_equal(snap_len_now(rt), 2);
    assert_true(rcgc_tracemalloc_get_tracemalloc_memory(rt) >= (size_t)pool->nblocks * 16);
    memset(a, 0xAB, 48);   /* all its usable bytes: the next header stays */
    check_valid(rt);

    /* in place: 45 of the 48 usable bytes, the header rewritten */
    void *a2 = rcgc_mem_realloc(rt, a, 45);
    assert_ptr_equal(a2, a);
    assert_int_equal(ha->size, 45);
    assert_int_equal(traced_now(rt), 85);
    check_valid(rt);

    /* moved to a request class's pool: the trace goes with it */
    void *b = rcgc_mem_realloc(rt, a2, 300);
    assert_non_null(b);
    assert_true(rcgc_pool_of(b)->szidx < RCGC_NCLASSES);
    assert_int_equal(ha->tb, 0);   /* a's header (its pool lives: keep) */
    assert_int_equal(ha->size, 0);
    assert_int_equal(traced_now(rt), 340);
    rcgc_traceback *t = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)b);
    assert_non_null(t);
    rcgc_traceback_free(t);
    check_valid(rt);

    /* a failed realloc keeps the trace in the header */
    void *d = hdr_alloc(rt, 40, &line);
    rcgc_mem_fail_after(rt, 1, 1);   /* every allocation fails */
    assert_null(rcgc_mem_realloc(rt, d, 400));
    rcgc_mem_fail_after(rt, 0, 0);
    assert_int_equal(((const rcgc_trace_slot *)d - 1)->size, 40);
    assert_int_equal(traced_now(rt), 380);
    check_valid(rt);
    /* the wrappers' free (fault injection on): the header cleared */
    rcgc_mem_fail_after(rt, 1000000, 0);
    rcgc_mem_free(rt, d);
    rcgc_mem_fail_after(rt, 0, 0);
    assert_int_equal(traced_now(rt), 340);
    check_valid(rt);

    /* the validator: H2 */
    void *e = hdr_alloc(rt, 40, &line);
    rcgc_trace_slot *he = (rcgc_trace_slot *)e - 1;
    rcgc_trace_slot saved = *he;
    he->tb = 0;
    expect_invalid_h(rt, "H2");
    *he = saved;
    check_valid(rt);
    rcgc_mem_free(rt, e);   /* into the twin's row, its trace kept (L1) */
    assert_int_equal(he->tb, saved.tb);
    assert_int_equal(traced_now(rt), 340);   /* not counted */
    check_valid(rt);
    rcgc_tracemalloc_reset_peak(rt);   /* settles: the header zero */
    assert_int_equal(he->tb, 0);
    /* with the credits on a cached block whose header holds a trace is
     * a lazy free (L1, perf-tm22): the trace of 40 bytes back in it is
     * one room does not count */
    rcgc_trace_slot settled = *he;
    *he = saved;
    expect_invalid_h(rt, "(R1");
    *he = settled;
    check_valid(rt);
    /* L1: the credits are on: start found no live block of a traced
     * pool, and every realloc so far left its block traced */
    assert_int_equal(rt->pool.hdr_credit[c + RCGC_NCLASSES], c * 16 + 1);
    /* L1: lazy frees lie above the settled entries of their row */
    {
        void *l1 = hdr_alloc(rt, 40, &line), *l2 = hdr_alloc(rt, 40, &line);
        rcgc_trace_slot traced1 = ((rcgc_trace_slot *)l1)[-1];
        rcgc_mem_free(rt, l1);
        rcgc_mem_free(rt, l2);
        rcgc_pool_state *ps = &rt->pool;
        unsigned r = c + RCGC_NCLASSES;
        /* T4: in the traced free's ring, their traces kept, not counted */
        assert_int_equal(rcgc_mem_hdr_ring_count(rt), 2);
        assert_int_equal(((rcgc_trace_slot *)l2)[-1].tb != 0, 1);
        assert_int_equal(traced_now(rt), 340);
        rcgc_mem_hdr_ring_flush(rt);   /* settled and cached, in order */
        void **top = ps->ctop[r];
        assert_ptr_equal(*top, l2);
        assert_ptr_equal(top[-1], l1);
        /* perf-tm22: with the credits on the header tells, no mark is
         * written (whatever the slot entry holds) */
        *rcgc_pool_cslot(top) = RCGC_HDR_SETTLED;
        assert_false(rcgc_trace_hdr_lazy(ps, r, top));
        assert_false(rcgc_trace_hdr_lazy(ps, r, top - 1));
        assert_int_equal(traced_now(rt), 340);   /* their sizes not counted */
        check_valid(rt);
        /* a lazy free (L1: a trace kept in the header, as the credits-off
         * free leaves them) below the settled l2 */
        rcgc_trace_slot *h1 = (rcgc_trace_slot *)l1 - 1, settled1 = *h1;
        *h1 = traced1;
        assert_true(rcgc_trace_hdr_lazy(ps, r, top - 1));
        expect_invalid_h(rt, "below a settled one (L1)");
        *h1 = settled1;
        check_valid(rt);
        /* R12: with the credits on the row's free writes no mark */
        rcgc_mem_free_not_fn fn = ps->free_not[r];
        ps->free_not[r] = rcgc_mem_free_hdr_of(rt->mem.slow, 0);
        assert_true(fn != ps->free_not[r]);
        expect_invalid_h(rt, "R12");
        ps->free_not[r] = fn;
        /* the credits go on and off together (L1) */
        size_t cr0 = ps->hdr_credit[RCGC_NCLASSES];
        ps->hdr_credit[RCGC_NCLASSES] = 0;
        expect_invalid_h(rt, "the last row's is on (L1)");
        ps->hdr_credit[RCGC_NCLASSES] = cr0;
        check_valid(rt);
        /* popped again: the settled blocks count nothing until their new
         * traces are written */
        void *m1 = hdr_alloc(rt, 40, &line), *m2 = hdr_alloc(rt, 40, &line);
        assert_ptr_equal(m1, l2);
        assert_ptr_equal(m2, l1);
        assert_int_equal(traced_now(rt), 420);
        check_valid(rt);
        rcgc_mem_free(rt, m1);
        rcgc_mem_free(rt, m2);
        assert_int_equal(traced_now(rt), 340);
        check_valid(rt);
    }

    /* clear_traces: every header zero, the frees after it count nothing */
    void *f = hdr_alloc(rt, 40, &line);
    rcgc_tracemalloc_clear_traces(rt);
    /* live blocks of the traced pools lost their traces: no credits (L1) */
    assert_int_equal(rt->pool.hdr_credit[c + RCGC_NCLASSES], 0);
    assert_int_equal(traced_now(rt), 0);
    assert_int_equal(((const rcgc_trace_slot *)f - 1)->tb, 0);
    assert_int_equal(((const rcgc_trace_slot *)keep - 1)->tb, 0);
    assert_int_equal(snap_len_now(rt), 0);
    check_valid(rt);
    void *g = hdr_alloc(rt, 40, &line);
    assert_int_equal(traced_now(rt), 40);
    rcgc_mem_free(rt, f);
    /* L1 with the credits off: f's header is zero (untraced) like a
     * settled one's, so its entry is marked unsettled (R12: the row's
     * free marks, perf-tm22) */
    {
        rcgc_pool_state *ps = &rt->pool;
        unsigned r = c + RCGC_NCLASSES;
        assert_ptr_equal(*ps->ctop[r], f);
        assert_null(*rcgc_pool_cslot(ps->ctop[r]));
        assert_true(rcgc_trace_hdr_lazy(ps, r, ps->ctop[r]));
        assert_ptr_equal(ps->free_not[r], rcgc_mem_free_hdr_of(rt->mem.slow, 0));
        check_valid(rt);
        /* a lazy free with a trace, in the credits-off mode: g's */
        void *g2 = hdr_alloc(rt, 40, &line);
        rcgc_mem_free(rt, g2);
        assert_ptr_equal(*ps->ctop[r], g2);
        assert_null(*rcgc_pool_cslot(ps->ctop[r]));
        assert_true(((const rcgc_trace_slot *)g2 - 1)->tb != 0);
        assert_int_equal(traced_now(rt), 40);
        check_valid(rt);
        *rcgc_pool_cslot(ps->ctop[r]) = RCGC_HDR_SETTLED;   /* marked settled, traced */
        expect_invalid_h(rt, "L1");
        *rcgc_pool_cslot(ps->ctop[r]) = NULL;
        check_valid(rt);
        rcgc_tracemalloc_reset_peak(rt);   /* settles g2 by its mark */
        assert_int_equal(((const rcgc_trace_slot *)g2 - 1)->tb, 0);
        assert_int_equal(traced_now(rt), 40);
        check_valid(rt);
    }
    rcgc_mem_free(rt, b);
    assert_int_equal(traced_now(rt), 40);
    t = rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)g);
    assert_non_null(t);
    assert_int_equal(rcgc_traceback_frame(t, 0).lineno, line);
    rcgc_traceback_free(t);
    rcgc_mem_free(rt, g);
    assert_int_equal(traced_now(rt), 0);
    check_valid(rt);

    /* after stop: realloc of a traced pool's block (untraced, moved) */
    void *h = hdr_alloc(rt, 40, &line);
    rcgc_tracemalloc_stop(rt);
    check_valid(rt);
    void *h2 = rcgc_mem_realloc(rt, h, 100);
    assert_non_null(h2);
    assert_true(rcgc_pool_of(h2)->szidx < RCGC_NCLASSES);
    check_valid(rt);
    rcgc_mem_free(rt, h2);
    rcgc_mem_free(rt, keep);
    check_valid(rt);
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
        cmocka_unit_test(test_fast_path_equals_wrappers),
        cmocka_unit_test(test_fast_path_transitions),
        cmocka_unit_test(test_native_alternating_stacks),
        cmocka_unit_test(test_native_repeat_follows_settings),
        cmocka_unit_test(test_native_pairs_equal_wrappers),
        cmocka_unit_test(test_cached_slots_across_clear),
        cmocka_unit_test(test_traced_memory_model),
        cmocka_unit_test(test_peak_headroom),
        cmocka_unit_test(test_mem_live_while_tracing),
        cmocka_unit_test(test_freed_object_not_a_slot),
        cmocka_unit_test(test_object_push_clears_slot_entry),
        cmocka_unit_test(test_empty_cache_floor),
        cmocka_unit_test(test_native_pop_own_class),
        cmocka_unit_test(test_trace_table_bias),
        cmocka_unit_test(test_unrecorded_walk_never_repeats),
        cmocka_unit_test(test_wide_walk_has_no_key),
        cmocka_unit_test(test_native_walk_head),
        cmocka_unit_test(test_native_longjmp_and_switched_stacks),
        cmocka_unit_test(test_pending_free),
        cmocka_unit_test(test_last_site_only_while_alone),
        cmocka_unit_test(test_free_route_follows_mode),
        cmocka_unit_test(test_every_pool_has_array),
        cmocka_unit_test(test_traced_block_header),
        cmocka_unit_test(test_traced_pairs_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
