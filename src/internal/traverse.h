/*
 * traverse.h - the one place that knows how an object's references are
 * found and dropped: a type's declared reference fields (rcgc_type.refs)
 * and its traverse / clear functions.  Every traversal and every clear in
 * the library goes through these helpers (gc.c, gcdelete.c, gcmodule.c,
 * object.c, runtime.c); none calls type->traverse or type->clear itself.
 *
 *   T1  A type is a GC type (its objects may be tracked, are counted in
 *       generation 0, are traversed and cleared) iff it has a traverse or
 *       a refs array.
 *   T2  Traversing an object visits its listed fields first, in refs order,
 *       each non-NULL one once, then whatever its traverse visits; the
 *       first non-zero result of visit ends it and is returned.
 *   T3  Clearing an object sets each listed field to NULL before dropping
 *       the reference it held (RCGC_CLEAR's order: re-entrant code never
 *       sees a dying reference), then calls the type's clear.
 *   T4  A refs array is 0-terminated; every other entry is the offset of a
 *       pointer-aligned, pointer-sized field after the header and inside
 *       type->size, listed once (debug builds check it at each creation:
 *       rcgc_type_check_refs).
 */
#ifndef RCGC_TRAVERSE_H
#define RCGC_TRAVERSE_H

#include <string.h>

#include "rcgc.h"
#include "pool.h"   /* RCGC_ALWAYS_INLINE */

/* T1. */
static inline int rcgc_type_is_gc(const rcgc_type *t)
{
    return t->traverse != NULL || t->refs != NULL;
}

#if RCGC_DEBUG >= 1
/* T4 for t->refs (non-NULL): a fatal error naming the type when broken. */
void rcgc_type_check_refs(const rcgc_type *t);
#endif

/* T1 for a type an object is being created with; debug builds check its
 * refs array (T4) first. */
static inline int rcgc_type_is_gc_new(const rcgc_type *t)
{
#if RCGC_DEBUG >= 1
    if (t->refs != NULL)
        rcgc_type_check_refs(t);
#endif
    return rcgc_type_is_gc(t);
}

/* rcgc_type_is_gc_new for the creation's inline path, which tracks the
 * object itself: sets *refs_tracked (rcgc_gc_state, G2) for a type with
 * refs.  refs is tested first, so that the store is the only cost a refs
 * type adds and a traverse-only type pays one test more. */
static RCGC_ALWAYS_INLINE int rcgc_type_is_gc_new_note(const rcgc_type *t, int *refs_tracked)
{
    if (t->refs != NULL) {
#if RCGC_DEBUG >= 1
        rcgc_type_check_refs(t);
#endif
        *refs_tracked = 1;
        return 1;
    }
    return t->traverse != NULL;
}

/* Field `off` of o (memcpy: the field's declared type is the user's). */
static inline rcgc_object *rcgc_ref_load(const rcgc_object *o, size_t off)
{
    rcgc_object *r;
    memcpy(&r, (const char *)o + off, sizeof r);
    return r;
}

/*
 * T2, always inline: for the collector's loops, which pass a visit
 * function known at compile time, so that the visit is inlined into the
 * field loop (no call per reference, none per object for a refs-only
 * type).  o must be of a GC type.
 */
static RCGC_ALWAYS_INLINE int rcgc_obj_traverse_inline(rcgc_object *o, rcgc_visitfn visit,
                                                       void *arg)
{
    const rcgc_type *t = o->type;
    const uint16_t *refs = t->refs;
    if (refs != NULL) {
        for (unsigned off; (off = *refs) != 0; refs++) {
            rcgc_object *r = rcgc_ref_load(o, off);
            if (r != NULL) {
                int e = visit(r, arg);
                if (e != 0)
                    return e;
            }
        }
        if (RCGC_LIKELY(t->traverse == NULL))
            return 0;
    }
    return t->traverse(o, visit, arg);
}

/* T2 everywhere else. */
static inline int rcgc_obj_traverse(rcgc_object *o, rcgc_visitfn visit, void *arg)
{
    return rcgc_obj_traverse_inline(o, visit, arg);
}

/* Drop the reference of field off of o, if any (T3's order). */
static inline void rcgc_ref_clear(rcgc_object *o, unsigned off)
{
    rcgc_object *r = rcgc_ref_load(o, off);
    if (r != NULL) {
        static rcgc_object *const null_ref = NULL;
        memcpy((char *)o + off, &null_ref, sizeof null_ref);
        rcgc_decref(r);
    }
}

/* T3 for o, whose type is t (any type: one without refs or clear holds no
 * reference to drop). */
static inline void rcgc_type_clear(const rcgc_type *t, rcgc_object *o)
{
    const uint16_t *refs = t->refs;
    if (refs != NULL) {
        for (unsigned off; (off = *refs) != 0; refs++)
            rcgc_ref_clear(o, off);
    }
    if (t->clear != NULL)
        t->clear(o);
}

/* T3. */
static inline void rcgc_obj_clear(rcgc_object *o)
{
    rcgc_type_clear(o->type, o);
}

