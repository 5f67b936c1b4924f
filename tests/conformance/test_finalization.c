/*
 * test_finalization.c - CPython 3.11's Lib/test/test_finalization.py (PEP
 * 442 finalization semantics) ported to rcgc.
 *
 * The Python helper classes map to cnode types (conf.h): Simple ->
 * conf_fin_type, SimpleResurrector -> conf_res_type, Suicidal* ->
 * conf_suicidal_type, NonGC -> conf_leaf_fin_type (no traverse: never
 * tracked), Legacy -> conf_legacy_fin_type (both a PEP 442 finalizer and a
 * legacy one, like a class with __del__ and __tp_del__).  Every finalizer
 * runs the test's sanity check (check_sanity) before its side effect; a
 * failed check is counted in conf_errors and fails the test.
 *
 * SimpleBase.test() (collection disabled, logs cleared, cleanup after) is
 * the fixture; TestBase.tearDown's "nothing in gc.garbage" is checked by
 * fin_teardown.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "conf.h"

static long collect(void)
{
    return rcgc_gc_collect(conf_rt, 2);
}

/* SimpleBase.check_sanity: self.id_ == id(self), i.e. the object's memory
 * is still the object it was. */
static void simple_sanity(cnode *self)
{
    if (self->ctx != self)
        conf_error("node %d: identity lost", self->id);
}

/* SelfCycleBase.check_sanity: also self.ref is self. */
static void self_cycle_sanity(cnode *self)
{
    simple_sanity(self);
    if (self->slot[0] != RCGC_OBJ(self))
        conf_error("node %d: self.ref is not self", self->id);
}

static cnode *make(const rcgc_type *type, int id, cnode_hook sanity)
{
    cnode *n = conf_new(type, id);
    n->ctx = n;
    n->on_finalize = sanity;
    n->on_legacy_del = sanity;
    return n;
}

static rcgc_weakref *weak(cnode *n)
{
    rcgc_weakref *w = rcgc_weakref_new(RCGC_OBJ(n), NULL, NULL);
    assert_non_null(w);
    return w;
}

/* wr() is None */
static void assert_dead(rcgc_weakref *w)
{
    rcgc_object *o = rcgc_weakref_get(w);
    assert_null(o);
}

/* wr() is not None */
static void assert_alive(rcgc_weakref *w)
{
    rcgc_object *o = rcgc_weakref_get(w);
    assert_non_null(o);
    rcgc_decref(o);
}

static void assert_del_calls(const int *ids, size_t n)
{
    assert_true(conf_log_same(&conf_del_calls, ids, n));
}

static void assert_tp_del_calls(const int *ids, size_t n)
{
    assert_true(conf_log_same(&conf_tp_del_calls, ids, n));
}

static void assert_survivors(const int *ids, size_t n)
{
    assert_int_equal(rcgc_list_len(conf_survivors), n);
    conf_log got = {NULL, 0, 0};
    for (size_t i = 0; i < n; i++)
        conf_log_add(&got, ((cnode *)rcgc_list_get(conf_survivors, i))->id);
    int same = conf_log_same(&got, ids, n);
    free(got.ids);
    assert_true(same);
}

static void clear_survivors(void)
{
    rcgc_list_clear(conf_survivors);
}

/* One step of the CPython tests' pattern: gc.collect(), then
 * assert_del_calls(dels) and assert_survivors(survivors). */
static void collect_expect(const int *dels, size_t ndels, const int *survivors, size_t nsurv)
{
    collect();
    assert_del_calls(dels, ndels);
    assert_survivors(survivors, nsurv);
}

/* The body shared by the tests in which object 1, referenced only by the
 * test and perhaps by itself, is finalized once, freed once and never
 * resurrected: two collections, the weak reference dead after each. */
static void check_finalized_and_freed_once(cnode *s)
{
    int ids[] = {1};
    rcgc_weakref *wr = weak(s);
    rcgc_decref(RCGC_OBJ(s));
    collect_expect(ids, 1, NULL, 0);
    assert_dead(wr);
    collect_expect(ids, 1, NULL, 0);
    assert_dead(wr);
    assert_int_equal(conf_log_count(&conf_freed, 1), 1);
    assert_int_equal(conf_errors, 0);
    rcgc_decref(RCGC_OBJ(wr));
}

