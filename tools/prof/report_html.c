#include "report.h"
int prof_report_html(struct prof_view *v, FILE *out)
{
    (void)v;
    (void)out;
    return 1;
}
