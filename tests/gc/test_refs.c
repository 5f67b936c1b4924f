/* Types that declare their reference fields (rcgc_type.refs): the
 * collector, the gc module, deallocation, finalizers and weak references
 * treat them as they treat types with traverse and clear (traverse.h,
 * T1-T4), and debug builds reject a broken refs array. */
#include "gctest.h"

#include <stddef.h>

/* A node with two declared fields and a field that is not a reference. */
typedef struct rnode {
    rcgc_object ob;
    long id;
    rcgc_object *left;
    rcgc_object *right;
    void (*on_finalize)(struct rnode *self);
} rnode;

static void rn_dealloc(rcgc_object *self)
{
    log_add(&free_log, (int)((rnode *)self)->id);
}

static void rn_resurrect(rcgc_object *self)
{
    rnode *n = (rnode *)self;
    log_add(&fin_log, (int)n->id);
    if (n->on_finalize)
        n->on_finalize(n);
    rcgc_list_append(saved, self);
}

static void rn_finalize(rcgc_object *self)
{
    log_add(&fin_log, (int)((rnode *)self)->id);
}

static const rcgc_type rnode_type = {
    .name = "RNode", .size = sizeof(rnode), .dealloc = rn_dealloc,
    .refs = RCGC_REFS(rnode, left, right)};
static const rcgc_type rnode_fin_type = {
    .name = "RNodeFin", .size = sizeof(rnode), .dealloc = rn_dealloc,
    .finalize = rn_finalize, .refs = RCGC_REFS(rnode, left, right)};
static const rcgc_type rnode_res_type = {
    .name = "RNodeRes", .size = sizeof(rnode), .dealloc = rn_dealloc,
    .finalize = rn_resurrect, .refs = RCGC_REFS(rnode, left, right)};
static const rcgc_type rnode_untracked_type = {
    .name = "RNodeLate", .size = sizeof(rnode), .flags = RCGC_TYPE_UNTRACKED_AT_BIRTH,
    .dealloc = rn_dealloc, .refs = RCGC_REFS(rnode, left, right)};

/* refs plus traverse and clear: one declared field (head) and a variable
 * part of n references after it, which only traverse and clear know. */
typedef struct rvar {
    rcgc_object ob;
    rcgc_object *head;
    long id;
    size_t n;
    int cleared_seen_head;   /* 1: every clear ran with head NULL (T3) */
    rcgc_object *items[];
} rvar;

static int rvar_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    rvar *v = (rvar *)self;
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i]) {
            int rc = visit(v->items[i], arg);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int rvar_clear(rcgc_object *self)
{
    rvar *v = (rvar *)self;
    /* -1 sticks: some call of clear saw the declared field still set. */
    if (v->head != NULL)
        v->cleared_seen_head = -1;
    else if (v->cleared_seen_head == 0)
        v->cleared_seen_head = 1;
    for (size_t i = 0; i < v->n; i++)
        RCGC_CLEAR(v->items[i]);
    return 0;
}

static void rvar_dealloc(rcgc_object *self)
{
    rvar *v = (rvar *)self;
    /* T3: every listed field is NULL before clear runs. */
    if (v->cleared_seen_head != 1)
        log_add(&del_log, (int)v->id);
    log_add(&free_log, (int)v->id);
}

/* Written out by hand with RCGC_REF (what C++ and function-scope
 * descriptors use). */
static const uint16_t rvar_refs[] = {RCGC_REF(rvar, head), 0};
static const rcgc_type rvar_type = {
    .name = "RVar", .size = sizeof(rvar), .itemsize = sizeof(rcgc_object *),
    .traverse = rvar_traverse, .clear = rvar_clear, .dealloc = rvar_dealloc,
    .refs = rvar_refs};

static rnode *rn_new(const rcgc_type *t, long id)
{
    rnode *n = (rnode *)rcgc_new(rt, t);
    assert_non_null(n);
    n->id = id;
    return n;
}

static rvar *rv_new(long id, size_t n)
{
    rvar *v = (rvar *)rcgc_new_var(rt, &rvar_type, n);
    assert_non_null(v);
    v->id = id;
    v->n = n;
    return v;
}

static void drop(void *o)
{
    rcgc_decref(RCGC_OBJ(o));
}

/* *slot = a new reference to to. */
static void setref(rcgc_object **slot, void *to)
{
    RCGC_SETREF(*slot, to ? rcgc_incref(RCGC_OBJ(to)) : NULL);
}

static void test_refs_macro(void **state)
{
    (void)state;
    const uint16_t *r = rnode_type.refs;
    assert_int_equal(r[0], offsetof(rnode, left));
    assert_int_equal(r[1], offsetof(rnode, right));
    assert_int_equal(r[2], 0);
    typedef struct wide {
        rcgc_object ob;
        rcgc_object *f[16];
    } wide;
    const uint16_t *w = RCGC_REFS(wide, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8],
                                  f[9], f[10], f[11], f[12], f[13], f[14], f[15]);
    for (int i = 0; i < 16; i++)
        assert_int_equal(w[i], offsetof(wide, f) + (size_t)i * sizeof(rcgc_object *));
    assert_int_equal(w[16], 0);
}

