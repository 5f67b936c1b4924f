/*
 * rcgc.h - reference counting, a generational cycle collector, weak
 * references and a pymalloc-style allocator for C programs.
 *
 * This is the one public header (optional parts live in sibling headers:
 * rcgc_tracemalloc.h).  Every public name starts with rcgc_ (macros RCGC_).
 * docs/design.md explains the data layout and the algorithms; the concept map
 * (README.md) maps each Python idea to the call here.
 *
 * Threads: a runtime belongs to one thread at a time (CPython's GIL model).
 * Separate runtimes run in separate threads without any lock on the hot
 * paths.  Debug builds (RCGC_DEBUG >= 1) detect a runtime entered by two
 * threads at once and abort with a message.
 *
 * Errors: calls that allocate return NULL (or a negative rcgc_status) on out
 * of memory, after calling the handler registered with
 * rcgc_set_oom_handler(); the runtime stays consistent.  Misuse that would
 * corrupt the heap (decref of a freed object, refcount below zero, freeing a
 * foreign pointer under the debug hooks) is fatal: a report on stderr names
 * the object and, when tracing is on, where it was allocated.
 */
#ifndef RCGC_H
#define RCGC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RCGC_VERSION_MAJOR 0
#define RCGC_VERSION_MINOR 1
#define RCGC_VERSION_PATCH 0
#define RCGC_VERSION "0.1.0"

#if defined(__GNUC__)
#define RCGC_API __attribute__((visibility("default")))
#define RCGC_LIKELY(x) __builtin_expect(!!(x), 1)
#define RCGC_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define RCGC_API
#define RCGC_LIKELY(x) (x)
#define RCGC_UNLIKELY(x) (x)
#endif

/* Assertion tiers, chosen when rcgc itself is built (and mirrored here for
 * the inline functions): 0 = release, 1 = API misuse, 2 = internal
 * invariants, 3 = expensive (heap validation after every collection). */
#ifndef RCGC_DEBUG
#define RCGC_DEBUG 0
#endif

/* ------------------------------------------------------------------------ */
/* Status codes                                                             */
/* ------------------------------------------------------------------------ */

typedef enum rcgc_status {
    RCGC_OK = 0,
    RCGC_ENOMEM = -1,   /* out of memory; nothing changed */
    RCGC_EINVAL = -2,   /* bad argument */
    RCGC_ESTATE = -3,   /* not allowed in the current state */
    RCGC_EFORMAT = -4,  /* corrupt, truncated or foreign input */
    RCGC_EIO = -5       /* an I/O call failed (errno tells why) */
} rcgc_status;

/* A short English description of a status code (static storage). */
RCGC_API const char *rcgc_strerror(int status);

/* ------------------------------------------------------------------------ */
/* Objects and types                                                        */
/* ------------------------------------------------------------------------ */

typedef struct rcgc_runtime rcgc_runtime;
typedef struct rcgc_type rcgc_type;

/*
 * The object header: 16 bytes, the first member of every managed struct.
 *
 *   refcnt  the number of strong references (exact: rcgc_refcount()).
 *   flags   private bits owned by rcgc (tracked, generation, finalized,
 *           has-weakrefs, collector marks).  Never write them.
 *   type    the object's static type descriptor.
 *
 * A tracked object needs no other per-object memory: the collector finds
 * pooled objects through a bitmap in their pool (docs/design.md, "Finding
 * objects without list links").
 */
typedef struct rcgc_object {
    uint32_t refcnt;
    uint32_t flags;
    const rcgc_type *type;
} rcgc_object;

/* Called by traverse for each strong reference the object holds. */
typedef int (*rcgc_visitfn)(rcgc_object *referent, void *arg);

/* Type flags. */
enum {
    /* Instances may hold references: the type has traverse and clear (or
     * refs), its objects are tracked by the collector from birth (like
     * CPython's Py_TPFLAGS_HAVE_GC).  Implied by a non-NULL traverse or
     * refs. */
    RCGC_TYPE_GC = 1u << 0,
    /* Do not track instances at creation; call rcgc_gc_track() later. */
    RCGC_TYPE_UNTRACKED_AT_BIRTH = 1u << 1
};

