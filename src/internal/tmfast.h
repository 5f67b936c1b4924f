/*
 * tmfast.h - tracing's allocation fast path, inlined into mem.c and object.c
 * (docs/tracemalloc.md, "The fast path").
 *
 * When tracing is the only thing between the public calls and the pools
 * (rt->mem.slow == RCGC_SLOW_TRACE: no debug hooks, no fault injection, MEM
 * and OBJ on rcgc's pools, not inside the tracer), rcgc_mem_malloc,
 * rcgc_new, rcgc_mem_free and deallocation take the pool block inline, as
 * untraced, and record or forget its trace inline:
 *
 *   allocate  a block of the free cache carries its slot (F4): with the
 *             last call site, one store and the counters.  Otherwise the
 *             traceback id from the call-site cache (a hit: one hash, one
 *             entry compared); the block's slot in its pool's side array
 *             (pool->trace_slots, indexed like the blocks) gets (tb, size);
 *             three counters.  A cache miss, native or callback frames
 *             call the tracer (rcgc_trace_malloc_fast for rcgc_mem_malloc,
 *             rcgc_trace_record_block for objects); so does a pool
 *             without a side array.  A native stack that repeats a
 *             recorded one is recognized there without a walk
 *             (unwind.h); rcgc_mem_malloc then takes the free cache's
 *             block with its slot (F4) as for a call site.
 *   free      the slot, found from the arena's class and trace tables
 *             (not the pool descriptor), is prefetched and becomes the
 *             pending one (D1); the slot pending before is read and
 *             zeroed, its size leaves the counters; the new slot's
 *             address goes into the free cache's slot entry of the block
 *             (F4), not into the block.
 *
 * The tracemalloc wrappers stay installed: every other call (calloc,
 * realloc, RAW, blocks above 512 B, any failure here) goes through them,
 * and they keep the same tables and counters.
 *
 * Invariants (checked by rcgc_trace_validate in tracemalloc.c):
 *   F1  pool->trace_slots is NULL or the slots of the side array the tracer
 *       of pool->rt keeps for this pool in its current size class
 *       (pool->nblocks slots); the pool's entry in its arena's trace table
 *       (rcgc_trace_table.trace_slots) holds the same array, biased
 *       (rcgc_trace_table_bias; NULL as NULL; rcgc_trace_set_slots sets
 *       both).
 *   F2  a slot has tb != 0 iff its block is live and traced, or it is the
 *       pending slot (D1); a slot with tb == 0 has size 0.  peak - room
 *       is the sum of the sizes of all traces (slots, the pending one
 *       included, and the tracer's table), room <= peak
 *       (rcgc_trace_count); traced (get_traced_memory) is that minus
 *       pending->size.
 *   F3  every free of a pool block while tracing zeroes its slot (fast path
 *       or wrapper; the traced rcgc_mem_free one free later, D1), so a
 *       pool that empties has only zero slots but the pending one: pool_init
 *       may drop trace_slots, and a new block's slot is zero once D1's
 *       check in rcgc_trace_write_slot has settled it.
 *   F4  while tracing, the parallel entry cslot[c][k] of every block
 *       crow[c][k] in the free cache (k = 1..n, pool.h) is the address of
 *       its own trace slot or NULL (see rcgc_trace_try_cached_last); no block
 *       of the free cache holds anything for tracing (a traced free writes
 *       nothing into its block).  Every push that can run while tracing
 *       writes the entry: the traced rcgc_mem_free its slot, the others
 *       NULL; the untraced rcgc_mem_free's push, which goes ahead only
 *       while nothing is on (C4, pool.h), leaves it (perf-alloc9), so
 *       tracing's start resets the entries of the cached blocks to NULL
 *       (and stop does too).  The
 *       floor's entry cslot[c][0] is NULL (no push writes it; start
 *       clears it too): an empty cache's top is the floor, so the traced
 *       allocation tests the top's entry alone (rcgc_trace_pop_cached).
 *   D1  rt->mem.trace.pending is &rt->mem.trace.idle (always zero) or the
 *       slot, in a side array the tracer keeps, of a freed pool block
 *       whose trace the traced rcgc_mem_free has not cleared yet: that free
 *       only prefetches its block's slot and makes it pending, and clears
 *       the slot pending before it (reads its size back into room, zeroes
 *       it), whose line its own prefetch has brought in by then.  So the
 *       free's only read of a slot is off its long chain of dependent
 *       loads (map, leaf, class and trace table, multiplier), which kept
 *       the reorder buffer waiting for a slot that missed L1.  Settling
 *       (rcgc_trace_settle: clear the pending slot, pending = &idle) is
 *       due before anything else reads or writes it: every slot write
 *       compares its slot with pending (rcgc_trace_write_slot), a borrow
 *       of rcgc_trace_count settles before it raises the peak (so the
 *       peak stays exact), and the tracer settles on entry to its slow
 *       paths, readers and clearing, and before it reuses or frees a side
 *       array (tracemalloc.c).
 *   R6  h->last matches no call (its file is rcgc_trace_no_site) unless
 *       rt->mem.slow == RCGC_SLOW_TRACE: rcgc_mem_update_slow, the only
 *       writer of slow, resets it whenever slow is anything else, and
 *       only the paths that run with slow == RCGC_SLOW_TRACE set it
 *       (rcgc_trace_site_tb).  So a test of the last site needs no test
 *       of the mode before it.  (rcgc_mem_malloc_at picks its traced
 *       paths by the route, R7, since its pop fails by C5, pool.h.)
 *   R7  rt->mem.trace.route is RCGC_TRACE_ROUTE_SLOW when slow !=
 *       RCGC_SLOW_TRACE, else RCGC_TRACE_ROUTE_SITES when h->sites is set
 *       (frames from call sites), else RCGC_TRACE_ROUTE_NATIVE: every
 *       writer of slow or sites calls rcgc_trace_route_update after it.
 *       So rcgc_mem_malloc_at's failed pop (C5, pool.h) picks its way
 *       with one compare.
 *   R8  rt->mem.trace.free_not is rcgc_mem_free_not_of(rt->mem.slow):
 *       rcgc_mem_update_slow, the only writer of slow, sets it.  So
 *       rcgc_mem_free's failed push (every free while anything is on, C4
 *       in pool.h) continues by one indirect jump to the traced free
 *       when tracing is all that is on, else to the limit or the domain;
 *       neither continuation tests the mode.  It passes the address of
 *       the class's row, rt + 8c, in place of c: the row's fields and
 *       rt->trace_class_inv[c] (8-byte entries) are read at fixed
 *       offsets from it.
 *   F5  while rt->mem.tracing (tracemalloc's wrappers installed), every
 *       in-use pool of rt (szidx != UINT16_MAX) has its side array:
 *       start gives one to each pool in use before it installs the
 *       wrappers (and fails with RCGC_ENOMEM when it cannot), a pool
 *       carved while tracing gets one in rcgc_pool_alloc_slow (pool.c;
 *       when it cannot, the carve fails like an arena that cannot be
 *       mapped), and clear_traces zeroes the arrays instead of freeing
 *       them.  So the traced free (rcgc_trace_forget_inv), whose block
 *       lies in an in-use pool of rt, reads its trace table entry with
 *       no test.
 *   R10 h->last matches no call unless rt->mem.trace.route is
 *       RCGC_TRACE_ROUTE_SITES: R6 (slow), and h->last's file is
 *       rcgc_trace_no_site whenever h->sites is NULL (update_sites and
 *       the calibration in tracemalloc.c reset it, and only
 *       rcgc_trace_site_tb sets it, from a hit in h->sites).  So
 *       rcgc_mem_malloc_at's failed pop compares the last site before
 *       the route: a match is the traced route, with no route compare
 *       on the common traced allocation.
 */
