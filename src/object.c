/*
 * object.c - object creation, deallocation at refcount zero, tracking and
 * generations.
 *
 * Deallocation order (CPython's subtype_dealloc):
 *   1. the PEP 442 finalizer, once per object ever; it may resurrect
 *   2. weak references cleared, their callbacks run
 *   3. the legacy finalizer (tp_del); it may resurrect
 *   4. untrack; 5. clear (drop references); 6. the type's dealloc; 7. free.
 * Nested deallocations run recursively up to RCGC_TRASH_DEPTH, then are
 * deferred to a pending stack and run when the outermost one finishes, so
 * dropping the head of an arbitrarily long chain uses bounded C stack (the
 * "trashcan", docs/design.md).
 *
 * Tracking: a pooled tracked object has its bit set in its pool's tracked
 * bitmap and counts in pool->nyoung while in generation 0 or 1; a foreign one
 * sits on its generation's list.  Everything that changes tracking or
 * generation goes through rcgc_obj_track/untrack/set_gen.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "pool.h"
#include "runtime.h"
#include "tmfast.h"

#define RCGC_TRASH_DEPTH 64

/* ------------------------------------------------------------ runtime of */

static inline rcgc_runtime *obj_runtime(const rcgc_object *o)
{
    if (RCGC_UNLIKELY(o->flags & RCGC_OF_FOREIGN))
        return rcgc_foreign_of(o)->rt;
    return rcgc_arena_of(o)->rt;
}

rcgc_runtime *rcgc_obj_runtime(const rcgc_object *o)
{
    return obj_runtime(o);
}

rcgc_runtime *rcgc_object_runtime(const rcgc_object *o)
{
    return rcgc_obj_runtime(o);
}

/* ---------------------------------------------------------------- errors */

void rcgc_object_dump(const rcgc_object *o, FILE *out)
{
    /* A freed pooled object's first 8 bytes are the pool's free-list link:
     * its flags and refcount mean nothing, and only the arena map can say
     * whose it was. */
    rcgc_arena *arena = rcgc_arena_lookup(o);
    rcgc_runtime *rt = arena ? arena->rt : NULL;
    fprintf(out, "object address  : %p\n", (const void *)o);
    if (o->type == RCGC_FREED_TYPE) {
        fprintf(out, "object refcount : %u (freed memory: not a count)\n", o->refcnt);
        fprintf(out, "object type     : <freed>\n");
        if (rt != NULL)
            rcgc_trace_print_block(rt, RCGC_DOMAIN_OBJ, o, out);
        fflush(out);
        return;
    }
    if (rt == NULL && (o->flags & RCGC_OF_FOREIGN))
        rt = rcgc_foreign_of(o)->rt;
    const char *name = o->type ? o->type->name : "<none>";
    fprintf(out, "object refcount : %u\n", o->refcnt);
    fprintf(out, "object type     : %s\n", name);
    fprintf(out, "object flags    : 0x%x (%stracked, generation %u%s%s)\n", o->flags,
            (o->flags & RCGC_OF_TRACKED) ? "" : "not ", rcgc_obj_gen(o),
            (o->flags & RCGC_OF_FINALIZED) ? ", finalized" : "",
            (o->flags & RCGC_OF_FOREIGN) ? ", foreign" : "");
    if (rt != NULL)
        rcgc_trace_print_block(rt, RCGC_DOMAIN_OBJ, rcgc_obj_block(o), out);
    fflush(out);
}

_Noreturn void rcgc_obj_fatal(const rcgc_object *o, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "rcgc: %s\n", msg);
    rcgc_object_dump(o, stderr);
    rcgc_fatal("%s", msg);
}

void rcgc_refcount_error(rcgc_object *o, const char *what)
{
    if (o->type == RCGC_FREED_TYPE)
        rcgc_obj_fatal(o, "%s of a freed object %p", what, (void *)o);
    if (o->refcnt == 0)
        rcgc_obj_fatal(o, "%s of object %p (%s) with refcount 0: it is freed or being freed",
                       what, (void *)o, o->type->name);
    rcgc_obj_fatal(o, "%s of object %p: refcount %u is invalid (freed memory or overflow)",
                   what, (void *)o, o->refcnt);
}

/* ------------------------------------------------------------- counters */

/* Generation 0's count lowered for a death, if positive (CPython's
 * schedule: count[0] never goes below 0 through deaths). */
static RCGC_ALWAYS_INLINE void count0_death(long *count0)
{
#if RCGC_RMW_ASM
    _Static_assert(sizeof(long) == 8, "count0_death: subq on a long");
    __asm__("cmpq $0, %0\n\tjle 1f\n\tsubq $1, %0\n1:" : "+m"(*count0) : : "cc");
#else
    if (RCGC_LIKELY(*count0 > 0))
        --*count0;
#endif
}

/* Generation 0's count raised for a birth. */
static RCGC_ALWAYS_INLINE void count0_birth(long *count0)
{
#if RCGC_RMW_ASM
    __asm__("addq $1, %0" : "+m"(*count0) : : "cc");
#else
    ++*count0;
#endif
}

/* The end of a deallocation level: dealloc_depth lowered; returns whether
 * it reached 0 (the outermost deallocation ended). */
static RCGC_ALWAYS_INLINE int depth_leave(rcgc_runtime *rt)
{
#if RCGC_RMW_ASM
    __asm__ goto("subl $1, %0\n\tjz %l[outermost]" : "+m"(rt->obj.dealloc_depth) : : "cc"
                 : outermost);
    return 0;
outermost:
    return 1;
#else
    return --rt->obj.dealloc_depth == 0;
#endif
}

/* The end of a deallocation level entered from outside (not nested):
 * returns whether it was the outermost one with deaths deferred by the
 * trashcan pending.  Such a level is mostly the outermost, where
 * depth_leave's jump is taken and the pending test follows: the pending
 * count is tested first instead, and with none pending the level's end is
 * the decrement alone (nothing can be run at any depth).  A nested level
 * is mostly not the outermost: depth_leave is one test less there. */
static RCGC_ALWAYS_INLINE int depth_leave_outer(rcgc_runtime *rt)
{
    if (RCGC_LIKELY(rt->obj.npending == 0)) {
        rt->obj.dealloc_depth--;
        return 0;
    }
    return depth_leave(rt);
}

/* Whether anything sits between rcgc and its pools (rt->mem.slow != 0),
 * for the creation's and the deallocation's fast paths: one compare with
 * memory (in C the compiler loads and tests: one instruction more). */
static RCGC_ALWAYS_INLINE int mem_slow(const rcgc_runtime *rt)
{
#if RCGC_RMW_ASM
    __asm__ goto("cmpl $0, %0\n\tjne %l[slow]" : : "m"(rt->mem.slow) : "cc" : slow);
    return 0;
slow:
    return 1;
#else
    return rt->mem.slow != 0;
#endif
}

/* ------------------------------------------------------------- tracking */

static inline rcgc_gen_state *gen_state(rcgc_runtime *rt, unsigned gen)
{
    return gen == RCGC_GEN_PERMANENT ? &rt->gc.permanent : &rt->gc.gens[gen];
}

/* rcgc_obj_track / rcgc_obj_untrack are inline (runtime.h); these are
 * their foreign-object parts, after the flags and counts changed. */
void rcgc_obj_track_foreign(rcgc_runtime *rt, rcgc_object *o)
{
    rcgc_foreign *f = rcgc_foreign_of(o);
    rcgc_flist_remove(f);
    rcgc_flist_append(&rt->gc.gens[0].head, f);
}

void rcgc_obj_untrack_foreign(rcgc_runtime *rt, rcgc_object *o)
{
    rcgc_foreign *f = rcgc_foreign_of(o);
    rcgc_flist_remove(f);
    rcgc_flist_append(&rt->obj.untracked, f);
}

void rcgc_obj_set_gen(rcgc_runtime *rt, rcgc_object *o, unsigned gen)
{
    RCGC_ASSERT((o->flags & RCGC_OF_TRACKED) && !(o->flags & RCGC_OF_UNSETTLED));
    unsigned old = rcgc_obj_gen(o);
    if (old == gen)
        return;
    o->flags = (o->flags & ~RCGC_OF_GEN_MASK) | (gen << RCGC_OF_GEN_SHIFT);
    gen_state(rt, old)->nobjects--;
    rcgc_gen_state *to = gen_state(rt, gen);
    to->nobjects++;
    if (o->flags & RCGC_OF_FOREIGN) {
        rcgc_foreign *f = rcgc_foreign_of(o);
        rcgc_flist_remove(f);
        rcgc_flist_append(&to->head, f);
        return;
    }
    int was_young = old < 2, is_young = gen < 2;
    if (was_young == is_young)
        return;
    rcgc_pool *pool = rcgc_pool_of(o);
    if (is_young) {
        if (pool->nyoung++ == 0)
            rcgc_pool_young_add(rt, pool);
    } else if (--pool->nyoung == 0) {
        rcgc_pool_young_remove(rt, pool);
    }
}

/* The pool side of settling (B3) for a run of 32-byte objects of pool in
 * one tracked word: their tracked bits tmask in tracked word w, their P5
 * bits p5 in gen0[0]; ntracked and nyoung raised by their number, the
 * pool into the young list if it was not there. */
static RCGC_NOINLINE void settle_flush(rcgc_runtime *rt, rcgc_pool *pool, unsigned w,
                                       uint64_t tmask, uint64_t p5)
{
    /* One bit a settled object: blocks of one word are distinct. */
    uint32_t k = (uint32_t)__builtin_popcountll(tmask);
    pool->tracked[w] |= tmask;
    pool->gen0[0] |= p5;
    int join = pool->nyoung == 0;
    pool->ntracked = (uint16_t)(pool->ntracked + k);
    pool->nyoung = (uint16_t)(pool->nyoung + k);
    if (join)
        rcgc_pool_young_add(rt, pool);
}

