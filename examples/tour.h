/* The tour: each area of rcgc contributes one section, a function in its own
 * tour_<area>.c.  Sections print what they do and explain the output. */
#ifndef RCGC_TOUR_H
#define RCGC_TOUR_H
#include <stdio.h>
#include <rcgc.h>

void tour_heading(const char *title);
void tour_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The seeds' MyObject: a name, one reference, and a finalizer (Python's
 * __del__, a PEP 442 finalizer) that says goodbye. */
typedef struct my_object {
    rcgc_object ob;
    const char *name;
    rcgc_object *reference;
} my_object;
extern const rcgc_type my_type;
int my_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg);
int my_clear(rcgc_object *self);
/* A new MyObject; prints "Object NAME created". */
my_object *my_new(rcgc_runtime *rt, const char *name);

/* Sections, in tour order.  A section that is not built is skipped. */
void tour_core(void) __attribute__((weak));
void tour_gc(void) __attribute__((weak));
void tour_tracemalloc(void) __attribute__((weak));
void tour_prof(void) __attribute__((weak));
#endif
