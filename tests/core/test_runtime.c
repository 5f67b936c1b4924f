/* Unit tests for runtimes: configuration, environment, OOM handler,
 * threads (runtime.c). */
#include <pthread.h>
#include "testutil.h"
#include "runtime.h"

static void *malloc_only(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n);
}

static void test_config_errors(void **state)
{
    (void)state;
    rcgc_config bad = {.size = 3};
    assert_null(rcgc_runtime_new(&bad));
    rcgc_config mode = {.size = sizeof mode, .malloc_mode = "bogus"};
    assert_null(rcgc_runtime_new(&mode));
    rcgc_config half = {.size = sizeof half};
    half.allocators[RCGC_DOMAIN_OBJ].malloc = malloc_only;
    assert_null(rcgc_runtime_new(&half));   /* malloc without the rest */
    setenv("RCGC_TRACEMALLOC", "0x", 1);
    assert_null(rcgc_runtime_new(NULL));
    unsetenv("RCGC_TRACEMALLOC");
    setenv("RCGC_MALLOC", "nope", 1);
    assert_null(rcgc_runtime_new(NULL));
    setenv("RCGC_MALLOC", "malloc", 1);
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    assert_non_null(rt);
    rcgc_object *o = RCGC_OBJ(tu_new_node(rt));
    assert_true(o->flags & RCGC_OF_FOREIGN);   /* objects from libc malloc */
    rcgc_decref(o);
    rcgc_runtime_free(rt);
    unsetenv("RCGC_MALLOC");
    assert_string_equal(rcgc_strerror(RCGC_ENOMEM), "out of memory");
    assert_string_equal(rcgc_strerror(12345), "unknown error");
}

static int oom_calls;
static int oom_handler(rcgc_runtime *rt, rcgc_domain d, size_t size, void *arg)
{
    (void)rt;
    (void)d;
    (void)size;
    oom_calls++;
    return *(int *)arg;   /* retry? */
}

/* The handler runs on failure; when it asks for a retry the allocation is
 * tried once more. */
static void test_oom_handler(void **state)
{
    (void)state;
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    int retry = 0;
    rcgc_set_oom_handler(rt, oom_handler, &retry);
    rcgc_mem_fail_after(rt, 1, 0);
    oom_calls = 0;
    assert_null(rcgc_mem_malloc(rt, 600));
    assert_int_equal(oom_calls, 1);
    retry = 1;
    rcgc_mem_fail_after(rt, 1, 0);   /* transient: the retry succeeds */
    void *p = rcgc_mem_malloc(rt, 600);
    assert_non_null(p);
    assert_int_equal(oom_calls, 2);
    rcgc_mem_free(rt, p);
    rcgc_mem_fail_after(rt, 1, 1);   /* persistent: the retry fails too */
    assert_null(rcgc_new(rt, &tu_node_type));
    assert_int_equal(oom_calls, 4);
    rcgc_mem_fail_after(rt, 0, 0);
    assert_int_equal(rt->obj.live_objects, 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_runtime_free(rt);
}

/* Allocator replacement is refused while the domain has live blocks. */
static void test_set_allocator_state(void **state)
{
    (void)state;
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    rcgc_allocator libc;
    rcgc_mem_get_libc_allocator(&libc);
    void *p = rcgc_mem_malloc(rt, 10);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &libc), RCGC_ESTATE);
    rcgc_mem_free(rt, p);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &libc), RCGC_OK);
    p = rcgc_mem_malloc(rt, 10);
    assert_false(rcgc_mem_is_pool_address(p));
    rcgc_mem_free(rt, p);
    rcgc_allocator got;
    rcgc_mem_get_allocator(rt, RCGC_DOMAIN_MEM, &got);
    assert_ptr_equal(got.malloc, libc.malloc);
    rcgc_allocator pools;
    rcgc_mem_get_pool_allocator(rt, &pools);
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &pools), RCGC_OK);
    p = rcgc_mem_malloc(rt, 10);
    assert_true(rcgc_mem_is_pool_address(p));
    rcgc_mem_free(rt, p);
    rcgc_allocator broken = {0};
    assert_int_equal(rcgc_mem_set_allocator(rt, RCGC_DOMAIN_MEM, &broken), RCGC_EINVAL);
    rcgc_runtime_free(rt);
}

/* Separate runtimes in separate threads run in parallel. */
static void *worker(void *arg)
{
    long *result = arg;
    rcgc_runtime *rt = rcgc_runtime_new(NULL);
    rcgc_list *keep = rcgc_list_new(rt);
    long sum = 0;
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 5000; i++) {
            tu_node *n = tu_new_node(rt);
            n->value = i;
            rcgc_list_append(keep, RCGC_OBJ(n));
            rcgc_decref(RCGC_OBJ(n));
        }
        for (size_t i = 0; i < rcgc_list_len(keep); i++)
            sum += ((tu_node *)rcgc_list_get(keep, i))->value;
        rcgc_list_clear(keep);
    }
    rcgc_decref(RCGC_OBJ(keep));
    *result = rcgc_validate(rt, stderr) == RCGC_OK && rt->obj.live_objects == 0 ? sum : -1;
    rcgc_runtime_free(rt);
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    long r[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, &r[i]);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i], 20L * (4999L * 5000L / 2));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_oom_handler),
        cmocka_unit_test(test_set_allocator_state),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
