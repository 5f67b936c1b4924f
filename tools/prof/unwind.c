/*
 * unwind.c - the preloaded library's fast x86-64 stack walk.
 *
 * libunwind's unw_backtrace costs about half of rcgc-prof's overhead on an
 * allocation-heavy program (it rebuilds a cursor for each call).  But a
 * frame's unwind rule depends only on its return address, and on x86-64
 * nearly every rule is one of two shapes:
 *
 *   RSP  CFA = rsp + k; the caller's rbp is unchanged, or saved at CFA + j
 *   RBP  CFA = rbp + 16; the caller's rbp saved at CFA - 16 (a frame pointer)
 *
 * with the return address at CFA - 8.  So libunwind is asked once per new
 * return address: we let it step over that frame and read off k and j (and
 * check the return address really is at CFA - 8); the rule is cached, and
 * later walks are a hash look-up and two loads per frame.  A frame whose
 * rule is neither shape (signal frames, odd prologues) is marked so, and
 * any walk reaching it is done by unw_backtrace instead, as is a walk that
 * leaves the thread's stack.  See docs/prof.md, "Native stacks".
 */
#include "preload.h"

#include <pthread.h>
#include <string.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

enum { R_EMPTY, R_RSP, R_RBP, R_END, R_BAD };

struct rule {
    uintptr_t ip;   /* published last (release); 0 = empty slot */
    int32_t kind;
    int32_t cfa_off; /* R_RSP: CFA = rsp + cfa_off */
    int32_t rbp_off; /* R_RSP: caller's rbp at CFA + rbp_off, 0 = unchanged */
    int32_t pad;
};

#define NRULES (1u << 16)
static struct rule *rules;
static int rules_lock;
static __thread uintptr_t t_stack_lo PF_TLS, t_stack_hi PF_TLS;

/* Recently walked stacks of this thread, by (caller's ip, caller's sp).
 * When every frame of a walk has an RSP rule, each frame's CFA follows from
 * the previous one alone, so the walk is the same again exactly when the
 * return addresses still sit at the same CFAs: checking that is a few
 * independent loads, and gives back the stack id without hashing.  */
#define SC_WAYS 16
#define SC_FRAMES 20
struct scache {
    uintptr_t ip0, sp0;
    uint32_t id, nreads; /* the entry is valid when id != UINT32_MAX */
    int n;
    uintptr_t at[SC_FRAMES];   /* addresses read: cfa - 8 */
    uintptr_t want[SC_FRAMES]; /* what was there */
};
static __thread struct scache t_sc[SC_WAYS] PF_TLS;
static __thread struct scache *t_pending PF_TLS;

static inline uint32_t slot_of(uintptr_t ip)
{
    return (uint32_t)((ip * 0x9E3779B97F4A7C15ull) >> 48) & (NRULES - 1);
}

static inline const struct rule *find(uintptr_t ip)
{
    uint32_t i = slot_of(ip);
    for (int probes = 0; probes < 32; probes++) {
        const struct rule *r = &rules[i];
        uintptr_t k = __atomic_load_n(&r->ip, __ATOMIC_ACQUIRE);
        if (k == ip)
            return r;
        if (!k)
            return NULL;
        i = (i + 1) & (NRULES - 1);
    }
    return NULL;
}

static void insert(uintptr_t ip, int kind, int64_t cfa_off, int64_t rbp_off)
{
    if (cfa_off < INT32_MIN || cfa_off > INT32_MAX || rbp_off < INT32_MIN || rbp_off > INT32_MAX)
        kind = R_BAD;
    pf_trylock_for(&rules_lock, 1000);
    uint32_t i = slot_of(ip);
    for (int probes = 0; probes < 32; probes++) {
        struct rule *r = &rules[i];
        if (r->ip == ip)
            break;
        if (!r->ip) {
            r->kind = kind;
            r->cfa_off = (int32_t)cfa_off;
            r->rbp_off = (int32_t)rbp_off;
            __atomic_store_n(&r->ip, ip, __ATOMIC_RELEASE);
            break;
        }
        i = (i + 1) & (NRULES - 1);
    }
    __atomic_store_n(&rules_lock, 0, __ATOMIC_RELEASE);
}

/* Learn the rules of the frames from (ip, sp) outwards with libunwind.
 * Returns the number of rules added or confirmed, 0 if the frame was not
 * found on this thread's stack. */
