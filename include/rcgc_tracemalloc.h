/*
 * rcgc_tracemalloc.h - Python's tracemalloc for rcgc: which line (or stack)
 * allocated every live block, snapshots, statistics, diffs, filters, and a
 * compact dump format.
 *
 * Python                                  rcgc
 * --------------------------------------  -----------------------------------
 * tracemalloc.start(nframe=1)             rcgc_tracemalloc_start(rt, nframe)
 * tracemalloc.stop()                      rcgc_tracemalloc_stop(rt)
 * is_tracing(), clear_traces()            rcgc_tracemalloc_is_tracing/clear_traces
 * get_traceback_limit()                   rcgc_tracemalloc_get_traceback_limit
 * get_traced_memory() -> (current, peak)  rcgc_tracemalloc_get_traced_memory
 * reset_peak(), get_tracemalloc_memory()  rcgc_tracemalloc_reset_peak/_get_tracemalloc_memory
 * get_object_traceback(obj)               rcgc_tracemalloc_get_object_traceback
 * PyTraceMalloc_Track/Untrack             rcgc_tracemalloc_track/untrack
 * take_snapshot()                         rcgc_tracemalloc_take_snapshot
 * Snapshot.statistics(key, cumulative)    rcgc_snapshot_statistics
 * Snapshot.compare_to(old, key, cum.)     rcgc_snapshot_compare_to
 * Snapshot.filter_traces(filters)         rcgc_snapshot_filter_traces
 * Snapshot.traces, traceback_limit        rcgc_snapshot_len/_trace/_traceback_limit
 * Snapshot.dump(f), Snapshot.load(f)      rcgc_snapshot_dump/_load (docs/tracemalloc.md)
 * str(Statistic), str(StatisticDiff) ...  rcgc_statistic_str, rcgc_statistic_diff_str ...
 * Traceback.format(limit, most_recent_first)  rcgc_traceback_format
 *
 * What is traced: every block of the three rcgc domains (trace domain 0, as
 * CPython traces all of PyMem_* and PyObject_* in domain 0), plus whatever a
 * program declares with rcgc_tracemalloc_track() in any domain.  While
 * tracing is off, allocations do not pass through the tracer at all.
 *
 * Frames come from one of three sources (rcgc_tracemalloc_set_frame_source):
 *   call sites   the __FILE__:__LINE__ the allocating macros pass: free, one
 *                frame (the default);
 *   native       the C stack, unwound at allocation by frame pointers (or by
 *                libgcc's unwinder), symbolized to file:line only when a
 *                snapshot is taken (rcgc_tracemalloc_set_symbolizer; the
 *                rcgc_symbolize library does it with libdw);
 *   callback     frames an interpreter built on rcgc supplies, so that it
 *                traces its own source lines as CPython traces Python lines.
 * Identical tracebacks are stored once (interned).
 *
 * Memory: tracing's own tables come from libc's malloc, never from the
 * traced domains; rcgc_tracemalloc_get_tracemalloc_memory() reports them.
 * Snapshots, statistics and tracebacks returned to the caller are
 * independent of the runtime (they may outlive it) and are freed with their
 * own *_free function.
 *
 * Threads: the rcgc_tracemalloc_* calls follow the runtime's rule (one
 * thread at a time).  Snapshot objects are immutable once made: any number
 * of threads may read one at the same time.
 */
#ifndef RCGC_TRACEMALLOC_H
#define RCGC_TRACEMALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rcgc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest traceback limit (CPython's, UINT16_MAX). */
#define RCGC_TRACEMALLOC_MAX_NFRAME 65535

/* The trace domain of every block rcgc allocates (CPython's
 * DEFAULT_DOMAIN = 0). */
#define RCGC_TRACE_DOMAIN_DEFAULT 0u

/* ------------------------------------------------------------------------ */
/* Frames and tracebacks                                                    */
/* ------------------------------------------------------------------------ */

/* A frame: a source file and a line (Python's tracemalloc.Frame).  When the
 * frame is unknown the filename is "<unknown>" and lineno 0, as in CPython. */
typedef struct rcgc_frame {
    const char *filename;
    int lineno;
} rcgc_frame;

