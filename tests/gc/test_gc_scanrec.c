/* The recording young mark scan (round 8, docs/design-gc.md): after a
 * young collection that found mostly garbage (rcgc_gc_state.young_garbage)
 * the next young scan records each member it finds unreachable at once,
 * and a later root's drain that reaches a recorded member undoes the
 * record.  The hint is for speed only: every test runs its collections
 * with the hint forced off and on, and must see the same results.  The
 * cases are those the record could get wrong: a member recorded before
 * the root that reaches it (in one pool and across pools, with a
 * finalizer, with weak references, of generation 1), saturated members
 * (no recording then), and the hint's own rule. */
#include "rnode.h"
#include "runtime.h"

static int fin_calls;

static void rfin_finalize(rcgc_object *self)
{
    (void)self;
    fin_calls++;
}

static const rcgc_type rfin_type = {
    .name = "RFin", .size = sizeof(rnode), .refs = RCGC_REFS(rnode, a, b),
    .finalize = rfin_finalize};

/* A young collection with the hint set to `hint` first. */
static long collect_hint(int gen, int hint)
{
    rt->gc.young_garbage = hint;
    return collect(gen);
}

/* n two-node garbage cycles of refs nodes. */
static void garbage(int n)
{
    for (int i = 0; i < n; i++) {
        rnode *x = rn(&refs_type), *y = rn(&refs_type);
        x->a = RCGC_OBJ(y);
        y->a = rcgc_incref(RCGC_OBJ(x));
        rcgc_decref(RCGC_OBJ(x));
    }
}

/* The hint follows the last young collection: on after mostly garbage,
 * off after mostly survivors; full collections leave it. */
static void test_hint_rule(void **state)
{
    (void)state;
    rt->gc.young_garbage = 0;
    garbage(50);
    assert_int_equal(collect(0), 100);
    assert_int_equal(rt->gc.young_garbage, 1);
    rnode *keep[100];
    for (int i = 0; i < 100; i++)
        keep[i] = rn(&refs_type);
    garbage(10);
    assert_int_equal(collect(0), 20);
    assert_int_equal(rt->gc.young_garbage, 0);
    garbage(50);
    assert_int_equal(collect(2), 100);
    assert_int_equal(rt->gc.young_garbage, 0);
    for (int i = 0; i < 100; i++)
        rcgc_decref(RCGC_OBJ(keep[i]));
}

/* b (referenced only by a) comes before its root a in the scan, in one
 * pool (lower address) and across pools (another size class: a pool
 * scanned before or after); b heads a chain of `len` nodes.  Garbage
 * cycles around them; a finalizer type for b (need recomputed after the
 * undo) and a weakly referenced b. */
static void test_recorded_then_reached(void **state)
{
    (void)state;
    for (int hint = 0; hint < 2; hint++) {
        for (int kind = 0; kind < 4; kind++) {
            for (int gen = 0; gen < 2; gen++) {
                fin_calls = 0;
                garbage(20);
                const rcgc_type *bt = kind == 1 ? &rfin_type : kind == 3 ? &rbig_type : &refs_type;
                rnode *b = rn(bt), *c = rn(&refs_type), *a = rn(&refs_type);
                if (kind != 3)
                    assert_true((char *)b < (char *)a);
                rn_set(&b->a, c);
                rcgc_decref(RCGC_OBJ(c));
                a->a = RCGC_OBJ(b);   /* the creation's reference moves in */
                rcgc_weakref *wr = NULL;
                if (kind == 2) {
                    wr = rcgc_weakref_new(RCGC_OBJ(b), NULL, NULL);
                    assert_non_null(wr);
                }
                garbage(20);
                assert_int_equal(collect_hint(0, hint), 80);
                assert_true(in_gen(a, 1) && in_gen(b, 1) && in_gen(c, 1));
                if (gen == 1) {
                    garbage(20);
                    assert_int_equal(collect_hint(1, hint), 40);
                    assert_true(in_gen(a, 2) && in_gen(b, 2) && in_gen(c, 2));
                }
                assert_int_equal(rcgc_refcount(RCGC_OBJ(b)), 1);
                assert_int_equal(rcgc_refcount(RCGC_OBJ(c)), 1);
                assert_int_equal(fin_calls, 0);
                if (wr != NULL) {
                    assert_ptr_equal(rcgc_weakref_peek(wr), RCGC_OBJ(b));
                }
                assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
                rcgc_decref(RCGC_OBJ(a));   /* a, b, c die by their counts */
                assert_int_equal(fin_calls, kind == 1);
                if (wr != NULL) {
                    assert_null(rcgc_weakref_peek(wr));
                    rcgc_decref((rcgc_object *)wr);
                }
                assert_int_equal(collect(2), 0);
            }
        }
    }
}

