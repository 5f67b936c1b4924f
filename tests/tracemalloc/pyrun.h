/* pyrun.h - run tests/tracemalloc/pyformat.py (the real tracemalloc module
 * of python3) over a batch of requests and read its answers back, one line
 * per request.  Shared by the tracemalloc tests. */
#ifndef RCGC_TEST_PYRUN_H
#define RCGC_TEST_PYRUN_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct pyrun {
    char path_in[64];
    FILE *in;
    char **answers;
    size_t n;
} pyrun;

/* Open a batch: requests are written with fprintf(py->in, ...). */
static inline int pyrun_open(pyrun *py)
{
    memset(py, 0, sizeof *py);
    snprintf(py->path_in, sizeof py->path_in, "/tmp/rcgc-pyreq-%ld.txt", (long)getpid());
    py->in = fopen(py->path_in, "w");
    return py->in ? 0 : -1;
}

/* Run python3 over the batch; returns the number of answer lines, or -1. */
static inline long pyrun_exec(pyrun *py)
{
    fclose(py->in);
    py->in = NULL;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 '%s' < '%s'", RCGC_PYFORMAT, py->path_in);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t cap = 0;
    char *line = NULL;
    ssize_t got;
    size_t len = 0;
    while ((got = getline(&line, &len, p)) >= 0) {
        if (got > 0 && line[got - 1] == '\n')
            line[got - 1] = '\0';
        if (py->n == cap) {
            cap = cap ? cap * 2 : 256;
            py->answers = realloc(py->answers, cap * sizeof *py->answers);
        }
        py->answers[py->n++] = strdup(line);
    }
    free(line);
    int rc = pclose(p);
    remove(py->path_in);
    return rc == 0 ? (long)py->n : -1;
}

static inline void pyrun_close(pyrun *py)
{
    for (size_t i = 0; i < py->n; i++)
        free(py->answers[i]);
    free(py->answers);
    py->answers = NULL;
    py->n = 0;
}
#endif
