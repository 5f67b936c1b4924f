/*
 * mem.c - allocator domains (CPython's RAW / MEM / OBJ) and the public
 * rcgc_mem_* calls.
 *
 * Every byte rcgc hands out goes through one domain chain (runtime.h):
 *
 *   call -> [tracemalloc wrapper] -> [debug hooks] -> base allocator
 *
 * The base of MEM and OBJ is rcgc's pools (pool.c), which send requests
 * above 512 bytes to the RAW base.  When nothing is installed in front of a
 * base (rt->mem.slow == 0) the public calls go straight to the pools: tracing,
 * debug hooks and fault injection cost one predictable branch when off.
 * When tracing is all that is on (RCGC_SLOW_TRACE), malloc and free still
 * take the pools inline and record the trace there (tmfast.h).
 */
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "runtime.h"
#include "tmfast.h"

/* --------------------------------------------------- default allocators */

static void *libc_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n ? n : 1);
}
static void *libc_calloc(void *ctx, size_t nelem, size_t elsize)
{
    (void)ctx;
    if (nelem == 0 || elsize == 0)
        nelem = elsize = 1;
    return calloc(nelem, elsize);
}
static void *libc_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n ? n : 1);
}
static void libc_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

void rcgc_mem_get_libc_allocator(rcgc_allocator *out)
{
    out->ctx = NULL;
    out->malloc = libc_malloc;
    out->calloc = libc_calloc;
    out->realloc = libc_realloc;
    out->free = libc_free;
}

/* The pools as an allocator; ctx is the runtime.  Requests above the small
 * limit go to the RAW base allocator (not its hooks: a block is wrapped by
 * the hooks of the domain it was asked from, once). */
static void *pool_malloc(void *ctx, size_t n)
{
    rcgc_runtime *rt = ctx;
    if (n <= RCGC_SMALL_LIMIT) {
        void *p = rcgc_pool_alloc(rt, n);
        rt->pool.madj += p != NULL;   /* M3 (pool.h) */
        return p;
    }
    rcgc_allocator *raw = &rt->mem.domains[RCGC_DOMAIN_RAW].base;
    return raw->malloc(raw->ctx, n);
}

static void *pool_calloc(void *ctx, size_t nelem, size_t elsize)
{
    if (elsize != 0 && nelem > SIZE_MAX / elsize)
        return NULL;
    size_t n = nelem * elsize;
    void *p = pool_malloc(ctx, n);
    if (p)
        memset(p, 0, n);
    return p;
}

static void pool_free_any(void *ctx, void *p)
{
    rcgc_runtime *rt = ctx;
    if (p == NULL)
        return;
    if (rcgc_arena_lookup(p)) {
        rt->pool.madj--;   /* M3 (pool.h) */
        rcgc_pool_free(rt, p);
        return;
    }
    rcgc_allocator *raw = &rt->mem.domains[RCGC_DOMAIN_RAW].base;
    raw->free(raw->ctx, p);
}

/* Keep the block when the new size still fits its class and wastes less
 * than a quarter of it (pymalloc's rule); otherwise move it. */
static void *pool_realloc(void *ctx, void *p, size_t n)
{
    rcgc_runtime *rt = ctx;
    if (p == NULL)
        return pool_malloc(ctx, n);
    if (rcgc_arena_lookup(p)) {
        size_t size = rcgc_pool_block_size(p);
        if (n <= size && 4 * n > 3 * size)
            return p;
        void *q = pool_malloc(ctx, n);
        if (q == NULL)
            return NULL;
        memcpy(q, p, n < size ? n : size);
        rt->pool.madj--;   /* M3 (pool.h) */
        rcgc_pool_free(rt, p);
        return q;
    }
    /* A block of the RAW base stays there whatever its new size: only its
     * allocator knows how big it is now. */
    rcgc_allocator *raw = &rt->mem.domains[RCGC_DOMAIN_RAW].base;
    return raw->realloc(raw->ctx, p, n);
}

void rcgc_mem_get_pool_allocator(rcgc_runtime *rt, rcgc_allocator *out)
{
    out->ctx = rt;
    out->malloc = pool_malloc;
    out->calloc = pool_calloc;
    out->realloc = pool_realloc;
    out->free = pool_free_any;
}

static void free_not_hdr(rcgc_runtime *rt, void *ptr, const void *leaf, size_t t, void **top,
                         char *row);

/* R12 (tmfast.h): the per-row continuations of rcgc_mem_free follow slow
 * and the traced rows' credits (L1: all rows' credits are on or off
 * together). */
void rcgc_mem_free_rows_set(rcgc_runtime *rt)
{
    /* T4: the ring is the credits-on traced free's; whoever changes the
     * credits flushes it first (hdr_rows_mark, credits_off), so the
     * credits here are the ones its blocks were given */
    rcgc_mem_hdr_ring_flush(rt);
    rcgc_mem_free_not_fn req = rcgc_mem_free_not_of(rt->mem.slow);
    rcgc_mem_free_not_fn hdr =
        rcgc_mem_free_hdr_of(rt->mem.slow, rt->pool.hdr_credit[RCGC_NROWS - 1] != 0);
    for (unsigned r = 0; r < RCGC_NROWS; r++)
        rt->pool.free_not[r] = r < RCGC_NCLASSES ? req : hdr;
    rt->region_rows = hdr == free_not_hdr ? RCGC_NCLASSES : RCGC_NROWS;   /* T2 */
    if (rt->region_rows != RCGC_NCLASSES)   /* T4: no last site out of the ring's mode */
        rt->mem.trace.last = (rcgc_trace_site){ rcgc_trace_no_site, 0, 0 };
}