/* A generation-1 collection whose set holds garbage of both young
 * generations and a generation-1 member referenced only by a new root
 * (recorded, then reached, when the scan meets it first): the generation
 * counts must stay exact (rcgc_validate's G1). */
static void test_generation1_undo_counts(void **state)
{
    (void)state;
    for (int hint = 0; hint < 2; hint++) {
        rnode *holder = rn(&refs_type), *x = rn(&refs_type), *y = rn(&refs_type);
        holder->a = RCGC_OBJ(x);
        x->a = RCGC_OBJ(y);
        y->a = rcgc_incref(RCGC_OBJ(x));
        rnode *b1 = rn(&refs_type), *c1 = rn(&refs_type);
        b1->a = RCGC_OBJ(c1);
        assert_int_equal(collect_hint(0, hint), 0);
        assert_true(in_gen(x, 1) && in_gen(b1, 1));
        rcgc_decref(RCGC_OBJ(holder));   /* x, y: generation-1 garbage */
        rnode *a0 = rn(&refs_type);
        a0->a = RCGC_OBJ(b1);            /* b1 lives through a0 only */
        garbage(10);
        assert_int_equal(collect_hint(1, hint), 2 + 20);
        assert_true(in_gen(a0, 2) && in_gen(b1, 2) && in_gen(c1, 2));
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        rcgc_decref(RCGC_OBJ(a0));
        assert_int_equal(collect(2), 0);
    }
}

/* A root at the end of a young set reaching, through a chain, members
 * recorded all over the set (many undone records, spread over pools). */
static void test_many_undone(void **state)
{
    (void)state;
    enum { N = 3000 };
    for (int hint = 0; hint < 2; hint++) {
        rnode *first = NULL, *prev = NULL;
        for (int i = 0; i < N; i++) {
            rnode *n = rn(i % 3 == 0 ? &rbig_type : &refs_type);
            if (prev)
                prev->a = RCGC_OBJ(n);
            else
                first = n;
            prev = n;
            if (i % 7 == 0)
                garbage(1);
        }
        rnode *root = rn(&refs_type);
        root->a = RCGC_OBJ(first);   /* the chain lives through root only */
        assert_int_equal(collect_hint(0, hint), 2 * ((N + 6) / 7));
        assert_true(in_gen(prev, 1) && in_gen(first, 1));
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        rcgc_decref(RCGC_OBJ(root));
        assert_int_equal(collect(2), 0);
    }
}

enum { SAT_N = (1 << 20) + 5 };

/* A saturated member in a young set with the hint on: the scan does not
 * record (the set is partitioned from the headers); unreachable and
 * reachable saturated sets both come out right. */
static void test_saturated_with_hint(void **state)
{
    (void)state;
    for (int live = 0; live < 2; live++) {
        rnode *prev;
        rnode *x = rn_holder_chain(&refs_type, SAT_N, &prev);
        garbage(10);
        if (!live)
            rcgc_decref(RCGC_OBJ(prev));
        assert_int_equal(collect_hint(0, 1), live ? 20 : SAT_N + 1 + 20);
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        if (live) {
            assert_int_equal(rcgc_refcount(RCGC_OBJ(x)), SAT_N);
            rcgc_decref(RCGC_OBJ(prev));
            assert_int_equal(collect(2), SAT_N + 1);
        }
    }
}