/*
 * A type descriptor.  Declare it static and const-correct; it must outlive
 * every object of the type.
 *
 *  name        shown in reports and debug messages.
 *  size        bytes of an instance, header included (sizeof your struct).
 *  itemsize    bytes per item for variable-size objects (rcgc_new_var), or 0.
 *  traverse    call visit(ref, arg) for every strong reference held; return
 *              the first non-zero result of visit.  Must not change any
 *              reference count.  Types with a traverse (or refs) are
 *              collected.
 *  clear       drop every strong reference the object holds (RCGC_CLEAR on
 *              each field; with refs, those refs does not list).  Called to
 *              break cycles, and at deallocation.  Must leave the object
 *              valid (fields NULL).
 *  finalize    PEP 442 finalizer: runs at most once per object, ever, before
 *              the object is cleared.  May resurrect the object by storing a
 *              new reference to it somewhere; the object then lives on.
 *  legacy_del  an old-style finalizer (CPython's tp_del): objects in cyclic
 *              trash with one are uncollectable and go to rcgc_gc_garbage().
 *              Outside cycles it runs at each deallocation, like tp_del.
 *  dealloc     release resources that are not references (buffers, file
 *              handles).  Runs last, just before the memory is freed.
 *  refs        the offsets of the object's fixed reference fields, ending
 *              with 0 (RCGC_REFS below builds it), or NULL.  Each listed
 *              field is a pointer to a managed object (rcgc_object * or a
 *              pointer to a struct that starts with one), owning a strong
 *              reference, or NULL.  A type with refs is a GC type like one
 *              with traverse: the collector visits the listed fields (NULL
 *              ones skipped), in order, then calls traverse too if the type
 *              has one (for references refs cannot list: arrays, variable
 *              parts); clearing an object sets each listed field to NULL
 *              and drops its reference (RCGC_CLEAR), then calls clear if
 *              the type has one.  So traverse and clear handle only what
 *              refs does not list.  The collector reads listed fields
 *              directly, without a call per object or per reference.
 *              Offsets are those of pointer-aligned fields after the header
 *              and inside `size`, below 65536 (they are uint16_t: a field
 *              further out needs traverse and clear; RCGC_REF refuses it at
 *              compile time), each listed once; debug builds check the rest
 *              when an object of the type is created and report misuse as a
 *              fatal error naming the type.
 */
struct rcgc_type {
    const char *name;
    size_t size;
    size_t itemsize;
    unsigned flags;
    int (*traverse)(rcgc_object *self, rcgc_visitfn visit, void *arg);
    int (*clear)(rcgc_object *self);
    void (*finalize)(rcgc_object *self);
    void (*legacy_del)(rcgc_object *self);
    void (*dealloc)(rcgc_object *self);
    const uint16_t *refs;
};

/* The offset of reference field `field` of struct `type`, for a refs array
 * written out by hand (static const uint16_t r[] = {RCGC_REF(T, a), 0};),
 * which C++ and function-scope descriptors need.  A field at offset 65536 or
 * beyond cannot be listed: the macro then fails to compile (in C with the
 * message below) instead of storing a truncated offset. */
#ifdef __cplusplus
#define RCGC_REF(type, field)                                                 \
    ((uint16_t)(offsetof(type, field) +                                       \
                0 * sizeof(char[offsetof(type, field) < 65536 ? 1 : -1])))
#else
#define RCGC_REF(type, field)                                                 \
    ((uint16_t)(offsetof(type, field) +                                       \
                0 * sizeof(struct {                                           \
                    _Static_assert(offsetof(type, field) < 65536,             \
                                   "RCGC_REF: a refs field must lie below "   \
                                   "byte 65536 of its struct");               \
                    char rcgc_ref_c_;                                         \
                })))
#endif

/* A refs array for up to 16 fields of struct `type`:
 *     .refs = RCGC_REFS(struct node, left, right),
 * (a C compound literal: for type descriptors at file scope, where it has
 * static storage). */
#define RCGC_REFS(type, ...)                                                  \
    ((const uint16_t[]){RCGC_REFS_MAP_(type, __VA_ARGS__) 0})
#define RCGC_REFS_CAT_(a, b) RCGC_REFS_CAT2_(a, b)
#define RCGC_REFS_CAT2_(a, b) a##b
#define RCGC_REFS_NTH_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15,   \
                       _16, n, ...) n