/* Settling one object of another class than the 32-byte one: its block
 * index by multiply, as rcgc_obj_track_pooled. */
static RCGC_NOINLINE void settle_other(rcgc_runtime *rt, rcgc_pool *pool, rcgc_object *o)
{
    if (rcgc_obj_track_bits(pool, o))
        rcgc_pool_young_add(rt, pool);
}

/* x | 1 << (n & 63): on x86-64 one bts (its register form masks the bit
 * number), where the compiler loads a 1 and shifts it (two instructions
 * more). */
static RCGC_ALWAYS_INLINE uint64_t bit_or(uint64_t x, uint64_t n)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __asm__("btsq %1, %0" : "+r"(x) : "r"(n) : "cc");
    return x;
#else
    return x | (uint64_t)1 << (n & 63);
#endif
}

/* The log in order; each object's header loses its scratch bits (B1's
 * flag and index).  A 32-byte object's bits come from its address, as
 * rcgc_obj_track_bits_32's (a logged object is a fast-path block: of a
 * request class's pool, blocks from the pool's start, C5), gathered in
 * registers while consecutive entries share a tracked word (the usual
 * case: blocks are handed out in address order) and written once for
 * the run, with the run's counts. */
void rcgc_obj_settle_log(rcgc_runtime *rt)
{
    /* B5: the last slot's object becomes the last entry (births[] has room
     * for it: B2), so that one loop settles them all; its flags keep no
     * index (the entry may be the 4096th, whose index + 1 would not fit). */
    rcgc_object *last = rt->obj.birth_last;
    uint32_t nindexed = (uint32_t)rt->obj.nbirths;
    if (last != NULL) {
        RCGC_ASSERT(nindexed <= RCGC_BIRTHS && (last->flags >> RCGC_OF_BIRTH_SHIFT) == 0);
        rt->births[nindexed] = last;
        rt->obj.nbirths = nindexed + 1;
        rt->obj.birth_last = NULL;
    }
    (void)nindexed;
    uint32_t n = (uint32_t)rt->obj.nbirths;
    rcgc_object **log = rt->births;
    rcgc_pool *pool = NULL;
    uintptr_t key = 0;   /* address >> 11 of the run's tracked word; 0: none */
    uint64_t tmask = 0, p5 = 0;
    int g2 = rt->gc.refs_tracked;
    for (uint32_t i = 0; i < n; i++) {
        rcgc_object *o = log[i];
        if (o == NULL)
            continue;
        /* G2 for a logged object of a type with refs (its birth did not
         * note it: type_is_gc_logged); one test a member once noted. */
        if (!g2 && o->type->refs != NULL)
            g2 = 1;
        RCGC_ASSERT((o->flags & (RCGC_OF_UNSETTLED | RCGC_OF_TRACKED | RCGC_OF_GEN_MASK |
                                 RCGC_OF_FOREIGN)) == (RCGC_OF_UNSETTLED | RCGC_OF_TRACKED) &&
                    (i < nindexed ? rcgc_obj_birth_index(o->flags) == i
                                  : (o->flags >> RCGC_OF_BIRTH_SHIFT) == 0));
        o->flags &= ~RCGC_OF_GC_SCRATCH;
        uintptr_t a = (uintptr_t)o;
        if (RCGC_UNLIKELY((a >> 11) != key)) {
            if (tmask != 0)
                settle_flush(rt, pool, (unsigned)(key & 7), tmask, p5);
            pool = rcgc_pool_of(o);
            tmask = 0, p5 = 0;
            if (pool->szidx != 1) {
                key = 0;
                settle_other(rt, pool, o);
                continue;
            }
            RCGC_ASSERT(pool->size == 32 &&
                        pool->mem == (char *)(a & ~(uintptr_t)(RCGC_POOL_SIZE - 1)));
            key = a >> 11;
        }
        tmask = bit_or(tmask, a >> 5);
        p5 = bit_or(p5, a >> 8);   /* P5 */
    }
    if (tmask != 0)
        settle_flush(rt, pool, (unsigned)(key & 7), tmask, p5);
    rt->gc.refs_tracked = g2;
    /* B4: the entries' share of generation 0's count moves to the stored
     * count (the emptied ones were taken off it at their deaths). */
    rt->gc.gens[0].nobjects += (long)n;
    rt->obj.nbirths = 0;
}

static inline int gen_selected(unsigned gen, unsigned gens)
{
    if (gens & RCGC_GEN_EXACT)
        return gen == (gens & 3u);
    return gen <= gens;
}

static int foreach_pool(rcgc_runtime *rt, rcgc_pool *pool, unsigned gens, rcgc_obj_iterfn fn,
                        void *arg)
{
    size_t pre = rt->mem.debug_pre;
    for (unsigned w = 0; w < RCGC_POOL_BITMAP_WORDS; w++) {
        uint64_t bits = pool->tracked[w];
        while (bits) {
            unsigned i = w * 64 + (unsigned)__builtin_ctzll(bits);
            bits &= bits - 1;
            rcgc_object *o = (rcgc_object *)((char *)rcgc_pool_block(pool, i) + pre);
            if (gen_selected(rcgc_obj_gen(o), gens)) {
                int rc = fn(o, arg);
                if (rc)
                    return rc;
            }
        }
    }
    return 0;
}

int rcgc_obj_foreach_tracked(rcgc_runtime *rt, unsigned gens, rcgc_obj_iterfn fn, void *arg)
{
    rcgc_obj_settle(rt);   /* B3: the walk reads the bitmaps */
    unsigned maxgen = (gens & RCGC_GEN_EXACT) ? (gens & 3u) : (gens > 3 ? 3 : gens);
    int rc;
    if (maxgen < 2) {
        rcgc_pool *next;
        for (rcgc_pool *pool = rt->pool.young; pool; pool = next) {
            next = pool->young_next;
            if ((rc = foreach_pool(rt, pool, gens, fn, arg)) != 0)
                return rc;
        }
    } else {
        for (rcgc_arena *a = rt->pool.all; a; a = a->allnext) {
            for (unsigned i = 0; i < a->ncarved; i++) {
                rcgc_pool *pool = rcgc_arena_pool(a, i);
                if (pool->ntracked == 0)
                    continue;
                if ((rc = foreach_pool(rt, pool, gens, fn, arg)) != 0)
                    return rc;
            }
        }
    }
    /* Foreign objects, oldest list first: an object moved to an older
     * generation by fn lands on a list already visited. */
    for (int g = 3; g >= 0; g--) {
        if (!gen_selected((unsigned)g, gens))
            continue;
        rcgc_foreign *head = &gen_state(rt, (unsigned)g)->head;
        rcgc_foreign *f = head->next, *next;
        for (; f != head; f = next) {
            next = f->next;
            if ((rc = fn(rcgc_foreign_obj(f), arg)) != 0)
                return rc;
        }
    }
    return 0;
}

/* ------------------------------------------------------------- creation */

/* Allocate an object's memory, zeroed, when the pools' fast path cannot:
 * a pool block (the slow path of the pools, or through the OBJ domain's
 * hooks when the object with their overhead fits a size class), otherwise a
 * block with the foreign prefix.  NULL on failure. */
static RCGC_NOINLINE rcgc_object *object_alloc_slow(rcgc_runtime *rt, size_t size,
                                                   const char *file, int line)
{
    if (RCGC_LIKELY(!rt->mem.slow) && size <= RCGC_SMALL_LIMIT) {
        void *p = rcgc_pool_alloc_slow(rt, (unsigned)rcgc_size_class(size));
        if (RCGC_LIKELY(p != NULL)) {
            memset(p, 0, size);
            return p;
        }
    }
    if (rt->mem.slow == RCGC_SLOW_TRACE && size <= RCGC_SMALL_LIMIT) {
        /* Tracing alone (tmfast.h); on failure the wrapper path below. */
        void *p = rcgc_pool_alloc(rt, size);
        if (RCGC_LIKELY(p != NULL)) {
            if (RCGC_LIKELY(rcgc_trace_try_record(rt, rcgc_pool_of(p), p, size, file, line)) ||
                rcgc_trace_record_block(rt, p, size, file, line, RCGC_TRACE_FAST_OBJ) == 0) {
                memset(p, 0, size);
                return p;
            }
            rcgc_pool_free(rt, p);
        }
    }
    rt->mem.site_file = file;
    rt->mem.site_line = line;
    rcgc_object *o = NULL;
    rcgc_domain_state *ds = &rt->mem.domains[RCGC_DOMAIN_OBJ];
    if (ds->base_is_pool && size + rt->mem.debug_pre + rt->mem.debug_post <= RCGC_SMALL_LIMIT) {
        o = rcgc_mem_domain_alloc(rt, RCGC_DOMAIN_OBJ, size);
        if (o != NULL) {
            rt->mem.domains[RCGC_DOMAIN_OBJ].live--;   /* an object (OC1) */
            memset(o, 0, size);
        }
        RCGC_ASSERT(o == NULL || rcgc_arena_lookup(o) != NULL);
    } else if (size <= SIZE_MAX - sizeof(rcgc_foreign)) {
        size_t total = size + sizeof(rcgc_foreign);
        rcgc_foreign *f = rcgc_mem_domain_alloc(rt, RCGC_DOMAIN_OBJ, total);
        if (f != NULL) {
            rt->mem.domains[RCGC_DOMAIN_OBJ].live--;   /* an object (OC1) */
            memset(f, 0, total);
            f->rt = rt;
            f->size = total;
            rcgc_flist_append(&rt->obj.untracked, f);
            o = rcgc_foreign_obj(f);
            o->flags = RCGC_OF_FOREIGN;
        }
    }
    rt->mem.site_file = NULL;
    return o;
}

/* Zero a fresh pool block's payload: the bytes after the header in a block
 * of size class szidx (16 * szidx bytes, which covers the object's size):
 * small objects with a few stores, bigger ones with memset. */
