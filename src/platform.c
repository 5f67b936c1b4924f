/* platform.c - the OS calls behind platform.h (Linux/POSIX). */
#include "platform.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

void *rcgc_os_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Over-map by `align`, then unmap the unaligned head and tail. */
void *rcgc_os_map_aligned(size_t size, size_t align)
{
    size_t total = size + align;
    char *p = rcgc_os_map(total);
    if (p == NULL)
        return NULL;
    uintptr_t start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)p;
    size_t tail = total - head - size;
    if (head)
        munmap(p, head);
    if (tail)
        munmap((char *)start + size, tail);
    return (void *)start;
}

void rcgc_os_unmap(void *p, size_t size)
{
    if (p)
        munmap(p, size);
}

int rcgc_os_reserve_at(uintptr_t at, size_t size)
{
#ifdef MAP_FIXED_NOREPLACE
    void *p = mmap((void *)at, size, PROT_READ,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    if ((uintptr_t)p != at) {   /* a kernel before 4.17 takes the flag as a hint */
        munmap(p, size);
        return -1;
    }
    return 0;
#else
    (void)at, (void)size;
    return -1;
#endif
}

void *rcgc_os_map_at(uintptr_t at, size_t size)
{
#ifdef MAP_FIXED_NOREPLACE
    void *p = mmap((void *)at, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if ((uintptr_t)p != at) {   /* a kernel before 4.17 takes the flag as a hint */
        munmap(p, size);
        return NULL;
    }
    return p;
#else
    (void)at, (void)size;
    return NULL;
#endif
}

int rcgc_os_commit(void *p, size_t size)
{
    void *q = mmap(p, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    return q == p ? 0 : -1;
}

void rcgc_os_decommit(void *p, size_t size)
{
    /* Fresh zero pages in place of the old ones: the memory goes back to
     * the OS and the range stays reserved (a failure leaves the old pages,
     * still reserved: nothing is lost but memory). */
    (void)mmap(p, size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

uintptr_t rcgc_os_thread_id(void)
{
    return (uintptr_t)pthread_self();
}

double rcgc_os_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

size_t rcgc_os_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long size = 0, resident = 0;
    int n = fscanf(f, "%lu %lu", &size, &resident);
    fclose(f);
    if (n != 2)
        return 0;
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}