static int fin_teardown(void **state)
{
    int garbage_empty = rcgc_list_len(rcgc_gc_garbage(conf_rt)) == 0;
    int r = conf_teardown(state);
    if (!garbage_empty)
        fprintf(stderr, "conformance: gc.garbage is not empty after the test\n");
    return garbage_empty ? r : -1;
}

/* LegacyFinalizationTest.tearDown clears gc.garbage first. */
static int legacy_teardown(void **state)
{
    conf_cleaning = 1;
    rcgc_list_clear(rcgc_gc_garbage(conf_rt));
    collect();
    return fin_teardown(state);
}

/* ---------------------------------------------- SimpleFinalizationTest */

/* ports test_finalization.SimpleFinalizationTest.test_simple */
static void SimpleFinalizationTest_test_simple(void **state)
{
    (void)state;
    check_finalized_and_freed_once(make(&conf_fin_type, 1, simple_sanity));
}

/* ports test_finalization.SimpleFinalizationTest.test_simple_resurrect: an
 * object resurrected by its finalizer outside any cycle keeps its weak
 * references (the finalizer runs before they are cleared); once dropped
 * again it is freed without a second finalization. */
static void SimpleFinalizationTest_test_simple_resurrect(void **state)
{
    (void)state;
    cnode *s = make(&conf_res_type, 1, simple_sanity);
    int ids[] = {1};
    rcgc_weakref *wr = weak(s);
    rcgc_decref(RCGC_OBJ(s));
    collect_expect(ids, 1, ids, 1);
    assert_alive(wr);
    clear_survivors();
    collect_expect(ids, 1, NULL, 0);
    assert_dead(wr);
    assert_int_equal(conf_errors, 0);
    rcgc_decref(RCGC_OBJ(wr));
}

/* ports test_finalization.SimpleFinalizationTest.test_non_gc: an object of
 * a type without traverse (not tracked) is finalized by reference counting,
 * once. */
static void SimpleFinalizationTest_test_non_gc(void **state)
{
    (void)state;
    cnode *s = make(&conf_leaf_fin_type, 1, simple_sanity);
    assert_false(rcgc_gc_is_tracked(RCGC_OBJ(s)));
    int ids[] = {1};
    rcgc_decref(RCGC_OBJ(s));
    collect_expect(ids, 1, NULL, 0);
    collect_expect(ids, 1, NULL, 0);
    assert_int_equal(conf_errors, 0);
}

/* ports test_finalization.SimpleFinalizationTest.test_non_gc_resurrect.
 * INTENTIONAL DIFFERENCE: CPython keeps the "finalized" bit in the GC
 * header, which objects of non-GC types do not have, so it runs their
 * finalizer again at every deallocation (del_calls == ids * 2, and the
 * object resurrects again).  rcgc keeps the bit in the header every object
 * has, and include/rcgc.h promises "runs at most once per object, ever":
 * the second drop frees the object without finalizing it. */
static void SimpleFinalizationTest_test_non_gc_resurrect(void **state)
{
    (void)state;
    cnode *s = make(&conf_leaf_res_type, 1, simple_sanity);
    assert_false(rcgc_gc_is_tracked(RCGC_OBJ(s)));
    int ids[] = {1};
    rcgc_decref(RCGC_OBJ(s));
    collect_expect(ids, 1, ids, 1);
    clear_survivors();
    collect();
    assert_del_calls(ids, 1);          /* CPython: ids * 2 */
    assert_survivors(NULL, 0);         /* CPython: ids */
    assert_int_equal(conf_log_count(&conf_freed, 1), 1);
    assert_int_equal(conf_errors, 0);
}

/* ------------------------------------------- SelfCycleFinalizationTest */

static cnode *self_cycle(const rcgc_type *type, int id)
{
    cnode *s = make(type, id, self_cycle_sanity);
    conf_set(s, 0, s);
    return s;
}

/* ports test_finalization.SelfCycleFinalizationTest.test_simple */
static void SelfCycleFinalizationTest_test_simple(void **state)
{
    (void)state;
    check_finalized_and_freed_once(self_cycle(&conf_fin_type, 1));
}

/* ports test_finalization.SelfCycleFinalizationTest.test_simple_resurrect:
 * a finalizer may resurrect cyclic trash; the weak references were cleared
 * before it ran (CPython's "XXX is this desirable?"), and a second drop does
 * not finalize again. */
