/*
 * report.h - what every report shares: the metric being shown, a stack's
 * "line" (where it allocated), and aggregation by key.
 */
#ifndef RCGC_PROF_REPORT_H
#define RCGC_PROF_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "capture.h"

enum prof_metric {
    PROF_TOTAL,     /* everything allocated */
    PROF_PEAK,      /* live at the heap peak */
    PROF_LEAKED,    /* live at exit (at the last flush if the process died) */
    PROF_TEMPORARY, /* freed before the thread allocated again */
};

struct prof_opts {
    enum prof_metric metric;
    int top;              /* lines and stacks to print */
    const char *function; /* --function: memory_profiler's per-line view */
    const char *out;      /* -o */
    int width, height;    /* plot size */
};

struct prof_view {
    struct prof_capture *c;
    struct prof_symtab *sym;
    const struct prof_opts *o;
};

const char *prof_metric_name(enum prof_metric m);
uint64_t prof_bytes(const struct prof_stack *s, enum prof_metric m);
uint64_t prof_count(const struct prof_stack *s, enum prof_metric m);
/* The frame a stack is attributed to: the innermost frame with a source
 * line outside the C/C++ runtime libraries (libc, libstdc++, ld.so, libm),
 * else the innermost frame with a source line, else the innermost frame.
 * NULL for an empty stack. */
const struct prof_frame *prof_site(struct prof_view *v, const struct prof_stack *s);
/* "file.c:12", or the frame's name when it has no line; writes into buf. */
const char *prof_site_key(struct prof_view *v, const struct prof_stack *s, char *buf,
                          size_t cap);

/* Statistics by key (line), sorted like tracemalloc's statistics():
 * size, then count, then key, all descending. */
struct prof_stat {
    char *key;
    uint64_t size, count;
};
struct prof_stats {
    struct prof_stat *v;
    size_t n, cap;
    size_t *index; /* open addressing over v, SIZE_MAX = empty */
    size_t index_cap;
};
void prof_stats_add(struct prof_stats *st, const char *key, uint64_t size, uint64_t count);
struct prof_stat *prof_stats_find(struct prof_stats *st, const char *key);
void prof_stats_sort(struct prof_stats *st);
void prof_stats_free(struct prof_stats *st);
/* Statistics by line of a whole capture under a metric. */
void prof_stats_by_line(struct prof_view *v, struct prof_stats *out);

/* Human-readable time "1.23 s" and sizes via rcgc_fmt_size. */
const char *prof_fmt_bytes(char *buf, size_t cap, double bytes);
const char *prof_state_name(const struct prof_capture *c, char *buf, size_t cap);

/* The reports: each returns 0 or prints its error and returns 1. */
int prof_report_text(struct prof_view *v, FILE *out);
int prof_report_function(struct prof_view *v, FILE *out);
int prof_report_folded(struct prof_view *v, FILE *out);
int prof_report_json(struct prof_view *v, FILE *out);
int prof_report_massif(struct prof_view *v, FILE *out);
int prof_report_html(struct prof_view *v, FILE *out);
int prof_plot(struct prof_view *v, const char *path);
int prof_diff(struct prof_view *old_v, struct prof_view *new_v, FILE *out);

/* Escapes for JSON strings (also used inside the HTML report). */
void prof_json_str(FILE *out, const char *s);

void *prof_xmalloc(size_t n);
void *prof_xrealloc(void *p, size_t n);
char *prof_xstrdup(const char *s);

#endif
