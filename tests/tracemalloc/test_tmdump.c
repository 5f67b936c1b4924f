/* test_tmdump.c - dump/load: round trip, size, and the loader against bad
 * input: every truncation, every single-bit flip, a foreign file, a newer
 * version, and forged bodies with a correct checksum (so that the checks
 * behind the checksum are exercised too).  Never a crash, always a clear
 * message. */
#include <errno.h>
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

/* CRC-32 as the format defines it, written independently of tmdump.c. */
static uint32_t crc32_ref(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void fix_crc(unsigned char *d, size_t n)
{
    uint32_t c = crc32_ref(d + 24, n - 24);
    for (int i = 0; i < 4; i++)
        d[12 + i] = (unsigned char)(c >> (8 * i));
}

static rcgc_snapshot *sample(rcgc_runtime **rtp, void ***keep, size_t n)
{
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    assert_non_null(rt);
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    void **p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        switch (i % 3) {
        case 0: p[i] = rcgc_mem_malloc(rt, 32); break;
        case 1: p[i] = rcgc_mem_malloc(rt, 100 + i % 7); break;
        default: p[i] = rcgc_mem_malloc(rt, 1000); break;
        }
    }
    rcgc_tracemalloc_track(rt, 42, 0xdead0000, 12345);
    rcgc_snapshot *s;
    assert_int_equal(rcgc_tracemalloc_take_snapshot(rt, &s), RCGC_OK);
    *rtp = rt;
    *keep = p;
    return s;
}

static void release(rcgc_runtime *rt, void **p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rcgc_mem_free(rt, p[i]);
    free(p);
    rcgc_runtime_free(rt);
}

static void assert_same(const rcgc_snapshot *a, const rcgc_snapshot *b)
{
    assert_int_equal(rcgc_snapshot_len(a), rcgc_snapshot_len(b));
    assert_int_equal(rcgc_snapshot_total_size(a), rcgc_snapshot_total_size(b));
    assert_int_equal(rcgc_snapshot_traceback_limit(a), rcgc_snapshot_traceback_limit(b));
    rcgc_stats *x, *y;
    assert_int_equal(rcgc_snapshot_statistics(a, RCGC_KEY_TRACEBACK, 0, &x), RCGC_OK);
    assert_int_equal(rcgc_snapshot_statistics(b, RCGC_KEY_TRACEBACK, 0, &y), RCGC_OK);
    assert_int_equal(rcgc_stats_len(x), rcgc_stats_len(y));
    for (size_t i = 0; i < rcgc_stats_len(x); i++) {
        char s1[300], s2[300];
        rcgc_statistic_str(rcgc_stats_get(x, i), s1, sizeof s1);
        rcgc_statistic_str(rcgc_stats_get(y, i), s2, sizeof s2);
        assert_string_equal(s1, s2);
    }
    rcgc_stats_free(x);
    rcgc_stats_free(y);
}

static void test_round_trip_file(void **state)
{
    (void)state;
    rcgc_runtime *rt;
    void **keep;
    rcgc_snapshot *s = sample(&rt, &keep, 3000);
    char path[64];
    snprintf(path, sizeof path, "/tmp/rcgc-dump-%ld.snap", (long)getpid());
    assert_int_equal(rcgc_snapshot_dump(s, path), RCGC_OK);
    rcgc_snapshot *t;
    char err[200];
    assert_int_equal(rcgc_snapshot_load(path, &t, err, sizeof err), RCGC_OK);
    assert_string_equal(err, "");
    assert_same(s, t);
    /* Runs make it small: 3001 traces on a few lines with few sizes. */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    print_message("dump of %zu traces: %ld bytes\n", rcgc_snapshot_len(s), size);
    assert_true(size < 400);
    remove(path);
    rcgc_snapshot_free(t);
    assert_int_equal(rcgc_snapshot_load("/nonexistent/x.snap", &t, err, sizeof err), RCGC_EIO);
    assert_null(t);
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(rcgc_snapshot_dump(s, "/nonexistent/dir/x.snap"), RCGC_EIO);
    rcgc_snapshot_free(s);
    release(rt, keep, 3000);
}