__attribute__((noinline)) static int learn(uintptr_t ip_target, uintptr_t sp_target)
{
    unw_context_t uc;
    unw_cursor_t cur;
    if (unw_getcontext(&uc) != 0 || unw_init_local(&cur, &uc) != 0)
        return 0;
    unw_word_t ip = 0, sp = 0;
    int found = 0;
    for (int i = 0; i < 64; i++) {
        unw_get_reg(&cur, UNW_REG_IP, &ip);
        unw_get_reg(&cur, UNW_REG_SP, &sp);
        if (ip == ip_target && sp == sp_target) {
            found = 1;
            break;
        }
        if (unw_step(&cur) <= 0)
            return 0;
    }
    if (!found)
        return 0;
    int learned = 0;
    /* where the current frame's rbp is kept: a frame saved the caller's rbp
     * itself only if the caller's location differs from its own */
    unw_save_loc_t here;
    memset(&here, 0, sizeof here);
    if (unw_get_save_loc(&cur, UNW_X86_64_RBP, &here) != 0)
        here.type = UNW_SLT_REG;
    for (int depth = 0; depth < RCGC_PROF_MAX_FRAMES + 2; depth++) {
        unw_word_t bp = 0, nip = 0, nsp = 0;
        unw_get_reg(&cur, UNW_REG_IP, &ip);
        unw_get_reg(&cur, UNW_REG_SP, &sp);
        unw_get_reg(&cur, UNW_X86_64_RBP, &bp);
        if (unw_is_signal_frame(&cur) > 0) {
            insert(ip, R_BAD, 0, 0);
            return learned + 1;
        }
        int r = unw_step(&cur);
        if (r == 0) {
            insert(ip, R_END, 0, 0);
            return learned + 1;
        }
        if (r < 0) {
            insert(ip, R_BAD, 0, 0);
            return learned + 1;
        }
        unw_get_reg(&cur, UNW_REG_IP, &nip);
        unw_get_reg(&cur, UNW_REG_SP, &nsp);
        unw_save_loc_t loc;
        memset(&loc, 0, sizeof loc);
        if (unw_get_save_loc(&cur, UNW_X86_64_RBP, &loc) != 0)
            loc.type = UNW_SLT_REG; /* unknown: treat as not representable */
        uintptr_t cfa = nsp;
        int saved_here = !(loc.type == here.type &&
                           (loc.type != UNW_SLT_MEMORY || loc.u.addr == here.u.addr));
        if (!saved_here)
            loc.type = UNW_SLT_NONE;
        else
            here = loc;
        int kind;
        int64_t cfa_off = 0, rbp_off = 0;
        if (cfa <= sp || *(uintptr_t *)(cfa - 8) != nip) {
            kind = R_BAD;
        } else if (loc.type == UNW_SLT_MEMORY && loc.u.addr == bp && cfa == bp + 16) {
            kind = R_RBP;
        } else if (loc.type == UNW_SLT_NONE) {
            kind = R_RSP;
            cfa_off = (int64_t)(cfa - sp);
        } else if (loc.type == UNW_SLT_MEMORY) {
            kind = R_RSP;
            cfa_off = (int64_t)(cfa - sp);
            rbp_off = (int64_t)loc.u.addr - (int64_t)cfa;
            if (rbp_off == 0)
                kind = R_BAD;
        } else {
            kind = R_BAD;
        }
        insert(ip, kind, cfa_off, rbp_off);
        learned++;
        if (kind == R_BAD)
            return learned;
    }
    return learned;
}

static void stack_bounds(uintptr_t sp)
{
    pthread_attr_t a;
    void *lo = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstack(&a, &lo, &size);
        pthread_attr_destroy(&a);
    }
    t_stack_lo = (uintptr_t)lo;
    t_stack_hi = (uintptr_t)lo + size;
    if (!(sp >= t_stack_lo && sp < t_stack_hi)) {
        t_stack_lo = 1; /* unknown: walk with libunwind */
        t_stack_hi = 0;
    }
}

void pf_unwind_commit(uint32_t id)
{
    struct scache *sc = t_pending;
    if (sc) {
        sc->id = id;
        t_pending = NULL;
    }
}

int pf_unwind_init(void)
{
    rules = pf_map(sizeof(struct rule) * NRULES);
    return rules != NULL;
}

/* The walk itself, from the caller of pf_unwind outwards: out[0] is the
 * return address into our caller (the hook).  Returns the frame count, or
 * -1 when a frame has no rule yet (ip/sp of it in *miss_ip / *miss_sp),
 * -2 when libunwind must do this walk. */
