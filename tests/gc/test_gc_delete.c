/* Step 9 of plain garbage skips a member's second clear when no user code
 * can have run since its first one (D1, src/internal/gcwork.h; round 8 in
 * docs/design-gc.md).  Each test makes user code store a new reference
 * into a garbage member after its first clear - from the deallocation of
 * an object outside the set that the first clears free, from a member's
 * own dealloc in the batch, across pools, in a small set (cleared whole
 * first) and a big one (cleared a pool at a time) - and checks that the
 * reference is dropped (the stored object's refcount comes back) and the
 * heap validates.  A skip that ignores any of these events leaks the
 * stored reference (and debug builds abort in rcgc_gc_assert_cleared). */
#include "rnode.h"
#include "rcgc_tracemalloc.h"
#include "runtime.h"

/* Where the user code below stores its reference: field b (or a) of
 * g_target, a borrowed pointer to a garbage member; g_stored is what it
 * stores (held by the test too). */
static rcgc_object *g_target;
static rcgc_object *g_stored;
static int g_stores;

static void store_into_target(void)
{
    if (g_target == NULL)
        return;
    rnode *t = (rnode *)g_target;   /* rbig has a and b at the same offsets */
    rcgc_object **slot = t->a == NULL ? &t->a : &t->b;
    RCGC_SETREF(*slot, rcgc_incref(g_stored));
    g_target = NULL;
    g_stores++;
}

/* An untracked object whose deallocation stores into g_target. */
static void trig_dealloc(rcgc_object *self)
{
    (void)self;
    store_into_target();
}

static const rcgc_type trig_type = {.name = "Trig", .size = 32, .dealloc = trig_dealloc};

/* A cached-shape member whose own dealloc stores into g_target (or, if
 * it is g_target, dies without a store: nothing may store into it now). */
static void rdel_dealloc(rcgc_object *self)
{
    if (g_target == self)
        g_target = NULL;
    else
        store_into_target();
}

static const rcgc_type rdel_type = {
    .name = "RDel", .size = sizeof(rnode), .refs = RCGC_REFS(rnode, a, b),
    .dealloc = rdel_dealloc};

/* x.a = y and y.a = x, both dropped: a garbage cycle. */
static void cycle(rnode *x, rnode *y)
{
    x->a = rcgc_incref(RCGC_OBJ(y));
    y->a = rcgc_incref(RCGC_OBJ(x));
    rcgc_decref(RCGC_OBJ(x));
    rcgc_decref(RCGC_OBJ(y));
}

static rcgc_object *new_stored(void)
{
    rcgc_object *z = rcgc_new(rt, &trig_type);   /* untracked, no store */
    assert_non_null(z);
    g_stored = z;
    g_stores = 0;
    return z;
}

/* After a collection in which user code stored z once into a garbage
 * member: the stored reference went with the member (z's refcount is back
 * to the test's own) and the heap validates; then z goes. */
static void check_store_dropped(rcgc_object *z)
{
    assert_int_equal(g_stores, 1);
    assert_int_equal(rcgc_refcount(z), 1);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_decref(z);
}

/* The first clear of a (dropping a.b, the last reference to a Trig) runs
 * user code that stores into a itself, or into c, cleared before it in
 * the same pool; collected in a young and a full collection. */
static void test_store_during_first_clear(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen += 2) {
        for (int into_earlier = 0; into_earlier < 2; into_earlier++) {
            rcgc_object *z = new_stored();
            rnode *c = rn(&refs_type), *d = rn(&refs_type);
            rnode *a = rn(&refs_type), *b = rn(&refs_type);
            assert_true((char *)c < (char *)a);   /* c's first clear comes first */
            a->b = rcgc_new(rt, &trig_type);
            assert_non_null(a->b);
            g_target = into_earlier ? RCGC_OBJ(c) : RCGC_OBJ(a);
            cycle(c, d);
            cycle(a, b);
            assert_int_equal(collect(gen), 4);
            check_store_dropped(z);
        }
    }
}

/* A member's dealloc in the batch stores into a member after it, already
 * tested for the batch and cleared once. */
static void test_store_from_batch_dealloc(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen += 2) {
        rcgc_object *z = new_stored();
        rnode *p = rn(&rdel_type), *q = rn(&rdel_type);
        assert_true((char *)p < (char *)q);
        g_target = RCGC_OBJ(q);
        cycle(p, q);
        assert_int_equal(collect(gen), 2);
        check_store_dropped(z);
    }
}

