/*
 * pool.h - arenas, pools and size classes (pymalloc's design).
 *
 * Layout (docs/design.md, "The object allocator"):
 *
 *   arena  1 MiB, aligned to 1 MiB, mapped from the OS.  Its first 16 KiB
 *          hold the arena descriptor (rcgc_arena) and the descriptors of its
 *          63 pools (rcgc_pool), side by side, so the metadata of many pools
 *          shares a few pages (mimalloc keeps its page metadata the same way).
 *   pool   16 KiB, aligned to 16 KiB, all blocks of one size class.  Blocks
 *          are carved lazily (nextoffset) and recycled through a free list
 *          (freeblock).
 *   class  16-byte steps: 16, 32, ... 512 bytes (32 classes).
 *
 * Invariants (checked by rcgc_pool_validate):
 *   P1  nalloc == blocks carved - |free list|,  0 <= nalloc <= nblocks
 *   P2  a pool is on usedpools[szidx] iff 0 < nalloc < nblocks (it has a
 *       free or uncarved block); full pools are on no list; empty pools are
 *       on their arena's free pool list.  On a used list, every pool but
 *       the head has prevpool = its predecessor (the head's is stale).
 *   P3  ntracked == popcount(tracked bitmap); each set bit is a live block
 *       whose object header has RCGC_OF_TRACKED and !RCGC_OF_FOREIGN.
 *   P4  nyoung == number of tracked objects in the pool whose generation is
 *       0 or 1; the pool is on the runtime's young list iff nyoung > 0.
 *   P5  a tracked object of generation 0 in block i has bit i >> 3 of the
 *       pool's gen0 summary set (checked by rcgc_validate, runtime.c).
 *   P3-P5 leave out the unsettled objects of the runtime's birth log (B1,
 *   runtime.h): no bit, not counted.  Whatever reads the bitmaps settles
 *   the log first (B3), so that the collector sees every tracked object.
 *   A1  arena->nfreepools == pools never carved + empty pools on its list.
 *   A2  an arena is in bucket avail[n] of its set iff n == nfreepools > 0
 *       and it is not its set's spare; a spare arena has every pool free.
 *   A4  an arena's set is its runtime's general arenas (rt->pool.arenas)
 *       or those of the traced region (rt->pool.rarenas, T1): the latter
 *       iff it lies in the region; the region's pools in use are traced
 *       pools (H1).
 *   A3  the class table of an arena (rcgc_class_table_of) holds, for each
 *       slot whose pool is in use, that pool's size class.
 *   M2  once a runtime exists (rcgc_pool_map_init), every top-level entry
 *       of the arena map is a leaf: a mapped one or rcgc_empty_leaf, whose
 *       entries are all NULL, so a lookup needs no test of the leaf.
 *   M1  the class tables of a map leaf's arenas follow the leaf's entries
 *       in the same mapping (rcgc_leaf_class_tables): the table
 *       rcgc_class_entry_lookup reaches from the leaf is the one
 *       rcgc_class_table_of reaches from rcgc_class_map.
 *   C1  the free cache of class c holds n = ctop[c] - &crow[c][0] <=
 *       RCGC_FREE_CACHE distinct block starts of in-use pools of class c in
 *       crow[c][1..n], none tracked, none on a pool's free list;
 *       crow[c][0] is NULL (the floor).  While rt->mem.slow == 0,
 *       cache[c] == crow[c][n] (the top's copy: NULL iff the cache is
 *       empty); while anything is on, cache[c] is only NULL when the
 *       cache is empty (every push writes its block there, the traced
 *       pops leave it as it is: they read the row, rcgc_pool_row_pop;
 *       only emptying pops and the pools' flushes write NULL), and
 *       rcgc_pool_set_mem_limits makes it the copy again when the mode
 *       changes.
 *   C2  nheld[c] == the sum of nalloc over the pools of class c (the
 *       class's live blocks + n), and n < nheld[c] unless n == 0 (a class
 *       with cached blocks has a live block).
 *   C3  clim[c] == &crow[c][min(nheld[c], RCGC_FREE_CACHE + 1)]: a push
 *       that would move the top onto clim[c] either fills the row past
 *       RCGC_FREE_CACHE or frees the class's last live block.  (So
 *       ctop[c] < clim[c] always, and a push may go ahead iff the new top
 *       is below clim[c].)
 *   C4  mlim[c] == (uintptr_t)clim[c] - mbias, where mbias is 0 when
 *       rt->mem.slow == 0 and the address of crow[0][0] otherwise (then
 *       mlim[c] is below the address of every entry of every row):
 *       rcgc_mem_free's push compares its new top with mlim[c], so it
 *       fails whenever anything is on (hooks, fault injection, tracing),
 *       and that free learns the mode without a read of rt->mem.slow
 *       (rcgc_pool_set_mem_limits keeps C4 when the mode changes).
 *   C5  mfloor[c] == (uintptr_t)&crow[c][0] when rt->mem.slow == 0 and
 *       UINTPTR_MAX otherwise: the untraced allocation's pop
 *       (rcgc_pool_try_pop_fast) goes ahead iff ctop[c] is above
 *       mfloor[c], so it fails whenever anything is on (hooks, fault
 *       injection, a user allocator, tracing) and that allocation learns
 *       the mode without a read of rt->mem.slow (rcgc_pool_set_mem_limits
 *       keeps C5, and C1's copy, when the mode changes).
 */
#ifndef RCGC_POOL_H
#define RCGC_POOL_H

#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>

#include "rcgc.h"

/* For slow paths split off hot inline ones, and hot paths that the
 * compiler would otherwise keep out of line in a caller. */
#if defined(__GNUC__) || defined(__clang__)
#define RCGC_NOINLINE __attribute__((noinline))
#define RCGC_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define RCGC_NOINLINE
#define RCGC_ALWAYS_INLINE inline
#endif

#define RCGC_ALIGNMENT 16
#define RCGC_ALIGN_SHIFT 4
#define RCGC_SMALL_LIMIT 512
#define RCGC_NCLASSES (RCGC_SMALL_LIMIT / RCGC_ALIGNMENT)   /* 32 */
/* H1 (tmfast.h): pool class RCGC_NCLASSES + c is the traced twin of
 * request class c, for tracing's MEM fast paths: its blocks are 16 bytes
 * longer and start 16 bytes into the pool, and the 8 bytes just before a
 * block hold its trace (its header).  The allocator's per-class state
 * (free cache rows, used lists, counts) has a row for each of the
 * 2 * RCGC_NCLASSES pool classes. */