/*
 * H1  (perf-tm17) pool class RCGC_NCLASSES + c (a traced pool, pool.h) is
 *     the traced twin of request class c: blocks of 16 (c + 2) bytes
 *     whose first block starts 16 bytes after the pool's start (pool->mem;
 *     rcgc_pool_block_at), each handed out at its start p for at most
 *     16 (c + 1) bytes; the 8 bytes at p - 8 are its header, an
 *     rcgc_trace_slot (rcgc_trace_hdr), the 8 at p - 16 are unused (the
 *     previous block's last 16 bytes, beyond its caller's bytes:
 *     rcgc_pool_block_size is 16 less).  Only tracing's MEM fast paths
 *     allocate from traced pools, while slow == RCGC_SLOW_TRACE
 *     (rcgc_trace_try_cached_last, rcgc_trace_hdr_block, the native
 *     route), so a traced pool has no side array (F5 is for request
 *     classes), and neither the traced free nor the traced allocation
 *     reads a side array, an index or a slot entry.  F4 and D1 concern
 *     the request classes' blocks only.
 * H2  a traced pool's header of block k (carved or not) is zero unless
 *     the block is live and traced, or it is a lazy free (L1): pool_init
 *     zeroes every header of a traced pool, every traced allocation
 *     writes its block's, the wrappers' frees clear it before the block
 *     goes (tm_free_w, tm_realloc: the block may take its arena with it),
 *     a block leaving the free cache for its pool is cleared first
 *     (free_not_hdr's limit path, a flush of the row), and clear_traces
 *     and stop zero every header (tm_clear).  So a header is never the
 *     pending slot (D1), and a block of a traced pool freed after stop and
 *     taken again after a new start has a zero header.  Its size counts
 *     in peak - room like a side slot's (F2, R1).
 * L1  while tracing, a cached block of a traced row may be a lazy free
 *     (since T4 only with the credits off: with them on the traced free's
 *     ring settles every block before caching it):
 *     rcgc_mem_free (free_not_hdr_marked) pushed it without
 *     reading its header, which keeps the block's last trace, and added
 *     only its row's credit (pool.h: hdr_credit[r]) to room, so peak -
 *     room still counts its size less the credit; a settled entry's
 *     header is (0, credit) and counts nothing; in each row the lazy
 *     entries lie above the settled ones (pushes at the top,
 *     rcgc_trace_settle_hdrs settles from the top down to the first
 *     settled entry, start and tm_clear settle every entry).  Which
 *     entries are lazy (rcgc_trace_hdr_lazy): with the credits on, those
 *     whose header holds a trace (tb != 0: every freed block was traced,
 *     so the free writes no mark: perf-tm22, one store a traced free
 *     less); with the credits off, those whose slot entry (cslot, unused
 *     otherwise by these rows) is not RCGC_HDR_SETTLED (the free then
 *     writes NULL there, and credits_off marks every entry settled as it
 *     settles them: an untraced block's lazy free has a zero header like
 *     a settled one, so the header cannot tell).  The credit of
 *     row 32 + c is 16 c + 1 (the smallest size asked of the class) while
 *     every live block of the traced pools is traced (start and
 *     clear_traces turn the credits on when none is live; credits_off, in
 *     tracemalloc.c, turns them off when a realloc leaves one live without
 *     a trace), else 0: so a lazy free's size is at least its credit and
 *     peak - room never counts less than the true size (a borrow is due
 *     whenever one is), and room drains no faster than with eager frees
 *     (the settling walks stay rare).  The allocation that pops a traced
 *     row's block adds its header's size less the credit to room as it
 *     writes the new trace (the line is needed then anyway);
 *     the tracer's readers and writers (settle_all), a borrow of
 *     rcgc_trace_count (before the peak may move: the peak stays exact)
 *     and a flush of the row settle; get_traced_memory subtracts the lazy
 *     sizes.  Reading the header in the free put a cold block's miss on
 *     the chain of room's updates that every traced call extends.
 * R12 rt->pool.free_not[r] is rt->mem.trace.free_not (R8) for the request
 *     rows and rcgc_mem_free_hdr_of(slow, credits on) for the traced rows
 *     (while tracing alone free_not_hdr with the credits on,
 *     free_not_hdr_marked with them off, else what R8 names):
 *     rcgc_mem_free's failed push jumps through its row
 *     (rcgc_mem_free_rows_set sets them, called by rcgc_mem_update_slow
 *     and by every change of the credits), so neither continuation
 *     compares the class or the credits.
 * T4  (perf-ring) while tracing alone with the credits on (rt->region_rows
 *     == RCGC_NCLASSES, T2: the ring's mode), a traced pool's block freed
 *     by rcgc_mem_free (the region's free, T1, or free_not_hdr) is not
 *     cached at once: it goes into the traced free's ring
 *     (rt->hdr_ring, 16 entries, with its row), keeping its trace and
 *     counting in peak - room with its whole size (no credit); the block
 *     it replaces in the ring, freed 16 frees before (its header's line
 *     prefetched then), is settled: its size back to room, its header
 *     (0, credit), and cached in its row, or given to its pool at the
 *     row's limit (header zero, H2).  So in the ring's mode every cached
 *     block of a traced row is settled (L1's lazy frees are the ring's
 *     entries), and the allocation at the last call site
 *     (rcgc_trace_try_cached_last) reads nothing of the block it pops:
 *     room takes its size, its header is written.  The last call site
 *     matches only in the ring's mode (rcgc_trace_site_tb sets it only
 *     then, rcgc_mem_free_rows_set resets it out of it: R10's
 *     extension); the other traced pops read the header as L1 says.
 *     rcgc_mem_hdr_ring_flush settles every entry, oldest first: called
 *     by rcgc_trace_settle_hdrs (so by every reader and writer of the
 *     tracer, a borrow and credits_off), by hdr_rows_mark before it
 *     changes the credits, by rcgc_mem_free_rows_set (every change of
 *     slow) and by rcgc_validate; get_traced_memory subtracts the ring's
 *     sizes, rcgc_pool_mem_live its count (M3: its blocks are freed, in
 *     no row).  The ring is empty out of its mode.
 * rcgc_trace_validate checks H2, L1, R12 and T4 (rcgc_pool_validate H1's
 * layout).
 */
