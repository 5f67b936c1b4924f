/*
 * gcdelete.c - the cycle collector's phases after trial deletion (step 5
 * of gc.c's list, but for the weak references and PEP 442 finalizers,
 * which rcgc_gc_collect_main runs itself), each called once per collection
 * by rcgc_gc_collect_main:
 * legacy finalizers and all they reach become uncollectable
 * (rcgc_gc_move_legacy); after user code ran, objects it freed drop out
 * (rcgc_gc_release_orphans) and those it resurrected leave the set
 * (rcgc_gc_handle_resurrected); plain garbage is cleared and freed a pool
 * at a time (rcgc_gc_delete_by_pool, rcgc_gc_clear_unreachable_pooled).
 *
 * gcwork.h holds the work space they share with gc.c and the per-object
 * helpers; docs/design-gc.md walks through the phases.
 */
#include <string.h>

#include "gc.h"
#include "gcwork.h"
#include "pool.h"
#include "runtime.h"

/* -------------------------------------------------- legacy finalizers */

/* Uncollectable objects trade RCGC_OF_COLLECTING for RCGC_OF_MARK, which
 * they keep while they are in the uncollectable set. */
static int visit_legacy(rcgc_object *r, void *arg)
{
    unsigned f = r->flags;
    if (f & RCGC_OF_COLLECTING) {
        r->flags = (f & ~RCGC_OF_COLLECTING) | RCGC_OF_MARK;
        rcgc_gc_push(arg, r);
    }
    return 0;
}

/*
 * CPython's move_legacy_finalizers + move_legacy_finalizer_reachable over
 * the unreachable objs[0..u): objects whose type has legacy_del, and every
 * unreachable object they reach, lose RCGC_OF_COLLECTING and move to the
 * end of the range, in CPython's order (legacy objects in set order, then
 * what they reach breadth first).  Returns the number of collectable
 * objects left at the front.
 */
size_t rcgc_gc_move_legacy(gc_work *w, size_t u)
{
    rcgc_object **objs = w->objs;
    w->sp = 0;
    for (size_t i = 0; i < u; i++) {
        rcgc_object *o = objs[i];
        if (o->type->legacy_del) {
            o->flags = (o->flags & ~RCGC_OF_COLLECTING) | RCGC_OF_MARK;
            rcgc_gc_push(w, o);
        }
    }
    if (w->sp == 0 && !w->overflow)
        return u;
    /* The stack is used as a queue here, so that it ends up holding the
     * uncollectable set in order. */
    for (size_t head = 0; head < w->sp; head++) {
        rcgc_object *o = w->stack[head];
        rcgc_obj_traverse(o, visit_legacy, w);
    }
    int ordered = !w->overflow;
    while (w->overflow) {
        w->overflow = 0;
        size_t start = w->sp;
        for (size_t i = 0; i < u; i++) {
            rcgc_object *o = objs[i];
            if (!(o->flags & RCGC_OF_COLLECTING))
                rcgc_obj_traverse(o, visit_legacy, w);
        }
        for (size_t head = start; head < w->sp; head++)
            rcgc_obj_traverse(w->stack[head], visit_legacy, w);
    }
    size_t c = 0;
    if (ordered) {
        for (size_t i = 0; i < u; i++)
            if (objs[i]->flags & RCGC_OF_COLLECTING)
                objs[c++] = objs[i];
        RCGC_ASSERT(c + w->sp == u);
        memcpy(objs + c, w->stack, w->sp * sizeof *objs);
    } else {
        /* Not enough memory for the queue: partition in place (the order
         * of gc.garbage then follows the heap, not CPython's). */
        size_t j = u;
        while (c < j) {
            if (objs[c]->flags & RCGC_OF_COLLECTING) {
                c++;
            } else {
                rcgc_object *t = objs[--j];
                objs[j] = objs[c];
                objs[c] = t;
            }
        }
    }
    w->sp = 0;
    return c;
}

/* ----------------------------------------------- after user code ran */

/*
 * Objects of the held set whose only reference left is the collector's
 * hold: CPython would have freed each the moment user code dropped its
 * last reference.  Free them now (which may orphan others, hence the
 * passes, alternating direction so that chains in either heap order go in
 * two).  Freed slots become NULL; then both ranges [0, *uc) and [*uc, *u)
 * are compacted and the bounds updated.
 */
