/*
 * bench.h - the small toolbox every rcgc benchmark program shares.
 *
 * Header-only (static functions) so each benchmark binary stays one
 * translation unit that can be linked against exactly one allocator.
 *
 * Output contract: a benchmark program prints one JSON object per line on
 * stdout, one per sample, with the keys suite, case, impl, metric, value and
 * unit (bench_emit).  The suite drivers (bench/<suite>/run.sh) collect those
 * samples from several interleaved runs and reduce them to medians
 * (bench/common/reduce.py).  Anything else a program wants to say goes to
 * stderr.
 */
#ifndef RCGC_BENCH_H
#define RCGC_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Monotonic wall-clock time in nanoseconds. */
static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CPU time of the calling thread in nanoseconds (excludes the time the
 * thread waited for a core). */
static inline uint64_t bench_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Make the compiler believe p escapes: stops it from deleting a
 * malloc/free pair whose block is never used, or a computation whose
 * result is never read. */
static inline void bench_escape(const void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* splitmix64: a tiny, fast, well-mixed generator.  Every implementation of
 * a case is driven with the same seed, hence the same sequence. */
typedef struct bench_rng {
    uint64_t s;
} bench_rng;

static inline uint64_t bench_rng_next(bench_rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) (Lemire's multiply-shift; the bias is below 2^-32 for
 * the small n used here). */
static inline uint32_t bench_rng_below(bench_rng *r, uint32_t n)
{
    return (uint32_t)(((bench_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Resident set size of this process in bytes (from /proc/self/statm), or 0
 * when it cannot be read. */
static inline size_t bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Print one sample as a JSON line.  Names are plain identifiers chosen by
 * the benchmarks themselves, so no escaping is needed. */
static inline void bench_emit(const char *suite, const char *bcase,
                              const char *impl, const char *metric,
                              double value, const char *unit)
{
    printf("{\"suite\": \"%s\", \"case\": \"%s\", \"impl\": \"%s\", "
           "\"metric\": \"%s\", \"value\": %.6g, \"unit\": \"%s\"}\n",
           suite, bcase, impl, metric, value, unit);
    fflush(stdout);
}

/* Die with a message (benchmarks have no recovery story). */
static inline void bench_die(const char *what)
{
    fprintf(stderr, "bench: %s\n", what);
    exit(1);
}

/* Parse a non-negative count argument such as "1000000" or "1M" / "10M" /
 * "100k". */
static inline size_t bench_parse_count(const char *s)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        bench_die("bad count argument");
    if (*end == 'k' || *end == 'K')
        v *= 1000u;
    else if (*end == 'M' || *end == 'm')
        v *= 1000000u;
    return (size_t)v;
}

#endif /* RCGC_BENCH_H */
