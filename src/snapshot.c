/*
 * snapshot.c - Snapshot.statistics, compare_to, filter_traces, the trace
 * sequence, and the Traceback / Statistic values (rcgc_tracemalloc.h).
 *
 * Grouping never hashes: a snapshot's frames and tracebacks are interned
 * (tmsnap.h, T1-T3), so a key is an id and the sums live in arrays indexed
 * by id.  statistics() over N traces with K keys is O(N + K log K).
 * Ordering uses filename ranks (T4) inside one snapshot, and string
 * comparison only when compare_to merges the keys of two snapshots.
 */
#include <stdlib.h>
#include <string.h>

#include "rcgc_tracemalloc.h"
#include "tmformat.h"
#include "tmsnap.h"

/* ------------------------------------------------------------ tracebacks */

size_t rcgc_traceback_len(const rcgc_traceback *tb)
{
    return tb ? tb->nframe : 0;
}

/* Python index i (0 = oldest) to our storage (0 = most recent). */
static inline const tm_sframe *tb_at(const rcgc_traceback *tb, size_t i)
{
    return &tb->ftab[tb->frames[tb->nframe - 1 - i]];
}

rcgc_frame rcgc_traceback_frame(const rcgc_traceback *tb, size_t i)
{
    if (!tb || i >= tb->nframe)
        return (rcgc_frame){ "<unknown>", 0 };
    const tm_sframe *f = tb_at(tb, i);
    return (rcgc_frame){ f->filename, f->lineno };
}

long rcgc_traceback_total_nframe(const rcgc_traceback *tb)
{
    return tb ? tb->total_nframe : -1;
}

const char *rcgc_traceback_function(const rcgc_traceback *tb, size_t i)
{
    if (!tb || i >= tb->nframe)
        return NULL;
    return tb_at(tb, i)->function;
}

int rcgc_traceback_compare(const rcgc_traceback *a, const rcgc_traceback *b)
{
    size_t n = a->nframe < b->nframe ? a->nframe : b->nframe;
    for (size_t i = 0; i < n; i++) {
        int c = tm_frame_cmp(tb_at(a, i), tb_at(b, i));
        if (c)
            return c;
    }
    return (a->nframe > b->nframe) - (a->nframe < b->nframe);
}

size_t rcgc_traceback_str(const rcgc_traceback *tb, char *buf, size_t cap)
{
    rcgc_frame f = rcgc_traceback_frame(tb, 0);
    return rcgc_fmt_frame(buf, cap, f.filename, f.lineno);
}

size_t rcgc_traceback_format(const rcgc_traceback *tb, int limit, int most_recent_first,
                             FILE *out)
{
    size_t n = tb->nframe, lo = 0, hi = n;   /* Python's slice [lo, hi) */
    if (limit != RCGC_TRACEBACK_NO_LIMIT) {
        if (limit > 0) {
            lo = (size_t)limit >= n ? 0 : n - (size_t)limit;
        } else if (limit == 0) {
            hi = 0;                          /* self[:0] is empty */
        } else {
            size_t drop = (size_t)(-(long)limit);
            hi = drop >= n ? 0 : n - drop;
        }
    }
    rcgc_linecache *lc = rcgc_linecache_new();
    size_t lines = 0;
    for (size_t k = lo; k < hi; k++) {
        size_t i = most_recent_first ? hi - 1 - (k - lo) : k;
        const tm_sframe *f = tb_at(tb, i);
        lines += (size_t)rcgc_fmt_print_frame(out, lc, f->filename, f->lineno);
    }
    rcgc_linecache_free(lc);
    return lines;
}

void rcgc_traceback_free(rcgc_traceback *tb)
{
    if (tb && tb->owned)
        free(tb);
}

/* ------------------------------------------------------------- snapshots */

void rcgc_snapshot_free(rcgc_snapshot *s)
{
    if (!s)
        return;
    tm_tables_release(s->t);
    free(s->traces);
    free(s);
}

