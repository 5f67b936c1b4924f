/* test_tmformat.c - the text forms of tmformat.h against the strings the
 * real tracemalloc module of python3 (CPython 3.11) prints for the same
 * values: sizes at every unit boundary and thousands of random ones,
 * statistics, diffs, traces, frames and their repr, and frame lines with
 * their source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pyrun.h"
#include "tmformat.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Interesting sizes: small numbers, each unit boundary +-3, and random
 * numbers of every magnitude up to 2^62. */
static size_t make_sizes(long long *out, size_t cap)
{
    size_t n = 0;
    for (long long v = 0; v < 130 && n < cap; v++)
        out[n++] = v;
    long long unit = 1;
    for (int u = 0; u < 5; u++, unit *= 1024) {
        long long edges[] = { 100 * unit, 10 * 1024 * unit, unit, 1024 * unit,
                              (long long)(99.95 * (double)unit),
                              (long long)(9.9995 * 1024 * (double)unit) };
        for (size_t e = 0; e < sizeof edges / sizeof edges[0]; e++)
            for (long long d = -3; d <= 3 && n < cap; d++)
                if (edges[e] + d >= 0)
                    out[n++] = edges[e] + d;
    }
    while (n < cap) {
        int bits = (int)(next_rand() % 62) + 1;
        out[n++] = (long long)(next_rand() & ((1ull << bits) - 1));
    }
    return n;
}

static void test_sizes_match_python(void **state)
{
    (void)state;
    enum { N = 3000 };
    static long long sizes[N];
    size_t n = make_sizes(sizes, N);
    pyrun py;
    assert_int_equal(pyrun_open(&py), 0);
    for (size_t i = 0; i < n; i++) {
        fprintf(py.in, "size\t%lld\t0\n", sizes[i]);
        fprintf(py.in, "size\t%lld\t1\n", sizes[i]);
        fprintf(py.in, "size\t%lld\t1\n", -sizes[i]);
    }
    assert_int_equal(pyrun_exec(&py), (long)(3 * n));
    char buf[64];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        double v = (double)sizes[i];
        rcgc_fmt_size(buf, sizeof buf, v, 0);
        assert_string_equal(buf, py.answers[k++]);
        rcgc_fmt_size(buf, sizeof buf, v, 1);
        assert_string_equal(buf, py.answers[k++]);
        rcgc_fmt_size(buf, sizeof buf, (double)-sizes[i], 1); /* an integer 0, never -0.0 */
        assert_string_equal(buf, py.answers[k++]);
    }
    pyrun_close(&py);
}

static void test_statistics_match_python(void **state)
{
    (void)state;
    enum { N = 2000 };
    static long long sz[N], cnt[N], sd[N], cd[N];
    for (size_t i = 0; i < N; i++) {
        int bits = (int)(next_rand() % 40);
        sz[i] = (long long)(next_rand() & ((1ull << bits) - 1));
        cnt[i] = (i % 17 == 0) ? 0 : (long long)(next_rand() % 100000) + 1;
        sd[i] = (long long)(next_rand() % 2000001) - 1000000;
        cd[i] = (long long)(next_rand() % 2001) - 1000;
    }
    pyrun py;
    assert_int_equal(pyrun_open(&py), 0);
    for (size_t i = 0; i < N; i++) {
        fprintf(py.in, "stat\tsrc/file%zu.c\t%zu\t%lld\t%lld\n", i % 7, i, sz[i], cnt[i]);
        fprintf(py.in, "diff\tsrc/file%zu.c\t%zu\t%lld\t%lld\t%lld\t%lld\n", i % 7, i,
                sz[i], sd[i], cnt[i], cd[i]);
        fprintf(py.in, "trace\tsrc/file%zu.c\t%zu\t%lld\n", i % 7, i, sz[i]);
    }
    assert_int_equal(pyrun_exec(&py), 3 * N);
    char buf[256], key[64];
    size_t k = 0;
    for (size_t i = 0; i < N; i++) {
        snprintf(key, sizeof key, "src/file%zu.c", i % 7);
        rcgc_fmt_statistic_line(buf, sizeof buf, key, (long)i, (double)sz[i], cnt[i]);
        assert_string_equal(buf, py.answers[k]);
        char key2[80];
        rcgc_fmt_frame(key2, sizeof key2, key, (long)i);
        rcgc_fmt_statistic(buf, sizeof buf, key2, (double)sz[i], cnt[i]);
        assert_string_equal(buf, py.answers[k++]);
        rcgc_fmt_statistic_diff(buf, sizeof buf, key2, (double)sz[i], (double)sd[i],
                                cnt[i], cd[i]);
        assert_string_equal(buf, py.answers[k++]);
        rcgc_fmt_trace(buf, sizeof buf, key2, (double)sz[i]);
        assert_string_equal(buf, py.answers[k++]);
    }
    pyrun_close(&py);
}

