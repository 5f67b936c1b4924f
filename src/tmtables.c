/*
 * tmtables.c - the snapshot's interned tables (tmsnap.h): a builder that
 * interns strings, frames and tracebacks by content, and the tables it
 * produces.  Used by take_snapshot and by the loader, so that both give
 * tables that keep invariants T1..T5.
 */
#include <stdlib.h>
#include <string.h>

#include "tmsnap.h"

uint64_t tm_hash_bytes(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ tm_mix64(w)) * 0x100000001b3ULL;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h ^= tm_mix64(w ^ ((uint64_t)n << 56));
    return tm_mix64(h);
}

/* An open-addressing set of ids (slot = id + 1, 0 empty), probed by a hash
 * each entity keeps; equality is the caller's.  Load factor <= 1/2. */
typedef struct idset {
    uint32_t *slots;
    size_t mask;
    size_t n;
} idset;

static int idset_grow(idset *s, const uint64_t *hashes)
{
    size_t cap = s->slots ? (s->mask + 1) * 2 : 64;
    uint32_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    if (s->slots) {
        for (size_t i = 0; i <= s->mask; i++) {
            uint32_t v = s->slots[i];
            if (!v)
                continue;
            size_t j = hashes[v - 1] & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = v;
        }
        free(s->slots);
    }
    s->slots = slots;
    s->mask = cap - 1;
    return 0;
}

typedef struct bframe {
    long filename;
    long function;
    int lineno;
} bframe;

typedef struct btb {
    size_t off;
    uint32_t n;
    long total;
    uint32_t canon;
} btb;

struct tm_builder {
    char *str;
    size_t str_len, str_cap;
    size_t *str_off;   /* [nstr] */
    size_t *str_n;
    uint64_t *str_hash;
    size_t nstr, capstr;
    idset strset;

    bframe *frames;
    uint64_t *frame_hash;
    size_t nframes, capframes;
    idset frameset;

    btb *tbs;
    uint64_t *tb_hash;      /* hash of (frames, total) */
    uint64_t *tb_fhash;     /* hash of frames only (T3) */
    size_t ntb, captb;
    idset tbset;
    idset canonset;         /* by frames only */
    uint32_t *ids;
    size_t nids, capids;
};

tm_builder *tmb_new(void)
{
    return calloc(1, sizeof(tm_builder));
}

void tmb_free(tm_builder *b)
{
    if (!b)
        return;
    free(b->str);
    free(b->str_off);
    free(b->str_n);
    free(b->str_hash);
    free(b->strset.slots);
    free(b->frames);
    free(b->frame_hash);
    free(b->frameset.slots);
    free(b->tbs);
    free(b->tb_hash);
    free(b->tb_fhash);
    free(b->tbset.slots);
    free(b->canonset.slots);
    free(b->ids);
    free(b);
}

/* Grow an array of `size`-byte items to hold at least need items. */
static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

long tmb_string(tm_builder *b, const char *s, size_t len)
{
    uint64_t h = tm_hash_bytes(s, len, 1);
    if (b->strset.n * 2 >= (b->strset.slots ? b->strset.mask + 1 : 0) &&
        idset_grow(&b->strset, b->str_hash) != 0)
        return -1;
    size_t j = h & b->strset.mask;
    for (uint32_t v; (v = b->strset.slots[j]) != 0; j = (j + 1) & b->strset.mask) {
        size_t id = v - 1;
        if (b->str_hash[id] == h && b->str_n[id] == len &&
            memcmp(b->str + b->str_off[id], s, len) == 0)
            return (long)id;
    }
    if (b->nstr >= UINT32_MAX - 1)
        return -1;
    size_t cap = b->capstr;
    if (grow((void **)&b->str_off, &cap, b->nstr + 1, sizeof(size_t)) != 0)
        return -1;
    cap = b->capstr;
    if (grow((void **)&b->str_n, &cap, b->nstr + 1, sizeof(size_t)) != 0)
        return -1;
    cap = b->capstr;
    if (grow((void **)&b->str_hash, &cap, b->nstr + 1, sizeof(uint64_t)) != 0)
        return -1;
    b->capstr = cap;
    if (grow((void **)&b->str, &b->str_cap, b->str_len + len + 1, 1) != 0)
        return -1;
    memcpy(b->str + b->str_len, s, len);
    b->str[b->str_len + len] = '\0';
    size_t id = b->nstr++;
    b->str_off[id] = b->str_len;
    b->str_n[id] = len;
    b->str_hash[id] = h;
    b->str_len += len + 1;
    b->strset.slots[j] = (uint32_t)id + 1;
    b->strset.n++;
    return (long)id;
}