/* Set up the domains from a config (NULL members mean defaults).  Called by
 * rcgc_runtime_new before anything is allocated. */
int rcgc_mem_state_init(rcgc_runtime *rt, const rcgc_config *cfg)
{
    rcgc_mem_state *ms = &rt->mem;
    ms->trace.free_not = rcgc_mem_free_not_of(ms->slow);   /* R8, before any return */
    rcgc_pool_region_classes_set(rt, 0);   /* T1: zeros until an arena */
    rcgc_mem_free_rows_set(rt);                             /* R12 */
    rcgc_pool_map_init();   /* M2, for rcgc_mem_free's lookup */
    rcgc_pool_cache_init(&rt->pool);
    for (int d = 0; d < RCGC_DOMAIN_COUNT; d++) {
        rcgc_domain_state *ds = &ms->domains[d];
        const rcgc_allocator *user = cfg ? &cfg->allocators[d] : NULL;
        if (user && user->malloc) {
            if (!user->calloc || !user->realloc || !user->free)
                return RCGC_EINVAL;
            ds->base = *user;
            ds->base_is_pool = 0;
            ds->base_is_default = 0;
        } else if (d == RCGC_DOMAIN_RAW) {
            rcgc_mem_get_libc_allocator(&ds->base);
            ds->base_is_pool = 0;
            ds->base_is_default = 1;
        } else {
            rcgc_mem_get_pool_allocator(rt, &ds->base);
            ds->base_is_pool = 1;
            ds->base_is_default = 1;
        }
        ds->current = ds->base;
        ds->live = 0;
    }
    rcgc_mem_update_slow(rt);
    return RCGC_OK;
}

void rcgc_mem_update_slow(rcgc_runtime *rt)
{
    rcgc_mem_state *ms = &rt->mem;
    int other = ms->fail_countdown != 0 || ms->debug_hooks;
    for (int d = 0; d < RCGC_DOMAIN_COUNT; d++) {
        rcgc_domain_state *ds = &ms->domains[d];
        /* With tracing on, the wrapper in front of the base is the
         * tracer's (the debug hooks are counted above, and nothing else
         * can wrap a domain). */
        if (!ms->tracing && (ds->current.malloc != ds->base.malloc || ds->current.ctx != ds->base.ctx))
            other = 1;
        if (d != RCGC_DOMAIN_RAW && !ds->base_is_pool)
            other = 1;
    }
    ms->slow = (other ? RCGC_SLOW_OTHER : 0u) | (ms->tracing ? RCGC_SLOW_TRACE : 0u) |
               (ms->trace_hold ? RCGC_SLOW_HOLD : 0u);
    /* R6 (tmfast.h): the last call site matches nothing unless tracing is
     * all that is on (rcgc_mem_malloc_at's dispatch relies on it). */
    if (ms->slow != RCGC_SLOW_TRACE)
        ms->trace.last = (rcgc_trace_site){ rcgc_trace_no_site, 0, 0 };
    rcgc_trace_route_update(ms);   /* R7 */
    ms->trace.free_not = rcgc_mem_free_not_of(ms->slow);   /* R8 */
    rcgc_mem_free_rows_set(rt);                             /* R12 */
    /* The free cache belongs to the fast paths (tracing's included): the
     * debug hooks, fault injection and user allocators must see every
     * block go back to its pool. */
    if (other)
        rcgc_pool_cache_flush(rt);
    rcgc_pool_set_mem_limits(&rt->pool, ms->slow != 0);   /* C4 (pool.h) */
}

void rcgc_mem_set_tracing(rcgc_runtime *rt, int on)
{
    rt->mem.tracing = on;
    rcgc_mem_update_slow(rt);
}

void rcgc_mem_trace_hold(rcgc_runtime *rt, int delta)
{
    rt->mem.trace_hold += delta;
    rcgc_mem_update_slow(rt);
}

/* ------------------------------------------------------ the domain path */

int rcgc_mem_oom(rcgc_runtime *rt, rcgc_domain d, size_t n)
{
    if (rt->mem.oom)
        return rt->mem.oom(rt, d, n, rt->mem.oom_arg);
    return 0;
}

void *rcgc_mem_domain_alloc(rcgc_runtime *rt, rcgc_domain d, size_t n)
{
    rcgc_domain_state *ds = &rt->mem.domains[d];
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!rcgc_mem_inject(rt)) {
            void *p = ds->current.malloc(ds->current.ctx, n);
            if (RCGC_LIKELY(p != NULL)) {
                ds->live++;
                rt->pool.madj -= d != RCGC_DOMAIN_RAW;   /* M3 (pool.h) */
                return p;
            }
        }
        if (!rcgc_mem_oom(rt, d, n))
            break;
    }
    return NULL;
}

