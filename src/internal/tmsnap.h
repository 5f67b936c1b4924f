/*
 * tmsnap.h - the snapshot's data, shared by tracemalloc.c (which takes
 * snapshots), snapshot.c (statistics, compare_to, filters) and tmdump.c
 * (dump and load).
 *
 * A snapshot is a list of traces over a table of interned values:
 *
 *   strings     filenames and function names, each stored once
 *   frames      unique (filename, lineno); function names ride along
 *   tracebacks  unique (frame sequence, total_nframe); frames most recent
 *               first, as CPython's _tracemalloc stores them
 *   traces      (domain, traceback, size)
 *
 * Invariants (tm_tables_check verifies them; the loader relies on it):
 *   T1  two frames are equal (same filename text and lineno) iff same id;
 *       frame[i].fname is the id of its filename text, and equal filename
 *       texts have equal fname ids.
 *   T2  every traceback has 1 <= nframe frames, each id < nframes.
 *   T3  tb.canon is the smallest id of a traceback with the same frame
 *       sequence (total_nframe may differ); Python compares tracebacks by
 *       their frames only, so canon ids are the 'traceback' grouping key.
 *   T4  fname_rank orders filenames as Python orders str (code points,
 *       which strcmp on UTF-8 gives): rank[a] < rank[b] iff strcmp < 0.
 *   T5  every trace's tb < ntb.
 * Tables are immutable once built and shared (refcounted) by a snapshot,
 * the snapshots filter_traces makes from it, and statistics lists.
 */
#ifndef RCGC_TMSNAP_H
#define RCGC_TMSNAP_H

#include <stddef.h>
#include <stdint.h>

#include "rcgc_tracemalloc.h"

typedef struct tm_sframe {
    const char *filename;
    const char *function;   /* NULL when unknown */
    int lineno;
    uint32_t fname;         /* filename id (T1) */
} tm_sframe;

/* The public traceback: a view into a frame table. */
struct rcgc_traceback {
    const tm_sframe *ftab;     /* the frame table its ids index */
    const uint32_t *frames;    /* [nframe] frame ids, most recent first */
    uint32_t nframe;
    int32_t total_nframe;      /* -1: None */
    uint32_t canon;            /* T3 (snapshot tracebacks only) */
    uint32_t owned;            /* standalone: one malloc block, freed by
                                  rcgc_traceback_free */
};

typedef struct tm_tables {
    size_t refcnt;
    char *strings;             /* all string bytes, NUL-terminated each */
    size_t strings_len;
    size_t nfilenames;
    const char **filenames;    /* [nfilenames] */
    uint32_t *fname_rank;      /* [nfilenames] T4 */
    size_t nframes;
    tm_sframe *frames;
    size_t ntb;
    rcgc_traceback *tbs;
    uint32_t *frame_ids;       /* storage of every traceback's ids */
    size_t nframe_ids;
} tm_tables;

typedef struct tm_strace {
    uint64_t size;
    uint32_t domain;
    uint32_t tb;
} tm_strace;

struct rcgc_snapshot {
    tm_tables *t;
    int traceback_limit;
    size_t ntraces;
    tm_strace *traces;
};

/* ------------------------------------------------------------- builder */

/* Builds tm_tables by interning strings, frames and tracebacks by
 * content.  Every call returns an id >= 0, or -1 on out of memory (the
 * builder stays valid and can be freed). */
typedef struct tm_builder tm_builder;

tm_builder *tmb_new(void);
void tmb_free(tm_builder *b);
/* A string of len bytes (no NUL inside: the caller checks). */
long tmb_string(tm_builder *b, const char *s, size_t len);
/* A frame; function is a string id or -1. */
long tmb_frame(tm_builder *b, long filename, int lineno, long function);
/* A traceback of n >= 1 frame ids, most recent first; total -1 for None. */
long tmb_traceback(tm_builder *b, const uint32_t *frames, size_t n, long total);
size_t tmb_ntracebacks(const tm_builder *b);
/* Turn the builder into tables (refcnt 1) and free it; NULL on out of
 * memory (the builder is freed either way). */
tm_tables *tmb_finish(tm_builder *b);

void tm_tables_release(tm_tables *t);
/* A snapshot over t (takes a reference); traces are adopted.  NULL on out
 * of memory (traces are freed then). */
rcgc_snapshot *tm_snapshot_new(tm_tables *t, int limit, tm_strace *traces, size_t n);

/* Compare two frames as Python compares Frame tuples (filename, lineno). */
int tm_frame_cmp(const tm_sframe *a, const tm_sframe *b);

/* The loader's cap on the number of traces, so that a forged count cannot
 * ask for unbounded memory (runs let a few bytes describe many traces).
 * 2^27 by default; the fuzz targets lower it. */
extern uint64_t tm_load_max_traces;

/* 64-bit hash of bytes (also used by the tracer's tables). */
uint64_t tm_hash_bytes(const void *p, size_t n, uint64_t seed);
static inline uint64_t tm_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

#endif /* RCGC_TMSNAP_H */