long tmb_frame(tm_builder *b, long filename, int lineno, long function)
{
    uint64_t h = tm_mix64(((uint64_t)filename << 32) ^ (uint32_t)lineno ^ 0x5bd1e995u);
    if (b->frameset.n * 2 >= (b->frameset.slots ? b->frameset.mask + 1 : 0) &&
        idset_grow(&b->frameset, b->frame_hash) != 0)
        return -1;
    size_t j = h & b->frameset.mask;
    for (uint32_t v; (v = b->frameset.slots[j]) != 0; j = (j + 1) & b->frameset.mask) {
        bframe *f = &b->frames[v - 1];
        if (f->filename == filename && f->lineno == lineno) {
            if (f->function < 0)
                f->function = function;
            return (long)(v - 1);
        }
    }
    if (b->nframes >= UINT32_MAX - 1)
        return -1;
    size_t cap = b->capframes;
    if (grow((void **)&b->frames, &cap, b->nframes + 1, sizeof(bframe)) != 0)
        return -1;
    cap = b->capframes;
    if (grow((void **)&b->frame_hash, &cap, b->nframes + 1, sizeof(uint64_t)) != 0)
        return -1;
    b->capframes = cap;
    size_t id = b->nframes++;
    b->frames[id] = (bframe){ filename, function, lineno };
    b->frame_hash[id] = h;
    b->frameset.slots[j] = (uint32_t)id + 1;
    b->frameset.n++;
    return (long)id;
}

long tmb_traceback(tm_builder *b, const uint32_t *frames, size_t n, long total)
{
    if (n == 0 || n > UINT32_MAX / 4)
        return -1;
    uint64_t fh = tm_hash_bytes(frames, n * sizeof *frames, 7);
    uint64_t h = tm_mix64(fh ^ (uint64_t)total);
    size_t tbcap = b->tbset.slots ? b->tbset.mask + 1 : 0;
    if (b->tbset.n * 2 >= tbcap && idset_grow(&b->tbset, b->tb_hash) != 0)
        return -1;
    size_t ccap = b->canonset.slots ? b->canonset.mask + 1 : 0;
    if (b->canonset.n * 2 >= ccap && idset_grow(&b->canonset, b->tb_fhash) != 0)
        return -1;
    size_t j = h & b->tbset.mask;
    for (uint32_t v; (v = b->tbset.slots[j]) != 0; j = (j + 1) & b->tbset.mask) {
        btb *t = &b->tbs[v - 1];
        if (b->tb_hash[v - 1] == h && t->n == n && t->total == total &&
            memcmp(b->ids + t->off, frames, n * sizeof *frames) == 0)
            return (long)(v - 1);
    }
    /* Not there: find its canonical twin (same frames) or become one. */
    size_t k = fh & b->canonset.mask;
    uint32_t canon = UINT32_MAX;
    for (uint32_t v; (v = b->canonset.slots[k]) != 0; k = (k + 1) & b->canonset.mask) {
        btb *t = &b->tbs[v - 1];
        if (b->tb_fhash[v - 1] == fh && t->n == n &&
            memcmp(b->ids + t->off, frames, n * sizeof *frames) == 0) {
            canon = v - 1;
            break;
        }
    }
    if (b->ntb >= UINT32_MAX - 1)
        return -1;
    size_t cap = b->captb;
    if (grow((void **)&b->tbs, &cap, b->ntb + 1, sizeof(btb)) != 0)
        return -1;
    cap = b->captb;
    if (grow((void **)&b->tb_hash, &cap, b->ntb + 1, sizeof(uint64_t)) != 0)
        return -1;
    cap = b->captb;
    if (grow((void **)&b->tb_fhash, &cap, b->ntb + 1, sizeof(uint64_t)) != 0)
        return -1;
    b->captb = cap;
    if (grow((void **)&b->ids, &b->capids, b->nids + n, sizeof(uint32_t)) != 0)
        return -1;
    size_t id = b->ntb++;
    memcpy(b->ids + b->nids, frames, n * sizeof *frames);
    b->tbs[id] = (btb){ b->nids, (uint32_t)n, total, canon == UINT32_MAX ? (uint32_t)id : canon };
    b->nids += n;
    b->tb_hash[id] = h;
    b->tb_fhash[id] = fh;
    b->tbset.slots[j] = (uint32_t)id + 1;
    b->tbset.n++;
    if (canon == UINT32_MAX) {
        b->canonset.slots[k] = (uint32_t)id + 1;
        b->canonset.n++;
    }
    return (long)id;
}

