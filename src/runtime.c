/*
 * runtime.c - creating and freeing a runtime; fatal errors; thread
 * ownership checks; the heap validator's entry point.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "platform.h"
#include "pool.h"
#include "runtime.h"
#include "weakref.h"

/* ----------------------------------------------------------- fatal errors */

static rcgc_fatal_handler fatal_handler;
static void *fatal_arg;

void rcgc_set_fatal_handler(rcgc_fatal_handler fn, void *arg)
{
    fatal_handler = fn;
    fatal_arg = arg;
}

_Noreturn void rcgc_fatal(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "rcgc fatal error: %s\n", msg);
    fflush(stderr);
    if (fatal_handler)
        fatal_handler(msg, fatal_arg);
    abort();
}

const char *rcgc_strerror(int status)
{
    switch (status) {
    case RCGC_OK: return "success";
    case RCGC_ENOMEM: return "out of memory";
    case RCGC_EINVAL: return "invalid argument";
    case RCGC_ESTATE: return "not allowed in the current state";
    case RCGC_EFORMAT: return "corrupt, truncated or foreign data";
    case RCGC_EIO: return "input/output error";
    default: return "unknown error";
    }
}

/* ------------------------------------------------------ thread ownership */

#if RCGC_DEBUG >= 1
void rcgc_runtime_enter(rcgc_runtime *rt)
{
    uintptr_t self = rcgc_os_thread_id();
    uintptr_t cur = atomic_load_explicit(&rt->owner, memory_order_acquire);
    if (cur == self) {
        rt->owner_depth++;
        return;
    }
    uintptr_t expected = 0;
    if (cur != 0 || !atomic_compare_exchange_strong(&rt->owner, &expected, self)) {
        if (expected == 0)
            expected = cur;
        rcgc_fatal("runtime %p used by thread 0x%lx while thread 0x%lx is inside it: a runtime "
                   "belongs to one thread at a time (hand it over with rcgc_runtime_detach / "
                   "rcgc_runtime_attach)",
                   (void *)rt, (unsigned long)self, (unsigned long)expected);
    }
    rt->owner_depth = 1;
}

void rcgc_runtime_leave(rcgc_runtime *rt)
{
    if (--rt->owner_depth == 0)
        atomic_store_explicit(&rt->owner, 0, memory_order_release);
}
#endif

void rcgc_runtime_attach(rcgc_runtime *rt)
{
    (void)rt;
    RCGC_ENTER(rt);
}

void rcgc_runtime_detach(rcgc_runtime *rt)
{
    (void)rt;
    RCGC_LEAVE(rt);
}

/* --------------------------------------------------------- configuration */

typedef struct malloc_mode {
    const char *name;
    int libc;    /* MEM and OBJ use libc malloc instead of the pools */
    int debug;   /* CPython's debug hooks */
} malloc_mode;

static const malloc_mode modes[] = {
    {"pymalloc", 0, 0}, {"debug", 0, 1},         {"pymalloc_debug", 0, 1},
    {"malloc", 1, 0},   {"malloc_debug", 1, 1},
};

static const malloc_mode *find_mode(const char *name)
{
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(modes[i].name, name) == 0)
            return &modes[i];
    return NULL;
}

/* Parse RCGC_TRACEMALLOC: a frame count 1..65535; "" or unset means off.
 * Returns -1 for a bad value. */
static int env_frames(const char *v)
{
    if (v == NULL || *v == '\0')
        return 0;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end != '\0' || n < 1 || n > 65535)
        return -1;
    return (int)n;
}