/* Two pools (two size classes) of one small set: a Trig freed by the first
 * clear of one pool's member stores into the other pool's member; one of
 * the two directions targets a pool cleared before the event. */
static void test_store_across_pools(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen += 2) {
        for (int dir = 0; dir < 2; dir++) {
            rcgc_object *z = new_stored();
            rnode *s1 = rn(&refs_type), *s2 = rn(&refs_type);
            rnode *b1 = rn(&rbig_type), *b2 = rn(&rbig_type);
            rnode *holder = dir ? b1 : s1;
            holder->b = rcgc_new(rt, &trig_type);
            g_target = dir ? RCGC_OBJ(s2) : RCGC_OBJ(b2);
            cycle(s1, s2);
            cycle(b1, b2);
            assert_int_equal(collect(gen), 4);
            check_store_dropped(z);
        }
    }
}

static const rcgc_type rdelbig_type = {
    .name = "RDelBig", .size = sizeof(rbig), .refs = RCGC_REFS(rbig, a, b),
    .dealloc = rdel_dealloc};

/* Two pairs of nodes in two size classes: u (RDel) and u2 in one, t
 * (RDelBig) and t2 in the other.  The pools' order follows which of them
 * got a young object first: dir 0 makes u's pair first, dir 1 t's. */
static void two_pool_nodes(int dir, rnode **u, rnode **u2, rnode **t, rnode **t2)
{
    for (int k = 0; k < 2; k++) {
        if (k == dir) {
            *u = rn(&rdel_type);
            *u2 = rn(&refs_type);
        } else {
            *t = rn(&rdelbig_type);
            *t2 = rn(&rbig_type);
        }
    }
}

/* A small set in two pools (two size classes): a member's dealloc in one
 * pool's batch stores into a member of the other pool; in one of the two
 * orders that pool is released later (cleared before the store; in the
 * other the target dies first and nothing is stored). */
static void test_store_from_batch_across_pools(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen += 2) {
        int stores = 0;
        for (int dir = 0; dir < 2; dir++) {
            rcgc_object *z = new_stored();
            rnode *u = NULL, *u2 = NULL, *t = NULL, *t2 = NULL;
            two_pool_nodes(dir, &u, &u2, &t, &t2);
            g_target = RCGC_OBJ(t);
            cycle(u, u2);
            cycle(t, t2);
            assert_int_equal(collect(gen), 4);
            assert_null(g_target);
            stores += g_stores;
            assert_int_equal(rcgc_refcount(z), 1);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
            rcgc_decref(z);
        }
        assert_true(stores >= 1);   /* a store into a pool released later */
    }
}

/* An untracked object whose deallocation untracks g_untrack (a garbage
 * member): the batch then leaves that member to rcgc_gc_release_cleared,
 * whose deallocation runs its dealloc after every first clear. */
static rcgc_object *g_untrack;

static void untrig_dealloc(rcgc_object *self)
{
    (void)self;
    if (g_untrack != NULL)
        rcgc_gc_untrack(g_untrack);
    g_untrack = NULL;
}

static const rcgc_type untrig_type = {.name = "Untrig", .size = 32, .dealloc = untrig_dealloc};

/* The release of a member left out of the batch (untracked by user code
 * during the first clears) runs its dealloc, which stores into a member
 * of the other pool; in one of the two orders that pool is released
 * later. */
static void test_store_from_release(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen += 2) {
        int stores = 0;
        for (int dir = 0; dir < 2; dir++) {
            rcgc_object *z = new_stored();
            rnode *u = NULL, *u2 = NULL, *t = NULL, *t2 = NULL;
            two_pool_nodes(dir, &u, &u2, &t, &t2);
            u2->b = rcgc_new(rt, &untrig_type);
            assert_non_null(u2->b);
            g_untrack = RCGC_OBJ(u);
            g_target = RCGC_OBJ(t);
            cycle(u, u2);
            cycle(t, t2);
            assert_int_equal(collect(gen), 4);
            assert_null(g_untrack);
            assert_null(g_target);
            stores += g_stores;
            assert_int_equal(rcgc_refcount(z), 1);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
            rcgc_decref(z);
        }
        assert_true(stores >= 1);
    }
}

/* A foreign object (bigger than any pool block) whose clear stores into
 * g_target. */