void rcgc_gc_release_orphans(gc_work *w, size_t *uc, size_t *u)
{
    rcgc_object **a = w->objs;
    size_t len = *u;
    int changed, forward = 1;
    do {
        changed = 0;
        for (size_t k = 0; k < len; k++) {
            size_t i = forward ? k : len - 1 - k;
            rcgc_object *o = a[i];
            if (o != NULL && o->refcnt == 1) {
                a[i] = NULL;
                o->flags &= ~(RCGC_OF_COLLECTING | RCGC_OF_REACHABLE | RCGC_OF_MARK);
                rcgc_decref(o);
                changed = 1;
            }
        }
        forward = !forward;
    } while (changed);
    size_t c = 0;
    for (size_t i = 0; i < *uc; i++)
        if (a[i] != NULL)
            a[c++] = a[i];
    size_t newuc = c;
    for (size_t i = *uc; i < len; i++)
        if (a[i] != NULL)
            a[c++] = a[i];
    *uc = newuc;
    *u = c;
}

/*
 * CPython's handle_resurrected_objects over the held collectable set
 * objs[0..uc): trial deletion again, within the set, discounting the
 * collector's hold.  Objects a finalizer made reachable again, and all
 * they reach, leave the set for generation `old` (their hold is released:
 * they stay alive).  Returns the size of the final set, compacted first.
 */
size_t rcgc_gc_handle_resurrected(gc_work *w, size_t uc, unsigned old)
{
    rcgc_object **objs = w->objs;
    for (size_t i = 0; i < uc; i++) {
        rcgc_object *o = objs[i];
        RCGC_ASSERT(o->flags & RCGC_OF_COLLECTING);
        RCGC_ASSERT(o->refcnt >= 1);
        w->saved[i] = o->refcnt;
        o->refcnt--;                     /* the collector's own hold */
    }
    /* A resurrected object is referenced from outside the set or by
     * another resurrected one, so its refcount is at least 2 with the hold:
     * dropping the hold inside rcgc_gc_trial_deletion cannot free it. */
    size_t nreach;
    return rcgc_gc_trial_deletion(w, uc, old, 1, &nreach);
}

/* The address of a bitmap word's first block, kept whole in one register
 * by the loops over the word's bits (the compiler would otherwise add the
 * pool's base and the word's offset again for every object). */
static inline void word_opaque(char **word)
{
#if defined(__GNUC__)
    __asm__("" : "+r"(*word));
#else
    (void)word;
#endif
}

/* On a rare path: memory is read again after it, so that the common path
 * can test a header field in one compare with memory instead of keeping
 * it in a register for the rare one. */
static RCGC_ALWAYS_INLINE void reload_barrier(void)
{
#if defined(__GNUC__)
    __asm__ volatile("" : : : "memory");
#endif
}

/* Q2: the listed fields (offsets off0, off1: the quiet type's, off1 0 if
 * it has one field) of the nquiet quiet objects at the head of a batch's
 * chain from first dropped again, after user code that may have stored
 * into them (their memory is not freed until the chain goes).  Returns
 * whether anything was dropped (which may have run user code again). */
static RCGC_NOINLINE int requiet_chain(void *first, unsigned nquiet, unsigned off0,
                                       unsigned off1)
{
    int dropped = 0;
    void *p = first;
    for (unsigned j = 0; j < nquiet; j++, p = *(void **)p) {
        rcgc_object *o = p;
        if (rcgc_ref_load(o, off0) != NULL ||
            (off1 != 0 && rcgc_ref_load(o, off1) != NULL)) {
            dropped = 1;
            rcgc_ref_clear(o, off0);
            if (off1 != 0)
                rcgc_ref_clear(o, off1);
        }
    }
    return dropped;
}

/* The first clears of one bitmap word's members (b; word: the address of
 * its first block) in a heap with refs types (rcgc_gc_clear_first with
 * refs 1): F1, a hit on the cache's two-field type with its offsets in
 * locals, taken again from the cache after anything else (the only thing
 * that fills it; a referent's deallocation uses its own cache). */
static RCGC_ALWAYS_INLINE void clear_word_cached(gc_work *w, uint64_t b, char *word,
                                                 size_t size)
{
    const rcgc_type *type2 = w->refcache.type2;
    size_t off0 = w->refcache.off0, off1 = w->refcache.off1;
    for (; b; b &= b - 1) {
        rcgc_object *o = (rcgc_object *)(word + gc_low_bit(b) * size);
        if (RCGC_LIKELY(o->type == type2)) {
            rcgc_gc_ref_clear_first(w, o, (unsigned)off0);
            rcgc_gc_ref_clear_first(w, o, (unsigned)off1);
            continue;
        }
        reload_barrier();   /* o->type read again there (F1) */
        rcgc_gc_clear_first(w, o, 1);
        type2 = w->refcache.type2;
        off0 = w->refcache.off0;
        off1 = w->refcache.off1;
    }
}