/* Two refs types of one size class with their fields at different
 * offsets, alternating in one pool: the gather keeps the cache's type and
 * offsets in locals, taken again after each miss; a member must be
 * traversed with its own type's offsets (a live one reached only through
 * the field the other type does not list, garbage cycles through it). */
typedef struct onode {
    rcgc_object ob;
    rcgc_object *x;   /* not a reference field of other_type */
    rcgc_object *b;
} onode;

static const rcgc_type other_type = {
    .name = "Other", .size = sizeof(onode), .refs = RCGC_REFS(onode, b)};

static void test_gather_two_refs_types(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen++) {
        for (int hint = 0; hint < 2; hint++) {
            rnode *keep = rn(&refs_type);
            rcgc_object *prev = RCGC_OBJ(keep);
            for (int i = 0; i < 200; i++) {
                /* keep -> o1 -> r1 -> o2 -> ... through a (rnode) and b
                 * (onode); each onode's x holds a garbage marker that is
                 * not a reference (a non-GC pointer value). */
                if (i % 2 == 0) {
                    onode *o = (onode *)rcgc_new(rt, &other_type);
                    assert_non_null(o);
                    o->x = (rcgc_object *)(uintptr_t)0x10;   /* never read */
                    rn_set(&((rnode *)prev)->a, o);
                    if (prev != RCGC_OBJ(keep))
                        rcgc_decref(prev);
                    prev = RCGC_OBJ(o);
                } else {
                    rnode *r = rn(&refs_type);
                    ((onode *)prev)->b = rcgc_incref(RCGC_OBJ(r));
                    rcgc_decref(prev);
                    prev = RCGC_OBJ(r);
                }
                garbage(1);
                onode *g = (onode *)rcgc_new(rt, &other_type);
                rnode *h = rn(&refs_type);
                g->b = rcgc_incref(RCGC_OBJ(h));
                h->b = RCGC_OBJ(g);
                rcgc_decref(RCGC_OBJ(h));
            }
            rcgc_decref(prev);
            assert_int_equal(collect_hint(gen, hint), 200 * 4);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
            rcgc_decref(RCGC_OBJ(keep));   /* the chain dies by its counts */
            assert_int_equal(collect(2), 0);
        }
    }
}

/* Runs of one-field (other_type) and two-field (refs_type) objects: the
 * cache hits on both shapes, in the gather and the drains.  A two-field
 * hit visits off1 untested (RC3, traverse.h: the cache's type2), so a
 * one-field type taken for a two-field one would visit its header's first
 * word as a reference.  A live chain keep -> o -> o -> o -> r -> r -> r ->
 * o ... (o's b, r's a) and, between its links, garbage cycles of three
 * one-field objects and of three two-field ones. */
