/*
 * gc.c - the cycle collector: CPython 3.11's generational algorithm
 * (Modules/gcmodule.c) on rcgc's object layout, where a tracked object has
 * no list links and no gc_refs field.
 *
 * docs/design-gc.md walks through it with diagrams; gc.h states the
 * invariants C1-C5 this file keeps.  In short, a collection of generation g:
 *
 *   1. gather   the members - tracked, generation <= g, read from the
 *               header - of the pools that can hold them (the young list or
 *               every pool) into per-pool member bitmaps, and the foreign
 *               lists; in the same pass,
 *   2. count    traverse each; count the references to each member
 *               referent in its flags' high bits (refcounts stay true);
 *   3. mark     members with refcnt > count are referenced from outside:
 *               reach them and everything they reach (explicit stack; a
 *               reached bitmap per pool);
 *   4. unreachable members are recorded and held; survivors move to g+1,
 *               a pool at a time;
 *   5. CPython's finalization order on the unreachable set: legacy
 *               finalizers and all they reach become uncollectable; weak
 *               references are cleared and callbacks of live ones run; PEP
 *               442 finalizers run once; objects freed or resurrected by
 *               them drop out; `clear` breaks the rest.
 *
 * This file holds steps 1-4 (trial deletion), the collection's driver
 * rcgc_gc_collect_main, scheduling and shutdown; the phases after trial
 * deletion (step 5's legacy finalizers, resurrection, orphans, the
 * delete) are gcdelete.c's, and gcwork.h holds the work space both share.
 */
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "gcwork.h"
#include "platform.h"
#include "pool.h"
#include "runtime.h"
#include "weakref.h"
#include "weakref.h"

/* Initial capacity of the mark stack (entries); it grows on demand. */
#define GC_STACK_INITIAL 1024
/* The scans over a pool's members read headers in address order, each a
 * likely cache miss in a big collection: ask for the block this many
 * blocks ahead (a prefetch past the pool's end is harmless). */
#define GC_PREFETCH_AHEAD 16
/* Unreachable sets up to this size (in the cache anyway) are cleared whole
 * first and released after (delete_garbage in rcgc_gc_collect_main); in
 * bigger ones each object (listed sets) or each pool's objects (plain
 * garbage, rcgc_gc_delete_by_pool) are cleared just before their release,
 * while still in the cache.  Plain garbage of either size leaves its pools'
 * tracking and memory in batches (rcgc_gc_delete_by_pool). */
#define GC_DELETE_SMALL 8192
#define GC_PREFETCH(p, rw) __builtin_prefetch((p), (rw), 3)
/* ... when at least this many objects wait on the mark stack (drain_set). */
#define GC_RING_MINSTACK 4

/* ------------------------------------------------------------- helpers */

/* Reallocate RAW memory without calling the OOM handler: used while
 * refcounts are scratch values, when no user code may run (C2). */
static void *quiet_realloc(rcgc_runtime *rt, void *p, size_t n)
{
    rcgc_oom_handler h = rt->mem.oom;
    rt->mem.oom = NULL;
    void *q = rcgc_mem_domain_realloc(rt, RCGC_DOMAIN_RAW, p, n);
    rt->mem.oom = h;
    return q;
}

void rcgc_gc_debug_object(const char *msg, const rcgc_object *o)
{
    fprintf(stderr, "gc: %s <%s %p>\n", msg, o->type->name, (const void *)o);
}

rcgc_list *rcgc_gc_garbage_list(rcgc_runtime *rt)
{
    /* Not again once shutdown has let go of it (shutting_down == 2). */
    if (rt->gc.garbage == NULL && rt->gc.shutting_down < 2)
        rt->gc.garbage = rcgc_list_new(rt);
    return rt->gc.garbage;
}

GC_COLD void rcgc_gc_push_slow(gc_work *w, rcgc_object *o)
{
    size_t cap = w->stackcap ? w->stackcap * 2 : GC_STACK_INITIAL;
    rcgc_object **s = NULL;
    if (cap <= SIZE_MAX / sizeof *s)
        s = quiet_realloc(w->rt, w->stack, cap * sizeof *s);
    if (s == NULL) {
        /* o is marked but not queued: the phase's rescan will find it. */
        w->overflow = 1;
        return;
    }
    w->stack = s;
    w->stackcap = cap;
    w->stack[w->sp++] = o;
}

/* ------------------------------------------------------ trial deletion */

#if RCGC_DEBUG >= 2
GC_COLD static void subtract_underflow(const gc_work *w, const rcgc_object *r)
{
    const rcgc_object *c = w->current;
    rcgc_obj_fatal(r, "gc: the traverse of %p (%s) visits %p (%s) more times than there are "
                      "references to it (refcount would go below zero): a traverse visits a "
                      "reference it does not own, or a refcount is too small",
                   (const void *)c, c ? c->type->name : "?", (const void *)r, r->type->name);
}
#endif

static RCGC_ALWAYS_INLINE int visit_subtract(rcgc_object *r, void *arg)
{
    if (r->flags & RCGC_OF_COLLECTING) {
#if RCGC_DEBUG >= 2
        if (RCGC_UNLIKELY(r->refcnt == 0))
            subtract_underflow(arg, r);
#else
        (void)arg;
#endif
        r->refcnt--;
    }
    return 0;
}

/* Step 2 over objs[0..n). */
static void subtract(gc_work *w, size_t n)
{
    rcgc_object **objs = w->objs;
    for (size_t i = 0; i < n; i++) {
        rcgc_object *o = objs[i];
#if RCGC_DEBUG >= 2
        w->current = o;
#endif
        rcgc_obj_traverse_inline(o, visit_subtract, w);
    }
    w->current = NULL;
}

static RCGC_ALWAYS_INLINE int visit_reach(rcgc_object *r, void *arg)
{
    unsigned f = r->flags;
    if ((f & (RCGC_OF_COLLECTING | RCGC_OF_REACHABLE)) == RCGC_OF_COLLECTING) {
        r->flags = f | RCGC_OF_REACHABLE;
        rcgc_gc_push(arg, r);
    }
    return 0;
}

static void drain(gc_work *w)
{
    while (w->sp > 0) {
        rcgc_object *o = w->stack[--w->sp];
        rcgc_obj_traverse_inline(o, visit_reach, w);
    }
}

/*
 * Step 3 over objs[0..n): objects whose scratch count is positive are
 * referenced from outside the set; they and all they reach get
 * RCGC_OF_REACHABLE.  Each object's refcount is restored from saved[] once
 * the scan has passed it (only its own turn reads the scratch count), so
 * trial deletion needs no third traversal.
 */
static void mark_and_restore(gc_work *w, size_t n)
{
    rcgc_object **objs = w->objs;
    const uint32_t *saved = w->saved;
    for (size_t i = 0; i < n; i++) {
        rcgc_object *o = objs[i];
        if (!(o->flags & RCGC_OF_REACHABLE) && o->refcnt > 0) {
            o->flags |= RCGC_OF_REACHABLE;
            rcgc_gc_push(w, o);
            drain(w);
        }
        o->refcnt = saved[i];
    }
    /* A push that found no memory left a marked object unscanned: rescan
     * every marked object until a pass completes without overflow. */
    while (w->overflow) {
        w->overflow = 0;
        for (size_t i = 0; i < n; i++) {
            rcgc_object *o = objs[i];
            if (o->flags & RCGC_OF_REACHABLE) {
                rcgc_obj_traverse(o, visit_reach, w);
                drain(w);
            }
        }
    }
}

/* Trial deletion of objs[0..n) (COLLECTING set, saved[] filled).  Returns
 * the number of unreachable objects, compacted to the front of objs in
 * their original order.  Reachable objects get their flags cleared, move to
 * generation `old` and, with `drop_hold`, lose the collector's reference;
 * *nreach counts them. */
size_t rcgc_gc_trial_deletion(gc_work *w, size_t n, unsigned old, int drop_hold,
                              size_t *nreach)
{
    subtract(w, n);
    mark_and_restore(w, n);
    rcgc_object **objs = w->objs;
    rcgc_runtime *rt = w->rt;
    size_t u = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        rcgc_object *o = objs[i];
        unsigned f = o->flags;
        if (f & RCGC_OF_REACHABLE) {
            o->flags = f & ~(RCGC_OF_COLLECTING | RCGC_OF_REACHABLE);
            r++;
            if (rcgc_obj_gen(o) != old)
                rcgc_gc_promote(rt, o, old);
            if (drop_hold) {
                RCGC_ASSERT(o->refcnt >= 2);
                rcgc_decref(o);
            }
        } else {
            objs[u++] = o;
        }
    }
    *nreach = r;
    return u;
}

/* ------------------------------------------- the main trial deletion */

/*
 * Membership.  During the main trial deletion (C2: no user code, no
 * generation changes until step 4) an object belongs to the collection set
 * of generation g exactly when it is tracked and its generation is <= g,
 * which its header says: no flag has to be written to mark the set.  The
 * low three flag bits (TRACKED, generation) index w->memberset.
 */
static inline int is_member(const gc_work *w, unsigned flags)
{
    return (w->memberset >> (flags & (RCGC_OF_TRACKED | RCGC_OF_GEN_MASK))) & 1u;
}

/* Call fn(w, o) for every member of the set, in heap order: the member
 * bitmaps built by gather_subtract, then the foreign lists of generations
 * 0..g.  fn must not move foreign objects between lists. */
#define FOR_EACH_MEMBER(w, o, body)                                                    \
    do {                                                                               \
        GC_FOR_EACH_POOLED(w, o, GC_MEMBER_BITS, body);                                \
        for (unsigned g_ = 0; g_ <= (w)->maxgen; g_++) {                               \
            rcgc_foreign *h_ = &(w)->rt->gc.gens[g_].head;                             \
            for (rcgc_foreign *f_ = h_->next; f_ != h_; f_ = f_->next) {               \
                rcgc_object *o = rcgc_foreign_obj(f_);                                 \
                body;                                                                  \
            }                                                                          \
        }                                                                              \
    } while (0)

/*
 * Internal references are counted in the member's flags (bits 12-31, up to
 * GC_REFS_MAX), not subtracted from its refcount, so trial deletion leaves
 * every refcount alone: a member is referenced from outside the set iff
 * refcnt > its count.  Past GC_REFS_MAX references (a member referenced by
 * a million others in the set), the count stays at GC_REFS_MAX, the member
 * gets RCGC_OF_GC_SATURATED and the rest are subtracted from its refcount
 * instead: the root test refcnt > count still holds (both sides lose the
 * excess), and unsaturate() gives the excess back after marking.
 */
#define GC_REFS_ONE (1u << RCGC_OF_GC_REFS_SHIFT)
#define GC_REFS_MAX (RCGC_OF_GC_SCRATCH >> RCGC_OF_GC_REFS_SHIFT)
#define GC_REFS_FULL (GC_REFS_MAX << RCGC_OF_GC_REFS_SHIFT)
/* visit_subtract_ms: f >= GC_REFS_FULL iff f + GC_REFS_ONE carries out. */
_Static_assert(GC_REFS_FULL == 0u - GC_REFS_ONE, "the count is the flags' top bits");

static inline uint32_t gc_refs(unsigned flags)
{
    return flags >> RCGC_OF_GC_REFS_SHIFT;
}

GC_COLD static void subtract_saturated(gc_work *w, rcgc_object *r)
{
#if RCGC_DEBUG >= 2
    /* GC_REFS_MAX + the excess so far + this one > the true refcount. */
    if (RCGC_UNLIKELY(r->refcnt <= GC_REFS_MAX))
        subtract_underflow(w, r);
#endif
    r->flags |= RCGC_OF_GC_SATURATED;
    r->refcnt--;
    w->saturated = 1;
}

/* On a rare path: memory is read again after it, so that the common path
 * need not keep a header word in a register for it. */
static RCGC_ALWAYS_INLINE void reload_barrier(void)
{
#if defined(__GNUC__)
    __asm__ volatile("" : : : "memory");
#endif
}

/* w->memberset of a collection of generation g (work_alloc), as a
 * constant: flags & 7 is TRACKED | gen << 1. */
#define GC_MEMBERSET(g) ((g) == 0 ? 0x02u : (g) == 1 ? 0x0au : 0x2au)

/* is_member for a collection whose GC_MEMBERSET is ms (a constant).  For
 * generations 0 and 1 the member's low flags are TRACKED and clear
 * generation bits (gen 0: f & 7 == 1; gen 1: f & 5 == 1); f - 1 clears
 * TRACKED without a borrow exactly when it is set, so ((f - 1) & mask) == 0
 * is the test in a subtract and a mask, where the shift of ms (or the
 * compare of f & mask) takes a copy of f more. */
_Static_assert(RCGC_OF_TRACKED == 1u && RCGC_OF_GEN_MASK == 6u, "gc_member's masks");
static RCGC_ALWAYS_INLINE unsigned gc_member(unsigned f, const unsigned ms)
{
    if (ms == GC_MEMBERSET(0))
        return ((f - 1u) & 7u) == 0;
    if (ms == GC_MEMBERSET(1))
        return ((f - 1u) & 5u) == 0;
    return (ms >> (f & (RCGC_OF_TRACKED | RCGC_OF_GEN_MASK))) & 1u;
}

/* visit_subtract_set with the membership test of a gather of one kind: ms is
 * GC_MEMBERSET of its generation, a constant, or 0 for w->memberset.  (A
 * store to a header may alias w->memberset, so a loop would reload it
 * after every count.) */
static RCGC_ALWAYS_INLINE int visit_subtract_ms(rcgc_object *r, void *arg, const unsigned ms)
{
    gc_work *w = arg;
    unsigned f = r->flags;
    RCGC_ASSERT(ms == 0 || ms == w->memberset);
    unsigned member = ms ? gc_member(f, ms) : (unsigned)is_member(w, f);
    if (member) {
        /* The count is the flags' top bits: adding one carries out of
         * them exactly when it is full (f >= GC_REFS_FULL). */
        unsigned nf;
        if (RCGC_UNLIKELY(__builtin_add_overflow(f, GC_REFS_ONE, &nf))) {
            subtract_saturated(w, r);
            return 0;
        }
#if RCGC_DEBUG >= 2
        if (RCGC_UNLIKELY(gc_refs(f) >= r->refcnt))
            subtract_underflow(w, r);
#endif
        r->flags = nf;
    }
    return 0;
}

static RCGC_ALWAYS_INLINE int visit_subtract_set(rcgc_object *r, void *arg)
{
    return visit_subtract_ms(r, arg, 0);
}

static RCGC_ALWAYS_INLINE int visit_subtract_g0(rcgc_object *r, void *arg)
{
    return visit_subtract_ms(r, arg, GC_MEMBERSET(0));
}

static RCGC_ALWAYS_INLINE int visit_subtract_g1(rcgc_object *r, void *arg)
{
    return visit_subtract_ms(r, arg, GC_MEMBERSET(1));
}

static RCGC_ALWAYS_INLINE int visit_subtract_g2(rcgc_object *r, void *arg)
{
    return visit_subtract_ms(r, arg, GC_MEMBERSET(2));
}

/*
 * The ring (full collections): a visit that would read a referent's header
 * (a likely cache miss in a big heap, in no particular order) prefetches it
 * and queues it instead; once GC_RING referents wait, the oldest gets the
 * real visit.  Used only by visits whose result does not depend on their
 * order (reaching a set), and emptied before the phase's result is used
 * (a drain takes one whenever its stack runs empty).
 */
