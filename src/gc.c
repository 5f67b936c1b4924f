/*
 * gc.c - the cycle collector: CPython 3.11's generational algorithm
 * (Modules/gcmodule.c) on rcgc's object layout, where a tracked object has
 * no list links and no gc_refs field.
 *
 * docs/design-gc.md walks through it with diagrams; gc.h states the
 * invariants C1-C5 this file keeps.  In short, a collection of generation g:
 *
 *   1. gather   every tracked object of generations 0..g into a work array
 *               (pools' tracked bitmaps, the foreign lists), saving its
 *               refcount and setting RCGC_OF_COLLECTING;
 *   2. subtract traverse each; decrement the refcount of referents in the
 *               set: what is left is the number of references from outside;
 *   3. mark     objects with a count left are reachable: mark them and
 *               everything they reach (explicit stack), restoring each
 *               refcount from the saved copy as the scan passes it;
 *   4. the unmarked objects are the unreachable set; survivors move to g+1;
 *   5. CPython's finalization order on the unreachable set: legacy
 *               finalizers and all they reach become uncollectable; weak
 *               references are cleared and callbacks of live ones run; PEP
 *               442 finalizers run once; objects freed or resurrected by
 *               them drop out; `clear` breaks the rest.
 */
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "platform.h"
#include "pool.h"
#include "runtime.h"
#include "weakref.h"

/* Initial capacity of the mark stack (entries); it grows on demand. */
#define GC_STACK_INITIAL 1024

/*
 * The work space of one collection.  Memory is bounded by the objects in
 * the collected generations: 12 bytes per object for objs + saved, plus the
 * mark stack, which holds each object at most once per phase.
 *
 *   objs[0..n)   the collection set, in heap order; after the mark phase the
 *                unreachable objects are compacted to the front.
 *   saved[i]     objs[i]'s true refcount while refcounts are scratch (C2).
 *   stack        mark stack (or the legacy phase's queue).  If it cannot
 *                grow, `overflow` is set and the phase rescans the set until
 *                a pass completes without overflow: still correct, slower.
 */
typedef struct gc_work {
    rcgc_runtime *rt;
    rcgc_object **objs;
    uint32_t *saved;
    size_t n;
    size_t cap;
    rcgc_object **stack;
    size_t sp;
    size_t stackcap;
    int overflow;
    rcgc_object *current;   /* the object being traversed (debug reports) */
} gc_work;

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

static void push_slow(gc_work *w, rcgc_object *o)
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

static inline void push(gc_work *w, rcgc_object *o)
{
    if (RCGC_LIKELY(w->sp < w->stackcap))
        w->stack[w->sp++] = o;
    else
        push_slow(w, o);
}

/* ------------------------------------------------------------- gather */

static inline void take(gc_work *w, rcgc_object *o)
{
    RCGC_ASSERT(!(o->flags & (RCGC_OF_COLLECTING | RCGC_OF_REACHABLE | RCGC_OF_MARK)));
    /* Refcount 0: a deallocation deferred by the trashcan, not yet run.  Its
     * references are released later, so for this collection they count as
     * references from outside, and it is not part of the set. */
    if (RCGC_UNLIKELY(o->refcnt == 0))
        return;
    if (RCGC_UNLIKELY(w->n == w->cap))
        rcgc_obj_fatal(o, "gc: generation counts disagree with the heap: more than %zu "
                          "tracked objects found", w->cap);
    o->flags |= RCGC_OF_COLLECTING;
    w->objs[w->n] = o;
    w->saved[w->n] = o->refcnt;
    w->n++;
}

static void gather_pool(gc_work *w, const rcgc_pool *pool, unsigned maxgen, size_t pre)
{
    char *base = pool->mem + pre;
    size_t size = pool->size;
    if (RCGC_UNLIKELY(pool->ntracked > w->cap - w->n)) {
        /* Near the end of the array: check every slot (take does). */
        for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++) {
            for (uint64_t bits = pool->tracked[k]; bits; bits &= bits - 1) {
                unsigned i = k * 64 + (unsigned)__builtin_ctzll(bits);
                rcgc_object *o = (rcgc_object *)(base + (size_t)i * size);
                if (rcgc_obj_gen(o) <= maxgen)
                    take(w, o);
            }
        }
        return;
    }
    /* The pool cannot overflow the array: the same as take, with the
     * bookkeeping in registers. */
    rcgc_object **objs = w->objs;
    uint32_t *saved = w->saved;
    size_t n = w->n;
    for (unsigned k = 0; k < RCGC_POOL_BITMAP_WORDS; k++) {
        for (uint64_t bits = pool->tracked[k]; bits; bits &= bits - 1) {
            unsigned i = k * 64 + (unsigned)__builtin_ctzll(bits);
            rcgc_object *o = (rcgc_object *)(base + (size_t)i * size);
            unsigned f = o->flags;
            uint32_t rc = o->refcnt;
            if (((f & RCGC_OF_GEN_MASK) >> RCGC_OF_GEN_SHIFT) > maxgen || RCGC_UNLIKELY(rc == 0))
                continue;
            RCGC_ASSERT(!(f & (RCGC_OF_COLLECTING | RCGC_OF_REACHABLE | RCGC_OF_MARK)));
            o->flags = f | RCGC_OF_COLLECTING;
            objs[n] = o;
            saved[n] = rc;
            n++;
        }
    }
    w->n = n;
}