static void test_one_and_two_field_runs(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen++) {
        for (int hint = 0; hint < 2; hint++) {
            rnode *keep = rn(&refs_type);
            rcgc_object *prev = RCGC_OBJ(keep);
            int prev_one = 0;
            for (int i = 0; i < 120; i++) {
                int one = (i / 3) % 2 == 0;
                rcgc_object *n;
                if (one) {
                    onode *o = (onode *)rcgc_new(rt, &other_type);
                    assert_non_null(o);
                    o->x = (rcgc_object *)(uintptr_t)0x10;   /* never read */
                    n = RCGC_OBJ(o);
                } else {
                    n = RCGC_OBJ(rn(&refs_type));
                }
                if (prev_one)
                    ((onode *)prev)->b = n;
                else
                    ((rnode *)prev)->a = n;
                rcgc_incref(n);
                if (prev != RCGC_OBJ(keep))
                    rcgc_decref(prev);
                prev = n;
                prev_one = one;
                /* three one-field objects in a cycle, three two-field ones */
                onode *g0 = (onode *)rcgc_new(rt, &other_type);
                onode *g1 = (onode *)rcgc_new(rt, &other_type);
                onode *g2 = (onode *)rcgc_new(rt, &other_type);
                assert_non_null(g0);
                assert_non_null(g1);
                assert_non_null(g2);
                g0->x = g1->x = g2->x = (rcgc_object *)(uintptr_t)0x10;
                g0->b = RCGC_OBJ(g1);
                g1->b = RCGC_OBJ(g2);
                g2->b = RCGC_OBJ(g0);
                rnode *h0 = rn(&refs_type), *h1 = rn(&refs_type), *h2 = rn(&refs_type);
                h0->a = RCGC_OBJ(h1);
                h1->a = RCGC_OBJ(h2);
                h2->a = RCGC_OBJ(h0);
                rn_set(&h0->b, h2);
            }
            rcgc_decref(prev);
            assert_int_equal(collect_hint(gen, hint), 120 * 6);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
            rcgc_decref(RCGC_OBJ(keep));   /* the chain dies by its counts */
            assert_int_equal(collect(2), 0);
        }
    }
}

/* R1 (round 10b): a young gather notes as a root candidate only a member
 * whose refcount exceeds the count gathered so far, and a plain scan reads
 * only those.  A ring of `len` nodes made in address order, so each node's
 * predecessor is gathered first (its count is 1 when it is read), held
 * from outside only at node `at` (a middle node, the last, or - through a
 * node of another size class, another pool - from outside the pool): the
 * whole ring must survive, found through the one root whose count was not
 * zero when gathered.  Also a member that an earlier member and an
 * outside reference both hold, its referrer garbage.  Hint off and on,
 * generations 0 and 1. */
static void test_root_counted_before_gathered(void **state)
{
    (void)state;
    enum { LEN = 40 };
    for (int hint = 0; hint < 2; hint++) {
        for (int gen = 0; gen < 2; gen++) {
            for (int at = 0; at < LEN; at += 13) {
                for (int big = 0; big < 2; big++) {
                    garbage(10);
                    rnode *ring[LEN];
                    for (int i = 0; i < LEN; i++)
                        ring[i] = rn(&refs_type);
                    for (int i = 0; i + 1 < LEN; i++)
                        ring[i]->a = RCGC_OBJ(ring[i + 1]);   /* the creation's reference */
                    rn_set(&ring[LEN - 1]->a, ring[0]);
                    rnode *keep = NULL;
                    if (big) {
                        /* The outside reference from a node of another
                         * pool, itself held from outside. */
                        keep = (rnode *)rcgc_new(rt, &rbig_type);
                        assert_non_null(keep);
                        rn_set(&keep->a, ring[at]);
                    } else {
                        rcgc_incref(RCGC_OBJ(ring[at]));
                    }
                    rcgc_decref(RCGC_OBJ(ring[0]));
                    /* p (made first) holds q; q is held from outside too;
                     * p is garbage in a cycle with r. */
                    rnode *p = rn(&refs_type), *q = rn(&refs_type), *r = rn(&refs_type);
                    assert_true((char *)p < (char *)q);
                    rn_set(&p->a, q);   /* q's creation reference stays ours */
                    rn_set(&p->b, r);
                    r->a = RCGC_OBJ(p);   /* p's creation reference */
                    rcgc_decref(RCGC_OBJ(r));
                    garbage(10);
                    long want = 40 + 2;
                    if (gen == 1) {
                        assert_int_equal(collect_hint(0, hint), want);
                        garbage(10);
                        want = 20;
                    }
                    assert_int_equal(collect_hint(gen, hint), want);
                    for (int i = 0; i < LEN; i++)
                        assert_true(in_gen(ring[i], gen + 1));
                    assert_true(in_gen(q, gen + 1));
                    assert_int_equal(rcgc_refcount(RCGC_OBJ(q)), 1);
                    assert_int_equal(rcgc_refcount(RCGC_OBJ(ring[at])), 2);
                    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
                    rcgc_decref(RCGC_OBJ(q));
                    if (big)
                        rcgc_decref(RCGC_OBJ(keep));
                    else
                        rcgc_decref(RCGC_OBJ(ring[at]));
                    assert_int_equal(collect(2), LEN);
                }
            }
        }
    }
}