static RCGC_ALWAYS_INLINE void ring_put(gc_work *w, rcgc_object *r, rcgc_visitfn visit)
{
    GC_PREFETCH(r, 1);
    if (RCGC_LIKELY(w->ringn == GC_RING)) {
        /* Full: r takes the oldest one's slot and becomes the newest. */
        size_t pos = w->ringpos;
        rcgc_object *out = w->ring[pos];
        w->ring[pos] = r;
        w->ringpos = (pos + 1) & (GC_RING - 1);
        visit(out, w);
        return;
    }
    w->ring[(w->ringpos + w->ringn) & (GC_RING - 1)] = r;
    w->ringn++;
}

/* Visit every referent left in the ring, oldest first.  visit must not
 * use the ring. */
static void ring_flush(gc_work *w, rcgc_visitfn visit)
{
    while (w->ringn > 0) {
        rcgc_object *r = w->ring[w->ringpos];
        w->ringpos = (w->ringpos + 1) & (GC_RING - 1);
        w->ringn--;
        visit(r, w);
    }
}

/* The newest referent waiting in the ring, taken out; NULL if none. */
static inline rcgc_object *ring_take_newest(gc_work *w)
{
    if (w->ringn == 0)
        return NULL;
    w->ringn--;
    return w->ring[(w->ringpos + w->ringn) & (GC_RING - 1)];
}

/* visit_subtract_set through the ring, for the gather of a full
 * collection of a wide heap (rcgc_gc_state.wide_heap).  Debug builds that
 * name the traversing object in a report (w->current) visit at once. */
static RCGC_ALWAYS_INLINE int visit_subtract_deferred(rcgc_object *r, void *arg)
{
#if RCGC_DEBUG >= 2
    return visit_subtract_set(r, arg);
#else
    ring_put(arg, r, visit_subtract_g2);
    return 0;
#endif
}

/* Step 1+2 for one pool: find its members (their generation is read once,
 * here), record them in a member bitmap and subtract their internal
 * references. */
/* The blocks of bitmap word k (64 blocks, 8 groups) that the generation-0
 * summary marks: each of the summary byte's bits becomes 8 block bits. */
static inline uint64_t gen0_blocks(const rcgc_pool *pool, unsigned k)
{
    unsigned byte = (unsigned)(pool->gen0[k >> 3] >> ((k & 7) * 8)) & 0xffu;
    uint64_t x = ((uint64_t)byte * 0x0101010101010101ull) & 0x8040201008040201ull;
    x = (x + 0x7f7f7f7f7f7f7f7full) & 0x8080808080808080ull;
    return (x >> 7) * 0xff;
}

/* Whether the pool's generation-0 summary marks any group: by P5, a pool
 * whose summary is empty holds no generation-0 object, and a
 * generation-0 gather has nothing to read there. */
static inline int gen0_any(const rcgc_pool *pool)
{
    return (pool->gen0[0] | pool->gen0[1]) != 0;
}

/* A young gather's traverse through the cache out of line, one copy per
 * generation: the loop's miss path (a type other than the cache's), so
 * that the loop keeps only its inline cases.  (Out of line for the full
 * gathers too, garbage and the ring came out dearer.) */
static RCGC_NOINLINE void gather_cached_g0(gc_work *w, rcgc_object *o)
{
    rcgc_obj_traverse_cached(&w->refcache, o, visit_subtract_g0, w);
}

static RCGC_NOINLINE void gather_cached_g1(gc_work *w, rcgc_object *o)
{
    rcgc_obj_traverse_cached(&w->refcache, o, visit_subtract_g1, w);
}

/* A member's part of K1's sums (kacc, kn: gc_work), its fields at ktype's
 * offsets. */
static RCGC_ALWAYS_INLINE int64_t k1_part(const gc_work *w, const rcgc_object *o)
{
    return (int64_t)o->refcnt - (rcgc_ref_load(o, w->koff0) != NULL) -
           (rcgc_ref_load(o, w->koff1) != NULL);
}

/* gather_cached_g0 for a k1gather collection: after the traverse (which
 * may have filled the cache), the first two-field type the cache took
 * becomes ktype, any other one there makes the sums useless (its hits
 * would count as ktype's: kbad), and a member of ktype met here adds its
 * part. */
static RCGC_NOINLINE void gather_cached_g0k(gc_work *w, rcgc_object *o)
{
    rcgc_obj_traverse_cached(&w->refcache, o, visit_subtract_g0, w);
    const rcgc_type *t2 = w->refcache.type2;
    if (t2 != NULL && t2 != w->ktype) {
        if (w->ktype == NULL) {
            w->ktype = t2;
            w->koff0 = w->refcache.off0;
            w->koff1 = w->refcache.off1;
        } else {
            w->kbad = 1;
        }
    }
    /* (The pool's count took every member for a hit: this one was
     * not, unless of ktype.) */
    if (o->type == w->ktype)
        w->kacc += k1_part(w, o);
    else
        w->kn--;
}


/*
 * Y1: RCGC_OF_GC_LEAF, a scratch bit (cleared with the count: C1), is set
 * only during trial deletion, by the gather (young or full), on a pooled
 * member of the refs cache's types (listed fields only: no traverse) whose
 * every field is NULL: it refers to nothing, and no field changes before
 * the partition (C2).  The young refs drain reaches such a member (moves
 * it to `old`, which clears the bit) without pushing and traversing it;
 * so does the full refs drain (fdrain_reach: its reached bit and its
 * header, whose scratch bits the reach clears).  Every other path treats
 * it as a member like any other (traversing it visits nothing; the bit is
 * below the count, so gc_refs and the root tests do not see it).  A K1
 * gather marks none: its drain sums over every reached member.  Debug
 * builds check the fields of each member a drain does not traverse
 * (check_leaf).
 */
static RCGC_ALWAYS_INLINE void mark_leaf(rcgc_object *o)
{
    /* The header read again (the loop has not kept it). */
    reload_barrier();
    o->flags |= RCGC_OF_GC_LEAF;
}

/* The kinds of gather (gather_pool_kind's constant argument): one copy of
 * the loop each, so that none tests its kind per object. */
enum { GATHER_GEN0, GATHER_GEN1, GATHER_FULL, GATHER_FULL_WIDE };

/* How the gather traverses (gather_pool_kind's other constant argument):
 * through the cache (a pool of refs types), the traverse called after a
 * test for refs (a pool of traverse types in a runtime with refs types
 * too), or the traverse called with no test (G2: no object with refs has
 * ever been tracked). */
enum { GATHER_CACHED, GATHER_DIRECT, GATHER_PLAIN };

/* gather_pool_kind's state for gather_one, in locals (the struct's
 * address does not escape once both are inlined): the current word's
 * bits, K1's sums and the refs cache's type and offsets (GATHER_CACHED:
 * taken again from w->refcache after a miss, the only thing that fills
 * it; in locals so that the header stores of the visits, which may alias
 * w->refcache, do not make the loop reload them; size_t, so that the
 * address of a field needs no zero-extension of the offset a visit). */
typedef struct gc_gather {
    unsigned allf;     /* full: the AND of this word's members' flags */
    unsigned anyf;     /* full: their OR */
    uint64_t mb;       /* roots: this word's R1 candidates */
    int64_t kacc;      /* k1: K1's sums */
    size_t kn1;        /* k1: one-field hits */
    const rcgc_type *ctype, *ctype2;
    size_t coff0, coff1;
#if RCGC_DEBUG >= 2
    size_t found1;     /* generation-1 members of a generation-1 gather */
#endif
} gc_gather;

/* Step 1+2 for one candidate block o, bit b of its bitmap word, in a
 * gather of the given kind (gather_pool_kind's constants): 0 if o is not
 * a member, else 1 with its references counted. */
static RCGC_ALWAYS_INLINE int gather_one(gc_work *w, gc_gather *a, rcgc_object *o, size_t b,
                                         const int kind, const int how, const int roots,
                                         const int k1)
{
    const int full = kind >= GATHER_FULL;
    const unsigned ms = GC_MEMBERSET(full ? 2 : kind == GATHER_GEN1 ? 1 : 0);
    /* Y1 (a constant): a full gather, and a young gather with R1's
     * candidates and without K1's sums, marks its members of the cache's
     * types with no reference (every listed field NULL), which the refs
     * drains (young and full) then reach without traversing them. */
    const int leaf = full || (roots && !k1);
    unsigned f = o->flags;
    /* is_member with the kind's constant (GC_MEMBERSET). */
    if (!gc_member(f, ms))
        return 0;
    RCGC_ASSERT(!(f & (RCGC_OF_COLLECTING | RCGC_OF_REACHABLE | RCGC_OF_MARK)));
    RCGC_ASSERT(how != GATHER_PLAIN || o->type->refs == NULL);
    /* Which members move (not of generation 2) is found per word from
     * this AND (gather_moving): one instruction a member. */
    if (full) {
        a->allf &= f;
        a->anyf |= f;
    }
    /* R1: the count so far only grows (or, saturated, the refcount
     * only falls): a member that no outside reference holds now
     * never will. */
    if (roots && k1)
        a->mb |= (uint64_t)(o->refcnt > gc_refs(f)) << b;   /* no branch: K1's copy */
    else if (roots && o->refcnt > gc_refs(f))
        a->mb |= (uint64_t)1 << b;
#if RCGC_DEBUG >= 2
    /* Debug builds count a generation-1 collection's generation-1
     * members, to check the count gather_subtract takes from the
     * generation counts. */
    if (kind == GATHER_GEN1)
        a->found1 += (f >> RCGC_OF_GEN_SHIFT) & 1u;
#endif
#if RCGC_DEBUG >= 2
    w->current = o;
#endif
    /* The visit for the kind: the deferred one, or one whose
     * membership test is a constant. */
    rcgc_visitfn visit = kind == GATHER_FULL_WIDE ? visit_subtract_deferred
                       : kind == GATHER_FULL      ? visit_subtract_g2
                       : kind == GATHER_GEN1      ? visit_subtract_g1
                                                  : visit_subtract_g0;
    if (how == GATHER_PLAIN)
        o->type->traverse(o, visit, w);
    else if (how == GATHER_DIRECT)
        rcgc_obj_traverse_direct(&w->refcache, o, visit, w);
    else if (RCGC_LIKELY(o->type == a->ctype2)) {
        /* RC3: two fields, off1 not tested. */
        rcgc_object *r = rcgc_ref_load(o, a->coff0);
        if (k1) {
            /* ctype2 is ktype (or kbad): its refcount less one
             * for each non-NULL field, taken where the visit is.
             * Both fields before a visit writes a header (o's
             * own, if it refers to itself; never a field). */
            rcgc_object *r1 = rcgc_ref_load(o, a->coff1);
            a->kacc += o->refcnt;
            if (r != NULL) {
                a->kacc--;
                (void)visit(r, w);
            }
            if (r1 != NULL) {
                a->kacc--;
                (void)visit(r1, w);
            }
        } else if (leaf) {
            /* Each path tests each field once. */
            rcgc_object *r1 = rcgc_ref_load(o, a->coff1);
            if (r != NULL) {
                (void)visit(r, w);
                if (r1 != NULL)
                    (void)visit(r1, w);
            } else if (r1 != NULL) {
                (void)visit(r1, w);
            } else {
                mark_leaf(o);
            }
        } else {
            if (r != NULL)
                (void)visit(r, w);
            if ((r = rcgc_ref_load(o, a->coff1)) != NULL)
                (void)visit(r, w);
        }
    } else if (o->type == a->ctype) {
        if (k1)
            a->kn1++;
        rcgc_object *r = rcgc_ref_load(o, a->coff0);
        if (r != NULL)
            (void)visit(r, w);
        else if (leaf)
            mark_leaf(o);
    } else {
        if (full)
            rcgc_obj_traverse_cached(&w->refcache, o, visit, w);
        else if (kind == GATHER_GEN1)
            gather_cached_g1(w, o);
        else if (k1)
            gather_cached_g0k(w, o);
        else
            gather_cached_g0(w, o);
        a->ctype = w->refcache.type;
        a->ctype2 = w->refcache.type2;
        a->coff0 = w->refcache.off0;
        a->coff1 = w->refcache.off1;
    }
    return 1;
}

/* A full gather's `moving` bits of one bitmap word (the first block at
 * word, blocks of size bytes): its members whose generation is not 2 (a
 * full collection's members are of generations 0-2: a member moves iff the
 * generation field's high bit is clear).  allf and anyf are the AND and
 * the OR of the members' flags as the gather read them: if every member
 * is of generation 2 (a heap that is already old: most words of a full
 * collection), nothing moves, and if none is, every member moves; only a
 * word that mixes both has its members' headers, read a moment ago and
 * still in the cache, read again (a generation does
 * not change during trial deletion, C2; the counts the visits added since
 * are above it). */
static RCGC_ALWAYS_INLINE uint64_t gather_moving(const char *word, size_t size, uint64_t members,
                                                 unsigned allf, unsigned anyf)
{
    if (allf & (2u << RCGC_OF_GEN_SHIFT))
        return 0;
    if (!(anyf & (2u << RCGC_OF_GEN_SHIFT)))
        return members;
    uint64_t mo = 0;
    for (uint64_t bits = members; bits; bits &= bits - 1) {
        size_t b = gc_low_bit(bits);
        const rcgc_object *o = (const rcgc_object *)(word + b * size);
        mo |= (uint64_t)((o->flags >> (RCGC_OF_GEN_SHIFT + 1)) & 1u) << b;
    }
    return members & ~mo;
}