static void SelfCycleFinalizationTest_test_simple_resurrect(void **state)
{
    (void)state;
    cnode *s = self_cycle(&conf_res_type, 1);
    int ids[] = {1};
    rcgc_weakref *wr = weak(s);
    rcgc_decref(RCGC_OBJ(s));
    collect_expect(ids, 1, ids, 1);
    assert_dead(wr);
    clear_survivors();
    collect_expect(ids, 1, NULL, 0);
    assert_dead(wr);
    assert_int_equal(conf_log_count(&conf_freed, 1), 1);
    assert_int_equal(conf_errors, 0);
    rcgc_decref(RCGC_OBJ(wr));
}

/* ports test_finalization.SelfCycleFinalizationTest.test_simple_suicide: the
 * finalizer breaks the object's own cycle (kills its last reference). */
static void SelfCycleFinalizationTest_test_simple_suicide(void **state)
{
    (void)state;
    check_finalized_and_freed_once(self_cycle(&conf_suicidal_type, 1));
}

/* ------------------------------------------ CycleChainFinalizationTest */

#define LEFT 0
#define RIGHT 1

/* ChainedBase.check_sanity, run before the node's own side effect: its
 * neighbours still point back at it unless they already cut themselves
 * loose (suicided). */
static void chain_sanity(cnode *self)
{
    simple_sanity(self);
    if (self->suicided) {
        if (self->slot[LEFT] || self->slot[RIGHT])
            conf_error("node %d: suicided but still linked", self->id);
        return;
    }
    cnode *left = (cnode *)self->slot[LEFT];
    cnode *right = (cnode *)self->slot[RIGHT];
    if (!left || !right) {
        conf_error("node %d: lost a neighbour", self->id);
        return;
    }
    if (left->suicided ? left->slot[RIGHT] != NULL
                       : left->slot[RIGHT] != RCGC_OBJ(self))
        conf_error("node %d: left.right is wrong", self->id);
    if (right->suicided ? right->slot[LEFT] != NULL
                        : right->slot[LEFT] != RCGC_OBJ(self))
        conf_error("node %d: right.left is wrong", self->id);
}

enum { SIMPLE, RESURRECT, SUICIDAL };

static const rcgc_type *chain_type(int kind)
{
    return kind == SIMPLE ? &conf_fin_type
         : kind == RESURRECT ? &conf_res_type : &conf_suicidal_type;
}

#define MAXCHAIN 8

/* build_chain: nodes[i].left = nodes[i-1], nodes[i-1].right = nodes[i]
 * (Python's nodes[-1] closes the ring).  Ids are 1..n. */
static void build_chain(const int *kinds, size_t n, cnode **nodes)
{
    for (size_t i = 0; i < n; i++)
        nodes[i] = make(chain_type(kinds[i]), (int)i + 1, chain_sanity);
    for (size_t i = 0; i < n; i++) {
        cnode *left = nodes[(i + n - 1) % n];
        conf_set(nodes[i], LEFT, left);
        conf_set(left, RIGHT, nodes[i]);
    }
}

static void check_non_resurrecting_chain(const int *kinds, size_t n)
{
    cnode *nodes[MAXCHAIN];
    rcgc_weakref *wrs[MAXCHAIN];
    int ids[MAXCHAIN];
    build_chain(kinds, n, nodes);
    for (size_t i = 0; i < n; i++) {
        ids[i] = nodes[i]->id;
        wrs[i] = weak(nodes[i]);
    }
    for (size_t i = 0; i < n; i++)
        rcgc_decref(RCGC_OBJ(nodes[i]));
    collect_expect(ids, n, NULL, 0);
    for (size_t i = 0; i < n; i++)
        assert_dead(wrs[i]);
    collect();
    assert_del_calls(ids, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(conf_log_count(&conf_freed, ids[i]), 1);
        rcgc_decref(RCGC_OBJ(wrs[i]));
    }
    assert_int_equal(conf_errors, 0);
}

static void check_resurrecting_chain(const int *kinds, size_t n)
{
    cnode *nodes[MAXCHAIN];
    rcgc_weakref *wrs[MAXCHAIN];
    int ids[MAXCHAIN], survivor_ids[MAXCHAIN];
    size_t nsurv = 0;
    build_chain(kinds, n, nodes);
    for (size_t i = 0; i < n; i++) {
        ids[i] = nodes[i]->id;
        if (kinds[i] == RESURRECT)
            survivor_ids[nsurv++] = ids[i];
        wrs[i] = weak(nodes[i]);
    }
    for (size_t i = 0; i < n; i++)
        rcgc_decref(RCGC_OBJ(nodes[i]));
    collect_expect(ids, n, survivor_ids, nsurv);
    for (size_t i = 0; i < n; i++)        /* CPython: "XXX desirable?" */
        assert_dead(wrs[i]);
    assert_int_equal(conf_freed.n, 0);   /* all reachable from a survivor */
    clear_survivors();
    collect_expect(ids, n, NULL, 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(conf_log_count(&conf_freed, ids[i]), 1);
        rcgc_decref(RCGC_OBJ(wrs[i]));
    }
    assert_int_equal(conf_errors, 0);
}