rcgc_runtime *rcgc_runtime_new(const rcgc_config *cfg)
{
    if (cfg != NULL && cfg->size != sizeof(rcgc_config))
        return NULL;
    const char *mode_name = cfg && cfg->malloc_mode ? cfg->malloc_mode : getenv("RCGC_MALLOC");
    const malloc_mode *mode = &modes[0];
    if (mode_name != NULL && *mode_name != '\0') {
        mode = find_mode(mode_name);
        if (mode == NULL) {
            fprintf(stderr, "rcgc: RCGC_MALLOC: unknown allocator \"%s\" (expected pymalloc, "
                            "debug, pymalloc_debug, malloc or malloc_debug)\n", mode_name);
            return NULL;
        }
    }
    int frames = cfg && cfg->tracemalloc_frames ? cfg->tracemalloc_frames
                                                : env_frames(getenv("RCGC_TRACEMALLOC"));
    if (frames < 0 || frames > 65535) {
        fprintf(stderr, "rcgc: RCGC_TRACEMALLOC: the number of frames must be in 1..65535\n");
        return NULL;
    }

    /* The runtime itself comes from the configured RAW allocator. */
    rcgc_allocator raw;
    if (cfg && cfg->allocators[RCGC_DOMAIN_RAW].malloc)
        raw = cfg->allocators[RCGC_DOMAIN_RAW];
    else
        rcgc_mem_get_libc_allocator(&raw);
    rcgc_runtime *rt = raw.calloc(raw.ctx, 1, sizeof *rt);
    if (rt == NULL)
        return NULL;

    rcgc_config local;
    if (mode->libc) {
        memset(&local, 0, sizeof local);
        if (cfg)
            local = *cfg;
        local.size = sizeof local;
        for (int d = RCGC_DOMAIN_MEM; d <= RCGC_DOMAIN_OBJ; d++)
            if (!local.allocators[d].malloc)
                rcgc_mem_get_libc_allocator(&local.allocators[d]);
        cfg = &local;
    }
    if (rcgc_mem_state_init(rt, cfg) != RCGC_OK) {
        raw.free(raw.ctx, rt);
        return NULL;
    }
    rcgc_flist_init(&rt->obj.untracked);
    for (int g = 0; g < 3; g++)
        rcgc_flist_init(&rt->gc.gens[g].head);
    rcgc_flist_init(&rt->gc.permanent.head);
    if (mode->debug && rcgc_debughooks_install(rt) != RCGC_OK)
        goto fail;
    /* Room for the trashcan's deferred deallocations, so that freeing a
     * long chain does not need memory in the common case. */
    rt->obj.cappending = 256;
    rt->obj.pending = rcgc_mem_domain_alloc(rt, RCGC_DOMAIN_RAW,
                                            rt->obj.cappending * sizeof(rcgc_object *));
    if (rt->obj.pending == NULL)
        goto fail;
    if (rcgc_gc_state_init(rt) != RCGC_OK)
        goto fail;
    if (cfg && cfg->gc_disabled)
        rt->gc.enabled = 0;
    if (frames > 0 && rcgc_trace_start_from_env(rt, frames) != RCGC_OK)
        goto fail;
    return rt;

fail:
    rcgc_runtime_free(rt);
    return NULL;
}

static int untrack_all(rcgc_object *o, void *arg)
{
    rcgc_runtime *rt = arg;
    rcgc_obj_untrack(rt, o);
    return 0;
}

void rcgc_runtime_free(rcgc_runtime *rt)
{
    if (rt == NULL)
        return;
    RCGC_ENTER(rt);
    rt->freeing = 1;
    /* The final collections, the shutdown report, then every object still
     * tracked is cleared (objects the program still holds are released with
     * the runtime), so containers let go and each type's dealloc runs for the
     * objects that die (gc.c). */
    if (rt->obj.pending != NULL) {
        rcgc_gc_shutdown(rt);
        rcgc_obj_flush_pending(rt);
    }
    rcgc_obj_foreach_tracked(rt, 3, untrack_all, rt);
    rcgc_gc_state_fini(rt);
    rcgc_weak_state_fini(rt);
    /* Foreign objects the program still holds: give their memory back. */
    while (rt->obj.untracked.next && rt->obj.untracked.next != &rt->obj.untracked) {
        rcgc_foreign *f = rt->obj.untracked.next;
        rcgc_flist_remove(f);
        rt->obj.live_objects--;                     /* OC1 (runtime.h) */
        rt->mem.domains[RCGC_DOMAIN_OBJ].live++;
        rcgc_mem_domain_free(rt, RCGC_DOMAIN_OBJ, f);
    }
    rcgc_mem_domain_free(rt, RCGC_DOMAIN_RAW, rt->obj.pending);
    rt->obj.pending = NULL;
    rcgc_pool_state_fini(rt);
    rcgc_trace_state_fini(rt);
    rcgc_debughooks_fini(rt);
    RCGC_LEAVE(rt);
    rcgc_allocator raw = rt->mem.domains[RCGC_DOMAIN_RAW].base;
    raw.free(raw.ctx, rt);
}