typedef struct fbig {
    rcgc_object ob;
    rcgc_object *a;
    rcgc_object *b;
    char pad[8192];
} fbig;

static int fbig_clear(rcgc_object *self)
{
    (void)self;
    store_into_target();
    return 0;
}

static const rcgc_type fbig_type = {
    .name = "FBig", .size = sizeof(fbig), .refs = RCGC_REFS(fbig, a, b), .clear = fbig_clear};

/* A small set's foreign members are cleared after its pooled ones and
 * before any release: a foreign member's clear stores into a pooled
 * member cleared already. */
static void test_store_from_foreign_clear(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen += 2) {
        rcgc_object *z = new_stored();
        rnode *p = rn(&refs_type), *f = rn(&fbig_type);
        assert_true(f->ob.flags & RCGC_OF_FOREIGN);
        g_target = RCGC_OBJ(p);
        cycle(p, f);
        assert_int_equal(collect(gen), 2);
        check_store_dropped(z);
    }
}

enum { BIG_N = 30000 };   /* more than GC_DELETE_SMALL: a pool at a time */

/* A big set: a ring of BIG_N nodes (so the pools' boundary nodes die by
 * the next pool's first clears) with a Trig hanging off a node in the
 * middle, storing into that node, or into the one before it. */
static void test_store_in_big_set(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen += 2) {
        for (int into_earlier = 0; into_earlier < 2; into_earlier++) {
            rcgc_object *z = new_stored();
            rnode *first = rn(&refs_type), *prev = first, *mid = NULL, *before = NULL;
            for (int i = 1; i < BIG_N; i++) {
                rnode *n = rn(&refs_type);
                prev->a = RCGC_OBJ(n);   /* prev's creation reference moves in */
                if (i == BIG_N / 2) {
                    before = prev;
                    mid = n;
                }
                prev = n;
            }
            prev->a = RCGC_OBJ(first);
            assert_true((char *)before < (char *)mid);
            mid->b = rcgc_new(rt, &trig_type);
            g_target = into_earlier ? RCGC_OBJ(before) : RCGC_OBJ(mid);
            assert_int_equal(collect(gen), BIG_N);
            check_store_dropped(z);
        }
    }
}

/* A ring x -> y -> z -> x of three nodes created in that order, which
 * must be that address order (one pool, fresh blocks); each creation
 * reference moves into the ring, which is then garbage. */
static void ring3_in_order(rnode *x, rnode *y, rnode *z)
{
    assert_true((char *)x < (char *)y && (char *)y < (char *)z);
    x->a = RCGC_OBJ(y);
    y->a = RCGC_OBJ(z);
    z->a = RCGC_OBJ(x);
}

/* Q1/Q2 (round 9b): a batch's quiet members (the cache's type, no
 * dealloc, no second clear due) are freed in the batch test itself, before
 * the loud members' deallocs run; user code in those deallocs (or in a
 * loud member's second clear) may still store into a quiet member, whose
 * fields are then dropped again.  A ring q -> p -> r -> q in one pool in
 * that address order, p an RDel: the cache ends the first clears with
 * RefsNode (r's), so q and r are quiet; p's dealloc stores into r (after
 * it) or q (before it). */
static void test_store_into_quiet_member(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen += 2) {
        for (int into_earlier = 0; into_earlier < 2; into_earlier++) {
            rcgc_object *z = new_stored();
            rnode *q = rn(&refs_type), *p = rn(&rdel_type), *r = rn(&refs_type);
            ring3_in_order(q, p, r);
            g_target = into_earlier ? RCGC_OBJ(q) : RCGC_OBJ(r);
            assert_int_equal(collect(gen), 3);
            check_store_dropped(z);
        }
    }
}

/* Two steps of user code for the loud second clear: A (a Trig2) freed by
 * c's first clear stores B into c (so c, at D1's position, is loud and
 * holds B at its second clear); B, freed by that second clear, stores z
 * into g_target, a quiet member after c. */
static rcgc_object *g_b, *g_b_into;

static void trig2_dealloc(rcgc_object *self)
{
    (void)self;
    if (g_b_into == NULL)
        return;
    rnode *t = (rnode *)g_b_into;
    assert_null(t->b);
    t->b = g_b;   /* the test's reference to B moves in */
    g_b = g_b_into = NULL;
}

