/* Fault injection over every allocation the collector, weak references,
 * weakref.finalize and the weak map make in a mixed workload: each failure
 * must leave a consistent heap (rcgc_validate), and what the workload could
 * still do must give correct answers. */
#include "gctest.h"

static void note_fin(void *arg)
{
    (*(int *)arg)++;
}

static int cb_calls;

static void count_cb(rcgc_runtime *r, const char *phase, const rcgc_gc_info *info, void *arg)
{
    (void)r;
    (void)phase;
    (void)info;
    (*(int *)arg)++;
}

/* A workload that touches every allocation site of issue 3's code; any step
 * may fail and is then skipped.  Returns the number of steps that failed. */
static int workload(int *finalized)
{
    int failed = 0;
    gnode *a = (gnode *)rcgc_new(rt, &fin_type);
    gnode *b = (gnode *)rcgc_new(rt, &plain_type);
    gnode *l = (gnode *)rcgc_new(rt, &legacy_type);
    if (!a || !b || !l) {
        rcgc_xdecref(RCGC_OBJ(a));
        rcgc_xdecref(RCGC_OBJ(b));
        rcgc_xdecref(RCGC_OBJ(l));
        return 1;
    }
    gn_set(a, 0, b);
    gn_set(b, 0, a);
    gn_set(l, 0, l);
    rcgc_weakref *w1 = rcgc_weakref_new(RCGC_OBJ(a), NULL, NULL);
    rcgc_weakref *w2 = rcgc_weakref_new_obj(RCGC_OBJ(b), NULL, RCGC_OBJ(l));
    failed += !w1 + !w2;
    rcgc_finalizer *f = rcgc_weakref_finalize(RCGC_OBJ(b), note_fin, finalized);
    failed += !f;
    rcgc_weakmap *m = rcgc_weakmap_new(rt);
    if (m) {
        failed += rcgc_weakmap_set(m, "a", RCGC_OBJ(a)) != RCGC_OK;
        failed += rcgc_weakmap_set(m, "b", RCGC_OBJ(b)) != RCGC_OK;
    } else {
        failed++;
    }
    rcgc_list *objs = rcgc_gc_get_objects(rt, -1);
    failed += !objs;
    rcgc_xdecref(RCGC_OBJ(objs));
    rcgc_object *target = RCGC_OBJ(a);
    rcgc_list *refs = rcgc_gc_get_referrers(rt, &target, 1);
    failed += !refs;
    rcgc_xdecref(RCGC_OBJ(refs));
    if (rcgc_gc_callback_add(rt, count_cb, &cb_calls) == RCGC_OK)
        rcgc_gc_collect(rt, 0);
    else
        failed++;
    rcgc_gc_callback_remove(rt, count_cb, &cb_calls);
    gn_drop(a);
    gn_drop(b);
    gn_drop(l);
    long r = rcgc_gc_collect(rt, 2);
    failed += r < 0;
    if (m) {
        (void)rcgc_weakmap_len(m);
        rcgc_decref(RCGC_OBJ(m));
    }
    rcgc_xdecref((rcgc_object *)w1);
    rcgc_xdecref((rcgc_object *)w2);
    return failed;
}

static void test_every_allocation_fails_once(void **state)
{
    (void)state;
    int clean_runs = 0, hit_runs = 0;
    for (long k = 1; k < 400 && clean_runs < 3; k++) {
        assert_int_equal(gc_setup(NULL), 0);
        int finalized = 0;
        rcgc_mem_fail_after(rt, k, 0);
        int failed = workload(&finalized);
        long hit = rcgc_mem_failures(rt);
        rcgc_mem_fail_after(rt, 0, 0);
        if (hit == 0)
            clean_runs++;   /* k is past the workload's last allocation */
        else
            hit_runs++;
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        /* Whatever failed, a collection now finds everything that is left. */
        long r = rcgc_gc_collect(rt, 2);
        assert_true(r >= 0);
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        if (hit == 0) {
            assert_int_equal(failed, 0);
            assert_int_equal(finalized, 1);
        }
        assert_int_equal(gc_teardown(NULL), 0);
    }
    assert_int_equal(clean_runs, 3);
    assert_true(hit_runs >= 20);   /* the workload really allocates */
}

/* Persistent failure from the k-th allocation on. */
static void test_allocations_fail_from_then_on(void **state)
{
    (void)state;
    for (long k = 1; k < 120; k++) {
        assert_int_equal(gc_setup(NULL), 0);
        int finalized = 0;
        rcgc_mem_fail_after(rt, k, 1);
        (void)workload(&finalized);
        rcgc_mem_fail_after(rt, 0, 0);
        assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
        assert_true(rcgc_gc_collect(rt, 2) >= 0);
        assert_int_equal(gc_teardown(NULL), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_allocation_fails_once),
        cmocka_unit_test(test_allocations_fail_from_then_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
