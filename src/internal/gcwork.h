/*
 * gcwork.h - the cycle collector's work space, shared by gc.c (steps 1-4,
 * trial deletion, and the collection's driver) and gcdelete.c (the phases
 * after it: legacy finalizers, resurrection, orphans, delete).
 *
 * It holds gc_work and its pool sets (gc_poolset), with the invariants of
 * their fields below; the iteration macro over a collection's unreachable
 * pooled members; and the helpers both files call per object, always
 * inline, so that no per-object call crosses the file boundary: the mark
 * stack's push, the clear of one member (rcgc_gc_clear_kind) and the
 * release of a cleared one (rcgc_gc_release_cleared).  Calls between the
 * two files are per collection (the rcgc_gc_* functions declared last).
 * gc.h states the invariants C1-C5 both files keep.
 */
#ifndef RCGC_GCWORK_H
#define RCGC_GCWORK_H

#include <stddef.h>
#include <stdint.h>

#include "gc.h"
#include "pool.h"
#include "runtime.h"

/* Slow paths kept out of line, so that the visit functions they are called
 * from stay leaf functions (no register saves per visited reference). */
#define GC_COLD __attribute__((noinline, cold))

/* A full collection's visits of the gather and the mark are deferred
 * through a ring of this many referents (a power of two): a referent is
 * prefetched when visited and its header read only when the ring comes
 * round to it, by when the line is usually there (Boehm's mark
 * prefetching; see w->ring).  64: after 16 visits a referent's line had
 * often not arrived yet in a heap bigger than the last-level cache
 * (binary-trees depth 18); 128 and 256 were no better (round 9). */
#define GC_RING 64

/* gc_work.klist's length: the churn reaches one or two members a young
 * collection. */
#define GC_K1_LIST 16

/*
 * The bitmaps of one pool during the main trial deletion (bit i: block i):
 *   members  its tracked objects in the collection set (tracked[]
 *            restricted to generations 0..g);
 *   reached  members found reachable by marking (for pooled objects this
 *            replaces RCGC_OF_REACHABLE: neither the mark scan nor the
 *            partition has to read a reached member's header again).  In a
 *            young collection, from the gather until the partition writes
 *            it (R1): a superset of the members referenced from outside
 *            the set, the young scan's candidates (a young mark marks in
 *            the headers, not here).  The gather reads a member's header
 *            before its own traversal and keeps it when its refcount
 *            exceeds its count of internal references so far: that
 *            difference only falls during the gather (a count rises, or
 *            past saturation the refcount falls), so a member left out is
 *            no root.  The gather for a recording scan (which reads every
 *            member anyway) copies members instead.  A young set reached
 *            whole (u = 0) is left so: nothing reads it later; so is one
 *            K1's sums found closed with more survivors than klist holds
 *            (kfromgather: step 9 reads the generations instead);
 *   moving   members whose generation is not `old`: those a survivor's
 *            promotion must write (full collections only: a young gather
 *            leaves it unset, since every young member changes generation
 *            and the young partition does not read it).  In a young
 *            collection whose scan records (gc_work.scanrec): the members
 *            recorded unreachable so far (zeroed by the gather).
 * The pool's descriptor holds the index of its set (rcgc_pool.gcset).
 */
typedef struct gc_poolset {
    rcgc_pool *pool;
    uint64_t members[RCGC_POOL_BITMAP_WORDS];
    uint64_t reached[RCGC_POOL_BITMAP_WORDS];
    uint64_t moving[RCGC_POOL_BITMAP_WORDS];
} gc_poolset;