/* A recording scan records a weakly referenced garbage member through its
 * own branch (round 10b: the fast case tests no weak references): the
 * weak reference must be cleared by the collection, among garbage without
 * weak references before and after it, in generations 0 and 1, hint off
 * and on; and a weakly referenced member reached from a root after being
 * recorded keeps its referent. */
static rcgc_weakref *watched;   /* must be cleared before any clear */
static int cleared_late;

static int rwk_clear(rcgc_object *self)
{
    (void)self;
    if (watched != NULL && rcgc_weakref_peek(watched) != NULL)
        cleared_late++;
    return 0;
}

static const rcgc_type rwk_type = {
    .name = "RWeakClear", .size = sizeof(rnode), .refs = RCGC_REFS(rnode, a, b),
    .clear = rwk_clear};

static void test_recorded_weak_garbage(void **state)
{
    (void)state;
    for (int hint = 0; hint < 2; hint++) {
        for (int gen = 0; gen < 2; gen++) {
            garbage(10);
            cleared_late = 0;
            rnode *x = rn(&refs_type), *y = rn(&rwk_type);
            x->a = RCGC_OBJ(y);
            rn_set(&y->a, x);
            rcgc_weakref *wr = rcgc_weakref_new(RCGC_OBJ(y), NULL, NULL);
            assert_non_null(wr);
            rcgc_decref(RCGC_OBJ(x));
            /* b weakly referenced, recorded before its root a reaches it. */
            rnode *b = rn(&refs_type), *a = rn(&refs_type);
            assert_true((char *)b < (char *)a);
            a->a = RCGC_OBJ(b);
            rcgc_weakref *wb = rcgc_weakref_new(RCGC_OBJ(b), NULL, NULL);
            assert_non_null(wb);
            garbage(10);
            long want = 42;
            watched = wr;
            if (gen == 1) {
                assert_int_equal(collect_hint(0, hint), want);
                assert_null(rcgc_weakref_peek(wr));
                rcgc_decref((rcgc_object *)wr);
                x = rn(&refs_type);
                y = rn(&rwk_type);
                x->a = RCGC_OBJ(y);
                rn_set(&y->a, x);
                wr = rcgc_weakref_new(RCGC_OBJ(x), NULL, NULL);
                assert_non_null(wr);
                watched = wr;
                rcgc_decref(RCGC_OBJ(x));
                garbage(10);
                want = 22;
            }
            assert_true(rcgc_weakref_peek(wr) != NULL);
            assert_int_equal(collect_hint(gen, hint), want);
            watched = NULL;
            assert_int_equal(cleared_late, 0);
            assert_null(rcgc_weakref_peek(wr));
            assert_ptr_equal(rcgc_weakref_peek(wb), RCGC_OBJ(b));
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
            rcgc_decref((rcgc_object *)wr);
            rcgc_decref(RCGC_OBJ(a));
            assert_null(rcgc_weakref_peek(wb));
            rcgc_decref((rcgc_object *)wb);
            assert_int_equal(collect(2), 0);
        }
    }
}

/* A complete binary tree of two-field nodes, built parent first, with a
 * run of two one-field nodes (other_type) and a small tree again under
 * some leaves and a node
 * of another size class under others, held from outside only at its
 * root: the young drain (round 10b) traverses a reached member's last
 * reached child next without the stack and pushes the others; every node
 * must survive a generation-0 and a generation-1 collection among
 * garbage, hint off and on.  Returns the tree's root. */