static RCGC_ALWAYS_INLINE void gather_pool_kind(gc_work *w, rcgc_pool *pool, size_t pre,
                                                const int kind, const int how,
                                                const int roots, const int k1)
{
    /* k1 (a constant; generation 0 through the cache only): K1's sums
     * (gc_work.kacc) for the members of the cache's two-field type. */
    RCGC_ASSERT(!k1 || (kind == GATHER_GEN0 && how == GATHER_CACHED && roots));
    /* word: the first block of bitmap word k, one pointer stepped per
     * word, so that a member's address is one multiply and one add. */
    char *word = pool->mem + pre;
    size_t size = pool->size;
    uint64_t bitmap[RCGC_POOL_BITMAP_WORDS], moving[RCGC_POOL_BITMAP_WORDS];
    uint64_t maybe[RCGC_POOL_BITMAP_WORDS];   /* roots: R1's candidates */
    const int full = kind >= GATHER_FULL;
    size_t found = 0;
    RCGC_ASSERT(GC_MEMBERSET(full ? 2 : kind == GATHER_GEN1 ? 1 : 0) == w->memberset);
    RCGC_ASSERT(!roots || kind < GATHER_FULL);
    /* A full collection's survivors go to generation 2, its members are
     * of generations 0-2: a member moves iff the generation
     * field's high bit is clear. */
    RCGC_ASSERT(!full || w->old == 2);
    gc_gather a = {.ctype = w->refcache.type, .ctype2 = w->refcache.type2,
                   .coff0 = w->refcache.off0, .coff1 = w->refcache.off1};
    for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++, word += 64 * size) {
        a.mb = 0;
        a.allf = ~0u;
        a.anyf = 0;
        uint64_t cand = pool->tracked[k];
        /* A generation-0 collection skips the groups no generation-0
         * object can be in (P5): their headers are not read. */
        if (kind == GATHER_GEN0 && cand)
            cand &= gen0_blocks(pool, k);
        /* Every candidate is taken for a member until its header says
         * otherwise: the bit work is the non-members' (in a generation-0
         * collection's marked groups, few). */
        uint64_t members = cand;
        if (cand == ~(uint64_t)0) {
            /* A full word (most of a set's, in binary-trees 94% of the
             * young members: blocks allocated in a row), block after
             * block with no bit scan. */
            char *p = word;
            for (size_t b = 0; b < 64; b++, p += size)
                if (!gather_one(w, &a, (rcgc_object *)p, b, kind, how, roots, k1))
                    members &= ~((uint64_t)1 << b);
            found += members == ~(uint64_t)0 ? 64 : gc_popcount64(members);
        } else {
            for (uint64_t bits = cand; bits; bits &= bits - 1) {
                size_t b = gc_low_bit(bits);
                if (!gather_one(w, &a, (rcgc_object *)(word + b * size), b, kind, how, roots, k1))
                    members &= ~((uint64_t)1 << b);
            }
            if (members)
                found += gc_popcount64(members);
        }
        bitmap[k] = members;
        if (full)
            moving[k] = gather_moving(word, size, members, a.allf, a.anyf);
        if (roots)
            maybe[k] = a.mb;
    }
    if (k1) {
        w->kacc += a.kacc;
        w->kn += found - a.kn1;
    }
    /* Every generation-0 member leaves generation 0 in this collection;
     * objects tracked from now on mark their groups again. */
    pool->gen0[0] = pool->gen0[1] = 0;
    if (found > 0) {
        /* cappools >= min(pools walked, objects counted). */
        if (RCGC_UNLIKELY(w->npools == w->cappools))
            rcgc_fatal("gc: generation counts disagree with the heap: members in more "
                       "than %zu pools", w->cappools);
        pool->gcset = (uint32_t)w->npools;
        gc_poolset *ps = &w->pools[w->npools++];
        ps->pool = pool;
        memcpy(ps->members, bitmap, sizeof bitmap);
        /* A young set's `reached` holds R1's candidates until the
         * partition (every member where the gather did not sort them). */
        if (full)
            memset(ps->reached, 0, sizeof ps->reached);
        else if (roots)
            memcpy(ps->reached, maybe, sizeof maybe);
        else
            memcpy(ps->reached, bitmap, sizeof bitmap);
        /* A young partition moves every survivor without the bitmap; a
         * recording young scan keeps its records there. */
        if (full)
            memcpy(ps->moving, moving, sizeof moving);
        else if (w->scanrec)
            memset(ps->moving, 0, sizeof ps->moving);
        w->n += found;
        w->npooled += found;
#if RCGC_DEBUG >= 2
        w->npooled1 += a.found1;
#endif
    }
}

/* gather_pool_kind in the copy for the pool's likely shape: plain while
 * the runtime has never tracked an object with refs (G2), else that of
 * the pool's first tracked object's type (traverse only, or with refs). */
static RCGC_ALWAYS_INLINE void gather_pool(gc_work *w, rcgc_pool *pool, size_t pre,
                                           const int kind, const int plain, const int roots,
                                           const int k1)
{
    if (plain) {
        gather_pool_kind(w, pool, pre, kind, GATHER_PLAIN, roots, 0);
        return;
    }
    unsigned k = 0;
    while (k < RCGC_POOL_BITMAP_WORDS - 1 && pool->tracked[k] == 0)
        k++;
    uint64_t t = pool->tracked[k];
    const rcgc_object *first = (const rcgc_object *)(pool->mem + pre +
        (size_t)(k * 64 + (t ? (unsigned)__builtin_ctzll(t) : 0)) * pool->size);
    if (k1 && (t == 0 || first->type->refs != NULL)) {
        gather_pool_kind(w, pool, pre, kind, GATHER_CACHED, roots, 1);
    } else if (t == 0 || first->type->refs != NULL) {
        gather_pool_kind(w, pool, pre, kind, GATHER_CACHED, roots, 0);
    } else {
        w->kbad = 1;   /* K1's sums: a pool not through the cache */
        gather_pool_kind(w, pool, pre, kind, GATHER_DIRECT, roots, 0);
    }
}

/* The pools of step 1 (the young list for a young collection, every pool
 * with tracked objects for a full one), in one copy for a runtime that
 * never tracked an object with refs (plain, G2) and one for the others. */
static RCGC_ALWAYS_INLINE void gather_pools(gc_work *w, size_t pre, const int plain)
{
    rcgc_runtime *rt = w->rt;
    /* R1's candidates only for a scan that reads nothing else: a
     * recording one must read every member. */
    const int roots = !w->scanrec;
    /* A generation-0 collection passes over the young pools whose P5
     * summary is empty: no generation-0 object is there (their young
     * objects are all of generation 1). */
    if (w->maxgen == 0 && roots && !plain && w->k1gather) {
        for (rcgc_pool *pool = rt->pool.young; pool; pool = pool->young_next)
            if (gen0_any(pool))
                gather_pool(w, pool, pre, GATHER_GEN0, 0, 1, 1);
    } else if (w->maxgen == 0 && roots) {
        for (rcgc_pool *pool = rt->pool.young; pool; pool = pool->young_next)
            if (gen0_any(pool))
                gather_pool(w, pool, pre, GATHER_GEN0, plain, 1, 0);
    } else if (w->maxgen == 0) {
        for (rcgc_pool *pool = rt->pool.young; pool; pool = pool->young_next)
            if (gen0_any(pool))
                gather_pool(w, pool, pre, GATHER_GEN0, plain, 0, 0);
    } else if (w->maxgen == 1 && roots) {
        for (rcgc_pool *pool = rt->pool.young; pool; pool = pool->young_next)
            gather_pool(w, pool, pre, GATHER_GEN1, plain, 1, 0);
    } else if (w->maxgen == 1) {
        for (rcgc_pool *pool = rt->pool.young; pool; pool = pool->young_next)
            gather_pool(w, pool, pre, GATHER_GEN1, plain, 0, 0);
    } else {
        const int wide = w->widegather;
        for (const rcgc_arena *a = rt->pool.all; a; a = a->allnext) {
            for (unsigned i = 0; i < a->ncarved; i++) {
                rcgc_pool *pool = rcgc_arena_pool(a, i);
                if (pool->ntracked == 0)
                    continue;
                if (wide)
                    gather_pool(w, pool, pre, GATHER_FULL_WIDE, plain, 0, 0);
                else
                    gather_pool(w, pool, pre, GATHER_FULL, plain, 0, 0);
            }
        }
    }
}

/* Steps 1 and 2: walk the pools that can hold members and the foreign
 * lists; afterwards each member's refcount is the number of references
 * from outside the set. */
static void gather_subtract(gc_work *w)
{
    rcgc_runtime *rt = w->rt;
    size_t pre = rt->mem.debug_pre;
    if (rt->gc.refs_tracked)
        gather_pools(w, pre, 0);
    else
        gather_pools(w, pre, 1);
    size_t nforeign1 = 0;
    for (unsigned g = 0; g <= w->maxgen; g++) {
        rcgc_foreign *head = &rt->gc.gens[g].head;
        for (rcgc_foreign *f = head->next; f != head; f = f->next) {
            rcgc_object *o = rcgc_foreign_obj(f);
            w->n++;
            nforeign1 += g == 1;
#if RCGC_DEBUG >= 2
            w->current = o;
#endif
            /* RC2 for the drains: the cache does not see these. */
            if (o->type->refs != NULL)
                w->refcache.met = 1;
            rcgc_obj_traverse(o, w->widegather ? visit_subtract_deferred : visit_subtract_set, w);
        }
    }
    ring_flush(w, visit_subtract_set);
    w->current = NULL;
    /* A generation-1 collection's pooled generation-1 members (the
     * partition's promotion counts need them): the generation's exact
     * count (G1) less its foreign objects, not counted per member. */
    if (w->maxgen == 1) {
        size_t n1 = (size_t)rt->gc.gens[1].nobjects - nforeign1;
        RCGC_ASSERT(w->npooled1 == n1);
        w->npooled1 = n1;
    }
    if (RCGC_UNLIKELY(w->n > w->cap))
        rcgc_fatal("gc: generation counts disagree with the heap: %zu tracked objects "
                   "found in generations 0..%u, %zu counted", w->n, w->maxgen, w->cap);
}

/* A push that finds no memory marks the object RCGC_OF_MARK instead ("reached,
 * not yet traversed"); mark_set's rescan traverses those. */
GC_COLD static void push_reach_slow(gc_work *w, rcgc_object *o)
{
    size_t sp = w->sp;
    rcgc_gc_push_slow(w, o);
    if (w->sp == sp)
        o->flags |= RCGC_OF_MARK;
}

/* Reaching a member: it is counted and its count of internal references
 * cleared (its root test will not be needed; a saturated count stays for
 * unsaturate()).  A pooled member gets its bit in the pool's reached
 * bitmap, a foreign one RCGC_OF_REACHABLE.  Refcounts are not touched. */
static RCGC_ALWAYS_INLINE void reach(gc_work *w, rcgc_object *o, unsigned f)
{
    if (!(f & RCGC_OF_GC_SATURATED))
        f &= ~RCGC_OF_GC_SCRATCH;
    o->flags = f;
    w->nreach++;
    if (RCGC_LIKELY(w->sp < w->stackcap))
        w->stack[w->sp++] = o;
    else
        push_reach_slow(w, o);
}

/* rcgc_pool_of in fewer instructions: the slot's descriptor offset
 * (slot * sizeof(rcgc_pool)) taken from the address by one shift and one
 * mask, and the header less one descriptor (slot 0 is the header's) as
 * one constant. */
_Static_assert(sizeof(rcgc_pool) == 256 && RCGC_POOL_BITS >= 8, "gc_pool_of's shift");
static RCGC_ALWAYS_INLINE const rcgc_pool *gc_pool_of(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    uintptr_t off = (a >> (RCGC_POOL_BITS - 8)) & ((uintptr_t)(RCGC_ARENA_SLOTS - 1) << 8);
    const rcgc_pool *pool = (const rcgc_pool *)((a & ~(uintptr_t)(RCGC_ARENA_SIZE - 1)) + off +
                                                RCGC_ARENA_HEADER - sizeof(rcgc_pool));
    RCGC_ASSERT(pool == rcgc_pool_of(p));
    return pool;
}

/* (uint64_t)1 << (i & 63).  On x86-64 a bts into a zeroed register: the
 * bit number may be in any register, where a shift wants it in %cl, which
 * in the full drain's reach cost two spills and two reloads. */
static RCGC_ALWAYS_INLINE uint64_t gc_bit(unsigned i)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    uint64_t m = 0;
    __asm__("btsq %q1, %0" : "+r"(m) : "r"((uint64_t)i) : "cc");
    return m;
#else
    return (uint64_t)1 << (i & 63);
#endif
}

/* The reached bit of a pooled member: the word and the mask. */
static inline uint64_t *reached_word(const gc_work *w, const rcgc_object *o, uint64_t *mask)
{
    const rcgc_pool *pool = gc_pool_of(o);
    unsigned i = rcgc_pool_index(pool, o);
    *mask = gc_bit(i);
    return &w->pools[pool->gcset].reached[i >> 6];
}

/* The gather counted every reference a member's traverse gives, so a
 * member visited here (through such a reference) and not reached yet has a
 * count of at least one, and reaching it clears the count unless it is
 * saturated: a visited member whose scratch bits are all zero is reached,
 * known from the header alone (no pool lookup, no bitmap read: in a ring
 * or a doubly linked structure, every link back), and one with a count and
 * no saturation is not reached (its bit needs no test).  Only a saturated
 * member's reached state is in its bitmap (or RCGC_OF_REACHABLE).  A
 * header with a scratch bit set is a member's (gc.h, C2: the gather writes
 * scratch bits into members' headers only), so membership needs no test
 * of its own. */
static RCGC_ALWAYS_INLINE int visit_reach_set(rcgc_object *r, void *arg)
{
    gc_work *w = arg;
    unsigned f = r->flags;
    if (!(f & RCGC_OF_GC_SCRATCH))
        return 0;
    RCGC_ASSERT(is_member(w, f));
    if (RCGC_LIKELY(!(f & RCGC_OF_FOREIGN))) {
        uint64_t mask, *word = reached_word(w, r, &mask);
        if (RCGC_UNLIKELY(f & RCGC_OF_GC_SATURATED) && (*word & mask))
            return 0;
        RCGC_ASSERT(!(*word & mask));
        *word |= mask;
    } else {
        if (f & RCGC_OF_REACHABLE)
            return 0;
        f |= RCGC_OF_REACHABLE;
    }
    reach(w, r, f);
    return 0;
}

/* record_one's test of o's type, t (not w->plaintype): what it needs, and
 * t becomes w->plaintype if objects of it need nothing of their type's. */
GC_COLD static void record_type(gc_work *w, const rcgc_type *t, unsigned f)
{
    int plain = 1;
    if (t->legacy_del) {
        w->need |= NEED_LEGACY;
        plain = 0;
    }
    if (t == &rcgc_weakref_type) {
        w->need |= NEED_WEAK;
        plain = 0;
    }
    if (t->finalize) {
        if (!(f & RCGC_OF_FINALIZED))
            w->need |= NEED_FINALIZE;
        plain = 0;
    }
    if (plain)
        w->plaintype = t;
}

/* An unreachable member gets RCGC_OF_COLLECTING and the hold (C3);
 * refcounts were never changed, so nothing is given back.  Pooled ones stay
 * in their pool set's bitmaps (members & ~reached) until list_unreachable
 * writes them to objs, which only sets that need finalization or debug
 * output pay; foreign ones go to objs now.  pooled: o is pooled (a constant). */
static RCGC_ALWAYS_INLINE void record_one_weak(gc_work *w, rcgc_object *o, unsigned f,
                                                const int pooled, const int weak);

static RCGC_ALWAYS_INLINE void record_one(gc_work *w, rcgc_object *o, unsigned f,
                                           const int pooled)
{
    record_one_weak(w, o, f, pooled, 1);
}

/* record_one; weak (a constant) zero: the caller knows that o has no weak
 * references (RCGC_OF_WEAKREFS clear in f), and it is not tested. */
static RCGC_ALWAYS_INLINE void record_one_weak(gc_work *w, rcgc_object *o, unsigned f,
                                                const int pooled, const int weak)
{
    const rcgc_type *t = o->type;
    o->flags = (f & ~RCGC_OF_GC_SCRATCH) | RCGC_OF_COLLECTING;
    o->refcnt++;   /* the hold */
    /* NEED_* as rcgc_weak_involved and the type's legacy_del and
     * finalize say; a type known to need nothing costs one compare. */
    if (RCGC_UNLIKELY(t != w->plaintype))
        record_type(w, t, f);
    RCGC_ASSERT(weak || !(f & RCGC_OF_WEAKREFS));
    if (weak && (f & RCGC_OF_WEAKREFS))
        w->need |= NEED_WEAK;
    w->u++;
    RCGC_ASSERT(!pooled == !!(f & RCGC_OF_FOREIGN));
    if (!pooled)
        w->objs[w->nforeign++] = o;
}

/* w->youngfast of a collection of generation g < 2 (work_alloc), as a
 * constant: see visit_reach_young. */
#define GC_YOUNGFAST(g)                                                                  \
    (RCGC_OF_TRACKED | RCGC_OF_FOREIGN | RCGC_OF_REACHABLE | RCGC_OF_GC_SATURATED |      \
     RCGC_OF_COLLECTING | ((g) == 0 ? RCGC_OF_GEN_MASK : 2u << RCGC_OF_GEN_SHIFT))

/* (f & mask) == RCGC_OF_TRACKED for a mask holding TRACKED (gc_member's
 * subtract: TRACKED set takes no borrow into the mask's other bits), in a
 * subtract and a test where the and takes a copy of f the common path
 * still needs. */
