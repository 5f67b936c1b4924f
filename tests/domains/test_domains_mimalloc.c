/* The domains suite (domains.h) over mimalloc's own API (mi_*). */
#include <mimalloc.h>

#include "domains.h"

static void *m_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return mi_malloc(n);
}
static void *m_calloc(void *ctx, size_t a, size_t b)
{
    (void)ctx;
    return mi_calloc(a, b);
}
static void *m_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return mi_realloc(p, n);
}
static void m_free(void *ctx, void *p)
{
    (void)ctx;
    mi_free(p);
}

int main(void)
{
    peer_name = "mimalloc";
    peer = (rcgc_allocator){NULL, m_malloc, m_calloc, m_realloc, m_free};
    return domains_main();
}
