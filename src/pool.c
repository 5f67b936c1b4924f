/*
 * pool.c - the small-block allocator: arenas, pools, size classes.
 *
 * pymalloc's design (docs/design.md, "The object allocator"): 16-byte size
 * classes up to 512 B; 16 KiB pools carved lazily inside 1 MiB arenas mapped
 * from the OS; new pools come from the fullest arena so that the emptiest
 * arenas drain and are returned to the OS (one entirely free arena is kept to
 * avoid thrashing); a process-wide radix map answers "is this pointer in an
 * rcgc arena?" in O(1).  The invariants are listed in pool.h and checked by
 * rcgc_pool_validate().
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "platform.h"
#include "pool.h"
#include "runtime.h"

/* ------------------------------------------------------------ arena map */

/* The arena map (pool.h): leaves are mapped on demand and never freed;
 * readers take no lock. */
_Atomic(rcgc_map_entry *) rcgc_arena_map[RCGC_MAP_LEN];
_Atomic(rcgc_class_table *) rcgc_class_map[RCGC_MAP_LEN];
static pthread_mutex_t arena_map_lock = PTHREAD_MUTEX_INITIALIZER;

/* M2: the leaf of every range without one (all entries NULL, never
 * written; zero pages until read). */
rcgc_map_entry rcgc_empty_leaf[RCGC_MAP_LEN];
static pthread_once_t empty_leaf_once = PTHREAD_ONCE_INIT;

static void empty_leaf_fill(void)
{
    for (size_t i = 0; i < RCGC_MAP_LEN; i++)
        atomic_store_explicit(&rcgc_arena_map[i], rcgc_empty_leaf, memory_order_release);
}

void rcgc_pool_map_init(void)
{
    pthread_once(&empty_leaf_once, empty_leaf_fill);
}

/* The leaf of the arena map's top-level entry `top`, mapped when it is
 * the empty one; NULL when the OS refuses the memory. */
static rcgc_map_entry *leaf_ensure(size_t top)
{
    rcgc_map_entry *leaf = atomic_load_explicit(&rcgc_arena_map[top], memory_order_acquire);
    if (leaf == NULL || leaf == rcgc_empty_leaf) {
        pthread_mutex_lock(&arena_map_lock);
        leaf = atomic_load_explicit(&rcgc_arena_map[top], memory_order_acquire);
        if (leaf == NULL || leaf == rcgc_empty_leaf) {
            /* One mapping: the leaf, then its arenas' class and trace
             * tables (M1), so that rcgc_class_entry_lookup finds a class
             * from the leaf it has.  The class tables are published first:
             * a reader that finds the arena finds its table's leaf. */
            void *map = rcgc_os_map(RCGC_MAP_LEAF_BYTES + RCGC_CLASS_LEAF_BYTES);
            leaf = NULL;
            if (map != NULL) {
                leaf = map;
                atomic_store_explicit(&rcgc_class_map[top], rcgc_leaf_class_tables(leaf),
                                      memory_order_release);
                atomic_store_explicit(&rcgc_arena_map[top], leaf, memory_order_release);
            }
        }
        pthread_mutex_unlock(&arena_map_lock);
    }
    return leaf;
}

static int arena_map_set(uintptr_t base, rcgc_arena *a)
{
    uintptr_t i = base >> RCGC_ARENA_BITS;
    size_t top = (size_t)(i >> RCGC_MAP_BITS), bot = (size_t)(i & (RCGC_MAP_LEN - 1));
    if ((base >> RCGC_ADDRESS_BITS) != 0)
        return -1;
    rcgc_map_entry *leaf = leaf_ensure(top);
    if (leaf == NULL)
        return -1;
    atomic_store_explicit(&leaf[bot], a, memory_order_release);
    return 0;
}

int rcgc_mem_is_pool_address(const void *p)
{
    return rcgc_arena_lookup(p) != NULL;
}

/* --------------------------------------------------------------- arenas */

static void avail_push(rcgc_arena_set *s, rcgc_arena *a)
{
    rcgc_arena **head = &s->avail[a->nfreepools];
    a->prevarena = NULL;
    a->nextarena = *head;
    if (*head)
        (*head)->prevarena = a;
    *head = a;
    s->avail_mask |= (uint64_t)1 << a->nfreepools;
}

static void avail_unlink(rcgc_arena_set *s, rcgc_arena *a, unsigned bucket)
{
    if (a->prevarena)
        a->prevarena->nextarena = a->nextarena;
    else
        s->avail[bucket] = a->nextarena;
    if (a->nextarena)
        a->nextarena->prevarena = a->prevarena;
    a->nextarena = a->prevarena = NULL;
    if (s->avail[bucket] == NULL)
        s->avail_mask &= ~((uint64_t)1 << bucket);
}

/* ------------------------------------------------------- traced region */

/* T1 (pool.h): the region is reserved once per process, at the first
 * arena a traced pool needs; its slots are handed out under a lock (an
 * arena is mapped rarely) and given back by arena_release, which keeps
 * the range reserved. */
#ifdef RCGC_REGION_HI
static pthread_once_t region_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t region_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int region_ok;                /* reserved */
static size_t region_next;                   /* slots never used: region_next.. */
static uint16_t region_free[RCGC_REGION_SLOTS];   /* released slots, a stack */
static size_t region_nfree;

/* T1: the class bytes rcgc_mem_free reads for the region's blocks: the
 * region's arena map leaf's class tables once the region is reserved,
 * else zeros (class 0: not a traced pool).  1 MiB of zero pages, never
 * written. */
static const uint8_t region_no_classes[RCGC_REGION_SLOTS * RCGC_ARENA_SLOTS];
const uint8_t *_Atomic rcgc_region_classes = region_no_classes;

static void region_reserve(void)
{
    uintptr_t at = RCGC_REGION_HI << (RCGC_ARENA_BITS + RCGC_MAP_BITS);
    if (rcgc_os_reserve_at(at, RCGC_REGION_SLOTS * RCGC_ARENA_SIZE) != 0)
        return;
    /* The region's leaf now, so that its class tables stay where
     * rcgc_region_classes points. */
    rcgc_map_entry *leaf = leaf_ensure(RCGC_REGION_HI);
    if (leaf == NULL) {
        rcgc_os_unmap((void *)at, RCGC_REGION_SLOTS * RCGC_ARENA_SIZE);
        return;
    }
    atomic_store_explicit(&rcgc_region_classes, (const uint8_t *)rcgc_leaf_class_tables(leaf),
                          memory_order_release);
    region_ok = 1;
}