/* The issue's own examples. */
static void test_issue_examples(void **state)
{
    (void)state;
    char buf[200];
    rcgc_fmt_statistic_line(buf, sizeof buf, "file.c", 12, 4855.0 * 1024 + 300, 39328);
    assert_string_equal(buf, "file.c:12: size=4855 KiB, count=39328, average=126 B");
    rcgc_fmt_statistic_diff(buf, sizeof buf, "file.c:12", 8173.0 * 1024, 4428.0 * 1024,
                            71332, 39369);
    assert_string_equal(buf, "file.c:12: size=8173 KiB (+4428 KiB), count=71332 "
                             "(+39369), average=117 B");
}

static void test_frames_match_python(void **state)
{
    (void)state;
    static const char *names[] = { "a.c", "<unknown>", "it's.c", "say \"hi\".c",
                                   "both'\".c", "back\\slash.c", "ctl\x01.c",
                                   "caf\xc3\xa9.c", "" };
    size_t n = sizeof names / sizeof names[0];
    pyrun py;
    assert_int_equal(pyrun_open(&py), 0);
    for (size_t i = 0; i < n; i++)
        fprintf(py.in, "frame\t%s\t%zu\n", names[i], i * 1000);
    assert_int_equal(pyrun_exec(&py), (long)n);
    char buf[200], repr[200], both[420];
    for (size_t i = 0; i < n; i++) {
        rcgc_fmt_frame(buf, sizeof buf, names[i], (long)(i * 1000));
        rcgc_fmt_frame_repr(repr, sizeof repr, names[i], (long)(i * 1000));
        snprintf(both, sizeof both, "%s\t%s", buf, repr);
        assert_string_equal(both, py.answers[i]);
    }
    pyrun_close(&py);
}

/* Frame lines with their source, read from this very file and from a file
 * with every kind of line ending and surrounding blanks. */
static void test_frame_lines_match_python(void **state)
{
    (void)state;
    const char *tmp = "/tmp/rcgc-tmformat-src.c";
    FILE *fp = fopen(tmp, "wb");
    assert_non_null(fp);
    fputs("\xef\xbb\xbf" "first line\r\n  \tsecond\x1f \r\rfourth\n\v\n   \nlast", fp);
    fclose(fp);
    pyrun py;
    assert_int_equal(pyrun_open(&py), 0);
    for (int line = 0; line <= 9; line++)
        fprintf(py.in, "tbfmt\tNone\t0\t%s\t%d\n", tmp, line);
    for (int line = 1; line <= 40; line++)
        fprintf(py.in, "tbfmt\tNone\t0\t%s\t%d\n", __FILE__, line);
    fprintf(py.in, "tbfmt\tNone\t0\t<unknown>\t0\n");
    fprintf(py.in, "tbfmt\tNone\t0\t/nonexistent/x.c\t3\n");
    assert_int_equal(pyrun_exec(&py), 52);
    rcgc_linecache *lc = rcgc_linecache_new();
    assert_non_null(lc);
    size_t k = 0;
    char expect[1000];
    for (int i = 0; i < 52; i++) {
        const char *file = i < 10 ? tmp : i < 50 ? __FILE__ : i == 50 ? "<unknown>"
                                                                       : "/nonexistent/x.c";
        long line = i < 10 ? i : i < 50 ? i - 9 : i == 50 ? 0 : 3;
        char got[1000];
        size_t n = rcgc_fmt_file_line(got, sizeof got, file, line);
        size_t len;
        const char *src = rcgc_linecache_getline(lc, file, line, &len);
        if (src && len)
            snprintf(got + n, sizeof got - n, "|    %.*s", (int)len, src);
        snprintf(expect, sizeof expect, "%s", py.answers[k++]);
        assert_string_equal(got, expect);
    }
    rcgc_linecache_free(lc);
    pyrun_close(&py);
    remove(tmp);
}

static void test_truncation(void **state)
{
    (void)state;
    char buf[8];
    size_t n = rcgc_fmt_statistic_line(buf, sizeof buf, "file.c", 12, 100, 3);
    assert_int_equal(n, strlen("file.c:12: size=100 B, count=3, average=33 B"));
    assert_string_equal(buf, "file.c:");
    assert_int_equal(rcgc_fmt_size(NULL, 0, 12345678, 0), strlen("11.8 MiB"));
    char tiny[1];
    rcgc_fmt_frame_repr(tiny, 1, "x'y", 1);
    assert_int_equal(tiny[0], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_match_python),
        cmocka_unit_test(test_statistics_match_python),
        cmocka_unit_test(test_issue_examples),
        cmocka_unit_test(test_frames_match_python),
        cmocka_unit_test(test_frame_lines_match_python),
        cmocka_unit_test(test_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
