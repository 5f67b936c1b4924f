/*
 * runtime.h - the runtime struct and the contracts between rcgc's modules.
 *
 * Each module owns one part of struct rcgc_runtime:
 *   mem.c / debughooks.c   rt->mem      (domains, hooks, fault injection)
 *   pool.c                 rt->pool     (arenas, pools)
 *   object.c               rt->obj      (foreign objects, deferred deallocs)
 *   gc*.c                  rt->gc       (generations, stats, garbage, debug)
 *   weakref.c              rt->weak     (object -> weak reference lists)
 *   tracemalloc*.c         rt->trace    (opaque; NULL when never started)
 *
 * Names shared between files are rcgc_<module>_x and have hidden visibility
 * (the library is built with -fvisibility=hidden; only RCGC_API is exported).
 */
#ifndef RCGC_RUNTIME_H
#define RCGC_RUNTIME_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rcgc.h"
#include "pool.h"
#include "traverse.h"

/* ---------------------------------------------------------------- memory */

/* One domain's chain: calls go to `current`, the outermost wrapper.  Without
 * hooks current == base.  Wrappers (debug hooks, tracemalloc) keep the
 * allocator they wrap in their own context. */
typedef struct rcgc_domain_state {
    rcgc_allocator base;    /* the allocator that really hands out memory */
    rcgc_allocator current; /* what rcgc_domain_* calls */
    int base_is_pool;       /* base is rcgc's own pools */
    int base_is_default;    /* base was never replaced by the user */
    /* Live blocks handed out by this domain; for the OBJ domain, those
     * that are not objects: objects are counted in rt->obj.live_objects
     * only (OC1 there; rcgc_mem_obj_live gives the domain's whole count). */
    long live;
} rcgc_domain_state;

/* The debug hooks' context for one domain (debughooks.c).  The hooks are
 * always the innermost wrapper: they call the domain's `base` directly (read
 * at each call, so rcgc_mem_set_allocator can replace the base under them). */
typedef struct rcgc_debug_ctx {
    rcgc_runtime *rt;
    rcgc_domain domain;
    char api;                /* CPython's API id: 'r', 'm' or 'o' */
    int depth;               /* > 0 while the base runs (re-entry is fatal) */
} rcgc_debug_ctx;

/* Why the public calls leave the pools' fast path (rt->mem.slow).  The
 * fast paths test `slow == 0`; tracing alone (RCGC_SLOW_TRACE, nothing else
 * set) has its own fast path (tmfast.h). */
#define RCGC_SLOW_TRACE 1u   /* tracemalloc's wrappers are installed */
#define RCGC_SLOW_OTHER 2u   /* debug hooks, fault injection, a user allocator */
#define RCGC_SLOW_HOLD 4u    /* inside the tracer (callback, symbolizer,
                              * calibration): the wrappers decide */

/* A direct-mapped call-site cache entry: (file, line) -> traceback id
 * (1-based).  An empty entry has file == rcgc_trace_no_site, which no
 * caller passes, so a hit needs no test of tb.  Owned by tracemalloc.c. */
typedef struct rcgc_trace_site {
    const char *file;
    int32_t line;
    uint32_t tb;
} rcgc_trace_site;
#define RCGC_TRACE_SITES 1024
extern const char rcgc_trace_no_site[];

/* The tracer's state that the allocation fast paths of mem.c and object.c
 * read and write inline (tmfast.h); tracemalloc.c owns it and its slow
 * paths keep the same counts. */
typedef struct rcgc_trace_hot {
    rcgc_trace_site *sites;  /* [RCGC_TRACE_SITES] while frames come from
                              * call sites, else NULL (always capture) */
    rcgc_trace_site last;    /* the entry of sites that hit last (a loop
                              * allocates from one line); file is
                              * rcgc_trace_no_site when sites is NULL,
                              * and whenever slow != RCGC_SLOW_TRACE
                              * (R6, tmfast.h) */
    /* The bytes of all traces (get_traced_memory) are peak - room -
     * pending->size: an allocation takes its size from the headroom and
     * raises the peak only when that borrows (rcgc_trace_count, tmfast.h,
     * which first settles the pending free); a free gives its size back
     * to room (the traced rcgc_mem_free one free later, D1).  room <=
     * peak. */
    size_t room;             /* peak - traced */
    size_t peak;             /* the peak of traced since start/reset_peak */
    /* D1 (tmfast.h): the slot of the block that the traced rcgc_mem_free
     * freed last, still holding that block's trace (its size not yet
     * given back to room), or &idle; set by start.  idle is always
     * zero. */
    rcgc_trace_slot *pending;
    rcgc_trace_slot idle;
    /* R7 (tmfast.h): where rcgc_mem_malloc_at goes when its pop fails,
     * RCGC_TRACE_ROUTE_*; rcgc_trace_route_update keeps it. */
    unsigned route;
    /* R8 (tmfast.h): where rcgc_mem_free goes when its push fails, chosen
     * by slow (mem.c's rcgc_mem_update_slow, its only writer, sets it):
     * tracing alone, or anything else.  In the line of room and pending,
     * which the traced free writes anyway. */
    rcgc_mem_free_not_fn free_not;
} rcgc_trace_hot;

/* R7: the traced allocation's miss path in one compare. */
#define RCGC_TRACE_ROUTE_NATIVE 0u   /* slow == RCGC_SLOW_TRACE, sites NULL */
#define RCGC_TRACE_ROUTE_SLOW 1u     /* slow != RCGC_SLOW_TRACE */
#define RCGC_TRACE_ROUTE_SITES 2u    /* slow == RCGC_SLOW_TRACE, sites set */

