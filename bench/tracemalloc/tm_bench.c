/*
 * tm_bench.c - what tracing costs (suite `tracemalloc`, issue 4 "Numbers").
 *
 *   tm_bench pairs_hot|pairs_cold OPS [rcgc|rcgc_tm1|rcgc_tm16n]
 *       The core's allocation benchmark (free + allocate pairs of random
 *       sizes 8..512 B over 1,000 / 100,000 live blocks) in three fresh
 *       runtimes of this process: tracing off (impl rcgc), tracing with the
 *       call-site frame (rcgc_tm1), tracing 16 native frames (rcgc_tm16n);
 *       PAIR_ROUNDS rounds of the three, each round starting with another
 *       mode.  Emits ns_per_pair for each loop and, per round, slowdown =
 *       traced / off of that round; with BENCH_CPU_TIME=1 in the
 *       environment also cpu_ns_per_pair and cpu_slowdown, by the thread's
 *       CPU time.  With IMPL, that mode alone, once.
 *   tm_bench memory N
 *       Tracing's own memory per live traced block after N allocations
 *       (get_tracemalloc_memory delta / N), call sites and native stacks.
 *   tm_bench snapshot N OUT
 *       N live traces from 1,000 lines: take_snapshot + statistics('lineno')
 *       time, then dump time and size (the snapshot is written to OUT).
 *
 * Built with frame pointers (native stacks are walked by them) and the
 * timed loop runs 12 calls deep, so a 16-frame stack is really 16 frames.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bench.h"
#include "rcgc.h"
#include "rcgc_tracemalloc.h"

#define SEED 0x5eed0001u
#define MIN_SIZE 8u
#define MAX_SIZE 512u

enum mode { OFF, TM1, TM16N };

/* Rounds of the three modes per process for pairs_hot and pairs_cold: a
 * timed loop lasts 25-80 ms, short enough for one slow moment of the
 * shared machine to decide a sample, so each process takes three rounds
 * and each round's ratio pairs loops run within the same ~0.3 s. */
#define PAIR_ROUNDS 3
static const char *const impl_name[] = { "rcgc", "rcgc_tm1", "rcgc_tm16n" };

static rcgc_runtime *make_rt(enum mode m)
{
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    if (!rt)
        bench_die("runtime");
    if (m == TM16N) {
        rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_NATIVE);
        rcgc_tracemalloc_start(rt, 16);
    } else if (m == TM1) {
        rcgc_tracemalloc_start(rt, 1);
    }
    return rt;
}

typedef struct ops {
    uint32_t *slot;
    uint16_t *size;
    size_t n;
} ops;

static ops make_ops(bench_rng *rng, size_t n, uint32_t live)
{
    ops s = { malloc(n * sizeof(uint32_t)), malloc(n * sizeof(uint16_t)), n };
    if (!s.slot || !s.size)
        bench_die("out of memory");
    for (size_t i = 0; i < n; i++) {
        s.slot[i] = bench_rng_below(rng, live);
        s.size[i] = (uint16_t)(MIN_SIZE + bench_rng_below(rng, MAX_SIZE - MIN_SIZE + 1));
    }
    return s;
}

__attribute__((noinline)) static void loop_pairs(rcgc_runtime *rt, void **slots, const ops *s)
{
    for (size_t i = 0; i < s->n; i++) {
        uint32_t k = s->slot[i];
        rcgc_mem_free(rt, slots[k]);
        void *p = rcgc_mem_malloc(rt, s->size[i]);
        *(uint64_t *)p = i;
        slots[k] = p;
    }
}

/* Call `loop_pairs` `depth` frames deep. */
__attribute__((noinline)) static void deep(int depth, rcgc_runtime *rt, void **slots,
                                           const ops *s)
{
    if (depth > 0)
        deep(depth - 1, rt, slots, s);
    else
        loop_pairs(rt, slots, s);
    bench_escape(slots);
}

/* ns a pair of one run, by the wall clock and by the thread's CPU time
 * (which leaves out the time the process waited for a core). */
typedef struct pair_times {
    double wall, cpu;
} pair_times;

static pair_times run_pairs(enum mode m, uint32_t live, size_t nops)
{
    bench_rng rng = { SEED };
    rcgc_runtime *rt = make_rt(m);
    void **slots = malloc(live * sizeof *slots);
    for (uint32_t i = 0; i < live; i++)
        slots[i] = rcgc_mem_malloc(rt, MIN_SIZE + bench_rng_below(&rng, MAX_SIZE - MIN_SIZE + 1));
    size_t warm = nops / 4 > 4 * (size_t)live ? nops / 4 : 4 * (size_t)live;
    ops w = make_ops(&rng, warm, live);
    ops t = make_ops(&rng, nops, live);
    deep(12, rt, slots, &w);
    uint64_t c0 = bench_cpu_ns();
    uint64_t t0 = bench_now_ns();
    deep(12, rt, slots, &t);
    uint64_t t1 = bench_now_ns();
    uint64_t c1 = bench_cpu_ns();
    for (uint32_t i = 0; i < live; i++)
        rcgc_mem_free(rt, slots[i]);
    free(slots);
    free(w.slot), free(w.size), free(t.slot), free(t.size);
    rcgc_runtime_free(rt);
    return (pair_times){(double)(t1 - t0) / (double)nops, (double)(c1 - c0) / (double)nops};
}

/* BENCH_CPU_TIME=1 adds the CPU-time metrics (as the alloc suite does). */
static int want_cpu(void)
{
    const char *cpu = getenv("BENCH_CPU_TIME");
    return cpu != NULL && strcmp(cpu, "1") == 0;
}