int rcgc_snapshot_traceback_limit(const rcgc_snapshot *s)
{
    return s->traceback_limit;
}

size_t rcgc_snapshot_len(const rcgc_snapshot *s)
{
    return s->ntraces;
}

rcgc_trace rcgc_snapshot_trace(const rcgc_snapshot *s, size_t i)
{
    if (i >= s->ntraces)
        return (rcgc_trace){ 0, 0, NULL };
    const tm_strace *t = &s->traces[i];
    return (rcgc_trace){ t->domain, (size_t)t->size, &s->t->tbs[t->tb] };
}

size_t rcgc_snapshot_total_size(const rcgc_snapshot *s)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < s->ntraces; i++)
        sum += s->traces[i].size;
    return (size_t)sum;
}

size_t rcgc_trace_str(const rcgc_trace *t, char *buf, size_t cap)
{
    char key[1024];
    rcgc_traceback_str(t->traceback, key, sizeof key);
    return rcgc_fmt_trace(buf, cap, key, (double)t->size);
}

/* -------------------------------------------------------------- grouping */

typedef struct grp {
    uint32_t key;      /* frame id, filename id or canonical tb id */
    uint64_t size;
    uint64_t count;
} grp;

/* Compare two keys of one table set, in Python's order (ranks, T4). */
static int key_cmp(const tm_tables *t, rcgc_stat_key key, uint32_t a, uint32_t b)
{
    if (a == b)
        return 0;
    if (key == RCGC_KEY_FILENAME)
        return (t->fname_rank[a] > t->fname_rank[b]) - (t->fname_rank[a] < t->fname_rank[b]);
    if (key == RCGC_KEY_LINENO) {
        const tm_sframe *x = &t->frames[a], *y = &t->frames[b];
        uint32_t rx = t->fname_rank[x->fname], ry = t->fname_rank[y->fname];
        if (rx != ry)
            return rx < ry ? -1 : 1;
        return (x->lineno > y->lineno) - (x->lineno < y->lineno);
    }
    const rcgc_traceback *p = &t->tbs[a], *q = &t->tbs[b];
    size_t n = p->nframe < q->nframe ? p->nframe : q->nframe;
    for (size_t i = 0; i < n; i++) {
        int c = key_cmp(t, RCGC_KEY_LINENO, p->frames[p->nframe - 1 - i],
                        q->frames[q->nframe - 1 - i]);
        if (c)
            return c;
    }
    return (p->nframe > q->nframe) - (p->nframe < q->nframe);
}

typedef struct sort_ctx {
    const tm_tables *t;
    rcgc_stat_key key;
} sort_ctx;

static int grp_key_order(const void *a, const void *b, void *arg)
{
    const sort_ctx *c = arg;
    return key_cmp(c->t, c->key, ((const grp *)a)->key, ((const grp *)b)->key);
}

/* Group a snapshot's traces by key: *out gets one entry per key with at
 * least one trace, sorted by key (Python's order).  RCGC_OK / ENOMEM. */