static RCGC_ALWAYS_INLINE int gc_only_tracked(unsigned f, unsigned mask)
{
    RCGC_ASSERT(mask & RCGC_OF_TRACKED);
    return ((f - RCGC_OF_TRACKED) & mask) == 0;
}

/* Y1 checked (RCGC_DEBUG >= 2): a member the young drain reaches without
 * traversing it refers to nothing. */
#if RCGC_DEBUG >= 2
static int visit_check_leaf(rcgc_object *r, void *arg)
{
    const gc_work *w = arg;
    rcgc_obj_fatal(r, "gc: %p (%s), marked as a leaf by the young gather, refers to %p (%s)",
                   (const void *)w->current, w->current->type->name, (const void *)r,
                   r->type->name);
    return 0;
}

GC_COLD static void check_leaf(gc_work *w, rcgc_object *o)
{
    rcgc_object *c = w->current;
    w->current = o;
    rcgc_obj_traverse(o, visit_check_leaf, w);
    w->current = c;
}
#else
static inline void check_leaf(gc_work *w, rcgc_object *o)
{
    (void)w, (void)o;
}
#endif

/* old: w->old (a constant in the drains' copies per generation). */
static RCGC_ALWAYS_INLINE void reach_young_old(gc_work *w, rcgc_object *o, unsigned f,
                                               unsigned old)
{
    /* The stack is objs here (mark_set): room for every member. */
    RCGC_ASSERT(w->sp < w->stackcap && old == w->old);
    o->flags = (f & ~(RCGC_OF_GC_SCRATCH | RCGC_OF_GEN_MASK)) | (old << RCGC_OF_GEN_SHIFT);
    w->nreach++;
    w->stack[w->sp++] = o;
}

static inline void reach_young_fast(gc_work *w, rcgc_object *o, unsigned f)
{
    reach_young_old(w, o, f, w->old);
}

/* The same for a young collection, whose set is small and in the cache.
 * A pooled member is reached by moving it to generation `old` at once
 * (the header write its promotion needs anyway, its count cleared in the
 * same write): that takes it out of the set (gen > g), which is the
 * "reached" mark, so neither a later visit nor the scan looks at it again,
 * and the partition writes no survivor's header.  No pool lookup.  A
 * foreign member (its generation is its list, moved only by
 * rcgc_obj_set_gen) and a saturated one (unsaturate needs it in the set)
 * get RCGC_OF_REACHABLE instead and keep their generation until the
 * partition. */
static inline void reach_young(gc_work *w, rcgc_object *o, unsigned f)
{
    if (RCGC_LIKELY(!(f & (RCGC_OF_FOREIGN | RCGC_OF_GC_SATURATED)))) {
        reach_young_fast(w, o, f);
    } else {
        w->nflagged += !(f & RCGC_OF_FOREIGN);
        reach(w, o, f | RCGC_OF_REACHABLE);
    }
}

/* A member the recording scan (w->scanrec) recorded, reached after all by
 * a later root's drain: the record is undone (the hold, the count of the
 * set, its bit in `moving`) before it is reached.  need cannot be undone
 * bit by bit: it is recomputed after the scan if it is not zero. */
GC_COLD static void unrecord_young(gc_work *w, rcgc_object *o, unsigned f)
{
    RCGC_ASSERT(w->scanrec && !(f & (RCGC_OF_FOREIGN | RCGC_OF_GC_SCRATCH)));
    const rcgc_pool *pool = rcgc_pool_of(o);
    unsigned i = rcgc_pool_index(pool, o);
    gc_poolset *ps = &w->pools[pool->gcset];
    RCGC_ASSERT(ps->pool == pool && (ps->moving[i >> 6] >> (i & 63) & 1));
    ps->moving[i >> 6] &= ~((uint64_t)1 << (i & 63));
    o->flags = f & ~RCGC_OF_COLLECTING;
    o->refcnt--;
    w->u--;
    if (w->maxgen == 1)
        w->unreach1 -= (f >> RCGC_OF_GEN_SHIFT) & 1u;
    if (w->need)
        w->needstale = 1;
}

GC_COLD static void reach_young_slow(gc_work *w, rcgc_object *o, unsigned f)
{
    if (f & RCGC_OF_COLLECTING) {
        unrecord_young(w, o, f);
        f &= ~RCGC_OF_COLLECTING;
    }
    reach_young(w, o, f);
}

/* w->youngfast: the flag bits that must read exactly TRACKED for the common
 * case of a young visit - a pooled member (generation <= g), not reached,
 * not saturated, not recorded; a foreign, saturated or recorded member
 * takes reach_young_slow. */
static RCGC_ALWAYS_INLINE int visit_reach_young(rcgc_object *r, void *arg)
{
    gc_work *w = arg;
    unsigned f = r->flags;
    if (RCGC_LIKELY(gc_only_tracked(f, w->youngfast)))
        reach_young_fast(w, r, f);
    else if (is_member(w, f) && !(f & RCGC_OF_REACHABLE))
        reach_young_slow(w, r, f);   /* foreign or saturated */
    return 0;
}

/* visit_reach_young for a collection of generation g (a constant): its
 * masks and `old` in the code, not reloaded from w after every header
 * store that may alias them. */
static RCGC_ALWAYS_INLINE int visit_reach_young_gen(rcgc_object *r, void *arg, const unsigned g)
{
    gc_work *w = arg;
    unsigned f = r->flags;
    RCGC_ASSERT(w->maxgen == g && w->youngfast == GC_YOUNGFAST(g));
    if (RCGC_LIKELY(gc_only_tracked(f, GC_YOUNGFAST(g))))
        reach_young_old(w, r, f, g + 1);
    else if (((GC_MEMBERSET(g) >> (f & (RCGC_OF_TRACKED | RCGC_OF_GEN_MASK))) & 1u) &&
             !(f & RCGC_OF_REACHABLE))
        reach_young_slow(w, r, f);   /* foreign or saturated */
    return 0;
}

static RCGC_ALWAYS_INLINE int visit_reach_young0(rcgc_object *r, void *arg)
{
    return visit_reach_young_gen(r, arg, 0);
}

static RCGC_ALWAYS_INLINE int visit_reach_young1(rcgc_object *r, void *arg)
{
    return visit_reach_young_gen(r, arg, 1);
}

/* visit_reach_set through the ring. */
static RCGC_ALWAYS_INLINE int visit_reach_deferred(rcgc_object *r, void *arg)
{
    ring_put(arg, r, visit_reach_set);
    return 0;
}

/* T2 in a loop's copy for one kind of heap: with refs non-zero (a
 * constant) as rcgc_obj_traverse_cached; with refs zero, when c->met is
 * zero and c has seen o already (RC2: o's type has no refs array), a
 * direct call of o's traverse, with no test at all. */
static RCGC_ALWAYS_INLINE int traverse_kind(rcgc_refs_cache *c, rcgc_object *o,
                                            rcgc_visitfn visit, void *arg,
                                            const int refs)
{
    if (refs)
        return rcgc_obj_traverse_cached(c, o, visit, arg);
    RCGC_ASSERT(!c->met && o->type->refs == NULL);
    return o->type->traverse(o, visit, arg);
}

/* A member the young drain's K1 copy traverses (reached), listed while
 * gc_work.klist has room. */
static RCGC_ALWAYS_INLINE void k1_list(gc_work *w, rcgc_object *o)
{
    size_t i = w->nklist++;
    if (i < GC_K1_LIST)
        w->klist[i] = o;
}

/* The young drain's state in locals (young_drain_refs): the stack top
 * and the count of reached members, written back to w around every call
 * that uses w's (the slow visit, a traverse through the cache). */
typedef struct gc_ydrain {
    rcgc_object **stack;
    size_t sp;
    size_t nreach;
    size_t knr;       /* k1: K1's sums over the members traversed */
    int64_t kaccr;
} gc_ydrain;

/* The young drain's visit of r, referent of the member being traversed,
 * for a collection of generation g (a constant), with the member to
 * traverse next held in a register (next, NULL if none) instead of on the
 * stack: a member reached in the common case (visit_reach_young_gen)
 * becomes the new next, and the old one goes on the stack.  Returns the
 * new next. */
static RCGC_ALWAYS_INLINE rcgc_object *ydrain_visit(gc_work *w, gc_ydrain *d, rcgc_object *r,
                                                    rcgc_object *next, const unsigned g,
                                                    const int k1)
{
    if (r == NULL)
        return next;
    unsigned f = r->flags;
    /* Y1: a leaf fails the first test (its bit is in the mask). */
    if (RCGC_LIKELY(gc_only_tracked(f, GC_YOUNGFAST(g) | RCGC_OF_GC_LEAF))) {
        RCGC_ASSERT(d->sp < w->stackcap && w->old == g + 1);
        r->flags = (f & ~(RCGC_OF_GC_SCRATCH | RCGC_OF_GEN_MASK)) | ((g + 1) << RCGC_OF_GEN_SHIFT);
        d->nreach++;
        if (next != NULL)
            d->stack[d->sp++] = next;
        return r;
    }
    if (!k1 && gc_only_tracked(f, GC_YOUNGFAST(g))) {
        /* A leaf: reached, nothing to traverse. */
        check_leaf(w, r);
        r->flags = (f & ~(RCGC_OF_GC_SCRATCH | RCGC_OF_GEN_MASK)) | ((g + 1) << RCGC_OF_GEN_SHIFT);
        d->nreach++;
        return next;
    }
    if (((GC_MEMBERSET(g) >> (f & (RCGC_OF_TRACKED | RCGC_OF_GEN_MASK))) & 1u) &&
        !(f & RCGC_OF_REACHABLE)) {
        /* foreign, saturated or recorded */
        w->sp = d->sp;
        w->nreach = d->nreach;
        reach_young_slow(w, r, f);
        d->sp = w->sp;
        d->nreach = w->nreach;
    }
    return next;
}

/* The young drain of a set with refs types (RC2), generation g (a
 * constant): a two-field member of the cache's type (RC3) is traversed
 * inline, and the last member its visits reach is traversed next without
 * a push and a pop (ydrain_visit); any other member goes through
 * rcgc_obj_traverse_cached.  The order of traversal differs from the
 * stack's; what is reached does not.  The cache's type and offsets are in
 * locals, taken again after a traverse through the cache (the only thing
 * that fills it); the stack top and the count in d. */
static RCGC_ALWAYS_INLINE void young_drain_refs(gc_work *w, const unsigned g, const int k1)
{
    rcgc_refs_cache *c = &w->refcache;
    const rcgc_type *ctype2 = c->type2;
    size_t coff0 = c->off0, coff1 = c->off1;
    /* k1 (a constant, generation 0): K1's sums over every member
     * traversed (each reached member is, once) of ktype. */
    const rcgc_type *kt = w->ktype;
    RCGC_ASSERT(!k1 || g == 0);
    gc_ydrain d = {w->stack, w->sp, w->nreach, 0, 0};
    while (d.sp > 0) {
        rcgc_object *o = d.stack[--d.sp];
        do {
            if (RCGC_LIKELY(o->type == ctype2)) {
                rcgc_object *r0 = rcgc_ref_load(o, coff0), *r1 = rcgc_ref_load(o, coff1);
                if (k1 && ctype2 == kt) {
                    d.kaccr += (int64_t)o->refcnt - (r0 != NULL) - (r1 != NULL);
                    d.knr++;
                }
                if (k1)
                    k1_list(w, o);
                o = ydrain_visit(w, &d, r1, ydrain_visit(w, &d, r0, NULL, g, k1), g, k1);
            } else {
                if (k1 && o->type == kt) {
                    d.kaccr += k1_part(w, o);
                    d.knr++;
                }
                if (k1)
                    k1_list(w, o);
                w->sp = d.sp;
                w->nreach = d.nreach;
                traverse_kind(c, o, g == 0 ? visit_reach_young0 : visit_reach_young1, w, 1);
                d.sp = w->sp;
                d.nreach = w->nreach;
                ctype2 = c->type2;
                coff0 = c->off0;
                coff1 = c->off1;
                o = NULL;
            }
        } while (o != NULL);
    }
    w->sp = 0;
    w->nreach = d.nreach;
    if (k1) {
        w->knr += d.knr;
        w->kaccr += d.kaccr;
    }
}

/* young_drain_refs out of line, one copy per generation (and K1's). */
static RCGC_NOINLINE void young_drain_refs0(gc_work *w)
{
    young_drain_refs(w, 0, 0);
}

static RCGC_NOINLINE void young_drain_refs0k(gc_work *w)
{
    young_drain_refs(w, 0, 1);
}

static RCGC_NOINLINE void young_drain_refs1(gc_work *w)
{
    young_drain_refs(w, 1, 0);
}

/* Traverse every object on the stack and all they reach; a full
 * collection's referents go through the ring, which is empty after.  One
 * copy per kind of heap (refs, a constant): where the gather met no type
 * with refs (RC2), the traverse is called with nothing to test and nothing
 * kept in registers for the cache. */
static RCGC_ALWAYS_INLINE void drain_set_kind(gc_work *w, const int refs, const int young)
{
    if (young) {
        /* young: 1 + the collected generation (a constant). */
        while (w->sp > 0) {
            rcgc_object *o = w->stack[--w->sp];
            traverse_kind(&w->refcache, o, young == 1 ? visit_reach_young0 : visit_reach_young1,
                          w, refs);
        }
        return;
    }
    for (;;) {
        while (w->sp > 0) {
            rcgc_object *o = w->stack[--w->sp];
            /* Only a wide structure (many objects waiting on the stack)
             * has work to overlap with the prefetches; a chain or a ring
             * (one or two waiting) is visited at once, in the order the
             * stack gives, which keeps a walk in one direction. */
            if (w->sp >= GC_RING_MINSTACK) {
                w->nwide++;
                traverse_kind(&w->refcache, o, visit_reach_deferred, w, refs);
            } else {
                traverse_kind(&w->refcache, o, visit_reach_set, w, refs);
            }
        }
        /* A chain (one object in flight at a time) takes its next link
         * here, without waiting for GC_RING others: the newest, so that
         * the walk keeps one direction (the older entries are mostly
         * links back, already reached). */
        rcgc_object *r = ring_take_newest(w);
        if (r == NULL)
            break;
        visit_reach_set(r, w);
    }
}

/* The full drain's state in locals (full_drain_refs): the stack, its top
 * and capacity, the count of reached members and the ring's position and
 * fill.  Written back to w around every call that uses w's (the slow
 * visit, a traverse through the cache's miss path, a stack that must grow)
 * and taken again after it: w's copies are stale in between. */
typedef struct gc_fdrain {
    rcgc_object **stack;
    size_t sp;
    size_t cap;
    size_t nreach;
    size_t ringpos;     /* size_t: an index the ring's slot address needs
                         * no zero extension for */
    unsigned ringn;
} gc_fdrain;

static RCGC_ALWAYS_INLINE void fdrain_out(gc_work *w, const gc_fdrain *d)
{
    w->stack = d->stack;
    w->sp = d->sp;
    w->stackcap = d->cap;
    w->nreach = d->nreach;
    w->ringpos = d->ringpos;
    w->ringn = d->ringn;
}

static RCGC_ALWAYS_INLINE void fdrain_in(const gc_work *w, gc_fdrain *d)
{
    d->stack = w->stack;
    d->sp = w->sp;
    d->cap = w->stackcap;
    d->nreach = w->nreach;
    d->ringpos = w->ringpos;
    d->ringn = w->ringn;
}