/* A slot's arena, committed (zeroed, read-write), or NULL: no region, all
 * slots taken, or the OS refuses the memory. */
static void *region_take(void)
{
    pthread_once(&region_once, region_reserve);
    if (!region_ok)
        return NULL;
    pthread_mutex_lock(&region_lock);
    size_t slot = RCGC_REGION_SLOTS;
    if (region_nfree > 0)
        slot = region_free[--region_nfree];
    else if (region_next < RCGC_REGION_SLOTS)
        slot = region_next++;
    pthread_mutex_unlock(&region_lock);
    if (slot == RCGC_REGION_SLOTS)
        return NULL;
    void *mem = (void *)((RCGC_REGION_HI << (RCGC_ARENA_BITS + RCGC_MAP_BITS)) +
                         slot * RCGC_ARENA_SIZE);
    if (rcgc_os_commit(mem, RCGC_ARENA_SIZE) != 0) {
        pthread_mutex_lock(&region_lock);
        region_free[region_nfree++] = (uint16_t)slot;
        pthread_mutex_unlock(&region_lock);
        return NULL;
    }
    return mem;
}

static void region_give(void *mem)
{
    size_t slot = ((uintptr_t)mem >> RCGC_ARENA_BITS) & (RCGC_REGION_SLOTS - 1);
    /* T1: a freed block of a given-back arena reads class 0 */
    memset(rcgc_class_table_of(mem), 0, sizeof(rcgc_class_table));
    rcgc_os_decommit(mem, RCGC_ARENA_SIZE);
    pthread_mutex_lock(&region_lock);
    region_free[region_nfree++] = (uint16_t)slot;
    pthread_mutex_unlock(&region_lock);
}

int rcgc_pool_in_region(const void *p)
{
    return ((uintptr_t)p >> (RCGC_ARENA_BITS + RCGC_MAP_BITS)) == RCGC_REGION_HI && region_ok;
}

static uintptr_t region_classes_at(int mapped)
{
    const uint8_t *t = mapped && region_ok
                           ? atomic_load_explicit(&rcgc_region_classes, memory_order_acquire)
                           : region_no_classes;
    return (uintptr_t)t - (RCGC_REGION_HI << (RCGC_ARENA_BITS + RCGC_MAP_BITS - RCGC_POOL_BITS));
}
#else
static uintptr_t region_classes_at(int mapped)
{
    (void)mapped;
    return 0;
}
#endif

void rcgc_pool_region_classes_set(rcgc_runtime *rt, int mapped)
{
    rt->region_classes_at = region_classes_at(mapped);
}

#ifdef RCGC_REGION_HI
/* T3 (pool.h): general arenas at addresses from RCGC_LOW_FIRST up to the
 * region, each tried with MAP_FIXED_NOREPLACE at a 1 MiB slot: the
 * slots given back first (a bounded stack; a slot that does not fit is
 * left behind), else the next never tried.  A few tries, then the OS's
 * placement (rcgc_mem_free then frees the arena's blocks out of line). */
#define LOW_TRIES 8
#define LOW_BACK 4096
static pthread_mutex_t low_lock = PTHREAD_MUTEX_INITIALIZER;
static uintptr_t low_next = RCGC_LOW_FIRST;
static uintptr_t low_back[LOW_BACK];
static size_t low_nback;

static void *low_take(void)
{
    for (int k = 0; k < LOW_TRIES; k++) {
        pthread_mutex_lock(&low_lock);
        uintptr_t at = 0;
        if (low_nback > 0)
            at = low_back[--low_nback];
        else if (low_next < (RCGC_REGION_HI << (RCGC_ARENA_BITS + RCGC_MAP_BITS)))
            at = (low_next += RCGC_ARENA_SIZE) - RCGC_ARENA_SIZE;
        pthread_mutex_unlock(&low_lock);
        if (at == 0)
            return NULL;
        void *mem = rcgc_os_map_at(at, RCGC_ARENA_SIZE);
        if (mem != NULL)
            return mem;
    }
    return NULL;
}

static void low_give(void *mem)
{
    uintptr_t at = (uintptr_t)mem;
    rcgc_os_unmap(mem, RCGC_ARENA_SIZE);
    if (at < RCGC_LOW_FIRST || at >= (RCGC_REGION_HI << (RCGC_ARENA_BITS + RCGC_MAP_BITS)))
        return;
    pthread_mutex_lock(&low_lock);
    if (low_nback < LOW_BACK)
        low_back[low_nback++] = at;
    pthread_mutex_unlock(&low_lock);
}
#else
static void *low_take(void)
{
    return NULL;
}

static void low_give(void *mem)
{
    rcgc_os_unmap(mem, RCGC_ARENA_SIZE);
}
#endif

#ifndef RCGC_REGION_HI

static void *region_take(void)
{
    return NULL;
}

static void region_give(void *mem)
{
    (void)mem;
}

int rcgc_pool_in_region(const void *p)
{
    (void)p;
    return 0;
}
#endif

/* A4: the set of an arena, from its address. */
static RCGC_ALWAYS_INLINE rcgc_arena_set *arena_set_of(rcgc_pool_state *ps, const rcgc_arena *a)
{
#ifdef RCGC_REGION_HI
    if (RCGC_UNLIKELY(((uintptr_t)a >> (RCGC_ARENA_BITS + RCGC_MAP_BITS)) == RCGC_REGION_HI))
        return &ps->rarenas;
#else
    (void)a;
#endif
    return &ps->arenas;
}

/* Map a new arena of the set s and describe it: the general arenas from
 * the OS, the region's from a slot of the region (T1).  NULL on failure
 * (nothing changed). */