/*
 * A traceback (tracemalloc.Traceback): a read-only sequence of frames,
 * indexed as Python indexes it, 0 = the OLDEST frame, len-1 = the most
 * recent (where the allocation happened).  Its text form is that of its
 * frame 0, exactly as str(Traceback) in Python.
 */
typedef struct rcgc_traceback rcgc_traceback;

RCGC_API size_t rcgc_traceback_len(const rcgc_traceback *tb);
/* Frame i (0 = oldest); the strings live as long as the traceback's owner.
 * i must be < rcgc_traceback_len(tb). */
RCGC_API rcgc_frame rcgc_traceback_frame(const rcgc_traceback *tb, size_t i);
/* The number of frames the stack had before it was cut to the traceback
 * limit (Traceback.total_nframe), or -1 when unknown (Python's None: the
 * grouped tracebacks of statistics have none). */
RCGC_API long rcgc_traceback_total_nframe(const rcgc_traceback *tb);
/* The function name of frame i when the frame is native and a symbolizer
 * gave one; NULL otherwise. */
RCGC_API const char *rcgc_traceback_function(const rcgc_traceback *tb, size_t i);
/* Compare like Python compares Tracebacks (frames oldest first, each frame
 * by filename then lineno; a prefix sorts first): <0, 0, >0. */
RCGC_API int rcgc_traceback_compare(const rcgc_traceback *a, const rcgc_traceback *b);

/* Python's "no limit" for rcgc_traceback_format. */
#define RCGC_TRACEBACK_NO_LIMIT (-2147483647 - 1)

/*
 * Traceback.format(limit, most_recent_first) written to `out`, one line per
 * list item, each followed by "\n":
 *     '  File "file.c", line 12'
 *     '    <the source line, stripped>'     (when the file can be read)
 * limit > 0 keeps the `limit` most recent frames, limit < 0 drops the
 * -limit most recent ones and limit 0 keeps none (Python's self[:limit]);
 * RCGC_TRACEBACK_NO_LIMIT keeps all.  Source files are read relative to the current directory.
 * Returns the number of lines written.
 */
RCGC_API size_t rcgc_traceback_format(const rcgc_traceback *tb, int limit,
                                      int most_recent_first, FILE *out);

/* str(traceback) (its frame 0) into buf, snprintf-style: returns the full
 * length; buf is always NUL-terminated when cap > 0. */
RCGC_API size_t rcgc_traceback_str(const rcgc_traceback *tb, char *buf, size_t cap);

/* Free a traceback returned by rcgc_tracemalloc_get_object_traceback or
 * rcgc_tracemalloc_get_traceback (not one owned by a snapshot). */
RCGC_API void rcgc_traceback_free(rcgc_traceback *tb);

/* ------------------------------------------------------------------------ */
/* The tracemalloc module                                                   */
/* ------------------------------------------------------------------------ */

/*
 * Start tracing every allocation of the runtime, storing at most `nframe`
 * frames per traceback (1..65535; RCGC_EINVAL otherwise).  When tracing is
 * already on, only the limit changes (as in CPython).  RCGC_ENOMEM when the
 * tables cannot be allocated (tracing stays off).  Setting the environment
 * variable RCGC_TRACEMALLOC=N starts it with N frames when a runtime is
 * created (rcgc_config.tracemalloc_frames does the same).
 */
RCGC_API int rcgc_tracemalloc_start(rcgc_runtime *rt, int nframe);
/* Stop tracing and clear every trace and traceback; allocations no longer
 * pass through the tracer.  Snapshots already taken are unaffected. */
RCGC_API void rcgc_tracemalloc_stop(rcgc_runtime *rt);
RCGC_API int rcgc_tracemalloc_is_tracing(const rcgc_runtime *rt);
/* Forget every trace (tracing goes on; blocks allocated before are no
 * longer traced). */
RCGC_API void rcgc_tracemalloc_clear_traces(rcgc_runtime *rt);
/* The nframe given to start (1 before the first start, as in CPython). */
RCGC_API int rcgc_tracemalloc_get_traceback_limit(const rcgc_runtime *rt);
/* Bytes of the traced blocks now, and their highest value since tracing
 * started or the last reset_peak (0, 0 when not tracing).  Either pointer
 * may be NULL. */
