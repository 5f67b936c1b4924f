/*
 * debughooks.c - CPython's memory debug hooks (PYTHONMALLOC=debug) for the
 * three domains: guard bytes around every block, fill patterns, and a fatal
 * report in CPython's words when a check fails.
 *
 * Block layout (CPython 3.11's, without the serial number), S = 8 bytes:
 *
 *   q            q+S   q+S+1          p = q+2S        p+N          p+N+S
 *   | N (8 bytes, | API | 7 x 0xFD     | N data bytes  | 8 x 0xFD   |
 *   | big-endian) | id  | (FORBIDDEN)  | 0xCD when new |            |
 *
 *   q is what the base allocator returned, p what the caller gets, N the
 *   size the caller asked for.  The API id is 'r' (RAW), 'm' (MEM) or 'o'
 *   (OBJ).  A freed block is filled with 0xDD (DEADBYTE), header and tail
 *   included, before it goes back to the base; a freed object keeps one
 *   mark, its header's type pointer RCGC_FREED_TYPE, so that debug builds
 *   still catch an incref or decref of it (rcgc.h).
 *
 * What is caught, and when:
 *   overflow / underflow   a tail or leading pad byte is not 0xFD: at free,
 *                          realloc and rcgc_mem_debug_check.
 *   wrong domain           the API id is another domain's ("bad ID").
 *   double free            the id is 0xDD (the block was filled at free).
 *   never allocated        a pointer inside a pool that is not a live block
 *                          start is rejected before its bytes are trusted;
 *                          elsewhere the id byte tells (as in CPython).
 *   write after free       pool blocks only: a block freed under the hooks is
 *                          0xDD from byte S to its end (the pool keeps its
 *                          free-list link in bytes 0..S-1).  When the pool
 *                          hands such a block out again, every one of those
 *                          bytes must still be 0xDD.  A pool that starts a
 *                          new life (possibly in another size class, whose
 *                          blocks would straddle the old ones' 0xDD runs) is
 *                          zeroed when its first block is handed out: the
 *                          first allocation of a life is the only one that
 *                          returns block 0 while nalloc == 1 and only blocks
 *                          0 and 1 are carved.
 *
 * The hooks are the innermost wrapper of each domain (right above the base,
 * below tracemalloc), and call rt->mem.domains[d].base at each call so that
 * rcgc_mem_set_allocator can replace the base under them.  Objects pooled
 * under the hooks start debug_pre = 2S bytes into their pool block and end
 * debug_post = S bytes before its end (object.c uses both).
 */
#include <stddef.h>
#include <string.h>

#include "pool.h"
#include "rcgc_tracemalloc.h"
#include "runtime.h"

#define SST 8u                    /* CPython's SST: sizeof(size_t) */
#define DEBUG_EXTRA (3u * SST)    /* bytes the hooks add to a block */
#define FORBIDDENBYTE 0xFDu
#define CLEANBYTE 0xCDu
#define DEADBYTE 0xDDu
/* Bytes listed at most when a freed block turns out to have been written. */
#define WAF_LIST_MAX 16

static const char api_ids[RCGC_DOMAIN_COUNT] = {'r', 'm', 'o'};
static const char *const domain_names[RCGC_DOMAIN_COUNT] = {"RAW", "MEM", "OBJ"};

/* ----------------------------------------------------------- byte helpers */

static void write_size(uint8_t *q, size_t n)
{
    for (unsigned i = SST; i-- > 0;) {
        q[i] = (uint8_t)(n & 0xFFu);
        n >>= 8;
    }
}

static size_t read_size(const uint8_t *q)
{
    size_t n = 0;
    for (unsigned i = 0; i < SST; i++)
        n = (n << 8) | q[i];
    return n;
}

static int domain_of_api(int id)
{
    for (int d = 0; d < RCGC_DOMAIN_COUNT; d++)
        if (api_ids[d] == id)
            return d;
    return -1;
}