static const rcgc_type trig2_type = {.name = "Trig2", .size = 32, .dealloc = trig2_dealloc};

static void test_store_from_loud_clear(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen += 2) {
        rcgc_object *z = new_stored();
        rnode *c = rn(&refs_type), *d = rn(&refs_type), *q = rn(&refs_type);
        ring3_in_order(c, d, q);
        c->b = rcgc_new(rt, &trig2_type);   /* A */
        assert_non_null(c->b);
        g_b = rcgc_new(rt, &trig_type);     /* B: stores z into g_target */
        assert_non_null(g_b);
        g_b_into = RCGC_OBJ(c);
        g_target = RCGC_OBJ(q);
        assert_int_equal(collect(gen), 3);
        assert_null(g_b_into);
        check_store_dropped(z);
    }
}

/* Q2's passes: p's dealloc (trig2_dealloc) moves B into r, a quiet member
 * after it; dropping B again frees it, and B's dealloc stores z into q, a
 * quiet member the pass has gone by (a second pass drops it). */
static const rcgc_type rdel2_type = {
    .name = "RDel2", .size = sizeof(rnode), .refs = RCGC_REFS(rnode, a, b),
    .dealloc = trig2_dealloc};

static void test_store_during_requiet(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen += 2) {
        rcgc_object *z = new_stored();
        rnode *q = rn(&refs_type), *p = rn(&rdel2_type), *r = rn(&refs_type);
        ring3_in_order(q, p, r);
        g_b = rcgc_new(rt, &trig_type);   /* B */
        assert_non_null(g_b);
        g_b_into = RCGC_OBJ(r);
        g_target = RCGC_OBJ(q);
        assert_int_equal(collect(gen), 3);
        assert_null(g_b_into);
        check_store_dropped(z);
    }
}

/* Plain rings and cycles with nothing to store: the same counts with the
 * second clears skipped, in small and big sets, with tracing on too. */
static void test_plain_garbage_counts(void **state)
{
    (void)state;
    for (int tracing = 0; tracing < 2; tracing++) {
        if (tracing)
            assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
        for (int i = 0; i < 100; i++)
            cycle(rn(&refs_type), rn(&refs_type));
        assert_int_equal(collect(0), 200);
        for (int i = 0; i < BIG_N / 2; i++)
            cycle(rn(&refs_type), rn(&rbig_type));
        assert_int_equal(collect(2), BIG_N);
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        if (tracing)
            rcgc_tracemalloc_stop(rt);
    }
}

/* The first clears and the batch test with the member types mixed in one
 * pool and the members in every generation (gcdelete.c's F1, B1, B2,
 * W1): two-field RefsNodes and one-field Ones (their first word after the
 * header is not a reference) alternate in the pool, so the first clears'
 * two-field hit (its cache in locals) and their misses interleave; each
 * RefsNode holds a live leaf through b.  The garbage dies in generation
 * 0, 1 or 2 (B2's one compare takes generation 0 only), in a small set
 * and a big one.  The leaf's refcount comes back, the counts of every
 * generation are exact, the heap validates. */
typedef struct onode {
    rcgc_object ob;
    rcgc_object *x;   /* not a reference: a marker never read */
    rcgc_object *b;
} onode;

static const rcgc_type one_type = {
    .name = "One", .size = sizeof(onode), .refs = RCGC_REFS(onode, b)};

static const rcgc_type leaf_type = {.name = "Leaf", .size = 32};