#if RCGC_DEBUG >= 1
/* T4 (traverse.h).  At most (size - header) / pointer entries can be
 * distinct aligned fields, so the scan for the terminator is bounded even
 * when it is missing. */
void rcgc_type_check_refs(const rcgc_type *t)
{
    const uint16_t *refs = t->refs;
    const char *name = t->name ? t->name : "?";
    size_t max = t->size > sizeof(rcgc_object)
                     ? (t->size - sizeof(rcgc_object)) / sizeof(rcgc_object *)
                     : 0;
    for (size_t i = 0; refs[i] != 0; i++) {
        size_t off = refs[i];
        if (i >= max)
            rcgc_fatal("type %s: refs lists more than the %zu pointer fields an object of "
                       "size %zu has room for (missing 0 terminator?)",
                       name, max, t->size);
        if (off < sizeof(rcgc_object))
            rcgc_fatal("type %s: refs[%zu] = %zu lies in the object header (fields start at "
                       "offset %zu)", name, i, off, sizeof(rcgc_object));
        if (off % _Alignof(rcgc_object *) != 0)
            rcgc_fatal("type %s: refs[%zu] = %zu is not a pointer-aligned offset",
                       name, i, off);
        if (off + sizeof(rcgc_object *) > t->size)
            rcgc_fatal("type %s: refs[%zu] = %zu lies outside the object (size %zu)",
                       name, i, off, t->size);
        for (size_t j = 0; j < i; j++)
            if (refs[j] == off)
                rcgc_fatal("type %s: refs[%zu] = %zu repeats refs[%zu] (a field must be "
                           "listed once)", name, i, off, j);
    }
}
#endif

typedef struct validate_ctx {
    long n;
    FILE *out;
    int bad;
    int refs_tracked;   /* rt->gc.refs_tracked (G2) */
} validate_ctx;

/* O1: a tracked object is alive (refcount > 0, a real type with a
 * traverse or refs: T1) and its generation is the one being counted; O2: no scratch
 * count of the collector is left in its flags. */
static int validate_obj(rcgc_object *o, void *arg)
{
    validate_ctx *v = arg;
    v->n++;
    if (o->refcnt == 0 || o->type == NULL || o->type == RCGC_FREED_TYPE ||
        !rcgc_type_is_gc(o->type)) {
        if (v->out)
            fprintf(v->out, "rcgc_validate: tracked object %p has refcount %u and %s (O1)\n",
                    (void *)o, o->refcnt,
                    o->type == RCGC_FREED_TYPE ? "a freed header"
                                               : "a type with no traverse nor refs");
        v->bad = 1;
        return 1;
    }
    /* P5 (pool.h): the generation-0 summary covers every generation-0 object. */
    if (!(o->flags & RCGC_OF_FOREIGN) && rcgc_obj_gen(o) == 0) {
        const rcgc_pool *pool = rcgc_pool_of(o);
        unsigned i = rcgc_pool_index(pool, o);
        if (!((pool->gen0[i >> 9] >> ((i >> 3) & 63)) & 1)) {
            if (v->out)
                fprintf(v->out, "rcgc_validate: generation-0 object %p (block %u) is not in "
                                "its pool's generation-0 summary (P5)\n",
                        (void *)o, i);
            v->bad = 1;
            return 1;
        }
    }
    /* G2: the collector takes its copies for traverse-only heaps only
     * while no object with refs has been tracked. */
    if (o->type->refs != NULL && !v->refs_tracked) {
        if (v->out)
            fprintf(v->out, "rcgc_validate: tracked object %p of type %s has refs, but the "
                            "runtime has not noted one (G2)\n",
                    (void *)o, o->type->name ? o->type->name : "?");
        v->bad = 1;
        return 1;
    }
    /* C1 (gc.h): the collector's scratch counts live only inside trial
     * deletion, where no user code runs. */
    if (o->flags & RCGC_OF_GC_SCRATCH) {
        if (v->out)
            fprintf(v->out, "rcgc_validate: tracked object %p has collector scratch bits "
                            "0x%x set outside trial deletion (O2)\n",
                    (void *)o, o->flags & RCGC_OF_GC_SCRATCH);
        v->bad = 1;
        return 1;
    }
    return 0;
}

