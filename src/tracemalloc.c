/*
 * tracemalloc.c - the tracer: a wrapper allocator on each domain that
 * records, for every live block, its size and an interned traceback.
 *
 * Cost when off: nothing.  start() wraps the three domains with
 * rcgc_mem_wrap and sets RCGC_SLOW_TRACE in rt->mem.slow; stop() unwraps
 * them, and the fast paths of mem.c and object.c go straight to the pools
 * again.  While tracing is all that is on, those fast paths record pool
 * blocks' traces inline (tmfast.h: the call-site cache, the side slot, the
 * counters of rt->mem.trace) and call in here only to capture a traceback
 * the cache does not hold or to make a pool's side array; the wrappers
 * handle everything else with the same tables.
 *
 * Where traces live (docs/tracemalloc.md, "Tables"):
 *
 *   pool blocks of domain 0   a side array per pool, one 8-byte slot per
 *                             block (traceback id, size), found from the
 *                             block's address: arena map -> pool -> index.
 *                             No hashing, no probing, and 8 B per block.
 *   everything else           an open-addressing table keyed by
 *                             (domain, address), 24 B per entry.
 *
 * Tracebacks are interned: a frame is (file pointer or pc, line, kind), a
 * traceback a sequence of frame ids; both tables are hashed by content, so
 * identical stacks are stored once.  Call-site tracebacks (one frame) are
 * found through a direct-mapped cache keyed by (file pointer, line).
 *
 * Invariants (checked by rcgc_trace_validate, i.e. rcgc_validate, and by
 * the tests), with F1-F4 of tmfast.h:
 *   R1  h->peak - h->room (traced) == sum of the sizes of all traces;
 *       h->room <= h->peak;
 *   R2  a side slot has tb != 0 iff its block is traced; a pool's
 *       trace_slots is its side array in s->amap (or NULL).
 *   R3  every tb id held by a trace or the site cache is < ntb + 1.
 *   R4  while tracing, each domain's current allocator is our wrapper or a
 *       wrapper installed after it; h->sites is s->site iff frames come
 *       from call sites, else NULL.
 *   R5  a recorded native stack with tb == 0 has memo.fps[0] == 0, so
 *       rcgc_unwind_same never matches it (stacks_mru returns a match's
 *       tb untested).
 *   R6  h->last.file is rcgc_trace_no_site unless rt->mem.slow ==
 *       RCGC_SLOW_TRACE (tmfast.h; rcgc_mem_update_slow, mem.c, keeps it).
 *   R7  h->route follows slow and h->sites (rcgc_trace_route_update,
 *       after every write of either; tmfast.h).
 *   R8  rt->mem.trace.free_not follows slow (rcgc_mem_update_slow;
 *       tmfast.h).
 *   R10 h->last.file is rcgc_trace_no_site unless h->route is
 *       RCGC_TRACE_ROUTE_SITES (R6 and R4; tmfast.h).
 *   R9  a recorded native stack that can match (memo.fps[0] != 0) has
 *       memo.key == RCGC_UNWIND_NO_KEY or its walk was taken with skip
 *       s->skip[RCGC_DOMAIN_MEM][OP_FAST] (memo.key == memo.hi):
 *       stacks_mru_fast tests no skip.  The skips change only in
 *       calibrate, which drops every recorded stack first.
 *   R11 a recorded native stack that can match has memo.w0tag[1] ==
 *       (uintptr_t)file: stacks_mru_fast passes the file as the tag of
 *       rcgc_unwind_same_key, which compares it beside record 0.
 *
 * Tracing's own memory comes from libc (never from the traced domains);
 * s->mem counts it for get_tracemalloc_memory.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool.h"
#include "rcgc_tracemalloc.h"
#include "runtime.h"
#include "tmfast.h"
#include "tmsnap.h"
#include "unwind.h"

#define TM_UNKNOWN "<unknown>"
#define SITE_CACHE RCGC_TRACE_SITES
#define ACACHE 64

enum { FK_SOURCE = 0, FK_NATIVE = 1 };
/* How an allocation reached the tracer (the native calibration differs):
 * through a wrapper, or from the fast path of tmfast.h. */
enum { OP_MALLOC = 0, OP_CALLOC = 1, OP_REALLOC = 2, OP_FAST = 3, NOPS = 4 };

/* A frame as captured: a's meaning depends on kind (filename pointer or
 * return address). */
typedef struct rframe {
    uintptr_t a;
    int32_t lineno;
    uint32_t kind;
} rframe;

typedef struct rtb {
    uint64_t hash;
    uint32_t off;      /* into s->tb_ids */
    uint16_t n;
    uint16_t total;    /* saturates at 65535, as CPython's */
} rtb;

typedef rcgc_trace_site site_entry;

/* Side array of one pool (R2, F1). */
typedef rcgc_trace_slot tm_slot;
typedef struct tm_pside {
    uint32_t nslots;     /* blocks of the pool's current size class */
    uint32_t blocksize;
    uint32_t cap;        /* slots allocated (>= nslots) */
    uint32_t unused;
    tm_slot slots[];
} tm_pside;
typedef struct tm_aside {
    uintptr_t arena;     /* address >> RCGC_ARENA_BITS */
    tm_pside *pools[RCGC_ARENA_SLOTS];
} tm_aside;

/* Entry of the general traces table; tb == 0 marks an empty slot. */
typedef struct tm_entry {
    uintptr_t ptr;
    uint32_t domain;
    uint32_t tb;
    uint64_t size;
} tm_entry;

typedef struct idset {
    uint32_t *slots;     /* id + 1; 0 empty */
    size_t mask;
    size_t n;
} idset;

/* A recorded native walk and its traceback: valid when tb != 0.  A later
 * allocation at (file, line) whose walk would read the same frame records
 * (rcgc_unwind_same) has traceback tb. */
#define TM_STACKS 4
typedef struct tm_stack {
    rcgc_unwind_memo memo;   /* first: the repeat check addresses the
                              * memo from the entry's own pointer */
    const char *file;
    int line;
    uint32_t tb;
} tm_stack;

typedef struct tm_dom {
    struct rcgc_trace_state *s;
    int domain;
    int installed;
    rcgc_allocator inner;
} tm_dom;

struct rcgc_trace_state {
    rcgc_runtime *rt;
    int tracing;
    int limit;
    rcgc_frame_source source;
    rcgc_frames_fn cb;
    void *cb_arg;
    int reentrant;
    tm_dom doms[RCGC_DOMAIN_COUNT];
    rcgc_trace_hot *h;            /* &rt->mem.trace: counters, site cache */
    size_t mem;                   /* bytes of our own tables */

    rframe *frames;
    uint64_t *frame_hash;
    size_t nframes, capframes;
    idset frameset;

    rtb *tbs;
    size_t ntb, captb;
    uint32_t *tb_ids;
    size_t nids, capids;
    idset tbset;

    site_entry *site;             /* [SITE_CACHE] */

    /* pool side arrays: arena map keyed by arena number */
    tm_aside **amap;
    size_t amap_mask, amap_n;
    tm_aside *acache[ACACHE];     /* direct-mapped by arena number */

    tm_entry *tab;
    size_t tab_mask, tab_n;

    /* capture buffers, [limit + 1] */
    rframe *raw;
    uintptr_t *last_pcs;  /* the last native stack (return addresses after
                           * the call site) and its traceback */
    const char *last_file;
    int last_line, last_got, last_total;
    uint32_t last_tb;
    /* Recent native stacks whose walks were recorded (a few, so that a
     * program allocating from several stacks in turn does not walk at
     * every allocation); stacks[mru] is checked first. */
    tm_stack stacks[TM_STACKS];   /* rt->trace_mru is one of them
                                   * (state_get sets it) */
    int victim;
    uintptr_t *pcs;
    rcgc_frame *cbuf;
    int bufcap;

    /* native calibration: frames between our capture and the API caller
     * (skip), or where the API caller's frame pointer was saved (slot) */
    int skip[RCGC_DOMAIN_COUNT][NOPS];
    long slot[RCGC_DOMAIN_COUNT][NOPS];
    long calib_slot;
    int calibrated;
    int calibrating;
    int calib_seen;               /* the first capture of a calibration run */
    uintptr_t calib_fp;
    int calib_depth;
};

typedef struct rcgc_trace_state tm_state;

/* The key of an empty call-site cache entry (runtime.h): an address no
 * caller passes as its file. */
const char rcgc_trace_no_site[1] = "";

static rcgc_symbolize_fn g_symbolizer;
static void *g_symbolizer_arg;

/* ------------------------------------------------------------ our memory */

static void *tm_alloc(tm_state *s, size_t n)
{
    void *p = malloc(n);
    if (p)
        s->mem += n;
    return p;
}

static void *tm_calloc(tm_state *s, size_t n)
{
    void *p = calloc(1, n);
    if (p)
        s->mem += n;
    return p;
}

static void tm_free(tm_state *s, void *p, size_t n)
{
    if (p) {
        s->mem -= n;
        free(p);
    }
}

/* Grow an array from *cap to at least need items of `size` bytes. */
static int tm_grow(tm_state *s, void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return -1;
    s->mem += (c - *cap) * size;
    *p = q;
    *cap = c;
    return 0;
}

static int idset_grow(tm_state *s, idset *set, const uint64_t *hashes)
{
    size_t old = set->slots ? set->mask + 1 : 0;
    size_t cap = old ? old * 2 : 256;
    uint32_t *slots = tm_calloc(s, cap * sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < old; i++) {
        uint32_t v = set->slots[i];
        if (!v)
            continue;
        size_t j = hashes[v - 1] & (cap - 1);
        while (slots[j])
            j = (j + 1) & (cap - 1);
        slots[j] = v;
    }
    tm_free(s, set->slots, old * sizeof *slots);
    set->slots = slots;
    set->mask = cap - 1;
    return 0;
}

static int idset_reserve(tm_state *s, idset *set, const uint64_t *hashes)
{
    size_t cap = set->slots ? set->mask + 1 : 0;
    if ((set->n + 1) * 2 > cap)
        return idset_grow(s, set, hashes);
    return 0;
}

/* ---------------------------------------------------- frames, tracebacks */

static uint64_t rframe_hash(const rframe *f)
{
    return tm_mix64((uint64_t)f->a * 0x9e3779b97f4a7c15ULL ^ ((uint64_t)(uint32_t)f->lineno << 1) ^
                    f->kind);
}

/* The id of frame f, interned; -1 on out of memory. */
static long frame_intern(tm_state *s, const rframe *f)
{
    uint64_t h = rframe_hash(f);
    if (idset_reserve(s, &s->frameset, s->frame_hash) != 0)
        return -1;
    size_t j = h & s->frameset.mask;
    for (uint32_t v; (v = s->frameset.slots[j]) != 0; j = (j + 1) & s->frameset.mask) {
        const rframe *g = &s->frames[v - 1];
        if (g->a == f->a && g->lineno == f->lineno && g->kind == f->kind)
            return (long)(v - 1);
    }
    size_t cap = s->capframes;
    if (tm_grow(s, (void **)&s->frames, &cap, s->nframes + 1, sizeof *s->frames) != 0)
        return -1;
    cap = s->capframes;
    if (tm_grow(s, (void **)&s->frame_hash, &cap, s->nframes + 1, sizeof *s->frame_hash) != 0)
        return -1;
    s->capframes = cap;
    size_t id = s->nframes++;
    s->frames[id] = *f;
    s->frame_hash[id] = h;
    s->frameset.slots[j] = (uint32_t)id + 1;
    s->frameset.n++;
    return (long)id;
}

/* Hash of a captured stack: one multiply per frame, one final mix (this
 * runs at every allocation with native frames). */
static inline uint64_t raw_hash(const rframe *raw, int n, int total)
{
    uint64_t h = 0x243f6a8885a308d3ULL ^ (uint64_t)total;
    for (int i = 0; i < n; i++)
        h = (h ^ raw[i].a ^ ((uint64_t)(uint32_t)raw[i].lineno << 32) ^ raw[i].kind) *
            0x9e3779b97f4a7c15ULL;
    return tm_mix64(h);
}

/* The 1-based id of the traceback raw[0..n) (most recent first), interned;
 * 0 on out of memory. */
static uint32_t tb_intern(tm_state *s, const rframe *raw, int n, int total)
{
    if (total > 65535)
        total = 65535;
    uint64_t h = raw_hash(raw, n, total);
    size_t cap = s->tbset.slots ? s->tbset.mask + 1 : 0;
    if ((s->tbset.n + 1) * 2 > cap) {
        /* grow with the hashes kept in the rtb records */
        size_t ncap = cap ? cap * 2 : 256;
        uint32_t *slots = tm_calloc(s, ncap * sizeof *slots);
        if (!slots)
            return 0;
        for (size_t i = 0; i < cap; i++) {
            uint32_t v = s->tbset.slots[i];
            if (!v)
                continue;
            size_t j = s->tbs[v - 1].hash & (ncap - 1);
            while (slots[j])
                j = (j + 1) & (ncap - 1);
            slots[j] = v;
        }
        tm_free(s, s->tbset.slots, cap * sizeof *slots);
        s->tbset.slots = slots;
        s->tbset.mask = ncap - 1;
    }
    size_t j = h & s->tbset.mask;
    for (uint32_t v; (v = s->tbset.slots[j]) != 0; j = (j + 1) & s->tbset.mask) {
        const rtb *t = &s->tbs[v - 1];
        if (t->hash != h || t->n != n || t->total != total)
            continue;
        const uint32_t *ids = s->tb_ids + t->off;
        int same = 1;
        for (int i = 0; i < n && same; i++) {
            const rframe *g = &s->frames[ids[i]];
            same = g->a == raw[i].a && g->lineno == raw[i].lineno && g->kind == raw[i].kind;
        }
        if (same)
            return v;
    }
    if (s->nids + (size_t)n > UINT32_MAX || s->ntb >= UINT32_MAX - 1)
        return 0;
    if (tm_grow(s, (void **)&s->tb_ids, &s->capids, s->nids + (size_t)n, sizeof *s->tb_ids) != 0)
        return 0;
    if (tm_grow(s, (void **)&s->tbs, &s->captb, s->ntb + 1, sizeof *s->tbs) != 0)
        return 0;
    for (int i = 0; i < n; i++) {
        long id = frame_intern(s, &raw[i]);
        if (id < 0)
            return 0;
        s->tb_ids[s->nids + (size_t)i] = (uint32_t)id;
    }
    size_t id = s->ntb++;
    s->tbs[id] = (rtb){ h, (uint32_t)s->nids, (uint16_t)n, (uint16_t)total };
    s->nids += (size_t)n;
    s->tbset.slots[j] = (uint32_t)id + 1;
    s->tbset.n++;
    return (uint32_t)id + 1;
}