#define RCGC_REFS_COUNT_(...)                                                 \
    RCGC_REFS_NTH_(__VA_ARGS__, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define RCGC_REFS_MAP_(t, ...)                                                \
    RCGC_REFS_CAT_(RCGC_REFS_F, RCGC_REFS_COUNT_(__VA_ARGS__))(t, __VA_ARGS__)
#define RCGC_REFS_F1(t, a) RCGC_REF(t, a),
#define RCGC_REFS_F2(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F1(t, __VA_ARGS__)
#define RCGC_REFS_F3(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F2(t, __VA_ARGS__)
#define RCGC_REFS_F4(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F3(t, __VA_ARGS__)
#define RCGC_REFS_F5(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F4(t, __VA_ARGS__)
#define RCGC_REFS_F6(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F5(t, __VA_ARGS__)
#define RCGC_REFS_F7(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F6(t, __VA_ARGS__)
#define RCGC_REFS_F8(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F7(t, __VA_ARGS__)
#define RCGC_REFS_F9(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F8(t, __VA_ARGS__)
#define RCGC_REFS_F10(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F9(t, __VA_ARGS__)
#define RCGC_REFS_F11(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F10(t, __VA_ARGS__)
#define RCGC_REFS_F12(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F11(t, __VA_ARGS__)
#define RCGC_REFS_F13(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F12(t, __VA_ARGS__)
#define RCGC_REFS_F14(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F13(t, __VA_ARGS__)
#define RCGC_REFS_F15(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F14(t, __VA_ARGS__)
#define RCGC_REFS_F16(t, a, ...) RCGC_REF(t, a), RCGC_REFS_F15(t, __VA_ARGS__)

/* Header flag bits (private; documented in docs/design.md). */
#define RCGC_OF_TRACKED     (1u << 0)
#define RCGC_OF_GEN_SHIFT   1
#define RCGC_OF_GEN_MASK    (3u << 1)   /* 0, 1, 2; 3 = frozen (permanent) */
#define RCGC_OF_FINALIZED   (1u << 3)
#define RCGC_OF_WEAKREFS    (1u << 4)
#define RCGC_OF_FOREIGN     (1u << 5)   /* not in a pool: has a prefix */
#define RCGC_OF_COLLECTING  (1u << 6)
#define RCGC_OF_REACHABLE   (1u << 7)
#define RCGC_OF_MARK        (1u << 8)   /* scratch mark for collector phases */
#define RCGC_OF_DYING       (1u << 9)   /* deallocation in progress */
#define RCGC_OF_DEFERRED    (1u << 10)  /* in the trashcan, was tracked */
/* Bits 11-31 are the collector's scratch during trial deletion (no user
 * code runs then): a saturation bit, a young gather's mark of a member
 * with no reference (Y1) and a count of internal references
 * (docs/design-gc.md, "Counting internal references").  At any other time
 * they are zero but on an object not yet settled (below). */
#define RCGC_OF_GC_SATURATED (1u << 11)
#define RCGC_OF_GC_LEAF     (1u << 12)
#define RCGC_OF_GC_REFS_SHIFT 13
#define RCGC_OF_GC_SCRATCH  (~0u << 11)
/* Outside trial deletion the same bits say that a tracked object is not
 * yet settled: born on the creation's fast path, it sits in the runtime's
 * birth log, either at the index plus one in bits 20-31 or, with those bits
 * 0, in the log's last slot; its block's size class is in bits 12-17, and
 * its pool's tracked bit and counts are not written yet (B1-B5,
 * docs/design-gc.md, "Round 16a", "Round 16c" and "Round 17b").  A
 * collection settles the log before it uses the scratch bits. */
#define RCGC_OF_UNSETTLED   (1u << 11)
#define RCGC_OF_BIRTH_CLASS_SHIFT 12
#define RCGC_OF_BIRTH_CLASS_MASK  0x3fu
#define RCGC_OF_BIRTH_SHIFT 20

/* Allocation call sites: the public allocating macros pass __FILE__ and
 * __LINE__ so tracemalloc gets a frame for free. */
#define RCGC_HERE __FILE__, __LINE__

/*
 * Create an object of `type`: zeroed, refcount 1, tracked when the type has
 * a traverse (unless RCGC_TYPE_UNTRACKED_AT_BIRTH).  Returns NULL on out of
 * memory (after the OOM handler ran).  May start an automatic collection.
 */
RCGC_API rcgc_object *rcgc_new_at(rcgc_runtime *rt, const rcgc_type *type,
                                  const char *file, int line);
/* The same for a variable-size object of type->size + nitems*itemsize bytes. */
RCGC_API rcgc_object *rcgc_new_var_at(rcgc_runtime *rt, const rcgc_type *type,
                                      size_t nitems, const char *file, int line);
#define rcgc_new(rt, type) rcgc_new_at((rt), (type), RCGC_HERE)
#define rcgc_new_var(rt, type, n) rcgc_new_var_at((rt), (type), (n), RCGC_HERE)

/* Out-of-line slow paths of the inline functions below. */
RCGC_API void rcgc_dealloc(rcgc_object *o);
RCGC_API void rcgc_refcount_error(rcgc_object *o, const char *what);

/* The type pointer a freed object's header carries until its memory is
 * reused (debug builds check it on every incref/decref). */
#define RCGC_FREED_TYPE ((const rcgc_type *)(uintptr_t)0xdeadbeefdeadbee0ull)

/* The runtime an object belongs to (O(1)). */
RCGC_API rcgc_runtime *rcgc_object_runtime(const rcgc_object *o);

static inline rcgc_object *rcgc_incref(rcgc_object *o)
{
#if RCGC_DEBUG >= 1
    if (RCGC_UNLIKELY(o->refcnt == 0 || o->refcnt == UINT32_MAX ||
                      o->type == RCGC_FREED_TYPE))
        rcgc_refcount_error(o, "incref");
#endif
    o->refcnt++;
    return o;
}

static inline void rcgc_decref(rcgc_object *o)
{
#if RCGC_DEBUG >= 1
    if (RCGC_UNLIKELY(o->refcnt == 0 || o->refcnt == UINT32_MAX ||
                      o->type == RCGC_FREED_TYPE))
        rcgc_refcount_error(o, "decref");
#endif
    if (--o->refcnt == 0)
        rcgc_dealloc(o);
}

static inline rcgc_object *rcgc_xincref(rcgc_object *o)
{
    if (o)
        rcgc_incref(o);
    return o;
}

static inline void rcgc_xdecref(rcgc_object *o)
{
    if (o)
        rcgc_decref(o);
}

/* The exact number of strong references.  (Python's sys.getrefcount shows
 * one more: the reference held by its own argument.) */
static inline size_t rcgc_refcount(const rcgc_object *o)
{
    return o->refcnt;
}

/* Cast any managed struct pointer to its header. */
#define RCGC_OBJ(p) ((rcgc_object *)(p))

/* Set *pp to NULL, then drop the reference it held (safe against
 * re-entrancy: a finalizer never sees the dying reference). */
#define RCGC_CLEAR(pp)                                                        \
    do {                                                                      \
        rcgc_object *rcgc_tmp_ = (rcgc_object *)(pp);                         \
        if (rcgc_tmp_ != NULL) {                                              \
            (pp) = NULL;                                                      \
            rcgc_decref(rcgc_tmp_);                                           \
        }                                                                     \
    } while (0)

/* Replace *pp by v (whose reference is stolen), then drop the old value. */
#define RCGC_SETREF(pp, v)                                                    \
    do {                                                                      \
        rcgc_object *rcgc_old_ = (rcgc_object *)(pp);                         \
        (pp) = (v);                                                           \
        rcgc_xdecref(rcgc_old_);                                              \
    } while (0)

/* Bytes the object really costs: header, payload, any collector prefix and
 * size-class rounding (Python's sys.getsizeof includes the GC header). */
RCGC_API size_t rcgc_getsizeof(const rcgc_object *o);

/* The object's type name. */
static inline const char *rcgc_type_name(const rcgc_object *o)
{
    return o->type->name;
}

/* Print one line describing the object (address, type, refcount, flags) and,
 * when tracing is on, its allocation traceback. */
RCGC_API void rcgc_object_dump(const rcgc_object *o, FILE *out);

/* ------------------------------------------------------------------------ */
/* The runtime                                                              */
/* ------------------------------------------------------------------------ */

/* Memory domains (CPython's PYMEM_DOMAIN_RAW, _MEM and _OBJ). */
typedef enum rcgc_domain {
    RCGC_DOMAIN_RAW = 0,   /* malloc-like: big blocks, internal tables */
    RCGC_DOMAIN_MEM = 1,   /* rcgc_mem_malloc: small blocks from pools */
    RCGC_DOMAIN_OBJ = 2    /* objects made by rcgc_new */
} rcgc_domain;
#define RCGC_DOMAIN_COUNT 3

/* A pluggable allocator (CPython's PyMemAllocatorEx).  realloc(NULL, n) must
 * act as malloc; free(NULL) must do nothing. */
typedef struct rcgc_allocator {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr);
} rcgc_allocator;