/* Print an API id the way CPython does ('m'), escaping a byte that is not
 * printable ASCII ('\xdd' for a freed block) so the report stays text. */
static void print_api(FILE *out, uint8_t id)
{
    if (id >= 0x20 && id < 0x7F)
        fprintf(out, "'%c'", (char)id);
    else
        fprintf(out, "'\\x%02x'", id);
}

/* ------------------------------------------------------ pool block facts */

/*
 * What the pools say about the pointer a caller handed in.  `q` is p - 2S.
 *   POOL_NONE     p is not in any arena: only its header bytes can tell.
 *   POOL_BLOCK    q is a carved block start of an in-use pool of rt.
 *   POOL_EMPTY    p is in a pool of rt that holds no block now (every block
 *                 of it was freed): its bytes are readable but prove nothing.
 *   POOL_BAD      p is in an arena but q is no block start of a pool of rt
 *                 (interior pointer, arena descriptors, never-carved pool,
 *                 another runtime's arena).
 * *room receives the bytes from p to the end of the pool (BLOCK and EMPTY):
 * a size field larger than room - S cannot be true.
 */
enum { POOL_NONE, POOL_BLOCK, POOL_EMPTY, POOL_BAD };

static int pool_facts(rcgc_runtime *rt, const uint8_t *p, size_t *room)
{
    rcgc_arena *a = rcgc_arena_lookup(p);
    if (a == NULL)
        return POOL_NONE;
    if (a->rt != rt)
        return POOL_BAD;
    /* Slot 0 of an arena holds its descriptors, not blocks. */
    unsigned slot = (unsigned)(((uintptr_t)p >> RCGC_POOL_BITS) & (RCGC_ARENA_SLOTS - 1));
    if (slot == 0 || slot - 1 >= a->ncarved)
        return POOL_BAD;
    const rcgc_pool *pool = rcgc_arena_pool(a, slot - 1);
    uintptr_t first = (uintptr_t)pool->mem;
    if ((uintptr_t)p < first + 2 * SST)
        return POOL_BAD;
    *room = first + RCGC_POOL_SIZE - (uintptr_t)p;
    if (pool->szidx >= RCGC_NCLASSES)
        return POOL_EMPTY;
    uintptr_t q = (uintptr_t)p - 2 * SST;
    if (pool->rt != rt || (q - first) % pool->size != 0 || q - first >= pool->nextoffset)
        return POOL_BAD;
    *room = first + (q - first) + pool->size - (uintptr_t)p;
    return POOL_BLOCK;
}

/* ----------------------------------------------------------------- report */

/* The allocation traceback, or CPython's hint when tracing is off. */
static void print_traceback(rcgc_runtime *rt, int domain, const void *p, FILE *out)
{
    if (rcgc_trace_print_block(rt, (rcgc_domain)domain, p, out))
        return;
    if (!rcgc_tracemalloc_is_tracing(rt))
        fputs("Enable tracemalloc to get the memory block allocation traceback\n\n", out);
}

/* Up to 8 bytes from the start and 8 from the end of [p, p+n). */
static void dump_data(const uint8_t *p, size_t n, FILE *out)
{
    if (n == 0)
        return;
    fputs("    Data at p:", out);
    size_t head = n < 8 ? n : 8;
    for (size_t i = 0; i < head; i++)
        fprintf(out, " %02x", p[i]);
    if (n > head) {
        size_t from = head;
        if (n - head > 8) {
            fputs(" ...", out);
            from = n - 8;
        }
        for (size_t i = from; i < n; i++)
            fprintf(out, " %02x", p[i]);
    }
    fputc('\n', out);
}

/*
 * CPython's _PyObject_DebugDumpAddress: the block's API, size, pad bytes and
 * data.  `kind` and `room` are pool_facts' answers for p.  The tail is read
 * only when the size can be trusted: within the pool block, or (outside the
 * pools) when the API id is one the hooks write; otherwise the report says
 * so rather than reading wild memory (CPython reads it and may crash).
 */
