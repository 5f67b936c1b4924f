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
/* Reserve [at, at + size) exactly there, readable as zeros and costing no
 * memory (nothing else can be mapped into it).  0 on success; -1 when
 * the range is taken or the OS cannot place a mapping exactly (the
 * caller does without). */
int rcgc_os_reserve_at(uintptr_t at, size_t size);
/* Map `size` bytes read-write, zeroed, exactly at `at`, or NULL (taken,
 * or the OS cannot place a mapping exactly). */
void *rcgc_os_map_at(uintptr_t at, size_t size);
/* Within a reservation: make [p, p + size) fresh read-write memory
 * (zeroed), or give its memory back (readable zeros again). */
int rcgc_os_commit(void *p, size_t size);
void rcgc_os_decommit(void *p, size_t size);
/* A non-zero identifier of the calling thread. */
uintptr_t rcgc_os_thread_id(void);
/* Monotonic seconds. */
double rcgc_os_monotonic(void);
/* Resident set size of the process in bytes (0 if unknown). */
size_t rcgc_os_rss(void);

#endif