typedef struct rcgc_mem_state {
    rcgc_domain_state domains[RCGC_DOMAIN_COUNT];
    /* Zero when nothing sits between a call and the pools; else the
     * RCGC_SLOW_* reasons.  The fast paths test only this. */
    unsigned slow;
    int tracing;             /* tracemalloc's wrappers installed (outermost) */
    int trace_hold;          /* depth of RCGC_SLOW_HOLD */
    rcgc_trace_hot trace;
    int debug_hooks;         /* CPython's debug hooks installed */
    size_t debug_pre;        /* bytes the debug hooks put before a block (16) */
    size_t debug_post;       /* and after it (8) */
    rcgc_debug_ctx debug_ctx[RCGC_DOMAIN_COUNT];
    long fail_countdown;     /* 0: off; n: the n-th allocation fails */
    int fail_persistent;
    long failures;
    rcgc_oom_handler oom;
    void *oom_arg;
    /* The call site of the allocation in progress (set by the *_at API
     * functions, read by tracemalloc); NULL file when unknown. */
    const char *site_file;
    int site_line;
} rcgc_mem_state;

/* R7: recompute ms->trace.route from slow and trace.sites; called by
 * every writer of either (rcgc_mem_update_slow, tracemalloc.c). */
static inline void rcgc_trace_route_update(rcgc_mem_state *ms)
{
    ms->trace.route = ms->slow != RCGC_SLOW_TRACE ? RCGC_TRACE_ROUTE_SLOW
                      : ms->trace.sites != NULL   ? RCGC_TRACE_ROUTE_SITES
                                                  : RCGC_TRACE_ROUTE_NATIVE;
}

/* Allocate through a domain's chain with fault injection and the OOM
 * handler.  These are what every rcgc module uses for its own memory. */
void *rcgc_mem_domain_alloc(rcgc_runtime *rt, rcgc_domain d, size_t n);
void *rcgc_mem_domain_calloc(rcgc_runtime *rt, rcgc_domain d, size_t nelem, size_t elsize);
void *rcgc_mem_domain_realloc(rcgc_runtime *rt, rcgc_domain d, void *p, size_t n);
void rcgc_mem_domain_free(rcgc_runtime *rt, rcgc_domain d, void *p);
/* Set up the domains from a config (runtime creation). */
int rcgc_mem_state_init(rcgc_runtime *rt, const rcgc_config *cfg);
/* T4: settle and cache every block of the traced free's ring. */
void rcgc_mem_hdr_ring_flush(rcgc_runtime *rt);
/* T4: blocks in the traced free's ring, and the bytes they still count
 * (their whole sizes: they get no credit). */
size_t rcgc_mem_hdr_ring_count(const rcgc_runtime *rt);
size_t rcgc_mem_hdr_ring_bytes(const rcgc_runtime *rt);

/* Recompute rt->mem.slow after a hook is installed or removed. */
void rcgc_mem_update_slow(rcgc_runtime *rt);

/* R8 (tmfast.h): rcgc_mem_free's continuation for the mode `slow` (the
 * traced free for RCGC_SLOW_TRACE, else the limit or the domain). */
rcgc_mem_free_not_fn rcgc_mem_free_not_of(unsigned slow);
/* The continuation of the traced pools' rows (R12, tmfast.h): the header
 * free when slow == RCGC_SLOW_TRACE (the one that marks its entries
 * unsettled when credits is 0, L1), else rcgc_mem_free_not_of(slow). */
rcgc_mem_free_not_fn rcgc_mem_free_hdr_of(unsigned slow, int credits);
/* R12 (tmfast.h): set the rows' continuations from slow and the traced
 * rows' credits (L1); mem.c. */
void rcgc_mem_free_rows_set(rcgc_runtime *rt);
/* Tell the domains that tracemalloc's wrappers are (on != 0) or are no
 * longer installed on every domain, outermost; recomputes rt->mem.slow. */
void rcgc_mem_set_tracing(rcgc_runtime *rt, int on);
/* Add delta (+1 or -1) to the depth of RCGC_SLOW_HOLD (the tracer's fast
 * path is off while the tracer runs code that may allocate, or calibrates
 * its wrappers); the bit is set while the depth is positive. */
void rcgc_mem_trace_hold(rcgc_runtime *rt, int delta);
/* Install `wrapper` as the outermost allocator of domain d; *inner receives
 * the allocator it must call.  Used by tracemalloc and the debug hooks. */
void rcgc_mem_wrap(rcgc_runtime *rt, rcgc_domain d, const rcgc_allocator *wrapper,
                   rcgc_allocator *inner);
void rcgc_mem_unwrap(rcgc_runtime *rt, rcgc_domain d, const rcgc_allocator *inner);
/* Debug hooks (debughooks.c). */
int rcgc_debughooks_install(rcgc_runtime *rt);
void rcgc_debughooks_fini(rcgc_runtime *rt);
/* Non-zero if `a` is the debug hooks' allocator (of any domain). */
int rcgc_debughooks_is_hooks(const rcgc_allocator *a);
/* Call the handler and report; returns non-zero if the caller should retry. */
int rcgc_mem_oom(rcgc_runtime *rt, rcgc_domain d, size_t n);
/* Fault injection check: non-zero if this allocation must fail. */
static inline int rcgc_mem_inject(rcgc_runtime *rt);

/* --------------------------------------------------------------- objects */

/*
 * Objects that do not live in a pool (bigger than a pool block, or made by a
 * user-installed OBJ allocator) carry this 32-byte prefix in front of the
 * header; RCGC_OF_FOREIGN is set in their flags.  Tracked ones sit on their
 * generation's list (CPython's layout), untracked ones on obj.untracked.
 */
typedef struct rcgc_foreign {
    struct rcgc_foreign *prev;
    struct rcgc_foreign *next;
    rcgc_runtime *rt;
    size_t size;             /* bytes allocated, prefix included */
} rcgc_foreign;