/* Called when an allocation fails, before NULL is returned; `domain` and
 * `size` describe the request.  It may free memory; rcgc retries once if it
 * returns non-zero. */
typedef int (*rcgc_oom_handler)(rcgc_runtime *rt, rcgc_domain domain,
                                size_t size, void *arg);

/* Runtime options.  Zero-initialize, set `size = sizeof(rcgc_config)`, then
 * set what you need; a NULL config means all defaults. */
typedef struct rcgc_config {
    size_t size;                /* sizeof(rcgc_config): versioning */
    /* Allocators per domain; a NULL malloc member means the default
     * (RAW: libc malloc; MEM and OBJ: rcgc's pools). */
    rcgc_allocator allocators[RCGC_DOMAIN_COUNT];
    /* "debug", "malloc", "pymalloc", "malloc_debug" (RCGC_MALLOC's values) or
     * NULL to read the RCGC_MALLOC environment variable. */
    const char *malloc_mode;
    /* Start tracemalloc with this many frames (0: read RCGC_TRACEMALLOC). */
    int tracemalloc_frames;
    /* Start with automatic collection off. */
    int gc_disabled;
} rcgc_config;

/* Create a runtime.  Returns NULL on out of memory or a bad config. */
RCGC_API rcgc_runtime *rcgc_runtime_new(const rcgc_config *config);