#ifndef RCGC_TMFAST_H
#define RCGC_TMFAST_H

#include <string.h>

#include "pool.h"
#include "runtime.h"

_Static_assert(sizeof(rcgc_trace_slot) == 8 && offsetof(rcgc_trace_slot, tb) == 0,
               "a side slot is one 8-byte word");
_Static_assert(sizeof(rcgc_class_table) == RCGC_ARENA_SLOTS &&
                   sizeof(rcgc_trace_table) == RCGC_ARENA_SLOTS * sizeof(rcgc_trace_slot *) &&
                   RCGC_ARENA_SLOTS << RCGC_POOL_BITS == RCGC_ARENA_SIZE,
               "rcgc_trace_forget_in's flat index of a leaf's two tables");
_Static_assert(RCGC_ADDRESS_BITS < 63, "a slot address is a positive intptr_t");

/* Which fast path asks (the native stack calibration differs). */
#define RCGC_TRACE_FAST_MEM RCGC_DOMAIN_MEM
#define RCGC_TRACE_FAST_OBJ RCGC_DOMAIN_OBJ

/* Trace the fresh pool block p of `size` bytes allocated at (file, line),
 * whatever it takes (capture a traceback, make the pool's side array).
 * 0, or -1 when the trace cannot be stored (nothing recorded: the caller
 * gives the block back and takes the wrapper path).  tracemalloc.c. */
int rcgc_trace_record_block(rcgc_runtime *rt, void *p, size_t size, const char *file, int line,
                            int fast);