static void dump_block(const uint8_t *p, int kind, size_t room, FILE *out)
{
    const uint8_t *q = p - 2 * SST;
    uint8_t id = q[SST];
    size_t nbytes = read_size(q);
    fprintf(out, "Debug memory block at address p=%p: API ", (const void *)p);
    print_api(out, id);
    fputc('\n', out);
    fprintf(out, "    %zu bytes originally requested\n", nbytes);

    int lead_ok = 1;
    for (unsigned i = 1; i < SST; i++)
        if (p[-(ptrdiff_t)i] != FORBIDDENBYTE)
            lead_ok = 0;
    fprintf(out, "    The %u pad bytes at p-%u are ", SST - 1, SST - 1);
    if (lead_ok) {
        fputs("FORBIDDENBYTE, as expected.\n", out);
    } else {
        fprintf(out, "not all FORBIDDENBYTE (0x%02x):\n", FORBIDDENBYTE);
        for (unsigned i = SST - 1; i >= 1; i--) {
            uint8_t b = p[-(ptrdiff_t)i];
            fprintf(out, "        at p-%u: 0x%02x%s\n", i, b,
                    b != FORBIDDENBYTE ? " *** OUCH" : "");
        }
        fputs("    Because memory is corrupted at the start, the count of bytes requested\n"
              "       may be bogus, and checking the trailing pad bytes may segfault.\n",
              out);
    }

    int trusted = kind == POOL_NONE ? domain_of_api(id) >= 0 : nbytes <= room - SST;
    if (!trusted) {
        fputs("    The count of bytes requested is bogus (larger than the block): the "
              "trailing pad bytes are not checked.\n", out);
        if (kind != POOL_NONE)
            dump_data(p, room - SST, out);
        fputc('\n', out);
        return;
    }
    const uint8_t *tail = p + nbytes;
    int tail_ok = 1;
    for (unsigned i = 0; i < SST; i++)
        if (tail[i] != FORBIDDENBYTE)
            tail_ok = 0;
    fprintf(out, "    The %u pad bytes at tail=%p are ", SST, (const void *)tail);
    if (tail_ok) {
        fputs("FORBIDDENBYTE, as expected.\n", out);
    } else {
        fprintf(out, "not all FORBIDDENBYTE (0x%02x):\n", FORBIDDENBYTE);
        for (unsigned i = 0; i < SST; i++)
            fprintf(out, "        at tail+%u: 0x%02x%s\n", i, tail[i],
                    tail[i] != FORBIDDENBYTE ? " *** OUCH" : "");
    }
    dump_data(p, nbytes, out);
    fputc('\n', out);
}

/* Print the report for p (checked as domain `c->domain`), its allocation
 * traceback, and die with "func: what".  The depth guard is reset first:
 * a test's fatal handler may longjmp away. */
static _Noreturn void block_fatal(rcgc_debug_ctx *c, const uint8_t *p, int kind,
                                  size_t room, const char *func, const char *what)
{
    c->depth = 0;
    fflush(stdout);
    dump_block(p, kind, room, stderr);
    int owner = domain_of_api(p[-(ptrdiff_t)SST]);
    print_traceback(c->rt, owner >= 0 ? owner : (int)c->domain, p, stderr);
    fflush(stderr);
    rcgc_fatal("%s: %s", func, what);
}

/*
 * CPython's _PyMem_DebugCheckAddress, plus a pool check first: a pointer
 * into rcgc's pools must be a live block start of this runtime before any
 * of its header bytes is believed.  Returns the block size N; on any
 * inconsistency the report is printed and the process dies.
 */