/*
 * The work space of one collection.  Memory is bounded by the objects and
 * pools in the collected generations: 12 bytes per object for objs + saved
 * (reserved, written only for unreachable objects), 392 bytes per pool
 * holding a member, plus the mark stack, which holds each object at most
 * once per phase.
 *
 *   pools[0..npools)  the pools holding members, each with its bitmaps
 *                (gc_poolset; the main trial deletion walks these, not
 *                objs), in gather order; rcgc_pool.gcset indexes them.
 *   objs[0..u)   the unreachable objects, held (C3): foreign ones as the
 *                partition finds them; pooled ones (in heap order, before
 *                the foreign) only when list_unreachable runs, for sets
 *                that need finalization or debug output.  Later phases
 *                partition this range in place.
 *   saved[i]     objs[i]'s true refcount while a second trial deletion
 *                (rcgc_gc_handle_resurrected) makes refcounts scratch
 *                values (C2).
 *   stack        mark stack (or the legacy phase's queue).  If it cannot
 *                grow, `overflow` is set and the phase rescans the set until
 *                a pass completes without overflow: still correct, slower.
 */
typedef struct gc_work {
    rcgc_runtime *rt;
    rcgc_object **objs;
    uint32_t *saved;
    size_t n;               /* members found (main trial deletion) */
    size_t npooled;         /* of those, pooled ones */
    size_t npooled1;        /* of those, of generation 1 */
    size_t nflagged;        /* young: pooled members reached with
                             * RCGC_OF_REACHABLE (saturated ones) */
    size_t cap;             /* slots of objs/saved: the generations' counts */
    size_t nreach;          /* members marked reachable */
    unsigned maxgen;        /* the collected generation g */
    unsigned old;           /* where survivors go: min(g + 1, 2) */
    int bitmaps;            /* full collection: pooled members reached are
                             * kept in the reached bitmaps, not the flags */
    unsigned memberset;     /* bit (flags & 7) set iff tracked, gen <= g */
    unsigned youngfast;     /* young: see visit_reach_young */
    int scanrec;            /* young: the mark scan records the members it
                             * finds unreachable at once (gc.c's mark_set,
                             * rcgc_gc_state.young_garbage); their bits are
                             * in `moving` until the partition */
    int needstale;          /* scanrec: a record was undone while need was
                             * non-zero (need is recomputed) */
    size_t unreach1;        /* scanrec, generation 1: recorded members of
                             * generation 1 */
    int kclosed;            /* K1 (gcdelete.c): the unreachable set is
                             * closed and quiet, all of type ktype.  Set
                             * by the young partition's test (then nothing
                             * was recorded: no member holds the hold or
                             * RCGC_OF_COLLECTING, and need is 0), by a
                             * full collection's partition while it records
                             * (K2: held and flagged, need 0, no foreign
                             * member; gc.c's record_word_k2) or by
                             * rcgc_gc_delete_closed's own test (a small
                             * young set) */
    const rcgc_type *ktype; /* kclosed: the members' type (the cache's
                             * type2 after the gather); k1gather: the
                             * first two-field type the gather's cache
                             * took, with its offsets koff0, koff1 */
    size_t koff0, koff1;
    /* K1's sums from the gather and the mark (a generation-0 collection
     * with the hint young_closed, gc.c's k1gather): unless kbad, kn is the
     * number of members of ktype and kacc the sum over them of refcount
     * less non-NULL fields, as the gather read them (every pool gathered
     * through the cache, whose two-field type never was another than
     * ktype); knr and kaccr the same over the members the mark reached
     * (each traversed once by the young drain).  kn is kept as the members
     * gathered less those not through the cache's two-field hit (the one-
     * field hits, the misses) plus the misses of ktype. */
    int kmixed;             /* kclosed by K2 with members of types other
                             * than ktype (or ktype NULL): each of K2's kind
                             * (rcgc_gc_k2_type_ok) */
    const rcgc_type *k2other; /* K2: the last type other than the cache's
                             * found of K2's kind (gc.c's k2_other) */
    int k1gather;
    int kbad;
    int kfromgather;        /* kclosed by the sums: `reached` is not the
                             * survivors' (the headers say which) */
    size_t kn, knr;
    int64_t kacc, kaccr;
    gc_poolset *pools;
    size_t npools;
    size_t cappools;
    rcgc_object **stack;
    size_t sp;
    size_t stackcap;
    int overflow;
    int saturated;          /* some member's internal count saturated */
    size_t u;               /* unreachable members found (held) */
    size_t nforeign;        /* of those, foreign: objs[0..nforeign) until
                             * the set is listed (list_unreachable) */
    unsigned need;          /* NEED_* of the unreachable members */
    const rcgc_type *plaintype; /* NULL, or the type of an unreachable member
                             * recorded before, with no legacy_del, no
                             * finalize, not the weak reference type: its
                             * objects add to need only their own weak
                             * references (gc.c's record_one) */
    rcgc_object *current;   /* the object being traversed (debug reports) */
    /* Full collections: referents visited but not yet looked at, a queue
     * of ringn in ring[], the oldest at ringpos.  Both visits that go
     * through it give the same result in any order (a count; reaching a
     * set), and it is empty again whenever a phase ends. */
    size_t ringpos;         /* size_t: a slot address needs no zero extension */
    unsigned ringn;
    int widegather;         /* the gather goes through the ring too */
    size_t nwide;           /* objects the mark traversed through the ring */
    size_t nleaf;           /* Y1 leaves the full drain reached and did not
                             * traverse (wide_heap compares nwide with the
                             * members traversed: nreach - nleaf) */
    rcgc_object *ring[GC_RING];
    /* The hot loops' type cache (traverse.h, RC1, RC2); zeroed: empty. */
    rcgc_refs_cache refcache;
    /* Step 9 of plain garbage (rcgc_gc_delete_by_pool).  Members are
     * cleared a first time in pool set order, within a pool in address
     * order, and released (batch test, second clear, dealloc) in the same
     * order.  D1: (dirtyrank, dirtyobj) is the position in that order of
     * the last event that may have run user code since the first clears
     * began - a type's clear or dealloc called, an object outside the set
     * dying, a user allocator's free -: pool set dirtyrank - 1, up to and
     * including the member at dirtyobj (UINTPTR_MAX: the whole pool;
     * dirtyrank SIZE_MAX: every pool; 0: no event).  A member cleared
     * after it still has every listed field NULL, so its second clear is
     * skipped.  Moved forward on any doubt, never back but where a pool's
     * first clears start anew (a big set, cleared a pool at a time).
     * clearrank: pool set index + 1 of the pool being cleared. */
    size_t dirtyrank;
    uintptr_t dirtyobj;
    size_t clearrank;
    /* k1gather: the first GC_K1_LIST members the young drain's K1 copy
     * traversed (every reached member is traversed once), nklist of them
     * (counting on past the list).  When the sums find the set closed and
     * the list holds every reached member, the survivors' `reached` bits
     * come from it instead of the headers.  Not zeroed by work_alloc
     * (the last field, past its memset): only klist[0..nklist) is read. */
    size_t nklist;
    rcgc_object *klist[GC_K1_LIST];
} gc_work;

