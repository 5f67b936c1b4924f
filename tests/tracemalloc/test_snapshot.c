/* test_snapshot.c - Snapshot.statistics, compare_to, filter_traces,
 * Traceback.format and str(Trace) against the real tracemalloc module:
 * random traces with random multi-frame tracebacks (supplied through the
 * interpreter frame callback) in several domains are snapshotted twice; the
 * same traces go to python3 as JSON (pysnap.py), and every line the C API
 * prints must equal the line Python prints.  Also: error cases, sorting
 * ties, dump/load round trip of the same snapshots. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "rcgc.h"
#include "rcgc_tracemalloc.h"

static uint64_t rng = 12345;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

/* The frames the callback hands out for the next allocation. */
static rcgc_frame cur_frames[8];
static int cur_n, cur_total;
static int give_frames(void *arg, rcgc_frame *frames, int max, int *total)
{
    (void)arg;
    int n = cur_n < max ? cur_n : max;
    memcpy(frames, cur_frames, (size_t)n * sizeof *frames);
    *total = cur_total;
    return n;
}

enum { NTB = 40 };
static rcgc_frame tbs[NTB][6];
static int tb_n[NTB], tb_total[NTB];

static void make_tracebacks(void)
{
    static const char *names[] = { "src/a.c", "src/b.c", "lib/util.c", "main.c", "x.pyc",
                                   "x.py", "dir/sub/deep.c", __FILE__ };
    for (int i = 0; i < NTB; i++) {
        tb_n[i] = 1 + (int)rnd(5);
        tb_total[i] = tb_n[i] + (int)rnd(3);
        for (int k = 0; k < tb_n[i]; k++)
            tbs[i][k] = (rcgc_frame){ names[rnd(8)], 1 + (int)rnd(12) };
    }
    /* Two tracebacks share their most recent frame; one is a prefix of
     * another; one repeats a frame (cumulative counts it twice). */
    tbs[1][0] = tbs[0][0];
    tb_n[3] = 2;
    tbs[3][0] = tbs[2][0];
    tbs[3][1] = tbs[2][1];
    tb_n[2] = tb_n[2] < 3 ? 3 : tb_n[2];
    tb_total[2] = tb_n[2];
    tb_total[3] = 2;
    tbs[4][1] = tbs[4][0];
    tb_n[4] = tb_n[4] < 2 ? 2 : tb_n[4];
    tb_total[4] = tb_n[4];
}

typedef struct block {
    void *p;
    unsigned domain;
    uintptr_t fake;
} block;

static void alloc_some(rcgc_runtime *rt, block *bl, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        int t = (int)rnd(NTB);
        memcpy(cur_frames, tbs[t], sizeof tbs[t]);
        cur_n = tb_n[t];
        cur_total = tb_total[t];
        size_t size = rnd(4) == 0 ? 600 + rnd(3000) : 1 + rnd(300);
        if (rnd(6) == 0) {
            bl[i].domain = 1 + rnd(2);
            bl[i].fake = 0x10000 + i * 64;
            bl[i].p = NULL;
            assert_int_equal(rcgc_tracemalloc_track(rt, bl[i].domain, bl[i].fake, size), 0);
        } else {
            bl[i].domain = 0;
            bl[i].p = rcgc_mem_malloc(rt, size);
            assert_non_null(bl[i].p);
        }
    }
}

static void free_block(rcgc_runtime *rt, block *b)
{
    if (b->domain)
        rcgc_tracemalloc_untrack(rt, b->domain, b->fake);
    else
        rcgc_mem_free(rt, b->p);
    b->p = NULL;
    b->domain = 0;
}

static void json_traces(FILE *f, const rcgc_snapshot *s)
{
    fprintf(f, "[");
    for (size_t i = 0; i < rcgc_snapshot_len(s); i++) {
        rcgc_trace t = rcgc_snapshot_trace(s, i);
        fprintf(f, "%s[%u,%zu,[", i ? "," : "", t.domain, t.size);
        size_t n = rcgc_traceback_len(t.traceback);
        for (size_t k = 0; k < n; k++) {
            rcgc_frame fr = rcgc_traceback_frame(t.traceback, n - 1 - k);
            fprintf(f, "%s[\"%s\",%d]", k ? "," : "", fr.filename, fr.lineno);
        }
        fprintf(f, "],%ld]", rcgc_traceback_total_nframe(t.traceback));
    }
    fprintf(f, "]");
}