static size_t check_address(rcgc_debug_ctx *c, const void *ptr, const char *func)
{
    const uint8_t *p = ptr;
    size_t room = 0;
    int kind = pool_facts(c->rt, p, &room);
    if (kind == POOL_BAD) {
        c->depth = 0;
        fprintf(stderr, "Debug memory block at address p=%p: not a block rcgc allocated\n",
                ptr);
        rcgc_arena *a = rcgc_arena_lookup(p);
        if (a != NULL && a->rt != c->rt) {
            fprintf(stderr, "    p lies in an arena of another runtime (%p)\n\n",
                    (void *)a->rt);
        } else {
            unsigned slot =
                (unsigned)(((uintptr_t)p >> RCGC_POOL_BITS) & (RCGC_ARENA_SLOTS - 1));
            const rcgc_pool *pool = slot ? rcgc_arena_pool(a, slot - 1) : NULL;
            if (pool == NULL)
                fputs("    p lies in an arena's descriptors", stderr);
            else if (slot - 1 >= a->ncarved)
                fputs("    p lies in a pool that was never used", stderr);
            else
                fprintf(stderr, "    p lies in a pool of %u-byte blocks, at offset %zu of a block",
                        pool->size, (size_t)((uintptr_t)p - (uintptr_t)pool->mem) % pool->size);
            fputs("\n\n", stderr);
        }
        fflush(stderr);
        rcgc_fatal("%s: bad pointer: %p was not allocated by rcgc (%s domain)", func, ptr,
                   domain_names[c->domain]);
    }

    uint8_t id = p[-(ptrdiff_t)SST];
    if (id != (uint8_t)c->api) {
        char what[160];
        const char *why;
        if (id == DEADBYTE)
            why = "the block is already freed (double free?)";
        else if (domain_of_api(id) >= 0)
            why = "freed through the wrong domain";
        else
            why = "not a block allocated by rcgc";
        int n = snprintf(what, sizeof what, "bad ID: Allocated using API '");
        if (id >= 0x20 && id < 0x7F)
            n += snprintf(what + n, sizeof what - (size_t)n, "%c", (char)id);
        else
            n += snprintf(what + n, sizeof what - (size_t)n, "\\x%02x", id);
        snprintf(what + n, sizeof what - (size_t)n, "', verified using API '%c' (%s)",
                 c->api, why);
        block_fatal(c, p, kind, room, func, what);
    }
    for (unsigned i = SST - 1; i >= 1; i--)
        if (p[-(ptrdiff_t)i] != FORBIDDENBYTE)
            block_fatal(c, p, kind, room, func, "bad leading pad byte");
    size_t nbytes = read_size(p - 2 * SST);
    if (kind != POOL_NONE && nbytes > room - SST)
        block_fatal(c, p, kind, room, func, "bad size: larger than the block");
    const uint8_t *tail = p + nbytes;
    for (unsigned i = 0; i < SST; i++)
        if (tail[i] != FORBIDDENBYTE)
            block_fatal(c, p, kind, room, func, "bad trailing pad byte");
    return nbytes;
}

/* Where release_block may have left its freed-object mark in block q (a
 * pooled object's header at p, a foreign one's behind its prefix): mark[k]
 * is the offset from q of a mark that is there, or 0. */
static void freed_marks(const uint8_t *q, size_t size, size_t mark[2])
{
    const rcgc_type *freed = RCGC_FREED_TYPE;
    const size_t at[2] = {0, sizeof(rcgc_foreign)};
    for (int k = 0; k < 2; k++) {
        size_t off = 2 * SST + at[k] + offsetof(rcgc_object, type);
        mark[k] = off + sizeof freed <= size && memcmp(q + off, &freed, sizeof freed) == 0
                      ? off : 0;
    }
}

static int in_mark(const size_t mark[2], size_t i)
{
    for (int k = 0; k < 2; k++)
        if (mark[k] != 0 && i >= mark[k] && i < mark[k] + sizeof(rcgc_type *))
            return 1;
    return 0;
}

/*
 * A pool block freed under the hooks carries 0xDD from byte SST to its end.
 * When the pool hands it out again, all of those bytes must still be 0xDD:
 * otherwise someone wrote through a dangling pointer, and the report lists
 * where (offsets from p, the pointer the block's last owner had).
 */
