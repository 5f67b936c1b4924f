/* The domains suite (domains.h) over jemalloc's non-standard API
 * (mallocx/rallocx/dallocx; Debian's jemalloc also replaces malloc in this
 * process, which is why the suite has one executable per allocator). */
#include <stdint.h>
#include <jemalloc/jemalloc.h>

#include "domains.h"

static void *j_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return mallocx(n ? n : 1, 0);
}
static void *j_calloc(void *ctx, size_t a, size_t b)
{
    (void)ctx;
    if (b != 0 && a > SIZE_MAX / b)
        return NULL;
    size_t n = a * b;
    return mallocx(n ? n : 1, MALLOCX_ZERO);
}
static void *j_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    if (p == NULL)
        return mallocx(n ? n : 1, 0);
    return rallocx(p, n ? n : 1, 0);
}
static void j_free(void *ctx, void *p)
{
    (void)ctx;
    if (p != NULL)
        dallocx(p, 0);
}

int main(void)
{
    peer_name = "jemalloc";
    peer = (rcgc_allocator){NULL, j_malloc, j_calloc, j_realloc, j_free};
    return domains_main();
}