/* The reach of a pooled, unsaturated member r (header f) on d: its bit
 * in its pool set's `reached`, its scratch bits cleared (the count, and
 * Y1's leaf mark), counted. */
static RCGC_ALWAYS_INLINE void fdrain_mark(gc_fdrain *d, rcgc_object *r, unsigned f,
                                           gc_poolset *pools)
{
    const rcgc_pool *pool = gc_pool_of(r);
    unsigned i = rcgc_pool_index(pool, r);
    uint64_t *word = &pools[pool->gcset].reached[i >> 6];
    RCGC_ASSERT(!(*word & ((uint64_t)1 << (i & 63))));
    *word |= gc_bit(i);
    r->flags = f & ~RCGC_OF_GC_SCRATCH;
    d->nreach++;
}

/* visit_reach_set on d, for a full collection (its member set a constant):
 * a pooled member with a count and no saturation is reached here (its
 * bit, its header, the push); a foreign or saturated one, or a push onto a
 * full stack, goes through visit_reach_set on w.  A leaf (Y1: pooled, its
 * fields all NULL) is reached without the push: its traversal would visit
 * nothing.  The leaf's bit is tested with the rare cases, so that other
 * members pay no test for it.  The pool sets' base is read from w at each
 * reach (w->pools, which a header store may alias): kept in a register
 * for the loop, it cost the reach two spills. */
static RCGC_ALWAYS_INLINE void fdrain_reach(gc_work *w, gc_fdrain *d, rcgc_object *r)
{
    unsigned f = r->flags;
    /* Scratch bits only on members (C2), as visit_reach_set. */
    if (!(f & RCGC_OF_GC_SCRATCH))
        return;
    RCGC_ASSERT(gc_member(f, GC_MEMBERSET(RCGC_NGENS - 1)));
    if (RCGC_UNLIKELY((f & (RCGC_OF_FOREIGN | RCGC_OF_GC_SATURATED | RCGC_OF_GC_LEAF)) ||
                      d->sp >= d->cap)) {
        /* f hidden from the compiler here, so that the common path's
         * test stays a test (not an `and` kept for this one). */
        unsigned g = f;
#if defined(__GNUC__)
        __asm__("" : "+r"(g));
#endif
        if ((g & RCGC_OF_GC_LEAF) && !(g & (RCGC_OF_FOREIGN | RCGC_OF_GC_SATURATED))) {
            fdrain_mark(d, r, f, w->pools);
            w->nleaf++;   /* in w: a register less for the loop */
            check_leaf(w, r);
            return;
        }
        fdrain_out(w, d);
        visit_reach_set(r, w);
        fdrain_in(w, d);
        return;
    }
    fdrain_mark(d, r, f, w->pools);
    d->stack[d->sp++] = r;
}

/* ring_put on d, the oldest referent's visit fdrain_reach. */
static RCGC_ALWAYS_INLINE void fdrain_put(gc_work *w, gc_fdrain *d, rcgc_object *r)
{
    GC_PREFETCH(r, 1);
    if (RCGC_LIKELY(d->ringn == GC_RING)) {
        size_t pos = d->ringpos;
        rcgc_object *out = w->ring[pos];
        w->ring[pos] = r;
        d->ringpos = (pos + 1) & (GC_RING - 1);
        fdrain_reach(w, d, out);
        return;
    }
    w->ring[(d->ringpos + d->ringn) & (GC_RING - 1)] = r;
    d->ringn++;
}

/* drain_set_kind(w, 1, 0), the full drain of a set with refs types (RC2),
 * with its state in locals (gc_fdrain): the same objects traversed in the
 * same order, the same visits through the ring, the same result.  A
 * member of the cache's type (RC3, two fields or one) is traversed
 * inline; any other goes through rcgc_obj_traverse_cached on w, after
 * which the cache's type and offsets are taken again (the cache's miss
 * path is the only thing that fills it).  Through w, every header store
 * (which may alias w) made the compiler reload and store the stack top,
 * the count and the ring's position. */
static RCGC_NOINLINE void full_drain_refs(gc_work *w)
{
    rcgc_refs_cache *c = &w->refcache;
    const rcgc_type *ctype2 = c->type2;
    size_t coff0 = c->off0, coff1 = c->off1;
    gc_fdrain d;
    RCGC_ASSERT(w->bitmaps && w->memberset == GC_MEMBERSET(RCGC_NGENS - 1));
    fdrain_in(w, &d);
    for (;;) {
        while (d.sp > 0) {
            rcgc_object *o = d.stack[--d.sp];
            const rcgc_type *t = o->type;
            /* As drain_set_kind: through the ring only with others
             * waiting on the stack. */
            const int wide = d.sp >= GC_RING_MINSTACK;
            rcgc_object *r0, *r1;
            if (wide)
                w->nwide++;
            if (RCGC_LIKELY(t == ctype2)) {
                r0 = rcgc_ref_load(o, coff0);
                r1 = rcgc_ref_load(o, coff1);
            } else if (t == c->type) {
                /* RC3: one field (off1 == 0). */
                r0 = rcgc_ref_load(o, c->off0);
                r1 = NULL;
            } else {
                fdrain_out(w, &d);
                if (wide)
                    traverse_kind(c, o, visit_reach_deferred, w, 1);
                else
                    traverse_kind(c, o, visit_reach_set, w, 1);
                fdrain_in(w, &d);
                ctype2 = c->type2;
                coff0 = c->off0;
                coff1 = c->off1;
                continue;
            }
            if (wide) {
                if (r0 != NULL)
                    fdrain_put(w, &d, r0);
                if (r1 != NULL)
                    fdrain_put(w, &d, r1);
            } else {
                /* The last field first: the first one is then on top of
                 * the stack, and the walk goes down the first fields
                 * before the others, the order in which a structure is
                 * usually built (and its members laid out: a tree made
                 * by its first subtree before its second is visited in
                 * address order). */
                if (r1 != NULL)
                    fdrain_reach(w, &d, r1);
                if (r0 != NULL)
                    fdrain_reach(w, &d, r0);
            }
        }
        /* ring_take_newest, as drain_set_kind. */
        if (d.ringn == 0)
            break;
        d.ringn--;
        fdrain_reach(w, &d, w->ring[(d.ringpos + d.ringn) & (GC_RING - 1)]);
    }
    fdrain_out(w, &d);
}

static void drain_set(gc_work *w)
{
    const int young = w->bitmaps ? 0 : 1 + (int)w->maxgen;
    if (w->refcache.met) {
        if (young == 1)
            drain_set_kind(w, 1, 1);
        else if (young == 2)
            drain_set_kind(w, 1, 2);
        else
            full_drain_refs(w);
    } else {
        if (young == 1)
            drain_set_kind(w, 0, 1);
        else if (young == 2)
            drain_set_kind(w, 0, 2);
        else
            drain_set_kind(w, 0, 0);
    }
}

/* drain_set for the young mark scan: a set with refs types (RC2) takes
 * young_drain_refs.  Dispatched here rather than in drain_set: with the
 * young copies out of drain_set, GCC compiled its full copy worse (the
 * live ring's collector +4%); out of line, so that the scan's copies keep
 * their registers (inline, the churn's collector +0.8%). */
static RCGC_NOINLINE void drain_young(gc_work *w)
{
    RCGC_ASSERT(!w->bitmaps);
    if (!w->refcache.met)
        drain_set(w);
    else if (w->maxgen == 0)
        young_drain_refs0(w);
    else
        young_drain_refs1(w);
}

/* drain_young for a k1gather collection's scan (generation 0, no member
 * saturated): the young drain's K1 copy, which adds the reached members'
 * part to K1's sums.  (A set with no refs type has no ktype: no K1.) */
static RCGC_NOINLINE void drain_young_k1(gc_work *w)
{
    RCGC_ASSERT(w->k1gather && w->maxgen == 0 && !w->saturated);
    if (!w->refcache.met)
        drain_set(w);
    else
        young_drain_refs0k(w);
}

/* After marking, a saturated member's count goes down by GC_REFS_MAX
 * visits and its refcount gets the rest back: true again, count 0. */
static int visit_unsaturate(rcgc_object *r, void *arg)
{
    unsigned f = r->flags;
    if (is_member(arg, f) && (f & RCGC_OF_GC_SATURATED)) {
        if (gc_refs(f) > 0)
            r->flags = f - GC_REFS_ONE;
        else
            r->refcnt++;
    }
    return 0;
}

GC_COLD static void unsaturate(gc_work *w)
{
    FOR_EACH_MEMBER(w, o, rcgc_obj_traverse(o, visit_unsaturate, w));
    /* Reached members keep no scratch bits (partition does not look at
     * pooled ones again); unreachable ones lose theirs when recorded. */
    FOR_EACH_MEMBER(w, o, o->flags &= ~RCGC_OF_GC_SCRATCH);
    w->saturated = 0;
}

/* The young mark scan over one pool set: each member not reached yet
 * that is referenced from outside the set is reached and drained.  With
 * rec (a constant: w->scanrec), a member that is not is recorded at once
 * (record_one: the partition then reads no header), its bit set in
 * `moving`; a later drain that reaches it undoes the record
 * (unrecord_young).  Reached pooled members have left the set (or carry
 * RCGC_OF_REACHABLE) and recorded ones carry RCGC_OF_COLLECTING; a pooled
 * member is never foreign, so one that fails the fast test and is still
 * in the set, not reached, is saturated (never recorded here): it may
 * still be a root.  sat (a constant: w->saturated, set by the gather
 * only) is zero when no member is saturated: that test is then left out. */
static RCGC_ALWAYS_INLINE void young_scan_pool(gc_work *w, gc_poolset *ps, char *base,
                                               size_t size, const int rec, const int sat,
                                               const int gen1, const int k1)
{
    RCGC_ASSERT(sat == !!w->saturated && !(rec && sat) && gen1 == (w->maxgen == 1));
    const unsigned youngfast = w->youngfast;
    /* A recording scan's fast case also has no weak references: its
     * record then tests none (weakly referenced members take the second
     * branch). */
    const unsigned fast = rec ? youngfast | RCGC_OF_WEAKREFS : youngfast;
    for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++) {
        /* R1: a plain scan reads only the members that may be roots. */
        for (uint64_t b = rec ? ps->members[k] : ps->reached[k]; b; b &= b - 1) {
            size_t bit = gc_low_bit(b);
            rcgc_object *o = (rcgc_object *)(base + ((size_t)k * 64 + bit) * size);
            unsigned f = o->flags;
            if (RCGC_LIKELY(gc_only_tracked(f, fast))) {
                if (o->refcnt > gc_refs(f)) {
                    reach_young_fast(w, o, f);
                    if (k1)
                        drain_young_k1(w);
                    else
                        drain_young(w);
                } else if (rec) {
                    record_one_weak(w, o, f, 1, 0);
                    ps->moving[k] |= (uint64_t)1 << bit;
                    if (gen1)
                        w->unreach1 += (f >> RCGC_OF_GEN_SHIFT) & 1u;
                }
            } else if (rec && gc_only_tracked(f, youngfast)) {
                /* The same for a weakly referenced member. */
                if (o->refcnt > gc_refs(f)) {
                    reach_young_fast(w, o, f);
                    drain_young(w);
                } else {
                    record_one_weak(w, o, f, 1, 1);
                    ps->moving[k] |= (uint64_t)1 << bit;
                    if (gen1)
                        w->unreach1 += (f >> RCGC_OF_GEN_SHIFT) & 1u;
                }
            } else if (sat && (f & RCGC_OF_GC_SATURATED) && is_member(w, f) &&
                       !(f & RCGC_OF_REACHABLE) && o->refcnt > gc_refs(f)) {
                RCGC_ASSERT(!rec);   /* a set with a saturated member: mark_set */
                reach_young(w, o, f);
                drain_young(w);
            }
        }
    }
}

/* need and plaintype again from the recorded members, after a record was
 * undone (unrecord_young): the set's need is exactly its members'. */
GC_COLD static void recompute_need(gc_work *w)
{
    w->need = 0;
    w->plaintype = NULL;
    GC_FOR_EACH_POOLED(w, o, GC_RECORDED_BITS, {
        const rcgc_type *t = o->type;
        if (t != w->plaintype)
            record_type(w, t, o->flags);
        if (o->flags & RCGC_OF_WEAKREFS)
            w->need |= NEED_WEAK;
    });
    w->needstale = 0;
}

/*
 * Step 3: members referenced from outside the set (more references than
 * internal ones), and all they reach, are reached; each is traversed
 * exactly once (the rescan after a failed push takes those left with
 * RCGC_OF_MARK).  The scan reads the header only of members not reached
 * yet (the reached bitmaps say which), and walks the pools in the reverse
 * of the gather order - oldest arenas and young pools first, roughly
 * allocation order, where roots tend to come before what they reach - and
 * stops once every member is reached.  Afterwards every refcount is true
 * (saturated ones are given their excess back).
 */
static void mark_set(gc_work *w)
{
    size_t pre = w->rt->mem.debug_pre;
    /* A young mark pushes each member at most once (reaching it takes it
     * out of the set or flags it): objs, not written before the
     * partition, has room for all of them, so the stack never grows or
     * overflows and the common push needs no test. */
    rcgc_object **stack = w->stack;
    size_t stackcap = w->stackcap;
    if (!w->bitmaps) {
        w->stack = w->objs;
        w->stackcap = w->cap;
    }
    /* A saturated member is not recorded by the scan (its root test
     * waits for unsaturate): such a set is partitioned from the headers. */
    if (w->saturated)
        w->scanrec = 0;
    /* Until every member is reached or recorded (u: none recorded but by
     * a recording scan). */
    for (size_t p = w->npools; p-- > 0 && w->nreach + w->u < w->n;) {
        gc_poolset *ps = &w->pools[p];
        char *base = ps->pool->mem + pre;
        size_t size = ps->pool->size;
        if (!w->bitmaps) {
            /* A set with no saturated member (the usual case) needs no
             * test for one: a member that fails the fast test was reached
             * or recorded. */
            if (w->scanrec && w->maxgen == 0)
                young_scan_pool(w, ps, base, size, 1, 0, 0, 0);
            else if (w->scanrec)
                young_scan_pool(w, ps, base, size, 1, 0, 1, 0);
            else if (RCGC_UNLIKELY(w->saturated))
                young_scan_pool(w, ps, base, size, 0, 1, w->maxgen == 1, 0);
            else if (w->k1gather)
                young_scan_pool(w, ps, base, size, 0, 0, 0, 1);
            else
                young_scan_pool(w, ps, base, size, 0, 0, w->maxgen == 1, 0);
            continue;
        }
        for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++) {
            uint64_t b = ps->members[k] & ~ps->reached[k];
            while (b) {
                size_t i = gc_low_bit(b);
                uint64_t mask = (uint64_t)1 << i;
                b &= b - 1;
                rcgc_object *o = (rcgc_object *)(base + ((size_t)k * 64 + i) * size);
                GC_PREFETCH((char *)o + GC_PREFETCH_AHEAD * size, 0);
                unsigned f = o->flags;
                if (o->refcnt > gc_refs(f)) {
                    ps->reached[k] |= mask;
                    reach(w, o, f);
                    drain_set(w);
                    /* Only a drain reaches members: drop what this one
                     * reached from the rest of the word. */
                    b &= ~ps->reached[k];
                }
            }
        }
    }
    for (unsigned g = 0; g <= w->maxgen && w->nreach < w->n; g++) {
        rcgc_foreign *head = &w->rt->gc.gens[g].head;
        for (rcgc_foreign *fp = head->next; fp != head; fp = fp->next) {
            rcgc_object *o = rcgc_foreign_obj(fp);
            unsigned f = o->flags;
            if (!(f & RCGC_OF_REACHABLE) && o->refcnt > gc_refs(f)) {
                reach(w, o, f | RCGC_OF_REACHABLE);
                drain_set(w);
            }
        }
    }
    while (w->overflow) {
        w->overflow = 0;
        FOR_EACH_MEMBER(w, o, {
            if (o->flags & RCGC_OF_MARK) {
                o->flags &= ~RCGC_OF_MARK;
                rcgc_obj_traverse(o, w->bitmaps ? visit_reach_set : visit_reach_young, w);
                drain_set(w);
            }
        });
    }
    if (!w->bitmaps) {
        RCGC_ASSERT(w->sp == 0 && !w->overflow);
        w->stack = stack;
        w->stackcap = stackcap;
    }
    if (RCGC_UNLIKELY(w->saturated))
        unsaturate(w);
    if (w->bitmaps)
        w->rt->gc.wide_heap = w->nwide > (w->nreach - w->nleaf) / 2;
    if (RCGC_UNLIKELY(w->needstale))
        recompute_need(w);
}

