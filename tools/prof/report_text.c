/*
 * report_text.c - the text reports: the summary with tracemalloc's
 * statistic lines, memory_profiler's per-line view of one function, and
 * the diff of two captures in compare_to's format.
 */
#include "report.h"

#include <stdlib.h>
#include <string.h>

#include "tmformat.h"

static int cmp_stack_desc(const void *a, const void *b, void *arg)
{
    const struct prof_stack *x = a, *y = b;
    enum prof_metric m = *(const enum prof_metric *)arg;
    uint64_t bx = prof_bytes(x, m), by = prof_bytes(y, m);
    if (bx != by)
        return bx > by ? -1 : 1;
    uint64_t cx = prof_count(x, m), cy = prof_count(y, m);
    return cx > cy ? -1 : cx < cy ? 1 : 0;
}

static void print_summary(struct prof_view *v, FILE *out)
{
    const struct prof_capture *c = v->c;
    char a[64], b[64], st[160];
    fprintf(out, "rcgc-prof: %s (pid %llu), %s, ran %.2f s\n", c->cmdline[0] ? c->cmdline : c->exe,
            (unsigned long long)c->pid, prof_state_name(c, st, sizeof st),
            (double)c->duration_ms / 1000.0);
    fprintf(out, "peak heap: %s at %.2f s; peak RSS: %s\n",
            prof_fmt_bytes(a, sizeof a, (double)c->peak_bytes), (double)c->peak_ms / 1000.0,
            prof_fmt_bytes(b, sizeof b, (double)c->peak_rss));
    fprintf(out, "allocations: %llu calls, %s in total, %llu temporary; %llu frees\n",
            (unsigned long long)c->alloc_calls, prof_fmt_bytes(a, sizeof a, (double)c->alloc_bytes),
            (unsigned long long)c->temp_calls, (unsigned long long)c->free_calls);
    fprintf(out, "%s: %s in %llu blocks\n",
            c->state == RCGC_PROF_RUNNING ? "live at the last flush" : "leaked at exit",
            prof_fmt_bytes(a, sizeof a, (double)c->cur_bytes), (unsigned long long)c->cur_count);
}

/* One frame of a stack as Traceback.format() prints it, or, without a
 * source line, its function and module. */
static void print_frame(struct prof_view *v, rcgc_linecache *lc, uint64_t addr, FILE *out)
{
    const struct prof_frame *f = prof_symbolize(v->sym, addr);
    if (f->file) {
        rcgc_fmt_print_frame(out, lc, f->file, f->line);
        return;
    }
    const char *mod = f->module ? strrchr(f->module, '/') : NULL;
    mod = mod ? mod + 1 : f->module ? f->module : "?";
    fprintf(out, "  %s (%s+0x%llx)\n", f->func ? f->func : "??", mod,
            (unsigned long long)f->offset);
}

int prof_report_text(struct prof_view *v, FILE *out)
{
    const struct prof_capture *c = v->c;
    enum prof_metric m = v->o->metric;
    int top = v->o->top > 0 ? v->o->top : 10;
    print_summary(v, out);

    struct prof_stats st = { 0 };
    prof_stats_by_line(v, &st);
    fprintf(out, "\n[ Top %d lines: %s ]\n", top, prof_metric_name(m));
    char line[2048];
    for (size_t i = 0; i < st.n && i < (size_t)top; i++) {
        rcgc_fmt_statistic(line, sizeof line, st.v[i].key, (double)st.v[i].size,
                           (long long)st.v[i].count);
        fprintf(out, "%s\n", line);
    }
    prof_stats_free(&st);

    struct prof_stack *sorted = prof_xmalloc(c->n_stacks * sizeof *sorted);
    size_t n = 0;
    for (size_t i = 0; i < c->n_stacks; i++)
        if (prof_bytes(&c->stacks[i], m) || prof_count(&c->stacks[i], m))
            sorted[n++] = c->stacks[i];
    qsort_r(sorted, n, sizeof *sorted, cmp_stack_desc, &m);
    int nstacks = top < 5 ? top : 5;
    fprintf(out, "\n[ Top %d stacks: %s ]\n", nstacks, prof_metric_name(m));
    rcgc_linecache *lc = rcgc_linecache_new();
    for (size_t i = 0; i < n && i < (size_t)nstacks; i++) {
        char key[32];
        snprintf(key, sizeof key, "#%zu", i + 1);
        rcgc_fmt_statistic(line, sizeof line, key, (double)prof_bytes(&sorted[i], m),
                           (long long)prof_count(&sorted[i], m));
        fprintf(out, "%s\n", line);
        /* oldest call first, as Traceback.format() prints */
        for (uint32_t k = sorted[i].nframes; k-- > 0;)
            print_frame(v, lc, sorted[i].frames[k], out);
    }
    rcgc_linecache_free(lc);
    free(sorted);
    prof_symtab_warnings(v->sym, stderr);
    return 0;
}