#define N_(a) (sizeof(a) / sizeof((a)[0]))

/* ports test_finalization.CycleChainFinalizationTest.test_homogenous */
static void CycleChainFinalizationTest_test_homogenous(void **state)
{
    (void)state;
    static const int k[] = {SIMPLE, SIMPLE, SIMPLE};
    check_non_resurrecting_chain(k, N_(k));
}

/* ports test_finalization.CycleChainFinalizationTest.test_homogenous_resurrect */
static void CycleChainFinalizationTest_test_homogenous_resurrect(void **state)
{
    (void)state;
    static const int k[] = {RESURRECT, RESURRECT, RESURRECT};
    check_resurrecting_chain(k, N_(k));
}

/* ports test_finalization.CycleChainFinalizationTest.test_homogenous_suicidal */
static void CycleChainFinalizationTest_test_homogenous_suicidal(void **state)
{
    (void)state;
    static const int k[] = {SUICIDAL, SUICIDAL, SUICIDAL};
    check_non_resurrecting_chain(k, N_(k));
}

/* ports test_finalization.CycleChainFinalizationTest.test_heterogenous_suicidal_one */
static void CycleChainFinalizationTest_test_heterogenous_suicidal_one(void **state)
{
    (void)state;
    static const int k[] = {SUICIDAL, SIMPLE, SUICIDAL, SIMPLE};
    check_non_resurrecting_chain(k, N_(k));
}

/* ports test_finalization.CycleChainFinalizationTest.test_heterogenous_suicidal_two */
static void CycleChainFinalizationTest_test_heterogenous_suicidal_two(void **state)
{
    (void)state;
    static const int k[] = {SUICIDAL, SUICIDAL, SIMPLE, SIMPLE};
    check_non_resurrecting_chain(k, N_(k));
}

/* ports test_finalization.CycleChainFinalizationTest.test_heterogenous_resurrect_one */
static void CycleChainFinalizationTest_test_heterogenous_resurrect_one(void **state)
{
    (void)state;
    static const int k[] = {RESURRECT, SIMPLE, RESURRECT, SIMPLE};
    check_resurrecting_chain(k, N_(k));
}

/* ports test_finalization.CycleChainFinalizationTest.test_heterogenous_resurrect_two */
static void CycleChainFinalizationTest_test_heterogenous_resurrect_two(void **state)
{
    (void)state;
    static const int k[] = {RESURRECT, SIMPLE, SUICIDAL, RESURRECT, SIMPLE, SUICIDAL};
    check_resurrecting_chain(k, N_(k));
}

/* ports test_finalization.CycleChainFinalizationTest.test_heterogenous_resurrect_three */
static void CycleChainFinalizationTest_test_heterogenous_resurrect_three(void **state)
{
    (void)state;
    static const int k[] = {RESURRECT, RESURRECT, SIMPLE, SIMPLE, SUICIDAL, SUICIDAL};
    check_resurrecting_chain(k, N_(k));
}

/* ---------------------------------------------- LegacyFinalizationTest */

/* ports test_finalization.LegacyFinalizationTest.test_legacy: outside a
 * cycle, deallocation runs the PEP 442 finalizer, then the legacy one. */
static void LegacyFinalizationTest_test_legacy(void **state)
{
    (void)state;
    cnode *s = make(&conf_legacy_fin_type, 1, simple_sanity);
    int ids[] = {1};
    rcgc_weakref *wr = weak(s);
    rcgc_decref(RCGC_OBJ(s));
    collect();
    assert_del_calls(ids, 1);
    assert_tp_del_calls(ids, 1);
    assert_survivors(NULL, 0);
    assert_dead(wr);
    collect();
    assert_del_calls(ids, 1);
    assert_tp_del_calls(ids, 1);
    assert_int_equal(conf_errors, 0);
    rcgc_decref(RCGC_OBJ(wr));
}