/* objs[0..u): the unreachable set in heap order, pooled then foreign (the
 * order every later phase works in). */
static void list_unreachable(gc_work *w)
{
    rcgc_object **objs = w->objs;
    size_t np = w->u - w->nforeign;
    memmove(objs + np, objs, w->nforeign * sizeof *objs);
    size_t j = 0;
    FOR_EACH_UNREACHABLE_POOLED(w, o, objs[j++] = o);
    RCGC_ASSERT(j == np);
    w->nforeign = 0;
}

/*
 * K1's test in a young partition after a scan that recorded nothing (the
 * hint rcgc_gc_state.young_closed): the members not reached (still of
 * generations 0..g, with no flag but TRACKED and their count) are the
 * unreachable set; it is closed and quiet when every one is of K1's type
 * (rcgc_gc_k1_type), none is weakly referenced, and the refcounts of the
 * set sum to its non-NULL fields (gcdelete.c's rcgc_gc_delete_closed
 * explains the sum; with no hold taken, nothing to subtract).  Reads each
 * member's header, writes only the `reached` bitmaps (the survivors),
 * which the partition writes anyway when this returns 0.  On success the
 * set is w->u members, *unreach1 of them of generation 1, and w->kclosed
 * is set: no member is recorded (no hold, no RCGC_OF_COLLECTING), and
 * step 9 frees them at once (rcgc_gc_delete_closed).
 */
static RCGC_ALWAYS_INLINE int k1_partition_gen(gc_work *w, const rcgc_type *kt, size_t *unreach1,
                                               const int gen1)
{
    size_t pre = w->rt->mem.debug_pre;
    size_t off0 = w->refcache.off0, off1 = w->refcache.off1;
    const unsigned youngfast = GC_YOUNGFAST(gen1);
    const unsigned fast = youngfast | RCGC_OF_WEAKREFS;
    int64_t excess = 0;
    size_t u1 = 0;
#if RCGC_DEBUG >= 1
    size_t u = 0;
#endif
    RCGC_ASSERT(kt == w->refcache.type2 && off1 != 0 && youngfast == w->youngfast);
    for (size_t p = 0; p < w->npools; p++) {
        gc_poolset *ps = &w->pools[p];
        char *word = ps->pool->mem + pre;
        size_t size = ps->pool->size;
        for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++, word += 64 * size) {
            /* The survivors' bits (the rare case) are collected; the
             * set is the rest. */
            uint64_t r = 0;
            for (uint64_t b = ps->members[k]; b; b &= b - 1) {
                size_t bit = gc_low_bit(b);
                const rcgc_object *o = (const rcgc_object *)(word + bit * size);
                unsigned f = o->flags;
                if (RCGC_LIKELY(gc_only_tracked(f, fast))) {
                    if (o->type != kt)
                        return 0;
                    excess += (int64_t)o->refcnt - (rcgc_ref_load(o, off0) != NULL) -
                              (rcgc_ref_load(o, off1) != NULL);
#if RCGC_DEBUG >= 1
                    u++;
#endif
                    if (gen1)
                        u1 += (f >> RCGC_OF_GEN_SHIFT) & 1u;
                } else if (gc_only_tracked(f, youngfast)) {
                    return 0;   /* weakly referenced */
                } else {
                    /* reached: moved to `old` by the mark (no member is
                     * flagged RCGC_OF_REACHABLE: nflagged 0) */
                    RCGC_ASSERT(((f & RCGC_OF_GEN_MASK) >> RCGC_OF_GEN_SHIFT) == w->old &&
                                !(f & RCGC_OF_GC_SCRATCH));
                    r |= (uint64_t)1 << bit;
                }
            }
            ps->reached[k] = r;
        }
    }
    RCGC_ASSERT(excess <= 0);
    if (excess != 0)
        return 0;
    /* Every member not reached is in the set (no foreign member). */
    RCGC_ASSERT(u == w->n - w->nreach);
    w->u = w->n - w->nreach;
    *unreach1 = u1;
    w->kclosed = 1;
    w->ktype = kt;
    return 1;
}

/*
 * K1 by the sums of a k1gather collection (generation 0, the hint
 * young_closed, the gather and the young drain's k1 copies): the members
 * not reached are the unreachable set U; the gather summed, over the
 * members of ktype, refcount less non-NULL fields (kacc, kn), the drain the
 * same over the reached ones (kaccr, knr), so U's sums are the
 * differences.  U is of ktype whole when its size is kn - knr, and closed
 * when kacc - kaccr is 0 (rcgc_gc_delete_closed explains the sum); no
 * member at all is weakly referenced (kflags), none is foreign or
 * saturated.  No header is read here: on success the set is w->u members,
 * w->kclosed and w->kfromgather are set, and `reached` still holds R1's
 * candidates (debug builds write the survivors there, for their checks);
 * step 9 tells the members from the survivors by their generation.
 */
static RCGC_NOINLINE int k1_sums(gc_work *w)
{
    const rcgc_type *kt = w->ktype;
    RCGC_ASSERT(w->maxgen == 0 && !w->scanrec);
    /* The sums say nothing (-1: k1_partition may still test the set)
     * unless every pool went through the cache with ktype its only
     * two-field type, and no object at all is weakly referenced (W1's
     * table empty: no member is). */
    if (w->kbad || kt == NULL || w->saturated || w->nflagged != 0 ||
        rcgc_weak_nobjects(w->rt) != 0)
        return -1;
    if (w->n != w->npooled || !rcgc_gc_k1_type_ok(w, kt) ||
        (w->rt->gc.debug & (RCGC_DEBUG_SAVEALL | RCGC_DEBUG_COLLECTABLE)))
        return 0;
    size_t u = w->n - w->nreach;
    RCGC_ASSERT(w->kn >= w->knr && w->kacc - w->kaccr <= 0);
    if (w->kn - w->knr != u || w->kacc != w->kaccr)
        return 0;
    w->u = u;
    w->kclosed = 1;
    w->kfromgather = 1;
    if (w->nklist == w->nreach && w->nreach <= GC_K1_LIST) {
        /* Every survivor listed (the usual case): their bits in
         * `reached`, and step 9 walks the bitmaps. */
        for (size_t p = 0; p < w->npools; p++)
            memset(w->pools[p].reached, 0, sizeof w->pools[p].reached);
        for (size_t i = 0; i < w->nklist; i++) {
            const rcgc_object *o = w->klist[i];
            const rcgc_pool *pool = rcgc_pool_of(o);
            unsigned bit = rcgc_pool_index(pool, o);
            gc_poolset *ps = &w->pools[pool->gcset];
            RCGC_ASSERT(pool->gcset < w->npools && ps->pool == pool &&
                        (o->flags & RCGC_OF_GEN_MASK) == (1u << RCGC_OF_GEN_SHIFT));
            ps->reached[bit >> 6] |= (uint64_t)1 << (bit & 63);
        }
        w->kfromgather = 0;
    }
#if RCGC_DEBUG >= 1
    /* The survivors in `reached`, from the headers (a reached member is in
     * generation 1 now): written for the debug checks, or checked. */
    size_t pre = w->rt->mem.debug_pre, nu = 0;
    for (size_t p = 0; p < w->npools; p++) {
        gc_poolset *ps = &w->pools[p];
        char *base = ps->pool->mem + pre;
        size_t size = ps->pool->size;
        for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++) {
            uint64_t r = 0;
            for (uint64_t b = ps->members[k]; b; b &= b - 1) {
                size_t bit = gc_low_bit(b);
                const rcgc_object *o = (const rcgc_object *)(base + (k * 64 + bit) * size);
                if (o->flags & RCGC_OF_GEN_MASK)
                    r |= (uint64_t)1 << bit;
                else
                    nu++;
            }
            RCGC_ASSERT(w->kfromgather || ps->reached[k] == r);
            ps->reached[k] = r;
        }
    }
    RCGC_ASSERT(nu == u);
#endif
    return 1;
}

/* K1's survivors of pool set ps moved out of generations 0-1: the
 * pool's young count (P4). */
GC_COLD static void k1_left_young(rcgc_runtime *rt, const gc_poolset *ps)
{
    unsigned left_young = 0;
    for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++)
        left_young += (unsigned)gc_popcount64(ps->reached[k]);
    rcgc_pool *pool = ps->pool;
    if (left_young) {
        RCGC_ASSERT(pool->nyoung >= left_young);
        pool->nyoung = (uint16_t)(pool->nyoung - left_young);
        if (pool->nyoung == 0)
            rcgc_pool_young_remove(rt, pool);
    }
}

/* record_word_k2's test of a member o whose type is not kt: o's refcount
 * less its non-NULL listed fields if its type is of K2's kind
 * (rcgc_gc_k2_type_ok), else INT64_MIN.  w->k2other caches the last type
 * found of that kind. */
static RCGC_NOINLINE int64_t k2_other(gc_work *w, const rcgc_object *o)
{
    const rcgc_type *t = o->type;
    if (t != w->k2other) {
        if (!rcgc_gc_k2_type_ok(w, t))
            return INT64_MIN;
        w->k2other = t;
        w->kmixed = 1;
    }
    int64_t ex = o->refcnt;
    for (const uint16_t *l = t->refs; *l != 0; l++)
        ex -= rcgc_ref_load(o, *l) != NULL;
    return ex;
}

/* K2 (partition, full collections): record_one for the unreachable
 * members in b (a word of a pool's bitmaps, its first block at word,
 * blocks size apart), in heap order, while they are of K2's kind
 * (rcgc_gc_k2_type_ok; the cache's two-field type kt, NULL if not of that
 * kind, tested inline, others by k2_other): their objects need nothing of
 * their type's, so no plaintype test.  Adds to *kexcess each one's
 * refcount (the hold not counted) less its non-NULL fields (kt's at
 * offsets koff0, koff1).  Returns the bits left: non-zero when a member of
 * another kind was met, the lowest bit left being that member, not
 * recorded. */
static RCGC_ALWAYS_INLINE uint64_t record_word_k2(gc_work *w, uint64_t b, char *word,
                                                  size_t size, const rcgc_type *kt,
                                                  size_t koff0, size_t koff1, int64_t *kexcess)
{
    int64_t acc = 0;
    unsigned fl = 0;
    size_t n = 0;
    for (; b; b &= b - 1) {
        rcgc_object *o = (rcgc_object *)(word + gc_low_bit(b) * size);
        GC_PREFETCH((char *)o + GC_PREFETCH_AHEAD * size, 1);
        unsigned f = o->flags;
        uint32_t rc = o->refcnt;
        if (RCGC_LIKELY(o->type == kt)) {
            acc += (int64_t)rc - (rcgc_ref_load(o, (unsigned)koff0) != NULL) -
                   (rcgc_ref_load(o, (unsigned)koff1) != NULL);
        } else {
            int64_t ex = k2_other(w, o);
            if (ex == INT64_MIN)
                break;
            acc += ex;
        }
        RCGC_ASSERT(!(f & RCGC_OF_FOREIGN));
        o->flags = (f & ~RCGC_OF_GC_SCRATCH) | RCGC_OF_COLLECTING;
        o->refcnt = rc + 1;   /* the hold */
        fl |= f;
        n++;
    }
    w->u += n;
    if (fl & RCGC_OF_WEAKREFS)
        w->need |= NEED_WEAK;
    *kexcess += acc;
    return b;
}

static RCGC_NOINLINE int k1_partition(gc_work *w, size_t *unreach1)
{
    const rcgc_type *kt = rcgc_gc_k1_type(w);
    if (kt == NULL)
        return 0;
    if (w->maxgen == 0)
        return k1_partition_gen(w, kt, unreach1, 0);
    return k1_partition_gen(w, kt, unreach1, 1);
}

/*
 * Step 4, one pass over the members: unreachable ones are recorded in objs
 * (heap order; record_one), reachable ones lose RCGC_OF_REACHABLE and
 * their count and move to generation `old`.  Pooled members are moved a
 * pool at a time: their generation bits, the pool's young count (P4) and
 * the generation counts in bulk.  In a full collection no generation
 * changes before a member's own turn, so membership still reads from the
 * header; a young collection's mark has moved the pooled members it
 * reached already (reach_young), and when it reached them all no header
 * is read here.
 */
