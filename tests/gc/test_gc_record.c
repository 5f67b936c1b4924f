/* The trial deletion's shortcuts of round 6a (docs/design-gc.md): the
 * partition's record tests a type once per run of its objects
 * (gc_work.plaintype), the gather and the young drain test membership and
 * move survivors with per-generation constants, and a generation-1
 * collection takes its count of generation-1 members from gens[1].  Each
 * test builds the case the shortcut could get wrong: a special type right
 * after a run of plain ones, members beside non-members of every
 * generation, survivors reached across generations, foreign members. */
#include "rnode.h"
#include "runtime.h"

static const rcgc_type big_type = {
    .name = "Big", .size = sizeof(gnode) + 1024, .traverse = gn_traverse, .clear = gn_clear,
    .dealloc = gn_dealloc};

/* A node whose two references are declared fields (no traverse). */
/* A finalizer, a resurrecting finalizer and a legacy finalizer, each in a
 * cycle made after a run of plain garbage, in collections of every
 * generation: each must be seen although the plain type is cached. */
static void test_special_type_after_plain_run(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen++) {
        fin_log.n = del_log.n = free_log.n = 0;
        make_garbage_cycles(40, 1);
        make_garbage_pair(&fin_type, 2, &plain_type, 3);
        make_garbage_cycles(40, 1);
        assert_int_equal(collect(gen), 160 + 2);
        assert_int_equal(log_count(&fin_log, 2), 1);
        assert_int_equal(log_count(&free_log, 2), 1);
        assert_int_equal(log_count(&free_log, 1), 160);

        /* Resurrection: the finalizer saves its node; its partner
         * survives with it. */
        make_garbage_cycles(40, 1);
        make_garbage_pair(&res_type, 4, &plain_type, 5);
        assert_int_equal(collect(gen), 80);
        assert_int_equal(log_count(&fin_log, 4), 1);
        assert_int_equal(log_count(&free_log, 4), 0);
        assert_int_equal(log_count(&free_log, 5), 0);
        rcgc_list_clear(saved);   /* now it goes: finalizer not run again */
        assert_int_equal(collect(2), 2);
        assert_int_equal(log_count(&fin_log, 4), 1);
        assert_int_equal(log_count(&free_log, 4), 1);

        /* A legacy finalizer: uncollectable, in gc.garbage, with what it
         * reaches. */
        make_garbage_cycles(40, 1);
        gnode *l = make_garbage_pair(&legacy_type, 6, &plain_type, 7);
        long uncollectable_before = 0;
        rcgc_gc_stats st[3];
        rcgc_gc_get_stats(rt, st);
        for (int g = 0; g < 3; g++)
            uncollectable_before += st[g].uncollectable;
        assert_int_equal(collect(gen), 80 + 2);
        rcgc_gc_get_stats(rt, st);
        long uncollectable = -uncollectable_before;
        for (int g = 0; g < 3; g++)
            uncollectable += st[g].uncollectable;
        assert_int_equal(uncollectable, 2);
        assert_int_equal(log_count(&free_log, 6), 0);
        rcgc_list *garbage = rcgc_gc_garbage(rt);
        assert_non_null(garbage);
        assert_true(rcgc_list_index(garbage, RCGC_OBJ(l)) >= 0);
        /* Break it by hand and let it go. */
        gn_set(l, 0, NULL);
        rcgc_list_clear(garbage);
        assert_int_equal(log_count(&free_log, 6), 1);
        assert_int_equal(log_count(&free_log, 7), 1);
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    }
}

typedef struct cbrec {
    int calls;
} cbrec;

static void count_cb(rcgc_weakref *w, void *arg)
{
    (void)w;
    ((cbrec *)arg)->calls++;
}

/* Weak references after a run of plain garbage: a weak reference object
 * in the trash (the weakref type: NEED_WEAK from the type) must not fire,
 * and a live one to a plain node (RCGC_OF_WEAKREFS on a node of the cached
 * type) must, once. */
static void test_weakrefs_after_plain_run(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen++) {
        cbrec live = {0}, trash = {0};
        make_garbage_cycles(300, 1);   /* more than a pool of gnodes */
        gnode *a = gn_new(&plain_type, 2), *b = gn_new(&plain_type, 3);
        gn_set(a, 0, b);
        gn_set(b, 0, a);
        rcgc_weakref *wl = rcgc_weakref_new(RCGC_OBJ(a), count_cb, &live);
        rcgc_weakref *wt = rcgc_weakref_new(RCGC_OBJ(b), count_cb, &trash);
        b->s[1] = (rcgc_object *)wt;   /* b owns wt: wt is trash */
        gn_drop(a);
        gn_drop(b);
        make_garbage_cycles(300, 1);
        assert_int_equal(collect(gen), 1200 + 3);
        assert_int_equal(live.calls, 1);
        assert_int_equal(trash.calls, 0);
        assert_null(rcgc_weakref_peek(wl));
        rcgc_decref((rcgc_object *)wl);
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    }
}