#define RCGC_NROWS (2 * RCGC_NCLASSES)                      /* 64 */
#define RCGC_HDR_SIZE 16   /* a traced block's offset in its pool block */
#define RCGC_HDR_RING 16   /* T4: the traced free's ring (runtime.h) */
#define RCGC_ARENA_BITS 20
#define RCGC_ARENA_SIZE ((size_t)1 << RCGC_ARENA_BITS)       /* 1 MiB */
#define RCGC_POOL_BITS 14
#define RCGC_POOL_SIZE ((size_t)1 << RCGC_POOL_BITS)         /* 16 KiB */
#define RCGC_ARENA_SLOTS (RCGC_ARENA_SIZE / RCGC_POOL_SIZE)        /* 64 */
#define RCGC_POOLS_PER_ARENA (RCGC_ARENA_SLOTS - 1)                  /* 63 */
#define RCGC_ARENA_HEADER 128   /* bytes for rcgc_arena before the pool descriptors */
#define RCGC_POOL_BITMAP_WORDS 16                            /* 1024 bits */

typedef struct rcgc_arena rcgc_arena;

/* The tracer's record of one pool block (tracemalloc.c, tmfast.h): its
 * traceback id (0: not traced, and then size is 0 too) and requested size. */
typedef struct rcgc_trace_slot {
    uint32_t tb;
    uint32_t size;
} rcgc_trace_slot;

typedef struct rcgc_pool {
    /* First cache line: everything allocation and free touch. */
    void *freeblock;        /* singly linked free blocks */
    uint16_t nalloc;        /* live blocks */
    uint16_t szidx;         /* size class index */
    uint16_t nblocks;       /* capacity (up to 1024) */
    uint16_t ntracked;      /* bits set in tracked[] */
    uint16_t nyoung;        /* tracked objects in generation 0 or 1 */
    uint16_t size;          /* block size in bytes (16 .. 512) */
    /* During a collection, the index of this pool's member set in the
     * collector's work space (gcwork.h; meaningless otherwise).  On this line
     * because a full collection's mark reads it with inv for every object
     * it reaches. */
    uint32_t gcset;
    uint32_t inv;           /* ceil(2^32 / size): block index by multiply */
    uint16_t nextoffset;    /* next never-carved block (<= 16 KiB) */
    uint16_t maxnextoffset; /* last carvable offset */
    /* The tracer's side array for this pool's blocks (one slot per block,
     * indexed like the blocks), or NULL: pool_init drops it, because a pool
     * is only reinitialized empty and so has no traced block (tmfast.h, F1). */
    rcgc_trace_slot *trace_slots;
    struct rcgc_pool *nextpool;  /* usedpools ring / arena free list */
    struct rcgc_pool *prevpool;
    rcgc_runtime *rt;       /* owner (deallocation finds it from an object) */
    /* The rest: carving, the collector's and the arena's. */
    char *mem;              /* the pool's 16 KiB (a traced pool's blocks
                               start 16 bytes in: H1, tmfast.h) */
    struct rcgc_pool *young_next; /* runtime young list (nyoung > 0) */
    struct rcgc_pool *young_prev;
    rcgc_arena *arena;
    uint64_t tracked[RCGC_POOL_BITMAP_WORDS]; /* block i holds a tracked object */
    /* In the descriptor's padding (no size change), for the collector:
     * gen0: a summary of where generation-0 objects may be, one bit per
     * group of 8 blocks (bit i >> 3 of the 128): tracking sets the bit of
     * its block, every collection clears the summary of each pool it walks
     * (all generation-0 objects leave generation 0 in any collection), so
     * a generation-0 collection reads only the headers in marked groups
     * (P5). */
    uint64_t gen0[2];
} __attribute__((aligned(64))) rcgc_pool;

typedef struct rcgc_arena_set rcgc_arena_set;

struct rcgc_arena {
    rcgc_runtime *rt;        /* owner (deallocation finds it from an object) */
    rcgc_arena_set *set;     /* its runtime's arenas of its kind (A4) */
    uintptr_t base;          /* aligned to RCGC_ARENA_SIZE; the arena itself */
    unsigned nfreepools;     /* pools not in use (never carved or empty) */
    unsigned ntotalpools;
    unsigned ncarved;        /* pools carved so far (next = base + ncarved*POOL) */
    rcgc_pool *freepools;    /* empty pools, singly linked via nextpool */
    rcgc_arena *nextarena;   /* bucket list: arenas with the same nfreepools */
    rcgc_arena *prevarena;
    rcgc_arena *allnext;     /* every mapped arena of the runtime */
    rcgc_arena *allprev;
};

_Static_assert(RCGC_ARENA_HEADER >= sizeof(rcgc_arena), "arena header too small");
_Static_assert(RCGC_ARENA_HEADER % 64 == 0 && sizeof(rcgc_pool) % 64 == 0,
               "pool descriptors start on cache lines");
_Static_assert(offsetof(rcgc_pool, gcset) + sizeof(uint32_t) <= 64,
               "the collector's set index shares the first line with inv");
_Static_assert(RCGC_SMALL_LIMIT <= UINT16_MAX, "a block size fits rcgc_pool.size");
_Static_assert(offsetof(rcgc_pool, mem) <= 64,
               "the allocator's fields of a pool descriptor share one cache line");
_Static_assert(sizeof(rcgc_pool) == 256, "a pool descriptor is four cache lines");
_Static_assert(RCGC_ARENA_HEADER + RCGC_POOLS_PER_ARENA * sizeof(rcgc_pool) <= RCGC_POOL_SIZE,
               "pool descriptors must fit the arena's first 16 KiB");

/* Descriptor i (0..62) of an arena; it describes the pool at slot i + 1. */
static inline rcgc_pool *rcgc_arena_pool(const rcgc_arena *a, unsigned i)
{
    return (rcgc_pool *)(a->base + RCGC_ARENA_HEADER) + i;
}

/* The descriptor of the pool that holds p; p must point into a pool. */
static inline rcgc_pool *rcgc_pool_of(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    uintptr_t base = a & ~(uintptr_t)(RCGC_ARENA_SIZE - 1);
    unsigned slot = (unsigned)((a >> RCGC_POOL_BITS) & (RCGC_ARENA_SLOTS - 1));
    return (rcgc_pool *)(base + RCGC_ARENA_HEADER) + (slot - 1);
}

/* The arena of a pool block (its header is at the arena's start). */
static inline rcgc_arena *rcgc_arena_of(const void *p)
{
    return (rcgc_arena *)((uintptr_t)p & ~(uintptr_t)(RCGC_ARENA_SIZE - 1));
}

static inline void *rcgc_pool_block(const rcgc_pool *pool, unsigned idx)
{
    return pool->mem + (size_t)idx * pool->size;
}