static void test_truncations_and_flips(void **state)
{
    (void)state;
    rcgc_runtime *rt;
    void **keep;
    rcgc_snapshot *s = sample(&rt, &keep, 300);
    void *data;
    size_t n;
    assert_int_equal(rcgc_snapshot_dump_buffer(s, &data, &n), RCGC_OK);
    unsigned char *d = data;
    char err[200];
    rcgc_snapshot *t;
    for (size_t len = 0; len < n; len++) {
        assert_int_equal(rcgc_snapshot_load_buffer(d, len, &t, err, sizeof err), RCGC_EFORMAT);
        assert_null(t);
        assert_true(strstr(err, "truncated") || strstr(err, "magic"));
    }
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            d[i] ^= (unsigned char)(1u << bit);
            int rc = rcgc_snapshot_load_buffer(d, n, &t, err, sizeof err);
            assert_int_equal(rc, RCGC_EFORMAT);
            assert_true(err[0] != '\0');
            d[i] ^= (unsigned char)(1u << bit);
        }
    }
    /* Bit flips behind a recomputed checksum reach the body checks: any
     * outcome but a crash is fine, and a success must be a usable snapshot. */
    size_t ok = 0, refused = 0;
    for (size_t i = 24; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            d[i] ^= (unsigned char)(1u << bit);
            fix_crc(d, n);
            int rc = rcgc_snapshot_load_buffer(d, n, &t, err, sizeof err);
            if (rc == RCGC_OK) {
                ok++;
                rcgc_stats *st;
                assert_int_equal(rcgc_snapshot_statistics(t, RCGC_KEY_LINENO, 1, &st), RCGC_OK);
                for (size_t k = 0; k < rcgc_stats_len(st); k++) {
                    char line[600];
                    rcgc_statistic_str(rcgc_stats_get(st, k), line, sizeof line);
                }
                rcgc_stats_free(st);
                rcgc_snapshot_free(t);
            } else {
                assert_int_equal(rc, RCGC_EFORMAT);
                assert_non_null(strstr(err, "corrupt snapshot"));
                refused++;
            }
            d[i] ^= (unsigned char)(1u << bit);
        }
    }
    fix_crc(d, n);
    print_message("forged bodies: %zu loaded, %zu refused\n", ok, refused);
    assert_true(refused > 0);
    /* Trailing garbage, foreign file, other version, unknown flags. */
    unsigned char *longer = malloc(n + 3);
    memcpy(longer, d, n);
    memset(longer + n, 0, 3);
    assert_int_equal(rcgc_snapshot_load_buffer(longer, n + 3, &t, err, sizeof err), RCGC_EFORMAT);
    assert_non_null(strstr(err, "unexpected bytes"));
    free(longer);
    const char *elf = "\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    assert_int_equal(rcgc_snapshot_load_buffer(elf, 28, &t, err, sizeof err), RCGC_EFORMAT);
    assert_non_null(strstr(err, "not an rcgc snapshot"));
    d[8] = 2;
    assert_int_equal(rcgc_snapshot_load_buffer(d, n, &t, err, sizeof err), RCGC_EFORMAT);
    assert_non_null(strstr(err, "version 2"));
    d[8] = 1;
    d[10] = 1;
    assert_int_equal(rcgc_snapshot_load_buffer(d, n, &t, err, sizeof err), RCGC_EFORMAT);
    assert_non_null(strstr(err, "flags"));
    d[10] = 0;
    assert_int_equal(rcgc_snapshot_load_buffer(d, n, &t, err, sizeof err), RCGC_OK);
    rcgc_snapshot_free(t);
    free(data);
    rcgc_snapshot_free(s);
    release(rt, keep, 300);
}

/* Hand-made bodies: each breaks one rule of the format. */
static void test_forged(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        size_t len;
        const char *msg;
    } cases[] = {
        { "\x01\x05\x01", 3, "string count" },
        { "\x01\x01\x02" "a\0", 5, "NUL byte" },
        { "\x01\x01\x01" "a" "\x01\x05\x00\x00", 8, "string that does not exist" },
        { "\x01\x01\x01" "a" "\x01\x00\x00\x00" "\x01\x00\x00\x00\x00", 13, "frame count out" },
        { "\x01\x01\x01" "a" "\x01\x00\x00\x00" "\x01\x00\x01\x09", 12, "frame that does not" },
        { "\x01\x01\x01" "a" "\x01\x00\x00\x00" "\x01\x00\x01\x00" "\x01\x02\x00\x00\x04\x01",
          18, "do not add up" },
        { "\x01\x01\x01" "a" "\x01\x00\x00\x00" "\x01\x00\x01\x00" "\x01\x01\x00\x02\x04\x01",
          18, "traceback that does not exist" },
        { "\x01\x01\x01" "a" "\x01\x00\x00\x00" "\x01\x00\x01\x00" "\x01\x01\x00\x00\x04\x01\x07",
          19, "trailing bytes" },
        { "\x01\x00\x00\x00\x00\x80\x80\x80\x80\x80\x20", 11, "too many traces" },
        { "\x01\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 16, "overflows" },
        { "\xff\xff\x7f", 3, "limit out of range" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 24 + cases[i].len;
        unsigned char *d = calloc(1, n);
        memcpy(d, "RCGCSNAP\x01\0\0\0", 12);
        for (int k = 0; k < 8; k++)
            d[16 + k] = (unsigned char)(cases[i].len >> (8 * k));
        memcpy(d + 24, cases[i].body, cases[i].len);
        fix_crc(d, n);
        rcgc_snapshot *t;
        char err[200];
        int rc = rcgc_snapshot_load_buffer(d, n, &t, err, sizeof err);
        if (rc != RCGC_EFORMAT || !strstr(err, cases[i].msg))
            fail_msg("case %zu: rc %d, message \"%s\", expected \"%s\"", i, rc, err,
                     cases[i].msg);
        free(d);
    }
    /* And a minimal valid one: one trace of 5 bytes at a.c:0. */
    const char *good = "\x01\x01\x01" "a" "\x01\x00\x00\x00" "\x01\x00\x01\x00" "\x01\x01\x00\x00\x05\x01";
    size_t glen = 18, n = 24 + glen;
    unsigned char *d = calloc(1, n);
    memcpy(d, "RCGCSNAP\x01\0\0\0", 12);
    d[16] = (unsigned char)glen;
    memcpy(d + 24, good, glen);
    fix_crc(d, n);
    rcgc_snapshot *t;
    char err[200];
    assert_int_equal(rcgc_snapshot_load_buffer(d, n, &t, err, sizeof err), RCGC_OK);
    rcgc_trace tr = rcgc_snapshot_trace(t, 0);
    char line[100];
    rcgc_trace_str(&tr, line, sizeof line);
    assert_string_equal(line, "a:0: 5 B");
    rcgc_snapshot_free(t);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_file),
        cmocka_unit_test(test_truncations_and_flips),
        cmocka_unit_test(test_forged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