static inline void zero_payload(rcgc_object *o, unsigned szidx)
{
    uint64_t *q = (uint64_t *)(o + 1);
    if (RCGC_LIKELY(szidx == 1)) {
        /* A 32-byte block (a header and two pointers: the common node)
         * first: one compare instead of three. */
        q[0] = 0, q[1] = 0;
        return;
    }
    if (RCGC_LIKELY(szidx <= 3)) {
        /* Tests, not a switch: a jump table's indirect jump costs more
         * than the two compares a 32-byte object takes here. */
        if (szidx >= 1) {
            q[0] = 0, q[1] = 0;
            if (szidx >= 2) {
                q[2] = 0, q[3] = 0;
                if (szidx == 3)
                    q[4] = 0, q[5] = 0;
            }
        }
        return;
    }
    memset(q, 0, (size_t)szidx * 16);
}

/* A new object of a type with a traverse, after its allocation was counted
 * in generation 0 (gens[0].count): CPython's order is to count the
 * allocation and maybe collect before the object is tracked.  The fast path
 * of new_object does the same inline when no collection is due. */
static RCGC_NOINLINE rcgc_object *new_gc_object_counted(rcgc_runtime *rt, rcgc_object *o,
                                                       const rcgc_type *type)
{
    RCGC_ENTER(rt);
    rcgc_gc_state *gs = &rt->gc;
    if (gs->gens[0].count > gs->gens[0].threshold && gs->enabled)
        rcgc_gc_maybe_collect(rt);
    if (!(type->flags & RCGC_TYPE_UNTRACKED_AT_BIRTH))
        rcgc_obj_track(rt, o);
    RCGC_LEAVE(rt);
    return o;
}

static RCGC_NOINLINE rcgc_object *new_object_slow(rcgc_runtime *rt, const rcgc_type *type,
                                                 size_t size, const char *file, int line)
{
    if (RCGC_UNLIKELY(size < sizeof(rcgc_object)))
        return NULL;   /* rcgc_new_at's type->size, tested here */
    RCGC_ENTER(rt);
    rcgc_object *o = object_alloc_slow(rt, size, file, line);
    if (o != NULL) {
        o->refcnt = 1;
        o->type = type;
        rt->obj.live_objects++;
    }
    RCGC_LEAVE(rt);
    if (o != NULL && rcgc_type_is_gc_new(type)) {
        rt->gc.gens[0].count++;
        return new_gc_object_counted(rt, o, type);
    }
    return o;
}

/* The end of new_object when the new object's pool joins the young list. */
static RCGC_NOINLINE rcgc_object *new_object_young(rcgc_runtime *rt, rcgc_pool *pool,
                                                  rcgc_object *o)
{
    rcgc_pool_young_add(rt, pool);
    return o;
}

/* The end of new_object_init when the log's last slot is taken (B5) and
 * births[] is full (B3): the log is settled, the slot's object with it (the
 * settle appends it), and o, its header not yet written, takes the emptied
 * slot, which counts it in generation 0 (B4). */
static RCGC_NOINLINE rcgc_object *new_object_log_full(rcgc_runtime *rt, rcgc_object *o,
                                                     unsigned szidx)
{
    RCGC_ENTER(rt);
    rcgc_obj_settle_log(rt);
    RCGC_ASSERT(rt->obj.birth_last == NULL && rt->obj.nbirths == 0);
    o->flags = rcgc_obj_birth_flags_last(szidx);
    rt->obj.birth_last = o;
    RCGC_LEAVE(rt);
    return o;
}

/* Whether type t is a GC type, for a birth into the birth log: one test of
 * both pointers together, with no taken branch for either kind of GC type
 * (rcgc_type_is_gc_new_note's refs test first cost a traverse-only type
 * two).  G2's note for a logged object is its settle's
 * (rcgc_obj_settle_log): nothing reads G2 with a non-empty log (B3). */
static RCGC_ALWAYS_INLINE int type_is_gc_logged(const rcgc_type *t)
{
#if RCGC_DEBUG >= 1
    if (t->refs != NULL)
        rcgc_type_check_refs(t);
#endif
    return ((uintptr_t)t->traverse | (uintptr_t)t->refs) != 0;
}

/* The rest of new_object once the pools gave o, a block of size class
 * szidx of a request class's pool (the fast paths pop no traced pool's
 * block: C5): pool is o's pool descriptor when the block came from a
 * pool's free list, NULL (a constant) when it came from the free cache,
 * where tracking finds it itself (an untracked object never needs it).
 * new_object calls it with the constant 1 for the 32-byte class (a header
 * and two pointers: the common node), whose block index is the pool
 * offset shifted by 5 (blocks start at the pool's start: H1 is only for
 * traced pools) instead of the multiply by pool->inv; that also tells the
 * compiler that the index is below 512, so P5's summary word is gen0[0]. */
static RCGC_ALWAYS_INLINE rcgc_object *new_object_init(rcgc_runtime *rt, const rcgc_type *type,
                                                       unsigned szidx, rcgc_object *o,
                                                       rcgc_pool *pool)
{
    RCGC_ENTER(rt);
    zero_payload(o, szidx);
    o->refcnt = 1;
    o->type = type;
    rt->obj.live_objects++;
    rcgc_gc_state *gs = &rt->gc;
    /* A block from a pool's free list is tracked at once (G2 noted
     * here); one from the free cache goes into the log (G2 by its
     * settle). */
    if (pool != NULL ? !rcgc_type_is_gc_new_note(type, &gs->refs_tracked)
                     : !type_is_gc_logged(type)) {
        o->flags = 0;
        RCGC_LEAVE(rt);
        return o;
    }
    /* count[0] + 1 > threshold tested on the count before it goes up, so
     * that the increment is one read-modify-write of memory. */
    long count = gs->gens[0].count;
    count0_birth(&gs->gens[0].count);
    if (RCGC_UNLIKELY(count >= gs->gens[0].threshold && gs->enabled) ||
        RCGC_UNLIKELY(type->flags & RCGC_TYPE_UNTRACKED_AT_BIRTH)) {
        o->flags = 0;
        RCGC_LEAVE(rt);
        return new_gc_object_counted(rt, o, type);
    }
    if (pool != NULL) {
        /* A block from a pool's free list (the collector gives garbage
         * back there, and the free cache's overflow goes there): such
         * births come in runs after a collection and mostly live until
         * the next, and their descriptor is at hand, so rcgc_obj_track's
         * pool part now costs less than a log entry and its settle. */
        o->flags = RCGC_OF_TRACKED;
        gs->gens[0].nobjects++;
        RCGC_ASSERT(pool->szidx == szidx &&
                    pool->mem == (char *)((uintptr_t)o & ~(uintptr_t)(RCGC_POOL_SIZE - 1)));
        int join = szidx == 1 ? rcgc_obj_track_bits_32(pool, o) : rcgc_obj_track_bits(pool, o);
        RCGC_LEAVE(rt);
        if (RCGC_UNLIKELY(join))
            return new_object_young(rt, pool, o);
        return o;
    }
    /* A block from the free cache, freed by a death moments ago (the
     * temporaries' pattern, new and dead in turn): rcgc_obj_track with
     * its pool's part deferred.  The object goes unsettled (B1) into the
     * birth log's last slot when the slot is empty, with no index in its
     * flags (B5), and the slot counts it in generation 0 (B4): a load, a
     * test and a store, where an entry of births[] costs the top's load,
     * the capacity's compare, the index in the flags and two stores (and
     * its death the index's extraction and compare).  A taken slot stays
     * with its object until that dies or the log is settled: the birth
     * goes to the top of births[] with its index (B2), as before the
     * slot, so that structures built before they die (binary-trees'
     * trees) pay the slot's test and nothing else; a full births[] is
     * settled first (new_object_log_full). */
    RCGC_ASSERT(rcgc_pool_of(o)->szidx == szidx);
    if (RCGC_LIKELY(rt->obj.birth_last == NULL)) {
        o->flags = rcgc_obj_birth_flags_last(szidx);
        rt->obj.birth_last = o;
        RCGC_LEAVE(rt);
        return o;
    }
    size_t n = rt->obj.nbirths;
    if (RCGC_UNLIKELY(n >= RCGC_BIRTHS)) {
        RCGC_LEAVE(rt);
        return new_object_log_full(rt, o, szidx);
    }
    /* The header first: after the log's stores, GCC merged this store
     * with the untracked return's (two instructions more there). */
    o->flags = rcgc_obj_birth_flags(szidx, n);
    rt->births[n] = o;
    rt->obj.nbirths = n + 1;
    RCGC_LEAVE(rt);
    return o;
}

/* new_object_init for a block of size class szidx (not the 32-byte one)
 * from the free cache, out of line: an unsettled birth's flags take the
 * class (B1), which kept szidx live to the end of this path and cost the
 * 32-byte class's paths a saved register in rcgc_new_at. */
static RCGC_NOINLINE rcgc_object *new_object_cached(rcgc_runtime *rt, const rcgc_type *type,
                                                  unsigned szidx, rcgc_object *o)
{
    return new_object_init(rt, type, szidx, o, NULL);
}

/* Both creation calls: the pools' fast path inline, and for a GC type the
 * count and the tracking inline too; everything that calls out in tail
 * calls, so the common case needs no stack frame.  The two halves of the
 * pools' fast path each get their own copy of the rest, so that a block
 * from a pool's free list (the usual case after the collector freed
 * garbage, which bypasses the free cache) is tracked without computing
 * the pool descriptor again. */
