/*
 * tmformat.c - Python-exact text forms of tracemalloc's values
 * (contracts in src/internal/tmformat.h).
 *
 * Rounding: Python's "%.1f" and "%.0f" round the exact binary value of the
 * double half-to-even, as glibc's printf does, so the C and Python texts
 * agree digit for digit (tests/tracemalloc/test_tmformat.c checks it against
 * python3 over thousands of sizes).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmformat.h"

/* snprintf into the unused tail of buf; returns the full length written so
 * far (the "would be" length once buf is full). */
typedef struct sbuf {
    char *buf;
    size_t cap;
    size_t len;
} sbuf;

static void sb_init(sbuf *sb, char *buf, size_t cap)
{
    sb->buf = buf;
    sb->cap = cap;
    sb->len = 0;
    if (cap > 0)
        buf[0] = '\0';
}

static void sb_printf(sbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *sb, const char *fmt, ...)
{
    char dummy[1];
    char *dst = dummy;
    size_t room = 0;
    if (sb->len < sb->cap) {
        dst = sb->buf + sb->len;
        room = sb->cap - sb->len;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb->len += (size_t)n;
}

static void sb_putc(sbuf *sb, char c)
{
    if (sb->len + 1 < sb->cap) {
        sb->buf[sb->len] = c;
        sb->buf[sb->len + 1] = '\0';
    } else if (sb->cap > 0 && sb->len < sb->cap) {
        sb->buf[sb->cap - 1] = '\0';
    }
    sb->len++;
}

/* Append _format_size(size, sign). */
static void sb_size(sbuf *sb, double size, int sign)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    for (int i = 0; i < 5; i++) {
        double mag = size < 0 ? -size : size;
        if (mag < 100 && i != 0) {
            sb_printf(sb, sign ? "%+.1f %s" : "%.1f %s", size, units[i]);
            return;
        }
        if (mag < 10 * 1024 || i == 4) {
            sb_printf(sb, sign ? "%+.0f %s" : "%.0f %s", size, units[i]);
            return;
        }
        size /= 1024;
    }
}

size_t rcgc_fmt_size(char *buf, size_t cap, double size, int sign)
{
    sbuf sb;
    sb_init(&sb, buf, cap);
    sb_size(&sb, size, sign);
    return sb.len;
}

size_t rcgc_fmt_frame(char *buf, size_t cap, const char *filename, long lineno)
{
    sbuf sb;
    sb_init(&sb, buf, cap);
    sb_printf(&sb, "%s:%ld", filename, lineno);
    return sb.len;
}

/* Append Python's repr() of a str holding the UTF-8 text s. */
static void sb_pyrepr(sbuf *sb, const char *s)
{
    char quote = '\'';
    if (strchr(s, '\'') && !strchr(s, '"'))
        quote = '"';
    sb_putc(sb, quote);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        if (c == (unsigned char)quote || c == '\\') {
            sb_putc(sb, '\\');
            sb_putc(sb, (char)c);
        } else if (c == '\t') {
            sb_printf(sb, "\\t");
        } else if (c == '\n') {
            sb_printf(sb, "\\n");
        } else if (c == '\r') {
            sb_printf(sb, "\\r");
        } else if (c < 0x20 || c == 0x7f) {
            sb_printf(sb, "\\x%02x", c);
        } else {
            sb_putc(sb, (char)c);
        }
    }
    sb_putc(sb, quote);
}

size_t rcgc_fmt_frame_repr(char *buf, size_t cap, const char *filename, long lineno)
{
    sbuf sb;
    sb_init(&sb, buf, cap);
    sb_printf(&sb, "<Frame filename=");
    sb_pyrepr(&sb, filename);
    sb_printf(&sb, " lineno=%ld>", lineno);
    return sb.len;
}

static void sb_average(sbuf *sb, double size, long long count)
{
    if (count != 0) {
        sb_printf(sb, ", average=");
        sb_size(sb, size / (double)count, 0);
    }
}

size_t rcgc_fmt_statistic(char *buf, size_t cap, const char *key, double size,
                          long long count)
{
    sbuf sb;
    sb_init(&sb, buf, cap);
    sb_printf(&sb, "%s: size=", key);
    sb_size(&sb, size, 0);
    sb_printf(&sb, ", count=%lld", count);
    sb_average(&sb, size, count);
    return sb.len;
}

size_t rcgc_fmt_statistic_line(char *buf, size_t cap, const char *filename,
                               long lineno, double size, long long count)
{
    sbuf sb;
    sb_init(&sb, buf, cap);
    sb_printf(&sb, "%s:%ld: size=", filename, lineno);
    sb_size(&sb, size, 0);
    sb_printf(&sb, ", count=%lld", count);
    sb_average(&sb, size, count);
    return sb.len;
}

size_t rcgc_fmt_statistic_diff(char *buf, size_t cap, const char *key,
                               double size, double size_diff, long long count,
                               long long count_diff)
{
    sbuf sb;
    sb_init(&sb, buf, cap);
    sb_printf(&sb, "%s: size=", key);
    sb_size(&sb, size, 0);
    sb_printf(&sb, " (");
    sb_size(&sb, size_diff, 1);
    sb_printf(&sb, "), count=%lld (%+lld)", count, count_diff);
    sb_average(&sb, size, count);
    return sb.len;
}

size_t rcgc_fmt_trace(char *buf, size_t cap, const char *key, double size)
{
    sbuf sb;
    sb_init(&sb, buf, cap);
    sb_printf(&sb, "%s: ", key);
    sb_size(&sb, size, 0);
    return sb.len;
}

