/* T1 and T3 (pool.h) when their address ranges are taken: this process
 * maps something of its own where the region and the first general arena
 * slots would be before rcgc runs.  The general arenas then go where the
 * OS puts them (rcgc_mem_free frees their blocks out of line, by the
 * arena map), and tracing puts the traced pools in the general arenas,
 * whose frees take the arena map's way (R12).  A process of its own,
 * because the region is reserved once per process. */
#include "testutil.h"
#include <sys/mman.h>

#include "pool.h"
#include "runtime.h"
#include "rcgc_tracemalloc.h"

static void test_region_taken(void **state)
{
    (void)state;
#ifdef RCGC_REGION_HI
    uintptr_t at = RCGC_REGION_HI << (RCGC_ARENA_BITS + RCGC_MAP_BITS);
    void *mine = mmap((void *)(at + ((uintptr_t)5 << 30)), 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (mine == MAP_FAILED || (uintptr_t)mine != at + ((uintptr_t)5 << 30))
        skip();   /* the range is not free here: nothing to take it from */
    /* T3: the first general arena slots taken too (a page in each), so
     * that the first arena goes where the OS puts it (above the region)
     * and its blocks are freed out of line by the arena map */
    void *low[8];
    for (int k = 0; k < 8; k++) {
        uintptr_t s = RCGC_LOW_FIRST + (uintptr_t)k * RCGC_ARENA_SIZE;
        low[k] = mmap((void *)s, 4096, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        assert_ptr_equal(low[k], (void *)s);
    }
    rcgc_config cfg = {.size = sizeof cfg, .malloc_mode = "pymalloc"};
    rcgc_runtime *rt = rcgc_runtime_new(&cfg);
    assert_non_null(rt);
    void *u[200];
    for (int i = 0; i < 200; i++) {
        u[i] = rcgc_mem_malloc(rt, 48);
        assert_non_null(u[i]);
        /* not in a taken slot: where the OS put it (above the region
         * natively; valgrind puts mappings low) */
        assert_true((uintptr_t)u[i] < RCGC_LOW_FIRST ||
                    (uintptr_t)u[i] >= RCGC_LOW_FIRST + 8 * RCGC_ARENA_SIZE);
    }
    for (int i = 0; i < 200; i += 2)
        rcgc_mem_free(rt, u[i]);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    for (int i = 1; i < 200; i += 2)
        rcgc_mem_free(rt, u[i]);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    assert_int_equal(rcgc_tracemalloc_start(rt, 1), RCGC_OK);
    enum { N = 3000 };
    static void *blk[N];
    size_t want = 0, cur = 0, peak = 0;
    for (int i = 0; i < N; i++) {
        size_t n = 1 + (size_t)(i * 53) % 512;
        blk[i] = rcgc_mem_malloc(rt, n);
        assert_non_null(blk[i]);
        want += n;
        assert_false(rcgc_pool_in_region(blk[i]));
        assert_int_equal(rcgc_pool_of(blk[i])->szidx, rcgc_size_class(n) + RCGC_NCLASSES);
        assert_ptr_equal(rcgc_pool_of(blk[i])->arena->set, &rt->pool.arenas);
    }
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    for (int i = 0; i < N; i += 2) {
        want -= 1 + (size_t)(i * 53) % 512;
        rcgc_mem_free(rt, blk[i]);
    }
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, want);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    for (int i = 1; i < N; i += 2)
        rcgc_mem_free(rt, blk[i]);
    rcgc_tracemalloc_get_traced_memory(rt, &cur, &peak);
    assert_int_equal(cur, 0);
    assert_int_equal(rcgc_validate(rt, stderr), RCGC_OK);
    rcgc_tracemalloc_stop(rt);
    rcgc_runtime_free(rt);
    /* still ours: rcgc mapped nothing over them */
    assert_int_equal(*(volatile char *)mine, 0);
    munmap(mine, 4096);
    for (int k = 0; k < 8; k++) {
        assert_int_equal(*(volatile char *)low[k], 0);
        munmap(low[k], 4096);
    }
#else
    skip();
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_region_taken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
