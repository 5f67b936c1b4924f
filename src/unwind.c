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

#if defined(__GNUC__) || defined(__clang__)
#define RCGC_UNWIND_UNLIKELY(c) __builtin_expect(!!(c), 0)
#else
#define RCGC_UNWIND_UNLIKELY(c) (c)
#endif

/* This thread's stack [lo, hi); both 0 until known, hi == 1 when unknown
 * (unwind.h: rcgc_unwind_same reads them inline). */
RCGC_UNWIND_TLS uintptr_t rcgc_unwind_stack_lo, rcgc_unwind_stack_hi;
#define stack_lo rcgc_unwind_stack_lo
#define stack_hi rcgc_unwind_stack_hi

#if defined(RCGC_UNWIND_HAVE_AVX2)
/* Non-zero when the CPU and the OS support AVX2 (rcgc_unwind_same). */
int rcgc_unwind_avx2;

__attribute__((constructor)) static void unwind_detect_avx2(void)
{
    __builtin_cpu_init();
    rcgc_unwind_avx2 = __builtin_cpu_supports("avx2") != 0;
}

#endif

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

/* One frame of the walk in rcgc_unwind_fp: the frame at fp lies in
 * [lo, hi - 16] (one unsigned compare against span = hi - lo - 16) and has
 * a return address; the next frame pointer is read only from an aligned fp
 * and must lie above it (the walk ends; the bounds are checked at the next
 * step).  Runs at every traced allocation with native frames. */
#define UNWIND_STEP(pc_out, on_end)                        \
    do {                                                   \
        if (fp - lo > span)                                \
            on_end;                                        \
        const uintptr_t *f_ = (const uintptr_t *)fp;       \
        (pc_out) = f_[1];                                  \
        if ((pc_out) == 0)                                 \
            on_end;                                        \
        uintptr_t next_ = f_[0];                           \
        if ((fp & (sizeof(void *) - 1)) || next_ <= fp)    \
            fp = lo - 1; /* ends the walk after this frame */ \
        else                                               \
            fp = next_;                                    \
    } while (0)

int rcgc_unwind_fp(uintptr_t fp, int skip, uintptr_t *pcs, int max, int *depth)
{
    uintptr_t lo = stack_lo, hi = stack_hi;
    *depth = 0;
    if (RCGC_UNWIND_UNLIKELY(hi <= 1) && !stack_bounds(&lo, &hi))
        return 0;
    uintptr_t span = hi - lo - 2 * sizeof(void *);
    uintptr_t pc;
    for (int i = 0; i < skip; i++)
        UNWIND_STEP(pc, return 0);
    int n = 0;
    while (n < max) {
        UNWIND_STEP(pc, goto out);
        pcs[n++] = pc;
    }
    int seen = n;
    while (seen < 65535) {
        UNWIND_STEP(pc, break);
        seen++;
    }
    *depth = seen;
    return n;
out:
    *depth = n;
    return n;
}

int rcgc_unwind_walk(uintptr_t fp, int skip, int max, int *depth, rcgc_unwind_memo *m)
{
    uintptr_t lo = stack_lo, hi = stack_hi;
    *depth = 0;
    m->n = 0;
    m->key = RCGC_UNWIND_NO_KEY;
    if (RCGC_UNWIND_UNLIKELY(hi <= 1) && !stack_bounds(&lo, &hi))
        return 0;
    /* The steps of UNWIND_STEP, keeping what decided the end. */
    uintptr_t span = hi - lo - 2 * sizeof(void *);
    int k = 0, end_zero = 0;
    int cap = skip + 65535;
    while (k < cap) {
        if (fp - lo > span)
            break;
        const uintptr_t *f = (const uintptr_t *)fp;
        uintptr_t pc = f[1];
        uintptr_t next = f[0];
        if (pc == 0) {
            /* Recorded as a frame of the memo (not of the walk): its
             * words must read the same again. */
            if (k < RCGC_UNWIND_MEMO) {
                m->fps[k] = fp;
                m->words[2 * k] = next;
                m->words[2 * k + 1] = 0;
            }
            end_zero = 1;
            break;
        }
        if (k < RCGC_UNWIND_MEMO) {
            m->fps[k] = fp;
            m->pcs[k] = pc;
            m->words[2 * k] = next;
            m->words[2 * k + 1] = pc;
        }
        k++;
        if ((fp & (sizeof(void *) - 1)) || next <= fp)
            break;
        fp = next;
    }
    int seen = k > skip ? k - skip : 0;
    *depth = seen;
    int recorded = k + end_zero;
    /* Records 1 .. nchk are compared in rounds of four, at least one
     * round (the check's loop has no test before its first): pad with
     * copies of the last one (record 0 for a walk of one record: its two
     * words were read too). */
    int nchk = recorded > 1 ? (recorded - 1 + 3) & ~3 : 4;
    if (k > 0 && 1 + nchk <= RCGC_UNWIND_MEMO && k < cap) {
        int last = recorded - 1;
        for (int j = recorded; j <= nchk; j++) {
            m->fps[j] = m->fps[last];
            m->words[2 * j] = m->words[2 * last];
            m->words[2 * j + 1] = m->words[2 * last + 1];
        }
        m->lo = lo;
        m->hi = hi;
        /* K1 (unwind.h): the keyed check's head. */
        m->head_fp = m->fps[0];
        m->w0tag[0] = m->words[0];
        m->w0tag[1] = 0;
#if defined(RCGC_UNWIND_HAVE_AVX2)
        m->key = rcgc_unwind_avx2 ? hi : RCGC_UNWIND_NO_KEY;
#else
        m->key = hi;
#endif
        m->n = recorded;
        m->nchk = nchk;
        m->chk_bytes = (uintptr_t)nchk * sizeof(uintptr_t);
#if defined(RCGC_UNWIND_HAVE_U1)
        /* U1 (unwind.h): where the keyed check enters its unrolled pairs. */
        rcgc_unwind_u1_entry(recorded, nchk, &m->ent, &m->deep_bytes);
        /* U3: the quads' record offsets from record 0 in 8-byte units; a
         * walk whose records span 512 KiB or more, or lie at other than
         * multiples of 8 bytes from record 0, takes no key. */
        if (!rcgc_unwind_u3_fits(m, nchk))
            m->key = RCGC_UNWIND_NO_KEY;
        for (int q = 0; 4 * q + 4 <= nchk && q < RCGC_UNWIND_MEMO / 8; q++)
            m->fpq[q] = rcgc_unwind_u3_quad(m, q);
        m->entw = rcgc_unwind_u3_entw(m, recorded);
#endif
        m->skip = skip;
        m->end_zero = end_zero;
    } else {
        m->fps[0] = 0;   /* no frame pointer: rcgc_unwind_same fails at once */
    }
    return seen < max ? seen : max;
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