/* ---- memory_profiler's per-line view ------------------------------------------ */

struct fline {
    uint64_t bytes, count;
};

static int name_matches(const char *func, const char *want)
{
    return func && !strcmp(func, want);
}

/* Find the first line of the function: scanning up from `from` for a line
 * that names it followed by '(' (C definitions; good enough for C++ too). */
static long find_def_line(rcgc_linecache *lc, const char *file, const char *name, long from)
{
    size_t nl = strlen(name);
    for (long l = from; l > 0 && l > from - 2000; l--) {
        size_t len;
        const char *s = rcgc_linecache_getline(lc, file, l, &len);
        if (!s)
            continue;
        for (size_t i = 0; i + nl < len; i++)
            if (!memcmp(s + i, name, nl) && (i == 0 || !(s[i - 1] == '_' ||
                                                       (s[i - 1] >= 'a' && s[i - 1] <= 'z') ||
                                                       (s[i - 1] >= 'A' && s[i - 1] <= 'Z') ||
                                                       (s[i - 1] >= '0' && s[i - 1] <= '9')))) {
                size_t j = i + nl;
                while (j < len && (s[j] == ' ' || s[j] == '\t'))
                    j++;
                if (j < len && s[j] == '(')
                    return l;
            }
    }
    return from;
}

/* The raw line (not stripped) for display, read directly from the file. */
static char **read_lines(const char *file, long *nlines)
{
    FILE *f = fopen(file, "r");
    *nlines = 0;
    if (!f)
        return NULL;
    char **v = NULL;
    long n = 0, cap = 0;
    char *buf = NULL;
    size_t bcap = 0;
    ssize_t len;
    while ((len = getline(&buf, &bcap, f)) >= 0) {
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            buf[--len] = 0;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            v = prof_xrealloc(v, (size_t)cap * sizeof *v);
        }
        v[n++] = prof_xstrdup(buf);
    }
    free(buf);
    fclose(f);
    *nlines = n;
    return v;
}

int prof_report_function(struct prof_view *v, FILE *out)
{
    const char *name = v->o->function;
    enum prof_metric m = v->o->metric;
    const char *file = NULL;
    long lo = 0, hi = 0;
    /* pass 1: where the function is */
    for (size_t i = 0; i < v->c->n_stacks; i++) {
        const struct prof_stack *s = &v->c->stacks[i];
        for (uint32_t k = 0; k < s->nframes; k++) {
            const struct prof_frame *f = prof_symbolize(v->sym, s->frames[k]);
            if (!name_matches(f->func, name) || !f->file)
                continue;
            if (!file)
                file = f->file;
            if (!strcmp(file, f->file)) {
                if (!lo || f->line < lo)
                    lo = f->line;
                if (f->line > hi)
                    hi = f->line;
            }
            break;
        }
    }
    if (!file) {
        fprintf(stderr, "rcgc-prof: no allocation was made under a function named %s "
                        "(with line information)\n", name);
        return 1;
    }
    long nlines;
    char **lines = read_lines(file, &nlines);
    rcgc_linecache *lc = rcgc_linecache_new();
    long first = find_def_line(lc, file, name, lo);
    rcgc_linecache_free(lc);
    long last = hi;
    if (lines) {
        /* extend to the closing brace in column 0, as C functions end */
        for (long l = hi; l <= nlines && l < hi + 2000; l++)
            if (lines[l - 1][0] == '}') {
                last = l;
                break;
            }
    }
    struct fline *fl = calloc((size_t)(last - first + 1), sizeof *fl);
    if (!fl)
        return 1;
    /* pass 2: per line, what the function's innermost frame there allocated */
    uint64_t total = 0;
    for (size_t i = 0; i < v->c->n_stacks; i++) {
        const struct prof_stack *s = &v->c->stacks[i];
        for (uint32_t k = 0; k < s->nframes; k++) {
            const struct prof_frame *f = prof_symbolize(v->sym, s->frames[k]);
            if (!name_matches(f->func, name))
                continue;
            if (f->file && !strcmp(f->file, file) && f->line >= first && f->line <= last) {
                fl[f->line - first].bytes += prof_bytes(s, m);
                fl[f->line - first].count += prof_count(s, m);
                total += prof_bytes(s, m);
            }
            break;
        }
    }
    double unit = total >= 1048576 ? 1048576.0 : 1024.0;
    const char *uname = total >= 1048576 ? "MiB" : "KiB";
    fprintf(out, "Filename: %s\n\n", file);
    char hdr[160];
    snprintf(hdr, sizeof hdr, "%6s %12s %12s  %10s   %s", "Line #", "Mem usage", "Increment",
             "Occurrences", "Line Contents");
    fprintf(out, "%s\n", hdr);
    for (size_t i = 0; i < strlen(hdr); i++)
        fputc('=', out);
    fputc('\n', out);
    uint64_t running = 0;
    for (long l = first; l <= last; l++) {
        const char *text = lines && l <= nlines ? lines[l - 1] : "";
        struct fline *e = &fl[l - first];
        if (e->count) {
            running += e->bytes;
            char mu[32], inc[32];
            snprintf(mu, sizeof mu, "%.1f %s", (double)running / unit, uname);
            snprintf(inc, sizeof inc, "%.1f %s", (double)e->bytes / unit, uname);
            fprintf(out, "%6ld %12s %12s  %10llu   %s\n", l, mu, inc,
                    (unsigned long long)e->count, text);
        } else {
            fprintf(out, "%6ld %12s %12s  %10s   %s\n", l, "", "", "", text);
        }
    }
    fprintf(out, "\n(Mem usage: heap %s by this function up to the line; Increment and "
                 "Occurrences: bytes and allocation calls of the line, callees included)\n",
            prof_metric_name(m));
    for (long i = 0; i < nlines; i++)
        free(lines[i]);
    free(lines);
    free(fl);
    return 0;
}

