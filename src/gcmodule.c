/*
 * gcmodule.c - the gc module's surface (CPython's Modules/gcmodule.c API
 * part): switches, thresholds, counts, statistics, debug flags, callbacks,
 * introspection (get_objects, get_referrers, get_referents), tracking and
 * freezing.  The collection itself is gc.c.
 */
#include <stdlib.h>
#include <string.h>

#include "gc.h"
#include "runtime.h"

/* ------------------------------------------------------------- switches */

void rcgc_gc_enable(rcgc_runtime *rt)
{
    rt->gc.enabled = 1;
}

void rcgc_gc_disable(rcgc_runtime *rt)
{
    rt->gc.enabled = 0;
}

int rcgc_gc_isenabled(const rcgc_runtime *rt)
{
    return rt->gc.enabled;
}

/* ------------------------------------------------------------- collect */

long rcgc_gc_collect(rcgc_runtime *rt, int generation)
{
    if (generation < 0 || generation >= RCGC_NGENS)
        return RCGC_EINVAL;
    RCGC_ENTER(rt);
    long n = 0;
    if (!rt->gc.collecting) {
        rt->gc.collecting = 1;
        n = rcgc_gc_collect_with_callbacks(rt, generation);
        rt->gc.collecting = 0;
    }
    RCGC_LEAVE(rt);
    return n;
}

void rcgc_gc_get_count(const rcgc_runtime *rt, long counts[3])
{
    for (int i = 0; i < RCGC_NGENS; i++)
        counts[i] = rt->gc.gens[i].count;
}

void rcgc_gc_get_threshold(const rcgc_runtime *rt, long thresholds[3])
{
    for (int i = 0; i < RCGC_NGENS; i++)
        thresholds[i] = rt->gc.gens[i].threshold;
}

int rcgc_gc_set_threshold(rcgc_runtime *rt, long t0, long t1, long t2)
{
    if (t0 < 0 || t1 < 0 || t2 < 0)
        return RCGC_EINVAL;
    rt->gc.gens[0].threshold = t0;
    rt->gc.gens[1].threshold = t1;
    rt->gc.gens[2].threshold = t2;
    return RCGC_OK;
}

void rcgc_gc_get_stats(const rcgc_runtime *rt, rcgc_gc_stats stats[3])
{
    for (int i = 0; i < RCGC_NGENS; i++)
        stats[i] = rt->gc.stats[i];
}

rcgc_list *rcgc_gc_garbage(rcgc_runtime *rt)
{
    return rcgc_gc_garbage_list(rt);
}

void rcgc_gc_set_debug(rcgc_runtime *rt, int flags)
{
    rt->gc.debug = flags;
}

int rcgc_gc_get_debug(const rcgc_runtime *rt)
{
    return rt->gc.debug;
}

/* ------------------------------------------------------------ callbacks */

int rcgc_gc_callback_add(rcgc_runtime *rt, rcgc_gc_callback fn, void *arg)
{
    rcgc_gc_state *gs = &rt->gc;
    if (fn == NULL)
        return RCGC_EINVAL;
    if (gs->ncallbacks == gs->capcallbacks) {
        size_t cap = gs->capcallbacks ? gs->capcallbacks * 2 : 4;
        rcgc_gc_cb *p = rcgc_mem_domain_realloc(rt, RCGC_DOMAIN_RAW, gs->callbacks,
                                                cap * sizeof *p);
        if (p == NULL)
            return RCGC_ENOMEM;
        gs->callbacks = p;
        gs->capcallbacks = cap;
    }
    gs->callbacks[gs->ncallbacks].fn = fn;
    gs->callbacks[gs->ncallbacks].arg = arg;
    gs->ncallbacks++;
    return RCGC_OK;
}

/* Removes the first registration of (fn, arg), like list.remove. */
int rcgc_gc_callback_remove(rcgc_runtime *rt, rcgc_gc_callback fn, void *arg)
{
    rcgc_gc_state *gs = &rt->gc;
    for (size_t i = 0; i < gs->ncallbacks; i++) {
        if (gs->callbacks[i].fn == fn && gs->callbacks[i].arg == arg) {
            memmove(gs->callbacks + i, gs->callbacks + i + 1,
                    (gs->ncallbacks - i - 1) * sizeof *gs->callbacks);
            gs->ncallbacks--;
            return RCGC_OK;
        }
    }
    return RCGC_EINVAL;
}

