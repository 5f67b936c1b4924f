/* fuzz_load.c - libFuzzer target over the snapshot loader.  Whatever the
 * bytes, loading returns OK or an error with a message; a loaded snapshot
 * must survive every query and dump to a file that loads back equal.
 *
 * Built two ways (tests/tracemalloc/CMakeLists.txt): with clang and
 * -fsanitize=fuzzer when RCGC_FUZZ=ON, and always as fuzz_replay (any
 * compiler), which runs every file of corpus/ through this function as a
 * test in `make test`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcgc_tracemalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The loader's cap (tmsnap.h): a million traces keeps every input cheap. */
extern uint64_t tm_load_max_traces;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    tm_load_max_traces = (uint64_t)1 << 20;
    return 0;
}

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_load: %s\n", what);
        abort();
    }
}

/* CRC-32 (the format's), to let the fuzzer past the checksum. */
static uint32_t crc32_fix(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void load_and_query(const uint8_t *data, size_t size);

/* Each input is tried as it is (the header checks) and again with its
 * magic, version, length and checksum made right (the body parser). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_and_query(data, size);
    if (size >= 24) {
        uint8_t *copy = malloc(size);
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        memcpy(copy, "RCGCSNAP\x01\x00\x00\x00", 12);
        uint64_t body = size - 24;
        for (int i = 0; i < 8; i++)
            copy[16 + i] = (uint8_t)(body >> (8 * i));
        uint32_t c = crc32_fix(copy + 24, size - 24);
        for (int i = 0; i < 4; i++)
            copy[12 + i] = (uint8_t)(c >> (8 * i));
        load_and_query(copy, size);
        free(copy);
    }
    return 0;
}

static void load_and_query(const uint8_t *data, size_t size)
{
    rcgc_snapshot *s = NULL;
    char err[256];
    int rc = rcgc_snapshot_load_buffer(data, size, &s, err, sizeof err);
    if (rc != RCGC_OK) {
        check(s == NULL, "error with a snapshot");
        check(err[0] != '\0', "error without a message");
        check(rc == RCGC_EFORMAT || rc == RCGC_ENOMEM, "unexpected status");
        return;
    }
    char line[4096];
    for (int key = 0; key < 3; key++) {
        for (int cum = 0; cum < 2; cum++) {
            rcgc_stats *st = NULL;
            int r = rcgc_snapshot_statistics(s, (rcgc_stat_key)key, cum, &st);
            if (r != RCGC_OK)
                continue;
            for (size_t i = 0; i < rcgc_stats_len(st); i++)
                rcgc_statistic_str(rcgc_stats_get(st, i), line, sizeof line);
            rcgc_stats_free(st);
            if (rcgc_snapshot_compare_to(s, s, (rcgc_stat_key)key, cum, &st) == RCGC_OK) {
                for (size_t i = 0; i < rcgc_stats_len(st); i++) {
                    const rcgc_statistic_diff *d = rcgc_stats_get_diff(st, i);
                    check(d->size_diff == 0 && d->count_diff == 0, "self diff not zero");
                    rcgc_statistic_diff_str(d, line, sizeof line);
                }
                rcgc_stats_free(st);
            }
        }
    }
    rcgc_filter f[2] = { { 1, "*a*", -1, 1, 0, 0 }, { 0, "[!b]*", 3, 0, 1, 0 } };
    rcgc_snapshot *g = NULL;
    if (rcgc_snapshot_filter_traces(s, f, 2, &g) == RCGC_OK)
        rcgc_snapshot_free(g);
    for (size_t i = 0; i < rcgc_snapshot_len(s) && i < 64; i++) {
        rcgc_trace t = rcgc_snapshot_trace(s, i);
        rcgc_trace_str(&t, line, sizeof line);
        for (size_t k = 0; k < rcgc_traceback_len(t.traceback); k++)
            (void)rcgc_traceback_frame(t.traceback, k);
    }
    void *again = NULL;
    size_t n = 0;
    if (rcgc_snapshot_dump_buffer(s, &again, &n) == RCGC_OK) {
        rcgc_snapshot *u = NULL;
        check(rcgc_snapshot_load_buffer(again, n, &u, err, sizeof err) == RCGC_OK,
              "a dump does not load back");
        check(rcgc_snapshot_len(u) == rcgc_snapshot_len(s), "reloaded length differs");
        check(rcgc_snapshot_total_size(u) == rcgc_snapshot_total_size(s), "reloaded size differs");
        rcgc_snapshot_free(u);
        free(again);
    }
    rcgc_snapshot_free(s);
}