/* Block idx of any pool, a traced one's too (H1: its blocks start 16
 * bytes after pool->mem; rcgc_pool_block is for the request classes'
 * pools, which hold the objects). */
static inline void *rcgc_pool_block_at(const rcgc_pool *pool, unsigned idx)
{
    return pool->mem + (pool->szidx >= RCGC_NCLASSES ? RCGC_HDR_SIZE : 0) +
           (size_t)idx * pool->size;
}

/* Index of the block that contains p (floor, exact for any interior
 * pointer: docs/design.md explains the reciprocal). */
static inline unsigned rcgc_pool_index(const rcgc_pool *pool, const void *p)
{
    /* Pools are aligned to their size: the offset is the low bits. */
    uint64_t off = (uint64_t)((uintptr_t)p & (RCGC_POOL_SIZE - 1));
    return (unsigned)((off * pool->inv) >> 32);
}

/* Size class of a request, or -1 when too big for a pool. */
static inline int rcgc_size_class(size_t n)
{
    if (n == 0)
        n = 1;
    if (n > RCGC_SMALL_LIMIT)
        return -1;
    return (int)((n - 1) >> RCGC_ALIGN_SHIFT);
}

/* The block size of pool class c (c < RCGC_NROWS): 16 (c + 1) for a
 * request class, 16 (c' + 2) for the traced twin of request class c'
 * (H1: the caller's bytes and the 16-byte header). */
static inline uint32_t rcgc_class_size(unsigned c)
{
    return c < RCGC_NCLASSES ? (c + 1u) << RCGC_ALIGN_SHIFT
                             : (c - RCGC_NCLASSES + 2u) << RCGC_ALIGN_SHIFT;
}

/* The offset of a pool's first block from the pool's start: RCGC_HDR_SIZE
 * for a traced pool (H1), else 0. */
static inline uint32_t rcgc_class_offset(unsigned c)
{
    return c < RCGC_NCLASSES ? 0 : RCGC_HDR_SIZE;
}

/* The free cache's row of a size class (see rcgc_pool_state): 64 words,
 * the NULL floor, up to RCGC_FREE_CACHE blocks and a last word never
 * used (clim[c] may point at it, C3). */
#define RCGC_CACHE_ROW 64
#define RCGC_FREE_CACHE (RCGC_CACHE_ROW - 2)

/* Per-runtime allocator state. */
/* rcgc_mem_free's continuation when its push did not go ahead (mem.c):
 * rt, the block, its map leaf (const rcgc_map_entry *), its flat index
 * there, the failed push's new top and the address of its size class c's
 * row, (char *)rt + 8c (every per-class field of the free cache and
 * trace_class_inv[c] lie at a fixed distance from it). */
typedef void (*rcgc_mem_free_not_fn)(rcgc_runtime *rt, void *ptr, const void *leaf, size_t t,
                                     void **top, char *row);

/* Arenas of one kind (A4): the general ones, or the traced region's
 * (T1).  Arenas with free pools are bucketed by their number of free
 * pools: avail[n] lists arenas with exactly n (1..64).  New pools come
 * from the lowest non-empty bucket: the fullest arena first, so that the
 * emptiest arenas drain and can be returned to the OS. */
struct rcgc_arena_set {
    rcgc_arena *avail[RCGC_POOLS_PER_ARENA + 1];
    uint64_t avail_mask;       /* bit n set iff avail[n] is non-empty */
    rcgc_arena *spare;         /* one entirely free arena kept mapped */
};

typedef struct rcgc_pool_state {
    rcgc_pool *usedpools[RCGC_NROWS];  /* pools with free blocks, per class */
    /* The free cache: per class, up to RCGC_FREE_CACHE blocks freed by the
     * fast paths, LIFO, in a stack of pointers crow[c][1..n] whose top
     * ctop[c] points at crow[c][n], above a NULL floor crow[c][0]; cache[c]
     * is a copy of the top (C1).  The next allocation of the class takes
     * cache[c] - one load, as from a linked list - and copies the entry
     * below into it.  Neither call touches a pool descriptor or updates a
     * count (a free compares its new top with clim[c], C3, which stands
     * for both "row full" and "last live block of the class"), and neither
     * reads or writes the block: a free writes nothing into the block it
     * frees, so a block freed cold costs no store miss (which would hold up
     * every store after it) until the program writes to it again, by then
     * in the cache (rcgc_pool_free_in prefetches it).  Cached blocks still
     * count in their pool's nalloc (and in nheld).  A free that finds the
     * row full goes to the pool.  The cache of a class is given back to the pools when the
     * class has no live block left (so freeing everything returns every
     * pool), and whenever the allocator leaves its fast paths for a reason
     * other than tracing (hooks, fault injection, a user allocator). */
    void *cache[RCGC_NROWS];
    void **ctop[RCGC_NROWS];
    void **clim[RCGC_NROWS];            /* C3 */
    /* The limit of rcgc_mem_free's push alone: clim[c], or below every
     * row while the allocator is off its fast paths (C4). */
    uintptr_t mlim[RCGC_NROWS];
    uintptr_t mbias;                        /* C4 */
    /* The floor of the untraced allocation's pop alone: the row's floor,
     * or above every row while the allocator is off its fast paths (C5). */
    uintptr_t mfloor[RCGC_NROWS];
    void *crow[RCGC_NROWS][RCGC_CACHE_ROW];
    /* Parallel to crow (F4, tmfast.h): while tracing, cslot[c][k] is the
     * trace slot of the block crow[c][k] when rcgc_mem_free cached it,
     * else NULL; every push that can run while tracing writes it (the
     * pushes by C4, rcgc_mem_free's and the object frees' by
     * rcgc_pool_try_push_class, cannot, and leave it), so a free
     * writes nothing into the block even when traced.  Right after
     * crow, so the entry of a stack entry e is at the fixed distance
     * RCGC_CSLOT_OFF from e (no load to find it: rcgc_pool_cslot). */
    void *cslot[RCGC_NROWS][RCGC_CACHE_ROW];
    /* Blocks of each class out of their pools (live or cached, C2): only
     * a pool's allocation and a block's return to its pool change it,
     * never the free cache's pushes and pops. */
    size_t nheld[RCGC_NROWS];
    /* R12 (tmfast.h): rcgc_mem_free's continuation after a failed push
     * (R8), per row: rt->mem.trace.free_not for the request classes'
     * rows, the traced pools' own (rcgc_mem_free_hdr_of) for their rows,
     * so that the jump picks the traced pool's free with no compare.
     */
    rcgc_mem_free_not_fn free_not[RCGC_NROWS];
    /* L1 (tmfast.h): for a traced row 32 + c, the credit of a lazy free:
     * 16 c + 1 (the smallest size its blocks are asked for) while every
     * live block of the traced pools is traced, else 0 (0 for the
     * request rows).  The traced free adds it to room, the allocation
     * that pops the block takes it back with the block's true size. */
    size_t hdr_credit[RCGC_NROWS];
    /* M3: the MEM domain's live blocks == the pools' live blocks (C2:
     * the sum over c of nheld[c] - n) - the OBJ domain's live blocks
     * (rcgc_mem_obj_live: domains[OBJ].live + obj.live_objects) - madj.  The
     * MEM domain's fast paths (rcgc_mem_malloc, rcgc_mem_free, tracing's
     * paths for MEM in tmfast.h and tracemalloc.c) count nothing: a pool
     * block in or out changes both sides of M3 by one.  Every other path
     * that changes one side keeps M3 with madj: the pool allocator's
     * functions (pool_malloc, pool_free_any, pool_realloc in mem.c:
     * +1 per pool block taken, -1 per block given back, whoever calls
     * them: a domain's base, the debug hooks, a user's allocator or the
     * user directly), the domain path for MEM and OBJ (-1 per block
     * taken, +1 per block freed, pool block or not) and free_slow's
     * direct free of a MEM block above the small limit (+1).  object.c's
     * own pool blocks change the pools' count and obj.live_objects
     * together.  Readers derive the count: rcgc_pool_mem_live. */
    long madj;
    /* The general arenas and those of the traced region (A4, T1). */
    rcgc_arena_set arenas;
    rcgc_arena_set rarenas;
    rcgc_arena *all;           /* every mapped arena, both kinds */
    size_t narenas_current;
    size_t narenas_highwater;
    size_t ntimes_arena_allocated;
    size_t narenas_freed;
    rcgc_pool *young;          /* pools with nyoung > 0 */
} rcgc_pool_state;