static inline rcgc_foreign *rcgc_foreign_of(const rcgc_object *o)
{
    return (rcgc_foreign *)((char *)o - sizeof(rcgc_foreign));
}
static inline rcgc_object *rcgc_foreign_obj(const rcgc_foreign *f)
{
    return (rcgc_object *)((char *)f + sizeof(rcgc_foreign));
}

static inline void rcgc_flist_init(rcgc_foreign *head)
{
    head->prev = head->next = head;
}
static inline void rcgc_flist_append(rcgc_foreign *head, rcgc_foreign *f)
{
    f->prev = head->prev;
    f->next = head;
    head->prev->next = f;
    head->prev = f;
}
static inline void rcgc_flist_remove(rcgc_foreign *f)
{
    f->prev->next = f->next;
    f->next->prev = f->prev;
    f->prev = f->next = NULL;
}

static inline unsigned rcgc_obj_gen(const rcgc_object *o)
{
    return (o->flags & RCGC_OF_GEN_MASK) >> RCGC_OF_GEN_SHIFT;
}
#define RCGC_GEN_PERMANENT 3u

typedef struct rcgc_obj_state {
    rcgc_foreign untracked;  /* foreign objects not tracked */
    /* Deferred deallocations (the "trashcan"): objects whose refcount hit
     * zero while another deallocation was running. */
    rcgc_object **pending;
    size_t npending, cappending;
    int dealloc_depth;
    /* OC1: objects allocated and not yet freed, pooled or foreign, however
     * their memory was obtained.  The OBJ domain counts no object in its
     * own domains[RCGC_DOMAIN_OBJ].live: object.c's pool blocks change
     * only this count (one counter on the creation's and the
     * deallocation's fast paths), and the objects it allocates or frees
     * through the OBJ domain's chain (rcgc_mem_domain_alloc/free, which
     * count in domains[OBJ].live) have that count moved here.  So the OBJ
     * domain's live blocks are domains[OBJ].live + live_objects
     * (rcgc_mem_obj_live). */
    size_t live_objects;
    /* The deallocation's clear cache (object.c):
     *   DC1  dclear_type is NULL, or a type whose objects need nothing at
     *        deallocation but dropping one or two listed fields: refs is
     *        {dclear_off0, 0} (then dclear_off1 == dclear_off0) or
     *        {dclear_off0, dclear_off1, 0}, and traverse, clear, finalize,
     *        legacy_del and dealloc are NULL.
     *   DC2  it was stored by the deallocation of an object of that type,
     *        and no user code has run since: every deallocation entered
     *        from outside object.c's nested path (rcgc_dealloc,
     *        rcgc_obj_release) resets it before it drops a reference, and
     *        every call of user code by object.c is followed by a reset.
     *        So the type is alive (the API asks a type to outlive its
     *        objects, and only user code can free it), and a nested
     *        deallocation may trust the offsets without reading refs. */
    const rcgc_type *dclear_type;
    uint16_t dclear_off0, dclear_off1;
    /* The birth log (rt->births[0..nbirths) and its last slot, birth_last):
     * the tracked objects born on the creation's fast path in a block from
     * the free cache whose pool bits are not yet written
     * (docs/design-gc.md, "Round 16a").  Most die young, before anything
     * reads the bitmaps, and their death then only empties the entry.
     * A logged birth that finds the last slot empty is held there alone,
     * with no index in its flags (round 17b): its death, the temporaries'
     * usual case, empties the slot again.  A taken slot keeps its object
     * until that dies or the log is settled (nothing moves it), and the
     * births meanwhile go to births[] with their index (new_object_init),
     * so that structures built before they die pay one test a birth.
     *   B1  every object with RCGC_OF_UNSETTLED is a live pooled object,
     *       tracked, of generation 0, with its tracked bit clear and not
     *       counted in its pool's ntracked or nyoung (P3-P5 are about the
     *       other objects; its P5 summary bit may be a neighbour's); it is
     *       counted in generation 0's object count (G1) like any
     *       generation-0 object, through its entry (B4), and either
     *       births[i] == o for the i + 1 in its flags' bits 20-31
     *       (rcgc_obj_birth_index), or those bits are 0 and
     *       birth_last == o (B5); and its
     *       flags' bits 12-17 are its pool's size class (szidx), so that
     *       its death frees the block without the pool descriptor.
     *   B2  every non-NULL births[i] (i < nbirths) is such an object, with
     *       index i; NULL entries are those whose object died or was
     *       untracked (the last entry is popped instead).  births[nbirths]
     *       is room for the settle, which appends birth_last there.
     *   B3  nobody walks the bitmaps or uses the flags' scratch bits with
     *       a non-empty log: rcgc_obj_settle first gives every logged
     *       object the bits and counts the creation's slow path gives
     *       (rcgc_obj_track), and empties the log: a collection's entry
     *       and again after its work space is allocated (the OOM handler
     *       may have made objects), rcgc_obj_foreach_tracked (get_objects,
     *       get_referrers, freeze, the validator, the runtime's teardown),
     *       and a full log.
     *   B4  the log's entries (births[0..nbirths), the NULL ones included)
     *       and its last slot when not NULL count in generation 0's
     *       objects: the tracked objects of generation 0 number
     *       gc.gens[0].nobjects + rcgc_obj_nlogged (nbirths, plus 1 for a
     *       birth_last) (rcgc_gen_count), so that a logged birth and its
     *       death in LIFO order (the slot emptied, or the pop) do not touch
     *       gens[0].nobjects; a death that empties a middle entry
     *       (rcgc_obj_forget_birth) lowers gens[0].nobjects instead, and
     *       the settle adds rcgc_obj_nlogged to it as it empties the log.
     *       gens[0].nobjects alone may thus be below the count, even
     *       negative: read it through rcgc_gen_count.
     *   B5  birth_last is NULL or an unsettled object (B1) whose flags'
     *       bits 20-31 are 0; no entry of births[0..nbirths) is it.  It
     *       need not be the youngest unsettled object: entries of births[]
     *       may be younger (nothing reads the log's order but the settle,
     *       whose bits and counts do not depend on it). */
    size_t nbirths;
    rcgc_object *birth_last;
} rcgc_obj_state;