static void partition(gc_work *w, unsigned old)
{
    rcgc_runtime *rt = w->rt;
    size_t pre = rt->mem.debug_pre;
    long moved[RCGC_NGENS] = {0, 0, 0};
    /* young: pooled members (a recording scan counted its records) */
    size_t survivors = 0, unreach1 = w->unreach1;
    const unsigned youngfast = w->youngfast;
    const int gen1 = w->maxgen == 1;
    const unsigned newgen = old << RCGC_OF_GEN_SHIFT;
    /* A young set that survived whole (the usual case) moved all of its
     * pooled members while marking. */
    const int allreached = !w->bitmaps && w->nreach == w->n && w->nflagged == 0;
    int k1s = -1;   /* k1_sums: untried */
    /* K2: a full collection's set tested for K1 while it is recorded
     * (kt: the candidate type, NULL once a member is of another; kexcess:
     * the sum over the recorded members of refcount less the hold less
     * non-NULL fields, as rcgc_gc_delete_closed explains). */
    const rcgc_type *kt = NULL;
    int64_t kexcess = 0;
    int k2 = w->bitmaps && w->refcache.met &&
             !(rt->gc.debug & (RCGC_DEBUG_SAVEALL | RCGC_DEBUG_COLLECTABLE)) &&
             !(rt->mem.slow & ~RCGC_SLOW_TRACE);
    if (k2)
        kt = rcgc_gc_k1_type(w);
    const size_t koff0 = w->refcache.off0, koff1 = w->refcache.off1;
    if (allreached) {
        survivors = w->npooled;
        if (old != 2)
            goto pools_done;   /* nothing per pool either */
    } else if (w->k1gather && (k1s = k1_sums(w)) > 0) {
        /* K1 by the sums: nothing recorded, nothing read; the survivors
         * (generation 1 now) are the reached members. */
        survivors = w->npooled - w->u;
        goto pools_done;
    } else if (k1s == 0) {
        /* not closed, or not K1's kind: recorded as usual */
    } else if (!w->bitmaps && !w->scanrec && w->nflagged == 0 && rt->gc.young_closed &&
               w->n == w->npooled &&
               !(rt->gc.debug & (RCGC_DEBUG_SAVEALL | RCGC_DEBUG_COLLECTABLE)) &&
               k1_partition(w, &unreach1)) {
        /* K1: nothing recorded; `reached` has the survivors, moved by
         * the mark already (for old 2, out of generations 0-1). */
        survivors = w->npooled - w->u;
        for (size_t p = 0; old == 2 && p < w->npools; p++)
            k1_left_young(rt, &w->pools[p]);
        goto pools_done;
    }
    for (size_t p = 0; p < w->npools; p++) {
        gc_poolset *ps = &w->pools[p];
        rcgc_pool *pool = ps->pool;
        char *base = pool->mem + pre;
        size_t size = pool->size;
        unsigned left_young = 0;   /* objects that leave generations 0-1 */
        if (!w->bitmaps && allreached) {
            /* Every pooled member was reached, and moved by reach_young:
             * no header to read; the bitmaps only for the young count. */
            if (old == 2)
                for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++)
                    left_young += (unsigned)gc_popcount64(ps->members[k]);
        } else if (!w->bitmaps && w->scanrec) {
            /* The recording scan recorded every pooled member it did not
             * reach (none saturated): `moving` has them, the rest moved. */
            unsigned nsurvive = 0;
            for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++) {
                uint64_t r = ps->members[k] & ~ps->moving[k];
                ps->reached[k] = r;
                nsurvive += (unsigned)gc_popcount64(r);
            }
            survivors += nsurvive;
            if (old == 2)
                left_young += nsurvive;
        } else if (!w->bitmaps) {
            /* Young: every member is recorded or changes generation.  The
             * mark moved the reached pooled ones (reach_young) already,
             * but for saturated ones, which carry RCGC_OF_REACHABLE; the
             * generations they came from are counted in bulk: the
             * generation-1 members the gather found, less the
             * unreachable ones. */
            unsigned nsurvive = 0;
            for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++) {
                uint64_t m = ps->members[k], r = 0;
                for (uint64_t b = m; b; b &= b - 1) {
                    size_t i = gc_low_bit(b);
                    rcgc_object *o = (rcgc_object *)(base + ((size_t)k * 64 + i) * size);
                    unsigned f = o->flags;
                    /* Still a plain member (unsaturate has cleared every
                     * count): not reached. */
                    if (gc_only_tracked(f, youngfast)) {
                        record_one(w, o, f, 1);
                        if (gen1)
                            unreach1 += (f >> RCGC_OF_GEN_SHIFT) & 1u;
                    } else if (f & RCGC_OF_REACHABLE) {
                        RCGC_ASSERT(!(f & RCGC_OF_GC_SCRATCH));
                        o->flags = (f & ~(RCGC_OF_GEN_MASK | RCGC_OF_REACHABLE)) | newgen;
                        r |= (uint64_t)1 << i;
                    } else {
                        RCGC_ASSERT((f & RCGC_OF_GEN_MASK) == newgen &&
                                    !(f & RCGC_OF_GC_SCRATCH));
                        r |= (uint64_t)1 << i;
                    }
                }
                ps->reached[k] = r;
                nsurvive += (unsigned)gc_popcount64(r);
            }
            survivors += nsurvive;
            if (old == 2)
                left_young += nsurvive;
        }
        for (unsigned k = 0; w->bitmaps && k < RCGC_POOL_BITMAP_WORDS; k++) {
            uint64_t b = ps->members[k] & ~ps->reached[k];
            if (k2 && b != 0) {
                b = record_word_k2(w, b, base + (size_t)k * 64 * size, size, kt, koff0, koff1,
                                   &kexcess);
                if (b != 0)
                    k2 = 0;   /* a member of another kind: recorded below */
            }
            for (; b; b &= b - 1) {
                size_t i = (size_t)k * 64 + gc_low_bit(b);
                rcgc_object *o = (rcgc_object *)(base + i * size);
                GC_PREFETCH((char *)o + GC_PREFETCH_AHEAD * size, 1);
                record_one(w, o, o->flags, 1);
            }
            for (uint64_t bm = ps->reached[k] & ps->moving[k]; bm; bm &= bm - 1) {
                size_t i = gc_low_bit(bm);
                rcgc_object *o = (rcgc_object *)(base + ((size_t)k * 64 + i) * size);
                unsigned f = o->flags;
                unsigned gen = (f & RCGC_OF_GEN_MASK) >> RCGC_OF_GEN_SHIFT;
                RCGC_ASSERT(gen != old && !(f & RCGC_OF_GC_SCRATCH));
                o->flags = (f & ~RCGC_OF_GEN_MASK) | newgen;
                moved[gen]++;
                left_young += old == 2;
            }
        }
        if (left_young) {
            RCGC_ASSERT(pool->nyoung >= left_young);
            pool->nyoung = (uint16_t)(pool->nyoung - left_young);
            if (pool->nyoung == 0)
                rcgc_pool_young_remove(rt, pool);
        }
    }
pools_done:
    if (!w->bitmaps) {
        RCGC_ASSERT(w->npooled1 >= unreach1 && survivors >= w->npooled1 - unreach1);
        moved[1] = (long)(w->npooled1 - unreach1);
        moved[0] = (long)survivors - moved[1];
    }
    for (unsigned g = 0; g < RCGC_NGENS; g++) {
        rt->gc.gens[g].nobjects -= moved[g];
        rt->gc.gens[old].nobjects += moved[g];
    }
    /* Foreign members: recorded in list order first, then moved through
     * rcgc_obj_set_gen, oldest list first so that an object moved to an
     * older list is not met again. */
    for (unsigned g = 0; g <= w->maxgen; g++) {
        rcgc_foreign *head = &rt->gc.gens[g].head;
        for (rcgc_foreign *f = head->next; f != head; f = f->next) {
            rcgc_object *o = rcgc_foreign_obj(f);
            if (!(o->flags & RCGC_OF_REACHABLE))
                record_one(w, o, o->flags, 0);
        }
    }
    for (int g = (int)w->maxgen; g >= 0; g--) {
        rcgc_foreign *head = &rt->gc.gens[g].head;
        rcgc_foreign *f = head->next, *next;
        for (; f != head; f = next) {
            next = f->next;
            rcgc_object *o = rcgc_foreign_obj(f);
            if (o->flags & RCGC_OF_REACHABLE) {
                o->flags &= ~(RCGC_OF_REACHABLE | RCGC_OF_GC_SCRATCH);
                rcgc_gc_promote(rt, o, old);
            }
        }
    }
    /* K2: the recorded set is closed and quiet (no foreign member, no
     * weak reference: need 0); step 9 frees it without clears. */
    RCGC_ASSERT(!k2 || kexcess <= 0);
    if (k2 && kexcess == 0 && w->u > 0 && w->nforeign == 0 && w->need == 0) {
        w->kclosed = 1;
        w->ktype = kt;
        if (kt == NULL)
            w->kmixed = 1;
    }
}

/* Steps 1-4 of a collection of generation w->maxgen.  Returns the number
 * of unreachable objects, in objs[0..u) and held; *nreach receives the
 * number of survivors (now in `old`), *need what the set needs. */
static size_t trial_deletion_main(gc_work *w, unsigned old, size_t *nreach, unsigned *need)
{
    gather_subtract(w);
    mark_set(w);
    partition(w, old);
    RCGC_ASSERT(w->u + w->nreach == w->n);
#if RCGC_DEBUG >= 2
    /* need is exactly the unreachable members' (a recording scan's undone
     * records included: recompute_need). */
    unsigned exact = 0;
    /* (A young set reached whole leaves `reached` unset: nothing to walk.) */
#define GC_NEED_OF(o)                                                                    \
    (((o)->type->legacy_del ? NEED_LEGACY : 0u) |                                        \
     ((o)->type == &rcgc_weakref_type || ((o)->flags & RCGC_OF_WEAKREFS) ? NEED_WEAK : 0u) | \
     ((o)->type->finalize && !((o)->flags & RCGC_OF_FINALIZED) ? NEED_FINALIZE : 0u))
    if (w->u > 0)
        FOR_EACH_UNREACHABLE_POOLED(w, o, exact |= GC_NEED_OF(o));
    for (size_t i = 0; i < w->nforeign; i++)
        exact |= GC_NEED_OF(w->objs[i]);
#undef GC_NEED_OF
    if (exact != w->need)
        rcgc_fatal("gc: the unreachable set needs %#x, recorded %#x", exact, w->need);
#endif
    /* The next young scan records if this young set was mostly garbage. */
    if (!w->bitmaps)
        w->rt->gc.young_garbage = w->u > w->nreach;
    *need = w->need;
    *nreach = w->nreach;
    return w->u;
}

/* ----------------------------------------------------------- the core */

static void show_stats_each_generation(const rcgc_runtime *rt)
{
    fprintf(stderr, "gc: objects in each generation: %ld %ld %ld\n",
            rcgc_gen_count(rt, 0), rcgc_gen_count(rt, 1), rcgc_gen_count(rt, 2));
    fprintf(stderr, "gc: objects in permanent generation: %ld\n", rcgc_gen_count(rt, 3));
}

/* The tracked objects of generations 0..generation, as rcgc_gen_count
 * sums them, without the birth log's entries (B4): a collection sizes its
 * set with the log settled (B3), and clear_remaining adds them. */
static size_t set_size(const rcgc_runtime *rt, int generation)
{
    size_t total = 0;
    for (int i = 0; i <= generation; i++)
        total += (size_t)rt->gc.gens[i].nobjects;
    return total;
}

/* The number of pools a collection of `generation` walks: an upper bound
 * of the pools holding members. */
static size_t pools_to_walk(const rcgc_runtime *rt, int generation)
{
    size_t npools = 0;
    if (generation < 2) {
        for (const rcgc_pool *pool = rt->pool.young; pool; pool = pool->young_next)
            npools++;
    } else {
        for (const rcgc_arena *a = rt->pool.all; a; a = a->allnext)
            npools += a->ncarved;
    }
    return npools;
}

/* Allocate the work space for the collection set of `generation`.
 * RCGC_OK or RCGC_ENOMEM (nothing allocated). */
static int work_alloc(gc_work *w, rcgc_runtime *rt, int generation)
{
    memset(w, 0, offsetof(gc_work, klist));   /* klist: see there */
    rcgc_refs_cache_init(&w->refcache);
    w->rt = rt;
    w->maxgen = (unsigned)generation;
    w->old = generation + 1 < RCGC_NGENS ? (unsigned)generation + 1 : (unsigned)generation;
    w->bitmaps = generation == RCGC_NGENS - 1;
    /* Deferring the gather's visits pays in a wide heap in no particular
     * order and costs ~10% on a chain in heap order: decided by what the
     * last full collection's mark saw. */
    w->widegather = w->bitmaps && rt->gc.wide_heap;
    /* flags & 7 is TRACKED | gen << 1: members are 1, 3, 5 up to gen g. */
    for (int g = 0; g <= generation; g++)
        w->memberset |= 1u << (RCGC_OF_TRACKED | ((unsigned)g << RCGC_OF_GEN_SHIFT));
    RCGC_ASSERT(w->memberset == GC_MEMBERSET(generation));
    /* Generation 0: both generation bits must be 0; 0..1: the high one. */
    w->youngfast = GC_YOUNGFAST(generation);
    w->scanrec = !w->bitmaps && rt->gc.young_garbage && !rt->gc.young_closed;
    /* K1 by sums in a generation-0 collection after a K1 one (gc_work). */
    w->k1gather = generation == 0 && rt->gc.young_closed;
    for (;;) {
        RCGC_ASSERT(rt->obj.nbirths == 0);   /* B3: set_size is then exact */
        size_t total = set_size(rt, generation);
        if (total == 0)
            return RCGC_OK;
        size_t walked = pools_to_walk(rt, generation), npools = walked;
        if (npools > total)
            npools = total;   /* a pool walked holds at least one member */
        size_t per = sizeof(rcgc_object *) + sizeof(uint32_t);
        if (total > (SIZE_MAX - npools * sizeof(gc_poolset)) / per)
            return RCGC_ENOMEM;
        /* The OOM handler may run user code that tracks new objects: size
         * again after the allocation and retry if the set grew.  Objects
         * it made from the free cache are in the birth log: settled first
         * (B3), so that they are counted in the pools walked and none
         * carries scratch bits into the trial deletion (C2). */
        size_t bytes = npools * sizeof(gc_poolset) + total * per;
        void *mem = rcgc_mem_domain_alloc(rt, RCGC_DOMAIN_RAW, bytes);
        if (mem == NULL)
            return RCGC_ENOMEM;
        rcgc_obj_settle(rt);
        if (set_size(rt, generation) > total || pools_to_walk(rt, generation) > walked) {
            rcgc_mem_domain_free(rt, RCGC_DOMAIN_RAW, mem);
            continue;
        }
        w->pools = mem;
        w->cappools = npools;
        w->objs = (rcgc_object **)(w->pools + npools);
        w->saved = (uint32_t *)(w->objs + total);
        w->cap = total;
        /* A young mark uses objs as its stack (mark_set); the later
         * phases grow the stack when they need one (push). */
        if (w->bitmaps) {
            size_t sc = total < GC_STACK_INITIAL ? total : GC_STACK_INITIAL;
            w->stack = quiet_realloc(rt, NULL, sc * sizeof *w->stack);
            w->stackcap = w->stack ? sc : 0;
        }
        return RCGC_OK;
    }
}

static void work_free(gc_work *w)
{
    if (w->pools)
        rcgc_mem_domain_free(w->rt, RCGC_DOMAIN_RAW, w->pools);
    if (w->stack)
        rcgc_mem_domain_free(w->rt, RCGC_DOMAIN_RAW, w->stack);
    w->pools = NULL;
    w->objs = NULL;
    w->stack = NULL;
}