/* What the unreachable set needs beyond clearing (gc.c's partition). */
enum {
    NEED_LEGACY = 1,      /* some object has legacy_del */
    NEED_WEAK = 2,        /* weak references to or among the set */
    NEED_FINALIZE = 4     /* some object's PEP 442 finalizer has not run */
};

/* The number of bits set in x, inline (the compiler's builtin is a call
 * where the target has no popcount instruction). */
static inline unsigned gc_popcount64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

/* The index of b's lowest set bit (b != 0) as a size_t, for the bitmap
 * walks' block address (gc.c's, gcdelete.c's, GC_FOR_EACH_POOLED): on
 * x86-64 one tzcnt (which a CPU without BMI1 runs as bsf, the same for
 * b != 0), where __builtin_ctzll's int costs a sign extension and a
 * zeroing of the destination besides (W1). */
static RCGC_ALWAYS_INLINE size_t gc_low_bit(uint64_t b)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    uint64_t i;
    __asm__("tzcnt %1, %0" : "=r"(i) : "rm"(b) : "cc");
    return (size_t)i;
#else
    return (size_t)__builtin_ctzll(b);
#endif
}

/* The pooled members of the pool sets whose bit is set in BITS(ps, k)
 * (word k of pool set ps's bitmaps), in heap order: body with o bound to
 * each.  body may free o, and with it o's pool once its last one goes:
 * the pool's fields are read before its first member is passed. */