void *rcgc_mem_domain_calloc(rcgc_runtime *rt, rcgc_domain d, size_t nelem, size_t elsize)
{
    rcgc_domain_state *ds = &rt->mem.domains[d];
    if (elsize != 0 && nelem > SIZE_MAX / elsize)
        return NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!rcgc_mem_inject(rt)) {
            void *p = ds->current.calloc(ds->current.ctx, nelem, elsize);
            if (RCGC_LIKELY(p != NULL)) {
                ds->live++;
                rt->pool.madj -= d != RCGC_DOMAIN_RAW;   /* M3 (pool.h) */
                return p;
            }
        }
        if (!rcgc_mem_oom(rt, d, nelem * elsize))
            break;
    }
    return NULL;
}

void *rcgc_mem_domain_realloc(rcgc_runtime *rt, rcgc_domain d, void *p, size_t n)
{
    rcgc_domain_state *ds = &rt->mem.domains[d];
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!rcgc_mem_inject(rt)) {
            void *q = ds->current.realloc(ds->current.ctx, p, n);
            if (RCGC_LIKELY(q != NULL)) {
                if (p == NULL) {
                    ds->live++;
                    rt->pool.madj -= d != RCGC_DOMAIN_RAW;   /* M3 (pool.h) */
                }
                return q;
            }
        }
        if (!rcgc_mem_oom(rt, d, n))
            break;
    }
    return NULL;
}

void rcgc_mem_domain_free(rcgc_runtime *rt, rcgc_domain d, void *p)
{
    if (p == NULL)
        return;
    rcgc_domain_state *ds = &rt->mem.domains[d];
    ds->live--;
    rt->pool.madj += d != RCGC_DOMAIN_RAW;   /* M3 (pool.h) */
    ds->current.free(ds->current.ctx, p);
}

/* ------------------------------------------------------------ public API */

static inline void set_site(rcgc_runtime *rt, const char *file, int line)
{
    rt->mem.site_file = file;
    rt->mem.site_line = line;
}

/* The public calls: a fast path that the compiler keeps free of register
 * saves (the pools' common case, inlined), and everything else out of line
 * in a tail call. */
static RCGC_NOINLINE void *malloc_slow(rcgc_runtime *rt, size_t size, const char *file, int line)
{
    if (RCGC_LIKELY(!rt->mem.slow) && size <= RCGC_SMALL_LIMIT) {
        void *p = rcgc_pool_alloc_slow(rt, (unsigned)rcgc_size_class(size));
        if (RCGC_LIKELY(p != NULL))
            return p;   /* a pool block for MEM: counted by M3 (pool.h) */
    }
    set_site(rt, file, line);
    void *p = rcgc_mem_domain_alloc(rt, RCGC_DOMAIN_MEM, size);
    set_site(rt, NULL, 0);
    return p;
}

void *rcgc_mem_malloc_wrapped(rcgc_runtime *rt, size_t size, const char *file, int line, void *p)
{
    if (p != NULL)
        rcgc_pool_free(rt, p);
    return malloc_slow(rt, size, file, line);
}

/* Tracing alone with frames from call sites, when rcgc_mem_malloc_at's
 * inline path (rcgc_trace_try_cached_last) could not take the block: a
 * block of the traced pools (H1, tmfast.h) with its header written when
 * the call-site cache knows the site, else the tracer's capture. */
static RCGC_NOINLINE void *malloc_traced_pool(rcgc_runtime *rt, size_t size, const char *file,
                                              int line)
{
    uint32_t tb = rcgc_trace_site_tb(&rt->mem.trace, file, line);
    if (RCGC_LIKELY(tb != 0)) {
        void *p = rcgc_trace_hdr_block(rt, size, tb);
        if (RCGC_LIKELY(p != NULL))
            return p;   /* counted by M3 (pool.h) */
        return rcgc_mem_malloc_wrapped(rt, size, file, line, NULL);
    }
    return rcgc_trace_malloc_fast(rt, NULL, NULL, size, file, line);
}

/* The dispatch on rt->mem.slow of rcgc_mem_malloc_at's failed pop (C5):
 * to L_none when nothing is on (slow == 0).  On x86-64 one compare with
 * memory and a branch (in C the compiler loads, tests and branches). */