/* T1: a refs-only type is a GC type: tracked at birth, counted, and a
 * cycle of them is found by a young and by a full collection. */
static void test_refs_cycle_collected(void **state)
{
    (void)state;
    long before[3], after[3];
    rcgc_gc_get_count(rt, before);
    rnode *a = rn_new(&rnode_type, 1);
    assert_true(rcgc_gc_is_tracked(RCGC_OBJ(a)));
    rcgc_gc_get_count(rt, after);
    assert_int_equal(after[0], before[0] + 1);
    rnode *b = rn_new(&rnode_type, 2);
    setref(&a->left, b);
    setref(&b->right, a);
    drop(a);
    drop(b);
    assert_int_equal(free_log.n, 0);
    assert_int_equal(collect(0), 2);
    assert_int_equal(log_count(&free_log, 1), 1);
    assert_int_equal(log_count(&free_log, 2), 1);

    /* The same in generation 2. */
    a = rn_new(&rnode_type, 3);
    b = rn_new(&rnode_type, 4);
    setref(&a->right, b);
    setref(&b->left, a);
    setref(&b->right, b);
    assert_int_equal(collect(2), 0);
    drop(a);
    drop(b);
    assert_int_equal(collect(1), 0);
    assert_int_equal(collect(2), 2);
    assert_int_equal(log_count(&free_log, 3), 1);
    assert_int_equal(log_count(&free_log, 4), 1);
}

/* Members referenced from outside, and what their fields reach, survive;
 * what only a garbage cycle reaches does not. */
static void test_refs_survivors_kept(void **state)
{
    (void)state;
    rnode *root = rn_new(&rnode_type, 1);
    rnode *x = rn_new(&rnode_type, 2);
    rnode *y = rn_new(&rnode_type, 3);
    setref(&root->right, x);   /* root -> x <-> y */
    setref(&x->left, y);
    setref(&y->left, x);
    drop(x);
    drop(y);
    rnode *g1 = rn_new(&rnode_type, 4);
    rnode *g2 = rn_new(&rnode_type, 5);
    setref(&g1->left, g2);
    setref(&g2->right, g1);
    setref(&g2->left, x);      /* garbage pointing into the live part */
    drop(g1);
    drop(g2);
    assert_int_equal(collect(0), 2);
    assert_int_equal(free_log.n, 2);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(x)), 2);
    assert_ptr_equal(root->right, RCGC_OBJ(x));
    assert_ptr_equal(x->left, RCGC_OBJ(y));
    assert_int_equal(collect(2), 0);
    assert_int_equal(free_log.n, 2);
    drop(root);
    assert_int_equal(collect(2), 2);
    assert_int_equal(free_log.n, 5);
}

/* Big sets: a garbage ring bigger than the delete's cache limit (pool by
 * pool delete), and a live wide tree that full collections mark through
 * the prefetch ring. */