static const rcgc_filter filter_sets[][3] = {
    { { 1, "src/*", -1, 0, 0, 0 } },
    { { 0, "src/*", -1, 0, 0, 0 } },
    { { 1, "*.c", 3, 0, 0, 0 } },
    { { 1, "x.py", -1, 0, 0, 0 } },                 /* x.pyc normalizes to x.py */
    { { 1, "main.c", -1, 1, 0, 0 } },
    { { 0, "main.c", -1, 1, 0, 0 } },
    { { 1, NULL, -1, 0, 1, 1 } },                   /* DomainFilter(True, 1) */
    { { 0, NULL, -1, 0, 1, 0 } },                   /* DomainFilter(False, 0) */
    { { 1, "src/[ab].c", -1, 0, 1, 0 }, { 1, "lib/*", -1, 0, 0, 0 } },
    { { 0, "src/[!a].c", -1, 0, 1, 0 }, { 0, "dir/*/deep.?", 5, 1, 0, 0 } },
    { { 1, "*", -1, 0, 0, 0 }, { 0, "*", 1, 0, 1, 2 } },
};
#define NSETS (sizeof filter_sets / sizeof filter_sets[0])
static const size_t set_len[NSETS] = { 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2 };

static void json_filters(FILE *f)
{
    fprintf(f, "[");
    for (size_t i = 0; i < NSETS; i++) {
        fprintf(f, "%s[", i ? "," : "");
        for (size_t k = 0; k < set_len[i]; k++) {
            const rcgc_filter *x = &filter_sets[i][k];
            fprintf(f, "%s[%d,", k ? "," : "", x->inclusive);
            if (x->filename_pattern)
                fprintf(f, "\"%s\",", x->filename_pattern);
            else
                fprintf(f, "null,");
            if (x->lineno >= 0)
                fprintf(f, "%d,", x->lineno);
            else
                fprintf(f, "null,");
            fprintf(f, "%d,", x->all_frames);
            if (x->has_domain)
                fprintf(f, "%u]", x->domain);
            else
                fprintf(f, "null]");
        }
        fprintf(f, "]");
    }
    fprintf(f, "]");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Everything pysnap.py prints, printed by the C API. */
static void c_output(FILE *out, const rcgc_snapshot *old, const rcgc_snapshot *new)
{
    static const char *kn[] = { "filename", "lineno", "traceback" };
    rcgc_stats *st;
    for (int key = 0; key < 3; key++) {
        for (int cum = 0; cum < 2; cum++) {
            if (cum && key == RCGC_KEY_TRACEBACK) {
                assert_int_equal(rcgc_snapshot_statistics(new, RCGC_KEY_TRACEBACK, 1, &st),
                                 RCGC_EINVAL);
                continue;
            }
            fprintf(out, "S %s %d\n", kn[key], cum);
            assert_int_equal(rcgc_snapshot_statistics(new, (rcgc_stat_key)key, cum, &st), RCGC_OK);
            for (size_t i = 0; i < rcgc_stats_len(st); i++)
                rcgc_stats_print(st, i, out);
            rcgc_stats_free(st);
            fprintf(out, "D %s %d\n", kn[key], cum);
            assert_int_equal(rcgc_snapshot_compare_to(new, old, (rcgc_stat_key)key, cum, &st),
                             RCGC_OK);
            for (size_t i = 0; i < rcgc_stats_len(st); i++)
                rcgc_stats_print(st, i, out);
            rcgc_stats_free(st);
        }
    }
    for (size_t i = 0; i < NSETS; i++) {
        rcgc_snapshot *f;
        assert_int_equal(rcgc_snapshot_filter_traces(new, filter_sets[i], set_len[i], &f), RCGC_OK);
        fprintf(out, "F %zu %zu\n", i, rcgc_snapshot_len(f));
        assert_int_equal(rcgc_snapshot_statistics(f, RCGC_KEY_TRACEBACK, 0, &st), RCGC_OK);
        for (size_t k = 0; k < rcgc_stats_len(st); k++)
            rcgc_stats_print(st, k, out);
        rcgc_stats_free(st);
        rcgc_snapshot_free(f);
    }
    assert_int_equal(rcgc_snapshot_statistics(new, RCGC_KEY_TRACEBACK, 0, &st), RCGC_OK);
    static const int limits[] = { RCGC_TRACEBACK_NO_LIMIT, 1, 2, -1, 0 };
    for (size_t i = 0; i < 4 && i < rcgc_stats_len(st); i++) {
        const rcgc_traceback *tb = rcgc_stats_get(st, i)->traceback;
        for (int l = 0; l < 5; l++)
            for (int mrf = 0; mrf < 2; mrf++) {
                if (limits[l] == RCGC_TRACEBACK_NO_LIMIT)
                    fprintf(out, "T None %d\n", mrf);
                else
                    fprintf(out, "T %d %d\n", limits[l], mrf);
                rcgc_traceback_format(tb, limits[l], mrf, out);
            }
    }
    rcgc_stats_free(st);
    fprintf(out, "R\n");
    size_t n = rcgc_snapshot_len(new);
    char **lines = malloc((n + 1) * sizeof *lines);
    for (size_t i = 0; i < n; i++) {
        rcgc_trace t = rcgc_snapshot_trace(new, i);
        size_t len = rcgc_trace_str(&t, NULL, 0);
        lines[i] = malloc(len + 1);
        rcgc_trace_str(&t, lines[i], len + 1);
    }
    qsort(lines, n, sizeof *lines, cmp_str);
    for (size_t i = 0; i < n; i++) {
        fprintf(out, "%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
}

/* Compare the C lines with python3's for these two snapshots. */
static void compare_with_python(const rcgc_snapshot *old, const rcgc_snapshot *new)
{
    char json[64], pyout[64];
    snprintf(json, sizeof json, "/tmp/rcgc-snap-%ld.json", (long)getpid());
    snprintf(pyout, sizeof pyout, "/tmp/rcgc-snap-%ld.txt", (long)getpid());
    FILE *f = fopen(json, "w");
    assert_non_null(f);
    fprintf(f, "{\"limit\": %d, \"old\": ", rcgc_snapshot_traceback_limit(new));
    json_traces(f, old);
    fprintf(f, ", \"new\": ");
    json_traces(f, new);
    fprintf(f, ", \"filters\": ");
    json_filters(f);
    fprintf(f, "}\n");
    fclose(f);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 '%s' '%s' > '%s'", RCGC_PYSNAP, json, pyout);
    assert_int_equal(system(cmd), 0);
    char *ctext = NULL;
    size_t clen = 0;
    FILE *mem = open_memstream(&ctext, &clen);
    c_output(mem, old, new);
    fclose(mem);
    FILE *py = fopen(pyout, "r");
    assert_non_null(py);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    char *cpos = ctext;
    size_t lineno = 0;
    while ((got = getline(&line, &cap, py)) >= 0) {
        lineno++;
        char *nl = strchr(cpos, '\n');
        if (!nl)
            fail_msg("C output ends at line %zu; python has: %s", lineno, line);
        size_t clinelen = (size_t)(nl - cpos) + 1;
        if (clinelen != (size_t)got || memcmp(cpos, line, clinelen) != 0)
            fail_msg("line %zu differs:\n  C:      %.*s  python: %s", lineno, (int)clinelen,
                     cpos, line);
        cpos = nl + 1;
    }
    if (*cpos)
        fail_msg("C prints more lines than python after line %zu: %s", lineno, cpos);
    print_message("%zu lines identical to python3's tracemalloc\n", lineno);
    free(line);
    fclose(py);
    free(ctext);
    remove(json);
    remove(pyout);
}

static void take_two(rcgc_runtime *rt, rcgc_snapshot **old, rcgc_snapshot **new, block *bl,
                     size_t n)
{
    alloc_some(rt, bl, 0, n / 2);
    assert_int_equal(rcgc_tracemalloc_take_snapshot(rt, old), RCGC_OK);
    for (size_t i = 0; i < n / 2; i += 3)
        free_block(rt, &bl[i]);
    alloc_some(rt, bl, n / 2, n);
    assert_int_equal(rcgc_tracemalloc_take_snapshot(rt, new), RCGC_OK);
}

static void test_against_python(void **state)
{
    (void)state;
    make_tracebacks();
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    assert_non_null(rt);
    assert_int_equal(rcgc_tracemalloc_set_frames_callback(rt, give_frames, NULL), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_start(rt, 4), RCGC_OK);
    enum { N = 3000 };
    block *bl = calloc(N, sizeof *bl);
    rcgc_snapshot *old, *new;
    take_two(rt, &old, &new, bl, N);
    assert_int_equal(rcgc_snapshot_traceback_limit(new), 4);
    compare_with_python(old, new);
    /* The same after a dump/load round trip of both. */
    void *d1, *d2;
    size_t n1, n2;
    assert_int_equal(rcgc_snapshot_dump_buffer(old, &d1, &n1), RCGC_OK);
    assert_int_equal(rcgc_snapshot_dump_buffer(new, &d2, &n2), RCGC_OK);
    rcgc_snapshot *old2, *new2;
    char err[200];
    assert_int_equal(rcgc_snapshot_load_buffer(d1, n1, &old2, err, sizeof err), RCGC_OK);
    assert_int_equal(rcgc_snapshot_load_buffer(d2, n2, &new2, err, sizeof err), RCGC_OK);
    assert_int_equal(rcgc_snapshot_len(new2), rcgc_snapshot_len(new));
    assert_int_equal(rcgc_snapshot_total_size(new2), rcgc_snapshot_total_size(new));
    compare_with_python(old2, new2);
    /* Comparing snapshots from different tables (loaded vs taken). */
    compare_with_python(old2, new);
    free(d1);
    free(d2);
    rcgc_snapshot_free(old2);
    rcgc_snapshot_free(new2);
    rcgc_snapshot_free(old);
    rcgc_snapshot_free(new);
    for (size_t i = 0; i < N; i++)
        if (bl[i].p || bl[i].domain)
            free_block(rt, &bl[i]);
    size_t cur;
    rcgc_tracemalloc_get_traced_memory(rt, &cur, NULL);
    assert_int_equal(cur, 0);
    free(bl);
    rcgc_runtime_free(rt);
}

static void test_errors(void **state)
{
    (void)state;
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    rcgc_snapshot *s;
    assert_int_equal(rcgc_tracemalloc_take_snapshot(rt, &s), RCGC_OK);
    rcgc_stats *st = (rcgc_stats *)1;
    assert_int_equal(rcgc_snapshot_statistics(s, (rcgc_stat_key)7, 0, &st), RCGC_EINVAL);
    assert_null(st);
    assert_int_equal(rcgc_snapshot_compare_to(s, s, RCGC_KEY_TRACEBACK, 1, &st), RCGC_EINVAL);
    rcgc_filter bad = { 1, NULL, -1, 0, 0, 0 };   /* a DomainFilter needs a domain */
    rcgc_snapshot *f = (rcgc_snapshot *)1;
    assert_int_equal(rcgc_snapshot_filter_traces(s, &bad, 1, &f), RCGC_EINVAL);
    assert_null(f);
    assert_int_equal(rcgc_snapshot_filter_traces(s, NULL, 0, &f), RCGC_OK);
    assert_int_equal(rcgc_snapshot_len(f), rcgc_snapshot_len(s));
    rcgc_snapshot_free(f);
    /* Items of the wrong kind are NULL. */
    assert_int_equal(rcgc_snapshot_statistics(s, RCGC_KEY_LINENO, 0, &st), RCGC_OK);
    assert_null(rcgc_stats_get_diff(st, 0));
    assert_null(rcgc_stats_get(st, rcgc_stats_len(st)));
    rcgc_stats_free(st);
    rcgc_snapshot_free(s);
    rcgc_runtime_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_against_python),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