#if defined(__x86_64__) && defined(__GNUC__) && RCGC_SLOW_TRACE == 1u
#define SLOW_DISPATCH_NONE(rt, L_none)                                               \
    __asm__ goto("cmpl $1, %0\n\tjb %l[" #L_none "]" : : "m"((rt)->mem.slow) : "cc" : L_none)
#else
#define SLOW_DISPATCH_NONE(rt, L_none)                                               \
    do {                                                                             \
        if (RCGC_LIKELY((rt)->mem.slow == 0))                                        \
            goto L_none;                                                             \
    } while (0)
#endif

void *rcgc_mem_malloc_at(rcgc_runtime *rt, size_t size, const char *file, int line)
{
    /* The size class and the size test in one: size 0 wraps around to a
     * class above every class and goes to malloc_slow, which takes it as
     * size 1 (rcgc_size_class). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    /* In asm, with the four arguments pinned to the registers they came
     * in (no code but the two instructions): from (size - 1) >> 4 in C,
     * gcc 12 tested size - 1 against 511, kept both, and moved size or
     * rt or file to another register for the tail calls (one or two
     * moves more on the untraced allocation). */
    size_t c;
    __asm__("lea -1(%1), %0\n\tshr $4, %0"
            : "=&a"(c), "+S"(size), "+D"(rt), "+d"(file), "+c"(line)
            :
            : "cc");
#else
    size_t c = (size - 1) >> RCGC_ALIGN_SHIFT;
#endif
    if (RCGC_LIKELY(c < RCGC_NCLASSES)) {
        /* No test of the mode before the pop (C5, pool.h): it fails in
         * every mode but the fast paths' own. */
        void *p = rcgc_pool_try_pop_fast(&rt->pool, c);
        if (RCGC_LIKELY(p != NULL))
            return p;   /* the MEM domain's count is derived: M3 (pool.h) */
        /* The pop failed: the cache is empty, or anything is on.  The
         * last call site first: it matches only while tracing alone with
         * frames from call sites (R10, tmfast.h), so a match needs no
         * test of the route (the common traced case: a loop allocating
         * at one line).  Otherwise one compare of the route (R7) picks:
         * tracing alone with frames from call sites (the call-site
         * cache, malloc_traced_pool), tracing alone with native frames
         * (the tracer takes the block, F4), else (RCGC_TRACE_ROUTE_SLOW)
         * the mode: nothing on (an empty cache) to the pools, the rest
         * to malloc_slow. */
        if (rcgc_trace_at_last(&rt->mem.trace, file, line))
            goto last;
#if defined(__x86_64__) && defined(__GNUC__) && RCGC_TRACE_ROUTE_SLOW == 1u
        __asm__ goto("cmpl $1, %0\n\tja %l[sites]\n\tjb %l[native]"
                     : : "m"(rt->mem.trace.route) : "cc" : sites, native);
#else
        unsigned route = rt->mem.trace.route;
        if (route == RCGC_TRACE_ROUTE_SITES)
            goto sites;
        if (route == RCGC_TRACE_ROUTE_NATIVE)
            goto native;
#endif
        SLOW_DISPATCH_NONE(rt, none);
    }
    return malloc_slow(rt, size, file, line);
none:;
    rcgc_pool *from;
    void *p = rcgc_pool_try_alloc_used(&rt->pool, c, &from);
    if (RCGC_LIKELY(p != NULL))
        return p;
    return malloc_slow(rt, size, file, line);
last:
#if defined(__GNUC__) || defined(__clang__)
    /* c < RCGC_NCLASSES: size is 1..512, so the tracer's own class
     * computation (size - (size != 0)) is c (two instructions fewer than
     * without this). */
    if (size == 0 || size > RCGC_SMALL_LIMIT)
        __builtin_unreachable();
#endif
    /* Tracing alone, frames from call sites, at the last call site: the
     * common case, a block of the free cache that carries its slot (F4),
     * without a call (the function stays a leaf; no register saves);
     * the rest in malloc_traced_pool. */
    p = rcgc_trace_try_cached_last(rt, c, size, file, line);
    if (RCGC_LIKELY(p != NULL))
        return p;
    return malloc_traced_pool(rt, size, file, line);
sites:
    /* Another call site: the call-site cache (malloc_traced_pool). */
    return malloc_traced_pool(rt, size, file, line);
native:
    /* The failed pop's top and where it lives: no class or top to derive
     * again in the tracer. */
    return rcgc_trace_malloc_native(rt, size, file, line, &rt->pool.ctop[c + RCGC_NCLASSES],
                                    rt->pool.ctop[c + RCGC_NCLASSES]);
}

void *rcgc_mem_calloc_at(rcgc_runtime *rt, size_t nelem, size_t elsize, const char *file,
                         int line)
{
    set_site(rt, file, line);
    void *p = rcgc_mem_domain_calloc(rt, RCGC_DOMAIN_MEM, nelem, elsize);
    set_site(rt, NULL, 0);
    return p;
}

void *rcgc_mem_realloc_at(rcgc_runtime *rt, void *ptr, size_t size, const char *file, int line)
{
    set_site(rt, file, line);
    void *p = rcgc_mem_domain_realloc(rt, RCGC_DOMAIN_MEM, ptr, size);
    set_site(rt, NULL, 0);
    return p;
}

static RCGC_NOINLINE void free_slow(rcgc_runtime *rt, void *ptr)
{
    if (RCGC_LIKELY(!rt->mem.slow) && ptr != NULL) {
        rt->mem.domains[RCGC_DOMAIN_MEM].live--;
        rt->pool.madj++;   /* M3 (pool.h): a MEM block, not a pool block */
        rcgc_allocator *raw = &rt->mem.domains[RCGC_DOMAIN_RAW].base;
        raw->free(raw->ctx, ptr);
        return;
    }
    rcgc_mem_domain_free(rt, RCGC_DOMAIN_MEM, ptr);
}

static RCGC_NOINLINE void free_slow(rcgc_runtime *rt, void *ptr);

/* Tracing alone: forget the pool block's trace (tmfast.h) and free it to
 * the free cache; leaf and t are its class tables and index
 * (rcgc_leaf_lookup), c its class, row (char *)rt + 8c (R8) and top
 * ctop[c] + 1.  Inlined into free_not_traced. */
static RCGC_ALWAYS_INLINE void free_traced(rcgc_runtime *rt, void *ptr,
                                            const rcgc_class_table *leaf, size_t t, void **top,
                                            size_t c, char *row)
{
    _Static_assert(sizeof(rt->trace_class_inv[0]) == sizeof(void *),
                   "trace_class_inv[c] lies at a fixed distance from the row rt + 8c");
    rcgc_trace_slot *sl;
    /* trace_class_inv[c] at its fixed distance from the row (8-byte
     * entries, runtime.h): one operand, no index computed again. */
    const uint64_t *inv =
        (const uint64_t *)(const void *)(row + offsetof(rcgc_runtime, trace_class_inv));
    RCGC_ASSERT(inv == &rt->trace_class_inv[c]);
    rcgc_trace_forget_inv(rt, leaf, t, inv, ptr, &sl);
    rcgc_pool_free_class_top(rt, &rt->pool, ptr, c, top, sl);
}

/* rcgc_mem_free of a pool block whose push did not go ahead (C4), by
 * rt->mem.trace.free_not (R8, tmfast.h: chosen by the mode, so neither
 * tests it).  leaf is the map leaf covering ptr (const rcgc_map_entry *),
 * t ptr's flat index in its class tables (rcgc_leaf_lookup), c its size
 * class and top ps->ctop[c] + 1, the failed push's new top:
 * rcgc_mem_free's lookup and push left them in registers, the ones its
 * fast path uses anyway, so passing them costs that path nothing and
 * saves the traced free a second lookup, the class byte and the row's
 * top. */

/* Tracing alone (slow == RCGC_SLOW_TRACE): every free comes here. */
static RCGC_NOINLINE void free_not_traced(rcgc_runtime *rt, void *ptr, const void *leaf,
                                          size_t t, void **top, char *row)
{
    RCGC_ASSERT(rt->mem.slow == RCGC_SLOW_TRACE);
    /* An exact division (a distance in words within the runtime; gcc
     * folds rt + 8c back to row, so the row's fields are read at fixed
     * offsets from it, no lea of the row again: a distance in bytes, or
     * one within rt->pool.cache, did not fold). */
    size_t c = (size_t)((void **)(void *)row - (void **)(void *)rt);
    free_traced(rt, ptr, rcgc_leaf_class_tables((rcgc_map_entry *)(uintptr_t)leaf), t, top, c,
                row);
}

/* Tracing alone (slow == RCGC_SLOW_TRACE): every free of a traced pool's
 * block (H1) comes here, by its row's continuation (R12): the block is
 * cached with its trace kept in its header (a lazy free, L1), which is
 * not read here; a block that goes to its pool is cleared first (H2).
 * The row's fields at fixed offsets from row.  mark: write the entry's
 * unsettled mark (L1, the credits off); with the credits on the header
 * tells (rcgc_trace_hdr_lazy), so no mark is written. */
/* T4: settle block q of traced row rq, freed RCGC_HDR_RING frees ago
 * (with no credit: it still counts its whole size): its size back to
 * room, its header settled (0, credit: L1), then cached; at the row's
 * limit to its pool, its header cleared (H2). */
static RCGC_ALWAYS_INLINE void ring_settle(rcgc_runtime *rt, void *q, size_t rq)
{
    rcgc_trace_slot *hd = rcgc_trace_hdr(q);
    size_t credit = rt->pool.hdr_credit[rq];
    size_t back = hd->size;   /* the ring's blocks get no credit */
    void **top = rt->pool.ctop[rq] + 1;
    if (RCGC_LIKELY(top != rt->pool.clim[rq])) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        __asm__("add %[s], %[r]" : [r] "+m"(rt->mem.trace.room) : [s] "r"(back) : "cc");
#else
        rt->mem.trace.room += back;
#endif
        hd->tb = 0;
        hd->size = (uint32_t)credit;
        *top = q;
        rt->pool.ctop[rq] = top;
        rt->pool.cache[rq] = q;
        return;
    }
    rt->mem.trace.room += back;
    memset(hd, 0, sizeof *hd);
    rcgc_pool_push_limit(rt, &rt->pool, q);
}

