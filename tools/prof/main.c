/*
 * main.c - the rcgc-prof command: run, report, plot, diff
 * (usage in docs/prof.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "run.h"

static void usage(FILE *to)
{
    fprintf(to,
            "usage:\n"
            "  rcgc-prof run [-o FILE] [--native-frames N] [--interval MS] [-q] -- PROGRAM ARGS...\n"
            "  rcgc-prof report FILE [--format text|json|folded|massif|html]\n"
            "                   [--leaks|--peak|--temporary] [--top N] [--function NAME] [-o OUT]\n"
            "  rcgc-prof plot FILE -o chart.svg|chart.png [--width W] [--height H]\n"
            "  rcgc-prof diff OLD NEW [--leaks|--peak|--temporary] [--top N]\n"
            "Captures, formats and columns are described in docs/prof.md.\n");
}

struct loaded {
    struct prof_capture c;
    struct prof_view v;
};

static int load(const char *path, struct loaded *l, const struct prof_opts *o)
{
    char err[512];
    if (prof_capture_load(path, &l->c, err, sizeof err) != 0) {
        fprintf(stderr, "rcgc-prof: %s\n", err);
        prof_capture_free(&l->c);
        return -1;
    }
    l->v.c = &l->c;
    l->v.sym = prof_symtab_new(&l->c);
    l->v.o = o;
    return 0;
}

static void unload(struct loaded *l)
{
    prof_symtab_free(l->v.sym);
    prof_capture_free(&l->c);
}

/* Parse the options shared by report, plot and diff; positional arguments
 * are collected into pos.  Returns -1 on a bad option. */
static int parse_opts(int argc, char **argv, struct prof_opts *o, const char **format,
                      const char **pos, int *npos, int maxpos)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--format") && i + 1 < argc)
            *format = argv[++i];
        else if (!strncmp(a, "--format=", 9))
            *format = a + 9;
        else if (!strcmp(a, "--leaks") || !strcmp(a, "--leaked"))
            o->metric = PROF_LEAKED;
        else if (!strcmp(a, "--peak"))
            o->metric = PROF_PEAK;
        else if (!strcmp(a, "--temporary"))
            o->metric = PROF_TEMPORARY;
        else if (!strcmp(a, "--total"))
            o->metric = PROF_TOTAL;
        else if (!strcmp(a, "--top") && i + 1 < argc)
            o->top = atoi(argv[++i]);
        else if (!strcmp(a, "--function") && i + 1 < argc)
            o->function = argv[++i];
        else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && i + 1 < argc)
            o->out = argv[++i];
        else if (!strcmp(a, "--width") && i + 1 < argc)
            o->width = atoi(argv[++i]);
        else if (!strcmp(a, "--height") && i + 1 < argc)
            o->height = atoi(argv[++i]);
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "rcgc-prof: unknown or incomplete option %s\n", a);
            return -1;
        } else if (*npos < maxpos)
            pos[(*npos)++] = a;
        else {
            fprintf(stderr, "rcgc-prof: unexpected argument %s\n", a);
            return -1;
        }
    }
    return 0;
}

static int cmd_report(int argc, char **argv)
{
    struct prof_opts o = { .metric = PROF_TOTAL, .top = 10 };
    const char *format = "text", *pos[1];
    int npos = 0;
    if (parse_opts(argc, argv, &o, &format, pos, &npos, 1) < 0 || npos != 1) {
        usage(stderr);
        return 2;
    }
    int (*fn)(struct prof_view *, FILE *) = NULL;
    if (o.function)
        fn = prof_report_function;
    else if (!strcmp(format, "text"))
        fn = prof_report_text;
    else if (!strcmp(format, "json"))
        fn = prof_report_json;
    else if (!strcmp(format, "folded"))
        fn = prof_report_folded;
    else if (!strcmp(format, "massif"))
        fn = prof_report_massif;
    else if (!strcmp(format, "html"))
        fn = prof_report_html;
    else {
        fprintf(stderr, "rcgc-prof: unknown format %s (text, json, folded, massif, html)\n",
                format);
        return 2;
    }
    struct loaded l;
    if (load(pos[0], &l, &o) < 0)
        return 1;
    FILE *out = stdout;
    if (o.out && !(out = fopen(o.out, "w"))) {
        perror(o.out);
        unload(&l);
        return 1;
    }
    int rc = fn(&l.v, out);
    if (out != stdout && fclose(out) != 0) {
        perror(o.out);
        rc = 1;
    } else if (out == stdout && fflush(stdout) != 0) {
        rc = 1;
    }
    unload(&l);
    return rc;
}

static int cmd_plot(int argc, char **argv)
{
    struct prof_opts o = { .metric = PROF_TOTAL, .width = 960, .height = 480 };
    const char *format = NULL, *pos[1];
    int npos = 0;
    if (parse_opts(argc, argv, &o, &format, pos, &npos, 1) < 0 || npos != 1 || !o.out) {
        usage(stderr);
        return 2;
    }
    if (o.width < 200 || o.width > 8000 || o.height < 150 || o.height > 8000) {
        fprintf(stderr, "rcgc-prof plot: --width 200..8000, --height 150..8000\n");
        return 2;
    }
    struct loaded l;
    if (load(pos[0], &l, &o) < 0)
        return 1;
    int rc = prof_plot(&l.v, o.out);
    unload(&l);
    return rc;
}

static int cmd_diff(int argc, char **argv)
{
    struct prof_opts o = { .metric = PROF_TOTAL, .top = 10 };
    const char *format = NULL, *pos[2];
    int npos = 0;
    if (parse_opts(argc, argv, &o, &format, pos, &npos, 2) < 0 || npos != 2) {
        usage(stderr);
        return 2;
    }
    struct loaded a, b;
    if (load(pos[0], &a, &o) < 0)
        return 1;
    if (load(pos[1], &b, &o) < 0) {
        unload(&a);
        return 1;
    }
    int rc = prof_diff(&a.v, &b.v, stdout);
    unload(&a);
    unload(&b);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run"))
        return prof_cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "report"))
        return cmd_report(argc - 2, argv + 2);
    if (!strcmp(cmd, "plot"))
        return cmd_plot(argc - 2, argv + 2);
    if (!strcmp(cmd, "diff"))
        return cmd_diff(argc - 2, argv + 2);
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "rcgc-prof: unknown command %s\n", cmd);
    usage(stderr);
    return 2;
}