/*
 * The collector's loops meet long runs of objects of one type (a pool holds
 * one size class, a structure usually one node type).  A loop keeps a
 * one-entry cache of the last such type whose references are exactly one
 * or two listed fields (refs only: no traverse, no clear); an object of
 * that type is then traversed or cleared with the two offsets in
 * registers: no refs array to read, no terminator, no test for traverse or
 * clear.  Any other type takes the general path and leaves the cache as
 * it is.
 *
 *   RC1  type is NULL, or a type with traverse == NULL, clear == NULL and
 *        refs == {off0, 0} (then off1 == 0) or {off0, off1, 0}.
 *   RC2  met is non-zero once any object of a type with a refs array has
 *        been traversed or cleared through c (every such object passes
 *        rcgc_refs_cache_fill before c can hit on its type).  While it is
 *        zero, a loop over objects that c has already seen may call their
 *        traverse directly (gc.c's traverse_kind with refs 0).
 *   RC3  type2 is type when off1 != 0, else NULL: a hit on type2 is a
 *        two-field object, visited with no test of off1 (the usual node);
 *        a hit on type alone is a one-field one.
 */
typedef struct rcgc_refs_cache {
    const rcgc_type *type;
    const rcgc_type *type2;   /* RC3 */
    uint16_t off0;
    uint16_t off1;
    int met;
} rcgc_refs_cache;

static inline void rcgc_refs_cache_init(rcgc_refs_cache *c)
{
    c->type = c->type2 = NULL;
    c->off0 = c->off1 = 0;
    c->met = 0;
}

/* Fill c with t, whose refs array is refs (non-NULL), if t has the cached
 * shape (RC1); returns non-zero if so.  Sets met (RC2) either way. */
static inline int rcgc_refs_cache_fill(rcgc_refs_cache *c, const rcgc_type *t,
                                       const uint16_t *refs)
{
    c->met = 1;
    if (t->traverse != NULL || t->clear != NULL || refs[0] == 0 ||
        (refs[1] != 0 && refs[2] != 0))
        return 0;
    c->type = t;
    c->off0 = refs[0];
    c->off1 = refs[1];
    c->type2 = refs[1] != 0 ? t : NULL;
    return 1;
}

/* The cache's miss path with a refs array (out of line: the collector's
 * loops inline only the hit and the call of a traverse): fills c when o's
 * type has the shape, then traverses o in full (T2), visit called through
 * its pointer. */
static RCGC_NOINLINE int rcgc_obj_traverse_fill(rcgc_refs_cache *c, rcgc_object *o,
                                                rcgc_visitfn visit, void *arg)
{
    (void)rcgc_refs_cache_fill(c, o->type, o->type->refs);
    return rcgc_obj_traverse_inline(o, visit, arg);
}

/* rcgc_obj_traverse_inline through the cache c (T2 either way): a hit
 * visits the two fields inline; a type without refs goes to its traverse
 * at once. */
static RCGC_ALWAYS_INLINE int rcgc_obj_traverse_cached(rcgc_refs_cache *c, rcgc_object *o,
                                                       rcgc_visitfn visit, void *arg)
{
    const rcgc_type *t = o->type;
    if (RCGC_LIKELY(t == c->type2)) {
        /* RC3: two fields, off1 not tested. */
        unsigned off1 = c->off1;
        rcgc_object *r = rcgc_ref_load(o, c->off0);
        int e;
        if (r != NULL && (e = visit(r, arg)) != 0)
            return e;
        if ((r = rcgc_ref_load(o, off1)) != NULL)
            return visit(r, arg);
        return 0;
    }
    if (RCGC_UNLIKELY(t != c->type)) {
        if (t->refs == NULL)
            return t->traverse(o, visit, arg);
        return rcgc_obj_traverse_fill(c, o, visit, arg);
    }
    /* RC3: one field (off1 == 0). */
    rcgc_object *r = rcgc_ref_load(o, c->off0);
    if (r != NULL)
        return visit(r, arg);
    return 0;
}

/* T2 for a loop over objects expected to have no refs array: their
 * traverse is called inline, anything else goes out of line (which fills
 * c when the type fits).  Used where a loop's copy per expected shape
 * keeps each copy's registers for its own common case. */
static RCGC_ALWAYS_INLINE int rcgc_obj_traverse_direct(rcgc_refs_cache *c, rcgc_object *o,
                                                       rcgc_visitfn visit, void *arg)
{
    const rcgc_type *t = o->type;
    if (RCGC_LIKELY(t->refs == NULL))
        return t->traverse(o, visit, arg);
    return rcgc_obj_traverse_fill(c, o, visit, arg);
}

/* rcgc_obj_clear's miss path with a refs array: fills c when o's type has
 * the shape, then clears o (T3). */
static RCGC_NOINLINE void rcgc_obj_clear_fill(rcgc_refs_cache *c, rcgc_object *o)
{
    (void)rcgc_refs_cache_fill(c, o->type, o->type->refs);
    rcgc_obj_clear(o);
}

/* rcgc_obj_clear through the cache c. */
static inline void rcgc_obj_clear_cached(rcgc_refs_cache *c, rcgc_object *o)
{
    const rcgc_type *t = o->type;
    if (RCGC_UNLIKELY(t != c->type)) {
        if (t->refs != NULL)
            rcgc_obj_clear_fill(c, o);
        else if (t->clear != NULL)
            t->clear(o);
        return;
    }
    /* Both offsets first: dropping a reference may run any code. */
    unsigned off0 = c->off0, off1 = c->off1;
    rcgc_ref_clear(o, off0);
    if (off1 != 0)
        rcgc_ref_clear(o, off1);
}

#endif /* RCGC_TRAVERSE_H */