/* T4: block ptr of traced row r into the ring; the block it replaces
 * settled. */
static RCGC_ALWAYS_INLINE void ring_put(rcgc_runtime *rt, void *ptr, size_t r)
{
    size_t i = rt->hdr_ring_i;
    void *q = rt->hdr_ring[i];
    size_t rq = rt->hdr_ring_row[i];
    rt->hdr_ring[i] = ptr;
    rt->hdr_ring_row[i] = (uint8_t)r;
    rt->hdr_ring_i = (i + 1) & (RCGC_HDR_RING - 1);
    if (RCGC_LIKELY(q != NULL))
        ring_settle(rt, q, rq);
}

void rcgc_mem_hdr_ring_flush(rcgc_runtime *rt)
{
    for (size_t k = 0; k < RCGC_HDR_RING; k++) {
        /* oldest first, so that rows get them in the order they came */
        size_t i = (rt->hdr_ring_i + k) & (RCGC_HDR_RING - 1);
        void *q = rt->hdr_ring[i];
        if (q == NULL)
            continue;
        rt->hdr_ring[i] = NULL;
        ring_settle(rt, q, rt->hdr_ring_row[i]);
    }
}

size_t rcgc_mem_hdr_ring_count(const rcgc_runtime *rt)
{
    size_t n = 0;
    for (size_t i = 0; i < RCGC_HDR_RING; i++)
        n += rt->hdr_ring[i] != NULL;
    return n;
}