/* A header's first word: refcnt and flags as one 64-bit value (B2). */
_Static_assert(offsetof(rcgc_object, refcnt) == 0 && offsetof(rcgc_object, flags) == 4 &&
                   sizeof(((rcgc_object *)0)->refcnt) == 4,
               "B2: refcnt and flags are the header's first word");
static inline uint64_t head_word(const rcgc_object *o)
{
    uint64_t v;
    memcpy(&v, o, sizeof v);
    return v;
}

/* B2: whether a header's first word (refcnt and flags) says refcount
 * 1, tracked, generation 0, no weak references, not foreign (any other
 * flag, COLLECTING among them): one AND and one compare. */
static inline int batch_head_gen0(uint64_t w)
{
    const uint32_t fmask = RCGC_OF_WEAKREFS | RCGC_OF_TRACKED | RCGC_OF_FOREIGN | RCGC_OF_GEN_MASK;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (w & (((uint64_t)fmask << 32) | 0xffffffffu)) ==
           (((uint64_t)RCGC_OF_TRACKED << 32) | 1u);
#else
    return (w & (((uint64_t)0xffffffffu << 32) | fmask)) ==
           (((uint64_t)1 << 32) | RCGC_OF_TRACKED);
#endif
}

/* The batch test of one bitmap word of a pool (delete_by_pool_kind):
 * bk holds the word's candidates, word the address of its first block.
 * Returns the word's batch members (candidates that failed the test
 * removed); each is counted in *nbatch and *ngen, a quiet one linked at
 * *link, a loud one appended to bobj.  checkdirty: a constant, 0 when
 * dirtyto is 0 (no member of the pool is dirty: every member of qtype is
 * quiet, B1), so that the usual copy has no address test. */
static RCGC_ALWAYS_INLINE uint64_t batch_word(uint64_t bk, char *word, size_t size,
                                              const rcgc_type *qtype, uintptr_t dirtyto,
                                              const int refs, const int checkdirty,
                                              uint64_t *ngen, unsigned *nbatch, void ***link,
                                              rcgc_object **bobj, unsigned *nloud)
{
    for (uint64_t b = bk; b; b &= b - 1) {
        size_t i = gc_low_bit(b);
        rcgc_object *o = (rcgc_object *)(word + i * size);
        /* rcgc_gc_release_cleared's test but for the type's finalizers:
         * the set needs no finalization (w->need == 0), so no member has
         * a legacy finalizer or a PEP 442 one that has not run, and
         * neither can change. */
        RCGC_ASSERT(o->type->legacy_del == NULL &&
                    (o->type->finalize == NULL || (o->flags & RCGC_OF_FINALIZED)));
        /* B2: a generation-0 member passes the refcount test, the flags
         * test and the generation test in one compare of the header's
         * first word (refcnt and flags); the others take the second. */
        if (RCGC_UNLIKELY(!batch_head_gen0(head_word(o)))) {
            reload_barrier();   /* the header read again below (B2) */
            if (o->refcnt != 1 ||
                (o->flags & (RCGC_OF_WEAKREFS | RCGC_OF_TRACKED | RCGC_OF_FOREIGN)) !=
                    RCGC_OF_TRACKED) {
                bk &= ~((uint64_t)1 << i);
                continue;
            }
            *ngen += (uint64_t)1 << (((o->flags & RCGC_OF_GEN_MASK) >> RCGC_OF_GEN_SHIFT) * 16);
        }
        ++*nbatch;
        if (RCGC_LIKELY(refs && o->type == qtype && (!checkdirty || (uintptr_t)o > dirtyto))) {
            /* Quiet: freed at once (its header becomes the chain's link
             * and the freed marker). */
#if RCGC_DEBUG >= 1
            rcgc_gc_assert_cleared(o);
#endif
            o->type = RCGC_FREED_TYPE;
            **link = o;
            *link = (void **)o;
            continue;
        }
        o->refcnt = 0;
        o->flags = (o->flags & ~(RCGC_OF_COLLECTING | RCGC_OF_TRACKED | RCGC_OF_GEN_MASK)) |
                   RCGC_OF_DYING;
        bobj[(*nloud)++] = o;
    }
    return bk;
}