static RCGC_ALWAYS_INLINE rcgc_object *new_object(rcgc_runtime *rt, const rcgc_type *type,
                                                  size_t size, const char *file, int line)
{
    /* size > RCGC_SMALL_LIMIT, and size < sizeof(rcgc_object) (which
     * wraps around) for rcgc_new_at, in one compare; new_object_slow
     * refuses the latter. */
    if (RCGC_UNLIKELY(size - sizeof(rcgc_object) > RCGC_SMALL_LIMIT - sizeof(rcgc_object)))
        return new_object_slow(rt, type, size, file, line);
    unsigned szidx = (unsigned)((size - 1) >> RCGC_ALIGN_SHIFT);   /* size >= 16 */
    /* No test of the mode before the pop: it fails whenever anything is
     * on (C5, pool.h), and only then is the mode read. */
    rcgc_object *o = rcgc_pool_try_pop_fast(&rt->pool, szidx);
    if (RCGC_LIKELY(o != NULL)) {
        if (RCGC_LIKELY(szidx == 1))
            return new_object_init(rt, type, 1, o, NULL);
        return new_object_cached(rt, type, szidx, o);
    }
    if (RCGC_UNLIKELY(mem_slow(rt)))
        return new_object_slow(rt, type, size, file, line);
    rcgc_pool *pool;
    o = rcgc_pool_try_alloc_used(&rt->pool, szidx, &pool);
    if (RCGC_UNLIKELY(o == NULL))
        return new_object_slow(rt, type, size, file, line);
    if (RCGC_LIKELY(szidx == 1))
        return new_object_init(rt, type, 1, o, pool);
    return new_object_init(rt, type, szidx, o, pool);
}

rcgc_object *rcgc_new_var_at(rcgc_runtime *rt, const rcgc_type *type, size_t nitems,
                             const char *file, int line)
{
    if (RCGC_UNLIKELY(type == NULL || type->size < sizeof(rcgc_object)))
        return NULL;
    size_t size = type->size;
    if (type->itemsize) {
        if (nitems > (SIZE_MAX - size) / type->itemsize)
            return NULL;
        size += nitems * type->itemsize;
    }
    return new_object(rt, type, size, file, line);
}

rcgc_object *rcgc_new_at(rcgc_runtime *rt, const rcgc_type *type, const char *file, int line)
{
    /* A size below the header's is refused by new_object's slow path. */
    if (RCGC_UNLIKELY(type == NULL))
        return NULL;
    return new_object(rt, type, type->size, file, line);
}

/* --------------------------------------------------------- deallocation */

/* The memory of a pooled object of size class c when nothing but tracing
 * is on: its trace forgotten (tmfast.h), the block into the free cache. */
static RCGC_ALWAYS_INLINE void free_pooled_class(rcgc_runtime *rt, rcgc_object *o, unsigned c)
{
    rt->obj.live_objects--;
    o->type = RCGC_FREED_TYPE;
    if (RCGC_UNLIKELY(mem_slow(rt)))
        rcgc_trace_forget_object(rt, o);
    rcgc_pool_free_class(rt, &rt->pool, o, c);
}

/* The memory of a pooled object whose push into the free cache found its
 * limit (C3) while nothing is on: the class's last live block, or a full
 * row. */
static RCGC_ALWAYS_INLINE void free_pooled_limit(rcgc_runtime *rt, rcgc_object *o,
                                                  rcgc_pool *pool)
{
    RCGC_ASSERT(rt->mem.slow == 0 && pool == rcgc_pool_of(o));
    rt->obj.live_objects--;
    o->type = RCGC_FREED_TYPE;
    rcgc_pool_push_limit_in(rt, &rt->pool, pool, o);
}

/* The size class of pooled object o from its arena's class table (no pool
 * descriptor read). */
static inline unsigned pooled_class(const rcgc_object *o)
{
    return rcgc_block_class(o);
}

/* free_pooled_class with the class from the arena's class table (no pool
 * descriptor read). */
static inline void free_pooled(rcgc_runtime *rt, rcgc_object *o)
{
    free_pooled_class(rt, o, rcgc_block_class(o));
}

static RCGC_NOINLINE void dealloc_untracked(rcgc_runtime *rt, rcgc_object *o);

/* The free of a leaf (rcgc_dealloc's) whose push did not go ahead (C4),
 * out of line (rcgc_dealloc keeps no frame; the class is found again
 * here rather than kept for the call): with nothing on, the push's limit
 * (C3); tracing alone, its trace forgotten and the block cached
 * (free_pooled: a leaf calls nothing, so neither the
 * trashcan's depth nor anything else of dealloc_untracked's tests
 * applies); any other mode, dealloc_untracked's way. */
static RCGC_NOINLINE void free_leaf_not(rcgc_runtime *rt, rcgc_object *o)
{
    unsigned slow = rt->mem.slow;
    if (RCGC_LIKELY(slow == 0)) {
        RCGC_ENTER(rt);
        free_pooled_limit(rt, o, rcgc_pool_of(o));
        RCGC_LEAVE(rt);
        return;
    }
    if (slow == RCGC_SLOW_TRACE) {
        RCGC_ENTER(rt);
        free_pooled(rt, o);
        RCGC_LEAVE(rt);
        return;
    }
    dealloc_untracked(rt, o);
}

void rcgc_obj_free_memory(rcgc_runtime *rt, rcgc_object *o)
{
    if (o->flags & RCGC_OF_FOREIGN) {
        rt->obj.live_objects--;
        rcgc_foreign *f = rcgc_foreign_of(o);
        rcgc_flist_remove(f);
        o->type = RCGC_FREED_TYPE;
        rt->mem.domains[RCGC_DOMAIN_OBJ].live++;   /* the domain path's count (OC1) */
        rcgc_mem_domain_free(rt, RCGC_DOMAIN_OBJ, f);
        return;
    }
    if (RCGC_LIKELY(!(rt->mem.slow & ~RCGC_SLOW_TRACE))) {
        free_pooled(rt, o);
        return;
    }
    rt->obj.live_objects--;
    o->type = RCGC_FREED_TYPE;
    rt->mem.domains[RCGC_DOMAIN_OBJ].live++;   /* the domain path's count (OC1) */
    rcgc_mem_domain_free(rt, RCGC_DOMAIN_OBJ, o);
}

void rcgc_obj_free_pool_chain(rcgc_runtime *rt, rcgc_pool *pool, void *first, void *tail,
                              unsigned n)
{
    if (RCGC_UNLIKELY(rt->mem.slow & ~RCGC_SLOW_TRACE)) {
        /* Hooks, fault injection, a user allocator: each block its way,
         * its header made an object's again (a dead one) first. */
        *(void **)tail = NULL;
        for (void *p = first, *next; p != NULL; p = next) {
            next = *(void **)p;
            rcgc_object *o = p;
            o->refcnt = 0;
            o->flags = RCGC_OF_DYING;
            rcgc_obj_free_memory(rt, o);
        }
        return;
    }
    RCGC_ASSERT(rt->mem.debug_pre == 0);
    if (RCGC_UNLIKELY(rt->mem.slow != 0)) {
        /* Tracing: each trace forgotten (F3), as free_pooled_class. */
        for (void *p = first;; p = *(void **)p) {
            rcgc_trace_forget_object(rt, p);
            if (p == tail)
                break;
        }
    }
    rt->obj.live_objects -= n;
    rcgc_pool_free_chain(rt, pool, first, tail, n);
}

/* A type whose objects need nothing at deallocation but freeing: no
 * function to call (traverse, clear, finalize, legacy_del, dealloc) and no
 * refs.  One test of the six pointers together: they are adjacent in
 * rcgc_type, so this is six loads and an OR chain, against six
 * compare-and-branch pairs. */
static inline int type_is_leaf(const rcgc_type *t)
{
    uintptr_t any = (uintptr_t)t->traverse | (uintptr_t)t->clear | (uintptr_t)t->finalize |
                    (uintptr_t)t->legacy_del | (uintptr_t)t->dealloc | (uintptr_t)t->refs;
    return any == 0;
}

/* Call a finalizer with a temporary reference; returns non-zero if the
 * object was resurrected (someone kept a new reference). */
static int call_finalizer(rcgc_object *o, void (*fn)(rcgc_object *))
{
    o->refcnt = 1;
    fn(o);
    if (--o->refcnt != 0)
        return 1;
    return 0;
}

static void dealloc_one(rcgc_runtime *rt, rcgc_object *o)
{
    const rcgc_type *t = o->type;
    if (o->flags & RCGC_OF_DEFERRED) {
        /* Out of the trashcan: tracked again (in generation 0, as CPython
         * re-tracks), so that a resurrecting finalizer leaves it tracked. */
        o->flags &= ~RCGC_OF_DEFERRED;
        rcgc_obj_track(rt, o);
    }
    if (t->finalize && !(o->flags & RCGC_OF_FINALIZED)) {
        o->flags |= RCGC_OF_FINALIZED;
        if (call_finalizer(o, t->finalize))
            return;
    }
    if (o->flags & RCGC_OF_WEAKREFS) {
        o->refcnt = 1;   /* callbacks must not see a zero refcount */
        rcgc_weak_clear_on_dealloc(rt, o);
        if (--o->refcnt != 0)
            return;
    }
    if (t->legacy_del) {
        if (call_finalizer(o, t->legacy_del))
            return;
        /* Weak references made by the finalizer must not outlive it, and
         * their callbacks could see a half-destroyed object. */
        if (o->flags & RCGC_OF_WEAKREFS)
            rcgc_weak_clear_silently(rt, o);
    }
    rcgc_obj_release(rt, o);
}

static void dealloc_nested(rcgc_object *o);

/* Store o's type in the deallocation's clear cache when it fits DC1 (t has
 * refs).  Called by a nested deallocation before it drops o's references:
 * o is not freed yet, so its type is alive, and DC2 holds from here. */
static RCGC_NOINLINE void dclear_fill(rcgc_obj_state *os, const rcgc_type *t)
{
    const uint16_t *refs = t->refs;
    if (t->traverse || t->clear || t->finalize || t->legacy_del || t->dealloc || refs[0] == 0)
        return;
    unsigned off1;
    if (refs[1] == 0)
        off1 = refs[0];
    else if (refs[2] == 0)
        off1 = refs[1];
    else
        return;
    os->dclear_off0 = refs[0];
    os->dclear_off1 = (uint16_t)off1;
    os->dclear_type = t;
}

