/*
 * capture.c - the capture loader.  Every read is bounds-checked against the
 * section it belongs to, and every count is checked against the bytes left
 * before anything is allocated for it, so a corrupted or hostile file gives
 * an error message, never a crash or an absurd allocation
 * (tests/prof/fuzz_capture.c replays a corpus of such files).
 */
#include "capture.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zstd.h>

struct rd {
    const unsigned char *p, *end;
    int bad;
};

static uint64_t get_v(struct rd *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = 1;
            return 0;
        }
        unsigned char b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t get_z(struct rd *r)
{
    uint64_t u = get_v(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* A string of at most `max` bytes, NUL-terminated, malloc'd; its stored
 * length (it may hold NULs) in *outlen when outlen is not NULL. */
static char *get_sl(struct rd *r, size_t max, size_t *outlen)
{
    uint64_t n = get_v(r);
    if (r->bad || n > max || n > (uint64_t)(r->end - r->p)) {
        r->bad = 1;
        return NULL;
    }
    char *s = malloc((size_t)n + 1);
    if (!s) {
        r->bad = 1;
        return NULL;
    }
    memcpy(s, r->p, (size_t)n);
    s[n] = 0;
    r->p += n;
    if (outlen)
        *outlen = (size_t)n;
    return s;
}

static char *get_s(struct rd *r, size_t max)
{
    return get_sl(r, max, NULL);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    if (cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void prof_capture_free(struct prof_capture *c)
{
    free(c->exe);
    free(c->cmdline);
    for (size_t i = 0; i < c->n_mods; i++) {
        free(c->mods[i].path);
        free(c->mods[i].build_id);
    }
    free(c->mods);
    free(c->stacks);
    free(c->frame_pool);
    free(c->samples);
    memset(c, 0, sizeof *c);
}

static int parse_info(struct rd *r, struct prof_capture *c)
{
    c->pid = get_v(r);
    c->ppid = get_v(r);
    c->is_root = get_v(r);
    c->start_unix_ns = get_v(r);
    c->duration_ms = get_v(r);
    c->nframes = get_v(r);
    c->interval_ms = get_v(r);
    c->state = get_v(r);
    c->code = get_z(r);
    c->alloc_calls = get_v(r);
    c->free_calls = get_v(r);
    c->alloc_bytes = get_v(r);
    c->temp_calls = get_v(r);
    c->cur_bytes = get_v(r);
    c->cur_count = get_v(r);
    c->peak_bytes = get_v(r);
    c->peak_ms = get_v(r);
    c->peak_rss = get_v(r);
    c->exe = get_s(r, 1 << 16);
    size_t n = 0;
    c->cmdline = get_sl(r, 1 << 20, &n);
    if (r->bad || c->state > RCGC_PROF_SIGNAL || c->nframes > RCGC_PROF_MAX_FRAMES)
        return -1;
    /* arguments are NUL-separated on disk; show them space-separated */
    while (n && c->cmdline[n - 1] == 0)
        n--;
    for (size_t i = 0; i < n; i++)
        if (c->cmdline[i] == 0)
            c->cmdline[i] = ' ';
    c->cmdline[n] = 0;
    return 0;
}

static int parse_mods(struct rd *r, struct prof_capture *c)
{
    uint64_t n = get_v(r);
    /* each module takes at least 5 bytes */
    if (r->bad || n > (uint64_t)(r->end - r->p) / 5)
        return -1;
    c->mods = calloc(n ? (size_t)n : 1, sizeof *c->mods);
    if (!c->mods)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        struct prof_module *m = &c->mods[i];
        c->n_mods = (size_t)i + 1;
        m->path = get_s(r, 1 << 16);
        m->build_id = (unsigned char *)get_sl(r, 256, &m->build_id_len);
        if (r->bad)
            return -1;
        m->bias = get_v(r);
        m->lo = get_v(r);
        m->hi = get_v(r);
        if (r->bad || m->lo > m->hi)
            return -1;
    }
    return 0;
}

static int parse_stacks(struct rd *r, struct prof_capture *c)
{
    uint64_t n = get_v(r);
    size_t left = (size_t)(r->end - r->p);
    if (r->bad || n > left / (1 + RCGC_PROF_NSTATS))
        return -1;
    c->stacks = calloc(n ? (size_t)n : 1, sizeof *c->stacks);
    /* total frames cannot exceed the bytes left (one byte per frame at least) */
    c->frame_pool = malloc((left ? left : 1) * sizeof(uint64_t));
    if (!c->stacks || !c->frame_pool)
        return -1;
    size_t used = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct prof_stack *s = &c->stacks[i];
        uint64_t nf = get_v(r);
        if (r->bad || nf > RCGC_PROF_MAX_FRAMES + 1 || nf > (uint64_t)(r->end - r->p) ||
            used + nf > left)
            return -1;
        s->nframes = (uint32_t)nf;
        s->frames = c->frame_pool + used;
        uint64_t prev = 0;
        for (uint64_t k = 0; k < nf; k++) {
            prev += (uint64_t)get_z(r);
            s->frames[k] = prev;
        }
        used += (size_t)nf;
        for (int k = 0; k < RCGC_PROF_NSTATS; k++)
            s->st[k] = get_v(r);
        if (r->bad)
            return -1;
        c->n_stacks = (size_t)i + 1;
    }
    return 0;
}

static int parse_samples(struct rd *r, struct prof_capture *c)
{
    uint64_t n = get_v(r);
    if (r->bad || n > (uint64_t)(r->end - r->p) / 3)
        return -1;
    c->samples = calloc(n ? (size_t)n : 1, sizeof *c->samples);
    if (!c->samples)
        return -1;
    uint64_t t = 0;
    for (uint64_t i = 0; i < n; i++) {
        t += get_v(r);
        c->samples[i].t_ms = t;
        c->samples[i].rss = get_v(r);
        c->samples[i].heap = get_v(r);
        if (r->bad)
            return -1;
    }
    c->n_samples = (size_t)n;
    return 0;
}

int prof_capture_parse(const unsigned char *data, size_t len, struct prof_capture *c, char *err,
                       size_t errcap)
{
    memset(c, 0, sizeof *c);
    if (len < 8 || memcmp(data, RCGC_PROF_MAGIC, 8) != 0)
        return fail(err, errcap, "not an rcgc-prof capture (bad magic)");
    if (len < RCGC_PROF_HEADER_SIZE)
        return fail(err, errcap, "truncated capture: %zu-byte file, the header alone is %u",
                    len, RCGC_PROF_HEADER_SIZE);
    if (rcgc_prof_crc32(0, data, 36) != le32(data + 36))
        return fail(err, errcap, "corrupted capture: header checksum mismatch");
    uint32_t version = le32(data + 8), flags = le32(data + 12);
    if (version != RCGC_PROF_VERSION)
        return fail(err, errcap, "capture format version %u, this rcgc-prof reads version %u",
                    version, RCGC_PROF_VERSION);
    if (flags & ~RCGC_PROF_F_ZSTD)
        return fail(err, errcap, "corrupted capture: unknown flags 0x%x", flags);
    uint64_t raw = le64(data + 16), stored = le64(data + 24);
    if (stored > len - RCGC_PROF_HEADER_SIZE)
        return fail(err, errcap, "truncated capture: body of %llu bytes, file has %zu",
                    (unsigned long long)stored, len - RCGC_PROF_HEADER_SIZE);
    if (stored < len - RCGC_PROF_HEADER_SIZE)
        return fail(err, errcap, "corrupted capture: %zu bytes of trailing garbage",
                    len - RCGC_PROF_HEADER_SIZE - (size_t)stored);
    const unsigned char *sb = data + RCGC_PROF_HEADER_SIZE;
    if (rcgc_prof_crc32(0, sb, (size_t)stored) != le32(data + 32))
        return fail(err, errcap, "corrupted capture: body checksum mismatch");
    if (raw > RCGC_PROF_MAX_RAW)
        return fail(err, errcap, "corrupted capture: body size %llu is too large",
                    (unsigned long long)raw);
    unsigned char *body = NULL;
    const unsigned char *b = sb;
    if (flags & RCGC_PROF_F_ZSTD) {
        body = malloc(raw ? (size_t)raw : 1);
        if (!body)
            return fail(err, errcap, "out of memory (%llu bytes)", (unsigned long long)raw);
        size_t got = ZSTD_decompress(body, (size_t)raw, sb, (size_t)stored);
        if (ZSTD_isError(got) || got != raw) {
            free(body);
            return fail(err, errcap, "corrupted capture: compressed body does not decode");
        }
        b = body;
    } else if (raw != stored) {
        return fail(err, errcap, "corrupted capture: sizes disagree");
    }

    const unsigned char *p = b, *end = b + raw;
    int seen_info = 0, seen_end = 0, rc = 0;
    const char *what = "";
    while (p < end && !seen_end) {
        if (end - p < 16) {
            rc = -1;
            what = "section header";
            break;
        }
        uint32_t tag = le32(p);
        uint64_t sl = le64(p + 8);
        p += 16;
        if (sl > (uint64_t)(end - p)) {
            rc = -1;
            what = "section length";
            break;
        }
        struct rd r = { p, p + sl, 0 };
        if (!seen_info && tag != RCGC_PROF_SEC_INFO) {
            rc = -1;
            what = "first section (INFO expected)";
            break;
        }
        switch (tag) {
        case RCGC_PROF_SEC_INFO:
            if (seen_info || parse_info(&r, c) < 0) {
                rc = -1;
                what = "INFO section";
            }
            seen_info = 1;
            break;
        case RCGC_PROF_SEC_MODS:
            if (c->mods || parse_mods(&r, c) < 0) {
                rc = -1;
                what = "MODS section";
            }
            break;
        case RCGC_PROF_SEC_STACKS:
            if (c->stacks || parse_stacks(&r, c) < 0) {
                rc = -1;
                what = "STACKS section";
            }
            break;
        case RCGC_PROF_SEC_SAMPLES:
            if (c->samples || parse_samples(&r, c) < 0) {
                rc = -1;
                what = "SAMPLES section";
            }
            break;
        case RCGC_PROF_SEC_END:
            seen_end = 1;
            break;
        default:
            break; /* unknown sections are skipped: room for later versions */
        }
        if (rc)
            break;
        p += sl;
    }
    free(body);
    if (rc)
        return fail(err, errcap, "corrupted capture: bad %s", what);
    if (!seen_info || !seen_end)
        return fail(err, errcap, "corrupted capture: missing %s section",
                    seen_info ? "END" : "INFO");
    if (!c->mods || !c->stacks || !c->samples)
        return fail(err, errcap, "corrupted capture: missing %s section",
                    !c->mods ? "MODS" : !c->stacks ? "STACKS" : "SAMPLES");
    return 0;
}

int prof_capture_load(const char *path, struct prof_capture *c, char *err, size_t errcap)
{
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errcap, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return fail(err, errcap, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > RCGC_PROF_MAX_RAW) {
        fclose(f);
        return fail(err, errcap, "%s: too large for a capture", path);
    }
    size_t len = (size_t)st.st_size;
    unsigned char *data = malloc(len ? len : 1);
    if (!data) {
        fclose(f);
        return fail(err, errcap, "out of memory");
    }
    size_t got = fread(data, 1, len, f);
    fclose(f);
    if (got != len) {
        free(data);
        return fail(err, errcap, "%s: read error", path);
    }
    char inner[256];
    int rc = prof_capture_parse(data, len, c, inner, sizeof inner);
    free(data);
    if (rc)
        return fail(err, errcap, "%s: %s", path, inner);
    return 0;
}