/* Refs nodes, traverse nodes and a finalizer in one cycle, types
 * alternating (the record's type cache refills at every switch), pooled
 * and foreign. */
static void test_mixed_kinds_in_one_set(void **state)
{
    (void)state;
    for (int gen = 0; gen < 3; gen++) {
        fin_log.n = free_log.n = 0;
        enum { N = 30 };
        gnode *first = gn_new(&plain_type, 1), *prev = first;
        for (int i = 0; i < N; i++) {
            rnode *r = (rnode *)rcgc_new(rt, &refs_type);
            assert_non_null(r);
            gnode *f = gn_new(i % 3 ? &plain_type : &fin_type, 10 + i);
            gnode *big = gn_new(&big_type, 100 + i);
            gn_set(prev, 0, (gnode *)r);   /* prev -> r -> f -> big */
            r->a = rcgc_incref(RCGC_OBJ(f));
            gn_set(f, 0, big);
            gn_drop(f);
            rcgc_decref(RCGC_OBJ(r));
            prev = big;
            gn_drop(big);
        }
        gn_set(prev, 0, first);
        gn_drop(first);
        assert_int_equal(collect(gen), 1 + 3 * N);
        for (int i = 0; i < N; i++) {
            assert_int_equal(log_count(&fin_log, 10 + i), i % 3 ? 0 : 1);
            assert_int_equal(log_count(&free_log, 10 + i), 1);
            assert_int_equal(log_count(&free_log, 100 + i), 1);
        }
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    }
}

/* Members beside non-members of every generation (and frozen ones) in the
 * same bitmap words, references across generations both ways: the young
 * gather must count only members (a count left on a non-member is caught
 * by rcgc_validate, C1), and survivors must land in the next generation
 * whichever member reached them. */
static void test_members_among_older_objects(void **state)
{
    (void)state;
    gnode *frozen = gn_new(&plain_type, 90);
    rcgc_gc_freeze(rt);
    gnode *old2 = gn_new(&plain_type, 91);
    collect(1);                       /* old2 -> generation 2 */
    gnode *old1 = gn_new(&plain_type, 92);
    collect(0);                       /* old1 -> generation 1 */
    assert_true(in_gen(old2, 2));
    assert_true(in_gen(old1, 1));
    for (int gen = 0; gen < 2; gen++) {
        free_log.n = 0;
        /* Young garbage pointing at every older object, and young nodes
         * kept only through older ones. */
        gnode *g1 = gn_new(&plain_type, 1), *g2 = gn_new(&plain_type, 2);
        gn_set(g1, 0, g2);
        gn_set(g2, 0, g1);
        gn_set(g1, 1, frozen);
        gn_set(g1, 2, old2);
        gn_set(g2, 1, old1);
        gnode *k1 = gn_new(&plain_type, 3), *k2 = gn_new(&plain_type, 4);
        gnode *k3 = gn_new(&plain_type, 5);
        gn_set(k1, 0, k2);   /* k3 <- k2 <- k1, k1 held by old1 or frozen */
        gn_set(k2, 0, k3);
        gn_set(k3, 0, k1);
        gn_set(gen ? old1 : frozen, 3, k1);
        gn_drop(g1);
        gn_drop(g2);
        gn_drop(k1);
        gn_drop(k2);
        gn_drop(k3);
        assert_int_equal(collect(gen), 2);
        assert_int_equal(log_count(&free_log, 1), 1);
        assert_int_equal(log_count(&free_log, 2), 1);
        assert_int_equal(free_log.n, 2);
        assert_true(in_gen(k1, gen + 1));
        assert_true(in_gen(k2, gen + 1));
        assert_true(in_gen(k3, gen + 1));
        assert_true(in_gen(old2, 2));
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        gn_set(gen ? old1 : frozen, 3, NULL);
        collect(2);
        if (gen == 0) {
            /* old1 went to generation 2 with that full collection: make
             * a new generation-1 object for the second round. */
            gn_drop(old1);
            old1 = gn_new(&plain_type, 93);
            collect(0);
            assert_true(in_gen(old1, 1));
        }
    }
    gn_drop(old1);
    gn_drop(old2);
    gn_drop(frozen);
}

/* A generation-1 collection whose members are pooled and foreign objects
 * of generations 0 and 1, some garbage and some live: its promotion counts
 * (taken from gens[1] less the foreign members) must leave every
 * generation count exact (G1, checked by rcgc_validate). */