/* Step 1: the tracked objects of generations 0..g (never the permanent
 * one).  Young collections walk only the pools on the young list. */
static void gather(gc_work *w, unsigned g)
{
    rcgc_runtime *rt = w->rt;
    size_t pre = rt->mem.debug_pre;
    if (g < 2) {
        for (const rcgc_pool *pool = rt->pool.young; pool; pool = pool->young_next)
            gather_pool(w, pool, g, pre);
    } else {
        for (const rcgc_arena *a = rt->pool.all; a; a = a->allnext) {
            for (unsigned i = 0; i < a->ncarved; i++) {
                const rcgc_pool *pool = rcgc_arena_pool(a, i);
                if (pool->ntracked != 0)
                    gather_pool(w, pool, 2, pre);
            }
        }
    }
    for (unsigned i = 0; i <= g; i++) {
        rcgc_foreign *head = &rt->gc.gens[i].head;
        for (rcgc_foreign *f = head->next; f != head; f = f->next)
            take(w, rcgc_foreign_obj(f));
    }
}

/* ------------------------------------------------------ trial deletion */

#if RCGC_DEBUG >= 2
static void subtract_underflow(const gc_work *w, const rcgc_object *r)
{
    const rcgc_object *c = w->current;
    rcgc_obj_fatal(r, "gc: the traverse of %p (%s) visits %p (%s) more times than there are "
                      "references to it (refcount would go below zero): a traverse visits a "
                      "reference it does not own, or a refcount is too small",
                   (const void *)c, c ? c->type->name : "?", (const void *)r, r->type->name);
}
#endif

static int visit_subtract(rcgc_object *r, void *arg)
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
        o->type->traverse(o, visit_subtract, w);
    }
    w->current = NULL;
}

static int visit_reach(rcgc_object *r, void *arg)
{
    unsigned f = r->flags;
    if ((f & (RCGC_OF_COLLECTING | RCGC_OF_REACHABLE)) == RCGC_OF_COLLECTING) {
        r->flags = f | RCGC_OF_REACHABLE;
        push(arg, r);
    }
    return 0;
}