/* ---- diff: compare_to ------------------------------------------------------- */

struct dstat {
    const char *key;
    int64_t size, size_diff, count, count_diff;
};

static int64_t abs64(int64_t x)
{
    return x < 0 ? -x : x;
}

/* StatisticDiff._sort_key: (abs(size_diff), size, abs(count_diff), count,
 * traceback), descending. */
static int cmp_dstat(const void *a, const void *b)
{
    const struct dstat *x = a, *y = b;
    if (abs64(x->size_diff) != abs64(y->size_diff))
        return abs64(x->size_diff) > abs64(y->size_diff) ? -1 : 1;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    if (abs64(x->count_diff) != abs64(y->count_diff))
        return abs64(x->count_diff) > abs64(y->count_diff) ? -1 : 1;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return -strcmp(x->key, y->key);
}

int prof_diff(struct prof_view *old_v, struct prof_view *new_v, FILE *out)
{
    struct prof_stats a = { 0 }, b = { 0 };
    prof_stats_by_line(old_v, &a);
    prof_stats_by_line(new_v, &b);
    struct dstat *d = prof_xmalloc((a.n + b.n) * sizeof *d);
    size_t n = 0;
    for (size_t i = 0; i < b.n; i++) {
        struct prof_stat *o = prof_stats_find(&a, b.v[i].key);
        int64_t os = o ? (int64_t)o->size : 0, oc = o ? (int64_t)o->count : 0;
        d[n++] = (struct dstat){ b.v[i].key, (int64_t)b.v[i].size, (int64_t)b.v[i].size - os,
                                 (int64_t)b.v[i].count, (int64_t)b.v[i].count - oc };
    }
    for (size_t i = 0; i < a.n; i++)
        if (!prof_stats_find(&b, a.v[i].key))
            d[n++] = (struct dstat){ a.v[i].key, 0, -(int64_t)a.v[i].size, 0,
                                     -(int64_t)a.v[i].count };
    qsort(d, n, sizeof *d, cmp_dstat);
    int top = new_v->o->top > 0 ? new_v->o->top : 10;
    char a1[64], a2[64], line[2048];
    fprintf(out, "peak heap: %s -> %s; allocated: %s -> %s (%s)\n",
            prof_fmt_bytes(a1, sizeof a1, (double)old_v->c->peak_bytes),
            prof_fmt_bytes(a2, sizeof a2, (double)new_v->c->peak_bytes),
            prof_fmt_bytes(line, 64, (double)old_v->c->alloc_bytes),
            prof_fmt_bytes(line + 64, 64, (double)new_v->c->alloc_bytes),
            prof_metric_name(new_v->o->metric));
    fprintf(out, "[ Top %d differences ]\n", top);
    for (size_t i = 0; i < n && i < (size_t)top; i++) {
        rcgc_fmt_statistic_diff(line, sizeof line, d[i].key, (double)d[i].size,
                                (double)d[i].size_diff, (long long)d[i].count,
                                (long long)d[i].count_diff);
        fprintf(out, "%s\n", line);
    }
    free(d);
    prof_stats_free(&a);
    prof_stats_free(&b);
    return 0;
}