/* The birth log's capacity (B1-B3, rt->births): 4095, so that an index
 * plus one (B1) fits the flags' 12 bits. */
#define RCGC_BIRTHS 4095
_Static_assert((uint64_t)RCGC_BIRTHS <= (uint64_t)(~0u >> RCGC_OF_BIRTH_SHIFT),
               "a birth log index plus one fits the flags' bits 20-31");
_Static_assert(RCGC_NCLASSES - 1 <= RCGC_OF_BIRTH_CLASS_MASK &&
                   RCGC_OF_BIRTH_CLASS_SHIFT + 6 <= RCGC_OF_BIRTH_SHIFT &&
                   RCGC_OF_BIRTH_CLASS_SHIFT > 11,
               "an unsettled object's size class fits the flags' bits 12-17");

/* The flags of an object born unsettled (B1) in a block of size class
 * szidx at log index n: bits 20-31 hold n + 1, the log's top once the
 * entry is in (the birth computes it anyway), so that the death of the
 * last entry compares them with nbirths and decrements it in memory. */
static inline uint32_t rcgc_obj_birth_flags(unsigned szidx, size_t n)
{
    return RCGC_OF_TRACKED | RCGC_OF_UNSETTLED | (uint32_t)szidx << RCGC_OF_BIRTH_CLASS_SHIFT |
           (uint32_t)(n + 1) << RCGC_OF_BIRTH_SHIFT;
}

/* The flags of an object born unsettled (B1) in a block of size class
 * szidx into the log's last slot (B5): no index. */
static inline uint32_t rcgc_obj_birth_flags_last(unsigned szidx)
{
    return RCGC_OF_TRACKED | RCGC_OF_UNSETTLED | (uint32_t)szidx << RCGC_OF_BIRTH_CLASS_SHIFT;
}

/* The log index of an unsettled object in births[] from its flags (B1);
 * not for the last slot's (B5: bits 20-31 are 0). */
static inline size_t rcgc_obj_birth_index(uint32_t flags)
{
    return (size_t)(flags >> RCGC_OF_BIRTH_SHIFT) - 1;
}

/* The size class of an unsettled object from its flags (B1), as a size_t:
 * an index into the free cache's rows without a zero-extending copy. */
static inline size_t rcgc_obj_birth_class(uint32_t flags)
{
    return (flags >> RCGC_OF_BIRTH_CLASS_SHIFT) & RCGC_OF_BIRTH_CLASS_MASK;
}

/*
 * Tracking and generations (object.c).  These keep the pool bitmaps, pool
 * young counts, foreign lists and the per-generation object counts
 * consistent; the collector moves objects only through them.
 */
static inline void rcgc_obj_track(rcgc_runtime *rt, rcgc_object *o);   /* into gen 0 */
static inline void rcgc_obj_untrack(rcgc_runtime *rt, rcgc_object *o);
/* Their out-of-line parts for foreign objects (list moves). */
void rcgc_obj_track_foreign(rcgc_runtime *rt, rcgc_object *o);
void rcgc_obj_untrack_foreign(rcgc_runtime *rt, rcgc_object *o);
void rcgc_obj_set_gen(rcgc_runtime *rt, rcgc_object *o, unsigned gen);
/* The runtime of an object (pool header or foreign prefix). */
rcgc_runtime *rcgc_obj_runtime(const rcgc_object *o);

/* Visit every tracked object whose generation is <= maxgen (maxgen 3
 * includes the permanent generation; pass RCGC_GEN_EXACT|g for exactly g).
 * fn may change the object's flags and generation (via rcgc_obj_set_gen) but
 * must not free objects.  Stops and returns the first non-zero result. */
#define RCGC_GEN_EXACT 0x100u
typedef int (*rcgc_obj_iterfn)(rcgc_object *o, void *arg);
int rcgc_obj_foreach_tracked(rcgc_runtime *rt, unsigned gens, rcgc_obj_iterfn fn,
                             void *arg);
/* The pointer the OBJ domain returned for o (o itself for pooled objects,
 * its prefix for foreign ones): what tracemalloc traced. */
static inline void *rcgc_obj_block(const rcgc_object *o)
{
    return (o->flags & RCGC_OF_FOREIGN) ? (void *)rcgc_foreign_of(o) : (void *)o;
}
/* Free an object's memory (after its dealloc ran).  Used by object.c and by
 * runtime teardown. */
void rcgc_obj_free_memory(rcgc_runtime *rt, rcgc_object *o);
/* The memory of n deallocated, untracked pooled objects of one pool at once
 * (the collector's delete): first..tail chains them, in any order,
 * through their first word (tail's is written here), each with its type
 * already RCGC_FREED_TYPE.  What rcgc_obj_free_memory does for each, with
 * the pool's counts updated once (rcgc_pool_free_chain); block by block
 * when the allocator is in a slow mode other than tracing. */
void rcgc_obj_free_pool_chain(rcgc_runtime *rt, rcgc_pool *pool, void *first, void *tail,
                              unsigned n);
/* The end of a deallocation, once finalizers are done with and the
 * refcount is 0: untrack, clear, the type's dealloc, free.  The collector
 * uses it for cleared garbage. */