size_t tmb_ntracebacks(const tm_builder *b)
{
    return b->ntb;
}

static int cmp_name_ids(const void *a, const void *b, void *names)
{
    const char **n = names;
    return strcmp(n[*(const uint32_t *)a], n[*(const uint32_t *)b]);
}

int tm_frame_cmp(const tm_sframe *a, const tm_sframe *b)
{
    int c = a->filename == b->filename ? 0 : strcmp(a->filename, b->filename);
    if (c)
        return c;
    return (a->lineno > b->lineno) - (a->lineno < b->lineno);
}

void tm_tables_release(tm_tables *t)
{
    if (!t || --t->refcnt > 0)
        return;
    free(t->strings);
    free(t->filenames);
    free(t->fname_rank);
    free(t->frames);
    free(t->tbs);
    free(t->frame_ids);
    free(t);
}

tm_tables *tmb_finish(tm_builder *b)
{
    tm_tables *t = calloc(1, sizeof *t);
    uint32_t *fname_of_str = NULL, *order = NULL;
    if (!t)
        goto fail;
    t->refcnt = 1;
    t->strings = b->str ? b->str : malloc(1);
    b->str = NULL;
    t->strings_len = b->str_len;
    /* Filenames: the strings some frame uses as its filename. */
    fname_of_str = malloc((b->nstr + 1) * sizeof *fname_of_str);
    t->frames = malloc((b->nframes + 1) * sizeof *t->frames);
    t->tbs = malloc((b->ntb + 1) * sizeof *t->tbs);
    t->filenames = malloc((b->nstr + 1) * sizeof *t->filenames);
    if (!t->strings || !fname_of_str || !t->frames || !t->tbs || !t->filenames)
        goto fail;
    for (size_t i = 0; i < b->nstr; i++)
        fname_of_str[i] = UINT32_MAX;
    for (size_t i = 0; i < b->nframes; i++) {
        long s = b->frames[i].filename;
        if (fname_of_str[s] == UINT32_MAX) {
            fname_of_str[s] = (uint32_t)t->nfilenames;
            t->filenames[t->nfilenames++] = t->strings + b->str_off[s];
        }
        tm_sframe *f = &t->frames[i];
        f->filename = t->strings + b->str_off[s];
        f->function = b->frames[i].function >= 0 ? t->strings + b->str_off[b->frames[i].function]
                                                  : NULL;
        f->lineno = b->frames[i].lineno;
        f->fname = fname_of_str[s];
    }
    t->nframes = b->nframes;
    /* T4: rank filenames by strcmp. */
    t->fname_rank = malloc((t->nfilenames + 1) * sizeof *t->fname_rank);
    order = malloc((t->nfilenames + 1) * sizeof *order);
    if (!t->fname_rank || !order)
        goto fail;
    for (size_t i = 0; i < t->nfilenames; i++)
        order[i] = (uint32_t)i;
    qsort_r(order, t->nfilenames, sizeof *order, cmp_name_ids, (void *)t->filenames);
    for (size_t i = 0; i < t->nfilenames; i++)
        t->fname_rank[order[i]] = (uint32_t)i;
    t->frame_ids = b->ids ? b->ids : malloc(sizeof(uint32_t));
    b->ids = NULL;
    if (!t->frame_ids)
        goto fail;
    t->nframe_ids = b->nids;
    for (size_t i = 0; i < b->ntb; i++) {
        rcgc_traceback *tb = &t->tbs[i];
        tb->ftab = t->frames;
        tb->frames = t->frame_ids + b->tbs[i].off;
        tb->nframe = b->tbs[i].n;
        tb->total_nframe = b->tbs[i].total < 0 ? -1
                           : b->tbs[i].total > INT32_MAX ? INT32_MAX : (int32_t)b->tbs[i].total;
        tb->canon = b->tbs[i].canon;
        tb->owned = 0;
    }
    t->ntb = b->ntb;
    free(order);
    free(fname_of_str);
    tmb_free(b);
    return t;
fail:
    free(order);
    free(fname_of_str);
    if (t) {
        t->refcnt = 1;
        tm_tables_release(t);
    }
    tmb_free(b);
    return NULL;
}

rcgc_snapshot *tm_snapshot_new(tm_tables *t, int limit, tm_strace *traces, size_t n)
{
    rcgc_snapshot *s = malloc(sizeof *s);
    if (!s) {
        free(traces);
        return NULL;
    }
    t->refcnt++;
    s->t = t;
    s->traceback_limit = limit;
    s->traces = traces;
    s->ntraces = n;
    return s;
}