/* -------------------------------------------------------- introspection */

typedef struct collect_ctx {
    rcgc_list *result;
    int failed;
} collect_ctx;

static int append_tracked(rcgc_object *o, void *arg)
{
    collect_ctx *c = arg;
    /* Skip the result itself (CPython does) and deallocations the trashcan
     * deferred (refcount 0: not objects any more). */
    if (o == (rcgc_object *)c->result || o->refcnt == 0)
        return 0;
    if (rcgc_list_append(c->result, o) != RCGC_OK) {
        c->failed = 1;
        return 1;
    }
    return 0;
}

/* gc.get_objects(generation): generation -1 is generations 0..2 (the
 * permanent generation is left out, as in CPython).  The list is sized
 * before the walk, so that appending never reallocates while the heap is
 * being iterated. */
rcgc_list *rcgc_gc_get_objects(rcgc_runtime *rt, int generation)
{
    if (generation < -1 || generation >= RCGC_NGENS)
        return NULL;
    RCGC_ENTER(rt);
    size_t count = 0;
    for (int g = 0; g < RCGC_NGENS; g++)
        if (generation < 0 || g == generation)
            count += (size_t)rcgc_gen_count(rt, (unsigned)g);
    collect_ctx c = {rcgc_list_new_at(rt, count + 1, RCGC_HERE), 0};
    if (c.result != NULL) {
        unsigned gens = generation < 0 ? 2u : (RCGC_GEN_EXACT | (unsigned)generation);
        rcgc_obj_foreach_tracked(rt, gens, append_tracked, &c);
        if (c.failed)
            RCGC_CLEAR(c.result);
    }
    RCGC_LEAVE(rt);
    return c.result;
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(rcgc_object *const *)a;
    uintptr_t y = (uintptr_t)*(rcgc_object *const *)b;
    return x < y ? -1 : x > y;
}

typedef struct referrers_ctx {
    rcgc_object **targets;   /* sorted */
    size_t ntargets;
    rcgc_object *skip;       /* the result list */
    rcgc_object **found;     /* RAW array: referrers found so far */
    size_t nfound, capfound;
    rcgc_runtime *rt;
    int failed;
} referrers_ctx;

static int visit_is_target(rcgc_object *r, void *arg)
{
    const referrers_ctx *rc = arg;
    return bsearch(&r, rc->targets, rc->ntargets, sizeof r, cmp_ptr) != NULL;
}

static int find_referrer(rcgc_object *o, void *arg)
{
    referrers_ctx *rc = arg;
    if (o == rc->skip || o->refcnt == 0 || !rcgc_obj_traverse(o, visit_is_target, rc))
        return 0;
    if (rc->nfound == rc->capfound)
        return 1;   /* cannot happen: sized for every tracked object */
    rc->found[rc->nfound++] = o;
    return 0;
}

/* gc.get_referrers(*objs): tracked objects of generations 0..2 whose
 * traverse visits any of objs.  Found ones are gathered in RAW memory (the
 * pools are not touched during the walk) and appended afterwards. */
rcgc_list *rcgc_gc_get_referrers(rcgc_runtime *rt, rcgc_object *const *objs, size_t n)
{
    if (n > 0 && objs == NULL)
        return NULL;
    RCGC_ENTER(rt);
    rcgc_list *result = rcgc_list_new(rt);
    referrers_ctx rc = {NULL, n, (rcgc_object *)result, NULL, 0, 0, rt, 0};
    if (result != NULL && n > 0) {
        rc.targets = rcgc_mem_domain_alloc(rt, RCGC_DOMAIN_RAW, n * sizeof *objs);
        if (rc.targets == NULL) {
            rc.failed = 1;
        } else {
            memcpy(rc.targets, objs, n * sizeof *objs);
            qsort(rc.targets, n, sizeof *objs, cmp_ptr);
            /* Room for every candidate before the walk: nothing allocates
             * during it, so no OOM handler can start a collection that
             * moves objects between generations under it. */
            rc.capfound = (size_t)(rcgc_gen_count(rt, 0) + rcgc_gen_count(rt, 1) +
                                   rcgc_gen_count(rt, 2));
            rc.found = rcgc_mem_domain_alloc(rt, RCGC_DOMAIN_RAW,
                                             (rc.capfound ? rc.capfound : 1) * sizeof *rc.found);
            if (rc.found == NULL)
                rc.failed = 1;
            else
                rcgc_obj_foreach_tracked(rt, 2u, find_referrer, &rc);
        }
        for (size_t i = 0; !rc.failed && i < rc.nfound; i++)
            if (rcgc_list_append(result, rc.found[i]) != RCGC_OK)
                rc.failed = 1;
        if (rc.failed)
            RCGC_CLEAR(result);
    }
    if (rc.targets)
        rcgc_mem_domain_free(rt, RCGC_DOMAIN_RAW, rc.targets);
    if (rc.found)
        rcgc_mem_domain_free(rt, RCGC_DOMAIN_RAW, rc.found);
    RCGC_LEAVE(rt);
    return result;
}