/* Drop the reference of field off of the dying object o, if any (T3's
 * order: the field is NULL first), as rcgc_decref but for the nested
 * deallocation when that was the last reference. */
static RCGC_ALWAYS_INLINE void release_field(rcgc_object *o, unsigned off)
{
    rcgc_object *r = rcgc_ref_load(o, off);
    if (r != NULL) {
        static rcgc_object *const null_ref = NULL;
        memcpy((char *)o + off, &null_ref, sizeof null_ref);
#if RCGC_DEBUG >= 1
        if (RCGC_UNLIKELY(r->refcnt == 0 || r->refcnt == UINT32_MAX ||
                          r->type == RCGC_FREED_TYPE))
            rcgc_refcount_error(r, "decref");
#endif
        if (--r->refcnt == 0)
            dealloc_nested(r);
    }
}

/* Steps 4-6 of a deallocation (docs/design.md): untrack, drop the
 * references, the type's dealloc.  The memory is the caller's.  pooled (a
 * constant) says that o is known to be a pool block: the untracking is then
 * rcgc_obj_untrack without its test for foreign objects, and the header is
 * written once.  nested (a constant) says that this deallocation was
 * started by release_field of another one (dealloc_nested): it may use the
 * clear cache (DC2); any other resets it first.  listed (a constant) is 0
 * when the caller knows that t has no refs: the copy then has no field
 * loop (dealloc_release_plain).  tracked (a constant) is 1 when the caller
 * knows that o is tracked (rcgc_dealloc's tracked path), 0 when it knows
 * that o is not, -1 when the flag must be read: the known cases have no
 * test of it. */
static RCGC_ALWAYS_INLINE void release_references(rcgc_runtime *rt, rcgc_object *o,
                                                  const rcgc_type *t, int pooled, int nested,
                                                  int listed, int tracked)
{
    uint32_t flags = o->flags;
    /* The scratch bits go too: an unsettled object's log index (B1). */
    o->flags = (flags & ~(RCGC_OF_TRACKED | RCGC_OF_GEN_MASK | RCGC_OF_GC_SCRATCH)) |
               RCGC_OF_DYING;
    long *count0 = &rt->gc.gens[0].count;
    RCGC_ASSERT(tracked < 0 || tracked == ((flags & RCGC_OF_TRACKED) != 0));
    if (tracked > 0 || (tracked < 0 && (flags & RCGC_OF_TRACKED))) {
        unsigned gen = (flags & RCGC_OF_GEN_MASK) >> RCGC_OF_GEN_SHIFT;
        if (flags & RCGC_OF_UNSETTLED) {
            /* B1: generation 0, no pool bits; the count goes with the
             * entry (B4). */
            rcgc_obj_forget_birth(rt, o, flags);
        } else {
            --*rcgc_gen_nobjects_flags(rt, flags);
            if (!pooled && (flags & RCGC_OF_FOREIGN))
                rcgc_obj_untrack_foreign(rt, o);
            else
                rcgc_obj_untrack_pooled(rt, o, gen);
        }
        /* A tracked object's type has a traverse (O1): no need to ask. */
        RCGC_ASSERT(rcgc_type_is_gc(t));
        count0_death(count0);
    } else if (rcgc_type_is_gc(t)) {
        count0_death(count0);
    }
    rcgc_obj_state *os = &rt->obj;
    if (nested && t == os->dclear_type) {
        /* DC1: the two offsets are all there is to do; they are read
         * before the first field goes (its deallocation may refill the
         * cache). */
        unsigned off0 = os->dclear_off0, off1 = os->dclear_off1;
        /* DC1 against the type itself (alive: o is of it). */
        RCGC_ASSERT(t->refs != NULL && t->clear == NULL && t->dealloc == NULL &&
                    t->refs[0] == off0 &&
                    (off1 == off0 ? t->refs[1] == 0 : t->refs[1] == off1 && t->refs[2] == 0));
        release_field(o, off0);
        release_field(o, off1);
        return;
    }
    const uint16_t *refs = listed ? t->refs : NULL;
    RCGC_ASSERT(listed || t->refs == NULL);
    if (refs != NULL) {
        /* Only this loop starts nested deallocations. */
        if (nested)
            dclear_fill(os, t);
        else
            os->dclear_type = NULL;
        for (unsigned off; (off = *refs) != 0; refs++)
            release_field(o, off);
    }
    /* User code: in a nested deallocation, whose caller goes on trusting
     * the cache, it is forgotten after it (DC2).  Any other caller is not
     * a release_field loop: the next loop resets it first. */
    if (t->clear != NULL) {
        t->clear(o);
        if (nested)
            os->dclear_type = NULL;
    }
    if (t->dealloc) {
        t->dealloc(o);
        if (nested)
            os->dclear_type = NULL;
    }
}

void rcgc_obj_release(rcgc_runtime *rt, rcgc_object *o)
{
    /* Called at depth 0 (by the collector), a deallocation level of its
     * own, as dealloc_release's: the nested deallocations its fields start
     * run at depth >= 1 (dealloc_cached relies on it), and deferred ones
     * run when it ends.  Called inside a deallocation (dealloc_one), the
     * depth is left as it was. */
    rcgc_obj_state *os = &rt->obj;
    int outermost = os->dealloc_depth == 0;
    os->dealloc_depth += outermost;
    release_references(rt, o, o->type, 0, 0, 1, -1);
    if (outermost) {
        os->dealloc_depth = 0;
        if (RCGC_UNLIKELY(os->npending > 0))
            rcgc_obj_flush_pending(rt);
    }
    rcgc_obj_free_memory(rt, o);
}

static int pending_push(rcgc_runtime *rt, rcgc_object *o)
{
    rcgc_obj_state *os = &rt->obj;
    if (os->npending == os->cappending) {
        size_t cap = os->cappending ? os->cappending * 2 : 256;
        /* Without the OOM handler: it could free objects deep enough to be
         * pushed here, moving the stack under this call.  Failing is fine:
         * the caller recurses instead. */
        rcgc_oom_handler h = rt->mem.oom;
        rt->mem.oom = NULL;
        rcgc_object **p = rcgc_mem_domain_realloc(rt, RCGC_DOMAIN_RAW, os->pending,
                                                  cap * sizeof *p);
        rt->mem.oom = h;
        if (p == NULL)
            return 0;
        os->pending = p;
        os->cappending = cap;
    }
    os->pending[os->npending++] = o;
    return 1;
}

void rcgc_obj_flush_pending(rcgc_runtime *rt)
{
    rcgc_obj_state *os = &rt->obj;
    while (os->npending > 0) {
        rcgc_object *o = os->pending[--os->npending];
        os->dealloc_depth++;
        dealloc_one(rt, o);
        os->dealloc_depth--;
    }
    os->dclear_type = NULL;   /* user code may have run (DC2) */
}

static RCGC_NOINLINE void dealloc_slow(rcgc_runtime *rt, rcgc_object *o)
{
    rcgc_obj_state *os = &rt->obj;
    if (os->dealloc_depth >= RCGC_TRASH_DEPTH) {
        /* Waiting objects have refcount 0: no collection may see them, not
         * even one started by an OOM handler while the stack grows. */
        if (o->flags & RCGC_OF_TRACKED) {
            rcgc_obj_untrack(rt, o);
            o->flags |= RCGC_OF_DEFERRED;
        }
        if (pending_push(rt, o))
            return;
        /* No room: deallocate now, recursively (dealloc_one re-tracks). */
    }
    RCGC_ENTER(rt);
    os->dealloc_depth++;
    dealloc_one(rt, o);
    os->dealloc_depth--;
    if (os->dealloc_depth == 0 && os->npending > 0)
        rcgc_obj_flush_pending(rt);
    /* Finalizers, weak reference callbacks, a user allocator: user code
     * may have run (DC2). */
    os->dclear_type = NULL;
    RCGC_LEAVE(rt);
}

/* free_released's path when rt->mem.slow is not 0: tracing alone as
 * free_pooled_class; any other slow mode through the OBJ domain, as
 * rcgc_obj_free_memory, whose user code (a user allocator) the clear cache
 * forgets (DC2). */
static RCGC_NOINLINE void free_released_slow(rcgc_runtime *rt, rcgc_object *o, rcgc_pool *pool)
{
    if (rt->mem.slow & ~RCGC_SLOW_TRACE) {
        rt->obj.dclear_type = NULL;
        rcgc_obj_free_memory(rt, o);
        return;
    }
    free_pooled_class(rt, o, pool->szidx);
}

/* The memory of a pooled object of size class c whose deallocation was
 * entered from outside (rcgc_dealloc, not release_field): M2, the
 * allocator's mode is tested here only, not before the release (the
 * release itself does not depend on it; only its free does). */
static RCGC_ALWAYS_INLINE void free_released(rcgc_runtime *rt, rcgc_object *o, rcgc_pool *pool)
{
    size_t c = pool->szidx;
    /* No test of the mode: rcgc_mem_free's push (C4, pool.h) goes ahead
     * only while nothing is on; after a failed push the mode is tested:
     * nothing on, the row is full or o is its class's last live block;
     * else free_released_slow. */
    if (RCGC_LIKELY(rcgc_pool_try_push_class(&rt->pool, o, c))) {
        rt->obj.live_objects--;
        o->type = RCGC_FREED_TYPE;
        return;
    }
    if (RCGC_LIKELY(!mem_slow(rt))) {
        /* The push found its limit (C3).  The class is read again from
         * the descriptor (an empty asm hides that it is c): kept for this
         * path, gcc 12 scaled it on the fast path (one instruction). */
#if defined(__GNUC__) || defined(__clang__)
        __asm__("" : "+r"(pool));
#endif
        free_pooled_limit(rt, o, pool);
        return;
    }
    free_released_slow(rt, o, pool);
}