#define GC_FOR_EACH_POOLED(w, o, BITS, body)                                         \
    do {                                                                             \
        size_t pre_ = (w)->rt->mem.debug_pre;                                        \
        for (size_t p_ = 0; p_ < (w)->npools; p_++) {                                \
            const gc_poolset *ps_ = &(w)->pools[p_];                                 \
            char *base_ = ps_->pool->mem + pre_;                                     \
            size_t size_ = ps_->pool->size;                                          \
            for (unsigned k_ = 0; k_ < RCGC_POOL_BITMAP_WORDS; k_++) {               \
                uint64_t b_ = BITS(ps_, k_);                                         \
                char *word_ = base_ + (size_t)k_ * 64 * size_;                       \
                for (; b_; b_ &= b_ - 1) {                                           \
                    size_t i_ = gc_low_bit(b_);                                      \
                    rcgc_object *o = (rcgc_object *)(word_ + i_ * size_);            \
                    body;                                                            \
                }                                                                    \
            }                                                                        \
        }                                                                            \
    } while (0)
#define GC_MEMBER_BITS(ps, k) ((ps)->members[k])
#define GC_UNREACHABLE_BITS(ps, k) ((ps)->members[k] & ~(ps)->reached[k])
#define GC_RECORDED_BITS(ps, k) ((ps)->moving[k])   /* gc_work.scanrec */

/* The unreachable pooled members of the pool sets, in heap order. */
#define FOR_EACH_UNREACHABLE_POOLED(w, o, body)                                      \
    GC_FOR_EACH_POOLED(w, o, GC_UNREACHABLE_BITS, body)

/* Push o on the mark stack (or the legacy phase's queue), growing it on
 * demand; if it cannot grow, w->overflow is set (gc_work's stack). */
GC_COLD void rcgc_gc_push_slow(gc_work *w, rcgc_object *o);

static inline void rcgc_gc_push(gc_work *w, rcgc_object *o)
{
    if (RCGC_LIKELY(w->sp < w->stackcap))
        w->stack[w->sp++] = o;
    else
        rcgc_gc_push_slow(w, o);
}

/* T3 for a member o in a loop's copy for one kind of heap, as
 * gc.c's traverse_kind: with refs zero (RC2: o's type has no refs array)
 * only the type's clear, with no cache test. */
static RCGC_ALWAYS_INLINE void rcgc_gc_clear_kind(rcgc_refs_cache *c, rcgc_object *o,
                                                  const int refs)
{
    if (refs) {
        rcgc_obj_clear_cached(c, o);
        return;
    }
    const rcgc_type *t = o->type;
    RCGC_ASSERT(!c->met && t->refs == NULL);
    if (t->clear != NULL)
        t->clear(o);
}

/* D1 at the start of the first clears, in a loop's copy for one kind of
 * heap (refs as rcgc_gc_clear_kind): every second clear is made where a
 * user allocator (any slow mode but tracing alone) runs user code when a
 * batch's memory goes, and in a heap of traverse types only, whose clear
 * is user code (not worth noting per object). */
static inline void rcgc_gc_dirty_init(gc_work *w, const int refs)
{
    w->dirtyrank = (!refs || (w->rt->mem.slow & ~RCGC_SLOW_TRACE)) ? SIZE_MAX : 0;
    w->dirtyobj = UINTPTR_MAX;
}

/* D1: an event that may run user code, during the first clear of o (in
 * pool set w->clearrank - 1). */