static void test_refs_big_sets(void **state)
{
    (void)state;
    enum { N = 20000 };
    rnode *head = rn_new(&rnode_type, 0);
    rnode *prev = head;
    for (long i = 1; i < N; i++) {
        rnode *n = rn_new(&rnode_type, i);
        prev->right = RCGC_OBJ(n);
        setref(&n->left, prev);
        prev = n;
    }
    setref(&prev->right, head);
    setref(&head->left, prev);
    assert_int_equal(collect(2), 0);
    drop(head);
    assert_int_equal(collect(2), N);
    assert_int_equal(free_log.n, N);

    /* A live complete binary tree of depth 14 (held by its root)... */
    free_log.n = 0;
    rnode *nodes[(1 << 15) - 1];
    const int nn = (int)(sizeof nodes / sizeof nodes[0]);
    for (int i = 0; i < nn; i++)
        nodes[i] = rn_new(&rnode_type, i);
    for (int i = nn - 1; i > 0; i--)
        setref(i & 1 ? &nodes[(i - 1) / 2]->left : &nodes[(i - 1) / 2]->right, nodes[i]);
    for (int i = 1; i < nn; i++)
        drop(nodes[i]);
    for (int rep = 0; rep < 3; rep++)
        assert_int_equal(collect(2), 0);
    assert_int_equal(free_log.n, 0);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(nodes[nn - 1])), 1);
    /* ... and a cycle through a leaf back to the root: garbage once the
     * root's reference goes. */
    setref(&nodes[nn - 1]->left, nodes[0]);
    drop(nodes[0]);
    assert_int_equal(collect(2), nn);
    assert_int_equal(free_log.n, nn);
}

/* Shapes the collector's loops handle apart (traverse.h, RC1): one and two
 * fields (cached), three fields, refs with a clear function, refs with a
 * traverse, and a traverse-only type, mixed in one pool-sized heap in
 * no type order, live and then garbage, in young and full collections. */
typedef struct mnode {
    rcgc_object ob;
    rcgc_object *f[3];
    long id;
    int cleared;   /* its type's clear ran */
} mnode;

static int mn_clears;
static int mn_clear(rcgc_object *self)
{
    mnode *m = (mnode *)self;
    /* T3: the listed fields are NULL by now. */
    if (m->f[0] != NULL || m->f[1] != NULL)
        log_add(&del_log, (int)m->id);
    m->cleared = 1;
    mn_clears++;
    return 0;
}

/* The same for a type whose traverse has f[2]: clear drops it. */
static int mn_clear2(rcgc_object *self)
{
    mn_clear(self);
    RCGC_CLEAR(((mnode *)self)->f[2]);
    return 0;
}

static int mn_traverse2(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    mnode *m = (mnode *)self;
    return m->f[2] ? visit(m->f[2], arg) : 0;
}