/* ------------------------------------------------------------- capture */

/* While the tracer runs code that may allocate (the frames callback, a
 * symbolizer), allocations are not traced: the wrappers see `reentrant`,
 * and RCGC_SLOW_HOLD keeps the fast path out. */
static void set_reentrant(tm_state *s, int on)
{
    s->reentrant = on;
    rcgc_mem_trace_hold(s->rt, on ? 1 : -1);
}

/* The traceback of a single call-site frame, through the cache. */
static uint32_t tb_call_site(tm_state *s, const char *file, int line)
{
    if (!file) {
        file = TM_UNKNOWN;
        line = 0;
    }
    site_entry *e = rcgc_trace_site_of(s->site, file, line);
    if (RCGC_LIKELY(e->file == file && e->line == line))
        return e->tb;
    rframe f = { (uintptr_t)file, line, FK_SOURCE };
    uint32_t tb = tb_intern(s, &f, 1, 1);
    if (tb) {
        e->file = file;
        e->line = line;
        e->tb = tb;
    }
    return tb;
}

#if defined(__GNUC__) && !defined(__clang__)
#define TM_KEEP_FP __attribute__((noinline, optimize("no-omit-frame-pointer")))
#else
#define TM_KEEP_FP __attribute__((noinline))
#endif

/* Forget every recorded native walk (a new limit, frame source or
 * calibration, or their tracebacks dropped). */
static void stacks_reset(tm_state *s)
{
    for (int i = 0; i < TM_STACKS; i++) {
        s->stacks[i].tb = 0;
        s->stacks[i].memo.fps[0] = 0;   /* never matches (R5) */
        s->stacks[i].memo.key = RCGC_UNWIND_NO_KEY;
    }
    s->last_tb = 0;
}

/* The traceback of a recorded walk that matched: R5, a memo that can
 * match has its traceback, so the caller need not test it for 0. */
static RCGC_ALWAYS_INLINE uint32_t stack_hit_tb(const tm_stack *e)
{
    uint32_t tb = e->tb;
    RCGC_ASSERT(tb != 0);
#if defined(__GNUC__) || defined(__clang__)
    if (tb == 0)
        __builtin_unreachable();
#endif
    return tb;
}

/* The traceback of the most recent recorded walk when walking from fp
 * with `skip` at (file, line) would repeat it exactly, else 0 (an entry
 * dropped by stacks_reset has tb 0: a match gives 0 as well).  fp is the
 * caller's own frame and `skip` its calibrated skip (>= 1): a walk that
 * started elsewhere because rcgc's frames lack frame pointers (slot >= 0,
 * recorded with skip 0 from the API caller's frame) never matches. */
static RCGC_ALWAYS_INLINE uint32_t stacks_mru(const tm_state *s, uintptr_t fp, int skip,
                                              const char *file, int line)
{
    const tm_stack *e = s->rt->trace_mru;
    /* Skips are >= 1 (state_get, calibrate_one): the check compares only
     * the saved frame pointer of record 0, without testing skip. */
    RCGC_ASSERT(skip >= 1);
#if defined(__GNUC__) || defined(__clang__)
    if (skip < 1)
        __builtin_unreachable();
#endif
    if (e->file == file && e->line == line && rcgc_unwind_same(fp, skip, &e->memo))
        return stack_hit_tb(e);
    return 0;
}

/* stacks_mru for the fast paths of rcgc_mem_malloc (skip
 * s->skip[RCGC_DOMAIN_MEM][OP_FAST], from their own frame fp): a walk
 * recorded with another skip has no key (tb_native_walk, R9), so the
 * check tests neither the skip nor, where it has an AVX2 loop, the CPU
 * (rcgc_unwind_same_key). */
static RCGC_ALWAYS_INLINE uint32_t stacks_mru_fast(const tm_stack *e, uintptr_t fp,
                                                   const char *file, int line)
{
    /* The file is the walk's tag (R11), compared in the check's vector. */
    if (e->line == line && rcgc_unwind_same_key(fp, &e->memo, (uintptr_t)file))
        return stack_hit_tb(e);
    return 0;
}

/* The same for any recorded walk (the one found becomes the most recent). */
static uint32_t stacks_find(tm_state *s, uintptr_t fp, int skip, const char *file, int line)
{
    for (int i = 0; i < TM_STACKS; i++) {
        const tm_stack *e = &s->stacks[i];
        if (e->tb != 0 && e->file == file && e->line == line &&
            rcgc_unwind_same(fp, skip, &e->memo)) {
            s->rt->trace_mru = &s->stacks[i];
            return e->tb;
        }
    }
    return 0;
}

/* Capture the native stack from fp (tb_native's frame): the call site, then
 * the return addresses above the API caller (skip[d][op] frames are
 * rcgc's own).  Out of line: the repeat check of tb_native runs far more
 * often. */
static RCGC_NOINLINE uint32_t tb_native_walk(tm_state *s, int d, int op, const char *file,
                                             int line, uintptr_t fp)
{
    if (RCGC_UNLIKELY(s->calibrating)) {
        /* Only the first capture of a run is the path being measured (a
         * failed fast path retries through a wrapper). */
        if (!s->calib_seen) {
            s->calib_seen = 1;
            s->calib_depth = rcgc_unwind_find(fp, s->calib_fp);
            s->calib_slot = s->calib_depth < 0 ? rcgc_unwind_find_slot(fp, s->calib_fp) : -1;
        }
        return 0;
    }
    int first = file != NULL;   /* the call site is the most recent frame */
    int depth = 0;
    int skip = s->skip[d][op];
    long slot = s->slot[d][op];
    if (slot >= 0) {
        /* rcgc's frames lack frame pointers: start from the caller's frame
         * pointer where they saved it. */
        fp = rcgc_unwind_load(fp, slot);
        skip = 0;
    }
    int max = s->limit - first;
    uint32_t tb = stacks_find(s, fp, skip, file, line);
    if (tb)
        return tb;
    /* Walk, recording into the next entry (round robin). */
    tm_stack *e = &s->stacks[s->victim];
    s->victim = (s->victim + 1) % TM_STACKS;
    e->tb = 0;
    e->memo.fps[0] = 0;   /* R5 until the walk is recorded with its tb */
    e->memo.key = RCGC_UNWIND_NO_KEY;   /* K1 (unwind.h) */
    uintptr_t *pcs = s->pcs;
    int got, memo = skip + max <= RCGC_UNWIND_MEMO;
    if (memo) {
        got = rcgc_unwind_walk(fp, skip, max, &depth, &e->memo);
        memo = e->memo.n > 0;
        pcs = e->memo.pcs + skip;
    } else {
        got = rcgc_unwind_fp(fp, skip, pcs, max, &depth);
    }
    int total = first + depth;
    if (s->last_tb && s->last_got == got && s->last_total == total && s->last_file == file &&
        s->last_line == line && memcmp(s->last_pcs, pcs, (size_t)got * sizeof *pcs) == 0) {
        tb = s->last_tb;
    } else {
        int n = 0;
        if (first)
            s->raw[n++] = (rframe){ (uintptr_t)file, line, FK_SOURCE };
        for (int i = 0; i < got; i++)
            s->raw[n++] = (rframe){ pcs[i], 0, FK_NATIVE };
        if (n == 0) {
            s->raw[n++] = (rframe){ (uintptr_t)TM_UNKNOWN, 0, FK_SOURCE };
            total = 1;
        }
        tb = tb_intern(s, s->raw, n, total);
        if (!tb) {
            e->memo.fps[0] = 0;   /* R5: recorded, but without a tb */
            e->memo.key = RCGC_UNWIND_NO_KEY;   /* K1 (unwind.h) */
            return 0;
        }
        memcpy(s->last_pcs, pcs, (size_t)got * sizeof *pcs);
        s->last_got = got;
        s->last_total = total;
        s->last_file = file;
        s->last_line = line;
        s->last_tb = tb;
    }
    if (memo) {
        e->file = file;
        e->line = line;
        e->tb = tb;
        e->memo.w0tag[1] = (uintptr_t)file;   /* R11 */
        /* R9: only a walk of the fast paths' skip keeps its key. */
        if (skip != s->skip[RCGC_DOMAIN_MEM][OP_FAST])
            e->memo.key = RCGC_UNWIND_NO_KEY;
        s->rt->trace_mru = e;
    }
    return tb;
}

/* The native traceback of the allocation in progress.  A loop allocates
 * from the same stack again and again: when the most recent stack's walk
 * was recorded (stacks[mru]; none while a calibration runs), checking
 * that the chain is still the same loads all its links at once instead of
 * chasing them, and this small frame does only that; tb_native_walk tries
 * the other recorded stacks before it walks. */
static TM_KEEP_FP uint32_t tb_native(tm_state *s, int d, int op, const char *file, int line)
{
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    uint32_t tb = stacks_mru(s, fp, s->skip[d][op], file, line);
    if (RCGC_LIKELY(tb != 0))
        return tb;
    return tb_native_walk(s, d, op, file, line, fp);
}

static uint32_t tb_callback(tm_state *s, const char *file, int line)
{
    int total = 0;
    set_reentrant(s, 1);
    int n = s->cb(s->cb_arg, s->cbuf, s->limit, &total);
    set_reentrant(s, 0);
    if (n <= 0)
        return tb_call_site(s, file, line);
    if (n > s->limit)
        n = s->limit;
    for (int i = 0; i < n; i++) {
        const char *f = s->cbuf[i].filename ? s->cbuf[i].filename : TM_UNKNOWN;
        s->raw[i] = (rframe){ (uintptr_t)f, s->cbuf[i].lineno, FK_SOURCE };
    }
    if (total < n)
        total = n;
    return tb_intern(s, s->raw, n, total);
}

/* The traceback of the allocation in progress at (file, line) (1-based id;
 * 0 on out of memory). */
static inline uint32_t tb_current(tm_state *s, int d, int op, const char *file, int line)
{
    if (RCGC_LIKELY(s->source == RCGC_FRAMES_CALL_SITE))
        return tb_call_site(s, file, line);
    if (s->source == RCGC_FRAMES_NATIVE)
        return tb_native(s, d, op, file, line);
    return tb_callback(s, file, line);
}


/* The site of the allocation in progress through a wrapper. */
#define SITE(s) (s)->rt->mem.site_file, (s)->rt->mem.site_line

/* -------------------------------------------------------------- traces */

static inline uintptr_t arena_no(uintptr_t p)
{
    return p >> RCGC_ARENA_BITS;
}

static tm_aside *aside_find(tm_state *s, uintptr_t ano)
{
    tm_aside **c = &s->acache[ano & (ACACHE - 1)];
    if (RCGC_LIKELY(*c && (*c)->arena == ano))
        return *c;
    if (!s->amap)
        return NULL;
    size_t j = tm_mix64(ano) & s->amap_mask;
    for (tm_aside *a; (a = s->amap[j]) != NULL; j = (j + 1) & s->amap_mask)
        if (a->arena == ano) {
            *c = a;
            return a;
        }
    return NULL;
}

static tm_aside *aside_make(tm_state *s, uintptr_t ano)
{
    tm_aside *a = aside_find(s, ano);
    if (a)
        return a;
    size_t cap = s->amap ? s->amap_mask + 1 : 0;
    if ((s->amap_n + 1) * 2 > cap) {
        size_t ncap = cap ? cap * 2 : 64;
        tm_aside **m = tm_calloc(s, ncap * sizeof *m);
        if (!m)
            return NULL;
        for (size_t i = 0; i < cap; i++) {
            tm_aside *x = s->amap[i];
            if (!x)
                continue;
            size_t j = tm_mix64(x->arena) & (ncap - 1);
            while (m[j])
                j = (j + 1) & (ncap - 1);
            m[j] = x;
        }
        tm_free(s, s->amap, cap * sizeof *m);
        s->amap = m;
        s->amap_mask = ncap - 1;
    }
    a = tm_calloc(s, sizeof *a);
    if (!a)
        return NULL;
    a->arena = ano;
    size_t j = tm_mix64(ano) & s->amap_mask;
    while (s->amap[j])
        j = (j + 1) & s->amap_mask;
    s->amap[j] = a;
    s->amap_n++;
    s->acache[ano & (ACACHE - 1)] = a;
    return a;
}

static inline size_t pside_bytes(uint32_t nslots)
{
    return sizeof(tm_pside) + (size_t)nslots * sizeof(tm_slot);
}

/* Number of traced slots of a side array (slow: for checks). */
static uint32_t pside_count(const tm_pside *ps)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < ps->nslots; i++)
        n += ps->slots[i].tb != 0;
    return n;
}

static void pside_drop(tm_state *s, tm_aside *a, unsigned pi)
{
    tm_pside *ps = a->pools[pi];
    if (!ps)
        return;
    /* F3: a pool that changed class had only zero slots. */
    RCGC_ASSERT(pside_count(ps) == 0);
    tm_free(s, ps, pside_bytes(ps->cap));
    a->pools[pi] = NULL;
}