static void case_pairs(const char *name, uint32_t live, size_t nops, const char *only)
{
    int cpu = want_cpu();
    /* With `only`, one mode once (for callgrind: instructions per pair,
     * load-independent). */
    int rounds = only ? 1 : PAIR_ROUNDS;
    for (int round = 0; round < rounds; round++) {
        pair_times ns[3];
        for (int k = 0; k < 3; k++) {
            /* Each round starts with another mode, so that none always
             * runs first or after the same one. */
            int m = (k + round) % 3;
            if (only && strcmp(only, impl_name[m]) != 0)
                continue;
            ns[m] = run_pairs((enum mode)m, live, nops);
            bench_emit("tracemalloc", name, impl_name[m], "ns_per_pair", ns[m].wall, "ns");
            if (cpu)
                bench_emit("tracemalloc", name, impl_name[m], "cpu_ns_per_pair", ns[m].cpu, "ns");
        }
        if (only)
            return;
        bench_emit("tracemalloc", name, "rcgc_tm1", "slowdown", ns[TM1].wall / ns[OFF].wall, "x");
        bench_emit("tracemalloc", name, "rcgc_tm16n", "slowdown", ns[TM16N].wall / ns[OFF].wall,
                   "x");
        if (cpu) {
            bench_emit("tracemalloc", name, "rcgc_tm1", "cpu_slowdown", ns[TM1].cpu / ns[OFF].cpu,
                       "x");
            bench_emit("tracemalloc", name, "rcgc_tm16n", "cpu_slowdown",
                       ns[TM16N].cpu / ns[OFF].cpu, "x");
        }
    }
}

__attribute__((noinline)) static void fill(rcgc_runtime *rt, void **p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = rcgc_mem_malloc(rt, 8 + (i * 7919) % 120);
}

static void case_memory(size_t n)
{
    for (int m = TM1; m <= TM16N; m++) {
        rcgc_runtime *rt = make_rt((enum mode)m);
        void **p = malloc(n * sizeof *p);
        size_t m0 = rcgc_tracemalloc_get_tracemalloc_memory(rt);
        fill(rt, p, n);
        size_t m1 = rcgc_tracemalloc_get_tracemalloc_memory(rt);
        bench_emit("tracemalloc", "memory", impl_name[m], "bytes_per_block",
                   (double)(m1 - m0) / (double)n, "B");
        for (size_t i = 0; i < n; i++)
            rcgc_mem_free(rt, p[i]);
        free(p);
        rcgc_runtime_free(rt);
    }
}

static void case_snapshot(size_t n, const char *out)
{
    rcgc_runtime *rt = make_rt(TM1);
    void **p = malloc(n * sizeof *p);
    static const char *files[] = { "app/main.c", "app/parse.c", "app/eval.c", "lib/str.c",
                                   "lib/list.c", "lib/dict.c", "net/io.c", "net/http.c",
                                   "db/query.c", "db/cache.c" };
    for (size_t i = 0; i < n; i++)
        p[i] = rcgc_mem_malloc_at(rt, 16 + (i % 13) * 8, files[i % 10], (int)(1 + i % 100));
    uint64_t t0 = bench_now_ns();
    rcgc_snapshot *snap;
    if (rcgc_tracemalloc_take_snapshot(rt, &snap) != RCGC_OK)
        bench_die("take_snapshot");
    rcgc_stats *st;
    if (rcgc_snapshot_statistics(snap, RCGC_KEY_LINENO, 0, &st) != RCGC_OK)
        bench_die("statistics");
    uint64_t t1 = bench_now_ns();
    if (rcgc_snapshot_dump(snap, out) != RCGC_OK)
        bench_die("dump");
    uint64_t t2 = bench_now_ns();
    rcgc_snapshot *back;
    char err[200];
    if (rcgc_snapshot_load(out, &back, err, sizeof err) != RCGC_OK)
        bench_die(err);
    uint64_t t3 = bench_now_ns();
    struct stat sb;
    stat(out, &sb);
    bench_emit("tracemalloc", "snapshot_stats_1M", "rcgc_tm1", "seconds", (double)(t1 - t0) / 1e9,
               "s");
    bench_emit("tracemalloc", "dump_1M", "rcgc", "seconds", (double)(t2 - t1) / 1e9, "s");
    bench_emit("tracemalloc", "dump_1M", "rcgc", "bytes", (double)sb.st_size, "B");
    bench_emit("tracemalloc", "load_1M", "rcgc", "seconds", (double)(t3 - t2) / 1e9, "s");
    fprintf(stderr, "snapshot: %zu traces, %zu lines; top: ", rcgc_snapshot_len(snap),
            rcgc_stats_len(st));
    rcgc_stats_print(st, 0, stderr);
    rcgc_snapshot_free(back);
    rcgc_stats_free(st);
    rcgc_snapshot_free(snap);
    for (size_t i = 0; i < n; i++)
        rcgc_mem_free(rt, p[i]);
    free(p);
    rcgc_runtime_free(rt);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s pairs_hot|pairs_cold OPS [IMPL] | memory N | snapshot N OUT\n",
                argv[0]);
        return 2;
    }
    size_t n = (size_t)strtoull(argv[2], NULL, 10);
    const char *only = argc > 3 ? argv[3] : NULL;
    if (strcmp(argv[1], "pairs_hot") == 0)
        case_pairs("pairs_hot", 1000, n, only);
    else if (strcmp(argv[1], "pairs_cold") == 0)
        case_pairs("pairs_cold", 100000, n, only);
    else if (strcmp(argv[1], "memory") == 0)
        case_memory(n);
    else if (strcmp(argv[1], "snapshot") == 0 && argc == 4)
        case_snapshot(n, argv[3]);
    else
        return 2;
    return 0;
}