static rcgc_arena *arena_new(rcgc_runtime *rt, rcgc_arena_set *s)
{
    rcgc_pool_state *ps = &rt->pool;
    if (rcgc_mem_inject(rt))
        return NULL;
    int region = s != &ps->arenas;
    void *mem = region ? region_take() : low_take();
    if (mem == NULL && !region) {
        mem = rcgc_os_map_aligned(RCGC_ARENA_SIZE, RCGC_ARENA_SIZE);
#ifdef RCGC_REGION_HI
        /* A4: a general arena never where the region's are */
        if (mem != NULL &&
            ((uintptr_t)mem >> (RCGC_ARENA_BITS + RCGC_MAP_BITS)) == RCGC_REGION_HI) {
            rcgc_os_unmap(mem, RCGC_ARENA_SIZE);
            mem = NULL;
        }
#endif
    }
    if (mem == NULL)
        return NULL;
    rcgc_arena *a = mem;   /* zeroed by the OS */
    a->base = (uintptr_t)mem;
    a->ntotalpools = a->nfreepools = (unsigned)RCGC_POOLS_PER_ARENA;
    a->rt = rt;
    a->set = s;
    if (region)   /* T1: the region's free reads this runtime's copy */
        rcgc_pool_region_classes_set(rt, 1);
    if (arena_map_set(a->base, a) != 0) {
        if (region)
            region_give(mem);
        else
            low_give(mem);
        return NULL;
    }
    a->allnext = ps->all;
    if (ps->all)
        ps->all->allprev = a;
    ps->all = a;
    ps->narenas_current++;
    ps->ntimes_arena_allocated++;
    if (ps->narenas_current > ps->narenas_highwater)
        ps->narenas_highwater = ps->narenas_current;
    return a;
}

static void arena_release(rcgc_runtime *rt, rcgc_arena *a)
{
    rcgc_pool_state *ps = &rt->pool;
    arena_map_set(a->base, NULL);
    if (a->allprev)
        a->allprev->allnext = a->allnext;
    else
        ps->all = a->allnext;
    if (a->allnext)
        a->allnext->allprev = a->allprev;
    ps->narenas_current--;
    ps->narenas_freed++;
    if (a->set != &ps->arenas)
        region_give((void *)a->base);
    else
        low_give((void *)a->base);
}

/* ---------------------------------------------------------------- pools */

static void usedpools_push(rcgc_pool_state *ps, rcgc_pool *pool)
{
    rcgc_pool **head = &ps->usedpools[pool->szidx];
    pool->prevpool = NULL;
    pool->nextpool = *head;
    if (*head)
        (*head)->prevpool = pool;
    *head = pool;
}

/* The head of a used list has no predecessor and its prevpool means
 * nothing (popping the head, the fast path's case, then writes no other
 * descriptor); every other pool's prevpool is its predecessor. */
static void usedpools_unlink(rcgc_pool_state *ps, rcgc_pool *pool)
{
    rcgc_pool **head = &ps->usedpools[pool->szidx];
    if (*head == pool) {
        *head = pool->nextpool;
    } else {
        pool->prevpool->nextpool = pool->nextpool;
        if (pool->nextpool)
            pool->nextpool->prevpool = pool->prevpool;
    }
    pool->nextpool = pool->prevpool = NULL;
}

/* Take a free pool from the fullest arena of the set s with one (mapping
 * an arena if none has).  NULL when the OS refuses memory. */
static RCGC_ALWAYS_INLINE rcgc_pool *pool_acquire_in(rcgc_runtime *rt, rcgc_arena_set *s)
{
    rcgc_arena *a = NULL;
    if (s->avail_mask != 0)
        a = s->avail[__builtin_ctzll(s->avail_mask)];
    if (a == NULL) {
        if (s->spare) {
            a = s->spare;
            s->spare = NULL;
        } else {
            a = arena_new(rt, s);
            if (a == NULL)
                return NULL;
        }
    } else {
        avail_unlink(s, a, a->nfreepools);
    }

    rcgc_pool *pool;
    if (a->freepools) {
        pool = a->freepools;
        a->freepools = pool->nextpool;
    } else {
        pool = rcgc_arena_pool(a, a->ncarved);
        pool->mem = (char *)(a->base + (uintptr_t)(a->ncarved + 1) * RCGC_POOL_SIZE);
        a->ncarved++;
    }
    a->nfreepools--;
    if (a->nfreepools > 0)
        avail_push(s, a);
    pool->arena = a;
    pool->rt = rt;
    return pool;
}

static RCGC_ALWAYS_INLINE rcgc_pool *pool_acquire(rcgc_runtime *rt)
{
    return pool_acquire_in(rt, &rt->pool.arenas);
}

/* A pool for a traced pool class (H1): from the traced region (T1), or
 * from the general arenas where the region has no arena to give. */
static RCGC_NOINLINE rcgc_pool *pool_acquire_traced(rcgc_runtime *rt)
{
    rcgc_pool *pool = pool_acquire_in(rt, &rt->pool.rarenas);
    return pool != NULL ? pool : pool_acquire(rt);
}

/* Give an empty pool back to its arena of the set s; return the arena to
 * the OS when it is entirely free and another entirely free arena of the
 * set is already kept. */
static RCGC_ALWAYS_INLINE void pool_release_in(rcgc_runtime *rt, rcgc_pool *pool,
                                               rcgc_arena_set *s)
{
    rcgc_arena *a = pool->arena;
    unsigned old = a->nfreepools;
    pool->szidx = UINT16_MAX;
    pool->nextpool = a->freepools;
    a->freepools = pool;
    if (old > 0)
        avail_unlink(s, a, old);
    a->nfreepools = old + 1;
    if (a->nfreepools < a->ntotalpools) {
        avail_push(s, a);
        return;
    }
    if (s->spare == NULL) {
        s->spare = a;
        return;
    }
    arena_release(rt, a);
}

#ifdef RCGC_REGION_HI
static RCGC_NOINLINE void pool_release_region(rcgc_runtime *rt, rcgc_pool *pool)
{
    pool_release_in(rt, pool, &rt->pool.rarenas);
}
#endif

/* pool_release_in with the set from the arena's address (A4): a general
 * arena's release keeps its set's fields at fixed offsets from rt (a
 * set picked by a conditional move or loaded from the arena cost the
 * pools' release 3-6 instructions, and a load of arena->set made
 * new_decref_untracked32_lone 19-27% slower). */