/* The first clear of every unreachable member of pool set ps (its
 * blocks from base, `size` bytes apart), in the copy for the set's kind
 * of heap (RC2): the cached clears word by word for refs heaps. */
static RCGC_ALWAYS_INLINE void clear_pool_first(gc_work *w, const gc_poolset *ps, char *base,
                                                size_t size, const int refs)
{
    for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++) {
        char *word = base + (size_t)k * 64 * size;
        word_opaque(&word);
        uint64_t b = ps->members[k] & ~ps->reached[k];
        if (refs) {
            clear_word_cached(w, b, word, size);
            continue;
        }
        for (; b; b &= b - 1) {
            rcgc_object *o = (rcgc_object *)(word + gc_low_bit(b) * size);
            rcgc_gc_clear_first(w, o, refs);
        }
    }
}

/* Step 9 for a set of pooled garbage that needs no finalization, pool set
 * by pool set: every unreachable object of the pool is cleared (unless
 * `cleared`: the caller has cleared the whole set already), then every
 * hold let go of.  A pool's objects are in the cache together, and most of
 * them are then referenced by nothing but the hold (what referenced them
 * was garbage, cleared): they are freed directly, as a batch, not moved to
 * `old` to die a moment later.  The bitmaps are the collector's, so a pool
 * freed by its last release is not read again.  A big set comes with
 * cleared == 0 (each pool cleared just before its releases, while in the
 * cache), a small one with cleared == 1 (everything cleared first, so that
 * a hold is the last reference also when the referrer was in another
 * pool). */