/* Collect, finalize and free everything that can be freed; report objects
 * that could not be (CPython's "gc: N uncollectable objects at shutdown"
 * when DEBUG_UNCOLLECTABLE is set or objects remain in gc.garbage); then
 * release all memory of the runtime.  Objects still referenced by the
 * program are released with the runtime: pointers to them dangle. */
RCGC_API void rcgc_runtime_free(rcgc_runtime *rt);

RCGC_API void rcgc_set_oom_handler(rcgc_runtime *rt, rcgc_oom_handler fn,
                                   void *arg);

/* Called on fatal misuse before abort(): lets a test observe the report.
 * The default handler aborts.  A handler that returns makes rcgc call
 * abort() anyway, unless it longjmps away (tests do). */
typedef void (*rcgc_fatal_handler)(const char *message, void *arg);
RCGC_API void rcgc_set_fatal_handler(rcgc_fatal_handler fn, void *arg);

/* Debug builds: declare that the calling thread now owns `rt` (after handing
 * a runtime from one thread to another).  No-op in release builds. */
RCGC_API void rcgc_runtime_attach(rcgc_runtime *rt);
RCGC_API void rcgc_runtime_detach(rcgc_runtime *rt);

/* Check every invariant docs/design.md states about the heap (pools,
 * arenas, bitmaps, headers, generation counts).  Returns RCGC_OK or writes
 * what is wrong to `out` (if non-NULL) and returns RCGC_EFORMAT. */
RCGC_API int rcgc_validate(rcgc_runtime *rt, FILE *out);

/* ------------------------------------------------------------------------ */
/* The built-in list                                                        */
/* ------------------------------------------------------------------------ */

/* A list of strong references; a collectable object.  Stores NULL-free. */
typedef struct rcgc_list rcgc_list;

RCGC_API extern const rcgc_type rcgc_list_type;

RCGC_API rcgc_list *rcgc_list_new_at(rcgc_runtime *rt, size_t capacity,
                                     const char *file, int line);
#define rcgc_list_new(rt) rcgc_list_new_at((rt), 0, RCGC_HERE)
RCGC_API size_t rcgc_list_len(const rcgc_list *l);
/* Borrowed reference, NULL if out of range. */
RCGC_API rcgc_object *rcgc_list_get(const rcgc_list *l, size_t i);
/* Append a new reference to o.  RCGC_OK or RCGC_ENOMEM (list unchanged).
 * Growth is traced (tracemalloc) to the caller's line. */
RCGC_API int rcgc_list_append_at(rcgc_list *l, rcgc_object *o, const char *file, int line);
#define rcgc_list_append(l, o) rcgc_list_append_at((l), (o), RCGC_HERE)
/* Replace item i by a new reference to o. */
RCGC_API int rcgc_list_set(rcgc_list *l, size_t i, rcgc_object *o);
/* Insert at i (clamped to the length). */
RCGC_API int rcgc_list_insert_at(rcgc_list *l, size_t i, rcgc_object *o, const char *file,
                                 int line);
#define rcgc_list_insert(l, i, o) rcgc_list_insert_at((l), (i), (o), RCGC_HERE)
/* Remove item i and return the reference it held (owned by the caller). */
RCGC_API rcgc_object *rcgc_list_pop(rcgc_list *l, size_t i);
/* Remove the first item that is `o`; RCGC_EINVAL if absent. */
RCGC_API int rcgc_list_remove(rcgc_list *l, rcgc_object *o);
/* Index of the first item that is `o`, or -1. */
RCGC_API long rcgc_list_index(const rcgc_list *l, const rcgc_object *o);
/* Drop every item. */
RCGC_API void rcgc_list_clear(rcgc_list *l);
/* Sort by the comparator (stable). */
RCGC_API void rcgc_list_sort(rcgc_list *l,
                             int (*cmp)(const rcgc_object *, const rcgc_object *));