/* The byte distance from a free cache stack entry crow[c][k] to its
 * parallel slot entry cslot[c][k]. */
#define RCGC_CSLOT_OFF (offsetof(rcgc_pool_state, cslot) - offsetof(rcgc_pool_state, crow))
_Static_assert(offsetof(rcgc_pool_state, cslot) ==
                   offsetof(rcgc_pool_state, crow) + sizeof(((rcgc_pool_state *)0)->crow),
               "cslot follows crow: one fixed offset from an entry to its slot entry");
/* The parallel slot entry of the stack entry e (F4). */
#define rcgc_pool_cslot(e) ((void **)(void *)((char *)(e) + RCGC_CSLOT_OFF))

/* Process-wide O(1) lookup "which arena holds p?": a two-level radix map
 * from (address >> 20) to the arena descriptor over a 48-bit address space,
 * 14 bits picking a leaf and 14 bits an entry.  Leaves are mapped on demand
 * and never freed, so readers take no lock. */
/* T1 (the traced region): one process-wide reservation of
 * RCGC_REGION_SLOTS arena slots at the addresses whose bits 34 and up are
 * RCGC_REGION_HI (32 TiB, past the lowest 16 TiB, which AddressSanitizer
 * keeps, and far below where the kernel places mappings by itself).  Its
 * arenas hold traced pools only (pool classes RCGC_NCLASSES and up), so
 * rcgc_mem_free tells a traced pool's block by the bits it shifts anyway
 * (T3), and the region's free finds its row in the region's class bytes
 * (rcgc_region_classes: zero where no arena of the region is), with
 * no walk of the arena map (mem.c, free_region).  Reserved readable (the
 * range costs no memory and nothing else can be mapped there).  Where
 * the range cannot be reserved, traced pools share the general arenas. */
#if defined(__x86_64__) && defined(__linux__)
#define RCGC_REGION_HI ((uintptr_t)0x800)
#define RCGC_REGION_SLOTS ((size_t)1 << 14)   /* 16 GiB: all of one hi */
/* T3: the general arenas are placed below the region, from 17 TiB up
 * (past AddressSanitizer's 16 TiB), so that rcgc_mem_free's range test
 * (addresses >> 34 below RCGC_FREE_HI) keeps them inline and sends the
 * region, and whatever lies above it, out of line with no compare more.
 * An arena that cannot be placed there is mapped where the OS puts it
 * (near 128 TiB) and freed out of line by the same map. */
#define RCGC_FREE_HI RCGC_REGION_HI
#define RCGC_LOW_FIRST ((uintptr_t)0x110 << 36)
#else
#define RCGC_FREE_HI ((uintptr_t)RCGC_MAP_LEN)
#endif
/* T1: p lies in the traced region (which this process has reserved). */
int rcgc_pool_in_region(const void *p);
/* T1: set rt->region_classes_at, the class bytes the region's
 * free reads for rt: the region's once rt has mapped an arena there
 * (mapped), else a table of zeros. */
void rcgc_pool_region_classes_set(rcgc_runtime *rt, int mapped);
#ifdef RCGC_REGION_HI
/* T1: the class byte of every pool slot of the region, indexed by bits
 * 14..33 of an address in it (zeros until the region is reserved). */
extern const uint8_t *_Atomic rcgc_region_classes;
#endif
#define RCGC_MAP_BITS 14
#define RCGC_MAP_LEN ((size_t)1 << RCGC_MAP_BITS)
#define RCGC_ADDRESS_BITS 48
typedef _Atomic(rcgc_arena *) rcgc_map_entry;
extern _Atomic(rcgc_map_entry *) rcgc_arena_map[RCGC_MAP_LEN];
/* M2: the leaf of the ranges no arena was ever mapped in. */
extern rcgc_map_entry rcgc_empty_leaf[RCGC_MAP_LEN];
/* Put rcgc_empty_leaf in every empty top-level entry (M2); once per
 * process, before the first runtime (rcgc_mem_state_init). */
void rcgc_pool_map_init(void);

/* Beside each map entry, the size class of each pool slot of its arena
 * (rcgc_pool_free_in reads it): dense, so that the tables of different
 * arenas fall in different cache sets, where a table in each arena's
 * header would put them all in one (arenas are 1 MiB-aligned). */
typedef struct rcgc_class_table {
    uint8_t szidx[RCGC_ARENA_SLOTS];
} rcgc_class_table;
extern _Atomic(rcgc_class_table *) rcgc_class_map[RCGC_MAP_LEN];

/* After the class tables of a leaf (same mapping), each pool's
 * trace_slots (a copy, F1 in tmfast.h): a traced free finds its block's
 * slot without reading the pool descriptor. */