static int tree_nodes;

static rnode *young_tree(int depth, int leafkind)
{
    rnode *t = rn(&refs_type);
    tree_nodes++;
    if (depth > 0) {
        t->a = RCGC_OBJ(young_tree(depth - 1, leafkind));
        t->b = RCGC_OBJ(young_tree(depth - 1, leafkind + 1));
    } else if (leafkind >= 0 && leafkind % 3 == 1) {
        /* Two one-field nodes, then a two-field subtree again. */
        onode *o1 = (onode *)rcgc_new(rt, &other_type), *o2 = (onode *)rcgc_new(rt, &other_type);
        assert_true(o1 != NULL && o2 != NULL);
        tree_nodes += 2;
        o1->b = RCGC_OBJ(o2);
        o2->b = RCGC_OBJ(young_tree(2, -100));   /* plain leaves */
        t->a = RCGC_OBJ(o1);
    } else if (leafkind >= 0 && leafkind % 3 == 2) {
        rnode *big = (rnode *)rcgc_new(rt, &rbig_type);
        assert_non_null(big);
        tree_nodes++;
        t->b = RCGC_OBJ(big);
    }
    return t;
}

static void test_young_drain_tree(void **state)
{
    (void)state;
    for (int hint = 0; hint < 2; hint++) {
        /* gen 2: a full collection (its gather marks leaves too, and the
         * full refs drain reaches them without traversing them). */
        for (int gen = 0; gen < 3; gen++) {
            tree_nodes = 0;
            garbage(10);
            rnode *root = young_tree(9, 0);
            garbage(10);
            if (gen == 1) {
                assert_int_equal(collect_hint(0, hint), 40);
                garbage(10);
            }
            assert_int_equal(collect_hint(gen, hint), gen == 1 ? 20 : 40);
            assert_true(in_gen(root, gen < 2 ? gen + 1 : 2));
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
            rcgc_decref(RCGC_OBJ(root));   /* the tree dies by its counts */
            assert_int_equal(collect(2), 0);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        }
    }
}

/* Y1 (round 13b): a young gather marks each member of the refs cache's
 * types whose every field is NULL (RCGC_OF_GC_LEAF), and the young refs
 * drain reaches such a member without traversing it.  Leaves reached by
 * a drain (two-field ones, one referenced twice, and a one-field one
 * whose other word is not a reference field), a leaf that is a root
 * itself, a leaf reached only through a traverse type, a one-field node
 * that is no leaf gathered through the cache's one-field hit, and leaves
 * in garbage: the live ones must move to the next generation, the
 * garbage ones be freed, and no scratch bit be left behind
 * (rcgc_validate).  Round 14a: the same in a full collection (gen 2),
 * whose gather marks leaves too and whose refs drain reaches them
 * without pushing them. */