static RCGC_ALWAYS_INLINE void delete_by_pool_kind(gc_work *w, unsigned old, int cleared,
                                                   const int refs)
{
    rcgc_runtime *rt = w->rt;
    RCGC_ASSERT(w->need == 0);
    size_t pre = rt->mem.debug_pre;
    for (size_t p = 0; p < w->npools; p++) {
        const gc_poolset *ps = &w->pools[p];
        rcgc_pool *pool = ps->pool;
        char *base = pool->mem + pre;
        size_t size = pool->size;
        /* D1 from this pool's first clear on (what ran before cannot
         * touch fields not cleared yet). */
        if (!cleared) {
            rcgc_gc_dirty_init(w, refs);
            w->clearrank = p + 1;
        }
        if (!cleared)
            clear_pool_first(w, ps, base, size, refs);
        /* D1: a member at an address up to dirtyto may hold references
         * again (user code ran after its first clear); the second clear
         * of any other would find every listed field NULL (and a type with
         * a clear of its own made its first clear an event).  No user code
         * runs in the batch test below, so it holds there too. */
        uintptr_t dirtyto = p + 1 < w->dirtyrank    ? UINTPTR_MAX
                            : p + 1 == w->dirtyrank ? w->dirtyobj
                                                    : 0;
        /* Q1: the quiet type, whose batch members need nothing but their
         * memory freed: the refs cache's type (no traverse, no clear: RC1)
         * if it has no dealloc; NULL (nothing quiet) in a heap of traverse
         * types.  Its offsets are kept for requiet_chain (the cache may
         * change in the loud loop). */
        const rcgc_type *qtype = NULL;
        unsigned qoff0 = 0, qoff1 = 0;
        if (refs && w->refcache.type != NULL && w->refcache.type->dealloc == NULL) {
            qtype = w->refcache.type;
            qoff0 = w->refcache.off0;
            qoff1 = w->refcache.off1;
        }
        /* The objects whose hold is now the last reference and that need
         * nothing but freeing (rcgc_gc_release_cleared's direct case) leave
         * the pool's tracking as a batch: one bitmap update per word, the
         * counts once per pool (P3, P4, G1).  No user code runs in this
         * pass; the rest of the deallocation follows object by object. */
        uint64_t batch[RCGC_POOL_BITMAP_WORDS];
        /* The batch's loud objects (all but the quiet ones) in address
         * order (loop 2 walks this instead of the bitmaps again). */
        rcgc_object *bobj[RCGC_POOL_BITMAP_WORDS * 64];
        unsigned nbatch = 0, nloud = 0;
        /* The batch's objects of generations 1-3, 16 bits a generation (a
         * pool has at most 1024 blocks), generation g at bit 16 * g: a
         * generation-0 object (all of a young set, usually) adds nothing;
         * generation 0's count is what is left of nbatch. */
        uint64_t ngen = 0;
        /* The batch's chain (rcgc_obj_free_pool_chain: any order): the
         * quiet objects first, linked here as they are met (Q1: their
         * deallocation is over once they are untracked: no second clear
         * is due, D1, and nothing to call), then the loud ones, linked in
         * loop 2 once their dealloc has run. */
        void *first = NULL;
        void **link = &first;
        for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++) {
            /* Every candidate is in the batch until its test fails. */
            uint64_t bk = ps->members[k] & ~ps->reached[k];
            char *word = base + (size_t)k * 64 * size;
            word_opaque(&word);
            /* B1: the usual case, no member of the pool dirty (dirtyto
             * 0), in its own copy without the address test. */
            if (RCGC_LIKELY(dirtyto == 0))
                bk = batch_word(bk, word, size, qtype, 0, refs, 0, &ngen, &nbatch, &link, bobj,
                                &nloud);
            else
                bk = batch_word(bk, word, size, qtype, dirtyto, refs, 1, &ngen, &nbatch, &link,
                                bobj, &nloud);
            batch[k] = bk;
            if (bk) {
                RCGC_ASSERT((pool->tracked[k] & bk) == bk);
                pool->tracked[k] &= ~bk;
            }
        }
        if (nbatch) {
            pool->ntracked = (uint16_t)(pool->ntracked - nbatch);
            unsigned n0 = nbatch;
            for (unsigned g = 1; g <= RCGC_GEN_PERMANENT; g++) {
                unsigned ng = (unsigned)(ngen >> (g * 16)) & 0xffffu;
                *rcgc_gen_nobjects(rt, g) -= (long)ng;
                n0 -= ng;
            }
            rt->gc.gens[0].nobjects -= (long)n0;
            /* As each object's deallocation lowers count[0] if positive
             * (every tracked object is of a GC type: O1, T1). */
            long *count0 = &rt->gc.gens[0].count;
            *count0 = *count0 > (long)nbatch ? *count0 - (long)nbatch : 0;
            unsigned nyoung = n0 + ((unsigned)(ngen >> 16) & 0xffffu);
            if (nyoung) {
                RCGC_ASSERT(pool->nyoung >= nyoung);
                pool->nyoung = (uint16_t)(pool->nyoung - nyoung);
                if (pool->nyoung == 0)
                    rcgc_pool_young_remove(rt, pool);
            }
        }
        /* Then, for the loud objects, what rcgc_obj_release does after
         * untracking: clear (again: a deallocation since may have stored
         * a reference), dealloc, free.  Each block whose dealloc has run
         * is marked freed and linked into the batch's chain through its
         * first word; the chain goes to the pool once every dealloc of the
         * batch has run, so the pool outlives them.  The pool outlives
         * the batch if anything else of the set is left in it, which the
         * last loop lets go of. */
        unsigned nquiet = nbatch - nloud;
        int ran = 0, loudcode = 0;
        for (unsigned j = 0; j < nloud; j++) {
            rcgc_object *o = bobj[j];
            const rcgc_type *t = o->type;
            if (!refs) {   /* traverse types: always */
                rcgc_gc_clear_kind(&w->refcache, o, 0);
            } else if ((uintptr_t)o <= dirtyto) {
                /* A reference stored since the first clear may be dropped
                 * here, and run user code (Q2): noted unless o is of the
                 * quiet type with both fields NULL (the common case: the
                 * first member of a big set's pool, dirty only by where
                 * D1's position lies). */
                if (t != qtype || rcgc_ref_load(o, qoff0) != NULL ||
                    (qoff1 != 0 && rcgc_ref_load(o, qoff1) != NULL)) {
                    loudcode = 1;
                    rcgc_gc_clear_kind(&w->refcache, o, 1);
                }
            }
#if RCGC_DEBUG >= 1
            else
                rcgc_gc_assert_cleared(o);
#endif
            if (t->dealloc) {
                dirtyto = UINTPTR_MAX;   /* the rest of this pool */
                ran = 1;
                t->dealloc(o);
            }
            o->type = RCGC_FREED_TYPE;
            *link = o;
            link = (void **)o;
        }
        /* Q2: user code in the loop above may have stored into a quiet
         * object, whose memory is still the batch's: its fields are
         * dropped again, until a pass drops nothing. */
        if (RCGC_UNLIKELY((ran | loudcode) && nquiet))
            while (requiet_chain(first, nquiet, qoff0, qoff1))
                ;
        /* A small set is cleared whole before any release: a dealloc
         * above, or a release below (any deallocation), may touch every
         * pool after this one.  A big set's later pools are cleared
         * later. */
        if (cleared && ran)
            w->dirtyrank = SIZE_MAX;
        if (nbatch)
            rcgc_obj_free_pool_chain(rt, pool, first, (void *)link, nbatch);
        for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++) {
            for (uint64_t b = ps->members[k] & ~ps->reached[k] & ~batch[k]; b; b &= b - 1) {
                rcgc_object *o =
                    (rcgc_object *)(base + (size_t)(k * 64 + (unsigned)__builtin_ctzll(b)) * size);
                if (cleared)
                    w->dirtyrank = SIZE_MAX;
                rcgc_gc_release_cleared(rt, o, old);
            }
        }
    }
}

