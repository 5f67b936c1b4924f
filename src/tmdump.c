/*
 * tmdump.c - the snapshot file format: dump and a loader that survives any
 * input (docs/tracemalloc.md, "The dump format", is the specification).
 *
 *   header (24 bytes, little-endian)
 *     0  8  magic "RCGCSNAP"
 *     8  2  version (1)
 *    10  2  flags (0; any other value is refused)
 *    12  4  CRC-32 (ISO-HDLC, zlib's) of the body
 *    16  8  body length in bytes
 *   body (unsigned LEB128 varints; "s" marks zigzag-signed ones)
 *     traceback_limit
 *     nstrings,    nstrings x (length, bytes without NUL)
 *     nframes,     nframes x (filename string, s lineno, function string + 1 or 0)
 *     ntracebacks, ntracebacks x (total_nframe + 1 or 0, nframe >= 1, nframe x frame)
 *     nruns, ntraces,
 *                  nruns x (domain, s traceback delta from the previous run's,
 *                           size, count >= 1)
 *
 * Traces are stored as runs of identical (domain, traceback, size): a
 * million strings allocated on one line cost a few bytes.  The loader checks
 * every count against the bytes left before allocating, every index against
 * its table, and rebuilds the tables through the builder, so a loaded
 * snapshot keeps invariants T1-T5 whatever the file says.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rcgc_tracemalloc.h"
#include "tmsnap.h"

uint64_t tm_load_max_traces = (uint64_t)1 << 27;

#define HEADER_SIZE 24
#define FORMAT_VERSION 1
static const char MAGIC[8] = { 'R', 'C', 'G', 'C', 'S', 'N', 'A', 'P' };

/* ------------------------------------------------------------------ CRC */

static void crc_table(uint32_t t[256])
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        t[i] = c;
    }
}

static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t t[256];
    crc_table(t);
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = t[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* ---------------------------------------------------------------- write */

typedef struct wbuf {
    unsigned char *p;
    size_t n, cap;
    int oom;
} wbuf;

static void w_reserve(wbuf *w, size_t more)
{
    if (w->oom || w->n + more <= w->cap)
        return;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->n + more)
        cap *= 2;
    unsigned char *q = realloc(w->p, cap);
    if (!q) {
        w->oom = 1;
        return;
    }
    w->p = q;
    w->cap = cap;
}

static void w_bytes(wbuf *w, const void *p, size_t n)
{
    if (n == 0)
        return;
    w_reserve(w, n);
    if (w->oom)
        return;
    memcpy(w->p + w->n, p, n);
    w->n += n;
}

