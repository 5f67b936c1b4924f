/* Every member of the malloc family, with their contracts checked while
 * profiled: alignment, usable size, contents kept by realloc, errors. */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int bad;
#define CHECK(c)                                                   \
    do {                                                           \
        if (!(c)) {                                                \
            printf("check failed line %d: %s\n", __LINE__, #c);    \
            bad = 1;                                               \
        }                                                          \
    } while (0)

int main(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *p;
    CHECK(posix_memalign(&p, 64, 1000) == 0 && (uintptr_t)p % 64 == 0);
    CHECK(malloc_usable_size(p) >= 1000);
    memset(p, 1, 1000);
    free(p);
    CHECK(posix_memalign(&p, 3, 10) == EINVAL);
    p = aligned_alloc(4096, 8192);
    CHECK(p && (uintptr_t)p % 4096 == 0);
    free(p);
    p = memalign(32, 77);
    CHECK(p && (uintptr_t)p % 32 == 0);
    p = realloc(p, 5000); /* an aligned block moves to a plain one */
    CHECK(p != NULL);
    free(p);
    p = valloc(10);
    CHECK(p && (uintptr_t)p % page == 0);
    free(p);
    p = pvalloc(10);
    CHECK(p && (uintptr_t)p % page == 0 && malloc_usable_size(p) >= page);
    free(p);
    int *c = calloc(1000, sizeof(int));
    int zero = 1;
    for (int i = 0; i < 1000; i++)
        zero &= c[i] == 0;
    CHECK(zero);
    for (int i = 0; i < 1000; i++)
        c[i] = i;
    c = reallocarray(c, 100000, sizeof(int));
    CHECK(c && c[999] == 999);
    free(c);
    volatile size_t huge = SIZE_MAX / 2; /* volatile: keep the compiler from judging */
    CHECK(reallocarray(NULL, huge, 4) == NULL && errno == ENOMEM);
    CHECK(calloc(huge, 4) == NULL);
    char *s = malloc(0);
    CHECK(s != NULL);
    s = realloc(s, 0); /* glibc: frees, returns NULL */
    CHECK(s == NULL);
    free(NULL);
    printf(bad ? "FAILED\n" : "all malloc-family contracts hold\n");
    return bad;
}
