/*
 * capture.h - a capture file loaded into memory (the reader side of
 * format.h), and the symbolized view the reports work from.
 */
#ifndef RCGC_PROF_CAPTURE_H
#define RCGC_PROF_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "format.h"

struct prof_module {
    char *path;
    unsigned char *build_id;
    size_t build_id_len;
    uint64_t bias, lo, hi;
};

struct prof_stack {
    uint32_t nframes;
    uint64_t *frames; /* return addresses, innermost first */
    uint64_t st[RCGC_PROF_NSTATS];
};

struct prof_sample {
    uint64_t t_ms, rss, heap;
};

struct prof_capture {
    uint64_t pid, ppid, is_root, start_unix_ns, duration_ms, nframes, interval_ms, state;
    int64_t code;
    uint64_t alloc_calls, free_calls, alloc_bytes, temp_calls;
    uint64_t cur_bytes, cur_count, peak_bytes, peak_ms, peak_rss;
    char *exe;
    char *cmdline; /* arguments separated by spaces */
    struct prof_module *mods;
    size_t n_mods;
    struct prof_stack *stacks;
    size_t n_stacks;
    uint64_t *frame_pool;
    struct prof_sample *samples;
    size_t n_samples;
};

/* Parse a capture held in memory.  Returns 0, or -1 with a one-line reason
 * in err (never crashes, whatever the bytes).  *c is zeroed first; free it
 * with prof_capture_free in both cases. */
int prof_capture_parse(const unsigned char *data, size_t len, struct prof_capture *c,
                       char *err, size_t errcap);
/* Read and parse a file ("cannot open", "truncated", ... in err). */
int prof_capture_load(const char *path, struct prof_capture *c, char *err, size_t errcap);
void prof_capture_free(struct prof_capture *c);

/* ---- symbols (symbols.c) --------------------------------------------------- */

struct prof_frame {
    const char *func;   /* function name, or NULL */
    const char *file;   /* source file, or NULL */
    int line;           /* 0 if unknown */
    const char *module; /* module path, or NULL */
    uint64_t addr;      /* the return address as captured */
    uint64_t offset;    /* addr relative to the module's bias */
};

struct prof_symtab;
/* Symbolizes the capture's addresses with libdw, reading the modules it
 * recorded (and their separate debug info).  Never NULL. */
struct prof_symtab *prof_symtab_new(const struct prof_capture *c);
const struct prof_frame *prof_symbolize(struct prof_symtab *t, uint64_t addr);
/* "func" or "module+0xoff" or "0xaddr": a frame's name for flame graphs. */
const char *prof_frame_name(struct prof_symtab *t, const struct prof_frame *f);
/* Warnings collected while loading modules (build-id mismatch, missing file). */
void prof_symtab_warnings(struct prof_symtab *t, FILE *out);
void prof_symtab_free(struct prof_symtab *t);

#endif
