/* The domains suite (domains.h) over glibc's malloc family. */
#include <malloc.h>
#include <stdlib.h>

#include "domains.h"

static void *g_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n ? n : 1);
}
static void *g_calloc(void *ctx, size_t a, size_t b)
{
    (void)ctx;
    return calloc(a ? a : 1, b ? b : 1);
}
static void *g_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return realloc(p, n ? n : 1);
}
static void g_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

int main(void)
{
    peer_name = "glibc";
    peer = (rcgc_allocator){NULL, g_malloc, g_calloc, g_realloc, g_free};
    return domains_main();
}