static void test_batch_mixed_types_and_generations(void **state)
{
    (void)state;
    for (int age = 0; age < 3; age++) {
        for (int big = 0; big < 2; big++) {
            int n = big ? BIG_N / 4 : 40;   /* units of four objects */
            rcgc_object *leaf = rcgc_new(rt, &leaf_type);
            assert_non_null(leaf);
            long before[4];
            for (int g = 0; g < 3; g++)
                before[g] = rcgc_gen_count(rt, (unsigned)g);
            before[3] = rcgc_gen_count(rt, 3);
            rcgc_gc_disable(rt);
            rcgc_object **held = calloc((size_t)n * 2, sizeof *held);
            assert_non_null(held);
            for (int i = 0; i < n; i++) {
                /* r <-> o (a RefsNode and a One), then q <-> s (two
                 * RefsNodes), made in the order r, o, q, s. */
                rnode *r = rn(&refs_type);
                onode *o = (onode *)rcgc_new(rt, &one_type);
                assert_non_null(o);
                rnode *q = rn(&refs_type), *t = rn(&refs_type);
                o->x = (rcgc_object *)(uintptr_t)0x10;
                r->a = RCGC_OBJ(o);                     /* o's reference moves in */
                o->b = rcgc_incref(RCGC_OBJ(r));
                r->b = rcgc_incref(leaf);
                q->a = RCGC_OBJ(t);
                t->a = rcgc_incref(RCGC_OBJ(q));
                q->b = rcgc_incref(leaf);
                t->b = rcgc_incref(leaf);
                held[2 * i] = RCGC_OBJ(r);
                held[2 * i + 1] = RCGC_OBJ(q);
            }
            /* Aged to generation `age` while held (live through the test's
             * references). */
            for (int g = 0; g < age; g++)
                assert_int_equal(collect(g), 0);
            for (int i = 0; i < 2 * n; i++)
                rcgc_decref(held[i]);
            free(held);
            assert_int_equal(leaf->refcnt, 1 + 3 * n);
            assert_int_equal(collect(age), 4 * n);
            assert_int_equal(leaf->refcnt, 1);
            long sum = 0, sum_before = 0;
            for (int g = 0; g < 3; g++) {
                assert_true(rcgc_gen_count(rt, (unsigned)g) >= 0);
                sum += rcgc_gen_count(rt, (unsigned)g);
                sum_before += before[g];
            }
            assert_int_equal(sum, sum_before);
            assert_int_equal(rcgc_gen_count(rt, 3), before[3]);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
            rcgc_gc_enable(rt);
            rcgc_decref(leaf);
        }
    }
}

/* K1 (gcdelete.c's rcgc_gc_delete_closed): a set of one two-field refs
 * type whose fields all stay in the set is freed without its clears;
 * any reference leaving it (to a live member, to an old object whose last
 * reference it is, to an untracked object with a dealloc) must still be
 * dropped.  Each case is collected in generations 0, 1 and 2, after a
 * collection that was mostly garbage (the young scan records) and after
 * one that was not. */
static int g_trig_deaths;

static void count_dealloc(rcgc_object *self)
{
    (void)self;
    g_trig_deaths++;
}

static const rcgc_type counted_type = {.name = "Counted", .size = 32,
                                       .dealloc = count_dealloc};

static const rcgc_type cnode_type = {.name = "CountedNode", .size = sizeof(rnode),
                                     .refs = RCGC_REFS(rnode, a, b), .dealloc = count_dealloc};

/* A node of rnode's layout and size class with a traverse and a clear
 * instead of refs, and a counted dealloc. */
static int tnode_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    rnode *n = (rnode *)self;
    int r;
    if (n->a != NULL && (r = visit(n->a, arg)) != 0)
        return r;
    if (n->b != NULL && (r = visit(n->b, arg)) != 0)
        return r;
    return 0;
}

static int tnode_clear(rcgc_object *self)
{
    rnode *n = (rnode *)self;
    RCGC_CLEAR(n->a);
    RCGC_CLEAR(n->b);
    return 0;
}

static const rcgc_type tnode_type = {.name = "TNode", .size = sizeof(rnode),
                                     .traverse = tnode_traverse, .clear = tnode_clear,
                                     .dealloc = count_dealloc};

/* A one-field refs node of the weak reference's size class, so that the
 * weak reference's pool is gathered through the cache. */
typedef struct pad80 {
    rcgc_object ob;
    rcgc_object *a;
    char pad[56];
} pad80;

static const rcgc_type pad80_type = {.name = "Pad80", .size = sizeof(pad80),
                                     .refs = RCGC_REFS(pad80, a)};

static void weak_died(rcgc_weakref *wr, void *arg)
{
    (void)wr;
    (void)arg;
    g_trig_deaths++;
}

/* Sets the young scan's hint: a collection that was mostly garbage, or
 * one that was all live (nothing of the caller's in either). */
static void set_hint(int garbage)
{
    if (garbage) {
        for (int i = 0; i < 20; i++)
            cycle(rn(&refs_type), rn(&refs_type));
        assert_int_equal(collect(0), 40);
    } else {
        rnode *x = rn(&refs_type);
        assert_int_equal(collect(0), 0);
        rcgc_decref(RCGC_OBJ(x));
    }
}