/* ports test_finalization.LegacyFinalizationTest.test_legacy_resurrect: weak
 * references are cleared before the legacy finalizer runs; a legacy
 * finalizer runs at every deallocation (it may resurrect again), while the
 * PEP 442 one runs once. */
static void LegacyFinalizationTest_test_legacy_resurrect(void **state)
{
    (void)state;
    cnode *s = make(&conf_legacy_res_type, 1, simple_sanity);
    int ids[] = {1}, ids2[] = {1, 1};
    rcgc_weakref *wr = weak(s);
    rcgc_decref(RCGC_OBJ(s));
    collect();
    assert_del_calls(ids, 1);
    assert_tp_del_calls(ids, 1);
    assert_survivors(ids, 1);
    assert_dead(wr);
    clear_survivors();
    collect();
    assert_del_calls(ids, 1);
    assert_tp_del_calls(ids2, 2);
    assert_survivors(ids, 1);
    assert_int_equal(conf_errors, 0);
    /* The `with SimpleBase.test()` cleanup: no more side effects. */
    conf_cleaning = 1;
    clear_survivors();
    collect();
    conf_cleaning = 0;
    assert_int_equal(conf_log_count(&conf_freed, 1), 1);
    assert_dead(wr);
    rcgc_decref(RCGC_OBJ(wr));
}

/* ports test_finalization.LegacyFinalizationTest.test_legacy_self_cycle:
 * self-cycles with legacy finalizers end up in gc.garbage, no finalizer of
 * either kind runs, and weak references to them stay alive. */
static void LegacyFinalizationTest_test_legacy_self_cycle(void **state)
{
    (void)state;
    cnode *s = make(&conf_legacy_fin_type, 1, self_cycle_sanity);
    conf_set(s, 0, s);
    int ids[] = {1};
    rcgc_weakref *wr = weak(s);
    rcgc_decref(RCGC_OBJ(s));
    collect();
    assert_del_calls(NULL, 0);
    assert_tp_del_calls(NULL, 0);
    assert_survivors(NULL, 0);
    rcgc_list *g = rcgc_gc_garbage(conf_rt);
    assert_int_equal(rcgc_list_len(g), 1);
    assert_int_equal(((cnode *)rcgc_list_get(g, 0))->id, ids[0]);
    assert_alive(wr);
    conf_unset((cnode *)rcgc_list_get(g, 0), 0);   /* gc.garbage[0].ref = None */
    /* SimpleBase._cleanup: gc.garbage.clear(); gc.collect() */
    conf_cleaning = 1;
    rcgc_list_clear(g);
    collect();
    conf_cleaning = 0;
    assert_int_equal(rcgc_list_len(g), 0);
    assert_dead(wr);
    assert_int_equal(conf_log_count(&conf_freed, 1), 1);
    assert_int_equal(conf_errors, 0);
    rcgc_decref(RCGC_OBJ(wr));
}

#define T(name) cmocka_unit_test_setup_teardown(name, conf_setup, fin_teardown)
#define TL(name) cmocka_unit_test_setup_teardown(name, conf_setup, legacy_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(SimpleFinalizationTest_test_simple),
        T(SimpleFinalizationTest_test_simple_resurrect),
        T(SimpleFinalizationTest_test_non_gc),
        T(SimpleFinalizationTest_test_non_gc_resurrect),
        T(SelfCycleFinalizationTest_test_simple),
        T(SelfCycleFinalizationTest_test_simple_resurrect),
        T(SelfCycleFinalizationTest_test_simple_suicide),
        T(CycleChainFinalizationTest_test_homogenous),
        T(CycleChainFinalizationTest_test_homogenous_resurrect),
        T(CycleChainFinalizationTest_test_homogenous_suicidal),
        T(CycleChainFinalizationTest_test_heterogenous_suicidal_one),
        T(CycleChainFinalizationTest_test_heterogenous_suicidal_two),
        T(CycleChainFinalizationTest_test_heterogenous_resurrect_one),
        T(CycleChainFinalizationTest_test_heterogenous_resurrect_two),
        T(CycleChainFinalizationTest_test_heterogenous_resurrect_three),
        TL(LegacyFinalizationTest_test_legacy),
        TL(LegacyFinalizationTest_test_legacy_resurrect),
        TL(LegacyFinalizationTest_test_legacy_self_cycle),
    };
    return cmocka_run_group_tests_name("test_finalization", tests, NULL, NULL);
}
