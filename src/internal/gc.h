/*
 * gc.h - the cycle collector's internal contract, shared by gc.c and
 * gcdelete.c (the algorithm; gcwork.h holds their work space), gcmodule.c
 * (the gc module's API) and weakref.c.
 *
 * docs/design-gc.md walks through the algorithm with diagrams; the short
 * version of what must hold:
 *
 *   C1  Between collections no object has RCGC_OF_COLLECTING,
 *       RCGC_OF_REACHABLE or RCGC_OF_MARK set, and every refcount is the
 *       true number of strong references.  The scratch bits
 *       (RCGC_OF_GC_SCRATCH: counts of internal references, the
 *       saturation bit, a gather's leaf mark - Y1 in gc.c) are zero
 *       whenever user code can run, during collections too (rcgc_validate
 *       checks it), but for the unsettled objects of the birth log (B1,
 *       runtime.h), whose flag and index they hold: a collection settles
 *       the log at its entry, and an object born while a collection's user
 *       code runs is no member of its set (membership after user code is
 *       RCGC_OF_COLLECTING's).
 *   C2  During trial deletion (gather .. partition) no user code runs: no
 *       finalizer, callback, OOM handler or allocation that could collect.
 *       Members then carry scratch counts in their flags (and a saturated
 *       one a scratch refcount), and no generation changes until the
 *       partition, so membership in the set (tracked, generation <= g) is
 *       read from the header.  The one exception: a young collection's mark
 *       moves a pooled member it reaches (not saturated) to the survivors'
 *       generation at once, which takes it out of the set; that is its
 *       reached mark, and nothing after the mark needs it as a member.
 *       Only members get scratch bits (the gather counts and marks members
 *       alone, and a young reach clears them in the write that moves the
 *       member out), so during trial deletion a header with a scratch bit
 *       set is a member's: the full mark's visits take that for their
 *       membership test (gc.c's visit_reach_set, fdrain_reach; asserted
 *       there).  An object still in the birth log (B1, runtime.h), whose
 *       UNSETTLED bit, class and log index sit in those bits, cannot be
 *       met then: rcgc_gc_collect_main settles the log before the gather,
 *       and by C2 itself nothing is born until the partition is done.
 *   C3  From the moment the unreachable set is known until it is released,
 *       the collector holds one strong reference to each of its objects, so
 *       nothing in its work array can be freed under it.  The exception is
 *       K1 (gcdelete.c's rcgc_gc_delete_closed): a set the young partition
 *       or a generation-0 collection's sums found closed and quiet is never
 *       held nor flagged; it is freed in step 9 before anything else runs
 *       (no user code, no allocation), and only its own members refer to
 *       it.  A set a full collection's partition found closed and quiet
 *       (K2, gc.c's record_word_k2) is held and flagged as usual, and freed
 *       the same way with its holds: nothing reads them again.
 *   C4  rt->gc.collecting is non-zero for the whole of a collection,
 *       callbacks included; a collection asked for meanwhile returns 0.
 *   C5  Frozen objects (generation 3) are never gathered, moved or changed.
 *   C6  During a collection RCGC_OF_MARK is set exactly on the members of
 *       the uncollectable set (legacy finalizers and what they reach); a
 *       weak reference among them whose callback runs loses it and leaves
 *       the set (CPython moves it to the old generation).
 */
#ifndef RCGC_GC_H
#define RCGC_GC_H

#include "runtime.h"

#define RCGC_NGENS 3

/*
 * Collect `generation` and all younger ones (CPython's gc_collect_main):
 * no callbacks, rt->gc.collecting must already be set by the caller.
 * *collected / *uncollectable receive the counts (either may be NULL).
 * Returns collected + uncollectable, or RCGC_ENOMEM when the work space
 * could not be allocated (then nothing changed: counts, generations and
 * stats are as before).
 */
long rcgc_gc_collect_main(rcgc_runtime *rt, int generation, long *collected,
                          long *uncollectable);

/* The same wrapped in the "start" / "stop" callbacks (gc.callbacks).
 * rt->gc.collecting must be set by the caller. */
long rcgc_gc_collect_with_callbacks(rcgc_runtime *rt, int generation);

/* Write CPython's one-line object description, "gc: <msg> <Type 0x...>",
 * to stderr. */
void rcgc_gc_debug_object(const char *msg, const rcgc_object *o);

/* The list behind gc.garbage, created on first use; NULL on out of memory. */
rcgc_list *rcgc_gc_garbage_list(rcgc_runtime *rt);

/* Move a surviving object to generation `gen` unless it is untracked or
 * frozen (C5). */
static inline void rcgc_gc_promote(rcgc_runtime *rt, rcgc_object *o, unsigned gen)
{
    if ((o->flags & RCGC_OF_TRACKED) && rcgc_obj_gen(o) != gen &&
        rcgc_obj_gen(o) != RCGC_GEN_PERMANENT)
        rcgc_obj_set_gen(rt, o, gen);
}

#endif /* RCGC_GC_H */