size_t rcgc_trace_settle_hdrs(rcgc_trace_hot *h)
{
    /* h is &rt->mem.trace (tm_state.h, rcgc_runtime) */
    rcgc_runtime *rt = (rcgc_runtime *)(void *)((char *)h - offsetof(rcgc_runtime, mem.trace));
    rcgc_pool_state *ps = &rt->pool;
    if (!rt->mem.tracing)   /* L1 holds while tracing only (no lazy free otherwise) */
        return h->room;
    rcgc_mem_hdr_ring_flush(rt);   /* T4: the ring's blocks first */
    for (unsigned r = RCGC_NCLASSES; r < RCGC_NROWS; r++)
        /* L1: the lazy entries lie above the settled ones (the mark is
         * written too, read only while the credits are off) */
        for (void **e = ps->ctop[r]; e > &ps->crow[r][0] && rcgc_trace_hdr_lazy(ps, r, e);
             e--) {
            rcgc_trace_slot *hd = rcgc_trace_hdr(*e);
            h->room += hd->size - ps->hdr_credit[r];
            hd->tb = 0;
            hd->size = (uint32_t)ps->hdr_credit[r];
            *rcgc_pool_cslot(e) = RCGC_HDR_SETTLED;
        }
    return h->room;
}

RCGC_NOINLINE void *rcgc_trace_hdr_borrowed(rcgc_runtime *rt, void *bp, size_t size)
{
    rcgc_trace_borrow(&rt->mem.trace);
    rcgc_trace_hdr(bp)->size = (uint32_t)size;
    return bp;
}

/* Before the tracer reads or changes traces: D1's pending slot and L1's
 * lazy frees settled. */
static void settle_all(tm_state *s)
{
    rcgc_trace_settle(s->h);
    rcgc_trace_settle_hdrs(s->h);
}

/* L1: every cached block of a traced row settled, contributing nothing
 * to the count: its header (0, hdr_credit) while tracing (start and
 * clear_traces), zero when not (stop), after every header was zeroed.
 * With tracing, the credits are on iff no block of the traced pools is
 * live (every live block allocated from now on is traced: a lazy free's
 * size is at least its row's credit); credits_off turns them off when a
 * live block loses its trace. */
static void hdr_rows_mark(rcgc_runtime *rt, int tracing)
{
    rcgc_pool_state *ps = &rt->pool;
    size_t live = 0;
    rcgc_mem_hdr_ring_flush(rt);   /* T4: with the credits its blocks had */
    for (unsigned r = RCGC_NCLASSES; r < RCGC_NROWS; r++)
        live += rcgc_pool_nlive(ps, r);
    for (unsigned r = RCGC_NCLASSES; r < RCGC_NROWS; r++) {
        ps->hdr_credit[r] = tracing && live == 0 ? (size_t)(r - RCGC_NCLASSES) * 16 + 1 : 0;
        ps->cslot[r][0] = RCGC_HDR_SETTLED;
        for (uint32_t k = 1; k <= rcgc_pool_ncache(ps, r); k++) {
            ps->cslot[r][k] = RCGC_HDR_SETTLED;
            rcgc_trace_slot *hd = rcgc_trace_hdr(ps->crow[r][k]);
            hd->tb = 0;
            hd->size = (uint32_t)ps->hdr_credit[r];
        }
    }
    rcgc_mem_free_rows_set(rt);   /* R12: the traced rows' free follows the credits */
}

/* L1: a live block of a traced pool lost its trace (its free must not
 * credit room): every lazy free settled, the credits off. */
static void credits_off(tm_state *s)
{
    rcgc_runtime *rt = s->rt;
    rcgc_pool_state *ps = &rt->pool;
    rcgc_trace_settle_hdrs(s->h);
    for (unsigned r = RCGC_NCLASSES; r < RCGC_NROWS; r++) {
        ps->hdr_credit[r] = 0;
        for (uint32_t k = 1; k <= rcgc_pool_ncache(ps, r); k++) {
            memset(rcgc_trace_hdr(ps->crow[r][k]), 0, sizeof(rcgc_trace_slot));
            ps->cslot[r][k] = RCGC_HDR_SETTLED;   /* L1: the marks tell from now on */
        }
    }
    rcgc_mem_free_rows_set(rt);   /* R12: the free marks its entries */
}

/* L1: the sizes of the lazy traces (without settling them). */
static size_t hdr_lazy_bytes(const rcgc_runtime *rt)
{
    const rcgc_pool_state *ps = &rt->pool;
    size_t n = 0;
    if (!rt->mem.tracing)
        return 0;
    n += rcgc_mem_hdr_ring_bytes(rt);   /* T4 */
    for (unsigned r = RCGC_NCLASSES; r < RCGC_NROWS; r++)
        for (void *const *e = ps->ctop[r]; e > &ps->crow[r][0] && rcgc_trace_hdr_lazy(ps, r, e);
             e--)
            n += rcgc_trace_hdr(*e)->size - ps->hdr_credit[r];
    return n;
}

/* Is p a block of one of this runtime's pools?  Only those keep their
 * traces in side slots (another runtime's pool has its own tracer). */
static inline rcgc_pool *own_pool(tm_state *s, uintptr_t p)
{
    if (!rcgc_arena_lookup((const void *)p))
        return NULL;
    rcgc_pool *pool = rcgc_pool_of((const void *)p);
    return pool->rt == s->rt ? pool : NULL;
}

/* The side array of our in-use pool `pool`, created (or an old one of
 * its place reused) when it has none; NULL out of memory.  Nothing may
 * be pending (D1: the array of a pool that changes class is reused or
 * freed here). */
static tm_slot *pool_array(tm_state *s, rcgc_pool *pool)
{
    if (RCGC_LIKELY(pool->trace_slots != NULL))
        return pool->trace_slots;
    uintptr_t p = (uintptr_t)pool->mem;
    tm_aside *a = aside_make(s, arena_no(p));
    if (!a)
        return NULL;
    unsigned pi = (unsigned)((p >> RCGC_POOL_BITS) & (RCGC_ARENA_SLOTS - 1));
    tm_pside *ps = a->pools[pi];
    if (!ps || ps->blocksize != pool->size) {
        /* The pool was (re)carved for another size class.  Its slots are
         * all clear (F3), so an array big enough is reused as it is: pools
         * change class often under mixed sizes. */
        if (ps && ps->cap >= pool->nblocks) {
            RCGC_ASSERT(pside_count(ps) == 0);
            ps->nslots = pool->nblocks;
            ps->blocksize = pool->size;
        } else {
            /* A pool that changes class gets room for the smallest class
             * at once, so that it stops reallocating. */
            uint32_t cap = ps ? (uint32_t)(RCGC_POOL_SIZE / RCGC_ALIGNMENT) : pool->nblocks;
            if (cap < pool->nblocks)
                cap = pool->nblocks;
            pside_drop(s, a, pi);
            ps = tm_calloc(s, pside_bytes(cap));
            if (!ps)
                return NULL;
            ps->nslots = pool->nblocks;
            ps->cap = cap;
            ps->blocksize = pool->size;
            a->pools[pi] = ps;
        }
    }
    /* F1: the fast paths find the array from the pool from now on. */
    rcgc_trace_set_slots(pool, ps->slots);
    return ps->slots;
}

/* The slot of block p of our pool `pool`, creating the side array.
 * Nothing may be pending (D1, pool_array). */
static tm_slot *pool_slot(tm_state *s, rcgc_pool *pool, uintptr_t p)
{
    if (pool->szidx >= RCGC_NCLASSES)   /* a traced pool: the header (H1) */
        return rcgc_trace_hdr(rcgc_pool_block_at(pool, rcgc_pool_index(pool, (const void *)p)));
    tm_slot *slots = pool_array(s, pool);
    return slots ? &slots[rcgc_pool_index(pool, (const void *)p)] : NULL;
}

/* F5: give every in-use pool of the runtime its side array (start, and
 * clear_traces, which keeps them).  0, or -1 out of memory (the pools
 * given one keep it; the caller drops them). */
static int arrays_for_all(tm_state *s)
{
    settle_all(s);   /* D1: pool_array may reuse or free one */
    for (rcgc_arena *ar = s->rt->pool.all; ar; ar = ar->allnext)
        for (unsigned i = 0; i < ar->ncarved; i++) {
            rcgc_pool *pool = rcgc_arena_pool(ar, i);
            /* (a traced pool keeps its traces in its headers, H1) */
            if (pool->szidx < RCGC_NCLASSES && !pool_array(s, pool))
                return -1;
        }
    return 0;
}

int rcgc_trace_pool_carved(rcgc_runtime *rt, rcgc_pool *pool)
{
    tm_state *s = rt->trace;
    RCGC_ASSERT(rt->mem.tracing && s != NULL && pool->trace_slots == NULL);
    settle_all(s);   /* D1: pool_array may reuse or free one */
    return pool_array(s, pool) ? 0 : -1;
}

static inline uint64_t entry_hash(uint32_t domain, uintptr_t ptr)
{
    return tm_mix64((uint64_t)ptr ^ ((uint64_t)domain << 52) ^ domain);
}

static tm_entry *tab_find(tm_state *s, uint32_t domain, uintptr_t ptr)
{
    if (!s->tab)
        return NULL;
    size_t j = entry_hash(domain, ptr) & s->tab_mask;
    for (tm_entry *e; (e = &s->tab[j])->tb != 0; j = (j + 1) & s->tab_mask)
        if (e->ptr == ptr && e->domain == domain)
            return e;
    return NULL;
}

static int tab_grow(tm_state *s)
{
    size_t cap = s->tab ? s->tab_mask + 1 : 0;
    size_t ncap = cap ? cap * 2 : 64;
    tm_entry *t = tm_calloc(s, ncap * sizeof *t);
    if (!t)
        return -1;
    for (size_t i = 0; i < cap; i++) {
        tm_entry *e = &s->tab[i];
        if (!e->tb)
            continue;
        size_t j = entry_hash(e->domain, e->ptr) & (ncap - 1);
        while (t[j].tb)
            j = (j + 1) & (ncap - 1);
        t[j] = *e;
    }
    tm_free(s, s->tab, cap * sizeof *t);
    s->tab = t;
    s->tab_mask = ncap - 1;
    return 0;
}

/* Remove e, keeping every probe chain whole (backward shift). */
static void tab_remove(tm_state *s, tm_entry *e)
{
    size_t i = (size_t)(e - s->tab);
    size_t j = i;
    for (;;) {
        j = (j + 1) & s->tab_mask;
        tm_entry *f = &s->tab[j];
        if (!f->tb)
            break;
        size_t home = entry_hash(f->domain, f->ptr) & s->tab_mask;
        /* f may move to i if its home is not in (i, j] cyclically. */
        if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
            s->tab[i] = *f;
            i = j;
        }
    }
    s->tab[i].tb = 0;
    s->tab_n--;
}

static inline void add_traced(tm_state *s, size_t size)
{
    rcgc_trace_count(s->h, size);
}

/* Record the trace of block ptr of our pool `pool`, replacing any. */
static inline int trace_put_pool(tm_state *s, rcgc_pool *pool, uintptr_t ptr, size_t size,
                                 uint32_t tb)
{
    /* D1: settled before pool_slot may reuse or free a side array, and
     * before the slot (maybe the pending one) is read. */
    settle_all(s);
    tm_slot *slot = pool_slot(s, pool, ptr);
    if (!slot)
        return -1;
    s->h->room += slot->size;   /* 0 when it was not traced (F2) */
    slot->tb = tb;
    slot->size = (uint32_t)size;
    add_traced(s, size);
    return 0;
}

int rcgc_trace_record_block(rcgc_runtime *rt, void *p, size_t size, const char *file, int line,
                            int fast)
{
    tm_state *s = rt->trace;
    uint32_t tb = tb_current(s, fast, OP_FAST, file, line);
    if (tb == 0)
        return -1;
    return trace_put_pool(s, rcgc_pool_of(p), (uintptr_t)p, size, tb);
}

void *rcgc_trace_hdr_block(rcgc_runtime *rt, size_t size, uint32_t tb)
{
    RCGC_ASSERT(size >= 1 && size <= RCGC_SMALL_LIMIT && tb != 0);
    unsigned r = (unsigned)((size - 1) >> RCGC_ALIGN_SHIFT) + RCGC_NCLASSES;
    size_t credit = rt->pool.hdr_credit[r];   /* L1: a block of the row */
    void *p = rcgc_pool_try_alloc_cached(&rt->pool, r);
    if (p == NULL) {
        credit = 0;   /* a block of the pools: a zero header (H2) */
        rcgc_pool *from;
        p = rcgc_pool_try_alloc_used(&rt->pool, r, &from);
        if (p == NULL && (p = rcgc_pool_alloc_slow_traced(rt, r)) == NULL)
            return NULL;
    }
    RCGC_ASSERT(rcgc_pool_of(p)->szidx == r);
    rcgc_trace_hdr_write(&rt->mem.trace, rcgc_trace_hdr(p), tb, size, credit);   /* H2, L1 */
    return p;
}

/* rcgc_trace_malloc_fast with the traceback tb known: when no block was
 * given, a traced pool's block with its header (H1), else the given
 * block, its trace stored (making the pool's side array if needed). */
static RCGC_NOINLINE void *malloc_fast_put(tm_state *s, void *p, rcgc_pool *pool, size_t size,
                                           const char *file, int line, uint32_t tb)
{
    rcgc_runtime *rt = s->rt;
    if (p == NULL) {
        p = rcgc_trace_hdr_block(rt, size, tb);
        return p != NULL ? p : rcgc_mem_malloc_wrapped(rt, size, file, line, NULL);
    }
    if (rcgc_trace_put_block(rt, pool, p, size, tb) != 0)
        return rcgc_mem_malloc_wrapped(rt, size, file, line, p);
    return p;   /* a pool block for MEM: counted by M3 (pool.h) */
}

/* rcgc_trace_malloc_fast when the repeat check did not do it: fp is its
 * frame (the native calibration of OP_FAST for MEM measures from there). */
static RCGC_NOINLINE void *malloc_fast_capture(tm_state *s, void *p, rcgc_pool *pool, size_t size,
                                               const char *file, int line, uintptr_t fp)
{
    uint32_t tb = s->source == RCGC_FRAMES_NATIVE
                      ? tb_native_walk(s, RCGC_DOMAIN_MEM, OP_FAST, file, line, fp)
                      : tb_current(s, RCGC_DOMAIN_MEM, OP_FAST, file, line);
    if (tb == 0)
        return rcgc_mem_malloc_wrapped(s->rt, size, file, line, p);
    return malloc_fast_put(s, p, pool, size, file, line, tb);
}

