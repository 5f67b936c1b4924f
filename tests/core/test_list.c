/* Unit tests for the built-in list (list.c). */
#include "testutil.h"
#include "runtime.h"

static rcgc_runtime *new_rt(void)
{
    rcgc_config cfg = {.size = sizeof cfg, .gc_disabled = 1};
    rcgc_runtime *rt = rcgc_runtime_new(&cfg);
    assert_non_null(rt);
    return rt;
}

static int by_value(const rcgc_object *a, const rcgc_object *b)
{
    long x = ((const tu_node *)a)->value, y = ((const tu_node *)b)->value;
    return (x > y) - (x < y);
}

static void test_operations(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    rcgc_list *l = rcgc_list_new(rt);
    tu_node *n[5];
    for (int i = 0; i < 5; i++) {
        n[i] = tu_new_node(rt);
        n[i]->value = 10 - i;
        assert_int_equal(rcgc_list_append(l, RCGC_OBJ(n[i])), RCGC_OK);
        assert_int_equal(rcgc_refcount(RCGC_OBJ(n[i])), 2);
    }
    assert_int_equal(rcgc_list_len(l), 5);
    assert_ptr_equal(rcgc_list_get(l, 2), n[2]);
    assert_null(rcgc_list_get(l, 5));
    assert_int_equal(rcgc_list_index(l, RCGC_OBJ(n[3])), 3);
    assert_int_equal(rcgc_list_insert(l, 0, RCGC_OBJ(n[4])), RCGC_OK);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(n[4])), 3);
    assert_int_equal(rcgc_list_index(l, RCGC_OBJ(n[4])), 0);
    assert_int_equal(rcgc_list_remove(l, RCGC_OBJ(n[4])), RCGC_OK);
    assert_int_equal(rcgc_list_index(l, RCGC_OBJ(n[4])), 4);
    assert_int_equal(rcgc_list_remove(l, RCGC_OBJ(l)), RCGC_EINVAL);
    assert_int_equal(rcgc_list_set(l, 0, RCGC_OBJ(n[1])), RCGC_OK);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(n[0])), 1);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(n[1])), 3);
    assert_int_equal(rcgc_list_set(l, 9, RCGC_OBJ(n[1])), RCGC_EINVAL);
    assert_int_equal(rcgc_list_append(l, NULL), RCGC_EINVAL);
    rcgc_object *popped = rcgc_list_pop(l, 0);
    assert_ptr_equal(popped, n[1]);
    rcgc_decref(popped);
    assert_null(rcgc_list_pop(l, 100));
    rcgc_list_sort(l, by_value);
    for (size_t i = 1; i < rcgc_list_len(l); i++)
        assert_true(by_value(rcgc_list_get(l, i - 1), rcgc_list_get(l, i)) <= 0);
    rcgc_list_clear(l);
    assert_int_equal(rcgc_list_len(l), 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(rcgc_refcount(RCGC_OBJ(n[i])), 1);
        rcgc_decref(RCGC_OBJ(n[i]));
    }
    rcgc_decref(RCGC_OBJ(l));
    assert_int_equal(rt->obj.live_objects, 0);
    rcgc_runtime_free(rt);
}

/* A long sort is stable and correct (the merge path). */
static void test_sort_long(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    rcgc_list *l = rcgc_list_new(rt);
    uint64_t x = 7;
    for (int i = 0; i < 1000; i++) {
        tu_node *n = tu_new_node(rt);
        x = x * 6364136223846793005u + 1442695040888963407u;
        n->value = (long)(x >> 58);   /* many equal keys */
        n->b = NULL;
        n->a = NULL;
        rcgc_list_append(l, RCGC_OBJ(n));
        ((tu_node *)rcgc_list_get(l, (size_t)i))->value = n->value * 10000 + i;
        rcgc_decref(RCGC_OBJ(n));
    }
    rcgc_list_sort(l, by_value);
    for (size_t i = 1; i < rcgc_list_len(l); i++)
        assert_true(by_value(rcgc_list_get(l, i - 1), rcgc_list_get(l, i)) < 0);
    rcgc_decref(RCGC_OBJ(l));
    assert_int_equal(rt->obj.live_objects, 0);
    rcgc_runtime_free(rt);
}

/* Out of memory while growing leaves the list unchanged. */
static void test_append_oom(void **state)
{
    (void)state;
    rcgc_runtime *rt = new_rt();
    rcgc_list *l = rcgc_list_new(rt);
    tu_node *n = tu_new_node(rt);
    rcgc_mem_fail_after(rt, 1, 1);
    assert_int_equal(rcgc_list_append(l, RCGC_OBJ(n)), RCGC_ENOMEM);
    assert_int_equal(rcgc_list_len(l), 0);
    assert_int_equal(rcgc_refcount(RCGC_OBJ(n)), 1);
    assert_true(rcgc_mem_failures(rt) >= 1);
    rcgc_mem_fail_after(rt, 0, 0);
    assert_int_equal(rcgc_list_append(l, RCGC_OBJ(n)), RCGC_OK);
    rcgc_decref(RCGC_OBJ(n));
    rcgc_decref(RCGC_OBJ(l));
    assert_int_equal(rt->obj.live_objects, 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_runtime_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_operations),
        cmocka_unit_test(test_sort_long),
        cmocka_unit_test(test_append_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