size_t rcgc_fmt_file_line(char *buf, size_t cap, const char *filename, long lineno)
{
    sbuf sb;
    sb_init(&sb, buf, cap);
    sb_printf(&sb, "  File \"%s\", line %ld", filename, lineno);
    return sb.len;
}

static int py_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

const char *rcgc_fmt_strip(const char *s, size_t n, size_t *len)
{
    while (n > 0 && py_space((unsigned char)s[0])) {
        s++;
        n--;
    }
    while (n > 0 && py_space((unsigned char)s[n - 1]))
        n--;
    *len = n;
    return s;
}

/* ------------------------------------------------------------ line cache */

/* One file: its bytes and the offset of each line's start.  Invariant:
 * starts[i] <= ends[i] <= size, lines in file order. */
typedef struct lc_file {
    struct lc_file *next;
    char *name;
    char *data;
    size_t nlines;
    size_t *starts;   /* [nlines] */
    size_t *ends;     /* [nlines]: end of the text, before the line ending */
} lc_file;

struct rcgc_linecache {
    lc_file *files;
};

rcgc_linecache *rcgc_linecache_new(void)
{
    return calloc(1, sizeof(rcgc_linecache));
}

void rcgc_linecache_free(rcgc_linecache *lc)
{
    if (!lc)
        return;
    lc_file *f = lc->files;
    while (f) {
        lc_file *next = f->next;
        free(f->name);
        free(f->data);
        free(f->starts);
        free(f->ends);
        free(f);
        f = next;
    }
    free(lc);
}

/* Read the whole file; NULL when it cannot be read. */
static char *read_file(const char *name, size_t *size)
{
    FILE *fp = fopen(name, "rb");
    if (!fp)
        return NULL;
    size_t cap = 4096, n = 0;
    char *data = malloc(cap);
    while (data) {
        size_t got = fread(data + n, 1, cap - n, fp);
        n += got;
        if (n < cap)
            break;
        char *bigger = realloc(data, cap * 2);
        if (!bigger) {
            free(data);
            data = NULL;
            break;
        }
        data = bigger;
        cap *= 2;
    }
    int bad = ferror(fp);
    fclose(fp);
    if (bad) {
        free(data);
        return NULL;
    }
    *size = n;
    return data;
}

/* Split data into lines (Python's universal newlines); the UTF-8 BOM is
 * dropped as tokenize.open() drops it.  Returns 0 or -1 on out of memory. */
static int split_lines(lc_file *f, size_t size)
{
    size_t cap = 64, n = 0;
    size_t *starts = malloc(cap * sizeof *starts);
    size_t *ends = malloc(cap * sizeof *ends);
    if (!starts || !ends)
        goto oom;
    size_t i = 0;
    if (size >= 3 && memcmp(f->data, "\xef\xbb\xbf", 3) == 0)
        i = 3;
    while (i < size) {
        size_t start = i;
        while (i < size && f->data[i] != '\n' && f->data[i] != '\r')
            i++;
        size_t end = i;
        if (i < size) {
            if (f->data[i] == '\r' && i + 1 < size && f->data[i + 1] == '\n')
                i++;
            i++;
        }
        if (n == cap) {
            cap *= 2;
            size_t *s2 = realloc(starts, cap * sizeof *starts);
            if (!s2)
                goto oom;
            starts = s2;
            size_t *e2 = realloc(ends, cap * sizeof *ends);
            if (!e2)
                goto oom;
            ends = e2;
        }
        starts[n] = start;
        ends[n] = end;
        n++;
    }
    f->starts = starts;
    f->ends = ends;
    f->nlines = n;
    return 0;
oom:
    free(starts);
    free(ends);
    return -1;
}

static lc_file *lc_find(rcgc_linecache *lc, const char *filename)
{
    for (lc_file *f = lc->files; f; f = f->next)
        if (strcmp(f->name, filename) == 0)
            return f;
    lc_file *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    size_t len = strlen(filename);
    f->name = malloc(len + 1);
    if (!f->name) {
        free(f);
        return NULL;
    }
    memcpy(f->name, filename, len + 1);
    /* linecache ignores pseudo-files such as "<unknown>" and "<string>". */
    int pseudo = len == 0 || (filename[0] == '<' && filename[len - 1] == '>');
    size_t size = 0;
    f->data = pseudo ? NULL : read_file(filename, &size);
    if (f->data && split_lines(f, size) != 0) {
        free(f->data);
        free(f->name);
        free(f);
        return NULL;
    }
    f->next = lc->files;
    lc->files = f;
    return f;
}

const char *rcgc_linecache_getline(rcgc_linecache *lc, const char *filename,
                                   long lineno, size_t *len)
{
    *len = 0;
    if (!lc || !filename || lineno < 1)
        return NULL;
    lc_file *f = lc_find(lc, filename);
    if (!f || !f->data || (size_t)lineno > f->nlines)
        return NULL;
    size_t i = (size_t)lineno - 1;
    return rcgc_fmt_strip(f->data + f->starts[i], f->ends[i] - f->starts[i], len);
}

int rcgc_fmt_print_frame(FILE *out, rcgc_linecache *lc, const char *filename,
                         long lineno)
{
    fprintf(out, "  File \"%s\", line %ld\n", filename, lineno);
    size_t len = 0;
    const char *line = rcgc_linecache_getline(lc, filename, lineno, &len);
    if (!line || len == 0)
        return 1;
    fprintf(out, "    %.*s\n", (int)len, line);
    return 2;
}
