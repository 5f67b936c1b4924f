#include "report.h"
int prof_plot(struct prof_view *v, const char *path)
{
    (void)v;
    (void)path;
    return 1;
}