static void check_reused(rcgc_debug_ctx *c, uint8_t *q, const char *func)
{
    if (rcgc_arena_lookup(q) == NULL)
        return;
    rcgc_pool *pool = rcgc_pool_of(q);
    size_t size = pool->size;
    if (q == (uint8_t *)pool->mem && pool->nalloc == 1 && pool->nextoffset == 2 * size) {
        /* A new life: block 0 is ours, block 1 holds a NULL link, the rest
         * is not carved.  Zero it all so old 0xDD runs cannot mislead. */
        memset(pool->mem, 0, RCGC_POOL_SIZE);
        return;
    }
    for (unsigned i = SST; i < 2 * SST; i++)
        if (q[i] != DEADBYTE)
            return;   /* never freed under the hooks in this pool's life */
    size_t mark[2];
    freed_marks(q, size, mark);
    size_t bad = 0;
    for (size_t i = 2 * SST; i < size; i++)
        if (q[i] != DEADBYTE && !in_mark(mark, i))
            bad++;
    if (bad == 0)
        return;
    c->depth = 0;
    const uint8_t *p = q + 2 * SST;
    size_t n = size - DEBUG_EXTRA;
    fprintf(stderr, "Debug memory block at address p=%p: API '%c', freed, reused\n",
            (const void *)p, c->api);
    fprintf(stderr, "    The freed block (%zu bytes from p-8) is not all DEADBYTE (0x%02x): "
                    "it was written to after it was freed:\n", size - SST, DEADBYTE);
    size_t listed = 0;
    for (size_t i = 2 * SST; i < size && listed < WAF_LIST_MAX; i++) {
        if (q[i] == DEADBYTE || in_mark(mark, i))
            continue;
        fprintf(stderr, "        at p+%zu: 0x%02x *** OUCH\n", i - 2 * SST, q[i]);
        listed++;
    }
    if (bad > listed)
        fprintf(stderr, "        ... and %zu more\n", bad - listed);
    dump_data(p, n, stderr);
    fputc('\n', stderr);
    fflush(stderr);
    rcgc_fatal("%s: write after free: a freed block of the %s domain was modified before it "
               "was reused", func, domain_names[c->domain]);
}

/* ------------------------------------------------------------- the hooks */

static rcgc_allocator *base_of(rcgc_debug_ctx *c)
{
    return &c->rt->mem.domains[c->domain].base;
}

static void enter_base(rcgc_debug_ctx *c)
{
    if (c->depth++ != 0) {
        c->depth = 0;
        rcgc_fatal("the %s domain's base allocator called back into the %s domain (did it "
                   "wrap the allocator rcgc_mem_get_allocator returned while the debug hooks "
                   "were on?)", domain_names[c->domain], domain_names[c->domain]);
    }
}

/* Allocate a decorated block of n bytes (zeroed or 0xCD).  NULL on failure. */
static void *debug_alloc(rcgc_debug_ctx *c, int zero, size_t n, const char *func)
{
    if (n > SIZE_MAX - DEBUG_EXTRA)
        return NULL;
    size_t total = n + DEBUG_EXTRA;
    rcgc_allocator *base = base_of(c);
    int pooled = c->rt->mem.domains[c->domain].base_is_pool;
    enter_base(c);
    /* A pool block is taken with malloc so the dead fill can be checked
     * before it is cleared. */
    uint8_t *q = zero && !pooled ? base->calloc(base->ctx, 1, total)
                                 : base->malloc(base->ctx, total);
    c->depth--;
    if (q == NULL)
        return NULL;
    check_reused(c, q, func);
    write_size(q, n);
    q[SST] = (uint8_t)c->api;
    memset(q + SST + 1, FORBIDDENBYTE, SST - 1);
    uint8_t *p = q + 2 * SST;
    if (!zero)
        memset(p, CLEANBYTE, n);
    else if (pooled)
        memset(p, 0, n);
    memset(p + n, FORBIDDENBYTE, SST);
    return p;
}

