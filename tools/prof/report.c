/*
 * report.c - helpers every report uses: metrics, attribution of a stack to a
 * line, and string-keyed statistics sorted the way tracemalloc sorts them.
 */
#include "report.h"

#include <stdlib.h>
#include <string.h>

#include "tmformat.h"

void *prof_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "rcgc-prof: out of memory\n");
        exit(1);
    }
    return p;
}

void *prof_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "rcgc-prof: out of memory\n");
        exit(1);
    }
    return q;
}

char *prof_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = prof_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

const char *prof_metric_name(enum prof_metric m)
{
    switch (m) {
    case PROF_PEAK:
        return "live at peak";
    case PROF_LEAKED:
        return "leaked";
    case PROF_TEMPORARY:
        return "temporary";
    default:
        return "allocated in total";
    }
}

uint64_t prof_bytes(const struct prof_stack *s, enum prof_metric m)
{
    switch (m) {
    case PROF_PEAK:
        return s->st[RCGC_PROF_ST_PEAK_BYTES];
    case PROF_LEAKED:
        return s->st[RCGC_PROF_ST_LIVE_BYTES];
    case PROF_TEMPORARY:
        return s->st[RCGC_PROF_ST_TEMP_BYTES];
    default:
        return s->st[RCGC_PROF_ST_ALLOC_BYTES];
    }
}

uint64_t prof_count(const struct prof_stack *s, enum prof_metric m)
{
    switch (m) {
    case PROF_PEAK:
        return s->st[RCGC_PROF_ST_PEAK_COUNT];
    case PROF_LEAKED:
        return s->st[RCGC_PROF_ST_LIVE_COUNT];
    case PROF_TEMPORARY:
        return s->st[RCGC_PROF_ST_TEMP_COUNT];
    default:
        return s->st[RCGC_PROF_ST_ALLOC_COUNT];
    }
}

/* The C and C++ runtimes: a line inside them (stdio's buffer, operator new)
 * says less than the line of the program that called them. */
static int runtime_module(const char *path)
{
    const char *b = path ? strrchr(path, '/') : NULL;
    b = b ? b + 1 : path;
    return b && (!strncmp(b, "libc.so", 7) || !strncmp(b, "libstdc++.so", 12) ||
                 !strncmp(b, "ld-linux", 8) || !strncmp(b, "libm.so", 7));
}

const struct prof_frame *prof_site(struct prof_view *v, const struct prof_stack *s)
{
    if (!s->nframes)
        return NULL;
    const struct prof_frame *any = NULL;
    for (uint32_t i = 0; i < s->nframes; i++) {
        const struct prof_frame *f = prof_symbolize(v->sym, s->frames[i]);
        if (f->file && !runtime_module(f->module))
            return f;
        if (f->file && !any)
            any = f;
    }
    return any ? any : prof_symbolize(v->sym, s->frames[0]);
}

const char *prof_site_key(struct prof_view *v, const struct prof_stack *s, char *buf, size_t cap)
{
    const struct prof_frame *f = prof_site(v, s);
    if (!f)
        snprintf(buf, cap, "<unknown>");
    else if (f->file)
        rcgc_fmt_frame(buf, cap, f->file, f->line);
    else
        snprintf(buf, cap, "%s", prof_frame_name(v->sym, f));
    return buf;
}

static size_t str_hash(const char *s)
{
    size_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

struct prof_stat *prof_stats_find(struct prof_stats *st, const char *key)
{
    if (!st->index_cap)
        return NULL;
    size_t j = str_hash(key) & (st->index_cap - 1);
    while (st->index[j] != SIZE_MAX) {
        if (!strcmp(st->v[st->index[j]].key, key))
            return &st->v[st->index[j]];
        j = (j + 1) & (st->index_cap - 1);
    }
    return NULL;
}

static void reindex(struct prof_stats *st, size_t cap)
{
    free(st->index);
    st->index = prof_xmalloc(cap * sizeof *st->index);
    st->index_cap = cap;
    for (size_t i = 0; i < cap; i++)
        st->index[i] = SIZE_MAX;
    for (size_t i = 0; i < st->n; i++) {
        size_t j = str_hash(st->v[i].key) & (cap - 1);
        while (st->index[j] != SIZE_MAX)
            j = (j + 1) & (cap - 1);
        st->index[j] = i;
    }
}

void prof_stats_add(struct prof_stats *st, const char *key, uint64_t size, uint64_t count)
{
    struct prof_stat *e = prof_stats_find(st, key);
    if (e) {
        e->size += size;
        e->count += count;
        return;
    }
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 64;
        st->v = prof_xrealloc(st->v, st->cap * sizeof *st->v);
    }
    st->v[st->n].key = prof_xstrdup(key);
    st->v[st->n].size = size;
    st->v[st->n].count = count;
    st->n++;
    if (st->n * 2 > st->index_cap)
        reindex(st, st->index_cap ? st->index_cap * 2 : 128);
    else {
        size_t j = str_hash(key) & (st->index_cap - 1);
        while (st->index[j] != SIZE_MAX)
            j = (j + 1) & (st->index_cap - 1);
        st->index[j] = st->n - 1;
    }
}

static int cmp_stat(const void *a, const void *b)
{
    const struct prof_stat *x = a, *y = b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return -strcmp(x->key, y->key);
}

void prof_stats_sort(struct prof_stats *st)
{
    if (st->n)
        qsort(st->v, st->n, sizeof *st->v, cmp_stat);
    if (st->index_cap)
        reindex(st, st->index_cap);
}

void prof_stats_free(struct prof_stats *st)
{
    for (size_t i = 0; i < st->n; i++)
        free(st->v[i].key);
    free(st->v);
    free(st->index);
    memset(st, 0, sizeof *st);
}

void prof_stats_by_line(struct prof_view *v, struct prof_stats *out)
{
    char key[1024];
    for (size_t i = 0; i < v->c->n_stacks; i++) {
        const struct prof_stack *s = &v->c->stacks[i];
        uint64_t b = prof_bytes(s, v->o->metric), n = prof_count(s, v->o->metric);
        if (!b && !n)
            continue;
        prof_stats_add(out, prof_site_key(v, s, key, sizeof key), b, n);
    }
    prof_stats_sort(out);
}

const char *prof_fmt_bytes(char *buf, size_t cap, double bytes)
{
    rcgc_fmt_size(buf, cap, bytes, 0);
    return buf;
}

const char *prof_state_name(const struct prof_capture *c, char *buf, size_t cap)
{
    switch (c->state) {
    case RCGC_PROF_EXITED:
        if (c->code >= 0)
            snprintf(buf, cap, "exited with status %lld", (long long)c->code);
        else
            snprintf(buf, cap, "exited");
        break;
    case RCGC_PROF_UEXIT:
        snprintf(buf, cap, "left through _exit(%lld)", (long long)c->code);
        break;
    case RCGC_PROF_SIGNAL:
        snprintf(buf, cap, "killed by signal %lld (%s)", (long long)c->code,
                 strsignal((int)c->code));
        break;
    default:
        snprintf(buf, cap, "still running at its last flush (killed, or not finished)");
        break;
    }
    return buf;
}

void prof_json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else if (*p == '<')
            fputs("\\u003c", out); /* safe inside <script> */
        else
            fputc(*p, out);
    }
    fputc('"', out);
}
