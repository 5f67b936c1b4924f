/*
 * unwind.h - native stack capture for tracemalloc, libc only.
 *
 * Frame-pointer walking: each frame holds [fp] = the caller's fp and
 * [fp + sizeof(void *)] = the return address (x86-64 and AArch64 alike).
 * Every fp read is checked against the calling thread's stack bounds, so a
 * broken chain (code built without frame pointers that used the register
 * for data) ends the walk instead of faulting.
 */
#ifndef RCGC_UNWIND_H
#define RCGC_UNWIND_H

#include <stddef.h>
#include <stdint.h>

/* Walk from fp (a frame pointer of the calling thread): skip `skip` frames,
 * then store up to `max` return addresses in pcs.  *depth receives the
 * number of frames after the skipped ones (stored or not), counted up to
 * 65535.  Returns the number stored (0 when fp is not on this thread's
 * stack).  Never faults. */
int rcgc_unwind_fp(uintptr_t fp, int skip, uintptr_t *pcs, int max, int *depth);

/* A recorded walk (rcgc_unwind_walk), to tell cheaply whether a later walk
 * from the same frame would read exactly the same chain
 * (rcgc_unwind_same): the frame pointers are known, so the check loads
 * every link independently instead of chasing them one after the other.
 * Same chain words + same stack bounds = same walk, frame for frame. */
#define RCGC_UNWIND_MEMO 128
typedef struct rcgc_unwind_memo {
    uintptr_t lo, hi;            /* the stack bounds of the walk */
    int n;                       /* frames walked (skipped ones included);
                                  * 0: nothing to compare with */
    int skip;
    int end_zero;                /* the walk ended on a zero return address
                                  * in the frame at end_word */
    uintptr_t end_word;          /* the last frame's saved frame pointer */
    uintptr_t fps[RCGC_UNWIND_MEMO];
    uintptr_t pcs[RCGC_UNWIND_MEMO];
} rcgc_unwind_memo;

/* rcgc_unwind_fp with skip + max <= RCGC_UNWIND_MEMO, recording the walk
 * in *m (m->n = 0 when the chain was too long to record).  The return
 * addresses after the skipped frames are m->pcs[skip ..]: returns how many
 * of them (<= max) and their full count in *depth (up to 65535). */
int rcgc_unwind_walk(uintptr_t fp, int skip, int max, int *depth, rcgc_unwind_memo *m);

/* Non-zero when walking from fp with `skip` would repeat the walk recorded
 * in *m exactly (same frames, same return addresses, same end).  Never
 * faults: it reads only where the recorded walk read, on this thread's
 * stack. */
int rcgc_unwind_same(uintptr_t fp, int skip, const rcgc_unwind_memo *m);

/* The index of the frame whose frame pointer is `target` in the chain that
 * starts at fp (0 = fp itself), or -1 when the chain does not reach it
 * within 256 frames. */
int rcgc_unwind_find(uintptr_t fp, uintptr_t target);

/* The offset from fp of the highest stack word in [fp, target) that holds
 * the value `target`, or -1.  Used to find where code built without frame
 * pointers saved its caller's frame pointer (see tracemalloc.c,
 * "calibration"). */
long rcgc_unwind_find_slot(uintptr_t fp, uintptr_t target);

/* The word at fp + off when that address lies in this thread's stack,
 * else 0. */
uintptr_t rcgc_unwind_load(uintptr_t fp, long off);

/* Built-in symbolization (dladdr): the module holding pc and pc's offset
 * in it written as "<module+0x1234>" into buf; 0 when unknown.  function
 * receives the nearest exported symbol or NULL. */
int rcgc_unwind_dladdr(uintptr_t pc, char *buf, size_t cap, const char **function);

#endif