/* B1, B2, B5 (runtime.h): the birth log, read before rcgc_validate
 * settles it.  B1's other half (every unsettled object is in the log) is
 * G1 after the settle: an unsettled object missing from the log would stay
 * without its tracked bit while gens[0].nobjects counts it.  B4 is G1 after
 * the settle too: the settle adds nbirths and the last slot to
 * gens[0].nobjects, so a death that emptied an entry without lowering the
 * stored count (or popped one and lowered it) leaves generation 0's count
 * off by one there.  Entry n (n == nbirths) stands for the last slot. */
static int validate_births(rcgc_runtime *rt, FILE *out)
{
    if (rt->obj.nbirths > RCGC_BIRTHS) {
        if (out)
            fprintf(out, "rcgc_validate: the birth log holds %zu entries, more than %u (B2)\n",
                    rt->obj.nbirths, (unsigned)RCGC_BIRTHS);
        return RCGC_EFORMAT;
    }
    uint32_t n = (uint32_t)rt->obj.nbirths;
    const uint32_t must = RCGC_OF_UNSETTLED | RCGC_OF_TRACKED | RCGC_OF_GEN_MASK |
                          RCGC_OF_FOREIGN | RCGC_OF_DYING | RCGC_OF_DEFERRED;
    for (uint32_t i = 0; i <= n; i++) {
        const rcgc_object *o = i < n ? rt->births[i] : rt->obj.birth_last;
        if (o == NULL)
            continue;
        const char *why = NULL;
        rcgc_arena *a = rcgc_arena_lookup(o);
        if (a == NULL || a->rt != rt)
            why = "is not a block of this runtime's pools";
        else if (o->type == RCGC_FREED_TYPE || o->refcnt == 0)
            why = "is not a live object";
        else if ((o->flags & must) != (RCGC_OF_UNSETTLED | RCGC_OF_TRACKED))
            why = "is not an unsettled, tracked, generation-0 pooled object";
        else if (i < n ? rcgc_obj_birth_index(o->flags) != i
                       : (o->flags >> RCGC_OF_BIRTH_SHIFT) != 0)
            why = "has another index in its flags";
        else if (i < n && o == rt->obj.birth_last)
            why = "is the log's last slot too (B5)";
        else {
            const rcgc_pool *pool = rcgc_pool_of(o);
            unsigned b = rcgc_pool_index(pool, o);
            if ((pool->tracked[b >> 6] >> (b & 63)) & 1)
                why = "has its pool's tracked bit set";
            else if (rcgc_obj_birth_class(o->flags) != pool->szidx)
                why = "has another size class in its flags than its pool's";
        }
        if (why != NULL) {
            if (out && i == n)
                fprintf(out, "rcgc_validate: the birth log's last slot (%p, flags 0x%x) %s "
                             "(B1, B5)\n",
                        (const void *)o, o->flags, why);
            else if (out)
                fprintf(out, "rcgc_validate: birth log entry %u (%p, flags 0x%x) %s (B1, B2)\n",
                        i, (const void *)o, o->flags, why);
            return RCGC_EFORMAT;
        }
    }
    return RCGC_OK;
}

int rcgc_validate(rcgc_runtime *rt, FILE *out)
{
    int rc = validate_births(rt, out);
    if (rc != RCGC_OK)
        return rc;
    /* B3: the checks below read the bitmaps. */
    rcgc_obj_settle(rt);
    rc = rcgc_pool_validate(rt, out);
    if (rc != RCGC_OK)
        return rc;
    /* W1-W3: the weak reference table (docs/design-gc.md). */
    rc = rcgc_weak_validate(rt, out);
    if (rc != RCGC_OK)
        return rc;
    /* R1-R4, F1-F4: tracing's tables (src/internal/tmfast.h). */
    rc = rcgc_trace_validate(rt, out);
    if (rc != RCGC_OK)
        return rc;
    /* G1: each generation's object count is what the heap holds; G2. */
    for (unsigned g = 0; g < 4; g++) {
        validate_ctx v = {0, out, 0, rt->gc.refs_tracked};
        rcgc_obj_foreach_tracked(rt, RCGC_GEN_EXACT | g, validate_obj, &v);
        if (v.bad)
            return RCGC_EFORMAT;
        long expect = rcgc_gen_count(rt, g);
        if (v.n != expect) {
            if (out)
                fprintf(out, "rcgc_validate: generation %u holds %ld objects, counted %ld (G1)\n",
                        g, v.n, expect);
            return RCGC_EFORMAT;
        }
    }
    return RCGC_OK;
}