static void test_generation1_counts_with_foreign(void **state)
{
    (void)state;
    long c[3];
    gnode *live1 = gn_new(&plain_type, 1), *big1 = gn_new(&big_type, 2);
    gn_set(live1, 0, big1);
    gnode *gar1 = gn_new(&plain_type, 3), *biggar1 = gn_new(&big_type, 4);
    gn_set(gar1, 0, biggar1);
    gn_set(biggar1, 0, gar1);
    collect(0);                       /* all four -> generation 1 */
    assert_true(in_gen(gar1, 1));
    assert_true(in_gen(big1, 1));
    gn_drop(gar1);
    gn_drop(biggar1);                 /* generation-1 garbage */
    gnode *live0 = gn_new(&plain_type, 5), *big0 = gn_new(&big_type, 6);
    gn_set(live0, 0, big0);
    gn_set(big0, 0, live1);
    gnode *gar0 = gn_new(&plain_type, 7);
    gn_set(gar0, 0, gar0);
    gn_drop(gar0);
    gn_drop(big0);
    gn_drop(big1);
    assert_int_equal(collect(1), 3);
    assert_int_equal(log_count(&free_log, 3), 1);
    assert_int_equal(log_count(&free_log, 4), 1);
    assert_int_equal(log_count(&free_log, 7), 1);
    assert_true(in_gen(live1, 2));
    assert_true(in_gen(live0, 2));
    assert_true(in_gen(live0->s[0], 2));
    rcgc_gc_get_count(rt, c);
    assert_int_equal(c[1], 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    gn_drop(live0);
    gn_drop(live1);
}

/* Round 7: the young drain of a set holding refs types keeps its stack and
 * counts in locals (gc.c, gc_ydrain); a foreign or saturated member that
 * such a drain meets goes through the slow path, which must take that
 * state and give it back.  Each member below is reached only through the
 * drain, most of them only through the slow-path member: a lost push or
 * count leaves them unreachable (collected) or breaks the counts. */
enum { YSAT_N = (1 << 20) + 5 };

static void test_young_drain_slow_members(void **state)
{
    (void)state;
    /* Foreign: root r -> a -> f (foreign) -> b -> c -> a. */
    rnode *r = rn(&refs_type), *a = rn(&refs_type), *b = rn(&refs_type), *c = rn(&refs_type);
    gnode *f = gn_new(&big_type, 8);
    assert_true(f->ob.flags & RCGC_OF_FOREIGN);
    rn_set(&r->a, a);
    rn_set(&a->a, f);
    gn_set(f, 0, NULL);
    RCGC_SETREF(f->s[0], rcgc_incref(RCGC_OBJ(b)));
    rn_set(&b->a, c);
    rn_set(&c->b, a);
    rcgc_decref(RCGC_OBJ(a));
    rcgc_decref(RCGC_OBJ(b));
    rcgc_decref(RCGC_OBJ(c));
    gn_drop(f);
    assert_int_equal(collect(0), 0);   /* young == 1 */
    assert_true(in_gen(c, 1) && in_gen(b, 1) && in_gen(f, 1));
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    assert_int_equal(collect(1), 0);   /* young == 2 */
    assert_true(in_gen(c, 2) && in_gen(b, 2) && in_gen(f, 2));
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_decref(RCGC_OBJ(r));
    assert_int_equal(collect(2), 4);
    assert_int_equal(log_count(&free_log, 8), 1);

    /* Saturated: x is referenced by YSAT_N holders (field a), which form a
     * chain (field b) that x heads (x.a = h[0]); only the last holder is
     * held from outside, so x is reached by the drain, saturated. */
    rnode *prev;
    rnode *x = rn_holder_chain(&refs_type, YSAT_N, &prev);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(x)), YSAT_N);
    assert_int_equal(collect(0), 0);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(x)), YSAT_N);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(prev)), 2);
    assert_true(in_gen(x, 1));
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    assert_int_equal(collect(1), 0);
    assert_true(in_gen(x, 2));
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_decref(RCGC_OBJ(prev));
    assert_int_equal(collect(2), YSAT_N + 1);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
}

/* A saturated member that is a root of a young set, found by the mark
 * scan (not by a drain): x is referenced by YSAT_N holders (field a), which
 * form a chain (field b) that x heads, and only x is held from outside.
 * The young scan tests members that fail its fast test for saturation
 * only when the gather saw one (w->saturated); with that test left out,
 * x and its chain are taken for garbage.  Generation-0 and generation-1
 * collections, the hint off and on (a saturated set never records). */
