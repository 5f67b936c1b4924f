/*
 * tmformat.h - Python-exact text forms of tracemalloc's values.
 *
 * These functions know nothing about snapshots or runtimes: they format
 * plain values (a size, a filename and a line, a statistic's numbers) the
 * way CPython 3.11's tracemalloc module prints them, so that every tool of
 * rcgc (the tracemalloc API, rcgc-prof's reports) prints the same text.
 *
 * Conventions shared by every rcgc_fmt_* function:
 *   - They write at most `cap` bytes into `buf`, always NUL-terminated when
 *     cap > 0, and return the length the full text has (snprintf's rule), so
 *     a caller can size a buffer with a first call of cap 0.  buf may be NULL
 *     when cap is 0.
 *   - They never allocate and never fail.
 *
 * The exact rules are those of CPython 3.11's Lib/tracemalloc.py
 * (_format_size, Frame.__str__, Statistic.__str__, StatisticDiff.__str__,
 * Trace.__str__, Traceback.format); tests/tracemalloc/ compares the output
 * with the real module, byte for byte.
 */
#ifndef RCGC_TMFORMAT_H
#define RCGC_TMFORMAT_H

#include <stddef.h>
#include <stdio.h>

/* A size in bytes as tracemalloc._format_size(size, sign) prints it: "12 B",
 * "4855 KiB", "97.7 MiB", with a leading '+' or '-' when sign is non-zero.
 * Units B, KiB, MiB, GiB, TiB; three significant digits ("xx.x UNIT") below
 * 100 of a unit other than B, otherwise whole numbers below 10240 of a unit.
 * `size` may be fractional (an average). */
size_t rcgc_fmt_size(char *buf, size_t cap, double size, int sign);

/* A frame: "file.c:12" (Frame.__str__). */
size_t rcgc_fmt_frame(char *buf, size_t cap, const char *filename, long lineno);

/* A frame's repr: "<Frame filename='file.c' lineno=12>", the filename quoted
 * the way Python's repr() quotes a str (ASCII control bytes escaped, bytes
 * >= 0x80 copied, which is right for valid UTF-8 of printable characters). */
size_t rcgc_fmt_frame_repr(char *buf, size_t cap, const char *filename, long lineno);

/* A statistic whose key prints as `key` (a Traceback prints as its first -
 * oldest - frame): "key: size=4855 KiB, count=39328, average=126 B".  The
 * average part is omitted when count is 0 (Statistic.__str__). */
size_t rcgc_fmt_statistic(char *buf, size_t cap, const char *key,
                          double size, long long count);

/* The same with the key given as a frame: "file.c:12: size=...". */
size_t rcgc_fmt_statistic_line(char *buf, size_t cap, const char *filename,
                               long lineno, double size, long long count);

/* A statistic difference (StatisticDiff.__str__):
 * "key: size=8173 KiB (+4428 KiB), count=71332 (+39369), average=117 B". */
size_t rcgc_fmt_statistic_diff(char *buf, size_t cap, const char *key,
                               double size, double size_diff,
                               long long count, long long count_diff);

/* A trace (Trace.__str__): "key: 12 B". */
size_t rcgc_fmt_trace(char *buf, size_t cap, const char *key, double size);

/* The first line Traceback.format() gives a frame:
 * '  File "file.c", line 12'. */
size_t rcgc_fmt_file_line(char *buf, size_t cap, const char *filename, long lineno);

/* Python's str.strip() for ASCII text: the bytes " \t\n\r\v\f" and
 * \x1c-\x1f are removed at both ends.  Returns the start, *len the length. */
const char *rcgc_fmt_strip(const char *s, size_t n, size_t *len);

/*
 * A line cache (Python's linecache): source lines by filename and number,
 * for Traceback.format().  Files are read once, whole, and kept until the
 * cache is freed; lines end at "\n", "\r\n" or "\r".  A file that cannot be
 * read is remembered as empty.  Not thread-safe.
 */
typedef struct rcgc_linecache rcgc_linecache;

/* NULL on out of memory. */
rcgc_linecache *rcgc_linecache_new(void);
void rcgc_linecache_free(rcgc_linecache *lc);
/* Line `lineno` (1-based) of `filename` without its line ending, stripped
 * as Python's str.strip() does; *len gets its length.  Returns NULL (and
 * *len = 0) when the file cannot be read or has no such line.  The text
 * stays valid until the cache is freed. */
const char *rcgc_linecache_getline(rcgc_linecache *lc, const char *filename,
                                   long lineno, size_t *len);

/* Write the lines Traceback.format() gives one frame to `out`, each
 * followed by "\n": the File line, then "    <source>" when the source line
 * is known and not blank.  lc may be NULL (no source lines).  Returns the
 * number of lines written (1 or 2). */
int rcgc_fmt_print_frame(FILE *out, rcgc_linecache *lc, const char *filename,
                         long lineno);

#endif /* RCGC_TMFORMAT_H */
