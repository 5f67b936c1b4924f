/* The tour, tracemalloc: the seeds' profiling sections in C -
 * tracemalloc.start(), take_snapshot(), statistics('lineno'), compare_to(),
 * get_traced_memory(), get_object_traceback(), and "use generators, not
 * lists" measured with the peak. */
#include <rcgc.h>
#include <rcgc_tracemalloc.h>
#include <stdio.h>
#include <string.h>

#include "tour.h"

/* A Python str: variable-size, holds no references (never tracked). */
typedef struct str_obj {
    rcgc_object ob;
    size_t len;
    char data[];
} str_obj;
static const rcgc_type str_type = { .name = "str", .size = sizeof(str_obj), .itemsize = 1 };

/* str(i) */
static rcgc_object *str_of(rcgc_runtime *rt, long i)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld", i);
    str_obj *s = (str_obj *)rcgc_new_var(rt, &str_type, (size_t)n + 1);
    s->len = (size_t)n;
    memcpy(s->data, buf, (size_t)n + 1);
    return &s->ob;
}

/* An int object (a boxed long), as range() yields them. */
typedef struct int_obj {
    rcgc_object ob;
    long value;
} int_obj;
static const rcgc_type int_type = { .name = "int", .size = sizeof(int_obj) };

static rcgc_object *int_of(rcgc_runtime *rt, long v)
{
    int_obj *o = (int_obj *)rcgc_new(rt, &int_type);
    o->value = v;
    return &o->ob;
}

/* def allocate(n): return [str(i) for i in range(n)] */
static rcgc_list *allocate(rcgc_runtime *rt, long n)
{
    rcgc_list *l = rcgc_list_new(rt);
    for (long i = 0; i < n; i++) {
        rcgc_object *s = str_of(rt, i);
        rcgc_list_append(l, s);
        rcgc_decref(s);
    }
    return l;
}

static void print_top(const rcgc_snapshot *snap, rcgc_stat_key key, size_t n)
{
    rcgc_stats *st;
    if (rcgc_snapshot_statistics(snap, key, 0, &st) != RCGC_OK)
        return;
    for (size_t i = 0; i < n && i < rcgc_stats_len(st); i++)
        rcgc_stats_print(st, i, stdout);
    rcgc_stats_free(st);
}

static void top_lines(rcgc_runtime *rt)
{
    tour_heading("tracemalloc: which lines allocate the most (statistics('lineno'))");
    printf("tracemalloc.start()\nallocate(100_000)            # [str(i) for i in range(n)]\n"
           "snapshot = tracemalloc.take_snapshot()\n"
           "for stat in snapshot.statistics('lineno')[:5]: print(stat)\n\n");
    rcgc_tracemalloc_start(rt, 1);
    rcgc_list *l = allocate(rt, 100000);
    rcgc_snapshot *snap;
    rcgc_tracemalloc_take_snapshot(rt, &snap);
    print_top(snap, RCGC_KEY_LINENO, 5);
    tour_note("One line per allocating call site: str_of's rcgc_new_var made the 100,000");
    tour_note("strings, the list's growth is the second line.  Sizes and averages print");
    tour_note("exactly as Python's (KiB, MiB; 3 significant digits below 100).");

    /* get_object_traceback + Traceback.format(), with the source line. */
    rcgc_traceback *tb = rcgc_tracemalloc_get_object_traceback(rcgc_list_get(l, 42));
    printf("\ntracemalloc.get_object_traceback(lst[42]).format():\n");
    rcgc_traceback_format(tb, RCGC_TRACEBACK_NO_LIMIT, 0, stdout);
    rcgc_traceback_free(tb);
    rcgc_snapshot_free(snap);
    rcgc_decref((rcgc_object *)l);
    rcgc_tracemalloc_stop(rt);
}