/*
 * Step 9 of a closed quiet set (K1).  The unreachable set U of a young
 * collection that needs nothing (w->need == 0) is closed when every
 * member is pooled and of one two-field refs type without a dealloc (the
 * cache's type2: no traverse, no clear, RC1) and every non-NULL field of
 * a member refers to a member.  Clearing such a set drops only
 * references between members, none of which dies before its own release
 * (each holds the collector's hold, C3), so no user code can run: no
 * event for D1, every member quiet (Q1) with refcount 1 in the batch
 * test.  Its members are then freed as the batch would free them, with no
 * first clear and no batch test: what the two passes would write into
 * memory that is freed anyway (NULL fields, refcounts of members) is not
 * written.
 *
 * Closedness is counted, not traced: every reference to a member of U
 * comes from a member of U (one from a reached member or from outside the
 * set would have made it reachable), and every reference a member holds
 * is one of its listed fields, so the refcounts of U less the holds sum to
 * the references from U into U, and its non-NULL fields to those plus the
 * references leaving U.  The sums are equal exactly when none leaves.
 * One pass reads each member's type, refcount and fields; a set found not
 * closed (or of any other type, or with a foreign member, or under a user
 * allocator, whose frees are user code) returns 0 having written
 * nothing, and takes the usual first clears and batch.
 */
static RCGC_ALWAYS_INLINE int closed_check(const gc_work *w, const rcgc_type *qt, size_t off0,
                                           size_t off1, size_t pre)
{
    /* sum over U of (refcnt - 1 - non-NULL fields): never positive, 0
     * iff closed. */
    int64_t excess = 0;
    for (size_t p = 0; p < w->npools; p++) {
        const gc_poolset *ps = &w->pools[p];
        char *word = ps->pool->mem + pre;
        size_t size = ps->pool->size;
        for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++, word += 64 * size) {
            for (uint64_t b = ps->members[k] & ~ps->reached[k]; b; b &= b - 1) {
                const rcgc_object *o = (const rcgc_object *)(word + gc_low_bit(b) * size);
                RCGC_ASSERT((o->flags & (RCGC_OF_COLLECTING | RCGC_OF_TRACKED |
                                         RCGC_OF_FOREIGN | RCGC_OF_WEAKREFS)) ==
                            (RCGC_OF_COLLECTING | RCGC_OF_TRACKED));
                if (o->type != qt)
                    return 0;
                excess += (int64_t)o->refcnt - 1 - (rcgc_ref_load(o, off0) != NULL) -
                          (rcgc_ref_load(o, off1) != NULL);
            }
        }
    }
    RCGC_ASSERT(excess <= 0);
    return excess == 0;
}

/* K1's free of pool set ps's unreachable members (all of type qt, all
 * quiet): untracked a word at a time, linked into the chain and freed
 * with the pool's counts updated once, as delete_by_pool_kind's batch.
 * young0 (a constant): a generation-0 collection, whose members are all
 * of generation 0.  Returns the number freed. */