typedef struct rcgc_trace_table {
    rcgc_trace_slot *trace_slots[RCGC_ARENA_SLOTS];
} rcgc_trace_table;
#define RCGC_CLASS_LEAF_BYTES (RCGC_MAP_LEN * (sizeof(rcgc_class_table) + sizeof(rcgc_trace_table)))

/* M1: the class tables (and after them the trace tables) of the arenas of
 * a map leaf lie in the leaf's own mapping, right after its entries: from
 * the leaf that says p is in an arena, p's class is one load away. */
#define RCGC_MAP_LEAF_BYTES (RCGC_MAP_LEN * sizeof(rcgc_map_entry))
static inline rcgc_class_table *rcgc_leaf_class_tables(rcgc_map_entry *leaf)
{
    return (rcgc_class_table *)((char *)leaf + RCGC_MAP_LEAF_BYTES);
}

/* The arena map's leaf covering p (NULL when p is above the mapped
 * address range or no arena of its range was ever mapped); *j receives p's
 * entry in that leaf. */
static inline rcgc_map_entry *rcgc_arena_leaf_of(const void *p, size_t *j)
{
    uintptr_t a = (uintptr_t)p;
    /* The top-level index itself is the range test (p below 2^48 iff the
     * index fits the map): one compare, no second shift. */
    uintptr_t top = a >> (RCGC_ARENA_BITS + RCGC_MAP_BITS);
    if (RCGC_UNLIKELY(top >= RCGC_MAP_LEN))
        return NULL;
    *j = (a >> RCGC_ARENA_BITS) & (RCGC_MAP_LEN - 1);
    return atomic_load_explicit(&rcgc_arena_map[top], memory_order_acquire);
}
_Static_assert(RCGC_ARENA_BITS + 2 * RCGC_MAP_BITS == RCGC_ADDRESS_BITS,
               "the map's two levels cover the address space exactly");

/* The class tables of the map leaf that covers p, with *tp = p's flat
 * index t in them (bits 14..33 of p: entry j = t / 64 of the leaf, and
 * byte t of its class tables, table j, byte slot = t % 64), or NULL when
 * p is in no arena (rcgc_arena_lookup's test, then M1; M2: no test of the
 * leaf).  Needs M2 (a runtime exists). */
static inline const rcgc_class_table *rcgc_leaf_lookup(const void *p, size_t *tp)
{
    uintptr_t a = (uintptr_t)p;
    uintptr_t top = a >> (RCGC_ARENA_BITS + RCGC_MAP_BITS);
    if (RCGC_UNLIKELY(top >= RCGC_MAP_LEN))
        return NULL;
    uintptr_t t = (a >> RCGC_POOL_BITS) & (RCGC_MAP_LEN * RCGC_ARENA_SLOTS - 1);
    rcgc_map_entry *leaf = atomic_load_explicit(&rcgc_arena_map[top], memory_order_acquire);
    if (atomic_load_explicit(&leaf[t / RCGC_ARENA_SLOTS], memory_order_acquire) == NULL)
        return NULL;
    *tp = t;
    return rcgc_leaf_class_tables(leaf);
}

/* The class table entry (size class) of the pool slot holding p, or NULL
 * when p is in no arena.  Needs M2 (a runtime exists). */
static inline const uint8_t *rcgc_class_entry_lookup(const void *p)
{
    size_t t;
    const rcgc_class_table *ct = rcgc_leaf_lookup(p, &t);
    return ct == NULL ? NULL : (const uint8_t *)ct + t;
}
_Static_assert(sizeof(rcgc_class_table) == RCGC_ARENA_SLOTS,
               "class tables are dense: table j, byte s is byte j * 64 + s of the leaf's tables");

/* The class table of the arena holding pool block p (p must be one). */
static inline rcgc_class_table *rcgc_class_table_of(const void *p)
{
    uintptr_t i = (uintptr_t)p >> RCGC_ARENA_BITS;
    rcgc_class_table *leaf =
        atomic_load_explicit(&rcgc_class_map[i >> RCGC_MAP_BITS], memory_order_relaxed);
    return &leaf[i & (RCGC_MAP_LEN - 1)];
}

/* The size class of pool block p: byte (p >> 14) & (2^20 - 1) of the
 * class tables of its map range, which are dense (table j, byte s is byte
 * j * 64 + s): one shift and mask for the table and the slot together,
 * where the table's address and then the slot's byte in it take two. */
static inline unsigned rcgc_block_class(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    const uint8_t *tables = (const uint8_t *)atomic_load_explicit(
        &rcgc_class_map[a >> (RCGC_ARENA_BITS + RCGC_MAP_BITS)], memory_order_relaxed);
    return tables[(a >> RCGC_POOL_BITS) & (RCGC_MAP_LEN * RCGC_ARENA_SLOTS - 1)];
}

/* The trace table of the arena holding pool block p. */
static inline rcgc_trace_table *rcgc_trace_table_of(const void *p)
{
    uintptr_t i = (uintptr_t)p >> RCGC_ARENA_BITS;
    rcgc_class_table *leaf =
        atomic_load_explicit(&rcgc_class_map[i >> RCGC_MAP_BITS], memory_order_relaxed);
    return (rcgc_trace_table *)(leaf + RCGC_MAP_LEN) + (i & (RCGC_MAP_LEN - 1));
}

/* Where p's pool is in its class table (p a pool block). */
static inline unsigned rcgc_class_slot(const void *p)
{
    return (unsigned)(((uintptr_t)p >> RCGC_POOL_BITS) & (RCGC_ARENA_SLOTS - 1));
}

/* Set a pool's side array, in its descriptor and its class table. */
static inline void rcgc_pool_set_trace_slots(rcgc_pool *pool, rcgc_trace_slot *slots)
{
    pool->trace_slots = slots;
    rcgc_trace_table_of(pool->mem)->trace_slots[rcgc_class_slot(pool->mem)] = slots;
}

/* F5 (tmfast.h): a pool carved while tracing (rt->mem.tracing) gets its
 * side array at once; 0, or -1 out of memory (then the carve fails).
 * tracemalloc.c. */
int rcgc_trace_pool_carved(rcgc_runtime *rt, rcgc_pool *pool);

/* pool->inv of size class c (ceil(2^32 / size)), without the pool. */
#define RCGC_CLASS_INV_(c) ((uint32_t)((((uint64_t)1 << 32) + ((c) + 1) * 16 - 1) / (((c) + 1) * 16)))
#define RCGC_CLASS_INV4_(c)                                                               \
    RCGC_CLASS_INV_(c), RCGC_CLASS_INV_((c) + 1), RCGC_CLASS_INV_((c) + 2),               \
        RCGC_CLASS_INV_((c) + 3)