static void test_young_leaves(void **state)
{
    (void)state;
    for (int hint = 0; hint < 2; hint++) {
        for (int gen = 0; gen < 3; gen++) {
            if (gen == 1) {
                garbage(5);
                assert_int_equal(collect_hint(0, hint), 10);
            }
            rnode *root = rn(&refs_type), *inner = rn(&refs_type), *l2 = rn(&refs_type);
            onode *l1 = (onode *)rcgc_new(rt, &other_type);
            assert_non_null(l1);
            root->a = RCGC_OBJ(inner);
            root->b = RCGC_OBJ(l1);
            l1->x = RCGC_OBJ(root);   /* not a reference field: no count */
            inner->a = RCGC_OBJ(l2);
            rn_set(&inner->b, l2);
            rnode *alone = rn(&refs_type);
            gnode *g = gn_new(&plain_type, 1);
            rnode *lg = rn(&refs_type);
            g->s[0] = RCGC_OBJ(lg);
            /* Two one-field nodes in a row (the gather's cache holds their
             * type when it reaches the second: a one-field hit), the
             * second not a leaf, under a two-field node. */
            onode *m0 = (onode *)rcgc_new(rt, &other_type);
            onode *m1 = (onode *)rcgc_new(rt, &other_type);
            assert_true(m0 != NULL && m1 != NULL);
            rnode *under = rn(&refs_type), *inner2 = rn(&refs_type);
            m1->b = RCGC_OBJ(under);
            inner2->a = RCGC_OBJ(m1);
            inner2->b = RCGC_OBJ(m0);
            g->s[1] = RCGC_OBJ(inner2);
            rnode *x = rn(&refs_type), *y = rn(&refs_type);
            x->a = RCGC_OBJ(y);
            y->a = rcgc_incref(RCGC_OBJ(x));
            x->b = RCGC_OBJ(rn(&refs_type));
            y->b = rcgc_new(rt, &other_type);
            assert_non_null(y->b);
            rcgc_decref(RCGC_OBJ(x));
            assert_int_equal(collect_hint(gen, hint), 4);
            const void *live[] = {root, inner, l2, l1, alone, g, lg, m0, m1, under, inner2};
            for (size_t i = 0; i < sizeof live / sizeof live[0]; i++)
                assert_true(in_gen(live[i], gen < 2 ? gen + 1 : 2));
            assert_int_equal(rcgc_refcount(RCGC_OBJ(l2)), 2);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
            l1->x = NULL;
            rcgc_decref(RCGC_OBJ(root));
            rcgc_decref(RCGC_OBJ(alone));
            rcgc_decref(RCGC_OBJ(g));
            assert_int_equal(collect(2), 0);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        }
    }
}

/* A bitmap word whose 64 blocks are all tracked is gathered block after
 * block (round 13b), and its non-members must stay out of the set: 256
 * nodes in a row are made old (generation 1, or 2 for a generation-1
 * collection), every other one is dropped and its block taken again by a
 * new node, so that words of old and young nodes alternate block by
 * block.  The young nodes form garbage cycles and live pairs: a
 * non-member taken for a member, or a member skipped, changes the count
 * or the survivors. */
static void test_gather_full_words(void **state)
{
    (void)state;
    for (int gen = 0; gen < 2; gen++) {
        enum { NOLD = 256, NYOUNG = 128 };
        rnode *old[NOLD], *young[NYOUNG];
        for (int i = 0; i < NOLD; i++)
            old[i] = rn(&refs_type);
        assert_int_equal(collect(gen == 0 ? 0 : 2), 0);
        for (int i = 1; i < NOLD; i += 2) {
            rcgc_decref(RCGC_OBJ(old[i]));
            old[i] = NULL;
        }
        for (int j = 0; j < NYOUNG; j++)
            young[j] = rn(&refs_type);
        for (int j = 0; j < NYOUNG; j += 2) {
            young[j]->a = RCGC_OBJ(young[j + 1]);
            if (j % 4 == 0) {   /* a garbage cycle */
                young[j + 1]->a = rcgc_incref(RCGC_OBJ(young[j]));
                rcgc_decref(RCGC_OBJ(young[j]));
                young[j] = young[j + 1] = NULL;
            } else {            /* a live pair, held at its first node */
                young[j + 1] = NULL;
            }
        }
        /* Old nodes that refer to young ones and to each other. */
        for (int i = 0; i + 2 < NOLD; i += 2) {
            rn_set(&old[i]->a, old[i + 2]);
            if (young[(i / 2) % NYOUNG] != NULL)
                rn_set(&old[i]->b, young[(i / 2) % NYOUNG]);
        }
        assert_int_equal(collect(gen), NYOUNG / 2);
        for (int j = 0; j < NYOUNG; j++)
            if (young[j] != NULL)
                assert_true(in_gen(young[j], gen + 1));
        for (int i = 0; i < NOLD; i += 2)
            assert_true(in_gen(old[i], gen + 1));
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        for (int j = 0; j < NYOUNG; j++)
            if (young[j] != NULL)
                rcgc_decref(RCGC_OBJ(young[j]));
        for (int i = 0; i < NOLD; i += 2)
            rcgc_decref(RCGC_OBJ(old[i]));
        assert_int_equal(collect(2), 0);
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    }
}

