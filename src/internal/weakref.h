/*
 * weakref.h - weak references' internal contract (weakref.c), used by the
 * collector (gc.c) and the weak-valued map (weakmap.c).
 *
 * Layout: an object has weak references iff RCGC_OF_WEAKREFS is set in its
 * header; then rt->weak's table maps its address to the head of a doubly
 * linked list of the rcgc_weakref objects that refer to it (CPython's
 * tp_weaklistoffset list, moved out of the object so that objects without
 * weak references pay nothing).
 *
 * Invariants (rcgc_weak_validate checks them):
 *   W1  o has RCGC_OF_WEAKREFS  <=>  the table has an entry for o  <=>  the
 *       entry's list is non-empty.
 *   W2  every weakref w on o's list has w->referent == o; a weakref not on
 *       any list has referent NULL (it is dead).
 *   W3  list order is CPython's: the shared callback-less reference first
 *       (if any), then references with callbacks, newest first.
 */
#ifndef RCGC_WEAKREF_H
#define RCGC_WEAKREF_H

#include "runtime.h"

/*
 * The collector's weak reference step (CPython's handle_weakrefs).
 * objs[0..n) is the collectable unreachable set: RCGC_OF_COLLECTING set on
 * each, a strong reference held on each by the collector.  Clears every
 * weak reference to those objects and the referents of weak references
 * among them; then calls, in discovery order, the callbacks of the cleared
 * weak references that are not themselves in the set (the callback sees
 * its weak reference dead).  A weak reference still alive after its
 * callback moves to generation `old` and, if it was in the uncollectable set
 * (RCGC_OF_MARK, gc.h C6), leaves it; one freed right after its callback is
 * counted.  Returns that count; *ran is set when a callback ran.
 */
long rcgc_weak_gc_handle(rcgc_runtime *rt, rcgc_object *const *objs, size_t n,
                         unsigned old, int *ran);

/* Non-zero when the collector's weak reference step must look at o. */
static inline int rcgc_weak_involved(const rcgc_object *o)
{
    return (o->flags & RCGC_OF_WEAKREFS) || o->type == &rcgc_weakref_type;
}

/* weakref.finalize's atexit: call every live finalizer, newest first,
 * including ones created meanwhile; afterwards none is called again.  Called
 * by the shutdown collection (gc.c). */
void rcgc_weak_atexit(rcgc_runtime *rt);

/* Make w dead now, without calling its callback, and drop the callback's
 * object (the weak-valued map does this to the references it discards, so
 * that no callback can reach a map that is gone). */
void rcgc_weak_kill(rcgc_weakref *w);

/* Check W1-W3 (debug); writes what is wrong to out and returns
 * RCGC_EFORMAT, or RCGC_OK. */
int rcgc_weak_validate(rcgc_runtime *rt, FILE *out);
/* The number of objects with weak references (RCGC_OF_WEAKREFS; W1). */
size_t rcgc_weak_nobjects(const rcgc_runtime *rt);

#endif /* RCGC_WEAKREF_H */
