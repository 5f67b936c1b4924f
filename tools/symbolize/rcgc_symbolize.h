/*
 * rcgc_symbolize.h - symbolization of native frames with libdw (elfutils),
 * for rcgc's tracemalloc.  Link rcgc_symbolize (and libdw); the core itself
 * stays libc-only.
 *
 *   rcgc_symbolize_install();   // once, before taking snapshots
 *   rcgc_tracemalloc_set_frame_source(rt, RCGC_FRAMES_NATIVE);
 *   rcgc_tracemalloc_start(rt, 16);
 *
 * Frames then print as "src/file.c:123" (the call's line, from DWARF) with
 * the function name available through rcgc_traceback_function().  Code
 * without debug information falls back to "<module+0xoffset>", line 0.
 * Results are cached per address.  Not thread-safe (snapshots are taken by
 * the thread that owns the runtime).
 */
#ifndef RCGC_SYMBOLIZE_H
#define RCGC_SYMBOLIZE_H

#include <stdint.h>

#include "rcgc_tracemalloc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The symbolizer (an rcgc_symbolize_fn; arg is unused).  Returns 1 and
 * fills *out when pc is in a module of this process, 0 otherwise. */
int rcgc_symbolize_dw(void *arg, uintptr_t pc, rcgc_symbol *out);

/* Register rcgc_symbolize_dw with rcgc_tracemalloc_set_symbolizer. */
void rcgc_symbolize_install(void);

/* Drop the cache and the libdw session (after dlclose, or at exit). */
void rcgc_symbolize_reset(void);

#ifdef __cplusplus
}
#endif
#endif