/* free_released for an unsettled object (B1) whose size class c its flags
 * gave: the pool descriptor is read only when the push into the free cache
 * does not go ahead (the row full, the class's last live block, or any
 * mode: C4), out of line (free_released_not). */
static RCGC_NOINLINE void free_released_not(rcgc_runtime *rt, rcgc_object *o)
{
    RCGC_ENTER(rt);
    rcgc_pool *pool = rcgc_pool_of(o);
    if (RCGC_LIKELY(!mem_slow(rt)))
        free_pooled_limit(rt, o, pool);
    else
        free_released_slow(rt, o, pool);
    RCGC_LEAVE(rt);
}

static RCGC_ALWAYS_INLINE void free_released_class(rcgc_runtime *rt, rcgc_object *o, size_t c)
{
    RCGC_ASSERT(c == rcgc_pool_of(o)->szidx);
    if (RCGC_LIKELY(rcgc_pool_try_push_class(&rt->pool, o, c))) {
        rt->obj.live_objects--;
        o->type = RCGC_FREED_TYPE;
        return;
    }
    free_released_not(rt, o);
}

/* The end of a tracked leaf's death (dealloc_tracked_leaf) when its pool
 * leaves the young list: out of line, so that the leaf's path keeps no
 * stack frame.  The untracking is done but for the young list. */
static RCGC_NOINLINE void tracked_leaf_young(rcgc_runtime *rt, rcgc_object *o, rcgc_pool *pool)
{
    RCGC_ENTER(rt);
    rcgc_pool_young_remove(rt, pool);
    free_released(rt, o, pool);
    RCGC_LEAVE(rt);
}

/* The free of a tracked leaf whose push into the free cache did not go
 * ahead (the row full, its class's last live block, or any mode: C4), as
 * free_released's failing branch. */
static RCGC_NOINLINE void tracked_leaf_not(rcgc_runtime *rt, rcgc_object *o, rcgc_pool *pool)
{
    RCGC_ENTER(rt);
    if (RCGC_LIKELY(!mem_slow(rt)))
        free_pooled_limit(rt, o, pool);
    else
        free_released_slow(rt, o, pool);
    RCGC_LEAVE(rt);
}

/* Whether a tracked pooled object of a type with refs (t->refs != NULL),
 * whose finalizers the caller has dealt with, is a tracked leaf (TL1):
 * nothing to call at its release (no clear, no dealloc) and every listed
 * field NULL, so that its release drops no reference, starts no nested
 * deallocation and runs no user code. */
static RCGC_ALWAYS_INLINE int refs_leaf(const rcgc_object *o, const rcgc_type *t)
{
    if (t->clear != NULL || t->dealloc != NULL)
        return 0;
    for (const uint16_t *r = t->refs; *r != 0; r++)
        if (rcgc_ref_load(o, *r) != NULL)
            return 0;
    return 1;
}

/* The death of a tracked leaf (TL1; its flags: tracked, pooled, no weak
 * references, not deferred), without a stack frame: what
 * dealloc_release_kind does for it less what cannot apply.  It drops no
 * reference and calls nothing, so it is no deallocation level (the
 * trashcan's depth and pending stack are left alone, as for an untracked
 * leaf), and it neither reads nor resets the clear cache (DC2 asks a reset
 * only before a reference is dropped or after user code).  Its header is
 * not marked DYING (nothing can run while it dies; nothing reads a freed
 * object's flags, and its type becomes RCGC_FREED_TYPE).  The rare ends
 * (its pool leaving the young list, a push that does not go ahead) are
 * tail calls. */
static RCGC_ALWAYS_INLINE void dealloc_tracked_leaf(rcgc_runtime *rt, rcgc_object *o,
                                                    uint32_t flags)
{
    RCGC_ENTER(rt);
    RCGC_ASSERT((flags & RCGC_OF_TRACKED) && !(flags & RCGC_OF_FOREIGN));
    count0_death(&rt->gc.gens[0].count);
    if (flags & RCGC_OF_UNSETTLED) {
        /* B1: generation 0, no pool bits, the size class in the flags;
         * the header keeps its flags (a freed block's are never read, as
         * below); the count goes with the entry (B4). */
        rcgc_obj_forget_birth_at(rt, o, flags, 1);
        free_released_class(rt, o, rcgc_obj_birth_class(flags));
        RCGC_LEAVE(rt);
        return;
    }
    rcgc_pool *pool = rcgc_pool_of(o);
    --*rcgc_gen_nobjects_flags(rt, flags);
    unsigned i = rcgc_pool_index(pool, o);
    unsigned n = i & 63;
    pool->tracked[i >> 6] &= (~(uint64_t)1 << n) | (~(uint64_t)1 >> ((64 - n) & 63));
    pool->ntracked--;
    if ((flags & (2u << RCGC_OF_GEN_SHIFT)) == 0 && RCGC_UNLIKELY(--pool->nyoung == 0)) {
        RCGC_LEAVE(rt);
        tracked_leaf_young(rt, o, pool);
        return;
    }
    if (RCGC_LIKELY(rcgc_pool_try_push_class(&rt->pool, o, pool->szidx))) {
        rt->obj.live_objects--;
        o->type = RCGC_FREED_TYPE;
        RCGC_LEAVE(rt);
        return;
    }
    RCGC_LEAVE(rt);
    tracked_leaf_not(rt, o, pool);
}

/* rcgc_obj_release for a pooled object on the fast path of rcgc_dealloc
 * (out of line: only objects with something to call pay for a frame);
 * nested, listed and tracked as for release_references. */
static RCGC_ALWAYS_INLINE void dealloc_release_kind(rcgc_runtime *rt, rcgc_object *o,
                                                   const rcgc_type *t, int nested, int listed,
                                                   int tracked)
{
    RCGC_ENTER(rt);
    rt->obj.dealloc_depth++;
    release_references(rt, o, t, 1, nested, listed, tracked);
    rcgc_obj_state *os = &rt->obj;
    /* Deallocations deferred by the trashcan (only nested ones can be) run
     * when the outermost finishes. */
    if (nested ? depth_leave(rt) && RCGC_UNLIKELY(os->npending > 0)
               : RCGC_UNLIKELY(depth_leave_outer(rt)))
        rcgc_obj_flush_pending(rt);
    /* The class from the pool descriptor, whose first line untracking
     * has just used. */
    if (nested)
        free_pooled_class(rt, o, rcgc_pool_of(o)->szidx);
    else
        free_released(rt, o, rcgc_pool_of(o));
    RCGC_LEAVE(rt);
}

/* dealloc_release_kind in eight copies: entered from outside or nested,
 * for a type with or without refs, and for an object known to be tracked
 * (rcgc_dealloc's tracked path) or known to be untracked
 * (dealloc_untracked's path): no test of the flag (two instructions a
 * death).  The refs loop keeps its cursor in a callee-saved register
 * across the nested deallocations it starts; a type without refs
 * (traverse and clear) goes to a copy without the loop, whose frame saves
 * one register fewer and needs no padding (4 instructions a
 * deallocation), and a type with refs pays a jump. */
#define RCGC_DEALLOC_RELEASE_COPY(name, nested, listed, tracked)                                 \
    static RCGC_NOINLINE void name(rcgc_runtime *rt, rcgc_object *o, const rcgc_type *t)        \
    {                                                                                            \
        dealloc_release_kind(rt, o, t, nested, listed, tracked);                                 \
    }
RCGC_DEALLOC_RELEASE_COPY(dealloc_release_listed, 0, 1, 1)
RCGC_DEALLOC_RELEASE_COPY(dealloc_release_plain, 0, 0, 1)
RCGC_DEALLOC_RELEASE_COPY(dealloc_release_untracked_listed, 0, 1, 0)
RCGC_DEALLOC_RELEASE_COPY(dealloc_release_untracked_plain, 0, 0, 0)
RCGC_DEALLOC_RELEASE_COPY(dealloc_release_nested_listed, 1, 1, 1)
RCGC_DEALLOC_RELEASE_COPY(dealloc_release_nested_plain, 1, 0, 1)
RCGC_DEALLOC_RELEASE_COPY(dealloc_release_nested_untracked_listed, 1, 1, 0)
RCGC_DEALLOC_RELEASE_COPY(dealloc_release_nested_untracked_plain, 1, 0, 0)
#undef RCGC_DEALLOC_RELEASE_COPY

/* dealloc_release_clear's end when the outermost deallocation level ended
 * with deaths deferred by the trashcan: they run, then o is freed (out of
 * line: the loop's call would give the common path a larger frame). */
static RCGC_NOINLINE void release_clear_pending(rcgc_runtime *rt, rcgc_object *o)
{
    RCGC_ENTER(rt);
    rcgc_obj_flush_pending(rt);
    free_released(rt, o, rcgc_pool_of(o));
    RCGC_LEAVE(rt);
}

/* The rest of dealloc_release_clear once o is untracked and counted: the
 * type's clear (user code), the deallocation level's end (o's level was
 * entered by the caller), the free into size class c's row (B1: from o's
 * flags).  Only o and c are kept across the call: the runtime is found
 * again from o's address after it (its arena's runtime, as rcgc_dealloc
 * found it), and the pool descriptor is not needed. */
static RCGC_ALWAYS_INLINE void release_clear_tail(rcgc_runtime *rt, rcgc_object *o,
                                                  int (*clear)(rcgc_object *), size_t c)
{
    if (clear != NULL) {
        clear(o);
        /* Nothing derived from o before the call is kept across it (an
         * empty asm hides that o is the same): else GCC kept the arena's
         * address and the runtime in callee-saved registers as well. */
#if defined(__GNUC__) || defined(__clang__)
        __asm__("" : "+r"(o));
#endif
        rt = rcgc_arena_of(o)->rt;
    }
    if (RCGC_UNLIKELY(depth_leave_outer(rt))) {
        release_clear_pending(rt, o);
        return;
    }
    free_released_class(rt, o, c);
}