static const uint32_t rcgc_class_inv[RCGC_NCLASSES] = {
    RCGC_CLASS_INV4_(0),  RCGC_CLASS_INV4_(4),  RCGC_CLASS_INV4_(8),  RCGC_CLASS_INV4_(12),
    RCGC_CLASS_INV4_(16), RCGC_CLASS_INV4_(20), RCGC_CLASS_INV4_(24), RCGC_CLASS_INV4_(28),
};
_Static_assert(RCGC_ALIGNMENT == 16 && RCGC_NCLASSES == 32, "rcgc_class_inv's sizes");

/* rcgc_pool_index for a block p of size class c. */
static inline unsigned rcgc_class_index(unsigned c, const void *p)
{
    uint64_t off = (uint64_t)((uintptr_t)p & (RCGC_POOL_SIZE - 1));
    return (unsigned)((off * rcgc_class_inv[c]) >> 32);
}

/* The arena holding p, or NULL. */
static inline rcgc_arena *rcgc_arena_lookup(const void *p)
{
    size_t j;
    rcgc_map_entry *leaf = rcgc_arena_leaf_of(p, &j);
    if (leaf == NULL)
        return NULL;
    return atomic_load_explicit(&leaf[j], memory_order_acquire);
}

/* The slow paths of the two below (out of line on purpose: the fast paths
 * are inlined into every caller). */
void *rcgc_pool_alloc_slow(rcgc_runtime *rt, unsigned szidx);
/* rcgc_pool_alloc_slow for a traced pool's class r (RCGC_NCLASSES +
 * c, H1 in tmfast.h): takes a new traced pool when the class has none
 * with a free block.  NULL when no arena could be mapped. */
void *rcgc_pool_alloc_slow_traced(rcgc_runtime *rt, unsigned r);
void rcgc_pool_free_slow(rcgc_runtime *rt, rcgc_pool *pool, void *last);

/* Take the free cache's top block of class c out of it, top being
 * ps->ctop[c] above the floor, while anything is on (the traced pops):
 * the entry below becomes the top; cache[c] is left as it is (C1: only
 * its NULL means something then, and it stays right). */
static inline void rcgc_pool_row_pop(rcgc_pool_state *ps, size_t c, void **top)
{
    ps->ctop[c] = top - 1;
}

/* Blocks in the free cache of class c. */
static inline uint32_t rcgc_pool_ncache(const rcgc_pool_state *ps, unsigned c)
{
    return (uint32_t)(ps->ctop[c] - &ps->crow[c][0]);
}

/* Live blocks of class c (handed out by any path, not freed): C2. */
static inline size_t rcgc_pool_nlive(const rcgc_pool_state *ps, unsigned c)
{
    return ps->nheld[c] - rcgc_pool_ncache(ps, c);
}

/* nheld[c] changed to h: clim[c] follows (C3).  A conditional move, no
 * branch: a class's count goes up and down across the row's size. */
static inline void rcgc_pool_set_held(rcgc_pool_state *ps, size_t c, size_t h)
{
    void **lim = &ps->crow[c][h < RCGC_FREE_CACHE + 1 ? h : RCGC_FREE_CACHE + 1];
    ps->nheld[c] = h;
    ps->clim[c] = lim;
    ps->mlim[c] = (uintptr_t)lim - ps->mbias;   /* C4 */
}

/* nheld[c] one up or down, clim[c] with it while below the row's cap
 * (C3): fewer instructions than rcgc_pool_set_held for the pools' paths
 * of single blocks, and the branch is predictable wherever those paths
 * are frequent (a class far above or below the cap, or one block coming
 * and going). */
static inline void rcgc_pool_held_inc(rcgc_pool_state *ps, size_t c)
{
    if (++ps->nheld[c] <= RCGC_FREE_CACHE + 1) {
        ps->clim[c]++;
        ps->mlim[c] += sizeof(void *);   /* C4 */
    }
}

static inline void rcgc_pool_held_dec(rcgc_pool_state *ps, size_t c)
{
    if (--ps->nheld[c] < RCGC_FREE_CACHE + 1) {
        ps->clim[c]--;
        ps->mlim[c] -= sizeof(void *);   /* C4 */
    }
}

/* The MEM domain's live blocks, derived (M3): exact in every mode
 * (tracing, debug hooks, user allocators, fault injection). */
long rcgc_pool_mem_live(rcgc_runtime *rt);

/* The allocation fast path: the block freed last into the class's free
 * cache, else the head block of the class's free list
 * (three loads, three stores), including the frequent cases where it is the
 * last linked block and the pool carves its next block, or it is the pool's
 * last free block and the pool, full now, leaves the head of the used list.
 * NULL without side effects when the class has no pool with a free block
 * (the caller then calls rcgc_pool_alloc_slow, which takes a new pool).
 * n <= RCGC_SMALL_LIMIT.  *from receives the block's pool (tracing needs
 * it; callers that ignore it pay nothing). */
/* Its two halves, for a caller that wants to know which one gave the
 * block: the class's free cache (NULL if empty; any mode: it reads the
 * row, not cache[c], and keeps cache[c] the top's copy, C1) ... */
static RCGC_ALWAYS_INLINE void *rcgc_pool_try_alloc_cached(rcgc_pool_state *ps, size_t szidx)
{
    void **top = ps->ctop[szidx];
    void *bp = *top;   /* NULL at the floor (C1) */
    if (RCGC_LIKELY(bp != NULL)) {
        ps->ctop[szidx] = top - 1;
        ps->cache[szidx] = top[-1];
    }
    return bp;
}

/* The untraced fast paths' pop (rcgc_mem_malloc_at, rcgc_new): the top
 * block of class c's free cache, cache[c] - one load, as from a linked
 * list - when the top is above mfloor[c]; NULL with nothing changed when
 * the cache is empty or anything is on (C5: the caller then reads the
 * mode itself, off this path). */
static RCGC_ALWAYS_INLINE void *rcgc_pool_try_pop_fast(rcgc_pool_state *ps, size_t c)
{
    void **top = ps->ctop[c];
    if (RCGC_LIKELY((uintptr_t)top > ps->mfloor[c])) {
        void *bp = ps->cache[c];   /* C1: nothing is on (C5), so the copy */
        ps->ctop[c] = top - 1;
        ps->cache[c] = top[-1];
#if defined(__GNUC__) || defined(__clang__)
        if (bp == NULL)
            __builtin_unreachable();
#endif
        return bp;
    }
    return NULL;
}

/* ... and the head of the class's free list (NULL if no pool has a free
 * block), *from its pool. */