static void test_closed_sets(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen++) {
        for (int hint = 0; hint < 2; hint++) {
            long before = 0;
            for (int g = 0; g < 3; g++)
                before += rcgc_gen_count(rt, (unsigned)g);
            /* Closed: cycles, a self loop, a ring of 3 with a chord. */
            set_hint(hint);
            for (int i = 0; i < 50; i++)
                cycle(rn(&refs_type), rn(&refs_type));
            rnode *s = rn(&refs_type);
            s->a = rcgc_incref(RCGC_OBJ(s));
            rcgc_decref(RCGC_OBJ(s));
            rnode *x = rn(&refs_type), *y = rn(&refs_type), *z = rn(&refs_type);
            x->a = RCGC_OBJ(y);   /* each creation reference moves in */
            y->a = RCGC_OBJ(z);
            z->a = RCGC_OBJ(x);
            x->b = rcgc_incref(RCGC_OBJ(z));
            assert_int_equal(collect(gen), 104);
            for (int g = 0; g < 3; g++) {
                assert_true(rcgc_gen_count(rt, (unsigned)g) >= 0);
                before -= rcgc_gen_count(rt, (unsigned)g);
            }
            assert_int_equal(before, 0);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);

            /* Closed, beside more live members than gc_work.klist holds
             * (each in its own two-node cycle, held): they survive. */
            rnode *held[20];
            set_hint(hint);
            for (int i = 0; i < 20; i++) {
                held[i] = rn(&refs_type);
                rnode *other = rn(&refs_type);
                held[i]->a = RCGC_OBJ(other);   /* other's reference moves in */
                other->a = rcgc_incref(RCGC_OBJ(held[i]));
            }
            for (int i = 0; i < 50; i++)
                cycle(rn(&refs_type), rn(&refs_type));
            assert_int_equal(collect(gen), 100);
            for (int i = 0; i < 20; i++) {
                assert_int_equal(rcgc_refcount(RCGC_OBJ(held[i])), 2);
                rcgc_decref(RCGC_OBJ(held[i]));
            }
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
            assert_int_equal(collect(2), 40);

            /* Open through a live member of the set: its refcount comes
             * back. */
            rnode *live = rn(&refs_type);
            set_hint(hint);
            for (int i = 0; i < 50; i++)
                cycle(rn(&refs_type), rn(&refs_type));
            rnode *p = rn(&refs_type), *q = rn(&refs_type);
            p->b = rcgc_incref(RCGC_OBJ(live));
            cycle(p, q);
            assert_int_equal(rcgc_refcount(RCGC_OBJ(live)), 2);
            assert_int_equal(collect(gen), 102);
            assert_int_equal(rcgc_refcount(RCGC_OBJ(live)), 1);
            rcgc_decref(RCGC_OBJ(live));
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);

            /* Open through an object outside the set that the clears
             * free: an old node (not a member of a young collection, a
             * member of a full one) and an untracked one with a dealloc. */
            rnode *old = rn(&refs_type);
            for (int g = 0; g < 2; g++)
                assert_int_equal(collect(g), 0);
            set_hint(hint);
            for (int i = 0; i < 50; i++)
                cycle(rn(&refs_type), rn(&refs_type));
            p = rn(&refs_type);
            q = rn(&refs_type);
            p->b = RCGC_OBJ(old);   /* the test's reference moves in */
            g_trig_deaths = 0;
            q->b = rcgc_new(rt, &counted_type);
            assert_non_null(q->b);
            cycle(p, q);
            long nold = rcgc_gen_count(rt, 2);
            assert_int_equal(collect(gen), gen == 2 ? 103 : 102);
            assert_int_equal(g_trig_deaths, 1);
            assert_int_equal(rcgc_gen_count(rt, 2), nold - 1);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);

            /* Closed but weakly referenced, the weak reference in a pool
             * of refs objects: the weak reference is cleared (and its
             * callback runs). */
            rcgc_object *pads[64];
            for (int i = 0; i < 64; i++) {
                pads[i] = rcgc_new(rt, &pad80_type);
                assert_non_null(pads[i]);
            }
            for (int g = 0; g < 2; g++)   /* old: not in the young sets */
                assert_int_equal(collect(g), 0);
            set_hint(hint);
            for (int i = 0; i < 50; i++)
                cycle(rn(&refs_type), rn(&refs_type));
            p = rn(&refs_type);
            q = rn(&refs_type);
            g_trig_deaths = 0;
            rcgc_weakref *wr = rcgc_weakref_new(RCGC_OBJ(q), weak_died, NULL);
            assert_non_null(wr);
            cycle(p, q);
            assert_int_equal(collect(gen), 102);
            assert_null(rcgc_weakref_peek(wr));
            assert_int_equal(g_trig_deaths, 1);
            rcgc_decref((rcgc_object *)wr);
            for (int i = 0; i < 64; i++)
                rcgc_decref(pads[i]);

            /* Closed, with a member of a traverse type (in the same pool
             * as the rest): its dealloc runs. */
            set_hint(hint);
            for (int i = 0; i < 50; i++)
                cycle(rn(&refs_type), rn(&refs_type));
            g_trig_deaths = 0;
            rnode *tn = (rnode *)rcgc_new(rt, &tnode_type);
            assert_non_null(tn);
            cycle(rn(&refs_type), tn);
            assert_int_equal(collect(gen), 102);
            assert_int_equal(g_trig_deaths, 1);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);

            /* Closed, a ring of one RefsNode and 20 CountedNodes (of the
             * same shape but with a dealloc, one after another in the
             * pool after a live one, so that only the live one misses
             * the gather's cache): every dealloc runs. */
            set_hint(hint);
            for (int i = 0; i < 50; i++)
                cycle(rn(&refs_type), rn(&refs_type));
            g_trig_deaths = 0;
            rnode *c0 = rn(&cnode_type);   /* live, the run's first */
            rnode *first = rn(&cnode_type), *prev = first;
            for (int i = 1; i < 20; i++) {
                rnode *c = rn(&cnode_type);
                prev->a = RCGC_OBJ(c);   /* c's creation reference moves in */
                prev = c;
            }
            rnode *head = rn(&refs_type);
            prev->a = RCGC_OBJ(head);
            head->a = RCGC_OBJ(first);
            assert_int_equal(collect(gen), 121);
            assert_int_equal(g_trig_deaths, 20);
            rcgc_decref(RCGC_OBJ(c0));
            assert_int_equal(g_trig_deaths, 21);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);

            /* Closed, with a member of another type of the same layout
             * but a dealloc, which must run. */
            set_hint(hint);
            for (int i = 0; i < 50; i++)
                cycle(rn(&refs_type), rn(&refs_type));
            g_trig_deaths = 0;
            cycle(rn(&refs_type), rn(&cnode_type));
            assert_int_equal(collect(gen), 102);
            assert_int_equal(g_trig_deaths, 1);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        }
    }
}

