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