static int group(const rcgc_snapshot *s, rcgc_stat_key key, int cumulative, grp **out,
                 size_t *nout)
{
    const tm_tables *t = s->t;
    size_t ntb = t->ntb;
    size_t nkeys = key == RCGC_KEY_LINENO ? t->nframes
                   : key == RCGC_KEY_FILENAME ? t->nfilenames : ntb;
    uint64_t *tsize = calloc(ntb + 1, sizeof *tsize);
    uint64_t *tcount = calloc(ntb + 1, sizeof *tcount);
    uint64_t *ksize = calloc(nkeys + 1, sizeof *ksize);
    uint64_t *kcount = calloc(nkeys + 1, sizeof *kcount);
    grp *g = NULL;
    int rc = RCGC_ENOMEM;
    if (!tsize || !tcount || !ksize || !kcount)
        goto done;
    for (size_t i = 0; i < s->ntraces; i++) {
        tsize[s->traces[i].tb] += s->traces[i].size;
        tcount[s->traces[i].tb]++;
    }
    size_t nused = 0;
    for (size_t i = 0; i < ntb; i++) {
        if (!tcount[i])
            continue;
        const rcgc_traceback *tb = &t->tbs[i];
        size_t nf = cumulative ? tb->nframe : 1;
        for (size_t k = 0; k < nf; k++) {
            uint32_t fid = tb->frames[k];
            uint32_t kid = key == RCGC_KEY_LINENO ? fid
                           : key == RCGC_KEY_FILENAME ? t->frames[fid].fname : tb->canon;
            if (!kcount[kid])
                nused++;
            ksize[kid] += tsize[i];
            kcount[kid] += tcount[i];
        }
    }
    g = malloc((nused + 1) * sizeof *g);
    if (!g)
        goto done;
    size_t n = 0;
    for (size_t k = 0; k < nkeys; k++)
        if (kcount[k])
            g[n++] = (grp){ (uint32_t)k, ksize[k], kcount[k] };
    sort_ctx c = { t, key };
    qsort_r(g, n, sizeof *g, grp_key_order, &c);
    *out = g;
    *nout = n;
    g = NULL;
    rc = RCGC_OK;
done:
    free(g);
    free(tsize);
    free(tcount);
    free(ksize);
    free(kcount);
    return rc;
}

/* ----------------------------------------------------------- stat lists */

struct rcgc_stats {
    tm_tables *t;            /* tables of the new snapshot */
    tm_tables *t_old;        /* and of the old one (diffs) */
    int is_diff;
    size_t n;
    rcgc_statistic *items;
    rcgc_statistic_diff *ditems;
    rcgc_traceback *tbs;     /* [n] the key tracebacks */
    tm_sframe *kframes;      /* [n] (filename, 0) frames of FILENAME keys */
    uint32_t *kids;          /* [n] frame ids of 1-frame key tracebacks */
};

void rcgc_stats_free(rcgc_stats *st)
{
    if (!st)
        return;
    tm_tables_release(st->t);
    tm_tables_release(st->t_old);
    free(st->items);
    free(st->ditems);
    free(st->tbs);
    free(st->kframes);
    free(st->kids);
    free(st);
}

size_t rcgc_stats_len(const rcgc_stats *st)
{
    return st ? st->n : 0;
}

const rcgc_statistic *rcgc_stats_get(const rcgc_stats *st, size_t i)
{
    return st && !st->is_diff && i < st->n ? &st->items[i] : NULL;
}

const rcgc_statistic_diff *rcgc_stats_get_diff(const rcgc_stats *st, size_t i)
{
    return st && st->is_diff && i < st->n ? &st->ditems[i] : NULL;
}

/* Make the key traceback of list item i for key `k` of tables t. */
static void make_key_tb(rcgc_stats *st, size_t i, const tm_tables *t, rcgc_stat_key key,
                        uint32_t k)
{
    rcgc_traceback *tb = &st->tbs[i];
    tb->total_nframe = -1;   /* grouped tracebacks have total_nframe None */
    tb->owned = 0;
    tb->canon = 0;
    if (key == RCGC_KEY_TRACEBACK) {
        const rcgc_traceback *src = &t->tbs[k];
        tb->ftab = src->ftab;
        tb->frames = src->frames;
        tb->nframe = src->nframe;
        return;
    }
    tb->nframe = 1;
    if (key == RCGC_KEY_LINENO) {
        st->kids[i] = k;
        tb->ftab = t->frames;
    } else {
        st->kframes[i] = (tm_sframe){ t->filenames[k], NULL, 0, k };
        st->kids[i] = (uint32_t)i;
        tb->ftab = st->kframes;
    }
    tb->frames = &st->kids[i];
}

