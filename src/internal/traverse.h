/*
 * traverse.h - the one place that knows how an object's references are
 * found and dropped: a type's declared reference fields (rcgc_type.refs)
 * and its traverse / clear functions.  Every traversal and every clear in
 * the library goes through these helpers (gc.c, gcmodule.c, object.c,
 * runtime.c); none calls type->traverse or type->clear itself.
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

/* Field `off` of o (memcpy: the field's declared type is the user's). */
static inline rcgc_object *rcgc_ref_load(const rcgc_object *o, unsigned off)
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

/* T3 for o, whose type is t (any type: one without refs or clear holds no
 * reference to drop). */
static inline void rcgc_type_clear(const rcgc_type *t, rcgc_object *o)
{
    const uint16_t *refs = t->refs;
    if (refs != NULL) {
        for (unsigned off; (off = *refs) != 0; refs++) {
            rcgc_object *r = rcgc_ref_load(o, off);
            if (r != NULL) {
                static rcgc_object *const null_ref = NULL;
                memcpy((char *)o + off, &null_ref, sizeof null_ref);
                rcgc_decref(r);
            }
        }
    }
    if (t->clear != NULL)
        t->clear(o);
}

/* T3. */
static inline void rcgc_obj_clear(rcgc_object *o)
{
    rcgc_type_clear(o->type, o);
}

#endif /* RCGC_TRAVERSE_H */