/* The allocation of rcgc_trace_malloc_fast once its traceback tb is
 * known from a recorded native stack: malloc_fast_put (a traced pool's
 * block when none was taken yet, H1). */
static inline void *malloc_fast_known(tm_state *s, void *p, rcgc_pool *pool, size_t size,
                                      const char *file, int line, uint32_t tb)
{
    return malloc_fast_put(s, p, pool, size, file, line, tb);
}

/* rcgc_trace_malloc_fast when the most recent native stack is not this
 * one: another recorded stack, else the capture.  fp is the frame of
 * rcgc_trace_malloc_fast (live while this runs). */
static RCGC_NOINLINE void *malloc_fast_other(tm_state *s, void *p, rcgc_pool *pool, size_t size,
                                             const char *file, int line, uintptr_t fp)
{
    uint32_t tb = stacks_find(s, fp, s->skip[RCGC_DOMAIN_MEM][OP_FAST], file, line);
    if (tb != 0)
        return malloc_fast_known(s, p, pool, size, file, line, tb);
    return malloc_fast_capture(s, p, pool, size, file, line, fp);
}

TM_KEEP_FP void *rcgc_trace_malloc_fast(rcgc_runtime *rt, void *p, rcgc_pool *pool, size_t size,
                                        const char *file, int line)
{
    tm_state *s = rt->trace;
    /* The most recent recorded native stack (tb_native); the others and
     * the capture out of line.  The frame address is taken where it is
     * used (the frame pointer register itself, no copy kept). */
    uint32_t tb = stacks_mru_fast(rt->trace_mru, (uintptr_t)__builtin_frame_address(0), file,
                                  line);
    if (RCGC_LIKELY(tb != 0))
        return malloc_fast_known(s, p, pool, size, file, line, tb);
    p = malloc_fast_other(s, p, pool, size, file, line, (uintptr_t)__builtin_frame_address(0));
    /* Not a tail call: the walk reads this frame (fp). */
    __asm__ volatile("" ::: "memory");
    return p;
}

/* malloc_fast_other for rcgc_trace_malloc_native (no block given), its
 * arguments in the same registers as the caller's (no moves). */
static RCGC_NOINLINE void *malloc_native_other(tm_state *s, size_t size, const char *file,
                                               int line, uintptr_t fp)
{
    uint32_t tb = stacks_find(s, fp, s->skip[RCGC_DOMAIN_MEM][OP_FAST], file, line);
    if (tb != 0)
        return malloc_fast_known(s, NULL, NULL, size, file, line, tb);
    return malloc_fast_capture(s, NULL, NULL, size, file, line, fp);
}

/* malloc_fast_put for rcgc_trace_malloc_native (no block given), its
 * arguments in the same registers as the caller's. */
static RCGC_NOINLINE void *malloc_native_put(tm_state *s, size_t size, const char *file,
                                             int line, uint32_t tb)
{
    return malloc_fast_put(s, NULL, NULL, size, file, line, tb);
}

/* rcgc_trace_malloc_native's hit: the trace into the header of block p
 * popped from its traced row (L1).  The arguments in the order the caller
 * has them: size stays where rcgc_trace_malloc_native received it, file's
 * register takes the block, line's tb (2 moves at the call instead of 3,
 * and the old size goes to the block's register here).  The credit's row
 * is computed from size: its address from the caller's &ctop[r] (one
 * memory operand, 2 instructions fewer) and a pin of the class to a
 * free register (1 fewer) both ran 2-5% slower on the 16-native hot pair
 * in same-run sets (docs/tracemalloc.md, perf-tm18). */
static RCGC_NOINLINE void *native_hdr_write(rcgc_runtime *rt, size_t size, void *p, uint32_t tb)
{
    /* rcgc_trace_hdr_take: room's update is one read-modify-write there
     * since perf-tm22 (perf-tm23 had built the same here). */
    size_t credit = rt->pool.hdr_credit[((size - 1) >> RCGC_ALIGN_SHIFT) + RCGC_NCLASSES];
    return rcgc_trace_hdr_take(rt, p, tb, size, credit);
}

TM_KEEP_FP void *rcgc_trace_malloc_native(rcgc_runtime *rt, size_t size, const char *file,
                                          int line, void ***topp, void **top)
{
    /* As rcgc_trace_malloc_fast with no block given: the same frames
     * (mem.c's rcgc_mem_malloc_at, then this function) for the calibration.
     * The repeat check reads the most recent walk from rt itself: the
     * tracer's state only on the other paths. */
    const tm_stack *e = rt->trace_mru;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    /* The walk in rax (free until the block is popped) and line left in
     * rcx, where the calls below take it (pinned there before each):
     * gcc 12 otherwise loaded the walk into rcx and moved line out of it
     * first, one move on every call. */
    __asm__("" : "+a"(e));
#endif
    /* stacks_mru_fast, spelled out: past the line's compare, line is
     * e->line, and the check's asm takes rcx (line's register) for its
     * offsets word, so the paths after it read the line from e (a load
     * on the rare paths) instead of keeping line in a register the
     * function would have to save (a push and a reload on every hit). */
    if (RCGC_UNLIKELY(e->line != line))
        goto miss;
    if (RCGC_LIKELY(rcgc_unwind_same_key((uintptr_t)__builtin_frame_address(0), &e->memo,
                                         (uintptr_t)file))) {
        uint32_t tb = stack_hit_tb(e);
        /* mem.c calls this for pool sizes only (1..RCGC_SMALL_LIMIT):
         * the pop's size class is (size - 1) >> 4. */
        RCGC_ASSERT(size >= 1 && size <= RCGC_SMALL_LIMIT);
#if defined(__GNUC__) || defined(__clang__)
        if (size == 0 || size > RCGC_SMALL_LIMIT)
            __builtin_unreachable();
#endif
        /* The pop of the traced twin's row (H1) on the caller's top: an
         * empty row's top is its NULL floor.  The header holds a lazy
         * free's trace or zero (L1, H2), never the pending slot (D1 is for
         * side slots). */
        RCGC_ASSERT(topp == &rt->pool.ctop[((size - 1) >> RCGC_ALIGN_SHIFT) + RCGC_NCLASSES] &&
                    top == *topp);
        void *p = *top;
        if (RCGC_LIKELY(p != NULL)) {
            *topp = top - 1;
#if defined(__GNUC__) || defined(__clang__)
            /* the next pop's header (integer arithmetic: the floor is NULL) */
            __builtin_prefetch((const void *)((uintptr_t)top[-1] - sizeof(rcgc_trace_slot)), 1, 3);
#endif
            /* L1: the lazy free's size (less the row's credit) back; a
             * tail call, so that this function keeps no registers across
             * the borrow's call */
            return native_hdr_write(rt, size, p, tb);
        }
        line = e->line;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        __asm__("" : "+c"(line));   /* see e's pin above */
#endif
        return malloc_native_put(rt->trace, size, file, line, tb);
    }
    line = e->line;
miss:;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __asm__("" : "+c"(line));   /* see e's pin above */
#endif
    void *p = malloc_native_other(rt->trace, size, file, line,
                                  (uintptr_t)__builtin_frame_address(0));
    /* Not a tail call: the walk reads this frame (fp). */
    __asm__ volatile("" ::: "memory");
    return p;
}

int rcgc_trace_put_new(rcgc_runtime *rt, rcgc_pool *pool, void *p, size_t size, uint32_t tb)
{
    return trace_put_pool(rt->trace, pool, (uintptr_t)p, size, tb);
}

/* Record a trace, replacing any trace at the same address.  0 or -1 on
 * out of memory (no trace recorded, nothing changed). */
static int trace_put(tm_state *s, uint32_t domain, uintptr_t ptr, size_t size, uint32_t tb)
{
    rcgc_pool *pool;
    if (domain == 0 && size <= UINT32_MAX && (pool = own_pool(s, ptr)) != NULL)
        return trace_put_pool(s, pool, ptr, size, tb);
    tm_entry *e = tab_find(s, domain, ptr);
    if (e) {
        s->h->room += e->size;
        e->size = size;
        e->tb = tb;
        add_traced(s, size);
        return 0;
    }
    size_t cap = s->tab ? s->tab_mask + 1 : 0;
    if ((s->tab_n + 1) * 4 > cap * 3 && tab_grow(s) != 0)
        return -1;
    size_t j = entry_hash(domain, ptr) & s->tab_mask;
    while (s->tab[j].tb)
        j = (j + 1) & s->tab_mask;
    s->tab[j] = (tm_entry){ ptr, domain, tb, size };
    s->tab_n++;
    add_traced(s, size);
    return 0;
}

/* Where a trace is stored: a pool slot or a table entry. */
typedef struct tref {
    tm_slot *slot;
    tm_entry *e;
    int hdr;   /* slot is a traced pool's header (H1): in the block's pool */
} tref;

/* The slot of (domain, ptr) when ptr is a block of our pools: 1 and
 * *slot, its side slot (NULL when the pool has no side array), or 2 and
 * *slot, its header (a traced pool's block, H1); else 0. */
static inline int slot_ref(tm_state *s, uint32_t domain, uintptr_t ptr, tm_slot **slot)
{
    rcgc_pool *pool;
    if (domain != 0 || (pool = own_pool(s, ptr)) == NULL)
        return 0;
    if (pool->szidx >= RCGC_NCLASSES && pool->szidx != UINT16_MAX) {
        /* H1: a traced pool's block has its trace in its header */
        *slot = rcgc_trace_hdr(rcgc_pool_block_at(pool, rcgc_pool_index(pool, (const void *)ptr)));
        return 2;
    }
    *slot = pool->trace_slots ? &pool->trace_slots[rcgc_pool_index(pool, (const void *)ptr)]
                              : NULL;
    return 1;
}

/* Find the trace of (domain, ptr); 0 when there is none. */
static int trace_ref(tm_state *s, uint32_t domain, uintptr_t ptr, tref *r)
{
    settle_all(s);   /* D1: a freed block's slot is clear */
    r->slot = NULL;
    r->e = NULL;
    r->hdr = 0;
    tm_slot *slot;
    int k = slot_ref(s, domain, ptr, &slot);
    if (k) {
        if (!slot || !slot->tb)
            return 0;
        r->slot = slot;
        r->hdr = k == 2;
        return 1;
    }
    r->e = tab_find(s, domain, ptr);
    return r->e != NULL;
}

/* Forget a trace found by trace_ref (our tables only: the block itself may
 * be gone already). */
static void trace_clear(tm_state *s, tref *r)
{
    if (r->slot) {
        s->h->room += r->slot->size;
        r->slot->tb = 0;
        r->slot->size = 0;
    } else if (r->e) {
        s->h->room += r->e->size;
        tab_remove(s, r->e);
    }
}

/* Forget the trace of (domain, ptr), if any. */
static void trace_del(tm_state *s, uint32_t domain, uintptr_t ptr)
{
    tref r;
    if (trace_ref(s, domain, ptr, &r))
        trace_clear(s, &r);
}

/* The traceback id (1-based) of (domain, ptr), 0 when not traced. */
static uint32_t trace_get(tm_state *s, uint32_t domain, uintptr_t ptr, size_t *size)
{
    settle_all(s);   /* D1: a freed block's slot is clear */
    tm_slot *slot;
    if (slot_ref(s, domain, ptr, &slot)) {
        if (!slot)
            return 0;
        if (size)
            *size = slot->size;
        return slot->tb;
    }
    tm_entry *e = tab_find(s, domain, ptr);
    if (e && size)
        *size = e->size;
    return e ? e->tb : 0;
}

/* The traced pools (H1) in use of the runtime: for each, fn(arg, pool).
 * Stops at a non-zero return, which it returns. */
static int hdr_pools(rcgc_runtime *rt, int (*fn)(void *, rcgc_pool *), void *arg)
{
    for (rcgc_arena *ar = rt->pool.all; ar; ar = ar->allnext)
        for (unsigned i = 0; i < ar->ncarved; i++) {
            rcgc_pool *pool = rcgc_arena_pool(ar, i);
            if (pool->szidx >= RCGC_NCLASSES && pool->szidx < RCGC_NROWS) {
                int rc = fn(arg, pool);
                if (rc)
                    return rc;
            }
        }
    return 0;
}

/* Header k of traced pool `pool` (H1; any k below nblocks, H2). */
static inline tm_slot *hdr_at(const rcgc_pool *pool, unsigned k)
{
    return rcgc_trace_hdr(rcgc_pool_block_at(pool, k));
}

typedef struct hdr_each {
    int (*fn)(void *arg, uint32_t domain, size_t size, uint32_t tb);
    void *arg;
} hdr_each;

