/*
 * unwind.c - frame-pointer stack walking and the built-in symbolizer
 * (contracts in src/internal/unwind.h).  Needs only libc (pthread and
 * dladdr live in glibc itself since 2.34).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "unwind.h"

/* This thread's stack [lo, hi); both 0 until known, hi == 1 when unknown. */
static _Thread_local uintptr_t stack_lo, stack_hi;

static int stack_bounds(uintptr_t *lo, uintptr_t *hi)
{
    if (stack_hi == 0) {
        pthread_attr_t attr;
        void *addr = NULL;
        size_t size = 0;
        stack_hi = 1;
        if (pthread_getattr_np(pthread_self(), &attr) == 0) {
            if (pthread_attr_getstack(&attr, &addr, &size) == 0 && size > 0) {
                stack_lo = (uintptr_t)addr;
                stack_hi = (uintptr_t)addr + size;
            }
            pthread_attr_destroy(&attr);
        }
    }
    *lo = stack_lo;
    *hi = stack_hi;
    return stack_hi > 1;
}

/* The next frame pointer, or 0 when the chain leaves the stack or does not
 * go up (frames live at increasing addresses). */
static inline uintptr_t next_fp(uintptr_t fp, uintptr_t lo, uintptr_t hi)
{
    if (fp < lo || fp > hi - 2 * sizeof(void *) || (fp & (sizeof(void *) - 1)))
        return 0;
    uintptr_t next = *(const uintptr_t *)fp;
    if (next <= fp || next >= hi)
        return 0;
    return next;
}

int rcgc_unwind_fp(uintptr_t fp, int skip, uintptr_t *pcs, int max, int *depth)
{
    uintptr_t lo, hi;
    *depth = 0;
    if (!stack_bounds(&lo, &hi))
        return 0;
    int n = 0, seen = 0;
    for (int i = 0; fp != 0; i++) {
        if (fp < lo || fp > hi - 2 * sizeof(void *))
            break;
        uintptr_t pc = ((const uintptr_t *)fp)[1];
        if (pc == 0)
            break;
        if (i >= skip) {
            if (n < max)
                pcs[n++] = pc;
            if (++seen >= 65535)
                break;
        }
        fp = next_fp(fp, lo, hi);
    }
    *depth = seen;
    return n;
}

int rcgc_unwind_find(uintptr_t fp, uintptr_t target)
{
    uintptr_t lo, hi;
    if (!stack_bounds(&lo, &hi))
        return -1;
    for (int i = 0; i < 256 && fp != 0; i++) {
        if (fp == target)
            return i;
        fp = next_fp(fp, lo, hi);
    }
    return -1;
}

long rcgc_unwind_find_slot(uintptr_t fp, uintptr_t target)
{
    uintptr_t lo, hi;
    if (!stack_bounds(&lo, &hi) || fp < lo || target > hi || target <= fp ||
        target - fp > 65536)
        return -1;
    fp &= ~(uintptr_t)(sizeof(void *) - 1);
    for (uintptr_t a = target - sizeof(void *); a >= fp; a -= sizeof(void *))
        if (*(const uintptr_t *)a == target)
            return (long)(a - fp);
    return -1;
}

uintptr_t rcgc_unwind_load(uintptr_t fp, long off)
{
    uintptr_t lo, hi;
    if (!stack_bounds(&lo, &hi))
        return 0;
    uintptr_t a = fp + (uintptr_t)off;
    if (a < lo || a > hi - sizeof(void *) || (a & (sizeof(void *) - 1)))
        return 0;
    return *(const uintptr_t *)a;
}

int rcgc_unwind_dladdr(uintptr_t pc, char *buf, size_t cap, const char **function)
{
    Dl_info info;
    *function = NULL;
    /* pc is a return address: the call instruction ends just before it. */
    if (dladdr((void *)(pc - 1), &info) == 0 || info.dli_fname == NULL) {
        snprintf(buf, cap, "<0x%lx>", (unsigned long)pc);
        return 0;
    }
    *function = info.dli_sname;
    const char *base = strrchr(info.dli_fname, '/');
    base = base ? base + 1 : info.dli_fname;
    snprintf(buf, cap, "<%s+0x%lx>", base, (unsigned long)(pc - (uintptr_t)info.dli_fbase));
    return 1;
}