/* rcgc_mem_malloc while tracing is all that is on, when the inline path
 * could not record: p is the block the pools' inline path gave (pool its
 * pool), or NULL when the inline path had none.  Captures the traceback
 * (a call-site cache miss), takes a block when p is NULL and records the
 * trace; returns the block, counted in the MEM domain.  On any failure it
 * calls rcgc_mem_malloc_wrapped, which may return NULL.  size is 1 to
 * RCGC_SMALL_LIMIT.  Frames not from call sites go to
 * rcgc_trace_malloc_native instead.  tracemalloc.c. */
void *rcgc_trace_malloc_fast(rcgc_runtime *rt, void *p, rcgc_pool *pool, size_t size,
                             const char *file, int line);

/* rcgc_mem_malloc while tracing is all that is on and frames do not come
 * from call sites (native or callback: h->sites is NULL; no block taken,
 * rcgc_trace_try_cached_last cannot record those), size 1 to
 * RCGC_SMALL_LIMIT.  Captures the traceback (a repeated native stack is
 * recognized here without a walk; then a block of the free cache that
 * carries its slot, F4, is taken without its pool), takes a block and
 * records the trace; returns the block, counted in the MEM domain, or
 * what rcgc_mem_malloc_wrapped returns on any failure.  Its arguments are
 * rcgc_mem_malloc_at's own (the same registers: no moves), and no block
 * or pool is passed, so the repeat check keeps its state in scratch
 * registers (no register saves).  topp is &rt->pool.ctop[c] and top
 * *topp, c the size class of `size`: rcgc_mem_malloc_at's failed pop
 * read them (in the registers of the fifth and sixth arguments), so the
 * pop here neither derives the class nor reloads the top.  Every such
 * allocation reaches the capture by the same calls (mem.c's
 * rcgc_mem_malloc_at, then this function), so the native calibration
 * (which clears h->sites) measures the same frames as real calls.
 * tracemalloc.c. */
void *rcgc_trace_malloc_native(rcgc_runtime *rt, size_t size, const char *file, int line,
                               void ***topp, void **top);

/* Give p (a pool block not yet counted, or NULL) back and allocate `size`
 * bytes at (file, line) through the MEM domain's wrappers (the OOM handler,
 * failure as usual).  mem.c. */
void *rcgc_mem_malloc_wrapped(rcgc_runtime *rt, size_t size, const char *file, int line, void *p);

/* Record (tb, size) for the fresh block p of `pool` when the pool has no
 * side array yet (makes it); 0, or -1 out of memory.  tracemalloc.c. */
int rcgc_trace_put_new(rcgc_runtime *rt, rcgc_pool *pool, void *p, size_t size, uint32_t tb);

/* D1: clear the pending slot (its size back to room, the slot zeroed);
 * nothing is pending afterwards. */
static inline void rcgc_trace_settle(rcgc_trace_hot *h)
{
    rcgc_trace_slot *q = h->pending;
    h->room += q->size;
    memset(q, 0, sizeof *q);
    h->pending = &h->idle;
}

/* rcgc_trace_count's borrow: room holds room - size + 2^64.  The pending
 * free's size first (D1); only a true shortfall raises the peak, by
 * exactly that much, leaving no headroom. */
/* L1: give the lazy traces of the traced pools' cached blocks back to
 * room (their headers zeroed, their slot entries marked settled);
 * returns room.  tracemalloc.c. */
size_t rcgc_trace_settle_hdrs(rcgc_trace_hot *h);

static inline void rcgc_trace_borrow(rcgc_trace_hot *h)
{
    rcgc_trace_slot *q = h->pending;
    size_t r = h->room + q->size;   /* modulo 2^64 */
    memset(q, 0, sizeof *q);
    h->pending = &h->idle;
    if ((intptr_t)r < 0) {   /* still short: the lazy frees (L1) next */
        h->room = r;
        r = rcgc_trace_settle_hdrs(h);
        if ((intptr_t)r < 0) {   /* still short: r is minus the shortfall */
            h->peak -= r;
            r = 0;
        }
    }
    h->room = r;
}

/* Count a new trace of `size` bytes: traced (peak - room) grows by size,
 * the peak follows it.  The headroom takes the size; only when it is
 * smaller does the peak move (to the new traced, leaving no headroom),
 * once the pending free has given its size back (D1). */
static inline void rcgc_trace_count(rcgc_trace_hot *h, size_t size)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && defined(__GCC_ASM_FLAG_OUTPUTS__)
    /* One subtraction in memory and a branch on its borrow: two
     * instructions where keeping traced itself takes four (add, load,
     * compare, branch).  On a borrow room holds room - size + 2^64, so
     * the new peak, peak + size - room, is peak minus the wrapped room. */
    _Bool borrow;
    __asm__("sub %[s], %[r]" : [r] "+m"(h->room), "=@ccc"(borrow) : [s] "r"(size));
    if (RCGC_UNLIKELY(borrow))
        rcgc_trace_borrow(h);
#else
    size_t r = h->room;
    h->room = r - size;   /* modulo 2^64 */
    if (RCGC_UNLIKELY(r < size))
        rcgc_trace_borrow(h);
#endif
}

/* Write (tb, size) into the zero slot sl (F3), which is not the pending
 * one (D1), and count it. */