static int hdr_each_pool(void *arg, rcgc_pool *pool)
{
    hdr_each *e = arg;
    for (unsigned k = 0; k < pool->nblocks; k++) {
        const tm_slot *sl = hdr_at(pool, k);
        if (sl->tb) {
            int rc = e->fn(e->arg, 0, sl->size, sl->tb);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int hdr_count_pool(void *arg, rcgc_pool *pool)
{
    size_t *n = arg;
    for (unsigned k = 0; k < pool->nblocks; k++)
        *n += hdr_at(pool, k)->tb != 0;
    return 0;
}

/* H2: clear_traces and stop forget every header's trace. */
static int hdr_zero_pool(void *arg, rcgc_pool *pool)
{
    (void)arg;
    for (unsigned k = 0; k < pool->nblocks; k++)
        memset(hdr_at(pool, k), 0, sizeof(tm_slot));
    return 0;
}

static int hdr_blocks_pool(void *arg, rcgc_pool *pool)
{
    *(size_t *)arg += pool->nblocks;
    return 0;
}

/* Call fn for every trace (in no particular order). */
typedef int (*trace_fn)(void *arg, uint32_t domain, size_t size, uint32_t tb);
static int trace_foreach(tm_state *s, trace_fn fn, void *arg)
{
    settle_all(s);   /* D1: a freed block's slot is clear */
    for (size_t i = 0; s->amap && i <= s->amap_mask; i++) {
        tm_aside *a = s->amap[i];
        if (!a)
            continue;
        for (unsigned pi = 0; pi < RCGC_ARENA_SLOTS; pi++) {
            tm_pside *ps = a->pools[pi];
            if (!ps)
                continue;
            for (uint32_t k = 0; k < ps->nslots; k++) {
                if (!ps->slots[k].tb)
                    continue;
                int rc = fn(arg, 0, ps->slots[k].size, ps->slots[k].tb);
                if (rc)
                    return rc;
            }
        }
    }
    hdr_each each = { fn, arg };
    int hrc = hdr_pools(s->rt, hdr_each_pool, &each);
    if (hrc)
        return hrc;
    for (size_t i = 0; s->tab && i <= s->tab_mask; i++) {
        tm_entry *e = &s->tab[i];
        if (e->tb) {
            int rc = fn(arg, e->domain, (size_t)e->size, e->tb);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static size_t trace_count(tm_state *s)
{
    settle_all(s);   /* D1: a freed block's slot is clear */
    size_t n = s->tab_n;
    for (size_t i = 0; s->amap && i <= s->amap_mask; i++) {
        const tm_aside *a = s->amap[i];
        for (unsigned pi = 0; a && pi < RCGC_ARENA_SLOTS; pi++)
            if (a->pools[pi])
                n += pside_count(a->pools[pi]);
    }
    hdr_pools(s->rt, hdr_count_pool, &n);
    return n;
}

/* H2 for one traced pool (H1): every header zero, or (tracing) zero
 * unless its block is live: traced sizes summed into *bytes; a header
 * naming a traceback above ntb, a traced free or cached block, a zero tb
 * with a size, or (!tracing) any trace, is a break: the pool. */
typedef struct hdr_check {
    rcgc_runtime *rt;
    int tracing;
    size_t ntb, bytes;
    const char *why;
    const tm_slot *pend;   /* D1's pending slot (a freed block's header may be it) */
    int pend_found;
} hdr_check;

static int hdr_check_pool(void *arg, rcgc_pool *pool)
{
    hdr_check *hc = arg;
    uint32_t traced = 0;
    const rcgc_pool_state *ps = &hc->rt->pool;
    for (unsigned k = 0; k < pool->nblocks; k++) {
        const tm_slot *sl = hdr_at(pool, k);
        /* (a settled cached block's header is (0, hdr_credit) while
         * tracing, L1: checked with the rows) */
        if (!sl->tb && sl->size && !(hc->tracing && sl->size == ps->hdr_credit[pool->szidx]))
            return hc->why = "an untraced header has a size (H2)", 1;
        if (sl->tb && !hc->tracing)
            return hc->why = "a header keeps a trace while tracing is off (H2)", 1;
        if (sl->tb > hc->ntb)
            return hc->why = "a header names a traceback above the last (R3)", 1;
        if (sl->tb && (size_t)k * pool->size + pool->size > pool->nextoffset)
            return hc->why = "an uncarved block's header is traced (H2)", 1;
        traced += sl->tb != 0 && sl != hc->pend;
        hc->bytes += sl->size;
        hc->pend_found |= sl == hc->pend;
    }
    if (traced > pool->nalloc)
        return hc->why = "a traced pool has more traced blocks than live ones (H2)", 1;
    for (const char *f = pool->freeblock; f; f = *(char *const *)f)
        if (rcgc_trace_hdr(f)->tb)   /* (never pending: free_not_hdr's limit path) */
            return hc->why = "a free block of a traced pool is traced (H2)", 1;
    for (uint32_t k = 1; k <= rcgc_pool_ncache(ps, pool->szidx); k++) {
        const void *b = ps->crow[pool->szidx][k];
        /* L1: a lazy free (an unsettled entry) keeps its trace */
        if (rcgc_pool_of(b) == pool && rcgc_trace_hdr(b)->tb &&
            (!hc->tracing || !rcgc_trace_hdr_lazy(ps, pool->szidx, &ps->crow[pool->szidx][k])))
            return hc->why = "a settled cached block of a traced pool is traced (H2, L1)", 1;
    }
    return 0;
}

/* L1's check: live blocks of a traced pool with no trace (counted in
 * the check's bytes): carved, not free, not cached, header tb 0. */
static int hdr_count_untraced_live(void *arg, rcgc_pool *pool)
{
    hdr_check *hc = arg;
    const rcgc_pool_state *ps = &hc->rt->pool;
    uint64_t idle[RCGC_POOL_BITMAP_WORDS] = {0};   /* free or cached blocks */
    for (const char *f = pool->freeblock; f; f = *(char *const *)f) {
        unsigned i = rcgc_pool_index(pool, f);
        idle[i >> 6] |= (uint64_t)1 << (i & 63);
    }
    for (uint32_t j = 1; j <= rcgc_pool_ncache(ps, pool->szidx); j++) {
        const void *b = ps->crow[pool->szidx][j];
        if (rcgc_pool_of(b) == pool) {
            unsigned i = rcgc_pool_index(pool, b);
            idle[i >> 6] |= (uint64_t)1 << (i & 63);
        }
    }
    for (unsigned k = 0; k < pool->nblocks; k++) {
        const char *b = (const char *)rcgc_pool_block_at(pool, k);
        if ((size_t)(b - pool->mem) >= pool->nextoffset || rcgc_trace_hdr(b)->tb ||
            (idle[k >> 6] >> (k & 63) & 1))
            continue;
        hc->bytes++;
    }
    return 0;
}

/* R1, R2, R3, R5, F1, F2, F4, D1, H1, H2 (rcgc_validate).  RCGC_OK or RCGC_EFORMAT, with a
 * line on out naming the broken rule. */
int rcgc_trace_validate(rcgc_runtime *rt, FILE *out)
{
    tm_state *s = rt->trace;
#define TM_BAD(...)                                      \
    do {                                                 \
        if (out)                                         \
            fprintf(out, "rcgc_validate: " __VA_ARGS__); \
        return RCGC_EFORMAT;                             \
    } while (0)
    /* T4: the ring holds blocks only in its mode, each a traced pool's
     * block of its row, distinct, with its trace; then it is settled, so
     * that H2 and L1 below see every block where it belongs. */
    {
        size_t n = rcgc_mem_hdr_ring_count(rt);
        if (n != 0 && rt->region_rows != RCGC_NCLASSES)
            TM_BAD("%zu blocks in the traced free's ring out of its mode (T4)\n", n);
        for (size_t i = 0; i < RCGC_HDR_RING; i++) {
            void *q = rt->hdr_ring[i];
            if (q == NULL)
                continue;
            if (!rcgc_arena_lookup(q) || rcgc_pool_of(q)->szidx != rt->hdr_ring_row[i] ||
                rt->hdr_ring_row[i] < RCGC_NCLASSES)
                TM_BAD("ring entry %zu (%p) is not a block of a traced pool of its row (T4)\n", i,
                       q);
            if (rcgc_trace_hdr(q)->tb == 0)
                TM_BAD("ring entry %zu (%p) has no trace (T4)\n", i, q);
            for (size_t j = 0; j < i; j++)
                if (rt->hdr_ring[j] == q)
                    TM_BAD("block %p twice in the ring (T4)\n", q);
        }
        rcgc_mem_hdr_ring_flush(rt);
    }
    if (rt->mem.slow != RCGC_SLOW_TRACE && rt->mem.trace.last.file != rcgc_trace_no_site)
        TM_BAD("the last call site can match while slow is %u (R6)\n", rt->mem.slow);
    {
        rcgc_mem_state ms = rt->mem;
        rcgc_trace_route_update(&ms);
        if (ms.trace.route != rt->mem.trace.route)
            TM_BAD("the traced allocation's route is %u, not %u (R7)\n", rt->mem.trace.route,
                   ms.trace.route);
    }
    if (rt->mem.trace.last.file != rcgc_trace_no_site &&
        rt->mem.trace.route != RCGC_TRACE_ROUTE_SITES)
        TM_BAD("the last call site can match on route %u (R10)\n", rt->mem.trace.route);
    if (rt->mem.trace.last.file != rcgc_trace_no_site && rt->region_rows != RCGC_NCLASSES)
        TM_BAD("the last call site can match out of the traced free's ring's mode (T4)\n");
    if (rt->mem.trace.free_not != rcgc_mem_free_not_of(rt->mem.slow))
        TM_BAD("rcgc_mem_free's continuation does not follow slow %u (R8)\n", rt->mem.slow);
    int credits_on = rt->pool.hdr_credit[RCGC_NROWS - 1] != 0;
    for (unsigned r = RCGC_NCLASSES; r < RCGC_NROWS; r++)
        if ((rt->pool.hdr_credit[r] != 0) != credits_on)
            TM_BAD("row %u: its credit is %s while the last row's is %s (L1)\n", r,
                   credits_on ? "off" : "on", credits_on ? "on" : "off");
    for (unsigned r = 0; r < RCGC_NROWS; r++)
        if (rt->pool.free_not[r] != (r < RCGC_NCLASSES ? rt->mem.trace.free_not
                                                       : rcgc_mem_free_hdr_of(rt->mem.slow,
                                                                              credits_on)))
            TM_BAD("rcgc_mem_free's continuation of row %u does not follow slow %u (R12)\n", r,
                   rt->mem.slow);
    {   /* T2 */
        size_t rows = rt->mem.slow == RCGC_SLOW_TRACE && credits_on ? RCGC_NCLASSES : RCGC_NROWS;
        if (rt->region_rows != rows)
            TM_BAD("the region's free takes classes from %zu, not %zu (T2)\n",
                   rt->region_rows, rows);
    }
    if (!s) {
        hdr_check hc = { rt, 0, 0, 0, NULL, NULL, 0 };
        if (hdr_pools(rt, hdr_check_pool, &hc))
            TM_BAD("%s\n", hc.why);
        return RCGC_OK;
    }
    rcgc_trace_hot *h = s->h;
    /* H1: only request classes' pools have side arrays */
    for (rcgc_arena *ar = rt->pool.all; ar; ar = ar->allnext)
        for (unsigned i = 0; i < ar->ncarved; i++) {
            const rcgc_pool *pool = rcgc_arena_pool(ar, i);
            if (pool->szidx >= RCGC_NCLASSES && pool->szidx != UINT16_MAX && pool->trace_slots)
                TM_BAD("traced pool %p has a side array (H1)\n", (const void *)pool);
        }
    for (int c = 0; c < RCGC_NCLASSES; c++)
        if (rt->trace_class_inv[c] != rcgc_class_inv[c])
            TM_BAD("the runtime's copy of the class multipliers differs (F1)\n");
    for (int i = 0; i < TM_STACKS; i++)
        if (s->stacks[i].tb == 0 && s->stacks[i].memo.fps[0] != 0)
            TM_BAD("recorded stack %d has no traceback but can match (R5)\n", i);
    if ((uintptr_t)rt->trace_mru < (uintptr_t)&s->stacks[0] ||
        (uintptr_t)rt->trace_mru > (uintptr_t)&s->stacks[TM_STACKS - 1])
        TM_BAD("the most recent native walk is not one of the state's\n");
    for (int i = 0; i < TM_STACKS; i++) {
        const rcgc_unwind_memo *m = &s->stacks[i].memo;
        if (m->key != RCGC_UNWIND_NO_KEY && m->fps[0] != 0 &&
            (m->key != m->hi || m->skip != s->skip[RCGC_DOMAIN_MEM][OP_FAST]))
            TM_BAD("recorded stack %d has a key but another skip or top (R9)\n", i);
        if (m->fps[0] != 0 && m->w0tag[1] != (uintptr_t)s->stacks[i].file)
            TM_BAD("recorded stack %d's tag is not its file (R11)\n", i);
        if (m->key != RCGC_UNWIND_NO_KEY && (m->head_fp != m->fps[0] || m->w0tag[0] != m->words[0]))
            TM_BAD("recorded stack %d has a key but its head is not record 0's (K1)\n", i);
#if defined(RCGC_UNWIND_HAVE_U1)
        /* U1 (unwind.h): the keyed check's entry follows n and nchk. */
        if (m->key != RCGC_UNWIND_NO_KEY && m->fps[0] != 0) {
            intptr_t ent;
            uintptr_t deep;
            rcgc_unwind_u1_entry(m->n, m->nchk, &ent, &deep);
            if (m->n < 1 || m->nchk < 4 || m->nchk % 4 != 0 || m->nchk < m->n - 1 ||
                1 + m->nchk > RCGC_UNWIND_MEMO || m->ent != ent || m->deep_bytes != deep)
                TM_BAD("recorded stack %d enters the unrolled check elsewhere (U1)\n", i);
            /* U3 (unwind.h): the quads' offsets from record 0 and the
             * entry's word. */
            if (!rcgc_unwind_u3_fits(m, m->nchk))
                TM_BAD("recorded stack %d has a key but its records do not fit U3\n", i);
            for (int q = 0; 4 * q + 4 <= m->nchk && q < RCGC_UNWIND_MEMO / 8; q++)
                if (m->fpq[q] != rcgc_unwind_u3_quad(m, q)) {
                    TM_BAD("recorded stack %d's quad %d has other offsets (U3)\n", i, q);
                    break;
                }
            if (m->entw != rcgc_unwind_u3_entw(m, m->n))
                TM_BAD("recorded stack %d's entry word is not its entry quad's (U3)\n", i);
        }
#endif
    }
    /* The native repeat check of the fast paths (stacks_mru) assumes a
     * skip of at least 1 (calibrated or not). */
    for (int d = 0; d < RCGC_DOMAIN_COUNT; d++)
        for (int op = 0; op < NOPS; op++)
            if (s->skip[d][op] < 1)
                TM_BAD("the skip %d of domain %d, call %d is below 1\n", s->skip[d][op], d, op);
    /* F1: the class table keeps each pool's side array too. */
    for (rcgc_arena *ar = rt->pool.all; ar; ar = ar->allnext)
        for (unsigned i = 0; i < ar->ncarved; i++) {
            const rcgc_pool *pool = rcgc_arena_pool(ar, i);
            if (rcgc_trace_table_slots(pool) != pool->trace_slots)
                TM_BAD("pool %p's class table names another side array (F1)\n",
                       (const void *)pool);
        }
    if (h->idle.tb || h->idle.size)
        TM_BAD("the idle slot is not zero (D1)\n");
    {
        hdr_check hc = { rt, s->tracing, s->ntb, 0, NULL, s->h->pending, 0 };
        if (hdr_pools(rt, hdr_check_pool, &hc))
            TM_BAD("%s\n", hc.why);
    }
    if (!s->tracing) {
        if (h->peak - h->room || h->sites || s->amap || s->tab_n)
            TM_BAD("tracing is off but traces remain (R1)\n");
        if (h->pending != &h->idle)
            TM_BAD("tracing is off but a free is pending (D1)\n");
        for (rcgc_arena *ar = rt->pool.all; ar; ar = ar->allnext)
            for (unsigned i = 0; i < ar->ncarved; i++)
                if (rcgc_arena_pool(ar, i)->trace_slots)
                    TM_BAD("pool %p keeps a side array while tracing is off (F1)\n",
                           (void *)rcgc_arena_pool(ar, i));
        return RCGC_OK;
    }
    /* L1: in each traced row the lazy entries (rcgc_trace_hdr_lazy: by
     * the header with the credits on, by the mark with them off) lie
     * above the settled ones (rcgc_trace_settle_hdrs stops at the first
     * settled) */
    for (unsigned r = RCGC_NCLASSES; r < RCGC_NROWS; r++) {
        int settled = 0;
        for (uint32_t k = rcgc_pool_ncache(&rt->pool, r); k >= 1; k--) {
            int m = !rcgc_trace_hdr_lazy(&rt->pool, r, &rt->pool.crow[r][k]);
            if (settled && !m)
                TM_BAD("row %u: an unsettled entry below a settled one (L1)\n", r);
            settled |= m;
        }
    }
    if (h->sites != (s->source == RCGC_FRAMES_CALL_SITE ? s->site : NULL))
        TM_BAD("the fast path's call-site cache does not match the frame source (R4)\n");
    size_t bytes = 0;
    int pending_found = h->pending == &h->idle;
    for (size_t i = 0; s->amap && i <= s->amap_mask; i++) {
        const tm_aside *a = s->amap[i];
        if (!a)
            continue;
        for (unsigned pi = 0; pi < RCGC_ARENA_SLOTS; pi++) {
            const tm_pside *ps = a->pools[pi];
            if (!ps)
                continue;
            for (uint32_t k = 0; k < ps->nslots; k++) {
                const tm_slot *sl = &ps->slots[k];
                if (!sl->tb && sl->size)
                    TM_BAD("an untraced side slot has size %u (F2)\n", sl->size);
                if (sl->tb > s->ntb)
                    TM_BAD("a side slot names traceback %u of %zu (R3)\n", sl->tb, s->ntb);
                pending_found |= sl == h->pending;
                bytes += sl->size;
            }
        }
    }
    for (size_t i = 0; s->tab && i <= s->tab_mask; i++)
        if (s->tab[i].tb) {
            if (s->tab[i].tb > s->ntb)
                TM_BAD("a trace names traceback %u of %zu (R3)\n", s->tab[i].tb, s->ntb);
            bytes += s->tab[i].size;
        }
    {
        hdr_check hc = { rt, 1, s->ntb, 0, NULL, h->pending, 0 };
        hdr_pools(rt, hdr_check_pool, &hc);   /* checked above */
        bytes += hc.bytes;
        /* L1: a cached block of a traced row counts its header's size
         * less its row's credit (a lazy free's size - credit, or a
         * settled one's (0, credit): 0); with credits on, no live block
         * of the traced pools is untraced (its free credits room) */
        size_t untraced_live = 0;
        for (unsigned r = RCGC_NCLASSES; r < RCGC_NROWS; r++) {
            size_t cr = rt->pool.hdr_credit[r];
            if (cr != 0 && cr != (size_t)(r - RCGC_NCLASSES) * 16 + 1)
                TM_BAD("row %u: credit %zu (L1)\n", r, cr);
            for (uint32_t k = 1; k <= rcgc_pool_ncache(&rt->pool, r); k++) {
                const tm_slot *sl = rcgc_trace_hdr(rt->pool.crow[r][k]);
                int lazy = rcgc_trace_hdr_lazy(&rt->pool, r, &rt->pool.crow[r][k]);
                if (!lazy && (sl->tb || sl->size != cr))
                    TM_BAD("row %u: a settled block's header is not (0, %zu) (L1)\n", r, cr);
                if (lazy && sl->size < cr)
                    TM_BAD("row %u: a lazy free's size is below the row's credit (L1)\n", r);
            }
            bytes -= (size_t)rcgc_pool_ncache(&rt->pool, r) * cr;
        }
        if (rt->pool.hdr_credit[RCGC_NROWS - 1] != 0) {
            hdr_check hu = { rt, 1, s->ntb, 0, NULL, h->pending, 0 };
            hdr_pools(rt, hdr_count_untraced_live, &hu);
            untraced_live = hu.bytes;
        }
        if (untraced_live)
            TM_BAD("credits on with %zu live untraced blocks in traced pools (L1)\n",
                   untraced_live);
        pending_found |= hc.pend_found;
    }
    if (!pending_found)
        TM_BAD("the pending slot %p is in no side array (D1)\n", (void *)h->pending);
    if (bytes != h->peak - h->room || h->room > h->peak)
        TM_BAD("traces hold %zu bytes, counted %zu (peak %zu, room %zu) (R1)\n", bytes,
               h->peak - h->room, h->peak, h->room);
    /* F1: a pool's side array is the one kept for it, for its class. */
    for (rcgc_arena *ar = rt->pool.all; ar; ar = ar->allnext) {
        for (unsigned i = 0; i < ar->ncarved; i++) {
            const rcgc_pool *pool = rcgc_arena_pool(ar, i);
            if (!pool->trace_slots && rt->mem.tracing && pool->szidx < RCGC_NCLASSES)
                TM_BAD("pool %p is in use without a side array (F5)\n", (const void *)pool);
            if (!pool->trace_slots)
                continue;
            const tm_aside *a = aside_find(s, arena_no(ar->base));
            const tm_pside *ps = a ? a->pools[i + 1] : NULL;
            if (!ps || pool->trace_slots != ps->slots || ps->blocksize != pool->size ||
                ps->nslots != pool->nblocks)
                TM_BAD("pool %p's side array is not its own (F1)\n", (const void *)pool);
            /* F2: traced slots are live blocks (carved, not on the free list). */
            /* (the pending slot, D1, is a freed block's) */
            const tm_slot *pend = h->pending;
            int pending_here = pend >= ps->slots && pend < ps->slots + ps->nslots && pend->tb;
            uint32_t traced = pside_count(ps) - (uint32_t)pending_here;
            if (traced > pool->nalloc)
                TM_BAD("pool %p has %u traced blocks but %u live (F2)\n", (const void *)pool,
                       traced, pool->nalloc);
            for (const char *f = pool->freeblock; f; f = *(char *const *)f)
                if (ps->slots[rcgc_pool_index(pool, f)].tb &&
                    &ps->slots[rcgc_pool_index(pool, f)] != pend)
                    TM_BAD("free block %p of pool %p is traced (F2, F3)\n", (const void *)f,
                           (const void *)pool);
        }
    }
    /* F4: a cached block's slot entry is its own slot or NULL; the
     * floor's entry is NULL (an empty cache's top: rcgc_trace_pop_cached
     * tests only the entry).  While tracing only: the untraced free's
     * push leaves the entry (tmfast.h). */
    for (unsigned c = 0; rt->mem.tracing && c < RCGC_NCLASSES; c++) {
        if (rt->pool.cslot[c][0] != NULL)
            TM_BAD("the free cache's floor of class %u names slot %p (F4)\n", c,
                   rt->pool.cslot[c][0]);
        for (uint32_t k = 1; k <= rcgc_pool_ncache(&rt->pool, c); k++) {
            void *b = rt->pool.crow[c][k];
            const void *w = rt->pool.cslot[c][k];
            const rcgc_pool *pool = rcgc_pool_of(b);
            if (w != NULL && (pool->trace_slots == NULL ||
                              w != (const void *)&pool->trace_slots[rcgc_pool_index(pool, b)]))
                TM_BAD("cached block %p names slot %p, not its own (F4)\n", b, w);
        }
    }
#undef TM_BAD
    return RCGC_OK;
}

/* Empty the call-site cache. */
static void sites_reset(tm_state *s)
{
    for (size_t i = 0; s->site && i < SITE_CACHE; i++)
        s->site[i] = (site_entry){ rcgc_trace_no_site, 0, 0 };
    s->h->last = (site_entry){ rcgc_trace_no_site, 0, 0 };
}

/* F4: no block in the free cache names a slot (its slot entry becomes
 * NULL): at start, where the blocks were cached untraced, and before the
 * side arrays are freed.  The floor's entry (k = 0, never written by a
 * push) too. */
static void cache_slots_reset(tm_state *s)
{
    rcgc_pool_state *ps = &s->rt->pool;
    for (unsigned c = 0; c < RCGC_NCLASSES; c++)
        for (uint32_t k = 0; k <= rcgc_pool_ncache(ps, c); k++)
            ps->cslot[c][k] = NULL;
}

/* Free every side array (stop, or a start that could not give every
 * pool one).  Nothing may be pending (D1). */
static void arrays_free(tm_state *s)
{
    /* F1: no pool may keep a side array we free. */
    for (rcgc_arena *ar = s->rt->pool.all; ar; ar = ar->allnext)
        for (unsigned i = 0; i < ar->ncarved; i++)
            rcgc_pool_set_trace_slots(rcgc_arena_pool(ar, i), NULL);
    for (size_t i = 0; s->amap && i <= s->amap_mask; i++) {
        tm_aside *a = s->amap[i];
        if (!a)
            continue;
        for (unsigned pi = 0; pi < RCGC_ARENA_SLOTS; pi++)
            if (a->pools[pi])
                tm_free(s, a->pools[pi], pside_bytes(a->pools[pi]->cap));
        tm_free(s, a, sizeof *a);
    }
    tm_free(s, s->amap, s->amap ? (s->amap_mask + 1) * sizeof *s->amap : 0);
    s->amap = NULL;
    s->amap_mask = s->amap_n = 0;
    memset(s->acache, 0, sizeof s->acache);
}

/* Forget every pool trace but keep the side arrays (clear_traces while
 * tracing: F5).  Nothing may be pending (D1). */
static void arrays_zero(tm_state *s)
{
    for (size_t i = 0; s->amap && i <= s->amap_mask; i++) {
        tm_aside *a = s->amap[i];
        for (unsigned pi = 0; a && pi < RCGC_ARENA_SLOTS; pi++)
            if (a->pools[pi])
                memset(a->pools[pi]->slots, 0, (size_t)a->pools[pi]->cap * sizeof(tm_slot));
    }
}

/* Drop every trace, traceback and frame (clear_traces and stop). */
static void tm_clear(tm_state *s)
{
    settle_all(s);   /* D1: no pending slot in a freed array */
    cache_slots_reset(s);
    if (s->rt->mem.tracing)
        arrays_zero(s);   /* clear_traces: F5 keeps them */
    else
        arrays_free(s);
    hdr_pools(s->rt, hdr_zero_pool, NULL);   /* H2 */
    hdr_rows_mark(s->rt, s->rt->mem.tracing);   /* L1 */
    tm_free(s, s->tab, s->tab ? (s->tab_mask + 1) * sizeof *s->tab : 0);
    s->tab = NULL;
    s->tab_mask = s->tab_n = 0;
    tm_free(s, s->frames, s->capframes * sizeof *s->frames);
    tm_free(s, s->frame_hash, s->capframes * sizeof *s->frame_hash);
    s->frames = NULL;
    s->frame_hash = NULL;
    s->nframes = s->capframes = 0;
    tm_free(s, s->frameset.slots, s->frameset.slots ? (s->frameset.mask + 1) * sizeof(uint32_t) : 0);
    s->frameset = (idset){ NULL, 0, 0 };
    tm_free(s, s->tbs, s->captb * sizeof *s->tbs);
    tm_free(s, s->tb_ids, s->capids * sizeof *s->tb_ids);
    s->tbs = NULL;
    s->tb_ids = NULL;
    s->ntb = s->captb = s->nids = s->capids = 0;
    tm_free(s, s->tbset.slots, s->tbset.slots ? (s->tbset.mask + 1) * sizeof(uint32_t) : 0);
    s->tbset = (idset){ NULL, 0, 0 };
    sites_reset(s);
    stacks_reset(s);
    s->h->room = 0;
    s->h->peak = 0;
    RCGC_ASSERT(s->h->pending == &s->h->idle);
}

/* ------------------------------------------------------------ wrappers */

static void *tm_malloc(void *ctx, size_t n)
{
    tm_dom *d = ctx;
    tm_state *s = d->s;
    void *p = d->inner.malloc(d->inner.ctx, n);
    if (RCGC_UNLIKELY(p == NULL || s->reentrant))
        return p;
    /* Calibration measures the depth of this very path: the same calls. */
    uint32_t tb = tb_current(s, d->domain, OP_MALLOC, SITE(s));
    if (RCGC_UNLIKELY(s->calibrating))
        return p;
    if (RCGC_UNLIKELY(!tb || trace_put(s, 0, (uintptr_t)p, n, tb) != 0)) {
        d->inner.free(d->inner.ctx, p);
        return NULL;
    }
    return p;
}

static void *tm_calloc_w(void *ctx, size_t nelem, size_t elsize)
{
    tm_dom *d = ctx;
    tm_state *s = d->s;
    void *p = d->inner.calloc(d->inner.ctx, nelem, elsize);
    if (RCGC_UNLIKELY(p == NULL || s->reentrant))
        return p;
    uint32_t tb = tb_current(s, d->domain, OP_CALLOC, SITE(s));
    if (RCGC_UNLIKELY(s->calibrating))
        return p;
    if (RCGC_UNLIKELY(!tb || trace_put(s, 0, (uintptr_t)p, nelem * elsize, tb) != 0)) {
        d->inner.free(d->inner.ctx, p);
        return NULL;
    }
    return p;
}

/* tm_realloc's failed call on p, a traced pool's block whose header it
 * cleared before the call: the trace back, counted again. */
static void hdr_restore(tm_state *s, void *p, tm_slot keep)
{
    tm_slot *sl = rcgc_trace_hdr(p);
    RCGC_ASSERT(sl->tb == 0 && sl->size == 0);
    *sl = keep;
    add_traced(s, keep.size);
}

static void *tm_realloc_in(void *ctx, void *p, size_t n);

/* L1: a realloc that leaves a block of a traced pool live without a
 * trace (kept in place while reentrant or calibrating, or its new trace
 * not stored) turns the credits off. */
static void *tm_realloc(void *ctx, void *p, size_t n)
{
    tm_dom *d = ctx;
    void *q = tm_realloc_in(ctx, p, n);
    rcgc_pool *pool;
    if (q != NULL && (pool = own_pool(d->s, (uintptr_t)q)) != NULL &&
        pool->szidx >= RCGC_NCLASSES && pool->szidx < RCGC_NROWS &&
        rcgc_trace_hdr(q)->tb == 0 && d->s->rt->pool.hdr_credit[pool->szidx] != 0)
        credits_off(d->s);
    return q;
}

static void *tm_realloc_in(void *ctx, void *p, size_t n)
{
    tm_dom *d = ctx;
    tm_state *s = d->s;
    /* Locate the old trace before the call: moving the block may give its
     * arena back to the OS, after which its address finds nothing. */
    tref old;
    int found = p != NULL && trace_ref(s, 0, (uintptr_t)p, &old);
    tm_slot keep = { 0, 0 };
    if (found && old.hdr) {
        /* H1: the trace is in the block, which the call may free (and
         * its arena go back to the OS): forgotten first, and put back
         * when the call fails (its size counted again: room has it). */
        keep = *old.slot;
        trace_clear(s, &old);
        found = 0;
    }
    if (RCGC_UNLIKELY(s->reentrant)) {
        /* Not traced, and the old trace goes (CPython does the same). */
        void *q = d->inner.realloc(d->inner.ctx, p, n);
        if (q != NULL && found)
            trace_clear(s, &old);
        if (q == NULL && keep.tb)
            hdr_restore(s, p, keep);
        return q;
    }
    uint32_t tb = tb_current(s, d->domain, OP_REALLOC, SITE(s));
    if (RCGC_UNLIKELY(s->calibrating)) {
        void *q = d->inner.realloc(d->inner.ctx, p, n);
        if (q == NULL && keep.tb)
            hdr_restore(s, p, keep);
        return q;
    }
    void *q = d->inner.realloc(d->inner.ctx, p, n);
    if (q == NULL) {
        if (keep.tb)
            hdr_restore(s, p, keep);
        return NULL;
    }
    if (found && q != p)
        trace_clear(s, &old);
    /* The block now belongs to the realloc's traceback (CPython).  When the
     * trace cannot be stored the block stays untraced: failing a realloc
     * that already moved the data is not possible. */
    if (tb == 0 || trace_put(s, 0, (uintptr_t)q, n, tb) != 0)
        trace_del(s, 0, (uintptr_t)q);
    return q;
}

/* The block is freed first and its trace forgotten after (CPython's
 * order): the debug hooks' report on a corrupted block still finds the
 * allocation traceback.  The trace is located before the free, because
 * freeing may give the whole arena back to the OS.  Also while reentrant:
 * a freed block never keeps a trace (F3). */
static void tm_free_w(void *ctx, void *p)
{
    tm_dom *d = ctx;
    tref r;
    int found = p != NULL && trace_ref(d->s, 0, (uintptr_t)p, &r);
    if (found && r.hdr) {
        /* H1: the trace is in the block (the debug hooks, which would
         * report on it, are never on with traced pools' blocks live) */
        trace_clear(d->s, &r);
        found = 0;
    }
    d->inner.free(d->inner.ctx, p);
    if (found)
        trace_clear(d->s, &r);
}

/* ----------------------------------------------------------- calibrate */

static void calib_dealloc(rcgc_object *o)
{
    (void)o;
}
static const rcgc_type calib_type = { "tracemalloc-calibration", sizeof(rcgc_object), 0, 0,
                                      NULL, NULL, NULL, NULL, calib_dealloc, NULL };

/* Find how many frames lie between tb_native and the caller of each
 * public allocating call: call it from a function whose frame pointer we
 * know, and see where that frame shows up in the chain.  OP_FAST measures
 * the fast path of tmfast.h (rcgc_mem_malloc, rcgc_new while tracing is
 * all that is on), the other ops the wrappers (RCGC_SLOW_HOLD keeps the
 * fast path out). */
static TM_KEEP_FP void calibrate_one(tm_state *s, int d, int op)
{
    rcgc_runtime *rt = s->rt;
    s->calib_fp = (uintptr_t)__builtin_frame_address(0);
    s->calib_depth = -1;
    s->calib_slot = -1;
    s->calib_seen = 0;
    s->calibrating = 1;
    void *p = NULL;
    if (d == RCGC_DOMAIN_OBJ) {
        rcgc_object *o = rcgc_new_at(rt, &calib_type, __FILE__, __LINE__);
        s->calibrating = 0;
        if (o)
            rcgc_decref(o);
    } else if (d == RCGC_DOMAIN_MEM) {
        if (op == OP_MALLOC || op == OP_FAST)
            p = rcgc_mem_malloc_at(rt, 8, __FILE__, __LINE__);
        else if (op == OP_CALLOC)
            p = rcgc_mem_calloc_at(rt, 1, 8, __FILE__, __LINE__);
        else
            p = rcgc_mem_realloc_at(rt, NULL, 8, __FILE__, __LINE__);
        s->calibrating = 0;
        rcgc_mem_free(rt, p);
    } else {
        if (op == OP_REALLOC)
            p = rcgc_domain_realloc_at(rt, RCGC_DOMAIN_RAW, NULL, 8, __FILE__, __LINE__);
        else
            p = rcgc_domain_malloc_at(rt, RCGC_DOMAIN_RAW, 8, __FILE__, __LINE__);
        s->calibrating = 0;
        rcgc_domain_free(rt, RCGC_DOMAIN_RAW, p);
    }
    s->calibrating = 0;
    /* calib_depth is the index of our frame counted from tb_native's; the
     * API caller's frame sits at the same index in real calls.  Unknown
     * (a chain broken by code without frame pointers): keep every frame
     * above tb_native. */
    s->skip[d][op] = s->calib_depth > 0 ? s->calib_depth : 1;
    s->slot[d][op] = s->calib_depth > 0 ? -1 : s->calib_slot;
}

static void calibrate(tm_state *s)
{
    if (s->calibrated)
        return;
    rcgc_runtime *rt = s->rt;
    stacks_reset(s);
    /* Frames are native (the callers update the site cache after): the
     * fast path of rcgc_mem_malloc goes straight to
     * rcgc_trace_malloc_native as it will while tracing (mem.c,
     * rcgc_mem_malloc_at). */
    s->h->sites = NULL;
    s->h->last = (site_entry){ rcgc_trace_no_site, 0, 0 };
    rcgc_trace_route_update(&rt->mem);   /* R7 */
    /* The wrappers' paths. */
    rcgc_mem_trace_hold(rt, 1);
    for (int d = 0; d < RCGC_DOMAIN_COUNT; d++)
        for (int op = 0; op < OP_FAST; op++)
            calibrate_one(s, d, op);
    rcgc_mem_trace_hold(rt, -1);
    s->skip[RCGC_DOMAIN_RAW][OP_CALLOC] = s->skip[RCGC_DOMAIN_RAW][OP_MALLOC];
    s->slot[RCGC_DOMAIN_RAW][OP_CALLOC] = s->slot[RCGC_DOMAIN_RAW][OP_MALLOC];
    /* The fast paths, with fault injection paused so that they run (they
     * only ever run without it).  With the debug hooks they never run. */
    long countdown = rt->mem.fail_countdown;
    rt->mem.fail_countdown = 0;
    rcgc_mem_update_slow(rt);
    for (int d = RCGC_DOMAIN_MEM; d <= RCGC_DOMAIN_OBJ; d++) {
        if (rt->mem.slow == RCGC_SLOW_TRACE) {
            calibrate_one(s, d, OP_FAST);
        } else {
            s->skip[d][OP_FAST] = s->skip[d][OP_MALLOC];
            s->slot[d][OP_FAST] = s->slot[d][OP_MALLOC];
        }
    }
    rt->mem.fail_countdown = countdown;
    rcgc_mem_update_slow(rt);
    s->calibrated = 1;
}

/* ------------------------------------------------------------ state */

static tm_state *state_get(rcgc_runtime *rt)
{
    if (rt->trace)
        return rt->trace;
    tm_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->rt = rt;
    s->h = &rt->mem.trace;
    s->h->pending = &s->h->idle;   /* D1: nothing pending */
    for (int c = 0; c < RCGC_NCLASSES; c++)
        rt->trace_class_inv[c] = rcgc_class_inv[c];
    s->rt->trace_mru = &s->stacks[0];
    s->limit = 1;
    /* Skips are >= 1 before any calibration too (stacks_mru relies on
     * it; rcgc_trace_validate checks it). */
    for (int d = 0; d < RCGC_DOMAIN_COUNT; d++)
        for (int op = 0; op < NOPS; op++)
            s->skip[d][op] = 1;
    s->mem = sizeof *s;
    rt->trace = s;
    return s;
}

/* R4: the fast paths use the call-site cache only while frames come from
 * call sites (anything else must capture at every allocation). */
static void update_sites(tm_state *s)
{
    s->h->sites = s->tracing && s->source == RCGC_FRAMES_CALL_SITE ? s->site : NULL;
    s->h->last = (site_entry){ rcgc_trace_no_site, 0, 0 };
    rcgc_trace_route_update(&s->rt->mem);   /* R7 */
}

static int ensure_buffers(tm_state *s, int limit)
{
    if (limit + 1 <= s->bufcap)
        return 0;
    size_t n = (size_t)limit + 1;
    rframe *raw = tm_alloc(s, n * sizeof *raw);
    uintptr_t *last = tm_alloc(s, n * sizeof *last);
    uintptr_t *pcs = tm_alloc(s, n * sizeof *pcs);
    rcgc_frame *cbuf = tm_alloc(s, n * sizeof *cbuf);
    if (!raw || !last || !pcs || !cbuf) {
        tm_free(s, raw, n * sizeof *raw);
        tm_free(s, last, n * sizeof *last);
        tm_free(s, pcs, n * sizeof *pcs);
        tm_free(s, cbuf, n * sizeof *cbuf);
        return -1;
    }
    size_t old = (size_t)s->bufcap;
    tm_free(s, s->raw, old * sizeof *s->raw);
    tm_free(s, s->last_pcs, old * sizeof *s->last_pcs);
    tm_free(s, s->pcs, old * sizeof *s->pcs);
    tm_free(s, s->cbuf, old * sizeof *s->cbuf);
    s->last_pcs = last;
    stacks_reset(s);
    s->raw = raw;
    s->pcs = pcs;
    s->cbuf = cbuf;
    s->bufcap = (int)n;
    return 0;
}

static void install(tm_state *s)
{
    static const rcgc_allocator proto = { NULL, tm_malloc, tm_calloc_w, tm_realloc, tm_free_w };
    for (int d = 0; d < RCGC_DOMAIN_COUNT; d++) {
        tm_dom *w = &s->doms[d];
        w->s = s;
        w->domain = d;
        rcgc_allocator a = proto;
        a.ctx = w;
        rcgc_mem_wrap(s->rt, (rcgc_domain)d, &a, &w->inner);
        w->installed = 1;
    }
    cache_slots_reset(s);
    hdr_rows_mark(s->rt, 1);   /* L1 (headers zero, H2) */
    rcgc_mem_set_tracing(s->rt, 1);
}

static void uninstall(tm_state *s)
{
    for (int d = RCGC_DOMAIN_COUNT - 1; d >= 0; d--) {
        tm_dom *w = &s->doms[d];
        if (w->installed) {
            rcgc_mem_unwrap(s->rt, (rcgc_domain)d, &w->inner);
            w->installed = 0;
        }
    }
    rcgc_mem_set_tracing(s->rt, 0);
}

int rcgc_tracemalloc_start(rcgc_runtime *rt, int nframe)
{
    if (rt == NULL || nframe < 1 || nframe > RCGC_TRACEMALLOC_MAX_NFRAME)
        return RCGC_EINVAL;
    tm_state *s = state_get(rt);
    if (!s)
        return RCGC_ENOMEM;
    if (ensure_buffers(s, nframe) != 0)
        return RCGC_ENOMEM;
    if (s->limit != nframe) {
        /* The last native stack was cut at the old limit. */
        stacks_reset(s);
    }
    s->limit = nframe;
    if (s->tracing)
        return RCGC_OK;
    if (!s->site) {
        s->site = tm_alloc(s, SITE_CACHE * sizeof *s->site);
        sites_reset(s);
        if (!s->site)
            return RCGC_ENOMEM;
    }
    s->h->room = s->h->peak = 0;
    s->h->pending = &s->h->idle;   /* D1: nothing pending */
    /* F5: every pool in use has its side array before the traced free
     * can run.  (L1: the traced rows are marked in install.) */
    if (arrays_for_all(s) != 0) {
        arrays_free(s);
        return RCGC_ENOMEM;
    }
    install(s);
    if (s->source == RCGC_FRAMES_NATIVE)
        calibrate(s);
    s->tracing = 1;
    update_sites(s);
    return RCGC_OK;
}

int rcgc_trace_start_from_env(rcgc_runtime *rt, int nframe)
{
    return rcgc_tracemalloc_start(rt, nframe);
}

void rcgc_tracemalloc_stop(rcgc_runtime *rt)
{
    tm_state *s = rt ? rt->trace : NULL;
    if (!s || !s->tracing)
        return;
    uninstall(s);
    s->tracing = 0;
    update_sites(s);
    tm_clear(s);
}

void rcgc_trace_state_fini(rcgc_runtime *rt)
{
    tm_state *s = rt->trace;
    if (!s)
        return;
    if (s->tracing)
        uninstall(s);
    s->tracing = 0;
    update_sites(s);
    tm_clear(s);
    size_t n = (size_t)s->bufcap;
    tm_free(s, s->raw, n * sizeof *s->raw);
    tm_free(s, s->last_pcs, n * sizeof *s->last_pcs);
    tm_free(s, s->pcs, n * sizeof *s->pcs);
    tm_free(s, s->cbuf, n * sizeof *s->cbuf);
    tm_free(s, s->site, SITE_CACHE * sizeof *s->site);
    free(s);
    rt->trace = NULL;
    rt->trace_mru = NULL;
}

int rcgc_tracemalloc_is_tracing(const rcgc_runtime *rt)
{
    return rt && rt->trace && rt->trace->tracing;
}

void rcgc_tracemalloc_clear_traces(rcgc_runtime *rt)
{
    tm_state *s = rt ? rt->trace : NULL;
    if (s && s->tracing)
        tm_clear(s);
}

int rcgc_tracemalloc_get_traceback_limit(const rcgc_runtime *rt)
{
    return rt && rt->trace ? rt->trace->limit : 1;
}

void rcgc_tracemalloc_get_traced_memory(const rcgc_runtime *rt, size_t *current, size_t *peak)
{
    const tm_state *s = rt ? rt->trace : NULL;
    int on = s && s->tracing;
    if (current)
        *current = on ? s->h->peak - s->h->room - s->h->pending->size - hdr_lazy_bytes(rt) : 0;   /* D1, L1 */
    if (peak)
        *peak = on ? s->h->peak : 0;
}

void rcgc_tracemalloc_reset_peak(rcgc_runtime *rt)
{
    tm_state *s = rt ? rt->trace : NULL;
    if (s && s->tracing)
    {
        /* The peak becomes the traced size: no headroom. */
        settle_all(s);   /* D1 */
        s->h->peak -= s->h->room;
        s->h->room = 0;
    }
}

size_t rcgc_tracemalloc_get_tracemalloc_memory(const rcgc_runtime *rt)
{
    if (!rt || !rt->trace)
        return 0;
    size_t n = 0;
    /* While tracing, the traced pools' headers (H1): 16 bytes a block
     * they can hold. */
    if (rt->trace->tracing)
        hdr_pools((rcgc_runtime *)(uintptr_t)rt, hdr_blocks_pool, &n);
    return rt->trace->mem + n * RCGC_HDR_SIZE;
}

int rcgc_tracemalloc_set_frame_source(rcgc_runtime *rt, rcgc_frame_source src)
{
    if (!rt || (unsigned)src > RCGC_FRAMES_CALLBACK)
        return RCGC_EINVAL;
    tm_state *s = state_get(rt);
    if (!s)
        return RCGC_ENOMEM;
    if (src == RCGC_FRAMES_CALLBACK && !s->cb)
        return RCGC_EINVAL;
    s->source = src;
    stacks_reset(s);   /* only native captures may reuse a recorded stack */
    if (src == RCGC_FRAMES_NATIVE && s->tracing)
        calibrate(s);
    update_sites(s);
    return RCGC_OK;
}

rcgc_frame_source rcgc_tracemalloc_get_frame_source(const rcgc_runtime *rt)
{
    return rt && rt->trace ? rt->trace->source : RCGC_FRAMES_CALL_SITE;
}

int rcgc_tracemalloc_set_frames_callback(rcgc_runtime *rt, rcgc_frames_fn fn, void *arg)
{
    if (!rt)
        return RCGC_EINVAL;
    tm_state *s = state_get(rt);
    if (!s)
        return RCGC_ENOMEM;
    s->cb = fn;
    s->cb_arg = arg;
    s->source = fn ? RCGC_FRAMES_CALLBACK : RCGC_FRAMES_CALL_SITE;
    update_sites(s);
    return RCGC_OK;
}

void rcgc_tracemalloc_set_symbolizer(rcgc_symbolize_fn fn, void *arg)
{
    g_symbolizer = fn;
    g_symbolizer_arg = arg;
}

int rcgc_tracemalloc_track(rcgc_runtime *rt, unsigned domain, uintptr_t ptr, size_t size)
{
    tm_state *s = rt ? rt->trace : NULL;
    if (!s || !s->tracing)
        return -2;
    if (s->reentrant)
        return 0;
    const char *file = rt->mem.site_file;
    int line = rt->mem.site_line;
    uint32_t tb = s->source == RCGC_FRAMES_CALLBACK ? tb_callback(s, file, line)
                  : tb_call_site(s, file, line);
    if (!tb || trace_put(s, domain, ptr, size, tb) != 0)
        return -1;
    return 0;
}

int rcgc_tracemalloc_untrack(rcgc_runtime *rt, unsigned domain, uintptr_t ptr)
{
    tm_state *s = rt ? rt->trace : NULL;
    if (!s || !s->tracing)
        return -2;
    trace_del(s, domain, ptr);
    return 0;
}

/* ------------------------------------------------------- symbolization */

/* A frame resolved to text: filename, function (or NULL), line. */
typedef struct resolved {
    const char *filename;
    const char *function;
    int lineno;
    char buf[256];
    char fbuf[256];
} resolved;

static void resolve(const rframe *f, resolved *r)
{
    r->function = NULL;
    if (f->kind == FK_SOURCE) {
        r->filename = (const char *)f->a;
        r->lineno = f->lineno;
        return;
    }
    rcgc_symbol sym = { NULL, NULL, 0 };
    if (g_symbolizer && g_symbolizer(g_symbolizer_arg, f->a, &sym) && sym.filename) {
        snprintf(r->buf, sizeof r->buf, "%s", sym.filename);
        r->filename = r->buf;
        r->lineno = sym.lineno;
        if (sym.function) {
            snprintf(r->fbuf, sizeof r->fbuf, "%s", sym.function);
            r->function = r->fbuf;
        }
        return;
    }
    const char *fn = NULL;
    rcgc_unwind_dladdr(f->a, r->buf, sizeof r->buf, &fn);
    r->filename = r->buf;
    r->lineno = 0;
    if (sym.function || fn) {
        snprintf(r->fbuf, sizeof r->fbuf, "%s", sym.function ? sym.function : fn);
        r->function = r->fbuf;
    }
}

/* A standalone traceback of runtime traceback tb (1-based): one malloc
 * block holding the header, frames, ids and strings. */
static rcgc_traceback *standalone_tb(tm_state *s, uint32_t tb)
{
    const rtb *t = &s->tbs[tb - 1];
    const uint32_t *ids = s->tb_ids + t->off;
    size_t n = t->n;
    resolved *rs = malloc(n * sizeof *rs);
    if (!rs)
        return NULL;
    size_t strbytes = 0;
    for (size_t i = 0; i < n; i++) {
        resolve(&s->frames[ids[i]], &rs[i]);
        strbytes += strlen(rs[i].filename) + 1;
        if (rs[i].function)
            strbytes += strlen(rs[i].function) + 1;
    }
    size_t head = sizeof(rcgc_traceback);
    size_t fbytes = n * sizeof(tm_sframe);
    size_t ibytes = n * sizeof(uint32_t);
    rcgc_traceback *out = malloc(head + fbytes + ibytes + strbytes);
    if (!out) {
        free(rs);
        return NULL;
    }
    tm_sframe *ft = (tm_sframe *)(out + 1);
    uint32_t *fid = (uint32_t *)((char *)ft + fbytes);
    char *str = (char *)fid + ibytes;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(rs[i].filename) + 1;
        memcpy(str, rs[i].filename, len);
        ft[i].filename = str;
        str += len;
        ft[i].function = NULL;
        if (rs[i].function) {
            len = strlen(rs[i].function) + 1;
            memcpy(str, rs[i].function, len);
            ft[i].function = str;
            str += len;
        }
        ft[i].lineno = rs[i].lineno;
        ft[i].fname = (uint32_t)i;
        fid[i] = (uint32_t)i;
    }
    out->ftab = ft;
    out->frames = fid;
    out->nframe = (uint32_t)n;
    out->total_nframe = t->total;
    out->canon = 0;
    out->owned = 1;
    free(rs);
    return out;
}

rcgc_traceback *rcgc_tracemalloc_get_traceback(rcgc_runtime *rt, unsigned domain, uintptr_t ptr)
{
    tm_state *s = rt ? rt->trace : NULL;
    if (!s || !s->tracing)
        return NULL;
    uint32_t tb = trace_get(s, domain, ptr, NULL);
    return tb ? standalone_tb(s, tb) : NULL;
}

rcgc_traceback *rcgc_tracemalloc_get_object_traceback(const rcgc_object *obj)
{
    if (!obj)
        return NULL;
    rcgc_runtime *rt = rcgc_object_runtime(obj);
    return rcgc_tracemalloc_get_traceback(rt, 0, (uintptr_t)rcgc_obj_block(obj));
}

int rcgc_trace_print_block(rcgc_runtime *rt, rcgc_domain d, const void *ptr, FILE *out)
{
    (void)d;   /* every rcgc domain traces into trace domain 0 */
    tm_state *s = rt ? rt->trace : NULL;
    if (!s || !s->tracing)
        return 0;
    uint32_t tb = trace_get(s, 0, (uintptr_t)ptr, NULL);
    if (!tb)
        return 0;
    const rtb *t = &s->tbs[tb - 1];
    fputs("Memory block allocated at (most recent call first):\n", out);
    for (unsigned i = 0; i < t->n; i++) {
        resolved r;
        resolve(&s->frames[s->tb_ids[t->off + i]], &r);
        fprintf(out, "  File \"%s\", line %d\n", r.filename ? r.filename : "???", r.lineno);
    }
    fputs("\n", out);
    fflush(out);
    return 1;
}

/* ------------------------------------------------------------ snapshot */

typedef struct snap_ctx {
    tm_state *s;
    tm_builder *b;
    long *frame_map;     /* runtime frame id -> builder frame id, -2 unknown */
    long *tb_map;        /* runtime tb (0-based) -> builder tb, -2 unknown */
    uint32_t *scratch;   /* [limit + 1] */
    tm_strace *traces;
    size_t n, cap;
    int failed;
} snap_ctx;

static long snap_frame(snap_ctx *c, uint32_t fid)
{
    if (c->frame_map[fid] != -2)
        return c->frame_map[fid];
    resolved r;
    resolve(&c->s->frames[fid], &r);
    const char *name = r.filename ? r.filename : TM_UNKNOWN;
    long fn = tmb_string(c->b, name, strlen(name));
    long func = r.function ? tmb_string(c->b, r.function, strlen(r.function)) : -1;
    if (fn < 0 || (r.function && func < 0))
        return -1;
    long id = tmb_frame(c->b, fn, r.lineno, func);
    c->frame_map[fid] = id;
    return id;
}

static long snap_tb(snap_ctx *c, uint32_t tb)
{
    if (c->tb_map[tb - 1] != -2)
        return c->tb_map[tb - 1];
    const rtb *t = &c->s->tbs[tb - 1];
    for (unsigned i = 0; i < t->n; i++) {
        long f = snap_frame(c, c->s->tb_ids[t->off + i]);
        if (f < 0)
            return -1;
        c->scratch[i] = (uint32_t)f;
    }
    long id = tmb_traceback(c->b, c->scratch, t->n, t->total);
    c->tb_map[tb - 1] = id;
    return id;
}

static int snap_add(void *arg, uint32_t domain, size_t size, uint32_t tb)
{
    snap_ctx *c = arg;
    long id = snap_tb(c, tb);
    if (id < 0 || c->n >= c->cap)
        return c->failed = 1;
    c->traces[c->n++] = (tm_strace){ size, domain, (uint32_t)id };
    return 0;
}

int rcgc_tracemalloc_take_snapshot(rcgc_runtime *rt, rcgc_snapshot **out)
{
    *out = NULL;
    tm_state *s = rt ? rt->trace : NULL;
    if (!s || !s->tracing)
        return RCGC_ESTATE;
    snap_ctx c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.cap = trace_count(s);
    c.b = tmb_new();
    c.frame_map = malloc((s->nframes + 1) * sizeof *c.frame_map);
    c.tb_map = malloc((s->ntb + 1) * sizeof *c.tb_map);
    c.scratch = malloc(((size_t)s->bufcap + 65536) * sizeof *c.scratch);
    c.traces = malloc((c.cap + 1) * sizeof *c.traces);
    int rc = RCGC_ENOMEM;
    if (!c.b || !c.frame_map || !c.tb_map || !c.scratch || !c.traces)
        goto done;
    for (size_t i = 0; i < s->nframes; i++)
        c.frame_map[i] = -2;
    for (size_t i = 0; i < s->ntb; i++)
        c.tb_map[i] = -2;
    /* Allocations made by symbolizers are not ours to trace. */
    set_reentrant(s, 1);
    trace_foreach(s, snap_add, &c);
    set_reentrant(s, 0);
    if (c.failed)
        goto done;
    tm_tables *t = tmb_finish(c.b);
    c.b = NULL;
    if (!t)
        goto done;
    *out = tm_snapshot_new(t, s->limit, c.traces, c.n);
    c.traces = NULL;
    tm_tables_release(t);
    rc = *out ? RCGC_OK : RCGC_ENOMEM;
done:
    tmb_free(c.b);
    free(c.frame_map);
    free(c.tb_map);
    free(c.scratch);
    free(c.traces);
    return rc;
}
