/*
 * preload.h - the inside of librcgc-prof.so, the library `rcgc-prof run`
 * preloads into the profiled program.  Shared by preload.c (the malloc-family
 * hooks and the per-stack aggregate) and preload_out.c (the sampler thread,
 * the capture writer, exit/fork/signal handling).
 *
 * Nothing here may call the program's malloc on a traced path: memory comes
 * from mmap, and any allocation made by a library we call (dlsym, libunwind,
 * pthread_create) happens with the thread's reentrancy guard set, so it goes
 * straight to the real allocator untraced.
 */
#ifndef RCGC_PROF_PRELOAD_H
#define RCGC_PROF_PRELOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "format.h"

#define PF_TLS __attribute__((tls_model("initial-exec")))
#define PF_HIDDEN __attribute__((visibility("hidden")))
#define PF_LIKELY(x) __builtin_expect(!!(x), 1)
#define PF_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* One distinct stack and its statistics.
 * Invariants (under pf.lock):
 *   S1  st[LIVE_*] == blocks/bytes allocated from this stack and not freed;
 *   S2  peak_gen == pf.gen  =>  st[PEAK_*] is the stack's live value at the
 *       latest heap peak; otherwise its live value has not changed since that
 *       peak, so st[LIVE_*] is.  (Snapshots are taken lazily, on the first
 *       change after a peak, so reaching a new peak costs O(1).)
 *   S3  frames[frames_off .. frames_off+nframes) never change once the
 *       stack is published (n_stacks incremented after they are written). */
struct pf_stack {
    uint64_t hash;
    uint64_t peak_gen;
    uint32_t frames_off;
    uint32_t nframes;
    uint64_t st[RCGC_PROF_NSTATS];
};

/* Process-wide totals, also under pf.lock.
 *   T1  cur_bytes == sum of st[LIVE_BYTES]; peak_bytes == max over time. */
struct pf_totals {
    uint64_t alloc_calls, free_calls, alloc_bytes, temp_calls;
    uint64_t cur_bytes, cur_count, peak_bytes;
    uint64_t peak_ms; /* time of the peak, to the sampler's resolution */
};

struct pf_sample {
    uint64_t t_ms, rss, heap;
};

struct pf_state {
    int lock;                  /* spinlock over stacks and totals */
    int ready;                 /* 0 none, 1 initializing, 2 tracing */
    struct pf_stack *stacks;   /* dense, index = stack id; id 0 = "overflow" */
    uint32_t n_stacks, cap_stacks;
    uintptr_t *frames;
    uint32_t n_frames, cap_frames;
    uint32_t *index;           /* open addressing: stack id, 0 = empty */
    uint32_t index_mask;
    uint64_t gen;              /* heap-peak generation (S2) */
    struct pf_totals tot;
    /* configuration */
    int nframes;               /* frames kept per stack */
    int interval_ms;
    int slow_unwind;           /* unwind=libunwind: no rule cache (a check) */
    pid_t root_pid;
    char out[4096];
    /* timeline, written by the sampler only */
    struct pf_sample *samples;
    uint32_t n_samples, cap_samples, stride; /* keep every stride-th tick */
    volatile uint64_t now_ms;  /* ms since start, updated by the sampler */
    uint64_t t0_ns;            /* CLOCK_MONOTONIC at start */
    uint64_t start_unix_ns;
    uint64_t peak_rss;
    pid_t pid, parent_pid;
    int need_sampler;          /* start the sampler on the next traced call */
    int final_done;            /* a final capture was written */
};

extern struct pf_state pf PF_HIDDEN;
extern __thread int pf_guard PF_TLS PF_HIDDEN;

void pf_lock(void) PF_HIDDEN;
void pf_unlock(void) PF_HIDDEN;
/* Take the lock, giving up after about `ms` milliseconds; 1 if taken. */
int pf_trylock_for(int *lock, int ms) PF_HIDDEN;
uint64_t pf_now_ns(void) PF_HIDDEN;
void *pf_map(size_t size) PF_HIDDEN;

/* unwind.c: the stack of pf_unwind's caller, outermost last; out[0] is
 * the return address into the caller itself.  Returns the frame count.
 * When the same stack was seen just before from the same place, out is not
 * filled and *cached_id gives its stack id; otherwise *cached_id is
 * UINT32_MAX and the caller, once it knows the id, calls pf_unwind_commit. */
int pf_unwind(uintptr_t *out, int max, uint32_t *cached_id) PF_HIDDEN;
void pf_unwind_commit(uint32_t id) PF_HIDDEN;
int pf_unwind_init(void) PF_HIDDEN;

/* preload_out.c */
void pf_out_init(void) PF_HIDDEN;        /* constructor part: sampler, signals, atfork */
void pf_start_sampler(void) PF_HIDDEN;
/* Write the capture (see format.h).  state is an rcgc_prof_state; code the
 * exit status or signal.  in_signal: use only async-signal-safe paths. */
void pf_write_capture(int state, int code, int in_signal) PF_HIDDEN;
/* Called by the hooks in a forked child (pf.lock released). */
void pf_child_reset(void) PF_HIDDEN;
void pf_cs_child(void) PF_HIDDEN; /* preload.c: the biased lock after fork */

#endif