/* ------------------------------------------------------------------------ */
/* Memory: pools, domains, debug hooks                                      */
/* ------------------------------------------------------------------------ */

/* The MEM domain: small blocks (<= 512 B) from pools, bigger from RAW.  Like
 * PyMem_Malloc: malloc(0) returns a unique pointer; NULL on out of memory. */
RCGC_API void *rcgc_mem_malloc_at(rcgc_runtime *rt, size_t size,
                                  const char *file, int line);
RCGC_API void *rcgc_mem_calloc_at(rcgc_runtime *rt, size_t nelem, size_t elsize,
                                  const char *file, int line);
RCGC_API void *rcgc_mem_realloc_at(rcgc_runtime *rt, void *ptr, size_t size,
                                   const char *file, int line);
RCGC_API void rcgc_mem_free(rcgc_runtime *rt, void *ptr);
#define rcgc_mem_malloc(rt, n) rcgc_mem_malloc_at((rt), (n), RCGC_HERE)
#define rcgc_mem_calloc(rt, n, s) rcgc_mem_calloc_at((rt), (n), (s), RCGC_HERE)
#define rcgc_mem_realloc(rt, p, n) rcgc_mem_realloc_at((rt), (p), (n), RCGC_HERE)

/* Any domain. */
RCGC_API void *rcgc_domain_malloc_at(rcgc_runtime *rt, rcgc_domain d,
                                     size_t size, const char *file, int line);
RCGC_API void *rcgc_domain_realloc_at(rcgc_runtime *rt, rcgc_domain d,
                                      void *ptr, size_t size,
                                      const char *file, int line);
RCGC_API void rcgc_domain_free(rcgc_runtime *rt, rcgc_domain d, void *ptr);
#define rcgc_raw_malloc(rt, n) rcgc_domain_malloc_at((rt), RCGC_DOMAIN_RAW, (n), RCGC_HERE)
#define rcgc_raw_free(rt, p) rcgc_domain_free((rt), RCGC_DOMAIN_RAW, (p))

/* Replace a domain's allocator (CPython's PyMem_SetAllocator).  Only allowed
 * while the domain holds no live block (RCGC_ESTATE otherwise).  When the
 * debug hooks are on they stay on, wrapping the new allocator. */
RCGC_API int rcgc_mem_set_allocator(rcgc_runtime *rt, rcgc_domain d,
                                    const rcgc_allocator *a);
/* The domain's current allocator, outermost wrapper included. */
RCGC_API void rcgc_mem_get_allocator(rcgc_runtime *rt, rcgc_domain d,
                                     rcgc_allocator *out);
/* rcgc's own pool allocator, to reinstall or to wrap. */
RCGC_API void rcgc_mem_get_pool_allocator(rcgc_runtime *rt, rcgc_allocator *out);
/* libc's malloc family as an rcgc_allocator. */
RCGC_API void rcgc_mem_get_libc_allocator(rcgc_allocator *out);

/* Install CPython's debug hooks on all three domains (PYTHONMALLOC=debug):
 * guard bytes 0xFD on both sides, 0xCD in new blocks, 0xDD in freed ones;
 * overflow, underflow, double free, use after free, wrong-domain frees and
 * foreign pointers are fatal with CPython's report.  Only before any block is
 * allocated in a domain (RCGC_ESTATE otherwise). */
RCGC_API int rcgc_mem_setup_debug_hooks(rcgc_runtime *rt);
/* Non-zero when the debug hooks are on. */
RCGC_API int rcgc_mem_debug_hooks_enabled(const rcgc_runtime *rt);
/* Under the debug hooks: check one block's guard bytes now (0 when fine;
 * otherwise the fatal report is issued). */
RCGC_API void rcgc_mem_debug_check(rcgc_runtime *rt, rcgc_domain d, const void *ptr);

/* O(1): non-zero if p points into memory managed by any rcgc pool. */
RCGC_API int rcgc_mem_is_pool_address(const void *p);

/* Print the pools and arenas report (the layout of CPython's
 * sys._debugmallocstats()). */
RCGC_API void rcgc_mem_print_stats(rcgc_runtime *rt, FILE *out);