static void drain(gc_work *w)
{
    while (w->sp > 0) {
        rcgc_object *o = w->stack[--w->sp];
        o->type->traverse(o, visit_reach, w);
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
            push(w, o);
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
                o->type->traverse(o, visit_reach, w);
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
static size_t trial_deletion(gc_work *w, size_t n, unsigned old, int drop_hold,
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

/* What the unreachable set needs beyond clearing (partition_main). */
enum {
    NEED_LEGACY = 1,      /* some object has legacy_del */
    NEED_WEAK = 2,        /* weak references to or among the set */
    NEED_FINALIZE = 4     /* some object's PEP 442 finalizer has not run */
};

/* Step 4 of a collection, fused with the start of step 5 so that the set is
 * walked once: reachable objects lose their marks and move to `old`;
 * unreachable ones are compacted to the front and held (C3), and *need
 * says which of the finalization steps have work. */
static size_t partition_main(gc_work *w, unsigned old, size_t *nreach, unsigned *need)
{
    rcgc_object **objs = w->objs;
    rcgc_runtime *rt = w->rt;
    size_t n = w->n, u = 0, r = 0;
    unsigned nd = 0;
    /* Survivors of a young collection that stay young (0 -> 1) change only
     * their generation bits and the generation counts (a pool's nyoung
     * counts generations 0 and 1 alike, P4), so pooled ones are moved here
     * and counted in bulk; the rest go through rcgc_obj_set_gen. */
    long moved[RCGC_NGENS] = {0, 0, 0};
    const unsigned newgen = old << RCGC_OF_GEN_SHIFT;
    for (size_t i = 0; i < n; i++) {
        rcgc_object *o = objs[i];
        unsigned f = o->flags;
        if (f & RCGC_OF_REACHABLE) {
            f &= ~(RCGC_OF_COLLECTING | RCGC_OF_REACHABLE);
            r++;
            unsigned gen = (f & RCGC_OF_GEN_MASK) >> RCGC_OF_GEN_SHIFT;
            if (gen == old) {
                o->flags = f;
            } else if (old < 2 && !(f & RCGC_OF_FOREIGN)) {
                o->flags = (f & ~RCGC_OF_GEN_MASK) | newgen;
                moved[gen]++;
            } else {
                o->flags = f;
                rcgc_gc_promote(rt, o, old);
            }
        } else {
            const rcgc_type *t = o->type;
            o->refcnt++;
            if (t->legacy_del)
                nd |= NEED_LEGACY;
            if (rcgc_weak_involved(o))
                nd |= NEED_WEAK;
            if (t->finalize && !(f & RCGC_OF_FINALIZED))
                nd |= NEED_FINALIZE;
            objs[u++] = o;
        }
    }
    for (unsigned g = 0; g < RCGC_NGENS; g++) {
        rt->gc.gens[g].nobjects -= moved[g];
        rt->gc.gens[old].nobjects += moved[g];
    }
    *nreach = r;
    *need = nd;
    return u;
}

/* -------------------------------------------------- legacy finalizers */

/* Uncollectable objects trade RCGC_OF_COLLECTING for RCGC_OF_MARK, which
 * they keep while they are in the uncollectable set. */
static int visit_legacy(rcgc_object *r, void *arg)
{
    unsigned f = r->flags;
    if (f & RCGC_OF_COLLECTING) {
        r->flags = (f & ~RCGC_OF_COLLECTING) | RCGC_OF_MARK;
        push(arg, r);
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
static size_t move_legacy(gc_work *w, size_t u)
{
    rcgc_object **objs = w->objs;
    w->sp = 0;
    for (size_t i = 0; i < u; i++) {
        rcgc_object *o = objs[i];
        if (o->type->legacy_del) {
            o->flags = (o->flags & ~RCGC_OF_COLLECTING) | RCGC_OF_MARK;
            push(w, o);
        }
    }
    if (w->sp == 0 && !w->overflow)
        return u;
    /* The stack is used as a queue here, so that it ends up holding the
     * uncollectable set in order. */
    for (size_t head = 0; head < w->sp; head++) {
        rcgc_object *o = w->stack[head];
        o->type->traverse(o, visit_legacy, w);
    }
    int ordered = !w->overflow;
    while (w->overflow) {
        w->overflow = 0;
        size_t start = w->sp;
        for (size_t i = 0; i < u; i++) {
            rcgc_object *o = objs[i];
            if (!(o->flags & RCGC_OF_COLLECTING))
                o->type->traverse(o, visit_legacy, w);
        }
        for (size_t head = start; head < w->sp; head++)
            w->stack[head]->type->traverse(w->stack[head], visit_legacy, w);
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
static void release_orphans(gc_work *w, size_t *uc, size_t *u)
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
static size_t handle_resurrected(gc_work *w, size_t uc, unsigned old)
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
     * dropping the hold inside trial_deletion cannot free it. */
    size_t nreach;
    return trial_deletion(w, uc, old, 1, &nreach);
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
static inline void release_cleared(rcgc_runtime *rt, rcgc_object *o, unsigned old)
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
        rcgc_gc_promote(rt, o, old);   /* it may die later */
    rcgc_decref(o);
}

/* ----------------------------------------------------------- the core */

static void show_stats_each_generation(const rcgc_runtime *rt)
{
    fprintf(stderr, "gc: objects in each generation: %ld %ld %ld\n",
            rt->gc.gens[0].nobjects, rt->gc.gens[1].nobjects, rt->gc.gens[2].nobjects);
    fprintf(stderr, "gc: objects in permanent generation: %ld\n", rt->gc.permanent.nobjects);
}

static size_t set_size(const rcgc_runtime *rt, int generation)
{
    size_t total = 0;
    for (int i = 0; i <= generation; i++)
        total += (size_t)rt->gc.gens[i].nobjects;
    return total;
}

/* Allocate the work space for the collection set of `generation`.
 * RCGC_OK or RCGC_ENOMEM (nothing allocated). */
static int work_alloc(gc_work *w, rcgc_runtime *rt, int generation)
{
    memset(w, 0, sizeof *w);
    w->rt = rt;
    for (;;) {
        size_t total = set_size(rt, generation);
        if (total == 0)
            return RCGC_OK;
        size_t per = sizeof(rcgc_object *) + sizeof(uint32_t);
        if (total > SIZE_MAX / per)
            return RCGC_ENOMEM;
        /* The OOM handler may run user code that tracks new objects: size
         * again after the allocation and retry if the set grew. */
        void *mem = rcgc_mem_domain_alloc(rt, RCGC_DOMAIN_RAW, total * per);
        if (mem == NULL)
            return RCGC_ENOMEM;
        if (set_size(rt, generation) > total) {
            rcgc_mem_domain_free(rt, RCGC_DOMAIN_RAW, mem);
            continue;
        }
        w->objs = mem;
        w->saved = (uint32_t *)(w->objs + total);
        w->cap = total;
        size_t sc = total < GC_STACK_INITIAL ? total : GC_STACK_INITIAL;
        w->stack = quiet_realloc(rt, NULL, sc * sizeof *w->stack);
        w->stackcap = w->stack ? sc : 0;
        return RCGC_OK;
    }
}

static void work_free(gc_work *w)
{
    if (w->objs)
        rcgc_mem_domain_free(w->rt, RCGC_DOMAIN_RAW, w->objs);
    if (w->stack)
        rcgc_mem_domain_free(w->rt, RCGC_DOMAIN_RAW, w->stack);
    w->objs = NULL;
    w->stack = NULL;
}

long rcgc_gc_collect_main(rcgc_runtime *rt, int generation, long *collected,
                          long *uncollectable)
{
    rcgc_gc_state *gs = &rt->gc;
    RCGC_ASSERT(gs->collecting);
    RCGC_ASSERT(generation >= 0 && generation < RCGC_NGENS);
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
    gather(&w, g);
    subtract(&w, w.n);
    mark_and_restore(&w, w.n);
    size_t nreach;
    unsigned need;
    size_t u = partition_main(&w, old, &nreach, &need);
    if (g == 1) {
        gs->long_lived_pending += (long)nreach;
    } else if (g == 2) {
        gs->long_lived_pending = 0;
        gs->long_lived_total = (long)nreach;
    }

    if (u > 0) {
        rcgc_object **objs = w.objs;
        /* Legacy finalizers: objs[uc..u) become uncollectable. */
        size_t uc = (need & NEED_LEGACY) ? move_legacy(&w, u) : u;
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
            release_orphans(&w, &uc, &u);
            uf = handle_resurrected(&w, uc, old);
            /* handle_resurrected left the uncollectable part where it was:
             * objs[uc..u).  Move it next to the final set. */
            if (uf < uc)
                memmove(objs + uf, objs + uc, (u - uc) * sizeof *objs);
            u -= uc - uf;
            uc = uf;
        }

        /* delete_garbage: clear (or save) the final set, then let go. */
        m += (long)uf;
        if (gs->debug & RCGC_DEBUG_SAVEALL) {
            rcgc_list *garbage = rcgc_gc_garbage_list(rt);
            for (size_t i = 0; i < uf; i++)
                if (garbage != NULL)
                    (void)rcgc_list_append(garbage, objs[i]);
        } else {
            for (size_t i = 0; i < uf; i++) {
                rcgc_object *o = objs[i];
                if (o->type->clear)
                    o->type->clear(o);
            }
        }
        for (size_t i = 0; i < uf; i++)
            release_cleared(rt, objs[i], old);

        /* The uncollectable set: what clearing freed is not counted, nor
         * are weak references whose callback ran (CPython's handle_weakrefs
         * moved them to the old generation, out of the set: they lost
         * RCGC_OF_MARK there). */
        if (u > uf) {
            size_t fc = 0, fu = u - uf;
            rcgc_object **fin = objs + uf;
            memmove(objs, fin, fu * sizeof *objs);
            release_orphans(&w, &fc, &fu);
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
    size_t total = set_size(rt, RCGC_NGENS - 1) + (size_t)rt->gc.permanent.nobjects;
    if (total == 0)
        return;
    hold_ctx h = {rcgc_mem_domain_alloc(rt, RCGC_DOMAIN_RAW, total * sizeof(rcgc_object *)),
                  0, total};
    if (h.objs == NULL)
        return;
    rcgc_obj_foreach_tracked(rt, RCGC_GEN_PERMANENT, hold_one, &h);
    for (size_t i = 0; i < h.n; i++)
        if (h.objs[i]->type->clear)
            h.objs[i]->type->clear(h.objs[i]);
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