void rcgc_obj_release(rcgc_runtime *rt, rcgc_object *o);
/* Run pending deferred deallocations (called when depth returns to 0). */
void rcgc_obj_flush_pending(rcgc_runtime *rt);
/* The fatal report for a misused object (names it, its type and refcount,
 * and its allocation traceback when tracing is on). */
_Noreturn void rcgc_obj_fatal(const rcgc_object *o, const char *fmt, ...);

/* -------------------------------------------------------------- collector */

typedef struct rcgc_gen_state {
    long count;       /* gen 0: net new tracked objects; others: collections
                         of the next younger generation */
    long threshold;
    long nobjects;    /* tracked objects now in this generation (gen 0:
                         besides the birth log's entries, B4) */
    rcgc_foreign head;/* foreign tracked objects of this generation */
    /* To 64 bytes: a generation's state is found from a header's
     * generation field at every tracked death (rcgc_gen_nobjects_flags),
     * and a power-of-two stride is a shift there, not a multiply. */
    long spare;
} rcgc_gen_state;
_Static_assert(sizeof(rcgc_gen_state) == 64, "rcgc_gen_state: a 64-byte stride");

typedef struct rcgc_gc_cb {
    rcgc_gc_callback fn;
    void *arg;
} rcgc_gc_cb;

typedef struct rcgc_gc_state {
    rcgc_gen_state gens[3];
    rcgc_gen_state permanent;   /* frozen objects */
    long long_lived_total;      /* objects in gen 2 after the last full collection */
    long long_lived_pending;    /* objects that entered gen 2 since */
    int enabled;
    int collecting;
    int debug;
    rcgc_gc_stats stats[3];
    rcgc_list *garbage;
    rcgc_gc_cb *callbacks;
    size_t ncallbacks, capcallbacks;
    int shutting_down;
    int wide_heap;              /* the last full collection's mark went
                                 * mostly through its prefetch ring: the
                                 * next one's gather uses it too (gc.c) */
    int refs_tracked;           /* G2: an object of a type with refs has
                                 * been tracked in this runtime, once the
                                 * birth log is settled: an unsettled
                                 * object (B1) is noted by its settle
                                 * (rcgc_obj_settle_log), and nothing reads
                                 * G2 with a non-empty log (B3) */
    int young_garbage;          /* the last young collection found more
                                 * unreachable members than reachable ones:
                                 * the next young mark scan records them as
                                 * it goes (gc.c's mark_set).  A hint for
                                 * speed only: either value gives the same
                                 * collection */
    int young_closed;           /* the last young collection's unreachable
                                 * set was closed and quiet (K1, gcdelete.c):
                                 * the next young mark scan does not record,
                                 * and its partition tests the set for K1
                                 * before recording anything (gc.c).  A hint
                                 * for speed only, like young_garbage */
} rcgc_gc_state;

/* gc.c: called by rcgc_new after the gen-0 count went up; may collect. */
void rcgc_gc_maybe_collect(rcgc_runtime *rt);
/* gc.c: set defaults; runtime.c calls it. */
int rcgc_gc_state_init(rcgc_runtime *rt);
/* gc.c: the final collections and shutdown report; runtime.c calls it. */
void rcgc_gc_shutdown(rcgc_runtime *rt);
void rcgc_gc_state_fini(rcgc_runtime *rt);

/* ---------------------------------------------------------- weak refs */

struct rcgc_weak_state;   /* weakref.c */
/* Called at deallocation of an object with RCGC_OF_WEAKREFS: clears its weak
 * references and runs their callbacks (CPython's PyObject_ClearWeakRefs). */
void rcgc_weak_clear_on_dealloc(rcgc_runtime *rt, rcgc_object *o);
/* Clear o's weak references without running callbacks: those made by a
 * legacy finalizer of a dying object (CPython's subtype_dealloc does the
 * same after tp_del). */
void rcgc_weak_clear_silently(rcgc_runtime *rt, rcgc_object *o);
void rcgc_weak_state_fini(rcgc_runtime *rt);

/* --------------------------------------------------------- tracemalloc */

struct rcgc_trace_state;  /* tracemalloc.c */
/* Write the allocation traceback of the block at ptr in domain d to out, in
 * CPython's "Memory block allocated at (most recent call first):" form;
 * returns 0 when the block is not traced. (Weak symbol contract: always
 * defined; prints nothing when tracing never started.) */
int rcgc_trace_print_block(rcgc_runtime *rt, rcgc_domain d, const void *ptr, FILE *out);
void rcgc_trace_state_fini(rcgc_runtime *rt);
/* Check tracing's invariants (tracemalloc.c, tmfast.h); RCGC_OK or
 * RCGC_EFORMAT with a line on out. */
int rcgc_trace_validate(rcgc_runtime *rt, FILE *out);
int rcgc_trace_start_from_env(rcgc_runtime *rt, int nframe);

/* ---------------------------------------------------------------- runtime */