RCGC_API void rcgc_tracemalloc_get_traced_memory(const rcgc_runtime *rt,
                                                 size_t *current, size_t *peak);
/* Set the peak to the current traced size. */
RCGC_API void rcgc_tracemalloc_reset_peak(rcgc_runtime *rt);
/* Bytes tracing itself uses now (its tables: traces, tracebacks, frames,
 * filenames), 0 when never started. */
RCGC_API size_t rcgc_tracemalloc_get_tracemalloc_memory(const rcgc_runtime *rt);

/* Where obj was allocated: a new traceback (free it with
 * rcgc_traceback_free), or NULL when tracing is off, the object's
 * allocation was not traced, or out of memory.  Works for every rcgc
 * object, pooled or not. */
RCGC_API rcgc_traceback *rcgc_tracemalloc_get_object_traceback(const rcgc_object *obj);
/* The same for any traced block: `ptr` as the domain handed it out
 * (CPython's _tracemalloc._get_traceback / PyTraceMalloc_GetTraceback). */
RCGC_API rcgc_traceback *rcgc_tracemalloc_get_traceback(rcgc_runtime *rt,
                                                        unsigned domain,
                                                        uintptr_t ptr);

/*
 * Trace a block that rcgc did not allocate (PyTraceMalloc_Track): a GPU
 * buffer, an mmap, memory of another allocator.  `domain` separates address
 * spaces (0 is rcgc's own); tracking an address already traced in the domain
 * replaces its trace.  The traceback is taken now, from the current frame
 * source.  Returns 0, -2 when tracing is off, -1 when out of memory
 * (CPython's values).
 */
RCGC_API int rcgc_tracemalloc_track(rcgc_runtime *rt, unsigned domain,
                                    uintptr_t ptr, size_t size);
/* Forget a block tracked by rcgc_tracemalloc_track (PyTraceMalloc_Untrack).
 * Returns 0 (also when the block was not traced) or -2 when tracing is off. */
RCGC_API int rcgc_tracemalloc_untrack(rcgc_runtime *rt, unsigned domain,
                                      uintptr_t ptr);

/* --------------------------------------------------------- frame sources */

typedef enum rcgc_frame_source {
    RCGC_FRAMES_CALL_SITE = 0,  /* __FILE__:__LINE__ of the allocating call */
    RCGC_FRAMES_NATIVE = 1,     /* the call site, then the native stack */
    RCGC_FRAMES_CALLBACK = 2    /* frames from rcgc_tracemalloc_set_frames_callback */
} rcgc_frame_source;

/*
 * Choose where frames come from, for allocations from now on (tracebacks
 * already recorded keep theirs).  RCGC_FRAMES_NATIVE records the call site
 * as the most recent frame, then the return addresses of the callers above
 * it (up to the traceback limit), by frame pointers: build the program with
 * -fno-omit-frame-pointer for full stacks.  RCGC_FRAMES_CALLBACK without a
 * callback is RCGC_EINVAL.  Returns RCGC_OK.
 */
RCGC_API int rcgc_tracemalloc_set_frame_source(rcgc_runtime *rt, rcgc_frame_source src);
RCGC_API rcgc_frame_source rcgc_tracemalloc_get_frame_source(const rcgc_runtime *rt);

/*
 * An interpreter's frames: fill frames[0..max) most recent first and
 * return how many were written (0 means "no interpreter frame": the C call
 * site is used).  *total receives how many frames the interpreter's stack
 * has in all (>= the count written; used for total_nframe).  The filename
 * strings must stay valid and unchanged until tracing stops (CPython holds
 * its code objects' filenames the same way); intern them.  The callback
 * must not allocate through the traced runtime (allocations it makes are
 * not traced, and the frames of a nested call are not asked for).
 */
typedef int (*rcgc_frames_fn)(void *arg, rcgc_frame *frames, int max, int *total);
/* Register (or with fn NULL, remove) the interpreter's frame callback and
 * switch the frame source to RCGC_FRAMES_CALLBACK (back to call sites when
 * removed). */
RCGC_API int rcgc_tracemalloc_set_frames_callback(rcgc_runtime *rt,
                                                  rcgc_frames_fn fn, void *arg);