static inline void rcgc_gc_dirty_at(gc_work *w, const rcgc_object *o)
{
    if (w->dirtyrank == SIZE_MAX)
        return;
    w->dirtyrank = w->clearrank;
    w->dirtyobj = (uintptr_t)o;
}

/* Drop field off of o for rcgc_gc_clear_first (T3's order); a referent
 * that dies here runs its deallocation, which may run user code: D1. */
static RCGC_ALWAYS_INLINE void rcgc_gc_ref_clear_first(gc_work *w, rcgc_object *o,
                                                      unsigned off)
{
    rcgc_object *r = rcgc_ref_load(o, off);
    if (r != NULL) {
        static rcgc_object *const null_ref = NULL;
        memcpy((char *)o + off, &null_ref, sizeof null_ref);
#if RCGC_DEBUG >= 1
        if (RCGC_UNLIKELY(r->refcnt == 1))
            rcgc_gc_dirty_at(w, o);
        rcgc_decref(r);   /* with its checks */
#else
        if (--r->refcnt == 0) {
            rcgc_gc_dirty_at(w, o);
            rcgc_dealloc(r);
        }
#endif
    }
}

/* rcgc_gc_clear_kind for a member's first clear in step 9 of plain
 * garbage, noting (D1) whatever may run user code: a type's clear, or a
 * referent dying.  refs: as rcgc_gc_clear_kind. */
static RCGC_ALWAYS_INLINE void rcgc_gc_clear_first(gc_work *w, rcgc_object *o, const int refs)
{
    if (!refs) {
        RCGC_ASSERT(w->dirtyrank == SIZE_MAX);   /* rcgc_gc_dirty_init */
        rcgc_gc_clear_kind(&w->refcache, o, 0);
        return;
    }
    const rcgc_type *t = o->type;
    rcgc_refs_cache *c = &w->refcache;
    if (RCGC_LIKELY(t == c->type2)) {
        /* RC3: two fields.  Both offsets first: dropping a reference may
         * run any code. */
        unsigned off0 = c->off0, off1 = c->off1;
        rcgc_gc_ref_clear_first(w, o, off0);
        rcgc_gc_ref_clear_first(w, o, off1);
        return;
    }
    if (t == c->type) {
        rcgc_gc_ref_clear_first(w, o, c->off0);   /* RC3: one field */
        return;
    }
    const uint16_t *lst = t->refs;
    if (lst != NULL) {
        (void)rcgc_refs_cache_fill(c, t, lst);
        for (unsigned off; (off = *lst) != 0; lst++)
            rcgc_gc_ref_clear_first(w, o, off);
    }
    if (t->clear != NULL) {
        rcgc_gc_dirty_at(w, o);
        t->clear(o);
    }
}

#if RCGC_DEBUG >= 1
/* D1's consequence, checked where the second clear is skipped: o's listed
 * fields are all NULL. */
static inline void rcgc_gc_assert_cleared(const rcgc_object *o)
{
    const uint16_t *lst = o->type->refs;
    for (unsigned off; lst != NULL && (off = *lst) != 0; lst++)
        if (rcgc_ref_load(o, off) != NULL)
            rcgc_obj_fatal(o, "gc: a field of a cleared object holds a reference again, "
                              "though no user code ran since its clear");
}
#endif

/* rcgc_gc_promote with the pooled case inline (P4 kept): in the delete
 * loop every object still referenced after its own `clear` moves, most of
 * them only to die a moment later. */