/* Fill a checked block with DEADBYTE and give it back to the base (a pool
 * block to its end, slack included).  An OBJ block keeps one mark: its
 * object header's type pointer stays RCGC_FREED_TYPE, so that debug builds
 * still name an incref or decref of the freed object at once. */
static void release_block(rcgc_debug_ctx *c, uint8_t *p, size_t nbytes)
{
    uint8_t *q = p - 2 * SST;
    rcgc_allocator *base = base_of(c);
    int pooled = rcgc_arena_lookup(q) != NULL;
    memset(q, DEADBYTE, pooled ? rcgc_pool_of(q)->size : nbytes + DEBUG_EXTRA);
    if (c->domain == RCGC_DOMAIN_OBJ) {
        /* Pooled objects start at p; the others behind their prefix. */
        size_t at = pooled && c->rt->mem.domains[RCGC_DOMAIN_OBJ].base_is_pool
                        ? 0 : sizeof(rcgc_foreign);
        if (nbytes >= at + sizeof(rcgc_object))
            ((rcgc_object *)(void *)(p + at))->type = RCGC_FREED_TYPE;
    }
    enter_base(c);
    base->free(base->ctx, q);
    c->depth--;
}

static void *debug_malloc(void *ctx, size_t n)
{
    return debug_alloc(ctx, 0, n, __func__);
}

static void *debug_calloc(void *ctx, size_t nelem, size_t elsize)
{
    if (elsize != 0 && nelem > SIZE_MAX / elsize)
        return NULL;
    return debug_alloc(ctx, 1, nelem * elsize, __func__);
}

/* Always moves the block: the old one is checked, copied, filled with
 * DEADBYTE and freed, so a stale pointer to it is caught like any other
 * write after free.  On failure the old block is left as it was. */
static void *debug_realloc(void *ctx, void *ptr, size_t n)
{
    rcgc_debug_ctx *c = ctx;
    if (ptr == NULL)
        return debug_alloc(c, 0, n, __func__);
    size_t old = check_address(c, ptr, __func__);
    uint8_t *p = debug_alloc(c, 0, n, __func__);
    if (p == NULL)
        return NULL;
    memcpy(p, ptr, old < n ? old : n);
    release_block(c, ptr, old);
    return p;
}

static void debug_free(void *ctx, void *ptr)
{
    rcgc_debug_ctx *c = ctx;
    if (ptr == NULL)
        return;
    size_t n = check_address(c, ptr, __func__);
    release_block(c, ptr, n);
}

int rcgc_debughooks_is_hooks(const rcgc_allocator *a)
{
    return a->malloc == debug_malloc;
}

static int chain_is_hooks(const rcgc_runtime *rt, int d)
{
    const rcgc_allocator *cur = &rt->mem.domains[d].current;
    return cur->malloc == debug_malloc && cur->ctx == &rt->mem.debug_ctx[d];
}

/* ------------------------------------------------------ install / remove */

static void wrap_all(rcgc_runtime *rt)
{
    for (int d = 0; d < RCGC_DOMAIN_COUNT; d++) {
        rcgc_debug_ctx *c = &rt->mem.debug_ctx[d];
        c->rt = rt;
        c->domain = (rcgc_domain)d;
        c->api = api_ids[d];
        c->depth = 0;
        rcgc_allocator hooks = {c, debug_malloc, debug_calloc, debug_realloc, debug_free};
        rcgc_allocator inner;
        rcgc_mem_wrap(rt, (rcgc_domain)d, &hooks, &inner);
    }
    rt->mem.debug_hooks = 1;
    rt->mem.debug_pre = 2 * SST;
    rt->mem.debug_post = SST;
}

