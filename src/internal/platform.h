/*
 * platform.h - every call rcgc makes to the operating system.
 * Linux/POSIX today; a port replaces platform.c only.
 */
#ifndef RCGC_PLATFORM_H
#define RCGC_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

/* Map `size` bytes aligned to `align` (a power of two >= the page size),
 * read-write, zeroed.  NULL on failure. */
void *rcgc_os_map_aligned(size_t size, size_t align);
/* Map `size` bytes, zeroed, no alignment beyond the page. */
void *rcgc_os_map(size_t size);
void rcgc_os_unmap(void *p, size_t size);
/* A non-zero identifier of the calling thread. */
uintptr_t rcgc_os_thread_id(void);
/* Monotonic seconds. */
double rcgc_os_monotonic(void);
/* Resident set size of the process in bytes (0 if unknown). */
size_t rcgc_os_rss(void);

#endif