/* K2 (gc.c's partition, record_word_k2): a full collection tests K1 while
 * it records, for sets of any size (these are bigger than GC_DELETE_SMALL,
 * so that the old path would clear them a pool at a time).  A ring of
 * BIG_RING nodes with members in generations 0, 1 and 2; `open` says how
 * it is opened, if at all:
 *   0  closed: freed whole, every generation's count exact;
 *   1  one member's field refers to a live object: its refcount comes back;
 *   2  one member in the middle is of a traverse type (a dealloc);
 *   3  one member is weakly referenced (its callback runs);
 *   4  beside it, a foreign cycle (two FBig objects): it dies too;
 *   5  one member's field holds the last reference to an untracked object
 *      with a dealloc: it dies;
 * and with several types (K2's kinds: the part of generation 0 has an
 * RBig every third node, and a one-field Pad80 links two parts):
 *   6  closed: freed whole;
 *   7  an RBig member refers to a live object: its refcount comes back;
 *   8  a second Pad80 member (held by a member's b) refers to a live
 *      object by its one field: the same. */
#define BIG_RING 12000

static rnode *big_ring_part(int n, rnode **last, int mixed)
{
    rnode *first = rn(&refs_type), *prev = first;
    for (int i = 1; i < n; i++) {
        /* mixed: every third node an RBig (two fields, another pool) */
        rnode *c = rn(mixed && i % 3 == 0 ? &rbig_type : &refs_type);
        prev->a = RCGC_OBJ(c);   /* c's creation reference moves in */
        prev = c;
    }
    *last = prev;
    return first;
}