size_t rcgc_mem_hdr_ring_bytes(const rcgc_runtime *rt)
{
    size_t n = 0;
    for (size_t i = 0; i < RCGC_HDR_RING; i++)
        if (rt->hdr_ring[i] != NULL)
            n += rcgc_trace_hdr(rt->hdr_ring[i])->size;
    return n;
}

static RCGC_ALWAYS_INLINE void free_hdr_marked(rcgc_runtime *rt, void *ptr, void **top, char *row)
{
    RCGC_ASSERT(rt->mem.slow == RCGC_SLOW_TRACE);
    /* Its trace is its header, at a fixed distance from it (H1).  The
     * row's fields at fixed offsets from row (R8, R12). */
    RCGC_ASSERT(rcgc_pool_of(ptr)->szidx ==
                (size_t)((void **)(void *)row - (void **)(void *)rt));
    rcgc_trace_hot *h = &rt->mem.trace;
    void ***ctop = (void ***)(void *)(row + offsetof(rcgc_runtime, pool.ctop));
    if (RCGC_LIKELY(top != *(void ***)(void *)(row + offsetof(rcgc_runtime, pool.clim)))) {
        /* L1: the block is cached with its trace (a lazy free), its
         * entry marked unsettled; its header is not read here.  The
         * credits are off, so room gets nothing now: the allocation that
         * takes it again gives its size back as it writes the new trace;
         * the readers, a borrow and a flush settle it first. */
        RCGC_ASSERT(*(const size_t *)(const void *)(row + offsetof(rcgc_runtime,
                                                                   pool.hdr_credit)) == 0);
        *top = ptr;
        *rcgc_pool_cslot(top) = NULL;
        *ctop = top;
        *(void **)(void *)(row + offsetof(rcgc_runtime, pool.cache)) = ptr;
        return;
    }
    /* The block goes to its pool (H2: no trace there): cleared now. */
    rcgc_trace_slot *hd = rcgc_trace_hdr(ptr);
    h->room += hd->size;
    memset(hd, 0, sizeof *hd);
    rcgc_pool_push_limit(rt, &rt->pool, ptr);
}

/* The credits on (T4): into the traced free's ring. */
static RCGC_NOINLINE void free_not_hdr(rcgc_runtime *rt, void *ptr, const void *leaf,
                                       size_t t, void **top, char *row)
{
    (void)leaf, (void)t, (void)top;
    /* T4: into the ring, with no credit; no limit here (the ring's
     * settle has its own) */
    size_t r = (size_t)((void **)(void *)row - (void **)(void *)rt);
    RCGC_ASSERT(rt->pool.hdr_credit[r] != 0 && rcgc_pool_of(ptr)->szidx == r);
    ring_put(rt, ptr, r);
}

/* The credits off (L1): the entry marked unsettled. */
static RCGC_NOINLINE void free_not_hdr_marked(rcgc_runtime *rt, void *ptr, const void *leaf,
                                              size_t t, void **top, char *row)
{
    (void)leaf, (void)t;
    free_hdr_marked(rt, ptr, top, row);
}

/* Any other mode: with nothing on, the push found its limit (C3); the
 * rest goes to the domain. */
static RCGC_NOINLINE void free_not_other(rcgc_runtime *rt, void *ptr, const void *leaf,
                                         size_t t, void **top, char *row)
{
    (void)leaf, (void)t, (void)top, (void)row;
    RCGC_ASSERT(rt->mem.slow != RCGC_SLOW_TRACE);
    if (rt->mem.slow == 0) {
        rcgc_pool_push_limit(rt, &rt->pool, ptr);
        return;
    }
    free_slow(rt, ptr);
}

rcgc_mem_free_not_fn rcgc_mem_free_not_of(unsigned slow)
{
    return slow == RCGC_SLOW_TRACE ? free_not_traced : free_not_other;
}

rcgc_mem_free_not_fn rcgc_mem_free_hdr_of(unsigned slow, int credits)
{
    if (slow != RCGC_SLOW_TRACE)
        return free_not_other;
    return credits ? free_not_hdr : free_not_hdr_marked;
}


#ifdef RCGC_REGION_HI
static RCGC_ALWAYS_INLINE void free_region(rcgc_runtime *rt, void *ptr);
static RCGC_NOINLINE void free_mapped_out(rcgc_runtime *rt, void *ptr);
#endif

/* rcgc_mem_free through the arena map: the free cache's push, else the
 * row's continuation (R8, R12), else free_slow.  With `high`, addresses
 * from RCGC_FREE_HI up go out of line first (T3: the traced region, and
 * arenas the OS placed above it). */