static int mn_traverse_all(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    mnode *m = (mnode *)self;
    for (int i = 0; i < 3; i++) {
        int rc = m->f[i] ? visit(m->f[i], arg) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

static int mn_clear_all(rcgc_object *self)
{
    mnode *m = (mnode *)self;
    m->cleared = 1;
    for (int i = 0; i < 3; i++)
        RCGC_CLEAR(m->f[i]);
    return 0;
}

static void mn_dealloc(rcgc_object *self)
{
    mnode *m = (mnode *)self;
    /* A type with clear had it called (T3), on every path. */
    if (self->type->clear != NULL && !m->cleared)
        log_add(&del_log, (int)m->id);
    log_add(&free_log, (int)m->id);
}

/* A type with refs and traverse but no clear: its traversed field f[2] is
 * dropped by its dealloc. */
static void mn_dealloc_drop(rcgc_object *self)
{
    RCGC_CLEAR(((mnode *)self)->f[2]);
    mn_dealloc(self);
}

/* How many of the fields f[0..2] each type holds references in. */
static const int mn_nfields[] = {1, 2, 3, 2, 3, 3, 3};
static const rcgc_type mn_types[] = {
    {.name = "M1", .size = sizeof(mnode), .dealloc = mn_dealloc, .refs = RCGC_REFS(mnode, f[0])},
    {.name = "M2", .size = sizeof(mnode), .dealloc = mn_dealloc,
     .refs = RCGC_REFS(mnode, f[1], f[0])},
    {.name = "M3", .size = sizeof(mnode), .dealloc = mn_dealloc,
     .refs = RCGC_REFS(mnode, f[0], f[1], f[2])},
    {.name = "M2Clear", .size = sizeof(mnode), .dealloc = mn_dealloc, .clear = mn_clear,
     .refs = RCGC_REFS(mnode, f[0], f[1])},
    {.name = "M2Trav", .size = sizeof(mnode), .dealloc = mn_dealloc, .clear = mn_clear2,
     .traverse = mn_traverse2, .refs = RCGC_REFS(mnode, f[0], f[1])},
    {.name = "MTrav", .size = sizeof(mnode), .dealloc = mn_dealloc,
     .traverse = mn_traverse_all, .clear = mn_clear_all},
    {.name = "M2TravNoClear", .size = sizeof(mnode), .dealloc = mn_dealloc_drop,
     .traverse = mn_traverse2, .refs = RCGC_REFS(mnode, f[0], f[1])},
};
enum { MN_NTYPES = sizeof mn_types / sizeof mn_types[0] };

static void test_refs_mixed_shapes(void **state)
{
    (void)state;
    enum { N = 12000 };
    mnode **m = calloc(N, sizeof *m);
    assert_non_null(m);
    mn_clears = 0;
    unsigned seed = 12345;
    for (long i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        m[i] = (mnode *)rcgc_new(rt, &mn_types[(seed >> 16) % MN_NTYPES]);
        assert_non_null(m[i]);
        m[i]->id = i;
    }
    /* Every field a type holds points somewhere: the first at the next
     * node (one chain through all), the others at random nodes. */
    for (long i = 0; i < N; i++) {
        int nf = mn_nfields[m[i]->ob.type - mn_types];
        setref(&m[i]->f[0], m[(i + 1) % N]);
        for (int k = 1; k < nf; k++) {
            seed = seed * 1103515245u + 12345u;
            setref(&m[i]->f[k], m[(seed >> 8) % N]);
        }
    }
    mnode *root = m[0];
    rcgc_incref(RCGC_OBJ(root));
    for (long i = 0; i < N; i++)
        drop(m[i]);
    /* Live: young then full collections find nothing. */
    assert_int_equal(collect(0), 0);
    assert_int_equal(collect(2), 0);
    assert_int_equal(collect(2), 0);
    assert_int_equal(free_log.n, 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    /* Garbage: the whole heap at once, every type's fields cleared. */
    drop(root);
    assert_int_equal(collect(2), N);
    assert_int_equal(free_log.n, N);
    assert_true(mn_clears > 0);
    assert_int_equal(del_log.n, 0);

    /* A small young set of each shape (the small delete). */
    free_log.n = 0;
    for (int t = 0; t < MN_NTYPES; t++) {
        mnode *a = (mnode *)rcgc_new(rt, &mn_types[t]);
        mnode *b = (mnode *)rcgc_new(rt, &mn_types[(t + 1) % MN_NTYPES]);
        a->id = 2 * t;
        b->id = 2 * t + 1;
        setref(&a->f[0], b);
        setref(&b->f[0], a);
        drop(a);
        drop(b);
    }
    assert_int_equal(collect(0), 2 * MN_NTYPES);
    assert_int_equal(free_log.n, 2 * MN_NTYPES);
    assert_int_equal(del_log.n, 0);
    free(m);
}

/* get_referents lists the fields in refs order (NULL ones skipped), then
 * what traverse gives; get_referrers finds objects through their fields;
 * is_tracked and gc_track follow T1. */
static void test_refs_gc_module(void **state)
{
    (void)state;
    rnode *a = rn_new(&rnode_type, 1);
    rnode *b = rn_new(&rnode_type, 2);
    rnode *c = rn_new(&rnode_type, 3);
    setref(&a->left, b);
    setref(&a->right, c);
    rcgc_object *objs[1] = {RCGC_OBJ(a)};
    rcgc_list *l = rcgc_gc_get_referents(rt, objs, 1);
    assert_non_null(l);
    assert_int_equal(rcgc_list_len(l), 2);
    assert_ptr_equal(rcgc_list_get(l, 0), RCGC_OBJ(b));
    assert_ptr_equal(rcgc_list_get(l, 1), RCGC_OBJ(c));
    rcgc_decref(RCGC_OBJ(l));
    RCGC_CLEAR(a->left);
    l = rcgc_gc_get_referents(rt, objs, 1);
    assert_int_equal(rcgc_list_len(l), 1);
    assert_ptr_equal(rcgc_list_get(l, 0), RCGC_OBJ(c));
    rcgc_decref(RCGC_OBJ(l));

    rvar *v = rv_new(4, 3);
    setref(&v->head, c);
    setref(&v->items[0], b);
    setref(&v->items[2], a);
    objs[0] = RCGC_OBJ(v);
    l = rcgc_gc_get_referents(rt, objs, 1);
    assert_int_equal(rcgc_list_len(l), 3);
    assert_ptr_equal(rcgc_list_get(l, 0), RCGC_OBJ(c));
    assert_ptr_equal(rcgc_list_get(l, 1), RCGC_OBJ(b));
    assert_ptr_equal(rcgc_list_get(l, 2), RCGC_OBJ(a));
    rcgc_decref(RCGC_OBJ(l));

    /* Referrers of c: a (a field) and v (its declared head). */
    objs[0] = RCGC_OBJ(c);
    l = rcgc_gc_get_referrers(rt, objs, 1);
    assert_non_null(l);
    assert_int_equal(rcgc_list_len(l), 2);
    assert_true(rcgc_list_index(l, RCGC_OBJ(a)) >= 0);
    assert_true(rcgc_list_index(l, RCGC_OBJ(v)) >= 0);
    rcgc_decref(RCGC_OBJ(l));
    /* Referrers of b: only v's variable part now. */
    objs[0] = RCGC_OBJ(b);
    l = rcgc_gc_get_referrers(rt, objs, 1);
    assert_int_equal(rcgc_list_len(l), 1);
    assert_ptr_equal(rcgc_list_get(l, 0), RCGC_OBJ(v));
    rcgc_decref(RCGC_OBJ(l));

    /* Untracked at birth, tracked on request (a GC type by its refs). */
    rnode *late = rn_new(&rnode_untracked_type, 5);
    assert_false(rcgc_gc_is_tracked(RCGC_OBJ(late)));
    rcgc_gc_track(RCGC_OBJ(late));
    assert_true(rcgc_gc_is_tracked(RCGC_OBJ(late)));
    setref(&late->left, late);
    drop(late);
    assert_int_equal(collect(2), 1);
    assert_int_equal(log_count(&free_log, 5), 1);

    drop(v);
    drop(a);
    drop(b);
    drop(c);
    assert_int_equal(collect(2), 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
}

/* T3 at deallocation: the fields' references are dropped (NULL first),
 * then clear runs for the rest. */
static void test_refs_clear_at_dealloc(void **state)
{
    (void)state;
    rnode *a = rn_new(&rnode_type, 1);
    rnode *b = rn_new(&rnode_type, 2);
    rnode *c = rn_new(&rnode_type, 3);
    setref(&a->left, b);
    setref(&a->right, c);
    drop(b);
    drop(c);
    assert_int_equal(free_log.n, 0);
    drop(a);   /* frees a, then b and c through its fields */
    assert_int_equal(free_log.n, 3);
    assert_int_equal(log_count(&free_log, 2), 1);
    assert_int_equal(log_count(&free_log, 3), 1);

    rvar *v = rv_new(4, 2);
    rnode *h = rn_new(&rnode_type, 5);
    rnode *i = rn_new(&rnode_type, 6);
    v->head = RCGC_OBJ(h);
    v->items[1] = RCGC_OBJ(i);
    drop(v);
    assert_int_equal(free_log.n, 6);
    assert_int_equal(log_count(&free_log, 5), 1);
    assert_int_equal(log_count(&free_log, 6), 1);
    assert_int_equal(del_log.n, 0);   /* clear saw head NULL */

    /* The collector's clear step, refs + traverse: a cycle through the
     * declared field and one through the variable part. */
    v = rv_new(7, 1);
    rvar *w = rv_new(8, 1);
    setref(&v->head, w);
    setref(&w->items[0], v);
    drop(v);
    drop(w);
    assert_int_equal(collect(0), 2);
    assert_int_equal(log_count(&free_log, 7), 1);
    assert_int_equal(log_count(&free_log, 8), 1);
    assert_int_equal(del_log.n, 0);
}

static void remember_child(rnode *self)
{
    /* The finalizer sees its fields intact (nothing cleared yet). */
    assert_non_null(self->left);
}

/* PEP 442 with refs types: finalizers run once, before any field is
 * cleared; a resurrected object keeps its fields and what they reach. */
static void test_refs_finalizers_resurrection(void **state)
{
    (void)state;
    rnode *a = rn_new(&rnode_fin_type, 1);
    rnode *b = rn_new(&rnode_res_type, 2);
    b->on_finalize = remember_child;
    rnode *c = rn_new(&rnode_type, 3);
    setref(&a->left, b);
    setref(&b->left, c);
    setref(&c->left, a);
    drop(a);
    drop(b);
    drop(c);
    /* b resurrects (saved holds it): the whole cycle lives on. */
    assert_int_equal(collect(2), 0);
    assert_int_equal(log_count(&fin_log, 1), 1);
    assert_int_equal(log_count(&fin_log, 2), 1);
    assert_int_equal(free_log.n, 0);
    assert_true(rcgc_gc_is_finalized(RCGC_OBJ(b)));
    assert_ptr_equal(b->left, RCGC_OBJ(c));
    assert_ptr_equal(c->left, RCGC_OBJ(a));
    /* Dropped again: no finalizer runs twice, all three are freed. */
    rcgc_list_clear(saved);
    assert_int_equal(collect(2), 3);
    assert_int_equal(fin_log.n, 2);
    assert_int_equal(free_log.n, 3);
}

static int wr_calls;
static void wr_callback(rcgc_weakref *w, void *arg)
{
    (void)arg;
    assert_null(rcgc_weakref_peek(w));
    wr_calls++;
}

/* Weak references to refs objects die with their cycle; callbacks run. */
static void test_refs_weakrefs(void **state)
{
    (void)state;
    wr_calls = 0;
    rnode *a = rn_new(&rnode_type, 1);
    rnode *b = rn_new(&rnode_type, 2);
    setref(&a->left, b);
    setref(&b->left, a);
    rcgc_weakref *wa = rcgc_weakref_new(RCGC_OBJ(a), wr_callback, NULL);
    rcgc_weakref *wb = rcgc_weakref_new(RCGC_OBJ(b), NULL, NULL);
    assert_non_null(wa);
    assert_non_null(wb);
    assert_int_equal(collect(2), 0);
    assert_ptr_equal(rcgc_weakref_peek(wa), RCGC_OBJ(a));
    drop(a);
    drop(b);
    assert_int_equal(collect(2), 2);
    assert_null(rcgc_weakref_peek(wa));
    assert_null(rcgc_weakref_peek(wb));
    assert_int_equal(wr_calls, 1);
    assert_int_equal(free_log.n, 2);
    rcgc_decref(RCGC_OBJ(wa));
    rcgc_decref(RCGC_OBJ(wb));
}

/* T4 in debug builds: a broken refs array is a fatal error naming the
 * type, at the first creation. */
#if RCGC_DEBUG >= 1
typedef struct bad {
    rcgc_object ob;
    rcgc_object *a;
    char c[4];
} bad;
static const uint16_t refs_in_header[] = {8, 0};
static const uint16_t refs_unaligned[] = {offsetof(bad, c) + 1, 0};
static const uint16_t refs_outside[] = {sizeof(bad), 0};
static const uint16_t refs_repeated[] = {offsetof(bad, a), offsetof(bad, a), 0};
static const uint16_t refs_unterminated[] = {16, 24, 32, 40};
static const rcgc_type bad_types[] = {
    {.name = "BadHeader", .size = sizeof(bad), .refs = refs_in_header},
    {.name = "BadAlign", .size = sizeof(bad), .refs = refs_unaligned},
    {.name = "BadOutside", .size = sizeof(bad), .refs = refs_outside},
    {.name = "BadRepeat", .size = sizeof(bad), .refs = refs_repeated},
    {.name = "BadEnd", .size = sizeof(bad), .refs = refs_unterminated},
};

static void create_bad(void *arg)
{
    tu_child_init();
    rcgc_runtime *r = rcgc_runtime_new(NULL);
    (void)rcgc_new(r, (const rcgc_type *)arg);
}
#endif

static void test_refs_debug_validation(void **state)
{
    (void)state;
#if RCGC_DEBUG >= 1
    static const char *const what[] = {"lies in the object header", "not a pointer-aligned",
                                       "outside the object", "repeats refs[0]",
                                       "missing 0 terminator"};
    for (size_t i = 0; i < sizeof bad_types / sizeof bad_types[0]; i++) {
        const char *err = tu_run_fatal(create_bad, (void *)&bad_types[i]);
        char name[64];
        snprintf(name, sizeof name, "type %s: refs", bad_types[i].name);
        if (strstr(err, name) == NULL || strstr(err, what[i]) == NULL)
            fail_msg("type %s: unexpected report: %s", bad_types[i].name, err);
    }
    /* A good array passes (every type above in this file was created). */
    rcgc_decref(RCGC_OBJ(rn_new(&rnode_type, 1)));
#else
    skip();
#endif
}

/* Types of gnode's size (so that they share the traverse-only nodes'
 * pools) whose first two slots are declared fields: refs only, refs with a
 * traverse and clear for the other two slots, and refs only but tracked
 * later with rcgc_gc_track. */
static int gn_traverse_hi(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    gnode *n = (gnode *)self;
    for (int i = 2; i < GN_SLOTS; i++) {
        int rc = n->s[i] ? visit(n->s[i], arg) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

static int gn_clear_hi(rcgc_object *self)
{
    gnode *n = (gnode *)self;
    for (int i = 2; i < GN_SLOTS; i++)
        RCGC_CLEAR(n->s[i]);
    return 0;
}

static const rcgc_type gn_refs_type = {
    .name = "GRefs", .size = sizeof(gnode), .dealloc = gn_dealloc,
    .refs = RCGC_REFS(gnode, s[0], s[1])};
static const rcgc_type gn_both_type = {
    .name = "GBoth", .size = sizeof(gnode), .dealloc = gn_dealloc,
    .traverse = gn_traverse_hi, .clear = gn_clear_hi, .refs = RCGC_REFS(gnode, s[0], s[1])};
static const rcgc_type gn_late_type = {
    .name = "GLate", .size = sizeof(gnode), .flags = RCGC_TYPE_UNTRACKED_AT_BIRTH,
    .dealloc = gn_dealloc, .refs = RCGC_REFS(gnode, s[0], s[1])};

/* Refs only, in a size class of its own: its first object comes from the
 * creation's slow path (a new pool), which tracks through rcgc_obj_track. */
static const rcgc_type gn_big_type = {
    .name = "GBig", .size = sizeof(gnode) + 256, .dealloc = gn_dealloc,
    .refs = RCGC_REFS(gnode, s[0], s[1])};

static gnode *gn_new_tracked(const rcgc_type *t, int id)
{
    gnode *n = gn_new(t, id);
    if (t->flags & RCGC_TYPE_UNTRACKED_AT_BIRTH) {
        assert_false(rcgc_gc_is_tracked(RCGC_OBJ(n)));
        rcgc_gc_track(RCGC_OBJ(n));
    }
    assert_true(rcgc_gc_is_tracked(RCGC_OBJ(n)));
    return n;
}

/*
 * G2: a runtime collects traverse-only nodes for a while (the collector's
 * copies for such heaps), then meets its first object with refs (of type
 * t) in the same pools.  Every later collection, young and full, must see
 * its declared fields: a cycle through one is garbage (missed, its
 * referent would look referenced from outside and survive), and what only
 * a live object's declared field holds stays (missed by the mark, it would
 * be freed while referenced).
 */
static void mixed_after_traverse(const rcgc_type *t)
{
    gnode *root = gn_new(&plain_type, 1);
    gnode *a = gn_new(&plain_type, 2);
    gn_set(root, 0, a);
    gn_drop(a);
    for (int round = 0; round < 3; round++) {
        gnode *c1 = gn_new(&plain_type, 100 + 2 * round);
        gnode *c2 = gn_new(&plain_type, 101 + 2 * round);
        gn_set(c1, 3, c2);
        gn_set(c2, 2, c1);
        gn_drop(c1);
        gn_drop(c2);
        assert_int_equal(collect(round), 2);
    }
    assert_int_equal(free_log.n, 6);

    /* The first object with refs: garbage in a cycle through its declared
     * field s[0], with a traverse-only node. */
    gnode *r = gn_new_tracked(t, 10);
    gnode *g = gn_new(&plain_type, 11);
    gn_set(r, 0, g);
    gn_set(g, 1, r);
    gn_drop(g);
    gn_drop(r);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    free_log.n = 0;
    assert_int_equal(collect(0), 2);
    assert_int_equal(log_count(&free_log, 10), 1);
    assert_int_equal(log_count(&free_log, 11), 1);
    assert_int_equal(free_log.n, 2);
    /* Live: root -> r2, whose declared field s[1] alone holds x; x -> r2. */
    gnode *r2 = gn_new_tracked(t, 20);
    gnode *x = gn_new(&plain_type, 21);
    gn_set(root, 1, r2);
    gn_set(r2, 1, x);
    gn_set(x, 0, r2);
    gn_drop(r2);
    gn_drop(x);
    /* Across collections: the live part moves up to generation 2. */
    assert_int_equal(collect(0), 0);
    assert_int_equal(collect(1), 0);
    assert_int_equal(collect(2), 0);
    assert_int_equal(free_log.n, 2);
    assert_int_equal(x->id, 21);
    assert_ptr_equal(r2->s[1], RCGC_OBJ(x));

    /* Old and young together: r2 and x become a garbage cycle in
     * generation 2 while a young cycle through a declared field of a new
     * object of t waits in generation 0. */
    gnode *r3 = gn_new_tracked(t, 30);
    gnode *y = gn_new(&plain_type, 31);
    gn_set(r3, 0, y);
    gn_set(y, 3, r3);
    gn_drop(y);
    gn_drop(r3);
    gn_set(root, 1, NULL);
    assert_int_equal(collect(1), 2);
    assert_int_equal(log_count(&free_log, 30), 1);
    assert_int_equal(log_count(&free_log, 31), 1);
    assert_int_equal(collect(2), 2);
    assert_int_equal(log_count(&free_log, 20), 1);
    assert_int_equal(log_count(&free_log, 21), 1);
    assert_int_equal(free_log.n, 6);
    assert_int_equal(log_count(&free_log, 2), 0);
    gn_drop(root);
    assert_int_equal(free_log.n, 8);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
}

static void test_refs_after_traverse_refs_only(void **state)
{
    (void)state;
    mixed_after_traverse(&gn_refs_type);
}

static void test_refs_after_traverse_both(void **state)
{
    (void)state;
    mixed_after_traverse(&gn_both_type);
}

static void test_refs_after_traverse_new_class(void **state)
{
    (void)state;
    mixed_after_traverse(&gn_big_type);
}

static void test_refs_after_traverse_tracked_later(void **state)
{
    (void)state;
    mixed_after_traverse(&gn_late_type);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GC_TEST(test_refs_macro),
        GC_TEST(test_refs_cycle_collected),
        GC_TEST(test_refs_survivors_kept),
        GC_TEST(test_refs_big_sets),
        GC_TEST(test_refs_mixed_shapes),
        GC_TEST(test_refs_gc_module),
        GC_TEST(test_refs_clear_at_dealloc),
        GC_TEST(test_refs_finalizers_resurrection),
        GC_TEST(test_refs_weakrefs),
        GC_TEST(test_refs_debug_validation),
        GC_TEST(test_refs_after_traverse_refs_only),
        GC_TEST(test_refs_after_traverse_both),
        GC_TEST(test_refs_after_traverse_tracked_later),
        GC_TEST(test_refs_after_traverse_new_class),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