static int visit_append(rcgc_object *r, void *arg)
{
    collect_ctx *c = arg;
    if (rcgc_list_append(c->result, r) != RCGC_OK) {
        c->failed = 1;
        return 1;
    }
    return 0;
}

/* gc.get_referents(*objs): everything the traverse of each object of a GC
 * type visits, tracked or not, in traverse order. */
rcgc_list *rcgc_gc_get_referents(rcgc_runtime *rt, rcgc_object *const *objs, size_t n)
{
    if (n > 0 && objs == NULL)
        return NULL;
    RCGC_ENTER(rt);
    collect_ctx c = {rcgc_list_new(rt), 0};
    for (size_t i = 0; c.result != NULL && i < n; i++) {
        rcgc_object *o = objs[i];
        if (!rcgc_type_is_gc(o->type))
            continue;
        rcgc_obj_traverse(o, visit_append, &c);
        if (c.failed)
            RCGC_CLEAR(c.result);
    }
    RCGC_LEAVE(rt);
    return c.result;
}

/* ------------------------------------------------------------- tracking */

int rcgc_gc_is_tracked(const rcgc_object *o)
{
    return (o->flags & RCGC_OF_TRACKED) != 0;
}

int rcgc_gc_is_finalized(const rcgc_object *o)
{
    return (o->flags & RCGC_OF_FINALIZED) != 0;
}

void rcgc_gc_track(rcgc_object *o)
{
    if (!rcgc_type_is_gc(o->type) || (o->flags & RCGC_OF_TRACKED))
        return;
    rcgc_runtime *rt = rcgc_obj_runtime(o);
    RCGC_ENTER(rt);
    rcgc_obj_track(rt, o);
    RCGC_LEAVE(rt);
}

void rcgc_gc_untrack(rcgc_object *o)
{
    if (!(o->flags & RCGC_OF_TRACKED))
        return;
    rcgc_runtime *rt = rcgc_obj_runtime(o);
    RCGC_ENTER(rt);
    rcgc_obj_untrack(rt, o);
    RCGC_LEAVE(rt);
}

/* --------------------------------------------------------------- freeze */

static int to_permanent(rcgc_object *o, void *arg)
{
    rcgc_obj_set_gen(arg, o, RCGC_GEN_PERMANENT);
    return 0;
}

static int from_permanent(rcgc_object *o, void *arg)
{
    rcgc_obj_set_gen(arg, o, RCGC_NGENS - 1);
    return 0;
}

/* gc.freeze(): everything tracked moves to the permanent generation.  Like
 * CPython, only generation 0's count is reset. */
void rcgc_gc_freeze(rcgc_runtime *rt)
{
    RCGC_ENTER(rt);
    rcgc_obj_foreach_tracked(rt, 2u, to_permanent, rt);
    rt->gc.gens[0].count = 0;
    RCGC_LEAVE(rt);
}

/* gc.unfreeze(): the permanent generation goes back to the oldest one. */
void rcgc_gc_unfreeze(rcgc_runtime *rt)
{
    RCGC_ENTER(rt);
    rcgc_obj_foreach_tracked(rt, RCGC_GEN_EXACT | RCGC_GEN_PERMANENT, from_permanent, rt);
    RCGC_LEAVE(rt);
}

long rcgc_gc_get_freeze_count(const rcgc_runtime *rt)
{
    return rt->gc.permanent.nobjects;
}