static RCGC_ALWAYS_INLINE void free_mapped(rcgc_runtime *rt, void *ptr, int high)
{
    /* No test of the mode before the push (C4): the lookup is harmless
     * in every mode, and the push fails in all but the fast paths' own.
     * NULL is in no arena: it takes the slow path, which ignores it.
     * The lookup is rcgc_leaf_lookup's, spelled out so that the leaf and
     * the index stay at hand for the continuation (R8). */
    uintptr_t a = (uintptr_t)ptr;
    uintptr_t hi = a >> (RCGC_ARENA_BITS + RCGC_MAP_BITS);
    if (RCGC_LIKELY(hi < (high ? RCGC_FREE_HI : RCGC_MAP_LEN))) {
        size_t t = (a >> RCGC_POOL_BITS) & (RCGC_MAP_LEN * RCGC_ARENA_SLOTS - 1);
        rcgc_map_entry *leaf = atomic_load_explicit(&rcgc_arena_map[hi], memory_order_acquire);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        /* Pin leaf and t to the continuation's third and fourth argument
         * registers (an empty asm: no instruction).  Left to itself, gcc
         * 12 put the leaf in rdi and moved rt to r9, one move more on the
         * untraced free; pinned, the fast path is the same 26
         * instructions as with rcgc_class_entry_lookup, and the failing
         * push's tail call moves nothing. */
        __asm__("" : "+d"(leaf), "+c"(t));
#endif
        if (RCGC_LIKELY(atomic_load_explicit(&leaf[t / RCGC_ARENA_SLOTS],
                                             memory_order_acquire) != NULL)) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
            /* The class in the continuation's sixth argument register
             * (r9; no constraint letter names it, hence the register
             * variable): left to itself gcc kept it in rax, which the
             * row's address overwrites, and copied it (one move more on
             * the untraced free).  size_t, so that no one zero-extends. */
            register size_t c __asm__("r9") = ((const uint8_t *)rcgc_leaf_class_tables(leaf))[t];
            __asm__("" : "+r"(c));
#else
            size_t c = ((const uint8_t *)rcgc_leaf_class_tables(leaf))[t];
#endif
#if defined(__GNUC__) || defined(__clang__)
            __builtin_prefetch(ptr, 1, 3);
#endif
            void **top = rt->pool.ctop[c] + 1;   /* r8: no pin needed */
            if (RCGC_LIKELY(rcgc_pool_try_push_mem(&rt->pool, ptr, c, top)))
                return;
            /* R8: one indirect jump picks the mode's way (predicted: the
             * mode rarely changes), with no test of slow. */
            char *row = (char *)rt + c * sizeof(void *);
            (*(rcgc_mem_free_not_fn *)(void *)(row + offsetof(rcgc_runtime, pool.free_not)))(
                rt, ptr, leaf, t, top, row);
            return;
        }
    }
#ifdef RCGC_REGION_HI
    if (high && hi >= RCGC_FREE_HI) {
        /* T3: above the general arenas' range (out of line, and no
         * compare on the way in): the traced region's free, else the
         * map's way for the rest (an arena the OS placed high, a big
         * block, a foreign pointer). */
        if (RCGC_LIKELY(hi == RCGC_REGION_HI))
            free_region(rt, ptr);
        else
            free_mapped_out(rt, ptr);
        return;
    }
#endif
    free_slow(rt, ptr);
}

#ifdef RCGC_REGION_HI
/* rcgc_mem_free of a block in the traced region (T1), whose arenas hold
 * traced pools only: while tracing alone with the credits on (T2), its
 * row is its pool's class byte (no walk of the arena map) and the block
 * goes into the traced free's ring as free_not_hdr puts it (T4); in any
 * other mode, and for an address of the region where no arena is (its
 * class byte is 0), the arena map's way. */
static RCGC_ALWAYS_INLINE void free_region(rcgc_runtime *rt, void *ptr)
{
    /* The class byte of the block's pool, from the region's class
     * tables (T1): bits 14..33 of the address index them. */
    uintptr_t a = (uintptr_t)ptr;
    size_t r = *(const uint8_t *)(rt->region_classes_at + (a >> RCGC_POOL_BITS));
    RCGC_ASSERT(r == 0 || r == rcgc_pool_of(ptr)->szidx);
    /* T2: region_rows is RCGC_NCLASSES in the mode, else above every
     * class (class bytes are below RCGC_NROWS): one compare for both. */
    if (RCGC_LIKELY(r >= rt->region_rows)) {
#if defined(__GNUC__) || defined(__clang__)
        /* for its settle, RCGC_HDR_RING frees on: the header's line
         * (the block's but for one block in 8, whose start begins a
         * line; the program's first store to the block needs no wait) */
        __builtin_prefetch((const char *)ptr - sizeof(rcgc_trace_slot), 1, 3);
#endif
        RCGC_ASSERT(rcgc_arena_lookup(ptr) != NULL && rcgc_pool_of(ptr)->rt == rt);
        ring_put(rt, ptr, r);   /* T4 */
        return;
    }
    free_mapped_out(rt, ptr);
}