static rcgc_stats *stats_new(size_t n, int is_diff)
{
    rcgc_stats *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->is_diff = is_diff;
    st->n = n;
    st->tbs = calloc(n + 1, sizeof *st->tbs);
    st->kframes = calloc(n + 1, sizeof *st->kframes);
    st->kids = calloc(n + 1, sizeof *st->kids);
    if (is_diff)
        st->ditems = calloc(n + 1, sizeof *st->ditems);
    else
        st->items = calloc(n + 1, sizeof *st->items);
    if (!st->tbs || !st->kframes || !st->kids || (is_diff ? !st->ditems : !st->items)) {
        rcgc_stats_free(st);
        return NULL;
    }
    return st;
}

/* Statistic order: size, count, traceback, all descending.  Groups come
 * sorted by key, so the index stands for the traceback. */
typedef struct sidx {
    uint64_t size;
    uint64_t count;
    size_t idx;
} sidx;

static int cmp_stat_desc(const void *pa, const void *pb)
{
    const sidx *a = pa, *b = pb;
    if (a->size != b->size)
        return a->size < b->size ? 1 : -1;
    if (a->count != b->count)
        return a->count < b->count ? 1 : -1;
    return (a->idx < b->idx) - (a->idx > b->idx);
}

static int key_ok(rcgc_stat_key key, int cumulative)
{
    if ((unsigned)key > RCGC_KEY_TRACEBACK)
        return 0;
    return !(cumulative && key == RCGC_KEY_TRACEBACK);
}