static inline void rcgc_trace_write_settled(rcgc_trace_hot *h, rcgc_trace_slot *sl, uint32_t tb,
                                            size_t size)
{
    RCGC_ASSERT(sl != h->pending);
    RCGC_ASSERT(sl->tb == 0 && sl->size == 0 && tb != 0);
    /* Two 4-byte stores (tb loaded and stored, size stored): one
     * instruction fewer than composing one 8-byte word; apart, so that
     * the compiler does not merge them through vector registers. */
    sl->tb = tb;
    rcgc_trace_count(h, size);
    sl->size = (uint32_t)size;
}

/* Write (tb, size) into the slot sl of a fresh block and count it. */
static inline void rcgc_trace_write_slot(rcgc_trace_hot *h, rcgc_trace_slot *sl, uint32_t tb,
                                         size_t size)
{
    /* D1: the block freed last, allocated again (a free and an
     * allocation of one size class in a row), still holds its trace. */
    if (RCGC_UNLIKELY(sl == h->pending))
        rcgc_trace_settle(h);
    rcgc_trace_write_settled(h, sl, tb, size);
}

/* Write (tb, size) into the (zero, F3) slot of fresh block p in its pool's
 * side array `slots` and count it: one 8-byte store, the counters. */
static inline void rcgc_trace_put_slot(rcgc_trace_hot *h, rcgc_trace_slot *slots,
                                       const rcgc_pool *pool, const void *p, size_t size,
                                       uint32_t tb)
{
    rcgc_trace_write_slot(h, &slots[rcgc_pool_index(pool, p)], tb, size);
}

/* Record the trace (tb, size) of fresh block p of `pool`: inline when the
 * pool has its side array.  0, or -1 when it cannot be stored. */
static inline int rcgc_trace_put_block(rcgc_runtime *rt, rcgc_pool *pool, void *p, size_t size,
                                       uint32_t tb)
{
    rcgc_trace_slot *slots = pool->trace_slots;
    if (RCGC_LIKELY(slots != NULL)) {
        rcgc_trace_put_slot(&rt->mem.trace, slots, pool, p, size, tb);
        return 0;
    }
    return rcgc_trace_put_new(rt, pool, p, size, tb);
}

/* The cache entry of (file, line).  No multiply: the lines of one file
 * take consecutive entries, and files lie apart in memory. */
static inline rcgc_trace_site *rcgc_trace_site_of(rcgc_trace_site *sites, const char *file,
                                                  int line)
{
    uintptr_t h = ((uintptr_t)file >> 3) ^ (uint32_t)line;
    return &sites[h & (RCGC_TRACE_SITES - 1)];
}

/* The traceback id of (file, line) from the call-site cache, or 0 on a
 * miss (then the tracer captures it).  The entry that hit last is checked
 * first (a loop allocates from one line); a hit in the table becomes it.
 * Only while rt->mem.slow == RCGC_SLOW_TRACE; h->last never matches when
 * frames do not come from call sites (R4). */
/* T4: the traced free's ring is on (slow == RCGC_SLOW_TRACE, the credits
 * on: rt->region_rows, T2). */
static inline int rcgc_trace_ring_mode(const rcgc_trace_hot *h)
{
    const rcgc_runtime *rt =
        (const rcgc_runtime *)(const void *)((const char *)h - offsetof(rcgc_runtime, mem.trace));
    return rt->region_rows == RCGC_NCLASSES;
}

static inline uint32_t rcgc_trace_site_tb(rcgc_trace_hot *h, const char *file, int line)
{
    if (RCGC_LIKELY(h->last.file == file) && RCGC_LIKELY(h->last.line == line))
        return h->last.tb;
    rcgc_trace_site *sites = h->sites;
    if (RCGC_UNLIKELY(sites == NULL))
        return 0;
    const rcgc_trace_site *e = rcgc_trace_site_of(sites, file, line);
    if (RCGC_UNLIKELY(((uintptr_t)e->file ^ (uintptr_t)file) | (uint32_t)(e->line ^ line)))
        return 0;
    /* T4: the last site only in the ring's mode, where the pop at the
     * last site (rcgc_trace_try_cached_last) reads no header */
    if (RCGC_LIKELY(rcgc_trace_ring_mode(h)))
        h->last = *e;
    return e->tb;
}

/* Trace the fresh pool block p inline when that is cheap: the call-site
 * cache holds (file, line) and the pool has its side array.  1 when
 * recorded; 0 when not (nothing changed: call rcgc_trace_record_block).
 * Only while rt->mem.slow == RCGC_SLOW_TRACE.  No calls, so the callers
 * stay leaf functions. */
static inline int rcgc_trace_try_record(rcgc_runtime *rt, rcgc_pool *pool, void *p, size_t size,
                                        const char *file, int line)
{
    rcgc_trace_hot *h = &rt->mem.trace;
    rcgc_trace_slot *slots = pool->trace_slots;
    uint32_t tb = rcgc_trace_site_tb(h, file, line);
    if (RCGC_UNLIKELY(tb == 0) || RCGC_UNLIKELY(slots == NULL))
        return 0;
    rcgc_trace_put_slot(h, slots, pool, p, size, tb);
    return 1;
}

/* H1: the trace (header) of block p of a traced pool. */
static inline rcgc_trace_slot *rcgc_trace_hdr(const void *p)
{
    return (rcgc_trace_slot *)(void *)((char *)(uintptr_t)p - sizeof(rcgc_trace_slot));
}