/* The release of an unsettled object (B1: tracked, pooled, in the birth
 * log) dropped from outside (not nested) whose type has no refs and no
 * dealloc, once its finalizers are dealt with (none left, no legacy
 * finalizer, no weak references, not deferred, below the trashcan's
 * depth): the common death of a traverse type's temporary.
 * dealloc_release_plain's work in the same order - a deallocation level,
 * the untracking (the log entry) and the counts, the type's clear (the only
 * user code), the level's end with the trashcan's pending deaths, the free -
 * in a frame that saves two registers besides the frame pointer (o and its
 * class, in place of the alignment padding) instead of four
 * (release_clear_tail).  A settled object takes dealloc_release_plain: its
 * untracking may call out (its pool leaving the young list), which would
 * give this path the larger frame again.  The clear cache is left alone, as
 * by every release entered from outside (DC2: the next release_field loop
 * resets it first). */
static RCGC_NOINLINE void dealloc_release_clear(rcgc_runtime *rt, rcgc_object *o,
                                                const rcgc_type *t, uint32_t flags)
{
    RCGC_ENTER(rt);
    RCGC_ASSERT(flags == o->flags);
    RCGC_ASSERT(t->refs == NULL && t->dealloc == NULL && rcgc_type_is_gc(t));
    RCGC_ASSERT(rt->obj.dealloc_depth < RCGC_TRASH_DEPTH && rcgc_arena_of(o)->rt == rt);
    RCGC_ASSERT((flags & (RCGC_OF_TRACKED | RCGC_OF_UNSETTLED | RCGC_OF_FOREIGN |
                          RCGC_OF_WEAKREFS | RCGC_OF_DEFERRED)) ==
                (RCGC_OF_TRACKED | RCGC_OF_UNSETTLED));
    int (*clear)(rcgc_object *) = t->clear;
    rt->obj.dealloc_depth++;
    /* The scratch bits go too: the log index (B1). */
    o->flags = (flags & ~(RCGC_OF_TRACKED | RCGC_OF_GEN_MASK | RCGC_OF_GC_SCRATCH)) |
               RCGC_OF_DYING;
    count0_death(&rt->gc.gens[0].count);
    /* B1: generation 0, no pool bits; the count goes with the entry
     * (B4). */
    rcgc_obj_forget_birth_at(rt, o, flags, 1);
    release_clear_tail(rt, o, clear, rcgc_obj_birth_class(flags));
    RCGC_LEAVE(rt);
}

/* A tracked object of a type with refs dropped from outside or nested,
 * once its finalizers are dealt with: a tracked leaf (TL1) dies here
 * without a frame, anything else in dealloc_release_listed or
 * dealloc_release_nested_listed.  Out of line (frameless, reached by a
 * jump): inline in rcgc_dealloc, its registers cost a type without refs a
 * move more. */
static RCGC_NOINLINE void dealloc_listed_tracked(rcgc_runtime *rt, rcgc_object *o,
                                                 const rcgc_type *t)
{
    if (refs_leaf(o, t)) {
        dealloc_tracked_leaf(rt, o, o->flags);
        return;
    }
    dealloc_release_listed(rt, o, t);
}

static RCGC_NOINLINE void dealloc_listed_tracked_nested(rcgc_runtime *rt, rcgc_object *o,
                                                        const rcgc_type *t)
{
    if (refs_leaf(o, t)) {
        dealloc_tracked_leaf(rt, o, o->flags);
        return;
    }
    dealloc_release_nested_listed(rt, o, t);
}

/* The callers' choice between the copies (in their own frameless code: a
 * test here would sit after the frame's set-up); tracked (a constant): 1
 * for a tracked object, 0 for an untracked one. */
static RCGC_ALWAYS_INLINE void dealloc_release(rcgc_runtime *rt, rcgc_object *o,
                                               const rcgc_type *t, int tracked)
{
    if (t->refs != NULL) {
        if (tracked)
            dealloc_listed_tracked(rt, o, t);
        else
            dealloc_release_untracked_listed(rt, o, t);
    } else if (tracked) {
        if ((o->flags & RCGC_OF_UNSETTLED) && t->dealloc == NULL)
            dealloc_release_clear(rt, o, t, o->flags);
        else
            dealloc_release_plain(rt, o, t);
    } else {
        dealloc_release_untracked_plain(rt, o, t);
    }
}

static RCGC_ALWAYS_INLINE void dealloc_release_nested(rcgc_runtime *rt, rcgc_object *o,
                                                      const rcgc_type *t, int tracked)
{
    if (t->refs != NULL) {
        if (tracked)
            dealloc_listed_tracked_nested(rt, o, t);
        else
            dealloc_release_nested_untracked_listed(rt, o, t);
    } else if (tracked) {
        dealloc_release_nested_plain(rt, o, t);
    } else {
        dealloc_release_nested_untracked_plain(rt, o, t);
    }
}

/* Drop the reference r taken from a field of a freed cached object
 * (dealloc_cached), if any. */
static RCGC_ALWAYS_INLINE int drop_taken(rcgc_object *r)
{
    if (r == NULL)
        return 0;
#if RCGC_DEBUG >= 1
    if (RCGC_UNLIKELY(r->refcnt == 0 || r->refcnt == UINT32_MAX || r->type == RCGC_FREED_TYPE))
        rcgc_refcount_error(r, "decref");
#endif
    return --r->refcnt == 0;
}

/* The end of dealloc_cached_rare once o is freed and its two referents
 * r0 and r1 taken (NULL for none): their deallocations, in field order,
 * one level deeper (the trashcan's depth counts the frames).  r1's is no
 * tail call at o's level: a compiler that does not make it one (sanitizer
 * or -O0 builds) would grow the stack along a chain through the second
 * field without the depth seeing it (dealloc_cached's loop is the way to
 * stay at o's level). */
static RCGC_ALWAYS_INLINE void dealloc_cached_children(rcgc_runtime *rt, rcgc_object *r0,
                                                       rcgc_object *r1)
{
    if (drop_taken(r0)) {
        rt->obj.dealloc_depth++;
        dealloc_nested(r0);
        rt->obj.dealloc_depth--;
    }
    if (drop_taken(r1)) {
        rt->obj.dealloc_depth++;
        dealloc_nested(r1);
        rt->obj.dealloc_depth--;
    }
}

/* dealloc_cached's end when o's pool leaves the young list. */
static RCGC_NOINLINE void dealloc_cached_rare(rcgc_runtime *rt, rcgc_object *o, rcgc_pool *pool,
                                              rcgc_object *r0, rcgc_object *r1)
{
    RCGC_ENTER(rt);
    rcgc_pool_young_remove(rt, pool);
    free_pooled_class(rt, o, pool->szidx);
    RCGC_LEAVE(rt);
    dealloc_cached_children(rt, r0, r1);
}

/* A nested deallocation of a tracked pooled object whose type is in the
 * clear cache (DC1: no finalizer, no weak references to clear since the
 * caller saw none, nothing to call; DC2: the cache may be trusted), not
 * too deep, the allocator plain or tracing: dealloc_release's work with
 * only what such an object needs, in a smaller frame.  A nested
 * deallocation runs at depth >= 1, so no pending deallocation can be due
 * when it ends.  Since round 13c o is untracked and freed before its
 * referents die, each one level deeper (nothing - no user code, DC1 - can
 * tell the order of the frees), and a second referent that would come
 * back here is taken by the loop at o's own level. */
static RCGC_NOINLINE void dealloc_cached(rcgc_runtime *rt, rcgc_object *o)
{
    rcgc_obj_state *os = &rt->obj;
    for (;;) {
        RCGC_ENTER(rt);
        RCGC_ASSERT(os->dealloc_depth >= 1 && os->dealloc_depth < RCGC_TRASH_DEPTH);
        RCGC_ASSERT(!(rt->mem.slow & ~RCGC_SLOW_TRACE));
        uint32_t flags = o->flags;
        o->flags = (flags & ~(RCGC_OF_TRACKED | RCGC_OF_GEN_MASK | RCGC_OF_GC_SCRATCH)) |
                   RCGC_OF_DYING;
        rcgc_pool *pool = rcgc_pool_of(o);
        int leave = 0;
        if (flags & RCGC_OF_UNSETTLED) {
            /* B1: generation 0, no pool bits; the count goes with the
             * entry (B4). */
            rcgc_obj_forget_birth(rt, o, flags);
        } else {
            --*rcgc_gen_nobjects_flags(rt, flags);
            unsigned i = rcgc_pool_index(pool, o);
            unsigned n = i & 63;
            pool->tracked[i >> 6] &= (~(uint64_t)1 << n) | (~(uint64_t)1 >> ((64 - n) & 63));
            pool->ntracked--;
            leave = (flags & (2u << RCGC_OF_GEN_SHIFT)) == 0 && --pool->nyoung == 0;
        }
        count0_death(&rt->gc.gens[0].count);
        unsigned off0 = os->dclear_off0, off1 = os->dclear_off1;
        RCGC_ASSERT(o->type == os->dclear_type);
        /* Both fields taken (NULL first, T3's order; the second read after
         * the first is NULL, so a one-field type's off1 == off0 gives
         * NULL), then o freed before its referents' deallocations:
         * nothing reads o after this. */
        static rcgc_object *const null_ref = NULL;
        rcgc_object *r0 = rcgc_ref_load(o, off0);
        memcpy((char *)o + off0, &null_ref, sizeof null_ref);
        rcgc_object *r1 = rcgc_ref_load(o, off1);
        memcpy((char *)o + off1, &null_ref, sizeof null_ref);
        if (RCGC_UNLIKELY(leave)) {
            RCGC_LEAVE(rt);
            dealloc_cached_rare(rt, o, pool, r0, r1);
            return;
        }
        free_pooled_class(rt, o, pool->szidx);
        RCGC_LEAVE(rt);
        if (drop_taken(r0)) {
            os->dealloc_depth++;
            dealloc_nested(r0);
            os->dealloc_depth--;
        }
        if (!drop_taken(r1))
            return;
        /* The second referent dies at o's own level (o's frame is this
         * loop's): when dealloc_kind would send it here (pooled, tracked,
         * no weak references, not deferred, of this runtime, of the type
         * the cache holds now; the depth is o's, which passed the
         * trashcan's test), the loop takes it; anything else one level
         * deeper.  A chain through the second field runs in this frame. */
        uint32_t rf = r1->flags;
        if ((rf & (RCGC_OF_FOREIGN | RCGC_OF_WEAKREFS | RCGC_OF_DEFERRED | RCGC_OF_TRACKED)) !=
                RCGC_OF_TRACKED ||
            r1->type != os->dclear_type || rcgc_arena_of(r1)->rt != rt) {
            os->dealloc_depth++;
            dealloc_nested(r1);
            os->dealloc_depth--;
            return;
        }
        o = r1;
    }
}