int rcgc_snapshot_statistics(const rcgc_snapshot *s, rcgc_stat_key key, int cumulative,
                             rcgc_stats **out)
{
    *out = NULL;
    if (!s || !key_ok(key, cumulative))
        return RCGC_EINVAL;
    grp *g;
    size_t n;
    if (group(s, key, cumulative, &g, &n) != RCGC_OK)
        return RCGC_ENOMEM;
    sidx *order = malloc((n + 1) * sizeof *order);
    rcgc_stats *st = stats_new(n, 0);
    if (!order || !st) {
        free(order);
        free(g);
        rcgc_stats_free(st);
        return RCGC_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (sidx){ g[i].size, g[i].count, i };
    qsort(order, n, sizeof *order, cmp_stat_desc);
    st->t = s->t;
    s->t->refcnt++;
    for (size_t i = 0; i < n; i++) {
        const grp *x = &g[order[i].idx];
        make_key_tb(st, i, s->t, key, x->key);
        st->items[i] = (rcgc_statistic){ &st->tbs[i], (size_t)x->size, (size_t)x->count };
    }
    free(order);
    free(g);
    *out = st;
    return RCGC_OK;
}

/* Compare key a of tables ta with key b of tables tb by content. */
static int key_cmp_across(const tm_tables *ta, uint32_t a, const tm_tables *tb, uint32_t b,
                          rcgc_stat_key key)
{
    if (key == RCGC_KEY_FILENAME)
        return strcmp(ta->filenames[a], tb->filenames[b]);
    if (key == RCGC_KEY_LINENO)
        return tm_frame_cmp(&ta->frames[a], &tb->frames[b]);
    return rcgc_traceback_compare(&ta->tbs[a], &tb->tbs[b]);
}

typedef struct dsort {
    uint64_t abs_sd;
    uint64_t size;
    uint64_t abs_cd;
    uint64_t count;
    size_t idx;          /* position in key order: the traceback's rank */
    size_t newi, oldi;   /* group index or SIZE_MAX */
} dsort;

static int cmp_diff_desc(const void *pa, const void *pb)
{
    const dsort *a = pa, *b = pb;
    if (a->abs_sd != b->abs_sd)
        return a->abs_sd < b->abs_sd ? 1 : -1;
    if (a->size != b->size)
        return a->size < b->size ? 1 : -1;
    if (a->abs_cd != b->abs_cd)
        return a->abs_cd < b->abs_cd ? 1 : -1;
    if (a->count != b->count)
        return a->count < b->count ? 1 : -1;
    return (a->idx < b->idx) - (a->idx > b->idx);
}

static uint64_t uabs_diff(uint64_t x, uint64_t y)
{
    return x > y ? x - y : y - x;
}

int rcgc_snapshot_compare_to(const rcgc_snapshot *new_snapshot,
                             const rcgc_snapshot *old_snapshot, rcgc_stat_key key,
                             int cumulative, rcgc_stats **out)
{
    *out = NULL;
    if (!new_snapshot || !old_snapshot || !key_ok(key, cumulative))
        return RCGC_EINVAL;
    grp *gn = NULL, *go = NULL;
    size_t nn = 0, no = 0;
    dsort *d = NULL;
    rcgc_stats *st = NULL;
    if (group(new_snapshot, key, cumulative, &gn, &nn) != RCGC_OK ||
        group(old_snapshot, key, cumulative, &go, &no) != RCGC_OK)
        goto oom;
    d = malloc((nn + no + 1) * sizeof *d);
    if (!d)
        goto oom;
    /* Merge the two key-sorted lists. */
    const tm_tables *tn = new_snapshot->t, *to = old_snapshot->t;
    size_t i = 0, j = 0, n = 0;
    while (i < nn || j < no) {
        int c = i == nn ? 1 : j == no ? -1 : key_cmp_across(tn, gn[i].key, to, go[j].key, key);
        dsort x = { 0, 0, 0, 0, n, SIZE_MAX, SIZE_MAX };
        uint64_t osz = 0, ocnt = 0;
        if (c <= 0) {
            x.newi = i;
            x.size = gn[i].size;
            x.count = gn[i].count;
            i++;
        }
        if (c >= 0) {
            x.oldi = j;
            osz = go[j].size;
            ocnt = go[j].count;
            j++;
        }
        x.abs_sd = uabs_diff(x.size, osz);
        x.abs_cd = uabs_diff(x.count, ocnt);
        d[n++] = x;
    }
    qsort(d, n, sizeof *d, cmp_diff_desc);
    st = stats_new(n, 1);
    if (!st)
        goto oom;
    st->t = new_snapshot->t;
    st->t->refcnt++;
    st->t_old = old_snapshot->t;
    st->t_old->refcnt++;
    for (size_t k = 0; k < n; k++) {
        const dsort *x = &d[k];
        uint64_t osz = x->oldi != SIZE_MAX ? go[x->oldi].size : 0;
        uint64_t ocnt = x->oldi != SIZE_MAX ? go[x->oldi].count : 0;
        if (x->newi != SIZE_MAX)
            make_key_tb(st, k, tn, key, gn[x->newi].key);
        else
            make_key_tb(st, k, to, key, go[x->oldi].key);
        st->ditems[k] = (rcgc_statistic_diff){
            &st->tbs[k], (size_t)x->size, (long long)x->size - (long long)osz,
            (size_t)x->count, (long long)x->count - (long long)ocnt };
    }
    free(d);
    free(gn);
    free(go);
    *out = st;
    return RCGC_OK;
oom:
    free(d);
    free(gn);
    free(go);
    rcgc_stats_free(st);
    return RCGC_ENOMEM;
}

size_t rcgc_statistic_str(const rcgc_statistic *s, char *buf, size_t cap)
{
    char key[1024];
    rcgc_traceback_str(s->traceback, key, sizeof key);
    return rcgc_fmt_statistic(buf, cap, key, (double)s->size, (long long)s->count);
}

size_t rcgc_statistic_diff_str(const rcgc_statistic_diff *d, char *buf, size_t cap)
{
    char key[1024];
    rcgc_traceback_str(d->traceback, key, sizeof key);
    return rcgc_fmt_statistic_diff(buf, cap, key, (double)d->size, (double)d->size_diff,
                                   (long long)d->count, d->count_diff);
}

void rcgc_stats_print(const rcgc_stats *st, size_t i, FILE *out)
{
    char buf[2048];
    if (!st || i >= st->n)
        return;
    if (st->is_diff)
        rcgc_statistic_diff_str(&st->ditems[i], buf, sizeof buf);
    else
        rcgc_statistic_str(&st->items[i], buf, sizeof buf);
    fprintf(out, "%s\n", buf);
}

/* ---------------------------------------------------------------- filters */

/* Length of the UTF-8 character starting at s (1 for stray bytes). */
static size_t u8len(const unsigned char *s)
{
    if (*s < 0xc0)
        return 1;
    size_t n = *s >= 0xf0 ? 4 : *s >= 0xe0 ? 3 : 2;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return i;
    return n;
}

static uint32_t u8dec(const unsigned char *s, size_t n)
{
    if (n == 1)
        return *s;
    uint32_t c = *s & (0x7fu >> n);
    for (size_t i = 1; i < n; i++)
        c = (c << 6) | (s[i] & 0x3fu);
    return c;
}

/* Match one character c against the set pat[lo, hi) of a '[...]' (Python's
 * fnmatch: '!' negates, '-' between two characters is a range, empty
 * ranges never match, everything else is literal). */
static int set_match(const unsigned char *pat, size_t lo, size_t hi, uint32_t c)
{
    int neg = 0;
    if (lo < hi && pat[lo] == '!') {
        neg = 1;
        lo++;
    }
    int hit = 0;
    size_t k = lo;
    while (k < hi) {
        size_t l1 = u8len(pat + k);
        uint32_t a = u8dec(pat + k, l1);
        if (k + l1 < hi && pat[k + l1] == '-' && k + l1 + 1 < hi) {
            size_t l2 = u8len(pat + k + l1 + 1);
            uint32_t b = u8dec(pat + k + l1 + 1, l2);
            if (a <= c && c <= b)
                hit = 1;
            k += l1 + 1 + l2;
        } else {
            if (a == c)
                hit = 1;
            k += l1;
        }
    }
    return hit ^ neg;
}

/* The end of the '[' set starting at pat[i], or 0 when the '[' is literal. */
static size_t set_end(const unsigned char *pat, size_t i, size_t n)
{
    size_t j = i + 1;
    if (j < n && pat[j] == '!')
        j++;
    if (j < n && pat[j] == ']')
        j++;
    while (j < n && pat[j] != ']')
        j++;
    return j < n ? j : 0;
}

/* fnmatch.fnmatchcase(name, pattern) for UTF-8 text on POSIX. */
static int py_fnmatch(const char *pattern, size_t pn, const char *name, size_t nn)
{
    const unsigned char *p = (const unsigned char *)pattern;
    const unsigned char *s = (const unsigned char *)name;
    size_t pi = 0, si = 0, star_p = SIZE_MAX, star_s = 0;
    while (si < nn) {
        if (pi < pn) {
            if (p[pi] == '*') {
                star_p = ++pi;
                star_s = si;
                continue;
            }
            size_t cl = u8len(s + si);
            if (p[pi] == '?') {
                pi++;
                si += cl;
                continue;
            }
            if (p[pi] == '[') {
                size_t e = set_end(p, pi, pn);
                if (e) {
                    if (set_match(p, pi + 1, e, u8dec(s + si, cl))) {
                        pi = e + 1;
                        si += cl;
                        continue;
                    }
                    goto backtrack;
                }
            }
            if (p[pi] == s[si]) {
                pi++;
                si++;
                continue;
            }
        }
    backtrack:
        if (star_p == SIZE_MAX)
            return 0;
        pi = star_p;
        star_s += u8len(s + star_s);
        si = star_s;
    }
    while (pi < pn && p[pi] == '*')
        pi++;
    return pi == pn;
}

/* tracemalloc's _normalize_filename: a ".pyc" name loses its "c". */
static size_t norm_len(const char *s)
{
    size_t n = strlen(s);
    if (n >= 4 && memcmp(s + n - 4, ".pyc", 4) == 0)
        n--;
    return n;
}

typedef struct fstate {
    const rcgc_filter *f;
    size_t plen;
    int8_t *tbmatch;    /* per traceback: -1 unknown, 0/1 _match_traceback */
} fstate;

static int frame_match(const fstate *fs, const tm_sframe *fr)
{
    if (!py_fnmatch(fs->f->filename_pattern, fs->plen, fr->filename, norm_len(fr->filename)))
        return 0;
    return fs->f->lineno < 0 || fr->lineno == fs->f->lineno;
}

/* Filter._match / DomainFilter._match for one trace. */
static int filter_match(fstate *fs, const tm_tables *t, const tm_strace *tr)
{
    const rcgc_filter *f = fs->f;
    if (!f->filename_pattern)
        return (tr->domain == f->domain) ^ !f->inclusive;
    int8_t *m = &fs->tbmatch[tr->tb];
    if (*m < 0) {
        const rcgc_traceback *tb = &t->tbs[tr->tb];
        int res;
        if (f->all_frames) {
            int any = 0;
            for (size_t i = 0; i < tb->nframe && !any; i++)
                any = frame_match(fs, &t->frames[tb->frames[i]]);
            res = any ? f->inclusive != 0 : !f->inclusive;
        } else {
            res = frame_match(fs, &t->frames[tb->frames[0]]) ^ !f->inclusive;
        }
        *m = (int8_t)res;
    }
    int res = *m;
    if (f->has_domain) {
        if (f->inclusive)
            return res && tr->domain == f->domain;
        return res || tr->domain != f->domain;
    }
    return res;
}

int rcgc_snapshot_filter_traces(const rcgc_snapshot *s, const rcgc_filter *filters, size_t n,
                                rcgc_snapshot **out)
{
    *out = NULL;
    if (!s || (n && !filters))
        return RCGC_EINVAL;
    for (size_t k = 0; k < n; k++)
        if (!filters[k].filename_pattern && !filters[k].has_domain)
            return RCGC_EINVAL;
    fstate *fs = calloc(n + 1, sizeof *fs);
    tm_strace *kept = malloc((s->ntraces + 1) * sizeof *kept);
    int rc = RCGC_ENOMEM;
    if (!fs || !kept)
        goto done;
    for (size_t k = 0; k < n; k++) {
        fs[k].f = &filters[k];
        if (filters[k].filename_pattern) {
            fs[k].plen = norm_len(filters[k].filename_pattern);
            fs[k].tbmatch = malloc(s->t->ntb + 1);
            if (!fs[k].tbmatch)
                goto done;
            memset(fs[k].tbmatch, -1, s->t->ntb + 1);
        }
    }
    int any_incl = 0;
    for (size_t k = 0; k < n; k++)
        any_incl |= filters[k].inclusive != 0;
    size_t m = 0;
    for (size_t i = 0; i < s->ntraces; i++) {
        const tm_strace *tr = &s->traces[i];
        int keep = 1;
        if (any_incl) {
            keep = 0;
            for (size_t k = 0; k < n && !keep; k++)
                if (filters[k].inclusive && filter_match(&fs[k], s->t, tr))
                    keep = 1;
        }
        for (size_t k = 0; k < n && keep; k++)
            if (!filters[k].inclusive && !filter_match(&fs[k], s->t, tr))
                keep = 0;
        if (keep)
            kept[m++] = *tr;
    }
    *out = tm_snapshot_new(s->t, s->traceback_limit, kept, m);
    kept = NULL;
    rc = *out ? RCGC_OK : RCGC_ENOMEM;
done:
    for (size_t k = 0; fs && k < n; k++)
        free(fs[k].tbmatch);
    free(fs);
    free(kept);
    return rc;
}