static RCGC_ALWAYS_INLINE unsigned closed_free_pool(rcgc_runtime *rt, const gc_poolset *ps,
                                                    size_t pre, const int young0,
                                                    const int fromgather, const int full,
                                                    size_t *nyoungp)
{
    /* full (a constant, not with young0): a full collection's set (K2).
     * Its partition moved every reached member to generation 2, so every
     * tracked object of generations 0-1 left in the pool is a member of
     * the set (all of them are members of a full collection): the pool's
     * nyoung (P4) is the set's young members there, the rest are of
     * generation 2, and no header is read for the generation counts.
     * *nyoungp receives nyoung; the caller settles generations 0 and 1. */
    RCGC_ASSERT(!full || !young0);
    /* fromgather (a constant, with young0): `reached` is not the
     * survivors'; a member still in generation 0 is in the set, one in
     * generation 1 was reached (gc.c's k1_sums). */
    RCGC_ASSERT(!fromgather || young0);
    rcgc_pool *pool = ps->pool;
    char *word = pool->mem + pre;
    size_t size = pool->size;
    void *first = NULL;
    void **link = &first;
    unsigned n = 0;
    /* As the batch's ngen: generations 1-3, 16 bits each. */
    uint64_t ngen = 0;
    for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++, word += 64 * size) {
        uint64_t bk = fromgather ? ps->members[k] : ps->members[k] & ~ps->reached[k];
        if (bk == 0)
            continue;
        uint64_t freed = bk;
        for (uint64_t b = bk; b; b &= b - 1) {
            size_t bit = gc_low_bit(b);
            rcgc_object *o = (rcgc_object *)(word + bit * size);
            if (fromgather && (o->flags & RCGC_OF_GEN_MASK)) {
                freed &= ~((uint64_t)1 << bit);   /* reached */
                continue;
            }
            RCGC_ASSERT(!young0 || (o->flags & RCGC_OF_GEN_MASK) == 0);
#if RCGC_DEBUG >= 1
            if (full)   /* counted for the check below */
                ngen += (uint64_t)1 << (((o->flags & RCGC_OF_GEN_MASK) >> RCGC_OF_GEN_SHIFT) * 16);
#endif
            if (!young0 && !full)
                ngen += (uint64_t)1 << (((o->flags & RCGC_OF_GEN_MASK) >> RCGC_OF_GEN_SHIFT) * 16);
            o->type = RCGC_FREED_TYPE;
            *link = o;
            link = (void **)o;
        }
        n += gc_popcount64(freed);
        RCGC_ASSERT((pool->tracked[k] & freed) == freed);
        RCGC_ASSERT(!fromgather || freed == (ps->members[k] & ~ps->reached[k]));
        pool->tracked[k] &= ~freed;
    }
    if (n == 0)
        return 0;
    pool->ntracked = (uint16_t)(pool->ntracked - n);
    if (full) {
        unsigned ny = pool->nyoung;
        RCGC_ASSERT(ny == (unsigned)(ngen & 0xffffu) + ((unsigned)(ngen >> 16) & 0xffffu) &&
                    n - ny == ((unsigned)(ngen >> 32) & 0xffffu));
        *rcgc_gen_nobjects(rt, 2) -= (long)(n - ny);
        *nyoungp += ny;
        if (ny) {
            pool->nyoung = 0;
            rcgc_pool_young_remove(rt, pool);
        }
        rcgc_obj_free_pool_chain(rt, pool, first, (void *)link, n);
        return n;
    }
    unsigned n0 = n;
    for (unsigned g = 1; !young0 && g <= RCGC_GEN_PERMANENT; g++) {
        unsigned ng = (unsigned)(ngen >> (g * 16)) & 0xffffu;
        *rcgc_gen_nobjects(rt, g) -= (long)ng;
        n0 -= ng;
    }
    rt->gc.gens[0].nobjects -= (long)n0;
    unsigned nyoung = n0 + ((unsigned)(ngen >> 16) & 0xffffu);
    RCGC_ASSERT(pool->nyoung >= nyoung);
    pool->nyoung = (uint16_t)(pool->nyoung - nyoung);
    if (nyoung && pool->nyoung == 0)
        rcgc_pool_young_remove(rt, pool);
    rcgc_obj_free_pool_chain(rt, pool, first, (void *)link, n);
    return n;
}

#if RCGC_DEBUG >= 2
/* K1 checked directly (debug builds), before the set is freed: every
 * member is of w->ktype, pooled, not weakly referenced, and each of its
 * non-NULL fields refers to a member of the set (its pool in a pool set,
 * its bit in members & ~reached). */
static void k1_assert_closed(const gc_work *w)
{
    RCGC_ASSERT(w->kmixed || w->ktype == w->refcache.type2);
    FOR_EACH_UNREACHABLE_POOLED(w, o, {
        if ((w->kmixed ? !rcgc_gc_k2_type_ok(w, o->type) : o->type != w->ktype) ||
            (o->flags & (RCGC_OF_WEAKREFS | RCGC_OF_FOREIGN)))
            rcgc_obj_fatal(o, "gc: K1: a member of a closed set of another type, or weakly "
                              "referenced");
        for (const uint16_t *l = o->type->refs; *l != 0; l++) {
            const rcgc_object *r = rcgc_ref_load(o, *l);
            if (r == NULL)
                continue;
            int in = 0;
            if (!(r->flags & RCGC_OF_FOREIGN) && (r->flags & RCGC_OF_TRACKED)) {
                const rcgc_pool *pool = rcgc_pool_of(r);
                unsigned i = rcgc_pool_index(pool, r);
                size_t s = pool->gcset;
                in = s < w->npools && w->pools[s].pool == pool &&
                     ((w->pools[s].members[i >> 6] & ~w->pools[s].reached[i >> 6]) >> (i & 63) &
                      1);
            }
            if (!in)
                rcgc_obj_fatal(o, "gc: K1: a member of a closed set refers outside it");
        }
    });
}
#endif

