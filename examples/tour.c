/* rcgc-tour: the seed documents' examples, in C, with their output
 * explained.  `make demo` builds and runs it. */
#include <stdarg.h>
#include <stdio.h>
#include "tour.h"

void tour_heading(const char *title)
{
    printf("\n==== %s ====\n\n", title);
    fflush(stdout);
}

void tour_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  # ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

int my_traverse(rcgc_object *self, rcgc_visitfn visit, void *arg)
{
    my_object *m = (my_object *)self;
    return m->reference ? visit(m->reference, arg) : 0;
}

int my_clear(rcgc_object *self)
{
    RCGC_CLEAR(((my_object *)self)->reference);
    return 0;
}

static void my_finalize(rcgc_object *self)
{
    printf("Object %s deleted\n", ((my_object *)self)->name);
    fflush(stdout);   /* keep the order with the collector's stderr messages */
}

const rcgc_type my_type = {
    .name = "MyObject",
    .size = sizeof(my_object),
    .traverse = my_traverse,
    .clear = my_clear,
    .finalize = my_finalize,
};

my_object *my_new(rcgc_runtime *rt, const char *name)
{
    my_object *m = (my_object *)rcgc_new(rt, &my_type);
    m->name = name;
    printf("Object %s created\n", name);
    return m;
}

int main(void)
{
    void (*sections[])(void) = { tour_core, tour_gc, tour_tracemalloc, tour_prof };
    printf("rcgc tour: Python's memory management, in C\n");
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        if (sections[i])
            sections[i]();
    printf("\nEnd of the tour.\n");
    return 0;
}