static void w_var(wbuf *w, uint64_t v)
{
    w_reserve(w, 10);
    if (w->oom)
        return;
    while (v >= 0x80) {
        w->p[w->n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    w->p[w->n++] = (unsigned char)v;
}

static void w_svar(wbuf *w, int64_t v)
{
    w_var(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Open-addressing counter of (domain, size) within one traceback. */
typedef struct runkey {
    uint64_t size;
    uint32_t domain;
    uint32_t used;
    uint64_t count;
} runkey;

/* Encode the whole file into w. */
static void encode(const rcgc_snapshot *s, wbuf *w)
{
    const tm_tables *t = s->t;
    w_reserve(w, HEADER_SIZE);
    if (w->oom)
        return;
    memset(w->p, 0, HEADER_SIZE);
    w->n = HEADER_SIZE;
    w_var(w, (uint64_t)(s->traceback_limit < 0 ? 0 : s->traceback_limit));
    /* Strings: the table's NUL-separated block, in order. */
    uint64_t nstr = 0;
    for (size_t off = 0; off < t->strings_len; off += strlen(t->strings + off) + 1)
        nstr++;
    w_var(w, nstr);
    for (size_t off = 0; off < t->strings_len;) {
        size_t len = strlen(t->strings + off);
        w_var(w, len);
        w_bytes(w, t->strings + off, len);
        off += len + 1;
    }
    /* A frame's strings are named by index: map pointer -> index by the
     * offset into the block, through a sorted walk (strings are in order). */
    size_t *offs = malloc((nstr + 1) * sizeof *offs);
    if (!offs) {
        w->oom = 1;
        return;
    }
    size_t k = 0;
    for (size_t off = 0; off < t->strings_len; off += strlen(t->strings + off) + 1)
        offs[k++] = off;
    w_var(w, t->nframes);
    for (size_t i = 0; i < t->nframes; i++) {
        const tm_sframe *f = &t->frames[i];
        size_t fo = (size_t)(f->filename - t->strings);
        /* binary search of the string index */
        size_t lo = 0, hi = nstr;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (offs[mid] < fo)
                lo = mid + 1;
            else
                hi = mid;
        }
        w_var(w, lo);
        w_svar(w, f->lineno);
        if (f->function) {
            size_t go = (size_t)(f->function - t->strings);
            lo = 0;
            hi = nstr;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (offs[mid] < go)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            w_var(w, lo + 1);
        } else {
            w_var(w, 0);
        }
    }
    free(offs);
    w_var(w, t->ntb);
    for (size_t i = 0; i < t->ntb; i++) {
        const rcgc_traceback *tb = &t->tbs[i];
        w_var(w, tb->total_nframe < 0 ? 0 : (uint64_t)tb->total_nframe + 1);
        w_var(w, tb->nframe);
        for (size_t j = 0; j < tb->nframe; j++)
            w_var(w, tb->frames[j]);
    }
    /* Runs: bucket the traces by traceback (counting sort), then count the
     * distinct (domain, size) of each bucket. */
    size_t ntb = t->ntb;
    size_t *start = calloc(ntb + 2, sizeof *start);
    uint32_t *order = malloc((s->ntraces + 1) * sizeof *order);
    size_t rcap = 64;
    runkey *rk = calloc(rcap, sizeof *rk);
    size_t *seen = malloc(rcap * sizeof *seen);
    wbuf runs = { NULL, 0, 0, 0 };
    if (!start || !order || !rk || !seen) {
        w->oom = 1;
        goto out;
    }
    for (size_t i = 0; i < s->ntraces; i++)
        start[s->traces[i].tb + 1]++;
    for (size_t i = 0; i < ntb; i++)
        start[i + 1] += start[i];
    for (size_t i = 0; i < s->ntraces; i++)
        order[start[s->traces[i].tb]++] = (uint32_t)i;
    /* start[i] is now the end of bucket i. */
    uint64_t nruns = 0;
    int64_t prev_tb = 0;
    size_t b0 = 0;
    for (size_t tb = 0; tb < ntb; tb++) {
        size_t b1 = start[tb];
        size_t need = 2 * (b1 - b0) + 2;
        if (need > rcap) {
            while (rcap < need)
                rcap *= 2;
            free(rk);
            free(seen);
            rk = calloc(rcap, sizeof *rk);
            seen = malloc(rcap * sizeof *seen);
            if (!rk || !seen) {
                w->oom = 1;
                goto out;
            }
        }
        size_t mask = rcap - 1;
        size_t nseen = 0;
        for (size_t i = b0; i < b1; i++) {
            const tm_strace *tr = &s->traces[order[i]];
            size_t j = tm_mix64(tr->size ^ ((uint64_t)tr->domain << 40)) & mask;
            while (rk[j].used && (rk[j].size != tr->size || rk[j].domain != tr->domain))
                j = (j + 1) & mask;
            if (!rk[j].used) {
                rk[j] = (runkey){ tr->size, tr->domain, 1, 0 };
                seen[nseen++] = j;   /* first-seen order */
            }
            rk[j].count++;
        }
        for (size_t k2 = 0; k2 < nseen; k2++) {
            runkey *x = &rk[seen[k2]];
            w_var(&runs, x->domain);
            w_svar(&runs, (int64_t)tb - prev_tb);
            w_var(&runs, x->size);
            w_var(&runs, x->count);
            prev_tb = (int64_t)tb;
            x->used = 0;
            nruns++;
        }
        b0 = b1;
    }
    if (runs.oom) {
        w->oom = 1;
        goto out;
    }
    w_var(w, nruns);
    w_var(w, s->ntraces);
    w_bytes(w, runs.p, runs.n);
    if (!w->oom) {
        size_t body = w->n - HEADER_SIZE;
        memcpy(w->p, MAGIC, 8);
        put_le(w->p + 8, FORMAT_VERSION, 2);
        put_le(w->p + 10, 0, 2);
        put_le(w->p + 12, crc32_of(w->p + HEADER_SIZE, body), 4);
        put_le(w->p + 16, body, 8);
    }
out:
    free(runs.p);
    free(start);
    free(order);
    free(rk);
    free(seen);
}

int rcgc_snapshot_dump_buffer(const rcgc_snapshot *s, void **data, size_t *size)
{
    *data = NULL;
    *size = 0;
    if (!s)
        return RCGC_EINVAL;
    wbuf w = { NULL, 0, 0, 0 };
    encode(s, &w);
    if (w.oom) {
        free(w.p);
        return RCGC_ENOMEM;
    }
    *data = w.p;
    *size = w.n;
    return RCGC_OK;
}

int rcgc_snapshot_dump(const rcgc_snapshot *s, const char *path)
{
    void *data;
    size_t size;
    int rc = rcgc_snapshot_dump_buffer(s, &data, &size);
    if (rc != RCGC_OK)
        return rc;
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        free(data);
        return RCGC_EIO;
    }
    size_t put = fwrite(data, 1, size, fp);
    int bad = put != size || ferror(fp);
    int saved = errno;
    if (fclose(fp) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    free(data);
    if (bad) {
        errno = saved;
        return RCGC_EIO;
    }
    return RCGC_OK;
}

/* ----------------------------------------------------------------- read */

typedef struct rbuf {
    const unsigned char *p;
    size_t n, i;
    const char *err;     /* the first problem found */
} rbuf;

static int r_fail(rbuf *r, const char *what)
{
    if (!r->err)
        r->err = what;
    return -1;
}

static size_t r_left(const rbuf *r)
{
    return r->n - r->i;
}

/* Read an unsigned varint of at most 64 bits. */
static int r_var(rbuf *r, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->i >= r->n)
            return r_fail(r, "truncated body");
        unsigned b = r->p[r->i++];
        if (shift == 63 && b > 1)
            return r_fail(r, "varint overflows 64 bits");
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return r_fail(r, "varint overflows 64 bits");
}

static int r_svar(rbuf *r, int64_t *out)
{
    uint64_t u;
    if (r_var(r, &u))
        return -1;
    *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return 0;
}

/* A count of items that each take at least `min_bytes` bytes. */
static int r_count(rbuf *r, size_t min_bytes, size_t *out, const char *what)
{
    uint64_t v;
    if (r_var(r, &v))
        return -1;
    if (v > r_left(r) / min_bytes)
        return r_fail(r, what);
    *out = (size_t)v;
    return 0;
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void set_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* Parse the body into a snapshot; NULL with r->err set on bad input (or
 * *oom set on out of memory). */
static rcgc_snapshot *decode(rbuf *r, int *oom)
{
    tm_builder *b = tmb_new();
    long *smap = NULL, *fmap = NULL, *tmap = NULL;
    uint32_t *ids = NULL;
    tm_strace *traces = NULL;
    rcgc_snapshot *snap = NULL;
    if (!b)
        goto oom;
    uint64_t limit;
    if (r_var(r, &limit))
        goto bad;
    if (limit > RCGC_TRACEMALLOC_MAX_NFRAME)
        r_fail(r, "traceback limit out of range");
    size_t nstr;
    if (r->err || r_count(r, 1, &nstr, "string count exceeds the file"))
        goto bad;
    smap = malloc((nstr + 1) * sizeof *smap);
    if (!smap)
        goto oom;
    for (size_t i = 0; i < nstr; i++) {
        size_t len;
        if (r_count(r, 1, &len, "string longer than the file"))
            goto bad;
        const char *p = (const char *)r->p + r->i;
        if (memchr(p, '\0', len)) {
            r_fail(r, "NUL byte inside a string");
            goto bad;
        }
        r->i += len;
        smap[i] = tmb_string(b, p, len);
        if (smap[i] < 0)
            goto oom;
    }
    size_t nframes;
    if (r_count(r, 3, &nframes, "frame count exceeds the file"))
        goto bad;
    fmap = malloc((nframes + 1) * sizeof *fmap);
    if (!fmap)
        goto oom;
    for (size_t i = 0; i < nframes; i++) {
        uint64_t fn, func;
        int64_t line;
        if (r_var(r, &fn) || r_svar(r, &line) || r_var(r, &func))
            goto bad;
        if (fn >= nstr || func > nstr) {
            r_fail(r, "frame names a string that does not exist");
            goto bad;
        }
        if (line < INT32_MIN || line > INT32_MAX) {
            r_fail(r, "line number out of range");
            goto bad;
        }
        fmap[i] = tmb_frame(b, smap[fn], (int)line, func ? smap[func - 1] : -1);
        if (fmap[i] < 0)
            goto oom;
    }
    size_t ntb;
    if (r_count(r, 3, &ntb, "traceback count exceeds the file"))
        goto bad;
    tmap = malloc((ntb + 1) * sizeof *tmap);
    ids = malloc((RCGC_TRACEMALLOC_MAX_NFRAME + 1) * sizeof *ids);
    if (!tmap || !ids)
        goto oom;
    for (size_t i = 0; i < ntb; i++) {
        uint64_t total;
        size_t n;
        if (r_var(r, &total) || r_count(r, 1, &n, "traceback longer than the file"))
            goto bad;
        if (n == 0 || n > RCGC_TRACEMALLOC_MAX_NFRAME) {
            r_fail(r, "traceback frame count out of range");
            goto bad;
        }
        if (total > (uint64_t)INT32_MAX + 1) {
            r_fail(r, "total_nframe out of range");
            goto bad;
        }
        for (size_t j = 0; j < n; j++) {
            uint64_t f;
            if (r_var(r, &f))
                goto bad;
            if (f >= nframes) {
                r_fail(r, "traceback names a frame that does not exist");
                goto bad;
            }
            ids[j] = (uint32_t)fmap[f];
        }
        tmap[i] = tmb_traceback(b, ids, n, total ? (long)(total - 1) : -1);
        if (tmap[i] < 0)
            goto oom;
    }
    size_t nruns;
    uint64_t ntraces;
    if (r_count(r, 4, &nruns, "run count exceeds the file") || r_var(r, &ntraces))
        goto bad;
    if (ntraces > tm_load_max_traces) {
        r_fail(r, "too many traces");
        goto bad;
    }
    if (nruns > ntraces) {
        r_fail(r, "more runs than traces");
        goto bad;
    }
    traces = malloc(((size_t)ntraces + 1) * sizeof *traces);
    if (!traces)
        goto oom;
    size_t filled = 0;
    int64_t tb = 0;
    for (size_t i = 0; i < nruns; i++) {
        uint64_t domain, size, count;
        int64_t delta;
        if (r_var(r, &domain) || r_svar(r, &delta) || r_var(r, &size) || r_var(r, &count))
            goto bad;
        if (domain > UINT32_MAX) {
            r_fail(r, "domain out of range");
            goto bad;
        }
        if ((delta > 0 && tb > INT64_MAX - delta) || (delta < 0 && tb < INT64_MIN - delta)) {
            r_fail(r, "traceback index out of range");
            goto bad;
        }
        tb += delta;
        if (tb < 0 || (uint64_t)tb >= ntb) {
            r_fail(r, "trace names a traceback that does not exist");
            goto bad;
        }
        if (count == 0 || count > ntraces - filled) {
            r_fail(r, "run counts do not add up to the trace count");
            goto bad;
        }
        for (uint64_t c = 0; c < count; c++)
            traces[filled++] = (tm_strace){ size, (uint32_t)domain, (uint32_t)tmap[tb] };
    }
    if (filled != ntraces) {
        r_fail(r, "run counts do not add up to the trace count");
        goto bad;
    }
    if (r->i != r->n) {
        r_fail(r, "trailing bytes after the traces");
        goto bad;
    }
    tm_tables *t = tmb_finish(b);
    b = NULL;
    if (!t)
        goto oom;
    snap = tm_snapshot_new(t, (int)limit, traces, filled);
    traces = NULL;
    tm_tables_release(t);
    if (!snap)
        goto oom;
    goto done;
oom:
    *oom = 1;
bad:
    snap = NULL;
done:
    tmb_free(b);
    free(smap);
    free(fmap);
    free(tmap);
    free(ids);
    free(traces);
    return snap;
}

int rcgc_snapshot_load_buffer(const void *data, size_t size, rcgc_snapshot **out, char *err,
                              size_t errcap)
{
    *out = NULL;
    set_err(err, errcap, "%s", "");
    const unsigned char *p = data;
    if (!data && size)
        return RCGC_EINVAL;
    if (size < 8 || memcmp(p, MAGIC, 8) != 0) {
        set_err(err, errcap, "not an rcgc snapshot (bad magic)");
        return RCGC_EFORMAT;
    }
    if (size < HEADER_SIZE) {
        set_err(err, errcap, "truncated file: %zu bytes, the header alone has %d", size,
                HEADER_SIZE);
        return RCGC_EFORMAT;
    }
    unsigned version = (unsigned)get_le(p + 8, 2);
    if (version != FORMAT_VERSION) {
        set_err(err, errcap, "unsupported snapshot format version %u (this is version %d)",
                version, FORMAT_VERSION);
        return RCGC_EFORMAT;
    }
    if (get_le(p + 10, 2) != 0) {
        set_err(err, errcap, "unknown flags 0x%x in the header", (unsigned)get_le(p + 10, 2));
        return RCGC_EFORMAT;
    }
    uint64_t body = get_le(p + 16, 8);
    if (body > size - HEADER_SIZE) {
        set_err(err, errcap, "truncated file: the body should have %llu bytes, %zu are there",
                (unsigned long long)body, size - HEADER_SIZE);
        return RCGC_EFORMAT;
    }
    if (body < size - HEADER_SIZE) {
        set_err(err, errcap, "%zu unexpected bytes after the body",
                (size_t)(size - HEADER_SIZE - body));
        return RCGC_EFORMAT;
    }
    uint32_t want = (uint32_t)get_le(p + 12, 4);
    uint32_t got = crc32_of(p + HEADER_SIZE, (size_t)body);
    if (want != got) {
        set_err(err, errcap, "checksum mismatch (stored %08x, computed %08x): the file is "
                             "corrupted", want, got);
        return RCGC_EFORMAT;
    }
    rbuf r = { p + HEADER_SIZE, (size_t)body, 0, NULL };
    int oom = 0;
    rcgc_snapshot *s = decode(&r, &oom);
    if (!s) {
        if (oom) {
            set_err(err, errcap, "out of memory");
            return RCGC_ENOMEM;
        }
        set_err(err, errcap, "corrupt snapshot at body offset %zu: %s", r.i,
                r.err ? r.err : "invalid data");
        return RCGC_EFORMAT;
    }
    *out = s;
    return RCGC_OK;
}

int rcgc_snapshot_load(const char *path, rcgc_snapshot **out, char *err, size_t errcap)
{
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        int e = errno;
        set_err(err, errcap, "%s: %s", path, strerror(e));
        errno = e;
        return RCGC_EIO;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *data = malloc(cap);
    while (data) {
        n += fread(data + n, 1, cap - n, fp);
        if (n < cap)
            break;
        unsigned char *q = realloc(data, cap * 2);
        if (!q) {
            free(data);
            data = NULL;
            break;
        }
        data = q;
        cap *= 2;
    }
    int bad = ferror(fp);
    int e = errno;
    fclose(fp);
    if (!data) {
        set_err(err, errcap, "out of memory");
        return RCGC_ENOMEM;
    }
    if (bad) {
        free(data);
        set_err(err, errcap, "%s: %s", path, strerror(e));
        errno = e;
        return RCGC_EIO;
    }
    int rc = rcgc_snapshot_load_buffer(data, n, out, err, errcap);
    free(data);
    return rc;
}