static void test_young_scan_saturated_root(void **state)
{
    (void)state;
    for (int g = 0; g < 2; g++) {
        for (int hint = 0; hint < 2; hint++) {
            rnode *prev;
            rnode *x = rn_holder_chain(&refs_type, YSAT_N, &prev);
            rcgc_incref(RCGC_OBJ(x));
            rcgc_decref(RCGC_OBJ(prev));   /* the chain lives through x only */
            assert_int_equal(rcgc_refcount(RCGC_OBJ(x)), YSAT_N + 1);
            rt->gc.young_garbage = hint;
            assert_int_equal(collect(g), 0);
            assert_int_equal(rcgc_refcount(RCGC_OBJ(x)), YSAT_N + 1);
            assert_int_equal(rcgc_refcount(RCGC_OBJ(prev)), 1);
            assert_true(in_gen(x, g + 1) && in_gen(prev, g + 1));
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
            rcgc_decref(RCGC_OBJ(x));
            assert_int_equal(collect(2), YSAT_N + 1);
            assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        }
    }
}

/* A node of rnode's layout whose only declared reference is a (the refs
 * cache's one-field shape). */
static const rcgc_type rone_type = {
    .name = "ROne", .size = sizeof(rnode), .refs = RCGC_REFS(rnode, a)};

/* The full drain of a set with refs types (gc.c's full_drain_refs, its
 * state in locals): a complete tree of two-field nodes in two size
 * classes, made in a scrambled order (so that the drain goes through the
 * prefetch ring), whose edges pass here and there through a one-field
 * node, a pooled node of a traverse type (the cache's miss path) or a
 * foreign node (the slow visit); held only at its root, it survives full
 * collections whole, then is found whole as garbage.  Then a saturated
 * member reached only by a full drain (x heads a chain of YSAT_N holders
 * held at the last one).  Fails when the drain's locals and w disagree
 * after a call that uses w's (live members freed, or the validator's
 * counts off). */
static void test_full_drain_refs_slow_members(void **state)
{
    (void)state;
    enum { N = 4095 };   /* a complete binary tree of depth 11 */
    static rnode *t[N];
    int extra = 0;
    for (int k = 0; k < N; k++) {
        int i = (k * 2048) % N;   /* a permutation: gcd(2048, N) = 1 */
        t[i] = rn(i % 7 == 3 ? &rbig_type : &refs_type);
    }
    for (int i = 1; i < N; i++) {
        rnode *p = t[(i - 1) / 2];
        rcgc_object **slot = (i - 1) % 2 ? &p->b : &p->a;
        if (i % 5 == 2) {
            rnode *l = rn(&rone_type);
            rn_set(&l->a, t[i]);
            rn_set(slot, l);
            rcgc_decref(RCGC_OBJ(l));
            extra++;
        } else if (i % 11 == 4 || i % 13 == 6) {
            gnode *g = gn_new(i % 11 == 4 ? &big_type : &plain_type, 9);
            assert_true(i % 11 != 4 || (g->ob.flags & RCGC_OF_FOREIGN));
            RCGC_SETREF(g->s[0], rcgc_incref(RCGC_OBJ(t[i])));
            rn_set(slot, g);
            gn_drop(g);
            extra++;
        } else {
            rn_set(slot, t[i]);
        }
    }
    for (int i = 1; i < N; i++)
        rcgc_decref(RCGC_OBJ(t[i]));
    free_log.n = 0;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(collect(2), 0);
        for (int i = 1; i < N; i++)
            assert_int_equal(rcgc_refcount(RCGC_OBJ(t[i])), 1);
        assert_true(in_gen(t[N - 1], 2) && in_gen(t[N / 2], 2));
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    }
    assert_int_equal(log_count(&free_log, 9), 0);
    /* Garbage whole: a cycle through the root keeps the counts away from
     * reference counting. */
    rn_set(&t[N - 1]->a, t[0]);
    rcgc_decref(RCGC_OBJ(t[0]));
    assert_int_equal(collect(2), N + extra);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);

    rnode *prev;
    rnode *x = rn_holder_chain(&refs_type, YSAT_N, &prev);
    assert_int_equal(collect(2), 0);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(x)), YSAT_N);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(prev)), 2);
    assert_true(in_gen(x, 2) && in_gen(prev, 2));
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_decref(RCGC_OBJ(prev));
    assert_int_equal(collect(2), YSAT_N + 1);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        GC_TEST(test_special_type_after_plain_run),
        GC_TEST(test_weakrefs_after_plain_run),
        GC_TEST(test_mixed_kinds_in_one_set),
        GC_TEST(test_members_among_older_objects),
        GC_TEST(test_generation1_counts_with_foreign),
        GC_TEST(test_young_drain_slow_members),
        GC_TEST(test_young_scan_saturated_root),
        GC_TEST(test_full_drain_refs_slow_members),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