static RCGC_ALWAYS_INLINE void pool_release(rcgc_runtime *rt, rcgc_pool *pool)
{
#ifdef RCGC_REGION_HI
    if (RCGC_UNLIKELY(((uintptr_t)pool->arena >> (RCGC_ARENA_BITS + RCGC_MAP_BITS)) ==
                      RCGC_REGION_HI)) {
        pool_release_region(rt, pool);
        return;
    }
#endif
    pool_release_in(rt, pool, &rt->pool.arenas);
}

/* pool_init for a traced pool (H1, tmfast.h): its blocks start 16 bytes
 * after pool->mem (the pool's start, as for every pool), so that each
 * block's header (the 16 bytes before it) lies in the pool, and its last
 * block ends at or before the pool's end; every header is zeroed (H2: the
 * pool's memory may hold anything from an earlier life).  It repeats
 * pool_init's stores on purpose: with both built from one inline helper
 * (the first block, the carve offsets as arguments), GCC laid out
 * pool_init's callers worse and `alloc-rcgc pair32 1000000`, whose lone
 * loop sets a pool up at every pair, went 403.7M -> 408.1M instructions. */
static void pool_init_traced(rcgc_pool *pool, unsigned szidx)
{
    uint32_t size = rcgc_class_size(szidx);
    char *base = pool->mem;
    char *first = base + RCGC_HDR_SIZE;
    pool->nalloc = 0;
    pool->szidx = (uint16_t)szidx;
    pool->size = (uint16_t)size;
    pool->inv = (uint32_t)((((uint64_t)1 << 32) + size - 1) / size);
    pool->nblocks = (uint16_t)(RCGC_POOL_SIZE / size);
    pool->ntracked = 0;
    pool->nyoung = 0;
    for (unsigned k = 0; k < pool->nblocks; k++)
        memset(first + (size_t)k * size - sizeof(rcgc_trace_slot), 0, sizeof(rcgc_trace_slot));
    pool->freeblock = first;
    *(void **)pool->freeblock = NULL;
    pool->nextoffset = (uint16_t)(RCGC_HDR_SIZE + size);
    pool->maxnextoffset = (uint16_t)(RCGC_HDR_SIZE + (pool->nblocks - 1u) * size);
    rcgc_pool_set_trace_slots(pool, NULL);
    pool->young_next = pool->young_prev = NULL;
    rcgc_class_table_of(base)->szidx[((uintptr_t)base >> RCGC_POOL_BITS) & (RCGC_ARENA_SLOTS - 1)] =
        (uint8_t)szidx;
    RCGC_ASSERT(pool->tracked[0] == 0 && pool->tracked[RCGC_POOL_BITMAP_WORDS - 1] == 0);
}

static void pool_init(rcgc_pool *pool, unsigned szidx)
{
    RCGC_ASSERT(szidx < RCGC_NCLASSES);   /* traced pools: pool_init_traced */
    uint32_t size = (uint32_t)((szidx + 1) << RCGC_ALIGN_SHIFT);
    pool->nalloc = 0;
    pool->szidx = (uint16_t)szidx;
    pool->size = (uint16_t)size;
    pool->inv = (uint32_t)((((uint64_t)1 << 32) + size - 1) / size);
    pool->nblocks = (uint16_t)(RCGC_POOL_SIZE / size);
    pool->ntracked = 0;
    pool->nyoung = 0;
    pool->freeblock = pool->mem;
    *(void **)pool->freeblock = NULL;
    pool->nextoffset = (uint16_t)size;
    pool->maxnextoffset = (uint16_t)(RCGC_POOL_SIZE - size);
    rcgc_pool_set_trace_slots(pool, NULL);
    pool->young_next = pool->young_prev = NULL;
    rcgc_class_table_of(pool->mem)
        ->szidx[((uintptr_t)pool->mem >> RCGC_POOL_BITS) & (RCGC_ARENA_SLOTS - 1)] =
        (uint8_t)szidx;
    /* The tracked bitmap is already clear: fresh from the OS, or released
     * empty (every object untracked before its block was freed). */
    RCGC_ASSERT(pool->tracked[0] == 0 && pool->tracked[RCGC_POOL_BITMAP_WORDS - 1] == 0);
}

/* The allocation slow path (pool.h has the fast one, which returns NULL
 * only when the class has no pool with a free block): take a pool from the
 * fullest arena, then allocate from it as the fast path's second half does
 * (the free cache is not tried again: every caller has found it empty or
 * off, C5, and a block from the pools is right in any case). */
/* F5 (tmfast.h): while tracing every in-use pool has its side array, so
 * the traced free tests none.  The rest of rcgc_pool_alloc_slow for a
 * pool carved while tracing: gives it its array and allocates from it, or
 * gives the pool back and returns NULL when the array cannot be had.  Out
 * of line and reached by a tail call, so that the untraced carve makes no
 * call it must keep registers across (no callee-saved registers to save)
 * and pool_release keeps its one inlined copy in the free path. */
static RCGC_NOINLINE void *carve_traced(rcgc_runtime *rt, rcgc_pool *pool, unsigned szidx)
{
    if (rcgc_trace_pool_carved(rt, pool) != 0) {
        pool_release(rt, pool);
        return NULL;
    }
    usedpools_push(&rt->pool, pool);
    rcgc_pool *from;
    return rcgc_pool_try_alloc_used(&rt->pool, szidx, &from);
}

void *rcgc_pool_alloc_slow(rcgc_runtime *rt, unsigned szidx)
{
    rcgc_pool_state *ps = &rt->pool;
    if (ps->usedpools[szidx] == NULL) {
        rcgc_pool *pool = pool_acquire(rt);
        if (pool == NULL)
            return NULL;
        pool_init(pool, szidx);
        if (RCGC_UNLIKELY(rt->mem.tracing))
            return carve_traced(rt, pool, szidx);
        usedpools_push(ps, pool);
    }
    rcgc_pool *from;
    return rcgc_pool_try_alloc_used(ps, szidx, &from);
}

