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