/* free_region's other cases: the arena map's way. */
static RCGC_NOINLINE void free_mapped_out(rcgc_runtime *rt, void *ptr)
{
    free_mapped(rt, ptr, 0);
}
#endif

void rcgc_mem_free(rcgc_runtime *rt, void *ptr)
{
    free_mapped(rt, ptr, 1);
}

static int domain_ok(rcgc_domain d)
{
    return (unsigned)d < RCGC_DOMAIN_COUNT;
}

void *rcgc_domain_malloc_at(rcgc_runtime *rt, rcgc_domain d, size_t size, const char *file,
                            int line)
{
    if (!domain_ok(d))
        return NULL;
    set_site(rt, file, line);
    void *p = rcgc_mem_domain_alloc(rt, d, size);
    set_site(rt, NULL, 0);
    return p;
}

void *rcgc_domain_realloc_at(rcgc_runtime *rt, rcgc_domain d, void *ptr, size_t size,
                             const char *file, int line)
{
    if (!domain_ok(d))
        return NULL;
    set_site(rt, file, line);
    void *p = rcgc_mem_domain_realloc(rt, d, ptr, size);
    set_site(rt, NULL, 0);
    return p;
}

void rcgc_domain_free(rcgc_runtime *rt, rcgc_domain d, void *ptr)
{
    if (domain_ok(d))
        rcgc_mem_domain_free(rt, d, ptr);
}

int rcgc_mem_set_allocator(rcgc_runtime *rt, rcgc_domain d, const rcgc_allocator *a)
{
    if (!domain_ok(d) || a == NULL || !a->malloc || !a->calloc || !a->realloc || !a->free)
        return RCGC_EINVAL;
    rcgc_domain_state *ds = &rt->mem.domains[d];
    long mem_live = rcgc_pool_mem_live(rt);
    if (d == RCGC_DOMAIN_MEM ? mem_live != 0
                             : (d == RCGC_DOMAIN_OBJ ? rcgc_mem_obj_live(rt) : ds->live) != 0)
        return RCGC_ESTATE;
    /* Objects and pooled blocks of the other domains may depend on the RAW
     * base (blocks above the small limit): only replace it when empty. */
    if (d == RCGC_DOMAIN_RAW && (mem_live != 0 || rcgc_mem_obj_live(rt) != 0))
        return RCGC_ESTATE;
    int wrapped = ds->current.malloc != ds->base.malloc || ds->current.ctx != ds->base.ctx;
    if (rt->mem.debug_hooks) {
        /* The debug hooks are the innermost wrapper and call the base
         * directly: replacing the base keeps them on, wrapping the new
         * allocator.  Handing them their own allocator back would loop. */
        if (rcgc_debughooks_is_hooks(a))
            return RCGC_EINVAL;
    } else if (wrapped) {
        return RCGC_ESTATE;   /* another wrapper holds the old base */
    }
    ds->base = *a;
    if (!wrapped)
        ds->current = *a;
    ds->base_is_pool = a->malloc == pool_malloc;
    ds->base_is_default = ds->base_is_pool || (d == RCGC_DOMAIN_RAW && a->malloc == libc_malloc);
    rcgc_mem_update_slow(rt);
    return RCGC_OK;
}

void rcgc_mem_get_allocator(rcgc_runtime *rt, rcgc_domain d, rcgc_allocator *out)
{
    if (domain_ok(d))
        *out = rt->mem.domains[d].current;
}

void rcgc_mem_wrap(rcgc_runtime *rt, rcgc_domain d, const rcgc_allocator *wrapper,
                   rcgc_allocator *inner)
{
    rcgc_domain_state *ds = &rt->mem.domains[d];
    *inner = ds->current;
    ds->current = *wrapper;
    rcgc_mem_update_slow(rt);
}

void rcgc_mem_unwrap(rcgc_runtime *rt, rcgc_domain d, const rcgc_allocator *inner)
{
    rt->mem.domains[d].current = *inner;
    rcgc_mem_update_slow(rt);
}

void rcgc_set_oom_handler(rcgc_runtime *rt, rcgc_oom_handler fn, void *arg)
{
    rt->mem.oom = fn;
    rt->mem.oom_arg = arg;
}

void rcgc_mem_fail_after(rcgc_runtime *rt, long countdown, int persistent)
{
    rt->mem.fail_countdown = countdown < 0 ? 0 : countdown;
    rt->mem.fail_persistent = persistent;
    rt->mem.failures = 0;
    rcgc_mem_update_slow(rt);
}

long rcgc_mem_failures(const rcgc_runtime *rt)
{
    return rt->mem.failures;
}

int rcgc_mem_get_stats(rcgc_runtime *rt, rcgc_mem_stats *out)
{
    if (out == NULL || out->size < sizeof(rcgc_mem_stats))
        return RCGC_EINVAL;
    rcgc_pool_stats(rt, out);
    out->raw_blocks = (size_t)rt->mem.domains[RCGC_DOMAIN_RAW].live;
    return RCGC_OK;
}

void rcgc_mem_print_stats(rcgc_runtime *rt, FILE *out)
{
    rcgc_pool_print_stats(rt, out);
}