static void unwrap_all(rcgc_runtime *rt)
{
    for (int d = 0; d < RCGC_DOMAIN_COUNT; d++)
        if (chain_is_hooks(rt, d))
            rcgc_mem_unwrap(rt, (rcgc_domain)d, &rt->mem.domains[d].base);
    rt->mem.debug_hooks = 0;
    rt->mem.debug_pre = 0;
    rt->mem.debug_post = 0;
    rcgc_mem_update_slow(rt);
}

/*
 * Runtime creation (RCGC_MALLOC=debug|pymalloc_debug|malloc_debug): put the
 * hooks right above each domain's base.  Called after the domains are set
 * up and before anything is allocated; cannot fail.  Returns RCGC_OK.
 */
int rcgc_debughooks_install(rcgc_runtime *rt)
{
    if (!rt->mem.debug_hooks)
        wrap_all(rt);
    return RCGC_OK;
}

/* Runtime teardown, after every block is gone: take the hooks off. */
void rcgc_debughooks_fini(rcgc_runtime *rt)
{
    if (rt->mem.debug_hooks)
        unwrap_all(rt);
}

/*
 * Install the hooks on a runtime in use.  Allowed (RCGC_ESTATE otherwise)
 * when the MEM and OBJ domains hold no block, no wrapper (tracemalloc) is
 * installed, and the RAW domain holds only rcgc's own block, the trashcan
 * stack.  That block moves to a block of the new chain (freed through the
 * old one, so it is never freed through the wrong layout).  RCGC_ENOMEM (hooks
 * left off, nothing else changed) when that block cannot be allocated.
 */
int rcgc_mem_setup_debug_hooks(rcgc_runtime *rt)
{
    if (rt->mem.debug_hooks)
        return RCGC_OK;
    RCGC_ENTER(rt);
    int rc = RCGC_ESTATE;
    rcgc_mem_state *ms = &rt->mem;
    long own = rt->obj.pending != NULL;
    if (rcgc_pool_mem_live(rt) != 0 ||
        rcgc_mem_obj_live(rt) != 0 ||
        rcgc_pool_live_blocks(rt) != 0 || ms->domains[RCGC_DOMAIN_RAW].live != own)
        goto out;
    for (int d = 0; d < RCGC_DOMAIN_COUNT; d++) {
        const rcgc_domain_state *ds = &ms->domains[d];
        if (ds->current.malloc != ds->base.malloc || ds->current.ctx != ds->base.ctx)
            goto out;
    }
    rcgc_allocator old = ms->domains[RCGC_DOMAIN_RAW].current;
    wrap_all(rt);
    if (rt->obj.pending != NULL) {
        size_t bytes = rt->obj.cappending * sizeof(rcgc_object *);
        rcgc_object **moved = rcgc_mem_domain_alloc(rt, RCGC_DOMAIN_RAW, bytes);
        if (moved == NULL) {
            unwrap_all(rt);
            rc = RCGC_ENOMEM;
            goto out;
        }
        memcpy(moved, rt->obj.pending, rt->obj.npending * sizeof(rcgc_object *));
        old.free(old.ctx, rt->obj.pending);
        ms->domains[RCGC_DOMAIN_RAW].live--;
        rt->obj.pending = moved;
    }
    rc = RCGC_OK;
out:
    RCGC_LEAVE(rt);
    return rc;
}

int rcgc_mem_debug_hooks_enabled(const rcgc_runtime *rt)
{
    return rt->mem.debug_hooks;
}

/* Check one block now (CPython's _PyMem_DebugCheckAddress); the fatal
 * report is issued when it is damaged.  No-op without the hooks. */
void rcgc_mem_debug_check(rcgc_runtime *rt, rcgc_domain d, const void *ptr)
{
    if (!rt->mem.debug_hooks || ptr == NULL || (unsigned)d >= RCGC_DOMAIN_COUNT)
        return;
    check_address(&rt->mem.debug_ctx[d], ptr, "rcgc_mem_debug_check");
}