/* rcgc_trace_try_cached_last's borrow (rcgc_trace_borrow) for block bp,
 * whose header holds its tb, and its size written: returns bp.
 * tracemalloc.c. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((returns_nonnull))
#endif
void *rcgc_trace_hdr_borrowed(rcgc_runtime *rt, void *bp, size_t size);

/* L1: the slot entry (cslot) of a settled block of a traced row (read
 * while the credits are off). */
#define RCGC_HDR_SETTLED ((void *)(uintptr_t)1)

/* L1: is the cached entry e of traced row r a lazy free (while
 * tracing)?  With the row's credit on, iff its block's header holds a
 * trace (every block of the traced pools freed then was traced, and no
 * mark is written: free_not_hdr); with the credits off, iff its slot
 * entry is not RCGC_HDR_SETTLED (free_not_hdr_marked writes NULL). */
static inline int rcgc_trace_hdr_lazy(const rcgc_pool_state *ps, size_t r, void *const *e)
{
    if (ps->hdr_credit[r] != 0)
        return rcgc_trace_hdr(*e)->tb != 0;
    return *rcgc_pool_cslot(e) != RCGC_HDR_SETTLED;
}

/* Write the trace (tb, size) into the header hd of a block just taken
 * from a traced pool (its row or its pool) and count it: the lazy trace
 * the header may still hold (L1: a cached block freed while tracing, or
 * zero) goes back to room first. */
static inline void rcgc_trace_hdr_write(rcgc_trace_hot *h, rcgc_trace_slot *hd, uint32_t tb,
                                        size_t size, size_t credit)
{
    uint64_t old = (uint64_t)hd->size - credit;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __asm__("add %[s], %[r]" : [r] "+m"(h->room) : [s] "r"(old) : "cc");
#else
    h->room += old;
#endif
    hd->tb = tb;
    rcgc_trace_count(h, size);
    hd->size = (uint32_t)size;
}

/* A block of the traced twin of size's class (H1: its free cache row,
 * else its pools, else a new pool) with the trace (tb, size) in its
 * header, for rcgc_mem_malloc while tracing alone; NULL when no pool can
 * be had (nothing changed).  size is 1 to RCGC_SMALL_LIMIT.
 * tracemalloc.c. */
void *rcgc_trace_hdr_block(rcgc_runtime *rt, size_t size, uint32_t tb);

/* rcgc_trace_hdr_write for a block bp the caller returns next: the
 * borrow (which may call the lazy frees' settling, L1) is a tail call
 * (rcgc_trace_hdr_borrowed), so that a caller with no other call keeps
 * no register saves.  credit as for rcgc_trace_hdr_write.  Returns bp,
 * counted in the MEM domain (M3, pool.h: nothing to count). */
static RCGC_ALWAYS_INLINE void *rcgc_trace_hdr_take(rcgc_runtime *rt, void *bp, uint32_t tb,
                                                    size_t size, size_t credit)
{
    rcgc_trace_hot *h = &rt->mem.trace;
    rcgc_trace_slot *hd = rcgc_trace_hdr(bp);
    /* room + (old - credit - size): one read-modify-write of room, the
     * delta formed in a register (the pair is bound by its memory
     * operations, not by its instruction count alone: docs/tracemalloc.md,
     * perf-tm22).  room is below 2^63 (room <= peak) and the delta
     * within +-2^33, so the sum is short exactly when its sign bit is
     * set, as room - size + 2^64 is for rcgc_trace_borrow. */
    uint64_t d = hd->size;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && defined(__GCC_ASM_FLAG_OUTPUTS__)
    /* the delta from the old size (credit a memory operand where the
     * caller has it so) and room's update with one memory operand: from
     * C gcc 12 summed credit and size in a register first (one
     * instruction more), loaded, added and stored room apart and tested
     * the sum again */
    _Bool borrow;
    __asm__("sub %[c], %[d]\n\tsub %[s], %[d]\n\tadd %[d], %[r]"
            : [r] "+m"(h->room), "=@ccs"(borrow), [d] "+&r"(d)
            : [c] "rme"(credit), [s] "r"(size));
#else
    d = d - credit - size;
    size_t rm = h->room + d;
    h->room = rm;
    _Bool borrow = (intptr_t)rm < 0;
#endif
    hd->tb = tb;
    if (RCGC_UNLIKELY(borrow))
        return rcgc_trace_hdr_borrowed(rt, bp, size);
    hd->size = (uint32_t)size;
    return bp;
}

/* F4: while tracing, the slot entry (pool.h: cslot) of a block in the
 * free cache holds the address of its trace slot when rcgc_mem_free
 * cached it (the slot of a pool with a side array), else NULL ("unknown").
 * The traced allocation takes the slot from there without finding the
 * block's pool and without reading the block. */
/* Pop the free cache's block of class c when it carries its trace slot
 * (F4): its slot, the block in *bpp (the caller counts it in its
 * domain); NULL with nothing changed otherwise (the cache is empty or
 * its top block carries no slot).  No pool descriptor is read. */