/* Allocator statistics (versioned: set `size` before the call). */
typedef struct rcgc_mem_stats {
    size_t size;                   /* sizeof(rcgc_mem_stats) */
    size_t arenas_allocated_total; /* arenas mapped since creation */
    size_t arenas_freed_total;     /* arenas returned to the OS */
    size_t arenas_current;
    size_t arenas_highwater;
    size_t pools_used;             /* pools with at least one live block */
    size_t pools_empty;            /* carved but empty */
    size_t blocks_allocated;       /* live pool blocks */
    size_t bytes_allocated;        /* their size-class bytes */
    size_t bytes_mapped;           /* arena bytes mapped now */
    size_t raw_blocks;             /* live blocks of the RAW fallback */
} rcgc_mem_stats;
RCGC_API int rcgc_mem_get_stats(rcgc_runtime *rt, rcgc_mem_stats *out);

/* Fault injection (tests): make allocation number `countdown` (1 = the next
 * one) fail; with `persistent` every later one fails too, until the next
 * call.  countdown 0 switches injection off.  Counts every allocation the
 * runtime makes, in every domain. */
RCGC_API void rcgc_mem_fail_after(rcgc_runtime *rt, long countdown, int persistent);
/* How many allocations have failed by injection since the last call to
 * rcgc_mem_fail_after. */
RCGC_API long rcgc_mem_failures(const rcgc_runtime *rt);

/* ------------------------------------------------------------------------ */
/* The cycle collector (Python's gc module)                                 */
/* ------------------------------------------------------------------------ */

/* gc.set_debug flags, CPython's values. */
#define RCGC_DEBUG_STATS         (1 << 0)
#define RCGC_DEBUG_COLLECTABLE   (1 << 1)
#define RCGC_DEBUG_UNCOLLECTABLE (1 << 2)
#define RCGC_DEBUG_SAVEALL       (1 << 5)
#define RCGC_DEBUG_LEAK (RCGC_DEBUG_COLLECTABLE | RCGC_DEBUG_UNCOLLECTABLE | \
                         RCGC_DEBUG_SAVEALL)

RCGC_API void rcgc_gc_enable(rcgc_runtime *rt);
RCGC_API void rcgc_gc_disable(rcgc_runtime *rt);
RCGC_API int rcgc_gc_isenabled(const rcgc_runtime *rt);

/* Collect generation `generation` (0..2) and all younger ones.  Returns the
 * number of unreachable objects found (collected + uncollectable,
 * resurrected ones excluded), 0 when a collection is already running,
 * RCGC_EINVAL for a bad generation, RCGC_ENOMEM if the collector's work
 * space could not be allocated (nothing was changed). */
RCGC_API long rcgc_gc_collect(rcgc_runtime *rt, int generation);

RCGC_API void rcgc_gc_get_count(const rcgc_runtime *rt, long counts[3]);
RCGC_API void rcgc_gc_get_threshold(const rcgc_runtime *rt, long thresholds[3]);
/* Threshold 0 of generation 0 disables automatic collection.  Negative
 * values are RCGC_EINVAL. */
RCGC_API int rcgc_gc_set_threshold(rcgc_runtime *rt, long t0, long t1, long t2);

typedef struct rcgc_gc_stats {
    long collections;
    long collected;
    long uncollectable;
} rcgc_gc_stats;
RCGC_API void rcgc_gc_get_stats(const rcgc_runtime *rt, rcgc_gc_stats stats[3]);

/* gc.garbage: a list owned by the runtime (borrowed; may be cleared). */
RCGC_API rcgc_list *rcgc_gc_garbage(rcgc_runtime *rt);

RCGC_API void rcgc_gc_set_debug(rcgc_runtime *rt, int flags);
RCGC_API int rcgc_gc_get_debug(const rcgc_runtime *rt);

/* gc.callbacks.  phase is "start" or "stop". */
typedef struct rcgc_gc_info {
    int generation;
    long collected;
    long uncollectable;
} rcgc_gc_info;
typedef void (*rcgc_gc_callback)(rcgc_runtime *rt, const char *phase,
                                 const rcgc_gc_info *info, void *arg);
RCGC_API int rcgc_gc_callback_add(rcgc_runtime *rt, rcgc_gc_callback fn, void *arg);
RCGC_API int rcgc_gc_callback_remove(rcgc_runtime *rt, rcgc_gc_callback fn, void *arg);

/* New lists (NULL on out of memory).  generation -1 means all. */
RCGC_API rcgc_list *rcgc_gc_get_objects(rcgc_runtime *rt, int generation);
RCGC_API rcgc_list *rcgc_gc_get_referrers(rcgc_runtime *rt,
                                          rcgc_object *const *objs, size_t n);
RCGC_API rcgc_list *rcgc_gc_get_referents(rcgc_runtime *rt,
                                          rcgc_object *const *objs, size_t n);