static inline void rcgc_gc_promote_one(rcgc_runtime *rt, rcgc_object *o, unsigned old)
{
    unsigned f = o->flags;
    unsigned gen = (f & RCGC_OF_GEN_MASK) >> RCGC_OF_GEN_SHIFT;
    if (!(f & RCGC_OF_TRACKED) || gen == old || gen == RCGC_GEN_PERMANENT)
        return;
    if (f & RCGC_OF_FOREIGN) {
        rcgc_obj_set_gen(rt, o, old);
        return;
    }
    o->flags = (f & ~RCGC_OF_GEN_MASK) | (old << RCGC_OF_GEN_SHIFT);
    rt->gc.gens[gen].nobjects--;
    rt->gc.gens[old].nobjects++;
    if ((gen < 2) != (old < 2)) {
        rcgc_pool *pool = rcgc_pool_of(o);
        if (old < 2) {
            if (pool->nyoung++ == 0)
                rcgc_pool_young_add(rt, pool);
        } else if (--pool->nyoung == 0) {
            rcgc_pool_young_remove(rt, pool);
        }
    }
}

/*
 * Let go of the collector's hold on a cleared object of the final set.  If
 * the hold is the last reference, the object is freed here directly,
 * following object.c's deallocation order (runtime.h): its PEP 442
 * finalizer has run, it has no weak references and no legacy finalizer, so
 * what remains is untrack, clear (again: code that ran since may have
 * stored a reference), dealloc and free.  Anything else takes the ordinary
 * decref.  This saves the general dealloc path for every piece of garbage.
 */
static inline void rcgc_gc_release_cleared(rcgc_runtime *rt, rcgc_object *o, unsigned old)
{
    const rcgc_type *t = o->type;
    unsigned f = o->flags & ~RCGC_OF_COLLECTING;
    if (o->refcnt == 1 && !(f & RCGC_OF_WEAKREFS) && t->legacy_del == NULL &&
        (t->finalize == NULL || (f & RCGC_OF_FINALIZED))) {
        o->refcnt = 0;
        o->flags = f;
        rcgc_obj_release(rt, o);
        return;
    }
    o->flags = f;
    if (o->refcnt > 1)
        rcgc_gc_promote_one(rt, o, old);   /* it may die later */
    rcgc_decref(o);
}

/* K1's type (gcdelete.c, rcgc_gc_delete_closed): the refs cache's
 * two-field type (RC1, RC3: no traverse, no clear), if its objects need
 * nothing at deallocation but their memory freed and nothing of the
 * collection's later steps (no dealloc, no finalizer of either kind, not
 * the weak reference type); NULL if not, or when a user allocator's free
 * (user code) would run. */
static inline int rcgc_gc_k1_type_ok(const gc_work *w, const rcgc_type *t)
{
    return t != NULL && t->dealloc == NULL && t->legacy_del == NULL && t->finalize == NULL &&
           t != &rcgc_weakref_type && !(w->rt->mem.slow & ~RCGC_SLOW_TRACE);
}

/* K2's kind of type (gc.c's record_word_k2): one whose references are all
 * in its listed fields (refs, no traverse, no clear: RC1's shape with any
 * number of fields) and whose objects need nothing else, as K1's type. */
static inline int rcgc_gc_k2_type_ok(const gc_work *w, const rcgc_type *t)
{
    return t->refs != NULL && t->traverse == NULL && t->clear == NULL &&
           rcgc_gc_k1_type_ok(w, t);
}

static inline const rcgc_type *rcgc_gc_k1_type(const gc_work *w)
{
    const rcgc_type *t = w->refcache.type2;
    return rcgc_gc_k1_type_ok(w, t) ? t : NULL;
}

/* gc.c: trial deletion of objs[0..n) (see there). */
size_t rcgc_gc_trial_deletion(gc_work *w, size_t n, unsigned old, int drop_hold,
                              size_t *nreach);

/* gcdelete.c: the phases after trial deletion (see there). */
size_t rcgc_gc_move_legacy(gc_work *w, size_t u);
void rcgc_gc_release_orphans(gc_work *w, size_t *uc, size_t *u);
size_t rcgc_gc_handle_resurrected(gc_work *w, size_t uc, unsigned old);
RCGC_NOINLINE void rcgc_gc_clear_unreachable_pooled(gc_work *w);
void rcgc_gc_delete_by_pool(gc_work *w, unsigned old, int cleared);
int rcgc_gc_delete_closed(gc_work *w);

#endif