void *rcgc_pool_alloc_slow_traced(rcgc_runtime *rt, unsigned r)
{
    RCGC_ASSERT(r >= RCGC_NCLASSES && r < RCGC_NROWS);
    rcgc_pool_state *ps = &rt->pool;
    if (ps->usedpools[r] == NULL) {
        rcgc_pool *pool = pool_acquire_traced(rt);
        if (pool == NULL)
            return NULL;
        /* no side array (F5 is for request classes): the headers (H1) */
        pool_init_traced(pool, r);
        usedpools_push(ps, pool);
    }
    rcgc_pool *from;
    return rcgc_pool_try_alloc_used(ps, r, &from);
}

/* The free slow path, after the block is linked and counted: the pool is
 * empty.  It was on its used list unless it was full (last == NULL: a pool
 * of one block).  It goes back to its arena. */
void rcgc_pool_free_slow(rcgc_runtime *rt, rcgc_pool *pool, void *last)
{
    rcgc_pool_state *ps = &rt->pool;
    RCGC_ASSERT(pool->nalloc == 0);
    if (last != NULL)
        usedpools_unlink(ps, pool);
    RCGC_ASSERT(pool->ntracked == 0 && pool->nyoung == 0);
    pool_release(rt, pool);
}

void rcgc_pool_free_chain(rcgc_runtime *rt, rcgc_pool *pool, void *first, void *tail, unsigned n)
{
    rcgc_pool_state *ps = &rt->pool;
    unsigned c = pool->szidx;
    RCGC_ASSERT(n > 0 && n <= pool->nalloc && n <= rcgc_pool_nlive(ps, c));
    if (RCGC_UNLIKELY(rcgc_pool_nlive(ps, c) == n)) {
        /* The class's last live blocks: one by one, the last spills. */
        *(void **)tail = NULL;
        for (void *p = first, *next; p != NULL; p = next) {
            next = *(void **)p;
            rcgc_pool_free_class(rt, ps, p, c);
        }
        return;
    }
    rcgc_pool_set_held(ps, c, ps->nheld[c] - n);
    void *last = pool->freeblock;
    *(void **)tail = last;
    pool->freeblock = first;
    pool->nalloc = (uint16_t)(pool->nalloc - n);
    if (pool->nalloc == 0) {
        rcgc_pool_free_slow(rt, pool, last);
        return;
    }
    if (last == NULL)
        usedpools_push(ps, pool);   /* it was full: as rcgc_pool_release_block */
}

/* ----------------------------------------------------------- free cache */

void rcgc_pool_cache_init(rcgc_pool_state *ps)
{
    for (unsigned c = 0; c < RCGC_NROWS; c++) {
        ps->crow[c][0] = NULL;
        ps->ctop[c] = &ps->crow[c][0];
        ps->cache[c] = NULL;
        ps->mfloor[c] = (uintptr_t)&ps->crow[c][0];   /* C5: nothing on yet */
        rcgc_pool_set_held(ps, c, 0);
    }
}

void rcgc_pool_set_mem_limits(rcgc_pool_state *ps, int off_fast_paths)
{
    ps->mbias = off_fast_paths ? (uintptr_t)&ps->crow[0][0] : 0;
    for (unsigned c = 0; c < RCGC_NROWS; c++) {
        ps->mlim[c] = (uintptr_t)ps->clim[c] - ps->mbias;
        /* C5; C1's copy, which the traced pops did not keep */
        ps->mfloor[c] = off_fast_paths ? UINTPTR_MAX : (uintptr_t)&ps->crow[c][0];
        ps->cache[c] = *ps->ctop[c];
    }
}

static void cache_flush_class(rcgc_runtime *rt, unsigned c)
{
    rcgc_pool_state *ps = &rt->pool;
    uint32_t n = rcgc_pool_ncache(ps, c);
    ps->ctop[c] = &ps->crow[c][0];
    ps->cache[c] = NULL;
    /* Oldest first, as the linked cache gave them back. */
    for (uint32_t k = 1; k <= n; k++) {
        void *p = ps->crow[c][k];
        if (c >= RCGC_NCLASSES) {
            /* L1 (tmfast.h): a traced pool's cached block may keep its
             * trace (a lazy free); it leaves the cache settled (H2: no
             * trace in a pool; the header is zero when not tracing) */
            rcgc_trace_slot *hd = (rcgc_trace_slot *)p - 1;
            if (rt->mem.tracing)   /* a lazy free's size, or a settled block's credit */
                rt->mem.trace.room += hd->size - ps->hdr_credit[c];
            memset(hd, 0, sizeof *hd);
        }
        rcgc_pool_release_block(rt, ps, rcgc_pool_of(p), p);
    }
}

void rcgc_pool_cache_full(rcgc_runtime *rt, void *p)
{
    /* p, not cached yet, is one of the live blocks (C3).  When it is the
     * last, nothing of the class is live: every cached block goes back
     * too, so pools and arenas can be released.  (cache[c] is NULL only
     * when the cache is empty, in every mode: C1.) */
    rcgc_pool *pool = rcgc_pool_of(p);
    unsigned szidx = pool->szidx;
    if (rt->pool.cache[szidx] != NULL && rcgc_pool_nlive(&rt->pool, szidx) == 1)
        cache_flush_class(rt, szidx);   /* (an empty cache: p is the last) */
    rcgc_pool_release_block(rt, &rt->pool, pool, p);
}

void rcgc_pool_cache_flush(rcgc_runtime *rt)
{
    for (unsigned c = 0; c < RCGC_NROWS; c++)
        if (rt->pool.cache[c] != NULL)
            cache_flush_class(rt, c);
}

static size_t cached_blocks(const rcgc_pool_state *ps)
{
    size_t n = 0;
    for (unsigned c = 0; c < RCGC_NROWS; c++)
        n += rcgc_pool_ncache(ps, c);
    return n;
}

long rcgc_pool_mem_live(rcgc_runtime *rt)
{
    const rcgc_pool_state *ps = &rt->pool;
    long n = 0;
    for (unsigned c = 0; c < RCGC_NROWS; c++)
        n += (long)rcgc_pool_nlive(ps, c);
    /* T4: the ring's blocks are freed, in no row */
    n -= (long)rcgc_mem_hdr_ring_count(rt);
    return n - rcgc_mem_obj_live(rt) - ps->madj;
}