static void test_closed_big_sets(void **state)
{
    (void)state;
    for (int open = 0; open < 9; open++) {
        assert_int_equal(collect(2), 0);
        long before[3];
        for (int g = 0; g < 3; g++)
            before[g] = rcgc_gen_count(rt, (unsigned)g);
        /* Three parts, aged to generations 2, 1 and 0, linked into one
         * ring (each part's first node held by the test until then). */
        rnode *last[3], *first[3];
        int mixed = open >= 6;
        first[0] = big_ring_part(BIG_RING / 3, &last[0], 0);
        assert_int_equal(collect(1), 0);   /* to generation 2 */
        first[1] = big_ring_part(BIG_RING / 3, &last[1], 0);
        assert_int_equal(collect(0), 0);   /* to generation 1 */
        first[2] = big_ring_part(BIG_RING / 3, &last[2], mixed);
        assert_true(in_gen(first[0], 2) && in_gen(first[1], 1) && in_gen(first[2], 0));
        long expect = BIG_RING;
        rnode *mid = NULL;
        if (open == 2 || mixed) {
            /* A traverse node, or a Pad80, between the second part and
             * the third (both have field a where rnode has it). */
            mid = (rnode *)rcgc_new(rt, mixed ? &pad80_type : &tnode_type);
            assert_non_null(mid);
            expect++;
        }
        for (int i = 0; i < 3; i++) {
            rnode *next = first[(i + 1) % 3];
            if (i == 1 && mid != NULL) {
                last[i]->a = RCGC_OBJ(mid);   /* mid's creation reference */
                mid->a = RCGC_OBJ(next);
            } else {
                last[i]->a = RCGC_OBJ(next);  /* the test's reference to next */
            }
        }
        rnode *some = last[1];   /* a member of generation 1, in the middle */
        rcgc_object *live = NULL;
        rcgc_weakref *wr = NULL;
        g_trig_deaths = 0;
        if (open == 1) {
            live = RCGC_OBJ(rn(&refs_type));
            some->b = rcgc_incref(live);
        } else if (open == 3) {
            wr = rcgc_weakref_new(RCGC_OBJ(some), weak_died, NULL);
            assert_non_null(wr);
        } else if (open == 4) {
            rnode *f1 = rn(&fbig_type), *f2 = rn(&fbig_type);
            cycle(f1, f2);
            expect += 2;
        } else if (open == 5) {
            some->b = rcgc_new(rt, &counted_type);
            assert_non_null(some->b);
        } else if (open == 7) {
            rnode *big = first[2];
            for (int i = 0; i < 3 && big->ob.type != &rbig_type; i++)
                big = (rnode *)big->a;
            assert_ptr_equal(big->ob.type, &rbig_type);
            live = RCGC_OBJ(rn(&refs_type));
            big->b = rcgc_incref(live);
        } else if (open == 8) {
            /* A second Pad80, held by a member's b, refers to it. */
            live = RCGC_OBJ(rn(&refs_type));
            pad80 *pm = (pad80 *)rcgc_new(rt, &pad80_type);
            assert_non_null(pm);
            pm->a = rcgc_incref(live);
            some->b = RCGC_OBJ(pm);   /* pm's creation reference moves in */
            expect++;
        }
        assert_int_equal(collect(2), expect);
        if (live != NULL) {
            assert_int_equal(rcgc_refcount(live), 1);
            assert_true(in_gen(live, 2));
            rcgc_decref(live);
        }
        if (wr != NULL) {
            assert_null(rcgc_weakref_peek(wr));
            rcgc_decref((rcgc_object *)wr);
        }
        assert_int_equal(g_trig_deaths, open == 2 || open == 3 || open == 5 ? 1 : 0);
        for (int g = 0; g < 3; g++)
            assert_int_equal(rcgc_gen_count(rt, (unsigned)g), before[g]);
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GC_TEST(test_store_during_first_clear),
        GC_TEST(test_store_from_batch_dealloc),
        GC_TEST(test_store_across_pools),
        GC_TEST(test_store_from_batch_across_pools),
        GC_TEST(test_store_from_release),
        GC_TEST(test_store_from_foreign_clear),
        GC_TEST(test_store_in_big_set),
        GC_TEST(test_store_into_quiet_member),
        GC_TEST(test_store_from_loud_clear),
        GC_TEST(test_store_during_requiet),
        GC_TEST(test_plain_garbage_counts),
        GC_TEST(test_batch_mixed_types_and_generations),
        GC_TEST(test_closed_sets),
        GC_TEST(test_closed_big_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