/*
 * A symbolizer turns a native return address into a frame.  It fills *out
 * and returns 1, or returns 0 when it knows nothing of pc.  Strings it gives
 * need only stay valid until the next call (they are copied).  pc is a
 * return address: the call is at pc - 1.
 */
typedef struct rcgc_symbol {
    const char *function;   /* may be NULL */
    const char *filename;   /* may be NULL: then the module's path is used */
    int lineno;             /* 0 when unknown */
} rcgc_symbol;
typedef int (*rcgc_symbolize_fn)(void *arg, uintptr_t pc, rcgc_symbol *out);
/* Set the process-wide symbolizer (NULL for the built-in one, which names
 * only the module and offset, as "<module+0x1234>", line 0).  Not
 * thread-safe: set it before taking snapshots. */
RCGC_API void rcgc_tracemalloc_set_symbolizer(rcgc_symbolize_fn fn, void *arg);

/* ------------------------------------------------------------------------ */
/* Snapshots                                                                */
/* ------------------------------------------------------------------------ */

typedef struct rcgc_snapshot rcgc_snapshot;

/* A trace: one traced block (tracemalloc.Trace). */
typedef struct rcgc_trace {
    unsigned domain;
    size_t size;
    const rcgc_traceback *traceback;   /* owned by the snapshot */
} rcgc_trace;

/*
 * Copy the traces into a new snapshot (take_snapshot()).  Native frames are
 * symbolized now.  RCGC_ESTATE when not tracing (CPython raises
 * RuntimeError), RCGC_ENOMEM on out of memory; *out is NULL then.
 */
RCGC_API int rcgc_tracemalloc_take_snapshot(rcgc_runtime *rt, rcgc_snapshot **out);
RCGC_API void rcgc_snapshot_free(rcgc_snapshot *s);

/* Snapshot.traceback_limit. */
RCGC_API int rcgc_snapshot_traceback_limit(const rcgc_snapshot *s);
/* len(snapshot.traces). */
RCGC_API size_t rcgc_snapshot_len(const rcgc_snapshot *s);
/* snapshot.traces[i] (in no particular order, like CPython's); i < len. */
RCGC_API rcgc_trace rcgc_snapshot_trace(const rcgc_snapshot *s, size_t i);
/* Sum of the sizes of all traces. */
RCGC_API size_t rcgc_snapshot_total_size(const rcgc_snapshot *s);
/* str(trace): "file.c:12: 48 B" (its traceback's frame 0). */
RCGC_API size_t rcgc_trace_str(const rcgc_trace *t, char *buf, size_t cap);

/* statistics() and compare_to() keys. */
typedef enum rcgc_stat_key {
    RCGC_KEY_FILENAME = 0,   /* 'filename' */
    RCGC_KEY_LINENO = 1,     /* 'lineno' */
    RCGC_KEY_TRACEBACK = 2   /* 'traceback' */
} rcgc_stat_key;

/* A Statistic: the blocks allocated at one key. */
typedef struct rcgc_statistic {
    const rcgc_traceback *traceback;   /* owned by the list */
    size_t size;
    size_t count;
} rcgc_statistic;

/* A StatisticDiff: a key's blocks now and their change since the old
 * snapshot. */
typedef struct rcgc_statistic_diff {
    const rcgc_traceback *traceback;   /* owned by the list */
    size_t size;
    long long size_diff;
    size_t count;
    long long count_diff;
} rcgc_statistic_diff;

/* A sorted list of statistics (or of statistic differences). */
typedef struct rcgc_stats rcgc_stats;

/*
 * Snapshot.statistics(key, cumulative): one statistic per distinct key,
 * sorted as CPython sorts them (biggest size first, then count, then
 * traceback, all descending).  With `cumulative`, every frame of a
 * traceback counts the trace (only with FILENAME and LINENO keys:
 * RCGC_EINVAL with TRACEBACK, as CPython's ValueError).  Returns RCGC_OK,
 * RCGC_EINVAL or RCGC_ENOMEM; *out is NULL on error.
 */
RCGC_API int rcgc_snapshot_statistics(const rcgc_snapshot *s, rcgc_stat_key key,
                                      int cumulative, rcgc_stats **out);
/*
 * new_snapshot.compare_to(old_snapshot, key, cumulative): a list of
 * statistic differences sorted by CPython's rule (absolute size change,
 * size, absolute count change, count, traceback; descending).  Keys found
 * only in old appear with size 0 and negative differences.
 */