struct rcgc_runtime {
    rcgc_mem_state mem;
    rcgc_pool_state pool;
    rcgc_obj_state obj;
    rcgc_gc_state gc;
    struct rcgc_weak_state *weak;
    struct rcgc_trace_state *trace;
    _Atomic(uintptr_t) owner;   /* debug: the thread inside the runtime */
    int owner_depth;
    int freeing;                /* rcgc_runtime_free in progress */
    /* rcgc_class_inv, copied by tracemalloc.c when its state is made
     * (before any traced free; rcgc_trace_validate checks it): the traced
     * free (tmfast.h) indexes it from the runtime's register instead of
     * loading the table's address first.  Last, so that it moves no other
     * field.  8 bytes an entry (the multiplier in the low half): the
     * entry of class c is at the same distance from rt + 8c, the address
     * of class c's free cache row (pool.h), as every row field, so the
     * traced free indexes it with the row it has (R8, mem.c). */
    uint64_t trace_class_inv[RCGC_NCLASSES];
    /* The most recent recorded native walk (tracemalloc.c's tm_stack,
     * one of its state's four; set when the state is made): the native
     * fast path's repeat check reads it from the runtime's register
     * without loading the tracer's state first.  Last, as above. */
    const void *trace_mru;
    /* The birth log (B1-B3, rcgc_obj_state): last, so that it moves no
     * other field, and in the runtime itself, so that a birth stores its
     * entry through the runtime's register without a load first.  One
     * entry more than the capacity: the settle appends birth_last (B2). */
    rcgc_object *births[RCGC_BIRTHS + 1];
    /* T2 (tmfast.h): RCGC_NCLASSES while rcgc_mem_free may free a
     * block of the traced region (T1) as free_not_hdr does (slow ==
     * RCGC_SLOW_TRACE and the credits on: the ring's mode, T4), else
     * RCGC_NROWS, above every class; rcgc_mem_free_rows_set keeps it.
     * At the runtime's end, with what follows, so that they move no
     * field of the fast paths. */
    size_t region_rows;
    /* T1: the region's class bytes (rcgc_region_classes) once this
     * runtime has mapped an arena there, else a table of zeros, as an
     * address less RCGC_REGION_HI << 20, so that an address of the
     * region shifted by RCGC_POOL_BITS indexes it with no mask
     * (rcgc_pool_region_classes_set, pool.c, sets it); read from the
     * runtime's register by the region's free. */
    uintptr_t region_classes_at;
    /* T4 (tmfast.h): the traced free's ring, while tracing alone with the
     * credits on: the last RCGC_HDR_RING traced pools' blocks freed, not
     * yet cached (with no credit: each counts its whole size, its header
     * still its trace), and their rows; NULL entries are empty.  A free puts its
     * block at hdr_ring_i and settles the block it finds there (reads its
     * header, prefetched when it was freed, gives room the rest of its
     * size, writes the settled header and caches it), so the pop that
     * takes a block from a traced row reads no header on its path.
     * rcgc_mem_hdr_ring_flush settles them all. */
    void *hdr_ring[RCGC_HDR_RING];
    uint8_t hdr_ring_row[RCGC_HDR_RING];
    size_t hdr_ring_i;
};

static inline int rcgc_mem_inject(rcgc_runtime *rt)
{
    if (rt->mem.fail_countdown == 0)
        return 0;
    if (rt->mem.fail_countdown > 1) {
        rt->mem.fail_countdown--;
        return 0;
    }
    if (!rt->mem.fail_persistent)
        rt->mem.fail_countdown = 0;
    rt->mem.failures++;
    return 1;
}

/* The OBJ domain's live blocks: its blocks that are not objects and the
 * live objects (OC1, rcgc_obj_state). */
static inline long rcgc_mem_obj_live(const rcgc_runtime *rt)
{
    return rt->mem.domains[RCGC_DOMAIN_OBJ].live + (long)rt->obj.live_objects;
}

/* Fatal error: print "rcgc fatal error: <message>" and abort (through the
 * registered fatal handler). */
_Noreturn void rcgc_fatal(const char *fmt, ...);

/* Debug-build thread ownership checks at API entry points. */
#if RCGC_DEBUG >= 1
void rcgc_runtime_enter(rcgc_runtime *rt);
void rcgc_runtime_leave(rcgc_runtime *rt);
#define RCGC_ENTER(rt) rcgc_runtime_enter(rt)
#define RCGC_LEAVE(rt) rcgc_runtime_leave(rt)
#else
#define RCGC_ENTER(rt) ((void)0)
#define RCGC_LEAVE(rt) ((void)0)
#endif

#if RCGC_DEBUG >= 2
#define RCGC_ASSERT(c)                                                       \
    do {                                                                     \
        if (!(c))                                                            \
            rcgc_fatal("%s:%d: assertion failed: %s", __FILE__, __LINE__, #c); \
    } while (0)
#else
#define RCGC_ASSERT(c) ((void)0)
#endif

/*
 * Tracking (object.c's contract above), inline: every GC object's birth and
 * death pays it.  A pooled object's tracked bit, its pool's counts (P3, P4)
 * and the young list; a foreign one moves between lists out of line.
 */

/* Counter updates as one read-modify-write of memory (asm; asm goto with
 * outputs needs GCC >= 11 or Clang) on x86-64, where in C the compiler
 * loads, changes and stores (two instructions more each): the shared count
 * word below, and object.c's counters of every deallocation. */
#if defined(__x86_64__) && defined(__LP64__) &&                                \
    (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 11))
#define RCGC_RMW_ASM 1
#else
#define RCGC_RMW_ASM 0
#endif

/* The pool side of tracking a pooled object into generation 0 (its header
 * is the caller's; i is its block index), but for the young list: returns
 * non-zero when the pool
 * must now join it (rcgc_pool_young_add), which the caller does (so that
 * a caller without a stack frame can do it in a tail call). */
_Static_assert(offsetof(rcgc_pool, nyoung) == offsetof(rcgc_pool, ntracked) + 2,
               "rcgc_obj_track_bits: ntracked and nyoung are one 32-bit word");
static inline int rcgc_obj_track_count(rcgc_pool *pool);
static inline int rcgc_obj_track_bits_at(rcgc_pool *pool, unsigned i)
{
    pool->tracked[i >> 6] |= (uint64_t)1 << (i & 63);
    pool->gen0[i >> 9] |= (uint64_t)1 << ((i >> 3) & 63);   /* P5 */
    return rcgc_obj_track_count(pool);
}