size_t rcgc_pool_live_blocks(rcgc_runtime *rt)
{
    size_t n = 0;
    for (rcgc_arena *a = rt->pool.all; a; a = a->allnext)
        for (unsigned i = 0; i < a->ncarved; i++)
            n += rcgc_arena_pool(a, i)->nalloc;
    return n - cached_blocks(&rt->pool);
}

size_t rcgc_pool_block_size(const void *p)
{
    const rcgc_pool *pool = rcgc_pool_of(p);
    return pool->size - rcgc_class_offset(pool->szidx);   /* H1: less the header */
}

void rcgc_pool_young_add(rcgc_runtime *rt, rcgc_pool *pool)
{
    rcgc_pool_state *ps = &rt->pool;
    pool->young_prev = NULL;
    pool->young_next = ps->young;
    if (ps->young)
        ps->young->young_prev = pool;
    ps->young = pool;
}

void rcgc_pool_young_remove(rcgc_runtime *rt, rcgc_pool *pool)
{
    rcgc_pool_state *ps = &rt->pool;
    if (pool->young_prev)
        pool->young_prev->young_next = pool->young_next;
    else
        ps->young = pool->young_next;
    if (pool->young_next)
        pool->young_next->young_prev = pool->young_prev;
    pool->young_next = pool->young_prev = NULL;
}

void rcgc_pool_state_fini(rcgc_runtime *rt)
{
    rcgc_pool_state *ps = &rt->pool;
    while (ps->all)
        arena_release(rt, ps->all);
    memset(ps, 0, sizeof *ps);
    rcgc_pool_cache_init(ps);
}

/* ---------------------------------------------------------- statistics */

static int pool_in_use(const rcgc_arena *a, const rcgc_pool *pool)
{
    for (const rcgc_pool *f = a->freepools; f; f = f->nextpool)
        if (f == pool)
            return 0;
    return 1;
}

void rcgc_pool_stats(rcgc_runtime *rt, rcgc_mem_stats *st)
{
    rcgc_pool_state *ps = &rt->pool;
    st->arenas_allocated_total = ps->ntimes_arena_allocated;
    st->arenas_freed_total = ps->narenas_freed;
    st->arenas_current = ps->narenas_current;
    st->arenas_highwater = ps->narenas_highwater;
    st->bytes_mapped = ps->narenas_current * RCGC_ARENA_SIZE;
    st->pools_used = st->pools_empty = st->blocks_allocated = st->bytes_allocated = 0;
    for (rcgc_arena *a = ps->all; a; a = a->allnext) {
        for (unsigned i = 0; i < a->ncarved; i++) {
            rcgc_pool *pool = rcgc_arena_pool(a, i);
            if (!pool_in_use(a, pool)) {
                st->pools_empty++;
                continue;
            }
            st->pools_used++;
            st->blocks_allocated += pool->nalloc;
            st->bytes_allocated += (size_t)pool->nalloc * pool->size;
        }
    }
    /* Cached blocks are free. */
    for (unsigned c = 0; c < RCGC_NROWS; c++) {
        st->blocks_allocated -= rcgc_pool_ncache(ps, c);
        st->bytes_allocated -= (size_t)rcgc_pool_ncache(ps, c) * rcgc_class_size(c);
    }
}

/* Print with thousands separators, right-aligned in `width` columns. */
static void print_count(FILE *out, const char *label, size_t value)
{
    char digits[32], buf[48];
    int n = snprintf(digits, sizeof digits, "%zu", value);
    int j = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[j++] = ',';
        buf[j++] = digits[i];
    }
    buf[j] = '\0';
    fprintf(out, "%-35s= %20s\n", label, buf);
}

/* The layout of CPython's sys._debugmallocstats() (its obmalloc part). */
void rcgc_pool_print_stats(rcgc_runtime *rt, FILE *out)
{
    rcgc_pool_state *ps = &rt->pool;
    size_t numpools[RCGC_NROWS] = {0}, numblocks[RCGC_NROWS] = {0},
           numfree[RCGC_NROWS] = {0};
    size_t unused_pools = 0, header_bytes = 0, quantization = 0;
    for (rcgc_arena *a = ps->all; a; a = a->allnext) {
        header_bytes += RCGC_POOL_SIZE;   /* the descriptor slot */
        unused_pools += a->nfreepools;
        for (unsigned i = 0; i < a->ncarved; i++) {
            rcgc_pool *pool = rcgc_arena_pool(a, i);
            if (!pool_in_use(a, pool))
                continue;
            unsigned c = pool->szidx;
            numpools[c]++;
            numblocks[c] += pool->nalloc;
            numfree[c] += (size_t)(pool->nblocks - pool->nalloc);
            quantization += RCGC_POOL_SIZE - (size_t)pool->nblocks * pool->size;
        }
    }
    for (unsigned c = 0; c < RCGC_NROWS; c++) {   /* cached blocks are free */
        numblocks[c] -= rcgc_pool_ncache(ps, c);
        numfree[c] += rcgc_pool_ncache(ps, c);
    }
    fprintf(out, "Small block threshold = %d, in %d size classes.\n\n",
            RCGC_SMALL_LIMIT, RCGC_NCLASSES);
    fprintf(out, "class   size   num pools   blocks in use  avail blocks\n");
    fprintf(out, "-----   ----   ---------   -------------  ------------\n");
    size_t allocated_bytes = 0, available_bytes = 0;
    for (unsigned c = 0; c < RCGC_NROWS; c++) {   /* traced pools (H1) after the rest */
        if (numpools[c] == 0)
            continue;
        size_t size = rcgc_class_size(c);
        fprintf(out, "%5u %6zu %11zu %15zu %13zu\n", c, size, numpools[c],
                numblocks[c], numfree[c]);
        allocated_bytes += numblocks[c] * size;
        available_bytes += numfree[c] * size;
    }
    fputc('\n', out);
    print_count(out, "# arenas allocated total", ps->ntimes_arena_allocated);
    print_count(out, "# arenas reclaimed", ps->narenas_freed);
    print_count(out, "# arenas highwater mark", ps->narenas_highwater);
    print_count(out, "# arenas allocated current", ps->narenas_current);
    char label[64];
    snprintf(label, sizeof label, "%zu arenas * %zu bytes/arena", ps->narenas_current,
             RCGC_ARENA_SIZE);
    print_count(out, label, ps->narenas_current * RCGC_ARENA_SIZE);
    fputc('\n', out);
    print_count(out, "# bytes in allocated blocks", allocated_bytes);
    print_count(out, "# bytes in available blocks", available_bytes);
    snprintf(label, sizeof label, "%zu unused pools * %zu bytes", unused_pools, RCGC_POOL_SIZE);
    print_count(out, label, unused_pools * RCGC_POOL_SIZE);
    print_count(out, "# bytes lost to pool headers", header_bytes);
    print_count(out, "# bytes lost to quantization", quantization);
    print_count(out, "# bytes lost to arena alignment", 0);
    print_count(out, "Total", allocated_bytes + available_bytes + unused_pools * RCGC_POOL_SIZE +
                                  header_bytes + quantization);
}