RCGC_API int rcgc_snapshot_compare_to(const rcgc_snapshot *new_snapshot,
                                      const rcgc_snapshot *old_snapshot,
                                      rcgc_stat_key key, int cumulative,
                                      rcgc_stats **out);
RCGC_API size_t rcgc_stats_len(const rcgc_stats *st);
/* Item i of a statistics() list (NULL if out of range or a diff list). */
RCGC_API const rcgc_statistic *rcgc_stats_get(const rcgc_stats *st, size_t i);
/* Item i of a compare_to() list (NULL if out of range or not a diff list). */
RCGC_API const rcgc_statistic_diff *rcgc_stats_get_diff(const rcgc_stats *st, size_t i);
RCGC_API void rcgc_stats_free(rcgc_stats *st);

/* str(Statistic): "file.c:12: size=4855 KiB, count=39328, average=126 B". */
RCGC_API size_t rcgc_statistic_str(const rcgc_statistic *s, char *buf, size_t cap);
/* str(StatisticDiff):
 * "file.c:12: size=8173 KiB (+4428 KiB), count=71332 (+39369), average=117 B". */
RCGC_API size_t rcgc_statistic_diff_str(const rcgc_statistic_diff *d, char *buf,
                                        size_t cap);
/* Print item i of a list as str() does, with a newline. */
RCGC_API void rcgc_stats_print(const rcgc_stats *st, size_t i, FILE *out);

/*
 * A filter (tracemalloc.Filter, or DomainFilter when filename_pattern is
 * NULL).
 *   inclusive         1: keep matching traces; 0: drop them.
 *   filename_pattern  fnmatch pattern ('*' '?' '[...]'; CPython's rules);
 *                     NULL makes a DomainFilter (only the domain counts).
 *   lineno            the line to match, or -1 for any (Python's None).
 *   all_frames        match any frame of the traceback, not only the most
 *                     recent one.
 *   has_domain/domain restrict to one trace domain (Python's domain=None when
 *                     has_domain is 0).  A DomainFilter needs has_domain.
 */
typedef struct rcgc_filter {
    int inclusive;
    const char *filename_pattern;
    int lineno;
    int all_frames;
    int has_domain;
    unsigned domain;
} rcgc_filter;

/*
 * Snapshot.filter_traces(filters): a new snapshot with the traces that pass
 * every exclusive filter and, when there is at least one inclusive filter,
 * at least one inclusive filter.  n == 0 copies the snapshot.  RCGC_EINVAL
 * for a DomainFilter without a domain; RCGC_ENOMEM.
 */
RCGC_API int rcgc_snapshot_filter_traces(const rcgc_snapshot *s,
                                         const rcgc_filter *filters, size_t n,
                                         rcgc_snapshot **out);

/* ---------------------------------------------------------- dump / load */

/*
 * Write the snapshot to `path` in rcgc's snapshot format (docs/tracemalloc.md,
 * "The dump format": versioned, checksummed, strings and tracebacks stored
 * once, numbers as varints).  RCGC_OK, RCGC_EIO (errno tells why) or
 * RCGC_ENOMEM.
 */
RCGC_API int rcgc_snapshot_dump(const rcgc_snapshot *s, const char *path);
/* The same into a new malloc'ed buffer (*data, *size); free() it. */
RCGC_API int rcgc_snapshot_dump_buffer(const rcgc_snapshot *s, void **data, size_t *size);
/*
 * Read a snapshot written by rcgc_snapshot_dump.  A truncated, corrupted or
 * foreign file gives RCGC_EFORMAT (RCGC_EIO when it cannot be read), never a
 * crash; when `err` is non-NULL it receives a one-line explanation
 * ("truncated file", "checksum mismatch", ...).  *out is NULL on error.
 */
RCGC_API int rcgc_snapshot_load(const char *path, rcgc_snapshot **out,
                                char *err, size_t errcap);
RCGC_API int rcgc_snapshot_load_buffer(const void *data, size_t size,
                                       rcgc_snapshot **out, char *err,
                                       size_t errcap);

#ifdef __cplusplus
}
#endif

#endif /* RCGC_TRACEMALLOC_H */