static void compare_snapshots(rcgc_runtime *rt)
{
    tour_heading("tracemalloc: what grew between two snapshots (compare_to)");
    rcgc_tracemalloc_start(rt, 1);
    rcgc_list *keep = allocate(rt, 20000);
    rcgc_snapshot *before, *after;
    rcgc_tracemalloc_take_snapshot(rt, &before);
    rcgc_list *more = allocate(rt, 30000);
    rcgc_list *ints = rcgc_list_new(rt);
    for (long i = 0; i < 10000; i++) {
        rcgc_object *o = int_of(rt, i);
        rcgc_list_append(ints, o);
        rcgc_decref(o);
    }
    rcgc_tracemalloc_take_snapshot(rt, &after);
    printf("snapshot2.compare_to(snapshot1, 'lineno')[:3]:\n");
    rcgc_stats *st;
    rcgc_snapshot_compare_to(after, before, RCGC_KEY_LINENO, 0, &st);
    for (size_t i = 0; i < 3 && i < rcgc_stats_len(st); i++)
        rcgc_stats_print(st, i, stdout);
    rcgc_stats_free(st);
    tour_note("size=... (+growth), count=... (+new blocks): the str line grew by 30,000");
    tour_note("blocks, the int line appeared (+10000).  A leak shows up the same way.");
    rcgc_snapshot_free(before);
    rcgc_snapshot_free(after);
    rcgc_decref((rcgc_object *)keep);
    rcgc_decref((rcgc_object *)more);
    rcgc_decref((rcgc_object *)ints);
    rcgc_tracemalloc_stop(rt);
}

static void print_memory(const char *label, rcgc_runtime *rt)
{
    size_t cur, peak;
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    printf("%-28s current=%zu B, peak=%zu B\n", label, cur, peak);
}

/* sum(list(range(n))): every int exists at once. */
static long sum_list(rcgc_runtime *rt, long n)
{
    rcgc_list *l = rcgc_list_new(rt);
    for (long i = 0; i < n; i++) {
        rcgc_object *o = int_of(rt, i);
        rcgc_list_append(l, o);
        rcgc_decref(o);
    }
    long sum = 0;
    for (size_t i = 0; i < rcgc_list_len(l); i++)
        sum += ((int_obj *)rcgc_list_get(l, i))->value;
    rcgc_decref((rcgc_object *)l);
    return sum;
}

/* sum(gen()): one int at a time, freed as soon as it is consumed. */
static long sum_generator(rcgc_runtime *rt, long n)
{
    long sum = 0;
    for (long i = 0; i < n; i++) {
        rcgc_object *o = int_of(rt, i);   /* yield i */
        sum += ((int_obj *)o)->value;
        rcgc_decref(o);
    }
    return sum;
}

static void traced_memory(rcgc_runtime *rt)
{
    tour_heading("tracemalloc: current and peak (get_traced_memory), generators vs lists");
    rcgc_tracemalloc_start(rt, 1);
    print_memory("after start():", rt);
    rcgc_list *l = allocate(rt, 10000);
    print_memory("after allocate(10_000):", rt);
    rcgc_decref((rcgc_object *)l);
    print_memory("after del:", rt);
    tour_note("current falls back when the list dies; peak remembers the high point.");

    const long n = 1000000;
    printf("\ndef gen():\n    for i in range(1_000_000): yield i\n\n");
    rcgc_tracemalloc_reset_peak(rt);
    long s1 = sum_list(rt, n);
    size_t cur, peak_list, peak_gen;
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak_list);
    rcgc_tracemalloc_reset_peak(rt);
    long s2 = sum_generator(rt, n);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak_gen);
    printf("sum(list(gen())) = %ld   peak %zu bytes\n", s1, peak_list);
    printf("sum(gen())       = %ld   peak %zu bytes\n", s2, peak_gen);
    tour_note("Same answer; the list holds a million ints at its peak (%.1f MiB),",
              (double)peak_list / (1024.0 * 1024.0));
    tour_note("the generator one at a time (%zu bytes): %.0fx less memory.", peak_gen,
              (double)peak_list / (double)(peak_gen ? peak_gen : 1));
    rcgc_tracemalloc_stop(rt);
}

void tour_tracemalloc(void)
{
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    if (!rt)
        return;
    top_lines(rt);
    compare_snapshots(rt);
    traced_memory(rt);
    rcgc_runtime_free(rt);
}