/* rcgc_obj_track_bits for a block of a request class's pool of 32-byte
 * blocks (size class 1; blocks from the pool's start, no H1 offset): its
 * index is (o & (RCGC_POOL_SIZE - 1)) >> 5, below 512, so its tracked
 * word is address bits 11-13, its bit address bits 5-10, and its P5 bit
 * address bits 8-13 of gen0[0]: shifts of the address, no multiply by
 * pool->inv (the creation's fast path, new_object_init in object.c). */
_Static_assert(RCGC_POOL_SIZE == (size_t)1 << 14 && RCGC_POOL_BITMAP_WORDS >= 8,
               "rcgc_obj_track_bits_32: 512 blocks of 32 bytes a pool");
static inline int rcgc_obj_track_bits_32(rcgc_pool *pool, rcgc_object *o)
{
    uintptr_t a = (uintptr_t)o;
    RCGC_ASSERT(pool->szidx == 1 && pool->size == 32 &&
                pool->mem == (char *)(a & ~(uintptr_t)(RCGC_POOL_SIZE - 1)));
    pool->tracked[(a >> 11) & 7] |= (uint64_t)1 << ((a >> 5) & 63);
    pool->gen0[0] |= (uint64_t)1 << ((a >> 8) & 63);   /* P5 */
    return rcgc_obj_track_count(pool);
}

/* The count side of tracking: ntracked and nyoung raised; non-zero when
 * the pool must now join the young list. */
static inline int rcgc_obj_track_count(rcgc_pool *pool)
{
    /* ntracked++ and nyoung++ in one add to the word they share (neither
     * can carry: both are at most a pool's 1024 blocks). */
#if RCGC_RMW_ASM
    /* One add to memory and one compare with it (the word after the add
     * is below 0x20000 iff nyoung is now 1): in C the compiler loads,
     * adds, stores and compares the value it loaded (two instructions
     * more).  Both halves are the asm's operands, so the compiler knows
     * that both fields change; the text addresses them as one word. */
    __asm__ goto("addl $0x10001, %0\n\tcmpl $0x20000, %0\n\tjb %l[join]"
                 : "+m"(pool->ntracked), "+m"(pool->nyoung) : : "cc" : join);
    return 0;
join:
    return 1;
#else
    uint32_t both, after;
    memcpy(&both, &pool->ntracked, sizeof both);
    after = both + 0x10001u;
    memcpy(&pool->ntracked, &after, sizeof after);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return both < 0x10000u;           /* nyoung was 0 */
#else
    return (both & 0xffffu) == 0;
#endif
#endif
}

/* rcgc_obj_track_bits_at for object o (its block index by multiply). */
static inline int rcgc_obj_track_bits(rcgc_pool *pool, rcgc_object *o)
{
    return rcgc_obj_track_bits_at(pool, rcgc_pool_index(pool, o));
}

/* The pool side of tracking a pooled object into generation 0 (its header
 * is the caller's). */
static inline void rcgc_obj_track_pooled(rcgc_runtime *rt, rcgc_object *o)
{
    rcgc_pool *pool = rcgc_pool_of(o);
    if (RCGC_UNLIKELY(rcgc_obj_track_bits(pool, o)))
        rcgc_pool_young_add(rt, pool);
}

/* The pool side of untracking a pooled object that was in generation gen
 * (its header and the generation counts are the caller's). */
static inline void rcgc_obj_untrack_pooled(rcgc_runtime *rt, rcgc_object *o, unsigned gen)
{
    rcgc_pool *pool = rcgc_pool_of(o);
    unsigned i = rcgc_pool_index(pool, o);
    /* ~(1 << n) as ~1 rotated left by n: one instruction fewer than the
     * shift and the complement. */
    unsigned n = i & 63;
    pool->tracked[i >> 6] &= (~(uint64_t)1 << n) | (~(uint64_t)1 >> ((64 - n) & 63));
    pool->ntracked--;
    if (gen < 2 && RCGC_UNLIKELY(--pool->nyoung == 0))
        rcgc_pool_young_remove(rt, pool);
}

/* The count of tracked objects in generation gen (0..2, or 3: frozen),
 * found by arithmetic: the permanent generation's state follows gens[2]
 * at the same stride (asserted below), so no branch and no table is
 * needed (deallocation pays it for every tracked object). */
_Static_assert(offsetof(rcgc_gc_state, permanent) ==
                   offsetof(rcgc_gc_state, gens) + 3 * sizeof(rcgc_gen_state),
               "rcgc_gen_nobjects: permanent must follow gens[2] at gens' stride");
static inline long *rcgc_gen_nobjects(rcgc_runtime *rt, unsigned gen)
{
    return (long *)(void *)((char *)rt + offsetof(rcgc_runtime, gc.gens[0].nobjects) +
                            (size_t)(gen & 3u) * sizeof(rcgc_gen_state));
}

/* The same for the generation field of a header's flags, which holds
 * gen * 2: that times half the stride (an AND and a multiply by a
 * constant, without extracting gen first). */
_Static_assert(RCGC_OF_GEN_SHIFT == 1 && sizeof(rcgc_gen_state) % 2 == 0,
               "rcgc_gen_nobjects_flags: the generation field is gen * 2");
static inline long *rcgc_gen_nobjects_flags(rcgc_runtime *rt, uint32_t flags)
{
    return (long *)(void *)((char *)rt + offsetof(rcgc_runtime, gc.gens[0].nobjects) +
                            (size_t)(flags & RCGC_OF_GEN_MASK) * (sizeof(rcgc_gen_state) / 2));
}

/* The birth log's share of generation 0's count (B4): its entries, the
 * emptied ones included, and its last slot when not NULL. */
static inline size_t rcgc_obj_nlogged(const rcgc_runtime *rt)
{
    return rt->obj.nbirths + (rt->obj.birth_last != NULL);
}