/* Whether a pooled object with no weak references, not deferred, must
 * take the general path (dealloc_slow): a finalizer left to run, a legacy
 * finalizer, too deep a nesting, or the allocator in a slow mode other than
 * tracing. */
static RCGC_ALWAYS_INLINE int dealloc_needs_slow(rcgc_runtime *rt, const rcgc_type *t,
                                                 uint32_t flags)
{
    return (t->finalize && !(flags & RCGC_OF_FINALIZED)) || t->legacy_del ||
           rt->obj.dealloc_depth >= RCGC_TRASH_DEPTH || (rt->mem.slow & ~RCGC_SLOW_TRACE);
}

/* dealloc_needs_slow for a tracked object whose deallocation is entered
 * from outside: the allocator's mode is left to its free (M2,
 * free_released).  A nested one keeps the test: the clear cache is filled
 * only in plain or tracing mode (DC2). */
static RCGC_ALWAYS_INLINE int dealloc_needs_slow_outer(rcgc_runtime *rt, const rcgc_type *t,
                                                       uint32_t flags)
{
    return (t->finalize && !(flags & RCGC_OF_FINALIZED)) || t->legacy_del ||
           rt->obj.dealloc_depth >= RCGC_TRASH_DEPTH;
}

/* rcgc_dealloc of an untracked pooled object with no weak references, not
 * deferred, that is not a leaf or meets a slow mode (out of line, so that
 * the leaf's path keeps its type's pointers out of registers); nested as
 * for release_references. */
static RCGC_ALWAYS_INLINE void dealloc_untracked_kind(rcgc_runtime *rt, rcgc_object *o,
                                                     int nested)
{
    uint32_t flags = o->flags;
    const rcgc_type *t = o->type;
    if (RCGC_UNLIKELY(dealloc_needs_slow(rt, t, flags))) {
        dealloc_slow(rt, o);
        return;
    }
    if (rcgc_type_is_gc(t) || t->clear || t->dealloc) {
        if (nested)
            dealloc_release_nested(rt, o, t, 0);
        else
            dealloc_release(rt, o, t, 0);
        return;
    }
    /* A leaf while tracing: no stack frame either. */
    RCGC_ENTER(rt);
    o->flags = flags | RCGC_OF_DYING;
    free_pooled(rt, o);
    RCGC_LEAVE(rt);
}

static RCGC_NOINLINE void dealloc_untracked(rcgc_runtime *rt, rcgc_object *o)
{
    dealloc_untracked_kind(rt, o, 0);
}

static RCGC_NOINLINE void dealloc_untracked_nested(rcgc_runtime *rt, rcgc_object *o)
{
    dealloc_untracked_kind(rt, o, 1);
}

/* Refcount zero.  Two cases without a stack frame: a leaf (an untracked
 * pooled object whose type has nothing to call, no weak references, the
 * allocator plain) is freed here; a tracked pooled object with nothing to
 * run before its release (no finalizer left, no weak references, no legacy
 * finalizer, not nested too deep) goes to dealloc_release.  Everything
 * else is dealloc_untracked or dealloc_slow.  nested: as for
 * release_references. */
static RCGC_ALWAYS_INLINE void dealloc_kind(rcgc_object *o, int nested)
{
    uint32_t flags = o->flags;
    const rcgc_type *t = o->type;
    if (RCGC_UNLIKELY(flags & (RCGC_OF_FOREIGN | RCGC_OF_WEAKREFS | RCGC_OF_DEFERRED))) {
        dealloc_slow(obj_runtime(o), o);
        return;
    }
    rcgc_runtime *rt = rcgc_arena_of(o)->rt;
    if (flags & RCGC_OF_TRACKED) {
        if (nested && t == rt->obj.dclear_type) {
            /* DC1: no finalizer to run, none to test.  The allocator's
             * mode is the one the cache was filled in (only on the path
             * below, so plain or tracing): only user code can change it,
             * and the cache forgets user code (DC2). */
            RCGC_ASSERT(!(rt->mem.slow & ~RCGC_SLOW_TRACE));
            /* A tracked leaf (TL1) by the cache's two offsets (DC1: no
             * clear, no dealloc; off1 == off0 for one field). */
            if ((rcgc_ref_load(o, rt->obj.dclear_off0) == NULL) &
                (rcgc_ref_load(o, rt->obj.dclear_off1) == NULL)) {
                dealloc_tracked_leaf(rt, o, flags);
                return;
            }
            if (RCGC_UNLIKELY(rt->obj.dealloc_depth >= RCGC_TRASH_DEPTH)) {
                dealloc_slow(rt, o);
                return;
            }
            dealloc_cached(rt, o);
            return;
        }
        if (!nested) {
            /* Entered from outside: the common case (no finalizer, no
             * legacy finalizer, no dealloc, below the trashcan's depth)
             * with one test of the three pointers together, and the copies'
             * choice laid out so that an unsettled object of a type
             * without refs (a traverse type's temporary) reaches
             * dealloc_release_clear without a taken branch before the
             * jump there: the general tests below took four (about 1 ns
             * of the tracked pair's 7.7).  A finalizer type (FINALIZED
             * or not) takes the tests below, as before.  The slots are
             * read through a copy of t the compiler cannot see through
             * (an empty asm): else it hoisted their loads above the
             * tracked test, into the untracked leaf's path. */
            const rcgc_type *tt = t;
#if defined(__GNUC__) || defined(__clang__)
            __asm__("" : "+r"(tt));
#endif
            uintptr_t calls = (uintptr_t)tt->finalize | (uintptr_t)tt->legacy_del |
                              (uintptr_t)tt->dealloc;
            if (RCGC_LIKELY(calls == 0) &&
                RCGC_LIKELY(rt->obj.dealloc_depth < RCGC_TRASH_DEPTH)) {
                if (RCGC_LIKELY(tt->refs == NULL)) {
                    if (RCGC_LIKELY(flags & RCGC_OF_UNSETTLED))
                        dealloc_release_clear(rt, o, tt, flags);
                    else
                        dealloc_release_plain(rt, o, tt);
                } else {
                    dealloc_listed_tracked(rt, o, tt);
                }
                return;
            }
        }
        if (RCGC_UNLIKELY(nested ? dealloc_needs_slow(rt, t, flags)
                                 : dealloc_needs_slow_outer(rt, t, flags))) {
            dealloc_slow(rt, o);
            return;
        }
        if (nested)
            dealloc_release_nested(rt, o, t, 1);
        else
            dealloc_release(rt, o, t, 1);
        return;
    }
    if (type_is_leaf(t)) {
        /* A leaf: nothing to call, nothing to count, and no trashcan
         * depth to respect, since it starts no nested deallocation.  Its
         * memory goes straight to the free cache, by rcgc_mem_free's push,
         * which goes ahead only while nothing is on (C4, pool.h: no test
         * of the mode here); when it does not (the row full, the class's
         * last live block, or any mode), free_leaf_not frees the leaf as
         * the mode wants.  Its header is not marked DYING: nothing
         * reads a freed object's flags, and its type becomes
         * RCGC_FREED_TYPE. */
        unsigned c = pooled_class(o);
        if (RCGC_LIKELY(rcgc_pool_try_push_class(&rt->pool, o, c))) {
            RCGC_ENTER(rt);
            rt->obj.live_objects--;
            o->type = RCGC_FREED_TYPE;
            RCGC_LEAVE(rt);
            return;
        }
        if (RCGC_LIKELY(!mem_slow(rt))) {
            /* The push's limit (C3), inline as before the push had its
             * rule (no call for a class's last live block).  The pool
             * descriptor from a copy of o the compiler cannot see through
             * (an empty asm): else it kept the arena's address from the
             * runtime's lookup for this path, a move more on the push's. */
            rcgc_object *lim = o;
#if defined(__GNUC__) || defined(__clang__)
            __asm__("" : "+r"(lim));
#endif
            RCGC_ENTER(rt);
            free_pooled_limit(rt, lim, rcgc_pool_of(lim));
            RCGC_LEAVE(rt);
            return;
        }
        free_leaf_not(rt, o);
        return;
    }
    if (nested)
        dealloc_untracked_nested(rt, o);
    else
        dealloc_untracked(rt, o);
}

void rcgc_dealloc(rcgc_object *o)
{
    dealloc_kind(o, 0);
}

/* rcgc_dealloc for an object whose last reference release_field dropped. */
static RCGC_NOINLINE void dealloc_nested(rcgc_object *o)
{
    dealloc_kind(o, 1);
}

/* ----------------------------------------------------------------- sizes */

size_t rcgc_getsizeof(const rcgc_object *o)
{
    if (o->flags & RCGC_OF_FOREIGN)
        return rcgc_foreign_of(o)->size;
    rcgc_pool *pool = rcgc_pool_of(o);
    return pool->size - pool->rt->mem.debug_pre - pool->rt->mem.debug_post;
}