/* A full gather finds the members that move (not of generation 2) per
 * bitmap word from the AND and the OR of their flags, and reads the
 * headers again only for a word that mixes generation 2 with younger
 * members (gc.c's gather_moving).  Words of every kind: only old nodes,
 * old and young ones alternating (generations 0 and 1 among them), only
 * young ones; garbage cycles among the young; every survivor must end in
 * generation 2 with the generation counts exact. */
static void test_full_gather_mixed_words(void **state)
{
    (void)state;
    enum { NOLD = 512, NMIX = 256, NFRESH = 192 };
    rnode *old[NOLD], *fresh[NFRESH];
    for (int i = 0; i < NOLD; i++)
        old[i] = rn(&refs_type);
    assert_int_equal(collect(2), 0);
    assert_true(in_gen(old[0], 2) && in_gen(old[NOLD - 1], 2));
    /* Every other old node of the first NMIX replaced by a young one:
     * half of them moved to generation 1, the rest left in 0. */
    for (int i = 1; i < NMIX; i += 2) {
        rcgc_decref(RCGC_OBJ(old[i]));
        old[i] = NULL;
    }
    for (int i = 1; i < NMIX; i += 4)
        old[i] = rn(&refs_type);
    assert_int_equal(collect(0), 0);
    for (int i = 3; i < NMIX; i += 4)
        old[i] = rn(&refs_type);
    /* Then fresh nodes, whole words of generation 0: live pairs and
     * garbage cycles, the pairs held from old nodes. */
    for (int j = 0; j < NFRESH; j++)
        fresh[j] = rn(&refs_type);
    long garbage = 0;
    for (int j = 0; j < NFRESH; j += 2) {
        fresh[j]->a = RCGC_OBJ(fresh[j + 1]);
        if (j % 6 == 0) {
            fresh[j + 1]->a = rcgc_incref(RCGC_OBJ(fresh[j]));
            rcgc_decref(RCGC_OBJ(fresh[j]));
            fresh[j] = fresh[j + 1] = NULL;
            garbage += 2;
        } else {
            rn_set(&old[NMIX + j]->b, fresh[j]);
            rcgc_decref(RCGC_OBJ(fresh[j]));
            fresh[j + 1] = NULL;
        }
    }
    for (int i = 0; i + 1 < NOLD; i++)
        rn_set(&old[i]->a, old[i + 1]);
    assert_int_equal(collect(2), garbage);
    for (int i = 0; i < NOLD; i++)
        assert_true(in_gen(old[i], 2));
    for (int j = 0; j < NFRESH; j += 2)
        if (j % 6 != 0)
            assert_true(in_gen((rnode *)old[NMIX + j]->b, 2));
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    for (int i = 0; i < NOLD; i++)
        rcgc_decref(RCGC_OBJ(old[i]));
    assert_int_equal(collect(2), 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GC_TEST(test_hint_rule),
        GC_TEST(test_recorded_then_reached),
        GC_TEST(test_generation1_undo_counts),
        GC_TEST(test_many_undone),
        GC_TEST(test_saturated_with_hint),
        GC_TEST(test_gather_two_refs_types),
        GC_TEST(test_one_and_two_field_runs),
        GC_TEST(test_root_counted_before_gathered),
        GC_TEST(test_recorded_weak_garbage),
        GC_TEST(test_young_drain_tree),
        GC_TEST(test_young_leaves),
        GC_TEST(test_gather_full_words),
        GC_TEST(test_full_gather_mixed_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