RCGC_API int rcgc_gc_is_tracked(const rcgc_object *o);
RCGC_API int rcgc_gc_is_finalized(const rcgc_object *o);
/* Track / untrack: only for objects of GC types; no-ops when already so. */
RCGC_API void rcgc_gc_track(rcgc_object *o);
RCGC_API void rcgc_gc_untrack(rcgc_object *o);

/* gc.freeze(): move every tracked object to the permanent generation, which
 * no collection touches (fork and copy-on-write). */
RCGC_API void rcgc_gc_freeze(rcgc_runtime *rt);
RCGC_API void rcgc_gc_unfreeze(rcgc_runtime *rt);
RCGC_API long rcgc_gc_get_freeze_count(const rcgc_runtime *rt);

/* ------------------------------------------------------------------------ */
/* Weak references                                                          */
/* ------------------------------------------------------------------------ */

typedef struct rcgc_weakref rcgc_weakref;
RCGC_API extern const rcgc_type rcgc_weakref_type;

/* Called when the referent dies, with the weak reference already dead;
 * `arg` is the value given at creation. */
typedef void (*rcgc_weakref_callback)(rcgc_weakref *w, void *arg);

/* A new weak reference to `target` (any object).  With a callback, `arg` is
 * passed to it; if `arg_obj` is non-NULL the weak reference holds a strong
 * reference to it (and traverses it) until the callback has run - the way a
 * Python callback keeps its closure alive.  NULL on out of memory. */
RCGC_API rcgc_weakref *rcgc_weakref_new(rcgc_object *target,
                                        rcgc_weakref_callback callback,
                                        void *arg);
RCGC_API rcgc_weakref *rcgc_weakref_new_obj(rcgc_object *target,
                                            rcgc_weakref_callback callback,
                                            rcgc_object *arg_obj);
/* A new reference to the referent, or NULL when it is dead. */
RCGC_API rcgc_object *rcgc_weakref_get(rcgc_weakref *w);
/* The referent without a new reference (NULL when dead). */
RCGC_API rcgc_object *rcgc_weakref_peek(const rcgc_weakref *w);
RCGC_API size_t rcgc_weakref_count(const rcgc_object *o);
/* A new list of the weak references to o (NULL on out of memory). */
RCGC_API rcgc_list *rcgc_weakref_list(rcgc_object *o);

/* weakref.finalize: call fn(arg) once when obj dies, or at runtime shutdown
 * (atexit), or when rcgc_weakref_finalizer_call() is called, whichever is
 * first.  Like Python's finalize object, the handle has two owners: the
 * runtime, until the finalizer has been called or detached, and the caller,
 * until rcgc_weakref_finalizer_release() (Python's `del f`; it may come at
 * once - the finalizer still fires).  NULL on out of memory. */
typedef struct rcgc_finalizer rcgc_finalizer;
RCGC_API rcgc_finalizer *rcgc_weakref_finalize(rcgc_object *obj,
                                               void (*fn)(void *arg), void *arg);
/* Call it now if still alive; returns 1 if it ran, 0 if already dead. */
RCGC_API int rcgc_weakref_finalizer_call(rcgc_finalizer *f);
/* Cancel it without calling; returns 1 if it was alive. */
RCGC_API int rcgc_weakref_finalizer_detach(rcgc_finalizer *f);
RCGC_API int rcgc_weakref_finalizer_alive(const rcgc_finalizer *f);
/* The caller lets go of its handle (which must not be used afterwards). */
RCGC_API void rcgc_weakref_finalizer_release(rcgc_finalizer *f);

/* A weak-valued map from string keys to objects (WeakValueDictionary):
 * entries vanish when their value dies.  A collectable object itself. */
typedef struct rcgc_weakmap rcgc_weakmap;
RCGC_API rcgc_weakmap *rcgc_weakmap_new(rcgc_runtime *rt);
/* Keys are copied.  RCGC_OK or RCGC_ENOMEM (map unchanged). */
RCGC_API int rcgc_weakmap_set(rcgc_weakmap *m, const char *key, rcgc_object *value);
/* A new reference to the live value, or NULL. */
RCGC_API rcgc_object *rcgc_weakmap_get(rcgc_weakmap *m, const char *key);
RCGC_API int rcgc_weakmap_delete(rcgc_weakmap *m, const char *key);
/* Live entries. */
RCGC_API size_t rcgc_weakmap_len(rcgc_weakmap *m);

#ifdef __cplusplus
}
#endif

#endif /* RCGC_H */