int rcgc_gc_delete_closed(gc_work *w)
{
    rcgc_runtime *rt = w->rt;
    size_t pre = rt->mem.debug_pre;
    RCGC_ASSERT(w->need == 0 && w->u > 0);
    if (!w->kclosed) {
        /* Not tested by the partition (a recording scan held and flagged
         * the members): the test here, before anything is written. */
        const rcgc_type *qt = rcgc_gc_k1_type(w);
        if (w->nforeign != 0 || qt == NULL ||
            !closed_check(w, qt, w->refcache.off0, w->refcache.off1, pre))
            return 0;
        w->kclosed = 1;
        w->ktype = qt;
    }
    RCGC_ASSERT(w->nforeign == 0 &&
                (w->kmixed || (w->ktype != NULL && w->ktype->dealloc == NULL)));
#if RCGC_DEBUG >= 2
    k1_assert_closed(w);
#endif
    size_t n = 0;
    size_t nyoung = 0;
    if (w->kfromgather) {
        for (size_t p = 0; p < w->npools; p++)
            n += closed_free_pool(rt, &w->pools[p], pre, 1, 1, 0, &nyoung);
    } else if (w->maxgen == 0) {
        for (size_t p = 0; p < w->npools; p++)
            n += closed_free_pool(rt, &w->pools[p], pre, 1, 0, 0, &nyoung);
    } else if (w->maxgen == 1) {
        for (size_t p = 0; p < w->npools; p++)
            n += closed_free_pool(rt, &w->pools[p], pre, 0, 0, 0, &nyoung);
    } else {
        for (size_t p = 0; p < w->npools; p++)
            n += closed_free_pool(rt, &w->pools[p], pre, 0, 0, 1, &nyoung);
        /* As closed_free_pool's full: every tracked object of
         * generations 0-1 was in the set (no foreign one: K2), all freed
         * now. */
        RCGC_ASSERT(rcgc_gen_count(rt, 0) + rt->gc.gens[1].nobjects == (long)nyoung);
        rt->gc.gens[0].nobjects = -(long)rcgc_obj_nlogged(rt);   /* none left (B4) */
        rt->gc.gens[1].nobjects = 0;
    }
    RCGC_ASSERT(n == w->u);
    /* As each object's deallocation lowers count[0] if positive (every
     * tracked object is of a GC type: O1, T1). */
    long *count0 = &rt->gc.gens[0].count;
    *count0 = *count0 > (long)n ? *count0 - (long)n : 0;
    return 1;
}

/* Clear every unreachable pooled member (step 9 of a small set, before
 * rcgc_gc_delete_by_pool), in the copy for the set's kind of heap (RC2). */
static RCGC_ALWAYS_INLINE void clear_unreachable_kind(gc_work *w, const int refs)
{
    size_t pre = w->rt->mem.debug_pre;
    for (size_t p = 0; p < w->npools; p++) {
        const gc_poolset *ps = &w->pools[p];
        char *base = ps->pool->mem + pre;
        size_t size = ps->pool->size;
        w->clearrank = p + 1;
        clear_pool_first(w, ps, base, size, refs);
    }
}

RCGC_NOINLINE void rcgc_gc_clear_unreachable_pooled(gc_work *w)
{
    if (w->refcache.met) {
        rcgc_gc_dirty_init(w, 1);
        clear_unreachable_kind(w, 1);
    } else {
        rcgc_gc_dirty_init(w, 0);
        clear_unreachable_kind(w, 0);
    }
}

/* delete_by_pool_kind in the copy for the set's kind of heap (RC2). */
void rcgc_gc_delete_by_pool(gc_work *w, unsigned old, int cleared)
{
    if (w->refcache.met)
        delete_by_pool_kind(w, old, cleared, 1);
    else
        delete_by_pool_kind(w, old, cleared, 0);
}