/* The tracked objects of generation gen (0-2, 3 the permanent one): the
 * stored count, plus the birth log's share for generation 0 (B4). */
static inline long rcgc_gen_count(const rcgc_runtime *rt, unsigned gen)
{
    if (gen == 3)
        return rt->gc.permanent.nobjects;
    long n = rt->gc.gens[gen].nobjects;
    return gen == 0 ? n + (long)rcgc_obj_nlogged(rt) : n;
}

/* Settle the birth log (B3): every logged object gets its pool's tracked
 * and P5 bits and counts, its header loses RCGC_OF_UNSETTLED and its
 * index; the log is emptied.  Cheap when the log is empty. */
void rcgc_obj_settle_log(rcgc_runtime *rt);
static inline void rcgc_obj_settle(rcgc_runtime *rt)
{
    if (RCGC_UNLIKELY(rt->obj.nbirths != 0 || rt->obj.birth_last != NULL))
        rcgc_obj_settle_log(rt);
}

/* Forget the log entry of an object that dies or is untracked while
 * unsettled (B1, B2, B5; flags its header's flags): the last slot is
 * emptied, the last entry of births[] popped, any other emptied.  The
 * header, the generation counts and count[0] are the caller's.  slot (a
 * constant) lays the test of the slot out for its caller: 1 where the
 * slot's object is the usual one (a temporary dropped from outside:
 * rcgc_dealloc's paths), 0 where entries of births[] are (nested deaths,
 * which structures built before they die take), so that those pass the
 * slot's test without a taken branch. */
static RCGC_ALWAYS_INLINE void rcgc_obj_forget_birth_at(rcgc_runtime *rt, const rcgc_object *o,
                                                        uint32_t flags, int slot)
{
    RCGC_ASSERT((flags & (RCGC_OF_UNSETTLED | RCGC_OF_TRACKED | RCGC_OF_GEN_MASK |
                          RCGC_OF_FOREIGN)) == (RCGC_OF_UNSETTLED | RCGC_OF_TRACKED));
    /* B5: the slot's object by its address (no index to extract: testing
     * the flags' index bits for 0 instead cost GCC a copy and a shift);
     * B4: the slot's count goes with it. */
    if (slot) {
        if (RCGC_LIKELY(o == rt->obj.birth_last)) {
            RCGC_ASSERT((flags >> RCGC_OF_BIRTH_SHIFT) == 0);
            rt->obj.birth_last = NULL;
            return;
        }
    } else if (RCGC_UNLIKELY(o == rt->obj.birth_last)) {
        RCGC_ASSERT((flags >> RCGC_OF_BIRTH_SHIFT) == 0);
        rt->obj.birth_last = NULL;
        return;
    }
    /* B4: the popped entry took its count with it; an emptied one still
     * counts in nbirths, so generation 0's stored count goes down. */
    size_t top = flags >> RCGC_OF_BIRTH_SHIFT;   /* the index + 1 (B1) */
    RCGC_ASSERT(top >= 1 && top <= rt->obj.nbirths && rt->births[top - 1] == o);
    if (RCGC_LIKELY(top == rt->obj.nbirths)) {
        /* The pop, a decrement of memory (in C GCC computed top - 1 and
         * stored it: one instruction more). */
#if RCGC_RMW_ASM
        _Static_assert(sizeof rt->obj.nbirths == 8, "rcgc_obj_forget_birth: subq on a size_t");
        __asm__("subq $1, %0" : "+m"(rt->obj.nbirths) : : "cc");
#else
        rt->obj.nbirths--;
#endif
    } else {
        rt->births[top - 1] = NULL;
        rt->gc.gens[0].nobjects--;
    }
}

/* rcgc_obj_forget_birth_at for the nested and general paths. */
static RCGC_ALWAYS_INLINE void rcgc_obj_forget_birth(rcgc_runtime *rt, const rcgc_object *o,
                                                     uint32_t flags)
{
    rcgc_obj_forget_birth_at(rt, o, flags, 0);
}

static inline void rcgc_obj_track(rcgc_runtime *rt, rcgc_object *o)
{
    RCGC_ASSERT(!(o->flags & RCGC_OF_TRACKED));
    if (o->type->refs != NULL)
        rt->gc.refs_tracked = 1;   /* G2 */
    o->flags = (o->flags & ~RCGC_OF_GEN_MASK) | RCGC_OF_TRACKED;
    rt->gc.gens[0].nobjects++;
    if (RCGC_UNLIKELY(o->flags & RCGC_OF_FOREIGN)) {
        rcgc_obj_track_foreign(rt, o);
        return;
    }
    rcgc_obj_track_pooled(rt, o);
}

static inline void rcgc_obj_untrack(rcgc_runtime *rt, rcgc_object *o)
{
    RCGC_ASSERT(o->flags & RCGC_OF_TRACKED);
    uint32_t flags = o->flags;
    unsigned gen = rcgc_obj_gen(o);
    if (RCGC_UNLIKELY(flags & RCGC_OF_UNSETTLED)) {
        /* B1: no pool bits to clear; the scratch bits go with the entry,
         * and the count with it (B4). */
        o->flags = flags & ~(RCGC_OF_TRACKED | RCGC_OF_GEN_MASK | RCGC_OF_GC_SCRATCH);
        rcgc_obj_forget_birth(rt, o, flags);
        return;
    }
    --*rcgc_gen_nobjects(rt, gen);
    o->flags = flags & ~(RCGC_OF_TRACKED | RCGC_OF_GEN_MASK);
    if (RCGC_UNLIKELY(flags & RCGC_OF_FOREIGN)) {
        rcgc_obj_untrack_foreign(rt, o);
        return;
    }
    rcgc_obj_untrack_pooled(rt, o, gen);
}

#endif /* RCGC_RUNTIME_H */