/* ----------------------------------------------------------- validation */

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            if (out) {                                                        \
                fprintf(out, "rcgc_validate: " __VA_ARGS__);                  \
                fputc('\n', out);                                             \
            }                                                                 \
            return RCGC_EFORMAT;                                              \
        }                                                                     \
    } while (0)

static int validate_pool(rcgc_runtime *rt, rcgc_pool *pool, FILE *out)
{
    CHECK(pool->rt == rt, "pool %p: wrong runtime", (void *)pool);
    CHECK(pool->szidx < RCGC_NROWS, "pool %p: bad size class %u", (void *)pool, pool->szidx);
    CHECK(rcgc_class_table_of(pool->mem)
                  ->szidx[((uintptr_t)pool->mem >> RCGC_POOL_BITS) & (RCGC_ARENA_SLOTS - 1)] ==
              pool->szidx,
          "pool %p: its arena records another size class (A3)", (void *)pool);
    CHECK(pool->size == rcgc_class_size(pool->szidx),
          "pool %p: size %u does not match class %u", (void *)pool, pool->size, pool->szidx);
    /* H1: a traced pool's blocks start 16 bytes in and end in the pool */
    CHECK(((uintptr_t)pool->mem & (RCGC_POOL_SIZE - 1)) == 0 &&
              pool->nblocks == RCGC_POOL_SIZE / pool->size &&
              (pool->nextoffset - rcgc_class_offset(pool->szidx)) % pool->size == 0,
          "pool %p: its blocks do not start at %u (H1)", (void *)pool,
          rcgc_class_offset(pool->szidx));
    unsigned carved = pool->nextoffset / pool->size;
    unsigned nfree = 0;
    for (void *b = pool->freeblock; b; b = *(void **)b) {
        CHECK(rcgc_pool_of(b) == pool, "pool %p: free list leaves the pool", (void *)pool);
        CHECK(++nfree <= pool->nblocks, "pool %p: free list cycles", (void *)pool);
    }
    /* P1 (the block at nextoffset - size is carved but may be on the list) */
    CHECK(pool->nalloc + nfree == carved, "pool %p: nalloc %u + free %u != carved %u (P1)",
          (void *)pool, pool->nalloc, nfree, carved);
    /* P2 */
    int on_used = 0;
    for (rcgc_pool *q = rt->pool.usedpools[pool->szidx]; q; q = q->nextpool)
        if (q == pool)
            on_used = 1;
    CHECK(on_used == (pool->freeblock != NULL), "pool %p: on used list %d, has free block %d (P2)",
          (void *)pool, on_used, pool->freeblock != NULL);
    CHECK(!on_used || rt->pool.usedpools[pool->szidx] == pool ||
              (pool->prevpool != NULL && pool->prevpool->nextpool == pool),
          "pool %p: used-list predecessor link broken (P2)", (void *)pool);
    /* P3, P4 */
    unsigned ntracked = 0, nyoung = 0;
    for (unsigned w = 0; w < RCGC_POOL_BITMAP_WORDS; w++) {
        uint64_t bits = pool->tracked[w];
        while (bits) {
            unsigned i = w * 64 + (unsigned)__builtin_ctzll(bits);
            bits &= bits - 1;
            CHECK(i < carved, "pool %p: tracked bit %u beyond carved blocks (P3)", (void *)pool, i);
            rcgc_object *o = (rcgc_object *)((char *)rcgc_pool_block(pool, i) + rt->mem.debug_pre);
            CHECK((o->flags & RCGC_OF_TRACKED) && !(o->flags & RCGC_OF_FOREIGN),
                  "object %p (%s): tracked bit set but header flags 0x%x (P3)", (void *)o,
                  o->type ? o->type->name : "?", o->flags);
            ntracked++;
            if (rcgc_obj_gen(o) < 2)
                nyoung++;
        }
    }
    CHECK(ntracked == pool->ntracked, "pool %p: ntracked %u, bitmap has %u (P3)", (void *)pool,
          pool->ntracked, ntracked);
    CHECK(nyoung == pool->nyoung, "pool %p: nyoung %u, counted %u (P4)", (void *)pool,
          pool->nyoung, nyoung);
    int on_young = 0;
    for (rcgc_pool *q = rt->pool.young; q; q = q->young_next)
        if (q == pool)
            on_young = 1;
    CHECK(on_young == (nyoung > 0), "pool %p: on young list %d with nyoung %u (P4)",
          (void *)pool, on_young, nyoung);
    return RCGC_OK;
}

