/*
 * tour_prof.c - the tour's last stop: rcgc-prof, the profiler for any
 * program.  A small leaky C program (this very binary, started again with
 * RCGC_TOUR_PROF_CHILD=1, which runs leaky_program() and nothing else) is
 * profiled by `rcgc-prof run`; then its top lines, its leak, the per-line
 * view of its worst function and its memory chart are shown.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tour.h"

/* ---- the program being profiled ------------------------------------------- */

/* Keep a copy of a line: the caller forgets to free one in ten. */
__attribute__((noinline)) static char *remember(const char *line)
{
    size_t n = strlen(line) + 1;
    char *copy = malloc(n);
    if (copy)
        memcpy(copy, line, n);
    return copy;
}

/* Read 20,000 "lines", keeping each in a growing table, then drop the
 * table: a peak, then a leak of every tenth copy. */
__attribute__((noinline)) static void leaky_program(void)
{
    size_t cap = 16, n = 0;
    char **table = malloc(cap * sizeof *table);
    char line[128];
    for (int i = 0; i < 20000 && table; i++) {
        snprintf(line, sizeof line, "record %d: the quick brown fox jumps over the lazy dog",
                 i);
        if (n == cap) {
            cap *= 2;
            char **bigger = realloc(table, cap * sizeof *table);
            if (!bigger)
                break;
            table = bigger;
        }
        table[n++] = remember(line);
    }
    for (size_t i = 0; i < n; i++)
        if (i % 10 != 0) /* the bug: every tenth line is never freed */
            free(table[i]);
    free(table);
    printf("leaky program: kept %zu lines, freed most of them\n", n);
}

__attribute__((constructor)) static void tour_prof_child(void)
{
    const char *e = getenv("RCGC_TOUR_PROF_CHILD");
    if (e && !strcmp(e, "1")) {
        leaky_program();
        exit(0);
    }
}

/* ---- the tour section -------------------------------------------------------- */

static int find_prof(char *out, size_t cap, char *self, size_t selfcap)
{
    ssize_t n = readlink("/proc/self/exe", self, selfcap - 1);
    if (n <= 0)
        return -1;
    self[n] = 0;
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", self);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    /* build tree: build/examples/rcgc-tour and build/bin/rcgc-prof;
     * installed: both in bin/ */
    const char *cands[] = { "../bin/rcgc-prof", "rcgc-prof" };
    for (size_t i = 0; i < 2; i++) {
        snprintf(out, cap, "%s/%s", dir, cands[i]);
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

/* Run argv with stdout shared; returns its exit status. */
static int run(char *const argv[])
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
    }
    int st;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void tour_prof(void)
{
    tour_heading("Profiling any program: rcgc-prof");
    char prof[PATH_MAX + 32], self[PATH_MAX];
    if (find_prof(prof, sizeof prof, self, sizeof self) < 0) {
        tour_note("rcgc-prof is not built next to the tour; skipped");
        return;
    }
    char dir[] = "/tmp/rcgc-tour-prof-XXXXXX";
    if (!mkdtemp(dir)) {
        tour_note("cannot make a temporary directory; skipped");
        return;
    }
    char cap[sizeof dir + 32], svg[sizeof dir + 32], html[sizeof dir + 32];
    snprintf(cap, sizeof cap, "%s/leaky.cap", dir);
    snprintf(svg, sizeof svg, "%s/leaky.svg", dir);
    snprintf(html, sizeof html, "%s/leaky.html", dir);

    tour_note("memory_profiler and mprof profile Python programs; rcgc-prof profiles any");
    tour_note("program, unchanged.  Here: a small C program that keeps 20,000 lines in a");
    tour_note("growing table, frees the table and forgets one line in ten.");
    tour_note("$ rcgc-prof run -o leaky.cap -- ./leaky");
    setenv("RCGC_TOUR_PROF_CHILD", "1", 1);
    char *runv[] = { prof, "run", "-q", "--native-frames", "16", "-o", cap, "--", self, NULL };
    int rc = run(runv);
    unsetenv("RCGC_TOUR_PROF_CHILD");
    if (rc != 0) {
        tour_note("rcgc-prof run failed (status %d); skipped", rc);
        return;
    }

    tour_note("$ rcgc-prof report leaky.cap --top 3");
    tour_note("the peak, the totals, then the top lines in tracemalloc's format:");
    char *rep[] = { prof, "report", cap, "--top", "3", NULL };
    run(rep);
    tour_note("remember() (where malloc is called) holds the bytes; the table's realloc");
    tour_note("is the other line.  The stacks show who called it: leaky_program().");

    tour_note("$ rcgc-prof report leaky.cap --leaks --top 2");
    char *leaks[] = { prof, "report", cap, "--leaks", "--top", "2", NULL };
    run(leaks);
    tour_note("2,000 copies were never freed: one in ten of remember()'s blocks.");
    tour_note("(stdout's 4 KiB buffer is glibc's and stays to the end, as it should.)");

    tour_note("$ rcgc-prof report leaky.cap --leaks --function leaky_program");
    tour_note("memory_profiler's per-line view of one function, here of what leaked:");
    char *fn[] = { prof, "report", cap, "--leaks", "--function", "leaky_program", NULL };
    run(fn);

    tour_note("$ rcgc-prof plot leaky.cap -o leaky.svg ; rcgc-prof report leaky.cap --format html");
    char *plot[] = { prof, "plot", cap, "-o", svg, NULL };
    char *htm[] = { prof, "report", cap, "--format", "html", "-o", html, NULL };
    if (run(plot) == 0 && run(htm) == 0) {
        tour_note("the memory chart (like mprof plot): %s", svg);
        tour_note("a flame graph and the chart in one page: %s", html);
        tour_note("(in the HTML, the 'leaked' button shows remember() under leaky_program()).");
    }
    tour_note("docs/prof.md has the rest: threads, fork and exec, signals, massif for");
    tour_note("ms_print, folded stacks for flamegraph.pl, and rcgc-prof diff.");
}