long rcgc_gc_collect_main(rcgc_runtime *rt, int generation, long *collected,
                          long *uncollectable)
{
    rcgc_gc_state *gs = &rt->gc;
    RCGC_ASSERT(gs->collecting);
    RCGC_ASSERT(generation >= 0 && generation < RCGC_NGENS);
    /* B3 (runtime.h): the birth log settled, so that every tracked object
     * has its pool bits and none uses the scratch bits. */
    rcgc_obj_settle(rt);
    gc_work w;
    if (work_alloc(&w, rt, generation) != RCGC_OK)
        return RCGC_ENOMEM;

    double t0 = 0;
    if (gs->debug & RCGC_DEBUG_STATS) {
        fprintf(stderr, "gc: collecting generation %d...\n", generation);
        show_stats_each_generation(rt);
        t0 = rcgc_os_monotonic();
    }

    /* CPython's counters: a collection of g counts as one for g+1 and
     * resets 0..g. */
    if (generation + 1 < RCGC_NGENS)
        gs->gens[generation + 1].count += 1;
    for (int i = 0; i <= generation; i++)
        gs->gens[i].count = 0;

    unsigned g = (unsigned)generation;
    unsigned old = g + 1 < RCGC_NGENS ? g + 1 : g;
    long m = 0;   /* collected */
    long nunc = 0; /* uncollectable */

    /* Steps 1-4: trial deletion (no user code runs until the holds, C2). */
    size_t nreach = 0;
    unsigned need = 0;
    size_t u = w.cap ? trial_deletion_main(&w, old, &nreach, &need) : 0;
    if (g == 1) {
        gs->long_lived_pending += (long)nreach;
    } else if (g == 2) {
        gs->long_lived_pending = 0;
        gs->long_lived_total = (long)nreach;
    }

    /* The partition's K1 (nothing recorded) only where step 9 follows at
     * once. */
    RCGC_ASSERT(!w.kclosed ||
                (need == 0 && !(gs->debug & (RCGC_DEBUG_SAVEALL | RCGC_DEBUG_COLLECTABLE))));
    if (u > 0 && need == 0 && !(gs->debug & (RCGC_DEBUG_SAVEALL | RCGC_DEBUG_COLLECTABLE))) {
        /* Nothing to finalize, no weak references, nothing to print: step
         * 9 at once, straight from the pool sets' bitmaps (delete_garbage
         * below explains the loop); objs was never written for these. */
        m += (long)u;
        /* K1: a closed quiet set (found so by the partition, or by
         * rcgc_gc_delete_closed for a small set), freed without clears. */
        if ((w.kclosed || (!w.bitmaps && u <= GC_DELETE_SMALL && w.refcache.type2 != NULL)) &&
            rcgc_gc_delete_closed(&w)) {
        } else if (u <= GC_DELETE_SMALL) {
            rcgc_gc_clear_unreachable_pooled(&w);
            for (size_t i = 0; i < w.nforeign; i++) {
                rcgc_object *o = w.objs[i];
                w.dirtyrank = SIZE_MAX;   /* D1: not worth noting for foreign ones */
                rcgc_obj_clear_cached(&w.refcache, o);
            }
            rcgc_gc_delete_by_pool(&w, old, 1);
        } else {
            rcgc_gc_delete_by_pool(&w, old, 0);
            for (size_t i = 0; i < w.nforeign; i++) {
                rcgc_object *o = w.objs[i];
                rcgc_obj_clear_cached(&w.refcache, o);
            }
        }
        for (size_t i = 0; i < w.nforeign; i++)
            rcgc_gc_release_cleared(rt, w.objs[i], old);
        u = 0;
    }
    if (u > 0) {
        rcgc_object **objs = w.objs;
        list_unreachable(&w);
        /* Legacy finalizers: objs[uc..u) become uncollectable. */
        size_t uc = (need & NEED_LEGACY) ? rcgc_gc_move_legacy(&w, u) : u;
        if (gs->debug & RCGC_DEBUG_COLLECTABLE)
            for (size_t i = 0; i < uc; i++)
                rcgc_gc_debug_object("collectable", objs[i]);

        int ran = 0;
        if (need & NEED_WEAK)
            m += rcgc_weak_gc_handle(rt, objs, uc, old, &ran);

        /* PEP 442 finalizers, once per object ever. */
        for (size_t i = 0; (need & NEED_FINALIZE) && i < uc; i++) {
            rcgc_object *o = objs[i];
            const rcgc_type *t = o->type;
            if (t->finalize && !(o->flags & RCGC_OF_FINALIZED)) {
                o->flags |= RCGC_OF_FINALIZED;
                t->finalize(o);
                ran = 1;
            }
        }

        /* User code ran: drop what it freed, keep what it resurrected. */
        size_t uf = uc;
        if (ran) {
            rcgc_gc_release_orphans(&w, &uc, &u);
            uf = rcgc_gc_handle_resurrected(&w, uc, old);
            /* rcgc_gc_handle_resurrected left the uncollectable part where
             * it was: objs[uc..u).  Move it next to the final set. */
            if (uf < uc)
                memmove(objs + uf, objs + uc, (u - uc) * sizeof *objs);
            u -= uc - uf;
            uc = uf;
        }

        /* delete_garbage: save the final set, or clear it and let go.  A
         * set bigger than the cache: each object is cleared and let go of
         * at once, as CPython does: an object whose hold is then its last
         * reference is freed, one still referenced (by garbage not cleared
         * yet, or by what user code did) moves to `old` and dies when its
         * last reference goes, while still in the cache.  Objects after it
         * keep their hold, so nothing of objs[i..uf) is freed before its
         * turn.  A small set (in the cache anyway): every object is
         * cleared first, then let go of, so that most holds are the last
         * reference and no object is moved only to die at once. */
        m += (long)uf;
        if (gs->debug & RCGC_DEBUG_SAVEALL) {
            rcgc_list *garbage = rcgc_gc_garbage_list(rt);
            for (size_t i = 0; i < uf; i++)
                if (garbage != NULL)
                    (void)rcgc_list_append(garbage, objs[i]);
            for (size_t i = 0; i < uf; i++)
                rcgc_gc_release_cleared(rt, objs[i], old);
        } else if (uf <= GC_DELETE_SMALL) {
            for (size_t i = 0; i < uf; i++) {
                rcgc_object *o = objs[i];
                rcgc_obj_clear_cached(&w.refcache, o);
            }
            for (size_t i = 0; i < uf; i++)
                rcgc_gc_release_cleared(rt, objs[i], old);
        } else {
            for (size_t i = 0; i < uf; i++) {
                rcgc_object *o = objs[i];
                rcgc_obj_clear_cached(&w.refcache, o);
                rcgc_gc_release_cleared(rt, o, old);
            }
        }

        /* The uncollectable set: what clearing freed is not counted, nor
         * are weak references whose callback ran (CPython's handle_weakrefs
         * moved them to the old generation, out of the set: they lost
         * RCGC_OF_MARK there). */
        if (u > uf) {
            size_t fc = 0, fu = u - uf;
            rcgc_object **fin = objs + uf;
            memmove(objs, fin, fu * sizeof *objs);
            rcgc_gc_release_orphans(&w, &fc, &fu);
            size_t kept = 0;
            for (size_t i = 0; i < fu; i++) {
                rcgc_object *o = objs[i];
                if (o->flags & RCGC_OF_MARK)
                    objs[kept++] = o;
                else
                    rcgc_decref(o);   /* it left the set: just the hold */
            }
            fu = kept;
            nunc = (long)fu;
            if (gs->debug & RCGC_DEBUG_UNCOLLECTABLE)
                for (size_t i = 0; i < fu; i++)
                    rcgc_gc_debug_object("uncollectable", objs[i]);
            u = fu;
        } else {
            u = 0;
        }
    }

    if (gs->debug & RCGC_DEBUG_STATS)
        fprintf(stderr, "gc: done, %ld unreachable, %ld uncollectable, %.4fs elapsed\n",
                m + nunc, nunc, rcgc_os_monotonic() - t0);

    /* handle_legacy_finalizers: legacy objects (everything, with
     * DEBUG_SAVEALL) go to gc.garbage; the set survives in `old`. */
    if (u > 0) {
        rcgc_object **objs = w.objs;
        rcgc_list *garbage = rcgc_gc_garbage_list(rt);
        for (size_t i = 0; i < u; i++) {
            rcgc_object *o = objs[i];
            if (garbage != NULL &&
                ((gs->debug & RCGC_DEBUG_SAVEALL) || o->type->legacy_del))
                (void)rcgc_list_append(garbage, o);
        }
        for (size_t i = 0; i < u; i++) {
            rcgc_object *o = objs[i];
            o->flags &= ~RCGC_OF_MARK;
            rcgc_gc_promote(rt, o, old);
            rcgc_decref(o);
        }
    }
    /* The next young scan records only if this set was not K1's. */
    if (!w.bitmaps)
        gs->young_closed = w.kclosed;
    work_free(&w);

    if (collected)
        *collected = m;
    if (uncollectable)
        *uncollectable = nunc;
    gs->stats[generation].collections++;
    gs->stats[generation].collected += m;
    gs->stats[generation].uncollectable += nunc;
#if RCGC_DEBUG >= 3
    /* Not while the trashcan holds deferred deallocations: those objects are
     * still tracked with refcount 0, which rcgc_validate's O1 rejects. */
    if (rt->obj.npending == 0 &&
        (rcgc_validate(rt, stderr) != RCGC_OK || rcgc_weak_validate(rt, stderr) != RCGC_OK))
        rcgc_fatal("gc: the heap is inconsistent after collecting generation %d", generation);
#endif
    return m + nunc;
}

/* ------------------------------------------------ callbacks, automatic */

/* gc.callbacks: called by index so that a callback may add or remove
 * callbacks (the list is re-read each time, as CPython iterates its list). */
static void invoke_callbacks(rcgc_runtime *rt, const char *phase, int generation,
                             long collected, long uncollectable)
{
    rcgc_gc_info info = {generation, collected, uncollectable};
    for (size_t i = 0; i < rt->gc.ncallbacks; i++) {
        rcgc_gc_cb cb = rt->gc.callbacks[i];
        cb.fn(rt, phase, &info, cb.arg);
    }
}

long rcgc_gc_collect_with_callbacks(rcgc_runtime *rt, int generation)
{
    RCGC_ASSERT(rt->gc.collecting);
    invoke_callbacks(rt, "start", generation, 0, 0);
    long collected = 0, uncollectable = 0;
    long result = rcgc_gc_collect_main(rt, generation, &collected, &uncollectable);
    invoke_callbacks(rt, "stop", generation, collected, uncollectable);
    return result;
}

/*
 * CPython's rule for holding back full collections: collect generation 2
 * only when the objects that entered it since the last full collection
 * (long_lived_pending) are at least 25% of those that survived it
 * (long_lived_total).
 *
 * CPython issue #122569: neither number shrinks when those objects die, so a
 * program that promotes objects and then drops them gets a pointless full
 * collection again and again.  Here both are clamped to what generation 2
 * holds now: total to the live count, pending to the rest, charging deaths
 * to the pending (youngest) objects first - the generational hypothesis.
 * docs/design-gc.md discusses the choice.
 */
static int full_collection_due(rcgc_gc_state *gs)
{
    long live = gs->gens[2].nobjects;
    if (gs->long_lived_total > live)
        gs->long_lived_total = live;
    if (gs->long_lived_pending > live - gs->long_lived_total)
        gs->long_lived_pending = live - gs->long_lived_total;
    return gs->long_lived_pending >= gs->long_lived_total / 4;
}

/* The oldest generation whose count exceeds its threshold, with the full
 * collection rule above (CPython's gc_collect_generations). */
static void collect_generations(rcgc_runtime *rt)
{
    rcgc_gc_state *gs = &rt->gc;
    for (int i = RCGC_NGENS - 1; i >= 0; i--) {
        if (gs->gens[i].count > gs->gens[i].threshold) {
            if (i == RCGC_NGENS - 1 && !full_collection_due(gs))
                continue;
            (void)rcgc_gc_collect_with_callbacks(rt, i);
            break;
        }
    }
}

void rcgc_gc_maybe_collect(rcgc_runtime *rt)
{
    rcgc_gc_state *gs = &rt->gc;
    if (gs->gens[0].count > gs->gens[0].threshold && gs->enabled && gs->gens[0].threshold &&
        !gs->collecting) {
        gs->collecting = 1;
        collect_generations(rt);
        gs->collecting = 0;
    }
}

/* ----------------------------------------------------- life and death */

int rcgc_gc_state_init(rcgc_runtime *rt)
{
    rcgc_gc_state *gs = &rt->gc;
    static const long thresholds[RCGC_NGENS] = {700, 10, 10};
    for (int i = 0; i < RCGC_NGENS; i++) {
        gs->gens[i].count = 0;
        gs->gens[i].threshold = thresholds[i];
    }
    gs->enabled = 1;
    gs->collecting = 0;
    gs->debug = 0;
    gs->long_lived_total = 0;
    gs->long_lived_pending = 0;
    gs->wide_heap = 0;
    gs->garbage = NULL;   /* created on first use */
    return RCGC_OK;
}

/* CPython's _PyGC_DumpShutdownStats, to stderr (CPython routes it through a
 * ResourceWarning, which Python hides by default; a C program has no
 * warnings filter, so it is printed whenever its conditions hold). */
static void dump_shutdown_stats(rcgc_runtime *rt)
{
    rcgc_gc_state *gs = &rt->gc;
    if ((gs->debug & RCGC_DEBUG_SAVEALL) || gs->garbage == NULL)
        return;
    size_t n = rcgc_list_len(gs->garbage);
    if (n == 0)
        return;
    if (gs->debug & RCGC_DEBUG_UNCOLLECTABLE) {
        fprintf(stderr, "gc: %zu uncollectable objects at shutdown\n", n);
        fputs("      [", stderr);
        for (size_t i = 0; i < n; i++) {
            const rcgc_object *o = rcgc_list_get(gs->garbage, i);
            fprintf(stderr, "%s<%s %p>", i ? ", " : "", o->type->name, (const void *)o);
        }
        fputs("]\n", stderr);
    } else {
        fprintf(stderr, "gc: %zu uncollectable objects at shutdown; use "
                        "rcgc_gc_set_debug(rt, RCGC_DEBUG_UNCOLLECTABLE) to list them\n", n);
    }
}

typedef struct hold_ctx {
    rcgc_object **objs;
    size_t n, cap;
} hold_ctx;

static int hold_one(rcgc_object *o, void *arg)
{
    hold_ctx *h = arg;
    if (o->refcnt == 0 || h->n == h->cap)
        return 0;
    h->objs[h->n++] = rcgc_incref(o);
    return 0;
}

/*
 * After the last collection, what is still tracked is referenced by the
 * program or by uncollectable cycles; the runtime is about to release it
 * all.  Break every container safely before that: hold each object, clear
 * each, then let go (C3), so that no object dies while the heap is being
 * walked.  (runtime.c then finds only cleared containers.)  Nothing is done
 * if the work array cannot be allocated.
 */
static void clear_remaining(rcgc_runtime *rt)
{
    size_t total = set_size(rt, RCGC_NGENS - 1) + rcgc_obj_nlogged(rt) +   /* B4 */
                   (size_t)rt->gc.permanent.nobjects;
    if (total == 0)
        return;
    hold_ctx h = {rcgc_mem_domain_alloc(rt, RCGC_DOMAIN_RAW, total * sizeof(rcgc_object *)),
                  0, total};
    if (h.objs == NULL)
        return;
    rcgc_obj_foreach_tracked(rt, RCGC_GEN_PERMANENT, hold_one, &h);
    for (size_t i = 0; i < h.n; i++)
        rcgc_obj_clear(h.objs[i]);
    for (size_t i = 0; i < h.n; i++)
        rcgc_decref(h.objs[i]);
    rcgc_mem_domain_free(rt, RCGC_DOMAIN_RAW, h.objs);
}

void rcgc_gc_shutdown(rcgc_runtime *rt)
{
    rcgc_gc_state *gs = &rt->gc;
    gs->shutting_down = 1;
    /* atexit first (weakref.finalize), as Python runs atexit before its
     * final collections. */
    rcgc_weak_atexit(rt);
    if (!gs->collecting) {
        gs->collecting = 1;
        /* Finalizers may leave new garbage behind: collect again while
         * something was collected, a few times at most. */
        for (int i = 0; i < 4; i++) {
            long collected = 0;
            if (rcgc_gc_collect_main(rt, RCGC_NGENS - 1, &collected, NULL) < 0 ||
                collected == 0)
                break;
        }
        gs->collecting = 0;
    }
    dump_shutdown_stats(rt);
    gs->shutting_down = 2;
    RCGC_CLEAR(gs->garbage);
    /* No collection may run during the teardown that follows (C4). */
    gs->collecting = 1;
    clear_remaining(rt);
}

void rcgc_gc_state_fini(rcgc_runtime *rt)
{
    rcgc_gc_state *gs = &rt->gc;
    if (gs->callbacks)
        rcgc_mem_domain_free(rt, RCGC_DOMAIN_RAW, gs->callbacks);
    gs->callbacks = NULL;
    gs->ncallbacks = gs->capcallbacks = 0;
    gs->garbage = NULL;
}