int rcgc_pool_validate(rcgc_runtime *rt, FILE *out)
{
    rcgc_pool_state *ps = &rt->pool;
    size_t narenas = 0, perclass[RCGC_NROWS] = {0};
    /* M2 */
    for (size_t i = 0; i < RCGC_MAP_LEN; i++) {
        CHECK(atomic_load_explicit(&rcgc_arena_map[i], memory_order_acquire) != NULL,
              "arena map entry %zu has no leaf (M2)", i);
        CHECK(atomic_load_explicit(&rcgc_empty_leaf[i], memory_order_relaxed) == NULL,
              "the empty leaf's entry %zu is set (M2)", i);
    }
    for (rcgc_arena *a = ps->all; a; a = a->allnext) {
        narenas++;
        CHECK(a->rt == rt, "arena %p: wrong runtime", (void *)a);
        CHECK(rcgc_arena_lookup((void *)a->base) == a, "arena %p: not in the arena map", (void *)a);
        /* M1 */
        CHECK(rcgc_class_entry_lookup((void *)(a->base + RCGC_POOL_SIZE)) ==
                  &rcgc_class_table_of((void *)a->base)->szidx[1],
              "arena %p: its class table does not follow its map leaf (M1)", (void *)a);
        unsigned nfree = a->ntotalpools - a->ncarved;
        for (rcgc_pool *f = a->freepools; f; f = f->nextpool)
            nfree++;
        CHECK(nfree == a->nfreepools, "arena %p: nfreepools %u, counted %u (A1)", (void *)a,
              a->nfreepools, nfree);
        /* A4, T1 */
        CHECK(a->set == arena_set_of(ps, a), "arena %p: its set is not its address's (A4)",
              (void *)a);
        CHECK(a->set != &ps->rarenas ||
                  rt->region_classes_at == region_classes_at(1),
              "arena %p in the traced region, and the runtime reads zeros for its classes (T1)",
              (void *)a);
        CHECK((a->set == &ps->rarenas) == rcgc_pool_in_region((void *)a->base),
              "arena %p: %s the traced region, in the %s arenas (T1)", (void *)a,
              rcgc_pool_in_region((void *)a->base) ? "in" : "outside",
              a->set == &ps->rarenas ? "region's" : "general");
        const rcgc_arena_set *as = a->set;
        int in_bucket = 0;
        if (a->nfreepools > 0)
            for (rcgc_arena *b = as->avail[a->nfreepools]; b; b = b->nextarena)
                if (b == a)
                    in_bucket = 1;
        CHECK(in_bucket == (a->nfreepools > 0 && a != as->spare),
              "arena %p: bucket membership wrong (A2)", (void *)a);
        CHECK(a != as->spare || a->nfreepools == a->ntotalpools, "spare arena in use (A2)");
        for (unsigned i = 0; i < a->ncarved; i++) {
            rcgc_pool *pool = rcgc_arena_pool(a, i);
            if (!pool_in_use(a, pool))
                continue;
            CHECK(a->set != &ps->rarenas || pool->szidx >= RCGC_NCLASSES,
                  "pool %p of class %u in the traced region (T1)", (void *)pool, pool->szidx);
            int rc = validate_pool(rt, pool, out);
            if (rc != RCGC_OK)
                return rc;
            perclass[pool->szidx] += pool->nalloc;
        }
    }
    CHECK(narenas == ps->narenas_current, "%zu arenas mapped, %zu counted", ps->narenas_current,
          narenas);
    /* C1, C2: the free cache */
    for (unsigned c = 0; c < RCGC_NROWS; c++) {
        CHECK(ps->ctop[c] >= &ps->crow[c][0] && ps->ctop[c] <= &ps->crow[c][RCGC_FREE_CACHE],
              "class %u: cache top out of its row (C1)", c);
        CHECK(ps->crow[c][0] == NULL, "class %u: cache floor overwritten (C1)", c);
        CHECK(rt->mem.slow != 0 || ps->cache[c] == *ps->ctop[c],
              "class %u: cache head %p is not the top %p (C1)", c, ps->cache[c], *ps->ctop[c]);
        CHECK(ps->cache[c] != NULL || *ps->ctop[c] == NULL,
              "class %u: cache head NULL above the floor (C1)", c);
        CHECK(ps->mfloor[c] == (rt->mem.slow ? UINTPTR_MAX : (uintptr_t)&ps->crow[c][0]),
              "class %u: the allocation's floor does not follow the mode (C5)", c);
        uint32_t n = rcgc_pool_ncache(ps, c);
        for (uint32_t k = 1; k <= n; k++) {
            void *b = ps->crow[c][k];
            CHECK(b != NULL, "class %u: NULL in the cache below its top (C1)", c);
            for (uint32_t j = 1; j < k; j++)
                CHECK(ps->crow[c][j] != b, "class %u: %p cached twice (C1)", c, b);
            rcgc_arena *a = rcgc_arena_lookup(b);
            CHECK(a != NULL && a->rt == rt, "class %u: cached %p is not in this runtime's pools (C1)",
                  c, b);
            rcgc_pool *pool = rcgc_pool_of(b);
            CHECK(pool_in_use(a, pool) && pool->szidx == c,
                  "class %u: cached %p is in a pool of another class (C1)", c, b);
            unsigned i = rcgc_pool_index(pool, b);
            CHECK(rcgc_pool_block_at(pool, i) == b && i < pool->nblocks,
                  "class %u: cached %p is not a block start (C1)", c, b);
            CHECK(!(pool->tracked[i >> 6] & ((uint64_t)1 << (i & 63))),
                  "class %u: cached %p is tracked (C1)", c, b);
            for (void *f = pool->freeblock; f; f = *(void **)f)
                CHECK(f != b, "class %u: cached %p is on its pool's free list (C1)", c, b);
        }
        CHECK(ps->nheld[c] == perclass[c], "class %u: %zu blocks held, pools hold %zu (C2)", c,
              ps->nheld[c], perclass[c]);
        CHECK(n == 0 || n < ps->nheld[c],
              "class %u: %u cached blocks and no live one: not given back (C2)", c, n);
        size_t lim = ps->nheld[c] < RCGC_FREE_CACHE + 1 ? ps->nheld[c] : RCGC_FREE_CACHE + 1;
        CHECK(ps->clim[c] == &ps->crow[c][lim],
              "class %u: cache limit at %td, not at %zu (C3)", c, ps->clim[c] - &ps->crow[c][0],
              lim);
        CHECK(ps->mlim[c] == (uintptr_t)ps->clim[c] - ps->mbias &&
                  ps->mbias == (rt->mem.slow ? (uintptr_t)&ps->crow[0][0] : 0),
              "class %u: the free's limit does not follow the cache limit and the mode (C4)", c);
    }
    /* M3 defines the MEM count, so only its sign can be checked here; its
     * exactness is test_mem_live_every_mode's. */
    CHECK(rcgc_pool_mem_live(rt) >= 0, "MEM domain count %ld < 0: madj %ld is off (M3)",
          rcgc_pool_mem_live(rt), (long)ps->madj);
    return RCGC_OK;
}