static RCGC_ALWAYS_INLINE void *rcgc_pool_try_alloc_used(rcgc_pool_state *ps, size_t szidx,
                                                         rcgc_pool **from)
{
    void *bp;
    rcgc_pool *pool = ps->usedpools[szidx];
    *from = pool;
    if (RCGC_LIKELY(pool != NULL)) {
        bp = pool->freeblock;
        void *next = *(void **)bp;
        rcgc_pool_held_inc(ps, szidx);
        if (RCGC_LIKELY(next != NULL)) {
            pool->freeblock = next;
            pool->nalloc++;
            return bp;
        }
        uint32_t off = pool->nextoffset;
        pool->nalloc++;
        if (off <= pool->maxnextoffset) {
            /* Carve the next never-used block (lazily: untouched memory
             * is never written before it is handed out).  Pools are
             * aligned to their size: bp gives the pool's base. */
            next = (char *)((uintptr_t)bp & ~(uintptr_t)(RCGC_POOL_SIZE - 1)) + off;
            pool->nextoffset = (uint16_t)(off + pool->size);
            *(void **)next = NULL;
            pool->freeblock = next;
            return bp;
        }
        /* The last block: the pool is full and leaves the head of the
         * list (the new head's prevpool is left as it is: a head's means
         * nothing). */
        pool->freeblock = NULL;
        ps->usedpools[szidx] = pool->nextpool;
        pool->nextpool = NULL;
        return bp;
    }
    return NULL;
}

/* rcgc_pool_try_alloc for a size class c < RCGC_NCLASSES. */
static RCGC_ALWAYS_INLINE void *rcgc_pool_try_alloc_class(rcgc_pool_state *ps, size_t c)
{
    void *bp = rcgc_pool_try_alloc_cached(ps, c);
    if (RCGC_LIKELY(bp != NULL))
        return bp;
    rcgc_pool *from;
    return rcgc_pool_try_alloc_used(ps, c, &from);
}

static inline void *rcgc_pool_try_alloc_from(rcgc_pool_state *ps, size_t n, rcgc_pool **from)
{
    size_t szidx = (n - (n != 0)) >> RCGC_ALIGN_SHIFT;
    void *bp = rcgc_pool_try_alloc_cached(ps, szidx);
    if (RCGC_LIKELY(bp != NULL)) {
        *from = rcgc_pool_of(bp);
        return bp;
    }
    return rcgc_pool_try_alloc_used(ps, szidx, from);
}

static inline void *rcgc_pool_try_alloc(rcgc_pool_state *ps, size_t n)
{
    rcgc_pool *from;
    return rcgc_pool_try_alloc_from(ps, n, &from);
}

/* Allocate a block of n <= RCGC_SMALL_LIMIT bytes from the runtime's pools
 * (ps is &rt->pool); NULL if no arena could be mapped (the OOM handler is
 * the caller's job). */
static inline void *rcgc_pool_alloc_in(rcgc_runtime *rt, rcgc_pool_state *ps, size_t n)
{
    void *p = rcgc_pool_try_alloc(ps, n);
    if (RCGC_LIKELY(p != NULL))
        return p;
    return rcgc_pool_alloc_slow(rt, (unsigned)((n - (n != 0)) >> RCGC_ALIGN_SHIFT));
}

/* Give a block back to its pool (p must be a block start, pool its
 * descriptor; it leaves nheld, C2).  A full pool that gets a
 * free block back becomes the head of its class's used list, so the next
 * allocation of the class reuses the block just freed, while it is still
 * in the cache.  Only a pool that becomes empty takes the slow path. */
static inline void rcgc_pool_release_block(rcgc_runtime *rt, rcgc_pool_state *ps,
                                           rcgc_pool *pool, void *p)
{
    void *last = pool->freeblock;
    *(void **)p = last;
    pool->freeblock = p;
    rcgc_pool_held_dec(ps, pool->szidx);
    if (RCGC_UNLIKELY(--pool->nalloc == 0)) {
        rcgc_pool_free_slow(rt, pool, last);
        return;
    }
    if (last == NULL) {
        rcgc_pool **head = &ps->usedpools[pool->szidx];
        rcgc_pool *first = *head;
        pool->prevpool = NULL;
        pool->nextpool = first;
        if (first != NULL)
            first->prevpool = pool;
        *head = pool;
    }
}

/* The free cache's push found its limit (C3) for p, a live block: p is
 * its class's last live block (everything goes back to the pools, so
 * pools and arenas can be released) or the row is full (p goes to its
 * pool).  The class comes from p's pool descriptor, so that the fast
 * paths need not keep it for the call. */
void rcgc_pool_cache_full(rcgc_runtime *rt, void *p);

/* Free a pool block without the cache (the allocator's slow modes).  The
 * class's last live block takes the cache's blocks back with it (C2: the
 * cache may be in use while tracing). */
static inline void rcgc_pool_free_nocache(rcgc_runtime *rt, rcgc_pool_state *ps, void *p)
{
    rcgc_pool *pool = rcgc_pool_of(p);
    if (RCGC_UNLIKELY(rcgc_pool_nlive(ps, pool->szidx) == 1)) {
        rcgc_pool_cache_full(rt, p);
        return;
    }
    rcgc_pool_release_block(rt, ps, pool, p);
}

/* Give every cached block back to its pool. */
void rcgc_pool_cache_flush(rcgc_runtime *rt);
/* Set up the empty free cache of a zeroed state (the floors, C1). */
void rcgc_pool_cache_init(rcgc_pool_state *ps);
/* Free n blocks of one pool at once (the collector's delete), none of them
 * in the free cache: they are linked through their first words from first
 * to tail (tail's link is written here).  The chain goes onto the pool's
 * free list as it is; nalloc and the class's nheld drop once; the pool
 * rejoins its used list or goes back to its arena once.  When they are the
 * class's last live blocks they go block by block instead (the last one
 * spills the cache, as a free does). */
void rcgc_pool_free_chain(rcgc_runtime *rt, rcgc_pool *pool, void *first, void *tail, unsigned n);

/* rcgc_pool_free_class (below) with the block's trace slot sl for the
 * pushed entry's parallel entry (F4: the traced rcgc_mem_free passes it,
 * every other push NULL). */
/* A push of p found its limit (C3): the row is full, or p is its class's
 * last live block.  In the first case (nheld > RCGC_FREE_CACHE + 1) p
 * goes to its pool here, inline, for a program that frees many blocks in
 * a row (a tree); only the class's last live block takes the call. */
