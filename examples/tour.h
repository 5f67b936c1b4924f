/* The tour: each area of rcgc contributes one section, a function in its own
 * tour_<area>.c.  Sections print what they do and explain the output. */
#ifndef RCGC_TOUR_H
#define RCGC_TOUR_H
#include <stdio.h>

void tour_heading(const char *title);
void tour_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sections, in tour order.  A section that is not built is skipped. */
void tour_core(void) __attribute__((weak));
void tour_gc(void) __attribute__((weak));
void tour_tracemalloc(void) __attribute__((weak));
void tour_prof(void) __attribute__((weak));
#endif