static inline int walk(uintptr_t ip, uintptr_t sp, uintptr_t bp, uintptr_t *out, int max,
                       uintptr_t *miss_ip, uintptr_t *miss_sp, struct scache *sc)
{
    uintptr_t lo = t_stack_lo, hi = t_stack_hi;
    int n = 0;
    uint32_t reads = 0;
    while (n < max) {
        out[n++] = ip;
        const struct rule *r = find(ip);
        if (PF_UNLIKELY(!r)) {
            *miss_ip = ip;
            *miss_sp = sp;
            return -1;
        }
        uintptr_t cfa;
        if (r->kind == R_RSP)
            cfa = sp + (uintptr_t)(intptr_t)r->cfa_off;
        else if (r->kind == R_RBP)
            cfa = bp + 16;
        else if (r->kind == R_END)
            break;
        else
            return -2;
        if (PF_UNLIKELY(cfa <= sp || cfa > hi || cfa < lo + 8 || (cfa & 7)))
            return -2;
        uintptr_t ra = *(const uintptr_t *)(cfa - 8);
        if (sc) {
            if (r->kind == R_RSP && reads < SC_FRAMES) {
                sc->at[reads] = cfa - 8;
                sc->want[reads] = ra;
                reads++;
            } else {
                sc = NULL; /* not cacheable */
            }
        }
        if (r->kind == R_RBP)
            bp = *(const uintptr_t *)(cfa - 16);
        else if (r->rbp_off) {
            uintptr_t at = cfa + (uintptr_t)(intptr_t)r->rbp_off;
            if (at < sp || at + 8 > hi)
                return -2;
            bp = *(const uintptr_t *)at;
        }
        sp = cfa;
        ip = ra;
        if (!ip)
            break;
    }
    if (sc) {
        sc->nreads = reads;
        sc->n = n;
        t_pending = sc;
    }
    return n;
}

/* unwind.c is built with -fno-omit-frame-pointer: pf_unwind's own frame
 * gives the caller's ip, sp and rbp without any unwinding. */
__attribute__((noinline)) int pf_unwind(uintptr_t *out, int max, uint32_t *cached_id)
{
    *cached_id = UINT32_MAX;
    /* our own frame has a frame pointer: the caller's state is at hand */
    uintptr_t *fp = (uintptr_t *)__builtin_frame_address(0);
    uintptr_t ip = fp[1], sp = (uintptr_t)(fp + 2), bp = fp[0];
    if (PF_UNLIKELY(!rules))
        goto slow;
    if (PF_UNLIKELY(t_stack_hi == 0 && t_stack_lo == 0))
        stack_bounds(sp);
    if (PF_UNLIKELY(sp < t_stack_lo || sp >= t_stack_hi))
        goto slow;
    t_pending = NULL;
    struct scache *sc = NULL;
    if (max <= SC_FRAMES) {
        sc = &t_sc[(uint32_t)((ip ^ (sp >> 4)) * 0x9E3779B1u) >> 28];
        if (sc->ip0 == ip && sc->sp0 == sp && sc->id != UINT32_MAX) {
            uint32_t bad = 0;
            for (uint32_t k = 0; k < sc->nreads; k++)
                bad |= *(const uintptr_t *)sc->at[k] != sc->want[k];
            if (PF_LIKELY(!bad)) {
                *cached_id = sc->id;
                return sc->n;
            }
        }
        sc->ip0 = ip;
        sc->sp0 = sp;
        sc->id = UINT32_MAX; /* valid once the hook commits the stack's id */
    }
    for (int attempt = 0; attempt < 4; attempt++) {
        uintptr_t mip = 0, msp = 0;
        int n = walk(ip, sp, bp, out, max, &mip, &msp, sc);
        if (PF_LIKELY(n >= 0))
            return n;
        if (n == -2 || !learn(mip, msp))
            break;
    }
slow:;
    /* unw_backtrace from here: frame 0 is pf_unwind, drop it */
    void *tmp[RCGC_PROF_MAX_FRAMES + 4];
    int m = unw_backtrace(tmp, max + 1 < RCGC_PROF_MAX_FRAMES + 4 ? max + 1 : RCGC_PROF_MAX_FRAMES + 4);
    int k = 0;
    for (int i = 1; i < m; i++)
        out[k++] = (uintptr_t)tmp[i];
    return k;
}