static inline rcgc_trace_slot *rcgc_trace_pop_class(rcgc_pool_state *ps, size_t c,
                                                    void **bpp)
{
    /* An empty cache's top is its floor crow[c][0], whose slot entry is
     * NULL (F4): one test for both "empty" and "no slot". */
    void **top = ps->ctop[c];
    rcgc_trace_slot *sl = *rcgc_pool_cslot(top);
    if (RCGC_UNLIKELY(sl == NULL))
        return NULL;
    void *bp = *top;   /* the row's top (C1: cache[c] may be stale now) */
    /* A slot entry above the floor belongs to a cached block (F4): the
     * callers need not test the block (the compiler is told so). */
    RCGC_ASSERT(bp != NULL);
#if defined(__GNUC__) || defined(__clang__)
    if (bp == NULL)
        __builtin_unreachable();
#endif
    *bpp = bp;
    rcgc_pool_row_pop(ps, c, top);
    return sl;
}

/* rcgc_trace_pop_class for a request of `size` bytes (at most
 * RCGC_SMALL_LIMIT). */
static inline rcgc_trace_slot *rcgc_trace_pop_cached(rcgc_pool_state *ps, size_t size,
                                                     void **bpp)
{
    return rcgc_trace_pop_class(ps, (size - (size != 0)) >> RCGC_ALIGN_SHIFT, bpp);
}

/* Does (file, line) match the call site that hit last?  Only while
 * tracing is all that is on with frames from call sites (R6, R10): a
 * match is the traced route's test as well. */
static inline int rcgc_trace_at_last(const rcgc_trace_hot *h, const char *file, int line)
{
    return RCGC_LIKELY(h->last.file == file) && RCGC_LIKELY(h->last.line == line);
}

/* The traced allocation from the free cache of the traced twin of c
 * (H1), for a call at the last call site (rcgc_trace_at_last, tested by
 * the caller): the block, its trace written into its header (zero, H2;
 * never the pending slot, so no D1 compare) and counted in the MEM
 * domain, or NULL with nothing changed when the row is empty.  c is the
 * size class of `size` (rcgc_mem_malloc_at has it in a register). */
static inline void *rcgc_trace_try_cached_last(rcgc_runtime *rt, size_t c, size_t size,
                                               const char *file, int line)
{
    rcgc_trace_hot *h = &rt->mem.trace;
    RCGC_ASSERT(rt->mem.slow == RCGC_SLOW_TRACE && h->sites != NULL);
    /* The caller's test again: the compiler folds it away (without it,
     * gcc 12 formed &rt->mem.trace in a register, one instruction
     * more). */
    if (!rcgc_trace_at_last(h, file, line))
        return NULL;
    /* The pop moves the top alone: cache[r] need not be the top's copy
     * while tracing (C1, pool.h).  An empty row's top is its NULL
     * floor. */
    rcgc_pool_state *ps = &rt->pool;
    size_t r = c + RCGC_NCLASSES;
    void **top = ps->ctop[r];
    void *bp = *top;
    if (RCGC_UNLIKELY(bp == NULL))
        return NULL;
    rcgc_pool_row_pop(ps, r, top);
    /* T4: the last site matches only in the ring's mode, where every
     * block of a traced row is settled (counts nothing): the pop reads
     * nothing of the block, room only takes the size. */
    rcgc_trace_slot *hd = rcgc_trace_hdr(bp);
    RCGC_ASSERT(hd->tb == 0 && hd->size == ps->hdr_credit[r]);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && defined(__GCC_ASM_FLAG_OUTPUTS__)
    _Bool borrow;
    __asm__("sub %[s], %[r]" : [r] "+m"(h->room), "=@ccs"(borrow) : [s] "r"(size));
#else
    size_t rm = h->room - size;
    h->room = rm;
    _Bool borrow = (intptr_t)rm < 0;
#endif
    hd->tb = h->last.tb;
    if (RCGC_UNLIKELY(borrow))
        return rcgc_trace_hdr_borrowed(rt, bp, size);
    hd->size = (uint32_t)size;
    return bp;
}

/* F1's trace table entry of a pool: its side array `slots` moved down by
 * floor(k * RCGC_POOL_SIZE / size) slots, where k is bits 14..15 of the
 * pool's address and size its block size, as an integer (NULL stays 0).
 * The traced free (rcgc_trace_forget_in) then indexes the entry with
 * the low 16 bits of the block's address, one zero-extending move,
 * instead of the pool offset (a copy and a mask): for a block start p =
 * pool + idx * size and X = p mod 2^16 = k * 16384 + idx * size,
 * floor(X * inv / 2^32) = floor(X / size) = floor(k * 16384 / size) + idx
 * exactly (inv = ceil(2^32 / size) errs by less than X / 2^32 < 2^-16,
 * below the 1 / size >= 2^-9 that separates X / size from the next
 * integer). */
static inline uintptr_t rcgc_trace_table_bias(const rcgc_pool *pool)
{
    uintptr_t k = ((uintptr_t)pool->mem >> RCGC_POOL_BITS) & 3;
    return (uintptr_t)((k << RCGC_POOL_BITS) / pool->size) * sizeof(rcgc_trace_slot);
}

/* Set the side array of `pool` (F1): its descriptor's pointer and its
 * (biased) trace table entry. */
static inline void rcgc_trace_set_slots(rcgc_pool *pool, rcgc_trace_slot *slots)
{
    pool->trace_slots = slots;
    rcgc_trace_table_of(pool->mem)->trace_slots[rcgc_class_slot(pool->mem)] =
        slots == NULL ? NULL
                      : (rcgc_trace_slot *)((uintptr_t)slots - rcgc_trace_table_bias(pool));
}

