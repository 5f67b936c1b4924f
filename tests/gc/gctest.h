/* Helpers for the collector's unit tests: a node type with four reference
 * slots and hooks, logs of finalizer / legacy finalizer / free calls by node
 * id, and a fresh runtime per test (automatic collection off). */
#ifndef RCGC_GCTEST_H
#define RCGC_GCTEST_H
#include "testutil.h"

#define GN_SLOTS 4

typedef struct gnode {
    rcgc_object ob;
    rcgc_object *s[GN_SLOTS];
    int id;
    void (*on_finalize)(struct gnode *self);
} gnode;

typedef struct idlog {
    int ids[1 << 16];
    int n;
} idlog;

static rcgc_runtime *rt;
static idlog fin_log, del_log, free_log;
static rcgc_list *saved;   /* where resurrecting finalizers put their node */

static inline void log_add(idlog *l, int id)
{
    if (l->n < (int)(sizeof l->ids / sizeof l->ids[0]))
        l->ids[l->n++] = id;
}

static inline int log_count(const idlog *l, int id)
{
    int c = 0;
    for (int i = 0; i < l->n; i++)
        c += l->ids[i] == id;
    return c;
}

static inline int gn_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    gnode *n = (gnode *)self;
    for (int i = 0; i < GN_SLOTS; i++) {
        if (n->s[i]) {
            int rc = visit(n->s[i], arg);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static inline int gn_clear(rcgc_object *self)
{
    gnode *n = (gnode *)self;
    for (int i = 0; i < GN_SLOTS; i++)
        RCGC_CLEAR(n->s[i]);
    return 0;
}

static inline void gn_dealloc(rcgc_object *self)
{
    log_add(&free_log, ((gnode *)self)->id);
}

static inline void gn_finalize(rcgc_object *self)
{
    gnode *n = (gnode *)self;
    log_add(&fin_log, n->id);
    if (n->on_finalize)
        n->on_finalize(n);
}

static inline void gn_resurrect(rcgc_object *self)
{
    gn_finalize(self);
    rcgc_list_append(saved, self);
}

static inline void gn_legacy(rcgc_object *self)
{
    log_add(&del_log, ((gnode *)self)->id);
}

static const rcgc_type plain_type = {
    .name = "Plain", .size = sizeof(gnode), .traverse = gn_traverse, .clear = gn_clear,
    .dealloc = gn_dealloc};
static const rcgc_type fin_type = {
    .name = "Fin", .size = sizeof(gnode), .traverse = gn_traverse, .clear = gn_clear,
    .finalize = gn_finalize, .dealloc = gn_dealloc};
static const rcgc_type res_type = {
    .name = "Res", .size = sizeof(gnode), .traverse = gn_traverse, .clear = gn_clear,
    .finalize = gn_resurrect, .dealloc = gn_dealloc};
static const rcgc_type legacy_type = {
    .name = "Legacy", .size = sizeof(gnode), .traverse = gn_traverse, .clear = gn_clear,
    .legacy_del = gn_legacy, .dealloc = gn_dealloc};

static inline gnode *gn_new(const rcgc_type *t, int id)
{
    gnode *n = (gnode *)rcgc_new(rt, t);
    assert_non_null(n);
    n->id = id;
    return n;
}

/* n->s[slot] = a new reference to to (dropping what was there). */
static inline void gn_set(gnode *n, int slot, gnode *to)
{
    RCGC_SETREF(n->s[slot], to ? rcgc_incref(RCGC_OBJ(to)) : NULL);
}

static inline void gn_drop(gnode *n)
{
    rcgc_decref(RCGC_OBJ(n));
}

static inline long collect(int gen)
{
    return rcgc_gc_collect(rt, gen);
}

static inline int gc_setup(void **state)
{
    (void)state;
    rcgc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.size = sizeof cfg;
    cfg.gc_disabled = 1;
    fin_log.n = del_log.n = free_log.n = 0;
    rt = rcgc_runtime_new(&cfg);
    if (rt == NULL)
        return -1;
    saved = rcgc_list_new(rt);
    return saved ? 0 : -1;
}

static inline int gc_teardown(void **state)
{
    (void)state;
    rcgc_list_clear(saved);
    RCGC_CLEAR(saved);
    rcgc_gc_set_debug(rt, 0);
    if (rcgc_gc_garbage(rt))
        rcgc_list_clear(rcgc_gc_garbage(rt));
    rcgc_gc_collect(rt, 2);
    int ok = rcgc_validate(rt, stderr) == RCGC_OK;
    rcgc_runtime_free(rt);
    rt = NULL;
    return ok ? 0 : -1;
}

/* A cycle of two nodes, a (type ta, tagged ida) and b (tb, idb), dropped
 * at once: cyclic garbage for the next collection.  Returns a, borrowed
 * (b holds it until a collection frees or keeps the pair). */
static inline gnode *make_garbage_pair(const rcgc_type *ta, int ida, const rcgc_type *tb,
                                       int idb)
{
    gnode *a = gn_new(ta, ida), *b = gn_new(tb, idb);
    gn_set(a, 0, b);
    gn_set(b, 0, a);
    gn_drop(a);
    gn_drop(b);
    return a;
}

/* n cycles of two plain nodes (tagged id). */
static inline void make_garbage_cycles(int n, int id)
{
    for (int i = 0; i < n; i++)
        make_garbage_pair(&plain_type, id, &plain_type, id);
}

#define GC_TEST(f) cmocka_unit_test_setup_teardown(f, gc_setup, gc_teardown)

#endif