static RCGC_ALWAYS_INLINE void rcgc_pool_push_limit_in(rcgc_runtime *rt, rcgc_pool_state *ps,
                                                       rcgc_pool *pool, void *p)
{
    if (RCGC_LIKELY(ps->nheld[pool->szidx] > RCGC_FREE_CACHE + 1)) {
        rcgc_pool_release_block(rt, ps, pool, p);
        return;
    }
    rcgc_pool_cache_full(rt, p);
}

/* rcgc_pool_push_limit_in with p's pool found here. */
static RCGC_ALWAYS_INLINE void rcgc_pool_push_limit(rcgc_runtime *rt, rcgc_pool_state *ps,
                                                    void *p)
{
    rcgc_pool_push_limit_in(rt, ps, rcgc_pool_of(p), p);
}

static inline void rcgc_pool_free_class_slot(rcgc_runtime *rt, rcgc_pool_state *ps, void *p,
                                             unsigned c, void *sl)
{
    void **top = ps->ctop[c] + 1;
    if (RCGC_LIKELY(top != ps->clim[c])) {
        *top = p;
        *rcgc_pool_cslot(top) = sl;
        ps->ctop[c] = top;
        ps->cache[c] = p;
        return;
    }
    rcgc_pool_push_limit(rt, ps, p);
}

/* rcgc_pool_free_in for a caller that knows the block's size class c
 * (one that has just read the block's pool descriptor, say). */
static inline void rcgc_pool_free_class(rcgc_runtime *rt, rcgc_pool_state *ps, void *p,
                                        unsigned c)
{
    rcgc_pool_free_class_slot(rt, ps, p, c, NULL);
}

/* rcgc_mem_free's push of p (size class c) into the free cache, top
 * being ps->ctop[c] + 1 (the caller keeps it for its failing branch): 1
 * done, 0 with nothing changed when the row is full, p is its class's
 * last live block (C3) or the allocator is off its fast paths (C4); the
 * caller then tests the mode itself.  The entry's slot entry (cslot) is
 * not written: the push goes ahead only while nothing is on (C4), so
 * never while tracing, and F4 (tmfast.h) holds while tracing only
 * (tracing's start resets the entries of the cached blocks). */
static RCGC_ALWAYS_INLINE int rcgc_pool_try_push_mem(rcgc_pool_state *ps, void *p, size_t c,
                                                     void **top)
{
    if (RCGC_LIKELY((uintptr_t)top < ps->mlim[c])) {
        *top = p;
        ps->ctop[c] = top;
        ps->cache[c] = p;
        return 1;
    }
    return 0;
}

/* rcgc_pool_try_push_mem with the top read here, for the object frees
 * (object.c: a leaf's, a deallocation's entered from outside), which go
 * ahead only while nothing is on (C4) and otherwise take their own slow
 * paths.  The class's fields are read at fixed offsets from one register,
 * the row rt + 8c (an empty asm keeps it: gcc 12 otherwise indexed
 * ctop[c] and computed &mlim[c] apart, one move more). */
static RCGC_ALWAYS_INLINE int rcgc_pool_try_push_class(rcgc_pool_state *ps, void *p, size_t c)
{
    char *row = (char *)ps + c * sizeof(void *);
#if defined(__GNUC__) || defined(__clang__)
    __asm__("" : "+r"(row));
#endif
    void ***ctop = (void ***)(void *)(row + offsetof(rcgc_pool_state, ctop));
    void **top = *ctop + 1;
    if (RCGC_LIKELY((uintptr_t)top <
                    *(const uintptr_t *)(const void *)(row + offsetof(rcgc_pool_state, mlim)))) {
        *top = p;
        *ctop = top;
        *(void **)(void *)(row + offsetof(rcgc_pool_state, cache)) = p;
        return 1;
    }
    return 0;
}

/* rcgc_pool_free_class_slot for a caller that has read top =
 * ps->ctop[c] + 1 already (rcgc_mem_free's failing push, while tracing):
 * the same steps without reading ctop again. */
static RCGC_ALWAYS_INLINE void rcgc_pool_free_class_top(rcgc_runtime *rt, rcgc_pool_state *ps,
                                                        void *p, size_t c, void **top,
                                                        void *sl)
{
    if (RCGC_LIKELY(top != ps->clim[c])) {
        *top = p;
        *rcgc_pool_cslot(top) = sl;
        ps->ctop[c] = top;
        ps->cache[c] = p;
        return;
    }
    rcgc_pool_push_limit(rt, ps, p);
}

/* Keep C4 and C5 (and C1's copy) after rt->mem.slow changed: off (0) or
 * on (anything else). */
void rcgc_pool_set_mem_limits(rcgc_pool_state *ps, int off_fast_paths);

/* rcgc_pool_free_in for a block whose size class c the caller has read
 * from its class table entry (rcgc_class_entry_lookup): the same steps
 * without a second lookup. */
static inline void rcgc_pool_free_entry(rcgc_runtime *rt, rcgc_pool_state *ps, void *p,
                                        unsigned c)
{
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p, 1, 3);
#endif
    rcgc_pool_free_class(rt, ps, p, c);
}

/* The free fast path (p must be a block start): into the class's free
 * cache, which reads only the arena's class table (and no pool
 * descriptor); when the cache is full, to the block's pool.  The block is
 * prefetched (for writing where the target has it), for the program's
 * first store to it once the cache hands it out again. */
static inline void rcgc_pool_free_in(rcgc_runtime *rt, rcgc_pool_state *ps, void *p)
{
    unsigned c = rcgc_block_class(p);
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p, 1, 3);
#endif
    rcgc_pool_free_class(rt, ps, p, c);
}

#define rcgc_pool_alloc(rt, n) rcgc_pool_alloc_in((rt), &(rt)->pool, (n))
#define rcgc_pool_free(rt, p) rcgc_pool_free_nocache((rt), &(rt)->pool, (p))

/* Live blocks in all pools (a walk over the arenas: for checks and tests). */
size_t rcgc_pool_live_blocks(rcgc_runtime *rt);
/* Usable size of the block holding p. */
size_t rcgc_pool_block_size(const void *p);
/* Release every arena of the runtime. */
void rcgc_pool_state_fini(rcgc_runtime *rt);
int rcgc_pool_validate(rcgc_runtime *rt, FILE *out);
void rcgc_pool_print_stats(rcgc_runtime *rt, FILE *out);
/* Fill a stats struct's pool part. */
void rcgc_pool_stats(rcgc_runtime *rt, rcgc_mem_stats *st);

/* Young-list maintenance (called by the object layer). */
void rcgc_pool_young_add(rcgc_runtime *rt, rcgc_pool *pool);
void rcgc_pool_young_remove(rcgc_runtime *rt, rcgc_pool *pool);

#endif /* RCGC_POOL_H */