/* The side array a pool's trace table entry names (F1), or NULL. */
static inline rcgc_trace_slot *rcgc_trace_table_slots(const rcgc_pool *pool)
{
    rcgc_trace_slot *e =
        rcgc_trace_table_of(pool->mem)->trace_slots[rcgc_class_slot(pool->mem)];
    return e == NULL ? NULL : (rcgc_trace_slot *)((uintptr_t)e + rcgc_trace_table_bias(pool));
}

/* rcgc_trace_forget_in (below) for a caller that has read p's class c
 * (leaf byte t) already and has inv = &rt->trace_class_inv[c] (mem.c's
 * traced free forms it from the row address it has, R8). */
static RCGC_ALWAYS_INLINE void rcgc_trace_forget_inv(rcgc_runtime *rt,
                                                     const rcgc_class_table *leaf, size_t t,
                                                     const uint64_t *inv, const void *p,
                                                     rcgc_trace_slot **slp)
{
    /* The entry is biased (rcgc_trace_table_bias): indexed with the
     * address's low 16 bits, not the pool offset. */
    uintptr_t slots = ((const uintptr_t *)(const void *)(leaf + RCGC_MAP_LEN))[t];
    rcgc_trace_slot *sl;
    /* F5: p's pool is in use, so it has its array (no test). */
    RCGC_ASSERT(slots != 0);
    {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
        /* The index is the high half of the 32-bit product X * inv (X <
         * 2^16): one `mull` with the multiplier from memory, which leaves
         * it zero-extended in rdx (no load of inv, no shift). */
        uint32_t lo = (uint16_t)(uintptr_t)p;
        uint64_t idx;
        /* The entry is an input of the asm (unused by its code), so it
         * is loaded before the mull takes rdx: the leaf may still be in
         * rdx (mem.c's traced free), which the load then reads in place
         * (else gcc 12 copied it out first, one move more). */
        __asm__("mull %[inv]" : "=d"(idx), "+a"(lo) : [inv] "m"(*inv), "r"(slots) : "cc");
#else
        uint64_t idx = ((uint64_t)(uint16_t)(uintptr_t)p * *inv) >> 32;
#endif
        sl = (rcgc_trace_slot *)(slots + idx * sizeof(rcgc_trace_slot));
        RCGC_ASSERT(sl == &rcgc_pool_of(p)->trace_slots[rcgc_pool_index(rcgc_pool_of(p), p)]);
        /* D1: this slot becomes the pending one, prefetched (written
         * when it is cleared, or when the block is allocated again);
         * the slot pending before, prefetched one free ago, is cleared. */
        rcgc_trace_hot *h = &rt->mem.trace;
        rcgc_trace_slot *q = h->pending;
        RCGC_ASSERT(q != sl);
        h->room += q->size;
        memset(q, 0, sizeof *q);
        h->pending = sl;
#if defined(__GNUC__) || defined(__clang__)
        __builtin_prefetch(sl, 1, 3);
#endif
    }
    *slp = sl;
}

/* rcgc_trace_forget_in (below) for a caller that has read p's class c
 * (leaf byte t) already. */
static RCGC_ALWAYS_INLINE void rcgc_trace_forget_class(rcgc_runtime *rt,
                                                       const rcgc_class_table *leaf, size_t t,
                                                       size_t c, const void *p,
                                                       rcgc_trace_slot **slp)
{
    rcgc_trace_forget_inv(rt, leaf, t, &rt->trace_class_inv[c], p, slp);
}

/* Forget the trace of pool block p (if any) before it is freed: its slot
 * becomes the pending one (D1; the one pending before is cleared); *slp
 * receives its slot (for the free cache's slot entry, F4:
 * rcgc_pool_free_class_slot) or NULL.  Neither reads nor writes the block;
 * reads the arena's class and trace tables, not the pool descriptor (F1);
 * returns the block's size class.  leaf is the class tables of p's map
 * leaf and t p's flat index in them (rcgc_leaf_lookup, pool.h). */
static inline unsigned rcgc_trace_forget_in(rcgc_runtime *rt, const rcgc_class_table *leaf,
                                            size_t t, const void *p, rcgc_trace_slot **slp)
{
    /* One flat index t for both tables of the leaf: (arena entry << 6) |
     * pool slot is bits 14..33 of p, so the class byte is leaf byte t and
     * the trace table entry is word t after the class tables (no separate
     * arena and slot arithmetic for the two tables). */
    size_t c = ((const uint8_t *)leaf)[t];
    rcgc_trace_forget_class(rt, leaf, t, c, p, slp);
    return (unsigned)c;
}

/* Forget the trace of the pooled object o before it is freed (its push
 * leaves NULL in its slot entry, F4). */
static inline void rcgc_trace_forget_object(rcgc_runtime *rt, const void *o)
{
    rcgc_pool *pool = rcgc_pool_of(o);
    rcgc_trace_slot *slots = pool->trace_slots;
    if (slots != NULL) {
        rcgc_trace_slot *sl = &slots[rcgc_pool_index(pool, o)];
        rt->mem.trace.room += sl->size;
        memset(sl, 0, sizeof *sl);
    }
}

#endif /* RCGC_TMFAST_H */
